//! Clients waiting in `CHARON.ACQUIRE` when their primary dies: the replica
//! already holds their reservations (as state), and once promoted it keeps
//! them exactly, blocks no one, and lets no later request jump the line.

use crate::support::*;
use redis::{Connection, Value};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const HOUR_MS: i64 = 3_600_000;

/// Every node may serve replicas: a diskless sync starts at once.
const FAST_SYNC: [&str; 2] = ["--repl-diskless-sync-delay", "0"];

/// A wait far longer than the test: a waiter's turn is hours away.
const TIMEOUT_MS: &str = "86400000";

/// How long a waiter's connection may take to notice that its server died.
const HANGUP_DEADLINE: Duration = Duration::from_secs(10);

/// `CHARON.INSPECT key`: one `[capacity refill period_ms tokens reset_ms]`
/// per band; `None` for no key.
fn inspect(con: &mut Connection, key: &str) -> Option<Vec<[i64; 5]>> {
    redis::cmd("CHARON.INSPECT")
        .arg(key)
        .query(con)
        .unwrap_or_else(|e| panic!("CHARON.INSPECT {key}: {e}"))
}

/// The tokens of every band of `key`.
fn tokens(con: &mut Connection, key: &str) -> Vec<i64> {
    inspect(con, key)
        .unwrap_or_else(|| panic!("{key}: no bucket"))
        .iter()
        .map(|band| band[3])
        .collect()
}

/// Asserts that two INSPECT readings `apart` ms apart show the same bucket:
/// equal limits and tokens, the reset time moved by no more than that.
fn assert_same_bands(was: &[[i64; 5]], now: &[[i64; 5]], apart: i64, what: &str) {
    assert_eq!(was.len(), now.len(), "{what}: bands {was:?} then {now:?}");
    for (a, b) in was.iter().zip(now) {
        assert_eq!(a[..4], b[..4], "{what}: band {a:?} then {b:?}");
        assert!(
            b[4] <= a[4] && b[4] >= a[4] - apart,
            "{what}: reset {} then {} ({apart} ms apart)",
            a[4],
            b[4]
        );
    }
}

fn five(con: &mut Connection, name: &str, key: &str, args: &[&str]) -> [i64; 5] {
    let reply: Vec<i64> = redis::cmd(name)
        .arg(key)
        .arg(args)
        .query(con)
        .unwrap_or_else(|e| panic!("{name} {key} {args:?}: {e}"));
    reply.try_into().expect("5 integers")
}

/// A client blocked in `CHARON.ACQUIRE` on another thread; what it was
/// answered (an error when its connection broke) arrives on `done`.
struct Waiter {
    what: String,
    done: mpsc::Receiver<redis::RedisResult<Value>>,
}

fn start_waiter(server: &Server, key: &str, args: &[&str]) -> Waiter {
    let mut con = server.con();
    let (tx, done) = mpsc::channel();
    let (key, args): (String, Vec<String>) =
        (key.into(), args.iter().map(|s| s.to_string()).collect());
    let what = format!("ACQUIRE {key} {args:?}");
    std::thread::spawn(move || {
        let reply = redis::cmd("CHARON.ACQUIRE")
            .arg(&key)
            .arg(&args)
            .query::<Value>(&mut con);
        let _ = tx.send(reply);
    });
    Waiter { what, done }
}

#[test]
fn waiters_lose_their_primary_and_the_promoted_replica_keeps_their_turns() {
    let mut primary = Server::start_with(&FAST_SYNC);
    let mut replica_args = FAST_SYNC.to_vec();
    replica_args.extend(["--repl-ping-replica-period", "1"]);
    let replica = start_replica(primary.port, &replica_args);
    let mut con = primary.con();

    // Taken before the first token: bounds every refill the test sees.
    let start = Instant::now();
    // One token an hour, the only one taken now: each waiter's turn is an
    // hour after the one before.
    assert_eq!(
        five(&mut con, "CHARON.RATE", "line", &["1", "1", "1h"]),
        [0, 1, 0, -1, HOUR_MS],
    );
    // Two bands, cost 2: the first band goes below zero, the second not.
    let bands = ["2", "1", "1h", "2", "LIMIT", "10", "1", "1h"];
    assert_eq!(
        five(&mut con, "CHARON.RATE", "pair", &bands)[..4],
        [0, 2, 0, -1]
    );

    let line_waiters = 4;
    let mut waiters: Vec<Waiter> = (0..line_waiters)
        .map(|_| start_waiter(&primary, "line", &["1", "1", "1h", "TIMEOUT", TIMEOUT_MS]))
        .collect();
    let mut pair_args = bands.to_vec();
    pair_args.extend(["TIMEOUT", TIMEOUT_MS]);
    waiters.push(start_waiter(&primary, "pair", &pair_args));
    let expected_waiting = waiters.len() as u64;
    wait_until("every client waiting on the primary", || {
        info_u64(&primary.info("charon"), "charon_waiting") == expected_waiting
    });
    for waiter in &waiters {
        assert!(
            waiter.done.try_recv().is_err(),
            "{}: answered before its turn",
            waiter.what
        );
    }
    let held_line = -(line_waiters as i64);
    assert_eq!(tokens(&mut con, "line"), [held_line]);
    assert_eq!(tokens(&mut con, "pair"), [-2, 6]);

    // The replica holds the reservations, as states, before the crash.
    let mut at_replica = replica.con();
    wait_until("the reservations on the replica", || {
        inspect(&mut at_replica, "line").map(|b| b[0][3]) == Some(held_line)
            && inspect(&mut at_replica, "pair").map(|b| b[0][3]) == Some(-2)
    });
    wait_replicated(&primary, &[&replica]);
    let keys = vec!["line".to_string(), "pair".to_string()];
    assert_digest_equal(&primary, &replica, &keys, "reservations before the crash");
    let read_at = Instant::now();
    let before: Vec<Vec<[i64; 5]>> = keys
        .iter()
        .map(|k| inspect(&mut con, k).expect("bucket"))
        .collect();
    let stats = command_stats(&replica);
    assert!(
        !stats.contains("cmdstat_charon.acquire:") && !stats.contains("cmdstat_charon.rate:"),
        "a decision reached the replica:\n{stats}"
    );
    assert_eq!(info_u64(&replica.info("charon"), "charon_waiting"), 0);

    // The primary dies with its clients blocked: every one of them hears
    // of it (an error, not a grant and not silence).
    primary.kill();
    let hung_up = Instant::now();
    for waiter in &waiters {
        let left = HANGUP_DEADLINE.saturating_sub(hung_up.elapsed());
        match waiter.done.recv_timeout(left) {
            Ok(Err(_)) => {}
            Ok(Ok(reply)) => panic!("{}: answered {reply:?} by a dead server", waiter.what),
            Err(_) => panic!(
                "{}: still hanging {HANGUP_DEADLINE:?} after its server died",
                waiter.what
            ),
        }
    }

    // Promoted, the replica holds exactly the reservations.
    let promoted: String = redis::cmd("REPLICAOF")
        .arg("NO")
        .arg("ONE")
        .query(&mut at_replica)
        .unwrap();
    assert_eq!(promoted, "OK");
    assert_eq!(
        info_field(&replica.info("replication"), "role").as_deref(),
        Some("master")
    );
    for (key, was) in keys.iter().zip(&before) {
        let now = inspect(&mut at_replica, key).expect("bucket kept");
        assert_same_bands(was, &now, elapsed_ms(read_at) + 1, key);
    }
    assert_eq!(tokens(&mut at_replica, "line"), [held_line]);
    assert_eq!(tokens(&mut at_replica, "pair"), [-2, 6]);
    let info = replica.info("charon");
    assert_eq!(info_u64(&info, "charon_waiting"), 0, "{info}");
    let pong: String = redis::cmd("PING").query(&mut at_replica).unwrap();
    assert_eq!(pong, "PONG");

    // It decides on what it holds: the line is taken for 5 hours (the first
    // token and 4 turns), and a new request's turn comes after them.
    let refused = five(
        &mut at_replica,
        "CHARON.RESERVE",
        "line",
        &["1", "1", "1h", "MAXWAIT", "0"],
    );
    assert_eq!(refused[..3], [1, 1, 0], "{refused:?}");
    let elapsed = elapsed_ms(start);
    assert_within(refused[3], 5 * HOUR_MS, elapsed, "retry after the line");
    let now_refused = five(
        &mut at_replica,
        "CHARON.ACQUIRE",
        "line",
        &["1", "1", "1h", "TIMEOUT", "0"],
    );
    assert_eq!(
        now_refused[..3],
        [1, 1, 0],
        "ACQUIRE TIMEOUT 0: {now_refused:?}"
    );
    let next = five(
        &mut at_replica,
        "CHARON.RESERVE",
        "line",
        &["1", "1", "1h", "MAXWAIT", &(6 * HOUR_MS).to_string()],
    );
    assert_eq!(next[..3], [0, 1, 0], "{next:?}");
    assert_within(next[3], 5 * HOUR_MS, elapsed_ms(start), "the next turn");
    assert_eq!(tokens(&mut at_replica, "line"), [held_line - 1]);
    let limited = five(&mut at_replica, "CHARON.RATE", "pair", &bands);
    assert_eq!(limited[..3], [1, 2, 0], "{limited:?}");

    let mut standing = replica;
    assert!(standing.is_alive(), "the promoted replica died");
    let log = standing.log_text();
    for mark in [
        "crashed by signal",
        "BUG REPORT START",
        "Guru Meditation",
        "ASSERTION FAILED",
        "panicked",
    ] {
        assert!(
            !log.contains(mark),
            "the promoted replica's log says {mark:?}"
        );
    }
}
