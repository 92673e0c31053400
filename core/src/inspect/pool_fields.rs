//! [`Buffer::inspect`](crate::Buffer::inspect)'s reading of the slab of held requests (a
//! child of `queue`, so it sees its fields; see [`crate::inspect`]).

use alloc::vec::Vec;

use super::{Entry, Pool, Queue};
use crate::inspect::Held;
use crate::ticket::Ticket;

impl Pool {
    /// Every live entry, in order of issue.
    /// The live tickets, oldest first, written into `held`'s allocation.
    pub(crate) fn inspect_tickets(&self, mut held: Vec<Held>) -> Vec<Held> {
        // Every field named (see `inspect::State` for what is left out, and why).
        let Pool {
            entries,
            all: _,
            held_by: _,
            bytes_by: _,
            bytes: _,
            // Read per entry, through `bytes_of`.
            sizes: _,
            next_generation: _,
            buffer,
        } = self;
        held.clear();
        held.extend(entries.iter().map(|(slot, e)| self.held(*buffer, slot, e)));
        held.sort_unstable_by_key(|h| h.ticket.generation);
        held
    }

    /// Whether [`inspect_tickets`](Self::inspect_tickets) would read `held` (sorted by
    /// generation, as it reads them), without writing a copy.
    pub(crate) fn tickets_are(&self, held: &[Held]) -> bool {
        let Pool {
            entries,
            all: _,
            held_by: _,
            bytes_by: _,
            bytes: _,
            sizes: _,
            next_generation: _,
            buffer,
        } = self;
        entries.len() == held.len()
            && entries.iter().all(|(slot, e)| {
                let read = self.held(*buffer, slot, e);
                // Generations are unique: the one read with this generation, if any.
                held.binary_search_by_key(&read.ticket.generation, |h| h.ticket.generation)
                    .is_ok_and(|i| held[i] == read)
            })
    }

    /// What [`inspect_tickets`](Self::inspect_tickets) reads of the entry in `slot`: every
    /// field named (the links are the queues', read through them).
    fn held(&self, buffer: u32, slot: usize, e: &Entry) -> Held {
        let Entry {
            generation,
            deadline,
            held_at,
            prev: _,
            next: _,
            all_prev: _,
            all_next: _,
            shard,
            status,
        } = *e;
        Held {
            // Slots are below the pool's size, a `u32` (as `iter` reads them).
            ticket: Ticket {
                slot: slot as u32,
                buffer,
                generation,
            },
            shard,
            status: status.public(),
            deadline,
            held_at,
            bytes: self.bytes_of(slot as u32),
        }
    }

    /// Tickets issued so far: generations are handed out from 1.
    pub(crate) fn tickets_issued(&self) -> u64 {
        self.next_generation - 1
    }

    /// The tickets of `queue`, head first, written into `read`'s allocation.
    pub(crate) fn inspect_queue(&self, queue: &Queue, mut read: Vec<Ticket>) -> Vec<Ticket> {
        read.clear();
        read.extend(
            self.walk(queue, self.entries.len())
                .map(|slot| self.ticket_at(slot)),
        );
        read
    }

    /// Whether [`inspect_queue`](Self::inspect_queue) would read `read`.
    pub(crate) fn queue_is(&self, queue: &Queue, read: &[Ticket]) -> bool {
        let mut slots = self.walk(queue, self.entries.len());
        read.iter()
            .all(|&t| slots.next().is_some_and(|slot| self.ticket_at(slot) == t))
            && slots.next().is_none()
    }
}
