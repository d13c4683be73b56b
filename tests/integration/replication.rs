//! A primary and a replica on loopback: the replica receives states, never
//! decisions, and ends up digest-equal.

use crate::support::*;

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
    let replica = start_replica(primary.port, &[]);
    Pair { primary, replica }
}

/// Waits until the replica has everything the primary sent.
fn sync(pair: &Pair) {
    let acked = wait_acks(&mut pair.primary.con(), 1);
    assert_eq!(acked, 1, "replica did not acknowledge");
    wait_replicated(&pair.primary, &[&pair.replica]);
}

#[test]
fn random_workload_is_digest_equal_on_the_replica() {
    let pair = pair();
    let mut con = pair.primary.con();
    let mut rng = Rng::new(0x9e37_79b9_7f4a_7c15);
    random_workload(&mut con, &mut rng, "key", 50, 500);
    sync(&pair);
    let mut replica = pair.replica.con();
    let keys = keys(&mut con);
    assert!(keys.len() > 20, "only {} keys", keys.len());
    assert_digest_equal(&pair.primary, &pair.replica, &keys, "replica");
    for key in &keys {
        let ttl_primary = pttl(&mut con, key);
        let ttl_replica = pttl(&mut replica, key);
        assert!(
            (ttl_primary - ttl_replica).abs() < 1000,
            "{key}: PTTL {ttl_primary} vs {ttl_replica}"
        );
    }

    let stats = command_stats(&pair.replica);
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
        let stats = command_stats(server);
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
