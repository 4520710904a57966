//! The NCALayer XML signature profile: a strict verifier and a signer.
//!
//! Profile (anything else is refused with a named code, never normalized):
//!
//! ```text
//! <root ...>
//!   ...signed content...
//!   <ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#">      last child element of root
//!     <ds:SignedInfo>
//!       <ds:CanonicalizationMethod Algorithm="http://www.w3.org/TR/2001/REC-xml-c14n-20010315"/>
//!       <ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/>
//!       <ds:Reference URI="">                                          exactly one
//!         <ds:Transforms>                                              exactly these two
//!           <ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>
//!           <ds:Transform Algorithm="http://www.w3.org/TR/2001/REC-xml-c14n-20010315#WithComments"/>
//!         </ds:Transforms>
//!         <ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/>
//!         <ds:DigestValue>base64</ds:DigestValue>
//!       </ds:Reference>
//!     </ds:SignedInfo>
//!     <ds:SignatureValue>base64, may be wrapped</ds:SignatureValue>
//!     <ds:KeyInfo><ds:X509Data><ds:X509Certificate>base64</ds:X509Certificate></ds:X509Data></ds:KeyInfo>
//!   </ds:Signature>
//! </root>
//! ```
//!
//! Whitespace-only text may separate the Signature's elements; `Id` attributes are allowed
//! on Signature, SignedInfo, Reference, SignatureValue and KeyInfo. Nothing else is.
//!
//! Comments: XML-DSig 1.0 section 4.3.3.3 says that `URI=""` dereferences to the node-set
//! of the document *without its comment nodes*; the `#WithComments` transform then has no
//! comment to keep. xmlsec1 and Apache Santuario (inside NCALayer) do exactly that, so the
//! digest never covers comments. A comment could therefore be inserted into a signed
//! document (even inside a signed value) without breaking the digest: this verifier
//! refuses any comment with `comment_forbidden`, and the signer refuses to sign one.

use base64::Engine as _;
use jiff::Timestamp;
use roxmltree::{Document, Node, NodeType};
use rsa::{Pkcs1v15Sign, RsaPrivateKey};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::c14n;
use crate::cert::{CertInfo, Certificate, KeyUsageClass, TrustStore};
use crate::error::{err, Error, ErrorCode, Result};
use crate::xml;

/// The XML-DSig namespace.
pub const NS_DSIG: &str = "http://www.w3.org/2000/09/xmldsig#";
/// Inclusive C14N 1.0 (SignedInfo canonicalization).
pub const ALG_C14N: &str = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315";
/// Inclusive C14N 1.0 with comments (the Reference's second transform).
pub const ALG_C14N_WITH_COMMENTS: &str =
    "http://www.w3.org/TR/2001/REC-xml-c14n-20010315#WithComments";
/// The enveloped-signature transform.
pub const ALG_ENVELOPED: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";
/// RSA PKCS#1 v1.5 with SHA-256.
pub const ALG_RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
/// SHA-256 digest.
pub const ALG_SHA256: &str = "http://www.w3.org/2001/04/xmlenc#sha256";

const PROFILE_ALGORITHMS: [&str; 5] = [
    ALG_C14N,
    ALG_C14N_WITH_COMMENTS,
    ALG_ENVELOPED,
    ALG_RSA_SHA256,
    ALG_SHA256,
];

/// Most bytes of base64 accepted in one element (a certificate is well below).
const MAX_BASE64_CHARS: usize = 64 * 1024;

/// What the signature is for: login (AUTH key) or an action (signing key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    Auth,
    Sign,
}

impl Purpose {
    fn fits(self, class: KeyUsageClass) -> bool {
        matches!(
            (self, class),
            (Purpose::Auth, KeyUsageClass::Auth) | (Purpose::Sign, KeyUsageClass::Sign)
        )
    }
}

// ------------------------------------------------------------------ verified content

/// An attribute of the verified content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct XmlAttribute {
    pub namespace: Option<String>,
    pub name: String,
    pub value: String,
}

/// A node of the verified content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum XmlNode {
    Element(XmlElement),
    Text(String),
    Comment(String),
    ProcessingInstruction { target: String, value: String },
}

/// An element of the verified content (owned; re-parsed from the canonical bytes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct XmlElement {
    pub namespace: Option<String>,
    pub name: String,
    pub attributes: Vec<XmlAttribute>,
    pub children: Vec<XmlNode>,
}

impl XmlElement {
    fn from_node(n: Node<'_, '_>) -> XmlElement {
        // depth is bounded by the parse limits (MAX_XML_DEPTH)
        let mut children = Vec::new();
        for c in n.children() {
            match c.node_type() {
                NodeType::Element => children.push(XmlNode::Element(XmlElement::from_node(c))),
                NodeType::Text => children.push(XmlNode::Text(c.text().unwrap_or("").to_owned())),
                NodeType::Comment => {
                    children.push(XmlNode::Comment(c.text().unwrap_or("").to_owned()))
                }
                NodeType::PI => {
                    if let Some(pi) = c.pi() {
                        children.push(XmlNode::ProcessingInstruction {
                            target: pi.target.to_owned(),
                            value: pi.value.unwrap_or("").to_owned(),
                        })
                    }
                }
                NodeType::Root => {}
            }
        }
        XmlElement {
            namespace: n
                .tag_name()
                .namespace()
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
            name: n.tag_name().name().to_owned(),
            attributes: n
                .attributes()
                .map(|a| XmlAttribute {
                    namespace: a.namespace().map(str::to_owned),
                    name: a.name().to_owned(),
                    value: a.value().to_owned(),
                })
                .collect(),
            children,
        }
    }

    /// The child elements.
    pub fn child_elements(&self) -> impl Iterator<Item = &XmlElement> {
        self.children.iter().filter_map(|c| match c {
            XmlNode::Element(e) => Some(e),
            _ => None,
        })
    }

    /// The concatenated text children (comments skipped).
    pub fn text(&self) -> String {
        self.children
            .iter()
            .filter_map(|c| match c {
                XmlNode::Text(t) => Some(t.as_str()),
                _ => None,
            })
            .collect()
    }

    /// The value of an unqualified attribute.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|a| a.namespace.is_none() && a.name == name)
            .map(|a| a.value.as_str())
    }

    /// The one child element with local name `name` (in any namespace); `ambiguous_content`
    /// if there is none or more than one.
    pub fn single_child(&self, name: &str) -> Result<&XmlElement> {
        let mut found = self.child_elements().filter(|e| e.name == name);
        match (found.next(), found.next()) {
            (Some(e), None) => Ok(e),
            (None, _) => err(
                ErrorCode::AmbiguousContent,
                format!("no <{name}> element in the signed content"),
            ),
            (Some(_), Some(_)) => err(
                ErrorCode::AmbiguousContent,
                format!("more than one <{name}> element in the signed content"),
            ),
        }
    }

    /// The text of the one child element `name`, which must hold text only
    /// (`ambiguous_content` if missing, duplicated or containing elements).
    pub fn single_text(&self, name: &str) -> Result<String> {
        let e = self.single_child(name)?;
        if e.child_elements().next().is_some() {
            return err(
                ErrorCode::AmbiguousContent,
                format!("<{name}> holds elements, not text"),
            );
        }
        Ok(e.text())
    }
}

/// The result of checking a document's signature (profile, digest, signature value)
/// without any trust decision. The content accessors give the *verified* content only:
/// the document minus its Signature, canonicalized and re-parsed; never the raw input.
#[derive(Debug, Clone)]
pub struct Verified {
    signature_valid: bool,
    signature_errors: Vec<Error>,
    certificate: Certificate,
    canonical: Vec<u8>,
    root: XmlElement,
}

impl Verified {
    /// Digest and signature value both check out.
    pub fn signature_valid(&self) -> bool {
        self.signature_valid
    }

    /// `digest_mismatch` and/or `signature_invalid` when `signature_valid` is false.
    pub fn signature_errors(&self) -> &[Error] {
        &self.signature_errors
    }

    /// The signer certificate's fields.
    pub fn signer(&self) -> &CertInfo {
        self.certificate.info()
    }

    /// The signer certificate (from KeyInfo).
    pub fn certificate(&self) -> &Certificate {
        &self.certificate
    }

    /// The canonical bytes of the signed content (the document minus the Signature,
    /// canonicalized; it holds no comments): exactly what the digest covers.
    pub fn canonical_bytes(&self) -> &[u8] {
        &self.canonical
    }

    /// The signed content re-parsed from [`Self::canonical_bytes`]: its document element.
    /// `signature_invalid` if the signature did not check out.
    pub fn root(&self) -> Result<&XmlElement> {
        if !self.signature_valid {
            return Err(self
                .signature_errors
                .first()
                .cloned()
                .unwrap_or_else(|| Error::new(ErrorCode::SignatureInvalid, "signature invalid")));
        }
        Ok(&self.root)
    }

    /// The text of the one child element `name` of the verified root.
    /// `ambiguous_content` if there are none or several; `signature_invalid` /
    /// `digest_mismatch` if the signature did not check out.
    pub fn single_text(&self, name: &str) -> Result<String> {
        self.root()?.single_text(name)
    }

    /// Refuses (`iin_mismatch`) unless the signer certificate's IIN is `iin`.
    pub fn require_iin(&self, iin: &str) -> Result<()> {
        match self.signer().iin.as_deref() {
            Some(x) if x == iin => Ok(()),
            other => err(
                ErrorCode::IinMismatch,
                format!(
                    "signer IIN {} is not the applicant's",
                    other.unwrap_or("(none)")
                ),
            ),
        }
    }
}

// ------------------------------------------------------------------ report

/// The signer in a [`Report`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SignerSummary {
    pub iin: Option<String>,
    pub common_name: Option<String>,
    pub serial: String,
}

/// Chain status in a [`Report`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChainStatus {
    Trusted,
    Untrusted,
    Expired,
    NotYetValid,
    Revoked,
}

/// The outcome of [`verify`], serializing to
/// `{"valid","signature_valid","signer":{"iin","common_name","serial"}|null,"key_usage",
/// "chain","errors":[{"code","message"}]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Signature valid, chain trusted, key usage fits the purpose, no error.
    pub valid: bool,
    /// Digest and signature value check out (nothing about trust).
    pub signature_valid: bool,
    pub signer: Option<SignerSummary>,
    pub key_usage: KeyUsageClass,
    pub chain: ChainStatus,
    pub errors: Vec<Error>,
}

impl Report {
    fn refused(e: Error) -> Report {
        Report {
            valid: false,
            signature_valid: false,
            signer: None,
            key_usage: KeyUsageClass::Unknown,
            chain: ChainStatus::Untrusted,
            errors: vec![e],
        }
    }

    /// The JSON text of the report.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".to_owned())
    }

    /// The error codes, in order.
    pub fn codes(&self) -> Vec<ErrorCode> {
        self.errors.iter().map(|e| e.code).collect()
    }
}

/// A report and, only when the report is valid, the verified content to act on.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub report: Report,
    pub accepted: Option<Verified>,
}

/// Full verification: profile, digest, signature value, chain to `trust` at instant `at`,
/// and key usage for `purpose`.
pub fn verify(xml: &[u8], trust: &TrustStore, at: Timestamp, purpose: Purpose) -> Report {
    verify_outcome(xml, trust, at, purpose).report
}

/// Like [`verify`], also handing back the verified content when (and only when) valid.
pub fn verify_outcome(xml: &[u8], trust: &TrustStore, at: Timestamp, purpose: Purpose) -> Outcome {
    let v = match verify_signature(xml) {
        Ok(v) => v,
        Err(e) => {
            return Outcome {
                report: Report::refused(e),
                accepted: None,
            }
        }
    };
    let info = v.signer();
    let mut errors = v.signature_errors.clone();
    let key_usage = info.key_usage;
    let chain = match trust.validate(&v.certificate, &[], at) {
        Ok(_) => ChainStatus::Trusted,
        Err(e) => {
            let status = match e.code {
                ErrorCode::Expired => ChainStatus::Expired,
                ErrorCode::NotYetValid => ChainStatus::NotYetValid,
                ErrorCode::Revoked => ChainStatus::Revoked,
                _ => ChainStatus::Untrusted,
            };
            errors.push(e);
            status
        }
    };
    if !purpose.fits(key_usage) {
        errors.push(Error::new(
            ErrorCode::WrongKeyUsage,
            format!(
                "a certificate of key usage '{}' cannot be used for '{}'",
                key_usage.as_str(),
                match purpose {
                    Purpose::Auth => "auth",
                    Purpose::Sign => "sign",
                }
            ),
        ));
    }
    let valid = v.signature_valid && chain == ChainStatus::Trusted && errors.is_empty();
    let report = Report {
        valid,
        signature_valid: v.signature_valid,
        signer: Some(SignerSummary {
            iin: info.iin.clone(),
            common_name: info.subject.common_name.clone(),
            serial: info.serial.clone(),
        }),
        key_usage,
        chain,
        errors,
    };
    Outcome {
        report,
        accepted: if valid { Some(v) } else { None },
    }
}

// ------------------------------------------------------------------ profile checks

fn structure(msg: impl Into<String>) -> Error {
    Error::new(ErrorCode::BadSignatureStructure, msg)
}

fn is_ds(n: Node<'_, '_>, local: &str) -> bool {
    n.is_element() && n.tag_name().namespace() == Some(NS_DSIG) && n.tag_name().name() == local
}

/// Child elements of `n`; whitespace-only text allowed between them, nothing else.
fn element_children<'a, 'i>(n: Node<'a, 'i>) -> Result<Vec<Node<'a, 'i>>> {
    let mut out = Vec::new();
    for c in n.children() {
        match c.node_type() {
            NodeType::Element => out.push(c),
            NodeType::Text => {
                if !c
                    .text()
                    .unwrap_or("")
                    .chars()
                    .all(|ch| ch.is_ascii_whitespace())
                {
                    return Err(structure(format!(
                        "text inside ds:{} is outside the profile",
                        n.tag_name().name()
                    )));
                }
            }
            _ => {
                return Err(structure(format!(
                    "comment or processing instruction inside ds:{}",
                    n.tag_name().name()
                )))
            }
        }
    }
    Ok(out)
}

/// Only the listed unqualified attributes may appear.
fn check_attrs(n: Node<'_, '_>, allowed: &[&str], code: ErrorCode) -> Result<()> {
    for a in n.attributes() {
        if a.namespace().is_some() || !allowed.contains(&a.name()) {
            return err(
                code,
                format!(
                    "attribute {} on ds:{} is outside the profile",
                    a.name(),
                    n.tag_name().name()
                ),
            );
        }
    }
    Ok(())
}

fn expect_ds<'a, 'i>(n: Option<&Node<'a, 'i>>, local: &str, parent: &str) -> Result<Node<'a, 'i>> {
    match n {
        Some(n) if is_ds(*n, local) => Ok(*n),
        Some(n) => Err(structure(format!(
            "expected ds:{local} in ds:{parent}, found {}",
            n.tag_name().name()
        ))),
        None => Err(structure(format!("missing ds:{local} in ds:{parent}"))),
    }
}

/// An Algorithm-carrying empty element: its Algorithm must be exactly `want`.
fn check_method(n: Node<'_, '_>, want: &str) -> Result<()> {
    check_attrs(n, &["Algorithm"], ErrorCode::BadSignatureStructure)?;
    let alg = n.attribute("Algorithm").unwrap_or("");
    if alg != want {
        return err(
            ErrorCode::UnknownAlgorithm,
            format!(
                "ds:{} Algorithm {alg:?} is not the profile's {want}",
                n.tag_name().name()
            ),
        );
    }
    if n.has_children() {
        // only whitespace would be tolerable; refuse anything
        let kids = element_children(n)?;
        if !kids.is_empty() {
            return Err(structure(format!(
                "ds:{} must be empty",
                n.tag_name().name()
            )));
        }
    }
    Ok(())
}

/// Text-only element content.
fn text_only(n: Node<'_, '_>) -> Result<String> {
    let mut s = String::new();
    for c in n.children() {
        match c.node_type() {
            NodeType::Text => s.push_str(c.text().unwrap_or("")),
            _ => {
                return Err(structure(format!(
                    "ds:{} must hold text only",
                    n.tag_name().name()
                )))
            }
        }
    }
    Ok(s)
}

/// Base64 with optional line wrapping (space, tab, CR, LF); padding required.
pub fn decode_base64(text: &str, what: &str) -> Result<Vec<u8>> {
    if text.len() > MAX_BASE64_CHARS {
        return err(ErrorCode::TooLarge, format!("{what} base64 is too long"));
    }
    let compact: Vec<u8> = text
        .bytes()
        .filter(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
        .collect();
    if compact.is_empty() {
        return err(ErrorCode::BadBase64, format!("{what} is empty"));
    }
    base64::engine::general_purpose::STANDARD
        .decode(&compact)
        .map_err(|e| Error::new(ErrorCode::BadBase64, format!("{what}: {e}")))
}

struct Parts<'a, 'i> {
    signature: Node<'a, 'i>,
    signed_info: Node<'a, 'i>,
    digest: Vec<u8>,
    signature_value: Vec<u8>,
    certificate: Certificate,
}

fn find_signature<'a, 'i>(doc: &'a Document<'i>) -> Result<Node<'a, 'i>> {
    let mut sigs = doc.descendants().filter(|n| is_ds(*n, "Signature"));
    let sig = match (sigs.next(), sigs.next()) {
        (None, _) => return err(ErrorCode::MissingSignature, "no ds:Signature element"),
        (Some(_), Some(_)) => {
            return err(
                ErrorCode::MultipleSignatures,
                "more than one ds:Signature element",
            )
        }
        (Some(s), None) => s,
    };
    let root = doc.root_element();
    if sig.parent() != Some(root) {
        return err(
            ErrorCode::SignatureNotLast,
            "ds:Signature must be a child of the document element",
        );
    }
    if root.last_element_child() != Some(sig) {
        return err(
            ErrorCode::SignatureNotLast,
            "ds:Signature must be the last child element of the document element",
        );
    }
    Ok(sig)
}

fn check_profile<'a, 'i>(doc: &'a Document<'i>) -> Result<Parts<'a, 'i>> {
    let signature = find_signature(doc)?;
    check_attrs(signature, &["Id"], ErrorCode::BadSignatureStructure)?;
    let kids = element_children(signature)?;
    let signed_info = expect_ds(kids.first(), "SignedInfo", "Signature")?;
    let sv = expect_ds(kids.get(1), "SignatureValue", "Signature")?;
    let key_info = match kids.get(2) {
        None => {
            return err(
                ErrorCode::MissingCertificate,
                "no ds:KeyInfo with the signer certificate",
            )
        }
        Some(k) => expect_ds(Some(k), "KeyInfo", "Signature")?,
    };
    if kids.len() > 3 {
        return Err(structure(format!(
            "unexpected ds:{} in ds:Signature (Object and others are outside the profile)",
            kids[3].tag_name().name()
        )));
    }

    // SignedInfo
    check_attrs(signed_info, &["Id"], ErrorCode::BadSignatureStructure)?;
    let si = element_children(signed_info)?;
    let cm = expect_ds(si.first(), "CanonicalizationMethod", "SignedInfo")?;
    let sm = expect_ds(si.get(1), "SignatureMethod", "SignedInfo")?;
    let refs = &si[2.min(si.len())..];
    if let Some(other) = refs.iter().find(|n| !is_ds(**n, "Reference")) {
        return Err(structure(format!(
            "unexpected {} in ds:SignedInfo",
            other.tag_name().name()
        )));
    }
    let reference = match refs {
        [one] => *one,
        [] => return err(ErrorCode::BadReference, "no ds:Reference"),
        _ => {
            return err(
                ErrorCode::BadReference,
                format!(
                    "{} ds:Reference elements; exactly one is allowed",
                    refs.len()
                ),
            )
        }
    };
    check_method(cm, ALG_C14N)?;
    check_method(sm, ALG_RSA_SHA256)?;

    // Reference
    check_attrs(reference, &["URI", "Id"], ErrorCode::BadReference)?;
    match reference.attribute("URI") {
        Some("") => {}
        Some(u) => {
            return err(
                ErrorCode::BadReference,
                format!("Reference URI {u:?}: only URI=\"\" (the whole document) is allowed"),
            )
        }
        None => return err(ErrorCode::BadReference, "Reference without URI"),
    }
    let rk = element_children(reference)?;
    let transforms = match rk.first() {
        Some(t) if is_ds(*t, "Transforms") => *t,
        _ => {
            return err(
                ErrorCode::BadTransforms,
                "ds:Reference has no ds:Transforms",
            )
        }
    };
    let dm = expect_ds(rk.get(1), "DigestMethod", "Reference")?;
    let dv = expect_ds(rk.get(2), "DigestValue", "Reference")?;
    if rk.len() > 3 {
        return Err(structure("unexpected element after ds:DigestValue"));
    }

    // Transforms: first every Algorithm must be a profile URI, then exactly the sequence
    check_attrs(transforms, &[], ErrorCode::BadTransforms)?;
    let ts = element_children(transforms)?;
    let mut algs = Vec::new();
    for t in &ts {
        if !is_ds(*t, "Transform") {
            return err(
                ErrorCode::BadTransforms,
                format!("unexpected {} in ds:Transforms", t.tag_name().name()),
            );
        }
        check_attrs(*t, &["Algorithm"], ErrorCode::BadTransforms)?;
        let alg = t.attribute("Algorithm").unwrap_or("");
        if !PROFILE_ALGORITHMS.contains(&alg) {
            return err(
                ErrorCode::UnknownAlgorithm,
                format!("Transform Algorithm {alg:?} is outside the profile"),
            );
        }
        if !element_children(*t)?.is_empty() {
            return err(ErrorCode::BadTransforms, "a ds:Transform must be empty");
        }
        algs.push(alg);
    }
    if algs != [ALG_ENVELOPED, ALG_C14N_WITH_COMMENTS] {
        return err(
            ErrorCode::BadTransforms,
            format!("transforms {algs:?}: exactly enveloped-signature then C14N with comments"),
        );
    }
    check_method(dm, ALG_SHA256)?;
    check_attrs(dv, &[], ErrorCode::BadSignatureStructure)?;
    let digest = decode_base64(&text_only(dv)?, "DigestValue")?;
    if digest.len() != 32 {
        return err(
            ErrorCode::BadBase64,
            format!("DigestValue of {} bytes; SHA-256 has 32", digest.len()),
        );
    }

    // SignatureValue
    check_attrs(sv, &["Id"], ErrorCode::BadSignatureStructure)?;
    let signature_value = decode_base64(&text_only(sv)?, "SignatureValue")?;

    // KeyInfo / X509Data / X509Certificate
    check_attrs(key_info, &["Id"], ErrorCode::BadSignatureStructure)?;
    let ki = element_children(key_info)?;
    let x509data = match ki.as_slice() {
        [] => return err(ErrorCode::MissingCertificate, "empty ds:KeyInfo"),
        [one] if is_ds(*one, "X509Data") => *one,
        _ => {
            return Err(structure(
                "ds:KeyInfo must hold exactly one ds:X509Data and nothing else",
            ))
        }
    };
    check_attrs(x509data, &[], ErrorCode::BadSignatureStructure)?;
    let xd = element_children(x509data)?;
    let cert_el = match xd.as_slice() {
        [] => return err(ErrorCode::MissingCertificate, "empty ds:X509Data"),
        [one] if is_ds(*one, "X509Certificate") => *one,
        _ => {
            return Err(structure(
                "ds:X509Data must hold exactly one ds:X509Certificate and nothing else",
            ))
        }
    };
    check_attrs(cert_el, &[], ErrorCode::BadSignatureStructure)?;
    let cert_der = decode_base64(&text_only(cert_el)?, "X509Certificate")?;
    let certificate = Certificate::from_der(&cert_der)?;

    Ok(Parts {
        signature,
        signed_info,
        digest,
        signature_value,
        certificate,
    })
}

/// Comments are outside what `URI=""` signs: a comment anywhere is refused, so that
/// nothing unsigned can ride along (e.g. a comment inserted into a signed value).
fn refuse_comments(doc: &Document<'_>) -> Result<()> {
    if doc.descendants().any(|n| n.is_comment()) {
        return err(
            ErrorCode::CommentForbidden,
            "comments are refused: a Reference with URI=\"\" never signs them",
        );
    }
    Ok(())
}

/// Checks a document against the profile and verifies digest and signature value with the
/// certificate in KeyInfo. Profile violations and unparseable input are `Err`; a wrong
/// digest or signature value gives `Ok` with `signature_valid() == false` (and the
/// content accessors refuse). No trust decision is made here: see [`verify`].
pub fn verify_signature(xml: &[u8]) -> Result<Verified> {
    let doc = xml::parse(xml)?;
    let parts = check_profile(&doc)?;
    let key = parts.certificate.rsa_public_key()?.clone();

    refuse_comments(&doc)?;

    let signed_info = c14n::canonicalize_subtree(parts.signed_info, false);
    // URI="" dereferences to the document's node-set *without comment nodes* (XML-DSig
    // 4.3.3.3), so C14N#WithComments sees none; there are none anyway (refused above).
    let canonical = c14n::canonicalize_document(&doc, false, Some(parts.signature));

    let mut signature_errors = Vec::new();
    if Sha256::digest(&canonical).as_slice() != parts.digest.as_slice() {
        signature_errors.push(Error::new(
            ErrorCode::DigestMismatch,
            "the Reference digest does not match the signed content",
        ));
    }
    if key
        .verify(
            Pkcs1v15Sign::new::<Sha256>(),
            &Sha256::digest(&signed_info),
            &parts.signature_value,
        )
        .is_err()
    {
        signature_errors.push(Error::new(
            ErrorCode::SignatureInvalid,
            "the SignatureValue does not verify over SignedInfo with the certificate key",
        ));
    }

    // Act on what was verified: re-parse the canonical bytes.
    let limits = xml::Limits {
        max_bytes: xml::MAX_XML_BYTES * 5,
        ..xml::Limits::default()
    };
    let reparsed = xml::parse_with(&canonical, limits)?;
    let root = XmlElement::from_node(reparsed.root_element());
    drop(reparsed);

    Ok(Verified {
        signature_valid: signature_errors.is_empty(),
        signature_errors,
        certificate: parts.certificate,
        canonical,
        root,
    })
}

// ------------------------------------------------------------------ signer

fn wrap76(b64: &str) -> String {
    let mut s = String::with_capacity(b64.len() + b64.len() / 76 * 6);
    for (i, chunk) in b64.as_bytes().chunks(76).enumerate() {
        if i > 0 {
            s.push_str("&#13;\n");
        }
        s.push_str(&String::from_utf8_lossy(chunk));
    }
    s
}

fn signature_xml(digest_b64: &str, signature_value: &str, cert_b64: &str) -> String {
    format!(
        "<ds:Signature xmlns:ds=\"{NS_DSIG}\">\n\
<ds:SignedInfo>\n\
<ds:CanonicalizationMethod Algorithm=\"{ALG_C14N}\"/>\n\
<ds:SignatureMethod Algorithm=\"{ALG_RSA_SHA256}\"/>\n\
<ds:Reference URI=\"\">\n\
<ds:Transforms>\n\
<ds:Transform Algorithm=\"{ALG_ENVELOPED}\"/>\n\
<ds:Transform Algorithm=\"{ALG_C14N_WITH_COMMENTS}\"/>\n\
</ds:Transforms>\n\
<ds:DigestMethod Algorithm=\"{ALG_SHA256}\"/>\n\
<ds:DigestValue>{digest_b64}</ds:DigestValue>\n\
</ds:Reference>\n\
</ds:SignedInfo>\n\
<ds:SignatureValue>\n{signature_value}\n</ds:SignatureValue>\n\
<ds:KeyInfo>\n\
<ds:X509Data>\n\
<ds:X509Certificate>\n{cert_b64}\n</ds:X509Certificate>\n\
</ds:X509Data>\n\
</ds:KeyInfo>\n\
</ds:Signature>"
    )
}

const XML_DECL: &[u8] = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";

/// Signs `xml` in the profile: appends an enveloped `ds:Signature` as the last child of
/// the document element, with the certificate in KeyInfo and base64 wrapped at 76
/// characters with CR LF (the CR written as `&#13;`), as NCALayer does.
///
/// The output is the canonical form of the input with the Signature inserted, preceded
/// by an XML declaration: its signed content is exactly the input's.
/// Refused: input refused by the parser, a document with comments (`comment_forbidden`:
/// `URI=""` never signs comments), a document already holding a `ds:Signature`
/// (`multiple_signatures`), a key not matching the certificate (`key_mismatch`), an
/// output over the verifier's size limit (`too_large`).
pub fn sign_xml(xml: &[u8], key: &RsaPrivateKey, cert_der: &[u8]) -> Result<Vec<u8>> {
    let cert = Certificate::from_der(cert_der)?;
    if cert.rsa_public_key()? != &key.to_public_key() {
        return err(
            ErrorCode::KeyMismatch,
            "the private key does not match the certificate",
        );
    }
    let doc = xml::parse(xml)?;
    if doc.descendants().any(|n| is_ds(n, "Signature")) {
        return err(
            ErrorCode::MultipleSignatures,
            "the document already holds a ds:Signature",
        );
    }
    refuse_comments(&doc)?;
    let b64 = base64::engine::general_purpose::STANDARD;
    let digest = Sha256::digest(c14n::canonicalize_document(&doc, false, None));
    let digest_b64 = b64.encode(digest);
    let cert_b64 = wrap76(&b64.encode(cert_der));

    let assemble = |signature_value: &str| -> Vec<u8> {
        let sig = signature_xml(&digest_b64, signature_value, &cert_b64);
        let mut out = XML_DECL.to_vec();
        out.extend(c14n::canonicalize_document_inserting(
            &doc,
            false,
            None,
            Some(sig.as_bytes()),
        ));
        out
    };

    // Canonicalize SignedInfo as the verifier will: from the parsed output document.
    let draft = assemble("");
    let limits = xml::Limits {
        max_bytes: xml::MAX_XML_BYTES * 5,
        ..xml::Limits::default()
    };
    let draft_doc = xml::parse_with(&draft, limits)?;
    let signed_info = draft_doc
        .descendants()
        .find(|n| is_ds(*n, "SignedInfo"))
        .ok_or_else(|| structure("SignedInfo missing from the draft"))?;
    let si_c14n = c14n::canonicalize_subtree(signed_info, false);
    let sig = key
        .sign(Pkcs1v15Sign::new::<Sha256>(), &Sha256::digest(&si_c14n))
        .map_err(|e| Error::new(ErrorCode::KeyMismatch, format!("RSA signing failed: {e}")))?;
    let out = assemble(&wrap76(&b64.encode(sig)));
    if out.len() > xml::MAX_XML_BYTES {
        return err(
            ErrorCode::TooLarge,
            format!(
                "the signed document ({} bytes) would exceed the verifier's limit",
                out.len()
            ),
        );
    }
    Ok(out)
}
