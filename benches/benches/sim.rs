//! The simulator (`failover-buffer-sim`): simulated requests per second.
//!
//! Run with `cargo bench -p failover-buffer-benches --bench sim`. Criterion's throughput is
//! set to the number of requests the scenario generates, so "thrpt" reads as simulated
//! requests per second (the simulator uses one thread). Each scenario is timed twice: by
//! the wall clock (`sim/NAME`), and by the CPU time of the benchmark's thread
//! (`sim/NAME/cpu`, from `/proc/thread-self/schedstat`, in nanoseconds), which is the
//! "per core" figure and does not count time the thread waited for a core on a busy
//! machine.

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use failover_buffer_sim::{Scenario, run};

/// The default scenario (one shard, 2,000 requests/s for 10 s, one 3 s failover), run with
/// its own buffer config and seed.
fn default_scenario(c: &mut Criterion) {
    bench(c, "default_scenario", &Scenario::default_scenario(), 20);
}

/// 64 shards at 1,000 requests/s each for 10 s (637,594 requests), eight of them failing
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
    let once = || {
        let again = run(scenario, &scenario.buffer, scenario.seed).expect("the scenario is valid");
        // The same seed gives the same run: this is the work measured, every time.
        assert_eq!(again.requests, report.requests);
        again
    };
    group.bench_function(name, |b| b.iter(once));
    if thread_cpu_time().is_some() {
        group.bench_function(format!("{name}/cpu"), |b| {
            b.iter_custom(|iters| {
                let start = thread_cpu_time().unwrap_or_default();
                for _ in 0..iters {
                    std::hint::black_box(once());
                }
                thread_cpu_time().unwrap_or_default().saturating_sub(start)
            })
        });
    }
    group.finish();
}

/// The CPU time this thread has run, from the first field of Linux's
/// `/proc/thread-self/schedstat` (nanoseconds on a CPU); `None` where there is no such file.
fn thread_cpu_time() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let nanos = text.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(nanos))
}

criterion_group!(benches, default_scenario, sixty_four_shards);
criterion_main!(benches);
