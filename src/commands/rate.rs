//! `CHARON.RATE key capacity refill period [cost]`: the decision.

use super::{publish_bucket, Reply};
use crate::bucket::{self, Change};
use crate::metrics;
use crate::parse;
use crate::server::{Args, Ctx, KeyValue};

pub fn run(ctx: Ctx, args: Args) -> Reply {
    if !(5..=6).contains(&args.len()) {
        return Reply::WrongArity;
    }
    let key_name = args.raw(1);
    let Some(mut key) = ctx.open_key(key_name, true) else {
        return Reply::internal_error();
    };
    // The key's type is checked first: WRONGTYPE whatever the arguments say.
    let stored = match key.value() {
        KeyValue::Empty => None,
        KeyValue::Bucket(bucket) => Some(bucket),
        KeyValue::OtherType => return Reply::WrongType,
    };
    let limit = match parse::limit(args.bytes(2), args.bytes(3), args.bytes(4)) {
        Ok(limit) => limit,
        Err(error) => return error.into(),
    };
    let cost = match parse::cost(args.get(5)) {
        Ok(cost) => cost,
        Err(error) => return error.into(),
    };

    let (verdict, change) = bucket::rate(stored, &[limit], cost, ctx.now_ms());
    metrics::decision(verdict.limited);
    // Only a request that took tokens changes anything: limited requests and
    // cost 0 leave the value and its TTL as they were and replicate nothing.
    match change {
        Change::None => return Reply::Verdict(verdict),
        Change::Updated => {}
        Change::Created(bucket) => {
            if !key.set_bucket(bucket) {
                return Reply::internal_error();
            }
        }
    }
    if !publish_bucket(ctx, &mut key, key_name, c"charon.rate") {
        return Reply::internal_error();
    }
    Reply::Verdict(verdict)
}
