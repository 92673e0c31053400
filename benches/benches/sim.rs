//! The simulator (`failover-buffer-sim`): simulated requests per second.
//!
//! Run with `cargo bench -p failover-buffer-benches --bench sim`. Criterion's throughput is
//! set to the number of requests the scenario generates, so "thrpt" reads as simulated
//! requests per second of wall time (one core: the simulator uses one thread).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use failover_buffer_sim::{Scenario, run};

/// The default scenario (one shard, 2,000 requests/s for 10 s, one 3 s failover), run with
/// its own buffer config and seed.
fn default_scenario(c: &mut Criterion) {
    bench(c, "default_scenario", &Scenario::default_scenario(), 20);
}

/// 64 shards at 1,000 requests/s each for 10 s (640,000 requests), eight of them failing
/// over for 3 s at staggered instants, with 100,000 slots: the shape of the one-hour,
/// 100k requests/s scenario (`sim/scenarios/hour-64-shards.toml`) at a bench's length.
fn sixty_four_shards(c: &mut Criterion) {
    let mut text = String::from(
        "name = \"64 shards\"\nduration = \"10s\"\n[buffer]\nsize = 100000\ndrain_concurrency = 16\n",
    );
    for i in 0..64 {
        text.push_str(&format!("[[shards]]\nname = \"ks/{i}\"\nrate = 1000\n"));
        if i % 8 == 0 {
            text.push_str(&format!(
                "[[shards.failovers]]\nstart = \"{}ms\"\nduration = \"3s\"\nhealth_delay = \"100ms\"\n",
                1000 + i * 50
            ));
        }
    }
    let scenario = Scenario::from_toml_str(&text, "bench").expect("the scenario is valid");
    bench(c, "sixty_four_shards", &scenario, 10);
}

fn bench(c: &mut Criterion, name: &str, scenario: &Scenario, samples: usize) {
    let report = run(scenario, &scenario.buffer, scenario.seed).expect("the scenario is valid");
    let mut group = c.benchmark_group("sim");
    group.sample_size(samples);
    group.throughput(Throughput::Elements(report.requests));
    group.bench_function(name, |b| {
        b.iter(|| {
            let again =
                run(scenario, &scenario.buffer, scenario.seed).expect("the scenario is valid");
            // The same seed gives the same run: this is the work measured, every time.
            assert_eq!(again.requests, report.requests);
            again
        })
    });
    group.finish();
}

criterion_group!(benches, default_scenario, sixty_four_shards);
criterion_main!(benches);
