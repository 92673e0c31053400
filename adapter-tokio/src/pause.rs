//! The bounded operator pause, for planned maintenance: hold every request of a shard (or of
//! all shards), first attempts included, until a resume or until a bound runs out.

use std::time::Duration;

use failover_buffer::{PauseError, PauseScope};
use tokio::time::Instant;

use crate::buffer::{FailoverBuffer, Shard};
use crate::shared::Touched;

impl FailoverBuffer {
    /// Pauses `shard` for planned maintenance: from now on every request to it is held,
    /// first attempts included, until [`resume`](Self::resume) or until `max` has passed,
    /// whichever comes first (then it resumes by itself and
    /// [`ShardStats::pauses_ended`](failover_buffer::ShardStats::pauses_ended) counts it as
    /// `Expired`). The buffer's timer drives the expiry; nothing else need run. Held requests
    /// wait as in a failover: same slots, windows and eviction; a failover during the pause
    /// keeps the shard buffering until both have ended. See
    /// [`Buffer::pause`](failover_buffer::Buffer::pause) for every rule.
    ///
    /// Pausing a paused shard gives it the new bound, from now. Refused, changing nothing:
    /// `max` zero or above [`Config::max_pause`](failover_buffer::Config::max_pause), a shard
    /// that is not enabled, a shard of another buffer ([`PauseError::UnknownShard`]), and any
    /// pause once a shutdown has begun (a shutdown ends every pause).
    ///
    /// ```
    /// use std::time::Duration;
    /// use failover_buffer_tokio::{Config, FailoverBuffer};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let buffer = FailoverBuffer::new(Config { enabled: true, ..Config::default() }).unwrap();
    /// let shard = buffer.register_shard("commerce", "0");
    /// buffer.pause(&shard, Duration::from_secs(30)).unwrap();
    /// let held = tokio::spawn({
    ///     let (buffer, shard) = (buffer.clone(), shard.clone());
    ///     async move { buffer.wait_for_failover_end(&shard, None).await.map(|g| g.is_some()) }
    /// });
    /// tokio::task::yield_now().await;
    /// assert!(!held.is_finished(), "a first attempt is held while paused");
    /// assert!(buffer.resume(&shard).unwrap());
    /// assert_eq!(held.await.unwrap(), Ok(true), "released to retry");
    /// # }
    /// ```
    pub fn pause(&self, shard: &Shard, max: Duration) -> Result<(), PauseError> {
        let shared = self.shared();
        let id = shared.shard_id(&shard.cell);
        shared
            .input(Touched::One(id), |state, now, _| {
                state.core.pause(now, PauseScope::Shard(id), max)
            })
            .map(drop)
    }

    /// Pauses every enabled shard registered now, as [`pause`](Self::pause) pauses one
    /// (disabled and dry-run shards are skipped; a shard registered later is not paused).
    /// Returns how many shards it paused.
    pub fn pause_all(&self, max: Duration) -> Result<usize, PauseError> {
        self.shared().input(Touched::All, |state, now, _| {
            state.core.pause(now, PauseScope::All, max)
        })
    }

    /// Ends `shard`'s pause: what it held is released, paced by `drain_concurrency` (or,
    /// while a failover still holds the shard, when that ends). Returns whether it was
    /// paused: resuming a shard that is not (resumed already, its pause expired) is no
    /// error. Refused only for a shard of another buffer.
    pub fn resume(&self, shard: &Shard) -> Result<bool, PauseError> {
        let shared = self.shared();
        let id = shared.shard_id(&shard.cell);
        shared
            .input(Touched::One(id), |state, now, _| {
                state.core.resume(now, PauseScope::Shard(id))
            })
            .map(|n| n > 0)
    }

    /// Ends every pause; returns how many.
    pub fn resume_all(&self) -> usize {
        self.shared()
            .input(Touched::All, |state, now, _| {
                state.core.resume(now, PauseScope::All)
            })
            .unwrap_or(0)
    }

    /// When `shard`'s pause ends by itself, on tokio's clock; `None` if it is not paused (or
    /// belongs to another buffer).
    pub fn pause_expiry(&self, shard: &Shard) -> Option<Instant> {
        let shared = self.shared();
        let id = shared.shard_id(&shard.cell);
        let at = shared.lock().core.pause_expiry(id)?;
        Some(shared.instant(at))
    }
}
