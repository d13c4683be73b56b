//! Micro-benchmarks of Charon's core, with no server: the token-bucket
//! decision and the argument parsing that every `CHARON.RATE` call runs.
//! `make bench` runs them (`cargo bench --locked --bench core`) and puts the
//! time per call in its report beside the server-side measurements.
//!
//! The cases mirror the server benchmark (`bench/run`): a generous limit
//! (1000000 tokens, 1 per hour: every request allowed, the bucket already
//! exists), a strict one (1 token per hour, drained: every request denied),
//! and a request that finds no bucket. `bucket/rate` is what `CHARON.RATE`
//! runs (it updates the stored bucket in place; each timed call gets its own
//! copy, made outside the timing); `decide_rate` is the same decision with
//! nothing changed.

use charon::bucket::{decide_rate, rate, Bucket};
use charon::parse;
use charon::token_bucket::{decide, refill_all, under_limits, Band, Level, Limit};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use std::hint::black_box;
use std::time::Duration;

const HOUR_MS: u64 = 3_600_000;
/// A server clock reading (ms since the epoch), and one 1.5 s later.
const UPDATED_AT_MS: i64 = 1_750_000_000_000;
const NOW_MS: i64 = UPDATED_AT_MS + 1_500;

fn limit(capacity: u64, refill: u64, period_ms: u64) -> Limit {
    Limit::new(capacity, refill, period_ms).expect("a valid limit")
}

fn band(limit: Limit, tokens: u64, fraction: u64) -> Band {
    Band::new(
        limit,
        Level {
            tokens: tokens as i64,
            fraction,
        },
    )
    .expect("a valid level")
}

/// 1000000 tokens, 1 per hour, 123 taken: allows every request.
fn generous() -> Band {
    band(limit(1_000_000, 1, HOUR_MS), 999_877, 1_234_567)
}

/// 1 token per hour, none left: denies every request.
fn drained() -> Band {
    band(limit(1, 1, HOUR_MS), 0, 42)
}

fn parsing(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse");
    group.bench_function("limit 1000000 1 1h", |b| {
        b.iter(|| parse::limit(black_box(b"1000000"), black_box(b"1"), black_box(b"1h")))
    });
    group.bench_function("limit 1 1 3600000", |b| {
        b.iter(|| parse::limit(black_box(b"1"), black_box(b"1"), black_box(b"3600000")))
    });
    group.bench_function("period_ms 1h", |b| {
        b.iter(|| parse::period_ms(black_box(b"1h")))
    });
    group.bench_function("period_ms 3600000", |b| {
        b.iter(|| parse::period_ms(black_box(b"3600000")))
    });
    group.bench_function("cost default", |b| b.iter(|| parse::cost(black_box(None))));
    group.bench_function("cost 1", |b| {
        b.iter(|| parse::cost(black_box(Some(b"1".as_slice()))))
    });
    group.finish();
}

fn token_bucket(c: &mut Criterion) {
    let mut group = c.benchmark_group("token_bucket");
    let allow = [generous()];
    let deny = [drained()];
    group.bench_function("refill_all 1 band", |b| {
        b.iter(|| {
            refill_all(
                black_box(&allow),
                black_box(UPDATED_AT_MS),
                black_box(NOW_MS),
            )
        })
    });
    group.bench_function("under_limits same limit", |b| {
        let limits = [allow[0].limit()];
        b.iter(|| under_limits(black_box(&allow), black_box(&limits)))
    });
    group.bench_function("under_limits new limit", |b| {
        let limits = [limit(500, 10, 60_000)];
        b.iter(|| under_limits(black_box(&allow), black_box(&limits)))
    });
    group.bench_function("decide allowed", |b| {
        b.iter(|| decide(black_box(&allow), black_box(1)))
    });
    group.bench_function("decide limited", |b| {
        b.iter(|| decide(black_box(&deny), black_box(1)))
    });
    group.finish();
}

fn bucket(c: &mut Criterion) {
    let mut group = c.benchmark_group("bucket");
    let generous_limits = [generous().limit()];
    let strict_limits = [drained().limit()];
    let stored_generous = Bucket::created(vec![generous()], UPDATED_AT_MS);
    let stored_drained = Bucket::created(vec![drained()], UPDATED_AT_MS);
    group.bench_function("rate allowed, stored", |b| {
        b.iter_batched_ref(
            || stored_generous.clone(),
            |bucket| {
                rate(
                    Some(bucket),
                    black_box(&generous_limits),
                    1,
                    black_box(NOW_MS),
                )
            },
            BatchSize::SmallInput,
        )
    });
    group.bench_function("rate limited, stored", |b| {
        b.iter_batched_ref(
            || stored_drained.clone(),
            |bucket| {
                rate(
                    Some(bucket),
                    black_box(&strict_limits),
                    1,
                    black_box(NOW_MS),
                )
            },
            BatchSize::SmallInput,
        )
    });
    group.bench_function("rate allowed, no bucket", |b| {
        b.iter(|| rate(None, black_box(&generous_limits), 1, black_box(NOW_MS)))
    });
    group.bench_function("decide_rate allowed, stored", |b| {
        b.iter(|| {
            decide_rate(
                black_box(Some(&stored_generous)),
                black_box(&generous_limits),
                black_box(1),
                black_box(NOW_MS),
            )
        })
    });
    group.bench_function("decide_rate limited, stored", |b| {
        b.iter(|| {
            decide_rate(
                black_box(Some(&stored_drained)),
                black_box(&strict_limits),
                black_box(1),
                black_box(NOW_MS),
            )
        })
    });
    group.bench_function("decide_rate allowed, no bucket", |b| {
        b.iter(|| {
            decide_rate(
                black_box(None),
                black_box(&generous_limits),
                black_box(1),
                black_box(NOW_MS),
            )
        })
    });
    group.finish();
}

fn config() -> Criterion {
    // Short runs: the whole `make bench` stays within a few minutes, and
    // nanosecond-scale functions settle within a second.
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(1))
        .sample_size(50)
}

criterion_group! {
    name = core;
    config = config();
    targets = parsing, token_bucket, bucket
}
criterion_main!(core);
