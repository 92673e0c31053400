//! What the `drain_*` tests share: a router-like plan, and helpers to read its actions.
#![allow(dead_code, unreachable_pub)] // each test binary uses its own part

use core::time::Duration;

use failover_buffer::Timestamp;
use failover_buffer::drain::{DrainAction, DrainPlan, Phase, PhaseId};

/// The phases of a router's shutdown (DESIGN §6), in order:
/// 0 not ready (reversible, no wait), 1 wait for load balancers (reversible, 5 s),
/// 2 wait for requests (reversible, up to 10 s, until no work),
/// 3 close (irreversible, no wait: the point of no return), 4 flush (irreversible, up to 2 s,
/// until no work), 5 exit (irreversible, no wait).
pub fn router_phases() -> Vec<Phase> {
    vec![
        Phase::reversible("not ready"),
        Phase::reversible("wait for load balancers").max_wait(Duration::from_secs(5)),
        Phase::reversible("wait for requests")
            .max_wait(Duration::from_secs(10))
            .until_no_work(),
        Phase::irreversible("close"),
        Phase::irreversible("flush")
            .max_wait(Duration::from_secs(2))
            .until_no_work(),
        Phase::irreversible("exit"),
    ]
}

pub const NOT_READY: PhaseId = PhaseId::from_index(0);
pub const LOAD_BALANCERS: PhaseId = PhaseId::from_index(1);
pub const REQUESTS: PhaseId = PhaseId::from_index(2);
pub const CLOSE: PhaseId = PhaseId::from_index(3);
pub const FLUSH: PhaseId = PhaseId::from_index(4);
pub const EXIT: PhaseId = PhaseId::from_index(5);

pub fn router_plan() -> DrainPlan {
    DrainPlan::new(router_phases()).expect("a valid plan")
}

/// `ms` milliseconds after the origin.
pub fn t(ms: u64) -> Timestamp {
    Timestamp::from_millis(ms)
}

pub fn p(index: u32) -> PhaseId {
    PhaseId::from_index(index)
}

/// Every queued action, in order.
pub fn actions(plan: &mut DrainPlan) -> Vec<DrainAction> {
    std::iter::from_fn(|| plan.poll_action()).collect()
}

pub fn enter(phase: PhaseId) -> DrainAction {
    DrainAction::Enter { phase }
}

pub fn revert(phase: PhaseId) -> DrainAction {
    DrainAction::Revert { phase }
}

/// Everything observable except the counters and the latest time, to check that a refused
/// input changed nothing.
pub fn observable(plan: &DrainPlan) -> String {
    format!(
        "{:?} {:?} {:?} {:?} {:?} {}",
        plan.state(),
        plan.history(),
        plan.poll_timeout(),
        plan.begun_at(),
        plan.ended_at(),
        plan.is_past_point_of_no_return()
    )
}
