//! Every reachable state of small `DrainPlan`s, under every sequence of inputs (issue 18,
//! part 2): a breadth-first search of our own, with the property checks of the shared
//! harness (`fuzz/harness/drain_ops.rs`) after every input.
//!
//! The plans: three phases, exactly one irreversible, in every arrangement: the
//! irreversible phase first, second or last, and each phase one of "no wait", "a timed wait
//! of 2 s" or "a wait for work of up to 2 s" (3 × 27 = 81 plans). The inputs from each
//! state: `begin`, `cancel`, `tick`, and `report` of 0 or 1 remaining for each phase and for
//! one past the end, each at 0, 1, 2 or 3 s after the latest input or 1 s before it (clock
//! regression): 55 inputs. States are deduplicated by the harness's canonical form (the
//! plan's state, phases entered, the current phase's last report, and times relative to the
//! latest input, cut at 6 s, past which nothing depends on them), so the search ends when no
//! input leads anywhere new: the whole reachable space, not a sample.
//!
//! Every state is checked for what the harness checks (answers as the rules say, refusals
//! change nothing, reverts mirror entries, the point of no return announced once and never
//! followed by a revert, time in a phase within its max wait plus the tick gap). A
//! violation names the shortest input sequence that reaches it. Run with `--nocapture` to
//! see the number of states and the depth reached.

#[allow(dead_code)]
#[path = "../../fuzz/harness/drain_ops.rs"]
mod drain_ops;

use std::collections::{HashSet, VecDeque};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

use drain_ops::{Checker, Input, PhaseSpec};
use failover_buffer::Timestamp;
use failover_buffer::drain::DrainPlan;

const SECOND: u64 = 1_000_000_000;
/// Past the longest wait (2 s) plus the longest step (3 s), durations change nothing.
const CAP: Duration = Duration::from_secs(6);
/// A bound that the search must never reach: it ends on its own, well before.
const MAX_DEPTH: usize = 40;

fn plans() -> Vec<Vec<PhaseSpec>> {
    let kinds = [(0, false), (2, false), (2, true)];
    let mut plans = Vec::new();
    for irreversible in 0..3 {
        for a in kinds {
            for b in kinds {
                for c in kinds {
                    plans.push(
                        [a, b, c]
                            .iter()
                            .enumerate()
                            .map(|(i, &(secs, waits_for_work))| PhaseSpec {
                                reversible: i != irreversible,
                                waits_for_work,
                                max_wait_ms: secs * 1_000,
                            })
                            .collect(),
                    );
                }
            }
        }
    }
    plans
}

fn inputs() -> Vec<Input> {
    let mut inputs = vec![Input::Begin, Input::Cancel, Input::Tick];
    for phase in 0..4 {
        for remaining in 0..2 {
            inputs.push(Input::Report { phase, remaining });
        }
    }
    inputs
}

/// Time steps in nanoseconds: forwards 0–3 s, or back 1 s.
const STEPS: [i64; 5] = [
    0,
    SECOND as i64,
    2 * SECOND as i64,
    3 * SECOND as i64,
    -(SECOND as i64),
];

#[derive(Debug, Default)]
struct Reached {
    states: usize,
    transitions: usize,
    depth: usize,
}

/// Searches one plan's reachable states; panics with the shortest failing sequence.
fn explore(phases: &[PhaseSpec]) -> Reached {
    let plan = DrainPlan::new(phases.iter().enumerate().map(|(i, p)| p.to_phase(i)))
        .expect("a valid plan");
    let start = Checker::new(plan, phases.to_vec());
    let mut seen = HashSet::from([start.canonical_state(CAP)]);
    let mut frontier = VecDeque::from([(start, Vec::<(i64, Input)>::new())]);
    let mut reached = Reached {
        states: 1,
        ..Reached::default()
    };
    let inputs = inputs();
    while let Some((checker, path)) = frontier.pop_front() {
        assert!(path.len() < MAX_DEPTH, "the search did not converge");
        for &input in &inputs {
            for step in STEPS {
                let mut next = checker.clone();
                // Start late enough that a step back never reaches below zero.
                let now = next.plan.now().as_nanos().max(10 * SECOND);
                let at = Timestamp::from_nanos(now.saturating_add_signed(step));
                reached.transitions += 1;
                if let Err(panic) = catch_unwind(AssertUnwindSafe(|| next.step(at, input))) {
                    let mut path = path.clone();
                    path.push((step, input));
                    let message = panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default();
                    panic!(
                        "plan {phases:?}: {message}\nshortest sequence (time step in ns, input): {path:?}"
                    );
                }
                if seen.insert(next.canonical_state(CAP)) {
                    let mut path = path.clone();
                    path.push((step, input));
                    reached.states += 1;
                    reached.depth = reached.depth.max(path.len());
                    frontier.push_back((next, path));
                }
            }
        }
    }
    reached
}

#[test]
fn every_reachable_state_of_every_three_phase_plan_keeps_every_property() {
    let mut total = Reached::default();
    let plans = plans();
    for phases in &plans {
        let reached = explore(phases);
        // Each plan must at least begin, wait, cancel and finish: dozens of states.
        assert!(reached.states >= 5, "{phases:?} reached only {reached:?}");
        total.states += reached.states;
        total.transitions += reached.transitions;
        total.depth = total.depth.max(reached.depth);
    }
    println!(
        "drain exhaustive: {} plans, {} distinct states, {} inputs checked, deepest new state at depth {}",
        plans.len(),
        total.states,
        total.transitions,
        total.depth
    );
}

#[test]
fn the_search_of_the_router_shaped_plan_reaches_its_whole_space() {
    // Reversible wait for load balancers, reversible wait for work, irreversible close: the
    // shape of DESIGN §6. Its numbers pin the canonical form: a change that makes states
    // indistinguishable (or needlessly distinct) shows here.
    let phases = [
        PhaseSpec {
            reversible: true,
            waits_for_work: false,
            max_wait_ms: 2_000,
        },
        PhaseSpec {
            reversible: true,
            waits_for_work: true,
            max_wait_ms: 2_000,
        },
        PhaseSpec {
            reversible: false,
            waits_for_work: false,
            max_wait_ms: 0,
        },
    ];
    let reached = explore(&phases);
    println!("router-shaped plan: {reached:?}");
    assert!(reached.depth < MAX_DEPTH);
    assert!(reached.states > 20, "{reached:?}");
}
