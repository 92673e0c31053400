//! Errors: what a client sees, and what a caller did wrong.

use core::fmt;

use crate::ticket::TicketError;

/// Why the buffer did not hold, or stopped holding, a request. The client sees this.
///
/// `Display` gives Vitess's error strings, which operators already grep for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BufferError {
    /// Every slot is taken and this shard has nothing queued to make room.
    BufferFull,
    /// The request was the oldest of its shard and was pushed out for a newer one.
    Evicted,
    /// The shard was resharded away while the request waited; the router should re-plan.
    ShardMissing,
}

impl fmt::Display for BufferError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BufferError::BufferFull => "primary buffer is full",
            BufferError::Evicted => "buffer full: request evicted for newer request",
            BufferError::ShardMissing => {
                "destination shard is missing after a resharding operation"
            }
        })
    }
}

impl core::error::Error for BufferError {}

/// Why an input was refused. Nothing was changed and nothing was lost; each refusal is also
/// counted in [`InputStats`](crate::InputStats).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum InputError {
    /// The [`ShardId`](crate::ShardId) was not issued by this buffer.
    UnknownShard,
    /// The ticket has ended, was never issued, or was never released.
    Ticket(TicketError),
    /// The health stamp's term is below the highest term already seen for the shard.
    StaleHealthStamp {
        /// The stamp's term.
        term: u64,
        /// The highest term seen before it.
        highest: u64,
    },
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InputError::UnknownShard => f.write_str("unknown shard id"),
            InputError::Ticket(e) => fmt::Display::fmt(e, f),
            InputError::StaleHealthStamp { term, highest } => {
                write!(
                    f,
                    "stale health stamp: term {term} is below the highest seen, {highest}"
                )
            }
        }
    }
}

impl core::error::Error for InputError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            InputError::Ticket(e) => Some(e),
            _ => None,
        }
    }
}

impl From<TicketError> for InputError {
    fn from(e: TicketError) -> Self {
        InputError::Ticket(e)
    }
}
