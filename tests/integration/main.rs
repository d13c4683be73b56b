//! Integration tests: a real server, the built module, a real connection.

mod harness;

mod errors;
mod fixtures;
mod introspection;
mod peek_refund;
mod persistence;
mod rate;
mod replication;
mod run_config;
