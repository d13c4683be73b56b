//! `CHARON.INSPECT key`: every band of a bucket as it stands now, for
//! debugging and dashboards. Read-only: works on replicas, changes nothing.

use super::{open_key, Reply};
use crate::server::{Args, Ctx};

pub fn run(ctx: Ctx, args: Args) -> Reply {
    let mut key = match open_key(ctx, args, args.len() == 2, false) {
        Ok(key) => key,
        Err(reply) => return reply,
    };
    match key.as_mut().and_then(|key| key.bucket()) {
        None => Reply::Null,
        Some(bucket) => Reply::Bands(bucket.inspect(ctx.now_ms())),
    }
}
