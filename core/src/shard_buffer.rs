//! The per-shard failover machine: `Idle` → `Buffering` → `Draining` → `Idle`.
//!
//! A `ShardBuffer` owns one shard's state, queue links, episode and counters. The entries it
//! queues live in the buffer-wide [`Pool`], whose size is the global capacity, so every
//! method takes a [`Ctx`] holding what the shards share.

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::fmt;
use core::time::Duration;

use crate::action::{Action, Admission, Deadline, Metric, TimerKind, Verdict};
use crate::config::{Config, Mode};
use crate::error::BufferError;
use crate::event::{FailoverCause, HealthStamp, PrimaryId, TopologyEvent};
use crate::pause::{Hold, Pause};
use crate::policy::{Eviction, Room, Sharing};
use crate::queue::{Held, Pool, Queue, ReleaseReason};
use crate::shard::{EpisodeView, ShardId, ShardState};
use crate::stats::{EvictReason, PauseEnd, ShardStats, SkipReason, StopReason, WaitOutcome};
use crate::time::{Timestamp, duration_nanos};
use crate::waits::WaitHistograms;

// `Buffer::inspect` (feature `inspect`) reads this module's private fields from a child.
#[cfg(feature = "inspect")]
#[path = "inspect/shard_fields.rs"]
mod inspect_fields;

/// The config, in the units the hot path wants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Limits {
    pub(crate) size: usize,
    pub(crate) window: u64,
    pub(crate) max_failover_duration: u64,
    pub(crate) min_time_between_failovers: u64,
    pub(crate) drain_concurrency: usize,
    pub(crate) drain_backoff: u64,
    pub(crate) proactive_start: bool,
    pub(crate) sharing: Sharing,
    pub(crate) max_pause: u64,
}

impl Limits {
    pub(crate) fn of(config: &Config) -> Limits {
        Limits {
            size: config.size,
            window: duration_nanos(config.window),
            max_failover_duration: duration_nanos(config.max_failover_duration),
            min_time_between_failovers: duration_nanos(config.min_time_between_failovers),
            drain_concurrency: config.drain_concurrency,
            drain_backoff: duration_nanos(config.drain_backoff),
            proactive_start: config.proactive_start,
            sharing: Sharing {
                eviction: config.eviction,
                max_per_shard: config.max_per_shard.unwrap_or(usize::MAX),
                max_bytes: config.max_bytes.unwrap_or(Config::LARGEST_MAX_BYTES),
            },
            max_pause: duration_nanos(config.max_pause),
        }
    }
}

/// The shards that are `Buffering`, i.e. that may have timers: what `shutdown` stops and the
/// deadline index is rebuilt from (`tick` and `poll_timeout` read the index, in
/// [`timers`](crate::timers), and visit no shard that is not due).
#[derive(Debug, Default)]
pub(crate) struct Active {
    pub(crate) list: Vec<ShardId>,
    /// Per shard index: its position in `list`, or `u32::MAX`.
    pos: Vec<u32>,
}

clone_field_by_field!(Active { list, pos });

impl Active {
    pub(crate) fn register(&mut self) {
        self.pos.push(u32::MAX);
    }

    pub(crate) fn reserve(&mut self, additional: usize) {
        self.pos.reserve_exact(additional);
    }

    pub(crate) fn contains(&self, shard: ShardId) -> bool {
        self.pos.get(shard.index()).is_some_and(|&p| p != u32::MAX)
    }

    fn insert(&mut self, shard: ShardId) {
        if !self.contains(shard) {
            // At most one entry per registered shard, and shard ids fit in a u32.
            self.pos[shard.index()] = self.list.len() as u32;
            self.list.push(shard);
        }
    }

    fn remove(&mut self, shard: ShardId) {
        let p = core::mem::replace(&mut self.pos[shard.index()], u32::MAX);
        if p == u32::MAX {
            return;
        }
        self.list.swap_remove(p as usize);
        if let Some(&moved) = self.list.get(p as usize) {
            self.pos[moved.index()] = p;
        }
    }
}

/// What the shards share, borrowed for one input.
pub(crate) struct Ctx<'a> {
    pub(crate) pool: &'a mut Pool,
    pub(crate) out: &'a mut VecDeque<Action>,
    pub(crate) active: &'a mut Active,
    pub(crate) limits: &'a Limits,
    pub(crate) shut_down: bool,
    /// How many entries at the head of the buffer-wide FIFO, all of other shards, a newcomer
    /// made way for ([`Eviction::OldestAnywhere`](crate::Eviction::OldestAnywhere)): the
    /// buffer evicts them from their shards when the input returns, since one shard cannot
    /// reach another's queue.
    pub(crate) foreign_victims: usize,
}

/// The episode in progress, or the last one.
#[derive(Clone, Copy, Debug)]
struct Episode {
    start: Timestamp,
    /// The highest term seen when the episode started: a serving stamp above it ends it.
    start_term: Option<u64>,
    /// A not-serving stamp was seen during the episode: any serving stamp now ends it.
    saw_not_serving: bool,
    /// Set at the first stop; a paused and resumed drain does not stop (or count) twice.
    stopped: Option<StopReason>,
    /// Why the drain last (re)started; what drained requests are released for.
    last_stop: Option<StopReason>,
    /// What released requests are told: retry, or the shard is gone.
    release: Verdict,
    /// When the drain last started.
    drain_start: Timestamp,
    /// While a paused drain waits: when it resumes by itself.
    resume_at: Option<Timestamp>,
    /// When the episode first held a request, and when a held request last left the queue:
    /// the episode as its clients saw it.
    first_hold: Option<Timestamp>,
    last_release: Timestamp,
}

impl Episode {
    const fn new(start: Timestamp, start_term: Option<u64>) -> Self {
        Episode {
            start,
            start_term,
            saw_not_serving: false,
            stopped: None,
            last_stop: None,
            release: Verdict::Retry,
            drain_start: start,
            resume_at: None,
            first_hold: None,
            last_release: start,
        }
    }
}

/// A buffering shard's episode as it was before a shutdown stopped it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Unstop {
    stopped: Option<StopReason>,
    last_stop: Option<StopReason>,
    resume_at: Option<Timestamp>,
    drain_start: Timestamp,
    last_end: Option<Timestamp>,
}

/// What a shard keeps once it first needs it (its first episode or operator pause, or a
/// counter bumped): its queue, its episode, its pause, its counters and its `Retried` and
/// failover histograms (1.2 KB; a rarer outcome's histogram is allocated further out at its
/// first sample, see [`WaitHistograms`]). Out of line, so that a registered shard that never
/// failed over costs a few words (issue 16: ≤ 256 B per idle shard), not this.
#[derive(Debug)]
pub(crate) struct Detail {
    pub(crate) queue: Queue,
    /// Requests a drain released whose retry has not finished.
    pub(crate) drain_in_flight: usize,
    /// Drain retries above `drain_concurrency` left running when a reconfiguration lowered
    /// it; shrinks as they finish (no new retry is released until below the limit).
    pub(crate) drain_excess: usize,
    episode: Episode,
    last_end: Option<Timestamp>,
    pub(crate) stats: ShardStats,
    pub(crate) waits: WaitHistograms,
    /// The operator pause, if any (see [`Buffer::pause`](crate::Buffer::pause)): a pause
    /// sets the inline `state` to `Buffering`, which is all the idle path reads.
    hold: Hold,
}

// `clone_from` reuses the histograms already allocated here (see `WaitHistograms::clone_from`).
clone_field_by_field!(Detail {
    queue,
    drain_in_flight,
    drain_excess,
    episode,
    last_end,
    stats,
    waits,
    hold
});

impl Detail {
    /// A held request, queued at `held_at`, left the queue now with its verdict: notes
    /// when, and counts its wait under `outcome`.
    #[inline]
    fn note_verdict(&mut self, now: Timestamp, held_at: Timestamp, outcome: WaitOutcome) {
        self.episode.last_release = now;
        self.waits.record_wait(outcome, now.nanos_since(held_at));
    }

    /// Ends a ticket of this shard, freeing its slot and its bytes.
    #[inline]
    fn free(&mut self, slot: u32, pool: &mut Pool) {
        let bytes = pool.remove(slot);
        if bytes != 0 {
            self.stats.bytes_held = self.stats.bytes_held.saturating_sub(bytes);
        }
    }

    /// Forgets drain retries above the limit that have finished.
    #[inline]
    fn shrink_excess(&mut self, limits: &Limits) {
        self.drain_excess = self.drain_excess.min(
            self.drain_in_flight
                .saturating_sub(limits.drain_concurrency),
        );
    }

    /// A shard that never failed over.
    const EMPTY: Detail = Detail {
        queue: Queue::EMPTY,
        drain_in_flight: 0,
        drain_excess: 0,
        episode: Episode::new(Timestamp::ZERO, None),
        last_end: None,
        stats: ShardStats::ZERO,
        waits: WaitHistograms::EMPTY,
        hold: Hold::NONE,
    };
}

/// What every shard without its [`Detail`] reads.
static NEVER_FAILED_OVER: Detail = Detail::EMPTY;

/// One shard's failover machine.
pub(crate) struct ShardBuffer {
    pub(crate) mode: Mode,
    pub(crate) state: ShardState,
    last_reparent: Option<Timestamp>,
    primary: Option<PrimaryId>,
    highest_term: Option<u64>,
    /// Allocated when first needed (see [`Detail`]); never on the idle path or in a drain.
    detail: Option<Box<Detail>>,
}

// `clone_from` keeps this shard's detail allocation when both have one (`Option` and `Box` clone
// into what they hold).
clone_field_by_field!(ShardBuffer {
    mode,
    state,
    last_reparent,
    primary,
    highest_term,
    detail
});

impl fmt::Debug for ShardBuffer {
    /// The machine's state, flat, whether or not its detail is allocated (the explorer's
    /// canonical form reads it), the operator pause included. The wait histograms are left
    /// out: no rule reads them, they are counted from the verdicts (see `check_invariants`),
    /// and [`Buffer::wait_histograms`](crate::Buffer::wait_histograms) shows them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.d();
        f.debug_struct("ShardBuffer")
            .field("mode", &self.mode)
            .field("state", &self.state)
            .field("queue", &d.queue)
            .field("drain_in_flight", &d.drain_in_flight)
            .field("drain_excess", &d.drain_excess)
            .field("episode", &d.episode)
            .field("last_end", &d.last_end)
            .field("hold", &d.hold)
            .field("last_reparent", &self.last_reparent)
            .field("primary", &self.primary)
            .field("highest_term", &self.highest_term)
            .field("stats", &d.stats)
            .finish()
    }
}

impl ShardBuffer {
    pub(crate) fn new(mode: Mode) -> Self {
        ShardBuffer {
            mode,
            state: ShardState::Idle,
            last_reparent: None,
            primary: None,
            highest_term: None,
            detail: None,
        }
    }

    /// The failover machine's own state: `state`, unless a pause holds the shard (then
    /// `state` is `Buffering` and this is what lies under the pause). A shard that is not
    /// `Buffering` is not paused, so that reads no detail.
    pub(crate) fn phase(&self) -> ShardState {
        if self.state != ShardState::Buffering {
            return self.state;
        }
        match self.d().hold.pause {
            Some(p) => p.under,
            None => self.state,
        }
    }

    /// Moves the failover machine to `phase`: under a pause, the shard goes on holding.
    fn set_phase(&mut self, phase: ShardState) {
        match self.detail_mut().and_then(|d| d.hold.pause.as_mut()) {
            Some(p) => p.under = phase,
            None => self.state = phase,
        }
    }

    /// The operator pause in progress, if any.
    pub(crate) fn pause_state(&self) -> Option<Pause> {
        self.d().hold.pause
    }

    /// Whether the drain under way releases what a pause held with no episode behind it.
    pub(crate) fn is_pause_drain(&self) -> bool {
        self.d().hold.pause_drain
    }

    /// When this shard's operator pause ends by itself, if it is paused.
    pub(crate) fn pause_expiry(&self) -> Option<Timestamp> {
        self.d().hold.pause.map(|p| p.until)
    }

    /// An operator pause until `until` (already bounded by the caller): the shard holds
    /// every request from now on. Returns whether it was not paused before (a paused shard
    /// only gets the new bound). Entries a drain had not released yet are held again, and
    /// any past its window is released at once, as a buffering shard holds nobody past it.
    /// A pause is not the idle path: it allocates the shard's [`Detail`] if it had none.
    pub(crate) fn pause_by_operator(
        &mut self,
        id: ShardId,
        now: Timestamp,
        until: Timestamp,
        ctx: &mut Ctx<'_>,
    ) -> bool {
        let under = self.state;
        let d = self.dm();
        let started = match &mut d.hold.pause {
            Some(p) => {
                p.since = now;
                p.until = until;
                false
            }
            None => {
                d.hold.pause = Some(Pause {
                    since: now,
                    until,
                    under,
                });
                d.stats.pauses_started += 1;
                true
            }
        };
        if started {
            self.state = ShardState::Buffering;
            ctx.active.insert(id);
        }
        ctx.out.push_back(Action::PauseStarted { shard: id, until });
        self.expire_window(now, ctx);
        started
    }

    /// Ends the operator pause, if any: the shard goes back to what lies under it. Still
    /// buffering for an episode, it goes on buffering; otherwise it drains what it holds
    /// (an episode's drain, or the pause's own) with the usual concurrency.
    pub(crate) fn end_pause(
        &mut self,
        id: ShardId,
        now: Timestamp,
        reason: PauseEnd,
        ctx: &mut Ctx<'_>,
    ) -> bool {
        let Some(pause) = self.detail_mut().and_then(|d| d.hold.pause.take()) else {
            return false;
        };
        let d = self.dm();
        d.stats.pauses_ended.bump(reason);
        ctx.out.push_back(Action::PauseEnded {
            shard: id,
            reason,
            queued: d.queue.len(),
        });
        match pause.under {
            ShardState::Buffering => {}
            under => {
                if under == ShardState::Idle {
                    // What the pause held with no failover behind it: released to retry,
                    // whatever the last episode's drain was told.
                    d.hold.pause_drain = true;
                    d.episode.release = Verdict::Retry;
                }
                d.episode.drain_start = now;
                let queued = d.queue.len();
                self.state = ShardState::Draining;
                ctx.active.remove(id);
                ctx.out.push_back(Action::StartDrain { shard: id, queued });
                self.release(now, ctx, id);
            }
        }
        true
    }

    /// A lower `max_pause`: the pause in progress ends `max_pause` after it began, at the
    /// latest; one already past that ends now.
    pub(crate) fn bound_pause(&mut self, id: ShardId, now: Timestamp, ctx: &mut Ctx<'_>) {
        let max_pause = ctx.limits.max_pause;
        let Some(p) = self.detail_mut().and_then(|d| d.hold.pause.as_mut()) else {
            return;
        };
        p.until = p.until.min(p.since.plus_nanos(max_pause));
        if p.until <= now {
            self.end_pause(id, now, PauseEnd::Expired, ctx);
        }
    }

    /// The queue, episode and counters; all empty if the shard never needed them.
    pub(crate) fn d(&self) -> &Detail {
        self.detail.as_deref().unwrap_or(&NEVER_FAILED_OVER)
    }

    /// The same, to change: allocated now if the shard never needed it.
    pub(crate) fn dm(&mut self) -> &mut Detail {
        self.detail.get_or_insert_with(|| Box::new(Detail::EMPTY))
    }

    /// The same, to change, if the shard has it (allocates nothing).
    pub(crate) fn detail_mut(&mut self) -> Option<&mut Detail> {
        self.detail.as_deref_mut()
    }

    /// The highest health-stamp term seen.
    pub(crate) fn highest_term(&self) -> Option<u64> {
        self.highest_term
    }

    /// The current or last episode, if the shard ever had one.
    pub(crate) fn episode_view(&self, limits: &Limits) -> Option<EpisodeView> {
        (self.d().stats.starts > 0).then(|| EpisodeView {
            started_at: self.d().episode.start,
            start_term: self.d().episode.start_term,
            max_duration_deadline: self.max_duration_deadline(limits),
            paused_until: self.d().episode.resume_at,
            stop_reason: self.d().episode.last_stop,
        })
    }

    /// The slow path of [`Buffer::request`](crate::Buffer::request): anything but a first
    /// attempt on a shard that is not buffering.
    pub(crate) fn request(
        &mut self,
        id: ShardId,
        now: Timestamp,
        cause: Option<FailoverCause>,
        bytes: u64,
        ctx: &mut Ctx<'_>,
    ) -> Admission {
        if ctx.shut_down {
            if cause.is_some() {
                self.dm().stats.skipped.bump(SkipReason::Shutdown);
            }
            return Admission::Proceed;
        }
        if self.mode == Mode::Disabled {
            if cause.is_some() {
                self.dm().stats.skipped.bump(SkipReason::Disabled);
            }
            return Admission::Proceed;
        }
        let mut paused = false;
        match (self.state, cause) {
            (ShardState::Buffering, Some(cause))
                if self.d().hold.pause.is_some() && self.phase() == ShardState::Idle =>
            {
                // Paused with no episode: the failover is real and is tracked as one (under
                // the min-time rules), so the shard goes on buffering after a resume until
                // it ends. Held either way: the pause holds everything.
                if self.too_recent(now, ctx.limits).is_none() {
                    self.start(id, now, cause, ctx);
                }
            }
            (ShardState::Buffering, _) => {}
            (_, None) => return Admission::Proceed,
            (ShardState::Idle, Some(cause)) => {
                if let Some(reason) = self.too_recent(now, ctx.limits) {
                    self.dm().stats.skipped.bump(reason);
                    return Admission::Proceed;
                }
                self.start(id, now, cause, ctx);
            }
            (ShardState::Draining, Some(_)) => {
                // Vitess lets this through: the failover has ended, so a failover error is
                // taken for a race with the end. Early in an episode it is more likely that
                // the new primary is not writable yet, so the drain is called off instead
                // (DESIGN §5, drain back-off). Past max duration Vitess's rule applies.
                // The drain of what a pause held has no episode to call off: Vitess's rule.
                if self.mode != Mode::Enabled || self.d().hold.pause_drain {
                    return Admission::Proceed;
                }
                // Resharded away: the request can only be re-planned by the router, now.
                if let Verdict::Fail(error) = self.d().episode.release {
                    return Admission::Fail(error);
                }
                if !self.may_pause(now, ctx.limits) {
                    return Admission::Proceed;
                }
                // Only a request that is actually queued may call the drain off: one the
                // buffer refuses changes nothing (issue 10, fix 1).
                if !self.can_enqueue_after_expiry(id, now, bytes, ctx) {
                    self.dm().stats.skipped.bump(SkipReason::BufferFull);
                    return Admission::Fail(BufferError::BufferFull);
                }
                self.pause(id, now, ctx);
                // Entries that waited through the drain may be past their window already; a
                // buffering shard holds nobody past it.
                self.expire_window(now, ctx);
                paused = true;
            }
        }
        if self.mode == Mode::DryRun {
            self.dm().stats.last_requests_dry_run_max += 1;
            self.dm().stats.buffered_dry_run += 1;
            return Admission::Proceed;
        }
        let admission = self.enqueue(id, now, bytes, ctx);
        if paused {
            ctx.out.push_back(Action::DrainPaused {
                shard: id,
                queued: self.d().queue.len(),
            });
        }
        admission
    }

    /// Whether a retry that this shard's drain released, failing again now, goes back to the
    /// queue ([`requeue`](Self::requeue)) rather than being a fresh failover error.
    /// Not while a reconfiguration left more held than the size, the byte budget or the
    /// shard's cap allow: nothing is queued then.
    pub(crate) fn may_requeue(&self, id: ShardId, now: Timestamp, ctx: &Ctx<'_>) -> bool {
        !ctx.shut_down
            && self.mode == Mode::Enabled
            && self.d().episode.release == Verdict::Retry
            && self.may_pause(now, ctx.limits)
            && ctx.pool.len() <= ctx.limits.size
            && ctx.pool.bytes() <= ctx.limits.sharing.max_bytes
            && ctx.pool.held_by(id) <= ctx.limits.sharing.max_per_shard
    }

    /// A drain-released retry failed again with a failover error: proof that the new primary
    /// is not writable yet. The drain is called off first (if it still runs), nothing more is
    /// released, and the request goes back to the head of the queue, keeping its slot and its
    /// deadline, under a new ticket.
    pub(crate) fn requeue(
        &mut self,
        id: ShardId,
        now: Timestamp,
        slot: u32,
        ctx: &mut Ctx<'_>,
    ) -> Admission {
        let was_draining = self.phase() == ShardState::Draining;
        let d = self.dm();
        d.drain_in_flight -= 1;
        d.shrink_excess(ctx.limits);
        if was_draining {
            self.pause(id, now, ctx);
        }
        let d = self.dm();
        let ticket = ctx.pool.requeue(&mut d.queue, slot, now);
        d.stats.buffered += 1;
        d.stats.last_requests_in_flight_max = d
            .stats
            .last_requests_in_flight_max
            .max(d.queue.len() as u64);
        self.expire_window(now, ctx);
        if was_draining {
            ctx.out.push_back(Action::DrainPaused {
                shard: id,
                queued: self.d().queue.len(),
            });
        }
        Admission::Wait(ticket)
    }

    /// Which min-time rule forbids starting an episode now, if any. "Last failover too
    /// recent" is checked first, and both comparisons are strict, as in Vitess.
    fn too_recent(&self, now: Timestamp, limits: &Limits) -> Option<SkipReason> {
        let recent = |at: Option<Timestamp>| {
            at.is_some_and(|t| now.nanos_since(t) < limits.min_time_between_failovers)
        };
        if recent(self.d().last_end) {
            Some(SkipReason::LastFailoverTooRecent)
        } else if recent(self.last_reparent) {
            Some(SkipReason::LastReparentTooRecent)
        } else {
            None
        }
    }

    /// Whether the drain (running, or paused) may be called off now: it began because the
    /// failover seemed over (not resharded away, not timed out, not shut down), and the
    /// episode is younger than max failover duration, which bounds every hold as before.
    fn may_pause(&self, now: Timestamp, limits: &Limits) -> bool {
        let seemed_over = matches!(
            self.d().episode.stopped,
            Some(StopReason::NewPrimarySeen | StopReason::MoveTablesSwitchedTraffic)
        );
        seemed_over && !self.past_max_duration(now, limits)
    }

    /// Whether a request would be queued after the window expiry a pause runs: a slot is
    /// free, or this shard will still have a queued request to evict.
    fn can_enqueue_after_expiry(
        &self,
        id: ShardId,
        now: Timestamp,
        bytes: u64,
        ctx: &Ctx<'_>,
    ) -> bool {
        let limits = ctx.limits;
        let due: u64 = ctx
            .pool
            .walk(&self.d().queue, self.d().queue.len())
            .take_while(|&slot| ctx.pool.entry(slot).deadline <= now)
            .map(|slot| ctx.pool.bytes_of(slot))
            .sum();
        limits
            .sharing
            .room_after_expiry(limits.size, ctx.pool, id, &self.d().queue, now)
            && limits
                .sharing
                .bytes_fit(ctx.pool, &self.d().queue, bytes, due)
    }

    fn past_max_duration(&self, now: Timestamp, limits: &Limits) -> bool {
        now >= self.max_duration_deadline(limits)
    }

    fn max_duration_deadline(&self, limits: &Limits) -> Timestamp {
        self.d()
            .episode
            .start
            .plus_nanos(limits.max_failover_duration)
    }

    /// Idle → Buffering.
    fn start(&mut self, id: ShardId, now: Timestamp, cause: FailoverCause, ctx: &mut Ctx<'_>) {
        self.set_phase(ShardState::Buffering);
        self.dm().hold.pause_drain = false;
        self.dm().episode = Episode::new(now, self.highest_term);
        self.dm().stats.starts += 1;
        self.dm().stats.last_requests_in_flight_max = 0;
        self.dm().stats.last_requests_dry_run_max = 0;
        ctx.active.insert(id);
        ctx.out
            .push_back(Action::FailoverStarted { shard: id, cause });
    }

    /// Draining (or paused) → Buffering, in the same episode: the entries not yet released
    /// stay queued in order, and those released keep their slots until their retries finish.
    /// A drain paused again moves its resume instant.
    fn pause(&mut self, id: ShardId, now: Timestamp, ctx: &mut Ctx<'_>) {
        self.set_phase(ShardState::Buffering);
        self.dm().episode.resume_at = Some(now.plus_nanos(ctx.limits.drain_backoff));
        self.dm().stats.drains_paused += 1;
        ctx.active.insert(id);
    }

    /// A held request (in `slot`, not yet freed) left the queue now with its verdict:
    /// notes when, and counts its wait under `outcome`.
    fn note_verdict(&mut self, slot: u32, now: Timestamp, outcome: WaitOutcome, pool: &Pool) {
        let held_at = pool.entry(slot).held_at;
        self.dm().note_verdict(now, held_at, outcome);
    }

    /// Queues a request in a buffering, enabled shard, making room if the buffer is full.
    fn enqueue(&mut self, id: ShardId, now: Timestamp, bytes: u64, ctx: &mut Ctx<'_>) -> Admission {
        // Full, or at this shard's cap: the policy picks whose slot passes to the newcomer
        // (see `Eviction`). Above the size, which only a reconfiguration that shrank it
        // leaves behind, nothing is queued anywhere, so that refuses. Nothing is evicted
        // unless the newcomer will then fit the byte budget too.
        let limits = ctx.limits;
        let sharing = limits.sharing;
        let room = sharing.room(limits.size, ctx.pool, id, &self.d().queue);
        if room == Room::Refuse || !sharing.bytes_fit(ctx.pool, &self.d().queue, bytes, 0) {
            self.dm().stats.skipped.bump(SkipReason::BufferFull);
            return Admission::Fail(BufferError::BufferFull);
        }
        // Bytes of other shards' entries already given up (evicted when the input returns).
        let mut foreign_bytes = 0;
        match room {
            Room::Evict(slot) if ctx.pool.entry(slot).shard == id => {
                ctx.pool.unlink(&mut self.dm().queue, slot);
                self.evict(slot, now, ctx);
            }
            Room::Evict(slot) => {
                ctx.foreign_victims = 1;
                foreign_bytes = ctx.pool.bytes_of(slot);
            }
            _ => {}
        }
        // Over the byte budget: more victims, oldest first, by the same policy.
        let mut cursor = match ctx.foreign_victims {
            0 => ctx.pool.all().head(),
            _ => ctx.pool.all().head().and_then(|h| ctx.pool.next_of_all(h)),
        };
        while ctx.pool.bytes() - foreign_bytes + bytes > sharing.max_bytes {
            let victim = match sharing.eviction {
                Eviction::OldestAnywhere => cursor,
                _ => self.d().queue.head(),
            };
            let Some(slot) = victim else { break };
            cursor = ctx.pool.next_of_all(slot);
            if ctx.pool.entry(slot).shard == id {
                ctx.pool.unlink(&mut self.dm().queue, slot);
                self.evict(slot, now, ctx);
            } else {
                ctx.foreign_victims += 1;
                foreign_bytes += ctx.pool.bytes_of(slot);
            }
        }
        let deadline = now.plus_nanos(ctx.limits.window);
        let d = self.dm();
        let ticket = ctx.pool.push_back(&mut d.queue, id, now, deadline, bytes);
        if bytes != 0 {
            d.stats.bytes_held = ctx.pool.bytes_by(id);
            d.stats.peak_bytes = d.stats.peak_bytes.max(d.stats.bytes_held);
        }
        d.episode.first_hold.get_or_insert(now);
        d.stats.buffered += 1;
        d.stats.last_requests_in_flight_max = d
            .stats
            .last_requests_in_flight_max
            .max(d.queue.len() as u64);
        Admission::Wait(ticket)
    }

    /// Evicts a queued entry of this shard, for a newcomer of another shard.
    pub(crate) fn evict_queued(&mut self, slot: u32, now: Timestamp, ctx: &mut Ctx<'_>) {
        ctx.pool.unlink(&mut self.dm().queue, slot);
        self.evict(slot, now, ctx);
    }

    /// Ends an entry already unlinked from the queue with `Fail(Evicted)`.
    pub(crate) fn evict(&mut self, slot: u32, now: Timestamp, ctx: &mut Ctx<'_>) {
        let ticket = ctx.pool.ticket_at(slot);
        self.note_verdict(slot, now, WaitOutcome::Evicted, ctx.pool);
        self.free(slot, ctx);
        self.dm().stats.evicted.bump(EvictReason::BufferFull);
        ctx.out.push_back(Action::Wake {
            ticket,
            verdict: Verdict::Fail(BufferError::Evicted),
        });
    }

    /// A health stamp: tracks the primary, starts an episode on a not-serving stamp
    /// (proactive start), and ends the episode when it proves the failover over. Returns the
    /// highest term before the stamp if the stamp was stale.
    pub(crate) fn health(
        &mut self,
        id: ShardId,
        now: Timestamp,
        stamp: HealthStamp,
        ctx: &mut Ctx<'_>,
    ) -> Result<(), u64> {
        if let Some(highest) = self.highest_term {
            if stamp.term < highest {
                return Err(highest);
            }
        }
        if ctx.shut_down {
            return Ok(());
        }
        // A change of primary, when one was known, is a reparent (the first one seen is not).
        if self.primary.is_some_and(|p| p != stamp.primary) {
            self.last_reparent = Some(now);
        }
        self.primary = Some(stamp.primary);
        self.highest_term = Some(stamp.term);
        if self.phase() == ShardState::Idle && !stamp.serving {
            // Vitess's proactive start (issues 9071, 9112): a primary known to be going away
            // holds even first attempts, under the same min-time rules as a failover error
            // arriving right after this stamp (nothing is counted as skipped: no request was
            // refused).
            if ctx.limits.proactive_start
                && self.mode != Mode::Disabled
                && self.too_recent(now, ctx.limits).is_none()
            {
                self.start(id, now, FailoverCause::Reparent, ctx);
                self.dm().episode.saw_not_serving = true;
            }
            return Ok(());
        }
        if self.phase() != ShardState::Buffering {
            return Ok(());
        }
        if !stamp.serving {
            self.dm().episode.saw_not_serving = true;
            return Ok(());
        }
        // The demoted primary's last "still serving" carries the old term and proves
        // nothing (Vitess 16438, 17013). A newer term does; so does the same primary serving
        // again after we saw it stop (a failed switchover); so does any serving stamp once a
        // drain was paused, since the end was already proven once.
        let newer = self.d().episode.start_term.is_none_or(|t| stamp.term > t);
        if newer || self.d().episode.saw_not_serving || self.d().episode.resume_at.is_some() {
            self.stop(id, now, StopReason::NewPrimarySeen, ctx);
        }
        Ok(())
    }

    /// A topology event: stops buffering, or turns the rest of a drain into shard-missing
    /// failures.
    pub(crate) fn topology(
        &mut self,
        id: ShardId,
        now: Timestamp,
        event: TopologyEvent,
        ctx: &mut Ctx<'_>,
    ) {
        if ctx.shut_down {
            return;
        }
        match (self.phase(), event) {
            (ShardState::Buffering, TopologyEvent::ShardMissing) => {
                self.stop(id, now, StopReason::ReshardingComplete, ctx);
            }
            (ShardState::Buffering, TopologyEvent::TrafficSwitched) => {
                self.stop(id, now, StopReason::MoveTablesSwitchedTraffic, ctx);
            }
            (ShardState::Draining, TopologyEvent::ShardMissing) => {
                // Those not yet released would only retry against a shard that is gone.
                self.dm().episode.release = Verdict::Fail(BufferError::ShardMissing);
                self.release(now, ctx, id);
            }
            _ => {}
        }
    }

    /// Buffering → Draining. The first stop of an episode is counted; resuming a paused
    /// drain is not a second stop.
    pub(crate) fn stop(
        &mut self,
        id: ShardId,
        now: Timestamp,
        reason: StopReason,
        ctx: &mut Ctx<'_>,
    ) {
        if self.phase() != ShardState::Buffering {
            return;
        }
        if self.d().episode.stopped.is_none() {
            self.dm().episode.stopped = Some(reason);
            let duration = now.saturating_duration_since(self.d().episode.start);
            let mode = self.mode;
            let d = self.dm();
            d.waits.record_failover(duration);
            let stats = &mut d.stats;
            stats.stops.bump(reason);
            stats.last_failover_duration = duration;
            stats.failover_duration_sum = stats.failover_duration_sum.saturating_add(duration);
            let in_flight_max = match mode {
                Mode::DryRun => stats.last_requests_dry_run_max,
                _ => stats.last_requests_in_flight_max,
            };
            // Whole percent, truncated, as Vitess computes it.
            let utilization_percent = in_flight_max.saturating_mul(100) / ctx.limits.size as u64;
            match mode {
                Mode::DryRun => stats.utilization_dry_run_sum += utilization_percent,
                _ => stats.utilization_sum += utilization_percent,
            }
            ctx.out.push_back(Action::Metric(Metric::BufferingStopped {
                shard: id,
                reason,
                duration,
                in_flight_max,
                utilization_percent,
            }));
        }
        if reason == StopReason::ReshardingComplete {
            self.dm().episode.release = Verdict::Fail(BufferError::ShardMissing);
        }
        self.dm().episode.last_stop = Some(reason);
        self.dm().last_end = Some(now);
        self.dm().episode.resume_at = None;
        if let Some(pause) = self.detail_mut().and_then(|d| d.hold.pause.as_mut()) {
            // The episode is over, but the pause holds on: it drains when the pause ends.
            pause.under = ShardState::Draining;
            return;
        }
        self.dm().episode.drain_start = now;
        self.state = ShardState::Draining;
        ctx.active.remove(id);
        ctx.out.push_back(Action::StartDrain {
            shard: id,
            queued: self.d().queue.len(),
        });
        self.release(now, ctx, id);
    }

    /// Releases queued requests in FIFO order while fewer than `drain_concurrency` retries
    /// run, and goes idle once all have finished.
    ///
    /// Runs for every retry done in a drain, so the drain's state is reached once (not
    /// through a lookup of the shard's detail per field), and each released entry is
    /// unlinked, marked and read in one visit of its slot.
    pub(crate) fn release(&mut self, now: Timestamp, ctx: &mut Ctx<'_>, id: ShardId) {
        // A draining shard has its detail (its episode or pause made it); this allocates
        // nothing then.
        let d = self.detail.get_or_insert_with(|| Box::new(Detail::EMPTY));
        if d.hold.pause.is_some() {
            // Paused: nothing is released until the pause ends.
            return;
        }
        let verdict = d.episode.release;
        let (limit, status, outcome) = match verdict {
            Verdict::Retry => {
                let reason = match d.hold.pause_drain {
                    true => ReleaseReason::PauseEnded,
                    false => ReleaseReason::Drain(
                        d.episode.last_stop.unwrap_or(StopReason::NewPrimarySeen),
                    ),
                };
                (
                    ctx.limits.drain_concurrency,
                    Held::Retrying(reason),
                    WaitOutcome::of_release(reason),
                )
            }
            // A failure never reaches the primary, so it takes no share of the concurrency.
            Verdict::Fail(_) => (usize::MAX, Held::Queued, WaitOutcome::ShardMissing),
        };
        while d.drain_in_flight < limit {
            let Some((ticket, held_at)) = ctx.pool.release_front(&mut d.queue, status) else {
                break;
            };
            d.stats.drained += 1;
            d.note_verdict(now, held_at, outcome);
            match verdict {
                Verdict::Retry => d.drain_in_flight += 1,
                // A failure ends the ticket at once.
                Verdict::Fail(_) => d.free(ticket.slot, ctx.pool),
            }
            ctx.out.push_back(Action::Wake { ticket, verdict });
        }
        if d.queue.is_empty() && d.drain_in_flight == 0 {
            self.state = ShardState::Idle;
            // The episode as its clients saw it: first hold to last release, pauses included.
            // (A pause's own drain is no episode's.)
            if !core::mem::take(&mut d.hold.pause_drain) {
                d.stats.last_failover_held_duration = match d.episode.first_hold {
                    Some(first) => d.episode.last_release.saturating_duration_since(first),
                    None => Duration::ZERO,
                };
            }
            ctx.out.push_back(Action::Metric(Metric::DrainFinished {
                shard: id,
                duration: now.saturating_duration_since(d.episode.drain_start),
            }));
        }
    }

    /// Ends a ticket of this shard, freeing its slot and its bytes.
    fn free(&mut self, slot: u32, ctx: &mut Ctx<'_>) {
        self.dm().free(slot, ctx.pool);
    }

    /// What a shutdown's stop changes in a buffering shard's episode, kept so that a
    /// cancelled shutdown can put it back (see [`crate::shutdown`]).
    pub(crate) fn stopped_by_shutdown(&self) -> Unstop {
        Unstop {
            stopped: self.d().episode.stopped,
            last_stop: self.d().episode.last_stop,
            resume_at: self.d().episode.resume_at,
            drain_start: self.d().episode.drain_start,
            last_end: self.d().last_end,
        }
    }

    /// A cancelled shutdown: this shard, which the shutdown stopped while it buffered, buffers
    /// again in the same episode, as if never stopped: its queue (what the shutdown has not
    /// released) in order, each entry with its own window deadline, the episode with its
    /// start (so its max-duration deadline), its stop reason and a paused drain's resume
    /// instant. Announced as [`Action::DrainPaused`]. Timers already due fire now, as a tick
    /// would fire them.
    pub(crate) fn unstop(&mut self, id: ShardId, now: Timestamp, saved: Unstop, ctx: &mut Ctx<'_>) {
        self.dm().episode.stopped = saved.stopped;
        self.dm().episode.last_stop = saved.last_stop;
        self.dm().episode.resume_at = saved.resume_at;
        self.dm().episode.drain_start = saved.drain_start;
        self.dm().last_end = saved.last_end;
        self.state = ShardState::Buffering;
        ctx.active.insert(id);
        ctx.out.push_back(Action::DrainPaused {
            shard: id,
            queued: self.d().queue.len(),
        });
        self.tick(id, now, ctx);
    }

    /// A live ticket of this shard ends: its retry finished, or its client gave up.
    pub(crate) fn finish(
        &mut self,
        id: ShardId,
        now: Timestamp,
        slot: u32,
        status: Held,
        ctx: &mut Ctx<'_>,
    ) {
        match status {
            Held::Queued => {
                ctx.pool.unlink(&mut self.dm().queue, slot);
                self.note_verdict(slot, now, WaitOutcome::Cancelled, ctx.pool);
                self.free(slot, ctx);
                // Vitess counts a request cancelled while its drain is under way as drained:
                // the drain had taken it on. Before the drain it is evicted.
                if self.state == ShardState::Draining {
                    self.dm().stats.drained += 1;
                } else {
                    self.dm().stats.evicted.bump(EvictReason::ContextDone);
                }
            }
            Held::Retrying(ReleaseReason::Window) => self.free(slot, ctx),
            Held::Retrying(ReleaseReason::Drain(_) | ReleaseReason::PauseEnded) => {
                // The path of every retry done in a drain: the detail is reached once.
                let d = self.dm();
                d.free(slot, ctx.pool);
                d.drain_in_flight -= 1;
                d.shrink_excess(ctx.limits);
            }
        }
        if self.state == ShardState::Draining {
            self.release(now, ctx, id);
        }
    }

    /// Fires this shard's due timers. Max duration is checked before the window, so at a tie
    /// the whole queue drains in order rather than being released at once.
    pub(crate) fn tick(&mut self, id: ShardId, now: Timestamp, ctx: &mut Ctx<'_>) {
        if self.state != ShardState::Buffering {
            return;
        }
        if self.d().hold.pause.is_some_and(|p| now >= p.until) {
            self.end_pause(id, now, PauseEnd::Expired, ctx);
        }
        if self.phase() == ShardState::Buffering {
            if self.past_max_duration(now, ctx.limits) {
                self.stop(id, now, StopReason::MaxDurationExceeded, ctx);
            } else if self.d().episode.resume_at.is_some_and(|at| now >= at) {
                let reason = self
                    .d()
                    .episode
                    .stopped
                    .unwrap_or(StopReason::NewPrimarySeen);
                self.stop(id, now, reason, ctx);
            }
        }
        // Still holding (an episode's timers did not fire, or a pause holds on): nobody is
        // held past their window.
        if self.state == ShardState::Buffering {
            self.expire_window(now, ctx);
        }
    }

    /// Releases, to retry, every queued request that has been held for the whole window.
    /// Deadlines rise along the queue, so only the head need be looked at: O(expired).
    fn expire_window(&mut self, now: Timestamp, ctx: &mut Ctx<'_>) {
        while let Some(head) = self.d().queue.head() {
            if now < ctx.pool.entry(head).deadline {
                break;
            }
            ctx.pool.unlink(&mut self.dm().queue, head);
            ctx.pool
                .set_status(head, Held::Retrying(ReleaseReason::Window));
            self.note_verdict(head, now, WaitOutcome::Window, ctx.pool);
            self.dm().stats.evicted.bump(EvictReason::WindowExceeded);
            let ticket = ctx.pool.ticket_at(head);
            ctx.out.push_back(Action::Wake {
                ticket,
                verdict: Verdict::Retry,
            });
        }
    }

    /// This shard's next timer, if it is buffering. An instant of [`Timestamp::MAX`] is
    /// "never" (a deadline that saturated): no timer.
    pub(crate) fn next_deadline(
        &self,
        id: ShardId,
        pool: &Pool,
        limits: &Limits,
    ) -> Option<Deadline> {
        if self.state != ShardState::Buffering {
            return None;
        }
        let mut next = Deadline {
            at: Timestamp::MAX,
            shard: id,
            kind: TimerKind::MaxFailoverDuration,
        };
        if self.phase() == ShardState::Buffering {
            next.at = self.max_duration_deadline(limits);
            if let Some(at) = self.d().episode.resume_at {
                if at < next.at {
                    next = Deadline {
                        at,
                        shard: id,
                        kind: TimerKind::DrainBackoff,
                    };
                }
            }
        }
        if let Some(pause) = self.d().hold.pause {
            if pause.until < next.at {
                next = Deadline {
                    at: pause.until,
                    shard: id,
                    kind: TimerKind::PauseExpiry,
                };
            }
        }
        if let Some(head) = self.d().queue.head() {
            let at = pool.entry(head).deadline;
            if at < next.at {
                next = Deadline {
                    at,
                    shard: id,
                    kind: TimerKind::Window,
                };
            }
        }
        (next.at != Timestamp::MAX).then_some(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_idle_shard_is_one_cache_line_and_its_detail_is_out_of_line() {
        // State, mode, primary, term, last reparent, and one pointer to everything an
        // episode needs (issue 16: ≤ 256 B per idle shard, all tables included).
        assert_eq!(core::mem::size_of::<ShardBuffer>(), 64);
        // The detail: its queue, episode, pause, counters (272 B) and the `Retried` and
        // failover histograms (360 B each); the other outcomes' histograms further out.
        assert_eq!(core::mem::size_of::<Detail>(), 1_192);
    }
}
