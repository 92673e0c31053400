//! The driver task: the buffer's one timer.

use std::future::{Future, poll_fn};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::Poll;

use failover_buffer::Timestamp;
use tokio::time::sleep_until;

use crate::shared::{Shared, Touched};

/// Sleeps until the core's next deadline, ticks it, and repeats.
///
/// One [`Sleep`](tokio::time::Sleep) serves the whole buffer, however many shards and
/// requests it holds. It is reset only when the deadline it sleeps towards changes: an input
/// that moves the deadline earlier wakes this task through `Shared::driver`; a deadline that
/// moved later is found when the timer fires early, which costs one harmless tick.
///
/// Ends when every [`FailoverBuffer`](crate::FailoverBuffer) handle has been dropped (no
/// request can wait any more; guards still out report to the core directly) or when the
/// buffer has closed after a shutdown (the core arms no timer once shut down).
pub(crate) async fn run(shared: Arc<Shared>) {
    let sleep = sleep_until(shared.instant(Timestamp::ZERO));
    tokio::pin!(sleep);
    // The deadline `sleep` is set for, if it is armed and has not fired.
    let mut armed: Option<Timestamp> = None;
    loop {
        let next = {
            let mut state = shared.lock();
            if state.closed || shared.handles_gone.load(Ordering::Acquire) {
                return;
            }
            let next = state.core.poll_timeout();
            state.armed = next;
            next
        };
        if next != armed {
            if let Some(at) = next {
                sleep.as_mut().reset(shared.instant(at));
            }
            armed = next;
        }
        let notified = shared.driver.notified();
        tokio::pin!(notified);
        let fired = poll_fn(|cx| {
            if armed.is_some() && sleep.as_mut().poll(cx).is_ready() {
                return Poll::Ready(true);
            }
            notified.as_mut().poll(cx).map(|()| false)
        })
        .await;
        if fired {
            armed = None;
            shared.input(Touched::All, |state, now| state.core.tick(now));
        }
    }
}
