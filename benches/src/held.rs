//! What the tokio drain benchmark and its profiling aid (`examples/drain_profile.rs`) share:
//! a held request as a client task makes it, the counter of how many have reached each
//! phase, and the process's CPU time.

use std::future::{Future, poll_fn};
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Poll;
use std::time::Duration;

use failover_buffer_tokio::{FailoverBuffer, Shard};
use tokio::sync::Notify;

use crate::CAUSE;

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
pub async fn held_request(buffer: FailoverBuffer, shard: Shard, progress: Arc<Progress>) {
    let mut wait = pin!(buffer.wait_for_failover_end(&shard, Some(CAUSE)));
    // The first poll queues the request: count it then, and wait for the release.
    let result = match poll_fn(|cx| Poll::Ready(wait.as_mut().poll(cx))).await {
        Poll::Ready(result) => result,
        Poll::Pending => {
            progress.count(&progress.queued, &progress.all_queued);
            wait.await
        }
    };
    let guard = result.expect("the buffer has room for every request");
    assert!(guard.is_some(), "a held request is released to retry");
    drop(guard);
    progress.count(&progress.retried, &progress.all_retried);
}

/// The CPU time every thread of this process has run, from the first field of Linux's
/// `/proc/self/task/*/schedstat` (nanoseconds on a CPU); `None` where there are no such
/// files. Summed over the runtime's workers, it is the work a phase cost, without the time
/// its threads waited for a core on a busy machine.
pub fn process_cpu_time() -> Option<Duration> {
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
