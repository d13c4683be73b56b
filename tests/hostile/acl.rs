//! ACL boundaries: key patterns apply to every command (the key is at
//! position 1), read-only users can PEEK and nothing else, and where the
//! server lets a module put its commands in ACL categories, they are in the
//! ones their flags say.

use crate::support::*;
use redis::{Connection, Value};

fn acl(con: &mut Connection, args: &[&str]) {
    let _: () = redis::cmd("ACL")
        .arg(args)
        .query(con)
        .unwrap_or_else(|e| panic!("ACL {args:?}: {e}"));
}

fn login(server: &Server, user: &str) -> Connection {
    redis::Client::open(format!("redis://{user}:pw@127.0.0.1:{}/", server.port))
        .unwrap()
        .get_connection()
        .unwrap_or_else(|e| panic!("login as {user}: {e}"))
}

fn reply(con: &mut Connection, args: &[&str]) -> Result<Value, String> {
    let mut cmd = redis::cmd(args[0]);
    cmd.arg(&args[1..]);
    call(con, &cmd)
}

fn assert_allowed(con: &mut Connection, user: &str, args: &[&str]) {
    if let Err(error) = reply(con, args) {
        panic!("{user}: {args:?} refused: {error}");
    }
}

fn assert_noperm(con: &mut Connection, user: &str, args: &[&str]) {
    match reply(con, args) {
        Ok(value) => panic!("{user}: {args:?} allowed: {value:?}"),
        Err(error) => assert!(error.starts_with("NOPERM"), "{user}: {args:?}: {error}"),
    }
}

const SETSTATE: [&str; 9] = [
    "CHARON.SETSTATE",
    "",
    "1",
    "1",
    "10",
    "1",
    "86400000",
    "5",
    "0",
];

/// Every CHARON.* command on `key`.
fn every_command(key: &str) -> Vec<Vec<&str>> {
    let mut setstate = SETSTATE.to_vec();
    setstate[1] = key;
    vec![
        vec!["CHARON.RATE", key, "10", "1", "1s"],
        vec!["CHARON.PEEK", key],
        vec!["CHARON.REFUND", key, "1"],
        setstate,
    ]
}

#[test]
fn key_patterns_apply_to_every_command() {
    let server = Server::start();
    let mut admin = server.con();
    acl(
        &mut admin,
        &["SETUSER", "limited", "on", ">pw", "~user:*", "+@all"],
    );
    rate(&mut admin, "admin:1", &["10", "1", "1h"]);
    rate(&mut admin, "user:2", &["10", "1", "1h"]);
    let before = digest(&mut admin, "admin:1");

    let mut con = login(&server, "limited");
    for args in every_command("user:1") {
        assert_allowed(&mut con, "limited", &args);
    }
    assert_allowed(
        &mut con,
        "limited",
        &["CHARON.RATE", "user:2", "10", "1", "1h"],
    );
    for args in every_command("admin:1") {
        assert_noperm(&mut con, "limited", &args);
    }
    assert_eq!(digest(&mut admin, "admin:1"), before);
}

#[test]
fn read_only_users_can_peek_only() {
    let server = Server::start();
    let mut admin = server.con();
    rate(&mut admin, "k", &["10", "1", "1h"]);
    // By command name: every server.
    acl(
        &mut admin,
        &["SETUSER", "peeker", "on", ">pw", "~*", "+charon.peek"],
    );
    let mut users = vec!["peeker"];
    if server.kind.is_7_or_newer() {
        // Read-only key access (key specs say PEEK only reads its key).
        acl(
            &mut admin,
            &["SETUSER", "reader", "on", ">pw", "%R~*", "+@all"],
        );
        users.push("reader");
    } else {
        skip("read-only key permissions (%R~) need Redis 7.0+");
    }
    if module_categories(&mut admin) {
        acl(
            &mut admin,
            &["SETUSER", "category", "on", ">pw", "~*", "+@read"],
        );
        users.push("category");
    } else {
        skip("+@read does not include module commands on this server (no module ACL categories)");
    }
    let before = digest(&mut admin, "k");
    for user in users {
        let mut con = login(&server, user);
        assert_allowed(&mut con, user, &["CHARON.PEEK", "k"]);
        assert_allowed(&mut con, user, &["CHARON.PEEK", "k", "3"]);
        for args in every_command("k") {
            if args[0] != "CHARON.PEEK" {
                assert_noperm(&mut con, user, &args);
            }
        }
    }
    assert_eq!(digest(&mut admin, "k"), before);
}

/// Whether modules can put commands in ACL categories on this server
/// (`RedisModule_SetCommandACLCategories`: Redis 7.2+, Valkey 8+); Charon
/// then adds its own category, `@charon`.
fn module_categories(con: &mut Connection) -> bool {
    let categories: Vec<String> = redis::cmd("ACL").arg("CAT").query(con).unwrap();
    categories.iter().any(|c| c == "charon")
}

/// The ACL categories `COMMAND INFO` reports for `command` (Redis 7+).
fn categories_of(con: &mut Connection, command: &str) -> Vec<String> {
    let info: Value = redis::cmd("COMMAND")
        .arg("INFO")
        .arg(command)
        .query(con)
        .unwrap();
    let Value::Array(commands) = info else {
        panic!("COMMAND INFO {command}: {info:?}");
    };
    let Some(Value::Array(fields)) = commands.first() else {
        panic!("COMMAND INFO {command}: {commands:?}");
    };
    match fields.get(6) {
        Some(Value::Array(categories)) => categories
            .iter()
            .map(|c| match c {
                Value::SimpleString(s) => s.clone(),
                Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
                other => panic!("category {other:?}"),
            })
            .collect(),
        other => panic!("COMMAND INFO {command}: no categories: {other:?}"),
    }
}

#[test]
fn commands_are_in_the_categories_their_flags_say() {
    let server = Server::start();
    let mut con = server.con();
    if !server.kind.is_7_or_newer() {
        skip("Redis 6.2 puts module commands in no ACL category");
        return;
    }
    if !module_categories(&mut con) {
        skip(
            "this server derives no ACL categories from a module command's flags and \
             has no RedisModule_SetCommandACLCategories (Redis 7.0-7.1)",
        );
        return;
    }
    for (command, want, never) in [
        ("CHARON.RATE", ["@write", "@fast"], ["@read", "@slow"]),
        ("CHARON.REFUND", ["@write", "@fast"], ["@read", "@slow"]),
        ("CHARON.SETSTATE", ["@write", "@fast"], ["@read", "@slow"]),
        ("CHARON.PEEK", ["@read", "@fast"], ["@write", "@slow"]),
    ] {
        let categories = categories_of(&mut con, command);
        for category in want {
            assert!(
                categories.iter().any(|c| c == category),
                "{command} is not in {category}: {categories:?}"
            );
        }
        for category in never {
            assert!(
                !categories.iter().any(|c| c == category),
                "{command} is in {category}: {categories:?}"
            );
        }
        for (category, listed) in [
            ("write", want.contains(&"@write")),
            ("read", want.contains(&"@read")),
            ("fast", true),
        ] {
            let members: Vec<String> = redis::cmd("ACL")
                .arg("CAT")
                .arg(category)
                .query(&mut con)
                .unwrap();
            assert_eq!(
                members.iter().any(|m| m.eq_ignore_ascii_case(command)),
                listed,
                "ACL CAT {category} and {command}"
            );
        }
    }
}
