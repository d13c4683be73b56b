//! `CHARON.RATE key capacity refill period [cost]`: the decision.

use super::{publish, Reply};
use crate::bucket::{self, Bucket};
use crate::datatype::state_args;
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

    let now = ctx.now_ms();
    let decision = bucket::decide_rate(stored.as_deref(), &[limit], cost, now);
    metrics::decision(decision.verdict.limited);

    // Only a request that took tokens changes anything: limited requests and
    // cost 0 leave the value and its TTL as they were and replicate nothing.
    if let Some(bands) = decision.taken {
        let (state, full_at) = match stored {
            Some(bucket) => {
                bucket.store(bands, now);
                (state_args(bucket), bucket.full_at_ms())
            }
            None => {
                let bucket = Bucket::created(bands, now);
                let change = (state_args(&bucket), bucket.full_at_ms());
                if !key.set_bucket(bucket) {
                    return Reply::internal_error();
                }
                change
            }
        };
        publish(ctx, &mut key, key_name, c"charon.rate", full_at, &state);
    }
    Reply::Verdict(decision.verdict)
}
