//! From the library to the module: `lua/charon-to-module.lua` turns the
//! library's buckets (hashes) into module buckets that answer the same and
//! expire at the same moment.

use crate::library::*;
use crate::support::*;
use redis::Connection;
use std::time::Instant;

const MIGRATE: &str = include_str!("../../lua/charon-to-module.lua");

fn migrate(con: &mut Connection, keys: &[&str]) -> Result<redis::Value, String> {
    let mut cmd = redis::cmd("EVAL");
    cmd.arg(MIGRATE).arg(keys.len()).arg(keys);
    call(con, &cmd)
}

fn expiry(con: &mut Connection, kind: &ServerKind, key: &str) -> i64 {
    if kind.is_7_or_newer() {
        redis::cmd("PEXPIRETIME").arg(key).query(con).unwrap()
    } else {
        pttl(con, key)
    }
}

/// Buckets of every shape the library stores, made through the library.
const BUCKETS: [(&str, &[&[&str]]); 6] = [
    ("one", &[&["RATE", "10", "1", "1h", "3"]]),
    ("units", &[&["RATE", "5", "2", "90m", "2"]]),
    (
        "bands",
        &[&[
            "RATE", "10", "1", "1h", "2", "LIMIT", "100", "5", "1d", "LIMIT", "3", "3", "2h",
        ]],
    ),
    (
        "reserved",
        &[
            &["RESERVE", "2", "1", "1h", "2", "MAXWAIT", "0"],
            &[
                "RESERVE", "2", "1", "1h", "2", "LIMIT", "9", "1", "1d", "MAXWAIT", "99999999",
            ],
        ],
    ),
    (
        "fraction",
        &[
            &["RATE", "10", "3", "1s", "9"],
            &["RATE", "10", "3", "1h", "0"],
            &["RATE", "10", "3", "1h", "1"],
        ],
    ),
    ("years", &[&["RATE", "3", "2", "3000d", "2"]]),
];

#[test]
fn library_buckets_become_module_buckets() {
    let server = Server::start();
    let kind = ServerKind::from_env();
    let mut con = server.con();
    let library = load_library(&mut con, &kind);
    let lib = &library[0];
    for (key, calls) in BUCKETS {
        for call in calls {
            let reply = lib.call(&mut con, call[0], key, &call[1..]);
            assert!(
                matches!(reply, Reply::Verdict(v) if v[0] == 0),
                "{key} {call:?}: {reply:?}"
            );
        }
        check_bucket(&mut con, &kind, key);
    }
    let start = Instant::now();
    let before: Vec<(i64, [i64; 5], [i64; 5])> = BUCKETS
        .iter()
        .map(|(key, _)| {
            (
                expiry(&mut con, &kind, key),
                lib.call(&mut con, "PEEK", key, &["0"]).verdict(),
                lib.call(&mut con, "PEEK", key, &["2"]).verdict(),
            )
        })
        .collect();

    let mut keys: Vec<&str> = BUCKETS.iter().map(|(key, _)| *key).collect();
    keys.push("missing");
    assert_eq!(
        migrate(&mut con, &keys),
        Ok(redis::Value::Int(BUCKETS.len() as i64))
    );

    for (i, (key, _)) in BUCKETS.iter().enumerate() {
        let kind_now: String = redis::cmd("TYPE").arg(*key).query(&mut con).unwrap();
        assert_eq!(kind_now, "charon-tb", "{key}");
        let elapsed = elapsed_ms(start);
        let (expires, peek0, peek2) = before[i];
        let after0 = Backend::Module.call(&mut con, "PEEK", key, &["0"]);
        let after2 = Backend::Module.call(&mut con, "PEEK", key, &["2"]);
        for (was, now) in [(peek0, after0), (peek2, after2)] {
            assert!(
                crate::differential::agree(&Reply::Verdict(was), &now, elapsed),
                "{key}: library {was:?}, module {now:?} ({elapsed} ms later)"
            );
        }
        let now = expiry(&mut con, &kind, key);
        if kind.is_7_or_newer() {
            assert_eq!(now, expires, "{key}: the same expiry");
        } else {
            assert!(
                (expires - now).abs() <= elapsed,
                "{key}: PTTL {expires}, then {now}"
            );
        }
    }
    assert_eq!(dbsize(&mut con), BUCKETS.len());

    // Converting again changes nothing: module buckets are left alone.
    let digests: Vec<String> = keys[..BUCKETS.len()]
        .iter()
        .map(|k| digest(&mut con, k))
        .collect();
    assert_eq!(migrate(&mut con, &keys), Ok(redis::Value::Int(0)));
    let again: Vec<String> = keys[..BUCKETS.len()]
        .iter()
        .map(|k| digest(&mut con, k))
        .collect();
    assert_eq!(again, digests);
}

#[test]
fn nothing_is_converted_when_a_key_is_no_bucket() {
    let server = Server::start();
    let kind = ServerKind::from_env();
    let mut con = server.con();
    let lib = load_library(&mut con, &kind).remove(0);
    lib.call(&mut con, "RATE", "bucket", &["10", "1", "1h", "3"]);
    let fields = check_bucket(&mut con, &kind, "bucket");
    let _: () = redis::cmd("SET")
        .arg("string")
        .arg("x")
        .query(&mut con)
        .unwrap();
    let _: () = redis::cmd("HSET")
        .arg("hash")
        .arg("t")
        .arg("1")
        .query(&mut con)
        .unwrap();
    let _: () = redis::cmd("HSET")
        .arg("deep")
        .arg(&[
            "t",
            "1",
            "n",
            "1",
            "c1",
            "1",
            "r1",
            "1",
            "p1",
            "1000",
            "u1",
            "-4503599627369497",
        ])
        .query(&mut con)
        .unwrap();
    for (other, error) in [
        (
            "string",
            "ERR key #2 holds a string, no bucket: nothing converted",
        ),
        (
            "hash",
            "ERR key #2 is no bucket of the Charon library (lua/charon.lua): nothing converted",
        ),
        (
            "deep",
            "ERR key #2 is no bucket of the Charon library (lua/charon.lua): nothing converted",
        ),
    ] {
        assert_eq!(
            migrate(&mut con, &["bucket", other]),
            Err(error.into()),
            "{other}"
        );
        assert_eq!(check_bucket(&mut con, &kind, "bucket"), fields, "{other}");
    }
}
