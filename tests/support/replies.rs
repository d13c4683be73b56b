//! Replies as the tests read them: an error reply rendered one way
//! everywhere (`CODE detail`), and argument vectors printable for failure
//! messages.

use redis::{Connection, RedisError, Value};

/// An error reply's code and text, if `value` is one.
pub fn error_text(value: &Value) -> Option<String> {
    match value {
        Value::ServerError(error) => Some(
            format!("{} {}", error.code(), error.details().unwrap_or_default())
                .trim()
                .to_string(),
        ),
        _ => None,
    }
}

/// The code and text of an error reply the client turned into an error;
/// `None` for an error that is no reply (a lost connection).
pub fn redis_error_text(error: &RedisError) -> Option<String> {
    let code = error.code()?;
    Some(
        format!("{code} {}", error.detail().unwrap_or_default())
            .trim()
            .to_string(),
    )
}

/// One command's reply: a value, or an error reply's code and text (a
/// lost connection fails the test).
pub fn call(con: &mut Connection, cmd: &redis::Cmd) -> Result<Value, String> {
    match cmd.query::<Value>(con) {
        Ok(value) => match error_text(&value) {
            Some(error) => Err(error),
            None => Ok(value),
        },
        Err(error) => match redis_error_text(&error) {
            Some(text) => Err(text),
            None => panic!("no reply (connection lost?): {error}"),
        },
    }
}

/// The error a command answers (panics if it succeeds).
pub fn error_of(con: &mut Connection, args: &[&[u8]]) -> String {
    let mut cmd = redis::cmd(std::str::from_utf8(args[0]).unwrap());
    for arg in &args[1..] {
        cmd.arg(*arg);
    }
    match call(con, &cmd) {
        Ok(value) => panic!(
            "{:?} answered {value:?}, expected an error",
            printable(args)
        ),
        Err(error) => error,
    }
}

/// An argument vector as text (lossy), for a failure message.
pub fn printable(args: &[&[u8]]) -> Vec<String> {
    args.iter()
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

/// An argument vector, printable for a failure message: each argument
/// quoted, long ones cut short.
pub fn show(argv: &[Vec<u8>]) -> String {
    let parts: Vec<String> = argv
        .iter()
        .map(|arg| {
            let text = String::from_utf8_lossy(arg);
            if text.chars().count() > 60 {
                let head: String = text.chars().take(60).collect();
                format!("{head:?}...({} bytes)", arg.len())
            } else {
                format!("{text:?}")
            }
        })
        .collect();
    parts.join(" ")
}
