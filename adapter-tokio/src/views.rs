//! What the core offers beyond the request path, for a router: run-time reconfiguration and
//! the per-shard episode view.

use failover_buffer::{Config, ConfigError, EpisodeView};

use crate::buffer::{FailoverBuffer, Shard};
use crate::shared::Touched;

impl FailoverBuffer {
    /// Changes the limits at run time, as an operator does during an incident (raising the
    /// size, say): see [`Buffer::reconfigure`](failover_buffer::Buffer::reconfigure) for
    /// what each setting does to the requests already held. Requests it releases or evicts
    /// are woken at once, and the timer follows the new deadlines.
    ///
    /// Refused, changing nothing, with the [`ConfigError`] of [`Config::validate`], or
    /// [`ConfigError::ModeSettingsChanged`] when `enabled`, `dry_run` or the filter differ.
    ///
    /// ```
    /// use failover_buffer_tokio::{Config, FailoverBuffer};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let config = Config { enabled: true, ..Config::default() };
    /// let buffer = FailoverBuffer::new(config.clone()).unwrap();
    /// buffer.reconfigure(Config { size: 5_000, ..config }).unwrap();
    /// assert_eq!(buffer.free_slots(), 5_000);
    /// # }
    /// ```
    pub fn reconfigure(&self, config: Config) -> Result<(), ConfigError> {
        self.shared().input(Touched::All, |state, now, _| {
            state.core.reconfigure(now, config)
        })
    }

    /// `shard`'s current or last failover episode (when it started, the term it waits to see
    /// beaten, its max-duration deadline, a paused drain's resume instant, why it stopped),
    /// or `None` if it never had one or belongs to another buffer. Timestamps are on the
    /// buffer's clock: time since the buffer was made.
    pub fn episode(&self, shard: &Shard) -> Option<EpisodeView> {
        let shared = self.shared();
        let id = shared.shard_id(&shard.cell);
        shared.lock().core.episode(id)
    }

    /// The configuration in force.
    pub fn config(&self) -> Config {
        self.shared().lock().core.config().clone()
    }
}
