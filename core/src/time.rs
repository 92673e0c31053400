//! The buffer's notion of time: a plain number the caller supplies.

use core::fmt;
use core::time::Duration;

/// A point on the caller's monotonic clock, in nanoseconds from an origin the caller chooses.
///
/// The core never reads a clock. Every input carries a `Timestamp`, so the same inputs always
/// give the same outputs, and tests, simulators and fuzzers can drive time by hand. An adapter
/// maps its `Instant`s to `Timestamp`s by subtracting a fixed origin.
///
/// Arithmetic saturates instead of overflowing: `u64` nanoseconds last 584 years.
///
/// ```
/// use core::time::Duration;
/// use failover_buffer::Timestamp;
///
/// let t0 = Timestamp::from_secs(10);
/// let t1 = t0 + Duration::from_millis(1500);
/// assert_eq!(t1.saturating_duration_since(t0), Duration::from_millis(1500));
/// assert_eq!(t0.saturating_duration_since(t1), Duration::ZERO);
/// ```
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(u64);

impl Timestamp {
    /// The origin of the caller's clock.
    pub const ZERO: Timestamp = Timestamp(0);

    /// The latest representable instant: "never". Deadlines saturate at it and a deadline
    /// at `MAX` never fires (no timer is armed for it); a [`Buffer`](crate::Buffer) input
    /// stamped `MAX` is run 1 ns earlier, so that time never reaches a saturated deadline.
    pub const MAX: Timestamp = Timestamp(u64::MAX);

    /// The latest instant an input runs at.
    pub(crate) const LATEST: Timestamp = Timestamp(u64::MAX - 1);

    /// A timestamp `nanos` nanoseconds after the origin.
    pub const fn from_nanos(nanos: u64) -> Self {
        Timestamp(nanos)
    }

    /// A timestamp `millis` milliseconds after the origin (saturating).
    pub const fn from_millis(millis: u64) -> Self {
        Timestamp(millis.saturating_mul(1_000_000))
    }

    /// A timestamp `secs` seconds after the origin (saturating).
    pub const fn from_secs(secs: u64) -> Self {
        Timestamp(secs.saturating_mul(1_000_000_000))
    }

    /// Nanoseconds since the origin.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// The time from `earlier` to `self`, or zero if `earlier` is later.
    pub const fn saturating_duration_since(self, earlier: Timestamp) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }

    /// `self - d`, saturating at [`Timestamp::ZERO`].
    pub fn saturating_sub(self, d: Duration) -> Timestamp {
        Timestamp(self.0.saturating_sub(duration_nanos(d)))
    }

    /// `self + d`, saturating at [`Timestamp::MAX`].
    pub fn saturating_add(self, d: Duration) -> Timestamp {
        Timestamp(self.0.saturating_add(duration_nanos(d)))
    }
}

impl Timestamp {
    /// `self + nanos`, saturating.
    pub(crate) fn plus_nanos(self, nanos: u64) -> Timestamp {
        Timestamp(self.0.saturating_add(nanos))
    }

    /// Nanoseconds from `earlier` to `self`, or zero.
    pub(crate) fn nanos_since(self, earlier: Timestamp) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

/// A `Duration` in nanoseconds, saturating at `u64::MAX` (584 years).
pub(crate) fn duration_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl core::ops::Add<Duration> for Timestamp {
    type Output = Timestamp;

    /// Saturating, like [`Timestamp::saturating_add`]: time never wraps.
    fn add(self, d: Duration) -> Timestamp {
        self.saturating_add(d)
    }
}

impl core::ops::Sub<Duration> for Timestamp {
    type Output = Timestamp;

    /// Saturating at [`Timestamp::ZERO`]: time never wraps.
    fn sub(self, d: Duration) -> Timestamp {
        self.saturating_sub(d)
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Timestamp {
    /// Seconds since the origin with nanosecond precision, e.g. `12.000500000s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{:09}s",
            self.0 / 1_000_000_000,
            self.0 % 1_000_000_000
        )
    }
}
