//! What a drain plan tells its caller to do.

use super::phase::PhaseId;

/// A consequence of an input to a [`DrainPlan`](super::DrainPlan), to be carried out by the
/// caller, in order. Drain them with [`poll_action`](super::DrainPlan::poll_action) after
/// every input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DrainAction {
    /// Do this phase's work now (mark not-ready, stop accepting work, close, ...). The
    /// previous phase, if any, has ended; [`history`](super::DrainPlan::history) says why.
    Enter {
        /// The phase.
        phase: PhaseId,
    },
    /// The drain is about to enter its first irreversible phase: from here on it can no
    /// longer be cancelled. Comes immediately before that phase's [`DrainAction::Enter`].
    PointOfNoReturn {
        /// The first irreversible phase.
        phase: PhaseId,
    },
    /// Undo this phase's work (answer ready again, accept work again, ...). A
    /// [`cancel`](super::DrainPlan::cancel) reverts every phase entered since the drain
    /// began, the current one included, last entered first, then says
    /// [`DrainAction::Cancelled`].
    Revert {
        /// The phase.
        phase: PhaseId,
    },
    /// The last phase has ended: the drain is complete. Nothing more follows.
    Finished,
    /// The drain was called off and the reverts before this action are all of it: the
    /// phases `0..reverted` were undone (in inverse order). The plan can
    /// [`begin`](super::DrainPlan::begin) again.
    Cancelled {
        /// How many phases were reverted: all those entered since the drain began.
        reverted: usize,
    },
}
