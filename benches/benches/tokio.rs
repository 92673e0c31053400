//! The tokio adapter (`failover-buffer-tokio`): its idle path, a failover holding 100,000
//! tasks, and a held request whose client gives up.
//!
//! Run with `cargo bench -p failover-buffer-benches --bench tokio`. The 100,000-task
//! benchmarks run on a multi-threaded runtime with two workers (the machine's cores) and time
//! one phase each with `iter_custom`; the other phase of the same failover runs untimed.
//! Rows ending in `/cpu` time the same phase by the CPU time of all the process's threads
//! (Linux only). `floor_oneshot_release_16_chains` is tokio's floor in the shape of a drain of
//! concurrency 16, and `floor_oneshot_release_chain_same_task_size` its floor with tasks as
//! large as the held requests'.

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::sync::Arc;
use std::sync::Barrier;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use criterion::{
    BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use failover_buffer_benches::held::{
    Progress, SAME_SIZE_PAD, failover, floor, floor_request, held_request, process_cpu_time,
};
use failover_buffer_benches::{CAUSE, config, serving};
use failover_buffer_tokio::{FailoverBuffer, Shard};
use tokio::runtime::Runtime;
use tokio::sync::oneshot;

/// Requests held in the large benchmarks.
const HELD: usize = 100_000;

/// Polls a future once with a waker that does nothing, as a runtime's first poll would.
/// Whatever state the future is left in, it is dropped here.
fn poll_once<F: Future>(future: F) -> Poll<F::Output> {
    let mut future = pin!(future);
    future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
}

/// A single-threaded runtime. The benchmarks that poll futures by hand never drive it: the
/// buffer's driver task is spawned on it but never runs, so no timer fires while they
/// measure.
fn current_thread() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a tokio runtime starts")
}

/// A multi-threaded runtime with one worker per core of the benchmark machine.
fn multi_thread() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .expect("a tokio runtime starts")
}

/// A buffer of `size` slots with one shard whose primary serves with term 1. Must be called
/// inside a runtime (the buffer spawns its driver task).
fn buffer(size: usize, drain_concurrency: usize) -> (FailoverBuffer, Shard) {
    let buffer = FailoverBuffer::new(config(size, drain_concurrency)).expect("the config is valid");
    let shard = buffer.register_shard("bench", "0");
    buffer
        .health(&shard, serving(1))
        .expect("the first stamp is never stale");
    (buffer, shard)
}

/// A first attempt on an idle shard, polled once: one thread, the same check without a
/// future, then two threads at once on the same shard.
fn idle(c: &mut Criterion) {
    let rt = current_thread();
    let _entered = rt.enter();
    let (buffer, shard) = buffer(1_000, 1);
    let mut group = c.benchmark_group("tokio/idle_request");
    group.bench_function("1_thread", |b| {
        // The answer is matched, as a router does (see the core's idle benchmark).
        b.iter(|| {
            matches!(
                poll_once(buffer.wait_for_failover_end(black_box(&shard), None)),
                Poll::Ready(Ok(None))
            )
        })
    });
    // The same check with no future at all (`first_attempt_proceeds`), as a router that
    // wants the idle path at the blocking adapter's cost calls it.
    group.bench_function("1_thread_first_attempt_proceeds", |b| {
        b.iter(|| buffer.first_attempt_proceeds(black_box(&shard)))
    });
    group.bench_function("2_threads_at_once", |b| {
        b.iter_custom(|iters| {
            let start = Barrier::new(3);
            std::thread::scope(|s| {
                for _ in 0..2 {
                    s.spawn(|| {
                        start.wait();
                        for _ in 0..iters {
                            let poll =
                                poll_once(buffer.wait_for_failover_end(black_box(&shard), None));
                            assert!(matches!(poll, Poll::Ready(Ok(None))));
                        }
                    });
                }
                start.wait();
                let began = Instant::now();
                // The scope joins both threads before returning.
                began
            })
            .elapsed()
        })
    });
    group.finish();
}

/// A request held on a failing-over shard whose client gives up at once: the future is
/// polled once (the request is queued) and dropped (it is cancelled), with `queued` other
/// requests waiting, and then with 1,000 shards failing over.
fn hold_then_cancel(c: &mut Criterion) {
    let rt = current_thread();
    let _entered = rt.enter();
    let mut group = c.benchmark_group("tokio/hold_then_cancel");
    for queued in [1, 1_000, 100_000] {
        let (buffer, shard) = buffer(queued + 1, 1);
        // Queued futures, each polled once; they are cancelled when the vector drops.
        let mut others: Vec<_> = (0..queued)
            .map(|_| Box::pin(buffer.wait_for_failover_end(&shard, Some(CAUSE))))
            .collect();
        for other in &mut others {
            let poll = other.as_mut().poll(&mut Context::from_waker(Waker::noop()));
            assert!(poll.is_pending(), "a failing-over shard holds requests");
        }
        assert_eq!(buffer.queued(&shard), queued);
        group.bench_function(BenchmarkId::new("queued", queued), |b| {
            b.iter(|| {
                let poll = poll_once(buffer.wait_for_failover_end(black_box(&shard), Some(CAUSE)));
                assert!(poll.is_pending());
            })
        });
        drop(others);
        assert_eq!(buffer.held_slots(), 0);
    }
    // The same with 1,000 shards failing over at once, one request held in each: every
    // input also asks the core for its next deadline, which visits each buffering shard.
    let buffer = FailoverBuffer::new(config(2_000, 1)).expect("the config is valid");
    let shards: Vec<Shard> = (0..1_000)
        .map(|i| buffer.register_shard("bench", &i.to_string()))
        .collect();
    let mut others: Vec<_> = shards
        .iter()
        .map(|shard| Box::pin(buffer.wait_for_failover_end(shard, Some(CAUSE))))
        .collect();
    for other in &mut others {
        let poll = other.as_mut().poll(&mut Context::from_waker(Waker::noop()));
        assert!(poll.is_pending(), "a failing-over shard holds requests");
    }
    group.bench_function("1000_shards_buffering", |b| {
        b.iter(|| {
            let poll = poll_once(buffer.wait_for_failover_end(black_box(&shards[0]), Some(CAUSE)));
            assert!(poll.is_pending());
        })
    });
    drop(others);
    assert_eq!(buffer.held_slots(), 0);
    group.finish();
}

/// 100,000 tasks held through one failover: spawning and queueing them, then (separately)
/// releasing them with a health stamp and retrying them. On two worker threads (a wake-up
/// may cross threads) and on one thread (it never does), each beside tokio's own floor for
/// the same work.
fn hundred_thousand(c: &mut Criterion) {
    // The same-size floor is only fair while its tasks are as large as the held requests'.
    {
        let rt = current_thread();
        let _entered = rt.enter();
        let (buffer, shard) = buffer(1, 1);
        let progress = Progress::new(1);
        let held = size_of_val(&held_request(buffer, shard, Arc::clone(&progress)));
        let (next, own) = oneshot::channel();
        let floor = size_of_val(&floor_request::<SAME_SIZE_PAD>(own, next, progress));
        assert!(
            floor.abs_diff(held) <= 8,
            "a held request's task future is {held} bytes, the same-size floor's {floor}: \
             adjust SAME_SIZE_PAD"
        );
    }
    for (flavor, rt) in [
        ("multi_thread_2_workers", multi_thread()),
        ("current_thread", current_thread()),
    ] {
        let mut group = c.benchmark_group(format!("tokio/100k_held/{flavor}"));
        group.sample_size(10);
        group.sampling_mode(SamplingMode::Flat);
        group.throughput(Throughput::Elements(HELD as u64));
        let run = |drain_concurrency| {
            rt.block_on(rt.spawn(failover(HELD, drain_concurrency)))
                .expect("the failover task does not panic")
        };
        group.bench_function("enqueue_incl_spawn", |b| {
            b.iter_custom(|iters| (0..iters).map(|_| run(1).0.wall).sum())
        });
        let run_floor = || {
            rt.block_on(rt.spawn(floor::<0>(HELD, 1)))
                .expect("the floor task does not panic")
        };
        let run_floor_same_size = || {
            rt.block_on(rt.spawn(floor::<SAME_SIZE_PAD>(HELD, 1)))
                .expect("the floor task does not panic")
        };
        group.bench_function("floor_oneshot_enqueue_incl_spawn", |b| {
            b.iter_custom(|iters| (0..iters).map(|_| run_floor().0.wall).sum())
        });
        group.bench_function("floor_oneshot_release_chain", |b| {
            b.iter_custom(|iters| (0..iters).map(|_| run_floor().1.wall).sum())
        });
        let run_floor_16_chains = || {
            rt.block_on(rt.spawn(floor::<0>(HELD, 16)))
                .expect("the floor task does not panic")
        };
        group.bench_function("floor_oneshot_release_16_chains", |b| {
            b.iter_custom(|iters| (0..iters).map(|_| run_floor_16_chains().1.wall).sum())
        });
        group.bench_function("floor_oneshot_release_chain_same_task_size", |b| {
            b.iter_custom(|iters| (0..iters).map(|_| run_floor_same_size().1.wall).sum())
        });
        for concurrency in [1, 16, 64] {
            group.bench_function(
                BenchmarkId::new("end_and_drain_concurrency", concurrency),
                |b| b.iter_custom(|iters| (0..iters).map(|_| run(concurrency).1.wall).sum()),
            );
        }
        // The same phases by CPU time, summed over the runtime's threads: the work each
        // costs, which a loaded machine inflates far less than the wall clock.
        if process_cpu_time().is_some() {
            group.bench_function("enqueue_incl_spawn/cpu", |b| {
                b.iter_custom(|iters| (0..iters).map(|_| run(1).0.cpu).sum())
            });
            group.bench_function("floor_oneshot_enqueue_incl_spawn/cpu", |b| {
                b.iter_custom(|iters| (0..iters).map(|_| run_floor().0.cpu).sum())
            });
            group.bench_function("floor_oneshot_release_chain/cpu", |b| {
                b.iter_custom(|iters| (0..iters).map(|_| run_floor().1.cpu).sum())
            });
            group.bench_function("floor_oneshot_release_16_chains/cpu", |b| {
                b.iter_custom(|iters| (0..iters).map(|_| run_floor_16_chains().1.cpu).sum())
            });
            group.bench_function("floor_oneshot_release_chain_same_task_size/cpu", |b| {
                b.iter_custom(|iters| (0..iters).map(|_| run_floor_same_size().1.cpu).sum())
            });
            for concurrency in [1, 16] {
                group.bench_function(
                    BenchmarkId::new("end_and_drain_concurrency", format!("{concurrency}/cpu")),
                    |b| b.iter_custom(|iters| (0..iters).map(|_| run(concurrency).1.cpu).sum()),
                );
            }
        }
        group.finish();
    }
}

criterion_group!(benches, idle, hold_then_cancel, hundred_thousand);
criterion_main!(benches);
