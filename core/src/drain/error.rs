//! Why a plan could not be built, and why an input was refused.

use core::fmt;

use super::phase::PhaseId;

/// Why [`DrainPlan::new`](super::DrainPlan::new) refused a list of phases.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlanError {
    /// The phase [waits for work](super::Phase::until_no_work) but has no
    /// [`max_wait`](super::Phase::max_wait): it would end before any work could be reported.
    NoTimeToWaitForWork {
        /// The phase.
        phase: PhaseId,
    },
    /// More than `u32::MAX` phases.
    TooManyPhases,
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlanError::NoTimeToWaitForWork { phase } => write!(
                f,
                "{phase} waits for its work to reach zero but has no maximum wait"
            ),
            PlanError::TooManyPhases => f.write_str("a drain plan has at most u32::MAX phases"),
        }
    }
}

impl core::error::Error for PlanError {}

/// Why an input to a [`DrainPlan`](super::DrainPlan) was refused. A refused input changes
/// nothing (it is only counted in [`DrainStats::refused`](super::DrainStats::refused)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DrainError {
    /// [`begin`](super::DrainPlan::begin) while the drain is already running.
    AlreadyRunning,
    /// The drain has finished: it cannot begin again nor be cancelled.
    Finished,
    /// [`cancel`](super::DrainPlan::cancel) or [`report`](super::DrainPlan::report) while
    /// no drain is running (never begun, or cancelled already).
    NotRunning,
    /// [`cancel`](super::DrainPlan::cancel) after the first irreversible phase was entered.
    PastPointOfNoReturn {
        /// The first irreversible phase.
        point_of_no_return: PhaseId,
    },
    /// A [`report`](super::DrainPlan::report) for a phase that is not the current one: it
    /// ended already, or is not reached yet. Typically a report that raced the phase's max
    /// wait; it is safe to drop.
    StaleReport {
        /// The phase the report named.
        reported: PhaseId,
        /// The current phase.
        current: PhaseId,
    },
    /// A [`report`](super::DrainPlan::report) for the current phase, which does not
    /// [wait for work](super::Phase::until_no_work).
    NotWaitingForWork {
        /// The phase.
        phase: PhaseId,
    },
    /// The phase id is past the end of the plan.
    UnknownPhase {
        /// The id.
        phase: PhaseId,
    },
}

impl fmt::Display for DrainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DrainError::AlreadyRunning => f.write_str("the drain is already running"),
            DrainError::Finished => f.write_str("the drain has finished"),
            DrainError::NotRunning => f.write_str("no drain is running"),
            DrainError::PastPointOfNoReturn { point_of_no_return } => write!(
                f,
                "the drain is past its point of no return ({point_of_no_return}) and cannot be cancelled"
            ),
            DrainError::StaleReport { reported, current } => write!(
                f,
                "stale report for {reported}: the current phase is {}",
                current.index()
            ),
            DrainError::NotWaitingForWork { phase } => {
                write!(f, "{phase} does not wait for work, so it takes no report")
            }
            DrainError::UnknownPhase { phase } => write!(f, "{phase} is not in this plan"),
        }
    }
}

impl core::error::Error for DrainError {}
