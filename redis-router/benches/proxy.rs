//! Throughput and latency through the router with the buffer enabled, through the same
//! router with `--no-buffer`, and against Redis directly: the same load (50 redis-rs
//! connections, alternating `INCR` and `SET`, one command at a time per connection), in the
//! same run, on loopback, interleaved in rounds so that drift hits all three alike.
//!
//! ```text
//! cargo bench -p failover-buffer-redis --bench proxy
//! ```
//!
//! With no failover, the buffer's whole cost is one atomic load per command: its column
//! should match `--no-buffer` within the spread between rounds.

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::Duration;

use failover_buffer_redis::{Router, RouterConfig, Topology};
use support::*;

const CONNECTIONS: usize = 50;
const ROUND: Duration = Duration::from_secs(2);
const ROUNDS: usize = 5;

fn main() {
    // `cargo test --benches` runs this with `--bench` absent: keep that a quick smoke run.
    let smoke = !std::env::args().any(|a| a == "--bench");
    if !redis_available() {
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(bench(smoke));
}

async fn bench(smoke: bool) {
    let server = redis_server(&[]);
    let listen = "127.0.0.1:0".parse().unwrap();
    let topology = Topology::Fixed(vec![server.addr()]);
    let buffered = Router::start(RouterConfig::new(listen, topology.clone()))
        .await
        .unwrap();
    let mut config = RouterConfig::new(listen, topology);
    config.buffer.enabled = false;
    let unbuffered = Router::start(config).await.unwrap();
    let targets = [
        ("redis directly", server.addr()),
        ("router --no-buffer", unbuffered.local_addr()),
        ("router, buffer on", buffered.local_addr()),
    ];
    let (rounds, round) = if smoke {
        (1, Duration::from_millis(200))
    } else {
        (ROUNDS, ROUND)
    };
    let mut results: Vec<Vec<LoadReport>> = targets.iter().map(|_| Vec::new()).collect();
    for r in 0..rounds {
        for (i, (_, addr)) in targets.iter().enumerate() {
            let report = run_load(*addr, CONNECTIONS, round, &format!("bench{r}{i}")).await;
            assert!(report.errors().is_empty(), "errors in a benchmark round");
            results[i].push(report);
        }
    }
    println!(
        "{CONNECTIONS} connections, {rounds} rounds of {:.1} s per target, interleaved",
        round.as_secs_f64()
    );
    println!(
        "{:<20} {:>12} {:>22} {:>10} {:>10}",
        "target", "ops/s", "(min..max per round)", "p50 ms", "p99 ms"
    );
    let mut mean = Vec::new();
    for ((name, _), reports) in targets.iter().zip(&results) {
        let per_round: Vec<f64> = reports.iter().map(LoadReport::throughput).collect();
        let avg = per_round.iter().sum::<f64>() / per_round.len() as f64;
        let min = per_round.iter().cloned().fold(f64::MAX, f64::min);
        let max = per_round.iter().cloned().fold(0.0, f64::max);
        let all = LoadReport {
            ops: reports.iter().flat_map(|r| r.ops.iter().cloned()).collect(),
            elapsed: reports.iter().map(|r| r.elapsed).sum(),
        };
        println!(
            "{name:<20} {avg:>12.0} {:>22} {:>10.3} {:>10.3}",
            format!("({min:.0}..{max:.0})"),
            all.quantile(0.5, |_| true).as_secs_f64() * 1e3,
            all.quantile(0.99, |_| true).as_secs_f64() * 1e3,
        );
        mean.push(avg);
    }
    // The same ratio round by round (adjacent measurements) shows the noise it sits in.
    let per_round: Vec<f64> = results[2]
        .iter()
        .zip(&results[1])
        .map(|(on, off)| on.throughput() / off.throughput())
        .collect();
    let lo = per_round.iter().cloned().fold(f64::MAX, f64::min);
    let hi = per_round.iter().cloned().fold(0.0, f64::max);
    println!(
        "ratios: router --no-buffer / redis = {:.2}; buffer on / --no-buffer = {:.3} (per round {lo:.2}..{hi:.2})",
        mean[1] / mean[0],
        mean[2] / mean[1]
    );
}
