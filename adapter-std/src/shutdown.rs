//! The buffer's shutdown as a handle: progress, cancel, and a blocking wait for its end.

use std::time::{Duration, Instant};

use failover_buffer::ShutdownProgress;
use failover_buffer::drain::{DrainError, DrainState};

use crate::buffer::FailoverBuffer;
use crate::state::State;

/// How a shutdown ended, as [`Shutdown::wait`] reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ShutdownEnd {
    /// The buffer closed: every held request ended (or the
    /// [`shutdown_grace`](crate::Config::shutdown_grace) passed). Every later request
    /// proceeds unbuffered, for good.
    Closed,
    /// The shutdown was called off ([`Shutdown::cancel`], from any handle): normal service
    /// again, nothing lost.
    Cancelled,
}

/// A shutdown under way, as returned by [`FailoverBuffer::begin_shutdown`].
///
/// The shutdown began when the handle was made; the handle watches it and can call it off.
/// Dropping the handle does **not** cancel the shutdown, which goes on; only
/// [`cancel`](Self::cancel) calls it off.
///
/// ```
/// use std::time::Duration;
/// use failover_buffer_std::{Config, FailoverBuffer, ShutdownEnd};
///
/// let buffer = FailoverBuffer::new(Config { enabled: true, ..Config::default() }).unwrap();
/// let shutdown = buffer.begin_shutdown();
/// // Nothing was held: it closes at once.
/// assert_eq!(shutdown.wait_timeout(Duration::from_secs(1)), Some(ShutdownEnd::Closed));
/// ```
#[derive(Clone, Debug)]
#[must_use = "the shutdown runs anyway; wait on the handle for its end"]
pub struct Shutdown {
    buffer: FailoverBuffer,
    /// Which attempt this handle watches: the plan's count of begins when it was made.
    attempt: u64,
}

fn attempt_of(core: &failover_buffer::Buffer) -> u64 {
    core.shutdown_plan().map_or(0, |p| p.stats().begun)
}

impl FailoverBuffer {
    /// Begins the buffer's shutdown (see
    /// [`Buffer::shutdown`](failover_buffer::Buffer::shutdown) for its four phases) and
    /// returns at once, with a handle to watch it, wait for it, or call it off.
    ///
    /// Buffering stops on every shard and held requests are released to retry, paced by
    /// `drain_concurrency`; from now on every request proceeds unbuffered. The buffer closes
    /// once every released request's [`RetryGuard`](crate::RetryGuard) has been dropped, or
    /// once the [`shutdown_grace`](crate::Config::shutdown_grace) has passed. Called while
    /// a shutdown runs, it returns a handle to that one.
    pub fn begin_shutdown(&self) -> Shutdown {
        let attempt = self.shared().run(|st, now, fx| {
            st.core.shutdown(now);
            fx.telemetry.touch_all();
            attempt_of(&st.core)
        });
        Shutdown {
            buffer: self.clone(),
            attempt,
        }
    }
}

impl Shutdown {
    /// Calls the shutdown off, with nothing lost: requests not yet released stay held, in
    /// order, with their deadlines; their shards buffer again; new failovers are buffered
    /// again. Every thread waiting on this shutdown returns [`ShutdownEnd::Cancelled`].
    ///
    /// Refused with [`DrainError::Finished`] once the buffer has closed, and with
    /// [`DrainError::NotRunning`] when it was cancelled already.
    pub fn cancel(&self) -> Result<(), DrainError> {
        let shared = self.buffer.shared();
        let result = shared.run(|st, now, fx| {
            if attempt_of(&st.core) != self.attempt {
                return Err(DrainError::NotRunning);
            }
            fx.telemetry.touch_all();
            st.core.cancel_shutdown(now)
        });
        if result.is_ok() {
            shared.closed.notify_all();
        }
        result
    }

    /// Where the shutdown is: its phase, the work left in it, time left and since it began,
    /// requests queued and retrying. `None` only for a handle whose attempt a later
    /// shutdown replaced.
    pub fn progress(&self) -> Option<ShutdownProgress> {
        let shared = self.buffer.shared();
        let now = shared.now();
        let st = shared.lock();
        if attempt_of(&st.core) != self.attempt {
            return None;
        }
        st.core.shutdown_progress(now)
    }

    /// How the shutdown ended, or `None` while it runs.
    pub fn end(&self) -> Option<ShutdownEnd> {
        self.end_of(&self.buffer.shared().lock())
    }

    fn end_of(&self, st: &State) -> Option<ShutdownEnd> {
        if st.closed {
            return Some(ShutdownEnd::Closed);
        }
        let cancelled = attempt_of(&st.core) != self.attempt
            || st
                .core
                .shutdown_plan()
                .is_some_and(|p| p.state() == DrainState::Cancelled);
        cancelled.then_some(ShutdownEnd::Cancelled)
    }

    /// Blocks until the buffer has closed or the shutdown was cancelled. Do not call it from
    /// a thread that holds a [`RetryGuard`](crate::RetryGuard): the close waits for it.
    pub fn wait(&self) -> ShutdownEnd {
        let shared = self.buffer.shared();
        let mut st = shared.lock();
        loop {
            if let Some(end) = self.end_of(&st) {
                return end;
            }
            st = shared.closed.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Like [`wait`](Self::wait), for at most `timeout` of real time (the operating
    /// system's, whatever [`Clock`](crate::Clock) the buffer runs on); `None` if the
    /// shutdown still runs then. The shutdown goes on either way.
    pub fn wait_timeout(&self, timeout: Duration) -> Option<ShutdownEnd> {
        let deadline = Instant::now().checked_add(timeout);
        let shared = self.buffer.shared();
        let mut st = shared.lock();
        loop {
            if let Some(end) = self.end_of(&st) {
                return Some(end);
            }
            let left = match deadline {
                Some(d) => d.checked_duration_since(Instant::now())?,
                None => Duration::from_secs(3600),
            };
            st = shared
                .closed
                .wait_timeout(st, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}
