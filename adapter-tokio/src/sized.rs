//! Requests that carry a size, for the core's byte budget (`Config::max_bytes`).

use std::sync::atomic::Ordering;

use failover_buffer::{BufferError, FailoverCause};

use crate::buffer::{FailoverBuffer, Shard};
use crate::wait::{Ask, RetryGuard, Wait};

impl FailoverBuffer {
    /// [`wait_for_failover_end`](Self::wait_for_failover_end) for a request of `bytes`
    /// bytes: while held it counts against [`Config::max_bytes`](crate::Config::max_bytes)
    /// (and the shard's [`ShardStats::bytes_held`](crate::ShardStats::bytes_held)). A request
    /// that would take the buffer over its budget evicts held requests by the
    /// [`Config::eviction`](crate::Config::eviction) policy until it fits, or is refused
    /// with [`BufferError::BufferFull`] (evicting nothing) if it cannot be made to fit.
    ///
    /// The idle fast path, cancel safety and drop behaviour are those of
    /// `wait_for_failover_end`: a first attempt on a shard that is not failing over costs one
    /// atomic load, and dropping the future while held frees its slot and its bytes.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use failover_buffer_tokio::{Config, FailoverBuffer};
    ///
    /// let config = Config { enabled: true, max_bytes: Some(64 << 20), ..Config::default() };
    /// let buffer = FailoverBuffer::new(config).unwrap();
    /// let shard = buffer.register_shard("commerce", "0");
    /// // Not failing over: proceeds at once, whatever its size.
    /// assert!(buffer.wait_for_failover_end_sized(&shard, None, 1 << 20).await.unwrap().is_none());
    /// # }
    /// ```
    pub async fn wait_for_failover_end_sized(
        &self,
        shard: &Shard,
        cause: Option<FailoverCause>,
        bytes: u64,
    ) -> Result<Option<RetryGuard>, BufferError> {
        if cause.is_none() && !shard.cell.buffering.load(Ordering::Acquire) {
            return Ok(None);
        }
        Wait::new(&self.keeper, &shard.cell, Ask::RequestSized(cause, bytes)).await
    }

    /// Bytes held across all shards: held requests, and released ones whose retries have
    /// not finished (see [`wait_for_failover_end_sized`](Self::wait_for_failover_end_sized)).
    pub fn held_bytes(&self) -> u64 {
        self.keeper.shared.lock().core.held_bytes()
    }
}
