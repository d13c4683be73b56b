//! Comparing buckets across time, restarts and servers: the same tokens,
//! times shorter by at most the time that passed.

use crate::support::commands::{digest, peek};
use crate::support::wait::elapsed_ms;
use redis::Connection;
use std::time::Instant;

/// Two PEEK replies of the same bucket `elapsed_ms` apart: the same tokens,
/// the times shorter by at most the time that passed.
pub fn assert_same_bucket(before: [i64; 5], after: [i64; 5], elapsed_ms: i64, what: &str) {
    assert_eq!(before[..3], after[..3], "{what}: limited/limit/remaining");
    for i in [3, 4] {
        if before[i] <= 0 {
            assert_eq!(before[i], after[i], "{what}: field {i}");
        } else {
            let drift = before[i] - after[i];
            assert!(
                (0..=elapsed_ms).contains(&drift),
                "{what}: field {i} went from {} to {} in {elapsed_ms} ms",
                before[i],
                after[i]
            );
        }
    }
}

/// Asserts `expected - elapsed_ms <= value <= expected`: a time reported
/// after at most `elapsed_ms` of refill since it was exactly `expected`.
pub fn assert_within(value: i64, expected: i64, elapsed_ms: i64, what: &str) {
    assert!(
        value <= expected && value >= expected - elapsed_ms,
        "{what}: {value} not within {elapsed_ms} ms below {expected}"
    );
}

/// Buckets as they were: each one's digest and `CHARON.PEEK key 0`, and
/// when they were read.
pub struct Snapshot {
    pub digests: Vec<String>,
    pub peeks: Vec<[i64; 5]>,
    /// Taken before the first reading: every reading happened after it.
    pub at: Instant,
}

impl Snapshot {
    /// Reads the buckets under `keys` (each must exist).
    pub fn take(con: &mut Connection, keys: &[impl AsRef<str>]) -> Snapshot {
        let at = Instant::now();
        Snapshot {
            digests: keys.iter().map(|k| digest(con, k.as_ref())).collect(),
            peeks: keys
                .iter()
                .map(|k| peek(con, k.as_ref(), Some(0)).expect("bucket present"))
                .collect(),
            at,
        }
    }

    /// Asserts that the buckets under `keys_under` (in the order the
    /// snapshot read them, under these names now) are exactly as they were:
    /// the same digest, and the same PEEK up to the time that passed.
    pub fn assert_kept(&self, con: &mut Connection, keys_under: &[impl AsRef<str>], what: &str) {
        for (i, key) in keys_under.iter().enumerate() {
            let key = key.as_ref();
            assert_eq!(
                digest(con, key),
                self.digests[i],
                "{what}: digest of {key:?}"
            );
            let after = peek(con, key, Some(0)).unwrap_or_else(|| panic!("{what}: {key:?} lost"));
            // Measured after the PEEK answered; times are whole
            // milliseconds, rounded up: one more of slack.
            let elapsed = elapsed_ms(self.at) + 1;
            assert_same_bucket(self.peeks[i], after, elapsed, &format!("{what}: {key:?}"));
        }
    }
}
