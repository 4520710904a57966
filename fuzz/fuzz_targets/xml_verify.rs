//! Fuzz target `xml_verify`: the body is `bodies::xml_verify`, shared with the replay test
//! (`tests/tests/fuzz_corpus.rs`); see bodies.rs.
#![no_main]

#[allow(dead_code)]
#[path = "bodies.rs"]
mod bodies;

libfuzzer_sys::fuzz_target!(|data: &[u8]| bodies::xml_verify(data));
