//! Telemetry is user code: a tracing subscriber or a metrics recorder may be slow, may call
//! back into the buffer, or may panic. None of it runs under the buffer's lock, and a panic in
//! it strands no slot.
#![cfg(feature = "tracing")]

mod support;

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use failover_buffer_tokio::{FailoverBuffer, FailoverCause, ShardState};
use support::{config, serving, settle};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// A subscriber that does something on the events whose message contains `trigger`.
struct OnEvent {
    trigger: &'static str,
    act: Box<dyn Fn() + Send + Sync>,
}

struct Message<'a>(&'a mut String);

impl tracing::field::Visit for Message<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            *self.0 = format!("{value:?}");
        }
    }
}

impl Subscriber for OnEvent {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut message = String::new();
        event.record(&mut Message(&mut message));
        if message.contains(self.trigger) {
            (self.act)();
        }
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

/// Runs `scenario` on a paused current-thread runtime with `subscriber` as the default, on a
/// thread of its own with a bound, so a deadlock fails the test instead of hanging it.
fn run_with(subscriber: OnEvent, scenario: impl FnOnce() + Send + 'static) {
    let (done, finished) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        let _default = tracing::subscriber::set_default(subscriber);
        scenario();
        let _ = done.send(());
    });
    match finished.recv_timeout(Duration::from_secs(30)) {
        Ok(()) | Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            if let Err(panic) = thread.join() {
                std::panic::resume_unwind(panic);
            }
        }
        Err(_) => panic!("deadlock: telemetry ran under the buffer's lock"),
    }
}

fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap()
}

/// Issue 9, bug 4: a subscriber that reads the buffer while logging does not deadlock.
#[test]
fn a_subscriber_that_calls_back_into_the_buffer_does_not_deadlock() {
    let slot: Arc<OnceLock<FailoverBuffer>> = Arc::default();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let subscriber = OnEvent {
        trigger: "",
        act: Box::new({
            let (slot, seen) = (Arc::clone(&slot), Arc::clone(&seen));
            move || {
                if let Some(buffer) = slot.get() {
                    // `Debug` and a getter both take the lock.
                    seen.lock().unwrap().push(format!("{buffer:?}"));
                    let _ = buffer.held_slots();
                }
            }
        }),
    };
    run_with(subscriber, move || {
        paused_runtime().block_on(async move {
            let buffer = FailoverBuffer::new(config()).unwrap();
            let _ = slot.set(buffer.clone());
            let shard = buffer.register_shard("commerce", "0");
            buffer.health(&shard, serving(1, 1)).unwrap();
            let retry = tokio::spawn({
                let (buffer, shard) = (buffer.clone(), shard.clone());
                async move {
                    let cause = Some(FailoverCause::Reparent);
                    buffer
                        .wait_for_failover_end(&shard, cause)
                        .await
                        .map(|g| g.is_some())
                }
            });
            settle().await;
            buffer.health(&shard, serving(2, 2)).unwrap();
            assert_eq!(retry.await.unwrap(), Ok(true));
            buffer.shutdown().await;
        });
    });
    assert!(!seen.lock().unwrap().is_empty(), "the subscriber ran");
}

/// Issue 9, bug 5: the release is logged after the guard exists.
#[test]
fn a_subscriber_panicking_in_the_release_log_strands_no_slot() {
    let subscriber = OnEvent {
        trigger: "request released",
        act: Box::new(|| panic!("the subscriber failed")),
    };
    run_with(subscriber, || {
        paused_runtime().block_on(async {
            let buffer = FailoverBuffer::new(config()).unwrap();
            let shard = buffer.register_shard("commerce", "0");
            buffer.health(&shard, serving(1, 1)).unwrap();
            let retry = tokio::spawn({
                let (buffer, shard) = (buffer.clone(), shard.clone());
                async move {
                    let cause = Some(FailoverCause::Reparent);
                    let _guard = buffer.wait_for_failover_end(&shard, cause).await;
                }
            });
            settle().await;
            buffer.health(&shard, serving(2, 2)).unwrap();
            assert!(retry.await.unwrap_err().is_panic());
            assert_eq!(buffer.held_slots(), 0);
            assert_eq!(
                buffer.state(&shard),
                ShardState::Idle,
                "free to buffer again"
            );
        });
    });
}

/// Issue 9, bug 5 (the admission's log): a held request whose log panics is cancelled.
#[test]
fn a_subscriber_panicking_in_the_admission_log_strands_no_slot() {
    let subscriber = OnEvent {
        trigger: "request admitted",
        act: Box::new(|| panic!("the subscriber failed")),
    };
    run_with(subscriber, || {
        paused_runtime().block_on(async {
            let buffer = FailoverBuffer::new(config()).unwrap();
            let shard = buffer.register_shard("commerce", "0");
            let held = tokio::spawn({
                let (buffer, shard) = (buffer.clone(), shard.clone());
                async move {
                    let cause = Some(FailoverCause::Reparent);
                    let _guard = buffer.wait_for_failover_end(&shard, cause).await;
                }
            });
            assert!(held.await.unwrap_err().is_panic());
            assert_eq!(buffer.held_slots(), 0);
            assert_eq!(buffer.queued(&shard), 0);
        });
    });
}

/// Issue 9, bug 4 (metrics): a recorder that calls back into the buffer does not deadlock.
#[cfg(feature = "metrics")]
#[test]
fn a_metrics_recorder_that_calls_back_into_the_buffer_does_not_deadlock() {
    use metrics::{
        Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit,
    };

    struct Reentrant(Arc<OnceLock<FailoverBuffer>>, Arc<Mutex<usize>>);
    impl Recorder for Reentrant {
        fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn register_counter(&self, _: &Key, _: &Metadata<'_>) -> Counter {
            if let Some(buffer) = self.0.get() {
                let _ = buffer.free_slots();
                *self.1.lock().unwrap() += 1;
            }
            Counter::noop()
        }
        fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
            Gauge::noop()
        }
        fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
            Histogram::noop()
        }
    }

    let quiet = OnEvent {
        trigger: "\u{0}never",
        act: Box::new(|| {}),
    };
    let calls = Arc::new(Mutex::new(0));
    let counted = Arc::clone(&calls);
    run_with(quiet, move || {
        let slot: Arc<OnceLock<FailoverBuffer>> = Arc::default();
        let recorder = Reentrant(Arc::clone(&slot), counted);
        metrics::with_local_recorder(&recorder, || {
            paused_runtime().block_on(async move {
                let buffer = FailoverBuffer::new(config()).unwrap();
                let _ = slot.set(buffer.clone());
                let shard = buffer.register_shard("commerce", "0");
                let cause = Some(FailoverCause::Reparent);
                let held = tokio::spawn({
                    let (buffer, shard) = (buffer.clone(), shard.clone());
                    async move { buffer.wait_for_failover_end(&shard, cause).await.is_ok() }
                });
                settle().await;
                buffer.health(&shard, serving(2, 2)).unwrap();
                assert!(held.await.unwrap());
            });
        });
    });
    assert!(*calls.lock().unwrap() > 0, "the recorder ran");
}

/// A hook that panics in the driver task kills the timer: the buffer then shuts itself down,
/// so nothing waits on a dead timer.
#[test]
fn a_subscriber_panicking_in_the_driver_task_shuts_the_buffer_down() {
    let subscriber = OnEvent {
        // Logged (at TRACE) only by the input that wakes a request: here the driver's tick.
        trigger: "wake",
        act: Box::new(|| panic!("the subscriber failed")),
    };
    run_with(subscriber, || {
        paused_runtime().block_on(async {
            let buffer = FailoverBuffer::new(config()).unwrap();
            let shard = buffer.register_shard("commerce", "0");
            let retry = tokio::spawn({
                let (buffer, shard) = (buffer.clone(), shard.clone());
                async move {
                    let cause = Some(FailoverCause::Reparent);
                    buffer
                        .wait_for_failover_end(&shard, cause)
                        .await
                        .map(|g| g.is_some())
                }
            });
            // Only the driver's tick wakes the request (its window ends), and logs it.
            assert_eq!(retry.await.unwrap(), Ok(true), "released, not stranded");
            settle().await;
            assert!(buffer.is_closed(), "the buffer shut itself down");
            let later = buffer
                .wait_for_failover_end(&shard, Some(FailoverCause::Reparent))
                .await;
            assert!(
                later.unwrap().is_none(),
                "later requests proceed unbuffered"
            );
        });
    });
}
