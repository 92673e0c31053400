//! What the buffer tells the caller to do: admissions, actions and deadlines.

use core::time::Duration;

use crate::error::BufferError;
use crate::event::FailoverCause;
use crate::shard::ShardId;
use crate::stats::{PauseEnd, StopReason};
use crate::ticket::Ticket;
use crate::time::Timestamp;

/// The answer to [`Buffer::request`](crate::Buffer::request).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use = "a Wait ticket must be kept until it is woken or cancelled"]
pub enum Admission {
    /// Send the request to the primary now.
    Proceed,
    /// The request is held. Park it until an [`Action::Wake`] names this ticket, or
    /// [`cancel`](crate::Buffer::cancel) it if the client gives up first.
    Wait(Ticket),
    /// The request cannot be held; return this error to the client.
    Fail(BufferError),
}

/// What a woken request should do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Send the request to the primary now, then report
    /// [`retry_done`](crate::Buffer::retry_done) (or [`cancel`](crate::Buffer::cancel)) when
    /// the attempt has finished: the request keeps its slot until then, which paces a drain.
    Retry,
    /// Return this error to the client. The ticket has ended; report nothing more for it.
    Fail(BufferError),
}

/// A consequence of an input, to be carried out by the caller.
///
/// Drain them with [`Buffer::poll_action`](crate::Buffer::poll_action) after every input.
///
/// New kinds of action may be added in minor releases (`#[non_exhaustive]`): a caller's
/// `match` ends with a `_` arm that ignores what it does not know, which is always safe for
/// an action that is not a [`Wake`](Self::Wake).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// Release a held request.
    Wake {
        /// The request.
        ticket: Ticket,
        /// What it should do now.
        verdict: Verdict,
    },
    /// A failover episode started on `shard`. A router that keeps its own view of health may
    /// mark the shard not-serving here (Vitess `MarkShardNotServing`), waiting for a newer
    /// term when `cause` [is a reparent](FailoverCause::is_reparent). Being an output rather
    /// than a call made under a lock, this cannot deadlock (Vitess PR 20281).
    FailoverStarted {
        /// The shard.
        shard: ShardId,
        /// The error that started it.
        cause: FailoverCause,
    },
    /// `shard` stopped buffering (or resumed a paused drain) and begins releasing its
    /// `queued` requests, at most `drain_concurrency` at a time.
    StartDrain {
        /// The shard.
        shard: ShardId,
        /// Requests waiting to be released.
        queued: usize,
    },
    /// A released request met the failover again while the episode was young (DESIGN §5,
    /// drain back-off): `shard`'s drain is called off and the shard buffers again, in the same
    /// episode. A state change, like [`FailoverStarted`](Self::FailoverStarted): an adapter
    /// that mirrors the shard's state (for an idle fast path) must treat the shard as
    /// buffering from here until the next [`StartDrain`](Self::StartDrain).
    ///
    /// Also emitted by [`cancel_shutdown`](crate::Buffer::cancel_shutdown) for each shard
    /// the shutdown had stopped while it buffered: it buffers again, in the same episode.
    DrainPaused {
        /// The shard.
        shard: ShardId,
        /// Requests now waiting in its queue, the one that paused the drain included.
        queued: usize,
    },
    /// An operator paused `shard` ([`Buffer::pause`](crate::Buffer::pause)): it holds every
    /// request, first attempts included, until [`PauseEnded`](Self::PauseEnded). A state
    /// change, like [`FailoverStarted`](Self::FailoverStarted): an adapter that mirrors the
    /// shard's state (for an idle fast path) must treat the shard as buffering from here.
    /// Emitted again, with the new bound, when a paused shard is paused again.
    PauseStarted {
        /// The shard.
        shard: ShardId,
        /// When the pause ends by itself if nobody resumes it.
        until: Timestamp,
    },
    /// `shard`'s operator pause ended: resumed, expired (its `max` ran out: the shard resumed
    /// by itself) or ended by a shutdown. If no failover episode still buffers the shard, a
    /// [`StartDrain`](Self::StartDrain) follows at once (possibly of nothing), releasing what
    /// the pause held; while an episode buffers, the shard goes on buffering until it ends.
    PauseEnded {
        /// The shard.
        shard: ShardId,
        /// How it ended.
        reason: PauseEnd,
        /// Requests waiting in its queue as the pause ended.
        queued: usize,
    },
    /// An episode-level event for logs and metrics: telemetry only, never needed to carry
    /// out the buffer's decisions.
    Metric(Metric),
    /// [`shutdown`](crate::Buffer::shutdown) has closed the buffer: every ticket has ended,
    /// or [`shutdown_grace`](crate::Config::shutdown_grace) passed with retries still
    /// running (they end by `retry_done` or `cancel` as usual). Emitted once; final.
    Closed,
}

/// Episode-level events, for logs and metrics only. State changes are [`Action`]s
/// ([`Action::FailoverStarted`], [`Action::StartDrain`], [`Action::DrainPaused`]); per-request
/// counts live in [`ShardStats`](crate::ShardStats).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Metric {
    /// An episode stopped buffering (`BufferStops`).
    BufferingStopped {
        /// The shard.
        shard: ShardId,
        /// Why.
        reason: StopReason,
        /// How long it buffered.
        duration: Duration,
        /// Its longest queue (`BufferLastRequestsInFlightMax`; the dry-run count on a dry-run
        /// shard).
        in_flight_max: u64,
        /// `in_flight_max` as a whole percentage of `size`, truncated.
        utilization_percent: u64,
    },
    /// The drain is over: its queue is empty and every retry it released has finished. (A
    /// request released earlier by its window may still be retrying; it holds its slot until
    /// it reports, but it is not the drain's to wait for.)
    DrainFinished {
        /// The shard.
        shard: ShardId,
        /// From the (last) start of the drain to its end.
        duration: Duration,
    },
}

/// Why the buffer wants a [`tick`](crate::Buffer::tick).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TimerKind {
    /// The oldest queued request of the shard reaches its window.
    Window,
    /// The shard's episode reaches `max_failover_duration`.
    MaxFailoverDuration,
    /// The shard's paused drain resumes.
    DrainBackoff,
    /// The shard's operator pause reaches its `max` and ends by itself.
    PauseExpiry,
}

/// The next instant the buffer needs a [`tick`](crate::Buffer::tick), and why; see
/// [`Buffer::next_deadline`](crate::Buffer::next_deadline).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Deadline {
    /// When.
    pub at: Timestamp,
    /// For which shard.
    pub shard: ShardId,
    /// For what.
    pub kind: TimerKind,
}
