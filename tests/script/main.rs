//! The Redis Functions library (`lua/charon.lua`): the same limiter for
//! servers that cannot load modules, held to the module's replies.
//!
//! - `examples`: the command reference's examples (`examples.txt`), one
//!   table run on the library alone (FCALL and EVALSHA) and on the module;
//! - `forms`: the two forms of the one file, and how they are loaded;
//! - `differential`: seeded random sequences against the module and the
//!   library on one server, replies compared;
//! - `replication`: a replica of a primary running the library holds the
//!   same hashes, and answers `FCALL_RO charon_peek`;
//! - `hostile`: random and hostile arguments, keys and hashes;
//! - `migration`: converting the library's buckets into the module's.
//!
//! Servers come from the environment as for every suite
//! (`CHARON_SERVER_NAME`, `CHARON_SERVER_VERSION`, `CHARON_SERVER_BIN`).

#[path = "../support/mod.rs"]
#[allow(dead_code)]
mod support;

mod library;

mod differential;
mod examples;
mod forms;
mod hostile;
mod migration;
mod replication;
