//! The buffer's shutdown as a handle: progress, cancel, and a future for its end.

use std::future::{Future, IntoFuture};
use std::pin::Pin;

use failover_buffer::ShutdownProgress;
use failover_buffer::drain::{DrainError, DrainState};

use crate::buffer::FailoverBuffer;
use crate::shared::Touched;

/// How a shutdown ended, as [`Shutdown::ended`] (or awaiting the handle) reports it.
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

/// A shutdown under way, as returned by [`FailoverBuffer::shutdown`].
///
/// The shutdown began when the handle was made; the handle only watches it and can call it
/// off. Await the handle (or [`ended`](Self::ended)) for its end; read
/// [`progress`](Self::progress) for where it is; [`cancel`](Self::cancel) to call it off.
///
/// # Cancel safety
///
/// Dropping the handle, or a future awaiting its end, does **not** cancel the shutdown,
/// which goes on (only [`cancel`](Self::cancel) calls it off). Awaiting again, from this
/// handle, a clone or a new [`FailoverBuffer::shutdown`] call, waits for the same end.
///
/// ```
/// use failover_buffer_tokio::{Config, FailoverBuffer, FailoverCause, ShutdownEnd};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let buffer = FailoverBuffer::new(Config { enabled: true, ..Config::default() }).unwrap();
/// let shard = buffer.register_shard("commerce", "0");
/// let held = tokio::spawn({
///     let (buffer, shard) = (buffer.clone(), shard.clone());
///     async move { buffer.wait_for_failover_end(&shard, Some(FailoverCause::Reparent)).await }
/// });
/// tokio::task::yield_now().await;
///
/// // Scale-in begins, then load returns: call it off.
/// let shutdown = buffer.shutdown();
/// println!("{}", shutdown.progress().unwrap());
/// shutdown.cancel().unwrap();
/// assert_eq!(shutdown.await, ShutdownEnd::Cancelled);
/// assert!(!buffer.is_closed());
/// # drop(held.await.unwrap());
/// # }
/// ```
#[derive(Clone, Debug)]
#[must_use = "the shutdown runs anyway; await the handle to wait for its end"]
pub struct Shutdown {
    buffer: FailoverBuffer,
    /// Which attempt this handle watches: the plan's count of begins when it was made.
    attempt: u64,
}

impl FailoverBuffer {
    /// Begins the buffer's shutdown (see
    /// [`Buffer::shutdown`](failover_buffer::Buffer::shutdown) for its four phases) and
    /// returns a handle to watch or cancel it; `buffer.shutdown().await` waits for its end.
    ///
    /// Every failing-over shard stops and drains its queue, paced by `drain_concurrency`;
    /// from now on every request proceeds unbuffered. The buffer closes once the last held
    /// request has ended, which includes every [`RetryGuard`](crate::RetryGuard) having
    /// been dropped (a caller that holds a guard while awaiting the close waits for
    /// itself), or once the [`shutdown_grace`](crate::Config::shutdown_grace) has passed.
    /// Until then [`Shutdown::cancel`] calls it off. Called while a shutdown runs, it
    /// returns a handle to that one.
    pub fn shutdown(&self) -> Shutdown {
        let shared = self.shared();
        let attempt = shared.input(Touched::All, |state, now, report| {
            if !state.core.is_shut_down() {
                report.shutdown(state.core.held_slots());
            }
            state.core.shutdown(now);
            attempt_of(&state.core)
        });
        Shutdown {
            buffer: self.clone(),
            attempt,
        }
    }
}

fn attempt_of(core: &failover_buffer::Buffer) -> u64 {
    core.shutdown_plan().map_or(0, |p| p.stats().begun)
}

impl Shutdown {
    /// Calls the shutdown off, with nothing lost: requests not yet released stay held, in
    /// order, with their deadlines; their shards buffer again; new failovers are buffered
    /// again. Every future awaiting this shutdown's end resolves with
    /// [`ShutdownEnd::Cancelled`].
    ///
    /// Refused with [`DrainError::Finished`] once the buffer has closed, and with
    /// [`DrainError::NotRunning`] when it was cancelled already.
    pub fn cancel(&self) -> Result<(), DrainError> {
        let shared = self.buffer.shared();
        let result = shared.input(Touched::All, |state, now, _| {
            if attempt_of(&state.core) != self.attempt {
                // A later shutdown runs: this one was cancelled already.
                return Err(DrainError::NotRunning);
            }
            state.core.cancel_shutdown(now)
        });
        if result.is_ok() {
            shared.closed.notify_waiters();
        }
        result
    }

    /// Where the shutdown is: its phase, the work left in it, time left and since it began,
    /// requests queued and retrying. `None` only for a handle whose attempt a later
    /// shutdown replaced.
    pub fn progress(&self) -> Option<ShutdownProgress> {
        let shared = self.buffer.shared();
        let state = shared.lock();
        if attempt_of(&state.core) != self.attempt {
            return None;
        }
        state.core.shutdown_progress(shared.now())
    }

    /// How the shutdown ended, or `None` while it runs.
    pub fn end(&self) -> Option<ShutdownEnd> {
        let state = self.buffer.shared().lock();
        if state.closed {
            return Some(ShutdownEnd::Closed);
        }
        let cancelled = attempt_of(&state.core) != self.attempt
            || state
                .core
                .shutdown_plan()
                .is_some_and(|p| p.state() == DrainState::Cancelled);
        cancelled.then_some(ShutdownEnd::Cancelled)
    }

    /// Resolves when the buffer has closed or the shutdown was cancelled.
    ///
    /// # Cancel safety
    ///
    /// Dropping this future does not cancel the shutdown; awaiting again waits for the same
    /// end.
    pub async fn ended(&self) -> ShutdownEnd {
        let shared = self.buffer.shared();
        loop {
            let ended = shared.closed.notified();
            tokio::pin!(ended);
            // Registered before the check, so an end in between is not missed.
            ended.as_mut().enable();
            if let Some(end) = self.end() {
                return end;
            }
            ended.await;
        }
    }
}

impl IntoFuture for Shutdown {
    type Output = ShutdownEnd;
    type IntoFuture = Pin<Box<dyn Future<Output = ShutdownEnd> + Send>>;

    /// [`ended`](Shutdown::ended), owning the handle: `buffer.shutdown().await`.
    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move { self.ended().await })
    }
}
