//! A read-only copy of a buffer's whole state, field by field (cargo feature `inspect`).
//!
//! The getters of [`Buffer`] show what a caller needs (states, counts, an episode's
//! summary); they do not show every fact the machine keeps, such as each held request's
//! deadline, a stopped episode's flags or what a shutdown would put back if called off.
//! A tool that must tell two states apart exactly, such as the exhaustive explorer
//! (`core/tests/exhaustive.rs`, which merges the input sequences that lead to the same
//! state), needs all of it. [`Buffer::inspect`] copies it out as plain data.
//!
//! The view is built by destructuring the core's structs with every field named (the
//! buffer, the slab and its entries, each shard, its detail, episode, hold, pause and what
//! a shutdown would put back), so a field added to one of them does not compile until it
//! is either copied here or named as left out (with the reason). Two are read by field
//! instead, as their other fields are private to their modules and derived: a shutdown's
//! `grace` (the plan it built is read whole) and the index of active shards (its positions
//! only index its list). It
//! changes nothing and has no effect on a build without the feature, whose public API does
//! not include this module. Its types follow the core's layout and may change in any
//! release: it is for tests and tools, not for a router.
//!
//! ```
//! use failover_buffer::{Buffer, Config, FailoverCause, Timestamp};
//!
//! let mut buffer = Buffer::new(Config { enabled: true, ..Config::default() })?;
//! let shard = buffer.register_shard("commerce", "0");
//! buffer.request(Timestamp::from_secs(1), shard, Some(FailoverCause::Reparent))?;
//! let state = buffer.inspect();
//! assert_eq!(state.tickets.len(), 1);
//! assert_eq!(state.shards[0].queue, [state.tickets[0].ticket]);
//! assert_eq!(state.tickets[0].deadline, Timestamp::from_secs(1).saturating_add(Config::default().window));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use alloc::vec::Vec;
use core::time::Duration;

use crate::action::Verdict;
use crate::buffer::Buffer;
use crate::config::Mode;
use crate::event::PrimaryId;
use crate::queue::TicketStatus;
use crate::shard::{ShardId, ShardState};
use crate::stats::{ShardStats, StopReason};
use crate::ticket::Ticket;
use crate::time::Timestamp;

/// Everything a [`Buffer`] keeps that decides what it does next, as of the last input.
///
/// Left out, as bookkeeping derived from what is here (`Buffer::check_invariants` checks
/// each agrees): the config in the hot path's units (from [`Buffer::config`]), the
/// deadline index (each buffering shard's next timer), the slab's slots and links, the
/// per-shard and buffer-wide byte and slot tallies (sums over [`tickets`](Self::tickets)),
/// the buffer-wide queue in deadline order, and the position of each active shard. Also
/// left out: the shard names (fixed at registration, see [`Buffer::shard_name`]), the
/// counters of refused inputs ([`Buffer::input_stats`]), the buffer's identity (stamped on
/// its tickets) and the shutdown plan (see [`Buffer::shutdown_plan`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct State {
    /// The latest time an input carried.
    pub now: Timestamp,
    /// The latest tick's time, if there was one.
    pub last_tick: Option<Timestamp>,
    /// A shutdown has begun (and was not called off).
    pub shut_down: bool,
    /// The shutdown has closed the buffer: every request after this fails.
    pub closed: bool,
    /// Actions not yet taken with [`Buffer::poll_action`].
    pub pending_actions: usize,
    /// The shards that are buffering (those that may have timers), in the order the buffer
    /// keeps them, which is the order a shutdown visits them in.
    pub active: Vec<ShardId>,
    /// Every registered shard, by index.
    pub shards: Vec<Shard>,
    /// Every live ticket (queued or released to retry), in order of issue.
    pub tickets: Vec<Held>,
    /// Tickets issued so far, live or ended: the next ticket's [`id`](Ticket::id) is one
    /// more.
    pub tickets_issued: u64,
    /// The latest shutdown, once one began.
    pub shutdown: Option<Shutdown>,
}

/// One shard's failover machine.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Shard {
    /// Fixed at registration.
    pub mode: Mode,
    /// As [`Buffer::shard_state`] shows it (`Buffering` while paused).
    pub state: ShardState,
    /// Its queued tickets, head first.
    pub queue: Vec<Ticket>,
    /// Requests a drain released whose retry has not finished.
    pub drain_in_flight: usize,
    /// Drain retries above `drain_concurrency` left running when a reconfiguration lowered
    /// it.
    pub drain_excess: usize,
    /// The episode in progress, or the last one (all zero before the first).
    pub episode: Episode,
    /// When the last episode ended (its drain finished), for the min-time rule.
    pub last_end: Option<Timestamp>,
    /// The operator pause in progress.
    pub pause: Option<Pause>,
    /// The drain under way releases what a pause held with no episode behind it.
    pub pause_drain: bool,
    /// When the last failover caused by a reparent was seen, for the min-time rule.
    pub last_reparent: Option<Timestamp>,
    /// The primary of the highest-term health stamp.
    pub primary: Option<PrimaryId>,
    /// The highest health-stamp term seen.
    pub highest_term: Option<u64>,
    /// Its counters, as [`Buffer::shard_stats`] shows them.
    pub stats: ShardStats,
}

/// A shard's episode in progress, or its last one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Episode {
    /// When it started.
    pub start: Timestamp,
    /// The highest term known when it started: a serving stamp above it ends it.
    pub start_term: Option<u64>,
    /// A not-serving stamp was seen during it: any serving stamp now ends it.
    pub saw_not_serving: bool,
    /// Why it first stopped (set once).
    pub stopped: Option<StopReason>,
    /// Why its drain last (re)started.
    pub last_stop: Option<StopReason>,
    /// What its released requests are told.
    pub release: Verdict,
    /// When its drain last started.
    pub drain_start: Timestamp,
    /// While its drain is paused: when it resumes by itself.
    pub resume_at: Option<Timestamp>,
    /// When it first held a request.
    pub first_hold: Option<Timestamp>,
    /// When a held request last left its queue.
    pub last_release: Timestamp,
}

/// An operator pause in progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Pause {
    /// When it began, or was last paused again.
    pub since: Timestamp,
    /// When it ends by itself.
    pub until: Timestamp,
    /// The failover machine's own state under the pause, which it goes back to.
    pub under: ShardState,
}

/// A live ticket's request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Held {
    /// Its ticket.
    pub ticket: Ticket,
    /// Its shard.
    pub shard: ShardId,
    /// Queued, or released to retry (and why).
    pub status: TicketStatus,
    /// When its window releases it (kept once released: a failed drain retry is queued
    /// again with it).
    pub deadline: Timestamp,
    /// When it was (last) queued, which its wait is measured from.
    pub held_at: Timestamp,
    /// The size it carries, counted against `max_bytes`.
    pub bytes: u64,
}

/// The latest shutdown.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Shutdown {
    /// The grace its plan was built with.
    pub grace: Duration,
    /// The shards it stopped while they buffered, with what a cancel puts back.
    pub stopped: Vec<(ShardId, Unstop)>,
}

/// What [`Buffer::cancel_shutdown`] puts back of an episode the shutdown stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Unstop {
    /// The episode's first stop, if it had stopped.
    pub stopped: Option<StopReason>,
    /// Why its drain last (re)started.
    pub last_stop: Option<StopReason>,
    /// A paused drain's resume instant.
    pub resume_at: Option<Timestamp>,
    /// When its drain last started.
    pub drain_start: Timestamp,
    /// The shard's last episode end.
    pub last_end: Option<Timestamp>,
}

impl Buffer {
    /// A copy of the buffer's whole state (see [`inspect`](crate::inspect)). Read-only; it
    /// allocates the copy.
    pub fn inspect(&self) -> State {
        self.inspect_state(Spare::default())
    }

    /// [`inspect`](Buffer::inspect) into `state`, whose allocations (its lists of shards,
    /// queues and tickets) it reuses: what `state` held before is overwritten whole. For
    /// tools that read many states in turn, such as the exhaustive explorer, which reads
    /// one after every input it tries.
    pub fn inspect_into(&self, state: &mut State) {
        let spare = Spare {
            active: core::mem::take(&mut state.active),
            shards: core::mem::take(&mut state.shards),
            tickets: core::mem::take(&mut state.tickets),
        };
        *state = self.inspect_state(spare);
    }
}

impl Buffer {
    /// Whether [`inspect`](Buffer::inspect) would read `state` now: the same answer as
    /// `buffer.inspect() == *state`, without writing a copy. For tools that ask whether an
    /// input left the state as it was, such as the exhaustive explorer (about half the
    /// inputs it tries do).
    ///
    /// ```
    /// use failover_buffer::{Buffer, Config, FailoverCause, Timestamp};
    ///
    /// let mut buffer = Buffer::new(Config { enabled: true, ..Config::default() })?;
    /// let shard = buffer.register_shard("commerce", "0");
    /// let before = buffer.inspect();
    /// assert!(buffer.inspect_is(&before));
    /// buffer.request(Timestamp::from_secs(1), shard, Some(FailoverCause::Reparent))?;
    /// assert!(!buffer.inspect_is(&before));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn inspect_is(&self, state: &State) -> bool {
        self.state_is(state)
    }
}

/// The allocations of an earlier [`State`] that [`Buffer::inspect_into`] fills again
/// (empty for [`Buffer::inspect`]).
#[derive(Default)]
pub(crate) struct Spare {
    pub(crate) active: Vec<ShardId>,
    /// Each shard's queue is reused too.
    pub(crate) shards: Vec<Shard>,
    pub(crate) tickets: Vec<Held>,
}
