//! Every way a bucket leaves memory and comes back keeps it exactly:
//! `DEBUG DIGEST-VALUE` equal (the digest covers every field) and
//! `CHARON.PEEK` equal (up to the time that passed).

use crate::support::*;
use redis::Connection;

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
        &["1000000000000", "1000000", "3650d", "999999999999"],
    );
    rate(con, "bin\u{0}ary", &["5", "5", "1d", "2"]);
}

#[test]
fn debug_reload() {
    let server = Server::start();
    let mut con = server.con();
    fill(&mut con);
    let before = Snapshot::take(&mut con, &KEYS);
    let _: () = redis::cmd("DEBUG").arg("RELOAD").query(&mut con).unwrap();
    before.assert_kept(&mut con, &KEYS, "DEBUG RELOAD");
}

#[test]
fn save_and_restart() {
    let mut server = Server::start();
    let mut con = server.con();
    fill(&mut con);
    let before = Snapshot::take(&mut con, &KEYS);
    let _: () = redis::cmd("SAVE").query(&mut con).unwrap();
    server.shutdown(false);
    server.restart();
    let mut con = server.con();
    before.assert_kept(&mut con, &KEYS, "SAVE + restart");
    // The TTL came back with the value.
    let ttl = pttl(&mut con, "drained");
    assert!(ttl > 0, "PTTL {ttl}");
}

#[test]
fn appendonly_and_restart() {
    let mut server = Server::start_with(&["--appendonly", "yes", "--appendfsync", "always"]);
    let mut con = server.con();
    fill(&mut con);
    let before = Snapshot::take(&mut con, &KEYS);
    server.shutdown(false);
    server.restart();
    let mut con = server.con();
    before.assert_kept(&mut con, &KEYS, "AOF replay");
}

fn rewrite_and_restart(preamble: &str) {
    let mut server =
        Server::start_with(&["--appendonly", "yes", "--aof-use-rdb-preamble", preamble]);
    let mut con = server.con();
    fill(&mut con);
    let before = Snapshot::take(&mut con, &KEYS);
    let _: String = redis::cmd("BGREWRITEAOF").query(&mut con).unwrap();
    wait_for_rewrite(&server);
    // Changes after the rewrite land in the new AOF too.
    rate(&mut con, "after", &["5", "1", "1h"]);
    let after_digest = digest(&mut con, "after");
    server.shutdown(false);
    server.restart();
    let mut con = server.con();
    before.assert_kept(
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
    let mut info = String::new();
    wait_until("the AOF rewrite to finish", || {
        info = server.info("persistence");
        info_u64(&info, "aof_rewrite_in_progress") == 0
            && info_u64(&info, "aof_rewrite_scheduled") == 0
    });
    assert_eq!(
        info_field(&info, "aof_last_bgrewrite_status").as_deref(),
        Some("ok")
    );
}

#[test]
fn dump_restore() {
    let server = Server::start();
    let mut con = server.con();
    fill(&mut con);
    let before = Snapshot::take(&mut con, &KEYS);
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
    before.assert_kept(&mut con, &targets, "DUMP/RESTORE");
}

#[test]
fn copy_is_independent() {
    let server = Server::start();
    let mut con = server.con();
    fill(&mut con);
    let before = Snapshot::take(&mut con, &KEYS);
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
    before.assert_kept(&mut con, &targets, "COPY");
    // Independent: draining the copy leaves the original as it was.
    rate(&mut con, "copy:fresh", &["10", "10", "1h", "5"]);
    assert_eq!(digest(&mut con, "fresh"), before.digests[0]);
    assert_ne!(digest(&mut con, "copy:fresh"), before.digests[0]);
    let info = server.info("charon");
    assert_eq!(info_u64(&info, "charon_buckets"), 10);
}
