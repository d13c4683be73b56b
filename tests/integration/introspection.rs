//! INFO counters, MEMORY USAGE, command info and key extraction.

use crate::support::*;

#[test]
fn info_counters_are_exact() {
    let server = Server::start();
    let mut con = server.con();
    rate(&mut con, "k", &["2", "1", "1h"]); // allowed
    rate(&mut con, "k", &["2", "1", "1h"]); // allowed
    rate(&mut con, "k", &["2", "1", "1h"]); // limited
    rate(&mut con, "k", &["2", "1", "1h", "0"]); // cost 0: allowed
    rate(&mut con, "k", &["2", "1", "1h", "5"]); // cost > capacity: limited
    rate(&mut con, "k2", &["2", "1", "1h"]); // allowed, a second bucket
    error_of(&mut con, &[b"CHARON.RATE", b"k", b"0", b"1", b"1h"]); // error: not a call
    peek(&mut con, "k", None);
    peek(&mut con, "missing", None);
    refund(&mut con, "k", 1);
    refund(&mut con, "missing", 1);

    let info = server.info("charon");
    let field = |name: &str| info_u64(&info, &format!("charon_{name}"));
    assert_eq!(field("calls"), 6, "{info}");
    assert_eq!(field("allowed"), 4, "{info}");
    assert_eq!(field("limited"), 2, "{info}");
    assert_eq!(field("allowed") + field("limited"), field("calls"));
    assert_eq!(field("peeks"), 2, "{info}");
    assert_eq!(field("refunds"), 1, "{info}");
    assert_eq!(field("buckets"), 2, "{info}");

    // Buckets count whatever removes a key: DEL, FLUSHALL, expiry.
    let _: i64 = redis::cmd("DEL").arg("k").query(&mut con).unwrap();
    assert_eq!(info_u64(&server.info("charon"), "charon_buckets"), 1);
    let _: () = redis::cmd("FLUSHALL").query(&mut con).unwrap();
    assert_eq!(info_u64(&server.info("charon"), "charon_buckets"), 0);
    // A bucket of a 50 ms period expires when full, and is counted out.
    rate(&mut con, "short", &["1", "1", "50"]);
    std::thread::sleep(std::time::Duration::from_millis(120));
    let exists: i64 = redis::cmd("EXISTS").arg("short").query(&mut con).unwrap();
    assert_eq!(exists, 0);
    assert_eq!(info_u64(&server.info("charon"), "charon_buckets"), 0);
}

#[test]
fn memory_usage_is_the_real_size() {
    let server = Server::start();
    let mut con = server.con();
    let usage = |con: &mut redis::Connection, key: &str| -> i64 {
        redis::cmd("MEMORY")
            .arg("USAGE")
            .arg(key)
            .query(con)
            .unwrap()
    };
    rate(&mut con, "k1", &["10", "1", "1h"]);
    let small = usage(&mut con, "k1");
    assert!(small > 0 && small < 256, "MEMORY USAGE {small}");
    // A capacity past 32 bits keeps its band on the heap, in a second
    // allocation that only the module's callback can report (without it
    // the server reports the same guess for both keys). Its exact size
    // depends on the server's allocator (jemalloc or libc).
    rate(&mut con, "k2", &["10000000000", "1", "1h"]);
    let large = usage(&mut con, "k2");
    assert!(large > small, "small {small} vs large {large}");
}

#[test]
fn getkeys_finds_the_key() {
    let server = Server::start();
    let mut con = server.con();
    for args in [
        &["CHARON.RATE", "user:1", "10", "1", "1h"][..],
        &["CHARON.RATE", "user:1", "10", "1", "1h", "2"],
        &["CHARON.PEEK", "user:1"],
        &["CHARON.REFUND", "user:1", "1"],
    ] {
        let keys: Vec<String> = redis::cmd("COMMAND")
            .arg("GETKEYS")
            .arg(args)
            .query(&mut con)
            .unwrap();
        assert_eq!(keys, ["user:1"], "{args:?}");
    }
}

#[test]
fn command_info_describes_the_commands() {
    let server = Server::start();
    if !server.kind.is_7_or_newer() {
        return skip("module command info needs Redis 7.0");
    }
    let mut con = server.con();
    let info: redis::Value = redis::cmd("COMMAND")
        .arg("INFO")
        .arg("CHARON.RATE")
        .arg("CHARON.PEEK")
        .query(&mut con)
        .unwrap();
    let text = format!("{info:?}").to_lowercase();
    for expected in [
        "charon.rate",
        "charon.peek",
        "write",
        "readonly",
        "fast",
        "denyoom",
        "rw",
        "ro",
        "access",
    ] {
        assert!(
            text.contains(expected),
            "COMMAND INFO lacks {expected}: {text}"
        );
    }
    let docs: redis::Value = redis::cmd("COMMAND")
        .arg("DOCS")
        .arg("CHARON.RATE")
        .query(&mut con)
        .unwrap();
    let text = format!("{docs:?}").to_lowercase();
    for expected in [
        "capacity", "refill", "period", "cost", "optional", "limit", "block", "multiple", "o(n)",
    ] {
        assert!(
            text.contains(expected),
            "COMMAND DOCS lacks {expected}: {text}"
        );
    }
    // Arity enforced by the server from the command info.
    let error = error_of(&mut con, &[b"CHARON.RATE", b"k"]);
    assert!(
        error.starts_with("ERR wrong number of arguments"),
        "{error}"
    );
}

#[test]
fn keyspace_events_fire_only_on_change() {
    let server = Server::start();
    let mut con = server.con();
    // Module events (`d`): every server of the matrix has the class.
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("notify-keyspace-events")
        .arg("Kd")
        .query(&mut con)
        .unwrap();
    let mut subscriber_con = server.con();
    let mut subscriber = subscriber_con.as_pubsub();
    subscriber.psubscribe("__keyspace@0__:*").unwrap();
    subscriber
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    rate(&mut con, "k", &["1", "1", "1h"]); // allowed: event
    rate(&mut con, "k", &["1", "1", "1h"]); // limited: none
    rate(&mut con, "k", &["1", "1", "1h", "0"]); // cost 0: none
    refund(&mut con, "k", 1); // event
    rate(&mut con, "marker", &["1", "1", "1h"]); // event: ends the sequence
    let mut events: Vec<(String, String)> = Vec::new();
    while events.last().map(|(key, _)| key.as_str()) != Some("__keyspace@0__:marker") {
        let message = subscriber.get_message().expect("an event");
        events.push((
            message.get_channel_name().to_string(),
            message.get_payload().unwrap(),
        ));
    }
    let names: Vec<&str> = events.iter().map(|(_, event)| event.as_str()).collect();
    assert_eq!(names, ["charon.rate", "charon.refund", "charon.rate"]);
}

#[test]
fn watch_is_disturbed_only_by_change() {
    let server = Server::start();
    let mut con = server.con();
    let mut other = server.con();
    rate(&mut con, "k", &["1", "1", "1h"]);
    // A limited request changes nothing: a transaction watching the key runs.
    let _: () = redis::cmd("WATCH").arg("k").query(&mut con).unwrap();
    rate(&mut other, "k", &["1", "1", "1h"]);
    let _: () = redis::cmd("MULTI").query(&mut con).unwrap();
    let _: () = redis::cmd("PING").query(&mut con).unwrap_or(());
    let ran: Option<Vec<String>> = redis::cmd("EXEC").query(&mut con).unwrap();
    assert!(
        ran.is_some(),
        "a limited request aborted a WATCH transaction"
    );
    // A request that takes tokens changes the key: the transaction aborts.
    let _: () = redis::cmd("WATCH").arg("k").query(&mut con).unwrap();
    refund(&mut other, "k", 1);
    rate(&mut other, "k", &["1", "1", "1h"]);
    let _: () = redis::cmd("MULTI").query(&mut con).unwrap();
    let _: () = redis::cmd("PING").query(&mut con).unwrap_or(());
    let ran: Option<Vec<String>> = redis::cmd("EXEC").query(&mut con).unwrap();
    assert!(ran.is_none(), "a change did not abort a WATCH transaction");
}

#[test]
fn commands_are_in_the_charon_acl_category() {
    let server = Server::start();
    if !server.kind.is_valkey() {
        return skip("module ACL categories need Valkey 8 or Redis 7.4");
    }
    let mut con = server.con();
    let mut commands: Vec<String> = redis::cmd("ACL")
        .arg("CAT")
        .arg("charon")
        .query(&mut con)
        .unwrap();
    commands.sort();
    assert_eq!(
        commands,
        [
            "CHARON.ACQUIRE",
            "CHARON.INSPECT",
            "CHARON.PEEK",
            "CHARON.RATE",
            "CHARON.REFUND",
            "CHARON.RESERVE",
            "CHARON.SETSTATE"
        ]
    );
}
