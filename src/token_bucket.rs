//! The token bucket, with no Redis in it.
//!
//! Everything here is exact integer arithmetic on explicit times, so it can be
//! tested (and fuzzed) without a server. A band's level is kept in units of
//! `1 / period_ms` of a token: refilling `refill` tokens per `period_ms`
//! milliseconds then adds exactly `refill` units per millisecond, and no
//! rounding ever happens while time passes.
//!
//! A level may be below zero: tokens taken ahead of time by reservations
//! (`CHARON.RESERVE`), which refill pays back before anything else.
//!
//! Bounds: every parameter is in `1..=i64::MAX` and a level's whole tokens
//! in `-i64::MAX..=capacity`, so a level in units is within `±2^126`, and
//! every sum below (`refill * elapsed`, a cost, a refund) fits in an `i128`.
//! Times reported back saturate at `i64::MAX` ms (292 million years), the
//! largest value a Redis integer reply can carry; the parser refuses limits
//! that could reach it (`parse::MAX_TIME_MS`).

use std::num::{NonZeroU32, NonZeroU64};

/// The largest value any parameter, cost or refund may take.
pub const MAX_PARAM: u64 = i64::MAX as u64;

/// The parameters of one band: `capacity` tokens at most, `refill` tokens
/// added per `period_ms`, accrued continuously.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Limit {
    // Never zero: the niche lets a bucket keep its one band inline at no
    // extra size (see `bucket::Bands`).
    capacity: NonZeroU64,
    refill: u64,
    period_ms: u64,
}

impl Limit {
    /// A limit, or `None` when a parameter is outside `1..=MAX_PARAM`.
    pub const fn new(capacity: u64, refill: u64, period_ms: u64) -> Option<Limit> {
        if capacity == 0 || refill == 0 || period_ms == 0 {
            return None;
        }
        if capacity > MAX_PARAM || refill > MAX_PARAM || period_ms > MAX_PARAM {
            return None;
        }
        match NonZeroU64::new(capacity) {
            Some(capacity) => Some(Limit {
                capacity,
                refill,
                period_ms,
            }),
            None => None,
        }
    }

    /// A limit of 32-bit parameters: always in range.
    pub fn small(capacity: NonZeroU32, refill: NonZeroU32, period_ms: NonZeroU32) -> Limit {
        Limit {
            capacity: capacity.into(),
            refill: refill.get().into(),
            period_ms: period_ms.get().into(),
        }
    }

    pub const fn capacity(&self) -> u64 {
        self.capacity.get()
    }

    pub const fn refill(&self) -> u64 {
        self.refill
    }

    pub const fn period_ms(&self) -> u64 {
        self.period_ms
    }

    /// The level of a full band, in units of `1 / period_ms` token.
    fn full_units(&self) -> i128 {
        self.capacity() as i128 * self.period_ms as i128
    }

    fn units(&self, tokens: i64) -> i128 {
        tokens as i128 * self.period_ms as i128
    }

    fn cost_units(&self, cost: u64) -> i128 {
        cost as i128 * self.period_ms as i128
    }

    /// Milliseconds until `units` more units have accrued, rounded up.
    #[inline]
    fn ms_to_accrue(&self, units: u128) -> u64 {
        let (quotient, remainder) = div_rem(units, self.refill);
        saturate_ms(quotient + u128::from(remainder != 0))
    }
}

/// `dividend / divisor` and `dividend % divisor`. Real-world levels fit in
/// 64 bits, where division is several times cheaper than in 128: take that
/// path when it is exact.
#[inline]
fn div_rem(dividend: u128, divisor: u64) -> (u128, u64) {
    match u64::try_from(dividend) {
        Ok(small) => ((small / divisor).into(), small % divisor),
        Err(_) => {
            let divisor = u128::from(divisor);
            // The remainder is below the divisor, so it fits in 64 bits.
            (dividend / divisor, (dividend % divisor) as u64)
        }
    }
}

fn saturate_ms(ms: u128) -> u64 {
    ms.min(MAX_PARAM as u128) as u64
}

/// The deepest a band may go below zero, in whole tokens.
pub const MIN_TOKENS: i64 = -i64::MAX;

/// Tokens held by a band: `tokens + fraction / period_ms`, with
/// `fraction < period_ms`, and `fraction == 0` when the band is full.
/// `tokens` is rounded down: negative while reservations are outstanding
/// (-1.5 tokens is `tokens` -2 and half a token of `fraction`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Level {
    pub tokens: i64,
    pub fraction: u64,
}

/// One band: its parameters and how many tokens it holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Band {
    limit: Limit,
    level: Level,
}

impl Band {
    /// A band holding `capacity` tokens.
    pub const fn full(limit: Limit) -> Band {
        Band {
            limit,
            level: Level {
                // At most `MAX_PARAM`, which is `i64::MAX`.
                tokens: limit.capacity() as i64,
                fraction: 0,
            },
        }
    }

    /// A band, or `None` when the level is impossible for the limit.
    pub fn new(limit: Limit, level: Level) -> Option<Band> {
        let capacity = limit.capacity() as i64;
        let valid = level.fraction < limit.period_ms
            && level.tokens >= MIN_TOKENS
            && (level.tokens < capacity || (level.tokens == capacity && level.fraction == 0));
        valid.then_some(Band { limit, level })
    }

    /// A band from a level known to be valid for `limit` (one read back
    /// from a `Band`); checked in debug builds.
    pub fn from_valid(limit: Limit, level: Level) -> Band {
        debug_assert!(Band::new(limit, level).is_some());
        Band { limit, level }
    }

    pub const fn limit(&self) -> Limit {
        self.limit
    }

    pub const fn level(&self) -> Level {
        self.level
    }

    /// Whole tokens held (rounded down; negative while reserved).
    pub const fn tokens(&self) -> i64 {
        self.level.tokens
    }

    /// Whole tokens held, as a reply says them: never below zero.
    #[inline]
    pub fn remaining(&self) -> u64 {
        self.level.tokens.max(0).unsigned_abs()
    }

    #[inline]
    pub fn is_full(&self) -> bool {
        self.level.tokens == self.limit.capacity() as i64
    }

    /// Whether reservations are outstanding (the level is below zero).
    pub fn is_reserved(&self) -> bool {
        self.level.tokens < 0
    }

    #[inline]
    fn units(&self) -> i128 {
        self.limit.units(self.level.tokens) + self.level.fraction as i128
    }

    /// The level in units when it is not below zero: the common case, in
    /// the unsigned arithmetic that is cheapest.
    #[inline]
    fn unsigned_units(&self) -> Option<u128> {
        let tokens = u64::try_from(self.level.tokens).ok()?;
        Some(tokens as u128 * self.limit.period_ms as u128 + self.level.fraction as u128)
    }

    /// `with_units` for a level that is not below zero.
    #[inline]
    fn with_unsigned_units(limit: Limit, units: u128) -> Band {
        let full = limit.capacity() as u128 * limit.period_ms as u128;
        let (tokens, fraction) = div_rem(units.min(full), limit.period_ms);
        Band {
            limit,
            // Fits: at most the capacity.
            level: Level {
                tokens: tokens as i64,
                fraction,
            },
        }
    }

    /// The band at `units`, capped at full. The caller keeps `units` at or
    /// above `MIN_TOKENS` whole tokens.
    #[inline]
    fn with_units(limit: Limit, units: i128) -> Band {
        let units = units.min(limit.full_units());
        let (tokens, fraction) = match u128::try_from(units) {
            Ok(units) => {
                let (quotient, fraction) = div_rem(units, limit.period_ms);
                // Fits: units <= capacity * period.
                (quotient as i64, fraction)
            }
            Err(_) => {
                let period = limit.period_ms as i128;
                // Fits: the caller keeps the tokens at or above MIN_TOKENS;
                // the remainder is below the period.
                (
                    units.div_euclid(period) as i64,
                    units.rem_euclid(period) as u64,
                )
            }
        };
        Band {
            limit,
            level: Level { tokens, fraction },
        }
    }

    /// The band after `elapsed_ms` of refill, never above capacity.
    #[inline]
    pub fn refilled(&self, elapsed_ms: u64) -> Band {
        if elapsed_ms == 0 || self.is_full() {
            return *self;
        }
        // Below 2^127: both factors are below 2^64, one below 2^63.
        let added = self.limit.refill as u128 * elapsed_ms as u128;
        match self.unsigned_units() {
            Some(units) => Band::with_unsigned_units(self.limit, units.saturating_add(added)),
            None => Band::with_units(self.limit, self.units().saturating_add(added as i128)),
        }
    }

    /// The band under other parameters, with the tokens it holds carried
    /// over and clamped to the new capacity. A fraction of a token is kept
    /// as far as the new period can express it (rounded down, so a change
    /// of parameters never creates tokens).
    #[inline]
    pub fn with_limit(&self, limit: Limit) -> Band {
        if limit == self.limit {
            return *self;
        }
        let old_period = self.limit.period_ms as u128;
        let fraction = self.level.fraction as u128 * limit.period_ms as u128 / old_period;
        // Below the new period, so it fits.
        Band::with_units(limit, limit.units(self.level.tokens) + fraction as i128)
    }

    /// Whether `cost` tokens can be taken now.
    #[inline]
    pub fn allows(&self, cost: u64) -> bool {
        i128::from(cost) <= i128::from(self.level.tokens)
    }

    /// The band after taking `cost` tokens; the caller checks `allows`.
    #[inline]
    pub fn taken(&self, cost: u64) -> Band {
        debug_assert!(self.allows(cost));
        Band {
            limit: self.limit,
            level: Level {
                // Fits: at most `tokens`, at least 0.
                tokens: self.level.tokens - cost as i64,
                fraction: self.level.fraction,
            },
        }
    }

    /// The band after taking `cost` tokens ahead of time, which may leave it
    /// below zero (a reservation); `None` when that would go below
    /// `MIN_TOKENS`.
    pub fn reserved(&self, cost: u64) -> Option<Band> {
        let tokens = i128::from(self.level.tokens) - i128::from(cost);
        let tokens = i64::try_from(tokens).ok().filter(|&t| t >= MIN_TOKENS)?;
        Some(Band {
            limit: self.limit,
            level: Level {
                tokens,
                fraction: self.level.fraction,
            },
        })
    }

    /// The band after `tokens` are given back, never above capacity.
    pub fn refunded(&self, tokens: u64) -> Band {
        Band::with_units(
            self.limit,
            self.units().saturating_add(self.limit.cost_units(tokens)),
        )
    }

    /// Milliseconds until `cost` tokens are held (0 when they are now), or
    /// `None` when `cost` exceeds the capacity and never will be.
    #[inline]
    pub fn wait_for(&self, cost: u64) -> Option<u64> {
        if cost > self.limit.capacity() {
            return None;
        }
        let cost_units = cost as u128 * self.limit.period_ms as u128;
        let needed = match self.unsigned_units() {
            Some(units) => cost_units.saturating_sub(units),
            // Below 2^127: the cost and the depth are each below 2^126 units.
            None => (cost_units as i128 - self.units()).unsigned_abs(),
        };
        Some(self.limit.ms_to_accrue(needed))
    }

    /// Milliseconds until the band is full, rounded up; 0 when full.
    #[inline]
    pub fn reset_after_ms(&self) -> u64 {
        let missing = match self.unsigned_units() {
            Some(units) => self.limit.capacity() as u128 * self.limit.period_ms as u128 - units,
            None => (self.limit.full_units() - self.units()).unsigned_abs(),
        };
        self.limit.ms_to_accrue(missing)
    }
}

/// Time that counts as passed between two clock readings: a clock that
/// stepped backwards counts as no time at all.
pub fn elapsed_ms(since_ms: i64, now_ms: i64) -> u64 {
    if now_ms > since_ms {
        now_ms.abs_diff(since_ms)
    } else {
        0
    }
}

/// What one request is told.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub limited: bool,
    /// The capacity of the binding band.
    pub limit: u64,
    /// Whole tokens left after this request.
    pub remaining: u64,
    /// `None` when allowed or never allowable; else ms until allowable.
    pub retry_after_ms: Option<u64>,
    pub reset_after_ms: u64,
}

impl Verdict {
    /// The verdict for a request of `cost` against `bands` as they stand
    /// before it: allowed when every band holds `cost`. Every field comes
    /// from one band, the binding one, so that the reply makes one coherent
    /// set of HTTP headers (see `binding`). Bands are given as an iterator
    /// so that callers can compute them on the fly, without a buffer.
    #[inline]
    pub fn of(bands: impl Iterator<Item = Band> + Clone, cost: u64) -> Verdict {
        if bands.clone().all(|band| band.allows(cost)) {
            let band = fewest_tokens(bands);
            let after = if cost > 0 { band.taken(cost) } else { band };
            Verdict {
                limited: false,
                limit: after.limit.capacity(),
                remaining: after.remaining(),
                retry_after_ms: None,
                reset_after_ms: after.reset_after_ms(),
            }
        } else {
            let (band, wait) = longest_wait(bands, cost);
            Verdict {
                limited: true,
                limit: band.limit.capacity(),
                remaining: band.remaining(),
                retry_after_ms: wait,
                reset_after_ms: band.reset_after_ms(),
            }
        }
    }
}

/// The band left with the fewest whole tokens (the same cost comes off
/// every band, so before the charge is as good), the first of equals.
#[inline]
fn fewest_tokens(bands: impl Iterator<Item = Band>) -> Band {
    let mut best: Option<Band> = None;
    for band in bands {
        if best.is_none_or(|held| band.tokens() < held.tokens()) {
            best = Some(band);
        }
    }
    best.expect("a bucket has at least one band")
}

/// The first band that can never hold `cost` (its wait is `None`), else the
/// band that waits longest, the first of equals; with its wait.
#[inline]
fn longest_wait(bands: impl Iterator<Item = Band>, cost: u64) -> (Band, Option<u64>) {
    let mut best: Option<(Band, Option<u64>)> = None;
    for band in bands {
        let wait = band.wait_for(cost);
        let better = match (best, wait) {
            (None, _) => true,
            (Some((_, None)), _) => false,
            (Some(_), None) => true,
            (Some((_, Some(held))), Some(wait)) => wait > held,
        };
        if better {
            best = Some((band, wait));
            if wait.is_none() {
                break;
            }
        }
    }
    best.expect("a bucket has at least one band")
}

impl Verdict {
    /// What a reservation of `cost` that may wait up to `max_wait_ms` is
    /// told, against `bands` as they stand before it. Its turn is the first
    /// moment every band holds `cost` (reservations already granted count:
    /// they are below zero). Granted (`limited` false) when the turn is at
    /// most `max_wait_ms` away, with `retry_after_ms` the wait until the
    /// turn (`None`: now); refused otherwise, with `retry_after_ms` the
    /// time until the same reservation would be granted (`None`: never).
    /// A turn that is now answers exactly what `Verdict::of` answers.
    pub fn of_reservation(
        bands: impl Iterator<Item = Band> + Clone,
        cost: u64,
        max_wait_ms: u64,
    ) -> Verdict {
        let turn = bands.clone().try_fold(0, |turn: u64, band| {
            band.wait_for(cost).map(|wait| wait.max(turn))
        });
        let wait = match turn {
            // Now, or never: what a decision answers.
            Some(0) | None => return Verdict::of(bands, cost),
            Some(wait) => wait,
        };
        // The band that waits longest (ties: the first).
        let band = binding(bands, cost, true);
        if wait <= max_wait_ms {
            let after = band.reserved(cost).unwrap_or(band);
            Verdict {
                limited: false,
                limit: band.limit.capacity(),
                remaining: after.remaining(),
                retry_after_ms: Some(wait),
                reset_after_ms: after.reset_after_ms(),
            }
        } else {
            Verdict {
                limited: true,
                limit: band.limit.capacity(),
                remaining: band.remaining(),
                retry_after_ms: Some(wait - max_wait_ms),
                reset_after_ms: band.reset_after_ms(),
            }
        }
    }
}

/// The band a reply is taken from. Limited: a band that can never hold
/// `cost` (the first), else the band that waits longest; allowed: the band
/// left with the fewest whole tokens. Ties go to the first in call order.
pub fn binding(bands: impl Iterator<Item = Band>, cost: u64, limited: bool) -> Band {
    if limited {
        longest_wait(bands, cost).0
    } else {
        fewest_tokens(bands)
    }
}

/// The result of a request against a bucket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub verdict: Verdict,
    /// The bands to store when tokens were taken; `None` when nothing
    /// changed (limited, or cost 0), so nothing is written or replicated.
    pub taken: Option<Vec<Band>>,
}

/// Whether a request with this verdict and cost takes tokens.
pub fn takes(verdict: &Verdict, cost: u64) -> bool {
    !verdict.limited && cost > 0
}

/// Bands brought to `now`: refilled under their stored parameters for the
/// time since `updated_at_ms`.
pub fn refill_all(bands: &[Band], updated_at_ms: i64, now_ms: i64) -> Vec<Band> {
    let elapsed = elapsed_ms(updated_at_ms, now_ms);
    bands.iter().map(|band| band.refilled(elapsed)).collect()
}

/// Band `i` under the call's limits: it keeps the tokens of `current` band
/// `i` (clamped); a band with no current counterpart starts full.
#[inline]
pub fn under_limit(current: Option<Band>, limit: Limit) -> Band {
    match current {
        Some(band) => band.with_limit(limit),
        None => Band::full(limit),
    }
}

/// Bands as they stand under the call's limits (see `under_limit`).
pub fn under_limits(current: &[Band], limits: &[Limit]) -> Vec<Band> {
    limits
        .iter()
        .enumerate()
        .map(|(i, &limit)| under_limit(current.get(i).copied(), limit))
        .collect()
}

/// Decides a request of `cost` tokens against `bands` (already brought to
/// now and to the call's limits).
pub fn decide(bands: &[Band], cost: u64) -> Decision {
    assert!(!bands.is_empty(), "a bucket has at least one band");
    let verdict = Verdict::of(bands.iter().copied(), cost);
    let taken = takes(&verdict, cost).then(|| bands.iter().map(|band| band.taken(cost)).collect());
    Decision { verdict, taken }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(capacity: u64, refill: u64, period_ms: u64) -> Limit {
        Limit::new(capacity, refill, period_ms).unwrap()
    }

    #[test]
    fn limits_reject_zero_and_out_of_range() {
        assert!(Limit::new(0, 1, 1).is_none());
        assert!(Limit::new(1, 0, 1).is_none());
        assert!(Limit::new(1, 1, 0).is_none());
        assert!(Limit::new(MAX_PARAM + 1, 1, 1).is_none());
        assert!(Limit::new(MAX_PARAM, MAX_PARAM, MAX_PARAM).is_some());
    }

    #[test]
    fn fresh_bucket_allows_and_counts_down() {
        let bands = [Band::full(limit(10, 10, 1000))];
        let d = decide(&bands, 1);
        assert_eq!(
            d.verdict,
            Verdict {
                limited: false,
                limit: 10,
                remaining: 9,
                retry_after_ms: None,
                reset_after_ms: 100
            }
        );
    }

    #[test]
    fn refill_is_continuous_and_exact() {
        let band = Band::full(limit(10, 10, 1000)).taken(10);
        assert_eq!(band.refilled(500).tokens(), 5);
        assert_eq!(band.refilled(99).tokens(), 0);
        assert_eq!(band.refilled(100).tokens(), 1);
        assert!(band.refilled(1000).is_full());
        assert!(band.refilled(u64::MAX).is_full());
    }

    #[test]
    fn limited_request_reports_exact_wait() {
        // 3 tokens per 1000 ms: one token every 333.33 ms.
        let band = Band::full(limit(3, 3, 1000)).taken(3);
        let d = decide(&[band], 1);
        assert!(d.verdict.limited);
        assert_eq!(d.verdict.retry_after_ms, Some(334));
        assert_eq!(d.verdict.reset_after_ms, 1000);
        assert!(d.taken.is_none());
        assert!(!band.refilled(333).allows(1));
        assert!(band.refilled(334).allows(1));
    }

    #[test]
    fn cost_above_capacity_never_allowed() {
        let d = decide(&[Band::full(limit(5, 1, 1000))], 6);
        assert!(d.verdict.limited);
        assert_eq!(d.verdict.retry_after_ms, None);
        assert_eq!(d.verdict.remaining, 5);
        assert!(d.taken.is_none());
    }

    #[test]
    fn cost_zero_changes_nothing() {
        let band = Band::full(limit(5, 1, 1000)).taken(2);
        let d = decide(&[band], 0);
        assert!(!d.verdict.limited);
        assert_eq!(d.verdict.remaining, 3);
        assert!(d.taken.is_none());
    }

    #[test]
    fn parameter_change_clamps_and_keeps_fraction() {
        let band = Band::full(limit(10, 1, 1000)).taken(10).refilled(2500);
        assert_eq!(
            band.level(),
            Level {
                tokens: 2,
                fraction: 500
            }
        );
        let smaller = band.with_limit(limit(1, 1, 1000));
        assert_eq!(
            smaller.level(),
            Level {
                tokens: 1,
                fraction: 0
            }
        );
        let finer = band.with_limit(limit(10, 1, 10));
        assert_eq!(
            finer.level(),
            Level {
                tokens: 2,
                fraction: 5
            }
        );
        // A fraction the new period cannot express is rounded down.
        let coarse = band.with_limit(limit(10, 1, 1));
        assert_eq!(
            coarse.level(),
            Level {
                tokens: 2,
                fraction: 0
            }
        );
    }

    #[test]
    fn extreme_parameters_do_not_overflow() {
        let l = limit(MAX_PARAM, 1, MAX_PARAM);
        let band = Band::full(l).taken(MAX_PARAM);
        assert_eq!(band.reset_after_ms(), MAX_PARAM);
        assert_eq!(band.refilled(MAX_PARAM).tokens(), 1);
        let l = limit(MAX_PARAM, MAX_PARAM, 1);
        assert!(Band::full(l).taken(1).refilled(u64::MAX).is_full());
        assert_eq!(Band::full(l).refunded(MAX_PARAM).remaining(), MAX_PARAM);
    }

    #[test]
    fn clock_steps_back_count_as_zero() {
        assert_eq!(elapsed_ms(1000, 500), 0);
        assert_eq!(elapsed_ms(i64::MIN, i64::MAX), u64::MAX);
        assert_eq!(elapsed_ms(500, 1000), 500);
    }

    #[test]
    fn refund_never_exceeds_capacity() {
        let band = Band::full(limit(10, 1, 1000)).taken(3);
        assert_eq!(band.refunded(2).tokens(), 9);
        assert!(band.refunded(100).is_full());
        assert_eq!(band.refunded(100).level().fraction, 0);
    }

    #[test]
    fn band_validation() {
        let l = limit(10, 1, 1000);
        assert!(Band::new(
            l,
            Level {
                tokens: 10,
                fraction: 0
            }
        )
        .is_some());
        assert!(Band::new(
            l,
            Level {
                tokens: 10,
                fraction: 1
            }
        )
        .is_none());
        assert!(Band::new(
            l,
            Level {
                tokens: 11,
                fraction: 0
            }
        )
        .is_none());
        assert!(Band::new(
            l,
            Level {
                tokens: 0,
                fraction: 1000
            }
        )
        .is_none());
        assert!(Band::new(
            l,
            Level {
                tokens: 9,
                fraction: 999
            }
        )
        .is_some());
    }

    #[test]
    fn multi_band_takes_from_every_band() {
        let bands = under_limits(&[], &[limit(10, 10, 1000), limit(2, 2, 60_000)]);
        let d = decide(&bands, 1);
        assert_eq!(d.verdict.remaining, 1);
        assert_eq!(d.verdict.limit, 2);
        let after = d.taken.unwrap();
        let d = decide(&after, 2);
        assert!(d.verdict.limited);
        assert_eq!(d.verdict.retry_after_ms, Some(30_000));
        assert_eq!((d.verdict.limit, d.verdict.remaining), (2, 1));
        assert_eq!(d.verdict.reset_after_ms, 30_000);
    }

    #[test]
    fn the_reply_comes_from_one_binding_band() {
        // Allowed: the band left with the fewest tokens, its own reset.
        let second = limit(10, 10, 1000);
        let day = limit(1000, 1000, 86_400_000);
        let d = decide(&[Band::full(second), Band::full(day)], 1);
        assert_eq!(
            d.verdict,
            Verdict {
                limited: false,
                limit: 10,
                remaining: 9,
                retry_after_ms: None,
                reset_after_ms: 100
            }
        );
        // Limited: the longest wait, ties to the first in call order.
        let a = Band::full(limit(5, 1, 1000)).taken(5);
        let b = Band::full(limit(7, 2, 2000)).taken(7);
        let d = decide(&[a, b], 1);
        assert_eq!((d.verdict.limit, d.verdict.retry_after_ms), (5, Some(1000)));
        let d = decide(&[b, a], 1);
        assert_eq!((d.verdict.limit, d.verdict.retry_after_ms), (7, Some(1000)));
        // A band that can never hold the cost binds first.
        let small = Band::full(limit(2, 1, 1000));
        let d = decide(&[a, small], 3);
        assert_eq!(
            (
                d.verdict.limit,
                d.verdict.remaining,
                d.verdict.retry_after_ms
            ),
            (2, 2, None)
        );
    }
}
