//! What is simulated: traffic, the client, the failovers, and the buffer's config.
//!
//! A [`Scenario`] is read from a TOML file ([`Scenario::from_file`]) or built in Rust
//! ([`Scenario::default_scenario`]). The file format is documented in the crate's README; in
//! short, durations are strings with a unit (`"250ms"`, `"10s"`), every key but `shards` is
//! optional, and unknown keys are errors.

use core::fmt;
use core::time::Duration;
use std::path::Path;

use failover_buffer::{Config, ConfigError, ShardFilter};
use serde::Deserialize;

use crate::duration::{format_duration, parse_duration};
use crate::error::BufferKeyError;

/// A simulation set-up: traffic, client behaviour, failovers and the buffer's config.
///
/// ```
/// use failover_buffer_sim::Scenario;
///
/// let scenario = Scenario::from_toml_str(r#"
///     duration = "5s"
///     [[shards]]
///     name = "commerce/0"
///     rate = 500
///     [[shards.failovers]]
///     start = "1s"
///     duration = "2s"
/// "#, "inline.toml")?;
/// assert_eq!(scenario.shards[0].rate, 500.0);
/// assert!(scenario.buffer.enabled); // a scenario buffers unless it says otherwise
/// # Ok::<(), failover_buffer_sim::ScenarioError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    /// A name for reports; a file's stem when the file names none.
    pub name: String,
    /// The seed used when none is given on the command line.
    pub seed: u64,
    /// Arrivals happen from time zero until this instant; the simulation then runs until
    /// every request has ended.
    pub duration: Duration,
    /// How the application's client behaves.
    pub client: Client,
    /// How long the primary takes to answer one attempt.
    pub service: ServiceTime,
    /// The shards, with their traffic and failovers.
    pub shards: Vec<ShardSpec>,
    /// The buffer's config for the scenario's own run.
    pub buffer: Config,
    /// What `--recommend` must meet, if the scenario says.
    pub objective: Option<Objective>,
}

/// What a config must achieve for `--recommend` ([`recommend`](crate::experiment::recommend)):
/// every limit set must hold. A limit not set is not checked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Objective {
    /// At most this many requests may fail (`errors = 0`: no client errors).
    pub errors: Option<u64>,
    /// The p99 added latency of successful requests may not exceed this.
    pub added_latency_p99: Option<Duration>,
    /// No successful request may be delayed longer than this.
    pub added_latency_max: Option<Duration>,
    /// The longest drain may not exceed this (the burst the new primary takes).
    pub drain_time: Option<Duration>,
    /// Memory: at most this many slots per router (the config's `size`, which is what a
    /// router reserves).
    pub size: Option<usize>,
}

/// The application's client and the router's retry policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Client {
    /// From arrival, the longest the application waits for an answer. A request still held
    /// (or in flight) then is cancelled and counts as a `timeout` error.
    pub timeout: Duration,
    /// Attempts per request, the first included (Vitess's gateway: `retry_count` 2, so 3).
    pub attempts: u32,
    /// Pause between a failed attempt and the next one when the buffer does not hold it.
    pub retry_delay: Duration,
}

impl Default for Client {
    fn default() -> Self {
        Client {
            timeout: Duration::from_secs(30),
            attempts: 3,
            retry_delay: Duration::ZERO,
        }
    }
}

/// How long one attempt takes at the primary, successful or refused. Each request draws its
/// time once, at arrival, and every attempt of it takes that long.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ServiceTime {
    /// Always the same.
    Constant(Duration),
    /// Uniform between the two bounds, inclusive.
    Uniform {
        /// Shortest.
        min: Duration,
        /// Longest.
        max: Duration,
    },
    /// Exponential with this mean (a long tail).
    Exponential {
        /// Mean.
        mean: Duration,
    },
}

impl Default for ServiceTime {
    fn default() -> Self {
        ServiceTime::Uniform {
            min: Duration::from_millis(1),
            max: Duration::from_millis(3),
        }
    }
}

/// One shard: its name, its traffic and its failover timeline.
#[derive(Clone, Debug, PartialEq)]
pub struct ShardSpec {
    /// Keyspace.
    pub keyspace: String,
    /// Shard name within the keyspace.
    pub shard: String,
    /// Poisson arrival rate, requests per second (0 for none).
    pub rate: f64,
    /// Extra arrivals at these exact instants, for hand-computable scenarios.
    pub arrivals: Vec<Duration>,
    /// Failovers, in order, not overlapping.
    pub failovers: Vec<Failover>,
}

/// One failover of a shard's primary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Failover {
    /// From this instant the primary refuses requests with a failover error.
    pub start: Duration,
    /// From `start` until the new primary is promoted; `None` for a failed failover that
    /// never ends (no primary serves again).
    pub duration: Option<Duration>,
    /// From promotion until the router's health stream reports the new primary serving.
    pub health_delay: Duration,
    /// If set, the health stream reports the old primary not serving this long after
    /// `start`.
    pub not_serving_delay: Option<Duration>,
    /// After promotion, the new primary is advertised serving but still refuses writes for
    /// this long (read-only mode not cleared yet).
    pub read_only_lag: Duration,
}

impl Failover {
    /// The instant the primary accepts writes again, or `None` if never.
    pub fn writable_at(&self) -> Option<Duration> {
        Some(self.start + self.duration? + self.read_only_lag)
    }

    /// The instant the serving stamp of the new primary arrives, or `None` if never.
    pub fn serving_stamp_at(&self) -> Option<Duration> {
        Some(self.start + self.duration? + self.health_delay)
    }
}

/// Why a scenario file could not be used. `Display` names the file, and for a bad value the
/// line, column and key (from the TOML parser's span information).
#[derive(Debug)]
pub enum ScenarioError {
    /// The file could not be read.
    Io {
        /// The file.
        path: String,
        /// What went wrong.
        error: std::io::Error,
    },
    /// The file is not a valid scenario.
    Invalid {
        /// The file.
        path: String,
        /// The parser's report: line, column, the offending text and why.
        error: Box<toml::de::Error>,
    },
}

impl ScenarioError {
    /// The 1-based line and column of the problem, when known.
    pub fn line_column(&self, source: &str) -> Option<(usize, usize)> {
        let ScenarioError::Invalid { error, .. } = self else {
            return None;
        };
        let offset = error.span()?.start;
        let before = source.get(..offset)?;
        let line = before.matches('\n').count() + 1;
        let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
        Some((line, column))
    }
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScenarioError::Io { path, error } => write!(f, "{path}: {error}"),
            ScenarioError::Invalid { path, error } => write!(f, "{path}: {error}"),
        }
    }
}

impl std::error::Error for ScenarioError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ScenarioError::Io { error, .. } => Some(error),
            ScenarioError::Invalid { error, .. } => Some(error),
        }
    }
}

impl Scenario {
    /// The built-in scenario the binary runs without arguments: one shard (`commerce/0`) at
    /// 2,000 requests per second for 10 s, a 3-second planned failover from 2 s to 5 s with
    /// the new primary's serving stamp 100 ms after promotion, service times uniform in
    /// 1–3 ms, clients with a 30 s timeout and 3 attempts, and Vitess's default buffer
    /// config with buffering enabled. `sim/scenarios/default.toml` is the same as a file.
    pub fn default_scenario() -> Scenario {
        Scenario {
            name: "default".to_string(),
            seed: 1,
            duration: Duration::from_secs(10),
            client: Client::default(),
            service: ServiceTime::default(),
            shards: vec![ShardSpec {
                keyspace: "commerce".to_string(),
                shard: "0".to_string(),
                rate: 2000.0,
                arrivals: Vec::new(),
                failovers: vec![Failover {
                    start: Duration::from_secs(2),
                    duration: Some(Duration::from_secs(3)),
                    health_delay: Duration::from_millis(100),
                    not_serving_delay: None,
                    read_only_lag: Duration::ZERO,
                }],
            }],
            buffer: enabled_vitess_defaults(),
            objective: Some(Objective {
                errors: Some(0),
                added_latency_p99: Some(Duration::from_millis(3500)),
                added_latency_max: None,
                drain_time: Some(Duration::from_secs(1)),
                size: None,
            }),
        }
    }

    /// Reads and checks a scenario file. Nothing is returned from a file with any problem.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Scenario, ScenarioError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|error| ScenarioError::Io {
            path: path.display().to_string(),
            error,
        })?;
        let mut scenario = Scenario::from_toml_str(&text, &path.display().to_string())?;
        if scenario.name.is_empty() {
            scenario.name = path
                .file_stem()
                .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
        }
        Ok(scenario)
    }

    /// Parses and checks a scenario from TOML text; `origin` names it in errors. A file that
    /// names no scenario gets an empty `name` (see [`Scenario::from_file`]).
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Scenario, ScenarioError> {
        let raw: RawScenario = toml::from_str(text).map_err(|error| ScenarioError::Invalid {
            path: origin.to_string(),
            error: Box::new(error),
        })?;
        Ok(raw.into())
    }

    /// A one-line description of the traffic and failovers, for report headers.
    pub fn summary(&self) -> String {
        let rate: f64 = self.shards.iter().map(|s| s.rate).sum();
        let mut text = format!(
            "{} shard{}, {} req/s Poisson for {}",
            self.shards.len(),
            if self.shards.len() == 1 { "" } else { "s" },
            rate,
            format_duration(self.duration)
        );
        for shard in &self.shards {
            for f in &shard.failovers {
                let what = match f.duration {
                    Some(d) => format!("{} failover", format_duration(d)),
                    None => "failed failover (never ends)".to_string(),
                };
                text.push_str(&format!(
                    "; {}/{}: {what} at {}",
                    shard.keyspace,
                    shard.shard,
                    format_duration(f.start)
                ));
                if !f.read_only_lag.is_zero() {
                    text.push_str(&format!(
                        ", read-only lag {}",
                        format_duration(f.read_only_lag)
                    ));
                }
            }
        }
        text
    }
}

/// Vitess's defaults with buffering enabled: the "vitess defaults" column of a report, and
/// the default `[buffer]` of a scenario.
pub fn enabled_vitess_defaults() -> Config {
    Config {
        enabled: true,
        ..Config::default()
    }
}

/// The buffer config keys a scenario's `[buffer]` table and `--sweep` accept, in order.
pub const BUFFER_KEYS: &[&str] = &[
    "enabled",
    "dry_run",
    "size",
    "window",
    "max_failover_duration",
    "min_time_between_failovers",
    "drain_concurrency",
    "drain_backoff",
    "keyspace_shards",
];

/// Sets one buffer config key from text, as `--sweep` does: booleans are `true`/`false`,
/// counts are integers, durations are as in [`parse_duration`], `keyspace_shards` is
/// Vitess's comma-separated list. The config is not validated here; see
/// [`validate_buffer`].
///
/// ```
/// use failover_buffer_sim::{enabled_vitess_defaults, set_buffer_key};
///
/// let mut config = enabled_vitess_defaults();
/// set_buffer_key(&mut config, "window", "5s")?;
/// set_buffer_key(&mut config, "size", "5000")?;
/// assert_eq!(config.size, 5000);
/// assert!(set_buffer_key(&mut config, "sise", "1").is_err());
/// # Ok::<(), failover_buffer_sim::BufferKeyError>(())
/// ```
pub fn set_buffer_key(config: &mut Config, key: &str, value: &str) -> Result<(), BufferKeyError> {
    let int = || {
        value.parse().map_err(|_| BufferKeyError::NotAWholeNumber {
            key: key.to_string(),
            value: value.to_string(),
        })
    };
    let boolean = || {
        value.parse().map_err(|_| BufferKeyError::NotABool {
            key: key.to_string(),
            value: value.to_string(),
        })
    };
    let duration = || {
        parse_duration(value).map_err(|error| BufferKeyError::Duration {
            key: key.to_string(),
            error,
        })
    };
    match key {
        "enabled" => config.enabled = boolean()?,
        "dry_run" => config.dry_run = boolean()?,
        "size" => config.size = int()?,
        "window" => config.window = duration()?,
        "max_failover_duration" => config.max_failover_duration = duration()?,
        "min_time_between_failovers" => config.min_time_between_failovers = duration()?,
        "drain_concurrency" => config.drain_concurrency = int()?,
        "drain_backoff" => config.drain_backoff = duration()?,
        "keyspace_shards" => {
            config.filter =
                value
                    .parse::<ShardFilter>()
                    .map_err(|error| BufferKeyError::Filter {
                        key: key.to_string(),
                        error,
                    })?;
        }
        _ => return Err(BufferKeyError::UnknownKey(key.to_string())),
    }
    Ok(())
}

/// Checks a buffer config, naming the key at fault in the error: `"window: buffer window
/// must be <= max failover duration: ..."`.
#[allow(
    unreachable_patterns,
    reason = "the core's enums become #[non_exhaustive]; until then the wildcard is unreachable"
)]
pub fn validate_buffer(config: &Config) -> Result<(), BufferKeyError> {
    config.validate().map_err(|error| {
        let key = match error {
            ConfigError::WindowZero | ConfigError::WindowExceedsMaxFailoverDuration { .. } => {
                "window"
            }
            ConfigError::SizeZero | ConfigError::SizeTooLarge(_) => "size",
            ConfigError::MinTimeBetweenFailoversTooShort(_) => "min_time_between_failovers",
            ConfigError::DrainConcurrencyZero => "drain_concurrency",
            ConfigError::DrainBackoffZero => "drain_backoff",
            ConfigError::FilterRequiresEnabled => "keyspace_shards",
            ConfigError::DryRunAndEnabledWithoutFilter => "dry_run",
            _ => "buffer",
        };
        BufferKeyError::Invalid { key, error }
    })
}

// ---------------------------------------------------------------------------------------
// The file format. Each table is read into a `Raw*` struct that refuses unknown keys, then
// checked by a `TryFrom` while the parser still knows where the table is: so an error points
// at the line of the value or table at fault.

/// A duration written as a string with a unit.
#[derive(Clone, Copy, Debug)]
struct Dur(Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Dur;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration string such as \"250ms\" or \"10s\"")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Dur, E> {
                parse_duration(v).map(Dur).map_err(E::custom)
            }
        }
        d.deserialize_str(Visitor)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    #[serde(default)]
    name: String,
    #[serde(default = "default_seed")]
    seed: u64,
    #[serde(default = "default_duration")]
    duration: Dur,
    #[serde(default)]
    client: ClientToml,
    #[serde(default)]
    service: ServiceToml,
    shards: Shards,
    #[serde(default)]
    buffer: BufferToml,
    objective: Option<ObjectiveToml>,
}

fn default_seed() -> u64 {
    1
}

fn default_duration() -> Dur {
    Dur(Duration::from_secs(10))
}

impl From<RawScenario> for Scenario {
    fn from(raw: RawScenario) -> Scenario {
        Scenario {
            name: raw.name,
            seed: raw.seed,
            duration: raw.duration.0,
            client: raw.client.0,
            service: raw.service.0,
            shards: raw.shards.0,
            buffer: raw.buffer.0,
            objective: raw.objective.map(|o| o.0),
        }
    }
}

#[derive(Default, Deserialize)]
#[serde(try_from = "RawClient")]
struct ClientToml(Client);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClient {
    timeout: Option<Dur>,
    attempts: Option<u32>,
    retry_delay: Option<Dur>,
}

impl TryFrom<RawClient> for ClientToml {
    type Error = String;
    fn try_from(raw: RawClient) -> Result<Self, String> {
        let d = Client::default();
        let client = Client {
            timeout: raw.timeout.map_or(d.timeout, |t| t.0),
            attempts: raw.attempts.unwrap_or(d.attempts),
            retry_delay: raw.retry_delay.map_or(d.retry_delay, |t| t.0),
        };
        if client.attempts == 0 {
            return Err("client.attempts must be at least 1 (the first attempt counts)".into());
        }
        if client.timeout.is_zero() {
            return Err("client.timeout must be above zero".into());
        }
        Ok(ClientToml(client))
    }
}

#[derive(Default, Deserialize)]
#[serde(try_from = "RawService")]
struct ServiceToml(ServiceTime);

#[derive(Deserialize)]
#[serde(tag = "distribution", rename_all = "lowercase", deny_unknown_fields)]
enum RawService {
    Constant { time: Dur },
    Uniform { min: Dur, max: Dur },
    Exponential { mean: Dur },
}

impl TryFrom<RawService> for ServiceToml {
    type Error = String;
    fn try_from(raw: RawService) -> Result<Self, String> {
        Ok(ServiceToml(match raw {
            RawService::Constant { time } => ServiceTime::Constant(time.0),
            RawService::Uniform { min, max } => {
                if min.0 > max.0 {
                    return Err(format!(
                        "service.min ({}) is above service.max ({})",
                        format_duration(min.0),
                        format_duration(max.0)
                    ));
                }
                ServiceTime::Uniform {
                    min: min.0,
                    max: max.0,
                }
            }
            RawService::Exponential { mean } => {
                if mean.0.is_zero() {
                    return Err("service.mean must be above zero".into());
                }
                ServiceTime::Exponential { mean: mean.0 }
            }
        }))
    }
}

#[derive(Deserialize)]
#[serde(try_from = "Vec<ShardToml>")]
struct Shards(Vec<ShardSpec>);

impl TryFrom<Vec<ShardToml>> for Shards {
    type Error = String;
    fn try_from(shards: Vec<ShardToml>) -> Result<Self, String> {
        if shards.is_empty() {
            return Err("shards: at least one [[shards]] table is needed".into());
        }
        let shards: Vec<ShardSpec> = shards.into_iter().map(|s| s.0).collect();
        for (i, a) in shards.iter().enumerate() {
            if shards[..i]
                .iter()
                .any(|b| a.keyspace == b.keyspace && a.shard == b.shard)
            {
                return Err(format!(
                    "shards: {}/{} is listed twice",
                    a.keyspace, a.shard
                ));
            }
        }
        Ok(Shards(shards))
    }
}

#[derive(Deserialize)]
#[serde(try_from = "RawShard")]
struct ShardToml(ShardSpec);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawShard {
    name: String,
    #[serde(default)]
    rate: f64,
    #[serde(default)]
    arrivals: Vec<Dur>,
    #[serde(default)]
    failovers: Vec<FailoverToml>,
}

impl TryFrom<RawShard> for ShardToml {
    type Error = String;
    fn try_from(raw: RawShard) -> Result<Self, String> {
        let Some((keyspace, shard)) = raw.name.split_once('/') else {
            return Err(format!(
                "shards.name: {:?} is not \"keyspace/shard\"",
                raw.name
            ));
        };
        if keyspace.is_empty() || shard.is_empty() || shard.contains('/') {
            return Err(format!(
                "shards.name: {:?} is not \"keyspace/shard\"",
                raw.name
            ));
        }
        if !(raw.rate.is_finite() && raw.rate >= 0.0) {
            return Err(format!(
                "shards.rate: {} is not a rate (requests per second, 0 or more)",
                raw.rate
            ));
        }
        let failovers: Vec<Failover> = raw.failovers.into_iter().map(|f| f.0).collect();
        for pair in failovers.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            let Some(end) = a.writable_at() else {
                return Err(format!(
                    "shards.failovers: {}: only the last failover may never end",
                    raw.name
                ));
            };
            let quiet = end.max(a.serving_stamp_at().unwrap_or(end));
            if b.start < quiet {
                return Err(format!(
                    "shards.failovers: {}: the failover at {} starts before the one at {} is over ({})",
                    raw.name,
                    format_duration(b.start),
                    format_duration(a.start),
                    format_duration(quiet)
                ));
            }
        }
        let mut arrivals: Vec<Duration> = raw.arrivals.into_iter().map(|a| a.0).collect();
        arrivals.sort_unstable();
        Ok(ShardToml(ShardSpec {
            keyspace: keyspace.to_string(),
            shard: shard.to_string(),
            rate: raw.rate,
            arrivals,
            failovers,
        }))
    }
}

#[derive(Deserialize)]
#[serde(try_from = "RawFailover")]
struct FailoverToml(Failover);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFailover {
    start: Dur,
    duration: Option<Dur>,
    #[serde(default)]
    never_ends: bool,
    health_delay: Option<Dur>,
    not_serving_delay: Option<Dur>,
    read_only_lag: Option<Dur>,
}

impl TryFrom<RawFailover> for FailoverToml {
    type Error = String;
    fn try_from(raw: RawFailover) -> Result<Self, String> {
        let duration = match (raw.duration, raw.never_ends) {
            (Some(d), false) => Some(d.0),
            (None, true) => None,
            (Some(_), true) => {
                return Err(
                    "failovers: a failover that never_ends has no duration; remove one".into(),
                );
            }
            (None, false) => {
                return Err(
                    "failovers.duration is missing (or set never_ends = true for a failed failover)"
                        .into(),
                );
            }
        };
        if duration.is_none() && (raw.health_delay.is_some() || raw.read_only_lag.is_some()) {
            return Err(
                "failovers: a failover that never_ends has no promotion, so no health_delay or read_only_lag"
                    .into(),
            );
        }
        Ok(FailoverToml(Failover {
            start: raw.start.0,
            duration,
            health_delay: raw.health_delay.map_or(Duration::ZERO, |d| d.0),
            not_serving_delay: raw.not_serving_delay.map(|d| d.0),
            read_only_lag: raw.read_only_lag.map_or(Duration::ZERO, |d| d.0),
        }))
    }
}

#[derive(Deserialize)]
#[serde(try_from = "RawBuffer")]
struct BufferToml(Config);

impl Default for BufferToml {
    fn default() -> Self {
        BufferToml(enabled_vitess_defaults())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBuffer {
    enabled: Option<bool>,
    dry_run: Option<bool>,
    size: Option<usize>,
    window: Option<Dur>,
    max_failover_duration: Option<Dur>,
    min_time_between_failovers: Option<Dur>,
    drain_concurrency: Option<usize>,
    drain_backoff: Option<Dur>,
    keyspace_shards: Option<String>,
}

impl TryFrom<RawBuffer> for BufferToml {
    type Error = String;
    fn try_from(raw: RawBuffer) -> Result<Self, String> {
        let d = enabled_vitess_defaults();
        let filter = match raw.keyspace_shards {
            Some(list) => list
                .parse::<ShardFilter>()
                .map_err(|e| format!("buffer.keyspace_shards: {e}"))?,
            None => d.filter.clone(),
        };
        let config = Config {
            enabled: raw.enabled.unwrap_or(d.enabled),
            dry_run: raw.dry_run.unwrap_or(d.dry_run),
            size: raw.size.unwrap_or(d.size),
            window: raw.window.map_or(d.window, |v| v.0),
            max_failover_duration: raw
                .max_failover_duration
                .map_or(d.max_failover_duration, |v| v.0),
            min_time_between_failovers: raw
                .min_time_between_failovers
                .map_or(d.min_time_between_failovers, |v| v.0),
            drain_concurrency: raw.drain_concurrency.unwrap_or(d.drain_concurrency),
            drain_backoff: raw.drain_backoff.map_or(d.drain_backoff, |v| v.0),
            filter,
        };
        validate_buffer(&config).map_err(|e| format!("buffer.{e}"))?;
        Ok(BufferToml(config))
    }
}

#[derive(Deserialize)]
#[serde(try_from = "RawObjective")]
struct ObjectiveToml(Objective);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawObjective {
    errors: Option<u64>,
    added_latency_p99: Option<Dur>,
    added_latency_max: Option<Dur>,
    drain_time: Option<Dur>,
    size: Option<usize>,
}

impl TryFrom<RawObjective> for ObjectiveToml {
    type Error = String;
    fn try_from(raw: RawObjective) -> Result<Self, String> {
        if raw.size == Some(0) {
            return Err("objective.size: a buffer has at least 1 slot".into());
        }
        Ok(ObjectiveToml(Objective {
            errors: raw.errors,
            added_latency_p99: raw.added_latency_p99.map(|d| d.0),
            added_latency_max: raw.added_latency_max.map(|d| d.0),
            drain_time: raw.drain_time.map(|d| d.0),
            size: raw.size,
        }))
    }
}
