//! Shutdown, and the driver task's life.

mod support;

use std::time::Duration;

use failover_buffer_tokio::{FailoverBuffer, FailoverCause, Shard, StopReason};
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

#[tokio::test(start_paused = true)]
async fn a_shard_of_another_buffer_gets_definite_answers_from_every_call() {
    let ours = FailoverBuffer::new(config()).unwrap();
    let theirs = FailoverBuffer::new(config()).unwrap();
    let foreign = theirs.register_shard("commerce", "0");
    assert_eq!(
        ours.health(&foreign, support::serving(1, 1)),
        Err(failover_buffer_tokio::InputError::UnknownShard)
    );
    assert_eq!(
        ours.stats(&foreign),
        failover_buffer_tokio::ShardStats::default()
    );
    assert_eq!(
        ours.state(&foreign),
        failover_buffer_tokio::ShardState::Idle
    );
    assert_eq!(ours.queued(&foreign), 0);
    assert_eq!(ours.input_stats().unknown_shards, 1);
}

/// Issue 9, bug 1: a guard can put its request back in the queue, so it keeps the timer.
#[tokio::test(start_paused = true)]
async fn a_request_held_again_after_the_last_handle_is_gone_is_still_released() {
    let buffer = FailoverBuffer::new(config()).unwrap();
    let shard = buffer.register_shard("commerce", "0");
    buffer.health(&shard, support::serving(1, 1)).unwrap();
    let held = tokio::spawn({
        let (buffer, shard) = (buffer.clone(), shard.clone());
        async move {
            buffer
                .wait_for_failover_end(&shard, Some(FailoverCause::Reparent))
                .await
        }
    });
    settle().await;
    buffer.health(&shard, support::serving(2, 2)).unwrap();
    let guard = held.await.unwrap().unwrap().expect("released to retry");
    drop(buffer);
    settle().await;

    // The retry met the failover again: the young drain backs off and holds it once more.
    // Only the timer can release it now (no health input can arrive).
    let again = tokio::time::timeout(
        Duration::from_secs(3600),
        guard.retry_failed(FailoverCause::Reparent),
    )
    .await
    .expect("released by the buffer's timer, not left waiting");
    drop(again.unwrap().expect("released to retry again"));
    settle().await;
    assert_eq!(alive_tasks(), 0, "the driver ends with the last guard");
}

/// Issue 9, bug 2: a runtime without the time driver fails at `new`, not in a task.
#[test]
fn new_panics_at_once_in_a_runtime_without_the_time_driver() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let _entered = runtime.enter();
    let made = std::panic::catch_unwind(|| FailoverBuffer::new(config()));
    let panic = made.expect_err("a buffer without a timer must not be made");
    let message = panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default();
    assert!(message.contains("enable_time"), "{message}");
}

/// Issue 9, bug 3: a buffer whose runtime has shut down answers at once.
#[test]
fn a_buffer_whose_runtime_shut_down_releases_its_held_requests_and_stops_buffering() {
    let home = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (buffer, shard, elsewhere) = hold_one_then_shut_down(home);
    assert_eq!(buffer.stats(&shard).stops[StopReason::Shutdown], 1);
    // From now on, nothing is held: no timer could release it.
    let later = elsewhere.block_on(async {
        tokio::time::timeout(
            Duration::from_secs(10),
            buffer.wait_for_failover_end(&shard, Some(FailoverCause::Reparent)),
        )
        .await
    });
    assert!(later.expect("answered at once").unwrap().is_none());
    assert!(buffer.is_closed());
}

/// The same, when the home runtime shuts down before its driver task was ever polled: the
/// task is dropped unpolled, and the buffer must notice that too.
#[test]
fn a_buffer_whose_runtime_shut_down_before_its_driver_ran_releases_its_held_requests() {
    // A current-thread runtime runs its spawned tasks only while it blocks on something that
    // waits: `new` returns at once, so the driver task is never polled.
    let home = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (buffer, _, _) = hold_one_then_shut_down(home);
    assert!(buffer.is_closed());
}

/// Makes a buffer on `home`, holds one request on another runtime, shuts `home` down, and
/// checks that the request is released to retry. Returns the buffer, the shard and the
/// other runtime.
fn hold_one_then_shut_down(
    home: tokio::runtime::Runtime,
) -> (FailoverBuffer, Shard, tokio::runtime::Runtime) {
    let buffer = home
        .block_on(async { FailoverBuffer::new(config()) })
        .unwrap();
    let shard = buffer.register_shard("commerce", "0");
    let elsewhere = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let held = elsewhere.spawn({
        let (buffer, shard) = (buffer.clone(), shard.clone());
        async move {
            buffer
                .wait_for_failover_end(&shard, Some(FailoverCause::Reparent))
                .await
                .map(|guard| guard.is_some())
        }
    });
    elsewhere.block_on(settle());
    assert_eq!(
        buffer.queued(&shard),
        1,
        "held while the home runtime lives"
    );

    drop(home);
    let answer =
        elsewhere.block_on(async { tokio::time::timeout(Duration::from_secs(10), held).await });
    let released = answer
        .expect("answered once the timer's runtime is gone")
        .unwrap();
    assert_eq!(released, Ok(true), "released to retry");
    (buffer, shard, elsewhere)
}
