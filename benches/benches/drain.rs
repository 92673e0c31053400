//! `DrainPlan` (the core's cancellable drain): calling off a running drain, and a whole
//! begin-then-cancel cycle, on a router-shaped plan (3 reversible phases entered) and on a
//! long one (100 phases entered). Issue 11's target: O(1) apart from the reverts emitted,
//! no allocation (`core/tests/drain_allocates_nothing.rs` counts that).
//!
//! Also the buffer's own shutdown (`Buffer::cancel_shutdown`) with 1,000 and 100,000
//! requests queued: the cancel puts the shard back to buffering with its queue as it is, so
//! its cost must not grow with the queue (`core/tests/shutdown_allocates_nothing.rs`
//! counts its allocations).
//!
//! Run with `cargo bench -p failover-buffer-benches --bench drain`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use failover_buffer::drain::{DrainAction, DrainPlan, DrainState, Phase};
use failover_buffer::{Admission, Buffer, Config, FailoverCause, ShardState, Timestamp};

/// `entered` reversible phases the drain passes straight through, then one that waits (so
/// the drain is running with `entered` phases to revert), then an irreversible close.
fn plan(entered: usize) -> DrainPlan {
    let mut phases: Vec<Phase> = (1..entered)
        .map(|i| Phase::reversible(format!("step {i}")))
        .collect();
    phases.push(
        Phase::reversible("wait for requests")
            .max_wait(Duration::from_secs(10))
            .until_no_work(),
    );
    phases.push(Phase::irreversible("close"));
    DrainPlan::new(phases).expect("a valid plan")
}

/// Polls every action, as a caller does, and counts them (so none is optimised away).
fn poll_all(plan: &mut DrainPlan) -> usize {
    let mut n = 0;
    while let Some(action) = plan.poll_action() {
        black_box(action);
        n += 1;
    }
    n
}

fn cancel_running(c: &mut Criterion) {
    let mut group = c.benchmark_group("drain/cancel_running");
    for entered in [3, 100] {
        group.throughput(Throughput::Elements(entered as u64));
        group.bench_function(BenchmarkId::new("phases_entered", entered), |b| {
            // Only the cancels are timed, 32 at a time: 32 plans (few enough to stay in
            // cache, as one plan in a router does) are begun again, untimed, between rounds.
            let mut plans: Vec<DrainPlan> = (0..32).map(|_| plan(entered)).collect();
            let mut now = 0u64;
            b.iter_custom(|iters| {
                let mut timed = Duration::ZERO;
                let mut left = iters;
                while left > 0 {
                    let round = left.min(plans.len() as u64) as usize;
                    left -= round as u64;
                    now += 1;
                    for plan in &mut plans[..round] {
                        plan.begin(Timestamp::from_nanos(now)).unwrap();
                        poll_all(plan);
                    }
                    let start = Instant::now();
                    for plan in &mut plans[..round] {
                        plan.cancel(black_box(Timestamp::from_nanos(now))).unwrap();
                        black_box(poll_all(plan));
                    }
                    timed += start.elapsed();
                }
                assert!(
                    plans
                        .iter()
                        .all(|p| matches!(p.state(), DrainState::Cancelled | DrainState::NotBegun))
                );
                timed
            })
        });
    }
    group.finish();
}

fn begin_then_cancel(c: &mut Criterion) {
    let mut group = c.benchmark_group("drain/begin_then_cancel");
    for entered in [3, 100] {
        let mut plan = plan(entered);
        let mut now = 0u64;
        group.throughput(Throughput::Elements(entered as u64));
        group.bench_function(BenchmarkId::new("phases_entered", entered), |b| {
            b.iter(|| {
                now += 1;
                plan.begin(black_box(Timestamp::from_nanos(now))).unwrap();
                let entered_now = poll_all(&mut plan);
                plan.cancel(black_box(Timestamp::from_nanos(now))).unwrap();
                let mut last = None;
                while let Some(action) = plan.poll_action() {
                    last = Some(action);
                }
                assert_eq!(
                    last,
                    Some(DrainAction::Cancelled {
                        reverted: entered_now
                    })
                );
            })
        });
    }
    group.finish();
}

/// A buffer with `queued` requests held on one shard (drain concurrency 1).
fn buffer_with_queue(queued: usize) -> Buffer {
    let mut buffer = Buffer::new(Config {
        enabled: true,
        size: queued + 1,
        ..Config::default()
    })
    .expect("a valid config");
    let shard = buffer.register_shard("ks", "0");
    for _ in 0..queued {
        let admission = buffer.request(Timestamp::ZERO, shard, Some(FailoverCause::Reparent));
        assert!(matches!(admission, Ok(Admission::Wait(_))));
    }
    while buffer.poll_action().is_some() {}
    buffer
}

/// Polls the buffer's actions and shutdown steps, as a driver does.
fn poll_buffer(buffer: &mut Buffer) -> usize {
    let mut n = 0;
    while let Some(action) = buffer.poll_action() {
        black_box(action);
        n += 1;
    }
    while let Some(step) = buffer.poll_shutdown_action() {
        black_box(step);
    }
    n
}

fn cancel_shutdown(c: &mut Criterion) {
    let mut group = c.benchmark_group("drain/cancel_shutdown");
    for queued in [1_000, 100_000] {
        group.bench_function(BenchmarkId::new("queued", queued), |b| {
            // Only the cancels are timed: the shutdown before each (which stops the shard
            // and, its one drain retry being still out, releases nothing more) is not.
            let mut buffer = buffer_with_queue(queued);
            let shard = buffer.shard_id("ks", "0").expect("registered");
            let mut now = 1u64;
            b.iter_custom(|iters| {
                let mut timed = Duration::ZERO;
                for _ in 0..iters {
                    now += 1;
                    buffer.shutdown(Timestamp::from_nanos(now));
                    poll_buffer(&mut buffer);
                    let start = Instant::now();
                    buffer
                        .cancel_shutdown(black_box(Timestamp::from_nanos(now)))
                        .unwrap();
                    black_box(poll_buffer(&mut buffer));
                    timed += start.elapsed();
                }
                assert_eq!(buffer.shard_state(shard), Some(ShardState::Buffering));
                assert_eq!(buffer.queued(shard), Some(queued - 1));
                timed
            })
        });
    }
    group.finish();
}

criterion_group!(benches, cancel_running, begin_then_cancel, cancel_shutdown);
criterion_main!(benches);
