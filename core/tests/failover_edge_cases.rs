//! Edge cases an independent scenario suite found (issue 10): each test failed before its
//! fix, and says what went wrong.

mod support;

use failover_buffer::{
    Action, Admission, Buffer, BufferError, Config, FailoverCause, InputError, ReleaseReason,
    ShardState, SkipReason, TicketError, TicketStatus, Timestamp, TopologyEvent, Verdict,
};
use support::*;

/// Fix 1. Size 1: the new primary's stamp releases t1, which keeps the only slot until its
/// retry finishes. A failover request now cannot be queued: it fails with `BufferFull`, and
/// that is all. It used to call the drain off anyway (the pause ran before the enqueue), so
/// first attempts failed with `BufferFull` until the back-off ended.
#[test]
fn a_request_refused_as_full_does_not_pause_the_drain() {
    let mut h = Harness::new(Config {
        size: 1,
        ..enabled()
    });
    let shard = h.shard("ks", "0");
    h.health(shard, serving(1, 1)).unwrap();
    let t1 = h.wait(shard, FAILOVER);
    h.health(shard, serving(2, 2)).unwrap();
    assert_eq!(h.take_wakes(), [(t1, Verdict::Retry)]);

    assert_eq!(
        h.request(shard, FAILOVER),
        Admission::Fail(BufferError::BufferFull)
    );
    assert_eq!(h.state(shard), ShardState::Draining);
    assert_eq!(h.stats(shard).drains_paused, 0);
    assert_eq!(h.stats(shard).skipped[SkipReason::BufferFull], 1);
    assert!(h.take_actions().is_empty(), "no DrainPaused");
    // First attempts still go straight to the new primary.
    assert_eq!(h.request(shard, None), Admission::Proceed);
    h.complete_retries();
    h.assert_quiet();
}

/// Fix 2. At concurrency 1, t1's retry fails against a new primary not yet writable.
/// `retry_failed` used to end t1 first (which released t2 into that primary), then pause,
/// and put t1 at the back. Now it pauses first, releases nothing, and t1 keeps its slot at
/// the head of the queue, so the drain resumes in the original order.
#[test]
fn retry_failed_pauses_first_and_keeps_the_request_at_the_head() {
    let mut h = Harness::new(Config {
        drain_concurrency: 1,
        ..enabled()
    });
    let shard = h.shard("ks", "0");
    h.health(shard, serving(1, 1)).unwrap();
    let t1 = h.wait(shard, FAILOVER);
    let t2 = h.wait(shard, FAILOVER);
    let t3 = h.wait(shard, FAILOVER);
    h.advance(secs(2));
    h.health(shard, serving(2, 2)).unwrap();
    assert_eq!(h.take_wakes(), [(t1, Verdict::Retry)]);

    let t1_again = h.retry_fails_and_waits(t1);
    assert_eq!(t1_again.slot(), t1.slot(), "it keeps its slot");
    assert_eq!(
        h.take_actions(),
        [Action::DrainPaused { shard, queued: 3 }],
        "nothing released"
    );
    assert_eq!(h.state(shard), ShardState::Buffering);
    assert_eq!(h.buffer.ticket_status(t1), TicketStatus::Ended);
    assert_eq!(h.buffer.ticket_status(t1_again), TicketStatus::Queued);

    // The back-off ends: the drain resumes with t1 first.
    h.advance(secs(1));
    assert_eq!(h.take_wakes(), [(t1_again, Verdict::Retry)]);
    assert_eq!(h.complete_retries(), [t1_again, t2, t3]);
    let s = h.stats(shard);
    assert_eq!((s.starts, s.stops.total(), s.drains_paused), (1, 1, 1));
    h.assert_quiet();
}

/// Fix 3. A retry released by its window was sent while the shard was still failing over;
/// its failure says nothing about the new primary. Once the drain has finished, it used to
/// reopen the episode and hold every request on a healthy shard for `drain_backoff`. Now it
/// is a fresh failover error: the min-time rules let it through.
#[test]
fn a_retry_released_by_its_window_never_reopens_a_finished_episode() {
    let mut h = Harness::new(Config {
        window: secs(1),
        ..enabled()
    });
    let shard = h.shard("ks", "0");
    h.health(shard, serving(1, 1)).unwrap();
    let t1 = h.wait(shard, FAILOVER);
    h.advance(secs(1));
    assert_eq!(h.take_wakes(), [(t1, Verdict::Retry)]);
    assert_eq!(
        h.buffer.ticket_status(t1),
        TicketStatus::Retrying(ReleaseReason::Window)
    );
    h.health(shard, serving(2, 2)).unwrap();
    assert_eq!(h.state(shard), ShardState::Idle, "nothing left to drain");

    assert_eq!(h.retry_failed(t1), Admission::Proceed);
    assert_eq!(h.state(shard), ShardState::Idle);
    let s = h.stats(shard);
    assert_eq!(s.drains_paused, 0);
    assert_eq!(s.skipped[SkipReason::LastFailoverTooRecent], 1);
    h.assert_quiet();
}

/// Fix 4. The shard was resharded away during its drain: requests still queued fail with
/// `ShardMissing` so the router re-plans them. A failover error now fails the same way at
/// once, where it used to pause the drain and fail only after the back-off.
#[test]
fn after_shard_missing_in_a_drain_a_failover_error_fails_with_shard_missing() {
    let mut h = Harness::new(enabled());
    let shard = h.shard("ks", "0");
    h.health(shard, serving(1, 1)).unwrap();
    let t1 = h.wait(shard, FAILOVER);
    let t2 = h.wait(shard, FAILOVER);
    h.health(shard, serving(2, 2)).unwrap();
    h.topology(shard, TopologyEvent::ShardMissing);
    assert_eq!(
        h.take_wakes(),
        [
            (t1, Verdict::Retry),
            (t2, Verdict::Fail(BufferError::ShardMissing))
        ]
    );

    assert_eq!(
        h.request(shard, FAILOVER),
        Admission::Fail(BufferError::ShardMissing)
    );
    assert_eq!(h.state(shard), ShardState::Draining);
    assert_eq!(h.stats(shard).drains_paused, 0);
    h.complete_retries();
    h.assert_quiet();
}

/// Fix 5. Every buffer's generations start at 1, so buffer A's first ticket used to cancel
/// buffer B's first request. A ticket now carries its buffer's identity.
#[test]
fn a_ticket_from_another_buffer_is_refused_and_acts_on_nothing() {
    let mut a = Buffer::new(enabled()).unwrap();
    let mut b = Buffer::new(enabled()).unwrap();
    let (sa, sb) = (a.register_shard("ks", "0"), b.register_shard("ks", "0"));
    let t0 = Timestamp::from_secs(1);
    let cause = Some(FailoverCause::Reparent);
    let Ok(Admission::Wait(ta)) = a.request(t0, sa, cause) else {
        panic!("a holds")
    };
    let Ok(Admission::Wait(tb)) = b.request(t0, sb, cause) else {
        panic!("b holds")
    };
    assert_eq!(
        (ta.slot(), ta.id()),
        (tb.slot(), tb.id()),
        "same slot and id"
    );

    assert_eq!(
        b.cancel(t0, ta),
        Err(InputError::Ticket(TicketError::NotIssued(ta)))
    );
    assert_eq!(b.ticket_status(ta), TicketStatus::NotIssued);
    assert_eq!(b.ticket_status(tb), TicketStatus::Queued);
    assert_eq!(b.queued(sb), Some(1));
    assert_eq!(b.input_stats().tickets_not_issued, 1);
    assert_eq!(a.ticket_status(ta), TicketStatus::Queued);
}

/// Fix 6. `tick(MAX)` then `request(MAX)`: the request's deadline saturated at `MAX`, so the
/// invariant checker saw a queued request past its window, and the next tick released it
/// 0 ns after it was queued. `MAX` is now "never": inputs at it run 1 ns before, and a
/// deadline at `MAX` arms no timer.
#[test]
fn inputs_at_the_end_of_time_keep_every_invariant() {
    let mut b = Buffer::new(enabled()).unwrap();
    let shard = b.register_shard("ks", "0");
    b.tick(Timestamp::MAX);
    let Ok(Admission::Wait(t)) = b.request(Timestamp::MAX, shard, Some(FailoverCause::Reparent))
    else {
        panic!("held")
    };
    assert_eq!(b.check_invariants(), Ok(()));
    b.tick(Timestamp::MAX);
    assert_eq!(b.check_invariants(), Ok(()));
    assert_eq!(
        b.ticket_status(t),
        TicketStatus::Queued,
        "not released at once"
    );
    assert_eq!(b.poll_timeout(), None, "no timer at the end of time");
    assert!(b.now() < Timestamp::MAX);
    // It still ends, and the buffer still closes.
    b.shutdown(Timestamp::MAX);
    while b.poll_action().is_some() {}
    assert_eq!(
        b.ticket_status(t),
        TicketStatus::Retrying(ReleaseReason::Drain(failover_buffer::StopReason::Shutdown))
    );
    b.retry_done(Timestamp::MAX, t).unwrap();
    assert!(b.is_closed());
}
