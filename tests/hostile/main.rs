//! Hostile input against real servers: random argument vectors, corrupt
//! RESTORE payloads, impossible AOF contents, printf directives in every
//! error and log path, a contained panic, ACL boundaries; the committed fuzz
//! corpus replayed; and, ignored by default (`make soak`), a load test.

#[path = "../support/mod.rs"]
#[allow(dead_code)]
mod support;

/// The fuzz targets' checks, so that the committed corpus is replayed here.
#[path = "../../fuzz/src/checks.rs"]
#[allow(dead_code)]
mod fuzz_checks;

mod acl;
mod aof;
mod args;
mod common;
mod corpus;
mod formats;
mod panic;
mod restore;
mod soak;
