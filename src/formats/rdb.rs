//! The RDB encoding of a bucket, by encoding version (`encver`).
//!
//! Every encver ever written keeps its decoder here: an RDB file or a `DUMP`
//! payload made by an older Charon must load into a newer one. A change of the
//! encoding bumps `ENCVER` and adds a decoder (and a fixture under
//! `tests/fixtures/`); the old ones stay.
//!
//! Encver 1, in order:
//!   unsigned  band count (1..=MAX_BANDS)
//!   per band: unsigned capacity, refill, period_ms, tokens, fraction
//!   signed    updated_at_ms
//!
//! Encver 2 (reservations: a band's level may be below zero): the same,
//! with `tokens` signed.
//!
//! `RESTORE` hands user bytes to this decoder, so every value is validated
//! before a bucket is built, and a short read fails cleanly.

use crate::bucket::{BandFields, Bucket, StateError, TokensWire, MAX_BANDS};
use thiserror::Error;

/// The encoding this build writes.
pub const ENCVER: i32 = 2;

/// Reads the primitive values of an RDB stream. `None` means the stream
/// failed (short read, bad encoding): decoding stops there.
pub trait RdbSource {
    fn unsigned(&mut self) -> Option<u64>;
    fn signed(&mut self) -> Option<i64>;
}

/// Writes the primitive values of an RDB stream.
pub trait RdbSink {
    fn unsigned(&mut self, value: u64);
    fn signed(&mut self, value: i64);
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum DecodeError {
    #[error("the payload is short or unreadable")]
    Io,
    #[error("encoding version {found} is newer than this module reads (up to {ENCVER}): upgrade the module")]
    NewerEncoding { found: i32 },
    #[error("unknown encoding version {found}")]
    UnknownEncoding { found: i32 },
    #[error("invalid bucket: {0}")]
    Invalid(#[from] StateError),
}

pub fn encode(bucket: &Bucket, sink: &mut impl RdbSink) {
    sink.unsigned(bucket.band_count() as u64);
    for band in bucket.fields() {
        sink.unsigned(band.capacity);
        sink.unsigned(band.refill);
        sink.unsigned(band.period_ms);
        sink.signed(band.tokens);
        sink.unsigned(band.fraction);
    }
    sink.signed(bucket.updated_at_ms());
}

pub fn decode(encver: i32, source: &mut impl RdbSource) -> Result<Bucket, DecodeError> {
    match encver {
        1 => decode_fields(source, TokensWire::Unsigned),
        2 => decode_fields(source, TokensWire::Signed),
        found if found > ENCVER => Err(DecodeError::NewerEncoding { found }),
        found => Err(DecodeError::UnknownEncoding { found }),
    }
}

/// Encvers 1 and 2 differ only in how `tokens` is carried.
fn decode_fields(
    source: &mut impl RdbSource,
    tokens_wire: TokensWire,
) -> Result<Bucket, DecodeError> {
    let count = source.unsigned().ok_or(DecodeError::Io)?;
    // Checked before anything is read or allocated for the bands.
    if count == 0 || count > MAX_BANDS as u64 {
        return Err(StateError::BandCount.into());
    }
    let mut bands = Vec::with_capacity(count as usize);
    for _ in 0..count {
        bands.push(BandFields::read(tokens_wire, |wire| {
            match wire {
                TokensWire::Unsigned => source.unsigned().map(i128::from),
                TokensWire::Signed => source.signed().map(i128::from),
            }
            .ok_or(DecodeError::Io)
        })?);
    }
    let updated_at_ms = source.signed().ok_or(DecodeError::Io)?;
    Ok(Bucket::from_fields(updated_at_ms, &bands)?)
}

/// An in-memory stream of primitive values, for tests and fuzzing.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Values(pub std::collections::VecDeque<i128>);

impl RdbSink for Values {
    fn unsigned(&mut self, value: u64) {
        self.0.push_back(value.into());
    }
    fn signed(&mut self, value: i64) {
        self.0.push_back(value.into());
    }
}

impl RdbSource for Values {
    fn unsigned(&mut self) -> Option<u64> {
        self.0.pop_front().and_then(|v| u64::try_from(v).ok())
    }
    fn signed(&mut self) -> Option<i64> {
        self.0.pop_front().and_then(|v| i64::try_from(v).ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bucket::fixtures::two_bands as bucket;

    #[test]
    fn round_trip() {
        let mut values = Values::default();
        encode(&bucket(), &mut values);
        assert_eq!(values.0.len(), 1 + 2 * 5 + 1);
        assert_eq!(decode(ENCVER, &mut values), Ok(bucket()));
    }

    #[test]
    fn every_truncation_fails_cleanly() {
        let mut full = Values::default();
        encode(&bucket(), &mut full);
        for len in 0..full.0.len() {
            let mut short = Values(full.0.iter().copied().take(len).collect());
            assert_eq!(decode(ENCVER, &mut short), Err(DecodeError::Io), "{len}");
        }
    }

    #[test]
    fn impossible_values_are_refused() {
        let mut values = Values::default();
        encode(&bucket(), &mut values);
        values.0[4] = 11; // tokens above capacity
        assert!(matches!(
            decode(ENCVER, &mut values),
            Err(DecodeError::Invalid(StateError::Level))
        ));
        let mut huge = Values([u64::MAX as i128].into_iter().collect());
        assert!(matches!(
            decode(ENCVER, &mut huge),
            Err(DecodeError::Invalid(StateError::BandCount))
        ));
    }

    /// Encver 1 carried `tokens` unsigned; it still loads, and a value
    /// that could not fit a signed field is refused, not wrapped.
    #[test]
    fn encver_1_still_loads() {
        let mut v1 = Values([1i128, 10, 3, 1000, 4, 999, 1_700_000_000_000].into());
        let band = BandFields {
            capacity: 10,
            refill: 3,
            period_ms: 1000,
            tokens: 4,
            fraction: 999,
        };
        assert_eq!(
            decode(1, &mut v1),
            Ok(Bucket::from_fields(1_700_000_000_000, &[band]).unwrap())
        );
        let mut wide = Values([1i128, 10, 3, 1000, u64::MAX as i128, 0, 0].into());
        assert!(matches!(
            decode(1, &mut wide),
            Err(DecodeError::Invalid(StateError::Level))
        ));
    }

    /// Encver 2 carries a level below zero.
    #[test]
    fn reserved_levels_round_trip() {
        let band = BandFields {
            capacity: 10,
            refill: 3,
            period_ms: 1000,
            tokens: -25,
            fraction: 7,
        };
        let bucket = Bucket::from_fields(5, &[band]).unwrap();
        let mut values = Values::default();
        encode(&bucket, &mut values);
        assert_eq!(values.0[4], -25);
        assert_eq!(decode(ENCVER, &mut values), Ok(bucket));
    }

    #[test]
    fn unknown_versions_are_refused() {
        let mut values = Values::default();
        assert_eq!(
            decode(3, &mut values),
            Err(DecodeError::NewerEncoding { found: 3 })
        );
        assert_eq!(
            decode(0, &mut values),
            Err(DecodeError::UnknownEncoding { found: 0 })
        );
    }
}
