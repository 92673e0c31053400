//! The buffer's futures, its driver task and its inputs under every interleaving loom explores
//! (`--cfg loom`; see the README's "Checked under loom").
//!
//! What runs is this crate's own code on loom's `Mutex` and atomics (see `sync`): the
//! admission that registers a waiter and its waker under the lock, the core's wake-up that
//! swaps it for the verdict, the waker woken after the lock is released, the future that
//! collects the verdict or, dropped, abandons its ticket, the guard's `retry_done`, and the
//! driver task's loop (`driver::run`) with its `armed` deadline and `Notify` hand-off. Each
//! future is polled by `loom::future::block_on` on a loom thread, whose waker is loom's.
//!
//! What does not run: tokio's runtime and time driver. The driver sleeps on a
//! [`ModelTimer`] instead of tokio's `Sleep` (same contract: reset to an instant, ready once
//! it has passed, wakes the task when it does), and time is the model clock of
//! `sync::model_clock`, moved by a test thread as tokio's time driver would, waking the
//! timer. tokio's `Notify` (the driver's and the shutdown's wake-ups) runs for real, but its
//! internals are not loom's, so loom explores the interleavings around its calls, not inside
//! them.
//!
//! Every test asserts, once its threads are joined, that nothing is held (no slot, no
//! queued request, no waiter), the core's invariants hold and no input was refused (a ticket
//! ended twice is counted in `InputStats`); then it drops the last handle and joins the
//! driver, which must have been told to stop. loom fails a test on a deadlock (a future never
//! woken, a driver never notified).

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use failover_buffer::{Buffer, Config, FailoverCause, HealthStamp, InputStats, PrimaryId};
use loom::future::{AtomicWaker, block_on};
use loom::thread;
use tokio::time::Instant;

use crate::driver::{self, Timer};
use crate::shared::{Keeper, Shared};
use crate::sync::model_clock;
use crate::{FailoverBuffer, Shard, ShutdownEnd};

/// The driver's timer in a model: fires once the model clock has passed its instant.
struct ModelTimer {
    at: Option<Instant>,
    /// Woken by [`Model::elapse_to`], as tokio's time driver wakes a due `Sleep`.
    fired: Arc<AtomicWaker>,
}

impl Timer for ModelTimer {
    fn reset(self: Pin<&mut Self>, at: Instant) {
        self.get_mut().at = Some(at);
    }

    fn poll_elapsed(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // Registered before the clock is read, so time passing in between is not missed.
        self.fired.register_by_ref(cx.waker());
        match self.at {
            Some(at) if crate::sync::now() >= at => Poll::Ready(()),
            _ => Poll::Pending,
        }
    }
}

/// A buffer with its driver task on a loom thread, at time zero.
struct Model {
    buffer: FailoverBuffer,
    shard: Shard,
    fired: Arc<AtomicWaker>,
    driver: thread::JoinHandle<()>,
}

impl Model {
    fn new(config: Config) -> Model {
        model_clock::set(Duration::ZERO);
        let shared = Arc::new(Shared::new(Buffer::new(config).unwrap(), 0));
        let fired = Arc::new(AtomicWaker::new());
        let driver = thread::spawn({
            let shared = Arc::clone(&shared);
            let timer = ModelTimer {
                at: None,
                fired: Arc::clone(&fired),
            };
            move || block_on(driver::run(shared, timer))
        });
        let buffer = FailoverBuffer {
            keeper: Arc::new(Keeper { shared }),
        };
        let shard = buffer.register_shard("commerce", "0");
        buffer.health(&shard, stamp(1)).unwrap();
        Model {
            buffer,
            shard,
            fired,
            driver,
        }
    }

    /// Starts the failover: a first failover error is held, and its client gives up at once.
    fn start_failover(&self) {
        let mut wait = self
            .buffer
            .wait_for_failover_end(&self.shard, Some(FailoverCause::Reparent));
        assert!(
            poll_once(&mut wait).is_pending(),
            "the failover error is held"
        );
    }

    /// Time passes until `at`: the model clock moves (under the lock, where every reading
    /// that decides anything is taken), then the timer is woken, as tokio's time driver
    /// wakes a `Sleep`.
    fn elapse_to(&self, at: Duration) {
        {
            let _state = self.buffer.shared().lock();
            model_clock::set(at);
        }
        self.fired.wake();
    }

    /// Nothing is held, no waiter is left, the invariants hold and no input was refused;
    /// then the last handle goes and the driver stops.
    fn settle(self) {
        assert_eq!(self.buffer.held_slots(), 0, "a slot is still held");
        assert_eq!(
            self.buffer.queued(&self.shard),
            0,
            "a request is still queued"
        );
        assert_eq!(
            self.buffer.shared().lock().waiters.len(),
            0,
            "a waiter is left"
        );
        self.buffer.check_invariants().unwrap();
        assert_eq!(
            self.buffer.input_stats(),
            InputStats::default(),
            "an input was refused"
        );
        let Model { buffer, driver, .. } = self;
        drop(buffer);
        driver.join().unwrap();
    }
}

/// Polls `future` once, with a loom waker.
fn poll_once<F: Future + Unpin>(future: &mut F) -> Poll<F::Output> {
    block_on(poll_fn(|cx| Poll::Ready(Pin::new(&mut *future).poll(cx))))
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
    // One check at a time: the count, the panic hook and the model clock are the process's.
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

/// A held request's future dropped (its client gave up) while a new primary releases it:
/// the ticket ends once, whichever came first (cancelled while queued, or its release to
/// retry handed back), and its waiter leaves the map.
#[test]
fn dropping_a_held_future_racing_its_release_ends_the_ticket_once() {
    check(
        "dropping_a_held_future_racing_its_release_ends_the_ticket_once",
        || {
            let m = Model::new(enabled());
            m.start_failover();
            let caller = thread::spawn({
                let (buffer, shard) = (m.buffer.clone(), m.shard.clone());
                move || {
                    let mut wait =
                        buffer.wait_for_failover_end(&shard, Some(FailoverCause::Reparent));
                    if let Poll::Ready(answer) = poll_once(&mut wait) {
                        drop(answer.unwrap());
                    }
                    drop(wait);
                }
            });
            m.buffer.health(&m.shard, stamp(2)).unwrap();
            caller.join().unwrap();
            m.settle();
        },
    );
}

/// A held request's future polled first by one task, then by another (its waker changes)
/// while a new primary releases it: the release wakes the task that polls it now, through
/// the waker the second poll registered, never only the first task's.
#[test]
fn a_held_future_polled_by_a_new_task_is_woken_through_its_new_waker() {
    check(
        "a_held_future_polled_by_a_new_task_is_woken_through_its_new_waker",
        || {
            let m = Model::new(enabled());
            m.start_failover();
            let caller = thread::spawn({
                let (buffer, shard) = (m.buffer.clone(), m.shard.clone());
                move || {
                    let mut wait =
                        buffer.wait_for_failover_end(&shard, Some(FailoverCause::Reparent));
                    // The first task's poll: held, or answered at once.
                    let answer = match poll_once(&mut wait) {
                        Poll::Ready(answer) => answer,
                        // Another task (another `block_on`, another waker) takes it over.
                        Poll::Pending => block_on(&mut wait),
                    };
                    drop(answer.unwrap());
                }
            });
            m.buffer.health(&m.shard, stamp(2)).unwrap();
            caller.join().unwrap();
            m.settle();
        },
    );
}

/// A request that starts a failover arms the core's first deadline while the driver may be
/// asleep with none: the driver must be told, and when that deadline passes it releases the
/// request (nothing else does here).
#[test]
fn the_first_deadline_wakes_the_sleeping_driver() {
    check("the_first_deadline_wakes_the_sleeping_driver", || {
        let m = Model::new(enabled());
        m.start_failover();
        let caller = thread::spawn({
            let (buffer, shard) = (m.buffer.clone(), m.shard.clone());
            move || {
                let answer =
                    block_on(buffer.wait_for_failover_end(&shard, Some(FailoverCause::Reparent)));
                drop(answer.unwrap());
            }
        });
        // Past the max failover duration (20 s), within the min time between failovers
        // (60 s): whenever the request comes, it is released or let through.
        m.elapse_to(Duration::from_secs(30));
        caller.join().unwrap();
        m.settle();
    });
}

/// A held request released (a new primary) while every handle is dropped: the released
/// guard keeps the driver running until it reports, and whichever of the guard and the
/// handles goes last tells the driver to stop.
#[test]
fn a_release_racing_the_drop_of_the_last_handle_stops_the_driver() {
    check(
        "a_release_racing_the_drop_of_the_last_handle_stops_the_driver",
        || {
            let m = Model::new(enabled());
            m.start_failover();
            let caller = thread::spawn({
                let (buffer, shard) = (m.buffer.clone(), m.shard.clone());
                move || {
                    let guard = block_on(
                        buffer.wait_for_failover_end(&shard, Some(FailoverCause::Reparent)),
                    )
                    .unwrap();
                    drop(buffer);
                    // The guard may hold the last share of the buffer now.
                    drop(guard);
                }
            });
            m.buffer.health(&m.shard, stamp(2)).unwrap();
            let Model { buffer, driver, .. } = m;
            drop(buffer);
            caller.join().unwrap();
            driver.join().unwrap();
        },
    );
}

/// A shutdown racing a new request on a buffering shard (through the fast path's flag): the
/// request is held and released by the shutdown, or proceeds, and the shutdown's future
/// resolves `Closed` once the retry has finished.
#[test]
fn a_shutdown_racing_a_new_request_releases_it_and_closes() {
    check(
        "a_shutdown_racing_a_new_request_releases_it_and_closes",
        || {
            let m = Model::new(enabled());
            m.start_failover();
            let caller = thread::spawn({
                let (buffer, shard) = (m.buffer.clone(), m.shard.clone());
                move || drop(block_on(buffer.wait_for_failover_end(&shard, None)).unwrap())
            });
            let shutdown = m.buffer.shutdown();
            assert_eq!(block_on(shutdown.ended()), ShutdownEnd::Closed);
            caller.join().unwrap();
            assert!(m.buffer.is_closed());
            m.settle();
        },
    );
}

/// A released retry that fails again (`retry_failed`) while time passes and the driver
/// ticks (the drain's back-off, the window, the max failover duration): the request is held
/// again and released by the driver, or let through, never stranded, its slot freed once.
#[test]
fn retry_failed_racing_the_driver_is_released_and_frees_its_slot() {
    check(
        "retry_failed_racing_the_driver_is_released_and_frees_its_slot",
        || {
            let m = Model::new(enabled());
            m.start_failover();
            let caller = thread::spawn({
                let (buffer, shard) = (m.buffer.clone(), m.shard.clone());
                move || {
                    let cause = FailoverCause::Reparent;
                    let mut guard =
                        block_on(buffer.wait_for_failover_end(&shard, Some(cause))).unwrap();
                    // At most twice: the back-off ends by time 30 s, which then passes.
                    for _ in 0..2 {
                        match guard {
                            Some(g) => guard = block_on(g.retry_failed(cause)).unwrap(),
                            None => break,
                        }
                    }
                    drop(guard);
                }
            });
            m.buffer.health(&m.shard, stamp(2)).unwrap();
            // Past the back-off (1 s), the window (10 s) and the max failover duration
            // (20 s); within the min time between failovers (60 s).
            m.elapse_to(Duration::from_secs(30));
            caller.join().unwrap();
            m.settle();
        },
    );
}
