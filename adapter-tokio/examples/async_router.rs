//! A small router in front of an in-process fake primary that fails over.
//!
//! 300 requests arrive, one every 10 ms. From 0.5 s to 2.5 s the primary refuses writes (a
//! planned failover); then a new primary, with a newer term, serves. The router's health
//! watcher polls the fake cluster every 100 ms and passes what it sees to the buffer; each
//! request goes through `wait_for_failover_end` before every attempt. At the end the example
//! prints what the application saw.
//!
//! Time is tokio's paused clock, so the run is instant and its output is the same every
//! time; remove `start_paused = true` to watch it take 3.5 real seconds.
//!
//! ```text
//! cargo run -p failover-buffer-tokio --example async_router
//! ```

use std::sync::{Arc, Mutex};
use std::time::Duration;

use failover_buffer_tokio::{
    Config, FailoverBuffer, FailoverCause, HealthStamp, PrimaryId, Shard, ShardStats,
};
use tokio::time::{Instant, sleep, sleep_until};

const REQUESTS: usize = 300;
const ARRIVAL_EVERY: Duration = Duration::from_millis(10);
const FAILOVER_STARTS: Duration = Duration::from_millis(500);
const FAILOVER_ENDS: Duration = Duration::from_millis(2500);
const QUERY_TAKES: Duration = Duration::from_millis(5);
/// Attempts per request, as Vitess's gateway makes.
const ATTEMPTS: usize = 3;

/// The cluster as the fake sees it: which server is primary, with what term, and whether it
/// accepts writes right now.
struct FakeCluster {
    start: Instant,
}

#[derive(Debug)]
enum QueryError {
    /// The primary is read-only: a reparent is in progress (a failover-class error).
    ReadOnly,
}

impl FakeCluster {
    fn health(&self) -> HealthStamp {
        let t = self.start.elapsed();
        if t < FAILOVER_STARTS {
            HealthStamp {
                primary: PrimaryId(1),
                term: 1,
                serving: true,
            }
        } else if t < FAILOVER_ENDS {
            HealthStamp {
                primary: PrimaryId(1),
                term: 1,
                serving: false,
            }
        } else {
            HealthStamp {
                primary: PrimaryId(2),
                term: 2,
                serving: true,
            }
        }
    }

    async fn execute(&self) -> Result<(), QueryError> {
        let writable = self.health().serving;
        sleep(QUERY_TAKES).await;
        if writable {
            Ok(())
        } else {
            Err(QueryError::ReadOnly)
        }
    }
}

/// What one request saw.
#[derive(Debug)]
enum Outcome {
    /// Served on the first attempt, without waiting.
    Direct,
    /// Served after the buffer held it for this long.
    AfterWaiting(Duration),
    /// Failed: the buffer's error, or the primary's after every attempt.
    Error(String),
}

/// The router's request path: every attempt goes through the buffer first.
async fn handle(buffer: &FailoverBuffer, shard: &Shard, cluster: &FakeCluster) -> Outcome {
    let arrived = Instant::now();
    let mut cause = None;
    let mut held = false;
    for _ in 0..ATTEMPTS {
        let guard = match buffer.wait_for_failover_end(shard, cause).await {
            Ok(guard) => guard,
            Err(e) => return Outcome::Error(e.to_string()),
        };
        held |= guard.is_some();
        match cluster.execute().await {
            Ok(()) if held => return Outcome::AfterWaiting(arrived.elapsed()),
            Ok(()) => return Outcome::Direct,
            Err(QueryError::ReadOnly) => {
                // This attempt is over; the next one tells the buffer why it failed.
                drop(guard);
                cause = Some(FailoverCause::Reparent);
            }
        }
    }
    Outcome::Error("primary is read-only (every attempt failed)".into())
}

/// The router's health watcher: polls the cluster and tells the buffer.
async fn watch_health(buffer: FailoverBuffer, shard: Shard, cluster: Arc<FakeCluster>) {
    loop {
        let _ = buffer.health(&shard, cluster.health());
        sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let buffer = FailoverBuffer::new(Config {
        enabled: true,
        drain_concurrency: 16,
        ..Config::default()
    })?;
    let shard = buffer.register_shard("commerce", "0");
    let cluster = Arc::new(FakeCluster {
        start: Instant::now(),
    });
    let watcher = tokio::spawn(watch_health(buffer.clone(), shard.clone(), cluster.clone()));

    let outcomes = Arc::new(Mutex::new(Vec::with_capacity(REQUESTS)));
    let mut requests = Vec::with_capacity(REQUESTS);
    for i in 0..REQUESTS {
        sleep_until(cluster.start + ARRIVAL_EVERY * i as u32).await;
        let (buffer, shard, cluster, outcomes) = (
            buffer.clone(),
            shard.clone(),
            cluster.clone(),
            outcomes.clone(),
        );
        requests.push(tokio::spawn(async move {
            let outcome = handle(&buffer, &shard, &cluster).await;
            outcomes.lock().unwrap().push(outcome);
        }));
    }
    for request in requests {
        request.await?;
    }
    watcher.abort();
    let took = cluster.start.elapsed();

    let outcomes = std::mem::take(&mut *outcomes.lock().unwrap());
    report(&outcomes, &buffer.stats(&shard), took);
    buffer.shutdown().await;
    Ok(())
}

fn report(outcomes: &[Outcome], stats: &ShardStats, took: Duration) {
    let direct = outcomes
        .iter()
        .filter(|o| matches!(o, Outcome::Direct))
        .count();
    let mut waits: Vec<Duration> = outcomes
        .iter()
        .filter_map(|o| match o {
            Outcome::AfterWaiting(d) => Some(*d),
            _ => None,
        })
        .collect();
    waits.sort();
    let errors: Vec<&String> = outcomes
        .iter()
        .filter_map(|o| match o {
            Outcome::Error(e) => Some(e),
            _ => None,
        })
        .collect();

    println!(
        "{} requests, one every {} ms; the primary refused writes from {:.1} s to {:.1} s",
        outcomes.len(),
        ARRIVAL_EVERY.as_millis(),
        FAILOVER_STARTS.as_secs_f64(),
        FAILOVER_ENDS.as_secs_f64(),
    );
    println!("served at once:           {direct}");
    if let (Some(min), Some(max)) = (waits.first(), waits.last()) {
        println!(
            "served after being held:  {} (arrival to answer: min {:.3} s, median {:.3} s, max {:.3} s)",
            waits.len(),
            min.as_secs_f64(),
            waits[waits.len() / 2].as_secs_f64(),
            max.as_secs_f64(),
        );
    }
    println!("errors seen by clients:   {}", errors.len());
    for e in errors.iter().take(3) {
        println!("  {e}");
    }
    println!(
        "buffer: {} failover(s), {} buffered, {} drained, {} evicted, last failover {:.3} s",
        stats.starts,
        stats.buffered,
        stats.drained,
        stats.evicted.total(),
        stats.last_failover_duration.as_secs_f64(),
    );
    println!("finished at {:.3} s", took.as_secs_f64());
}
