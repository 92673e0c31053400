//! What one run measured: the [`Report`] the engine fills in, and its [`Timeline`].
//!
//! The engine ([`crate::sim`]) writes into a report only through the methods here; the
//! experiments ([`crate::experiment`]) read reports and never run the engine's internals.

use core::time::Duration;

use failover_buffer::{EvictReason, Reason, ShardStats, SkipReason, StopReason, WaitHistograms};
#[cfg(doc)]
use failover_buffer::{Histogram, WaitOutcome};
use serde::Serialize;

use crate::sim::ErrorCause;

/// What one run measured: what the application saw, and the buffer's own counters summed
/// over shards. Durations are in nanoseconds (`*_ns`) so that JSON stays exact.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Requests that arrived.
    pub requests: u64,
    /// Requests that succeeded.
    pub ok: u64,
    /// Requests that failed, by cause.
    pub errors: Errors,
    /// Requests that saw a failover error on some attempt or were held, whatever the end.
    pub affected: u64,
    /// Attempts sent to a primary (first attempts and retries).
    pub attempts: u64,
    /// Latency added to successful requests: end minus arrival minus their service time.
    pub added_latency: Latency,
    /// How long held requests waited in the buffer until their verdict, by outcome, from
    /// the core's wait histograms merged over every router and shard; outcomes with no
    /// sample are left out (and the JSON field while none has one).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub waits: Vec<Wait>,
    /// The buffer's counters, summed over shards.
    pub buffer: BufferCounters,
    /// The most slots one router held at once (queued plus released retries not yet
    /// done).
    pub peak_slots: u64,
    /// The most bytes of queued requests one router held at once, from a trace's `size`
    /// column; not in the JSON while 0.
    #[serde(skip_serializing_if = "is_zero")]
    pub peak_held_bytes: u64,
    /// The longest drain: from the end of buffering to the end of the last released retry.
    pub drain_time_ns: u64,
    /// When the last event happened.
    pub simulated_ns: u64,
    /// Events processed.
    pub events: u64,
    /// The run over time, in 100 ms buckets (not in the JSON output: it grows with the run).
    #[serde(skip)]
    pub timeline: Timeline,
    /// What the scenario's `[shutdown]` did; not in the JSON without one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shutdown: Option<ShutdownOutcome>,
    /// What the scenario's `[[pause]]` tables did; not in the JSON without one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pause: Option<PauseOutcome>,
}

/// What a scenario's operator pauses did, over every router and shard. What clients saw of
/// them is in the rest of the report (held requests are `buffered`, then `drained` or
/// evicted as in a failover).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PauseOutcome {
    /// Shards paused (or paused again), summed over routers.
    pub started: u64,
    /// Pauses ended by the scenario's `resume`.
    pub resumed: u64,
    /// Pauses that ran to their `max` and ended by themselves.
    pub expired: u64,
    /// Pauses ended by a shutdown.
    pub ended_by_shutdown: u64,
    /// `pause` calls a router's buffer refused (buffering disabled or dry-run, `max` above
    /// `max_pause`, a shutdown under way): nothing was held for them.
    pub refused: u64,
}

/// What a scenario's shutdown did, over every router. What clients saw of it is in the rest
/// of the report: a cancelled shutdown loses nothing, so `requests == ok + errors.total`
/// with no error it caused.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ShutdownOutcome {
    /// When the buffers' shutdown began.
    pub begun_ns: Option<u64>,
    /// When it was called off, if it was (before any buffer closed).
    pub cancelled_ns: Option<u64>,
    /// Requests held (queued) across all routers when the shutdown was called off: kept,
    /// in order, and released later as usual.
    pub kept_by_cancel: u64,
    /// Routers whose buffer refused the cancel because it had closed already.
    pub cancel_refused: u64,
    /// Routers whose buffer closed.
    pub routers_closed: u64,
    /// When the last of them closed.
    pub closed_ns: Option<u64>,
}

/// Errors the application saw, by cause (see [`ErrorCause`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Errors {
    /// All of them.
    pub total: u64,
    /// [`ErrorCause::Failover`].
    pub failover: u64,
    /// [`ErrorCause::Timeout`].
    pub timeout: u64,
    /// [`ErrorCause::BufferFull`].
    pub buffer_full: u64,
    /// [`ErrorCause::Evicted`].
    pub evicted: u64,
    /// [`ErrorCause::ShardMissing`].
    pub shard_missing: u64,
    /// [`ErrorCause::Other`]; not in the JSON while 0.
    #[serde(skip_serializing_if = "is_zero")]
    pub other: u64,
    /// [`ErrorCause::Uncertain`]; not in the JSON while 0.
    #[serde(skip_serializing_if = "is_zero")]
    pub uncertain: u64,
}

impl Errors {
    pub(crate) fn add(&mut self, cause: ErrorCause) {
        self.total += 1;
        *match cause {
            ErrorCause::Failover => &mut self.failover,
            ErrorCause::Timeout => &mut self.timeout,
            ErrorCause::BufferFull => &mut self.buffer_full,
            ErrorCause::Evicted => &mut self.evicted,
            ErrorCause::ShardMissing => &mut self.shard_missing,
            ErrorCause::Other => &mut self.other,
            ErrorCause::Uncertain => &mut self.uncertain,
        } += 1;
    }
}

/// Nearest-rank percentiles of the added latency of successful requests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Latency {
    /// Median.
    pub p50_ns: u64,
    /// 99th percentile.
    pub p99_ns: u64,
    /// Maximum.
    pub max_ns: u64,
}

/// The waits of held requests that ended one way ([`WaitOutcome`]), from the core's
/// histograms: the count and maximum are exact, the percentiles the estimates of
/// [`Histogram::quantile`] (never below the true value, at most 25% above it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Wait {
    /// The outcome's label (`Retried`, `Window`, `Evicted`, `Cancelled`, `ShardMissing`).
    pub outcome: &'static str,
    /// Requests whose wait ended so.
    pub count: u64,
    /// Median wait.
    pub p50_ns: u64,
    /// 99th-percentile wait.
    pub p99_ns: u64,
    /// Longest wait.
    pub max_ns: u64,
}

impl Wait {
    /// The figures of every outcome with a sample in `waits`, in [`WaitOutcome`] order.
    pub(crate) fn of(waits: &WaitHistograms) -> Vec<Wait> {
        let ns =
            |d: Option<Duration>| d.map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        waits
            .waits()
            .filter(|(_, h)| !h.is_empty())
            .map(|(outcome, h)| Wait {
                outcome: outcome.as_str(),
                count: h.count(),
                p50_ns: ns(h.quantile(0.5)),
                p99_ns: ns(h.quantile(0.99)),
                max_ns: ns(h.max()),
            })
            .collect()
    }
}

/// The buffer's counters ([`ShardStats`]) summed over shards, with Vitess's names.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct BufferCounters {
    /// Episodes started (`BufferStarts`).
    pub starts: u64,
    /// Episodes stopped, by reason (`BufferStops`).
    pub stops: Stops,
    /// Requests queued (`BufferRequestsBuffered`).
    pub buffered: u64,
    /// Requests released by a drain (`BufferRequestsDrained`).
    pub drained: u64,
    /// Requests that left the queue early, by reason (`BufferRequestsEvicted`).
    pub evicted: Evicted,
    /// Failover requests not held, by reason (`BufferRequestsSkipped`).
    pub skipped: Skipped,
    /// Drains called off by a retry failing again early in an episode.
    pub drains_paused: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Stops by reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[allow(non_snake_case, missing_docs)]
pub struct Stops {
    pub NewPrimarySeen: u64,
    pub MaxDurationExceeded: u64,
    pub ReshardingComplete: u64,
    pub MoveTablesSwitchedTraffic: u64,
    pub Shutdown: u64,
    /// A reason this simulator does not know yet (a newer core); not in the JSON while 0.
    #[serde(skip_serializing_if = "is_zero")]
    pub other: u64,
}

/// Evictions by reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[allow(non_snake_case, missing_docs)]
pub struct Evicted {
    pub ContextDone: u64,
    pub BufferFull: u64,
    pub WindowExceeded: u64,
    /// A reason this simulator does not know yet (a newer core); not in the JSON while 0.
    #[serde(skip_serializing_if = "is_zero")]
    pub other: u64,
}

/// Skips by reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[allow(non_snake_case, missing_docs)]
pub struct Skipped {
    pub BufferFull: u64,
    pub Disabled: u64,
    pub Shutdown: u64,
    pub LastReparentTooRecent: u64,
    pub LastFailoverTooRecent: u64,
    /// A reason this simulator does not know yet (a newer core); not in the JSON while 0.
    #[serde(skip_serializing_if = "is_zero")]
    pub other: u64,
}

impl BufferCounters {
    #[allow(
        unreachable_patterns,
        reason = "the core's enums become #[non_exhaustive]; until then the wildcard is unreachable"
    )]
    pub(crate) fn add(&mut self, s: &ShardStats) {
        self.starts += s.starts;
        self.buffered += s.buffered;
        self.drained += s.drained;
        self.drains_paused += s.drains_paused;
        for (reason, n) in s.stops.iter() {
            *match reason {
                StopReason::NewPrimarySeen => &mut self.stops.NewPrimarySeen,
                StopReason::MaxDurationExceeded => &mut self.stops.MaxDurationExceeded,
                StopReason::ReshardingComplete => &mut self.stops.ReshardingComplete,
                StopReason::MoveTablesSwitchedTraffic => &mut self.stops.MoveTablesSwitchedTraffic,
                StopReason::Shutdown => &mut self.stops.Shutdown,
                _ => &mut self.stops.other,
            } += n;
        }
        for (reason, n) in s.evicted.iter() {
            *match reason {
                EvictReason::ContextDone => &mut self.evicted.ContextDone,
                EvictReason::BufferFull => &mut self.evicted.BufferFull,
                EvictReason::WindowExceeded => &mut self.evicted.WindowExceeded,
                _ => &mut self.evicted.other,
            } += n;
        }
        for (reason, n) in s.skipped.iter() {
            *match reason {
                SkipReason::BufferFull => &mut self.skipped.BufferFull,
                SkipReason::Disabled => &mut self.skipped.Disabled,
                SkipReason::Shutdown => &mut self.skipped.Shutdown,
                SkipReason::LastReparentTooRecent => &mut self.skipped.LastReparentTooRecent,
                SkipReason::LastFailoverTooRecent => &mut self.skipped.LastFailoverTooRecent,
                _ => &mut self.skipped.other,
            } += n;
        }
    }
}

/// A run over time, in buckets of [`TIMELINE_BUCKET`](crate::TIMELINE_BUCKET) (100 ms):
/// bucket `i` covers `[i × 100 ms, (i + 1) × 100 ms)`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Timeline {
    /// The deepest the buffers' queues were (all shards, all routers) during the bucket.
    pub queued_max: Vec<u32>,
    /// Errors the application saw in the bucket.
    pub errors: Vec<u32>,
    /// Requests the buffer released to retry in the bucket.
    pub released: Vec<u32>,
    /// The queue depth now, carried into new buckets.
    pub(crate) depth: u32,
    /// Instants to mark on the plot, with a label: the phases of a scenario's shutdown.
    pub marks: Vec<(u64, &'static str)>,
}

/// The width of a [`Timeline`]'s buckets in nanoseconds.
const BUCKET: u64 = 100_000_000;

/// The bucket width of a [`Timeline`].
pub const TIMELINE_BUCKET: Duration = Duration::from_nanos(BUCKET);

impl Timeline {
    fn slot(&mut self, now: u64) -> usize {
        let i = (now / BUCKET) as usize;
        if i >= self.errors.len() {
            let depth = self.depth;
            self.queued_max.resize(i + 1, depth);
            self.errors.resize(i + 1, 0);
            self.released.resize(i + 1, 0);
        }
        i
    }

    /// The queues now hold `depth` requests in all (at `now`, in nanoseconds).
    pub(crate) fn queued(&mut self, now: u64, depth: usize) {
        let depth = depth as u32;
        self.depth = depth;
        let i = self.slot(now);
        self.queued_max[i] = self.queued_max[i].max(depth);
    }

    /// A request was released to retry.
    pub(crate) fn released(&mut self, now: u64) {
        let i = self.slot(now);
        self.released[i] += 1;
    }

    /// The application saw an error.
    pub(crate) fn error(&mut self, now: u64) {
        let i = self.slot(now);
        self.errors[i] += 1;
    }

    /// The run ended at `now`: the timeline reaches it.
    pub(crate) fn finish(&mut self, now: u64) {
        self.slot(now);
    }
}

impl Report {
    /// The longest drain as a `Duration`.
    pub fn drain_time(&self) -> Duration {
        Duration::from_nanos(self.drain_time_ns)
    }
}
