//! Logs (`tracing` feature) and metrics (`metrics` feature). Without the features every
//! function here is empty and compiles away.
//!
//! Logs of state changes are written under the buffer's lock, where the change is seen;
//! they are rare (a few per failover). Metrics are read under the lock as snapshots of the
//! core's counters and exported after it is released, as absolute values, so two exports
//! that race cannot lose a count.

#[cfg(feature = "metrics")]
use std::sync::Arc;

#[cfg(feature = "metrics")]
use failover_buffer::ShardStats;
use failover_buffer::{FailoverCause, Metric, ShardId, Ticket};

use crate::shard::ShardInner;
use crate::state::State;

/// Metrics to export once the lock is released.
#[derive(Debug, Default)]
pub(crate) struct Exports {
    #[cfg(feature = "metrics")]
    touched: Vec<ShardId>,
    #[cfg(feature = "metrics")]
    all: bool,
    #[cfg(feature = "metrics")]
    snapshots: Vec<(Arc<ShardInner>, ShardStats)>,
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
                }
            }
        }
        #[cfg(not(feature = "metrics"))]
        let _ = st;
    }

    /// Exports, outside the lock.
    pub(crate) fn emit(self) {
        #[cfg(feature = "metrics")]
        {
            for (shard, stats) in &self.snapshots {
                export_stats(shard, stats);
            }
        }
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

/// An episode-level event from the core.
pub(crate) fn metric(shards: &[std::sync::Arc<ShardInner>], metric: Metric) {
    let shard_of = |id: ShardId| &shards[id.index()];
    match metric {
        Metric::BufferingStopped {
            shard,
            reason,
            duration,
            in_flight_max,
            utilization_percent,
        } => {
            let s = shard_of(shard);
            #[cfg(feature = "tracing")]
            tracing::info!(
                keyspace = &*s.keyspace,
                shard = &*s.name,
                %reason,
                ?duration,
                in_flight_max,
                utilization_percent,
                "failover buffering stopped"
            );
            let _ = (s, reason, duration, in_flight_max, utilization_percent);
        }
        Metric::DrainFinished { shard, duration } => {
            let s = shard_of(shard);
            #[cfg(feature = "tracing")]
            tracing::info!(
                keyspace = &*s.keyspace,
                shard = &*s.name,
                ?duration,
                "drain finished"
            );
            let _ = (s, duration);
        }
        _ => {}
    }
}

/// A shard's drain was called off: it buffers again.
pub(crate) fn drain_paused(shard: &ShardInner, queued: usize) {
    #[cfg(feature = "tracing")]
    tracing::info!(
        keyspace = &*shard.keyspace,
        shard = &*shard.name,
        queued,
        "drain paused: a released request failed over again; buffering"
    );
    let _ = (shard, queued);
}

/// A shard started buffering.
pub(crate) fn failover_started(shard: &ShardInner, cause: FailoverCause) {
    #[cfg(feature = "tracing")]
    tracing::info!(
        keyspace = &*shard.keyspace,
        shard = &*shard.name,
        ?cause,
        "failover detected: buffering requests"
    );
    let _ = (shard, cause);
}

/// A shard started (or resumed) releasing its queue.
pub(crate) fn drain_started(shard: &ShardInner, queued: usize) {
    #[cfg(feature = "tracing")]
    tracing::info!(
        keyspace = &*shard.keyspace,
        shard = &*shard.name,
        queued,
        "draining buffered requests"
    );
    let _ = (shard, queued);
}

/// Shutdown finished.
pub(crate) fn closed() {
    #[cfg(feature = "tracing")]
    tracing::info!("failover buffer closed");
}

/// A held request's caller gave up at its deadline.
pub(crate) fn timed_out(ticket: Ticket) {
    #[cfg(feature = "tracing")]
    tracing::trace!(ticket = ticket.id(), "held request timed out");
    let _ = ticket;
}

/// What a request was told, per request.
pub(crate) fn request(shard: ShardId, what: &'static str) {
    #[cfg(feature = "tracing")]
    tracing::trace!(shard = shard.index(), what, "failover buffer request");
    let _ = (shard, what);
}
