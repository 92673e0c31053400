//! `Buffer::clone`: a snapshot with the original's identity (see `Buffer`'s "Cloning").

use failover_buffer::{
    Action, Admission, Buffer, Config, FailoverCause, HealthStamp, PrimaryId, Ticket, Timestamp,
    Verdict,
};

fn t(ms: u64) -> Timestamp {
    Timestamp::from_nanos(ms * 1_000_000)
}

fn holding_two() -> (Buffer, Ticket, Ticket) {
    let mut buffer = Buffer::new(Config {
        enabled: true,
        drain_concurrency: 1,
        ..Config::default()
    })
    .expect("a valid config");
    let shard = buffer.register_shard("ks", "0");
    let hold = |b: &mut Buffer| match b.request(t(1), shard, Some(FailoverCause::Reparent)) {
        Ok(Admission::Wait(ticket)) => ticket,
        other => panic!("not held: {other:?}"),
    };
    let first = hold(&mut buffer);
    let second = hold(&mut buffer);
    while buffer.poll_action().is_some() {}
    (buffer, first, second)
}

fn actions(buffer: &mut Buffer) -> Vec<Action> {
    std::iter::from_fn(|| buffer.poll_action()).collect()
}

#[test]
fn a_clone_goes_on_exactly_as_the_original_would() {
    let (mut buffer, first, second) = holding_two();
    let mut copy = buffer.clone();
    let shard = buffer.shard_id("ks", "0").expect("registered");
    let stamp = HealthStamp {
        primary: PrimaryId(2),
        term: 2,
        serving: true,
    };
    for b in [&mut buffer, &mut copy] {
        b.health(t(2), shard, stamp).expect("a newer term");
    }
    let woken = actions(&mut buffer);
    assert!(woken.contains(&Action::Wake {
        ticket: first,
        verdict: Verdict::Retry
    }));
    assert_eq!(actions(&mut copy), woken);
    for b in [&mut buffer, &mut copy] {
        b.retry_done(t(3), first)
            .expect("the same ticket is live in both");
    }
    assert_eq!(actions(&mut copy), actions(&mut buffer));
    assert_eq!(copy.ticket_status(second), buffer.ticket_status(second));
    assert_eq!(copy.poll_timeout(), buffer.poll_timeout());
}

#[test]
fn a_clone_moves_on_by_its_own_inputs_only() {
    let (mut buffer, first, _) = holding_two();
    let mut copy = buffer.clone();
    copy.cancel(t(2), first).expect("live in the copy");
    assert_eq!((copy.held_slots(), buffer.held_slots()), (1, 2));
    // The original still holds it, and can end it too.
    buffer.cancel(t(2), first).expect("live in the original");
    assert_eq!(buffer.held_slots(), 1);
}
