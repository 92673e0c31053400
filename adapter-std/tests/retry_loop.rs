//! The retry loop in one call: `wait_to_retry` takes the optional guard, `run` runs the
//! whole loop with a bound on attempts. Issue 12, items 1 and 2.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::Duration;

use common::{eventually, manual, stamp, within};
use failover_buffer_std::{Config, FailoverBuffer, FailoverCause, RunError, ShardState};

fn classify(e: &&'static str) -> Option<FailoverCause> {
    (*e == "READONLY").then_some(FailoverCause::Reparent)
}

/// The bug of the old README snippet: on a healthy shard the first attempt's guard is
/// `None`, and a failover error must still be buffered, not returned to the client.
#[test]
fn run_buffers_a_failover_error_met_on_a_healthy_shard_and_answers_from_the_new_primary() {
    let (buffer, _clock) = manual(common::enabled());
    let shard = buffer.register_shard("commerce", "0");
    buffer.health(&shard, stamp(1, 1, true)).unwrap();
    let attempts = Arc::new(AtomicU32::new(0));
    let request = {
        let (buffer, shard, attempts) = (buffer.clone(), shard.clone(), Arc::clone(&attempts));
        thread::spawn(move || {
            buffer.run(
                &shard,
                3,
                || match attempts.fetch_add(1, Ordering::SeqCst) {
                    0 => Err("READONLY"),
                    _ => Ok("written"),
                },
                classify,
            )
        })
    };
    eventually("the retry is held", || buffer.queued(&shard) == 1);
    buffer.health(&shard, stamp(2, 2, true)).unwrap();
    assert_eq!(request.join().unwrap(), Ok("written"));
    assert_eq!(attempts.load(Ordering::SeqCst), 2);
    assert_eq!(buffer.stats(&shard).drained, 1);
    assert_eq!(buffer.held_slots(), 0);
}

#[test]
fn run_returns_an_error_that_is_not_a_failover_at_once() {
    let (buffer, _clock) = manual(common::enabled());
    let shard = buffer.register_shard("commerce", "0");
    let answer = buffer.run(&shard, 3, || Err::<(), _>("syntax error"), classify);
    assert_eq!(answer, Err(RunError::Attempt("syntax error")));
    assert_eq!(buffer.state(&shard), ShardState::Idle);
}

#[test]
fn run_makes_at_most_max_attempts_and_returns_the_last_error() {
    within(Duration::from_secs(20), || {
        // The primary never comes back: each held retry is released by its short window.
        let buffer = FailoverBuffer::new(Config {
            enabled: true,
            window: Duration::from_millis(20),
            ..Config::default()
        })
        .unwrap();
        let shard = buffer.register_shard("commerce", "0");
        let mut attempts = 0;
        let answer = buffer.run(
            &shard,
            3,
            || {
                attempts += 1;
                Err::<(), _>("READONLY")
            },
            classify,
        );
        assert_eq!(answer, Err(RunError::Attempt("READONLY")));
        assert_eq!(attempts, 3);
        assert_eq!(buffer.held_slots(), 0, "every guard was dropped");
    });
}

#[test]
fn run_with_zero_attempts_still_makes_one() {
    let (buffer, _clock) = manual(common::enabled());
    let shard = buffer.register_shard("commerce", "0");
    assert_eq!(buffer.run(&shard, 0, || Ok::<_, &str>(7), classify), Ok(7));
}

/// With a guard, `wait_to_retry` is `retry_failed`: a young drain pauses and holds the
/// request again.
#[test]
fn wait_to_retry_with_a_guard_pauses_a_young_drain() {
    let (buffer, clock) = manual(common::enabled());
    let shard = buffer.register_shard("commerce", "0");
    buffer.health(&shard, stamp(1, 1, true)).unwrap();
    let request = {
        let (buffer, shard) = (buffer.clone(), shard.clone());
        thread::spawn(move || {
            let cause = FailoverCause::Reparent;
            let guard = buffer.wait_to_retry(&shard, None, cause).unwrap();
            assert!(guard.is_some(), "released");
            // The new primary is not writable yet: held once more.
            let again = buffer.wait_to_retry(&shard, guard, cause).unwrap();
            again.is_some()
        })
    };
    eventually("held", || buffer.queued(&shard) == 1);
    buffer.health(&shard, stamp(2, 2, true)).unwrap();
    eventually("the drain paused", || {
        buffer.stats(&shard).drains_paused == 1
    });
    assert_eq!(buffer.state(&shard), ShardState::Buffering);
    clock.advance(Duration::from_secs(1)); // the drain back-off
    buffer.tick_now();
    assert!(
        request.join().unwrap(),
        "released again after the drain back-off"
    );
}

#[test]
fn a_retry_held_again_gives_up_at_the_clients_deadline() {
    let (buffer, clock) = manual(common::enabled());
    let shard = buffer.register_shard("commerce", "0");
    buffer.health(&shard, stamp(1, 1, true)).unwrap();
    let request = {
        let (buffer, shard) = (buffer.clone(), shard.clone());
        thread::spawn(move || {
            buffer
                .wait_for_failover_end(&shard, Some(FailoverCause::Reparent))
                .unwrap()
        })
    };
    eventually("held", || buffer.queued(&shard) == 1);
    buffer.health(&shard, stamp(2, 2, true)).unwrap();
    let guard = request.join().unwrap();
    // Held again by the young drain, with a deadline already reached: it gives up.
    let deadline = failover_buffer_std::Clock::now(&*clock);
    let again = buffer.wait_to_retry_timeout(&shard, guard, FailoverCause::Reparent, deadline);
    assert_eq!(
        again.map(|g| g.is_some()),
        Err(failover_buffer_std::WaitError::TimedOut)
    );
    assert_eq!(buffer.held_slots(), 0);
}

#[test]
fn run_until_answers_from_the_new_primary_within_the_deadline() {
    let (buffer, clock) = manual(common::enabled());
    let shard = buffer.register_shard("commerce", "0");
    buffer.health(&shard, stamp(1, 1, true)).unwrap();
    let deadline = failover_buffer_std::Clock::now(&*clock) + Duration::from_secs(5);
    let request = {
        let (buffer, shard) = (buffer.clone(), shard.clone());
        let mut attempts = 0;
        thread::spawn(move || {
            buffer.run_until(
                &shard,
                deadline,
                3,
                || {
                    attempts += 1;
                    if attempts == 1 {
                        Err("READONLY")
                    } else {
                        Ok(attempts)
                    }
                },
                classify,
            )
        })
    };
    eventually("held", || buffer.queued(&shard) == 1);
    buffer.health(&shard, stamp(2, 2, true)).unwrap();
    assert_eq!(request.join().unwrap(), Ok(2));
}
