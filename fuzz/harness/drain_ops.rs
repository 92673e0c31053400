//! The one harness behind `DrainPlan`'s property tests (`core/tests/drain_properties.rs`),
//! its corpus replay (`core/tests/drain_fuzz_corpus.rs`) and its fuzz target
//! (`fuzz/fuzz_targets/drain_plan.rs`).
//!
//! A [`Case`] is a plan of 0–5 phases and a list of [`Op`]s, each an input at a time relative
//! to the previous one (forwards, or backwards to exercise clamping). [`run`] feeds the ops
//! to a real `DrainPlan` beside a small shadow of what it must do, and after every op checks:
//!
//! * the answer: each input is accepted or refused exactly as the rules say (begin while
//!   running, cancel past the point of no return, a stale report, ...), and a refused input
//!   changes nothing and emits nothing;
//! * reverts mirror entries: phases are entered in order, each at most once per attempt; a
//!   cancel reverts exactly the phases entered, last first, then says `Cancelled` with their
//!   count; `begin` after a cancel starts from the first phase again;
//! * the point of no return: announced once per attempt, immediately before the first
//!   irreversible phase is entered; no revert ever follows it;
//! * time: a phase never ends by its max wait early, never outlasts its max wait by more
//!   than the gap between the tick that ended it and the previous tick, and `poll_timeout`
//!   after `tick(t)` is `None` or later than `t`; a cancel leaves no deadline;
//! * the counters: begun = cancelled + finished + (1 if running).
//!
//! Every check is an `assert!`, so a violation is a panic: a failing proptest case, or a
//! fuzz crash. The byte format ([`Case::from_bytes`]) is tiny and stable so that seeds can be
//! written by hand ([`Case::to_bytes`]).

use core::time::Duration;

use failover_buffer::Timestamp;
use failover_buffer::drain::{
    DrainAction, DrainError, DrainPlan, DrainState, Phase, PhaseEnd, PhaseId, PlanError,
};

/// One phase of a generated plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PhaseSpec {
    pub(crate) reversible: bool,
    pub(crate) waits_for_work: bool,
    /// 0–20 ms.
    pub(crate) max_wait_ms: u64,
}

impl PhaseSpec {
    pub(crate) fn to_phase(self, index: usize) -> Phase {
        let name = format!("phase {index}");
        let phase = if self.reversible {
            Phase::reversible(name)
        } else {
            Phase::irreversible(name)
        };
        let phase = phase.max_wait(Duration::from_millis(self.max_wait_ms));
        if self.waits_for_work {
            phase.until_no_work()
        } else {
            phase
        }
    }
}

/// When an op happens, relative to the previous op's time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum When {
    /// This many milliseconds later (0–15).
    After(u64),
    /// This many milliseconds earlier (1–127): the clock went backwards.
    Before(u64),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Input {
    Begin,
    Cancel,
    /// A report for the phase at this index (possibly past the plan's end).
    Report {
        phase: u32,
        remaining: u64,
    },
    Tick,
    /// A tick exactly at `poll_timeout` (or a plain tick when there is none): an ideal driver.
    TickAtDeadline,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Op {
    pub(crate) when: When,
    pub(crate) input: Input,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Case {
    pub(crate) phases: Vec<PhaseSpec>,
    pub(crate) ops: Vec<Op>,
}

impl Case {
    /// Decodes any bytes: `[phase count] [one byte per phase] ([op] [time])*`. A phase byte
    /// is bit 0 reversible, bit 1 waits for work, bits 2–7 the max wait in ms (mod 21). An op
    /// byte is bits 0–2 the input (mod 5), bits 3–5 a phase index, bits 6–7 the remaining
    /// work; a time byte with bit 7 set goes back `b & 0x7f` ms (at least 1), else forward
    /// `b % 16` ms.
    pub(crate) fn from_bytes(data: &[u8]) -> Case {
        let mut bytes = data.iter().copied();
        let count = bytes.next().map_or(0, |b| usize::from(b % 6));
        let phases = (0..count)
            .map(|_| {
                let b = bytes.next().unwrap_or(0);
                PhaseSpec {
                    reversible: b & 1 == 1,
                    waits_for_work: b & 2 == 2,
                    max_wait_ms: u64::from(b >> 2) % 21,
                }
            })
            .collect();
        let mut ops = Vec::new();
        while let Some(op) = bytes.next() {
            let time = bytes.next().unwrap_or(0);
            let input = match op % 8 % 5 {
                0 => Input::Begin,
                1 => Input::Cancel,
                2 => Input::Report {
                    phase: u32::from((op >> 3) & 7),
                    remaining: u64::from(op >> 6),
                },
                3 => Input::Tick,
                _ => Input::TickAtDeadline,
            };
            let when = if time & 0x80 != 0 {
                When::Before(u64::from(time & 0x7f).max(1))
            } else {
                When::After(u64::from(time % 16))
            };
            ops.push(Op { when, input });
        }
        Case { phases, ops }
    }

    /// The bytes [`from_bytes`](Self::from_bytes) decodes back to this case (for cases in
    /// its range: at most 5 phases, phase indices below 8, remaining below 4).
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let mut out = vec![self.phases.len() as u8];
        for p in &self.phases {
            out.push(
                u8::from(p.reversible)
                    | (u8::from(p.waits_for_work) << 1)
                    | ((p.max_wait_ms as u8) << 2),
            );
        }
        for op in &self.ops {
            out.push(match op.input {
                Input::Begin => 0,
                Input::Cancel => 1,
                Input::Report { phase, remaining } => {
                    2 | ((phase as u8) << 3) | ((remaining as u8) << 6)
                }
                Input::Tick => 3,
                Input::TickAtDeadline => 4,
            });
            out.push(match op.when {
                When::After(ms) => ms as u8,
                When::Before(ms) => 0x80 | ms as u8,
            });
        }
        out
    }
}

/// What a run reached, for tests that want to know the case did something.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Summary {
    pub(crate) accepted: usize,
    pub(crate) refused: usize,
    pub(crate) cancels: usize,
    pub(crate) finishes: usize,
    pub(crate) reverts: usize,
}

/// See [`Checker::canonical_state`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct CanonicalState {
    state: DrainState,
    entered: usize,
    past_point_of_no_return: bool,
    /// The current phase's last report, time since entry and time to its deadline.
    current: Option<(Option<u64>, Duration, Option<Duration>)>,
    since_tick: Duration,
}

/// Feeds the case to a `DrainPlan`, checking every property after every op.
pub(crate) fn run(case: &Case) -> Summary {
    let plan = DrainPlan::new(case.phases.iter().enumerate().map(|(i, p)| p.to_phase(i)));
    let invalid = case
        .phases
        .iter()
        .position(|p| p.waits_for_work && p.max_wait_ms == 0);
    let plan = match (plan, invalid) {
        (Ok(plan), None) => plan,
        (Err(PlanError::NoTimeToWaitForWork { phase }), Some(i)) => {
            assert_eq!(phase.index(), i, "the first invalid phase is named");
            return Summary::default();
        }
        (result, invalid) => panic!("construction {result:?}, but invalid phase {invalid:?}"),
    };
    let mut checker = Checker::new(plan, case.phases.clone());
    let mut now: u64 = 0;
    for op in &case.ops {
        now = match op.when {
            When::After(ms) => now.saturating_add(ms * 1_000_000),
            When::Before(ms) => now.saturating_sub(ms * 1_000_000),
        };
        checker.step(Timestamp::from_nanos(now), op.input);
    }
    checker.summary
}

/// Decodes and runs fuzz input.
pub(crate) fn fuzz_drain_plan(data: &[u8]) {
    run(&Case::from_bytes(data));
}

/// A `DrainPlan` beside a shadow of what it must do.
#[derive(Clone, Debug)]
pub(crate) struct Checker {
    pub(crate) plan: DrainPlan,
    specs: Vec<PhaseSpec>,
    point_of_no_return: Option<usize>,
    /// Phases entered in this attempt, in order.
    entered: Vec<PhaseId>,
    past_point_of_no_return: bool,
    state: DrainState,
    /// The clamped time of the latest tick, or of the latest begin.
    last_tick: Timestamp,
    latest: Timestamp,
    pub(crate) summary: Summary,
}

impl Checker {
    pub(crate) fn new(plan: DrainPlan, specs: Vec<PhaseSpec>) -> Checker {
        let point_of_no_return = specs.iter().position(|p| !p.reversible);
        assert_eq!(
            plan.point_of_no_return().map(PhaseId::index),
            point_of_no_return
        );
        Checker {
            plan,
            specs,
            point_of_no_return,
            entered: Vec::new(),
            past_point_of_no_return: false,
            state: DrainState::NotBegun,
            last_tick: Timestamp::ZERO,
            latest: Timestamp::ZERO,
            summary: Summary::default(),
        }
    }

    /// The plan and its shadow in a canonical form, for an exhaustive search to tell states
    /// apart: everything that decides what later inputs do, with time taken relative to the
    /// latest input and every duration cut at `cap`. Absolute times in the history are left
    /// out: nothing later depends on them.
    pub(crate) fn canonical_state(&self, cap: Duration) -> CanonicalState {
        let now = self.plan.now();
        let relative = |t: Timestamp| now.saturating_duration_since(t).min(cap);
        let current = self.current().map(|p| {
            let record = self.plan.history()[p.index()];
            (
                record.remaining,
                relative(record.entered),
                self.plan
                    .poll_timeout()
                    .map(|d| d.saturating_duration_since(now).min(cap)),
            )
        });
        CanonicalState {
            state: self.plan.state(),
            entered: self.entered.len(),
            past_point_of_no_return: self.past_point_of_no_return,
            current,
            since_tick: relative(self.last_tick),
        }
    }

    fn current(&self) -> Option<PhaseId> {
        match self.state {
            DrainState::Running { phase } => Some(phase),
            _ => None,
        }
    }

    /// The answer the rules give to `input` in the shadow's state.
    fn expected(&self, input: Input) -> Result<(), DrainError> {
        let finished_or_not_running = |state| match state {
            DrainState::Finished => Err(DrainError::Finished),
            _ => Err(DrainError::NotRunning),
        };
        match input {
            Input::Begin => match self.state {
                DrainState::Running { .. } => Err(DrainError::AlreadyRunning),
                DrainState::Finished => Err(DrainError::Finished),
                _ => Ok(()),
            },
            Input::Cancel => match self.current() {
                None => finished_or_not_running(self.state),
                Some(_) if self.past_point_of_no_return => Err(DrainError::PastPointOfNoReturn {
                    point_of_no_return: PhaseId::from_index(self.point_of_no_return.unwrap() as u32),
                }),
                Some(_) => Ok(()),
            },
            Input::Report { phase, .. } => {
                let phase_id = PhaseId::from_index(phase);
                if phase as usize >= self.specs.len() {
                    return Err(DrainError::UnknownPhase { phase: phase_id });
                }
                match self.current() {
                    None => finished_or_not_running(self.state),
                    Some(current) if current != phase_id => Err(DrainError::StaleReport {
                        reported: phase_id,
                        current,
                    }),
                    Some(_) if !self.specs[phase as usize].waits_for_work => {
                        Err(DrainError::NotWaitingForWork { phase: phase_id })
                    }
                    Some(_) => Ok(()),
                }
            }
            Input::Tick | Input::TickAtDeadline => Ok(()),
        }
    }

    fn observable(&self) -> String {
        format!(
            "{:?} {:?} {:?} {:?} {:?} {}",
            self.plan.state(),
            self.plan.history(),
            self.plan.poll_timeout(),
            self.plan.begun_at(),
            self.plan.ended_at(),
            self.plan.is_past_point_of_no_return()
        )
    }

    /// Feeds one input at `now` and checks everything.
    pub(crate) fn step(&mut self, now: Timestamp, input: Input) {
        let now = match input {
            Input::TickAtDeadline => self.plan.poll_timeout().unwrap_or(now),
            _ => now,
        };
        let clamped = now.max(self.latest);
        self.latest = clamped;
        let expected = self.expected(input);
        let before = self.observable();
        let current_before = self.current();
        let previous_tick = self.last_tick;

        let result = match input {
            Input::Begin => self.plan.begin(now),
            Input::Cancel => self.plan.cancel(now),
            Input::Report { phase, remaining } => {
                self.plan.report(now, PhaseId::from_index(phase), remaining)
            }
            Input::Tick | Input::TickAtDeadline => {
                self.plan.tick(now);
                Ok(())
            }
        };
        assert_eq!(result, expected, "answer to {input:?} at {now}");
        assert_eq!(self.plan.now(), clamped, "time is clamped, never rewound");

        if result.is_err() {
            self.summary.refused += 1;
            assert_eq!(
                self.observable(),
                before,
                "a refused {input:?} changed the plan"
            );
            assert_eq!(
                self.plan.poll_action(),
                None,
                "a refused {input:?} emitted an action"
            );
            return;
        }
        self.summary.accepted += 1;
        if input == Input::Begin {
            self.entered.clear();
            self.past_point_of_no_return = false;
            self.last_tick = clamped;
        }
        if matches!(input, Input::Tick | Input::TickAtDeadline) {
            self.last_tick = clamped;
        }

        self.check_actions(input);
        assert_eq!(self.plan.state(), self.state, "state after {input:?}");
        assert_eq!(
            self.plan.is_past_point_of_no_return(),
            self.past_point_of_no_return
        );
        self.check_time(clamped, input, current_before, previous_tick);

        let stats = self.plan.stats();
        let running = u64::from(matches!(self.state, DrainState::Running { .. }));
        assert_eq!(stats.begun, stats.cancelled + stats.finished + running);
        assert_eq!(stats.refused as usize, self.summary.refused);
    }

    /// Follows the actions the input emitted against the shadow.
    fn check_actions(&mut self, input: Input) {
        let mut reverting: Option<usize> = None;
        let mut announced: Option<PhaseId> = None;
        while let Some(action) = self.plan.poll_action() {
            if let Some(p) = announced.take() {
                assert_eq!(
                    action,
                    DrainAction::Enter { phase: p },
                    "the point of no return is followed by its phase"
                );
            }
            match action {
                DrainAction::Enter { phase } => {
                    assert!(reverting.is_none(), "enter during a cancel");
                    assert_eq!(
                        phase.index(),
                        self.entered.len(),
                        "phases are entered in order"
                    );
                    assert!(phase.index() < self.specs.len());
                    if Some(phase.index()) == self.point_of_no_return {
                        assert!(
                            self.past_point_of_no_return,
                            "{phase} entered without its announcement"
                        );
                    }
                    self.entered.push(phase);
                    self.state = if self.specs[phase.index()].max_wait_ms == 0 {
                        self.state
                    } else {
                        DrainState::Running { phase }
                    };
                }
                DrainAction::PointOfNoReturn { phase } => {
                    assert!(
                        !self.past_point_of_no_return,
                        "announced twice in an attempt"
                    );
                    assert_eq!(Some(phase.index()), self.point_of_no_return);
                    assert_eq!(
                        phase.index(),
                        self.entered.len(),
                        "announced just before its entry"
                    );
                    self.past_point_of_no_return = true;
                    announced = Some(phase);
                }
                DrainAction::Revert { phase } => {
                    assert_eq!(input, Input::Cancel, "only a cancel reverts");
                    assert!(
                        !self.past_point_of_no_return,
                        "a revert past the point of no return"
                    );
                    let next = reverting.unwrap_or(self.entered.len());
                    assert!(next > 0, "more reverts than entries");
                    assert_eq!(phase, self.entered[next - 1], "reverts mirror entries");
                    reverting = Some(next - 1);
                    self.summary.reverts += 1;
                }
                DrainAction::Cancelled { reverted } => {
                    assert_eq!(
                        reverting,
                        Some(0),
                        "every entered phase reverted before Cancelled"
                    );
                    assert_eq!(reverted, self.entered.len());
                    self.state = DrainState::Cancelled;
                    self.summary.cancels += 1;
                }
                DrainAction::Finished => {
                    assert_eq!(
                        self.entered.len(),
                        self.specs.len(),
                        "finished before the last phase"
                    );
                    self.state = DrainState::Finished;
                    self.summary.finishes += 1;
                }
            }
        }
        assert_eq!(announced, None, "the point of no return without its phase");
        if input == Input::Cancel {
            assert_eq!(
                self.state,
                DrainState::Cancelled,
                "an accepted cancel cancels"
            );
        }
        // The history is exactly the phases entered in this attempt.
        let history: Vec<PhaseId> = self.plan.history().iter().map(|r| r.phase).collect();
        assert_eq!(history, self.entered);
    }

    fn check_time(
        &self,
        now: Timestamp,
        input: Input,
        current_before: Option<PhaseId>,
        previous_tick: Timestamp,
    ) {
        if let Some(deadline) = self.plan.poll_timeout() {
            assert!(matches!(self.state, DrainState::Running { .. }));
            if matches!(input, Input::Tick | Input::TickAtDeadline) && now != Timestamp::MAX {
                assert!(deadline > now, "poll_timeout {deadline} after tick({now})");
            }
        } else {
            assert!(
                !matches!(self.state, DrainState::Running { .. }),
                "running with no deadline"
            );
        }
        for record in self.plan.history() {
            let spec = self.specs[record.phase.index()];
            let max_wait = Duration::from_millis(spec.max_wait_ms);
            let Some((left, why)) = record.left else {
                assert_eq!(
                    Some(record.phase),
                    self.current(),
                    "only the current phase is not left"
                );
                continue;
            };
            let stayed = left.saturating_duration_since(record.entered);
            match why {
                PhaseEnd::Immediate => assert_eq!(spec.max_wait_ms, 0),
                PhaseEnd::MaxWaitElapsed => {
                    assert!(stayed >= max_wait, "{} ended early", record.phase)
                }
                PhaseEnd::WorkDone => assert_eq!(record.remaining, Some(0)),
                PhaseEnd::Cancelled => assert!(record.reverted.is_some()),
            }
            // The phase that this input ended: it outlasted its max wait by at most the gap
            // between this input and the tick before it.
            if current_before == Some(record.phase) && left == now {
                let since_tick = now.saturating_duration_since(previous_tick.max(record.entered));
                assert!(
                    stayed <= max_wait + since_tick,
                    "{} stayed {stayed:?}, max wait {max_wait:?}, {since_tick:?} since the previous tick",
                    record.phase
                );
            }
        }
    }
}
