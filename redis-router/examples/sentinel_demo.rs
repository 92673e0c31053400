//! The planned-failover demo: a primary, a replica and three Sentinels on loopback, two
//! routers following Sentinel (buffer on, and `--no-buffer`), 50 client connections through
//! each, and `SENTINEL FAILOVER` midway. Prints what the clients saw and draws their latency
//! over time.
//!
//! ```text
//! cargo run --release -p failover-buffer-redis --example sentinel_demo -- latency.svg
//! ```
//!
//! Needs `redis-server` and `redis-sentinel` (Debian: `apt-get install redis-server
//! redis-sentinel`). Every process runs on a free loopback port and is killed on exit.

mod plot;
#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use failover_buffer_redis::{Router, RouterConfig, Topology};
use plotters::prelude::*;
use support::*;

const CONNECTIONS: usize = 50;
const LOAD: Duration = Duration::from_secs(8);
const FAILOVER_AT: Duration = Duration::from_secs(3);
const BUCKET: Duration = Duration::from_millis(50);

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let plot = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "sentinel-failover.svg".into());
    if !redis_available() {
        return Err("redis-server and redis-sentinel are needed".into());
    }
    let (primary, replica) = primary_and_replica(&[]);
    // `SENTINEL FAILOVER` does not wait for `down-after-milliseconds`; 2 s keeps Sentinel
    // from judging the replica it just promoted down in the second after the switch, which
    // it sometimes did at 1 s (see the README's Sentinel section).
    let sentinels = sentinels(3, &primary, "mymaster", 2000);
    let topology = Topology::Sentinel {
        sentinels: sentinels.iter().map(Process::addr).collect(),
        master: "mymaster".into(),
    };
    let listen = "127.0.0.1:0".parse()?;
    let buffered = Router::start(RouterConfig::new(listen, topology.clone())).await?;
    let mut config = RouterConfig::new(listen, topology);
    config.buffer.enabled = false;
    let unbuffered = Router::start(config).await?;
    println!(
        "primary {}, replica {}, Sentinels {:?}",
        primary.addr(),
        replica.addr(),
        sentinels.iter().map(Process::addr).collect::<Vec<_>>()
    );
    println!(
        "{CONNECTIONS} connections through each router for {} s (INCR and unique SET); SENTINEL FAILOVER at {} s",
        LOAD.as_secs(),
        FAILOVER_AT.as_secs()
    );

    let start = Instant::now();
    let with = tokio::spawn(run_load_from(
        start,
        buffered.local_addr(),
        CONNECTIONS,
        LOAD,
        "with",
    ));
    let without = tokio::spawn(run_load_from(
        start,
        unbuffered.local_addr(),
        CONNECTIONS,
        LOAD,
        "without",
    ));
    tokio::time::sleep_until((start + FAILOVER_AT).into()).await;
    let mut s = sentinels[0].conn();
    let _: String = redis::cmd("SENTINEL")
        .arg("FAILOVER")
        .arg("mymaster")
        .query(&mut s)?;
    let (with, without) = (with.await?, without.await?);

    let new_primary = buffered.primary().ok_or("no primary after the failover")?;
    println!("new primary: {new_primary} (was {})", primary.addr());
    for (label, report, tag) in [
        ("buffer on ", &with, "with"),
        ("--no-buffer", &without, "without"),
    ] {
        let verdict = verify(new_primary, tag, report);
        let lost =
            report.acked_incrs().saturating_sub(verdict.counter) + verdict.missing.len() as u64;
        println!("{}", summary(label, report, FAILOVER_AT));
        println!("  acknowledged writes missing on the new primary: {lost}");
        if let Some(op) = report.errors().first() {
            println!(
                "  first client error: {}",
                op.error.as_deref().unwrap_or("")
            );
        }
    }
    let stats = buffered.stats();
    println!(
        "buffer: {} failover, {} commands held, {} released, {} evicted; held {:.0} ms (first hold to new primary)",
        stats.starts,
        stats.buffered,
        stats.drained,
        stats.evicted.total(),
        stats.last_failover_duration.as_secs_f64() * 1e3
    );
    draw(&plot, &with, &without)?;
    println!("latency plot: {plot}");
    Ok(())
}

/// The slowest command that started in each 50 ms, per router, on a log scale.
fn draw(
    path: &str,
    with: &LoadReport,
    without: &LoadReport,
) -> Result<(), Box<dyn std::error::Error>> {
    let caption = format!(
        "SENTINEL FAILOVER at {} s: client errors {} with the buffer, {} without",
        FAILOVER_AT.as_secs(),
        with.errors().len(),
        without.errors().len()
    );
    let series = vec![
        plot::Series {
            label: "buffer on (no client error)".into(),
            color: BLUE.to_rgba(),
            width: 2,
            points: plot::slowest_per_bucket(with.ops.iter(), LOAD, BUCKET),
        },
        plot::Series {
            label: "--no-buffer (successful commands only)".into(),
            color: RED.to_rgba(),
            width: 1,
            points: plot::slowest_per_bucket(without.ops.iter(), LOAD, BUCKET),
        },
    ];
    plot::draw_latency(path, &caption, LOAD, BUCKET, FAILOVER_AT, series)
}
