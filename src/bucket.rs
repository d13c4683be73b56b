//! The value stored under a key: a bucket of one or more bands and the time
//! it was last brought up to date. Redis-free: the data type and the
//! commands wrap it.

use crate::token_bucket::{self, Band, Decision, Level, Limit, Verdict, MAX_PARAM};
use std::num::NonZeroU32;
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
    #[error("the packed state is malformed")]
    Packed,
}

/// A bucket: its bands and when they were last refilled (server clock, ms).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bucket {
    updated_at_ms: i64,
    bands: Bands,
}

/// A bucket's bands, in one of two forms, always the same one for the same
/// bands (so equal buckets compare equal):
///
/// - `Small`: one band whose parameters fit in 32 bits (up to 4,294,967,295
///   tokens, periods up to 49 days: nearly every real limit). It sits inline
///   in 20 bytes, so the whole bucket is one allocation of jemalloc's 32-byte
///   class (the next class is 48): a million buckets cost 16 MB less.
/// - `Large`: anything else (larger parameters, several bands), on the heap.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Bands {
    Small(SmallBand),
    Large(Box<[Band]>),
}

/// One band in 32-bit fields. Only built from a valid `Band`, so its level
/// is valid for its limit; the level fits because it stays below capacity
/// and period.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct SmallBand {
    capacity: NonZeroU32,
    refill: NonZeroU32,
    period_ms: NonZeroU32,
    tokens: u32,
    fraction: u32,
}

impl SmallBand {
    fn of(band: &Band) -> Option<SmallBand> {
        let limit = band.limit();
        let level = band.level();
        Some(SmallBand {
            capacity: NonZeroU32::new(u32::try_from(limit.capacity()).ok()?)?,
            refill: NonZeroU32::new(u32::try_from(limit.refill()).ok()?)?,
            period_ms: NonZeroU32::new(u32::try_from(limit.period_ms()).ok()?)?,
            tokens: u32::try_from(level.tokens).ok()?,
            fraction: u32::try_from(level.fraction).ok()?,
        })
    }

    fn band(&self) -> Band {
        let limit = Limit::small(self.capacity, self.refill, self.period_ms);
        let level = Level {
            tokens: i64::from(self.tokens),
            fraction: u64::from(self.fraction),
        };
        Band::from_valid(limit, level)
    }
}

impl Bands {
    fn one(band: Band) -> Bands {
        match SmallBand::of(&band) {
            Some(small) => Bands::Small(small),
            None => Bands::Large(Box::new([band])),
        }
    }

    fn from_vec(bands: Vec<Band>) -> Bands {
        match bands[..] {
            [band] => Bands::one(band),
            _ => Bands::Large(bands.into_boxed_slice()),
        }
    }

    fn len(&self) -> usize {
        match self {
            Bands::Small(_) => 1,
            Bands::Large(bands) => bands.len(),
        }
    }

    fn get(&self, i: usize) -> Option<Band> {
        match self {
            Bands::Small(small) => (i == 0).then(|| small.band()),
            Bands::Large(bands) => bands.get(i).copied(),
        }
    }

    fn iter(&self) -> impl Iterator<Item = Band> + Clone + '_ {
        let (small, large): (Option<Band>, &[Band]) = match self {
            Bands::Small(small) => (Some(small.band()), &[]),
            Bands::Large(bands) => (None, bands),
        };
        small.into_iter().chain(large.iter().copied())
    }

    /// Replaces band `i` (which exists), moving between the two forms when a
    /// one-band bucket's parameters change size.
    fn set(&mut self, i: usize, band: Band) {
        match self {
            Bands::Large(bands) if bands.len() > 1 => bands[i] = band,
            Bands::Large(bands) => match SmallBand::of(&band) {
                Some(small) => *self = Bands::Small(small),
                None => bands[0] = band,
            },
            Bands::Small(small) => match SmallBand::of(&band) {
                Some(new) => *small = new,
                None => *self = Bands::Large(Box::new([band])),
            },
        }
    }
}

/// One band as it is stored and replicated: five plain integers, `tokens`
/// signed (below zero while reservations are outstanding).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BandFields {
    pub capacity: u64,
    pub refill: u64,
    pub period_ms: u64,
    pub tokens: i64,
    pub fraction: u64,
}

/// How a form carries `tokens`: the first forms had no sign.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokensWire {
    Unsigned,
    Signed,
}

impl BandFields {
    /// Reads the five fields in their order on the wire. `next` reads one
    /// value, signed or not as asked. A value out of its field's range
    /// becomes one that `band` refuses, so every check stays in one place.
    pub fn read<E>(
        tokens_wire: TokensWire,
        mut next: impl FnMut(TokensWire) -> Result<i128, E>,
    ) -> Result<BandFields, E> {
        let mut unsigned = || next(TokensWire::Unsigned).map(|v| u64::try_from(v).unwrap_or(0));
        let capacity = unsigned()?;
        let refill = unsigned()?;
        let period_ms = unsigned()?;
        let tokens = next(tokens_wire)?;
        let fraction = next(TokensWire::Unsigned)?;
        Ok(BandFields {
            capacity,
            refill,
            period_ms,
            // Out of range: below MIN_TOKENS, refused by `band`.
            tokens: i64::try_from(tokens).unwrap_or(i64::MIN),
            // Out of range: not below any period, refused by `band`.
            fraction: u64::try_from(fraction).unwrap_or(u64::MAX),
        })
    }

    /// The fields in their order on the wire. Every one fits an `i64`.
    pub fn values(&self) -> [i64; 5] {
        let field = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
        [
            field(self.capacity),
            field(self.refill),
            field(self.period_ms),
            self.tokens,
            field(self.fraction),
        ]
    }

    /// Whether the band holds reservations (a level below zero): only the
    /// signed forms can carry it.
    pub fn is_reserved(&self) -> bool {
        self.tokens < 0
    }

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
            .collect::<Result<Vec<Band>, _>>()?;
        Ok(Bucket {
            updated_at_ms,
            bands: Bands::from_vec(bands),
        })
    }

    fn new(updated_at_ms: i64, bands: Vec<Band>) -> Bucket {
        debug_assert!(!bands.is_empty() && bands.len() <= MAX_BANDS);
        Bucket {
            updated_at_ms,
            bands: Bands::from_vec(bands),
        }
    }

    pub fn updated_at_ms(&self) -> i64 {
        self.updated_at_ms
    }

    pub fn band_count(&self) -> usize {
        self.bands.len()
    }

    pub fn bands(&self) -> Vec<Band> {
        self.bands.iter().collect()
    }

    /// The bands in order, computed on the fly (no allocation).
    pub fn each_band(&self) -> impl Iterator<Item = Band> + Clone + '_ {
        self.bands.iter()
    }

    pub fn fields(&self) -> impl Iterator<Item = BandFields> + '_ {
        self.bands.iter().map(|band| BandFields::of(&band))
    }

    /// The state as the state command carries it, in order:
    /// `updated_at_ms band_count [capacity refill period_ms tokens fraction]...`.
    /// Only `tokens` can be negative (`updated_at_ms` is validated at
    /// construction, and `store` only moves it forward).
    pub fn state_values(&self) -> impl Iterator<Item = i64> + '_ {
        [self.updated_at_ms, self.bands.len() as i64]
            .into_iter()
            .chain(self.fields().flat_map(|band| band.values()))
    }

    /// Whether any band holds reservations (a level below zero).
    pub fn is_reserved(&self) -> bool {
        self.bands.iter().any(|band| band.is_reserved())
    }

    /// The bands as they stand at `now_ms`.
    pub fn bands_at(&self, now_ms: i64) -> Vec<Band> {
        token_bucket::refill_all(&self.bands(), self.updated_at_ms, now_ms)
    }

    /// Whether every band is full: such a bucket is the same as no key.
    pub fn is_full(&self) -> bool {
        self.bands.iter().all(|band| band.is_full())
    }

    /// When the bucket is full again (ms, server clock): the key's expiry.
    /// Derived from the state alone, so a replica or an AOF replay that sets
    /// the same state computes the same expiry without reading a clock.
    pub fn full_at_ms(&self) -> i64 {
        let wait = self
            .bands
            .iter()
            .map(|band| band.reset_after_ms())
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

    /// Lets the defragmenter move the bands' heap allocation, if any.
    ///
    /// # Safety
    /// `relocate` returns the new address of the same bytes (the old one is
    /// then invalid), or null to leave them where they are.
    pub unsafe fn move_bands(&mut self, relocate: impl FnOnce(*mut Band) -> *mut Band) {
        let Bands::Large(bands) = &mut self.bands else {
            return;
        };
        let len = bands.len();
        if len == 0 {
            return;
        }
        let old = Box::into_raw(std::mem::take(bands)).cast::<Band>();
        let new = relocate(old);
        let ptr = if new.is_null() { old } else { new };
        *bands = Box::from_raw(std::ptr::slice_from_raw_parts_mut(ptr, len));
    }

    /// The bands' heap allocation and its size, when they have one.
    pub fn heap(&self) -> Option<(*const Band, usize)> {
        match &self.bands {
            Bands::Small(_) => None,
            Bands::Large(bands) => Some((bands.as_ptr(), std::mem::size_of_val(&**bands))),
        }
    }
}

/// What a `CHARON.RATE` request did to the stored state.
#[derive(Debug, PartialEq, Eq)]
pub enum Change {
    /// Nothing taken (limited, or cost 0): nothing to write or replicate.
    None,
    /// Tokens were taken from the stored bucket, updated in place.
    Updated,
    /// Tokens were taken from a bucket that did not exist: store this one.
    Created(Bucket),
}

/// Band `i` as a request at `now` under `limits` sees it: the stored band
/// refilled under its own parameters for `elapsed` ms, then carried over to
/// the call's limit.
fn band_now(stored: Option<&Bucket>, elapsed: u64, limits: &[Limit], i: usize) -> Band {
    let current = stored
        .and_then(|bucket| bucket.bands.get(i))
        .map(|band| band.refilled(elapsed));
    token_bucket::under_limit(current, limits[i])
}

/// A `CHARON.RATE` request of `cost` under `limits` at `now_ms`, against an
/// optional stored bucket. When tokens are taken, the stored bucket is
/// updated in place (or a new one returned); otherwise nothing changes.
/// Allocation-free for a stored bucket with as many bands as limits.
pub fn rate(
    stored: Option<&mut Bucket>,
    limits: &[Limit],
    cost: u64,
    now_ms: i64,
) -> (Verdict, Change) {
    debug_assert!(!limits.is_empty() && limits.len() <= MAX_BANDS);
    let elapsed = stored.as_deref().map_or(0, |bucket| {
        token_bucket::elapsed_ms(bucket.updated_at_ms, now_ms)
    });
    if let ([limit], Some(bucket)) = (limits, stored.as_deref()) {
        if bucket.bands.len() == 1 {
            return rate_one_band(stored, *limit, cost, now_ms, elapsed);
        }
    }
    // Every band as the call sees it, computed once, on the stack.
    let view = stored.as_deref();
    let mut seen = [Band::full(limits[0]); MAX_BANDS];
    for (i, band) in seen.iter_mut().enumerate().take(limits.len()) {
        *band = band_now(view, elapsed, limits, i);
    }
    let seen = &seen[..limits.len()];
    let verdict = Verdict::of(seen.iter().copied(), cost);
    if !token_bucket::takes(&verdict, cost) {
        return (verdict, Change::None);
    }
    let change = match stored {
        Some(bucket) if bucket.bands.len() == limits.len() => {
            for (i, band) in seen.iter().enumerate() {
                bucket.bands.set(i, band.taken(cost));
            }
            bucket.updated_at_ms = bucket.updated_at_ms.max(now_ms);
            Change::Updated
        }
        Some(bucket) => {
            let bands = seen.iter().map(|band| band.taken(cost)).collect();
            bucket.store(bands, now_ms);
            Change::Updated
        }
        None => {
            let bands = limits
                .iter()
                .map(|&limit| Band::full(limit).taken(cost))
                .collect();
            Change::Created(Bucket::created(bands, now_ms))
        }
    };
    (verdict, change)
}

/// `rate` for the common case, a one-band bucket and one limit: the band is
/// computed once.
fn rate_one_band(
    stored: Option<&mut Bucket>,
    limit: Limit,
    cost: u64,
    now_ms: i64,
    elapsed: u64,
) -> (Verdict, Change) {
    let Some(bucket) = stored else {
        unreachable!("called with a stored bucket");
    };
    let Some(stored_band) = bucket.bands.get(0) else {
        unreachable!("a bucket has at least one band");
    };
    let band = token_bucket::under_limit(Some(stored_band.refilled(elapsed)), limit);
    let verdict = Verdict::of(std::iter::once(band), cost);
    if !token_bucket::takes(&verdict, cost) {
        return (verdict, Change::None);
    }
    bucket.bands.set(0, band.taken(cost));
    bucket.updated_at_ms = bucket.updated_at_ms.max(now_ms);
    (verdict, Change::Updated)
}

/// A reservation would take a band below `token_bucket::MIN_TOKENS`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[error("ERR the reservation would take a band below -9223372036854775807 tokens")]
pub struct TooDeep;

/// A `CHARON.RESERVE` request of `cost` under `limits` at `now_ms` that may
/// wait up to `max_wait_ms` for its turn (see `Verdict::of_reservation`).
/// When granted, `cost` is taken from every band now, which may leave them
/// below zero; otherwise nothing changes. A turn that is now is exactly
/// `rate`: the same answer, the same change, the same fast path.
pub fn reserve(
    mut stored: Option<&mut Bucket>,
    limits: &[Limit],
    cost: u64,
    max_wait_ms: u64,
    now_ms: i64,
) -> Result<(Verdict, Change), TooDeep> {
    let (verdict, change) = rate(stored.as_deref_mut(), limits, cost, now_ms);
    if !verdict.limited || max_wait_ms == 0 {
        return Ok((verdict, change));
    }
    // Limited: `rate` changed nothing.
    let view = stored.as_deref();
    let elapsed = view.map_or(0, |bucket| {
        token_bucket::elapsed_ms(bucket.updated_at_ms, now_ms)
    });
    let bands: Vec<Band> = (0..limits.len())
        .map(|i| band_now(view, elapsed, limits, i))
        .collect();
    let verdict = Verdict::of_reservation(bands.iter().copied(), cost, max_wait_ms);
    if verdict.limited || cost == 0 {
        return Ok((verdict, Change::None));
    }
    let reserved = bands
        .iter()
        .map(|band| band.reserved(cost))
        .collect::<Option<Vec<Band>>>()
        .ok_or(TooDeep)?;
    let change = match stored {
        Some(bucket) => {
            bucket.store(reserved, now_ms);
            Change::Updated
        }
        None => Change::Created(Bucket::created(reserved, now_ms)),
    };
    Ok((verdict, change))
}

impl Bucket {
    /// What `CHARON.RATE` with the stored parameters and `cost` would answer
    /// at `now_ms`.
    pub fn peek(&self, cost: u64, now_ms: i64) -> Verdict {
        let elapsed = token_bucket::elapsed_ms(self.updated_at_ms, now_ms);
        Verdict::of(self.bands.iter().map(|band| band.refilled(elapsed)), cost)
    }

    /// Every band as it stands at `now_ms`: `capacity refill period_ms
    /// tokens reset_after_ms` (`CHARON.INSPECT`). Every value fits: limits
    /// are at most `i64::MAX`, and so are times (saturated, for a limit
    /// stored before the range was narrowed).
    pub fn inspect(&self, now_ms: i64) -> Vec<[i64; 5]> {
        let elapsed = token_bucket::elapsed_ms(self.updated_at_ms, now_ms);
        let field = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
        self.bands
            .iter()
            .map(|band| {
                let band = band.refilled(elapsed);
                let limit = band.limit();
                [
                    field(limit.capacity()),
                    field(limit.refill()),
                    field(limit.period_ms()),
                    band.tokens(),
                    field(band.reset_after_ms()),
                ]
            })
            .collect()
    }

    /// Gives `tokens` back to every band at `now_ms`, never above capacity;
    /// answers the whole tokens remaining (of the band with the fewest).
    pub fn refund(&mut self, tokens: u64, now_ms: i64) -> u64 {
        let elapsed = token_bucket::elapsed_ms(self.updated_at_ms, now_ms);
        for i in 0..self.bands.len() {
            if let Some(band) = self.bands.get(i) {
                self.bands.set(i, band.refilled(elapsed).refunded(tokens));
            }
        }
        self.updated_at_ms = self.updated_at_ms.max(now_ms);
        self.bands
            .iter()
            .map(|band| band.remaining())
            .min()
            .unwrap_or(0)
    }
}

/// A `CHARON.RATE` request against an optional stored bucket, changing
/// nothing: the decision and the bands it would store.
pub fn decide_rate(stored: Option<&Bucket>, limits: &[Limit], cost: u64, now_ms: i64) -> Decision {
    let current = match stored {
        Some(bucket) => token_bucket::under_limits(&bucket.bands_at(now_ms), limits),
        None => limits.iter().copied().map(Band::full).collect(),
    };
    token_bucket::decide(&current, cost)
}

/// Buckets the unit tests of every form share.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::{BandFields, Bucket};

    /// A band of `capacity` refilled 1 per second, at `tokens` and
    /// `fraction` thousandths.
    pub fn fields(capacity: u64, tokens: i64, fraction: u64) -> BandFields {
        BandFields {
            capacity,
            refill: 1,
            period_ms: 1000,
            tokens,
            fraction,
        }
    }

    /// Two equal bands with a fraction, as a stored form must carry them.
    pub fn two_bands() -> Bucket {
        let band = BandFields {
            capacity: 10,
            refill: 3,
            period_ms: 1000,
            tokens: 4,
            fraction: 999,
        };
        Bucket::from_fields(1_700_000_000_000, &[band, band]).unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::fields;
    use super::*;

    #[test]
    fn a_one_band_bucket_is_one_32_byte_value() {
        // One allocation of jemalloc's 32-byte class per bucket.
        assert_eq!(std::mem::size_of::<Bucket>(), 32);
    }

    #[test]
    fn only_small_one_band_buckets_stay_inline() {
        let small = u64::from(u32::MAX);
        let inline = |capacity: u64, period_ms: u64, bands: usize| {
            let band = BandFields {
                capacity,
                refill: 1,
                period_ms,
                tokens: capacity as i64 - 1,
                fraction: period_ms - 1,
            };
            let bucket = Bucket::from_fields(7, &vec![band; bands]).unwrap();
            assert_eq!(bucket.fields().collect::<Vec<_>>(), vec![band; bands]);
            bucket.heap().is_none()
        };
        assert!(inline(small, small, 1));
        assert!(!inline(small + 1, small, 1));
        assert!(!inline(small, small + 1, 1));
        assert!(!inline(10, 1000, 2));
        // A refund keeps the form; a change of limit can move it.
        let mut bucket = Bucket::from_fields(0, &[fields(10, 5, 0)]).unwrap();
        assert_eq!(bucket.refund(2, 0), 7);
        assert!(bucket.heap().is_none());
        let wide = Limit::new(small + 1, 1, 1000).unwrap();
        let (verdict, change) = rate(Some(&mut bucket), &[wide], 1, 0);
        assert_eq!((verdict.remaining, change), (6, Change::Updated));
        assert!(bucket.heap().is_some());
        let (_, change) = rate(Some(&mut bucket), &[Limit::new(10, 1, 1000).unwrap()], 1, 0);
        assert_eq!(change, Change::Updated);
        assert_eq!(bucket, Bucket::from_fields(0, &[fields(10, 5, 0)]).unwrap());
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
    fn rate_in_place_agrees_with_the_pure_decision() {
        let limit = Limit::new(10, 1, 1000).unwrap();
        let other = Limit::new(4, 2, 60_000).unwrap();
        let mut stored: Option<Bucket> = None;
        let mut now = 1_000_000;
        for (step, (limits, cost)) in [
            (vec![limit], 3),
            (vec![limit], 8),
            (vec![other], 1),
            (vec![other, limit], 2),
            (vec![limit], 0),
            (vec![limit], 11),
            (vec![limit], 4),
        ]
        .into_iter()
        .enumerate()
        {
            now += 700 * step as i64 - 900;
            let pure = decide_rate(stored.as_ref(), &limits, cost, now);
            let (verdict, change) = rate(stored.as_mut(), &limits, cost, now);
            assert_eq!(verdict, pure.verdict, "step {step}");
            match change {
                Change::None => assert!(pure.taken.is_none()),
                Change::Created(bucket) => {
                    assert_eq!(Some(bucket.bands().to_vec()), pure.taken);
                    stored = Some(bucket);
                }
                Change::Updated => {
                    assert_eq!(stored.as_ref().map(|b| b.bands().to_vec()), pure.taken)
                }
            }
        }
    }

    proptest::proptest! {
        /// The in-place, allocation-free `rate` (and its one-band path)
        /// decides and stores exactly what the pure decision does.
        #[test]
        fn rate_in_place_matches_pure(steps in proptest::collection::vec(
            (1u64..20, 1u64..20, 1u64..5000, 0u64..25, -3000i64..20_000, 1usize..3, proptest::bool::weighted(0.2)),
            1..40,
        )) {
            let mut stored: Option<Bucket> = None;
            let mut now = 1_000_000i64;
            for (capacity, refill, period, cost, step, bands, wide) in steps {
                now += step;
                // Now and then a capacity past 32 bits: the bucket moves
                // between its small and large forms.
                let capacity = if wide { capacity << 32 } else { capacity };
                let limits: Vec<Limit> = (0..bands as u64)
                    .map(|i| Limit::new(capacity + i, refill, period * (i + 1)).unwrap())
                    .collect();
                let pure = decide_rate(stored.as_ref(), &limits, cost, now);
                let updated_at = stored.as_ref().map(Bucket::updated_at_ms);
                let (verdict, change) = rate(stored.as_mut(), &limits, cost, now);
                proptest::prop_assert_eq!(verdict, pure.verdict);
                match change {
                    Change::None => {
                        proptest::prop_assert!(pure.taken.is_none());
                        proptest::prop_assert_eq!(stored.as_ref().map(Bucket::updated_at_ms), updated_at);
                    }
                    Change::Created(bucket) => {
                        proptest::prop_assert_eq!(Some(bucket.bands().to_vec()), pure.taken);
                        stored = Some(bucket);
                    }
                    Change::Updated => {
                        let bucket = stored.as_ref().unwrap();
                        proptest::prop_assert_eq!(Some(bucket.bands().to_vec()), pure.taken);
                        proptest::prop_assert_eq!(bucket.updated_at_ms(), updated_at.unwrap().max(now));
                    }
                }
                // Always the one form for its bands, whatever path made it.
                if let Some(bucket) = &stored {
                    let fields: Vec<BandFields> = bucket.fields().collect();
                    let rebuilt = Bucket::from_fields(bucket.updated_at_ms(), &fields);
                    proptest::prop_assert_eq!(rebuilt.as_ref(), Ok(bucket));
                    let small = fields.len() == 1 && fields[0].capacity <= u64::from(u32::MAX);
                    proptest::prop_assert_eq!(bucket.heap().is_none(), small);
                }
            }
        }
    }

    #[test]
    fn rate_on_missing_bucket_starts_full() {
        let limit = Limit::new(10, 10, 1000).unwrap();
        let d = decide_rate(None, &[limit], 1, 123);
        assert_eq!(d.verdict.remaining, 9);
        assert_eq!(d.verdict.reset_after_ms, 100);
    }
}
