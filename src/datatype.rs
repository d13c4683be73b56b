//! The `charon-tb` module data type: its versioned methods table and the
//! callbacks the server calls on bucket values.
//!
//! Every callback is a short shim: it turns the raw pointer into a bucket
//! (one pair of helpers, `into_raw`/`from_raw`, so every callback agrees on
//! the type behind the pointer), runs safe code inside `guard::contain`, and
//! turns the result back.

use redis_module::native_types::RedisType;
use redis_module::raw;
use std::ffi::{c_int, c_void};

use crate::bucket::Bucket;
use crate::encoding::{self, RdbSink, RdbSource, ENCVER};
use crate::guard::contain;
use crate::metrics;
use crate::server::{api, log_io, string_bytes, Strings};

/// Redis requires type names of exactly 9 characters.
pub const TYPE_NAME: &str = "charon-tb";

/// The command that sets a bucket's whole state: what replication and AOF
/// rewrite emit instead of decisions (see `commands::setstate`).
pub const STATE_COMMAND: &std::ffi::CStr = c"CHARON.SETSTATE";

pub static BUCKET_TYPE: RedisType = RedisType::new(
    TYPE_NAME,
    ENCVER,
    raw::RedisModuleTypeMethods {
        // The layout this build was compiled against (the pinned header);
        // servers read only the fields their own version knows.
        version: raw::REDISMODULE_TYPE_METHOD_VERSION as u64,
        rdb_load: Some(rdb_load),
        rdb_save: Some(rdb_save),
        aof_rewrite: Some(aof_rewrite),
        mem_usage: Some(mem_usage),
        digest: Some(digest),
        free: Some(free),
        // No module-wide data: every bucket is self-contained in its key.
        aux_load: None,
        aux_save: None,
        aux_save_triggers: 0,
        free_effort: Some(free_effort),
        // Nothing to detach before a background free: a bucket refers to no
        // other key, client or thread.
        unlink: None,
        copy: Some(copy),
        defrag: Some(defrag),
        // The `2` variants only add the key's name and db to the call; a
        // bucket's size, free effort and copy do not depend on them.
        mem_usage2: None,
        free_effort2: None,
        unlink2: None,
        copy2: None,
        // No aux data (see aux_save above).
        aux_save2: None,
    },
);

/// The server's handle of the type, set when the module loads.
pub fn raw_type() -> *mut raw::RedisModuleType {
    *BUCKET_TYPE.raw_type.borrow()
}

/// Hands a bucket to the server as a value pointer.
pub fn into_raw(bucket: Box<Bucket>) -> *mut c_void {
    metrics::bucket_created();
    Box::into_raw(bucket).cast()
}

/// Takes a value pointer back from the server.
///
/// # Safety
/// `value` came from `into_raw` and the server no longer holds it.
pub unsafe fn from_raw(value: *mut c_void) -> Box<Bucket> {
    metrics::bucket_freed();
    Box::from_raw(value.cast::<Bucket>())
}

/// Borrows the bucket behind a value pointer the server holds.
///
/// # Safety
/// `value` came from `into_raw` and is alive for `'a`.
unsafe fn bucket<'a>(value: *const c_void) -> Option<&'a Bucket> {
    value.cast::<Bucket>().as_ref()
}

struct Io(*mut raw::RedisModuleIO);

impl RdbSource for Io {
    fn unsigned(&mut self) -> Option<u64> {
        let value = unsafe { api!(RedisModule_LoadUnsigned)(self.0) };
        self.ok().then_some(value)
    }
    fn signed(&mut self) -> Option<i64> {
        let value = unsafe { api!(RedisModule_LoadSigned)(self.0) };
        self.ok().then_some(value)
    }
}

impl Io {
    /// With `HANDLE_IO_ERRORS` set, a failed read returns 0 and raises this
    /// flag instead of killing the server.
    fn ok(&self) -> bool {
        unsafe { api!(RedisModule_IsIOError)(self.0) == 0 }
    }
}

impl RdbSink for Io {
    fn unsigned(&mut self, value: u64) {
        unsafe { api!(RedisModule_SaveUnsigned)(self.0, value) };
    }
    fn signed(&mut self, value: i64) {
        unsafe { api!(RedisModule_SaveSigned)(self.0, value) };
    }
}

/// The arguments of the state command for `bucket`, after the key (the
/// readable form). Every value is at most `i64::MAX`.
pub fn state_args(bucket: &Bucket) -> Vec<i64> {
    bucket.state_values().map(|value| value as i64).collect()
}

extern "C" fn rdb_load(rdb: *mut raw::RedisModuleIO, encver: c_int) -> *mut c_void {
    contain(std::ptr::null_mut(), || {
        match encoding::decode(encver, &mut Io(rdb)) {
            Ok(bucket) => into_raw(Box::new(bucket)),
            Err(error) => {
                // The server then reports the RDB (or RESTORE payload) as bad.
                log_io(
                    rdb,
                    c"warning",
                    &format!("charon: cannot load a bucket: {error}"),
                );
                std::ptr::null_mut()
            }
        }
    })
}

extern "C" fn rdb_save(rdb: *mut raw::RedisModuleIO, value: *mut c_void) {
    contain((), || {
        if let Some(bucket) = unsafe { bucket(value) } {
            encoding::encode(bucket, &mut Io(rdb));
        }
    })
}

/// Rewrites a bucket as the one state command that rebuilds it exactly
/// (the server adds the key's expiry after it).
extern "C" fn aof_rewrite(
    aof: *mut raw::RedisModuleIO,
    key: *mut raw::RedisModuleString,
    value: *mut c_void,
) {
    contain((), || {
        let Some(bucket) = (unsafe { bucket(value) }) else {
            return;
        };
        let strings = Strings::new(std::ptr::null_mut(), &state_args(bucket));
        let argv = strings.argv();
        let key = string_bytes(key);
        unsafe {
            api!(RedisModule_EmitAOF)(
                aof,
                STATE_COMMAND.as_ptr(),
                Strings::FORMAT_COPIED_KEY.as_ptr(),
                key.as_ptr(),
                key.len(),
                argv.as_ptr(),
                argv.len(),
            )
        };
    })
}

/// The bytes the allocator really gave this bucket (size classes included).
extern "C" fn mem_usage(value: *const c_void) -> usize {
    contain(0, || {
        let Some(bucket) = (unsafe { bucket(value) }) else {
            return 0;
        };
        let malloc_size =
            |ptr: *const c_void, fallback: usize| match unsafe { raw::RedisModule_MallocSize } {
                Some(size) => unsafe { size(ptr.cast_mut()) },
                None => fallback,
            };
        let heap = bucket
            .heap()
            .map_or(0, |(ptr, size)| malloc_size(ptr.cast(), size));
        malloc_size(value, std::mem::size_of::<Bucket>()) + heap
    })
}

/// Digests every logical field, so `DEBUG DIGEST-VALUE` tells buckets apart.
extern "C" fn digest(md: *mut raw::RedisModuleDigest, value: *mut c_void) {
    contain((), || {
        let Some(bucket) = (unsafe { bucket(value) }) else {
            return;
        };
        for field in state_args(bucket) {
            unsafe { api!(RedisModule_DigestAddLongLong)(md, field) };
        }
        unsafe { api!(RedisModule_DigestEndSequence)(md) };
    })
}

extern "C" fn free(value: *mut c_void) {
    contain((), || {
        if !value.is_null() {
            drop(unsafe { from_raw(value) });
        }
    })
}

/// One or two allocations: always cheap enough to free on the main thread.
extern "C" fn free_effort(_key: *mut raw::RedisModuleString, _value: *const c_void) -> usize {
    2
}

extern "C" fn copy(
    _from_key: *mut raw::RedisModuleString,
    _to_key: *mut raw::RedisModuleString,
    value: *const c_void,
) -> *mut c_void {
    contain(std::ptr::null_mut(), || match unsafe { bucket(value) } {
        Some(bucket) => into_raw(Box::new(bucket.clone())),
        None => std::ptr::null_mut(),
    })
}

/// Moves a bucket's allocations where the defragmenter wants them.
extern "C" fn defrag(
    ctx: *mut raw::RedisModuleDefragCtx,
    _key: *mut raw::RedisModuleString,
    value: *mut *mut c_void,
) -> c_int {
    contain(0, || {
        let Some(defrag_alloc) = (unsafe { raw::RedisModule_DefragAlloc }) else {
            return 0;
        };
        let Some(slot) = (unsafe { value.as_mut() }) else {
            return 0;
        };
        let moved = unsafe { defrag_alloc(ctx, *slot) };
        if !moved.is_null() {
            *slot = moved;
        }
        if let Some(bucket) = unsafe { slot.cast::<Bucket>().as_mut() } {
            // The server's defragmenter returns a copy of the same bytes.
            unsafe { bucket.move_bands(|bands| defrag_alloc(ctx, bands.cast()).cast()) };
        }
        0
    })
}
