//! `CHARON.RATE`, bullet by bullet of the contract. Periods are hours, so the
//! milliseconds a test takes cannot change a decision.

use crate::support::*;

const HOUR: i64 = 3_600_000;

#[test]
fn fresh_key_is_a_full_bucket() {
    let server = Server::start();
    let mut con = server.con();
    assert_eq!(
        rate(&mut con, "k", &["10", "10", "1s"]),
        [0, 10, 9, -1, 100]
    );
    let kind: String = redis::cmd("TYPE").arg("k").query(&mut con).unwrap();
    assert_eq!(kind, "charon-tb");
}

#[test]
fn exhaustion_and_exact_retry_after() {
    let server = Server::start();
    let mut con = server.con();
    // 3 tokens, 3 per hour: one token every 20 minutes.
    for remaining in (0..3).rev() {
        let reply = rate(&mut con, "k", &["3", "3", "1h"]);
        assert_eq!(reply[..4], [0, 3, remaining, -1]);
    }
    let limited = rate(&mut con, "k", &["3", "3", "1h"]);
    assert_eq!(limited[..3], [1, 3, 0]);
    // The next token is 20 minutes after the first call, less the time
    // the calls took.
    assert!(
        (HOUR / 3 - 1000..=HOUR / 3).contains(&limited[3]),
        "{limited:?}"
    );
    assert!((HOUR - 1000..=HOUR).contains(&limited[4]), "{limited:?}");
    // A cost of 2 waits for two tokens.
    let two = rate(&mut con, "k", &["3", "3", "1h", "2"]);
    assert_eq!(two[..3], [1, 3, 0]);
    assert!(
        (2 * HOUR / 3 - 1000..=2 * HOUR / 3).contains(&two[3]),
        "{two:?}"
    );
}

#[test]
fn limited_request_changes_nothing() {
    let server = Server::start();
    let mut con = server.con();
    rate(&mut con, "k", &["1", "1", "1h"]);
    let digest_before = digest(&mut con, "k");
    let expiry_before = expire_time(&server, &mut con);
    let offset_before = repl_offset(&server);
    let limited = rate(&mut con, "k", &["1", "1", "1h"]);
    assert_eq!(limited[0], 1);
    assert_eq!(digest(&mut con, "k"), digest_before);
    assert_eq!(expire_time(&server, &mut con), expiry_before);
    assert_eq!(
        repl_offset(&server),
        offset_before,
        "a limited request replicated something"
    );
}

/// The key's absolute expiry where the server can tell it (PEXPIRETIME),
/// else its PTTL rounded to seconds.
fn expire_time(server: &Server, con: &mut redis::Connection) -> i64 {
    if server.kind.is_7_or_newer() {
        redis::cmd("PEXPIRETIME").arg("k").query(con).unwrap()
    } else {
        skip("PEXPIRETIME needs 7.0: comparing PTTL to the second");
        (pttl(con, "k") + 500) / 1000
    }
}

fn repl_offset(server: &Server) -> u64 {
    info_u64(&server.info("replication"), "master_repl_offset")
}

#[test]
fn cost_above_capacity_is_limited_and_creates_nothing() {
    let server = Server::start();
    let mut con = server.con();
    assert_eq!(
        rate(&mut con, "k", &["5", "1", "1h", "6"]),
        [1, 5, 5, -1, 0]
    );
    let exists: i64 = redis::cmd("EXISTS").arg("k").query(&mut con).unwrap();
    assert_eq!(exists, 0);
    // On an existing bucket too: nothing taken, retry-after -1.
    rate(&mut con, "k", &["5", "1", "1h", "2"]);
    let reply = rate(&mut con, "k", &["5", "1", "1h", "6"]);
    assert_eq!(reply[..4], [1, 5, 3, -1]);
}

#[test]
fn cost_zero_creates_and_changes_nothing() {
    let server = Server::start();
    let mut con = server.con();
    assert_eq!(
        rate(&mut con, "k", &["5", "1", "1h", "0"]),
        [0, 5, 5, -1, 0]
    );
    let exists: i64 = redis::cmd("EXISTS").arg("k").query(&mut con).unwrap();
    assert_eq!(exists, 0);
    rate(&mut con, "k", &["5", "1", "1h", "2"]);
    let before = digest(&mut con, "k");
    let reply = rate(&mut con, "k", &["5", "1", "1h", "0"]);
    assert_eq!(reply[..4], [0, 5, 3, -1]);
    assert_eq!(digest(&mut con, "k"), before);
}

#[test]
fn period_units() {
    let server = Server::start();
    let mut con = server.con();
    // One token refills in period / 1 (refill 1 per period, capacity 2).
    for (period, ms) in [
        ("1500", 1_500),
        ("1500ms", 1_500),
        ("1500MS", 1_500),
        ("30s", 30_000),
        ("30S", 30_000),
        ("5m", 300_000),
        ("1h", 3_600_000),
        ("1H", 3_600_000),
        ("7d", 604_800_000),
        ("7D", 604_800_000),
        ("366d", 31_622_400_000),
        ("3650d", 315_360_000_000),
    ] {
        let key = format!("k:{period}");
        let reply = rate(&mut con, &key, &["2", "1", period]);
        assert_eq!(reply, [0, 2, 1, -1, ms], "period {period}");
    }
}

#[test]
fn pttl_is_reset_after() {
    let server = Server::start();
    let mut con = server.con();
    let reply = rate(&mut con, "k", &["10", "1", "1h", "4"]);
    assert_eq!(reply, [0, 10, 6, -1, 4 * HOUR]);
    let ttl = pttl(&mut con, "k");
    assert!((4 * HOUR - 1000..=4 * HOUR).contains(&ttl), "PTTL {ttl}");
}

#[test]
fn parameter_change_clamps_tokens() {
    let server = Server::start();
    let mut con = server.con();
    assert_eq!(rate(&mut con, "k", &["10", "1", "1h", "2"])[2], 8);
    // Capacity down to 5: the 8 tokens held become 5, one is taken.
    let reply = rate(&mut con, "k", &["5", "1", "1h"]);
    assert_eq!(reply[..4], [0, 5, 4, -1]);
    // The new parameters were stored by that call.
    assert_eq!(peek(&mut con, "k", Some(0)).unwrap()[..3], [0, 5, 4]);
    // Capacity up: tokens carry over, nothing is added.
    let reply = rate(&mut con, "k", &["100", "1", "1h"]);
    assert_eq!(reply[..4], [0, 100, 3, -1]);
    // A limited call under new parameters stores nothing.
    let before = digest(&mut con, "k");
    let reply = rate(&mut con, "k", &["2", "1", "1h", "3"]);
    assert_eq!(reply[..4], [1, 2, 2, -1]);
    assert_eq!(digest(&mut con, "k"), before);
}

#[test]
fn extreme_parameters_are_exact() {
    let server = Server::start();
    let mut con = server.con();
    let max = i64::MAX.to_string();
    // 10^12 tokens per 3650 days: taking all of them leaves a bucket full
    // again in 3650 days.
    let reply = rate(
        &mut con,
        "big",
        &["1000000000000", "1000000000000", "3650d", "1000000000000"],
    );
    assert_eq!(reply, [0, 1_000_000_000_000, 0, -1, 315_360_000_000]);
    // Refilling 10^12 tokens at 1 per 3650 days would take longer than a
    // reply can say exactly: refused, so no answer is ever saturated.
    let error = error_of(
        &mut con,
        &[
            b"CHARON.RATE",
            b"slow",
            b"1000000000000",
            b"1",
            b"3650d",
            b"1",
        ],
    );
    assert!(error.starts_with("ERR limit is out of range"), "{error}");
    // The largest limit that is accepted: 2^62 ms to refill, answered
    // exactly, and its key expires exactly then.
    let reply = rate(&mut con, "edge", &["4", "1", "1152921504606846976", "4"]);
    assert_eq!(reply, [0, 4, 0, -1, 1 << 62]);
    let reply = rate(&mut con, "max", &[&max, &max, "1", &max]);
    assert_eq!(reply, [0, i64::MAX, 0, -1, 1]);
}
