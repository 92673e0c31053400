//! The shard handle: a registered shard's id and its lock-free "buffering" flag.

use std::fmt;

use crate::sync::{Arc, AtomicBool};

use failover_buffer::ShardId;

/// The part of a shard handle the buffer keeps too.
#[derive(Debug)]
pub(crate) struct ShardInner {
    pub(crate) id: ShardId,
    /// Whether the core has this shard `Buffering`: set on `FailoverStarted`,
    /// `DrainPaused` and `PauseStarted`, cleared on `StartDrain`, always under the buffer's
    /// lock. Only an optimisation: a first attempt that reads `false` proceeds without the
    /// lock, as the core would answer; one that reads `true` asks the core, which has the last
    /// word.
    pub(crate) buffering: AtomicBool,
    // Immutable names, shared with telemetry: the standard `Arc` (nothing synchronises
    // through them).
    pub(crate) keyspace: std::sync::Arc<str>,
    pub(crate) name: std::sync::Arc<str>,
    /// The shard's wait histograms as last exported, allocated at its first sample. Only
    /// read and written under the buffer's lock (this mutex is never contended).
    #[cfg(feature = "metrics")]
    pub(crate) exported_waits: std::sync::Mutex<Option<Box<failover_buffer::WaitHistograms>>>,
}

/// A registered `keyspace/shard`, as returned by
/// [`FailoverBuffer::register_shard`](crate::FailoverBuffer::register_shard).
///
/// Keep it and pass it to every call for that shard: it carries the dense [`ShardId`] and
/// the shard's "buffering" flag, so the idle fast path of
/// [`wait_for_failover_end`](crate::FailoverBuffer::wait_for_failover_end) needs no lookup,
/// no lock and no allocation. Cloning is an `Arc` clone. A handle is valid only with the
/// buffer that issued it.
#[derive(Clone)]
pub struct Shard {
    pub(crate) inner: Arc<ShardInner>,
}

impl Shard {
    pub(crate) fn new(id: ShardId, keyspace: &str, shard: &str) -> Shard {
        Shard {
            inner: Arc::new(ShardInner {
                id,
                buffering: AtomicBool::new(false),
                keyspace: std::sync::Arc::from(keyspace),
                name: std::sync::Arc::from(shard),
                #[cfg(feature = "metrics")]
                exported_waits: std::sync::Mutex::default(),
            }),
        }
    }

    /// The core's id for this shard.
    pub fn id(&self) -> ShardId {
        self.inner.id
    }

    /// The keyspace name.
    pub fn keyspace(&self) -> &str {
        &self.inner.keyspace
    }

    /// The shard name within its keyspace.
    pub fn name(&self) -> &str {
        &self.inner.name
    }
}

impl fmt::Debug for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Shard({}/{}, {:?})",
            self.keyspace(),
            self.name(),
            self.id()
        )
    }
}

impl fmt::Display for Shard {
    /// `keyspace/shard`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.keyspace(), self.name())
    }
}
