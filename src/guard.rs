//! What keeps the server up: the load-time check of the server's version and
//! API, and the panic boundary at every entry point from the server.

use redis_module::raw;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicI32, Ordering};

/// The oldest server Charon runs on, as `0x00MMmmpp`.
pub const MIN_SERVER_VERSION: u32 = 0x00_06_02_00;

/// Runs `body`; a panic inside it is logged (by the hook) and becomes
/// `on_panic` instead of unwinding into the server, which would abort it.
pub fn contain<R>(on_panic: R, body: impl FnOnce() -> R) -> R {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(on_panic)
}

/// Sends every panic message to the server log (through a `"%s"` format),
/// where an operator will look for it.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let message = format!("charon: internal error (contained, server unaffected): {info}");
        crate::server::log(std::ptr::null_mut(), c"warning", &message);
    }));
}

/// The server functions every command or callback calls unconditionally.
macro_rules! api_table {
    ($($name:ident),* $(,)?) => {
        /// Names of the required server functions this server lacks.
        pub fn missing_api() -> Vec<&'static str> {
            let mut missing = Vec::new();
            $(
                // Copying the pointer out of the static takes no reference.
                if unsafe { raw::$name }.is_none() {
                    missing.push(stringify!($name));
                }
            )*
            missing
        }
    };
}

api_table!(
    RedisModule_Alloc,
    RedisModule_Free,
    RedisModule_CreateDataType,
    RedisModule_CreateCommand,
    RedisModule_SetModuleOptions,
    RedisModule_StringPtrLen,
    RedisModule_CreateStringFromLongLong,
    RedisModule_FreeString,
    RedisModule_OpenKey,
    RedisModule_CloseKey,
    RedisModule_KeyType,
    RedisModule_DeleteKey,
    RedisModule_ModuleTypeGetType,
    RedisModule_ModuleTypeGetValue,
    RedisModule_ModuleTypeSetValue,
    RedisModule_SetAbsExpire,
    RedisModule_Milliseconds,
    RedisModule_ReplyWithLongLong,
    RedisModule_ReplyWithArray,
    RedisModule_ReplyWithNull,
    RedisModule_ReplyWithSimpleString,
    RedisModule_ReplyWithError,
    RedisModule_WrongArity,
    RedisModule_Replicate,
    RedisModule_ReplicateVerbatim,
    RedisModule_NotifyKeyspaceEvent,
    RedisModule_SignalModifiedKey,
    RedisModule_SaveUnsigned,
    RedisModule_SaveSigned,
    RedisModule_LoadUnsigned,
    RedisModule_LoadSigned,
    RedisModule_IsIOError,
    RedisModule_EmitAOF,
    RedisModule_DigestAddLongLong,
    RedisModule_DigestEndSequence,
    RedisModule_MallocSize,
    RedisModule_RegisterInfoFunc,
    RedisModule_InfoAddSection,
    RedisModule_InfoAddFieldULongLong,
    RedisModule_Log,
    RedisModule_GetServerVersion,
);

/// Whether Charon can run on a server of `version` (`0x00MMmmpp`, `None`
/// when the server cannot say) lacking the functions in `missing`. The
/// refusal is one line naming what is wrong.
pub fn check_server(version: Option<u32>, missing: &[&str]) -> Result<(), String> {
    if let Some(name) = missing.first() {
        return Err(format!(
            "charon: refusing to load: this server lacks the module API function {name}{} (Charon needs Redis 6.2 or newer, or Valkey)",
            if missing.len() > 1 {
                format!(" and {} more", missing.len() - 1)
            } else {
                String::new()
            }
        ));
    }
    match version {
        Some(v) if v >= MIN_SERVER_VERSION => Ok(()),
        Some(v) => Err(format!(
            "charon: refusing to load: server version {}.{}.{} is older than 6.2.0",
            (v >> 16) & 0xff,
            (v >> 8) & 0xff,
            v & 0xff
        )),
        None => Err("charon: refusing to load: the server does not report its version".into()),
    }
}

/// The server's version, if it can report it.
pub fn server_version() -> Option<u32> {
    let get = unsafe { raw::RedisModule_GetServerVersion }?;
    u32::try_from(unsafe { get() }).ok()
}

/// Valkey's major version, or `None` on Redis (or a server that cannot say).
pub(crate) fn valkey_major(ctx: *mut raw::RedisModuleCtx) -> Option<u32> {
    let (get, field, free) = unsafe {
        (
            raw::RedisModule_GetServerInfo?,
            raw::RedisModule_ServerInfoGetFieldC?,
            raw::RedisModule_FreeServerInfo?,
        )
    };
    let info = unsafe { get(ctx, c"server".as_ptr()) };
    if info.is_null() {
        return None;
    }
    let version = unsafe { field(info, c"valkey_version".as_ptr()) };
    let major = (!version.is_null())
        .then(|| {
            unsafe { std::ffi::CStr::from_ptr(version) }
                .to_string_lossy()
                .into_owned()
        })
        .and_then(|version| version.split('.').next()?.parse().ok());
    unsafe { free(ctx, info) };
    major
}

/// Valkey 9's module option: the module's values move with atomic slot
/// migration (`CLUSTER MIGRATESLOTS`), which rebuilds them from
/// `aof_rewrite` output. Without it Valkey refuses atomic migration for the
/// whole node. Set on Valkey 9+ only: Redis has not defined this bit.
pub const VALKEY_OPTION_HANDLE_ATOMIC_SLOT_MIGRATION: i32 = 1 << 5;

static EVENT_CLASS: AtomicI32 = AtomicI32::new(raw::REDISMODULE_NOTIFY_GENERIC);

/// Chooses the keyspace event class: the module class where the server has
/// it (Redis 7+, Valkey), generic elsewhere.
pub fn choose_event_class() {
    let all = unsafe { raw::RedisModule_GetKeyspaceNotificationFlagsAll }
        .map(|flags| unsafe { flags() })
        .unwrap_or(0);
    if all & raw::REDISMODULE_NOTIFY_MODULE != 0 {
        EVENT_CLASS.store(raw::REDISMODULE_NOTIFY_MODULE, Ordering::Relaxed);
    }
}

pub fn module_event_class() -> i32 {
    EVENT_CLASS.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_missing_functions_by_name() {
        let err = check_server(Some(0x00_07_00_0f), &["RedisModule_SetAbsExpire"]).unwrap_err();
        assert!(err.contains("RedisModule_SetAbsExpire"), "{err}");
        let err = check_server(Some(0x00_07_00_0f), &["A", "B", "C"]).unwrap_err();
        assert!(err.contains("A and 2 more"), "{err}");
    }

    #[test]
    fn refuses_old_servers() {
        let err = check_server(Some(0x00_06_00_10), &[]).unwrap_err();
        assert!(err.contains("6.0.16"), "{err}");
        assert!(check_server(None, &[]).is_err());
        assert!(check_server(Some(0x00_06_02_00), &[]).is_ok());
        assert!(check_server(Some(0x00_09_01_02), &[]).is_ok());
    }

    #[test]
    fn contains_panics() {
        std::panic::set_hook(Box::new(|_| {}));
        assert_eq!(contain(7, || panic!("boom")), 7);
        let _ = std::panic::take_hook();
        assert_eq!(contain(7, || 1), 1);
    }
}
