//! Where commands go: the current primary of a shard, and the servers' pools.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use failover_buffer_tokio::PrimaryId;

use crate::pool::Pool;

/// One Redis server the router may send commands to.
#[derive(Debug)]
pub struct Backend {
    /// Its address.
    pub addr: SocketAddr,
    /// Its identity for the buffer: the address, hashed ([`primary_id`]).
    pub id: PrimaryId,
    /// Its connections.
    pub pool: Pool,
    /// Connections to it that failed under a command, counted (see
    /// [`connection_failed`](Self::connection_failed)).
    failures: AtomicU64,
}

impl Backend {
    /// Notes that a connection to this server failed under a command (refused, reset,
    /// closed, timed out): the command's path saw it stop serving, if only for a moment.
    /// The health watcher reads the count, so that its next report of this server as a
    /// serving primary says "not serving" first (see `health::Reporter`): a buffering episode
    /// that such a failure started then ends as soon as a later probe finds the server
    /// serving, instead of running to `max_failover_duration` while nothing changes.
    pub fn connection_failed(&self) {
        self.failures.fetch_add(1, Ordering::Relaxed);
    }

    /// How many times [`connection_failed`](Self::connection_failed) was called.
    pub fn connection_failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }
}

/// A stable identity hashed to the buffer's `u64`: 64-bit FNV-1a of the text, the same on
/// every run and every machine.
pub fn primary_id(identity: &str) -> PrimaryId {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in identity.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    PrimaryId(hash)
}

/// Every server seen, by address, so that a server's pool outlives route changes.
#[derive(Debug)]
pub struct Backends {
    known: Mutex<HashMap<SocketAddr, Arc<Backend>>>,
    pool_size: usize,
    connect_timeout: Duration,
}

impl Backends {
    /// An empty registry whose pools keep `pool_size` idle connections each.
    pub fn new(pool_size: usize, connect_timeout: Duration) -> Backends {
        Backends {
            known: Mutex::new(HashMap::new()),
            pool_size,
            connect_timeout,
        }
    }

    /// The backend for `addr`, created on first use.
    pub fn get(&self, addr: SocketAddr) -> Arc<Backend> {
        let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(known.entry(addr).or_insert_with(|| {
            Arc::new(Backend {
                addr,
                id: primary_id(&addr.to_string()),
                pool: Pool::new(addr, self.pool_size, self.connect_timeout),
                failures: AtomicU64::new(0),
            })
        }))
    }
}

/// A shard's current primary, as the health watcher last set it. The watcher sets the route
/// *before* it reports a new primary to the buffer, because the report releases held
/// requests at once and they must find the new route.
#[derive(Debug, Default)]
pub struct Route {
    primary: RwLock<Option<Arc<Backend>>>,
}

impl Route {
    /// The current primary, if one is known.
    pub fn current(&self) -> Option<Arc<Backend>> {
        self.primary
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Routes nowhere: commands meet "no primary" (a failover error) until [`set`](Self::set).
    /// Returns whether a primary was routed to.
    pub fn clear(&self) -> bool {
        self.primary
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .is_some()
    }

    /// Routes to `backend` from now on. Returns whether this changed the route.
    pub fn set(&self, backend: Arc<Backend>) -> bool {
        let mut primary = self.primary.write().unwrap_or_else(|e| e.into_inner());
        let changed = primary.as_ref().is_none_or(|p| p.addr != backend.addr);
        *primary = Some(backend);
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primary_id_is_fnv1a_and_stable() {
        assert_eq!(primary_id(""), PrimaryId(0xcbf2_9ce4_8422_2325));
        assert_eq!(primary_id("a"), PrimaryId(0xaf63_dc4c_8601_ec8c));
        assert_ne!(primary_id("127.0.0.1:7000"), primary_id("127.0.0.1:7001"));
    }
}
