//! A test CA shaped like NCA RK: a self-signed RSA-2048 root issuing, per person, an AUTH
//! certificate (KeyUsage digitalSignature+keyEncipherment, EKU clientAuth +
//! 1.2.398.3.3.4.1.1, policy 1.2.398.3.3.2.4) and a signing certificate (KeyUsage
//! digitalSignature+nonRepudiation, EKU emailProtection + 1.2.398.3.3.4.1.1, policy
//! 1.2.398.3.3.2.3), subject `CN=<surname name>, SURNAME=<surname>,
//! SERIALNUMBER=IIN<12 digits>, C=KZ, GIVENNAME=<patronymic>` (UTF-8). Also CRLs.
//!
//! For tests and local setups only: keys are written unencrypted (PKCS#8 PEM).

use std::path::{Path, PathBuf};
use std::time::Duration;

use const_oid::ObjectIdentifier;
use der::asn1::{BitString, GeneralizedTime, OctetString, SetOfVec, UtcTime};
use der::{Any, Decode, Encode, Tag};
use jiff::{SignedDuration, Timestamp};
use rand_core::{OsRng, RngCore};
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use rsa::{Pkcs1v15Sign, RsaPrivateKey, RsaPublicKey};
use sha2::{Digest, Sha256};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::crl::{CertificateList, RevokedCert, TbsCertList};
use x509_cert::ext::pkix::certpolicy::PolicyInformation;
pub use x509_cert::ext::pkix::KeyUsages as KeyUsageFlags;
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, CertificatePolicies, ExtendedKeyUsage, KeyUsage,
    KeyUsages, SubjectKeyIdentifier,
};
pub use x509_cert::ext::Extension;
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::{Time, Validity};
use x509_cert::{TbsCertificate, Version};

use crate::cert::{
    to_pem, Certificate, OID_EKU_CLIENT_AUTH, OID_EKU_EMAIL_PROTECTION, OID_EKU_NCA_INDIVIDUAL,
    OID_POLICY_NCA_AUTH, OID_POLICY_NCA_SIGN,
};
use crate::error::{err, Error, ErrorCode, Result};

/// RSA modulus size of generated keys.
pub const KEY_BITS: usize = 2048;

const OID_SHA256_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
const OID_CN: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.3");
const OID_SURNAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.4");
const OID_SERIALNUMBER: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.5");
const OID_C: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.6");
const OID_GIVENNAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.42");
const OID_EXT_CRL_NUMBER: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.20");

fn fail(what: &str, e: impl std::fmt::Display) -> Error {
    Error::new(ErrorCode::Malformed, format!("{what}: {e}"))
}

/// A person to issue keys for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    /// 12 digits.
    pub iin: String,
    pub surname: String,
    pub name: String,
    /// Goes to GIVENNAME, as NCA does.
    pub patronymic: String,
}

impl Person {
    pub fn new(iin: &str, surname: &str, name: &str, patronymic: &str) -> Person {
        Person {
            iin: iin.to_owned(),
            surname: surname.to_owned(),
            name: name.to_owned(),
            patronymic: patronymic.to_owned(),
        }
    }
}

/// Which of a person's two keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Auth,
    Sign,
}

impl KeyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::Auth => "auth",
            KeyKind::Sign => "sign",
        }
    }
}

/// A private key with its certificate.
#[derive(Debug, Clone)]
pub struct Issued {
    pub key: RsaPrivateKey,
    pub certificate: Certificate,
}

impl Issued {
    /// The private key as unencrypted PKCS#8 PEM.
    pub fn key_pem(&self) -> Result<String> {
        key_to_pem(&self.key)
    }
    pub fn cert_pem(&self) -> String {
        self.certificate.to_pem()
    }
}

/// A person's AUTH and signing keys.
#[derive(Debug, Clone)]
pub struct PersonKeys {
    pub auth: Issued,
    pub sign: Issued,
}

/// Generates an RSA-2048 key (slow in unoptimized builds).
pub fn generate_key() -> Result<RsaPrivateKey> {
    RsaPrivateKey::new(&mut OsRng, KEY_BITS).map_err(|e| fail("RSA key generation", e))
}

/// PKCS#8 PEM of a private key.
pub fn key_to_pem(key: &RsaPrivateKey) -> Result<String> {
    key.to_pkcs8_pem(LineEnding::LF)
        .map(|z| z.to_string())
        .map_err(|e| fail("PKCS#8 encoding", e))
}

/// Reads a PKCS#8 PEM private key.
pub fn key_from_pem(pem: &str) -> Result<RsaPrivateKey> {
    RsaPrivateKey::from_pkcs8_pem(pem).map_err(|e| fail("PKCS#8 key", e))
}

fn sha256_rsa() -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned {
        oid: OID_SHA256_RSA,
        parameters: Some(Any::null()),
    }
}

fn x509_time(t: Timestamp) -> Result<Time> {
    let secs = u64::try_from(t.as_second()).map_err(|e| fail("time before 1970", e))?;
    let d = Duration::from_secs(secs);
    // RFC 5280: UTCTime through 2049, GeneralizedTime from 2050
    if t.as_second() < 2_524_608_000 {
        Ok(Time::UtcTime(
            UtcTime::from_unix_duration(d).map_err(|e| fail("UTCTime", e))?,
        ))
    } else {
        Ok(Time::GeneralTime(
            GeneralizedTime::from_unix_duration(d).map_err(|e| fail("GeneralizedTime", e))?,
        ))
    }
}

fn rdn(oid: ObjectIdentifier, tag: Tag, value: &str) -> Result<RelativeDistinguishedName> {
    let atv = AttributeTypeAndValue {
        oid,
        value: Any::new(tag, value.as_bytes()).map_err(|e| fail("name attribute", e))?,
    };
    let set = SetOfVec::try_from(vec![atv]).map_err(|e| fail("RDN", e))?;
    Ok(RelativeDistinguishedName(set))
}

/// `C=KZ, CN=<common_name>`, the RDN order of `ҰКО 3.0 (RSA TEST)`.
pub fn ca_name(common_name: &str) -> Result<Name> {
    Ok(RdnSequence(vec![
        rdn(OID_C, Tag::PrintableString, "KZ")?,
        rdn(OID_CN, Tag::Utf8String, common_name)?,
    ]))
}

/// `CN=<surname name>, SURNAME=<surname>, SERIALNUMBER=IIN<iin>, C=KZ, GIVENNAME=<patronymic>`.
pub fn person_name(p: &Person) -> Result<Name> {
    if p.iin.len() != 12 || !p.iin.bytes().all(|b| b.is_ascii_digit()) {
        return err(
            ErrorCode::Malformed,
            format!("IIN {:?} is not 12 digits", p.iin),
        );
    }
    Ok(RdnSequence(vec![
        rdn(
            OID_CN,
            Tag::Utf8String,
            &format!("{} {}", p.surname, p.name),
        )?,
        rdn(OID_SURNAME, Tag::Utf8String, &p.surname)?,
        rdn(
            OID_SERIALNUMBER,
            Tag::PrintableString,
            &format!("IIN{}", p.iin),
        )?,
        rdn(OID_C, Tag::PrintableString, "KZ")?,
        rdn(OID_GIVENNAME, Tag::Utf8String, &p.patronymic)?,
    ]))
}

fn random_serial() -> Result<SerialNumber> {
    let mut b = [0u8; 16];
    OsRng.fill_bytes(&mut b);
    b[0] &= 0x7F;
    b[0] |= 0x10; // positive, 16 significant bytes
    SerialNumber::new(&b).map_err(|e| fail("serial", e))
}

fn spki_of(key: &RsaPublicKey) -> Result<SubjectPublicKeyInfoOwned> {
    let der = key
        .to_public_key_der()
        .map_err(|e| fail("public key encoding", e))?;
    SubjectPublicKeyInfoOwned::from_der(der.as_bytes()).map_err(|e| fail("SPKI", e))
}

fn key_id(spki: &SubjectPublicKeyInfoOwned) -> Result<OctetString> {
    // RFC 5280 method 1 uses SHA-1; SHA-256 truncated to 20 bytes is as good for tests.
    let digest = Sha256::digest(spki.subject_public_key.raw_bytes());
    OctetString::new(&digest[..20]).map_err(|e| fail("key id", e))
}

/// An extension from its OID, criticality and DER-encodable value.
pub fn ext<T: Encode>(oid: ObjectIdentifier, critical: bool, value: &T) -> Result<Extension> {
    let der = value.to_der().map_err(|e| fail("extension", e))?;
    Ok(Extension {
        extn_id: oid,
        critical,
        extn_value: OctetString::new(der).map_err(|e| fail("extension", e))?,
    })
}

fn sign_der(key: &RsaPrivateKey, tbs_der: &[u8]) -> Result<BitString> {
    let sig = key
        .sign(Pkcs1v15Sign::new::<Sha256>(), &Sha256::digest(tbs_der))
        .map_err(|e| fail("RSA signing", e))?;
    BitString::from_bytes(&sig).map_err(|e| fail("signature", e))
}

const OID_EXT_KU: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.15");
const OID_EXT_EKU: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.37");
const OID_EXT_BC: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.19");
const OID_EXT_CP: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.32");
const OID_EXT_SKI: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.14");
const OID_EXT_AKI: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.35");

/// Builds and signs a certificate. `issuer` = None: self-signed with `signer`.
fn build_cert(
    signer: &RsaPrivateKey,
    issuer: Option<&Name>,
    subject: Name,
    subject_key: &RsaPublicKey,
    not_before: Timestamp,
    not_after: Timestamp,
    mut extensions: Vec<Extension>,
) -> Result<Certificate> {
    let spki = spki_of(subject_key)?;
    let issuer_spki = spki_of(&signer.to_public_key())?;
    extensions.push(ext(
        OID_EXT_SKI,
        false,
        &SubjectKeyIdentifier(key_id(&spki)?),
    )?);
    if issuer.is_some() {
        extensions.push(ext(
            OID_EXT_AKI,
            false,
            &AuthorityKeyIdentifier {
                key_identifier: Some(key_id(&issuer_spki)?),
                authority_cert_issuer: None,
                authority_cert_serial_number: None,
            },
        )?);
    }
    let tbs = TbsCertificate {
        version: Version::V3,
        serial_number: random_serial()?,
        signature: sha256_rsa(),
        issuer: issuer.cloned().unwrap_or_else(|| subject.clone()),
        validity: Validity {
            not_before: x509_time(not_before)?,
            not_after: x509_time(not_after)?,
        },
        subject,
        subject_public_key_info: spki,
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: Some(extensions),
    };
    let tbs_der = tbs.to_der().map_err(|e| fail("TBSCertificate", e))?;
    let cert = x509_cert::Certificate {
        tbs_certificate: tbs,
        signature_algorithm: sha256_rsa(),
        signature: sign_der(signer, &tbs_der)?,
    };
    Certificate::from_der(&cert.to_der().map_err(|e| fail("certificate", e))?)
}

fn ca_extensions() -> Result<Vec<Extension>> {
    Ok(vec![
        ext(
            OID_EXT_BC,
            true,
            &BasicConstraints {
                ca: true,
                path_len_constraint: None,
            },
        )?,
        ext(
            OID_EXT_KU,
            true,
            &KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign),
        )?,
    ])
}

/// The NCA-shaped extensions of a person's AUTH or signing certificate.
pub fn person_extensions(kind: KeyKind) -> Result<Vec<Extension>> {
    let (ku, eku, policy) = match kind {
        KeyKind::Auth => (
            KeyUsages::DigitalSignature | KeyUsages::KeyEncipherment,
            OID_EKU_CLIENT_AUTH,
            OID_POLICY_NCA_AUTH,
        ),
        KeyKind::Sign => (
            KeyUsages::DigitalSignature | KeyUsages::NonRepudiation,
            OID_EKU_EMAIL_PROTECTION,
            OID_POLICY_NCA_SIGN,
        ),
    };
    Ok(vec![
        ext(OID_EXT_KU, true, &KeyUsage(ku))?,
        ext(
            OID_EXT_EKU,
            false,
            &ExtendedKeyUsage(vec![eku, OID_EKU_NCA_INDIVIDUAL]),
        )?,
        ext(
            OID_EXT_CP,
            false,
            &CertificatePolicies(vec![PolicyInformation {
                policy_identifier: policy,
                policy_qualifiers: None,
            }]),
        )?,
    ])
}

/// One year (365 days) after `t`.
pub fn one_year_after(t: Timestamp) -> Result<Timestamp> {
    t.checked_add(SignedDuration::from_hours(24 * 365))
        .map_err(|e| fail("time", e))
}

/// A certificate authority for tests.
#[derive(Debug, Clone)]
pub struct TestCa {
    key: RsaPrivateKey,
    name: Name,
    certificate: Certificate,
}

impl TestCa {
    /// A new self-signed root with a fresh RSA-2048 key, valid 10 years from `not_before`.
    pub fn generate(common_name: &str, not_before: Timestamp) -> Result<TestCa> {
        let not_after = not_before
            .checked_add(SignedDuration::from_hours(24 * 3653))
            .map_err(|e| fail("time", e))?;
        TestCa::with_key(generate_key()?, common_name, not_before, not_after)
    }

    /// A self-signed root over an existing key.
    pub fn with_key(
        key: RsaPrivateKey,
        common_name: &str,
        not_before: Timestamp,
        not_after: Timestamp,
    ) -> Result<TestCa> {
        let name = ca_name(common_name)?;
        let certificate = build_cert(
            &key,
            None,
            name.clone(),
            &key.to_public_key(),
            not_before,
            not_after,
            ca_extensions()?,
        )?;
        Ok(TestCa {
            key,
            name,
            certificate,
        })
    }

    /// An intermediate CA issued by `self` over `key`.
    pub fn issue_sub_ca(
        &self,
        key: RsaPrivateKey,
        common_name: &str,
        not_before: Timestamp,
        not_after: Timestamp,
    ) -> Result<TestCa> {
        let name = ca_name(common_name)?;
        let certificate = build_cert(
            &self.key,
            Some(&self.name),
            name.clone(),
            &key.to_public_key(),
            not_before,
            not_after,
            ca_extensions()?,
        )?;
        Ok(TestCa {
            key,
            name,
            certificate,
        })
    }

    /// Reloads a CA from its key and certificate.
    pub fn from_parts(key: RsaPrivateKey, certificate: Certificate) -> Result<TestCa> {
        if certificate.rsa_public_key()? != &key.to_public_key() {
            return err(
                ErrorCode::KeyMismatch,
                "the key does not match the CA certificate",
            );
        }
        let parsed = x509_cert::Certificate::from_der(certificate.der())
            .map_err(|e| fail("certificate", e))?;
        Ok(TestCa {
            key,
            name: parsed.tbs_certificate.subject,
            certificate,
        })
    }

    pub fn certificate(&self) -> &Certificate {
        &self.certificate
    }

    pub fn key(&self) -> &RsaPrivateKey {
        &self.key
    }

    /// Issues a certificate of `kind` for `person` over `public_key`, valid
    /// `not_before..=not_after`.
    pub fn issue_for_key(
        &self,
        public_key: &RsaPublicKey,
        person: &Person,
        kind: KeyKind,
        not_before: Timestamp,
        not_after: Timestamp,
    ) -> Result<Certificate> {
        build_cert(
            &self.key,
            Some(&self.name),
            person_name(person)?,
            public_key,
            not_before,
            not_after,
            person_extensions(kind)?,
        )
    }

    /// Issues a certificate for `person` with exactly the given extensions (plus SKI/AKI):
    /// for tests of certificates outside the NCA profile.
    pub fn issue_with_extensions(
        &self,
        public_key: &RsaPublicKey,
        person: &Person,
        extensions: Vec<Extension>,
        not_before: Timestamp,
        not_after: Timestamp,
    ) -> Result<Certificate> {
        build_cert(
            &self.key,
            Some(&self.name),
            person_name(person)?,
            public_key,
            not_before,
            not_after,
            extensions,
        )
    }

    /// A fresh key and a one-year certificate of `kind` for `person`.
    pub fn issue(&self, person: &Person, kind: KeyKind, not_before: Timestamp) -> Result<Issued> {
        let key = generate_key()?;
        let certificate = self.issue_for_key(
            &key.to_public_key(),
            person,
            kind,
            not_before,
            one_year_after(not_before)?,
        )?;
        Ok(Issued { key, certificate })
    }

    /// A person's AUTH and signing keys and certificates (one year from `not_before`).
    pub fn issue_person(&self, person: &Person, not_before: Timestamp) -> Result<PersonKeys> {
        Ok(PersonKeys {
            auth: self.issue(person, KeyKind::Auth, not_before)?,
            sign: self.issue(person, KeyKind::Sign, not_before)?,
        })
    }

    /// A DER CRL of this CA revoking the given serials (hex), CRL number `number`.
    pub fn crl(
        &self,
        revoked_serials_hex: &[&str],
        this_update: Timestamp,
        next_update: Timestamp,
        number: u32,
    ) -> Result<Vec<u8>> {
        let mut revoked = Vec::new();
        for s in revoked_serials_hex {
            revoked.push(RevokedCert {
                serial_number: SerialNumber::new(&hex_to_bytes(s)?)
                    .map_err(|e| fail("serial", e))?,
                revocation_date: x509_time(this_update)?,
                crl_entry_extensions: None,
            });
        }
        let number =
            der::asn1::Uint::new(&number.to_be_bytes()).map_err(|e| fail("CRL number", e))?;
        let tbs = TbsCertList {
            version: Version::V2,
            signature: sha256_rsa(),
            issuer: self.name.clone(),
            this_update: x509_time(this_update)?,
            next_update: Some(x509_time(next_update)?),
            revoked_certificates: if revoked.is_empty() {
                None
            } else {
                Some(revoked)
            },
            crl_extensions: Some(vec![ext(OID_EXT_CRL_NUMBER, false, &number)?]),
        };
        let tbs_der = tbs.to_der().map_err(|e| fail("TBSCertList", e))?;
        let crl = CertificateList {
            tbs_cert_list: tbs,
            signature_algorithm: sha256_rsa(),
            signature: sign_der(&self.key, &tbs_der)?,
        };
        crl.to_der().map_err(|e| fail("CRL", e))
    }
}

/// A self-signed (non-CA) certificate of `kind` for `person`: what a verifier must refuse.
pub fn self_signed_person(
    key: &RsaPrivateKey,
    person: &Person,
    kind: KeyKind,
    not_before: Timestamp,
    not_after: Timestamp,
) -> Result<Certificate> {
    build_cert(
        key,
        None,
        person_name(person)?,
        &key.to_public_key(),
        not_before,
        not_after,
        person_extensions(kind)?,
    )
}

fn hex_to_bytes(s: &str) -> Result<Vec<u8>> {
    let s = s.trim();
    let padded = if s.len() % 2 == 1 {
        format!("0{s}")
    } else {
        s.to_owned()
    };
    (0..padded.len())
        .step_by(2)
        .map(|i| {
            padded
                .get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| Error::new(ErrorCode::Malformed, format!("bad hex serial {s:?}")))
        })
        .collect()
}

/// Files written by [`write_test_pki`].
#[derive(Debug, Clone)]
pub struct WrittenPki {
    pub ca: TestCa,
    pub people: Vec<(Person, PersonKeys)>,
    pub files: Vec<PathBuf>,
}

fn write(dir: &Path, name: &str, content: &str, files: &mut Vec<PathBuf>) -> Result<()> {
    let path = dir.join(name);
    std::fs::write(&path, content)
        .map_err(|e| Error::new(ErrorCode::Io, format!("{}: {e}", path.display())))?;
    files.push(path);
    Ok(())
}

/// Generates a root CA named `ca_common_name` and, for each person, AUTH and signing keys
/// and certificates valid one year from `not_before`; writes into `dir`:
/// `ca.pem`, `ca.key.pem`, and `<iin>_auth.pem`, `<iin>_auth.key.pem`, `<iin>_sign.pem`,
/// `<iin>_sign.key.pem` (keys as unencrypted PKCS#8 PEM).
pub fn write_test_pki(
    dir: &Path,
    ca_common_name: &str,
    people: &[Person],
    not_before: Timestamp,
) -> Result<WrittenPki> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::new(ErrorCode::Io, format!("{}: {e}", dir.display())))?;
    let ca = TestCa::generate(ca_common_name, not_before)?;
    let mut files = Vec::new();
    write(dir, "ca.pem", &ca.certificate.to_pem(), &mut files)?;
    write(dir, "ca.key.pem", &key_to_pem(&ca.key)?, &mut files)?;
    let mut issued = Vec::new();
    for p in people {
        let keys = ca.issue_person(p, not_before)?;
        for (kind, k) in [(KeyKind::Auth, &keys.auth), (KeyKind::Sign, &keys.sign)] {
            write(
                dir,
                &format!("{}_{}.pem", p.iin, kind.as_str()),
                &k.cert_pem(),
                &mut files,
            )?;
            write(
                dir,
                &format!("{}_{}.key.pem", p.iin, kind.as_str()),
                &k.key_pem()?,
                &mut files,
            )?;
        }
        issued.push((p.clone(), keys));
    }
    Ok(WrittenPki {
        ca,
        people: issued,
        files,
    })
}

/// Writes a DER CRL file (`name`) into `dir`; also a PEM copy `name.pem`.
pub fn write_crl(dir: &Path, name: &str, crl_der: &[u8]) -> Result<()> {
    let mut files = Vec::new();
    let path = dir.join(name);
    std::fs::write(&path, crl_der)
        .map_err(|e| Error::new(ErrorCode::Io, format!("{}: {e}", path.display())))?;
    write(
        dir,
        &format!("{name}.pem"),
        &to_pem("X509 CRL", crl_der),
        &mut files,
    )
}
