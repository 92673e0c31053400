//! Episode events: what a router watches to follow each shard's failovers.
//!
//! The core announces an episode's steps among its [`Action`]s, together with per-request
//! wake-ups and telemetry; [`EpisodeEvent`] is the part of them a router reacts to, in one
//! type that both adapters deliver (outside their locks) to their subscribers.

use core::time::Duration;

use crate::action::{Action, Metric};
use crate::event::FailoverCause;
use crate::shard::ShardId;
use crate::stats::{PauseEnd, StopReason};
use crate::time::Timestamp;

/// One step of a shard's failover episode, in the order the buffer took them.
///
/// A typical episode reads `FailoverStarted`, `BufferingStopped`, `DrainStarted`,
/// `DrainFinished`; a retry that meets the failover again early in the drain adds
/// `DrainPaused` (then `DrainStarted` again when the drain resumes). `Closed` is sent once,
/// when a shutdown has finished.
///
/// `FailoverStarted` is where a router that keeps its own view of health may mark the shard
/// not-serving (Vitess `MarkShardNotServing`): events are delivered after the buffer's lock
/// is released, so reacting to one (even by calling back into the buffer) cannot deadlock.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EpisodeEvent {
    /// `shard` started buffering: a request failed with `cause` and the shard was idle.
    FailoverStarted {
        /// The shard, as [`Buffer::register_shard`](crate::Buffer::register_shard) named it.
        shard: ShardId,
        /// The failover error that started it.
        cause: FailoverCause,
    },
    /// `shard` stopped buffering, for `reason`, after buffering for `duration`.
    BufferingStopped {
        /// The shard.
        shard: ShardId,
        /// Why: a new primary was seen, max failover duration, a topology change, shutdown.
        reason: StopReason,
        /// From the episode's start to this stop.
        duration: Duration,
    },
    /// `shard` began (or resumed) releasing its `queued` held requests, paced by
    /// `drain_concurrency`.
    DrainStarted {
        /// The shard.
        shard: ShardId,
        /// Requests waiting to be released.
        queued: usize,
    },
    /// A released request failed over again early in the episode: the drain is paused and
    /// `shard` buffers again; it resumes after `drain_backoff`.
    DrainPaused {
        /// The shard.
        shard: ShardId,
        /// Requests held, the one that paused the drain included.
        queued: usize,
    },
    /// `shard`'s drain is over: its queue is empty and every retry it released has finished.
    DrainFinished {
        /// The shard.
        shard: ShardId,
        /// From the (last) start of the drain to its end.
        duration: Duration,
    },
    /// An operator paused `shard` ([`Buffer::pause`](crate::Buffer::pause)), or paused it
    /// again with a new bound: it holds every request until the pause ends.
    PauseStarted {
        /// The shard.
        shard: ShardId,
        /// When the pause ends by itself.
        until: Timestamp,
    },
    /// `shard`'s operator pause ended: resumed, expired at its bound, or ended by a shutdown.
    /// A `DrainStarted` follows unless a failover episode still buffers the shard.
    PauseEnded {
        /// The shard.
        shard: ShardId,
        /// How it ended.
        reason: PauseEnd,
        /// Requests held as it ended.
        queued: usize,
    },
    /// A shutdown has finished: every held request has ended. The last event.
    Closed,
}

impl EpisodeEvent {
    /// The event an action of the core announces, if it is an episode step: `None` for a
    /// per-request [`Action::Wake`].
    ///
    /// ```
    /// use failover_buffer::*;
    ///
    /// let mut buffer = Buffer::new(Config { enabled: true, ..Config::default() })?;
    /// let shard = buffer.register_shard("commerce", "0");
    /// let _held = buffer.request(Timestamp::from_secs(1), shard, Some(FailoverCause::Reparent))?;
    /// let events: Vec<EpisodeEvent> =
    ///     std::iter::from_fn(|| buffer.poll_action()).filter_map(|a| EpisodeEvent::from_action(&a)).collect();
    /// assert_eq!(events, [EpisodeEvent::FailoverStarted { shard, cause: FailoverCause::Reparent }]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_action(action: &Action) -> Option<EpisodeEvent> {
        Some(match *action {
            Action::Wake { .. } => return None,
            Action::FailoverStarted { shard, cause } => {
                EpisodeEvent::FailoverStarted { shard, cause }
            }
            Action::StartDrain { shard, queued } => EpisodeEvent::DrainStarted { shard, queued },
            Action::Metric(Metric::BufferingStopped {
                shard,
                reason,
                duration,
                ..
            }) => EpisodeEvent::BufferingStopped {
                shard,
                reason,
                duration,
            },
            Action::DrainPaused { shard, queued } => EpisodeEvent::DrainPaused { shard, queued },
            Action::Metric(Metric::DrainFinished { shard, duration }) => {
                EpisodeEvent::DrainFinished { shard, duration }
            }
            Action::PauseStarted { shard, until } => EpisodeEvent::PauseStarted { shard, until },
            Action::PauseEnded {
                shard,
                reason,
                queued,
            } => EpisodeEvent::PauseEnded {
                shard,
                reason,
                queued,
            },
            Action::Closed => EpisodeEvent::Closed,
        })
    }

    /// The shard the event is about; `None` for [`Closed`](Self::Closed).
    pub fn shard(&self) -> Option<ShardId> {
        match *self {
            EpisodeEvent::FailoverStarted { shard, .. }
            | EpisodeEvent::BufferingStopped { shard, .. }
            | EpisodeEvent::DrainStarted { shard, .. }
            | EpisodeEvent::DrainPaused { shard, .. }
            | EpisodeEvent::DrainFinished { shard, .. }
            | EpisodeEvent::PauseStarted { shard, .. }
            | EpisodeEvent::PauseEnded { shard, .. } => Some(shard),
            EpisodeEvent::Closed => None,
        }
    }
}
