//! The blocking handle.

use std::fmt;
use std::time::Instant;

use failover_buffer::{
    Admission, BufferError, Config, ConfigError, FailoverCause, HealthStamp, InputError,
    InputStats, InvariantViolation, ShardId, ShardState, ShardStats, Ticket, Timestamp,
    TopologyEvent,
};

use crate::clock::{Clock, SystemClock};
use crate::shard::Shard;
use crate::state::{Outcome, Shared, TIMER_DIED, Waiter};
use crate::sync::{Arc, Ordering, thread};
use crate::telemetry;
use failover_buffer::EpisodeEvent;

/// A failover buffer for blocking callers: each held request parks its own thread.
///
/// Cloning is cheap (an `Arc` clone) and every clone drives the same buffer.
///
/// # Lifecycle
///
/// * **The timer.** One timer thread per buffer fires the core's timers (window, max
///   failover duration, drain back-off) and callers' deadlines. It lives while anything can
///   still hold a request: any `FailoverBuffer` clone or any [`RetryGuard`] (a guard can be
///   held again through [`retry_failed`](RetryGuard::retry_failed)). The drop of the last of
///   those stops and joins it; it also exits once [`shutdown`](Self::shutdown) has finished.
/// * **The last handle.** Dropping the last `FailoverBuffer` clone does not shut the buffer
///   down: a request still held (through `retry_failed`) keeps its timers and is released by
///   its window or the max failover duration, whichever comes first (no health input can
///   arrive any more). Call [`shutdown`](Self::shutdown) first to release everything.
/// * **User code under the lock.** The [`Clock`] is read under the buffer's lock, by every
///   input and by the timer thread: keep it fast, and never call into the buffer from it.
///   Telemetry (metrics, logs) never runs under the lock: what an input changed is copied
///   under it and sent after.
/// * **A panic in the timer thread** (the `Clock`, or a metrics recorder or subscriber it
///   runs after a pass) fails loudly, like a poisoned [`Mutex`](std::sync::Mutex): every
///   request it held is cancelled and its caller panics, and so does every later call that
///   would hold a request. (A `Clock` that panics in a caller's thread panics that caller
///   only; the buffer is left as it was.)
///
/// See the [crate docs](crate) for the calling pattern.
#[derive(Clone)]
pub struct FailoverBuffer {
    keeper: Arc<Keeper>,
}

/// Owned by the clones of one `FailoverBuffer` and by its [`RetryGuard`]s: everything that
/// can still hold a request. Its drop stops and joins the timer thread.
struct Keeper {
    shared: Arc<Shared>,
    timer: Option<thread::JoinHandle<()>>,
}

impl Drop for Keeper {
    fn drop(&mut self) {
        self.shared.stop_timer();
        if let Some(timer) = self.timer.take() {
            // A timer thread that panicked has already failed loudly (see `TimerDeath`).
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
///
/// A guard keeps its buffer's timer thread alive, as a [`FailoverBuffer`] handle does: through
/// `retry_failed` it can put its request back in the queue, and a held request must always
/// have a timer to release it.
#[must_use = "dropping the guard at once reports the retry finished before it was sent"]
pub struct RetryGuard {
    /// `None` once [`retry_failed`](Self::retry_failed) has reported for it.
    keeper: Option<Arc<Keeper>>,
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

    /// Why the request was released: its shard's failover ended (the drain, and why it
    /// began: a new primary, max duration, traffic switched, a shutdown), or its window ran
    /// out while the failover was still on ([`ReleaseReason::Window`](failover_buffer::ReleaseReason::Window):
    /// a router may prefer another replica, or expect this retry to fail again). `None`
    /// once [`retry_failed`](Self::retry_failed) has taken the guard over.
    pub fn release_reason(&self) -> Option<failover_buffer::ReleaseReason> {
        let keeper = self.keeper.as_ref()?;
        match keeper.shared.lock().core.ticket_status(self.ticket) {
            failover_buffer::TicketStatus::Retrying(reason) => Some(reason),
            _ => None,
        }
    }

    /// The retry failed again with a failover error: report it and wait to be held again,
    /// exactly as [`wait_for_failover_end`](FailoverBuffer::wait_for_failover_end) with
    /// `Some(cause)` would, with one difference: this is evidence that the failover's end
    /// was seen too early (the new primary not writable yet), so within
    /// `max_failover_duration` of the episode's start the shard's drain backs off and holds
    /// the request again even if that drain has just finished (DESIGN's drain back-off).
    /// Dropping the guard and calling `wait_for_failover_end` instead loses that: once the
    /// drain has finished, the new failover error meets the min-time rules and proceeds.
    ///
    /// # Panics
    ///
    /// If the buffer's timer thread has died (see [Lifecycle](FailoverBuffer#lifecycle)).
    pub fn retry_failed(self, cause: FailoverCause) -> Result<Option<RetryGuard>, BufferError> {
        self.report_failed(cause, None).map_err(untimed)
    }

    /// [`retry_failed`](Self::retry_failed), giving up at `deadline` (the client's own), as
    /// [`wait_for_failover_end_timeout`](FailoverBuffer::wait_for_failover_end_timeout)
    /// does: a request held again past its deadline is cancelled and this returns
    /// [`WaitError::TimedOut`].
    ///
    /// # Panics
    ///
    /// If the buffer's timer thread has died (see [Lifecycle](FailoverBuffer#lifecycle)).
    pub fn retry_failed_timeout(
        self,
        cause: FailoverCause,
        deadline: Instant,
    ) -> Result<Option<RetryGuard>, WaitError> {
        self.report_failed(cause, Some(deadline))
    }

    fn report_failed(
        mut self,
        cause: FailoverCause,
        deadline: Option<Instant>,
    ) -> Result<Option<RetryGuard>, WaitError> {
        let ticket = self.ticket;
        let Some(keeper) = self.keeper.take() else {
            // Only `report_failed` and `Drop` take it, and both consume the guard.
            debug_assert!(false, "{ticket:?} reported twice");
            return Ok(None);
        };
        let deadline = deadline.map(|d| keeper.shared.timestamp(d));
        block(&keeper, self.shard, deadline, |st, now| {
            // This guard is the ticket's only owner and reports once: the core cannot
            // refuse the ticket.
            st.core
                .retry_failed(now, ticket, cause)
                .unwrap_or(Admission::Proceed)
        })
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
///
/// `shard` is the core's id for the request's shard (a refused one for a foreign shard,
/// which the core answers `Proceed`).
fn block(
    keeper: &Arc<Keeper>,
    shard: ShardId,
    deadline: Option<Timestamp>,
    input: impl FnOnce(&mut crate::state::State, Timestamp) -> Admission,
) -> Result<Option<RetryGuard>, WaitError> {
    enum Admitted<'a> {
        Proceed,
        Fail(BufferError),
        Wait(Pending<'a>),
        TimerDied,
    }
    let shared = &keeper.shared;
    let admitted = shared.run(|st, now, fx| {
        if st.timer_died {
            return Admitted::TimerDied;
        }
        fx.telemetry.touch(shard);
        match input(st, now) {
            // Made under the lock, where nothing after it panics (the core never does, and
            // telemetry runs after the lock is released), so it is never dropped there.
            Admission::Wait(ticket) => Admitted::Wait(Pending {
                shared,
                waiter: st.hold(ticket, deadline),
                ticket,
                collected: false,
            }),
            Admission::Fail(e) => Admitted::Fail(e),
            Admission::Proceed => Admitted::Proceed,
        }
    });
    // Each answer exists (a guard, or a `Pending` whose drop ends the ticket) before the log,
    // which is user code, runs: a subscriber that panics strands no slot.
    let outcome = match admitted {
        Admitted::Proceed => {
            telemetry::request(shard, "proceed");
            return Ok(None);
        }
        Admitted::Fail(e) => {
            telemetry::request(shard, "failed");
            return Err(WaitError::Buffer(e));
        }
        Admitted::TimerDied => panic!("{TIMER_DIED}"),
        Admitted::Wait(pending) => {
            telemetry::request(shard, "held");
            pending.wait()
        }
    };
    match outcome {
        Outcome::Retry(ticket) => {
            let guard = RetryGuard {
                keeper: Some(keeper.clone()),
                ticket,
                shard,
            };
            telemetry::request(shard, "released to retry");
            Ok(Some(guard))
        }
        Outcome::Fail(e) => {
            telemetry::request(shard, "released with an error");
            Err(WaitError::Buffer(e))
        }
        Outcome::TimedOut => Err(WaitError::TimedOut),
        Outcome::TimerDied => panic!("{TIMER_DIED}"),
    }
}

/// A held request between its admission and its outcome. Dropped without
/// [`wait`](Self::wait) (its caller panicked in between), it ends the ticket.
struct Pending<'a> {
    shared: &'a Shared,
    waiter: Arc<Waiter>,
    ticket: Ticket,
    /// The outcome was taken: the caller owns what it says.
    collected: bool,
}

impl Pending<'_> {
    fn wait(mut self) -> Outcome {
        let outcome = self.waiter.wait();
        self.collected = true;
        outcome
    }
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        if self.collected {
            return;
        }
        let (ticket, waiter) = (self.ticket, &self.waiter);
        self.shared
            .run(|st, now, _| st.abandon(now, ticket, waiter));
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
        let Some(keeper) = self.keeper.take() else {
            return;
        };
        keeper.shared.run(|st, now, fx| {
            // Only this guard ends a ticket woken with Retry, and it does so once: the
            // call cannot be refused.
            let done = st.core.retry_done(now, ticket);
            debug_assert!(done.is_ok(), "{ticket:?}: {done:?}");
            fx.telemetry.touch(shard);
        });
        // The last keeper's drop joins the timer thread, after the lock is released.
        drop(keeper);
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
        FailoverBuffer::with_clock(config, std::sync::Arc::new(SystemClock))
    }

    /// A buffer on `clock`, for tests and simulations that drive time themselves (see
    /// [`ManualClock`](crate::ManualClock)).
    ///
    /// # Panics
    ///
    /// If the operating system refuses to start the timer thread.
    pub fn with_clock(
        config: Config,
        clock: std::sync::Arc<dyn Clock>,
    ) -> Result<FailoverBuffer, ConfigError> {
        let core = failover_buffer::Buffer::new(config)?;
        let shared = Arc::new(Shared::new(core, clock));
        let timer = {
            let shared = shared.clone();
            thread::Builder::new()
                .name("failover-buffer-timer".into())
                .spawn(move || shared.timer_loop())
                .expect("the operating system refused to start the failover-buffer timer thread")
        };
        Ok(FailoverBuffer {
            keeper: Arc::new(Keeper {
                shared,
                timer: Some(timer),
            }),
        })
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.keeper.shared
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
    /// A `shard` issued by another buffer proceeds unbuffered (`Ok(None)`), and is counted
    /// in [`InputStats::unknown_shards`].
    ///
    /// # Panics
    ///
    /// If the buffer's timer thread has died (see [Lifecycle](Self#lifecycle)).
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
    /// A `shard` issued by another buffer proceeds unbuffered (`Ok(None)`), and is counted
    /// in [`InputStats::unknown_shards`].
    ///
    /// # Panics
    ///
    /// If the buffer's timer thread has died (see [Lifecycle](Self#lifecycle)).
    #[inline]
    pub fn wait_for_failover_end_timeout(
        &self,
        shard: &Shard,
        cause: Option<FailoverCause>,
        deadline: Instant,
    ) -> Result<Option<RetryGuard>, WaitError> {
        self.wait(shard, cause, Some(deadline))
    }

    /// [`wait_for_failover_end`](Self::wait_for_failover_end) for a request of `bytes`
    /// bytes: while held it counts against [`Config::max_bytes`] (and the shard's
    /// [`ShardStats::bytes_held`]). A request that would take the buffer over its budget
    /// evicts held requests by the [`Config::eviction`] policy until it fits, or is refused
    /// with [`BufferError::BufferFull`] (evicting nothing) if it cannot be made to fit. The
    /// idle fast path is the same one atomic load.
    ///
    /// # Panics
    ///
    /// If the buffer's timer thread has died (see [Lifecycle](Self#lifecycle)).
    pub fn wait_for_failover_end_sized(
        &self,
        shard: &Shard,
        cause: Option<FailoverCause>,
        bytes: u64,
    ) -> Result<Option<RetryGuard>, BufferError> {
        if cause.is_none() && !shard.inner.buffering.load(Ordering::Acquire) {
            return Ok(None);
        }
        block(&self.keeper, shard.id(), None, |st, now| {
            let id = st.shard_id(&shard.inner);
            st.core
                .request_sized(now, id, cause, bytes)
                .unwrap_or(Admission::Proceed)
        })
        .map_err(untimed)
    }

    /// Bytes held across all shards: held requests, and released ones whose retries have
    /// not finished (see [`wait_for_failover_end_sized`](Self::wait_for_failover_end_sized)).
    pub fn held_bytes(&self) -> u64 {
        self.shared().lock().core.held_bytes()
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
        let deadline = deadline.map(|d| self.shared().timestamp(d));
        block(&self.keeper, shard.id(), deadline, |st, now| {
            let id = st.shard_id(&shard.inner);
            // Only a shard of another buffer is refused (and counted): it proceeds.
            st.core
                .request(now, id, cause)
                .unwrap_or(Admission::Proceed)
        })
    }

    /// What the health stream saw of `shard`'s primary. A serving stamp with a newer term
    /// (or the same primary serving again after a not-serving stamp) ends a failover and
    /// starts the drain. A stamp with a term below the highest seen is refused with
    /// [`InputError::StaleHealthStamp`] and changes nothing; a shard of another buffer with
    /// [`InputError::UnknownShard`] (counted in [`InputStats::unknown_shards`]).
    pub fn health(&self, shard: &Shard, stamp: HealthStamp) -> Result<(), InputError> {
        self.shared().run(|st, now, fx| {
            let id = st.shard_id(&shard.inner);
            fx.telemetry.touch(id);
            st.core.health(now, id, stamp)
        })
    }

    /// A topology change for `shard`: resharded away, or writes switched by MoveTables.
    /// Either ends buffering on that shard. A shard of another buffer is refused with
    /// [`InputError::UnknownShard`].
    pub fn topology(&self, shard: &Shard, event: TopologyEvent) -> Result<(), InputError> {
        self.shared().run(|st, now, fx| {
            let id = st.shard_id(&shard.inner);
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

    /// Shuts the buffer down and blocks until it has closed (every held request has ended,
    /// or the [`shutdown_grace`](crate::Config::shutdown_grace) passed) or the shutdown
    /// was cancelled: [`begin_shutdown`](Self::begin_shutdown) then
    /// [`Shutdown::wait`](crate::Shutdown::wait).
    ///
    /// Buffering stops on every shard and held requests are released to retry, paced by
    /// `drain_concurrency` as in any drain; from now on every request proceeds unbuffered
    /// and health and topology inputs are ignored. The call returns once every released
    /// request's [`RetryGuard`] has been dropped, so do not call it from a thread that holds
    /// one. Calling it again just waits again. The timer thread exits after the close.
    pub fn shutdown(&self) -> crate::ShutdownEnd {
        self.begin_shutdown().wait()
    }

    /// `shard`'s counters (Vitess's names: `starts`, `buffered`, `evicted` by reason, ...);
    /// all zero for a shard of another buffer.
    pub fn stats(&self, shard: &Shard) -> ShardStats {
        let st = self.shared().lock();
        let id = st.shard_id(&shard.inner);
        st.core.shard_stats(id).copied().unwrap_or_default()
    }

    /// `shard`'s state in the failover cycle (`Idle` for a shard of another buffer).
    pub fn state(&self, shard: &Shard) -> ShardState {
        let st = self.shared().lock();
        let id = st.shard_id(&shard.inner);
        st.core.shard_state(id).unwrap_or(ShardState::Idle)
    }

    /// Requests of `shard` held in its queue (not those released and retrying); 0 for a
    /// shard of another buffer.
    pub fn queued(&self, shard: &Shard) -> usize {
        let st = self.shared().lock();
        let id = st.shard_id(&shard.inner);
        st.core.queued(id).unwrap_or(0)
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

    /// A subscription to this buffer's [`EpisodeEvent`]s, for every shard, from now on.
    ///
    /// Events are sent after the buffer's lock is released, in the order the buffer took
    /// the steps, on an unbounded channel (an episode is four to six events, so a receiver
    /// read now and then stays small). Dropping the receiver ends the subscription. After
    /// [`EpisodeEvent::Closed`] nothing more is sent.
    ///
    /// ```
    /// use std::time::Duration;
    /// use failover_buffer_std::{Config, EpisodeEvent, FailoverBuffer, FailoverCause};
    ///
    /// let buffer = FailoverBuffer::new(Config { enabled: true, ..Config::default() }).unwrap();
    /// let shard = buffer.register_shard("commerce", "0");
    /// let events = buffer.events();
    /// // A request held with a deadline already past starts the failover and gives up.
    /// let _ = buffer.wait_for_failover_end_timeout(
    ///     &shard,
    ///     Some(FailoverCause::Reparent),
    ///     std::time::Instant::now(),
    /// );
    /// // The router's watcher: mark the shard not-serving when a failover starts.
    /// match events.recv_timeout(Duration::from_secs(10)).unwrap() {
    ///     EpisodeEvent::FailoverStarted { shard: id, .. } => assert_eq!(id, shard.id()),
    ///     other => panic!("{other:?}"),
    /// }
    /// ```
    pub fn events(&self) -> std::sync::mpsc::Receiver<EpisodeEvent> {
        self.shared().subscribe()
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
