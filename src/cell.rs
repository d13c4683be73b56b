//! redis-cell's `CL.THROTTLE` on Charon's bucket, with no server in it: its
//! arguments, its stored state and the conversion of that state, and its
//! reply in seconds.
//!
//! redis-cell runs GCRA: a key holds one number, the theoretical arrival
//! time (TAT, Unix nanoseconds, a decimal string). With the emission interval
//! `T = period / count_per_period` and the delay tolerance
//! `tau = T * (max_burst + 1)`, a request of `quantity` at `now` is allowed
//! when `max(TAT, now) + quantity * T - now <= tau`, and then moves TAT
//! there. That is a token bucket of capacity `max_burst + 1`, refilled
//! `count_per_period` per `period`, holding `capacity - (TAT - now) / T`
//! tokens (full when `TAT <= now`): `CL.THROTTLE key max_burst count period
//! [quantity]` is `CHARON.RATE key <max_burst + 1> <count> <period * 1000>
//! [quantity]`, with the reply's times in whole seconds, rounded up.

use crate::bucket::{BandFields, Bucket, StateError};
use crate::parse::{self, ArgError, MAX_TIME_MS};
use crate::token_bucket::{Limit, Verdict, MAX_PARAM};
use thiserror::Error;

/// A `CL.THROTTLE` request: the bucket's limit and the tokens it takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Throttle {
    pub limit: Limit,
    pub quantity: u64,
}

/// A bad `CL.THROTTLE` argument: the message names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum ThrottleError {
    #[error("ERR max_burst must be a non-negative integer")]
    MaxBurst,
    #[error("ERR max_burst is out of range")]
    MaxBurstRange,
    #[error("ERR count_per_period must be a positive integer")]
    Count,
    #[error("ERR period must be a positive integer of seconds")]
    Period,
    #[error("ERR period is out of range")]
    PeriodRange,
    #[error("ERR quantity must be a non-negative integer")]
    Quantity,
    /// The limit as `CHARON.RATE` would refuse it (its range check).
    #[error(transparent)]
    Limit(ArgError),
}

/// Parses `max_burst count_per_period period [quantity]` (integers as Redis
/// parses them, `period` in seconds), left to right: the first error met is
/// the one answered. The limit is the one `CHARON.RATE <max_burst + 1>
/// <count_per_period> <period * 1000>` parses, refused in the same range
/// (`parse::limit`'s: refilling the whole bucket takes at most
/// `MAX_TIME_MS`; a test holds the two together).
pub fn request(
    max_burst: &[u8],
    count: &[u8],
    period: &[u8],
    quantity: Option<&[u8]>,
) -> Result<Throttle, ThrottleError> {
    let max_burst = parse::non_negative(max_burst).ok_or(ThrottleError::MaxBurst)?;
    let capacity = max_burst
        .checked_add(1)
        .filter(|&capacity| capacity <= MAX_PARAM)
        .ok_or(ThrottleError::MaxBurstRange)?;
    let refill = parse::positive(count).ok_or(ThrottleError::Count)?;
    let seconds = parse::positive(period).ok_or(ThrottleError::Period)?;
    let period_ms = seconds
        .checked_mul(1000)
        .filter(|&ms| ms <= MAX_PARAM)
        .ok_or(ThrottleError::PeriodRange)?;
    // ceil(capacity * period / refill) <= MAX_TIME_MS, without a division:
    // every product is below 2^126.
    let fill = u128::from(capacity) * u128::from(period_ms);
    if fill > u128::from(MAX_TIME_MS) * u128::from(refill) {
        return Err(ThrottleError::Limit(ArgError::LimitRange));
    }
    // All three are within 1..=MAX_PARAM, which is what Limit accepts.
    let limit = Limit::new(capacity, refill, period_ms).ok_or(ThrottleError::MaxBurstRange)?;
    let quantity = match quantity {
        None => 1,
        Some(bytes) => parse::non_negative(bytes).ok_or(ThrottleError::Quantity)?,
    };
    Ok(Throttle { limit, quantity })
}

/// The reply `[limited, limit, remaining, retry_after_s, reset_after_s]`:
/// Charon's verdict with its times in whole seconds, rounded up (never
/// early); `retry_after_s` is -1 when allowed, and when the quantity exceeds
/// the capacity.
pub fn reply(verdict: &Verdict) -> [i64; 5] {
    [
        i64::from(verdict.limited),
        as_reply(verdict.limit),
        as_reply(verdict.remaining),
        verdict.retry_after_ms.map_or(-1, seconds_up),
        seconds_up(verdict.reset_after_ms),
    ]
}

/// Milliseconds as whole seconds, rounded up.
pub fn seconds_up(ms: u64) -> i64 {
    as_reply(ms.div_ceil(1000))
}

fn as_reply(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// redis-cell's state, if `bytes` is one: a TAT written as redis-cell writes
/// it, a non-negative decimal integer that fits in 64 bits, with no sign, no
/// leading zero and nothing else. Any other string is not redis-cell's.
pub fn state(bytes: &[u8]) -> Option<u64> {
    match bytes {
        [b'0'] => Some(0),
        [b'1'..=b'9', ..] if bytes.len() <= 20 => bytes.iter().try_fold(0u64, |value, &byte| {
            let digit = byte.checked_sub(b'0').filter(|digit| *digit <= 9)?;
            value.checked_mul(10)?.checked_add(u64::from(digit))
        }),
        _ => None,
    }
}

/// What a redis-cell key is, under a call's limit, at the time of the call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Conversion {
    /// It owes nothing: a full bucket, which is no key at all.
    Full,
    /// The bucket holding the same tokens (rounded down), as of now.
    Holding(Bucket),
}

/// Converts redis-cell's state `tat_ns` into the bucket it stands for under
/// `limit` at `now_ns` (Unix nanoseconds, the finest clock at hand), stamped
/// `now_ms` (the same instant in milliseconds): it holds
/// `capacity - (TAT - now) / T` tokens, rounded down to whole tokens (never
/// below zero), where `T = period / refill` is computed exactly.
///
/// Rounding down never changes the decision of the converting call: a
/// quantity is an integer, so it fits in the tokens exactly when it fits in
/// their floor.
pub fn convert(
    tat_ns: u64,
    now_ns: i64,
    limit: Limit,
    now_ms: i64,
) -> Result<Conversion, StateError> {
    let owed_ns = i128::from(tat_ns) - i128::from(now_ns.max(0));
    if owed_ns <= 0 {
        return Ok(Conversion::Full);
    }
    // Tokens owed: owed_ns * refill / (period_ms * 10^6), rounded up. The
    // product is below 2^64 * 2^63: it fits.
    let owed_ns = owed_ns.unsigned_abs();
    let period_ns = u128::from(limit.period_ms()) * 1_000_000;
    let missing = (owed_ns * u128::from(limit.refill())).div_ceil(period_ns);
    let tokens = u128::from(limit.capacity()).saturating_sub(missing);
    let band = BandFields {
        capacity: limit.capacity(),
        refill: limit.refill(),
        period_ms: limit.period_ms(),
        // Below the capacity (at least one token is missing), so it fits.
        tokens: tokens.try_into().unwrap_or(0),
        fraction: 0,
    };
    Bucket::from_fields(now_ms.max(0), &[band]).map(Conversion::Holding)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle(text: &str) -> Result<Throttle, ThrottleError> {
        let words: Vec<&[u8]> = text.split(' ').map(str::as_bytes).collect();
        request(words[0], words[1], words[2], words.get(3).copied())
    }

    fn limit(text: &str) -> (u64, u64, u64) {
        let limit = throttle(text).unwrap().limit;
        (limit.capacity(), limit.refill(), limit.period_ms())
    }

    #[test]
    fn arguments_are_charon_rate_with_capacity_plus_one_and_seconds() {
        assert_eq!(limit("15 30 60"), (16, 30, 60_000));
        assert_eq!(limit("0 1 1"), (1, 1, 1000));
        assert_eq!(throttle("15 30 60").unwrap().quantity, 1);
        assert_eq!(throttle("15 30 60 0").unwrap().quantity, 0);
        assert_eq!(throttle("15 30 60 7").unwrap().quantity, 7);
        // The same limit as CHARON.RATE's, range check included.
        let rate = parse::limit(b"16", b"30", b"60s").unwrap();
        assert_eq!(throttle("15 30 60").unwrap().limit, rate);
        let max = MAX_PARAM / 1000;
        assert_eq!(limit(&format!("0 2 {max}")), (1, 2, max * 1000));
        assert_eq!(
            limit("9223372036854775806 9223372036854775807 1").0,
            MAX_PARAM
        );
    }

    #[test]
    fn errors_name_the_argument_left_to_right() {
        use ThrottleError::*;
        for (text, error) in [
            ("-1 1 1", MaxBurst),
            ("x 1 1", MaxBurst),
            ("+1 1 1", MaxBurst),
            ("01 1 1", MaxBurst),
            (" 1 1 1", MaxBurst),
            ("1.5 1 1", MaxBurst),
            ("9223372036854775807 1 1", MaxBurstRange),
            ("9223372036854775808 1 1", MaxBurst),
            ("1 0 1", Count),
            ("1 -1 1", Count),
            ("1 x 1", Count),
            ("1 1 0", Period),
            ("1 1 -1", Period),
            ("1 1 1s", Period),
            ("1 1 60.5", Period),
            ("1 1 9223372036854776", PeriodRange),
            ("1 1 1 -1", Quantity),
            ("1 1 1 x", Quantity),
            ("1 1 1 1.0", Quantity),
            // Refilling 2^62 tokens at 1 per second takes too long.
            ("4611686018427387903 1 1", Limit(ArgError::LimitRange)),
            // The first error from the left.
            ("-1 0 0 -1", MaxBurst),
            ("1 0 0 -1", Count),
            ("1 1 0 -1", Period),
            ("4611686018427387903 1 1 -1", Limit(ArgError::LimitRange)),
        ] {
            assert_eq!(throttle(text), Err(error), "{text}");
        }
        assert_eq!(
            Quantity.to_string(),
            "ERR quantity must be a non-negative integer"
        );
        assert!(Limit(ArgError::LimitRange)
            .to_string()
            .starts_with("ERR limit is out of range"));
    }

    /// The range is `CHARON.RATE`'s: the same limits accepted and refused,
    /// at and around the bound.
    #[test]
    fn the_range_is_charon_rates() {
        let bound = MAX_TIME_MS;
        let mut cases = vec![
            (0, 1, 1),
            (15, 30, 60),
            (MAX_PARAM - 1, MAX_PARAM, 1),
            (MAX_PARAM - 1, MAX_PARAM / 1000, 1),
            (MAX_PARAM - 1, 1, 1),
            (0, 1, MAX_PARAM / 1000),
            (0, 2, MAX_PARAM / 1000),
            (0, 3, MAX_PARAM / 1000),
        ];
        // Around the bound: capacity * 1000 / refill near 2^62.
        for refill in [1u64, 2, 3, 7, 1000, 999_983] {
            let capacity = (u128::from(bound) * u128::from(refill) / 1000) as u64;
            for capacity in [capacity - 1, capacity, capacity + 1, capacity + 2] {
                if capacity <= MAX_PARAM {
                    cases.push((capacity - 1, refill, 1));
                }
            }
        }
        for (max_burst, refill, seconds) in cases {
            let capacity = (max_burst + 1).to_string();
            let period = (u128::from(seconds) * 1000).to_string();
            let rate = parse::limit(
                capacity.as_bytes(),
                refill.to_string().as_bytes(),
                period.as_bytes(),
            );
            let throttle = request(
                max_burst.to_string().as_bytes(),
                refill.to_string().as_bytes(),
                seconds.to_string().as_bytes(),
                None,
            );
            let what = format!("{max_burst} {refill} {seconds}");
            match rate {
                Ok(limit) => assert_eq!(throttle.map(|t| t.limit), Ok(limit), "{what}"),
                Err(error) => assert_eq!(throttle, Err(ThrottleError::Limit(error)), "{what}"),
            }
        }
    }

    #[test]
    fn reply_in_whole_seconds_rounded_up() {
        let verdict = |limited, retry, reset| Verdict {
            limited,
            limit: 16,
            remaining: 15,
            retry_after_ms: retry,
            reset_after_ms: reset,
        };
        assert_eq!(reply(&verdict(false, None, 2000)), [0, 16, 15, -1, 2]);
        assert_eq!(reply(&verdict(false, None, 2001)), [0, 16, 15, -1, 3]);
        assert_eq!(reply(&verdict(false, None, 0)), [0, 16, 15, -1, 0]);
        assert_eq!(reply(&verdict(true, Some(1), 999)), [1, 16, 15, 1, 1]);
        assert_eq!(reply(&verdict(true, None, 1)), [1, 16, 15, -1, 1]);
        assert_eq!(
            seconds_up(u64::MAX),
            i64::try_from(u64::MAX.div_ceil(1000)).unwrap()
        );
    }

    #[test]
    fn only_redis_cells_own_numbers_are_its_state() {
        for (text, want) in [
            ("0", Some(0)),
            ("1", Some(1)),
            ("1700000000000000000", Some(1_700_000_000_000_000_000)),
            ("18446744073709551615", Some(u64::MAX)),
            ("18446744073709551616", None),
            ("99999999999999999999", None),
            ("100000000000000000000", None),
            ("", None),
            ("-1", None),
            ("+1", None),
            ("01", None),
            ("00", None),
            (" 1", None),
            ("1 ", None),
            ("1.0", None),
            ("1e9", None),
            ("abc", None),
            ("0x10", None),
        ] {
            assert_eq!(state(text.as_bytes()), want, "{text:?}");
        }
    }

    fn tokens(conversion: &Conversion) -> Option<i128> {
        match conversion {
            Conversion::Full => None,
            Conversion::Holding(bucket) => Some(i128::from(bucket.bands()[0].tokens())),
        }
    }

    #[test]
    fn conversion_counts_what_is_owed_rounded_down() {
        // 16 tokens, 1 every 2 s.
        let limit = throttle("15 30 60").unwrap().limit;
        let now_ns = 1_700_000_000_000_000_000i64;
        let now_ms = now_ns / 1_000_000;
        let at = |owed_ns: i64| convert((now_ns + owed_ns) as u64, now_ns, limit, now_ms).unwrap();
        assert_eq!(at(0), Conversion::Full);
        assert_eq!(at(-1), Conversion::Full);
        assert_eq!(convert(0, now_ns, limit, now_ms), Ok(Conversion::Full));
        assert_eq!(tokens(&at(1)), Some(15));
        assert_eq!(tokens(&at(2_000_000_000)), Some(15));
        assert_eq!(tokens(&at(2_000_000_001)), Some(14));
        assert_eq!(tokens(&at(10_000_000_000)), Some(11));
        assert_eq!(tokens(&at(9_999_999_999)), Some(11));
        assert_eq!(tokens(&at(32_000_000_000)), Some(0));
        // More than the bucket holds (the parameters shrank): empty.
        assert_eq!(tokens(&at(1_000_000_000_000)), Some(0));
        assert_eq!(tokens_of(&convert(u64::MAX, 0, limit, 0)), Some(0));
        // Stamped now, no fraction, and full again when redis-cell's would
        // be (to the token).
        let Conversion::Holding(bucket) = at(10_000_000_000) else {
            panic!("not converted");
        };
        assert_eq!(bucket.updated_at_ms(), now_ms);
        assert_eq!(bucket.full_at_ms(), now_ms + 10_000);
        assert_eq!(bucket.bands()[0].level().fraction, 0);
    }

    fn tokens_of(result: &Result<Conversion, StateError>) -> Option<i128> {
        tokens(result.as_ref().unwrap())
    }

    #[test]
    fn a_clock_before_1970_owes_from_zero() {
        let limit = throttle("0 1 1").unwrap().limit;
        assert_eq!(tokens_of(&convert(1, -5, limit, -1)), Some(0));
        assert_eq!(convert(0, -5, limit, -1), Ok(Conversion::Full));
    }
}
