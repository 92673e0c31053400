//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::sync::Arc;
use std::sync::mpsc::RecvTimeoutError;
use std::thread;
use std::time::{Duration, Instant};

use failover_buffer_std::{Config, FailoverBuffer, HealthStamp, ManualClock, PrimaryId};

/// Vitess's defaults, enabled.
pub(crate) fn enabled() -> Config {
    Config {
        enabled: true,
        ..Config::default()
    }
}

/// A buffer on a clock that moves only when the test moves it.
pub(crate) fn manual(config: Config) -> (FailoverBuffer, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new());
    let buffer = FailoverBuffer::with_clock(config, clock.clone()).expect("valid config");
    (buffer, clock)
}

/// A health stamp.
pub(crate) fn stamp(primary: u64, term: u64, serving: bool) -> HealthStamp {
    HealthStamp {
        primary: PrimaryId(primary),
        term,
        serving,
    }
}

/// Waits for another thread to reach a state (e.g. "3 requests queued"). This is
/// synchronisation, not a timing assertion: the bound only turns a hang into a failure.
pub(crate) fn eventually(what: &str, cond: impl Fn() -> bool) {
    let give_up = Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(Instant::now() < give_up, "never happened: {what}");
        thread::yield_now();
    }
}

/// Runs `f` on its own thread and fails if it has not returned within `bound`: a watchdog
/// that turns a deadlock into a test failure instead of a hung CI job.
pub(crate) fn within<T: Send + 'static>(
    bound: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    let scenario = thread::spawn(move || {
        let value = f();
        let _ = tx.send(());
        value
    });
    match rx.recv_timeout(bound) {
        // Finished, or panicked (which drops the sender): join to get either.
        Ok(()) | Err(RecvTimeoutError::Disconnected) => match scenario.join() {
            Ok(value) => value,
            Err(panic) => std::panic::resume_unwind(panic),
        },
        Err(RecvTimeoutError::Timeout) => {
            panic!("deadlock: the scenario did not finish within {bound:?}")
        }
    }
}
