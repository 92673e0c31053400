//! Tickets: the handle a held request is known by.

use core::fmt;

/// A held request, as returned by [`Admission::Wait`](crate::Admission::Wait).
///
/// A ticket is a slot index plus a generation drawn from a counter that never repeats, so a
/// ticket that has ended is never mistaken for a later request that reuses its slot: inputs
/// naming it are answered with [`TicketError::Stale`] and act on nothing.
///
/// A ticket also carries the identity of the buffer that issued it (a per-process counter
/// of buffers, kept in what would otherwise be padding: a ticket is 16 bytes either way), so
/// a ticket handed to the wrong buffer is refused with [`TicketError::NotIssued`] and never
/// acts on that buffer's requests. Only inputs naming a ticket look at it; the hot path
/// does not. (Buffer identities repeat after 2³² − 1 buffers in one process, and a
/// [clone](crate::Buffer#cloning) keeps its original's: never mix the tickets of the two.)
///
/// Every ticket ends exactly once: by a [`Verdict::Fail`](crate::Verdict::Fail) wake, by a
/// [`Verdict::Retry`](crate::Verdict::Retry) wake followed by
/// [`Buffer::retry_done`](crate::Buffer::retry_done) or [`Buffer::cancel`](crate::Buffer::cancel),
/// or by `cancel` while still queued.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ticket {
    pub(crate) slot: u32,
    /// The issuing buffer's identity; 0 for a forged ticket, which no buffer issues.
    pub(crate) buffer: u32,
    pub(crate) generation: u64,
}

impl Ticket {
    /// The ticket as one number, unique for the life of its buffer; for logs and maps.
    /// (Tickets of two buffers may share an id.)
    pub fn id(self) -> u64 {
        self.generation
    }

    /// The slot the request holds, from 0 to `size - 1`: dense, so an adapter can keep its
    /// waiters in a `Vec` indexed by slot instead of a hash map. A slot is reused once its
    /// ticket has ended, so check the ticket (or its [`id`](Self::id)) before trusting an
    /// entry found by slot. A request held again by
    /// [`retry_failed`](crate::Buffer::retry_failed) keeps its slot under a new ticket.
    pub fn slot(self) -> u32 {
        self.slot
    }

    /// Rebuilds a ticket from its slot and id, for fuzzers and tests that need to forge one.
    /// A forged ticket belongs to no buffer: every input naming it is refused with
    /// [`TicketError::NotIssued`] and acts on nothing.
    pub fn from_parts(slot: u32, generation: u64) -> Ticket {
        Ticket {
            slot,
            buffer: 0,
            generation,
        }
    }
}

impl fmt::Debug for Ticket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Ticket(#{}@{})", self.generation, self.slot)
    }
}

/// Why an input naming a ticket was refused. Nothing was changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TicketError {
    /// The ticket has already ended.
    Stale(Ticket),
    /// The ticket was never issued by this buffer: it is another buffer's, or forged.
    NotIssued(Ticket),
    /// [`Buffer::retry_done`](crate::Buffer::retry_done) for a ticket that is still queued:
    /// it was never released, so there is no retry to be done with. The ticket stays queued.
    NotReleased(Ticket),
}

impl fmt::Display for TicketError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TicketError::Stale(t) => write!(f, "{t:?} has ended"),
            TicketError::NotIssued(t) => write!(f, "{t:?} was never issued by this buffer"),
            TicketError::NotReleased(t) => {
                write!(
                    f,
                    "retry_done for {t:?}, which is still queued and was never released"
                )
            }
        }
    }
}

impl core::error::Error for TicketError {}
