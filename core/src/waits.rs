//! A shard's distributions: how long its held requests waited, by outcome, and how long its
//! failovers lasted.

use core::fmt;
use core::time::Duration;

use alloc::boxed::Box;

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
/// (its first episode or pause), so a shard that never failed over costs none of it. The
/// `Retried` and failover-duration histograms (360 B each) are part of that block: every
/// episode records a failover, and nearly every wait ends `Retried`. Each other outcome's
/// histogram (`Window`, `Evicted`, `Cancelled`, `ShardMissing`) is allocated at the shard's
/// first sample of that outcome, once (one allocation of 360 B, on that sample's input: a
/// tick releasing at the window, a drain `max_failover_duration` started, an eviction, a
/// cancel, or the drain of a shard resharded away; recording is allocation-free from then
/// on), so a shard whose waits all ended `Retried` holds two histograms, not six, and the
/// drain after a failover that ended allocates nothing. Reading an outcome never sampled
/// gives an empty histogram; nothing observable depends on whether it was allocated.
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
pub struct WaitHistograms {
    /// The waits that ended [`WaitOutcome::Retried`], inline.
    retried: Histogram,
    /// Every other outcome's waits, by [`WaitOutcome::index`] less one: `None` until that
    /// outcome's first sample (so an allocated histogram is never empty).
    others: [Option<Box<Histogram>>; WaitOutcome::ALL.len() - 1],
    failovers: Histogram,
}

// `others` is indexed by an outcome's index less one: `Retried` must come first.
const _: () = assert!(WaitOutcome::Retried as usize == 0);

/// What an outcome never sampled reads as.
static NO_WAITS: Histogram = Histogram::new();

impl Clone for WaitHistograms {
    fn clone(&self) -> Self {
        WaitHistograms {
            retried: self.retried.clone(),
            others: self.others.clone(),
            failovers: self.failovers.clone(),
        }
    }

    /// Reuses the outcomes' histograms already allocated here (the adapters keep a copy
    /// per shard and refresh it after each input that added samples): it allocates only
    /// for an outcome `source` has and this copy did not.
    fn clone_from(&mut self, source: &Self) {
        self.retried.clone_from(&source.retried);
        for (mine, theirs) in self.others.iter_mut().zip(source.others.iter()) {
            match (mine.as_deref_mut(), theirs) {
                (Some(mine), Some(theirs)) => mine.clone_from(theirs),
                (_, theirs) => mine.clone_from(theirs),
            }
        }
        self.failovers.clone_from(&source.failovers);
    }
}

impl PartialEq for WaitHistograms {
    /// Equal when every outcome's waits and the failovers are, whether or not an outcome
    /// never sampled has its histogram allocated.
    fn eq(&self, other: &Self) -> bool {
        self.waits()
            .zip(other.waits())
            .all(|((_, a), (_, b))| a == b)
            && self.failovers == other.failovers
    }
}

impl Eq for WaitHistograms {}

impl fmt::Debug for WaitHistograms {
    /// Every outcome's histogram (empty ones included) in [`WaitOutcome`] order, and the
    /// failovers.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let waits: [&Histogram; WaitOutcome::ALL.len()] =
            core::array::from_fn(|i| self.wait(WaitOutcome::ALL[i]));
        f.debug_struct("WaitHistograms")
            .field("waits", &waits)
            .field("failovers", &self.failovers)
            .finish()
    }
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
        let pairs = WaitOutcome::ALL
            .iter()
            .map(|&o| ((self.wait(o), earlier.wait(o)), Some(o)))
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
        retried: Histogram::new(),
        others: [const { None }; WaitOutcome::ALL.len() - 1],
        failovers: Histogram::new(),
    };

    /// The waits that ended with `outcome`.
    pub fn wait(&self, outcome: WaitOutcome) -> &Histogram {
        match outcome.index().checked_sub(1) {
            None => &self.retried,
            Some(i) => self.others[i].as_deref().unwrap_or(&NO_WAITS),
        }
    }

    /// The histogram `outcome`'s samples go to, allocated at its first.
    fn wait_mut(&mut self, outcome: WaitOutcome) -> &mut Histogram {
        match outcome.index().checked_sub(1) {
            None => &mut self.retried,
            Some(i) => self.others[i].get_or_insert_with(|| Box::new(Histogram::new())),
        }
    }

    /// Every outcome with its waits, in [`WaitOutcome`] order (empty ones included).
    pub fn waits(&self) -> impl Iterator<Item = (WaitOutcome, &Histogram)> + '_ {
        WaitOutcome::ALL.iter().map(|&o| (o, self.wait(o)))
    }

    /// Every wait, whatever its outcome, in one histogram.
    pub fn all_waits(&self) -> Histogram {
        let mut all = Histogram::new();
        for (_, h) in self.waits() {
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
        self.waits().map(|(_, h)| h.count()).sum()
    }

    /// Adds every sample of `other`, outcome by outcome (e.g. to sum a keyspace's shards).
    /// Allocates only for an outcome `other` has samples of and this does not.
    pub fn merge(&mut self, other: &WaitHistograms) {
        for &outcome in WaitOutcome::ALL {
            let theirs = other.wait(outcome);
            if !theirs.is_empty() {
                self.wait_mut(outcome).merge(theirs);
            }
        }
        self.failovers.merge(&other.failovers);
    }

    /// Counts one wait. O(1); allocates only at the shard's first sample of an outcome other
    /// than `Retried` (see the type's docs).
    #[inline]
    pub(crate) fn record_wait(&mut self, outcome: WaitOutcome, nanos: u64) {
        // Nearly every wait ends `Retried` (a drain's release): its histogram is inline.
        match outcome {
            WaitOutcome::Retried => self.retried.record_nanos(nanos),
            _ => self.wait_mut(outcome).record_nanos(nanos),
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn waits(samples: &[(WaitOutcome, u64)]) -> WaitHistograms {
        let mut w = WaitHistograms::EMPTY;
        for &(outcome, ms) in samples {
            w.record_wait(outcome, ms * 1_000_000);
        }
        w
    }

    #[test]
    fn only_retried_and_failovers_are_inline() {
        // Two 360-byte histograms and four pointers, not six histograms (2,160 B).
        assert_eq!(core::mem::size_of::<Histogram>(), 360);
        assert_eq!(core::mem::size_of::<WaitHistograms>(), 2 * 360 + 4 * 8);
    }

    #[test]
    fn an_outcome_never_sampled_reads_as_an_empty_histogram() {
        let w = waits(&[(WaitOutcome::Retried, 5)]);
        assert!(w.others.iter().all(Option::is_none));
        for (outcome, h) in w.waits() {
            let expected = usize::from(outcome == WaitOutcome::Retried);
            assert_eq!(h.count(), expected as u64, "{outcome:?}");
        }
        assert_eq!(w.wait(WaitOutcome::Cancelled), &Histogram::new());
    }

    #[test]
    fn an_outcomes_first_sample_allocates_its_histogram_and_it_counts_like_any() {
        let w = waits(&[(WaitOutcome::Cancelled, 7), (WaitOutcome::Cancelled, 9)]);
        let cancelled = w.wait(WaitOutcome::Cancelled);
        assert_eq!(cancelled.count(), 2);
        assert_eq!(cancelled.max(), Some(Duration::from_millis(9)));
        assert_eq!(w.others.iter().filter(|h| h.is_some()).count(), 1);
        assert_eq!(w.wait_count(), 2);
    }

    #[test]
    fn equality_does_not_see_whether_an_empty_outcome_was_allocated() {
        let mut allocated = waits(&[(WaitOutcome::Retried, 1)]);
        allocated.others[0] = Some(Box::new(Histogram::new()));
        assert_eq!(allocated, waits(&[(WaitOutcome::Retried, 1)]));
        assert_ne!(allocated, waits(&[(WaitOutcome::Window, 1)]));
    }

    #[test]
    fn merge_and_clone_from_keep_every_outcome() {
        let a = waits(&[(WaitOutcome::Retried, 1), (WaitOutcome::Evicted, 2)]);
        let b = waits(&[(WaitOutcome::Window, 3), (WaitOutcome::Evicted, 4)]);
        let both = waits(&[
            (WaitOutcome::Retried, 1),
            (WaitOutcome::Evicted, 2),
            (WaitOutcome::Window, 3),
            (WaitOutcome::Evicted, 4),
        ]);
        let mut merged = a.clone();
        merged.merge(&b);
        assert_eq!(merged, both);
        // Merging what has no samples of an outcome allocates none for it.
        let mut only_retried = waits(&[(WaitOutcome::Retried, 1)]);
        only_retried.merge(&WaitHistograms::EMPTY);
        assert!(only_retried.others.iter().all(Option::is_none));
        // A copy refreshed from a source with more outcomes, and with fewer.
        let mut copy = b.clone();
        copy.clone_from(&both);
        assert_eq!(copy, both);
        copy.clone_from(&only_retried);
        assert_eq!(copy, only_retried);
        assert_eq!(
            alloc::format!("{copy:?}"),
            alloc::format!("{only_retried:?}")
        );
    }
}
