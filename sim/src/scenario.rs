//! What is simulated: traffic, the client, the failovers, and the buffer's config.
//!
//! A [`Scenario`] is read from a TOML file ([`Scenario::from_file`]) or built in Rust
//! ([`Scenario::default_scenario`]). The file format is documented in the crate's README; in
//! short, durations are strings with a unit (`"250ms"`, `"10s"`), every key but `shards` is
//! optional, and unknown keys are errors.

use core::fmt;
use core::time::Duration;
use std::path::{Path, PathBuf};

use failover_buffer::{Config, ConfigError, Eviction, ShardFilter};
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
    /// Routers, each with its own buffer (of `buffer`'s config), sharing every shard's
    /// traffic round-robin: request *k* of a shard goes to router *k* mod `routers`. Each
    /// router has its own health stream. 1 by default.
    pub routers: u32,
    /// How the application's client behaves.
    pub client: Client,
    /// How requests are sent: open loop (every shard's Poisson `rate`, the default) or a
    /// fixed set of connections, each waiting for its answer before the next request (the
    /// `[traffic]` table).
    pub traffic: Traffic,
    /// How long the primary takes to answer one attempt (a shard may have its own).
    pub service: ServiceTime,
    /// How the health stream loses messages.
    pub health: Health,
    /// The shards, with their traffic and failovers.
    pub shards: Vec<ShardSpec>,
    /// The buffer's config for the scenario's own run.
    pub buffer: Config,
    /// What `--recommend` must meet, if the scenario says.
    pub objective: Option<Objective>,
    /// A request trace to replay instead of the shards' `rate` and `arrivals` (see
    /// [`TraceReader`](crate::TraceReader)); read as the run goes, never whole.
    pub trace: Option<PathBuf>,
    /// Every router's buffer shuts down at `begin`, and the shutdown is called off at
    /// `cancel` if one is given (the `[shutdown]` table). `None`: no shutdown.
    pub shutdown: Option<ShutdownSpec>,
    /// Planned operator pauses of the routers' buffers (the `[[pause]]` tables), in the
    /// order given.
    pub pauses: Vec<PauseSpec>,
}

/// A planned operator pause of every router's buffer ([`Buffer::pause`](failover_buffer::Buffer::pause)):
/// a `[[pause]]` table, `start = "1s"`, `shard = "commerce/0"` (or `"all"`), `max = "30s"`,
/// and optionally `resume = "3s"` (not before `start`), when the operator resumes it. With
/// no `resume`, or one after `start + max`, the pause ends by itself at `start + max`. A
/// buffer that refuses it (buffering disabled or dry-run, `max` above the `[buffer]`'s
/// `max_pause`, a shutdown under way) holds nothing for it; the report counts the refusal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PauseSpec {
    /// When `Buffer::pause` is called.
    pub start: Duration,
    /// The shard, as `keyspace/shard`; `None` for every shard (`shard = "all"`).
    pub shard: Option<String>,
    /// The pause's bound.
    pub max: Duration,
    /// When `Buffer::resume` is called, if ever.
    pub resume: Option<Duration>,
}

/// When the routers' buffers shut down, and when that is called off: the `[shutdown]`
/// table, `begin = "4s"` and optionally `cancel = "4.5s"` (after `begin`). A cancel after
/// the buffer has closed is refused and changes nothing; the report says so.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShutdownSpec {
    /// When `Buffer::shutdown` is called.
    pub begin: Duration,
    /// When `Buffer::cancel_shutdown` is called, if ever.
    pub cancel: Option<Duration>,
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
    /// Memory: at most this many bytes of queued requests in one router at once (from a
    /// trace's `size` column).
    pub held_bytes: Option<u64>,
}

/// The health stream's reliability. Each router has its own stream, and loses each stamp
/// of a failover (not the first, at time zero) independently.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Health {
    /// The probability that a router never receives a stamp, 0 to 1 (drawn from the seed,
    /// one draw per stamp and router). A lost serving stamp leaves that router's buffer to
    /// end the episode at `max_failover_duration`; a lost not-serving stamp delays the start
    /// of buffering during a write pause.
    pub loss: f64,
}

/// How the application sends requests: the `[traffic]` table.
///
/// By default traffic is *open loop*: each shard's requests arrive at its Poisson `rate`
/// whatever happens to earlier ones, as from many independent clients. With `connections`
/// set it is *closed loop*, as from a connection pool: each connection sends one request,
/// waits for its answer (however long the buffer holds it, and whether it succeeds or
/// fails), waits `think_time`, then sends the next, until `duration`. A failover then holds
/// at most one request per connection, and a connection held on one shard sends nothing to
/// the others meanwhile.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Traffic {
    /// Closed-loop connections, or `None` for open-loop traffic. With connections, each
    /// request goes to a shard drawn with the shards' `rate` as weights (all zero: equal
    /// shares), and the rates say nothing else; `arrivals` lists still add their requests.
    /// Connection *i* of *n* sends its first request at *i*/*n* of one cycle (the mean
    /// service time plus `think_time`), so they do not move in step.
    pub connections: Option<u32>,
    /// Closed loop: from a request's answer to the connection's next request (the client's
    /// own time between commands).
    pub think_time: Duration,
    /// The share of requests, 0 to 1, the router may not replay once sent (an `INCR` under
    /// the Redis router's replay rule): one in flight on a primary that dies
    /// ([`Failover::killed`]) fails with an `uncertain` error instead of being retried. The
    /// others, like every request refused before it ran, are failover errors the buffer
    /// holds. Drawn per request from the seed.
    pub non_idempotent: f64,
}

/// How a client spaces the retries the buffer does not hold.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Backoff {
    /// Every retry waits `retry_delay`.
    #[default]
    Fixed,
    /// Retry *n* (from 1) waits `retry_delay` × 2^(*n*−1), at most `max`.
    Exponential {
        /// The longest wait.
        max: Duration,
    },
}

/// Randomness added to each retry's wait (drawn from the seed, so runs repeat).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Jitter {
    /// The wait as the back-off says.
    #[default]
    None,
    /// Uniform between zero and the wait ("full jitter").
    Full,
    /// Half the wait, plus uniform between zero and the other half ("equal jitter").
    Equal,
}

/// The application's client and the router's retry policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Client {
    /// From arrival, the longest the application waits for an answer. A request still held
    /// (or in flight) then is cancelled and counts as a `timeout` error.
    pub timeout: Duration,
    /// Attempts per request, the first included (Vitess's gateway: `retry_count` 2, so 3).
    pub attempts: u32,
    /// Pause between a failed attempt and the next one when the buffer does not hold it
    /// (the base of an exponential back-off).
    pub retry_delay: Duration,
    /// How the pause grows from retry to retry.
    pub backoff: Backoff,
    /// Randomness added to the pause.
    pub jitter: Jitter,
}

impl Default for Client {
    fn default() -> Self {
        Client {
            timeout: Duration::from_secs(30),
            attempts: 3,
            retry_delay: Duration::ZERO,
            backoff: Backoff::Fixed,
            jitter: Jitter::None,
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
    /// Its own service time, instead of the scenario's.
    pub service: Option<ServiceTime>,
    /// Failovers, in order, not overlapping.
    pub failovers: Vec<Failover>,
    /// Topology changes (resharding, MoveTables), in order, not overlapping each other or
    /// a failover.
    pub topology: Vec<TopologyChange>,
}

/// What kind of topology change; see [`TopologyChange`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TopologyKind {
    /// A resharding cut-over: writes are refused ("keyspace is being resharded") until
    /// the router learns the shard is gone (`TopologyEvent::ShardMissing`); requests are
    /// then re-planned to the new shards, which serve.
    Resharding,
    /// A MoveTables switch: writes are refused ("disallowed due to rule") until the router
    /// learns traffic switched (`TopologyEvent::TrafficSwitched`); requests are then sent to
    /// the target keyspace, which serves.
    MoveTables,
}

/// A topology change of a shard: refused writes from `start` for `duration`, then the
/// topology event, then a destination that serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TopologyChange {
    /// What changes.
    pub kind: TopologyKind,
    /// When writes start being refused.
    pub start: Duration,
    /// How long until the switch, when the event reaches every router.
    pub duration: Duration,
}

/// A primary that is slow after a failover: its service times are multiplied by `factor`
/// for `lasts`, from when it first serves (a cold cache, a warming buffer pool).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ColdPrimary {
    /// The multiplier, at least 1.
    pub factor: f64,
    /// How long it lasts.
    pub lasts: Duration,
}

/// One failover of a shard's primary.
#[derive(Clone, Copy, Debug, PartialEq)]
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
    /// A failover that first pauses writes (Redis `FAILOVER`, `CLIENT PAUSE WRITE`): for
    /// this long from `start`, attempts hang, then are refused (`-READONLY`) when the pause
    /// ends; and refusals go on until the router sees the new primary (its serving stamp),
    /// not merely until promotion. A router that got the not-serving stamp stops sending
    /// during the pause and fails attempts at once. Zero for none.
    pub write_pause: Duration,
    /// After the failover, the new primary is slow for a while.
    pub cold: Option<ColdPrimary>,
    /// The serving stamp never arrives, at any router.
    pub serving_stamp_lost: bool,
    /// The not-serving stamp never arrives, at any router.
    pub not_serving_stamp_lost: bool,
    /// The primary dies at `start` (a `SIGKILL`, a crashed host) instead of refusing only
    /// new attempts: attempts in flight on it then fail at `start` with a failover error,
    /// their connections reset. Attempts go on being refused until the router sees the new
    /// primary (its serving stamp), not merely until promotion: a router sends to the dead
    /// primary until it learns of another. Those the router may replay are retried (and held) like any
    /// refused attempt; a [non-idempotent](Traffic::non_idempotent) one ends as
    /// `uncertain`. Without it, an attempt sent before `start` is served.
    pub killed: bool,
    /// How long an attempt the failing primary refuses takes, instead of the attempt's
    /// service time: a killed primary's closed port refuses a connection in well under a
    /// millisecond, so clients without a buffer cycle through errors much faster than
    /// through answers. `None`: the service time. Never zero.
    pub refuse_time: Option<Duration>,
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

    /// When the shard is quiet again, with the serving stamp delivered and the cold spell
    /// over, or `None` if never: the next failover may start from here.
    pub fn quiet_at(&self) -> Option<Duration> {
        let writable = self.writable_at()?;
        let mut end = writable.max(self.serving_stamp_at().unwrap_or(writable));
        if let Some(cold) = self.cold {
            end += cold.lasts;
        }
        Some(end)
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
            routers: 1,
            client: Client::default(),
            traffic: Traffic::default(),
            service: ServiceTime::default(),
            health: Health::default(),
            shards: vec![ShardSpec {
                keyspace: "commerce".to_string(),
                shard: "0".to_string(),
                rate: 2000.0,
                arrivals: Vec::new(),
                service: None,
                failovers: vec![Failover {
                    start: Duration::from_secs(2),
                    duration: Some(Duration::from_secs(3)),
                    health_delay: Duration::from_millis(100),
                    not_serving_delay: None,
                    read_only_lag: Duration::ZERO,
                    write_pause: Duration::ZERO,
                    cold: None,
                    serving_stamp_lost: false,
                    not_serving_stamp_lost: false,
                    killed: false,
                    refuse_time: None,
                }],
                topology: Vec::new(),
            }],
            buffer: enabled_vitess_defaults(),
            objective: Some(Objective {
                errors: Some(0),
                added_latency_p99: Some(Duration::from_millis(3500)),
                added_latency_max: None,
                drain_time: Some(Duration::from_secs(1)),
                size: None,
                held_bytes: None,
            }),
            trace: None,
            shutdown: None,
            pauses: Vec::new(),
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
        let scenario: Scenario = raw.into();
        // A pause names a shard of the scenario.
        for pause in &scenario.pauses {
            if let Some(name) = &pause.shard {
                if !scenario
                    .shards
                    .iter()
                    .any(|s| format!("{}/{}", s.keyspace, s.shard) == *name)
                {
                    return Err(ScenarioError::Invalid {
                        path: origin.to_string(),
                        error: Box::new(<toml::de::Error as serde::de::Error>::custom(format!(
                            "pause.shard: {name:?} is not in the scenario (name it in a \
                             [[shards]] table, or say \"all\")"
                        ))),
                    });
                }
            }
        }
        Ok(scenario)
    }

    /// A one-line description of the traffic and failovers, for report headers.
    pub fn summary(&self) -> String {
        let rate: f64 = self.shards.iter().map(|s| s.rate).sum();
        let shards = format!(
            "{} shard{}",
            self.shards.len(),
            if self.shards.len() == 1 { "" } else { "s" }
        );
        let mut text = match (&self.trace, self.traffic.connections) {
            (Some(path), _) => format!("{shards}, requests from {}", path.display()),
            (None, Some(n)) => format!(
                "{shards}, {n} closed-loop connection{} (think time {}) for {}",
                if n == 1 { "" } else { "s" },
                format_duration(self.traffic.think_time),
                format_duration(self.duration)
            ),
            (None, None) => format!(
                "{shards}, {rate} req/s Poisson for {}",
                format_duration(self.duration)
            ),
        };
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
                if !f.write_pause.is_zero() {
                    text.push_str(&format!(
                        ", writes paused {}",
                        format_duration(f.write_pause)
                    ));
                }
                if let Some(cold) = f.cold {
                    text.push_str(&format!(
                        ", cold primary x{} for {}",
                        cold.factor,
                        format_duration(cold.lasts)
                    ));
                }
                if f.serving_stamp_lost {
                    text.push_str(", serving stamp lost");
                }
                if f.not_serving_stamp_lost {
                    text.push_str(", not-serving stamp lost");
                }
                if f.killed {
                    text.push_str(", primary killed");
                }
            }
            for t in &shard.topology {
                let what = match t.kind {
                    TopologyKind::Resharding => "resharding",
                    TopologyKind::MoveTables => "MoveTables switch",
                };
                text.push_str(&format!(
                    "; {}/{}: {what} at {} for {}",
                    shard.keyspace,
                    shard.shard,
                    format_duration(t.start),
                    format_duration(t.duration)
                ));
            }
        }
        if self.routers > 1 {
            text.push_str(&format!("; {} routers", self.routers));
        }
        if self.traffic.non_idempotent > 0.0 {
            text.push_str(&format!(
                "; {}% of requests not replayable",
                self.traffic.non_idempotent * 100.0
            ));
        }
        if self.health.loss > 0.0 {
            text.push_str(&format!("; health stamps lost with p={}", self.health.loss));
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
    "shutdown_grace",
    "eviction",
    "max_per_shard",
    "max_bytes",
    "max_pause",
];

/// Sets one buffer config key from text, as `--sweep` does: booleans are `true`/`false`,
/// counts are integers, durations are as in [`parse_duration`], `keyspace_shards` is
/// Vitess's comma-separated list, `eviction` is `oldest_of_shard`, `oldest_anywhere` or
/// `reject_new`, and `max_per_shard` and `max_bytes` are counts or `none`. The config is not validated here;
/// see [`validate_buffer`].
///
/// ```
/// use failover_buffer_sim::{enabled_vitess_defaults, set_buffer_key};
///
/// let mut config = enabled_vitess_defaults();
/// set_buffer_key(&mut config, "window", "5s")?;
/// set_buffer_key(&mut config, "size", "5000")?;
/// assert_eq!(config.size, 5000);
/// set_buffer_key(&mut config, "eviction", "oldest_anywhere")?;
/// set_buffer_key(&mut config, "max_per_shard", "2500")?;
/// assert_eq!(config.max_per_shard, Some(2500));
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
        "shutdown_grace" => config.shutdown_grace = duration()?,
        "max_pause" => config.max_pause = duration()?,
        "eviction" => {
            config.eviction = value.parse().map_err(|_| BufferKeyError::UnknownEviction {
                key: key.to_string(),
                value: value.to_string(),
            })?;
        }
        "max_per_shard" => {
            config.max_per_shard = match value {
                "none" => None,
                _ => Some(int()?),
            };
        }
        "max_bytes" => {
            config.max_bytes = match value {
                "none" => None,
                _ => Some(value.parse().map_err(|_| BufferKeyError::NotAWholeNumber {
                    key: key.to_string(),
                    value: value.to_string(),
                })?),
            };
        }
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
            ConfigError::ShutdownGraceZero => "shutdown_grace",
            ConfigError::MaxPerShardZero => "max_per_shard",
            ConfigError::MaxBytesZero | ConfigError::MaxBytesTooLarge(_) => "max_bytes",
            ConfigError::MaxPauseZero => "max_pause",
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
    #[serde(default = "default_routers")]
    routers: Routers,
    #[serde(default)]
    client: ClientToml,
    #[serde(default)]
    traffic: TrafficToml,
    #[serde(default)]
    service: ServiceToml,
    #[serde(default)]
    health: HealthToml,
    shards: Shards,
    #[serde(default)]
    buffer: BufferToml,
    objective: Option<ObjectiveToml>,
    shutdown: Option<ShutdownToml>,
    #[serde(default)]
    pause: Vec<PauseToml>,
}

#[derive(Deserialize)]
#[serde(try_from = "RawPause")]
struct PauseToml(PauseSpec);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPause {
    start: Dur,
    shard: String,
    max: Dur,
    resume: Option<Dur>,
}

impl TryFrom<RawPause> for PauseToml {
    type Error = String;
    fn try_from(raw: RawPause) -> Result<Self, String> {
        if raw.max.0.is_zero() {
            return Err("pause.max must be > 0".to_string());
        }
        if let Some(resume) = raw.resume {
            if resume.0 < raw.start.0 {
                return Err(format!(
                    "pause.resume ({}) is before pause.start ({})",
                    format_duration(resume.0),
                    format_duration(raw.start.0)
                ));
            }
        }
        Ok(PauseToml(PauseSpec {
            start: raw.start.0,
            shard: (raw.shard != "all").then_some(raw.shard),
            max: raw.max.0,
            resume: raw.resume.map(|r| r.0),
        }))
    }
}

#[derive(Deserialize)]
#[serde(try_from = "RawShutdown")]
struct ShutdownToml(ShutdownSpec);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawShutdown {
    begin: Dur,
    cancel: Option<Dur>,
}

impl TryFrom<RawShutdown> for ShutdownToml {
    type Error = String;
    fn try_from(raw: RawShutdown) -> Result<Self, String> {
        if let Some(cancel) = raw.cancel {
            if cancel.0 < raw.begin.0 {
                return Err(format!(
                    "shutdown.cancel ({}) is before shutdown.begin ({})",
                    format_duration(cancel.0),
                    format_duration(raw.begin.0)
                ));
            }
        }
        Ok(ShutdownToml(ShutdownSpec {
            begin: raw.begin.0,
            cancel: raw.cancel.map(|c| c.0),
        }))
    }
}

fn default_seed() -> u64 {
    1
}

fn default_routers() -> Routers {
    Routers(1)
}

#[derive(Deserialize)]
#[serde(try_from = "u32")]
struct Routers(u32);

impl TryFrom<u32> for Routers {
    type Error = String;
    fn try_from(n: u32) -> Result<Self, String> {
        if n == 0 {
            return Err("routers: at least 1".into());
        }
        Ok(Routers(n))
    }
}

#[derive(Default, Deserialize)]
#[serde(try_from = "RawHealth")]
struct HealthToml(Health);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHealth {
    #[serde(default)]
    loss: f64,
}

impl TryFrom<RawHealth> for HealthToml {
    type Error = String;
    fn try_from(raw: RawHealth) -> Result<Self, String> {
        if !(0.0..=1.0).contains(&raw.loss) {
            return Err(format!(
                "health.loss: {} is not a probability (0 to 1)",
                raw.loss
            ));
        }
        Ok(HealthToml(Health { loss: raw.loss }))
    }
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
            routers: raw.routers.0,
            client: raw.client.0,
            traffic: raw.traffic.0,
            service: raw.service.0,
            health: raw.health.0,
            shards: raw.shards.0,
            buffer: raw.buffer.0,
            objective: raw.objective.map(|o| o.0),
            trace: None,
            shutdown: raw.shutdown.map(|s| s.0),
            pauses: raw.pause.into_iter().map(|p| p.0).collect(),
        }
    }
}

#[derive(Default, Deserialize)]
#[serde(try_from = "RawTraffic")]
struct TrafficToml(Traffic);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTraffic {
    connections: Option<u32>,
    think_time: Option<Dur>,
    #[serde(default)]
    non_idempotent: f64,
}

impl TryFrom<RawTraffic> for TrafficToml {
    type Error = String;
    fn try_from(raw: RawTraffic) -> Result<Self, String> {
        if raw.connections == Some(0) {
            return Err(
                "traffic.connections: at least 1 (or leave it out for open-loop traffic)".into(),
            );
        }
        if raw.connections.is_none() && raw.think_time.is_some() {
            return Err(
                "traffic.think_time is for closed-loop traffic: set traffic.connections".into(),
            );
        }
        if !(0.0..=1.0).contains(&raw.non_idempotent) {
            return Err(format!(
                "traffic.non_idempotent: {} is not a share (0 to 1)",
                raw.non_idempotent
            ));
        }
        Ok(TrafficToml(Traffic {
            connections: raw.connections,
            think_time: raw.think_time.map_or(Duration::ZERO, |d| d.0),
            non_idempotent: raw.non_idempotent,
        }))
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
    backoff: Option<String>,
    max_retry_delay: Option<Dur>,
    jitter: Option<String>,
}

impl TryFrom<RawClient> for ClientToml {
    type Error = String;
    fn try_from(raw: RawClient) -> Result<Self, String> {
        let d = Client::default();
        let client = Client {
            timeout: raw.timeout.map_or(d.timeout, |t| t.0),
            attempts: raw.attempts.unwrap_or(d.attempts),
            retry_delay: raw.retry_delay.map_or(d.retry_delay, |t| t.0),
            backoff: match (raw.backoff.as_deref(), raw.max_retry_delay) {
                (None | Some("fixed"), None) => Backoff::Fixed,
                (None | Some("fixed"), Some(_)) => {
                    return Err("client.max_retry_delay is for backoff = \"exponential\"".into());
                }
                (Some("exponential"), max) => Backoff::Exponential {
                    max: max.map_or(Duration::MAX, |m| m.0),
                },
                (Some(other), _) => {
                    return Err(format!(
                        "client.backoff: {other:?} is not \"fixed\" or \"exponential\""
                    ));
                }
            },
            jitter: match raw.jitter.as_deref() {
                None | Some("none") => Jitter::None,
                Some("full") => Jitter::Full,
                Some("equal") => Jitter::Equal,
                Some(other) => {
                    return Err(format!(
                        "client.jitter: {other:?} is not \"none\", \"full\" or \"equal\""
                    ));
                }
            },
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
    service: Option<ServiceToml>,
    #[serde(default)]
    failovers: Vec<FailoverToml>,
    #[serde(default)]
    topology: Vec<TopologyToml>,
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
        let topology: Vec<TopologyChange> = raw.topology.into_iter().map(|t| t.0).collect();
        check_timeline(&raw.name, &failovers, &topology)?;
        let mut arrivals: Vec<Duration> = raw.arrivals.into_iter().map(|a| a.0).collect();
        arrivals.sort_unstable();
        Ok(ShardToml(ShardSpec {
            keyspace: keyspace.to_string(),
            shard: shard.to_string(),
            rate: raw.rate,
            arrivals,
            service: raw.service.map(|s| s.0),
            failovers,
            topology,
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
    write_pause: Option<Dur>,
    cold_factor: Option<f64>,
    cold_for: Option<Dur>,
    #[serde(default)]
    serving_stamp_lost: bool,
    #[serde(default)]
    not_serving_stamp_lost: bool,
    #[serde(default)]
    killed: bool,
    refuse_time: Option<Dur>,
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
        let cold = match (raw.cold_factor, raw.cold_for) {
            (None, None) => None,
            (Some(factor), Some(lasts)) => {
                if !(factor.is_finite() && factor >= 1.0) {
                    return Err(format!(
                        "failovers.cold_factor: {factor} is not a slowdown (a number >= 1)"
                    ));
                }
                Some(ColdPrimary {
                    factor,
                    lasts: lasts.0,
                })
            }
            _ => return Err("failovers: cold_factor and cold_for go together".into()),
        };
        if duration.is_none() && cold.is_some() {
            return Err(
                "failovers: a failover that never_ends has no new primary to be cold".into(),
            );
        }
        let write_pause = raw.write_pause.map_or(Duration::ZERO, |d| d.0);
        if raw.refuse_time.is_some_and(|d| d.0.is_zero()) {
            return Err(
                "failovers.refuse_time must be above zero (a closed loop would spin at one instant)"
                    .into(),
            );
        }
        if raw.killed && !write_pause.is_zero() {
            return Err(
                "failovers: a killed primary does not pause writes first; choose killed or write_pause"
                    .into(),
            );
        }
        if let Some(d) = duration {
            if write_pause > d {
                return Err(format!(
                    "failovers.write_pause ({}) is longer than the failover ({})",
                    format_duration(write_pause),
                    format_duration(d)
                ));
            }
        }
        Ok(FailoverToml(Failover {
            start: raw.start.0,
            duration,
            health_delay: raw.health_delay.map_or(Duration::ZERO, |d| d.0),
            not_serving_delay: raw.not_serving_delay.map(|d| d.0),
            read_only_lag: raw.read_only_lag.map_or(Duration::ZERO, |d| d.0),
            write_pause,
            cold,
            serving_stamp_lost: raw.serving_stamp_lost,
            not_serving_stamp_lost: raw.not_serving_stamp_lost,
            killed: raw.killed,
            refuse_time: raw.refuse_time.map(|d| d.0),
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
    proactive_start: Option<bool>,
    shutdown_grace: Option<Dur>,
    eviction: Option<String>,
    max_per_shard: Option<usize>,
    max_bytes: Option<u64>,
    max_pause: Option<Dur>,
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
            proactive_start: raw.proactive_start.unwrap_or(d.proactive_start),
            shutdown_grace: raw.shutdown_grace.map_or(d.shutdown_grace, |v| v.0),
            eviction: match raw.eviction {
                Some(name) => name
                    .parse::<Eviction>()
                    .map_err(|e| format!("buffer.eviction: {e}"))?,
                None => d.eviction,
            },
            max_per_shard: raw.max_per_shard.or(d.max_per_shard),
            max_bytes: raw.max_bytes.or(d.max_bytes),
            max_pause: raw.max_pause.map_or(d.max_pause, |v| v.0),
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
    held_bytes: Option<u64>,
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
            held_bytes: raw.held_bytes,
        }))
    }
}

#[derive(Deserialize)]
#[serde(try_from = "RawTopology")]
struct TopologyToml(TopologyChange);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTopology {
    kind: String,
    start: Dur,
    duration: Dur,
}

impl TryFrom<RawTopology> for TopologyToml {
    type Error = String;
    fn try_from(raw: RawTopology) -> Result<Self, String> {
        let kind = match raw.kind.as_str() {
            "resharding" => TopologyKind::Resharding,
            "move_tables" => TopologyKind::MoveTables,
            other => {
                return Err(format!(
                    "topology.kind: {other:?} is not \"resharding\" or \"move_tables\""
                ));
            }
        };
        Ok(TopologyToml(TopologyChange {
            kind,
            start: raw.start.0,
            duration: raw.duration.0,
        }))
    }
}

/// Checks a shard's timeline: failovers in order and not overlapping (the next starts after
/// the previous one is quiet), only the last never ending, and topology changes overlapping
/// neither a failover nor each other. `name` names the shard in the error.
pub(crate) fn check_timeline(
    name: &str,
    failovers: &[Failover],
    topology: &[TopologyChange],
) -> Result<(), String> {
    for f in failovers {
        match f.duration {
            Some(d) if f.write_pause > d => {
                return Err(format!(
                    "shards.failovers: {name}: write_pause ({}) is longer than the failover ({})",
                    format_duration(f.write_pause),
                    format_duration(d)
                ));
            }
            None if f.cold.is_some() => {
                return Err(format!(
                    "shards.failovers: {name}: a failover that never ends has no new primary to be cold"
                ));
            }
            _ => {}
        }
    }
    for pair in failovers.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        let Some(quiet) = a.quiet_at() else {
            return Err(format!(
                "shards.failovers: {name}: only the last failover may never end"
            ));
        };
        if b.start < quiet {
            return Err(format!(
                "shards.failovers: {name}: the failover at {} starts before the one at {} is over ({})",
                format_duration(b.start),
                format_duration(a.start),
                format_duration(quiet)
            ));
        }
    }
    let mut busy: Vec<(Duration, Duration, String)> = failovers
        .iter()
        .map(|f| {
            (
                f.start,
                f.quiet_at().unwrap_or(Duration::MAX),
                format!("the failover at {}", format_duration(f.start)),
            )
        })
        .collect();
    for t in topology {
        busy.push((
            t.start,
            t.start + t.duration,
            format!("the topology change at {}", format_duration(t.start)),
        ));
    }
    busy.sort_by_key(|b| b.0);
    for pair in busy.windows(2) {
        if pair[1].0 < pair[0].1 {
            return Err(format!(
                "shards: {name}: {} starts before {} is over",
                pair[1].2, pair[0].2
            ));
        }
    }
    Ok(())
}
