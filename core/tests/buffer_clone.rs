//! `Buffer::clone`: a snapshot with the original's identity (see `Buffer`'s "Cloning").

use failover_buffer::{
    Action, Admission, Buffer, Config, FailoverCause, HealthStamp, PrimaryId, ShardId, Ticket,
    Timestamp, Verdict,
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

/// A buffer that has been through a lot: three shards, one draining with a retry that
/// failed again (its drain paused, wait histograms sampled), one paused by the operator,
/// one idle, a sized request held, and a shutdown under way.
fn well_used() -> Buffer {
    let mut buffer = Buffer::new(Config {
        enabled: true,
        drain_concurrency: 1,
        ..Config::default()
    })
    .expect("a valid config");
    let a = buffer.register_shard("ks", "-80");
    let b = buffer.register_shard("ks", "80-");
    buffer.register_shard("other", "0");
    let mut held = Vec::new();
    for _ in 0..3 {
        match buffer.request(t(1), a, Some(FailoverCause::Reparent)) {
            Ok(Admission::Wait(ticket)) => held.push(ticket),
            other => panic!("not held: {other:?}"),
        }
    }
    let stamp = HealthStamp {
        primary: PrimaryId(2),
        term: 2,
        serving: true,
    };
    buffer.health(t(2), a, stamp).expect("a newer term");
    let released = actions(&mut buffer)
        .into_iter()
        .find_map(|a| match a {
            Action::Wake { ticket, .. } => Some(ticket),
            _ => None,
        })
        .expect("the drain released one");
    let again = buffer
        .retry_failed(t(3), released, FailoverCause::Reparent)
        .expect("a released ticket");
    assert!(matches!(again, Admission::Wait(_)), "held again: {again:?}");
    buffer
        .pause(
            t(3),
            failover_buffer::PauseScope::Shard(b),
            std::time::Duration::from_secs(1),
        )
        .expect("a registered shard");
    buffer.shutdown(t(4));
    buffer
}

/// Everything a buffer shows: its state read field by field, its debug print (which has
/// the pending actions, timers, slab entries and names; `{:#?}`, since the slab's plain
/// print shows its capacity, which a copy need not share) and every shard's wait
/// histograms.
fn everything(buffer: &Buffer) -> String {
    let waits: Vec<_> = buffer
        .shards()
        .map(|id| format!("{:?}", buffer.wait_histograms(id)))
        .collect();
    format!("{:?}\n{buffer:#?}\n{waits:?}", buffer.inspect())
}

#[test]
fn clone_from_gives_the_same_copy_as_clone_whatever_the_target_held() {
    let source = well_used();
    let fresh = || {
        Buffer::new(Config {
            size: 3,
            ..Config::default()
        })
        .expect("a valid config")
    };
    let mut bigger = well_used();
    bigger.register_shard("third", "0");
    for _ in 0..4 {
        let _ = bigger.request(t(5), ShardId::from_index(3), Some(FailoverCause::Reparent));
    }
    let (mut simpler, ..) = holding_two();
    // Into an empty buffer, a bigger one, a simpler one, and one already a copy.
    for target in [&mut fresh(), &mut bigger, &mut simpler, &mut source.clone()] {
        target.clone_from(&source);
        assert_eq!(everything(target), everything(&source));
    }
}

#[test]
fn a_buffer_refreshed_by_clone_from_goes_on_as_a_clone_would() {
    let source = well_used();
    let mut refreshed = holding_two().0;
    refreshed.clone_from(&source);
    let mut cloned = source.clone();
    for b in [&mut refreshed, &mut cloned] {
        b.cancel_shutdown(t(5)).expect("a shutdown under way");
        b.tick(t(2_000));
    }
    assert_eq!(actions(&mut refreshed), actions(&mut cloned));
    assert_eq!(everything(&refreshed), everything(&cloned));
}
