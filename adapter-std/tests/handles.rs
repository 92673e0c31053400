//! Shard handles: registration is idempotent, lookups find registered shards only, and a
//! handle is valid only with the buffer that issued it.

mod common;

use common::{manual, stamp};
use failover_buffer_std::{Clock, FailoverCause, InputError, ShardState, ShardStats};

#[test]
fn registering_a_shard_twice_gives_the_same_shard() {
    let (buffer, _clock) = manual(common::enabled());
    let first = buffer.register_shard("commerce", "-80");
    let again = buffer.register_shard("commerce", "-80");
    let other = buffer.register_shard("commerce", "80-");
    assert_eq!(first.id(), again.id());
    assert_ne!(first.id(), other.id());
    assert_eq!(
        buffer.shard("commerce", "-80").map(|s| s.id()),
        Some(first.id())
    );
    assert!(buffer.shard("commerce", "0").is_none());
    assert_eq!(first.to_string(), "commerce/-80");
}

#[test]
fn every_handle_of_a_shard_sees_it_buffering() {
    // Deadlines already reached: each request is held, then timed out at once.
    let (buffer, clock) = manual(common::enabled());
    let first = buffer.register_shard("commerce", "0");
    let again = buffer.register_shard("commerce", "0");
    let timed_out =
        buffer.wait_for_failover_end_timeout(&first, Some(FailoverCause::Reparent), clock.now());
    assert!(timed_out.is_err());
    // The shard is buffering: a first attempt through the other handle is held, not let
    // through by its fast path.
    let held = buffer.wait_for_failover_end_timeout(&again, None, clock.now());
    assert_eq!(
        held.map(|g| g.is_some()),
        Err(failover_buffer_std::WaitError::TimedOut)
    );
    assert_eq!(buffer.stats(&first).buffered, 2);
}

#[test]
fn a_shard_of_another_buffer_gets_definite_answers_and_is_counted_unknown() {
    let (buffer, _clock) = manual(common::enabled());
    let (other_buffer, _other_clock) = manual(common::enabled());
    buffer.register_shard("commerce", "0");
    let foreign = other_buffer.register_shard("commerce", "0");
    assert_eq!(
        buffer.health(&foreign, stamp(1, 1, true)),
        Err(InputError::UnknownShard)
    );
    // A request thread never panics on a bad handle: it proceeds, as in failover-buffer-tokio.
    let answer = buffer.wait_for_failover_end(&foreign, Some(FailoverCause::Reparent));
    assert!(answer.unwrap().is_none());
    assert_eq!(buffer.stats(&foreign), ShardStats::default());
    assert_eq!(buffer.state(&foreign), ShardState::Idle);
    assert_eq!(buffer.queued(&foreign), 0);
    assert_eq!(buffer.input_stats().unknown_shards, 2);
    assert_eq!(buffer.held_slots(), 0);
}
