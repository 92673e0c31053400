//! The `failover-buffer-redis` binary: the router, configured from the command line.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use failover_buffer_redis::{ReplayPolicy, Router, RouterConfig, Topology};

/// A Redis proxy that holds commands while the primary fails over.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Where clients connect.
    #[arg(long, default_value = "127.0.0.1:7000")]
    listen: SocketAddr,
    /// A Sentinel address (repeat for several). With --master.
    #[arg(long = "sentinel", value_name = "ADDR")]
    sentinels: Vec<SocketAddr>,
    /// The master name Sentinel monitors.
    #[arg(long, default_value = "mymaster")]
    master: String,
    /// A Redis server (repeat for the primary and each replica), when there is no Sentinel.
    #[arg(long = "server", value_name = "ADDR", conflicts_with = "sentinels")]
    servers: Vec<SocketAddr>,
    /// A Redis Cluster node (repeat for several seeds): route by hash slot, one buffer
    /// shard per cluster shard.
    #[arg(long = "cluster", value_name = "ADDR", conflicts_with_all = ["sentinels", "servers"])]
    cluster: Vec<SocketAddr>,
    /// Hold nothing: the same proxy, with buffering disabled (for comparisons).
    #[arg(long)]
    no_buffer: bool,
    /// The longest one command is held, in milliseconds.
    #[arg(long, default_value_t = 10_000)]
    window_ms: u64,
    /// Commands held at once.
    #[arg(long, default_value_t = 1000)]
    size: usize,
    /// Least time between two buffered failovers, in milliseconds.
    #[arg(long, default_value_t = 60_000)]
    min_time_between_failovers_ms: u64,
    /// Commands that may be replayed after their connection died once sent
    /// (comma-separated; default: reads and plain SET, see the README).
    #[arg(long, value_delimiter = ',')]
    replay_allow: Option<Vec<String>>,
    /// Attempts per command.
    #[arg(long, default_value_t = 3)]
    max_attempts: usize,
    /// Serve Prometheus metrics over HTTP here (`/metrics`).
    #[arg(long)]
    metrics: Option<SocketAddr>,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("failover-buffer-redis: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    if let Some(addr) = args.metrics {
        metrics_exporter_prometheus::PrometheusBuilder::new()
            .with_http_listener(addr)
            .install()?;
        tracing::info!(%addr, "metrics at http://{addr}/metrics");
    }
    let topology = if !args.cluster.is_empty() {
        Topology::Cluster {
            seeds: args.cluster,
        }
    } else if !args.servers.is_empty() {
        Topology::Fixed(args.servers)
    } else if !args.sentinels.is_empty() {
        Topology::Sentinel {
            sentinels: args.sentinels,
            master: args.master,
        }
    } else {
        return Err(
            "give --sentinel ADDR (with --master NAME), --server ADDR or --cluster ADDR".into(),
        );
    };
    let mut config = RouterConfig::new(args.listen, topology);
    config.buffer.enabled = !args.no_buffer;
    config.buffer.window = Duration::from_millis(args.window_ms);
    config.buffer.size = args.size;
    config.buffer.min_time_between_failovers =
        Duration::from_millis(args.min_time_between_failovers_ms);
    config.max_attempts = args.max_attempts;
    if let Some(allow) = &args.replay_allow {
        config.replay = ReplayPolicy::allow(allow.iter().map(String::as_str));
    }
    let router = Router::start(config).await?;
    println!("listening on {}", router.local_addr());
    tokio::signal::ctrl_c().await?;
    tracing::info!("shutting down: releasing held commands");
    router.buffer().shutdown().await;
    Ok(())
}
