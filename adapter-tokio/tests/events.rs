//! Episode events, as a `broadcast` stream delivered outside the lock. Issue 12, item 4.

mod support;

use std::time::Duration;

use failover_buffer_tokio::{EpisodeEvent, FailoverBuffer, FailoverCause, RetryGuard, StopReason};
use support::{config, serving, settle};
use tokio::sync::broadcast::Receiver;

fn received(events: &mut Receiver<EpisodeEvent>) -> Vec<EpisodeEvent> {
    std::iter::from_fn(|| events.try_recv().ok()).collect()
}

async fn held(
    buffer: &FailoverBuffer,
    shard: &failover_buffer_tokio::Shard,
) -> tokio::task::JoinHandle<Option<RetryGuard>> {
    let (buffer, shard) = (buffer.clone(), shard.clone());
    let task = tokio::spawn(async move {
        buffer
            .wait_for_failover_end(&shard, Some(FailoverCause::Reparent))
            .await
            .unwrap()
    });
    settle().await;
    task
}

#[tokio::test(start_paused = true)]
async fn an_episode_is_announced_step_by_step_in_order() {
    let buffer = FailoverBuffer::new(config()).unwrap();
    let shard = buffer.register_shard("commerce", "0");
    let id = shard.id();
    buffer.health(&shard, serving(1, 1)).unwrap();
    let mut events = buffer.events();

    let request = held(&buffer, &shard).await;
    assert_eq!(
        received(&mut events),
        [EpisodeEvent::FailoverStarted {
            shard: id,
            cause: FailoverCause::Reparent
        }]
    );
    tokio::time::advance(Duration::from_secs(2)).await;
    buffer.health(&shard, serving(2, 2)).unwrap();
    drop(request.await.unwrap());
    settle().await;
    buffer.shutdown().await;
    assert_eq!(
        received(&mut events),
        [
            EpisodeEvent::BufferingStopped {
                shard: id,
                reason: StopReason::NewPrimarySeen,
                duration: Duration::from_secs(2)
            },
            EpisodeEvent::DrainStarted {
                shard: id,
                queued: 1
            },
            EpisodeEvent::DrainFinished {
                shard: id,
                duration: Duration::ZERO
            },
            EpisodeEvent::Closed,
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_retry_failing_again_is_announced_as_a_paused_drain() {
    let buffer = FailoverBuffer::new(config()).unwrap();
    let shard = buffer.register_shard("commerce", "0");
    let id = shard.id();
    buffer.health(&shard, serving(1, 1)).unwrap();
    let mut events = buffer.events();
    let request = held(&buffer, &shard).await;
    buffer.health(&shard, serving(2, 2)).unwrap();
    let guard = request.await.unwrap().expect("released");
    let again = tokio::spawn(guard.retry_failed(FailoverCause::Reparent));
    settle().await;
    let seen = received(&mut events);
    assert_eq!(
        seen.last(),
        Some(&EpisodeEvent::DrainPaused {
            shard: id,
            queued: 1
        })
    );
    drop(again.await.unwrap().unwrap());
}

/// Events leave after the lock is released: a subscriber may call back into the buffer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_reacting_to_an_event_may_call_back_into_the_buffer() {
    let buffer = FailoverBuffer::new(config()).unwrap();
    let shard = buffer.register_shard("commerce", "0");
    let mut events = buffer.events();
    let watcher = tokio::spawn({
        let (buffer, shard) = (buffer.clone(), shard.clone());
        async move {
            let event = events.recv().await.unwrap();
            // Vitess's MarkShardNotServing: the router reports the primary not serving.
            buffer
                .health(
                    &shard,
                    failover_buffer_tokio::HealthStamp {
                        primary: failover_buffer_tokio::PrimaryId(1),
                        term: 1,
                        serving: false,
                    },
                )
                .unwrap();
            (event, buffer.queued(&shard))
        }
    });
    let request = tokio::spawn({
        let (buffer, shard) = (buffer.clone(), shard.clone());
        async move {
            buffer
                .wait_for_failover_end(&shard, Some(FailoverCause::Reparent))
                .await
                .map(|g| g.is_some())
        }
    });
    let (event, _) = tokio::time::timeout(Duration::from_secs(10), watcher)
        .await
        .expect("no deadlock")
        .unwrap();
    assert!(matches!(event, EpisodeEvent::FailoverStarted { .. }));
    buffer.health(&shard, serving(2, 2)).unwrap();
    assert_eq!(request.await.unwrap(), Ok(true));
}

#[tokio::test(start_paused = true)]
async fn a_subscriber_that_falls_behind_is_told_how_far() {
    let buffer = FailoverBuffer::new(config()).unwrap();
    let shard = buffer.register_shard("commerce", "0");
    let mut events = buffer.events();
    for term in 1..=400 {
        // Past `min_time_between_failovers`, so each failover error starts an episode.
        tokio::time::advance(Duration::from_secs(61)).await;
        let request = held(&buffer, &shard).await;
        buffer.health(&shard, serving(term, term)).unwrap();
        drop(request.await.unwrap());
        settle().await;
    }
    let lagged = events.try_recv();
    assert!(
        matches!(lagged, Err(tokio::sync::broadcast::error::TryRecvError::Lagged(n)) if n > 0),
        "{lagged:?}"
    );
}
