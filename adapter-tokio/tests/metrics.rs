//! The `metrics` feature: a failover's counters reach the recorder under Vitess-style names,
//! equal to the core's own stats. A test binary of its own: the recorder is process-global.
#![cfg(feature = "metrics")]

mod support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use failover_buffer_tokio::FailoverBuffer;
use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use support::{Client, Log, advance, config, serving, settle};

/// Keeps every series as `name{label=value,...}` → its value (gauges as `f64` bits), and
/// every histogram series → its samples.
#[derive(Clone, Default)]
struct Series(
    Arc<Mutex<BTreeMap<String, Arc<AtomicU64>>>>,
    Arc<Mutex<BTreeMap<String, Arc<Samples>>>>,
);

/// A histogram's samples, in order.
#[derive(Default)]
struct Samples(Mutex<Vec<f64>>);

impl metrics::HistogramFn for Samples {
    fn record(&self, value: f64) {
        self.0.lock().unwrap().push(value);
    }
}

fn series_name(key: &Key) -> String {
    let mut labels: Vec<String> = key
        .labels()
        .map(|l| format!("{}={}", l.key(), l.value()))
        .collect();
    labels.sort();
    format!("{}{{{}}}", key.name(), labels.join(","))
}

impl Series {
    fn cell(&self, key: &Key) -> Arc<AtomicU64> {
        let name = series_name(key);
        self.0.lock().unwrap().entry(name).or_default().clone()
    }

    /// Every histogram series whose name starts with `prefix`, with its samples.
    fn histograms(&self, prefix: &str) -> Vec<(String, Vec<f64>)> {
        self.1
            .lock()
            .unwrap()
            .iter()
            .filter(|(name, _)| name.starts_with(prefix))
            .map(|(name, s)| (name.clone(), s.0.lock().unwrap().clone()))
            .collect()
    }

    fn get(&self, name: &str) -> Option<u64> {
        self.0
            .lock()
            .unwrap()
            .get(name)
            .map(|v| v.load(Ordering::SeqCst))
    }
}

impl Recorder for Series {
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
        let samples = self
            .1
            .lock()
            .unwrap()
            .entry(series_name(key))
            .or_default()
            .clone();
        Histogram::from_arc(samples)
    }
}

#[tokio::test(start_paused = true)]
async fn a_failover_is_exported_with_vitess_names_and_matches_the_stats() {
    let series = Series::default();
    metrics::set_global_recorder(series.clone()).unwrap();
    let buffer = FailoverBuffer::new(config()).unwrap();
    let shard = buffer.register_shard("commerce", "0");
    // Labels in alphabetical order, as `Series` keeps them.
    let counter = |name: &str| {
        let key = format!("failover_buffer_{name}{{keyspace=commerce,shard=0}}");
        series.get(&key)
    };
    let reason = |name: &str, reason: &str| {
        let key = format!("failover_buffer_{name}{{keyspace=commerce,reason={reason},shard=0}}");
        series.get(&key)
    };
    // Every series exists from registration, at zero.
    assert_eq!(counter("requests_buffered"), Some(0));
    assert_eq!(reason("requests_evicted", "ContextDone"), Some(0));
    assert_eq!(reason("requests_skipped", "LastFailoverTooRecent"), Some(0));

    buffer.health(&shard, serving(1, 1)).unwrap();
    let log = Log::default();
    let mut clients: Vec<_> = (0..2)
        .map(|n| Client::spawn(&buffer, &shard, n, &log))
        .collect();
    settle().await;
    assert_eq!(
        counter("requests_buffered"),
        Some(2),
        "exported as it happens"
    );
    advance(Duration::from_secs(2)).await;
    buffer.health(&shard, serving(2, 2)).unwrap();
    for client in &mut clients {
        client.finish().await;
    }

    let stats = buffer.stats(&shard);
    assert_eq!(counter("starts"), Some(stats.starts));
    assert_eq!(counter("requests_buffered"), Some(stats.buffered));
    assert_eq!(counter("requests_drained"), Some(stats.drained));
    assert_eq!(reason("stops", "NewPrimarySeen"), Some(1));
    assert_eq!(
        counter("last_failover_duration_ms").map(f64::from_bits),
        Some(2000.0)
    );
    assert_eq!(
        counter("last_requests_in_flight_max").map(f64::from_bits),
        Some(2.0)
    );

    // Each held-then-released request is one wait sample, labelled by how it ended (the
    // drain released it: Retried), of its core bucket's midpoint: 2 s waited is in the
    // 1,638.4–2,048 ms bucket. The failover is one duration sample.
    assert_eq!(
        series.histograms("failover_buffer_requests_wait_ms"),
        [(
            "failover_buffer_requests_wait_ms{keyspace=commerce,outcome=Retried,shard=0}".into(),
            vec![1843.2, 1843.2]
        )]
    );
    assert_eq!(
        series.histograms("failover_buffer_failover_duration_ms"),
        [(
            "failover_buffer_failover_duration_ms{keyspace=commerce,shard=0}".into(),
            vec![1843.2]
        )]
    );
}
