//! An append-only file whose state commands carry impossible values: the
//! server reports each refused command and does not crash.
//!
//! What the servers of the matrix do with such a file (all four alike):
//! they load it, log one line per refused command (`== CRITICAL == This
//! server is sending an error to its AOF-loading-client: '-ERR invalid
//! bucket state: ...' after processing the command 'CHARON.SETSTATE'`),
//! skip that command, load the rest, and serve. (With
//! `propagation-error-behavior panic`, 7.0+ would stop instead: an
//! operator's choice, not the default.)
//!
//! The file layout: Redis 6.2 reads one `appendonly.aof` in the data
//! directory; Redis 7.0+ and Valkey read `appendonlydir/`, whose manifest
//! names the files (here one incremental file and no base).

use crate::common::*;
use crate::support::*;

/// One command in the RESP form an AOF holds.
fn resp(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn setstate(key: &[u8], fields: &[&str]) -> Vec<u8> {
    let mut args: Vec<&[u8]> = vec![b"CHARON.SETSTATE", key];
    args.extend(fields.iter().map(|f| f.as_bytes()));
    resp(&args)
}

#[test]
fn impossible_states_in_the_aof_are_reported_not_loaded() {
    let mut server = Server::start_with(&["--appendonly", "yes", "--aof-use-rdb-preamble", "no"]);
    let now = now_ms(&mut server.con());
    server.shutdown(false);

    // Full in 5 days: nothing expires during the test.
    let t = now.to_string();
    let day = "86400000";
    let good: &[&str] = &[&t, "1", "10", "1", day, "5", "0"];
    let bad: Vec<(&[u8], Vec<u8>)> = vec![
        // tokens > capacity
        (
            b"bad:tokens",
            setstate(b"bad:tokens", &[&t, "1", "10", "1", day, "11", "0"]),
        ),
        // fraction == period
        (
            b"bad:fraction",
            setstate(b"bad:fraction", &[&t, "1", "10", "1", day, "5", day]),
        ),
        // full, yet a fraction
        (
            b"bad:full",
            setstate(b"bad:full", &[&t, "1", "10", "1", day, "10", "1"]),
        ),
        // capacity 0
        (
            b"bad:capacity",
            setstate(b"bad:capacity", &[&t, "1", "0", "1", day, "0", "0"]),
        ),
        // a time before 1970
        (
            b"bad:time",
            setstate(b"bad:time", &["-1", "1", "10", "1", day, "5", "0"]),
        ),
        // beyond i64
        (
            b"bad:huge",
            setstate(
                b"bad:huge",
                &[&t, "1", "99999999999999999999", "1", day, "5", "0"],
            ),
        ),
        // 17 bands declared, one given
        (
            b"bad:count",
            setstate(b"bad:count", &[&t, "17", "10", "1", day, "5", "0"]),
        ),
        // wrong arity
        (b"bad:arity", setstate(b"bad:arity", &[&t, "1", "10"])),
        // packed: tokens > capacity, trailing garbage, truncated, no format
        (
            b"bad:packed",
            resp(&[
                b"CHARON.SETSTATE",
                b"bad:packed",
                &packed(now, &[[10, 1, 86_400_000, 11, 0]]),
            ]),
        ),
        (
            b"bad:trailing",
            resp(&[b"CHARON.SETSTATE", b"bad:trailing", &{
                let mut p = packed(now, &[[10, 1, 86_400_000, 5, 0]]);
                p.push(0);
                p
            }]),
        ),
        (
            b"bad:truncated",
            resp(&[b"CHARON.SETSTATE", b"bad:truncated", b"\x01\xff\xff"]),
        ),
        (
            b"%s%n%x",
            resp(&[b"CHARON.SETSTATE", b"%s%n%x", b"%s%n%x%p%p%p"]),
        ),
    ];

    let mut aof = resp(&[b"SELECT", b"0"]);
    aof.extend(setstate(b"good", good));
    for (_, command) in &bad {
        aof.extend_from_slice(command);
    }
    aof.extend(resp(&[
        b"CHARON.SETSTATE",
        b"good:packed",
        &packed(
            now,
            &[[10, 1, 86_400_000, 4, 0], [3, 1, 86_400_000, 0, 999]],
        ),
    ]));
    // A well-formed command after the refused ones still loads.
    aof.extend(setstate(b"after", good));
    write_aof(&server, &aof);

    server.restart();
    assert_standing(&mut server, "after loading the AOF");
    let mut con = server.con();
    for (key, _) in &bad {
        let exists: i64 = redis::cmd("EXISTS").arg(*key).query(&mut con).unwrap();
        assert_eq!(exists, 0, "{} was loaded", String::from_utf8_lossy(key));
    }
    for key in ["good", "after"] {
        let reply = peek(&mut con, key, Some(0)).unwrap_or_else(|| panic!("{key} not loaded"));
        assert_eq!(reply[..3], [0, 10, 5], "{key}");
    }
    let reply = peek(&mut con, "good:packed", Some(0)).expect("good:packed not loaded");
    assert_eq!(reply[..3], [0, 3, 0]);

    // Each refused command is in the log, with the module's reason.
    let log = server.log_text();
    let reported = log
        .lines()
        .filter(|line| line.contains("AOF-loading-client") && line.contains("CHARON.SETSTATE"))
        .count();
    assert_eq!(
        reported,
        bad.len(),
        "refusals reported:\n{}",
        server.log_tail()
    );
    assert!(log.contains("ERR invalid bucket state: tokens must not exceed capacity"));
    eprintln!(
        "{}: the AOF loaded, {reported} impossible states refused and reported",
        server.kind.name
    );
}
