//! Thin, safe wrappers over the server's module API. They know no domain
//! type: a module value is a type handle and a pointer, and the type's own
//! module (`datatype`) says what is behind it.
//!
//! Every function called through `api!` is listed in `compat::required` (a
//! call to one that is not does not compile) and checked to exist when the
//! module loads, so `api!` cannot fail after a successful load.

use redis_module::raw;
use std::ffi::{c_int, c_void, CStr, CString};
use std::ptr::NonNull;

/// The server's function `name`, present by the load-time check.
macro_rules! api {
    ($name:ident) => {{
        // Does not compile unless `name` is in the load-time check's list.
        #[allow(clippy::let_unit_value)]
        let () = $crate::compat::required::$name;
        // SAFETY: copying the function pointer out of the static takes no
        // reference; the server filled it in before any call reaches here.
        #[allow(unused_unsafe)]
        let function = unsafe { redis_module::raw::$name };
        function.expect(concat!(
            stringify!($name),
            " is checked when the module loads"
        ))
    }};
}
pub(crate) use api;

/// The context of one command call.
#[derive(Clone, Copy)]
pub struct Ctx(NonNull<raw::RedisModuleCtx>);

/// A command's arguments, the command name at index 0.
#[derive(Clone, Copy)]
pub struct Args<'a> {
    argv: &'a [*mut raw::RedisModuleString],
}

impl<'a> Args<'a> {
    /// # Safety
    /// `argv` holds `argc` valid strings that outlive `'a` (true for the
    /// duration of a command call).
    pub unsafe fn new(argv: *mut *mut raw::RedisModuleString, argc: c_int) -> Args<'a> {
        let len = usize::try_from(argc).unwrap_or(0);
        let argv = if argv.is_null() || len == 0 {
            &[]
        } else {
            // SAFETY: the caller's contract: `argc` valid strings at `argv`.
            unsafe { std::slice::from_raw_parts(argv, len) }
        };
        Args { argv }
    }

    pub fn len(&self) -> usize {
        self.argv.len()
    }

    /// The bytes of argument `index` (binary-safe).
    pub fn bytes(&self, index: usize) -> &'a [u8] {
        string_bytes(self.argv[index])
    }

    pub fn get(&self, index: usize) -> Option<&'a [u8]> {
        (index < self.argv.len()).then(|| self.bytes(index))
    }

    pub fn raw(&self, index: usize) -> *mut raw::RedisModuleString {
        self.argv[index]
    }
}

/// The bytes of a server string (binary-safe).
pub fn string_bytes<'a>(string: *const raw::RedisModuleString) -> &'a [u8] {
    let mut len = 0usize;
    // SAFETY: `string` is a server string alive for the call.
    let ptr = unsafe { api!(RedisModule_StringPtrLen)(string, &mut len) };
    if ptr.is_null() {
        return &[];
    }
    // SAFETY: the server answers the string's buffer and its length; the
    // buffer lives as long as the string.
    unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len) }
}

/// Starts loading the cache line at `ptr`. A bucket is usually cold (one key
/// among millions): the load then overlaps with parsing the arguments and
/// reading the clock instead of stalling the decision. A hint only: any
/// address is fine, and it is a no-op where there is no stable intrinsic.
#[inline(always)]
fn prefetch(ptr: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch never faults and changes no state.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>(ptr.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = ptr;
}

/// What a key holds, for a module type whose values are `T`.
pub enum KeyValue<'k, T> {
    Empty,
    Value(&'k mut T),
    OtherType,
}

/// A module type's handle, as the server gave it at registration.
pub type TypeHandle = *mut raw::RedisModuleType;

/// An open key, closed when dropped.
pub struct Key {
    ptr: NonNull<raw::RedisModuleKey>,
}

impl Drop for Key {
    fn drop(&mut self) {
        // SAFETY: the key was opened by `Ctx::open_key` and is closed once.
        unsafe { api!(RedisModule_CloseKey)(self.ptr.as_ptr()) };
    }
}

impl Key {
    /// The value under this key, when it is of module type `handle`.
    ///
    /// # Safety
    /// Every value of type `handle` is a `T` (the type's module guarantees
    /// it by storing only `T`s under its handle).
    pub unsafe fn value<T>(&mut self, handle: TypeHandle) -> KeyValue<'_, T> {
        let key = self.ptr.as_ptr();
        // SAFETY: `key` is open for the life of `self`.
        match unsafe { api!(RedisModule_KeyType)(key) } as isize {
            raw::REDISMODULE_KEYTYPE_EMPTY => KeyValue::Empty,
            raw::REDISMODULE_KEYTYPE_MODULE
                // SAFETY: as above; the key holds a module value.
                if unsafe { api!(RedisModule_ModuleTypeGetType)(key) } == handle =>
            {
                // SAFETY: as above.
                let value = unsafe { api!(RedisModule_ModuleTypeGetValue)(key) };
                prefetch(value.cast_const().cast());
                // SAFETY: a value of `handle` is a `T` (the caller's
                // contract), owned by the key, which `self` borrows.
                match unsafe { value.cast::<T>().as_mut() } {
                    Some(value) => KeyValue::Value(value),
                    None => KeyValue::OtherType,
                }
            }
            _ => KeyValue::OtherType,
        }
    }

    /// Stores `value` as a value of module type `handle` under this key
    /// (empty, or holding a value of that type, which the server frees).
    /// On `false` the server did not take `value`: the caller still owns it.
    ///
    /// # Safety
    /// `value` is a pointer the type's `free` callback accepts.
    pub unsafe fn set_value(&mut self, handle: TypeHandle, value: *mut c_void) -> bool {
        // SAFETY: the key is open for writing; the caller's contract on
        // `value`.
        let status =
            unsafe { api!(RedisModule_ModuleTypeSetValue)(self.ptr.as_ptr(), handle, value) };
        status == raw::REDISMODULE_OK as c_int
    }

    /// Sets the key's expiry to an absolute time (ms, server clock).
    pub fn expire_at(&mut self, at_ms: i64) {
        // SAFETY: the key is open for the life of `self`.
        unsafe { api!(RedisModule_SetAbsExpire)(self.ptr.as_ptr(), at_ms) };
    }

    pub fn delete(&mut self) {
        // SAFETY: the key is open for the life of `self`.
        unsafe { api!(RedisModule_DeleteKey)(self.ptr.as_ptr()) };
    }
}

impl Ctx {
    /// # Safety
    /// `ctx` is the context the server passed to the current call.
    pub unsafe fn new(ctx: *mut raw::RedisModuleCtx) -> Option<Ctx> {
        NonNull::new(ctx).map(Ctx)
    }

    pub fn as_ptr(&self) -> *mut raw::RedisModuleCtx {
        self.0.as_ptr()
    }

    pub fn open_key(&self, name: *mut raw::RedisModuleString, write: bool) -> Option<Key> {
        let mode = if write {
            raw::REDISMODULE_READ | raw::REDISMODULE_WRITE
        } else {
            raw::REDISMODULE_READ
        };
        // SAFETY: the context and the key name are the current call's.
        let key = unsafe { api!(RedisModule_OpenKey)(self.as_ptr(), name, mode as c_int) };
        NonNull::new(key.cast::<raw::RedisModuleKey>()).map(|ptr| Key { ptr })
    }

    /// The server's clock in milliseconds, read once per command. (The
    /// server's cached time is cheaper, but is only refreshed once per event
    /// loop iteration: a deep pipeline would see time stand still.)
    pub fn now_ms(&self) -> i64 {
        // SAFETY: reads the server's clock; no arguments.
        unsafe { api!(RedisModule_Milliseconds)() }
    }

    pub fn reply_i64(&self, value: i64) {
        // SAFETY: `self` holds the current call's context; every pointer passed is
        // valid for the call.
        unsafe { api!(RedisModule_ReplyWithLongLong)(self.as_ptr(), value) };
    }

    pub fn reply_array(&self, len: usize) {
        // SAFETY: `self` holds the current call's context; every pointer passed is
        // valid for the call.
        unsafe { api!(RedisModule_ReplyWithArray)(self.as_ptr(), len as _) };
    }

    pub fn reply_null(&self) {
        // SAFETY: `self` holds the current call's context; every pointer passed is
        // valid for the call.
        unsafe { api!(RedisModule_ReplyWithNull)(self.as_ptr()) };
    }

    pub fn reply_ok(&self) {
        // SAFETY: `self` holds the current call's context; every pointer passed is
        // valid for the call.
        unsafe { api!(RedisModule_ReplyWithSimpleString)(self.as_ptr(), c"OK".as_ptr()) };
    }

    /// Replies with an error; `message` starts with its code (`ERR ...`).
    pub fn reply_error(&self, message: &str) {
        let message = c_string(message);
        // SAFETY: `self` holds the current call's context; every pointer passed is
        // valid for the call.
        unsafe { api!(RedisModule_ReplyWithError)(self.as_ptr(), message.as_ptr()) };
    }

    pub fn reply_wrong_type(&self) {
        self.reply_error("WRONGTYPE Operation against a key holding the wrong kind of value");
    }

    pub fn reply_wrong_arity(&self) {
        // SAFETY: `self` holds the current call's context; every pointer passed is
        // valid for the call.
        unsafe { api!(RedisModule_WrongArity)(self.as_ptr()) };
    }

    /// Propagates `command key bytes` to replicas and the AOF instead of the
    /// command that ran.
    pub fn replicate_with_bytes(
        &self,
        command: &CStr,
        key: *mut raw::RedisModuleString,
        bytes: &[u8],
    ) {
        // SAFETY: `self` holds the current call's context; every pointer passed is
        // valid for the call.
        unsafe {
            api!(RedisModule_Replicate)(
                self.as_ptr(),
                command.as_ptr(),
                c"sb".as_ptr(),
                key,
                bytes.as_ptr(),
                bytes.len(),
            )
        };
    }

    /// Propagates `DEL key` instead of the command that ran.
    pub fn replicate_del(&self, key: *mut raw::RedisModuleString) {
        // SAFETY: `self` holds the current call's context; every pointer passed is
        // valid for the call.
        unsafe { api!(RedisModule_Replicate)(self.as_ptr(), c"DEL".as_ptr(), c"s".as_ptr(), key) };
    }

    /// Tells `WATCH` and client-side caching that the key changed. The
    /// module sets `NO_IMPLICIT_SIGNAL_MODIFIED`, so a request that changed
    /// nothing (limited, cost 0) does not disturb watchers.
    pub fn signal_modified(&self, key: *mut raw::RedisModuleString) {
        // SAFETY: `self` holds the current call's context; every pointer passed is
        // valid for the call.
        unsafe { api!(RedisModule_SignalModifiedKey)(self.as_ptr(), key) };
    }

    /// Propagates the command exactly as it was called.
    pub fn replicate_verbatim(&self) {
        // SAFETY: `self` holds the current call's context; every pointer passed is
        // valid for the call.
        unsafe { api!(RedisModule_ReplicateVerbatim)(self.as_ptr()) };
    }

    /// Fires a keyspace event of `class` (`compat::event_class`).
    pub fn notify(&self, class: c_int, event: &CStr, key: *mut raw::RedisModuleString) {
        // SAFETY: `self` holds the current call's context; every pointer passed is
        // valid for the call.
        unsafe { api!(RedisModule_NotifyKeyspaceEvent)(self.as_ptr(), class, event.as_ptr(), key) };
    }
}

/// A client blocked by `Ctx::block_client`, until `unblock` hands it back.
pub type BlockedClient = NonNull<raw::RedisModuleBlockedClient>;

/// The callbacks of a blocked client (see `RedisModule_BlockClient`).
pub struct BlockCallbacks {
    /// Called in the client's context after `unblock`: sends the reply.
    pub reply: raw::RedisModuleCmdFunc,
    /// Called when `CLIENT UNBLOCK` ends the wait.
    pub timeout: raw::RedisModuleCmdFunc,
    /// Frees what `unblock` handed over.
    pub free: Option<unsafe extern "C" fn(*mut raw::RedisModuleCtx, *mut c_void)>,
    /// Called when the client goes away while blocked.
    pub disconnect: raw::RedisModuleDisconnectFunc,
}

impl Ctx {
    /// Whether this call may block its client: not inside `MULTI`, a
    /// script or a function, nor in a context that denies blocking.
    pub fn can_block(&self) -> bool {
        // SAFETY: `self` holds the current call's context.
        let flags = unsafe { api!(RedisModule_GetContextFlags)(self.as_ptr()) } as u32;
        flags
            & (raw::REDISMODULE_CTX_FLAGS_MULTI
                | raw::REDISMODULE_CTX_FLAGS_LUA
                | raw::REDISMODULE_CTX_FLAGS_DENY_BLOCKING)
            == 0
    }

    /// The database the call runs in.
    pub fn selected_db(&self) -> c_int {
        // SAFETY: `self` holds the current call's context.
        unsafe { api!(RedisModule_GetSelectedDb)(self.as_ptr()) }
    }

    /// Makes `db` the database of the keys this context opens.
    pub fn select_db(&self, db: c_int) -> bool {
        // SAFETY: `self` holds the current call's context.
        unsafe { api!(RedisModule_SelectDb)(self.as_ptr(), db) == raw::REDISMODULE_OK as c_int }
    }

    /// A server string holding `bytes`, freed when dropped.
    pub fn string(&self, bytes: &[u8]) -> OwnedString {
        // SAFETY: `self` holds the current call's context; the server copies
        // `bytes`.
        let ptr = unsafe {
            api!(RedisModule_CreateString)(self.as_ptr(), bytes.as_ptr().cast(), bytes.len())
        };
        OwnedString { ctx: *self, ptr }
    }

    /// Blocks the calling client (with no server timeout: the module ends
    /// the wait); `None` when the server refuses.
    pub fn block_client(&self, callbacks: &BlockCallbacks) -> Option<BlockedClient> {
        // SAFETY: `self` holds the current command call's context; the
        // callbacks contain their panics.
        let bc = unsafe {
            api!(RedisModule_BlockClient)(
                self.as_ptr(),
                callbacks.reply,
                callbacks.timeout,
                callbacks.free,
                0,
            )
        };
        let bc = NonNull::new(bc)?;
        // SAFETY: `bc` was just made by the server.
        unsafe { api!(RedisModule_SetDisconnectCallback)(bc.as_ptr(), callbacks.disconnect) };
        Some(bc)
    }

    /// The blocked client of a reply or timeout callback's context.
    pub fn blocked_client(&self) -> Option<BlockedClient> {
        // SAFETY: `self` holds the current callback's context.
        NonNull::new(unsafe { api!(RedisModule_GetBlockedClientHandle)(self.as_ptr()) })
    }

    /// What `unblock` handed to the reply callback of this context.
    pub fn blocked_data(&self) -> *mut c_void {
        // SAFETY: `self` holds the current reply callback's context.
        unsafe { api!(RedisModule_GetBlockedClientPrivateData)(self.as_ptr()) }
    }

    /// Calls `callback(ctx, data)` after `ms` milliseconds.
    pub fn create_timer(
        &self,
        ms: i64,
        callback: raw::RedisModuleTimerProc,
        data: *mut c_void,
    ) -> raw::RedisModuleTimerID {
        // SAFETY: `self` holds a context of this module; the callback
        // contains its panics.
        unsafe { api!(RedisModule_CreateTimer)(self.as_ptr(), ms, callback, data) }
    }

    /// Stops a timer that has not fired; false if there is none.
    pub fn stop_timer(&self, id: raw::RedisModuleTimerID) -> bool {
        let mut data = std::ptr::null_mut();
        // SAFETY: `self` holds a context of this module; `data` is written.
        let status = unsafe { api!(RedisModule_StopTimer)(self.as_ptr(), id, &mut data) };
        status == raw::REDISMODULE_OK as c_int
    }
}

/// Ends a blocked client's wait: its reply callback runs with `data` (or,
/// for a client already gone, only the free callback).
///
/// # Safety
/// `bc` is blocked and not yet handed back; `data` is what the free
/// callback expects.
pub unsafe fn unblock(bc: BlockedClient, data: *mut c_void) {
    // SAFETY: the caller's contract.
    unsafe { api!(RedisModule_UnblockClient)(bc.as_ptr(), data) };
}

/// A server string made by `Ctx::string`.
pub struct OwnedString {
    ctx: Ctx,
    ptr: *mut raw::RedisModuleString,
}

impl OwnedString {
    pub fn as_ptr(&self) -> *mut raw::RedisModuleString {
        self.ptr
    }
}

impl Drop for OwnedString {
    fn drop(&mut self) {
        // SAFETY: made with this context by `Ctx::string`, freed once.
        unsafe { api!(RedisModule_FreeString)(self.ctx.as_ptr(), self.ptr) };
    }
}

/// Server strings for the integer arguments of a replicated or rewritten
/// command (created here, freed on drop).
pub struct Strings {
    ctx: *mut raw::RedisModuleCtx,
    argv: Vec<*mut raw::RedisModuleString>,
}

impl Strings {
    /// The format for `key_ptr, key_len, argv, argc`: the key is copied. AOF
    /// rewrite builds its key on the stack, and taking a reference to that
    /// (`s` or `v`) crashes the server.
    pub const FORMAT_COPIED_KEY: &'static CStr = c"bv";

    pub fn new(ctx: *mut raw::RedisModuleCtx, args: &[i64]) -> Strings {
        let argv = args
            .iter()
            // SAFETY: `ctx` is the current call's context, or null (AOF
            // rewrite), which makes a string the caller frees.
            .map(|&arg| unsafe { api!(RedisModule_CreateStringFromLongLong)(ctx, arg) })
            .collect();
        Strings { ctx, argv }
    }

    pub fn argv(&self) -> &[*mut raw::RedisModuleString] {
        &self.argv
    }
}

impl Drop for Strings {
    fn drop(&mut self) {
        // The server took its own references when it copied the command.
        for &string in &self.argv {
            // SAFETY: made by `new` with the same context, freed once.
            unsafe { api!(RedisModule_FreeString)(self.ctx, string) };
        }
    }
}

/// A C string from text that may hold NUL bytes (they become spaces).
pub fn c_string(text: &str) -> CString {
    CString::new(text.replace('\0', " ")).unwrap_or_default()
}

/// Logs `message` at `level` ("warning", "notice", ...). The message is
/// passed as an argument to a fixed `"%s"` format, never as the format: text
/// from clients or panics may contain `%`.
pub fn log(ctx: *mut raw::RedisModuleCtx, level: &CStr, message: &str) {
    // SAFETY: copying the function pointer out of the static takes no
    // reference.
    let Some(log) = (unsafe { raw::RedisModule_Log }) else {
        return;
    };
    let message = c_string(message);
    // SAFETY: a fixed "%s" format and one C string for it; `ctx` is the
    // current call's context, or null, which the server accepts.
    unsafe { log(ctx, level.as_ptr(), c"%s".as_ptr(), message.as_ptr()) };
}

/// Logs on an RDB/AOF stream, as the server's I/O error log does.
pub fn log_io(io: *mut raw::RedisModuleIO, level: &CStr, message: &str) {
    // SAFETY: copying the function pointer out of the static takes no
    // reference.
    let Some(log) = (unsafe { raw::RedisModule_LogIOError }) else {
        return log(std::ptr::null_mut(), level, message);
    };
    let message = c_string(message);
    // SAFETY: a fixed "%s" format and one C string for it; `io` is the
    // current callback's I/O handle.
    unsafe { log(io, level.as_ptr(), c"%s".as_ptr(), message.as_ptr()) };
}
