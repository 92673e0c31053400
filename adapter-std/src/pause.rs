//! The bounded operator pause, for planned maintenance: hold every request of a shard (or of
//! all shards), first attempts included, until a resume or until a bound runs out.

use std::time::Duration;

use failover_buffer::{PauseError, PauseScope, Timestamp};

use crate::buffer::FailoverBuffer;
use crate::shard::Shard;

impl FailoverBuffer {
    /// Pauses `shard` for planned maintenance: from now on every request to it is held,
    /// first attempts included, until [`resume`](Self::resume) or until `max` has passed,
    /// whichever comes first (then it resumes by itself and
    /// [`ShardStats::pauses_ended`](failover_buffer::ShardStats::pauses_ended) counts it as
    /// `Expired`). The timer thread drives the expiry; nothing else need run. Held callers
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
    /// use failover_buffer_std::{Config, FailoverBuffer, ShardState};
    ///
    /// let buffer = FailoverBuffer::new(Config { enabled: true, ..Config::default() }).unwrap();
    /// let shard = buffer.register_shard("commerce", "0");
    /// buffer.pause(&shard, Duration::from_secs(30)).unwrap();
    /// let held = std::thread::spawn({
    ///     let (buffer, shard) = (buffer.clone(), shard.clone());
    ///     move || buffer.wait_for_failover_end(&shard, None).map(|guard| guard.is_some())
    /// });
    /// while buffer.queued(&shard) == 0 {
    ///     std::thread::yield_now(); // the first attempt is held
    /// }
    /// assert!(buffer.resume(&shard).unwrap());
    /// assert_eq!(held.join().unwrap(), Ok(true), "released to retry");
    /// ```
    pub fn pause(&self, shard: &Shard, max: Duration) -> Result<(), PauseError> {
        self.shared()
            .run(|st, now, fx| {
                let id = st.shard_id(&shard.inner);
                fx.telemetry.touch(id);
                st.core.pause(now, PauseScope::Shard(id), max)
            })
            .map(drop)
    }

    /// Pauses every enabled shard registered now, as [`pause`](Self::pause) pauses one
    /// (disabled and dry-run shards are skipped; a shard registered later is not paused).
    /// Returns how many shards it paused.
    pub fn pause_all(&self, max: Duration) -> Result<usize, PauseError> {
        self.shared().run(|st, now, fx| {
            fx.telemetry.touch_all();
            st.core.pause(now, PauseScope::All, max)
        })
    }

    /// Ends `shard`'s pause: what it held is released, paced by `drain_concurrency` (or,
    /// while a failover still holds the shard, when that ends). Returns whether it was
    /// paused: resuming a shard that is not (resumed already, its pause expired) is no
    /// error. Refused only for a shard of another buffer.
    pub fn resume(&self, shard: &Shard) -> Result<bool, PauseError> {
        self.shared()
            .run(|st, now, fx| {
                let id = st.shard_id(&shard.inner);
                fx.telemetry.touch(id);
                st.core.resume(now, PauseScope::Shard(id))
            })
            .map(|n| n > 0)
    }

    /// Ends every pause; returns how many.
    pub fn resume_all(&self) -> usize {
        self.shared()
            .run(|st, now, fx| {
                fx.telemetry.touch_all();
                st.core.resume(now, PauseScope::All)
            })
            .unwrap_or(0)
    }

    /// When `shard`'s pause ends by itself, on the buffer's clock (see
    /// [`now`](Self::now)); `None` if it is not paused (or belongs to another buffer).
    pub fn pause_expiry(&self, shard: &Shard) -> Option<Timestamp> {
        let st = self.shared().lock();
        let id = st.shard_id(&shard.inner);
        st.core.pause_expiry(id)
    }
}
