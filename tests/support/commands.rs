//! The module's commands, and the few server commands the tests read
//! buckets with, as functions that fail the test on an error reply.

use redis::{Connection, ConnectionLike};

/// What `DEBUG DIGEST-VALUE` answers for a key that does not exist.
pub const NO_KEY: &str = "0000000000000000000000000000000000000000";

/// `CHARON.RATE` with any arguments on any connection (a server's or a
/// cluster client's), answering the 5 integers.
pub fn rate(con: &mut dyn ConnectionLike, key: &str, args: &[&str]) -> [i64; 5] {
    let reply: Vec<i64> = redis::cmd("CHARON.RATE")
        .arg(key)
        .arg(args)
        .query(con)
        .unwrap_or_else(|e| panic!("CHARON.RATE {key} {args:?}: {e}"));
    reply.try_into().expect("5 integers")
}

/// `CHARON.PEEK` on any connection; `None` for no key.
pub fn peek(con: &mut dyn ConnectionLike, key: &str, cost: Option<u64>) -> Option<[i64; 5]> {
    let mut cmd = redis::cmd("CHARON.PEEK");
    cmd.arg(key);
    if let Some(cost) = cost {
        cmd.arg(cost);
    }
    let reply: Option<Vec<i64>> = cmd.query(con).expect("CHARON.PEEK");
    reply.map(|r| r.try_into().expect("5 integers"))
}

/// `CHARON.REFUND` on any connection; `None` for no key.
pub fn refund(con: &mut dyn ConnectionLike, key: &str, tokens: u64) -> Option<i64> {
    redis::cmd("CHARON.REFUND")
        .arg(key)
        .arg(tokens)
        .query(con)
        .unwrap_or_else(|e| panic!("CHARON.REFUND {key} {tokens}: {e}"))
}

pub fn digest(con: &mut Connection, key: &str) -> String {
    let reply: Vec<String> = redis::cmd("DEBUG")
        .arg("DIGEST-VALUE")
        .arg(key)
        .query(con)
        .expect("DEBUG DIGEST-VALUE");
    reply.into_iter().next().unwrap_or_default()
}

pub fn pttl(con: &mut Connection, key: &str) -> i64 {
    redis::cmd("PTTL").arg(key).query(con).expect("PTTL")
}

/// Every key of the server the connection is on, sorted.
pub fn keys(con: &mut Connection) -> Vec<String> {
    let mut keys: Vec<String> = redis::cmd("KEYS").arg("*").query(con).expect("KEYS");
    keys.sort();
    keys
}

pub fn dbsize(con: &mut Connection) -> usize {
    redis::cmd("DBSIZE").query::<usize>(con).expect("DBSIZE")
}

/// The server's clock (`TIME`) in milliseconds.
pub fn now_ms(con: &mut Connection) -> u64 {
    let (seconds, micros): (u64, u64) = redis::cmd("TIME").query(con).expect("TIME");
    seconds * 1000 + micros / 1000
}
