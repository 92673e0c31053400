//! Runs any [`DrainPlan`] on tokio: a handle to begin, cancel and report, a stream of the
//! plan's actions for your code to carry out, a future for the end, and a timer task for
//! the phases' maximum waits.
//!
//! The plan is the core's sans-IO [`DrainPlan`] (its rules are documented there); this
//! module gives it tokio's clock and one timer, so a router can run its own graceful
//! shutdown through the same machinery: build the plan, [`Drain::new`] it, carry out each
//! [`DrainAction`] the [`DrainActions`] stream yields, feed it signals and counts.
//!
//! ```
//! use std::time::Duration;
//! use failover_buffer_tokio::plan::{Drain, DrainAction, DrainOutcome, DrainPlan, Phase};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let plan = DrainPlan::new([
//!     Phase::reversible("not ready"),
//!     Phase::reversible("wait for load balancers").max_wait(Duration::from_secs(5)),
//!     Phase::irreversible("close"),
//! ])?;
//! let (drain, mut actions) = Drain::new(plan);
//! // Your code carries out the actions, in a task of its own: outside any lock of ours.
//! let worker = tokio::spawn(async move {
//!     let mut log = Vec::new();
//!     while let Some(action) = actions.recv().await {
//!         log.push(action); // e.g. on Enter(not ready), answer 503 on /ready
//!     }
//!     log // the stream ends once the drain has finished
//! });
//!
//! drain.begin()?; // e.g. on SIGTERM
//! // Five seconds later (paused time here), the wait ends and the plan closes.
//! assert_eq!(drain.done().await, DrainOutcome::Finished);
//! assert_eq!(worker.await?.last(), Some(&DrainAction::Finished));
//! # Ok(()) }
//! ```
//!
//! # Cancel safety and drop
//!
//! * Dropping a [`Drain::done`] future does **not** cancel the drain: it only stops waiting.
//!   Call [`Drain::cancel`] to call the drain off.
//! * [`DrainActions::recv`] is cancel-safe: an action is taken from the plan only when the
//!   future returns it, so dropping the future (in a `select!`) loses nothing.
//! * Dropping every [`Drain`] handle stops the timer task: the plan stays where it is,
//!   neither finishing nor cancelled, and [`DrainActions::recv`] returns the actions left,
//!   then `None`. Dropping the [`DrainActions`] stream discards the actions not yet taken
//!   (the plan runs on; nobody carries them out).

use std::future::{Future, poll_fn};
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::Poll;

use failover_buffer::Timestamp;
pub use failover_buffer::drain::{
    DrainAction, DrainError, DrainPlan, DrainState, DrainStats, Phase, PhaseEnd, PhaseId,
    PhaseProgress, PhaseRecord, PlanError, Progress,
};
use tokio::sync::Notify;
use tokio::time::{Instant, sleep_until};

/// How an attempt of a drain ended; see [`Drain::done`].
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

/// A handle to a running [`DrainPlan`]: begin, cancel, report, watch. Cheap to clone; every
/// clone drives the same plan.
///
/// Every method takes the plan's lock for one core input and releases it before waking
/// anyone; no user code runs under it.
#[derive(Debug)]
pub struct Drain {
    shared: Arc<Shared>,
}

/// The plan's actions, in order, for your code to carry out: see [`recv`](Self::recv).
/// There is one per [`Drain`]; it is not `Clone`, so every action goes to one consumer.
#[derive(Debug)]
pub struct DrainActions {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    origin: Instant,
    /// Wakes the timer task: the deadline changed, or the last handle went away. Held apart
    /// so the task can wait on it without keeping `Shared` alive.
    timer: Arc<Notify>,
    /// Wakes the action stream.
    actions: Notify,
    /// Wakes `done` futures (every one of them) when an attempt ends.
    ended: Notify,
    handles: AtomicUsize,
    /// The [`DrainActions`] stream was dropped: actions are discarded as they come, so the
    /// plan's queue does not grow with nobody to take them.
    actions_dropped: AtomicBool,
}

#[derive(Debug)]
struct State {
    plan: DrainPlan,
    /// The deadline the timer task sleeps towards.
    armed: Option<Timestamp>,
    /// Attempts begun, and the latest attempt to end with how it ended.
    attempts: u64,
    last_end: Option<(u64, DrainOutcome)>,
}

impl Drain {
    /// Takes `plan` (not begun, typically) and spawns its timer task; returns the handle and
    /// the stream of actions. Nothing happens until [`begin`](Self::begin).
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime, as [`tokio::spawn`] does. The runtime needs its timer
    /// enabled.
    pub fn new(plan: DrainPlan) -> (Drain, DrainActions) {
        let timer = Arc::new(Notify::new());
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                attempts: plan.stats().begun,
                plan,
                armed: None,
                last_end: None,
            }),
            origin: Instant::now(),
            timer: Arc::clone(&timer),
            actions: Notify::new(),
            ended: Notify::new(),
            handles: AtomicUsize::new(1),
            actions_dropped: AtomicBool::new(false),
        });
        tokio::spawn(run_timer(Arc::downgrade(&shared), timer));
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

    /// Resolves when the drain is not running: at once with the latest outcome if it has
    /// finished or been cancelled; otherwise when the running attempt (or, if none has
    /// begun, the next one) finishes or is cancelled.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future does not cancel the drain; it only stops waiting for it. Any
    /// number of these futures can wait at once.
    pub fn done(&self) -> impl Future<Output = DrainOutcome> + Send + 'static {
        let shared = Arc::clone(&self.shared);
        let target = {
            let state = shared.lock();
            match state.plan.state() {
                DrainState::Running { .. } => state.attempts,
                DrainState::NotBegun => state.attempts + 1,
                DrainState::Finished | DrainState::Cancelled => state.attempts,
            }
        };
        async move {
            loop {
                let mut notified = pin!(shared.ended.notified());
                notified.as_mut().enable();
                if let Some((attempt, outcome)) = shared.lock().last_end {
                    if attempt >= target {
                        return outcome;
                    }
                }
                notified.await;
            }
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
            self.shared.timer.notify_one();
            self.shared.actions.notify_one();
        }
    }
}

impl DrainActions {
    /// The next action, in the plan's order, waiting for one if there is none yet; `None`
    /// once no more can come (the drain finished, or every [`Drain`] handle was dropped) and
    /// every action was taken.
    ///
    /// Carry out each action before asking for the next. A cancel can be called while you
    /// carry out an `Enter`: its reverts come next, in order, including the phase you are
    /// entering.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: an action is removed from the plan only when this future returns it.
    pub async fn recv(&mut self) -> Option<DrainAction> {
        loop {
            let mut notified = pin!(self.shared.actions.notified());
            notified.as_mut().enable();
            if let Some(next) = self.shared.take_action() {
                return next;
            }
            notified.await;
        }
    }

    /// The next action if one is ready: `Some(Some(action))`; `Some(None)` once no more can
    /// come; `None` if none is ready yet.
    pub fn try_recv(&mut self) -> Option<Option<DrainAction>> {
        self.shared.take_action()
    }
}

impl Drop for DrainActions {
    fn drop(&mut self) {
        self.shared.actions_dropped.store(true, Ordering::Relaxed);
        let mut state = self.shared.lock();
        while state.plan.poll_action().is_some() {}
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// See [`DrainActions::try_recv`].
    fn take_action(&self) -> Option<Option<DrainAction>> {
        let mut state = self.lock();
        if let Some(action) = state.plan.poll_action() {
            return Some(Some(action));
        }
        let over =
            state.plan.state() == DrainState::Finished || self.handles.load(Ordering::Acquire) == 0;
        over.then_some(None)
    }

    /// Now, on tokio's clock, as a core timestamp.
    fn now(&self) -> Timestamp {
        let since = Instant::now().saturating_duration_since(self.origin);
        Timestamp::from_nanos(u64::try_from(since.as_nanos()).unwrap_or(u64::MAX))
    }

    /// A core timestamp on tokio's clock; `None` past what an `Instant` can hold.
    fn instant(&self, at: Timestamp) -> Option<Instant> {
        self.origin
            .checked_add(at.saturating_duration_since(Timestamp::ZERO))
    }

    /// One input under the lock; the wake-ups it calls for after the lock is released.
    fn input<R>(&self, f: impl FnOnce(&mut DrainPlan, Timestamp) -> R) -> R {
        let (result, timer_moved, ended) = {
            let mut state = self.lock();
            // Read the clock under the lock, so inputs reach the plan in time order.
            let now = self.now();
            let before = state.plan.state();
            let result = f(&mut state.plan, now);
            if self.actions_dropped.load(Ordering::Relaxed) {
                while state.plan.poll_action().is_some() {}
            }
            let after = state.plan.state();
            if matches!(after, DrainState::Running { .. })
                && !matches!(before, DrainState::Running { .. })
            {
                state.attempts += 1;
            }
            let ended =
                before != after && matches!(after, DrainState::Finished | DrainState::Cancelled);
            if ended {
                // An empty plan finishes within `begin`, never having been `Running`.
                if !matches!(before, DrainState::Running { .. }) {
                    state.attempts += 1;
                }
                let outcome = match after {
                    DrainState::Cancelled => DrainOutcome::Cancelled {
                        reverted: state.plan.history().len(),
                    },
                    _ => DrainOutcome::Finished,
                };
                state.last_end = Some((state.attempts, outcome));
            }
            (result, state.plan.poll_timeout() != state.armed, ended)
        };
        if timer_moved {
            self.timer.notify_one();
        }
        self.actions.notify_one();
        if ended {
            self.ended.notify_waiters();
        }
        result
    }
}

/// Sleeps until the plan's next deadline, ticks it, and repeats, until every [`Drain`]
/// handle is gone.
async fn run_timer(shared: Weak<Shared>, timer: Arc<Notify>) {
    let mut sleep = pin!(sleep_until(Instant::now()));
    let mut armed: Option<Timestamp> = None;
    loop {
        let next = {
            let Some(shared) = shared.upgrade() else {
                return;
            };
            if shared.handles.load(Ordering::Acquire) == 0 {
                return;
            }
            let mut state = shared.lock();
            let next = state.plan.poll_timeout();
            state.armed = next;
            // A deadline past what an `Instant` holds is never reached: sleep without one.
            next.and_then(|at| shared.instant(at).map(|instant| (at, instant)))
        };
        if next.map(|(at, _)| at) != armed {
            if let Some((_, instant)) = next {
                sleep.as_mut().reset(instant);
            }
            armed = next.map(|(at, _)| at);
        }
        let mut notified = pin!(timer.notified());
        let fired = poll_fn(|cx| {
            if armed.is_some() && sleep.as_mut().poll(cx).is_ready() {
                return Poll::Ready(true);
            }
            notified.as_mut().poll(cx).map(|()| false)
        })
        .await;
        if fired {
            armed = None;
            let Some(shared) = shared.upgrade() else {
                return;
            };
            shared.input(|plan, now| plan.tick(now));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::time::{advance, sleep};

    use super::*;

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

    /// Every action ready now.
    fn ready(actions: &mut DrainActions) -> Vec<DrainAction> {
        std::iter::from_fn(|| actions.try_recv().flatten()).collect()
    }

    #[tokio::test(start_paused = true)]
    async fn the_timer_ends_each_wait_at_its_deadline() {
        let (drain, mut actions) = Drain::new(router_plan());
        drain.begin().unwrap();
        assert_eq!(ready(&mut actions), [enter(0), enter(1)]);
        sleep(Duration::from_millis(4_999)).await;
        assert_eq!(ready(&mut actions), [], "not before the deadline");
        assert_eq!(actions.recv().await, Some(enter(2)));
        assert_eq!(
            drain.history()[1].left.map(|(_, why)| why),
            Some(PhaseEnd::MaxWaitElapsed)
        );
        // The wait for requests runs out 10 s later, with work left: the drain closes.
        drain.report(REQUESTS, 4).unwrap();
        assert_eq!(drain.done().await, DrainOutcome::Finished);
        assert_eq!(
            ready(&mut actions),
            [
                DrainAction::PointOfNoReturn {
                    phase: PhaseId::from_index(3)
                },
                enter(3),
                DrainAction::Finished
            ]
        );
        assert_eq!(actions.recv().await, None, "the stream ends after Finished");
    }

    #[tokio::test(start_paused = true)]
    async fn cancel_during_a_wait_reverts_at_once_and_done_says_cancelled() {
        let (drain, mut actions) = Drain::new(router_plan());
        let done = tokio::spawn(drain.done());
        drain.begin().unwrap();
        advance(Duration::from_secs(2)).await;
        drain.cancel().unwrap();
        assert_eq!(
            ready(&mut actions),
            [
                enter(0),
                enter(1),
                revert(1),
                revert(0),
                DrainAction::Cancelled { reverted: 2 }
            ]
        );
        assert_eq!(done.await.unwrap(), DrainOutcome::Cancelled { reverted: 2 });
        // The old deadline passes: nothing happens.
        sleep(Duration::from_secs(10)).await;
        assert_eq!(ready(&mut actions), []);
        assert_eq!(drain.state(), DrainState::Cancelled);
    }

    #[tokio::test(start_paused = true)]
    async fn dropping_the_done_future_does_not_cancel_the_drain() {
        let (drain, _actions) = Drain::new(router_plan());
        drain.begin().unwrap();
        let timed_out = tokio::time::timeout(Duration::from_secs(1), drain.done()).await;
        assert!(timed_out.is_err(), "still running after 1 s");
        assert!(matches!(drain.state(), DrainState::Running { .. }));
        assert_eq!(drain.stats().cancelled, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn work_reported_done_ends_its_phase_early() {
        let (drain, mut actions) = Drain::new(router_plan());
        drain.begin().unwrap();
        let mut seen = Vec::new();
        for _ in 0..3 {
            seen.push(actions.recv().await.unwrap());
        }
        assert_eq!(seen, [enter(0), enter(1), enter(2)]);
        drain.report(REQUESTS, 3).unwrap();
        let progress = drain.progress();
        assert_eq!(progress.phase.as_ref().unwrap().remaining, Some(3));
        assert_eq!(
            progress.phase.as_ref().unwrap().time_left,
            Duration::from_secs(10)
        );
        advance(Duration::from_secs(1)).await;
        drain.report(REQUESTS, 0).unwrap();
        assert_eq!(drain.done().await, DrainOutcome::Finished);
        assert_eq!(drain.progress().since_begin, Some(Duration::from_secs(6)));
    }

    #[tokio::test(start_paused = true)]
    async fn cancel_past_the_point_of_no_return_is_refused() {
        let (drain, _actions) = Drain::new(
            DrainPlan::new([
                Phase::irreversible("close"),
                Phase::irreversible("flush").max_wait(Duration::from_secs(1)),
            ])
            .unwrap(),
        );
        drain.begin().unwrap();
        assert_eq!(
            drain.cancel(),
            Err(DrainError::PastPointOfNoReturn {
                point_of_no_return: PhaseId::from_index(0)
            })
        );
        assert_eq!(drain.done().await, DrainOutcome::Finished);
    }

    #[tokio::test(start_paused = true)]
    async fn begin_again_after_cancel_and_done_waits_for_the_new_attempt() {
        let (drain, mut actions) = Drain::new(router_plan());
        drain.begin().unwrap();
        drain.cancel().unwrap();
        assert_eq!(
            drain.done().await,
            DrainOutcome::Cancelled { reverted: 2 },
            "already over: at once"
        );
        let first = ready(&mut actions);
        drain.begin().unwrap();
        let done = drain.done();
        let mut second = Vec::new();
        while second.last() != Some(&enter(2)) {
            second.push(actions.recv().await.unwrap());
        }
        assert_eq!(
            second,
            [enter(0), enter(1), enter(2)],
            "from the first phase"
        );
        drain.report(REQUESTS, 0).unwrap();
        assert_eq!(done.await, DrainOutcome::Finished);
        assert_eq!(first.last(), Some(&DrainAction::Cancelled { reverted: 2 }));
    }

    #[tokio::test(start_paused = true)]
    async fn done_before_begin_waits_for_the_first_attempt() {
        let (drain, _actions) = Drain::new(DrainPlan::new([]).unwrap());
        let done = tokio::spawn(drain.done());
        tokio::task::yield_now().await;
        assert!(!done.is_finished());
        drain.begin().unwrap();
        assert_eq!(done.await.unwrap(), DrainOutcome::Finished);
    }

    #[tokio::test(start_paused = true)]
    async fn without_an_action_stream_the_drain_runs_on_and_keeps_no_actions() {
        let (drain, actions) = Drain::new(router_plan());
        drain.begin().unwrap();
        drop(actions);
        drain.cancel().unwrap();
        drain.begin().unwrap();
        // Just past the deadline, so the timer task has ticked.
        sleep(Duration::from_millis(5_001)).await;
        drain.report(REQUESTS, 0).unwrap();
        assert_eq!(drain.done().await, DrainOutcome::Finished);
        assert_eq!(drain.shared.lock().plan.poll_action(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn recv_is_cancel_safe() {
        let (drain, mut actions) = Drain::new(router_plan());
        // A recv dropped while waiting loses nothing.
        let nothing = tokio::time::timeout(Duration::from_millis(10), actions.recv()).await;
        assert!(nothing.is_err());
        drain.begin().unwrap();
        tokio::select! {
            biased;
            a = actions.recv() => assert_eq!(a, Some(enter(0))),
            () = sleep(Duration::from_secs(1)) => unreachable!(),
        }
        assert_eq!(actions.recv().await, Some(enter(1)));
    }

    #[tokio::test(start_paused = true)]
    async fn actions_are_delivered_to_a_consumer_task_in_order() {
        let (drain, mut actions) = Drain::new(router_plan());
        let consumer = tokio::spawn(async move {
            let mut seen = Vec::new();
            while let Some(action) = actions.recv().await {
                seen.push(action);
                // Carrying out an action takes time; the drain goes on meanwhile.
                sleep(Duration::from_millis(100)).await;
            }
            seen
        });
        drain.begin().unwrap();
        sleep(Duration::from_secs(1)).await;
        drain.cancel().unwrap();
        drain.begin().unwrap();
        drain.cancel().unwrap();
        drop(drain);
        assert_eq!(
            consumer.await.unwrap(),
            [
                enter(0),
                enter(1),
                revert(1),
                revert(0),
                DrainAction::Cancelled { reverted: 2 },
                enter(0),
                enter(1),
                revert(1),
                revert(0),
                DrainAction::Cancelled { reverted: 2 },
            ],
            "the stream ends once every handle is gone and every action taken"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_too_long_for_an_instant_never_fires_and_never_panics() {
        let (drain, _actions) = Drain::new(
            DrainPlan::new([Phase::reversible("forever")
                .max_wait(Duration::MAX)
                .until_no_work()])
            .unwrap(),
        );
        drain.begin().unwrap();
        sleep(Duration::from_secs(86_400 * 365)).await;
        assert!(matches!(drain.state(), DrainState::Running { .. }));
        drain.report(PhaseId::from_index(0), 0).unwrap();
        assert_eq!(drain.done().await, DrainOutcome::Finished);
    }

    #[tokio::test(start_paused = true)]
    async fn dropping_every_handle_stops_the_timer_and_leaves_the_plan_where_it_is() {
        let (drain, mut actions) = Drain::new(router_plan());
        drain.begin().unwrap();
        let done = drain.done();
        drop(drain);
        sleep(Duration::from_secs(60)).await;
        assert_eq!(ready(&mut actions), [enter(0), enter(1)], "no tick fired");
        assert_eq!(actions.recv().await, None);
        assert!(
            tokio::time::timeout(Duration::from_secs(1), done)
                .await
                .is_err(),
            "never ends"
        );
    }
}
