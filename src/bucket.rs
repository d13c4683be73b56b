//! The value stored under a key: a bucket of one or more bands and the time
//! it was last brought up to date. Redis-free: the data type and the
//! commands wrap it.

use crate::token_bucket::{self, Band, Decision, Level, Limit, MAX_PARAM};
use thiserror::Error;

/// The most bands one bucket may hold. Bounds the work and memory a single
/// value (from a command, an RDB file or a replication stream) can demand.
pub const MAX_BANDS: usize = 16;

/// Why a stored state was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum StateError {
    #[error("band count must be between 1 and {MAX_BANDS}")]
    BandCount,
    #[error("capacity, refill and period must be between 1 and {MAX_PARAM}")]
    Limit,
    #[error("tokens must not exceed capacity, and the fraction must be below the period (and 0 when full)")]
    Level,
    #[error("updated_at must not be negative")]
    Time,
}

/// A bucket: its bands and when they were last refilled (server clock, ms).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bucket {
    updated_at_ms: i64,
    bands: Box<[Band]>,
}

/// One band as it is stored and replicated: five plain integers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BandFields {
    pub capacity: u64,
    pub refill: u64,
    pub period_ms: u64,
    pub tokens: u64,
    pub fraction: u64,
}

impl BandFields {
    pub fn of(band: &Band) -> BandFields {
        let limit = band.limit();
        let Level { tokens, fraction } = band.level();
        BandFields {
            capacity: limit.capacity(),
            refill: limit.refill(),
            period_ms: limit.period_ms(),
            tokens,
            fraction,
        }
    }

    /// The band these fields describe, validated.
    pub fn band(&self) -> Result<Band, StateError> {
        let limit =
            Limit::new(self.capacity, self.refill, self.period_ms).ok_or(StateError::Limit)?;
        let level = Level {
            tokens: self.tokens,
            fraction: self.fraction,
        };
        Band::new(limit, level).ok_or(StateError::Level)
    }
}

impl Bucket {
    /// A bucket from untrusted fields (a command, an RDB payload), validated
    /// whole before anything is built.
    pub fn from_fields(updated_at_ms: i64, fields: &[BandFields]) -> Result<Bucket, StateError> {
        if fields.is_empty() || fields.len() > MAX_BANDS {
            return Err(StateError::BandCount);
        }
        if updated_at_ms < 0 {
            return Err(StateError::Time);
        }
        let bands = fields
            .iter()
            .map(BandFields::band)
            .collect::<Result<Box<[Band]>, _>>()?;
        Ok(Bucket {
            updated_at_ms,
            bands,
        })
    }

    fn new(updated_at_ms: i64, bands: Vec<Band>) -> Bucket {
        debug_assert!(!bands.is_empty() && bands.len() <= MAX_BANDS);
        Bucket {
            updated_at_ms,
            bands: bands.into_boxed_slice(),
        }
    }

    pub fn updated_at_ms(&self) -> i64 {
        self.updated_at_ms
    }

    pub fn bands(&self) -> &[Band] {
        &self.bands
    }

    pub fn fields(&self) -> impl ExactSizeIterator<Item = BandFields> + '_ {
        self.bands.iter().map(BandFields::of)
    }

    /// The bands as they stand at `now_ms`.
    pub fn bands_at(&self, now_ms: i64) -> Vec<Band> {
        token_bucket::refill_all(&self.bands, self.updated_at_ms, now_ms)
    }

    /// Whether every band is full: such a bucket is the same as no key.
    pub fn is_full(&self) -> bool {
        self.bands.iter().all(Band::is_full)
    }

    /// When the bucket is full again (ms, server clock): the key's expiry.
    /// Derived from the state alone, so a replica or an AOF replay that sets
    /// the same state computes the same expiry without reading a clock.
    pub fn full_at_ms(&self) -> i64 {
        let wait = self
            .bands
            .iter()
            .map(Band::reset_after_ms)
            .max()
            .unwrap_or(0);
        // Both are within 0..=i64::MAX; the sum saturates at i64::MAX.
        let full_at = (self.updated_at_ms as u64).saturating_add(wait);
        full_at.min(MAX_PARAM) as i64
    }

    /// Replaces the bands with `bands` as of `now_ms`. The stored time never
    /// moves backwards, so time that a clock step back "repeats" is not
    /// refilled twice.
    pub fn store(&mut self, bands: Vec<Band>, now_ms: i64) {
        *self = Bucket::new(self.updated_at_ms.max(now_ms), bands);
    }

    /// A new bucket holding `bands` as of `now_ms`.
    pub fn created(bands: Vec<Band>, now_ms: i64) -> Bucket {
        Bucket::new(now_ms.max(0), bands)
    }

    /// Lets the defragmenter move the bands' allocation.
    ///
    /// # Safety
    /// `relocate` returns the new address of the same bytes (the old one is
    /// then invalid), or null to leave them where they are.
    pub unsafe fn move_bands(&mut self, relocate: impl FnOnce(*mut Band) -> *mut Band) {
        let len = self.bands.len();
        if len == 0 {
            return;
        }
        let old = Box::into_raw(std::mem::take(&mut self.bands)).cast::<Band>();
        let new = relocate(old);
        let ptr = if new.is_null() { old } else { new };
        self.bands = Box::from_raw(std::ptr::slice_from_raw_parts_mut(ptr, len));
    }

    /// Heap bytes held beyond the `Bucket` itself.
    pub fn heap_bytes(&self) -> usize {
        std::mem::size_of_val(&*self.bands)
    }
}

/// A `CHARON.RATE` request against an optional stored bucket at `now_ms`:
/// the stored bands refilled to now under their own parameters, then carried
/// over to the call's limits.
pub fn decide_rate(stored: Option<&Bucket>, limits: &[Limit], cost: u64, now_ms: i64) -> Decision {
    let current = match stored {
        Some(bucket) => token_bucket::under_limits(&bucket.bands_at(now_ms), limits),
        None => limits.iter().copied().map(Band::full).collect(),
    };
    token_bucket::decide(&current, cost)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(capacity: u64, tokens: u64, fraction: u64) -> BandFields {
        BandFields {
            capacity,
            refill: 1,
            period_ms: 1000,
            tokens,
            fraction,
        }
    }

    #[test]
    fn from_fields_validates_everything() {
        assert!(Bucket::from_fields(0, &[fields(10, 5, 0)]).is_ok());
        assert_eq!(Bucket::from_fields(0, &[]), Err(StateError::BandCount));
        let many = vec![fields(10, 5, 0); MAX_BANDS + 1];
        assert_eq!(Bucket::from_fields(0, &many), Err(StateError::BandCount));
        assert_eq!(
            Bucket::from_fields(0, &[fields(0, 0, 0)]),
            Err(StateError::Limit)
        );
        assert_eq!(
            Bucket::from_fields(0, &[fields(10, 11, 0)]),
            Err(StateError::Level)
        );
        assert_eq!(
            Bucket::from_fields(0, &[fields(10, 1, 1000)]),
            Err(StateError::Level)
        );
        assert_eq!(
            Bucket::from_fields(-1, &[fields(10, 1, 0)]),
            Err(StateError::Time)
        );
    }

    #[test]
    fn full_at_is_when_refill_completes() {
        let bucket = Bucket::from_fields(10_000, &[fields(10, 7, 500)]).unwrap();
        // 2.5 tokens missing at 1 token per second.
        assert_eq!(bucket.full_at_ms(), 12_500);
        let far = Bucket::from_fields(
            i64::MAX - 1,
            &[BandFields {
                capacity: MAX_PARAM,
                refill: 1,
                period_ms: MAX_PARAM,
                tokens: 0,
                fraction: 0,
            }],
        )
        .unwrap();
        assert_eq!(far.full_at_ms(), i64::MAX);
    }

    #[test]
    fn stored_time_never_moves_back() {
        let mut bucket = Bucket::from_fields(5_000, &[fields(10, 5, 0)]).unwrap();
        let bands = bucket.bands_at(4_000);
        assert_eq!(bands[0].tokens(), 5);
        bucket.store(bands, 4_000);
        assert_eq!(bucket.updated_at_ms(), 5_000);
    }

    #[test]
    fn rate_on_missing_bucket_starts_full() {
        let limit = Limit::new(10, 10, 1000).unwrap();
        let d = decide_rate(None, &[limit], 1, 123);
        assert_eq!(d.verdict.remaining, 9);
        assert_eq!(d.verdict.reset_after_ms, 100);
    }
}
