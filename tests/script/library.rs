//! The library under test (`lua/charon.lua`), its two forms, servers without
//! the module, and one way to call the four commands on any backend.

use crate::support::*;
use redis::{Connection, Value};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The library exactly as shipped.
pub const LIBRARY: &str = include_str!("../../lua/charon.lua");

/// The first line of the file: the Functions metadata, and the only line the
/// EVAL form drops.
pub const SHEBANG: &str = "#!lua name=charon";

/// The EVAL form (Redis 6.2, or EVALSHA anywhere): the file without its
/// first line. Derived here, from the file itself, so it cannot drift.
pub fn eval_form(library: &str) -> &str {
    let (first, rest) = library
        .split_once('\n')
        .expect("the library has more than one line");
    assert_eq!(first, SHEBANG, "the library's first line");
    rest
}

/// How a command reaches a bucket.
#[derive(Clone, Debug)]
pub enum Backend {
    /// `CHARON.RATE key ...`: the module.
    Module,
    /// `FCALL charon_rate 1 key ...`: the library loaded with FUNCTION LOAD.
    Function,
    /// `EVALSHA sha 1 key charon_rate ...`: the library's EVAL form.
    Eval(String),
}

impl Backend {
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Module => "module",
            Backend::Function => "FCALL",
            Backend::Eval(_) => "EVALSHA",
        }
    }

    pub fn is_library(&self) -> bool {
        !matches!(self, Backend::Module)
    }

    /// What the backend calls command `op` (RATE, PEEK, REFUND, RESERVE) in
    /// its arity error.
    pub fn command_name(&self, op: &str) -> String {
        match self {
            Backend::Module => format!("CHARON.{op}"),
            _ => format!("charon_{}", op.to_lowercase()),
        }
    }

    /// The command `op key args...` (`keys` other than one key: the raw
    /// number of keys, for arity checks; the module has no such thing).
    pub fn command(&self, op: &str, keys: &[&[u8]], args: &[&[u8]]) -> redis::Cmd {
        let function = format!("charon_{}", op.to_lowercase());
        let mut cmd = match self {
            Backend::Module => redis::cmd(&format!("CHARON.{op}")),
            Backend::Function => {
                let mut cmd = redis::cmd("FCALL");
                cmd.arg(&function).arg(keys.len());
                cmd
            }
            Backend::Eval(sha) => {
                let mut cmd = redis::cmd("EVALSHA");
                cmd.arg(sha).arg(keys.len());
                cmd
            }
        };
        for key in keys {
            cmd.arg(*key);
        }
        if let Backend::Eval(_) = self {
            cmd.arg(&function);
        }
        for arg in args {
            cmd.arg(*arg);
        }
        cmd
    }

    /// `op key args...`: the reply, or the error's text.
    pub fn call(&self, con: &mut Connection, op: &str, key: &str, args: &[&str]) -> Reply {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        self.call_raw(con, op, &[key.as_bytes()], &args)
    }

    pub fn call_raw(
        &self,
        con: &mut Connection,
        op: &str,
        keys: &[&[u8]],
        args: &[&[u8]],
    ) -> Reply {
        match self.command(op, keys, args).query::<Value>(con) {
            Ok(value) => Reply::of(error_text(&value).map_or(Ok(value), Err)),
            Err(error) => match redis_error_text(&error) {
                Some(text) => Reply::Error(text),
                // An error reply the client cannot read (the server's
                // "unknown command" error quotes the arguments, whatever
                // their bytes): the connection is lost, see `Unreadable`.
                None if error.kind() == redis::ErrorKind::Parse => {
                    Reply::Unreadable(error.to_string())
                }
                None => panic!("no reply (connection lost?): {error}"),
            },
        }
    }
}

/// A reply, as the tests compare them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    Verdict([i64; 5]),
    Integer(i64),
    Nil,
    Error(String),
    /// Anything else (never a valid reply of these commands).
    Other(String),
    /// A reply the client could not parse; the caller connects again.
    Unreadable(String),
}

impl Reply {
    pub fn of(reply: Result<Value, String>) -> Reply {
        match reply {
            Err(error) => Reply::Error(error),
            Ok(Value::Nil) => Reply::Nil,
            Ok(Value::Int(n)) => Reply::Integer(n),
            Ok(Value::Array(items)) => {
                let ints: Vec<i64> = items
                    .iter()
                    .filter_map(|v| match v {
                        Value::Int(n) => Some(*n),
                        _ => None,
                    })
                    .collect();
                match <[i64; 5]>::try_from(ints) {
                    Ok(five) if items.len() == 5 => Reply::Verdict(five),
                    _ => Reply::Other(format!("{items:?}")),
                }
            }
            Ok(other) => Reply::Other(format!("{other:?}")),
        }
    }

    pub fn verdict(&self) -> [i64; 5] {
        match self {
            Reply::Verdict(v) => *v,
            other => panic!("expected 5 integers, got {other:?}"),
        }
    }
}

/// Loads the library on the server behind `con` in every form the server
/// runs: FUNCTION LOAD (Redis 7+, Valkey) and the EVAL form (everywhere).
pub fn load_library(con: &mut Connection, kind: &ServerKind) -> Vec<Backend> {
    let mut backends = Vec::new();
    if kind.is_7_or_newer() {
        let name: String = redis::cmd("FUNCTION")
            .arg("LOAD")
            .arg("REPLACE")
            .arg(LIBRARY)
            .query(con)
            .expect("FUNCTION LOAD of lua/charon.lua");
        assert_eq!(name, "charon");
        backends.push(Backend::Function);
    } else {
        skip("Redis Functions need 7.0: the library runs as its EVAL form only");
    }
    backends.push(Backend::Eval(script_load(con)));
    backends
}

/// SCRIPT LOAD of the EVAL form: its sha.
pub fn script_load(con: &mut Connection) -> String {
    redis::cmd("SCRIPT")
        .arg("LOAD")
        .arg(eval_form(LIBRARY))
        .query(con)
        .expect("SCRIPT LOAD of the EVAL form")
}

/// A server started without the module (as a managed service runs), with
/// `config` lines (`"replicaof 127.0.0.1 6379"`) in its configuration file.
pub struct PlainServer {
    pub server: Server,
    config: PathBuf,
}

impl std::ops::Deref for PlainServer {
    type Target = Server;
    fn deref(&self) -> &Server {
        &self.server
    }
}

impl std::ops::DerefMut for PlainServer {
    fn deref_mut(&mut self) -> &mut Server {
        &mut self.server
    }
}

impl Drop for PlainServer {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.config);
    }
}

impl PlainServer {
    /// The harness adds `--loadmodule` unless a server starts from a
    /// configuration file: a file that loads nothing gives a server without
    /// the module, started and checked like every other.
    pub fn start(config: &[&str]) -> PlainServer {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "charon-script-{}-{}.conf",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let mut text = String::from("# no loadmodule: a server without Charon\n");
        for line in config {
            text.push_str(line);
            text.push('\n');
        }
        std::fs::write(&path, text).expect("write a server configuration");
        let server = Server::start_from_config(&path);
        // (Valkey 9 lists its Lua engine as a module.)
        let modules: Value = redis::cmd("MODULE")
            .arg("LIST")
            .query(&mut server.con())
            .expect("MODULE LIST");
        assert!(
            !format!("{modules:?}").contains("charon"),
            "a server without Charon: {modules:?}"
        );
        PlainServer {
            server,
            config: path,
        }
    }
}

/// 2^52: the library's exact range (see lua/charon.lua).
pub const SPAN: i128 = 1 << 52;

/// Checks a library bucket as documented in lua/charon.lua: fields `t`, `n`
/// and `c<i> r<i> p<i> u<i>` for each band, nothing else, every value a
/// canonical decimal integer within the range; and, where the server tells
/// an absolute expiry, that the key expires exactly when every band is full.
/// Answers the fields (empty for no key).
pub fn check_bucket(con: &mut Connection, kind: &ServerKind, key: &str) -> Vec<(String, String)> {
    // One transaction: a bucket of a short period may expire between two
    // separate reads.
    let (fields, at): (Vec<(String, String)>, i64) = if kind.is_7_or_newer() {
        redis::pipe()
            .atomic()
            .cmd("HGETALL")
            .arg(key)
            .cmd("PEXPIRETIME")
            .arg(key)
            .query(con)
            .unwrap_or_else(|e| panic!("HGETALL, PEXPIRETIME {key}: {e}"))
    } else {
        let fields = redis::cmd("HGETALL")
            .arg(key)
            .query(con)
            .unwrap_or_else(|e| panic!("HGETALL {key}: {e}"));
        (fields, 0)
    };
    if fields.is_empty() {
        return fields;
    }
    let get = |name: &str| -> i128 {
        let value = &fields
            .iter()
            .find(|(f, _)| f == name)
            .unwrap_or_else(|| panic!("{key}: no field {name} in {fields:?}"))
            .1;
        let parsed: i128 = value
            .parse()
            .unwrap_or_else(|_| panic!("{key}: {name}={value:?} is no integer"));
        assert_eq!(parsed.to_string(), *value, "{key}: {name} is not canonical");
        parsed
    };
    let n = get("n");
    assert!((1..=16).contains(&n), "{key}: n={n}");
    assert_eq!(fields.len() as i128, 2 + 4 * n, "{key}: fields {fields:?}");
    let t = get("t");
    assert!((0..=SPAN).contains(&t), "{key}: t={t}");
    let mut reset = 0;
    for i in 1..=n {
        let (c, r, p, u) = (
            get(&format!("c{i}")),
            get(&format!("r{i}")),
            get(&format!("p{i}")),
            get(&format!("u{i}")),
        );
        assert!(c >= 1 && r >= 1 && p >= 1, "{key}: band {i} {fields:?}");
        assert!(c * p <= SPAN, "{key}: band {i} beyond the range");
        assert!(u <= c * p && c * p - u <= SPAN, "{key}: band {i} level {u}");
        reset = reset.max((c * p - u + r - 1) / r);
    }
    assert!(reset > 0, "{key}: a full bucket is stored: {fields:?}");
    if kind.is_7_or_newer() {
        assert_eq!(at as i128, t + reset, "{key}: expiry of {fields:?}");
    }
    fields
}
