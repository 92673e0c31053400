//! A cancellable, phased drain: a shutdown that can be called off until its point of no
//! return, as a sans-IO state machine ([`DrainPlan`]).
//!
//! A graceful shutdown is a list of phases: stop looking ready, wait for load balancers to
//! notice, wait for the work in flight, close. CockroachDB issue 76423 asks for such a
//! shutdown that can be *cancelled* once started: an orchestrator scaling in would like to
//! start draining a node at once and put it back into service if load returns, instead of
//! waiting until it is sure. The issue names what makes that hard: backtracking must revert
//! the phases in inverse order, exactly as far as they were done; shutdown code cannot be
//! unit-tested; waits are hard to interrupt; and some phases cannot be undone. A
//! [`DrainPlan`] takes the inputs (`begin`, `cancel`, `report` of remaining work, `tick`),
//! each with the time, and answers with [`DrainAction`]s (enter, revert, point of no return,
//! finished, cancelled) that the caller carries out. Having no clock, no timer and no I/O,
//! it is tested by feeding it inputs, and a cancel ends any wait in the same call.
//!
//! The rules:
//!
//! * Phases run in order. A phase ends when its maximum wait has passed, or earlier, for a
//!   phase that [waits for work](Phase::until_no_work), when its work is reported zero; the
//!   reason is recorded ([`PhaseEnd`]). A phase without a wait ends as soon as it is entered.
//! * Entering the first irreversible phase is the **point of no return**
//!   ([`DrainAction::PointOfNoReturn`]).
//! * Before it, `cancel` reverts exactly the phases entered, the current one included, last
//!   entered first, and ends the current wait at once. After it, `cancel` is refused with
//!   [`DrainError::PastPointOfNoReturn`] and changes nothing.
//! * `begin` after a cancel starts again from the first phase; `begin` while running is
//!   refused. A `report` for a phase that is not the current one is refused as stale.
//! * The plan keeps a history of the latest attempt: each phase entered, left and reverted,
//!   when and why ([`PhaseRecord`]).
//!
//! The adapters (`failover-buffer-tokio`, `failover-buffer-std`) run a plan with a real
//! clock and deliver its actions to your code; this module is the part you can test alone.
//!
//! # Example: CockroachDB's node drain, called off and begun again
//!
//! The phases of CockroachDB's drain, as issue 76423 lists them, with its default
//! `drain_wait` and `query_wait` of 10 s:
//!
//! ```
//! use core::time::Duration;
//! use failover_buffer::Timestamp;
//! use failover_buffer::drain::{
//!     DrainAction, DrainError, DrainPlan, DrainState, Phase, PhaseEnd, PhaseId,
//! };
//!
//! let secs = Duration::from_secs;
//! let mut plan = DrainPlan::new([
//!     Phase::reversible("mark not ready"),
//!     Phase::reversible("wait for load balancers").max_wait(secs(10)), // drain_wait
//!     Phase::reversible("wait for local queries").max_wait(secs(10)).until_no_work(),
//!     Phase::reversible("cancel sessions").max_wait(secs(1)).until_no_work(),
//!     Phase::reversible("stop accepting distributed work"),
//!     Phase::reversible("wait for distributed work").max_wait(secs(10)).until_no_work(),
//!     Phase::irreversible("drain leases").max_wait(secs(60)).until_no_work(),
//!     Phase::irreversible("mark liveness draining"),
//!     Phase::irreversible("stop the process"),
//! ])?;
//! let t = Timestamp::from_millis;
//! let local_queries = plan.phase_id("wait for local queries").unwrap();
//! let sessions = plan.phase_id("cancel sessions").unwrap();
//! let leases = plan.phase_id("drain leases").unwrap();
//!
//! // What the node does for each action; here, written down.
//! fn run(plan: &mut DrainPlan) -> Vec<String> {
//!     let mut done = Vec::new();
//!     while let Some(action) = plan.poll_action() {
//!         let name = |phase: PhaseId| plan.phases()[phase.index()].name();
//!         done.push(match action {
//!             DrainAction::Enter { phase } => format!("enter {}", name(phase)),
//!             DrainAction::Revert { phase } => format!("revert {}", name(phase)),
//!             DrainAction::PointOfNoReturn { .. } => "point of no return".to_owned(),
//!             DrainAction::Finished => "finished".to_owned(),
//!             DrainAction::Cancelled { reverted } => format!("cancelled, {reverted} reverted"),
//!         });
//!     }
//!     done
//! }
//!
//! // 0 s: the orchestrator decides to scale in and begins the drain at once. The node
//! // answers "not ready" and waits for the load balancers (until 10 s).
//! plan.begin(t(0))?;
//! assert_eq!(run(&mut plan), ["enter mark not ready", "enter wait for load balancers"]);
//! assert_eq!(plan.poll_timeout(), Some(t(10_000)));
//!
//! // 10 s: the load balancers have had their time; now wait for local queries.
//! plan.tick(t(10_000));
//! assert_eq!(run(&mut plan), ["enter wait for local queries"]);
//! plan.report(t(10_500), local_queries, 40)?;
//! assert_eq!(
//!     plan.progress(t(11_000)).to_string(),
//!     "phase 3 of 9, wait for local queries (reversible): 40 remaining, 9s left; 11s since begin"
//! );
//!
//! // 12 s: load returns. Call it off: the node is ready again, at once, no tick needed.
//! plan.cancel(t(12_000))?;
//! assert_eq!(run(&mut plan), [
//!     "revert wait for local queries",
//!     "revert wait for load balancers",
//!     "revert mark not ready",
//!     "cancelled, 3 reverted",
//! ]);
//! assert_eq!((plan.state(), plan.poll_timeout()), (DrainState::Cancelled, None));
//!
//! // 60 s: the orchestrator is sure now. Begin again, from the first phase.
//! plan.begin(t(60_000))?;
//! plan.tick(t(70_000)); // load balancers done
//! plan.report(t(71_000), local_queries, 0)?; // queries finished early
//! plan.report(t(71_200), sessions, 0)?; // sessions closed
//! // "stop accepting distributed work" has no wait, so we are in the next phase already.
//! plan.tick(t(81_200)); // distributed work: its 10 s passed with work left
//! let done = run(&mut plan);
//! assert_eq!(done[done.len() - 2..], ["point of no return", "enter drain leases"]);
//! assert!(plan.is_past_point_of_no_return());
//!
//! // Too late to call it off now: refused, and nothing changes.
//! assert_eq!(
//!     plan.cancel(t(82_000)),
//!     Err(DrainError::PastPointOfNoReturn { point_of_no_return: leases })
//! );
//! plan.report(t(85_000), leases, 0)?;
//! assert_eq!(run(&mut plan), ["enter mark liveness draining", "enter stop the process", "finished"]);
//!
//! // The history says how each phase of this attempt ended, for the shutdown report.
//! let ends: Vec<_> = plan.history().iter().map(|r| r.left.unwrap().1).collect();
//! assert_eq!(ends, [
//!     PhaseEnd::Immediate, PhaseEnd::MaxWaitElapsed, PhaseEnd::WorkDone, PhaseEnd::WorkDone,
//!     PhaseEnd::Immediate, PhaseEnd::MaxWaitElapsed, PhaseEnd::WorkDone,
//!     PhaseEnd::Immediate, PhaseEnd::Immediate,
//! ]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod action;
mod error;
mod history;
mod phase;
mod plan;
mod progress;

pub use action::DrainAction;
pub use error::{DrainError, PlanError};
pub use history::{PhaseEnd, PhaseRecord};
pub use phase::{Phase, PhaseId};
pub use plan::DrainPlan;
pub use progress::{DrainState, DrainStats, PhaseProgress, Progress};
