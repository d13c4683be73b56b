//! `CHARON.REFUND key tokens`: gives tokens back, never above capacity.

use super::{publish_bucket, Reply};
use crate::metrics;
use crate::parse::{self, ArgError};
use crate::server::{Args, Ctx, KeyValue};

pub fn run(ctx: Ctx, args: Args) -> Reply {
    if args.len() != 3 {
        return Reply::WrongArity;
    }
    let key_name = args.raw(1);
    let Some(mut key) = ctx.open_key(key_name, true) else {
        return Reply::internal_error();
    };
    let stored = match key.value() {
        KeyValue::Empty => None,
        KeyValue::Bucket(bucket) => Some(bucket),
        KeyValue::OtherType => return Reply::WrongType,
    };
    let Some(tokens) = parse::positive(args.bytes(2)) else {
        return ArgError::Tokens.into();
    };
    // No key is a full bucket: nothing to give back to.
    let Some(bucket) = stored else {
        return Reply::Null;
    };
    metrics::count(&metrics::REFUNDS);

    let remaining = bucket.refund(tokens, ctx.now_ms());
    if bucket.is_full() {
        // A full bucket is the same as no key: free it now.
        key.delete();
        ctx.signal_modified(key_name);
        ctx.notify(c"charon.refund", key_name);
        ctx.replicate_del(key_name);
    } else if !publish_bucket(ctx, &mut key, key_name, c"charon.refund") {
        return Reply::internal_error();
    }
    Reply::Integer(remaining)
}
