//! A replayable random workload of decisions, refunds and peeks.

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

/// A script that decides twice, with the same limit, and answers both
/// `limited` flags.
const TWO_DECISIONS: &str = "\
    local a = redis.call('CHARON.RATE', KEYS[1], ARGV[1], ARGV[2], ARGV[3]) \
    local b = redis.call('CHARON.RATE', KEYS[2], ARGV[1], ARGV[2], ARGV[3], 2) \
    return {a[1], b[1]}";

/// `ops` random requests on keys `<prefix>:0..keys`: decisions with varied
/// limits and costs (allowed, limited, cost 0, cost above capacity),
/// refunds (some fill a bucket, which deletes it), peeks, and now and then
/// two decisions in one `MULTI` or in one script.
pub fn random_workload(con: &mut Connection, rng: &mut Rng, prefix: &str, keys: u64, ops: usize) {
    for _ in 0..ops {
        let key = format!("{prefix}:{}", rng.below(keys));
        let limit = LIMITS[rng.index(LIMITS.len())];
        match rng.below(20) {
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
            _ => {
                peek(con, &key, Some(rng.below(3)));
            }
        }
    }
}
