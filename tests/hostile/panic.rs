//! Panic containment: a panic inside a command becomes an error reply, is
//! logged (literally, printf directives and all), and the server keeps
//! serving. Needs the module built with `--features test-panic`
//! (`CHARON.TESTPANIC key` panics on purpose), named by `CHARON_MODULE`.

use crate::common::*;
use crate::support::*;
use redis::Value;

const PANIC_ERROR: &str = "ERR charon internal error, see the server log";

/// Whether the module under test is a test-panic build; says why not.
fn panic_build() -> bool {
    match std::env::var_os("CHARON_MODULE") {
        Some(path) if std::path::Path::new(&path).exists() => true,
        _ => {
            skip(
                "panic containment needs CHARON_MODULE set to a test-panic build \
                 (cargo build --release --locked --features test-panic --target-dir target/panic)",
            );
            false
        }
    }
}

#[test]
fn a_panic_is_an_error_reply_and_a_log_line() {
    if !panic_build() {
        return;
    }
    let mut server = Server::start();
    let mut con = server.con();
    let info: Value = redis::cmd("COMMAND")
        .arg("INFO")
        .arg("CHARON.TESTPANIC")
        .query(&mut con)
        .unwrap();
    if matches!(&info, Value::Array(items) if items.iter().all(|i| *i == Value::Nil)) {
        skip("CHARON_MODULE names a build without the test-panic feature");
        return;
    }
    rate(&mut con, "bucket", &["10", "1", "1h", "3"]);
    let before = digest(&mut con, "bucket");

    let error = error_of(&mut con, &[b"CHARON.TESTPANIC", b"%s%n%x"]);
    assert_eq!(error, PANIC_ERROR);

    // Many more, pipelined, inside MULTI and inside a script: each one an
    // error, nothing poisoned.
    let commands: Vec<Vec<Vec<u8>>> = (0..200)
        .map(|i| vec![b"CHARON.TESTPANIC".to_vec(), format!("k{i}%n").into_bytes()])
        .collect();
    for reply in pipeline(&mut con, &commands) {
        assert_eq!(error_text(&reply).as_deref(), Some(PANIC_ERROR));
    }
    let (panicked, rated): (Value, Vec<i64>) = redis::pipe()
        .atomic()
        .cmd("CHARON.TESTPANIC")
        .arg("in-multi")
        .cmd("CHARON.RATE")
        .arg("bucket")
        .arg(&["10", "1", "1h"])
        .ignore_errors()
        .query::<Vec<Value>>(&mut con)
        .map(|replies| {
            let mut replies = replies.into_iter();
            let first = replies.next().unwrap();
            let second = match replies.next().unwrap() {
                Value::Array(items) => items
                    .into_iter()
                    .map(|v| match v {
                        Value::Int(n) => n,
                        other => panic!("{other:?}"),
                    })
                    .collect(),
                other => panic!("RATE in MULTI: {other:?}"),
            };
            (first, second)
        })
        .unwrap();
    assert_eq!(error_text(&panicked).as_deref(), Some(PANIC_ERROR));
    assert_eq!(rated[..3], [0, 10, 6], "the command after a panic in MULTI");
    let mut eval = redis::cmd("EVAL");
    eval.arg("return redis.pcall('CHARON.TESTPANIC', KEYS[1])")
        .arg(1)
        .arg("in-script");
    let error = call(&mut con, &eval).expect_err("EVAL of a panic");
    assert!(error.contains("charon internal error"), "{error}");

    // The server serves, the module too, and nothing was touched.
    assert_standing(&mut server, "after panics");
    assert_ne!(
        digest(&mut con, "bucket"),
        before,
        "RATE in MULTI took a token"
    );
    let reply = peek(&mut con, "bucket", Some(0)).expect("bucket kept");
    assert_eq!(reply[..3], [0, 10, 6]);
    let keys: i64 = redis::cmd("DBSIZE").query(&mut con).unwrap();
    assert_eq!(keys, 1, "a panicking command created a key");
    info_u64(&server.info("charon"), "charon_calls");

    let log = server.log_text();
    let line = "CHARON.TESTPANIC panics on purpose (key %s%n%x, %s %n %x)";
    assert!(
        log.contains(line),
        "no literal panic message in the log:\n{}",
        server.log_tail()
    );
    assert!(log.contains("(contained, server unaffected)"));
    let logged = log.matches("CHARON.TESTPANIC panics on purpose").count();
    assert_eq!(logged, 1 + 200 + 1 + 1, "one log line per panic");
}
