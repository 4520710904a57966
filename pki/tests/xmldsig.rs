//! The NCALayer signature profile: happy paths and a corpus of refusals, each with its code.

mod common;

use base64::Engine as _;
use common::{at, pki, sign_with, signed, trust, ts, DOC};
use jiff::Timestamp;
use kezek_pki::testca::{self, KeyKind};
use kezek_pki::xmldsig::{verify_signature, ChainStatus};
use kezek_pki::{verify, verify_outcome, ErrorCode, KeyUsageClass, Purpose, Report, TrustStore};

fn report(xml: &[u8], purpose: Purpose) -> Report {
    verify(xml, &trust(), at(), purpose)
}

/// Asserts a refusal whose first error has `code`.
#[track_caller]
fn refused(r: &Report, code: ErrorCode) {
    assert!(
        !r.valid,
        "expected refusal with {code}, got valid: {}",
        r.to_json()
    );
    assert_eq!(
        r.errors.first().map(|e| e.code),
        Some(code),
        "report: {}",
        r.to_json()
    );
}

#[track_caller]
fn refused_str(xml: &str, code: ErrorCode) -> Report {
    let r = report(xml.as_bytes(), Purpose::Sign);
    refused(&r, code);
    r
}

fn between<'a>(s: &'a str, open: &str, close: &str) -> &'a str {
    let i = s.find(open).expect("open tag") + open.len();
    let j = s[i..].find(close).expect("close tag") + i;
    &s[i..j]
}

fn replace_between(s: &str, open: &str, close: &str, new: &str) -> String {
    let old = between(s, open, close);
    s.replacen(
        &format!("{open}{old}{close}"),
        &format!("{open}{new}{close}"),
        1,
    )
}

fn signature_block(s: &str) -> &str {
    let i = s.find("<ds:Signature").expect("signature");
    let j = s.find("</ds:Signature>").expect("end") + "</ds:Signature>".len();
    &s[i..j]
}

// ------------------------------------------------------------------ happy paths

#[test]
fn signed_document_verifies_for_sign() {
    let xml = signed(DOC);
    let out = verify_outcome(xml.as_bytes(), &trust(), at(), Purpose::Sign);
    let r = &out.report;
    assert!(r.valid, "{}", r.to_json());
    assert!(r.signature_valid);
    assert_eq!(r.chain, ChainStatus::Trusted);
    assert_eq!(r.key_usage, KeyUsageClass::Sign);
    assert!(r.errors.is_empty());
    let signer = r.signer.as_ref().expect("signer");
    assert_eq!(signer.iin.as_deref(), Some("990101300123"));
    assert_eq!(signer.common_name.as_deref(), Some("ТЕСТОВ ТЕСТ"));
    assert_eq!(signer.serial, pki().sign.info().serial);

    let v = out.accepted.expect("accepted content");
    assert_eq!(
        v.single_text("application").expect("one"),
        "APP-2025-000123"
    );
    assert_eq!(v.single_text("child").expect("one"), "Әлия & Ерлан");
    assert_eq!(
        v.root().expect("root").namespace.as_deref(),
        Some("urn:kezek:request")
    );
    v.require_iin("990101300123").expect("applicant");
    assert_eq!(
        v.require_iin("111111111111")
            .expect_err("not the applicant")
            .code,
        ErrorCode::IinMismatch
    );
    // the acted-on bytes are the canonical signed content, without the Signature
    let canon = String::from_utf8(v.canonical_bytes().to_vec()).expect("utf-8");
    assert!(canon.starts_with("<request xmlns=\"urn:kezek:request\" version=\"1\">"));
    assert!(!canon.contains("Signature"));
}

#[test]
fn auth_certificate_verifies_for_auth() {
    let xml = sign_with(DOC, &pki().auth);
    let r = report(&xml, Purpose::Auth);
    assert!(r.valid, "{}", r.to_json());
    assert_eq!(r.key_usage, KeyUsageClass::Auth);
}

#[test]
fn report_json_has_exactly_the_documented_shape() {
    let xml = signed(DOC);
    let v: serde_json::Value =
        serde_json::from_str(&report(xml.as_bytes(), Purpose::Sign).to_json()).expect("json");
    let keys: Vec<&str> = v
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys.len(), 6, "{v}");
    for k in [
        "valid",
        "signature_valid",
        "signer",
        "key_usage",
        "chain",
        "errors",
    ] {
        assert!(keys.contains(&k), "missing {k} in {v}");
    }
    assert_eq!(v["valid"], true);
    assert_eq!(v["chain"], "trusted");
    assert_eq!(v["key_usage"], "sign");
    assert_eq!(v["errors"], serde_json::json!([]));
    let signer = v["signer"].as_object().expect("signer");
    assert_eq!(signer.len(), 3);
    assert_eq!(signer["iin"], "990101300123");

    // a refusal: signer null, errors with code + message
    let bad: serde_json::Value =
        serde_json::from_str(&report(b"<a/>", Purpose::Sign).to_json()).expect("json");
    assert_eq!(bad["valid"], false);
    assert_eq!(bad["signer"], serde_json::Value::Null);
    assert_eq!(bad["chain"], "untrusted");
    assert_eq!(bad["key_usage"], "unknown");
    assert_eq!(bad["errors"][0]["code"], "missing_signature");
    assert!(bad["errors"][0]["message"].is_string());
}

#[test]
fn signer_output_follows_the_profile_layout() {
    let xml = signed(DOC);
    assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<request"));
    assert!(xml.trim_end().ends_with("</ds:Signature></request>"));
    // base64 wrapped at 76 with CR LF, the CR as &#13;
    let sv = between(&xml, "<ds:SignatureValue>", "</ds:SignatureValue>");
    assert!(sv.contains("&#13;\n"));
    for line in sv.split("&#13;\n") {
        assert!(line.trim().len() <= 76);
    }
    let cert = between(&xml, "<ds:X509Certificate>", "</ds:X509Certificate>");
    assert!(cert.split("&#13;\n").all(|l| l.trim().len() <= 76));
}

#[test]
fn signing_an_already_signed_document_is_refused() {
    let xml = signed(DOC);
    let e = kezek_pki::sign_xml(xml.as_bytes(), &pki().key, pki().sign.der()).expect_err("refused");
    assert_eq!(e.code, ErrorCode::MultipleSignatures);
}

#[test]
fn signing_with_a_key_not_matching_the_certificate_is_refused() {
    let e =
        kezek_pki::sign_xml(DOC.as_bytes(), pki().ca.key(), pki().sign.der()).expect_err("refused");
    assert_eq!(e.code, ErrorCode::KeyMismatch);
}

#[test]
fn verify_signature_alone_ignores_trust_but_reports_tampering() {
    let xml = signed(DOC).replace("enroll", "withdraw");
    let v = verify_signature(xml.as_bytes()).expect("profile ok");
    assert!(!v.signature_valid());
    assert_eq!(v.signature_errors()[0].code, ErrorCode::DigestMismatch);
    // content accessors refuse unverified content
    assert_eq!(
        v.single_text("application").expect_err("refused").code,
        ErrorCode::DigestMismatch
    );
}

// ------------------------------------------------------------------ refusal corpus

#[test]
fn c01_wrong_digest_content_changed_after_signing() {
    let xml = signed(DOC).replace("APP-2025-000123", "APP-2025-000999");
    let r = refused_str(&xml, ErrorCode::DigestMismatch);
    assert!(!r.signature_valid);
    assert_eq!(r.errors.len(), 1, "{}", r.to_json());
}

#[test]
fn c02_wrong_digest_value() {
    let other = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
    let xml = replace_between(
        &signed(DOC),
        "<ds:DigestValue>",
        "</ds:DigestValue>",
        &other,
    );
    let r = refused_str(&xml, ErrorCode::DigestMismatch);
    // SignedInfo changed too, so the signature value no longer verifies
    assert_eq!(
        r.codes(),
        vec![ErrorCode::DigestMismatch, ErrorCode::SignatureInvalid]
    );
}

#[test]
fn c03_wrong_signature_value() {
    let good = signed(DOC);
    let other = signed(&DOC.replace("enroll", "withdraw"));
    let foreign_sv = between(&other, "<ds:SignatureValue>", "</ds:SignatureValue>");
    let xml = replace_between(
        &good,
        "<ds:SignatureValue>",
        "</ds:SignatureValue>",
        foreign_sv,
    );
    assert_ne!(xml, good);
    let r = refused_str(&xml, ErrorCode::SignatureInvalid);
    assert_eq!(r.codes(), vec![ErrorCode::SignatureInvalid]);
}

#[test]
fn c04_untrusted_ca() {
    let p = pki();
    let cert = p
        .rogue_ca
        .issue_for_key(
            &p.key.to_public_key(),
            &p.person,
            KeyKind::Sign,
            ts("2025-01-01T00:00:00Z"),
            ts("2026-01-01T00:00:00Z"),
        )
        .expect("cert");
    let r = report(&sign_with(DOC, &cert), Purpose::Sign);
    refused(&r, ErrorCode::Untrusted);
    assert!(r.signature_valid);
    assert_eq!(r.chain, ChainStatus::Untrusted);
}

#[test]
fn c05_self_signed_signer() {
    let p = pki();
    let cert = testca::self_signed_person(
        &p.key,
        &p.person,
        KeyKind::Sign,
        ts("2025-01-01T00:00:00Z"),
        ts("2026-01-01T00:00:00Z"),
    )
    .expect("cert");
    let r = report(&sign_with(DOC, &cert), Purpose::Sign);
    refused(&r, ErrorCode::SelfSignedLeaf);
    assert_eq!(r.chain, ChainStatus::Untrusted);
}

#[test]
fn c06_expired_at_signing_time() {
    let p = pki();
    let cert =
        p.ca.issue_for_key(
            &p.key.to_public_key(),
            &p.person,
            KeyKind::Sign,
            ts("2024-01-01T00:00:00Z"),
            ts("2025-01-01T00:00:00Z"),
        )
        .expect("cert");
    let r = report(&sign_with(DOC, &cert), Purpose::Sign);
    refused(&r, ErrorCode::Expired);
    assert_eq!(r.chain, ChainStatus::Expired);
}

fn almaty_midnight_cert() -> (kezek_pki::Certificate, Timestamp) {
    // valid from 00:00 on 1 March 2025 in Almaty (UTC+5) = 19:00 UTC on 28 February
    let from = jiff::civil::date(2025, 3, 1)
        .at(0, 0, 0, 0)
        .in_tz("Asia/Almaty")
        .expect("tz")
        .timestamp();
    assert_eq!(from, ts("2025-02-28T19:00:00Z"));
    let p = pki();
    let cert =
        p.ca.issue_for_key(
            &p.key.to_public_key(),
            &p.person,
            KeyKind::Sign,
            from,
            ts("2026-03-01T00:00:00Z"),
        )
        .expect("cert");
    (cert, from)
}

#[test]
fn c07_not_yet_valid_one_second_before_almaty_midnight() {
    let (cert, _) = almaty_midnight_cert();
    let xml = sign_with(DOC, &cert);
    // 23:59:59 on 28 February in Almaty
    let r = verify(&xml, &trust(), ts("2025-02-28T18:59:59Z"), Purpose::Sign);
    refused(&r, ErrorCode::NotYetValid);
    assert_eq!(r.chain, ChainStatus::NotYetValid);
    // 23:00 UTC on 28 February is already 04:00 on 1 March in Almaty: valid
    let r = verify(&xml, &trust(), ts("2025-02-28T23:00:00Z"), Purpose::Sign);
    assert!(r.valid, "{}", r.to_json());
    let r = verify(&xml, &trust(), ts("2025-02-28T19:00:00Z"), Purpose::Sign);
    assert!(r.valid, "{}", r.to_json());
}

#[test]
fn c08_revoked_by_crl() {
    let p = pki();
    let mut t = trust();
    let crl =
        p.ca.crl(
            &[p.sign.serial_hex()],
            ts("2025-05-01T00:00:00Z"),
            ts("2025-08-01T00:00:00Z"),
            2,
        )
        .expect("crl");
    t.add_crl(&crl).expect("crl loads");
    let xml = sign_with(DOC, &p.sign);
    let r = verify(&xml, &t, at(), Purpose::Sign);
    refused(&r, ErrorCode::Revoked);
    assert_eq!(r.chain, ChainStatus::Revoked);
    // the AUTH certificate is not on it
    let r = verify(&sign_with(DOC, &p.auth), &t, at(), Purpose::Auth);
    assert!(r.valid, "{}", r.to_json());
    // a CRL of an untrusted CA is refused
    let rogue = p
        .rogue_ca
        .crl(
            &[],
            ts("2025-05-01T00:00:00Z"),
            ts("2025-08-01T00:00:00Z"),
            1,
        )
        .expect("crl");
    assert_eq!(
        t.add_crl(&rogue).expect_err("refused").code,
        ErrorCode::Untrusted
    );
}

#[test]
fn c09_auth_key_for_purpose_sign() {
    let r = report(&sign_with(DOC, &pki().auth), Purpose::Sign);
    refused(&r, ErrorCode::WrongKeyUsage);
    assert!(r.signature_valid);
    assert_eq!(r.chain, ChainStatus::Trusted);
    assert_eq!(r.key_usage, KeyUsageClass::Auth);
}

#[test]
fn c10_signing_key_for_purpose_auth() {
    let r = report(&sign_with(DOC, &pki().sign), Purpose::Auth);
    refused(&r, ErrorCode::WrongKeyUsage);
    assert_eq!(r.key_usage, KeyUsageClass::Sign);
}

#[test]
fn c11_wrapping_duplicate_added_after_signing() {
    let xml = signed(DOC).replace(
        "<action>",
        "<application>APP-2025-666666</application>\n  <action>",
    );
    refused_str(&xml, ErrorCode::DigestMismatch);
}

#[test]
fn c12_wrapping_duplicate_inside_the_signed_content_is_ambiguous() {
    let doc = DOC.replace(
        "<action>",
        "<application>APP-2025-666666</application>\n  <action>",
    );
    let xml = signed(&doc);
    let out = verify_outcome(xml.as_bytes(), &trust(), at(), Purpose::Sign);
    assert!(out.report.valid, "{}", out.report.to_json());
    let v = out.accepted.expect("accepted");
    assert_eq!(
        v.single_text("application").expect_err("ambiguous").code,
        ErrorCode::AmbiguousContent
    );
    assert_eq!(
        v.single_text("missing").expect_err("absent").code,
        ErrorCode::AmbiguousContent
    );
}

#[test]
fn c13_wrapping_signed_document_moved_under_a_forged_root() {
    let xml = signed(DOC);
    let body = xml.trim_start_matches("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let forged = format!(
        "<request xmlns=\"urn:kezek:request\"><application>APP-EVIL</application><wrapper>{body}</wrapper></request>"
    );
    refused_str(&forged, ErrorCode::SignatureNotLast);
}

#[test]
fn c14_wrapping_acted_on_element_moved_into_the_signature() {
    let xml = signed(DOC);
    let moved = xml
        .replace("<application>APP-2025-000123</application>", "")
        .replace(
            "</ds:KeyInfo>",
            "</ds:KeyInfo><ds:Object><application>APP-2025-000123</application></ds:Object>",
        );
    refused_str(&moved, ErrorCode::BadSignatureStructure);
}

#[test]
fn c15_wrapping_element_appended_after_the_signature() {
    let xml = signed(DOC).replace(
        "</ds:Signature>",
        "</ds:Signature><application>APP-EVIL</application>",
    );
    refused_str(&xml, ErrorCode::SignatureNotLast);
}

#[test]
fn c16_comment_inserted_inside_a_signed_value() {
    // URI="" never signs comments (XML-DSig 4.3.3.3), so the digest cannot see this one:
    // it is refused by name instead.
    let xml = signed(DOC).replace("APP-2025-000123", "APP-2025-<!---->000123");
    let r = refused_str(&xml, ErrorCode::CommentForbidden);
    assert_eq!(r.codes(), vec![ErrorCode::CommentForbidden]);
    // anywhere in the document, also outside the document element
    refused_str(
        &signed(DOC).replacen("<request", "<!-- hello -->\n<request", 1),
        ErrorCode::CommentForbidden,
    );
    // the signer refuses to sign comments
    let e = kezek_pki::sign_xml(
        DOC.replace("<action>", "<!-- note --><action>").as_bytes(),
        &pki().key,
        pki().sign.der(),
    )
    .expect_err("refused");
    assert_eq!(e.code, ErrorCode::CommentForbidden);
}

#[test]
fn c17_whitespace_inside_an_algorithm_attribute() {
    let good = signed(DOC);
    for (from, to) in [
        (
            "Algorithm=\"http://www.w3.org/2001/04/xmldsig-more#rsa-sha256\"",
            "Algorithm=\" http://www.w3.org/2001/04/xmldsig-more#rsa-sha256\"",
        ),
        (
            "Algorithm=\"http://www.w3.org/2001/04/xmlenc#sha256\"",
            "Algorithm=\"http://www.w3.org/2001/04/xmlenc#sha256 \"",
        ),
        (
            "Algorithm=\"http://www.w3.org/2000/09/xmldsig#enveloped-signature\"",
            "Algorithm=\"http://www.w3.org/2000/09/xmldsig#enveloped-signature&#10;\"",
        ),
        (
            "<ds:CanonicalizationMethod Algorithm=\"http://www.w3.org/TR/2001/REC-xml-c14n-20010315\"",
            "<ds:CanonicalizationMethod Algorithm=\"http://www.w3.org/TR/2001/REC-xml-c14n-20010315\t\"",
        ),
    ] {
        assert!(good.contains(from), "{from}");
        refused_str(&good.replacen(from, to, 1), ErrorCode::UnknownAlgorithm);
    }
}

#[test]
fn c18_second_signature_appended() {
    let xml = signed(DOC);
    let sig = signature_block(&xml).to_owned();
    let doubled = xml.replace("</ds:Signature>", &format!("</ds:Signature>{sig}"));
    refused_str(&doubled, ErrorCode::MultipleSignatures);
}

#[test]
fn c19_leading_bom() {
    let mut bytes = vec![0xEF, 0xBB, 0xBF];
    bytes.extend(signed(DOC).into_bytes());
    refused(&report(&bytes, Purpose::Sign), ErrorCode::Bom);
}

#[test]
fn c20_reformatted_after_signing() {
    let xml = signed(DOC);
    // re-indented
    let reformatted = xml.replace("\n  <", "\n    <");
    refused_str(&reformatted, ErrorCode::DigestMismatch);
    // line breaks collapsed
    let collapsed = xml.replace(">\n  <application>", "><application>");
    refused_str(&collapsed, ErrorCode::DigestMismatch);
}

#[test]
fn c21_unknown_algorithms() {
    let good = signed(DOC);
    for (from, to) in [
        (
            "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
            "http://www.w3.org/2000/09/xmldsig#rsa-sha1",
        ),
        (
            "http://www.w3.org/2001/04/xmlenc#sha256",
            "http://www.w3.org/2000/09/xmldsig#sha1",
        ),
        (
            "<ds:CanonicalizationMethod Algorithm=\"http://www.w3.org/TR/2001/REC-xml-c14n-20010315\"",
            "<ds:CanonicalizationMethod Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\"",
        ),
        (
            "http://www.w3.org/TR/2001/REC-xml-c14n-20010315#WithComments",
            "http://www.w3.org/TR/1999/REC-xpath-19991116",
        ),
    ] {
        refused_str(&good.replacen(from, to, 1), ErrorCode::UnknownAlgorithm);
    }
}

#[test]
fn c22_truncated_base64() {
    let good = signed(DOC);
    let sv = between(&good, "<ds:SignatureValue>", "</ds:SignatureValue>");
    let cut = &sv[..sv.trim_end().len() - 3];
    refused_str(
        &replace_between(&good, "<ds:SignatureValue>", "</ds:SignatureValue>", cut),
        ErrorCode::BadBase64,
    );
    let cert = between(&good, "<ds:X509Certificate>", "</ds:X509Certificate>");
    let cut = &cert[..cert.len() / 2 + 1];
    refused_str(
        &replace_between(&good, "<ds:X509Certificate>", "</ds:X509Certificate>", cut),
        ErrorCode::BadBase64,
    );
    refused_str(
        &replace_between(&good, "<ds:DigestValue>", "</ds:DigestValue>", "AAAA!!=="),
        ErrorCode::BadBase64,
    );
}

#[test]
fn c23_oversized_document() {
    let padding = "x".repeat(300 * 1024);
    let big = signed(DOC).replace("enroll", &padding);
    refused_str(&big, ErrorCode::TooLarge);
    // the signer refuses to produce one too
    let e = kezek_pki::sign_xml(
        DOC.replace("enroll", &padding).as_bytes(),
        &pki().key,
        pki().sign.der(),
    )
    .expect_err("too large");
    assert_eq!(e.code, ErrorCode::TooLarge);
}

#[test]
fn c24_deep_nesting() {
    let deep = format!("{}x{}", "<n>".repeat(100), "</n>".repeat(100));
    let xml = signed(DOC).replace("enroll", &deep);
    refused_str(&xml, ErrorCode::TooDeep);
    let very_deep = format!("{}{}", "<n>".repeat(30_000), "</n>".repeat(30_000));
    refused_str(&very_deep, ErrorCode::TooDeep);
}

#[test]
fn c25_entity_expansion_bomb() {
    let bomb = "<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n <!ENTITY lol \"lol\">\n <!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">\n <!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">\n <!ENTITY lol4 \"&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;\">\n]>\n<request><application>&lol4;</application></request>";
    refused_str(bomb, ErrorCode::DtdForbidden);
    // also a DOCTYPE in front of a correctly signed document
    let xml = signed(DOC).replacen("<request", "<!DOCTYPE request>\n<request", 1);
    refused_str(&xml, ErrorCode::DtdForbidden);
}

#[test]
fn c26_bad_reference() {
    let good = signed(DOC);
    refused_str(
        &good.replace("<ds:Reference URI=\"\">", "<ds:Reference URI=\"#app\">"),
        ErrorCode::BadReference,
    );
    refused_str(
        &good.replace("<ds:Reference URI=\"\">", "<ds:Reference>"),
        ErrorCode::BadReference,
    );
    let reference = format!(
        "<ds:Reference URI=\"\">{}</ds:Reference>",
        between(&good, "<ds:Reference URI=\"\">", "</ds:Reference>")
    );
    refused_str(
        &good.replace(&reference, &format!("{reference}\n{reference}")),
        ErrorCode::BadReference,
    );
}

#[test]
fn c27_bad_transforms() {
    let good = signed(DOC);
    let env = "<ds:Transform Algorithm=\"http://www.w3.org/2000/09/xmldsig#enveloped-signature\"/>";
    let wc = "<ds:Transform Algorithm=\"http://www.w3.org/TR/2001/REC-xml-c14n-20010315#WithComments\"/>";
    // only enveloped
    refused_str(&good.replace(wc, ""), ErrorCode::BadTransforms);
    // swapped
    let swapped = good
        .replace(env, "@@ENV@@")
        .replace(wc, env)
        .replace("@@ENV@@", wc);
    refused_str(&swapped, ErrorCode::BadTransforms);
    // C14N without comments instead of with comments
    refused_str(
        &good.replace(
            "REC-xml-c14n-20010315#WithComments",
            "REC-xml-c14n-20010315",
        ),
        ErrorCode::BadTransforms,
    );
    // no Transforms at all
    let transforms = format!(
        "<ds:Transforms>{}</ds:Transforms>",
        between(&good, "<ds:Transforms>", "</ds:Transforms>")
    );
    refused_str(&good.replace(&transforms, ""), ErrorCode::BadTransforms);
}

#[test]
fn c28_missing_certificate() {
    let good = signed(DOC);
    let key_info = format!(
        "<ds:KeyInfo>{}</ds:KeyInfo>",
        between(&good, "<ds:KeyInfo>", "</ds:KeyInfo>")
    );
    refused_str(&good.replace(&key_info, ""), ErrorCode::MissingCertificate);
    refused_str(
        &good.replace(
            &key_info,
            "<ds:KeyInfo><ds:X509Data></ds:X509Data></ds:KeyInfo>",
        ),
        ErrorCode::MissingCertificate,
    );
}

#[test]
fn c29_signature_not_last() {
    let good = signed(DOC);
    let sig = signature_block(&good).to_owned();
    let moved = good
        .replace(&sig, "")
        .replace("<application>", &format!("{sig}<application>"));
    refused_str(&moved, ErrorCode::SignatureNotLast);
}

#[test]
fn c30_malformed_and_unsigned() {
    refused_str("<request><application>x</request>", ErrorCode::MalformedXml);
    refused_str("", ErrorCode::MalformedXml);
    refused_str(DOC, ErrorCode::MissingSignature);
    // a Signature in another namespace is no signature
    let good = signed(DOC);
    refused_str(
        &good.replace(
            "xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\"",
            "xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#x\"",
        ),
        ErrorCode::MissingSignature,
    );
}

#[test]
fn c31_extra_content_inside_signature_elements() {
    let good = signed(DOC);
    refused_str(
        &good.replace("<ds:SignedInfo>", "<ds:SignedInfo><!-- hi -->"),
        ErrorCode::BadSignatureStructure,
    );
    refused_str(
        &good.replace(
            "<ds:X509Data>",
            "<ds:X509Data><ds:X509SubjectName>CN=x</ds:X509SubjectName>",
        ),
        ErrorCode::BadSignatureStructure,
    );
    refused_str(
        &good.replace("<ds:SignedInfo>", "<ds:SignedInfo foo=\"bar\">"),
        ErrorCode::BadSignatureStructure,
    );
}

#[test]
fn c32_certificate_in_keyinfo_is_not_a_certificate() {
    let good = signed(DOC);
    let junk = base64::engine::general_purpose::STANDARD.encode(b"definitely not DER");
    refused_str(
        &replace_between(
            &good,
            "<ds:X509Certificate>",
            "</ds:X509Certificate>",
            &junk,
        ),
        ErrorCode::Malformed,
    );
}

#[test]
fn c33_certificate_swapped_for_another_key() {
    // KeyInfo replaced by a certificate of the same person over another key
    let p = pki();
    let other_key = p.rogue_ca.key();
    let cert =
        p.ca.issue_for_key(
            &other_key.to_public_key(),
            &p.person,
            KeyKind::Sign,
            ts("2025-01-01T00:00:00Z"),
            ts("2026-01-01T00:00:00Z"),
        )
        .expect("cert");
    let b64 = base64::engine::general_purpose::STANDARD.encode(cert.der());
    let xml = replace_between(
        &signed(DOC),
        "<ds:X509Certificate>",
        "</ds:X509Certificate>",
        &b64,
    );
    let r = refused_str(&xml, ErrorCode::SignatureInvalid);
    assert_eq!(r.chain, ChainStatus::Trusted);
}

#[test]
fn an_empty_trust_store_trusts_nothing() {
    let r = verify(
        signed(DOC).as_bytes(),
        &TrustStore::new(),
        at(),
        Purpose::Sign,
    );
    refused(&r, ErrorCode::Untrusted);
}
