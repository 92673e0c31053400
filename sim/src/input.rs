//! Replay: a user's own request trace and failover timeline, read from CSV files.
//!
//! A **trace** (`--trace FILE`) lists requests, one a row: `time,shard` or
//! `time,shard,size`, sorted by time, with an optional header row naming those columns.
//! It is streamed: [`TraceReader`] holds one row at a time, so a trace of any length runs in
//! constant memory. A **timeline** (`--timeline FILE`) lists failovers and topology changes,
//! one a row, under a header naming its columns (see [`read_timeline`]). In both, blank
//! lines and lines starting with `#` are skipped, fields are separated by commas and
//! trimmed, durations carry a unit (`"1.5s"`, `"250ms"`), and a bad row is a [`RowError`]
//! naming the file, line and column.

use core::time::Duration;
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use crate::duration::{format_duration, parse_duration};
use crate::error::{RowError, RowErrorKind, SimError};
use crate::scenario::{
    ColdPrimary, Failover, Scenario, ShardSpec, TopologyChange, TopologyKind, check_timeline,
};

/// One request of a trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceRow {
    /// When it arrives, in nanoseconds from the start.
    pub at: u64,
    /// The shard's index in [`Scenario::shards`].
    pub shard: u32,
    /// Its size in bytes (0 when the trace has no size column).
    pub size: u64,
}

/// Reads a trace row by row, holding one at a time: one request a row, `time,shard` or
/// `time,shard,size`, sorted by time, with an optional header row naming those columns;
/// blank lines and `#` comments are skipped; `time` is a duration with a unit from the
/// start; `shard` is `keyspace/shard`, one of the scenario's; `size` is bytes.
///
/// ```
/// use failover_buffer_sim::{Scenario, TraceReader};
///
/// let dir = std::env::temp_dir().join(format!("trace-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// let path = dir.join("trace.csv");
/// std::fs::write(&path, "time,shard,size\n0.5s,commerce/0,120\n2.5s,commerce/0,80\n")?;
/// let scenario = Scenario::default_scenario();
/// let mut trace = TraceReader::open(&path, &scenario.shards)?;
/// let first = trace.next_row()?.expect("a row");
/// assert_eq!((first.at, first.shard, first.size), (500_000_000, 0, 120));
/// assert!(trace.next_row()?.is_some());
/// assert!(trace.next_row()?.is_none());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct TraceReader {
    path: PathBuf,
    reader: BufReader<File>,
    line: u64,
    text: String,
    shards: HashMap<String, u32>,
    previous: Option<u64>,
    header_checked: bool,
}

impl TraceReader {
    /// Opens a trace whose shards are among `shards` (by `keyspace/shard` name).
    pub fn open(path: &Path, shards: &[ShardSpec]) -> Result<TraceReader, SimError> {
        let file = File::open(path).map_err(|error| SimError::Io {
            path: path.to_path_buf(),
            error,
        })?;
        Ok(TraceReader {
            path: path.to_path_buf(),
            reader: BufReader::with_capacity(1 << 16, file),
            line: 0,
            text: String::new(),
            shards: shards
                .iter()
                .enumerate()
                .map(|(i, s)| (format!("{}/{}", s.keyspace, s.shard), i as u32))
                .collect(),
            previous: None,
            header_checked: false,
        })
    }

    /// The next request, `None` at the end of the file, or the first bad row.
    pub fn next_row(&mut self) -> Result<Option<TraceRow>, SimError> {
        loop {
            self.text.clear();
            let read = self
                .reader
                .read_line(&mut self.text)
                .map_err(|error| SimError::Io {
                    path: self.path.clone(),
                    error,
                })?;
            if read == 0 {
                return Ok(None);
            }
            self.line += 1;
            let line = self.text.trim_end_matches(['\n', '\r']);
            if line.trim().is_empty() || line.trim_start().starts_with('#') {
                continue;
            }
            if !self.header_checked {
                self.header_checked = true;
                let first = line.split(',').next().unwrap_or("").trim();
                if first == "time" {
                    let names: Vec<&str> = line.split(',').map(str::trim).collect();
                    if names != ["time", "shard"] && names != ["time", "shard", "size"] {
                        return Err(SimError::Row(self.error(
                            1,
                            RowErrorKind::Header(
                                "a trace's columns are time,shard or time,shard,size".into(),
                            ),
                        )));
                    }
                    continue;
                }
            }
            let row = self.parse(line)?;
            self.previous = Some(row.at);
            return Ok(Some(row));
        }
    }

    fn parse(&self, line: &str) -> Result<TraceRow, RowError> {
        let mut fields = Fields::new(line);
        let (column, time) = fields.next().unwrap_or((1, ""));
        let at = parse_duration(time).map_err(|e| self.error(column, RowErrorKind::Duration(e)))?;
        let at = u64::try_from(at.as_nanos()).unwrap_or(u64::MAX);
        let Some((column, name)) = fields.next() else {
            return Err(self.error(
                line.chars().count() + 1,
                RowErrorKind::MissingField("shard"),
            ));
        };
        let Some(&shard) = self.shards.get(name) else {
            return Err(self.error(column, RowErrorKind::UnknownShard(name.to_string())));
        };
        let size = match fields.next() {
            None => 0,
            Some((column, text)) => text.parse().map_err(|_| {
                self.error(
                    column,
                    RowErrorKind::Number {
                        column: "size",
                        text: text.to_string(),
                    },
                )
            })?,
        };
        if let Some((column, _)) = fields.next() {
            return Err(self.error(column, RowErrorKind::ExtraField));
        }
        if let Some(previous) = self.previous.filter(|&p| at < p) {
            return Err(self.error(
                1,
                RowErrorKind::OutOfOrder {
                    time: format_duration(Duration::from_nanos(at)),
                    previous: format_duration(Duration::from_nanos(previous)),
                },
            ));
        }
        Ok(TraceRow { at, shard, size })
    }

    fn error(&self, column: usize, kind: RowErrorKind) -> RowError {
        RowError {
            path: self.path.clone(),
            line: self.line,
            column,
            kind,
        }
    }
}

/// The comma-separated, trimmed fields of a line, each with its 1-based column (in
/// characters).
struct Fields<'a> {
    rest: &'a str,
    column: usize,
    done: bool,
}

impl<'a> Fields<'a> {
    fn new(line: &'a str) -> Self {
        Fields {
            rest: line,
            column: 1,
            done: false,
        }
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = (usize, &'a str);

    fn next(&mut self) -> Option<(usize, &'a str)> {
        if self.done {
            return None;
        }
        let (field, rest) = match self.rest.find(',') {
            Some(i) => (&self.rest[..i], Some(&self.rest[i + 1..])),
            None => (self.rest, None),
        };
        let leading = field.len() - field.trim_start().len();
        let column = self.column + field[..leading].chars().count();
        self.column += field.chars().count() + 1;
        match rest {
            Some(rest) => self.rest = rest,
            None => self.done = true,
        }
        Some((column, field.trim()))
    }
}

/// The columns a timeline may have; `shard` and `start` are required.
pub const TIMELINE_COLUMNS: &[&str] = &[
    "shard",
    "kind",
    "start",
    "duration",
    "health_delay",
    "not_serving_delay",
    "read_only_lag",
    "write_pause",
    "cold_factor",
    "cold_for",
    "serving_stamp_lost",
    "not_serving_stamp_lost",
    "killed",
];

/// Reads a failover timeline and puts it in `scenario` in place of every shard's
/// failovers and topology changes. Shards the scenario does not have are added, with no
/// traffic of their own (a trace or listed arrivals give them some).
///
/// The first row (after comments) is a header naming the columns, any of
/// [`TIMELINE_COLUMNS`] in any order: `shard` and `start` are required; `kind` is
/// `failover` (the default), `resharding` or `move_tables`; `duration` is a duration, or
/// `never` for a failover that never ends; the others are as the scenario file's
/// `[[shards.failovers]]` keys, empty for the default. Rows of a shard must be in time
/// order and may not overlap.
///
/// ```
/// use failover_buffer_sim::{Scenario, read_timeline};
///
/// let dir = std::env::temp_dir().join(format!("timeline-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// let path = dir.join("timeline.csv");
/// std::fs::write(&path, "shard,start,duration,health_delay\n\
///                        commerce/0,1s,2s,100ms\n\
///                        customer/-80,4s,never,\n")?;
/// let mut scenario = Scenario::default_scenario();
/// read_timeline(&path, &mut scenario)?;
/// assert_eq!(scenario.shards.len(), 2);
/// assert_eq!(scenario.shards[1].failovers[0].duration, None);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn read_timeline(path: &Path, scenario: &mut Scenario) -> Result<(), SimError> {
    let io = |error| SimError::Io {
        path: path.to_path_buf(),
        error,
    };
    let reader = BufReader::new(File::open(path).map_err(io)?);
    let error = |line: u64, column: usize, kind: RowErrorKind| {
        SimError::Row(RowError {
            path: path.to_path_buf(),
            line,
            column,
            kind,
        })
    };
    for shard in &mut scenario.shards {
        shard.failovers.clear();
        shard.topology.clear();
    }
    let mut header: Option<Vec<&'static str>> = None;
    for (i, text) in reader.lines().enumerate() {
        let text = text.map_err(io)?;
        let line = i as u64 + 1;
        if text.trim().is_empty() || text.trim_start().starts_with('#') {
            continue;
        }
        let Some(columns) = &header else {
            let mut names = Vec::new();
            for (column, name) in Fields::new(&text) {
                let Some(&known) = TIMELINE_COLUMNS.iter().find(|&&c| c == name) else {
                    return Err(error(
                        line,
                        column,
                        RowErrorKind::Header(format!(
                            "unknown column {name:?}; expected some of {}",
                            TIMELINE_COLUMNS.join(", ")
                        )),
                    ));
                };
                if names.contains(&known) {
                    return Err(error(
                        line,
                        column,
                        RowErrorKind::Header(format!("column {name:?} is named twice")),
                    ));
                }
                names.push(known);
            }
            for required in ["shard", "start"] {
                if !names.contains(&required) {
                    return Err(error(
                        line,
                        1,
                        RowErrorKind::Header(format!("a timeline needs a {required:?} column")),
                    ));
                }
            }
            header = Some(names);
            continue;
        };
        let mut values: HashMap<&str, (usize, &str)> = HashMap::new();
        let mut fields = Fields::new(&text);
        for &name in columns {
            let Some((column, value)) = fields.next() else {
                return Err(error(
                    line,
                    text.chars().count() + 1,
                    RowErrorKind::MissingField(name),
                ));
            };
            values.insert(name, (column, value));
        }
        if let Some((column, _)) = fields.next() {
            return Err(error(line, column, RowErrorKind::ExtraField));
        }
        let get = |name: &str| values.get(name).copied().filter(|(_, v)| !v.is_empty());
        let duration = |name: &str| -> Result<Option<Duration>, SimError> {
            match get(name) {
                None => Ok(None),
                Some((column, v)) => parse_duration(v)
                    .map(Some)
                    .map_err(|e| error(line, column, RowErrorKind::Duration(e))),
            }
        };
        let flag = |name: &str| -> Result<bool, SimError> {
            match get(name) {
                None => Ok(false),
                Some((column, v)) => v.parse().map_err(|_| {
                    error(
                        line,
                        column,
                        RowErrorKind::Invalid(format!("{name}: {v:?} is not true or false")),
                    )
                }),
            }
        };
        let (shard_column, name) = get("shard").unwrap_or((1, ""));
        let Some((keyspace, shard)) = name
            .split_once('/')
            .filter(|(k, s)| !k.is_empty() && !s.is_empty() && !s.contains('/'))
        else {
            return Err(error(
                line,
                shard_column,
                RowErrorKind::UnknownShard(name.to_string()),
            ));
        };
        let (start_column, _) = get("start").unwrap_or((1, ""));
        let Some(start) = duration("start")? else {
            return Err(error(
                line,
                start_column,
                RowErrorKind::MissingField("start"),
            ));
        };
        let invalid = |column: usize, why: String| error(line, column, RowErrorKind::Invalid(why));
        let index = match scenario
            .shards
            .iter()
            .position(|s| s.keyspace == keyspace && s.shard == shard)
        {
            Some(i) => i,
            None => {
                scenario.shards.push(ShardSpec {
                    keyspace: keyspace.to_string(),
                    shard: shard.to_string(),
                    rate: 0.0,
                    arrivals: Vec::new(),
                    service: None,
                    failovers: Vec::new(),
                    topology: Vec::new(),
                });
                scenario.shards.len() - 1
            }
        };
        let kind = get("kind").map_or("failover", |(_, v)| v);
        let spec = &mut scenario.shards[index];
        match kind {
            "failover" => {
                let lasts = match get("duration") {
                    Some((_, "never")) => None,
                    Some(_) => duration("duration")?,
                    None => {
                        return Err(error(
                            line,
                            text.chars().count() + 1,
                            RowErrorKind::MissingField("duration"),
                        ));
                    }
                };
                let cold = match (get("cold_factor"), duration("cold_for")?) {
                    (None, None) => None,
                    (Some((column, factor)), Some(lasts)) => {
                        let factor: f64 = factor
                            .parse()
                            .ok()
                            .filter(|f: &f64| f.is_finite() && *f >= 1.0)
                            .ok_or_else(|| {
                                invalid(
                                    column,
                                    format!("cold_factor: {factor:?} is not a number >= 1"),
                                )
                            })?;
                        Some(ColdPrimary { factor, lasts })
                    }
                    _ => {
                        return Err(invalid(
                            start_column,
                            "cold_factor and cold_for go together".into(),
                        ));
                    }
                };
                spec.failovers.push(Failover {
                    start,
                    duration: lasts,
                    health_delay: duration_or_zero(duration("health_delay")?),
                    not_serving_delay: duration("not_serving_delay")?,
                    read_only_lag: duration_or_zero(duration("read_only_lag")?),
                    write_pause: duration_or_zero(duration("write_pause")?),
                    cold,
                    serving_stamp_lost: flag("serving_stamp_lost")?,
                    not_serving_stamp_lost: flag("not_serving_stamp_lost")?,
                    killed: flag("killed")?,
                    refuse_time: None,
                });
            }
            "resharding" | "move_tables" => {
                let Some(duration) = duration("duration")? else {
                    return Err(error(
                        line,
                        text.chars().count() + 1,
                        RowErrorKind::MissingField("duration"),
                    ));
                };
                spec.topology.push(TopologyChange {
                    kind: if kind == "resharding" {
                        TopologyKind::Resharding
                    } else {
                        TopologyKind::MoveTables
                    },
                    start,
                    duration,
                });
            }
            other => {
                let (column, _) = get("kind").unwrap_or((1, ""));
                return Err(invalid(
                    column,
                    format!("kind: {other:?} is not failover, resharding or move_tables"),
                ));
            }
        }
        check_timeline(name, &spec.failovers, &spec.topology)
            .map_err(|why| invalid(start_column, why))?;
    }
    if header.is_none() {
        return Err(error(
            1,
            1,
            RowErrorKind::Header("the file is empty; a timeline starts with a header".into()),
        ));
    }
    Ok(())
}

fn duration_or_zero(d: Option<Duration>) -> Duration {
    d.unwrap_or(Duration::ZERO)
}
