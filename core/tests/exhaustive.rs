//! Every state a small buffer can reach, each checked against DESIGN §8 and the reference
//! model (issue 18, part 1).
//!
//! GUARANTEES-PLACEHOLDER

#[allow(dead_code)]
#[path = "../../fuzz/harness/ops.rs"]
mod ops;

#[path = "exhaustive/alphabet.rs"]
mod alphabet;
#[path = "exhaustive/canonical.rs"]
mod canonical;
#[path = "exhaustive/debug_tree.rs"]
mod debug_tree;
#[path = "exhaustive/explorer.rs"]
mod explorer;

use std::collections::BTreeSet;

use alphabet::Steps;
use explorer::{Bound, Explored, explore};
use ops::{Cause, Harness, Op, SetUp, Term, TicketRef};

/// The clock step: the window and the drain back-off are one step, max failover duration
/// and min time between failovers two, so a few steps make every timer fire, and deadlines
/// coincide with each other and with ticks (where `<` and `<=` differ).
const STEP_MS: i16 = 500;

fn setup(shards: usize, size: usize, drain_concurrency: usize) -> SetUp {
    SetUp {
        shards,
        size,
        window_ms: 500,
        max_failover_duration_ms: 1000,
        min_time_between_failovers_ms: 1000,
        drain_concurrency,
        drain_backoff_ms: 500,
        enabled: true,
        dry_run: false,
        filter: "",
    }
}

/// Shard `ks0/0` enabled, `ks0/1` in `mode` (dry run or disabled) by way of a filter.
fn mixed(dry_run: bool) -> SetUp {
    SetUp {
        dry_run,
        filter: "ks0/0",
        ..setup(2, 2, 1)
    }
}

/// `EXHAUSTIVE_DEPTH`, if set, overrides every bound's depth (to try a deeper run).
fn depth(default: usize) -> usize {
    std::env::var("EXHAUSTIVE_DEPTH")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Explores one bound, printing the states found per depth; panics with the shortest
/// failing input sequence if there is one.
fn explore_bound(name: &str, setup: SetUp, depth: usize) -> Explored {
    let bound = Bound {
        setup,
        steps: Steps { unit_ms: STEP_MS },
        depth,
    };
    eprintln!("{name}, depth {depth}:");
    let result = explore(&bound, |d, new, total| {
        eprintln!("  depth {d:>2}: {new:>8} new states, {total:>9} in all");
    });
    match result {
        Ok(e) => {
            eprintln!(
                "  => {} distinct states, depth {}{}, {} inputs tried, {:.1?}",
                e.states,
                e.depth(),
                if e.closed {
                    " (no new state: that is every reachable state)"
                } else {
                    ""
                },
                e.transitions,
                e.elapsed
            );
            e
        }
        Err(c) => panic!("{name}: {c}"),
    }
}

/// Every rule the one-shard explorations must exercise, so a change to the alphabet or
/// the canonical form cannot quietly turn them into tests of nothing.
const RULES_ONE_SHARD: &[&str] = &[
    "start",
    "drained",
    "drain paused",
    "closed",
    "stop NewPrimarySeen",
    "stop MaxDurationExceeded",
    "stop ReshardingComplete",
    "stop MoveTablesSwitchedTraffic",
    "stop Shutdown",
    "evict ContextDone",
    "evict BufferFull",
    "evict WindowExceeded",
    "skip BufferFull",
    "skip Shutdown",
    "skip LastFailoverTooRecent",
    "skip LastReparentTooRecent",
];

fn assert_reached(e: &Explored, rules: &[&str]) {
    let missing: Vec<&&str> = rules.iter().filter(|r| !e.rules.contains(**r)).collect();
    assert!(
        missing.is_empty(),
        "rules never exercised: {missing:?}; exercised: {:?}",
        e.rules
    );
    let kinds: BTreeSet<&str> = alphabet::KINDS.iter().copied().collect();
    assert_eq!(e.kinds, kinds, "input kinds tried differ from every kind");
}

// ----- the bounds of plain `cargo test` (seconds in debug) -----

/// One shard, one slot: every input in every state reachable in 5 inputs.
#[test]
fn every_state_of_a_one_slot_buffer_is_correct() {
    let e = explore_bound(
        "1 shard, 1 slot, drain concurrency 1",
        setup(1, 1, 1),
        depth(5),
    );
    assert!(e.states > 100);
}

/// One shard, two slots, drain concurrency 1 (a drain releases one at a time).
#[test]
fn every_state_of_a_two_slot_buffer_is_correct() {
    let e = explore_bound(
        "1 shard, 2 slots, drain concurrency 1",
        setup(1, 2, 1),
        depth(5),
    );
    assert_reached(&e, &RULES_ONE_SHARD[..8]);
}

/// Two shards sharing two slots: eviction stays within a shard, ticks and shutdown visit both.
#[test]
fn every_state_of_two_shards_sharing_two_slots_is_correct() {
    let e = explore_bound(
        "2 shards, 2 slots, drain concurrency 1",
        setup(2, 2, 1),
        depth(3),
    );
    assert!(e.rules.contains("start") && e.rules.contains("evict BufferFull"));
}

/// A dry-run shard beside an enabled one: counted, never held.
#[test]
fn every_state_beside_a_dry_run_shard_is_correct() {
    let e = explore_bound("ks0/0 enabled, ks0/1 dry run", mixed(true), depth(3));
    assert!(e.rules.contains("dry-run buffered"), "{:?}", e.rules);
}

/// A disabled shard beside an enabled one: never buffers.
#[test]
fn every_state_beside_a_disabled_shard_is_correct() {
    let e = explore_bound("ks0/0 enabled, ks0/1 disabled", mixed(false), depth(3));
    assert!(e.rules.contains("skip Disabled"), "{:?}", e.rules);
}

// ----- the larger bounds, run by .ci/run in release -----

/// The bounds `.ci/run` explores (`cargo test --release -p failover-buffer --test
/// exhaustive -- --ignored --nocapture`); each prints its states per depth.
#[test]
#[ignore = "minutes in debug: run in release with --ignored, as .ci/run does"]
fn larger_bounds() {
    let e = explore_bound(
        "1 shard, 2 slots, drain concurrency 1",
        setup(1, 2, 1),
        depth(8),
    );
    assert_reached(&e, RULES_ONE_SHARD);
    explore_bound(
        "1 shard, 3 slots, drain concurrency 2",
        setup(1, 3, 2),
        depth(7),
    );
    explore_bound(
        "2 shards, 2 slots, drain concurrency 1",
        setup(2, 2, 1),
        depth(5),
    );
    explore_bound(
        "2 shards, 2 slots, drain concurrency 2",
        setup(2, 2, 2),
        depth(5),
    );
}

// ----- the explorer's own parts -----

/// The canonical form of the state `ops` lead to.
fn form(setup: &SetUp, ops: &[Op]) -> String {
    let mut h = Harness::new(setup).expect("valid set-up");
    let mut clock: i64 = 0;
    for op in ops {
        if let Op::Tick { advance_ms } | Op::Wait { advance_ms } = op {
            clock += i64::from(*advance_ms) * 1_000_000;
        }
        h.apply(op).expect("a passing sequence");
    }
    canonical::canonical(h.buffer(), clock)
        .expect("a printable buffer")
        .text
}

const FAIL: Option<Cause> = Some(Cause::Reparent);

#[test]
fn states_that_differ_by_a_shift_of_time_merge() {
    let s = setup(1, 2, 1);
    let now = form(
        &s,
        &[Op::Request {
            shard: 0,
            cause: FAIL,
        }],
    );
    let later = form(
        &s,
        &[
            Op::Tick { advance_ms: 500 },
            Op::Tick { advance_ms: 500 },
            Op::Request {
                shard: 0,
                cause: FAIL,
            },
        ],
    );
    assert_eq!(now, later);
}

#[test]
fn states_that_differ_by_ticket_names_merge() {
    let s = setup(1, 2, 1);
    let queue_two = [
        Op::Request {
            shard: 0,
            cause: FAIL,
        },
        Op::Request {
            shard: 0,
            cause: None,
        },
    ];
    // The first ticket (slot 0) left, or the second (slot 1): one queued ticket either way.
    let first_left = form(
        &s,
        &[&queue_two[..], &[Op::Cancel(TicketRef::Queued(0))]].concat(),
    );
    let second_left = form(
        &s,
        &[&queue_two[..], &[Op::Cancel(TicketRef::Queued(1))]].concat(),
    );
    assert_eq!(first_left, second_left);
}

#[test]
fn states_of_interchangeable_shards_merge() {
    let s = setup(2, 2, 1);
    let on_0 = form(
        &s,
        &[Op::Request {
            shard: 0,
            cause: FAIL,
        }],
    );
    let on_1 = form(
        &s,
        &[Op::Request {
            shard: 1,
            cause: FAIL,
        }],
    );
    assert_eq!(on_0, on_1);
}

#[test]
fn states_that_behave_differently_stay_apart() {
    let s = setup(1, 2, 1);
    let start = Op::Request {
        shard: 0,
        cause: FAIL,
    };
    let stamp = |serving| Op::Health {
        shard: 0,
        primary: 0,
        term: Term::Same,
        serving,
    };
    let a = form(&s, &[start]);
    // A not-serving stamp during the episode: a later serving one will end it.
    let b = form(&s, &[start, stamp(false)]);
    // A second request a window later: the first is due, the second not.
    let c = form(
        &s,
        &[
            start,
            Op::Wait { advance_ms: 500 },
            Op::Request {
                shard: 0,
                cause: None,
            },
        ],
    );
    let d = form(&s, &[start, Op::Wait { advance_ms: 500 }]);
    let all: BTreeSet<&String> = [&a, &b, &c, &d].into_iter().collect();
    assert_eq!(all.len(), 4, "{a}\n{b}\n{c}\n{d}");
}

#[test]
fn a_debug_print_reads_back_as_the_same_tree() {
    let text = r#"Buffer { a: Some(1.500000000s), b: [ShardId(0), ShardId(1)], c: { 0: Entry { s: "x\"y", t: Ticket(#3@0) } }, d: None, e: Unit { .. } }"#;
    let tree = debug_tree::parse(text).expect("parses");
    let printed = format!("{tree:?}");
    assert_eq!(debug_tree::parse(&printed).expect("reparses"), tree);
    assert_eq!(
        tree.field("a").and_then(|a| a.option()),
        Some(Some(&debug_tree::Value::Atom("1.500000000s".into())))
    );
}
