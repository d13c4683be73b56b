//! `CHARON.RESERVE key capacity refill period [cost] [LIMIT capacity refill
//! period]... MAXWAIT ms`: takes a turn in line. Granted when the turn (the
//! first moment every band holds `cost`, after every turn already granted)
//! is at most `MAXWAIT` away: `cost` is taken now, and the caller acts after
//! the wait it is told. `MAXWAIT 0` is `CHARON.RATE`.

use super::{open_for_write, store, Reply};
use crate::bucket;
use crate::metrics;
use crate::parse::{self, WaitKeyword};
use crate::server::{Args, Ctx};
use crate::token_bucket::Verdict;

pub fn run(ctx: Ctx, args: Args) -> Reply {
    match reserve(ctx, args, WaitKeyword::MaxWait, true) {
        Ok((verdict, _)) => Reply::Verdict(verdict),
        Err(reply) => reply,
    }
}

/// The reservation behind RESERVE (`MAXWAIT`) and ACQUIRE (`TIMEOUT`):
/// parsed, decided, stored and published. `may_wait` false decides as with
/// a wait bound of 0 (an ACQUIRE whose client cannot block). Answers the
/// verdict and the cost.
pub(super) fn reserve(
    ctx: Ctx,
    args: Args,
    keyword: WaitKeyword,
    may_wait: bool,
) -> Result<(Verdict, u64), Reply> {
    let mut key = open_for_write(ctx, args, args.len() >= 5)?;
    let request = parse::request(args.len() - 2, |i| args.bytes(i + 2), keyword)?;
    let max_wait = if may_wait {
        request.wait_ms.unwrap_or(0)
    } else {
        0
    };
    let limits = request.limits.as_slice();
    let (verdict, change) =
        bucket::reserve(key.bucket(), limits, request.cost, max_wait, ctx.now_ms())
            .map_err(|error| Reply::Error(error.to_string().into()))?;
    if !verdict.limited {
        metrics::count(&metrics::RESERVED);
    }
    store(ctx, &mut key, change, c"charon.reserve", false)?;
    Ok((verdict, request.cost))
}
