//! What the tokio drain benchmark and its profiling aid (`examples/drain_profile.rs`) share:
//! a held request as a client task makes it, the counter of how many have reached each
//! phase, the process's CPU time, and the two phases of a failover (enqueue, drain) beside
//! tokio's own floor for the same work.

use std::collections::VecDeque;
use std::future::Future;
use std::hint::black_box;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use failover_buffer_tokio::{FailoverBuffer, Shard};
use tokio::sync::{Notify, oneshot};

use crate::{CAUSE, config, serving};

/// Counts held requests reaching two points: queued, and retried.
pub struct Progress {
    target: usize,
    /// Requests queued so far.
    pub queued: AtomicUsize,
    /// Notified once all `target` are queued.
    pub all_queued: Notify,
    /// Requests released and retried so far.
    pub retried: AtomicUsize,
    /// Notified once all `target` have retried.
    pub all_retried: Notify,
}

impl Progress {
    /// A counter for `target` requests.
    pub fn new(target: usize) -> Arc<Progress> {
        Arc::new(Progress {
            target,
            queued: AtomicUsize::new(0),
            all_queued: Notify::new(),
            retried: AtomicUsize::new(0),
            all_retried: Notify::new(),
        })
    }

    /// Counts one request reaching the phase `counter` counts; the last notifies `all`.
    pub fn count(&self, counter: &AtomicUsize, all: &Notify) {
        if counter.fetch_add(1, Ordering::AcqRel) + 1 == self.target {
            // Stores a permit if nobody waits yet: the count is never missed.
            all.notify_one();
        }
    }
}

/// One client's request during a failover: its first attempt failed with a failover error,
/// so it asks to wait; once released it "retries" (drops its guard at once, so the figure is
/// the buffer's cost alone).
///
/// The task keeps across its wait what a router's task would (the buffer, the shard and the
/// request's future) and the counter: the same shape as the floor's [`floor_request`].
pub async fn held_request(buffer: FailoverBuffer, shard: Shard, progress: Arc<Progress>) {
    let wait = buffer.wait_for_failover_end(&shard, Some(CAUSE));
    let result = CountQueued::new(wait, &progress).await;
    let guard = result.expect("the buffer has room for every request");
    assert!(guard.is_some(), "a held request is released to retry");
    drop(guard);
    progress.count(&progress.retried, &progress.all_retried);
}

/// Polls a request's future to its end, counting the request queued at its first pending
/// poll. A future of its own rather than an `async` block around `poll_fn`: only the inner
/// future and the counter live across the wait, so the instrument adds 16 bytes to a task
/// (the floor's as the adapter's), not a copy of the first poll's answer.
struct CountQueued<'a, F> {
    future: F,
    progress: &'a Progress,
    counted: bool,
}

impl<'a, F: Future + Unpin> CountQueued<'a, F> {
    fn new(future: F, progress: &'a Progress) -> Self {
        CountQueued {
            future,
            progress,
            counted: false,
        }
    }
}

impl<F: Future + Unpin> Future for CountQueued<'_, F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let poll = Pin::new(&mut self.future).poll(cx);
        if poll.is_pending() && !self.counted {
            self.counted = true;
            self.progress
                .count(&self.progress.queued, &self.progress.all_queued);
        }
        poll
    }
}

/// The CPU time every thread of this process has run, from the first field of Linux's
/// `/proc/self/task/*/schedstat` (nanoseconds on a CPU); `None` where there are no such
/// files. Summed over the runtime's workers, it is the work a phase cost, without the time
/// its threads waited for a core on a busy machine.
///
/// The kernel brings a running thread's count up to date only at a scheduler tick (4 ms at
/// `HZ=250`) or when the thread leaves its core, so the calling thread, which is running,
/// first yields: without that, its own share would be up to a tick stale, and a 50 ms phase
/// would be read to ±8%. (Other threads are read as of their last tick; at a phase's ends
/// the runtime's other workers are parked, and a parked thread's count is exact.)
pub fn process_cpu_time() -> Option<Duration> {
    // `sched_yield` updates the caller's runtime (`update_curr`) before anything else.
    std::thread::yield_now();
    let mut nanos = 0;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        // A thread that exits while the directory is read is skipped.
        let Ok(task) = task else { continue };
        let text = std::fs::read_to_string(task.path().join("schedstat"));
        if let Some(n) = text
            .ok()
            .and_then(|t| t.split_whitespace().next()?.parse::<u64>().ok())
        {
            nanos += n;
        }
    }
    Some(Duration::from_nanos(nanos))
}

/// One phase of a failover, timed by the wall clock and by the process's CPU time (zero where
/// it cannot be read).
#[derive(Clone, Copy, Debug)]
pub struct Phase {
    /// By the wall clock.
    pub wall: Duration,
    /// By the CPU time of every thread of the process ([`process_cpu_time`]).
    pub cpu: Duration,
}

/// Times `phase` both ways.
pub async fn timed(phase: impl Future<Output = ()>) -> Phase {
    let cpu = process_cpu_time();
    let start = Instant::now();
    phase.await;
    let wall = start.elapsed();
    let cpu = process_cpu_time()
        .zip(cpu)
        .map_or(Duration::ZERO, |(end, start)| end.saturating_sub(start));
    Phase { wall, cpu }
}

/// The time to spawn and queue `held` tasks ([`held_request`]) on a new buffer of `held`
/// slots, and the time from the health stamp that ends the failover to the last retry done.
/// Must run inside a runtime.
pub async fn failover(held: usize, drain_concurrency: usize) -> (Phase, Phase) {
    let buffer = FailoverBuffer::new(config(held, drain_concurrency)).expect("the config is valid");
    failover_on(&buffer, held).await
}

/// The same failover on `buffer`, which may have held requests before (a router's buffer
/// lives as long as the router: its tables keep the room an earlier failover grew them to).
/// Each call fails over a shard registered for it, so no shard's min time between failovers
/// applies. Must run inside the buffer's runtime.
pub async fn failover_on(buffer: &FailoverBuffer, held: usize) -> (Phase, Phase) {
    static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);
    let name = NEXT_SHARD.fetch_add(1, Ordering::Relaxed).to_string();
    let shard = buffer.register_shard("bench", &name);
    buffer
        .health(&shard, serving(1))
        .expect("the first stamp is never stale");
    let progress = Progress::new(held);
    let enqueued = timed(async {
        for _ in 0..held {
            tokio::spawn(held_request(
                buffer.clone(),
                shard.clone(),
                Arc::clone(&progress),
            ));
        }
        progress.all_queued.notified().await;
    })
    .await;
    let drained = timed(async {
        buffer.health(&shard, serving(2)).expect("terms only rise");
        progress.all_retried.notified().await;
    })
    .await;
    assert_eq!(buffer.held_slots(), 0);
    (enqueued, drained)
}

/// Tokio's own floor for the same work, with no buffer: `held` tasks each wait on a oneshot
/// channel of their own (counted like a held request once the first poll is pending), and
/// each released task releases the next, as a drain of concurrency 1 does.
///
/// With `chains` above 1 the first `chains` tasks are released at once and each released
/// task releases the one `chains` places after it: the shape of a drain of concurrency
/// `chains` (its first release lets that many go, and each retry done lets the next go).
///
/// `PAD` words of dead weight are carried across the wait by each task: with
/// [`SAME_SIZE_PAD`], a task is as large as the benchmark's held request (`held_request`), so
/// the runtime moves, touches and frees as many bytes per task as in the drain.
pub async fn floor<const PAD: usize>(held: usize, chains: usize) -> (Phase, Phase) {
    let progress = Progress::new(held);
    let (firsts, mut receivers): (Vec<_>, VecDeque<_>) =
        (0..chains).map(|_| oneshot::channel()).unzip();
    let enqueued = timed(async {
        for _ in 0..held {
            let (next, next_receiver) = oneshot::channel();
            let own = receivers.pop_front().expect("one receiver per chain");
            receivers.push_back(next_receiver);
            tokio::spawn(floor_request::<PAD>(own, next, Arc::clone(&progress)));
        }
        progress.all_queued.notified().await;
    })
    .await;
    // Nobody follows the last task of a chain: its release goes nowhere.
    drop(receivers);
    let released = timed(async {
        for first in firsts {
            first.send(()).expect("the first task of each chain waits");
        }
        progress.all_retried.notified().await;
    })
    .await;
    (enqueued, released)
}

/// The padding that makes a [`floor_request`] task as large as a `held_request` task
/// (checked when the benchmark starts).
pub const SAME_SIZE_PAD: usize = 5;

/// One task of [`floor`]: waits for its release, then releases the next task.
pub async fn floor_request<const PAD: usize>(
    own: oneshot::Receiver<()>,
    next: oneshot::Sender<()>,
    progress: Arc<Progress>,
) {
    let pad = black_box([0u64; PAD]);
    let released = CountQueued::new(own, &progress).await;
    released.expect("every task is released by the one before");
    black_box(&pad);
    // The last task has nobody to release.
    let _ = next.send(());
    progress.count(&progress.retried, &progress.all_retried);
}
