//! `FailoverBuffer::shutdown` as a handle: progress, cancel, and its end (issue 11 part 3),
//! on tokio's paused clock.

mod support;

use std::time::Duration;

use failover_buffer_tokio::plan::DrainError;
use failover_buffer_tokio::{
    Config, FailoverBuffer, FailoverCause, ShardState, ShutdownEnd, ShutdownPhase,
};
use support::{config, serving, settle};

/// `n` requests held on `shard`, each task returning once released (keeping its guard for
/// `retry` of simulated time).
fn hold(
    buffer: &FailoverBuffer,
    shard: &failover_buffer_tokio::Shard,
    n: usize,
    retry: Duration,
) -> Vec<tokio::task::JoinHandle<bool>> {
    (0..n)
        .map(|_| {
            let (buffer, shard) = (buffer.clone(), shard.clone());
            tokio::spawn(async move {
                let cause = Some(FailoverCause::Reparent);
                let guard = buffer.wait_for_failover_end(&shard, cause).await.unwrap();
                tokio::time::sleep(retry).await;
                guard.is_some()
            })
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_shutdown_keeps_held_requests_which_the_new_primary_then_releases() {
    let buffer = FailoverBuffer::new(config()).unwrap();
    let shard = buffer.register_shard("commerce", "0");
    buffer.health(&shard, serving(1, 1)).unwrap();
    let held = hold(&buffer, &shard, 3, Duration::from_millis(100));
    settle().await;
    assert_eq!(buffer.queued(&shard), 3);

    let shutdown = buffer.shutdown();
    settle().await;
    let progress = shutdown.progress().unwrap();
    assert_eq!(progress.phase, Some(ShutdownPhase::ReleaseQueued));
    assert_eq!((progress.queued, progress.retrying), (2, 1));

    shutdown.cancel().unwrap();
    assert_eq!(shutdown.clone().await, ShutdownEnd::Cancelled);
    assert!(!buffer.is_closed());
    assert_eq!(buffer.state(&shard), ShardState::Buffering);
    // Time passes: the released one finishes, the two others stay held.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(buffer.queued(&shard), 2);

    // The new primary: released normally, in order.
    buffer.health(&shard, serving(2, 2)).unwrap();
    for task in held {
        assert!(task.await.unwrap());
    }
    assert_eq!(buffer.held_slots(), 0);
    assert_eq!(buffer.state(&shard), ShardState::Idle);
    assert_eq!(shutdown.cancel(), Err(DrainError::NotRunning));
}

#[tokio::test(start_paused = true)]
async fn dropping_the_handle_or_its_future_does_not_cancel_the_shutdown() {
    let buffer = FailoverBuffer::new(config()).unwrap();
    let shard = buffer.register_shard("commerce", "0");
    let held = hold(&buffer, &shard, 2, Duration::from_millis(100));
    settle().await;
    let shutdown = buffer.shutdown();
    let timed_out = tokio::time::timeout(Duration::from_millis(10), shutdown.ended()).await;
    assert!(timed_out.is_err(), "still running");
    drop(shutdown);
    // A new call returns a handle to the same shutdown, which ends by itself.
    assert_eq!(buffer.shutdown().await, ShutdownEnd::Closed);
    assert!(buffer.is_closed());
    for task in held {
        assert!(task.await.unwrap());
    }
}

#[tokio::test(start_paused = true)]
async fn the_grace_closes_the_buffer_while_a_retry_still_runs_and_cancel_is_then_refused() {
    let buffer = FailoverBuffer::new(Config {
        shutdown_grace: Duration::from_secs(1),
        ..config()
    })
    .unwrap();
    let shard = buffer.register_shard("commerce", "0");
    let held = hold(&buffer, &shard, 1, Duration::from_secs(5));
    settle().await;
    let start = tokio::time::Instant::now();
    let shutdown = buffer.shutdown();
    assert_eq!(shutdown.clone().await, ShutdownEnd::Closed);
    assert_eq!(start.elapsed(), Duration::from_secs(1));
    assert_eq!(buffer.held_slots(), 1, "the retry still runs");
    assert_eq!(shutdown.cancel(), Err(DrainError::Finished));
    for task in held {
        assert!(task.await.unwrap());
    }
    assert_eq!(buffer.held_slots(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_shutdown_begun_again_after_a_cancel_closes_and_the_old_handle_says_cancelled() {
    let buffer = FailoverBuffer::new(config()).unwrap();
    let shard = buffer.register_shard("commerce", "0");
    let held = hold(&buffer, &shard, 2, Duration::from_millis(100));
    settle().await;
    let first = buffer.shutdown();
    first.cancel().unwrap();
    let second = buffer.shutdown();
    assert_eq!(first.end(), Some(ShutdownEnd::Cancelled));
    assert_eq!(first.progress(), None);
    assert_eq!(second.await, ShutdownEnd::Closed);
    for task in held {
        assert!(task.await.unwrap());
    }
}
