//! The blocking handle.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::Instant;

use failover_buffer::{
    Admission, BufferError, Config, ConfigError, FailoverCause, HealthStamp, InputError,
    InputStats, InvariantViolation, ShardId, ShardState, ShardStats, Ticket, Timestamp,
    TopologyEvent,
};

use crate::clock::{Clock, SystemClock};
use crate::shard::Shard;
use crate::state::{Outcome, Shared, Waiter};
use crate::telemetry;

/// A failover buffer for blocking callers: each held request parks its own thread.
///
/// Cloning is cheap (an `Arc` clone) and every clone drives the same buffer. One timer
/// thread per buffer fires the core's timers (window, max failover duration, drain
/// back-off) and callers' deadlines; it exits once the last clone is dropped (which joins
/// it) or once [`shutdown`](Self::shutdown) has finished.
///
/// See the [crate docs](crate) for the calling pattern.
#[derive(Clone)]
pub struct FailoverBuffer {
    handle: Arc<Handle>,
}

/// Owned by the clones of one `FailoverBuffer`; its drop stops and joins the timer thread.
struct Handle {
    shared: Arc<Shared>,
    timer: Option<JoinHandle<()>>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.stop_timer();
        if let Some(timer) = self.timer.take() {
            // The timer thread runs only the core and this crate's code, neither of which
            // panics; if a user's `Clock` did, there is nothing left to report it to.
            let _ = timer.join();
        }
    }
}

impl fmt::Debug for FailoverBuffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FailoverBuffer").finish_non_exhaustive()
    }
}

/// Why [`FailoverBuffer::wait_for_failover_end_timeout`] did not let the request through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitError {
    /// The buffer failed the request: return this to the client.
    Buffer(BufferError),
    /// The deadline came before the failover ended. The request was cancelled (counted
    /// `ContextDone`) and holds nothing.
    TimedOut,
}

impl fmt::Display for WaitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WaitError::Buffer(e) => fmt::Display::fmt(e, f),
            // Vitess's wording, which operators already grep for.
            WaitError::TimedOut => f.write_str(
                "context was canceled before failover finished: context deadline exceeded",
            ),
        }
    }
}

impl std::error::Error for WaitError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            WaitError::Buffer(e) => Some(e),
            WaitError::TimedOut => None,
        }
    }
}

impl From<BufferError> for WaitError {
    fn from(e: BufferError) -> Self {
        WaitError::Buffer(e)
    }
}

/// Permission to retry a released request now. Dropping it reports the retry finished
/// (the core's `retry_done`): the request's slot is freed and a draining shard releases its
/// next request. Hold it for exactly as long as the retry runs; that is what paces a drain
/// at `drain_concurrency`.
///
/// It is dropped on every path, an unwinding panic included, so a retry that panics still
/// frees its slot. If the retry failed again with a failover error, hand the guard to
/// [`retry_failed`](Self::retry_failed) instead of dropping it: a young drain then backs off
/// and holds the request again, even one that has just finished.
#[must_use = "dropping the guard at once reports the retry finished before it was sent"]
pub struct RetryGuard {
    /// `None` once [`retry_failed`](Self::retry_failed) has reported for it.
    shared: Option<Arc<Shared>>,
    ticket: Ticket,
    shard: ShardId,
}

impl RetryGuard {
    /// The core's ticket for this request, for logs.
    pub fn ticket(&self) -> Ticket {
        self.ticket
    }

    /// The shard the request is for.
    pub fn shard_id(&self) -> ShardId {
        self.shard
    }

    /// The retry failed again with a failover error: report it and wait to be held again,
    /// exactly as [`wait_for_failover_end`](FailoverBuffer::wait_for_failover_end) with
    /// `Some(cause)` would, with one difference: this is evidence that the failover's end
    /// was seen too early (the new primary not writable yet), so within
    /// `max_failover_duration` of the episode's start the shard's drain backs off and holds
    /// the request again even if that drain has just finished (DESIGN's drain back-off).
    /// Dropping the guard and calling `wait_for_failover_end` instead loses that: once the
    /// drain has finished, the new failover error meets the min-time rules and proceeds.
    pub fn retry_failed(mut self, cause: FailoverCause) -> Result<Option<RetryGuard>, BufferError> {
        let ticket = self.ticket;
        let Some(shared) = self.shared.take() else {
            return Ok(None);
        };
        block(&shared, self.shard, None, |st, now| {
            // This guard is the ticket's only owner and reports once: the core cannot
            // refuse the ticket.
            st.core
                .retry_failed(now, ticket, cause)
                .unwrap_or(Admission::Proceed)
        })
        .map_err(untimed)
    }
}

/// The error of a wait that had no deadline.
fn untimed(e: WaitError) -> BufferError {
    match e {
        WaitError::Buffer(e) => e,
        // Only a deadline times out, and none was given.
        WaitError::TimedOut => unreachable!("a wait without a deadline timed out"),
    }
}

/// Feeds one admission-producing input to the core and blocks until its outcome.
fn block(
    shared: &Arc<Shared>,
    shard: ShardId,
    deadline: Option<Timestamp>,
    input: impl FnOnce(&mut crate::state::State, Timestamp) -> Admission,
) -> Result<Option<RetryGuard>, WaitError> {
    enum Admitted {
        Proceed,
        Fail(BufferError),
        Wait(Arc<Waiter>),
    }
    let admitted = shared.run(|st, now, fx| {
        fx.telemetry.touch(shard);
        match input(st, now) {
            Admission::Wait(ticket) => Admitted::Wait(st.hold(ticket, deadline)),
            Admission::Fail(e) => Admitted::Fail(e),
            Admission::Proceed => Admitted::Proceed,
        }
    });
    let outcome = match admitted {
        Admitted::Proceed => {
            telemetry::request(shard, "proceed");
            return Ok(None);
        }
        Admitted::Fail(e) => {
            telemetry::request(shard, "failed");
            return Err(WaitError::Buffer(e));
        }
        Admitted::Wait(waiter) => {
            telemetry::request(shard, "held");
            waiter.wait()
        }
    };
    match outcome {
        Outcome::Retry(ticket) => {
            telemetry::request(shard, "released to retry");
            Ok(Some(RetryGuard {
                shared: Some(shared.clone()),
                ticket,
                shard,
            }))
        }
        Outcome::Fail(e) => {
            telemetry::request(shard, "released with an error");
            Err(WaitError::Buffer(e))
        }
        Outcome::TimedOut => Err(WaitError::TimedOut),
    }
}

impl fmt::Debug for RetryGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryGuard")
            .field("ticket", &self.ticket)
            .field("shard", &self.shard)
            .finish()
    }
}

impl Drop for RetryGuard {
    fn drop(&mut self) {
        let (ticket, shard) = (self.ticket, self.shard);
        let Some(shared) = self.shared.take() else {
            return;
        };
        shared.run(|st, now, fx| {
            // Only this guard ends a ticket woken with Retry, and it does so once: the
            // call cannot be refused.
            let _ = st.core.retry_done(now, ticket);
            fx.telemetry.touch(shard);
        });
    }
}

impl FailoverBuffer {
    /// A buffer on the system clock, with its timer thread started, or the first problem
    /// with `config`.
    ///
    /// Note that [`Config::default`] has `enabled: false`, as in Vitess: set it to hold
    /// anything.
    ///
    /// # Panics
    ///
    /// If the operating system refuses to start the timer thread.
    pub fn new(config: Config) -> Result<FailoverBuffer, ConfigError> {
        FailoverBuffer::with_clock(config, Arc::new(SystemClock))
    }

    /// A buffer on `clock`, for tests and simulations that drive time themselves (see
    /// [`ManualClock`](crate::ManualClock)).
    ///
    /// # Panics
    ///
    /// If the operating system refuses to start the timer thread.
    pub fn with_clock(
        config: Config,
        clock: Arc<dyn Clock>,
    ) -> Result<FailoverBuffer, ConfigError> {
        let core = failover_buffer::Buffer::new(config)?;
        let shared = Arc::new(Shared::new(core, clock));
        let timer = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("failover-buffer-timer".into())
                .spawn(move || shared.timer_loop())
                .expect("the operating system refused to start the failover-buffer timer thread")
        };
        Ok(FailoverBuffer {
            handle: Arc::new(Handle {
                shared,
                timer: Some(timer),
            }),
        })
    }

    fn shared(&self) -> &Arc<Shared> {
        &self.handle.shared
    }

    /// Registers `keyspace/shard` and returns its handle, or the handle it already has.
    /// A cold-path call (it takes the lock and may allocate): do it once per shard and
    /// keep the handle.
    pub fn register_shard(&self, keyspace: &str, shard: &str) -> Shard {
        self.shared().run(|st, _now, fx| {
            let id = st.core.register_shard(keyspace, shard);
            if let Some(inner) = st.shards.get(id.index()) {
                return Shard {
                    inner: inner.clone(),
                };
            }
            let handle = Shard::new(id, keyspace, shard);
            st.shards.push(handle.inner.clone());
            // Every metric exists, at zero, from registration, as in Vitess.
            fx.telemetry.touch(id);
            handle
        })
    }

    /// The handle of a registered shard.
    pub fn shard(&self, keyspace: &str, shard: &str) -> Option<Shard> {
        let st = self.shared().lock();
        let id = st.core.shard_id(keyspace, shard)?;
        st.shards.get(id.index()).map(|inner| Shard {
            inner: inner.clone(),
        })
    }

    /// Call before sending a request to `shard`'s primary; blocks while the buffer holds it.
    ///
    /// `cause` is `None` on a first attempt, or the [`FailoverCause`] the previous attempt
    /// failed with (the router classifies errors; only failover errors come here).
    ///
    /// * `Ok(None)`: send the request now.
    /// * `Ok(Some(guard))`: the request was held and is released: send it now, and drop the
    ///   guard when that attempt has finished.
    /// * `Err(e)`: return `e` to the client.
    ///
    /// A first attempt on a shard that is not buffering returns `Ok(None)` at once without
    /// taking a lock or allocating: the cost of the buffer when there is no failover is one
    /// atomic load.
    ///
    /// It waits at most the buffer's `window` (then the request is released to retry), or
    /// until the failover ends or the buffer shuts down. A blocked call cannot be
    /// interrupted from outside; to give up earlier, use
    /// [`wait_for_failover_end_timeout`](Self::wait_for_failover_end_timeout). While it
    /// blocks, the request holds one of the buffer's `size` slots.
    ///
    /// # Panics
    ///
    /// If `shard` was issued by another buffer (the slow path checks).
    #[inline]
    pub fn wait_for_failover_end(
        &self,
        shard: &Shard,
        cause: Option<FailoverCause>,
    ) -> Result<Option<RetryGuard>, BufferError> {
        self.wait(shard, cause, None).map_err(untimed)
    }

    /// [`wait_for_failover_end`](Self::wait_for_failover_end), giving up at `deadline` (the
    /// client's own deadline, as a Go context carries it).
    ///
    /// At the deadline a held request is cancelled: it leaves the queue, frees its slot, is
    /// counted `ContextDone`, and this returns [`WaitError::TimedOut`]. A deadline already
    /// past when the request would be held times out at once; one that passes after the
    /// request was released does not matter (the guard is already handed out).
    ///
    /// A release and the deadline can race. The rule: a release is compared with the
    /// deadline at the clock reading of the input that caused it (a health stamp, another
    /// request's retry finishing, a timer pass). If the deadline has been reached, the
    /// caller gets `TimedOut` whatever the verdict, and a release to retry is handed back to
    /// the buffer at once, so its slot and its turn in the drain go to the next request.
    /// At a timer pass, deadlines are applied before the buffer's own timers, so a request
    /// whose deadline and window end at the same instant is cancelled, not released.
    ///
    /// # Panics
    ///
    /// If `shard` was issued by another buffer (the slow path checks).
    #[inline]
    pub fn wait_for_failover_end_timeout(
        &self,
        shard: &Shard,
        cause: Option<FailoverCause>,
        deadline: Instant,
    ) -> Result<Option<RetryGuard>, WaitError> {
        self.wait(shard, cause, Some(deadline))
    }

    #[inline]
    fn wait(
        &self,
        shard: &Shard,
        cause: Option<FailoverCause>,
        deadline: Option<Instant>,
    ) -> Result<Option<RetryGuard>, WaitError> {
        // The idle fast path: a first attempt on a shard that is not buffering is what the
        // core would answer `Proceed` without changing anything, so it need not be asked.
        // A flag that is a moment stale is the same race as a request arriving a moment
        // earlier or later, and never strands anything.
        if cause.is_none() && !shard.inner.buffering.load(Ordering::Acquire) {
            return Ok(None);
        }
        let shared = self.shared();
        let deadline = deadline.map(|d| shared.timestamp(d));
        let id = shard.id();
        block(shared, id, deadline, |st, now| {
            assert!(
                st.owns(&shard.inner),
                "{shard:?} was issued by another FailoverBuffer"
            );
            // The shard is this buffer's, so the core knows it and cannot refuse.
            st.core
                .request(now, id, cause)
                .unwrap_or(Admission::Proceed)
        })
    }

    /// What the health stream saw of `shard`'s primary. A serving stamp with a newer term
    /// (or the same primary serving again after a not-serving stamp) ends a failover and
    /// starts the drain. A stamp with a term below the highest seen is refused with
    /// [`InputError::StaleHealthStamp`] and changes nothing; a shard of another buffer with
    /// [`InputError::UnknownShard`].
    pub fn health(&self, shard: &Shard, stamp: HealthStamp) -> Result<(), InputError> {
        let id = shard.id();
        self.shared().run(|st, now, fx| {
            if !st.owns(&shard.inner) {
                return Err(InputError::UnknownShard);
            }
            fx.telemetry.touch(id);
            st.core.health(now, id, stamp)
        })
    }

    /// A topology change for `shard`: resharded away, or writes switched by MoveTables.
    /// Either ends buffering on that shard. A shard of another buffer is refused with
    /// [`InputError::UnknownShard`].
    pub fn topology(&self, shard: &Shard, event: TopologyEvent) -> Result<(), InputError> {
        let id = shard.id();
        self.shared().run(|st, now, fx| {
            if !st.owns(&shard.inner) {
                return Err(InputError::UnknownShard);
            }
            fx.telemetry.touch(id);
            st.core.topology(now, id, event)
        })
    }

    /// Fires, in the calling thread, whatever is due at the clock's current reading:
    /// callers' deadlines, window expiries, max failover duration, drain back-off. Woken
    /// callers have been handed their outcome when it returns.
    ///
    /// The timer thread does this by itself on a clock that follows real time; call it
    /// after moving a [`ManualClock`](crate::ManualClock). Calling it when nothing is due
    /// does nothing.
    pub fn tick_now(&self) {
        self.shared().tick_now();
    }

    /// Shuts the buffer down and blocks until every held request has ended.
    ///
    /// Buffering stops on every shard and held requests are released to retry, paced by
    /// `drain_concurrency` as in any drain; from now on every request proceeds unbuffered
    /// and health and topology inputs are ignored. The call returns once every released
    /// request's [`RetryGuard`] has been dropped, so do not call it from a thread that holds
    /// one. Calling it again just waits again. The timer thread exits afterwards.
    pub fn shutdown(&self) {
        self.shared().run(|st, now, fx| {
            st.core.shutdown(now);
            fx.telemetry.touch_all();
        });
        self.shared().wait_closed();
    }

    /// `shard`'s counters (Vitess's names: `starts`, `buffered`, `evicted` by reason, ...).
    ///
    /// # Panics
    ///
    /// If `shard` was issued by another buffer.
    pub fn stats(&self, shard: &Shard) -> ShardStats {
        let st = self.shared().lock();
        assert!(
            st.owns(&shard.inner),
            "{shard:?} was issued by another FailoverBuffer"
        );
        st.core.shard_stats(shard.id()).copied().unwrap_or_default()
    }

    /// `shard`'s state in the failover cycle.
    ///
    /// # Panics
    ///
    /// If `shard` was issued by another buffer.
    pub fn state(&self, shard: &Shard) -> ShardState {
        let st = self.shared().lock();
        assert!(
            st.owns(&shard.inner),
            "{shard:?} was issued by another FailoverBuffer"
        );
        st.core.shard_state(shard.id()).unwrap_or(ShardState::Idle)
    }

    /// Requests of `shard` held in its queue (not those released and retrying).
    ///
    /// # Panics
    ///
    /// If `shard` was issued by another buffer.
    pub fn queued(&self, shard: &Shard) -> usize {
        let st = self.shared().lock();
        assert!(
            st.owns(&shard.inner),
            "{shard:?} was issued by another FailoverBuffer"
        );
        st.core.queued(shard.id()).unwrap_or(0)
    }

    /// Counts of inputs the core refused or clamped.
    pub fn input_stats(&self) -> InputStats {
        self.shared().lock().core.input_stats()
    }

    /// Slots free for new requests, across all shards.
    pub fn free_slots(&self) -> usize {
        self.shared().lock().core.free_slots()
    }

    /// Slots held: requests queued, plus those released whose guards are still alive.
    pub fn held_slots(&self) -> usize {
        self.shared().lock().core.held_slots()
    }

    /// Whether [`shutdown`](Self::shutdown) has finished.
    pub fn is_closed(&self) -> bool {
        self.shared().lock().closed
    }

    /// The core's time for the clock's current reading: nanoseconds since the buffer was
    /// built. Handy to line up logs with the core's `Timestamp`s.
    pub fn now(&self) -> Timestamp {
        self.shared().now()
    }

    /// Checks the core's invariants (DESIGN's list: slots add up, queues match states,
    /// drain concurrency respected, ...); for tests and debug assertions.
    pub fn check_invariants(&self) -> Result<(), InvariantViolation> {
        self.shared().lock().core.check_invariants()
    }
}
