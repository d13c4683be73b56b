//! Counters for `INFO charon`, kept in atomics: buckets are freed on the
//! server's lazy-free thread as well as the main thread.

use redis_module::raw;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::server::api;

pub static CALLS: AtomicU64 = AtomicU64::new(0);
pub static ALLOWED: AtomicU64 = AtomicU64::new(0);
pub static LIMITED: AtomicU64 = AtomicU64::new(0);
pub static PEEKS: AtomicU64 = AtomicU64::new(0);
pub static REFUNDS: AtomicU64 = AtomicU64::new(0);
/// Bucket values alive in memory: created by commands, loads and copies,
/// removed in the type's `free` callback however a key goes away.
pub static BUCKETS: AtomicU64 = AtomicU64::new(0);

pub fn count(counter: &AtomicU64) {
    counter.fetch_add(1, Relaxed);
}

pub fn bucket_created() {
    BUCKETS.fetch_add(1, Relaxed);
}

pub fn bucket_freed() {
    BUCKETS.fetch_sub(1, Relaxed);
}

pub fn decision(limited: bool) {
    count(&CALLS);
    count(if limited { &LIMITED } else { &ALLOWED });
}

/// The fields of the module's INFO section, in order.
pub fn fields() -> [(&'static std::ffi::CStr, u64); 6] {
    [
        (c"calls", CALLS.load(Relaxed)),
        (c"allowed", ALLOWED.load(Relaxed)),
        (c"limited", LIMITED.load(Relaxed)),
        (c"peeks", PEEKS.load(Relaxed)),
        (c"refunds", REFUNDS.load(Relaxed)),
        (c"buckets", BUCKETS.load(Relaxed)),
    ]
}

/// The INFO callback: one section named after the module (`INFO charon`),
/// whose fields the server prefixes with `charon_`.
pub extern "C" fn info(ctx: *mut raw::RedisModuleInfoCtx, _for_crash_report: i32) {
    crate::guard::contain((), || {
        unsafe { api!(RedisModule_InfoAddSection)(ctx, c"".as_ptr()) };
        for (name, value) in fields() {
            unsafe { api!(RedisModule_InfoAddFieldULongLong)(ctx, name.as_ptr(), value) };
        }
    })
}
