//! A primary and a replica on loopback: the replica receives states, never
//! decisions, and ends up digest-equal.

use crate::harness::*;
use std::time::{Duration, Instant};

struct Pair {
    primary: Server,
    replica: Server,
}

fn pair() -> Pair {
    // Pings to the replica would move the replication offset on their own;
    // a diskless sync would wait 5 s for more replicas on 7.0+.
    let primary = Server::start_with(&[
        "--repl-ping-replica-period",
        "3600",
        "--repl-diskless-sync-delay",
        "0",
    ]);
    let port = primary.port.to_string();
    let mut replica_args = vec!["--replicaof", "127.0.0.1", port.as_str()];
    if primary.kind.is_7_or_newer() {
        // A state command the replica fails to apply kills it: loud.
        replica_args.extend(["--propagation-error-behavior", "panic"]);
    } else {
        skip("propagation-error-behavior needs 7.0: replica errors show in digests only");
    }
    let replica = Server::start_with(&replica_args);
    wait_until("replica link up", || {
        info_field(&replica.info("replication"), "master_link_status").as_deref() == Some("up")
    });
    Pair { primary, replica }
}

fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until the replica has everything the primary sent.
fn sync(pair: &Pair) {
    let mut con = pair.primary.con();
    let acked: i64 = redis::cmd("WAIT")
        .arg(1)
        .arg(10_000)
        .query(&mut con)
        .unwrap();
    assert_eq!(acked, 1, "replica did not acknowledge");
    let offset = info_u64(&pair.primary.info("replication"), "master_repl_offset");
    wait_until("replica offset", || {
        info_u64(&pair.replica.info("replication"), "slave_repl_offset") >= offset
    });
}

/// A small deterministic generator, so a failure replays exactly.
struct Rng(u64);
impl Rng {
    fn next(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[test]
fn random_workload_is_digest_equal_on_the_replica() {
    let pair = pair();
    let mut con = pair.primary.con();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let limits = [
        ["5", "1", "1h"],
        ["10", "3", "2h"],
        ["3", "3", "1d"],
        ["1000", "7", "13m"],
    ];
    for _ in 0..500 {
        let key = format!("key:{}", rng.next(50));
        match rng.next(10) {
            0..=6 => {
                let limit = limits[rng.next(limits.len() as u64) as usize];
                let cost = rng.next(4).to_string();
                let mut args = limit.to_vec();
                args.push(&cost);
                rate(&mut con, &key, &args);
            }
            7 => {
                let tokens = (1 + rng.next(3)).to_string();
                let _: Option<i64> = redis::cmd("CHARON.REFUND")
                    .arg(&key)
                    .arg(tokens)
                    .query(&mut con)
                    .unwrap();
            }
            _ => {
                peek(&mut con, &key, Some(rng.next(3)));
            }
        }
    }
    sync(&pair);
    let mut replica = pair.replica.con();
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut con).unwrap();
    assert!(keys.len() > 20, "only {} keys", keys.len());
    let replica_keys: i64 = redis::cmd("DBSIZE").query(&mut replica).unwrap();
    assert_eq!(replica_keys as usize, keys.len());
    for key in &keys {
        assert_eq!(
            digest(&mut con, key),
            digest(&mut replica, key),
            "digest of {key}"
        );
        let ttl_primary = pttl(&mut con, key);
        let ttl_replica = pttl(&mut replica, key);
        assert!(
            (ttl_primary - ttl_replica).abs() < 1000,
            "{key}: PTTL {ttl_primary} vs {ttl_replica}"
        );
    }

    let stats = pair.replica.info("commandstats").to_lowercase();
    assert!(
        stats.contains("cmdstat_charon.setstate:"),
        "no state command on the replica:\n{stats}"
    );
    assert!(
        !stats.contains("cmdstat_charon.rate:"),
        "a decision reached the replica:\n{stats}"
    );
    assert!(
        !stats.contains("cmdstat_charon.peek:"),
        "a PEEK reached the replica:\n{stats}"
    );
    let mut replica_server = pair.replica;
    assert!(replica_server.is_alive(), "the replica died");
}

#[test]
fn limited_and_cost_zero_replicate_nothing() {
    let pair = pair();
    let mut con = pair.primary.con();
    rate(&mut con, "k", &["1", "1", "1h"]);
    sync(&pair);
    let calls = |server: &Server| {
        let stats = server.info("commandstats").to_lowercase();
        info_field(&stats, "cmdstat_charon.setstate")
            .and_then(|v| {
                v.split(',')
                    .next()
                    .map(|c| c.trim_start_matches("calls=").to_string())
            })
            .unwrap_or_default()
    };
    let replica_calls = calls(&pair.replica);
    let offset = info_u64(&pair.primary.info("replication"), "master_repl_offset");
    assert_eq!(rate(&mut con, "k", &["1", "1", "1h"])[0], 1, "limited");
    assert_eq!(rate(&mut con, "k", &["1", "1", "1h", "0"])[0], 0, "cost 0");
    assert_eq!(
        rate(&mut con, "other", &["1", "1", "1h", "0"])[0],
        0,
        "cost 0, no key"
    );
    assert_eq!(
        rate(&mut con, "k", &["1", "1", "1h", "2"])[0],
        1,
        "cost above capacity"
    );
    peek(&mut con, "k", None);
    assert_eq!(
        info_u64(&pair.primary.info("replication"), "master_repl_offset"),
        offset
    );
    sync(&pair);
    assert_eq!(calls(&pair.replica), replica_calls);
}

#[test]
fn replica_serves_peek_and_refuses_writes() {
    let pair = pair();
    let mut con = pair.primary.con();
    rate(&mut con, "k", &["10", "1", "1h", "4"]);
    sync(&pair);
    let mut replica = pair.replica.con();
    assert_eq!(peek(&mut replica, "k", Some(0)).unwrap()[..3], [0, 10, 6]);
    let error = error_of(&mut replica, &[b"CHARON.RATE", b"k", b"10", b"1", b"1h"]);
    assert!(error.starts_with("READONLY"), "{error}");
}
