//! What a router and its tests can read off the buffer without replaying its actions: a
//! ticket's slot and status (with why it was released), a shard's episode, and the failover
//! as its clients saw it.

mod support;

use failover_buffer::{
    Admission, Buffer, Config, FailoverCause, ReleaseReason, StopReason, TicketStatus, Timestamp,
};
use support::*;

#[test]
fn ticket_slots_are_dense_below_the_size() {
    let mut h = Harness::new(Config {
        size: 3,
        ..enabled()
    });
    let shard = h.shard("ks", "0");
    let tickets: Vec<_> = (0..3).map(|_| h.wait(shard, FAILOVER)).collect();
    let mut slots: Vec<u32> = tickets.iter().map(|t| t.slot()).collect();
    slots.sort_unstable();
    assert_eq!(slots, [0, 1, 2]);
    // A slot is reused once its ticket ends; the ticket (and its id) tells them apart.
    h.cancel(tickets[1]).unwrap();
    let next = h.wait(shard, FAILOVER);
    assert_eq!(next.slot(), tickets[1].slot());
    assert_ne!(next.id(), tickets[1].id());
}

#[test]
fn ticket_status_tells_ended_from_never_issued() {
    let mut h = Harness::new(enabled());
    let shard = h.shard("ks", "0");
    let t = h.wait(shard, FAILOVER);
    assert_eq!(h.buffer.ticket_status(t), TicketStatus::Queued);
    h.cancel(t).unwrap();
    assert_eq!(h.buffer.ticket_status(t), TicketStatus::Ended);
    assert!(!TicketStatus::Ended.is_live());

    let mut other = Buffer::new(enabled()).unwrap();
    let s = other.register_shard("ks", "0");
    let Ok(Admission::Wait(foreign)) =
        other.request(Timestamp::ZERO, s, Some(FailoverCause::Reparent))
    else {
        panic!("held")
    };
    assert_eq!(h.buffer.ticket_status(foreign), TicketStatus::NotIssued);
    let forged = failover_buffer::Ticket::from_parts(t.slot(), t.id());
    assert_eq!(h.buffer.ticket_status(forged), TicketStatus::NotIssued);
}

/// Why each request was released: its window (the failover may still be on), or the drain,
/// with the reason the drain began.
#[test]
fn the_status_says_why_a_request_was_released() {
    let mut h = Harness::new(Config {
        window: secs(5),
        ..enabled()
    });
    let (a, b) = (h.shard("ks", "a"), h.shard("ks", "b"));
    let status = |h: &Harness, t| h.buffer.ticket_status(t);
    h.health(a, serving(1, 1)).unwrap();
    let early = h.wait(a, FAILOVER);
    h.advance(secs(4));
    let late = h.wait(a, FAILOVER);
    h.advance(secs(1));
    assert_eq!(
        status(&h, early),
        TicketStatus::Retrying(ReleaseReason::Window)
    );
    h.health(a, serving(2, 2)).unwrap();
    assert_eq!(
        status(&h, late),
        TicketStatus::Retrying(ReleaseReason::Drain(StopReason::NewPrimarySeen))
    );
    let held = h.wait(b, FAILOVER);
    h.shutdown();
    assert_eq!(
        status(&h, held),
        TicketStatus::Retrying(ReleaseReason::Drain(StopReason::Shutdown))
    );
    h.complete_retries();
    h.assert_quiet();
}

#[test]
fn max_duration_releases_are_told_apart_from_the_end_of_a_failover() {
    let mut h = Harness::new(Config {
        window: secs(20),
        ..enabled()
    });
    let shard = h.shard("ks", "0");
    let t = h.wait(shard, FAILOVER);
    h.advance(secs(20));
    assert_eq!(
        h.buffer.ticket_status(t),
        TicketStatus::Retrying(ReleaseReason::Drain(StopReason::MaxDurationExceeded))
    );
    h.complete_retries();
}

/// The episode view follows an episode through a pause: start, term, deadline, paused
/// until, and why it last drained.
#[test]
fn the_episode_view_follows_an_episode_through_a_pause() {
    let mut h = Harness::new(enabled());
    let shard = h.shard("ks", "0");
    assert_eq!(h.buffer.episode(shard), None, "no episode yet");
    h.health(shard, serving(1, 7)).unwrap();
    let start = h.now;
    let t1 = h.wait(shard, FAILOVER);
    let e = h.buffer.episode(shard).unwrap();
    assert_eq!(e.started_at, start);
    assert_eq!(e.start_term, Some(7));
    assert_eq!(e.max_duration_deadline, start + secs(20));
    assert_eq!((e.paused_until, e.stop_reason), (None, None));

    h.advance(secs(2));
    h.health(shard, serving(2, 8)).unwrap();
    assert_eq!(
        h.buffer.episode(shard).unwrap().stop_reason,
        Some(StopReason::NewPrimarySeen)
    );
    assert_eq!(h.complete_retries(), [t1]);

    // The next failover, a minute later: its first retry fails again and pauses the drain.
    h.advance(secs(61));
    let t2 = h.wait(shard, FAILOVER);
    let second = h.now;
    h.health(shard, serving(3, 9)).unwrap();
    h.retry_fails_and_waits(t2);
    let e = h.buffer.episode(shard).unwrap();
    assert_eq!(e.started_at, second);
    assert_eq!(e.start_term, Some(8));
    assert_eq!(e.paused_until, Some(second + secs(1)));
    h.advance(secs(1));
    assert_eq!(h.buffer.episode(shard).unwrap().paused_until, None);
    h.complete_retries();
    h.assert_quiet();
}

/// Issue 12, item 6: Vitess's `last_failover_duration` counts from the start to the first
/// stop and leaves out drain pauses; `last_failover_held_duration` is what clients saw, from
/// the first hold to the last release. Both are exported by `samples()`.
#[test]
fn the_held_duration_includes_the_drain_pauses() {
    let mut h = Harness::new(Config {
        drain_backoff: secs(1),
        ..enabled()
    });
    let shard = h.shard("ks", "0");
    h.health(shard, serving(1, 1)).unwrap();
    let t1 = h.wait(shard, FAILOVER);
    h.advance(ms(500));
    let t2 = h.wait(shard, FAILOVER);
    h.advance(ms(1500));
    h.health(shard, serving(2, 2)).unwrap();
    // The new primary refuses the first retry twice before it is writable.
    let t1 = h.retry_fails_and_waits(t1);
    h.advance(secs(1));
    let t1 = h.retry_fails_and_waits(t1);
    h.advance(secs(1));
    assert_eq!(h.complete_retries(), [t1, t2]);
    let s = h.stats(shard);
    assert_eq!(s.last_failover_duration, secs(2));
    assert_eq!(s.last_failover_held_duration, secs(4));
    assert_eq!(s.drains_paused, 2);
    let sample = |name| s.samples().find(|x| x.name == name).unwrap().value;
    assert_eq!(sample("failover_buffer_last_failover_duration_ms"), 2000);
    assert_eq!(
        sample("failover_buffer_last_failover_held_duration_ms"),
        4000
    );
    h.assert_quiet();
}
