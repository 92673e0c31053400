//! The one harness behind the property tests (`core/tests/model.rs`), the corpus replay
//! (`core/tests/fuzz_corpus.rs`) and the fuzz targets (`fuzz/fuzz_targets/`).
//!
//! A test is a [`SetUp`] (a small valid config and 1–4 shards) and a list of [`Op`]s. The
//! [`Harness`] feeds each op to a real `Buffer` and to the reference model
//! (`core/tests/model/reference.rs`), and after every op checks that:
//!
//! * the core and the model gave the same answer and the same actions (in the same order;
//!   for `tick` and `shutdown`, which visit several shards, the same order within each shard),
//!   the same timers, slots, ticket statuses, shard states and counters;
//! * `Buffer::check_invariants` passes;
//! * the history is sound, judged from the core's outputs alone: every ticket ends exactly
//!   once, no `Wake` names an ended ticket, a ticket value is never issued twice, `Closed` comes
//!   once and only when nothing is queued and nothing retries (unless the shutdown grace ran
//!   out first), and `poll_timeout` after `tick(t)` is `None` or later
//!   than `t`.
//!
//! [`run`] then shuts the buffer down and finishes every retry, and checks that the buffer
//! closes with every slot free: no input sequence can strand a request.
//!
//! Tickets are named by position (the n-th issued, the n-th still queued, the n-th released)
//! or forged with `Ticket::from_parts`, so shrunk counterexamples stay readable.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::time::Duration;

use arbitrary::{Arbitrary, Unstructured};
use failover_buffer::ShutdownPhase;
use failover_buffer::drain::PhaseEnd;
use failover_buffer::{
    Action, Admission, Buffer, Config, Eviction, FailoverCause, HealthStamp, InputError,
    PauseError, PauseScope, PrimaryId, ShardFilter, ShardId, ShardState, Ticket, TicketError,
    TicketStatus, TimerKind, Timestamp, TopologyEvent, Verdict,
};

#[path = "../../core/tests/model/reference.rs"]
pub(crate) mod reference;

use reference::{Answer, Model};

/// The shards a test can register, in order.
pub(crate) const SHARD_NAMES: [(&str, &str); 4] =
    [("ks0", "0"), ("ks0", "1"), ("ks1", "0"), ("ks1", "1")];

/// Shard filters a test can pick: each makes a different mix of enabled, dry-run and
/// disabled shards out of [`SHARD_NAMES`].
pub(crate) const FILTERS: [&str; 6] = ["", "ks0", "ks1/1", "ks0/0,ks1", "ks0:1,ks1/0", "ks0,ks1"];

/// A buffer's configuration and shards, in small units so that timers collide often.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SetUp {
    /// Shards registered, 1 to 4, from [`SHARD_NAMES`].
    pub(crate) shards: usize,
    pub(crate) size: usize,
    pub(crate) window_ms: u64,
    pub(crate) max_failover_duration_ms: u64,
    pub(crate) min_time_between_failovers_ms: u64,
    pub(crate) drain_concurrency: usize,
    pub(crate) drain_backoff_ms: u64,
    pub(crate) enabled: bool,
    pub(crate) dry_run: bool,
    /// One of [`FILTERS`].
    pub(crate) filter: &'static str,
    /// `Config::proactive_start`.
    pub(crate) proactive_start: bool,
    /// `Config::shutdown_grace` in milliseconds; `None` is the default, no limit.
    pub(crate) shutdown_grace_ms: Option<u64>,
    /// `Config::eviction`.
    pub(crate) eviction: Eviction,
    /// `Config::max_per_shard`, 1 to 8 when set.
    pub(crate) max_per_shard: Option<usize>,
    /// `Config::max_bytes`, against the sizes of [`REQUEST_BYTES`].
    pub(crate) max_bytes: Option<u64>,
}

/// The sizes requests carry, the n-th `Op::Request` taking the n-th (cyclically); a size of
/// 0 is sent with `Buffer::request`, the others with `Buffer::request_sized`.
pub(crate) const REQUEST_BYTES: [u64; 8] = [3, 0, 4, 1, 5, 9, 2, 6];

impl SetUp {
    /// Makes the combination valid: a filter needs `enabled`, and `enabled` with `dry_run`
    /// needs a filter (`Config::validate`'s cross-field rules).
    pub(crate) fn normalised(mut self) -> SetUp {
        if !self.enabled {
            self.filter = "";
        }
        if self.enabled && self.filter.is_empty() {
            self.dry_run = false;
        }
        self.max_failover_duration_ms = self.max_failover_duration_ms.max(self.window_ms);
        self
    }

    /// The config this set-up describes.
    pub(crate) fn config(&self) -> Result<Config, String> {
        let filter: ShardFilter = self
            .filter
            .parse()
            .map_err(|e| format!("filter {:?}: {e}", self.filter))?;
        Ok(Config {
            enabled: self.enabled,
            dry_run: self.dry_run,
            size: self.size,
            window: Duration::from_millis(self.window_ms),
            max_failover_duration: Duration::from_millis(self.max_failover_duration_ms),
            min_time_between_failovers: Duration::from_millis(self.min_time_between_failovers_ms),
            drain_concurrency: self.drain_concurrency,
            drain_backoff: Duration::from_millis(self.drain_backoff_ms),
            filter,
            proactive_start: self.proactive_start,
            shutdown_grace: self
                .shutdown_grace_ms
                .map_or(Duration::MAX, Duration::from_millis),
            eviction: self.eviction,
            max_per_shard: self.max_per_shard,
            max_bytes: self.max_bytes,
            max_pause: Duration::from_secs(600),
        })
    }
}

impl<'a> Arbitrary<'a> for SetUp {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let window_ms = 250 * u.int_in_range(1..=16)?;
        Ok(SetUp {
            shards: u.int_in_range(1..=4)?,
            size: u.int_in_range(1..=8)?,
            window_ms,
            max_failover_duration_ms: window_ms + 250 * u.int_in_range(0..=16)?,
            min_time_between_failovers_ms: 500 * u.int_in_range(2..=16)?,
            drain_concurrency: u.int_in_range(1..=3)?,
            drain_backoff_ms: 250 * u.int_in_range(1..=8)?,
            enabled: u.ratio(9, 10)?,
            // The filter before `dry_run`, which `normalised` clears without a filter: so
            // each byte decides something on its own (the seed encoder relies on it).
            filter: u.choose(&FILTERS)?,
            dry_run: u.arbitrary()?,
            proactive_start: u.arbitrary()?,
            shutdown_grace_ms: match u.int_in_range(0..=8u64)? {
                0 => None,
                n => Some(250 * n),
            },
            // Not decoded, so that the committed seeds keep their meaning: fuzzing reaches
            // every policy and cap through `Op::Reconfigure`.
            eviction: Eviction::OldestOfShard,
            max_per_shard: None,
            max_bytes: None,
        }
        .normalised())
    }
}

/// A failover error, as the router classified it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Arbitrary)]
pub(crate) enum Cause {
    Reparent,
    Resharding,
    MoveTables,
}

impl Cause {
    fn core(self) -> FailoverCause {
        match self {
            Cause::Reparent => FailoverCause::Reparent,
            Cause::Resharding => FailoverCause::Resharding,
            Cause::MoveTables => FailoverCause::MoveTables,
        }
    }
}

/// A health stamp's term, relative to the highest the shard has seen (1 if none).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Arbitrary)]
pub(crate) enum Term {
    /// One below: stale, refused.
    Older,
    Same,
    Newer,
    /// Three above.
    Jump,
}

/// A topology event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Arbitrary)]
pub(crate) enum Topo {
    ShardMissing,
    TrafficSwitched,
}

/// Which ticket a `cancel` or `retry_done` names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Arbitrary)]
pub(crate) enum TicketRef {
    /// The n-th ticket issued so far, live or ended; past the end, one never issued.
    Issued(u16),
    /// The n-th (modulo their number) ticket still queued; nothing happens if none is.
    Queued(u8),
    /// The n-th (modulo) ticket released whose retry has not been reported done.
    Released(u8),
    /// A forged ticket, which may or may not name a live one.
    Forged { slot: u8, generation: u8 },
}

/// New limits for `Buffer::reconfigure`, in the set-up's units; zeros make an invalid
/// config, and `change_mode` flips `dry_run` (refused: modes are fixed).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Arbitrary)]
pub(crate) struct Reconf {
    /// Slots, 0 (invalid) to 7.
    pub(crate) size: u8,
    /// Window in steps of 250 ms, 0 (invalid) to 15.
    pub(crate) window: u8,
    /// Max failover duration beyond the window, in steps of 250 ms.
    pub(crate) extra: u8,
    /// Min time between failovers in steps of 500 ms, below 2 (invalid) to 15.
    pub(crate) min_time: u8,
    /// Drain concurrency, 0 (invalid) to 3.
    pub(crate) concurrency: u8,
    /// Drain back-off in steps of 250 ms, 0 (invalid) to 7.
    pub(crate) backoff: u8,
    pub(crate) proactive_start: bool,
    pub(crate) change_mode: bool,
    /// Shutdown grace in steps of 250 ms, 0 (invalid) to 14; 15 is no limit.
    pub(crate) grace: u8,
    /// Eviction policy, an index into `Eviction::ALL` (modulo).
    pub(crate) eviction: u8,
    /// Per-shard cap: 0 for none, 1 for 0 (invalid), `n` for `n - 1` (modulo 8).
    pub(crate) max_per_shard: u8,
    /// Byte budget: 0 for none, 1 for 0 (invalid), `n` for `2 * (n - 1)` (modulo 16).
    pub(crate) max_bytes: u8,
    /// Operator pause bound: 0 for the default (10 minutes), `n` for `500 ms * n` (modulo
    /// 8), so that pauses of [`Op::Pause`] (up to 3.75 s) can exceed it.
    pub(crate) max_pause: u8,
}

impl Reconf {
    /// The config this describes, on top of the set-up's mode settings.
    pub(crate) fn config(&self, setup: &SetUp) -> Result<Config, String> {
        let mut config = setup.config()?;
        let window = 250 * u64::from(self.window % 16);
        config.size = usize::from(self.size % 8);
        config.window = Duration::from_millis(window);
        config.max_failover_duration =
            Duration::from_millis(window + 250 * u64::from(self.extra % 16));
        config.min_time_between_failovers =
            Duration::from_millis(500 * u64::from(self.min_time % 16));
        config.drain_concurrency = usize::from(self.concurrency % 4);
        config.drain_backoff = Duration::from_millis(250 * u64::from(self.backoff % 8));
        config.proactive_start = self.proactive_start;
        config.eviction = Eviction::ALL[usize::from(self.eviction) % Eviction::ALL.len()];
        config.max_per_shard = match self.max_per_shard % 8 {
            0 => None,
            n => Some(usize::from(n - 1)),
        };
        config.max_bytes = match self.max_bytes % 16 {
            0 => None,
            n => Some(2 * u64::from(n - 1)),
        };
        config.max_pause = match self.max_pause % 8 {
            0 => Duration::from_secs(600),
            n => Duration::from_millis(500 * u64::from(n)),
        };
        if self.change_mode {
            config.dry_run = !config.dry_run;
        }
        config.shutdown_grace = match self.grace % 16 {
            15 => Duration::MAX,
            n => Duration::from_millis(250 * u64::from(n)),
        };
        Ok(config)
    }
}

/// One input (or a pause of the simulated clock). Shard indices at or past the number of
/// registered shards name a shard the buffer never issued.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Arbitrary)]
pub(crate) enum Op {
    Request {
        shard: u8,
        cause: Option<Cause>,
    },
    Health {
        shard: u8,
        primary: u8,
        term: Term,
        serving: bool,
    },
    Topology {
        shard: u8,
        event: Topo,
    },
    /// Moves the clock by `advance_ms` (negative: backwards) and ticks.
    Tick {
        advance_ms: i16,
    },
    /// Moves the clock without ticking: the next input comes late.
    Wait {
        advance_ms: i16,
    },
    /// Moves the clock to `poll_timeout` exactly and ticks (nothing if no timer is armed).
    TickAtDeadline,
    Cancel(TicketRef),
    RetryDone(TicketRef),
    /// The ticket's retry failed again with `cause` (`Buffer::retry_failed`).
    RetryFailed {
        ticket: TicketRef,
        cause: Cause,
    },
    Shutdown,
    /// `Buffer::reconfigure` at the current time.
    Reconfigure(Reconf),
    /// An input stamped `Timestamp::MAX` (a `request` with a failover cause on this shard),
    /// after which the clock stays at the end of time.
    EndOfTime {
        shard: u8,
    },
    /// `Buffer::cancel_shutdown` at the current time.
    CancelShutdown,
    /// `Buffer::pause` of `shard` (or of all shards) for `max` steps of 250 ms, 0 (refused)
    /// to 15.
    Pause {
        shard: u8,
        all: bool,
        max: u8,
    },
    /// `Buffer::resume` of `shard` (or of all shards).
    Resume {
        shard: u8,
        all: bool,
    },
}

/// The scope an `Op::Pause` or `Op::Resume` names.
fn scope(shard: u8, all: bool) -> PauseScope {
    match all {
        true => PauseScope::All,
        false => PauseScope::Shard(ShardId::from_index(shard.into())),
    }
}

/// What an op returned, for the determinism check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Admission(Result<Admission, InputError>),
    Input(Result<(), InputError>),
    Reconfigured(Result<(), failover_buffer::ConfigError>),
    Ticked(Timestamp),
    Nothing,
    ShutdownCancelled(Result<(), failover_buffer::drain::DrainError>),
    Paused(Result<usize, PauseError>),
}

/// One op's observable results.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Step {
    pub(crate) outcome: Outcome,
    pub(crate) actions: Vec<Action>,
    pub(crate) timeout: Option<Timestamp>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Life {
    Queued,
    Released,
    Ended,
}

#[derive(Clone, Copy, Debug)]
struct Issued {
    ticket: Ticket,
    shard: usize,
    life: Life,
}

/// The hasher of the harness's ticket index: a ticket is three integers, each folded in by
/// one multiply-xorshift step (a SipHash of each ticket looked up was a fortieth of an
/// input the exhaustive test tries). Its keys are the core's own tickets, so there is no
/// adversary to defend against.
#[derive(Default)]
pub(crate) struct TicketHasher(u64);

impl TicketHasher {
    fn fold(&mut self, x: u64) {
        self.0 = (self.0 ^ x).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        self.0 ^= self.0 >> 32;
    }
}

impl Hasher for TicketHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.fold(u64::from(b));
        }
    }

    fn write_u32(&mut self, i: u32) {
        self.fold(u64::from(i));
    }

    fn write_u64(&mut self, i: u64) {
        self.fold(i);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// A buffer, its reference model, and the history of every ticket issued. A clone is an
/// independent copy of all three (the buffer keeps its identity, so the history's tickets
/// stay valid in the copy): the exhaustive test expands a state by cloning it, into a
/// harness it keeps for the purpose (`clone_from`, which reuses its allocations).
pub(crate) struct Harness {
    buffer: Buffer,
    model: Model,
    setup: SetUp,
    shards: usize,
    size: usize,
    /// The simulated clock, in nanoseconds; may go below zero (then inputs carry zero).
    clock: i64,
    issued: Vec<Issued>,
    by_ticket: HashMap<Ticket, usize, BuildHasherDefault<TicketHasher>>,
    closed_seen: bool,
    /// Every input from now on is stamped `Timestamp::MAX`.
    end_of_time: bool,
    /// Every step's results, for the determinism check; `None` once
    /// [`Harness::stop_transcript`] was called.
    transcript: Option<Vec<Step>>,
    /// `Op::Request`s applied so far: which of [`REQUEST_BYTES`] the next one carries.
    requests: usize,
    /// The allocations of the last input's actions, the core's and the model's, refilled
    /// by the next (not part of the state: a clone starts with none, and `clone_from`
    /// keeps its own). The exhaustive test applies one input per transition it tries.
    spare: (Vec<Action>, Vec<Action>),
}

impl Clone for Harness {
    fn clone(&self) -> Self {
        let Harness {
            buffer,
            model,
            setup,
            shards,
            size,
            clock,
            issued,
            by_ticket,
            closed_seen,
            end_of_time,
            transcript,
            requests,
            spare: _,
        } = self;
        Harness {
            buffer: buffer.clone(),
            model: model.clone(),
            setup: setup.clone(),
            shards: *shards,
            size: *size,
            clock: *clock,
            issued: issued.clone(),
            by_ticket: by_ticket.clone(),
            closed_seen: *closed_seen,
            end_of_time: *end_of_time,
            transcript: transcript.clone(),
            requests: *requests,
            spare: (Vec::new(), Vec::new()),
        }
    }

    /// The same copy as `clone`, into this harness's allocations (buffer, model, history).
    fn clone_from(&mut self, source: &Self) {
        let Harness {
            buffer,
            model,
            setup,
            shards,
            size,
            clock,
            issued,
            by_ticket,
            closed_seen,
            end_of_time,
            transcript,
            requests,
            spare: _,
        } = self;
        buffer.clone_from(&source.buffer);
        model.clone_from(&source.model);
        setup.clone_from(&source.setup);
        *shards = source.shards;
        *size = source.size;
        *clock = source.clock;
        issued.clone_from(&source.issued);
        by_ticket.clone_from(&source.by_ticket);
        *closed_seen = source.closed_seen;
        *end_of_time = source.end_of_time;
        transcript.clone_from(&source.transcript);
        *requests = source.requests;
    }
}

/// Runs `ops` on a fresh buffer and model, then shuts down and finishes every retry;
/// returns every step's results, or the first discrepancy or broken invariant.
pub(crate) fn run(setup: &SetUp, ops: &[Op]) -> Result<Vec<Step>, String> {
    let (transcript, verdict) = record(setup, ops);
    verdict.map(|()| transcript)
}

/// Like [`run`], but keeps the steps recorded up to a failure: what the determinism check
/// compares, so that two runs must even fail in the same way.
pub(crate) fn record(setup: &SetUp, ops: &[Op]) -> (Vec<Step>, Result<(), String>) {
    let mut h = match Harness::new(setup) {
        Ok(h) => h,
        Err(e) => return (Vec::new(), Err(e)),
    };
    let mut verdict = Ok(());
    for (i, op) in ops.iter().enumerate() {
        verdict = h
            .apply(op)
            .map_err(|e| format!("after op #{i} {op:?}: {e}"));
        if verdict.is_err() {
            break;
        }
    }
    if verdict.is_ok() {
        verdict = h
            .finish()
            .map_err(|e| format!("while finishing after every op: {e}"));
    }
    (h.transcript.unwrap_or_default(), verdict)
}

/// The same inputs on two fresh buffers give the same outputs, step for step (DESIGN §8.7),
/// whether or not the run passes its other checks.
pub(crate) fn check_deterministic(setup: &SetUp, ops: &[Op]) -> Result<(), String> {
    let first = record(setup, ops);
    let second = record(setup, ops);
    if first != second {
        let at = first.0.iter().zip(&second.0).position(|(a, b)| a != b);
        return Err(format!(
            "same inputs, different outputs (first difference at step {at:?})"
        ));
    }
    Ok(())
}

/// Input of the `buffer_ops` fuzz target.
#[derive(Clone, Debug, Arbitrary)]
pub(crate) struct OpsInput {
    pub(crate) setup: SetUp,
    pub(crate) ops: Vec<Op>,
}

/// The `buffer_ops` fuzz target: decodes `data` the way `arbitrary` does and panics on
/// any discrepancy, broken invariant or nondeterminism (then prints the decoded input).
pub(crate) fn fuzz_buffer_ops(data: &[u8]) {
    let Ok(input) = OpsInput::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    let verdict =
        run(&input.setup, &input.ops).and_then(|_| check_deterministic(&input.setup, &input.ops));
    if let Err(e) = verdict {
        panic!("{e}\n{input:#?}");
    }
}

impl Harness {
    pub(crate) fn new(setup: &SetUp) -> Result<Harness, String> {
        let config = setup.config()?;
        let mut buffer = Buffer::new(config.clone()).map_err(|e| format!("{setup:?}: {e}"))?;
        let names = &SHARD_NAMES[..setup.shards.clamp(1, SHARD_NAMES.len())];
        for (i, (ks, shard)) in names.iter().enumerate() {
            let id = buffer.register_shard(ks, shard);
            if id.index() != i {
                return Err(format!("shard {i} was registered as {id:?}"));
            }
        }
        Ok(Harness {
            model: Model::new(&config, names),
            setup: setup.clone(),
            buffer,
            shards: names.len(),
            size: setup.size,
            clock: 0,
            issued: Vec::new(),
            by_ticket: HashMap::default(),
            closed_seen: false,
            end_of_time: false,
            transcript: Some(Vec::new()),
            requests: 0,
            spare: (Vec::new(), Vec::new()),
        })
    }

    /// The buffer under test.
    pub(crate) fn buffer(&self) -> &Buffer {
        &self.buffer
    }

    /// Drops the steps recorded so far (the determinism check's transcript) and records
    /// no more: an explored state needs none, and each step recorded allocates. Every
    /// check of an input is made whether or not its results are recorded.
    pub(crate) fn stop_transcript(&mut self) {
        self.transcript = None;
    }

    fn now(&self) -> Timestamp {
        if self.end_of_time {
            return Timestamp::MAX;
        }
        Timestamp::from_nanos(u64::try_from(self.clock).unwrap_or(0))
    }

    fn advance(&mut self, ms: i16) {
        self.clock = self.clock.saturating_add(i64::from(ms) * 1_000_000);
    }

    /// The ticket a [`TicketRef`] names, and its index if it was ever issued.
    fn resolve(&self, r: TicketRef) -> Option<(Ticket, Option<usize>)> {
        let nth = |life: Life, k: u8| {
            let live: Vec<usize> = (0..self.issued.len())
                .filter(|&i| self.issued[i].life == life)
                .collect();
            (!live.is_empty()).then(|| live[k as usize % live.len()])
        };
        let ticket = match r {
            TicketRef::Issued(i) => match self.issued.get(usize::from(i)) {
                Some(t) => t.ticket,
                None => Ticket::from_parts(u32::MAX - u32::from(i), u64::MAX - u64::from(i)),
            },
            TicketRef::Queued(k) => self.issued[nth(Life::Queued, k)?].ticket,
            TicketRef::Released(k) => self.issued[nth(Life::Released, k)?].ticket,
            TicketRef::Forged { slot, generation } => {
                Ticket::from_parts(u32::from(slot), u64::from(generation))
            }
        };
        Some((ticket, self.by_ticket.get(&ticket).copied()))
    }

    /// Feeds one op to the buffer and the model, and checks everything.
    pub(crate) fn apply(&mut self, op: &Op) -> Result<(), String> {
        let mut per_shard_order = false;
        let mut is_tick = false;
        // The ticket ended by a successful cancel or retry_done.
        let mut ended_by_input: Option<(Ticket, bool)> = None;
        let outcome = match *op {
            Op::Request { shard, cause } => {
                let now = self.now();
                let cause = cause.map(Cause::core);
                let bytes = REQUEST_BYTES[self.requests % REQUEST_BYTES.len()];
                self.requests += 1;
                let id = ShardId::from_index(shard.into());
                let core = match bytes {
                    0 => self.buffer.request(now, id, cause),
                    _ => self.buffer.request_sized(now, id, cause, bytes),
                };
                let model = self
                    .model
                    .request(now.as_nanos(), shard.into(), cause, bytes);
                self.admit("request", core, model, shard.into())?;
                Outcome::Admission(core)
            }
            Op::Health {
                shard,
                primary,
                term,
                serving,
            } => {
                let now = self.now();
                let base = self.model.highest_term(shard.into()).unwrap_or(1);
                let term = match term {
                    Term::Older => base.saturating_sub(1),
                    Term::Same => base,
                    Term::Newer => base + 1,
                    Term::Jump => base + 3,
                };
                let stamp = HealthStamp {
                    primary: PrimaryId(u64::from(primary % 3)),
                    term,
                    serving,
                };
                let core = self
                    .buffer
                    .health(now, ShardId::from_index(shard.into()), stamp);
                let model = self.model.health(now.as_nanos(), shard.into(), stamp);
                same("health", &core, &model)?;
                Outcome::Input(core)
            }
            Op::Topology { shard, event } => {
                let now = self.now();
                let event = match event {
                    Topo::ShardMissing => TopologyEvent::ShardMissing,
                    Topo::TrafficSwitched => TopologyEvent::TrafficSwitched,
                };
                let core = self
                    .buffer
                    .topology(now, ShardId::from_index(shard.into()), event);
                let model = self.model.topology(now.as_nanos(), shard.into(), event);
                same("topology", &core, &model)?;
                Outcome::Input(core)
            }
            Op::Tick { advance_ms } => {
                self.advance(advance_ms);
                is_tick = true;
                per_shard_order = true;
                self.tick()
            }
            Op::Wait { advance_ms } => {
                self.advance(advance_ms);
                Outcome::Nothing
            }
            Op::TickAtDeadline => match self.buffer.poll_timeout() {
                Some(at) => {
                    self.clock = i64::try_from(at.as_nanos()).unwrap_or(i64::MAX);
                    is_tick = true;
                    per_shard_order = true;
                    self.tick()
                }
                None => Outcome::Nothing,
            },
            Op::Cancel(r) | Op::RetryDone(r) => {
                let retry_done = matches!(op, Op::RetryDone(_));
                let Some((ticket, index)) = self.resolve(r) else {
                    return self.record(Outcome::Nothing, false, false, None);
                };
                let now = self.now();
                let core = if retry_done {
                    self.buffer.retry_done(now, ticket)
                } else {
                    self.buffer.cancel(now, ticket)
                };
                let model = self
                    .model
                    .end_ticket(now.as_nanos(), ticket, index, retry_done);
                same(
                    if retry_done { "retry_done" } else { "cancel" },
                    &core,
                    &model,
                )?;
                self.check_ticket_answer(ticket, index, retry_done, &core)?;
                if core.is_ok() {
                    ended_by_input = Some((ticket, retry_done));
                }
                Outcome::Input(core)
            }
            Op::RetryFailed { ticket, cause } => {
                let Some((ticket, index)) = self.resolve(ticket) else {
                    return self.record(Outcome::Nothing, false, false, None);
                };
                let now = self.now();
                let cause = cause.core();
                let core = self.buffer.retry_failed(now, ticket, cause);
                let model = self
                    .model
                    .retry_failed(now.as_nanos(), ticket, index, cause);
                let unit = core.map(|_| ());
                self.check_ticket_answer(ticket, index, true, &unit)?;
                let shard = index.map_or(usize::MAX, |i| self.issued[i].shard);
                self.admit("retry_failed", core, model, shard)?;
                if core.is_ok() {
                    ended_by_input = Some((ticket, true));
                }
                Outcome::Admission(core)
            }
            Op::Shutdown => {
                let now = self.now();
                self.buffer.shutdown(now);
                self.model.shutdown(now.as_nanos());
                per_shard_order = true;
                Outcome::Nothing
            }
            Op::Reconfigure(r) => {
                let config = r.config(&self.setup)?;
                let now = self.now();
                let core = self.buffer.reconfigure(now, config.clone());
                let model = self.model.reconfigure(now.as_nanos(), &config);
                if core != model {
                    return Err(format!(
                        "reconfigure answered {core:?}, model says {model:?}"
                    ));
                }
                if core.is_ok() {
                    self.size = config.size;
                }
                per_shard_order = true;
                Outcome::Reconfigured(core)
            }
            Op::CancelShutdown => {
                let now = self.now();
                let core = self.buffer.cancel_shutdown(now);
                let model = self.model.cancel_shutdown(now.as_nanos());
                if core != model {
                    return Err(format!(
                        "cancel_shutdown answered {core:?}, model says {model:?}"
                    ));
                }
                per_shard_order = true;
                Outcome::ShutdownCancelled(core)
            }
            Op::Pause { shard, all, max } => {
                let now = self.now();
                let max = Duration::from_millis(250 * u64::from(max % 16));
                let core = self.buffer.pause(now, scope(shard, all), max);
                let model = self
                    .model
                    .operator_pause(now.as_nanos(), scope(shard, all), max);
                if core != model {
                    return Err(format!("pause answered {core:?}, model says {model:?}"));
                }
                per_shard_order = all;
                Outcome::Paused(core)
            }
            Op::Resume { shard, all } => {
                let now = self.now();
                let core = self.buffer.resume(now, scope(shard, all));
                let model = self
                    .model
                    .operator_resume(now.as_nanos(), scope(shard, all));
                if core != model {
                    return Err(format!("resume answered {core:?}, model says {model:?}"));
                }
                per_shard_order = all;
                Outcome::Paused(core)
            }
            Op::EndOfTime { shard } => {
                self.end_of_time = true;
                return self.apply(&Op::Request {
                    shard,
                    cause: Some(Cause::Reparent),
                });
            }
        };
        self.record(outcome, per_shard_order, is_tick, ended_by_input)
    }

    fn tick(&mut self) -> Outcome {
        let now = self.now();
        self.buffer.tick(now);
        self.model.tick(now.as_nanos());
        Outcome::Ticked(now)
    }

    /// Compares an admission with the model's answer, and records a newly issued ticket.
    fn admit(
        &mut self,
        what: &str,
        core: Result<Admission, InputError>,
        model: Result<Answer, InputError>,
        shard: usize,
    ) -> Result<(), String> {
        match (core, model) {
            (Ok(Admission::Wait(t)), Ok(Answer::Wait(i))) => self.issue(t, i, shard),
            (Ok(Admission::Proceed), Ok(Answer::Proceed)) => Ok(()),
            (Ok(Admission::Fail(a)), Ok(Answer::Fail(b))) if a == b => Ok(()),
            (Err(a), Err(b)) if a == b => Ok(()),
            (core, model) => Err(format!("{what} answered {core:?}, model says {model:?}")),
        }
    }

    fn issue(&mut self, ticket: Ticket, index: usize, shard: usize) -> Result<(), String> {
        if index != self.issued.len() {
            return Err(format!(
                "model issued ticket #{index}, expected #{}",
                self.issued.len()
            ));
        }
        if let Some(&earlier) = self.by_ticket.get(&ticket) {
            return Err(format!("{ticket:?} issued again (first as #{earlier})"));
        }
        // `Ticket::id` is unique for the life of the buffer.
        if let Some(earlier) = self
            .issued
            .iter()
            .position(|t| t.ticket.id() == ticket.id())
        {
            return Err(format!("{ticket:?} has the id of ticket #{earlier}"));
        }
        self.model.bind(index, ticket);
        self.by_ticket.insert(ticket, index);
        self.issued.push(Issued {
            ticket,
            shard,
            life: Life::Queued,
        });
        Ok(())
    }

    /// History check of a cancel/retry_done answer, from the core's side alone.
    fn check_ticket_answer(
        &self,
        ticket: Ticket,
        index: Option<usize>,
        retry_done: bool,
        answer: &Result<(), InputError>,
    ) -> Result<(), String> {
        let life = index.map(|i| self.issued[i].life);
        let fine = match (answer, life) {
            (Ok(()), Some(Life::Released)) => true,
            (Ok(()), Some(Life::Queued)) => !retry_done,
            (Err(InputError::Ticket(TicketError::Stale(t))), Some(Life::Ended)) => *t == ticket,
            (Err(InputError::Ticket(TicketError::NotIssued(t))), None) => {
                *t == ticket && self.buffer.ticket_status(ticket) == TicketStatus::NotIssued
            }
            (Err(InputError::Ticket(TicketError::NotReleased(t))), Some(Life::Queued)) => {
                retry_done && *t == ticket
            }
            _ => false,
        };
        if fine {
            Ok(())
        } else {
            Err(format!(
                "{ticket:?} in state {life:?} was answered {answer:?}"
            ))
        }
    }

    /// Collects the actions, compares them with the model's, updates the history and checks
    /// every invariant.
    fn record(
        &mut self,
        outcome: Outcome,
        per_shard_order: bool,
        is_tick: bool,
        ended_by_input: Option<(Ticket, bool)>,
    ) -> Result<(), String> {
        let (mut actions, mut expected) = std::mem::take(&mut self.spare);
        actions.clear();
        actions.extend(std::iter::from_fn(|| self.buffer.poll_action()));
        expected.clear();
        self.model.take_actions_into(&mut expected);
        if per_shard_order {
            // An input that visits several shards may visit them in any order.
            let key = |a: &Action| self.shard_of(a);
            actions.sort_by_key(key);
            expected.sort_by_key(key);
        }
        if actions != expected {
            return Err(format!(
                "actions {actions:#?}\nmodel expected {expected:#?}"
            ));
        }
        if let Some((ticket, _)) = ended_by_input {
            let i = self.by_ticket[&ticket];
            self.issued[i].life = Life::Ended;
        }
        for action in &actions {
            self.history(action)?;
        }
        self.check_state(is_tick)?;
        if let Some(transcript) = &mut self.transcript {
            transcript.push(Step {
                outcome: anonymous_outcome(outcome),
                actions: actions.iter().copied().map(anonymous_action).collect(),
                timeout: self.buffer.poll_timeout(),
            });
        }
        self.spare = (actions, expected);
        Ok(())
    }

    /// The shard an action is about, for ordering; `Closed` comes last.
    fn shard_of(&self, action: &Action) -> usize {
        match action {
            Action::Wake { ticket, .. } => self
                .by_ticket
                .get(ticket)
                .map_or(usize::MAX - 1, |&i| self.issued[i].shard),
            Action::FailoverStarted { shard, .. }
            | Action::StartDrain { shard, .. }
            | Action::DrainPaused { shard, .. }
            | Action::PauseStarted { shard, .. }
            | Action::PauseEnded { shard, .. }
            | Action::Metric(
                failover_buffer::Metric::BufferingStopped { shard, .. }
                | failover_buffer::Metric::DrainFinished { shard, .. },
            ) => shard.index(),
            Action::Closed => usize::MAX,
            _ => usize::MAX - 1,
        }
    }

    /// The history invariants (DESIGN §8.3): a wake only for a queued ticket, each ticket
    /// ends once, `Closed` once and only when nothing is held (retries may still run if the
    /// shutdown grace ran out).
    fn history(&mut self, action: &Action) -> Result<(), String> {
        match *action {
            Action::Wake { ticket, verdict } => {
                let Some(&i) = self.by_ticket.get(&ticket) else {
                    return Err(format!("Wake for {ticket:?}, which was never issued"));
                };
                let life = &mut self.issued[i].life;
                if *life != Life::Queued {
                    return Err(format!(
                        "Wake for {ticket:?}, which is {life:?}, not queued"
                    ));
                }
                *life = match verdict {
                    Verdict::Retry => Life::Released,
                    Verdict::Fail(_) => Life::Ended,
                };
            }
            Action::Closed => {
                if self.closed_seen {
                    return Err("Closed emitted twice".into());
                }
                if !self.buffer.is_shut_down() {
                    return Err("Closed without a shutdown".into());
                }
                // Nothing queued; nothing retrying either, unless the grace ran out.
                let grace_ran_out = self.buffer.shutdown_plan().is_some_and(|p| {
                    p.history()
                        .get(ShutdownPhase::WaitForRetries.id().index())
                        .and_then(|r| r.left)
                        .is_some_and(|(_, why)| why == PhaseEnd::MaxWaitElapsed)
                });
                if let Some(t) = self.issued.iter().find(|t| {
                    t.life == Life::Queued || (t.life == Life::Released && !grace_ran_out)
                }) {
                    return Err(format!("Closed while {:?} is {:?}", t.ticket, t.life));
                }
                self.closed_seen = true;
            }
            _ => {}
        }
        Ok(())
    }

    fn check_state(&self, is_tick: bool) -> Result<(), String> {
        let b = &self.buffer;
        b.check_invariants().map_err(|e| e.to_string())?;
        let live = self.issued.iter().filter(|t| t.life != Life::Ended).count();
        if b.free_slots() != self.size.saturating_sub(b.held_slots())
            || b.held_slots() != live
            || self.model.size() != self.size
        {
            return Err(format!(
                "slots: free {} + held {} vs size {}; {live} tickets live",
                b.free_slots(),
                b.held_slots(),
                self.size
            ));
        }
        if (b.free_slots(), b.held_slots()) != (self.model.free_slots(), self.model.held_slots()) {
            return Err("free/held slots differ from the model".into());
        }
        for (i, t) in self.issued.iter().enumerate() {
            let status = b.ticket_status(t.ticket);
            let consistent = match t.life {
                Life::Queued => status == TicketStatus::Queued,
                Life::Released => matches!(status, TicketStatus::Retrying(_)),
                Life::Ended => status == TicketStatus::Ended,
            };
            if !consistent || status != self.model.ticket_status(i) {
                return Err(format!(
                    "ticket #{i} {:?}: history {:?}, core {status:?}, model {:?}",
                    t.ticket,
                    t.life,
                    self.model.ticket_status(i)
                ));
            }
            if status.is_live()
                && b.ticket_shard(t.ticket) != Some(ShardId::from_index(t.shard as u32))
            {
                return Err(format!("ticket #{i} names the wrong shard"));
            }
        }
        if b.is_closed() != self.closed_seen || b.is_closed() != self.model.is_closed() {
            return Err("is_closed disagrees with the Closed action or the model".into());
        }
        if b.is_shut_down() != self.model.is_shut_down() {
            return Err("is_shut_down differs from the model".into());
        }
        let progress = b.shutdown_progress(b.now());
        if progress.as_ref().and_then(|p| p.phase) != self.model.shutdown_phase() {
            return Err(format!(
                "shutdown phase {progress:?}, model {:?}",
                self.model.shutdown_phase()
            ));
        }
        if let Some(p) = progress {
            if p.queued + p.retrying != b.held_slots() {
                return Err(format!("shutdown progress {p:?} miscounts the held slots"));
            }
        }
        if b.now().as_nanos() != self.model.now() {
            return Err(format!(
                "now {} vs model {}",
                b.now().as_nanos(),
                self.model.now()
            ));
        }
        if b.input_stats() != self.model.input_stats() {
            return Err(format!(
                "{:?}\nmodel {:?}",
                b.input_stats(),
                self.model.input_stats()
            ));
        }
        let timeout = b.poll_timeout();
        if is_tick && timeout.is_some_and(|at| at <= b.now()) {
            return Err(format!(
                "poll_timeout {timeout:?} after tick at {}",
                b.now()
            ));
        }
        if timeout.map(Timestamp::as_nanos) != self.model.next_timeout() {
            return Err(format!(
                "poll_timeout {timeout:?}, model {:?}",
                self.model.next_timeout().map(Timestamp::from_nanos)
            ));
        }
        if let Some(d) = b.next_deadline() {
            // Several timers may fall due at once; `next_deadline` names one of the shards
            // concerned and, for it, the timer named first: max failover duration, then the
            // drain back-off, then the operator pause's bound, then the window.
            const ORDER: [TimerKind; 4] = [
                TimerKind::MaxFailoverDuration,
                TimerKind::DrainBackoff,
                TimerKind::PauseExpiry,
                TimerKind::Window,
            ];
            // The kinds the model has due then for that shard, as bits in `ORDER`'s order
            // (a set, not a vector: this runs after every input the exhaustive test tries).
            let mut due = 0u8;
            self.model.each_timer(|at, shard, kind| {
                if at == d.at.as_nanos() && shard == d.shard.index() {
                    due |= ORDER.iter().position(|&k| k == kind).map_or(0, |i| 1 << i);
                }
            });
            let first = (due != 0).then(|| ORDER[due.trailing_zeros() as usize]);
            if first != Some(d.kind) || Some(d.at) != timeout {
                let due: Vec<TimerKind> = (0..ORDER.len())
                    .filter(|i| due & (1 << i) != 0)
                    .map(|i| ORDER[i])
                    .collect();
                return Err(format!(
                    "next_deadline {d:?}; the model has {due:?} due then for that shard"
                ));
            }
        }
        for shard in 0..self.shards {
            let id = ShardId::from_index(shard as u32);
            let core = (
                b.shard_state(id).unwrap_or(ShardState::Idle),
                b.queued(id).unwrap_or(usize::MAX),
                b.draining_in_flight(id).unwrap_or(usize::MAX),
                b.highest_term(id),
            );
            if core != self.model.shard_view(shard) {
                return Err(format!(
                    "shard {shard} (state, queued, in drain, term): core {core:?}, model {:?}",
                    self.model.shard_view(shard)
                ));
            }
            if b.pause_expiry(id).map(Timestamp::as_nanos) != self.model.pause_expiry(shard) {
                return Err(format!(
                    "shard {shard} pause expiry: core {:?}, model {:?}",
                    b.pause_expiry(id),
                    self.model.pause_expiry(shard)
                ));
            }
            if b.shard_mode(id) != Some(self.model.shard_mode(shard)) {
                return Err(format!("shard {shard} mode differs"));
            }
            if !self.model.same_episode(shard, b.episode(id)) {
                return Err(format!(
                    "shard {shard} episode: core {:?}, model {}",
                    b.episode(id),
                    self.model.episode_debug(shard)
                ));
            }
            let stats = b.shard_stats(id).ok_or("registered shard has no stats")?;
            self.model
                .compare_stats(shard, stats)
                .map_err(|e| format!("shard {shard} counters: {e}"))?;
            let waits = b
                .wait_histograms(id)
                .ok_or("registered shard has no histograms")?;
            self.model
                .compare_waits(shard, waits)
                .map_err(|e| format!("shard {shard} wait histograms: {e}"))?;
        }
        Ok(())
    }

    /// Shuts down (again, after a cancel) and reports every released retry done until
    /// nothing is held: the buffer must then be closed, every ticket ended, every slot free
    /// and every shard idle.
    pub(crate) fn finish(&mut self) -> Result<(), String> {
        self.apply(&Op::Shutdown)?;
        while self.issued.iter().any(|t| t.life != Life::Ended) {
            if !self.issued.iter().any(|t| t.life == Life::Released) {
                return Err("after shutdown, queued tickets wait with no retry to finish".into());
            }
            self.apply(&Op::RetryDone(TicketRef::Released(0)))?;
        }
        if !self.closed_seen || self.buffer.free_slots() != self.size {
            return Err("nothing held, yet not closed or slots missing".into());
        }
        for shard in self.buffer.shards() {
            if self.buffer.shard_state(shard) != Some(ShardState::Idle) {
                return Err(format!("{shard:?} is not idle once everything ended"));
            }
        }
        Ok(())
    }
}

/// A ticket without its buffer's identity, which differs between two buffers in one
/// process: what the determinism check compares.
fn anonymous(ticket: Ticket) -> Ticket {
    Ticket::from_parts(ticket.slot(), ticket.id())
}

fn anonymous_outcome(outcome: Outcome) -> Outcome {
    match outcome {
        Outcome::Admission(Ok(Admission::Wait(t))) => {
            Outcome::Admission(Ok(Admission::Wait(anonymous(t))))
        }
        Outcome::Admission(Err(e)) | Outcome::Input(Err(e)) => {
            let e = match e {
                InputError::Ticket(TicketError::Stale(t)) => {
                    InputError::Ticket(TicketError::Stale(anonymous(t)))
                }
                InputError::Ticket(TicketError::NotReleased(t)) => {
                    InputError::Ticket(TicketError::NotReleased(anonymous(t)))
                }
                InputError::Ticket(TicketError::NotIssued(t)) => {
                    InputError::Ticket(TicketError::NotIssued(anonymous(t)))
                }
                e => e,
            };
            match outcome {
                Outcome::Admission(_) => Outcome::Admission(Err(e)),
                _ => Outcome::Input(Err(e)),
            }
        }
        other => other,
    }
}

fn anonymous_action(action: Action) -> Action {
    match action {
        Action::Wake { ticket, verdict } => Action::Wake {
            ticket: anonymous(ticket),
            verdict,
        },
        other => other,
    }
}

fn same(
    what: &str,
    core: &Result<(), InputError>,
    model: &Result<(), InputError>,
) -> Result<(), String> {
    if core == model {
        Ok(())
    } else {
        Err(format!("{what} answered {core:?}, model says {model:?}"))
    }
}

/// Input of the `config` fuzz target, decoded by hand so that sizes and durations range
/// over everything, extremes included.
#[derive(Clone, Debug)]
pub(crate) struct ConfigInput {
    pub(crate) filter: String,
    pub(crate) config: Config,
    pub(crate) names: Vec<(String, String)>,
    pub(crate) times: Vec<u64>,
}

impl<'a> Arbitrary<'a> for ConfigInput {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let filter: String = u.arbitrary()?;
        let small = |u: &mut Unstructured<'a>| -> arbitrary::Result<usize> {
            if u.ratio(3, 4)? {
                u.int_in_range(0..=8)
            } else {
                u.arbitrary()
            }
        };
        let duration = |u: &mut Unstructured<'a>| -> arbitrary::Result<Duration> {
            if u.ratio(3, 4)? {
                Ok(Duration::from_millis(u.int_in_range(0..=3000)?))
            } else {
                u.arbitrary()
            }
        };
        let config = Config {
            enabled: u.arbitrary()?,
            dry_run: u.arbitrary()?,
            size: small(u)?,
            window: duration(u)?,
            max_failover_duration: duration(u)?,
            min_time_between_failovers: duration(u)?,
            drain_concurrency: small(u)?,
            drain_backoff: duration(u)?,
            filter: ShardFilter::new(),
            proactive_start: u.arbitrary()?,
            shutdown_grace: duration(u)?,
            eviction: *u.choose(&Eviction::ALL)?,
            max_per_shard: u.arbitrary()?,
            max_bytes: u.arbitrary()?,
            max_pause: duration(u)?,
        };
        let names = u.arbitrary()?;
        let times = u.arbitrary()?;
        Ok(ConfigInput {
            filter,
            config,
            names,
            times,
        })
    }
}

/// The `config` fuzz target: filter parsing round-trips, validation agrees with
/// `Buffer::new`, modes agree with `Config::mode_for`, and a short episode at arbitrary
/// (extreme) times panics nowhere.
pub(crate) fn fuzz_config(data: &[u8]) {
    let Ok(mut input) = ConfigInput::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    if let Err(e) = check_config(&mut input) {
        panic!("{e}\n{input:#?}");
    }
}

fn check_config(input: &mut ConfigInput) -> Result<(), String> {
    match input.filter.parse::<ShardFilter>() {
        Ok(filter) => {
            check_filter_round_trip(&filter)?;
            input.config.filter = filter;
        }
        Err(e) => {
            // Refusals must be printable.
            let _ = e.to_string();
        }
    }
    let valid = input.config.validate();
    let buffer = Buffer::new(input.config.clone());
    let mut buffer = match (valid, buffer) {
        (Ok(()), Ok(buffer)) => buffer,
        (Err(a), Err(b)) if a == b => {
            let _ = a.to_string();
            return Ok(());
        }
        (valid, buffer) => {
            return Err(format!(
                "validate says {valid:?}, Buffer::new says {:?}",
                buffer.map(|_| ())
            ));
        }
    };
    let mut ids = Vec::new();
    for (ks, shard) in &input.names {
        let id = buffer.register_shard(ks, shard);
        if buffer.shard_mode(id) != Some(input.config.mode_for(ks, shard))
            || buffer.shard_id(ks, shard) != Some(id)
        {
            return Err(format!(
                "{ks}/{shard}: mode or id differs from the config's"
            ));
        }
        ids.push(id);
    }
    // A short episode per shard at the given instants, which may be anywhere on the clock.
    let mut times = input.times.iter().copied().map(Timestamp::from_nanos);
    let mut next = || times.next().unwrap_or(Timestamp::MAX);
    for &id in &ids {
        let _ = buffer.request(next(), id, Some(FailoverCause::Reparent));
        // Sizes at and beyond the largest budget, whose sums pass `u64::MAX`: refused or
        // counted, never overflowing.
        for size in [
            u64::MAX,
            Config::LARGEST_MAX_BYTES,
            Config::LARGEST_MAX_BYTES,
        ] {
            let _ = buffer.request_sized(next(), id, Some(FailoverCause::Reparent), size);
        }
        buffer.check_invariants().map_err(|e| e.to_string())?;
        let _ = buffer.health(
            next(),
            id,
            HealthStamp {
                primary: PrimaryId(1),
                term: 1,
                serving: false,
            },
        );
        buffer.tick(next());
        let _ = buffer.health(
            next(),
            id,
            HealthStamp {
                primary: PrimaryId(2),
                term: 2,
                serving: true,
            },
        );
        while let Some(action) = buffer.poll_action() {
            if let Action::Wake {
                ticket,
                verdict: Verdict::Retry,
            } = action
            {
                buffer
                    .retry_done(next(), ticket)
                    .map_err(|e| e.to_string())?;
            }
        }
        if let Some(at) = buffer.poll_timeout() {
            buffer.tick(at);
            if buffer.poll_timeout().is_some_and(|t| t <= buffer.now()) {
                return Err("poll_timeout not later than the tick".into());
            }
        }
        while buffer.poll_action().is_some() {}
        buffer.check_invariants().map_err(|e| e.to_string())?;
    }
    buffer.shutdown(next());
    while let Some(action) = buffer.poll_action() {
        if let Action::Wake {
            ticket,
            verdict: Verdict::Retry,
        } = action
        {
            buffer
                .retry_done(next(), ticket)
                .map_err(|e| e.to_string())?;
        }
    }
    buffer.check_invariants().map_err(|e| e.to_string())?;
    Ok(())
}

/// A filter rebuilt from its own `keyspaces()` and `shards()`, and reparsed from its
/// printed form, is the same filter.
fn check_filter_round_trip(filter: &ShardFilter) -> Result<(), String> {
    let mut rebuilt = ShardFilter::new();
    let mut entries = Vec::new();
    for ks in filter.keyspaces() {
        rebuilt
            .add_keyspace(ks)
            .map_err(|e| format!("add_keyspace({ks:?}): {e}"))?;
        entries.push(ks.to_string());
    }
    for (ks, shard) in filter.shards() {
        rebuilt
            .add_shard(ks, shard)
            .map_err(|e| format!("add_shard({ks:?}, {shard:?}): {e}"))?;
        if !filter.contains(ks, shard) {
            return Err(format!("filter lists {ks}/{shard} but does not contain it"));
        }
        entries.push(format!("{ks}/{shard}"));
    }
    if &rebuilt != filter {
        return Err(format!("rebuilt {rebuilt:?} differs from {filter:?}"));
    }
    let printed = entries.join(",");
    match printed.parse::<ShardFilter>() {
        Ok(reparsed) if &reparsed == filter => Ok(()),
        other => Err(format!("{printed:?} reparsed as {other:?}, not {filter:?}")),
    }
}
