//! The determinism claim: the same scenario and seed give byte-identical output.

use failover_buffer_sim::{NoObserver, Scenario, compare};

fn json(scenario: &Scenario, seed: u64) -> String {
    let comparison = compare(scenario, seed, &mut NoObserver).expect("valid configs");
    serde_json::to_string_pretty(&comparison).expect("serialisable")
}

#[test]
fn the_same_seed_gives_identical_json() {
    let scenario = Scenario::default_scenario();
    assert_eq!(json(&scenario, 7), json(&scenario, 7));
}

#[test]
fn a_different_seed_gives_different_traffic() {
    let scenario = Scenario::default_scenario();
    assert_ne!(json(&scenario, 7), json(&scenario, 8));
}

#[test]
fn every_run_of_a_comparison_sees_the_same_traffic() {
    let scenario = Scenario::default_scenario();
    let c = compare(&scenario, 3, &mut NoObserver).expect("valid configs");
    let requests: Vec<u64> = c.runs.iter().map(|r| r.report.requests).collect();
    assert!(requests[0] > 0);
    assert!(requests.iter().all(|&n| n == requests[0]), "{requests:?}");
}

#[test]
fn the_binary_prints_byte_identical_output_twice() {
    let once = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_failover-buffer-sim"))
            .args(["--json", "--seed", "5"])
            .output()
            .expect("the binary runs")
    };
    let (a, b) = (once(), once());
    assert!(a.status.success());
    assert!(
        a.stderr.is_empty(),
        "no progress bar when stderr is not a terminal"
    );
    assert_eq!(a.stdout, b.stdout);
}
