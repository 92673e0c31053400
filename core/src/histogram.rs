//! A fixed log-linear histogram of durations, for how long requests waited and how long
//! failovers lasted.
//!
//! # Layout
//!
//! 82 buckets, the same for every histogram (so any two merge bucket by bucket):
//!
//! * bucket 0, the underflow: below 100 µs;
//! * buckets 1 to 80: twenty octaves from 100 µs to 104.8576 s (100 µs × 2²⁰), each split
//!   into four equal parts. Octave `o` (0 to 19) covers `[100 µs × 2ᵒ, 100 µs × 2ᵒ⁺¹)`, and
//!   its part `s` (0 to 3) is `[(4 + s), (5 + s))` × 25 µs × 2ᵒ; bucket `1 + 4o + s`.
//!   So 100–125 µs, 125–150 µs, 150–175 µs, 175–200 µs, 200–250 µs, …, 83.9–104.9 s;
//! * bucket 81, the overflow: 104.8576 s and above.
//!
//! Lower bounds are inclusive, upper bounds exclusive. A sample's bucket is computed, not
//! searched for: one division by 25 µs, one leading-zero count and a shift, so
//! [`record`](Histogram::record) is O(1) and allocates nothing.
//!
//! # Error bound
//!
//! Within the 100 µs – 104.9 s range a bucket's upper bound is at most 1.25 times its lower
//! bound, so [`quantile`](Histogram::quantile), which answers with the upper bound of the
//! bucket holding the sample of that rank (clamped to the largest sample), is never below
//! the true value and at most 25% above it. Below 100 µs it answers at most 100 µs; above
//! the range, the largest sample, which is kept exactly, as are the smallest, the count and
//! the sum.
//!
//! Bucket counts are `u32` (saturating at 4,294,967,295 samples in one bucket, which keeps
//! the histogram at 360 bytes); [`count`](Histogram::count) and the sum are `u64` and exact
//! (the sum saturates at 584 years).

use core::fmt;
use core::time::Duration;

use crate::time::duration_nanos;

/// Parts per octave, as a power of two.
const SUB_BITS: u32 = 2;
/// Parts per octave.
const SUB: u64 = 1 << SUB_BITS;
/// Octaves between the underflow and the overflow.
const OCTAVES: u32 = 20;
/// The lowest bound of the log-linear range, in nanoseconds: 100 µs.
const BASE_NANOS: u64 = 100_000;
/// The width of the first octave's parts: 25 µs.
const UNIT_NANOS: u64 = BASE_NANOS / SUB;
/// Every bucket: underflow, the octaves' parts, overflow.
const BUCKETS: usize = 2 + (OCTAVES as usize) * (SUB as usize);
/// The overflow bucket's index.
const OVERFLOW: usize = BUCKETS - 1;

/// A fixed log-linear histogram of durations from 100 µs to 104.9 s, plus an underflow and
/// an overflow bucket (see the [module docs](self) for the layout and the error bound).
///
/// Recording is O(1), with no allocation; two histograms merge exactly; the count, sum,
/// smallest and largest samples are exact.
///
/// ```
/// use core::time::Duration;
/// use failover_buffer::Histogram;
///
/// let mut waits = Histogram::new();
/// for ms in [2, 3, 5, 8, 13, 21, 34, 55, 89, 144] {
///     waits.record(Duration::from_millis(ms));
/// }
/// assert_eq!(waits.count(), 10);
/// assert_eq!(waits.max(), Some(Duration::from_millis(144)));
/// // The median is 13 ms; the estimate is never below it and at most 25% above.
/// let median = waits.quantile(0.5).unwrap();
/// assert!(median >= Duration::from_millis(13) && median <= Duration::from_micros(16_250));
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Histogram {
    buckets: [u32; BUCKETS],
    count: u64,
    sum_nanos: u64,
    /// `u64::MAX` while empty.
    min_nanos: u64,
    max_nanos: u64,
}

/// One bucket of a [`Histogram`], as [`Histogram::buckets`] lists it for exporters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Bucket {
    /// Its position, 0 (underflow) to 81 (overflow): the same bucket in every histogram.
    pub index: usize,
    /// The smallest duration it counts (inclusive).
    pub lower: Duration,
    /// The bound it counts up to (exclusive); `None` for the overflow bucket.
    pub upper: Option<Duration>,
    /// Samples counted in it.
    pub count: u64,
}

impl Bucket {
    /// A value standing for the bucket's samples, for an exporter that records samples
    /// rather than buckets: the middle of the bucket (within 12.5% of any sample in it),
    /// 50 µs for the underflow, and the overflow's lower bound (104.8576 s) for the overflow.
    pub fn midpoint(&self) -> Duration {
        match self.upper {
            Some(upper) => (self.lower + upper) / 2,
            None => self.lower,
        }
    }
}

impl Histogram {
    /// The number of buckets: 82, in every histogram.
    pub const BUCKETS: usize = BUCKETS;

    /// An empty histogram.
    pub const fn new() -> Histogram {
        Histogram {
            buckets: [0; BUCKETS],
            count: 0,
            sum_nanos: 0,
            min_nanos: u64::MAX,
            max_nanos: 0,
        }
    }

    /// The bucket a duration of `nanos` nanoseconds falls in, computed in O(1).
    pub(crate) const fn index_of(nanos: u64) -> usize {
        if nanos < BASE_NANOS {
            return 0;
        }
        // At least SUB: the value in units of the first octave's parts.
        let units = nanos / UNIT_NANOS;
        let octave = (63 - units.leading_zeros()) - SUB_BITS;
        if octave >= OCTAVES {
            return OVERFLOW;
        }
        let part = (units >> octave) - SUB;
        1 + (octave as usize) * (SUB as usize) + part as usize
    }

    /// The inclusive lower bound of bucket `index`, in nanoseconds.
    const fn lower_nanos(index: usize) -> u64 {
        match index {
            0 => 0,
            i if i >= OVERFLOW => BASE_NANOS << OCTAVES,
            i => {
                let octave = (i - 1) as u64 / SUB;
                let part = (i - 1) as u64 % SUB;
                ((SUB + part) << octave) * UNIT_NANOS
            }
        }
    }

    /// Counts one sample. O(1), allocates nothing.
    pub fn record(&mut self, value: Duration) {
        self.record_nanos(duration_nanos(value));
    }

    /// Counts one sample of `nanos` nanoseconds.
    #[inline]
    pub(crate) fn record_nanos(&mut self, nanos: u64) {
        let bucket = &mut self.buckets[Self::index_of(nanos)];
        *bucket = bucket.saturating_add(1);
        self.count += 1;
        self.sum_nanos = self.sum_nanos.saturating_add(nanos);
        self.min_nanos = self.min_nanos.min(nanos);
        self.max_nanos = self.max_nanos.max(nanos);
    }

    /// Adds every sample of `other` to this histogram, as if each had been recorded here.
    pub fn merge(&mut self, other: &Histogram) {
        for (mine, theirs) in self.buckets.iter_mut().zip(other.buckets.iter()) {
            *mine = mine.saturating_add(*theirs);
        }
        self.count = self.count.saturating_add(other.count);
        self.sum_nanos = self.sum_nanos.saturating_add(other.sum_nanos);
        self.min_nanos = self.min_nanos.min(other.min_nanos);
        self.max_nanos = self.max_nanos.max(other.max_nanos);
    }

    /// Samples recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The sum of every sample (saturating at 584 years).
    pub fn sum(&self) -> Duration {
        Duration::from_nanos(self.sum_nanos)
    }

    /// The smallest sample, exactly.
    pub fn min(&self) -> Option<Duration> {
        (self.count > 0).then(|| Duration::from_nanos(self.min_nanos))
    }

    /// The largest sample, exactly.
    pub fn max(&self) -> Option<Duration> {
        (self.count > 0).then(|| Duration::from_nanos(self.max_nanos))
    }

    /// The mean sample, from the exact sum and count.
    pub fn mean(&self) -> Option<Duration> {
        (self.count > 0).then(|| Duration::from_nanos(self.sum_nanos / self.count))
    }

    /// An estimate of the `q`-quantile (`q` in `[0, 1]`, clamped; 0.5 is the median, 0.99
    /// the 99th percentile): the upper bound of the bucket holding the sample of rank
    /// `⌈q · count⌉` (at least 1), clamped to the largest sample. Never below the true
    /// value; at most 25% above it within 100 µs – 104.9 s, at most 100 µs below that range,
    /// and the largest sample above it. `None` when empty or `q` is NaN. O(buckets).
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        if self.count == 0 || q.is_nan() {
            return None;
        }
        let exact = q.clamp(0.0, 1.0) * self.count as f64;
        // ⌈exact⌉ without `f64::ceil`, which needs std.
        let mut rank = exact as u64;
        if (rank as f64) < exact {
            rank += 1;
        }
        let rank = rank.clamp(1, self.count);
        let mut seen = 0u64;
        for (i, &n) in self.buckets.iter().enumerate() {
            seen += u64::from(n);
            if seen >= rank {
                let upper = match i {
                    OVERFLOW => self.max_nanos,
                    _ => Self::lower_nanos(i + 1),
                };
                return Some(Duration::from_nanos(upper.min(self.max_nanos)));
            }
        }
        // Only when a bucket saturated: the largest sample is the safe answer.
        Some(Duration::from_nanos(self.max_nanos))
    }

    /// The count of bucket `index` (0 to 81), or 0 past the last.
    pub fn bucket_count(&self, index: usize) -> u64 {
        self.buckets.get(index).map_or(0, |&n| u64::from(n))
    }

    /// Every bucket, empty ones included, lowest first: always the same 82 bounds, for an
    /// exporter that maps them onto its own buckets, or takes the difference between two
    /// readings bucket by bucket.
    pub fn buckets(&self) -> impl ExactSizeIterator<Item = Bucket> + '_ {
        self.buckets
            .iter()
            .enumerate()
            .map(|(index, &count)| Bucket {
                index,
                lower: Duration::from_nanos(Self::lower_nanos(index)),
                upper: (index != OVERFLOW)
                    .then(|| Duration::from_nanos(Self::lower_nanos(index + 1))),
                count: u64::from(count),
            })
    }
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram::new()
    }
}

impl fmt::Debug for Histogram {
    /// The exact figures and the non-empty buckets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct NonEmpty<'a>(&'a Histogram);
        impl fmt::Debug for NonEmpty<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_map()
                    .entries(
                        self.0
                            .buckets()
                            .filter(|b| b.count > 0)
                            .map(|b| (b.lower, b.count)),
                    )
                    .finish()
            }
        }
        f.debug_struct("Histogram")
            .field("count", &self.count)
            .field("sum", &self.sum())
            .field("min", &self.min())
            .field("max", &self.max())
            .field("buckets", &NonEmpty(self))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us(n: u64) -> Duration {
        Duration::from_micros(n)
    }

    #[test]
    fn bucket_indices_at_the_edges_are_the_hand_computed_ones() {
        let cases: &[(u64, usize)] = &[
            (0, 0),
            (99_999, 0),
            // The first octave: 100 µs, in parts of 25 µs.
            (100_000, 1),
            (124_999, 1),
            (125_000, 2),
            (150_000, 3),
            (175_000, 4),
            (199_999, 4),
            // The second octave: 200 µs, in parts of 50 µs.
            (200_000, 5),
            (249_999, 5),
            (250_000, 6),
            (399_999, 8),
            (400_000, 9),
            // 1 ms = 100 µs × 10: octave 3 (800 µs–1.6 ms), part (1000/200) - 4 = 1.
            (1_000_000, 1 + 3 * 4 + 1),
            // The last octave: 52.4288 s to 104.8576 s, parts of 13.1072 s.
            (52_428_800_000, 77),
            (91_750_399_999, 79),
            (91_750_400_000, 80),
            (104_857_599_999, 80),
            (104_857_600_000, 81),
            (u64::MAX, 81),
        ];
        for &(nanos, index) in cases {
            assert_eq!(Histogram::index_of(nanos), index, "{nanos} ns");
        }
    }

    #[test]
    fn every_bucket_holds_its_bounds_and_nothing_else() {
        let h = Histogram::new();
        let buckets: alloc::vec::Vec<_> = h.buckets().collect();
        assert_eq!(buckets.len(), Histogram::BUCKETS);
        for b in &buckets {
            let lower = duration_nanos(b.lower);
            assert_eq!(Histogram::index_of(lower), b.index);
            if let Some(upper) = b.upper {
                let upper = duration_nanos(upper);
                assert_eq!(Histogram::index_of(upper - 1), b.index);
                assert_eq!(Histogram::index_of(upper), b.index + 1);
                // The error bound: upper ≤ 1.25 × lower inside the log-linear range.
                if b.index > 0 {
                    assert!(upper * 4 <= lower * 5, "bucket {}", b.index);
                }
            }
        }
        assert_eq!(buckets[1].lower, us(100));
        assert_eq!(
            buckets[80].upper,
            Some(Duration::from_nanos(104_857_600_000))
        );
        assert_eq!(buckets[81].upper, None);
    }

    #[test]
    fn record_keeps_exact_count_sum_min_and_max() {
        let mut h = Histogram::new();
        assert_eq!(
            (h.count(), h.min(), h.max(), h.mean()),
            (0, None, None, None)
        );
        for n in [us(50), us(300), Duration::from_secs(200)] {
            h.record(n);
        }
        assert_eq!(h.count(), 3);
        assert_eq!(h.sum(), us(50) + us(300) + Duration::from_secs(200));
        assert_eq!(h.min(), Some(us(50)));
        assert_eq!(h.max(), Some(Duration::from_secs(200)));
        assert_eq!(h.bucket_count(0), 1);
        assert_eq!(h.bucket_count(Histogram::index_of(300_000)), 1);
        assert_eq!(h.bucket_count(81), 1);
        assert_eq!(h.buckets().map(|b| b.count).sum::<u64>(), 3);
    }

    #[test]
    fn merge_is_recording_both_sets_of_samples() {
        let (mut a, mut b, mut both) = (Histogram::new(), Histogram::new(), Histogram::new());
        for ms in [1, 5, 9] {
            a.record(Duration::from_millis(ms));
            both.record(Duration::from_millis(ms));
        }
        for ms in [2, 5, 2_000] {
            b.record(Duration::from_millis(ms));
            both.record(Duration::from_millis(ms));
        }
        a.merge(&b);
        assert_eq!(a, both);
        // An empty histogram merges as nothing.
        a.merge(&Histogram::new());
        assert_eq!(a, both);
    }

    #[test]
    fn quantiles_are_the_upper_bound_of_the_ranked_bucket() {
        let mut h = Histogram::new();
        // 100 samples of 1 ms .. 100 ms.
        for ms in 1..=100 {
            h.record(Duration::from_millis(ms));
        }
        // Rank 50 is 50 ms: octave 8 (25.6–51.2 ms), part 3 (44.8–51.2 ms).
        assert_eq!(h.quantile(0.5), Some(Duration::from_micros(51_200)));
        // Rank 99 is 99 ms: octave 9 (51.2–102.4 ms), part 3 (89.6–102.4 ms), clamped to
        // the largest sample, 100 ms.
        assert_eq!(h.quantile(0.99), Some(Duration::from_millis(100)));
        assert_eq!(h.quantile(1.0), Some(Duration::from_millis(100)));
        // Rank 1 is 1 ms: octave 3 (0.8–1.6 ms), part 1 (1.0–1.2 ms).
        assert_eq!(h.quantile(0.0), Some(Duration::from_micros(1_200)));
        assert_eq!(h.quantile(f64::NAN), None);
        assert_eq!(Histogram::new().quantile(0.5), None);
    }

    #[test]
    fn quantiles_outside_the_range_use_the_exact_extremes() {
        let mut h = Histogram::new();
        h.record(us(10));
        assert_eq!(h.quantile(0.5), Some(us(10)));
        h.record(Duration::from_secs(500));
        assert_eq!(h.quantile(1.0), Some(Duration::from_secs(500)));
    }

    #[test]
    fn midpoints_stand_for_their_buckets() {
        let h = Histogram::new();
        let b: alloc::vec::Vec<_> = h.buckets().collect();
        assert_eq!(b[0].midpoint(), us(50));
        assert_eq!(b[1].midpoint(), Duration::from_nanos(112_500));
        assert_eq!(b[81].midpoint(), Duration::from_nanos(104_857_600_000));
    }
}
