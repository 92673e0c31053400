//! Fair sharing through the adapter (issue 15): with `Config::max_per_shard`, a second shard
//! failing over into a buffer the first has filled is held, not refused.

mod common;

use std::thread;

use common::{eventually, manual, stamp};
use failover_buffer_std::{BufferError, Config, Eviction, FailoverCause, SkipReason};

fn second_shard_under(
    eviction: Eviction,
    max_per_shard: Option<usize>,
) -> Result<bool, BufferError> {
    let (buffer, _clock) = manual(Config {
        enabled: true,
        size: 2,
        eviction,
        max_per_shard,
        ..Config::default()
    });
    let a = buffer.register_shard("commerce", "-80");
    let b = buffer.register_shard("commerce", "80-");
    buffer.health(&a, stamp(1, 1, true)).unwrap();
    buffer.health(&b, stamp(2, 1, true)).unwrap();
    let held: Vec<_> = (0..2u64)
        .map(|i| {
            let (client, shard) = (buffer.clone(), a.clone());
            let worker = thread::spawn(move || {
                client
                    .wait_for_failover_end(&shard, Some(FailoverCause::Reparent))
                    .map(|guard| guard.is_some())
            });
            eventually("the request is held", || buffer.stats(&a).buffered == i + 1);
            worker
        })
        .collect();
    let second = {
        let (buffer, b) = (buffer.clone(), b.clone());
        thread::spawn(move || {
            buffer
                .wait_for_failover_end(&b, Some(FailoverCause::Reparent))
                .map(|guard| guard.is_some())
        })
    };
    eventually("the second request settles", || {
        second.is_finished() || buffer.queued(&b) == 1
    });
    let refused = buffer.stats(&b).skipped[SkipReason::BufferFull];
    buffer.health(&a, stamp(3, 2, true)).unwrap();
    buffer.health(&b, stamp(4, 2, true)).unwrap();
    let outcome = second.join().unwrap();
    assert_eq!(refused, u64::from(outcome.is_err()));
    for w in held {
        let _ = w.join().unwrap();
    }
    buffer.check_invariants().unwrap();
    assert_eq!(buffer.free_slots(), 2);
    outcome
}

#[test]
fn under_vitess_policy_the_second_shard_is_refused() {
    assert_eq!(
        second_shard_under(Eviction::OldestOfShard, None),
        Err(BufferError::BufferFull)
    );
}

#[test]
fn with_a_cap_the_second_shard_is_held_until_its_failover_ends() {
    assert_eq!(
        second_shard_under(Eviction::OldestOfShard, Some(1)),
        Ok(true)
    );
}

#[test]
fn under_oldest_anywhere_the_second_shard_takes_the_oldest_slot() {
    assert_eq!(second_shard_under(Eviction::OldestAnywhere, None), Ok(true));
}

/// A byte budget of 10: a held 6-byte request makes way for a second 6-byte one, and a
/// request larger than the budget is refused at once.
#[test]
fn sized_requests_count_against_the_byte_budget() {
    let (buffer, _clock) = manual(Config {
        enabled: true,
        max_bytes: Some(10),
        ..Config::default()
    });
    let shard = buffer.register_shard("commerce", "0");
    buffer.health(&shard, stamp(1, 1, true)).unwrap();
    let spawn = |bytes| {
        let (buffer, shard) = (buffer.clone(), shard.clone());
        thread::spawn(move || {
            buffer
                .wait_for_failover_end_sized(&shard, Some(FailoverCause::Reparent), bytes)
                .map(|guard| guard.is_some())
        })
    };
    let first = spawn(6);
    eventually("the first is held", || buffer.held_bytes() == 6);
    let second = spawn(6);
    assert_eq!(first.join().unwrap(), Err(BufferError::Evicted));
    eventually("the second is held", || {
        buffer.stats(&shard).bytes_held == 6
    });
    assert_eq!(
        buffer
            .wait_for_failover_end_sized(&shard, Some(FailoverCause::Reparent), 11)
            .map(|guard| guard.is_some()),
        Err(BufferError::BufferFull)
    );
    buffer.health(&shard, stamp(2, 2, true)).unwrap();
    assert_eq!(second.join().unwrap(), Ok(true));
    eventually("everything is done", || buffer.held_bytes() == 0);
    assert_eq!(buffer.stats(&shard).peak_bytes, 6);
}
