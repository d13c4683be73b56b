//! The module and the library on one server, fed the same seeded random
//! sequences (the module on key `m:i`, the library on `l:i`, interleaved
//! call by call): the replies must be equal, counts exactly and times
//! within a few milliseconds (the two calls read the clock a moment apart),
//! and so must the keys' existence and TTLs.
//!
//! Periods are hours to years, so the moment between two calls cannot flip
//! a decision: a token accrues every few minutes at the fastest. The short
//! periods test uses a second-long period on a schedule that keeps every
//! call far from a token's boundary.
//!
//! `CHARON_SCRIPT_SEED=<n>` replays one seed.

use crate::library::*;
use crate::support::*;
use redis::Connection;
use std::time::{Duration, Instant};

type Limit = [&'static str; 3];

/// One band's limits, hours to a day: carry-over between them scales a
/// millisecond of refill by at most about 11 (see `tolerance`).
const HOURS: [Limit; 6] = [
    ["5", "1", "1h"],
    ["10", "3", "2h"],
    ["3", "3", "1d"],
    ["1000", "7", "13h"],
    ["20", "2", "3h"],
    ["7", "2", "90m"],
];

/// Periods of years: fractions of a token carried between them are
/// products beyond 2^53, the library's long multiplication.
const YEARS: [Limit; 3] = [
    ["1", "1", "3650d"],
    ["2", "1", "3649d"],
    ["3", "2", "3000d"],
];

#[derive(Clone, Copy)]
pub struct Features {
    /// LIMIT groups (several bands).
    pub limits: bool,
    /// CHARON.RESERVE.
    pub reserve: bool,
}

fn period_ms(text: &str) -> f64 {
    let digits: String = text.chars().take_while(|c| c.is_ascii_digit()).collect();
    let unit = match &text[digits.len()..] {
        "" | "ms" => 1.0,
        "s" => 1e3,
        "m" => 6e4,
        "h" => 3.6e6,
        "d" => 8.64e7,
        other => panic!("unit {other}"),
    };
    digits.parse::<f64>().unwrap() * unit
}

/// How far apart the two replies' times may be: a millisecond of refill
/// between the two calls, carried from one limit to another, moves a time
/// by the ratio of their refill rates in units (period / refill).
fn tolerance(family: &[Limit]) -> i64 {
    let mut ratio: f64 = 1.0;
    for a in family {
        for b in family {
            let (ra, rb): (f64, f64) = (a[1].parse().unwrap(), b[1].parse().unwrap());
            ratio = ratio.max(period_ms(b[2]) * ra / (period_ms(a[2]) * rb));
        }
    }
    // The module's key and the library's are called one after the other: a
    // gap of up to GAP_MS between them (more on a loaded machine), which a
    // change to a slower rate multiplies by the ratio of the rates.
    GAP_MS * (1 + ratio.ceil() as i64)
}

/// The most time assumed between the module's call and the library's.
const GAP_MS: i64 = 10;

/// One call: which command, and its arguments after the key.
#[derive(Clone, Debug)]
pub struct Op {
    pub op: &'static str,
    pub args: Vec<String>,
}

impl Op {
    fn strs(&self) -> Vec<&str> {
        self.args.iter().map(String::as_str).collect()
    }
}

/// The limit arguments of a configuration, cost and MAXWAIT placed as the
/// grammar allows.
fn limit_args(
    config: &[Limit],
    cost: Option<u64>,
    maxwait: Option<(usize, String)>,
) -> Vec<String> {
    let mut args: Vec<String> = config[0].iter().map(|s| s.to_string()).collect();
    if let Some(cost) = cost {
        args.push(cost.to_string());
    }
    for (i, band) in config.iter().enumerate() {
        if let Some((at, ms)) = &maxwait {
            if *at == i {
                args.push(if i % 2 == 0 { "MAXWAIT" } else { "maxwait" }.into());
                args.push(ms.clone());
            }
        }
        if i > 0 {
            args.push(if i % 2 == 0 { "LIMIT" } else { "limit" }.into());
            args.extend(band.iter().map(|s| s.to_string()));
        }
    }
    if let Some((at, ms)) = maxwait {
        if at == config.len() {
            args.push("MAXWAIT".into());
            args.push(ms);
        }
    }
    args
}

fn cost(rng: &mut Rng, config: &[Limit]) -> Option<u64> {
    let smallest: u64 = config
        .iter()
        .map(|b| b[0].parse::<u64>().unwrap())
        .min()
        .unwrap();
    match rng.below(12) {
        0 => None,
        1 => Some(0),
        2 => Some(smallest + 1),
        3 => Some(smallest),
        _ => Some(1 + rng.below(3)),
    }
}

const MAXWAITS: [&str; 7] = [
    "0",
    "1000",
    "3600000",
    "36000000",
    "86400000",
    "999999999999",
    "4611686018427387904",
];

fn random_op(rng: &mut Rng, configs: &[Vec<Limit>], features: Features) -> Op {
    let config = rng.pick(configs).clone();
    match rng.below(20) {
        0..=8 => Op {
            op: "RATE",
            args: limit_args(&config, cost(rng, &config), None),
        },
        9..=12 if features.reserve => {
            let at = rng.index(config.len() + 1);
            let ms = rng.pick(&MAXWAITS).to_string();
            Op {
                op: "RESERVE",
                args: limit_args(&config, cost(rng, &config), Some((at, ms))),
            }
        }
        13..=15 => Op {
            op: "REFUND",
            args: vec![rng.pick(&[1u64, 1, 2, 5, 1000]).to_string()],
        },
        _ => {
            let mut args = Vec::new();
            if !rng.chance(25) {
                args.push(rng.pick(&[0u64, 0, 1, 2, 5]).to_string());
            }
            Op { op: "PEEK", args }
        }
    }
}

/// A key's configurations: a few, so that its limits change now and then
/// (carry-over), and repeat.
fn key_configs(rng: &mut Rng, family: &[Limit], features: Features) -> Vec<Vec<Limit>> {
    (0..3)
        .map(|_| {
            let bands = if features.limits { 1 + rng.index(3) } else { 1 };
            (0..bands).map(|_| *rng.pick(family)).collect()
        })
        .collect()
}

fn normalize(error: &str) -> String {
    let mut error = error.to_string();
    for op in ["RATE", "PEEK", "REFUND", "RESERVE"] {
        error = error.replace(
            &format!("CHARON.{op}"),
            &format!("charon_{}", op.to_lowercase()),
        );
    }
    error
}

/// Whether two replies agree: counts exactly, times within `tolerance` ms
/// (0 and -1 exactly: a full band and "never" do not depend on the clock).
pub fn agree(module: &Reply, library: &Reply, tolerance: i64) -> bool {
    match (module, library) {
        (Reply::Verdict(a), Reply::Verdict(b)) => {
            a[..3] == b[..3]
                && (3..5).all(|i| {
                    if a[i] <= 0 || b[i] <= 0 {
                        a[i] == b[i]
                    } else {
                        (a[i] - b[i]).abs() <= tolerance
                    }
                })
        }
        (Reply::Error(a), Reply::Error(b)) => normalize(a) == normalize(b),
        _ => module == library,
    }
}

fn pttl_agree(module: i64, library: i64, tolerance: i64) -> bool {
    if module < 0 || library < 0 {
        module == library
    } else {
        (module - library).abs() <= tolerance
    }
}

fn seeds(default: &[u64]) -> Vec<u64> {
    match std::env::var("CHARON_SCRIPT_SEED") {
        Ok(seed) => vec![seed.parse().expect("CHARON_SCRIPT_SEED is an integer")],
        Err(_) => default.to_vec(),
    }
}

struct Pair<'a> {
    con: &'a mut Connection,
    kind: &'a ServerKind,
    library: &'a [Backend],
    history: Vec<Vec<String>>,
}

impl Pair<'_> {
    /// One op on module key `m:i` and library key `l:i`; compares. Errs
    /// with the key's history.
    fn step(
        &mut self,
        n: usize,
        key: usize,
        op: &Op,
        tolerance: i64,
        seed: u64,
    ) -> Result<(), String> {
        let (m, l) = (format!("m:{key}"), format!("l:{key}"));
        let backend = &self.library[n % self.library.len()];
        let module = Backend::Module.call(self.con, op.op, &m, &op.strs());
        let library = backend.call(self.con, op.op, &l, &op.strs());
        let line = format!(
            "#{n} {} {} {}: module {module:?}, {} {library:?}",
            op.op,
            key,
            op.args.join(" "),
            backend.name()
        );
        self.history[key].push(line);
        let fail = |what: &str, history: &[String]| {
            Err(format!(
                "seed {seed} (CHARON_SCRIPT_SEED={seed} replays it), {what}, on {}; key {key}'s calls:\n{}",
                self.kind.name,
                history.join("\n")
            ))
        };
        if !agree(&module, &library, tolerance) {
            return fail("replies differ", &self.history[key]);
        }
        let (pm, pl) = (pttl(self.con, &m), pttl(self.con, &l));
        if !pttl_agree(pm, pl, tolerance) {
            return fail(
                &format!("TTLs differ: module {pm}, library {pl}"),
                &self.history[key],
            );
        }
        check_bucket(self.con, self.kind, &l);
        Ok(())
    }
}

/// `ops` random calls over `keys` keys, limits from `family`.
pub fn run(seed: u64, ops: usize, keys: usize, family: &[Limit], features: Features) {
    let server = Server::start();
    let kind = ServerKind::from_env();
    let mut con = server.con();
    let library = load_library(&mut con, &kind);
    let mut rng = Rng::new(seed);
    let configs: Vec<Vec<Vec<Limit>>> = (0..keys)
        .map(|_| key_configs(&mut rng, family, features))
        .collect();
    let tolerance = tolerance(family);
    let mut pair = Pair {
        con: &mut con,
        kind: &kind,
        library: &library,
        history: vec![Vec::new(); keys],
    };
    for n in 0..ops {
        let key = rng.index(keys);
        let op = random_op(&mut rng, &configs[key], features);
        if let Err(message) = pair.step(n, key, &op, tolerance, seed) {
            panic!("{message}");
        }
        if rng.chance(10) {
            std::thread::sleep(Duration::from_millis(1 + rng.below(15)));
        }
    }
    // Every bucket, read through PEEK 0 on both sides, one last time.
    for key in 0..keys {
        let op = Op {
            op: "PEEK",
            args: vec!["0".into()],
        };
        if let Err(message) = pair.step(ops, key, &op, tolerance, seed) {
            panic!("{message}");
        }
    }
}

const ONE_BAND: Features = Features {
    limits: false,
    reserve: false,
};
const LIMITS: Features = Features {
    limits: true,
    reserve: false,
};
const ALL: Features = Features {
    limits: true,
    reserve: true,
};

#[test]
fn differential_one_band() {
    for seed in seeds(&[1, 2, 3]) {
        run(seed, 400, 6, &HOURS, ONE_BAND);
        run(seed + 100, 150, 3, &YEARS, ONE_BAND);
    }
}

#[test]
fn differential_limits() {
    for seed in seeds(&[11, 12, 13]) {
        run(seed, 400, 6, &HOURS, LIMITS);
        run(seed + 100, 150, 3, &YEARS, LIMITS);
    }
}

#[test]
fn differential_reserve() {
    for seed in seeds(&[21, 22, 23]) {
        run(seed, 400, 6, &HOURS, ALL);
        run(seed + 100, 150, 3, &YEARS, ALL);
    }
}

/// Period one second, two tokens a second (a token every 500 ms), capacity
/// 1000 (never full again within the test): after a first large charge,
/// every call happens 250 ms from the token boundaries on both keys (all
/// charges and refunds move whole tokens, so the boundaries keep their
/// phase), and the MAXWAIT values are multiples of 500 ms: timing noise of
/// up to 200 ms cannot change a count or a decision.
fn short_periods(seed: u64, features: Features) {
    let server = Server::start();
    let kind = ServerKind::from_env();
    let mut con = server.con();
    let library = load_library(&mut con, &kind);
    let mut rng = Rng::new(seed);
    let mut config: Vec<Limit> = vec![["1000", "2", "1s"]];
    if features.limits {
        config.push(["1000", "4", "2s"]);
    }
    let configs = vec![config.clone()];
    let mut pair = Pair {
        con: &mut con,
        kind: &kind,
        library: &library,
        history: vec![Vec::new()],
    };
    let first = Op {
        op: "RATE",
        args: limit_args(&config, Some(997), None),
    };
    let start = Instant::now();
    pair.step(0, 0, &first, 5, seed)
        .unwrap_or_else(|m| panic!("{m}"));
    let mut slot = 0;
    for n in 1..=12u64 {
        // Slots are 500 ms apart, 250 ms after the first charge's phase;
        // now and then one is left out.
        let target = Duration::from_millis(250 + 500 * slot);
        slot += 1 + rng.below(2);
        let now = start.elapsed();
        if now > target {
            skip("short periods: the machine fell behind the schedule; comparisons stop here");
            return;
        }
        std::thread::sleep(target - now);
        let op = match rng.below(4) {
            0 if features.reserve => Op {
                op: "RESERVE",
                args: limit_args(
                    &config,
                    Some(rng.below(4)),
                    Some((
                        config.len(),
                        rng.pick(&["0", "500", "1000", "5000"]).to_string(),
                    )),
                ),
            },
            _ => random_op(
                &mut rng,
                &configs,
                Features {
                    limits: features.limits,
                    reserve: false,
                },
            ),
        };
        // Refunds of 1000 would fill the bucket (and lose the phase).
        let op = if op.op == "REFUND" {
            Op {
                op: "REFUND",
                args: vec!["1".into()],
            }
        } else {
            op
        };
        let late = start.elapsed().saturating_sub(target);
        if late > Duration::from_millis(150) {
            skip("short periods: a call was too late to be compared; comparisons stop here");
            return;
        }
        pair.step(n as usize, 0, &op, 5, seed)
            .unwrap_or_else(|m| panic!("{m}"));
    }
}

#[test]
fn differential_short_periods() {
    for seed in seeds(&[31]) {
        short_periods(seed, ONE_BAND);
    }
}

#[test]
fn differential_short_periods_limits_reserve() {
    for seed in seeds(&[41]) {
        short_periods(seed, ALL);
    }
}
