//! The readable state: `CHARON.SETSTATE key updated_at_ms band_count
//! [capacity refill period_ms tokens fraction]...`, one decimal argument per
//! field. AOF rewrite writes it; the digest covers the same values.
//!
//! Format 1 has no marker: every argument is a non-negative integer. A later
//! format must stay distinguishable from it, and this decoder stays.

use crate::bucket::{BandFields, Bucket, StateError, MAX_BANDS};
use crate::parse;
use thiserror::Error;

/// The format this build writes.
pub const READABLE_FORMAT: u8 = 1;

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
    #[error("ERR invalid bucket state: band fields must be non-negative integers")]
    Fields,
    #[error("ERR invalid bucket state: {0}")]
    Invalid(#[from] StateError),
}

/// The arguments for `bucket`, after the key. Every value is at most
/// `i64::MAX`.
pub fn state_args(bucket: &Bucket) -> Vec<i64> {
    bucket.state_values().map(|value| value as i64).collect()
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
    let mut values = fields.iter().map(|field| parse::non_negative(field));
    let bands = (0..band_count)
        .map(|_| BandFields::read(|| values.next().flatten().ok_or(ReadableError::Fields)))
        .collect::<Result<Vec<_>, _>>()?;
    // updated_at_ms <= i64::MAX: it parsed as a non-negative i64.
    Ok(Bucket::from_fields(updated_at_ms as i64, &bands)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_names_what_is_wrong() {
        let band = BandFields {
            capacity: 10,
            refill: 3,
            period_ms: 1000,
            tokens: 4,
            fraction: 999,
        };
        let bucket = Bucket::from_fields(1_700_000_000_000, &[band, band]).unwrap();
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
