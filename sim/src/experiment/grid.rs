//! Sweeps and grids: the scenario run once per value of one buffer key, or once per
//! combination of values of several keys (`--sweep size=5000,7000 --sweep
//! drain_concurrency=1,16` gives four rows).

use std::io::{self, Write};

use serde::Serialize;

use crate::error::{SimError, SweepError};
use crate::report::Report;
use crate::scenario::{Scenario, enabled_vitess_defaults, set_buffer_key, validate_buffer};
use crate::sim::{Observer, run_observed};
use crate::table::{ms, write_table_left};

/// One `--sweep KEY=V1,V2,..`: a buffer config key and the values to try.
///
/// ```
/// use failover_buffer_sim::Sweep;
///
/// let sweep: Sweep = "size=100,1000,5000".parse()?;
/// assert_eq!(sweep.key, "size");
/// assert_eq!(sweep.values, ["100", "1000", "5000"]);
/// # Ok::<(), failover_buffer_sim::SweepError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sweep {
    /// A key of [`BUFFER_KEYS`](crate::BUFFER_KEYS).
    pub key: String,
    /// Values, as text.
    pub values: Vec<String>,
}

impl core::str::FromStr for Sweep {
    type Err = SweepError;

    /// `KEY=V1,V2,..`. For `keyspace_shards`, whose values contain commas, separate values
    /// with `;` instead. Each value is checked as the key's type here; whether the config it
    /// gives is valid is checked by [`grid`].
    fn from_str(text: &str) -> Result<Sweep, SweepError> {
        let Some((key, values)) = text.split_once('=') else {
            return Err(SweepError::NotKeyValues(text.to_string()));
        };
        let separator = if key == "keyspace_shards" { ';' } else { ',' };
        let values: Vec<String> = values.split(separator).map(str::to_string).collect();
        if values.iter().any(String::is_empty) {
            return Err(SweepError::EmptyValue(text.to_string()));
        }
        let mut probe = enabled_vitess_defaults();
        for value in &values {
            set_buffer_key(&mut probe, key, value).map_err(|error| SweepError::Value {
                key: key.to_string(),
                value: value.clone(),
                error,
            })?;
        }
        Ok(Sweep {
            key: key.to_string(),
            values,
        })
    }
}

/// The result of a grid: one row per combination of values, the first key's values
/// outermost (so one key gives one row per value, in the order given).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GridReport {
    /// The scenario's name.
    pub scenario: String,
    /// Its traffic and failovers in one line.
    pub summary: String,
    /// The seed.
    pub seed: u64,
    /// The keys swept, in the order given.
    pub keys: Vec<String>,
    /// One row per combination.
    pub rows: Vec<GridRow>,
}

/// One combination of a grid and what the scenario's run measured with it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GridRow {
    /// The values, one per key, as given.
    pub values: Vec<String>,
    /// The measurements.
    pub report: Report,
}

/// How many runs [`grid`] makes for these sweeps: the product of their lengths.
pub fn grid_size(sweeps: &[Sweep]) -> usize {
    sweeps.iter().map(|s| s.values.len()).product()
}

/// Runs the scenario once per combination of the sweeps' values, each time with the
/// scenario's buffer config and the keys set to the values. Every combination is checked
/// before anything runs (a window above a max failover duration, say), and a key may be
/// swept only once.
///
/// ```
/// use failover_buffer_sim::{NoObserver, Scenario, grid};
///
/// let scenario = Scenario::default_scenario();
/// let sweeps = ["size=1000,7000".parse()?, "drain_concurrency=1,16".parse()?];
/// let report = grid(&scenario, 1, &sweeps, &mut NoObserver)?;
/// assert_eq!(report.rows.len(), 4);
/// assert_eq!(report.rows[3].values, ["7000", "16"]);
/// # Ok::<(), failover_buffer_sim::SimError>(())
/// ```
pub fn grid<O: Observer>(
    scenario: &Scenario,
    seed: u64,
    sweeps: &[Sweep],
    observer: &mut O,
) -> Result<GridReport, SimError> {
    for (i, s) in sweeps.iter().enumerate() {
        if sweeps[..i].iter().any(|t| t.key == s.key) {
            return Err(SweepError::RepeatedKey(s.key.clone()).into());
        }
    }
    let mut combinations: Vec<Vec<String>> = vec![Vec::new()];
    for s in sweeps {
        combinations = combinations
            .into_iter()
            .flat_map(|prefix| {
                s.values.iter().map(move |v| {
                    let mut next = prefix.clone();
                    next.push(v.clone());
                    next
                })
            })
            .collect();
    }
    let mut configs = Vec::with_capacity(combinations.len());
    for values in &combinations {
        let mut config = scenario.buffer.clone();
        for (s, value) in sweeps.iter().zip(values) {
            set_buffer_key(&mut config, &s.key, value).map_err(|error| SweepError::Value {
                key: s.key.clone(),
                value: value.clone(),
                error,
            })?;
        }
        validate_buffer(&config).map_err(|error| {
            let (key, value) = named(sweeps, values);
            SweepError::Value { key, value, error }
        })?;
        configs.push(config);
    }
    let mut rows = Vec::with_capacity(configs.len());
    for (values, config) in combinations.into_iter().zip(configs) {
        let report = run_observed(scenario, &config, seed, observer)?;
        rows.push(GridRow { values, report });
    }
    Ok(GridReport {
        scenario: scenario.name.clone(),
        summary: scenario.summary(),
        seed,
        keys: sweeps.iter().map(|s| s.key.clone()).collect(),
        rows,
    })
}

/// The combination as `key` and `value` texts for an error: `size`, `100` for one key;
/// `size,window`, `100,5s` for several.
fn named(sweeps: &[Sweep], values: &[String]) -> (String, String) {
    let keys: Vec<&str> = sweeps.iter().map(|s| s.key.as_str()).collect();
    (keys.join(","), values.join(","))
}

/// Writes the human-readable table of a grid: one row per combination, a column per key.
pub fn write_grid(out: &mut dyn Write, g: &GridReport) -> io::Result<()> {
    let what = if g.keys.len() == 1 { "sweep" } else { "grid" };
    writeln!(
        out,
        "{what} of {} over scenario {:?}, seed {}",
        g.keys.join(" × "),
        g.scenario,
        g.seed
    )?;
    writeln!(out, "traffic: {}", g.summary)?;
    writeln!(out)?;
    let mut header: Vec<String> = g.keys.clone();
    header.extend(
        [
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
        .map(str::to_string),
    );
    let mut rows = vec![header];
    for row in &g.rows {
        let r = &row.report;
        let mut cells = row.values.clone();
        cells.extend([
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
        rows.push(cells);
    }
    write_table_left(out, &rows, g.keys.len())
}
