//! The core checked against a reference model on random input sequences (DESIGN §8).
//!
//! The model (`model/reference.rs`) is a deliberately naive re-implementation of the
//! documented rules; the harness (`fuzz/harness/ops.rs`, shared with the fuzz targets) runs
//! both side by side and compares every answer, action, timer, slot count, ticket status
//! and counter after every input, checks `Buffer::check_invariants` and the history
//! invariants (every ticket ends exactly once, no wake for an ended ticket, `poll_timeout`
//! after `tick(t)` later than `t`), then shuts down and checks that everything ends.
//!
//! Each property runs 1,000 cases by default; set `PROPTEST_CASES` to change that. A failure
//! shrinks to a short, readable list of ops.

#[allow(dead_code)]
#[path = "../../fuzz/harness/ops.rs"]
mod ops;

use failover_buffer::drain::PhaseEnd;
use failover_buffer::{
    EvictReason, Eviction, Reason, ShardId, ShutdownPhase, SkipReason, StopReason,
};
use ops::{Cause, FILTERS, Op, Reconf, SetUp, Term, TicketRef, Topo};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config as RunnerConfig, TestRunner};

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000)
}

fn runner_config() -> RunnerConfig {
    RunnerConfig {
        cases: cases(),
        max_shrink_iters: 10_000,
        ..RunnerConfig::default()
    }
}

/// Small valid configs: sizes 1–6, drain concurrency 1–3, timers in steps of 250 ms so that
/// deadlines coincide with each other and with the clock steps below.
fn setup() -> impl Strategy<Value = SetUp> {
    (
        (1usize..=4, 1usize..=6, 1u64..=12, 0u64..=12, 2u64..=12),
        (
            1usize..=3,
            1u64..=8,
            prop::bool::weighted(0.9),
            any::<bool>(),
        ),
        0..FILTERS.len(),
        prop::bool::weighted(0.7),
        prop::option::weighted(0.6, 1u64..=8),
        (
            0..Eviction::ALL.len(),
            prop::option::weighted(0.4, 1usize..=6),
            prop::option::weighted(0.4, 1u64..=16),
        ),
    )
        .prop_map(
            |(
                (shards, size, window, extra, min_time),
                (concurrency, backoff, enabled, dry_run),
                f,
                proactive_start,
                grace,
                (eviction, max_per_shard, max_bytes),
            )| {
                SetUp {
                    shards,
                    size,
                    window_ms: 250 * window,
                    max_failover_duration_ms: 250 * (window + extra),
                    min_time_between_failovers_ms: 500 * min_time,
                    drain_concurrency: concurrency,
                    drain_backoff_ms: 250 * backoff,
                    enabled,
                    dry_run,
                    filter: FILTERS[f],
                    proactive_start,
                    shutdown_grace_ms: grace.map(|g| 250 * g),
                    eviction: Eviction::ALL[eviction],
                    max_per_shard,
                    max_bytes,
                }
                .normalised()
            },
        )
}

/// Clock steps: zero, one millisecond either side of the 250 ms grid, on the grid, long
/// jumps past every timer, and backwards.
fn advance() -> impl Strategy<Value = i16> {
    prop::sample::select(vec![
        0, 1, 249, 250, 499, 500, 750, 999, 1000, 1001, 2000, 3000, 5000, 20000, -1, -750,
    ])
}

fn op(shards: usize) -> impl Strategy<Value = Op> {
    let n = shards as u8;
    // Mostly registered shards, sometimes one the buffer never issued.
    let shard = prop_oneof![12 => 0..n, 1 => Just(n)];
    let cause = prop::option::weighted(0.75, cause_some());
    let term = prop_oneof![
        1 => Just(Term::Older),
        3 => Just(Term::Same),
        3 => Just(Term::Newer),
        1 => Just(Term::Jump)
    ];
    let topo = prop_oneof![Just(Topo::ShardMissing), Just(Topo::TrafficSwitched)];
    let k = any::<u8>();

    let forged =
        (0u8..8, 0u8..48).prop_map(|(slot, generation)| TicketRef::Forged { slot, generation });
    prop_oneof![
        24 => (shard.clone(), cause).prop_map(|(shard, cause)| Op::Request { shard, cause }),
        12 => (shard.clone(), 0u8..3, term, prop::bool::weighted(0.7))
            .prop_map(|(shard, primary, term, serving)| Op::Health { shard, primary, term, serving }),
        3 => (shard.clone(), topo).prop_map(|(shard, event)| Op::Topology { shard, event }),
        14 => advance().prop_map(|advance_ms| Op::Tick { advance_ms }),
        3 => advance().prop_map(|advance_ms| Op::Wait { advance_ms }),
        8 => Just(Op::TickAtDeadline),
        12 => k.prop_map(|k| Op::RetryDone(TicketRef::Released(k))),
        2 => k.prop_map(|k| Op::Cancel(TicketRef::Released(k))),
        4 => k.prop_map(|k| Op::Cancel(TicketRef::Queued(k))),
        1 => k.prop_map(|k| Op::RetryDone(TicketRef::Queued(k))),
        2 => issued_any().prop_map(Op::Cancel),
        1 => issued_any().prop_map(Op::RetryDone),
        1 => forged.clone().prop_map(Op::Cancel),
        1 => forged.prop_map(Op::RetryDone),
        6 => (k, cause_some()).prop_map(|(k, cause)| Op::RetryFailed { ticket: TicketRef::Released(k), cause }),
        1 => (issued_any(), cause_some()).prop_map(|(ticket, cause)| Op::RetryFailed { ticket, cause }),
        2 => Just(Op::Shutdown),
        2 => Just(Op::CancelShutdown),
        2 => reconf().prop_map(Op::Reconfigure),
        2 => (shard.clone(), prop::bool::weighted(0.3), prop_oneof![1 => Just(0u8), 8 => 1u8..=15])
            .prop_map(|(shard, all, max)| Op::Pause { shard, all, max }),
        2 => (shard.clone(), prop::bool::weighted(0.3))
            .prop_map(|(shard, all)| Op::Resume { shard, all }),
    ]
}

/// Mostly valid new limits, sometimes an invalid or mode-changing config.
fn reconf() -> impl Strategy<Value = Reconf> {
    (
        (
            prop_oneof![1 => Just(0u8), 8 => 1u8..=7],
            1u8..=12,
            0u8..=12,
        ),
        (2u8..=12, prop_oneof![1 => Just(0u8), 8 => 1u8..=3], 1u8..=7),
        (
            any::<bool>(),
            prop::bool::weighted(0.05),
            prop_oneof![1 => Just(0u8), 4 => 1u8..=14, 3 => Just(15u8)],
        ),
        (
            0u8..3,
            prop_oneof![4 => Just(0u8), 1 => Just(1u8), 4 => 2u8..=7],
            prop_oneof![4 => Just(0u8), 1 => Just(1u8), 4 => 2u8..=15],
            prop_oneof![2 => Just(0u8), 1 => 1u8..=7],
        ),
    )
        .prop_map(
            |(
                (size, window, extra),
                (min_time, concurrency, backoff),
                (proactive_start, change_mode, grace),
                (eviction, max_per_shard, max_bytes, max_pause),
            )| {
                Reconf {
                    size,
                    window,
                    extra,
                    min_time,
                    concurrency,
                    backoff,
                    proactive_start,
                    change_mode,
                    grace,
                    eviction,
                    max_per_shard,
                    max_bytes,
                    max_pause,
                }
            },
        )
}

fn cause_some() -> impl Strategy<Value = Cause> {
    prop_oneof![3 => Just(Cause::Reparent), 1 => Just(Cause::Resharding), 1 => Just(Cause::MoveTables)]
}

/// Any ticket issued so far (ended or not), or one never issued.
fn issued_any() -> impl Strategy<Value = TicketRef> {
    (0u16..48).prop_map(TicketRef::Issued)
}

fn scenario() -> impl Strategy<Value = (SetUp, Vec<Op>)> {
    setup().prop_flat_map(|setup| {
        let ops = prop::collection::vec(op(setup.shards), 1..160);
        // Now and then, time reaches its end and a few more inputs follow there.
        let n = setup.shards as u8;
        let end =
            prop::option::weighted(0.1, (0..n, prop::collection::vec(op(setup.shards), 0..8)));
        (Just(setup), ops, end).prop_map(|(setup, mut ops, end)| {
            if let Some((shard, tail)) = end {
                ops.push(Op::EndOfTime { shard });
                ops.extend(tail);
            }
            (setup, ops)
        })
    })
}

proptest! {
    #![proptest_config(runner_config())]

    /// After every input the core and the model agree on everything observable, every
    /// invariant holds, and after a shutdown every request ends and the buffer closes.
    #[test]
    fn core_behaves_like_the_reference_model((setup, ops) in scenario()) {
        ops::run(&setup, &ops).map_err(TestCaseError::fail)?;
    }

    /// The same inputs on two fresh buffers give the same outputs (DESIGN §8.7).
    #[test]
    fn same_inputs_give_same_outputs((setup, ops) in scenario()) {
        ops::check_deterministic(&setup, &ops).map_err(TestCaseError::fail)?;
    }
}

/// Guards the strategy itself: over a fixed sample of generated cases, every rule the
/// properties are meant to exercise is actually reached, so a change to the weights cannot
/// quietly turn the properties into tests of nothing.
#[test]
fn generated_cases_reach_every_rule() {
    let mut runner = TestRunner::deterministic();
    let strategy = scenario();
    let mut seen = Reached::default();
    for _ in 0..600 {
        let (setup, ops) = strategy.new_tree(&mut runner).expect("strategy").current();
        seen.add(&setup, &ops);
    }
    seen.assert_all();
}

#[derive(Default, Debug)]
struct Reached {
    started: bool,
    window_expired: bool,
    evicted_full: bool,
    skipped_full: bool,
    too_recent_failover: bool,
    too_recent_reparent: bool,
    drain_paused: bool,
    stops: [bool; 5],
    cancelled_queued: bool,
    closed_with_work: bool,
    reconfigured_while_holding: bool,
    end_of_time: bool,
    shutdown_cancelled: bool,
    shutdown_cancelled_while_queued: bool,
    grace_ran_out: bool,
    /// Per eviction policy: a full buffer (or a shard at its cap) evicted or refused.
    full_under_policy: [bool; 3],
    /// A shard at a cap below the size made room from its own queue, or was refused.
    full_at_cap: bool,
}

impl Reached {
    fn add(&mut self, setup: &SetUp, ops: &[Op]) {
        let mut h = ops::Harness::new(setup).expect("a valid set-up");
        for op in ops {
            let queued: usize = h
                .buffer()
                .shards()
                .filter_map(|s| h.buffer().queued(s))
                .sum();
            let running = h.buffer().is_shut_down() && !h.buffer().is_closed();
            h.apply(op)
                .expect("a generated case fails: run the properties to shrink it");
            if *op == Op::CancelShutdown && running {
                self.shutdown_cancelled = true;
                self.shutdown_cancelled_while_queued |= queued > 0;
            }
        }
        self.grace_ran_out |= h.buffer().shutdown_plan().is_some_and(|p| {
            p.history()
                .get(ShutdownPhase::WaitForRetries.id().index())
                .and_then(|r| r.left)
                .is_some_and(|(_, why)| why == PhaseEnd::MaxWaitElapsed)
        });
        h.finish()
            .expect("a generated case fails: run the properties to shrink it");
        for shard in 0..setup.shards {
            let id = ShardId::from_index(shard as u32);
            let stats = *h.buffer().shard_stats(id).expect("registered");
            self.started |= stats.starts > 0;
            self.window_expired |= stats.evicted[EvictReason::WindowExceeded] > 0;
            self.evicted_full |= stats.evicted[EvictReason::BufferFull] > 0;
            self.cancelled_queued |= stats.evicted[EvictReason::ContextDone] > 0;
            self.skipped_full |= stats.skipped[SkipReason::BufferFull] > 0;
            self.too_recent_failover |= stats.skipped[SkipReason::LastFailoverTooRecent] > 0;
            self.too_recent_reparent |= stats.skipped[SkipReason::LastReparentTooRecent] > 0;
            self.drain_paused |= stats.drains_paused > 0;
            for (i, &r) in StopReason::ALL.iter().enumerate() {
                self.stops[i] |= stats.stops[r] > 0;
            }
            self.closed_with_work |= ops.contains(&Op::Shutdown) && stats.buffered > 0;
            let full = stats.evicted[EvictReason::BufferFull] > 0
                || stats.skipped[SkipReason::BufferFull] > 0;
            let policy = Eviction::ALL
                .iter()
                .position(|&e| e == setup.eviction)
                .expect("a known policy");
            self.full_under_policy[policy] |= full;
            self.full_at_cap |= full && setup.max_per_shard.is_some_and(|cap| cap < setup.size);
        }
        let reconfigured = ops.iter().any(|op| matches!(op, Op::Reconfigure(_)));
        self.reconfigured_while_holding |= reconfigured
            && (0..setup.shards).any(|s| {
                let id = ShardId::from_index(s as u32);
                h.buffer().shard_stats(id).is_some_and(|st| st.buffered > 0)
            });
        self.end_of_time |= ops.iter().any(|op| matches!(op, Op::EndOfTime { .. }));
    }

    fn assert_all(&self) {
        let all = self.started
            && self.window_expired
            && self.evicted_full
            && self.skipped_full
            && self.too_recent_failover
            && self.too_recent_reparent
            && self.drain_paused
            && self.stops.iter().all(|&s| s)
            && self.cancelled_queued
            && self.closed_with_work
            && self.reconfigured_while_holding
            && self.end_of_time
            && self.shutdown_cancelled
            && self.shutdown_cancelled_while_queued
            && self.grace_ran_out
            && self.full_under_policy.iter().all(|&f| f)
            && self.full_at_cap;
        assert!(
            all,
            "some rule is never exercised by the generated cases: {self:#?}"
        );
    }
}
