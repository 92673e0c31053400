//! A map from live tickets to an adapter's per-request data, indexed by slot.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use crate::ticket::Ticket;

/// Slots a [`TicketMap`] grows by at a time.
const GROWTH: usize = 64;

/// Per-ticket values (an adapter's waiters), kept in a `Vec` indexed by [`Ticket::slot`]: a
/// lookup is an index and a comparison, with no hashing.
///
/// Slots are dense (below the buffer's `size`) and reused once their ticket has ended, so
/// every entry remembers its whole ticket and a lookup with any other ticket (an older one of
/// the same slot, another buffer's, a forged one) finds nothing. The vector grows to the
/// highest slot used (rounded up, a few dozen slots at a time) and is never shrunk, except
/// by [`pop`](Self::pop).
///
/// An adapter may still hold an entry for a ticket that has ended when its slot is reused:
/// a newcomer that evicts the oldest request takes its slot in the same input, before the
/// eviction's `Fail` wake is carried out, and a waiter may keep a failure until its client
/// collects it. Inserting into a slot that holds another ticket therefore moves that entry
/// aside, to a small ordered map looked at only when the slot holds some other ticket; it
/// is never lost, and the common path (held, then woken and removed) never touches it.
///
/// ```
/// use failover_buffer::{Admission, Buffer, Config, FailoverCause, TicketMap, Timestamp};
///
/// let mut buffer = Buffer::new(Config { enabled: true, ..Config::default() })?;
/// let shard = buffer.register_shard("ks", "0");
/// let Admission::Wait(ticket) = buffer.request(Timestamp::ZERO, shard, Some(FailoverCause::Reparent))? else {
///     unreachable!()
/// };
/// let mut waiters = TicketMap::new();
/// waiters.insert(ticket, "the task to wake");
/// assert_eq!(waiters.get(ticket), Some(&"the task to wake"));
/// buffer.cancel(Timestamp::ZERO, ticket)?;
/// assert_eq!(waiters.remove(ticket), Some("the task to wake"));
/// assert!(waiters.is_empty());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct TicketMap<T> {
    slots: Vec<Option<(Ticket, T)>>,
    /// Entries moved aside by a newer ticket of their slot.
    displaced: BTreeMap<Ticket, T>,
    /// Entries in `slots`.
    len: usize,
}

impl<T> Default for TicketMap<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> TicketMap<T> {
    /// An empty map; allocates nothing until the first insert.
    pub const fn new() -> Self {
        TicketMap {
            slots: Vec::new(),
            displaced: BTreeMap::new(),
            len: 0,
        }
    }

    /// An empty map with room for slots `0..slots` (the buffer's `size`, or part of it).
    pub fn with_capacity(slots: usize) -> Self {
        TicketMap {
            slots: Vec::with_capacity(slots),
            displaced: BTreeMap::new(),
            len: 0,
        }
    }

    /// Entries in the map.
    pub fn len(&self) -> usize {
        self.len + self.displaced.len()
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sets `ticket`'s value, returning its old one. An entry of another ticket in the same
    /// slot is moved aside, still found by its ticket.
    pub fn insert(&mut self, ticket: Ticket, value: T) -> Option<T> {
        let slot = ticket.slot() as usize;
        if slot >= self.slots.len() {
            self.grow(slot);
        }
        match self.slots[slot].replace((ticket, value)) {
            None => {
                self.len += 1;
                None
            }
            Some((old, value)) if old == ticket => Some(value),
            Some((old, value)) => {
                self.displaced.insert(old, value);
                None
            }
        }
    }

    /// Makes room for `slot`, [`GROWTH`] slots at a time (a buffer's slots are handed out
    /// in order as it fills, so an adapter inserting each new request's waiter would
    /// otherwise grow the table at every insert), but never past the capacity reserved
    /// while `slot` is within it: a table reserved for a buffer's whole size is never
    /// copied.
    #[cold]
    fn grow(&mut self, slot: usize) {
        let capacity = self.slots.capacity();
        let mut len = (slot + 1).next_multiple_of(GROWTH);
        if slot < capacity {
            len = len.min(capacity);
        }
        self.slots.resize_with(len, || None);
    }

    /// `ticket`'s value, if it has one.
    #[inline]
    pub fn get(&self, ticket: Ticket) -> Option<&T> {
        match self.slots.get(ticket.slot() as usize) {
            Some(Some((t, value))) if *t == ticket => Some(value),
            _ if self.displaced.is_empty() => None,
            _ => self.displaced.get(&ticket),
        }
    }

    /// `ticket`'s value, mutably, if it has one.
    #[inline]
    pub fn get_mut(&mut self, ticket: Ticket) -> Option<&mut T> {
        match self.slots.get_mut(ticket.slot() as usize) {
            Some(Some((t, value))) if *t == ticket => Some(value),
            _ if self.displaced.is_empty() => None,
            _ => self.displaced.get_mut(&ticket),
        }
    }

    /// Removes and returns `ticket`'s value; an entry of another ticket is left alone.
    #[inline]
    pub fn remove(&mut self, ticket: Ticket) -> Option<T> {
        if let Some(entry) = self.slots.get_mut(ticket.slot() as usize) {
            if entry.as_ref().is_some_and(|(t, _)| *t == ticket) {
                self.len -= 1;
                return entry.take().map(|(_, value)| value);
            }
        }
        if self.displaced.is_empty() {
            None
        } else {
            self.displaced.remove(&ticket)
        }
    }

    /// Removes and returns some entry (the highest slot's), for tearing everything down.
    /// Popping every entry is O(slots) in all.
    pub fn pop(&mut self) -> Option<(Ticket, T)> {
        if let Some(entry) = self.displaced.pop_first() {
            return Some(entry);
        }
        while let Some(last) = self.slots.pop() {
            if let Some(entry) = last {
                self.len -= 1;
                return Some(entry);
            }
        }
        None
    }

    /// Every entry: those in their slots in slot order, then those moved aside.
    pub fn iter(&self) -> impl Iterator<Item = (Ticket, &T)> {
        self.slots
            .iter()
            .filter_map(|e| e.as_ref().map(|(t, v)| (*t, v)))
            .chain(self.displaced.iter().map(|(t, v)| (*t, v)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_older_ticket_of_the_same_slot_finds_nothing() {
        let mut map = TicketMap::new();
        let old = Ticket::from_parts(3, 1);
        let new = Ticket::from_parts(3, 2);
        map.insert(new, 'n');
        assert_eq!(map.get(old), None);
        assert_eq!(map.remove(old), None);
        assert_eq!(map.len(), 1);
        assert_eq!(map.remove(new), Some('n'));
        assert!(map.is_empty());
    }

    #[test]
    fn a_newer_ticket_of_the_slot_moves_the_older_entry_aside() {
        let mut map = TicketMap::new();
        let (old, new) = (Ticket::from_parts(0, 1), Ticket::from_parts(0, 2));
        map.insert(old, 1);
        assert_eq!(map.insert(new, 2), None);
        assert_eq!(map.len(), 2);
        assert_eq!(map.get(old), Some(&1));
        assert_eq!(map.get(new), Some(&2));
        assert_eq!(map.remove(old), Some(1));
        assert_eq!(map.remove(new), Some(2));
        assert!(map.is_empty());
    }

    #[test]
    fn inserting_the_same_ticket_again_returns_its_old_value() {
        let mut map = TicketMap::new();
        let t = Ticket::from_parts(2, 7);
        map.insert(t, 'a');
        assert_eq!(map.insert(t, 'b'), Some('a'));
        assert_eq!(map.len(), 1);
    }

    #[test]
    fn slots_taken_in_order_grow_the_table_in_steps_never_past_its_reserve() {
        let mut map = TicketMap::with_capacity(100);
        let reserved = map.slots.capacity();
        map.insert(Ticket::from_parts(0, 1), 0);
        assert_eq!(map.slots.len(), GROWTH, "one growth serves the next slots");
        for slot in 1..reserved as u32 {
            map.insert(Ticket::from_parts(slot, u64::from(slot) + 1), slot);
        }
        // Filled to its reserve in steps, and never copied (a reserved table is reserved so
        // that a filling buffer never copies it).
        assert_eq!(map.slots.len(), reserved);
        assert_eq!(map.slots.capacity(), reserved);
        let last = Ticket::from_parts(reserved as u32 - 1, reserved as u64);
        assert_eq!(map.get(last), Some(&(reserved as u32 - 1)));
        // Past the reserve it grows as a vector does, and still finds every entry.
        let beyond = Ticket::from_parts(reserved as u32 + 5, 1_000);
        map.insert(beyond, 7);
        assert_eq!(map.get(beyond), Some(&7));
        assert_eq!(map.len(), reserved + 1);
    }

    #[test]
    fn pop_empties_the_map() {
        let mut map = TicketMap::new();
        for slot in [5, 0, 9] {
            map.insert(Ticket::from_parts(slot, u64::from(slot)), slot);
        }
        map.insert(Ticket::from_parts(5, 99), 99);
        let mut popped: Vec<u32> = core::iter::from_fn(|| map.pop()).map(|(_, v)| v).collect();
        popped.sort_unstable();
        assert_eq!(popped, [0, 5, 9, 99]);
        assert!(map.is_empty());
        assert_eq!(map.iter().count(), 0);
    }
}
