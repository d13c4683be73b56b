//! What the server must offer: the load-time check of its version and of
//! the module API functions Charon calls, and the choices that depend on
//! the server (keyspace event class, Valkey's module options).

use redis_module::raw;
use std::sync::atomic::{AtomicI32, Ordering};

/// The oldest server Charon runs on, as `0x00MMmmpp`.
pub const MIN_SERVER_VERSION: u32 = 0x00_06_02_00;

/// The server functions every command or callback calls unconditionally.
/// `server::api!` names a function through `required::NAME`, so calling one
/// that is not listed here does not compile; a test checks the other way,
/// that every function listed is called somewhere.
macro_rules! api_table {
    ($($name:ident),* $(,)?) => {
        /// One item per required function, for `server::api!` to name.
        #[allow(non_upper_case_globals)]
        pub mod required {
            $(pub const $name: () = ();)*
        }

        /// The names of the required functions.
        pub const REQUIRED_API: &[&str] = &[$(stringify!($name)),*];

        /// Names of the required server functions this server lacks.
        pub fn missing_api() -> Vec<&'static str> {
            let mut missing = Vec::new();
            $(
                // SAFETY: copying the function pointer out of the static
                // takes no reference; the server wrote it before any call.
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
    RedisModule_GetContextFlags,
    RedisModule_GetSelectedDb,
    RedisModule_SelectDb,
    RedisModule_CreateString,
    RedisModule_BlockClient,
    RedisModule_SetDisconnectCallback,
    RedisModule_UnblockClient,
    RedisModule_GetBlockedClientHandle,
    RedisModule_GetBlockedClientPrivateData,
    RedisModule_CreateTimer,
    RedisModule_StopTimer,
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
    // SAFETY: copying a function pointer out of the server's table takes no
    // reference.
    let get = unsafe { raw::RedisModule_GetServerVersion }?;
    // SAFETY: takes no arguments.
    u32::try_from(unsafe { get() }).ok()
}

/// Valkey's major version, or `None` on Redis (or a server that cannot say).
pub(crate) fn valkey_major(ctx: *mut raw::RedisModuleCtx) -> Option<u32> {
    // SAFETY: copying a function pointer out of the server's table takes no
    // reference.
    let (get, field, free) = unsafe {
        (
            raw::RedisModule_GetServerInfo?,
            raw::RedisModule_ServerInfoGetFieldC?,
            raw::RedisModule_FreeServerInfo?,
        )
    };
    // SAFETY: the loading module's context and a static C string.
    let info = unsafe { get(ctx, c"server".as_ptr()) };
    if info.is_null() {
        return None;
    }
    // SAFETY: `info` is the live answer of `get`, freed below.
    let version = unsafe { field(info, c"valkey_version".as_ptr()) };
    let major = (!version.is_null())
        .then(|| {
            // SAFETY: a NUL-terminated string owned by `info`, still alive.
            unsafe { std::ffi::CStr::from_ptr(version) }
                .to_string_lossy()
                .into_owned()
        })
        .and_then(|version| version.split('.').next()?.parse().ok());
    // SAFETY: `info` came from `get` with this context; freed once.
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
    // SAFETY: copying a function pointer out of the server's table takes no
    // reference.
    let all = unsafe { raw::RedisModule_GetKeyspaceNotificationFlagsAll }
        // SAFETY: takes no arguments.
        .map(|flags| unsafe { flags() })
        .unwrap_or(0);
    if all & raw::REDISMODULE_NOTIFY_MODULE != 0 {
        EVENT_CLASS.store(raw::REDISMODULE_NOTIFY_MODULE, Ordering::Relaxed);
    }
}

/// The keyspace event class of Charon's events.
pub fn event_class() -> i32 {
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

    /// Every required function is called somewhere in the module (the
    /// compiler checks the other way round, through `required`).
    #[test]
    fn every_required_function_is_called() {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut text = String::new();
        let mut dirs = vec![src];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                } else {
                    let source = std::fs::read_to_string(path).unwrap();
                    // Leave out the list itself.
                    let listed = source.find("\napi_table!(").map_or(0..0, |start| {
                        start..start + source[start..].find(");").unwrap()
                    });
                    text.push_str(&source[..listed.start]);
                    text.push_str(&source[listed.end..]);
                }
            }
        }
        // Called for Charon by the SDK's `RedisType::create_data_type`.
        let by_sdk = ["RedisModule_CreateDataType"];
        let uncalled: Vec<&str> = REQUIRED_API
            .iter()
            .copied()
            .filter(|name| {
                !(by_sdk.contains(name)
                    || text.contains(&format!("api!({name})"))
                    || text.contains(&format!("raw::{name}")))
            })
            .collect();
        assert!(
            uncalled.is_empty(),
            "required but never called: {uncalled:?}"
        );
    }
}
