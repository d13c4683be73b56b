//! Every way a bucket leaves memory and comes back keeps it exactly:
//! `DEBUG DIGEST-VALUE` equal (the digest covers every field) and
//! `CHARON.PEEK` equal (up to the time that passed).

use crate::harness::*;
use redis::Connection;
use std::time::Instant;

/// A few buckets in different states: fresh, drained, multi-token costs,
/// huge parameters, binary key names.
const KEYS: [&str; 5] = ["fresh", "drained", "partial", "huge", "bin\u{0}ary"];

fn fill(con: &mut Connection) {
    rate(con, "fresh", &["10", "10", "1h"]);
    for _ in 0..3 {
        rate(con, "drained", &["3", "1", "1h"]);
    }
    rate(con, "partial", &["1000", "7", "13m", "333"]);
    rate(
        con,
        "huge",
        &["1000000000000", "1", "3650d", "999999999999"],
    );
    rate(con, "bin\u{0}ary", &["5", "5", "1d", "2"]);
}

struct Snapshot {
    digests: Vec<String>,
    peeks: Vec<[i64; 5]>,
    at: Instant,
}

fn snapshot(con: &mut Connection) -> Snapshot {
    // Taken first: every PEEK below happens after it.
    let at = Instant::now();
    Snapshot {
        digests: KEYS.iter().map(|k| digest(con, k)).collect(),
        peeks: KEYS
            .iter()
            .map(|k| peek(con, k, Some(0)).expect("bucket present"))
            .collect(),
        at,
    }
}

fn assert_kept(before: &Snapshot, con: &mut Connection, keys_under: &[&str], what: &str) {
    for (i, key) in keys_under.iter().enumerate() {
        assert_eq!(
            digest(con, key),
            before.digests[i],
            "{what}: digest of {key:?}"
        );
        let after = peek(con, key, Some(0)).unwrap_or_else(|| panic!("{what}: {key:?} lost"));
        // Measured after the PEEK answered; times are whole milliseconds,
        // rounded up: one more of slack.
        let elapsed = before.at.elapsed().as_millis() as i64 + 2;
        assert_same_bucket(before.peeks[i], after, elapsed, &format!("{what}: {key:?}"));
    }
}

#[test]
fn debug_reload() {
    let server = Server::start();
    let mut con = server.con();
    fill(&mut con);
    let before = snapshot(&mut con);
    let _: () = redis::cmd("DEBUG").arg("RELOAD").query(&mut con).unwrap();
    assert_kept(&before, &mut con, &KEYS, "DEBUG RELOAD");
}

#[test]
fn save_and_restart() {
    let mut server = Server::start();
    let mut con = server.con();
    fill(&mut con);
    let before = snapshot(&mut con);
    let _: () = redis::cmd("SAVE").query(&mut con).unwrap();
    server.shutdown(false);
    server.restart();
    let mut con = server.con();
    assert_kept(&before, &mut con, &KEYS, "SAVE + restart");
    // The TTL came back with the value.
    let ttl = pttl(&mut con, "drained");
    assert!(ttl > 0, "PTTL {ttl}");
}

#[test]
fn appendonly_and_restart() {
    let mut server = Server::start_with(&["--appendonly", "yes", "--appendfsync", "always"]);
    let mut con = server.con();
    fill(&mut con);
    let before = snapshot(&mut con);
    server.shutdown(false);
    server.restart();
    let mut con = server.con();
    assert_kept(&before, &mut con, &KEYS, "AOF replay");
}

fn rewrite_and_restart(preamble: &str) {
    let mut server =
        Server::start_with(&["--appendonly", "yes", "--aof-use-rdb-preamble", preamble]);
    let mut con = server.con();
    fill(&mut con);
    let before = snapshot(&mut con);
    let _: String = redis::cmd("BGREWRITEAOF").query(&mut con).unwrap();
    wait_for_rewrite(&server);
    // Changes after the rewrite land in the new AOF too.
    rate(&mut con, "after", &["5", "1", "1h"]);
    let after_digest = digest(&mut con, "after");
    server.shutdown(false);
    server.restart();
    let mut con = server.con();
    assert_kept(
        &before,
        &mut con,
        &KEYS,
        &format!("BGREWRITEAOF (preamble {preamble}) + restart"),
    );
    assert_eq!(digest(&mut con, "after"), after_digest);
    if preamble == "no" {
        // The rewritten file holds the state command, which rebuilt them.
        let aof = aof_text(&server);
        assert!(
            aof.contains("CHARON.SETSTATE"),
            "no state command in the rewritten AOF"
        );
        assert!(
            !aof.contains("CHARON.RATE"),
            "a decision was written to the AOF"
        );
    }
}

#[test]
fn bgrewriteaof_with_rdb_preamble() {
    rewrite_and_restart("yes");
}

#[test]
fn bgrewriteaof_without_rdb_preamble() {
    rewrite_and_restart("no");
}

fn wait_for_rewrite(server: &Server) {
    let deadline = Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let info = server.info("persistence");
        if info_u64(&info, "aof_rewrite_in_progress") == 0
            && info_u64(&info, "aof_rewrite_scheduled") == 0
        {
            assert_eq!(
                info_field(&info, "aof_last_bgrewrite_status").as_deref(),
                Some("ok")
            );
            return;
        }
        assert!(Instant::now() < deadline, "AOF rewrite did not finish");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// The text of every AOF file (one file before 7.0, a directory after).
fn aof_text(server: &Server) -> String {
    let mut text = String::new();
    let mut paths = vec![server.dir.join("appendonly.aof")];
    if let Ok(entries) = std::fs::read_dir(server.dir.join("appendonlydir")) {
        paths.extend(entries.flatten().map(|e| e.path()));
    }
    for path in paths {
        if let Ok(bytes) = std::fs::read(&path) {
            text.push_str(&String::from_utf8_lossy(&bytes));
        }
    }
    text
}

#[test]
fn dump_restore() {
    let server = Server::start();
    let mut con = server.con();
    fill(&mut con);
    let before = snapshot(&mut con);
    let restored: Vec<String> = KEYS.iter().map(|k| format!("restored:{k}")).collect();
    for (key, target) in KEYS.iter().zip(&restored) {
        let payload: Vec<u8> = redis::cmd("DUMP").arg(*key).query(&mut con).unwrap();
        // The digest counts whether a key has an expiry, not when: restore
        // with a fixed one. (The bucket's own TTL can be near 2^63 ms, which
        // overflows in RESTORE once a millisecond has passed.)
        let _: () = redis::cmd("RESTORE")
            .arg(target)
            .arg(86_400_000)
            .arg(payload)
            .query(&mut con)
            .unwrap();
    }
    let targets: Vec<&str> = restored.iter().map(String::as_str).collect();
    assert_kept(&before, &mut con, &targets, "DUMP/RESTORE");
}

#[test]
fn copy_is_independent() {
    let server = Server::start();
    let mut con = server.con();
    fill(&mut con);
    let before = snapshot(&mut con);
    let copies: Vec<String> = KEYS.iter().map(|k| format!("copy:{k}")).collect();
    for (key, target) in KEYS.iter().zip(&copies) {
        let copied: i64 = redis::cmd("COPY")
            .arg(*key)
            .arg(target)
            .query(&mut con)
            .unwrap();
        assert_eq!(copied, 1);
    }
    let targets: Vec<&str> = copies.iter().map(String::as_str).collect();
    assert_kept(&before, &mut con, &targets, "COPY");
    // Independent: draining the copy leaves the original as it was.
    rate(&mut con, "copy:fresh", &["10", "10", "1h", "5"]);
    assert_eq!(digest(&mut con, "fresh"), before.digests[0]);
    assert_ne!(digest(&mut con, "copy:fresh"), before.digests[0]);
    let info = server.info("charon");
    assert_eq!(info_u64(&info, "charon_buckets"), 10);
}
