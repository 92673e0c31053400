//! The three-way comparison: the same traffic with no buffer, with Vitess's defaults and
//! with the scenario's config.

use std::io::{self, Write};

use failover_buffer::Config;
use serde::Serialize;

use crate::duration::format_duration;
use crate::error::SimError;
use crate::report::Report;
use crate::scenario::{Scenario, enabled_vitess_defaults};
use crate::sim::{Observer, run_observed};
use crate::table::{ms, write_table};

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

    /// The config in one line, as the report header prints it.
    pub fn line(&self) -> String {
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
) -> Result<Comparison, SimError> {
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
    // Only a scenario with a killed primary and non-idempotent requests has these.
    if reports.iter().any(|r| r.errors.uncertain > 0) {
        row("    uncertain", &|r| r.errors.uncertain.to_string());
    }
    row("affected requests", &|r| r.affected.to_string());
    row("attempts sent", &|r| r.attempts.to_string());
    row("added latency p50", &|r| ms(r.added_latency.p50_ns));
    row("added latency p99", &|r| ms(r.added_latency.p99_ns));
    row("added latency max", &|r| ms(r.added_latency.max_ns));
    // The core's wait histograms, per outcome seen in any run: how long held requests
    // waited until their verdict (percentiles are bucket estimates, at most 25% high).
    use failover_buffer::{Reason, WaitOutcome};

    let outcomes = WaitOutcome::ALL.iter().map(|o| o.as_str()).filter(|&o| {
        reports
            .iter()
            .any(|r| r.waits.iter().any(|w| w.outcome == o))
    });
    for outcome in outcomes {
        let wait = |r: &Report| r.waits.iter().find(|w| w.outcome == outcome).copied();
        row(&format!("held, then {outcome}"), &|r| {
            wait(r).map_or(0, |w| w.count).to_string()
        });
        row("  waited p50", &|r| ms(wait(r).map_or(0, |w| w.p50_ns)));
        row("  waited p99", &|r| ms(wait(r).map_or(0, |w| w.p99_ns)));
        row("  waited max", &|r| ms(wait(r).map_or(0, |w| w.max_ns)));
    }
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
    if reports.iter().any(|r| r.peak_held_bytes > 0) {
        row("peak held bytes", &|r| r.peak_held_bytes.to_string());
    }
    if reports.iter().any(|r| r.shutdown.is_some()) {
        let at = |t: Option<u64>| t.map_or_else(|| "-".to_string(), ms);
        row("shutdown begun", &|r| {
            at(r.shutdown.and_then(|s| s.begun_ns))
        });
        row("shutdown cancelled", &|r| {
            at(r.shutdown.and_then(|s| s.cancelled_ns))
        });
        row("  held through the cancel", &|r| {
            r.shutdown.map_or(0, |s| s.kept_by_cancel).to_string()
        });
        row("  cancel refused (closed)", &|r| {
            r.shutdown.map_or(0, |s| s.cancel_refused).to_string()
        });
        row("buffers closed", &|r| {
            r.shutdown.map_or(0, |s| s.routers_closed).to_string()
        });
    }
    if reports.iter().any(|r| r.pause.is_some()) {
        let pause = |f: fn(&crate::report::PauseOutcome) -> u64| {
            move |r: &Report| r.pause.as_ref().map_or(0, f).to_string()
        };
        row("pauses started", &pause(|p| p.started));
        row("  resumed", &pause(|p| p.resumed));
        row("  expired at max", &pause(|p| p.expired));
        row("  refused", &pause(|p| p.refused));
    }
    write_table(out, &rows)
}
