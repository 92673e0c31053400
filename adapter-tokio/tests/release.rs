//! When held requests are released: the end of a failover (FIFO, paced by drain
//! concurrency), the window, the max failover duration, and a drain that backs off.

mod support;

use std::time::Duration;

use failover_buffer_tokio::{
    BufferError, Config, EvictReason, FailoverBuffer, FailoverCause, InputError, ShardState,
    StopReason, TopologyEvent,
};
use support::{Client, Event, Log, advance, config, events, serving, settle};

#[tokio::test(start_paused = true)]
async fn buffered_requests_drain_in_fifo_order_at_most_drain_concurrency_at_a_time() {
    let buffer = FailoverBuffer::new(Config {
        drain_concurrency: 2,
        ..config()
    })
    .unwrap();
    let shard = buffer.register_shard("commerce", "0");
    buffer.health(&shard, serving(1, 1)).unwrap();
    let log = Log::default();
    let mut clients = Vec::new();
    for n in 0..5 {
        clients.push(Client::spawn(&buffer, &shard, n, &log));
        settle().await; // queued in this order
    }
    assert_eq!(buffer.queued(&shard), 5);
    assert!(
        events(&log).is_empty(),
        "nobody is released before the failover ends"
    );

    advance(Duration::from_secs(2)).await;
    buffer.health(&shard, serving(2, 2)).unwrap();
    settle().await;
    assert_eq!(events(&log), [Event::Released(0), Event::Released(1)]);
    assert_eq!(buffer.state(&shard), ShardState::Draining);

    // Each finished retry lets exactly the next one go.
    for client in &mut clients {
        client.finish().await;
    }
    use Event::{Done, Released};
    assert_eq!(
        events(&log),
        [
            Released(0),
            Released(1),
            Done(0),
            Released(2),
            Done(1),
            Released(3),
            Done(2),
            Released(4),
            Done(3),
            Done(4),
        ]
    );
    assert_eq!(buffer.state(&shard), ShardState::Idle);
    assert_eq!(buffer.free_slots(), 10);
    let stats = buffer.stats(&shard);
    assert_eq!((stats.buffered, stats.drained), (5, 5));
    assert_eq!(stats.stops[StopReason::NewPrimarySeen], 1);
}

#[tokio::test(start_paused = true)]
async fn first_attempts_are_held_too_while_the_shard_buffers() {
    let buffer = FailoverBuffer::new(config()).unwrap();
    let shard = buffer.register_shard("commerce", "0");
    buffer.health(&shard, serving(1, 1)).unwrap();
    let log = Log::default();
    let mut failed_over = Client::spawn(&buffer, &shard, 0, &log);
    settle().await;

    let first_attempt = tokio::spawn({
        let (buffer, shard) = (buffer.clone(), shard.clone());
        async move {
            buffer
                .wait_for_failover_end(&shard, None)
                .await
                .map(|g| g.is_some())
        }
    });
    settle().await;
    assert_eq!(buffer.queued(&shard), 2);

    buffer.health(&shard, serving(2, 2)).unwrap();
    failed_over.finish().await;
    assert_eq!(first_attempt.await.unwrap(), Ok(true));
}

#[tokio::test(start_paused = true)]
async fn first_attempt_proceeds_is_false_exactly_while_the_shard_buffers() {
    let buffer = FailoverBuffer::new(config()).unwrap();
    let shard = buffer.register_shard("commerce", "0");
    let other = buffer.register_shard("commerce", "1");
    buffer.health(&shard, serving(1, 1)).unwrap();
    assert!(buffer.first_attempt_proceeds(&shard), "idle: send at once");

    let log = Log::default();
    let mut failed_over = Client::spawn(&buffer, &shard, 0, &log);
    settle().await;
    assert_eq!(buffer.state(&shard), ShardState::Buffering);
    assert!(!buffer.first_attempt_proceeds(&shard), "buffering: ask");
    assert!(
        buffer.first_attempt_proceeds(&other),
        "another shard is not held up"
    );

    // The failover ends: the drain begins, and first attempts go straight to the new primary.
    buffer.health(&shard, serving(2, 2)).unwrap();
    settle().await;
    assert_eq!(buffer.state(&shard), ShardState::Draining);
    assert!(
        buffer.first_attempt_proceeds(&shard),
        "draining: send at once"
    );
    failed_over.finish().await;
    assert!(buffer.first_attempt_proceeds(&shard));
    assert_eq!(
        buffer.stats(&shard).buffered,
        1,
        "the check holds and counts nothing"
    );
}

#[tokio::test(start_paused = true)]
async fn a_request_held_for_the_whole_window_is_released_to_retry() {
    let buffer = FailoverBuffer::new(Config {
        window: Duration::from_secs(1),
        ..config()
    })
    .unwrap();
    let shard = buffer.register_shard("commerce", "0");
    let log = Log::default();
    let mut client = Client::spawn(&buffer, &shard, 0, &log);
    settle().await;

    advance(Duration::from_millis(999)).await;
    assert!(events(&log).is_empty());
    advance(Duration::from_millis(1)).await;
    assert_eq!(events(&log), [Event::Released(0)]);
    // Still buffering: the window releases one request, it does not end the failover.
    assert_eq!(buffer.state(&shard), ShardState::Buffering);
    assert_eq!(buffer.stats(&shard).evicted[EvictReason::WindowExceeded], 1);
    assert_eq!(
        buffer.free_slots(),
        9,
        "the retry holds its slot until it is done"
    );

    client.finish().await;
    assert_eq!(buffer.free_slots(), 10);
}

#[tokio::test(start_paused = true)]
async fn a_failover_longer_than_max_duration_stops_and_drains() {
    let buffer = FailoverBuffer::new(Config {
        window: Duration::from_secs(10),
        max_failover_duration: Duration::from_secs(12),
        ..config()
    })
    .unwrap();
    let shard = buffer.register_shard("commerce", "0");
    let log = Log::default();
    let mut first = Client::spawn(&buffer, &shard, 0, &log);
    settle().await;
    advance(Duration::from_secs(5)).await;
    let _second = Client::spawn(&buffer, &shard, 1, &log);
    settle().await;

    // t = 10 s: the first request's window.
    advance(Duration::from_secs(5)).await;
    assert_eq!(events(&log), [Event::Released(0)]);
    first.finish().await;
    // t = 12 s: the episode's max duration, well within the second request's window.
    advance(Duration::from_millis(1999)).await;
    assert_eq!(events(&log), [Event::Released(0), Event::Done(0)]);
    advance(Duration::from_millis(1)).await;
    assert_eq!(
        events(&log),
        [Event::Released(0), Event::Done(0), Event::Released(1)]
    );
    let stats = buffer.stats(&shard);
    assert_eq!(stats.stops[StopReason::MaxDurationExceeded], 1);
    assert_eq!(stats.last_failover_duration, Duration::from_secs(12));
}

#[tokio::test(start_paused = true)]
async fn a_retry_that_meets_the_failover_again_pauses_the_drain_and_is_held_again() {
    let buffer = FailoverBuffer::new(config()).unwrap();
    let shard = buffer.register_shard("commerce", "0");
    buffer.health(&shard, serving(1, 1)).unwrap();
    let retrying = tokio::spawn({
        let (buffer, shard) = (buffer.clone(), shard.clone());
        async move {
            let cause = Some(FailoverCause::Reparent);
            let guard = buffer.wait_for_failover_end(&shard, cause).await.unwrap();
            assert!(guard.is_some());
            // The new primary is not writable yet: this retry fails over again.
            drop(guard);
            buffer
                .wait_for_failover_end(&shard, cause)
                .await
                .map(|g| g.is_some())
        }
    });
    settle().await;
    let log = Log::default();
    let mut behind = Client::spawn(&buffer, &shard, 1, &log);
    settle().await;

    // The drain releases the retrying request, which fails over again: its guard's drop
    // releases the next request, and its new attempt calls the drain off.
    buffer.health(&shard, serving(2, 2)).unwrap();
    settle().await;
    assert_eq!(events(&log), [Event::Released(1)]);
    assert_eq!(buffer.state(&shard), ShardState::Buffering);
    assert_eq!(buffer.stats(&shard).drains_paused, 1);
    assert!(!retrying.is_finished(), "held again");

    // The drain resumes after the back-off (1 s by default).
    behind.finish().await;
    advance(Duration::from_secs(1)).await;
    assert_eq!(retrying.await.unwrap(), Ok(true));
}

/// With one request held, its own retry is the whole drain: by the time it fails over again
/// the drain has finished. `RetryGuard::retry_failed` still backs the drain off and holds it.
#[tokio::test(start_paused = true)]
async fn a_lone_retry_that_fails_over_again_is_held_again_through_retry_failed() {
    let buffer = FailoverBuffer::new(config()).unwrap();
    let shard = buffer.register_shard("commerce", "0");
    buffer.health(&shard, serving(1, 1)).unwrap();
    let retrying = tokio::spawn({
        let (buffer, shard) = (buffer.clone(), shard.clone());
        async move {
            let cause = FailoverCause::Reparent;
            let guard = buffer.wait_for_failover_end(&shard, Some(cause)).await;
            let guard = guard.unwrap().expect("released to retry");
            // The new primary is not writable yet: this retry fails over again.
            guard.retry_failed(cause).await.map(|g| g.is_some())
        }
    });
    settle().await;
    buffer.health(&shard, serving(2, 2)).unwrap();
    settle().await;
    assert_eq!(buffer.state(&shard), ShardState::Buffering);
    assert_eq!(buffer.stats(&shard).drains_paused, 1);
    assert!(!retrying.is_finished(), "held again");

    // The primary becomes writable: the next serving stamp resumes the drain.
    buffer.health(&shard, serving(2, 2)).unwrap();
    assert_eq!(retrying.await.unwrap(), Ok(true));
    settle().await;
    assert_eq!(buffer.held_slots(), 0);
    assert_eq!(buffer.state(&shard), ShardState::Idle);
}

/// A `retry_failed` future dropped before it ran reports the retry done: nothing stranded.
#[tokio::test(start_paused = true)]
async fn a_retry_failed_future_dropped_unpolled_reports_the_retry_done() {
    let buffer = FailoverBuffer::new(config()).unwrap();
    let shard = buffer.register_shard("commerce", "0");
    let waiting = tokio::spawn({
        let (buffer, shard) = (buffer.clone(), shard.clone());
        async move {
            let cause = Some(FailoverCause::Reparent);
            buffer.wait_for_failover_end(&shard, cause).await
        }
    });
    settle().await;
    buffer.health(&shard, serving(2, 2)).unwrap();
    let guard = waiting.await.unwrap().unwrap().expect("released to retry");
    assert_eq!(buffer.held_slots(), 1);
    drop(guard.retry_failed(FailoverCause::Reparent));
    settle().await;
    assert_eq!(buffer.held_slots(), 0);
    assert_eq!(buffer.state(&shard), ShardState::Idle);
}

#[tokio::test(start_paused = true)]
async fn a_stale_health_stamp_is_refused_and_changes_nothing() {
    let buffer = FailoverBuffer::new(config()).unwrap();
    let shard = buffer.register_shard("commerce", "0");
    buffer.health(&shard, serving(2, 5)).unwrap();
    assert_eq!(
        buffer.health(&shard, serving(1, 4)),
        Err(InputError::StaleHealthStamp {
            term: 4,
            highest: 5
        })
    );
    assert_eq!(buffer.input_stats().stale_health_stamps, 1);
}

#[tokio::test(start_paused = true)]
async fn a_shard_resharded_away_fails_its_held_requests_with_shard_missing() {
    let buffer = FailoverBuffer::new(config()).unwrap();
    let shard = buffer.register_shard("commerce", "-80");
    let log = Log::default();
    let _clients: Vec<_> = (0..2)
        .map(|n| Client::spawn(&buffer, &shard, n, &log))
        .collect();
    settle().await;

    buffer
        .topology(&shard, TopologyEvent::ShardMissing)
        .unwrap();
    settle().await;
    assert_eq!(
        events(&log),
        [
            Event::Failed(0, BufferError::ShardMissing),
            Event::Failed(1, BufferError::ShardMissing)
        ]
    );
    assert_eq!(
        buffer.stats(&shard).stops[StopReason::ReshardingComplete],
        1
    );
    assert_eq!(buffer.free_slots(), 10);
}

#[tokio::test(start_paused = true)]
async fn a_dry_run_shard_holds_nothing_but_counts_what_it_would_have_held() {
    let buffer = FailoverBuffer::new(Config {
        enabled: false,
        dry_run: true,
        ..config()
    })
    .unwrap();
    let shard = buffer.register_shard("commerce", "0");
    let cause = Some(FailoverCause::Reparent);
    assert!(
        buffer
            .wait_for_failover_end(&shard, cause)
            .await
            .unwrap()
            .is_none()
    );
    // The episode runs, so first attempts take the slow path and are counted too.
    assert!(
        buffer
            .wait_for_failover_end(&shard, None)
            .await
            .unwrap()
            .is_none()
    );
    let stats = buffer.stats(&shard);
    assert_eq!((stats.starts, stats.buffered_dry_run), (1, 2));
    assert_eq!(buffer.held_slots(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_deadline_that_moves_earlier_re_arms_the_timer() {
    let buffer = FailoverBuffer::new(config()).unwrap();
    // Shard "0" holds a request: the timer is armed for its window, at 10 s.
    let waiting = buffer.register_shard("commerce", "0");
    let log = Log::default();
    let _held = Client::spawn(&buffer, &waiting, 0, &log);
    settle().await;
    advance(Duration::from_secs(2)).await;

    // Shard "1" pauses a drain at 2 s: it resumes after the 1 s back-off, well before 10 s.
    let pausing = buffer.register_shard("commerce", "1");
    buffer.health(&pausing, serving(1, 1)).unwrap();
    let retrying = tokio::spawn({
        let (buffer, shard) = (buffer.clone(), pausing.clone());
        async move {
            let cause = Some(FailoverCause::Reparent);
            let first = buffer.wait_for_failover_end(&shard, cause).await.unwrap();
            drop(first);
            buffer
                .wait_for_failover_end(&shard, cause)
                .await
                .map(|g| g.is_some())
        }
    });
    let mut behind = Client::spawn(&buffer, &pausing, 1, &log);
    settle().await;
    buffer.health(&pausing, serving(2, 2)).unwrap();
    settle().await;
    behind.finish().await;
    assert_eq!(buffer.state(&pausing), ShardState::Buffering);

    advance(Duration::from_millis(999)).await;
    assert!(!retrying.is_finished());
    advance(Duration::from_millis(1)).await;
    assert!(retrying.is_finished(), "released at 3 s, not at 10 s");
    assert_eq!(retrying.await.unwrap(), Ok(true));
}

#[tokio::test(start_paused = true)]
async fn a_released_requests_guard_names_its_shard_and_ticket() {
    let buffer = FailoverBuffer::new(Config {
        window: Duration::from_secs(1),
        ..config()
    })
    .unwrap();
    buffer.register_shard("commerce", "0");
    let shard = buffer.register_shard("customer", "-80");
    let wait = buffer.wait_for_failover_end(&shard, Some(FailoverCause::Reparent));
    let (guard, ()) = tokio::join!(wait, advance(Duration::from_secs(1)));
    let guard = guard.unwrap().expect("released by its window");

    assert_eq!(guard.shard_id(), shard.id());
    assert_eq!(
        format!("{guard:?}"),
        format!(
            "RetryGuard {{ keyspace: \"customer\", shard: \"-80\", ticket: {:?} }}",
            guard.ticket()
        )
    );
}
