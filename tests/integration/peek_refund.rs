//! `CHARON.PEEK` and `CHARON.REFUND`.

use crate::support::*;

#[test]
fn peek_answers_what_rate_would_and_touches_nothing() {
    let server = Server::start();
    let mut con = server.con();
    assert_eq!(peek(&mut con, "k", None), None, "missing key is null");
    let exists: i64 = redis::cmd("EXISTS").arg("k").query(&mut con).unwrap();
    assert_eq!(exists, 0, "PEEK created a key");

    rate(&mut con, "k", &["10", "1", "1h", "3"]);
    let digest_before = digest(&mut con, "k");
    let ttl_before = pttl(&mut con, "k");
    let offset_before = info_u64(&server.info("replication"), "master_repl_offset");

    let held = peek(&mut con, "k", Some(0)).unwrap();
    assert_eq!(held[..4], [0, 10, 7, -1], "cost 0 gives the tokens held");
    let one = peek(&mut con, "k", None).unwrap();
    assert_eq!(one[..4], [0, 10, 6, -1], "remaining as if 1 were taken");
    let many = peek(&mut con, "k", Some(8)).unwrap();
    assert_eq!(many[..3], [1, 10, 7]);
    assert!(
        (3_600_000 - 1000..=3_600_000).contains(&many[3]),
        "{many:?}"
    );
    let too_many = peek(&mut con, "k", Some(11)).unwrap();
    assert_eq!(too_many[..4], [1, 10, 7, -1]);

    // And RATE then answers exactly what PEEK said it would.
    assert_eq!(rate(&mut con, "k", &["10", "1", "1h"])[..4], one[..4]);
    let _ = (digest_before, ttl_before, offset_before);
}

#[test]
fn peek_changes_no_value_ttl_or_replication() {
    let server = Server::start();
    let mut con = server.con();
    rate(&mut con, "k", &["10", "1", "1h", "3"]);
    let digest_before = digest(&mut con, "k");
    let ttl_before = pttl(&mut con, "k");
    let offset_before = info_u64(&server.info("replication"), "master_repl_offset");
    for cost in [None, Some(0), Some(5), Some(100)] {
        peek(&mut con, "k", cost);
    }
    assert_eq!(digest(&mut con, "k"), digest_before);
    let ttl_after = pttl(&mut con, "k");
    assert!(
        ttl_after <= ttl_before && ttl_before - ttl_after < 1000,
        "TTL {ttl_before} -> {ttl_after}"
    );
    assert_eq!(
        info_u64(&server.info("replication"), "master_repl_offset"),
        offset_before,
        "PEEK replicated something"
    );
}

#[test]
fn peek_reports_wrongtype() {
    let server = Server::start();
    let mut con = server.con();
    let _: () = redis::cmd("SET").arg("s").arg("v").query(&mut con).unwrap();
    let error = error_of(&mut con, &[b"CHARON.PEEK", b"s"]);
    assert!(error.starts_with("WRONGTYPE"), "{error}");
}

#[test]
fn refund_gives_back_never_above_capacity() {
    let server = Server::start();
    let mut con = server.con();
    assert_eq!(
        refund(&mut con, "k", 1),
        None,
        "a missing key (a full bucket) answers null"
    );
    let exists: i64 = redis::cmd("EXISTS").arg("k").query(&mut con).unwrap();
    assert_eq!(exists, 0, "REFUND created a key");

    rate(&mut con, "k", &["10", "1", "1h", "6"]);
    assert_eq!(refund(&mut con, "k", 2), Some(6));
    // The TTL follows: 4 tokens missing at 1 per hour.
    let ttl = pttl(&mut con, "k");
    assert!(
        (4 * 3_600_000 - 1000..=4 * 3_600_000).contains(&ttl),
        "PTTL {ttl}"
    );
    assert_eq!(peek(&mut con, "k", Some(0)).unwrap()[2], 6);

    // Refunding past capacity fills the bucket, and a full bucket is no key.
    assert_eq!(refund(&mut con, "k", 100), Some(10));
    let exists: i64 = redis::cmd("EXISTS").arg("k").query(&mut con).unwrap();
    assert_eq!(exists, 0);
}
