//! `reconfigure`, the per-shard `episode` view and the guard's release reason, through the
//! tokio adapter.

mod support;

use std::time::Duration;

use failover_buffer_tokio::{
    Config, ConfigError, FailoverBuffer, FailoverCause, ReleaseReason, StopReason,
};
use support::{config, serving, settle};

#[tokio::test(start_paused = true)]
async fn reconfigure_changes_the_limits_at_run_time_and_refuses_a_bad_config() {
    let buffer = FailoverBuffer::new(config()).unwrap();
    buffer
        .reconfigure(Config {
            size: 50,
            ..config()
        })
        .unwrap();
    assert_eq!(buffer.free_slots(), 50);
    assert_eq!(
        buffer.reconfigure(Config {
            size: 0,
            ..config()
        }),
        Err(ConfigError::SizeZero)
    );
    assert_eq!(buffer.config().size, 50);
}

#[tokio::test(start_paused = true)]
async fn a_shorter_window_reconfigured_releases_a_held_request_on_time() {
    let buffer = FailoverBuffer::new(config()).unwrap();
    let shard = buffer.register_shard("commerce", "0");
    let held = tokio::spawn({
        let (buffer, shard) = (buffer.clone(), shard.clone());
        async move {
            let guard = buffer
                .wait_for_failover_end(&shard, Some(FailoverCause::Reparent))
                .await
                .unwrap()
                .unwrap();
            (tokio::time::Instant::now(), guard.release_reason())
        }
    });
    settle().await;
    let start = tokio::time::Instant::now();
    buffer
        .reconfigure(Config {
            window: Duration::from_secs(2),
            ..config()
        })
        .unwrap();
    let (released, reason) = held.await.unwrap();
    assert_eq!(released - start, Duration::from_secs(2));
    assert_eq!(reason, Some(ReleaseReason::Window));
}

#[tokio::test(start_paused = true)]
async fn the_episode_view_and_the_release_reason_say_how_the_failover_ended() {
    let buffer = FailoverBuffer::new(config()).unwrap();
    let shard = buffer.register_shard("commerce", "0");
    assert_eq!(buffer.episode(&shard), None);
    buffer.health(&shard, serving(1, 1)).unwrap();
    let held = tokio::spawn({
        let (buffer, shard) = (buffer.clone(), shard.clone());
        async move {
            let guard = buffer
                .wait_for_failover_end(&shard, Some(FailoverCause::Reparent))
                .await
                .unwrap()
                .unwrap();
            guard.release_reason()
        }
    });
    settle().await;
    let episode = buffer.episode(&shard).unwrap();
    assert_eq!(episode.start_term, Some(1));
    assert_eq!(
        episode.max_duration_deadline,
        episode.started_at + Duration::from_secs(20)
    );
    assert_eq!(episode.stop_reason, None);
    buffer.health(&shard, serving(2, 2)).unwrap();
    assert_eq!(
        held.await.unwrap(),
        Some(ReleaseReason::Drain(StopReason::NewPrimarySeen))
    );
    assert_eq!(
        buffer.episode(&shard).unwrap().stop_reason,
        Some(StopReason::NewPrimarySeen)
    );
}
