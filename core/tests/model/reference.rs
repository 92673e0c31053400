//! A reference model of the buffer: the same semantics as `failover_buffer::Buffer`, written
//! to be obviously right rather than fast.
//!
//! Every ticket ever issued stays in one `Vec` (its index is its name), a queue is a `Vec`
//! of those indices in arrival order, and everything else (slots held, retries in flight,
//! the next timer) is recomputed by a linear scan whenever it is needed. There is no slab,
//! no intrusive list, no timer list and no cached count that could drift. The rules are
//! taken from the crate's documentation and DESIGN §3–§5, one `if` per documented sentence.
//!
//! The model speaks the core's vocabulary ([`Action`], [`InputError`], [`ShardStats`]) so
//! the harness can compare the two verbatim. It never looks inside the core: the only thing
//! it learns from it is the [`Ticket`] value the core chose for each request it queued
//! ([`Model::bind`]), since ticket values are the core's to pick.

use std::time::Duration;

use failover_buffer::ShutdownPhase;
use failover_buffer::drain::DrainError;

use failover_buffer::{
    Action, BufferError, Config, ConfigError, EpisodeView, EvictReason, Eviction, FailoverCause,
    HealthStamp, InputError, InputStats, Metric, Mode, PauseEnd, PauseError, PauseScope, PrimaryId,
    Reason, ReleaseReason, ShardId, ShardState, ShardStats, SkipReason, StopReason, Ticket,
    TicketError, TicketStatus, TimerKind, TopologyEvent, Verdict, WaitHistograms, WaitOutcome,
};

/// The model's answer to a request: like [`failover_buffer::Admission`], but a queued
/// request is named by its index among all tickets issued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Answer {
    /// Send it now.
    Proceed,
    /// Queued as the `usize`-th ticket ever issued.
    Wait(usize),
    /// Refused.
    Fail(BufferError),
}

/// Where a ticket is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Life {
    Queued,
    /// Woken with `Retry` by its window expiring.
    RetryAfterWindow,
    /// Woken with `Retry` by a drain that began for this reason: counts against
    /// `drain_concurrency`.
    RetryInDrain(StopReason),
    /// Released by the drain that follows a pause with no episode behind it.
    RetryAfterPause,
    Ended,
}

#[derive(Clone, Debug)]
struct ModelTicket {
    shard: usize,
    /// Enqueue time + window, in nanoseconds.
    deadline: u64,
    /// When it was queued, in nanoseconds: its wait is measured from here.
    held_at: u64,
    life: Life,
    /// The value the core gave it.
    handle: Option<Ticket>,
    /// The size it carries.
    bytes: u64,
}

/// Per-shard counters, mirroring [`ShardStats`] field by field (reasons indexed by
/// [`Reason::index`]).
#[derive(Clone, Debug, Default)]
struct Counters {
    /// Verdicts by `WaitOutcome`, and the sum of their waits in nanoseconds.
    waits: [u64; 5],
    wait_sums: [u64; 5],
    starts: u64,
    stops: [u64; 5],
    buffered: u64,
    buffered_dry_run: u64,
    drained: u64,
    evicted: [u64; 5],
    skipped: [u64; 5],
    drains_paused: u64,
    in_flight_max: u64,
    dry_run_max: u64,
    last_failover_duration: Duration,
    last_failover_held_duration: Duration,
    failover_duration_sum: Duration,
    utilization_sum: u64,
    utilization_dry_run_sum: u64,
    peak_bytes: u64,
    pauses_started: u64,
    pauses_ended: [u64; 3],
}

/// The current (or last) failover episode of a shard.
#[derive(Clone, Debug)]
struct Episode {
    start: u64,
    /// The highest term known when the episode started.
    start_term: Option<u64>,
    saw_not_serving: bool,
    /// Why the episode first stopped buffering (a resumed drain is not a new stop).
    stopped: Option<StopReason>,
    /// Why its drain last started.
    last_stop: Option<StopReason>,
    /// When it first held a request, and when a held request last left a queue.
    first_hold: Option<u64>,
    last_release: u64,
    /// What released requests are told.
    verdict: Verdict,
    /// When the drain last started (for `DrainFinished`'s duration).
    drain_start: u64,
    /// Set while a paused drain waits: when it resumes by itself.
    resume_at: Option<u64>,
}

#[derive(Debug)]
struct ModelShard {
    mode: Mode,
    state: ShardState,
    /// Indices of queued tickets, oldest first.
    queue: Vec<usize>,
    episode: Option<Episode>,
    last_end: Option<u64>,
    last_reparent: Option<u64>,
    primary: Option<PrimaryId>,
    highest_term: Option<u64>,
    counters: Counters,
    /// The operator pause: `(since, until)`. While it lasts the shard holds everything
    /// whatever its `state`, which stays the failover machine's own.
    pause: Option<(u64, u64)>,
    /// The drain under way releases what a pause held with no episode behind it: when it
    /// started, and what it tells the released.
    pause_drain: Option<(u64, Verdict)>,
}

/// The reference model of a whole buffer.
#[derive(Debug)]
pub(crate) struct Model {
    /// What fixes the shards' modes, which a reconfiguration may not change.
    modes: (bool, bool, failover_buffer::ShardFilter),
    proactive_start: bool,
    size: usize,
    window: u64,
    max_failover_duration: u64,
    min_time_between_failovers: u64,
    drain_concurrency: usize,
    drain_backoff: u64,
    eviction: Eviction,
    /// `usize::MAX` when there is no cap.
    max_per_shard: usize,
    /// Every ticket ever queued, in the buffer-wide order of the queued ones (a new request
    /// at the end; a requeued one ahead of the first queued ticket whose deadline is not
    /// earlier). Tickets no longer queued are skipped when it is read.
    order: Vec<usize>,
    /// A queued ticket of another shard that the current request's newcomer took the slot
    /// of: evicted when the input returns.
    foreign_victims: Vec<usize>,
    /// `Config::LARGEST_MAX_BYTES` when there is no budget.
    max_bytes: u64,
    max_pause: u64,
    now: u64,
    shut_down: bool,
    closed: bool,
    /// `Config::shutdown_grace`, in nanoseconds (`u64::MAX`: no limit).
    shutdown_grace: u64,
    /// The latest shutdown, once one began.
    shutdown: Option<ModelShutdown>,
    shards: Vec<ModelShard>,
    tickets: Vec<ModelTicket>,
    input_stats: InputStats,
    /// Actions queued, with each `Wake` naming its ticket by index (`Wake`'s ticket is a
    /// placeholder): a ticket the same input issued and woke is bound only after the input.
    actions: Vec<(Action, Option<usize>)>,
}

/// A shutdown: where it is, and what a cancel puts back.
#[derive(Debug)]
struct ModelShutdown {
    /// The current phase; `None` once cancelled or closed.
    phase: Option<ShutdownPhase>,
    /// The grace it began with.
    grace: u64,
    /// While waiting for retries: when the grace ends.
    grace_ends: Option<u64>,
    /// Each shard it stopped while buffering, with (stopped, last stop, resume instant,
    /// drain start) of its episode and its last end, as they were.
    stopped: Vec<(usize, SavedEpisode)>,
}

type SavedEpisode = (
    Option<StopReason>,
    Option<StopReason>,
    Option<u64>,
    u64,
    Option<u64>,
);

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The mode a shard gets: Vitess `bufferingMode`, read off the config by hand.
fn mode_of(config: &Config, keyspace: &str, shard: &str) -> Mode {
    let listed = config.filter.keyspaces().any(|k| k == keyspace)
        || config
            .filter
            .shards()
            .any(|(k, s)| k == keyspace && s == shard);
    if config.enabled && (config.filter.is_empty() || listed) {
        Mode::Enabled
    } else if config.dry_run {
        Mode::DryRun
    } else {
        Mode::Disabled
    }
}

impl Clone for Model {
    fn clone(&self) -> Self {
        let Model {
            modes,
            proactive_start,
            size,
            window,
            max_failover_duration,
            min_time_between_failovers,
            drain_concurrency,
            drain_backoff,
            eviction,
            max_per_shard,
            order,
            foreign_victims,
            max_bytes,
            max_pause,
            now,
            shut_down,
            closed,
            shutdown_grace,
            shutdown,
            shards,
            tickets,
            input_stats,
            actions,
        } = self;
        Model {
            modes: modes.clone(),
            proactive_start: *proactive_start,
            size: *size,
            window: *window,
            max_failover_duration: *max_failover_duration,
            min_time_between_failovers: *min_time_between_failovers,
            drain_concurrency: *drain_concurrency,
            drain_backoff: *drain_backoff,
            eviction: *eviction,
            max_per_shard: *max_per_shard,
            order: order.clone(),
            foreign_victims: foreign_victims.clone(),
            max_bytes: *max_bytes,
            max_pause: *max_pause,
            now: *now,
            shut_down: *shut_down,
            closed: *closed,
            shutdown_grace: *shutdown_grace,
            shutdown: shutdown.clone(),
            shards: shards.clone(),
            tickets: tickets.clone(),
            input_stats: *input_stats,
            actions: actions.clone(),
        }
    }

    /// Field by field, so that the vectors (tickets, shards and their queues, actions) keep
    /// their allocations: the exhaustive test refreshes one model per input tried.
    fn clone_from(&mut self, source: &Self) {
        let Model {
            modes,
            proactive_start,
            size,
            window,
            max_failover_duration,
            min_time_between_failovers,
            drain_concurrency,
            drain_backoff,
            eviction,
            max_per_shard,
            order,
            foreign_victims,
            max_bytes,
            max_pause,
            now,
            shut_down,
            closed,
            shutdown_grace,
            shutdown,
            shards,
            tickets,
            input_stats,
            actions,
        } = self;
        // Fixed at set-up (a reconfiguration may not change them), so nearly always the
        // same: comparing the filter is cheaper than cloning it into a new one.
        if *modes != source.modes {
            modes.clone_from(&source.modes);
        }
        *proactive_start = source.proactive_start;
        *size = source.size;
        *window = source.window;
        *max_failover_duration = source.max_failover_duration;
        *min_time_between_failovers = source.min_time_between_failovers;
        *drain_concurrency = source.drain_concurrency;
        *drain_backoff = source.drain_backoff;
        *eviction = source.eviction;
        *max_per_shard = source.max_per_shard;
        order.clone_from(&source.order);
        foreign_victims.clone_from(&source.foreign_victims);
        *max_bytes = source.max_bytes;
        *max_pause = source.max_pause;
        *now = source.now;
        *shut_down = source.shut_down;
        *closed = source.closed;
        *shutdown_grace = source.shutdown_grace;
        shutdown.clone_from(&source.shutdown);
        shards.clone_from(&source.shards);
        tickets.clone_from(&source.tickets);
        *input_stats = source.input_stats;
        actions.clone_from(&source.actions);
    }
}

impl Clone for ModelShard {
    fn clone(&self) -> Self {
        let ModelShard {
            mode,
            state,
            queue,
            episode,
            last_end,
            last_reparent,
            primary,
            highest_term,
            counters,
            pause,
            pause_drain,
        } = self;
        ModelShard {
            mode: *mode,
            state: *state,
            queue: queue.clone(),
            episode: episode.clone(),
            last_end: *last_end,
            last_reparent: *last_reparent,
            primary: *primary,
            highest_term: *highest_term,
            counters: counters.clone(),
            pause: *pause,
            pause_drain: *pause_drain,
        }
    }

    /// Keeps the queue's allocation.
    fn clone_from(&mut self, source: &Self) {
        let ModelShard {
            mode,
            state,
            queue,
            episode,
            last_end,
            last_reparent,
            primary,
            highest_term,
            counters,
            pause,
            pause_drain,
        } = self;
        *mode = source.mode;
        *state = source.state;
        queue.clone_from(&source.queue);
        episode.clone_from(&source.episode);
        *last_end = source.last_end;
        *last_reparent = source.last_reparent;
        *primary = source.primary;
        *highest_term = source.highest_term;
        counters.clone_from(&source.counters);
        *pause = source.pause;
        *pause_drain = source.pause_drain;
    }
}

impl Clone for ModelShutdown {
    fn clone(&self) -> Self {
        let ModelShutdown {
            phase,
            grace,
            grace_ends,
            stopped,
        } = self;
        ModelShutdown {
            phase: *phase,
            grace: *grace,
            grace_ends: *grace_ends,
            stopped: stopped.clone(),
        }
    }

    /// Keeps the stopped shards' allocation.
    fn clone_from(&mut self, source: &Self) {
        let ModelShutdown {
            phase,
            grace,
            grace_ends,
            stopped,
        } = self;
        *phase = source.phase;
        *grace = source.grace;
        *grace_ends = source.grace_ends;
        stopped.clone_from(&source.stopped);
    }
}

impl Model {
    /// A model of `Buffer::new(config)` with `names` registered in order.
    pub(crate) fn new(config: &Config, names: &[(&str, &str)]) -> Model {
        let shards = names
            .iter()
            .map(|&(keyspace, shard)| ModelShard {
                mode: mode_of(config, keyspace, shard),
                state: ShardState::Idle,
                queue: Vec::new(),
                episode: None,
                last_end: None,
                last_reparent: None,
                primary: None,
                highest_term: None,
                counters: Counters::default(),
                pause: None,
                pause_drain: None,
            })
            .collect();
        Model {
            modes: (config.enabled, config.dry_run, config.filter.clone()),
            proactive_start: config.proactive_start,
            size: config.size,
            window: nanos(config.window),
            max_failover_duration: nanos(config.max_failover_duration),
            min_time_between_failovers: nanos(config.min_time_between_failovers),
            drain_concurrency: config.drain_concurrency,
            drain_backoff: nanos(config.drain_backoff),
            eviction: config.eviction,
            max_per_shard: config.max_per_shard.unwrap_or(usize::MAX),
            order: Vec::new(),
            foreign_victims: Vec::new(),
            max_bytes: config.max_bytes.unwrap_or(Config::LARGEST_MAX_BYTES),
            max_pause: nanos(config.max_pause),
            now: 0,
            shut_down: false,
            closed: false,
            shutdown_grace: nanos(config.shutdown_grace),
            shutdown: None,
            shards,
            tickets: Vec::new(),
            input_stats: InputStats::default(),
            actions: Vec::new(),
        }
    }

    /// Records the core's value for the `index`-th ticket.
    pub(crate) fn bind(&mut self, index: usize, ticket: Ticket) {
        self.tickets[index].handle = Some(ticket);
    }

    /// The actions queued since the last call, oldest first. The queue keeps its
    /// allocation (an input that queues none allocates nothing).
    pub(crate) fn take_actions(&mut self) -> Vec<Action> {
        let mut taken = Vec::new();
        self.take_actions_into(&mut taken);
        taken
    }

    /// [`Model::take_actions`], appended to `into` (whose allocation the harness keeps from
    /// one input to the next).
    pub(crate) fn take_actions_into(&mut self, into: &mut Vec<Action>) {
        into.extend(
            self.actions
                .iter()
                .map(|&(action, woken)| match (action, woken) {
                    (Action::Wake { verdict, .. }, Some(i)) => Action::Wake {
                        ticket: self.handle(i),
                        verdict,
                    },
                    (action, _) => action,
                }),
        );
        self.actions.clear();
    }

    /// Queues a `Wake` of ticket `i`.
    fn wake(&mut self, i: usize, verdict: Verdict) {
        let placeholder = Ticket::from_parts(u32::MAX, u64::MAX);
        self.actions.push((
            Action::Wake {
                ticket: placeholder,
                verdict,
            },
            Some(i),
        ));
    }

    // ----- inputs -----

    /// `Buffer::request_sized` (`Buffer::request` is `bytes` 0).
    pub(crate) fn request(
        &mut self,
        now: u64,
        shard: usize,
        cause: Option<FailoverCause>,
        bytes: u64,
    ) -> Result<Answer, InputError> {
        let now = self.observe(now);
        if shard >= self.shards.len() {
            self.input_stats.unknown_shards += 1;
            return Err(InputError::UnknownShard);
        }
        let state = self.visible(shard);
        // A first attempt only ever waits on a buffering (or paused) shard.
        let Some(cause) = cause else {
            if state != ShardState::Buffering {
                return Ok(Answer::Proceed);
            }
            let answer = self.hold(now, shard, false, bytes);
            self.evict_foreign(now);
            return Ok(answer);
        };
        let answer = self.failover_request(now, shard, cause, bytes);
        self.evict_foreign(now);
        Ok(answer)
    }

    /// Evicts the other shards' tickets this input's newcomer made way for, oldest first.
    fn evict_foreign(&mut self, now: u64) {
        for victim in std::mem::take(&mut self.foreign_victims) {
            let shard = self.tickets[victim].shard;
            self.shards[shard].queue.retain(|&q| q != victim);
            self.evict(now, shard, victim);
        }
    }

    /// `Buffer::retry_failed`. A retry a drain released, failing within a young episode
    /// whose drain began because the failover seemed over, goes back to its shard's queue
    /// (the drain paused first, if it still ran); any other is a fresh failover error.
    pub(crate) fn retry_failed(
        &mut self,
        now: u64,
        ticket: Ticket,
        index: Option<usize>,
        cause: FailoverCause,
    ) -> Result<Answer, InputError> {
        let now = self.observe(now);
        let i = self.live(ticket, index, true)?;
        let shard = self.tickets[i].shard;
        let in_drain = matches!(self.tickets[i].life, Life::RetryInDrain(_));
        if in_drain && self.may_requeue(now, shard) {
            return Ok(self.requeue(now, i));
        }
        let bytes = self.tickets[i].bytes;
        self.end(now, i);
        let answer = self.failover_request(now, shard, cause, bytes);
        self.evict_foreign(now);
        self.settle();
        Ok(answer)
    }

    fn may_requeue(&self, now: u64, shard: usize) -> bool {
        let s = &self.shards[shard];
        let verdict = s.episode.as_ref().map_or(Verdict::Retry, |e| e.verdict);
        !self.shut_down
            && s.mode == Mode::Enabled
            && verdict == Verdict::Retry
            && self.may_pause(now, shard)
            && self.held() <= self.size
            && self.held_bytes(None) <= self.max_bytes
            && self.held_by(shard) <= self.max_per_shard
    }

    /// The request of ticket `i` is held again: a new ticket with the same deadline, queued
    /// before the first entry whose deadline is not earlier.
    fn requeue(&mut self, now: u64, i: usize) -> Answer {
        let shard = self.tickets[i].shard;
        let deadline = self.tickets[i].deadline;
        let was_draining = self.shards[shard].state == ShardState::Draining;
        self.tickets[i].life = Life::Ended;
        if was_draining {
            self.pause(now, shard);
        }
        let j = self.tickets.len();
        self.tickets.push(ModelTicket {
            shard,
            deadline,
            held_at: now,
            life: Life::Queued,
            handle: None,
            bytes: self.tickets[i].bytes,
        });
        let at = self.shards[shard]
            .queue
            .iter()
            .position(|&q| self.tickets[q].deadline >= deadline)
            .unwrap_or(self.shards[shard].queue.len());
        let at_all = self
            .order
            .iter()
            .position(|&q| {
                self.tickets[q].life == Life::Queued && self.tickets[q].deadline >= deadline
            })
            .unwrap_or(self.order.len());
        self.order.insert(at_all, j);
        let s = &mut self.shards[shard];
        s.queue.insert(at, j);
        s.counters.buffered += 1;
        s.counters.in_flight_max = s.counters.in_flight_max.max(s.queue.len() as u64);
        self.expire_window(now, shard);
        if was_draining {
            self.actions.push_other(Action::DrainPaused {
                shard: ShardId::from_index(shard as u32),
                queued: self.shards[shard].queue.len(),
            });
        }
        Answer::Wait(j)
    }

    /// A request with a failover cause on a registered shard.
    fn failover_request(
        &mut self,
        now: u64,
        shard: usize,
        cause: FailoverCause,
        bytes: u64,
    ) -> Answer {
        let state = self.shards[shard].state;
        if self.shut_down {
            self.skip(shard, SkipReason::Shutdown);
            return Answer::Proceed;
        }
        if self.shards[shard].mode == Mode::Disabled {
            self.skip(shard, SkipReason::Disabled);
            return Answer::Proceed;
        }
        if self.shards[shard].pause.is_some() {
            // Paused: held whatever the episode does; a failover on an idle shard starts an
            // episode (nothing is counted if the min-time rules forbid it: it is held anyway).
            if state == ShardState::Idle && !self.skip_start(now, shard, false) {
                self.start(now, shard, cause);
            }
            return self.hold(now, shard, false, bytes);
        }
        match state {
            ShardState::Buffering => self.hold(now, shard, false, bytes),
            ShardState::Idle => {
                if self.skip_start(now, shard, true) {
                    return Answer::Proceed;
                }
                self.start(now, shard, cause);
                self.hold(now, shard, false, bytes)
            }
            ShardState::Draining => {
                // A pause's own drain has no episode to call off.
                if self.shards[shard].mode != Mode::Enabled
                    || self.shards[shard].pause_drain.is_some()
                {
                    return Answer::Proceed;
                }
                let verdict = self.shards[shard]
                    .episode
                    .as_ref()
                    .map_or(Verdict::Retry, |e| e.verdict);
                if let Verdict::Fail(error) = verdict {
                    return Answer::Fail(error);
                }
                if !self.may_pause(now, shard) {
                    return Answer::Proceed;
                }
                // Only a request that will really be queued calls the drain off: after this
                // shard's due requests are released by their window (keeping their slots),
                // is a slot free, or is there a queued request the policy may evict?
                let own_left = self.shards[shard]
                    .queue
                    .iter()
                    .any(|&q| self.tickets[q].deadline > now);
                let others_queued = self
                    .tickets
                    .iter()
                    .any(|t| t.life == Life::Queued && t.shard != shard);
                let room = if self.held_by(shard) >= self.max_per_shard {
                    self.eviction != Eviction::RejectNew && own_left
                } else if self.held() < self.size {
                    true
                } else {
                    match self.eviction {
                        Eviction::OldestOfShard => own_left,
                        Eviction::OldestAnywhere => own_left || others_queued,
                        _ => false,
                    }
                };
                // ...and can it be brought under the byte budget, this shard's due requests
                // no longer being evictable?
                let due: u64 = self.shards[shard]
                    .queue
                    .iter()
                    .filter(|&&q| self.tickets[q].deadline <= now)
                    .map(|&q| self.tickets[q].bytes)
                    .sum();
                if !room || !self.bytes_fit(shard, bytes, due) {
                    self.skip(shard, SkipReason::BufferFull);
                    return Answer::Fail(BufferError::BufferFull);
                }
                self.pause(now, shard);
                self.expire_window(now, shard);
                self.hold(now, shard, true, bytes)
            }
        }
    }

    /// Whether a min-time rule forbids starting an episode now (counted as skipped when
    /// `count`, i.e. for a request).
    fn skip_start(&mut self, now: u64, shard: usize, count: bool) -> bool {
        let s = &self.shards[shard];
        let min = self.min_time_between_failovers;
        let too_recent = |at: Option<u64>| at.is_some_and(|t| now.saturating_sub(t) < min);
        let reason = if too_recent(s.last_end) {
            SkipReason::LastFailoverTooRecent
        } else if too_recent(s.last_reparent) {
            SkipReason::LastReparentTooRecent
        } else {
            return false;
        };
        if count {
            self.skip(shard, reason);
        }
        true
    }

    /// Drain back-off: the shard buffers again in the same episode.
    fn pause(&mut self, now: u64, shard: usize) {
        let s = &mut self.shards[shard];
        s.state = ShardState::Buffering;
        s.counters.drains_paused += 1;
        if let Some(e) = s.episode.as_mut() {
            e.resume_at = Some(now.saturating_add(self.drain_backoff));
        }
    }

    /// Whether the drain may be called off: it began because the failover seemed over (not
    /// resharded away, not timed out, not shut down) and the episode is younger than max
    /// failover duration.
    fn may_pause(&self, now: u64, shard: usize) -> bool {
        let Some(e) = self.shards[shard].episode.as_ref() else {
            return false;
        };
        let seemed_over = matches!(
            e.stopped,
            Some(StopReason::NewPrimarySeen | StopReason::MoveTablesSwitchedTraffic)
        );
        seemed_over && now < e.start.saturating_add(self.max_failover_duration)
    }

    /// `Buffer::health`.
    pub(crate) fn health(
        &mut self,
        now: u64,
        shard: usize,
        stamp: HealthStamp,
    ) -> Result<(), InputError> {
        let now = self.observe(now);
        if shard >= self.shards.len() {
            self.input_stats.unknown_shards += 1;
            return Err(InputError::UnknownShard);
        }
        let s = &mut self.shards[shard];
        if let Some(highest) = s.highest_term {
            if stamp.term < highest {
                self.input_stats.stale_health_stamps += 1;
                return Err(InputError::StaleHealthStamp {
                    term: stamp.term,
                    highest,
                });
            }
        }
        if self.shut_down {
            return Ok(());
        }
        if s.primary.is_some() && s.primary != Some(stamp.primary) {
            s.last_reparent = Some(now);
        }
        s.primary = Some(stamp.primary);
        s.highest_term = Some(stamp.term);
        if s.state == ShardState::Idle && !stamp.serving {
            // Proactive start: as a failover error right after this stamp, but nothing is
            // counted if it is too soon.
            if self.proactive_start
                && s.mode != Mode::Disabled
                && !self.skip_start(now, shard, false)
            {
                self.start(now, shard, FailoverCause::Reparent);
                if let Some(e) = self.shards[shard].episode.as_mut() {
                    e.saw_not_serving = true;
                }
            }
            return Ok(());
        }
        let s = &mut self.shards[shard];
        if s.state != ShardState::Buffering {
            return Ok(());
        }
        let Some(e) = s.episode.as_mut() else {
            return Ok(());
        };
        if !stamp.serving {
            e.saw_not_serving = true;
            return Ok(());
        }
        let newer_term = match e.start_term {
            None => true,
            Some(t) => stamp.term > t,
        };
        let paused = e.resume_at.is_some();
        if newer_term || e.saw_not_serving || paused {
            self.stop(now, shard, StopReason::NewPrimarySeen);
        }
        Ok(())
    }

    /// `Buffer::topology`.
    pub(crate) fn topology(
        &mut self,
        now: u64,
        shard: usize,
        event: TopologyEvent,
    ) -> Result<(), InputError> {
        let now = self.observe(now);
        if shard >= self.shards.len() {
            self.input_stats.unknown_shards += 1;
            return Err(InputError::UnknownShard);
        }
        if self.shut_down {
            return Ok(());
        }
        match (self.shards[shard].state, event) {
            (ShardState::Buffering, TopologyEvent::ShardMissing) => {
                self.stop(now, shard, StopReason::ReshardingComplete);
            }
            (ShardState::Buffering, TopologyEvent::TrafficSwitched) => {
                self.stop(now, shard, StopReason::MoveTablesSwitchedTraffic);
            }
            (ShardState::Draining, TopologyEvent::ShardMissing) => {
                let s = &mut self.shards[shard];
                if let Some(d) = s.pause_drain.as_mut() {
                    d.1 = Verdict::Fail(BufferError::ShardMissing);
                } else if let Some(e) = s.episode.as_mut() {
                    e.verdict = Verdict::Fail(BufferError::ShardMissing);
                }
                self.drain(now, shard);
            }
            _ => {}
        }
        self.settle();
        Ok(())
    }

    /// `Buffer::tick`. Shards are visited in index order; the harness compares tick actions
    /// shard by shard, since the order across shards is not part of the contract.
    pub(crate) fn tick(&mut self, now: u64) {
        let now = self.observe(now);
        if let Some(shutdown) = self.shutdown.as_mut() {
            if shutdown.grace_ends.is_some_and(|at| at <= now) {
                shutdown.grace_ends = None;
                shutdown.phase = None;
                self.closed = true;
                self.actions.push_other(Action::Closed);
            }
        }
        for shard in 0..self.shards.len() {
            self.tick_shard(now, shard);
        }
        self.settle();
    }

    /// A buffering shard's due timers: max failover duration first, then the drain
    /// back-off, then the window.
    fn tick_shard(&mut self, now: u64, shard: usize) {
        if self.visible(shard) != ShardState::Buffering {
            return;
        }
        if self.shards[shard]
            .pause
            .is_some_and(|(_, until)| now >= until)
        {
            self.end_pause(now, shard, PauseEnd::Expired);
        }
        if self.shards[shard].state == ShardState::Buffering {
            if let Some(e) = self.shards[shard].episode.clone() {
                if now >= e.start.saturating_add(self.max_failover_duration) {
                    self.stop(now, shard, StopReason::MaxDurationExceeded);
                } else if e.resume_at.is_some_and(|at| now >= at) {
                    // Not a new stop: `stop` counts only the first of an episode. The drain
                    // resumes for the reason it first started.
                    let reason = e.stopped.unwrap_or(StopReason::NewPrimarySeen);
                    self.stop(now, shard, reason);
                }
            }
        }
        // Whatever still holds releases those held for their whole window.
        if self.visible(shard) == ShardState::Buffering {
            self.expire_window(now, shard);
        }
    }

    /// `Buffer::pause`.
    pub(crate) fn operator_pause(
        &mut self,
        now: u64,
        scope: PauseScope,
        max: Duration,
    ) -> Result<usize, PauseError> {
        let now = self.observe(now);
        if let PauseScope::Shard(id) = scope {
            let Some(s) = self.shards.get(id.index()) else {
                self.input_stats.unknown_shards += 1;
                return Err(PauseError::UnknownShard);
            };
            if s.mode != Mode::Enabled {
                return Err(PauseError::NotEnabled(s.mode));
            }
        }
        if max.is_zero() {
            return Err(PauseError::MaxZero);
        }
        if nanos(max) > self.max_pause {
            return Err(PauseError::MaxAboveBound {
                max,
                bound: Duration::from_nanos(self.max_pause),
            });
        }
        if self.shut_down {
            return Err(PauseError::ShuttingDown);
        }
        let until = now.saturating_add(nanos(max));
        let shards: Vec<usize> = match scope {
            PauseScope::Shard(id) => vec![id.index()],
            PauseScope::All => (0..self.shards.len()).collect(),
        };
        let mut paused = 0;
        for shard in shards {
            let s = &mut self.shards[shard];
            if s.mode != Mode::Enabled {
                continue;
            }
            if s.pause.is_none() {
                s.counters.pauses_started += 1;
            }
            s.pause = Some((now, until));
            self.actions.push_other(Action::PauseStarted {
                shard: ShardId::from_index(shard as u32),
                until: failover_buffer::Timestamp::from_nanos(until),
            });
            self.expire_window(now, shard);
            paused += 1;
        }
        Ok(paused)
    }

    /// `Buffer::resume`.
    pub(crate) fn operator_resume(
        &mut self,
        now: u64,
        scope: PauseScope,
    ) -> Result<usize, PauseError> {
        let now = self.observe(now);
        let shards: Vec<usize> = match scope {
            PauseScope::Shard(id) if id.index() >= self.shards.len() => {
                self.input_stats.unknown_shards += 1;
                return Err(PauseError::UnknownShard);
            }
            PauseScope::Shard(id) => vec![id.index()],
            PauseScope::All => (0..self.shards.len()).collect(),
        };
        let mut resumed = 0;
        for shard in shards {
            if self.shards[shard].pause.is_some() {
                self.end_pause(now, shard, PauseEnd::Resumed);
                resumed += 1;
            }
        }
        self.settle();
        Ok(resumed)
    }

    /// A pause ends: the shard does what its own state says. Buffering for an episode, it
    /// goes on; otherwise what it holds drains (an episode's drain, or the pause's own).
    fn end_pause(&mut self, now: u64, shard: usize, reason: PauseEnd) {
        let s = &mut self.shards[shard];
        s.pause = None;
        s.counters.pauses_ended[reason.index()] += 1;
        let id = ShardId::from_index(shard as u32);
        self.actions.push_other(Action::PauseEnded {
            shard: id,
            reason,
            queued: s.queue.len(),
        });
        match s.state {
            ShardState::Buffering => return,
            ShardState::Idle => s.pause_drain = Some((now, Verdict::Retry)),
            ShardState::Draining => {
                if let Some(d) = s.pause_drain.as_mut() {
                    d.0 = now;
                } else if let Some(e) = s.episode.as_mut() {
                    e.drain_start = now;
                }
            }
        }
        s.state = ShardState::Draining;
        self.actions.push_other(Action::StartDrain {
            shard: id,
            queued: s.queue.len(),
        });
        self.drain(now, shard);
    }

    /// What a caller sees of a shard's state: a paused shard buffers.
    fn visible(&self, shard: usize) -> ShardState {
        match self.shards[shard].pause {
            Some(_) => ShardState::Buffering,
            None => self.shards[shard].state,
        }
    }

    /// `Buffer::pause_expiry`.
    pub(crate) fn pause_expiry(&self, shard: usize) -> Option<u64> {
        self.shards[shard].pause.map(|(_, until)| until)
    }

    /// `Buffer::cancel` (`retry_done == false`) and `Buffer::retry_done`. `index` is the
    /// ticket's index if the harness ever saw the core issue it.
    pub(crate) fn end_ticket(
        &mut self,
        now: u64,
        ticket: Ticket,
        index: Option<usize>,
        retry_done: bool,
    ) -> Result<(), InputError> {
        let now = self.observe(now);
        let i = self.live(ticket, index, retry_done)?;
        self.end(now, i);
        self.settle();
        Ok(())
    }

    /// The index of a live ticket, or the counted refusal: never issued (no index), ended,
    /// or (when `released` is asked for) still queued.
    fn live(
        &mut self,
        ticket: Ticket,
        index: Option<usize>,
        released: bool,
    ) -> Result<usize, InputError> {
        let Some(i) = index else {
            self.input_stats.tickets_not_issued += 1;
            return Err(InputError::Ticket(TicketError::NotIssued(ticket)));
        };
        match self.tickets[i].life {
            Life::Ended => {
                self.input_stats.stale_tickets += 1;
                Err(InputError::Ticket(TicketError::Stale(ticket)))
            }
            Life::Queued if released => {
                self.input_stats.tickets_not_released += 1;
                Err(InputError::Ticket(TicketError::NotReleased(ticket)))
            }
            _ => Ok(i),
        }
    }

    /// Ends live ticket `i`.
    fn end(&mut self, now: u64, i: usize) {
        let shard = self.tickets[i].shard;
        let draining = self.visible(shard) == ShardState::Draining;
        if self.tickets[i].life == Life::Queued {
            self.shards[shard].queue.retain(|&q| q != i);
            self.released(now, shard);
            self.waited(now, i, WaitOutcome::Cancelled);
            if draining {
                self.shards[shard].counters.drained += 1;
            } else {
                self.shards[shard].counters.evicted[EvictReason::ContextDone.index()] += 1;
            }
        }
        self.tickets[i].life = Life::Ended;
        if draining {
            self.drain(now, shard);
        }
    }

    /// `Buffer::reconfigure`.
    pub(crate) fn reconfigure(&mut self, now: u64, config: &Config) -> Result<(), ConfigError> {
        config.validate()?;
        if (config.enabled, config.dry_run, &config.filter)
            != (self.modes.0, self.modes.1, &self.modes.2)
        {
            return Err(ConfigError::ModeSettingsChanged);
        }
        let now = self.observe(now);
        let window = nanos(config.window);
        if window < self.window {
            let latest = now.saturating_add(window);
            for t in self.tickets.iter_mut().filter(|t| t.life != Life::Ended) {
                t.deadline = t.deadline.min(latest);
            }
        }
        self.size = config.size;
        self.window = window;
        self.max_failover_duration = nanos(config.max_failover_duration);
        self.min_time_between_failovers = nanos(config.min_time_between_failovers);
        self.drain_concurrency = config.drain_concurrency;
        self.drain_backoff = nanos(config.drain_backoff);
        self.proactive_start = config.proactive_start;
        self.shutdown_grace = nanos(config.shutdown_grace);
        self.eviction = config.eviction;
        self.max_per_shard = config.max_per_shard.unwrap_or(usize::MAX);
        self.max_bytes = config.max_bytes.unwrap_or(Config::LARGEST_MAX_BYTES);
        let max_pause = nanos(config.max_pause);
        if max_pause < self.max_pause {
            // A lower bound applies to the pauses in progress from their start.
            for shard in 0..self.shards.len() {
                let Some((since, until)) = self.shards[shard].pause else {
                    continue;
                };
                let until = until.min(since.saturating_add(max_pause));
                self.shards[shard].pause = Some((since, until));
                if until <= now {
                    self.end_pause(now, shard, PauseEnd::Expired);
                }
            }
        }
        self.max_pause = max_pause;
        for shard in 0..self.shards.len() {
            while self.held_by(shard) > self.max_per_shard && !self.shards[shard].queue.is_empty() {
                let victim = self.shards[shard].queue.remove(0);
                self.evict(now, shard, victim);
            }
        }
        while self.held() > self.size || self.held_bytes(None) > self.max_bytes {
            let oldest = (0..self.shards.len())
                .filter_map(|s| Some((self.tickets[*self.shards[s].queue.first()?].deadline, s)))
                .min();
            let Some((_, shard)) = oldest else { break };
            let victim = self.shards[shard].queue.remove(0);
            self.evict(now, shard, victim);
        }
        for shard in 0..self.shards.len() {
            if self.shards[shard].state == ShardState::Draining {
                self.drain(now, shard);
            }
        }
        self.settle();
        Ok(())
    }

    /// `Buffer::shutdown`.
    pub(crate) fn shutdown(&mut self, now: u64) {
        let now = self.observe(now);
        if self.shut_down {
            return;
        }
        // Shutdown ends every pause first.
        for shard in 0..self.shards.len() {
            if self.shards[shard].pause.is_some() {
                self.end_pause(now, shard, PauseEnd::Shutdown);
            }
        }
        let stopped = (0..self.shards.len())
            .filter(|&shard| self.shards[shard].state == ShardState::Buffering)
            .filter_map(|shard| {
                let s = &self.shards[shard];
                let e = s.episode.as_ref()?;
                Some((
                    shard,
                    (
                        e.stopped,
                        e.last_stop,
                        e.resume_at,
                        e.drain_start,
                        s.last_end,
                    ),
                ))
            })
            .collect();
        self.shutdown = Some(ModelShutdown {
            phase: Some(ShutdownPhase::ReleaseQueued),
            grace: self.shutdown_grace,
            grace_ends: None,
            stopped,
        });
        self.shut_down = true;
        for shard in 0..self.shards.len() {
            self.stop(now, shard, StopReason::Shutdown);
        }
        self.settle();
    }

    /// `Buffer::cancel_shutdown`: every shard the shutdown stopped while buffering buffers
    /// again as it was, and a deadline that passed meanwhile fires as a tick would fire it.
    pub(crate) fn cancel_shutdown(&mut self, now: u64) -> Result<(), DrainError> {
        let now = self.observe(now);
        let Some(shutdown) = self.shutdown.as_mut() else {
            return Err(DrainError::NotRunning);
        };
        match shutdown.phase {
            None if self.closed => return Err(DrainError::Finished),
            None => return Err(DrainError::NotRunning),
            Some(_) => {}
        }
        shutdown.phase = None;
        shutdown.grace_ends = None;
        let stopped = std::mem::take(&mut shutdown.stopped);
        self.shut_down = false;
        for (shard, (stopped, last_stop, resume_at, drain_start, last_end)) in stopped {
            let s = &mut self.shards[shard];
            if let Some(e) = s.episode.as_mut() {
                e.stopped = stopped;
                e.last_stop = last_stop;
                e.resume_at = resume_at;
                e.drain_start = drain_start;
            }
            s.last_end = last_end;
            s.state = ShardState::Buffering;
            self.actions.push_other(Action::DrainPaused {
                shard: ShardId::from_index(shard as u32),
                queued: s.queue.len(),
            });
            self.tick_shard(now, shard);
        }
        Ok(())
    }

    /// The shutdown's current phase.
    pub(crate) fn shutdown_phase(&self) -> Option<ShutdownPhase> {
        self.shutdown.as_ref().and_then(|s| s.phase)
    }

    // ----- rules -----

    fn observe(&mut self, now: u64) -> u64 {
        // `Timestamp::MAX` is "never": inputs stamped with it run 1 ns before.
        let now = now.min(u64::MAX - 1);
        if now < self.now {
            self.input_stats.clock_regressions += 1;
        } else {
            self.now = now;
        }
        self.now
    }

    fn skip(&mut self, shard: usize, reason: SkipReason) {
        self.shards[shard].counters.skipped[reason.index()] += 1;
    }

    fn held(&self) -> usize {
        self.tickets
            .iter()
            .filter(|t| t.life != Life::Ended)
            .count()
    }

    fn held_by(&self, shard: usize) -> usize {
        self.tickets
            .iter()
            .filter(|t| t.shard == shard && t.life != Life::Ended)
            .count()
    }

    fn in_drain(&self, shard: usize) -> usize {
        self.tickets
            .iter()
            .filter(|t| {
                t.shard == shard && matches!(t.life, Life::RetryInDrain(_) | Life::RetryAfterPause)
            })
            .count()
    }

    fn handle(&self, index: usize) -> Ticket {
        self.tickets[index]
            .handle
            .unwrap_or_else(|| panic!("model: ticket #{index} was never bound to a core ticket"))
    }

    fn start(&mut self, now: u64, shard: usize, cause: FailoverCause) {
        let s = &mut self.shards[shard];
        s.state = ShardState::Buffering;
        s.pause_drain = None;
        s.episode = Some(Episode {
            start: now,
            start_term: s.highest_term,
            saw_not_serving: false,
            stopped: None,
            last_stop: None,
            first_hold: None,
            last_release: now,
            verdict: Verdict::Retry,
            drain_start: now,
            resume_at: None,
        });
        s.counters.starts += 1;
        s.counters.in_flight_max = 0;
        s.counters.dry_run_max = 0;
        self.actions.push_other(Action::FailoverStarted {
            shard: ShardId::from_index(shard as u32),
            cause,
        });
    }

    /// A request on a buffering shard: counted on a dry run, queued otherwise.
    fn hold(&mut self, now: u64, shard: usize, paused: bool, bytes: u64) -> Answer {
        if self.shards[shard].mode == Mode::DryRun {
            let c = &mut self.shards[shard].counters;
            c.dry_run_max += 1;
            c.buffered_dry_run += 1;
            return Answer::Proceed;
        }
        let answer = self.enqueue(now, shard, bytes);
        if paused {
            self.actions.push_other(Action::DrainPaused {
                shard: ShardId::from_index(shard as u32),
                queued: self.shards[shard].queue.len(),
            });
        }
        answer
    }

    /// Bytes of the live tickets (of `shard`, if given).
    fn held_bytes(&self, shard: Option<usize>) -> u64 {
        self.tickets
            .iter()
            .filter(|t| t.life != Life::Ended && shard.is_none_or(|s| s == t.shard))
            .map(|t| t.bytes)
            .sum()
    }

    /// Whether a request of `bytes` fits the budget once the policy has evicted all it may,
    /// `unevictable` bytes of the shard's queue aside.
    fn bytes_fit(&self, shard: usize, bytes: u64, unevictable: u64) -> bool {
        if bytes > self.max_bytes {
            return false;
        }
        let queued = |only: Option<usize>| -> u64 {
            self.tickets
                .iter()
                .filter(|t| t.life == Life::Queued && only.is_none_or(|s| s == t.shard))
                .map(|t| t.bytes)
                .sum()
        };
        let evictable = match self.eviction {
            Eviction::OldestOfShard => queued(Some(shard)),
            Eviction::OldestAnywhere => queued(None),
            _ => 0,
        }
        .saturating_sub(unevictable);
        let held = self.held_bytes(None) + bytes;
        held <= self.max_bytes || held - evictable.min(held) <= self.max_bytes
    }

    fn enqueue(&mut self, now: u64, shard: usize, bytes: u64) -> Answer {
        // Whose slot the newcomer takes: `None` for a free one, `Err` if it gets none.
        let own_oldest = self.shards[shard].queue.first().copied();
        let victim = if self.held_by(shard) >= self.max_per_shard {
            // At its cap, a shard makes room from its own queue only.
            match self.eviction {
                Eviction::RejectNew => Err(()),
                _ => own_oldest.map(Some).ok_or(()),
            }
        } else if self.held() < self.size {
            Ok(None)
        } else {
            match self.eviction {
                Eviction::OldestOfShard => own_oldest.map(Some).ok_or(()),
                Eviction::OldestAnywhere => self
                    .order
                    .iter()
                    .copied()
                    .find(|&q| self.tickets[q].life == Life::Queued)
                    .map(Some)
                    .ok_or(()),
                _ => Err(()),
            }
        };
        // Nothing is evicted unless the newcomer then fits the byte budget too.
        if victim.is_err() || !self.bytes_fit(shard, bytes, 0) {
            self.skip(shard, SkipReason::BufferFull);
            return Answer::Fail(BufferError::BufferFull);
        }
        // Another shard's victims are evicted when the input returns.
        let take = |m: &mut Model, victim: usize| {
            if m.tickets[victim].shard == shard {
                m.shards[shard].queue.retain(|&q| q != victim);
                m.evict(now, shard, victim);
            } else {
                m.foreign_victims.push(victim);
            }
        };
        if let Ok(Some(victim)) = victim {
            take(self, victim);
        }
        // Over the byte budget: the policy's next oldest, until it fits.
        loop {
            let given_up: u64 = self
                .foreign_victims
                .iter()
                .map(|&v| self.tickets[v].bytes)
                .sum();
            if self.held_bytes(None) - given_up + bytes <= self.max_bytes {
                break;
            }
            let next = match self.eviction {
                Eviction::OldestAnywhere => self.order.iter().copied().find(|&q| {
                    self.tickets[q].life == Life::Queued && !self.foreign_victims.contains(&q)
                }),
                _ => self.shards[shard].queue.first().copied(),
            };
            let Some(victim) = next else { break };
            take(self, victim);
        }
        let index = self.tickets.len();
        self.tickets.push(ModelTicket {
            shard,
            deadline: now.saturating_add(self.window),
            held_at: now,
            life: Life::Queued,
            handle: None,
            bytes,
        });
        self.order.push(index);
        let held = self.held_bytes(Some(shard));
        let s = &mut self.shards[shard];
        s.counters.peak_bytes = s.counters.peak_bytes.max(held);
        s.queue.push(index);
        if let Some(e) = s.episode.as_mut() {
            e.first_hold.get_or_insert(now);
        }
        s.counters.buffered += 1;
        s.counters.in_flight_max = s.counters.in_flight_max.max(s.queue.len() as u64);
        Answer::Wait(index)
    }

    /// Ends ticket `victim`, already off its queue, with `Fail(Evicted)`.
    fn evict(&mut self, now: u64, shard: usize, victim: usize) {
        self.tickets[victim].life = Life::Ended;
        self.released(now, shard);
        self.waited(now, victim, WaitOutcome::Evicted);
        self.shards[shard].counters.evicted[EvictReason::BufferFull.index()] += 1;
        self.wake(victim, Verdict::Fail(BufferError::Evicted));
    }

    /// Ticket `i`'s wait ended now with its verdict, labelled `outcome` (one sample of the
    /// core's wait histograms).
    fn waited(&mut self, now: u64, i: usize, outcome: WaitOutcome) {
        let t = &self.tickets[i];
        let c = &mut self.shards[t.shard].counters;
        c.waits[outcome.index()] += 1;
        let sum = &mut c.wait_sums[outcome.index()];
        *sum = sum.saturating_add(now.saturating_sub(t.held_at));
    }

    /// Compares a shard's wait histograms with the model's verdicts: count and sum of the
    /// waits by outcome, and one failover sample per episode stopped.
    pub(crate) fn compare_waits(&self, shard: usize, core: &WaitHistograms) -> Result<(), String> {
        let c = &self.shards[shard].counters;
        for &o in WaitOutcome::ALL {
            let h = core.wait(o);
            let sum = u64::try_from(h.sum().as_nanos()).unwrap_or(u64::MAX);
            if (h.count(), sum) != (c.waits[o.index()], c.wait_sums[o.index()]) {
                return Err(format!(
                    "{o} waits: core {} summing {sum} ns, model {} summing {} ns",
                    h.count(),
                    c.waits[o.index()],
                    c.wait_sums[o.index()]
                ));
            }
        }
        let stops: u64 = c.stops.iter().sum();
        if core.failovers().count() != stops {
            return Err(format!(
                "failovers: core {}, model {stops} stops",
                core.failovers().count()
            ));
        }
        Ok(())
    }

    /// A held request of `shard` left its queue now.
    fn released(&mut self, now: u64, shard: usize) {
        if let Some(e) = self.shards[shard].episode.as_mut() {
            e.last_release = now;
        }
    }

    /// Releases with `Retry` every queued ticket whose deadline is at or before `now`.
    fn expire_window(&mut self, now: u64, shard: usize) {
        let due: Vec<usize> = self.shards[shard]
            .queue
            .iter()
            .copied()
            .filter(|&i| self.tickets[i].deadline <= now)
            .collect();
        for i in due {
            self.shards[shard].queue.retain(|&q| q != i);
            self.tickets[i].life = Life::RetryAfterWindow;
            self.released(now, shard);
            self.waited(now, i, WaitOutcome::Window);
            self.shards[shard].counters.evicted[EvictReason::WindowExceeded.index()] += 1;
            self.wake(i, Verdict::Retry);
        }
    }

    /// Buffering → Draining; only the first stop of an episode is counted and reported.
    fn stop(&mut self, now: u64, shard: usize, reason: StopReason) {
        let size = self.size as u64;
        let s = &mut self.shards[shard];
        if s.state != ShardState::Buffering {
            return;
        }
        let Some(e) = s.episode.as_mut() else {
            return;
        };
        if e.stopped.is_none() {
            e.stopped = Some(reason);
            let duration = Duration::from_nanos(now.saturating_sub(e.start));
            let c = &mut s.counters;
            c.stops[reason.index()] += 1;
            c.last_failover_duration = duration;
            c.failover_duration_sum += duration;
            let in_flight_max = if s.mode == Mode::DryRun {
                c.dry_run_max
            } else {
                c.in_flight_max
            };
            let utilization_percent = in_flight_max * 100 / size;
            if s.mode == Mode::DryRun {
                c.utilization_dry_run_sum += utilization_percent;
            } else {
                c.utilization_sum += utilization_percent;
            }
            self.actions
                .push_other(Action::Metric(Metric::BufferingStopped {
                    shard: ShardId::from_index(shard as u32),
                    reason,
                    duration,
                    in_flight_max,
                    utilization_percent,
                }));
        }
        if reason == StopReason::ReshardingComplete {
            e.verdict = Verdict::Fail(BufferError::ShardMissing);
        }
        e.last_stop = Some(reason);
        e.resume_at = None;
        s.last_end = Some(now);
        s.state = ShardState::Draining;
        if s.pause.is_some() {
            // Over, but the pause holds on: the drain waits for the pause to end.
            return;
        }
        e.drain_start = now;
        self.actions.push_other(Action::StartDrain {
            shard: ShardId::from_index(shard as u32),
            queued: s.queue.len(),
        });
        self.drain(now, shard);
    }

    /// Releases queued tickets, oldest first, while fewer than `drain_concurrency` drain
    /// retries run; goes idle when nothing is queued or retrying in the drain.
    fn drain(&mut self, now: u64, shard: usize) {
        if self.shards[shard].pause.is_some() {
            return;
        }
        let (verdict, reason) = self.shards[shard]
            .episode
            .as_ref()
            .map_or((Verdict::Retry, None), |e| (e.verdict, e.last_stop));
        let (verdict, life) = match self.shards[shard].pause_drain {
            Some((_, verdict)) => (verdict, Life::RetryAfterPause),
            None => (
                verdict,
                Life::RetryInDrain(reason.unwrap_or(StopReason::NewPrimarySeen)),
            ),
        };
        // A failure never reaches the primary, so it takes no share of the concurrency.
        let room = |m: &Model| verdict != Verdict::Retry || m.in_drain(shard) < m.drain_concurrency;
        while room(self) && !self.shards[shard].queue.is_empty() {
            let i = self.shards[shard].queue.remove(0);
            self.shards[shard].counters.drained += 1;
            self.released(now, shard);
            // What a pause's end releases with no episode behind it is retried, whatever the
            // last episode's drain was for.
            let outcome = match (verdict, life) {
                (Verdict::Fail(_), _) => WaitOutcome::ShardMissing,
                (_, Life::RetryInDrain(StopReason::MaxDurationExceeded)) => WaitOutcome::Window,
                _ => WaitOutcome::Retried,
            };
            self.waited(now, i, outcome);
            self.tickets[i].life = match verdict {
                Verdict::Retry => life,
                Verdict::Fail(_) => Life::Ended,
            };
            self.wake(i, verdict);
        }
        if self.shards[shard].queue.is_empty() && self.in_drain(shard) == 0 {
            let s = &mut self.shards[shard];
            s.state = ShardState::Idle;
            let drain_start = match s.pause_drain.take() {
                // A pause's own drain is no episode's: the episode's figures stay.
                Some((start, _)) => start,
                None => {
                    let held = s.episode.as_ref().and_then(|e| {
                        let first = e.first_hold?;
                        Some(Duration::from_nanos(e.last_release.saturating_sub(first)))
                    });
                    s.counters.last_failover_held_duration = held.unwrap_or(Duration::ZERO);
                    s.episode.as_ref().map_or(now, |e| e.drain_start)
                }
            };
            self.actions
                .push_other(Action::Metric(Metric::DrainFinished {
                    shard: ShardId::from_index(shard as u32),
                    duration: Duration::from_nanos(now.saturating_sub(drain_start)),
                }));
        }
    }

    /// A shutdown's phases end when their work is done: the queues empty (the wait for
    /// retries begins, for the grace), then every slot free (closed).
    fn settle(&mut self) {
        let queued: usize = self.shards.iter().map(|s| s.queue.len()).sum();
        let held = self.held();
        let now = self.now;
        let Some(shutdown) = self.shutdown.as_mut() else {
            return;
        };
        if shutdown.phase == Some(ShutdownPhase::ReleaseQueued) && queued == 0 {
            shutdown.phase = Some(ShutdownPhase::WaitForRetries);
            shutdown.grace_ends = Some(now.saturating_add(shutdown.grace));
        }
        if shutdown.phase == Some(ShutdownPhase::WaitForRetries) && held == 0 {
            shutdown.phase = None;
            shutdown.grace_ends = None;
            self.closed = true;
            self.actions.push_other(Action::Closed);
        }
    }

    // ----- observations -----

    /// The latest time seen, in nanoseconds.
    pub(crate) fn now(&self) -> u64 {
        self.now
    }

    /// Every timer armed, as `visit(when, shard, why)`. Only buffering shards have timers.
    /// Visited, not listed nor iterated: read after every input the exhaustive test tries
    /// (an iterator of chained per-shard iterators was a fortieth of a transition).
    pub(crate) fn each_timer(&self, mut visit: impl FnMut(u64, usize, TimerKind)) {
        for (shard, s) in self.shards.iter().enumerate() {
            if self.visible(shard) != ShardState::Buffering {
                continue;
            }
            if let Some(e) = s
                .episode
                .as_ref()
                .filter(|_| s.state == ShardState::Buffering)
            {
                visit(
                    e.start.saturating_add(self.max_failover_duration),
                    shard,
                    TimerKind::MaxFailoverDuration,
                );
                if let Some(at) = e.resume_at {
                    visit(at, shard, TimerKind::DrainBackoff);
                }
            }
            if let Some((_, until)) = s.pause {
                visit(until, shard, TimerKind::PauseExpiry);
            }
            for &i in &s.queue {
                visit(self.tickets[i].deadline, shard, TimerKind::Window);
            }
        }
    }

    /// When `tick` is next due. A timer at `u64::MAX` (a saturated deadline) is "never".
    pub(crate) fn next_timeout(&self) -> Option<u64> {
        let grace = self.shutdown.as_ref().and_then(|s| s.grace_ends);
        let mut next = grace.filter(|&at| at != u64::MAX);
        self.each_timer(|at, _, _| {
            if at != u64::MAX && next.is_none_or(|n| at < n) {
                next = Some(at);
            }
        });
        next
    }

    /// `Buffer::free_slots`.
    pub(crate) fn free_slots(&self) -> usize {
        self.size.saturating_sub(self.held())
    }

    /// The current size (a reconfiguration changes it).
    pub(crate) fn size(&self) -> usize {
        self.size
    }

    /// `Buffer::held_slots`.
    pub(crate) fn held_slots(&self) -> usize {
        self.held()
    }

    /// `Buffer::is_shut_down`.
    pub(crate) fn is_shut_down(&self) -> bool {
        self.shut_down
    }

    /// `Buffer::is_closed`.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed
    }

    /// `Buffer::input_stats`.
    pub(crate) fn input_stats(&self) -> InputStats {
        self.input_stats
    }

    /// `Buffer::ticket_status` of the `index`-th ticket issued.
    pub(crate) fn ticket_status(&self, index: usize) -> TicketStatus {
        match self.tickets[index].life {
            Life::Queued => TicketStatus::Queued,
            Life::RetryAfterWindow => TicketStatus::Retrying(ReleaseReason::Window),
            Life::RetryInDrain(reason) => TicketStatus::Retrying(ReleaseReason::Drain(reason)),
            Life::RetryAfterPause => TicketStatus::Retrying(ReleaseReason::PauseEnded),
            Life::Ended => TicketStatus::Ended,
        }
    }

    /// The model's episode, for messages.
    pub(crate) fn episode_debug(&self, shard: usize) -> String {
        format!("{:?}", self.shards[shard].episode)
    }

    /// `Buffer::episode`, field by field (the view is `#[non_exhaustive]`, so it is compared
    /// rather than built).
    pub(crate) fn same_episode(&self, shard: usize, core: Option<EpisodeView>) -> bool {
        let model = self.shards[shard].episode.as_ref().map(|e| {
            (
                e.start,
                e.start_term,
                e.start.saturating_add(self.max_failover_duration),
                e.resume_at,
                e.last_stop,
            )
        });
        let core = core.map(|v| {
            (
                v.started_at.as_nanos(),
                v.start_term,
                v.max_duration_deadline.as_nanos(),
                v.paused_until.map(|t| t.as_nanos()),
                v.stop_reason,
            )
        });
        model == core
    }

    /// `Buffer::shard_state`, `queued`, `draining_in_flight` and `highest_term` of a shard.
    pub(crate) fn shard_view(&self, shard: usize) -> (ShardState, usize, usize, Option<u64>) {
        let s = &self.shards[shard];
        (
            self.visible(shard),
            s.queue.len(),
            self.in_drain(shard),
            s.highest_term,
        )
    }

    /// `Buffer::shard_mode`.
    pub(crate) fn shard_mode(&self, shard: usize) -> Mode {
        self.shards[shard].mode
    }

    /// The highest term known for a shard (to pick the next stamp's term).
    pub(crate) fn highest_term(&self, shard: usize) -> Option<u64> {
        self.shards.get(shard).and_then(|s| s.highest_term)
    }

    /// Compares a shard's counters with the core's, field by field.
    pub(crate) fn compare_stats(&self, shard: usize, core: &ShardStats) -> Result<(), String> {
        // First only whether they agree, as they almost always do: this runs after every
        // input the exhaustive explorer tries.
        let mut agree = true;
        self.each_counter(shard, core, |_, model, core| agree &= model == core);
        if agree {
            return Ok(());
        }
        let mut diffs = Vec::new();
        self.each_counter(shard, core, |name, model, core| {
            if model != core {
                let name = name.join(" ");
                diffs.push(format!("{}: model {model}, core {core}", name.trim()));
            }
        });
        if diffs.is_empty() {
            Ok(())
        } else {
            Err(diffs.join("; "))
        }
    }

    /// Every counter of a shard, the model's beside the core's: `visit(name, model, core)`,
    /// the name in two static parts (a counter by reason: its name and the reason's).
    #[inline(always)]
    fn each_counter(
        &self,
        shard: usize,
        core: &ShardStats,
        mut visit: impl FnMut([&'static str; 2], u64, u64),
    ) {
        let c = &self.shards[shard].counters;
        visit(["starts", ""], c.starts, core.starts);
        for &r in StopReason::ALL {
            visit(["", r.as_str()], c.stops[r.index()], core.stops[r]);
        }
        visit(["buffered", ""], c.buffered, core.buffered);
        visit(
            ["buffered_dry_run", ""],
            c.buffered_dry_run,
            core.buffered_dry_run,
        );
        visit(["drained", ""], c.drained, core.drained);
        for &r in EvictReason::ALL {
            visit(
                ["evicted", r.as_str()],
                c.evicted[r.index()],
                core.evicted[r],
            );
        }
        for &r in SkipReason::ALL {
            visit(
                ["skipped", r.as_str()],
                c.skipped[r.index()],
                core.skipped[r],
            );
        }
        visit(["drains_paused", ""], c.drains_paused, core.drains_paused);
        visit(
            ["last_requests_in_flight_max", ""],
            c.in_flight_max,
            core.last_requests_in_flight_max,
        );
        visit(
            ["last_requests_dry_run_max", ""],
            c.dry_run_max,
            core.last_requests_dry_run_max,
        );
        visit(
            ["last_failover_duration", ""],
            nanos(c.last_failover_duration),
            nanos(core.last_failover_duration),
        );
        visit(
            ["last_failover_held_duration", ""],
            nanos(c.last_failover_held_duration),
            nanos(core.last_failover_held_duration),
        );
        visit(
            ["failover_duration_sum", ""],
            nanos(c.failover_duration_sum),
            nanos(core.failover_duration_sum),
        );
        visit(
            ["utilization_sum", ""],
            c.utilization_sum,
            core.utilization_sum,
        );
        visit(
            ["utilization_dry_run_sum", ""],
            c.utilization_dry_run_sum,
            core.utilization_dry_run_sum,
        );
        visit(
            ["bytes_held", ""],
            self.held_bytes(Some(shard)),
            core.bytes_held,
        );
        visit(["peak_bytes", ""], c.peak_bytes, core.peak_bytes);
        visit(
            ["pauses_started", ""],
            c.pauses_started,
            core.pauses_started,
        );
        for &r in PauseEnd::ALL {
            visit(
                ["pauses_ended", r.as_str()],
                c.pauses_ended[r.index()],
                core.pauses_ended[r],
            );
        }
    }
}

/// Queues an action that names no ticket.
trait PushOther {
    fn push_other(&mut self, action: Action);
}

impl PushOther for Vec<(Action, Option<usize>)> {
    fn push_other(&mut self, action: Action) {
        self.push((action, None));
    }
}
