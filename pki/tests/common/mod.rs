//! Shared test PKI: RSA keys are generated once per test binary.
#![allow(dead_code)]

use std::sync::OnceLock;

use jiff::Timestamp;
use kezek_pki::testca::{self, KeyKind, Person, TestCa};
use kezek_pki::{Certificate, TrustStore};
use rsa::RsaPrivateKey;

pub struct Pki {
    /// The trusted test root.
    pub ca: TestCa,
    /// A root nobody trusts.
    pub rogue_ca: TestCa,
    pub person: Person,
    /// The person's key, used under every certificate below.
    pub key: RsaPrivateKey,
    /// AUTH certificate, valid 2025-01-01 .. 2026-01-01.
    pub auth: Certificate,
    /// Signing certificate, valid 2025-01-01 .. 2026-01-01.
    pub sign: Certificate,
}

pub fn ts(s: &str) -> Timestamp {
    s.parse().expect("test timestamp")
}

/// The verification instant of most tests.
pub fn at() -> Timestamp {
    ts("2025-06-01T12:00:00Z")
}

pub fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let root_from = ts("2024-01-01T00:00:00Z");
        let root_to = ts("2035-01-01T00:00:00Z");
        let ca = TestCa::with_key(
            testca::generate_key().expect("key"),
            "KEZEK TEST ROOT (RSA)",
            root_from,
            root_to,
        )
        .expect("root");
        let rogue_ca = TestCa::with_key(
            testca::generate_key().expect("key"),
            "ROGUE ROOT (RSA)",
            root_from,
            root_to,
        )
        .expect("rogue root");
        let person = Person::new("990101300123", "ТЕСТОВ", "ТЕСТ", "ТЕСТОВИЧ");
        let key = testca::generate_key().expect("key");
        let from = ts("2025-01-01T00:00:00Z");
        let to = ts("2026-01-01T00:00:00Z");
        let auth = ca
            .issue_for_key(&key.to_public_key(), &person, KeyKind::Auth, from, to)
            .expect("auth cert");
        let sign = ca
            .issue_for_key(&key.to_public_key(), &person, KeyKind::Sign, from, to)
            .expect("sign cert");
        Pki {
            ca,
            rogue_ca,
            person,
            key,
            auth,
            sign,
        }
    })
}

pub fn trust() -> TrustStore {
    let mut t = TrustStore::new();
    t.add_ca(pki().ca.certificate().clone())
        .expect("trusted root");
    t
}

pub const DOC: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<request xmlns=\"urn:kezek:request\" version=\"1\">\n  <application>APP-2025-000123</application>\n  <action>enroll</action>\n  <child iin=\"200101600111\">Әлия &amp; Ерлан</child>\n</request>\n";

pub fn sign_with(doc: &str, cert: &Certificate) -> Vec<u8> {
    kezek_pki::sign_xml(doc.as_bytes(), &pki().key, cert.der()).expect("signs")
}

pub fn signed(doc: &str) -> String {
    String::from_utf8(sign_with(doc, &pki().sign)).expect("utf-8")
}
