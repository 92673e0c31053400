//! Drives a `DrainPlan` of up to five arbitrary phases with arbitrary begin/cancel/report/
//! tick sequences, forwards and backwards in time; a wrong answer, a change made by a
//! refused input, a revert that does not mirror the entries, a revert past the point of no
//! return, a phase outlasting its max wait by more than the tick gap, or a panic is a crash.
//! The harness is `fuzz/harness/drain_ops.rs`, shared with `core/tests/drain_properties.rs`,
//! `core/tests/drain_exhaustive.rs` and `core/tests/drain_fuzz_corpus.rs`.
#![no_main]

#[allow(dead_code)]
#[path = "../harness/drain_ops.rs"]
mod drain_ops;

libfuzzer_sys::fuzz_target!(|data: &[u8]| drain_ops::fuzz_drain_plan(data));
