//! The engine: a discrete-event loop that plays a scenario's traffic against a real
//! [`Buffer`] under a simulated clock.

use core::time::Duration;
use std::collections::binary_heap::PeekMut;
use std::collections::{BinaryHeap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};

use failover_buffer::ShutdownPhase;
use failover_buffer::WaitHistograms;
use failover_buffer::drain::DrainAction;
use failover_buffer::{
    Action, Admission, Buffer, BufferError, Config, FailoverCause, HealthStamp, Metric, PauseEnd,
    PauseScope, PrimaryId, ShardId, Ticket, Timestamp, TopologyEvent, Verdict,
};
use slab::Slab;

mod event;
mod view;

use event::{Event, Kind, NextArrival, Source};
use view::{Phase, Sees, View, failover_phases};

use crate::error::SimError;
use crate::input::TraceReader;
use crate::report::{PauseOutcome, Report, ShutdownOutcome, Wait};
use crate::rng::Rng;
use crate::scenario::{Backoff, Jitter, Scenario, ServiceTime, TopologyKind};

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
    /// ([`BufferError::ShardMissing`]). The simulated router re-plans such a request to
    /// the new shards instead, so this stays 0.
    ShardMissing,
    /// A buffer error this simulator does not know yet (a newer core).
    Other,
    /// The request was in flight on a primary that died ([`Failover::killed`]) and may not
    /// be replayed ([`Traffic::non_idempotent`]): it may or may not have run, and the
    /// router says so instead of retrying it (the Redis router's replay rule).
    ///
    /// [`Failover::killed`]: crate::scenario::Failover::killed
    /// [`Traffic::non_idempotent`]: crate::scenario::Traffic::non_idempotent
    Uncertain,
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
    /// A request ended. It is called once the request's fate is settled: for a request
    /// served at once by a primary that is up, that is at its arrival (with its `end` in
    /// the near future), so calls are not in order of `end`.
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
    sim.finish()
}

/// A request between its arrival and its end.
struct Req {
    shard: u32,
    router: u32,
    arrival: u64,
    deadline: u64,
    service: u64,
    attempts: u32,
    /// Held by the buffer under this ticket.
    held: Option<Ticket>,
    /// The serial of its latest hold (see [`Kind::HeldTimeout`]).
    hold: u64,
    /// Released by the buffer (`Wake { Retry }`): the attempt in flight is its retry, and
    /// `retry_done` (or `cancel`) is owed when it ends.
    released: Option<Ticket>,
    /// Saw a failover error or was held: counted as affected.
    affected: bool,
    /// Bytes, from a trace's `size` column.
    size: u64,
    /// The closed-loop connection that sent it, or [`NO_CONNECTION`].
    conn: u32,
    /// The router may not replay it once sent ([`Traffic::non_idempotent`]).
    ///
    /// [`Traffic::non_idempotent`]: crate::scenario::Traffic::non_idempotent
    non_idempotent: bool,
}

/// [`Req::conn`] of an open-loop request.
const NO_CONNECTION: u32 = u32::MAX;

struct ShardRt {
    rng: Rng,
    /// For the retry jitter, a stream of its own so the traffic stays the same.
    retry_rng: Rng,
    /// Mean gap between Poisson arrivals in nanoseconds, or 0 for none.
    mean_gap: f64,
    service: ServiceTime,
    /// Arrivals so far, for the round-robin over routers.
    arrivals: u64,
    /// For the non-idempotent draw, a stream of its own so the traffic stays the same.
    kind_rng: Rng,
    /// The instants its primary is killed ([`Failover::killed`]), in order.
    ///
    /// [`Failover::killed`]: crate::scenario::Failover::killed
    kills: Vec<u64>,
    /// The first of `kills` not yet in the past (sends only move forward in time).
    next_kill: usize,
}

impl ShardRt {
    /// When an attempt sent at `now` and answered at `answer` is cut off by its primary's
    /// death, if it is: a kill strictly between the two. (An attempt sent at the kill or
    /// after meets the failover itself.)
    fn killed_between(&mut self, now: u64, answer: u64) -> Option<u64> {
        while self.kills.get(self.next_kill).is_some_and(|&k| k <= now) {
            self.next_kill += 1;
        }
        self.kills
            .get(self.next_kill)
            .copied()
            .filter(|&k| k < answer)
    }
}

/// Closed-loop traffic: the connections and how they pick shards.
struct Connections {
    /// From an answer to the connection's next request.
    think: u64,
    /// The shards' weights, cumulative (the last is the total); empty for equal shares.
    cumulative: Vec<f64>,
    /// For the shard draws.
    rng: Rng,
}

/// One router: its own buffer, its held requests, its timer and its view of each shard.
struct Router {
    buffer: Buffer,
    /// Shard ids in this router's buffer, by shard index.
    ids: Vec<ShardId>,
    /// Held requests by [`Ticket::id`].
    held: HashMap<u64, u32, BuildHasherDefault<IdHasher>>,
    next_tick: Option<u64>,
    /// By shard index.
    views: Vec<View>,
    /// By shard index: when the current episode first stopped buffering (for the drain
    /// time).
    stopped_at: Vec<Option<u64>>,
    /// Bytes of the requests queued here now.
    held_bytes: u64,
}

const PROGRESS_EVERY: u64 = 1 << 16;

/// Random streams apart from the shards' traffic streams (which are 0, 1, ..).
const RETRY_STREAM: u64 = 1 << 40;
const HEALTH_STREAM: u64 = 2 << 40;
const KIND_STREAM: u64 = 3 << 40;
const CONNECTION_STREAM: u64 = 4 << 40;

struct Sim<'a, O> {
    scenario: &'a Scenario,
    observer: &'a mut O,
    routers: Vec<Router>,
    shards: Vec<ShardRt>,
    heap: BinaryHeap<Event>,
    /// The shards' next Poisson arrivals.
    arrivals: BinaryHeap<NextArrival>,
    /// Closed-loop traffic, if the scenario has connections.
    connections: Option<Connections>,
    /// Client timeouts of held requests, apart from `heap`: during a long failover they are
    /// most of the pending events, and keeping them out keeps the hot heap small.
    timeouts: BinaryHeap<Event>,
    seq: u64,
    stamps: Vec<(u32, HealthStamp)>,
    now: u64,
    end_of_arrivals: u64,
    reqs: Slab<Req>,
    /// Requests held by all routers.
    held_total: usize,
    /// The trace being replayed, if any.
    trace: Option<TraceReader>,
    /// The first bad trace row: the run stops there.
    failed: Option<SimError>,
    /// Holds so far, over every router (see [`Kind::HeldTimeout`]).
    holds: u64,
    /// Requests ended at arrival (see `arrive`): their answers count as events.
    fast_events: u64,
    /// The latest answer of a request ended at arrival.
    last_fast_answer: u64,
    report: Report,
    /// The `[[pause]]` tables: the shard's index (`None`: every shard) and the bound.
    pauses: Vec<(Option<usize>, Duration)>,
    zero_latency: u64,
    latencies: Vec<u64>,
}

/// A scenario built in code whose `[[pause]]` names a shard it does not have (a file is
/// checked when it is read).
fn unknown_pause_shard(name: &str) -> SimError {
    SimError::Scenario(crate::ScenarioError::Invalid {
        path: "scenario".to_string(),
        error: Box::new(<toml::de::Error as serde::de::Error>::custom(format!(
            "pause.shard: {name:?} is not in the scenario"
        ))),
    })
}

/// A duration in nanoseconds, saturating ("never" for an absurdly long one).
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
        let n_routers = scenario.routers.max(1) as usize;
        let mut routers = Vec::with_capacity(n_routers);
        for _ in 0..n_routers {
            let mut buffer = Buffer::new(config.clone())?;
            let ids = scenario
                .shards
                .iter()
                .map(|s| buffer.register_shard(&s.keyspace, &s.shard))
                .collect();
            routers.push(Router {
                buffer,
                ids,
                held: HashMap::default(),
                next_tick: None,
                views: Vec::with_capacity(scenario.shards.len()),
                stopped_at: vec![None; scenario.shards.len()],
                held_bytes: 0,
            });
        }
        let mut sim = Sim {
            scenario,
            observer,
            routers,
            shards: Vec::with_capacity(scenario.shards.len()),
            heap: BinaryHeap::new(),
            arrivals: BinaryHeap::with_capacity(scenario.shards.len()),
            connections: None,
            timeouts: BinaryHeap::new(),
            seq: 0,
            stamps: Vec::new(),
            now: 0,
            end_of_arrivals: nanos(scenario.duration),
            reqs: Slab::new(),
            held_total: 0,
            trace: None,
            failed: None,
            holds: 0,
            fast_events: 0,
            last_fast_answer: 0,
            report: Report::default(),
            pauses: Vec::new(),
            zero_latency: 0,
            latencies: Vec::new(),
        };
        // Which router loses which stamp: drawn in a fixed order from a stream of its own.
        let mut health_rng = Rng::for_stream(seed, HEALTH_STREAM);
        let loss = scenario.health.loss;
        let mut lost = |explicit: bool| -> Vec<bool> {
            (0..n_routers)
                .map(|_| explicit || (loss > 0.0 && health_rng.unit() <= loss))
                .collect()
        };
        for (i, spec) in scenario.shards.iter().enumerate() {
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
                &vec![false; n_routers],
            );
            let mut phases: Vec<Vec<(u64, u64, Phase)>> = vec![Vec::new(); n_routers];
            for (k, f) in spec.failovers.iter().enumerate() {
                let old = k as u64 + 1;
                let start = nanos(f.start);
                let not_serving_at = f
                    .not_serving_delay
                    .map(|delay| start.saturating_add(nanos(delay)));
                let not_serving_lost = lost(f.not_serving_stamp_lost);
                if let Some(at) = not_serving_at {
                    sim.push_stamp(
                        at,
                        shard,
                        HealthStamp {
                            primary: PrimaryId(old),
                            term: old,
                            serving: false,
                        },
                        &not_serving_lost,
                    );
                }
                let serving_at = f.serving_stamp_at().map(nanos);
                let serving_lost = lost(f.serving_stamp_lost);
                if let Some(at) = serving_at {
                    sim.push_stamp(
                        at,
                        shard,
                        HealthStamp {
                            primary: PrimaryId(old + 1),
                            term: old + 1,
                            serving: true,
                        },
                        &serving_lost,
                    );
                }
                for (r, phases) in phases.iter_mut().enumerate() {
                    failover_phases(
                        f,
                        Sees {
                            not_serving_at: not_serving_at.filter(|_| !not_serving_lost[r]),
                            serving_at: serving_at.filter(|_| !serving_lost[r]),
                        },
                        phases,
                    );
                }
            }
            for t in &spec.topology {
                let (start, end) = (nanos(t.start), nanos(t.start + t.duration));
                let (cause, event) = match t.kind {
                    TopologyKind::Resharding => {
                        (FailoverCause::Resharding, TopologyEvent::ShardMissing)
                    }
                    TopologyKind::MoveTables => {
                        (FailoverCause::MoveTables, TopologyEvent::TrafficSwitched)
                    }
                };
                for (router, phases) in phases.iter_mut().enumerate() {
                    phases.push((start, end, Phase::Refuse(cause)));
                    sim.push(
                        end,
                        Kind::Topology {
                            shard,
                            router: router as u32,
                            event,
                        },
                    );
                }
            }
            for (router, phases) in phases.into_iter().enumerate() {
                sim.routers[router].views.push(View::new(phases));
            }
            if scenario.trace.is_none() {
                for &at in &spec.arrivals {
                    sim.push(nanos(at), Kind::ListedArrival { shard });
                }
            }
            let mut rng = Rng::for_stream(seed, i as u64);
            let open_loop = scenario.traffic.connections.is_none();
            let mean_gap = if spec.rate > 0.0 && scenario.trace.is_none() && open_loop {
                1e9 / spec.rate
            } else {
                0.0
            };
            if mean_gap > 0.0 {
                let first = rng.exponential(mean_gap) as u64;
                if first < sim.end_of_arrivals {
                    sim.seq += 1;
                    sim.arrivals.push(NextArrival {
                        key: (u128::from(first) << 64) | u128::from(sim.seq),
                        shard,
                    });
                }
            }
            sim.shards.push(ShardRt {
                rng,
                retry_rng: Rng::for_stream(seed, RETRY_STREAM + i as u64),
                mean_gap,
                service: spec.service.unwrap_or(scenario.service),
                arrivals: 0,
                kind_rng: Rng::for_stream(seed, KIND_STREAM + i as u64),
                kills: spec
                    .failovers
                    .iter()
                    .filter(|f| f.killed)
                    .map(|f| nanos(f.start))
                    .collect(),
                next_kill: 0,
            });
        }
        if let Some(n) = scenario.traffic.connections {
            if scenario.trace.is_some() {
                return Err(SimError::TraceWithConnections);
            }
            let mut total = 0.0;
            let mut cumulative: Vec<f64> = scenario
                .shards
                .iter()
                .map(|s| {
                    total += s.rate;
                    total
                })
                .collect();
            if total <= 0.0 {
                cumulative.clear();
            }
            let think = nanos(scenario.traffic.think_time);
            // Connection i starts at i/n of a cycle, so they do not move in step.
            let cycle = think.saturating_add(mean_service(scenario.service)) as u128;
            for conn in 0..n {
                let at = (cycle * u128::from(conn) / u128::from(n)) as u64;
                if at < sim.end_of_arrivals {
                    sim.push(at, Kind::ConnectionSend { conn });
                }
            }
            sim.connections = Some(Connections {
                think,
                cumulative,
                rng: Rng::for_stream(seed, CONNECTION_STREAM),
            });
        }
        if let Some(path) = &scenario.trace {
            let mut trace = TraceReader::open(path, &scenario.shards)?;
            if let Some(row) = trace.next_row()? {
                sim.push(row.at, Kind::TraceArrival { row });
            }
            sim.trace = Some(trace);
        }
        if !scenario.pauses.is_empty() {
            sim.report.pause = Some(PauseOutcome::default());
        }
        for (i, pause) in scenario.pauses.iter().enumerate() {
            let shard = match &pause.shard {
                None => None,
                Some(name) => Some(
                    scenario
                        .shards
                        .iter()
                        .position(|s| format!("{}/{}", s.keyspace, s.shard) == *name)
                        .ok_or_else(|| unknown_pause_shard(name))?,
                ),
            };
            sim.pauses.push((shard, pause.max));
            for router in 0..sim.routers.len() as u32 {
                let pause_index = i as u32;
                sim.push(
                    nanos(pause.start),
                    Kind::Pause {
                        router,
                        pause: pause_index,
                    },
                );
                if let Some(resume) = pause.resume {
                    sim.push(
                        nanos(resume),
                        Kind::Resume {
                            router,
                            pause: pause_index,
                        },
                    );
                }
            }
        }
        if let Some(shutdown) = scenario.shutdown {
            sim.report.shutdown = Some(ShutdownOutcome::default());
            for router in 0..sim.routers.len() as u32 {
                sim.push(nanos(shutdown.begin), Kind::Shutdown { router });
                if let Some(cancel) = shutdown.cancel {
                    sim.push(nanos(cancel), Kind::CancelShutdown { router });
                }
            }
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

    /// Which heap holds the earliest event (keys are unique, so there are no ties).
    #[inline]
    fn earliest(&self) -> Option<Source> {
        // Plain comparisons: this runs once per event, and an iterator over options here
        // compiled to stack shuffles that cost more than the heaps.
        const NONE: u128 = u128::MAX;
        let main = self.heap.peek().map_or(NONE, |e| e.key);
        let timeout = self.timeouts.peek().map_or(NONE, |e| e.key);
        let arrival = self.arrivals.peek().map_or(NONE, |e| e.key);
        if arrival < main && arrival < timeout {
            Some(Source::Arrivals)
        } else if timeout < main {
            Some(Source::Timeouts)
        } else if main != NONE {
            Some(Source::Main)
        } else {
            None
        }
    }

    /// Schedules a stamp's delivery to every router that does not lose it.
    fn push_stamp(&mut self, at: u64, shard: u32, stamp: HealthStamp, lost: &[bool]) {
        let index = self.stamps.len() as u32;
        self.stamps.push((shard, stamp));
        for (router, &lost) in lost.iter().enumerate() {
            if !lost {
                self.push(
                    at,
                    Kind::Health {
                        stamp: index,
                        router: router as u32,
                    },
                );
            }
        }
    }

    fn ts(&self) -> Timestamp {
        Timestamp::from_nanos(self.now)
    }

    fn run(&mut self) {
        let mut events = 0u64;
        while let Some(source) = self.earliest() {
            let event = match source {
                Source::Arrivals => {
                    self.poisson_arrival(&mut events);
                    continue;
                }
                Source::Main => self.heap.pop(),
                Source::Timeouts => self.timeouts.pop(),
            };
            let Some(event) = event else { break };
            // (An answer still to come, of a request ended at arrival, would have kept the
            // heap busy until then.)
            let only_stale_timeouts_left = self.heap.is_empty()
                && self.arrivals.is_empty()
                && self.held_total == 0
                && event.at() >= self.last_fast_answer
                && matches!(event.kind, Kind::HeldTimeout { .. });
            if only_stale_timeouts_left {
                // Nobody is held, so this and every other pending client timeout would do
                // nothing; they must not stretch the run (and its timeline) to their time.
                break;
            }
            self.now = self.now.max(event.at());
            self.count_event(&mut events);
            let router = self.handle(event.kind);
            self.settle(router);
            if self.failed.is_some() {
                break;
            }
        }
        self.report.events = events + self.fast_events;
        self.now = self.now.max(self.last_fast_answer);
        self.report.simulated_ns = self.now;
    }

    fn count_event(&mut self, events: &mut u64) {
        *events += 1;
        if *events % PROGRESS_EVERY == 0 {
            self.observer.progress(Duration::from_nanos(self.now));
        }
    }

    /// The earliest Poisson arrival: the shard's next one is drawn and takes its place (with
    /// the next sequence number, as a push would), then the request arrives.
    fn poisson_arrival(&mut self, events: &mut u64) {
        let Some(mut top) = self.arrivals.peek_mut() else {
            return;
        };
        let at = (top.key >> 64) as u64;
        let shard = top.shard;
        self.now = self.now.max(at);
        let rt = &mut self.shards[shard as usize];
        let gap = rt.rng.exponential(rt.mean_gap) as u64;
        let next = self.now.saturating_add(gap.max(1));
        if next < self.end_of_arrivals {
            self.seq += 1;
            top.key = (u128::from(next) << 64) | u128::from(self.seq);
            drop(top);
        } else {
            PeekMut::pop(top);
        }
        self.count_event(events);
        if let Some(router) = self.arrive(shard, 0, NO_CONNECTION) {
            self.settle(router);
        }
    }

    /// After an input to `router`'s buffer: carries out its actions, notes its slots, and
    /// schedules its timer.
    fn settle(&mut self, router: u32) {
        self.drain_actions(router);
        // The shutdown's phases, marked once (by the first router) on the timeline.
        while let Some(step) = self.routers[router as usize].buffer.poll_shutdown_action() {
            if router != 0 {
                continue;
            }
            let mark = match step {
                DrainAction::Enter { phase } => ShutdownPhase::from_id(phase).map(|p| p.name()),
                DrainAction::Cancelled { .. } => Some("shutdown cancelled"),
                _ => None,
            };
            if let Some(mark) = mark {
                self.report.timeline.marks.push((self.now, mark));
            }
        }
        let rt = &mut self.routers[router as usize];
        let held = rt.buffer.held_slots() as u64;
        if held > self.report.peak_slots {
            self.report.peak_slots = held;
        }
        if let Some(at) = rt.buffer.poll_timeout() {
            let at = at.as_nanos().max(self.now);
            if rt.next_tick.is_none_or(|t| at < t) {
                rt.next_tick = Some(at);
                self.push(at, Kind::Tick { router });
            }
        }
    }

    /// Handles one event and returns the router it concerned.
    fn handle(&mut self, kind: Kind) -> u32 {
        match kind {
            Kind::ListedArrival { shard } => self.arrive(shard, 0, NO_CONNECTION).unwrap_or(0),
            Kind::ConnectionSend { conn } => {
                let shard = self.pick_shard();
                self.arrive(shard, 0, conn).unwrap_or(0)
            }
            Kind::TraceArrival { row } => {
                match self.trace.as_mut().map(TraceReader::next_row) {
                    Some(Ok(Some(next))) => self.push(next.at, Kind::TraceArrival { row: next }),
                    Some(Err(error)) => self.failed = Some(error),
                    Some(Ok(None)) | None => {}
                }
                self.arrive(row.shard, row.size, NO_CONNECTION).unwrap_or(0)
            }
            Kind::Done { req, refused } => {
                let router = self.reqs[req as usize].router;
                self.done(req, refused);
                router
            }
            Kind::Died { req } => {
                let router = self.reqs[req as usize].router;
                self.died(req);
                router
            }
            Kind::InFlightTimeout { req } => {
                let router = self.reqs[req as usize].router;
                if let Some(ticket) = self.reqs[req as usize].released.take() {
                    // A released request's retry ends with its client: a cancel counts as
                    // retry done.
                    let now = self.ts();
                    let _ = self.routers[router as usize].buffer.cancel(now, ticket);
                }
                self.end(req, Outcome::Error(ErrorCause::Timeout));
                router
            }
            Kind::HeldTimeout { req, hold } => {
                let Some(r) = self.reqs.get(req as usize) else {
                    return 0;
                };
                let router = r.router;
                if let Some(ticket) = r.held.filter(|_| r.hold == hold) {
                    let now = self.ts();
                    let rt = &mut self.routers[router as usize];
                    let _ = rt.buffer.cancel(now, ticket);
                    rt.held.remove(&ticket.id());
                    rt.held_bytes -= r.size;
                    self.held_total -= 1;
                    self.reqs[req as usize].held = None;
                    self.end(req, Outcome::Error(ErrorCause::Timeout));
                }
                router
            }
            Kind::Send { req } => {
                self.send(req);
                self.reqs[req as usize].router
            }
            Kind::Tick { router } => {
                let now = self.now;
                let rt = &mut self.routers[router as usize];
                if rt.next_tick == Some(now) {
                    rt.next_tick = None;
                }
                rt.buffer.tick(Timestamp::from_nanos(now));
                router
            }
            Kind::Health { stamp, router } => {
                let (shard, stamp) = self.stamps[stamp as usize];
                let now = self.ts();
                let rt = &mut self.routers[router as usize];
                let id = rt.ids[shard as usize];
                // Stamps are generated in term order, so none is stale; a refusal would be
                // counted in the buffer's input stats and changes nothing.
                let _ = rt.buffer.health(now, id, stamp);
                router
            }
            Kind::Topology {
                shard,
                router,
                event,
            } => {
                let now = self.ts();
                let rt = &mut self.routers[router as usize];
                let id = rt.ids[shard as usize];
                let _ = rt.buffer.topology(now, id, event);
                router
            }
            Kind::Shutdown { router } => {
                let now = self.ts();
                self.routers[router as usize].buffer.shutdown(now);
                if let Some(s) = self.report.shutdown.as_mut() {
                    s.begun_ns.get_or_insert(self.now);
                }
                router
            }
            Kind::Pause { router, pause } => {
                let now = self.ts();
                let (shard, max) = self.pauses[pause as usize];
                let rt = &mut self.routers[router as usize];
                let scope = match shard {
                    Some(i) => PauseScope::Shard(rt.ids[i]),
                    None => PauseScope::All,
                };
                let refused = rt.buffer.pause(now, scope, max).is_err();
                if let Some(p) = self.report.pause.as_mut() {
                    p.refused += u64::from(refused);
                }
                if router == 0 && !refused {
                    self.report.timeline.marks.push((self.now, "pause"));
                }
                router
            }
            Kind::Resume { router, pause } => {
                let now = self.ts();
                let rt = &mut self.routers[router as usize];
                let scope = match self.pauses[pause as usize].0 {
                    Some(i) => PauseScope::Shard(rt.ids[i]),
                    None => PauseScope::All,
                };
                // Refused only for an unknown shard, which the ids rule out; a shard not
                // paused (any more) answers 0.
                if rt.buffer.resume(now, scope).is_ok_and(|n| n > 0) && router == 0 {
                    self.report.timeline.marks.push((self.now, "resume"));
                }
                router
            }
            Kind::CancelShutdown { router } => {
                let now = self.ts();
                let queued = self.held_total as u64;
                let rt = &mut self.routers[router as usize];
                let result = rt.buffer.cancel_shutdown(now);
                if let Some(s) = self.report.shutdown.as_mut() {
                    match result {
                        Ok(()) => {
                            s.cancelled_ns.get_or_insert(self.now);
                            // Every router cancels at the same instant: the requests held
                            // then, over all routers, are those the cancel kept.
                            s.kept_by_cancel = queued;
                        }
                        Err(_) => s.cancel_refused += 1,
                    }
                }
                router
            }
        }
    }

    /// The shard a closed-loop connection's next request goes to.
    fn pick_shard(&mut self) -> u32 {
        let Some(c) = self.connections.as_mut() else {
            return 0;
        };
        let n = self.shards.len();
        if n == 1 {
            return 0;
        }
        let draw = c.rng.unit();
        let picked = match c.cumulative.last() {
            Some(&total) => {
                let x = draw * total;
                // The first shard whose cumulative weight is above the draw (a shard of
                // weight 0 is never picked).
                c.cumulative.iter().position(|&w| w > x).unwrap_or(n - 1)
            }
            None => ((draw * n as f64) as usize).min(n - 1),
        };
        picked as u32
    }

    /// Closed loop: `conn`'s next request, `think` after its previous one was answered at
    /// `answered`, unless that is past the end of arrivals.
    fn next_request(&mut self, conn: u32, answered: u64) {
        let Some(c) = self.connections.as_ref() else {
            return;
        };
        let at = answered.saturating_add(c.think);
        if at < self.end_of_arrivals {
            self.push(at, Kind::ConnectionSend { conn });
        }
    }

    /// A request arrives at the router whose turn it is, and returns that router; or `None`
    /// if it went straight through an idle buffer, which that leaves untouched (no action,
    /// no slot, no timer), so there is nothing to settle. `conn` is the closed-loop
    /// connection that sends it, or [`NO_CONNECTION`].
    fn arrive(&mut self, shard: u32, size: u64, conn: u32) -> Option<u32> {
        let n_routers = self.routers.len() as u64;
        let rt = &mut self.shards[shard as usize];
        let router = if n_routers == 1 {
            0
        } else {
            (rt.arrivals % n_routers) as u32
        };
        rt.arrivals += 1;
        let service = match rt.service {
            ServiceTime::Constant(d) => nanos(d),
            ServiceTime::Uniform { min, max } => {
                let (min, max) = (nanos(min), nanos(max));
                let span = max - min;
                let draw = rt.rng.next_u64();
                min + if span == u64::MAX {
                    draw
                } else {
                    draw % (span + 1)
                }
            }
            ServiceTime::Exponential { mean } => rt.rng.exponential(nanos(mean) as f64) as u64,
        };
        let share = self.scenario.traffic.non_idempotent;
        let non_idempotent = share > 0.0 && rt.kind_rng.unit() < share;
        self.report.requests += 1;
        let now = self.now;
        let deadline = now.saturating_add(nanos(self.scenario.client.timeout));
        let rt = &mut self.routers[router as usize];
        let id = rt.ids[shard as usize];
        // The size a trace gave it counts against the buffer's `max_bytes` (0: weightless).
        let admission = rt
            .buffer
            .request_sized(Timestamp::from_nanos(now), id, None, size);
        let answer = now.saturating_add(service);
        // The common case, decided now: sent, served at once, answered in time. Nothing can
        // change its fate, so it ends here, without a table entry or an answer event (its
        // answer still counts as an event, and its instant still bounds the run).
        if matches!(admission, Ok(Admission::Proceed))
            && answer <= deadline
            && rt.views[shard as usize].at(now).is_none()
            && self.shards[shard as usize]
                .killed_between(now, answer)
                .is_none()
        {
            self.report.attempts += 1;
            self.report.ok += 1;
            self.zero_latency += 1;
            self.fast_events += 1;
            self.last_fast_answer = self.last_fast_answer.max(answer);
            self.observer.request_ended(&RequestEnd {
                shard: shard as usize,
                arrival: Duration::from_nanos(now),
                end: Duration::from_nanos(answer),
                service: Duration::from_nanos(service),
                attempts: 1,
                outcome: Outcome::Ok,
            });
            if conn != NO_CONNECTION {
                self.next_request(conn, answer);
            }
            return None;
        }
        let req = self.reqs.insert(Req {
            shard,
            router,
            arrival: now,
            deadline,
            service,
            attempts: 0,
            held: None,
            hold: 0,
            released: None,
            affected: false,
            size,
            conn,
            non_idempotent,
        }) as u32;
        match admission {
            Ok(admission) => self.admit(req, admission),
            // The shard was registered with this buffer, so it is known.
            Err(_) => self.send(req),
        }
        Some(router)
    }

    /// How long the client waits before retry number `retry` (1 for the first retry).
    fn retry_delay(&mut self, shard: u32, retry: u32) -> u64 {
        let client = &self.scenario.client;
        let base = nanos(client.retry_delay);
        let delay = match client.backoff {
            Backoff::Fixed => base,
            Backoff::Exponential { max } => {
                let doubled = base.saturating_mul(1u64 << (retry.saturating_sub(1)).min(63));
                doubled.min(nanos(max))
            }
        };
        let rng = &mut self.shards[shard as usize].retry_rng;
        let draw = |rng: &mut Rng, up_to: u64| {
            if up_to == u64::MAX {
                rng.next_u64()
            } else {
                rng.next_u64() % (up_to + 1)
            }
        };
        match client.jitter {
            Jitter::None => delay,
            Jitter::Full => draw(rng, delay),
            Jitter::Equal => delay / 2 + draw(rng, delay - delay / 2),
        }
    }

    /// Carries out the buffer's answer to a request.
    fn admit(&mut self, req: u32, admission: Admission) {
        match admission {
            Admission::Proceed => {
                let r = &self.reqs[req as usize];
                let (attempts, shard) = (r.attempts, r.shard);
                let delay = if attempts > 0 {
                    self.retry_delay(shard, attempts)
                } else {
                    0
                };
                if delay > 0 {
                    self.push(self.now.saturating_add(delay), Kind::Send { req });
                } else {
                    self.send(req);
                }
            }
            Admission::Wait(ticket) => {
                self.holds += 1;
                let hold = self.holds;
                let r = &mut self.reqs[req as usize];
                r.held = Some(ticket);
                r.hold = hold;
                r.affected = true;
                let deadline = r.deadline;
                let router = r.router;
                let size = r.size;
                let rt = &mut self.routers[router as usize];
                rt.held.insert(ticket.id(), req);
                rt.held_bytes += size;
                if rt.held_bytes > self.report.peak_held_bytes {
                    self.report.peak_held_bytes = rt.held_bytes;
                }
                self.held_total += 1;
                self.report.timeline.queued(self.now, self.held_total);
                self.seq += 1;
                self.timeouts.push(Event {
                    key: (u128::from(deadline.max(self.now)) << 64) | u128::from(self.seq),
                    kind: Kind::HeldTimeout { req, hold },
                });
            }
            // A shard resharded away: the router re-plans the request to the new shards.
            Admission::Fail(BufferError::ShardMissing) => self.send(req),
            Admission::Fail(error) => self.end(req, Outcome::Error(buffer_error(error))),
        }
    }

    /// Sends an attempt to the primary, which may refuse it, hang it or serve it slowly.
    fn send(&mut self, req: u32) {
        let now = self.now;
        let r = &mut self.reqs[req as usize];
        r.attempts += 1;
        self.report.attempts += 1;
        let phase = self.routers[r.router as usize].views[r.shard as usize].at(now);
        let (answer, refused) = match phase {
            None => (now.saturating_add(r.service), None),
            Some(Phase::Refuse(cause)) => (now.saturating_add(r.service), Some(cause)),
            Some(Phase::RefuseAfter(took)) => {
                (now.saturating_add(took), Some(FailoverCause::Reparent))
            }
            Some(Phase::Hang { until }) => (
                until.saturating_add(r.service),
                Some(FailoverCause::Reparent),
            ),
            Some(Phase::FailFast) => (now, Some(FailoverCause::Reparent)),
            Some(Phase::Cold { factor }) => {
                let took = (r.service as f64 * factor).round() as u64;
                (now.saturating_add(took), None)
            }
        };
        let (shard, deadline) = (r.shard, r.deadline);
        // A served attempt still in flight when its primary is killed dies with it.
        let died = match refused {
            None => self.shards[shard as usize].killed_between(now, answer),
            Some(_) => None,
        };
        match died {
            Some(at) if at <= deadline => self.push(at, Kind::Died { req }),
            _ if answer > deadline => {
                self.push(deadline.max(now), Kind::InFlightTimeout { req });
            }
            _ => self.push(answer, Kind::Done { req, refused }),
        }
    }

    /// An attempt's connection was reset by its primary's death. The router replays it (a
    /// failover error, held or retried like a refusal) unless it may not be run twice: then
    /// the application is told it may or may not have run.
    fn died(&mut self, req: u32) {
        let r = &mut self.reqs[req as usize];
        if !r.non_idempotent {
            self.done(req, Some(FailoverCause::Reparent));
            return;
        }
        r.affected = true;
        let router = r.router as usize;
        // The router answered the attempt (with the uncertainty): for the buffer, a
        // released retry is done.
        if let Some(ticket) = r.released.take() {
            let now = self.ts();
            let _ = self.routers[router].buffer.retry_done(now, ticket);
        }
        self.end(req, Outcome::Error(ErrorCause::Uncertain));
    }

    fn done(&mut self, req: u32, refused: Option<FailoverCause>) {
        let released = self.reqs[req as usize].released.take();
        let r = &mut self.reqs[req as usize];
        let router = r.router as usize;
        let again = refused.is_some() && r.attempts < self.scenario.client.attempts;
        if refused.is_some() {
            r.affected = true;
        }
        let Some(cause) = refused.filter(|_| again) else {
            if let Some(ticket) = released {
                let now = self.ts();
                let _ = self.routers[router].buffer.retry_done(now, ticket);
            }
            let outcome = match refused {
                None => Outcome::Ok,
                Some(_) => Outcome::Error(ErrorCause::Failover),
            };
            self.end(req, outcome);
            return;
        };
        let shard = r.shard as usize;
        let size = r.size;
        let now = self.ts();
        let rt = &mut self.routers[router];
        let id = rt.ids[shard];
        let answer = match released {
            // A released request refused again tells the buffer its drain came too early,
            // even if that drain has just finished with this very retry.
            Some(ticket) => rt.buffer.retry_failed(now, ticket, cause),
            None => rt.buffer.request_sized(now, id, Some(cause), size),
        };
        match answer {
            Ok(admission) => self.admit(req, admission),
            Err(_) => self.send(req),
        }
    }

    fn drain_actions(&mut self, router: u32) {
        while let Some(action) = self.routers[router as usize].buffer.poll_action() {
            match action {
                Action::Wake { ticket, verdict } => {
                    let rt = &mut self.routers[router as usize];
                    let Some(req) = rt.held.remove(&ticket.id()) else {
                        continue;
                    };
                    rt.held_bytes -= self.reqs[req as usize].size;
                    self.held_total -= 1;
                    self.report.timeline.queued(self.now, self.held_total);
                    self.reqs[req as usize].held = None;
                    match verdict {
                        Verdict::Retry => {
                            self.report.timeline.released(self.now);
                            self.reqs[req as usize].released = Some(ticket);
                            self.send(req);
                        }
                        // The shard was resharded away: the ticket has ended, and the
                        // router re-plans the request to the new shards.
                        Verdict::Fail(BufferError::ShardMissing) => self.send(req),
                        Verdict::Fail(error) => {
                            self.end(req, Outcome::Error(buffer_error(error)));
                        }
                    }
                }
                Action::PauseStarted { .. } => {
                    if let Some(p) = self.report.pause.as_mut() {
                        p.started += 1;
                    }
                }
                Action::PauseEnded { shard, reason, .. } => {
                    if let Some(p) = self.report.pause.as_mut() {
                        match reason {
                            PauseEnd::Resumed => p.resumed += 1,
                            PauseEnd::Expired => p.expired += 1,
                            _ => p.ended_by_shutdown += 1,
                        }
                    }
                    // Unless a failover still buffers the shard, its drain starts here (one
                    // whose episode stopped during the pause is timed from that stop).
                    let rt = &mut self.routers[router as usize];
                    let buffering = rt.buffer.shard_state(shard)
                        == Some(failover_buffer::ShardState::Buffering);
                    if let Some(at) = rt.stopped_at.get_mut(shard.index()) {
                        if !buffering {
                            at.get_or_insert(self.now);
                        }
                    }
                }
                Action::Metric(Metric::BufferingStopped { shard, .. }) => {
                    let rt = &mut self.routers[router as usize];
                    if let Some(at) = rt.stopped_at.get_mut(shard.index()) {
                        at.get_or_insert(self.now);
                    }
                }
                Action::Closed => {
                    if let Some(s) = self.report.shutdown.as_mut() {
                        s.closed_ns = Some(s.closed_ns.unwrap_or(0).max(self.now));
                        s.routers_closed += 1;
                    }
                }
                Action::Metric(Metric::DrainFinished { shard, .. }) => {
                    let rt = &mut self.routers[router as usize];
                    if let Some(from) = rt.stopped_at.get_mut(shard.index()).and_then(Option::take)
                    {
                        let took = self.now - from;
                        self.report.drain_time_ns = self.report.drain_time_ns.max(took);
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
        if r.conn != NO_CONNECTION {
            self.next_request(r.conn, self.now);
        }
    }

    fn finish(mut self) -> Result<Report, SimError> {
        if let Some(error) = self.failed.take() {
            return Err(error);
        }
        self.report.added_latency.p50_ns = self.percentile(50);
        self.report.added_latency.p99_ns = self.percentile(99);
        self.report.added_latency.max_ns = self.latencies.iter().copied().max().unwrap_or(0);
        let mut waits = WaitHistograms::default();
        for rt in &self.routers {
            for &id in &rt.ids {
                if let Some(stats) = rt.buffer.shard_stats(id) {
                    self.report.buffer.add(stats);
                }
                if let Some(shard_waits) = rt.buffer.wait_histograms(id) {
                    waits.merge(shard_waits);
                }
            }
        }
        self.report.waits = Wait::of(&waits);
        self.report.timeline.finish(self.now);
        Ok(self.report)
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

/// The mean of a service-time distribution, in nanoseconds.
fn mean_service(service: ServiceTime) -> u64 {
    match service {
        ServiceTime::Constant(d) => nanos(d),
        ServiceTime::Uniform { min, max } => nanos(min) / 2 + nanos(max) / 2,
        ServiceTime::Exponential { mean } => nanos(mean),
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
