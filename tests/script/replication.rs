//! A replica of a primary that runs the library, neither with the module:
//! the library's writes replicate as their effects (HSET, HDEL, PEXPIREAT,
//! DEL), so the replica holds the same hashes with the same expiry, and a
//! call that takes nothing replicates nothing. The replica answers
//! `charon_peek` (`FCALL_RO`, Redis 7+) and refuses the writing functions.

use crate::library::*;
use crate::support::*;
use redis::Connection;

/// A replica of `primary`, without the module, once its link is up.
fn start_replica(primary: &Server) -> PlainServer {
    let line = format!("replicaof 127.0.0.1 {}", primary.port);
    let replica = PlainServer::start(&[line.as_str()]);
    wait_until("replica link up", || {
        info_field(&replica.info("replication"), "master_link_status").as_deref() == Some("up")
    });
    replica
}

fn offset(server: &Server) -> u64 {
    info_u64(&server.info("replication"), "master_repl_offset")
}

fn expiry(con: &mut Connection, kind: &ServerKind, key: &str) -> i64 {
    if kind.is_7_or_newer() {
        redis::cmd("PEXPIRETIME").arg(key).query(con).unwrap()
    } else {
        pttl(con, key)
    }
}

#[test]
fn a_replica_holds_the_same_buckets() {
    let primary = PlainServer::start(&[]);
    let replica = start_replica(&primary);
    let kind = ServerKind::from_env();
    let mut con = primary.con();
    let backends = load_library(&mut con, &kind);
    let mut rng = Rng::new(5);
    let names: Vec<String> = (0..12).map(|i| format!("r:{i}")).collect();
    let limits = [["5", "1", "1h"], ["10", "3", "2h"], ["3", "3", "1d"]];
    for n in 0..600 {
        let key = rng.pick(&names).clone();
        let backend = &backends[n % backends.len()];
        let limit = rng.pick(&limits).map(String::from);
        let mut args: Vec<String> = limit.to_vec();
        args.push(rng.below(4).to_string());
        if rng.chance(40) {
            args.push("LIMIT".into());
            args.extend(rng.pick(&limits).map(String::from));
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let reply = match rng.below(10) {
            0..=4 => backend.call(&mut con, "RATE", &key, &args),
            5..=6 => {
                let mut reserve = args.clone();
                reserve.extend(["MAXWAIT", "7200000"]);
                backend.call(&mut con, "RESERVE", &key, &reserve)
            }
            7..=8 => backend.call(&mut con, "REFUND", &key, &[["1", "2", "9"][rng.index(3)]]),
            _ => backend.call(&mut con, "PEEK", &key, &[]),
        };
        assert!(
            !matches!(reply, Reply::Error(_) | Reply::Other(_)),
            "{key} {args:?}: {reply:?}"
        );
    }
    wait_replicated(&primary, &[&replica]);

    let mut rcon = replica.con();
    assert_eq!(keys(&mut rcon), keys(&mut con), "the same keys");
    assert!(!keys(&mut con).is_empty());
    for key in keys(&mut con) {
        let fields = check_bucket(&mut con, &kind, &key);
        let mut sorted = fields.clone();
        sorted.sort();
        let mut on_replica: Vec<(String, String)> =
            redis::cmd("HGETALL").arg(&key).query(&mut rcon).unwrap();
        on_replica.sort();
        assert_eq!(on_replica, sorted, "{key}: fields");
        assert_eq!(
            digest(&mut rcon, &key),
            digest(&mut con, &key),
            "{key}: digest"
        );
        let (a, b) = (
            expiry(&mut con, &kind, &key),
            expiry(&mut rcon, &kind, &key),
        );
        if kind.is_7_or_newer() {
            assert_eq!(a, b, "{key}: expiry (PEXPIRETIME)");
        } else {
            assert!(
                (a - b).abs() <= 50,
                "{key}: PTTL {a} on the primary, {b} on the replica"
            );
        }
    }

    // The replica answers PEEK: FCALL_RO on 7+, the EVAL form everywhere.
    let sha = script_load(&mut rcon);
    for key in keys(&mut con) {
        let here = Backend::Eval(sha.clone())
            .call(&mut con, "PEEK", &key, &["0"])
            .verdict();
        let there = Backend::Eval(sha.clone())
            .call(&mut rcon, "PEEK", &key, &["0"])
            .verdict();
        assert!(
            crate::differential::agree(&Reply::Verdict(here), &Reply::Verdict(there), 50),
            "{key}: PEEK (EVALSHA) on the replica: {here:?}, primary {there:?}"
        );
        if kind.is_7_or_newer() {
            let mut cmd = redis::cmd("FCALL_RO");
            cmd.arg("charon_peek").arg(1).arg(&key).arg(0);
            let ro = Reply::of(call(&mut rcon, &cmd)).verdict();
            assert!(
                crate::differential::agree(&Reply::Verdict(here), &Reply::Verdict(ro), 50),
                "{key}: FCALL_RO charon_peek on the replica: {ro:?}, primary {here:?}"
            );
        }
    }
    if !kind.is_7_or_newer() {
        skip("FCALL_RO needs Redis Functions (7.0): the replica answered PEEK through EVALSHA");
    }

    // The writing functions are refused on the replica, with the server's
    // error, not a script's.
    for backend in [Backend::Eval(sha.clone())]
        .iter()
        .chain(backends.iter().filter(|b| matches!(b, Backend::Function)))
    {
        for key in ["r:0", "fresh"] {
            match backend.call(&mut rcon, "RATE", key, &["10", "1", "1h"]) {
                Reply::Error(error) => assert!(
                    error.starts_with("READONLY")
                        && !error.contains("script")
                        && !error.contains("user_"),
                    "{} RATE on the replica: {error}",
                    backend.name()
                ),
                other => panic!("{} RATE on the replica: {other:?}", backend.name()),
            }
        }
    }
}

#[test]
fn a_call_that_takes_nothing_replicates_nothing() {
    let primary = PlainServer::start(&[]);
    let replica = start_replica(&primary);
    let kind = ServerKind::from_env();
    let mut con = primary.con();
    let backends = load_library(&mut con, &kind);
    // On an empty bucket: limited calls, cost 0, cost above capacity,
    // refused reservations, peeks and errors.
    let on_empty: [(&str, &[&str]); 12] = [
        ("RATE", &["2", "1", "1h"]),
        ("RATE", &["2", "1", "1h", "0"]),
        ("RATE", &["2", "1", "1h", "3"]),
        ("RATE", &["9", "1", "1h", "0", "LIMIT", "1", "1", "1d"]),
        ("RATE", &["1", "1", "1h", "0"]),
        ("RESERVE", &["2", "1", "1h", "MAXWAIT", "0"]),
        ("RESERVE", &["2", "1", "1h", "0", "MAXWAIT", "3600000"]),
        ("PEEK", &[]),
        ("PEEK", &["0"]),
        ("REFUND", &["x"]),
        ("RATE", &["0", "1", "1h"]),
        ("RESERVE", &["2", "1", "1h", "3", "MAXWAIT", "99999999"]),
    ];
    // On keys that do not exist: calls that take nothing.
    let on_missing: [(&str, &[&str]); 6] = [
        ("RATE", &["2", "1", "1h", "0"]),
        ("RATE", &["2", "1", "1h", "3"]),
        ("PEEK", &[]),
        ("REFUND", &["1"]),
        ("RESERVE", &["2", "1", "1h", "0", "MAXWAIT", "0"]),
        ("RESERVE", &["2", "1", "1h", "3", "MAXWAIT", "0"]),
    ];
    for backend in &backends {
        backend.call(&mut con, "RATE", "k", &["2", "1", "1h", "2"]);
        let stored = check_bucket(&mut con, &kind, "k");
        wait_replicated(&primary, &[&replica]);
        let before = offset(&primary);
        for (op, args) in on_empty {
            let reply = backend.call(&mut con, op, "k", args);
            assert!(
                !matches!(reply, Reply::Other(_)),
                "{op} {args:?}: {reply:?}"
            );
        }
        for (op, args) in on_missing {
            let reply = backend.call(&mut con, op, "missing", args);
            assert!(
                !matches!(reply, Reply::Other(_) | Reply::Error(_)),
                "{op} {args:?}: {reply:?}"
            );
        }
        assert_eq!(keys(&mut con), ["k"]);
        assert_eq!(check_bucket(&mut con, &kind, "k"), stored);
        assert_eq!(
            offset(&primary),
            before,
            "{}: a call that took nothing replicated something",
            backend.name()
        );
        let _: () = redis::cmd("DEL").arg("k").query(&mut con).unwrap();
    }
}
