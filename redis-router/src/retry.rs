//! The retry loop: every attempt goes through the buffer first.
//!
//! Kept in one function, generic over the attempt, so it can move to the adapter's own
//! helper once `failover-buffer-tokio` has one.

use std::future::Future;

use failover_buffer_tokio::{BufferError, FailoverBuffer, FailoverCause, RetryGuard, Shard};

/// How one attempt ended, as the retry loop needs to know it.
#[derive(Debug)]
pub enum Attempt<T, F> {
    /// Done: the answer for the client (a value, or an error that is not a failover).
    Done(T),
    /// A failover error on an attempt that may be made again: the primary cannot have run it.
    Failover(FailoverCause, F),
}

/// How a request ended without an answer.
#[derive(Debug)]
pub enum Exhausted<F> {
    /// Every attempt met a failover error; the last one.
    Failover(F),
    /// The buffer refused to hold the request (full, evicted, window expired, shard gone).
    Buffer(BufferError),
}

/// Runs `attempt` up to `max_attempts` times, each one behind the buffer.
///
/// The first attempt asks the buffer with no cause (on a healthy shard that is one atomic
/// load). After a failover error, the next attempt asks with its cause: the buffer may hold
/// it until the new primary serves. A retry that the buffer had held and released and that
/// fails again is reported with [`RetryGuard::retry_failed`], so the drain backs off instead
/// of releasing everyone into a primary that is not writable yet.
///
/// # Cancel safety
///
/// Dropping the future cancels a held request (its slot is freed) or reports a released
/// retry done; an attempt in flight is dropped with it.
pub async fn run<T, F, Fut>(
    buffer: &FailoverBuffer,
    shard: &Shard,
    max_attempts: usize,
    mut attempt: impl FnMut() -> Fut,
) -> Result<T, Exhausted<F>>
where
    Fut: Future<Output = Attempt<T, F>>,
{
    let mut guard: Option<RetryGuard> = None;
    let mut cause: Option<FailoverCause> = None;
    let mut attempts = 0;
    loop {
        let admitted = match (guard.take(), cause) {
            (Some(held), Some(cause)) => held.retry_failed(cause).await,
            (_, cause) => buffer.wait_for_failover_end(shard, cause).await,
        };
        guard = admitted.map_err(Exhausted::Buffer)?;
        attempts += 1;
        match attempt().await {
            Attempt::Done(answer) => return Ok(answer),
            // The guard, if any, drops here: that retry is done.
            Attempt::Failover(_, failure) if attempts >= max_attempts => {
                return Err(Exhausted::Failover(failure));
            }
            Attempt::Failover(c, _) => cause = Some(c),
        }
    }
}
