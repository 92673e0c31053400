//! The bounded operator pause: what [`Buffer::pause`](crate::Buffer::pause) names, refuses,
//! and keeps per shard.

use core::fmt;
use core::time::Duration;

use crate::config::Mode;
use crate::shard::{ShardId, ShardState};
use crate::time::Timestamp;

/// Which shards a [`Buffer::pause`](crate::Buffer::pause) or
/// [`Buffer::resume`](crate::Buffer::resume) is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PauseScope {
    /// One shard.
    Shard(ShardId),
    /// Every shard registered *at the time of the call* (for `pause`, every one whose mode
    /// is [`Mode::Enabled`]; the others are skipped). A shard registered later is not
    /// paused: the pause is a set of per-shard pauses, not a buffer-wide mode, so each one
    /// ends, expires and is counted on its own; pause a new shard by its id.
    All,
}

/// Why [`Buffer::pause`](crate::Buffer::pause) or [`Buffer::resume`](crate::Buffer::resume)
/// was refused. Nothing was changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PauseError {
    /// The [`ShardId`] was not issued by this buffer (also counted in
    /// [`InputStats::unknown_shards`](crate::InputStats::unknown_shards)).
    UnknownShard,
    /// `max` is zero: the pause would end in the instant it began.
    MaxZero,
    /// `max` is above [`Config::max_pause`](crate::Config::max_pause).
    MaxAboveBound {
        /// The `max` asked for.
        max: Duration,
        /// The configured bound.
        bound: Duration,
    },
    /// The shard's mode is not [`Mode::Enabled`]: a disabled or dry-run shard holds nothing,
    /// so a pause could not hold its requests either.
    NotEnabled(Mode),
    /// A [`shutdown`](crate::Buffer::shutdown) is under way or has closed the buffer: every
    /// request proceeds from then on, and nothing new may be held.
    ShuttingDown,
}

impl fmt::Display for PauseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PauseError::UnknownShard => f.write_str("unknown shard id"),
            PauseError::MaxZero => f.write_str("a pause's max must be > 0"),
            PauseError::MaxAboveBound { max, bound } => {
                write!(
                    f,
                    "a pause's max must be <= max_pause: {max:?} vs. {bound:?}"
                )
            }
            PauseError::NotEnabled(mode) => {
                write!(f, "only an enabled shard can be paused (mode {mode:?})")
            }
            PauseError::ShuttingDown => f.write_str("the buffer is shutting down"),
        }
    }
}

impl core::error::Error for PauseError {}

/// A shard's operator pause in progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Pause {
    /// When it began (or was last paused again): a lower `max_pause` applies from here.
    pub(crate) since: Timestamp,
    /// When it ends by itself: `since + max`, at most `since + max_pause`.
    pub(crate) until: Timestamp,
    /// The shard's state under the pause, the failover machine's own (`Idle`, `Buffering`
    /// for an episode still on, `Draining` for an episode that ended, or a drain that was
    /// under way): what the shard goes back to when the pause ends. While paused, the
    /// shard's visible state is `Buffering`.
    pub(crate) under: ShardState,
}

/// A shard's operator-pause state, kept out of line in the shard's detail: the idle path
/// reads only the shard's inline state, which a pause sets to `Buffering`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Hold {
    /// The pause in progress, if any.
    pub(crate) pause: Option<Pause>,
    /// The drain under way releases what a pause held with no episode behind it (not an
    /// episode's drain): its releases are [`ReleaseReason::PauseEnded`](crate::ReleaseReason::PauseEnded),
    /// and it neither backs off nor reports an episode's held duration.
    pub(crate) pause_drain: bool,
}

impl Hold {
    /// No pause, and no pause's drain.
    pub(crate) const NONE: Hold = Hold {
        pause: None,
        pause_drain: false,
    };
}
