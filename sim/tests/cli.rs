//! The command line: sweeps, JSON and plots.

use std::process::{Command, Output};

fn sim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_failover-buffer-sim"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).expect("utf-8")
}

/// The data rows of each sweep table: the lines after a header that starts with `key`.
fn sweep_rows(text: &str, key: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let header = lines
        .iter()
        .position(|l| l.starts_with(key) && l.contains("errors"))
        .expect("a table header");
    lines[header + 1..]
        .iter()
        .take_while(|l| !l.is_empty())
        .map(|l| l.to_string())
        .collect()
}

#[test]
fn a_sweep_prints_one_row_per_value() {
    let text = stdout(&sim(&["--sweep", "size=100,1000,5000"]));
    let rows = sweep_rows(&text, "size");
    let values: Vec<&str> = rows
        .iter()
        .map(|r| r.split_whitespace().next().unwrap_or(""))
        .collect();
    assert_eq!(values, ["100", "1000", "5000"]);
}

#[test]
fn a_bigger_buffer_evicts_fewer_requests_in_the_default_scenario() {
    let out = sim(&["--sweep", "size=1000,10000", "--json"]);
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("JSON");
    let evicted: Vec<u64> = json["sweeps"][0]["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|row| {
            row["report"]["errors"]["evicted"]
                .as_u64()
                .expect("a count")
        })
        .collect();
    assert!(evicted[0] > 0 && evicted[1] == 0, "{evicted:?}");
}

#[test]
fn repeated_sweeps_print_one_table_each() {
    let text = stdout(&sim(&[
        "--sweep",
        "drain_concurrency=1,16",
        "--sweep",
        "window=1s,5s,10s",
    ]));
    assert_eq!(sweep_rows(&text, "drain_concurrency").len(), 2);
    assert_eq!(sweep_rows(&text, "window").len(), 3);
}

#[test]
fn a_sweep_of_an_unknown_key_or_invalid_value_is_refused() {
    let out = sim(&["--sweep", "sise=1,2"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown buffer key \"sise\""));

    let out = sim(&["--sweep", "window=30s"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("window: buffer window must be <="));
}

#[test]
fn json_output_has_the_three_runs() {
    let json: serde_json::Value = serde_json::from_str(&stdout(&sim(&["--json"]))).expect("JSON");
    let labels: Vec<&str> = json["runs"]
        .as_array()
        .expect("runs")
        .iter()
        .map(|r| r["label"].as_str().expect("a label"))
        .collect();
    assert_eq!(labels, ["no buffer", "vitess defaults", "scenario"]);
    assert_eq!(json["runs"][0]["report"]["buffer"]["buffered"], 0);
}

#[test]
fn plot_writes_an_svg_and_leaves_stdout_unchanged() {
    let path = std::env::temp_dir().join(format!("failover-buffer-sim-{}.svg", std::process::id()));
    let plain = stdout(&sim(&[]));
    let with_plot = stdout(&sim(&["--plot", path.to_str().expect("utf-8 path")]));
    assert_eq!(plain, with_plot);
    let svg = std::fs::read_to_string(&path).expect("the plot was written");
    assert!(svg.starts_with("<svg"), "{}", &svg[..40.min(svg.len())]);
    assert!(svg.contains("released to retry"));
    let _ = std::fs::remove_file(&path);
}
