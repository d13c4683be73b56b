//! The `charon-tb` module data type: its versioned methods table, the
//! callbacks the server calls on bucket values, and bucket keys as commands
//! see them.
//!
//! Every callback is a short shim: it turns the raw pointer into a bucket
//! (one pair of helpers, `into_raw`/`from_raw`, so every callback agrees on
//! the type behind the pointer), runs safe code inside `guard::contain`, and
//! turns the result back.

use redis_module::native_types::RedisType;
use redis_module::raw;
use std::ffi::{c_int, c_void, CStr};
use std::ptr::NonNull;

use crate::bucket::Bucket;
use crate::formats::packed;
use crate::formats::rdb::{self, RdbSink, RdbSource, ENCVER};
use crate::formats::readable::state_args;
use crate::guard::contain;
use crate::metrics;
use crate::server::{api, log_io, string_bytes, Ctx, Key, KeyValue, Strings};

/// Redis requires type names of exactly 9 characters.
pub const TYPE_NAME: &str = "charon-tb";

/// The command that sets a bucket's whole state: what replication and AOF
/// rewrite emit instead of decisions (see `commands::setstate`).
pub const STATE_COMMAND: &CStr = c"CHARON.SETSTATE";

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
    // SAFETY: the caller's contract: a `Box<Bucket>` no one else holds.
    unsafe { Box::from_raw(value.cast::<Bucket>()) }
}

/// Borrows the bucket behind a value pointer the server holds.
///
/// # Safety
/// `value` came from `into_raw` and is alive for `'a`.
unsafe fn bucket<'a>(value: *const c_void) -> Option<&'a Bucket> {
    // SAFETY: the caller's contract.
    unsafe { value.cast::<Bucket>().as_ref() }
}

/// Why a key cannot be used as a bucket.
pub struct WrongType;

/// A key opened by a command, known to be empty or to hold a bucket.
pub struct BucketKey {
    key: Key,
    name: *mut raw::RedisModuleString,
    /// The bucket under the key, read once when it was opened.
    bucket: Option<NonNull<Bucket>>,
}

impl BucketKey {
    /// Opens `name`, for writing or only reading. `Ok(None)`: opened for
    /// reading and missing (the server opens no key then).
    pub fn open(
        ctx: Ctx,
        name: *mut raw::RedisModuleString,
        write: bool,
    ) -> Result<Option<BucketKey>, WrongType> {
        let Some(mut key) = ctx.open_key(name, write) else {
            return Ok(None);
        };
        // SAFETY: only `Bucket`s are ever stored under this type's handle
        // (`set`, `rdb_load` and `copy` all store `into_raw` pointers).
        let bucket = match unsafe { key.value::<Bucket>(raw_type()) } {
            KeyValue::Empty => None,
            KeyValue::Value(bucket) => Some(NonNull::from(bucket)),
            KeyValue::OtherType => return Err(WrongType),
        };
        Ok(Some(BucketKey { key, name, bucket }))
    }

    pub fn name(&self) -> *mut raw::RedisModuleString {
        self.name
    }

    pub fn bucket(&mut self) -> Option<&mut Bucket> {
        // SAFETY: the bucket belongs to the key, which stays open (and is
        // changed only through `self`) while `self` is borrowed.
        self.bucket.map(|mut bucket| unsafe { bucket.as_mut() })
    }

    /// Stores a new bucket under the key (replacing any).
    pub fn set(&mut self, bucket: Bucket) -> bool {
        let value = into_raw(Box::new(bucket));
        // SAFETY: `value` comes from `into_raw`, which `free` takes back.
        if !unsafe { self.key.set_value(raw_type(), value) } {
            // SAFETY: the server did not take ownership of `value`.
            drop(unsafe { from_raw(value) });
            self.bucket = None;
            return false;
        }
        self.bucket = NonNull::new(value.cast());
        true
    }

    pub fn delete(&mut self) {
        self.key.delete();
        self.bucket = None;
    }

    pub fn expire_at(&mut self, at_ms: i64) {
        self.key.expire_at(at_ms);
    }
}

/// Propagates `bucket`'s state (the packed `CHARON.SETSTATE`) to replicas
/// and the AOF in place of the command that ran.
pub fn replicate_state(ctx: Ctx, key: *mut raw::RedisModuleString, bucket: &Bucket) {
    let packed = packed::pack(bucket);
    ctx.replicate_with_bytes(STATE_COMMAND, key, packed.as_bytes());
}

struct Io(*mut raw::RedisModuleIO);

impl RdbSource for Io {
    fn unsigned(&mut self) -> Option<u64> {
        // SAFETY: the I/O handle of the running `rdb_load`.
        let value = unsafe { api!(RedisModule_LoadUnsigned)(self.0) };
        self.ok().then_some(value)
    }
    fn signed(&mut self) -> Option<i64> {
        // SAFETY: the I/O handle of the running `rdb_load`.
        let value = unsafe { api!(RedisModule_LoadSigned)(self.0) };
        self.ok().then_some(value)
    }
}

impl Io {
    /// With `HANDLE_IO_ERRORS` set, a failed read returns 0 and raises this
    /// flag instead of killing the server.
    fn ok(&self) -> bool {
        // SAFETY: the I/O handle of the running callback.
        unsafe { api!(RedisModule_IsIOError)(self.0) == 0 }
    }
}

impl RdbSink for Io {
    fn unsigned(&mut self, value: u64) {
        // SAFETY: the I/O handle of the running `rdb_save`.
        unsafe { api!(RedisModule_SaveUnsigned)(self.0, value) };
    }
    fn signed(&mut self, value: i64) {
        // SAFETY: the I/O handle of the running `rdb_save`.
        unsafe { api!(RedisModule_SaveSigned)(self.0, value) };
    }
}

extern "C" fn rdb_load(rdb: *mut raw::RedisModuleIO, encver: c_int) -> *mut c_void {
    contain(std::ptr::null_mut(), || {
        match rdb::decode(encver, &mut Io(rdb)) {
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
        // SAFETY: the server passes a value of this type, alive for the call.
        if let Some(bucket) = unsafe { bucket(value) } {
            rdb::encode(bucket, &mut Io(rdb));
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
        // SAFETY: the server passes a value of this type, alive for the call.
        let Some(bucket) = (unsafe { bucket(value) }) else {
            return;
        };
        let strings = Strings::new(std::ptr::null_mut(), &state_args(bucket));
        let argv = strings.argv();
        let key = string_bytes(key);
        // SAFETY: the AOF handle of the running rewrite; the key bytes and
        // the strings outlive the call, which copies them.
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
        // SAFETY: the server passes a value of this type, alive for the call.
        let Some(bucket) = (unsafe { bucket(value) }) else {
            return 0;
        };
        let malloc_size =
            // SAFETY: copying the function pointer takes no reference; it
            // is called on allocations of the server's allocator.
            |ptr: *const c_void, fallback: usize| match unsafe { raw::RedisModule_MallocSize } {
                // SAFETY: as above.
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
        // SAFETY: the server passes a value of this type, alive for the call.
        let Some(bucket) = (unsafe { bucket(value) }) else {
            return;
        };
        for field in state_args(bucket) {
            // SAFETY: the digest handle of the running callback.
            unsafe { api!(RedisModule_DigestAddLongLong)(md, field) };
        }
        // SAFETY: as above.
        unsafe { api!(RedisModule_DigestEndSequence)(md) };
    })
}

extern "C" fn free(value: *mut c_void) {
    contain((), || {
        if !value.is_null() {
            // SAFETY: the server hands the value back for good.
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
    // SAFETY: the server passes a value of this type, alive for the call.
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
        // SAFETY: copying the function pointer out of the static takes no
        // reference.
        let Some(defrag_alloc) = (unsafe { raw::RedisModule_DefragAlloc }) else {
            return 0;
        };
        // SAFETY: the server passes the address of the key's value pointer.
        let Some(slot) = (unsafe { value.as_mut() }) else {
            return 0;
        };
        // SAFETY: `*slot` is this value's allocation, from the server's
        // allocator.
        let moved = unsafe { defrag_alloc(ctx, *slot) };
        if !moved.is_null() {
            *slot = moved;
        }
        // SAFETY: the slot holds this type's value (moved or not).
        if let Some(bucket) = unsafe { slot.cast::<Bucket>().as_mut() } {
            // SAFETY: the server's defragmenter returns a copy of the same
            // bytes (or null), as `move_bands` requires.
            unsafe { bucket.move_bands(|bands| defrag_alloc(ctx, bands.cast()).cast()) };
        }
        0
    })
}
