//! One file, two forms: the Functions library (Redis 7+, Valkey) and the
//! EVAL script (Redis 6.2, or EVALSHA anywhere) that is the same file
//! without its first line. Both forms answer alike (the example table runs
//! through each); here, how each is derived and loaded.

use crate::library::*;
use crate::support::*;
use redis::Value;

#[test]
fn the_eval_form_is_the_file_without_its_first_line() {
    assert!(LIBRARY.starts_with(&format!("{SHEBANG}\n")));
    let form = eval_form(LIBRARY);
    assert_eq!(form, &LIBRARY[SHEBANG.len() + 1..]);
    assert!(!form.contains("#!lua"), "a second metadata line");

    // What SCRIPT LOAD registered is exactly that text (its SHA1), and it
    // runs: the dispatch picks the EVAL form where there is no
    // redis.register_function.
    let server = PlainServer::start(&[]);
    let mut con = server.con();
    let sha = script_load(&mut con);
    let expected: String = redis::cmd("EVAL")
        .arg("return redis.sha1hex(ARGV[1])")
        .arg(0)
        .arg(form)
        .query(&mut con)
        .unwrap();
    assert_eq!(sha, expected);
    let backend = Backend::Eval(sha.clone());
    assert_eq!(
        backend.call(&mut con, "RATE", "user:1", &["10", "10", "1s"]),
        Reply::Verdict([0, 10, 9, -1, 100])
    );

    // The first argument names the function; anything else is an error,
    // never a Lua error.
    let unknown = "ERR unknown function: the first argument must be charon_rate, charon_peek, charon_refund or charon_reserve";
    for args in [
        vec![],
        vec!["rate"],
        vec!["CHARON_RATE"],
        vec!["charon_rate\0"],
        vec!["register_function"],
    ] {
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(&sha).arg(1).arg("k").arg(&args);
        assert_eq!(call(&mut con, &cmd), Err(unknown.into()), "{args:?}");
    }
    // Numkeys other than 1 is the function's arity error.
    let mut cmd = redis::cmd("EVALSHA");
    cmd.arg(&sha).arg(0).arg("charon_peek");
    assert_eq!(
        call(&mut con, &cmd),
        Err("ERR wrong number of arguments for 'charon_peek' command".into())
    );
}

#[test]
fn the_library_loads_with_function_load() {
    let server = PlainServer::start(&[]);
    let kind = &server.kind;
    let mut con = server.con();
    if !kind.is_7_or_newer() {
        // Redis 6.2 has no Functions: the file whole is no EVAL script (Lua
        // does not skip a `#!` line), hence the EVAL form.
        let whole = redis::cmd("SCRIPT")
            .arg("LOAD")
            .arg(LIBRARY)
            .query::<String>(&mut con);
        assert!(whole.is_err(), "the whole file loaded as a script");
        skip("FUNCTION LOAD needs 7.0");
        return;
    }
    // The hand check of the issue: FUNCTION LOAD, then FCALL.
    let name: String = redis::cmd("FUNCTION")
        .arg("LOAD")
        .arg(LIBRARY)
        .query(&mut con)
        .unwrap();
    assert_eq!(name, "charon");
    let reply = Backend::Function.call(&mut con, "RATE", "user:1", &["10", "10", "1s"]);
    assert_eq!(reply, Reply::Verdict([0, 10, 9, -1, 100]));

    // Four functions; only charon_peek is read-only.
    let list: Value = redis::cmd("FUNCTION")
        .arg("LIST")
        .arg("LIBRARYNAME")
        .arg("charon")
        .query(&mut con)
        .unwrap();
    let text = format!("{list:?}");
    for function in [
        "charon_rate",
        "charon_peek",
        "charon_refund",
        "charon_reserve",
    ] {
        assert!(text.contains(function), "{function} not in {text}");
    }
    let ro = |con: &mut redis::Connection, function: &str, args: &[&str]| {
        let mut cmd = redis::cmd("FCALL_RO");
        cmd.arg(function).arg(1).arg("user:1").arg(args);
        call(con, &cmd)
    };
    let peeked = Reply::of(ro(&mut con, "charon_peek", &["0"])).verdict();
    assert_eq!(peeked[..4], [0, 10, 9, -1]);
    for function in ["charon_rate", "charon_refund", "charon_reserve"] {
        let error = ro(&mut con, function, &["1", "1", "1s"]).unwrap_err();
        assert!(
            error.contains("write flag") || error.contains("no-writes"),
            "{function} through FCALL_RO: {error}"
        );
    }

    // The EVAL form is no library: it has no metadata line.
    let error = redis::cmd("FUNCTION")
        .arg("LOAD")
        .arg(eval_form(LIBRARY))
        .query::<String>(&mut con)
        .unwrap_err();
    assert!(
        format!("{error}").to_lowercase().contains("metadata")
            || format!("{error}").contains("shebang"),
        "{error}"
    );

    // Loaded twice is an error unless REPLACE; REPLACE keeps the buckets.
    assert!(redis::cmd("FUNCTION")
        .arg("LOAD")
        .arg(LIBRARY)
        .query::<String>(&mut con)
        .is_err());
    let before = check_bucket(&mut con, kind, "user:1");
    load_library(&mut con, kind);
    assert_eq!(check_bucket(&mut con, kind, "user:1"), before);
}

#[test]
fn both_forms_keep_one_bucket() {
    // A bucket written through one form is read and charged through the
    // other: they are the same code on the same hash.
    let server = PlainServer::start(&[]);
    let kind = ServerKind::from_env();
    let mut con = server.con();
    let backends = load_library(&mut con, &kind);
    for (i, first) in backends.iter().enumerate() {
        for second in &backends {
            let key = format!("k{i}:{}", second.name());
            first.call(&mut con, "RATE", &key, &["10", "1", "1h", "3"]);
            let reply = second.call(&mut con, "RATE", &key, &["10", "1", "1h", "2"]);
            assert_eq!(reply.verdict()[..3], [0, 10, 5]);
            assert_eq!(
                second.call(&mut con, "REFUND", &key, &["1"]),
                Reply::Integer(6)
            );
            assert_eq!(
                first.call(&mut con, "PEEK", &key, &["0"]).verdict()[..3],
                [0, 10, 6]
            );
            check_bucket(&mut con, &kind, &key);
        }
    }
}
