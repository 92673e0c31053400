//! The driver task: the buffer's one timer.

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use failover_buffer::Timestamp;
use tokio::time::{Instant, Sleep};

use crate::shared::{Shared, Touched};
use crate::sync::Ordering;

/// What the driver sleeps on: tokio's [`Sleep`], or, in the loom checks, a model of it
/// that fires when the model lets time pass (loom cannot run tokio's time driver).
pub(crate) trait Timer {
    /// Sleeps until `at` from now on.
    fn reset(self: Pin<&mut Self>, at: Instant);
    /// Ready once `at` has passed; otherwise wakes `cx` when it does.
    fn poll_elapsed(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()>;
}

impl Timer for Sleep {
    #[inline]
    fn reset(self: Pin<&mut Self>, at: Instant) {
        Sleep::reset(self, at);
    }

    #[inline]
    fn poll_elapsed(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.poll(cx)
    }
}

/// Sleeps until the core's next deadline, ticks it, and repeats.
///
/// One [`Sleep`] serves the whole buffer, however many shards and requests it holds. It is
/// made by [`FailoverBuffer::new`](crate::FailoverBuffer::new), in the caller's context, so a
/// runtime without the time driver fails there, at once, rather than in this task. It is reset
/// only when the deadline it sleeps towards changes: an input that moves the deadline earlier
/// wakes this task through `Shared::driver`; a deadline that moved later is found when the
/// timer fires early, which costs one harmless tick.
///
/// Ends when every [`Keeper`](crate::shared::Keeper) has been dropped (every
/// [`FailoverBuffer`](crate::FailoverBuffer) handle and every
/// [`RetryGuard`](crate::RetryGuard): nothing can be held any more) or when the buffer has
/// closed after a shutdown (the core arms no timer once shut down).
///
/// If the task is dropped instead (its runtime shut down while the buffer lives on, or a
/// telemetry hook panicked in it), the buffer shuts itself down: every held request is
/// released, and every later one proceeds unbuffered, since no timer could ever release it
/// again.
///
/// The guard that notices the drop exists from the moment this future is made, not from its
/// first poll: a runtime that shuts down before the task ever ran drops it unpolled.
pub(crate) fn run(shared: Arc<Shared>, sleep: impl Timer) -> impl Future<Output = ()> {
    let alive = Alive {
        shared,
        finished: false,
    };
    async move {
        let mut alive = alive;
        let shared = Arc::clone(&alive.shared);
        drive(&shared, sleep, &mut alive).await;
    }
}

/// The driver's loop; sets `alive.finished` when it ends by itself.
async fn drive(shared: &Shared, sleep: impl Timer, alive: &mut Alive) {
    let mut sleep = Box::pin(sleep);
    // The deadline `sleep` is set for, if it is armed and has not fired.
    let mut armed: Option<Timestamp> = None;
    loop {
        let next = {
            let mut state = shared.lock();
            if state.closed || shared.keepers_gone.load(Ordering::Acquire) {
                alive.finished = true;
                return;
            }
            let next = state.core.poll_timeout();
            state.armed = next;
            next
        };
        if next != armed {
            if let Some(at) = next {
                Pin::as_mut(&mut sleep).reset(shared.instant(at));
            }
            armed = next;
        }
        let notified = shared.driver.notified();
        tokio::pin!(notified);
        let fired = poll_fn(|cx| {
            if armed.is_some() && sleep.as_mut().poll_elapsed(cx).is_ready() {
                return Poll::Ready(true);
            }
            notified.as_mut().poll(cx).map(|()| false)
        })
        .await;
        if fired {
            armed = None;
            shared.input(Touched::All, |state, now, _| state.core.tick(now));
        }
    }
}

/// Notices the driver task being dropped before it finished: its runtime is shutting down,
/// or the task is unwinding from a panic (a metrics recorder or tracing subscriber it ran).
struct Alive {
    shared: Arc<Shared>,
    finished: bool,
}

impl Drop for Alive {
    fn drop(&mut self) {
        // Under loom a panic is the checker's own report (a deadlock, a failed assertion),
        // unwinding a model whose locks can no longer be taken: let it through.
        if self.finished || (cfg!(loom) && std::thread::panicking()) {
            return;
        }
        // The timer is gone for good. A request held from now on would wait forever, so the
        // buffer shuts down: held requests are released, later ones proceed.
        self.shared.timer_lost.store(true, Ordering::Release);
        self.shared.input(Touched::All, |state, now, report| {
            if !state.core.is_shut_down() {
                report.shutdown(state.core.held_slots());
                state.core.shutdown(now);
            }
        });
    }
}
