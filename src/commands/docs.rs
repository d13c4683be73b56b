//! Command info for `COMMAND INFO` / `COMMAND DOCS`: arity, key specs and
//! arguments, on servers with `RedisModule_SetCommandInfo` (Redis 7.0+,
//! Valkey). Older servers get the commands without it, logged once.

use redis_module::raw;
use std::ffi::{c_int, CStr};

use super::Command;
use crate::server::log;

#[derive(Clone, Copy)]
pub enum ArgKind {
    Key,
    Integer,
    String,
    /// A group of arguments after a token (`LIMIT capacity refill period`).
    Block(&'static [Arg]),
}

#[derive(Clone, Copy)]
pub struct Arg {
    name: &'static CStr,
    kind: ArgKind,
    /// The keyword that introduces the argument, if any.
    token: Option<&'static CStr>,
    optional: bool,
    multiple: bool,
}

const fn arg(name: &'static CStr, kind: ArgKind) -> Arg {
    Arg {
        name,
        kind,
        token: None,
        optional: false,
        multiple: false,
    }
}

const LIMIT_ARGS: [Arg; 3] = [
    arg(c"capacity", ArgKind::Integer),
    arg(c"refill", ArgKind::Integer),
    arg(c"period", ArgKind::String),
];

/// `[LIMIT capacity refill period]...`: each adds a band.
const LIMIT_BLOCK: Arg = Arg {
    token: Some(c"LIMIT"),
    optional: true,
    multiple: true,
    ..arg(c"limit", ArgKind::Block(&LIMIT_ARGS))
};

const KEY: Arg = arg(c"key", ArgKind::Key);

pub struct Docs {
    summary: &'static CStr,
    complexity: &'static CStr,
    arity: c_int,
    key_flags: u32,
    args: &'static [Arg],
}

const SINCE: &CStr = c"0.1.0";

pub const RATE: Docs = Docs {
    summary: c"Takes `cost` tokens from every band of a token bucket if each holds them, else nothing; replies limited, limit, remaining, retry-after ms, reset-after ms of the binding band.",
    complexity: c"O(N) where N is the number of limits (at most 16)",
    arity: -5,
    key_flags: raw::REDISMODULE_CMD_KEY_RW
        | raw::REDISMODULE_CMD_KEY_ACCESS
        | raw::REDISMODULE_CMD_KEY_UPDATE,
    args: &RATE_ARGS,
};

/// `key capacity refill period [cost] [LIMIT capacity refill period]...`
const RATE_ARGS: [Arg; 6] = [
    KEY,
    arg(c"capacity", ArgKind::Integer),
    arg(c"refill", ArgKind::Integer),
    arg(c"period", ArgKind::String),
    Arg {
        optional: true,
        ..arg(c"cost", ArgKind::Integer)
    },
    LIMIT_BLOCK,
];

/// `RESERVE`'s and `ACQUIRE`'s arguments: `RATE`'s, then the wait bound.
const fn reserve_args(token: &'static CStr, name: &'static CStr) -> [Arg; 7] {
    let [key, capacity, refill, period, cost, limit] = RATE_ARGS;
    let wait = Arg {
        token: Some(token),
        ..arg(name, ArgKind::Integer)
    };
    [key, capacity, refill, period, cost, limit, wait]
}

const RESERVE_ARGS: [Arg; 7] = reserve_args(c"MAXWAIT", c"maxwait");
const ACQUIRE_ARGS: [Arg; 7] = reserve_args(c"TIMEOUT", c"timeout");

pub const RESERVE: Docs = Docs {
    summary: c"Takes a turn in line: when every band will hold `cost` within MAXWAIT ms (after every turn already granted), takes it now and replies the wait until the turn; else nothing.",
    complexity: c"O(N) where N is the number of limits (at most 16)",
    // As RATE's: a missing MAXWAIT/TIMEOUT gets its own error.
    arity: -5,
    key_flags: raw::REDISMODULE_CMD_KEY_RW
        | raw::REDISMODULE_CMD_KEY_ACCESS
        | raw::REDISMODULE_CMD_KEY_UPDATE,
    args: &RESERVE_ARGS,
};

pub const ACQUIRE: Docs = Docs {
    summary: c"CHARON.RESERVE with MAXWAIT = TIMEOUT, answered when the turn comes: blocks the client until then.",
    complexity: c"O(N) where N is the number of limits (at most 16)",
    // As RATE's: a missing MAXWAIT/TIMEOUT gets its own error.
    arity: -5,
    key_flags: raw::REDISMODULE_CMD_KEY_RW
        | raw::REDISMODULE_CMD_KEY_ACCESS
        | raw::REDISMODULE_CMD_KEY_UPDATE,
    args: &ACQUIRE_ARGS,
};

pub const INSPECT: Docs = Docs {
    summary: c"Replies every band of a bucket as it stands now: capacity, refill, period ms, tokens, reset-after ms.",
    complexity: c"O(N) where N is the number of bands",
    arity: 2,
    key_flags: raw::REDISMODULE_CMD_KEY_RO | raw::REDISMODULE_CMD_KEY_ACCESS,
    args: &[KEY],
};

pub const PEEK: Docs = Docs {
    summary:
        c"Answers what CHARON.RATE with the stored parameters would answer now, changing nothing.",
    complexity: c"O(1)",
    arity: -2,
    key_flags: raw::REDISMODULE_CMD_KEY_RO | raw::REDISMODULE_CMD_KEY_ACCESS,
    args: &[
        KEY,
        Arg {
            optional: true,
            ..arg(c"cost", ArgKind::Integer)
        },
    ],
};

pub const REFUND: Docs = Docs {
    summary:
        c"Gives tokens back to a bucket, never above its capacity; replies the tokens remaining.",
    complexity: c"O(1)",
    arity: 3,
    key_flags: raw::REDISMODULE_CMD_KEY_RW | raw::REDISMODULE_CMD_KEY_UPDATE,
    args: &[KEY, arg(c"tokens", ArgKind::Integer)],
};

pub const THROTTLE: Docs = Docs {
    summary: c"redis-cell's command on a Charon bucket: takes `quantity` tokens from a bucket of max_burst + 1 refilled count_per_period per period seconds if it holds them; replies limited, limit, remaining, retry-after s, reset-after s. Converts a redis-cell key on its first call.",
    complexity: c"O(1)",
    arity: -5,
    key_flags: raw::REDISMODULE_CMD_KEY_RW
        | raw::REDISMODULE_CMD_KEY_ACCESS
        | raw::REDISMODULE_CMD_KEY_UPDATE,
    args: &[
        KEY,
        arg(c"max_burst", ArgKind::Integer),
        arg(c"count_per_period", ArgKind::Integer),
        arg(c"period", ArgKind::Integer),
        Arg {
            optional: true,
            ..arg(c"quantity", ArgKind::Integer)
        },
    ],
};

pub const SETSTATE: Docs = Docs {
    summary:
        c"Sets a bucket's whole state. What replication and AOF rewrite use in place of decisions.",
    complexity: c"O(N) where N is the number of bands",
    // The packed form takes one argument after the key, the readable form
    // `updated_at_ms band_count` and five per band.
    arity: -3,
    key_flags: raw::REDISMODULE_CMD_KEY_OW | raw::REDISMODULE_CMD_KEY_UPDATE,
    args: &[
        KEY,
        Arg {
            multiple: true,
            ..arg(c"state", ArgKind::String)
        },
    ],
};

#[cfg(feature = "test-panic")]
pub const TEST_PANIC: Docs = Docs {
    summary: c"Panics on purpose (test builds only).",
    complexity: c"O(1)",
    arity: 2,
    key_flags: raw::REDISMODULE_CMD_KEY_RO,
    args: &[KEY],
};

const INFO_VERSION: raw::RedisModuleCommandInfoVersion = raw::RedisModuleCommandInfoVersion {
    version: 1,
    sizeof_historyentry: std::mem::size_of::<raw::RedisModuleCommandHistoryEntry>(),
    sizeof_keyspec: std::mem::size_of::<raw::RedisModuleCommandKeySpec>(),
    sizeof_arg: std::mem::size_of::<raw::RedisModuleCommandArg>(),
};

fn key_specs(flags: u32) -> [raw::RedisModuleCommandKeySpec; 2] {
    // All-zero is the terminator (and a valid value for every field).
    // SAFETY: a plain C struct of integers, pointers and unions, for which
    // all-zero is valid.
    let mut specs: [raw::RedisModuleCommandKeySpec; 2] = unsafe { std::mem::zeroed() };
    specs[0].flags = u64::from(flags);
    specs[0].begin_search_type = raw::RedisModuleKeySpecBeginSearchType_REDISMODULE_KSPEC_BS_INDEX;
    specs[0].bs.index.pos = 1;
    specs[0].find_keys_type = raw::RedisModuleKeySpecFindKeysType_REDISMODULE_KSPEC_FK_RANGE;
    specs[0].fk.range.lastkey = 0;
    specs[0].fk.range.keystep = 1;
    specs[0].fk.range.limit = 0;
    specs
}

/// The server's form of `args`, ended by an all-zero entry. The lists of
/// blocks' arguments are kept in `store`, which must outlive the use of the
/// answer (a `Vec`'s buffer stays put when the `Vec` itself moves).
fn args(
    args: &[Arg],
    store: &mut Vec<Vec<raw::RedisModuleCommandArg>>,
) -> Vec<raw::RedisModuleCommandArg> {
    let mut out: Vec<raw::RedisModuleCommandArg> = args
        .iter()
        .map(|arg| {
            // SAFETY: a plain C struct; all-zero is valid (null pointers).
            let mut raw_arg: raw::RedisModuleCommandArg = unsafe { std::mem::zeroed() };
            raw_arg.name = arg.name.as_ptr();
            raw_arg.type_ = match arg.kind {
                ArgKind::Key => raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_KEY,
                ArgKind::Integer => raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_INTEGER,
                ArgKind::String => raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_STRING,
                ArgKind::Block(_) => raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_BLOCK,
            };
            if let ArgKind::Block(inner) = arg.kind {
                let mut inner = self::args(inner, store);
                raw_arg.subargs = inner.as_mut_ptr();
                store.push(inner);
            }
            if let Some(token) = arg.token {
                raw_arg.token = token.as_ptr();
            }
            raw_arg.key_spec_index = if matches!(arg.kind, ArgKind::Key) {
                0
            } else {
                -1
            };
            let mut flags = 0;
            if arg.optional {
                flags |= raw::REDISMODULE_CMD_ARG_OPTIONAL;
            }
            if arg.multiple {
                flags |= raw::REDISMODULE_CMD_ARG_MULTIPLE;
            }
            raw_arg.flags = flags as c_int;
            raw_arg
        })
        .collect();
    // SAFETY: as above; the all-zero entry ends the list.
    out.push(unsafe { std::mem::zeroed() });
    out
}

/// Attaches command info to every command, where the server can take it.
pub fn register(ctx: *mut raw::RedisModuleCtx, commands: &[&Command]) {
    // SAFETY: copying a function pointer out of the server's table takes no
    // reference.
    let (Some(get_command), Some(set_info)) = (unsafe { raw::RedisModule_GetCommand }, unsafe {
        raw::RedisModule_SetCommandInfo
    }) else {
        log(
            ctx,
            c"notice",
            "charon: this server has no command info API (before Redis 7.0): COMMAND DOCS will not describe Charon's commands",
        );
        return;
    };
    for command in commands {
        let docs = &command.docs;
        let mut specs = key_specs(docs.key_flags);
        let mut store = Vec::new();
        let mut args = args(docs.args, &mut store);
        let info = raw::RedisModuleCommandInfo {
            version: &INFO_VERSION,
            summary: docs.summary.as_ptr(),
            complexity: docs.complexity.as_ptr(),
            since: SINCE.as_ptr(),
            history: std::ptr::null_mut(),
            tips: std::ptr::null(),
            arity: docs.arity,
            key_specs: specs.as_mut_ptr(),
            args: args.as_mut_ptr(),
        };
        // The server copies what it keeps.
        // SAFETY: the loading module's context and a static C string.
        let handle = unsafe { get_command(ctx, command.name.as_ptr()) };
        let ok =
            // SAFETY: a handle the server just answered; `info` and what
            // it points to outlive the call.
            !handle.is_null() && unsafe { set_info(handle, &info) } == raw::REDISMODULE_OK as c_int;
        if !ok {
            log(
                ctx,
                c"warning",
                &format!(
                    "charon: the server refused command info for {}",
                    command.name.to_string_lossy()
                ),
            );
        }
    }
}
