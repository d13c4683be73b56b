//! The command reference's examples (`examples.txt`, its format described at
//! its top) on the library alone, in each of its forms, and on the module:
//! both are held to the same table.

use crate::library::*;
use crate::support::*;
use redis::{Connection, Value};
use std::time::Instant;

const TABLE: &str = include_str!("examples.txt");

struct Section {
    group: String,
    title: String,
    rows: Vec<Row>,
}

struct Row {
    line: usize,
    only: Option<&'static str>,
    words: Vec<String>,
    expected: String,
}

fn table() -> Vec<Section> {
    let mut sections: Vec<Section> = Vec::new();
    for (i, line) in TABLE.lines().enumerate() {
        let line_no = i + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(header) = line.strip_prefix("== ") {
            let (group, title) = header.split_once(": ").unwrap_or_else(|| {
                panic!("examples.txt:{line_no}: a section is `== group: title`")
            });
            sections.push(Section {
                group: group.into(),
                title: title.into(),
                rows: Vec::new(),
            });
            continue;
        }
        let (command, expected) = line
            .split_once(" => ")
            .unwrap_or_else(|| panic!("examples.txt:{line_no}: a row is `command => reply`"));
        let mut words: Vec<String> = command.split_whitespace().map(String::from).collect();
        let only = match words[0].as_str() {
            "@module" => Some("module"),
            "@library" => Some("library"),
            _ => None,
        };
        if only.is_some() {
            words.remove(0);
        }
        sections
            .last_mut()
            .unwrap_or_else(|| panic!("examples.txt:{line_no}: a row before any section"))
            .rows
            .push(Row {
                line: line_no,
                only,
                words,
                expected: expected.trim().into(),
            });
    }
    sections
}

const COMMANDS: [&str; 4] = ["RATE", "PEEK", "REFUND", "RESERVE"];

/// A reply as the table writes it.
fn render(value: &Result<Value, String>) -> String {
    match value {
        Err(error) => error.clone(),
        Ok(Value::Nil) => "nil".into(),
        Ok(Value::Int(n)) => n.to_string(),
        Ok(Value::Okay) => "OK".into(),
        Ok(Value::SimpleString(s)) => s.clone(),
        Ok(Value::BulkString(bytes)) => String::from_utf8_lossy(bytes).into_owned(),
        Ok(Value::Array(items)) => {
            let parts: Vec<String> = items.iter().map(|v| render(&Ok(v.clone()))).collect();
            format!("[{}]", parts.join(" "))
        }
        Ok(other) => format!("{other:?}"),
    }
}

/// Whether `actual` is what `expected` says, `elapsed` ms after the section
/// began: counts exact, times lower by at most the time that passed.
fn matches(expected: &str, actual: &str, elapsed: i64) -> bool {
    let time_ok = |want: &str, got: &str| -> bool {
        match (want.parse::<i64>(), got.parse::<i64>()) {
            (Ok(want), Ok(got)) if want > 0 => got <= want && got >= want - elapsed,
            (Ok(want), Ok(got)) => want == got,
            _ => false,
        }
    };
    if let Some(time) = expected.strip_prefix('~') {
        return time_ok(time, actual);
    }
    if let (Some(want), Some(got)) = (
        expected.strip_prefix('[').and_then(|s| s.strip_suffix(']')),
        actual.strip_prefix('[').and_then(|s| s.strip_suffix(']')),
    ) {
        let want: Vec<&str> = want.split(' ').collect();
        let got: Vec<&str> = got.split(' ').collect();
        return want.len() == 5
            && got.len() == 5
            && want[..3] == got[..3]
            && (3..5).all(|i| time_ok(want[i], got[i]));
    }
    expected == actual
}

/// Runs one section on a fresh database: Ok, or what went wrong and how long
/// the section had been running then.
fn run_section(
    con: &mut Connection,
    backend: &Backend,
    section: &Section,
) -> Result<(), (String, i64)> {
    let _: () = redis::cmd("FLUSHALL").query(con).expect("FLUSHALL");
    let start = Instant::now();
    for row in &section.rows {
        match row.only {
            Some("module") if backend.is_library() => continue,
            Some("library") if !backend.is_library() => continue,
            _ => {}
        }
        let op = row.words[0].as_str();
        let reply = if COMMANDS.contains(&op) {
            let args: Vec<&[u8]> = row.words[2..].iter().map(|w| w.as_bytes()).collect();
            call(con, &backend.command(op, &[row.words[1].as_bytes()], &args))
        } else {
            let mut cmd = redis::cmd(op);
            for word in &row.words[1..] {
                cmd.arg(word);
            }
            call(con, &cmd)
        };
        let elapsed = elapsed_ms(start);
        let mut expected = row.expected.clone();
        for op in COMMANDS {
            expected = expected.replace(&format!("{{{op}}}"), &backend.command_name(op));
        }
        let actual = render(&reply);
        if !matches(&expected, &actual, elapsed) {
            return Err((
                format!(
                    "examples.txt:{} ({}: {}) on {} ({}): `{}`\n  expected {expected}\n  answered {actual}\n  ({elapsed} ms into the section)",
                    row.line,
                    section.group,
                    section.title,
                    backend.name(),
                    ServerKind::from_env().name,
                    row.words.join(" "),
                ),
                elapsed,
            ));
        }
    }
    Ok(())
}

/// A section whose counts depend on little time passing (ten tokens a
/// second) is run again when a slow machine let a token accrue mid-way.
const SLOW_MS: i64 = 40;

fn run_group(con: &mut Connection, backend: &Backend, group: &str) -> Vec<String> {
    let mut failures = Vec::new();
    for section in table().iter().filter(|s| s.group == group) {
        let mut attempt = 1;
        loop {
            match run_section(con, backend, section) {
                Ok(()) => break,
                Err((message, elapsed)) if elapsed > SLOW_MS && attempt < 3 => {
                    eprintln!("slow run ({elapsed} ms), once more: {message}");
                    attempt += 1;
                }
                Err((message, _)) => {
                    failures.push(message);
                    break;
                }
            }
        }
    }
    failures
}

/// The group's sections on the library alone (every form this server runs)
/// and on the module: every failure, then one panic naming them all.
fn check_group(group: &str) {
    assert!(
        table().iter().any(|s| s.group == group),
        "no section in group {group}"
    );
    let mut failures = Vec::new();
    {
        let plain = PlainServer::start(&[]);
        let mut con = plain.con();
        for backend in load_library(&mut con, &plain.kind) {
            failures.extend(run_group(&mut con, &backend, group));
        }
    }
    {
        let server = Server::start();
        let mut con = server.con();
        failures.extend(run_group(&mut con, &Backend::Module, group));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn examples_one_band() {
    check_group("one-band");
}

#[test]
fn examples_limits() {
    check_group("limits");
}

#[test]
fn examples_reserve() {
    check_group("reserve");
}

#[test]
fn examples_range() {
    check_group("range");
}

#[test]
fn every_section_belongs_to_a_test() {
    for section in table() {
        assert!(
            ["one-band", "limits", "reserve", "range"].contains(&section.group.as_str()),
            "examples.txt: section {:?} has group {:?}, which no test runs",
            section.title,
            section.group
        );
    }
}
