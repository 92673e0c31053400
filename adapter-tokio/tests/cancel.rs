//! Cancel safety: a dropped future or guard never strands a slot or loses a release.

mod support;

use std::future::{Future, poll_fn};
use std::task::Poll;
use std::time::Duration;

use failover_buffer_tokio::{Config, EvictReason, FailoverBuffer, FailoverCause, ShardState};
use support::{Client, Event, Log, config, events, serving, settle};

#[tokio::test(start_paused = true)]
async fn a_future_dropped_while_queued_frees_its_slot_and_counts_as_context_done() {
    let buffer = FailoverBuffer::new(config()).unwrap();
    let shard = buffer.register_shard("commerce", "0");
    // The client's own deadline is shorter than the failover.
    let wait = buffer.wait_for_failover_end(&shard, Some(FailoverCause::Reparent));
    let gave_up = tokio::time::timeout(Duration::from_secs(1), wait).await;

    assert!(gave_up.is_err());
    assert_eq!(buffer.queued(&shard), 0);
    assert_eq!(buffer.free_slots(), 10);
    assert_eq!(buffer.stats(&shard).evicted[EvictReason::ContextDone], 1);
    assert_eq!(buffer.state(&shard), ShardState::Buffering);
}

#[tokio::test(start_paused = true)]
async fn a_task_aborted_during_its_retry_drops_its_guard_and_the_drain_moves_on() {
    let buffer = FailoverBuffer::new(config()).unwrap();
    let shard = buffer.register_shard("commerce", "0");
    buffer.health(&shard, serving(1, 1)).unwrap();
    let log = Log::default();
    let first = Client::spawn(&buffer, &shard, 0, &log);
    let _second = Client::spawn(&buffer, &shard, 1, &log);
    settle().await;
    buffer.health(&shard, serving(2, 2)).unwrap();
    settle().await;
    assert_eq!(events(&log), [Event::Released(0)]);

    first.join.abort(); // mid-retry
    settle().await;
    assert_eq!(events(&log), [Event::Released(0), Event::Released(1)]);
    assert_eq!(buffer.held_slots(), 1, "only the second retry holds a slot");
}

#[tokio::test(start_paused = true)]
async fn a_guard_dropped_by_a_panicking_task_reports_its_retry_done() {
    let buffer = FailoverBuffer::new(config()).unwrap();
    let shard = buffer.register_shard("commerce", "0");
    buffer.health(&shard, serving(1, 1)).unwrap();
    let panicking = tokio::spawn({
        let (buffer, shard) = (buffer.clone(), shard.clone());
        async move {
            let cause = Some(FailoverCause::Reparent);
            let _guard = buffer.wait_for_failover_end(&shard, cause).await;
            panic!("the retry's handler panicked");
        }
    });
    let log = Log::default();
    let _second = Client::spawn(&buffer, &shard, 1, &log);
    settle().await;
    buffer.health(&shard, serving(2, 2)).unwrap();

    assert!(panicking.await.unwrap_err().is_panic());
    settle().await;
    assert_eq!(events(&log), [Event::Released(1)]);
    assert_eq!(buffer.stats(&shard).drained, 2);
}

#[tokio::test(start_paused = true)]
async fn a_release_that_races_with_the_drop_of_its_future_is_handed_back() {
    let buffer = FailoverBuffer::new(config()).unwrap();
    let shard = buffer.register_shard("commerce", "0");
    buffer.health(&shard, serving(1, 1)).unwrap();
    {
        // Boxed, so that `drop` below drops the future itself.
        let mut wait =
            Box::pin(buffer.wait_for_failover_end(&shard, Some(FailoverCause::Reparent)));
        let first_poll = poll_fn(|cx| Poll::Ready(wait.as_mut().poll(cx).is_pending())).await;
        assert!(first_poll, "held");
        let log = Log::default();
        let _second = Client::spawn(&buffer, &shard, 1, &log);
        settle().await;

        // The drain releases the first request; its future is dropped before it sees that.
        buffer.health(&shard, serving(2, 2)).unwrap();
        assert_eq!(buffer.held_slots(), 2);
        drop(wait);
        settle().await;
        assert_eq!(events(&log), [Event::Released(1)], "the drain moved on");
    }
    assert_eq!(buffer.held_slots(), 1);
    assert_eq!(buffer.stats(&shard).drained, 2);
}

#[tokio::test(start_paused = true)]
async fn a_future_dropped_before_its_first_poll_never_reaches_the_buffer() {
    let buffer = FailoverBuffer::new(config()).unwrap();
    let shard = buffer.register_shard("commerce", "0");
    drop(buffer.wait_for_failover_end(&shard, Some(FailoverCause::Reparent)));
    assert_eq!(buffer.stats(&shard).starts, 0);
    assert_eq!(buffer.state(&shard), ShardState::Idle);
}

/// A released request's future normally finds its release without the buffer's lock, in a
/// table sized for the buffer as it was made. A buffer grown since keeps the releases of
/// its new slots under the lock: collected, or handed back when dropped, all the same.
#[tokio::test(start_paused = true)]
async fn releases_in_slots_added_by_a_reconfigure_are_collected_and_handed_back() {
    let buffer = FailoverBuffer::new(Config {
        size: 1,
        drain_concurrency: 3,
        ..config()
    })
    .unwrap();
    buffer
        .reconfigure(Config {
            size: 3,
            drain_concurrency: 3,
            ..config()
        })
        .unwrap();
    let shard = buffer.register_shard("commerce", "0");
    buffer.health(&shard, serving(1, 1)).unwrap();
    let log = Log::default();
    let mut first = Client::spawn(&buffer, &shard, 0, &log);
    settle().await;
    let mut dropped = Box::pin(buffer.wait_for_failover_end(&shard, Some(FailoverCause::Reparent)));
    let held = poll_fn(|cx| Poll::Ready(dropped.as_mut().poll(cx).is_pending())).await;
    assert!(held, "held in the second slot");
    let mut third = Client::spawn(&buffer, &shard, 2, &log);
    settle().await;
    assert_eq!(buffer.held_slots(), 3);

    buffer.health(&shard, serving(2, 2)).unwrap();
    drop(dropped);
    settle().await;
    assert_eq!(events(&log), [Event::Released(0), Event::Released(2)]);
    assert_eq!(
        buffer.held_slots(),
        2,
        "the dropped release was handed back"
    );
    first.finish().await;
    third.finish().await;
    assert_eq!(buffer.held_slots(), 0);
    assert_eq!(buffer.stats(&shard).drained, 3);
}
