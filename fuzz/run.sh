#!/usr/bin/env bash
# Runs every cargo-fuzz target for SECONDS each (default 60); exits non-zero if any crashes.
#
#   fuzz/run.sh 60
#
# Installs cargo-fuzz if it is missing. Uses the nightly toolchain when rustup has one, and
# otherwise stable with RUSTC_BOOTSTRAP=1 (cargo-fuzz needs nightly-only sanitizer flags).
# New corpus entries go to a scratch directory, so the committed seeds (fuzz/corpus/) stay
# as they are; a crash leaves its input in fuzz/artifacts/<target>/, which
# core/tests/fuzz_corpus.rs then replays under plain `cargo test` once committed.
set -euo pipefail

seconds="${1:-60}"
cd "$(dirname "$0")"

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

toolchain=()
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    toolchain=(+nightly)
else
    export RUSTC_BOOTSTRAP=1
fi

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

failed=()
for target in $(cargo "${toolchain[@]}" fuzz list); do
    mkdir -p "$scratch/$target"
    echo "== fuzzing $target for ${seconds}s"
    if ! cargo "${toolchain[@]}" fuzz run "$target" "$scratch/$target" "corpus/$target" -- \
        -max_total_time="$seconds" -print_final_stats=1; then
        failed+=("$target")
    fi
done

if ((${#failed[@]})); then
    echo "fuzz targets that crashed: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
    exit 1
fi
echo "all fuzz targets ran ${seconds}s without a crash"
