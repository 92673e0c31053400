//! The README shows the default run's actual output; this keeps it true.

use std::process::Command;

#[test]
fn the_readme_shows_the_default_runs_actual_stdout() {
    let readme = include_str!("../README.md");
    let begin = "<!-- default-output:begin -->\n```text\n";
    let start = readme.find(begin).expect("begin marker") + begin.len();
    let end = start
        + readme[start..]
            .find("```\n<!-- default-output:end -->")
            .expect("end marker");
    let out = Command::new(env!("CARGO_BIN_EXE_failover-buffer-sim"))
        .output()
        .expect("the binary runs");
    assert!(out.status.success());
    assert_eq!(
        &readme[start..end],
        String::from_utf8_lossy(&out.stdout),
        "regenerate the block with `cargo run --release -p failover-buffer-sim`"
    );
}
