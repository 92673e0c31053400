//! What keeps the timer thread alive, and what a panic in the timer thread does.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::{eventually, stamp, within};
use failover_buffer_std::{Clock, Config, FailoverBuffer, FailoverCause};

/// Issue 9, bug 1: a guard can put its request back in the queue, so it keeps the timer.
#[test]
fn a_request_held_again_after_the_last_handle_is_gone_is_still_released() {
    within(Duration::from_secs(20), || {
        let buffer = FailoverBuffer::new(Config {
            enabled: true,
            window: Duration::from_millis(500),
            drain_backoff: Duration::from_millis(50),
            ..Config::default()
        })
        .unwrap();
        let shard = buffer.register_shard("commerce", "0");
        buffer.health(&shard, stamp(1, 1, true)).unwrap();
        let held = {
            let (buffer, shard) = (buffer.clone(), shard.clone());
            thread::spawn(move || {
                buffer
                    .wait_for_failover_end(&shard, Some(FailoverCause::Reparent))
                    .unwrap()
                    .expect("released to retry")
            })
        };
        eventually("queued", || buffer.queued(&shard) == 1);
        buffer.health(&shard, stamp(2, 2, true)).unwrap();
        let guard = held.join().unwrap();
        drop(buffer);

        // The retry met the failover again: the young drain backs off and holds it once
        // more. Only the timer can release it now (no health input can arrive).
        let again = guard.retry_failed(FailoverCause::Reparent).unwrap();
        drop(again.expect("released to retry again by the drain back-off"));
    });
}

/// A clock that panics in the timer thread once told to.
#[derive(Debug, Default)]
struct FailingClock {
    fail: AtomicBool,
}

impl Clock for FailingClock {
    fn now(&self) -> Instant {
        let in_timer = thread::current().name() == Some("failover-buffer-timer");
        if in_timer && self.fail.load(Ordering::SeqCst) {
            panic!("the clock failed");
        }
        Instant::now()
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

/// Issue 9: a panicking clock fails loudly instead of leaving a dead timer marked busy.
#[test]
fn a_clock_panicking_in_the_timer_thread_fails_every_held_and_later_request_loudly() {
    within(Duration::from_secs(20), || {
        let clock = Arc::new(FailingClock::default());
        let buffer = FailoverBuffer::with_clock(common::enabled(), clock.clone()).unwrap();
        let shard = buffer.register_shard("commerce", "0");
        clock.fail.store(true, Ordering::SeqCst);
        // Holding the request arms the window: the timer thread wakes and reads the clock.
        let held = {
            let (buffer, shard) = (buffer.clone(), shard.clone());
            thread::spawn(move || {
                let _ = buffer.wait_for_failover_end(&shard, Some(FailoverCause::Reparent));
            })
        };
        let panic = held.join().expect_err("the held caller is told, loudly");
        assert!(
            panic_message(&*panic).contains("timer thread panicked"),
            "{}",
            panic_message(&*panic)
        );
        assert_eq!(buffer.held_slots(), 0, "its slot was freed");

        let later = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            buffer.wait_for_failover_end(&shard, Some(FailoverCause::Reparent))
        }));
        assert!(
            later.is_err(),
            "a later request that would be held panics too"
        );
        assert_eq!(buffer.held_slots(), 0);
    });
}
