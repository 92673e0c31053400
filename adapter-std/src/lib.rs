//! A failover buffer for routers that serve each request on its own OS thread: while a
//! shard's primary fails over, requests to it block instead of failing, and are released to
//! the new primary, paced, once it serves.
//!
//! This crate is a thin blocking shell around the sans-IO state machine of the
//! [`failover_buffer`] crate (re-exported here), which holds all of the rules (Vitess
//! vtgate's buffer with its known bugs fixed). It adds a mutex around the core, one parked
//! thread per held request, one timer thread per buffer, and a lock-free fast path for the
//! common case of no failover. It does not talk to any database, classify errors, or watch
//! health: the router tells it which errors were failovers and what its health stream saw.
//! For async routers use `failover-buffer-tokio`, which has the same shape.
//!
//! # Usage
//!
//! ```
//! use failover_buffer_std::{Config, FailoverBuffer, FailoverCause, HealthStamp, PrimaryId};
//!
//! # #[derive(Debug)] struct ReadOnly;
//! # fn send(_query: &str) -> Result<u64, ReadOnly> { Ok(1) }
//! let buffer = FailoverBuffer::new(Config { enabled: true, ..Config::default() })?;
//! let shard = buffer.register_shard("commerce", "0");
//! // The health stream reports the primary (a new term ends a failover).
//! buffer.health(&shard, HealthStamp { primary: PrimaryId(1), term: 1, serving: true })?;
//!
//! // In each request thread:
//! let mut cause = None;
//! let rows = loop {
//!     // Blocks while the shard fails over; returns at once (no lock) when it is not.
//!     let _retry = buffer.wait_for_failover_end(&shard, cause)?;
//!     match send("UPDATE t SET x = 1") {
//!         Ok(rows) => break rows,
//!         // A failover error: drop the guard (end of this loop body), then wait again.
//!         Err(ReadOnly) => cause = Some(FailoverCause::Reparent),
//!     }
//! };
//! assert_eq!(rows, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A real router caps the attempts (Vitess makes three) and passes other errors straight to
//! its client: [`FailoverBuffer::run`] does all of this in one call, and
//! [`FailoverBuffer::wait_to_retry`] is the one call to make after each failover error,
//! whether or not the previous answer held a guard. [`FailoverBuffer::events`] announces
//! each shard's episode.
//!
//! # Blocking and time
//!
//! [`FailoverBuffer::wait_for_failover_end`] blocks the calling thread while the request is
//! held: at most the configured `window`, less if the failover ends, its max duration
//! passes, the request is evicted for a newer one, or the buffer shuts down.
//! [`FailoverBuffer::wait_for_failover_end_timeout`] also gives up at a deadline. A thread
//! woken to retry receives a [`RetryGuard`]; dropping it (on any path, panics included)
//! tells the buffer that retry has finished, which frees the slot and lets a drain release
//! the next request.
//!
//! Time comes from a [`Clock`], by default [`SystemClock`]. Tests can use a
//! [`ManualClock`] with [`FailoverBuffer::tick_now`] to step time without sleeping.
//!
//! # Features
//!
//! * `metrics`: each shard's counters through the [`metrics`](https://docs.rs/metrics)
//!   facade, with Vitess's names in snake case (the same set as `failover-buffer-tokio`):
//!   counters `failover_buffer_starts`, `failover_buffer_stops{reason}`,
//!   `failover_buffer_requests_buffered`, `failover_buffer_requests_buffered_dry_run`,
//!   `failover_buffer_requests_drained`, `failover_buffer_requests_evicted{reason}`,
//!   `failover_buffer_requests_skipped{reason}`, `failover_buffer_drains_paused`,
//!   `failover_buffer_failover_duration_sum_ms`, `failover_buffer_utilization_sum`,
//!   `failover_buffer_utilization_dry_run_sum`; gauges
//!   `failover_buffer_last_failover_duration_ms`,
//!   `failover_buffer_last_requests_in_flight_max`,
//!   `failover_buffer_last_requests_dry_run_max`. All carry `keyspace` and `shard` labels
//!   and exist, at zero, from the shard's registration: install the recorder first.
//!   Histograms (recorded as their samples arrive, each as the midpoint of its core bucket,
//!   within 12.5%): `failover_buffer_requests_wait_ms{outcome}`, how long each held request
//!   waited until its verdict (`Retried`, `Window`, `Evicted`, `Cancelled`, `ShardMissing`), and
//!   `failover_buffer_failover_duration_ms`, one sample per failover.
//! * `tracing`: state changes (failover detected, buffering stopped, drain started, paused
//!   and finished, closed) at INFO; each held request at TRACE.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod buffer;
mod clock;
#[cfg(all(test, loom))]
mod loom_tests;
mod pause;
pub mod plan;
mod retry;
mod shard;
mod shutdown;
mod state;
mod sync;
mod telemetry;
mod views;

pub use buffer::{FailoverBuffer, RetryGuard, WaitError};
pub use clock::{Clock, ManualClock, SystemClock};
pub use failover_buffer::EpisodeEvent;
pub use retry::RunError;
pub use shard::Shard;
pub use shutdown::{Shutdown, ShutdownEnd};

pub use failover_buffer;
pub use failover_buffer::{
    BufferError, Config, ConfigError, EpisodeView, EvictReason, Eviction, FailoverCause,
    HealthStamp, InputError, InputStats, InvariantViolation, Mode, PauseEnd, PauseError, PrimaryId,
    ReleaseReason, ShardFilter, ShardId, ShardState, ShardStats, ShutdownPhase, ShutdownProgress,
    SkipReason, StopReason, Ticket, Timestamp, TopologyEvent,
};

/// The README's examples, compiled and run as doctests so they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
