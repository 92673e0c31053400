//! Where this buffer does better than Vitess (DESIGN §5). Each test's doc says what Vitess
//! does in the same situation.

mod support;

use failover_buffer::{
    Action, Admission, Config, EvictReason, ShardState, StopReason, TimerKind, Verdict,
};
use support::*;

/// Vitess 16438: the demoted primary's last "still serving" report (old term) arrives after
/// buffering started. A Vitess keyspace event saying "serving" stops buffering there, and the
/// held writes fail against a read-only server.
#[test]
fn stale_serving_stamp_from_the_demoted_primary_does_not_end_buffering() {
    let mut h = Harness::new(enabled());
    let shard = h.shard("ks", "0");
    h.health(shard, serving(100, 7)).unwrap();
    let t1 = h.wait(shard, FAILOVER);
    h.health(shard, serving(100, 7)).unwrap();
    assert_eq!(h.state(shard), ShardState::Buffering);

    h.take_actions();
    h.health(shard, serving(101, 8)).unwrap();
    assert_eq!(h.take_wakes(), [(t1, Verdict::Retry)]);
    assert_eq!(h.stats(shard).stops[StopReason::NewPrimarySeen], 1);
    h.complete_retries();
    h.assert_quiet();
}

/// Vitess 16438 again: a reparent on another shard makes the keyspace consistent and its
/// event stops every shard's buffering. Here a stamp only ever speaks for its own shard.
#[test]
fn new_primary_on_another_shard_does_not_end_buffering() {
    let mut h = Harness::new(enabled());
    let a = h.shard("ks", "-80");
    let b = h.shard("ks", "80-");
    h.health(a, serving(1, 1)).unwrap();
    h.health(b, serving(2, 1)).unwrap();
    h.wait(a, FAILOVER);
    h.health(b, serving(3, 2)).unwrap();
    assert_eq!(h.state(a), ShardState::Buffering);
    assert_eq!(h.state(b), ShardState::Idle);
}

/// Vitess only ends buffering on a keyspace event; with term detection a not-serving stamp of
/// a newer term (promoted but not yet writable) is not the end either.
#[test]
fn not_serving_stamp_of_a_newer_term_does_not_end_buffering() {
    let mut h = Harness::new(enabled());
    let shard = h.shard("ks", "0");
    h.health(shard, serving(1, 1)).unwrap();
    h.wait(shard, FAILOVER);
    h.health(shard, not_serving(2, 2)).unwrap();
    assert_eq!(h.state(shard), ShardState::Buffering);
    h.health(shard, serving(2, 2)).unwrap();
    assert_eq!(h.state(shard), ShardState::Draining);
    h.complete_retries();
}

/// A failed switchover: the same primary stops serving and comes back, with no new term.
/// Vitess's KEW only counts a newer term once it waits for a reparent, so its buffer holds
/// until max failover duration (the GroupReplication branch's
/// `TestBufferingEndsWhenSamePrimaryServesAgain`).
#[test]
fn same_primary_serving_again_after_not_serving_ends_buffering() {
    let mut h = Harness::new(enabled());
    let shard = h.shard("ks", "0");
    h.health(shard, serving(1, 1000)).unwrap();
    let t1 = h.wait(shard, FAILOVER);
    h.health(shard, not_serving(1, 1000)).unwrap();
    h.take_actions();
    h.health(shard, serving(1, 1000)).unwrap();
    assert_eq!(h.take_wakes(), [(t1, Verdict::Retry)]);
    h.complete_retries();
    assert_eq!(h.stats(shard).stops[StopReason::NewPrimarySeen], 1);
    h.assert_quiet();
}

/// The same, with the not-serving stamp seen before the first failing request: only a
/// not-serving stamp seen *during* the episode counts, so the episode waits for a real end.
/// (With `proactive_start`, the default, that stamp would itself start the episode; this is
/// the rule for a router that turned it off.)
#[test]
fn not_serving_before_the_episode_does_not_make_a_stale_serving_stamp_count() {
    let mut h = Harness::new(Config {
        proactive_start: false,
        ..enabled()
    });
    let shard = h.shard("ks", "0");
    h.health(shard, serving(1, 5)).unwrap();
    h.health(shard, not_serving(1, 5)).unwrap();
    h.wait(shard, FAILOVER);
    h.health(shard, serving(1, 5)).unwrap();
    assert_eq!(h.state(shard), ShardState::Buffering);
}

/// Drain back-off. The new primary is promoted and advertised, but its read-only mode is not
/// cleared yet (the case Vitess's own comment in `shard_buffer.go` warns about). The first
/// released request fails again. Vitess passes it, and every request after it, straight
/// through to fail; here the drain is called off and the request waits again.
#[test]
fn retry_failing_again_early_in_the_drain_pauses_it_and_waits_again() {
    let mut h = Harness::new(Config {
        drain_concurrency: 1,
        ..enabled()
    });
    let shard = h.shard("ks", "0");
    h.health(shard, serving(1, 1)).unwrap();
    let t1 = h.wait(shard, FAILOVER);
    let t2 = h.wait(shard, FAILOVER);
    let t3 = h.wait(shard, FAILOVER);
    h.now = h.now + secs(2);
    h.health(shard, serving(2, 2)).unwrap();
    h.take_actions();

    // t1's retry fails with a failover error: report it done, then ask again.
    h.retry_done(t1).unwrap();
    // Its completion released t2 (the drain is still running) ...
    assert_eq!(h.take_wakes(), [(t2, Verdict::Retry)]);
    // ... and its new attempt calls the drain off.
    let t1_again = h.wait(shard, FAILOVER);
    assert_eq!(h.state(shard), ShardState::Buffering);
    assert_eq!(h.take_actions(), [Action::DrainPaused { shard, queued: 2 }]);
    let s = h.stats(shard);
    assert_eq!(s.drains_paused, 1);
    assert_eq!(s.stops.total(), 1, "one episode, one stop");
    assert_eq!(s.starts, 1, "no new episode, no min-time check");

    // t2 is still retrying; when it finishes, nothing new is released while paused.
    h.retry_done(t2).unwrap();
    assert!(h.take_wakes().is_empty());

    // The next serving stamp (any term) resumes the drain, in the original order.
    h.health(shard, serving(2, 2)).unwrap();
    assert_eq!(h.state(shard), ShardState::Draining);
    assert_eq!(h.complete_retries(), [t3, t1_again]);
    assert_eq!(h.state(shard), ShardState::Idle);
    assert_eq!(h.stats(shard).stops.total(), 1);
    h.assert_quiet();
}

#[test]
fn paused_drain_resumes_by_itself_after_the_backoff() {
    let mut h = Harness::new(Config {
        drain_backoff: ms(500),
        ..enabled()
    });
    let shard = h.shard("ks", "0");
    let t1 = h.wait(shard, FAILOVER);
    h.health(shard, serving(2, 2)).unwrap();
    let paused_at = h.now;
    let t2 = h.retry_fails_and_waits(t1);
    let next = h.buffer.next_deadline().unwrap();
    assert_eq!(
        (next.at, next.kind),
        (paused_at + ms(500), TimerKind::DrainBackoff)
    );

    h.take_actions();
    h.advance(ms(499));
    assert!(h.take_wakes().is_empty());
    h.advance(ms(1));
    assert_eq!(h.take_wakes(), [(t2, Verdict::Retry)]);
    h.complete_retries();
    h.assert_quiet();
}

/// The quiet shard: one request held. Its retry is the whole drain, so by the time it fails
/// the drain has finished. `retry_failed` still calls it off; Vitess fails the request.
#[test]
fn single_released_request_failing_again_reopens_the_finished_drain() {
    let mut h = Harness::new(enabled());
    let shard = h.shard("ks", "0");
    let t1 = h.wait(shard, FAILOVER);
    h.health(shard, serving(2, 2)).unwrap();
    h.take_actions();
    let t1_again = h.retry_fails_and_waits(t1);
    assert_eq!(h.state(shard), ShardState::Buffering);
    let s = h.stats(shard);
    assert_eq!((s.starts, s.stops.total(), s.drains_paused), (1, 1, 1));
    assert_eq!(s.skipped.total(), 0);
    // The primary becomes writable; the next serving stamp resumes the drain.
    h.health(shard, serving(2, 2)).unwrap();
    assert_eq!(h.complete_retries(), [t1_again]);
    h.assert_quiet();
}

/// A fresh request's failover error right after the end is most likely a late answer from
/// the old primary; as in Vitess it is not held (the min-time rule), and only a released
/// request's failed retry (`retry_failed`) reopens the episode.
#[test]
fn fresh_failover_error_after_the_drain_finished_meets_the_min_time_rule() {
    let mut h = Harness::new(enabled());
    let shard = h.shard("ks", "0");
    let t1 = h.wait(shard, FAILOVER);
    h.health(shard, serving(2, 2)).unwrap();
    h.retry_done(t1).unwrap();
    assert_eq!(h.request(shard, FAILOVER), Admission::Proceed);
    assert_eq!(
        h.stats(shard).skipped[failover_buffer::SkipReason::LastFailoverTooRecent],
        1
    );
    h.assert_quiet();
}

#[test]
fn retry_failing_again_past_max_duration_proceeds() {
    let mut h = Harness::new(enabled());
    let shard = h.shard("ks", "0");
    let t1 = h.wait(shard, FAILOVER);
    h.now = h.now + secs(20);
    h.health(shard, serving(2, 2)).unwrap();
    assert_eq!(h.retry_failed(t1), Admission::Proceed);
    assert_eq!(h.stats(shard).drains_paused, 0);
    h.assert_quiet();
}

#[test]
fn retry_failed_for_a_queued_ticket_is_refused_and_keeps_it_queued() {
    let mut h = Harness::new(enabled());
    let shard = h.shard("ks", "0");
    let t1 = h.wait(shard, FAILOVER);
    let err = h
        .buffer
        .retry_failed(h.now, t1, failover_buffer::FailoverCause::Reparent)
        .unwrap_err();
    assert_eq!(
        err,
        failover_buffer::InputError::Ticket(failover_buffer::TicketError::NotReleased(t1))
    );
    assert_eq!(h.queued(shard), 1);
}

/// Past max failover duration, Vitess's rule applies again: failover errors during a drain
/// proceed, so a primary that never becomes writable cannot hold requests for ever.
#[test]
fn failover_error_during_a_drain_past_max_duration_proceeds() {
    let mut h = Harness::new(enabled());
    let shard = h.shard("ks", "0");
    let t1 = h.wait(shard, FAILOVER);
    h.wait(shard, FAILOVER);
    // The end arrives just as max duration is reached, before any tick.
    h.now = h.now + secs(20);
    h.health(shard, serving(2, 2)).unwrap();
    h.retry_done(t1).unwrap();
    assert_eq!(h.request(shard, FAILOVER), Admission::Proceed);
    assert_eq!(h.state(shard), ShardState::Draining);
    assert_eq!(h.stats(shard).drains_paused, 0);
    h.complete_retries();
    h.assert_quiet();
}

/// The episode keeps its max-duration deadline through a pause: a drain that keeps failing
/// is resumed for good at max duration, and later failover errors pass through.
#[test]
fn paused_drain_keeps_the_episode_max_duration_deadline() {
    // A window as long as max duration, so that the request held again keeps waiting: it
    // keeps its first deadline, which a 10 s window would have passed at 19 s.
    let mut h = Harness::new(Config {
        drain_backoff: secs(30),
        window: secs(20),
        ..enabled()
    });
    let shard = h.shard("ks", "0");
    let start = h.now;
    let t1 = h.wait(shard, FAILOVER);
    h.now = start + secs(19);
    h.health(shard, serving(2, 2)).unwrap();
    h.retry_fails_and_waits(t1);
    let next = h.buffer.next_deadline().unwrap();
    assert_eq!(
        (next.at, next.kind),
        (start + secs(20), TimerKind::MaxFailoverDuration)
    );
    h.advance(secs(1));
    assert_eq!(h.state(shard), ShardState::Draining);
    let t = h.complete_retries();
    assert_eq!(t.len(), 1);
    assert_eq!(h.request(shard, FAILOVER), Admission::Proceed);
    h.assert_quiet();
}

/// When the back-off would end exactly at max duration, the deadline names max duration:
/// the timer `tick` handles first, so the drain resumes for good rather than as a back-off.
#[test]
fn a_backoff_ending_at_max_duration_is_reported_as_max_duration() {
    let mut h = Harness::new(Config {
        drain_backoff: secs(1),
        window: secs(20),
        ..enabled()
    });
    let shard = h.shard("ks", "0");
    let start = h.now;
    let t1 = h.wait(shard, FAILOVER);
    h.now = start + secs(19);
    h.health(shard, serving(2, 2)).unwrap();
    h.retry_fails_and_waits(t1);
    let next = h.buffer.next_deadline().unwrap();
    assert_eq!(
        (next.at, next.kind),
        (start + secs(20), TimerKind::MaxFailoverDuration)
    );
}

/// Requests that waited through the drain may be past their window when it pauses; a
/// buffering shard holds nobody past the window, so they are released at the pause.
#[test]
fn pausing_a_drain_releases_requests_already_past_their_window() {
    let mut h = Harness::new(Config {
        window: secs(5),
        ..enabled()
    });
    let shard = h.shard("ks", "0");
    let t1 = h.wait(shard, FAILOVER);
    let t2 = h.wait(shard, FAILOVER);
    let t3 = h.wait(shard, FAILOVER);
    h.health(shard, serving(2, 2)).unwrap();
    h.now = h.now + secs(6);
    h.retry_done(t1).unwrap();
    h.take_actions();
    // t1's retry failed again: the pause finds t3 queued for 6 s, past its 5 s window.
    let t1_again = h.wait(shard, FAILOVER);
    assert_eq!(h.take_wakes(), [(t3, Verdict::Retry)]);
    assert_eq!(h.stats(shard).evicted[EvictReason::WindowExceeded], 1);
    assert_eq!(h.queued(shard), 1);
    assert_eq!(
        h.buffer.ticket_status(t1_again),
        failover_buffer::TicketStatus::Queued
    );
    let _ = t2;
}

/// Vitess's timeout thread could miss a "queue became non-empty" notification and hold the
/// request past its window until max duration (the lost wake-up). Here the window deadline
/// is the queue head, read by `poll_timeout` after every input.
#[test]
fn a_request_queued_into_an_empty_queue_gets_its_window_deadline_at_once() {
    let mut h = Harness::new(Config {
        window: secs(1),
        ..enabled()
    });
    let shard = h.shard("ks", "0");
    let t1 = h.wait(shard, FAILOVER);
    h.advance(secs(1));
    h.retry_done(t1).unwrap();
    assert_eq!(h.queued(shard), 0);
    let queued_at = h.now;
    let t2 = h.wait(shard, FAILOVER);
    assert_eq!(h.buffer.poll_timeout(), Some(queued_at + secs(1)));
    h.take_actions();
    h.advance(secs(1));
    assert_eq!(h.take_wakes(), [(t2, Verdict::Retry)]);
}

/// Vitess 19927: a request that raced with `Shutdown` started a new episode afterwards and
/// hung until max failover duration. Here shutdown is a state of the one machine every
/// input goes through.
#[test]
fn no_request_after_shutdown_is_held() {
    let mut h = Harness::new(enabled());
    let shard = h.shard("ks", "0");
    h.shutdown();
    for cause in [None, FAILOVER] {
        assert_eq!(h.request(shard, cause), Admission::Proceed);
    }
    assert_eq!(h.buffer.held_slots(), 0);
    assert_eq!(h.buffer.poll_timeout(), None);
}

/// Tickets are slot + generation: once a ticket has ended and its slot has been reused, the
/// old ticket acts on nothing.
#[test]
fn a_stale_ticket_never_acts_on_the_request_that_reused_its_slot() {
    let mut h = Harness::new(enabled());
    let shard = h.shard("ks", "0");
    let old = h.wait(shard, FAILOVER);
    h.cancel(old).unwrap();
    let new = h.wait(shard, FAILOVER);
    assert!(h.cancel(old).is_err());
    assert!(h.retry_done(old).is_err());
    assert_eq!(h.queued(shard), 1);
    assert_eq!(
        h.buffer.ticket_status(new),
        failover_buffer::TicketStatus::Queued
    );
    assert_eq!(h.buffer.input_stats().stale_tickets, 2);
}

/// Cancelling is O(1) wherever the request is in the queue (Vitess scans): cancelling the
/// middle, head and tail of a long queue keeps FIFO order for the rest.
#[test]
fn cancel_anywhere_in_the_queue_keeps_the_others_in_order() {
    let mut h = Harness::new(Config {
        drain_concurrency: 100,
        ..enabled()
    });
    let shard = h.shard("ks", "0");
    let tickets: Vec<_> = (0..9).map(|_| h.wait(shard, FAILOVER)).collect();
    for i in [4, 0, 8] {
        h.cancel(tickets[i]).unwrap();
    }
    h.take_actions();
    h.health(shard, serving(1, 1)).unwrap();
    let woken: Vec<_> = h.take_wakes().into_iter().map(|(t, _)| t).collect();
    let expected: Vec<_> = [1, 2, 3, 5, 6, 7].iter().map(|&i| tickets[i]).collect();
    assert_eq!(woken, expected);
    h.complete_retries();
    h.assert_quiet();
}
