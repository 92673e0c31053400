//! Fair sharing through the adapter (issue 15): `Config::eviction` and
//! `Config::max_per_shard` decide who makes way when a second shard fails over into a full
//! buffer.

mod support;

use failover_buffer_tokio::{
    BufferError, Config, EvictReason, Eviction, FailoverBuffer, SkipReason,
};
use support::{Client, Event, Log, config, events, serving, settle};

#[tokio::test(start_paused = true)]
async fn oldest_anywhere_gives_a_second_failing_shard_the_oldest_slot() {
    let buffer = FailoverBuffer::new(Config {
        size: 2,
        eviction: Eviction::OldestAnywhere,
        ..config()
    })
    .unwrap();
    let a = buffer.register_shard("commerce", "-80");
    let b = buffer.register_shard("commerce", "80-");
    let log = Log::default();
    let _a: Vec<_> = (0..2)
        .map(|n| Client::spawn(&buffer, &a, n, &log))
        .collect();
    settle().await;
    let _b = Client::spawn(&buffer, &b, 2, &log);
    settle().await;

    assert_eq!(events(&log), [Event::Failed(0, BufferError::Evicted)]);
    assert_eq!((buffer.queued(&a), buffer.queued(&b)), (1, 1));
    assert_eq!(buffer.stats(&a).evicted[EvictReason::BufferFull], 1);
    assert_eq!(buffer.stats(&b).skipped[SkipReason::BufferFull], 0);

    buffer.health(&b, serving(3, 2)).unwrap();
    settle().await;
    assert_eq!(events(&log)[1], Event::Released(2));
}

#[tokio::test(start_paused = true)]
async fn with_a_cap_the_second_shard_is_held_and_the_first_pays_with_its_own_oldest() {
    let buffer = FailoverBuffer::new(Config {
        size: 2,
        max_per_shard: Some(1),
        ..config()
    })
    .unwrap();
    let a = buffer.register_shard("commerce", "-80");
    let b = buffer.register_shard("commerce", "80-");
    let log = Log::default();
    let _a: Vec<_> = (0..2)
        .map(|n| Client::spawn(&buffer, &a, n, &log))
        .collect();
    settle().await;
    assert_eq!(events(&log), [Event::Failed(0, BufferError::Evicted)]);
    let _b = Client::spawn(&buffer, &b, 2, &log);
    settle().await;

    assert_eq!(events(&log).len(), 1, "the second shard's request is held");
    assert_eq!((buffer.queued(&a), buffer.queued(&b)), (1, 1));
    buffer.check_invariants().unwrap();
}

/// A byte budget of 10: a held 6-byte request makes way for a second 6-byte one, and a
/// request larger than the budget is refused at once.
#[tokio::test(start_paused = true)]
async fn sized_requests_count_against_the_byte_budget() {
    let buffer = FailoverBuffer::new(Config {
        max_bytes: Some(10),
        ..config()
    })
    .unwrap();
    let shard = buffer.register_shard("commerce", "0");
    let cause = Some(failover_buffer_tokio::FailoverCause::Reparent);
    let first = {
        let (buffer, shard) = (buffer.clone(), shard.clone());
        tokio::spawn(async move {
            buffer
                .wait_for_failover_end_sized(&shard, cause, 6)
                .await
                .map(|g| g.is_some())
        })
    };
    settle().await;
    assert_eq!(buffer.held_bytes(), 6);
    let second = {
        let (buffer, shard) = (buffer.clone(), shard.clone());
        tokio::spawn(async move {
            buffer
                .wait_for_failover_end_sized(&shard, cause, 6)
                .await
                .map(|g| g.is_some())
        })
    };
    settle().await;
    assert_eq!(first.await.unwrap(), Err(BufferError::Evicted));
    assert_eq!(buffer.stats(&shard).bytes_held, 6);
    assert_eq!(
        buffer
            .wait_for_failover_end_sized(&shard, cause, 11)
            .await
            .map(|g| g.is_some()),
        Err(BufferError::BufferFull)
    );
    buffer.health(&shard, serving(3, 2)).unwrap();
    assert_eq!(second.await.unwrap(), Ok(true));
    settle().await;
    assert_eq!(buffer.held_bytes(), 0);
    assert_eq!(buffer.stats(&shard).peak_bytes, 6);
}
