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
