//! Reservations (`CHARON.RESERVE`, and `CHARON.ACQUIRE` which blocks on
//! the same decision), with no server: a reservation that may not wait is
//! exactly a decision, and turns are first come, first served, each at the
//! first moment the bucket, refilled, covers every earlier grant and this
//! one, checked against an exact model of the level in units.

use charon::bucket::{rate, reserve, Bucket, Change};
use charon::token_bucket::{Limit, Verdict};
use proptest::prelude::*;
use proptest::test_runner::Config;

fn limit() -> impl Strategy<Value = Limit> {
    (1u64..8, 1u64..5, prop_oneof![1u64..3000, Just(60_000u64)])
        .prop_map(|(c, r, p)| Limit::new(c, r, p).unwrap())
}

/// Applies a change the way the server stores it.
fn apply(stored: &mut Option<Bucket>, change: Change) {
    if let Change::Created(bucket) = change {
        *stored = Some(bucket);
    }
}

proptest! {
    #![proptest_config(Config::with_cases(1500))]

    /// `RESERVE ... MAXWAIT 0` answers and changes exactly what `RATE`
    /// does, for random limits, costs and clocks (steps back included),
    /// also on buckets that hold reservations made by earlier steps.
    #[test]
    fn reserve_without_wait_is_rate(
        limits in proptest::collection::vec(limit(), 1..4),
        steps in proptest::collection::vec(
            (0u64..9, -300i64..2500, 0u64..4000, any::<bool>()),
            1..40,
        ),
    ) {
        let mut a: Option<Bucket> = None;
        let mut b: Option<Bucket> = None;
        let mut now = 1_000_000i64;
        for (cost, step, max_wait, reserve_first) in steps {
            now += step;
            // Now and then both buckets take the same reservation, so
            // the comparison also runs below zero.
            if reserve_first {
                let (va, ca) = reserve(a.as_mut(), &limits, cost, max_wait, now).unwrap();
                let (vb, cb) = reserve(b.as_mut(), &limits, cost, max_wait, now).unwrap();
                prop_assert_eq!(va, vb);
                apply(&mut a, ca);
                apply(&mut b, cb);
            }
            let (by_rate, change_a) = rate(a.as_mut(), &limits, cost, now);
            let (by_reserve, change_b) = reserve(b.as_mut(), &limits, cost, 0, now).unwrap();
            prop_assert_eq!(by_rate, by_reserve);
            prop_assert_eq!(
                matches!(change_a, Change::None),
                matches!(change_b, Change::None)
            );
            apply(&mut a, change_a);
            apply(&mut b, change_b);
            prop_assert_eq!(&a, &b);
        }
    }
}

/// The exact model of one band: its level in units (1 / period of a
/// token), below zero while reserved, refilled linearly up to full.
#[derive(Clone, Copy, Debug)]
struct ModelBand {
    capacity: i128,
    refill: i128,
    period: i128,
    units: i128,
}

impl ModelBand {
    fn full(limit: Limit) -> ModelBand {
        let (c, r, p) = (limit.capacity(), limit.refill(), limit.period_ms());
        ModelBand {
            capacity: c.into(),
            refill: r.into(),
            period: p.into(),
            units: i128::from(c) * i128::from(p),
        }
    }

    fn advance(&mut self, ms: i128) {
        self.units = (self.units + self.refill * ms).min(self.capacity * self.period);
    }

    /// The first whole millisecond at which `cost` is covered.
    fn turn(&self, cost: i128) -> Option<i128> {
        if cost > self.capacity {
            return None;
        }
        let mut ms = 0;
        // Found by stepping (no division), then by the smallest multiple.
        let missing = cost * self.period - self.units;
        if missing > 0 {
            ms = missing / self.refill;
            while self.units + self.refill * ms < cost * self.period {
                ms += 1;
            }
        }
        Some(ms)
    }
}

proptest! {
    #![proptest_config(Config::with_cases(1500))]

    /// A line of reservations at increasing times (one band or several):
    /// each turn is when the refilled bucket covers every earlier grant
    /// plus this one, never earlier; for equal costs no later request's
    /// turn comes before an earlier one's; refused ones change nothing.
    #[test]
    fn turns_are_first_come_first_served(
        limits in proptest::collection::vec(limit(), 1..3),
        line in proptest::collection::vec((0u64..9, 0i64..400, 0u64..20_000), 1..40),
    ) {
        let mut stored: Option<Bucket> = None;
        let mut model: Vec<ModelBand> = limits.iter().map(|&l| ModelBand::full(l)).collect();
        let start = 5_000_000i64;
        let mut now = start;
        let mut last_turn_by_cost = std::collections::HashMap::new();
        for (cost, step, max_wait) in line {
            now += step;
            for band in &mut model {
                band.advance(step.into());
            }
            let turns: Option<Vec<i128>> = model.iter().map(|b| b.turn(cost.into())).collect();
            let (verdict, change) = reserve(stored.as_mut(), &limits, cost, max_wait, now).unwrap();
            match turns.map(|t| t.into_iter().max().unwrap()) {
                None => {
                    prop_assert!(verdict.limited);
                    prop_assert_eq!(verdict.retry_after_ms, None);
                }
                Some(wait) if wait <= i128::from(max_wait) => {
                    prop_assert!(!verdict.limited, "{:?}", verdict);
                    let told = verdict.retry_after_ms.map_or(0, i128::from);
                    prop_assert_eq!(told, wait);
                    if cost > 0 {
                        for band in &mut model {
                            band.units -= i128::from(cost) * band.period;
                        }
                    }
                    let turn_at = i128::from(now) + wait;
                    if let Some(&earlier) = last_turn_by_cost.get(&cost) {
                        prop_assert!(turn_at >= earlier, "a later turn came first");
                    }
                    last_turn_by_cost.insert(cost, turn_at);
                }
                Some(wait) => {
                    prop_assert!(verdict.limited);
                    prop_assert_eq!(
                        verdict.retry_after_ms.map(i128::from),
                        Some(wait - i128::from(max_wait))
                    );
                    prop_assert!(matches!(change, Change::None));
                }
            }
            apply(&mut stored, change);
            // The bucket holds the model's level, band for band.
            if let Some(bucket) = &stored {
                let held = bucket.bands_at(now);
                for (band, m) in held.iter().zip(&model) {
                    let units = i128::from(band.tokens()) * m.period
                        + i128::from(band.level().fraction);
                    prop_assert_eq!(units, m.units);
                }
            }
        }
    }
}

/// The README's line: three reservations of one token, ten per second, one
/// at a time: waits of none, 100 and 200 ms; a fourth that may wait only
/// 250 ms is refused with nothing taken.
#[test]
fn three_in_line() {
    let limits = [Limit::new(1, 10, 1000).unwrap()];
    let mut stored = None;
    let now = 1_000_000;
    let mut waits = Vec::new();
    for _ in 0..3 {
        let (verdict, change) = reserve(stored.as_mut(), &limits, 1, 1000, now).unwrap();
        apply(&mut stored, change);
        waits.push(verdict.retry_after_ms);
    }
    assert_eq!(waits, [None, Some(100), Some(200)]);
    let before = stored.clone();
    let (verdict, change) = reserve(stored.as_mut(), &limits, 1, 250, now).unwrap();
    assert_eq!(
        verdict,
        Verdict {
            limited: true,
            limit: 1,
            remaining: 0,
            retry_after_ms: Some(50),
            reset_after_ms: 300,
        }
    );
    assert!(matches!(change, Change::None));
    assert_eq!(stored, before);
    // RATE on a bucket holding reservations is limited until the level is
    // back to the cost; PEEK 0 tells the wait until it is back to zero.
    let (verdict, _) = rate(stored.as_mut(), &limits, 1, now + 250);
    assert_eq!((verdict.limited, verdict.retry_after_ms), (true, Some(50)));
    let bucket = stored.as_ref().unwrap();
    assert_eq!(bucket.peek(0, now).retry_after_ms, Some(200));
    assert_eq!(bucket.inspect(now)[0][3], -2);
}
