//! `reconfigure`, the per-shard `episode` view and the guard's release reason, through the
//! std adapter, on a manual clock.

mod common;

use std::thread;
use std::time::Duration;

use common::{eventually, manual, stamp, within};
use failover_buffer_std::failover_buffer::ReleaseReason;
use failover_buffer_std::{Config, ConfigError, FailoverCause, StopReason};

#[test]
fn reconfigure_changes_the_limits_and_a_shorter_window_releases_on_time() {
    within(Duration::from_secs(60), || {
        let (buffer, clock) = manual(common::enabled());
        let shard = buffer.register_shard("commerce", "0");
        let worker = {
            let (buffer, shard) = (buffer.clone(), shard.clone());
            thread::spawn(move || {
                let guard = buffer
                    .wait_for_failover_end(&shard, Some(FailoverCause::Reparent))
                    .unwrap()
                    .expect("released");
                guard.release_reason()
            })
        };
        eventually("queued", || buffer.queued(&shard) == 1);
        assert_eq!(
            buffer.reconfigure(Config {
                size: 0,
                ..common::enabled()
            }),
            Err(ConfigError::SizeZero)
        );
        buffer
            .reconfigure(Config {
                window: Duration::from_secs(2),
                size: 50,
                ..common::enabled()
            })
            .unwrap();
        assert_eq!(buffer.free_slots(), 49);
        clock.advance(Duration::from_millis(1999));
        buffer.tick_now();
        assert_eq!(buffer.queued(&shard), 1);
        clock.advance(Duration::from_millis(1));
        buffer.tick_now();
        assert_eq!(worker.join().unwrap(), Some(ReleaseReason::Window));
        assert_eq!(buffer.config().size, 50);
    });
}

#[test]
fn the_episode_view_and_the_release_reason_say_how_the_failover_ended() {
    within(Duration::from_secs(60), || {
        let (buffer, _clock) = manual(common::enabled());
        let shard = buffer.register_shard("commerce", "0");
        assert_eq!(buffer.episode(&shard), None);
        buffer.health(&shard, stamp(1, 1, true)).unwrap();
        let worker = {
            let (buffer, shard) = (buffer.clone(), shard.clone());
            thread::spawn(move || {
                let guard = buffer
                    .wait_for_failover_end(&shard, Some(FailoverCause::Reparent))
                    .unwrap()
                    .expect("released");
                guard.release_reason()
            })
        };
        eventually("queued", || buffer.queued(&shard) == 1);
        let episode = buffer.episode(&shard).unwrap();
        assert_eq!(episode.start_term, Some(1));
        assert_eq!(episode.stop_reason, None);
        buffer.health(&shard, stamp(2, 2, true)).unwrap();
        assert_eq!(
            worker.join().unwrap(),
            Some(ReleaseReason::Drain(StopReason::NewPrimarySeen))
        );
        assert_eq!(
            buffer.episode(&shard).unwrap().stop_reason,
            Some(StopReason::NewPrimarySeen)
        );
    });
}
