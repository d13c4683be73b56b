//! The commands: registration, the shims the server calls, and replies.
//!
//! Each command's logic is a safe `run(ctx, args) -> Reply`. The reply is
//! computed whole before a byte of it is sent, so a contained panic can
//! still answer with a clean error.

mod acquire;
mod docs;
mod inspect;
mod peek;
mod rate;
mod refund;
mod reserve;
mod setstate;
mod throttle;

use redis_module::raw;
use std::borrow::Cow;
use std::ffi::{c_int, CStr};

use crate::bucket::{self, Change};
use crate::compat;
use crate::datatype::{self, BucketKey, WrongType};
use crate::guard::contain;
use crate::metrics;
use crate::module_args::ModuleArgs;
use crate::parse::ArgError;
use crate::server::{api, log, Args, Ctx};
use crate::token_bucket::{Limit, Verdict};

/// What a command answers.
pub enum Reply {
    Verdict(Verdict),
    /// `CHARON.INSPECT`: per band, `capacity refill period_ms tokens
    /// reset_after_ms`.
    Bands(Vec<[i64; 5]>),
    /// An array of integers (`CL.THROTTLE`'s reply).
    Integers([i64; 5]),
    Integer(u64),
    Null,
    Ok,
    Error(Cow<'static, str>),
    WrongType,
    WrongArity,
    /// Nothing now: the client is blocked, and answered later.
    Blocked,
}

impl From<WrongType> for Reply {
    fn from(_: WrongType) -> Reply {
        Reply::WrongType
    }
}

impl From<ArgError> for Reply {
    fn from(error: ArgError) -> Reply {
        Reply::Error(error.to_string().into())
    }
}

const INTERNAL_ERROR: &str = "ERR charon internal error, see the server log";

impl Reply {
    fn internal_error() -> Reply {
        Reply::Error(INTERNAL_ERROR.into())
    }

    fn send(self, ctx: Ctx) {
        match self {
            Reply::Verdict(verdict) => {
                ctx.reply_array(5);
                ctx.reply_i64(i64::from(verdict.limited));
                ctx.reply_i64(as_reply(verdict.limit));
                ctx.reply_i64(as_reply(verdict.remaining));
                ctx.reply_i64(verdict.retry_after_ms.map_or(-1, as_reply));
                ctx.reply_i64(as_reply(verdict.reset_after_ms));
            }
            Reply::Bands(bands) => {
                ctx.reply_array(bands.len());
                for band in bands {
                    ctx.reply_array(band.len());
                    for field in band {
                        ctx.reply_i64(field);
                    }
                }
            }
            Reply::Integers(values) => {
                ctx.reply_array(values.len());
                for value in values {
                    ctx.reply_i64(value);
                }
            }
            Reply::Integer(value) => ctx.reply_i64(as_reply(value)),
            Reply::Null => ctx.reply_null(),
            Reply::Ok => ctx.reply_ok(),
            Reply::Error(message) => ctx.reply_error(&message),
            Reply::WrongType => ctx.reply_wrong_type(),
            Reply::WrongArity => ctx.reply_wrong_arity(),
            Reply::Blocked => {}
        }
    }
}

/// Every value the core reports is at most `i64::MAX`.
fn as_reply(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// The shim behind every command: arguments in, panic contained, reply out.
fn dispatch(
    ctx: *mut raw::RedisModuleCtx,
    argv: *mut *mut raw::RedisModuleString,
    argc: c_int,
    run: fn(Ctx, Args) -> Reply,
) -> c_int {
    // SAFETY: the context the server passed to this command call.
    let Some(ctx) = (unsafe { Ctx::new(ctx) }) else {
        return raw::REDISMODULE_ERR as c_int;
    };
    // SAFETY: the server passes `argc` strings that live through the call.
    let args = unsafe { Args::new(argv, argc) };
    let reply = contain(Reply::internal_error(), || run(ctx, args));
    contain((), || reply.send(ctx));
    raw::REDISMODULE_OK as c_int
}

macro_rules! shim {
    ($name:ident, $run:path) => {
        extern "C" fn $name(
            ctx: *mut raw::RedisModuleCtx,
            argv: *mut *mut raw::RedisModuleString,
            argc: c_int,
        ) -> c_int {
            dispatch(ctx, argv, argc, $run)
        }
    };
}

shim!(rate_command, rate::run);
shim!(peek_command, peek::run);
shim!(inspect_command, inspect::run);
shim!(reserve_command, reserve::run);
shim!(acquire_command, acquire::run);
shim!(refund_command, refund::run);
shim!(setstate_command, setstate::run);
shim!(throttle_command, throttle::run);

#[cfg(feature = "test-panic")]
shim!(test_panic_command, test_panic);

/// `CHARON.TESTPANIC key`: panics, with printf directives in the message.
#[cfg(feature = "test-panic")]
fn test_panic(_: Ctx, args: Args) -> Reply {
    let key = String::from_utf8_lossy(args.get(1).unwrap_or_default());
    panic!("CHARON.TESTPANIC panics on purpose (key {key}, %s %n %x)")
}

/// A command as registered: name, handler, flags and documentation.
pub struct Command {
    pub name: &'static CStr,
    handler: raw::RedisModuleCmdFunc,
    flags: &'static CStr,
    /// ACL categories, as the flags say (the server does not derive them
    /// for module commands).
    acl: &'static CStr,
    /// Whether it may block its client: flagged `blocking` where the
    /// server knows the flag (Redis 7.0+, Valkey).
    blocking: bool,
    docs: docs::Docs,
}

#[cfg(not(feature = "test-panic"))]
const COMMAND_COUNT: usize = 7;
#[cfg(feature = "test-panic")]
const COMMAND_COUNT: usize = 8;

pub const COMMANDS: [Command; COMMAND_COUNT] = [
    Command {
        name: c"CHARON.RATE",
        handler: Some(rate_command),
        flags: c"write deny-oom fast",
        acl: c"write fast",
        blocking: false,
        docs: docs::RATE,
    },
    Command {
        name: c"CHARON.PEEK",
        handler: Some(peek_command),
        flags: c"readonly fast",
        acl: c"read fast",
        blocking: false,
        docs: docs::PEEK,
    },
    Command {
        name: c"CHARON.INSPECT",
        handler: Some(inspect_command),
        flags: c"readonly fast",
        acl: c"read fast",
        blocking: false,
        docs: docs::INSPECT,
    },
    Command {
        name: c"CHARON.REFUND",
        handler: Some(refund_command),
        flags: c"write deny-oom fast",
        acl: c"write fast",
        blocking: false,
        docs: docs::REFUND,
    },
    Command {
        name: c"CHARON.RESERVE",
        handler: Some(reserve_command),
        flags: c"write deny-oom fast",
        acl: c"write fast",
        blocking: false,
        docs: docs::RESERVE,
    },
    Command {
        name: c"CHARON.ACQUIRE",
        handler: Some(acquire_command),
        flags: c"write deny-oom",
        acl: c"write blocking",
        blocking: true,
        docs: docs::ACQUIRE,
    },
    Command {
        name: c"CHARON.SETSTATE",
        handler: Some(setstate_command),
        flags: c"write deny-oom fast",
        acl: c"write fast",
        blocking: false,
        docs: docs::SETSTATE,
    },
    #[cfg(feature = "test-panic")]
    Command {
        name: c"CHARON.TESTPANIC",
        handler: Some(test_panic_command),
        flags: c"readonly fast",
        acl: c"read fast",
        blocking: false,
        docs: docs::TEST_PANIC,
    },
];

/// `CL.THROTTLE`, redis-cell's command on Charon's bucket: registered only
/// when the module argument `CLTHROTTLE yes` asks for it. Flagged as
/// redis-cell flags it (`write`, not `fast`), plus `deny-oom` like every
/// Charon command that may create a key.
pub const THROTTLE: Command = Command {
    name: c"CL.THROTTLE",
    handler: Some(throttle_command),
    flags: c"write deny-oom",
    acl: c"write",
    blocking: false,
    docs: docs::THROTTLE,
};

/// The commands the module arguments ask for: every `COMMANDS` entry, and
/// `CL.THROTTLE` with `CLTHROTTLE yes`.
fn enabled(args: &ModuleArgs) -> Vec<&'static Command> {
    COMMANDS
        .iter()
        .chain(args.cl_throttle.then_some(&THROTTLE))
        .collect()
}

/// Registers every command the module arguments ask for (key at position
/// 1, so cluster routing, `COMMAND GETKEYS` and ACL key patterns work
/// everywhere), then adds command info where the server supports it. A
/// name that is taken (another module's `CL.THROTTLE`, say) refuses the
/// load.
pub fn register(ctx: *mut raw::RedisModuleCtx, args: &ModuleArgs) -> Result<(), String> {
    let commands = enabled(args);
    // Redis 6.2 refuses a flag it does not know, `blocking` among them.
    let knows_blocking = compat::server_version().is_some_and(|v| v >= 0x00_07_00_00);
    for command in &commands {
        let flags = match (command.blocking, knows_blocking) {
            (true, true) => format!("{} blocking", command.flags.to_string_lossy()),
            _ => command.flags.to_string_lossy().into_owned(),
        };
        let flags = crate::server::c_string(&flags);
        // SAFETY: the loading module's context; the name and flags are C
        // strings the server copies; the handler contains its panics.
        let status = unsafe {
            api!(RedisModule_CreateCommand)(
                ctx,
                command.name.as_ptr(),
                command.handler,
                flags.as_ptr(),
                1,
                1,
                1,
            )
        };
        if status != raw::REDISMODULE_OK as c_int {
            return Err(format!(
                "charon: cannot register command {name}: the server refused the name (another module, such as redis-cell for CL.THROTTLE, may have registered it already)",
                name = command.name.to_string_lossy()
            ));
        }
    }
    if args.cl_throttle {
        log(
            ctx,
            c"notice",
            "charon: CL.THROTTLE registered (module argument CLTHROTTLE yes): redis-cell's command, on Charon buckets",
        );
    }
    docs::register(ctx, &commands);
    set_acl_categories(ctx, &commands);
    Ok(())
}

/// Puts every command in the ACL categories its flags say (`@write` or
/// `@read`, and `@fast`) and in `@charon`, where the server lets modules set
/// categories (Redis 7.2+ and Valkey for the first, Redis 7.4+ and Valkey 8+
/// for a category of the module's own). Module commands get no category
/// from their flags: without this, `+@read` would not grant CHARON.PEEK.
/// Logged once where the server cannot.
fn set_acl_categories(ctx: *mut raw::RedisModuleCtx, commands: &[&Command]) {
    // SAFETY: copying a function pointer out of the server's table takes no
    // reference.
    let functions = unsafe {
        (
            raw::RedisModule_SetCommandACLCategories,
            raw::RedisModule_GetCommand,
        )
    };
    let (Some(set), Some(get)) = functions else {
        log(
            ctx,
            c"notice",
            "charon: this server cannot put module commands in ACL categories (before Redis 7.2): grant CHARON.* commands by name",
        );
        return;
    };
    // SAFETY: copying a function pointer out of the server's table takes no
    // reference.
    let own = match unsafe { raw::RedisModule_AddACLCategory } {
        // SAFETY: the loading module's context and a static C string.
        Some(add) => (unsafe { add(ctx, ACL_CATEGORY.as_ptr()) }) == raw::REDISMODULE_OK as c_int,
        None => false,
    };
    if !own {
        log(
            ctx,
            c"notice",
            "charon: this server has no module ACL categories (before Redis 7.4 / Valkey 8): no @charon",
        );
    }
    for command in commands {
        let categories = if own {
            format!(
                "{} {}",
                ACL_CATEGORY.to_string_lossy(),
                command.acl.to_string_lossy()
            )
        } else {
            command.acl.to_string_lossy().into_owned()
        };
        let categories = crate::server::c_string(&categories);
        // SAFETY: the loading module's context and a static C string.
        let handle = unsafe { get(ctx, command.name.as_ptr()) };
        if handle.is_null()
            // SAFETY: a command handle the server just answered, and a C
            // string it copies.
            || unsafe { set(handle, categories.as_ptr()) } != raw::REDISMODULE_OK as c_int
        {
            log(
                ctx,
                c"warning",
                &format!(
                    "charon: the server refused ACL categories for {}",
                    command.name.to_string_lossy()
                ),
            );
        }
    }
}

/// The module's ACL category: one name root everywhere.
const ACL_CATEGORY: &CStr = c"charon";

/// The preamble every command on a key shares: the arity checked, the key
/// (always at position 1) opened, and its type checked before any other
/// argument is read, so that a key of another type answers `WRONGTYPE`
/// whatever the arguments say. `Ok(None)`: opened for reading and missing.
fn open_key(ctx: Ctx, args: Args, arity_ok: bool, write: bool) -> Result<Option<BucketKey>, Reply> {
    if !arity_ok {
        return Err(Reply::WrongArity);
    }
    Ok(BucketKey::open(ctx, args.raw(1), write)?)
}

/// `open_key` for a command that writes: the server always opens the key.
fn open_for_write(ctx: Ctx, args: Args, arity_ok: bool) -> Result<BucketKey, Reply> {
    open_key(ctx, args, arity_ok, true)?.ok_or_else(Reply::internal_error)
}

/// `CHARON.RATE`'s decision on an open key, and what follows it: a request
/// of `cost` under `limits` at `now_ms` (counted in `INFO`); when it takes
/// tokens, the bucket is stored and published (`publish_bucket`, with
/// `event`). Otherwise nothing changes and nothing is replicated, unless
/// `replaced`: the key's value was just replaced by the bucket it holds
/// (`CL.THROTTLE` converting a redis-cell key), which is then published even
/// though the request took nothing.
fn decide(
    ctx: Ctx,
    key: &mut BucketKey,
    limits: &[Limit],
    cost: u64,
    now_ms: i64,
    event: &CStr,
    replaced: bool,
) -> Result<Verdict, Reply> {
    let (verdict, change) = bucket::rate(key.bucket(), limits, cost, now_ms);
    metrics::decision(verdict.limited);
    store(ctx, key, change, event, replaced)?;
    Ok(verdict)
}

/// Stores what a decision or a reservation changed and publishes it. Only
/// a request that took tokens changes anything: limited requests and cost 0
/// leave the value and its TTL as they were and replicate nothing (unless
/// `replaced`, see `decide`).
fn store(
    ctx: Ctx,
    key: &mut BucketKey,
    change: Change,
    event: &CStr,
    replaced: bool,
) -> Result<(), Reply> {
    match change {
        Change::None if !replaced => return Ok(()),
        Change::None | Change::Updated => {}
        Change::Created(bucket) => {
            if !key.set(bucket) {
                return Err(Reply::internal_error());
            }
        }
    }
    if !publish_bucket(ctx, key, event) {
        return Err(Reply::internal_error());
    }
    Ok(())
}

/// After a command changed the bucket under `key`: the key expires when the
/// bucket is full again, `WATCH`ers and client caches learn of the change,
/// a keyspace event fires, and the new state (never the decision) is
/// propagated. False if the key holds no bucket.
fn publish_bucket(ctx: Ctx, key: &mut BucketKey, event: &CStr) -> bool {
    let name = key.name();
    let Some(bucket) = key.bucket() else {
        return false;
    };
    let full_at = bucket.full_at_ms();
    datatype::replicate_state(ctx, name, bucket);
    announce(ctx, key, event, full_at);
    true
}

/// The expiry, the `WATCH` signal and the keyspace event of a changed
/// bucket (what `publish_bucket` does, less the replication).
fn announce(ctx: Ctx, key: &mut BucketKey, event: &CStr, full_at_ms: i64) {
    key.expire_at(full_at_ms);
    ctx.signal_modified(key.name());
    ctx.notify(compat::event_class(), event, key.name());
}
