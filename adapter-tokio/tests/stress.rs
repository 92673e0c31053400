//! Many waiters on a multi-threaded runtime, with random cancels, health flaps and real time
//! passing: every waiter returns exactly once, every slot comes back, nothing deadlocks.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use failover_buffer_tokio::{Config, FailoverBuffer, FailoverCause, HealthStamp, PrimaryId, Shard};

/// splitmix64: a small deterministic generator, so a failure can be replayed by seed (the
/// interleaving of threads still varies from run to run).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Default)]
struct Outcomes {
    proceeded: AtomicU64,
    retried: AtomicU64,
    failed: AtomicU64,
    cancelled: AtomicU64,
}

impl Outcomes {
    fn total(&self) -> u64 {
        [
            &self.proceeded,
            &self.retried,
            &self.failed,
            &self.cancelled,
        ]
        .iter()
        .map(|c| c.load(Ordering::SeqCst))
        .sum()
    }
}

const WAITERS: usize = 10_000;
const SHARDS: usize = 8;
const SEED: u64 = 0x5eed_f00d;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_waiters_with_cancels_and_health_flaps_each_return_exactly_once() {
    let config = Config {
        enabled: true,
        size: 200,
        window: Duration::from_millis(200),
        max_failover_duration: Duration::from_millis(400),
        min_time_between_failovers: Duration::from_secs(1),
        drain_concurrency: 4,
        drain_backoff: Duration::from_millis(50),
        ..Config::default()
    };
    let buffer = FailoverBuffer::new(config.clone()).unwrap();
    let shards: Vec<Shard> = (0..SHARDS)
        .map(|i| buffer.register_shard("commerce", &format!("{i}")))
        .collect();
    let outcomes = Arc::new(Outcomes::default());
    let stop = Arc::new(AtomicBool::new(false));

    let run = async {
        let flapper = tokio::spawn(flap_health(buffer.clone(), shards.clone(), stop.clone()));
        let mut rng = Rng(SEED);
        let mut waiters = Vec::with_capacity(WAITERS);
        for i in 0..WAITERS {
            let shard = shards[rng.below(SHARDS as u64) as usize].clone();
            // One in five is a first attempt; the rest failed over once already.
            let cause = (rng.below(5) != 0).then_some(FailoverCause::Reparent);
            // One in four clients has a deadline shorter than the window.
            let deadline = (rng.below(4) == 0).then(|| Duration::from_millis(rng.below(150)));
            let retry_takes = Duration::from_micros(rng.below(2_000));
            let (buffer, outcomes) = (buffer.clone(), outcomes.clone());
            waiters.push(tokio::spawn(async move {
                let wait = buffer.wait_for_failover_end(&shard, cause);
                let answer = match deadline {
                    Some(d) => match tokio::time::timeout(d, wait).await {
                        Ok(answer) => answer,
                        Err(_) => {
                            outcomes.cancelled.fetch_add(1, Ordering::SeqCst);
                            return;
                        }
                    },
                    None => wait.await,
                };
                match answer {
                    Ok(Some(guard)) => {
                        tokio::time::sleep(retry_takes).await;
                        drop(guard);
                        outcomes.retried.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(None) => {
                        outcomes.proceeded.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(_) => {
                        outcomes.failed.fetch_add(1, Ordering::SeqCst);
                    }
                }
            }));
            if i % 100 == 99 {
                // Spread the arrivals over about 2.5 s: several episodes per shard.
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        }
        for waiter in waiters {
            waiter.await.expect("a waiter panicked");
        }
        stop.store(true, Ordering::SeqCst);
        flapper.await.unwrap();
    };
    tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("deadlock: the waiters did not all return within 30 s");

    assert_eq!(
        outcomes.total(),
        WAITERS as u64,
        "each waiter returned exactly once"
    );
    assert!(outcomes.retried.load(Ordering::SeqCst) > 0);
    assert!(outcomes.cancelled.load(Ordering::SeqCst) > 0);
    assert!(
        outcomes.failed.load(Ordering::SeqCst) > 0,
        "some were evicted"
    );
    assert_eq!(buffer.held_slots(), 0);
    assert_eq!(buffer.free_slots(), config.size);
    buffer.check_invariants().unwrap();
    for shard in &shards {
        let stats = buffer.stats(shard);
        assert_eq!(
            stats.buffered,
            stats.evicted.total() + stats.drained,
            "{shard:?}: every buffered request left the queue once"
        );
    }
}

/// Sends health stamps to random shards every few tens of milliseconds: the primary stopping
/// and serving again, and now and then a new primary with a newer term.
async fn flap_health(buffer: FailoverBuffer, shards: Vec<Shard>, stop: Arc<AtomicBool>) {
    let mut rng = Rng(SEED ^ 0xf1a9);
    let mut terms = vec![0u64; shards.len()];
    while !stop.load(Ordering::SeqCst) {
        let i = rng.below(shards.len() as u64) as usize;
        // Mostly the same primary stopping and serving again; now and then a new one.
        if rng.below(8) == 0 {
            terms[i] += 1;
        }
        let stamp = HealthStamp {
            primary: PrimaryId(terms[i]),
            term: terms[i],
            serving: rng.below(2) == 0,
        };
        buffer.health(&shards[i], stamp).unwrap();
        tokio::time::sleep(Duration::from_millis(rng.below(60))).await;
    }
}

/// The clock is read before the state lock (a shorter critical section for a drain's tasks),
/// so two workers' readings can reach the lock in the other order. The later reading's
/// input must not carry time backwards into the core: the core would count a clock
/// regression and order the inputs' effects by a time that never was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inputs_racing_from_two_workers_reach_the_core_in_time_order() {
    let buffer = FailoverBuffer::new(Config {
        enabled: true,
        size: 64,
        window: Duration::from_secs(10),
        ..Config::default()
    })
    .unwrap();
    let shard = buffer.register_shard("commerce", "0");
    // Each worker holds a request and drops it at once (a cancel): two inputs a round.
    let worker = |buffer: FailoverBuffer, shard: Shard| async move {
        for _ in 0..20_000 {
            let mut wait =
                std::pin::pin!(buffer.wait_for_failover_end(&shard, Some(FailoverCause::Reparent)));
            let first = std::future::poll_fn(|cx| {
                std::task::Poll::Ready(wait.as_mut().poll(cx).is_pending())
            })
            .await;
            assert!(first, "the request is held");
        }
    };
    let one = tokio::spawn(worker(buffer.clone(), shard.clone()));
    let two = tokio::spawn(worker(buffer.clone(), shard.clone()));
    one.await.unwrap();
    two.await.unwrap();

    assert_eq!(buffer.input_stats().clock_regressions, 0);
    assert_eq!(
        buffer.free_slots(),
        64,
        "every cancelled request gave its slot back"
    );
}
