//! Tickets: the handle a held request is known by.

use core::fmt;

/// A held request, as returned by [`Admission::Wait`](crate::Admission::Wait).
///
/// A ticket is a slot index plus a generation drawn from a counter that never repeats, so a
/// ticket that has ended is never mistaken for a later request that reuses its slot: inputs
/// naming it are answered with [`TicketError::Stale`] and act on nothing.
///
/// Every ticket ends exactly once: by a [`Verdict::Fail`](crate::Verdict::Fail) wake, by a
/// [`Verdict::Retry`](crate::Verdict::Retry) wake followed by
/// [`Buffer::retry_done`](crate::Buffer::retry_done) or [`Buffer::cancel`](crate::Buffer::cancel),
/// or by `cancel` while still queued.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ticket {
    pub(crate) slot: u32,
    pub(crate) generation: u64,
}

impl Ticket {
    /// The ticket as one number, unique for the life of its buffer; for logs and maps.
    pub fn id(self) -> u64 {
        self.generation
    }

    /// Rebuilds a ticket from its parts, for fuzzers and tests that need to forge one. A forged
    /// ticket that does not name a live request is answered with a [`TicketError`].
    pub fn from_parts(slot: u32, generation: u64) -> Ticket {
        Ticket { slot, generation }
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
    /// The ticket has already ended, or was never issued by this buffer.
    Stale(Ticket),
    /// [`Buffer::retry_done`](crate::Buffer::retry_done) for a ticket that is still queued:
    /// it was never released, so there is no retry to be done with. The ticket stays queued.
    NotReleased(Ticket),
}

impl fmt::Display for TicketError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TicketError::Stale(t) => write!(f, "{t:?} has ended or was never issued"),
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
