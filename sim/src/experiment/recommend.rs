//! `--recommend`: the smallest buffer config that meets the scenario's [`Objective`], found by
//! a deterministic search, with the runners-up and why every smaller candidate failed.
//!
//! # The search
//!
//! The candidates are every combination of a drain concurrency (1, 2, 4, .., 64), a window
//! and a max failover duration (a short ladder plus the scenario's own values, window ≤ max
//! failover duration). For each, the size is found by bisection over round numbers (one
//! significant digit: 1, 2, .., 9, 10, 20, .., 90, 100, ..), as the smallest that meets the
//! error objective: errors do not rise as slots are added, while a larger buffer only holds
//! more requests for longer, so the smallest size that meets the error limit is also the one
//! with the best chance at the latency and drain limits. Every other limit is then checked
//! at that size. Runs are memoised, so a config is simulated once.
//!
//! The recommendation is the passing candidate that is smallest by, in order: size (the
//! memory a router reserves), drain concurrency (the burst the new primary takes), the
//! number of flags changed from the scenario's `[buffer]` (an operator changes as few as
//! possible), window, and max failover duration. Everything is ordered, and every run is
//! deterministic, so the answer is the same every time.

use core::time::Duration;
use std::collections::BTreeMap;
use std::io::{self, Write};

use failover_buffer::Config;
use serde::Serialize;

use crate::duration::format_duration;
use crate::error::{ObjectiveError, SimError};
use crate::report::Report;
use crate::scenario::{Objective, Scenario};
use crate::sim::run;
use crate::table::{ms, write_columns};

/// Drain concurrencies tried.
pub const DRAIN_CONCURRENCIES: [usize; 7] = [1, 2, 4, 8, 16, 32, 64];
/// Windows tried, besides the scenario's own.
pub const WINDOWS: [Duration; 5] = [
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(5),
    Duration::from_secs(10),
    Duration::from_secs(20),
];
/// Max failover durations tried, besides the scenario's own.
pub const MAX_FAILOVER_DURATIONS: [Duration; 4] = [
    Duration::from_secs(5),
    Duration::from_secs(10),
    Duration::from_secs(20),
    Duration::from_secs(40),
];
/// The largest size tried when the objective sets no memory limit.
pub const LARGEST_SIZE: usize = 10_000_000;

/// One config the search judged, and what its run measured.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Candidate {
    /// Slots.
    pub size: usize,
    /// Drain concurrency.
    pub drain_concurrency: usize,
    /// Window.
    #[serde(serialize_with = "as_text")]
    pub window: Duration,
    /// Max failover duration.
    #[serde(serialize_with = "as_text")]
    pub max_failover_duration: Duration,
    /// What the run measured.
    pub report: Report,
    /// The objectives it missed, and by how much; empty if it meets them all.
    pub misses: Vec<Miss>,
}

fn as_text<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_duration(*d))
}

/// One objective a candidate missed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Miss {
    /// The objective's key in `[objective]`.
    pub objective: &'static str,
    /// The limit, as text.
    pub limit: String,
    /// What the candidate got, as text.
    pub got: String,
    /// By how much it missed, as text.
    pub by: String,
}

/// What [`recommend`] found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Recommendation {
    /// The scenario's name.
    pub scenario: String,
    /// Its traffic and failovers in one line.
    pub summary: String,
    /// The seed.
    pub seed: u64,
    /// The objective, in one line.
    pub objective: String,
    /// Simulations run (after memoisation).
    pub runs: usize,
    /// The smallest passing config, if any passed.
    pub best: Option<Candidate>,
    /// Passing configs that trade size or flags for latency: each at least 10% better than
    /// the recommendation and every runner-up before it on p99 added latency or drain time,
    /// best-ranked first, at most five.
    pub runners_up: Vec<Candidate>,
    /// Every candidate that failed and would otherwise have ranked above the
    /// recommendation (all of them when nothing passed), best first.
    pub rejected: Vec<Candidate>,
}

/// Progress of a search: runs done of at most `planned`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SearchProgress {
    /// Runs done.
    pub done: usize,
    /// An upper bound on the runs the search makes.
    pub planned: usize,
}

/// Searches for the smallest config that meets the scenario's objective (see the module
/// documentation for the search), calling `progress` after every run.
///
/// ```
/// use failover_buffer_sim::{Scenario, experiment::recommend};
///
/// // Four requests arrive during a 1 s outage; each attempt takes 10 ms.
/// let scenario = Scenario::from_toml_str(r#"
///     [service]
///     distribution = "constant"
///     time = "10ms"
///     [[shards]]
///     name = "ks/0"
///     arrivals = ["1.2s", "1.4s", "1.6s", "1.8s"]
///     [[shards.failovers]]
///     start = "1s"
///     duration = "1s"
///     [objective]
///     errors = 0
///     drain_time = "20ms"
/// "#, "four.toml")?;
/// let found = recommend(&scenario, 1, &mut |_| {})?;
/// let best = found.best.expect("the objective can be met");
/// // Four slots hold them all; two at a time drain them in 2 × 10 ms.
/// assert_eq!((best.size, best.drain_concurrency), (4, 2));
/// # Ok::<(), failover_buffer_sim::SimError>(())
/// ```
pub fn recommend(
    scenario: &Scenario,
    seed: u64,
    progress: &mut dyn FnMut(SearchProgress),
) -> Result<Recommendation, SimError> {
    let Some(objective) = scenario.objective else {
        return Err(SimError::Objective(ObjectiveError::Missing));
    };
    let base = &scenario.buffer;
    if !base.enabled || base.dry_run {
        return Err(SimError::Objective(ObjectiveError::NotBuffering));
    }
    let sizes = size_ladder(objective.size.unwrap_or(LARGEST_SIZE));
    let mut windows: Vec<Duration> = WINDOWS.to_vec();
    windows.push(base.window);
    windows.sort_unstable();
    windows.dedup();
    let mut maxes: Vec<Duration> = MAX_FAILOVER_DURATIONS.to_vec();
    maxes.push(base.max_failover_duration);
    maxes.sort_unstable();
    maxes.dedup();
    let pairs: Vec<(Duration, Duration)> = windows
        .iter()
        .flat_map(|&w| maxes.iter().map(move |&m| (w, m)))
        .filter(|&(w, m)| w <= m)
        .collect();
    let steps = usize::BITS as usize - sizes.len().leading_zeros() as usize + 1;
    let planned = pairs.len() * DRAIN_CONCURRENCIES.len() * steps;
    let mut search = Search {
        scenario,
        seed,
        base,
        runs: BTreeMap::new(),
        progress,
        planned,
    };

    let mut judged = Vec::new();
    let mut hint = 0;
    for &(window, max) in &pairs {
        for &concurrency in &DRAIN_CONCURRENCIES {
            let config = |size: usize| Config {
                size,
                window,
                max_failover_duration: max,
                drain_concurrency: concurrency,
                ..base.clone()
            };
            // The smallest size on the ladder that meets the error limit; the largest if
            // none does (it is then rejected for its errors). Neighbouring candidates
            // mostly need the same size, so the last answer is tried first.
            let mut meets = |at: usize| -> Result<bool, SimError> {
                let report = search.run(&config(sizes[at]))?;
                Ok(objective.errors.is_none_or(|n| report.errors.total <= n))
            };
            let last = sizes.len() - 1;
            let lo = if meets(hint)? {
                if hint == 0 || !meets(hint - 1)? {
                    hint
                } else {
                    bisect(0, hint - 1, &mut meets)?
                }
            } else if hint == last {
                last
            } else {
                bisect(hint + 1, last, &mut meets)?
            };
            hint = lo;
            let config = config(sizes[lo]);
            let report = search.run(&config)?;
            let misses = misses(&objective, &config, &report);
            judged.push(Candidate {
                size: config.size,
                drain_concurrency: concurrency,
                window,
                max_failover_duration: max,
                report,
                misses,
            });
        }
    }
    let changed = |c: &Candidate| {
        usize::from(c.window != base.window)
            + usize::from(c.max_failover_duration != base.max_failover_duration)
    };
    judged.sort_by_key(|c| {
        (
            c.size,
            c.drain_concurrency,
            changed(c),
            c.window,
            c.max_failover_duration,
        )
    });
    let best_at = judged.iter().position(|c| c.misses.is_empty());
    let (rejected, best, runners_up) = match best_at {
        Some(at) => {
            let best = judged[at].clone();
            let rejected: Vec<Candidate> = judged[..at].to_vec();
            let mut runners_up: Vec<Candidate> = Vec::new();
            for c in &judged[at + 1..] {
                if !c.misses.is_empty() {
                    continue;
                }
                // A trade-off: at least 10% better than the recommendation and than every
                // runner-up so far on p99 added latency or on drain time (ranked after
                // them, so no smaller).
                let improves = |o: &Candidate| {
                    let (p, d) = (c.report.added_latency.p99_ns, c.report.drain_time_ns);
                    let (op, od) = (o.report.added_latency.p99_ns, o.report.drain_time_ns);
                    p.saturating_mul(10) < op.saturating_mul(9)
                        || d.saturating_mul(10) < od.saturating_mul(9)
                };
                if improves(&best) && runners_up.iter().all(improves) {
                    runners_up.push(c.clone());
                }
                if runners_up.len() == 5 {
                    break;
                }
            }
            (rejected, Some(best), runners_up)
        }
        None => (judged, None, Vec::new()),
    };
    Ok(Recommendation {
        scenario: scenario.name.clone(),
        summary: scenario.summary(),
        seed,
        objective: objective_line(&objective),
        runs: search.runs.len(),
        best,
        runners_up,
        rejected,
    })
}

/// The smallest index in `[lo, hi]` where `meets` holds, or `hi` if it holds nowhere
/// below `hi`, assuming it holds from some index on.
fn bisect(
    mut lo: usize,
    mut hi: usize,
    meets: &mut dyn FnMut(usize) -> Result<bool, SimError>,
) -> Result<usize, SimError> {
    while lo < hi {
        let mid = (lo + hi) / 2;
        if meets(mid)? {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    Ok(lo)
}

/// Sizes of one significant digit (1, 2, .., 9, 10, 20, .., 90, 100, ..) up to `largest`,
/// which is included.
fn size_ladder(largest: usize) -> Vec<usize> {
    let mut sizes = Vec::new();
    let mut scale = 1usize;
    'outer: loop {
        for digit in 1..10 {
            let Some(size) = scale.checked_mul(digit) else {
                break 'outer;
            };
            if size >= largest {
                break 'outer;
            }
            sizes.push(size);
        }
        let Some(next) = scale.checked_mul(10) else {
            break;
        };
        scale = next;
    }
    sizes.push(largest);
    sizes
}

struct Search<'a> {
    scenario: &'a Scenario,
    seed: u64,
    base: &'a Config,
    runs: BTreeMap<(usize, usize, Duration, Duration), Report>,
    progress: &'a mut dyn FnMut(SearchProgress),
    planned: usize,
}

impl Search<'_> {
    fn run(&mut self, config: &Config) -> Result<Report, SimError> {
        let key = (
            config.size,
            config.drain_concurrency,
            config.window,
            config.max_failover_duration,
        );
        if let Some(report) = self.runs.get(&key) {
            return Ok(report.clone());
        }
        debug_assert_eq!(config.enabled, self.base.enabled);
        let mut report = run(self.scenario, config, self.seed)?;
        // The timeline is not shown and would only take memory.
        report.timeline = Default::default();
        self.runs.insert(key, report.clone());
        (self.progress)(SearchProgress {
            done: self.runs.len(),
            planned: self.planned.max(self.runs.len()),
        });
        Ok(report)
    }
}

fn misses(objective: &Objective, config: &Config, report: &Report) -> Vec<Miss> {
    let mut misses = Vec::new();
    if let Some(limit) = objective.errors {
        if report.errors.total > limit {
            misses.push(Miss {
                objective: "errors",
                limit: limit.to_string(),
                got: report.errors.total.to_string(),
                by: (report.errors.total - limit).to_string(),
            });
        }
    }
    let mut time = |objective: &'static str, limit: Option<Duration>, got: u64| {
        if let Some(limit) = limit {
            let limit_ns = u64::try_from(limit.as_nanos()).unwrap_or(u64::MAX);
            if got > limit_ns {
                misses.push(Miss {
                    objective,
                    limit: format_duration(limit),
                    got: ms(got),
                    by: ms(got - limit_ns),
                });
            }
        }
    };
    time(
        "added_latency_p99",
        objective.added_latency_p99,
        report.added_latency.p99_ns,
    );
    time(
        "added_latency_max",
        objective.added_latency_max,
        report.added_latency.max_ns,
    );
    time("drain_time", objective.drain_time, report.drain_time_ns);
    if let Some(limit) = objective.held_bytes {
        if report.peak_held_bytes > limit {
            misses.push(Miss {
                objective: "held_bytes",
                limit: limit.to_string(),
                got: report.peak_held_bytes.to_string(),
                by: (report.peak_held_bytes - limit).to_string(),
            });
        }
    }
    if let Some(limit) = objective.size {
        if config.size > limit {
            misses.push(Miss {
                objective: "size",
                limit: limit.to_string(),
                got: config.size.to_string(),
                by: (config.size - limit).to_string(),
            });
        }
    }
    misses
}

fn objective_line(o: &Objective) -> String {
    let mut parts = Vec::new();
    if let Some(n) = o.errors {
        parts.push(format!("errors <= {n}"));
    }
    if let Some(d) = o.added_latency_p99 {
        parts.push(format!("added latency p99 <= {}", format_duration(d)));
    }
    if let Some(d) = o.added_latency_max {
        parts.push(format!("added latency max <= {}", format_duration(d)));
    }
    if let Some(d) = o.drain_time {
        parts.push(format!("drain time <= {}", format_duration(d)));
    }
    if let Some(n) = o.size {
        parts.push(format!("size <= {n} slots"));
    }
    if let Some(n) = o.held_bytes {
        parts.push(format!("held bytes <= {n}"));
    }
    if parts.is_empty() {
        "none (every config meets it)".to_string()
    } else {
        parts.join(", ")
    }
}

/// Writes the human-readable recommendation: the config, the runners-up, and why the
/// smaller candidates failed (candidates with the same size, concurrency and outcome are
/// one row, listing their windows and max failover durations).
pub fn write_recommendation(out: &mut dyn Write, r: &Recommendation) -> io::Result<()> {
    writeln!(
        out,
        "recommend over scenario {:?}, seed {}",
        r.scenario, r.seed
    )?;
    writeln!(out, "traffic: {}", r.summary)?;
    writeln!(out, "objective: {}", r.objective)?;
    writeln!(out, "searched: {} runs", r.runs)?;
    writeln!(out)?;
    match &r.best {
        Some(best) => {
            writeln!(
                out,
                "recommended: size={} drain_concurrency={} window={} max_failover_duration={}",
                best.size,
                best.drain_concurrency,
                format_duration(best.window),
                format_duration(best.max_failover_duration)
            )?;
            let b = &best.report;
            writeln!(
                out,
                "  errors {}, added latency p99 {} (max {}), drain time {}, peak slots {}",
                b.errors.total,
                ms(b.added_latency.p99_ns),
                ms(b.added_latency.max_ns),
                ms(b.drain_time_ns),
                b.peak_slots
            )?;
        }
        None => writeln!(out, "no config searched meets the objective")?,
    }
    if !r.runners_up.is_empty() {
        writeln!(out)?;
        writeln!(
            out,
            "runners-up (ranked below, but at least 10% better on p99 or drain time):"
        )?;
        let mut rows = vec![
            [
                "size",
                "drain_concurrency",
                "window",
                "max_failover_duration",
                "errors",
                "added p99",
                "added max",
                "drain time",
            ]
            .map(str::to_string)
            .to_vec(),
        ];
        for c in &r.runners_up {
            let rep = &c.report;
            rows.push(vec![
                c.size.to_string(),
                c.drain_concurrency.to_string(),
                format_duration(c.window),
                format_duration(c.max_failover_duration),
                rep.errors.total.to_string(),
                ms(rep.added_latency.p99_ns),
                ms(rep.added_latency.max_ns),
                ms(rep.drain_time_ns),
            ]);
        }
        write_columns(out, &rows, &|_| false)?;
    }
    if !r.rejected.is_empty() {
        writeln!(out)?;
        let what = if r.best.is_some() {
            "rejected (every smaller candidate, at the smallest size meeting the error limit):"
        } else {
            "rejected (at the smallest size meeting the error limit, or the largest tried):"
        };
        writeln!(out, "{what}")?;
        let mut rows = vec![
            [
                "size",
                "drain_concurrency",
                "window",
                "max_failover_duration",
                "missed",
            ]
            .map(str::to_string)
            .to_vec(),
        ];
        for group in group_rejected(&r.rejected) {
            rows.push(group);
        }
        write_columns(out, &rows, &|c| c == 4)?;
    }
    Ok(())
}

/// Rows of the rejected table: candidates with the same size, concurrency and misses merged,
/// in rank order of their first member.
fn group_rejected(rejected: &[Candidate]) -> Vec<Vec<String>> {
    let missed = |c: &Candidate| {
        c.misses
            .iter()
            .map(|m| format!("{} {} > {} by {}", m.objective, m.got, m.limit, m.by))
            .collect::<Vec<_>>()
            .join("; ")
    };
    /// Size, concurrency, why, windows, max failover durations.
    type Group = (usize, usize, String, Vec<Duration>, Vec<Duration>);
    let mut groups: Vec<Group> = Vec::new();
    for c in rejected {
        let why = missed(c);
        let found = groups
            .iter_mut()
            .find(|g| g.0 == c.size && g.1 == c.drain_concurrency && g.2 == why);
        match found {
            Some(g) => {
                g.3.push(c.window);
                g.4.push(c.max_failover_duration);
            }
            None => groups.push((
                c.size,
                c.drain_concurrency,
                why,
                vec![c.window],
                vec![c.max_failover_duration],
            )),
        }
    }
    let list = |mut ds: Vec<Duration>| {
        ds.sort_unstable();
        ds.dedup();
        ds.into_iter()
            .map(format_duration)
            .collect::<Vec<_>>()
            .join(",")
    };
    groups
        .into_iter()
        .map(|(size, c, why, w, m)| vec![size.to_string(), c.to_string(), list(w), list(m), why])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_size_ladder_has_one_significant_digit_and_ends_at_the_largest() {
        assert_eq!(size_ladder(35), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 20, 30, 35]);
        assert_eq!(size_ladder(1), [1]);
        assert_eq!(
            *size_ladder(LARGEST_SIZE).last().expect("a size"),
            LARGEST_SIZE
        );
    }
}
