//! Configuration, its Vitess defaults and its validation.

use core::fmt;
use core::time::Duration;

use crate::filter::ShardFilter;
use crate::policy::Eviction;

/// How a shard treats failover errors, fixed when the shard is registered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Requests are held during a failover.
    Enabled,
    /// The whole state machine runs and counts what it would have held, but holds nothing.
    DryRun,
    /// Failover errors are passed through (and counted as skipped `Disabled`).
    Disabled,
}

/// The buffer's settings. [`Config::default`] has Vitess's flag defaults.
///
/// Build one with struct update syntax and check it with [`Config::validate`];
/// [`Buffer::new`](crate::Buffer::new) validates too.
///
/// ```
/// use core::time::Duration;
/// use failover_buffer::Config;
///
/// let config = Config {
///     enabled: true,
///     size: 5_000,
///     window: Duration::from_secs(5),
///     drain_concurrency: 16,
///     ..Config::default()
/// };
/// config.validate()?;
/// # Ok::<(), failover_buffer::ConfigError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Buffer for real (Vitess `--enable-buffer`). Default `false`.
    pub enabled: bool,
    /// Run the state machine without holding anything, for shards not buffered for real
    /// (Vitess `--enable-buffer-dry-run`). Default `false`.
    pub dry_run: bool,
    /// Requests held at once across all shards (Vitess `--buffer-size`). Default 1000.
    pub size: usize,
    /// The longest one request is held (Vitess `--buffer-window`). Default 10 s.
    pub window: Duration,
    /// Buffering stops and drains if a failover lasts longer
    /// (Vitess `--buffer-max-failover-duration`). Default 20 s.
    pub max_failover_duration: Duration,
    /// Per shard, the least time from the end of one failover (or a change of primary) to the
    /// start of the next (Vitess `--buffer-min-time-between-failovers`). Default 1 min.
    pub min_time_between_failovers: Duration,
    /// Most released requests retrying at once while a shard drains
    /// (Vitess `--buffer-drain-concurrency`). Default 1.
    pub drain_concurrency: usize,
    /// How long a drain stays paused after a released request failed again with a failover
    /// error, unless a serving health stamp arrives first. Not in Vitess. Default 1 s.
    pub drain_backoff: Duration,
    /// Keyspaces and shards that buffer for real; empty means all when `enabled`
    /// (Vitess `--buffer-keyspace-shards`). Default empty.
    pub filter: ShardFilter,
    /// Start buffering when a health stamp says an idle shard's primary is not serving,
    /// before any request has failed (Vitess does this through its keyspace-event watcher,
    /// `ShouldStartBufferingForTarget`; issues 9071, 9112). First attempts on that shard are
    /// then held instead of being sent to a primary known to be going away. The same
    /// min-time rules apply as to a failover error, and the usual rules end the episode.
    ///
    /// Default `true`, as in Vitess: a router that reports health wants its clients to see
    /// a pause rather than one error each for the requests in flight when the primary
    /// stopped. Turn it off if your health stream reports "not serving" for reasons that are
    /// not a failover (a primary that is briefly read-only for maintenance, say): each such
    /// stamp then costs an episode, and the `min_time_between_failovers` after it.
    pub proactive_start: bool,
    /// How long [`Buffer::shutdown`](crate::Buffer::shutdown) waits, once every queued
    /// request has been released, for the released retries to finish before the buffer is
    /// closed anyway (the shutdown's third phase; see [`Buffer::shutdown`](crate::Buffer::shutdown)).
    /// Retries still running then end by `retry_done` or `cancel` as usual; they only stop
    /// holding the shutdown up. Not in Vitess.
    ///
    /// Default [`Duration::MAX`]: no limit, so the buffer closes when the last ticket ends,
    /// as Vitess's shutdown and this crate's earlier releases do. Must be above zero
    /// ([`ConfigError::ShutdownGraceZero`]). A shutdown in progress keeps the grace it began
    /// with; [`reconfigure`](crate::Buffer::reconfigure) changes the next one's.
    pub shutdown_grace: Duration,
    /// Whom a full buffer pushes out for a newcomer: the newcomer's shard's oldest request
    /// (Vitess, the default), the oldest request of any shard (Multigres), or nobody (the
    /// newcomer is refused). See [`Eviction`]. Not in Vitess as a setting.
    pub eviction: Eviction,
    /// The most slots one shard may hold at once (queued or retrying), so that one failing
    /// shard cannot take every slot and a second shard failing over at the same time still
    /// gets its share. A shard at its cap makes room by evicting its own oldest queued
    /// request (under [`Eviction::RejectNew`], the newcomer is refused instead). `None` (the
    /// default, as in Vitess): a shard may take the whole `size`. Not in Vitess.
    pub max_per_shard: Option<usize>,
    /// The most bytes held at once across all shards, counting the sizes requests carry
    /// ([`Buffer::request_sized`](crate::Buffer::request_sized); a plain
    /// [`request`](crate::Buffer::request) weighs nothing). Slots count requests, but memory
    /// is bytes. A request that would go over evicts queued requests by the
    /// [`eviction`](Self::eviction) policy until it fits, and fails with `BufferFull`
    /// (evicting nothing) if even that cannot make it fit, or if it is larger than the whole
    /// budget. `None` (the default, as in Vitess): no budget, which is
    /// [`LARGEST_MAX_BYTES`](Self::LARGEST_MAX_BYTES) (8 EiB), also the largest `Some` allowed
    /// ([`ConfigError::MaxBytesTooLarge`]). Not in Vitess.
    pub max_bytes: Option<u64>,
    /// The longest an operator pause ([`Buffer::pause`](crate::Buffer::pause)) may be asked
    /// to last: a pause's own `max` must be at most this, so that no pause, however it was
    /// typed, holds clients for longer. PgBouncer's `PAUSE` has no bound: a forgotten one
    /// hangs every client. Default 10 minutes; must be above zero
    /// ([`ConfigError::MaxPauseZero`]). [`reconfigure`](crate::Buffer::reconfigure) applies
    /// a lower bound to the pauses in progress, from their start. Not in Vitess.
    pub max_pause: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            enabled: false,
            dry_run: false,
            size: 1000,
            window: Duration::from_secs(10),
            max_failover_duration: Duration::from_secs(20),
            min_time_between_failovers: Duration::from_secs(60),
            drain_concurrency: 1,
            drain_backoff: Duration::from_secs(1),
            filter: ShardFilter::new(),
            proactive_start: true,
            shutdown_grace: Duration::MAX,
            eviction: Eviction::OldestOfShard,
            max_per_shard: None,
            max_bytes: None,
            max_pause: Duration::from_secs(600),
        }
    }
}

/// Why a [`Config`] was rejected. Each variant is one of Vitess's `verifyFlags` checks (plus
/// `drain_backoff`), checked in Vitess's order.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// `window` is zero.
    WindowZero,
    /// `window` is longer than `max_failover_duration`.
    WindowExceedsMaxFailoverDuration {
        /// The window.
        window: Duration,
        /// The max failover duration.
        max_failover_duration: Duration,
    },
    /// `size` is zero.
    SizeZero,
    /// `size` does not fit the slot index (more than `u32::MAX - 1`).
    SizeTooLarge(usize),
    /// `min_time_between_failovers` is below one second.
    MinTimeBetweenFailoversTooShort(Duration),
    /// `drain_concurrency` is zero.
    DrainConcurrencyZero,
    /// `drain_backoff` is zero (a paused drain would resume in the same instant).
    DrainBackoffZero,
    /// A filter is set but `enabled` is not.
    FilterRequiresEnabled,
    /// `enabled` and `dry_run` are both set but no filter says which shards buffer for real.
    DryRunAndEnabledWithoutFilter,
    /// [`Buffer::reconfigure`](crate::Buffer::reconfigure) was given other `enabled`,
    /// `dry_run` or `filter` settings: these decide each shard's [`Mode`] once, when it is
    /// registered, so they cannot change at run time.
    ModeSettingsChanged,
    /// `shutdown_grace` is zero: the shutdown's wait for released retries would end before
    /// it began. The shortest grace, 1 ns, closes at the first tick after the queues are
    /// empty; [`Duration::MAX`] waits for every retry.
    ShutdownGraceZero,
    /// `max_per_shard` is `Some(0)`: no shard could hold anything.
    MaxPerShardZero,
    /// `max_bytes` is `Some(0)`: only requests of no size could be held.
    MaxBytesZero,
    /// `max_bytes` is above [`Config::LARGEST_MAX_BYTES`].
    MaxBytesTooLarge(u64),
    /// `max_pause` is zero: no operator pause could be asked for.
    MaxPauseZero,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::WindowZero => f.write_str("buffer window must be > 0"),
            ConfigError::WindowExceedsMaxFailoverDuration {
                window,
                max_failover_duration,
            } => write!(
                f,
                "buffer window must be <= max failover duration: {window:?} vs. {max_failover_duration:?}"
            ),
            ConfigError::SizeZero => f.write_str("buffer size must be >= 1 (specified value: 0)"),
            ConfigError::SizeTooLarge(n) => {
                write!(
                    f,
                    "buffer size must be < {} (specified value: {n})",
                    u32::MAX
                )
            }
            ConfigError::MinTimeBetweenFailoversTooShort(d) => write!(
                f,
                "min time between failovers must be >= 1s (specified value: {d:?})"
            ),
            ConfigError::DrainConcurrencyZero => {
                f.write_str("buffer drain concurrency must be >= 1 (specified value: 0)")
            }
            ConfigError::DrainBackoffZero => f.write_str("buffer drain backoff must be > 0"),
            ConfigError::FilterRequiresEnabled => {
                f.write_str("a buffer keyspace/shard list also requires that buffering is enabled")
            }
            ConfigError::DryRunAndEnabledWithoutFilter => f.write_str(
                "both the dry-run mode and actual buffering is enabled. To avoid ambiguity, \
                 keyspaces and shards for actual buffering must be explicitly listed",
            ),
            ConfigError::ModeSettingsChanged => f.write_str(
                "enabled, dry_run and the keyspace/shard list cannot change at run time: \
                 each shard's mode is fixed when it is registered",
            ),
            ConfigError::ShutdownGraceZero => f.write_str("buffer shutdown grace must be > 0"),
            ConfigError::MaxBytesZero => {
                f.write_str("max bytes held must be >= 1 (specified value: 0)")
            }
            ConfigError::MaxBytesTooLarge(n) => write!(
                f,
                "max bytes held must be <= {} (specified value: {n})",
                Config::LARGEST_MAX_BYTES
            ),
            ConfigError::MaxPauseZero => f.write_str("max pause must be > 0"),
            ConfigError::MaxPerShardZero => {
                f.write_str("max requests per shard must be >= 1 (specified value: 0)")
            }
        }
    }
}

impl core::error::Error for ConfigError {}

impl Config {
    /// The largest byte budget, and the budget when [`max_bytes`](Self::max_bytes) is
    /// `None`: 2^63 - 1 bytes. Below `u64::MAX` so that what is held plus a newcomer (each at
    /// most the budget) is always countable, even for the instant in which a newcomer is
    /// queued before its victims leave; no buffer holds 8 EiB.
    pub const LARGEST_MAX_BYTES: u64 = u64::MAX / 2;

    /// Checks the settings, in Vitess's order, returning the first problem found.
    ///
    /// Filter entries themselves are checked when the [`ShardFilter`] is built or parsed.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.window.is_zero() {
            return Err(ConfigError::WindowZero);
        }
        if self.window > self.max_failover_duration {
            return Err(ConfigError::WindowExceedsMaxFailoverDuration {
                window: self.window,
                max_failover_duration: self.max_failover_duration,
            });
        }
        if self.size == 0 {
            return Err(ConfigError::SizeZero);
        }
        if self.size >= u32::MAX as usize {
            return Err(ConfigError::SizeTooLarge(self.size));
        }
        if self.min_time_between_failovers < Duration::from_secs(1) {
            return Err(ConfigError::MinTimeBetweenFailoversTooShort(
                self.min_time_between_failovers,
            ));
        }
        if self.drain_concurrency == 0 {
            return Err(ConfigError::DrainConcurrencyZero);
        }
        if self.drain_backoff.is_zero() {
            return Err(ConfigError::DrainBackoffZero);
        }
        if !self.filter.is_empty() && !self.enabled {
            return Err(ConfigError::FilterRequiresEnabled);
        }
        if self.enabled && self.dry_run && self.filter.is_empty() {
            return Err(ConfigError::DryRunAndEnabledWithoutFilter);
        }
        if self.shutdown_grace.is_zero() {
            return Err(ConfigError::ShutdownGraceZero);
        }
        if self.max_per_shard == Some(0) {
            return Err(ConfigError::MaxPerShardZero);
        }
        match self.max_bytes {
            Some(0) => return Err(ConfigError::MaxBytesZero),
            Some(n) if n > Config::LARGEST_MAX_BYTES => {
                return Err(ConfigError::MaxBytesTooLarge(n));
            }
            _ => {}
        }
        if self.max_pause.is_zero() {
            return Err(ConfigError::MaxPauseZero);
        }
        Ok(())
    }

    /// The mode a shard gets when it is registered (Vitess `bufferingMode`).
    ///
    /// ```
    /// use failover_buffer::{Config, Mode};
    ///
    /// let config = Config { enabled: true, dry_run: true, filter: "ks1/0".parse()?, ..Config::default() };
    /// assert_eq!(config.mode_for("ks1", "0"), Mode::Enabled);
    /// assert_eq!(config.mode_for("ks1", "-80"), Mode::DryRun);
    /// # Ok::<(), failover_buffer::FilterError>(())
    /// ```
    pub fn mode_for(&self, keyspace: &str, shard: &str) -> Mode {
        if self.enabled && (self.filter.is_empty() || self.filter.contains(keyspace, shard)) {
            Mode::Enabled
        } else if self.dry_run {
            Mode::DryRun
        } else {
            Mode::Disabled
        }
    }
}
