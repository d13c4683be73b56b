//! What the integration, distributed and hostile suites share: real servers
//! with the module loaded, the commands as functions, error replies as text,
//! waiting with a deadline, a seeded generator, replication and persistence
//! checks.
//!
//! A suite includes it with `#[path = "../support/mod.rs"] mod support;`
//! (each uses a part of it) and its files `use crate::support::*`.

// Each suite uses a part: the re-exports it does not use are no mistake
// (nor, with `#[allow(dead_code)]` on the `mod`, the items).
#![allow(unused_imports)]

pub mod aof;
pub mod buckets;
pub mod commands;
pub mod harness;
pub mod replication;
pub mod replies;
pub mod rng;
pub mod wait;
pub mod workload;

pub use aof::*;
pub use buckets::*;
pub use commands::*;
pub use harness::*;
pub use replication::*;
pub use replies::*;
pub use rng::*;
pub use wait::*;
pub use workload::*;
