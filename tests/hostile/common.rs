//! What the hostile tests share: Redis's CRC64, the checks that a server
//! is still standing, reply validation, and packed states built by hand.

use crate::support::Server;
use redis::{Connection, Value};

/// CRC-64/Jones as Redis computes it for DUMP payloads and RDB files
/// (crc64.c: polynomial 0xad93d23594c935a9, reflected, initial value 0, no
/// final xor).
pub fn crc64(data: &[u8]) -> u64 {
    // The polynomial, bit-reversed for the reflected (LSB-first) form.
    const POLY: u64 = 0xad93_d235_94c9_35a9_u64.reverse_bits();
    let mut crc = 0u64;
    for &byte in data {
        crc ^= u64::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ POLY
            } else {
                crc >> 1
            };
        }
    }
    crc
}

#[test]
fn crc64_matches_redis_test_vector() {
    // The check value in Redis's crc64.c.
    assert_eq!(crc64(b"123456789"), 0xe9c6_d914_c4b8_d9ca);
}

/// What a server writes when it dies of a signal, an assertion or a panic
/// of its own.
pub const CRASH_MARKS: [&str; 5] = [
    "crashed by signal",
    "BUG REPORT START",
    "Guru Meditation",
    "ASSERTION FAILED",
    "Fatal error",
];

pub fn crash_mark(log: &str) -> Option<&'static str> {
    CRASH_MARKS.into_iter().find(|mark| log.contains(mark))
}

/// The server is up: the process runs, it answers PING on a new
/// connection, and its log shows no crash.
pub fn assert_standing(server: &mut Server, what: &str) {
    assert!(
        server.is_alive(),
        "{what}: the server process died:\n{}",
        server.log_tail()
    );
    let pong: String = redis::cmd("PING")
        .query(&mut server.con())
        .unwrap_or_else(|e| panic!("{what}: PING failed: {e}\n{}", server.log_tail()));
    assert_eq!(pong, "PONG", "{what}");
    if let Some(mark) = crash_mark(&server.log_text()) {
        panic!("{what}: the log says {mark:?}:\n{}", server.log_tail());
    }
}

/// A reply of five integers (a verdict, a reservation), or what it is not.
pub fn five_integers(value: &Value) -> Result<[i64; 5], String> {
    let Value::Array(items) = value else {
        return Err(format!("not an array: {value:?}"));
    };
    let numbers: Vec<i64> = items
        .iter()
        .map(|item| match item {
            Value::Int(n) => Ok(*n),
            other => Err(format!("not an integer: {other:?}")),
        })
        .collect::<Result<_, _>>()?;
    numbers
        .try_into()
        .map_err(|n: Vec<i64>| format!("{} integers, not 5", n.len()))
}

/// A verdict reply: five integers within the contract's ranges.
pub fn check_verdict(value: &Value) -> Result<[i64; 5], String> {
    let [limited, limit, remaining, retry, reset] = five_integers(value)?;
    let ok = (0..=1).contains(&limited)
        && limit >= 1
        && (0..=limit).contains(&remaining)
        && (retry == -1 || (limited == 1 && retry >= 1))
        && reset >= 0;
    if ok {
        Ok([limited, limit, remaining, retry, reset])
    } else {
        Err(format!(
            "verdict out of range: {:?}",
            [limited, limit, remaining, retry, reset]
        ))
    }
}

/// `CHARON.PEEK key 0` answers a verdict within the contract's ranges.
pub fn assert_peek_sound(con: &mut Connection, key: &[u8]) {
    let reply: Value = redis::cmd("CHARON.PEEK")
        .arg(key)
        .arg(0)
        .query(con)
        .unwrap();
    check_verdict(&reply)
        .unwrap_or_else(|e| panic!("PEEK {:?}: {e}", String::from_utf8_lossy(key)));
}

/// Runs `commands` (each a whole argument vector) as one pipeline and
/// answers one reply per command, errors included.
pub fn pipeline(con: &mut Connection, commands: &[Vec<Vec<u8>>]) -> Vec<Value> {
    let mut pipe = redis::pipe();
    for argv in commands {
        let mut cmd = redis::cmd(std::str::from_utf8(&argv[0]).expect("command name"));
        for arg in &argv[1..] {
            cmd.arg(&arg[..]);
        }
        pipe.add_command(cmd);
    }
    let replies: Vec<Value> = pipe
        .ignore_errors()
        .query(con)
        .unwrap_or_else(|e| panic!("the pipeline failed (connection lost?): {e}"));
    assert_eq!(replies.len(), commands.len(), "one reply per command");
    replies
}

/// Appends `value` as an unsigned LEB128 varint: written independently of
/// the module's packer, to build packed states by hand.
pub fn leb128(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value & 0x7f) as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// The packed state form of `CHARON.SETSTATE key state`: format 1, then
/// varints `updated_at band_count [capacity refill period tokens fraction]`.
pub fn packed(updated_at: u64, bands: &[[u64; 5]]) -> Vec<u8> {
    let mut out = vec![1];
    leb128(&mut out, updated_at);
    leb128(&mut out, bands.len() as u64);
    for field in bands.iter().flatten() {
        leb128(&mut out, *field);
    }
    out
}

/// A server whose module is loaded with `CLTHROTTLE yes` (the harness loads
/// it without arguments): started from a configuration file that loads it
/// with them, removed with the server.
pub struct Throttled {
    pub server: Server,
    config: std::path::PathBuf,
}

impl Throttled {
    pub fn start() -> Throttled {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let config = std::env::temp_dir().join(format!(
            "charon-hostile-{}-{}-redis.conf",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        // The harness puts the module under test at this path, relative to
        // where the server runs.
        std::fs::write(
            &config,
            "loadmodule ./target/release/libcharon.so CLTHROTTLE yes\n",
        )
        .expect("write the configuration");
        let server = Server::start_from_config(&config);
        Throttled { server, config }
    }
}

impl Drop for Throttled {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.config);
    }
}
