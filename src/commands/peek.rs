//! `CHARON.PEEK key [cost]`: what `CHARON.RATE` would answer, changing
//! nothing (opened read-only: no key created, no TTL touched, works on
//! replicas).

use super::Reply;
use crate::metrics;
use crate::parse;
use crate::server::{Args, Ctx, KeyValue};

pub fn run(ctx: Ctx, args: Args) -> Reply {
    if !(2..=3).contains(&args.len()) {
        return Reply::WrongArity;
    }
    // A missing key opened for reading comes back as no key at all.
    let mut key = ctx.open_key(args.raw(1), false);
    let stored = match key.as_mut().map(|key| key.value()) {
        None | Some(KeyValue::Empty) => None,
        Some(KeyValue::Bucket(bucket)) => Some(bucket),
        Some(KeyValue::OtherType) => return Reply::WrongType,
    };
    let cost = match parse::cost(args.get(2)) {
        Ok(cost) => cost,
        Err(error) => return error.into(),
    };
    metrics::count(&metrics::PEEKS);
    match stored {
        None => Reply::Null,
        Some(bucket) => Reply::Verdict(bucket.peek(cost, ctx.now_ms())),
    }
}
