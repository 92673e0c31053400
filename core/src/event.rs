//! What the router tells the buffer about the world: failover errors, health, topology.

/// Why the previous attempt of a request failed, as the router classified it.
///
/// Only failover-class errors reach the buffer (Vitess `CausedByFailover`: code
/// `CLUSTER_EVENT`, or `FAILED_PRECONDITION` "disallowed due to rule"); a router passes any
/// other error straight to its client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FailoverCause {
    /// The primary is not serving: a reparent is in progress, or the server is read-only.
    Reparent,
    /// The keyspace is being resharded ("current keyspace is being resharded").
    Resharding,
    /// MoveTables is switching writes ("disallowed due to rule").
    MoveTables,
}

impl FailoverCause {
    /// Whether this cause is a reparent (Vitess `isErrorDueToReparenting`): a router that
    /// marks the shard not-serving on [`Action::FailoverStarted`](crate::Action::FailoverStarted)
    /// should then wait for a newer primary term.
    pub fn is_reparent(self) -> bool {
        matches!(self, FailoverCause::Reparent)
    }
}

/// The identity of a primary server (a Vitess tablet alias, a Redis run id, a Postgres system
/// identifier), as a number the router chooses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PrimaryId(pub u64);

impl PrimaryId {
    /// A primary's stable identity (a Redis `run_id` or `host:port`, a Postgres
    /// `system_identifier` with its host, a Vitess tablet alias), hashed to an id.
    ///
    /// The hash is 64-bit FNV-1a, fixed forever: the same bytes give the same id in every
    /// version, on every platform and in every process, so ids can be logged and compared
    /// across restarts. It is not a cryptographic hash: two identities could collide (about
    /// one chance in 2^64 per pair), which at worst hides one change of primary; a term that
    /// rises with each change still ends the failover.
    ///
    /// ```
    /// use failover_buffer::PrimaryId;
    ///
    /// let primary = PrimaryId::from_identity(b"10.0.0.7:6379");
    /// assert_eq!(primary, PrimaryId::from_identity(b"10.0.0.7:6379"));
    /// assert_ne!(primary, PrimaryId::from_identity(b"10.0.0.8:6379"));
    /// // The published FNV-1a 64 test vectors: these values never change.
    /// assert_eq!(PrimaryId::from_identity(b""), PrimaryId(0xcbf2_9ce4_8422_2325));
    /// assert_eq!(PrimaryId::from_identity(b"a"), PrimaryId(0xaf63_dc4c_8601_ec8c));
    /// assert_eq!(PrimaryId::from_identity(b"foobar"), PrimaryId(0x8594_4171_f739_67e8));
    /// // Usable in constants.
    /// const ZONE1_PRIMARY: PrimaryId = PrimaryId::from_identity(b"zone1-0000000101");
    /// assert_eq!(ZONE1_PRIMARY, PrimaryId::from_identity(b"zone1-0000000101"));
    /// ```
    pub const fn from_identity(identity: &[u8]) -> PrimaryId {
        const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
        const PRIME: u64 = 0x0000_0100_0000_01b3;
        let mut hash = OFFSET_BASIS;
        let mut i = 0;
        while i < identity.len() {
            hash ^= identity[i] as u64;
            hash = hash.wrapping_mul(PRIME);
            i += 1;
        }
        PrimaryId(hash)
    }
}

/// One observation from the health stream about a shard's primary.
///
/// `term` orders observations: it rises with every promotion (Vitess
/// `PrimaryTermStartTime`, a Redis replication epoch, a Postgres timeline). A stamp with a
/// term below the highest seen for its shard is stale and is ignored.
///
/// ```
/// use failover_buffer::{HealthStamp, PrimaryId};
///
/// let promoted = HealthStamp { primary: PrimaryId(101), term: 7, serving: true };
/// assert!(promoted.serving);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HealthStamp {
    /// Which server the stream reports as primary.
    pub primary: PrimaryId,
    /// Its term; higher means a later promotion.
    pub term: u64,
    /// Whether it accepts writes.
    pub serving: bool,
}

/// A topology change that ends a failover without a new primary (Vitess keyspace events).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TopologyEvent {
    /// The shard was resharded away: buffering stops (`ReshardingComplete`) and every request
    /// released from now on fails with [`BufferError::ShardMissing`](crate::BufferError::ShardMissing),
    /// so the router re-plans it.
    ShardMissing,
    /// MoveTables switched writes away from this shard: buffering stops
    /// (`MoveTablesSwitchedTraffic`) and requests are retried, to be re-planned by the router.
    TrafficSwitched,
}
