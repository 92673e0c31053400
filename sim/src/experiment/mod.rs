//! Experiments: what the binary's modes ask of the engine. Each one runs the engine
//! ([`crate::sim::run_observed`]) over configs it chooses and reads the [`Report`]s it gets
//! back; none reaches into a run.
//!
//! * [`compare`]: no buffer, Vitess's defaults and the scenario's config, on the same
//!   traffic.
//! * [`grid`]: one run per combination of values of one or more buffer keys.
//! * [`recommend`]: the smallest config that meets the scenario's objective.
//!
//! [`Report`]: crate::Report

mod compare;
mod grid;
mod recommend;

pub use compare::{Comparison, ConfigSummary, NamedRun, compare, write_comparison};
pub use grid::{GridReport, GridRow, Sweep, grid, grid_size, write_grid};
pub use recommend::{
    Candidate, DRAIN_CONCURRENCIES, LARGEST_SIZE, MAX_FAILOVER_DURATIONS, Miss, Recommendation,
    SearchProgress, WINDOWS, recommend, write_recommendation,
};
