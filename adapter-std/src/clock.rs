//! Where the buffer's time comes from: the system's monotonic clock, or a hand-driven one.

use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A monotonic clock the buffer reads for every input and sleeps against.
///
/// The buffer maps each [`Instant`] to the core's `Timestamp` by subtracting the instant
/// it read when it was built, so only differences between readings matter.
///
/// Implement it to run the buffer on time you control. [`SystemClock`] is the real clock;
/// [`ManualClock`] stands still until a test moves it.
///
/// # User code under the lock
///
/// Both methods are called with the buffer's lock held: by every input, in the caller's
/// thread, and by the timer thread. Keep them fast, and never call into the buffer (or
/// anything that waits for it) from them: that deadlocks.
///
/// A clock that panics in a caller's thread panics that caller only, and changes nothing
/// (the clock is read before the input reaches the core). A clock that panics in the timer
/// thread kills it, and the buffer fails loudly rather than go on without a timer: every
/// request it holds is cancelled and its caller panics, and so does every later call that
/// would hold a request (see [`FailoverBuffer`](crate::FailoverBuffer#lifecycle)).
pub trait Clock: Send + Sync {
    /// The current instant. Must never go backwards (the core clamps it if it does, and
    /// counts it in `InputStats::clock_regressions`).
    fn now(&self) -> Instant;

    /// How long, in real time, the timer thread should sleep for this clock to reach
    /// `deadline`; `None` if the clock does not move by itself, in which case the timer
    /// thread sleeps until an input moves a deadline and whoever moves the clock calls
    /// [`FailoverBuffer::tick_now`](crate::FailoverBuffer::tick_now).
    ///
    /// The default is right for any clock that follows real time.
    fn real_time_until(&self, deadline: Instant) -> Option<Duration> {
        Some(deadline.saturating_duration_since(self.now()))
    }
}

/// The system's monotonic clock, [`Instant::now`]: what [`FailoverBuffer::new`](crate::FailoverBuffer::new)
/// uses.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// A clock that moves only when told to, for tests that must not sleep.
///
/// The timer thread never sleeps against it ([`Clock::real_time_until`] is `None`), so
/// nothing happens in the background: after [`advance`](Self::advance), call
/// [`FailoverBuffer::tick_now`](crate::FailoverBuffer::tick_now), which fires whatever
/// became due (window expiries, max failover duration, drain back-off, wait deadlines) in
/// the calling thread before it returns.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use failover_buffer_std::{Config, FailoverBuffer, ManualClock};
///
/// let clock = Arc::new(ManualClock::new());
/// let buffer = FailoverBuffer::with_clock(Config { enabled: true, ..Config::default() }, clock.clone())?;
/// clock.advance(Duration::from_secs(10));
/// buffer.tick_now();
/// # Ok::<(), failover_buffer_std::ConfigError>(())
/// ```
pub struct ManualClock {
    now: Mutex<Instant>,
}

impl ManualClock {
    /// A clock that reads the current instant until it is advanced.
    pub fn new() -> ManualClock {
        ManualClock {
            now: Mutex::new(Instant::now()),
        }
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
        // An `Instant` overflows only centuries ahead; stand still rather than panic.
        if let Some(later) = now.checked_add(by) {
            *now = later;
        }
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        ManualClock::new()
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManualClock")
            .field("now", &self.now())
            .finish()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn real_time_until(&self, _deadline: Instant) -> Option<Duration> {
        None
    }
}
