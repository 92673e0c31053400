//! Counters a caller can read at any time, with Vitess's names and reasons.

use core::fmt;
use core::marker::PhantomData;
use core::ops::Index;
use core::time::Duration;

/// A reason label of a counter (stop, eviction, skip).
///
/// Implemented by this crate's reason enums only; the count array of a [`ByReason`] is sized
/// by [`Reason::Counts`], which the enum's definition derives from its variants, so adding a
/// reason can never overflow (or leave unused) the counters at run time.
pub trait Reason: Copy + fmt::Debug + 'static {
    /// Every value, in the order counters list them.
    const ALL: &'static [Self];
    /// One counter per value: `[u64; N]` with `N == ALL.len()`, checked at compile time.
    type Counts: AsRef<[u64]> + AsMut<[u64]> + Copy + Default + Eq + core::hash::Hash;
    /// Every counter at zero, for constants (a `Default` cannot be called in one).
    const ZERO: Self::Counts;
    /// This value's position in [`Reason::ALL`].
    fn index(self) -> usize;
    /// Vitess's label for this reason, e.g. `"NewPrimarySeen"`.
    fn as_str(self) -> &'static str;
}

macro_rules! reason_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $label:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl Reason for $name {
            const ALL: &'static [Self] = &[$($name::$variant),+];
            type Counts = [u64; [$(stringify!($variant)),+].len()];
            const ZERO: Self::Counts = [0; [$(stringify!($variant)),+].len()];

            fn index(self) -> usize {
                self as usize
            }

            fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $label),+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

reason_enum! {
    /// Why a failover episode stopped buffering (Vitess `BufferStops` reasons).
    StopReason {
        /// A serving primary with a newer term, or the same primary serving again after a
        /// not-serving stamp in this episode.
        NewPrimarySeen = "NewPrimarySeen",
        /// The episode lasted `max_failover_duration`.
        MaxDurationExceeded = "MaxDurationExceeded",
        /// The shard was resharded away ([`TopologyEvent::ShardMissing`](crate::TopologyEvent::ShardMissing)).
        ReshardingComplete = "ReshardingComplete",
        /// MoveTables switched writes ([`TopologyEvent::TrafficSwitched`](crate::TopologyEvent::TrafficSwitched)).
        MoveTablesSwitchedTraffic = "MoveTablesSwitchedTraffic",
        /// [`Buffer::shutdown`](crate::Buffer::shutdown).
        Shutdown = "Shutdown",
    }
}

reason_enum! {
    /// Why a held request left the queue before its failover ended (Vitess
    /// `BufferRequestsEvicted` reasons).
    EvictReason {
        /// The client gave up ([`Buffer::cancel`](crate::Buffer::cancel)) while queued.
        ContextDone = "ContextDone",
        /// Pushed out, as its shard's oldest, for a newer request: fails with
        /// [`BufferError::Evicted`](crate::BufferError::Evicted).
        BufferFull = "BufferFull",
        /// Held for the whole `window`: released to retry. More than zero means the window is
        /// shorter than your failovers.
        WindowExceeded = "WindowExceeded",
    }
}

reason_enum! {
    /// How an operator pause ([`Buffer::pause`](crate::Buffer::pause)) ended. Not in Vitess.
    PauseEnd {
        /// [`Buffer::resume`](crate::Buffer::resume) ended it.
        Resumed = "Resumed",
        /// Its `max` ran out: the shard resumed by itself. More than zero means a pause was
        /// forgotten, or planned maintenance ran longer than planned.
        Expired = "Expired",
        /// [`Buffer::shutdown`](crate::Buffer::shutdown) ended it.
        Shutdown = "Shutdown",
    }
}

reason_enum! {
    /// Why a request with a failover cause was not held (Vitess `BufferRequestsSkipped`
    /// reasons).
    SkipReason {
        /// Every slot is taken and the shard had nothing to evict.
        BufferFull = "BufferFull",
        /// The shard's mode is [`Mode::Disabled`](crate::Mode::Disabled).
        Disabled = "Disabled",
        /// The buffer was shut down.
        Shutdown = "Shutdown",
        /// The shard's primary changed less than `min_time_between_failovers` ago: the end of
        /// this failover was probably already seen.
        LastReparentTooRecent = "LastReparentTooRecent",
        /// The shard's last episode ended less than `min_time_between_failovers` ago.
        LastFailoverTooRecent = "LastFailoverTooRecent",
    }
}

reason_enum! {
    /// How a held request's wait ended: the label of its sample in
    /// [`WaitHistograms`](crate::WaitHistograms). Every held request gets exactly one, when
    /// it leaves its shard's queue.
    WaitOutcome {
        /// Released to retry by its shard's drain, the failover over
        /// ([`ReleaseReason::Drain`](crate::ReleaseReason::Drain) for `NewPrimarySeen`,
        /// `MoveTablesSwitchedTraffic` or `Shutdown`), or by the drain that follows an
        /// operator pause's end with no failover behind it
        /// ([`ReleaseReason::PauseEnded`](crate::ReleaseReason::PauseEnded)): either way the
        /// shard is taken to serve again, and the wait was the whole hold.
        Retried = "Retried",
        /// Released to retry with the failover maybe still on: held for its whole `window`
        /// ([`ReleaseReason::Window`](crate::ReleaseReason::Window), counted as evicted
        /// `WindowExceeded`), or by the drain `max_failover_duration` started
        /// (`ReleaseReason::Drain(MaxDurationExceeded)`).
        Window = "Window",
        /// Failed with [`BufferError::Evicted`](crate::BufferError::Evicted): pushed out for a
        /// newer request, or by a reconfiguration that shrank a limit (evicted `BufferFull`).
        Evicted = "Evicted",
        /// Its client gave up while it was queued ([`Buffer::cancel`](crate::Buffer::cancel)),
        /// before the drain (evicted `ContextDone`) or during it (counted as drained).
        Cancelled = "Cancelled",
        /// Failed with [`BufferError::ShardMissing`](crate::BufferError::ShardMissing) by the
        /// drain of a shard resharded away (counted as drained).
        ShardMissing = "ShardMissing",
    }
}

/// Counters labelled by a [`Reason`], indexed by it.
///
/// ```
/// use failover_buffer::{ByReason, EvictReason};
///
/// let evicted = ByReason::<EvictReason>::default();
/// assert_eq!(evicted[EvictReason::WindowExceeded], 0);
/// assert_eq!(evicted.total(), 0);
/// ```
pub struct ByReason<R: Reason> {
    counts: R::Counts,
    reason: PhantomData<R>,
}

// By hand rather than derived: a derive would bound `R` itself, not its count array.
impl<R: Reason> Clone for ByReason<R> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<R: Reason> Copy for ByReason<R> {}

impl<R: Reason> PartialEq for ByReason<R> {
    fn eq(&self, other: &Self) -> bool {
        self.counts == other.counts
    }
}

impl<R: Reason> Eq for ByReason<R> {}

impl<R: Reason> core::hash::Hash for ByReason<R> {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        self.counts.hash(state);
    }
}

impl<R: Reason> ByReason<R> {
    /// Every counter at zero.
    pub(crate) const ZERO: Self = ByReason {
        counts: R::ZERO,
        reason: PhantomData,
    };

    /// Adds one to `reason`'s counter.
    pub(crate) fn bump(&mut self, reason: R) {
        self.add(reason, 1);
    }

    /// Adds `n` to `reason`'s counter.
    pub(crate) fn add(&mut self, reason: R, n: u64) {
        let c = &mut self.counts.as_mut()[reason.index()];
        *c = c.saturating_add(n);
    }

    /// The sum over all reasons.
    pub fn total(&self) -> u64 {
        self.counts
            .as_ref()
            .iter()
            .fold(0u64, |a, &c| a.saturating_add(c))
    }

    /// Every reason with its count, in [`Reason::ALL`] order (zeros included, so an exporter
    /// initialises every label as Vitess does).
    pub fn iter(&self) -> impl Iterator<Item = (R, u64)> + '_ {
        R::ALL.iter().map(|&r| (r, self[r]))
    }
}

impl<R: Reason> Default for ByReason<R> {
    fn default() -> Self {
        ByReason {
            counts: R::Counts::default(),
            reason: PhantomData,
        }
    }
}

impl<R: Reason> Index<R> for ByReason<R> {
    type Output = u64;

    fn index(&self, reason: R) -> &u64 {
        &self.counts.as_ref()[reason.index()]
    }
}

impl<R: Reason> fmt::Debug for ByReason<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.iter().map(|(r, c)| (r.as_str(), c)))
            .finish()
    }
}

/// One shard's counters, with Vitess's metric names (`BufferStarts` is `starts`, and so on).
///
/// All counters start at zero when the shard is registered, so every label exists from the
/// start (Vitess `initVariablesForShard`). Read them with
/// [`Buffer::shard_stats`](crate::Buffer::shard_stats). New counters may be added in minor
/// releases (`#[non_exhaustive]`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShardStats {
    /// Episodes started (`BufferStarts`), dry-run included.
    pub starts: u64,
    /// Episodes stopped, by reason (`BufferStops`). A drain paused and resumed is one stop.
    pub stops: ByReason<StopReason>,
    /// Requests queued (`BufferRequestsBuffered`).
    pub buffered: u64,
    /// Requests a dry-run shard would have queued (`BufferRequestsBufferedDryRun`).
    pub buffered_dry_run: u64,
    /// Queued requests that left the queue in a drain: released to retry, or cancelled while
    /// waiting for their turn (`BufferRequestsDrained`).
    pub drained: u64,
    /// Requests that left the queue before the drain, by reason (`BufferRequestsEvicted`).
    pub evicted: ByReason<EvictReason>,
    /// Failover requests not held, by reason (`BufferRequestsSkipped`).
    pub skipped: ByReason<SkipReason>,
    /// Drains called off because a released request failed again with a failover error while
    /// the episode was younger than `max_failover_duration`. Not in Vitess.
    pub drains_paused: u64,
    /// The longest queue of the current or last episode (`BufferLastRequestsInFlightMax`).
    pub last_requests_in_flight_max: u64,
    /// Requests a dry-run shard saw in the current or last episode
    /// (`BufferLastRequestsDryRunMax`, which is a count despite its name).
    pub last_requests_dry_run_max: u64,
    /// How long the last episode buffered, start to stop (`BufferLastFailoverDurationMs`).
    pub last_failover_duration: Duration,
    /// The last episode as its clients saw it: from the first request it held to the last
    /// one released (woken, evicted or cancelled), drain pauses included; set when its drain
    /// finishes, zero if it held nothing. `last_failover_duration` is Vitess's figure, from
    /// the start to the first stop; a drain that backed off makes clients wait longer than
    /// that, and this says how much.
    pub last_failover_held_duration: Duration,
    /// The sum of all episodes' durations. (Vitess's `BufferFailoverDurationSumMs` is reset
    /// at every start and so only ever holds the last one; this one is a real sum.)
    pub failover_duration_sum: Duration,
    /// Sum over episodes of the peak queue as a whole percentage of `size`, truncated
    /// (`BufferUtilizationSum`).
    pub utilization_sum: u64,
    /// The same for dry-run episodes, from the dry-run count (`BufferUtilizationDryRunSum`;
    /// can exceed 100 per episode).
    pub utilization_dry_run_sum: u64,
    /// Bytes this shard holds now (queued or retrying), from the sizes its requests carry
    /// ([`Buffer::request_sized`](crate::Buffer::request_sized)). Not in Vitess.
    pub bytes_held: u64,
    /// The most bytes this shard has held at once. Not in Vitess.
    pub peak_bytes: u64,
    /// Operator pauses begun on this shard ([`Buffer::pause`](crate::Buffer::pause) of a
    /// shard that was not paused; pausing a paused shard again moves its bound and is the
    /// same pause). Not in Vitess.
    pub pauses_started: u64,
    /// Operator pauses ended, by how: resumed, expired (their `max` ran out) or ended by a
    /// shutdown. `pauses_started - pauses_ended.total()` is 1 while the shard is paused, else
    /// 0. Not in Vitess.
    pub pauses_ended: ByReason<PauseEnd>,
}

/// Refused inputs, by kind: each is also answered with an [`InputError`](crate::InputError)
/// or, for time, clamped. New counters may be added in minor releases (`#[non_exhaustive]`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct InputStats {
    /// Inputs whose `now` was before an earlier input's; they were run at the earlier time.
    pub clock_regressions: u64,
    /// Inputs naming a [`ShardId`](crate::ShardId) this buffer never issued.
    pub unknown_shards: u64,
    /// `cancel`, `retry_done` or `retry_failed` of a ticket that had ended.
    pub stale_tickets: u64,
    /// `cancel`, `retry_done` or `retry_failed` of a ticket this buffer never issued
    /// (another buffer's, or forged).
    pub tickets_not_issued: u64,
    /// `retry_done` of a ticket still queued.
    pub tickets_not_released: u64,
    /// Health stamps with a term below the shard's highest.
    pub stale_health_stamps: u64,
}

/// Whether an exporter should treat a [`StatSample`] as a counter (it only grows) or a gauge
/// (it is set).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SampleKind {
    /// Only ever grows.
    Counter,
    /// Describes the current or last episode; set, not added to.
    Gauge,
}

/// One series of a shard's counters, as a metrics exporter names it.
///
/// The names are Vitess's, in snake case under a `failover_buffer_` prefix
/// (`BufferRequestsEvicted` is `failover_buffer_requests_evicted`), so that every adapter
/// exports the same series and dashboards built for Vitess translate directly. An exporter
/// adds its own `keyspace` and `shard` labels, plus `reason` where the sample has one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct StatSample {
    /// The metric name, e.g. `failover_buffer_requests_evicted`.
    pub name: &'static str,
    /// The `reason` label of series split by reason, e.g. `Some("WindowExceeded")`.
    pub reason: Option<&'static str>,
    /// Counter or gauge.
    pub kind: SampleKind,
    /// The value; durations are whole milliseconds.
    pub value: u64,
}

impl ShardStats {
    /// Every counter at zero: a shard that never failed over.
    pub(crate) const ZERO: ShardStats = ShardStats {
        starts: 0,
        stops: ByReason::ZERO,
        buffered: 0,
        buffered_dry_run: 0,
        drained: 0,
        evicted: ByReason::ZERO,
        skipped: ByReason::ZERO,
        drains_paused: 0,
        last_requests_in_flight_max: 0,
        last_requests_dry_run_max: 0,
        last_failover_duration: Duration::ZERO,
        last_failover_held_duration: Duration::ZERO,
        failover_duration_sum: Duration::ZERO,
        utilization_sum: 0,
        utilization_dry_run_sum: 0,
        bytes_held: 0,
        peak_bytes: 0,
        pauses_started: 0,
        pauses_ended: ByReason::ZERO,
    };

    /// Every series of these counters, always the same ones in the same order (zeros
    /// included, so that every label exists from registration, as in Vitess), for a metrics
    /// exporter. Allocates nothing.
    ///
    /// ```
    /// use failover_buffer::{SampleKind, ShardStats};
    ///
    /// let evicted: Vec<_> = ShardStats::default()
    ///     .samples()
    ///     .filter(|s| s.name == "failover_buffer_requests_evicted")
    ///     .map(|s| (s.reason, s.kind, s.value))
    ///     .collect();
    /// assert_eq!(evicted[2], (Some("WindowExceeded"), SampleKind::Counter, 0));
    /// ```
    pub fn samples(&self) -> impl Iterator<Item = StatSample> + '_ {
        use SampleKind::{Counter, Gauge};
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let plain = [
            ("failover_buffer_starts", Counter, self.starts),
            ("failover_buffer_requests_buffered", Counter, self.buffered),
            (
                "failover_buffer_requests_buffered_dry_run",
                Counter,
                self.buffered_dry_run,
            ),
            ("failover_buffer_requests_drained", Counter, self.drained),
            ("failover_buffer_drains_paused", Counter, self.drains_paused),
            (
                "failover_buffer_failover_duration_sum_ms",
                Counter,
                ms(self.failover_duration_sum),
            ),
            (
                "failover_buffer_utilization_sum",
                Counter,
                self.utilization_sum,
            ),
            (
                "failover_buffer_utilization_dry_run_sum",
                Counter,
                self.utilization_dry_run_sum,
            ),
            (
                "failover_buffer_last_failover_duration_ms",
                Gauge,
                ms(self.last_failover_duration),
            ),
            (
                "failover_buffer_last_failover_held_duration_ms",
                Gauge,
                ms(self.last_failover_held_duration),
            ),
            (
                "failover_buffer_last_requests_in_flight_max",
                Gauge,
                self.last_requests_in_flight_max,
            ),
            (
                "failover_buffer_last_requests_dry_run_max",
                Gauge,
                self.last_requests_dry_run_max,
            ),
        ];
        plain
            .into_iter()
            .map(|(name, kind, value)| StatSample {
                name,
                reason: None,
                kind,
                value,
            })
            .chain(by_reason("failover_buffer_stops", self.stops))
            .chain(by_reason("failover_buffer_requests_evicted", self.evicted))
            .chain(by_reason("failover_buffer_requests_skipped", self.skipped))
            .chain(core::iter::once(StatSample {
                name: "failover_buffer_pauses_started",
                reason: None,
                kind: Counter,
                value: self.pauses_started,
            }))
            .chain(by_reason("failover_buffer_pauses_ended", self.pauses_ended))
    }
}

fn by_reason<R: Reason>(
    name: &'static str,
    counts: ByReason<R>,
) -> impl Iterator<Item = StatSample> {
    R::ALL.iter().map(move |&reason| StatSample {
        name,
        reason: Some(reason.as_str()),
        kind: SampleKind::Counter,
        value: counts[reason],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_reason_has_exactly_one_counter_per_variant() {
        // The array length comes from the enum's own variant list, so these hold by
        // construction; a reason added without a counter would not compile.
        assert_eq!(
            core::mem::size_of::<ByReason<StopReason>>(),
            8 * StopReason::ALL.len()
        );
        assert_eq!(
            core::mem::size_of::<ByReason<EvictReason>>(),
            8 * EvictReason::ALL.len()
        );
        assert_eq!(
            core::mem::size_of::<ByReason<SkipReason>>(),
            8 * SkipReason::ALL.len()
        );
        for (i, r) in EvictReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
        }
    }
}
