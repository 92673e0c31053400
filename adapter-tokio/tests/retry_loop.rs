//! The retry loop in one call: `wait_to_retry` takes the optional guard, `run` runs the
//! whole loop with a bound on attempts. Issue 12, items 1 and 2.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use failover_buffer_tokio::{BufferError, FailoverBuffer, FailoverCause, RunError, ShardState};
use support::{config, serving, settle};

fn classify(e: &&'static str) -> Option<FailoverCause> {
    (*e == "READONLY").then_some(FailoverCause::Reparent)
}

/// The bug of the old README snippet: on a healthy shard the first attempt's guard is
/// `None`, and a failover error must still be buffered, not returned to the client.
#[tokio::test(start_paused = true)]
async fn run_buffers_a_failover_error_met_on_a_healthy_shard_and_answers_from_the_new_primary() {
    let buffer = FailoverBuffer::new(config()).unwrap();
    let shard = buffer.register_shard("commerce", "0");
    buffer.health(&shard, serving(1, 1)).unwrap();
    let attempts = Arc::new(AtomicU32::new(0));
    let request = tokio::spawn({
        let (buffer, shard, attempts) = (buffer.clone(), shard.clone(), Arc::clone(&attempts));
        async move {
            buffer
                .run(
                    &shard,
                    3,
                    || {
                        let n = attempts.fetch_add(1, Ordering::SeqCst);
                        async move {
                            if n == 0 {
                                Err("READONLY")
                            } else {
                                Ok("written")
                            }
                        }
                    },
                    classify,
                )
                .await
        }
    });
    settle().await;
    assert_eq!(buffer.queued(&shard), 1, "the retry is held, not failed");
    tokio::time::advance(Duration::from_secs(1)).await;
    buffer.health(&shard, serving(2, 2)).unwrap();
    assert_eq!(request.await.unwrap(), Ok("written"));
    assert_eq!(attempts.load(Ordering::SeqCst), 2);
    assert_eq!(buffer.stats(&shard).drained, 1);
    assert_eq!(buffer.held_slots(), 0);
}

#[tokio::test(start_paused = true)]
async fn run_returns_an_error_that_is_not_a_failover_at_once() {
    let buffer = FailoverBuffer::new(config()).unwrap();
    let shard = buffer.register_shard("commerce", "0");
    let answer = buffer
        .run(
            &shard,
            3,
            || async { Err::<(), _>("syntax error") },
            classify,
        )
        .await;
    assert_eq!(answer, Err(RunError::Attempt("syntax error")));
    assert_eq!(buffer.state(&shard), ShardState::Idle);
}

#[tokio::test(start_paused = true)]
async fn run_makes_at_most_max_attempts_and_returns_the_last_error() {
    let buffer = FailoverBuffer::new(config()).unwrap();
    let shard = buffer.register_shard("commerce", "0");
    let attempts = AtomicU32::new(0);
    // The primary never comes back: each held retry is released by its window.
    let answer = buffer
        .run(
            &shard,
            3,
            || {
                attempts.fetch_add(1, Ordering::SeqCst);
                async { Err::<(), _>("READONLY") }
            },
            classify,
        )
        .await;
    assert_eq!(answer, Err(RunError::Attempt("READONLY")));
    assert_eq!(attempts.load(Ordering::SeqCst), 3);
    assert_eq!(buffer.held_slots(), 0, "every guard was dropped");
}

#[tokio::test(start_paused = true)]
async fn run_with_zero_attempts_still_makes_one() {
    let buffer = FailoverBuffer::new(config()).unwrap();
    let shard = buffer.register_shard("commerce", "0");
    let answer = buffer
        .run(&shard, 0, || async { Ok::<_, &str>(7) }, classify)
        .await;
    assert_eq!(answer, Ok(7));
}

#[tokio::test(start_paused = true)]
async fn run_returns_the_buffers_refusal() {
    let buffer = FailoverBuffer::new(failover_buffer_tokio::Config {
        size: 1,
        ..config()
    })
    .unwrap();
    let shard = buffer.register_shard("commerce", "0");
    let first = tokio::spawn({
        let (buffer, shard) = (buffer.clone(), shard.clone());
        async move {
            buffer
                .run(&shard, 3, || async { Err::<(), _>("READONLY") }, classify)
                .await
        }
    });
    settle().await;
    // The second request's retry evicts the first (the oldest) from the one slot.
    let second = tokio::spawn({
        let (buffer, shard) = (buffer.clone(), shard.clone());
        async move {
            buffer
                .run(&shard, 3, || async { Err::<(), _>("READONLY") }, classify)
                .await
        }
    });
    settle().await;
    assert_eq!(
        first.await.unwrap(),
        Err(RunError::Buffer(BufferError::Evicted))
    );
    second.abort();
}

/// With a guard, `wait_to_retry` is `retry_failed`: a young drain pauses and holds the
/// request again.
#[tokio::test(start_paused = true)]
async fn wait_to_retry_with_a_guard_pauses_a_young_drain() {
    let buffer = FailoverBuffer::new(config()).unwrap();
    let shard = buffer.register_shard("commerce", "0");
    buffer.health(&shard, serving(1, 1)).unwrap();
    let request = tokio::spawn({
        let (buffer, shard) = (buffer.clone(), shard.clone());
        async move {
            let cause = FailoverCause::Reparent;
            let guard = buffer.wait_to_retry(&shard, None, cause).await.unwrap();
            assert!(guard.is_some(), "released");
            // The new primary is not writable yet: held once more.
            let again = buffer.wait_to_retry(&shard, guard, cause).await.unwrap();
            again.is_some()
        }
    });
    settle().await;
    buffer.health(&shard, serving(2, 2)).unwrap();
    settle().await;
    assert_eq!(buffer.stats(&shard).drains_paused, 1);
    assert_eq!(buffer.state(&shard), ShardState::Buffering);
    assert!(
        request.await.unwrap(),
        "released again after the drain back-off"
    );
}
