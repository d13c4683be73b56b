//! A replayable random workload of decisions, refunds, peeks, reservations
//! and several-band limits.

use crate::support::commands::{peek, rate, refund};
use crate::support::rng::Rng;
use redis::Connection;

/// Limits the workload picks from: periods of an hour or more, so the few
/// seconds a test takes never refill a whole token.
const LIMITS: [[&str; 3]; 4] = [
    ["5", "1", "1h"],
    ["10", "3", "2h"],
    ["3", "3", "1d"],
    ["1000", "7", "13h"],
];

/// Further bands for `LIMIT` groups: hours and days again.
const BANDS: [[&str; 3]; 4] = [
    ["2", "1", "3h"],
    ["8", "2", "1d"],
    ["50", "5", "6h"],
    ["4", "1", "2d"],
];

/// How long a reservation may wait (ms): none, a second, an hour, a day.
/// With refills of a few tokens per hour, the longer ones leave buckets
/// below zero.
const MAXWAITS: [&str; 4] = ["0", "1000", "3600000", "86400000"];

/// A script that decides twice, with the same limit, and answers both
/// `limited` flags.
const TWO_DECISIONS: &str = "\
    local a = redis.call('CHARON.RATE', KEYS[1], ARGV[1], ARGV[2], ARGV[3]) \
    local b = redis.call('CHARON.RATE', KEYS[2], ARGV[1], ARGV[2], ARGV[3], 2) \
    return {a[1], b[1]}";

/// The arguments after the key: `limit`, maybe a cost, 0 to `most_bands`
/// `LIMIT` groups (keyword in varied case), and, when `wait` names the
/// keyword and its value, that pair at a random place after the cost.
fn request(
    rng: &mut Rng,
    limit: [&str; 3],
    most_bands: u64,
    wait: Option<(&str, &str)>,
) -> Vec<String> {
    let mut args: Vec<String> = limit.iter().map(|s| s.to_string()).collect();
    if rng.chance(70) {
        args.push(rng.below(5).to_string());
    }
    let mut groups: Vec<Vec<String>> = (0..rng.below(most_bands + 1))
        .map(|_| {
            let band = BANDS[rng.index(BANDS.len())];
            let word = *rng.pick(&["LIMIT", "limit", "Limit"]);
            std::iter::once(word)
                .chain(band)
                .map(str::to_string)
                .collect()
        })
        .collect();
    if let Some((keyword, value)) = wait {
        let at = rng.index(groups.len() + 1);
        groups.insert(at, vec![keyword.to_string(), value.to_string()]);
    }
    args.extend(groups.into_iter().flatten());
    args
}

/// Sends `name key args...`, expecting the 5 integers.
fn decide(con: &mut Connection, name: &str, key: &str, args: &[String]) -> [i64; 5] {
    let reply: Vec<i64> = redis::cmd(name)
        .arg(key)
        .arg(args)
        .query(con)
        .unwrap_or_else(|e| panic!("{name} {key} {args:?}: {e}"));
    reply.try_into().expect("5 integers")
}

/// `ops` random requests on keys `<prefix>:0..keys`: decisions with varied
/// limits and costs (allowed, limited, cost 0, cost above capacity),
/// refunds (some fill a bucket, which deletes it), peeks, and now and then
/// two decisions in one `MULTI` or in one script; decisions with several
/// bands (`LIMIT` groups), reservations (`CHARON.RESERVE ... MAXWAIT`, some
/// leaving a bucket below zero) and `CHARON.ACQUIRE ... TIMEOUT 0` (which
/// never blocks). Every choice comes from `rng`.
pub fn random_workload(con: &mut Connection, rng: &mut Rng, prefix: &str, keys: u64, ops: usize) {
    for _ in 0..ops {
        let key = format!("{prefix}:{}", rng.below(keys));
        let limit = LIMITS[rng.index(LIMITS.len())];
        match rng.below(26) {
            0..=13 => {
                let cost = rng.below(5).to_string();
                let mut args = limit.to_vec();
                args.push(&cost);
                rate(con, &key, &args);
            }
            14..=16 => {
                refund(con, &key, 1 + rng.below(3));
            }
            17 if rng.chance(50) => {
                // A script's decisions replicate as their states too.
                let other = format!("{prefix}:{}", rng.below(keys));
                let limited: Vec<i64> = redis::cmd("EVAL")
                    .arg(TWO_DECISIONS)
                    .arg(2)
                    .arg(&key)
                    .arg(&other)
                    .arg(&limit[..])
                    .query(con)
                    .expect("EVAL of two decisions");
                assert_eq!(limited.len(), 2);
            }
            17 => {
                let other = format!("{prefix}:{}", rng.below(keys));
                let replies: Vec<Vec<i64>> = redis::pipe()
                    .atomic()
                    .cmd("CHARON.RATE")
                    .arg(&key)
                    .arg(&limit[..])
                    .cmd("CHARON.RATE")
                    .arg(&other)
                    .arg(&limit[..])
                    .arg(2)
                    .query(con)
                    .expect("MULTI of two decisions");
                assert_eq!(replies.len(), 2);
            }
            18..=19 => {
                peek(con, &key, Some(rng.below(3)));
            }
            20..=21 => {
                // Several bands: the stored ones carry over by position.
                let args = request(rng, limit, 3, None);
                decide(con, "CHARON.RATE", &key, &args);
            }
            22..=24 => {
                let maxwait = *rng.pick(&MAXWAITS);
                let keyword = *rng.pick(&["MAXWAIT", "maxwait"]);
                let args = request(rng, limit, 2, Some((keyword, maxwait)));
                let reply = decide(con, "CHARON.RESERVE", &key, &args);
                assert!(reply[2] >= 0, "RESERVE {key} {args:?}: {reply:?}");
            }
            _ => {
                // TIMEOUT 0: answered at once, as RESERVE with MAXWAIT 0.
                let args = request(rng, limit, 2, Some(("TIMEOUT", "0")));
                let reply = decide(con, "CHARON.ACQUIRE", &key, &args);
                assert!(
                    reply[3] == -1 || reply[0] == 1,
                    "ACQUIRE {key} {args:?} TIMEOUT 0 waited: {reply:?}"
                );
            }
        }
    }
}
