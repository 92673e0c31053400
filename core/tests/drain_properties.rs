//! `DrainPlan`'s properties over random plans and input sequences: never a panic; every
//! answer as the rules say, and a refused input changes nothing; reverts mirror entries
//! exactly; the point of no return is announced once, before its phase, and nothing is
//! reverted after it; a phase never outlasts its max wait by more than the gap between two
//! ticks. The checks live in the harness shared with the fuzz target
//! (`fuzz/harness/drain_ops.rs`); `PROPTEST_CASES` raises the number of cases.

#[allow(dead_code)]
#[path = "../../fuzz/harness/drain_ops.rs"]
mod drain_ops;

use drain_ops::{Case, Checker, Input, Op, PhaseSpec, When};
use failover_buffer::Timestamp;
use failover_buffer::drain::{DrainPlan, PhaseEnd};
use proptest::prelude::*;

fn phase() -> impl Strategy<Value = PhaseSpec> {
    (
        any::<bool>(),
        any::<bool>(),
        prop_oneof![Just(0u64), 1u64..=20],
    )
        .prop_map(|(reversible, waits_for_work, max_wait_ms)| PhaseSpec {
            reversible,
            waits_for_work: waits_for_work && max_wait_ms > 0,
            max_wait_ms,
        })
}

fn op() -> impl Strategy<Value = Op> {
    let when = prop_oneof![
        8 => (0u64..=15).prop_map(When::After),
        1 => (1u64..=30).prop_map(When::Before),
    ];
    let input = prop_oneof![
        2 => Just(Input::Begin),
        2 => Just(Input::Cancel),
        4 => (0u32..=6, 0u64..=3).prop_map(|(phase, remaining)| Input::Report { phase, remaining }),
        3 => Just(Input::Tick),
        2 => Just(Input::TickAtDeadline),
    ];
    (when, input).prop_map(|(when, input)| Op { when, input })
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop::collection::vec(phase(), 0..=5),
        prop::collection::vec(op(), 0..80),
    )
        .prop_map(|(phases, ops)| Case { phases, ops })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1_000, ..ProptestConfig::default() })]

    /// Every property of the harness holds after every input of any sequence.
    #[test]
    fn every_input_sequence_keeps_every_property(case in case()) {
        drain_ops::run(&case);
    }

    /// The byte format the fuzz target reads decodes back to the case it encodes, so seeds
    /// written from a case replay that case.
    #[test]
    fn the_fuzz_byte_format_round_trips(case in case()) {
        let case = Case {
            ops: case.ops.into_iter().map(|op| Op {
                when: match op.when { When::Before(ms) => When::Before(ms.max(1)), w => w },
                ..op
            }).collect(),
            ..case
        };
        prop_assert_eq!(Case::from_bytes(&case.to_bytes()), case);
    }

    /// A driver that ticks exactly at `poll_timeout` ends every timed-out phase after exactly
    /// its max wait: the gap between two ticks is zero there.
    #[test]
    fn with_ticks_at_each_deadline_a_phase_lasts_exactly_its_max_wait(
        phases in prop::collection::vec(phase(), 1..=5),
        cancel_after in prop::option::of(0usize..6),
    ) {
        let plan = DrainPlan::new(phases.iter().enumerate().map(|(i, p)| p.to_phase(i))).unwrap();
        let mut checker = Checker::new(plan, phases.clone());
        checker.step(Timestamp::from_millis(7), Input::Begin);
        for step in 0..phases.len() {
            if cancel_after == Some(step) {
                checker.step(Timestamp::ZERO, Input::Cancel); // clamped to now; may be refused
            }
            checker.step(Timestamp::ZERO, Input::TickAtDeadline);
        }
        for record in checker.plan.history() {
            if let Some((left, PhaseEnd::MaxWaitElapsed)) = record.left {
                let max_wait = phases[record.phase.index()].max_wait_ms;
                prop_assert_eq!(left.saturating_duration_since(record.entered).as_millis(), u128::from(max_wait));
            }
        }
    }
}

#[test]
fn the_harness_catches_what_it_claims_to() {
    // A smoke check that the generated sequences reach the interesting places: a long random
    // run that cancels, finishes and reverts, so the properties are not vacuous.
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let mut total = drain_ops::Summary::default();
    for _ in 0..300 {
        let case = case().new_tree(&mut runner).unwrap().current();
        let s = drain_ops::run(&case);
        total.cancels += s.cancels;
        total.finishes += s.finishes;
        total.reverts += s.reverts;
        total.refused += s.refused;
    }
    assert!(total.cancels > 50, "{total:?}");
    assert!(total.finishes > 50, "{total:?}");
    assert!(total.reverts > 50, "{total:?}");
    assert!(total.refused > 50, "{total:?}");
}
