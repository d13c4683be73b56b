//! Several limits in one decision, against a band-by-band oracle, with no
//! server: a bucket of N bands must decide exactly as N one-band buckets
//! asked together (allowed only when every one allows; then every one is
//! charged, otherwise none), answer every field from one binding band, and
//! never answer a saturated time for arguments the parser accepts.

use charon::bucket::{decide_rate, rate, Bucket, Change};
use charon::parse::{self, WaitKeyword, MAX_TIME_MS};
use charon::token_bucket::{Band, Limit, Verdict};
use proptest::prelude::*;
use proptest::test_runner::Config;

/// One band alone, kept as its own one-band bucket: the oracle.
#[derive(Clone, Debug)]
struct Oracle {
    bands: Vec<Option<Bucket>>,
    /// The stored time never moves back (a clock step back).
    updated_at: i64,
}

impl Oracle {
    /// What each band alone answers at `now` under the call's limits, and
    /// what it would store.
    fn ask(&self, limits: &[Limit], cost: u64, now: i64) -> Vec<(Verdict, Option<Vec<Band>>)> {
        limits
            .iter()
            .enumerate()
            .map(|(i, &limit)| {
                let stored = self.bands.get(i).and_then(Option::as_ref);
                let d = decide_rate(stored, &[limit], cost, now);
                (d.verdict, d.taken)
            })
            .collect()
    }

    /// The binding band of SPEC 7.1, from the bands' own answers.
    fn binding(answers: &[(Verdict, Option<Vec<Band>>)], cost: u64, limited: bool) -> usize {
        let mut best = 0;
        for (i, (v, _)) in answers.iter().enumerate().skip(1) {
            let held = &answers[best].0;
            let better = if limited {
                match (held.limit < cost, v.limit < cost) {
                    (true, _) => false,
                    (false, true) => true,
                    // A band that allows alone waits 0.
                    _ => v.retry_after_ms.unwrap_or(0) > held.retry_after_ms.unwrap_or(0),
                }
            } else {
                v.remaining < held.remaining
            };
            if better {
                best = i;
            }
        }
        best
    }
}

fn limit() -> impl Strategy<Value = Limit> {
    // Periods of seconds to hours, so steps of milliseconds to minutes
    // land on every side of a boundary.
    (
        1u64..12,
        1u64..6,
        prop_oneof![1u64..5000, Just(3_600_000u64)],
    )
        .prop_map(|(c, r, p)| Limit::new(c, r, p).unwrap())
}

proptest! {
    #![proptest_config(Config::with_cases(1500))]

    /// A multi-band bucket decides, answers and stores exactly as its bands
    /// asked one by one, all or nothing.
    #[test]
    fn bands_decide_all_or_nothing(
        base in proptest::collection::vec(limit(), 1..5),
        steps in proptest::collection::vec(
            (0u64..8, -500i64..4000, 0usize..5, 0usize..3, any::<bool>()),
            1..40,
        ),
    ) {
        let mut stored: Option<Bucket> = None;
        let mut oracle = Oracle { bands: Vec::new(), updated_at: 0 };
        let mut now = 1_000_000i64;
        for (cost, step, drop_or_add, change, retune) in steps {
            now += step;
            // The call's limits: the base, now and then one band fewer or
            // more, or one band's parameters changed.
            let mut limits = base.clone();
            match drop_or_add {
                0 if limits.len() > 1 => { limits.pop(); }
                1 if limits.len() < 16 => limits.push(Limit::new(3, 1, 7000).unwrap()),
                _ => {}
            }
            if retune {
                let i = change % limits.len();
                let l = limits[i];
                limits[i] = Limit::new(l.capacity() + 1, l.refill(), l.period_ms() * 2).unwrap();
            }
            let answers = oracle.ask(&limits, cost, now);
            let limited = answers.iter().any(|(v, _)| v.limited);
            let b = Oracle::binding(&answers, cost, limited);
            let (verdict, change) = rate(stored.as_mut(), &limits, cost, now);
            prop_assert_eq!(verdict.limited, limited);
            prop_assert_eq!(verdict, answers[b].0, "binding band {}", b);
            match change {
                Change::None => prop_assert!(limited || cost == 0),
                Change::Created(bucket) => stored = Some(bucket),
                Change::Updated => {}
            }
            if !limited && cost > 0 {
                // Every band charged: the oracle stores each band's own.
                oracle.updated_at = oracle.updated_at.max(now);
                let at = oracle.updated_at;
                oracle.bands = answers
                    .iter()
                    .map(|(_, taken)| {
                        let bands = taken.clone().expect("an allowed band takes");
                        Some(bucket_of(&bands, at))
                    })
                    .collect();
            }
            // Same bands, band for band.
            if let Some(bucket) = &stored {
                let mine = bucket.bands();
                let theirs: Vec<Band> = oracle
                    .bands
                    .iter()
                    .map(|b| b.as_ref().unwrap().bands()[0])
                    .collect();
                prop_assert_eq!(mine, theirs);
            }
        }
    }
}

/// A one-band bucket holding `bands[0]` as of `now`.
fn bucket_of(bands: &[Band], now: i64) -> Bucket {
    let band = charon::bucket::BandFields::of(&bands[0]);
    Bucket::from_fields(now, &[band]).unwrap()
}

/// A number across the whole accepted range, often near an edge.
fn wide() -> impl Strategy<Value = u64> {
    prop_oneof![
        1u64..100,
        1u64..=i64::MAX as u64,
        (0u32..63).prop_map(|bits| 1u64 << bits),
        (1u32..63).prop_map(|bits| (1u64 << bits) - 1),
        Just(i64::MAX as u64),
    ]
}

proptest! {
    #![proptest_config(Config::with_cases(4000))]

    /// Whatever the parser accepts is answered exactly: no time in any
    /// reply reaches the saturation value, empty or full, whatever the cost.
    #[test]
    fn accepted_limits_never_saturate(
        capacity in wide(),
        refill in wide(),
        period in wide(),
        cost in wide(),
        taken in wide(),
        elapsed in wide(),
    ) {
        let text = |n: u64| n.to_string();
        let (c, r, p) = (text(capacity), text(refill), text(period));
        let Ok(limit) = parse::limit(c.as_bytes(), r.as_bytes(), p.as_bytes()) else {
            // Refused: only because refilling it would take too long.
            let fill = (u128::from(capacity) * u128::from(period)).div_ceil(u128::from(refill));
            prop_assert!(fill > u128::from(MAX_TIME_MS));
            return Ok(());
        };
        let cost = cost % (capacity + 1);
        let words = [c.as_bytes(), r.as_bytes(), p.as_bytes()];
        let request = parse::request(3, |i| words[i], WaitKeyword::None).unwrap();
        prop_assert_eq!(request.limits.as_slice(), &[limit]);
        let empty = Band::full(limit).taken(taken % (capacity + 1)).refilled(elapsed % 1000);
        for band in [Band::full(limit), empty] {
            let bucket = bucket_of(&[band], 1_800_000_000_000);
            for cost in [cost, 1, capacity, 0] {
                let v = bucket.peek(cost, 1_800_000_000_000);
                prop_assert!(v.reset_after_ms <= MAX_TIME_MS);
                prop_assert!(v.retry_after_ms.unwrap_or(0) <= MAX_TIME_MS);
                // And exactly: the retry is the first moment it is allowed.
                if let Some(wait) = v.retry_after_ms {
                    prop_assert!(band.refilled(wait).allows(cost));
                    prop_assert!(!band.refilled(wait - 1).allows(cost));
                }
            }
            prop_assert!(bucket.full_at_ms() < i64::MAX);
        }
    }
}
