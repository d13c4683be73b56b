//! `CHARON.PEEK key [cost]`: what `CHARON.RATE` would answer, changing
//! nothing (opened read-only: no key created, no TTL touched, works on
//! replicas).

use super::{open_key, Reply};
use crate::metrics;
use crate::parse;
use crate::server::{Args, Ctx};

pub fn run(ctx: Ctx, args: Args) -> Reply {
    let mut key = match open_key(ctx, args, (2..=3).contains(&args.len()), false) {
        Ok(key) => key,
        Err(reply) => return reply,
    };
    let cost = match parse::cost(args.get(2)) {
        Ok(cost) => cost,
        Err(error) => return error.into(),
    };
    metrics::count(&metrics::PEEKS);
    match key.as_mut().and_then(|key| key.bucket()) {
        None => Reply::Null,
        Some(bucket) => Reply::Verdict(bucket.peek(cost, ctx.now_ms())),
    }
}
