//! The public NCA RK test material in pki/tests/fixtures/nca (a copy of the public test
//! certificates and CRL, kept in the repository so that a clone tests alone).

use std::path::PathBuf;

use jiff::Timestamp;
use kezek_pki::{Certificate, ErrorCode, KeyUsageClass, TrustStore};

fn fixtures_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/nca");
    assert!(
        dir.join("nca_rsa_test.pem").is_file(),
        "NCA fixtures missing: expected {} (pki/tests/fixtures/nca)",
        dir.display()
    );
    dir
}

fn read(name: &str) -> Vec<u8> {
    let p = fixtures_dir().join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("cannot read fixture {}: {e}", p.display()))
}

fn ts(s: &str) -> Timestamp {
    s.parse().expect("test timestamp")
}

fn store() -> TrustStore {
    let mut t = TrustStore::new();
    t.add_ca_bytes(&read("nca_rsa_test.pem"))
        .expect("intermediate loads");
    t
}

fn auth() -> Certificate {
    Certificate::parse(&read("individual_auth_rsa.pem")).expect("auth cert parses")
}

fn sign() -> Certificate {
    Certificate::parse(&read("individual_sign_rsa.pem")).expect("sign cert parses")
}

#[test]
fn intermediate_parses() {
    let ca = Certificate::parse(&read("nca_rsa_test.pem")).expect("parses");
    assert!(ca.is_ca());
    let i = ca.info();
    assert_eq!(i.subject.common_name.as_deref(), Some("ҰКО 3.0 (RSA TEST)"));
    assert_eq!(i.subject.country.as_deref(), Some("KZ"));
    assert_eq!(
        i.issuer_common_name.as_deref(),
        Some("НЕГІЗГІ КО TEST (RSA)")
    );
    assert_eq!(i.serial, "452A6437611C183FBF1EC5A1BA4920DD72148A9B");
    assert_eq!(i.not_before, ts("2019-03-15T03:42:17Z"));
    assert_eq!(i.not_after, ts("2024-03-13T03:42:17Z"));
    assert_eq!(i.key_usage, KeyUsageClass::Unknown);
}

#[test]
fn leaf_fields_and_serials_match_the_readme() {
    let a = auth();
    let s = sign();
    assert_eq!(a.info().serial, "247C3FDA89FA641EA226987393CDAF3F5BAF24B3");
    assert_eq!(s.info().serial, "41E45CC8A04C705963E5CD6769848A934D8EAEF5");
    for c in [&a, &s] {
        let i = c.info();
        assert_eq!(i.iin.as_deref(), Some("123456789011"));
        assert_eq!(i.subject.serial_number.as_deref(), Some("IIN123456789011"));
        assert_eq!(i.subject.common_name.as_deref(), Some("ТЕСТОВ ТЕСТ"));
        assert_eq!(i.subject.surname.as_deref(), Some("ТЕСТОВ"));
        assert_eq!(i.subject.given_name.as_deref(), Some("ТЕСТОВИЧ"));
        assert_eq!(i.subject.country.as_deref(), Some("KZ"));
        assert_eq!(i.subject.organization, None);
        assert_eq!(i.issuer_common_name.as_deref(), Some("ҰКО 3.0 (RSA TEST)"));
    }
    assert_eq!(a.info().not_before, ts("2022-01-18T04:38:49Z"));
    assert_eq!(a.info().not_after, ts("2023-01-18T04:38:49Z"));
    assert_eq!(s.info().not_before, ts("2022-01-18T04:38:50Z"));
    assert_eq!(s.info().not_after, ts("2023-01-18T04:38:50Z"));
    assert_eq!(a.info().policies, vec!["1.2.398.3.3.2.4".to_owned()]);
    assert_eq!(s.info().policies, vec!["1.2.398.3.3.2.3".to_owned()]);
}

#[test]
fn key_usage_classes() {
    assert_eq!(auth().key_usage_class(), KeyUsageClass::Auth);
    assert_eq!(sign().key_usage_class(), KeyUsageClass::Sign);
    let json = serde_json::to_value(auth().info()).expect("serializes");
    assert_eq!(json["key_usage"], "auth");
    assert_eq!(json["iin"], "123456789011");
}

#[test]
fn both_leaves_chain_to_the_trusted_intermediate_in_mid_2022() {
    let t = store();
    for c in [auth(), sign()] {
        let chain = t
            .validate(&c, &[], ts("2022-06-01T00:00:00Z"))
            .expect("valid as of 2022-06-01");
        assert_eq!(chain.certificates.len(), 2);
    }
}

#[test]
fn both_leaves_are_expired_in_december_2026() {
    let t = store();
    for c in [auth(), sign()] {
        let e = t
            .validate(&c, &[], ts("2026-12-01T00:00:00Z"))
            .expect_err("expired");
        assert_eq!(e.code, ErrorCode::Expired, "{e}");
    }
}

#[test]
fn not_yet_valid_before_issue() {
    let e = store()
        .validate(&auth(), &[], ts("2022-01-18T04:38:48Z"))
        .expect_err("not yet valid");
    assert_eq!(e.code, ErrorCode::NotYetValid);
    store()
        .validate(&auth(), &[], ts("2022-01-18T04:38:49Z"))
        .expect("valid from the notBefore second");
}

#[test]
fn without_the_intermediate_there_is_no_path() {
    let e = TrustStore::new()
        .validate(&auth(), &[], ts("2022-06-01T00:00:00Z"))
        .expect_err("untrusted");
    assert_eq!(e.code, ErrorCode::Untrusted);
}

#[test]
fn the_intermediate_as_a_supplied_intermediate_is_not_a_trust_anchor() {
    let inter = Certificate::parse(&read("nca_rsa_test.pem")).expect("parses");
    let e = TrustStore::new()
        .validate(&auth(), &[inter], ts("2022-06-01T00:00:00Z"))
        .expect_err("untrusted: the root is missing");
    assert_eq!(e.code, ErrorCode::Untrusted);
}

#[test]
fn a_leaf_cannot_be_a_trust_anchor() {
    let e = TrustStore::new().add_ca(auth()).expect_err("not a CA");
    assert_eq!(e.code, ErrorCode::Malformed);
}

#[test]
fn crl_loads_when_the_intermediate_is_trusted() {
    let mut t = store();
    let crl = t.add_crl(&read("nca_rsa_test.crl.der")).expect("CRL loads");
    assert_eq!(crl.issuer_common_name(), Some("ҰКО 3.0 (RSA TEST)"));
    assert_eq!(crl.number(), Some("09"));
    assert_eq!(crl.this_update(), ts("2022-03-29T04:18:29Z"));
    assert_eq!(crl.next_update(), Some(ts("2022-09-25T04:18:29Z")));
    assert!(crl.is_revoked_hex("474C38696D8677A2C8B6E40345A8B04168C0905C"));
    assert!(!crl.is_revoked_hex("247C3FDA89FA641EA226987393CDAF3F5BAF24B3"));
    // the fixture leaves are not on it
    for c in [auth(), sign()] {
        t.validate(&c, &[], ts("2022-06-01T00:00:00Z"))
            .expect("not revoked");
    }
}

#[test]
fn crl_is_refused_when_its_issuer_is_not_trusted() {
    let e = TrustStore::new()
        .add_crl(&read("nca_rsa_test.crl.der"))
        .expect_err("refused");
    assert_eq!(e.code, ErrorCode::Untrusted);
}

#[test]
fn tampered_crl_is_refused() {
    let mut der = read("nca_rsa_test.crl.der");
    // flip a byte inside the revoked list (well inside the TBS)
    let i = der.len() / 2;
    der[i] ^= 0x01;
    let e = store().add_crl(&der).expect_err("refused");
    assert!(
        matches!(e.code, ErrorCode::BadSignature | ErrorCode::Malformed),
        "{e}"
    );
}

#[test]
fn tampered_certificate_signature_is_bad_signature() {
    let pem = read("individual_sign_rsa.pem");
    let mut der = Certificate::parse(&pem).expect("parses").der().to_vec();
    let n = der.len();
    der[n - 10] ^= 0x55; // inside the signature bits
    let c = Certificate::from_der(&der).expect("still parses");
    let e = store()
        .validate(&c, &[], ts("2022-06-01T00:00:00Z"))
        .expect_err("bad signature");
    assert_eq!(e.code, ErrorCode::BadSignature);
}

#[test]
fn garbage_is_malformed() {
    assert_eq!(
        Certificate::parse(b"not a certificate")
            .expect_err("refused")
            .code,
        ErrorCode::Malformed
    );
    assert_eq!(
        Certificate::parse(b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n")
            .expect_err("refused")
            .code,
        ErrorCode::Malformed
    );
    let mut der = auth().der().to_vec();
    der.truncate(der.len() - 1);
    assert_eq!(
        Certificate::from_der(&der).expect_err("refused").code,
        ErrorCode::Malformed
    );
}
