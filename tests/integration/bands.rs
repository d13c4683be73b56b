//! Several limits in one decision (`LIMIT` groups), `CHARON.INSPECT`, and
//! the range that keeps every answer exact, on a real server.

use crate::support::*;
use redis::Value;

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;

fn inspect(con: &mut redis::Connection, key: &str) -> Option<Vec<[i64; 5]>> {
    redis::cmd("CHARON.INSPECT")
        .arg(key)
        .query(con)
        .expect("CHARON.INSPECT")
}

/// The README's example: 10 per second and 1000 per day, decided together.
#[test]
fn second_and_day_limits_together() {
    let server = Server::start();
    let mut con = server.con();
    let args = ["10", "10", "1s", "LIMIT", "1000", "1000", "1d"];
    assert_eq!(rate(&mut con, "user:1", &args), [0, 10, 9, -1, 100]);
    // Nine more at once, in one round trip: the second band is empty, the
    // day band holds 990, and the next call is limited by the second band.
    let mut pipe = redis::pipe();
    for _ in 0..10 {
        pipe.cmd("CHARON.RATE").arg("user:1").arg(&args[..]);
    }
    let replies: Vec<[i64; 5]> = pipe.query(&mut con).expect("pipeline");
    assert_eq!(replies[8][..4], [0, 10, 0, -1], "{replies:?}");
    let limited = replies[9];
    assert_eq!(limited[..3], [1, 10, 0], "{replies:?}");
    assert!((1..=100).contains(&limited[3]), "{limited:?}");
    let bands = inspect(&mut con, "user:1").expect("a bucket");
    assert_eq!(bands.len(), 2);
    assert_eq!(bands[0][..3], [10, 10, 1000]);
    assert_eq!(bands[1][..4], [1000, 1000, DAY, 990], "{bands:?}");
    // Nothing was charged by the limited call; the key lives until the
    // day band is full again.
    let ttl = pttl(&mut con, "user:1");
    assert!(ttl > DAY / 100 - 60_000 && ttl <= DAY / 100, "{ttl}");
}

/// A request refused by one band charges no other.
#[test]
fn refused_by_one_band_charges_none() {
    let server = Server::start();
    let mut con = server.con();
    let args = ["100", "1", "1h", "5", "LIMIT", "6", "1", "1h"];
    assert_eq!(rate(&mut con, "k", &args)[..4], [0, 6, 1, -1]);
    let limited = rate(&mut con, "k", &args);
    assert_eq!(limited[..3], [1, 6, 1], "{limited:?}");
    // Four more tokens at one per hour in the second band.
    assert!(
        (4 * HOUR - 5000..=4 * HOUR).contains(&limited[3]),
        "{limited:?}"
    );
    let bands = inspect(&mut con, "k").unwrap();
    assert_eq!((bands[0][3], bands[1][3]), (95, 1));
    // Cost above one band's capacity: that band binds, retry -1, no key
    // created.
    let never = rate(
        &mut con,
        "other",
        &["100", "1", "1h", "7", "LIMIT", "6", "1", "1h"],
    );
    assert_eq!(never, [1, 6, 6, -1, 0]);
    assert_eq!(inspect(&mut con, "other"), None);
}

/// Bands match by position when the limits change: band i keeps its
/// tokens (clamped), new bands start full, bands past the call's are
/// dropped, all stored by the next call that takes.
#[test]
fn limits_change_by_position() {
    let server = Server::start();
    let mut con = server.con();
    rate(
        &mut con,
        "k",
        &[
            "10", "1", "1h", "4", "LIMIT", "20", "1", "1h", "LIMIT", "30", "1", "1h",
        ],
    );
    assert_eq!(
        inspect(&mut con, "k")
            .unwrap()
            .iter()
            .map(|b| b[3])
            .collect::<Vec<_>>(),
        [6, 16, 26]
    );
    // Two bands, the second now of capacity 5: 16 clamped to 5, less 1.
    let reply = rate(
        &mut con,
        "k",
        &["10", "1", "1h", "1", "LIMIT", "5", "1", "1h"],
    );
    assert_eq!(reply[..4], [0, 5, 4, -1]);
    let bands = inspect(&mut con, "k").unwrap();
    assert_eq!(bands.iter().map(|b| b[3]).collect::<Vec<_>>(), [5, 4]);
    // A third band again starts full.
    rate(
        &mut con,
        "k",
        &[
            "10", "1", "1h", "1", "LIMIT", "5", "1", "1h", "LIMIT", "7", "1", "1h",
        ],
    );
    let bands = inspect(&mut con, "k").unwrap();
    assert_eq!(bands.iter().map(|b| b[3]).collect::<Vec<_>>(), [4, 3, 6]);
}

/// PEEK answers by the binding rule; REFUND gives to every band.
#[test]
fn peek_and_refund_cover_every_band() {
    let server = Server::start();
    let mut con = server.con();
    let args = ["10", "1", "1h", "3", "LIMIT", "4", "1", "1h"];
    rate(&mut con, "k", &args);
    let peek_all = peek(&mut con, "k", Some(0)).unwrap();
    assert_eq!(peek_all[..4], [0, 4, 1, -1]);
    let peek_two = peek(&mut con, "k", Some(2)).unwrap();
    assert_eq!(peek_two[..3], [1, 4, 1]);
    assert_eq!(refund(&mut con, "k", 2), Some(3));
    let bands = inspect(&mut con, "k").unwrap();
    assert_eq!((bands[0][3], bands[1][3]), (9, 3));
    // Each band capped at its own capacity; full everywhere deletes the key.
    assert_eq!(refund(&mut con, "k", 100), Some(4));
    assert_eq!(inspect(&mut con, "k"), None);
}

/// Grammar errors change nothing and create nothing.
#[test]
fn bad_limit_groups_are_refused_and_change_nothing() {
    let server = Server::start();
    let mut con = server.con();
    rate(&mut con, "k", &["10", "1", "1h", "2"]);
    // Counts exactly (the reset moves with the clock).
    let counts = |con: &mut redis::Connection| {
        inspect(con, "k").map(|bands| bands.iter().map(|b| b[..4].to_vec()).collect::<Vec<_>>())
    };
    let before = counts(&mut con);
    let seventeen: Vec<&str> = ["10", "1", "1h"]
        .into_iter()
        .chain(std::iter::repeat_n(["LIMIT", "2", "1", "1h"], 16).flatten())
        .collect();
    for (args, error) in [
        (vec!["10", "1", "1h", "LIMIT", "2", "1"], "ERR syntax error"),
        (
            vec!["10", "1", "1h", "BOGUS"],
            "ERR cost must be a non-negative integer",
        ),
        (
            vec!["10", "1", "1h", "1", "BOGUS", "2", "1", "1h"],
            "ERR syntax error",
        ),
        (
            vec!["10", "1", "1h", "LIMIT", "2", "1", "1h", "3"],
            "ERR syntax error",
        ),
        (vec!["10", "1", "1h", "1", "2"], "ERR syntax error"),
        (vec!["10", "1", "1h", "MAXWAIT", "5"], "ERR syntax error"),
        (
            vec!["10", "1", "1h", "LIMIT", "0", "1", "1h"],
            "ERR capacity must be a positive integer",
        ),
        (seventeen.clone(), "ERR too many limits: at most 16 bands"),
        (
            vec!["2", "1", "9223372036854775807", "2"],
            "ERR limit is out of range: refilling its capacity would take more than 2^62 ms",
        ),
    ] {
        for key in ["k", "new"] {
            let mut argv: Vec<&[u8]> = vec![b"CHARON.RATE", key.as_bytes()];
            argv.extend(args.iter().map(|a| a.as_bytes()));
            assert_eq!(error_of(&mut con, &argv), error, "{args:?}");
        }
        assert_eq!(counts(&mut con), before, "{args:?}");
        assert_eq!(inspect(&mut con, "new"), None, "{args:?}");
    }
    // Sixteen bands are fine.
    let sixteen = &seventeen[..seventeen.len() - 4];
    assert_eq!(rate(&mut con, "sixteen", sixteen)[..4], [0, 2, 1, -1]);
    assert_eq!(inspect(&mut con, "sixteen").unwrap().len(), 16);
}

/// INSPECT: null for a missing key, WRONGTYPE for another type, one entry
/// per band otherwise, and read-only (no TTL touched).
#[test]
fn inspect_is_read_only() {
    let server = Server::start();
    let mut con = server.con();
    assert_eq!(inspect(&mut con, "missing"), None);
    let _: () = redis::cmd("SET").arg("s").arg("x").query(&mut con).unwrap();
    assert!(error_of(&mut con, &[b"CHARON.INSPECT", b"s"]).starts_with("WRONGTYPE"));
    assert!(error_of(&mut con, &[b"CHARON.INSPECT"]).contains("wrong number of arguments"));
    rate(&mut con, "k", &["5", "5", "1h", "2"]);
    let ttl = pttl(&mut con, "k");
    let bands = inspect(&mut con, "k").unwrap();
    assert_eq!(bands[0][..4], [5, 5, HOUR, 3]);
    assert!((bands[0][4] - 2 * HOUR / 5).abs() < 5000, "{bands:?}");
    assert!(pttl(&mut con, "k") <= ttl);
    let reply: Value = redis::cmd("CHARON.INSPECT")
        .arg("k")
        .query(&mut con)
        .unwrap();
    assert!(matches!(reply, Value::Array(_)), "{reply:?}");
}

/// A multi-band bucket replicates its state and survives a reload.
#[test]
fn several_bands_replicate_and_persist() {
    let mut server = Server::start();
    let replica = start_replica(server.port, &[]);
    let mut con = server.con();
    let args = [
        "10", "1", "1h", "3", "LIMIT", "100", "7", "1d", "LIMIT", "4", "1", "2h",
    ];
    rate(&mut con, "k", &args);
    wait_replicated(&server, &[&replica]);
    assert_digest_equal(&server, &replica, &["k".to_string()], "after a decision");
    let before = inspect(&mut con, "k").unwrap();
    let digest_before = digest(&mut con, "k");
    let _: () = redis::cmd("DEBUG").arg("RELOAD").query(&mut con).unwrap();
    assert_eq!(digest(&mut con, "k"), digest_before);
    let _: () = redis::cmd("SAVE").query(&mut con).unwrap();
    drop(replica);
    server.shutdown(false);
    server.restart();
    let mut con = server.con();
    let after = inspect(&mut con, "k").unwrap();
    assert_eq!(
        before.iter().map(|b| b[..4].to_vec()).collect::<Vec<_>>(),
        after.iter().map(|b| b[..4].to_vec()).collect::<Vec<_>>()
    );
}
