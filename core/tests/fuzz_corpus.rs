//! Replays the fuzz targets' committed seed corpora (`fuzz/corpus/<target>/`) and any crash
//! artifacts (`fuzz/artifacts/<target>/`) through the same harness the fuzz targets use, so
//! plain `cargo test` keeps every input a fuzzer ever found interesting passing, on stable
//! and without cargo-fuzz.

#[allow(dead_code)]
#[path = "../../fuzz/harness/ops.rs"]
mod ops;

use std::path::{Path, PathBuf};

fn files(kind: &str, target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz")
        .join(kind)
        .join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("readable fuzz directory").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// Runs every file through `target`, naming the file that fails.
fn replay(target: &str, run: fn(&[u8])) -> usize {
    let mut count = 0;
    for kind in ["corpus", "artifacts"] {
        for path in files(kind, target) {
            let data = std::fs::read(&path).expect("readable corpus file");
            let outcome = std::panic::catch_unwind(|| run(&data));
            assert!(
                outcome.is_ok(),
                "{} fails; reproduce with `cargo +nightly fuzz run {target} {}`",
                path.display(),
                path.display()
            );
            count += 1;
        }
    }
    count
}

#[test]
fn buffer_ops_corpus_passes() {
    let replayed = replay("buffer_ops", ops::fuzz_buffer_ops);
    assert!(replayed > 0, "the buffer_ops seed corpus is missing");
}

#[test]
fn config_corpus_passes() {
    let replayed = replay("config", ops::fuzz_config);
    assert!(replayed > 0, "the config seed corpus is missing");
}
