//! The simulator (`failover-buffer-sim`): simulated requests per second.
//!
//! Run with `cargo bench -p failover-buffer-benches --bench sim`. Criterion's throughput is
//! set to the number of requests the scenario generates, so "thrpt" reads as simulated
//! requests per second of wall time.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use failover_buffer_sim::{Scenario, run};

/// The default scenario (one shard, 2,000 requests/s for 10 s, one 3 s failover), run with
/// its own buffer config and seed.
fn default_scenario(c: &mut Criterion) {
    let scenario = Scenario::default_scenario();
    let report = run(&scenario, &scenario.buffer, scenario.seed).expect("the scenario is valid");
    let mut group = c.benchmark_group("sim");
    group.sample_size(20);
    group.throughput(Throughput::Elements(report.requests));
    group.bench_function("default_scenario", |b| {
        b.iter(|| {
            let again =
                run(&scenario, &scenario.buffer, scenario.seed).expect("the scenario is valid");
            // The same seed gives the same run: this is the work measured, every time.
            assert_eq!(again.requests, report.requests);
            again
        })
    });
    group.finish();
}

criterion_group!(benches, default_scenario);
criterion_main!(benches);
