//! Argument parsing, on raw argument bytes, with no Redis in it.
//!
//! Integers follow Redis's own `string2ll` (what `RedisModule_StringToLongLong`
//! uses): base 10, an optional `-`, no `+`, no leading zeros, no spaces, and
//! within `i64`. Periods take an optional unit suffix.

use crate::token_bucket::{Limit, MAX_PARAM};
use thiserror::Error;

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

/// The limit given by `capacity refill period` arguments.
pub fn limit(capacity: &[u8], refill: &[u8], period: &[u8]) -> Result<Limit, ArgError> {
    let capacity = positive(capacity).ok_or(ArgError::Capacity)?;
    let refill = positive(refill).ok_or(ArgError::Refill)?;
    let period = period_ms(period)?;
    // All three are within 1..=MAX_PARAM, which is what Limit accepts.
    Limit::new(capacity, refill, period).ok_or(ArgError::Capacity)
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
}
