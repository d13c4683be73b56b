//! A server killed (`SIGKILL`) and started again on its own files: with
//! `appendfsync always` every acknowledged decision stays charged; with RDB
//! alone the buckets are exactly as at the last save.

use crate::support::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

const BUCKETS: usize = 10;

/// Bucket `k` of the AOF test: its name and capacity (5 to 185 tokens,
/// refilled one per hour).
fn bucket(k: usize) -> (String, i64) {
    (format!("aof:{k}"), 5 + 20 * k as i64)
}

/// What the workload knows when the server dies: the tokens every
/// acknowledged allowed request took, and the request whose reply never
/// came (it may or may not have been applied).
struct Acknowledged {
    taken: [i64; BUCKETS],
    in_flight: Option<(usize, i64)>,
    requests: usize,
}

#[test]
fn aof_always_keeps_every_acknowledged_decision_through_kill_9() {
    let mut server = Server::start_with(&["--appendonly", "yes", "--appendfsync", "always"]);
    let replies = Arc::new(AtomicUsize::new(0));
    let worker = {
        let mut con = server.con();
        let replies = Arc::clone(&replies);
        std::thread::spawn(move || {
            let mut rng = Rng::new(0xd1b5_4a32_d192_ed03);
            let mut known = Acknowledged {
                taken: [0; BUCKETS],
                in_flight: None,
                requests: 0,
            };
            loop {
                let k = rng.index(BUCKETS);
                let cost = 1 + rng.below(3) as i64;
                let (key, capacity) = bucket(k);
                let reply: redis::RedisResult<Vec<i64>> = redis::cmd("CHARON.RATE")
                    .arg(&key)
                    .arg(capacity)
                    .arg(1)
                    .arg("1h")
                    .arg(cost)
                    .query(&mut con);
                match reply {
                    Ok(reply) => {
                        if reply[0] == 0 {
                            known.taken[k] += cost;
                        }
                        known.requests += 1;
                        replies.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(_) => {
                        known.in_flight = Some((k, cost));
                        return known;
                    }
                }
            }
        })
    };
    // Killed in the middle of the workload, requests still coming.
    wait_until("the workload to get going", || {
        replies.load(Ordering::SeqCst) >= 150
    });
    server.kill();
    let known = worker.join().expect("workload");
    assert!(known.requests >= 150);

    server.restart();
    let mut con = server.con();
    let mut charged = 0;
    for (k, taken) in known.taken.iter().enumerate() {
        let (key, capacity) = bucket(k);
        let held = peek(&mut con, &key, Some(0)).map_or(capacity, |p| p[2]);
        let most = capacity - taken;
        let least = match known.in_flight {
            Some((j, cost)) if j == k => (most - cost).max(0),
            _ => most,
        };
        assert!(
            held <= most,
            "{key}: {held} tokens after the crash, {taken} of {capacity} were taken"
        );
        assert!(
            held >= least,
            "{key}: {held} tokens after the crash, more charged than requested"
        );
        // Counted the way a client would: allowed requests until limited.
        let mut further = 0;
        while rate(&mut con, &key, &[&capacity.to_string(), "1", "1h"])[0] == 0 {
            further += 1;
        }
        assert_eq!(further, held, "{key}: further allowed requests");
        charged += taken;
    }
    assert!(charged > 150, "only {charged} tokens were taken");

    // The AOF holds states, never decisions to take again.
    let aof = aof_text(&server);
    assert!(aof.contains("CHARON.SETSTATE"), "no state in the AOF");
    assert!(!aof.contains("CHARON.RATE"), "a decision in the AOF");
}

#[test]
fn rdb_only_loses_exactly_what_came_after_the_save() {
    let mut server = Server::start();
    let mut con = server.con();
    let mut rng = Rng::new(0x853c_49e6_748f_ea9b);
    random_workload(&mut con, &mut rng, "rdb", 40, 400);
    let _: () = redis::cmd("SAVE").query(&mut con).unwrap();
    let saved = keys(&mut con);
    assert!(saved.len() > 20, "only {} buckets", saved.len());
    let before = Snapshot::take(&mut con, &saved);

    // After the save: decisions on the saved buckets (new limits too) and
    // on new ones.
    let mut allowed = 0;
    for key in &saved {
        if rate(&mut con, key, &["1000", "7", "13h"])[0] == 0 {
            allowed += 1;
        }
    }
    for i in 0..20 {
        assert_eq!(
            rate(&mut con, &format!("late:{i}"), &["5", "1", "1h"])[0],
            0
        );
    }
    assert!(allowed > 10, "only {allowed} decisions after the save");
    let changed = saved
        .iter()
        .zip(&before.digests)
        .filter(|(k, d)| digest(&mut con, k) != **d)
        .count();
    assert!(
        changed > 10,
        "only {changed} buckets changed after the save"
    );

    server.kill();
    server.restart();
    let mut con = server.con();
    assert_eq!(keys(&mut con), saved, "the buckets of the save, no others");
    before.assert_kept(&mut con, &saved, "as saved");
}
