//! The simulator's errors: every way an input can be refused, as a type a caller can match,
//! with a `Display` a user can act on (file, line, column and key where the input is a file).

use core::fmt;
use std::path::PathBuf;

use failover_buffer::{ConfigError, FilterError};

use crate::duration::DurationError;
use crate::scenario::ScenarioError;

/// Anything the simulator refuses. Nothing is simulated from an input that gives one.
#[derive(Debug)]
#[non_exhaustive]
pub enum SimError {
    /// A scenario file could not be read or is not a valid scenario.
    Scenario(ScenarioError),
    /// A buffer config the core refuses ([`failover_buffer::Buffer::new`]).
    Config(ConfigError),
    /// A buffer key or value (from `--sweep` or the recommender) is not valid.
    BufferKey(BufferKeyError),
    /// A `--sweep KEY=V1,V2,..` argument is not valid.
    Sweep(SweepError),
    /// A row of a `--trace` or `--timeline` file is not valid.
    Row(RowError),
    /// A file could not be read or written.
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        error: std::io::Error,
    },
    /// The `--plot` file could not be drawn.
    Plot {
        /// The file.
        path: PathBuf,
        /// The drawing library's reason.
        error: String,
    },
    /// `--recommend` cannot search this scenario.
    Objective(ObjectiveError),
    /// A `--trace` replay was asked of a scenario with closed-loop `[traffic] connections`:
    /// a trace gives every arrival, the connections would give others.
    TraceWithConnections,
}

/// Why `--recommend` cannot search a scenario.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ObjectiveError {
    /// The scenario has no `[objective]` table.
    Missing,
    /// The scenario's `[buffer]` does not buffer (`enabled = false` or `dry_run = true`),
    /// so there is nothing to size.
    NotBuffering,
}

impl fmt::Display for ObjectiveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ObjectiveError::Missing => {
                "the scenario has no [objective] table; add one (see sim/README.md)"
            }
            ObjectiveError::NotBuffering => {
                "the scenario's [buffer] must have enabled = true and dry_run = false"
            }
        })
    }
}

impl std::error::Error for ObjectiveError {}

impl fmt::Display for SimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SimError::Scenario(e) => e.fmt(f),
            SimError::Config(e) => e.fmt(f),
            SimError::BufferKey(e) => e.fmt(f),
            SimError::Sweep(e) => e.fmt(f),
            SimError::Row(e) => e.fmt(f),
            SimError::Io { path, error } => write!(f, "{}: {error}", path.display()),
            SimError::Plot { path, error } => write!(f, "{}: {error}", path.display()),
            SimError::Objective(why) => write!(f, "--recommend: {why}"),
            SimError::TraceWithConnections => f.write_str(
                "--trace replays arrivals, and the scenario's [traffic] connections make their own: remove one",
            ),
        }
    }
}

impl std::error::Error for SimError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SimError::Scenario(e) => Some(e),
            SimError::Config(e) => Some(e),
            SimError::BufferKey(e) => Some(e),
            SimError::Sweep(e) => Some(e),
            SimError::Row(e) => Some(e),
            SimError::Io { error, .. } => Some(error),
            SimError::Objective(e) => Some(e),
            SimError::Plot { .. } | SimError::TraceWithConnections => None,
        }
    }
}

impl From<ScenarioError> for SimError {
    fn from(e: ScenarioError) -> Self {
        SimError::Scenario(e)
    }
}

impl From<ConfigError> for SimError {
    fn from(e: ConfigError) -> Self {
        SimError::Config(e)
    }
}

impl From<BufferKeyError> for SimError {
    fn from(e: BufferKeyError) -> Self {
        SimError::BufferKey(e)
    }
}

impl From<SweepError> for SimError {
    fn from(e: SweepError) -> Self {
        SimError::Sweep(e)
    }
}

impl From<RowError> for SimError {
    fn from(e: RowError) -> Self {
        SimError::Row(e)
    }
}

/// Why a buffer config key could not be set, or the config it gave is not valid. `Display`
/// starts with the key: `"window: buffer window must be <= max failover duration: ..."`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BufferKeyError {
    /// No such key (see [`BUFFER_KEYS`](crate::BUFFER_KEYS)).
    UnknownKey(String),
    /// A count that is not a whole number.
    NotAWholeNumber {
        /// The key.
        key: String,
        /// The text given.
        value: String,
    },
    /// A flag that is not `true` or `false`.
    NotABool {
        /// The key.
        key: String,
        /// The text given.
        value: String,
    },
    /// A duration that does not parse.
    Duration {
        /// The key.
        key: String,
        /// Why.
        error: DurationError,
    },
    /// A shard list that does not parse.
    Filter {
        /// The key.
        key: String,
        /// Why.
        error: FilterError,
    },
    /// An eviction policy that is not `oldest_of_shard`, `oldest_anywhere` or `reject_new`.
    UnknownEviction {
        /// The key.
        key: String,
        /// The text given.
        value: String,
    },
    /// The config as a whole is refused by the core; `key` is the one at fault.
    Invalid {
        /// The key at fault.
        key: &'static str,
        /// The core's reason.
        error: ConfigError,
    },
}

impl fmt::Display for BufferKeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BufferKeyError::UnknownKey(key) => write!(
                f,
                "unknown buffer key {key:?}; expected one of {}",
                crate::BUFFER_KEYS.join(", ")
            ),
            BufferKeyError::NotAWholeNumber { key, value } => {
                write!(f, "{key}: {value:?} is not a whole number")
            }
            BufferKeyError::NotABool { key, value } => {
                write!(f, "{key}: {value:?} is not true or false")
            }
            BufferKeyError::Duration { key, error } => write!(f, "{key}: {error}"),
            BufferKeyError::Filter { key, error } => write!(f, "{key}: {error}"),
            BufferKeyError::UnknownEviction { key, value } => write!(
                f,
                "{key}: {value:?} is not oldest_of_shard, oldest_anywhere or reject_new"
            ),
            BufferKeyError::Invalid { key, error } => write!(f, "{key}: {error}"),
        }
    }
}

impl std::error::Error for BufferKeyError {}

/// Why a `--sweep KEY=V1,V2,..` argument was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SweepError {
    /// No `=`.
    NotKeyValues(String),
    /// An empty value (`size=1,,2`).
    EmptyValue(String),
    /// A value that cannot be set, or that gives a config the core refuses.
    Value {
        /// The key.
        key: String,
        /// The value.
        value: String,
        /// Why.
        error: BufferKeyError,
    },
    /// The same key swept twice.
    RepeatedKey(String),
}

impl fmt::Display for SweepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SweepError::NotKeyValues(text) => write!(f, "{text:?} is not KEY=V1,V2,.."),
            SweepError::EmptyValue(text) => write!(f, "{text:?} has an empty value"),
            SweepError::Value { key, value, error } => {
                write!(f, "--sweep {key}={value}: {error}")
            }
            SweepError::RepeatedKey(key) => write!(f, "--sweep {key} is given twice"),
        }
    }
}

impl std::error::Error for SweepError {}

/// A bad row in a `--trace` or `--timeline` file: the file, the 1-based line and column of
/// the field at fault, and why. Rows before it may have been simulated; the run is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowError {
    /// The file.
    pub path: PathBuf,
    /// 1-based line.
    pub line: u64,
    /// 1-based column (in characters) of the field at fault.
    pub column: usize,
    /// What is wrong.
    pub kind: RowErrorKind,
}

/// What is wrong with a row; see [`RowError`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RowErrorKind {
    /// The header names a column the file format does not have, or lacks a required one.
    Header(String),
    /// A row has fewer fields than the header.
    MissingField(&'static str),
    /// A row has more fields than the header.
    ExtraField,
    /// A duration that does not parse.
    Duration(DurationError),
    /// A number that does not parse.
    Number {
        /// The column.
        column: &'static str,
        /// The text.
        text: String,
    },
    /// A shard that the scenario (or timeline) does not have, or a malformed name.
    UnknownShard(String),
    /// A trace row earlier than the row before it: traces must be sorted by time.
    OutOfOrder {
        /// This row's time.
        time: String,
        /// The previous row's time.
        previous: String,
    },
    /// A timeline row that does not fit the shard's timeline (overlap, a value out of range).
    Invalid(String),
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: line {}, column {}: ",
            self.path.display(),
            self.line,
            self.column
        )?;
        match &self.kind {
            RowErrorKind::Header(why) => write!(f, "bad header: {why}"),
            RowErrorKind::MissingField(name) => write!(f, "missing field `{name}`"),
            RowErrorKind::ExtraField => f.write_str("more fields than the header names"),
            RowErrorKind::Duration(e) => e.fmt(f),
            RowErrorKind::Number { column, text } => {
                write!(f, "{column}: {text:?} is not a whole number")
            }
            RowErrorKind::UnknownShard(name) => write!(
                f,
                "shard {name:?} is not in the scenario (name it in a [[shards]] table or the timeline)"
            ),
            RowErrorKind::OutOfOrder { time, previous } => write!(
                f,
                "time {time} is before the previous row's {previous}: a trace must be sorted by time"
            ),
            RowErrorKind::Invalid(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for RowError {}
