//! `--recommend`: the smallest config that meets the objective, the runners-up, and why the
//! smaller candidates failed.

use std::process::Command;

use failover_buffer_sim::{ObjectiveError, Scenario, SimError, experiment::recommend};

/// Ten requests arrive during a 1 s outage and are all held; each attempt takes 10 ms, so a
/// drain at concurrency c takes ceil(10 / c) × 10 ms.
const TEN_HELD: &str = r#"
[service]
distribution = "constant"
time = "10ms"
[[shards]]
name = "ks/0"
arrivals = ["1.1s", "1.2s", "1.3s", "1.4s", "1.5s", "1.6s", "1.7s", "1.8s", "1.9s", "1.95s"]
[[shards.failovers]]
start = "1s"
duration = "1s"
[objective]
errors = 0
drain_time = "30ms"
"#;

#[test]
fn ten_held_requests_need_ten_slots_and_concurrency_four_for_a_30ms_drain() {
    let scenario = Scenario::from_toml_str(TEN_HELD, "ten.toml").expect("valid");
    let found = recommend(&scenario, 1, &mut |_| {}).expect("searchable");
    let best = found.best.expect("met");
    // Nine slots evict one request; concurrency 2 drains in 5 × 10 ms, 4 in 3 × 10 ms.
    assert_eq!((best.size, best.drain_concurrency), (10, 4));
    assert_eq!(best.report.drain_time_ns, 30_000_000);
    // Kept the scenario's window and max failover duration: no flag changed needlessly.
    assert_eq!(best.window, scenario.buffer.window);
    assert_eq!(
        best.max_failover_duration,
        scenario.buffer.max_failover_duration
    );
    let c2 = found
        .rejected
        .iter()
        .find(|c| c.drain_concurrency == 2 && c.window == scenario.buffer.window)
        .expect("concurrency 2 was rejected");
    assert_eq!(c2.size, 10);
    assert_eq!(c2.misses.len(), 1);
    assert_eq!(c2.misses[0].objective, "drain_time");
    assert_eq!(c2.misses[0].by, "20.0ms");
}

#[test]
fn a_memory_limit_too_small_for_the_traffic_is_reported_with_the_errors_it_causes() {
    let text = TEN_HELD.replace("drain_time = \"30ms\"", "size = 5");
    let scenario = Scenario::from_toml_str(&text, "small.toml").expect("valid");
    let found = recommend(&scenario, 1, &mut |_| {}).expect("searchable");
    assert!(found.best.is_none());
    let first = &found.rejected[0];
    assert_eq!(first.size, 5);
    assert_eq!(first.misses[0].objective, "errors");
    assert_eq!(first.misses[0].by, "5", "five of ten requests evicted");
}

#[test]
fn a_scenario_without_an_objective_is_refused() {
    let text = TEN_HELD.replace("[objective]\nerrors = 0\ndrain_time = \"30ms\"\n", "");
    let scenario = Scenario::from_toml_str(&text, "none.toml").expect("valid");
    let error = recommend(&scenario, 1, &mut |_| {}).expect_err("nothing to meet");
    assert!(
        matches!(error, SimError::Objective(ObjectiveError::Missing)),
        "{error}"
    );
}

/// The README's hand sweep (a size grid, then a drain-concurrency grid at 7,000) reaches
/// 7,000 slots at drain concurrency 16; `--recommend` must reach the same.
#[test]
fn recommend_on_the_default_scenario_gives_the_readmes_answer() {
    let out = Command::new(env!("CARGO_BIN_EXE_failover-buffer-sim"))
        .args(["--recommend"])
        .output()
        .expect("the binary runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(
            "recommended: size=7000 drain_concurrency=16 window=10s max_failover_duration=20s"
        ),
        "{text}"
    );
    assert!(
        text.contains("drain_time 1566.3ms > 1s by 566.3ms"),
        "concurrency 8 is rejected for its drain: {text}"
    );
}

#[test]
fn recommend_json_is_the_same_twice_and_names_the_recommendation() {
    let dir = std::env::temp_dir().join(format!("failover-buffer-sim-rec-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("ten.toml");
    std::fs::write(&path, TEN_HELD).expect("write");
    let svg = dir.join("ten.svg");
    let once = || {
        Command::new(env!("CARGO_BIN_EXE_failover-buffer-sim"))
            .args([
                path.to_str().expect("utf-8"),
                "--recommend",
                "--json",
                "--plot",
            ])
            .arg(&svg)
            .output()
            .expect("the binary runs")
    };
    let (a, b) = (once(), once());
    assert!(a.status.success(), "{}", String::from_utf8_lossy(&a.stderr));
    assert!(
        a.stderr.is_empty(),
        "no progress bar when stderr is not a terminal"
    );
    assert_eq!(a.stdout, b.stdout);
    let json: serde_json::Value = serde_json::from_slice(&a.stdout).expect("JSON");
    assert_eq!(json["best"]["size"], 10);
    assert_eq!(json["best"]["drain_concurrency"], 4);
    assert_eq!(json["best"]["window"], "10s");
    let svg = std::fs::read_to_string(&svg).expect("the recommended config's timeline");
    assert!(svg.starts_with("<svg"));
}

#[test]
fn recommend_and_sweep_together_are_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_failover-buffer-sim"))
        .args(["--recommend", "--sweep", "size=1,2"])
        .output()
        .expect("the binary runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
}
