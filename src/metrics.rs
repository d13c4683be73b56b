//! Counters for `INFO charon`, kept in atomics. The command counters have
//! one writer at a time (commands run on the main thread, or under the
//! module GIL), so a plain load and store counts them without a locked
//! instruction on every call; the bucket count is also changed on the
//! server's lazy-free thread, so it takes atomic adds.

use redis_module::raw;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::server::api;

pub static ALLOWED: AtomicU64 = AtomicU64::new(0);
pub static LIMITED: AtomicU64 = AtomicU64::new(0);
pub static PEEKS: AtomicU64 = AtomicU64::new(0);
pub static REFUNDS: AtomicU64 = AtomicU64::new(0);
/// Granted RESERVE and ACQUIRE requests (immediate ones too).
pub static RESERVED: AtomicU64 = AtomicU64::new(0);
/// ACQUIRE waits given back: the client went away or was unblocked.
pub static CANCELLED: AtomicU64 = AtomicU64::new(0);
/// Clients blocked in ACQUIRE now.
pub static WAITING: AtomicU64 = AtomicU64::new(0);
/// Bucket values alive in memory: created by commands, loads and copies,
/// removed in the type's `free` callback however a key goes away.
pub static BUCKETS: AtomicU64 = AtomicU64::new(0);

/// Counts one command event (main thread, or under the GIL: see above).
pub fn count(counter: &AtomicU64) {
    counter.store(counter.load(Relaxed).wrapping_add(1), Relaxed);
}

pub fn bucket_created() {
    BUCKETS.fetch_add(1, Relaxed);
}

pub fn bucket_freed() {
    BUCKETS.fetch_sub(1, Relaxed);
}

/// Moves a gauge up or down by one (main thread only).
pub fn adjust(gauge: &AtomicU64, up: bool) {
    let value = gauge.load(Relaxed);
    gauge.store(
        if up {
            value + 1
        } else {
            value.saturating_sub(1)
        },
        Relaxed,
    );
}

pub fn decision(limited: bool) {
    count(if limited { &LIMITED } else { &ALLOWED });
}

/// The fields of the module's INFO section, in order.
pub fn fields() -> [(&'static std::ffi::CStr, u64); 9] {
    let allowed = ALLOWED.load(Relaxed);
    let limited = LIMITED.load(Relaxed);
    [
        (c"calls", allowed.wrapping_add(limited)),
        (c"allowed", allowed),
        (c"limited", limited),
        (c"peeks", PEEKS.load(Relaxed)),
        (c"refunds", REFUNDS.load(Relaxed)),
        (c"buckets", BUCKETS.load(Relaxed)),
        (c"waiting", WAITING.load(Relaxed)),
        (c"reserved", RESERVED.load(Relaxed)),
        (c"cancelled", CANCELLED.load(Relaxed)),
    ]
}

/// The INFO callback: one section named after the module (`INFO charon`),
/// whose fields the server prefixes with `charon_`.
pub extern "C" fn info(ctx: *mut raw::RedisModuleInfoCtx, _for_crash_report: i32) {
    crate::guard::contain((), || {
        // SAFETY: the INFO context of this callback and a static C string.
        unsafe { api!(RedisModule_InfoAddSection)(ctx, c"".as_ptr()) };
        for (name, value) in fields() {
            // SAFETY: as above.
            unsafe { api!(RedisModule_InfoAddFieldULongLong)(ctx, name.as_ptr(), value) };
        }
    })
}
