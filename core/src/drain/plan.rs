//! The drain plan's state machine.

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::time::Duration;

use super::action::DrainAction;
use super::error::{DrainError, PlanError};
use super::history::{PhaseEnd, PhaseRecord};
use super::phase::{Phase, PhaseId};
use super::progress::{DrainState, DrainStats, PhaseProgress, Progress};
use crate::time::Timestamp;

/// A cancellable, phased drain: an ordered list of [`Phase`]s run one after the other, that
/// can be called off, reverting exactly what was done, until its point of no return.
///
/// Like [`Buffer`](crate::Buffer), it is a pure state machine: no clock, no timer, no I/O.
/// Its methods fall into these categories:
///
/// * **Set-up**: [`new`](Self::new), from the phases in order.
/// * **Inputs**, each taking `now` first: [`begin`](Self::begin), [`cancel`](Self::cancel),
///   [`report`](Self::report) (how much work the current phase still waits for) and
///   [`tick`](Self::tick). A refused input returns a [`DrainError`] and changes nothing but
///   the latest time seen and the refusal counter; no input sequence panics.
/// * **Outputs**: [`poll_action`](Self::poll_action) (enter, revert, point of no return,
///   finished, cancelled) and [`poll_timeout`](Self::poll_timeout) (when the current
///   phase's maximum wait ends).
/// * **Getters**: [`state`](Self::state), [`progress`](Self::progress),
///   [`history`](Self::history), [`stats`](Self::stats) and the phases, at any time.
///
/// After every input, call `poll_action` until it returns `None` and carry out each action
/// in order, then read `poll_timeout` and arrange for `tick` at that instant. A cancel needs
/// no tick: it ends the current wait in the same call. `tick` is harmless when nothing is
/// due, and only `tick` ends a wait by time: an input that arrives after a deadline but
/// before its tick (a report, a cancel) still finds the phase current. Tick first if the
/// deadline should win.
///
/// Time is a [`Timestamp`] on the caller's monotonic clock. Time that goes backwards is
/// clamped to the latest time seen and counted in [`DrainStats::clock_regressions`], as
/// the buffer does.
///
/// # Cost
///
/// Every input is O(1) plus O(1) per action it emits: `begin` and each phase end enter the
/// following instantaneous phases in the same call, and `cancel` emits one revert per phase
/// entered. Nothing allocates after [`new`](Self::new), which reserves room for the actions
/// of any single input; only leaving several inputs' actions unpolled can grow the queue.
///
/// ```
/// use core::time::Duration;
/// use failover_buffer::Timestamp;
/// use failover_buffer::drain::{DrainAction, DrainPlan, DrainState, Phase, PhaseId};
///
/// let mut plan = DrainPlan::new([
///     Phase::reversible("not ready"),
///     Phase::reversible("wait for load balancers").max_wait(Duration::from_secs(5)),
///     Phase::irreversible("close"),
/// ])?;
/// let t = Timestamp::from_secs;
/// plan.begin(t(0))?;
/// assert_eq!(plan.poll_action(), Some(DrainAction::Enter { phase: PhaseId::from_index(0) }));
/// assert_eq!(plan.poll_action(), Some(DrainAction::Enter { phase: PhaseId::from_index(1) }));
/// assert_eq!(plan.poll_action(), None);
/// assert_eq!(plan.poll_timeout(), Some(t(5)));
///
/// // Load came back: call it off. Both phases are undone, last first, at once.
/// plan.cancel(t(2))?;
/// let actions: Vec<_> = std::iter::from_fn(|| plan.poll_action()).collect();
/// assert_eq!(actions, [
///     DrainAction::Revert { phase: PhaseId::from_index(1) },
///     DrainAction::Revert { phase: PhaseId::from_index(0) },
///     DrainAction::Cancelled { reverted: 2 },
/// ]);
/// assert_eq!((plan.state(), plan.poll_timeout()), (DrainState::Cancelled, None));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct DrainPlan {
    phases: Vec<Phase>,
    /// `records[i]` describes phase `i` of the latest attempt when `i < entered`.
    records: Vec<PhaseRecord>,
    /// Phases entered since the latest `begin`; they are always `0..entered`.
    entered: usize,
    point_of_no_return: Option<PhaseId>,
    state: DrainState,
    /// The current phase's maximum-wait deadline, while running.
    deadline: Option<Timestamp>,
    begun_at: Option<Timestamp>,
    ended_at: Option<Timestamp>,
    now: Timestamp,
    actions: VecDeque<DrainAction>,
    stats: DrainStats,
}

// `clone_from` makes the same copy as `clone`, into this plan's allocations (its phases, records and
// pending actions).
clone_field_by_field!(DrainPlan {
    phases,
    records,
    entered,
    point_of_no_return,
    state,
    deadline,
    begun_at,
    ended_at,
    now,
    actions,
    stats
});

impl DrainPlan {
    /// A plan of `phases`, in order, not begun. An empty plan is allowed: it finishes as
    /// soon as it begins.
    ///
    /// Refused ([`PlanError`]) if a phase waits for work without a maximum wait.
    pub fn new(phases: impl IntoIterator<Item = Phase>) -> Result<DrainPlan, PlanError> {
        let phases: Vec<Phase> = phases.into_iter().collect();
        let count = u32::try_from(phases.len()).map_err(|_| PlanError::TooManyPhases)?;
        if let Some(i) = phases
            .iter()
            .position(|p| p.waits_for_work() && p.is_instantaneous())
        {
            // `i < count`, which fits in a u32.
            return Err(PlanError::NoTimeToWaitForWork {
                phase: PhaseId(i as u32),
            });
        }
        let point_of_no_return = phases
            .iter()
            .position(|p| !p.is_reversible())
            .map(|i| PhaseId(i as u32));
        let records = (0..count)
            .map(|i| PhaseRecord {
                phase: PhaseId(i),
                entered: Timestamp::ZERO,
                left: None,
                reverted: None,
                remaining: None,
            })
            .collect();
        // The most one input emits: a begin entering every phase, plus the point of no
        // return and `Finished`; or a cancel reverting every phase, plus `Cancelled`.
        let actions = VecDeque::with_capacity(2 * phases.len() + 4);
        Ok(DrainPlan {
            phases,
            records,
            entered: 0,
            point_of_no_return,
            state: DrainState::NotBegun,
            deadline: None,
            begun_at: None,
            ended_at: None,
            now: Timestamp::ZERO,
            actions,
            stats: DrainStats::default(),
        })
    }

    // ----- getters -------------------------------------------------------------------

    /// The phases, in order.
    pub fn phases(&self) -> &[Phase] {
        &self.phases
    }

    /// One phase, or `None` past the end of the plan.
    pub fn phase(&self, id: PhaseId) -> Option<&Phase> {
        self.phases.get(id.index())
    }

    /// The first phase named `name` (a scan: look it up once, keep the id).
    pub fn phase_id(&self, name: &str) -> Option<PhaseId> {
        self.phases
            .iter()
            .position(|p| p.name() == name)
            .map(|i| PhaseId(i as u32))
    }

    /// Where the drain is.
    pub fn state(&self) -> DrainState {
        self.state
    }

    /// The current phase, while running.
    pub fn current_phase(&self) -> Option<PhaseId> {
        match self.state {
            DrainState::Running { phase } => Some(phase),
            _ => None,
        }
    }

    /// The first irreversible phase: entering it is the point of no return. `None` if every
    /// phase is reversible (then the drain can be cancelled until it finishes).
    pub fn point_of_no_return(&self) -> Option<PhaseId> {
        self.point_of_no_return
    }

    /// Whether the point of no return was entered in this attempt (so `cancel` is refused).
    pub fn is_past_point_of_no_return(&self) -> bool {
        self.point_of_no_return
            .is_some_and(|p| p.index() < self.entered)
    }

    /// What happened to each phase entered since the latest `begin`, in order of entry:
    /// when it was entered, left and reverted, and why it ended. Kept until the next
    /// `begin`, which starts a new history.
    pub fn history(&self) -> &[PhaseRecord] {
        &self.records[..self.entered]
    }

    /// When the latest `begin` was.
    pub fn begun_at(&self) -> Option<Timestamp> {
        self.begun_at
    }

    /// When the latest attempt finished or was cancelled; `None` while running or never
    /// begun.
    pub fn ended_at(&self) -> Option<Timestamp> {
        self.ended_at
    }

    /// The latest time any input carried.
    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// Counters of inputs.
    pub fn stats(&self) -> DrainStats {
        self.stats
    }

    /// A snapshot for an operator: the current phase, its remaining work, the time left in
    /// its wait and the time since `begin`, all as of `now` (clamped to the latest input's
    /// time). Reads only; `now` is not an input. It clones the current phase's name, which
    /// is free for a `&'static str` name and one allocation for an owned one.
    pub fn progress(&self, now: Timestamp) -> Progress {
        let now = now.max(self.now);
        let phase = self.current_phase().map(|id| {
            let phase = &self.phases[id.index()];
            let record = &self.records[id.index()];
            PhaseProgress {
                id,
                name: phase.name_cow().clone(),
                reversible: phase.is_reversible(),
                remaining: record.remaining,
                elapsed: now.saturating_duration_since(record.entered),
                time_left: self
                    .deadline
                    .map_or(Duration::ZERO, |d| d.saturating_duration_since(now)),
            }
        });
        let since_begin = self
            .begun_at
            .map(|b| self.ended_at.unwrap_or(now).saturating_duration_since(b));
        Progress {
            state: self.state,
            phase,
            phases: self.phases.len(),
            since_begin,
            past_point_of_no_return: self.is_past_point_of_no_return(),
        }
    }

    // ----- inputs --------------------------------------------------------------------

    /// Starts the drain: enters the first phase, and every following phase that has no
    /// wait, in the same call. An empty plan finishes at once.
    ///
    /// After a cancel this starts over from the first phase, with a new history. Refused
    /// while running ([`DrainError::AlreadyRunning`]) and once finished
    /// ([`DrainError::Finished`]).
    pub fn begin(&mut self, now: Timestamp) -> Result<(), DrainError> {
        let now = self.observe(now);
        match self.state {
            DrainState::Running { .. } => return self.refuse(DrainError::AlreadyRunning),
            DrainState::Finished => return self.refuse(DrainError::Finished),
            DrainState::NotBegun | DrainState::Cancelled => {}
        }
        self.stats.begun += 1;
        self.begun_at = Some(now);
        self.ended_at = None;
        self.entered = 0;
        self.enter_from(0, now);
        Ok(())
    }

    /// Calls the drain off: reverts every phase entered since `begin`, the current one
    /// included, last entered first ([`DrainAction::Revert`] each, then
    /// [`DrainAction::Cancelled`]), and ends the current wait at once.
    ///
    /// Refused, changing nothing, past the point of no return
    /// ([`DrainError::PastPointOfNoReturn`]), when not running ([`DrainError::NotRunning`]:
    /// never begun, or cancelled already) and once finished ([`DrainError::Finished`]).
    pub fn cancel(&mut self, now: Timestamp) -> Result<(), DrainError> {
        let now = self.observe(now);
        let current = match self.state {
            DrainState::Running { phase } => phase,
            DrainState::Finished => return self.refuse(DrainError::Finished),
            DrainState::NotBegun | DrainState::Cancelled => {
                return self.refuse(DrainError::NotRunning);
            }
        };
        if let Some(point_of_no_return) = self.point_of_no_return {
            if self.is_past_point_of_no_return() {
                return self.refuse(DrainError::PastPointOfNoReturn { point_of_no_return });
            }
        }
        self.records[current.index()].left = Some((now, PhaseEnd::Cancelled));
        for record in self.records[..self.entered].iter_mut().rev() {
            record.reverted = Some(now);
            self.actions.push_back(DrainAction::Revert {
                phase: record.phase,
            });
        }
        self.actions.push_back(DrainAction::Cancelled {
            reverted: self.entered,
        });
        self.state = DrainState::Cancelled;
        self.deadline = None;
        self.ended_at = Some(now);
        self.stats.cancelled += 1;
        Ok(())
    }

    /// The work the current phase waits for (queries in flight, sessions open, ...) now
    /// stands at `remaining`. Zero ends the phase (reason [`PhaseEnd::WorkDone`]) and enters
    /// the next in the same call; any other value is recorded for
    /// [`progress`](Self::progress) and the history.
    ///
    /// Refused, changing nothing, for a phase that is not the current one
    /// ([`DrainError::StaleReport`]: it ended already, typically by its maximum wait), for a
    /// phase that does not [wait for work](Phase::until_no_work), for an unknown phase,
    /// when not running and once finished.
    pub fn report(
        &mut self,
        now: Timestamp,
        phase: PhaseId,
        remaining: u64,
    ) -> Result<(), DrainError> {
        let now = self.observe(now);
        if phase.index() >= self.phases.len() {
            return self.refuse(DrainError::UnknownPhase { phase });
        }
        let current = match self.state {
            DrainState::Running { phase } => phase,
            DrainState::Finished => return self.refuse(DrainError::Finished),
            DrainState::NotBegun | DrainState::Cancelled => {
                return self.refuse(DrainError::NotRunning);
            }
        };
        if phase != current {
            return self.refuse(DrainError::StaleReport {
                reported: phase,
                current,
            });
        }
        if !self.phases[current.index()].waits_for_work() {
            return self.refuse(DrainError::NotWaitingForWork { phase });
        }
        self.records[current.index()].remaining = Some(remaining);
        if remaining == 0 {
            self.leave(current, now, PhaseEnd::WorkDone);
        }
        Ok(())
    }

    /// Time passed: if the current phase's maximum wait has ended (`now` at or past
    /// [`poll_timeout`](Self::poll_timeout)), the phase ends (reason
    /// [`PhaseEnd::MaxWaitElapsed`]) and the next is entered. Harmless when nothing is due.
    pub fn tick(&mut self, now: Timestamp) {
        let now = self.observe(now);
        if let (DrainState::Running { phase }, Some(deadline)) = (self.state, self.deadline) {
            if deadline <= now {
                self.leave(phase, now, PhaseEnd::MaxWaitElapsed);
            }
        }
    }

    // ----- outputs -------------------------------------------------------------------

    /// The next action to carry out, in order; `None` when there is none left.
    pub fn poll_action(&mut self) -> Option<DrainAction> {
        self.actions.pop_front()
    }

    /// When [`tick`](Self::tick) is next due: the end of the current phase's maximum wait.
    /// `None` when no drain is running. After `tick(t)` it is `None` or later than `t`,
    /// except at [`Timestamp::MAX`], where time saturates.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        self.deadline
    }

    // ----- internals -----------------------------------------------------------------

    /// Clamps time that goes backwards.
    fn observe(&mut self, now: Timestamp) -> Timestamp {
        if now < self.now {
            self.stats.clock_regressions += 1;
            self.now
        } else {
            self.now = now;
            now
        }
    }

    fn refuse(&mut self, error: DrainError) -> Result<(), DrainError> {
        self.stats.refused += 1;
        Err(error)
    }

    /// Ends the current phase and moves on.
    fn leave(&mut self, current: PhaseId, now: Timestamp, why: PhaseEnd) {
        self.records[current.index()].left = Some((now, why));
        self.enter_from(current.index() + 1, now);
    }

    /// Enters phase `first`, then each following phase without a wait, until one waits or
    /// the plan ends.
    fn enter_from(&mut self, first: usize, now: Timestamp) {
        for index in first..self.phases.len() {
            // `index < phases.len()`, which `new` checked fits in a u32.
            let id = PhaseId(index as u32);
            if self.point_of_no_return == Some(id) {
                self.actions
                    .push_back(DrainAction::PointOfNoReturn { phase: id });
            }
            self.actions.push_back(DrainAction::Enter { phase: id });
            self.records[index] = PhaseRecord {
                phase: id,
                entered: now,
                left: None,
                reverted: None,
                remaining: None,
            };
            self.entered = index + 1;
            let phase = &self.phases[index];
            if phase.is_instantaneous() {
                self.records[index].left = Some((now, PhaseEnd::Immediate));
            } else {
                self.state = DrainState::Running { phase: id };
                self.deadline = Some(now.saturating_add(phase.max_wait_duration()));
                return;
            }
        }
        self.state = DrainState::Finished;
        self.deadline = None;
        self.ended_at = Some(now);
        self.stats.finished += 1;
        self.actions.push_back(DrainAction::Finished);
    }
}
