//! A `DrainPlan` allocates only when it is built: begin, report, tick and cancel (with all
//! their reverts), polled after each input, allocate nothing, however many times the drain
//! is called off and begun again. `allocation-counter` checks it,
//! counting this thread's allocations only (the test harness's own threads allocate at times).

use std::time::Duration;

use failover_buffer::Timestamp;
use failover_buffer::drain::{DrainPlan, Phase, PhaseId};

#[test]
fn inputs_after_construction_allocate_nothing() {
    let mut phases: Vec<Phase> = (0..50)
        .map(|i| Phase::reversible(format!("step {i}")))
        .collect();
    phases.push(Phase::reversible("wait").max_wait(Duration::from_secs(5)));
    phases.push(
        Phase::reversible("work")
            .max_wait(Duration::from_secs(5))
            .until_no_work(),
    );
    phases.push(Phase::irreversible("close"));
    let mut plan = DrainPlan::new(phases).unwrap();
    let work = PhaseId::from_index(51);
    let drain = |plan: &mut DrainPlan| while plan.poll_action().is_some() {};

    let mut reverts = 0;
    let rounds = allocation_counter::measure(|| {
        for round in 0..1_000u64 {
            let t = |s: u64| Timestamp::from_secs(round * 100 + s);
            plan.begin(t(0)).unwrap();
            drain(&mut plan);
            plan.tick(t(5));
            drain(&mut plan);
            plan.report(t(6), work, 3).unwrap();
            let _ = plan.progress(t(7));
            plan.cancel(t(7)).unwrap();
            while let Some(action) = plan.poll_action() {
                reverts += usize::from(matches!(
                    action,
                    failover_buffer::drain::DrainAction::Revert { .. }
                ));
            }
        }
    });
    assert_eq!(rounds.count_total, 0);
    assert_eq!(reverts, 1_000 * 52, "the loop did the work it claims");

    // The counter does count.
    let built = allocation_counter::measure(|| {
        drop(std::hint::black_box(
            DrainPlan::new([Phase::reversible("x")]).unwrap(),
        ));
    });
    assert!(built.count_total > 0);
}
