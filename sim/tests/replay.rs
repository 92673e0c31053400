//! Replay: `--trace` (a request trace) and `--timeline` (a failover timeline), and the
//! errors a bad row gives: file, line, column.

use std::path::PathBuf;
use std::process::{Command, Output};

use failover_buffer_sim::{
    NoObserver, RowError, RowErrorKind, Scenario, SimError, read_timeline, run, run_observed,
};

fn file(name: &str, text: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("failover-buffer-sim-replay-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write");
    path
}

fn sim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_failover-buffer-sim"))
        .args(args)
        .output()
        .expect("the binary runs")
}

const SCENARIO: &str = r#"
[service]
distribution = "constant"
time = "10ms"
[[shards]]
name = "ks/0"
rate = 1000
arrivals = ["0.1s"]
[[shards.failovers]]
start = "1s"
duration = "1s"
"#;

fn row_error(error: SimError) -> RowError {
    match error {
        SimError::Row(row) => row,
        other => panic!("not a row error: {other}"),
    }
}

/// The trace replaces the shards' Poisson traffic and listed arrivals: its two requests are
/// the run's only ones, and the one in the outage is held until promotion.
#[test]
fn a_trace_is_the_runs_traffic() {
    let mut scenario = Scenario::from_toml_str(SCENARIO, "s.toml").expect("valid");
    scenario.trace = Some(file("two.csv", "time,shard\n0.5s,ks/0\n1.5s,ks/0\n"));
    let report = run(&scenario, &scenario.buffer, 1).expect("runs");
    assert_eq!(report.requests, 2);
    assert_eq!(report.buffer.buffered, 1);
    assert_eq!(
        report.added_latency.max_ns, 500_000_000,
        "held from 1.5 s to 2 s"
    );
}

#[test]
fn a_trace_without_a_header_and_with_sizes_counts_the_bytes_held() {
    let mut scenario = Scenario::from_toml_str(SCENARIO, "s.toml").expect("valid");
    let trace = "# no header\n1.1s,ks/0,300\n\n1.2s,ks/0,200\n2.5s,ks/0,1000\n";
    scenario.trace = Some(file("sizes.csv", trace));
    let report = run(&scenario, &scenario.buffer, 1).expect("runs");
    assert_eq!(report.requests, 3);
    assert_eq!(report.peak_held_bytes, 500);
}

#[test]
fn a_trace_row_before_the_previous_one_is_refused_with_its_line() {
    let mut scenario = Scenario::from_toml_str(SCENARIO, "s.toml").expect("valid");
    let path = file("unsorted.csv", "time,shard\n1s,ks/0\n2s,ks/0\n1.5s,ks/0\n");
    scenario.trace = Some(path.clone());
    let error = row_error(run(&scenario, &scenario.buffer, 1).expect_err("unsorted"));
    assert_eq!((error.path, error.line, error.column), (path, 4, 1));
    assert!(matches!(error.kind, RowErrorKind::OutOfOrder { .. }));
}

#[test]
fn bad_trace_fields_are_refused_with_line_and_column() {
    let cases = [
        (
            "time,shard\n1s,  ks/1\n",
            2,
            6,
            "shard \"ks/1\" is not in the scenario",
        ),
        ("time,shard\n1 s,ks/0\n", 2, 1, "invalid duration \"1 s\""),
        ("1s,ks/0,big\n", 1, 9, "size: \"big\" is not a whole number"),
        ("1s,ks/0,1,2\n", 1, 11, "more fields than the header names"),
        ("time,shard,bytes\n", 1, 1, "bad header"),
        ("1s\n", 1, 3, "missing field `shard`"),
    ];
    for (i, (text, line, column, message)) in cases.into_iter().enumerate() {
        let mut scenario = Scenario::from_toml_str(SCENARIO, "s.toml").expect("valid");
        scenario.trace = Some(file(&format!("bad{i}.csv"), text));
        let error = row_error(run(&scenario, &scenario.buffer, 1).expect_err(text));
        assert_eq!(
            (error.line, error.column),
            (line, column),
            "{text:?}: {error}"
        );
        assert!(error.to_string().contains(message), "{error}");
        assert!(
            error
                .to_string()
                .contains(&format!("bad{i}.csv: line {line}, column {column}: ")),
            "{error}"
        );
    }
}

/// The timeline replaces the scenario's failovers, and adds the shards it names.
#[test]
fn a_timeline_replaces_the_failovers_and_adds_shards() {
    let mut scenario = Scenario::from_toml_str(SCENARIO, "s.toml").expect("valid");
    let path = file(
        "timeline.csv",
        "shard,kind,start,duration,health_delay,serving_stamp_lost\n\
         ks/0,failover,3s,500ms,100ms,\n\
         ks/0,failover,5s,never,,\n\
         other/-80,resharding,2s,1s,,\n",
    );
    read_timeline(&path, &mut scenario).expect("valid timeline");
    assert_eq!(scenario.shards.len(), 2);
    let ks = &scenario.shards[0];
    assert_eq!(ks.failovers.len(), 2);
    assert_eq!(ks.failovers[0].start.as_millis(), 3000);
    assert_eq!(ks.failovers[0].health_delay.as_millis(), 100);
    assert_eq!(ks.failovers[1].duration, None);
    assert_eq!(scenario.shards[1].topology.len(), 1);
    assert_eq!(scenario.shards[1].rate, 0.0);
    run_observed(&scenario, &scenario.buffer, 1, &mut NoObserver).expect("runs");
}

#[test]
fn bad_timeline_rows_are_refused_with_line_and_column() {
    let cases = [
        ("shard,start,when\n", 1, 13, "unknown column \"when\""),
        ("start\n", 1, 1, "needs a \"shard\" column"),
        (
            "shard,start,duration\nks/0,1s,2 s\n",
            2,
            9,
            "invalid duration \"2 s\"",
        ),
        (
            "shard,start,duration\nks/0,1s,2s\nks/0,2s,1s\n",
            3,
            6,
            "the failover at 2s starts before the one at 1s is over",
        ),
        ("shard,start,duration\nks,1s,2s\n", 2, 1, "shard \"ks\""),
        (
            "shard,start,duration,kind\nks/0,1s,2s,split\n",
            2,
            12,
            "kind: \"split\"",
        ),
        ("shard,start\nks/0,1s\n", 2, 8, "missing field `duration`"),
        ("# nothing\n", 1, 1, "the file is empty"),
    ];
    for (i, (text, line, column, message)) in cases.into_iter().enumerate() {
        let mut scenario = Scenario::from_toml_str(SCENARIO, "s.toml").expect("valid");
        let path = file(&format!("badtl{i}.csv"), text);
        let error = row_error(read_timeline(&path, &mut scenario).expect_err(text));
        assert_eq!(
            (error.line, error.column),
            (line, column),
            "{text:?}: {error}"
        );
        assert!(error.to_string().contains(message), "{error}");
    }
}

/// A trace and a timeline from files give the same run as the scenario that lists the
/// same arrivals and failover.
#[test]
fn the_binary_replays_a_trace_and_timeline_like_the_equivalent_scenario() {
    let listed = file(
        "listed.toml",
        "[service]\ndistribution = \"constant\"\ntime = \"10ms\"\n\
         [[shards]]\nname = \"ks/0\"\narrivals = [\"0.5s\", \"1.5s\", \"1.6s\"]\n\
         [[shards.failovers]]\nstart = \"1s\"\nduration = \"1s\"\nhealth_delay = \"50ms\"\n",
    );
    let bare = file(
        "bare.toml",
        "[service]\ndistribution = \"constant\"\ntime = \"10ms\"\n[[shards]]\nname = \"ks/0\"\n",
    );
    let trace = file("t.csv", "time,shard\n0.5s,ks/0\n1.5s,ks/0\n1.6s,ks/0\n");
    let timeline = file(
        "tl.csv",
        "shard,start,duration,health_delay\nks/0,1s,1s,50ms\n",
    );
    let json = |out: Output| -> serde_json::Value {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
        v["summary"] = serde_json::Value::Null;
        v["scenario"] = serde_json::Value::Null;
        v
    };
    let a = json(sim(&[listed.to_str().expect("utf-8"), "--json"]));
    let b = json(sim(&[
        bare.to_str().expect("utf-8"),
        "--json",
        "--trace",
        trace.to_str().expect("utf-8"),
        "--timeline",
        timeline.to_str().expect("utf-8"),
    ]));
    assert_eq!(a, b);
}

#[test]
fn the_binary_reports_a_bad_trace_row_and_prints_no_report() {
    let trace = file("cli-bad.csv", "time,shard\n1s,ks/0\nlater,ks/0\n");
    let out = sim(&[
        "--trace",
        trace.to_str().expect("utf-8"),
        "--timeline",
        "/nonexistent.csv",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent.csv"));
    let scenario = file("cli.toml", "[[shards]]\nname = \"ks/0\"\n");
    let out = sim(&[
        scenario.to_str().expect("utf-8"),
        "--trace",
        trace.to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cli-bad.csv: line 3, column 1: invalid duration \"later\""),
        "{stderr}"
    );
}
