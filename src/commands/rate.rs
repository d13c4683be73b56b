//! `CHARON.RATE key capacity refill period [cost]`: the decision.

use super::{open_for_write, publish_bucket, Reply};
use crate::bucket::{self, Change};
use crate::metrics;
use crate::parse;
use crate::server::{Args, Ctx};

pub fn run(ctx: Ctx, args: Args) -> Reply {
    let mut key = match open_for_write(ctx, args, (5..=6).contains(&args.len())) {
        Ok(key) => key,
        Err(reply) => return reply,
    };
    let limit = match parse::limit(args.bytes(2), args.bytes(3), args.bytes(4)) {
        Ok(limit) => limit,
        Err(error) => return error.into(),
    };
    let cost = match parse::cost(args.get(5)) {
        Ok(cost) => cost,
        Err(error) => return error.into(),
    };

    let (verdict, change) = bucket::rate(key.bucket(), &[limit], cost, ctx.now_ms());
    metrics::decision(verdict.limited);
    // Only a request that took tokens changes anything: limited requests and
    // cost 0 leave the value and its TTL as they were and replicate nothing.
    match change {
        Change::None => return Reply::Verdict(verdict),
        Change::Updated => {}
        Change::Created(bucket) => {
            if !key.set(bucket) {
                return Reply::internal_error();
            }
        }
    }
    if !publish_bucket(ctx, &mut key, c"charon.rate") {
        return Reply::internal_error();
    }
    Reply::Verdict(verdict)
}
