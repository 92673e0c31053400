//! The engine's events: what is scheduled, and how the heaps order it.

use core::cmp::Ordering;

use failover_buffer::{FailoverCause, TopologyEvent};

use crate::input::TraceRow;

/// A scheduled event. The heap is a min-heap on `(at, seq)`; `seq` breaks ties in the order
/// events were scheduled, so a run never depends on anything but its inputs.
pub(super) struct Event {
    /// `at << 64 | seq`: one comparison orders by time, then by scheduling order.
    pub(super) key: u128,
    pub(super) kind: Kind,
}

impl Event {
    pub(super) fn at(&self) -> u64 {
        (self.key >> 64) as u64
    }
}

/// A shard's next Poisson arrival, in a heap of its own (`Sim::arrivals`): each shard has
/// exactly one pending, so handling one replaces it in place with the next (one sift instead
/// of a pop and a push), and the main heap stays small. Keys are drawn from the same
/// sequence as [`Event`]'s, so the order of all events is as if there were one heap.
pub(super) struct NextArrival {
    pub(super) key: u128,
    pub(super) shard: u32,
}

impl PartialEq for NextArrival {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl Eq for NextArrival {}

impl PartialOrd for NextArrival {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for NextArrival {
    fn cmp(&self, other: &Self) -> Ordering {
        other.key.cmp(&self.key)
    }
}

pub(super) enum Kind {
    /// An arrival listed in the scenario.
    ListedArrival { shard: u32 },
    /// The trace's next request (the only trace row in memory).
    TraceArrival { row: TraceRow },
    /// A request's attempt answered: refused with a failover error, or not.
    Done {
        req: u32,
        refused: Option<FailoverCause>,
    },
    /// A request's attempt was in flight on a primary that was killed: its connection
    /// reset at this instant.
    Died { req: u32 },
    /// A closed-loop connection sends its next request.
    ConnectionSend { conn: u32 },
    /// A request's client timeout passed while it was in flight.
    InFlightTimeout { req: u32 },
    /// A request's client timeout, armed when it was held for the `hold`-th time in the
    /// run (a serial over every router: ticket ids are unique only within one buffer, and
    /// a request's table entry is reused, so this is how a stale timeout is recognised).
    HeldTimeout { req: u32, hold: u64 },
    /// A request sends its next attempt after the retry delay.
    Send { req: u32 },
    /// A router's buffer timer.
    Tick { router: u32 },
    /// A router's health stream delivers a stamp (an index into `Sim::stamps`).
    Health { stamp: u32, router: u32 },
    /// A router learns of a topology change.
    Topology {
        shard: u32,
        router: u32,
        event: TopologyEvent,
    },
    /// A router's buffer shuts down (the scenario's `[shutdown] begin`).
    Shutdown { router: u32 },
    /// A router's buffer's shutdown is called off (`[shutdown] cancel`).
    CancelShutdown { router: u32 },
    /// A router's buffer is paused (the `pause`-th `[[pause]]` table's `start`).
    Pause { router: u32, pause: u32 },
    /// A router's buffer is resumed (the `pause`-th `[[pause]]` table's `resume`).
    Resume { router: u32, pause: u32 },
}

impl PartialEq for Event {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl Eq for Event {}

impl PartialOrd for Event {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Event {
    fn cmp(&self, other: &Self) -> Ordering {
        // Reversed: BinaryHeap is a max-heap and the earliest event must come out first.
        other.key.cmp(&self.key)
    }
}

/// The heaps events come from.
#[derive(Clone, Copy)]
pub(super) enum Source {
    Main,
    Timeouts,
    Arrivals,
}
