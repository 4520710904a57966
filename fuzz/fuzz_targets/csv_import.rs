//! Fuzz target `csv_import`: the body is `bodies::csv_import`, shared with the replay test
//! (`tests/tests/fuzz_corpus.rs`); see bodies.rs.
#![no_main]

#[allow(dead_code)]
#[path = "bodies.rs"]
mod bodies;

libfuzzer_sys::fuzz_target!(|data: &[u8]| bodies::csv_import(data));
