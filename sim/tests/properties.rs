//! Properties of every run, over random scenarios that mix all the models: every request
//! ends exactly once, no router holds more than its size, and the same inputs give the
//! same report.

use proptest::prelude::*;

use failover_buffer_sim::{Observer, RequestEnd, Scenario, run_observed};

#[derive(Default)]
struct Count(u64);

impl Observer for Count {
    fn request_ended(&mut self, _: &RequestEnd) {
        self.0 += 1;
    }
}

/// A scenario over two shards with every model switched on or off at random.
#[allow(clippy::too_many_arguments)]
fn scenario_text(
    routers: u32,
    loss: f64,
    backoff: bool,
    jitter: usize,
    pause_ms: u64,
    cold: bool,
    lost: (bool, bool),
    topology: usize,
    size: usize,
    concurrency: usize,
    timeout_ms: u64,
) -> String {
    let jitter = ["none", "full", "equal"][jitter];
    let backoff = if backoff {
        "backoff = \"exponential\"\nmax_retry_delay = \"400ms\""
    } else {
        "backoff = \"fixed\""
    };
    let cold = if cold {
        "cold_factor = 2.5\ncold_for = \"700ms\""
    } else {
        ""
    };
    let topology = match topology {
        0 => String::new(),
        1 => "[[shards.topology]]\nkind = \"resharding\"\nstart = \"4s\"\nduration = \"600ms\""
            .into(),
        _ => "[[shards.topology]]\nkind = \"move_tables\"\nstart = \"4s\"\nduration = \"600ms\""
            .into(),
    };
    format!(
        r#"
routers = {routers}
duration = "5s"
[client]
timeout = "{timeout_ms}ms"
retry_delay = "20ms"
{backoff}
jitter = "{jitter}"
[health]
loss = {loss}
[service]
distribution = "exponential"
mean = "5ms"
[[shards]]
name = "a/0"
rate = 300
[[shards.failovers]]
start = "1s"
duration = "1s"
health_delay = "50ms"
not_serving_delay = "100ms"
write_pause = "{pause_ms}ms"
read_only_lag = "100ms"
serving_stamp_lost = {}
not_serving_stamp_lost = {}
{cold}
[[shards]]
name = "b/0"
rate = 200
service = {{ distribution = "uniform", min = "1ms", max = "9ms" }}
{topology}
[buffer]
size = {size}
window = "2s"
max_failover_duration = "3s"
drain_concurrency = {concurrency}
drain_backoff = "200ms"
"#,
        lost.0, lost.1
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn every_request_ends_once_and_the_same_inputs_give_the_same_report(
        routers in 1u32..4,
        loss in prop_oneof![Just(0.0), Just(0.5), Just(1.0)],
        backoff in any::<bool>(),
        jitter in 0usize..3,
        pause_ms in prop_oneof![Just(0u64), Just(300)],
        cold in any::<bool>(),
        lost in (any::<bool>(), any::<bool>()),
        topology in 0usize..3,
        size in prop_oneof![Just(1usize), Just(50), Just(1000)],
        concurrency in prop_oneof![Just(1usize), Just(8)],
        timeout_ms in prop_oneof![Just(500u64), Just(30_000)],
        seed in 0u64..1000,
    ) {
        let text = scenario_text(
            routers, loss, backoff, jitter, pause_ms, cold, lost, topology, size, concurrency,
            timeout_ms,
        );
        let scenario = Scenario::from_toml_str(&text, "prop.toml").expect("valid scenario");
        let mut ends = Count::default();
        let report = run_observed(&scenario, &scenario.buffer, seed, &mut ends).expect("runs");
        prop_assert_eq!(report.requests, report.ok + report.errors.total);
        prop_assert_eq!(ends.0, report.requests);
        prop_assert!(report.peak_slots <= size as u64);
        prop_assert!(report.affected <= report.requests);
        let again = run_observed(&scenario, &scenario.buffer, seed, &mut Count::default())
            .expect("runs");
        prop_assert_eq!(report, again);
    }
}
