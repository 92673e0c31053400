//! Scenario files: the examples are valid, and a bad file is refused whole, with an error
//! naming the file, the line and the key.

use std::path::{Path, PathBuf};
use std::process::Command;

use failover_buffer_sim::{Scenario, ScenarioError};

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(name)
}

/// Writes `text` to a fresh file named `name` and reads it as a scenario.
fn load(name: &str, text: &str) -> (PathBuf, Result<Scenario, ScenarioError>) {
    let dir = std::env::temp_dir().join(format!("failover-buffer-sim-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write scenario");
    let result = Scenario::from_file(&path);
    (path, result)
}

const GOOD_HEAD: &str = "duration = \"5s\"\n\n[[shards]]\nname = \"ks/0\"\nrate = 100\n";

#[test]
fn the_default_example_file_is_the_built_in_scenario() {
    let from_file = Scenario::from_file(example("default.toml")).expect("valid");
    assert_eq!(from_file, Scenario::default_scenario());
}

#[test]
fn every_example_scenario_is_valid() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).expect("scenarios/ exists") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "toml") {
            Scenario::from_file(&path).unwrap_or_else(|e| panic!("{e}"));
            seen += 1;
        }
    }
    assert!(seen >= 3);
}

#[test]
fn an_unknown_key_is_an_error_naming_file_line_and_key() {
    let text = format!("{GOOD_HEAD}\n[buffer]\nsize = 10\nwindw = \"5s\"\n");
    let (path, result) = load("unknown-key.toml", &text);
    let error = result.expect_err("unknown keys are refused");
    let message = error.to_string();
    assert!(
        message.starts_with(&path.display().to_string()),
        "{message}"
    );
    assert!(message.contains("line 9"), "{message}");
    assert!(message.contains("unknown field `windw`"), "{message}");
    assert_eq!(error.line_column(&text), Some((9, 1)));
}

#[test]
fn a_bad_duration_is_an_error_pointing_at_its_value() {
    let text = format!("{GOOD_HEAD}\n[buffer]\nwindow = \"10 parsecs\"\n");
    let (_, result) = load("bad-duration.toml", &text);
    let error = result.expect_err("bad durations are refused");
    let message = error.to_string();
    assert!(message.contains("line 8"), "{message}");
    assert!(message.contains("window"), "{message}");
    assert!(
        message.contains("invalid duration \"10 parsecs\""),
        "{message}"
    );
}

#[test]
fn an_invalid_buffer_config_names_the_key_at_fault() {
    let text =
        format!("{GOOD_HEAD}\n[buffer]\nwindow = \"30s\"\nmax_failover_duration = \"20s\"\n");
    let (_, result) = load("bad-config.toml", &text);
    let message = result.expect_err("refused").to_string();
    assert!(message.contains("line 7"), "points at [buffer]: {message}");
    assert!(
        message.contains("buffer.window: buffer window must be <= max failover duration"),
        "{message}"
    );
}

#[test]
fn overlapping_failovers_are_refused() {
    let text = format!(
        "{GOOD_HEAD}[[shards.failovers]]\nstart = \"1s\"\nduration = \"3s\"\n[[shards.failovers]]\nstart = \"2s\"\nduration = \"1s\"\n"
    );
    let (_, result) = load("overlap.toml", &text);
    let message = result.expect_err("refused").to_string();
    assert!(message.contains("line 3"), "points at the shard: {message}");
    assert!(
        message.contains("starts before the one at 1s is over"),
        "{message}"
    );
}

#[test]
fn a_missing_file_is_an_error_naming_it() {
    let error = Scenario::from_file("/nonexistent/scenario.toml").expect_err("no such file");
    assert!(
        error
            .to_string()
            .starts_with("/nonexistent/scenario.toml: ")
    );
}

#[test]
fn the_binary_refuses_a_bad_file_without_simulating_anything() {
    let (path, _) = load("half.toml", &format!("{GOOD_HEAD}[client]\nattempts = 0\n"));
    let out = Command::new(env!("CARGO_BIN_EXE_failover-buffer-sim"))
        .arg(&path)
        .output()
        .expect("the binary runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty(), "nothing is simulated");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("half.toml"), "{stderr}");
    assert!(stderr.contains("line 6"), "{stderr}");
    assert!(
        stderr.contains("client.attempts must be at least 1"),
        "{stderr}"
    );
}
