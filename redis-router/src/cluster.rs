//! The slot map of a Redis Cluster: which buffer shard owns each hash slot, and how a
//! command waits for the map to be refreshed after a redirect.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::{Notify, watch};

use crate::route::Backend;
use crate::router::RoutedShard;
use crate::slot::{KeySpecs, SLOTS};

/// One snapshot of the cluster's shape, replaced whole by the watcher.
#[derive(Debug, Clone)]
pub(crate) struct SlotMap {
    /// For each slot, the index in `shards` of its owner.
    pub(crate) owner: Vec<Option<usize>>,
    /// Every shard registered so far, in registration order (a shard that lost its slots
    /// stays, owning none).
    pub(crate) shards: Vec<Arc<RoutedShard>>,
    /// The addresses of each shard's nodes (primary and replicas), by shard index.
    pub(crate) members: Vec<Vec<SocketAddr>>,
}

impl SlotMap {
    pub(crate) fn empty() -> SlotMap {
        SlotMap {
            owner: vec![None; SLOTS],
            shards: Vec::new(),
            members: Vec::new(),
        }
    }

    /// The indices in `shards` of the shards that own at least one slot, ascending.
    pub(crate) fn owning(&self) -> Vec<usize> {
        let mut owns = vec![false; self.shards.len()];
        for index in self.owner.iter().flatten() {
            if let Some(o) = owns.get_mut(*index) {
                *o = true;
            }
        }
        (0..owns.len()).filter(|i| owns[*i]).collect()
    }
}

/// What the per-connection tasks share about the cluster.
#[derive(Debug)]
pub(crate) struct Cluster {
    map: RwLock<Arc<SlotMap>>,
    /// Where each command's keys are, from the seed's `COMMAND`.
    pub(crate) specs: KeySpecs,
    /// Asks the watcher for a poll now.
    refresh: Notify,
    /// Counts the watcher's polls, so a command can wait for the next one.
    polls: watch::Sender<u64>,
    next_any: AtomicUsize,
}

impl Cluster {
    pub(crate) fn new(specs: KeySpecs) -> Cluster {
        Cluster {
            map: RwLock::new(Arc::new(SlotMap::empty())),
            specs,
            refresh: Notify::new(),
            polls: watch::Sender::new(0),
            next_any: AtomicUsize::new(0),
        }
    }

    /// The current map.
    pub(crate) fn map(&self) -> Arc<SlotMap> {
        Arc::clone(&self.map.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Installs a new map (the watcher, after each poll).
    pub(crate) fn set_map(&self, map: SlotMap) {
        *self.map.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(map);
    }

    /// The shard owning `slot`, if any.
    pub(crate) fn shard_of_slot(&self, slot: u16) -> Option<Arc<RoutedShard>> {
        let map = self.map();
        let index = map.owner.get(usize::from(slot)).copied().flatten()?;
        map.shards.get(index).cloned()
    }

    /// A shard with a primary routed to, for keyless commands, taken in turn.
    pub(crate) fn any_shard(&self) -> Option<Arc<RoutedShard>> {
        let map = self.map();
        let owning = map.owning();
        if owning.is_empty() {
            return None;
        }
        let start = self.next_any.fetch_add(1, Ordering::Relaxed);
        let pick = (0..owning.len())
            .map(|k| owning[(start + k) % owning.len()])
            .find(|&i| map.shards[i].route.current().is_some())
            .unwrap_or(owning[start % owning.len()]);
        Some(Arc::clone(&map.shards[pick]))
    }

    /// The primaries routed to, each once, starting from the next in turn (as
    /// [`any_shard`](Self::any_shard) takes them).
    pub(crate) fn primaries_in_turn(&self) -> Vec<Arc<Backend>> {
        let map = self.map();
        let routed: Vec<Arc<Backend>> = map
            .owning()
            .into_iter()
            .filter_map(|i| map.shards[i].route.current())
            .collect();
        if routed.is_empty() {
            return routed;
        }
        let start = self.next_any.fetch_add(1, Ordering::Relaxed) % routed.len();
        routed[start..]
            .iter()
            .chain(&routed[..start])
            .cloned()
            .collect()
    }

    /// Whether `addr` is a node of `shard` (its primary or a replica).
    pub(crate) fn is_member(&self, shard: &RoutedShard, addr: SocketAddr) -> bool {
        let map = self.map();
        map.shards
            .iter()
            .position(|s| s.shard.id() == shard.shard.id())
            .is_some_and(|i| map.members[i].contains(&addr))
    }

    /// Asks the watcher to poll now, without waiting.
    pub(crate) fn request_refresh(&self) {
        self.refresh.notify_one();
    }

    /// Asks the watcher to poll now and waits for that poll to finish (at most `limit`).
    pub(crate) async fn refresh(&self, limit: Duration) {
        let mut polls = self.polls.subscribe();
        let seen = *polls.borrow_and_update();
        self.refresh.notify_one();
        let _ = tokio::time::timeout(limit, polls.wait_for(|&n| n > seen.saturating_add(1))).await;
    }

    /// The watcher's side: wait for the interval or a refresh request.
    pub(crate) async fn refresh_requested(&self) {
        self.refresh.notified().await;
    }

    /// The watcher's side: one poll finished.
    pub(crate) fn polled(&self) {
        self.polls.send_modify(|n| *n += 1);
    }
}
