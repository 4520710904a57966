//! Median time of one full verification (`kezek_pki::verify`) of a signed document.
//!
//! `CARGO_TARGET_DIR=/tmp/target-pki cargo run --release -p kezek-pki --example verify_timing`

use std::time::Instant;

use kezek_pki::testca::{KeyKind, Person, TestCa};
use kezek_pki::{sign_xml, verify, Purpose, TrustStore};

fn main() -> Result<(), kezek_pki::Error> {
    let from: jiff::Timestamp = "2025-01-01T00:00:00Z"
        .parse()
        .map_err(|e| kezek_pki::Error::new(kezek_pki::ErrorCode::Malformed, format!("{e}")))?;
    let at = from
        .checked_add(jiff::SignedDuration::from_hours(24 * 30))
        .map_err(|e| kezek_pki::Error::new(kezek_pki::ErrorCode::Malformed, format!("{e}")))?;
    let ca = TestCa::generate("KEZEK TIMING ROOT", from)?;
    let person = Person::new("990101300123", "ТЕСТОВ", "ТЕСТ", "ТЕСТОВИЧ");
    let issued = ca.issue(&person, KeyKind::Sign, from)?;
    let mut trust = TrustStore::new();
    trust.add_ca(ca.certificate().clone())?;
    let doc = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<request xmlns=\"urn:kezek:request\">\n  <application>APP-2025-000123</application>\n  <action>enroll</action>\n  <child iin=\"200101600111\">Әлия</child>\n</request>\n";
    let signed = sign_xml(doc.as_bytes(), &issued.key, issued.certificate.der())?;

    let n = 501;
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let r = verify(&signed, &trust, at, Purpose::Sign);
        times.push(t.elapsed());
        if !r.valid {
            eprintln!("unexpected refusal: {}", r.to_json());
            std::process::exit(1);
        }
    }
    times.sort();
    println!(
        "signed document: {} bytes; {n} verifications: median {:?}, min {:?}, max {:?}",
        signed.len(),
        times[n / 2],
        times[0],
        times[n - 1]
    );
    Ok(())
}
