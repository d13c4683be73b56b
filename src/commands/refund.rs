//! `CHARON.REFUND key tokens`: gives tokens back, never above capacity.

use std::ffi::CStr;

use super::{open_for_write, publish_bucket, Reply};
use crate::compat;
use crate::datatype::BucketKey;
use crate::metrics;
use crate::parse::{self, ArgError};
use crate::server::{Args, Ctx};

pub fn run(ctx: Ctx, args: Args) -> Reply {
    let mut key = match open_for_write(ctx, args, args.len() == 3) {
        Ok(key) => key,
        Err(reply) => return reply,
    };
    let Some(tokens) = parse::positive(args.bytes(2)) else {
        return ArgError::Tokens.into();
    };
    match give_back(ctx, &mut key, tokens, c"charon.refund") {
        // No key is a full bucket: nothing to give back to.
        None => Reply::Null,
        Some(remaining) => {
            metrics::count(&metrics::REFUNDS);
            Reply::Integer(remaining)
        }
    }
}

/// Gives `tokens` back to every band of the bucket under `key` (each capped
/// at its capacity) and publishes the change (`event`); answers the whole
/// tokens remaining, or `None` when the key holds no bucket. What REFUND
/// does, and what a cancelled ACQUIRE wait does with its tokens.
pub(super) fn give_back(ctx: Ctx, key: &mut BucketKey, tokens: u64, event: &CStr) -> Option<u64> {
    let bucket = key.bucket()?;
    let remaining = bucket.refund(tokens, ctx.now_ms());
    if bucket.is_full() {
        // A full bucket is the same as no key: free it now.
        key.delete();
        ctx.signal_modified(key.name());
        ctx.notify(compat::event_class(), event, key.name());
        ctx.replicate_del(key.name());
    } else {
        publish_bucket(ctx, key, event);
    }
    Some(remaining)
}
