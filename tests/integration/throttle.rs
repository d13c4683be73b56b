//! `CL.THROTTLE` (module argument `CLTHROTTLE yes`): redis-cell's contract on
//! Charon's bucket, the conversion of redis-cell's keys in place, and the
//! module arguments.
//!
//! The harness loads the module without arguments: a server with
//! `CLTHROTTLE yes` starts from a configuration file that loads it with
//! them (`Throttled`), and loads that must fail run on a server started
//! here (`Bare`).

use crate::support::*;
use redis::{Connection, Value};
use std::net::TcpListener;
use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------
// Servers.

static NEXT: AtomicUsize = AtomicUsize::new(0);

fn scratch(what: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!(
        "charon-throttle-{}-{}-{what}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&path);
    path
}

/// A harness server loaded with `CLTHROTTLE yes`, and `lines` of
/// configuration, from a configuration file that lives as long as it.
struct Throttled {
    server: Server,
    config: PathBuf,
}

impl Deref for Throttled {
    type Target = Server;
    fn deref(&self) -> &Server {
        &self.server
    }
}

impl DerefMut for Throttled {
    fn deref_mut(&mut self) -> &mut Server {
        &mut self.server
    }
}

impl Drop for Throttled {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.config);
    }
}

fn start(lines: &[&str]) -> Throttled {
    let config = scratch("redis.conf");
    // The harness puts the module under test at this path, relative to
    // where the server runs.
    let mut text = String::from("loadmodule ./target/release/libcharon.so CLTHROTTLE yes\n");
    for line in lines {
        text.push_str(line);
        text.push('\n');
    }
    std::fs::write(&config, text).expect("write the configuration");
    let server = Server::start_from_config(&config);
    Throttled { server, config }
}

/// A server started here, without the harness: for loads that must fail
/// and modules the harness does not load.
struct Bare {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
}

impl Bare {
    /// Starts the server with `args`; `Err(log)` if it exits instead of
    /// answering.
    fn start(args: &[String]) -> Result<Bare, String> {
        let kind = ServerKind::from_env();
        let dir = scratch("bare");
        std::fs::create_dir_all(&dir).unwrap();
        let port = loop {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let port = listener.local_addr().unwrap().port();
            if port < 55_000 {
                break port;
            }
        };
        let log = dir.join("server.log");
        let mut all: Vec<String> = [
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--dir",
            &dir.display().to_string(),
            "--logfile",
            &log.display().to_string(),
            "--save",
            "",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if kind.is_7_or_newer() {
            // MODULE LOAD is refused by default from 7.0.
            all.extend(["--enable-module-command".to_string(), "yes".to_string()]);
        }
        all.extend(args.iter().cloned());
        let child = Command::new(&kind.binary)
            .args(&all)
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the server");
        let mut bare = Bare {
            child: Some(child),
            port,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(Ok(Some(_))) = bare.child.as_mut().map(Child::try_wait) {
                bare.child = None;
                return Err(bare.log());
            }
            if let Ok(mut con) = connect(port) {
                if redis::cmd("PING").query::<String>(&mut con).is_ok() {
                    return Ok(bare);
                }
            }
            assert!(Instant::now() < deadline, "no answer:\n{}", bare.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn con(&self) -> Connection {
        connect(self.port).expect("connect")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    fn is_alive(&mut self) -> bool {
        matches!(self.child.as_mut().map(Child::try_wait), Some(Ok(None)))
    }
}

impl Drop for Bare {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("--- bare server log ---\n{}", self.log());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn module() -> String {
    module_path().display().to_string()
}

fn loadmodule(args: &[&str]) -> Vec<String> {
    let mut all = vec!["--loadmodule".to_string(), module()];
    all.extend(args.iter().map(|s| s.to_string()));
    all
}

// ---------------------------------------------------------------------------
// Commands.

fn throttle(con: &mut Connection, key: &str, args: &[&str]) -> [i64; 5] {
    let reply: Vec<i64> = redis::cmd("CL.THROTTLE")
        .arg(key)
        .arg(args)
        .query(con)
        .unwrap_or_else(|e| panic!("CL.THROTTLE {key} {args:?}: {e}"));
    reply.try_into().expect("5 integers")
}

fn throttle_error(con: &mut Connection, args: &[&[u8]]) -> String {
    let mut argv: Vec<&[u8]> = vec![b"CL.THROTTLE"];
    argv.extend_from_slice(args);
    error_of(con, &argv)
}

/// The server's clock (`TIME`) in nanoseconds, as redis-cell counts.
fn now_ns(con: &mut Connection) -> u64 {
    let (seconds, micros): (u64, u64) = redis::cmd("TIME").query(con).expect("TIME");
    seconds * 1_000_000_000 + micros * 1000
}

/// Leaves `key` the way redis-cell leaves it: its TAT as a decimal string,
/// expiring when the bucket is full again.
fn set_cell(con: &mut Connection, key: &str, tat_ns: u64, px: Option<u64>) {
    let mut cmd = redis::cmd("SET");
    cmd.arg(key).arg(tat_ns.to_string());
    if let Some(px) = px {
        cmd.arg("PX").arg(px);
    }
    let _: () = cmd.query(con).expect("SET");
}

fn key_type(con: &mut Connection, key: &str) -> String {
    redis::cmd("TYPE").arg(key).query(con).expect("TYPE")
}

fn get(con: &mut Connection, key: &str) -> Option<Vec<u8>> {
    redis::cmd("GET").arg(key).query(con).expect("GET")
}

fn exists(con: &mut Connection, key: &str) -> bool {
    redis::cmd("EXISTS")
        .arg(key)
        .query::<i64>(con)
        .expect("EXISTS")
        == 1
}

/// `CHARON.INSPECT`'s one band: capacity refill period_ms tokens
/// reset_after_ms.
fn inspect(con: &mut Connection, key: &str) -> [i64; 5] {
    let bands: Vec<Vec<i64>> = redis::cmd("CHARON.INSPECT")
        .arg(key)
        .query(con)
        .expect("CHARON.INSPECT");
    assert_eq!(bands.len(), 1, "{key}: {bands:?}");
    bands[0].clone().try_into().expect("5 integers")
}

/// A reply whose times may be a second off what was computed from a clock
/// read a moment earlier: the same decision and tokens, times within one.
fn assert_close(got: [i64; 5], want: [i64; 5], what: &str) {
    assert_eq!(got[..3], want[..3], "{what}: {got:?} vs {want:?}");
    for field in [3, 4] {
        assert!(
            (got[field] - want[field]).abs() <= 1 && (got[field] == -1) == (want[field] == -1),
            "{what}: {got:?} vs {want:?}"
        );
    }
}

fn calls(server: &Server) -> u64 {
    info_u64(&server.info("charon"), "charon_calls")
}

// ---------------------------------------------------------------------------
// redis-cell's contract.

#[test]
fn the_acceptance_session() {
    let server = start(&[]);
    let mut con = server.con();
    assert_eq!(
        throttle(&mut con, "user:1", &["15", "30", "60"]),
        [0, 16, 15, -1, 2]
    );
    assert_eq!(key_type(&mut con, "user:1"), "charon-tb");
    // The same bucket CHARON.RATE sees.
    let band = inspect(&mut con, "user:1");
    assert_eq!(band[..4], [16, 30, 60_000, 15]);
    let reply = rate(&mut con, "user:1", &["16", "30", "60s"]);
    assert_eq!(reply[..4], [0, 16, 14, -1]);
    assert!((3_900..=4_000).contains(&reply[4]), "{reply:?}");

    // A key as redis-cell leaves it, its TAT 10 s ahead.
    let tat = now_ns(&mut con) + 10_000_000_000;
    set_cell(&mut con, "old", tat, Some(10_000));
    assert_close(
        throttle(&mut con, "old", &["15", "30", "60"]),
        [0, 16, 10, -1, 12],
        "old",
    );
    assert_eq!(key_type(&mut con, "old"), "charon-tb");

    // Any other string: WRONGTYPE, untouched, the server running.
    let _: () = redis::cmd("SET")
        .arg("bad")
        .arg("abc")
        .query(&mut con)
        .unwrap();
    let error = throttle_error(&mut con, &[b"bad", b"1", b"1", b"1"]);
    assert!(error.starts_with("WRONGTYPE"), "{error}");
    assert_eq!(get(&mut con, "bad").as_deref(), Some(&b"abc"[..]));
    let pong: String = redis::cmd("PING").query(&mut con).unwrap();
    assert_eq!(pong, "PONG");
}

/// redis-cell's README examples, and replies computed from its algorithm
/// for a burst (time standing still, to the second) and a refill.
#[test]
fn redis_cell_examples_bursts_and_refills() {
    let server = start(&[]);
    let mut con = server.con();
    // README: `CL.THROTTLE user123 15 30 60 1`, then one key per limit.
    assert_eq!(
        throttle(&mut con, "user123", &["15", "30", "60", "1"]),
        [0, 16, 15, -1, 2]
    );
    assert_eq!(
        throttle(&mut con, "user123-read-rate", &["15", "30", "60"]),
        [0, 16, 15, -1, 2]
    );
    assert_eq!(
        throttle(&mut con, "user123-write-rate", &["5", "10", "60"]),
        [0, 6, 5, -1, 6]
    );
    // The rest of the burst: T = 2 s per token, so `reset_after` grows by 2
    // per request until the 16 tokens are gone.
    for taken in 2..=16 {
        assert_eq!(
            throttle(&mut con, "user123", &["15", "30", "60"]),
            [0, 16, 16 - taken, -1, 2 * taken],
            "request {taken}"
        );
    }
    assert_eq!(
        throttle(&mut con, "user123", &["15", "30", "60"]),
        [1, 16, 0, 2, 32]
    );

    // redis-cell's own test table (limit 5, 1 per second), at its start.
    let table: [(&str, [i64; 5]); 8] = [
        // Never more than the bucket holds: no key created.
        ("6", [1, 5, 5, -1, 0]),
        ("1", [0, 5, 4, -1, 1]),
        ("1", [0, 5, 3, -1, 2]),
        ("1", [0, 5, 2, -1, 3]),
        ("1", [0, 5, 1, -1, 4]),
        ("1", [0, 5, 0, -1, 5]),
        ("1", [1, 5, 0, 1, 5]),
        // Quantity 0 peeks.
        ("0", [0, 5, 0, -1, 5]),
    ];
    for (i, (quantity, want)) in table.iter().enumerate() {
        assert_eq!(
            throttle(&mut con, "cell", &["4", "1", "1", quantity]),
            *want,
            "case {i}"
        );
    }

    // Where redis-cell answers wrong (its issue #50): large parameters
    // answer `remaining` above the limit there (6024 of 6001 here), or a
    // key that never fills; here, exactly.
    assert_eq!(
        throttle(&mut con, "a", &["6000", "6000", "1"]),
        [0, 6001, 6000, -1, 1]
    );
    for remaining in [1000, 999, 998] {
        let reply = throttle(&mut con, "user:big", &["1000", "1000", "60"]);
        assert_eq!(reply[..4], [0, 1001, remaining, -1]);
    }
    assert_eq!(inspect(&mut con, "user:big")[3], 998);

    // A refill: one token a second.
    assert_eq!(
        throttle(&mut con, "refill", &["0", "1", "1"]),
        [0, 1, 0, -1, 1]
    );
    assert_eq!(
        throttle(&mut con, "refill", &["0", "1", "1"]),
        [1, 1, 0, 1, 1]
    );
    std::thread::sleep(Duration::from_millis(1050));
    assert_eq!(
        throttle(&mut con, "refill", &["0", "1", "1"]),
        [0, 1, 0, -1, 1]
    );
}

/// Quantity 0 and limited requests change nothing; a quantity above the
/// bucket creates no key; INFO counts calls like CHARON.RATE.
#[test]
fn what_changes_and_what_counts() {
    let server = start(&[]);
    let mut con = server.con();
    assert_eq!(
        throttle(&mut con, "k", &["1", "1", "60", "0"]),
        [0, 2, 2, -1, 0]
    );
    assert!(!exists(&mut con, "k"), "quantity 0 created a key");
    assert_eq!(
        throttle(&mut con, "k", &["1", "1", "60", "3"]),
        [1, 2, 2, -1, 0]
    );
    assert!(
        !exists(&mut con, "k"),
        "a quantity above the bucket created a key"
    );
    assert_eq!(
        throttle(&mut con, "k", &["1", "1", "60", "2"]),
        [0, 2, 0, -1, 120]
    );
    let before = digest(&mut con, "k");
    let ttl = pttl(&mut con, "k");
    assert_eq!(
        throttle(&mut con, "k", &["1", "1", "60"])[..4],
        [1, 2, 0, 60]
    );
    // Quantity 0 on an empty bucket: allowed, as in redis-cell.
    assert_eq!(
        throttle(&mut con, "k", &["1", "1", "60", "0"])[..4],
        [0, 2, 0, -1]
    );
    assert_eq!(digest(&mut con, "k"), before);
    assert!(pttl(&mut con, "k") <= ttl);
    // Five calls, counted as CHARON.RATE counts them; errors are no calls.
    throttle_error(&mut con, &[b"k", b"-1", b"1", b"60"]);
    let info = server.info("charon");
    assert_eq!(info_u64(&info, "charon_calls"), 5, "{info}");
    assert_eq!(info_u64(&info, "charon_allowed"), 3, "{info}");
    assert_eq!(info_u64(&info, "charon_limited"), 2, "{info}");
}

#[test]
fn bad_arguments_name_the_argument() {
    let server = start(&[]);
    let mut con = server.con();
    throttle(&mut con, "k", &["5", "1", "3600"]);
    let before = digest(&mut con, "k");
    let cases: &[(&[&[u8]], &str)] = &[
        (&[], "ERR wrong number of arguments"),
        (&[b"k"], "ERR wrong number of arguments"),
        (&[b"k", b"1", b"1"], "ERR wrong number of arguments"),
        (
            &[b"k", b"1", b"1", b"1", b"1", b"1"],
            "ERR wrong number of arguments",
        ),
        (
            &[b"k", b"-1", b"1", b"1"],
            "ERR max_burst must be a non-negative integer",
        ),
        (
            &[b"k", b"x", b"1", b"1"],
            "ERR max_burst must be a non-negative integer",
        ),
        (
            &[b"k", b"+1", b"1", b"1"],
            "ERR max_burst must be a non-negative integer",
        ),
        (
            &[b"k", b"01", b"1", b"1"],
            "ERR max_burst must be a non-negative integer",
        ),
        (
            &[b"k", b"1.5", b"1", b"1"],
            "ERR max_burst must be a non-negative integer",
        ),
        (
            &[b"k", b"9223372036854775807", b"1", b"1"],
            "ERR max_burst is out of range",
        ),
        (
            &[b"k", b"1", b"0", b"1"],
            "ERR count_per_period must be a positive integer",
        ),
        (
            &[b"k", b"1", b"-3", b"1"],
            "ERR count_per_period must be a positive integer",
        ),
        (
            &[b"k", b"1", b"1", b"0"],
            "ERR period must be a positive integer of seconds",
        ),
        (
            &[b"k", b"1", b"1", b"-60"],
            "ERR period must be a positive integer of seconds",
        ),
        (
            &[b"k", b"1", b"1", b"60s"],
            "ERR period must be a positive integer of seconds",
        ),
        (
            &[b"k", b"1", b"1", b"9223372036854776"],
            "ERR period is out of range",
        ),
        (
            &[b"k", b"4611686018427387903", b"1", b"1"],
            "ERR limit is out of range",
        ),
        // A negative quantity is refused, not a refund.
        (
            &[b"k", b"5", b"1", b"3600", b"-1"],
            "ERR quantity must be a non-negative integer",
        ),
        (
            &[b"k", b"5", b"1", b"3600", b"x"],
            "ERR quantity must be a non-negative integer",
        ),
        (
            &[b"k", b"5", b"1", b"3600", b"\xff"],
            "ERR quantity must be a non-negative integer",
        ),
        // Left to right.
        (&[b"k", b"-1", b"0", b"0", b"-1"], "ERR max_burst"),
        (&[b"k", b"1", b"0", b"0", b"-1"], "ERR count_per_period"),
        (&[b"k", b"1", b"1", b"0", b"-1"], "ERR period"),
    ];
    for (args, expected) in cases {
        let error = throttle_error(&mut con, args);
        assert!(
            error.starts_with(expected),
            "{:?}: {error}",
            printable(args)
        );
    }
    assert_eq!(digest(&mut con, "k"), before, "an error changed the bucket");
    assert!(!exists(&mut con, "x"));
    let pong: String = redis::cmd("PING").query(&mut con).unwrap();
    assert_eq!(pong, "PONG");
}

/// Seeded random sequences of CL.THROTTLE and CHARON.RATE with equivalent
/// arguments, mixed on one key, answer what CHARON.RATE alone answers on a
/// twin key (times in whole seconds). Periods of hours and whole seconds
/// per token keep every time away from a second's boundary while the
/// sequence runs.
#[test]
fn throttle_and_rate_on_one_key_agree() {
    let server = start(&[]);
    let mut con = server.con();
    let periods = [3_600u64, 7_200, 86_400];
    let counts = [1u64, 2, 3, 4, 5, 6, 10, 12, 24, 60, 120, 3_600];
    for seed in 1..=12u64 {
        let mut rng = Rng::new(seed * 0x9e37_79b9_7f4a_7c15);
        let period_s = *rng.pick(&periods);
        let count = *rng.pick(&counts);
        let max_burst = rng.below(20);
        let capacity = max_burst + 1;
        let (mixed, twin) = (format!("mixed:{seed}"), format!("twin:{seed}"));
        let throttle_args = [
            max_burst.to_string(),
            count.to_string(),
            period_s.to_string(),
        ];
        let rate_args = [
            capacity.to_string(),
            count.to_string(),
            if rng.chance(50) {
                format!("{period_s}s")
            } else {
                (period_s * 1000).to_string()
            },
        ];
        let started = Instant::now();
        let calls_before = calls(&server);
        let steps = 40;
        for step in 0..steps {
            let quantity = rng.below(capacity + 2).to_string();
            let with = |args: &[String; 3]| -> Vec<String> {
                let mut all = args.to_vec();
                all.push(quantity.clone());
                all
            };
            let on_twin = rate(&mut con, &twin, &as_strs(&with(&rate_args)));
            let expected = in_seconds(on_twin);
            let got = if rng.chance(50) {
                throttle(&mut con, &mixed, &as_strs(&with(&throttle_args)))
            } else {
                in_seconds(rate(&mut con, &mixed, &as_strs(&with(&rate_args))))
            };
            let what = format!("seed {seed} step {step} {throttle_args:?} quantity {quantity}");
            if started.elapsed() < Duration::from_millis(900) {
                assert_eq!(got, expected, "{what}");
            } else {
                assert_close(got, expected, &what);
            }
        }
        assert_eq!(calls(&server) - calls_before, 2 * steps);
        if exists(&mut con, &twin) {
            assert_eq!(
                inspect(&mut con, &mixed)[..4],
                inspect(&mut con, &twin)[..4]
            );
        } else {
            assert!(!exists(&mut con, &mixed));
        }
    }
}

fn as_strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// CHARON.RATE's reply with its times in whole seconds, rounded up.
fn in_seconds(reply: [i64; 5]) -> [i64; 5] {
    let up = |ms: i64| if ms < 0 { ms } else { (ms + 999) / 1000 };
    [reply[0], reply[1], reply[2], up(reply[3]), up(reply[4])]
}

// ---------------------------------------------------------------------------
// Converting redis-cell's keys.

#[test]
fn redis_cell_keys_are_converted_on_any_call() {
    let server = start(&[]);
    let mut con = server.con();
    let params = ["15", "30", "60"];

    // Owing 10 s (5 tokens at 2 s each), with redis-cell's TTL.
    let now = now_ns(&mut con);
    set_cell(&mut con, "ahead", now + 10_000_000_000, Some(10_000));
    assert_close(
        throttle(&mut con, "ahead", &params),
        [0, 16, 10, -1, 12],
        "ahead",
    );
    assert_eq!(key_type(&mut con, "ahead"), "charon-tb");
    let ttl = pttl(&mut con, "ahead");
    assert!((10_500..=12_000).contains(&ttl), "PTTL {ttl}");
    assert_eq!(inspect(&mut con, "ahead")[..4], [16, 30, 60_000, 10]);

    // Quantity 0 converts too, and takes nothing.
    let now = now_ns(&mut con);
    set_cell(&mut con, "peeked", now + 10_000_000_000, Some(10_000));
    assert_close(
        throttle(&mut con, "peeked", &["15", "30", "60", "0"]),
        [0, 16, 11, -1, 10],
        "peeked",
    );
    assert_eq!(key_type(&mut con, "peeked"), "charon-tb");
    let ttl = pttl(&mut con, "peeked");
    assert!((8_500..=10_000).contains(&ttl), "PTTL {ttl}");

    // A limited call converts too: owing the whole bucket (32 s).
    let now = now_ns(&mut con);
    set_cell(&mut con, "drained", now + 32_000_000_000, Some(32_000));
    assert_close(
        throttle(&mut con, "drained", &params),
        [1, 16, 0, 2, 32],
        "drained",
    );
    assert_eq!(key_type(&mut con, "drained"), "charon-tb");
    let ttl = pttl(&mut con, "drained");
    assert!((30_500..=32_000).contains(&ttl), "PTTL {ttl}");

    // So does a quantity above the bucket.
    let now = now_ns(&mut con);
    set_cell(&mut con, "huge", now + 10_000_000_000, None);
    assert_close(
        throttle(&mut con, "huge", &["15", "30", "60", "17"]),
        [1, 16, 11, -1, 10],
        "huge",
    );
    assert_eq!(key_type(&mut con, "huge"), "charon-tb");

    // A TAT in the past, or now: a full bucket, which is no key.
    for (key, tat) in [
        ("past", now_ns(&mut con) - 3_600_000_000_000),
        ("now", now_ns(&mut con)),
        ("zero", 0),
    ] {
        set_cell(&mut con, key, tat, None);
        assert_eq!(
            throttle(&mut con, key, &["15", "30", "60", "0"]),
            [0, 16, 16, -1, 0],
            "{key}"
        );
        assert!(!exists(&mut con, key), "{key}: a full bucket left a key");
        set_cell(&mut con, key, tat, Some(60_000));
        assert_eq!(
            throttle(&mut con, key, &params),
            [0, 16, 15, -1, 2],
            "{key}"
        );
        assert_eq!(key_type(&mut con, key), "charon-tb", "{key}");
        assert!(pttl(&mut con, key) <= 2_000, "{key}: redis-cell's TTL kept");
    }

    // Bad arguments leave redis-cell's key as it was.
    let tat = now_ns(&mut con) + 10_000_000_000;
    set_cell(&mut con, "kept", tat, Some(10_000));
    let error = throttle_error(&mut con, &[b"kept", b"-1", b"30", b"60"]);
    assert!(error.starts_with("ERR max_burst"), "{error}");
    assert_eq!(get(&mut con, "kept"), Some(tat.to_string().into_bytes()));
    assert!(pttl(&mut con, "kept") > 9_000);

    let info = server.info("charon");
    assert_eq!(info_u64(&info, "charon_buckets"), 7, "{info}");
}

#[test]
fn other_strings_and_types_are_wrongtype_and_untouched() {
    let server = start(&[]);
    let mut con = server.con();
    let strings: &[&[u8]] = &[
        b"abc",
        b"",
        b"-5",
        b"-1700000000000000000",
        b" 1700000000000000000",
        b"1700000000000000000 ",
        b"01700000000000000000",
        b"+1700000000000000000",
        b"1700000000000000000.0",
        b"1.7e18",
        b"0x10",
        b"18446744073709551616",
        b"100000000000000000000",
        b"17000000000\x0000000000",
        b"\xff\xfe",
    ];
    for (i, value) in strings.iter().enumerate() {
        let key = format!("s{i}");
        let _: () = redis::cmd("SET")
            .arg(&key)
            .arg(*value)
            .arg("PX")
            .arg(60_000)
            .query(&mut con)
            .unwrap();
        let before = digest(&mut con, &key);
        // WRONGTYPE comes before any argument error.
        let good: [&[u8]; 3] = [b"15", b"30", b"60"];
        let bad: [&[u8]; 3] = [b"-1", b"x", b"0"];
        for args in [good, bad] {
            let mut argv: Vec<&[u8]> = vec![key.as_bytes()];
            argv.extend_from_slice(&args);
            let error = throttle_error(&mut con, &argv);
            assert!(error.starts_with("WRONGTYPE"), "{value:?}: {error}");
        }
        assert_eq!(get(&mut con, &key).as_deref(), Some(*value), "{value:?}");
        assert_eq!(digest(&mut con, &key), before, "{value:?}");
        assert_eq!(key_type(&mut con, &key), "string");
        let ttl = pttl(&mut con, &key);
        assert!((50_000..=60_000).contains(&ttl), "{value:?}: PTTL {ttl}");
    }
    let _: i64 = redis::cmd("RPUSH")
        .arg("list")
        .arg("x")
        .query(&mut con)
        .unwrap();
    let _: i64 = redis::cmd("HSET")
        .arg("hash")
        .arg("f")
        .arg("1")
        .query(&mut con)
        .unwrap();
    for key in ["list", "hash"] {
        let error = throttle_error(&mut con, &[key.as_bytes(), b"1", b"1", b"1"]);
        assert!(error.starts_with("WRONGTYPE"), "{key}: {error}");
    }
    let mut server = server;
    assert!(server.is_alive());
}

/// After conversions, a replica holds the same buckets (it received `DEL`
/// and the bucket's state, never CL.THROTTLE).
#[test]
fn conversions_replicate_as_state() {
    let primary = start(&[
        "repl-ping-replica-period 3600",
        "repl-diskless-sync-delay 0",
    ]);
    let replica = start_replica(primary.port, &[]);
    let mut con = primary.con();
    let converted = convert_a_few(&mut con);
    assert_eq!(wait_acks(&mut con, 1), 1, "replica did not acknowledge");
    wait_replicated(&primary, &[&replica]);
    let mut on_replica = replica.con();
    for key in &converted {
        assert_eq!(
            key_type(&mut on_replica, key),
            key_type(&mut con, key),
            "{key}"
        );
        let (a, b) = (pttl(&mut con, key), pttl(&mut on_replica, key));
        assert!((a - b).abs() < 1000, "{key}: PTTL {a} vs {b}");
    }
    let all = keys(&mut con);
    assert_digest_equal(&primary, &replica, &all, "replica");
    let stats = command_stats(&replica);
    assert!(stats.contains("cmdstat_charon.setstate:"), "{stats}");
    assert!(stats.contains("cmdstat_del:"), "{stats}");
    assert!(!stats.contains("cmdstat_cl.throttle:"), "{stats}");
    let mut replica = replica;
    assert!(replica.is_alive(), "the replica died");
}

/// After conversions, the AOF (as written, and rewritten) rebuilds the same
/// buckets.
#[test]
fn conversions_persist_in_the_aof() {
    let mut server = start(&["appendonly yes", "appendfsync always"]);
    let mut con = server.con();
    convert_a_few(&mut con);
    let keys = keys(&mut con);
    let digests =
        |con: &mut Connection| -> Vec<String> { keys.iter().map(|key| digest(con, key)).collect() };
    let before = digests(&mut con);
    let aof = aof_text(&server);
    assert!(aof.contains("CHARON.SETSTATE"), "no state in the AOF");
    assert!(
        !aof.to_lowercase().contains("cl.throttle"),
        "a decision in the AOF"
    );
    server.shutdown(false);
    server.restart();
    let mut con = server.con();
    assert_eq!(digests(&mut con), before, "after a restart from the AOF");
    let _: () = redis::cmd("BGREWRITEAOF").query(&mut con).unwrap();
    wait_until("the AOF rewrite", || {
        info_field(&server.info("persistence"), "aof_rewrite_in_progress").as_deref() == Some("0")
    });
    server.shutdown(false);
    server.restart();
    let mut con = server.con();
    assert_eq!(digests(&mut con), before, "after a rewrite and a restart");
}

/// redis-cell keys of every kind, converted by calls of every kind; answers
/// the keys.
fn convert_a_few(con: &mut Connection) -> Vec<String> {
    let now = now_ns(con);
    let cases: [(&str, u64, &str); 6] = [
        ("ahead", now + 10_000_000_000, "1"),
        ("peeked", now + 10_000_000_000, "0"),
        ("drained", now + 32_000_000_000, "1"),
        ("huge", now + 20_000_000_000, "17"),
        ("past", now - 60_000_000_000, "1"),
        ("full", now - 60_000_000_000, "0"),
    ];
    for (key, tat, quantity) in cases {
        set_cell(con, key, tat, Some(40_000));
        throttle(con, key, &["15", "30", "60", quantity]);
    }
    let _: () = redis::cmd("SET")
        .arg("other")
        .arg("abc")
        .query(con)
        .unwrap();
    assert!(!exists(con, "full"));
    cases.iter().map(|(key, _, _)| key.to_string()).collect()
}

// ---------------------------------------------------------------------------
// Registration and the module arguments.

#[test]
fn command_info_and_keys() {
    let server = start(&[]);
    let mut con = server.con();
    let keys: Vec<String> = redis::cmd("COMMAND")
        .arg("GETKEYS")
        .arg("CL.THROTTLE")
        .arg("user:1")
        .arg("15")
        .arg("30")
        .arg("60")
        .query(&mut con)
        .unwrap();
    assert_eq!(keys, ["user:1"]);
    let info: Value = redis::cmd("COMMAND")
        .arg("INFO")
        .arg("CL.THROTTLE")
        .query(&mut con)
        .unwrap();
    let text = format!("{info:?}").to_lowercase();
    for expected in ["cl.throttle", "write", "denyoom"] {
        assert!(
            text.contains(expected),
            "COMMAND INFO lacks {expected}: {text}"
        );
    }
    assert!(!text.contains("fast"), "{text}");
    if !server.kind.is_7_or_newer() {
        return skip("module command docs need Redis 7.0");
    }
    let docs: Value = redis::cmd("COMMAND")
        .arg("DOCS")
        .arg("CL.THROTTLE")
        .query(&mut con)
        .unwrap();
    let text = format!("{docs:?}").to_lowercase();
    for expected in [
        "max_burst",
        "count_per_period",
        "period",
        "quantity",
        "optional",
        "redis-cell",
    ] {
        assert!(
            text.contains(expected),
            "COMMAND DOCS lacks {expected}: {text}"
        );
    }
    if server.kind.is_valkey() {
        let mut charon: Vec<String> = redis::cmd("ACL")
            .arg("CAT")
            .arg("charon")
            .query(&mut con)
            .unwrap();
        charon
            .iter_mut()
            .for_each(|name| *name = name.to_lowercase());
        assert!(charon.contains(&"cl.throttle".to_string()), "{charon:?}");
        let write: Vec<String> = redis::cmd("ACL")
            .arg("CAT")
            .arg("write")
            .query(&mut con)
            .unwrap();
        assert!(
            write
                .iter()
                .any(|name| name.eq_ignore_ascii_case("cl.throttle")),
            "not in @write"
        );
    }
}

#[test]
fn cl_throttle_is_registered_only_when_asked() {
    let unknown = |con: &mut Connection| {
        let error = throttle_error(con, &[b"k", b"1", b"1", b"1"]);
        assert!(error.starts_with("ERR unknown command"), "{error}");
    };
    // The harness loads the module without arguments.
    let server = Server::start();
    unknown(&mut server.con());
    let bare = Bare::start(&loadmodule(&["clthrottle", "NO"])).expect("CLTHROTTLE no loads");
    unknown(&mut bare.con());
    let bare = Bare::start(&loadmodule(&["ClThrottle", "Yes"])).expect("CLTHROTTLE Yes loads");
    let mut con = bare.con();
    assert_eq!(throttle(&mut con, "k", &["1", "1", "1"]), [0, 2, 1, -1, 1]);
    assert!(
        bare.log().contains("CL.THROTTLE registered"),
        "{}",
        bare.log()
    );
}

/// The example in the repository's `redis.conf`, uncommented in place of
/// its `loadmodule` line, loads `CL.THROTTLE`.
#[test]
fn the_configuration_example_works() {
    let repository = Path::new(env!("CARGO_MANIFEST_DIR")).join("redis.conf");
    let text = std::fs::read_to_string(repository).expect("redis.conf");
    let plain = "loadmodule ./target/release/libcharon.so\n";
    let example = "# loadmodule ./target/release/libcharon.so CLTHROTTLE yes\n";
    assert!(text.contains(plain) && text.contains(example), "{text}");
    let config = scratch("example.conf");
    std::fs::write(
        &config,
        text.replace(plain, "").replace(example, &example[2..]),
    )
    .unwrap();
    let server = Server::start_from_config(&config);
    assert_eq!(
        throttle(&mut server.con(), "user:1", &["15", "30", "60"]),
        [0, 16, 15, -1, 2]
    );
    drop(server);
    let _ = std::fs::remove_file(config);
}

#[test]
fn bad_module_arguments_refuse_the_load_with_one_line() {
    for (args, line) in [
        (&["BOGUS", "yes"][..], "unknown module argument \"BOGUS\""),
        (
            &["CLTHROTTLE"][..],
            "module argument CLTHROTTLE needs a value",
        ),
        (
            &["CLTHROTTLE", "maybe"][..],
            "CLTHROTTLE must be yes or no, not \"maybe\"",
        ),
        (
            &["CLTHROTTLE", "yes", "CLTHROTTLE", "no"][..],
            "CLTHROTTLE is given twice",
        ),
    ] {
        // At startup: the server does not start.
        let log = match Bare::start(&loadmodule(args)) {
            Ok(_) => panic!("{args:?}: the server started"),
            Err(log) => log,
        };
        let lines: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("charon: refusing"))
            .collect();
        assert_eq!(lines.len(), 1, "{args:?}: {log}");
        assert!(lines[0].contains(line), "{args:?}: {log}");
    }
    // At runtime: MODULE LOAD fails, the server runs on, and a good load
    // then works.
    let mut bare = Bare::start(&[]).expect("a server without the module");
    let mut con = bare.con();
    let error = redis::cmd("MODULE")
        .arg("LOAD")
        .arg(module())
        .arg("CLTHROTTLE")
        .arg("perhaps")
        .query::<()>(&mut con)
        .expect_err("MODULE LOAD with a bad argument");
    assert!(
        format!("{error}").contains("Error loading the extension"),
        "{error}"
    );
    assert!(bare.is_alive());
    assert!(
        bare.log()
            .contains("CLTHROTTLE must be yes or no, not \"perhaps\""),
        "{}",
        bare.log()
    );
    let _: () = redis::cmd("MODULE")
        .arg("LOAD")
        .arg(module())
        .arg("CLTHROTTLE")
        .arg("yes")
        .query(&mut con)
        .expect("MODULE LOAD");
    assert_eq!(throttle(&mut con, "k", &["1", "1", "1"]), [0, 2, 1, -1, 1]);
}

/// A module of a few lines that registers its own `CL.THROTTLE`, as
/// redis-cell does (answering 42), written against the module ABI without
/// its header: the API table comes from the context, as the header's
/// `RedisModule_Init` gets it.
const OTHER_MODULE: &str = r#"
typedef struct RedisModuleCtx RedisModuleCtx;
typedef int (*GetApi)(const char *, void *);
typedef int (*Handler)(RedisModuleCtx *, void **, int);
static int (*SetModuleAttribs)(RedisModuleCtx *, const char *, int, int);
static int (*CreateCommand)(RedisModuleCtx *, const char *, Handler, const char *, int, int, int);
static int (*ReplyWithLongLong)(RedisModuleCtx *, long long);
static int throttle(RedisModuleCtx *ctx, void **argv, int argc) {
    (void)argv; (void)argc;
    return ReplyWithLongLong(ctx, 42);
}
int RedisModule_OnLoad(RedisModuleCtx *ctx, void **argv, int argc) {
    (void)argv; (void)argc;
    GetApi get = (GetApi)((void **)ctx)[0];
    get("RedisModule_SetModuleAttribs", (void *)&SetModuleAttribs);
    get("RedisModule_CreateCommand", (void *)&CreateCommand);
    get("RedisModule_ReplyWithLongLong", (void *)&ReplyWithLongLong);
    SetModuleAttribs(ctx, "othercell", 1, 1);
    return CreateCommand(ctx, "cl.throttle", throttle, "write", 1, 1, 1);
}
"#;

/// Builds `OTHER_MODULE` into `dir`; `None` where there is no C compiler.
fn other_module(dir: &Path) -> Option<PathBuf> {
    std::fs::create_dir_all(dir).unwrap();
    let source = dir.join("othercell.c");
    let library = dir.join("othercell.so");
    std::fs::write(&source, OTHER_MODULE).unwrap();
    let built = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
        .args(["-shared", "-fPIC", "-O1", "-o"])
        .arg(&library)
        .arg(&source)
        .status();
    match built {
        Ok(status) if status.success() => Some(library),
        _ => None,
    }
}

#[test]
fn a_cl_throttle_of_another_module_refuses_the_load_cleanly() {
    let dir = scratch("othercell");
    let Some(other) = other_module(&dir) else {
        let _ = std::fs::remove_dir_all(&dir);
        return skip("no C compiler to build a module that registers CL.THROTTLE");
    };
    let other = other.display().to_string();
    let expected = "cannot register command CL.THROTTLE";

    // At startup, after the other module: the server does not start.
    let mut args = vec!["--loadmodule".to_string(), other.clone()];
    args.extend(loadmodule(&["CLTHROTTLE", "yes"]));
    let log = match Bare::start(&args) {
        Ok(_) => panic!("the server started with two CL.THROTTLEs"),
        Err(log) => log,
    };
    let line = log.lines().find(|l| l.contains(expected));
    assert!(line.is_some_and(|l| l.contains("another module")), "{log}");

    // At runtime: MODULE LOAD fails, the other module keeps its command,
    // and Charon loads without CL.THROTTLE beside it.
    let mut bare = Bare::start(&["--loadmodule".to_string(), other]).expect("the other module");
    let mut con = bare.con();
    let refused = redis::cmd("MODULE")
        .arg("LOAD")
        .arg(module())
        .arg("CLTHROTTLE")
        .arg("yes")
        .query::<()>(&mut con);
    assert!(refused.is_err(), "MODULE LOAD succeeded");
    assert!(bare.is_alive(), "the server died");
    assert!(bare.log().contains(expected), "{}", bare.log());
    let answer: i64 = redis::cmd("CL.THROTTLE")
        .arg("k")
        .arg(1)
        .arg(1)
        .arg(1)
        .query(&mut con)
        .unwrap();
    assert_eq!(answer, 42, "the other module's command changed");
    let _: () = redis::cmd("MODULE")
        .arg("LOAD")
        .arg(module())
        .query(&mut con)
        .expect("Charon without CL.THROTTLE beside it");
    assert_eq!(rate(&mut con, "r", &["2", "1", "1h"])[..3], [0, 2, 1]);
    drop(bare);
    let _ = std::fs::remove_dir_all(&dir);
}
