//! `CHARON.REFUND key tokens`: gives tokens back, never above capacity.

use super::{open_for_write, publish_bucket, Reply};
use crate::compat;
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
    // No key is a full bucket: nothing to give back to.
    let Some(bucket) = key.bucket() else {
        return Reply::Null;
    };
    metrics::count(&metrics::REFUNDS);

    let remaining = bucket.refund(tokens, ctx.now_ms());
    if bucket.is_full() {
        // A full bucket is the same as no key: free it now.
        key.delete();
        ctx.signal_modified(key.name());
        ctx.notify(compat::event_class(), c"charon.refund", key.name());
        ctx.replicate_del(key.name());
    } else if !publish_bucket(ctx, &mut key, c"charon.refund") {
        return Reply::internal_error();
    }
    Reply::Integer(remaining)
}
