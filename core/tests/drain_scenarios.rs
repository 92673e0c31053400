//! `DrainPlan`, one behaviour per test, on a router's shutdown plan (see `drain_support`):
//! not ready → wait for load balancers (5 s) → wait for requests (≤ 10 s, until no work) →
//! close (the point of no return) → flush (≤ 2 s, until no work) → exit.

mod drain_support;

use core::time::Duration;

use drain_support::*;
use failover_buffer::Timestamp;
use failover_buffer::drain::{
    DrainAction, DrainError, DrainPlan, DrainState, Phase, PhaseEnd, PlanError,
};

/// Runs the router plan until `phase` is current, at 1 s past the origin for each phase.
fn running_in(phase: failover_buffer::drain::PhaseId) -> DrainPlan {
    let mut plan = router_plan();
    plan.begin(t(0)).unwrap();
    if phase.index() >= 2 {
        plan.tick(t(5_000));
    }
    assert_eq!(plan.current_phase(), Some(phase), "set-up");
    actions(&mut plan);
    plan
}

// ----- begin --------------------------------------------------------------------------

#[test]
fn begin_enters_phases_without_a_wait_at_once_and_stops_at_the_first_wait() {
    let mut plan = router_plan();
    plan.begin(t(1_000)).unwrap();
    assert_eq!(
        actions(&mut plan),
        [enter(NOT_READY), enter(LOAD_BALANCERS)]
    );
    assert_eq!(
        plan.state(),
        DrainState::Running {
            phase: LOAD_BALANCERS
        }
    );
    assert_eq!(plan.poll_timeout(), Some(t(6_000)));
}

#[test]
fn begin_while_running_is_refused_and_changes_nothing() {
    let mut plan = running_in(LOAD_BALANCERS);
    let before = observable(&plan);
    assert_eq!(plan.begin(t(1_000)), Err(DrainError::AlreadyRunning));
    assert_eq!(observable(&plan), before);
    assert_eq!(plan.poll_action(), None);
    assert_eq!(plan.stats().refused, 1);
}

#[test]
fn begin_after_finishing_is_refused() {
    let mut plan = DrainPlan::new([Phase::irreversible("exit")]).unwrap();
    plan.begin(t(0)).unwrap();
    actions(&mut plan);
    assert_eq!(plan.begin(t(1)), Err(DrainError::Finished));
    assert_eq!(plan.poll_action(), None);
}

#[test]
fn begin_again_after_cancel_starts_from_the_first_phase_with_a_new_history() {
    let mut plan = running_in(REQUESTS);
    plan.cancel(t(6_000)).unwrap();
    actions(&mut plan);

    plan.begin(t(20_000)).unwrap();
    assert_eq!(
        actions(&mut plan),
        [enter(NOT_READY), enter(LOAD_BALANCERS)]
    );
    assert_eq!(plan.poll_timeout(), Some(t(25_000)), "a full wait again");
    let history = plan.history();
    assert_eq!(history.len(), 2, "the cancelled attempt's phases are gone");
    assert_eq!(history[0].entered, t(20_000));
    assert_eq!(history[1].reverted, None);
    assert_eq!(plan.begun_at(), Some(t(20_000)));
    assert_eq!((plan.stats().begun, plan.stats().cancelled), (2, 1));
}

// ----- phases ending ------------------------------------------------------------------

#[test]
fn a_timed_wait_ends_when_its_max_wait_elapses() {
    let mut plan = running_in(LOAD_BALANCERS);
    plan.tick(Timestamp::from_nanos(4_999_999_999));
    assert_eq!(
        plan.poll_action(),
        None,
        "not due until the very nanosecond"
    );
    plan.tick(t(5_000));
    assert_eq!(actions(&mut plan), [enter(REQUESTS)]);
    assert_eq!(
        plan.history()[1].left,
        Some((t(5_000), PhaseEnd::MaxWaitElapsed))
    );
    assert_eq!(plan.poll_timeout(), Some(t(15_000)));
}

#[test]
fn work_reaching_zero_ends_the_phase_early() {
    let mut plan = running_in(REQUESTS);
    plan.report(t(6_000), REQUESTS, 3).unwrap();
    assert_eq!(plan.poll_action(), None, "work left: still waiting");
    plan.report(t(7_000), REQUESTS, 0).unwrap();
    assert_eq!(
        actions(&mut plan),
        [
            DrainAction::PointOfNoReturn { phase: CLOSE },
            enter(CLOSE),
            enter(FLUSH)
        ]
    );
    let record = plan.history()[REQUESTS.index()];
    assert_eq!(record.left, Some((t(7_000), PhaseEnd::WorkDone)));
    assert_eq!(record.remaining, Some(0));
}

#[test]
fn a_max_wait_expiring_with_work_left_ends_the_phase_and_keeps_the_last_count() {
    let mut plan = running_in(REQUESTS);
    plan.report(t(9_000), REQUESTS, 7).unwrap();
    plan.tick(t(15_000));
    let record = plan.history()[REQUESTS.index()];
    assert_eq!(record.left, Some((t(15_000), PhaseEnd::MaxWaitElapsed)));
    assert_eq!(record.remaining, Some(7));
    assert_eq!(plan.current_phase(), Some(FLUSH));
}

#[test]
fn a_late_tick_ends_the_phase_at_the_tick_and_the_next_wait_starts_then() {
    let mut plan = running_in(LOAD_BALANCERS);
    plan.tick(t(7_500));
    assert_eq!(
        plan.history()[1].left,
        Some((t(7_500), PhaseEnd::MaxWaitElapsed))
    );
    assert_eq!(plan.history()[2].entered, t(7_500));
    assert_eq!(plan.poll_timeout(), Some(t(17_500)));
}

#[test]
fn the_point_of_no_return_is_announced_just_before_the_first_irreversible_phase() {
    let mut plan = running_in(REQUESTS);
    plan.report(t(6_000), REQUESTS, 0).unwrap();
    let actions = actions(&mut plan);
    assert_eq!(actions[0], DrainAction::PointOfNoReturn { phase: CLOSE });
    assert_eq!(actions[1], enter(CLOSE));
    assert_eq!(
        actions
            .iter()
            .filter(|a| matches!(a, DrainAction::PointOfNoReturn { .. }))
            .count(),
        1,
        "once, not for each irreversible phase"
    );
    assert!(plan.is_past_point_of_no_return());
}

#[test]
fn the_last_phase_ending_finishes_the_drain() {
    let mut plan = running_in(REQUESTS);
    plan.report(t(6_000), REQUESTS, 0).unwrap();
    plan.report(t(6_500), FLUSH, 0).unwrap();
    assert_eq!(
        actions(&mut plan),
        [
            DrainAction::PointOfNoReturn { phase: CLOSE },
            enter(CLOSE),
            enter(FLUSH),
            enter(EXIT),
            DrainAction::Finished
        ]
    );
    assert_eq!(plan.state(), DrainState::Finished);
    assert_eq!(plan.poll_timeout(), None);
    assert_eq!(plan.ended_at(), Some(t(6_500)));
    assert_eq!(
        plan.history()
            .iter()
            .map(|r| r.left.unwrap().1)
            .collect::<Vec<_>>(),
        [
            PhaseEnd::Immediate,
            PhaseEnd::MaxWaitElapsed,
            PhaseEnd::WorkDone,
            PhaseEnd::Immediate,
            PhaseEnd::WorkDone,
            PhaseEnd::Immediate
        ]
    );
}

// ----- cancel -------------------------------------------------------------------------

#[test]
fn cancel_in_each_reversible_phase_reverts_exactly_the_phases_entered_last_first() {
    // Every phase before the point of no return, made current in turn (all waiting).
    let phases = [
        Phase::reversible("a").max_wait(Duration::from_secs(1)),
        Phase::reversible("b").max_wait(Duration::from_secs(1)),
        Phase::reversible("c")
            .max_wait(Duration::from_secs(1))
            .until_no_work(),
        Phase::irreversible("d"),
    ];
    for current in 0..3u32 {
        let mut plan = DrainPlan::new(phases.clone()).unwrap();
        plan.begin(t(0)).unwrap();
        for s in 1..=u64::from(current) {
            plan.tick(t(s * 1_000));
        }
        let entered: Vec<_> = actions(&mut plan);
        assert_eq!(entered.len(), current as usize + 1);

        plan.cancel(t(u64::from(current) * 1_000 + 500)).unwrap();
        let mut expected: Vec<_> = (0..=current).rev().map(|i| revert(p(i))).collect();
        expected.push(DrainAction::Cancelled {
            reverted: current as usize + 1,
        });
        assert_eq!(actions(&mut plan), expected, "cancel in phase {current}");
        assert_eq!(plan.state(), DrainState::Cancelled);
    }
}

#[test]
fn cancel_in_a_phase_without_a_wait_is_impossible_because_the_plan_never_rests_there() {
    // `not ready` has no wait: by the time begin returns, the plan waits in the next phase,
    // so a cancel reverts both.
    let mut plan = running_in(LOAD_BALANCERS);
    plan.cancel(t(0)).unwrap();
    assert_eq!(
        actions(&mut plan),
        [
            revert(LOAD_BALANCERS),
            revert(NOT_READY),
            DrainAction::Cancelled { reverted: 2 }
        ]
    );
}

#[test]
fn cancel_inside_a_wait_ends_the_wait_without_a_tick() {
    let mut plan = running_in(REQUESTS);
    assert_eq!(plan.poll_timeout(), Some(t(15_000)));
    plan.cancel(t(8_000)).unwrap();
    assert_eq!(plan.poll_timeout(), None, "no wait left to tick for");
    let record = plan.history()[REQUESTS.index()];
    assert_eq!(record.left, Some((t(8_000), PhaseEnd::Cancelled)));
    assert_eq!(record.reverted, Some(t(8_000)));
    assert_eq!(plan.ended_at(), Some(t(8_000)));
    // A tick afterwards, at the old deadline, does nothing.
    actions(&mut plan);
    plan.tick(t(15_000));
    assert_eq!(plan.poll_action(), None);
}

#[test]
fn cancel_at_the_exact_deadline_before_its_tick_reverts_the_waiting_phase() {
    let mut plan = running_in(LOAD_BALANCERS);
    plan.cancel(t(5_000)).unwrap();
    assert_eq!(
        actions(&mut plan),
        [
            revert(LOAD_BALANCERS),
            revert(NOT_READY),
            DrainAction::Cancelled { reverted: 2 }
        ]
    );
    assert_eq!(
        plan.history()[1].left,
        Some((t(5_000), PhaseEnd::Cancelled))
    );
}

#[test]
fn cancel_at_the_exact_deadline_after_its_tick_reverts_the_next_phase_too() {
    let mut plan = running_in(LOAD_BALANCERS);
    plan.tick(t(5_000));
    plan.cancel(t(5_000)).unwrap();
    assert_eq!(
        actions(&mut plan),
        [
            enter(REQUESTS),
            revert(REQUESTS),
            revert(LOAD_BALANCERS),
            revert(NOT_READY),
            DrainAction::Cancelled { reverted: 3 }
        ]
    );
}

#[test]
fn cancel_at_the_deadline_that_leads_to_the_point_of_no_return_wins_only_before_the_tick() {
    let mut first = running_in(REQUESTS);
    first.cancel(t(15_000)).unwrap();
    assert_eq!(first.state(), DrainState::Cancelled);

    let mut second = running_in(REQUESTS);
    second.tick(t(15_000));
    assert_eq!(
        second.cancel(t(15_000)),
        Err(DrainError::PastPointOfNoReturn {
            point_of_no_return: CLOSE
        })
    );
}

#[test]
fn cancel_twice_is_refused_the_second_time_and_changes_nothing() {
    let mut plan = running_in(REQUESTS);
    plan.cancel(t(6_000)).unwrap();
    actions(&mut plan);
    let before = observable(&plan);
    assert_eq!(plan.cancel(t(6_000)), Err(DrainError::NotRunning));
    assert_eq!(plan.poll_action(), None, "nothing reverted twice");
    assert_eq!(observable(&plan), before);
    assert_eq!(plan.stats().cancelled, 1);
}

#[test]
fn cancel_after_the_point_of_no_return_is_refused_and_changes_nothing() {
    let mut plan = running_in(REQUESTS);
    plan.report(t(6_000), REQUESTS, 0).unwrap();
    actions(&mut plan);
    assert_eq!(plan.current_phase(), Some(FLUSH));
    let before = observable(&plan);
    assert_eq!(
        plan.cancel(t(6_500)),
        Err(DrainError::PastPointOfNoReturn {
            point_of_no_return: CLOSE
        })
    );
    assert_eq!(plan.poll_action(), None);
    assert_eq!(observable(&plan), before);
    // The drain goes on as if the cancel had never come.
    plan.tick(t(8_000));
    assert_eq!(actions(&mut plan), [enter(EXIT), DrainAction::Finished]);
}

#[test]
fn cancel_before_begin_is_refused() {
    let mut plan = router_plan();
    assert_eq!(plan.cancel(t(0)), Err(DrainError::NotRunning));
    assert_eq!(plan.state(), DrainState::NotBegun);
}

#[test]
fn cancel_after_finishing_is_refused() {
    let mut plan = DrainPlan::new([Phase::reversible("only")]).unwrap();
    plan.begin(t(0)).unwrap();
    actions(&mut plan);
    assert_eq!(plan.cancel(t(1)), Err(DrainError::Finished));
    assert_eq!(plan.poll_action(), None);
}

// ----- plans of unusual shapes --------------------------------------------------------

#[test]
fn a_plan_with_no_reversible_phase_is_past_its_point_of_no_return_at_begin() {
    let mut plan = DrainPlan::new([
        Phase::irreversible("close").max_wait(Duration::from_secs(1)),
        Phase::irreversible("exit"),
    ])
    .unwrap();
    assert_eq!(plan.point_of_no_return(), Some(p(0)));
    plan.begin(t(0)).unwrap();
    assert_eq!(
        actions(&mut plan),
        [DrainAction::PointOfNoReturn { phase: p(0) }, enter(p(0))]
    );
    assert_eq!(
        plan.cancel(t(0)),
        Err(DrainError::PastPointOfNoReturn {
            point_of_no_return: p(0)
        })
    );
}

#[test]
fn a_plan_with_only_reversible_phases_can_be_cancelled_until_it_finishes() {
    let mut plan = DrainPlan::new([
        Phase::reversible("a").max_wait(Duration::from_secs(1)),
        Phase::reversible("b").max_wait(Duration::from_secs(1)),
    ])
    .unwrap();
    assert_eq!(plan.point_of_no_return(), None);
    plan.begin(t(0)).unwrap();
    plan.tick(t(1_000));
    plan.cancel(t(1_999)).unwrap();
    assert_eq!(plan.state(), DrainState::Cancelled);
    assert!(!actions(&mut plan).contains(&DrainAction::PointOfNoReturn { phase: p(0) }));
}

#[test]
fn an_empty_plan_finishes_as_soon_as_it_begins() {
    let mut plan = DrainPlan::new([]).unwrap();
    plan.begin(t(3)).unwrap();
    assert_eq!(actions(&mut plan), [DrainAction::Finished]);
    assert_eq!(plan.state(), DrainState::Finished);
    assert_eq!(plan.poll_timeout(), None);
    assert!(plan.history().is_empty());
    assert_eq!(plan.cancel(t(3)), Err(DrainError::Finished));
}

#[test]
fn a_phase_waiting_for_work_without_any_max_wait_is_refused_at_construction() {
    let result = DrainPlan::new([
        Phase::reversible("fine"),
        Phase::reversible("no time").until_no_work(),
    ]);
    assert_eq!(
        result.err(),
        Some(PlanError::NoTimeToWaitForWork { phase: p(1) })
    );
}

#[test]
fn a_phase_with_an_endless_max_wait_saturates_instead_of_overflowing() {
    let mut plan = DrainPlan::new([Phase::reversible("forever")
        .max_wait(Duration::MAX)
        .until_no_work()])
    .unwrap();
    plan.begin(t(1)).unwrap();
    assert_eq!(plan.poll_timeout(), Some(Timestamp::MAX));
    plan.tick(Timestamp::from_secs(1 << 30)); // 34 years on
    assert_eq!(plan.current_phase(), Some(p(0)));
    plan.report(t(2), p(0), 0).unwrap();
    assert_eq!(plan.state(), DrainState::Finished);
}

// ----- reports ------------------------------------------------------------------------

#[test]
fn a_report_for_a_phase_already_ended_is_refused_as_stale() {
    let mut plan = running_in(REQUESTS);
    plan.tick(t(15_000)); // the wait for requests ran out
    let before = observable(&plan);
    assert_eq!(
        plan.report(t(15_001), REQUESTS, 0),
        Err(DrainError::StaleReport {
            reported: REQUESTS,
            current: FLUSH
        })
    );
    assert_eq!(observable(&plan), before);
}

#[test]
fn a_report_for_a_phase_not_reached_yet_is_refused_as_stale() {
    let mut plan = running_in(LOAD_BALANCERS);
    assert_eq!(
        plan.report(t(1), REQUESTS, 0),
        Err(DrainError::StaleReport {
            reported: REQUESTS,
            current: LOAD_BALANCERS
        })
    );
    assert_eq!(plan.current_phase(), Some(LOAD_BALANCERS));
}

#[test]
fn a_report_for_a_phase_that_does_not_wait_for_work_is_refused() {
    let mut plan = running_in(LOAD_BALANCERS);
    assert_eq!(
        plan.report(t(1), LOAD_BALANCERS, 0),
        Err(DrainError::NotWaitingForWork {
            phase: LOAD_BALANCERS
        })
    );
    assert_eq!(plan.poll_timeout(), Some(t(5_000)), "still waiting");
}

#[test]
fn a_report_for_an_unknown_phase_or_when_not_running_is_refused() {
    let mut plan = router_plan();
    assert_eq!(plan.report(t(0), REQUESTS, 1), Err(DrainError::NotRunning));
    plan.begin(t(0)).unwrap();
    assert_eq!(
        plan.report(t(0), p(6), 1),
        Err(DrainError::UnknownPhase { phase: p(6) })
    );
    assert_eq!(plan.stats().refused, 2);
}

// ----- time ---------------------------------------------------------------------------

#[test]
fn time_going_backwards_is_clamped_to_the_latest_time_seen_and_counted() {
    let mut plan = router_plan();
    plan.begin(t(10_000)).unwrap();
    plan.tick(t(14_999));
    // An input from the past: treated as 14.999 s, so the 5 s wait has not ended yet.
    plan.tick(t(2_000));
    assert_eq!(plan.current_phase(), Some(LOAD_BALANCERS));
    plan.cancel(t(1_000)).unwrap();
    assert_eq!(plan.ended_at(), Some(t(14_999)));
    assert_eq!(plan.history()[1].reverted, Some(t(14_999)));
    assert_eq!(plan.stats().clock_regressions, 2);
    assert_eq!(plan.now(), t(14_999));
}

#[test]
fn poll_timeout_after_a_tick_is_none_or_later_than_the_tick() {
    let mut plan = router_plan();
    plan.begin(t(0)).unwrap();
    for now in (0..40_000).step_by(250) {
        plan.tick(t(now));
        if let Some(deadline) = plan.poll_timeout() {
            assert!(deadline > t(now), "{deadline} at {now} ms");
        }
    }
    assert_eq!(plan.state(), DrainState::Finished);
}

// ----- what an operator reads ---------------------------------------------------------

#[test]
fn progress_shows_the_phase_its_remaining_work_and_the_time_left_and_since_begin() {
    let mut plan = running_in(REQUESTS);
    plan.report(t(6_000), REQUESTS, 12).unwrap();
    let progress = plan.progress(t(9_000));
    let phase = progress.phase.as_ref().unwrap();
    assert_eq!(phase.id, REQUESTS);
    assert_eq!(phase.name, "wait for requests");
    assert_eq!(phase.remaining, Some(12));
    assert_eq!(phase.elapsed, Duration::from_secs(4));
    assert_eq!(phase.time_left, Duration::from_secs(6));
    assert_eq!(progress.since_begin, Some(Duration::from_secs(9)));
    assert!(!progress.past_point_of_no_return);
    assert_eq!(
        progress.to_string(),
        "phase 3 of 6, wait for requests (reversible): 12 remaining, 6s left; 9s since begin"
    );
}

#[test]
fn progress_after_a_cancel_freezes_the_time_since_begin_at_the_drain_length() {
    let mut plan = running_in(REQUESTS);
    plan.cancel(t(7_000)).unwrap();
    let progress = plan.progress(t(60_000));
    assert_eq!(progress.state, DrainState::Cancelled);
    assert_eq!(progress.phase, None);
    assert_eq!(progress.since_begin, Some(Duration::from_secs(7)));
    assert_eq!(progress.to_string(), "cancelled; 7s since begin");
}

#[test]
fn the_history_says_when_each_phase_was_entered_left_and_reverted_and_why() {
    let mut plan = running_in(REQUESTS);
    plan.report(t(6_000), REQUESTS, 4).unwrap();
    plan.cancel(t(8_000)).unwrap();
    let lines: Vec<String> = plan.history().iter().map(|r| r.to_string()).collect();
    assert_eq!(
        lines,
        [
            "phase 0: entered 0.000000000s, left 0.000000000s (immediate), reverted 8.000000000s",
            "phase 1: entered 0.000000000s, left 5.000000000s (max wait elapsed), reverted 8.000000000s",
            "phase 2: entered 5.000000000s, left 8.000000000s (cancelled), reverted 8.000000000s, 4 remaining",
        ]
    );
}

#[test]
fn errors_and_phases_read_well_in_logs() {
    assert_eq!(
        DrainError::PastPointOfNoReturn {
            point_of_no_return: CLOSE
        }
        .to_string(),
        "the drain is past its point of no return (phase 3) and cannot be cancelled"
    );
    assert_eq!(
        router_phases()[2].to_string(),
        "wait for requests (reversible, up to 10s, until no work)"
    );
    assert_eq!(router_plan().phase_id("close"), Some(CLOSE));
}
