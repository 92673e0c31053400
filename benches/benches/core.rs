//! The sans-IO core alone: every input a router makes, on the states DESIGN §9 names.
//!
//! Run with `cargo bench -p failover-buffer-benches --bench core`. Groups whose name ends in
//! a count set criterion's throughput to that many requests, so "thrpt" reads as requests per
//! second and time / count is the cost per request.

use std::collections::VecDeque;
use std::hint::black_box;

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use failover_buffer::{Admission, ShardId};
use failover_buffer_benches::{CAUSE, Core, serving, shards};

/// A first attempt on an idle shard: the path every request takes outside a failover.
fn idle_request(c: &mut Criterion) {
    let mut group = c.benchmark_group("core/idle_request");
    for n in [1, 1_000] {
        let mut core = shards(n, 1_000);
        let (now, shard) = (core.now, core.shard);
        // The answer is matched, as a router does. Handing the whole `Result` to criterion
        // instead measures a store-forwarding stall in the harness, not the buffer.
        group.bench_function(BenchmarkId::new("shards", n), |b| {
            b.iter(|| {
                matches!(
                    core.buffer
                        .request(black_box(now), black_box(shard), black_box(None)),
                    Ok(Admission::Proceed)
                )
            })
        });
    }
    group.finish();
}

/// Queueing `n` requests that failed with a failover error (the first starts the episode).
fn enqueue(c: &mut Criterion) {
    let mut group = c.benchmark_group("core/enqueue");
    for n in [1_000, 100_000] {
        if n > 10_000 {
            group.sample_size(10);
        }
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter_batched(
                || Core::new(n, 1),
                |mut core| {
                    let shard = core.shard;
                    for _ in 0..n {
                        black_box(core.wait(shard));
                    }
                    core
                },
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

/// The end of a failover with `n` queued: the health stamp that ends it, then the whole drain,
/// each released retry reported done oldest first (which releases the next).
fn end_and_drain(c: &mut Criterion) {
    for concurrency in [1, 16] {
        let mut group = c.benchmark_group(format!("core/end_and_drain/concurrency_{concurrency}"));
        for n in [1_000, 100_000] {
            if n > 10_000 {
                group.sample_size(10);
            }
            group.throughput(Throughput::Elements(n as u64));
            group.bench_function(BenchmarkId::from_parameter(n), |b| {
                b.iter_batched(
                    || {
                        let mut core = Core::new(n, concurrency);
                        core.enqueue(n);
                        core
                    },
                    |mut core| {
                        let shard = core.shard;
                        assert_eq!(core.end_and_drain(shard), n);
                        core
                    },
                    BatchSize::LargeInput,
                )
            });
        }
        group.finish();
    }
}

/// A client gives up on the request in the middle of a queue of `n`. A new request joins the
/// back each time, so the queue stays at `n` and the cancelled entry stays in the middle:
/// the figure is one cancel plus one enqueue.
fn cancel_middle(c: &mut Criterion) {
    let mut group = c.benchmark_group("core/cancel_middle_and_requeue");
    for n in [1_000, 10_000, 100_000] {
        let mut core = Core::new(2 * n, 1);
        let mut queue = core.enqueue(n);
        // The queue is the front half, which never moves, then `back` in order: its first
        // ticket is always the middle of the queue.
        let mut back: VecDeque<_> = queue.split_off(n / 2).into();
        let (now, shard) = (core.now, core.shard);
        group.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| {
                let middle = back.pop_front().expect("the back half is never empty");
                core.buffer
                    .cancel(now, middle)
                    .expect("a queued ticket is live");
                match core.buffer.request(now, shard, Some(CAUSE)) {
                    Ok(Admission::Wait(ticket)) => back.push_back(ticket),
                    other => panic!("a buffering shard with free slots holds requests: {other:?}"),
                }
            })
        });
        assert_eq!(core.buffer.queued(shard), Some(n));
    }
    group.finish();
}

/// A tick when the window of the `k` oldest of `n` queued requests has passed: each is
/// released to retry. The figure per element is the cost per expired entry.
fn window_expiry(c: &mut Criterion) {
    let mut group = c.benchmark_group("core/window_expiry");
    group.sample_size(10);
    let n = 100_000;
    for k in [1_000, 100_000] {
        group.throughput(Throughput::Elements(k as u64));
        group.bench_function(BenchmarkId::new(format!("of_{n}"), k), |b| {
            b.iter_batched(
                || {
                    let mut core = Core::new(n, 1);
                    let first = core.now;
                    core.enqueue(k);
                    core.advance();
                    core.enqueue(n - k);
                    let due = first + core.buffer.config().window;
                    (core, due)
                },
                |(mut core, due)| {
                    core.buffer.tick(due);
                    let mut woken = 0;
                    while core.buffer.poll_action().is_some() {
                        woken += 1;
                    }
                    assert_eq!(woken, k);
                    core
                },
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

/// `registered` shards, of which the first `buffering` are failing over (one queued request
/// each) and the rest are idle.
fn rotation(registered: usize, buffering: usize) -> Core {
    let mut core = shards(registered, 4 * registered);
    let ids: Vec<ShardId> = core.buffer.shards().collect();
    for &shard in &ids[..buffering] {
        core.wait(shard);
    }
    core
}

/// End detection by health stamp among many shards. Each iteration ends one shard's episode
/// with a newer term, drains its one request, and starts an episode on the shard that ended
/// one iteration earlier, so the number of buffering shards stays constant. The figure is
/// that whole turn; a flat figure across shard counts shows that a stamp's cost does not grow
/// with the shards registered or buffering.
fn end_detection(c: &mut Criterion) {
    let mut group = c.benchmark_group("core/end_detection_turn");
    for (name, registered, buffering) in [
        ("1_of_2_buffering", 2, 1),
        ("1_of_1000_buffering", 1_000, 1),
        ("999_of_1000_buffering", 1_000, 999),
    ] {
        let mut core = rotation(registered, buffering);
        let ids: Vec<ShardId> = core.buffer.shards().collect();
        // The shards taking turns: the buffering ones and the idle one after them.
        let turn = buffering + 1;
        let mut k = 0;
        group.bench_function(name, |b| {
            b.iter(|| {
                core.advance();
                let ending = ids[k % turn];
                let starting = ids[(k + turn - 1) % turn];
                assert_eq!(core.end_and_drain(ending), 1);
                core.wait(starting);
                k += 1;
            })
        });
    }
    group.finish();
}

/// The steady health stream during a failover: a serving stamp with the term the episode
/// started under (the demoted primary's stale "still serving"), which must not end it, sent
/// to each buffering shard in turn.
fn stale_stamp(c: &mut Criterion) {
    let mut group = c.benchmark_group("core/health_stamp_not_ending");
    for (name, buffering) in [
        ("1_of_1000_buffering", 1),
        ("1000_of_1000_buffering", 1_000),
    ] {
        let mut core = rotation(1_000, buffering);
        let ids: Vec<ShardId> = core.buffer.shards().take(buffering).collect();
        let now = core.now;
        let mut k = 0;
        group.bench_function(name, |b| {
            b.iter(|| {
                let shard = ids[k % buffering];
                k += 1;
                core.buffer.health(now, shard, serving(1))
            })
        });
        assert_eq!(core.buffer.poll_action(), None, "no stamp ended an episode");
    }
    group.finish();
}

/// The timer queries a driver makes after every input, with one or all shards buffering
/// (issue 16's target: ≤ 50 ns each with 10,000 shards buffering).
fn timers(c: &mut Criterion) {
    let mut group = c.benchmark_group("core/timers");
    for (name, registered, buffering) in [
        ("1_of_1000_buffering", 1_000, 1),
        ("1000_of_1000_buffering", 1_000, 1_000),
        ("10000_of_10000_buffering", 10_000, 10_000),
    ] {
        let mut core = rotation(registered, buffering);
        let now = core.now;
        group.bench_function(BenchmarkId::new("poll_timeout", name), |b| {
            b.iter(|| core.buffer.poll_timeout())
        });
        group.bench_function(BenchmarkId::new("tick_nothing_due", name), |b| {
            b.iter(|| core.buffer.tick(black_box(now)))
        });
        assert_eq!(core.buffer.poll_action(), None);
    }
    group.finish();
}

/// A first attempt held by a buffering shard, with 10,000 shards buffering (one request
/// queued in each), taking each shard in turn (issue 16's target: ≤ 100 ns). Timed in
/// rounds of one request per shard; between rounds, untimed, every request of the round is
/// cancelled, so each round meets the same state.
fn request_to_buffering(c: &mut Criterion) {
    let mut group = c.benchmark_group("core/request_to_buffering_shard");
    let n = 10_000;
    let mut core = rotation(n, n);
    let ids: Vec<ShardId> = core.buffer.shards().collect();
    let now = core.now;
    let mut held = Vec::with_capacity(n);
    group.bench_function(BenchmarkId::new("shards_buffering", n), |b| {
        b.iter_custom(|iters| {
            let mut total = std::time::Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                let round = left.min(n as u64) as usize;
                let start = std::time::Instant::now();
                for &shard in &ids[..round] {
                    if let Ok(Admission::Wait(ticket)) = core.buffer.request(now, shard, None) {
                        held.push(ticket);
                    }
                }
                total += start.elapsed();
                assert_eq!(held.len(), round, "every request was held");
                for ticket in held.drain(..) {
                    core.buffer
                        .cancel(now, ticket)
                        .expect("a held ticket is live");
                }
                while core.buffer.poll_action().is_some() {}
                left -= round as u64;
            }
            total
        })
    });
    group.finish();
}

/// The whole life of held requests, core alone: each request fails with a failover error and
/// is queued, the failover ends, and each is released and reports its retry done.
fn cycle(c: &mut Criterion) {
    let mut group = c.benchmark_group("core/cycle");
    // One request per episode: the episode's own work (start, stop, drain) is all its own.
    let mut core = Core::new(16, 1);
    group.throughput(Throughput::Elements(1));
    group.bench_function("1_request_per_episode", |b| {
        b.iter(|| {
            core.advance();
            let shard = core.shard;
            black_box(core.wait(shard));
            core.end_and_drain(shard)
        })
    });
    let n = 1_000;
    let mut core = Core::new(n, 16);
    group.throughput(Throughput::Elements(n as u64));
    group.bench_function("1000_requests_per_episode_concurrency_16", |b| {
        b.iter(|| {
            core.advance();
            let shard = core.shard;
            for _ in 0..n {
                black_box(core.wait(shard));
            }
            core.end_and_drain(shard)
        })
    });
    group.finish();
    // The loops above ran on a clock advanced by hand; nothing may be left held.
    assert_eq!(core.buffer.held_slots(), 0);
}

/// Recording one sample in a wait-time histogram (what every verdict adds), over waits
/// spread across the range so the bucket index is not predicted; and the merge of two
/// histograms (what an exporter summing shards does).
fn histogram(c: &mut Criterion) {
    use core::time::Duration;
    use failover_buffer::Histogram;

    let mut group = c.benchmark_group("core/histogram");
    // 1,024 waits from 50 µs to about 200 s, in a scrambled order.
    let waits: Vec<Duration> = (0..1024u64)
        .map(|i| Duration::from_nanos(50_000 + (i * 7919 % 1024) * 200_000_000))
        .collect();
    let mut h = Histogram::new();
    let mut i = 0;
    group.throughput(Throughput::Elements(1));
    group.bench_function("record", |b| {
        b.iter(|| {
            h.record(black_box(waits[i & 1023]));
            i += 1;
        })
    });
    let other = h.clone();
    group.bench_function("merge", |b| b.iter(|| h.merge(black_box(&other))));
    group.finish();
}

criterion_group!(
    benches,
    idle_request,
    histogram,
    enqueue,
    end_and_drain,
    cancel_middle,
    window_expiry,
    end_detection,
    stale_stamp,
    timers,
    request_to_buffering,
    cycle
);
criterion_main!(benches);
