//! Charon: native token-bucket rate limiting for Redis.
//!
//! This file only declares the parts and the module's entry point. The token
//! bucket itself is pure (`token_bucket`, `bucket`, `parse`, `encoding`); the
//! data type (`datatype`) and the commands (`commands`) wrap it for the
//! server; `registration` puts them in place when the server loads Charon.

pub mod alloc;
pub mod bucket;
mod commands;
pub mod datatype;
pub mod encoding;
pub mod guard;
mod metrics;
pub mod parse;
mod registration;
mod server;
pub mod token_bucket;

use std::ffi::c_int;

/// Inside a server every allocation is the server's, so it is accounted for.
#[global_allocator]
static ALLOCATOR: alloc::ModuleAlloc = alloc::ModuleAlloc;

/// Called by the server on `MODULE LOAD` / `loadmodule`.
///
/// # Safety
/// Called by the server with its own context and arguments.
#[no_mangle]
pub unsafe extern "C" fn RedisModule_OnLoad(
    ctx: *mut redis_module::raw::RedisModuleCtx,
    _argv: *mut *mut redis_module::raw::RedisModuleString,
    _argc: c_int,
) -> c_int {
    registration::on_load(ctx)
}
