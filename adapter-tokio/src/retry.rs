//! The retry loop a router runs around each request, in one call.

use std::fmt;
use std::future::Future;

use failover_buffer::{BufferError, FailoverCause};

use crate::buffer::{FailoverBuffer, Shard};
use crate::wait::RetryGuard;

/// Why [`FailoverBuffer::run`] gave up on a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunError<E> {
    /// The buffer failed the request (evicted for a newer one, buffer full, shard resharded
    /// away): return this to the client.
    Buffer(BufferError),
    /// The last attempt's own error: one the classifier did not call a failover error, or a
    /// failover error on the last attempt allowed.
    Attempt(E),
}

impl<E: fmt::Display> fmt::Display for RunError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::Buffer(e) => fmt::Display::fmt(e, f),
            RunError::Attempt(e) => fmt::Display::fmt(e, f),
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
            RunError::Attempt(_) => None,
        }
    }
}

impl FailoverBuffer {
    /// An attempt failed with a failover error: waits until the request may be tried again.
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
    /// use failover_buffer_tokio::{BufferError, FailoverBuffer, FailoverCause, Shard};
    ///
    /// async fn execute(buffer: &FailoverBuffer, shard: &Shard) -> Result<u64, String> {
    ///     let mut guard = buffer.wait_for_failover_end(shard, None).await.map_err(|e| e.to_string())?;
    ///     for _ in 1..3 {
    ///         match send_update().await {
    ///             Err(e) if e == "READONLY" => {
    ///                 // Held until the failover ends, whether or not a guard is held.
    ///                 guard = buffer
    ///                     .wait_to_retry(shard, guard, FailoverCause::Reparent)
    ///                     .await
    ///                     .map_err(|e| e.to_string())?;
    ///             }
    ///             other => return other, // the guard, if any, drops here: retry done
    ///         }
    ///     }
    ///     send_update().await
    /// }
    /// # async fn send_update() -> Result<u64, String> { Ok(1) }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// #     let buffer = FailoverBuffer::new(failover_buffer_tokio::Config { enabled: true, ..Default::default() }).unwrap();
    /// #     let shard = buffer.register_shard("commerce", "0");
    /// #     assert_eq!(execute(&buffer, &shard).await, Ok(1));
    /// # }
    /// ```
    ///
    /// # Cancel safety
    ///
    /// As [`RetryGuard::retry_failed`] and `wait_for_failover_end`: dropping the future
    /// reports the guard's retry done, or cancels the request if it is held; no slot is
    /// stranded.
    pub async fn wait_to_retry(
        &self,
        shard: &Shard,
        guard: Option<RetryGuard>,
        cause: FailoverCause,
    ) -> Result<Option<RetryGuard>, BufferError> {
        match guard {
            Some(guard) => guard.retry_failed(cause).await,
            None => self.wait_for_failover_end(shard, Some(cause)).await,
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
    /// paces a drain.
    ///
    /// ```
    /// use failover_buffer_tokio::{Config, FailoverBuffer, FailoverCause, RunError};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let buffer = FailoverBuffer::new(Config { enabled: true, ..Config::default() }).unwrap();
    /// let shard = buffer.register_shard("commerce", "0");
    ///
    /// let answer: Result<u64, RunError<String>> = buffer
    ///     .run(&shard, 3, || async { Ok::<u64, String>(1) }, |e: &String| {
    ///         e.starts_with("READONLY").then_some(FailoverCause::Reparent)
    ///     })
    ///     .await;
    /// assert_eq!(answer, Ok(1));
    /// # }
    /// ```
    ///
    /// # Cancel safety
    ///
    /// Dropping the future drops what it holds: an attempt in flight (its guard reports
    /// the retry done) or a held request (cancelled). No slot is stranded. A proxy should
    /// drop it when its client hangs up (see the crate's guide to traps).
    pub async fn run<T, E, Fut>(
        &self,
        shard: &Shard,
        max_attempts: u32,
        mut attempt: impl FnMut() -> Fut,
        mut classify: impl FnMut(&E) -> Option<FailoverCause>,
    ) -> Result<T, RunError<E>>
    where
        Fut: Future<Output = Result<T, E>>,
    {
        let mut guard = self
            .wait_for_failover_end(shard, None)
            .await
            .map_err(RunError::Buffer)?;
        let mut attempts = 1;
        loop {
            let error = match attempt().await {
                Ok(value) => return Ok(value),
                Err(error) => error,
            };
            match classify(&error) {
                Some(cause) if attempts < max_attempts => {
                    guard = self
                        .wait_to_retry(shard, guard, cause)
                        .await
                        .map_err(RunError::Buffer)?;
                    attempts += 1;
                }
                _ => return Err(RunError::Attempt(error)),
            }
        }
    }
}
