//! Runs any [`DrainPlan`] on OS threads: a handle to begin, cancel and report, a blocking
//! stream of the plan's actions for your code to carry out, blocking waits for the end
//! (with and without a deadline), and a timer thread for the phases' maximum waits.
//!
//! The plan is the core's sans-IO [`DrainPlan`] (its rules are documented there); this
//! module gives it a [`Clock`] and a timer thread, so a router can run its own graceful
//! shutdown through the same machinery. For tokio, `failover-buffer-tokio` has the same
//! module with futures.
//!
//! ```
//! use std::time::Duration;
//! use failover_buffer_std::plan::{Drain, DrainAction, DrainOutcome, DrainPlan, Phase};
//!
//! let plan = DrainPlan::new([
//!     Phase::reversible("not ready"),
//!     Phase::reversible("wait for load balancers").max_wait(Duration::from_millis(50)),
//!     Phase::irreversible("close"),
//! ])?;
//! let (drain, actions) = Drain::new(plan);
//! // Your code carries out the actions, on a thread of its own: outside any lock of ours.
//! let worker = std::thread::spawn(move || {
//!     let mut log = Vec::new();
//!     while let Some(action) = actions.recv() {
//!         log.push(action); // e.g. on Enter(not ready), answer 503 on /ready
//!     }
//!     log // the stream ends once the drain has finished
//! });
//!
//! drain.begin()?; // e.g. on SIGTERM
//! assert_eq!(drain.wait_timeout(Duration::from_secs(10)), Some(DrainOutcome::Finished));
//! assert_eq!(worker.join().unwrap().last(), Some(&DrainAction::Finished));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Blocking, time and drop
//!
//! * [`Drain::wait`] blocks until the drain is not running; [`Drain::wait_timeout`] and
//!   [`Drain::wait_until`] also give up at a deadline (real time). Giving up does **not**
//!   cancel the drain: call [`Drain::cancel`] for that.
//! * Time comes from a [`Clock`] ([`SystemClock`] by default). With a [`ManualClock`](crate::ManualClock) the
//!   timer thread never sleeps against the clock: after moving it, call
//!   [`Drain::tick_now`].
//! * Dropping every [`Drain`] handle stops the timer thread: the plan stays where it is,
//!   neither finishing nor cancelled, and [`DrainActions::recv`] returns the actions left,
//!   then `None`. Dropping [`DrainActions`] discards the actions not yet taken.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use failover_buffer::Timestamp;
pub use failover_buffer::drain::{
    DrainAction, DrainError, DrainPlan, DrainState, DrainStats, Phase, PhaseEnd, PhaseId,
    PhaseProgress, PhaseRecord, PlanError, Progress,
};

use crate::clock::{Clock, SystemClock};

/// How an attempt of a drain ended; see [`Drain::wait`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DrainOutcome {
    /// The last phase ended.
    Finished,
    /// The drain was called off after entering, and then reverting, `reverted` phases.
    Cancelled {
        /// How many phases were reverted.
        reverted: usize,
    },
}

/// A handle to a running [`DrainPlan`]: begin, cancel, report, watch, wait. Cheap to clone;
/// every clone drives the same plan.
///
/// Every method takes the plan's lock for one core input and releases it before waking
/// anyone; no user code runs under it.
pub struct Drain {
    shared: Arc<Shared>,
}

/// The plan's actions, in order, for your code to carry out: see [`recv`](Self::recv).
/// There is one per [`Drain`]; it is not `Clone`, so every action goes to one consumer.
pub struct DrainActions {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    /// Notified (after the lock is released) on every change: actions to take, an attempt
    /// ended, the deadline moved, the last handle gone. Each waiter re-checks its own
    /// condition.
    changed: Condvar,
    clock: Arc<dyn Clock>,
    origin: Instant,
    handles: AtomicUsize,
    /// The [`DrainActions`] stream was dropped: actions are discarded as they come, so the
    /// plan's queue does not grow with nobody to take them.
    actions_dropped: AtomicBool,
}

struct State {
    plan: DrainPlan,
    attempts: u64,
    last_end: Option<(u64, DrainOutcome)>,
}

impl Drain {
    /// Takes `plan` (not begun, typically) on the system clock and starts its timer thread;
    /// returns the handle and the stream of actions. Nothing happens until
    /// [`begin`](Self::begin).
    pub fn new(plan: DrainPlan) -> (Drain, DrainActions) {
        Drain::with_clock(plan, Arc::new(SystemClock))
    }

    /// As [`new`](Self::new), on `clock`; with a [`ManualClock`](crate::ManualClock), call
    /// [`tick_now`](Self::tick_now) after moving it.
    pub fn with_clock(plan: DrainPlan, clock: Arc<dyn Clock>) -> (Drain, DrainActions) {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                attempts: plan.stats().begun,
                plan,
                last_end: None,
            }),
            changed: Condvar::new(),
            origin: clock.now(),
            clock,
            handles: AtomicUsize::new(1),
            actions_dropped: AtomicBool::new(false),
        });
        let timer = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("drain-plan-timer".into())
            .spawn(move || timer.run_timer())
            // Spawning fails only when the OS is out of threads or memory; without its timer
            // the drain could never end a wait, so fail loudly at set-up.
            .expect("failed to spawn the drain plan's timer thread");
        (
            Drain {
                shared: Arc::clone(&shared),
            },
            DrainActions { shared },
        )
    }

    /// Begins the drain (or begins it again after a cancel): see [`DrainPlan::begin`].
    pub fn begin(&self) -> Result<(), DrainError> {
        self.shared.input(|plan, now| plan.begin(now))
    }

    /// Calls the drain off, reverting every phase entered, at once: see
    /// [`DrainPlan::cancel`]. Refused past the point of no return.
    pub fn cancel(&self) -> Result<(), DrainError> {
        self.shared.input(|plan, now| plan.cancel(now))
    }

    /// The current phase's remaining work (zero ends it): see [`DrainPlan::report`].
    pub fn report(&self, phase: PhaseId, remaining: u64) -> Result<(), DrainError> {
        self.shared
            .input(|plan, now| plan.report(now, phase, remaining))
    }

    /// Fires whatever became due by the clock's time, in the calling thread. Needed only
    /// with a clock that does not follow real time ([`ManualClock`](crate::ManualClock)); harmless otherwise.
    pub fn tick_now(&self) {
        self.shared.input(|plan, now| plan.tick(now));
    }

    /// Where the drain is, now: see [`DrainPlan::progress`].
    pub fn progress(&self) -> Progress {
        let now = self.shared.now();
        self.shared.lock().plan.progress(now)
    }

    /// The plan's state.
    pub fn state(&self) -> DrainState {
        self.shared.lock().plan.state()
    }

    /// The latest attempt's history: see [`DrainPlan::history`].
    pub fn history(&self) -> Vec<PhaseRecord> {
        self.shared.lock().plan.history().to_vec()
    }

    /// The id of the first phase named `name`.
    pub fn phase_id(&self, name: &str) -> Option<PhaseId> {
        self.shared.lock().plan.phase_id(name)
    }

    /// A copy of one phase.
    pub fn phase(&self, id: PhaseId) -> Option<Phase> {
        self.shared.lock().plan.phase(id).cloned()
    }

    /// The plan's counters.
    pub fn stats(&self) -> DrainStats {
        self.shared.lock().plan.stats()
    }

    /// Blocks until the drain is not running: returns at once with the latest outcome if it
    /// has finished or been cancelled; otherwise when the running attempt (or, if none has
    /// begun, the next one) finishes or is cancelled.
    pub fn wait(&self) -> DrainOutcome {
        loop {
            if let Some(outcome) = self.wait_until(Instant::now() + Duration::from_secs(3600)) {
                return outcome;
            }
        }
    }

    /// As [`wait`](Self::wait), giving up after `timeout` (real time) with `None`. Giving
    /// up does not cancel the drain.
    pub fn wait_timeout(&self, timeout: Duration) -> Option<DrainOutcome> {
        match Instant::now().checked_add(timeout) {
            Some(deadline) => self.wait_until(deadline),
            None => Some(self.wait()),
        }
    }

    /// As [`wait`](Self::wait), giving up at `deadline` (real time) with `None`. Giving up
    /// does not cancel the drain.
    pub fn wait_until(&self, deadline: Instant) -> Option<DrainOutcome> {
        let mut state = self.shared.lock();
        let target = match state.plan.state() {
            DrainState::NotBegun => state.attempts + 1,
            _ => state.attempts,
        };
        loop {
            if let Some((attempt, outcome)) = state.last_end {
                if attempt >= target {
                    return Some(outcome);
                }
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            state = self
                .shared
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

impl Clone for Drain {
    fn clone(&self) -> Self {
        self.shared.handles.fetch_add(1, Ordering::Relaxed);
        Drain {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl Drop for Drain {
    fn drop(&mut self) {
        if self.shared.handles.fetch_sub(1, Ordering::AcqRel) == 1 {
            // Under the lock, so a waiter cannot miss it between its check and its wait.
            drop(self.shared.lock());
            self.shared.changed.notify_all();
        }
    }
}

impl std::fmt::Debug for Drain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Drain")
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

impl DrainActions {
    /// The next action, in the plan's order, blocking until there is one; `None` once no
    /// more can come (the drain finished, or every [`Drain`] handle was dropped) and every
    /// action was taken.
    ///
    /// Carry out each action before asking for the next. A cancel can be called while you
    /// carry out an `Enter`: its reverts come next, in order, including the phase you are
    /// entering.
    pub fn recv(&self) -> Option<DrainAction> {
        let mut state = self.shared.lock();
        loop {
            if let Some(next) = self.shared.take_action(&mut state) {
                return next;
            }
            state = self
                .shared
                .changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// As [`recv`](Self::recv), giving up after `timeout` (real time): `Some(Some(action))`,
    /// `Some(None)` once no more can come, `None` if none came in time.
    pub fn recv_timeout(&self, timeout: Duration) -> Option<Option<DrainAction>> {
        let deadline = Instant::now().checked_add(timeout);
        let mut state = self.shared.lock();
        loop {
            if let Some(next) = self.shared.take_action(&mut state) {
                return Some(next);
            }
            let left = match deadline {
                Some(d) => d.checked_duration_since(Instant::now())?,
                None => Duration::from_secs(3600),
            };
            state = self
                .shared
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// The next action if one is ready: `Some(Some(action))`; `Some(None)` once no more can
    /// come; `None` if none is ready yet.
    pub fn try_recv(&self) -> Option<Option<DrainAction>> {
        let mut state = self.shared.lock();
        self.shared.take_action(&mut state)
    }
}

impl Drop for DrainActions {
    fn drop(&mut self) {
        self.shared.actions_dropped.store(true, Ordering::Relaxed);
        let mut state = self.shared.lock();
        while state.plan.poll_action().is_some() {}
    }
}

impl std::fmt::Debug for DrainActions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DrainActions").finish_non_exhaustive()
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn now(&self) -> Timestamp {
        let since = self.clock.now().saturating_duration_since(self.origin);
        Timestamp::from_nanos(u64::try_from(since.as_nanos()).unwrap_or(u64::MAX))
    }

    fn take_action(&self, state: &mut State) -> Option<Option<DrainAction>> {
        if let Some(action) = state.plan.poll_action() {
            return Some(Some(action));
        }
        let over =
            state.plan.state() == DrainState::Finished || self.handles.load(Ordering::Acquire) == 0;
        over.then_some(None)
    }

    /// One input under the lock; waiters are woken after the lock is released.
    fn input<R>(&self, f: impl FnOnce(&mut DrainPlan, Timestamp) -> R) -> R {
        let result = {
            let mut state = self.lock();
            // Read the clock under the lock, so inputs reach the plan in time order.
            let now = self.now();
            let before = state.plan.state();
            let result = f(&mut state.plan, now);
            if self.actions_dropped.load(Ordering::Relaxed) {
                while state.plan.poll_action().is_some() {}
            }
            let after = state.plan.state();
            let running = |s| matches!(s, DrainState::Running { .. });
            let ended = matches!(after, DrainState::Finished | DrainState::Cancelled);
            if (running(after) || ended) && !running(before) && before != after {
                state.attempts += 1;
            }
            if ended && before != after {
                let outcome = match after {
                    DrainState::Cancelled => DrainOutcome::Cancelled {
                        reverted: state.plan.history().len(),
                    },
                    _ => DrainOutcome::Finished,
                };
                state.last_end = Some((state.attempts, outcome));
            }
            result
        };
        self.changed.notify_all();
        result
    }

    /// The timer thread: sleeps until the plan's next deadline, ticks, repeats; ends when
    /// every handle is gone.
    fn run_timer(&self) {
        let mut state = self.lock();
        loop {
            if self.handles.load(Ordering::Acquire) == 0 {
                return;
            }
            let due = state.plan.poll_timeout().and_then(|at| {
                let instant = self
                    .origin
                    .checked_add(at.saturating_duration_since(Timestamp::ZERO))?;
                self.clock.real_time_until(instant)
            });
            state = match due {
                Some(left) if left.is_zero() => {
                    drop(state);
                    self.input(|plan, now| plan.tick(now));
                    self.lock()
                }
                Some(left) => {
                    self.changed
                        .wait_timeout(state, left)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
                None => self
                    .changed
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use std::thread;

    use super::*;
    use crate::ManualClock;

    fn router_plan() -> DrainPlan {
        DrainPlan::new([
            Phase::reversible("not ready"),
            Phase::reversible("wait for load balancers").max_wait(Duration::from_secs(5)),
            Phase::reversible("wait for requests")
                .max_wait(Duration::from_secs(10))
                .until_no_work(),
            Phase::irreversible("close"),
        ])
        .unwrap()
    }

    const REQUESTS: PhaseId = PhaseId::from_index(2);

    fn enter(i: u32) -> DrainAction {
        DrainAction::Enter {
            phase: PhaseId::from_index(i),
        }
    }

    fn revert(i: u32) -> DrainAction {
        DrainAction::Revert {
            phase: PhaseId::from_index(i),
        }
    }

    fn ready(actions: &DrainActions) -> Vec<DrainAction> {
        std::iter::from_fn(|| actions.try_recv().flatten()).collect()
    }

    fn manual() -> (Arc<ManualClock>, Drain, DrainActions) {
        let clock = Arc::new(ManualClock::new());
        let (drain, actions) = Drain::with_clock(router_plan(), clock.clone());
        (clock, drain, actions)
    }

    #[test]
    fn with_a_manual_clock_a_wait_ends_at_the_tick_after_its_deadline() {
        let (clock, drain, actions) = manual();
        drain.begin().unwrap();
        assert_eq!(ready(&actions), [enter(0), enter(1)]);
        clock.advance(Duration::from_millis(4_999));
        drain.tick_now();
        assert_eq!(ready(&actions), []);
        clock.advance(Duration::from_millis(1));
        drain.tick_now();
        assert_eq!(ready(&actions), [enter(2)]);
        drain.report(REQUESTS, 2).unwrap();
        assert_eq!(
            drain.progress().phase.unwrap().time_left,
            Duration::from_secs(10)
        );
        drain.report(REQUESTS, 0).unwrap();
        assert_eq!(drain.wait(), DrainOutcome::Finished);
    }

    #[test]
    fn cancel_during_a_wait_reverts_at_once_and_wakes_a_blocked_waiter() {
        let (clock, drain, actions) = manual();
        drain.begin().unwrap();
        let waiter = thread::spawn({
            let drain = drain.clone();
            move || drain.wait()
        });
        clock.advance(Duration::from_secs(2));
        drain.cancel().unwrap();
        assert_eq!(
            waiter.join().unwrap(),
            DrainOutcome::Cancelled { reverted: 2 }
        );
        assert_eq!(
            ready(&actions),
            [
                enter(0),
                enter(1),
                revert(1),
                revert(0),
                DrainAction::Cancelled { reverted: 2 }
            ]
        );
    }

    #[test]
    fn giving_up_a_wait_at_its_deadline_does_not_cancel_the_drain() {
        let (_clock, drain, _actions) = manual();
        drain.begin().unwrap();
        assert_eq!(drain.wait_timeout(Duration::from_millis(20)), None);
        assert_eq!(drain.wait_until(Instant::now()), None);
        assert!(matches!(drain.state(), DrainState::Running { .. }));
        assert_eq!(drain.stats().cancelled, 0);
    }

    #[test]
    fn on_the_system_clock_the_timer_thread_ends_each_wait() {
        let plan = DrainPlan::new([
            Phase::reversible("not ready"),
            Phase::reversible("wait").max_wait(Duration::from_millis(30)),
            Phase::irreversible("close"),
        ])
        .unwrap();
        let (drain, actions) = Drain::new(plan);
        let started = Instant::now();
        drain.begin().unwrap();
        assert_eq!(
            drain.wait_timeout(Duration::from_secs(30)),
            Some(DrainOutcome::Finished)
        );
        assert!(started.elapsed() >= Duration::from_millis(30));
        let all: Vec<_> = std::iter::from_fn(|| actions.recv()).collect();
        assert_eq!(all.last(), Some(&DrainAction::Finished));
    }

    #[test]
    fn a_consumer_thread_receives_every_action_in_order_until_the_handles_are_gone() {
        let (_clock, drain, actions) = manual();
        let consumer =
            thread::spawn(move || std::iter::from_fn(|| actions.recv()).collect::<Vec<_>>());
        drain.begin().unwrap();
        drain.cancel().unwrap();
        drain.begin().unwrap();
        drop(drain);
        assert_eq!(
            consumer.join().unwrap(),
            [
                enter(0),
                enter(1),
                revert(1),
                revert(0),
                DrainAction::Cancelled { reverted: 2 },
                enter(0),
                enter(1)
            ]
        );
    }

    #[test]
    fn without_an_action_stream_the_drain_runs_on_and_keeps_no_actions() {
        let (clock, drain, actions) = manual();
        drain.begin().unwrap();
        drop(actions);
        drain.cancel().unwrap();
        drain.begin().unwrap();
        clock.advance(Duration::from_secs(5));
        drain.tick_now();
        drain.report(REQUESTS, 0).unwrap();
        assert_eq!(drain.wait(), DrainOutcome::Finished);
        assert_eq!(drain.shared.lock().plan.poll_action(), None);
    }

    #[test]
    fn recv_timeout_gives_up_when_nothing_comes() {
        let (_clock, drain, actions) = manual();
        assert_eq!(actions.recv_timeout(Duration::from_millis(10)), None);
        drain.begin().unwrap();
        assert_eq!(
            actions.recv_timeout(Duration::from_millis(10)),
            Some(Some(enter(0)))
        );
    }

    #[test]
    fn cancel_past_the_point_of_no_return_is_refused() {
        let clock = Arc::new(ManualClock::new());
        let (drain, _actions) = Drain::with_clock(
            DrainPlan::new([Phase::irreversible("close").max_wait(Duration::from_secs(1))])
                .unwrap(),
            clock.clone(),
        );
        drain.begin().unwrap();
        assert_eq!(
            drain.cancel(),
            Err(DrainError::PastPointOfNoReturn {
                point_of_no_return: PhaseId::from_index(0)
            })
        );
        clock.advance(Duration::from_secs(1));
        drain.tick_now();
        assert_eq!(drain.wait(), DrainOutcome::Finished);
    }
}
