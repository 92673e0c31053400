//! Fair sharing (issue 15): what a request costs when the buffer is full, under each
//! eviction policy and with a per-shard cap, against the same request with a free slot.
//!
//! Run with `cargo bench -p failover-buffer-benches --bench policies`. Every group's
//! throughput is set to the requests it makes, so time / count is the cost of one request
//! (its admission, the eviction it causes, and polling the actions it queued).

use std::hint::black_box;

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use failover_buffer::{Admission, Buffer, Config, Eviction, ShardId, Timestamp};
use failover_buffer_benches::{CAUSE, config, serving};

const SIZE: usize = 1_000;

/// A buffer of `SIZE` slots with shards `a` and `b`; `a` holds `held` requests.
fn holding(
    eviction: Eviction,
    max_per_shard: Option<usize>,
    held: usize,
) -> (Buffer, ShardId, ShardId) {
    let config = Config {
        eviction,
        max_per_shard,
        ..config(SIZE, 1)
    };
    let mut buffer = Buffer::new(config).expect("valid");
    let a = buffer.register_shard("bench", "a");
    let b = buffer.register_shard("bench", "b");
    let now = Timestamp::from_secs(1);
    for shard in [a, b] {
        buffer.health(now, shard, serving(1)).expect("known shard");
    }
    for _ in 0..held {
        let _ = black_box(buffer.request(now, a, Some(CAUSE)));
    }
    while buffer.poll_action().is_some() {}
    (buffer, a, b)
}

/// `SIZE` failover requests on `shard`, each answer matched and its actions polled.
fn requests(buffer: &mut Buffer, shard: ShardId) -> usize {
    let now = Timestamp::from_secs(1);
    let mut waited = 0;
    for _ in 0..SIZE {
        if matches!(
            buffer.request(black_box(now), black_box(shard), Some(CAUSE)),
            Ok(Admission::Wait(_))
        ) {
            waited += 1;
        }
        while buffer.poll_action().is_some() {}
    }
    waited
}

fn full(c: &mut Criterion) {
    let mut group = c.benchmark_group("policies/request_when_full");
    group.throughput(Throughput::Elements(SIZE as u64));
    // (name, policy, cap, which shard asks): the full buffer is all shard a's.
    let cases = [
        (
            "oldest_of_shard/own_shard",
            Eviction::OldestOfShard,
            None,
            false,
        ),
        (
            "oldest_of_shard/other_shard_refused",
            Eviction::OldestOfShard,
            None,
            true,
        ),
        (
            "oldest_anywhere/other_shard",
            Eviction::OldestAnywhere,
            None,
            true,
        ),
        ("reject_new/refused", Eviction::RejectNew, None, false),
        (
            "cap_500/own_shard",
            Eviction::OldestOfShard,
            Some(SIZE / 2),
            false,
        ),
    ];
    for (name, eviction, cap, other) in cases {
        group.bench_function(BenchmarkId::from_parameter(name), |bench| {
            bench.iter_batched(
                || holding(eviction, cap, SIZE),
                |(mut buffer, a, b)| {
                    black_box(requests(&mut buffer, if other { b } else { a }));
                    buffer
                },
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

/// The same requests with every slot free: what the buffer-wide list and the per-shard
/// count add to an enqueue (compare `core/enqueue/1000`).
fn free(c: &mut Criterion) {
    let mut group = c.benchmark_group("policies/request_with_room");
    group.throughput(Throughput::Elements(SIZE as u64));
    for eviction in Eviction::ALL {
        group.bench_function(BenchmarkId::from_parameter(eviction.as_str()), |bench| {
            bench.iter_batched(
                || holding(eviction, None, 0),
                |(mut buffer, a, _)| {
                    black_box(requests(&mut buffer, a));
                    buffer
                },
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

/// Sized requests against a byte budget that binds before the slots do: 1,000 requests of
/// 4 bytes each into a budget of 4,000 bytes already spent, each evicting the oldest (of its
/// shard, or of any shard), against the same requests into an empty budget.
fn bytes(c: &mut Criterion) {
    let mut group = c.benchmark_group("policies/request_sized");
    group.throughput(Throughput::Elements(SIZE as u64));
    let budget = |eviction| Config {
        eviction,
        max_bytes: Some(4 * SIZE as u64),
        ..config(10 * SIZE, 1)
    };
    let filled = |config: Config, held: usize| {
        let mut buffer = Buffer::new(config).expect("valid");
        let a = buffer.register_shard("bench", "a");
        let now = Timestamp::from_secs(1);
        buffer.health(now, a, serving(1)).expect("known shard");
        for _ in 0..held {
            let _ = black_box(buffer.request_sized(now, a, Some(CAUSE), 4));
        }
        while buffer.poll_action().is_some() {}
        (buffer, a)
    };
    let sized = |buffer: &mut Buffer, shard| {
        let now = Timestamp::from_secs(1);
        let mut waited = 0;
        for _ in 0..SIZE {
            if matches!(
                buffer.request_sized(black_box(now), black_box(shard), Some(CAUSE), 4),
                Ok(Admission::Wait(_))
            ) {
                waited += 1;
            }
            while buffer.poll_action().is_some() {}
        }
        waited
    };
    for (name, eviction, held) in [
        ("with_room", Eviction::OldestOfShard, 0),
        ("over_budget/oldest_of_shard", Eviction::OldestOfShard, SIZE),
        (
            "over_budget/oldest_anywhere",
            Eviction::OldestAnywhere,
            SIZE,
        ),
    ] {
        group.bench_function(BenchmarkId::from_parameter(name), |bench| {
            bench.iter_batched(
                || filled(budget(eviction), held),
                |(mut buffer, a)| {
                    black_box(sized(&mut buffer, a));
                    buffer
                },
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, full, free, bytes);
criterion_main!(benches);
