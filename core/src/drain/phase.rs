//! One step of a drain plan: what it is called, whether it can be undone, how long it waits.

use alloc::borrow::Cow;
use core::fmt;
use core::time::Duration;

/// One step of a [`DrainPlan`](super::DrainPlan).
///
/// A phase is entered ([`DrainAction::Enter`](super::DrainAction::Enter): do its work, e.g.
/// answer 503 on the readiness endpoint), then waits, then is left when the next phase is
/// entered. How long it waits:
///
/// * [`max_wait`](Self::max_wait) zero and not [waiting for work](Self::until_no_work): no
///   wait at all; the next phase is entered in the same call.
/// * `max_wait` above zero: the phase ends when that much time has passed (a
///   [`tick`](super::DrainPlan::tick) at or after the deadline), or earlier, for a phase
///   that waits for work, when [`report`](super::DrainPlan::report) says no work remains.
///
/// A **reversible** phase can be undone: a [`cancel`](super::DrainPlan::cancel) reverts it
/// ([`DrainAction::Revert`](super::DrainAction::Revert)). Entering the first
/// **irreversible** phase is the plan's point of no return: from then on the drain can no
/// longer be called off.
///
/// ```
/// use core::time::Duration;
/// use failover_buffer::drain::Phase;
///
/// let not_ready = Phase::reversible("mark not ready");
/// let queries = Phase::reversible("wait for queries")
///     .max_wait(Duration::from_secs(10))
///     .until_no_work();
/// let stop = Phase::irreversible("stop the process");
/// assert!(queries.waits_for_work() && queries.is_reversible() && !stop.is_reversible());
/// assert_eq!(not_ready.max_wait_duration(), Duration::ZERO);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Phase {
    name: Cow<'static, str>,
    reversible: bool,
    max_wait: Duration,
    waits_for_work: bool,
}

impl Phase {
    /// A phase that a cancel can undo. It does not wait until [`max_wait`](Self::max_wait)
    /// says so.
    pub fn reversible(name: impl Into<Cow<'static, str>>) -> Phase {
        Phase::new(name.into(), true)
    }

    /// A phase that cannot be undone: entering the first one is the point of no return.
    pub fn irreversible(name: impl Into<Cow<'static, str>>) -> Phase {
        Phase::new(name.into(), false)
    }

    fn new(name: Cow<'static, str>, reversible: bool) -> Phase {
        Phase {
            name,
            reversible,
            max_wait: Duration::ZERO,
            waits_for_work: false,
        }
    }

    /// The longest the phase lasts once entered; zero (the default) means it ends as soon as
    /// it is entered. A wait past about 584 years is the same as "forever".
    #[must_use]
    pub fn max_wait(mut self, max_wait: Duration) -> Phase {
        self.max_wait = max_wait;
        self
    }

    /// The phase also ends early once [`report`](super::DrainPlan::report) says its work
    /// (in-flight queries, open sessions, ...) has reached zero. Needs a
    /// [`max_wait`](Self::max_wait) above zero: a plan refuses a phase that would wait for
    /// work without any time to wait
    /// ([`PlanError::NoTimeToWaitForWork`](super::PlanError::NoTimeToWaitForWork)).
    #[must_use]
    pub fn until_no_work(mut self) -> Phase {
        self.waits_for_work = true;
        self
    }

    /// The phase's name, for logs and reports.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether a cancel can undo it.
    pub fn is_reversible(&self) -> bool {
        self.reversible
    }

    /// The longest it lasts once entered (zero: it ends at once).
    pub fn max_wait_duration(&self) -> Duration {
        self.max_wait
    }

    /// Whether it ends early when its work reaches zero.
    pub fn waits_for_work(&self) -> bool {
        self.waits_for_work
    }

    /// Whether it ends in the same call that enters it.
    pub fn is_instantaneous(&self) -> bool {
        self.max_wait.is_zero()
    }
}

impl fmt::Display for Phase {
    /// The name, then what kind of phase it is: `wait for queries (reversible, up to 10s,
    /// until no work)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}",
            self.name,
            if self.reversible {
                "reversible"
            } else {
                "irreversible"
            }
        )?;
        if !self.max_wait.is_zero() {
            write!(f, ", up to {:?}", self.max_wait)?;
        }
        if self.waits_for_work {
            f.write_str(", until no work")?;
        }
        f.write_str(")")
    }
}

/// A phase's position in its plan, from 0. Actions, history and
/// [`report`](super::DrainPlan::report) name phases by it; [`DrainPlan::phase_id`](super::DrainPlan::phase_id)
/// finds one by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PhaseId(pub(super) u32);

impl PhaseId {
    /// The phase's position in its plan, from 0.
    pub const fn index(self) -> usize {
        self.0 as usize
    }

    /// The id of the phase at `index`. Ids are plain positions, so a caller can name a
    /// phase it knows the position of; one past the plan's end is refused where it is used
    /// ([`DrainError::UnknownPhase`](super::DrainError::UnknownPhase)).
    pub const fn from_index(index: u32) -> PhaseId {
        PhaseId(index)
    }
}

impl fmt::Display for PhaseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "phase {}", self.0)
    }
}

impl Phase {
    /// The name as stored, so a snapshot can share a `'static` name without copying it.
    pub(super) fn name_cow(&self) -> &Cow<'static, str> {
        &self.name
    }
}
