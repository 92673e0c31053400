//! The bounded operator pause through the blocking handle: a paused shard holds even a first
//! attempt until `resume`, and a pause nobody resumes ends by itself at its bound, fired by
//! the timer (on a manual clock here, and by the timer thread on the system clock).

mod common;

use std::thread;
use std::time::Duration;

use common::{enabled, eventually, manual};
use failover_buffer_std::{BufferError, FailoverBuffer, PauseEnd, PauseError, Shard, ShardState};

/// A first attempt (no failover cause) on its own thread: whether it was held and released
/// to retry.
fn first_attempt(
    buffer: &FailoverBuffer,
    shard: &Shard,
) -> thread::JoinHandle<Result<bool, BufferError>> {
    let (buffer, shard) = (buffer.clone(), shard.clone());
    thread::spawn(move || {
        buffer
            .wait_for_failover_end(&shard, None)
            .map(|guard| guard.is_some())
    })
}

#[test]
fn a_paused_shard_holds_a_first_attempt_until_resume() {
    let (buffer, clock) = manual(enabled());
    let shard = buffer.register_shard("commerce", "0");
    let events = buffer.events();
    buffer.pause(&shard, Duration::from_secs(60)).unwrap();
    assert_eq!(buffer.state(&shard), ShardState::Buffering);

    let held = first_attempt(&buffer, &shard);
    eventually("held", || buffer.queued(&shard) == 1);
    clock.advance(Duration::from_secs(5));
    buffer.tick_now();
    assert!(!held.is_finished(), "held while paused");

    assert_eq!(buffer.resume(&shard), Ok(true));
    assert_eq!(
        held.join().unwrap(),
        Ok(true),
        "released to retry on resume"
    );
    eventually("idle", || buffer.state(&shard) == ShardState::Idle);
    assert_eq!(buffer.resume(&shard), Ok(false), "nothing left to resume");
    assert_eq!(buffer.stats(&shard).pauses_ended[PauseEnd::Resumed], 1);
    // After the pause the idle fast path answers at once.
    assert_eq!(first_attempt(&buffer, &shard).join().unwrap(), Ok(false));
    let seen: Vec<_> = events.try_iter().collect();
    assert!(matches!(
        seen[..2],
        [
            failover_buffer_std::EpisodeEvent::PauseStarted { .. },
            failover_buffer_std::EpisodeEvent::PauseEnded {
                reason: PauseEnd::Resumed,
                queued: 1,
                ..
            }
        ]
    ));
}

#[test]
fn an_expiring_pause_releases_by_itself() {
    let (buffer, clock) = manual(enabled());
    let shard = buffer.register_shard("commerce", "0");
    assert_eq!(buffer.pause_all(Duration::from_secs(3)), Ok(1));
    assert_eq!(
        buffer.pause_expiry(&shard),
        Some(buffer.now() + Duration::from_secs(3))
    );
    let held = first_attempt(&buffer, &shard);
    eventually("held", || buffer.queued(&shard) == 1);
    clock.advance(Duration::from_millis(2_999));
    buffer.tick_now();
    assert!(!held.is_finished(), "held until the bound");

    clock.advance(Duration::from_millis(1));
    buffer.tick_now();
    assert_eq!(
        held.join().unwrap(),
        Ok(true),
        "released when the pause expired"
    );
    assert_eq!(buffer.stats(&shard).pauses_ended[PauseEnd::Expired], 1);
    assert_eq!(buffer.pause_expiry(&shard), None);
}

#[test]
fn the_timer_thread_ends_a_pause_at_its_bound() {
    let buffer = FailoverBuffer::new(enabled()).unwrap();
    let shard = buffer.register_shard("commerce", "0");
    buffer.pause(&shard, Duration::from_millis(20)).unwrap();
    // Held, then released by the timer thread alone: nobody resumes.
    assert_eq!(first_attempt(&buffer, &shard).join().unwrap(), Ok(true));
    assert_eq!(buffer.stats(&shard).pauses_ended[PauseEnd::Expired], 1);
}

#[test]
fn bad_pauses_are_refused() {
    let (buffer, _clock) = manual(enabled());
    let shard = buffer.register_shard("commerce", "0");
    let (other, _) = manual(enabled());
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
    buffer.shutdown();
    assert_eq!(
        buffer.pause(&shard, Duration::from_secs(1)),
        Err(PauseError::ShuttingDown)
    );
}
