//! Shared set-up for the failover-buffer benchmarks and the memory probe.
//!
//! This crate is not published. Its criterion benchmarks live in `benches/`, one file per
//! crate measured, and `src/bin/memory.rs` prints the heap cost of a queued request. The
//! helpers here drive the sans-IO core the way a router would, so that every benchmark sets
//! up the same states the same way; see `README.md` for the figures and how they were taken.

pub mod held;

use std::collections::VecDeque;
use std::time::Duration;

use failover_buffer::{
    Action, Admission, Buffer, Config, FailoverCause, HealthStamp, PrimaryId, ShardId, Ticket,
    Timestamp, Verdict,
};

/// The failover error every benchmark's requests failed with.
pub const CAUSE: FailoverCause = FailoverCause::Reparent;

/// An enabled config holding up to `size` requests and draining `drain_concurrency` at a time.
///
/// `min_time_between_failovers` is cut to its least allowed value (1 s) so that a benchmark
/// loop can start a new episode after advancing its clock by one second; every other
/// setting is Vitess's default.
pub fn config(size: usize, drain_concurrency: usize) -> Config {
    Config {
        enabled: true,
        size,
        drain_concurrency,
        min_time_between_failovers: Duration::from_secs(1),
        ..Config::default()
    }
}

/// A serving stamp from primary 1 with `term`: it ends an episode that started below `term`.
pub fn serving(term: u64) -> HealthStamp {
    HealthStamp {
        primary: PrimaryId(1),
        term,
        serving: true,
    }
}

/// A core [`Buffer`] with one shard whose primary is known, driven as a router would.
///
/// Each episode runs at a later second than the one before and ends with a higher term, so
/// the same `Core` can go through any number of failovers.
#[derive(Debug)]
pub struct Core {
    /// The buffer.
    pub buffer: Buffer,
    /// Its only shard (more may be registered by the caller).
    pub shard: ShardId,
    /// The time of the latest input.
    pub now: Timestamp,
    /// The highest term sent so far.
    pub term: u64,
    /// Retries released and not yet reported done; kept here so that its capacity is reused.
    in_flight: VecDeque<Ticket>,
}

impl Core {
    /// A buffer of `size` slots draining `drain_concurrency` at a time, with one shard whose
    /// primary serves with term 1.
    pub fn new(size: usize, drain_concurrency: usize) -> Core {
        let mut buffer = Buffer::new(config(size, drain_concurrency)).expect("the config is valid");
        let shard = buffer.register_shard("bench", "0");
        let now = Timestamp::from_secs(1);
        buffer
            .health(now, shard, serving(1))
            .expect("the first stamp is never stale");
        Core {
            buffer,
            shard,
            now,
            term: 1,
            in_flight: VecDeque::with_capacity(drain_concurrency),
        }
    }

    /// Moves the clock on by one second (and a nanosecond), so that a shard whose episode
    /// ended at the previous time may start another (`min_time_between_failovers`).
    pub fn advance(&mut self) {
        self.now = self.now + Duration::from_nanos(1_000_000_001);
    }

    /// Queues `n` requests that failed with [`CAUSE`], the first of which starts the
    /// episode, and returns their tickets in queue order.
    ///
    /// # Panics
    ///
    /// If a request is not held, i.e. if the buffer has fewer than `n` free slots.
    pub fn enqueue(&mut self, n: usize) -> Vec<Ticket> {
        (0..n).map(|_| self.wait(self.shard)).collect()
    }

    /// Queues one request that failed with [`CAUSE`] on `shard`, discarding the actions.
    ///
    /// # Panics
    ///
    /// If the request is not held.
    pub fn wait(&mut self, shard: ShardId) -> Ticket {
        let admission = self.buffer.request(self.now, shard, Some(CAUSE));
        while self.buffer.poll_action().is_some() {}
        match admission {
            Ok(Admission::Wait(ticket)) => ticket,
            other => panic!("expected the request to wait, got {other:?}"),
        }
    }

    /// Sends `shard` a serving stamp with a new term, which ends its episode, then drains it:
    /// every released request's retry is reported done, oldest first, which releases the
    /// next. Returns how many requests were retried.
    pub fn end_and_drain(&mut self, shard: ShardId) -> usize {
        self.term += 1;
        self.buffer
            .health(self.now, shard, serving(self.term))
            .expect("terms only rise");
        self.collect_wakes();
        let mut retried = 0;
        while let Some(ticket) = self.in_flight.pop_front() {
            self.buffer
                .retry_done(self.now, ticket)
                .expect("a released ticket is live");
            retried += 1;
            self.collect_wakes();
        }
        retried
    }

    /// Carries out the pending actions: each retry released joins `in_flight`.
    fn collect_wakes(&mut self) {
        while let Some(action) = self.buffer.poll_action() {
            if let Action::Wake {
                ticket,
                verdict: Verdict::Retry,
            } = action
            {
                self.in_flight.push_back(ticket);
            }
        }
    }
}

/// `n` shards registered on one buffer of `size` slots (drain concurrency 1), each with a
/// primary serving at term 1.
pub fn shards(n: usize, size: usize) -> Core {
    let mut core = Core::new(size, 1);
    for i in 1..n {
        let shard = core.buffer.register_shard("bench", &i.to_string());
        core.buffer
            .health(core.now, shard, serving(1))
            .expect("the first stamp is never stale");
    }
    core
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_drain_retries_every_queued_request_and_frees_every_slot() {
        let mut core = Core::new(1_000, 16);
        core.enqueue(1_000);
        assert_eq!(core.buffer.free_slots(), 0);
        assert_eq!(core.end_and_drain(core.shard), 1_000);
        assert_eq!(core.buffer.free_slots(), 1_000);
        assert_eq!(core.buffer.check_invariants(), Ok(()));
    }

    #[test]
    fn a_shard_can_fail_over_again_after_the_clock_advances() {
        let mut core = Core::new(10, 1);
        core.enqueue(1);
        core.end_and_drain(core.shard);
        core.advance();
        core.enqueue(1);
        assert_eq!(core.end_and_drain(core.shard), 1);
    }
}

/// The root README's Rust examples (the core by hand, the tokio and thread-per-request
/// routers, cancellable shutdown), compiled and run as doctests so they cannot rot. They run
/// here, in the one unpublished crate that depends on every other, so that no published
/// crate needs a dev-dependency on its own dependents.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
