//! `CHARON.RATE key capacity refill period [cost] [LIMIT capacity refill
//! period]...`: the decision, over every band at once.

use super::{decide, open_for_write, Reply};
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
    match decide(
        ctx,
        &mut key,
        limits,
        request.cost,
        ctx.now_ms(),
        c"charon.rate",
        false,
    ) {
        Ok(verdict) => Reply::Verdict(verdict),
        Err(reply) => reply,
    }
}
