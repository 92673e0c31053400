//! Drives a `Buffer` and the reference model with arbitrary op sequences; any discrepancy,
//! broken invariant, history violation, nondeterminism or panic is a crash. The harness is
//! `fuzz/harness/ops.rs`, shared with `core/tests/model.rs` and `core/tests/fuzz_corpus.rs`.
#![no_main]

#[allow(dead_code)]
#[path = "../harness/ops.rs"]
mod ops;

libfuzzer_sys::fuzz_target!(|data: &[u8]| ops::fuzz_buffer_ops(data));
