//! Feeds arbitrary configs and shard-filter strings to `Config::validate`, `ShardFilter`
//! parsing and `Buffer::new`, then a short episode at arbitrary instants: nothing may panic,
//! validation and construction must agree, and a parsed filter must round-trip. The harness
//! is `fuzz/harness/ops.rs`, shared with `core/tests/fuzz_corpus.rs`.
#![no_main]

#[allow(dead_code)]
#[path = "../harness/ops.rs"]
mod ops;

libfuzzer_sys::fuzz_target!(|data: &[u8]| ops::fuzz_config(data));
