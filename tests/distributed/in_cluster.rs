//! Buckets in a real Redis Cluster: routed by a cluster client, moved by
//! resharding (MIGRATE; Valkey's atomic slot migration), kept through a
//! manual failover and a master crash.

use crate::cluster::{by_owner, keyslot, Cluster};
use crate::support::*;
use redis::cluster::ClusterConnection;
use redis::{Connection, ConnectionLike, Value};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

/// One hour, the period of every bucket here: a test never refills a token.
const HOUR_MS: i64 = 3_600_000;

#[test]
fn cluster_client_decides_on_1000_keys_over_every_master() {
    let cluster = Cluster::start();
    let mut client = cluster.client();
    let keys: Vec<String> = (0..1000).map(|i| format!("bucket:{i}")).collect();
    for (i, key) in keys.iter().enumerate() {
        let capacity = 2 + (i % 7) as i64;
        let (cap, all_but_one) = (capacity.to_string(), (capacity - 1).to_string());
        let limit = [cap.as_str(), "1", "1h"];
        let c = &mut client;

        assert_eq!(peek(c, key, None), None, "{key}: no bucket yet");
        let start = Instant::now();
        // A full bucket, one token taken: exactly an hour to refill it.
        assert_eq!(
            rate(c, key, &limit),
            [0, capacity, capacity - 1, -1, HOUR_MS]
        );
        // The whole capacity: one token short.
        let limited = rate(c, key, &[&cap, "1", "1h", &cap]);
        assert_eq!(limited[..3], [1, capacity, capacity - 1], "{key}");
        assert_eq!(limited[3], limited[4], "{key}: one token short = refill");
        let drained = rate(c, key, &[&cap, "1", "1h", &all_but_one]);
        assert_eq!(drained[..4], [0, capacity, 0, -1], "{key}");
        let empty = rate(c, key, &limit);
        assert_eq!(empty[..3], [1, capacity, 0], "{key}");
        assert_eq!(refund(c, key, 1), Some(1), "{key}: refund");
        let peeked = peek(c, key, None).expect("bucket");
        assert_eq!(peeked[..4], [0, capacity, 0, -1], "{key}: peek 1");
        let held = peek(c, key, Some(0)).expect("bucket");
        assert_eq!(held[..4], [0, capacity, 1, -1], "{key}: peek 0");

        let elapsed = elapsed_ms(start);
        assert_within(limited[3], HOUR_MS, elapsed, key);
        assert_within(drained[4], capacity * HOUR_MS, elapsed, key);
        assert_within(empty[3], HOUR_MS, elapsed, key);
        assert_within(empty[4], capacity * HOUR_MS, elapsed, key);
        // PEEK answers as if the cost were taken: empty, or one token short.
        assert_within(peeked[4], capacity * HOUR_MS, elapsed, key);
        assert_within(held[4], (capacity - 1) * HOUR_MS, elapsed, key);
    }

    // The keys cover the slot space and every master holds its share.
    let owners = cluster.owners();
    let masters = cluster.masters();
    let mut con = cluster.server(masters[0].port).con();
    for key in &keys {
        let slot: usize = redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(key)
            .query(&mut con)
            .unwrap();
        assert_eq!(keyslot(key.as_bytes()), slot, "slot of {key}");
    }
    let slots: HashSet<usize> = keys.iter().map(|k| keyslot(k.as_bytes())).collect();
    assert!(slots.len() > 900, "only {} distinct slots", slots.len());
    let groups = by_owner(&owners, &keys);
    for master in &masters {
        let held = groups.get(&master.port).map_or(0, Vec::len);
        assert!(held > 250, "master {} serves only {held} keys", master.port);
        let mut con = cluster.server(master.port).con();
        assert_eq!(dbsize(&mut con), held, "buckets on master {}", master.port);
    }

    // The commands declare their key: the cluster redirects them, and
    // COMMAND GETKEYS finds the key.
    let key = &keys[0];
    let owner = owners[keyslot(key.as_bytes())];
    let other = masters.iter().find(|m| m.port != owner).unwrap();
    let mut elsewhere = cluster.server(other.port).con();
    for command in [
        &[b"CHARON.RATE".as_slice(), key.as_bytes(), b"5", b"1", b"1h"][..],
        &[b"CHARON.PEEK", key.as_bytes()],
        &[b"CHARON.REFUND", key.as_bytes(), b"1"],
    ] {
        let error = error_of(&mut elsewhere, command);
        assert!(
            error.starts_with("MOVED"),
            "{:?} on a node without the slot: {error}",
            printable(command)
        );
    }
    let tagged = "some{tag}key";
    for command in [
        vec!["CHARON.RATE", tagged, "10", "1", "1h"],
        vec!["CHARON.RATE", tagged, "10", "1", "1h", "3"],
        vec!["CHARON.PEEK", tagged],
        vec!["CHARON.PEEK", tagged, "0"],
        vec!["CHARON.REFUND", tagged, "1"],
        vec![
            "CHARON.SETSTATE",
            tagged,
            "0",
            "1",
            "10",
            "1",
            "1000",
            "5",
            "0",
        ],
        vec!["CHARON.SETSTATE", tagged, "packed-state"],
    ] {
        let found: Vec<String> = redis::cmd("COMMAND")
            .arg("GETKEYS")
            .arg(&command)
            .query(&mut elsewhere)
            .unwrap_or_else(|e| panic!("COMMAND GETKEYS {command:?}: {e}"));
        assert_eq!(found, [tagged], "COMMAND GETKEYS {command:?}");
    }

    // A replica answers PEEK after READONLY, and redirects decisions.
    let master = cluster
        .masters()
        .into_iter()
        .find(|m| m.port == owner)
        .unwrap();
    let replica = cluster.replica_of(&master.id);
    wait_replicated(cluster.server(owner), &[cluster.server(replica.port)]);
    let mut on_replica = cluster.server(replica.port).con();
    let _: () = redis::cmd("READONLY").query(&mut on_replica).unwrap();
    assert_eq!(
        peek(&mut on_replica, key, Some(0)).map(|p| p[..3].to_vec()),
        Some(vec![0, 2, 1]),
        "PEEK on a replica"
    );
    let error = error_of(
        &mut on_replica,
        &[b"CHARON.RATE", key.as_bytes(), b"2", b"1", b"1h"],
    );
    assert!(error.starts_with("MOVED"), "RATE on a replica: {error}");

    // Keys with one hash tag live together: one MULTI decides on both.
    let (second, hour) = ("{tenant:7}:second", "{tenant:7}:hour");
    let slot = keyslot(second.as_bytes());
    assert_eq!(slot, keyslot(hour.as_bytes()));
    let mut together = cluster.server(owners[slot]).con();
    let replies: Vec<Vec<i64>> = redis::pipe()
        .atomic()
        .cmd("CHARON.RATE")
        .arg(second)
        .arg(&["10", "10", "1s"][..])
        .cmd("CHARON.RATE")
        .arg(hour)
        .arg(&["1000", "1000", "1h"][..])
        .query(&mut together)
        .unwrap();
    assert_eq!(
        replies,
        [vec![0, 10, 9, -1, 100], vec![0, 1000, 999, -1, 3600]]
    );
}

/// `CHARON.RESERVE` through any connection, answering the 5 integers.
fn reserve(con: &mut dyn ConnectionLike, key: &str, args: &[&str]) -> [i64; 5] {
    let reply: Vec<i64> = redis::cmd("CHARON.RESERVE")
        .arg(key)
        .arg(args)
        .query(con)
        .unwrap_or_else(|e| panic!("CHARON.RESERVE {key} {args:?}: {e}"));
    reply.try_into().expect("5 integers")
}

/// `CHARON.INSPECT` of an existing bucket through any connection.
fn inspect(con: &mut dyn ConnectionLike, key: &str) -> Vec<[i64; 5]> {
    let bands: Option<Vec<[i64; 5]>> = redis::cmd("CHARON.INSPECT")
        .arg(key)
        .query(con)
        .unwrap_or_else(|e| panic!("CHARON.INSPECT {key}: {e}"));
    bands.unwrap_or_else(|| panic!("{key}: no bucket"))
}

/// A bucket as seen before a move: where it was and what it held.
struct Before {
    owner: u16,
    digest: String,
    peek: [i64; 5],
    pttl: i64,
}

/// One connection per node, opened on first use.
struct Connections<'c> {
    cluster: &'c Cluster,
    open: HashMap<u16, Connection>,
}

impl<'c> Connections<'c> {
    fn new(cluster: &'c Cluster) -> Self {
        Connections {
            cluster,
            open: HashMap::new(),
        }
    }

    fn to(&mut self, port: u16) -> &mut Connection {
        let cluster = self.cluster;
        self.open
            .entry(port)
            .or_insert_with(|| cluster.server(port).con())
    }
}

fn snapshot(
    cluster: &Cluster,
    client: &mut ClusterConnection,
    keys: &[String],
) -> (HashMap<String, Before>, Instant) {
    let owners = cluster.owners();
    // Taken first: every reading below happens after it.
    let at = Instant::now();
    let mut cons = Connections::new(cluster);
    let before = keys
        .iter()
        .map(|key| {
            let owner = owners[keyslot(key.as_bytes())];
            let con = cons.to(owner);
            let before = Before {
                owner,
                digest: digest(con, key),
                peek: peek(client, key, Some(0)).expect("bucket"),
                pttl: pttl(con, key),
            };
            assert_ne!(before.digest, NO_KEY, "{key}");
            assert!(before.pttl > 0, "{key}: PTTL {}", before.pttl);
            (key.clone(), before)
        })
        .collect();
    (before, at)
}

/// What `CHARON.RATE key capacity 1 1h` answers on a bucket that held
/// `tokens` (times left out).
fn next_decision(capacity: i64, tokens: i64) -> [i64; 3] {
    if tokens >= 1 {
        [0, capacity, tokens - 1]
    } else {
        [1, capacity, 0]
    }
}

/// How slots move from one master to another.
enum Resharding {
    /// `--cluster reshard` of the CLI: slot by slot, key by key, with
    /// MIGRATE (DUMP and RESTORE of each bucket).
    Cli,
    /// `CLUSTER MIGRATESLOTS` (Valkey 9.0+): the source sends a snapshot
    /// of the slots in AOF form (each bucket as its state command), then
    /// streams the writes that follow.
    Atomic,
}

#[test]
fn resharding_moves_every_bucket_intact() {
    reshard_and_check(Resharding::Cli);
}

#[test]
fn atomic_slot_migration_moves_every_bucket_intact() {
    let kind = ServerKind::from_env();
    if !(kind.is_valkey() && kind.major_minor() >= (9, 0)) {
        skip("atomic slot migration (CLUSTER MIGRATESLOTS) needs Valkey 9.0");
        return;
    }
    reshard_and_check(Resharding::Atomic);
}

/// Moves the lowest slots of one master to another while decisions run on
/// buckets in them; every bucket arrives exactly as it left.
fn reshard_and_check(how: Resharding) {
    let cluster = Cluster::start();
    let mut client = cluster.client();
    let masters = cluster.masters();
    let (from, to) = (&masters[0], &masters[1]);
    // The source's lowest slots (the ones the CLI picks): a few hundred, as
    // Valkey's CLI takes some 15 ms a slot.
    let slots_to_move = 256;
    let moving: Vec<usize> = from
        .slots
        .iter()
        .flat_map(|&(a, b)| a..=b)
        .take(slots_to_move)
        .collect();
    let moving_slots: HashSet<usize> = moving.iter().copied().collect();
    let in_moving_slots = |prefix: &'static str, n: usize| -> Vec<String> {
        (0..)
            .map(|j| format!("{prefix}:{j}"))
            .filter(|k| moving_slots.contains(&keyslot(k.as_bytes())))
            .take(n)
            .collect()
    };
    // 1000 buckets over the whole slot space, and 100 more in the slots
    // that move.
    let mut keys: Vec<String> = (0..1000).map(|i| format!("moving:{i}")).collect();
    keys.extend(in_moving_slots("packed", 100));
    for (i, key) in keys.iter().enumerate() {
        // Costs 1..=10 of 10: from nearly full to drained.
        let cost = (1 + i % 10).to_string();
        rate(&mut client, key, &["10", "1", "1h", &cost]);
    }
    // Buckets holding reservations (below zero, stored as encver 2 and
    // replicated in the signed state format) in the slots that move, and
    // some with two bands.
    let reserved_keys = in_moving_slots("reserved", 50);
    for (i, key) in reserved_keys.iter().enumerate() {
        let mut args = vec!["10", "1", "1h", "10"];
        if i % 2 == 1 {
            args.extend(["LIMIT", "100", "1", "1h"]);
        }
        args.extend(["MAXWAIT", "0"]);
        assert_eq!(
            reserve(&mut client, key, &args)[..4],
            [0, 10, 0, -1],
            "{key}"
        );
        let deeper = (1 + i % 5).to_string();
        args[3] = &deeper;
        *args.last_mut().unwrap() = "86400000";
        let granted = reserve(&mut client, key, &args);
        assert_eq!(granted[..3], [0, 10, 0], "{key}: {granted:?}");
        assert!(granted[3] > 0, "{key}: {granted:?}");
    }
    let reserved_before: Vec<Vec<[i64; 5]>> = reserved_keys
        .iter()
        .map(|key| inspect(&mut client, key))
        .collect();
    for (key, bands) in reserved_keys.iter().zip(&reserved_before) {
        assert!(bands[0][3] < 0, "{key}: {bands:?}");
    }
    keys.extend(reserved_keys.iter().cloned());

    // Decisions keep running on buckets in those slots while they move
    // (MOVED and ASK redirections).
    let live_keys = in_moving_slots("live", 30);

    let (before, at) = snapshot(&cluster, &mut client, &keys);
    let stop = Arc::new(AtomicBool::new(false));
    let live = Beside {
        stop: Arc::clone(&stop),
        thread: Some({
            let mut live_client = cluster.client();
            let live_keys = live_keys.clone();
            std::thread::spawn(move || {
                // Each round takes one token from each bucket: the replies
                // count down exactly, wherever the bucket is.
                let capacity = 1_000_000;
                let mut rounds = 0;
                while !stop.load(Ordering::Relaxed) || rounds == 0 {
                    for key in &live_keys {
                        let reply = rate(&mut live_client, key, &["1000000", "1", "1h"]);
                        assert_eq!(
                            reply[..3],
                            [0, capacity, capacity - 1 - rounds],
                            "{key} in round {rounds}"
                        );
                    }
                    rounds += 1;
                }
                rounds
            })
        }),
    };
    match how {
        Resharding::Cli => {
            cluster.cli(&[
                "--cluster".into(),
                "reshard".into(),
                format!("127.0.0.1:{}", from.port),
                "--cluster-from".into(),
                from.id.clone(),
                "--cluster-to".into(),
                to.id.clone(),
                "--cluster-slots".into(),
                slots_to_move.to_string(),
                "--cluster-yes".into(),
            ]);
        }
        Resharding::Atomic => migrate_slots(&cluster, from.port, &to.id, &moving),
    }
    let rounds = live.finish();
    eprintln!("{rounds} rounds of decisions on buckets while their slots moved");

    let owners = cluster.owners();
    for slot in &moving_slots {
        assert_eq!(owners[*slot], to.port, "slot {slot} moved");
    }
    let mut cons = Connections::new(&cluster);
    let mut moved = 0;
    for key in &keys {
        let was = &before[key];
        let owner = owners[keyslot(key.as_bytes())];
        if owner != was.owner {
            assert_eq!((was.owner, owner), (from.port, to.port), "{key} moved");
            moved += 1;
            assert_eq!(digest(cons.to(was.owner), key), NO_KEY, "{key} left behind");
        }
        let con = cons.to(owner);
        assert_eq!(digest(con, key), was.digest, "digest of {key}");
        let ttl = pttl(con, key);
        let now = peek(&mut client, key, Some(0)).expect("bucket");
        // Both read before this: one more millisecond for the PTTL's rounding.
        let elapsed = elapsed_ms(at) + 1;
        assert!(
            ttl <= was.pttl + 1 && ttl >= was.pttl - elapsed,
            "{key}: PTTL {} then {ttl} ({elapsed} ms later)",
            was.pttl
        );
        assert_same_bucket(was.peek, now, elapsed, key);
    }
    assert!(moved >= 100, "only {moved} buckets moved");

    // The destination's replica received the moved buckets too.
    let replica = cluster.replica_of(&to.id);
    wait_replicated(cluster.server(to.port), &[cluster.server(replica.port)]);
    let mut at_replica = cluster.server(replica.port).con();
    for key in keys
        .iter()
        .filter(|k| owners[keyslot(k.as_bytes())] == to.port)
    {
        assert_eq!(
            digest(&mut at_replica, key),
            before[key].digest,
            "{key} on the replica"
        );
    }

    if matches!(how, Resharding::Atomic) {
        // The snapshot rebuilt each bucket with its state command.
        let stats = command_stats(cluster.server(to.port));
        assert!(
            stats.contains("cmdstat_charon.setstate:"),
            "no state command on the target:\n{stats}"
        );
    }

    // Reservations arrived exactly: the same bands and tokens below zero,
    // on the destination and its replica.
    let _: () = redis::cmd("READONLY").query(&mut at_replica).unwrap();
    for (key, was) in reserved_keys.iter().zip(&reserved_before) {
        let now = inspect(&mut client, key);
        let on_replica = inspect(&mut at_replica, key);
        for bands in [&now, &on_replica] {
            assert_eq!(bands.len(), was.len(), "{key}: {was:?} then {bands:?}");
            for (a, b) in was.iter().zip(bands.iter()) {
                assert_eq!(a[..4], b[..4], "{key}: {was:?} then {bands:?}");
            }
        }
    }

    // Decisions go on where they were.
    for key in &keys {
        let reply = rate(&mut client, key, &["10", "1", "1h"]);
        assert_eq!(reply[..3], next_decision(10, before[key].peek[2]), "{key}");
    }
    for key in &live_keys {
        let reply = rate(&mut client, key, &["1000000", "1", "1h"]);
        assert_eq!(
            reply[2],
            1_000_000 - 1 - rounds,
            "{key} after {rounds} rounds"
        );
    }
}

/// Decisions running beside the test: stopped and waited for when the test
/// is done with them, or fails (before its servers go away).
struct Beside {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<i64>>,
}

impl Beside {
    /// Stops them; how many rounds they ran (fails if they failed).
    fn finish(mut self) -> i64 {
        self.stop.store(true, Ordering::Relaxed);
        let thread = self.thread.take().expect("running");
        thread.join().expect("decisions during the resharding")
    }
}

impl Drop for Beside {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// `CLUSTER MIGRATESLOTS` of `slots` (ascending) from the master on
/// `source` to the node `target`, polled with `CLUSTER GETSLOTMIGRATIONS`
/// until it succeeds.
fn migrate_slots(cluster: &Cluster, source: u16, target: &str, slots: &[usize]) {
    let mut ranges: Vec<(usize, usize)> = Vec::new();
    for &slot in slots {
        match ranges.last_mut() {
            Some((_, end)) if *end + 1 == slot => *end = slot,
            _ => ranges.push((slot, slot)),
        }
    }
    let mut cmd = redis::cmd("CLUSTER");
    cmd.arg("MIGRATESLOTS").arg("SLOTSRANGE");
    for (start, end) in &ranges {
        cmd.arg(start).arg(end);
    }
    cmd.arg("NODE").arg(target);
    let mut con = cluster.server(source).con();
    let reply: String = cmd.query(&mut con).expect("CLUSTER MIGRATESLOTS");
    assert_eq!(reply, "OK");
    wait_until("the slot migration", || {
        let jobs: Value = redis::cmd("CLUSTER")
            .arg("GETSLOTMIGRATIONS")
            .query(&mut con)
            .expect("CLUSTER GETSLOTMIGRATIONS");
        let Value::Array(jobs) = jobs else {
            panic!("CLUSTER GETSLOTMIGRATIONS answered {jobs:?}");
        };
        assert_eq!(jobs.len(), 1, "one migration: {jobs:?}");
        let state = field_of(&jobs[0], "state");
        assert!(
            !matches!(state.as_str(), "failed" | "cancelled" | "canceled"),
            "slot migration {state}: {jobs:?}"
        );
        state == "success"
    });
}

/// A field of a map reply (a RESP2 flat array of names and values).
fn field_of(entry: &Value, name: &str) -> String {
    let pairs: Vec<(&Value, &Value)> = match entry {
        Value::Array(items) => items.chunks(2).map(|p| (&p[0], &p[1])).collect(),
        Value::Map(items) => items.iter().map(|(k, v)| (k, v)).collect(),
        other => panic!("not a map: {other:?}"),
    };
    let text = |v: &Value| match v {
        Value::BulkString(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        Value::SimpleString(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        other => format!("{other:?}"),
    };
    pairs
        .into_iter()
        .find(|(k, _)| text(k) == name)
        .map(|(_, v)| text(v))
        .unwrap_or_else(|| panic!("no {name} in {entry:?}"))
}

/// 1000 buckets in varied states, written through the cluster client.
fn fill(client: &mut ClusterConnection, prefix: &str) -> Vec<String> {
    let keys: Vec<String> = (0..1000).map(|i| format!("{prefix}:{i}")).collect();
    for (i, key) in keys.iter().enumerate() {
        let cost = (1 + i % 5).to_string();
        rate(client, key, &["5", "1", "1h", &cost]);
        if i % 7 == 0 {
            refund(client, key, 1);
        }
    }
    keys
}

#[test]
fn manual_failover_keeps_every_bucket() {
    let cluster = Cluster::start();
    let mut client = cluster.client();
    let keys = fill(&mut client, "failover");
    let master = cluster.masters().remove(0);
    let replica = cluster.replica_of(&master.id);
    let owners = cluster.owners();
    let shard: Vec<String> = by_owner(&owners, &keys)[&master.port]
        .iter()
        .map(|k| k.to_string())
        .collect();
    let old = cluster.server(master.port);
    let new = cluster.server(replica.port);
    wait_replicated(old, &[new]);
    let digests: Vec<String> = {
        let mut con = old.con();
        shard.iter().map(|k| digest(&mut con, k)).collect()
    };
    // A bucket refunded to full is no key: it holds its capacity.
    let tokens: Vec<i64> = shard
        .iter()
        .map(|k| peek(&mut client, k, Some(0)).map_or(5, |p| p[2]))
        .collect();
    let buckets = digests.iter().filter(|d| *d != NO_KEY).count();
    assert!(buckets > 250, "only {buckets} buckets on the master");

    let reply: String = redis::cmd("CLUSTER")
        .arg("FAILOVER")
        .query(&mut new.con())
        .unwrap();
    assert_eq!(reply, "OK");
    wait_until("the replica to take over", || {
        cluster.masters().iter().any(|m| m.port == replica.port)
    });
    let owners = cluster.owners();
    for key in &shard {
        assert_eq!(owners[keyslot(key.as_bytes())], replica.port, "{key}");
    }
    let mut promoted = new.con();
    assert_eq!(dbsize(&mut promoted), buckets);
    for (key, expected) in shard.iter().zip(&digests) {
        assert_eq!(&digest(&mut promoted, key), expected, "{key} promoted");
    }
    // The old master follows the new one and holds the same.
    wait_replicated(new, &[old]);
    assert_digest_equal(new, old, &shard, "old master, now a replica");

    // The client follows the move; the buckets decide as before.
    for (key, held) in shard.iter().zip(&tokens) {
        let reply = rate(&mut client, key, &["5", "1", "1h"]);
        assert_eq!(reply[..3], next_decision(5, *held), "{key}");
    }
}

#[test]
fn master_crash_keeps_acknowledged_buckets() {
    let mut cluster = Cluster::start();
    let master = cluster.masters().remove(1);
    let replica = cluster.replica_of(&master.id);
    let owners = cluster.owners();
    let keys: Vec<String> = (0..)
        .map(|i| format!("crash:{i}"))
        .filter(|k| owners[keyslot(k.as_bytes())] == master.port)
        .take(300)
        .collect();
    let (digests, tokens) = {
        let mut con = cluster.server(master.port).con();
        for (i, key) in keys.iter().enumerate() {
            let cost = (1 + i % 5).to_string();
            rate(&mut con, key, &["5", "1", "1h", &cost]);
        }
        // Acknowledged: the replica has every one of them.
        assert_eq!(wait_acks(&mut con, 1), 1, "WAIT 1");
        let digests: Vec<String> = keys.iter().map(|k| digest(&mut con, k)).collect();
        let tokens: Vec<i64> = keys
            .iter()
            .map(|k| peek(&mut con, k, Some(0)).expect("bucket")[2])
            .collect();
        (digests, tokens)
    };

    cluster.kill(master.port);
    let owners = cluster.owners();
    for key in &keys {
        assert_eq!(owners[keyslot(key.as_bytes())], replica.port, "{key}");
    }
    let mut promoted = cluster.server(replica.port).con();
    assert_eq!(dbsize(&mut promoted), keys.len());
    for (key, expected) in keys.iter().zip(&digests) {
        assert_eq!(
            &digest(&mut promoted, key),
            expected,
            "{key} after the crash"
        );
    }
    let mut client = cluster.client();
    for (key, held) in keys.iter().zip(&tokens) {
        let reply = rate(&mut client, key, &["5", "1", "1h"]);
        assert_eq!(reply[..3], next_decision(5, *held), "{key}");
    }
}
