//! The buffer: every shard, one global capacity, and the input/output contract.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use crate::action::{Action, Admission, Deadline};
use crate::config::{Config, ConfigError, Mode};
use crate::drain::{DrainAction, DrainError, DrainPlan};
use crate::error::InputError;
use crate::event::{FailoverCause, HealthStamp, TopologyEvent};
use crate::names::Names;
use crate::pause::{PauseError, PauseScope};
#[cfg(doc)]
use crate::queue::ReleaseReason;
use crate::queue::{Held, Pool, TicketStatus};
use crate::shard::{EpisodeView, ShardId, ShardState};
use crate::shard_buffer::{Active, Ctx, Limits, ShardBuffer};
use crate::shutdown::{Shutdown, ShutdownProgress};
use crate::stats::{InputStats, PauseEnd, ShardStats, StopReason};
use crate::ticket::{Ticket, TicketError};
use crate::time::{Timestamp, duration_nanos};
use crate::timers::Timers;
use crate::waits::WaitHistograms;

// `Buffer::inspect` (feature `inspect`) reads this module's private fields from a child.
#[cfg(feature = "inspect")]
#[path = "inspect/buffer_fields.rs"]
mod inspect_fields;

/// A failover buffer for any number of shards sharing one capacity.
///
/// `Buffer` is a pure state machine: it contains no I/O, no threads, no locks and no clock.
/// The caller feeds it inputs, each with the current time, and carries out the [`Action`]s
/// it queues in response. The same inputs always give the same outputs.
///
/// Methods fall into these categories:
///
/// * **Set-up**: [`new`](Self::new) and [`register_shard`](Self::register_shard), which names a
///   `keyspace/shard` once and returns the dense [`ShardId`] the hot path uses.
/// * **Inputs**, each taking `now` first: [`request`](Self::request) (a request is about to go
///   to the primary), [`health`](Self::health), [`topology`](Self::topology),
///   [`tick`](Self::tick), [`cancel`](Self::cancel), [`retry_done`](Self::retry_done),
///   [`retry_failed`](Self::retry_failed), [`pause`](Self::pause), [`resume`](Self::resume),
///   [`shutdown`](Self::shutdown) and [`cancel_shutdown`](Self::cancel_shutdown). Bad input
///   is refused with a typed error ([`InputError`], [`PauseError`]) and changes nothing; no
///   input sequence panics.
/// * **Outputs**: [`poll_action`](Self::poll_action) and [`poll_timeout`](Self::poll_timeout)
///   (or [`next_deadline`](Self::next_deadline), which also says why).
/// * **Getters**: state, counters ([`shard_stats`](Self::shard_stats),
///   [`input_stats`](Self::input_stats)) and capacity, readable at any time.
///
/// After every input, call `poll_action` until it returns `None`, then `poll_timeout`, and
/// arrange for `tick` to be called at that instant. The deadline can move with every input,
/// so read it again after each one. `tick` is cheap when nothing is due: calling it early,
/// late or twice is harmless, and a late call fires everything that became due since.
///
/// Time is a [`Timestamp`] on a monotonic clock of the caller's choosing. Time that goes
/// backwards is clamped to the latest time seen and counted in
/// [`InputStats::clock_regressions`]. [`Timestamp::MAX`] is "never": an input stamped with
/// it runs 1 ns earlier, and a deadline that saturates at it arms no timer, so no request is
/// ever due the instant it is queued.
///
/// # The rules
///
/// Each shard is `Idle`, `Buffering` or `Draining` ([`ShardState`]); one failover is an
/// *episode*, from its start to the end of its drain ([`episode`](Self::episode) shows it).
///
/// * **Start.** On an idle shard, a request with a failover cause starts an episode
///   ([`Action::FailoverStarted`]), and so does a not-serving health stamp when
///   `proactive_start` is on (the default, as in Vitess). Neither starts one if the shard's
///   last episode ended, or its primary changed, less than `min_time_between_failovers` ago
///   (a refused request proceeds, counted as skipped). A first attempt on an idle or
///   draining shard always proceeds, touching nothing.
/// * **Buffering.** Every request waits, first attempts included. When every slot is taken,
///   the shard's oldest queued request is evicted (`Fail(Evicted)`) for the newcomer; with
///   nothing of its own to evict, the newcomer fails with `BufferFull`. That is the default
///   [`Eviction::OldestOfShard`](crate::Eviction::OldestOfShard); `OldestAnywhere` evicts
///   the oldest queued request of any shard instead, and `RejectNew` refuses the newcomer.
///   A shard holding `max_per_shard` slots evicts its own oldest queued request (or, under
///   `RejectNew`, refuses). With a byte budget ([`Config::max_bytes`]), a request that
///   would take the bytes held over it evicts by the same policy until it fits, or fails
///   with `BufferFull`, evicting nothing, if it cannot be made to fit. A request held for
///   its whole `window` is released to retry ([`ReleaseReason::Window`]).
/// * **End.** A serving stamp with a term above the highest known at the start, or any
///   serving stamp once a not-serving one was seen during the episode, ends it
///   (`NewPrimarySeen`); so do `max_failover_duration`, a topology event and
///   [`shutdown`](Self::shutdown). A stale "still serving" from the demoted primary never
///   does.
/// * **Drain.** Queued requests are released in order, at most `drain_concurrency` retrying
///   at once; each [`retry_done`](Self::retry_done) releases the next. After `ShardMissing`
///   they fail with `ShardMissing` instead, and so does any failover request on that shard
///   until the drain ends. New requests proceed.
/// * **Drain back-off.** While the episode is younger than `max_failover_duration` and its
///   drain began because the failover seemed over, proof that the new primary is not
///   writable yet calls the drain off ([`Action::DrainPaused`]; the shard buffers again in
///   the same episode, its queue in order). The proof is a drain-released retry failing
///   again ([`retry_failed`](Self::retry_failed): the drain pauses *before* anything more is
///   released, and the request goes back to the head of its queue in its own slot), or a
///   failover request that is actually queued. A request the buffer refuses
///   (`BufferFull`) is no proof and changes nothing; nor is a retry its window released,
///   which was sent while the failover was still on: its failure is a fresh failover error.
///   The drain resumes on the next serving stamp (any term) or `drain_backoff` after the
///   pause. Past `max_failover_duration`, failover requests during a drain proceed, as in
///   Vitess.
/// * **Tickets.** Every held request ends exactly once: by a `Fail` wake, by a `Retry` wake
///   then `retry_done`, `retry_failed` or `cancel`, or by `cancel` while queued. A ticket
///   that has ended, or that another buffer issued, is refused with a [`TicketError`] and
///   acts on nothing.
/// * **Shutdown.** Every buffering shard drains (`Shutdown`); from then on every request
///   proceeds; [`Action::Closed`] follows the last ticket's end (or the end of
///   `shutdown_grace`). Until then [`cancel_shutdown`](Self::cancel_shutdown) calls it off
///   with nothing lost: what was not released stays queued and its shards buffer again,
///   with their original deadlines. The phases are a [`DrainPlan`]'s
///   ([`shutdown`](Self::shutdown) lists them).
/// * **Operator pause.** [`pause`](Self::pause) holds every request of a shard (or of all),
///   first attempts included, as an episode holds them, until [`resume`](Self::resume) or
///   its bound, at most [`Config::max_pause`]; it coexists with an episode, and the shard
///   releases only when both have ended.
/// * **Limits** change at run time by [`reconfigure`](Self::reconfigure)'s rules.
///
/// ```
/// use failover_buffer::{Action, Admission, Buffer, Config, FailoverCause, HealthStamp, PrimaryId, Timestamp, Verdict};
///
/// let mut buffer = Buffer::new(Config { enabled: true, ..Config::default() })?;
/// let shard = buffer.register_shard("commerce", "0");
/// let t = Timestamp::from_secs;
///
/// // The primary is known and serving.
/// buffer.health(t(1), shard, HealthStamp { primary: PrimaryId(100), term: 1, serving: true })?;
/// // A first attempt on an idle shard proceeds at once.
/// assert_eq!(buffer.request(t(2), shard, None)?, Admission::Proceed);
/// // It failed because the primary is being demoted: hold its retry.
/// let Admission::Wait(ticket) = buffer.request(t(2), shard, Some(FailoverCause::Reparent))? else {
///     unreachable!()
/// };
/// assert!(matches!(buffer.poll_action(), Some(Action::FailoverStarted { .. })));
///
/// // The new primary serves, with a newer term: the held request is released to retry.
/// buffer.health(t(4), shard, HealthStamp { primary: PrimaryId(101), term: 2, serving: true })?;
/// let woken: Vec<_> = std::iter::from_fn(|| buffer.poll_action()).collect();
/// assert!(woken.contains(&Action::Wake { ticket, verdict: Verdict::Retry }));
///
/// // The retry finished: its slot is free again.
/// buffer.retry_done(t(4), ticket)?;
/// assert_eq!(buffer.free_slots(), 1000);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Cloning
///
/// `Buffer::clone` takes a snapshot: an independent buffer in the same state (shards,
/// queued and retrying requests, timers, pending actions, counters, a shutdown in progress),
/// which then moves on by its own inputs only. It is for exploring futures from one state
/// (the project's exhaustive test expands every state it reaches by cloning it), for a
/// simulator that forks a run, or for asking "what would this input do" without doing it.
/// It allocates as much as the buffer holds; nothing else is shared. `clone_from` gives the
/// same copy into an existing buffer, reusing its allocations (its slab, queues, timers,
/// shards' details): refreshing a copy kept for reading (an adapter's exported snapshot, say)
/// then allocates only for what the source holds beyond what the copy held.
///
/// **A clone keeps the original's identity**, so the two accept each other's tickets: every
/// ticket issued before the clone names the same request in both, and each copy goes on
/// handing out the same ticket values, so a ticket issued after the clone by one copy may
/// name an unrelated request in the other. This is what a snapshot needs (the tickets a
/// caller holds stay valid in the copy it continues with), but it lifts the usual guard
/// against a ticket given to the wrong buffer ([`TicketError::NotIssued`]): **never feed
/// one copy's tickets to the other**. Keep one of them, or keep their tickets apart
/// (a copy per explored branch, its tickets with it). An adapter does not clone its buffer.
///
/// ```
/// use failover_buffer::{Admission, Buffer, Config, FailoverCause, Timestamp};
///
/// let mut buffer = Buffer::new(Config { enabled: true, ..Config::default() })?;
/// let shard = buffer.register_shard("commerce", "0");
/// let t = Timestamp::from_secs;
/// let Admission::Wait(ticket) = buffer.request(t(1), shard, Some(FailoverCause::Reparent))? else {
///     unreachable!()
/// };
///
/// // What if the client gave up? Ask a snapshot; the buffer itself is untouched.
/// let mut what_if = buffer.clone();
/// what_if.cancel(t(2), ticket)?;
/// assert_eq!(what_if.held_slots(), 0);
/// assert_eq!(buffer.held_slots(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Buffer {
    config: Config,
    limits: Limits,
    shards: Vec<ShardBuffer>,
    names: Names,
    pool: Pool,
    active: Active,
    timers: Timers,
    actions: VecDeque<Action>,
    now: Timestamp,
    last_tick: Option<Timestamp>,
    shut_down: bool,
    closed: bool,
    input_stats: InputStats,
    /// The latest shutdown, once one began.
    shutdown: Option<Shutdown>,
}

// `clone_from` makes the same copy as `clone`, into this buffer's allocations: it allocates only where
// `source` holds more (shards, slots, timers, histograms) than this buffer did.
clone_field_by_field!(Buffer {
    config,
    limits,
    shards,
    names,
    pool,
    active,
    timers,
    actions,
    now,
    last_tick,
    shut_down,
    closed,
    input_stats,
    shutdown
});

impl Buffer {
    /// A buffer with no shards, or the first problem with `config`.
    pub fn new(config: Config) -> Result<Buffer, ConfigError> {
        config.validate()?;
        let limits = Limits::of(&config);
        Ok(Buffer {
            // Room for a typical failover up front; the slab grows (amortised) if more wait.
            pool: Pool::with_capacity(config.size.min(1024)),
            config,
            limits,
            shards: Vec::new(),
            names: Names::default(),
            active: Active::default(),
            timers: Timers::default(),
            actions: VecDeque::new(),
            now: Timestamp::ZERO,
            last_tick: None,
            shut_down: false,
            closed: false,
            input_stats: InputStats::default(),
            shutdown: None,
        })
    }

    /// The configuration, as validated.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Registers `keyspace/shard` and returns its id, or the id it already has. Its
    /// [`Mode`] is fixed now, from the config. A cold-path call: do it once per shard and
    /// keep the id.
    pub fn register_shard(&mut self, keyspace: &str, shard: &str) -> ShardId {
        if let Some(id) = self.shard_id(keyspace, shard) {
            return id;
        }
        // More than four billion shards is not a configuration anyone runs; ids saturate
        // rather than wrap so they can never alias a smaller one.
        let id = ShardId(u32::try_from(self.shards.len()).unwrap_or(u32::MAX));
        let mode = self.config.mode_for(keyspace, shard);
        self.shards.push(ShardBuffer::new(mode));
        self.active.register();
        self.pool.register();
        self.timers.register();
        self.names.push(id, keyspace, shard);
        id
    }

    /// The id of a registered shard.
    pub fn shard_id(&self, keyspace: &str, shard: &str) -> Option<ShardId> {
        self.names.get(keyspace, shard)
    }

    /// Every registered shard, in order of registration.
    pub fn shards(&self) -> impl ExactSizeIterator<Item = ShardId> + use<> {
        (0..self.shards.len() as u32).map(ShardId)
    }

    /// A shard's `(keyspace, shard)` names.
    pub fn shard_name(&self, id: ShardId) -> Option<(&str, &str)> {
        self.names.name(id)
    }

    /// A shard's mode.
    pub fn shard_mode(&self, id: ShardId) -> Option<Mode> {
        self.shards.get(id.index()).map(|s| s.mode)
    }

    /// A shard's state.
    pub fn shard_state(&self, id: ShardId) -> Option<ShardState> {
        self.shards.get(id.index()).map(|s| s.state)
    }

    /// Requests waiting in a shard's queue (not those already released to retry).
    pub fn queued(&self, id: ShardId) -> Option<usize> {
        self.shards.get(id.index()).map(|s| s.d().queue.len())
    }

    /// Requests a shard's drain has released whose retries have not finished.
    pub fn draining_in_flight(&self, id: ShardId) -> Option<usize> {
        self.shards.get(id.index()).map(|s| s.d().drain_in_flight)
    }

    /// The highest health-stamp term seen for a shard.
    pub fn highest_term(&self, id: ShardId) -> Option<u64> {
        self.shards.get(id.index())?.highest_term()
    }

    /// A shard's counters.
    pub fn shard_stats(&self, id: ShardId) -> Option<&ShardStats> {
        self.shards.get(id.index()).map(|s| &s.d().stats)
    }

    /// A shard's wait-time histograms by outcome, and its failover durations (see
    /// [`WaitHistograms`]): all empty for a shard that never failed over. A read-only view;
    /// `None` for an unknown shard.
    pub fn wait_histograms(&self, id: ShardId) -> Option<&WaitHistograms> {
        self.shards.get(id.index()).map(|s| &s.d().waits)
    }

    /// Room for `additional` more shards in every per-shard table, so that registering them
    /// grows nothing (a table grown by doubling holds up to twice what it needs). For a
    /// router that knows its shard count: 100,000 shards reserved up front cost about a
    /// fifth less (145 B a shard instead of 185 B; see `benches/README.md`). A cold-path
    /// call.
    ///
    /// ```
    /// use failover_buffer::{Buffer, Config};
    ///
    /// let mut buffer = Buffer::new(Config::default())?;
    /// buffer.reserve_shards(256);
    /// for i in 0..256 {
    ///     buffer.register_shard("commerce", &format!("{i:02x}"));
    /// }
    /// assert_eq!(buffer.shards().len(), 256);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn reserve_shards(&mut self, additional: usize) {
        self.shards.reserve_exact(additional);
        self.names.reserve(additional);
        self.active.reserve(additional);
        self.pool.reserve_shards(additional);
        self.timers.reserve(additional);
    }

    /// Counts of refused inputs.
    pub fn input_stats(&self) -> InputStats {
        self.input_stats
    }

    /// Slots free for new requests, across all shards.
    pub fn free_slots(&self) -> usize {
        self.limits.size.saturating_sub(self.pool.len())
    }

    /// Slots held: requests queued, plus requests released whose retries have not finished.
    pub fn held_slots(&self) -> usize {
        self.pool.len()
    }

    /// Where a ticket is in its life: queued, retrying (and why it was released), ended, or
    /// never issued by this buffer.
    ///
    /// ```
    /// use failover_buffer::{Admission, Buffer, Config, FailoverCause, ReleaseReason, TicketStatus, Timestamp};
    ///
    /// let mut buffer = Buffer::new(Config { enabled: true, ..Config::default() })?;
    /// let shard = buffer.register_shard("ks", "0");
    /// let Admission::Wait(ticket) = buffer.request(Timestamp::ZERO, shard, Some(FailoverCause::Reparent))? else {
    ///     unreachable!()
    /// };
    /// assert_eq!(buffer.ticket_status(ticket), TicketStatus::Queued);
    /// // Still failing over 10 s later: the window releases it, and says so.
    /// buffer.tick(Timestamp::from_secs(10));
    /// assert_eq!(buffer.ticket_status(ticket), TicketStatus::Retrying(ReleaseReason::Window));
    /// buffer.retry_done(Timestamp::from_secs(10), ticket)?;
    /// assert_eq!(buffer.ticket_status(ticket), TicketStatus::Ended);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn ticket_status(&self, ticket: Ticket) -> TicketStatus {
        self.pool.status(ticket)
    }

    /// A shard's current or last failover episode, or `None` if the shard is unknown or
    /// never had one. See [`EpisodeView`].
    pub fn episode(&self, id: ShardId) -> Option<EpisodeView> {
        self.shards.get(id.index())?.episode_view(&self.limits)
    }

    /// The shard a live ticket belongs to.
    pub fn ticket_shard(&self, ticket: Ticket) -> Option<ShardId> {
        self.pool.get(ticket).ok().map(|e| e.shard)
    }

    /// The latest time any input carried.
    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// Whether a [`shutdown`](Self::shutdown) is under way or has closed the buffer (not
    /// once it was cancelled).
    pub fn is_shut_down(&self) -> bool {
        self.shut_down
    }

    /// Whether the shutdown has closed the buffer: every ticket had ended, or the
    /// [`shutdown_grace`](Config::shutdown_grace) passed. Final.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// The latest shutdown's plan: its state, [`history`](DrainPlan::history) (when each
    /// phase was entered and left, and why) and counters. `None` before the first
    /// [`shutdown`](Self::shutdown). Its phases are the [`ShutdownPhase`](crate::ShutdownPhase)s.
    pub fn shutdown_plan(&self) -> Option<&DrainPlan> {
        self.shutdown.as_ref().map(|s| &s.plan)
    }

    /// Where the shutdown is, for an operator: its phase, the work left in it, time left and
    /// since it began, and the requests still queued and retrying. `None` before the first
    /// [`shutdown`](Self::shutdown); after a cancel or once closed, the last attempt's
    /// frozen view (with the current counts). Reads only; `now` is clamped to the latest
    /// input's time.
    pub fn shutdown_progress(&self, now: Timestamp) -> Option<ShutdownProgress> {
        let shutdown = self.shutdown.as_ref()?;
        let queued = self.pool.queued();
        Some(ShutdownProgress {
            phase: shutdown.phase(),
            drain: shutdown.plan.progress(now),
            queued,
            retrying: self.pool.len() - queued,
        })
    }

    /// Clamps time that goes backwards, and time at the end of time: [`Timestamp::MAX`] is
    /// "never", so an input stamped with it runs 1 ns before. Every deadline (which
    /// saturates at `MAX`) then stays in the future, and none is ever due at the same
    /// instant as the request it belongs to.
    #[inline]
    fn observe(&mut self, now: Timestamp) -> Timestamp {
        let now = now.min(Timestamp::LATEST);
        if now < self.now {
            self.input_stats.clock_regressions += 1;
            self.now
        } else {
            self.now = now;
            now
        }
    }

    fn ctx(&mut self) -> (&mut Vec<ShardBuffer>, Ctx<'_>) {
        (
            &mut self.shards,
            Ctx {
                pool: &mut self.pool,
                out: &mut self.actions,
                active: &mut self.active,
                limits: &self.limits,
                shut_down: self.shut_down,
                foreign_victims: 0,
            },
        )
    }

    /// Indexes `shard`'s next deadline, recomputed from its fields: called after every
    /// input that touched it, so whatever deadline a shard has is indexed.
    fn touched(&mut self, shard: ShardId) {
        let at = self.shards[shard.index()]
            .next_deadline(shard, &self.pool, &self.limits)
            .map(|d| d.at);
        self.timers.set(shard, at);
    }

    /// Indexes every shard's next deadline again: after an input that touched them all.
    fn touched_all(&mut self) {
        self.timers.clear();
        for i in 0..self.active.list.len() {
            self.touched(self.active.list[i]);
        }
    }

    fn unknown_shard(&mut self) -> InputError {
        self.input_stats.unknown_shards += 1;
        InputError::UnknownShard
    }

    /// During a shutdown, tells its plan the work left (requests queued, slots held), which
    /// ends the phases whose work is done; announces once that the buffer has closed.
    fn settle(&mut self) {
        let Some(shutdown) = self.shutdown.as_mut() else {
            return;
        };
        if !self.shut_down || self.closed {
            return;
        }
        shutdown.report(self.now, self.pool.queued(), self.pool.len());
        if shutdown.plan.is_past_point_of_no_return() {
            self.closed = true;
            self.actions.push_back(Action::Closed);
        }
    }

    /// A request is about to go to `shard`'s primary.
    ///
    /// `cause` is `None` on a first attempt, or the [`FailoverCause`] the previous attempt
    /// failed with. On an idle shard a first attempt is answered [`Admission::Proceed`]
    /// without touching anything but the shard's state: no allocation, no counter.
    ///
    /// * Idle + failover cause: starts buffering ([`Action::FailoverStarted`]) unless the
    ///   shard's last episode ended, or its primary changed, less than
    ///   `min_time_between_failovers` ago (then `Proceed`, counted as skipped).
    /// * Buffering: every request waits, evicting the shard's oldest if the buffer is full.
    /// * Draining: requests proceed; but a failover cause within `max_failover_duration` of
    ///   the episode's start calls the drain off and waits, if it can be queued (DESIGN §5,
    ///   drain back-off; refused as full, it fails with `BufferFull` and changes nothing).
    ///   After the shard was resharded away, a failover cause fails with `ShardMissing`. A
    ///   released request whose retry failed uses [`retry_failed`](Self::retry_failed)
    ///   instead, which keeps its place.
    #[inline]
    pub fn request(
        &mut self,
        now: Timestamp,
        shard: ShardId,
        cause: Option<FailoverCause>,
    ) -> Result<Admission, InputError> {
        let now = self.observe(now);
        let Some(state) = self.shards.get(shard.index()).map(|s| s.state) else {
            return Err(self.unknown_shard());
        };
        if cause.is_none() && state != ShardState::Buffering {
            return Ok(Admission::Proceed);
        }
        Ok(self.request_slow(now, shard, cause, 0))
    }

    /// Everything but a first attempt on a shard that is not buffering: kept out of line so
    /// that [`request`](Self::request)'s fast path inlines into the caller.
    #[inline(never)]
    fn request_slow(
        &mut self,
        now: Timestamp,
        shard: ShardId,
        cause: Option<FailoverCause>,
        bytes: u64,
    ) -> Admission {
        let (shards, mut ctx) = self.ctx();
        let admission = shards[shard.index()].request(shard, now, cause, bytes, &mut ctx);
        let victims = ctx.foreign_victims;
        self.touched(shard);
        self.evict_foreign(now, victims);
        admission
    }

    /// [`request`](Self::request) for a request of `bytes` bytes, counted against
    /// [`Config::max_bytes`] while it is held (and in [`ShardStats::bytes_held`]). A request
    /// that would take the buffer over its budget evicts queued requests by the
    /// [`Config::eviction`] policy until it fits; if that cannot make it fit, or it is larger
    /// than the whole budget, it fails with `BufferFull` and nothing is evicted. A first
    /// attempt on a shard that is not buffering costs what it costs in `request`: one load.
    ///
    /// ```
    /// use failover_buffer::{Admission, Buffer, BufferError, Config, FailoverCause, Timestamp};
    ///
    /// let config = Config { enabled: true, max_bytes: Some(10 << 20), ..Config::default() };
    /// let mut buffer = Buffer::new(config)?;
    /// let shard = buffer.register_shard("ks", "0");
    /// let (t, failover) = (Timestamp::from_secs(1), Some(FailoverCause::Reparent));
    /// assert!(matches!(buffer.request_sized(t, shard, failover, 6 << 20)?, Admission::Wait(_)));
    /// // 6 MB + 6 MB is over the 10 MB budget: the first makes way for the second.
    /// assert!(matches!(buffer.request_sized(t, shard, failover, 6 << 20)?, Admission::Wait(_)));
    /// assert_eq!(buffer.shard_stats(shard).unwrap().bytes_held, 6 << 20);
    /// // Larger than the whole budget: refused, nothing evicted.
    /// assert_eq!(
    ///     buffer.request_sized(t, shard, failover, 11 << 20)?,
    ///     Admission::Fail(BufferError::BufferFull)
    /// );
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn request_sized(
        &mut self,
        now: Timestamp,
        shard: ShardId,
        cause: Option<FailoverCause>,
        bytes: u64,
    ) -> Result<Admission, InputError> {
        let now = self.observe(now);
        let Some(state) = self.shards.get(shard.index()).map(|s| s.state) else {
            return Err(self.unknown_shard());
        };
        if cause.is_none() && state != ShardState::Buffering {
            return Ok(Admission::Proceed);
        }
        Ok(self.request_slow(now, shard, cause, bytes))
    }

    /// Bytes held across all shards: queued requests, plus released requests whose retries
    /// have not finished (see [`request_sized`](Self::request_sized)).
    pub fn held_bytes(&self) -> u64 {
        self.pool.bytes()
    }

    /// Evicts the other shards' requests a newcomer made way for (`OldestAnywhere`): the
    /// `victims` oldest queued requests of the buffer, re-indexing each victim's shard's
    /// next deadline.
    #[inline]
    fn evict_foreign(&mut self, now: Timestamp, victims: usize) {
        // Nearly always none (only `OldestAnywhere` on a full buffer makes any).
        if victims != 0 {
            self.evict_foreign_slow(now, victims);
        }
    }

    #[inline(never)]
    fn evict_foreign_slow(&mut self, now: Timestamp, victims: usize) {
        for _ in 0..victims {
            let Some(slot) = self.pool.all().head() else {
                return;
            };
            let shard = self.pool.entry(slot).shard;
            let (shards, mut ctx) = self.ctx();
            shards[shard.index()].evict_queued(slot, now, &mut ctx);
            self.touched(shard);
        }
    }

    /// The retry of a request woken with [`Verdict::Retry`](crate::Verdict::Retry) failed
    /// again with a failover error: the retry is over, and the request asks to be held again.
    ///
    /// What happens depends on who released it (DESIGN §5, drain back-off):
    ///
    /// * **Released by its shard's drain**, within `max_failover_duration` of the episode's
    ///   start, in a drain that began because the failover seemed over (a new primary, or
    ///   traffic switched): this proves the new primary is not writable yet. The drain is
    ///   called off *first* ([`Action::DrainPaused`], the shard buffers again in the same
    ///   episode), nothing more is released into that primary, and the request goes back to
    ///   the head of its shard's queue (it is the oldest there), keeping its slot and its
    ///   window deadline, under a new ticket in the same [`slot`](Ticket::slot). If the drain
    ///   was already paused, it only goes back to the queue.
    /// * **Released by its window** (it was sent while the failover was still on), or the
    ///   conditions above do not hold: its failure proves nothing new. This is exactly
    ///   [`retry_done`](Self::retry_done) followed by [`request`](Self::request) with the
    ///   cause: a fresh failover error, under Vitess's rules and the min-time rules.
    ///
    /// A ticket still queued is refused with [`TicketError::NotReleased`] and stays queued.
    pub fn retry_failed(
        &mut self,
        now: Timestamp,
        ticket: Ticket,
        cause: FailoverCause,
    ) -> Result<Admission, InputError> {
        let now = self.observe(now);
        let (shard, status) = self.live(ticket, true)?;
        let (shards, mut ctx) = self.ctx();
        let sb = &mut shards[shard.index()];
        if status.in_episode_drain() && sb.may_requeue(shard, now, &ctx) {
            let admission = sb.requeue(shard, now, ticket.slot, &mut ctx);
            self.touched(shard);
            return Ok(admission);
        }
        // Held again, it weighs what it weighed.
        let bytes = ctx.pool.bytes_of(ticket.slot);
        sb.finish(shard, now, ticket.slot, status, &mut ctx);
        let admission = sb.request(shard, now, Some(cause), bytes, &mut ctx);
        let victims = ctx.foreign_victims;
        self.touched(shard);
        self.evict_foreign(now, victims);
        self.settle();
        Ok(admission)
    }

    /// What the health stream saw of `shard`'s primary.
    ///
    /// Tracks the primary (a change of primary starts the `min_time_between_failovers` clock)
    /// and ends a buffering episode when the stamp proves the failover over: serving, with a
    /// term above the one noted when the episode started, or serving after a not-serving
    /// stamp seen during the episode. A stale "still serving" from the demoted primary never
    /// ends it. On an idle shard, a not-serving stamp starts an episode when
    /// [`Config::proactive_start`] is on, under the same min-time rules as a failover error
    /// arriving right after the stamp (so the first stamp of a *new* primary, which is a
    /// change of primary, does not). A term below the highest seen is refused with
    /// [`InputError::StaleHealthStamp`].
    pub fn health(
        &mut self,
        now: Timestamp,
        shard: ShardId,
        stamp: HealthStamp,
    ) -> Result<(), InputError> {
        let now = self.observe(now);
        if shard.index() >= self.shards.len() {
            return Err(self.unknown_shard());
        }
        let (shards, mut ctx) = self.ctx();
        let result = shards[shard.index()].health(shard, now, stamp, &mut ctx);
        self.touched(shard);
        if let Err(highest) = result {
            self.input_stats.stale_health_stamps += 1;
            return Err(InputError::StaleHealthStamp {
                term: stamp.term,
                highest,
            });
        }
        Ok(())
    }

    /// A topology change for `shard` (Vitess keyspace events): see [`TopologyEvent`].
    pub fn topology(
        &mut self,
        now: Timestamp,
        shard: ShardId,
        event: TopologyEvent,
    ) -> Result<(), InputError> {
        let now = self.observe(now);
        if shard.index() >= self.shards.len() {
            return Err(self.unknown_shard());
        }
        let (shards, mut ctx) = self.ctx();
        shards[shard.index()].topology(shard, now, event, &mut ctx);
        self.touched(shard);
        self.settle();
        Ok(())
    }

    /// An operator pause, for planned maintenance: the shards of `scope` hold every request,
    /// first attempts included, until [`resume`](Self::resume) or until `max` has passed,
    /// whichever is first. PgBouncer's `PAUSE`, with a bound: a forgotten pause ends by
    /// itself. Returns how many shards the call paused (or paused again).
    ///
    /// A paused shard holds as a failover episode does, in the same queue, slots,
    /// per-request windows, eviction policy, caps and byte budget, and with the same
    /// counters (`buffered`, `evicted`, `drained`, `skipped`); its
    /// [`shard_state`](Self::shard_state) is [`ShardState::Buffering`], and
    /// [`pause_expiry`](Self::pause_expiry) says until when. [`Action::PauseStarted`] is
    /// emitted for each shard, with its bound. The idle path stays one load: a first attempt
    /// on a shard that is neither buffering nor paused costs what it did. A pause is kept
    /// with the shard's queue and counters, out of line: pausing a shard that never failed
    /// over allocates that block once, as its first episode would.
    /// A request the pause held is sampled in [`wait_histograms`](Self::wait_histograms)
    /// like any other; released by the pause's end, as
    /// [`WaitOutcome::Retried`](crate::WaitOutcome::Retried).
    ///
    /// * **Bound.** `max` must be above zero and at most [`Config::max_pause`]. At `now +
    ///   max` a [`tick`](Self::tick) ends the pause by itself ([`Action::PauseEnded`] with
    ///   [`PauseEnd::Expired`], counted in [`ShardStats::pauses_ended`]); the deadline is in
    ///   [`poll_timeout`](Self::poll_timeout) ([`TimerKind::PauseExpiry`](crate::TimerKind::PauseExpiry)).
    ///   Pausing a paused shard again gives it the new bound, from now (it is the same
    ///   pause: [`ShardStats::pauses_started`] counts it once).
    /// * **With a failover.** A pause and a failover episode coexist, and the shard releases
    ///   only when both have ended. An episode that starts during the pause (a failover
    ///   error, a not-serving stamp, under the usual min-time rules) is tracked as usual and
    ///   may end during the pause (counted, [`Metric::BufferingStopped`](crate::Metric::BufferingStopped)),
    ///   but its drain waits for the pause to end. A pause that ends while an episode still
    ///   buffers leaves the shard buffering until the episode ends. A pause during a drain
    ///   stops releasing (the retries already released finish as usual) and holds new
    ///   requests; the drain goes on when the pause ends. With no episode behind it, what the
    ///   pause held drains when it ends ([`Action::StartDrain`], at most `drain_concurrency`
    ///   retrying at once, released as
    ///   [`ReleaseReason::PauseEnded`](crate::ReleaseReason::PauseEnded)); during that
    ///   drain, new requests proceed, failover errors included.
    /// * **Windows.** Each request is still held for at most its `window`: a pause longer
    ///   than the window releases requests to retry as they reach it
    ///   ([`EvictReason::WindowExceeded`](crate::EvictReason::WindowExceeded)). Set
    ///   `window` to what a client may wait.
    /// * **Scope.** [`PauseScope::All`] pauses every enabled shard registered now (disabled
    ///   and dry-run shards are skipped); a shard registered later is not paused.
    /// * **Shutdown.** [`shutdown`](Self::shutdown) ends every pause
    ///   ([`PauseEnd::Shutdown`]) and refuses new ones; a cancelled shutdown does not bring
    ///   them back.
    /// * **Reconfigure.** A lower [`Config::max_pause`] bounds the pauses in progress from
    ///   their start; one already past it ends in the [`reconfigure`](Self::reconfigure)
    ///   call ([`PauseEnd::Expired`]).
    ///
    /// Refused, changing nothing: an unknown shard ([`PauseError::UnknownShard`]), a `max`
    /// of zero or above the bound, a shard that is not [`Mode::Enabled`], and any pause once
    /// a shutdown has begun. Costs O(1) per shard paused (plus the requests its window
    /// releases at once: entries a drain had not released yet are held again).
    ///
    /// ```
    /// use core::time::Duration;
    /// use failover_buffer::{Action, Admission, Buffer, Config, PauseEnd, PauseScope, ShardState, Timestamp, Verdict};
    ///
    /// let mut buffer = Buffer::new(Config { enabled: true, ..Config::default() })?;
    /// let shard = buffer.register_shard("commerce", "0");
    /// let t = Timestamp::from_secs;
    ///
    /// // Planned maintenance: hold everything for at most 30 s.
    /// buffer.pause(t(1), PauseScope::Shard(shard), Duration::from_secs(30))?;
    /// assert_eq!(buffer.shard_state(shard), Some(ShardState::Buffering));
    /// // Even a first attempt is held now.
    /// let Admission::Wait(ticket) = buffer.request(t(2), shard, None)? else { unreachable!() };
    ///
    /// // Done early: resume, and the held request is released to retry.
    /// assert_eq!(buffer.resume(t(5), PauseScope::Shard(shard))?, 1);
    /// let actions: Vec<_> = std::iter::from_fn(|| buffer.poll_action()).collect();
    /// assert!(actions.contains(&Action::Wake { ticket, verdict: Verdict::Retry }));
    /// buffer.retry_done(t(5), ticket)?;
    /// assert_eq!(buffer.shard_state(shard), Some(ShardState::Idle));
    ///
    /// // A forgotten pause ends by itself at its bound.
    /// buffer.pause(t(10), PauseScope::All, Duration::from_secs(30))?;
    /// assert_eq!(buffer.poll_timeout(), Some(t(40)));
    /// buffer.tick(t(40));
    /// assert_eq!(buffer.shard_state(shard), Some(ShardState::Idle));
    /// assert_eq!(buffer.shard_stats(shard).unwrap().pauses_ended[PauseEnd::Expired], 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn pause(
        &mut self,
        now: Timestamp,
        scope: PauseScope,
        max: core::time::Duration,
    ) -> Result<usize, PauseError> {
        let now = self.observe(now);
        if let PauseScope::Shard(id) = scope {
            let Some(sb) = self.shards.get(id.index()) else {
                self.input_stats.unknown_shards += 1;
                return Err(PauseError::UnknownShard);
            };
            if sb.mode != Mode::Enabled {
                return Err(PauseError::NotEnabled(sb.mode));
            }
        }
        if max.is_zero() {
            return Err(PauseError::MaxZero);
        }
        if max > self.config.max_pause {
            return Err(PauseError::MaxAboveBound {
                max,
                bound: self.config.max_pause,
            });
        }
        if self.shut_down || self.closed {
            return Err(PauseError::ShuttingDown);
        }
        let until = now.plus_nanos(duration_nanos(max));
        let (first, end) = match scope {
            PauseScope::Shard(id) => (id.index(), id.index() + 1),
            PauseScope::All => (0, self.shards.len()),
        };
        let mut paused = 0;
        for i in first..end {
            if self.shards[i].mode != Mode::Enabled {
                continue;
            }
            let id = ShardId::from_index(i as u32);
            let (shards, mut ctx) = self.ctx();
            shards[i].pause_by_operator(id, now, until, &mut ctx);
            self.touched(id);
            paused += 1;
        }
        Ok(paused)
    }

    /// Ends the operator pauses of `scope` ([`pause`](Self::pause)): each shard goes back to
    /// what it was doing under the pause ([`Action::PauseEnded`] with
    /// [`PauseEnd::Resumed`]). With no failover episode still buffering it, it drains what
    /// the pause held ([`Action::StartDrain`], paced by `drain_concurrency`); while one
    /// buffers, it goes on buffering until the episode ends.
    ///
    /// Returns how many pauses it ended. Resuming a shard that is not paused (never paused,
    /// resumed already, its pause expired, or ended by a shutdown) is not an error: it
    /// returns `Ok(0)` and changes nothing, so an operator's resume that races the pause's
    /// expiry is harmless. Refused only for a shard this buffer never issued
    /// ([`PauseError::UnknownShard`]). O(1) per shard resumed, plus the requests released;
    /// [`PauseScope::All`] visits only the shards that hold (buffering or paused).
    pub fn resume(&mut self, now: Timestamp, scope: PauseScope) -> Result<usize, PauseError> {
        let now = self.observe(now);
        let mut resumed = 0;
        match scope {
            PauseScope::Shard(id) => {
                if id.index() >= self.shards.len() {
                    self.input_stats.unknown_shards += 1;
                    return Err(PauseError::UnknownShard);
                }
                let (shards, mut ctx) = self.ctx();
                resumed +=
                    usize::from(shards[id.index()].end_pause(id, now, PauseEnd::Resumed, &mut ctx));
                self.touched(id);
            }
            PauseScope::All => resumed = self.end_pauses(now, PauseEnd::Resumed),
        }
        self.settle();
        Ok(resumed)
    }

    /// When `shard`'s operator pause ends by itself, if it is paused ([`pause`](Self::pause)).
    pub fn pause_expiry(&self, shard: ShardId) -> Option<Timestamp> {
        self.shards.get(shard.index())?.pause_expiry()
    }

    /// Ends every operator pause (each paused shard is buffering, so on the active list);
    /// returns how many.
    fn end_pauses(&mut self, now: Timestamp, reason: PauseEnd) -> usize {
        let mut ended = 0;
        let mut i = 0;
        while i < self.active.list.len() {
            let id = self.active.list[i];
            let (shards, mut ctx) = self.ctx();
            ended += usize::from(shards[id.index()].end_pause(id, now, reason, &mut ctx));
            self.touched(id);
            // A shard that stopped holding left the list, and the last one took its place.
            if self.active.list.get(i) == Some(&id) {
                i += 1;
            }
        }
        ended
    }

    /// Time passed: fires due window expiries, max-failover-duration stops, drain
    /// back-offs and the ends of operator pauses. Visits only the shards with a timer due, earliest first (ties by shard
    /// id), and only the expired entries of each: O(1) when nothing is due, however many
    /// shards buffer.
    pub fn tick(&mut self, now: Timestamp) {
        let now = self.observe(now);
        self.last_tick = Some(now);
        if let Some(shutdown) = self.shutdown.as_mut() {
            // Ends the wait for retries once the shutdown grace has passed.
            shutdown.plan.tick(now);
        }
        // Each shard due is visited once: its timers fire, so its next deadline is later.
        // The bound keeps that true of any deadline a shard might index without firing.
        let mut due = self.timers.len();
        while due > 0 {
            let Some(id) = self.timers.pop_due(now) else {
                break;
            };
            due -= 1;
            let (shards, mut ctx) = self.ctx();
            shards[id.index()].tick(id, now, &mut ctx);
            self.touched(id);
        }
        self.settle();
    }

    /// The client of `ticket` gave up (its future was dropped, its deadline passed).
    ///
    /// While queued, the request leaves the queue and frees its slot (counted `ContextDone`,
    /// or drained if its drain had begun). After a [`Verdict::Retry`](crate::Verdict::Retry)
    /// wake, it counts as the retry being done. No wake follows for this ticket.
    pub fn cancel(&mut self, now: Timestamp, ticket: Ticket) -> Result<(), InputError> {
        self.end_ticket(now, ticket, false)
    }

    /// The retry of a request woken with [`Verdict::Retry`](crate::Verdict::Retry) has
    /// finished (whatever its outcome): its slot is freed, and a draining shard releases its
    /// next request.
    ///
    /// If the retry failed again with a failover error, call
    /// [`retry_failed`](Self::retry_failed) instead: that is how a drain learns to back off.
    pub fn retry_done(&mut self, now: Timestamp, ticket: Ticket) -> Result<(), InputError> {
        self.end_ticket(now, ticket, true)
    }

    fn end_ticket(
        &mut self,
        now: Timestamp,
        ticket: Ticket,
        retry_done: bool,
    ) -> Result<(), InputError> {
        let now = self.observe(now);
        self.end_retry(now, ticket, retry_done)?;
        self.settle();
        Ok(())
    }

    /// Ends a live ticket and returns its shard. `retry_done` refuses a queued ticket.
    fn end_retry(
        &mut self,
        now: Timestamp,
        ticket: Ticket,
        retry_done: bool,
    ) -> Result<ShardId, InputError> {
        let (shard, status) = self.live(ticket, retry_done)?;
        let (shards, mut ctx) = self.ctx();
        shards[shard.index()].finish(shard, now, ticket.slot, status, &mut ctx);
        self.touched(shard);
        Ok(shard)
    }

    /// The shard and status of a live ticket, or the counted refusal. `released` refuses a
    /// ticket that is still queued.
    fn live(&mut self, ticket: Ticket, released: bool) -> Result<(ShardId, Held), InputError> {
        let (shard, status) = match self.pool.get(ticket) {
            Ok(entry) => (entry.shard, entry.status),
            Err(e) => {
                match e {
                    TicketError::NotIssued(_) => self.input_stats.tickets_not_issued += 1,
                    _ => self.input_stats.stale_tickets += 1,
                }
                return Err(e.into());
            }
        };
        if released && status == Held::Queued {
            self.input_stats.tickets_not_released += 1;
            return Err(TicketError::NotReleased(ticket).into());
        }
        Ok((shard, status))
    }

    /// Changes the limits at run time: `size`, `window`, `max_failover_duration`,
    /// `min_time_between_failovers`, `drain_concurrency`, `drain_backoff`,
    /// `proactive_start`, `eviction`, `max_per_shard`, `max_bytes` and `max_pause` (operators
    /// raise the size during an incident).
    ///
    /// `config` is checked as [`new`](Self::new) checks it, and refused with the same
    /// [`ConfigError`]; `enabled`, `dry_run` and `filter` fix each shard's mode when it is
    /// registered and must not change ([`ConfigError::ModeSettingsChanged`]). A refused
    /// config changes nothing. Otherwise, at `now`:
    ///
    /// * **size**: a larger size takes more requests at once. A smaller one evicts queued
    ///   requests, oldest first across all shards (`Fail(Evicted)`, counted as evicted
    ///   `BufferFull`, as a newcomer evicts its shard's oldest), until no more slots are
    ///   held than the new size. Requests already released keep their slots until their
    ///   retries finish; while they hold more than the new size, nothing is queued and
    ///   failover requests are refused with `BufferFull`.
    /// * **window**: requests queued from now on get the new window. Requests already held
    ///   keep their deadline, or get `now + window` if that is earlier: a shorter window
    ///   applies to them from now on, a longer one does not extend them.
    /// * **max_failover_duration**: applies to the episodes in progress, from their start
    ///   (see [`EpisodeView::max_duration_deadline`]); one already past it stops at the next
    ///   [`tick`](Self::tick).
    /// * **max_per_shard**: a shard holding more than a lower cap evicts its oldest queued
    ///   requests (`Fail(Evicted)`, counted as evicted `BufferFull`) until it holds no more
    ///   than the cap, before a smaller size evicts anything; requests already released keep
    ///   their slots, and the shard queues nothing more until it is below the cap.
    /// * **eviction**: applies to the next request that finds no free slot.
    /// * **max_bytes**: a lower budget evicts queued requests, oldest first across all
    ///   shards, as a smaller size does (the two share the loop), until the bytes held fit;
    ///   retries already released keep their bytes until they finish.
    /// * **drain_concurrency**: a higher limit releases more requests from every draining
    ///   shard at once; with a lower one, the retries already running finish and no new one
    ///   is released until fewer run than the limit.
    /// * **min_time_between_failovers**, **drain_backoff**, **proactive_start**: apply to
    ///   the next decision that reads them (a paused drain keeps its resume instant).
    /// * **max_pause**: bounds the next [`pause`](Self::pause)'s `max`; a lower one also
    ///   bounds the pauses in progress, from their start, and ends those already past it
    ///   now ([`Action::PauseEnded`], `Expired`). A higher one extends no pause.
    ///
    /// ```
    /// use failover_buffer::{Buffer, Config};
    ///
    /// let config = Config { enabled: true, ..Config::default() };
    /// let mut buffer = Buffer::new(config.clone())?;
    /// let now = buffer.now();
    /// buffer.reconfigure(now, Config { size: 5_000, ..config.clone() })?;
    /// assert_eq!(buffer.free_slots(), 5_000);
    /// assert!(buffer.reconfigure(now, Config { size: 0, ..config }).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn reconfigure(&mut self, now: Timestamp, config: Config) -> Result<(), ConfigError> {
        config.validate()?;
        if (config.enabled, config.dry_run, &config.filter)
            != (
                self.config.enabled,
                self.config.dry_run,
                &self.config.filter,
            )
        {
            return Err(ConfigError::ModeSettingsChanged);
        }
        let now = self.observe(now);
        let old = self.limits;
        self.limits = Limits::of(&config);
        self.config = config;
        if self.limits.window < old.window {
            self.pool.cap_deadlines(now.plus_nanos(self.limits.window));
        }
        if self.limits.max_pause < old.max_pause {
            for i in 0..self.shards.len() {
                let (shards, mut ctx) = self.ctx();
                shards[i].bound_pause(ShardId::from_index(i as u32), now, &mut ctx);
            }
        }
        // A lower cap: a shard above it evicts its own oldest queued requests until it is
        // not (those released keep their slots until their retries finish).
        for i in 0..self.shards.len() {
            let id = ShardId::from_index(i as u32);
            let (shards, mut ctx) = self.ctx();
            let sb = &mut shards[i];
            while ctx.pool.held_by(id) > ctx.limits.sharing.max_per_shard {
                // A shard that holds anything has its detail (nothing is allocated here).
                let Some(d) = sb.detail_mut() else { break };
                let Some(victim) = ctx.pool.pop_front(&mut d.queue) else {
                    break;
                };
                sb.evict(victim.slot, now, &mut ctx);
            }
        }
        // Shrunk: evict the oldest queued request across all shards while too many are held
        // (slots or bytes).
        while self.pool.len() > self.limits.size
            || self.pool.bytes() > self.limits.sharing.max_bytes
        {
            let oldest = self
                .shards
                .iter()
                .enumerate()
                .filter_map(|(i, s)| Some((self.pool.entry(s.d().queue.head()?).deadline, i)))
                .min();
            let Some((_, i)) = oldest else { break };
            let (shards, mut ctx) = self.ctx();
            let sb = &mut shards[i];
            let victim = sb
                .detail_mut()
                .and_then(|d| ctx.pool.pop_front(&mut d.queue));
            if let Some(victim) = victim {
                sb.evict(victim.slot, now, &mut ctx);
            }
        }
        for i in 0..self.shards.len() {
            let (shards, mut ctx) = self.ctx();
            let sb = &mut shards[i];
            if let Some(d) = sb.detail_mut() {
                d.drain_excess = d.drain_excess.max(
                    d.drain_in_flight
                        .saturating_sub(ctx.limits.drain_concurrency),
                );
            }
            if sb.state == ShardState::Draining {
                sb.release(now, &mut ctx, ShardId::from_index(i as u32));
            }
        }
        self.touched_all();
        // Cannot close anything today (after a shutdown, a queued request always has a
        // retry ahead of it), but keeps the rule in one place: whatever ends a ticket settles.
        self.settle();
        Ok(())
    }

    /// Begins the buffer's shutdown, a [`DrainPlan`] of four phases
    /// ([`ShutdownPhase`](crate::ShutdownPhase)) that
    /// [`cancel_shutdown`](Self::cancel_shutdown) can call off until the last:
    ///
    /// 1. **Stop starting episodes** (reversible): from now on every request proceeds
    ///    unbuffered, and health and topology inputs start and end nothing (a health stamp
    ///    below the highest term is still refused as stale).
    ///    Every operator [`pause`](Self::pause) ends here ([`PauseEnd::Shutdown`]), what it
    ///    held draining with the rest; a cancel does not bring pauses back.
    /// 2. **Release queued requests** (reversible for those not yet released): every
    ///    buffering shard stops (`Shutdown`) and drains its queue with
    ///    [`Verdict::Retry`](crate::Verdict::Retry), paced by `drain_concurrency` as any
    ///    drain; shards already draining go on draining. Ends when no request is queued.
    /// 3. **Wait for released retries** (reversible): ends when every slot is free, or when
    ///    [`Config::shutdown_grace`] has passed (a [`tick`](Self::tick) at
    ///    [`poll_timeout`](Self::poll_timeout) ends it).
    /// 4. **Closed** (irreversible): [`Action::Closed`] is emitted, once. Every later request
    ///    proceeds unbuffered and health is ignored, for good. Retries still running end by
    ///    `retry_done` or `cancel` as usual.
    ///
    /// With the default grace (no limit) and no cancel, this is the shutdown of earlier
    /// releases and of Vitess: the buffer closes when the last ticket ends. Each phase is
    /// reported as the [`DrainAction`]s of [`poll_shutdown_action`](Self::poll_shutdown_action)
    /// (enter, point of no return, finished, and on a cancel the reverts), and
    /// [`shutdown_progress`](Self::shutdown_progress) shows where it is. Calling it while a
    /// shutdown runs, or once closed, does nothing; after a cancel it begins again from the
    /// first phase (with the grace configured now).
    ///
    /// ```
    /// use failover_buffer::{Action, Admission, Buffer, Config, FailoverCause, ShutdownPhase, Timestamp, Verdict};
    ///
    /// let mut buffer = Buffer::new(Config { enabled: true, ..Config::default() })?;
    /// let shard = buffer.register_shard("commerce", "0");
    /// let t = Timestamp::from_secs;
    /// let hold = |buffer: &mut Buffer| match buffer.request(t(1), shard, Some(FailoverCause::Reparent)) {
    ///     Ok(Admission::Wait(ticket)) => ticket,
    ///     other => panic!("{other:?}"),
    /// };
    /// let (first, second) = (hold(&mut buffer), hold(&mut buffer));
    /// while buffer.poll_action().is_some() {}
    ///
    /// // Shut down: the first request is released to retry (drain_concurrency is 1).
    /// buffer.shutdown(t(2));
    /// let woken: Vec<_> = std::iter::from_fn(|| buffer.poll_action()).collect();
    /// assert!(woken.contains(&Action::Wake { ticket: first, verdict: Verdict::Retry }));
    /// assert_eq!(buffer.shutdown_progress(t(2)).unwrap().phase, Some(ShutdownPhase::ReleaseQueued));
    ///
    /// // Load returns: call it off. The second request is still queued, its shard buffers
    /// // again, and new requests are held again.
    /// buffer.cancel_shutdown(t(3))?;
    /// assert!(!buffer.is_shut_down());
    /// assert_eq!(buffer.queued(shard), Some(1));
    /// assert!(matches!(buffer.request(t(3), shard, None)?, Admission::Wait(_)));
    /// # let _ = second;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn shutdown(&mut self, now: Timestamp) {
        let now = self.observe(now);
        if self.shut_down {
            return;
        }
        let grace = self.config.shutdown_grace;
        let shutdown = self.shutdown.get_or_insert_with(|| Shutdown::new(grace));
        shutdown.prepare(grace);
        // Not running (`shut_down` is false) and not finished (that sets `shut_down` for
        // good), so the plan begins.
        let _ = shutdown.plan.begin(now);
        // Shutdown ends the operator pauses: what they held drains with the rest.
        self.end_pauses(now, PauseEnd::Shutdown);
        let Some(shutdown) = self.shutdown.as_mut() else {
            return;
        };
        shutdown.stopped.extend(
            self.active
                .list
                .iter()
                .map(|&id| (id, self.shards[id.index()].stopped_by_shutdown())),
        );
        self.shut_down = true;
        while let Some(&id) = self.active.list.first() {
            let (shards, mut ctx) = self.ctx();
            shards[id.index()].stop(id, now, StopReason::Shutdown, &mut ctx);
        }
        self.touched_all();
        self.settle();
    }

    /// Calls off a shutdown before it has closed the buffer, restoring normal service with
    /// nothing lost:
    ///
    /// * Requests the shutdown has not released stay queued, in order, each with its own
    ///   window deadline; their shards (every shard the shutdown stopped while it buffered)
    ///   buffer again in the same episode ([`Action::DrainPaused`] each), with the episode's
    ///   original max-duration deadline and stop reason, and a paused drain its resume
    ///   instant. A deadline that passed during the shutdown fires in this call, as a tick
    ///   would fire it.
    /// * Requests already released keep retrying and end as usual.
    /// * New episodes can start again; health and topology inputs count again. (Stamps that
    ///   arrived during the shutdown were ignored: the next one decides.)
    /// * The plan reverts the phases entered, last first, and reports it through
    ///   [`poll_shutdown_action`](Self::poll_shutdown_action) ([`DrainAction::Revert`]
    ///   each, then [`DrainAction::Cancelled`]).
    ///
    /// The stops the shutdown counted stay counted (their metrics were emitted); the
    /// episode's own end, later, is counted too.
    ///
    /// Refused, changing nothing: [`DrainError::NotRunning`] when no shutdown is under way
    /// (never begun, or cancelled already), [`DrainError::Finished`] once the buffer is
    /// closed. Costs O(1) plus O(1) per shard it puts back and per request a due deadline
    /// releases; it allocates nothing.
    pub fn cancel_shutdown(&mut self, now: Timestamp) -> Result<(), DrainError> {
        let now = self.observe(now);
        let Some(shutdown) = self.shutdown.as_mut() else {
            return Err(DrainError::NotRunning);
        };
        shutdown.plan.cancel(now)?;
        self.shut_down = false;
        let mut stopped = core::mem::take(&mut shutdown.stopped);
        for &(id, saved) in &stopped {
            let (shards, mut ctx) = self.ctx();
            shards[id.index()].unstop(id, now, saved, &mut ctx);
            self.touched(id);
        }
        stopped.clear();
        if let Some(shutdown) = self.shutdown.as_mut() {
            // Keeps the capacity for the next shutdown.
            shutdown.stopped = stopped;
        }
        Ok(())
    }

    /// The next step of the shutdown to report, oldest first: each phase entered
    /// ([`DrainAction::Enter`], naming a [`ShutdownPhase`](crate::ShutdownPhase) by its
    /// [`id`](crate::ShutdownPhase::id)), the point of no return, `Finished` (closed), and
    /// on a cancel the reverts and `Cancelled`. For logs and a shutdown handle's progress;
    /// the buffer's decisions are all in [`poll_action`](Self::poll_action). Unpolled steps
    /// wait here (a handful per shutdown).
    #[inline]
    pub fn poll_shutdown_action(&mut self) -> Option<DrainAction> {
        self.shutdown.as_mut()?.plan.poll_action()
    }

    /// The next action to carry out, oldest first.
    #[inline]
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When [`tick`](Self::tick) is next due, if any timer is armed: the earliest
    /// [`next_deadline`](Self::next_deadline), or the end of a shutdown's grace. O(1),
    /// however many shards buffer.
    #[inline]
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        let grace = self
            .shutdown
            .as_ref()
            .and_then(|s| s.plan.poll_timeout())
            .filter(|&at| at != Timestamp::MAX);
        match (self.timers.first().map(|e| e.at), grace) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The next shard timer: when it is due, for which shard and why. O(1): the shards'
    /// deadlines are kept in an index, earliest first (ties by shard id). (The end of a
    /// shutdown's grace is no shard's: [`poll_timeout`](Self::poll_timeout) includes it.)
    pub fn next_deadline(&self) -> Option<Deadline> {
        let first = self.timers.first()?;
        self.shards[first.shard.index()].next_deadline(first.shard, &self.pool, &self.limits)
    }

    pub(crate) fn parts(&self) -> Parts<'_> {
        Parts {
            limits: &self.limits,
            shards: &self.shards,
            pool: &self.pool,
            active: &self.active,
            timers: &self.timers,
            last_tick: self.last_tick,
        }
    }
}

/// Read-only internals, for the invariant checker.
pub(crate) struct Parts<'a> {
    pub(crate) limits: &'a Limits,
    pub(crate) shards: &'a [ShardBuffer],
    pub(crate) pool: &'a Pool,
    pub(crate) active: &'a Active,
    pub(crate) timers: &'a Timers,
    pub(crate) last_tick: Option<Timestamp>,
}

/// Corruption hooks for the invariant checker's own tests.
#[cfg(test)]
impl Buffer {
    pub(crate) fn corrupt(&mut self) -> (&mut [ShardBuffer], &mut Pool, &mut Limits) {
        (&mut self.shards, &mut self.pool, &mut self.limits)
    }

    pub(crate) fn set_last_tick(&mut self, t: Timestamp) {
        self.last_tick = Some(t);
    }
}
