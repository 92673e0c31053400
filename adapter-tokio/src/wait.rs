//! A held request's future, and the guard of a released request's retry.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use failover_buffer::{Admission, BufferError, FailoverCause, ShardId, Ticket, Verdict};

use crate::shared::{Keeper, ShardCell, Shared, Touched, Waiter};
use crate::telemetry;

/// The slow path of
/// [`FailoverBuffer::wait_for_failover_end`](crate::FailoverBuffer::wait_for_failover_end).
///
/// Its first poll asks the core, and if the request is held, registers the task's waker in
/// the same critical section (one lock per held request, not two). From the moment a ticket
/// exists something will end it: this future, by taking its verdict or by cancelling it when
/// dropped, or the guard it returns.
pub(crate) struct Wait<'a> {
    /// Keeps the timer alive while the request can be held, and goes into the guard. (The
    /// future lives in every held request's task, so it keeps no field it can derive.)
    keeper: &'a Arc<Keeper>,
    cell: &'a Arc<ShardCell>,
    stage: Stage,
}

/// What the first poll asks the core.
#[derive(Clone, Copy)]
pub(crate) enum Ask {
    /// A request, first attempt or after a failover error.
    Request(Option<FailoverCause>),
    /// A released request's retry failed again with this failover error.
    RetryFailed(Ticket, FailoverCause),
    /// A request carrying this many bytes (`Config::max_bytes`).
    RequestSized(Option<FailoverCause>, u64),
}

impl Ask {
    fn cause(self) -> Option<FailoverCause> {
        match self {
            Ask::Request(cause) | Ask::RequestSized(cause, _) => cause,
            Ask::RetryFailed(_, cause) => Some(cause),
        }
    }
}

#[derive(Clone, Copy)]
enum Stage {
    /// Not polled yet: the buffer has not seen the request.
    Start(Ask),
    /// Held under this ticket.
    Held(Ticket),
    /// Answered; dropping the future has nothing left to do.
    Done,
}

impl<'a> Wait<'a> {
    pub(crate) fn new(keeper: &'a Arc<Keeper>, cell: &'a Arc<ShardCell>, ask: Ask) -> Self {
        Wait {
            keeper,
            cell,
            stage: Stage::Start(ask),
        }
    }

    /// The first poll: the request reaches the buffer.
    fn admit(&mut self, ask: Ask, cx: &mut Context<'_>) -> Poll<Answer> {
        let (shared, cell) = (self.shared(), self.cell);
        let id = shared.shard_id(cell);
        let cause = ask.cause();
        let admission = shared.input(Touched::One(id), |state, now, _| {
            // Only an unknown shard (or, for a retry, a ticket that is not ours) is refused:
            // it is not ours to hold.
            let answer = match ask {
                Ask::Request(cause) => state.core.request(now, id, cause),
                Ask::RequestSized(cause, bytes) => state.core.request_sized(now, id, cause, bytes),
                Ask::RetryFailed(ticket, cause) => state.core.retry_failed(now, ticket, cause),
            };
            let admission = answer.unwrap_or(Admission::Proceed);
            if let Admission::Wait(ticket) = admission {
                // Registered before this input's actions are carried out, so a wake for
                // this ticket always finds it.
                let waiter = Waiter::Waiting(Some(cx.waker().clone()));
                let again = state.waiters.insert(ticket, waiter);
                debug_assert!(again.is_none(), "{ticket:?} is held once");
            }
            admission
        });
        // The stage is set before the log (user code) runs: should the subscriber panic,
        // dropping this future still cancels the held ticket.
        let poll = match admission {
            Admission::Proceed => self.answer(Ok(None)),
            Admission::Fail(e) => self.answer(Err(e)),
            Admission::Wait(ticket) => {
                self.stage = Stage::Held(ticket);
                Poll::Pending
            }
        };
        telemetry::admission(cell, cause, &admission);
        poll
    }

    /// Later polls: has the held request's verdict come?
    fn collect(&mut self, ticket: Ticket, cx: &mut Context<'_>) -> Poll<Answer> {
        // A release to retry is handed over without the lock (see `Handoff`).
        let verdict = if self.shared().handoff.released(ticket) {
            Some(Verdict::Retry)
        } else {
            let mut state = self.shared().lock();
            match state.waiters.get_mut(ticket) {
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
                    state.waiters.remove(ticket);
                    Some(verdict)
                }
                // Released between the look at the handoff and the lock.
                None if self.shared().handoff.released(ticket) => Some(Verdict::Retry),
                // Unreachable: the waiter leaves the map only here, in `Drop`, or by a
                // release to retry through the handoff.
                None => {
                    debug_assert!(false, "held {ticket:?} has no waiter");
                    None
                }
            }
        };
        let Some(verdict) = verdict else {
            // Proceeding is the answer that holds no slot.
            return self.answer(Ok(None));
        };
        // The guard, whose drop ends the ticket, exists before any user code (the release
        // log) runs: a subscriber that panics cannot strand the slot.
        let answer = match verdict {
            Verdict::Retry => Ok(Some(RetryGuard {
                keeper: Some(Arc::clone(self.keeper)),
                shard: self.cell.id,
                ticket,
            })),
            Verdict::Fail(e) => Err(e),
        };
        let poll = self.answer(answer);
        telemetry::collected(self.cell, ticket, verdict);
        poll
    }

    fn shared(&self) -> &'a Shared {
        &self.keeper.shared
    }

    fn answer(&mut self, answer: Answer) -> Poll<Answer> {
        self.stage = Stage::Done;
        Poll::Ready(answer)
    }
}

type Answer = Result<Option<RetryGuard>, BufferError>;

/// What [`FailoverBuffer::wait_for_failover_end`](crate::FailoverBuffer::wait_for_failover_end)
/// returns: answered already by the idle fast path, or the request's [`Wait`].
pub(crate) enum Admit<'a> {
    /// A first attempt on a shard that is not buffering: proceed, nothing was held.
    Proceed,
    /// Everything else: the buffer sees the request at the first poll.
    Wait(Wait<'a>),
}

impl Future for Admit<'_> {
    type Output = Answer;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Answer> {
        // Every field is `Unpin`: the future may be moved, pinned or not.
        match self.get_mut() {
            Admit::Proceed => Poll::Ready(Ok(None)),
            Admit::Wait(wait) => Pin::new(wait).poll(cx),
        }
    }
}

impl Future for Wait<'_> {
    type Output = Answer;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Answer> {
        match self.stage {
            Stage::Start(ask) => self.admit(ask, cx),
            Stage::Held(ticket) => self.collect(ticket, cx),
            // Only `wait_for_failover_end` polls this, and never after it is ready.
            Stage::Done => Poll::Pending,
        }
    }
}

impl Drop for Wait<'_> {
    fn drop(&mut self) {
        let ticket = match self.stage {
            Stage::Held(ticket) => ticket,
            Stage::Start(Ask::RetryFailed(ticket, _)) => {
                // Dropped before the failed retry was reported: it is reported done, so
                // its slot and drain place are never stranded.
                self.shared()
                    .input(Touched::One(self.cell.id), |state, now, _| {
                        let done = state.core.retry_done(now, ticket);
                        debug_assert!(done.is_ok(), "{ticket:?}: {done:?}");
                    });
                telemetry::retry_done(self.cell, ticket);
                return;
            }
            Stage::Start(Ask::Request(_) | Ask::RequestSized(..)) | Stage::Done => return,
        };
        // The waker comes back out, to be dropped after the lock.
        let waiter = self
            .shared()
            .input(Touched::One(self.cell.id), |state, now, _| {
                state.abandon(&self.shared().handoff, now, ticket)
            });
        drop(waiter);
        telemetry::abandoned(self.cell, ticket);
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
/// If the retry failed again with a failover error, hand the guard to
/// [`retry_failed`](Self::retry_failed) rather than dropping it: early in an episode that
/// pauses the drain and holds the request once more.
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
///         // (A released request would better say `guard.retry_failed(cause).await`: see
///         // `RetryGuard::retry_failed`.)
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
///
/// # Lifecycle
///
/// A guard keeps its buffer's timer alive, as a [`FailoverBuffer`](crate::FailoverBuffer)
/// handle does: through [`retry_failed`](Self::retry_failed) it can put its request back in
/// the queue, and a held request must always have a timer to release it. A request held
/// again after the last `FailoverBuffer` handle is gone is released by its window or the
/// max failover duration.
#[must_use = "dropping the guard at once reports the retry done before it ran"]
pub struct RetryGuard {
    /// `None` once the retry's end is reported (by the drop) or handed to
    /// [`retry_failed`](Self::retry_failed). An option rather than a flag beside the handle:
    /// a released request's task carries the guard, so it is kept small (32 bytes).
    keeper: Option<Arc<Keeper>>,
    /// The shard, by id rather than by its `Arc<ShardCell>`: a drain's tasks run on every
    /// worker, and each reference count written to a cell shared by all of them moves its
    /// cache line between the workers (two writes a released request, measured in
    /// `benches/README.md`). What needs the cell (a log line, `Debug`, `retry_failed`)
    /// looks it up under the lock.
    shard: ShardId,
    ticket: Ticket,
}

impl RetryGuard {
    /// The ticket the request was held under: unique for the life of the buffer, for logs.
    pub fn ticket(&self) -> Ticket {
        self.ticket
    }

    /// The shard the request was held for.
    pub fn shard_id(&self) -> failover_buffer::ShardId {
        self.shard
    }

    /// Why the request was released: its shard's failover ended (the drain, and why it
    /// began: a new primary, max duration, traffic switched, a shutdown), or its window ran
    /// out while the failover was still on ([`ReleaseReason::Window`](failover_buffer::ReleaseReason::Window): a router may prefer
    /// another replica, or expect this retry to fail again). `None` only if the buffer no
    /// longer knows the ticket, which a live guard's never is.
    pub fn release_reason(&self) -> Option<failover_buffer::ReleaseReason> {
        let keeper = self.keeper.as_ref()?;
        match keeper.shared.lock().core.ticket_status(self.ticket) {
            failover_buffer::TicketStatus::Retrying(reason) => Some(reason),
            _ => None,
        }
    }

    /// The retry failed again with a failover error: report it, and wait to be held again,
    /// as [`wait_for_failover_end`](crate::FailoverBuffer::wait_for_failover_end) with
    /// `Some(cause)` would, with one difference. A released request failing again is
    /// evidence that the failover's end was seen too early (the new primary is not writable
    /// yet), so within `max_failover_duration` of the episode's start the shard's drain backs
    /// off and holds the request again, even if that drain has just finished (with one
    /// request held, its own retry is the whole drain). Dropping the guard and calling
    /// `wait_for_failover_end` loses that: the new error then meets the min-time rules.
    ///
    /// # Cancel safety
    ///
    /// Dropping the returned future before it completes reports the retry done (as dropping
    /// the guard would) or, once the request is held again, cancels it: no slot is stranded.
    pub async fn retry_failed(
        mut self,
        cause: FailoverCause,
    ) -> Result<Option<RetryGuard>, BufferError> {
        // From here on the `Wait` reports the retry (failed, or done if dropped first).
        let Some(keeper) = self.keeper.take() else {
            // Unreachable: only the drop and this method, which takes the guard, report.
            return Ok(None);
        };
        let cell = keeper.shared.cell(self.shard);
        let Some(cell) = cell else {
            // Unreachable: a guard's shard is registered, and cells are never removed.
            // Should it happen, the retry is reported done rather than stranded.
            debug_assert!(false, "{:?} has no cell", self.shard);
            retry_done(keeper, self.shard, self.ticket);
            return Ok(None);
        };
        Wait::new(&keeper, &cell, Ask::RetryFailed(self.ticket, cause)).await
    }
}

/// Shows the shard's keyspace and name, looked up under the buffer's lock (the guard keeps
/// only the shard's id).
impl fmt::Debug for RetryGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cell = self
            .keeper
            .as_ref()
            .and_then(|keeper| keeper.shared.cell(self.shard));
        let mut f = f.debug_struct("RetryGuard");
        match &cell {
            Some(cell) => f
                .field("keyspace", &cell.keyspace)
                .field("shard", &cell.name),
            None => f.field("shard", &self.shard),
        };
        f.field("ticket", &self.ticket).finish()
    }
}

impl Drop for RetryGuard {
    /// Inline, so that dropping an answer that holds no guard (`Ok(None)`, the idle fast
    /// path's) costs a test, not a call; the report itself is out of line.
    #[inline]
    fn drop(&mut self) {
        if let Some(keeper) = self.keeper.take() {
            retry_done(keeper, self.shard, self.ticket);
        }
    }
}

/// Reports a released request's retry done: its slot, and its drain place, go to the next.
/// Takes the guard's handle, so that it is let go after the report (out of line too).
#[inline(never)]
fn retry_done(keeper: Arc<Keeper>, shard: ShardId, ticket: Ticket) {
    // The only refusal possible is a stale ticket, and only the guard ends it.
    // The cell for the log line: nothing (unit) without the `tracing` feature.
    #[allow(clippy::let_unit_value)]
    let cell = keeper.shared.input(Touched::One(shard), |state, now, _| {
        let done = state.core.retry_done(now, ticket);
        debug_assert!(done.is_ok(), "{ticket:?}: {done:?}");
        telemetry::log_cell(&state.cells, shard)
    });
    telemetry::guard_retry_done(cell, ticket);
}
