//! `wait_for_failover_end_timeout`: a caller's deadline is a cancel, and a release that
//! races it never loses the slot.

mod common;

use std::thread;
use std::time::Duration;

use common::{eventually, manual, stamp};
use failover_buffer_std::{Clock, EvictReason, FailoverCause, ShardState, WaitError};

#[test]
fn a_request_that_times_out_while_queued_is_cancelled_and_frees_its_slot() {
    let (buffer, clock) = manual(common::enabled());
    let shard = buffer.register_shard("commerce", "0");
    buffer.health(&shard, stamp(1, 1, true)).unwrap();
    let deadline = clock.now() + Duration::from_millis(500);
    let worker = {
        let (buffer, shard) = (buffer.clone(), shard.clone());
        thread::spawn(move || {
            buffer
                .wait_for_failover_end_timeout(&shard, Some(FailoverCause::Reparent), deadline)
                .map(|guard| guard.is_some())
        })
    };
    eventually("queued", || buffer.queued(&shard) == 1);

    clock.advance(Duration::from_millis(500));
    buffer.tick_now();
    assert_eq!(worker.join().unwrap(), Err(WaitError::TimedOut));
    assert_eq!(buffer.free_slots(), 1000);
    assert_eq!(buffer.queued(&shard), 0);
    assert_eq!(buffer.stats(&shard).evicted[EvictReason::ContextDone], 1);
    // The episode itself goes on until the failover ends.
    assert_eq!(buffer.state(&shard), ShardState::Buffering);
}

#[test]
fn a_deadline_already_past_times_out_without_blocking() {
    let (buffer, clock) = manual(common::enabled());
    let shard = buffer.register_shard("commerce", "0");
    let result =
        buffer.wait_for_failover_end_timeout(&shard, Some(FailoverCause::Reparent), clock.now());
    assert_eq!(result.map(|g| g.is_some()), Err(WaitError::TimedOut));
    assert_eq!(buffer.stats(&shard).evicted[EvictReason::ContextDone], 1);
    assert_eq!(buffer.free_slots(), 1000);
}

#[test]
fn a_release_after_the_deadline_times_out_and_hands_its_turn_to_the_next_request() {
    let (buffer, clock) = manual(common::enabled());
    let shard = buffer.register_shard("commerce", "0");
    buffer.health(&shard, stamp(1, 1, true)).unwrap();
    let deadline = clock.now() + Duration::from_secs(1);
    let impatient = {
        let (buffer, shard) = (buffer.clone(), shard.clone());
        thread::spawn(move || {
            buffer
                .wait_for_failover_end_timeout(&shard, Some(FailoverCause::Reparent), deadline)
                .map(|guard| guard.is_some())
        })
    };
    eventually("queued", || buffer.queued(&shard) == 1);
    let patient = {
        let (buffer, shard) = (buffer.clone(), shard.clone());
        thread::spawn(move || buffer.wait_for_failover_end(&shard, Some(FailoverCause::Reparent)))
    };
    eventually("queued", || buffer.queued(&shard) == 2);

    // The deadline passes, and before any timer pass sees it, the failover ends and the
    // drain (concurrency 1) releases the impatient request first. Its deadline is compared
    // with the time of that release: it has passed, so the caller times out and its turn
    // goes straight to the next request.
    clock.advance(Duration::from_secs(2));
    buffer.health(&shard, stamp(2, 2, true)).unwrap();
    assert_eq!(impatient.join().unwrap(), Err(WaitError::TimedOut));
    let guard = patient.join().unwrap().unwrap().expect("released to retry");
    drop(guard);

    assert_eq!(buffer.state(&shard), ShardState::Idle);
    assert_eq!(buffer.free_slots(), 1000);
    assert_eq!(buffer.stats(&shard).drained, 2);
    buffer.check_invariants().unwrap();
}

#[test]
fn a_time_out_reads_as_vitess_context_deadline_error() {
    assert_eq!(
        WaitError::TimedOut.to_string(),
        "context was canceled before failover finished: context deadline exceeded"
    );
    assert_eq!(
        WaitError::Buffer(failover_buffer_std::BufferError::BufferFull).to_string(),
        "primary buffer is full"
    );
}
