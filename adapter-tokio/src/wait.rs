//! A held request's future, and the guard of a released request's retry.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use failover_buffer::{BufferError, Ticket, Verdict};

use crate::shared::{ShardCell, Shared, Touched, Waiter};
use crate::telemetry;

/// Waits for a held request's verdict. Created only by
/// [`FailoverBuffer::wait_for_failover_end`](crate::FailoverBuffer::wait_for_failover_end),
/// in the same critical section that queued the ticket, so from the moment a ticket exists
/// something will end it: this future (by taking its verdict, or by cancelling it when
/// dropped) or the guard it returns.
pub(crate) struct Wait<'a> {
    shared: &'a Arc<Shared>,
    cell: &'a Arc<ShardCell>,
    ticket: Ticket,
    /// The verdict was taken; dropping the future has nothing left to do.
    done: bool,
}

impl<'a> Wait<'a> {
    pub(crate) fn new(shared: &'a Arc<Shared>, cell: &'a Arc<ShardCell>, ticket: Ticket) -> Self {
        Wait {
            shared,
            cell,
            ticket,
            done: false,
        }
    }
}

impl Future for Wait<'_> {
    type Output = Result<Option<RetryGuard>, BufferError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let verdict = {
            let mut state = this.shared.lock();
            match state.waiters.get_mut(&this.ticket) {
                Some(Waiter::Waiting(waker)) => {
                    if waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                        return Poll::Pending;
                    }
                    let replaced = waker.replace(cx.waker().clone());
                    drop(state);
                    // Dropped after the lock: a waker's drop may run an executor's code.
                    drop(replaced);
                    return Poll::Pending;
                }
                Some(Waiter::Woken(verdict)) => {
                    let verdict = *verdict;
                    state.waiters.remove(&this.ticket);
                    verdict
                }
                // Unreachable: the waiter leaves the map only here or in `Drop`. Proceeding
                // is the answer that holds no slot.
                None => Verdict::Retry,
            }
        };
        this.done = true;
        telemetry::collected(this.cell, this.ticket, verdict);
        Poll::Ready(match verdict {
            Verdict::Retry => Ok(Some(RetryGuard {
                shared: Arc::clone(this.shared),
                cell: Arc::clone(this.cell),
                ticket: this.ticket,
            })),
            Verdict::Fail(e) => Err(e),
        })
    }
}

impl Drop for Wait<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        telemetry::abandoned(self.cell, self.ticket);
        let ticket = self.ticket;
        // The waker comes back out, to be dropped after the lock.
        let _waiter = self.shared.input(Touched::One(self.cell.id), |state, now| {
            state.abandon(now, ticket)
        });
    }
}

/// A released request's permission to retry. Dropping it tells the buffer the retry has
/// finished, whatever its outcome.
///
/// While the guard lives, the request holds its buffer slot, and, in a drain, one of the
/// shard's `drain_concurrency` places: that is how a drain is paced. Keep it across the retry
/// and drop it as soon as the retry's answer is in. Dropping it on any path, unwinding from a
/// panic included, reports the retry done, so no slot is ever stranded.
///
/// If the retry failed again with a failover error, drop the guard first, then ask again with
/// the cause: early in an episode that pauses the drain and holds the request once more.
///
/// ```
/// use failover_buffer_tokio::{Config, FailoverBuffer, FailoverCause, Shard};
///
/// /// The application's call: a few attempts, each behind the buffer.
/// async fn execute(buffer: &FailoverBuffer, shard: &Shard) -> Result<&'static str, String> {
///     let mut cause = None;
///     for _attempt in 0..3 {
///         let guard = buffer
///             .wait_for_failover_end(shard, cause)
///             .await
///             .map_err(|e| e.to_string())?;
///         match send_to_primary().await {
///             Err(e) if e == "read-only" => {
///                 drop(guard); // this attempt is done...
///                 cause = Some(FailoverCause::Reparent); // ...and the next one may be held
///             }
///             other => return other, // the guard (if any) drops here: retry done
///         }
///     }
///     Err("primary still read-only".into())
/// }
/// # async fn send_to_primary() -> Result<&'static str, String> { Ok("ok") }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let buffer = FailoverBuffer::new(Config { enabled: true, ..Config::default() })?;
/// # let shard = buffer.register_shard("commerce", "0");
/// # assert_eq!(execute(&buffer, &shard).await, Ok("ok"));
/// # Ok(()) }
/// ```
#[must_use = "dropping the guard at once reports the retry done before it ran"]
pub struct RetryGuard {
    shared: Arc<Shared>,
    cell: Arc<ShardCell>,
    ticket: Ticket,
}

impl RetryGuard {
    /// The ticket the request was held under: unique for the life of the buffer, for logs.
    pub fn ticket(&self) -> Ticket {
        self.ticket
    }

    /// The shard the request was held for.
    pub fn shard_id(&self) -> failover_buffer::ShardId {
        self.cell.id
    }
}

impl fmt::Debug for RetryGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryGuard")
            .field("keyspace", &self.cell.keyspace)
            .field("shard", &self.cell.name)
            .field("ticket", &self.ticket)
            .finish()
    }
}

impl Drop for RetryGuard {
    fn drop(&mut self) {
        telemetry::retry_done(&self.cell, self.ticket);
        let ticket = self.ticket;
        // The only refusal possible is a stale ticket, and only this guard ends it.
        self.shared.input(Touched::One(self.cell.id), |state, now| {
            let _ = state.core.retry_done(now, ticket);
        });
    }
}
