//! `CHARON.SETSTATE key updated_at_ms band_count [capacity refill period_ms
//! tokens fraction]...`, or `CHARON.SETSTATE key packed-state`: sets a
//! bucket's whole state.
//!
//! This is what the primary replicates, and what AOF rewrite writes, in place
//! of decisions: a replica or an AOF replay must never decide again with its
//! own clock. It is deterministic (the key's expiry is derived from the state,
//! no clock is read), validated like an RDB payload, and replicated verbatim.

use super::{publish, Reply};
use crate::bucket::{BandFields, Bucket, MAX_BANDS};
use crate::parse;
use crate::server::{Args, Ctx, KeyValue};

const FIELDS_PER_BAND: usize = 5;

pub fn run(ctx: Ctx, args: Args) -> Reply {
    if args.len() != 3 && args.len() < 4 + FIELDS_PER_BAND {
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
    let bucket = if args.len() == 3 {
        Bucket::unpack(args.bytes(2))
    } else {
        match from_fields(args) {
            Ok(bucket) => Ok(bucket),
            Err(reply) => return reply,
        }
    };
    let bucket = match bucket {
        Ok(bucket) => bucket,
        Err(error) => return Reply::Error(format!("ERR invalid bucket state: {error}").into()),
    };

    ctx.replicate_verbatim();
    if bucket.is_full() {
        // A full bucket is the same as no key.
        if stored.is_some() {
            key.delete();
            ctx.signal_modified(key_name);
        }
        return Reply::Ok;
    }
    let full_at = bucket.full_at_ms();
    match stored {
        Some(existing) => *existing = bucket,
        None => {
            if !key.set_bucket(bucket) {
                return Reply::internal_error();
            }
        }
    }
    publish(ctx, &mut key, key_name, c"charon.setstate", full_at, None);
    Reply::Ok
}

/// The bucket of the readable form; a reply naming what is wrong.
fn from_fields(args: Args) -> Result<Bucket, Reply> {
    let Some(updated_at_ms) = parse::non_negative(args.bytes(2)) else {
        return Err(Reply::Error(
            "ERR updated_at must be a non-negative integer".into(),
        ));
    };
    let band_count = match parse::positive(args.bytes(3)) {
        Some(count) if count <= MAX_BANDS as u64 => count as usize,
        _ => {
            return Err(Reply::Error(
                format!("ERR band_count must be between 1 and {MAX_BANDS}").into(),
            ))
        }
    };
    if args.len() != 4 + FIELDS_PER_BAND * band_count {
        return Err(Reply::WrongArity);
    }
    let mut values = (4..args.len()).map(|i| parse::non_negative(args.bytes(i)));
    let fields = (0..band_count)
        .map(|_| BandFields::read(|| values.next().flatten().ok_or(())))
        .collect::<Result<Vec<_>, ()>>()
        .map_err(|()| {
            Reply::Error(
                "ERR invalid bucket state: band fields must be non-negative integers".into(),
            )
        })?;
    // updated_at_ms <= i64::MAX: it parsed as a non-negative i64.
    Bucket::from_fields(updated_at_ms as i64, &fields)
        .map_err(|error| Reply::Error(format!("ERR invalid bucket state: {error}").into()))
}
