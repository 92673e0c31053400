//! The engine: a discrete-event loop that plays a scenario's traffic against a real
//! [`Buffer`] under a simulated clock.

use core::cmp::Ordering;
use core::time::Duration;
use std::collections::{BinaryHeap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};

use failover_buffer::{
    Action, Admission, Buffer, BufferError, Config, FailoverCause, HealthStamp, Metric, PrimaryId,
    ShardId, Ticket, Timestamp, Verdict,
};
use slab::Slab;

use crate::error::SimError;
use crate::report::Report;
use crate::rng::Rng;
use crate::scenario::{Scenario, ServiceTime};

/// Why the application saw an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorCause {
    /// Every attempt was refused with a failover error (the retry policy gave up).
    Failover,
    /// The client's timeout passed while the request was held or in flight.
    Timeout,
    /// The buffer was full and the shard had nothing to evict
    /// ([`BufferError::BufferFull`]).
    BufferFull,
    /// The request was evicted from a full buffer for a newer one
    /// ([`BufferError::Evicted`]).
    Evicted,
    /// The shard was resharded away while the request waited
    /// ([`BufferError::ShardMissing`]).
    ShardMissing,
    /// A buffer error this simulator does not know yet (a newer core).
    Other,
}

/// How a request ended, as the application saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It succeeded.
    Ok,
    /// It failed.
    Error(ErrorCause),
}

/// One request's life, given to an [`Observer`] when it ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestEnd {
    /// The shard's index in [`Scenario::shards`].
    pub shard: usize,
    /// When it arrived.
    pub arrival: Duration,
    /// When the application got its answer.
    pub end: Duration,
    /// Its service time (each attempt takes this long).
    pub service: Duration,
    /// Attempts sent to the primary.
    pub attempts: u32,
    /// What the application saw.
    pub outcome: Outcome,
}

/// Watches a run as it goes: every request's end, and progress. Both methods do nothing by
/// default, and [`run`] uses an observer that does nothing, which the compiler removes.
pub trait Observer {
    /// A request ended.
    fn request_ended(&mut self, _end: &RequestEnd) {}
    /// Called every few thousand events with the simulated time reached.
    fn progress(&mut self, _now: Duration) {}
}

/// An observer that ignores everything.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoObserver;

impl Observer for NoObserver {}

/// Runs `scenario`'s traffic and failovers against a [`Buffer`] built from `config`, with
/// `seed` for the arrivals and service times, and reports what the application saw.
///
/// The same scenario and seed give the same traffic under every config, so reports are
/// comparable, and the same report every time. This is the entry point for benchmarks:
/// it does no I/O, and allocates only as the event heap, the request table and the latency
/// list grow. An invalid `config` is refused before anything runs.
///
/// ```
/// use failover_buffer_sim::{Scenario, enabled_vitess_defaults, run};
///
/// let scenario = Scenario::default_scenario();
/// let report = run(&scenario, &enabled_vitess_defaults(), 1)?;
/// assert_eq!(report.requests, report.ok + report.errors.total);
/// # Ok::<(), failover_buffer_sim::SimError>(())
/// ```
pub fn run(scenario: &Scenario, config: &Config, seed: u64) -> Result<Report, SimError> {
    run_observed(scenario, config, seed, &mut NoObserver)
}

/// [`run`], telling `observer` about every request's end and about progress.
pub fn run_observed<O: Observer>(
    scenario: &Scenario,
    config: &Config,
    seed: u64,
    observer: &mut O,
) -> Result<Report, SimError> {
    let mut sim = Sim::new(scenario, config, seed, observer)?;
    sim.run();
    Ok(sim.finish())
}

/// A scheduled event. The heap is a min-heap on `(at, seq)`; `seq` breaks ties in the order
/// events were scheduled, so a run never depends on anything but its inputs.
struct Event {
    /// `at << 64 | seq`: one comparison orders by time, then by scheduling order.
    key: u128,
    kind: Kind,
}

impl Event {
    fn at(&self) -> u64 {
        (self.key >> 64) as u64
    }
}

enum Kind {
    /// The next Poisson arrival of a shard.
    Arrival { shard: u32 },
    /// An arrival listed in the scenario.
    ListedArrival { shard: u32 },
    /// A request's attempt answered: refused with a failover error, or not.
    Done { req: u32, refused: bool },
    /// A request's client timeout passed while it was in flight.
    InFlightTimeout { req: u32 },
    /// A request's client timeout, armed while it was held under the ticket with this
    /// [`Ticket::id`] (unique for the buffer's life, so a stale timeout is recognised).
    HeldTimeout { req: u32, ticket: u64 },
    /// A request sends its next attempt after the retry delay.
    Send { req: u32 },
    /// The buffer's timer.
    Tick,
    /// The health stream delivers a stamp (an index into `Sim::stamps`).
    Health { stamp: u32 },
}

impl PartialEq for Event {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl Eq for Event {}

impl PartialOrd for Event {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Event {
    fn cmp(&self, other: &Self) -> Ordering {
        // Reversed: BinaryHeap is a max-heap and the earliest event must come out first.
        other.key.cmp(&self.key)
    }
}

/// A request between its arrival and its end.
struct Req {
    shard: u32,
    arrival: u64,
    deadline: u64,
    service: u64,
    attempts: u32,
    /// Held by the buffer under this ticket.
    held: Option<Ticket>,
    /// Released by the buffer (`Wake { Retry }`): the attempt in flight is its retry, and
    /// `retry_done` (or `cancel`) is owed when it ends.
    released: Option<Ticket>,
    /// Saw a failover error or was held: counted as affected.
    affected: bool,
}

struct ShardRt {
    id: ShardId,
    rng: Rng,
    /// Mean gap between Poisson arrivals in nanoseconds, or 0 for none.
    mean_gap: f64,
    /// `[from, until)` intervals when the primary refuses writes.
    refusing: Vec<(u64, u64)>,
    /// When the current episode first stopped buffering (for the drain time).
    stopped_at: Option<u64>,
}

const PROGRESS_EVERY: u64 = 1 << 16;

struct Sim<'a, O> {
    scenario: &'a Scenario,
    observer: &'a mut O,
    buffer: Buffer,
    shards: Vec<ShardRt>,
    heap: BinaryHeap<Event>,
    /// Client timeouts of held requests, apart from `heap`: during a long failover they are
    /// most of the pending events, and keeping them out keeps the hot heap small.
    timeouts: BinaryHeap<Event>,
    seq: u64,
    stamps: Vec<(u32, HealthStamp)>,
    now: u64,
    end_of_arrivals: u64,
    reqs: Slab<Req>,
    /// Held requests by [`Ticket::id`].
    held: HashMap<u64, u32, BuildHasherDefault<IdHasher>>,
    next_tick: Option<u64>,
    report: Report,
    zero_latency: u64,
    latencies: Vec<u64>,
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl<'a, O: Observer> Sim<'a, O> {
    fn new(
        scenario: &'a Scenario,
        config: &Config,
        seed: u64,
        observer: &'a mut O,
    ) -> Result<Self, SimError> {
        let mut buffer = Buffer::new(config.clone())?;
        let ids: Vec<ShardId> = scenario
            .shards
            .iter()
            .map(|s| buffer.register_shard(&s.keyspace, &s.shard))
            .collect();
        let mut sim = Sim {
            scenario,
            observer,
            shards: Vec::with_capacity(scenario.shards.len()),
            buffer,
            heap: BinaryHeap::new(),
            timeouts: BinaryHeap::new(),
            seq: 0,
            stamps: Vec::new(),
            now: 0,
            end_of_arrivals: nanos(scenario.duration),
            reqs: Slab::new(),
            held: HashMap::default(),
            next_tick: None,
            report: Report::default(),
            zero_latency: 0,
            latencies: Vec::new(),
        };
        for (i, spec) in scenario.shards.iter().enumerate() {
            let id = ids[i];
            let shard = i as u32;
            // The old primary (id 1, term 1) serves from the start; failover k promotes
            // primary k + 1 with term k + 1.
            sim.push_stamp(
                0,
                shard,
                HealthStamp {
                    primary: PrimaryId(1),
                    term: 1,
                    serving: true,
                },
            );
            let mut refusing = Vec::new();
            for (k, f) in spec.failovers.iter().enumerate() {
                let old = k as u64 + 1;
                let start = nanos(f.start);
                refusing.push((start, f.writable_at().map_or(u64::MAX, nanos)));
                if let Some(delay) = f.not_serving_delay {
                    sim.push_stamp(
                        start.saturating_add(nanos(delay)),
                        shard,
                        HealthStamp {
                            primary: PrimaryId(old),
                            term: old,
                            serving: false,
                        },
                    );
                }
                if let Some(at) = f.serving_stamp_at() {
                    sim.push_stamp(
                        nanos(at),
                        shard,
                        HealthStamp {
                            primary: PrimaryId(old + 1),
                            term: old + 1,
                            serving: true,
                        },
                    );
                }
            }
            for &at in &spec.arrivals {
                sim.push(nanos(at), Kind::ListedArrival { shard });
            }
            let mut rng = Rng::for_stream(seed, i as u64);
            let mean_gap = if spec.rate > 0.0 {
                1e9 / spec.rate
            } else {
                0.0
            };
            if mean_gap > 0.0 {
                let first = rng.exponential(mean_gap) as u64;
                if first < sim.end_of_arrivals {
                    sim.push(first, Kind::Arrival { shard });
                }
            }
            sim.shards.push(ShardRt {
                id,
                rng,
                mean_gap,
                refusing,
                stopped_at: None,
            });
        }
        Ok(sim)
    }

    fn push(&mut self, at: u64, kind: Kind) {
        self.seq += 1;
        self.heap.push(Event {
            key: (u128::from(at) << 64) | u128::from(self.seq),
            kind,
        });
    }

    /// The earliest event of the two heaps (the keys are unique, so there are no ties).
    fn pop(&mut self) -> Option<Event> {
        match (self.heap.peek(), self.timeouts.peek()) {
            (Some(a), Some(b)) if b.key < a.key => self.timeouts.pop(),
            (None, Some(_)) => self.timeouts.pop(),
            _ => self.heap.pop(),
        }
    }

    fn push_stamp(&mut self, at: u64, shard: u32, stamp: HealthStamp) {
        let index = self.stamps.len() as u32;
        self.stamps.push((shard, stamp));
        self.push(at, Kind::Health { stamp: index });
    }

    fn ts(&self) -> Timestamp {
        Timestamp::from_nanos(self.now)
    }

    fn run(&mut self) {
        let mut events = 0u64;
        while let Some(event) = self.pop() {
            let only_stale_timeouts_left = self.heap.is_empty()
                && self.held.is_empty()
                && matches!(event.kind, Kind::HeldTimeout { .. });
            if only_stale_timeouts_left {
                // Nobody is held, so this and every other pending client timeout would do
                // nothing; they must not stretch the run (and its timeline) to their time.
                break;
            }
            self.now = self.now.max(event.at());
            events += 1;
            if events % PROGRESS_EVERY == 0 {
                self.observer.progress(Duration::from_nanos(self.now));
            }
            self.handle(event.kind);
            self.drain_actions();
            let held = self.buffer.held_slots() as u64;
            if held > self.report.peak_slots {
                self.report.peak_slots = held;
            }
            if let Some(at) = self.buffer.poll_timeout() {
                let at = at.as_nanos().max(self.now);
                if self.next_tick.is_none_or(|t| at < t) {
                    self.next_tick = Some(at);
                    self.push(at, Kind::Tick);
                }
            }
        }
        self.report.events = events;
        self.report.simulated_ns = self.now;
    }

    fn handle(&mut self, kind: Kind) {
        match kind {
            Kind::Arrival { shard } => {
                let rt = &mut self.shards[shard as usize];
                let gap = rt.rng.exponential(rt.mean_gap) as u64;
                let next = self.now.saturating_add(gap.max(1));
                if next < self.end_of_arrivals {
                    self.push(next, Kind::Arrival { shard });
                }
                self.arrive(shard);
            }
            Kind::ListedArrival { shard } => self.arrive(shard),
            Kind::Done { req, refused } => self.done(req, refused),
            Kind::InFlightTimeout { req } => {
                if let Some(ticket) = self.reqs[req as usize].released.take() {
                    // A released request's retry ends with its client: a cancel counts as
                    // retry done.
                    let _ = self.buffer.cancel(self.ts(), ticket);
                }
                self.end(req, Outcome::Error(ErrorCause::Timeout));
            }
            Kind::HeldTimeout { req, ticket } => {
                let held = self
                    .reqs
                    .get(req as usize)
                    .and_then(|r| r.held)
                    .filter(|t| t.id() == ticket);
                if let Some(ticket) = held {
                    let _ = self.buffer.cancel(self.ts(), ticket);
                    self.held.remove(&ticket.id());
                    self.reqs[req as usize].held = None;
                    self.end(req, Outcome::Error(ErrorCause::Timeout));
                }
            }
            Kind::Send { req } => self.send(req),
            Kind::Tick => {
                if self.next_tick == Some(self.now) {
                    self.next_tick = None;
                }
                self.buffer.tick(self.ts());
            }
            Kind::Health { stamp } => {
                let (shard, stamp) = self.stamps[stamp as usize];
                let id = self.shards[shard as usize].id;
                // Stamps are generated in term order, so none is stale; a refusal would be
                // counted in the buffer's input stats and changes nothing.
                let _ = self.buffer.health(self.ts(), id, stamp);
            }
        }
    }

    fn arrive(&mut self, shard: u32) {
        let service = match self.scenario.service {
            ServiceTime::Constant(d) => nanos(d),
            ServiceTime::Uniform { min, max } => {
                let (min, max) = (nanos(min), nanos(max));
                let span = max - min;
                let draw = self.shards[shard as usize].rng.next_u64();
                min + if span == u64::MAX {
                    draw
                } else {
                    draw % (span + 1)
                }
            }
            ServiceTime::Exponential { mean } => self.shards[shard as usize]
                .rng
                .exponential(nanos(mean) as f64)
                as u64,
        };
        self.report.requests += 1;
        let req = self.reqs.insert(Req {
            shard,
            arrival: self.now,
            deadline: self.now.saturating_add(nanos(self.scenario.client.timeout)),
            service,
            attempts: 0,
            held: None,
            released: None,
            affected: false,
        }) as u32;
        let id = self.shards[shard as usize].id;
        match self.buffer.request(self.ts(), id, None) {
            Ok(admission) => self.admit(req, admission),
            // The shard was registered with this buffer, so it is known.
            Err(_) => self.send(req),
        }
    }

    /// Carries out the buffer's answer to a request.
    fn admit(&mut self, req: u32, admission: Admission) {
        match admission {
            Admission::Proceed => {
                let delay = nanos(self.scenario.client.retry_delay);
                if self.reqs[req as usize].attempts > 0 && delay > 0 {
                    self.push(self.now.saturating_add(delay), Kind::Send { req });
                } else {
                    self.send(req);
                }
            }
            Admission::Wait(ticket) => {
                let r = &mut self.reqs[req as usize];
                r.held = Some(ticket);
                r.affected = true;
                let deadline = r.deadline;
                self.held.insert(ticket.id(), req);
                self.report.timeline.queued(self.now, self.held.len());
                let ticket = ticket.id();
                self.seq += 1;
                self.timeouts.push(Event {
                    key: (u128::from(deadline.max(self.now)) << 64) | u128::from(self.seq),
                    kind: Kind::HeldTimeout { req, ticket },
                });
            }
            Admission::Fail(error) => self.end(req, Outcome::Error(buffer_error(error))),
        }
    }

    /// Sends an attempt to the primary, which refuses it if it is failing over right now.
    fn send(&mut self, req: u32) {
        let now = self.now;
        let r = &mut self.reqs[req as usize];
        r.attempts += 1;
        self.report.attempts += 1;
        let refused = self.shards[r.shard as usize]
            .refusing
            .iter()
            .any(|&(from, until)| from <= now && now < until);
        let answer = now.saturating_add(r.service);
        if answer > r.deadline {
            let deadline = r.deadline.max(now);
            self.push(deadline, Kind::InFlightTimeout { req });
        } else {
            self.push(answer, Kind::Done { req, refused });
        }
    }

    fn done(&mut self, req: u32, refused: bool) {
        let released = self.reqs[req as usize].released.take();
        let r = &mut self.reqs[req as usize];
        let again = refused && r.attempts < self.scenario.client.attempts;
        if refused {
            r.affected = true;
        }
        if !again {
            if let Some(ticket) = released {
                let _ = self.buffer.retry_done(self.ts(), ticket);
            }
            let outcome = match refused {
                false => Outcome::Ok,
                true => Outcome::Error(ErrorCause::Failover),
            };
            self.end(req, outcome);
            return;
        }
        let id = self.shards[r.shard as usize].id;
        let cause = FailoverCause::Reparent;
        let answer = match released {
            // A released request refused again tells the buffer its drain came too early,
            // even if that drain has just finished with this very retry.
            Some(ticket) => self.buffer.retry_failed(self.ts(), ticket, cause),
            None => self.buffer.request(self.ts(), id, Some(cause)),
        };
        match answer {
            Ok(admission) => self.admit(req, admission),
            Err(_) => self.send(req),
        }
    }

    fn drain_actions(&mut self) {
        while let Some(action) = self.buffer.poll_action() {
            match action {
                Action::Wake { ticket, verdict } => {
                    let Some(req) = self.held.remove(&ticket.id()) else {
                        continue;
                    };
                    self.report.timeline.queued(self.now, self.held.len());
                    self.reqs[req as usize].held = None;
                    match verdict {
                        Verdict::Retry => {
                            self.report.timeline.released(self.now);
                            self.reqs[req as usize].released = Some(ticket);
                            self.send(req);
                        }
                        Verdict::Fail(error) => {
                            self.end(req, Outcome::Error(buffer_error(error)));
                        }
                    }
                }
                Action::Metric(Metric::BufferingStopped { shard, .. }) => {
                    if let Some(rt) = self.shards.get_mut(shard.index()) {
                        rt.stopped_at.get_or_insert(self.now);
                    }
                }
                Action::Metric(Metric::DrainFinished { shard, .. }) => {
                    if let Some(rt) = self.shards.get_mut(shard.index()) {
                        if let Some(from) = rt.stopped_at.take() {
                            let took = self.now - from;
                            self.report.drain_time_ns = self.report.drain_time_ns.max(took);
                        }
                    }
                }
                _ => {}
            }
        }
    }

    fn end(&mut self, req: u32, outcome: Outcome) {
        let r = self.reqs.remove(req as usize);
        match outcome {
            Outcome::Ok => {
                self.report.ok += 1;
                let added = (self.now - r.arrival).saturating_sub(r.service);
                if added == 0 {
                    self.zero_latency += 1;
                } else {
                    self.latencies.push(added);
                }
            }
            Outcome::Error(cause) => {
                self.report.errors.add(cause);
                self.report.timeline.error(self.now);
            }
        }
        if r.affected {
            self.report.affected += 1;
        }
        self.observer.request_ended(&RequestEnd {
            shard: r.shard as usize,
            arrival: Duration::from_nanos(r.arrival),
            end: Duration::from_nanos(self.now),
            service: Duration::from_nanos(r.service),
            attempts: r.attempts,
            outcome,
        });
    }

    fn finish(mut self) -> Report {
        self.report.added_latency.p50_ns = self.percentile(50);
        self.report.added_latency.p99_ns = self.percentile(99);
        self.report.added_latency.max_ns = self.latencies.iter().copied().max().unwrap_or(0);
        for rt in &self.shards {
            if let Some(stats) = self.buffer.shard_stats(rt.id) {
                self.report.buffer.add(stats);
            }
        }
        self.report.timeline.finish(self.now);
        self.report
    }

    /// The nearest-rank percentile of the added latency of successful requests.
    fn percentile(&mut self, p: u64) -> u64 {
        let n = self.zero_latency + self.latencies.len() as u64;
        if n == 0 {
            return 0;
        }
        let rank = (n * p).div_ceil(100).max(1);
        if rank <= self.zero_latency {
            return 0;
        }
        let index = (rank - self.zero_latency - 1) as usize;
        *self.latencies.select_nth_unstable(index).1
    }
}

#[allow(
    unreachable_patterns,
    reason = "the core's enums become #[non_exhaustive]; until then the wildcard is unreachable"
)]
fn buffer_error(error: BufferError) -> ErrorCause {
    match error {
        BufferError::BufferFull => ErrorCause::BufferFull,
        BufferError::Evicted => ErrorCause::Evicted,
        BufferError::ShardMissing => ErrorCause::ShardMissing,
        _ => ErrorCause::Other,
    }
}

/// A hasher for ticket ids, which are distinct integers already: one multiply spreads them
/// over the table (the default SipHash guards against adversarial keys, which a simulation
/// does not have, at several times the cost). Only lookups use it; nothing is iterated.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u64(&mut self, id: u64) {
        self.0 = id.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}
