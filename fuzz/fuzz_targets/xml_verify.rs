//! The XML signature verifier: any bytes give a report, never a panic.
#![no_main]
use kezek_pki::{Purpose, TrustStore};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let trust = TrustStore::new();
    let at: jiff::Timestamp = "2022-06-01T00:00:00Z".parse().expect("valid instant");
    let report = kezek_pki::verify(data, &trust, at, Purpose::Sign);
    assert!(!report.valid, "nothing verifies against an empty trust store");
});
