//! xmlsec1 as an independent oracle, in both directions. xmlsec1 must be installed
//! (Debian package `xmlsec1`; CI installs it): without it these tests FAIL.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{at, pki, trust, DOC};
use kezek_pki::testca;
use kezek_pki::{verify, ErrorCode, Purpose};

fn xmlsec1() -> PathBuf {
    let out = Command::new("xmlsec1").arg("--version").output();
    match out {
        Ok(o) if o.status.success() => PathBuf::from("xmlsec1"),
        _ => panic!(
            "xmlsec1 is not installed: these oracle tests need it \
             (apt-get install -y xmlsec1)"
        ),
    }
}

struct Files {
    _dir: tempfile::TempDir,
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    dir: PathBuf,
}

fn files() -> Files {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = pki();
    let path = |n: &str| dir.path().join(n);
    std::fs::write(path("ca.pem"), p.ca.certificate().to_pem()).expect("write");
    std::fs::write(path("sign.pem"), p.sign.to_pem()).expect("write");
    std::fs::write(
        path("sign.key.pem"),
        testca::key_to_pem(&p.key).expect("pem"),
    )
    .expect("write");
    Files {
        ca: path("ca.pem"),
        cert: path("sign.pem"),
        key: path("sign.key.pem"),
        dir: dir.path().to_path_buf(),
        _dir: dir,
    }
}

fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().expect("xmlsec1 runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn xmlsec_verify_pubkey(f: &Files, doc: &Path) -> (bool, String) {
    run(Command::new(xmlsec1())
        .arg("--verify")
        .args(["--enabled-reference-uris", "empty"])
        .arg("--pubkey-cert-pem")
        .arg(&f.cert)
        .arg(doc))
}

fn xmlsec_verify_trusted(f: &Files, doc: &Path) -> (bool, String) {
    run(Command::new(xmlsec1())
        .arg("--verify")
        .args(["--enabled-reference-uris", "empty"])
        .arg("--trusted-pem")
        .arg(&f.ca)
        .args(["--verification-time", "2025-06-01 12:00:00"])
        .arg(doc))
}

/// Documents exercising C14N: namespaces (default and prefixed, redeclared, undeclared),
/// attribute order, character references (&#13; in text and attributes), PIs inside and
/// outside the document element, CDATA, empty elements, non-ASCII text.
const DOCS: [&str; 4] = [
    DOC,
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<?app run?>\n<r:request xmlns:r=\"urn:kezek:r\" xmlns=\"urn:kezek:d\" xmlns:x=\"urn:x\" z=\"1\" a=\"2\" x:b=\"3\">\r\n  <application>APP-1</application>\r\n  <note xml:lang=\"kk\" t=\"a&#9;b&#10;c&#13;d\">line1&#13;\nline2 &lt;&amp;&gt; \"q\" 'a' <?pi x?> <![CDATA[<cdata> & ]]></note>\n  <empty/><e xmlns=\"\"><x:f xmlns:x=\"urn:x2\"/></e>\n  <child>Әлия Ерланқызы</child>\n</r:request>\n<?after?>\n",
    "<request><application>APP-2</application></request>",
    "<a xmlns=\"urn:a\"><b xmlns=\"urn:b\"><c xmlns=\"urn:a\">t</c></b><application>APP-3</application></a>",
];

#[test]
fn documents_signed_by_kezek_verify_with_xmlsec1() {
    let f = files();
    for (i, doc) in DOCS.iter().enumerate() {
        let signed =
            kezek_pki::sign_xml(doc.as_bytes(), &pki().key, pki().sign.der()).expect("signs");
        let path = f.dir.join(format!("kezek-signed-{i}.xml"));
        std::fs::write(&path, &signed).expect("write");
        let (ok, out) = xmlsec_verify_pubkey(&f, &path);
        assert!(ok, "xmlsec1 --pubkey-cert-pem refused document {i}: {out}");
        assert!(out.contains("OK"), "{out}");
        let (ok, out) = xmlsec_verify_trusted(&f, &path);
        assert!(ok, "xmlsec1 --trusted-pem refused document {i}: {out}");
        // and our own verifier agrees
        let r = verify(&signed, &trust(), at(), Purpose::Sign);
        assert!(r.valid, "document {i}: {}", r.to_json());
    }
}

#[test]
fn xmlsec1_refuses_what_kezek_refuses_for_tampering() {
    let f = files();
    let signed = String::from_utf8(
        kezek_pki::sign_xml(DOCS[1].as_bytes(), &pki().key, pki().sign.der()).expect("signs"),
    )
    .expect("utf-8");
    for (name, tampered) in [
        ("content", signed.replace("APP-1", "APP-9")),
        (
            "reformat",
            signed.replace("\n  <application>", "\n    <application>"),
        ),
        ("cr-ref", signed.replace("line1&#xD;", "line1")),
    ] {
        assert_ne!(tampered, signed, "{name}: tampering changed nothing");
        let path = f.dir.join(format!("tampered-{name}.xml"));
        std::fs::write(&path, &tampered).expect("write");
        let (ok, out) = xmlsec_verify_pubkey(&f, &path);
        assert!(!ok, "xmlsec1 accepted tampered ({name}): {out}");
        let r = verify(tampered.as_bytes(), &trust(), at(), Purpose::Sign);
        assert_eq!(
            r.errors.first().map(|e| e.code),
            Some(ErrorCode::DigestMismatch),
            "{name}: {}",
            r.to_json()
        );
    }
}

fn template(body_open: &str, body: &str, body_close: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{body_open}{body}<ds:Signature xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\">\n\
<ds:SignedInfo>\n\
<ds:CanonicalizationMethod Algorithm=\"http://www.w3.org/TR/2001/REC-xml-c14n-20010315\"/>\n\
<ds:SignatureMethod Algorithm=\"http://www.w3.org/2001/04/xmldsig-more#rsa-sha256\"/>\n\
<ds:Reference URI=\"\">\n\
<ds:Transforms>\n\
<ds:Transform Algorithm=\"http://www.w3.org/2000/09/xmldsig#enveloped-signature\"/>\n\
<ds:Transform Algorithm=\"http://www.w3.org/TR/2001/REC-xml-c14n-20010315#WithComments\"/>\n\
</ds:Transforms>\n\
<ds:DigestMethod Algorithm=\"http://www.w3.org/2001/04/xmlenc#sha256\"/>\n\
<ds:DigestValue></ds:DigestValue>\n\
</ds:Reference>\n\
</ds:SignedInfo>\n\
<ds:SignatureValue></ds:SignatureValue>\n\
<ds:KeyInfo>\n\
<ds:X509Data>\n\
<ds:X509Certificate></ds:X509Certificate>\n\
</ds:X509Data>\n\
</ds:KeyInfo>\n\
</ds:Signature>{body_close}\n"
    )
}

#[test]
fn documents_signed_by_xmlsec1_verify_with_kezek() {
    let f = files();
    let cases = [
        (
            "<request xmlns=\"urn:kezek:request\" version=\"1\">",
            "\n  <application>APP-2025-000123</application>\n  <child iin=\"200101600111\">Әлия &amp; Ерлан&#13;</child>\n",
            "</request>",
        ),
        (
            "<?top?>\n<p:request xmlns:p=\"urn:p\" xmlns=\"urn:d\" b=\"2\" a=\"1\">",
            "<application xml:lang=\"ru\">APP-7</application><empty/>",
            "</p:request>",
        ),
    ];
    for (i, (open, body, close)) in cases.iter().enumerate() {
        let tmpl = f.dir.join(format!("tmpl-{i}.xml"));
        let out = f.dir.join(format!("xmlsec-signed-{i}.xml"));
        std::fs::write(&tmpl, template(open, body, close)).expect("write");
        let (ok, text) = run(Command::new(xmlsec1())
            .arg("--sign")
            .arg("--privkey-pem")
            .arg(format!("{},{}", f.key.display(), f.cert.display()))
            .arg("--output")
            .arg(&out)
            .arg(&tmpl));
        assert!(ok, "xmlsec1 --sign failed: {text}");
        let signed = std::fs::read(&out).expect("read");
        let r = verify(&signed, &trust(), at(), Purpose::Sign);
        assert!(
            r.valid,
            "xmlsec1-signed document {i} refused: {}\n{}",
            r.to_json(),
            String::from_utf8_lossy(&signed)
        );
        // tampering it breaks the digest for us as well
        let tampered = String::from_utf8_lossy(&signed).replace("APP-", "APP-X");
        let r = verify(tampered.as_bytes(), &trust(), at(), Purpose::Sign);
        assert_eq!(
            r.errors.first().map(|e| e.code),
            Some(ErrorCode::DigestMismatch),
            "{}",
            r.to_json()
        );
    }
}

/// The oracle shows why comments are refused: with URI="" the digest never covers them
/// (XML-DSig 4.3.3.3), so xmlsec1 accepts a comment inserted into a signed value, and a
/// document signed with comments still verifies once they are stripped.
#[test]
fn comments_are_outside_the_digest_so_kezek_refuses_them() {
    let f = files();
    let signed = String::from_utf8(
        kezek_pki::sign_xml(DOC.as_bytes(), &pki().key, pki().sign.der()).expect("signs"),
    )
    .expect("utf-8");
    let tampered = signed.replace("APP-2025-000123", "APP-2025-<!---->000123");
    let path = f.dir.join("comment-inserted.xml");
    std::fs::write(&path, &tampered).expect("write");
    let (ok, out) = xmlsec_verify_pubkey(&f, &path);
    assert!(
        ok,
        "xmlsec1 is expected to ignore comments under URI=\"\": {out}"
    );
    let r = verify(tampered.as_bytes(), &trust(), at(), Purpose::Sign);
    assert_eq!(
        r.codes(),
        vec![ErrorCode::CommentForbidden],
        "{}",
        r.to_json()
    );

    // xmlsec1 signs a document holding a comment: it verifies there, Kezek refuses it by
    // name; stripped of its comment the same signature verifies with both.
    let tmpl = f.dir.join("tmpl-comment.xml");
    let out_path = f.dir.join("xmlsec-signed-comment.xml");
    std::fs::write(
        &tmpl,
        template(
            "<request>",
            "<application>APP-<!-- c -->5</application>",
            "</request>",
        ),
    )
    .expect("write");
    let (ok, text) = run(Command::new(xmlsec1())
        .arg("--sign")
        .arg("--privkey-pem")
        .arg(format!("{},{}", f.key.display(), f.cert.display()))
        .arg("--output")
        .arg(&out_path)
        .arg(&tmpl));
    assert!(ok, "xmlsec1 --sign failed: {text}");
    let with_comment = std::fs::read_to_string(&out_path).expect("read");
    let r = verify(with_comment.as_bytes(), &trust(), at(), Purpose::Sign);
    assert_eq!(
        r.codes(),
        vec![ErrorCode::CommentForbidden],
        "{}",
        r.to_json()
    );
    let stripped = with_comment.replace("<!-- c -->", "");
    let r = verify(stripped.as_bytes(), &trust(), at(), Purpose::Sign);
    assert!(r.valid, "{}", r.to_json());
    let path = f.dir.join("stripped.xml");
    std::fs::write(&path, &stripped).expect("write");
    let (ok, out) = xmlsec_verify_pubkey(&f, &path);
    assert!(ok, "{out}");
}
