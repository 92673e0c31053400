//! Logs (feature `tracing`) and metrics (feature `metrics`). Without the features every
//! function here is empty and compiles away.
//!
//! Metrics are not counted twice: the core's [`ShardStats`] is the only tally, and after each
//! input the exporter sends the touched shard's differences since its last export (counters)
//! or its current values (gauges). A counter therefore never disagrees with
//! [`FailoverBuffer::stats`](crate::FailoverBuffer::stats).
#![cfg_attr(
    not(all(feature = "tracing", feature = "metrics")),
    allow(unused_variables, clippy::unused_self)
)]

use std::sync::Arc;

#[cfg(feature = "metrics")]
use failover_buffer::ShardStats;
use failover_buffer::{Action, Admission, Buffer, FailoverCause, Ticket, Verdict};

use crate::shared::{ShardCell, Touched};

/// Exporter state. Empty without the `metrics` feature.
#[derive(Debug, Default)]
pub(crate) struct Telemetry {
    /// Per shard index, the stats as last exported.
    #[cfg(feature = "metrics")]
    exported: Vec<ShardStats>,
}

impl Telemetry {
    /// A shard was registered: every one of its series exists from now on, at zero, as
    /// Vitess initialises them.
    pub(crate) fn register(&mut self, core: &Buffer, cell: &ShardCell) {
        #[cfg(feature = "metrics")]
        {
            let zero = ShardStats::default();
            let stats = core.shard_stats(cell.id).copied().unwrap_or_default();
            export_shard(cell, &zero, &stats, true);
            self.exported.push(stats);
        }
        #[cfg(feature = "tracing")]
        tracing::debug!(keyspace = %cell.keyspace, shard = %cell.name, id = cell.id.index(), "shard registered");
    }

    /// Exports what an input changed in the counters of the shards it touched.
    pub(crate) fn export(&mut self, core: &Buffer, cells: &[Arc<ShardCell>], touched: Touched) {
        #[cfg(feature = "metrics")]
        {
            let mut one = |index: usize| {
                let (Some(cell), Some(last)) = (cells.get(index), self.exported.get_mut(index))
                else {
                    return;
                };
                let Some(stats) = core.shard_stats(cell.id) else {
                    return;
                };
                if stats != last {
                    export_shard(cell, last, stats, false);
                    *last = *stats;
                }
            };
            match touched {
                Touched::One(id) => one(id.index()),
                Touched::All => (0..cells.len()).for_each(one),
            }
        }
    }

    /// Logs an action of the core: episode changes at INFO, wake-ups at TRACE.
    pub(crate) fn action(&self, core: &Buffer, cells: &[Arc<ShardCell>], action: &Action) {
        #[cfg(feature = "tracing")]
        log_action(core, cells, action);
    }
}

/// A request's admission, at TRACE.
pub(crate) fn admission(cell: &ShardCell, cause: Option<FailoverCause>, admission: &Admission) {
    #[cfg(feature = "tracing")]
    tracing::trace!(
        keyspace = %cell.keyspace,
        shard = %cell.name,
        ?cause,
        ?admission,
        "request admitted"
    );
}

/// A waiting request's future took its verdict, at TRACE.
pub(crate) fn collected(cell: &ShardCell, ticket: Ticket, verdict: Verdict) {
    #[cfg(feature = "tracing")]
    tracing::trace!(keyspace = %cell.keyspace, shard = %cell.name, ?ticket, ?verdict, "request released");
}

/// A waiting request's future was dropped before it took its verdict, at TRACE.
pub(crate) fn abandoned(cell: &ShardCell, ticket: Ticket) {
    #[cfg(feature = "tracing")]
    tracing::trace!(keyspace = %cell.keyspace, shard = %cell.name, ?ticket, "waiting request dropped: cancelled");
}

/// A released request's retry finished ([`RetryGuard`](crate::RetryGuard) dropped), at TRACE.
pub(crate) fn retry_done(cell: &ShardCell, ticket: Ticket) {
    #[cfg(feature = "tracing")]
    tracing::trace!(keyspace = %cell.keyspace, shard = %cell.name, ?ticket, "retry done");
}

/// [`FailoverBuffer::shutdown`](crate::FailoverBuffer::shutdown) was called, at INFO.
pub(crate) fn shutdown(core: &Buffer) {
    #[cfg(feature = "tracing")]
    tracing::info!(
        held = core.held_slots(),
        "failover buffer shutting down: releasing every held request"
    );
}

#[cfg(feature = "tracing")]
fn log_action(core: &Buffer, cells: &[Arc<ShardCell>], action: &Action) {
    use failover_buffer::Metric;

    let names = |shard: failover_buffer::ShardId| {
        cells
            .get(shard.index())
            .map_or(("?", "?"), |c| (&*c.keyspace, &*c.name))
    };
    match *action {
        Action::Wake { ticket, verdict } => {
            tracing::trace!(?ticket, ?verdict, "wake");
        }
        Action::FailoverStarted { shard, cause } => {
            let (keyspace, shard) = names(shard);
            tracing::info!(
                keyspace,
                shard,
                ?cause,
                "failover started: buffering requests"
            );
        }
        Action::StartDrain { shard, queued } => {
            let (keyspace, shard) = names(shard);
            tracing::info!(keyspace, shard, queued, "draining buffered requests");
        }
        Action::Metric(Metric::BufferingStopped {
            shard,
            reason,
            duration,
            in_flight_max,
            utilization_percent,
        }) => {
            let (keyspace, shard) = names(shard);
            tracing::info!(
                keyspace,
                shard,
                %reason,
                ?duration,
                in_flight_max,
                utilization_percent,
                "failover ended: buffering stopped"
            );
        }
        Action::DrainPaused { shard, queued } => {
            let (keyspace, shard) = names(shard);
            tracing::info!(
                keyspace,
                shard,
                queued,
                "drain paused: a released request met the failover again; buffering"
            );
        }
        Action::Metric(Metric::DrainFinished { shard, duration }) => {
            let (keyspace, shard) = names(shard);
            tracing::info!(keyspace, shard, ?duration, "drain finished");
        }
        Action::Closed => {
            tracing::info!(free_slots = core.free_slots(), "failover buffer closed");
        }
        _ => {}
    }
}

/// Sends one shard's changes, under the core's names ([`ShardStats::samples`]). `init` also
/// sends the counters that did not change, so every series exists from registration on.
#[cfg(feature = "metrics")]
fn export_shard(cell: &ShardCell, old: &ShardStats, new: &ShardStats, init: bool) {
    use failover_buffer::SampleKind;
    use metrics::{SharedString, counter, gauge};

    let keyspace = SharedString::from(Arc::clone(&cell.keyspace));
    let shard = SharedString::from(Arc::clone(&cell.name));
    for (old, new) in old.samples().zip(new.samples()) {
        let (name, ks, sh) = (new.name, keyspace.clone(), shard.clone());
        match (new.kind, new.reason) {
            (SampleKind::Counter, _) if !init && new.value == old.value => {}
            (SampleKind::Counter, None) => counter!(name, "keyspace" => ks, "shard" => sh)
                .increment(new.value.saturating_sub(old.value)),
            (SampleKind::Counter, Some(reason)) => {
                counter!(name, "keyspace" => ks, "shard" => sh, "reason" => reason)
                    .increment(new.value.saturating_sub(old.value))
            }
            // Gauges describe the current or last episode (a kind added later is set too).
            _ => gauge!(name, "keyspace" => ks, "shard" => sh).set(new.value as f64),
        }
    }
}
