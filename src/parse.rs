//! Argument parsing, on raw argument bytes, with no Redis in it.
//!
//! Integers follow Redis's own `string2ll` (what `RedisModule_StringToLongLong`
//! uses): base 10, an optional `-`, no `+`, no leading zeros, no spaces, and
//! within `i64`. Periods take an optional unit suffix.

use std::mem::MaybeUninit;

use crate::bucket::MAX_BANDS;
use crate::token_bucket::{Limit, MAX_PARAM};
use thiserror::Error;

/// The longest time an accepted limit or wait may produce, in ms (2^62, 146
/// million years): every reply field, the deepest reservation and `now +
/// TTL` then fit in a signed 64-bit integer, so no time is ever saturated.
pub const MAX_TIME_MS: u64 = 1 << 62;

/// A bad argument: the message names the argument, as Redis users expect.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum ArgError {
    #[error("ERR capacity must be a positive integer")]
    Capacity,
    #[error("ERR refill must be a positive integer")]
    Refill,
    #[error("ERR period must be a positive integer of milliseconds, optionally with a unit: ms, s, m, h or d")]
    Period,
    #[error("ERR period is out of range")]
    PeriodRange,
    #[error("ERR cost must be a non-negative integer")]
    Cost,
    #[error("ERR tokens must be a positive integer")]
    Tokens,
    #[error("ERR syntax error")]
    Syntax,
    #[error("ERR too many limits: at most {MAX_BANDS} bands")]
    TooManyLimits,
    #[error("ERR limit is out of range: refilling its capacity would take more than 2^62 ms")]
    LimitRange,
    #[error("ERR maxwait must be a non-negative integer")]
    MaxWait,
    #[error("ERR maxwait is out of range")]
    MaxWaitRange,
    #[error("ERR MAXWAIT is required")]
    MaxWaitMissing,
    #[error("ERR timeout must be a non-negative integer")]
    Timeout,
    #[error("ERR timeout is out of range")]
    TimeoutRange,
    #[error("ERR TIMEOUT is required")]
    TimeoutMissing,
}

/// Parses an integer exactly as Redis's `string2ll` does.
pub fn redis_i64(bytes: &[u8]) -> Option<i64> {
    let (negative, digits) = match bytes {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, bytes),
    };
    match digits {
        [] => return None,
        [b'0'] if !negative => return Some(0),
        [b'1'..=b'9', ..] => {}
        _ => return None,
    }
    // Accumulate as a negative number so that i64::MIN parses.
    let mut value: i64 = 0;
    for &byte in digits {
        let digit = match byte {
            b'0'..=b'9' => i64::from(byte - b'0'),
            _ => return None,
        };
        value = value.checked_mul(10)?.checked_sub(digit)?;
    }
    if negative {
        Some(value)
    } else {
        value.checked_neg()
    }
}

/// A positive integer (`1..=i64::MAX`).
pub fn positive(bytes: &[u8]) -> Option<u64> {
    redis_i64(bytes)
        .filter(|&n| n >= 1)
        .map(|n| n.unsigned_abs())
}

/// A non-negative integer (`0..=i64::MAX`).
pub fn non_negative(bytes: &[u8]) -> Option<u64> {
    redis_i64(bytes)
        .filter(|&n| n >= 0)
        .map(|n| n.unsigned_abs())
}

/// Milliseconds per unit, by suffix (matched case-insensitively).
const UNITS: [(&[u8], u64); 5] = [
    (b"ms", 1),
    (b"s", 1_000),
    (b"m", 60_000),
    (b"h", 3_600_000),
    (b"d", 86_400_000),
];

/// A period: `1500`, `1500ms`, `30s`, `5m`, `1h`, `7d` (units in any case).
pub fn period_ms(bytes: &[u8]) -> Result<u64, ArgError> {
    let digits_end = bytes
        .iter()
        .position(|b| !(b.is_ascii_digit() || *b == b'-'))
        .unwrap_or(bytes.len());
    let (number, suffix) = bytes.split_at(digits_end);
    let per_unit = if suffix.is_empty() {
        1
    } else {
        UNITS
            .iter()
            .find(|(unit, _)| suffix.eq_ignore_ascii_case(unit))
            .map(|&(_, ms)| ms)
            .ok_or(ArgError::Period)?
    };
    let count = positive(number).ok_or(ArgError::Period)?;
    count
        .checked_mul(per_unit)
        .filter(|&ms| ms <= MAX_PARAM)
        .ok_or(ArgError::PeriodRange)
}

/// The limit given by `capacity refill period` arguments. Refused when
/// refilling it from empty would take more than `MAX_TIME_MS`: the longest
/// time it can produce in a reply.
pub fn limit(capacity: &[u8], refill: &[u8], period: &[u8]) -> Result<Limit, ArgError> {
    let capacity = positive(capacity).ok_or(ArgError::Capacity)?;
    let refill = positive(refill).ok_or(ArgError::Refill)?;
    let period = period_ms(period)?;
    let fill_ms = (u128::from(capacity) * u128::from(period)).div_ceil(u128::from(refill));
    if fill_ms > u128::from(MAX_TIME_MS) {
        return Err(ArgError::LimitRange);
    }
    // All three are within 1..=MAX_PARAM, which is what Limit accepts.
    Limit::new(capacity, refill, period).ok_or(ArgError::Capacity)
}

/// The keyword that bounds a wait, for the commands that take one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitKeyword {
    /// `CHARON.RATE`: no wait.
    None,
    /// `CHARON.RESERVE ... MAXWAIT ms`.
    MaxWait,
    /// `CHARON.ACQUIRE ... TIMEOUT ms`.
    Timeout,
}

/// The limits of one call, in call order (at least one, at most
/// `MAX_BANDS`), kept on the stack. Only the first `len` are written: the
/// array is sized for sixteen, and filling it all would cost more than
/// parsing a typical call.
#[derive(Clone, Copy)]
pub struct Limits {
    limits: [MaybeUninit<Limit>; MAX_BANDS],
    len: usize,
}

impl Limits {
    fn one(limit: Limit) -> Limits {
        let mut limits = [MaybeUninit::uninit(); MAX_BANDS];
        limits[0] = MaybeUninit::new(limit);
        Limits { limits, len: 1 }
    }

    fn push(&mut self, limit: Limit) -> Result<(), ArgError> {
        let slot = self
            .limits
            .get_mut(self.len)
            .ok_or(ArgError::TooManyLimits)?;
        *slot = MaybeUninit::new(limit);
        self.len += 1;
        Ok(())
    }

    pub fn as_slice(&self) -> &[Limit] {
        // SAFETY: the first `len` entries were written by `one` and `push`,
        // and `MaybeUninit<Limit>` has the layout of `Limit`.
        unsafe { std::slice::from_raw_parts(self.limits.as_ptr().cast::<Limit>(), self.len) }
    }
}

impl PartialEq for Limits {
    fn eq(&self, other: &Limits) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for Limits {}

impl std::fmt::Debug for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

/// A decision's arguments after the key:
/// `capacity refill period [cost] [LIMIT capacity refill period]...`, and
/// for RESERVE and ACQUIRE their wait bound, anywhere after the cost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request {
    pub limits: Limits,
    pub cost: u64,
    /// The `MAXWAIT` or `TIMEOUT` value; `None` for `WaitKeyword::None`.
    pub wait_ms: Option<u64>,
}

fn is_keyword(word: &[u8]) -> bool {
    [&b"LIMIT"[..], b"MAXWAIT", b"TIMEOUT"]
        .iter()
        .any(|keyword| word.eq_ignore_ascii_case(keyword))
}

/// Parses a decision's arguments after the key (`count` of them, read with
/// `arg`), left to right: the first error met is the one answered. The
/// caller has checked that the first limit's three arguments are there.
pub fn request<'a>(
    count: usize,
    arg: impl Fn(usize) -> &'a [u8],
    keyword: WaitKeyword,
) -> Result<Request, ArgError> {
    if count < 3 {
        return Err(ArgError::Syntax);
    }
    let mut limits = Limits::one(limit(arg(0), arg(1), arg(2))?);
    let mut i = 3;
    let mut cost = 1;
    if i < count && !is_keyword(arg(i)) {
        cost = non_negative(arg(i)).ok_or(ArgError::Cost)?;
        i += 1;
    }
    let (wait_word, wait_error, wait_range, wait_missing): (&[u8], _, _, _) = match keyword {
        WaitKeyword::None => (b"", ArgError::Syntax, ArgError::Syntax, None),
        WaitKeyword::MaxWait => (
            b"MAXWAIT",
            ArgError::MaxWait,
            ArgError::MaxWaitRange,
            Some(ArgError::MaxWaitMissing),
        ),
        WaitKeyword::Timeout => (
            b"TIMEOUT",
            ArgError::Timeout,
            ArgError::TimeoutRange,
            Some(ArgError::TimeoutMissing),
        ),
    };
    let mut wait_ms = None;
    while i < count {
        let word = arg(i);
        if word.eq_ignore_ascii_case(b"LIMIT") {
            if count - i < 4 {
                return Err(ArgError::Syntax);
            }
            if limits.len == MAX_BANDS {
                return Err(ArgError::TooManyLimits);
            }
            limits.push(limit(arg(i + 1), arg(i + 2), arg(i + 3))?)?;
            i += 4;
        } else if !wait_word.is_empty() && word.eq_ignore_ascii_case(wait_word) {
            if wait_ms.is_some() || count - i < 2 {
                return Err(ArgError::Syntax);
            }
            let ms = non_negative(arg(i + 1)).ok_or(wait_error)?;
            if ms > MAX_TIME_MS {
                return Err(wait_range);
            }
            wait_ms = Some(ms);
            i += 2;
        } else {
            return Err(ArgError::Syntax);
        }
    }
    if let (None, Some(missing)) = (wait_ms, wait_missing) {
        return Err(missing);
    }
    Ok(Request {
        limits,
        cost,
        wait_ms,
    })
}

/// An optional cost argument (default 1).
pub fn cost(arg: Option<&[u8]>) -> Result<u64, ArgError> {
    match arg {
        None => Ok(1),
        Some(bytes) => non_negative(bytes).ok_or(ArgError::Cost),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_parse_like_redis() {
        for (text, want) in [
            ("0", Some(0)),
            ("1", Some(1)),
            ("-1", Some(-1)),
            ("9223372036854775807", Some(i64::MAX)),
            ("-9223372036854775808", Some(i64::MIN)),
            ("9223372036854775808", None),
            ("18446744073709551616", None),
            ("-0", None),
            ("00", None),
            ("01", None),
            ("+1", None),
            (" 1", None),
            ("1 ", None),
            ("", None),
            ("-", None),
            ("1.5", None),
            ("1e3", None),
            ("0x10", None),
        ] {
            assert_eq!(redis_i64(text.as_bytes()), want, "{text:?}");
        }
        assert_eq!(redis_i64(b"\xff1"), None);
    }

    #[test]
    fn periods_take_units() {
        for (text, want) in [
            ("1500", Ok(1500)),
            ("1500ms", Ok(1500)),
            ("1500MS", Ok(1500)),
            ("30s", Ok(30_000)),
            ("5m", Ok(300_000)),
            ("5M", Ok(300_000)),
            ("1h", Ok(3_600_000)),
            ("7d", Ok(604_800_000)),
            ("366d", Ok(31_622_400_000)),
            ("3650d", Ok(315_360_000_000)),
            ("0", Err(ArgError::Period)),
            ("0s", Err(ArgError::Period)),
            ("-1s", Err(ArgError::Period)),
            ("s", Err(ArgError::Period)),
            ("1w", Err(ArgError::Period)),
            ("1 s", Err(ArgError::Period)),
            ("1sec", Err(ArgError::Period)),
            ("01s", Err(ArgError::Period)),
            ("", Err(ArgError::Period)),
            ("9223372036854775807", Ok(MAX_PARAM)),
            ("9223372036854775807s", Err(ArgError::PeriodRange)),
            ("106751991167301d", Err(ArgError::PeriodRange)),
        ] {
            assert_eq!(period_ms(text.as_bytes()), want, "{text:?}");
        }
    }

    #[test]
    fn errors_name_the_argument() {
        assert_eq!(limit(b"0", b"1", b"1"), Err(ArgError::Capacity));
        assert_eq!(limit(b"1", b"x", b"1"), Err(ArgError::Refill));
        assert_eq!(limit(b"1", b"1", b"1y"), Err(ArgError::Period));
        assert_eq!(cost(Some(b"-1")), Err(ArgError::Cost));
        assert_eq!(cost(None), Ok(1));
        assert_eq!(cost(Some(b"0")), Ok(0));
        assert!(ArgError::Capacity.to_string().starts_with("ERR capacity"));
    }

    fn parse(text: &str, keyword: WaitKeyword) -> Result<Request, ArgError> {
        let words: Vec<&[u8]> = text.split(' ').map(str::as_bytes).collect();
        request(words.len(), |i| words[i], keyword)
    }

    fn bands(request: &Request) -> Vec<(u64, u64, u64)> {
        let limits = request.limits.as_slice();
        limits
            .iter()
            .map(|l| (l.capacity(), l.refill(), l.period_ms()))
            .collect()
    }

    #[test]
    fn limit_groups_and_waits() {
        use WaitKeyword::*;
        let r = parse("10 10 1s LIMIT 1000 1000 1d", None).unwrap();
        assert_eq!(bands(&r), [(10, 10, 1000), (1000, 1000, 86_400_000)]);
        assert_eq!((r.cost, r.wait_ms), (1, Option::None));
        let r = parse("10 10 1s 3 limit 5 1 1m", None).unwrap();
        assert_eq!((bands(&r).len(), r.cost), (2, 3));
        let r = parse("1 10 1s maxwait 250 LIMIT 2 2 1s", MaxWait).unwrap();
        assert_eq!((bands(&r).len(), r.cost, r.wait_ms), (2, 1, Some(250)));
        let r = parse("1 10 1s 2 TIMEOUT 0", Timeout).unwrap();
        assert_eq!((r.cost, r.wait_ms), (2, Some(0)));
        for (text, keyword, error) in [
            ("1 1 1 LIMIT 1 1", None, ArgError::Syntax),
            ("1 1 1 LIMIT 1 1 1 2", None, ArgError::Syntax),
            ("1 1 1 1 2", None, ArgError::Syntax),
            ("1 1 1 1 BOGUS", None, ArgError::Syntax),
            // Right after the first limit, a word that is no keyword is
            // the cost.
            ("1 1 1 BOGUS", None, ArgError::Cost),
            ("1 1 1 x", None, ArgError::Cost),
            ("1 1 1 MAXWAIT 5", None, ArgError::Syntax),
            ("1 1 1 LIMIT 0 1 1", None, ArgError::Capacity),
            ("1 1 1", MaxWait, ArgError::MaxWaitMissing),
            ("1 1 1 MAXWAIT", MaxWait, ArgError::Syntax),
            ("1 1 1 MAXWAIT -1", MaxWait, ArgError::MaxWait),
            ("1 1 1 MAXWAIT 1 MAXWAIT 1", MaxWait, ArgError::Syntax),
            (
                "1 1 1 MAXWAIT 4611686018427387905",
                MaxWait,
                ArgError::MaxWaitRange,
            ),
            ("1 1 1 TIMEOUT 5", MaxWait, ArgError::Syntax),
            ("1 1 1", Timeout, ArgError::TimeoutMissing),
            ("1 1 1 TIMEOUT x", Timeout, ArgError::Timeout),
            // The first error from the left.
            ("0 1 1 BOGUS", None, ArgError::Capacity),
            ("1 1 1 2 BOGUS LIMIT 0 1 1", None, ArgError::Syntax),
            ("1 1 1 2 LIMIT 0 1 1 BOGUS", None, ArgError::Capacity),
        ] {
            assert_eq!(parse(text, keyword), Err(error), "{text}");
        }
        let sixteen = "1 1 1".to_string() + &" LIMIT 1 1 1".repeat(15);
        assert_eq!(bands(&parse(&sixteen, None).unwrap()).len(), 16);
        let seventeen = sixteen + " LIMIT 1 1 1";
        assert_eq!(parse(&seventeen, None), Err(ArgError::TooManyLimits));
    }

    #[test]
    fn limits_that_would_saturate_a_time_are_refused() {
        // Refilling 2 tokens at 1 per 2^63-1 ms: twice what a reply holds.
        assert_eq!(
            limit(b"2", b"1", b"9223372036854775807"),
            Err(ArgError::LimitRange)
        );
        // The bound itself is accepted, one more millisecond is not.
        assert!(limit(b"1", b"1", b"4611686018427387904").is_ok());
        assert_eq!(
            limit(b"1", b"1", b"4611686018427387905"),
            Err(ArgError::LimitRange)
        );
        assert!(limit(b"1000000000000", b"1000000000000", b"3650d").is_ok());
        assert!(limit(b"9223372036854775807", b"9223372036854775807", b"1").is_ok());
    }
}
