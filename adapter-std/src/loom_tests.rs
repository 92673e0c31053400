//! The buffer's threads under every interleaving loom explores (`--cfg loom`; see the
//! README's "Checked under loom"): the waiter handshake (held, woken, its deadline racing
//! the wake-up), the timer thread and its wake-ups, the last handle's drop joining the timer,
//! and the shutdown's wait. Each test runs the real adapter on loom's `Mutex`, `Condvar`,
//! `Arc`, atomics and threads (see `sync`), with the core unchanged.
//!
//! Time is a [`LoomClock`]: it follows "real time" for the timer thread (it sleeps with a
//! timeout, `TimerSleep::Until`), and real time passes only when a test thread calls
//! [`Shared::elapse`], which moves the clock and, like the operating system at the end of a
//! timed sleep, wakes the timer thread if its sleep has ended. loom's own timed wait never
//! times out, so a timer that should have been woken by an input and was not stays asleep,
//! and loom reports the stranded caller as a deadlock.
//!
//! Every test asserts, once its threads are joined, that nothing is held (no slot, no queued
//! request), the core's invariants hold, and no input was refused (a ticket ended twice
//! would be counted in `InputStats`); the debug assertions of the handshake are on (the
//! `loom` profile). loom itself fails a test on a deadlock (a caller never woken, a timer
//! never joined) and on a leaked `Arc` (the timer thread's share of the buffer).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use loom::thread;

use crate::{
    Clock, Config, FailoverBuffer, FailoverCause, HealthStamp, InputStats, PrimaryId, Shard,
    WaitError,
};

/// A clock that follows "real time" (the timer thread sleeps against it) where real time
/// moves only by [`Shared::elapse`](crate::state::Shared::elapse).
#[derive(Debug)]
struct LoomClock {
    origin: Instant,
    /// Nanoseconds since `origin`. A standard atomic: loom runs its threads one at a time on
    /// one OS thread, and every reading that matters is taken under the buffer's lock.
    nanos: AtomicU64,
}

impl Clock for LoomClock {
    fn now(&self) -> Instant {
        self.origin + Duration::from_nanos(self.nanos.load(Ordering::SeqCst))
    }
}

/// A buffer on a [`LoomClock`] whose shard is failing over (since time zero: a first
/// request started the failover and gave up at once), and the handle to move its time.
struct Failover {
    buffer: FailoverBuffer,
    shard: Shard,
    clock: std::sync::Arc<LoomClock>,
}

impl Failover {
    fn new(config: Config) -> Failover {
        let clock = std::sync::Arc::new(LoomClock {
            origin: Instant::now(),
            nanos: AtomicU64::new(0),
        });
        let buffer = FailoverBuffer::with_clock(config, clock.clone()).unwrap();
        let shard = buffer.register_shard("commerce", "0");
        buffer.health(&shard, stamp(1)).unwrap();
        // A deadline already reached: the request starts the failover and times out.
        let started = buffer.wait_for_failover_end_timeout(
            &shard,
            Some(FailoverCause::Reparent),
            clock.origin,
        );
        assert_eq!(started.unwrap_err(), WaitError::TimedOut);
        Failover {
            buffer,
            shard,
            clock,
        }
    }

    /// Real time passes until `at` (since the clock's origin).
    fn elapse_to(&self, at: Duration) {
        let nanos = u64::try_from(at.as_nanos()).unwrap();
        self.buffer
            .shared()
            .elapse(|| self.clock.nanos.store(nanos, Ordering::SeqCst));
    }

    fn deadline(&self, after: Duration) -> Instant {
        self.clock.origin + after
    }

    /// Nothing is held, the invariants hold, and no input was refused.
    fn assert_settled(&self) {
        assert_eq!(self.buffer.held_slots(), 0, "a slot is still held");
        assert_eq!(
            self.buffer.queued(&self.shard),
            0,
            "a request is still queued"
        );
        self.buffer.check_invariants().unwrap();
        assert_eq!(
            self.buffer.input_stats(),
            InputStats::default(),
            "an input was refused"
        );
    }
}

/// The health stamp of primary `term` (a new primary per term), serving.
fn stamp(term: u64) -> HealthStamp {
    HealthStamp {
        primary: PrimaryId(term),
        term,
        serving: true,
    }
}

fn enabled() -> Config {
    Config {
        enabled: true,
        ..Config::default()
    }
}

/// Runs `model` under loom, every interleaving within the preemption bound
/// (`LOOM_MAX_PREEMPTIONS`, 2 when unset), and prints how many it explored; on a failure,
/// the interleaving it failed in (counted from 1) before loom's report.
fn check(name: &'static str, model: impl Fn() + Sync + Send + 'static) {
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    // One check at a time: the count and the panic hook are the process's.
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound.get_or_insert(2);
    let bound = builder.preemption_bound;
    RUNS.store(0, Ordering::SeqCst);
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        // A message is a failure (an assertion, loom's deadlock report); other payloads are
        // the coroutines loom unwinds to end an execution.
        let payload = info.payload();
        if payload.is::<&str>() || payload.is::<String>() {
            let run = RUNS.load(Ordering::SeqCst);
            eprintln!("loom: {name}: failed in interleaving {run}");
            report(info);
        }
    }));
    // Puts the standard hook back, also when the check fails.
    struct Unhook;
    impl Drop for Unhook {
        fn drop(&mut self) {
            drop(std::panic::take_hook());
        }
    }
    let unhook = Unhook;
    builder.check(move || {
        RUNS.fetch_add(1, Ordering::SeqCst);
        model();
    });
    drop(unhook);
    println!(
        "loom: {name}: {} interleavings (preemption bound {})",
        RUNS.load(Ordering::SeqCst),
        bound.map_or_else(|| "none".to_string(), |b| b.to_string())
    );
}

/// A held request whose deadline comes (the timer thread cancels it) while a new primary
/// releases it (another thread's health input): the caller is told exactly one of the two,
/// and the ticket ends once.
#[test]
fn a_deadline_racing_a_release_ends_the_request_once() {
    check("a_deadline_racing_a_release_ends_the_request_once", || {
        let f = std::sync::Arc::new(Failover::new(enabled()));
        let caller = thread::spawn({
            let f = f.clone();
            move || {
                let deadline = f.deadline(Duration::from_secs(1));
                match f.buffer.wait_for_failover_end_timeout(
                    &f.shard,
                    Some(FailoverCause::Reparent),
                    deadline,
                ) {
                    // Released (or the failover had ended): the retry runs and finishes.
                    Ok(guard) => drop(guard),
                    Err(e) => assert_eq!(e, WaitError::TimedOut),
                }
            }
        });
        let time = thread::spawn({
            let f = f.clone();
            move || f.elapse_to(Duration::from_secs(1))
        });
        f.buffer.health(&f.shard, stamp(2)).unwrap();
        caller.join().unwrap();
        time.join().unwrap();
        f.assert_settled();
    });
}

/// A request held with a deadline earlier than anything the timer thread sleeps for must
/// wake it: when that deadline comes, and nothing else happens, the caller times out.
#[test]
fn a_deadline_earlier_than_the_timers_sleep_wakes_the_timer_thread() {
    check(
        "a_deadline_earlier_than_the_timers_sleep_wakes_the_timer_thread",
        || {
            let f = std::sync::Arc::new(Failover::new(enabled()));
            let caller = thread::spawn({
                let f = f.clone();
                move || {
                    let deadline = f.deadline(Duration::from_secs(1));
                    let held = f.buffer.wait_for_failover_end_timeout(
                        &f.shard,
                        Some(FailoverCause::Reparent),
                        deadline,
                    );
                    assert_eq!(held.unwrap_err(), WaitError::TimedOut);
                }
            });
            f.elapse_to(Duration::from_secs(1));
            caller.join().unwrap();
            f.assert_settled();
        },
    );
}

/// A held request released (a new primary) while every handle is dropped: the released
/// caller's guard keeps the timer alive until it is dropped, whichever of the guard and the
/// handles goes last joins the timer thread, and nothing is held or leaked.
#[test]
fn a_release_racing_the_drop_of_the_last_handle_joins_the_timer_once() {
    check(
        "a_release_racing_the_drop_of_the_last_handle_joins_the_timer_once",
        || {
            let f = Failover::new(enabled());
            let (buffer, shard) = (f.buffer.clone(), f.shard.clone());
            let caller = thread::spawn(move || {
                let guard = buffer
                    .wait_for_failover_end(&shard, Some(FailoverCause::Reparent))
                    .unwrap();
                drop(buffer);
                // The guard may now hold the last share of the buffer: its drop reports
                // the retry done and joins the timer thread.
                drop(guard);
            });
            f.buffer.health(&f.shard, stamp(2)).unwrap();
            let Failover { buffer, .. } = f;
            drop(buffer);
            caller.join().unwrap();
        },
    );
}

/// A shutdown racing a new request on a buffering shard (through the lock-free fast path's
/// flag): the request is either held and released by the shutdown, or proceeds, and the
/// shutdown closes once its retry has finished; it never waits for a request it stranded.
#[test]
fn a_shutdown_racing_a_new_request_releases_it_and_closes() {
    check(
        "a_shutdown_racing_a_new_request_releases_it_and_closes",
        || {
            let f = std::sync::Arc::new(Failover::new(enabled()));
            let caller = thread::spawn({
                let f = f.clone();
                move || {
                    let guard = f.buffer.wait_for_failover_end(&f.shard, None).unwrap();
                    drop(guard);
                }
            });
            assert_eq!(f.buffer.shutdown(), crate::ShutdownEnd::Closed);
            caller.join().unwrap();
            assert!(f.buffer.is_closed());
            f.assert_settled();
        },
    );
}

/// A released retry that fails again (`retry_failed`) while time passes and the timer thread
/// fires (the drain's back-off, the window, the max failover duration): the request is held
/// again and released by the timer, or let through, never stranded, and its slot is freed
/// once.
#[test]
fn retry_failed_racing_the_timer_is_released_and_frees_its_slot() {
    check(
        "retry_failed_racing_the_timer_is_released_and_frees_its_slot",
        || {
            let f = std::sync::Arc::new(Failover::new(enabled()));
            let caller = thread::spawn({
                let f = f.clone();
                move || {
                    let cause = FailoverCause::Reparent;
                    let mut guard = f
                        .buffer
                        .wait_for_failover_end(&f.shard, Some(cause))
                        .unwrap();
                    // At most twice: the back-off ends by time 30 s, which then passes.
                    for _ in 0..2 {
                        match guard {
                            Some(g) => guard = g.retry_failed(cause).unwrap(),
                            None => break,
                        }
                    }
                    drop(guard);
                }
            });
            f.buffer.health(&f.shard, stamp(2)).unwrap();
            // Past every timer: the drain's back-off (1 s), the window (10 s) and the max
            // failover duration (20 s); within the min time between failovers (60 s), so a
            // request that comes after is let through rather than held by a new failover
            // that nothing would end.
            f.elapse_to(Duration::from_secs(30));
            caller.join().unwrap();
            f.assert_settled();
        },
    );
}
