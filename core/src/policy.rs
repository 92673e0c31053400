//! Fair sharing: which request a full buffer (or a shard at its cap) pushes out for a
//! newcomer, decided in O(1) from the shard's queue and the buffer-wide FIFO.

use crate::queue::{Pool, Queue};
use crate::shard::ShardId;
use crate::time::Timestamp;

/// Whom a request that finds no free slot pushes out ([`Config::eviction`](crate::Config::eviction)).
///
/// Every policy is O(1) per request: each shard's queue and the buffer-wide queue of every
/// queued request are intrusive FIFO lists in one slab. Only queued requests are ever
/// evicted (`Fail(Evicted)`, counted as evicted `BufferFull` on the victim's shard); one
/// released to retry keeps its slot until its retry ends. A newcomer that cannot be given
/// a slot fails with `BufferFull` (counted as skipped `BufferFull`).
///
/// [`Config::max_per_shard`](crate::Config::max_per_shard) applies first, under every
/// policy: a shard at its cap makes room by evicting its *own* oldest queued request (under
/// `RejectNew`, by refusing the newcomer), so a capped shard never pushes out another
/// shard's request to go above its share.
///
/// ```
/// use failover_buffer::{Admission, Buffer, BufferError, Config, Eviction, FailoverCause, Timestamp};
///
/// let config = Config { enabled: true, size: 2, eviction: Eviction::OldestAnywhere, ..Config::default() };
/// let mut buffer = Buffer::new(config)?;
/// let (a, b) = (buffer.register_shard("ks", "a"), buffer.register_shard("ks", "b"));
/// let t = Timestamp::from_secs(1);
/// let failover = Some(FailoverCause::Reparent);
/// buffer.request(t, a, failover)?;
/// buffer.request(t, a, failover)?;
/// // Shard b fails over too: under Vitess's policy it would get `BufferFull`; here it takes
/// // shard a's oldest slot.
/// assert!(matches!(buffer.request(t, b, failover)?, Admission::Wait(_)));
/// assert_eq!(buffer.queued(a), Some(1));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Eviction {
    /// The newcomer's shard's oldest queued request makes way; a shard with nothing queued
    /// gets `BufferFull`, and other shards' requests are never touched (Vitess). One shard
    /// failing over can take every slot from a second one.
    #[default]
    OldestOfShard,
    /// The oldest queued request of any shard makes way (Multigres): the buffer holds the
    /// newest requests, whichever shard they are for.
    OldestAnywhere,
    /// Nobody is evicted: the newcomer fails with `BufferFull`. Requests already held keep
    /// their place, for clients that prefer an early error to losing a request they waited
    /// for.
    RejectNew,
}

impl Eviction {
    /// Every policy, in declaration order.
    pub const ALL: [Eviction; 3] = [
        Eviction::OldestOfShard,
        Eviction::OldestAnywhere,
        Eviction::RejectNew,
    ];

    /// The policy's name, as scenario files and metrics spell it: `"oldest_of_shard"`,
    /// `"oldest_anywhere"`, `"reject_new"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Eviction::OldestOfShard => "oldest_of_shard",
            Eviction::OldestAnywhere => "oldest_anywhere",
            Eviction::RejectNew => "reject_new",
        }
    }
}

impl core::fmt::Display for Eviction {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl core::str::FromStr for Eviction {
    type Err = UnknownEviction;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Eviction::ALL
            .into_iter()
            .find(|e| e.as_str() == s)
            .ok_or(UnknownEviction)
    }
}

/// A policy name [`Eviction::from_str`](core::str::FromStr) does not know.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownEviction;

impl core::fmt::Display for UnknownEviction {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(
            "unknown eviction policy (expected oldest_of_shard, oldest_anywhere or reject_new)",
        )
    }
}

impl core::error::Error for UnknownEviction {}

/// The limits fair sharing reads, in the units the hot path wants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Sharing {
    pub(crate) eviction: Eviction,
    /// `usize::MAX` when there is no cap.
    pub(crate) max_per_shard: usize,
    /// `u64::MAX` when there is no budget.
    pub(crate) max_bytes: u64,
}

/// How a newcomer gets its slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Room {
    /// A slot is free.
    Free,
    /// This queued entry (of this shard or another) is evicted for it.
    Evict(u32),
    /// No slot can be had: the newcomer fails with `BufferFull`.
    Refuse,
}

impl Sharing {
    /// Where a request for `shard`, whose queue is `queue`, gets its slot. O(1).
    pub(crate) fn room(&self, size: usize, pool: &Pool, shard: ShardId, queue: &Queue) -> Room {
        let evict = |slot: Option<u32>| slot.map_or(Room::Refuse, Room::Evict);
        if pool.held_by(shard) >= self.max_per_shard {
            return match self.eviction {
                Eviction::RejectNew => Room::Refuse,
                _ => evict(queue.head()),
            };
        }
        if pool.len() < size {
            return Room::Free;
        }
        match self.eviction {
            Eviction::OldestOfShard => evict(queue.head()),
            Eviction::OldestAnywhere => evict(pool.all().head()),
            Eviction::RejectNew => Room::Refuse,
        }
    }

    /// Whether a request of `bytes` can be brought under the byte budget by evicting what
    /// the policy allows, `unevictable` bytes of this shard's queue aside (those its window
    /// is about to release). O(1): nothing is evicted unless all of it would fit.
    pub(crate) fn bytes_fit(
        &self,
        pool: &Pool,
        queue: &Queue,
        bytes: u64,
        unevictable: u64,
    ) -> bool {
        if bytes > self.max_bytes {
            return false;
        }
        let held = pool.bytes().saturating_add(bytes);
        if held <= self.max_bytes {
            return true;
        }
        let evictable = match self.eviction {
            Eviction::OldestOfShard => queue.bytes(),
            Eviction::OldestAnywhere => pool.all().bytes(),
            Eviction::RejectNew => 0,
        }
        .saturating_sub(unevictable);
        held - evictable.min(held) <= self.max_bytes
    }

    /// Whether [`room`](Self::room) would find a slot after `shard`'s requests due at `now`
    /// have been released by their window (they keep their slots, but can no longer be
    /// evicted). O(1).
    pub(crate) fn room_after_expiry(
        &self,
        size: usize,
        pool: &Pool,
        shard: ShardId,
        queue: &Queue,
        now: Timestamp,
    ) -> bool {
        let own_left = Pool::tail_of(queue).is_some_and(|t| pool.entry(t).deadline > now);
        if pool.held_by(shard) >= self.max_per_shard {
            return self.eviction != Eviction::RejectNew && own_left;
        }
        if pool.len() < size {
            return true;
        }
        match self.eviction {
            Eviction::OldestOfShard => own_left,
            Eviction::OldestAnywhere => own_left || pool.all().len() > queue.len(),
            Eviction::RejectNew => false,
        }
    }
}
