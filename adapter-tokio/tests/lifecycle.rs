//! Shutdown, and the driver task's life.

mod support;

use std::time::Duration;

use failover_buffer_tokio::{FailoverBuffer, FailoverCause, StopReason};
use support::{Event, Log, config, events, settle};

fn alive_tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

#[tokio::test(start_paused = true)]
async fn shutdown_releases_every_waiter_and_returns_once_all_retries_are_done() {
    let buffer = FailoverBuffer::new(config()).unwrap();
    let shard = buffer.register_shard("commerce", "0");
    let log = Log::default();
    let waiters: Vec<_> = (0..3)
        .map(|n| {
            let (buffer, shard, log) = (buffer.clone(), shard.clone(), log.clone());
            tokio::spawn(async move {
                let cause = Some(FailoverCause::Reparent);
                let guard = buffer.wait_for_failover_end(&shard, cause).await.unwrap();
                assert!(guard.is_some());
                log.lock().unwrap().push(Event::Released(n));
                // A retry that takes a while: shutdown waits for it.
                tokio::time::sleep(Duration::from_millis(100)).await;
            })
        })
        .collect();
    settle().await;
    assert_eq!(buffer.queued(&shard), 3);

    buffer.shutdown().await;
    assert!(buffer.is_closed());
    assert_eq!(
        events(&log),
        [Event::Released(0), Event::Released(1), Event::Released(2)]
    );
    assert_eq!(buffer.free_slots(), 10);
    assert_eq!(buffer.stats(&shard).stops[StopReason::Shutdown], 1);
    for waiter in waiters {
        waiter.await.unwrap();
    }

    // After the shutdown nothing is held, and the driver has ended.
    let cause = Some(FailoverCause::Reparent);
    assert!(
        buffer
            .wait_for_failover_end(&shard, cause)
            .await
            .unwrap()
            .is_none()
    );
    settle().await;
    assert_eq!(alive_tasks(), 0);
}

#[tokio::test(start_paused = true)]
async fn shutdown_of_an_idle_buffer_returns_at_once() {
    let buffer = FailoverBuffer::new(config()).unwrap();
    buffer.shutdown().await;
    assert!(buffer.is_closed());
    buffer.shutdown().await; // again: nothing more to wait for
}

#[tokio::test(start_paused = true)]
async fn the_driver_ends_when_the_last_handle_is_dropped() {
    let buffer = FailoverBuffer::new(config()).unwrap();
    let clone = buffer.clone();
    settle().await;
    assert_eq!(alive_tasks(), 1);
    drop(buffer);
    settle().await;
    assert_eq!(alive_tasks(), 1, "a clone is still alive");
    drop(clone);
    settle().await;
    assert_eq!(alive_tasks(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_shard_of_another_buffer_proceeds_and_is_counted_unknown() {
    let ours = FailoverBuffer::new(config()).unwrap();
    let theirs = FailoverBuffer::new(config()).unwrap();
    let _ours = ours.register_shard("commerce", "0");
    let foreign = theirs.register_shard("commerce", "0");
    let cause = Some(FailoverCause::Reparent);

    assert!(
        ours.wait_for_failover_end(&foreign, cause)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(ours.input_stats().unknown_shards, 1);
    assert_eq!(ours.held_slots(), 0);
}
