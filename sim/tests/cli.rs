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
    let evicted: Vec<u64> = json["rows"]
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
fn two_sweeps_give_the_grid_of_every_combination_first_key_outermost() {
    let text = stdout(&sim(&[
        "--sweep",
        "size=1000,7000",
        "--sweep",
        "drain_concurrency=1,16,64",
    ]));
    assert!(text.starts_with("grid of size × drain_concurrency over scenario \"default\""));
    let rows = sweep_rows(&text, "size");
    let keys: Vec<Vec<&str>> = rows
        .iter()
        .map(|r| r.split_whitespace().take(2).collect())
        .collect();
    assert_eq!(
        keys,
        [
            ["1000", "1"],
            ["1000", "16"],
            ["1000", "64"],
            ["7000", "1"],
            ["7000", "16"],
            ["7000", "64"]
        ]
    );
}

/// The README's sizing story: 7,000 slots hold the whole failover, and at drain concurrency
/// 16 the drain takes 0.78 s instead of 12.5 s (at 1,000 slots it is 126 ms, a different
/// question).
#[test]
fn the_grid_answers_seven_thousand_slots_at_drain_concurrency_sixteen() {
    let out = sim(&[
        "--sweep",
        "size=1000,7000",
        "--sweep",
        "drain_concurrency=1,16",
        "--json",
    ]);
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("JSON");
    let rows = json["rows"].as_array().expect("rows");
    let row = |size: &str, c: &str| {
        rows.iter()
            .find(|r| r["values"][0] == size && r["values"][1] == c)
            .map(|r| &r["report"])
            .expect("the combination ran")
    };
    assert_eq!(row("7000", "1")["errors"]["total"], 0);
    assert_eq!(row("7000", "16")["errors"]["total"], 0);
    let drain = |r: &serde_json::Value| r["drain_time_ns"].as_u64().expect("ns");
    assert!(drain(row("7000", "1")) > 12_000_000_000);
    assert!(drain(row("7000", "16")) < 800_000_000);
    assert!(drain(row("1000", "16")) < 130_000_000);
}

#[test]
fn a_key_swept_twice_is_refused() {
    let out = sim(&["--sweep", "size=1,2", "--sweep", "size=3"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--sweep size is given twice"));
}

#[test]
fn a_grid_combination_the_core_refuses_is_named_before_anything_runs() {
    let out = sim(&[
        "--sweep",
        "window=5s,30s",
        "--sweep",
        "max_failover_duration=20s,40s",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "--sweep window,max_failover_duration=30s,20s: window: buffer window must be <="
        ),
        "{stderr}"
    );
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

#[test]
fn sweep_arguments_are_refused_with_typed_errors() {
    use failover_buffer_sim::{BufferKeyError, Sweep, SweepError};
    assert_eq!(
        "size".parse::<Sweep>(),
        Err(SweepError::NotKeyValues("size".into()))
    );
    assert_eq!(
        "size=1,,2".parse::<Sweep>(),
        Err(SweepError::EmptyValue("size=1,,2".into()))
    );
    assert!(matches!(
        "size=many".parse::<Sweep>(),
        Err(SweepError::Value {
            error: BufferKeyError::NotAWholeNumber { .. },
            ..
        })
    ));
    assert!(matches!(
        "sise=1".parse::<Sweep>(),
        Err(SweepError::Value {
            error: BufferKeyError::UnknownKey(_),
            ..
        })
    ));
}
