//! RDB encoding fixtures: `DUMP` payloads written by every encoding version
//! (`encver`) Charon has ever used, checked in under `tests/fixtures/`. Each
//! must load into the current module as exactly the bucket it was made from.
//!
//! A fixture row is `name <TAB> state <TAB> payload-hex`, where `state` is the
//! `CHARON.SETSTATE` arguments of the bucket. Payloads are made on Redis 6.2
//! (RDB version 9), which every newer server of the matrix also reads.
//! After a change of encoding: bump `ENCVER`, then write the new version's
//! file with `CHARON_SERVER_NAME=redis-6.2 ... cargo test --release --test
//! integration -- --ignored write_fixtures`; never edit an older file.

use crate::support::*;
use std::path::PathBuf;
use std::time::Instant;

/// The states the fixtures hold. Parameters are chosen so that a bucket
/// stays far from full for decades: 1 token per 3650 days refills nothing
/// measurable between when a fixture was made and when it is checked.
const STATES: [(&str, &str); 6] = [
    (
        "one-band",
        "1700000000000 1 1000000000000 1 315360000000 5 123456789",
    ),
    ("empty-band", "1700000000000 1 1000 1 315360000000 0 0"),
    (
        "two-bands",
        "1700000000123 2 10 1 315360000000 3 7 1000000000000 1 315360000000 999 0",
    ),
    (
        "extreme",
        "1700000000000 1 9223372036854775807 1 9223372036854775807 5 9223372036854775806",
    ),
    // From encver 2: levels below zero (reserved turns).
    ("reserved", "1700000000000 1 10 1 315360000000 -3 5"),
    (
        "reserved-deepest",
        "1700000000000 2 10 1 315360000000 -9223372036854775807 0 1000 1 315360000000 -1 315359999999",
    ),
];

fn fixture_file(encver: u32) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/encver-{encver}.tsv"))
}

fn set_state(con: &mut redis::Connection, key: &str, state: &str) {
    let _: () = redis::cmd("CHARON.SETSTATE")
        .arg(key)
        .arg(state.split(' ').collect::<Vec<_>>())
        .query(con)
        .unwrap_or_else(|e| panic!("SETSTATE {state}: {e}"));
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect()
}

#[test]
fn every_encver_fixture_loads_exactly() {
    let server = Server::start();
    let mut con = server.con();
    let mut loaded = 0;
    for encver in 1.. {
        let Ok(text) = std::fs::read_to_string(fixture_file(encver)) else {
            break;
        };
        for line in text
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            let [name, state, payload]: [&str; 3] = line
                .split('\t')
                .collect::<Vec<_>>()
                .try_into()
                .expect("name, state, payload");
            let key = format!("fixture:{encver}:{name}");
            let expected = format!("expected:{encver}:{name}");
            // The same state set directly: the digests must agree.
            set_state(&mut con, &expected, state);
            // The digest counts whether a key has an expiry, not when: any
            // TTL will do (the state's own may be near the largest there is).
            let _: () = redis::cmd("RESTORE")
                .arg(&key)
                .arg(86_400_000)
                .arg(unhex(payload))
                .query(&mut con)
                .unwrap_or_else(|e| panic!("encver {encver} fixture {name} did not load: {e}"));
            assert_eq!(
                digest(&mut con, &key),
                digest(&mut con, &expected),
                "encver {encver} {name}"
            );
            // Both answer alike. The two calls are a millisecond or more
            // apart, so reset_after (time until full) may differ by the time
            // between them and nothing else.
            let started = Instant::now();
            let restored = peek(&mut con, &key, Some(0)).expect("a bucket");
            let direct = peek(&mut con, &expected, Some(0)).expect("a bucket");
            let apart_ms = elapsed_ms(started);
            assert_eq!(restored[..3], direct[..3], "encver {encver} {name}");
            // A reserved bucket's retry (the wait until it is back to zero)
            // moves with the clock too.
            for field in [3, 4] {
                let drift = restored[field] - direct[field];
                assert!(
                    (0..=apart_ms).contains(&drift) && (drift == 0 || direct[field] > 0),
                    "encver {encver} {name}: field {field}: {} vs {} ({apart_ms} ms apart)",
                    restored[field],
                    direct[field]
                );
            }
            loaded += 1;
        }
    }
    assert!(loaded >= STATES.len(), "only {loaded} fixtures found");
}

/// Writes the fixture file of the current encoding version (run by hand,
/// once per new encver, on redis-6.2).
#[test]
#[ignore]
fn write_fixtures() {
    let encver = 2; // charon::formats::rdb::ENCVER when this file was written
    let server = Server::start();
    let mut con = server.con();
    let mut out =
        format!("# encver {encver}: name, CHARON.SETSTATE arguments, DUMP payload (hex)\n");
    for (name, state) in STATES {
        if encver == 1 && state.contains('-') {
            continue;
        }
        set_state(&mut con, name, state);
        let payload: Vec<u8> = redis::cmd("DUMP").arg(name).query(&mut con).unwrap();
        out.push_str(&format!("{name}\t{state}\t{}\n", hex(&payload)));
    }
    let path = fixture_file(encver);
    assert!(
        !path.exists(),
        "{} exists: never rewrite an old encver",
        path.display()
    );
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, out).unwrap();
}
