//! The blocking adapter (`failover-buffer-std`): its idle path, and a failover holding 1,000
//! threads.
//!
//! Run with `cargo bench -p failover-buffer-benches --bench std`.

use std::hint::black_box;
use std::thread;
use std::time::{Duration, Instant};

use criterion::{
    BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use failover_buffer_benches::{CAUSE, config, serving};
use failover_buffer_std::{FailoverBuffer, Shard};

/// Threads held in the failover benchmark.
const THREADS: usize = 1_000;

/// A buffer of `size` slots with one shard whose primary serves with term 1.
fn buffer(size: usize, drain_concurrency: usize) -> (FailoverBuffer, Shard) {
    let buffer = FailoverBuffer::new(config(size, drain_concurrency)).expect("the config is valid");
    let shard = buffer.register_shard("bench", "0");
    buffer
        .health(&shard, serving(1))
        .expect("the first stamp is never stale");
    (buffer, shard)
}

/// A first attempt on an idle shard.
fn idle(c: &mut Criterion) {
    let (buffer, shard) = buffer(1_000, 1);
    c.bench_function("std/idle_request", |b| {
        // The answer is matched, as a router does (see the core's idle benchmark).
        b.iter(|| {
            matches!(
                buffer.wait_for_failover_end(black_box(&shard), None),
                Ok(None)
            )
        })
    });
}

/// The time to start `THREADS` threads and have each held, and the time from the health
/// stamp that ends the failover until every thread has retried and exited.
fn failover(drain_concurrency: usize) -> (Duration, Duration) {
    let (buffer, shard) = buffer(THREADS, drain_concurrency);
    let start = Instant::now();
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            let (buffer, shard) = (buffer.clone(), shard.clone());
            thread::spawn(move || {
                let guard = buffer
                    .wait_for_failover_end(&shard, Some(CAUSE))
                    .expect("the buffer has room for every request");
                assert!(guard.is_some(), "a held request is released to retry");
                // Dropping the guard reports the retry done at once: the buffer's cost alone.
            })
        })
        .collect();
    // The adapter signals nothing when a thread parks; look at the queue between yields.
    while buffer.queued(&shard) < THREADS {
        thread::yield_now();
    }
    let enqueued = start.elapsed();
    let start = Instant::now();
    buffer.health(&shard, serving(2)).expect("terms only rise");
    for thread in threads {
        thread.join().expect("a request thread does not panic");
    }
    let drained = start.elapsed();
    assert_eq!(buffer.held_slots(), 0);
    (enqueued, drained)
}

/// 1,000 threads held through one failover: starting and queueing them, then (separately)
/// releasing them with a health stamp until all have retried and exited.
fn thousand_threads(c: &mut Criterion) {
    let mut group = c.benchmark_group("std/1000_threads_held");
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Elements(THREADS as u64));
    group.bench_function("spawn_and_enqueue", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| failover(1).0).sum())
    });
    for concurrency in [1, 16] {
        group.bench_function(
            BenchmarkId::new("end_drain_and_join_concurrency", concurrency),
            |b| b.iter_custom(|iters| (0..iters).map(|_| failover(concurrency).1).sum()),
        );
    }
    group.finish();
}

criterion_group!(benches, idle, thousand_threads);
criterion_main!(benches);
