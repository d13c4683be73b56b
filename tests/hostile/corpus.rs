//! The committed fuzz corpus (`fuzz/corpus/<target>/`), replayed through the
//! fuzz targets' own checks on every test run: a crash once found and
//! committed there stays fixed. No server needed.

use crate::fuzz_checks;
use std::path::Path;

fn replay(target: &str, check: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no corpus in {}", dir.display());
    for path in &files {
        let data = std::fs::read(path).unwrap();
        if std::panic::catch_unwind(|| check(&data)).is_err() {
            panic!("{target}: {} fails its check", path.display());
        }
    }
}

#[test]
fn parse_args_corpus() {
    replay("parse_args", fuzz_checks::parse_args);
}

#[test]
fn decode_corpus() {
    replay("decode", fuzz_checks::decode);
}

#[test]
fn unpack_state_corpus() {
    replay("unpack_state", fuzz_checks::unpack_state);
}

#[test]
fn core_corpus() {
    replay("core", fuzz_checks::core);
}
