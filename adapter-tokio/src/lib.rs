//! A tokio driver for [`failover_buffer`]: a router calls
//! [`wait_for_failover_end`](FailoverBuffer::wait_for_failover_end) before sending a request
//! to a shard's primary, and during a failover the returned future holds the request until
//! the new primary serves, instead of letting it fail.
//!
//! This crate is a thin shell. The rules (Vitess vtgate's buffer, with its known bugs fixed)
//! live in the sans-IO [`failover_buffer::Buffer`]; this crate feeds it tokio's clock, keeps
//! its one timer in a driver task, turns its wake-ups into futures and turns dropped futures
//! and guards into its `cancel` and `retry_done` inputs. It does not classify errors, watch
//! health or talk to a database: the router tells it what it saw
//! ([`health`](FailoverBuffer::health), [`topology`](FailoverBuffer::topology), the
//! [`FailoverCause`] of a failed attempt). For threads without an async runtime, see the
//! `failover-buffer-std` crate.
//!
//! ```
//! use failover_buffer_tokio::{Config, FailoverBuffer, FailoverCause, HealthStamp, PrimaryId};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let buffer = FailoverBuffer::new(Config { enabled: true, ..Config::default() })?;
//! let shard = buffer.register_shard("commerce", "0");
//! buffer.health(&shard, HealthStamp { primary: PrimaryId(1), term: 1, serving: true })?;
//!
//! // A request's first attempt: on a healthy shard it proceeds at once (no lock, no allocation).
//! assert!(buffer.wait_for_failover_end(&shard, None).await?.is_none());
//! // The primary answered "read-only: reparent in progress". Ask again with the cause:
//! // the retry is held, in a task of its own here.
//! let retry = tokio::spawn({
//!     let (buffer, shard) = (buffer.clone(), shard.clone());
//!     async move {
//!         let guard = buffer.wait_for_failover_end(&shard, Some(FailoverCause::Reparent)).await?;
//!         // Released: send the retry now; dropping the guard reports it done.
//!         Ok::<_, failover_buffer_tokio::BufferError>(guard.is_some())
//!     }
//! });
//! // The health stream sees the new primary, with a newer term: the retry is released.
//! tokio::time::sleep(std::time::Duration::from_secs(2)).await;
//! buffer.health(&shard, HealthStamp { primary: PrimaryId(2), term: 2, serving: true })?;
//! assert!(retry.await??);
//! # Ok(()) }
//! ```
//!
//! # The retry loop
//!
//! [`run`](FailoverBuffer::run) runs a request's whole retry loop in one call: at most
//! `max_attempts` attempts, each one behind the buffer, a classifier saying which errors are
//! failover errors. To write the loop by hand, call `wait_for_failover_end(&shard, None)`
//! before the first attempt and [`wait_to_retry`](FailoverBuffer::wait_to_retry)`(&shard,
//! guard, cause)` after each failover error, passing whatever the previous call returned.
//! With the `tower` feature, `FailoverBufferLayer` runs the loop around any `tower::Service`.
//! [`events`](FailoverBuffer::events) streams each shard's episode. The [`guide`] says what
//! to report as health, with watchers for Redis, Postgres and Vitess, and names the traps.
//!
//! # How it runs
//!
//! * One [`std::sync::Mutex`] guards the core; every critical section is one core input and
//!   its actions. Wakers are collected under the lock and woken after it is released.
//! * One driver task per buffer sleeps on one [`tokio::time::Sleep`] until the core's next
//!   deadline (window expiry, max failover duration, drain back-off), whatever the number
//!   of shards and held requests.
//! * Each [`Shard`] handle carries an atomic "buffering" flag that mirrors the core, so a
//!   first attempt on a shard that is not failing over takes no lock and allocates nothing.
//!   [`first_attempt_proceeds`](FailoverBuffer::first_attempt_proceeds) is that check alone,
//!   with no future to poll. The flag is only a shortcut: the core decides everything else.
//! * A held request costs its task plus about 100 bytes here and in the core (a waiter map
//!   entry and a slab entry).
//!
//! # Cancel safety
//!
//! Dropping a [`wait_for_failover_end`](FailoverBuffer::wait_for_failover_end) future
//! cancels the request; dropping a [`RetryGuard`] (on any path, panics included) reports its
//! retry done. No slot is ever stranded; see each item for the details.
//!
//! # Features
//!
//! * `metrics`: exports each shard's counters through the [`metrics`](https://docs.rs/metrics)
//!   facade, with Vitess's metric names in snake case: counters `failover_buffer_starts`,
//!   `failover_buffer_stops{reason}`, `failover_buffer_requests_buffered`,
//!   `failover_buffer_requests_buffered_dry_run`, `failover_buffer_requests_drained`,
//!   `failover_buffer_requests_evicted{reason}`, `failover_buffer_requests_skipped{reason}`,
//!   `failover_buffer_drains_paused`, `failover_buffer_failover_duration_sum_ms`,
//!   `failover_buffer_utilization_sum`, `failover_buffer_utilization_dry_run_sum`; gauges
//!   `failover_buffer_last_failover_duration_ms`,
//!   `failover_buffer_last_requests_in_flight_max`,
//!   `failover_buffer_last_requests_dry_run_max`. All carry `keyspace` and `shard` labels,
//!   and all exist (at zero) from the shard's registration. Install the recorder before
//!   registering shards.
//!   Histograms (recorded as their samples arrive, each as the midpoint of its core bucket,
//!   within 12.5%): `failover_buffer_requests_wait_ms{outcome}`, how long each held request
//!   waited until its verdict (`Retried`, `Window`, `Evicted`, `Cancelled`, `ShardMissing`), and
//!   `failover_buffer_failover_duration_ms`, one sample per failover.
//! * `tower`: `FailoverBufferLayer`, the retry loop as `tower` middleware.
//! * `tracing`: logs failover started, stopped, drain paused and finished, and closed at
//!   INFO; shard registration at DEBUG; every admission, release, cancel and retry done at
//!   TRACE.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod buffer;
mod driver;
pub mod guide;
#[cfg(feature = "tower")]
mod layer;
#[cfg(all(test, loom))]
mod loom_tests;
mod pause;
pub mod plan;
mod retry;
mod shared;
mod shutdown;
mod sized;
mod sync;
mod telemetry;
mod views;
mod wait;

pub use buffer::{FailoverBuffer, Shard};
pub use failover_buffer::EpisodeEvent;
#[cfg(feature = "tower")]
#[cfg_attr(docsrs, doc(cfg(feature = "tower")))]
pub use layer::{FailoverBufferLayer, FailoverBufferService, FailoverPolicy};
pub use retry::RunError;
pub use shutdown::{Shutdown, ShutdownEnd};
pub use wait::RetryGuard;

// The core's vocabulary, so a router needs no direct dependency on `failover-buffer`.
pub use failover_buffer::{
    BufferError, ByReason, Config, ConfigError, EpisodeView, EvictReason, Eviction, FailoverCause,
    HealthStamp, InputError, InputStats, InvariantViolation, Mode, PauseEnd, PauseError, PrimaryId,
    Reason, ReleaseReason, ShardFilter, ShardId, ShardState, ShardStats, ShutdownPhase,
    ShutdownProgress, SkipReason, StopReason, Ticket, TopologyEvent,
};

/// The README's examples, compiled and run as doctests so they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
