//! Bad input: a clear error naming the argument, nothing changed, the server
//! still answering.

use crate::support::*;

#[test]
fn bad_invocations_answer_err_and_change_nothing() {
    let mut server = Server::start();
    let mut con = server.con();
    rate(&mut con, "k", &["10", "1", "1h", "3"]);
    let before = digest(&mut con, "k");

    let cases: &[(&[&[u8]], &str)] = &[
        // Arity.
        (&[b"CHARON.RATE"], "ERR wrong number of arguments"),
        (&[b"CHARON.RATE", b"k"], "ERR wrong number of arguments"),
        (
            &[b"CHARON.RATE", b"k", b"10", b"1"],
            "ERR wrong number of arguments",
        ),
        (
            &[b"CHARON.RATE", b"k", b"10", b"1", b"1h", b"1", b"x"],
            "ERR syntax error",
        ),
        (&[b"CHARON.PEEK"], "ERR wrong number of arguments"),
        (
            &[b"CHARON.PEEK", b"k", b"1", b"1"],
            "ERR wrong number of arguments",
        ),
        (&[b"CHARON.REFUND", b"k"], "ERR wrong number of arguments"),
        (
            &[b"CHARON.REFUND", b"k", b"1", b"1"],
            "ERR wrong number of arguments",
        ),
        // Capacity.
        (&[b"CHARON.RATE", b"k", b"0", b"1", b"1h"], "ERR capacity"),
        (&[b"CHARON.RATE", b"k", b"-1", b"1", b"1h"], "ERR capacity"),
        (&[b"CHARON.RATE", b"k", b"ten", b"1", b"1h"], "ERR capacity"),
        (&[b"CHARON.RATE", b"k", b"1.5", b"1", b"1h"], "ERR capacity"),
        (&[b"CHARON.RATE", b"k", b"", b"1", b"1h"], "ERR capacity"),
        (&[b"CHARON.RATE", b"k", b" 1", b"1", b"1h"], "ERR capacity"),
        (&[b"CHARON.RATE", b"k", b"+1", b"1", b"1h"], "ERR capacity"),
        (&[b"CHARON.RATE", b"k", b"01", b"1", b"1h"], "ERR capacity"),
        (
            &[b"CHARON.RATE", b"k", b"9223372036854775808", b"1", b"1h"],
            "ERR capacity",
        ),
        (
            &[b"CHARON.RATE", b"k", b"18446744073709551616", b"1", b"1h"],
            "ERR capacity",
        ),
        (
            &[b"CHARON.RATE", b"k", b"\xff\xfe", b"1", b"1h"],
            "ERR capacity",
        ),
        (
            &[b"CHARON.RATE", b"k", b"1\x00", b"1", b"1h"],
            "ERR capacity",
        ),
        // Refill.
        (&[b"CHARON.RATE", b"k", b"10", b"0", b"1h"], "ERR refill"),
        (&[b"CHARON.RATE", b"k", b"10", b"-5", b"1h"], "ERR refill"),
        (&[b"CHARON.RATE", b"k", b"10", b"", b"1h"], "ERR refill"),
        (
            &[b"CHARON.RATE", b"k", b"10", b"9223372036854775808", b"1h"],
            "ERR refill",
        ),
        (
            &[b"CHARON.RATE", b"k", b"10", b"\xc3\x28", b"1h"],
            "ERR refill",
        ),
        // Period.
        (&[b"CHARON.RATE", b"k", b"10", b"1", b"0"], "ERR period"),
        (&[b"CHARON.RATE", b"k", b"10", b"1", b"0s"], "ERR period"),
        (&[b"CHARON.RATE", b"k", b"10", b"1", b"-1h"], "ERR period"),
        (&[b"CHARON.RATE", b"k", b"10", b"1", b""], "ERR period"),
        (&[b"CHARON.RATE", b"k", b"10", b"1", b"h"], "ERR period"),
        (&[b"CHARON.RATE", b"k", b"10", b"1", b"1w"], "ERR period"),
        (&[b"CHARON.RATE", b"k", b"10", b"1", b"1y"], "ERR period"),
        (&[b"CHARON.RATE", b"k", b"10", b"1", b"1 h"], "ERR period"),
        (&[b"CHARON.RATE", b"k", b"10", b"1", b"1.5s"], "ERR period"),
        (
            &[b"CHARON.RATE", b"k", b"10", b"1", b"9223372036854775808"],
            "ERR period",
        ),
        (
            &[b"CHARON.RATE", b"k", b"10", b"1", b"18446744073709551616"],
            "ERR period",
        ),
        (
            &[b"CHARON.RATE", b"k", b"10", b"1", b"9223372036854775807d"],
            "ERR period",
        ),
        (
            &[b"CHARON.RATE", b"k", b"10", b"1", b"1\xffs"],
            "ERR period",
        ),
        // Cost.
        (
            &[b"CHARON.RATE", b"k", b"10", b"1", b"1h", b"-1"],
            "ERR cost",
        ),
        (&[b"CHARON.RATE", b"k", b"10", b"1", b"1h", b""], "ERR cost"),
        (
            &[b"CHARON.RATE", b"k", b"10", b"1", b"1h", b"x"],
            "ERR cost",
        ),
        (
            &[
                b"CHARON.RATE",
                b"k",
                b"10",
                b"1",
                b"1h",
                b"9223372036854775808",
            ],
            "ERR cost",
        ),
        (
            &[
                b"CHARON.RATE",
                b"k",
                b"10",
                b"1",
                b"1h",
                b"18446744073709551616",
            ],
            "ERR cost",
        ),
        (&[b"CHARON.PEEK", b"k", b"-1"], "ERR cost"),
        (&[b"CHARON.PEEK", b"k", b"\xff"], "ERR cost"),
        // Tokens.
        (&[b"CHARON.REFUND", b"k", b"0"], "ERR tokens"),
        (&[b"CHARON.REFUND", b"k", b"-1"], "ERR tokens"),
        (&[b"CHARON.REFUND", b"k", b""], "ERR tokens"),
        (
            &[b"CHARON.REFUND", b"k", b"9223372036854775808"],
            "ERR tokens",
        ),
        (&[b"CHARON.REFUND", b"k", b"\x00"], "ERR tokens"),
        // The state command validates like an RDB payload, in both forms.
        (
            &[
                b"CHARON.SETSTATE",
                b"k",
                b"\x01\x00\x01\x0a\x01\x64\x0b\x00",
            ],
            "ERR invalid bucket state",
        ),
        (
            &[
                b"CHARON.SETSTATE",
                b"k",
                b"\x01\x00\x01\x0a\x01\x64\x05\x00\x00",
            ],
            "ERR invalid bucket state",
        ),
        (
            &[
                b"CHARON.SETSTATE",
                b"k",
                b"\x03\x00\x01\x0a\x01\x64\x05\x00",
            ],
            "ERR invalid bucket state",
        ),
        (&[b"CHARON.SETSTATE", b"k", b""], "ERR invalid bucket state"),
        (
            &[b"CHARON.SETSTATE", b"k", b"%s%n%x"],
            "ERR invalid bucket state",
        ),
        (
            &[
                b"CHARON.SETSTATE",
                b"k",
                b"0",
                b"1",
                b"10",
                b"1",
                b"1000",
                b"11",
                b"0",
            ],
            "ERR invalid bucket state",
        ),
        (
            &[
                b"CHARON.SETSTATE",
                b"k",
                b"0",
                b"1",
                b"10",
                b"1",
                b"1000",
                b"5",
                b"1000",
            ],
            "ERR invalid bucket state",
        ),
        (
            &[
                b"CHARON.SETSTATE",
                b"k",
                b"0",
                b"1",
                b"0",
                b"1",
                b"1000",
                b"0",
                b"0",
            ],
            "ERR invalid bucket state",
        ),
        (
            &[
                b"CHARON.SETSTATE",
                b"k",
                b"-1",
                b"1",
                b"10",
                b"1",
                b"1000",
                b"5",
                b"0",
            ],
            "ERR updated_at",
        ),
        (
            &[
                b"CHARON.SETSTATE",
                b"k",
                b"0",
                b"0",
                b"10",
                b"1",
                b"1000",
                b"5",
                b"0",
            ],
            "ERR band_count",
        ),
        (
            &[
                b"CHARON.SETSTATE",
                b"k",
                b"0",
                b"99",
                b"10",
                b"1",
                b"1000",
                b"5",
                b"0",
            ],
            "ERR band_count",
        ),
        (
            &[
                b"CHARON.SETSTATE",
                b"k",
                b"0",
                b"2",
                b"10",
                b"1",
                b"1000",
                b"5",
                b"0",
            ],
            "ERR wrong number of arguments",
        ),
    ];
    for (args, expected) in cases {
        let error = error_of(&mut con, args);
        assert!(
            error.starts_with(expected),
            "{:?}: answered {error:?}, expected {expected:?}",
            printable(args)
        );
        assert_eq!(
            digest(&mut con, "k"),
            before,
            "{:?} changed the bucket",
            printable(args)
        );
    }
    // Nothing was created under other keys either, and the server is fine.
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut con).unwrap();
    assert_eq!(keys, ["k"]);
    assert!(server.is_alive());
    let pong: String = redis::cmd("PING").query(&mut con).unwrap();
    assert_eq!(pong, "PONG");
}

#[test]
fn wrongtype_both_ways() {
    let server = Server::start();
    let mut con = server.con();
    let _: () = redis::cmd("SET").arg("s").arg("v").query(&mut con).unwrap();
    // A string key to CHARON.*: WRONGTYPE, whatever the other arguments say.
    for args in [
        &[b"CHARON.RATE" as &[u8], b"s", b"10", b"1", b"1h"][..],
        &[b"CHARON.RATE", b"s", b"0", b"x", b"y"],
        &[b"CHARON.RATE", b"s", b"10", b"1", b"1h", b"-1"],
        &[b"CHARON.REFUND", b"s", b"1"],
        &[b"CHARON.REFUND", b"s", b"0"],
        &[b"CHARON.PEEK", b"s", b"x"],
        &[
            b"CHARON.SETSTATE",
            b"s",
            b"0",
            b"1",
            b"10",
            b"1",
            b"1000",
            b"5",
            b"0",
        ],
    ] {
        let error = error_of(&mut con, args);
        assert!(
            error.starts_with("WRONGTYPE"),
            "{:?}: {error}",
            printable(args)
        );
    }
    let value: String = redis::cmd("GET").arg("s").query(&mut con).unwrap();
    assert_eq!(value, "v");
    // A bucket key to a string command: WRONGTYPE.
    rate(&mut con, "b", &["10", "1", "1h"]);
    let error = error_of(&mut con, &[b"GET", b"b"]);
    assert!(error.starts_with("WRONGTYPE"), "{error}");
    let error = error_of(&mut con, &[b"INCR", b"b"]);
    assert!(error.starts_with("WRONGTYPE"), "{error}");
}

#[test]
fn binary_keys_are_distinct_buckets() {
    let server = Server::start();
    let mut con = server.con();
    for key in [&b"a\x00b"[..], b"a\x00c", b"\xff\xfe", b"%s%n%x", b""] {
        let reply: Vec<i64> = redis::cmd("CHARON.RATE")
            .arg(key)
            .arg(5)
            .arg(1)
            .arg("1h")
            .query(&mut con)
            .unwrap();
        assert_eq!(reply[..3], [0, 5, 4], "{key:?}");
    }
    let count: i64 = redis::cmd("DBSIZE").query(&mut con).unwrap();
    assert_eq!(count, 5);
}
