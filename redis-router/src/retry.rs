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

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use failover_buffer_tokio::{Config, HealthStamp, PrimaryId};

    use super::*;

    fn buffer() -> (FailoverBuffer, Shard) {
        let buffer = FailoverBuffer::new(Config {
            enabled: true,
            ..Config::default()
        })
        .unwrap();
        let shard = buffer.register_shard("redis", "0");
        let stamp = HealthStamp {
            primary: PrimaryId(1),
            term: 1,
            serving: true,
        };
        buffer.health(&shard, stamp).unwrap();
        (buffer, shard)
    }

    /// Fails with a failover error until `fail` attempts were made, then answers the count.
    fn attempts(
        fail: usize,
    ) -> (
        Arc<AtomicUsize>,
        impl FnMut() -> std::future::Ready<Attempt<usize, usize>>,
    ) {
        let made = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&made);
        (made, move || {
            let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
            std::future::ready(if n <= fail {
                Attempt::Failover(FailoverCause::Reparent, n)
            } else {
                Attempt::Done(n)
            })
        })
    }

    #[tokio::test(start_paused = true)]
    async fn a_released_retry_that_fails_again_pauses_the_drain_and_is_held_again() {
        let (buffer, shard) = buffer();
        let (made, attempt) = attempts(2);
        let request = tokio::spawn({
            let (buffer, shard) = (buffer.clone(), shard.clone());
            async move { run(&buffer, &shard, 5, attempt).await }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(
            made.load(Ordering::SeqCst),
            1,
            "the first attempt failed and is held"
        );
        let promoted = HealthStamp {
            primary: PrimaryId(2),
            term: 2,
            serving: true,
        };
        buffer.health(&shard, promoted).unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(made.load(Ordering::SeqCst), 2, "released, it failed again");
        assert_eq!(
            buffer.stats(&shard).drains_paused,
            1,
            "reported with retry_failed"
        );
        assert!(
            !request.is_finished(),
            "held again while the drain backs off"
        );
        let answer = request.await.unwrap();
        assert!(matches!(answer, Ok(3)), "{answer:?}");
        assert_eq!(buffer.stats(&shard).buffered, 2, "queued twice");
    }

    #[tokio::test(start_paused = true)]
    async fn without_buffering_attempts_used_up_answer_the_last_failover_error() {
        let unbuffered = FailoverBuffer::new(Config::default()).unwrap(); // enabled: false
        let shard = unbuffered.register_shard("redis", "0");
        let (made, attempt) = attempts(usize::MAX);
        let answer = run(&unbuffered, &shard, 3, attempt).await;
        assert!(matches!(answer, Err(Exhausted::Failover(3))), "{answer:?}");
        assert_eq!(made.load(Ordering::SeqCst), 3);
    }
}
