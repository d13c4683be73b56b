//! `CHARON.ACQUIRE key capacity refill period [cost] [LIMIT capacity refill
//! period]... TIMEOUT ms`: `CHARON.RESERVE` with `MAXWAIT` = `TIMEOUT`,
//! answered when the turn comes. A refused request is answered at once; a
//! granted one blocks its client until its turn, on a module timer of its
//! own (so the reply comes on time, not at the server's next scan of
//! blocked clients), and then receives RESERVE's reply.
//!
//! A client that goes away, or is unblocked by `CLIENT UNBLOCK`, before its
//! turn gives its tokens back to every band, as `CHARON.REFUND` would
//! (replicated as state). That happens on a timer too, in a context made
//! for changing keys and replicating, not inside the server's teardown of
//! the client. A client that cannot block (`MULTI`, a script, a function,
//! a context that denies blocking) is answered as RESERVE with `MAXWAIT 0`.

use redis_module::raw;
use std::collections::HashMap;
use std::ffi::{c_int, c_void};
use std::sync::{Mutex, PoisonError};

use super::refund::give_back;
use super::reserve::reserve;
use super::Reply;
use crate::datatype::BucketKey;
use crate::guard::contain;
use crate::metrics;
use crate::parse::WaitKeyword;
use crate::server::{self, Args, BlockCallbacks, BlockedClient, Ctx};
use crate::token_bucket::Verdict;

/// A client waiting for its turn.
struct Waiter {
    /// What it is told when its turn comes.
    verdict: Verdict,
    /// Where its tokens go back if it leaves first.
    give_back: GiveBack,
    timer: raw::RedisModuleTimerID,
}

/// Tokens to give back to a key's bucket.
struct GiveBack {
    key: Vec<u8>,
    db: c_int,
    tokens: u64,
}

/// The waiting clients, by blocked-client handle. Only the main thread
/// touches it (commands, timers and blocked-client callbacks all run there).
static WAITERS: Mutex<Option<HashMap<usize, Waiter>>> = Mutex::new(None);

fn with_waiters<R>(f: impl FnOnce(&mut HashMap<usize, Waiter>) -> R) -> R {
    let mut waiters = WAITERS.lock().unwrap_or_else(PoisonError::into_inner);
    f(waiters.get_or_insert_with(HashMap::new))
}

const CALLBACKS: BlockCallbacks = BlockCallbacks {
    reply: Some(reply_callback),
    timeout: Some(unblocked_callback),
    free: Some(free_callback),
    disconnect: Some(disconnect_callback),
};

pub fn run(ctx: Ctx, args: Args) -> Reply {
    let may_block = ctx.can_block();
    let (verdict, cost) = match reserve(ctx, args, WaitKeyword::Timeout, may_block) {
        Ok(decided) => decided,
        Err(reply) => return reply,
    };
    // Refused, or granted with the turn now: answered at once.
    let wait = match verdict.retry_after_ms {
        Some(wait) if !verdict.limited && may_block => wait,
        _ => return Reply::Verdict(verdict),
    };
    let Some(bc) = ctx.block_client(&CALLBACKS) else {
        // The grant stands: the caller is told its wait, as by RESERVE.
        return Reply::Verdict(verdict);
    };
    // At most the largest accepted wait, which fits.
    let ms = i64::try_from(wait).unwrap_or(i64::MAX);
    let timer = ctx.create_timer(ms, Some(turn_callback), bc.as_ptr().cast());
    let give_back = GiveBack {
        key: args.bytes(1).to_vec(),
        db: ctx.selected_db(),
        tokens: cost,
    };
    with_waiters(|waiters| {
        waiters.insert(
            bc.as_ptr() as usize,
            Waiter {
                verdict,
                give_back,
                timer,
            },
        )
    });
    metrics::adjust(&metrics::WAITING, true);
    Reply::Blocked
}

/// The waiter of `bc`, no longer waiting.
fn take_waiter(bc: BlockedClient) -> Option<Waiter> {
    let waiter = with_waiters(|waiters| waiters.remove(&(bc.as_ptr() as usize)))?;
    metrics::adjust(&metrics::WAITING, false);
    Some(waiter)
}

/// The turn came: the client gets its reply.
fn turn(bc: BlockedClient) {
    if let Some(waiter) = take_waiter(bc) {
        let verdict = Box::into_raw(Box::new(waiter.verdict));
        // SAFETY: `bc` was still waiting (it had a waiter), so it is
        // blocked and not handed back; `free_callback` takes the verdict.
        unsafe { server::unblock(bc, verdict.cast()) };
    }
}

/// The client left its turn (disconnected, or unblocked): its tokens go
/// back on a timer, and the blocked-client handle is handed back. Answers
/// what it gave back, if it was still waiting.
fn cancel(ctx: Ctx, bc: BlockedClient) -> Option<GiveBack> {
    let waiter = take_waiter(bc)?;
    ctx.stop_timer(waiter.timer);
    metrics::count(&metrics::CANCELLED);
    // SAFETY: `bc` was still waiting, so not handed back yet; no data.
    unsafe { server::unblock(bc, std::ptr::null_mut()) };
    Some(waiter.give_back)
}

/// Schedules `back` to be given back as soon as possible.
fn give_back_later(ctx: Ctx, back: GiveBack) {
    let data = Box::into_raw(Box::new(back));
    ctx.create_timer(0, Some(give_back_callback), data.cast());
}

/// Gives the tokens back, on the key's own database, as REFUND would.
fn give_back_now(ctx: Ctx, back: &GiveBack) {
    if !ctx.select_db(back.db) {
        return;
    }
    let name = ctx.string(&back.key);
    if let Ok(Some(mut key)) = BucketKey::open(ctx, name.as_ptr(), true) {
        give_back(ctx, &mut key, back.tokens, c"charon.acquire");
    }
}

/// What a client unblocked by `CLIENT UNBLOCK` is told: refused, with the
/// bucket as it stands once its tokens are back.
fn unblocked_reply(ctx: Ctx, back: &GiveBack, verdict: Verdict) -> Verdict {
    let name = ctx.string(&back.key);
    let stands = BucketKey::open(ctx, name.as_ptr(), false)
        .ok()
        .flatten()
        .and_then(|mut key| {
            let mut bucket = key.bucket()?.clone();
            let now = ctx.now_ms();
            bucket.refund(back.tokens, now);
            Some(bucket.peek(back.tokens, now))
        });
    let stands = stands.unwrap_or(Verdict {
        remaining: verdict.limit,
        reset_after_ms: 0,
        ..verdict
    });
    Verdict {
        limited: true,
        retry_after_ms: None,
        ..stands
    }
}

extern "C" fn turn_callback(_ctx: *mut raw::RedisModuleCtx, data: *mut c_void) {
    contain((), || {
        if let Some(bc) = std::ptr::NonNull::new(data.cast()) {
            turn(bc);
        }
    })
}

extern "C" fn reply_callback(
    ctx: *mut raw::RedisModuleCtx,
    _argv: *mut *mut raw::RedisModuleString,
    _argc: c_int,
) -> c_int {
    contain((), || {
        // SAFETY: the context the server passes to this reply callback.
        let Some(ctx) = (unsafe { Ctx::new(ctx) }) else {
            return;
        };
        // SAFETY: what `turn` handed over: a verdict, alive until
        // `free_callback`.
        match unsafe { ctx.blocked_data().cast::<Verdict>().as_ref() } {
            Some(verdict) => Reply::Verdict(*verdict).send(ctx),
            None => Reply::internal_error().send(ctx),
        }
    });
    raw::REDISMODULE_OK as c_int
}

extern "C" fn free_callback(_ctx: *mut raw::RedisModuleCtx, data: *mut c_void) {
    contain((), || {
        if !data.is_null() {
            // SAFETY: `turn` handed over a boxed verdict; freed once, here.
            drop(unsafe { Box::from_raw(data.cast::<Verdict>()) });
        }
    })
}

extern "C" fn disconnect_callback(
    ctx: *mut raw::RedisModuleCtx,
    bc: *mut raw::RedisModuleBlockedClient,
) {
    contain((), || {
        // SAFETY: the context the server passes to this callback.
        let (Some(ctx), Some(bc)) = (unsafe { Ctx::new(ctx) }, std::ptr::NonNull::new(bc)) else {
            return;
        };
        if let Some(back) = cancel(ctx, bc) {
            give_back_later(ctx, back);
        }
    })
}

/// `CLIENT UNBLOCK` (the only way a wait without a server timeout ends
/// early): the client is told it was refused.
extern "C" fn unblocked_callback(
    ctx: *mut raw::RedisModuleCtx,
    _argv: *mut *mut raw::RedisModuleString,
    _argc: c_int,
) -> c_int {
    contain((), || {
        // SAFETY: the context the server passes to this callback.
        let Some(ctx) = (unsafe { Ctx::new(ctx) }) else {
            return;
        };
        let Some(bc) = ctx.blocked_client() else {
            return;
        };
        let verdict = with_waiters(|waiters| {
            waiters
                .get(&(bc.as_ptr() as usize))
                .map(|waiter| waiter.verdict)
        });
        match (verdict, cancel(ctx, bc)) {
            (Some(verdict), Some(back)) => {
                Reply::Verdict(unblocked_reply(ctx, &back, verdict)).send(ctx);
                give_back_later(ctx, back);
            }
            // Its turn had come: it keeps its grant.
            _ => Reply::internal_error().send(ctx),
        }
    });
    raw::REDISMODULE_OK as c_int
}

extern "C" fn give_back_callback(ctx: *mut raw::RedisModuleCtx, data: *mut c_void) {
    contain((), || {
        if data.is_null() {
            return;
        }
        // SAFETY: `give_back_later` handed over a boxed `GiveBack`; this
        // timer fires once, so it is taken back once.
        let back = unsafe { Box::from_raw(data.cast::<GiveBack>()) };
        // SAFETY: the context the server passes to this timer callback.
        if let Some(ctx) = unsafe { Ctx::new(ctx) } {
            give_back_now(ctx, &back);
        }
    })
}
