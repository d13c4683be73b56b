//! Property tests of the token-bucket core (`token_bucket`) against a
//! reference model written from the contract (the README's command
//! reference) in exact rational arithmetic.
//!
//! The model shares no code and no formula with the core: it holds the tokens
//! of a bucket as an exact rational number together with the time they were
//! counted at, and answers every request from the definitions:
//!
//! - tokens(t) = min(capacity, tokens + refill * (t - at) / period), where a
//!   clock that went backwards counts as no time;
//! - a request is allowed when tokens >= cost, and then takes cost;
//! - on a parameter change the tokens carry over, the fraction rounded down
//!   to a multiple of 1 / new period, and clamped to the new capacity;
//! - remaining = floor(tokens), retry_after = ceil(ms until tokens >= cost),
//!   reset_after = ceil(ms until tokens = capacity), saturating at i64::MAX.
//!
//! The core is driven the way the server drives it: it keeps the stored bands
//! and the time they were stored at, brings them to now and to the call's
//! parameters, decides, and stores what was taken at max(stored time, now).
//!
//! The model's arithmetic is exact for every parameter the contract requires
//! to be exact (capacity and refill up to 10^12, period up to 3650 days); the
//! core's behaviour beyond that, up to i64::MAX, is checked against its
//! invariants and against properties that need no model.

use std::cmp::Ordering;

use charon::token_bucket::*;
use proptest::prelude::*;
use proptest::test_runner::Config;

/// The largest capacity and refill the contract requires to be exact.
const EXACT_MAX: u64 = 1_000_000_000_000;
/// 3650 days, the longest period the contract requires to be exact, and the
/// longest idle gap generated.
const TEN_YEARS_MS: u64 = 3650 * 86_400_000;
/// The largest time a reply can carry.
const MS_MAX: u64 = i64::MAX as u64;

// ---------------------------------------------------------------------------
// Exact rationals.
//
// Worst case with the bounds above: tokens have a denominator dividing the
// period (< 2^39) and a numerator below capacity * period (< 2^79); the time
// passed within a case stays below 2^45 ms, so refill * dt < 2^85; a refund or
// a cost of up to i64::MAX is below 2^102 in units of 1 / period. Every cross
// product then stays below 2^125. All arithmetic is checked anyway, so a
// model overflow fails loudly instead of answering wrong.

#[derive(Clone, Copy, Debug)]
struct Q {
    /// Numerator; `gcd(n, d) == 1`.
    n: i128,
    /// Denominator, > 0.
    d: i128,
}

fn gcd(a: i128, b: i128) -> i128 {
    let (mut a, mut b) = (a.unsigned_abs(), b.unsigned_abs());
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a as i128
}

fn mul(a: i128, b: i128) -> i128 {
    a.checked_mul(b).expect("model arithmetic overflowed")
}

fn add(a: i128, b: i128) -> i128 {
    a.checked_add(b).expect("model arithmetic overflowed")
}

impl Q {
    fn new(n: i128, d: i128) -> Q {
        assert_ne!(d, 0, "zero denominator");
        let g = gcd(n, d);
        let (n, d) = (n / g, d / g);
        if d < 0 {
            Q { n: -n, d: -d }
        } else {
            Q { n, d }
        }
    }

    fn int(v: u64) -> Q {
        Q { n: v as i128, d: 1 }
    }

    fn plus(self, o: Q) -> Q {
        let g = gcd(self.d, o.d);
        let lcm = mul(self.d / g, o.d);
        Q::new(add(mul(self.n, lcm / self.d), mul(o.n, lcm / o.d)), lcm)
    }

    fn minus(self, o: Q) -> Q {
        self.plus(Q { n: -o.n, d: o.d })
    }

    fn times(self, o: Q) -> Q {
        let g1 = gcd(self.n, o.d);
        let g2 = gcd(o.n, self.d);
        Q::new(mul(self.n / g1, o.n / g2), mul(self.d / g2, o.d / g1))
    }

    fn over(self, o: Q) -> Q {
        assert_ne!(o.n, 0, "division by zero");
        self.times(Q::new(o.d, o.n))
    }

    fn floor(self) -> i128 {
        self.n.div_euclid(self.d)
    }

    fn ceil(self) -> i128 {
        -(-self.n).div_euclid(self.d)
    }
}

impl PartialEq for Q {
    fn eq(&self, o: &Q) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}

impl Eq for Q {}

impl PartialOrd for Q {
    fn partial_cmp(&self, o: &Q) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

impl Ord for Q {
    fn cmp(&self, o: &Q) -> Ordering {
        mul(self.n, o.d).cmp(&mul(o.n, self.d))
    }
}

// ---------------------------------------------------------------------------
// The reference model.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Params {
    capacity: u64,
    refill: u64,
    period: u64,
}

impl Params {
    fn limit(self) -> Limit {
        Limit::new(self.capacity, self.refill, self.period).expect("valid parameters")
    }

    /// Tokens held `dt` ms after holding `x`.
    fn accrue(self, x: Q, dt: i128) -> Q {
        let gained = Q::new(mul(self.refill as i128, dt), self.period as i128);
        x.plus(gained).min(Q::int(self.capacity))
    }

    /// Exact milliseconds until holding `x` becomes holding `target`; zero
    /// when `x` already reaches it.
    fn ms_until(self, x: Q, target: Q) -> Q {
        let rate = Q::new(self.refill as i128, self.period as i128);
        target.minus(x).over(rate).max(Q::int(0))
    }
}

/// A time as a reply carries it: rounded up, saturated.
fn ms_reply(ms: Q) -> u64 {
    let ms = ms.ceil();
    assert!(ms >= 0);
    ms.min(MS_MAX as i128) as u64
}

#[derive(Clone, Copy, Debug)]
struct Stored {
    params: Params,
    tokens: Q,
    at: i64,
}

impl Stored {
    fn tokens_at(&self, now: i64) -> Q {
        let dt = (now as i128 - self.at as i128).max(0);
        self.params.accrue(self.tokens, dt)
    }
}

#[derive(Clone, Debug, Default)]
struct Model {
    stored: Option<Stored>,
}

impl Model {
    /// RATE at `now` with `call`'s parameters: the reply, and the tokens the
    /// decision saw.
    fn rate(&mut self, now: i64, call: Params, cost: u64) -> (Verdict, Q) {
        let capacity = Q::int(call.capacity);
        let held = match &self.stored {
            None => capacity,
            Some(s) => {
                let old = s.tokens_at(now);
                let period = Q::int(call.period);
                let kept = Q::new(old.times(period).floor(), call.period as i128);
                kept.min(capacity)
            }
        };
        let cost_q = Q::int(cost);
        let allowed = held >= cost_q;
        let after = if allowed { held.minus(cost_q) } else { held };
        if allowed && cost > 0 {
            let at = self.stored.map_or(now, |s| s.at.max(now));
            self.stored = Some(Stored {
                params: call,
                tokens: after,
                at,
            });
        }
        let retry_after_ms = if allowed || cost > call.capacity {
            None
        } else {
            Some(ms_reply(call.ms_until(held, cost_q)))
        };
        let verdict = Verdict {
            limited: !allowed,
            limit: call.capacity,
            remaining: after.floor() as u64,
            retry_after_ms,
            reset_after_ms: ms_reply(call.ms_until(after, capacity)),
        };
        (verdict, held)
    }

    /// PEEK: what RATE with the stored parameters would answer; `None` for a
    /// bucket that does not exist.
    fn peek(&self, now: i64, cost: u64) -> Option<Verdict> {
        let params = self.stored?.params;
        Some(self.clone().rate(now, params, cost).0)
    }

    /// REFUND: the whole tokens held after it; `None` for a missing bucket.
    fn refund(&mut self, now: i64, tokens: u64) -> Option<u64> {
        let s = self.stored.as_mut()?;
        let held = s.tokens_at(now);
        s.tokens = held.plus(Q::int(tokens)).min(Q::int(s.params.capacity));
        s.at = s.at.max(now);
        Some(s.tokens.floor() as u64)
    }
}

/// The exact tokens a band holds.
fn exact(band: &Band) -> Q {
    let period = band.limit().period_ms() as i128;
    let level = band.level();
    Q::new(
        add(mul(level.tokens as i128, period), level.fraction as i128),
        period,
    )
}

fn params_of(limit: Limit) -> Params {
    Params {
        capacity: limit.capacity(),
        refill: limit.refill(),
        period: limit.period_ms(),
    }
}

// ---------------------------------------------------------------------------
// The core, driven the way the server drives it.

#[derive(Clone, Debug, PartialEq, Eq)]
struct Server {
    bands: Vec<Band>,
    updated_at: i64,
}

impl Server {
    fn new() -> Server {
        Server {
            bands: Vec::new(),
            updated_at: i64::MIN,
        }
    }

    fn stored_limit(&self) -> Option<Limit> {
        self.bands.first().map(Band::limit)
    }

    /// RATE: the bands the decision saw, and the decision.
    fn rate(&mut self, now: i64, limit: Limit, cost: u64) -> (Vec<Band>, Decision) {
        let bands = under_limits(&refill_all(&self.bands, self.updated_at, now), &[limit]);
        let decision = decide(&bands, cost);
        if let Some(taken) = &decision.taken {
            self.bands = taken.clone();
            self.updated_at = self.updated_at.max(now);
        }
        (bands, decision)
    }

    /// PEEK: the bands seen and the decision, storing nothing.
    fn peek(&self, now: i64, cost: u64) -> Option<(Vec<Band>, Decision)> {
        if self.bands.is_empty() {
            return None;
        }
        let bands = refill_all(&self.bands, self.updated_at, now);
        let decision = decide(&bands, cost);
        Some((bands, decision))
    }

    /// REFUND: the bands before and after the refund.
    fn refund(&mut self, now: i64, tokens: u64) -> Option<(Vec<Band>, Vec<Band>)> {
        if self.bands.is_empty() {
            return None;
        }
        let before = refill_all(&self.bands, self.updated_at, now);
        let after: Vec<Band> = before.iter().map(|b| b.refunded(tokens)).collect();
        self.bands = after.clone();
        self.updated_at = self.updated_at.max(now);
        Some((before, after))
    }
}

// ---------------------------------------------------------------------------
// Operations, generated abstractly and resolved against the bucket's
// parameters when they run, so that costs and waits land near the edges.

#[derive(Clone, Copy, Debug)]
enum Amount {
    Zero,
    Small(u64),
    /// This many thousandths of the capacity, rounded down.
    PerMille(u16),
    Capacity,
    AboveCapacity(u64),
    Max,
}

impl Amount {
    fn resolve(self, capacity: u64) -> u64 {
        match self {
            Amount::Zero => 0,
            Amount::Small(n) => n,
            Amount::PerMille(m) => (capacity as u128 * m as u128 / 1000) as u64,
            Amount::Capacity => capacity,
            Amount::AboveCapacity(k) => capacity.saturating_add(k).min(MAX_PARAM),
            Amount::Max => MAX_PARAM,
        }
    }
}

fn amount() -> impl Strategy<Value = Amount> {
    prop_oneof![
        1 => Just(Amount::Zero),
        4 => (1..=3u64).prop_map(Amount::Small),
        4 => (0..=1000u16).prop_map(Amount::PerMille),
        1 => Just(Amount::Capacity),
        1 => (1..=1000u64).prop_map(Amount::AboveCapacity),
        1 => Just(Amount::Max),
    ]
}

#[derive(Clone, Copy, Debug)]
enum Step {
    Ms(i64),
    /// The time `amount` tokens take to accrue, plus `delta` ms.
    Refill(Amount, i8),
}

impl Step {
    fn resolve(self, p: Params) -> i64 {
        match self {
            Step::Ms(ms) => ms,
            Step::Refill(amount, delta) => {
                let tokens = amount.resolve(p.capacity) as u128;
                let ms = (tokens * p.period as u128).div_ceil(p.refill as u128);
                ms.min(TEN_YEARS_MS as u128) as i64 + delta as i64
            }
        }
    }
}

fn step() -> impl Strategy<Value = Step> {
    let ten_years = TEN_YEARS_MS as i64;
    prop_oneof![
        3 => Just(Step::Ms(0)),
        2 => (1..=10i64).prop_map(Step::Ms),
        2 => (1..=100_000i64).prop_map(Step::Ms),
        1 => (1..=ten_years).prop_map(Step::Ms),
        5 => (amount(), -1..=1i8).prop_map(|(a, d)| Step::Refill(a, d)),
        1 => (-100_000..=-1i64).prop_map(Step::Ms),
        1 => (-ten_years..=-1i64).prop_map(Step::Ms),
    ]
}

fn forward_step() -> impl Strategy<Value = Step> {
    step().prop_map(|s| match s {
        Step::Ms(ms) => Step::Ms(ms.abs()),
        Step::Refill(a, d) => Step::Refill(a, d.max(0)),
    })
}

/// A parameter in 1..=max, often small or at the edges.
fn param(max: u64) -> impl Strategy<Value = u64> {
    prop_oneof![Just(1u64), 1..=10u64, 1..=1000u64, 1..=max, Just(max),]
}

fn period(max: u64) -> BoxedStrategy<u64> {
    if max == MAX_PARAM {
        return param(max).boxed();
    }
    prop_oneof![
        Just(1u64),
        1..=10u64,
        1..=1000u64,
        1..=86_400_000u64,
        1..=max,
        Just(max),
        (1..=3650u64).prop_map(|d| d * 86_400_000),
    ]
    .boxed()
}

/// Parameters with capacity and refill up to `max` and period up to
/// `period_max`.
fn params(max: u64, period_max: u64) -> impl Strategy<Value = Params> {
    (param(max), param(max), period(period_max)).prop_map(|(capacity, refill, period)| Params {
        capacity,
        refill,
        period,
    })
}

fn exact_params() -> impl Strategy<Value = Params> {
    params(EXACT_MAX, TEN_YEARS_MS)
}

#[derive(Clone, Copy, Debug)]
enum Change {
    Fresh(Params),
    /// Each parameter times `a / b`, kept within bounds.
    Scale([(u8, u8); 3]),
}

impl Change {
    fn resolve(self, p: Params, max: u64, period_max: u64) -> Params {
        fn scale(v: u64, (a, b): (u8, u8), max: u64) -> u64 {
            (v as u128 * a as u128 / b as u128).clamp(1, max as u128) as u64
        }
        match self {
            Change::Fresh(p) => p,
            Change::Scale([c, r, t]) => Params {
                capacity: scale(p.capacity, c, max),
                refill: scale(p.refill, r, max),
                period: scale(p.period, t, period_max),
            },
        }
    }
}

fn change(max: u64, period_max: u64) -> impl Strategy<Value = Change> {
    let factor = (1..=5u8, 1..=5u8);
    prop_oneof![
        params(max, period_max).prop_map(Change::Fresh),
        [factor.clone(), factor.clone(), factor].prop_map(Change::Scale),
    ]
}

#[derive(Clone, Copy, Debug)]
enum Op {
    /// RATE with the stored parameters, or changed ones.
    Rate(Step, Amount, Option<Change>),
    Peek(Step, Amount),
    Refund(Step, Amount),
}

impl Op {
    fn step(self) -> Step {
        match self {
            Op::Rate(s, ..) | Op::Peek(s, _) | Op::Refund(s, _) => s,
        }
    }

    fn with_step(self, s: Step) -> Op {
        match self {
            Op::Rate(_, a, c) => Op::Rate(s, a, c),
            Op::Peek(_, a) => Op::Peek(s, a),
            Op::Refund(_, a) => Op::Refund(s, a),
        }
    }
}

fn op(max: u64, period_max: u64) -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (step(), amount()).prop_map(|(s, a)| Op::Rate(s, a, None)),
        2 => (step(), amount(), change(max, period_max))
            .prop_map(|(s, a, c)| Op::Rate(s, a, Some(c))),
        1 => (step(), amount()).prop_map(|(s, a)| Op::Peek(s, a)),
        1 => (step(), amount()).prop_map(|(s, a)| Op::Refund(s, a)),
    ]
}

fn start_time() -> impl Strategy<Value = i64> {
    prop_oneof![Just(0i64), -10_000_000_000_000..=10_000_000_000_000i64]
}

// ---------------------------------------------------------------------------
// Invariants, checked on every band the core produces.

fn check_band(band: &Band) -> Result<(), TestCaseError> {
    let limit = band.limit();
    let level = band.level();
    prop_assert!(
        level.fraction < limit.period_ms(),
        "fraction >= period: {:?}",
        band
    );
    prop_assert!(
        i128::from(level.tokens) <= i128::from(limit.capacity()),
        "above capacity: {:?}",
        band
    );
    prop_assert!(
        i128::from(level.tokens) < i128::from(limit.capacity()) || level.fraction == 0,
        "full band with a fraction: {:?}",
        band
    );
    prop_assert_eq!(Band::new(limit, level), Some(*band));
    prop_assert_eq!(band.tokens(), level.tokens);
    Ok(())
}

/// A decision of `cost` over `bands`, checked without a model: an allowed
/// request takes exactly `cost` from every band, a limited one (or cost 0)
/// changes nothing.
fn check_decision(bands: &[Band], cost: u64, d: &Decision) -> Result<(), TestCaseError> {
    for band in bands {
        check_band(band)?;
    }
    let allowed = bands.iter().all(|b| b.remaining() >= cost);
    let v = d.verdict;
    prop_assert_eq!(v.limited, !allowed);
    if !allowed || cost == 0 {
        prop_assert!(d.taken.is_none(), "took tokens: {:?}", d);
    }
    if !allowed {
        let never = bands.iter().any(|b| cost > b.limit().capacity());
        prop_assert_eq!(v.retry_after_ms.is_none(), never);
        prop_assert!(v.retry_after_ms != Some(0));
    } else {
        prop_assert_eq!(v.retry_after_ms, None);
    }
    let after = match &d.taken {
        Some(taken) => {
            prop_assert_eq!(taken.len(), bands.len());
            for (b, t) in bands.iter().zip(taken) {
                check_band(t)?;
                prop_assert_eq!(t.limit(), b.limit());
                prop_assert_eq!(t.remaining(), b.remaining() - cost);
                prop_assert_eq!(t.level().fraction, b.level().fraction);
            }
            taken.clone()
        }
        None => bands.to_vec(),
    };
    // Every field from one binding band, chosen here band by band: allowed,
    // the first band left with the fewest tokens; limited, the first band
    // that can never hold `cost`, else the first that waits longest.
    let first_min = |key: &dyn Fn(&Band) -> u64| {
        (0..after.len()).fold(0, |best, i| {
            if key(&after[i]) < key(&after[best]) {
                i
            } else {
                best
            }
        })
    };
    let binding = if allowed {
        first_min(&|b: &Band| b.remaining())
    } else {
        match bands.iter().position(|b| cost > b.limit().capacity()) {
            Some(never) => never,
            None => first_min(&|b: &Band| u64::MAX - b.wait_for(cost).unwrap()),
        }
    };
    let band = after[binding];
    prop_assert_eq!(v.limit, band.limit().capacity());
    prop_assert_eq!(v.remaining, band.remaining());
    prop_assert_eq!(v.reset_after_ms, band.reset_after_ms());
    if !allowed {
        prop_assert_eq!(v.retry_after_ms, band.wait_for(cost));
    }
    prop_assert!(v.reset_after_ms <= MS_MAX);
    prop_assert_eq!(v.reset_after_ms == 0, band.is_full());
    Ok(())
}

// ---------------------------------------------------------------------------
// Property 1: the core answers exactly as the model, field by field.

fn run_against_model(base: Params, start: i64, ops: &[Op]) -> Result<(), TestCaseError> {
    let mut server = Server::new();
    let mut model = Model::default();
    let mut now = start;
    for (i, &op) in ops.iter().enumerate() {
        let current = model.stored.map_or(base, |s| s.params);
        now += op.step().resolve(current);
        match op {
            Op::Rate(_, cost, change) => {
                let call = change.map_or(current, |c| c.resolve(current, EXACT_MAX, TEN_YEARS_MS));
                let cost = cost.resolve(call.capacity);
                let (seen, d) = server.rate(now, call.limit(), cost);
                let (want, held) = model.rate(now, call, cost);
                prop_assert_eq!(
                    d.verdict,
                    want,
                    "step {} RATE {:?} cost {} at {}",
                    i,
                    call,
                    cost,
                    now
                );
                prop_assert_eq!(exact(&seen[0]), held, "step {}: tokens seen", i);
            }
            Op::Peek(_, cost) => {
                let cost = cost.resolve(current.capacity);
                let got = server.peek(now, cost).map(|(_, d)| d.verdict);
                prop_assert_eq!(
                    got,
                    model.peek(now, cost),
                    "step {} PEEK cost {} at {}",
                    i,
                    cost,
                    now
                );
            }
            Op::Refund(_, tokens) => {
                let tokens = tokens.resolve(current.capacity).max(1);
                let got = server
                    .refund(now, tokens)
                    .map(|(_, after)| after[0].remaining());
                prop_assert_eq!(
                    got,
                    model.refund(now, tokens),
                    "step {} REFUND {} at {}",
                    i,
                    tokens,
                    now
                );
            }
        }
        match (&model.stored, server.bands.as_slice()) {
            (None, []) => {}
            (Some(s), [band]) => {
                prop_assert_eq!(
                    params_of(band.limit()),
                    s.params,
                    "step {}: stored parameters",
                    i
                );
                prop_assert_eq!(exact(band), s.tokens, "step {}: stored tokens", i);
                prop_assert_eq!(server.updated_at, s.at, "step {}: stored time", i);
            }
            (m, c) => prop_assert!(false, "step {}: model {:?}, core {:?}", i, m, c),
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(Config::with_cases(1000))]

    #[test]
    fn core_matches_exact_model(
        base in exact_params(),
        start in start_time(),
        ops in prop::collection::vec(op(EXACT_MAX, TEN_YEARS_MS), 1..60),
    ) {
        run_against_model(base, start, &ops)?;
    }
}

// The model itself, on cases worked by hand.
#[test]
fn model_agrees_with_worked_examples() {
    let p = Params {
        capacity: 10,
        refill: 10,
        period: 1000,
    };
    let mut m = Model::default();
    let (v, _) = m.rate(0, p, 10);
    assert_eq!((v.limited, v.remaining, v.reset_after_ms), (false, 0, 1000));
    let (v, held) = m.rate(550, p, 6);
    assert_eq!(held, Q::new(11, 2));
    assert_eq!(
        (v.limited, v.retry_after_ms, v.reset_after_ms),
        (true, Some(50), 450)
    );
    // A clock step back counts as nothing.
    let (_, held) = m.rate(-5, p, 0);
    assert_eq!(held, Q::int(0));
    // 3 per second: a third of a token, to a period of 2 ms: rounded down.
    let third = Params {
        capacity: 3,
        refill: 3,
        period: 1000,
    };
    let mut m = Model::default();
    m.rate(0, third, 3);
    let (_, held) = m.rate(111, third, 0);
    assert_eq!(held, Q::new(333, 1000));
    let coarse = Params {
        capacity: 3,
        refill: 3,
        period: 2,
    };
    let (_, held) = m.rate(111, coarse, 0);
    assert_eq!(held, Q::int(0));
    let fine = Params {
        capacity: 3,
        refill: 3,
        period: 2000,
    };
    let (_, held) = m.rate(111, fine, 0);
    assert_eq!(held, Q::new(666, 2000));
    let small = Params {
        capacity: 1,
        refill: 1,
        period: 1000,
    };
    m.rate(3000, third, 1); // holds 2
    let (_, held) = m.rate(3000, small, 0);
    assert_eq!(held, Q::int(1));
    assert_eq!(Q::new(7, 2).ceil(), 4);
    assert_eq!(Q::new(-7, 2).ceil(), -3);
    assert_eq!(Q::new(-7, 2).floor(), -4);
}

// ---------------------------------------------------------------------------
// Property 2: invariants over random sequences, with every parameter up to
// i64::MAX (no model).

fn run_invariants(base: Params, start: i64, ops: &[Op]) -> Result<(), TestCaseError> {
    let mut server = Server::new();
    let mut now = start;
    for &op in ops {
        let current = server.stored_limit().map_or(base, params_of);
        now = now.saturating_add(op.step().resolve(current));
        let stored_before = server.clone();
        match op {
            Op::Rate(_, cost, change) => {
                let call = change.map_or(current, |c| c.resolve(current, MAX_PARAM, MAX_PARAM));
                let cost = cost.resolve(call.capacity);
                let (seen, d) = server.rate(now, call.limit(), cost);
                check_decision(&seen, cost, &d)?;
                prop_assert_eq!(seen[0].limit(), call.limit());
                if let Some(old) = stored_before.bands.first() {
                    // Refill never loses tokens; a change of parameters
                    // keeps the whole tokens, clamped.
                    let refilled = refill_all(&stored_before.bands, stored_before.updated_at, now);
                    prop_assert!(exact_cmp(&refilled[0], old) != Ordering::Less);
                    prop_assert_eq!(
                        seen[0].remaining(),
                        refilled[0].remaining().min(call.capacity)
                    );
                } else {
                    prop_assert!(seen[0].is_full());
                }
                if d.taken.is_none() {
                    prop_assert_eq!(&server, &stored_before);
                } else {
                    prop_assert_eq!(server.updated_at, stored_before.updated_at.max(now));
                }
            }
            Op::Peek(_, cost) => {
                let cost = cost.resolve(current.capacity);
                if let Some((seen, d)) = server.peek(now, cost) {
                    check_decision(&seen, cost, &d)?;
                }
                prop_assert_eq!(&server, &stored_before);
            }
            Op::Refund(_, tokens) => {
                let tokens = tokens.resolve(current.capacity).max(1);
                if let Some((before, after)) = server.refund(now, tokens) {
                    let (b, a) = (before[0], after[0]);
                    check_band(&a)?;
                    let capacity = b.limit().capacity();
                    if (b.tokens() as u128 + tokens as u128) < capacity as u128 {
                        prop_assert_eq!(a.remaining(), b.remaining() + tokens);
                        prop_assert_eq!(a.level().fraction, b.level().fraction);
                    } else {
                        prop_assert_eq!(
                            a.level(),
                            Level {
                                tokens: capacity as i64,
                                fraction: 0
                            }
                        );
                    }
                }
            }
        }
        prop_assert!(server.updated_at >= stored_before.updated_at);
        for band in &server.bands {
            check_band(band)?;
        }
    }
    Ok(())
}

/// Compares the exact tokens of two bands of the same limit.
fn exact_cmp(a: &Band, b: &Band) -> Ordering {
    assert_eq!(a.limit(), b.limit());
    (a.level().tokens, a.level().fraction).cmp(&(b.level().tokens, b.level().fraction))
}

proptest! {
    #![proptest_config(Config::with_cases(600))]

    #[test]
    fn invariants_hold_over_sequences(
        base in params(MAX_PARAM, MAX_PARAM),
        start in start_time(),
        ops in prop::collection::vec(op(MAX_PARAM, MAX_PARAM), 1..60),
    ) {
        run_invariants(base, start, &ops)?;
    }
}

// ---------------------------------------------------------------------------
// Properties 3 and 4: reset_after and retry_after are exact and tight.

/// A valid band for `p`, often near empty or near full.
fn band_for(p: Params) -> impl Strategy<Value = Band> {
    let tokens = prop_oneof![
        Just(0u64),
        Just(p.capacity),
        Just(p.capacity - 1),
        0..=p.capacity,
        0..=p.capacity.min(10),
    ];
    let fraction = prop_oneof![Just(0u64), Just(p.period - 1), 0..p.period];
    (tokens, fraction).prop_map(move |(tokens, fraction)| {
        let fraction = if tokens == p.capacity { 0 } else { fraction };
        Band::new(
            p.limit(),
            Level {
                tokens: tokens as i64,
                fraction,
            },
        )
        .expect("valid level")
    })
}

fn band_in(p: impl Strategy<Value = Params>) -> impl Strategy<Value = Band> {
    p.prop_flat_map(band_for)
}

/// The bands after `ms` of idling from `t`, through `refill_all` when the
/// clock can express it.
fn idle(bands: &[Band], t: i64, ms: u64) -> Vec<Band> {
    match i64::try_from(ms).ok().and_then(|ms| t.checked_add(ms)) {
        Some(now) => refill_all(bands, t, now),
        None => bands.iter().map(|b| b.refilled(ms)).collect(),
    }
}

fn is_exactly_full(band: &Band) -> bool {
    band.level()
        == Level {
            tokens: band.limit().capacity() as i64,
            fraction: 0,
        }
}

proptest! {
    #![proptest_config(Config::with_cases(3000))]

    #[test]
    fn idle_for_reset_after_is_exactly_full(
        band in band_in(exact_params()),
        t in start_time(),
        extra in prop_oneof![Just(0u64), 1..=1000u64, 1..=TEN_YEARS_MS],
    ) {
        let p = params_of(band.limit());
        let exact_ms = p.ms_until(exact(&band), Q::int(p.capacity));
        let r = band.reset_after_ms();
        prop_assert_eq!(r, ms_reply(exact_ms));
        prop_assert_eq!(r == 0, is_exactly_full(&band));
        let verdict = decide(&[band], 0).verdict;
        prop_assert_eq!(verdict.reset_after_ms, r);
        if exact_ms.ceil() <= MS_MAX as i128 {
            let full = idle(&[band], t, r);
            prop_assert!(is_exactly_full(&full[0]), "not full after {} ms: {:?}", r, full);
            let longer = idle(&[band], t, r.saturating_add(extra));
            prop_assert!(is_exactly_full(&longer[0]));
            if r > 0 {
                let short = idle(&[band], t, r - 1);
                prop_assert!(!short[0].is_full(), "full after {} ms: {:?}", r - 1, short);
                prop_assert_eq!(short[0].reset_after_ms(), 1);
            }
        } else {
            // Saturated: not full by then either.
            prop_assert!(!idle(&[band], t, r)[0].is_full());
        }
    }

    #[test]
    fn retry_after_is_exact_and_tight(
        bands in prop::collection::vec(band_in(exact_params()), 1..=3),
        cost in amount(),
        t in start_time(),
    ) {
        let capacity = bands.iter().map(|b| b.limit().capacity()).max().unwrap();
        let cost = cost.resolve(capacity);
        let d = decide(&bands, cost);
        check_decision(&bands, cost, &d)?;
        // The model: the longest exact wait of any band, or never.
        let waits: Option<Vec<Q>> = bands
            .iter()
            .map(|b| {
                let p = params_of(b.limit());
                (cost <= p.capacity).then(|| p.ms_until(exact(b), Q::int(cost)))
            })
            .collect();
        let longest = waits.map(|w| w.into_iter().max().unwrap());
        if !d.verdict.limited {
            prop_assert_eq!(d.verdict.retry_after_ms, None);
            return Ok(());
        }
        prop_assert_eq!(d.verdict.retry_after_ms, longest.map(ms_reply));
        let (Some(w), Some(exact_ms)) = (d.verdict.retry_after_ms, longest) else {
            return Ok(());
        };
        prop_assert!(w > 0);
        if exact_ms.ceil() <= MS_MAX as i128 {
            let later = idle(&bands, t, w);
            prop_assert!(!decide(&later, cost).verdict.limited, "still limited after {} ms", w);
            let sooner = idle(&bands, t, w - 1);
            let again = decide(&sooner, cost).verdict;
            prop_assert!(again.limited, "allowed after {} ms", w - 1);
            prop_assert_eq!(again.retry_after_ms, Some(1));
        }
    }
}

// ---------------------------------------------------------------------------
// Property 5: a clock that steps back and returns creates and destroys
// nothing: requests made while it is behind act as if made at the time of
// the last write, and after the return all is as if the clock had stood
// still.

fn back_step() -> impl Strategy<Value = u64> {
    prop_oneof![1..=10u64, 1..=100_000u64, 1..=TEN_YEARS_MS, Just(u64::MAX),]
}

fn run_step_back(
    base: Params,
    start: i64,
    prefix: &[Op],
    detour: &[(u64, Op)],
    suffix: &[Op],
) -> Result<(), TestCaseError> {
    let mut server = Server::new();
    let mut now = start;
    let apply = |server: &mut Server, now: i64, op: Op| -> Option<(Verdict, Vec<Band>)> {
        let current = server.stored_limit().map_or(base, params_of);
        match op {
            Op::Rate(_, cost, change) => {
                let call = change.map_or(current, |c| c.resolve(current, EXACT_MAX, TEN_YEARS_MS));
                let (_, d) = server.rate(now, call.limit(), cost.resolve(call.capacity));
                Some((d.verdict, server.bands.clone()))
            }
            Op::Peek(_, cost) => server
                .peek(now, cost.resolve(current.capacity))
                .map(|(b, d)| (d.verdict, b)),
            Op::Refund(_, tokens) => server
                .refund(now, tokens.resolve(current.capacity).max(1))
                .map(|(b, a)| (decide(&a, 0).verdict, b)),
        }
    };
    for &op in prefix {
        let current = server.stored_limit().map_or(base, params_of);
        now += op.step().resolve(current);
        apply(&mut server, now, op);
    }
    // The last write happens now (and not before the stored time), so that
    // `now` is the stored time.
    now = now.max(server.updated_at);
    match server.stored_limit() {
        Some(_) => {
            server.refund(now, 1);
        }
        None => {
            server.rate(now, base.limit(), 1);
        }
    }
    prop_assert_eq!(server.updated_at, now);
    let original = now;
    let mut stepped = server.clone();
    let mut still = server;
    for (i, &(back, op)) in detour.iter().enumerate() {
        let behind = original.saturating_sub_unsigned(back);
        let got = apply(&mut stepped, behind, op);
        let want = apply(&mut still, original, op);
        prop_assert_eq!(
            got,
            want,
            "detour {} at {} instead of {}",
            i,
            behind,
            original
        );
        prop_assert_eq!(&stepped, &still, "detour {}", i);
    }
    let mut now = original;
    for (i, &op) in suffix.iter().enumerate() {
        let current = still.stored_limit().map_or(base, params_of);
        now += op.step().resolve(current);
        let got = apply(&mut stepped, now, op);
        let want = apply(&mut still, now, op);
        prop_assert_eq!(got, want, "after the return, step {}", i);
        prop_assert_eq!(&stepped, &still, "after the return, step {}", i);
    }
    Ok(())
}

proptest! {
    #![proptest_config(Config::with_cases(600))]

    #[test]
    fn clock_step_back_and_return_changes_nothing(
        base in exact_params(),
        start in start_time(),
        prefix in prop::collection::vec(op(EXACT_MAX, TEN_YEARS_MS), 0..20),
        detour in prop::collection::vec((back_step(), op(EXACT_MAX, TEN_YEARS_MS)), 1..6),
        suffix in prop::collection::vec(
            (forward_step(), op(EXACT_MAX, TEN_YEARS_MS)).prop_map(|(s, op)| op.with_step(s)),
            1..10,
        ),
    ) {
        run_step_back(base, start, &prefix, &detour, &suffix)?;
    }
}

// ---------------------------------------------------------------------------
// Property 6: extreme parameters and times never panic and keep every
// invariant, checked with properties that need no model.

fn extreme() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(1u64),
        Just(2u64),
        Just(MAX_PARAM - 1),
        Just(MAX_PARAM),
        1..=MAX_PARAM,
        MAX_PARAM / 2..=MAX_PARAM,
        1..=1000u64,
    ]
}

fn extreme_params() -> impl Strategy<Value = Params> {
    (extreme(), extreme(), extreme()).prop_map(|(capacity, refill, period)| Params {
        capacity,
        refill,
        period,
    })
}

fn extreme_elapsed() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        Just(1u64),
        Just(MAX_PARAM),
        Just(MAX_PARAM + 1),
        Just(u64::MAX),
        any::<u64>(),
        0..=1000u64,
    ]
}

fn extreme_time() -> impl Strategy<Value = i64> {
    prop_oneof![Just(i64::MIN), Just(i64::MAX), Just(0i64), any::<i64>()]
}

/// Units of `1 / period` token held, in u128 (no overflow: < 2^127).
fn units(band: &Band) -> u128 {
    band.level().tokens as u128 * band.limit().period_ms() as u128 + band.level().fraction as u128
}

fn check_extreme(
    band: Band,
    other: Limit,
    e1: u64,
    e2: u64,
    cost: u64,
    t1: i64,
    t2: i64,
) -> Result<(), TestCaseError> {
    check_band(&band)?;
    let limit = band.limit();
    let (capacity, refill, period) = (limit.capacity(), limit.refill(), limit.period_ms());
    let full_units = capacity as u128 * period as u128;

    // Refill: exactly refill units per ms, clamped; additive; monotone.
    let r1 = band.refilled(e1);
    check_band(&r1)?;
    prop_assert_eq!(r1.limit(), limit);
    let gained = refill as u128 * e1 as u128; // < 2^127
    if units(&band) + gained < full_units {
        prop_assert_eq!(units(&r1), units(&band) + gained);
    } else {
        prop_assert!(is_exactly_full(&r1));
    }
    if let Some(sum) = e1.checked_add(e2) {
        prop_assert_eq!(r1.refilled(e2), band.refilled(sum));
    }

    // Reset: tight unless saturated.
    let reset = band.reset_after_ms();
    prop_assert!(reset <= MS_MAX);
    prop_assert_eq!(reset == 0, band.is_full());
    if reset < MS_MAX {
        prop_assert!(is_exactly_full(&band.refilled(reset)));
        if reset > 0 {
            prop_assert!(!band.refilled(reset - 1).is_full());
        }
    } else {
        prop_assert!(!band.refilled(MS_MAX - 1).is_full());
    }

    // Wait: tight unless saturated; never when above capacity.
    match band.wait_for(cost) {
        None => prop_assert!(cost > capacity),
        Some(w) => {
            prop_assert!(cost <= capacity);
            prop_assert!(w <= MS_MAX);
            prop_assert_eq!(w == 0, band.allows(cost));
            if w < MS_MAX {
                prop_assert!(band.refilled(w).allows(cost));
                if w > 0 {
                    prop_assert!(!band.refilled(w - 1).allows(cost));
                }
            } else {
                prop_assert!(!band.refilled(MS_MAX - 1).allows(cost));
            }
        }
    }

    // Decide, alone and with a second band.
    let d = decide(&[band], cost);
    check_decision(&[band], cost, &d)?;
    let pair = [band, Band::full(other).refilled(e2)];
    check_decision(&pair, cost, &decide(&pair, cost))?;

    // A change of parameters keeps whole tokens, clamped, and rounds the
    // fraction down: never creates tokens.
    let changed = band.with_limit(other);
    check_band(&changed)?;
    prop_assert_eq!(changed.limit(), other);
    if band.remaining() < other.capacity() {
        prop_assert_eq!(changed.tokens(), band.tokens());
        let (f, f_new) = (
            band.level().fraction as u128,
            changed.level().fraction as u128,
        );
        let (p_old, p_new) = (period as u128, other.period_ms() as u128);
        prop_assert!(f_new * p_old <= f * p_new);
        prop_assert!((f_new + 1) * p_old > f * p_new);
    } else {
        prop_assert!(is_exactly_full(&changed));
    }
    prop_assert_eq!(band.with_limit(limit), band);

    // Refund: exactly `cost` tokens, clamped.
    let refunded = band.refunded(cost);
    check_band(&refunded)?;
    if (band.tokens() as u128 + cost as u128) < capacity as u128 {
        prop_assert_eq!(refunded.remaining(), band.remaining() + cost);
        prop_assert_eq!(refunded.level().fraction, band.level().fraction);
    } else {
        prop_assert!(is_exactly_full(&refunded));
    }

    // The clock: steps back count as nothing, forward as their length.
    let elapsed = elapsed_ms(t1, t2);
    let want = if t2 > t1 {
        (t2 as i128 - t1 as i128) as u64
    } else {
        0
    };
    prop_assert_eq!(elapsed, want);
    let bands = refill_all(&[band, changed], t1, t2);
    prop_assert_eq!(bands, vec![band.refilled(want), changed.refilled(want)]);
    let under = under_limits(&[band], &[other, limit]);
    prop_assert_eq!(under, vec![changed, Band::full(limit)]);
    Ok(())
}

proptest! {
    #![proptest_config(Config::with_cases(2000))]

    #[test]
    fn extremes_never_panic_and_keep_invariants(
        band in band_in(extreme_params()),
        other in extreme_params(),
        e1 in extreme_elapsed(),
        e2 in extreme_elapsed(),
        cost in prop_oneof![Just(0u64), Just(1u64), Just(MAX_PARAM), 0..=MAX_PARAM, 0..=1000u64],
        t1 in extreme_time(),
        t2 in extreme_time(),
    ) {
        check_extreme(band, other.limit(), e1, e2, cost, t1, t2)?;
    }
}

proptest! {
    #![proptest_config(Config::with_cases(400))]

    #[test]
    fn extreme_sequences_keep_invariants(
        base in extreme_params(),
        start in extreme_time(),
        ops in prop::collection::vec(
            (prop_oneof![step(), extreme_elapsed().prop_map(|e| Step::Ms(e as i64))], op(MAX_PARAM, MAX_PARAM))
                .prop_map(|(s, op)| op.with_step(s)),
            1..30,
        ),
    ) {
        run_invariants(base, start, &ops)?;
    }
}
