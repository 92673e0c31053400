//! Replays the `drain_plan` fuzz target's seed corpus (`fuzz/corpus/drain_plan/`) and any
//! crash artifacts (`fuzz/artifacts/drain_plan/`) through the harness the target uses, so
//! plain `cargo test` keeps them passing on stable, without cargo-fuzz; and pins each seed
//! to the scenario it was written from.
//!
//! To rewrite the seeds after changing the byte format:
//! `DRAIN_SEEDS_WRITE=1 cargo test -p failover-buffer --test drain_fuzz_corpus`.

#[allow(dead_code)]
#[path = "../../fuzz/harness/drain_ops.rs"]
mod drain_ops;

use std::path::{Path, PathBuf};

use drain_ops::{Case, Input, Op, PhaseSpec, When};

fn dir(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz")
        .join(kind)
        .join("drain_plan")
}

fn op(after_ms: u64, input: Input) -> Op {
    Op {
        when: When::After(after_ms),
        input,
    }
}

fn spec(reversible: bool, max_wait_ms: u64, waits_for_work: bool) -> PhaseSpec {
    PhaseSpec {
        reversible,
        waits_for_work,
        max_wait_ms,
    }
}

/// The router's shape: not ready, wait 5 ms, wait for work ≤ 10 ms, close (irreversible).
fn router() -> Vec<PhaseSpec> {
    vec![
        spec(true, 0, false),
        spec(true, 5, false),
        spec(true, 10, true),
        spec(false, 0, false),
    ]
}

/// Each seed: a name and the scenario it encodes.
fn seeds() -> Vec<(&'static str, Case)> {
    use Input::*;
    vec![
        (
            "seed-cancel-inside-a-wait",
            Case {
                phases: router(),
                ops: vec![op(0, Begin), op(2, Cancel)],
            },
        ),
        (
            "seed-cancel-at-the-deadline-then-begin-again",
            Case {
                phases: router(),
                ops: vec![
                    op(0, Begin),
                    op(5, Cancel),
                    op(1, Begin),
                    op(0, TickAtDeadline),
                    op(
                        1,
                        Report {
                            phase: 2,
                            remaining: 3,
                        },
                    ),
                    op(1, Cancel),
                ],
            },
        ),
        (
            "seed-work-done-early-past-the-point-of-no-return",
            Case {
                phases: router(),
                ops: vec![
                    op(0, Begin),
                    op(0, TickAtDeadline),
                    op(
                        2,
                        Report {
                            phase: 2,
                            remaining: 0,
                        },
                    ),
                    op(0, Cancel),
                    op(0, Begin),
                ],
            },
        ),
        (
            "seed-stale-report-and-clock-backwards",
            Case {
                phases: router(),
                ops: vec![
                    op(0, Begin),
                    op(15, Tick),
                    op(
                        0,
                        Report {
                            phase: 1,
                            remaining: 0,
                        },
                    ),
                    Op {
                        when: When::Before(9),
                        input: Report {
                            phase: 2,
                            remaining: 1,
                        },
                    },
                    op(15, Tick),
                ],
            },
        ),
        (
            "seed-no-reversible-phase",
            Case {
                phases: vec![spec(false, 3, true), spec(false, 0, false)],
                ops: vec![op(0, Begin), op(1, Cancel), op(3, Tick), op(0, Begin)],
            },
        ),
        (
            "seed-empty-plan",
            Case {
                phases: vec![],
                ops: vec![op(0, Cancel), op(0, Begin), op(0, Begin), op(0, Cancel)],
            },
        ),
        (
            "seed-invalid-plan",
            Case {
                phases: vec![spec(true, 0, true)],
                ops: vec![op(0, Begin)],
            },
        ),
    ]
}

#[test]
fn committed_seeds_encode_their_scenarios() {
    let write = std::env::var_os("DRAIN_SEEDS_WRITE").is_some();
    for (name, case) in seeds() {
        let path = dir("corpus").join(name);
        if write {
            std::fs::create_dir_all(dir("corpus")).unwrap();
            std::fs::write(&path, case.to_bytes()).unwrap();
        }
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(Case::from_bytes(&bytes), case, "{name}");
    }
}

#[test]
fn every_seed_and_crash_artifact_replays_cleanly() {
    let mut replayed = 0;
    for kind in ["corpus", "artifacts"] {
        let Ok(entries) = std::fs::read_dir(dir(kind)) else {
            continue;
        };
        let mut files: Vec<PathBuf> = entries
            .map(|e| e.expect("readable fuzz directory").path())
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        for path in files {
            let data = std::fs::read(&path).expect("readable corpus file");
            let outcome = std::panic::catch_unwind(|| drain_ops::fuzz_drain_plan(&data));
            assert!(
                outcome.is_ok(),
                "{} fails; reproduce with `cargo +nightly fuzz run drain_plan {}`",
                path.display(),
                path.display()
            );
            replayed += 1;
        }
    }
    assert!(replayed >= seeds().len(), "the seed corpus is missing");
}
