//! The rule loader: any source in any rule file compiles or is refused with a RuleError;
//! never a panic, never a hang past the operation limits.
#![no_main]
use kezek_engine::RuleSet;
use libfuzzer_sys::fuzz_target;

const FILES: [&str; 5] = ["categories.rhai", "order.rhai", "referral.rhai", "phases.rhai", "calendar.rhai"];

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else { return };
    let Ok(source) = std::str::from_utf8(rest) else { return };
    let mut files = RuleSet::default_files();
    files.insert(FILES[which as usize % FILES.len()].to_string(), source.to_string());
    let _ = RuleSet::compile(&files);
});
