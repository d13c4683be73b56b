//! `CHARON.SETSTATE key updated_at_ms band_count [capacity refill period_ms
//! tokens fraction]...`, or `CHARON.SETSTATE key packed-state`: sets a
//! bucket's whole state (the forms are in `formats::readable` and
//! `formats::packed`).
//!
//! This is what the primary replicates, and what AOF rewrite writes, in place
//! of decisions: a replica or an AOF replay must never decide again with its
//! own clock. It is deterministic (the key's expiry is derived from the state,
//! no clock is read), validated like an RDB payload, and replicated verbatim.

use super::{announce, open_for_write, Reply};
use crate::formats::{packed, readable};
use crate::server::{Args, Ctx};

pub fn run(ctx: Ctx, args: Args) -> Reply {
    let arity_ok = args.len() == 3 || readable::may_be_readable(args.len().saturating_sub(2));
    let mut key = match open_for_write(ctx, args, arity_ok) {
        Ok(key) => key,
        Err(reply) => return reply,
    };
    let bucket = if args.len() == 3 {
        packed::unpack(args.bytes(2))
            .map_err(|error| Reply::Error(format!("ERR invalid bucket state: {error}").into()))
    } else {
        let values: Vec<&[u8]> = (2..args.len()).map(|i| args.bytes(i)).collect();
        readable::from_args(&values).map_err(|error| match error {
            readable::ReadableError::Arity => Reply::WrongArity,
            error => Reply::Error(error.to_string().into()),
        })
    };
    let bucket = match bucket {
        Ok(bucket) => bucket,
        Err(reply) => return reply,
    };

    ctx.replicate_verbatim();
    if bucket.is_full() {
        // A full bucket is the same as no key.
        if key.bucket().is_some() {
            key.delete();
            ctx.signal_modified(key.name());
        }
        return Reply::Ok;
    }
    let full_at = bucket.full_at_ms();
    match key.bucket() {
        Some(existing) => *existing = bucket,
        None => {
            if !key.set(bucket) {
                return Reply::internal_error();
            }
        }
    }
    announce(ctx, &mut key, c"charon.setstate", full_at);
    Reply::Ok
}
