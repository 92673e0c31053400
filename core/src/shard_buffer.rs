//! The per-shard failover machine: `Idle` → `Buffering` → `Draining` → `Idle`.
//!
//! A `ShardBuffer` owns one shard's state, queue links, episode and counters. The entries it
//! queues live in the buffer-wide [`Pool`], whose size is the global capacity, so every
//! method takes a [`Ctx`] holding what the shards share.

use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec::Vec;

use crate::action::{Action, Admission, Deadline, Metric, TimerKind, Verdict};
use crate::config::Mode;
use crate::error::BufferError;
use crate::event::{FailoverCause, HealthStamp, PrimaryId, TopologyEvent};
use crate::queue::{Pool, Queue, TicketStatus};
use crate::shard::{ShardId, ShardState};
use crate::stats::{EvictReason, ShardStats, SkipReason, StopReason};
use crate::time::Timestamp;

/// The config, in the units the hot path wants.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub(crate) size: usize,
    pub(crate) window: u64,
    pub(crate) max_failover_duration: u64,
    pub(crate) min_time_between_failovers: u64,
    pub(crate) drain_concurrency: usize,
    pub(crate) drain_backoff: u64,
}

/// The shards that are `Buffering`, i.e. that have timers; `tick` and `poll_timeout` visit
/// only these, so a thousand idle shards cost nothing.
#[derive(Debug, Default)]
pub(crate) struct Active {
    pub(crate) list: Vec<ShardId>,
    /// Per shard index: its position in `list`, or `u32::MAX`.
    pos: Vec<u32>,
}

impl Active {
    pub(crate) fn register(&mut self) {
        self.pos.push(u32::MAX);
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
    /// What released requests are told: retry, or the shard is gone.
    release: Verdict,
    /// When the drain last started.
    drain_start: Timestamp,
    /// While a paused drain waits: when it resumes by itself.
    resume_at: Option<Timestamp>,
}

impl Episode {
    fn new(start: Timestamp, start_term: Option<u64>) -> Self {
        Episode {
            start,
            start_term,
            saw_not_serving: false,
            stopped: None,
            release: Verdict::Retry,
            drain_start: start,
            resume_at: None,
        }
    }
}

/// One shard's failover machine.
#[derive(Debug)]
pub(crate) struct ShardBuffer {
    pub(crate) keyspace: String,
    pub(crate) shard: String,
    pub(crate) mode: Mode,
    pub(crate) state: ShardState,
    pub(crate) queue: Queue,
    /// Requests a drain released whose retry has not finished.
    pub(crate) drain_in_flight: usize,
    episode: Episode,
    last_end: Option<Timestamp>,
    last_reparent: Option<Timestamp>,
    primary: Option<PrimaryId>,
    highest_term: Option<u64>,
    pub(crate) stats: ShardStats,
}

impl ShardBuffer {
    pub(crate) fn new(keyspace: String, shard: String, mode: Mode) -> Self {
        ShardBuffer {
            keyspace,
            shard,
            mode,
            state: ShardState::Idle,
            queue: Queue::default(),
            drain_in_flight: 0,
            episode: Episode::new(Timestamp::ZERO, None),
            last_end: None,
            last_reparent: None,
            primary: None,
            highest_term: None,
            stats: ShardStats::default(),
        }
    }

    /// The highest health-stamp term seen.
    pub(crate) fn highest_term(&self) -> Option<u64> {
        self.highest_term
    }

    /// The slow path of [`Buffer::request`](crate::Buffer::request): anything but a first
    /// attempt on a shard that is not buffering.
    ///
    /// `after_retry` says the request is one this shard released whose retry just failed
    /// again ([`Buffer::retry_failed`](crate::Buffer::retry_failed)): only such a request may
    /// reopen an episode whose drain has already finished.
    pub(crate) fn request(
        &mut self,
        id: ShardId,
        now: Timestamp,
        cause: Option<FailoverCause>,
        after_retry: bool,
        ctx: &mut Ctx<'_>,
    ) -> Admission {
        if ctx.shut_down {
            if cause.is_some() {
                self.stats.skipped.bump(SkipReason::Shutdown);
            }
            return Admission::Proceed;
        }
        if self.mode == Mode::Disabled {
            if cause.is_some() {
                self.stats.skipped.bump(SkipReason::Disabled);
            }
            return Admission::Proceed;
        }
        let mut paused = false;
        match (self.state, cause) {
            (ShardState::Buffering, _) => {}
            (_, None) => return Admission::Proceed,
            (ShardState::Idle, Some(_)) if after_retry && self.may_reopen(now, ctx.limits) => {
                // The drain finished, but a released request failing again shows its end
                // came too early, just as during the drain. With few requests held, the last
                // retry ends the drain, so without this the back-off would never help a quiet
                // shard. A fresh request's failover error is not such evidence (most likely
                // it was sent to the old primary before the end), so it meets the min-time
                // rules below, as in Vitess.
                self.pause_drain(id, now, ctx);
                paused = true;
            }
            (ShardState::Idle, Some(cause)) => {
                if let Some(reason) = self.too_recent(now, ctx.limits) {
                    self.stats.skipped.bump(reason);
                    return Admission::Proceed;
                }
                self.start(id, now, cause, ctx);
            }
            (ShardState::Draining, Some(_)) => {
                // Vitess lets this through: the failover has ended, so a failover error is
                // taken for a race with the end. Early in an episode it is more likely that
                // the new primary is not writable yet, so the drain is called off instead
                // (DESIGN §5, drain back-off). Past max duration Vitess's rule applies.
                if self.mode != Mode::Enabled || self.past_max_duration(now, ctx.limits) {
                    return Admission::Proceed;
                }
                self.pause_drain(id, now, ctx);
                paused = true;
            }
        }
        if self.mode == Mode::DryRun {
            self.stats.last_requests_dry_run_max += 1;
            self.stats.buffered_dry_run += 1;
            return Admission::Proceed;
        }
        let admission = self.enqueue(id, now, ctx);
        if paused {
            ctx.out.push_back(Action::DrainPaused {
                shard: id,
                queued: self.queue.len(),
            });
        }
        admission
    }

    /// Which min-time rule forbids starting an episode now, if any. "Last failover too
    /// recent" is checked first, and both comparisons are strict, as in Vitess.
    fn too_recent(&self, now: Timestamp, limits: &Limits) -> Option<SkipReason> {
        let recent = |at: Option<Timestamp>| {
            at.is_some_and(|t| now.nanos_since(t) < limits.min_time_between_failovers)
        };
        if recent(self.last_end) {
            Some(SkipReason::LastFailoverTooRecent)
        } else if recent(self.last_reparent) {
            Some(SkipReason::LastReparentTooRecent)
        } else {
            None
        }
    }

    /// Whether a failover error may call off the episode whose drain just finished: it
    /// stopped because the failover seemed over (not resharded away, not timed out) and is
    /// younger than max failover duration, which bounds every hold as before.
    fn may_reopen(&self, now: Timestamp, limits: &Limits) -> bool {
        let seemed_over = matches!(
            self.episode.stopped,
            Some(StopReason::NewPrimarySeen | StopReason::MoveTablesSwitchedTraffic)
        );
        self.mode == Mode::Enabled && seemed_over && !self.past_max_duration(now, limits)
    }

    fn past_max_duration(&self, now: Timestamp, limits: &Limits) -> bool {
        now >= self.max_duration_deadline(limits)
    }

    fn max_duration_deadline(&self, limits: &Limits) -> Timestamp {
        self.episode.start.plus_nanos(limits.max_failover_duration)
    }

    /// Idle → Buffering.
    fn start(&mut self, id: ShardId, now: Timestamp, cause: FailoverCause, ctx: &mut Ctx<'_>) {
        self.state = ShardState::Buffering;
        self.episode = Episode::new(now, self.highest_term);
        self.stats.starts += 1;
        self.stats.last_requests_in_flight_max = 0;
        self.stats.last_requests_dry_run_max = 0;
        ctx.active.insert(id);
        ctx.out
            .push_back(Action::FailoverStarted { shard: id, cause });
    }

    /// Draining (or just drained) → Buffering, in the same episode: the entries not yet
    /// released stay queued in order, and those released keep their slots until their
    /// retries finish.
    fn pause_drain(&mut self, id: ShardId, now: Timestamp, ctx: &mut Ctx<'_>) {
        self.state = ShardState::Buffering;
        self.episode.resume_at = Some(now.plus_nanos(ctx.limits.drain_backoff));
        self.stats.drains_paused += 1;
        ctx.active.insert(id);
        // Entries that waited through the drain may be past their window already; a
        // buffering shard holds nobody past it.
        self.expire_window(now, ctx);
    }

    /// Queues a request in a buffering, enabled shard, making room if the buffer is full.
    fn enqueue(&mut self, id: ShardId, now: Timestamp, ctx: &mut Ctx<'_>) -> Admission {
        if ctx.pool.len() >= ctx.limits.size {
            // Full. Make room by evicting this shard's oldest request; its slot passes
            // straight to the newcomer. Another shard's requests are never touched: their
            // failover is not this one's business.
            let Some(victim) = ctx.pool.pop_front(&mut self.queue) else {
                self.stats.skipped.bump(SkipReason::BufferFull);
                return Admission::Fail(BufferError::BufferFull);
            };
            ctx.pool.remove(victim.slot);
            self.stats.evicted.bump(EvictReason::BufferFull);
            ctx.out.push_back(Action::Wake {
                ticket: victim,
                verdict: Verdict::Fail(BufferError::Evicted),
            });
        }
        let deadline = now.plus_nanos(ctx.limits.window);
        let ticket = ctx.pool.push_back(&mut self.queue, id, deadline);
        self.stats.buffered += 1;
        let peak = &mut self.stats.last_requests_in_flight_max;
        *peak = (*peak).max(self.queue.len() as u64);
        Admission::Wait(ticket)
    }

    /// A health stamp: tracks the primary, and ends the episode when it proves the failover
    /// over. Returns the highest term before the stamp if the stamp was stale.
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
        if self.state != ShardState::Buffering {
            return Ok(());
        }
        if !stamp.serving {
            self.episode.saw_not_serving = true;
            return Ok(());
        }
        // The demoted primary's last "still serving" carries the old term and proves
        // nothing (Vitess 16438, 17013). A newer term does; so does the same primary serving
        // again after we saw it stop (a failed switchover); so does any serving stamp once a
        // drain was paused, since the end was already proven once.
        let newer = self.episode.start_term.is_none_or(|t| stamp.term > t);
        if newer || self.episode.saw_not_serving || self.episode.resume_at.is_some() {
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
        match (self.state, event) {
            (ShardState::Buffering, TopologyEvent::ShardMissing) => {
                self.stop(id, now, StopReason::ReshardingComplete, ctx);
            }
            (ShardState::Buffering, TopologyEvent::TrafficSwitched) => {
                self.stop(id, now, StopReason::MoveTablesSwitchedTraffic, ctx);
            }
            (ShardState::Draining, TopologyEvent::ShardMissing) => {
                // Those not yet released would only retry against a shard that is gone.
                self.episode.release = Verdict::Fail(BufferError::ShardMissing);
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
        if self.state != ShardState::Buffering {
            return;
        }
        if self.episode.stopped.is_none() {
            self.episode.stopped = Some(reason);
            let duration = now.saturating_duration_since(self.episode.start);
            let stats = &mut self.stats;
            stats.stops.bump(reason);
            stats.last_failover_duration = duration;
            stats.failover_duration_sum = stats.failover_duration_sum.saturating_add(duration);
            let in_flight_max = match self.mode {
                Mode::DryRun => stats.last_requests_dry_run_max,
                _ => stats.last_requests_in_flight_max,
            };
            // Whole percent, truncated, as Vitess computes it.
            let utilization_percent = in_flight_max.saturating_mul(100) / ctx.limits.size as u64;
            match self.mode {
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
            self.episode.release = Verdict::Fail(BufferError::ShardMissing);
        }
        self.last_end = Some(now);
        self.episode.resume_at = None;
        self.episode.drain_start = now;
        self.state = ShardState::Draining;
        ctx.active.remove(id);
        ctx.out.push_back(Action::StartDrain {
            shard: id,
            queued: self.queue.len(),
        });
        self.release(now, ctx, id);
    }

    /// Releases queued requests in FIFO order while fewer than `drain_concurrency` retries
    /// run, and goes idle once all have finished.
    fn release(&mut self, now: Timestamp, ctx: &mut Ctx<'_>, id: ShardId) {
        loop {
            // A failure never reaches the primary, so it takes no share of the concurrency.
            let retry = self.episode.release == Verdict::Retry;
            if retry && self.drain_in_flight >= ctx.limits.drain_concurrency {
                break;
            }
            let Some(ticket) = ctx.pool.pop_front(&mut self.queue) else {
                break;
            };
            self.stats.drained += 1;
            match self.episode.release {
                Verdict::Retry => {
                    ctx.pool
                        .set_status(ticket.slot, TicketStatus::RetryingInDrain);
                    self.drain_in_flight += 1;
                }
                // A failure ends the ticket at once.
                Verdict::Fail(_) => ctx.pool.remove(ticket.slot),
            }
            ctx.out.push_back(Action::Wake {
                ticket,
                verdict: self.episode.release,
            });
        }
        if self.queue.is_empty() && self.drain_in_flight == 0 {
            self.state = ShardState::Idle;
            ctx.out.push_back(Action::Metric(Metric::DrainFinished {
                shard: id,
                duration: now.saturating_duration_since(self.episode.drain_start),
            }));
        }
    }

    /// A live ticket of this shard ends: its retry finished, or its client gave up.
    pub(crate) fn finish(
        &mut self,
        id: ShardId,
        now: Timestamp,
        slot: u32,
        status: TicketStatus,
        ctx: &mut Ctx<'_>,
    ) {
        match status {
            TicketStatus::Queued => {
                ctx.pool.unlink(&mut self.queue, slot);
                ctx.pool.remove(slot);
                // Vitess counts a request cancelled while its drain is under way as drained:
                // the drain had taken it on. Before the drain it is evicted.
                if self.state == ShardState::Draining {
                    self.stats.drained += 1;
                } else {
                    self.stats.evicted.bump(EvictReason::ContextDone);
                }
            }
            TicketStatus::RetryingAfterWindow => ctx.pool.remove(slot),
            TicketStatus::RetryingInDrain => {
                ctx.pool.remove(slot);
                self.drain_in_flight -= 1;
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
        if self.past_max_duration(now, ctx.limits) {
            self.stop(id, now, StopReason::MaxDurationExceeded, ctx);
        } else if self.episode.resume_at.is_some_and(|at| now >= at) {
            let reason = self.episode.stopped.unwrap_or(StopReason::NewPrimarySeen);
            self.stop(id, now, reason, ctx);
        } else {
            self.expire_window(now, ctx);
        }
    }

    /// Releases, to retry, every queued request that has been held for the whole window.
    /// Deadlines rise along the queue, so only the head need be looked at: O(expired).
    fn expire_window(&mut self, now: Timestamp, ctx: &mut Ctx<'_>) {
        while let Some(head) = self.queue.head() {
            if now < ctx.pool.entry(head).deadline {
                break;
            }
            ctx.pool.unlink(&mut self.queue, head);
            ctx.pool.set_status(head, TicketStatus::RetryingAfterWindow);
            self.stats.evicted.bump(EvictReason::WindowExceeded);
            let ticket = ctx.pool.ticket_at(head);
            ctx.out.push_back(Action::Wake {
                ticket,
                verdict: Verdict::Retry,
            });
        }
    }

    /// This shard's next timer, if it is buffering.
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
            at: self.max_duration_deadline(limits),
            shard: id,
            kind: TimerKind::MaxFailoverDuration,
        };
        if let Some(at) = self.episode.resume_at {
            if at < next.at {
                next = Deadline {
                    at,
                    shard: id,
                    kind: TimerKind::DrainBackoff,
                };
            }
        }
        if let Some(head) = self.queue.head() {
            let at = pool.entry(head).deadline;
            if at < next.at {
                next = Deadline {
                    at,
                    shard: id,
                    kind: TimerKind::Window,
                };
            }
        }
        Some(next)
    }
}
