//! What happened to each phase of the latest attempt, for a report.

use core::fmt;

use super::phase::PhaseId;
use crate::time::Timestamp;

/// Why a phase ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PhaseEnd {
    /// It has no wait: it ended as soon as it was entered.
    Immediate,
    /// A [`report`](super::DrainPlan::report) said its work reached zero before its
    /// maximum wait.
    WorkDone,
    /// Its maximum wait passed (for a phase waiting for work: with work left, whatever the
    /// last report said).
    MaxWaitElapsed,
    /// The drain was cancelled while it was the current phase.
    Cancelled,
}

impl fmt::Display for PhaseEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PhaseEnd::Immediate => "immediate",
            PhaseEnd::WorkDone => "work done",
            PhaseEnd::MaxWaitElapsed => "max wait elapsed",
            PhaseEnd::Cancelled => "cancelled",
        })
    }
}

/// One phase's life in the latest attempt: when it was entered, left and reverted, and why
/// it ended. See [`DrainPlan::history`](super::DrainPlan::history).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PhaseRecord {
    /// The phase.
    pub phase: PhaseId,
    /// When it was entered.
    pub entered: Timestamp,
    /// When it ended and why; `None` while it is the current phase.
    pub left: Option<(Timestamp, PhaseEnd)>,
    /// When a cancel reverted it; `None` if it was not reverted.
    pub reverted: Option<Timestamp>,
    /// The last work [reported](super::DrainPlan::report) for it, if any.
    pub remaining: Option<u64>,
}

impl fmt::Display for PhaseRecord {
    /// `phase 2: entered 1.000000000s, left 3.000000000s (work done), 0 remaining`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: entered {}", self.phase, self.entered)?;
        match self.left {
            Some((at, why)) => write!(f, ", left {at} ({why})")?,
            None => f.write_str(", current")?,
        }
        if let Some(at) = self.reverted {
            write!(f, ", reverted {at}")?;
        }
        if let Some(n) = self.remaining {
            write!(f, ", {n} remaining")?;
        }
        Ok(())
    }
}
