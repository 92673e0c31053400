//! Naming shards: the dense id of the hot path, and a shard's state.

use core::fmt;

use crate::stats::StopReason;
use crate::time::Timestamp;

/// A registered shard, by dense index: the hot path addresses shards with no hashing.
///
/// Issued by [`Buffer::register_shard`](crate::Buffer::register_shard), for that buffer. An id
/// is only an index, checked against the number of shards registered: handed to another
/// buffer, it names that buffer's shard with the same index if it has one, and is refused
/// with [`InputError::UnknownShard`](crate::InputError::UnknownShard) otherwise. Keeping ids
/// with their buffer is the caller's part (the adapters do it for you); checking an owner on
/// every request would cost the hot path. Tickets, which act on one request, are checked:
/// see [`Ticket`](crate::Ticket).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShardId(pub(crate) u32);

impl ShardId {
    /// The index, from 0 in order of registration: handy for a caller's own per-shard arrays.
    pub fn index(self) -> usize {
        self.0 as usize
    }

    /// The id with this index, for fuzzers and tests that forge one.
    pub fn from_index(index: u32) -> ShardId {
        ShardId(index)
    }
}

impl fmt::Debug for ShardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ShardId({})", self.0)
    }
}

/// Where a shard is in a failover episode (Vitess `IDLE`, `BUFFERING`, `DRAINING`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ShardState {
    /// No failover in progress: requests proceed.
    Idle,
    /// A failover is in progress: requests are held.
    Buffering,
    /// The failover has ended: held requests are being released, new ones proceed.
    Draining,
}

/// A shard's current or last failover episode, as
/// [`Buffer::episode`](crate::Buffer::episode) shows it: what a router's health page or a
/// test needs to know about the failover in progress without replaying the actions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct EpisodeView {
    /// When it started (the first failover error, or a not-serving stamp).
    pub started_at: Timestamp,
    /// The highest health-stamp term known at the start: a serving stamp with a higher term
    /// ends the episode.
    pub start_term: Option<u64>,
    /// When `max_failover_duration` stops it: `started_at` plus the max duration in force
    /// now (a reconfiguration moves it).
    pub max_duration_deadline: Timestamp,
    /// While its drain is paused (DESIGN §5, drain back-off): when the drain resumes by
    /// itself.
    pub paused_until: Option<Timestamp>,
    /// Why its drain last started (the first stop is what
    /// [`ShardStats::stops`](crate::ShardStats::stops) counts); `None` until it first stops.
    pub stop_reason: Option<StopReason>,
}
