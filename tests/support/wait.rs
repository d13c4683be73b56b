//! Time in the tests: deadlines to wait within, and the milliseconds that
//! passed between two readings.

use std::time::{Duration, Instant};

/// How long `wait_until` waits: generous, a deadline against a hung test,
/// not a timing assertion.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// Polls `ready` until it holds; fails after `DEADLINE`.
pub fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Milliseconds since `since`, plus one for the server's clock reading
/// whole milliseconds.
pub fn elapsed_ms(since: Instant) -> i64 {
    since.elapsed().as_millis() as i64 + 1
}
