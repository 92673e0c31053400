//! Held requests: one slab for all shards, with an intrusive FIFO list per shard and one
//! buffer-wide FIFO of every queued request.
//!
//! Every live ticket owns one slab entry, and the slab's length is the number of slots held,
//! so the free-slot count is derived rather than kept (it cannot drift). A queued entry is
//! linked into its shard's list and into the buffer-wide list by slab index, so enqueue,
//! evict-oldest (of a shard, or of the whole buffer) and cancel of any entry are O(1) with
//! no scan (Vitess scans its slice to remove a cancelled request).

use core::sync::atomic::{AtomicU32, Ordering};

use alloc::vec::Vec;

use slab::Slab;

use crate::shard::ShardId;
use crate::stats::StopReason;
use crate::ticket::{Ticket, TicketError};
use crate::time::Timestamp;

// `Buffer::inspect` (feature `inspect`) reads this module's private fields from a child.
#[cfg(feature = "inspect")]
#[path = "inspect/pool_fields.rs"]
mod inspect_fields;

/// "No entry", for list links.
const NIL: u32 = u32::MAX;

/// Where a ticket is in its life, as [`Buffer::ticket_status`](crate::Buffer::ticket_status)
/// sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TicketStatus {
    /// Waiting in its shard's queue.
    Queued,
    /// Woken with [`Verdict::Retry`](crate::Verdict::Retry), for this reason; its retry has
    /// not finished. Those a drain released count against `drain_concurrency`.
    Retrying(ReleaseReason),
    /// Issued by this buffer and ended: woken with a failure, cancelled, or its retry done.
    Ended,
    /// Never issued by this buffer: another buffer's ticket, or a forged one.
    NotIssued,
}

impl TicketStatus {
    /// Whether the ticket holds a slot: queued, or released and retrying.
    pub fn is_live(self) -> bool {
        matches!(self, TicketStatus::Queued | TicketStatus::Retrying(_))
    }
}

/// Why a held request was released to retry: what a router or its metrics need to tell an
/// early window release (the failover was still on when it was sent) from the end of a
/// failover. Read it with [`Buffer::ticket_status`](crate::Buffer::ticket_status) when the
/// [`Action::Wake`](crate::Action::Wake) arrives: the ticket stays live until its retry is
/// reported done.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ReleaseReason {
    /// It was held for its whole `window` while its shard still buffered (Vitess
    /// `WindowExceeded`): the failover may well still be on.
    Window,
    /// Its shard's drain released it; the drain began for this reason:
    /// [`NewPrimarySeen`](StopReason::NewPrimarySeen) (the failover ended; a paused drain that
    /// resumes after its back-off keeps the reason it first stopped for),
    /// [`MaxDurationExceeded`](StopReason::MaxDurationExceeded),
    /// [`MoveTablesSwitchedTraffic`](StopReason::MoveTablesSwitchedTraffic) or
    /// [`Shutdown`](StopReason::Shutdown).
    Drain(StopReason),
    /// Its shard's operator pause ended ([`Buffer::resume`](crate::Buffer::resume), or its
    /// `max` ran out) with no failover behind it, and the drain that follows released it: the
    /// primary was never known to be away, the operator held it.
    PauseEnded,
}

/// A live entry's place in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Held {
    Queued,
    Retrying(ReleaseReason),
}

impl Held {
    /// Released by a drain (an episode's, or the one after a pause): counts against
    /// `drain_concurrency`.
    pub(crate) fn in_drain(self) -> bool {
        matches!(
            self,
            Held::Retrying(ReleaseReason::Drain(_) | ReleaseReason::PauseEnded)
        )
    }

    /// Released by an episode's drain: its failing again may call that drain off.
    pub(crate) fn in_episode_drain(self) -> bool {
        matches!(self, Held::Retrying(ReleaseReason::Drain(_)))
    }

    pub(crate) fn public(self) -> TicketStatus {
        match self {
            Held::Queued => TicketStatus::Queued,
            Held::Retrying(r) => TicketStatus::Retrying(r),
        }
    }
}

/// One held request. 48 bytes (the slab's entry too: the status's spare values are its
/// vacant marker), under DESIGN's 64-byte budget with room for the slab's doubling. The size
/// a request carries is kept beside it, in [`Pool`]'s `sizes`, only once a sized request
/// was held.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    generation: u64,
    /// Enqueue time + window: when the window releases it.
    pub(crate) deadline: Timestamp,
    /// When it was queued (or queued again by a drain's back-off): its wait, at its
    /// verdict, is measured from here.
    pub(crate) held_at: Timestamp,
    prev: u32,
    next: u32,
    /// Links in the buffer-wide FIFO of queued entries.
    all_prev: u32,
    all_next: u32,
    pub(crate) shard: ShardId,
    pub(crate) status: Held,
}

/// A shard's FIFO of queued entries.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Queue {
    head: u32,
    tail: u32,
    len: u32,
    /// Bytes of the entries linked.
    bytes: u64,
}

impl Default for Queue {
    fn default() -> Self {
        Queue::EMPTY
    }
}

impl Queue {
    /// Nothing queued.
    pub(crate) const EMPTY: Queue = Queue {
        head: NIL,
        tail: NIL,
        len: 0,
        bytes: 0,
    };

    pub(crate) fn len(&self) -> usize {
        self.len as usize
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes of the entries queued.
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The oldest entry's slot.
    pub(crate) fn head(&self) -> Option<u32> {
        (self.head != NIL).then_some(self.head)
    }
}

/// The slab of every live ticket, and the generation counter that makes tickets unforgeable.
#[derive(Debug)]
pub(crate) struct Pool {
    entries: Slab<Entry>,
    /// Every queued entry of every shard, in deadline order (oldest first).
    all: Queue,
    /// Per shard index: slots held, queued or retrying.
    held_by: Vec<u32>,
    /// Per shard index: bytes held, queued or retrying.
    bytes_by: Vec<u64>,
    /// Bytes held across all shards.
    bytes: u64,
    /// Per slot: the size of the request in it, counted against `max_bytes` (0 for a vacant
    /// slot). Empty until the first sized request (bytes above 0) is held, so a buffer that
    /// never holds a sized request pays nothing for sizes (48 bytes a held request). From
    /// then on it covers the slab's capacity at that time and grows when a sized request
    /// lands past its end; it never shrinks, so every slot then costs 56 bytes, sized or not.
    sizes: Vec<u64>,
    next_generation: u64,
    /// The owning buffer's identity, stamped on every ticket.
    buffer: u32,
}

/// Buffer identities, per process; 0 is never handed out (forged tickets carry it).
static NEXT_BUFFER: AtomicU32 = AtomicU32::new(1);

// `clone_from` reuses the slab's and the vectors' allocations.
clone_field_by_field!(Pool {
    entries,
    all,
    held_by,
    bytes_by,
    bytes,
    sizes,
    next_generation,
    buffer
});

impl Pool {
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        let mut buffer = NEXT_BUFFER.fetch_add(1, Ordering::Relaxed);
        if buffer == 0 {
            // Wrapped after 2^32 - 1 buffers: skip the forged tickets' identity.
            buffer = NEXT_BUFFER.fetch_add(1, Ordering::Relaxed);
        }
        Pool {
            entries: Slab::with_capacity(capacity),
            all: Queue::default(),
            held_by: Vec::new(),
            bytes_by: Vec::new(),
            bytes: 0,
            sizes: Vec::new(),
            next_generation: 1,
            buffer,
        }
    }

    fn issue(&mut self) -> u64 {
        let generation = self.next_generation;
        self.next_generation += 1;
        generation
    }

    /// Room for `additional` more shards' counts without growing.
    pub(crate) fn reserve_shards(&mut self, additional: usize) {
        self.held_by.reserve_exact(additional);
        self.bytes_by.reserve_exact(additional);
    }

    /// Makes room for one more shard's count of slots held.
    pub(crate) fn register(&mut self) {
        self.held_by.push(0);
        self.bytes_by.push(0);
    }

    /// Bytes held across all shards, queued or retrying.
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The size of the request in `slot` (0 for an unsized request, or a vacant slot).
    pub(crate) fn bytes_of(&self, slot: u32) -> u64 {
        self.sizes.get(slot as usize).copied().unwrap_or(0)
    }

    /// The sizes of every slot, free ones included (which should all be 0), for the
    /// invariant checker.
    pub(crate) fn sizes_total(&self) -> u64 {
        self.sizes.iter().sum()
    }

    /// Bytes `shard` holds, queued or retrying.
    pub(crate) fn bytes_by(&self, shard: ShardId) -> u64 {
        self.bytes_by.get(shard.index()).copied().unwrap_or(0)
    }

    /// The entry after `slot` in the buffer-wide FIFO.
    pub(crate) fn next_of_all(&self, slot: u32) -> Option<u32> {
        let next = self.entries[slot as usize].all_next;
        (next != NIL).then_some(next)
    }

    /// Slots `shard` holds: its live tickets, queued or retrying.
    pub(crate) fn held_by(&self, shard: ShardId) -> usize {
        self.held_by.get(shard.index()).map_or(0, |&n| n as usize)
    }

    /// The buffer-wide FIFO of every queued entry.
    pub(crate) fn all(&self) -> &Queue {
        &self.all
    }

    /// Slots held: live tickets, queued or retrying.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Entries waiting in a queue, across all shards.
    pub(crate) fn queued(&self) -> usize {
        self.all.len()
    }

    /// Issues a ticket queued at the back of `queue`.
    pub(crate) fn push_back(
        &mut self,
        queue: &mut Queue,
        shard: ShardId,
        held_at: Timestamp,
        deadline: Timestamp,
        bytes: u64,
    ) -> Ticket {
        let generation = self.issue();
        let slot = self.entries.insert(Entry {
            generation,
            deadline,
            held_at,
            prev: queue.tail,
            next: NIL,
            all_prev: self.all.tail,
            all_next: NIL,
            shard,
            status: Held::Queued,
        });
        // The slab never holds more than `size` entries (plus the one a newcomer takes just
        // before its victim from another shard leaves), and `size` is checked to fit at
        // construction, so the index fits in a u32 below NIL.
        let slot = u32::try_from(slot).unwrap_or(NIL - 1);
        if bytes != 0 {
            let i = slot as usize;
            if self.sizes.len() <= i {
                // Once per growth of the slab: sized as it is.
                self.sizes.resize(self.entries.capacity().max(i + 1), 0);
            }
            self.sizes[i] = bytes;
        }
        match queue.tail {
            NIL => queue.head = slot,
            tail => self.entries[tail as usize].next = slot,
        }
        queue.tail = slot;
        queue.len += 1;
        queue.bytes += bytes;
        self.all.bytes += bytes;
        self.bytes += bytes;
        if let Some(b) = self.bytes_by.get_mut(shard.index()) {
            *b += bytes;
        }
        match self.all.tail {
            NIL => self.all.head = slot,
            tail => self.entries[tail as usize].all_next = slot,
        }
        self.all.tail = slot;
        self.all.len += 1;
        if let Some(n) = self.held_by.get_mut(shard.index()) {
            *n += 1;
        }
        Ticket {
            slot,
            buffer: self.buffer,
            generation,
        }
    }

    /// Puts a released entry back into `queue` under a new ticket, keeping its slot and its
    /// deadline: ahead of every queued entry whose deadline is not earlier than its own, so
    /// the queue stays in deadline order (it walks past at most the entries put back the
    /// same way that are older, i.e. fewer than `drain_concurrency`). Its wait starts again
    /// at `now`.
    pub(crate) fn requeue(&mut self, queue: &mut Queue, slot: u32, now: Timestamp) -> Ticket {
        let deadline = self.entries[slot as usize].deadline;
        let mut prev = NIL;
        let mut next = queue.head;
        while next != NIL && self.entries[next as usize].deadline < deadline {
            prev = next;
            next = self.entries[next as usize].next;
        }
        let generation = self.issue();
        let e = &mut self.entries[slot as usize];
        e.generation = generation;
        e.held_at = now;
        e.status = Held::Queued;
        e.prev = prev;
        e.next = next;
        match prev {
            NIL => queue.head = slot,
            p => self.entries[p as usize].next = slot,
        }
        match next {
            NIL => queue.tail = slot,
            n => self.entries[n as usize].prev = slot,
        }
        queue.len += 1;
        let bytes = self.bytes_of(slot);
        queue.bytes += bytes;
        self.all.bytes += bytes;
        self.requeue_all(slot, next);
        self.ticket_at(slot)
    }

    /// Links a requeued entry into the buffer-wide FIFO ahead of every entry whose deadline
    /// is not earlier than its own, as in its shard's queue. It starts from its shard's next
    /// entry (or the tail), whose deadline is not earlier, and walks back past the other
    /// shards' entries with a deadline not earlier than its own: the requests queued since it
    /// first was, which a drain back-off keeps few.
    fn requeue_all(&mut self, slot: u32, shard_next: u32) {
        let deadline = self.entries[slot as usize].deadline;
        let mut next = shard_next;
        let mut prev = match next {
            NIL => self.all.tail,
            n => self.entries[n as usize].all_prev,
        };
        while prev != NIL && self.entries[prev as usize].deadline >= deadline {
            next = prev;
            prev = self.entries[prev as usize].all_prev;
        }
        let e = &mut self.entries[slot as usize];
        e.all_prev = prev;
        e.all_next = next;
        match prev {
            NIL => self.all.head = slot,
            p => self.entries[p as usize].all_next = slot,
        }
        match next {
            NIL => self.all.tail = slot,
            n => self.entries[n as usize].all_prev = slot,
        }
        self.all.len += 1;
    }

    /// Moves every entry's deadline to `latest` at the most: a shorter window applies to
    /// requests already held from now on. Order is kept (`min` with a constant is monotone).
    pub(crate) fn cap_deadlines(&mut self, latest: Timestamp) {
        for (_, e) in self.entries.iter_mut() {
            e.deadline = e.deadline.min(latest);
        }
    }

    /// Takes the oldest entry off `queue`, leaving it live (to be released or removed).
    pub(crate) fn pop_front(&mut self, queue: &mut Queue) -> Option<Ticket> {
        let slot = queue.head()?;
        self.unlink(queue, slot);
        Some(self.ticket_at(slot))
    }

    /// Takes the oldest entry off `queue` and gives it `status`, leaving it live: a drain's
    /// release, in one visit of the slot. Returns its ticket and when it was queued.
    #[inline]
    pub(crate) fn release_front(
        &mut self,
        queue: &mut Queue,
        status: Held,
    ) -> Option<(Ticket, Timestamp)> {
        let slot = queue.head()?;
        self.unlink(queue, slot);
        let e = &mut self.entries[slot as usize];
        e.status = status;
        let ticket = Ticket {
            slot,
            buffer: self.buffer,
            generation: e.generation,
        };
        Some((ticket, e.held_at))
    }

    /// Unlinks a queued entry from anywhere in `queue` (and from the buffer-wide FIFO), in
    /// O(1).
    pub(crate) fn unlink(&mut self, queue: &mut Queue, slot: u32) {
        let bytes = self.bytes_of(slot);
        let (prev, next, all_prev, all_next) = {
            let e = &mut self.entries[slot as usize];
            let links = (e.prev, e.next, e.all_prev, e.all_next);
            e.prev = NIL;
            e.next = NIL;
            e.all_prev = NIL;
            e.all_next = NIL;
            links
        };
        match all_prev {
            NIL => self.all.head = all_next,
            p => self.entries[p as usize].all_next = all_next,
        }
        match all_next {
            NIL => self.all.tail = all_prev,
            n => self.entries[n as usize].all_prev = all_prev,
        }
        self.all.len -= 1;
        self.all.bytes -= bytes;
        queue.bytes -= bytes;
        match prev {
            NIL => queue.head = next,
            p => self.entries[p as usize].next = next,
        }
        match next {
            NIL => queue.tail = prev,
            n => self.entries[n as usize].prev = prev,
        }
        queue.len -= 1;
    }

    /// The live entry `ticket` names, if it names one.
    pub(crate) fn get(&self, ticket: Ticket) -> Result<&Entry, TicketError> {
        match self.entries.get(ticket.slot as usize) {
            Some(e) if e.generation == ticket.generation && ticket.buffer == self.buffer => Ok(e),
            _ if self.issued(ticket) => Err(TicketError::Stale(ticket)),
            _ => Err(TicketError::NotIssued(ticket)),
        }
    }

    /// Whether this pool ever issued `ticket` (live or ended): it carries this buffer's
    /// identity, which only this pool stamps, and a generation already handed out.
    pub(crate) fn issued(&self, ticket: Ticket) -> bool {
        ticket.buffer == self.buffer && (1..self.next_generation).contains(&ticket.generation)
    }

    /// Where `ticket` is in its life.
    pub(crate) fn status(&self, ticket: Ticket) -> TicketStatus {
        match self.get(ticket) {
            Ok(e) => e.status.public(),
            Err(TicketError::Stale(_)) => TicketStatus::Ended,
            Err(_) => TicketStatus::NotIssued,
        }
    }

    pub(crate) fn entry(&self, slot: u32) -> &Entry {
        &self.entries[slot as usize]
    }

    pub(crate) fn set_status(&mut self, slot: u32, status: Held) {
        self.entries[slot as usize].status = status;
    }

    pub(crate) fn ticket_at(&self, slot: u32) -> Ticket {
        Ticket {
            slot,
            buffer: self.buffer,
            generation: self.entries[slot as usize].generation,
        }
    }

    /// Ends a ticket, freeing its slot. It must not be linked in a queue.
    pub(crate) fn remove(&mut self, slot: u32) -> u64 {
        let e = self.entries.remove(slot as usize);
        if let Some(n) = self.held_by.get_mut(e.shard.index()) {
            *n = n.saturating_sub(1);
        }
        let bytes = self.sizes.get_mut(slot as usize).map_or(0, core::mem::take);
        // Most requests carry no size: nothing more to count.
        if bytes != 0 {
            if let Some(b) = self.bytes_by.get_mut(e.shard.index()) {
                *b = b.saturating_sub(bytes);
            }
            self.bytes = self.bytes.saturating_sub(bytes);
        }
        bytes
    }

    /// Every live entry, for the invariant checker.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u32, &Entry)> {
        self.entries.iter().map(|(k, e)| (k as u32, e))
    }

    /// The slots of `queue`, head first, for the invariant checker. Stops after `limit`
    /// steps so a corrupted (cyclic) list cannot hang it.
    pub(crate) fn walk(&self, queue: &Queue, limit: usize) -> impl Iterator<Item = u32> + '_ {
        let mut at = queue.head;
        core::iter::from_fn(move || {
            let slot = at;
            if slot == NIL {
                return None;
            }
            at = self.entries.get(slot as usize).map_or(NIL, |e| e.next);
            Some(slot)
        })
        .take(limit)
    }

    /// The slots of the buffer-wide FIFO, head first, for the invariant checker; stops
    /// after `limit` steps.
    pub(crate) fn walk_all(&self, limit: usize) -> impl Iterator<Item = u32> + '_ {
        let mut at = self.all.head;
        core::iter::from_fn(move || {
            let slot = at;
            if slot == NIL {
                return None;
            }
            at = self.entries.get(slot as usize).map_or(NIL, |e| e.all_next);
            Some(slot)
        })
        .take(limit)
    }

    /// Whether `slot`'s buffer-wide back link points at `prev`, for the invariant checker.
    pub(crate) fn all_prev_is(&self, slot: u32, prev: Option<u32>) -> bool {
        self.entries
            .get(slot as usize)
            .is_some_and(|e| e.all_prev == prev.unwrap_or(NIL))
    }

    /// Whether `slot`'s back link points at `prev`, for the invariant checker.
    pub(crate) fn prev_is(&self, slot: u32, prev: Option<u32>) -> bool {
        self.entries
            .get(slot as usize)
            .is_some_and(|e| e.prev == prev.unwrap_or(NIL))
    }

    /// The tail's slot, for the invariant checker.
    pub(crate) fn tail_of(queue: &Queue) -> Option<u32> {
        (queue.tail != NIL).then_some(queue.tail)
    }
}

/// Corruption hooks for the invariant checker's own tests.
#[cfg(test)]
impl Pool {
    pub(crate) fn set_next(&mut self, slot: u32, next: u32) {
        self.entries[slot as usize].next = next;
    }

    pub(crate) fn set_deadline(&mut self, slot: u32, deadline: Timestamp) {
        self.entries[slot as usize].deadline = deadline;
    }

    pub(crate) fn set_size(&mut self, slot: u32, bytes: u64) {
        if self.sizes.len() <= slot as usize {
            self.sizes.resize(slot as usize + 1, 0);
        }
        self.sizes[slot as usize] = bytes;
    }

    pub(crate) fn set_shard(&mut self, slot: u32, shard: ShardId) {
        self.entries[slot as usize].shard = shard;
    }
}

#[cfg(test)]
impl Queue {
    pub(crate) fn set_len(&mut self, len: usize) {
        self.len = len as u32;
    }

    pub(crate) fn set_tail(&mut self, tail: u32) {
        self.tail = tail;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_request_costs_48_bytes_and_a_ticket_16() {
        // The buffer identity fits the ticket's padding, and the release reason the entry's;
        // the buffer-wide FIFO's links cost 8 bytes, when it was queued (for its wait's
        // histogram sample) 8; its size is kept beside it, for sized requests only.
        assert_eq!(core::mem::size_of::<Entry>(), 48);
        // The slab's own entry (vacant or occupied) is no larger: a niche marks vacancy.
        assert_eq!(core::mem::size_of::<Option<Entry>>(), 48);
        assert_eq!(core::mem::size_of::<Ticket>(), 16);
    }

    fn pool_with(sizes: &[u64]) -> (Pool, Queue, Vec<Ticket>) {
        let mut pool = Pool::with_capacity(4);
        pool.register();
        let mut queue = Queue::EMPTY;
        let shard = ShardId::from_index(0);
        let tickets = sizes
            .iter()
            .map(|&b| pool.push_back(&mut queue, shard, Timestamp::ZERO, Timestamp::MAX, b))
            .collect();
        (pool, queue, tickets)
    }

    #[test]
    fn unsized_requests_keep_no_sizes() {
        let (pool, queue, tickets) = pool_with(&[0, 0, 0]);
        assert!(pool.sizes.is_empty());
        assert_eq!((pool.bytes(), queue.bytes()), (0, 0));
        assert!(tickets.iter().all(|t| pool.bytes_of(t.slot) == 0));
    }

    #[test]
    fn a_freed_slot_forgets_its_size_when_an_unsized_request_takes_it() {
        let (mut pool, mut queue, tickets) = pool_with(&[0, 7, 0]);
        assert_eq!(pool.bytes_of(tickets[1].slot), 7);
        assert_eq!((pool.bytes(), queue.bytes()), (7, 7));
        pool.unlink(&mut queue, tickets[1].slot);
        assert_eq!(pool.remove(tickets[1].slot), 7);
        assert_eq!((pool.bytes(), queue.bytes()), (0, 0));
        let again = pool.push_back(
            &mut queue,
            ShardId::from_index(0),
            Timestamp::ZERO,
            Timestamp::MAX,
            0,
        );
        assert_eq!(again.slot, tickets[1].slot, "the slab reuses the slot");
        assert_eq!(pool.bytes_of(again.slot), 0);
        assert_eq!(pool.bytes(), 0);
    }
}
