//! Integration tests: a real server, the built module, a real connection.

#[path = "../support/mod.rs"]
#[allow(dead_code)]
mod support;

mod bands;
mod errors;
mod fixtures;
mod introspection;
mod peek_refund;
mod persistence;
mod rate;
mod replication;
mod reserve;
mod run_config;
mod throttle;
