//! Property tests of `CL.THROTTLE`'s core (`cell`), with no server, against
//! an exact model of redis-cell's algorithm (GCRA) written from its
//! definition:
//!
//! - the emission interval is `T = period / count_per_period`, the delay
//!   tolerance `tau = T * (max_burst + 1)`, and a key holds one number, the
//!   theoretical arrival time TAT (a missing key: TAT = now);
//! - a request of `quantity` at `now` is allowed when
//!   `max(TAT, now) + quantity * T - now <= tau`; then TAT moves there;
//! - `remaining = floor((tau - ttl) / T)`, `reset_after = ttl`, where `ttl`
//!   is the new TAT minus now (allowed) or TAT minus now (limited);
//!   `retry_after` is the time until the request would be allowed, or -1
//!   when allowed or when `quantity * T > tau`;
//! - times are answered in whole seconds, rounded up.
//!
//! redis-cell itself computes `T` in truncated nanoseconds and `remaining`
//! in floating point (which is where its errors come from); the model keeps
//! every time exact by counting in units of `1 / count_per_period` ns, so
//! `T` is exactly `period_ns` units.
//!
//! The core is driven the way the server drives it: `cell::request` parses
//! the arguments, `bucket::rate` decides on the stored bucket at the
//! server's millisecond clock, `cell::reply` answers, and `cell::convert`
//! turns a redis-cell key into a bucket.

use charon::bucket::{self, Bucket, Change};
use charon::cell::{self, Conversion, Throttle};
use charon::parse::{self, WaitKeyword};
use proptest::prelude::*;
use proptest::test_runner::Config;

const NS_PER_MS: i128 = 1_000_000;
const NS_PER_S: i128 = 1_000_000_000;

/// redis-cell's parameters.
#[derive(Clone, Copy, Debug)]
struct Params {
    max_burst: u64,
    count: u64,
    period_s: u64,
}

impl Params {
    fn capacity(&self) -> i128 {
        i128::from(self.max_burst) + 1
    }

    /// `T`, in units of 1 / count ns.
    fn t(&self) -> i128 {
        i128::from(self.period_s) * NS_PER_S
    }

    /// `tau`, in the same units.
    fn tau(&self) -> i128 {
        self.t() * self.capacity()
    }

    /// Nanoseconds in units of 1 / count ns.
    fn units(&self, ns: i128) -> i128 {
        ns * i128::from(self.count)
    }

    /// Units as whole seconds, rounded up.
    fn seconds_up(&self, units: i128) -> i64 {
        let per_second = NS_PER_S * i128::from(self.count);
        i64::try_from(-(-units).div_euclid(per_second)).unwrap()
    }

    fn throttle(&self, quantity: u64) -> Throttle {
        let words = [
            self.max_burst.to_string(),
            self.count.to_string(),
            self.period_s.to_string(),
            quantity.to_string(),
        ];
        cell::request(
            words[0].as_bytes(),
            words[1].as_bytes(),
            words[2].as_bytes(),
            Some(words[3].as_bytes()),
        )
        .unwrap()
    }
}

/// The exact GCRA: a key's TAT, in units of 1 / count ns.
struct Gcra {
    params: Params,
    tat: Option<i128>,
}

impl Gcra {
    fn new(params: Params) -> Gcra {
        Gcra { params, tat: None }
    }

    /// A redis-cell key whose state is `tat_ns`.
    fn with_tat(params: Params, tat_ns: u64) -> Gcra {
        Gcra {
            params,
            tat: Some(params.units(i128::from(tat_ns))),
        }
    }

    /// Tokens held at `now_ns`, exactly, as `(numerator, denominator)`.
    fn tokens(&self, now_ns: i128) -> (i128, i128) {
        let p = self.params;
        let now = p.units(now_ns);
        let owed = self.tat.map_or(0, |tat| (tat - now).max(0));
        (p.tau() - owed, p.t())
    }

    /// `CL.THROTTLE` at `now_ns`: the reply, and the key's state updated.
    fn throttle(&mut self, quantity: u64, now_ns: i128) -> [i64; 5] {
        let p = self.params;
        let now = p.units(now_ns);
        let tat = self.tat.unwrap_or(now).max(now);
        let increment = i128::from(quantity) * p.t();
        let new_tat = tat + increment;
        let allowed = new_tat - now <= p.tau();
        let (ttl, retry) = if allowed {
            if quantity > 0 {
                self.tat = Some(new_tat);
            }
            (new_tat - now, -1)
        } else {
            let retry = if increment <= p.tau() {
                p.seconds_up(new_tat - p.tau() - now)
            } else {
                -1
            };
            (tat - now, retry)
        };
        let remaining = ((p.tau() - ttl).max(0)).div_euclid(p.t());
        [
            i64::from(!allowed),
            i64::try_from(p.capacity()).unwrap(),
            i64::try_from(remaining).unwrap(),
            retry,
            p.seconds_up(ttl),
        ]
    }
}

/// Charon's side: the stored bucket, decided on as the server does.
#[derive(Default)]
struct Charon {
    stored: Option<Bucket>,
}

impl Charon {
    fn throttle(&mut self, throttle: &Throttle, now_ms: i64) -> [i64; 5] {
        let (verdict, change) = bucket::rate(
            self.stored.as_mut(),
            &[throttle.limit],
            throttle.quantity,
            now_ms,
        );
        if let Change::Created(bucket) = change {
            self.stored = Some(bucket);
        }
        cell::reply(&verdict)
    }
}

fn params() -> impl Strategy<Value = Params> {
    (0u64..40, 1u64..200, 1u64..4000).prop_map(|(max_burst, count, period_s)| Params {
        max_burst,
        count,
        period_s,
    })
}

/// The replies of redis-cell's own test table (its `it_rate_limits`: a
/// limit of 5, 1 token per second), with its exact durations answered in
/// whole seconds rounded up: `(ms after start, quantity, limited,
/// remaining, retry_after_ms, reset_after_ms)`.
const REDIS_CELL_TABLE: [(i64, u64, bool, i64, i64, i64); 15] = [
    // A request larger than the bucket is never allowed.
    (0, 6, true, 5, -1, 0),
    (0, 1, false, 4, -1, 1000),
    (0, 1, false, 3, -1, 2000),
    (0, 1, false, 2, -1, 3000),
    (0, 1, false, 1, -1, 4000),
    (0, 1, false, 0, -1, 5000),
    (0, 1, true, 0, 1000, 5000),
    (3000, 1, false, 2, -1, 3000),
    (3100, 1, false, 1, -1, 3900),
    (4000, 1, false, 1, -1, 4000),
    (8000, 1, false, 4, -1, 1000),
    (9500, 1, false, 4, -1, 1000),
    // Quantity 0 peeks.
    (9500, 0, false, 4, -1, 1000),
    (9500, 2, false, 2, -1, 3000),
    (9500, 5, true, 2, 3000, 3000),
];

fn seconds_up_ms(ms: i64) -> i64 {
    if ms < 0 {
        ms
    } else {
        (ms + 999) / 1000
    }
}

#[test]
fn redis_cells_own_table() {
    let params = Params {
        max_burst: 4,
        count: 1,
        period_s: 1,
    };
    let start_ms = 1_700_000_000_000i64;
    let mut charon = Charon::default();
    let mut gcra = Gcra::new(params);
    for (i, &(at, quantity, limited, remaining, retry, reset)) in
        REDIS_CELL_TABLE.iter().enumerate()
    {
        let now_ms = start_ms + at;
        let want = [
            i64::from(limited),
            5,
            remaining,
            seconds_up_ms(retry),
            seconds_up_ms(reset),
        ];
        let got = charon.throttle(&params.throttle(quantity), now_ms);
        assert_eq!(got, want, "case {i}");
        let model = gcra.throttle(quantity, i128::from(now_ms) * NS_PER_MS);
        assert_eq!(model, want, "model, case {i}");
    }
}

#[test]
fn readme_examples() {
    let now_ms = 1_700_000_000_000i64;
    // `CL.THROTTLE user123 15 30 60` on a new key.
    let mut charon = Charon::default();
    let user123 = Params {
        max_burst: 15,
        count: 30,
        period_s: 60,
    };
    assert_eq!(
        charon.throttle(&user123.throttle(1), now_ms),
        [0, 16, 15, -1, 2]
    );
    // Multiple rate limits, one key each.
    let write = Params {
        max_burst: 5,
        count: 10,
        period_s: 60,
    };
    assert_eq!(
        Charon::default().throttle(&write.throttle(1), now_ms),
        [0, 6, 5, -1, 6]
    );
    // A burst of 16 empties it, 2 s per token.
    for i in 2..=16 {
        let reply = charon.throttle(&user123.throttle(1), now_ms);
        assert_eq!(reply, [0, 16, 16 - i, -1, 2 * i], "request {i}");
    }
    assert_eq!(
        charon.throttle(&user123.throttle(1), now_ms),
        [1, 16, 0, 2, 32]
    );
    // One token back after 2 s.
    assert_eq!(
        charon.throttle(&user123.throttle(1), now_ms + 2000),
        [0, 16, 0, -1, 32]
    );
}

/// The limit `CL.THROTTLE` parses is `CHARON.RATE`'s with `max_burst + 1`
/// and the period in milliseconds, and its reply is `CHARON.RATE`'s verdict
/// with the times in whole seconds, rounded up.
fn rate_equivalent(params: Params, quantity: u64) -> (Throttle, parse::Request) {
    let throttle = params.throttle(quantity);
    let words = [
        (params.max_burst + 1).to_string(),
        params.count.to_string(),
        format!("{}s", params.period_s),
        quantity.to_string(),
    ];
    let rate = parse::request(4, |i| words[i].as_bytes(), WaitKeyword::None).unwrap();
    (throttle, rate)
}

proptest! {
    #![proptest_config(Config::with_cases(2000))]

    /// Every call of a random sequence answers what the exact GCRA answers,
    /// and what CHARON.RATE with the equivalent arguments answers, its
    /// times in whole seconds rounded up.
    #[test]
    fn throttle_is_exact_gcra_and_charon_rate(
        params in params(),
        steps in proptest::collection::vec((0i64..3_000_000, 0u64..45), 1..60),
    ) {
        let mut charon = Charon::default();
        let mut rate = Charon::default();
        let mut gcra = Gcra::new(params);
        let mut now_ms = 1_700_000_000_000i64;
        for (i, (gap_ms, quantity)) in steps.into_iter().enumerate() {
            // Mostly short gaps, some long ones.
            now_ms += if gap_ms % 3 == 0 { gap_ms } else { gap_ms % 5000 };
            let (throttle, request) = rate_equivalent(params, quantity);
            prop_assert_eq!(throttle.limit, request.limits.as_slice()[0]);
            prop_assert_eq!(throttle.quantity, request.cost);
            let got = charon.throttle(&throttle, now_ms);
            let want = gcra.throttle(quantity, i128::from(now_ms) * NS_PER_MS);
            prop_assert_eq!(got, want, "step {}", i);
            let (verdict, change) = bucket::rate(
                rate.stored.as_mut(),
                request.limits.as_slice(),
                request.cost,
                now_ms,
            );
            if let Change::Created(bucket) = change {
                rate.stored = Some(bucket);
            }
            let retry = verdict.retry_after_ms.map_or(-1, |ms| ms.div_ceil(1000) as i64);
            let from_rate = [
                i64::from(verdict.limited),
                verdict.limit as i64,
                verdict.remaining as i64,
                retry,
                verdict.reset_after_ms.div_ceil(1000) as i64,
            ];
            prop_assert_eq!(got, from_rate, "step {}", i);
            prop_assert_eq!(&charon.stored, &rate.stored);
        }
    }

    /// A redis-cell key converted at any instant (to the nanosecond) holds
    /// the tokens the exact GCRA says it holds, rounded down; the
    /// converting call decides exactly as redis-cell would (limited,
    /// remaining), and its times are never earlier than redis-cell's, and
    /// later by less than one token's worth.
    #[test]
    fn conversion_is_exact_gcra_rounded_down(
        params in params(),
        now_ns in 1_600_000_000_000_000_000i64..1_800_000_000_000_000_000,
        // What the key owes, in thousandths of the whole bucket: from long
        // paid (the past) to the whole bucket (what redis-cell can owe
        // under the parameters it was written with).
        owed_per_mille in -300i128..=1000,
        jitter_ns in 0i128..1_000_000,
        quantity in 0u64..45,
    ) {
        let t_ns = i128::from(params.period_s) * NS_PER_S / i128::from(params.count);
        let owed_units = (params.tau() * owed_per_mille / 1000 + params.units(jitter_ns))
            .min(params.tau());
        let tat_ns = i128::from(now_ns) + owed_units.div_euclid(i128::from(params.count));
        let tat_ns = u64::try_from(tat_ns.max(0)).unwrap();
        let now_ms = now_ns.div_euclid(1_000_000);
        let throttle = params.throttle(quantity);
        let gcra = Gcra::with_tat(params, tat_ns);
        let (tokens_n, tokens_d) = gcra.tokens(i128::from(now_ns));
        let exact_floor = tokens_n.div_euclid(tokens_d).max(0);

        let conversion = cell::convert(tat_ns, now_ns, throttle.limit, now_ms).unwrap();
        let mut charon = Charon::default();
        match conversion {
            Conversion::Full => prop_assert_eq!(tokens_n, params.tau()),
            Conversion::Holding(bucket) => {
                prop_assert!(tokens_n < params.tau());
                let band = bucket.bands()[0];
                prop_assert_eq!(i128::from(band.tokens()), exact_floor);
                prop_assert_eq!(band.level().fraction, 0);
                prop_assert_eq!(band.limit(), throttle.limit);
                prop_assert_eq!(bucket.updated_at_ms(), now_ms);
                charon.stored = Some(bucket);
            }
        }
        let got = charon.throttle(&throttle, now_ms);
        let mut gcra = gcra;
        let want = gcra.throttle(quantity, i128::from(now_ns));
        // The same decision and the same whole tokens.
        prop_assert_eq!(&got[..3], &want[..3]);
        // Times: never earlier; later by less than one token's worth.
        let slack_s = (t_ns + NS_PER_S - 1) / NS_PER_S + 1;
        for field in [3, 4] {
            if want[field] == -1 {
                prop_assert_eq!(got[field], -1);
            } else {
                prop_assert!(got[field] >= want[field], "field {}: {:?} vs {:?}", field, got, want);
                prop_assert!(
                    i128::from(got[field] - want[field]) <= slack_s,
                    "field {}: {:?} vs {:?}", field, got, want
                );
            }
        }
    }
}

/// A key owing more than the whole bucket (only possible when the
/// parameters shrank since redis-cell wrote it) becomes an empty bucket:
/// the debt beyond the capacity is forgiven, where redis-cell would keep
/// it.
#[test]
fn debt_beyond_the_bucket_converts_to_empty() {
    let params = Params {
        max_burst: 1,
        count: 1,
        period_s: 10,
    };
    let now_ns = 1_700_000_000_000_000_000i64;
    let throttle = params.throttle(1);
    // Owes 100 s: 10 tokens, the bucket holds 2.
    let tat = (now_ns + 100 * 1_000_000_000) as u64;
    let Conversion::Holding(bucket) =
        cell::convert(tat, now_ns, throttle.limit, now_ns / 1_000_000).unwrap()
    else {
        panic!("not converted");
    };
    assert_eq!(bucket.bands()[0].tokens(), 0);
    let mut charon = Charon {
        stored: Some(bucket),
    };
    assert_eq!(
        charon.throttle(&throttle, now_ns / 1_000_000),
        [1, 2, 0, 10, 20]
    );
    // redis-cell: limited for another 90 s.
    let mut gcra = Gcra::with_tat(params, tat);
    assert_eq!(gcra.throttle(1, i128::from(now_ns)), [1, 2, 0, 90, 100]);
}

#[test]
fn conversion_of_the_acceptance_key() {
    // `SET old <now_ns + 10^10>` then `CL.THROTTLE old 15 30 60`.
    let params = Params {
        max_burst: 15,
        count: 30,
        period_s: 60,
    };
    let now_ns = 1_700_000_000_123_456_789i64;
    let now_ms = now_ns / 1_000_000;
    let throttle = params.throttle(1);
    let Conversion::Holding(bucket) = cell::convert(
        (now_ns + 10_000_000_000) as u64,
        now_ns,
        throttle.limit,
        now_ms,
    )
    .unwrap() else {
        panic!("not converted");
    };
    let mut charon = Charon {
        stored: Some(bucket),
    };
    assert_eq!(charon.throttle(&throttle, now_ms), [0, 16, 10, -1, 12]);
}
