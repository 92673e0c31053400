//! The buffer's own shutdown, as a [`DrainPlan`] of four phases that can be called off until
//! the last one.
//!
//! [`Buffer::shutdown`](crate::Buffer::shutdown) begins it and
//! [`Buffer::cancel_shutdown`](crate::Buffer::cancel_shutdown) calls it off; this module
//! holds the plan, what each phase's work is, and what a cancel must put back.

use alloc::vec::Vec;
use core::fmt;
use core::time::Duration;

use crate::drain::{DrainPlan, Phase, PhaseId, Progress};
use crate::shard::ShardId;
use crate::shard_buffer::Unstop;
use crate::time::Timestamp;

/// The phases of [`Buffer::shutdown`](crate::Buffer::shutdown), in order. Their
/// [`PhaseId`]s in [`Buffer::shutdown_plan`](crate::Buffer::shutdown_plan) and in the
/// [`DrainAction`](crate::drain::DrainAction)s of
/// [`Buffer::poll_shutdown_action`](crate::Buffer::poll_shutdown_action) are their positions
/// ([`id`](Self::id)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ShutdownPhase {
    /// No new episode starts, and every request proceeds unbuffered. Reversible, and
    /// instantaneous: the release begins in the same call.
    StopEpisodes,
    /// Every buffering shard stops (`Shutdown`) and its queue is released with
    /// [`Verdict::Retry`](crate::Verdict::Retry), at most `drain_concurrency` retrying at
    /// once per shard. Its work is the requests still queued; it has no time limit (the
    /// pacing is the clients'). Reversible for the requests not yet released.
    ReleaseQueued,
    /// The queues are empty; the retries released (by the shutdown or earlier) finish. Its
    /// work is the slots still held; it lasts at most
    /// [`Config::shutdown_grace`](crate::Config::shutdown_grace). Reversible.
    WaitForRetries,
    /// Closed ([`Action::Closed`](crate::Action::Closed)): every later request proceeds
    /// unbuffered and health and topology inputs change nothing. Irreversible: entering it is
    /// the point of no return.
    Closed,
}

impl ShutdownPhase {
    /// Every phase, in order.
    pub const ALL: [ShutdownPhase; 4] = [
        ShutdownPhase::StopEpisodes,
        ShutdownPhase::ReleaseQueued,
        ShutdownPhase::WaitForRetries,
        ShutdownPhase::Closed,
    ];

    /// Its position in the shutdown plan.
    pub const fn id(self) -> PhaseId {
        PhaseId::from_index(self as u32)
    }

    /// The phase at `id` in the shutdown plan, if any.
    pub fn from_id(id: PhaseId) -> Option<ShutdownPhase> {
        Self::ALL.get(id.index()).copied()
    }

    /// Its name in the plan, for logs.
    pub const fn name(self) -> &'static str {
        match self {
            ShutdownPhase::StopEpisodes => "stop starting episodes",
            ShutdownPhase::ReleaseQueued => "release queued requests",
            ShutdownPhase::WaitForRetries => "wait for released retries",
            ShutdownPhase::Closed => "closed",
        }
    }

    /// Whether a [`cancel_shutdown`](crate::Buffer::cancel_shutdown) can undo it.
    pub const fn is_reversible(self) -> bool {
        !matches!(self, ShutdownPhase::Closed)
    }
}

impl fmt::Display for ShutdownPhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A snapshot of the buffer's shutdown, for an operator: see
/// [`Buffer::shutdown_progress`](crate::Buffer::shutdown_progress).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShutdownProgress {
    /// The current phase, while the shutdown runs; `None` once closed or cancelled.
    pub phase: Option<ShutdownPhase>,
    /// The plan's own view: state, the current phase's reported work and time left, time
    /// since the shutdown began.
    pub drain: Progress,
    /// Requests still queued (to be released by the shutdown, or kept by a cancel).
    pub queued: usize,
    /// Requests released whose retries have not finished.
    pub retrying: usize,
}

impl fmt::Display for ShutdownProgress {
    /// The plan's line, then the requests: `phase 2 of 4, release queued requests
    /// (reversible): 40 remaining, ...; 40 queued, 1 retrying`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}; {} queued, {} retrying",
            self.drain, self.queued, self.retrying
        )
    }
}

/// The shutdown's plan and what a cancel must undo.
#[derive(Debug)]
pub(crate) struct Shutdown {
    pub(crate) plan: DrainPlan,
    /// The grace the plan was built with.
    grace: Duration,
    /// The shards the shutdown stopped while they buffered, and their episodes as they were.
    pub(crate) stopped: Vec<(ShardId, Unstop)>,
}

clone_field_by_field!(Shutdown {
    plan,
    grace,
    stopped
});

impl Shutdown {
    pub(crate) fn new(grace: Duration) -> Shutdown {
        Shutdown {
            plan: plan(grace),
            grace,
            stopped: Vec::new(),
        }
    }

    /// Before a `begin`: the plan for `grace` (kept, with its counters, if unchanged).
    pub(crate) fn prepare(&mut self, grace: Duration) {
        if grace != self.grace {
            self.plan = plan(grace);
            self.grace = grace;
        }
        self.stopped.clear();
    }

    /// Feeds the plan the work left in its current phase: `queued` requests to release,
    /// `held` slots still held. Ends the phases whose work is done, in the same call.
    pub(crate) fn report(&mut self, now: Timestamp, queued: usize, held: usize) {
        for (phase, work) in [
            (ShutdownPhase::ReleaseQueued, queued),
            (ShutdownPhase::WaitForRetries, held),
        ] {
            if self.plan.current_phase() == Some(phase.id()) {
                // The phase is current and waits for work: the report cannot be refused.
                let _ = self.plan.report(now, phase.id(), work as u64);
            }
        }
    }

    /// The current phase, while running.
    pub(crate) fn phase(&self) -> Option<ShutdownPhase> {
        self.plan.current_phase().and_then(ShutdownPhase::from_id)
    }
}

/// The four phases, with `grace` for the wait for retries.
fn plan(grace: Duration) -> DrainPlan {
    let phase = |p: ShutdownPhase| {
        if p.is_reversible() {
            Phase::reversible(p.name())
        } else {
            Phase::irreversible(p.name())
        }
    };
    let phases = [
        phase(ShutdownPhase::StopEpisodes),
        phase(ShutdownPhase::ReleaseQueued)
            .max_wait(Duration::MAX)
            .until_no_work(),
        phase(ShutdownPhase::WaitForRetries)
            .max_wait(grace.max(Duration::from_nanos(1)))
            .until_no_work(),
        phase(ShutdownPhase::Closed),
    ];
    // Both waiting phases wait longer than zero (the grace is validated above zero, and
    // clamped here too), and four phases fit a u32: `new` has nothing to refuse.
    #[allow(clippy::expect_used)]
    DrainPlan::new(phases).expect("the shutdown plan is valid")
}
