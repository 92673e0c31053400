//! What a run measured, the three-way comparison, sweeps, and their text and JSON forms.

use core::time::Duration;
use std::io::{self, Write};

use failover_buffer::{Config, ConfigError, EvictReason, ShardStats, SkipReason, StopReason};
use serde::Serialize;

use crate::duration::format_duration;
use crate::scenario::{Scenario, enabled_vitess_defaults, set_buffer_key, validate_buffer};
use crate::sim::{ErrorCause, Observer, run_observed};

/// What one run measured: what the application saw, and the buffer's own counters summed
/// over shards. Durations are in nanoseconds (`*_ns`) so that JSON stays exact.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Requests that arrived.
    pub requests: u64,
    /// Requests that succeeded.
    pub ok: u64,
    /// Requests that failed, by cause.
    pub errors: Errors,
    /// Requests that saw a failover error on some attempt or were held, whatever the end.
    pub affected: u64,
    /// Attempts sent to a primary (first attempts and retries).
    pub attempts: u64,
    /// Latency added to successful requests: end minus arrival minus their service time.
    pub added_latency: Latency,
    /// The buffer's counters, summed over shards.
    pub buffer: BufferCounters,
    /// The most slots held at once (queued plus released retries not yet done).
    pub peak_slots: u64,
    /// The longest drain: from the end of buffering to the end of the last released retry.
    pub drain_time_ns: u64,
    /// When the last event happened.
    pub simulated_ns: u64,
    /// Events processed.
    pub events: u64,
    /// The run over time, in 100 ms buckets (not in the JSON output: it grows with the run).
    #[serde(skip)]
    pub timeline: Timeline,
}

/// Errors the application saw, by cause (see [`ErrorCause`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Errors {
    /// All of them.
    pub total: u64,
    /// [`ErrorCause::Failover`].
    pub failover: u64,
    /// [`ErrorCause::Timeout`].
    pub timeout: u64,
    /// [`ErrorCause::BufferFull`].
    pub buffer_full: u64,
    /// [`ErrorCause::Evicted`].
    pub evicted: u64,
    /// [`ErrorCause::ShardMissing`].
    pub shard_missing: u64,
}

impl Errors {
    pub(crate) fn add(&mut self, cause: ErrorCause) {
        self.total += 1;
        *match cause {
            ErrorCause::Failover => &mut self.failover,
            ErrorCause::Timeout => &mut self.timeout,
            ErrorCause::BufferFull => &mut self.buffer_full,
            ErrorCause::Evicted => &mut self.evicted,
            ErrorCause::ShardMissing => &mut self.shard_missing,
        } += 1;
    }
}

/// Nearest-rank percentiles of the added latency of successful requests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Latency {
    /// Median.
    pub p50_ns: u64,
    /// 99th percentile.
    pub p99_ns: u64,
    /// Maximum.
    pub max_ns: u64,
}

/// The buffer's counters ([`ShardStats`]) summed over shards, with Vitess's names.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct BufferCounters {
    /// Episodes started (`BufferStarts`).
    pub starts: u64,
    /// Episodes stopped, by reason (`BufferStops`).
    pub stops: Stops,
    /// Requests queued (`BufferRequestsBuffered`).
    pub buffered: u64,
    /// Requests released by a drain (`BufferRequestsDrained`).
    pub drained: u64,
    /// Requests that left the queue early, by reason (`BufferRequestsEvicted`).
    pub evicted: Evicted,
    /// Failover requests not held, by reason (`BufferRequestsSkipped`).
    pub skipped: Skipped,
    /// Drains called off by a retry failing again early in an episode.
    pub drains_paused: u64,
}

/// Stops by reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[allow(non_snake_case, missing_docs)]
pub struct Stops {
    pub NewPrimarySeen: u64,
    pub MaxDurationExceeded: u64,
    pub ReshardingComplete: u64,
    pub MoveTablesSwitchedTraffic: u64,
    pub Shutdown: u64,
}

/// Evictions by reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[allow(non_snake_case, missing_docs)]
pub struct Evicted {
    pub ContextDone: u64,
    pub BufferFull: u64,
    pub WindowExceeded: u64,
}

/// Skips by reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[allow(non_snake_case, missing_docs)]
pub struct Skipped {
    pub BufferFull: u64,
    pub Disabled: u64,
    pub Shutdown: u64,
    pub LastReparentTooRecent: u64,
    pub LastFailoverTooRecent: u64,
}

impl BufferCounters {
    pub(crate) fn add(&mut self, s: &ShardStats) {
        self.starts += s.starts;
        self.buffered += s.buffered;
        self.drained += s.drained;
        self.drains_paused += s.drains_paused;
        for (reason, n) in s.stops.iter() {
            *match reason {
                StopReason::NewPrimarySeen => &mut self.stops.NewPrimarySeen,
                StopReason::MaxDurationExceeded => &mut self.stops.MaxDurationExceeded,
                StopReason::ReshardingComplete => &mut self.stops.ReshardingComplete,
                StopReason::MoveTablesSwitchedTraffic => &mut self.stops.MoveTablesSwitchedTraffic,
                StopReason::Shutdown => &mut self.stops.Shutdown,
                _ => continue,
            } += n;
        }
        for (reason, n) in s.evicted.iter() {
            *match reason {
                EvictReason::ContextDone => &mut self.evicted.ContextDone,
                EvictReason::BufferFull => &mut self.evicted.BufferFull,
                EvictReason::WindowExceeded => &mut self.evicted.WindowExceeded,
                _ => continue,
            } += n;
        }
        for (reason, n) in s.skipped.iter() {
            *match reason {
                SkipReason::BufferFull => &mut self.skipped.BufferFull,
                SkipReason::Disabled => &mut self.skipped.Disabled,
                SkipReason::Shutdown => &mut self.skipped.Shutdown,
                SkipReason::LastReparentTooRecent => &mut self.skipped.LastReparentTooRecent,
                SkipReason::LastFailoverTooRecent => &mut self.skipped.LastFailoverTooRecent,
                _ => continue,
            } += n;
        }
    }
}

/// A run over time, in buckets of [`TIMELINE_BUCKET`](crate::TIMELINE_BUCKET) (100 ms):
/// bucket `i` covers `[i × 100 ms, (i + 1) × 100 ms)`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Timeline {
    /// The deepest the buffer's queues were (all shards) during the bucket.
    pub queued_max: Vec<u32>,
    /// Errors the application saw in the bucket.
    pub errors: Vec<u32>,
    /// Requests the buffer released to retry in the bucket.
    pub released: Vec<u32>,
    /// The queue depth now, carried into new buckets.
    pub(crate) depth: u32,
}

/// Which config a run of a comparison used.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ConfigSummary {
    /// Buffering enabled.
    pub enabled: bool,
    /// Dry run.
    pub dry_run: bool,
    /// Slots.
    pub size: usize,
    /// Window.
    pub window: String,
    /// Max failover duration.
    pub max_failover_duration: String,
    /// Min time between failovers.
    pub min_time_between_failovers: String,
    /// Drain concurrency.
    pub drain_concurrency: usize,
    /// Drain back-off.
    pub drain_backoff: String,
    /// Shard filter (Vitess's list syntax; empty for all).
    pub keyspace_shards: String,
}

impl ConfigSummary {
    /// The summary of `config`.
    pub fn of(config: &Config) -> ConfigSummary {
        let mut filter: Vec<String> = config.filter.keyspaces().map(str::to_string).collect();
        filter.extend(config.filter.shards().map(|(k, s)| format!("{k}/{s}")));
        ConfigSummary {
            enabled: config.enabled,
            dry_run: config.dry_run,
            size: config.size,
            window: format_duration(config.window),
            max_failover_duration: format_duration(config.max_failover_duration),
            min_time_between_failovers: format_duration(config.min_time_between_failovers),
            drain_concurrency: config.drain_concurrency,
            drain_backoff: format_duration(config.drain_backoff),
            keyspace_shards: filter.join(","),
        }
    }

    fn line(&self) -> String {
        if !self.enabled && !self.dry_run {
            return "buffering disabled".to_string();
        }
        let mut text = format!(
            "size={} window={} max_failover_duration={} min_time_between_failovers={} drain_concurrency={} drain_backoff={}",
            self.size,
            self.window,
            self.max_failover_duration,
            self.min_time_between_failovers,
            self.drain_concurrency,
            self.drain_backoff
        );
        if self.dry_run {
            text.push_str(" dry_run=true");
        }
        if !self.enabled {
            text.push_str(" enabled=false");
        }
        if !self.keyspace_shards.is_empty() {
            text.push_str(&format!(" keyspace_shards={}", self.keyspace_shards));
        }
        text
    }
}

/// One run of a comparison.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NamedRun {
    /// `"no buffer"`, `"vitess defaults"` or `"scenario"`.
    pub label: String,
    /// The config it ran with.
    pub config: ConfigSummary,
    /// What it measured.
    pub report: Report,
}

/// The same traffic with no buffer, with Vitess's defaults (buffering enabled), and with the
/// scenario's config.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Comparison {
    /// The scenario's name.
    pub scenario: String,
    /// Its traffic and failovers in one line.
    pub summary: String,
    /// The seed.
    pub seed: u64,
    /// The three runs, in that order.
    pub runs: Vec<NamedRun>,
}

/// Runs the three-way comparison (see [`Comparison`]). `observer` sees all three runs in
/// turn.
pub fn compare<O: Observer>(
    scenario: &Scenario,
    seed: u64,
    observer: &mut O,
) -> Result<Comparison, ConfigError> {
    let configs = [
        ("no buffer", Config::default()),
        ("vitess defaults", enabled_vitess_defaults()),
        ("scenario", scenario.buffer.clone()),
    ];
    let mut runs = Vec::with_capacity(configs.len());
    for (label, config) in configs {
        let report = run_observed(scenario, &config, seed, observer)?;
        runs.push(NamedRun {
            label: label.to_string(),
            config: ConfigSummary::of(&config),
            report,
        });
    }
    Ok(Comparison {
        scenario: scenario.name.clone(),
        summary: scenario.summary(),
        seed,
        runs,
    })
}

/// One `--sweep KEY=V1,V2,..`: a buffer config key and the values to try.
///
/// ```
/// use failover_buffer_sim::Sweep;
///
/// let sweep: Sweep = "size=100,1000,5000".parse()?;
/// assert_eq!(sweep.key, "size");
/// assert_eq!(sweep.values, ["100", "1000", "5000"]);
/// # Ok::<(), String>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sweep {
    /// A key of [`BUFFER_KEYS`](crate::BUFFER_KEYS).
    pub key: String,
    /// Values, as text.
    pub values: Vec<String>,
}

impl core::str::FromStr for Sweep {
    type Err = String;

    /// `KEY=V1,V2,..`. For `keyspace_shards`, whose values contain commas, separate values
    /// with `;` instead.
    fn from_str(text: &str) -> Result<Sweep, String> {
        let Some((key, values)) = text.split_once('=') else {
            return Err(format!("{text:?} is not KEY=V1,V2,.."));
        };
        let separator = if key == "keyspace_shards" { ';' } else { ',' };
        let values: Vec<String> = values.split(separator).map(str::to_string).collect();
        if values.iter().any(String::is_empty) {
            return Err(format!("{text:?} has an empty value"));
        }
        let mut probe = enabled_vitess_defaults();
        for value in &values {
            set_buffer_key(&mut probe, key, value)?;
        }
        Ok(Sweep {
            key: key.to_string(),
            values,
        })
    }
}

/// The result of one sweep: one row per value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SweepReport {
    /// The key swept.
    pub key: String,
    /// One row per value, in the order given.
    pub rows: Vec<SweepRow>,
}

/// One value of a sweep and what the scenario's run measured with it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SweepRow {
    /// The value, as given.
    pub value: String,
    /// The measurements.
    pub report: Report,
}

/// Runs the scenario once per value of `sweep`, each time with the scenario's buffer config
/// and the key set to the value. Every value is checked before anything runs.
pub fn sweep<O: Observer>(
    scenario: &Scenario,
    seed: u64,
    sweep: &Sweep,
    observer: &mut O,
) -> Result<SweepReport, String> {
    let mut configs = Vec::with_capacity(sweep.values.len());
    for value in &sweep.values {
        let mut config = scenario.buffer.clone();
        set_buffer_key(&mut config, &sweep.key, value)?;
        validate_buffer(&config).map_err(|e| format!("--sweep {}={value}: {e}", sweep.key))?;
        configs.push(config);
    }
    let mut rows = Vec::with_capacity(configs.len());
    for (value, config) in sweep.values.iter().zip(configs) {
        let report = run_observed(scenario, &config, seed, observer).map_err(|e| e.to_string())?;
        rows.push(SweepRow {
            value: value.clone(),
            report,
        });
    }
    Ok(SweepReport {
        key: sweep.key.clone(),
        rows,
    })
}

/// Milliseconds with one decimal, or `0`.
fn ms(nanos: u64) -> String {
    if nanos == 0 {
        "0".to_string()
    } else {
        format!("{:.1}ms", nanos as f64 / 1e6)
    }
}

/// Writes rows as aligned columns: the first left-aligned, the rest right-aligned.
fn write_table(out: &mut dyn Write, rows: &[Vec<String>]) -> io::Result<()> {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c == 0 {
                line.push_str(&format!("{cell:<w$}", w = widths[0]));
            } else {
                line.push_str(&format!("  {cell:>w$}", w = widths[c]));
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

/// Writes the human-readable comparison table.
pub fn write_comparison(out: &mut dyn Write, c: &Comparison) -> io::Result<()> {
    writeln!(out, "scenario {:?}, seed {}", c.scenario, c.seed)?;
    writeln!(out, "traffic: {}", c.summary)?;
    for run in &c.runs {
        writeln!(
            out,
            "{:<16} {}",
            format!("{}:", run.label),
            run.config.line()
        )?;
    }
    writeln!(out)?;
    let mut rows = vec![{
        let mut header = vec![String::new()];
        header.extend(c.runs.iter().map(|r| r.label.clone()));
        header
    }];
    let reports: Vec<&Report> = c.runs.iter().map(|r| &r.report).collect();
    let mut row = |label: &str, cell: &dyn Fn(&Report) -> String| {
        let mut cells = vec![label.to_string()];
        cells.extend(reports.iter().map(|r| cell(r)));
        rows.push(cells);
    };
    row("requests", &|r| r.requests.to_string());
    row("  ok", &|r| r.ok.to_string());
    row("  errors", &|r| r.errors.total.to_string());
    row("    failover", &|r| r.errors.failover.to_string());
    row("    timeout", &|r| r.errors.timeout.to_string());
    row("    buffer full", &|r| r.errors.buffer_full.to_string());
    row("    evicted", &|r| r.errors.evicted.to_string());
    row("affected requests", &|r| r.affected.to_string());
    row("attempts sent", &|r| r.attempts.to_string());
    row("added latency p50", &|r| ms(r.added_latency.p50_ns));
    row("added latency p99", &|r| ms(r.added_latency.p99_ns));
    row("added latency max", &|r| ms(r.added_latency.max_ns));
    row("buffering starts", &|r| r.buffer.starts.to_string());
    row("stops NewPrimarySeen", &|r| {
        r.buffer.stops.NewPrimarySeen.to_string()
    });
    row("stops MaxDurationExceeded", &|r| {
        r.buffer.stops.MaxDurationExceeded.to_string()
    });
    row("buffered", &|r| r.buffer.buffered.to_string());
    row("drained", &|r| r.buffer.drained.to_string());
    row("evicted BufferFull", &|r| {
        r.buffer.evicted.BufferFull.to_string()
    });
    row("evicted WindowExceeded", &|r| {
        r.buffer.evicted.WindowExceeded.to_string()
    });
    row("evicted ContextDone", &|r| {
        r.buffer.evicted.ContextDone.to_string()
    });
    row("skipped BufferFull", &|r| {
        r.buffer.skipped.BufferFull.to_string()
    });
    row("skipped Disabled", &|r| {
        r.buffer.skipped.Disabled.to_string()
    });
    row("skipped LastFailoverTooRecent", &|r| {
        r.buffer.skipped.LastFailoverTooRecent.to_string()
    });
    row("skipped LastReparentTooRecent", &|r| {
        r.buffer.skipped.LastReparentTooRecent.to_string()
    });
    row("drains paused", &|r| r.buffer.drains_paused.to_string());
    row("peak slots used", &|r| r.peak_slots.to_string());
    row("drain time", &|r| ms(r.drain_time_ns));
    write_table(out, &rows)
}

/// Writes the human-readable table of a sweep: one row per value.
pub fn write_sweep(
    out: &mut dyn Write,
    scenario: &Scenario,
    seed: u64,
    s: &SweepReport,
) -> io::Result<()> {
    writeln!(
        out,
        "sweep of {} over scenario {:?}, seed {}",
        s.key, scenario.name, seed
    )?;
    writeln!(out, "traffic: {}", scenario.summary())?;
    writeln!(out)?;
    let mut rows = vec![
        [
            s.key.as_str(),
            "ok",
            "errors",
            "failover",
            "timeout",
            "full",
            "evicted",
            "added p50",
            "added p99",
            "added max",
            "window exp.",
            "paused",
            "peak slots",
            "drain time",
        ]
        .map(str::to_string)
        .to_vec(),
    ];
    for row in &s.rows {
        let r = &row.report;
        rows.push(vec![
            row.value.clone(),
            r.ok.to_string(),
            r.errors.total.to_string(),
            r.errors.failover.to_string(),
            r.errors.timeout.to_string(),
            r.errors.buffer_full.to_string(),
            r.errors.evicted.to_string(),
            ms(r.added_latency.p50_ns),
            ms(r.added_latency.p99_ns),
            ms(r.added_latency.max_ns),
            r.buffer.evicted.WindowExceeded.to_string(),
            r.buffer.drains_paused.to_string(),
            r.peak_slots.to_string(),
            ms(r.drain_time_ns),
        ]);
    }
    write_table(out, &rows)
}

impl Report {
    /// The longest drain as a `Duration`.
    pub fn drain_time(&self) -> Duration {
        Duration::from_nanos(self.drain_time_ns)
    }
}
