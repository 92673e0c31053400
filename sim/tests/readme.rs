//! The README shows the binary's actual output; this keeps it true.

use std::process::Command;

fn run(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_failover-buffer-sim"))
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .args(args)
        .output()
        .expect("the binary runs");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

#[test]
fn the_readme_shows_the_default_runs_actual_stdout() {
    let readme = include_str!("../README.md");
    let begin = "<!-- default-output:begin -->\n```text\n";
    let start = readme.find(begin).expect("begin marker") + begin.len();
    let end = start
        + readme[start..]
            .find("```\n<!-- default-output:end -->")
            .expect("end marker");
    assert_eq!(
        &readme[start..end],
        run(&[]),
        "regenerate the block with `cargo run --release -p failover-buffer-sim`"
    );
}

/// Every block after an `<!-- output: ARGS -->` marker is the output of the binary run with
/// those arguments (from the workspace root, so scenario paths read as in the README).
#[test]
fn every_marked_readme_block_is_the_binarys_actual_output() {
    let readme = include_str!("../README.md");
    let marker = "<!-- output: ";
    let mut checked = 0;
    let mut rest = readme;
    while let Some(at) = rest.find(marker) {
        rest = &rest[at + marker.len()..];
        let (args, after) = rest.split_once(" -->\n```text\n").expect("a text block");
        let (block, after) = after.split_once("```\n").expect("the block ends");
        // No arguments (the default scenario), or ` -- ARGS`.
        let args = args.strip_prefix(" -- ").unwrap_or(args);
        let args: Vec<&str> = args.split_whitespace().collect();
        assert_eq!(block, run(&args), "README block for {args:?}");
        checked += 1;
        rest = after;
    }
    assert!(checked >= 2, "{checked} blocks checked");
}

/// The workspace README's simulator section shows `$ cargo run ...` (with or without
/// `-- ARGS`) followed by the output; a block abbreviated with a `...` line must still show only lines of the output.
#[test]
fn the_workspace_readmes_simulator_blocks_are_actual_output() {
    let readme = include_str!("../../README.md");
    let prompt = "```text\n$ cargo run --release -p failover-buffer-sim";
    let mut checked = 0;
    let mut rest = readme;
    while let Some(at) = rest.find(prompt) {
        rest = &rest[at + prompt.len()..];
        let (args, after) = rest.split_once('\n').expect("a command line");
        let (block, after) = after.split_once("```\n").expect("the block ends");
        // No arguments (the default scenario), or ` -- ARGS`.
        let args = args.strip_prefix(" -- ").unwrap_or(args);
        let args: Vec<&str> = args.split_whitespace().collect();
        let output = run(&args);
        if block.lines().any(|l| l == "...") {
            for line in block.lines().filter(|&l| l != "...") {
                assert!(
                    output.lines().any(|o| o == line),
                    "{args:?}: {line:?} not in\n{output}"
                );
            }
        } else {
            assert_eq!(block, output, "workspace README block for {args:?}");
        }
        checked += 1;
        rest = after;
    }
    assert!(checked >= 3, "{checked} blocks checked");
}
