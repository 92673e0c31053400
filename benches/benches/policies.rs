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

criterion_group!(benches, full, free);
criterion_main!(benches);
