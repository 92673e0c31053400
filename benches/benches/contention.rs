//! Contention: many tasks on a multi-threaded runtime requesting at once on buffering shards,
//! with 1 and 2 worker threads, beside a plain `Mutex` doing the same bookkeeping (issue 16).
//!
//! Run with `cargo bench -p failover-buffer-benches --bench contention`. Each iteration
//! spawns `TASKS` tasks, each making one failover request on one of `SHARDS` shards that are
//! already buffering; the time is from the first spawn until every request is held (its
//! future returned `Pending` once), so "thrpt" reads as held requests per second. The
//! release that follows runs untimed.
//!
//! The floor (`mutex_floor`) is what one lock costs doing the same bookkeeping with nothing
//! else: each request locks one `std::sync::Mutex`, appends its waker and a ticket number to
//! its shard's queue, and stays pending until a flag set under the same lock releases it.

use std::collections::VecDeque;
use std::future::{Future, poll_fn};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use criterion::{
    BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use failover_buffer_benches::{CAUSE, config, serving};
use failover_buffer_tokio::{FailoverBuffer, Shard};
use tokio::runtime::Runtime;
use tokio::sync::Notify;

/// Requests made at once in each iteration.
const TASKS: usize = 10_000;
/// Shards failing over, the requests spread evenly.
const SHARDS: usize = 8;

fn runtime(workers: usize) -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .expect("a tokio runtime starts")
}

/// Counts requests held; the last one wakes the bench thread.
struct Held {
    count: AtomicUsize,
    all: Notify,
}

impl Held {
    fn new() -> Arc<Held> {
        Arc::new(Held {
            count: AtomicUsize::new(0),
            all: Notify::new(),
        })
    }

    fn one(&self) {
        if self.count.fetch_add(1, Ordering::AcqRel) + 1 == TASKS {
            self.all.notify_one();
        }
    }
}

/// Polls `future` to completion, counting the moment it first returns `Pending`.
async fn counted<F: Future>(future: F, held: Arc<Held>) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut first = true;
    poll_fn(|cx| {
        let poll = future.as_mut().poll(cx);
        if first && poll.is_pending() {
            first = false;
            held.one();
        }
        poll
    })
    .await
}

/// One failover of `SHARDS` shards through the adapter: the time until `TASKS` are held.
fn adapter_round(rt: &Runtime) -> Duration {
    // The buffer's driver task is spawned on this runtime.
    let _entered = rt.enter();
    let buffer = FailoverBuffer::new(config(TASKS, 16)).expect("the config is valid");
    let shards: Vec<Shard> = (0..SHARDS)
        .map(|i| {
            let shard = buffer.register_shard("bench", &i.to_string());
            buffer.health(&shard, serving(1)).expect("not stale");
            shard
        })
        .collect();
    let held = Held::new();
    let elapsed = rt.block_on(async {
        let start = Instant::now();
        let tasks: Vec<_> = (0..TASKS)
            .map(|k| {
                let (buffer, shard, held) =
                    (buffer.clone(), shards[k % SHARDS].clone(), held.clone());
                tokio::spawn(async move {
                    let answer =
                        counted(buffer.wait_for_failover_end(&shard, Some(CAUSE)), held).await;
                    assert!(
                        matches!(answer, Ok(Some(_))),
                        "every request is held, then released"
                    );
                })
            })
            .collect();
        held.all.notified().await;
        let elapsed = start.elapsed();
        for shard in &shards {
            buffer.health(shard, serving(2)).expect("terms only rise");
        }
        for task in tasks {
            task.await.expect("a task panicked");
        }
        elapsed
    });
    assert_eq!(buffer.held_slots(), 0);
    elapsed
}

/// What the floor's lock protects: per shard, the waiting tasks in order, and who is released.
#[derive(Default)]
struct FloorState {
    queues: Vec<VecDeque<(u64, Waker)>>,
    released: Vec<bool>,
    next_ticket: u64,
}

/// A request held by the floor: queued under the lock at its first poll, ready once released.
fn floor_request(state: Arc<Mutex<FloorState>>, shard: usize) -> impl Future<Output = ()> {
    let mut ticket = None;
    poll_fn(move |cx: &mut Context<'_>| {
        let mut st = state.lock().expect("not poisoned");
        match ticket {
            None => {
                let t = st.next_ticket;
                st.next_ticket += 1;
                st.released.push(false);
                st.queues[shard].push_back((t, cx.waker().clone()));
                ticket = Some(t);
                Poll::Pending
            }
            Some(t) if st.released[t as usize] => Poll::Ready(()),
            Some(_) => Poll::Pending,
        }
    })
}

/// The same failover with a plain mutex for the bookkeeping.
fn floor_round(rt: &Runtime) -> Duration {
    let state = Arc::new(Mutex::new(FloorState {
        queues: (0..SHARDS).map(|_| VecDeque::new()).collect(),
        released: Vec::with_capacity(TASKS),
        next_ticket: 0,
    }));
    let held = Held::new();
    rt.block_on(async {
        let start = Instant::now();
        let tasks: Vec<_> = (0..TASKS)
            .map(|k| {
                let (state, held) = (state.clone(), held.clone());
                tokio::spawn(async move {
                    let request = floor_request(state, k % SHARDS);
                    counted(request, held).await;
                })
            })
            .collect();
        held.all.notified().await;
        let elapsed = start.elapsed();
        let wakers: Vec<Waker> = {
            let mut st = state.lock().expect("not poisoned");
            st.released.iter_mut().for_each(|r| *r = true);
            let st = &mut *st;
            st.queues
                .iter_mut()
                .flat_map(|q| q.drain(..))
                .map(|(_, w)| w)
                .collect()
        };
        wakers.into_iter().for_each(Waker::wake);
        for task in tasks {
            task.await.expect("a task panicked");
        }
        elapsed
    })
}

fn contention(c: &mut Criterion) {
    let mut group = c.benchmark_group("contention/10000_requests_on_8_buffering_shards");
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Elements(TASKS as u64));
    for workers in [1, 2] {
        let rt = runtime(workers);
        group.bench_function(BenchmarkId::new("adapter/workers", workers), |b| {
            b.iter_custom(|iters| (0..iters).map(|_| adapter_round(&rt)).sum())
        });
        group.bench_function(BenchmarkId::new("mutex_floor/workers", workers), |b| {
            b.iter_custom(|iters| (0..iters).map(|_| floor_round(&rt)).sum())
        });
    }
    group.finish();
}

criterion_group!(benches, contention);
criterion_main!(benches);
