//! Replication beyond one primary and one replica: a chain, a replica that
//! restarts (partial resync) or starts empty (full sync), and a replica
//! promoted with `REPLICAOF NO ONE`.

use crate::support::*;
use redis::Connection;
use std::time::Instant;

/// Every node may serve replicas: a diskless sync then starts at once
/// (7.0+ would wait 5 s for more replicas).
const FAST_SYNC: [&str; 2] = ["--repl-diskless-sync-delay", "0"];

fn primary() -> Server {
    Server::start_with(&FAST_SYNC)
}

/// A replica of the server on `port`, its link up; `extra` configuration
/// after the rest.
fn replica_of(port: u16, extra: &[&str]) -> Server {
    let mut args = FAST_SYNC.to_vec();
    args.extend(extra);
    start_replica(port, &args)
}

/// Asserts that `key` expires at the same moment on both servers: the
/// expiry is derived from the replicated state, not from a clock.
fn assert_same_expiry(a: &mut Connection, b: &mut Connection, key: &str) {
    if ServerKind::from_env().is_7_or_newer() {
        let at = |con: &mut Connection| -> i64 {
            redis::cmd("PEXPIRETIME").arg(key).query(con).unwrap()
        };
        let expected = at(a);
        assert!(expected > 0, "{key}: PEXPIRETIME {expected}");
        assert_eq!(at(b), expected, "{key}: PEXPIRETIME");
    } else {
        // No PEXPIRETIME before 7.0: two PTTLs, as far apart as they were
        // read.
        let start = Instant::now();
        let first = pttl(a, key);
        let second = pttl(b, key);
        let apart = elapsed_ms(start);
        assert!(first > 0, "{key}: PTTL {first}");
        assert!(
            second <= first + 1 && second >= first - apart,
            "{key}: PTTL {first} then {second}, {apart} ms apart"
        );
    }
}

/// Every key of `primary` is digest-equal, and expires at the same moment,
/// on every replica; replicas ran state commands, never a decision.
fn assert_replicas_equal(primary: &Server, replicas: &[&Server], what: &str) -> Vec<String> {
    let mut con = primary.con();
    let keys = keys(&mut con);
    for replica in replicas {
        assert_digest_equal(primary, replica, &keys, what);
        let mut other = replica.con();
        for key in &keys {
            assert_same_expiry(&mut con, &mut other, key);
        }
        let stats = command_stats(replica);
        assert!(
            stats.contains("cmdstat_charon.setstate:"),
            "{what}: no state command on the replica on port {}",
            replica.port
        );
        for decision in ["rate", "reserve", "acquire"] {
            assert!(
                !stats.contains(&format!("cmdstat_charon.{decision}:")),
                "{what}: a {decision} decision reached the replica on port {}",
                replica.port
            );
        }
    }
    keys
}

/// How many of `keys` hold reservations (a band below zero) on the server
/// `con` is on, read with `CHARON.INSPECT`.
fn reserved(con: &mut Connection, keys: &[String]) -> usize {
    keys.iter()
        .filter(|key| {
            let bands: Option<Vec<[i64; 5]>> = redis::cmd("CHARON.INSPECT")
                .arg(key.as_str())
                .query(con)
                .expect("CHARON.INSPECT");
            bands.is_some_and(|bands| bands.iter().any(|band| band[3] < 0))
        })
        .count()
}

#[test]
fn chain_of_replicas_is_digest_equal() {
    let primary = primary();
    let mut replica = replica_of(primary.port, &[]);
    let mut sub_replica = replica_of(replica.port, &[]);
    let mut con = primary.con();
    let mut rng = Rng::new(0x2545_f491_4f6c_dd1d);
    random_workload(&mut con, &mut rng, "chain", 60, 1500);
    wait_replicated(&primary, &[&replica, &sub_replica]);

    let keys = assert_replicas_equal(&primary, &[&replica, &sub_replica], "chain");
    assert!(keys.len() > 30, "only {} buckets", keys.len());
    // Reservations and several bands went down the chain as states.
    let below_zero = reserved(&mut sub_replica.con(), &keys);
    assert!(below_zero >= 5, "only {below_zero} buckets below zero");
    assert_eq!(reserved(&mut con, &keys), below_zero);
    assert!(
        replica.is_alive() && sub_replica.is_alive(),
        "a replica died"
    );
}

#[test]
fn restarted_replica_resyncs_partially_and_a_new_one_fully() {
    let primary = primary();
    let mut replica = replica_of(primary.port, &[]);
    let mut con = primary.con();
    let mut rng = Rng::new(0x9e37_79b9_7f4a_7c15);
    random_workload(&mut con, &mut rng, "resync", 60, 500);
    wait_replicated(&primary, &[&replica]);
    let syncs = |what: &str| info_u64(&primary.info("stats"), what);
    let (partial, full) = (syncs("sync_partial_ok"), syncs("sync_full"));

    // SHUTDOWN SAVE keeps the replica's replication id and offset in its
    // RDB: on restart it asks for the part of the stream it missed.
    replica.shutdown(true);
    random_workload(&mut con, &mut rng, "resync", 60, 500);
    replica.restart();
    wait_replicated(&primary, &[&replica]);
    assert_eq!(syncs("sync_partial_ok"), partial + 1, "partial resync");
    assert_eq!(syncs("sync_full"), full, "no full sync");
    assert_replicas_equal(&primary, &[&replica], "partial resync");

    // New replicas load the primary's RDB: from disk, and straight from
    // the socket into a temporary database (swapdb).
    let fresh = replica_of(primary.port, &[]);
    let swapdb = replica_of(primary.port, &["--repl-diskless-load", "swapdb"]);
    assert_eq!(syncs("sync_full"), full + 2, "full syncs");
    random_workload(&mut con, &mut rng, "resync", 60, 300);
    wait_replicated(&primary, &[&replica, &fresh, &swapdb]);
    let keys = assert_replicas_equal(
        &primary,
        &[&replica, &fresh, &swapdb],
        "full sync, then the stream",
    );
    assert!(keys.len() > 30, "only {} buckets", keys.len());
    let below_zero = reserved(&mut con, &keys);
    assert!(below_zero >= 3, "only {below_zero} buckets below zero");
    for replica in [&replica, &fresh, &swapdb] {
        assert_eq!(reserved(&mut replica.con(), &keys), below_zero);
    }
}

#[test]
fn promoted_replica_keeps_its_buckets() {
    let primary = primary();
    let replica = replica_of(primary.port, &[]);
    let mut con = primary.con();
    // Before the first token is taken: bounds every refill the test sees.
    let start = Instant::now();
    for _ in 0..3 {
        rate(&mut con, "drained", &["3", "1", "1h"]);
    }
    rate(&mut con, "partial", &["10", "1", "1h", "4"]);
    rate(&mut con, "refunded", &["5", "1", "1h", "5"]);
    assert_eq!(refund(&mut con, "refunded", 2), Some(2));
    wait_replicated(&primary, &[&replica]);
    let keys = ["drained", "partial", "refunded"];
    let at = Instant::now();
    let before: Vec<[i64; 5]> = keys
        .iter()
        .map(|k| peek(&mut con, k, Some(0)).expect("bucket"))
        .collect();
    assert_eq!(before[0][..3], [0, 3, 0]);

    let mut promoted = replica.con();
    let reply: String = redis::cmd("REPLICAOF")
        .arg("NO")
        .arg("ONE")
        .query(&mut promoted)
        .unwrap();
    assert_eq!(reply, "OK");
    assert_eq!(
        info_field(&replica.info("replication"), "role").as_deref(),
        Some("master")
    );
    let owned: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
    assert_digest_equal(&primary, &replica, &owned, "promoted replica");
    for (key, was) in keys.iter().zip(&before) {
        let now = peek(&mut promoted, key, Some(0)).expect("bucket kept");
        assert_same_bucket(*was, now, elapsed_ms(at) + 1, key);
    }

    // It decides on what it had: the drained bucket stays limited.
    let limited = rate(&mut promoted, "drained", &["3", "1", "1h"]);
    assert_eq!(limited[..3], [1, 3, 0], "drained after promotion");
    let elapsed = elapsed_ms(start);
    assert_within(limited[3], 3_600_000, elapsed, "retry after");
    assert_within(limited[4], 3 * 3_600_000, elapsed, "reset after");
    let taken = rate(&mut promoted, "partial", &["10", "1", "1h", "6"]);
    assert_eq!(taken[..4], [0, 10, 0, -1], "the partial bucket's last 6");
    assert_eq!(rate(&mut promoted, "partial", &["10", "1", "1h"])[0], 1);
    assert_eq!(
        rate(&mut promoted, "refunded", &["5", "1", "1h", "2"])[..3],
        [0, 5, 0]
    );
    assert_eq!(rate(&mut promoted, "refunded", &["5", "1", "1h"])[0], 1);
}
