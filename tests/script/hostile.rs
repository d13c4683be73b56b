//! Hostile calls to the library: random and near-valid argument vectors,
//! wrong numbers of keys and arguments, huge numbers, binary bytes, keys of
//! other types and hashes that are almost buckets. Every reply is a valid
//! reply or one of the documented errors (so never a Lua runtime error, a
//! script name or a stack trace); a call answered with an error changes
//! nothing; a bucket is never half-written; a non-bucket is never touched.
//! The module's errors for the same arguments are the same.

use crate::library::*;
use crate::support::*;
use redis::{Connection, Value};

/// Every error the library answers (the arity errors name the function).
const ERRORS: [&str; 18] = [
    "WRONGTYPE Operation against a key holding the wrong kind of value",
    "ERR capacity must be a positive integer",
    "ERR refill must be a positive integer",
    "ERR period must be a positive integer of milliseconds, optionally with a unit: ms, s, m, h or d",
    "ERR period is out of range",
    "ERR cost must be a non-negative integer",
    "ERR tokens must be a positive integer",
    "ERR syntax error",
    "ERR too many limits: at most 16 bands",
    "ERR maxwait must be a non-negative integer",
    "ERR maxwait is out of range",
    "ERR MAXWAIT is required",
    "ERR limit is out of range: refilling its capacity would take more than 2^62 ms",
    "ERR limit is out of range for the script: capacity times period in ms must be at most 2^52",
    "ERR reservation is out of range for the script: a band would be more than 2^52 units (1/period_ms of a token) below full",
    "ERR unknown function: the first argument must be charon_rate, charon_peek, charon_refund or charon_reserve",
    "ERR wrong number of arguments for 'charon_",
    // Where the server refuses a write (see `refused_writes_are_clean`).
    "OOM command not allowed",
];

/// The errors only the library gives: its exact range is narrower.
const SCRIPT_RANGE: [&str; 2] = [
    "ERR limit is out of range for the script",
    "ERR reservation is out of range for the script",
];

fn documented(error: &str) -> bool {
    ERRORS.iter().any(|known| {
        if known.ends_with("'charon_") {
            error.starts_with(known)
                && ["rate", "peek", "refund", "reserve"]
                    .iter()
                    .any(|f| error == format!("{known}{f}' command"))
        } else if known.starts_with("OOM") {
            error.starts_with(known)
        } else {
            error == *known
        }
    })
}

/// A valid reply of `op` (the five integers in range, a count, or nil).
fn valid(op: &str, reply: &Reply) -> bool {
    match reply {
        Reply::Verdict([limited, limit, remaining, retry, reset]) => {
            op != "REFUND"
                && (0..=1).contains(limited)
                && *limit >= 1
                && *remaining >= 0
                && *remaining <= *limit
                && *retry >= -1
                && *reset >= 0
        }
        Reply::Integer(n) => op == "REFUND" && *n >= 0,
        Reply::Nil => op == "PEEK" || op == "REFUND",
        _ => false,
    }
}

const WORDS: [&str; 58] = [
    "0",
    "1",
    "2",
    "3",
    "10",
    "1000",
    "-1",
    "01",
    "+1",
    "1.5",
    "1e3",
    " 1",
    "1 ",
    "0x10",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "4503599627370496",
    "4503599627370497",
    "9007199254740993",
    "4611686018427387904",
    "4611686018427387905",
    "18446744073709551616",
    "99999999999999999999999",
    "1s",
    "1500ms",
    "5M",
    "1h",
    "7d",
    "3650d",
    "0s",
    "-1s",
    "1w",
    "1sec",
    "s",
    "ms",
    "1S",
    "106751991167301d",
    "9223372036854775807s",
    "4503599627370496ms",
    "LIMIT",
    "limit",
    "LiMiT",
    "MAXWAIT",
    "maxwait",
    "TIMEOUT",
    "LIMITS",
    "MAX",
    "",
    "-",
    "--1",
    "%s%n",
    "nil",
    "inf",
    "nan",
    "\u{0}",
    "1\r\n2",
    "\u{ff}",
];

fn word(rng: &mut Rng) -> Vec<u8> {
    match rng.below(12) {
        0 => {
            let len = rng.index(12);
            rng.bytes(len)
        }
        1 => rng.next().to_string().into_bytes(),
        2 => (rng.next() as i64).to_string().into_bytes(),
        3 => {
            let unit = *rng.pick(&["", "ms", "s", "m", "h", "d", "D"]);
            let bits = rng.below(63);
            format!("{}{unit}", rng.below(1 << bits)).into_bytes()
        }
        4 if rng.chance(5) => vec![b'1'; 5000],
        _ => rng.pick(&WORDS).as_bytes().to_vec(),
    }
}

/// An argument vector: random words, or a valid call with a part spoiled.
fn vector(rng: &mut Rng, op: &str) -> Vec<Vec<u8>> {
    if rng.chance(40) {
        let n = rng.index(12);
        return (0..n).map(|_| word(rng)).collect();
    }
    let mut args: Vec<Vec<u8>> = Vec::new();
    match op {
        "PEEK" => args.push(b"1".to_vec()),
        "REFUND" => args.push(b"2".to_vec()),
        _ => {
            args.extend([b"10".to_vec(), b"1".to_vec(), b"1h".to_vec()]);
            if rng.chance(50) {
                args.push(b"2".to_vec());
            }
            for _ in 0..rng.below(4) {
                args.extend([
                    b"LIMIT".to_vec(),
                    b"5".to_vec(),
                    b"2".to_vec(),
                    b"1d".to_vec(),
                ]);
            }
            if op == "RESERVE" || rng.chance(10) {
                let at = if args.len() > 4 {
                    4 + 4 * rng.index((args.len() - 4) / 4 + 1)
                } else {
                    args.len()
                };
                args.insert(at.min(args.len()), b"MAXWAIT".to_vec());
                args.insert((at + 1).min(args.len()), b"1000".to_vec());
            }
        }
    }
    for _ in 0..1 + rng.below(2) {
        match rng.below(4) {
            0 if !args.is_empty() => {
                let i = rng.index(args.len());
                args[i] = word(rng);
            }
            1 => {
                let i = rng.index(args.len() + 1);
                args.insert(i, word(rng));
            }
            2 if !args.is_empty() => {
                args.remove(rng.index(args.len()));
            }
            _ => {}
        }
    }
    args
}

/// A valid bucket's fields, then ways to spoil them: each spoiled hash is
/// no bucket.
fn spoiled_hashes() -> Vec<(&'static str, Vec<(&'static str, &'static str)>)> {
    let base = vec![
        ("t", "1700000000000"),
        ("n", "1"),
        ("c1", "10"),
        ("r1", "1"),
        ("p1", "3600000"),
        ("u1", "18000000"),
    ];
    let with = |field: &'static str, value: &'static str| {
        let mut fields = base.clone();
        match fields.iter_mut().find(|(f, _)| *f == field) {
            Some(entry) => entry.1 = value,
            None => fields.push((field, value)),
        }
        fields
    };
    let without = |field: &'static str| {
        base.iter()
            .filter(|(f, _)| *f != field)
            .cloned()
            .collect::<Vec<_>>()
    };
    vec![
        ("other fields", vec![("a", "b")]),
        ("only t", vec![("t", "1")]),
        ("no t", without("t")),
        ("no n", without("n")),
        ("no u1", without("u1")),
        ("no c1", without("c1")),
        ("t not a number", with("t", "x")),
        ("t negative", with("t", "-1")),
        ("t with a space", with("t", " 1")),
        ("t beyond 2^52", with("t", "4503599627370497")),
        ("n zero", with("n", "0")),
        ("n 17", with("n", "17")),
        ("n 01", with("n", "01")),
        ("n 2, one band", with("n", "2")),
        ("c1 leading zero", with("c1", "010")),
        ("c1 zero", with("c1", "0")),
        ("r1 zero", with("r1", "0")),
        ("p1 zero", with("p1", "0")),
        ("p1 with a unit", with("p1", "1h")),
        ("u1 above full", with("u1", "36000001")),
        ("u1 fractional", with("u1", "1.5")),
        ("u1 exponent", with("u1", "1e3")),
        ("u1 minus zero", with("u1", "-0")),
        ("u1 too deep", with("u1", "-4503599591370497")),
        ("c1 * p1 beyond 2^52", with("c1", "1251000000")),
        ("u1 binary", with("u1", "1\u{0}")),
    ]
}

struct Checker<'a> {
    con: &'a mut Connection,
    kind: ServerKind,
    backends: Vec<Backend>,
}

impl Checker<'_> {
    /// The key's value (DUMP) and absolute expiry (ms; -1 none, -2 no key).
    fn state(&mut self, key: &[u8]) -> (Value, i64) {
        // One transaction: a short-lived bucket may expire between reads.
        if self.kind.is_7_or_newer() {
            redis::pipe()
                .atomic()
                .cmd("DUMP")
                .arg(key)
                .cmd("PEXPIRETIME")
                .arg(key)
                .query(self.con)
                .expect("DUMP, PEXPIRETIME")
        } else {
            let (dump, ms, (seconds, micros)): (Value, i64, (i64, i64)) = redis::pipe()
                .atomic()
                .cmd("DUMP")
                .arg(key)
                .cmd("PTTL")
                .arg(key)
                .cmd("TIME")
                .query(self.con)
                .expect("DUMP, PTTL, TIME");
            (
                dump,
                if ms < 0 {
                    ms
                } else {
                    seconds * 1000 + micros / 1000 + ms
                },
            )
        }
    }

    /// Whether the key is as it was (or expired meanwhile, as it was set to).
    fn unchanged(&mut self, key: &[u8], before: &(Value, i64)) -> bool {
        let after = self.state(key);
        // PTTL-based expiries (6.2) move by the clock's millisecond.
        let slack = if self.kind.is_7_or_newer() { 0 } else { 2 };
        if after.0 == before.0 && (after.1 - before.1).abs() <= slack {
            return true;
        }
        let now = now_ms(self.con) as i64;
        let expired = after.0 == Value::Nil && before.1 >= 0 && before.1 <= now + slack;
        if !expired {
            eprintln!(
                "{}: before {before:?}, after {after:?}, now {now}",
                String::from_utf8_lossy(key)
            );
        }
        expired
    }

    /// One call; checks the reply and what it did to the key. `bucket`:
    /// whether the key may hold a bucket (else it must stay untouched).
    fn check(
        &mut self,
        b: usize,
        op: &str,
        keys: &[&[u8]],
        args: &[Vec<u8>],
        bucket: bool,
        what: &str,
    ) -> Reply {
        let backend = self.backends[b].clone();
        let key = keys.first().copied().unwrap_or(b"");
        let before = self.state(key);
        let argv: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
        let reply = backend.call_raw(self.con, op, keys, &argv);
        let server = self.kind.name.clone();
        let shown = || {
            format!(
                "{} {op} {} keys {} [{what}] on {server}",
                backend.name(),
                keys.len(),
                show(args)
            )
        };
        match &reply {
            Reply::Error(error) => {
                assert!(
                    documented(error),
                    "{}: undocumented error {error:?}",
                    shown()
                );
                assert!(
                    self.unchanged(key, &before),
                    "{}: an error changed the key",
                    shown()
                );
            }
            other => {
                assert!(valid(op, other), "{}: invalid reply {other:?}", shown());
                assert!(
                    bucket,
                    "{}: answered {other:?} on a key that is no bucket",
                    shown()
                );
            }
        }
        if bucket {
            let name = String::from_utf8_lossy(key).into_owned();
            if std::str::from_utf8(key).is_ok() {
                check_bucket(self.con, &self.kind, &name);
            }
        } else {
            assert!(
                self.unchanged(key, &before),
                "{}: a key that is no bucket changed",
                shown()
            );
        }
        reply
    }
}

#[test]
fn hostile_arguments_keys_and_hashes() {
    let server = PlainServer::start(&[]);
    let kind = ServerKind::from_env();
    let mut con = server.con();
    let backends = load_library(&mut con, &kind);
    let mut checker = Checker {
        con: &mut con,
        kind,
        backends,
    };
    let seed =
        std::env::var("CHARON_SCRIPT_SEED").map_or(7, |s| s.parse().expect("an integer seed"));
    let mut rng = Rng::new(seed);
    let ops = ["RATE", "PEEK", "REFUND", "RESERVE"];

    // Keys of other types, and hashes that are almost buckets.
    let _: () = redis::cmd("SET")
        .arg("str")
        .arg("x")
        .query(checker.con)
        .unwrap();
    let _: () = redis::cmd("RPUSH")
        .arg("list")
        .arg("a")
        .query(checker.con)
        .unwrap();
    let _: () = redis::cmd("ZADD")
        .arg("zset")
        .arg(1)
        .arg("a")
        .query(checker.con)
        .unwrap();
    let _: () = redis::cmd("SADD")
        .arg("set")
        .arg("a")
        .query(checker.con)
        .unwrap();
    let _: () = redis::cmd("XADD")
        .arg("stream")
        .arg("*")
        .arg("a")
        .arg("b")
        .query(checker.con)
        .unwrap();
    let mut others: Vec<String> = ["str", "list", "zset", "set", "stream"]
        .map(String::from)
        .to_vec();
    for (name, fields) in spoiled_hashes() {
        let key = format!("spoiled:{name}");
        let mut cmd = redis::cmd("HSET");
        cmd.arg(&key);
        for (f, v) in &fields {
            cmd.arg(*f).arg(*v);
        }
        let _: () = cmd.query(checker.con).unwrap();
        others.push(key);
    }
    for key in &others {
        for op in ops {
            for b in 0..checker.backends.len() {
                let args: Vec<Vec<u8>> = match op {
                    "PEEK" => vec![],
                    "REFUND" => vec![b"1".to_vec()],
                    "RATE" => vec![b"10".to_vec(), b"1".to_vec(), b"1h".to_vec()],
                    _ => ["10", "1", "1h", "MAXWAIT", "0"]
                        .map(|s| s.as_bytes().to_vec())
                        .to_vec(),
                };
                let reply = checker.check(b, op, &[key.as_bytes()], &args, false, key);
                assert_eq!(
                    reply,
                    Reply::Error(
                        "WRONGTYPE Operation against a key holding the wrong kind of value".into()
                    ),
                    "{op} on {key}"
                );
            }
        }
    }

    // Random and near-valid vectors on every kind of key.
    let mut buckets = 0;
    for n in 0..6000 {
        let op = *rng.pick(&ops);
        let b = rng.index(checker.backends.len());
        let args = vector(&mut rng, op);
        let len = 1 + rng.index(8);
        let random_key = rng.bytes(len);
        let (key, bucket): (Vec<u8>, bool) = match rng.below(10) {
            0..=5 => (format!("bucket:{}", rng.below(3)).into_bytes(), true),
            6 => (b"missing".to_vec(), true),
            7 => (random_key, true),
            _ => (rng.pick(&others).as_bytes().to_vec(), false),
        };
        let reply = match rng.below(20) {
            0 => checker.check(b, op, &[], &args, true, &format!("#{n}, no key")),
            1 => checker.check(
                b,
                op,
                &[key.as_slice(), b"other"],
                &args,
                bucket,
                &format!("#{n}, two keys"),
            ),
            _ => checker.check(b, op, &[key.as_slice()], &args, bucket, &format!("#{n}")),
        };
        if matches!(reply, Reply::Verdict(v) if v[0] == 0) {
            buckets += 1;
        }
        let _: () = redis::cmd("DEL").arg("missing").query(checker.con).unwrap();
    }
    assert!(buckets > 100, "too few vectors were valid calls: {buckets}");

    // Many LIMIT groups, and very many arguments.
    let mut args: Vec<Vec<u8>> = ["1", "1", "1s"].map(|s| s.as_bytes().to_vec()).to_vec();
    for _ in 0..2000 {
        args.extend(["LIMIT", "1", "1", "1s"].map(|s| s.as_bytes().to_vec()));
    }
    let reply = checker.check(0, "RATE", &[b"many"], &args, true, "2001 bands");
    assert_eq!(
        reply,
        Reply::Error("ERR too many limits: at most 16 bands".into())
    );
    let args: Vec<Vec<u8>> = (0..20000).map(|i| i.to_string().into_bytes()).collect();
    checker.check(0, "RESERVE", &[b"many"], &args, true, "20000 arguments");
}

/// Where the server refuses the write (memory full, on Redis 6.2 where a
/// script meets it at its first write), the reply is the server's error,
/// without a script's stack, and nothing is written.
#[test]
fn refused_writes_are_clean() {
    let server = PlainServer::start(&[]);
    let kind = ServerKind::from_env();
    let mut con = server.con();
    let backends = load_library(&mut con, &kind);
    for backend in &backends {
        let _: () = redis::cmd("FLUSHALL").query(&mut con).unwrap();
        backend.call(&mut con, "RATE", "k", &["10", "1", "1h", "2"]);
        let before = check_bucket(&mut con, &kind, "k");
        let _: () = redis::cmd("CONFIG")
            .arg("SET")
            .arg("maxmemory")
            .arg(1)
            .query(&mut con)
            .unwrap();
        for (op, args) in [
            ("RATE", vec!["10", "1", "1h"]),
            ("REFUND", vec!["1"]),
            ("RESERVE", vec!["10", "1", "1h", "MAXWAIT", "0"]),
        ] {
            for key in ["k", "fresh"] {
                match backend.call(&mut con, op, key, &args) {
                    // Nothing to give back to: nothing to write.
                    Reply::Nil if op == "REFUND" && key == "fresh" => {}
                    Reply::Error(error) => assert!(
                        error.starts_with("OOM command not allowed") && documented(&error),
                        "{} {op} {key}: {error}",
                        backend.name()
                    ),
                    other => panic!("{} {op} {key} with memory full: {other:?}", backend.name()),
                }
            }
        }
        // Reading still works.
        assert_eq!(
            backend.call(&mut con, "PEEK", "k", &["0"]).verdict()[..3],
            [0, 10, 8]
        );
        let _: () = redis::cmd("CONFIG")
            .arg("SET")
            .arg("maxmemory")
            .arg(0)
            .query(&mut con)
            .unwrap();
        assert_eq!(check_bucket(&mut con, &kind, "k"), before);
        assert_eq!(dbsize(&mut con), 1);
    }
}

/// The same argument vectors to the module and to the library, on keys that
/// do not exist (so the replies do not depend on the clock): the same
/// errors (but for the library's narrower range) and the same replies.
fn errors_agree(ops: &[&str], rounds: usize, seed: u64, plain_only: bool) {
    let server = Server::start();
    let kind = ServerKind::from_env();
    let mut con = server.con();
    let library = load_library(&mut con, &kind);
    let mut rng = Rng::new(seed);
    let mut disagreements = Vec::new();
    for n in 0..rounds {
        let op = *rng.pick(ops);
        let mut args = vector(&mut rng, op);
        if plain_only {
            // Wave 1's grammar only: no keywords, at most a cost.
            args.retain(|a| {
                let upper = String::from_utf8_lossy(a).to_uppercase();
                !["LIMIT", "MAXWAIT", "TIMEOUT"].contains(&upper.as_str())
            });
            args.truncate(if op == "RATE" { 4 } else { 1 });
        }
        let argv: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
        let module = Backend::Module.call_raw(&mut con, op, &[b"m"], &argv);
        if let Reply::Unreadable(_) = module {
            con = server.con();
        }
        let backend = &library[n % library.len()];
        let lib = backend.call_raw(&mut con, op, &[b"l"], &argv);
        let script_range =
            matches!(&lib, Reply::Error(e) if SCRIPT_RANGE.iter().any(|r| e.starts_with(r)));
        if !script_range && !crate::differential::agree(&module, &lib, 0) {
            disagreements.push(format!(
                "{op} {}: module {module:?}, {} {lib:?}",
                show(&args),
                backend.name()
            ));
        }
        let _: () = redis::cmd("DEL").arg("m").arg("l").query(&mut con).unwrap();
    }
    assert!(
        disagreements.is_empty(),
        "{} of {rounds} vectors disagree on {}:\n{}",
        disagreements.len(),
        kind.name,
        disagreements.join("\n")
    );
}

#[test]
fn errors_agree_with_the_module_one_band() {
    errors_agree(&["RATE", "PEEK", "REFUND"], 3000, 8, true);
}

#[test]
fn errors_agree_with_the_module() {
    errors_agree(&["RATE", "PEEK", "REFUND", "RESERVE"], 4000, 9, false);
}
