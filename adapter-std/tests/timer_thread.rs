//! The timer thread on the system clock: it fires the core's timers and callers' deadlines
//! by itself. These tests wait for it, but assert only what happened, never how long it
//! took.

mod common;

use std::thread;
use std::time::{Duration, Instant};

use common::{eventually, stamp};
use failover_buffer_std::{
    Config, EvictReason, FailoverBuffer, FailoverCause, ShardState, StopReason, WaitError,
};

#[test]
fn the_timer_thread_releases_a_request_when_its_window_ends() {
    let buffer = FailoverBuffer::new(Config {
        enabled: true,
        window: Duration::from_millis(20),
        max_failover_duration: Duration::from_secs(60),
        ..Config::default()
    })
    .unwrap();
    let shard = buffer.register_shard("commerce", "0");
    buffer.health(&shard, stamp(1, 1, true)).unwrap();
    let guard = buffer
        .wait_for_failover_end(&shard, Some(FailoverCause::Reparent))
        .unwrap()
        .expect("released to retry at the end of the window");
    drop(guard);
    assert_eq!(buffer.stats(&shard).evicted[EvictReason::WindowExceeded], 1);
    assert_eq!(buffer.free_slots(), 1000);
}

#[test]
fn the_timer_thread_ends_an_episode_at_max_failover_duration() {
    let buffer = FailoverBuffer::new(Config {
        enabled: true,
        window: Duration::from_millis(30),
        max_failover_duration: Duration::from_millis(30),
        ..Config::default()
    })
    .unwrap();
    let shard = buffer.register_shard("commerce", "0");
    drop(buffer.wait_for_failover_end(&shard, Some(FailoverCause::Reparent)));
    eventually("episode over", || buffer.state(&shard) == ShardState::Idle);
    assert_eq!(
        buffer.stats(&shard).stops[StopReason::MaxDurationExceeded],
        1
    );
}

#[test]
fn the_timer_thread_times_out_a_caller_at_its_deadline() {
    let buffer = FailoverBuffer::new(common::enabled()).unwrap();
    let shard = buffer.register_shard("commerce", "0");
    // Another caller's long wait is armed first; the short deadline must still wake the
    // timer thread early.
    let long = {
        let (buffer, shard) = (buffer.clone(), shard.clone());
        thread::spawn(move || {
            buffer
                .wait_for_failover_end_timeout(
                    &shard,
                    Some(FailoverCause::Reparent),
                    Instant::now() + Duration::from_secs(3600),
                )
                .map(|guard| guard.is_some())
        })
    };
    eventually("queued", || buffer.queued(&shard) == 1);
    let short = buffer.wait_for_failover_end_timeout(
        &shard,
        Some(FailoverCause::Reparent),
        Instant::now() + Duration::from_millis(20),
    );
    assert_eq!(short.map(|guard| guard.is_some()), Err(WaitError::TimedOut));
    assert_eq!(buffer.queued(&shard), 1);

    buffer.health(&shard, stamp(2, 2, true)).unwrap();
    assert_eq!(long.join().unwrap(), Ok(true));
    assert_eq!(buffer.free_slots(), 1000);
}
