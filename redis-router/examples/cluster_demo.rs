//! The cluster demo: three primaries and three replicas on loopback (Redis Cluster), two
//! routers in front of it (buffer on, and `--no-buffer`), 50 plain client connections
//! through each, and `SIGKILL` of shard 3's primary midway. Prints what the clients saw, per
//! shard, and draws each shard's latency over time.
//!
//! ```text
//! cargo run --release -p failover-buffer-redis --example cluster_demo -- cluster.svg [TRACE_DIR]
//! ```
//!
//! With `TRACE_DIR`, it also writes what the simulator needs to replay the run
//! (`trace-buffer-on.csv`, `trace-no-buffer.csv`: one row per command, `time,shard`; and
//! `timeline.csv`: the failover as measured), for the cross-check in the README.
//!
//! Needs `redis-server` and `redis-cli` (Debian: `apt-get install redis-server
//! redis-tools`). Every process runs on a free loopback port and is killed on exit.

mod plot;
#[path = "../tests/support/mod.rs"]
mod support;

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use failover_buffer_redis::{Router, RouterConfig, Topology};
use plotters::prelude::*;
use support::*;

const CONNECTIONS: usize = 50;
const LOAD: Duration = Duration::from_secs(8);
const KILL_AT: Duration = Duration::from_secs(3);
const BUCKET: Duration = Duration::from_millis(50);

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let plot = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "cluster-failover.svg".into());
    let trace_dir = std::env::args().nth(2);
    if !cluster_available() {
        return Err("redis-server and redis-cli are needed".into());
    }
    let mut cluster = redis_cluster(1000);
    let seeds = vec![cluster.addr(0), cluster.addr(1), cluster.addr(2)];
    let listen = "127.0.0.1:0".parse()?;
    let config = RouterConfig::new(listen, Topology::Cluster { seeds });
    let buffered = Router::start(config.clone()).await?;
    let mut unbuffered_config = config;
    unbuffered_config.buffer.enabled = false;
    let unbuffered = Router::start(unbuffered_config).await?;
    for (i, s) in cluster.shards.iter().enumerate() {
        println!(
            "shard {} (slots {}): primary {}, replica {}",
            i + 1,
            s.name,
            cluster.addr(s.primary),
            cluster.addr(s.replica)
        );
    }
    println!(
        "{CONNECTIONS} connections through each router for {} s (INCR and unique SET, keys over all slots); SIGKILL of shard 3's primary at {} s",
        LOAD.as_secs(),
        KILL_AT.as_secs()
    );

    let start = Instant::now();
    let (with, without) = cluster_loads(
        start,
        buffered.local_addr(),
        unbuffered.local_addr(),
        CONNECTIONS,
        LOAD,
    );
    tokio::time::sleep_until((start + KILL_AT).into()).await;
    let target = cluster.shards[2].clone();
    let watch = RoleWatch::start(
        start,
        cluster.addr(target.replica),
        cluster.addr(target.primary),
    );
    let killed_at = start.elapsed();
    cluster.nodes[target.primary].kill();
    let (with, without) = (with.await?, without.await?);
    let promoted = watch
        .finish()
        .0
        .ok_or("shard 3's replica was not promoted")?;
    println!(
        "killed at {:.3} s; the cluster promoted {} at {:.3} s",
        killed_at.as_secs_f64(),
        cluster.addr(target.replica),
        promoted.as_secs_f64()
    );

    for (label, report) in [("buffer on ", &with), ("--no-buffer", &without)] {
        print!("{}", per_shard(label, report, &cluster, killed_at));
        let verdict = verify_cluster(&cluster, report);
        println!(
            "  acknowledged writes missing afterwards, per shard: SETs {:?}, INCRs {:?}",
            verdict.missing_sets, verdict.lost_incrs
        );
        // Added latency as the simulator counts it: each successful command's latency minus
        // the usual one (the median before the kill), over the whole run.
        let usual = report.quantile(0.5, |o| o.at + o.took < killed_at);
        let mut added: Vec<Duration> = report
            .ops
            .iter()
            .filter(|o| o.error.is_none())
            .map(|o| o.took.saturating_sub(usual))
            .collect();
        added.sort();
        let at = |q: f64| added[((added.len() - 1) as f64 * q).round() as usize];
        println!(
            "  added latency over the usual {:.1} ms: p50 {:.1} ms, p99 {:.1} ms, max {:.0} ms; commands slower than 1 s: {}",
            ms(usual),
            ms(at(0.5)),
            ms(at(0.99)),
            ms(at(1.0)),
            added
                .iter()
                .filter(|d| **d > Duration::from_secs(1))
                .count()
        );
        if let Some(op) = report.errors().first() {
            println!(
                "  first client error: {}",
                op.error.as_deref().unwrap_or("")
            );
        }
    }
    let mut held_for = Duration::ZERO;
    for s in buffered.shards() {
        let stats = buffered.buffer().stats(&s.shard);
        held_for = held_for.max(stats.last_failover_duration);
        println!(
            "buffer shard {}: {} failover, {} commands held, {} released, {} evicted; buffering lasted {:.0} ms",
            s.shard.name(),
            stats.starts,
            stats.buffered,
            stats.drained,
            stats.evicted.total(),
            stats.last_failover_duration.as_secs_f64() * 1e3
        );
    }
    draw(&plot, &cluster, &with, &without, killed_at)?;
    println!("latency plot: {plot}");

    if let Some(dir) = trace_dir {
        std::fs::create_dir_all(&dir)?;
        for (name, report) in [("buffer-on", &with), ("no-buffer", &without)] {
            let mut ops: Vec<&Op> = report.ops.iter().collect();
            ops.sort_by_key(|o| o.at);
            let mut csv = String::from("time,shard\n");
            for op in ops {
                let shard = &cluster.shards[cluster.shard_of_key(op.key().unwrap_or(""))].name;
                writeln!(csv, "{}ns,redis/{shard}", op.at.as_nanos())?;
            }
            std::fs::write(format!("{dir}/trace-{name}.csv"), csv)?;
        }
        // The router saw the new primary when its buffering stopped.
        let seen = killed_at + held_for;
        std::fs::write(
            format!("{dir}/timeline.csv"),
            format!(
                "shard,kind,start,duration,health_delay\nredis/{},failover,{}ns,{}ns,{}ns\n",
                target.name,
                killed_at.as_nanos(),
                (promoted - killed_at).as_nanos(),
                seen.saturating_sub(promoted).as_nanos()
            ),
        )?;
        println!("simulator trace and timeline: {dir}/");
    }
    Ok(())
}

/// The slowest command that started in each 50 ms, per shard, on a log scale.
fn draw(
    path: &str,
    cluster: &ClusterNodes,
    with: &LoadReport,
    without: &LoadReport,
    killed_at: Duration,
) -> Result<(), Box<dyn std::error::Error>> {
    let of_shard = |report: &LoadReport, shard: usize| {
        let ops = report.ops.iter();
        let ops = ops.filter(move |o| o.key().is_some_and(|k| cluster.shard_of_key(k) == shard));
        plot::slowest_per_bucket(ops, LOAD, BUCKET)
    };
    let caption = format!(
        "SIGKILL of shard 3's primary at {:.1} s: client errors {} with the buffer, {} without",
        killed_at.as_secs_f64(),
        with.errors().len(),
        without.errors().len()
    );
    let colors = [GREEN.mix(0.9), MAGENTA.mix(0.9), BLUE.mix(1.0)];
    let mut series: Vec<_> = colors
        .iter()
        .enumerate()
        .map(|(shard, color)| plot::Series {
            label: format!(
                "buffer on, shard {} ({})",
                shard + 1,
                cluster.shards[shard].name
            ),
            color: *color,
            width: 2,
            points: of_shard(with, shard),
        })
        .collect();
    series.push(plot::Series {
        label: "--no-buffer, shard 3 (successful commands only)".into(),
        color: RED.mix(0.6),
        width: 1,
        points: of_shard(without, 2),
    });
    plot::draw_latency(path, &caption, LOAD, BUCKET, killed_at, series)
}
