//! A test harness that drives a `Buffer` in simulated time and checks, after every input, the
//! invariants of DESIGN §8, including the ones that need history (every ticket ends exactly
//! once; `poll_timeout` after `tick(t)` is later than `t`).

#![allow(dead_code, unreachable_pub)]

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use failover_buffer::{
    Action, Admission, Buffer, Config, FailoverCause, HealthStamp, InputError, PrimaryId, ShardId,
    ShardState, ShardStats, Ticket, Timestamp, TopologyEvent, Verdict,
};

/// Vitess's `NewDefaultConfig()` as its tests use it: flag defaults but 10 slots.
pub fn vitess_test_config() -> Config {
    Config {
        size: 10,
        ..Config::default()
    }
}

/// Vitess's flag defaults with buffering enabled for every shard.
pub fn enabled() -> Config {
    Config {
        enabled: true,
        ..Config::default()
    }
}

/// A serving stamp.
pub fn serving(primary: u64, term: u64) -> HealthStamp {
    HealthStamp {
        primary: PrimaryId(primary),
        term,
        serving: true,
    }
}

/// A not-serving stamp.
pub fn not_serving(primary: u64, term: u64) -> HealthStamp {
    HealthStamp {
        primary: PrimaryId(primary),
        term,
        serving: false,
    }
}

pub const FAILOVER: Option<FailoverCause> = Some(FailoverCause::Reparent);

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Where the harness believes a ticket is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Life {
    Queued,
    Retrying,
}

pub struct Harness {
    pub buffer: Buffer,
    pub now: Timestamp,
    /// Every action seen, in order.
    pub log: Vec<Action>,
    /// Actions not yet taken by `take_actions`.
    pending: Vec<Action>,
    live: BTreeMap<Ticket, Life>,
    ended: BTreeSet<Ticket>,
}

impl Harness {
    pub fn new(config: Config) -> Self {
        Harness {
            buffer: Buffer::new(config).expect("valid config"),
            now: Timestamp::from_secs(1_000),
            log: Vec::new(),
            pending: Vec::new(),
            live: BTreeMap::new(),
            ended: BTreeSet::new(),
        }
    }

    pub fn shard(&mut self, keyspace: &str, shard: &str) -> ShardId {
        self.buffer.register_shard(keyspace, shard)
    }

    /// Drains the buffer's actions, checking ticket life and the invariants.
    fn after_input(&mut self) {
        while let Some(action) = self.buffer.poll_action() {
            if let Action::Wake { ticket, verdict } = action {
                assert!(!self.ended.contains(&ticket), "wake for ended {ticket:?}");
                assert_eq!(
                    self.live.get(&ticket),
                    Some(&Life::Queued),
                    "wake for {ticket:?}, which is not queued"
                );
                match verdict {
                    Verdict::Retry => {
                        self.live.insert(ticket, Life::Retrying);
                    }
                    Verdict::Fail(_) => self.end(ticket),
                }
            }
            self.log.push(action);
            self.pending.push(action);
        }
        if let Err(v) = self.buffer.check_invariants() {
            panic!("{v}");
        }
        assert_eq!(
            self.live.len(),
            self.buffer.held_slots(),
            "live tickets and held slots differ"
        );
    }

    fn end(&mut self, ticket: Ticket) {
        assert!(
            self.live.remove(&ticket).is_some(),
            "{ticket:?} ended twice"
        );
        self.ended.insert(ticket);
    }

    /// New actions since the last call.
    pub fn take_actions(&mut self) -> Vec<Action> {
        std::mem::take(&mut self.pending)
    }

    /// The tickets woken since the last `take_actions`, with their verdicts, in order.
    pub fn take_wakes(&mut self) -> Vec<(Ticket, Verdict)> {
        self.take_actions()
            .into_iter()
            .filter_map(|a| match a {
                Action::Wake { ticket, verdict } => Some((ticket, verdict)),
                _ => None,
            })
            .collect()
    }

    pub fn request(&mut self, shard: ShardId, cause: Option<FailoverCause>) -> Admission {
        let admission = self
            .buffer
            .request(self.now, shard, cause)
            .expect("known shard");
        if let Admission::Wait(t) = admission {
            assert!(self.live.insert(t, Life::Queued).is_none(), "ticket reused");
        }
        self.after_input();
        admission
    }

    /// `Buffer::request_sized`: a request carrying `bytes`.
    #[allow(dead_code, reason = "only the byte-budget tests send sizes")]
    pub fn request_sized(
        &mut self,
        shard: ShardId,
        cause: Option<FailoverCause>,
        bytes: u64,
    ) -> Admission {
        let admission = self
            .buffer
            .request_sized(self.now, shard, cause, bytes)
            .expect("known shard");
        if let Admission::Wait(t) = admission {
            assert!(self.live.insert(t, Life::Queued).is_none(), "ticket reused");
        }
        self.after_input();
        admission
    }

    /// A request that must be held.
    pub fn wait(&mut self, shard: ShardId, cause: Option<FailoverCause>) -> Ticket {
        match self.request(shard, cause) {
            Admission::Wait(t) => t,
            other => panic!("expected Wait, got {other:?}"),
        }
    }

    pub fn health(&mut self, shard: ShardId, stamp: HealthStamp) -> Result<(), InputError> {
        let r = self.buffer.health(self.now, shard, stamp);
        self.after_input();
        r
    }

    pub fn topology(&mut self, shard: ShardId, event: TopologyEvent) {
        self.buffer
            .topology(self.now, shard, event)
            .expect("known shard");
        self.after_input();
    }

    pub fn retry_done(&mut self, ticket: Ticket) -> Result<(), InputError> {
        let r = self.buffer.retry_done(self.now, ticket);
        if r.is_ok() {
            assert_eq!(self.live.get(&ticket), Some(&Life::Retrying));
            self.end(ticket);
        }
        self.after_input();
        r
    }

    /// The retry of `ticket` failed again with a failover error.
    pub fn retry_failed(&mut self, ticket: Ticket) -> Admission {
        let admission = self
            .buffer
            .retry_failed(self.now, ticket, FailoverCause::Reparent)
            .expect("retrying ticket");
        assert_eq!(self.live.get(&ticket), Some(&Life::Retrying));
        self.end(ticket);
        if let Admission::Wait(t) = admission {
            assert!(self.live.insert(t, Life::Queued).is_none(), "ticket reused");
        }
        self.after_input();
        admission
    }

    /// Like `retry_failed`, for a request that must be held again.
    pub fn retry_fails_and_waits(&mut self, ticket: Ticket) -> Ticket {
        match self.retry_failed(ticket) {
            Admission::Wait(t) => t,
            other => panic!("expected Wait, got {other:?}"),
        }
    }

    pub fn cancel(&mut self, ticket: Ticket) -> Result<(), InputError> {
        let r = self.buffer.cancel(self.now, ticket);
        if r.is_ok() {
            self.end(ticket);
        }
        self.after_input();
        r
    }

    /// `Buffer::pause` at `now`.
    pub fn pause(
        &mut self,
        scope: failover_buffer::PauseScope,
        max: Duration,
    ) -> Result<usize, failover_buffer::PauseError> {
        let r = self.buffer.pause(self.now, scope, max);
        self.after_input();
        r
    }

    /// `Buffer::resume` at `now`.
    pub fn resume(
        &mut self,
        scope: failover_buffer::PauseScope,
    ) -> Result<usize, failover_buffer::PauseError> {
        let r = self.buffer.resume(self.now, scope);
        self.after_input();
        r
    }

    pub fn shutdown(&mut self) {
        self.buffer.shutdown(self.now);
        self.after_input();
    }

    /// Calls off the shutdown at `now`.
    pub fn cancel_shutdown(&mut self) -> Result<(), failover_buffer::drain::DrainError> {
        let r = self.buffer.cancel_shutdown(self.now);
        self.after_input();
        r
    }

    /// The shutdown's steps reported since the last call.
    pub fn shutdown_steps(&mut self) -> Vec<failover_buffer::drain::DrainAction> {
        std::iter::from_fn(|| self.buffer.poll_shutdown_action()).collect()
    }

    /// Ticks at `now`, checking that the next deadline is then strictly later.
    pub fn tick(&mut self) {
        self.buffer.tick(self.now);
        if let Some(next) = self.buffer.poll_timeout() {
            assert!(
                next > self.now,
                "poll_timeout {next} not after tick at {}",
                self.now
            );
        }
        self.after_input();
    }

    /// Moves time forward by `d`, ticking at every deadline on the way, as a driver would.
    pub fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        while let Some(at) = self.buffer.poll_timeout() {
            if at > end {
                break;
            }
            self.now = self.now.max(at);
            self.tick();
        }
        self.now = end;
        self.tick();
    }

    /// Completes every retry in flight, and those each completion releases, until none is
    /// left: the Vitess test clients call `retryDone` as soon as they are woken. Returns
    /// the tickets completed, in order.
    pub fn complete_retries(&mut self) -> Vec<Ticket> {
        let mut done = Vec::new();
        while let Some((&t, _)) = self
            .live
            .iter()
            .filter(|&(_, &l)| l == Life::Retrying)
            .min_by_key(|&(t, _)| t.id())
        {
            self.retry_done(t).expect("retrying ticket");
            done.push(t);
        }
        done
    }

    pub fn retrying(&self) -> usize {
        self.live.values().filter(|&&l| l == Life::Retrying).count()
    }

    pub fn stats(&self, shard: ShardId) -> ShardStats {
        *self.buffer.shard_stats(shard).expect("known shard")
    }

    pub fn state(&self, shard: ShardId) -> ShardState {
        self.buffer.shard_state(shard).expect("known shard")
    }

    pub fn queued(&self, shard: ShardId) -> usize {
        self.buffer.queued(shard).expect("known shard")
    }

    /// Ends the scenario: nothing may be held, every slot is free, and every quiet shard
    /// balances (buffered == evicted + drained). Unlike Vitess v17+, this really checks.
    pub fn assert_quiet(&self) {
        assert!(self.live.is_empty(), "tickets still live: {:?}", self.live);
        assert_eq!(self.buffer.free_slots(), self.buffer.config().size);
        for shard in self.buffer.shards() {
            let s = self.stats(shard);
            assert_eq!(
                s.buffered,
                s.evicted.total() + s.drained,
                "{shard:?}: buffered != evicted + drained"
            );
        }
    }
}
