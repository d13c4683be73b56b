//! Charon: native token-bucket rate limiting for Redis.
//!
//! This file only declares the parts and the module's entry point. The
//! layers, each using only the ones before it:
//!
//! 1. the core, with no server in it: `token_bucket` (a band's exact
//!    arithmetic), `bucket` (a stored value and the decisions on it),
//!    `parse` (arguments), `formats` (every stored and replicated form),
//!    `cell` (redis-cell's `CL.THROTTLE` and its stored state);
//! 2. the server wrappers, which know no bucket: `server` (the module API),
//!    `compat` (what the server must offer), `guard` (the panic boundary),
//!    `alloc` (the server's allocator);
//! 3. the data type (`datatype`), the commands (`commands`) and `INFO`
//!    (`metrics`);
//! 4. `registration`, which puts them in place when the server loads
//!    Charon, as its arguments (`module_args`) ask.

#![deny(clippy::undocumented_unsafe_blocks)]

pub mod alloc;
pub mod bucket;
pub mod cell;
mod commands;
pub mod compat;
pub mod datatype;
pub mod formats;
pub mod guard;
mod metrics;
mod module_args;
pub mod parse;
mod registration;
mod server;
pub mod token_bucket;

use std::ffi::c_int;

/// Inside a server every allocation is the server's, so it is accounted for.
#[global_allocator]
static ALLOCATOR: alloc::ModuleAlloc = alloc::ModuleAlloc;

/// Called by the server on `MODULE LOAD` / `loadmodule`, with the module
/// arguments that follow the path (see `module_args`).
///
/// # Safety
/// Called by the server with its own context and arguments.
#[no_mangle]
pub unsafe extern "C" fn RedisModule_OnLoad(
    ctx: *mut redis_module::raw::RedisModuleCtx,
    argv: *mut *mut redis_module::raw::RedisModuleString,
    argc: c_int,
) -> c_int {
    registration::on_load(ctx, argv, argc)
}
