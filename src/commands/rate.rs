//! `CHARON.RATE key capacity refill period [cost] [LIMIT capacity refill
//! period]...`: the decision, over every band at once.

use super::{open_for_write, publish_bucket, Reply};
use crate::bucket::{self, Change};
use crate::metrics;
use crate::parse::{self, WaitKeyword};
use crate::server::{Args, Ctx};

pub fn run(ctx: Ctx, args: Args) -> Reply {
    let mut key = match open_for_write(ctx, args, args.len() >= 5) {
        Ok(key) => key,
        Err(reply) => return reply,
    };
    let request = match parse::request(args.len() - 2, |i| args.bytes(i + 2), WaitKeyword::None) {
        Ok(request) => request,
        Err(error) => return error.into(),
    };
    let limits = request.limits.as_slice();
    let (verdict, change) = bucket::rate(key.bucket(), limits, request.cost, ctx.now_ms());
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
