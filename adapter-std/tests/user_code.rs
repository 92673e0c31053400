//! Telemetry is user code: a tracing subscriber may call back into the buffer or panic. None
//! of it runs under the buffer's lock, and a panic in it strands no slot.
#![cfg(feature = "tracing")]

mod common;

use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::Duration;

use common::{eventually, manual, stamp, within};
use failover_buffer_std::{Clock, FailoverBuffer, FailoverCause, ShardState};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// A subscriber that does something on the events whose text contains `trigger`.
struct OnEvent {
    trigger: &'static str,
    act: Box<dyn Fn() + Send + Sync>,
}

struct Text<'a>(&'a mut String);

impl tracing::field::Visit for Text<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!("{}={value:?} ", field.name()));
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
        let mut text = String::new();
        event.record(&mut Text(&mut text));
        if text.contains(self.trigger) {
            (self.act)();
        }
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

/// Issue 9, bug 4: a subscriber that reads the buffer while logging does not deadlock.
#[test]
fn a_subscriber_that_calls_back_into_the_buffer_does_not_deadlock() {
    within(Duration::from_secs(20), || {
        let slot: Arc<OnceLock<FailoverBuffer>> = Arc::default();
        let subscriber = OnEvent {
            trigger: "",
            act: Box::new({
                let slot = Arc::clone(&slot);
                move || {
                    if let Some(buffer) = slot.get() {
                        let _ = buffer.held_slots();
                    }
                }
            }),
        };
        let (buffer, clock) = manual(common::enabled());
        let _ = slot.set(buffer.clone());
        let _default = tracing::subscriber::set_default(subscriber);
        let shard = buffer.register_shard("commerce", "0");
        buffer.health(&shard, stamp(1, 1, true)).unwrap();
        // Starts a failover (logged at INFO) and times out at once: no other thread needed.
        let _ = buffer.wait_for_failover_end_timeout(
            &shard,
            Some(FailoverCause::Reparent),
            clock.now(),
        );
        buffer.health(&shard, stamp(2, 2, true)).unwrap();
        buffer.shutdown();
    });
}

/// Issue 9, bug 5: the release is logged after the guard exists.
#[test]
fn a_subscriber_panicking_in_the_release_log_strands_no_slot() {
    let (buffer, _clock) = manual(common::enabled());
    let shard = buffer.register_shard("commerce", "0");
    buffer.health(&shard, stamp(1, 1, true)).unwrap();
    let held = {
        let (buffer, shard) = (buffer.clone(), shard.clone());
        thread::spawn(move || {
            let _default = tracing::subscriber::set_default(OnEvent {
                trigger: "released to retry",
                act: Box::new(|| panic!("the subscriber failed")),
            });
            let _guard = buffer.wait_for_failover_end(&shard, Some(FailoverCause::Reparent));
        })
    };
    eventually("queued", || buffer.queued(&shard) == 1);
    buffer.health(&shard, stamp(2, 2, true)).unwrap();
    assert!(held.join().is_err(), "the subscriber panicked");
    assert_eq!(buffer.held_slots(), 0);
    assert_eq!(
        buffer.state(&shard),
        ShardState::Idle,
        "free to buffer again"
    );
}

/// Issue 9, bug 5 (the admission's log): a held request whose log panics is cancelled.
#[test]
fn a_subscriber_panicking_in_the_held_log_strands_no_slot() {
    let (buffer, _clock) = manual(common::enabled());
    let shard = buffer.register_shard("commerce", "0");
    let held = {
        let (buffer, shard) = (buffer.clone(), shard.clone());
        thread::spawn(move || {
            let _default = tracing::subscriber::set_default(OnEvent {
                trigger: "\"held\"",
                act: Box::new(|| panic!("the subscriber failed")),
            });
            let _guard = buffer.wait_for_failover_end(&shard, Some(FailoverCause::Reparent));
        })
    };
    assert!(held.join().is_err(), "the subscriber panicked");
    assert_eq!(buffer.held_slots(), 0);
    assert_eq!(buffer.queued(&shard), 0);
}
