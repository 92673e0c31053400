//! With the `metrics` feature, every shard's counters and gauges are exported under
//! Vitess's names, from the shard's registration on. Run with
//! `cargo test -p failover-buffer-std --features metrics`.
#![cfg(feature = "metrics")]

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{manual, stamp};
use failover_buffer_std::{Clock, FailoverCause, WaitError};
use metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, Key, KeyName, Metadata, Recorder, SharedString,
    Unit,
};

/// Last value of every metric, keyed `name{label=value,...}`.
type Values = Arc<Mutex<BTreeMap<String, f64>>>;

struct Cell {
    key: String,
    values: Values,
}

impl Cell {
    fn update(&self, f: impl FnOnce(f64) -> f64) {
        let mut values = self.values.lock().unwrap();
        let v = values.entry(self.key.clone()).or_default();
        *v = f(*v);
    }
}

/// A histogram keeps its count of samples under its key, and its last sample under
/// `key:last`.
impl metrics::HistogramFn for Cell {
    fn record(&self, value: f64) {
        self.update(|v| v + 1.0);
        let last = format!("{}:last", self.key);
        self.values.lock().unwrap().insert(last, value);
    }
}

impl CounterFn for Cell {
    fn increment(&self, value: u64) {
        self.update(|v| v + value as f64);
    }

    fn absolute(&self, value: u64) {
        self.update(|v| v.max(value as f64));
    }
}

impl GaugeFn for Cell {
    fn increment(&self, value: f64) {
        self.update(|v| v + value);
    }

    fn decrement(&self, value: f64) {
        self.update(|v| v - value);
    }

    fn set(&self, value: f64) {
        self.update(|_| value);
    }
}

struct TestRecorder {
    values: Values,
}

impl TestRecorder {
    fn cell(&self, key: &Key) -> Arc<Cell> {
        let labels: Vec<_> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        let key = format!("{}{{{}}}", key.name(), labels.join(","));
        self.values.lock().unwrap().entry(key.clone()).or_default();
        Arc::new(Cell {
            key,
            values: self.values.clone(),
        })
    }
}

impl Recorder for TestRecorder {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(self.cell(key))
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(self.cell(key))
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::from_arc(self.cell(key))
    }
}

#[test]
fn shard_counters_and_gauges_are_exported_with_vitess_names() {
    let values = Values::default();
    metrics::set_global_recorder(TestRecorder {
        values: values.clone(),
    })
    .unwrap();
    let read = |key: &str| values.lock().unwrap().get(key).copied();
    let labels = "keyspace=commerce,shard=0";

    let (buffer, clock) = manual(common::enabled());
    let shard = buffer.register_shard("commerce", "0");
    // Every label exists, at zero, from registration.
    assert_eq!(
        read(&format!("failover_buffer_starts{{{labels}}}")),
        Some(0.0)
    );
    assert_eq!(
        read(&format!(
            "failover_buffer_requests_evicted{{{labels},reason=ContextDone}}"
        )),
        Some(0.0)
    );
    assert_eq!(
        read(&format!(
            "failover_buffer_requests_skipped{{{labels},reason=LastReparentTooRecent}}"
        )),
        Some(0.0)
    );

    // A failover in which one caller gives up, then the new primary serves.
    buffer.health(&shard, stamp(1, 1, true)).unwrap();
    let timed_out =
        buffer.wait_for_failover_end_timeout(&shard, Some(FailoverCause::Reparent), clock.now());
    assert_eq!(timed_out.map(|g| g.is_some()), Err(WaitError::TimedOut));
    clock.advance(Duration::from_millis(1500));
    buffer.health(&shard, stamp(2, 2, true)).unwrap();

    assert_eq!(
        read(&format!("failover_buffer_starts{{{labels}}}")),
        Some(1.0)
    );
    assert_eq!(
        read(&format!("failover_buffer_requests_buffered{{{labels}}}")),
        Some(1.0)
    );
    assert_eq!(
        read(&format!(
            "failover_buffer_requests_evicted{{{labels},reason=ContextDone}}"
        )),
        Some(1.0)
    );
    assert_eq!(
        read(&format!(
            "failover_buffer_stops{{{labels},reason=NewPrimarySeen}}"
        )),
        Some(1.0)
    );
    assert_eq!(
        read(&format!(
            "failover_buffer_last_failover_duration_ms{{{labels}}}"
        )),
        Some(1500.0)
    );
    assert_eq!(
        read(&format!(
            "failover_buffer_last_requests_in_flight_max{{{labels}}}"
        )),
        Some(1.0)
    );
    // The request held, then cancelled at its deadline (at once: it waited 0 ns), is one
    // wait sample labelled Cancelled, of the underflow bucket's midpoint (50 µs); the
    // failover is one duration sample (1.5 s is in the 1,433.6–1,638.4 ms bucket).
    let wait = format!("failover_buffer_requests_wait_ms{{{labels},outcome=Cancelled}}");
    assert_eq!(read(&wait), Some(1.0));
    assert_eq!(read(&format!("{wait}:last")), Some(0.05));
    let failover = format!("failover_buffer_failover_duration_ms{{{labels}}}");
    assert_eq!(read(&failover), Some(1.0));
    assert_eq!(read(&format!("{failover}:last")), Some(1536.0));
    let outcomes = values
        .lock()
        .unwrap()
        .keys()
        .filter(|k| k.starts_with("failover_buffer_requests_wait_ms") && !k.ends_with(":last"))
        .count();
    assert_eq!(outcomes, 1, "no other outcome was recorded");
}
