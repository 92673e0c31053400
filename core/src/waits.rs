//! A shard's distributions: how long its held requests waited, by outcome, and how long its
//! failovers lasted.

use core::time::Duration;

use crate::histogram::{Bucket, Histogram};
use crate::queue::ReleaseReason;
use crate::stats::{Reason, StopReason, WaitOutcome};

/// One shard's wait-time and failover-duration histograms (see [`Histogram`] for the
/// buckets and the error bound), read with
/// [`Buffer::wait_histograms`](crate::Buffer::wait_histograms).
///
/// * **Waits**: every held request adds one sample, when it leaves its shard's queue (its
///   verdict: an [`Action::Wake`](crate::Action::Wake), or its cancel), of the time from
///   when it was queued, labelled by its [`WaitOutcome`]. A request a drain's back-off
///   queued again (`retry_failed`) has had its verdict; its second wait is a second sample,
///   measured from when it was queued again. So the waits' count is always the shard's
///   `drained` plus its `evicted` counters ([`ShardStats`](crate::ShardStats)), and the
///   `Evicted` count its evicted `BufferFull`.
/// * **Failovers**: every episode adds one sample when it first stops, of its duration from
///   its start (what [`ShardStats::last_failover_duration`](crate::ShardStats::last_failover_duration)
///   shows for the last one), so its count is the shard's `stops` total.
///
/// Kept out of line with the shard's counters, allocated when the shard first needs them
/// (its first episode), so a shard that never failed over costs none of its 2 KB.
///
/// ```
/// use failover_buffer::{Admission, Buffer, Config, FailoverCause, HealthStamp, PrimaryId, Timestamp, WaitOutcome};
/// use core::time::Duration;
///
/// let mut buffer = Buffer::new(Config { enabled: true, ..Config::default() })?;
/// let shard = buffer.register_shard("commerce", "0");
/// let serving = |term| HealthStamp { primary: PrimaryId(term), term, serving: true };
/// buffer.health(Timestamp::ZERO, shard, serving(1))?;
/// let Admission::Wait(ticket) = buffer.request(Timestamp::from_millis(1_000), shard, Some(FailoverCause::Reparent))? else {
///     unreachable!()
/// };
/// // The new primary serves 3 s later: the request is released to retry.
/// buffer.health(Timestamp::from_millis(4_000), shard, serving(2))?;
/// let waits = buffer.wait_histograms(shard).unwrap();
/// let retried = waits.wait(WaitOutcome::Retried);
/// assert_eq!((retried.count(), retried.max()), (1, Some(Duration::from_secs(3))));
/// assert_eq!(waits.failovers().max(), Some(Duration::from_secs(3)));
/// # buffer.retry_done(Timestamp::from_millis(4_000), ticket)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WaitHistograms {
    waits: [Histogram; WaitOutcome::ALL.len()],
    failovers: Histogram,
}

/// Samples one bucket of a shard's histograms gained between two readings
/// ([`WaitHistograms::since`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WaitDelta {
    /// The wait's outcome, or `None` for the failover-duration histogram.
    pub outcome: Option<WaitOutcome>,
    /// The bucket (its `count` is the newer reading's).
    pub bucket: Bucket,
    /// Samples added to it since the earlier reading.
    pub added: u64,
}

impl WaitHistograms {
    /// The `metrics` name the adapters export waits under, labelled `keyspace`, `shard` and
    /// `outcome` (a [`WaitOutcome`] label), in milliseconds.
    pub const WAIT_METRIC: &'static str = "failover_buffer_requests_wait_ms";
    /// The `metrics` name the adapters export failover durations under, labelled `keyspace`
    /// and `shard`, in milliseconds.
    pub const FAILOVER_METRIC: &'static str = "failover_buffer_failover_duration_ms";

    /// What was recorded since `earlier`, an earlier reading of the same shard's histograms,
    /// bucket by bucket: how an exporter that records samples (a `metrics` histogram) sends
    /// a snapshot's news, each bucket's samples as its [`Bucket::midpoint`]. Histograms
    /// whose count did not change are skipped without a look at their buckets.
    pub fn since<'a>(
        &'a self,
        earlier: &'a WaitHistograms,
    ) -> impl Iterator<Item = WaitDelta> + 'a {
        let pairs = self
            .waits
            .iter()
            .zip(earlier.waits.iter())
            .zip(WaitOutcome::ALL.iter().map(|&o| Some(o)))
            .chain(core::iter::once((
                (&self.failovers, &earlier.failovers),
                None,
            )));
        pairs
            .filter(|((now, then), _)| now.count() != then.count())
            .flat_map(|((now, then), outcome)| {
                now.buckets()
                    .zip(then.buckets())
                    .filter(|(b, e)| b.count != e.count)
                    .map(move |(bucket, e)| WaitDelta {
                        outcome,
                        bucket,
                        added: bucket.count.saturating_sub(e.count),
                    })
            })
    }

    /// No samples.
    pub(crate) const EMPTY: WaitHistograms = WaitHistograms {
        waits: [const { Histogram::new() }; WaitOutcome::ALL.len()],
        failovers: Histogram::new(),
    };

    /// The waits that ended with `outcome`.
    pub fn wait(&self, outcome: WaitOutcome) -> &Histogram {
        &self.waits[outcome.index()]
    }

    /// Every outcome with its waits, in [`WaitOutcome`] order (empty ones included).
    pub fn waits(&self) -> impl Iterator<Item = (WaitOutcome, &Histogram)> + '_ {
        WaitOutcome::ALL
            .iter()
            .map(|&o| (o, &self.waits[o.index()]))
    }

    /// Every wait, whatever its outcome, in one histogram.
    pub fn all_waits(&self) -> Histogram {
        let mut all = Histogram::new();
        for h in &self.waits {
            all.merge(h);
        }
        all
    }

    /// How long this shard's failovers lasted, start to first stop.
    pub fn failovers(&self) -> &Histogram {
        &self.failovers
    }

    /// Samples over every outcome.
    pub fn wait_count(&self) -> u64 {
        self.waits.iter().map(Histogram::count).sum()
    }

    /// Adds every sample of `other`, outcome by outcome (e.g. to sum a keyspace's shards).
    pub fn merge(&mut self, other: &WaitHistograms) {
        for (mine, theirs) in self.waits.iter_mut().zip(other.waits.iter()) {
            mine.merge(theirs);
        }
        self.failovers.merge(&other.failovers);
    }

    pub(crate) fn record_wait(&mut self, outcome: WaitOutcome, nanos: u64) {
        self.waits[outcome.index()].record_nanos(nanos);
    }

    pub(crate) fn record_failover(&mut self, duration: Duration) {
        self.failovers.record(duration);
    }
}

impl Default for WaitHistograms {
    fn default() -> Self {
        WaitHistograms::EMPTY
    }
}

impl WaitOutcome {
    /// The outcome of a request released to retry for `reason`.
    pub(crate) fn of_release(reason: ReleaseReason) -> WaitOutcome {
        match reason {
            ReleaseReason::Window | ReleaseReason::Drain(StopReason::MaxDurationExceeded) => {
                WaitOutcome::Window
            }
            ReleaseReason::Drain(_) | ReleaseReason::PauseEnded => WaitOutcome::Retried,
        }
    }
}
