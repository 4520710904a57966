//! X.509 certificates of the NCA RK profile: parsing, subject fields, key-usage class,
//! a trust store of CA certificates and CRLs, and chain validation.
//!
//! Names are compared as DER-encoded RDN sequences taken byte-for-byte from the
//! certificate (never via the Authority Key Identifier, which some NCA certificates
//! carry in a 4-byte form). Signatures: RSA PKCS#1 v1.5 with SHA-1/256/384/512.

use std::collections::BTreeSet;
use std::ops::Range;

use base64::Engine as _;
use const_oid::ObjectIdentifier;
use der::{Decode, Reader, SliceReader, Tagged};
use jiff::Timestamp;
use rsa::pkcs1::DecodeRsaPublicKey;
use rsa::traits::PublicKeyParts;
use rsa::{Pkcs1v15Sign, RsaPublicKey};
use serde::Serialize;
use sha2::Digest;
use x509_cert::ext::pkix::{BasicConstraints, CertificatePolicies, ExtendedKeyUsage, KeyUsage};

use crate::error::{err, Error, ErrorCode, Result};

/// Largest certificate accepted (DER bytes).
pub const MAX_CERT_BYTES: usize = 64 * 1024;
/// Largest CRL accepted (DER bytes). NCA's full CRLs are a few MiB.
pub const MAX_CRL_BYTES: usize = 32 * 1024 * 1024;
/// Most certificates in a chain: leaf + intermediates + trust anchor.
pub const MAX_CHAIN_LEN: usize = 8;
/// Most PEM blocks read from one bundle.
pub const MAX_PEM_BLOCKS: usize = 64;
/// Most trust anchors and CRLs a store holds.
pub const MAX_STORE_ENTRIES: usize = 256;
/// Smallest RSA modulus accepted for any signature (bits).
pub const MIN_RSA_BITS: usize = 2048;
/// Largest RSA modulus accepted (bits).
pub const MAX_RSA_BITS: usize = 8192;

// ---- OIDs ----
const OID_CN: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.3");
const OID_SURNAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.4");
const OID_SERIALNUMBER: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.5");
const OID_C: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.6");
const OID_L: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.7");
const OID_ST: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.8");
const OID_O: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.10");
const OID_OU: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.11");
const OID_GIVENNAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.42");
const OID_EMAIL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.1");

const OID_RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const OID_SHA1_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.5");
const OID_SHA256_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
const OID_SHA384_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.12");
const OID_SHA512_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.13");

const OID_EXT_SKI: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.14");
const OID_EXT_KU: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.15");
const OID_EXT_SAN: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.17");
const OID_EXT_BC: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.19");
const OID_EXT_CRL_NUMBER: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.20");
const OID_EXT_CRL_REASON: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.21");
const OID_EXT_CP: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.32");
const OID_EXT_AKI: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.35");
const OID_EXT_EKU: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.37");

/// EKU id-kp-clientAuth.
pub const OID_EKU_CLIENT_AUTH: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.2");
/// EKU id-kp-emailProtection.
pub const OID_EKU_EMAIL_PROTECTION: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.4");
/// NCA RK's "individual" EKU (1.2.398.3.3.4.1.1).
pub const OID_EKU_NCA_INDIVIDUAL: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.398.3.3.4.1.1");
/// NCA RK policy of signing keys.
pub const OID_POLICY_NCA_SIGN: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.398.3.3.2.3");
/// NCA RK policy of AUTH keys.
pub const OID_POLICY_NCA_AUTH: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.398.3.3.2.4");

/// What a certificate's key may be used for, in Kezek's terms.
///
/// Classification (see [`Certificate::key_usage_class`]):
/// * an *auth indicator* is EKU clientAuth, or KeyUsage digitalSignature+keyEncipherment;
/// * a *sign indicator* is KeyUsage nonRepudiation, or EKU emailProtection.
///
/// Precedence: neither wins. A certificate with only auth indicators is `auth`, one with
/// only sign indicators is `sign`; one with both (conflicting profile), none, a CA
/// certificate, or a KeyUsage without digitalSignature/nonRepudiation is `unknown`, which
/// fits no purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyUsageClass {
    Auth,
    Sign,
    Unknown,
}

impl KeyUsageClass {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyUsageClass::Auth => "auth",
            KeyUsageClass::Sign => "sign",
            KeyUsageClass::Unknown => "unknown",
        }
    }
}

/// Subject attributes of interest, as UTF-8 strings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SubjectInfo {
    /// CN
    pub common_name: Option<String>,
    /// SURNAME (2.5.4.4)
    pub surname: Option<String>,
    /// GIVENNAME (2.5.4.42): the patronymic in NCA certificates
    pub given_name: Option<String>,
    /// SERIALNUMBER (2.5.4.5): `IIN` + 12 digits for individuals
    pub serial_number: Option<String>,
    /// C
    pub country: Option<String>,
    /// L
    pub locality: Option<String>,
    /// ST
    pub state: Option<String>,
    /// E (emailAddress)
    pub email: Option<String>,
    /// O
    pub organization: Option<String>,
    /// OU: `BIN` + 12 digits for legal entities
    pub organizational_unit: Option<String>,
}

/// What Kezek needs to know about a certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CertInfo {
    pub subject: SubjectInfo,
    /// The issuer's CN, if any.
    pub issuer_common_name: Option<String>,
    /// The 12 digits after `IIN` in SERIALNUMBER (no check digit is demanded: the CA vouches).
    pub iin: Option<String>,
    /// The 12 digits after `BIN` in OU, for legal entities.
    pub bin: Option<String>,
    /// Serial number, uppercase hex without a sign byte.
    pub serial: String,
    pub not_before: Timestamp,
    pub not_after: Timestamp,
    pub key_usage: KeyUsageClass,
    /// Certificate policy OIDs (dotted).
    pub policies: Vec<String>,
}

/// An RSA PKCS#1 v1.5 signature algorithm accepted in certificates and CRLs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SigAlg {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl SigAlg {
    fn from_alg(alg: &spki::AlgorithmIdentifierOwned) -> Option<SigAlg> {
        // parameters must be absent or NULL
        if let Some(p) = &alg.parameters {
            if p.tag() != der::Tag::Null || !p.value().is_empty() {
                return None;
            }
        }
        match alg.oid {
            o if o == OID_SHA1_RSA => Some(SigAlg::Sha1),
            o if o == OID_SHA256_RSA => Some(SigAlg::Sha256),
            o if o == OID_SHA384_RSA => Some(SigAlg::Sha384),
            o if o == OID_SHA512_RSA => Some(SigAlg::Sha512),
            _ => None,
        }
    }

    pub(crate) fn verify(self, key: &RsaPublicKey, msg: &[u8], sig: &[u8]) -> bool {
        let res = match self {
            SigAlg::Sha1 => key.verify(
                Pkcs1v15Sign::new::<sha1::Sha1>(),
                &sha1::Sha1::digest(msg),
                sig,
            ),
            SigAlg::Sha256 => key.verify(
                Pkcs1v15Sign::new::<sha2::Sha256>(),
                &sha2::Sha256::digest(msg),
                sig,
            ),
            SigAlg::Sha384 => key.verify(
                Pkcs1v15Sign::new::<sha2::Sha384>(),
                &sha2::Sha384::digest(msg),
                sig,
            ),
            SigAlg::Sha512 => key.verify(
                Pkcs1v15Sign::new::<sha2::Sha512>(),
                &sha2::Sha512::digest(msg),
                sig,
            ),
        };
        res.is_ok()
    }
}

/// A parsed X.509 certificate.
#[derive(Clone, Debug)]
pub struct Certificate {
    der: Vec<u8>,
    tbs: Range<usize>,
    sig_alg: Option<SigAlg>,
    sig_alg_oid: String,
    signature: Vec<u8>,
    issuer_raw: Vec<u8>,
    subject_raw: Vec<u8>,
    public_key: std::result::Result<RsaPublicKey, String>,
    key_usage: Option<KeyUsage>,
    ext_key_usage: Vec<ObjectIdentifier>,
    is_ca: bool,
    path_len: Option<u8>,
    unknown_critical: Vec<String>,
    serial_bytes: Vec<u8>,
    info: CertInfo,
}

impl PartialEq for Certificate {
    fn eq(&self, other: &Self) -> bool {
        self.der == other.der
    }
}
impl Eq for Certificate {}

fn malformed(what: &str, e: impl std::fmt::Display) -> Error {
    Error::new(ErrorCode::Malformed, format!("{what}: {e}"))
}

/// Splits `SEQUENCE { tbs, algorithm, BIT STRING }` returning the range of the raw TBS TLV
/// within `der` and the signature bytes. Rejects trailing data.
fn split_signed(der: &[u8]) -> der::Result<(Range<usize>, Vec<u8>)> {
    let mut r = SliceReader::new(der)?;
    let (tbs, sig) = r.sequence(|r| {
        let tbs = r.tlv_bytes()?;
        let _alg = r.tlv_bytes()?;
        let sig = der::asn1::BitStringRef::decode(r)?;
        let bytes = sig
            .as_bytes()
            .ok_or_else(|| {
                der::Error::from(der::ErrorKind::Noncanonical {
                    tag: der::Tag::BitString,
                })
            })?
            .to_vec();
        Ok((tbs, bytes))
    })?;
    r.finish(())?;
    // `tbs` borrows from `der`: its offset is the pointer difference.
    let start = (tbs.as_ptr() as usize).wrapping_sub(der.as_ptr() as usize);
    if start
        .checked_add(tbs.len())
        .is_none_or(|end| end > der.len())
    {
        return Err(der::ErrorKind::Failed.into());
    }
    Ok((start..start + tbs.len(), sig))
}

/// Returns (issuer, subject) raw Name TLVs of a TBSCertificate.
fn tbs_names(tbs: &[u8]) -> der::Result<(Vec<u8>, Vec<u8>)> {
    let mut r = SliceReader::new(tbs)?;
    let out = r.sequence(|r| {
        if r.peek_byte() == Some(0xA0) {
            r.tlv_bytes()?; // [0] version
        }
        r.tlv_bytes()?; // serialNumber
        r.tlv_bytes()?; // signature
        let issuer = r.tlv_bytes()?.to_vec();
        r.tlv_bytes()?; // validity
        let subject = r.tlv_bytes()?.to_vec();
        while !r.is_finished() {
            r.tlv_bytes()?;
        }
        Ok((issuer, subject))
    })?;
    r.finish(out)
}

/// Returns the raw issuer Name TLV of a TBSCertList.
fn tbs_crl_issuer(tbs: &[u8]) -> der::Result<Vec<u8>> {
    let mut r = SliceReader::new(tbs)?;
    let out = r.sequence(|r| {
        if r.peek_byte() == Some(0x02) {
            r.tlv_bytes()?; // version
        }
        r.tlv_bytes()?; // signature
        let issuer = r.tlv_bytes()?.to_vec();
        while !r.is_finished() {
            r.tlv_bytes()?;
        }
        Ok(issuer)
    })?;
    r.finish(out)
}

fn time_to_ts(t: x509_cert::time::Time) -> Result<Timestamp> {
    let secs = i64::try_from(t.to_unix_duration().as_secs())
        .map_err(|e| malformed("time out of range", e))?;
    Timestamp::from_second(secs).map_err(|e| malformed("time out of range", e))
}

/// Uppercase hex of an INTEGER's magnitude (leading sign/zero bytes dropped).
fn serial_magnitude(bytes: &[u8]) -> Vec<u8> {
    let mut b = bytes;
    while b.len() > 1 && b[0] == 0 {
        b = &b[1..];
    }
    b.to_vec()
}

fn hex_upper(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02X}");
    }
    s
}

/// Decodes a DirectoryString-like attribute value to UTF-8.
fn decode_string(any: &der::Any) -> Result<String> {
    let v = any.value();
    let tag = u8::from(any.tag());
    let ascii = |v: &[u8]| -> Result<String> {
        if v.is_ascii() {
            Ok(String::from_utf8_lossy(v).into_owned())
        } else {
            Err(Error::new(
                ErrorCode::Malformed,
                "non-ASCII byte in an ASCII string",
            ))
        }
    };
    match tag {
        0x0C => std::str::from_utf8(v)
            .map(str::to_owned)
            .map_err(|e| malformed("bad UTF8String", e)),
        0x13 | 0x16 | 0x1A => ascii(v),
        0x14 => Ok(v.iter().map(|&b| char::from(b)).collect()),
        0x1E => {
            if v.len() % 2 != 0 {
                return err(ErrorCode::Malformed, "odd-length BMPString");
            }
            let units: Vec<u16> = v
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16(&units).map_err(|e| malformed("bad BMPString", e))
        }
        0x1C => {
            if v.len() % 4 != 0 {
                return err(ErrorCode::Malformed, "bad UniversalString length");
            }
            v.chunks_exact(4)
                .map(|c| {
                    char::from_u32(u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                        .ok_or_else(|| Error::new(ErrorCode::Malformed, "bad UniversalString"))
                })
                .collect()
        }
        _ => err(
            ErrorCode::Malformed,
            format!("unsupported string type in a name (tag 0x{tag:02x})"),
        ),
    }
}

fn name_attrs(name: &x509_cert::name::Name) -> Result<Vec<(ObjectIdentifier, String)>> {
    let mut out = Vec::new();
    for rdn in name.0.iter() {
        for atv in rdn.0.iter() {
            let known = [
                OID_CN,
                OID_SURNAME,
                OID_SERIALNUMBER,
                OID_C,
                OID_L,
                OID_ST,
                OID_O,
                OID_OU,
                OID_GIVENNAME,
                OID_EMAIL,
            ];
            if known.contains(&atv.oid) {
                out.push((atv.oid, decode_string(&atv.value)?));
            }
        }
    }
    Ok(out)
}

fn subject_info(attrs: &[(ObjectIdentifier, String)]) -> Result<SubjectInfo> {
    let mut s = SubjectInfo::default();
    for (oid, value) in attrs {
        // Identity-bearing attributes must not repeat; for the others the first one is kept.
        let (slot, strict) = match *oid {
            o if o == OID_CN => (&mut s.common_name, true),
            o if o == OID_SURNAME => (&mut s.surname, true),
            o if o == OID_GIVENNAME => (&mut s.given_name, true),
            o if o == OID_SERIALNUMBER => (&mut s.serial_number, true),
            o if o == OID_C => (&mut s.country, true),
            o if o == OID_L => (&mut s.locality, false),
            o if o == OID_ST => (&mut s.state, false),
            o if o == OID_EMAIL => (&mut s.email, false),
            o if o == OID_O => (&mut s.organization, false),
            o if o == OID_OU => (&mut s.organizational_unit, false),
            _ => continue,
        };
        if slot.is_some() {
            if strict {
                return err(
                    ErrorCode::Malformed,
                    format!("subject attribute {oid} appears more than once"),
                );
            }
            continue;
        }
        *slot = Some(value.clone());
    }
    Ok(s)
}

/// `prefix` followed by exactly 12 ASCII digits -> the digits.
fn twelve_digits_after(value: Option<&String>, prefix: &str) -> Option<String> {
    let rest = value?.strip_prefix(prefix)?;
    if rest.len() == 12 && rest.bytes().all(|b| b.is_ascii_digit()) {
        Some(rest.to_owned())
    } else {
        None
    }
}

impl Certificate {
    /// Parses one certificate, PEM (`-----BEGIN CERTIFICATE-----`) or DER.
    pub fn parse(bytes: &[u8]) -> Result<Certificate> {
        if looks_like_pem(bytes) {
            let blocks = pem_blocks(bytes, "CERTIFICATE")?;
            match blocks.as_slice() {
                [one] => Certificate::from_der(one),
                _ => err(
                    ErrorCode::Malformed,
                    format!("expected one PEM certificate, found {}", blocks.len()),
                ),
            }
        } else {
            Certificate::from_der(bytes)
        }
    }

    /// Parses every certificate of a PEM bundle (or one DER certificate).
    pub fn parse_all(bytes: &[u8]) -> Result<Vec<Certificate>> {
        if looks_like_pem(bytes) {
            pem_blocks(bytes, "CERTIFICATE")?
                .iter()
                .map(|b| Certificate::from_der(b))
                .collect()
        } else {
            Ok(vec![Certificate::from_der(bytes)?])
        }
    }

    /// Parses a PEM certificate.
    pub fn from_pem(bytes: &[u8]) -> Result<Certificate> {
        if !looks_like_pem(bytes) {
            return err(ErrorCode::Malformed, "not PEM");
        }
        Certificate::parse(bytes)
    }

    /// Parses a DER certificate.
    pub fn from_der(der: &[u8]) -> Result<Certificate> {
        if der.len() > MAX_CERT_BYTES {
            return err(ErrorCode::Malformed, "certificate larger than the limit");
        }
        let (tbs, signature) = split_signed(der).map_err(|e| malformed("certificate DER", e))?;
        let (issuer_raw, subject_raw) =
            tbs_names(&der[tbs.clone()]).map_err(|e| malformed("TBSCertificate", e))?;
        let parsed =
            x509_cert::Certificate::from_der(der).map_err(|e| malformed("certificate", e))?;
        let tbsc = &parsed.tbs_certificate;
        if parsed.signature_algorithm != tbsc.signature {
            return err(
                ErrorCode::Malformed,
                "signatureAlgorithm differs from the TBSCertificate signature field",
            );
        }
        let sig_alg = SigAlg::from_alg(&parsed.signature_algorithm);
        let sig_alg_oid = parsed.signature_algorithm.oid.to_string();

        let spki = &tbsc.subject_public_key_info;
        let public_key = if spki.algorithm.oid == OID_RSA_ENCRYPTION {
            match spki.subject_public_key.as_bytes() {
                Some(b) => RsaPublicKey::from_pkcs1_der(b)
                    .map_err(|e| format!("bad RSA public key: {e}"))
                    .and_then(|k| {
                        let bits = k.size() * 8;
                        if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
                            Err(format!(
                                "RSA key of {bits} bits is outside {MIN_RSA_BITS}..={MAX_RSA_BITS}"
                            ))
                        } else {
                            Ok(k)
                        }
                    }),
                None => Err("bad RSA public key bit string".to_owned()),
            }
        } else {
            Err(format!(
                "public key algorithm {} is not supported (RSA only)",
                spki.algorithm.oid
            ))
        };

        let mut key_usage = None;
        let mut ext_key_usage = Vec::new();
        let mut is_ca = false;
        let mut path_len = None;
        let mut policies = Vec::new();
        let mut unknown_critical = Vec::new();
        let mut seen = BTreeSet::new();
        for ext in tbsc.extensions.iter().flatten() {
            if !seen.insert(ext.extn_id) {
                return err(
                    ErrorCode::Malformed,
                    format!("extension {} appears more than once", ext.extn_id),
                );
            }
            let value = ext.extn_value.as_bytes();
            match ext.extn_id {
                o if o == OID_EXT_KU => {
                    key_usage =
                        Some(KeyUsage::from_der(value).map_err(|e| malformed("KeyUsage", e))?)
                }
                o if o == OID_EXT_EKU => {
                    ext_key_usage = ExtendedKeyUsage::from_der(value)
                        .map_err(|e| malformed("ExtendedKeyUsage", e))?
                        .0
                }
                o if o == OID_EXT_BC => {
                    let bc = BasicConstraints::from_der(value)
                        .map_err(|e| malformed("BasicConstraints", e))?;
                    is_ca = bc.ca;
                    path_len = bc.path_len_constraint;
                }
                o if o == OID_EXT_CP => {
                    let cp = CertificatePolicies::from_der(value)
                        .map_err(|e| malformed("CertificatePolicies", e))?;
                    policies =
                        cp.0.iter()
                            .map(|p| p.policy_identifier.to_string())
                            .collect();
                }
                o if o == OID_EXT_SKI || o == OID_EXT_AKI || o == OID_EXT_SAN => {}
                other => {
                    if ext.critical {
                        unknown_critical.push(other.to_string());
                    }
                }
            }
        }

        let subject_attrs = name_attrs(&tbsc.subject)?;
        let subject = subject_info(&subject_attrs)?;
        let issuer_cn = name_attrs(&tbsc.issuer)?
            .into_iter()
            .find(|(o, _)| *o == OID_CN)
            .map(|(_, v)| v);
        let serial_bytes = serial_magnitude(tbsc.serial_number.as_bytes());
        let not_before = time_to_ts(tbsc.validity.not_before)?;
        let not_after = time_to_ts(tbsc.validity.not_after)?;

        let mut cert = Certificate {
            der: der.to_vec(),
            tbs,
            sig_alg,
            sig_alg_oid,
            signature,
            issuer_raw,
            subject_raw,
            public_key,
            key_usage,
            ext_key_usage,
            is_ca,
            path_len,
            unknown_critical,
            info: CertInfo {
                iin: twelve_digits_after(subject.serial_number.as_ref(), "IIN"),
                bin: twelve_digits_after(subject.organizational_unit.as_ref(), "BIN"),
                subject,
                issuer_common_name: issuer_cn,
                serial: hex_upper(&serial_bytes),
                not_before,
                not_after,
                key_usage: KeyUsageClass::Unknown,
                policies,
            },
            serial_bytes,
        };
        cert.info.key_usage = cert.compute_key_usage_class();
        Ok(cert)
    }

    /// The DER encoding.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// PEM encoding (64-column base64).
    pub fn to_pem(&self) -> String {
        to_pem("CERTIFICATE", &self.der)
    }

    /// Subject fields, IIN, serial, validity, key-usage class.
    pub fn info(&self) -> &CertInfo {
        &self.info
    }

    /// Serial as uppercase hex.
    pub fn serial_hex(&self) -> &str {
        &self.info.serial
    }

    /// The key-usage class (see [`KeyUsageClass`] for the rules).
    pub fn key_usage_class(&self) -> KeyUsageClass {
        self.info.key_usage
    }

    /// True if BasicConstraints says cA.
    pub fn is_ca(&self) -> bool {
        self.is_ca
    }

    /// Subject Name == issuer Name (DER).
    pub fn is_self_issued(&self) -> bool {
        self.subject_raw == self.issuer_raw
    }

    /// The raw DER of the subject Name.
    pub fn subject_der(&self) -> &[u8] {
        &self.subject_raw
    }

    /// The raw DER of the issuer Name.
    pub fn issuer_der(&self) -> &[u8] {
        &self.issuer_raw
    }

    /// The RSA public key, or `unknown_algorithm` if the key is not a supported RSA key.
    pub fn rsa_public_key(&self) -> Result<&RsaPublicKey> {
        self.public_key
            .as_ref()
            .map_err(|m| Error::new(ErrorCode::UnknownAlgorithm, m.clone()))
    }

    /// Is the certificate within its validity period at `at` (bounds inclusive)?
    pub fn check_validity(&self, at: Timestamp) -> Result<()> {
        if at < self.info.not_before {
            return err(
                ErrorCode::NotYetValid,
                format!(
                    "certificate {} is not valid before {} (checked at {at})",
                    self.info.serial, self.info.not_before
                ),
            );
        }
        if at > self.info.not_after {
            return err(
                ErrorCode::Expired,
                format!(
                    "certificate {} expired at {} (checked at {at})",
                    self.info.serial, self.info.not_after
                ),
            );
        }
        Ok(())
    }

    fn compute_key_usage_class(&self) -> KeyUsageClass {
        if self.is_ca {
            return KeyUsageClass::Unknown;
        }
        let ku = self.key_usage.as_ref();
        if let Some(k) = ku {
            if !k.digital_signature() && !k.non_repudiation() {
                return KeyUsageClass::Unknown;
            }
        }
        let eku_has = |o: ObjectIdentifier| self.ext_key_usage.contains(&o);
        let auth = eku_has(OID_EKU_CLIENT_AUTH)
            || ku.is_some_and(|k| k.digital_signature() && k.key_encipherment());
        let sign = eku_has(OID_EKU_EMAIL_PROTECTION) || ku.is_some_and(|k| k.non_repudiation());
        match (auth, sign) {
            (true, false) => KeyUsageClass::Auth,
            (false, true) => KeyUsageClass::Sign,
            _ => KeyUsageClass::Unknown,
        }
    }

    /// May this certificate issue certificates (cA, and keyCertSign if KeyUsage is present)?
    fn can_sign_certs(&self) -> bool {
        self.is_ca && self.key_usage.as_ref().is_none_or(|k| k.key_cert_sign())
    }

    /// May this certificate sign CRLs (cA, and cRLSign if KeyUsage is present)?
    fn can_sign_crls(&self) -> bool {
        self.is_ca && self.key_usage.as_ref().is_none_or(|k| k.crl_sign())
    }

    /// Verifies `self`'s signature with `issuer`'s key.
    fn verify_signed_by(&self, issuer: &Certificate) -> Result<()> {
        verify_with(
            issuer,
            &self.der[self.tbs.clone()],
            self.sig_alg,
            &self.sig_alg_oid,
            &self.signature,
        )
        .map_err(|e| {
            Error::new(
                e.code,
                format!("certificate {}: {}", self.info.serial, e.message),
            )
        })
    }
}

fn verify_with(
    issuer: &Certificate,
    tbs: &[u8],
    alg: Option<SigAlg>,
    alg_oid: &str,
    sig: &[u8],
) -> Result<()> {
    let key = issuer.rsa_public_key()?;
    let Some(alg) = alg else {
        return err(
            ErrorCode::UnknownAlgorithm,
            format!("signature algorithm {alg_oid} is not supported"),
        );
    };
    if alg.verify(key, tbs, sig) {
        Ok(())
    } else {
        err(
            ErrorCode::BadSignature,
            format!(
                "signature does not verify with the key of {}",
                issuer.info.subject.common_name.as_deref().unwrap_or("?")
            ),
        )
    }
}

// ---------------------------------------------------------------- PEM

fn looks_like_pem(bytes: &[u8]) -> bool {
    let trimmed = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .map_or(&bytes[..0], |i| &bytes[i..]);
    trimmed.starts_with(b"-----BEGIN ")
}

/// Extracts the base64 payloads of every `-----BEGIN <label>-----` block.
pub(crate) fn pem_blocks(bytes: &[u8], label: &str) -> Result<Vec<Vec<u8>>> {
    let text = std::str::from_utf8(bytes).map_err(|e| malformed("PEM is not UTF-8", e))?;
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("-----BEGIN ") {
        let after = &rest[i..];
        if !after.starts_with(&begin) {
            // a block of another kind (e.g. a private key): skip past it
            let Some(j) = after.find("-----END ") else {
                return err(ErrorCode::Malformed, "unterminated PEM block");
            };
            let tail = &after[j + 9..];
            let Some(k) = tail.find("-----") else {
                return err(ErrorCode::Malformed, "unterminated PEM END line");
            };
            rest = &tail[k + 5..];
            continue;
        }
        let body_start = &after[begin.len()..];
        let Some(j) = body_start.find(&end) else {
            return err(ErrorCode::Malformed, format!("missing {end}"));
        };
        let body: String = body_start[..j]
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        if body.contains(':') {
            return err(ErrorCode::Malformed, "PEM headers are not supported");
        }
        let der = base64::engine::general_purpose::STANDARD
            .decode(body.as_bytes())
            .map_err(|e| malformed("PEM base64", e))?;
        out.push(der);
        if out.len() > MAX_PEM_BLOCKS {
            return err(ErrorCode::Malformed, "too many PEM blocks");
        }
        rest = &body_start[j + end.len()..];
    }
    if out.is_empty() {
        return err(ErrorCode::Malformed, format!("no {begin} block"));
    }
    Ok(out)
}

pub(crate) fn to_pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut s = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        s.push_str(&String::from_utf8_lossy(chunk));
        s.push('\n');
    }
    s.push_str(&format!("-----END {label}-----\n"));
    s
}

// ---------------------------------------------------------------- CRL

const CRL_REASON_REMOVE_FROM_CRL: u8 = 8;

/// A certificate revocation list whose signature was verified against a trusted CA.
#[derive(Clone, Debug)]
pub struct Crl {
    issuer_raw: Vec<u8>,
    issuer_common_name: Option<String>,
    this_update: Timestamp,
    next_update: Option<Timestamp>,
    number: Option<String>,
    revoked: BTreeSet<Vec<u8>>,
}

impl Crl {
    pub fn issuer_common_name(&self) -> Option<&str> {
        self.issuer_common_name.as_deref()
    }
    pub fn this_update(&self) -> Timestamp {
        self.this_update
    }
    pub fn next_update(&self) -> Option<Timestamp> {
        self.next_update
    }
    /// The CRL number (hex), if the extension is present.
    pub fn number(&self) -> Option<&str> {
        self.number.as_deref()
    }
    /// Revoked serials, uppercase hex.
    pub fn revoked_serials(&self) -> Vec<String> {
        self.revoked.iter().map(|s| hex_upper(s)).collect()
    }
    /// Is the serial (hex, any case, leading zeros allowed) listed?
    pub fn is_revoked_hex(&self, serial_hex: &str) -> bool {
        let t = serial_hex.trim_start_matches('0');
        self.revoked.iter().any(|s| {
            hex_upper(&serial_magnitude(s))
                .trim_start_matches('0')
                .eq_ignore_ascii_case(t)
        })
    }
    fn lists(&self, cert: &Certificate) -> bool {
        self.issuer_raw == cert.issuer_raw && self.revoked.contains(&cert.serial_bytes)
    }
}

struct ParsedCrl {
    tbs: Range<usize>,
    sig_alg: Option<SigAlg>,
    sig_alg_oid: String,
    signature: Vec<u8>,
    crl: Crl,
}

fn parse_crl(der: &[u8]) -> Result<ParsedCrl> {
    if der.len() > MAX_CRL_BYTES {
        return err(ErrorCode::Malformed, "CRL larger than the limit");
    }
    let (tbs, signature) = split_signed(der).map_err(|e| malformed("CRL DER", e))?;
    let issuer_raw = tbs_crl_issuer(&der[tbs.clone()]).map_err(|e| malformed("TBSCertList", e))?;
    let parsed = x509_cert::crl::CertificateList::from_der(der).map_err(|e| malformed("CRL", e))?;
    let t = &parsed.tbs_cert_list;
    if parsed.signature_algorithm != t.signature {
        return err(
            ErrorCode::Malformed,
            "CRL signatureAlgorithm differs from the TBSCertList signature field",
        );
    }
    let mut number = None;
    for ext in t.crl_extensions.iter().flatten() {
        if ext.extn_id == OID_EXT_CRL_NUMBER {
            let n = der::asn1::UintRef::from_der(ext.extn_value.as_bytes())
                .map_err(|e| malformed("CRLNumber", e))?;
            number = Some(hex_upper(n.as_bytes()));
        }
    }
    let mut revoked = BTreeSet::new();
    for rc in t.revoked_certificates.iter().flatten() {
        let mut removed = false;
        for ext in rc.crl_entry_extensions.iter().flatten() {
            if ext.extn_id == OID_EXT_CRL_REASON {
                // CRLReason ::= ENUMERATED: 0a 01 NN
                if ext.extn_value.as_bytes() == [0x0a, 0x01, CRL_REASON_REMOVE_FROM_CRL] {
                    removed = true;
                }
            }
        }
        if !removed {
            revoked.insert(serial_magnitude(rc.serial_number.as_bytes()));
        }
    }
    let issuer_common_name = name_attrs(&t.issuer)?
        .into_iter()
        .find(|(o, _)| *o == OID_CN)
        .map(|(_, v)| v);
    Ok(ParsedCrl {
        tbs,
        sig_alg: SigAlg::from_alg(&parsed.signature_algorithm),
        sig_alg_oid: parsed.signature_algorithm.oid.to_string(),
        signature,
        crl: Crl {
            issuer_raw,
            issuer_common_name,
            this_update: time_to_ts(t.this_update)?,
            next_update: t.next_update.map(time_to_ts).transpose()?,
            number,
            revoked,
        },
    })
}

// ---------------------------------------------------------------- trust store

/// The result of a chain validation: leaf first, trust anchor last.
#[derive(Clone, Debug)]
pub struct ValidatedChain {
    pub certificates: Vec<Certificate>,
}

/// Trusted CA certificates (roots or intermediates: partial chains are allowed) and CRLs.
#[derive(Clone, Debug, Default)]
pub struct TrustStore {
    anchors: Vec<Certificate>,
    crls: Vec<Crl>,
}

enum Hop {
    Anchor(usize),
    Intermediate(usize),
}

impl TrustStore {
    pub fn new() -> TrustStore {
        TrustStore::default()
    }

    /// Trusts a CA certificate (BasicConstraints cA required). Duplicates are ignored.
    pub fn add_ca(&mut self, cert: Certificate) -> Result<()> {
        if !cert.is_ca {
            return err(
                ErrorCode::Malformed,
                format!(
                    "certificate {} is not a CA certificate (BasicConstraints cA is not set)",
                    cert.info.serial
                ),
            );
        }
        if self.anchors.contains(&cert) {
            return Ok(());
        }
        if self.anchors.len() >= MAX_STORE_ENTRIES {
            return err(ErrorCode::TooLarge, "too many trusted CAs");
        }
        self.anchors.push(cert);
        Ok(())
    }

    /// Trusts every CA certificate of a PEM bundle or a DER certificate; returns the count.
    pub fn add_ca_bytes(&mut self, pem_or_der: &[u8]) -> Result<usize> {
        let certs = Certificate::parse_all(pem_or_der)?;
        let n = certs.len();
        for c in certs {
            self.add_ca(c)?;
        }
        Ok(n)
    }

    /// Adds a CRL (DER or PEM `X509 CRL`). Accepted only if its signature verifies with a
    /// trusted CA whose subject equals the CRL issuer: otherwise `untrusted` (no such CA)
    /// or `bad_signature`.
    pub fn add_crl(&mut self, pem_or_der: &[u8]) -> Result<&Crl> {
        let der = if looks_like_pem(pem_or_der) {
            let blocks = pem_blocks(pem_or_der, "X509 CRL")?;
            match <[Vec<u8>; 1]>::try_from(blocks) {
                Ok([one]) => one,
                Err(_) => return err(ErrorCode::Malformed, "expected one PEM CRL"),
            }
        } else {
            pem_or_der.to_vec()
        };
        let p = parse_crl(&der)?;
        if self.crls.len() >= MAX_STORE_ENTRIES {
            return err(ErrorCode::TooLarge, "too many CRLs");
        }
        let mut last_err = None;
        for ca in self
            .anchors
            .iter()
            .filter(|a| a.subject_raw == p.crl.issuer_raw)
        {
            if !ca.can_sign_crls() {
                last_err = Some(Error::new(
                    ErrorCode::Untrusted,
                    "the CA named as CRL issuer may not sign CRLs (KeyUsage lacks cRLSign)",
                ));
                continue;
            }
            match verify_with(
                ca,
                &der[p.tbs.clone()],
                p.sig_alg,
                &p.sig_alg_oid,
                &p.signature,
            ) {
                Ok(()) => {
                    self.crls.push(p.crl);
                    let i = self.crls.len() - 1;
                    return Ok(&self.crls[i]);
                }
                Err(e) => last_err = Some(e),
            }
        }
        Err(last_err.unwrap_or_else(|| {
            Error::new(
                ErrorCode::Untrusted,
                format!(
                    "no trusted CA named as the CRL issuer ({})",
                    p.crl.issuer_common_name.as_deref().unwrap_or("?")
                ),
            )
        }))
    }

    pub fn anchors(&self) -> &[Certificate] {
        &self.anchors
    }

    pub fn crls(&self) -> &[Crl] {
        &self.crls
    }

    /// Validates `leaf` at instant `at` (UTC), building a path through `intermediates`
    /// (any order) up to a trusted CA. Errors: `chain_too_long`, `self_signed_leaf`,
    /// `untrusted`, `bad_signature`, `unknown_algorithm`, `malformed` (unknown critical
    /// extension), `not_yet_valid`, `expired`, `revoked`.
    ///
    /// Revocation: a certificate listed in any loaded CRL of its issuer is revoked,
    /// whatever the revocation date (CRLs are loaded current).
    pub fn validate(
        &self,
        leaf: &Certificate,
        intermediates: &[Certificate],
        at: Timestamp,
    ) -> Result<ValidatedChain> {
        if intermediates.len() + 2 > MAX_CHAIN_LEN {
            return err(
                ErrorCode::ChainTooLong,
                format!("at most {} intermediates", MAX_CHAIN_LEN - 2),
            );
        }
        if leaf.is_self_issued() {
            return err(
                ErrorCode::SelfSignedLeaf,
                format!(
                    "certificate {} is self-issued (subject equals issuer)",
                    leaf.info.serial
                ),
            );
        }
        let mut used = vec![false; intermediates.len()];
        let mut sig_err: Option<Error> = None;
        let hops = self
            .find_path(leaf, intermediates, &mut used, 1, &mut sig_err)
            .ok_or_else(|| {
                sig_err.unwrap_or_else(|| {
                    Error::new(
                        ErrorCode::Untrusted,
                        format!(
                            "no path from certificate {} (issuer {}) to a trusted CA",
                            leaf.info.serial,
                            leaf.info.issuer_common_name.as_deref().unwrap_or("?")
                        ),
                    )
                })
            })?;
        let mut path = vec![leaf.clone()];
        for h in &hops {
            path.push(match h {
                Hop::Anchor(i) => self.anchors[*i].clone(),
                Hop::Intermediate(i) => intermediates[*i].clone(),
            });
        }
        // Path length constraints: the CA at position k (1-based from the leaf) has k-1
        // intermediate CAs below it.
        for (k, ca) in path.iter().enumerate().skip(1) {
            if let Some(pl) = ca.path_len {
                if k - 1 > usize::from(pl) {
                    return err(
                        ErrorCode::Untrusted,
                        format!("pathLenConstraint of {} exceeded", ca.info.serial),
                    );
                }
            }
        }
        for c in &path {
            if let Some(oid) = c.unknown_critical.first() {
                return err(
                    ErrorCode::Malformed,
                    format!(
                        "certificate {} has an unsupported critical extension {oid}",
                        c.info.serial
                    ),
                );
            }
        }
        for c in &path {
            c.check_validity(at)?;
        }
        for c in &path {
            if self.crls.iter().any(|crl| crl.lists(c)) {
                return err(
                    ErrorCode::Revoked,
                    format!(
                        "certificate {} is revoked by its issuer's CRL",
                        c.info.serial
                    ),
                );
            }
        }
        Ok(ValidatedChain { certificates: path })
    }

    fn find_path(
        &self,
        current: &Certificate,
        pool: &[Certificate],
        used: &mut [bool],
        depth: usize,
        sig_err: &mut Option<Error>,
    ) -> Option<Vec<Hop>> {
        if depth >= MAX_CHAIN_LEN {
            return None;
        }
        for (i, a) in self.anchors.iter().enumerate() {
            if a.subject_raw != current.issuer_raw || !a.can_sign_certs() {
                continue;
            }
            match current.verify_signed_by(a) {
                Ok(()) => return Some(vec![Hop::Anchor(i)]),
                Err(e) => *sig_err = Some(e),
            }
        }
        for i in 0..pool.len() {
            let c = &pool[i];
            if used[i] || c.subject_raw != current.issuer_raw || !c.can_sign_certs() {
                continue;
            }
            match current.verify_signed_by(c) {
                Ok(()) => {
                    used[i] = true;
                    if let Some(mut rest) = self.find_path(c, pool, used, depth + 1, sig_err) {
                        rest.insert(0, Hop::Intermediate(i));
                        return Some(rest);
                    }
                    used[i] = false;
                }
                Err(e) => *sig_err = Some(e),
            }
        }
        None
    }
}
