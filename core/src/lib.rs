//! A sans-IO failover buffer: holds a shard's requests while its primary fails over, then
//! releases them to the new primary, so that clients see a pause instead of errors.
//!
//! This crate is the state machine and nothing else. It contains no networking code, reads
//! no clock, spawns nothing and takes no lock: a caller (a database proxy, a router, a
//! pooler, a test, a simulator) feeds it inputs stamped with the time and carries out the
//! [`Action`]s it returns. It is `#![no_std]` (with `alloc`) and free of `unsafe`. For
//! ready-made drivers, see the `failover-buffer-tokio` and `failover-buffer-std` crates.
//!
//! It is Vitess vtgate's buffer (`go/vt/vtgate/buffer`) with the same rules, defaults,
//! counters and error strings, and with its known bugs fixed: the end of a failover is
//! detected by primary term, so a stale "still serving" never ends buffering early; a drain
//! that meets a primary not yet writable backs off instead of failing everyone; cancelling a
//! queued request is O(1); and every request ends exactly once on every path.
//!
//! Start at [`Buffer`].
//!
//! # Panics
//!
//! No sequence of inputs panics. A panic is a bug; please report it with the inputs.
#![no_std]
#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]
#![cfg_attr(docsrs, feature(doc_cfg))]

extern crate alloc;
#[cfg(doc)]
extern crate std;

#[macro_use]
mod clone;

mod action;
mod buffer;
mod check;
mod config;
pub mod drain;
mod episode;
mod error;
mod event;
mod filter;
pub mod histogram;
#[cfg(feature = "inspect")]
#[cfg_attr(docsrs, doc(cfg(feature = "inspect")))]
pub mod inspect;
mod names;
mod pause;
mod policy;
mod queue;
mod shard;
mod shard_buffer;
mod shutdown;
mod stats;
mod ticket;
mod ticket_map;
mod time;
mod timers;
mod waits;

pub use action::{Action, Admission, Deadline, Metric, TimerKind, Verdict};
pub use buffer::Buffer;
pub use check::InvariantViolation;
pub use config::{Config, ConfigError, Mode};
pub use episode::EpisodeEvent;
pub use error::{BufferError, InputError};
pub use event::{FailoverCause, HealthStamp, PrimaryId, TopologyEvent};
pub use filter::{FilterError, ShardFilter};
pub use histogram::Histogram;
pub use pause::{PauseError, PauseScope};
pub use policy::{Eviction, UnknownEviction};
pub use queue::{ReleaseReason, TicketStatus};
pub use shard::{EpisodeView, ShardId, ShardState};
pub use shutdown::{ShutdownPhase, ShutdownProgress};
pub use stats::{
    ByReason, EvictReason, InputStats, PauseEnd, Reason, SampleKind, ShardStats, SkipReason,
    StatSample, StopReason, WaitOutcome,
};
pub use ticket::{Ticket, TicketError};
pub use ticket_map::TicketMap;
pub use time::Timestamp;
pub use waits::{WaitDelta, WaitHistograms};
