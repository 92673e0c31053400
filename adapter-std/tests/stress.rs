//! Many threads, many shards, random deadlines, flapping health and moving time: every call
//! returns, nothing deadlocks, every slot comes back, and the timer thread is gone after
//! the buffer is dropped.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

use common::within;
use failover_buffer_std::{
    Clock, Config, FailoverBuffer, FailoverCause, ManualClock, ShardState, SystemClock,
    TopologyEvent, WaitError,
};

const THREADS: u64 = 200;
const REQUESTS_PER_THREAD: u64 = 5;
const SHARDS: u64 = 8;
const SIZE: usize = 160;

/// splitmix64: a tiny, good-enough PRNG, seeded per thread so the test needs no crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

#[derive(Default)]
struct Tally {
    proceeded: AtomicU64,
    retried: AtomicU64,
    failed: AtomicU64,
    timed_out: AtomicU64,
}

#[test]
fn many_threads_across_shards_with_timeouts_and_flapping_health_all_finish() {
    within(Duration::from_secs(300), || {
        let clock = Arc::new(ManualClock::new());
        let pass_time = {
            let clock = clock.clone();
            move |d| clock.advance(d)
        };
        let config = Config {
            enabled: true,
            size: SIZE,
            window: Duration::from_secs(2),
            max_failover_duration: Duration::from_secs(5),
            min_time_between_failovers: Duration::from_secs(1),
            drain_concurrency: 3,
            drain_backoff: Duration::from_millis(500),
            ..Config::default()
        };
        let round = Duration::from_millis(100);
        scenario(config, clock, pass_time, round, Duration::from_secs(10));
    });
}

/// The same on the system clock, where the timer thread fires the timers and deadlines by
/// itself while the driver flaps health: short durations, so the test stays quick. The
/// driver's pauses pace the world; nothing here asserts how long anything took.
#[test]
fn the_same_storm_on_the_system_clock_with_the_timer_thread_firing_all_finishes() {
    within(Duration::from_secs(300), || {
        let config = Config {
            enabled: true,
            size: SIZE,
            window: Duration::from_millis(40),
            max_failover_duration: Duration::from_millis(100),
            min_time_between_failovers: Duration::from_secs(1),
            drain_concurrency: 3,
            drain_backoff: Duration::from_millis(10),
            ..Config::default()
        };
        let round = Duration::from_millis(3);
        let settle = Duration::from_millis(200);
        scenario(config, Arc::new(SystemClock), thread::sleep, round, settle);
    });
}

/// Runs the storm: `pass_time` lets time pass (about `round` between rounds of health
/// flaps), and `settle` is long enough for every episode to end; callers' deadlines fall
/// within a third of it.
fn scenario<C: Clock + 'static>(
    config: Config,
    clock: Arc<C>,
    pass_time: impl Fn(Duration) + Send + 'static,
    round: Duration,
    settle: Duration,
) {
    {
        let buffer = FailoverBuffer::with_clock(config, clock.clone()).unwrap();
        let shards: Vec<_> = (0..SHARDS)
            .map(|i| buffer.register_shard("ks", &i.to_string()))
            .collect();
        let tally = Arc::new(Tally::default());
        let done = Arc::new(AtomicBool::new(false));

        // The world: time moves, primaries fail over and come back, some stamps are stale.
        let driver = {
            let (buffer, shards, done) = (buffer.clone(), shards.clone(), done.clone());
            thread::spawn(move || {
                let mut rng = Rng(0xD1CE);
                let mut terms = vec![1u64; shards.len()];
                while !done.load(Ordering::Acquire) {
                    pass_time(round.mul_f64(0.1 + rng.below(190) as f64 / 100.0));
                    for (i, shard) in shards.iter().enumerate() {
                        let roll = rng.below(100);
                        let result = if roll < 15 {
                            terms[i] += 1;
                            buffer.health(shard, common::stamp(terms[i], terms[i], true))
                        } else if roll < 25 {
                            buffer.health(shard, common::stamp(terms[i], terms[i], false))
                        } else if roll < 28 {
                            // Stale: refused, changes nothing.
                            buffer
                                .health(shard, common::stamp(0, terms[i] - 1, true))
                                .ok();
                            Ok(())
                        } else if roll < 29 {
                            buffer.topology(shard, TopologyEvent::TrafficSwitched)
                        } else {
                            Ok(())
                        };
                        result.unwrap();
                    }
                    buffer.tick_now();
                    thread::yield_now();
                }
                // Hand the means of moving time back for the quiet phase.
                pass_time
            })
        };

        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                let (buffer, shards, clock, tally) =
                    (buffer.clone(), shards.clone(), clock.clone(), tally.clone());
                thread::spawn(move || {
                    let mut rng = Rng(t);
                    let mut returned = 0;
                    for _ in 0..REQUESTS_PER_THREAD {
                        let shard = &shards[rng.below(SHARDS) as usize];
                        let cause = rng.chance(60).then_some(FailoverCause::Reparent);
                        let result = if rng.chance(50) {
                            let deadline =
                                clock.now() + settle.mul_f64(rng.below(300) as f64 / 1000.0);
                            buffer.wait_for_failover_end_timeout(shard, cause, deadline)
                        } else {
                            buffer
                                .wait_for_failover_end(shard, cause)
                                .map_err(WaitError::from)
                        };
                        returned += 1;
                        let bump = |c: &AtomicU64| c.fetch_add(1, Ordering::Relaxed);
                        match result {
                            Ok(None) => bump(&tally.proceeded),
                            Ok(Some(guard)) => {
                                bump(&tally.retried);
                                if rng.chance(20) {
                                    // The new primary was not writable yet.
                                    match guard.retry_failed(FailoverCause::Reparent) {
                                        Ok(Some(again)) => drop(again),
                                        Ok(None) => {}
                                        Err(_) => {
                                            bump(&tally.failed);
                                        }
                                    }
                                } else {
                                    thread::yield_now();
                                    drop(guard);
                                }
                                0
                            }
                            Err(WaitError::TimedOut) => bump(&tally.timed_out),
                            Err(WaitError::Buffer(_)) => bump(&tally.failed),
                        };
                    }
                    returned
                })
            })
            .collect();

        let returned: u64 = workers.into_iter().map(|w| w.join().unwrap()).sum();
        done.store(true, Ordering::Release);
        let pass_time = driver.join().unwrap();
        assert_eq!(
            returned,
            THREADS * REQUESTS_PER_THREAD,
            "every call returned once"
        );

        // Quiet: let every episode end, then everything adds up.
        pass_time(settle);
        buffer.tick_now();
        assert_eq!(buffer.free_slots(), SIZE);
        buffer.check_invariants().unwrap();
        for shard in &shards {
            assert_eq!(buffer.state(shard), ShardState::Idle);
            let s = buffer.stats(shard);
            assert_eq!(s.buffered, s.evicted.total() + s.drained, "{shard}: {s:?}");
        }
        eprintln!(
            "proceeded {}, retried {}, failed {}, timed out {}",
            tally.proceeded.load(Ordering::Relaxed),
            tally.retried.load(Ordering::Relaxed),
            tally.failed.load(Ordering::Relaxed),
            tally.timed_out.load(Ordering::Relaxed),
        );

        // The timer thread held the last other reference to the clock.
        drop(shards);
        drop(buffer);
    }
    assert_eq!(Arc::strong_count(&clock), 1, "the timer thread is gone");
}
