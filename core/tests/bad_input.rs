//! Bad input gets a typed error, is counted, and loses nothing.

mod support;

use failover_buffer::{
    Admission, Buffer, Config, HealthStamp, InputError, PrimaryId, ShardId, ShardState, Ticket,
    TicketError, Timestamp,
};
use support::*;

#[test]
fn a_shard_id_this_buffer_never_issued_is_refused_on_every_input() {
    let mut b = Buffer::new(enabled()).unwrap();
    let foreign = ShardId::from_index(3);
    let now = Timestamp::from_secs(1);
    assert_eq!(
        b.request(now, foreign, FAILOVER),
        Err(InputError::UnknownShard)
    );
    assert_eq!(
        b.health(now, foreign, serving(1, 1)),
        Err(InputError::UnknownShard)
    );
    assert_eq!(
        b.topology(now, foreign, failover_buffer::TopologyEvent::ShardMissing),
        Err(InputError::UnknownShard)
    );
    assert_eq!(b.input_stats().unknown_shards, 3);
    assert_eq!(b.shard_state(foreign), None);
    assert!(b.poll_action().is_none());
}

#[test]
fn time_going_backwards_is_clamped_and_counted() {
    let mut h = Harness::new(Config {
        window: secs(5),
        ..enabled()
    });
    let shard = h.shard("ks", "0");
    let start = h.now;
    h.wait(shard, FAILOVER);
    h.now = start - secs(100);
    // Runs at `start`: nothing is due, and the earlier time does not move any deadline.
    h.tick();
    assert_eq!(h.buffer.input_stats().clock_regressions, 1);
    assert_eq!(h.buffer.now(), start);
    let t2 = h.wait(shard, FAILOVER);
    assert_eq!(h.buffer.input_stats().clock_regressions, 2);
    h.now = start + secs(5);
    h.take_actions();
    h.tick();
    // Both were queued at `start` as far as the buffer knows, so both are due now.
    assert_eq!(h.take_wakes().len(), 2);
    let _ = t2;
}

#[test]
fn retry_done_for_a_queued_ticket_is_refused_and_it_stays_queued() {
    let mut h = Harness::new(enabled());
    let shard = h.shard("ks", "0");
    let t = h.wait(shard, FAILOVER);
    assert_eq!(
        h.retry_done(t),
        Err(InputError::Ticket(TicketError::NotReleased(t)))
    );
    assert_eq!(h.queued(shard), 1);
    assert_eq!(h.buffer.input_stats().tickets_not_released, 1);
    h.cancel(t).unwrap();
    h.assert_quiet();
}

#[test]
fn ending_a_ticket_twice_is_refused_the_second_time() {
    let mut h = Harness::new(enabled());
    let shard = h.shard("ks", "0");
    let t = h.wait(shard, FAILOVER);
    h.health(shard, serving(1, 1)).unwrap();
    h.retry_done(t).unwrap();
    assert_eq!(
        h.retry_done(t),
        Err(InputError::Ticket(TicketError::Stale(t)))
    );
    assert_eq!(h.cancel(t), Err(InputError::Ticket(TicketError::Stale(t))));
    assert_eq!(h.buffer.input_stats().stale_tickets, 2);
    h.assert_quiet();
}

#[test]
fn forged_tickets_are_refused() {
    let mut h = Harness::new(enabled());
    let shard = h.shard("ks", "0");
    let real = h.wait(shard, FAILOVER);
    for forged in [
        Ticket::from_parts(0, 0),
        Ticket::from_parts(0, real.id() + 1),
        Ticket::from_parts(u32::MAX, real.id()),
        Ticket::from_parts(7, u64::MAX),
    ] {
        assert_eq!(
            h.cancel(forged),
            Err(InputError::Ticket(TicketError::NotIssued(forged)))
        );
    }
    assert_eq!(h.queued(shard), 1);
}

#[test]
fn a_health_stamp_with_an_older_term_is_refused_and_changes_nothing() {
    let mut h = Harness::new(enabled());
    let shard = h.shard("ks", "0");
    h.health(shard, serving(2, 9)).unwrap();
    h.wait(shard, FAILOVER);
    let stale = HealthStamp {
        primary: PrimaryId(1),
        term: 8,
        serving: true,
    };
    assert_eq!(
        h.health(shard, stale),
        Err(InputError::StaleHealthStamp {
            term: 8,
            highest: 9
        })
    );
    assert_eq!(h.buffer.input_stats().stale_health_stamps, 1);
    assert_eq!(h.state(shard), ShardState::Buffering);
    assert_eq!(h.buffer.highest_term(shard), Some(9));
    // Primary 1 was not recorded: no reparent, so no min-time skip later.
    h.health(shard, serving(2, 10)).unwrap();
    h.complete_retries();
    assert_eq!(h.stats(shard).skipped.total(), 0);
}

#[test]
fn registering_a_shard_twice_returns_the_same_id() {
    let mut b = Buffer::new(enabled()).unwrap();
    let a = b.register_shard("ks", "-80");
    let c = b.register_shard("ks", "80-");
    assert_ne!(a, c);
    assert_eq!(b.register_shard("ks", "-80"), a);
    assert_eq!(b.shard_id("ks", "80-"), Some(c));
    assert_eq!(b.shard_name(c), Some(("ks", "80-")));
    assert_eq!(b.shards().len(), 2);
}

#[test]
fn errors_have_readable_messages() {
    let t = Ticket::from_parts(1, 2);
    assert_eq!(
        InputError::Ticket(TicketError::Stale(t)).to_string(),
        "Ticket(#2@1) has ended"
    );
    assert_eq!(
        InputError::Ticket(TicketError::NotIssued(t)).to_string(),
        "Ticket(#2@1) was never issued by this buffer"
    );
    assert_eq!(
        InputError::StaleHealthStamp {
            term: 1,
            highest: 2
        }
        .to_string(),
        "stale health stamp: term 1 is below the highest seen, 2"
    );
    assert_eq!(
        Buffer::new(Config {
            size: 0,
            ..Config::default()
        })
        .unwrap_err()
        .to_string(),
        "buffer size must be >= 1 (specified value: 0)"
    );
    let _ = Admission::Proceed;
}
