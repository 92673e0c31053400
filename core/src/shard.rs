//! Naming shards: the dense id of the hot path, and a shard's state.

use core::fmt;

/// A registered shard, by dense index: the hot path addresses shards with no hashing.
///
/// Issued by [`Buffer::register_shard`](crate::Buffer::register_shard); valid only for the
/// buffer that issued it (another buffer answers [`InputError::UnknownShard`](crate::InputError::UnknownShard)).
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
