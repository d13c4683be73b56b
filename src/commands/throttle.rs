//! `CL.THROTTLE key max_burst count_per_period period [quantity]`:
//! redis-cell's command, answered by Charon's bucket (registered with the
//! module argument `CLTHROTTLE yes`).
//!
//! It is `CHARON.RATE key <max_burst + 1> <count_per_period> <period * 1000>
//! [quantity]` on the same `charon-tb` bucket (`cell` says why), with the
//! reply's times in whole seconds. A key still holding redis-cell's own
//! state (a string: its TAT) is converted by the first call, whatever that
//! call asks: the string is replaced by the bucket it stands for, or
//! deleted when that bucket is full, and the change is replicated as `DEL`
//! and the bucket's state, so replicas and the AOF end with the same bucket.

use redis_module::raw;
use std::ffi::{c_int, CStr};
use std::ptr::NonNull;

use super::{decide, Reply};
use crate::cell::{self, Conversion, Throttle};
use crate::datatype::{BucketKey, WrongType};
use crate::server::{api, Args, Ctx};
use crate::token_bucket::Verdict;

/// The keyspace event of a decision that changed the bucket.
const EVENT: &CStr = c"charon.throttle";

/// What the key holds, as far as `CL.THROTTLE` is concerned.
enum Opened {
    /// Nothing, or a bucket.
    Bucket(BucketKey),
    /// redis-cell's state.
    Cell(CellKey),
}

pub fn run(ctx: Ctx, args: Args) -> Reply {
    // Arity, then the key's type, then the arguments left to right.
    if !(5..=6).contains(&args.len()) {
        return Reply::WrongArity;
    }
    let name = args.raw(1);
    let opened = match BucketKey::open(ctx, name, true) {
        Ok(Some(key)) => Opened::Bucket(key),
        // Opened for writing: the server always answers a key.
        Ok(None) => return Reply::internal_error(),
        Err(WrongType) => match CellKey::open(ctx, name) {
            Some(cell_key) => Opened::Cell(cell_key),
            None => return Reply::WrongType,
        },
    };
    let throttle = match cell::request(args.bytes(2), args.bytes(3), args.bytes(4), args.get(5)) {
        Ok(throttle) => throttle,
        // A redis-cell key stays as it was.
        Err(error) => return Reply::Error(error.to_string().into()),
    };
    let verdict = match opened {
        Opened::Bucket(mut key) => decide(
            ctx,
            &mut key,
            &[throttle.limit],
            throttle.quantity,
            ctx.now_ms(),
            EVENT,
            false,
        ),
        Opened::Cell(cell_key) => convert_and_decide(ctx, cell_key, name, &throttle),
    };
    match verdict {
        Ok(verdict) => Reply::Integers(cell::reply(&verdict)),
        Err(reply) => reply,
    }
}

/// Replaces redis-cell's state under `name` by the bucket it stands for
/// (or by nothing, when that bucket is full), then decides on it.
fn convert_and_decide(
    ctx: Ctx,
    cell_key: CellKey,
    name: *mut raw::RedisModuleString,
    throttle: &Throttle,
) -> Result<Verdict, Reply> {
    let now = Now::read(ctx);
    let conversion = cell::convert(cell_key.tat_ns, now.ns, throttle.limit, now.ms)
        .map_err(|_| Reply::internal_error())?;
    cell_key.delete();
    // A replica and the AOF hold the same string: they drop it too, then
    // receive the bucket's state like after any other decision.
    ctx.replicate_del(name);
    let mut key = match BucketKey::open(ctx, name, true) {
        Ok(Some(key)) => key,
        _ => return Err(Reply::internal_error()),
    };
    let replaced = match conversion {
        Conversion::Full => {
            // A full bucket is no key: the string is simply gone.
            ctx.signal_modified(name);
            ctx.notify(raw::REDISMODULE_NOTIFY_GENERIC, c"del", name);
            false
        }
        Conversion::Holding(bucket) => {
            if !key.set(bucket) {
                return Err(Reply::internal_error());
            }
            true
        }
    };
    decide(
        ctx,
        &mut key,
        &[throttle.limit],
        throttle.quantity,
        now.ms,
        EVENT,
        replaced,
    )
}

/// The time of a converting call, read once: in milliseconds for the
/// bucket, in nanoseconds for what the redis-cell key owes (redis-cell's
/// TAT is in nanoseconds).
struct Now {
    ms: i64,
    ns: i64,
}

impl Now {
    /// From the server's microsecond clock where it has one (Redis 7.2+,
    /// Valkey), else its millisecond clock; both read the same wall clock.
    /// A reading stands for a whole tick (the true time is somewhere in
    /// it): what is owed is measured from the tick's last nanosecond, so it
    /// is never overstated, and understated by less than one tick. (From
    /// the tick's start, a key written in the same millisecond as the call
    /// would lose a whole token to a fraction of a millisecond.)
    fn read(ctx: Ctx) -> Now {
        // SAFETY: copying a function pointer out of the server's table
        // takes no reference. Optional: absent before Redis 7.2.
        match unsafe { raw::RedisModule_Microseconds } {
            Some(microseconds) => {
                // SAFETY: reads the server's clock; no arguments.
                let us = unsafe { microseconds() };
                Now {
                    ms: us.div_euclid(1000),
                    ns: us.saturating_mul(1000).saturating_add(999),
                }
            }
            None => {
                let ms = ctx.now_ms();
                Now {
                    ms,
                    ns: ms.saturating_mul(1_000_000).saturating_add(999_999),
                }
            }
        }
    }
}

/// A key, open for writing, that holds redis-cell's state: a string that
/// `cell::state` reads as a TAT. Closed when dropped.
struct CellKey {
    key: NonNull<raw::RedisModuleKey>,
    tat_ns: u64,
}

impl CellKey {
    /// Opens `name`; `None` unless it holds a string that is redis-cell's
    /// state (any other string, and a server that cannot read strings in
    /// place, leave the key alone).
    fn open(ctx: Ctx, name: *mut raw::RedisModuleString) -> Option<CellKey> {
        let mode = (raw::REDISMODULE_READ | raw::REDISMODULE_WRITE) as c_int;
        // SAFETY: the context and the key name are the current call's.
        let key = unsafe { api!(RedisModule_OpenKey)(ctx.as_ptr(), name, mode) };
        let mut cell_key = CellKey {
            key: NonNull::new(key.cast::<raw::RedisModuleKey>())?,
            tat_ns: 0,
        };
        // SAFETY: the key is open for the life of `cell_key`.
        let key_type = unsafe { api!(RedisModule_KeyType)(cell_key.key.as_ptr()) };
        if key_type as isize != raw::REDISMODULE_KEYTYPE_STRING {
            return None;
        }
        cell_key.tat_ns = cell::state(cell_key.string()?)?;
        Some(cell_key)
    }

    /// The string's bytes, read in place. `RedisModule_StringDMA` is not in
    /// the list of functions the module requires: where the server lacks it,
    /// no string is read, so none is converted.
    fn string(&self) -> Option<&[u8]> {
        // SAFETY: copying a function pointer out of the server's table
        // takes no reference.
        let dma = unsafe { raw::RedisModule_StringDMA }?;
        let mut len = 0usize;
        // SAFETY: the key is open and holds a string; read access only (the
        // server may re-encode the string in place, never change it).
        let ptr = unsafe { dma(self.key.as_ptr(), &mut len, raw::REDISMODULE_READ as c_int) };
        if ptr.is_null() {
            return None;
        }
        // SAFETY: the server answers the string's buffer and its length; it
        // lives while the key is open and unchanged, which `&self` ensures
        // for the borrow.
        Some(unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len) })
    }

    /// Deletes the key (its TTL with it), and closes it.
    fn delete(self) {
        // SAFETY: the key is open for writing for the life of `self`.
        unsafe { api!(RedisModule_DeleteKey)(self.key.as_ptr()) };
    }
}

impl Drop for CellKey {
    fn drop(&mut self) {
        // SAFETY: opened by `CellKey::open` and closed once, here.
        unsafe { api!(RedisModule_CloseKey)(self.key.as_ptr()) };
    }
}
