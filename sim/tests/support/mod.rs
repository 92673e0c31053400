//! What the hand-computed simulator tests share: scenarios with a constant 10 ms service
//! time, and runs that collect every request's end in a fixed order.

#![allow(dead_code)] // each test file uses part of it

use core::time::Duration;

use failover_buffer::Config;
use failover_buffer_sim::{Observer, Report, RequestEnd, Scenario, run_observed};

/// Collects every request's end.
#[derive(Default)]
pub(crate) struct Ends(pub(crate) Vec<RequestEnd>);

impl Observer for Ends {
    fn request_ended(&mut self, end: &RequestEnd) {
        self.0.push(*end);
    }
}

/// A scenario with a constant 10 ms service time. `body` may start with top-level keys
/// (`duration`, `routers`, ...) ahead of its tables.
pub(crate) fn scenario(body: &str) -> Scenario {
    let text = format!("{body}\n[service]\ndistribution = \"constant\"\ntime = \"10ms\"\n");
    Scenario::from_toml_str(&text, "test.toml").expect("the test scenario is valid")
}

/// [`scenario`] with top-level keys given apart from the tables.
pub(crate) fn scenario_with(top: &str, body: &str) -> Scenario {
    scenario(&format!("{top}\n{body}"))
}

/// Runs `scenario` under its own `[buffer]` config with seed 1.
pub(crate) fn simulate(scenario: &Scenario) -> (Report, Vec<RequestEnd>) {
    simulate_with(scenario, &scenario.buffer, 1)
}

/// Runs `scenario` under `config` with `seed`; the ends come sorted by arrival, then shard,
/// then end.
pub(crate) fn simulate_with(
    scenario: &Scenario,
    config: &Config,
    seed: u64,
) -> (Report, Vec<RequestEnd>) {
    let mut ends = Ends::default();
    let report = run_observed(scenario, config, seed, &mut ends).expect("valid config");
    ends.0.sort_by_key(|e| (e.arrival, e.shard, e.end));
    (report, ends.0)
}

/// `n` milliseconds.
pub(crate) fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}
