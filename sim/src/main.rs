//! `failover-buffer-sim`: what a failover costs your clients, with and without the buffer.
//!
//! ```text
//! failover-buffer-sim [SCENARIO.toml] [--seed N] [--json] [--plot FILE.svg]
//!                     [--sweep KEY=V1,V2,.. | --recommend]
//!                     [--trace FILE.csv] [--timeline FILE.csv]
//! ```
//!
//! Without a scenario file it runs the built-in default scenario. See the crate README for
//! the scenario format.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use failover_buffer::Config;
use failover_buffer_sim::{
    Comparison, Observer, Report, Scenario, SimError, Sweep, TraceReader, compare,
    experiment::{recommend, write_recommendation},
    grid, grid_size, plot_timeline, read_timeline, run, write_comparison, write_grid,
};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

/// Simulates a database failover with and without the failover buffer, and reports what the
/// application saw: errors by cause, added latency, evictions, slots used, drain time.
#[derive(Parser, Debug)]
#[command(name = "failover-buffer-sim", version)]
struct Args {
    /// Scenario file (TOML). Without one, the built-in default scenario runs: a 3-second
    /// planned failover at 2,000 requests per second on one shard, Vitess's default config.
    scenario: Option<PathBuf>,
    /// Seed for arrivals and service times (default: the scenario's `seed`, or 1).
    #[arg(long)]
    seed: Option<u64>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Also draw the scenario run's timeline (queue depth, errors and releases per 100 ms)
    /// into this SVG file.
    #[arg(long, value_name = "FILE.svg")]
    plot: Option<PathBuf>,
    /// Run the scenario once per value of a buffer config key and print one row per value,
    /// e.g. `--sweep size=100,1000,5000`. Repeat for more keys to get the grid: one row per
    /// combination. For `keyspace_shards`, separate values with `;`.
    #[arg(long, value_name = "KEY=V1,V2,..", conflicts_with = "recommend")]
    sweep: Vec<Sweep>,
    /// Search for the smallest buffer config that meets the scenario's `[objective]`, and
    /// print it, the runners-up, and why each smaller candidate failed.
    #[arg(long)]
    recommend: bool,
    /// Replay this request trace (CSV: time,shard[,size]) instead of the scenario's
    /// traffic. It is streamed, never loaded whole.
    #[arg(long, value_name = "FILE.csv")]
    trace: Option<PathBuf>,
    /// Use this failover timeline (CSV with a header: shard,start,duration,..) instead of
    /// the scenario's failovers.
    #[arg(long, value_name = "FILE.csv")]
    timeline: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match execute(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn execute(args: &Args) -> Result<(), SimError> {
    let mut scenario = match &args.scenario {
        Some(path) => Scenario::from_file(path)?,
        None => Scenario::default_scenario(),
    };
    if let Some(path) = &args.timeline {
        read_timeline(path, &mut scenario)?;
    }
    if let Some(path) = &args.trace {
        // Check the file opens before anything runs; rows are checked as they are read.
        TraceReader::open(path, &scenario.shards)?;
        scenario.trace = Some(path.clone());
    }
    let seed = args.seed.unwrap_or(scenario.seed);
    let scenario = &scenario;
    if args.recommend {
        return recommend_mode(args, scenario, seed);
    }
    let runs = if args.sweep.is_empty() {
        3
    } else {
        grid_size(&args.sweep)
    };
    let mut progress = Progress::new(scenario.duration, runs);
    let mut stdout = std::io::stdout().lock();
    let mut comparison: Option<Comparison> = None;
    if args.sweep.is_empty() {
        let c = compare(scenario, seed, &mut progress)?;
        progress.clear();
        if args.json {
            print_json(&mut stdout, &c)?;
        } else {
            write_comparison(&mut stdout, &c).map_err(stdout_error)?;
        }
        comparison = Some(c);
    } else {
        let report = grid(scenario, seed, &args.sweep, &mut progress)?;
        progress.clear();
        if args.json {
            print_json(&mut stdout, &report)?;
        } else {
            write_grid(&mut stdout, &report).map_err(stdout_error)?;
        }
    }
    if let Some(path) = &args.plot {
        let (mine, none) = match comparison {
            Some(mut c) => {
                let none = c.runs.remove(0).report;
                let mine = c.runs.pop().map(|r| r.report).unwrap_or_default();
                (mine, none)
            }
            None => {
                let mine = run(scenario, &scenario.buffer, seed)?;
                let none = run(scenario, &Config::default(), seed)?;
                (mine, none)
            }
        };
        plot(path, scenario, seed, &mine, &none)?;
    }
    Ok(())
}

fn recommend_mode(args: &Args, scenario: &Scenario, seed: u64) -> Result<(), SimError> {
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        if let Ok(style) =
            ProgressStyle::with_template("{bar:40} {pos}/{len} runs searched, {elapsed}")
        {
            bar.set_style(style);
        }
        bar
    });
    let found = recommend(scenario, seed, &mut |p| {
        if let Some(bar) = &bar {
            bar.set_length(p.planned as u64);
            bar.set_position(p.done as u64);
        }
    })?;
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let mut stdout = std::io::stdout().lock();
    if args.json {
        print_json(&mut stdout, &found)?;
    } else {
        write_recommendation(&mut stdout, &found).map_err(stdout_error)?;
    }
    if let Some(path) = &args.plot {
        let config = match &found.best {
            Some(best) => Config {
                size: best.size,
                drain_concurrency: best.drain_concurrency,
                window: best.window,
                max_failover_duration: best.max_failover_duration,
                ..scenario.buffer.clone()
            },
            None => scenario.buffer.clone(),
        };
        let mine = run(scenario, &config, seed)?;
        let none = run(scenario, &Config::default(), seed)?;
        plot(path, scenario, seed, &mine, &none)?;
    }
    Ok(())
}

fn stdout_error(error: std::io::Error) -> SimError {
    SimError::Io {
        path: PathBuf::from("<stdout>"),
        error,
    }
}

fn plot(
    path: &std::path::Path,
    scenario: &Scenario,
    seed: u64,
    mine: &Report,
    none: &Report,
) -> Result<(), SimError> {
    let title = format!(
        "failover-buffer-sim: scenario {:?}, seed {seed}",
        scenario.name
    );
    plot_timeline(
        path,
        &title,
        &mine.timeline,
        Some(("no buffer", &none.timeline)),
    )
}

fn print_json<T: Serialize>(out: &mut dyn Write, value: &T) -> Result<(), SimError> {
    serde_json::to_writer_pretty(&mut *out, value).map_err(|e| stdout_error(e.into()))?;
    writeln!(out).map_err(stdout_error)
}

/// A progress bar over simulated time, drawn to stderr only when stderr is a terminal, so
/// that stdout (and a redirected stderr) stays byte-identical from run to run.
struct Progress {
    bar: Option<ProgressBar>,
    per_run: u64,
    run: u64,
    last: Duration,
}

impl Progress {
    fn new(duration: Duration, runs: usize) -> Progress {
        let per_run = (duration.as_millis() as u64).max(1);
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(
                Some(per_run * runs as u64),
                ProgressDrawTarget::stderr(),
            );
            if let Ok(style) =
                ProgressStyle::with_template("{bar:40} {percent:>3}% simulated, {elapsed} {msg}")
            {
                bar.set_style(style);
            }
            bar
        });
        Progress {
            bar,
            per_run,
            run: 0,
            last: Duration::ZERO,
        }
    }

    fn clear(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Observer for Progress {
    fn progress(&mut self, now: Duration) {
        // Runs follow one another with the same observer: simulated time going back means
        // the next run has begun.
        if now < self.last {
            self.run += 1;
        }
        self.last = now;
        if let Some(bar) = &self.bar {
            let within = (now.as_millis() as u64).min(self.per_run);
            bar.set_position(self.run * self.per_run + within);
        }
    }
}
