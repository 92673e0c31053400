//! A thread-per-request router in front of a fake primary that fails over.
//!
//! Four worker threads write to shard `commerce/0` every 100 ms for 2.4 s. At 0.4 s the
//! primary starts refusing writes (a switchover in progress); at 1.6 s a new primary with a
//! newer term serves. A health thread reports what it sees every 50 ms. Without the buffer,
//! every write in that gap would be an error; with it, the application sees a pause.
//!
//! Run with `cargo run -p failover-buffer-std --example blocking_router`.

use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use failover_buffer_std::{
    Config, FailoverBuffer, FailoverCause, HealthStamp, PrimaryId, RetryGuard, Shard, WaitError,
};

/// The failover the fake primary goes through, relative to the start.
const FAILOVER_STARTS: Duration = Duration::from_millis(400);
const NEW_PRIMARY_SERVES: Duration = Duration::from_millis(1600);
const RUN_FOR: Duration = Duration::from_millis(2400);

/// What the fake database answers.
#[derive(Debug)]
enum DbError {
    /// The primary is being demoted: a failover-class error (Vitess's CLUSTER_EVENT).
    ReadOnly,
}

/// A shard's primary, changing over time.
struct FakePrimary {
    start: Instant,
}

impl FakePrimary {
    /// Which primary serves now, its term, and whether it takes writes.
    fn status(&self) -> HealthStamp {
        let t = self.start.elapsed();
        if t < FAILOVER_STARTS {
            HealthStamp {
                primary: PrimaryId(1),
                term: 1,
                serving: true,
            }
        } else if t < NEW_PRIMARY_SERVES {
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

    /// Executes a write, answering which primary took it.
    fn write(&self) -> Result<u64, DbError> {
        let status = self.status();
        if status.serving {
            Ok(status.primary.0)
        } else {
            Err(DbError::ReadOnly)
        }
    }
}

/// What the application saw of one write.
struct Seen {
    at: Duration,
    worker: usize,
    attempts: u32,
    took: Duration,
    result: Result<u64, String>,
}

/// The router's write path: at most three attempts, holding the request in the buffer
/// between them while the shard fails over, and never past the client's 5 s deadline.
fn route_write(
    buffer: &FailoverBuffer,
    shard: &Shard,
    db: &FakePrimary,
) -> (u32, Result<u64, String>) {
    let deadline = Instant::now() + Duration::from_secs(5);
    let wait = |cause| buffer.wait_for_failover_end_timeout(shard, cause, deadline);
    let mut guard: Option<RetryGuard> = match wait(None) {
        Ok(guard) => guard,
        Err(e) => return (0, Err(e.to_string())),
    };
    for attempt in 1..=3 {
        match db.write() {
            // Dropping the guard (if any) tells the buffer this retry is done.
            Ok(primary) => return (attempt, Ok(primary)),
            Err(DbError::ReadOnly) if attempt < 3 => {
                let cause = FailoverCause::Reparent;
                let next = match guard.take() {
                    // A released retry failed over again: the drain backs off.
                    Some(released) => released.retry_failed(cause).map_err(WaitError::from),
                    None => wait(Some(cause)),
                };
                match next {
                    Ok(next) => guard = next,
                    Err(e) => return (attempt, Err(e.to_string())),
                }
            }
            Err(e) => return (attempt, Err(format!("{e:?}"))),
        }
    }
    unreachable!("the third attempt returns")
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let start = Instant::now();
    let db = Arc::new(FakePrimary { start });
    let buffer = FailoverBuffer::new(Config {
        enabled: true,
        drain_concurrency: 2,
        ..Config::default()
    })?;
    let shard = buffer.register_shard("commerce", "0");

    // The health stream.
    let health = {
        let (buffer, shard, db) = (buffer.clone(), shard.clone(), db.clone());
        thread::spawn(move || {
            while start.elapsed() < RUN_FOR {
                // A repeated stamp is harmless; a stale one would be refused.
                let _ = buffer.health(&shard, db.status());
                thread::sleep(Duration::from_millis(50));
            }
        })
    };

    let seen = Arc::new(Mutex::new(Vec::new()));
    let workers: Vec<_> = (0..4)
        .map(|worker| {
            let (buffer, shard, db, seen) =
                (buffer.clone(), shard.clone(), db.clone(), seen.clone());
            thread::spawn(move || {
                // Stagger the workers by 25 ms.
                thread::sleep(Duration::from_millis(25 * worker as u64));
                while start.elapsed() < RUN_FOR {
                    let at = start.elapsed();
                    let (attempts, result) = route_write(&buffer, &shard, &db);
                    let took = start.elapsed() - at;
                    seen.lock().unwrap().push(Seen {
                        at,
                        worker,
                        attempts,
                        took,
                        result,
                    });
                    thread::sleep(Duration::from_millis(100));
                }
            })
        })
        .collect();
    for w in workers {
        w.join().expect("worker");
    }
    health.join().expect("health thread");
    buffer.shutdown();

    let mut seen = Arc::try_unwrap(seen)
        .map_err(|_| "workers done")?
        .into_inner()?;
    seen.sort_by_key(|s| s.at);
    println!("failover at {FAILOVER_STARTS:?}, new primary serving at {NEW_PRIMARY_SERVES:?}");
    println!("writes that took longer than 50 ms, as the application saw them:");
    for s in seen
        .iter()
        .filter(|s| s.took > Duration::from_millis(50) || s.result.is_err())
    {
        let outcome = match &s.result {
            Ok(primary) => format!("ok on primary {primary}"),
            Err(e) => format!("error: {e}"),
        };
        println!(
            "  sent at {:>4} ms by worker {}: {outcome} after {} attempt(s), {:>4} ms",
            s.at.as_millis(),
            s.worker,
            s.attempts,
            s.took.as_millis()
        );
    }
    let ok = seen.iter().filter(|s| s.result.is_ok()).count();
    let slowest = seen.iter().map(|s| s.took).max().unwrap_or_default();
    println!(
        "{} writes: {ok} ok, {} errors; longest pause {} ms",
        seen.len(),
        seen.len() - ok,
        slowest.as_millis()
    );
    let stats = buffer.stats(&shard);
    println!(
        "buffer: {} failover(s), {} requests buffered, {} drained, {} evicted, last failover {} ms",
        stats.starts,
        stats.buffered,
        stats.drained,
        stats.evicted.total(),
        stats.last_failover_duration.as_millis()
    );
    Ok(())
}
