//! What an operator sees of a drain: where it is, what is left, how long it has taken.

use alloc::borrow::Cow;
use core::fmt;
use core::time::Duration;

use super::phase::PhaseId;

/// Where a [`DrainPlan`](super::DrainPlan) is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DrainState {
    /// Never begun: the service runs normally.
    NotBegun,
    /// Draining; `phase` is the current phase.
    Running {
        /// The current phase.
        phase: PhaseId,
    },
    /// The last phase has ended. Final.
    Finished,
    /// Called off: every phase entered was reverted and the service runs normally again.
    /// [`begin`](super::DrainPlan::begin) starts over.
    Cancelled,
}

impl fmt::Display for DrainState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DrainState::NotBegun => f.write_str("not begun"),
            DrainState::Running { phase } => write!(f, "running {phase}"),
            DrainState::Finished => f.write_str("finished"),
            DrainState::Cancelled => f.write_str("cancelled"),
        }
    }
}

/// A snapshot of a drain, for an operator to print: see
/// [`DrainPlan::progress`](super::DrainPlan::progress).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Where the drain is.
    pub state: DrainState,
    /// The current phase, while running.
    pub phase: Option<PhaseProgress>,
    /// How many phases the plan has.
    pub phases: usize,
    /// Time since the latest [`begin`](super::DrainPlan::begin): growing while running,
    /// frozen at the drain's length once it finished or was cancelled; `None` if it never
    /// began.
    pub since_begin: Option<Duration>,
    /// Whether the first irreversible phase has been entered in this attempt.
    pub past_point_of_no_return: bool,
}

/// The current phase of a running drain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PhaseProgress {
    /// The phase.
    pub id: PhaseId,
    /// Its name.
    pub name: Cow<'static, str>,
    /// Whether a cancel can undo it.
    pub reversible: bool,
    /// The last work [reported](super::DrainPlan::report) for it, if any.
    pub remaining: Option<u64>,
    /// Time since it was entered.
    pub elapsed: Duration,
    /// Time until its maximum wait ends it (zero once due: the next
    /// [`tick`](super::DrainPlan::tick) ends it).
    pub time_left: Duration,
}

impl fmt::Display for Progress {
    /// One line, e.g. `phase 3 of 9, wait for queries (reversible): 12 remaining, 4s left;
    /// 9s since begin`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.phase {
            Some(p) => {
                write!(
                    f,
                    "phase {} of {}, {} ({})",
                    p.id.index() + 1,
                    self.phases,
                    p.name,
                    if p.reversible {
                        "reversible"
                    } else {
                        "irreversible"
                    }
                )?;
                f.write_str(":")?;
                if let Some(n) = p.remaining {
                    write!(f, " {n} remaining,")?;
                }
                write!(f, " {:?} left", p.time_left)?;
            }
            None => fmt::Display::fmt(&self.state, f)?,
        }
        if let Some(d) = self.since_begin {
            write!(f, "; {d:?} since begin")?;
        }
        if self.past_point_of_no_return {
            f.write_str("; past the point of no return")?;
        }
        Ok(())
    }
}

/// Counters of a plan's inputs, readable at any time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct DrainStats {
    /// Drains begun.
    pub begun: u64,
    /// Drains cancelled.
    pub cancelled: u64,
    /// Drains finished (0 or 1).
    pub finished: u64,
    /// Inputs refused with a [`DrainError`](super::DrainError).
    pub refused: u64,
    /// Inputs whose `now` was earlier than a previous input's; clamped to that.
    pub clock_regressions: u64,
}
