//! Chains through intermediates, partial chains, revocation of a CA, key-usage classes of
//! odd certificates, and the test CA's files.

mod common;

use common::{at, pki, ts};
use kezek_pki::cert::{OID_EKU_CLIENT_AUTH, OID_EKU_EMAIL_PROTECTION};
use kezek_pki::testca::{self, ext, KeyKind, KeyUsageFlags, TestCa};
use kezek_pki::{Certificate, ErrorCode, KeyUsageClass, TrustStore};
use x509_cert::ext::pkix::{ExtendedKeyUsage, KeyUsage};

const KU: &str = "2.5.29.15";
const EKU: &str = "2.5.29.37";

/// A sub-CA of the test root (over the rogue root's key, to spare a key generation) and a
/// signing certificate it issued.
fn sub_chain() -> (TestCa, Certificate) {
    let p = pki();
    let sub =
        p.ca.issue_sub_ca(
            p.rogue_ca.key().clone(),
            "KEZEK TEST SUB CA",
            ts("2024-06-01T00:00:00Z"),
            ts("2030-01-01T00:00:00Z"),
        )
        .expect("sub CA");
    let leaf = sub
        .issue_for_key(
            &p.key.to_public_key(),
            &p.person,
            KeyKind::Sign,
            ts("2025-01-01T00:00:00Z"),
            ts("2026-01-01T00:00:00Z"),
        )
        .expect("leaf");
    (sub, leaf)
}

fn root_store() -> TrustStore {
    let mut t = TrustStore::new();
    t.add_ca(pki().ca.certificate().clone()).expect("root");
    t
}

#[test]
fn leaf_through_a_supplied_intermediate() {
    let (sub, leaf) = sub_chain();
    let chain = root_store()
        .validate(&leaf, &[sub.certificate().clone()], at())
        .expect("valid");
    assert_eq!(chain.certificates.len(), 3);
    let e = root_store()
        .validate(&leaf, &[], at())
        .expect_err("no path");
    assert_eq!(e.code, ErrorCode::Untrusted);
}

#[test]
fn partial_chain_trusting_the_intermediate() {
    let (sub, leaf) = sub_chain();
    let mut t = TrustStore::new();
    t.add_ca(sub.certificate().clone()).expect("sub CA");
    t.validate(&leaf, &[], at()).expect("valid");
}

#[test]
fn revoked_intermediate() {
    let (sub, leaf) = sub_chain();
    let mut t = root_store();
    let crl = pki()
        .ca
        .crl(
            &[sub.certificate().serial_hex()],
            ts("2025-05-01T00:00:00Z"),
            ts("2025-08-01T00:00:00Z"),
            7,
        )
        .expect("crl");
    let loaded = t.add_crl(&crl).expect("loads");
    assert_eq!(loaded.number(), Some("07"));
    let e = t
        .validate(&leaf, &[sub.certificate().clone()], at())
        .expect_err("revoked");
    assert_eq!(e.code, ErrorCode::Revoked);
}

#[test]
fn expired_intermediate() {
    let p = pki();
    let sub =
        p.ca.issue_sub_ca(
            p.rogue_ca.key().clone(),
            "KEZEK OLD SUB CA",
            ts("2020-01-01T00:00:00Z"),
            ts("2025-03-01T00:00:00Z"),
        )
        .expect("sub CA");
    let leaf = sub
        .issue_for_key(
            &p.key.to_public_key(),
            &p.person,
            KeyKind::Sign,
            ts("2025-01-01T00:00:00Z"),
            ts("2026-01-01T00:00:00Z"),
        )
        .expect("leaf");
    let e = root_store()
        .validate(&leaf, &[sub.certificate().clone()], at())
        .expect_err("expired");
    assert_eq!(e.code, ErrorCode::Expired);
}

#[test]
fn too_many_intermediates() {
    let (sub, leaf) = sub_chain();
    let many = vec![sub.certificate().clone(); 7];
    let e = root_store()
        .validate(&leaf, &many, at())
        .expect_err("too long");
    assert_eq!(e.code, ErrorCode::ChainTooLong);
}

#[test]
fn a_certificate_signed_by_another_key_under_the_same_name_is_bad_signature() {
    // same issuer name as the trusted root, but signed by a different key
    let p = pki();
    let impostor = TestCa::with_key(
        p.rogue_ca.key().clone(),
        "KEZEK TEST ROOT (RSA)",
        ts("2024-01-01T00:00:00Z"),
        ts("2035-01-01T00:00:00Z"),
    )
    .expect("impostor");
    let leaf = impostor
        .issue_for_key(
            &p.key.to_public_key(),
            &p.person,
            KeyKind::Sign,
            ts("2025-01-01T00:00:00Z"),
            ts("2026-01-01T00:00:00Z"),
        )
        .expect("leaf");
    let e = root_store()
        .validate(&leaf, &[], at())
        .expect_err("refused");
    assert_eq!(e.code, ErrorCode::BadSignature);
    // a CRL under the impostor is refused the same way
    let crl = impostor
        .crl(
            &[],
            ts("2025-05-01T00:00:00Z"),
            ts("2025-08-01T00:00:00Z"),
            1,
        )
        .expect("crl");
    assert_eq!(
        root_store().add_crl(&crl).expect_err("refused").code,
        ErrorCode::BadSignature
    );
}

fn classify(ku: Option<KeyUsage>, eku: Option<Vec<const_oid::ObjectIdentifier>>) -> KeyUsageClass {
    let p = pki();
    let mut exts = Vec::new();
    if let Some(ku) = ku {
        exts.push(ext(KU.parse().expect("oid"), true, &ku).expect("ext"));
    }
    if let Some(eku) = eku {
        exts.push(ext(EKU.parse().expect("oid"), false, &ExtendedKeyUsage(eku)).expect("ext"));
    }
    p.ca.issue_with_extensions(
        &p.key.to_public_key(),
        &p.person,
        exts,
        ts("2025-01-01T00:00:00Z"),
        ts("2026-01-01T00:00:00Z"),
    )
    .expect("cert")
    .key_usage_class()
}

#[test]
fn key_usage_class_rules() {
    use KeyUsageFlags as F;
    assert_eq!(pki().auth.key_usage_class(), KeyUsageClass::Auth);
    assert_eq!(pki().sign.key_usage_class(), KeyUsageClass::Sign);
    // older AUTH certificates: clientAuth only
    assert_eq!(
        classify(
            Some(KeyUsage(F::DigitalSignature.into())),
            Some(vec![OID_EKU_CLIENT_AUTH])
        ),
        KeyUsageClass::Auth
    );
    assert_eq!(
        classify(
            Some(KeyUsage(F::DigitalSignature | F::KeyEncipherment)),
            None
        ),
        KeyUsageClass::Auth
    );
    assert_eq!(
        classify(
            Some(KeyUsage(F::DigitalSignature | F::NonRepudiation)),
            None
        ),
        KeyUsageClass::Sign
    );
    assert_eq!(
        classify(None, Some(vec![OID_EKU_EMAIL_PROTECTION])),
        KeyUsageClass::Sign
    );
    // conflicting indicators: neither wins
    assert_eq!(
        classify(
            Some(KeyUsage(F::DigitalSignature | F::NonRepudiation)),
            Some(vec![OID_EKU_CLIENT_AUTH])
        ),
        KeyUsageClass::Unknown
    );
    assert_eq!(
        classify(
            Some(KeyUsage(
                F::DigitalSignature | F::KeyEncipherment | F::NonRepudiation
            )),
            None
        ),
        KeyUsageClass::Unknown
    );
    // no signing bit at all
    assert_eq!(
        classify(
            Some(KeyUsage(F::KeyEncipherment.into())),
            Some(vec![OID_EKU_CLIENT_AUTH])
        ),
        KeyUsageClass::Unknown
    );
    assert_eq!(classify(None, None), KeyUsageClass::Unknown);
}

#[test]
fn unknown_critical_extension_is_refused() {
    let p = pki();
    let mut exts = testca::person_extensions(KeyKind::Sign).expect("exts");
    exts.push(ext("1.2.3.4.5".parse().expect("oid"), true, &der::asn1::Null).expect("ext"));
    let cert =
        p.ca.issue_with_extensions(
            &p.key.to_public_key(),
            &p.person,
            exts,
            ts("2025-01-01T00:00:00Z"),
            ts("2026-01-01T00:00:00Z"),
        )
        .expect("cert");
    let e = root_store()
        .validate(&cert, &[], at())
        .expect_err("refused");
    assert_eq!(e.code, ErrorCode::Malformed);
}

#[test]
fn test_ca_writes_pem_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let people = [testca::Person::new(
        "870412450298",
        "Иванова",
        "Айгерим",
        "Сериковна",
    )];
    let from = ts("2026-01-01T00:00:00Z");
    let written =
        testca::write_test_pki(dir.path(), "KEZEK DEV ROOT", &people, from).expect("written");
    let names: Vec<String> = written
        .files
        .iter()
        .map(|p| p.file_name().expect("name").to_string_lossy().into_owned())
        .collect();
    for n in [
        "ca.pem",
        "ca.key.pem",
        "870412450298_auth.pem",
        "870412450298_auth.key.pem",
        "870412450298_sign.pem",
        "870412450298_sign.key.pem",
    ] {
        assert!(names.contains(&n.to_owned()), "{n} in {names:?}");
        assert!(dir.path().join(n).is_file());
    }
    let mut t = TrustStore::new();
    t.add_ca_bytes(&std::fs::read(dir.path().join("ca.pem")).expect("read"))
        .expect("CA loads");
    let auth =
        Certificate::parse(&std::fs::read(dir.path().join("870412450298_auth.pem")).expect("read"))
            .expect("parses");
    let sign =
        Certificate::parse(&std::fs::read(dir.path().join("870412450298_sign.pem")).expect("read"))
            .expect("parses");
    let key_pem =
        std::fs::read_to_string(dir.path().join("870412450298_sign.key.pem")).expect("read");
    assert!(key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
    let key = testca::key_from_pem(&key_pem).expect("PKCS#8");
    assert_eq!(sign.rsa_public_key().expect("rsa"), &key.to_public_key());
    let i = sign.info();
    assert_eq!(i.iin.as_deref(), Some("870412450298"));
    assert_eq!(i.subject.common_name.as_deref(), Some("Иванова Айгерим"));
    assert_eq!(i.subject.surname.as_deref(), Some("Иванова"));
    assert_eq!(i.subject.given_name.as_deref(), Some("Сериковна"));
    assert_eq!(i.subject.country.as_deref(), Some("KZ"));
    assert_eq!(i.not_before, from);
    assert_eq!(i.not_after, ts("2027-01-01T00:00:00Z"));
    assert_eq!(i.policies, vec!["1.2.398.3.3.2.3".to_owned()]);
    assert_eq!(auth.info().policies, vec!["1.2.398.3.3.2.4".to_owned()]);
    assert_eq!(auth.key_usage_class(), KeyUsageClass::Auth);
    assert_eq!(sign.key_usage_class(), KeyUsageClass::Sign);
    t.validate(&auth, &[], ts("2026-06-01T00:00:00Z"))
        .expect("valid");
    t.validate(&sign, &[], ts("2026-06-01T00:00:00Z"))
        .expect("valid");
    // and signs a document that verifies
    let xml = kezek_pki::sign_xml(
        b"<request><application>A-1</application></request>",
        &key,
        sign.der(),
    )
    .expect("signs");
    let r = kezek_pki::verify(
        &xml,
        &t,
        ts("2026-06-01T00:00:00Z"),
        kezek_pki::Purpose::Sign,
    );
    assert!(r.valid, "{}", r.to_json());
    // CRL files
    let crl = written
        .ca
        .crl(&[sign.serial_hex()], from, ts("2026-07-01T00:00:00Z"), 1)
        .expect("crl");
    testca::write_crl(dir.path(), "ca.crl", &crl).expect("written");
    t.add_crl(&std::fs::read(dir.path().join("ca.crl.pem")).expect("read"))
        .expect("PEM CRL loads");
    assert_eq!(
        t.validate(&sign, &[], ts("2026-06-01T00:00:00Z"))
            .expect_err("revoked")
            .code,
        ErrorCode::Revoked
    );
}

#[test]
fn invalid_iin_is_refused_by_the_test_ca() {
    let p = pki();
    let e =
        p.ca.issue_for_key(
            &p.key.to_public_key(),
            &testca::Person::new("12345", "A", "B", "C"),
            KeyKind::Sign,
            ts("2025-01-01T00:00:00Z"),
            ts("2026-01-01T00:00:00Z"),
        )
        .expect_err("refused");
    assert_eq!(e.code, ErrorCode::Malformed);
}
