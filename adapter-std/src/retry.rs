//! The retry loop a router runs around each request, in one call.

use std::fmt;

use failover_buffer::{BufferError, FailoverCause};

use std::time::Instant;

use crate::buffer::{FailoverBuffer, RetryGuard, WaitError};
use crate::shard::Shard;

/// Why [`FailoverBuffer::run`] gave up on a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunError<E> {
    /// The buffer failed the request (evicted for a newer one, buffer full, shard resharded
    /// away): return this to the client.
    Buffer(BufferError),
    /// The last attempt's own error: one the classifier did not call a failover error, or a
    /// failover error on the last attempt allowed.
    Attempt(E),
    /// The client's deadline came while the request was held ([`FailoverBuffer::run_until`]
    /// only). The request was cancelled and holds nothing.
    TimedOut,
}

impl<E: fmt::Display> fmt::Display for RunError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::Buffer(e) => fmt::Display::fmt(e, f),
            RunError::Attempt(e) => fmt::Display::fmt(e, f),
            RunError::TimedOut => fmt::Display::fmt(&WaitError::TimedOut, f),
        }
    }
}

/// An error whatever the attempt's error type is, so `?` works into `Box<dyn Error>` even for
/// `String` errors. Its display is the inner error's; [`source`](std::error::Error::source) is
/// the buffer's error for [`RunError::Buffer`] (an attempt's error may not be an `Error`).
impl<E: fmt::Debug + fmt::Display> std::error::Error for RunError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RunError::Buffer(e) => Some(e),
            RunError::Attempt(_) | RunError::TimedOut => None,
        }
    }
}

impl<E> From<WaitError> for RunError<E> {
    fn from(e: WaitError) -> Self {
        match e {
            WaitError::Buffer(e) => RunError::Buffer(e),
            WaitError::TimedOut => RunError::TimedOut,
        }
    }
}

impl FailoverBuffer {
    /// An attempt failed with a failover error: blocks until the request may be tried
    /// again.
    ///
    /// One call for every attempt after the first, whatever the previous answer was: pass
    /// the guard the previous wait returned (`None` if it let the request straight
    /// through). With a guard this is [`RetryGuard::retry_failed`] (a released retry that
    /// fails again pauses a young drain); without one it is
    /// [`wait_for_failover_end`](Self::wait_for_failover_end) with `Some(cause)`. The
    /// answer is the same three-way answer as `wait_for_failover_end`'s.
    ///
    /// A guard carries its own shard: `shard` is used only when `guard` is `None`.
    ///
    /// ```
    /// use failover_buffer_std::{Config, FailoverBuffer, FailoverCause, Shard};
    ///
    /// fn execute(buffer: &FailoverBuffer, shard: &Shard) -> Result<u64, String> {
    ///     let mut guard = buffer.wait_for_failover_end(shard, None).map_err(|e| e.to_string())?;
    ///     for _ in 1..3 {
    ///         match send_update() {
    ///             Err(e) if e == "READONLY" => {
    ///                 // Held until the failover ends, whether or not a guard is held.
    ///                 guard = buffer
    ///                     .wait_to_retry(shard, guard, FailoverCause::Reparent)
    ///                     .map_err(|e| e.to_string())?;
    ///             }
    ///             other => return other, // the guard, if any, drops here: retry done
    ///         }
    ///     }
    ///     send_update()
    /// }
    /// # fn send_update() -> Result<u64, String> { Ok(1) }
    /// # let buffer = FailoverBuffer::new(Config { enabled: true, ..Config::default() }).unwrap();
    /// # let shard = buffer.register_shard("commerce", "0");
    /// # assert_eq!(execute(&buffer, &shard), Ok(1));
    /// ```
    ///
    /// # Panics
    ///
    /// If the buffer's timer thread has died (see [Lifecycle](Self#lifecycle)).
    pub fn wait_to_retry(
        &self,
        shard: &Shard,
        guard: Option<RetryGuard>,
        cause: FailoverCause,
    ) -> Result<Option<RetryGuard>, BufferError> {
        match guard {
            Some(guard) => guard.retry_failed(cause),
            None => self.wait_for_failover_end(shard, Some(cause)),
        }
    }

    /// [`wait_to_retry`](Self::wait_to_retry), giving up at `deadline` (the client's own):
    /// a request held past it is cancelled and this returns [`WaitError::TimedOut`].
    ///
    /// # Panics
    ///
    /// If the buffer's timer thread has died (see [Lifecycle](Self#lifecycle)).
    pub fn wait_to_retry_timeout(
        &self,
        shard: &Shard,
        guard: Option<RetryGuard>,
        cause: FailoverCause,
        deadline: Instant,
    ) -> Result<Option<RetryGuard>, WaitError> {
        match guard {
            Some(guard) => guard.retry_failed_timeout(cause, deadline),
            None => self.wait_for_failover_end_timeout(shard, Some(cause), deadline),
        }
    }

    /// Runs a request's whole retry loop behind the buffer: at most `max_attempts` calls of
    /// `attempt` (at least one), each one sent when the buffer lets it go.
    ///
    /// After each failed attempt, `classify` says whether its error was a failover error
    /// (`Some(cause)`: the next attempt waits behind the buffer, see
    /// [`wait_to_retry`](Self::wait_to_retry)) or not (`None`: the error is returned at
    /// once). The answer is the first success, the last attempt's error
    /// ([`RunError::Attempt`]), or the buffer's refusal ([`RunError::Buffer`]). Vitess makes
    /// three attempts.
    ///
    /// Each attempt's [`RetryGuard`] lives exactly as long as the attempt, which is what
    /// paces a drain. A panicking attempt drops its guard while unwinding: no slot is
    /// stranded.
    ///
    /// ```
    /// use failover_buffer_std::{Config, FailoverBuffer, FailoverCause, RunError};
    ///
    /// let buffer = FailoverBuffer::new(Config { enabled: true, ..Config::default() }).unwrap();
    /// let shard = buffer.register_shard("commerce", "0");
    ///
    /// let answer: Result<u64, RunError<String>> = buffer.run(
    ///     &shard,
    ///     3,
    ///     || Ok::<u64, String>(1),
    ///     |e: &String| e.starts_with("READONLY").then_some(FailoverCause::Reparent),
    /// );
    /// assert_eq!(answer, Ok(1));
    /// ```
    ///
    /// # Panics
    ///
    /// If `attempt` or `classify` does, or if the buffer's timer thread has died (see
    /// [Lifecycle](Self#lifecycle)).
    pub fn run<T, E>(
        &self,
        shard: &Shard,
        max_attempts: u32,
        mut attempt: impl FnMut() -> Result<T, E>,
        mut classify: impl FnMut(&E) -> Option<FailoverCause>,
    ) -> Result<T, RunError<E>> {
        let mut guard = self
            .wait_for_failover_end(shard, None)
            .map_err(RunError::Buffer)?;
        let mut attempts = 1;
        loop {
            let error = match attempt() {
                Ok(value) => return Ok(value),
                Err(error) => error,
            };
            match classify(&error) {
                Some(cause) if attempts < max_attempts => {
                    guard = self
                        .wait_to_retry(shard, guard, cause)
                        .map_err(RunError::Buffer)?;
                    attempts += 1;
                }
                _ => return Err(RunError::Attempt(error)),
            }
        }
    }

    /// [`run`](Self::run), within the client's `deadline`: a request still held at the
    /// deadline is cancelled and the answer is [`RunError::TimedOut`]. Attempts themselves
    /// are not interrupted (give the database call its own timeout).
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use failover_buffer_std::{Config, FailoverBuffer, FailoverCause, RunError};
    ///
    /// let buffer = FailoverBuffer::new(Config { enabled: true, ..Config::default() }).unwrap();
    /// let shard = buffer.register_shard("commerce", "0");
    /// let deadline = Instant::now() + Duration::from_millis(50);
    /// // The primary stays read-only: the held retry gives up at the client's deadline.
    /// let answer: Result<(), RunError<&str>> = buffer.run_until(
    ///     &shard,
    ///     deadline,
    ///     3,
    ///     || Err("READONLY"),
    ///     |e: &&str| e.starts_with("READONLY").then_some(FailoverCause::Reparent),
    /// );
    /// assert_eq!(answer, Err(RunError::TimedOut));
    /// assert_eq!(buffer.held_slots(), 0);
    /// ```
    ///
    /// # Panics
    ///
    /// If `attempt` or `classify` does, or if the buffer's timer thread has died (see
    /// [Lifecycle](Self#lifecycle)).
    pub fn run_until<T, E>(
        &self,
        shard: &Shard,
        deadline: Instant,
        max_attempts: u32,
        mut attempt: impl FnMut() -> Result<T, E>,
        mut classify: impl FnMut(&E) -> Option<FailoverCause>,
    ) -> Result<T, RunError<E>> {
        let mut guard = self.wait_for_failover_end_timeout(shard, None, deadline)?;
        let mut attempts = 1;
        loop {
            let error = match attempt() {
                Ok(value) => return Ok(value),
                Err(error) => error,
            };
            match classify(&error) {
                Some(cause) if attempts < max_attempts => {
                    guard = self.wait_to_retry_timeout(shard, guard, cause, deadline)?;
                    attempts += 1;
                }
                _ => return Err(RunError::Attempt(error)),
            }
        }
    }
}
