//! Loading the module: check the server and the module arguments, then
//! register the type, the commands and the INFO section, in that order, or
//! refuse cleanly.

use redis_module::raw;
use std::ffi::c_int;

use crate::{commands, compat, datatype, guard, metrics, module_args, server};

/// The module's name: `MODULE LIST`, the INFO section, log lines.
pub const MODULE_NAME: &std::ffi::CStr = c"charon";

/// The module version, from Cargo: `major * 10000 + minor * 100 + patch`.
pub const fn module_version() -> c_int {
    const fn number(text: &str) -> c_int {
        let bytes = text.as_bytes();
        let mut value = 0;
        let mut i = 0;
        while i < bytes.len() {
            value = value * 10 + (bytes[i] - b'0') as c_int;
            i += 1;
        }
        value
    }
    number(env!("CARGO_PKG_VERSION_MAJOR")) * 10_000
        + number(env!("CARGO_PKG_VERSION_MINOR")) * 100
        + number(env!("CARGO_PKG_VERSION_PATCH"))
}

const OK: c_int = raw::REDISMODULE_OK as c_int;
const ERR: c_int = raw::REDISMODULE_ERR as c_int;

/// `argv`/`argc`: the module arguments, as the server passed them to
/// `RedisModule_OnLoad`.
pub fn on_load(
    ctx: *mut raw::RedisModuleCtx,
    argv: *mut *mut raw::RedisModuleString,
    argc: c_int,
) -> c_int {
    // SAFETY: the server's own context, during `RedisModule_OnLoad`. It
    // fills in the server's function table; nothing allocates before this.
    let init = unsafe {
        raw::Export_RedisModule_Init(
            ctx,
            MODULE_NAME.as_ptr(),
            module_version(),
            raw::REDISMODULE_APIVER_1 as c_int,
        )
    };
    if init != OK {
        return ERR;
    }
    guard::install_panic_hook();
    guard::contain(ERR, || match register(ctx, argv, argc) {
        Ok(()) => OK,
        Err(refusal) => {
            server::log(ctx, c"warning", &refusal);
            ERR
        }
    })
}

fn register(
    ctx: *mut raw::RedisModuleCtx,
    argv: *mut *mut raw::RedisModuleString,
    argc: c_int,
) -> Result<(), String> {
    // Before anything is registered: a refused load leaves nothing behind.
    compat::check_server(compat::server_version(), &compat::missing_api())?;
    // Read once the server is known to offer what reading them takes.
    let args = module_args::from_argv(argv, argc)?;

    // A truncated or corrupt RESTORE payload then fails the load instead of
    // killing the server; watchers are signalled only on a real change.
    let mut options = (raw::REDISMODULE_OPTIONS_HANDLE_IO_ERRORS
        | raw::REDISMODULE_OPTION_NO_IMPLICIT_SIGNAL_MODIFIED) as c_int;
    if compat::valkey_major(ctx).is_some_and(|major| major >= 9) {
        options |= compat::VALKEY_OPTION_HANDLE_ATOMIC_SLOT_MIGRATION;
    }
    // SAFETY: the loading module's context.
    unsafe { server::api!(RedisModule_SetModuleOptions)(ctx, options) };

    datatype::BUCKET_TYPE
        .create_data_type(ctx)
        .map_err(|error| {
            format!(
                "charon: cannot register the {} type: {error}",
                datatype::TYPE_NAME
            )
        })?;
    commands::register(ctx, &args)?;
    // SAFETY: the loading module's context; `info` contains its panics.
    unsafe { server::api!(RedisModule_RegisterInfoFunc)(ctx, Some(metrics::info)) };
    compat::choose_event_class();
    Ok(())
}
