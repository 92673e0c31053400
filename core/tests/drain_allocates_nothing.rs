//! A `DrainPlan` allocates only when it is built: begin, report, tick and cancel (with all
//! their reverts), polled after each input, allocate nothing, however many times the drain
//! is called off and begun again. A counting allocator checks it; it is the only test in
//! this binary, so no other test's allocations are counted.
#![allow(unsafe_code)] // a global allocator cannot be written without it

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Duration;

use failover_buffer::Timestamp;
use failover_buffer::drain::{DrainPlan, Phase, PhaseId};

struct Counting;

thread_local! {
    /// Allocations made by this thread: the test thread's own, so the test harness's other
    /// threads (which may allocate while a loaded machine runs the test slowly) are not
    /// counted.
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn allocations() -> usize {
    ALLOCATIONS.with(Cell::get)
}

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // `try_with`: a thread being torn down has no counter left, and is not the test's.
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

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

    let before = allocations();
    let mut reverts = 0;
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
    assert_eq!(allocations() - before, 0);
    assert_eq!(reverts, 1_000 * 52, "the loop did the work it claims");

    // The counter does count.
    let before = allocations();
    drop(std::hint::black_box(
        DrainPlan::new([Phase::reversible("x")]).unwrap(),
    ));
    assert!(allocations() > before);
}
