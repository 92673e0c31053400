//! Logs (`tracing` feature) and metrics (`metrics` feature). Without the features every
//! function here is empty and compiles away.
//!
//! Telemetry is user code (a metrics recorder, a tracing subscriber), so none of it runs under
//! the buffer's lock: state changes are copied under the lock (with the shard's names) and
//! logged after it is released; metrics are read under the lock as snapshots of the core's
//! counters and exported after it, as absolute values, so two exports that race cannot lose
//! a count.

#[cfg(feature = "metrics")]
use failover_buffer::ShardStats;
use failover_buffer::{Action, ShardId, Ticket};

use crate::shard::ShardInner;
use crate::state::State;
use crate::sync::Arc;

/// Metrics to export once the lock is released.
#[derive(Debug, Default)]
pub(crate) struct Exports {
    #[cfg(feature = "metrics")]
    touched: Vec<ShardId>,
    #[cfg(feature = "metrics")]
    all: bool,
    #[cfg(feature = "metrics")]
    snapshots: Vec<(Arc<ShardInner>, ShardStats)>,
    /// Histogram samples to record: the shard, the outcome label (`None`: a failover's
    /// duration), the value in milliseconds and how many samples of it.
    #[cfg(feature = "metrics")]
    samples: Vec<(Arc<ShardInner>, Option<&'static str>, f64, u64)>,
    /// State changes to log, with the shard they name, in the core's order.
    #[cfg(feature = "tracing")]
    logs: Vec<Log>,
}

/// A state change or a time-out, copied under the lock to log after it.
#[cfg(feature = "tracing")]
#[derive(Debug)]
enum Log {
    Action(Action, Option<Arc<ShardInner>>),
    TimedOut(Ticket),
}

impl Exports {
    /// The input may have changed `shard`'s counters.
    #[cfg_attr(not(feature = "metrics"), allow(clippy::unused_self))]
    pub(crate) fn touch(&mut self, shard: ShardId) {
        #[cfg(feature = "metrics")]
        self.touched.push(shard);
        #[cfg(not(feature = "metrics"))]
        let _ = shard;
    }

    /// The input may have changed any shard's counters (a tick, a shutdown).
    pub(crate) fn touch_all(&mut self) {
        #[cfg(feature = "metrics")]
        {
            self.all = true;
        }
    }

    /// Reads the touched shards' counters, under the lock.
    pub(crate) fn snapshot(&mut self, st: &State) {
        #[cfg(feature = "metrics")]
        {
            let mut ids = core::mem::take(&mut self.touched);
            if self.all {
                ids = st.core.shards().collect();
            }
            ids.sort_unstable();
            ids.dedup();
            for id in ids {
                if let (Some(shard), Some(stats)) =
                    (st.shards.get(id.index()), st.core.shard_stats(id))
                {
                    self.snapshots.push((shard.clone(), *stats));
                    self.waits(shard, st);
                }
            }
        }
        #[cfg(not(feature = "metrics"))]
        let _ = st;
    }

    /// Takes what a shard's wait histograms gained since their last export, under the lock
    /// (so two racing exports send disjoint samples), to record after it.
    #[cfg(feature = "metrics")]
    fn waits(&mut self, shard: &Arc<ShardInner>, st: &State) {
        let Some(waits) = st.core.wait_histograms(shard.id) else {
            return;
        };
        if waits.wait_count() + waits.failovers().count() == 0 {
            return;
        }
        let mut last = shard
            .exported_waits
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let last = last.get_or_insert_with(Box::default);
        let before = self.samples.len();
        for d in waits.since(last) {
            let ms = d.bucket.midpoint().as_secs_f64() * 1e3;
            let outcome = d.outcome.map(failover_buffer::Reason::as_str);
            self.samples.push((shard.clone(), outcome, ms, d.added));
        }
        // Most inputs (an enqueue, a tick) end no wait: `since` compared six counts, and the
        // 2 KB copy is only made when there was news.
        if self.samples.len() != before {
            (**last).clone_from(waits);
        }
    }

    /// Keeps an action of the core, to log once the lock is released.
    #[cfg_attr(not(feature = "tracing"), allow(clippy::unused_self))]
    pub(crate) fn action(&mut self, shards: &[Arc<ShardInner>], action: &Action) {
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
                ) => shards.get(shard.index()).cloned(),
                // Wake-ups are logged per request, by the caller.
                Action::Wake { .. } => return,
                Action::Closed => None,
                // Other metrics, or an action a newer core added: nothing to log.
                _ => return,
            };
            self.logs.push(Log::Action(*action, shard));
        }
        #[cfg(not(feature = "tracing"))]
        let _ = (shards, action);
    }

    /// A held request's caller gave up at its deadline, to log at TRACE.
    #[cfg_attr(not(feature = "tracing"), allow(clippy::unused_self))]
    pub(crate) fn timed_out(&mut self, ticket: Ticket) {
        #[cfg(feature = "tracing")]
        self.logs.push(Log::TimedOut(ticket));
        #[cfg(not(feature = "tracing"))]
        let _ = ticket;
    }

    /// Logs and exports, outside the lock.
    pub(crate) fn emit(self) {
        #[cfg(feature = "tracing")]
        for log in &self.logs {
            match log {
                Log::Action(action, shard) => log_action(action, shard.as_deref()),
                Log::TimedOut(ticket) => {
                    tracing::trace!(ticket = ticket.id(), "held request timed out");
                }
            }
        }
        #[cfg(feature = "metrics")]
        {
            for (shard, stats) in &self.snapshots {
                export_stats(shard, stats);
            }
            for (shard, outcome, ms, n) in &self.samples {
                export_sample(shard, *outcome, *ms, *n);
            }
        }
    }
}

#[cfg(feature = "tracing")]
fn log_action(action: &Action, shard: Option<&ShardInner>) {
    use failover_buffer::Metric;

    let (keyspace, shard) = shard.map_or(("?", "?"), |s| (&*s.keyspace, &*s.name));
    match *action {
        Action::Wake { .. } => {}
        Action::FailoverStarted { cause, .. } => {
            tracing::info!(
                keyspace,
                shard,
                ?cause,
                "failover detected: buffering requests"
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
                "failover buffering stopped"
            );
        }
        Action::DrainPaused { queued, .. } => {
            tracing::info!(
                keyspace,
                shard,
                queued,
                "drain paused: a released request failed over again; buffering"
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
        Action::Closed => tracing::info!("failover buffer closed"),
        _ => {}
    }
}

/// Exports a shard's counters under the core's names ([`ShardStats::samples`]: Vitess's, so
/// `BufferRequestsEvicted` is `failover_buffer_requests_evicted`), labelled `keyspace`,
/// `shard` and, where split by reason, `reason`.
#[cfg(feature = "metrics")]
fn export_stats(shard: &ShardInner, s: &ShardStats) {
    use failover_buffer::SampleKind;

    for sample in s.samples() {
        let (name, ks, sh) = (sample.name, shard.keyspace.clone(), shard.name.clone());
        match (sample.kind, sample.reason) {
            (SampleKind::Counter, None) => {
                metrics::counter!(name, "keyspace" => ks, "shard" => sh).absolute(sample.value)
            }
            (SampleKind::Counter, Some(reason)) => {
                metrics::counter!(name, "keyspace" => ks, "shard" => sh, "reason" => reason)
                    .absolute(sample.value)
            }
            // Gauges describe the current or last episode (a kind added later is set too).
            _ => metrics::gauge!(name, "keyspace" => ks, "shard" => sh).set(sample.value as f64),
        }
    }
}

/// What a request was told, per request.
pub(crate) fn request(shard: ShardId, what: &'static str) {
    #[cfg(feature = "tracing")]
    tracing::trace!(shard = shard.index(), what, "failover buffer request");
    let _ = (shard, what);
}

/// Records `n` samples of `ms` milliseconds into a shard's wait-time histogram (labelled by
/// `outcome`) or, for `None`, its failover-duration histogram. A sample is its core bucket's
/// midpoint: within 12.5% of the wait it stands for (see
/// [`Histogram`](failover_buffer::Histogram)).
#[cfg(feature = "metrics")]
fn export_sample(shard: &ShardInner, outcome: Option<&'static str>, ms: f64, n: u64) {
    use failover_buffer::WaitHistograms;
    use metrics::{SharedString, histogram};

    let keyspace = SharedString::from(Arc::clone(&shard.keyspace));
    let name = SharedString::from(Arc::clone(&shard.name));
    let n = usize::try_from(n).unwrap_or(usize::MAX);
    match outcome {
        Some(outcome) => histogram!(
            WaitHistograms::WAIT_METRIC,
            "keyspace" => keyspace,
            "shard" => name,
            "outcome" => outcome
        )
        .record_many(ms, n),
        None => {
            histogram!(WaitHistograms::FAILOVER_METRIC, "keyspace" => keyspace, "shard" => name)
                .record_many(ms, n)
        }
    }
}
