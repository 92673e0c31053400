//! Logs (feature `tracing`) and metrics (feature `metrics`). Without the features every
//! function here is empty and compiles away.
//!
//! Telemetry is user code (a metrics recorder, a tracing subscriber), so none of it runs
//! under the state lock: an input records what happened into a [`Report`] while it holds the
//! lock (owned copies: shard names, actions, counter differences), and the report is sent
//! once the lock is released. A slow recorder therefore stalls only the task that emits, and
//! a recorder or subscriber that calls back into the buffer cannot deadlock.
//!
//! Metrics are not counted twice: the core's [`ShardStats`] is the only tally. Under the lock
//! the exporter takes each touched shard's difference since its last export and marks it
//! exported; the difference is sent after. Two inputs racing to emit send disjoint
//! differences, so a counter never disagrees with
//! [`FailoverBuffer::stats`](crate::FailoverBuffer::stats) once both have emitted.
#![cfg_attr(
    not(all(feature = "tracing", feature = "metrics")),
    allow(unused_variables, clippy::unused_self)
)]

use std::sync::Arc;

use failover_buffer::{Action, Admission, Buffer, FailoverCause, ShardId, Ticket, Verdict};
#[cfg(feature = "metrics")]
use failover_buffer::{ShardStats, WaitHistograms};

use crate::shared::{ShardCell, Touched};

/// Exporter state, behind the lock. Empty without the `metrics` feature.
#[derive(Debug, Default)]
pub(crate) struct Telemetry {
    /// Per shard index, the stats as last exported.
    #[cfg(feature = "metrics")]
    exported: Vec<ShardStats>,
    /// Per shard index, its wait histograms as last exported; allocated at its first sample.
    #[cfg(feature = "metrics")]
    exported_waits: Vec<Option<Box<WaitHistograms>>>,
}

/// What one input has to say, gathered under the lock and sent by [`Report::emit`] after it.
/// Allocates nothing when there is nothing to say (and nothing at all without the features).
#[derive(Debug, Default)]
pub(crate) struct Report {
    /// Actions to log, with the shard they name (if any), in the core's order.
    #[cfg(feature = "tracing")]
    actions: Vec<(Action, Option<Arc<ShardCell>>)>,
    /// Free slots when `Closed` was seen.
    #[cfg(feature = "tracing")]
    free_slots: usize,
    /// A shard registered, to log at DEBUG.
    #[cfg(feature = "tracing")]
    registered: Option<Arc<ShardCell>>,
    /// Held slots when a shutdown began, to log at INFO.
    #[cfg(feature = "tracing")]
    shutdown: Option<usize>,
    /// Per shard: its names, its stats as last exported, its stats now; `true` to send every
    /// series (a registration).
    #[cfg(feature = "metrics")]
    metrics: Vec<(Arc<ShardCell>, ShardStats, ShardStats, bool)>,
    /// Histogram samples to record: the shard, the outcome label (`None`: a failover's
    /// duration), the value in milliseconds and how many samples of it.
    #[cfg(feature = "metrics")]
    samples: Vec<(Arc<ShardCell>, Option<&'static str>, f64, u64)>,
}

impl Telemetry {
    /// A shard was registered: every one of its series exists from now on, at zero, as
    /// Vitess initialises them.
    pub(crate) fn register(&mut self, core: &Buffer, cell: &Arc<ShardCell>, report: &mut Report) {
        #[cfg(feature = "metrics")]
        {
            let stats = core.shard_stats(cell.id).copied().unwrap_or_default();
            report
                .metrics
                .push((Arc::clone(cell), ShardStats::default(), stats, true));
            self.exported.push(stats);
            self.exported_waits.push(None);
        }
        #[cfg(feature = "tracing")]
        {
            report.registered = Some(Arc::clone(cell));
        }
    }

    /// Takes what an input changed in the counters of the shards it touched.
    pub(crate) fn export(
        &mut self,
        core: &Buffer,
        cells: &[Arc<ShardCell>],
        touched: Touched,
        report: &mut Report,
    ) {
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
                    report
                        .metrics
                        .push((Arc::clone(cell), *last, *stats, false));
                    *last = *stats;
                }
                let (Some(waits), Some(last)) = (
                    core.wait_histograms(cell.id),
                    self.exported_waits.get_mut(index),
                ) else {
                    return;
                };
                if waits.wait_count() + waits.failovers().count() == 0 {
                    return;
                }
                let last = last.get_or_insert_with(Box::default);
                let before = report.samples.len();
                for d in waits.since(last) {
                    let ms = d.bucket.midpoint().as_secs_f64() * 1e3;
                    let outcome = d.outcome.map(failover_buffer::Reason::as_str);
                    report
                        .samples
                        .push((Arc::clone(cell), outcome, ms, d.added));
                }
                // Most inputs (an enqueue, a tick) end no wait: `since` compared six counts,
                // and the 2 KB copy is only made when there was news.
                if report.samples.len() != before {
                    (**last).clone_from(waits);
                }
            };
            match touched {
                Touched::One(id) => one(id.index()),
                Touched::All => (0..cells.len()).for_each(one),
            }
        }
    }
}

impl Report {
    /// Keeps an action of the core, to log: episode changes at INFO, wake-ups at TRACE.
    pub(crate) fn action(&mut self, core: &Buffer, cells: &[Arc<ShardCell>], action: &Action) {
        #[cfg(feature = "tracing")]
        {
            use failover_buffer::Metric;

            let shard = match *action {
                Action::FailoverStarted { shard, .. }
                | Action::StartDrain { shard, .. }
                | Action::DrainPaused { shard, .. }
                | Action::PauseStarted { shard, .. }
                | Action::PauseEnded { shard, .. }
                | Action::Metric(
                    Metric::BufferingStopped { shard, .. } | Metric::DrainFinished { shard, .. },
                ) => cells.get(shard.index()).cloned(),
                _ => None,
            };
            if let Action::Closed = action {
                self.free_slots = core.free_slots();
            }
            self.actions.push((*action, shard));
        }
    }

    /// A shutdown began with `held` slots held.
    pub(crate) fn shutdown(&mut self, held: usize) {
        #[cfg(feature = "tracing")]
        {
            self.shutdown = Some(held);
        }
    }

    /// Whether there is nothing to send (always, without the features): most inputs of a
    /// drain have nothing to say.
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        #[cfg(feature = "tracing")]
        if !self.actions.is_empty() || self.registered.is_some() || self.shutdown.is_some() {
            return false;
        }
        #[cfg(feature = "metrics")]
        if !self.metrics.is_empty() || !self.samples.is_empty() {
            return false;
        }
        true
    }

    /// Sends everything, outside the lock.
    pub(crate) fn emit(self) {
        #[cfg(feature = "tracing")]
        {
            if let Some(held) = self.shutdown {
                tracing::info!(
                    held,
                    "failover buffer shutting down: releasing every held request"
                );
            }
            if let Some(cell) = &self.registered {
                tracing::debug!(keyspace = %cell.keyspace, shard = %cell.name, id = cell.id.index(), "shard registered");
            }
            for (action, cell) in &self.actions {
                log_action(action, cell.as_deref(), self.free_slots);
            }
        }
        #[cfg(feature = "metrics")]
        for (cell, old, new, init) in &self.metrics {
            export_shard(cell, old, new, *init);
        }
        #[cfg(feature = "metrics")]
        for (cell, outcome, ms, n) in &self.samples {
            export_sample(cell, *outcome, *ms, *n);
        }
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

/// A shard's cell for a log line written after the lock, by an input that holds only the
/// shard's id (a [`RetryGuard`](crate::RetryGuard)): taken under the lock, and only when logs
/// are compiled in. Without them it is nothing, so such an input writes no reference count.
#[cfg(feature = "tracing")]
pub(crate) type LogCell = Option<Arc<ShardCell>>;
/// A shard's cell for a log line (see the `tracing` build's): nothing without logs.
#[cfg(not(feature = "tracing"))]
pub(crate) type LogCell = ();

/// The cell of `shard` for a log line after the lock (see [`LogCell`]).
#[cfg_attr(not(feature = "tracing"), allow(clippy::unused_unit))]
pub(crate) fn log_cell(cells: &[Arc<ShardCell>], shard: ShardId) -> LogCell {
    #[cfg(feature = "tracing")]
    {
        cells.get(shard.index()).cloned()
    }
    #[cfg(not(feature = "tracing"))]
    {
        let _ = (cells, shard);
    }
}

/// A released request's retry finished, reported by its guard (see [`retry_done`]).
pub(crate) fn guard_retry_done(cell: LogCell, ticket: Ticket) {
    #[cfg(feature = "tracing")]
    if let Some(cell) = cell {
        retry_done(&cell, ticket);
    }
    #[cfg(not(feature = "tracing"))]
    let _ = (cell, ticket);
}

#[cfg(feature = "tracing")]
fn log_action(action: &Action, cell: Option<&ShardCell>, free_slots: usize) {
    use failover_buffer::Metric;

    let (keyspace, shard) = cell.map_or(("?", "?"), |c| (&*c.keyspace, &*c.name));
    match *action {
        Action::Wake { ticket, verdict } => {
            tracing::trace!(?ticket, ?verdict, "wake");
        }
        Action::FailoverStarted { cause, .. } => {
            tracing::info!(
                keyspace,
                shard,
                ?cause,
                "failover started: buffering requests"
            );
        }
        Action::StartDrain { queued, .. } => {
            tracing::info!(keyspace, shard, queued, "draining buffered requests");
        }
        Action::Metric(Metric::BufferingStopped {
            reason,
            duration,
            in_flight_max,
            utilization_percent,
            ..
        }) => {
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
        Action::DrainPaused { queued, .. } => {
            tracing::info!(
                keyspace,
                shard,
                queued,
                "drain paused: a released request met the failover again; buffering"
            );
        }
        Action::Metric(Metric::DrainFinished { duration, .. }) => {
            tracing::info!(keyspace, shard, ?duration, "drain finished");
        }
        Action::PauseStarted { until, .. } => {
            tracing::info!(
                keyspace,
                shard,
                until_ns = until.as_nanos(),
                "operator pause: holding every request"
            );
        }
        Action::PauseEnded { reason, queued, .. } => {
            tracing::info!(keyspace, shard, %reason, queued, "operator pause ended");
        }
        Action::Closed => {
            tracing::info!(free_slots, "failover buffer closed");
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

/// Records `n` samples of `ms` milliseconds into a shard's wait-time histogram (labelled by
/// `outcome`) or, for `None`, its failover-duration histogram. A sample is its core bucket's
/// midpoint: within 12.5% of the wait it stands for (see
/// [`Histogram`](failover_buffer::Histogram)).
#[cfg(feature = "metrics")]
fn export_sample(cell: &ShardCell, outcome: Option<&'static str>, ms: f64, n: u64) {
    use metrics::{SharedString, histogram};

    let keyspace = SharedString::from(Arc::clone(&cell.keyspace));
    let shard = SharedString::from(Arc::clone(&cell.name));
    let n = usize::try_from(n).unwrap_or(usize::MAX);
    match outcome {
        Some(outcome) => histogram!(
            WaitHistograms::WAIT_METRIC,
            "keyspace" => keyspace,
            "shard" => shard,
            "outcome" => outcome
        )
        .record_many(ms, n),
        None => {
            histogram!(WaitHistograms::FAILOVER_METRIC, "keyspace" => keyspace, "shard" => shard)
                .record_many(ms, n)
        }
    }
}
