//! The buffer's shutdown as a cancellable plan (issue 11 part 2), one behaviour per test, at
//! every phase boundary: stop starting episodes → release queued requests → wait for
//! released retries (up to `shutdown_grace`) → closed.

mod support;

use failover_buffer::drain::{DrainAction, DrainError, DrainState, PhaseEnd};
use failover_buffer::{
    Action, Admission, Config, ConfigError, ReleaseReason, ShardState, ShutdownPhase, StopReason,
    TicketStatus, TimerKind, Timestamp, Verdict,
};
use support::{FAILOVER, Harness, enabled, ms, secs, serving};

fn enter(p: ShutdownPhase) -> DrainAction {
    DrainAction::Enter { phase: p.id() }
}

fn revert(p: ShutdownPhase) -> DrainAction {
    DrainAction::Revert { phase: p.id() }
}

use ShutdownPhase::{Closed, ReleaseQueued, StopEpisodes, WaitForRetries};

/// One shard buffering three requests (drain concurrency 1), the primary known at term 1.
fn three_queued(
    config: Config,
) -> (
    Harness,
    failover_buffer::ShardId,
    [failover_buffer::Ticket; 3],
) {
    let mut h = Harness::new(config);
    let shard = h.shard("ks", "0");
    h.health(shard, serving(1, 1)).unwrap();
    let r = [
        h.wait(shard, FAILOVER),
        h.wait(shard, FAILOVER),
        h.wait(shard, FAILOVER),
    ];
    h.take_actions();
    (h, shard, r)
}

#[test]
fn a_shutdown_never_cancelled_reports_four_phases_and_closes_when_the_last_retry_ends() {
    let (mut h, shard, [r1, r2, r3]) = three_queued(enabled());
    h.shutdown();
    assert_eq!(h.take_wakes(), [(r1, Verdict::Retry)]);
    assert_eq!(
        h.shutdown_steps(),
        [enter(StopEpisodes), enter(ReleaseQueued)]
    );
    h.retry_done(r1).unwrap();
    h.retry_done(r2).unwrap();
    // The last queued request is released: the queues are empty, the retries are awaited.
    assert_eq!(h.shutdown_steps(), [enter(WaitForRetries)]);
    assert!(!h.buffer.is_closed());
    h.retry_done(r3).unwrap();
    assert_eq!(
        h.shutdown_steps(),
        [
            DrainAction::PointOfNoReturn { phase: Closed.id() },
            enter(Closed),
            DrainAction::Finished
        ]
    );
    assert!(h.buffer.is_closed());
    assert_eq!(h.log.iter().filter(|a| **a == Action::Closed).count(), 1);
    assert_eq!(h.stats(shard).stops[StopReason::Shutdown], 1);
    h.assert_quiet();
}

#[test]
fn a_shutdown_with_nothing_held_closes_in_the_same_call_so_there_is_nothing_to_cancel() {
    let mut h = Harness::new(enabled());
    h.shard("ks", "0");
    h.shutdown();
    assert!(h.buffer.is_closed());
    assert_eq!(
        h.shutdown_steps().len(),
        6,
        "four entries, point of no return, finished"
    );
    assert_eq!(h.cancel_shutdown(), Err(DrainError::Finished));
}

#[test]
fn cancel_while_releasing_keeps_the_unreleased_requests_queued_in_order_and_buffering() {
    let (mut h, shard, [r1, r2, r3]) = three_queued(enabled());
    h.shutdown();
    h.take_actions();
    h.shutdown_steps();
    h.cancel_shutdown().unwrap();
    assert_eq!(
        h.shutdown_steps(),
        [
            revert(ReleaseQueued),
            revert(StopEpisodes),
            DrainAction::Cancelled { reverted: 2 }
        ]
    );
    assert_eq!(h.take_actions(), [Action::DrainPaused { shard, queued: 2 }]);
    assert!(!h.buffer.is_shut_down());
    assert_eq!(h.state(shard), ShardState::Buffering);
    assert_eq!(h.buffer.ticket_status(r2), TicketStatus::Queued);
    assert_eq!(h.buffer.ticket_status(r3), TicketStatus::Queued);
    // New requests are held again, behind the two kept.
    let r4 = h.wait(shard, None);
    // The released one finishes as usual; it releases nothing while the shard buffers.
    h.retry_done(r1).unwrap();
    assert_eq!(h.take_wakes(), []);
    // The new primary ends the failover: the rest drain normally, in order.
    h.health(shard, serving(2, 2)).unwrap();
    assert_eq!(h.take_wakes(), [(r2, Verdict::Retry)]);
    assert_eq!(
        h.buffer.ticket_status(r2),
        TicketStatus::Retrying(ReleaseReason::Drain(StopReason::NewPrimarySeen))
    );
    assert_eq!(h.complete_retries(), [r2, r3, r4]);
    assert_eq!(h.state(shard), ShardState::Idle);
    h.assert_quiet();
}

#[test]
fn after_a_cancel_the_queued_keep_their_original_window_and_the_episode_its_max_duration() {
    let (mut h, shard, [_, r2, _]) = three_queued(enabled());
    let queued_at = h.now;
    let started = h.buffer.episode(shard).unwrap();
    h.advance(secs(3));
    h.shutdown();
    h.advance(secs(2));
    h.cancel_shutdown().unwrap();
    let episode = h.buffer.episode(shard).unwrap();
    assert_eq!(episode.started_at, started.started_at);
    assert_eq!(episode.max_duration_deadline, queued_at + secs(20));
    assert_eq!(episode.stop_reason, None);
    let next = h.buffer.next_deadline().unwrap();
    assert_eq!(
        (next.at, next.kind),
        (queued_at + secs(10), TimerKind::Window)
    );
    h.advance(secs(5));
    assert_eq!(
        h.buffer.ticket_status(r2),
        TicketStatus::Retrying(ReleaseReason::Window)
    );
    h.complete_retries();
    h.assert_quiet();
}

#[test]
fn a_window_that_passed_during_the_shutdown_releases_its_request_at_the_cancel() {
    let (mut h, shard, [r1, r2, r3]) = three_queued(enabled());
    h.shutdown();
    h.now = h.now + secs(11);
    h.take_actions();
    h.cancel_shutdown().unwrap();
    assert_eq!(
        h.take_actions(),
        [
            Action::DrainPaused { shard, queued: 2 },
            Action::Wake {
                ticket: r2,
                verdict: Verdict::Retry
            },
            Action::Wake {
                ticket: r3,
                verdict: Verdict::Retry
            },
        ]
    );
    assert_eq!(h.state(shard), ShardState::Buffering);
    assert_eq!(h.complete_retries(), [r1, r2, r3]);
    h.assert_quiet();
}

#[test]
fn an_episode_past_its_max_duration_during_the_shutdown_stops_for_that_at_the_cancel() {
    let (mut h, shard, _) = three_queued(enabled());
    h.shutdown();
    h.now = h.now + secs(21);
    h.cancel_shutdown().unwrap();
    assert_eq!(h.state(shard), ShardState::Draining);
    assert_eq!(
        h.buffer.episode(shard).unwrap().stop_reason,
        Some(StopReason::MaxDurationExceeded)
    );
    // The shutdown's stop and the episode's own end are both counted.
    assert_eq!(h.stats(shard).stops[StopReason::Shutdown], 1);
    assert_eq!(h.stats(shard).stops[StopReason::MaxDurationExceeded], 1);
    h.complete_retries();
    h.assert_quiet();
}

#[test]
fn cancel_while_waiting_for_retries_lets_the_shard_buffer_again_and_the_retries_end_normally() {
    let mut h = Harness::new(enabled());
    let shard = h.shard("ks", "0");
    let r1 = h.wait(shard, FAILOVER);
    h.shutdown();
    assert_eq!(
        h.buffer.shutdown_progress(h.now).unwrap().phase,
        Some(WaitForRetries),
        "one request, released at once"
    );
    h.cancel_shutdown().unwrap();
    assert_eq!(
        h.shutdown_steps()[3..],
        [
            revert(WaitForRetries),
            revert(ReleaseQueued),
            revert(StopEpisodes),
            DrainAction::Cancelled { reverted: 3 }
        ]
    );
    assert_eq!(h.state(shard), ShardState::Buffering);
    let r2 = h.wait(shard, FAILOVER);
    h.retry_done(r1).unwrap();
    h.health(shard, serving(2, 2)).unwrap();
    assert_eq!(h.take_wakes().last(), Some(&(r2, Verdict::Retry)));
    h.retry_done(r2).unwrap();
    h.assert_quiet();
}

#[test]
fn a_drain_paused_before_the_shutdown_is_paused_again_after_the_cancel_with_its_resume_instant() {
    let mut h = Harness::new(Config {
        drain_backoff: secs(2),
        ..enabled()
    });
    let shard = h.shard("ks", "0");
    h.health(shard, serving(1, 1)).unwrap();
    let r1 = h.wait(shard, FAILOVER);
    h.health(shard, serving(2, 2)).unwrap();
    let r1 = h.retry_fails_and_waits(r1);
    let r2 = h.wait(shard, None);
    let paused = h.buffer.episode(shard).unwrap().paused_until.unwrap();
    h.shutdown();
    h.cancel_shutdown().unwrap();
    let episode = h.buffer.episode(shard).unwrap();
    assert_eq!(episode.paused_until, Some(paused));
    assert_eq!(episode.stop_reason, Some(StopReason::NewPrimarySeen));
    assert_eq!(h.buffer.ticket_status(r2), TicketStatus::Queued);
    h.take_actions();
    h.advance(secs(2));
    // The drain resumed on time; r1, which the shutdown released, still holds the one
    // retry drain_concurrency allows, so r2 follows when it ends.
    assert_eq!(h.state(shard), ShardState::Draining);
    assert_eq!(h.take_wakes(), []);
    h.retry_done(r1).unwrap();
    assert_eq!(h.take_wakes(), [(r2, Verdict::Retry)]);
    h.complete_retries();
    h.assert_quiet();
}

#[test]
fn cancel_at_the_exact_end_of_the_grace_before_its_tick_still_calls_the_shutdown_off() {
    let mut h = Harness::new(Config {
        shutdown_grace: secs(5),
        ..enabled()
    });
    let shard = h.shard("ks", "0");
    let r1 = h.wait(shard, FAILOVER);
    h.shutdown();
    assert_eq!(h.buffer.poll_timeout(), Some(h.now + secs(5)));
    h.now = h.now + secs(5);
    h.cancel_shutdown().unwrap();
    assert!(!h.buffer.is_closed());
    assert_eq!(h.state(shard), ShardState::Buffering);
    h.retry_done(r1).unwrap();
    h.assert_quiet();
}

#[test]
fn the_grace_ends_at_its_exact_instant_closing_with_retries_still_running() {
    let mut h = Harness::new(Config {
        shutdown_grace: secs(5),
        ..enabled()
    });
    let shard = h.shard("ks", "0");
    let r1 = h.wait(shard, FAILOVER);
    h.shutdown();
    h.advance(secs(5) - ms(1));
    assert!(!h.buffer.is_closed());
    h.advance(ms(1));
    assert!(h.buffer.is_closed());
    assert!(h.log.contains(&Action::Closed));
    let wait = h.buffer.shutdown_plan().unwrap().history()[WaitForRetries.id().index()];
    assert_eq!(wait.left.unwrap().1, PhaseEnd::MaxWaitElapsed);
    assert_eq!(h.cancel_shutdown(), Err(DrainError::Finished));
    // The retry still ends as usual, and the buffer stays closed.
    h.retry_done(r1).unwrap();
    assert_eq!(h.request(shard, FAILOVER), Admission::Proceed);
    assert_eq!(h.log.iter().filter(|a| **a == Action::Closed).count(), 1);
    h.assert_quiet();
}

#[test]
fn cancel_twice_is_refused_the_second_time_and_changes_nothing() {
    let (mut h, shard, _) = three_queued(enabled());
    h.shutdown();
    h.cancel_shutdown().unwrap();
    h.take_actions();
    h.shutdown_steps();
    assert_eq!(h.cancel_shutdown(), Err(DrainError::NotRunning));
    assert_eq!(h.take_actions(), []);
    assert_eq!(h.shutdown_steps(), []);
    assert_eq!(h.queued(shard), 2);
    assert_eq!(h.buffer.shutdown_plan().unwrap().stats().refused, 1);
    h.complete_retries();
}

#[test]
fn cancel_without_a_shutdown_is_refused() {
    let mut h = Harness::new(enabled());
    h.shard("ks", "0");
    assert_eq!(h.cancel_shutdown(), Err(DrainError::NotRunning));
    assert!(h.buffer.shutdown_progress(h.now).is_none());
}

#[test]
fn cancel_after_closed_is_refused_and_requests_keep_proceeding() {
    let (mut h, shard, _) = three_queued(enabled());
    h.shutdown();
    h.complete_retries();
    assert!(h.buffer.is_closed());
    h.take_actions();
    assert_eq!(h.cancel_shutdown(), Err(DrainError::Finished));
    assert!(h.buffer.is_shut_down());
    assert_eq!(h.request(shard, FAILOVER), Admission::Proceed);
    assert_eq!(h.take_actions(), []);
    h.assert_quiet();
}

#[test]
fn a_shutdown_after_a_cancel_begins_again_from_the_first_phase_and_closes() {
    let (mut h, shard, [r1, r2, r3]) = three_queued(enabled());
    h.shutdown();
    h.cancel_shutdown().unwrap();
    h.shutdown_steps();
    h.take_actions();
    h.shutdown();
    assert_eq!(
        h.shutdown_steps(),
        [enter(StopEpisodes), enter(ReleaseQueued)]
    );
    // r1 is still retrying, so with concurrency 1 nothing more is released yet.
    assert_eq!(h.take_wakes(), []);
    assert_eq!(h.complete_retries(), [r1, r2, r3]);
    assert!(h.buffer.is_closed());
    assert_eq!(h.buffer.shutdown_plan().unwrap().stats().begun, 2);
    assert_eq!(h.state(shard), ShardState::Idle);
    h.assert_quiet();
}

#[test]
fn after_a_cancel_an_idle_shard_can_start_a_new_episode() {
    let mut h = Harness::new(enabled());
    let busy = h.shard("ks", "0");
    let idle = h.shard("ks", "1");
    let r1 = h.wait(busy, FAILOVER);
    h.shutdown();
    assert_eq!(
        h.request(idle, FAILOVER),
        Admission::Proceed,
        "none starts now"
    );
    h.cancel_shutdown().unwrap();
    let r2 = h.wait(idle, FAILOVER);
    assert_eq!(h.state(idle), ShardState::Buffering);
    h.retry_done(r1).unwrap();
    h.cancel(r2).unwrap();
    h.assert_quiet();
}

#[test]
fn a_shard_whose_drain_finished_during_the_shutdown_buffers_again_after_the_cancel() {
    let mut h = Harness::new(enabled());
    let shard = h.shard("ks", "0");
    h.health(shard, serving(1, 1)).unwrap();
    let r1 = h.wait(shard, FAILOVER);
    h.shutdown();
    h.retry_done(r1).unwrap();
    assert!(h.buffer.is_closed(), "nothing left to wait for");
    // Cancelled before its last retry ended instead, the episode would have gone on:
    let mut h = Harness::new(Config {
        shutdown_grace: secs(30),
        ..enabled()
    });
    let shard = h.shard("ks", "0");
    let other = h.shard("ks", "1");
    h.health(shard, serving(1, 1)).unwrap();
    let r1 = h.wait(shard, FAILOVER);
    let r2 = h.wait(other, FAILOVER);
    h.shutdown();
    h.retry_done(r1).unwrap();
    assert_eq!(h.state(shard), ShardState::Idle, "its drain is over");
    h.cancel_shutdown().unwrap();
    assert_eq!(h.state(shard), ShardState::Buffering);
    // The failover is still on for it: a failover error is held, not passed to the client.
    let r3 = h.wait(shard, FAILOVER);
    h.health(shard, serving(2, 2)).unwrap();
    assert_eq!(h.take_wakes().last(), Some(&(r3, Verdict::Retry)));
    h.complete_retries();
    let _ = r2;
    h.assert_quiet();
}

#[test]
fn health_during_the_shutdown_is_ignored_and_the_next_stamp_after_a_cancel_decides() {
    let (mut h, shard, [r1, _, _]) = three_queued(enabled());
    h.shutdown();
    h.health(shard, serving(2, 2)).unwrap();
    h.cancel_shutdown().unwrap();
    assert_eq!(h.state(shard), ShardState::Buffering);
    h.retry_done(r1).unwrap();
    h.health(shard, serving(2, 2)).unwrap();
    assert_eq!(h.state(shard), ShardState::Draining);
    h.complete_retries();
    h.assert_quiet();
}

#[test]
fn the_progress_view_says_the_phase_the_work_left_and_the_requests() {
    let (mut h, _, _) = three_queued(enabled());
    h.shutdown();
    let progress = h.buffer.shutdown_progress(h.now + secs(2)).unwrap();
    assert_eq!(progress.phase, Some(ReleaseQueued));
    assert_eq!((progress.queued, progress.retrying), (2, 1));
    let line = progress.to_string();
    assert!(
        line.starts_with("phase 2 of 4, release queued requests (reversible): 2 remaining,"),
        "{line}"
    );
    assert!(
        line.ends_with("; 2s since begin; 2 queued, 1 retrying"),
        "{line}"
    );
    h.cancel_shutdown().unwrap();
    let progress = h.buffer.shutdown_progress(h.now).unwrap();
    assert_eq!(
        (progress.phase, progress.drain.state),
        (None, DrainState::Cancelled)
    );
    h.complete_retries();
}

#[test]
fn a_zero_shutdown_grace_is_refused_with_a_typed_error_by_new_and_reconfigure() {
    let config = Config {
        shutdown_grace: secs(0),
        ..enabled()
    };
    assert_eq!(
        failover_buffer::Buffer::new(config.clone()).err(),
        Some(ConfigError::ShutdownGraceZero)
    );
    let mut h = Harness::new(enabled());
    let now = h.now;
    assert_eq!(
        h.buffer.reconfigure(now, config),
        Err(ConfigError::ShutdownGraceZero)
    );
    assert_eq!(h.buffer.config().shutdown_grace, std::time::Duration::MAX);
}

#[test]
fn the_grace_reconfigured_applies_to_the_next_shutdown() {
    let mut h = Harness::new(enabled());
    let shard = h.shard("ks", "0");
    let r1 = h.wait(shard, FAILOVER);
    h.shutdown();
    assert_eq!(h.buffer.poll_timeout(), None, "no limit by default");
    let now = h.now;
    let config = Config {
        shutdown_grace: secs(1),
        ..enabled()
    };
    h.buffer.reconfigure(now, config).unwrap();
    assert_eq!(
        h.buffer.poll_timeout(),
        None,
        "the running shutdown keeps its grace"
    );
    h.cancel_shutdown().unwrap();
    h.shutdown();
    assert_eq!(h.buffer.poll_timeout(), Some(h.now + secs(1)));
    h.retry_done(r1).unwrap();
    assert!(h.buffer.is_closed());
    let _ = Timestamp::ZERO;
    h.assert_quiet();
}
