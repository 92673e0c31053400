//! A deterministic simulator of a router that uses the failover buffer: it plays a
//! workload and a failover timeline against the real [`failover_buffer::Buffer`] under a
//! simulated clock, and reports what the application saw, with no buffer, with Vitess's
//! defaults and with your config. It answers "how big a buffer, how long a window, how much
//! drain concurrency" for your traffic in one command.
//!
//! It reads no clock and uses no threads: [`run`] is a pure function of a [`Scenario`], a
//! [`Config`](failover_buffer::Config) and a seed (its only I/O is reading a replayed
//! trace, [`Scenario::trace`], row by row). The [`experiment`] module runs it over many
//! configs: the three-way [`compare`], the [`grid`] of one or more swept keys, and
//! [`recommend`](experiment::recommend), the smallest config that meets the scenario's
//! [`Objective`]. The binary `failover-buffer-sim` wraps them with a scenario file reader,
//! tables, JSON and plots.
//!
//! # The model
//!
//! * **Traffic.** Each shard has Poisson arrivals at its `rate` (plus any listed
//!   `arrivals`) from time zero to the scenario's `duration`. Each request draws one service
//!   time at arrival; every attempt it sends takes that long, refused or not.
//! * **The router.** A request first calls `request(now, shard, None)`. On `Proceed` it is
//!   sent. If the shard's primary refuses at that instant (its outage, or its read-only lag
//!   after promotion), the attempt fails with a failover error after its service time, and
//!   the retry policy applies, as in Vitess's gateway: up to `client.attempts` attempts in
//!   all; each failed attempt that has attempts left calls
//!   `request(now, shard, Some(FailoverCause::Reparent))`. `Proceed` sends again (after
//!   `client.retry_delay`), `Wait(ticket)` holds the request, `Fail` is an error for the
//!   application. A held request released with `Wake { Retry }` is sent at once, and
//!   `retry_done` is reported when that attempt ends; if it was refused again, `retry_done`
//!   comes first and then `request` with the cause again (which, early in an episode,
//!   pauses the drain: the core's drain back-off). `Wake { Fail }` is an error. With no
//!   buffer (buffering disabled), failover errors go straight to the retry policy.
//! * **Client timeout.** From arrival, a request has `client.timeout`. A held request whose
//!   deadline passes is cancelled (`cancel`) and counts as a `timeout` error; so does one
//!   whose attempt would answer after the deadline (a released one's `cancel` then counts as
//!   its retry being done).
//! * **Health stream.** At time zero the old primary serves (primary 1, term 1). For
//!   failover *k* (from 1): with `not_serving_delay`, a not-serving stamp of primary *k* at
//!   `start + not_serving_delay`; at promotion + `health_delay`, a serving stamp of primary
//!   *k* + 1 with term *k* + 1. A failover that never ends has no promotion: the primary
//!   refuses until the end of the run, and only `max_failover_duration` ends the episode.
//! * **Timers.** `tick` is driven at every instant `poll_timeout` names.
//! * **What real deployments add** (each off by default): several routers sharing the
//!   traffic round-robin, each with its own buffer ([`Scenario::routers`]); per-shard and
//!   cold-primary service times ([`ShardSpec::service`], [`ColdPrimary`]); exponential
//!   back-off with jitter ([`Backoff`], [`Jitter`]); a health stream that loses stamps
//!   ([`Health`], [`Failover::serving_stamp_lost`]); a failover that first pauses writes
//!   ([`Failover::write_pause`]); resharding and MoveTables switches ([`TopologyChange`]).
//!   The crate README describes each precisely.
//!
//! Errors are counted by [`ErrorCause`]. Added latency is measured over successful requests
//! as end minus arrival minus the request's own service time, so an unaffected request adds
//! zero; percentiles are nearest-rank.
//!
//! # Determinism
//!
//! The same scenario and seed give byte-identical output: events are ordered by time and
//! then by the order they were scheduled, nothing is iterated in hash order, and no wall
//! clock is read. The random numbers come from a hand-written xoshiro256** ([`Rng`]) rather
//! than a crate, so a dependency bump can never change a report. Each shard has its own
//! stream, and arrivals and service times are drawn in arrival order only, so the three runs
//! of a comparison (and every row of a sweep) see exactly the same traffic.
//!
//! # For benchmarks
//!
//! [`run`] with [`Scenario::default_scenario`] (or a scenario of your own) is the API a
//! benchmark calls; the loop is a binary heap of `(time, sequence, event)`, drives the core
//! `Buffer` directly, and allocates nothing per request beyond the growth of its tables.
//!
//! ```
//! use failover_buffer_sim::{Scenario, compare, NoObserver};
//!
//! let scenario = Scenario::default_scenario();
//! let comparison = compare(&scenario, scenario.seed, &mut NoObserver)?;
//! let [none, vitess, _mine] = &comparison.runs[..] else { unreachable!() };
//! // Without a buffer the failover is errors; with one, most requests just wait.
//! assert!(none.report.errors.total > vitess.report.errors.total);
//! # Ok::<(), failover_buffer_sim::SimError>(())
//! ```

/// The crate README's Rust examples, compiled and run as doctests so they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

mod duration;
mod error;
pub mod experiment;
mod input;
mod plot;
mod report;
mod rng;
mod scenario;
mod sim;
mod table;

pub use duration::{DurationError, format_duration, parse_duration};
pub use error::{BufferKeyError, ObjectiveError, RowError, RowErrorKind, SimError, SweepError};
pub use experiment::{
    Comparison, ConfigSummary, GridReport, GridRow, NamedRun, Sweep, compare, grid, grid_size,
    write_comparison, write_grid,
};
pub use input::{TIMELINE_COLUMNS, TraceReader, TraceRow, read_timeline};
pub use plot::plot_timeline;
pub use report::{
    BufferCounters, Errors, Evicted, Latency, PauseOutcome, Report, ShutdownOutcome, Skipped,
    Stops, TIMELINE_BUCKET, Timeline, Wait,
};
pub use rng::Rng;
pub use scenario::{
    BUFFER_KEYS, Backoff, Client, ColdPrimary, Failover, Health, Jitter, Objective, PauseSpec,
    Scenario, ScenarioError, ServiceTime, ShardSpec, ShutdownSpec, TopologyChange, TopologyKind,
    Traffic, enabled_vitess_defaults, set_buffer_key, validate_buffer,
};
pub use sim::{ErrorCause, NoObserver, Observer, Outcome, RequestEnd, run, run_observed};
