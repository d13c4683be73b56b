//! Placeholder: filled in by its own issue.

#[path = "../integration/harness.rs"]
#[allow(dead_code)]
mod harness;
