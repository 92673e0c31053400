//! A full buffer: the shard's oldest request makes room, or the newcomer is refused.

mod support;

use failover_buffer_tokio::{
    BufferError, Config, EvictReason, FailoverBuffer, FailoverCause, SkipReason,
};
use support::{Client, Event, Log, config, events, serving, settle};

#[tokio::test(start_paused = true)]
async fn when_full_the_oldest_request_of_the_shard_is_evicted_for_the_newest() {
    let buffer = FailoverBuffer::new(Config {
        size: 2,
        ..config()
    })
    .unwrap();
    let shard = buffer.register_shard("commerce", "0");
    let log = Log::default();
    let _clients: Vec<_> = (0..3)
        .map(|n| Client::spawn(&buffer, &shard, n, &log))
        .collect();
    settle().await;

    assert_eq!(events(&log), [Event::Failed(0, BufferError::Evicted)]);
    assert_eq!(buffer.queued(&shard), 2);
    assert_eq!(buffer.stats(&shard).evicted[EvictReason::BufferFull], 1);

    buffer.health(&shard, serving(2, 2)).unwrap();
    settle().await;
    assert_eq!(events(&log)[1], Event::Released(1));
}

#[tokio::test(start_paused = true)]
async fn when_full_a_shard_with_nothing_queued_is_refused() {
    let buffer = FailoverBuffer::new(Config {
        size: 1,
        ..config()
    })
    .unwrap();
    let full = buffer.register_shard("commerce", "0");
    let other = buffer.register_shard("commerce", "1");
    let log = Log::default();
    let _holder = Client::spawn(&buffer, &full, 0, &log);
    settle().await;

    let refused = buffer
        .wait_for_failover_end(&other, Some(FailoverCause::Reparent))
        .await;
    assert_eq!(refused.unwrap_err(), BufferError::BufferFull);
    assert_eq!(buffer.stats(&other).skipped[SkipReason::BufferFull], 1);
    assert_eq!(
        buffer.queued(&full),
        1,
        "another shard's requests are never evicted"
    );
}
