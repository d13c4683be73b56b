//! The readable state: `CHARON.SETSTATE key updated_at_ms band_count
//! [capacity refill period_ms tokens fraction]...`, one decimal argument per
//! field. AOF rewrite writes it; the digest covers the same values.
//!
//! Format 1: every argument is a non-negative integer. Format 2 (from
//! reservations on) lets `tokens` be negative; it is read by the same
//! decoder, and it is format 1 whenever no band is below zero. A Charon
//! that reads only format 1 refuses a negative `tokens` cleanly.

use crate::bucket::{BandFields, Bucket, StateError, TokensWire, MAX_BANDS};
use crate::parse;
use thiserror::Error;

/// The format this build writes.
pub const READABLE_FORMAT: u8 = 2;

/// Fields per band, after `updated_at_ms band_count`.
pub const FIELDS_PER_BAND: usize = 5;

/// Why a readable state was refused: the message is the error reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum ReadableError {
    #[error("ERR updated_at must be a non-negative integer")]
    UpdatedAt,
    #[error("ERR band_count must be between 1 and {MAX_BANDS}")]
    BandCount,
    /// The number of arguments does not match `band_count`.
    #[error("ERR wrong number of arguments")]
    Arity,
    #[error("ERR invalid bucket state: band fields must be integers (tokens may be negative, the others not)")]
    Fields,
    #[error("ERR invalid bucket state: {0}")]
    Invalid(#[from] StateError),
}

/// The arguments for `bucket`, after the key. Every value is at most
/// `i64::MAX`.
pub fn state_args(bucket: &Bucket) -> Vec<i64> {
    bucket.state_values().collect()
}

/// Whether `count` arguments after the key can be a readable state.
pub fn may_be_readable(count: usize) -> bool {
    count >= 2 + FIELDS_PER_BAND
}

/// The bucket of the arguments after the key, validated whole.
pub fn from_args(args: &[&[u8]]) -> Result<Bucket, ReadableError> {
    let [updated_at, band_count, fields @ ..] = args else {
        return Err(ReadableError::Arity);
    };
    let updated_at_ms = parse::non_negative(updated_at).ok_or(ReadableError::UpdatedAt)?;
    let band_count = match parse::positive(band_count) {
        Some(count) if count <= MAX_BANDS as u64 => count as usize,
        _ => return Err(ReadableError::BandCount),
    };
    if fields.len() != FIELDS_PER_BAND * band_count {
        return Err(ReadableError::Arity);
    }
    let mut values = fields.iter();
    let bands = (0..band_count)
        .map(|_| {
            BandFields::read(TokensWire::Signed, |wire| {
                let field = values.next().ok_or(ReadableError::Fields)?;
                match wire {
                    TokensWire::Unsigned => parse::non_negative(field).map(i128::from),
                    TokensWire::Signed => parse::redis_i64(field).map(i128::from),
                }
                .ok_or(ReadableError::Fields)
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    // updated_at_ms <= i64::MAX: it parsed as a non-negative i64.
    Ok(Bucket::from_fields(updated_at_ms as i64, &bands)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_names_what_is_wrong() {
        let bucket = crate::bucket::fixtures::two_bands();
        let text: Vec<String> = state_args(&bucket).iter().map(i64::to_string).collect();
        let args: Vec<&[u8]> = text.iter().map(|s| s.as_bytes()).collect();
        assert_eq!(from_args(&args), Ok(bucket));
        let mut bad = args.clone();
        bad[0] = b"-1";
        assert_eq!(from_args(&bad), Err(ReadableError::UpdatedAt));
        bad = args.clone();
        bad[1] = b"17";
        assert_eq!(from_args(&bad), Err(ReadableError::BandCount));
        assert_eq!(
            from_args(&args[..args.len() - 1]),
            Err(ReadableError::Arity)
        );
        bad = args.clone();
        bad[5] = b"x";
        assert_eq!(from_args(&bad), Err(ReadableError::Fields));
        bad = args.clone();
        bad[5] = b"11";
        assert_eq!(
            from_args(&bad),
            Err(ReadableError::Invalid(StateError::Level))
        );
    }
}
