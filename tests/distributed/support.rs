//! What the distributed tests share: polling with a deadline, a replayable
//! random workload, waiting for replicas, and comparing buckets across
//! servers.

use crate::harness::*;
use redis::{Connection, ConnectionLike};
use std::time::{Duration, Instant};

/// What `DEBUG DIGEST-VALUE` answers for a key that does not exist.
pub const NO_KEY: &str = "0000000000000000000000000000000000000000";

/// Polls `ready` until it holds; fails after 60 s (generous: a deadline, not
/// a timing assertion).
pub fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A small deterministic generator, so a failure replays exactly.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

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
        let key = format!("{prefix}:{}", rng.next(keys));
        let limit = LIMITS[rng.next(LIMITS.len() as u64) as usize];
        match rng.next(20) {
            0..=13 => {
                let cost = rng.next(5).to_string();
                let mut args = limit.to_vec();
                args.push(&cost);
                rate(con, &key, &args);
            }
            14..=16 => {
                let tokens = 1 + rng.next(3);
                let _: Option<i64> = redis::cmd("CHARON.REFUND")
                    .arg(&key)
                    .arg(tokens)
                    .query(con)
                    .expect("CHARON.REFUND");
            }
            17 if rng.next(2) == 0 => {
                // A script's decisions replicate as their states too.
                let other = format!("{prefix}:{}", rng.next(keys));
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
                let other = format!("{prefix}:{}", rng.next(keys));
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
                peek(con, &key, Some(rng.next(3)));
            }
        }
    }
}

/// Every key of the server the connection is on.
pub fn keys(con: &mut Connection) -> Vec<String> {
    let mut keys: Vec<String> = redis::cmd("KEYS").arg("*").query(con).expect("KEYS");
    keys.sort();
    keys
}

pub fn dbsize(con: &mut Connection) -> usize {
    redis::cmd("DBSIZE").query::<usize>(con).expect("DBSIZE")
}

/// Waits until every replica has applied everything the primary has sent
/// (chained replicas share the primary's offsets).
pub fn wait_replicated(primary: &Server, replicas: &[&Server]) {
    let offset = info_u64(&primary.info("replication"), "master_repl_offset");
    for replica in replicas {
        wait_until(
            &format!("replica on port {} caught up", replica.port),
            || {
                let info = replica.info("replication");
                info_field(&info, "master_link_status").as_deref() == Some("up")
                    && info_u64(&info, "slave_repl_offset") >= offset
            },
        );
    }
}

/// `WAIT replicas` on the connection that wrote: how many acknowledged.
pub fn wait_acks(con: &mut Connection, replicas: usize) -> usize {
    redis::cmd("WAIT")
        .arg(replicas)
        .arg(10_000)
        .query(con)
        .expect("WAIT")
}

/// Asserts that `keys` have the same digest on `replica` as on `primary`
/// (and that the key counts match).
pub fn assert_digest_equal(primary: &Server, replica: &Server, keys: &[String], what: &str) {
    let (mut a, mut b) = (primary.con(), replica.con());
    assert_eq!(
        dbsize(&mut b),
        dbsize(&mut a),
        "{what}: key count on port {} vs port {}",
        replica.port,
        primary.port
    );
    for key in keys {
        let expected = digest(&mut a, key);
        assert_eq!(digest(&mut b, key), expected, "{what}: digest of {key}");
    }
}

/// The commands a server has run, lowercased (`cmdstat_charon.rate:...`).
pub fn command_stats(server: &Server) -> String {
    server.info("commandstats").to_lowercase()
}

pub use crate::harness::{peek as peek_via, rate as rate_via};

/// `CHARON.REFUND` on any connection; `None` for no key.
pub fn refund_via(con: &mut dyn ConnectionLike, key: &str, tokens: u64) -> Option<i64> {
    redis::cmd("CHARON.REFUND")
        .arg(key)
        .arg(tokens)
        .query(con)
        .unwrap_or_else(|e| panic!("CHARON.REFUND {key} {tokens}: {e}"))
}

/// Asserts `expected - elapsed_ms <= value <= expected`: a time reported
/// after at most `elapsed_ms` of refill since it was exactly `expected`.
pub fn assert_within(value: i64, expected: i64, elapsed_ms: i64, what: &str) {
    assert!(
        value <= expected && value >= expected - elapsed_ms,
        "{what}: {value} not within {elapsed_ms} ms below {expected}"
    );
}

/// Milliseconds since `since`, plus one for the server's clock reading
/// whole milliseconds.
pub fn elapsed_ms(since: Instant) -> i64 {
    since.elapsed().as_millis() as i64 + 1
}
