//! # kezek-pki
//!
//! NCA RK (Kazakhstan) certificates and the NCALayer XML signature profile for Kezek:
//!
//! * [`cert`]: X.509 parsing, subject fields / IIN, key-usage class, a [`cert::TrustStore`]
//!   of CA certificates and CRLs, chain validation;
//! * [`c14n`]: inclusive Canonical XML 1.0 (with and without comments) over a parsed tree;
//! * [`xmldsig`]: a strict verifier and a signer of the enveloped RSA-SHA256 profile;
//! * [`testca`]: a test CA issuing NCA-shaped AUTH and signing certificates, and CRLs.

pub mod c14n;
pub mod cert;
pub mod error;
pub mod testca;
pub mod xml;
pub mod xmldsig;

pub use cert::{CertInfo, Certificate, KeyUsageClass, SubjectInfo, TrustStore};
pub use error::{Error, ErrorCode, Result};
pub use rsa;
pub use xmldsig::{
    sign_xml, verify, verify_outcome, verify_signature, Outcome, Purpose, Report, Verified,
};
