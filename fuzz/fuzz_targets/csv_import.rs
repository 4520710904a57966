//! The journal and kindergarten CSV parsers: any bytes give rows or an error naming the
//! row and field, never a panic.
#![no_main]
use std::sync::OnceLock;

use kezek_engine::{import, RuleSet};
use libfuzzer_sys::fuzz_target;

fn rules() -> &'static RuleSet {
    static R: OnceLock<RuleSet> = OnceLock::new();
    R.get_or_init(|| RuleSet::compile(&RuleSet::default_files()).expect("default rules compile"))
}

fuzz_target!(|data: &[u8]| {
    let _ = import::parse_applications(data, rules());
    let _ = import::parse_kindergartens(data);
});
