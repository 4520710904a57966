//! Error codes shared by every module: stable snake_case strings.

use serde::Serialize;

/// A stable, machine-readable error code. `as_str()` (and serde) give the
/// snake_case string that callers and reports use; never renamed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    // --- certificates and chains ---
    /// No path from the certificate to a trusted CA.
    Untrusted,
    /// A certificate of the path is past its notAfter at the verification instant.
    Expired,
    /// A certificate of the path is before its notBefore at the verification instant.
    NotYetValid,
    /// A certificate of the path is listed in a loaded CRL of its issuer.
    Revoked,
    /// A certificate's (or CRL's) signature does not verify with its issuer's key.
    BadSignature,
    /// Unparseable or unacceptable DER / PEM / certificate content.
    Malformed,
    /// The signer's certificate is self-issued (subject == issuer).
    SelfSignedLeaf,
    /// More certificates than `MAX_CHAIN_LEN` would be needed or were supplied.
    ChainTooLong,
    // --- XML signature ---
    /// An Algorithm URI outside the profile (including any whitespace in it),
    /// or a certificate key / signature algorithm that is not supported.
    UnknownAlgorithm,
    /// Not exactly one Reference, or its URI is not `""`.
    BadReference,
    /// More than one `ds:Signature` element in the document.
    MultipleSignatures,
    /// No `ds:Signature` element in the document.
    MissingSignature,
    /// The Signature is not the last child element of the document element.
    SignatureNotLast,
    /// The Transforms are not exactly enveloped-signature then C14N-with-comments.
    BadTransforms,
    /// Elements, attributes or text inside the Signature outside the profile.
    BadSignatureStructure,
    /// The Reference digest does not match the signed content.
    DigestMismatch,
    /// The SignatureValue does not verify over SignedInfo with the certificate key.
    SignatureInvalid,
    /// Invalid or truncated base64 (or a decoded value of the wrong size).
    BadBase64,
    /// A comment in the document. XML-DSig (4.3.3.3) drops comments from the node-set of
    /// `URI=""`, so they are never covered by the digest: refused rather than ignored.
    CommentForbidden,
    /// A DOCTYPE was present (no DTD is ever processed).
    DtdForbidden,
    /// The document exceeds the size or node-count limit.
    TooLarge,
    /// The document exceeds the nesting-depth limit.
    TooDeep,
    /// The document starts with a byte-order mark.
    Bom,
    /// The document is not well-formed (namespace-aware) UTF-8 XML.
    MalformedXml,
    /// KeyInfo/X509Data/X509Certificate is missing.
    MissingCertificate,
    /// The signer certificate's key usage does not fit the purpose.
    WrongKeyUsage,
    /// The acted-on element is missing or present more than once.
    AmbiguousContent,
    /// The signer certificate's IIN is not the applicant's.
    IinMismatch,
    /// The private key given to the signer does not match the certificate.
    KeyMismatch,
    /// Reading or writing files (test CA tooling).
    Io,
}

impl ErrorCode {
    /// The stable snake_case string of this code.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Untrusted => "untrusted",
            ErrorCode::Expired => "expired",
            ErrorCode::NotYetValid => "not_yet_valid",
            ErrorCode::Revoked => "revoked",
            ErrorCode::BadSignature => "bad_signature",
            ErrorCode::Malformed => "malformed",
            ErrorCode::SelfSignedLeaf => "self_signed_leaf",
            ErrorCode::ChainTooLong => "chain_too_long",
            ErrorCode::UnknownAlgorithm => "unknown_algorithm",
            ErrorCode::BadReference => "bad_reference",
            ErrorCode::MultipleSignatures => "multiple_signatures",
            ErrorCode::MissingSignature => "missing_signature",
            ErrorCode::SignatureNotLast => "signature_not_last",
            ErrorCode::BadTransforms => "bad_transforms",
            ErrorCode::BadSignatureStructure => "bad_signature_structure",
            ErrorCode::DigestMismatch => "digest_mismatch",
            ErrorCode::SignatureInvalid => "signature_invalid",
            ErrorCode::BadBase64 => "bad_base64",
            ErrorCode::CommentForbidden => "comment_forbidden",
            ErrorCode::DtdForbidden => "dtd_forbidden",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::TooDeep => "too_deep",
            ErrorCode::Bom => "bom",
            ErrorCode::MalformedXml => "malformed_xml",
            ErrorCode::MissingCertificate => "missing_certificate",
            ErrorCode::WrongKeyUsage => "wrong_key_usage",
            ErrorCode::AmbiguousContent => "ambiguous_content",
            ErrorCode::IinMismatch => "iin_mismatch",
            ErrorCode::KeyMismatch => "key_mismatch",
            ErrorCode::Io => "io",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error: a stable code plus a human-readable message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{code}: {message}")]
pub struct Error {
    pub code: ErrorCode,
    pub message: String,
}

impl Error {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Error {
            code,
            message: message.into(),
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;

pub(crate) fn err<T>(code: ErrorCode, message: impl Into<String>) -> Result<T> {
    Err(Error::new(code, message))
}
