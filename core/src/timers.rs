//! The deadline index: every shard's next timer in a min-heap, so that
//! [`Buffer::poll_timeout`](crate::Buffer::poll_timeout) is O(1) and a
//! [`Buffer::tick`](crate::Buffer::tick) with nothing due is O(1), however many shards buffer.
//!
//! The index knows nothing of *why* a shard has a deadline. After every input that touched a
//! shard, the buffer recomputes that shard's own next deadline from its fields
//! ([`ShardBuffer::next_deadline`](crate::shard_buffer::ShardBuffer::next_deadline), O(1)) and
//! hands it to [`Timers::set`]; so any deadline a shard learns to have is indexed with no
//! other change. Entries are invalidated lazily: each shard has a version, bumped whenever its
//! deadline changes, and a heap entry whose version is not its shard's current one is stale.
//! The top of the heap is kept valid after every change (stale entries above it are popped),
//! which is what lets the queries take `&self`; stale entries below it are swept when they
//! outnumber the live ones.

use alloc::collections::BinaryHeap;
use alloc::vec::Vec;
use core::cmp::Reverse;

use crate::shard::ShardId;
use crate::time::Timestamp;

/// One indexed deadline. Ordered by `(at, shard)`, the order in which ties are broken.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Entry {
    pub(crate) at: Timestamp,
    pub(crate) shard: ShardId,
    version: u32,
}

/// A shard's current indexed deadline.
#[derive(Clone, Copy, Debug)]
struct Current {
    at: Option<Timestamp>,
    version: u32,
}

/// Every buffering shard's next deadline, earliest first.
#[derive(Debug, Default)]
pub(crate) struct Timers {
    heap: BinaryHeap<Reverse<Entry>>,
    /// Per shard index.
    current: Vec<Current>,
    /// Shards with a deadline indexed.
    live: usize,
}

clone_field_by_field!(Timers {
    heap,
    current,
    live
});

impl Timers {
    /// Room for `additional` more shards without growing.
    pub(crate) fn reserve(&mut self, additional: usize) {
        self.current.reserve_exact(additional);
    }

    /// Makes room for one more shard, with no deadline.
    pub(crate) fn register(&mut self) {
        self.current.push(Current {
            at: None,
            version: 0,
        });
    }

    /// The earliest deadline and its shard.
    pub(crate) fn first(&self) -> Option<Entry> {
        self.heap.peek().map(|e| e.0)
    }

    /// The deadline indexed for `shard`.
    pub(crate) fn get(&self, shard: ShardId) -> Option<Timestamp> {
        self.current.get(shard.index()).and_then(|c| c.at)
    }

    /// Shards with a deadline indexed.
    pub(crate) fn len(&self) -> usize {
        self.live
    }

    /// Sets `shard`'s deadline (`None`: it has none). O(1) if unchanged, else O(log n)
    /// amortised.
    #[inline]
    pub(crate) fn set(&mut self, shard: ShardId, at: Option<Timestamp>) {
        let Some(current) = self.current.get_mut(shard.index()) else {
            return;
        };
        if current.at == at {
            return;
        }
        self.change(shard, at);
    }

    /// [`set`](Self::set), when the deadline changed.
    fn change(&mut self, shard: ShardId, at: Option<Timestamp>) {
        let current = &mut self.current[shard.index()];
        // The version changes with every change of deadline, so an entry pushed before is
        // stale. It cannot come round again while such an entry survives: every sweep (at
        // most `live + 64` pushes apart) removes all stale entries.
        current.version = current.version.wrapping_add(1);
        match (current.at, at) {
            (None, Some(_)) => self.live += 1,
            (Some(_), None) => self.live -= 1,
            _ => {}
        }
        current.at = at;
        if let Some(at) = at {
            self.heap.push(Reverse(Entry {
                at,
                shard,
                version: current.version,
            }));
        }
        self.settle();
    }

    /// Removes the earliest entry if it is due at `now`, returning its shard, whose deadline
    /// is then unset: the caller fires its timers and sets its next deadline.
    pub(crate) fn pop_due(&mut self, now: Timestamp) -> Option<ShardId> {
        let top = self.first()?;
        if top.at > now {
            return None;
        }
        self.heap.pop();
        let current = &mut self.current[top.shard.index()];
        current.at = None;
        current.version = current.version.wrapping_add(1);
        self.live -= 1;
        self.settle();
        Some(top.shard)
    }

    /// Empties the index (before every shard's deadline is set again).
    pub(crate) fn clear(&mut self) {
        self.heap.clear();
        for c in &mut self.current {
            c.at = None;
            c.version = c.version.wrapping_add(1);
        }
        self.live = 0;
    }

    fn is_live(&self, e: &Entry) -> bool {
        let c = self.current[e.shard.index()];
        c.version == e.version && c.at == Some(e.at)
    }

    /// Keeps the top valid, and the stale entries fewer than the live ones (plus slack).
    fn settle(&mut self) {
        if self.heap.len() > 2 * self.live + 64 {
            let current = &self.current;
            self.heap.retain(|e| {
                let c = current[e.0.shard.index()];
                c.version == e.0.version && c.at == Some(e.0.at)
            });
        }
        while let Some(top) = self.heap.peek() {
            if self.is_live(&top.0) {
                break;
            }
            self.heap.pop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(n: u64) -> Timestamp {
        Timestamp::from_nanos(n)
    }

    fn timers(n: u32) -> Timers {
        let mut timers = Timers::default();
        for _ in 0..n {
            timers.register();
        }
        timers
    }

    #[test]
    fn the_first_deadline_is_the_earliest_live_one() {
        let mut timers = timers(3);
        timers.set(ShardId(0), Some(t(30)));
        timers.set(ShardId(1), Some(t(10)));
        timers.set(ShardId(2), Some(t(20)));
        assert_eq!(timers.first().map(|e| e.shard), Some(ShardId(1)));
        // Moving the earliest later makes its old entry stale: the next earliest leads.
        timers.set(ShardId(1), Some(t(40)));
        assert_eq!(
            timers.first().map(|e| (e.at, e.shard)),
            Some((t(20), ShardId(2)))
        );
        timers.set(ShardId(2), None);
        assert_eq!(
            timers.first().map(|e| (e.at, e.shard)),
            Some((t(30), ShardId(0)))
        );
        assert_eq!(timers.len(), 2);
    }

    #[test]
    fn ties_go_to_the_lower_shard() {
        let mut timers = timers(2);
        timers.set(ShardId(1), Some(t(5)));
        timers.set(ShardId(0), Some(t(5)));
        assert_eq!(timers.pop_due(t(5)), Some(ShardId(0)));
        assert_eq!(timers.pop_due(t(5)), Some(ShardId(1)));
        assert_eq!(timers.pop_due(t(5)), None);
    }

    #[test]
    fn a_deadline_that_comes_back_is_indexed_once() {
        let mut timers = timers(1);
        for _ in 0..1_000 {
            timers.set(ShardId(0), Some(t(1)));
            timers.set(ShardId(0), Some(t(2)));
        }
        timers.set(ShardId(0), Some(t(1)));
        assert_eq!(timers.pop_due(t(10)), Some(ShardId(0)));
        assert_eq!(timers.pop_due(t(10)), None);
        assert!(timers.heap.len() <= 64, "stale entries are swept");
    }

    #[test]
    fn nothing_due_pops_nothing() {
        let mut timers = timers(1);
        timers.set(ShardId(0), Some(t(10)));
        assert_eq!(timers.pop_due(t(9)), None);
        assert_eq!(timers.get(ShardId(0)), Some(t(10)));
    }
}
