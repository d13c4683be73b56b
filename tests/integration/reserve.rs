//! Waiting in line: `CHARON.RESERVE` (told when its turn comes) and
//! `CHARON.ACQUIRE` (answered when its turn comes), on a real server.

use crate::support::*;
use redis::{Connection, Value};
use std::time::{Duration, Instant};

fn command(con: &mut Connection, name: &str, key: &str, args: &[&str]) -> [i64; 5] {
    redis::cmd(name)
        .arg(key)
        .arg(args)
        .query(con)
        .unwrap_or_else(|e| panic!("{name} {key} {args:?}: {e}"))
}

fn reserve(con: &mut Connection, key: &str, args: &[&str]) -> [i64; 5] {
    command(con, "CHARON.RESERVE", key, args)
}

fn acquire(con: &mut Connection, key: &str, args: &[&str]) -> [i64; 5] {
    command(con, "CHARON.ACQUIRE", key, args)
}

fn tokens(con: &mut Connection, key: &str) -> Vec<i64> {
    let bands: Option<Vec<[i64; 5]>> = redis::cmd("CHARON.INSPECT").arg(key).query(con).unwrap();
    bands
        .unwrap_or_default()
        .iter()
        .map(|band| band[3])
        .collect()
}

/// The README's line: one token, ten per second.
#[test]
fn three_in_line_and_a_fourth_refused() {
    let server = Server::start();
    let mut con = server.con();
    let started = Instant::now();
    let args = ["1", "10", "1s", "MAXWAIT", "1000"];
    let first = reserve(&mut con, "q", &args);
    let second = reserve(&mut con, "q", &args);
    let third = reserve(&mut con, "q", &args);
    let apart = elapsed_ms(started);
    assert_eq!(first, [0, 1, 0, -1, 100]);
    assert_eq!(second[..3], [0, 1, 0]);
    assert_within(second[3], 100, apart, "second wait");
    assert_eq!(third[..3], [0, 1, 0]);
    assert_within(third[3], 200, apart, "third wait");
    assert_eq!(tokens(&mut con, "q"), [-2]);
    // A fourth that may wait only 250 ms is refused, and takes nothing.
    let fourth = reserve(&mut con, "q", &["1", "10", "1s", "MAXWAIT", "250"]);
    assert_eq!(fourth[..3], [1, 1, 0]);
    assert_within(fourth[3], 50, elapsed_ms(started), "fourth retry");
    assert_eq!(tokens(&mut con, "q"), [-2]);
    // RATE is limited until the level is back to the cost; PEEK 0 tells the
    // wait until it is back to zero.
    let rate_reply = rate(&mut con, "q", &["1", "10", "1s"]);
    assert_eq!(rate_reply[..3], [1, 1, 0]);
    let peek_zero = peek(&mut con, "q", Some(0)).unwrap();
    assert_eq!(peek_zero[..3], [1, 1, 0]);
    assert!(peek_zero[3] > 100 && peek_zero[3] <= 200, "{peek_zero:?}");
    // The key lives until the bucket is full again, from below zero.
    let ttl = pttl(&mut con, "q");
    assert!(ttl > 200 && ttl <= 300, "{ttl}");
}

/// `RESERVE ... MAXWAIT 0` is `RATE`; MAXWAIT is required, once.
#[test]
fn maxwait_zero_is_rate_and_the_grammar_is_checked() {
    let server = Server::start();
    let mut con = server.con();
    let hour = ["5", "1", "1h", "2"];
    for _ in 0..3 {
        let by_rate = rate(&mut con, "a", &hour);
        let by_reserve = reserve(&mut con, "b", &["5", "1", "1h", "2", "MAXWAIT", "0"]);
        // Counts exactly; times within the moment between the two calls.
        assert_eq!(by_rate[..3], by_reserve[..3]);
        for field in [3, 4] {
            assert!(
                (by_rate[field] - by_reserve[field]).abs() <= 1000,
                "{by_rate:?} {by_reserve:?}"
            );
        }
        assert_eq!(by_rate[3] == -1, by_reserve[3] == -1);
    }
    assert_eq!(tokens(&mut con, "a"), tokens(&mut con, "b"));
    for (args, error) in [
        (vec!["5", "1", "1h"], "ERR MAXWAIT is required"),
        (
            vec!["5", "1", "1h", "MAXWAIT", "1", "MAXWAIT", "1"],
            "ERR syntax error",
        ),
        (
            vec!["5", "1", "1h", "MAXWAIT", "-1"],
            "ERR maxwait must be a non-negative integer",
        ),
        (
            vec!["5", "1", "1h", "MAXWAIT", "4611686018427387905"],
            "ERR maxwait is out of range",
        ),
        (vec!["5", "1", "1h", "TIMEOUT", "5"], "ERR syntax error"),
    ] {
        let mut argv: Vec<&[u8]> = vec![b"CHARON.RESERVE", b"c"];
        argv.extend(args.iter().map(|a| a.as_bytes()));
        assert_eq!(error_of(&mut con, &argv), error, "{args:?}");
    }
    // MAXWAIT anywhere after the cost, between LIMIT groups too.
    let reply = reserve(
        &mut con,
        "c",
        &[
            "5", "1", "1h", "LIMIT", "9", "1", "1h", "MAXWAIT", "10", "LIMIT", "7", "1", "1h",
        ],
    );
    assert_eq!(reply[..4], [0, 5, 4, -1]);
    assert_eq!(tokens(&mut con, "c"), [4, 8, 6]);
    let info = server.info("charon");
    assert_eq!(info_u64(&info, "charon_reserved"), 3, "{info}");
}

/// ACQUIRE answers when the turn comes, never before; a refused one at
/// once; inside MULTI or a script it never blocks.
#[test]
fn acquire_waits_for_its_turn() {
    let server = Server::start();
    let mut con = server.con();
    let args = ["1", "10", "1s", "TIMEOUT", "1000"];
    assert_eq!(acquire(&mut con, "q", &args), [0, 1, 0, -1, 100]);
    let started = Instant::now();
    let second = acquire(&mut con, "q", &args);
    let waited = elapsed_ms(started);
    assert_eq!(second[..3], [0, 1, 0]);
    assert!(second[3] > 0 && second[3] <= 100, "{second:?}");
    assert!(
        waited >= second[3] - 1,
        "answered after {waited} ms, turn in {}",
        second[3]
    );
    assert!(waited < second[3] + 2000, "answered after {waited} ms");
    // Refused: at once.
    let started = Instant::now();
    let refused = acquire(&mut con, "q", &["1", "10", "1s", "3", "TIMEOUT", "1000"]);
    assert_eq!(refused, [1, 1, 0, -1, refused[4]]);
    assert!(elapsed_ms(started) < 1000);

    // Inside MULTI: RESERVE with MAXWAIT 0, answered at once.
    let _: () = redis::cmd("MULTI").query(&mut con).unwrap();
    let _: () = redis::cmd("CHARON.ACQUIRE")
        .arg("m")
        .arg(&["1", "1", "1h", "TIMEOUT", "60000"])
        .query(&mut con)
        .unwrap();
    let _: () = redis::cmd("CHARON.ACQUIRE")
        .arg("m")
        .arg(&["1", "1", "1h", "TIMEOUT", "60000"])
        .query(&mut con)
        .unwrap();
    let replies: Vec<[i64; 5]> = redis::cmd("EXEC").query(&mut con).unwrap();
    assert_eq!(replies[0][..4], [0, 1, 0, -1]);
    assert_eq!(replies[1][..3], [1, 1, 0]);
    assert!(replies[1][3] > 0);
    // Inside a script: the same.
    let started = Instant::now();
    let reply: Vec<i64> = redis::cmd("EVAL")
        .arg("return redis.call('CHARON.ACQUIRE', KEYS[1], 1, 1, '1h', 'TIMEOUT', 60000)")
        .arg(1)
        .arg("m")
        .query(&mut con)
        .unwrap();
    assert_eq!(reply[..3], [1, 1, 0]);
    assert!(elapsed_ms(started) < 5000);
    assert_eq!(tokens(&mut con, "m"), [0]);
    assert_eq!(info_u64(&server.info("charon"), "charon_waiting"), 0);
}

/// A waiting client that is killed, or unblocked, gives its tokens back;
/// the replica follows.
#[test]
fn cancelled_waits_give_tokens_back() {
    let server = Server::start();
    let replica = start_replica(server.port, &[]);
    let mut con = server.con();
    let args = ["2", "1", "1h", "2", "TIMEOUT", "100000000"];
    assert_eq!(acquire(&mut con, "w", &args)[..4], [0, 2, 0, -1]);
    for how in ["kill", "unblock"] {
        let mut waiter = server.con();
        let id: i64 = redis::cmd("CLIENT").arg("ID").query(&mut waiter).unwrap();
        let handle = std::thread::spawn(move || {
            redis::cmd("CHARON.ACQUIRE")
                .arg("w")
                .arg(&args)
                .query::<Value>(&mut waiter)
        });
        wait_until("a client waiting", || {
            info_u64(&server.info("charon"), "charon_waiting") == 1
        });
        assert_eq!(tokens(&mut con, "w"), [-2]);
        match how {
            "kill" => {
                let _: Value = redis::cmd("CLIENT")
                    .arg("KILL")
                    .arg("ID")
                    .arg(id)
                    .query(&mut con)
                    .unwrap();
                assert!(
                    handle.join().unwrap().is_err(),
                    "a killed client got a reply"
                );
            }
            _ => {
                let unblocked: i64 = redis::cmd("CLIENT")
                    .arg("UNBLOCK")
                    .arg(id)
                    .query(&mut con)
                    .unwrap();
                assert_eq!(unblocked, 1);
                let reply = handle.join().unwrap().expect("a reply");
                let Value::Array(fields) = reply else {
                    panic!("{reply:?}")
                };
                let fields: Vec<i64> = fields
                    .iter()
                    .map(|f| redis::from_redis_value(f.clone()).unwrap())
                    .collect();
                assert_eq!(fields[..4], [1, 2, 0, -1]);
            }
        }
        wait_until("the tokens back", || tokens(&mut con, "w") == [0]);
        assert_eq!(info_u64(&server.info("charon"), "charon_waiting"), 0);
    }
    let info = server.info("charon");
    assert_eq!(info_u64(&info, "charon_cancelled"), 2, "{info}");
    wait_replicated(&server, &[&replica]);
    assert_digest_equal(
        &server,
        &replica,
        &["w".to_string()],
        "after the give-backs",
    );
}

/// 200 clients in line on one key: every reply comes no earlier than its
/// turn, in the order the turns were granted, and no more tokens are
/// handed out than the bucket had and refilled.
#[test]
fn two_hundred_in_line() {
    let server = Server::start();
    // One token every 10 ms.
    let args = ["1", "100", "1s", "TIMEOUT", "60000"];
    let started = Instant::now();
    let clients: Vec<_> = (0..200)
        .map(|_| {
            let mut con = server.con();
            std::thread::spawn(move || {
                let sent = Instant::now();
                let reply = acquire(&mut con, "line", &args);
                (sent, reply, Instant::now())
            })
        })
        .collect();
    let mut replies: Vec<(Instant, [i64; 5], Instant)> =
        clients.into_iter().map(|c| c.join().unwrap()).collect();
    let elapsed = elapsed_ms(started);
    for (sent, reply, received) in &replies {
        assert_eq!(reply[0], 0, "{reply:?}");
        let waited = received.duration_since(*sent).as_millis() as i64;
        assert!(
            waited >= reply[3] - 1,
            "answered after {waited} ms, turn in {}",
            reply[3]
        );
    }
    // Grant order is the order of the turns: a reply never arrives before
    // one whose turn came 100 ms (ten turns) earlier. (A turn is known here
    // as send time + wait, a few ms early at most; the window absorbs that
    // and thread scheduling, not a reordering.)
    replies.sort_by_key(|(sent, reply, _)| *sent + Duration::from_millis(reply[3].max(0) as u64));
    let turn = |(sent, reply, _): &(Instant, [i64; 5], Instant)| {
        *sent + Duration::from_millis(reply[3].max(0) as u64)
    };
    for (i, later) in replies.iter().enumerate() {
        for earlier in &replies[..i] {
            if turn(earlier) + Duration::from_millis(100) <= turn(later) {
                assert!(
                    later.2 >= earlier.2,
                    "a turn {:?} later was answered first",
                    turn(later).duration_since(turn(earlier))
                );
            }
        }
    }
    // 200 tokens over the run: at most capacity + refill * elapsed.
    assert!(200 <= 1 + elapsed / 10 + 1, "200 tokens in {elapsed} ms");
    assert_eq!(info_u64(&server.info("charon"), "charon_reserved"), 200);
}

/// Reservations persist and copy exactly: DEBUG RELOAD, restart, AOF
/// rewrite, DUMP/RESTORE.
#[test]
fn reservations_persist_exactly() {
    let mut server = Server::start_with(&["--appendonly", "yes", "--appendfsync", "always"]);
    let mut con = server.con();
    for _ in 0..3 {
        reserve(
            &mut con,
            "r",
            &[
                "2",
                "1",
                "1h",
                "2",
                "LIMIT",
                "5",
                "1",
                "1d",
                "MAXWAIT",
                "100000000",
            ],
        );
    }
    assert_eq!(tokens(&mut con, "r"), [-4, -1]);
    let before = digest(&mut con, "r");
    let _: () = redis::cmd("DEBUG").arg("RELOAD").query(&mut con).unwrap();
    assert_eq!(digest(&mut con, "r"), before, "DEBUG RELOAD");
    let _: Value = redis::cmd("BGREWRITEAOF").query(&mut con).unwrap();
    wait_until("the AOF rewrite", || {
        info_field(&server.info("persistence"), "aof_rewrite_in_progress").as_deref() == Some("0")
    });
    let payload: Vec<u8> = redis::cmd("DUMP").arg("r").query(&mut con).unwrap();
    let _: () = redis::cmd("RESTORE")
        .arg("copy")
        .arg(86_400_000)
        .arg(payload)
        .query(&mut con)
        .unwrap();
    assert_eq!(tokens(&mut con, "copy"), [-4, -1]);
    server.shutdown(false);
    server.restart();
    let mut con = server.con();
    assert_eq!(digest(&mut con, "r"), before, "restart from the AOF");
    assert_eq!(tokens(&mut con, "r"), [-4, -1]);
}
