//! The bounded operator pause through the tokio handle: a paused shard holds even a first
//! attempt until `resume`, and a pause nobody resumes ends by itself at its bound, driven by
//! the buffer's own timer.

mod support;

use std::time::Duration;

use failover_buffer_tokio::{
    EpisodeEvent, FailoverBuffer, PauseEnd, PauseError, Shard, ShardState,
};
use support::{advance, config, settle};
use tokio::task::JoinHandle;

/// A first attempt (no failover cause): whether it was held and released to retry.
fn first_attempt(buffer: &FailoverBuffer, shard: &Shard) -> JoinHandle<bool> {
    let (buffer, shard) = (buffer.clone(), shard.clone());
    tokio::spawn(async move {
        let answer = buffer.wait_for_failover_end(&shard, None).await;
        matches!(answer, Ok(Some(_)))
    })
}

#[tokio::test(start_paused = true)]
async fn a_paused_shard_holds_a_first_attempt_until_resume() {
    let buffer = FailoverBuffer::new(config()).unwrap();
    let shard = buffer.register_shard("commerce", "0");
    let mut events = buffer.events();
    buffer.pause(&shard, Duration::from_secs(60)).unwrap();
    assert_eq!(buffer.state(&shard), ShardState::Buffering);

    let held = first_attempt(&buffer, &shard);
    advance(Duration::from_secs(5)).await;
    assert!(!held.is_finished(), "held while paused");
    assert_eq!(buffer.queued(&shard), 1);

    assert_eq!(buffer.resume(&shard), Ok(true));
    assert!(held.await.unwrap(), "released to retry on resume");
    settle().await;
    assert_eq!(buffer.state(&shard), ShardState::Idle);
    assert_eq!(buffer.resume(&shard), Ok(false), "nothing left to resume");
    let stats = buffer.stats(&shard);
    assert_eq!(stats.pauses_ended[PauseEnd::Resumed], 1);
    assert_eq!(stats.buffered, 1);

    // After the pause the idle fast path answers at once.
    assert!(!first_attempt(&buffer, &shard).await.unwrap());
    assert!(matches!(
        events.recv().await.unwrap(),
        EpisodeEvent::PauseStarted { .. }
    ));
    assert!(matches!(
        events.recv().await.unwrap(),
        EpisodeEvent::PauseEnded {
            reason: PauseEnd::Resumed,
            queued: 1,
            ..
        }
    ));
}

#[tokio::test(start_paused = true)]
async fn an_expiring_pause_releases_by_itself() {
    let buffer = FailoverBuffer::new(config()).unwrap();
    let shard = buffer.register_shard("commerce", "0");
    assert_eq!(buffer.pause_all(Duration::from_secs(3)), Ok(1));
    let held = first_attempt(&buffer, &shard);
    advance(Duration::from_millis(2_999)).await;
    assert!(!held.is_finished(), "held until the bound");
    assert!(buffer.pause_expiry(&shard).is_some());

    // Nobody resumes: the driver's timer ends the pause at 3 s (before the 10 s window).
    advance(Duration::from_millis(1)).await;
    assert!(
        held.await.unwrap(),
        "released to retry when the pause expired"
    );
    assert_eq!(buffer.stats(&shard).pauses_ended[PauseEnd::Expired], 1);
    assert_eq!(buffer.pause_expiry(&shard), None);
    settle().await;
    assert_eq!(buffer.state(&shard), ShardState::Idle);
}

#[tokio::test(start_paused = true)]
async fn bad_pauses_are_refused() {
    let buffer = FailoverBuffer::new(config()).unwrap();
    let shard = buffer.register_shard("commerce", "0");
    let other = FailoverBuffer::new(config()).unwrap();
    let foreign = other.register_shard("commerce", "0");
    assert_eq!(
        buffer.pause(&foreign, Duration::from_secs(1)),
        Err(PauseError::UnknownShard)
    );
    assert_eq!(
        buffer.pause(&shard, Duration::ZERO),
        Err(PauseError::MaxZero)
    );
    assert!(matches!(
        buffer.pause(&shard, Duration::from_secs(3_600)),
        Err(PauseError::MaxAboveBound { .. })
    ));
    assert_eq!(buffer.state(&shard), ShardState::Idle);
}
