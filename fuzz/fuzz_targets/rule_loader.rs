//! Fuzz target `rule_loader`: the body is `bodies::rule_loader`, shared with the replay test
//! (`tests/tests/fuzz_corpus.rs`); see bodies.rs.
#![no_main]

#[allow(dead_code)]
#[path = "bodies.rs"]
mod bodies;

libfuzzer_sys::fuzz_target!(|data: &[u8]| bodies::rule_loader(data));
