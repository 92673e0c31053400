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

use failover_buffer::{
    Action, BufferError, Config, EvictReason, FailoverCause, HealthStamp, InputError, InputStats,
    Metric, Mode, PrimaryId, Reason, ShardId, ShardState, ShardStats, SkipReason, StopReason,
    Ticket, TicketError, TicketStatus, TimerKind, TopologyEvent, Verdict,
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
    /// Woken with `Retry` by a drain: counts against `drain_concurrency`.
    RetryInDrain,
    Ended,
}

#[derive(Clone, Debug)]
struct ModelTicket {
    shard: usize,
    /// Enqueue time + window, in nanoseconds.
    deadline: u64,
    life: Life,
    /// The value the core gave it.
    handle: Option<Ticket>,
}

/// Per-shard counters, mirroring [`ShardStats`] field by field (reasons indexed by
/// [`Reason::index`]).
#[derive(Clone, Debug, Default)]
struct Counters {
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
    failover_duration_sum: Duration,
    utilization_sum: u64,
    utilization_dry_run_sum: u64,
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
    /// What released requests are told.
    verdict: Verdict,
    /// When the drain last started (for `DrainFinished`'s duration).
    drain_start: u64,
    /// Set while a paused drain waits: when it resumes by itself.
    resume_at: Option<u64>,
}

#[derive(Clone, Debug)]
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
}

/// The reference model of a whole buffer.
#[derive(Clone, Debug)]
pub(crate) struct Model {
    size: usize,
    window: u64,
    max_failover_duration: u64,
    min_time_between_failovers: u64,
    drain_concurrency: usize,
    drain_backoff: u64,
    now: u64,
    shut_down: bool,
    closed: bool,
    shards: Vec<ModelShard>,
    tickets: Vec<ModelTicket>,
    input_stats: InputStats,
    actions: Vec<Action>,
}

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
            })
            .collect();
        Model {
            size: config.size,
            window: nanos(config.window),
            max_failover_duration: nanos(config.max_failover_duration),
            min_time_between_failovers: nanos(config.min_time_between_failovers),
            drain_concurrency: config.drain_concurrency,
            drain_backoff: nanos(config.drain_backoff),
            now: 0,
            shut_down: false,
            closed: false,
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

    /// The actions queued since the last call, oldest first.
    pub(crate) fn take_actions(&mut self) -> Vec<Action> {
        std::mem::take(&mut self.actions)
    }

    // ----- inputs -----

    /// `Buffer::request`.
    pub(crate) fn request(
        &mut self,
        now: u64,
        shard: usize,
        cause: Option<FailoverCause>,
    ) -> Result<Answer, InputError> {
        let now = self.observe(now);
        if shard >= self.shards.len() {
            self.input_stats.unknown_shards += 1;
            return Err(InputError::UnknownShard);
        }
        let state = self.shards[shard].state;
        // A first attempt only ever waits on a buffering shard.
        let Some(cause) = cause else {
            if state != ShardState::Buffering {
                return Ok(Answer::Proceed);
            }
            return Ok(self.hold(now, shard, false));
        };
        Ok(self.failover_request(now, shard, cause, false))
    }

    /// `Buffer::retry_failed`: the retry is done, then the request comes back with its
    /// cause, and may call off a drain even if the drain has just finished.
    pub(crate) fn retry_failed(
        &mut self,
        now: u64,
        ticket: Ticket,
        index: Option<usize>,
        cause: FailoverCause,
    ) -> Result<Answer, InputError> {
        let now = self.observe(now);
        let shard = self.end(now, ticket, index, true)?;
        let answer = self.failover_request(now, shard, cause, true);
        self.settle();
        Ok(answer)
    }

    /// A request with a failover cause on a registered shard.
    fn failover_request(
        &mut self,
        now: u64,
        shard: usize,
        cause: FailoverCause,
        after_retry: bool,
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
        match state {
            ShardState::Buffering => self.hold(now, shard, false),
            ShardState::Idle if after_retry && self.may_reopen(now, shard) => {
                // A released request failed again after its drain finished: the end was
                // seen too early, so the episode's drain is called off after the fact.
                self.pause(now, shard);
                self.hold(now, shard, true)
            }
            ShardState::Idle => {
                let s = &self.shards[shard];
                let min = self.min_time_between_failovers;
                let too_recent = |at: Option<u64>| at.is_some_and(|t| now.saturating_sub(t) < min);
                let (failover_too_recent, reparent_too_recent) =
                    (too_recent(s.last_end), too_recent(s.last_reparent));
                if failover_too_recent {
                    self.skip(shard, SkipReason::LastFailoverTooRecent);
                    return Answer::Proceed;
                }
                if reparent_too_recent {
                    self.skip(shard, SkipReason::LastReparentTooRecent);
                    return Answer::Proceed;
                }
                self.start(now, shard, cause);
                self.hold(now, shard, false)
            }
            ShardState::Draining => {
                let s = &self.shards[shard];
                let start = s.episode.as_ref().map_or(0, |e| e.start);
                let young = now < start.saturating_add(self.max_failover_duration);
                if s.mode != Mode::Enabled || !young {
                    return Answer::Proceed;
                }
                self.pause(now, shard);
                self.hold(now, shard, true)
            }
        }
    }

    /// Drain back-off: the shard buffers again in the same episode, the entries not yet
    /// released stay queued, and those past their window leave at once.
    fn pause(&mut self, now: u64, shard: usize) {
        let s = &mut self.shards[shard];
        s.state = ShardState::Buffering;
        s.counters.drains_paused += 1;
        if let Some(e) = s.episode.as_mut() {
            e.resume_at = Some(now.saturating_add(self.drain_backoff));
        }
        self.expire_window(now, shard);
    }

    /// Whether a retry failing after its drain finished may reopen the episode: it ended
    /// because the failover seemed over (not resharded away, not timed out, not shut down)
    /// and is younger than max failover duration.
    fn may_reopen(&self, now: u64, shard: usize) -> bool {
        let s = &self.shards[shard];
        let Some(e) = s.episode.as_ref() else {
            return false;
        };
        let seemed_over = matches!(
            e.stopped,
            Some(StopReason::NewPrimarySeen | StopReason::MoveTablesSwitchedTraffic)
        );
        s.mode == Mode::Enabled
            && seemed_over
            && now < e.start.saturating_add(self.max_failover_duration)
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
                if let Some(e) = self.shards[shard].episode.as_mut() {
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
        for shard in 0..self.shards.len() {
            if self.shards[shard].state != ShardState::Buffering {
                continue;
            }
            let Some(e) = self.shards[shard].episode.clone() else {
                continue;
            };
            if now >= e.start.saturating_add(self.max_failover_duration) {
                self.stop(now, shard, StopReason::MaxDurationExceeded);
            } else if e.resume_at.is_some_and(|at| now >= at) {
                // Not a new stop: `stop` counts only the first of an episode.
                self.stop(now, shard, StopReason::NewPrimarySeen);
            } else {
                self.expire_window(now, shard);
            }
        }
        self.settle();
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
        self.end(now, ticket, index, retry_done)?;
        self.settle();
        Ok(())
    }

    /// Ends a live ticket and returns its shard; `retry_done` refuses a queued one.
    fn end(
        &mut self,
        now: u64,
        ticket: Ticket,
        index: Option<usize>,
        retry_done: bool,
    ) -> Result<usize, InputError> {
        let live = index.filter(|&i| self.tickets[i].life != Life::Ended);
        let Some(i) = live else {
            self.input_stats.stale_tickets += 1;
            return Err(InputError::Ticket(TicketError::Stale(ticket)));
        };
        let shard = self.tickets[i].shard;
        let draining = self.shards[shard].state == ShardState::Draining;
        match self.tickets[i].life {
            Life::Queued if retry_done => {
                self.input_stats.tickets_not_released += 1;
                return Err(InputError::Ticket(TicketError::NotReleased(ticket)));
            }
            Life::Queued => {
                self.shards[shard].queue.retain(|&q| q != i);
                if draining {
                    self.shards[shard].counters.drained += 1;
                } else {
                    self.shards[shard].counters.evicted[EvictReason::ContextDone.index()] += 1;
                }
            }
            Life::RetryAfterWindow | Life::RetryInDrain | Life::Ended => {}
        }
        self.tickets[i].life = Life::Ended;
        if draining {
            self.drain(now, shard);
        }
        Ok(shard)
    }

    /// `Buffer::shutdown`.
    pub(crate) fn shutdown(&mut self, now: u64) {
        let now = self.observe(now);
        if self.shut_down {
            return;
        }
        self.shut_down = true;
        for shard in 0..self.shards.len() {
            self.stop(now, shard, StopReason::Shutdown);
        }
        self.settle();
    }

    // ----- rules -----

    fn observe(&mut self, now: u64) -> u64 {
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

    fn in_drain(&self, shard: usize) -> usize {
        self.tickets
            .iter()
            .filter(|t| t.shard == shard && t.life == Life::RetryInDrain)
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
        s.episode = Some(Episode {
            start: now,
            start_term: s.highest_term,
            saw_not_serving: false,
            stopped: None,
            verdict: Verdict::Retry,
            drain_start: now,
            resume_at: None,
        });
        s.counters.starts += 1;
        s.counters.in_flight_max = 0;
        s.counters.dry_run_max = 0;
        self.actions.push(Action::FailoverStarted {
            shard: ShardId::from_index(shard as u32),
            cause,
        });
    }

    /// A request on a buffering shard: counted on a dry run, queued otherwise.
    fn hold(&mut self, now: u64, shard: usize, paused: bool) -> Answer {
        if self.shards[shard].mode == Mode::DryRun {
            let c = &mut self.shards[shard].counters;
            c.dry_run_max += 1;
            c.buffered_dry_run += 1;
            return Answer::Proceed;
        }
        let answer = self.enqueue(now, shard);
        if paused {
            self.actions.push(Action::DrainPaused {
                shard: ShardId::from_index(shard as u32),
                queued: self.shards[shard].queue.len(),
            });
        }
        answer
    }

    fn enqueue(&mut self, now: u64, shard: usize) -> Answer {
        if self.held() >= self.size {
            if self.shards[shard].queue.is_empty() {
                self.skip(shard, SkipReason::BufferFull);
                return Answer::Fail(BufferError::BufferFull);
            }
            let victim = self.shards[shard].queue.remove(0);
            self.tickets[victim].life = Life::Ended;
            self.shards[shard].counters.evicted[EvictReason::BufferFull.index()] += 1;
            self.actions.push(Action::Wake {
                ticket: self.handle(victim),
                verdict: Verdict::Fail(BufferError::Evicted),
            });
        }
        let index = self.tickets.len();
        self.tickets.push(ModelTicket {
            shard,
            deadline: now.saturating_add(self.window),
            life: Life::Queued,
            handle: None,
        });
        let s = &mut self.shards[shard];
        s.queue.push(index);
        s.counters.buffered += 1;
        s.counters.in_flight_max = s.counters.in_flight_max.max(s.queue.len() as u64);
        Answer::Wait(index)
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
            self.shards[shard].counters.evicted[EvictReason::WindowExceeded.index()] += 1;
            self.actions.push(Action::Wake {
                ticket: self.handle(i),
                verdict: Verdict::Retry,
            });
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
            self.actions.push(Action::Metric(Metric::BufferingStopped {
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
        e.resume_at = None;
        e.drain_start = now;
        s.last_end = Some(now);
        s.state = ShardState::Draining;
        self.actions.push(Action::StartDrain {
            shard: ShardId::from_index(shard as u32),
            queued: s.queue.len(),
        });
        self.drain(now, shard);
    }

    /// Releases queued tickets, oldest first, while fewer than `drain_concurrency` drain
    /// retries run; goes idle when nothing is queued or retrying in the drain.
    fn drain(&mut self, now: u64, shard: usize) {
        let verdict = self.shards[shard]
            .episode
            .as_ref()
            .map_or(Verdict::Retry, |e| e.verdict);
        // A failure never reaches the primary, so it takes no share of the concurrency.
        let room = |m: &Model| verdict != Verdict::Retry || m.in_drain(shard) < m.drain_concurrency;
        while room(self) && !self.shards[shard].queue.is_empty() {
            let i = self.shards[shard].queue.remove(0);
            self.shards[shard].counters.drained += 1;
            self.tickets[i].life = match verdict {
                Verdict::Retry => Life::RetryInDrain,
                Verdict::Fail(_) => Life::Ended,
            };
            self.actions.push(Action::Wake {
                ticket: self.handle(i),
                verdict,
            });
        }
        if self.shards[shard].queue.is_empty() && self.in_drain(shard) == 0 {
            let s = &mut self.shards[shard];
            s.state = ShardState::Idle;
            let drain_start = s.episode.as_ref().map_or(now, |e| e.drain_start);
            self.actions.push(Action::Metric(Metric::DrainFinished {
                shard: ShardId::from_index(shard as u32),
                duration: Duration::from_nanos(now.saturating_sub(drain_start)),
            }));
        }
    }

    fn settle(&mut self) {
        if self.shut_down && !self.closed && self.held() == 0 {
            self.closed = true;
            self.actions.push(Action::Closed);
        }
    }

    // ----- observations -----

    /// The latest time seen, in nanoseconds.
    pub(crate) fn now(&self) -> u64 {
        self.now
    }

    /// Every timer armed: `(when, shard, why)`. Only buffering shards have timers.
    pub(crate) fn timers(&self) -> Vec<(u64, usize, TimerKind)> {
        let mut timers = Vec::new();
        for (shard, s) in self.shards.iter().enumerate() {
            if s.state != ShardState::Buffering {
                continue;
            }
            let Some(e) = s.episode.as_ref() else {
                continue;
            };
            timers.push((
                e.start.saturating_add(self.max_failover_duration),
                shard,
                TimerKind::MaxFailoverDuration,
            ));
            if let Some(at) = e.resume_at {
                timers.push((at, shard, TimerKind::DrainBackoff));
            }
            for &i in &s.queue {
                timers.push((self.tickets[i].deadline, shard, TimerKind::Window));
            }
        }
        timers
    }

    /// When `tick` is next due.
    pub(crate) fn next_timeout(&self) -> Option<u64> {
        self.timers().into_iter().map(|(at, _, _)| at).min()
    }

    /// `Buffer::free_slots`.
    pub(crate) fn free_slots(&self) -> usize {
        self.size - self.held()
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
    pub(crate) fn ticket_status(&self, index: usize) -> Option<TicketStatus> {
        match self.tickets[index].life {
            Life::Queued => Some(TicketStatus::Queued),
            Life::RetryAfterWindow => Some(TicketStatus::RetryingAfterWindow),
            Life::RetryInDrain => Some(TicketStatus::RetryingInDrain),
            Life::Ended => None,
        }
    }

    /// `Buffer::shard_state`, `queued`, `draining_in_flight` and `highest_term` of a shard.
    pub(crate) fn shard_view(&self, shard: usize) -> (ShardState, usize, usize, Option<u64>) {
        let s = &self.shards[shard];
        (s.state, s.queue.len(), self.in_drain(shard), s.highest_term)
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
        let c = &self.shards[shard].counters;
        let by = |counts: &[u64; 5], i: usize| counts[i];
        let mut diffs = Vec::new();
        let mut check = |name: &str, model: u64, core: u64| {
            if model != core {
                diffs.push(format!("{name}: model {model}, core {core}"));
            }
        };
        check("starts", c.starts, core.starts);
        for &r in StopReason::ALL {
            check(r.as_str(), by(&c.stops, r.index()), core.stops[r]);
        }
        check("buffered", c.buffered, core.buffered);
        check(
            "buffered_dry_run",
            c.buffered_dry_run,
            core.buffered_dry_run,
        );
        check("drained", c.drained, core.drained);
        for &r in EvictReason::ALL {
            check(
                &format!("evicted {r}"),
                by(&c.evicted, r.index()),
                core.evicted[r],
            );
        }
        for &r in SkipReason::ALL {
            check(
                &format!("skipped {r}"),
                by(&c.skipped, r.index()),
                core.skipped[r],
            );
        }
        check("drains_paused", c.drains_paused, core.drains_paused);
        check(
            "last_requests_in_flight_max",
            c.in_flight_max,
            core.last_requests_in_flight_max,
        );
        check(
            "last_requests_dry_run_max",
            c.dry_run_max,
            core.last_requests_dry_run_max,
        );
        check(
            "last_failover_duration",
            nanos(c.last_failover_duration),
            nanos(core.last_failover_duration),
        );
        check(
            "failover_duration_sum",
            nanos(c.failover_duration_sum),
            nanos(core.failover_duration_sum),
        );
        check("utilization_sum", c.utilization_sum, core.utilization_sum);
        check(
            "utilization_dry_run_sum",
            c.utilization_dry_run_sum,
            core.utilization_dry_run_sum,
        );
        if diffs.is_empty() {
            Ok(())
        } else {
            Err(diffs.join("; "))
        }
    }
}
