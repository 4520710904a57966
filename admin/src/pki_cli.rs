//! `kezek pki ...`: the trust store in the data folder, certificate inspection, XML
//! signature verification, and the development tools standing in for NCALayer.
//!
//! The trust store is plain files beside the sled store (`DATA/pki/ca/*.der`,
//! `DATA/pki/crl/*.der`), so it can be managed while `kezek serve` holds the store.

use std::path::{Path, PathBuf};

use clap::{Subcommand, ValueEnum};
use jiff::Timestamp;
use kezek_pki::testca::{self, Person};
use kezek_pki::{Certificate, Purpose, TrustStore};
use sha2::{Digest, Sha256};

use crate::cli::Failure;

/// The largest certificate, CRL or XML file read.
const MAX_PKI_FILE_BYTES: u64 = 4 * 1024 * 1024;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum PurposeArg {
    Auth,
    Sign,
}

#[derive(Subcommand, Debug)]
pub enum PkiCmd {
    /// Trusted CA certificates.
    Trust {
        #[command(subcommand)]
        what: TrustCmd,
    },
    /// Certificate revocation lists (accepted only if signed by a trusted CA).
    Crl {
        #[command(subcommand)]
        what: CrlCmd,
    },
    /// Show a certificate: subject fields, IIN, key usage class, validity, serial.
    Inspect { cert: PathBuf },
    /// Verify an XML signature in the NCALayer profile.
    Verify {
        file: PathBuf,
        /// Verification instant (RFC 3339); default now.
        #[arg(long)]
        at: Option<String>,
        #[arg(long, value_enum, default_value = "sign")]
        purpose: PurposeArg,
    },
    /// Make a test CA and, for each IIN, AUTH and signing keys with NCA-profile certificates.
    TestCa {
        dir: PathBuf,
        #[arg(long = "iin", required = true)]
        iins: Vec<String>,
        /// Start of validity (RFC 3339); default now. Certificates are valid one year.
        #[arg(long)]
        not_before: Option<String>,
    },
    /// Sign an XML document in the NCALayer profile (prints the signed document).
    SignXml {
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        cert: PathBuf,
        file: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
pub enum TrustCmd {
    /// Add CA certificates (PEM, possibly several, or DER).
    Add { file: PathBuf },
    /// List the trusted CAs.
    List,
}

#[derive(Subcommand, Debug)]
pub enum CrlCmd {
    /// Add a CRL (PEM or DER).
    Add { file: PathBuf },
}

fn fail(exit: i32, e: kezek_pki::Error) -> Failure {
    Failure {
        exit,
        code: e.code.as_str().to_string(),
        message: e.message,
    }
}

fn io(path: &Path, e: std::io::Error) -> Failure {
    Failure {
        exit: 4,
        code: "unreadable_file".into(),
        message: format!("{}: {e}", path.display()),
    }
}

fn read(path: &Path) -> Result<Vec<u8>, Failure> {
    let meta = std::fs::metadata(path).map_err(|e| io(path, e))?;
    if meta.len() > MAX_PKI_FILE_BYTES {
        return Err(Failure {
            exit: 4,
            code: "too_large".into(),
            message: format!("{}: larger than {MAX_PKI_FILE_BYTES} bytes", path.display()),
        });
    }
    std::fs::read(path).map_err(|e| io(path, e))
}

fn pki_dir(data: &Path, sub: &str) -> PathBuf {
    data.join("pki").join(sub)
}

fn files_in(dir: &Path) -> Result<Vec<PathBuf>, Failure> {
    if !dir.exists() {
        return Ok(Vec::new());
    }
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "der"))
        .collect();
    v.sort();
    Ok(v)
}

/// The trust store of a data folder: its CAs, then its CRLs.
pub fn load_trust(data: &Path) -> Result<TrustStore, Failure> {
    let mut trust = TrustStore::new();
    for f in files_in(&pki_dir(data, "ca"))? {
        trust.add_ca_bytes(&read(&f)?).map_err(|e| fail(1, e))?;
    }
    for f in files_in(&pki_dir(data, "crl"))? {
        trust.add_crl(&read(&f)?).map_err(|e| fail(1, e))?;
    }
    Ok(trust)
}

fn save(dir: &Path, der: &[u8]) -> Result<PathBuf, Failure> {
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let name = hex::encode(&Sha256::digest(der)[..12]);
    let path = dir.join(format!("{name}.der"));
    // Write then rename: a crash never leaves half a certificate in the trust store.
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, der).map_err(|e| io(&tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| io(&path, e))?;
    Ok(path)
}

fn parse_at(at: Option<String>) -> Result<Timestamp, Failure> {
    match at {
        None => Ok(Timestamp::now()),
        Some(s) => s.parse().map_err(|e| Failure {
            exit: 4,
            code: "invalid_date".into(),
            message: format!("--at: '{s}' is not an RFC 3339 instant ({e})"),
        }),
    }
}

fn print_json(v: &impl serde::Serialize) {
    match serde_json::to_string_pretty(v) {
        Ok(s) => println!("{s}"),
        Err(e) => eprintln!("cannot render JSON: {e}"),
    }
}

pub fn run(data: &Path, cmd: PkiCmd, json: bool) -> Result<(), Failure> {
    match cmd {
        PkiCmd::Trust {
            what: TrustCmd::Add { file },
        } => {
            let certs = Certificate::parse_all(&read(&file)?).map_err(|e| fail(4, e))?;
            // Check every certificate before writing any.
            if let Some(c) = certs.iter().find(|c| !c.is_ca()) {
                return Err(Failure {
                    exit: 4,
                    code: "not_a_ca".into(),
                    message: format!(
                        "{}: certificate {} is not a CA certificate",
                        file.display(),
                        c.serial_hex()
                    ),
                });
            }
            for c in &certs {
                save(&pki_dir(data, "ca"), c.der())?;
                let info = c.info();
                println!(
                    "trusted {} (serial {})",
                    info.subject.common_name.clone().unwrap_or_default(),
                    c.serial_hex()
                );
            }
        }
        PkiCmd::Trust {
            what: TrustCmd::List,
        } => {
            let trust = load_trust(data)?;
            for c in trust.anchors() {
                let i = c.info();
                println!(
                    "{} · serial {} · valid {} – {}",
                    i.subject.common_name.clone().unwrap_or_default(),
                    c.serial_hex(),
                    i.not_before,
                    i.not_after
                );
            }
            println!("{} CRL(s)", trust.crls().len());
        }
        PkiCmd::Crl {
            what: CrlCmd::Add { file },
        } => {
            let bytes = read(&file)?;
            let mut trust = load_trust(data)?;
            // The trust store verifies the CRL's signature against a trusted CA.
            let crl = trust.add_crl(&bytes).map_err(|e| fail(3, e))?;
            let summary = format!(
                "CRL of {} number {} · this update {} · {} revoked",
                crl.issuer_common_name().unwrap_or("?"),
                crl.number().unwrap_or("?"),
                crl.this_update(),
                crl.revoked_serials().len()
            );
            let der = if bytes.starts_with(b"-----") {
                pem_to_der(&bytes)?
            } else {
                bytes
            };
            save(&pki_dir(data, "crl"), &der)?;
            println!("{summary}");
        }
        PkiCmd::Inspect { cert } => {
            let c = Certificate::parse(&read(&cert)?).map_err(|e| fail(4, e))?;
            let i = c.info();
            if json {
                print_json(i);
            } else {
                let s = &i.subject;
                println!(
                    "subject      CN={} SURNAME={} GIVENNAME={} SERIALNUMBER={} C={}",
                    s.common_name.clone().unwrap_or_default(),
                    s.surname.clone().unwrap_or_default(),
                    s.given_name.clone().unwrap_or_default(),
                    s.serial_number.clone().unwrap_or_default(),
                    s.country.clone().unwrap_or_default()
                );
                println!(
                    "issuer       {}",
                    i.issuer_common_name.clone().unwrap_or_default()
                );
                println!(
                    "IIN          {}",
                    i.iin.clone().unwrap_or_else(|| "—".into())
                );
                println!("key usage    {}", c.key_usage_class().as_str());
                println!("valid        {} – {}", i.not_before, i.not_after);
                println!("serial       {}", c.serial_hex());
            }
        }
        PkiCmd::Verify { file, at, purpose } => {
            let xml = read(&file)?;
            let trust = load_trust(data)?;
            let at = parse_at(at)?;
            let purpose = match purpose {
                PurposeArg::Auth => Purpose::Auth,
                PurposeArg::Sign => Purpose::Sign,
            };
            let report = kezek_pki::verify(&xml, &trust, at, purpose);
            if json {
                print_json(&report);
            } else {
                println!("{}", if report.valid { "valid" } else { "NOT valid" });
                println!(
                    "signature {}",
                    if report.signature_valid {
                        "valid"
                    } else {
                        "invalid"
                    }
                );
                if let Some(s) = &report.signer {
                    println!(
                        "signer    {} · IIN {} · serial {}",
                        s.common_name.clone().unwrap_or_default(),
                        s.iin.clone().unwrap_or_default(),
                        s.serial
                    );
                }
                for e in &report.errors {
                    println!("error[{}]: {}", e.code.as_str(), e.message);
                }
            }
            if !report.valid {
                let first = report.errors.first();
                return Err(Failure {
                    exit: 3,
                    code: first
                        .map(|e| e.code.as_str().to_string())
                        .unwrap_or_else(|| "not_valid".into()),
                    message: "the signature is not valid".into(),
                });
            }
        }
        PkiCmd::TestCa {
            dir,
            iins,
            not_before,
        } => {
            let start = parse_at(not_before)?;
            let mut people = Vec::new();
            for (k, iin) in iins.iter().enumerate() {
                if iin.len() != 12 || !iin.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(Failure {
                        exit: 4,
                        code: "invalid_iin".into(),
                        message: format!("--iin: '{iin}' is not 12 digits"),
                    });
                }
                people.push(Person::new(
                    iin,
                    &format!("ТЕСТОВ{}", k + 1),
                    "ТЕСТ",
                    "ТЕСТОВИЧ",
                ));
            }
            let written = testca::write_test_pki(&dir, "KEZEK TEST CA (RSA)", &people, start)
                .map_err(|e| fail(1, e))?;
            for f in &written.files {
                println!("{}", f.display());
            }
        }
        PkiCmd::SignXml { key, cert, file } => {
            let key_pem = String::from_utf8(read(&key)?).map_err(|_| Failure {
                exit: 4,
                code: "invalid_key".into(),
                message: format!("{}: not a PEM file", key.display()),
            })?;
            let key = testca::key_from_pem(&key_pem).map_err(|e| fail(4, e))?;
            let cert = Certificate::parse(&read(&cert)?).map_err(|e| fail(4, e))?;
            let signed =
                kezek_pki::sign_xml(&read(&file)?, &key, cert.der()).map_err(|e| fail(4, e))?;
            use std::io::Write;
            std::io::stdout()
                .write_all(&signed)
                .map_err(|e| io(Path::new("stdout"), e))?;
        }
    }
    Ok(())
}

fn pem_to_der(bytes: &[u8]) -> Result<Vec<u8>, Failure> {
    let text = std::str::from_utf8(bytes).map_err(|_| Failure {
        exit: 4,
        code: "malformed".into(),
        message: "the PEM file is not text".into(),
    })?;
    let b64: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|e| Failure {
            exit: 4,
            code: "malformed".into(),
            message: format!("PEM: {e}"),
        })
}
