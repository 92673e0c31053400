//! The core's timers, fired on a manual clock: the window releases a request held too long,
//! max failover duration ends the whole episode.

mod common;

use std::thread;
use std::time::Duration;

use common::{eventually, manual, stamp};
use failover_buffer_std::{Config, EvictReason, FailoverCause, ShardState, StopReason};

#[test]
fn a_request_held_for_the_whole_window_is_released_to_retry() {
    let (buffer, clock) = manual(Config {
        enabled: true,
        window: Duration::from_secs(1),
        ..Config::default()
    });
    let shard = buffer.register_shard("commerce", "0");
    buffer.health(&shard, stamp(1, 1, true)).unwrap();
    let worker = {
        let (buffer, shard) = (buffer.clone(), shard.clone());
        thread::spawn(move || buffer.wait_for_failover_end(&shard, Some(FailoverCause::Reparent)))
    };
    eventually("queued", || buffer.queued(&shard) == 1);

    clock.advance(Duration::from_millis(999));
    buffer.tick_now();
    assert_eq!(buffer.queued(&shard), 1, "not yet: the window is 1 s");

    clock.advance(Duration::from_millis(1));
    buffer.tick_now();
    let guard = worker.join().unwrap().unwrap().expect("released to retry");
    // The episode goes on; only this request has left the queue.
    assert_eq!(buffer.state(&shard), ShardState::Buffering);
    assert_eq!(buffer.stats(&shard).evicted[EvictReason::WindowExceeded], 1);
    drop(guard);
    assert_eq!(buffer.free_slots(), 1000);
}

#[test]
fn max_failover_duration_ends_buffering_and_drains_everyone() {
    let (buffer, clock) = manual(Config {
        enabled: true,
        window: Duration::from_secs(5),
        max_failover_duration: Duration::from_secs(5),
        drain_concurrency: 4,
        ..Config::default()
    });
    let shard = buffer.register_shard("commerce", "0");
    buffer.health(&shard, stamp(1, 1, true)).unwrap();
    let mut workers = Vec::new();
    for i in 0..3 {
        workers.push({
            let (buffer, shard) = (buffer.clone(), shard.clone());
            thread::spawn(move || {
                buffer.wait_for_failover_end(&shard, Some(FailoverCause::Reparent))
            })
        });
        eventually("queued", || buffer.queued(&shard) == i + 1);
        // The later requests' windows would end after the episode's max duration.
        clock.advance(Duration::from_secs(1));
    }

    clock.advance(Duration::from_secs(2));
    buffer.tick_now();
    for w in workers {
        drop(w.join().unwrap().unwrap().expect("released to retry"));
    }
    let stats = buffer.stats(&shard);
    assert_eq!(stats.stops[StopReason::MaxDurationExceeded], 1);
    assert_eq!(stats.last_failover_duration, Duration::from_secs(5));
    assert_eq!((stats.drained, stats.evicted.total()), (3, 0));
    assert_eq!(buffer.state(&shard), ShardState::Idle);
}
