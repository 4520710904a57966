//! The parent's flow: signature login, the application journal, and signed recall and
//! extension requests (issue 4; domain.md section 7).
//!
//! ```text
//! POST /api/citizen/challenge            -> {"xml": "<login>..nonce, expiry..</login>"}
//! POST /api/citizen/login                {"signed_xml"}  AUTH key        -> {"token", "email_required"}
//! POST /api/citizen/email                {"email"}       first login    -> {"iin", "email"}
//! GET  /api/citizen/me                   the session
//! GET  /api/citizen/applications         the journal: applications whose applicant IIN is the signer's
//! GET  /api/citizen/applications/{id}    the card (404 when it is not the caller's)
//! POST /api/citizen/applications/{id}/recall/document  {"reason"}  -> {"xml"} to sign
//! POST /api/citizen/applications/{id}/recall           {"signed_xml"}  signing key -> the card
//! POST /api/citizen/applications/{id}/extend/document and .../extend, the same way
//! ```
//!
//! - **What is acted on is what was verified.** A signed request is verified in full
//!   (profile, digest, signature value, chain to `DATA/pki/` at the server's clock, key
//!   usage for the purpose) before anything else; the action, application, referral,
//!   reason and nonce are then read from the verified canonical document
//!   ([`kezek_pki::Verified::root`]), never from the request beside it.
//! - **One-time nonces.** Every document the server hands out carries a random 128-bit
//!   nonce, its issue time and expiry, and the exact fields it binds (for an action: the
//!   action, the application, the referral, the citizen). A signed document is accepted
//!   only if its nonce was issued here, is unused and unexpired, and its fields are
//!   exactly the issued ones (whitespace between elements aside). Nonces live in memory,
//!   in bounded pools (oldest evicted): a restart makes outstanding documents unusable,
//!   which is safe. An action's nonce is checked and spent under the store's write lock,
//!   so a replay racing the original cannot both pass.
//! - **Sessions** are random 256-bit tokens (`kzc_` + 64 hex), kept only as their SHA-256,
//!   in memory, expiring by the server's clock; citizen tokens and console tokens are
//!   separate namespaces.
//! - **Profiles** (IIN -> e-mail) are in `DATA/web/citizens.json`, written to a temporary
//!   file, synced and renamed. Until a citizen gives an e-mail the journal refuses with
//!   `email_required`.
//! - **Evidence.** Every accepted signed document is kept as `DATA/web/signed/<sha256>.xml`
//!   with its verification report and context in `<sha256>.json` (written before the
//!   engine acts; removed again if the engine refuses). The audit log line names the
//!   document's SHA-256, the signer, the certificate serial and the events; the card's
//!   history shows `applicant:IIN:SERIAL` as the actor.
//! - **Refusals** have named codes and change nothing in the store: `nonce_unknown`,
//!   `nonce_used`, `nonce_expired` (409), `document_mismatch` (422), `wrong_purpose`,
//!   `signer_not_applicant`, `email_required` (403), the pki report's codes (401 at login,
//!   403 for actions, 422 for documents outside the profile, 413 over the size limit),
//!   `unknown_application` (404, also for another person's application), and the engine's
//!   own refusals (409: `recall_window_closed`, `already_extended`, ...).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use axum::extract::{FromRequestParts, Path as UrlPath, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use jiff::{SignedDuration, Timestamp};
use kezek_engine::command::MAX_REASON_CHARS;
use kezek_engine::{view, Actor, AppNo, Command, EngineError, Request as EngineRequest};
use kezek_pki::xmldsig::XmlElement;
use kezek_pki::{ErrorCode, Purpose, Report, TrustStore};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use super::accounts::{token_hash, web_dir};
use super::api::JsonBody;
use super::audit::AuditEntry;
use super::error::ApiError;
use super::server::App;

// ---------------------------------------------------------------------------------------
// Limits.

/// The limits of the citizen flow.
#[derive(Debug, Clone)]
pub struct CitizenLimits {
    /// How long a handed-out document (its nonce) may be signed and sent back.
    pub nonce_lifetime_secs: i64,
    /// How long a login lasts.
    pub session_lifetime_secs: i64,
    /// Outstanding login challenges (anyone may ask for one); the oldest is evicted.
    pub max_login_nonces: usize,
    /// Outstanding action documents of all citizens; the oldest is evicted.
    pub max_action_nonces: usize,
    /// Outstanding action documents of one citizen; that citizen's oldest is evicted.
    pub max_action_nonces_per_citizen: usize,
    /// Live sessions; the oldest is evicted.
    pub max_sessions: usize,
    /// Live sessions of one citizen; that citizen's oldest is evicted.
    pub max_sessions_per_citizen: usize,
    /// Applications one journal lists.
    pub max_journal_items: usize,
    /// Bytes of one signed document (the verifier's own limit is 256 KiB).
    pub max_signed_xml_bytes: usize,
}

impl Default for CitizenLimits {
    fn default() -> Self {
        CitizenLimits {
            nonce_lifetime_secs: 5 * 60,
            session_lifetime_secs: 30 * 60,
            max_login_nonces: 10_000,
            max_action_nonces: 10_000,
            max_action_nonces_per_citizen: 16,
            max_sessions: 10_000,
            max_sessions_per_citizen: 5,
            max_journal_items: 100,
            max_signed_xml_bytes: 64 * 1024,
        }
    }
}

/// The most characters of an e-mail address (RFC 5321's path limit).
pub const MAX_EMAIL_CHARS: usize = 254;

// ---------------------------------------------------------------------------------------
// Documents and nonces.

/// What a signed request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Recall,
    Extend,
}

impl Action {
    pub fn code(self) -> &'static str {
        match self {
            Action::Recall => "recall",
            Action::Extend => "extend",
        }
    }
    fn command(self, app: AppNo) -> Command {
        match self {
            Action::Recall => Command::Recall { app },
            Action::Extend => Command::Extend { app },
        }
    }
}

/// What a nonce was issued for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Binding {
    Login,
    Action {
        action: Action,
        app: AppNo,
        referral: u64,
        iin: String,
    },
}

/// A document as issued: its root element and its fields, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Issued {
    root: &'static str,
    fields: Vec<(&'static str, String)>,
}

impl Issued {
    fn xml(&self) -> String {
        let mut s = format!("<{}>\n", self.root);
        for (k, v) in &self.fields {
            s.push_str(&format!("  <{k}>{}</{k}>\n", escape(v)));
        }
        s.push_str(&format!("</{}>\n", self.root));
        s
    }

    fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Is the verified root exactly this document: same root, no attributes, the same
    /// child elements in the same order with the same text, nothing else but whitespace?
    fn matches(&self, root: &XmlElement) -> bool {
        use kezek_pki::xmldsig::XmlNode;
        if root.namespace.is_some() || root.name != self.root || !root.attributes.is_empty() {
            return false;
        }
        let mut fields = self.fields.iter();
        for child in &root.children {
            match child {
                XmlNode::Text(t) if t.chars().all(|c| c.is_ascii_whitespace()) => {}
                XmlNode::Element(e) => {
                    let Some((name, value)) = fields.next() else {
                        return false;
                    };
                    let text_only = e.children.iter().all(|c| matches!(c, XmlNode::Text(_)));
                    if e.namespace.is_some()
                        || e.name != *name
                        || !e.attributes.is_empty()
                        || !text_only
                        || e.text() != *value
                    {
                        return false;
                    }
                }
                _ => return false,
            }
        }
        fields.next().is_none()
    }
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[derive(Debug, Clone)]
struct NonceRecord {
    issued: Issued,
    binding: Binding,
    expires_at: Timestamp,
    used: bool,
}

/// A bounded pool of nonces: the oldest is evicted beyond `max`.
#[derive(Debug, Default)]
struct NoncePool {
    map: HashMap<String, NonceRecord>,
    order: VecDeque<String>,
}

impl NoncePool {
    fn insert(&mut self, nonce: String, rec: NonceRecord, max: usize, per_citizen: usize) {
        if let Binding::Action { iin, .. } = &rec.binding {
            let mine: Vec<usize> = self
                .order
                .iter()
                .enumerate()
                .filter(|(_, n)| {
                    self.map.get(*n).is_some_and(|r| {
                        !r.used && matches!(&r.binding, Binding::Action { iin: i, .. } if i == iin)
                    })
                })
                .map(|(k, _)| k)
                .collect();
            if mine.len() >= per_citizen.max(1) {
                if let Some(old) = self.order.remove(mine[0]) {
                    self.map.remove(&old);
                }
            }
        }
        while self.map.len() >= max.max(1) {
            match self.order.pop_front() {
                Some(old) => {
                    self.map.remove(&old);
                }
                None => break,
            }
        }
        self.order.push_back(nonce.clone());
        self.map.insert(nonce, rec);
    }

    /// Checks a nonce read from a verified document (does not spend it).
    fn check(&self, nonce: &str, now: Timestamp) -> Result<&NonceRecord, ApiError> {
        let rec = self.map.get(nonce).ok_or_else(|| {
            ApiError::new(
                StatusCode::CONFLICT,
                "nonce_unknown",
                "the document's nonce was not issued by this server (or was evicted or the server restarted): ask for a new document",
            )
        })?;
        if rec.used {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "nonce_used",
                "this signed document was already used: a nonce works once",
            ));
        }
        if now > rec.expires_at {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "nonce_expired",
                format!(
                    "the document expired at {}: ask for a new one",
                    rec.expires_at
                ),
            ));
        }
        Ok(rec)
    }

    fn spend(&mut self, nonce: &str) {
        if let Some(r) = self.map.get_mut(nonce) {
            r.used = true;
        }
    }
}

fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut b);
    hex::encode(b)
}

fn mismatch(message: impl Into<String>) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "document_mismatch",
        message,
    )
}

// ---------------------------------------------------------------------------------------
// Sessions and profiles.

/// A logged-in citizen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The IIN of the AUTH certificate (as the CA vouches for it).
    pub iin: String,
    pub common_name: Option<String>,
    /// The AUTH certificate's serial (hex).
    pub cert_serial: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

#[derive(Debug, Default)]
struct Sessions {
    map: HashMap<String, Session>,
    order: VecDeque<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CitizenProfile {
    pub email: String,
    pub email_set_at: Timestamp,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct CitizensFile {
    citizens: BTreeMap<String, CitizenProfile>,
}

type TrustStamp = Vec<(PathBuf, u64, Option<SystemTime>)>;

/// The citizen side of the server: nonces, sessions, profiles, the trust store cache.
pub struct Citizens {
    data: PathBuf,
    limits: CitizenLimits,
    login_nonces: Mutex<NoncePool>,
    action_nonces: Mutex<NoncePool>,
    sessions: Mutex<Sessions>,
    profiles: Mutex<CitizensFile>,
    trust: Mutex<Option<(TrustStamp, Arc<TrustStore>)>>,
}

fn lock<T>(m: &Mutex<T>) -> Result<MutexGuard<'_, T>, ApiError> {
    m.lock()
        .map_err(|_| ApiError::internal("a citizen lock is poisoned: restart the server"))
}

fn io_error(what: &str, path: &Path, e: impl std::fmt::Display) -> EngineError {
    EngineError::internal("citizens_io", format!("{what} {}: {e}", path.display()))
}

/// Writes `bytes` to `path` atomically: a temporary file, synced, renamed over.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), EngineError> {
    let dir = path
        .parent()
        .ok_or_else(|| io_error("no folder for", path, "?"))?;
    fs::create_dir_all(dir).map_err(|e| io_error("cannot create", dir, e))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", random_hex(4)));
    let mut opts = OpenOptions::new();
    opts.create(true).truncate(true).write(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let res = opts.open(&tmp).and_then(|mut f| {
        f.write_all(bytes)?;
        f.sync_all()
    });
    if let Err(e) = res {
        let _ = fs::remove_file(&tmp);
        return Err(io_error("cannot write", &tmp, e));
    }
    if let Err(e) = fs::rename(&tmp, path) {
        let _ = fs::remove_file(&tmp);
        return Err(io_error("cannot replace", path, e));
    }
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

fn trust_stamp(data: &Path) -> TrustStamp {
    let mut out = Vec::new();
    for sub in ["ca", "crl"] {
        let dir = data.join("pki").join(sub);
        if let Ok(rd) = fs::read_dir(&dir) {
            for e in rd.flatten() {
                let m = e.metadata().ok();
                out.push((
                    e.path(),
                    m.as_ref().map_or(0, |m| m.len()),
                    m.and_then(|m| m.modified().ok()),
                ));
            }
        }
    }
    out.sort();
    out
}

impl Citizens {
    /// Opens the citizen side of a data folder (reads `DATA/web/citizens.json`).
    pub fn open(data: &Path, limits: CitizenLimits) -> Result<Citizens, EngineError> {
        let path = web_dir(data).join("citizens.json");
        let file = match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                EngineError::internal(
                    "citizens_corrupt",
                    format!("{} does not parse: {e}", path.display()),
                )
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => CitizensFile::default(),
            Err(e) => return Err(io_error("cannot read", &path, e)),
        };
        Ok(Citizens {
            data: data.to_path_buf(),
            limits,
            login_nonces: Mutex::new(NoncePool::default()),
            action_nonces: Mutex::new(NoncePool::default()),
            sessions: Mutex::new(Sessions::default()),
            profiles: Mutex::new(file),
            trust: Mutex::new(None),
        })
    }

    pub fn limits(&self) -> &CitizenLimits {
        &self.limits
    }

    fn profiles_path(&self) -> PathBuf {
        web_dir(&self.data).join("citizens.json")
    }

    /// The e-mail address a citizen gave, if any.
    pub fn email(&self, iin: &str) -> Option<String> {
        self.profiles
            .lock()
            .ok()?
            .citizens
            .get(iin)
            .map(|p| p.email.clone())
    }

    fn set_email(&self, iin: &str, email: &str, now: Timestamp) -> Result<(), ApiError> {
        let mut profiles = lock(&self.profiles)?;
        let mut next = profiles.clone();
        next.citizens.insert(
            iin.to_string(),
            CitizenProfile {
                email: email.to_string(),
                email_set_at: now,
            },
        );
        let bytes =
            serde_json::to_vec_pretty(&next).map_err(|e| ApiError::internal(e.to_string()))?;
        write_atomic(&self.profiles_path(), &bytes)?;
        *profiles = next;
        Ok(())
    }

    /// The trust store in `DATA/pki/`, re-read when its files change.
    fn trust(&self) -> Result<Arc<TrustStore>, ApiError> {
        let stamp = trust_stamp(&self.data);
        let mut cache = lock(&self.trust)?;
        if let Some((s, t)) = cache.as_ref() {
            if *s == stamp {
                return Ok(t.clone());
            }
        }
        let t = Arc::new(crate::pki_cli::load_trust(&self.data).map_err(|f| {
            ApiError::internal(format!(
                "the trust store cannot be read: {}: {}",
                f.code, f.message
            ))
        })?);
        *cache = Some((stamp, t.clone()));
        Ok(t)
    }

    fn new_session(&self, mut s: Session) -> Result<String, ApiError> {
        let token = format!("kzc_{}", random_hex(32));
        let hash = token_hash(&token);
        let mut sessions = lock(&self.sessions)?;
        let now = s.created_at;
        // Drop expired sessions first (they are at the front, mostly).
        let expired: Vec<String> = sessions
            .map
            .iter()
            .filter(|(_, v)| v.expires_at < now)
            .map(|(k, _)| k.clone())
            .collect();
        for k in expired {
            sessions.map.remove(&k);
        }
        let live: std::collections::HashSet<String> = sessions.map.keys().cloned().collect();
        sessions.order.retain(|k| live.contains(k));
        let mine: Vec<usize> = sessions
            .order
            .iter()
            .enumerate()
            .filter(|(_, k)| sessions.map.get(*k).is_some_and(|v| v.iin == s.iin))
            .map(|(i, _)| i)
            .collect();
        if mine.len() >= self.limits.max_sessions_per_citizen.max(1) {
            if let Some(old) = sessions.order.remove(mine[0]) {
                sessions.map.remove(&old);
            }
        }
        while sessions.map.len() >= self.limits.max_sessions.max(1) {
            match sessions.order.pop_front() {
                Some(old) => {
                    sessions.map.remove(&old);
                }
                None => break,
            }
        }
        s.expires_at = now
            .checked_add(SignedDuration::from_secs(self.limits.session_lifetime_secs))
            .unwrap_or(Timestamp::MAX);
        sessions.order.push_back(hash.clone());
        sessions.map.insert(hash, s);
        Ok(token)
    }

    /// The session of a token at `now`: 401 `unauthorized` or `session_expired`.
    pub fn session(&self, token: &str, now: Timestamp) -> Result<Session, ApiError> {
        if token.len() > 256 {
            return Err(ApiError::unauthorized("unknown citizen token"));
        }
        let hash = token_hash(token);
        let mut sessions = lock(&self.sessions)?;
        let s = sessions.map.get(&hash).cloned().ok_or_else(|| {
            ApiError::unauthorized("unknown citizen token: log in with the AUTH key")
        })?;
        if now > s.expires_at {
            sessions.map.remove(&hash);
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "session_expired",
                format!("the login expired at {}: log in again", s.expires_at),
            ));
        }
        Ok(s)
    }

    fn nonce_expiry(&self, now: Timestamp) -> Timestamp {
        now.checked_add(SignedDuration::from_secs(self.limits.nonce_lifetime_secs))
            .unwrap_or(Timestamp::MAX)
    }

    /// A login challenge at `now`.
    fn challenge(&self, now: Timestamp) -> Result<(String, String, Timestamp), ApiError> {
        let nonce = random_hex(16);
        let expires_at = self.nonce_expiry(now);
        let issued = Issued {
            root: "login",
            fields: vec![
                ("action", "login".into()),
                ("service", "kezek".into()),
                ("nonce", nonce.clone()),
                ("issued_at", now.to_string()),
                ("expires_at", expires_at.to_string()),
            ],
        };
        let xml = issued.xml();
        lock(&self.login_nonces)?.insert(
            nonce.clone(),
            NonceRecord {
                issued,
                binding: Binding::Login,
                expires_at,
                used: false,
            },
            self.limits.max_login_nonces,
            usize::MAX,
        );
        Ok((xml, nonce, expires_at))
    }

    /// A document for `action` on `app`'s referral at `now`, bound to the citizen.
    fn action_document(
        &self,
        action: Action,
        app: AppNo,
        referral: u64,
        iin: &str,
        reason: &str,
        now: Timestamp,
    ) -> Result<(String, String, Timestamp), ApiError> {
        let nonce = random_hex(16);
        let expires_at = self.nonce_expiry(now);
        let issued = Issued {
            root: action.code(),
            fields: vec![
                ("action", action.code().into()),
                ("application", app.to_string()),
                ("referral", referral.to_string()),
                ("applicant_iin", iin.to_string()),
                ("reason", reason.to_string()),
                ("nonce", nonce.clone()),
                ("issued_at", now.to_string()),
                ("expires_at", expires_at.to_string()),
            ],
        };
        let xml = issued.xml();
        lock(&self.action_nonces)?.insert(
            nonce.clone(),
            NonceRecord {
                issued,
                binding: Binding::Action {
                    action,
                    app,
                    referral,
                    iin: iin.to_string(),
                },
                expires_at,
                used: false,
            },
            self.limits.max_action_nonces,
            self.limits.max_action_nonces_per_citizen,
        );
        Ok((xml, nonce, expires_at))
    }

    /// Keeps a signed document and its report: `DATA/web/signed/<sha256>.xml` and `.json`.
    /// Returns the SHA-256 and whether the files are new (so a refusal can remove them).
    fn keep_evidence(&self, xml: &[u8], context: &Value) -> Result<(String, bool), ApiError> {
        let sha = hex::encode(Sha256::digest(xml));
        let dir = web_dir(&self.data).join("signed");
        let xml_path = dir.join(format!("{sha}.xml"));
        let new = !xml_path.exists();
        let json =
            serde_json::to_vec_pretty(context).map_err(|e| ApiError::internal(e.to_string()))?;
        write_atomic(&dir.join(format!("{sha}.json")), &json)?;
        if new {
            write_atomic(&xml_path, xml)?;
        }
        Ok((sha, new))
    }

    fn drop_evidence(&self, sha: &str) {
        let dir = web_dir(&self.data).join("signed");
        let _ = fs::remove_file(dir.join(format!("{sha}.xml")));
        let _ = fs::remove_file(dir.join(format!("{sha}.json")));
    }
}

// ---------------------------------------------------------------------------------------
// Verification errors.

/// The API error of a report that is not valid: its first error's code
/// (`wrong_key_usage` is named `wrong_purpose`), the whole report in `report`.
fn report_error(report: &Report, login: bool) -> ApiError {
    let first = report.errors.first();
    let (code, message) = match first {
        Some(e) if e.code == ErrorCode::WrongKeyUsage => (
            "wrong_purpose".to_string(),
            format!(
                "{} ({})",
                e.message,
                if login {
                    "log in with the AUTH key"
                } else {
                    "sign requests with the signing key (RSA), not the AUTH key"
                }
            ),
        ),
        Some(e) => (e.code.as_str().to_string(), e.message.clone()),
        None => (
            "signature_invalid".to_string(),
            "the signature is not valid".to_string(),
        ),
    };
    let status = match first.map(|e| e.code) {
        Some(ErrorCode::TooLarge) => StatusCode::PAYLOAD_TOO_LARGE,
        Some(ErrorCode::WrongKeyUsage) => StatusCode::FORBIDDEN,
        Some(
            ErrorCode::MalformedXml
            | ErrorCode::TooDeep
            | ErrorCode::Bom
            | ErrorCode::DtdForbidden
            | ErrorCode::CommentForbidden
            | ErrorCode::UnknownAlgorithm
            | ErrorCode::BadReference
            | ErrorCode::MultipleSignatures
            | ErrorCode::MissingSignature
            | ErrorCode::SignatureNotLast
            | ErrorCode::BadTransforms
            | ErrorCode::BadSignatureStructure
            | ErrorCode::BadBase64
            | ErrorCode::MissingCertificate
            | ErrorCode::Malformed
            | ErrorCode::AmbiguousContent,
        ) => StatusCode::UNPROCESSABLE_ENTITY,
        _ if login => StatusCode::UNAUTHORIZED,
        _ => StatusCode::FORBIDDEN,
    };
    let report_json = serde_json::to_value(report).unwrap_or(Value::Null);
    ApiError::new(status, &code, message).with("report", report_json)
}

fn check_size(app: &App, xml: &str) -> Result<(), ApiError> {
    let max = app.citizens().limits().max_signed_xml_bytes;
    if xml.len() > max {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("signed_xml: {} bytes, the limit is {max}", xml.len()),
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Request bodies and the citizen extractor.

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignedBody {
    /// The document the server handed out, signed in the NCALayer profile (`signXml`).
    pub signed_xml: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailBody {
    pub email: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CitizenReasonBody {
    /// Why: required for a recall, optional for an extension.
    pub reason: Option<String>,
}

/// A logged-in citizen (401 without a valid citizen token).
pub struct Citizen(pub Session);

impl FromRequestParts<App> for Citizen {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, ApiError> {
        let value = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| {
                ApiError::unauthorized(
                    "log in: POST /api/citizen/login, then send Authorization: Bearer TOKEN",
                )
            })?
            .to_str()
            .map_err(|_| ApiError::unauthorized("the Authorization header is not text"))?;
        let token = match value.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
            _ => {
                return Err(ApiError::unauthorized(
                    "the Authorization header must be: Bearer TOKEN",
                ))
            }
        };
        let now = app.clock_now()?;
        app.citizens().session(token, now).map(Citizen)
    }
}

fn require_email(app: &App, s: &Session) -> Result<String, ApiError> {
    app.citizens().email(&s.iin).ok_or_else(|| {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "email_required",
            "the first login needs an e-mail address: POST /api/citizen/email {\"email\": \"...\"}",
        )
    })
}

/// Checks an e-mail address as typed: 3 to 254 characters, one `@`, a local part of at
/// most 64 characters without spaces, quotes or brackets, a domain of dot-separated
/// labels (letters, digits, hyphens) with at least one dot.
pub fn check_email(raw: &str) -> Result<String, ApiError> {
    let bad = |why: &str| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_email",
            format!(
                "email: '{}' {why}",
                raw.chars().take(80).collect::<String>()
            ),
        )
    };
    let e = raw.trim();
    let n = e.chars().count();
    if !(3..=MAX_EMAIL_CHARS).contains(&n) {
        return Err(bad(&format!("must be 3 to {MAX_EMAIL_CHARS} characters")));
    }
    let Some((local, domain)) = e.split_once('@') else {
        return Err(bad("has no '@'"));
    };
    if domain.contains('@') {
        return Err(bad("has more than one '@'"));
    }
    if local.is_empty() || local.chars().count() > 64 {
        return Err(bad("needs a part of 1 to 64 characters before '@'"));
    }
    if local
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || "\"(),:;<>[\\]".contains(c))
        || local.starts_with('.')
        || local.ends_with('.')
        || local.contains("..")
    {
        return Err(bad("has characters not allowed before '@'"));
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2
        || labels.iter().any(|l| {
            l.is_empty()
                || l.len() > 63
                || l.starts_with('-')
                || l.ends_with('-')
                || !l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
    {
        return Err(bad("does not have a domain such as example.kz after '@'"));
    }
    Ok(e.to_string())
}

fn check_reason(action: Action, reason: Option<&str>) -> Result<String, ApiError> {
    let r = reason.map(str::trim).unwrap_or("");
    let invalid = |code: &str, m: String| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, m);
    if r.is_empty() && action == Action::Recall {
        return Err(invalid(
            "reason_required",
            "reason: required for a recall (why the referral is refused)".into(),
        ));
    }
    if r.chars().count() > MAX_REASON_CHARS {
        return Err(invalid(
            "invalid_input",
            format!("reason: longer than {MAX_REASON_CHARS} characters"),
        ));
    }
    if r.chars().any(|c| {
        c.is_control()
            || ('\u{202a}'..='\u{202e}').contains(&c)
            || ('\u{2066}'..='\u{2069}').contains(&c)
    }) {
        return Err(invalid(
            "invalid_input",
            "reason: contains control characters".into(),
        ));
    }
    Ok(r.to_string())
}

fn parse_id(s: &str) -> Result<AppNo, ApiError> {
    s.parse::<AppNo>()
        .map_err(|e| ApiError::bad_request("invalid_application_number", e))
}

fn not_yours(id: AppNo) -> ApiError {
    // The same answer whether it does not exist or is someone else's.
    ApiError::new(
        StatusCode::NOT_FOUND,
        "unknown_application",
        format!("no application {id} in your journal"),
    )
}

fn audit(app: &App, at: Timestamp, actor: &str, action: &str, outcome: &str, detail: Value) {
    let entry = AuditEntry {
        at,
        actor: actor.to_string(),
        action: action.to_string(),
        outcome: outcome.to_string(),
        detail,
    };
    if let Err(e) = app.audit().append(&entry) {
        eprintln!("audit: {e}");
    }
}

// ---------------------------------------------------------------------------------------
// Handlers.

#[utoipa::path(post, path = "/api/citizen/challenge", tag = "citizen",
    responses((status = 200, description = "a login document to sign with the AUTH key: `xml` holds a one-time nonce, its issue time and expiry", body = ChallengeDoc)))]
pub async fn challenge(State(app): State<App>) -> Result<Json<Value>, ApiError> {
    app.blocking(|a| {
        let now = a.clock_now()?;
        let (xml, nonce, expires_at) = a.citizens().challenge(now)?;
        Ok(json!({"xml": xml, "nonce": nonce, "expires_at": expires_at}))
    })
    .await
    .map(Json)
}

#[utoipa::path(post, path = "/api/citizen/login", tag = "citizen",
    request_body = SignedBody,
    responses(
        (status = 200, description = "logged in: a bearer token for the citizen endpoints; `email_required` on the first login", body = LoginDoc),
        (status = 400, description = "not JSON", body = ErrorDoc),
        (status = 401, description = "the signature or certificate does not check out (`signature_invalid`, `digest_mismatch`, `untrusted`, `expired`, `not_yet_valid`, `revoked`, `self_signed_leaf`, ...; the report is in `error.report`)", body = ErrorDoc),
        (status = 403, description = "`wrong_purpose`: not an AUTH key; `no_iin`: the certificate names no IIN", body = ErrorDoc),
        (status = 409, description = "`nonce_unknown`, `nonce_used`, `nonce_expired`", body = ErrorDoc),
        (status = 413, description = "`too_large`", body = ErrorDoc),
        (status = 422, description = "`document_mismatch` (not the challenge as issued), or a document outside the signature profile", body = ErrorDoc),
    ))]
pub async fn login(
    State(app): State<App>,
    JsonBody(b): JsonBody<SignedBody>,
) -> Result<Json<Value>, ApiError> {
    check_size(&app, &b.signed_xml)?;
    app.blocking(move |a| {
        let c = a.citizens();
        let now = a.clock_now()?;
        let trust = c.trust()?;
        let xml = b.signed_xml.as_bytes();
        let outcome = kezek_pki::verify_outcome(xml, &trust, now, Purpose::Auth);
        let Some(verified) = outcome.accepted.as_ref().filter(|_| outcome.report.valid) else {
            return Err(report_error(&outcome.report, true));
        };
        let root = verified
            .root()
            .map_err(|e| mismatch(format!("the signed content cannot be read: {}", e.message)))?;
        if root.name != "login" {
            return Err(mismatch(format!(
                "a <{}> document cannot log in: sign the login challenge",
                root.name
            )));
        }
        let nonce = root.single_text("nonce").map_err(|e| mismatch(e.message))?;
        let signer = verified.signer();
        let iin = signer.iin.clone().ok_or_else(|| {
            ApiError::new(
                StatusCode::FORBIDDEN,
                "no_iin",
                "the certificate's SERIALNUMBER names no IIN",
            )
        })?;
        {
            let mut pool = lock(&c.login_nonces)?;
            let rec = pool.check(&nonce, now)?;
            if rec.binding != Binding::Login || !rec.issued.matches(root) {
                return Err(mismatch(
                    "the signed document is not the login challenge as issued",
                ));
            }
            pool.spend(&nonce);
        }
        let actor = Actor::Applicant {
            iin: iin.clone(),
            cert_serial: signer.serial.clone(),
        };
        let (sha, _) = c.keep_evidence(
            xml,
            &json!({
                "purpose": "auth",
                "action": "login",
                "received_at": now,
                "citizen_iin": iin,
                "report": outcome.report,
            }),
        )?;
        let token = c.new_session(Session {
            iin: iin.clone(),
            common_name: signer.subject.common_name.clone(),
            cert_serial: signer.serial.clone(),
            created_at: now,
            expires_at: now,
        })?;
        let email = c.email(&iin);
        audit(
            a,
            now,
            &actor.to_string(),
            "citizen_login",
            "ok",
            json!({"document_sha256": sha, "cert_serial": signer.serial, "iin": iin}),
        );
        let expires_at = now
            .checked_add(SignedDuration::from_secs(c.limits().session_lifetime_secs))
            .unwrap_or(Timestamp::MAX);
        Ok(json!({
            "token": token,
            "expires_at": expires_at,
            "iin": iin,
            "common_name": signer.subject.common_name,
            "email_required": email.is_none(),
            "email": email,
        }))
    })
    .await
    .map(Json)
}

#[utoipa::path(post, path = "/api/citizen/email", tag = "citizen", security(("citizen" = [])),
    request_body = EmailBody,
    responses(
        (status = 200, description = "recorded", body = EmailDoc),
        (status = 401, description = "no, an unknown or an expired citizen token", body = ErrorDoc),
        (status = 422, description = "`invalid_email`", body = ErrorDoc),
    ))]
pub async fn set_email(
    Citizen(s): Citizen,
    State(app): State<App>,
    JsonBody(b): JsonBody<EmailBody>,
) -> Result<Json<Value>, ApiError> {
    let email = check_email(&b.email)?;
    app.blocking(move |a| {
        let now = a.clock_now()?;
        a.citizens().set_email(&s.iin, &email, now)?;
        let actor = Actor::Applicant {
            iin: s.iin.clone(),
            cert_serial: s.cert_serial.clone(),
        };
        audit(
            a,
            now,
            &actor.to_string(),
            "citizen_email",
            "ok",
            json!({"iin": s.iin}),
        );
        Ok(json!({"iin": s.iin, "email": email}))
    })
    .await
    .map(Json)
}

#[utoipa::path(get, path = "/api/citizen/me", tag = "citizen", security(("citizen" = [])),
    responses(
        (status = 200, description = "the session: IIN, name, certificate serial, expiry, e-mail", body = Object),
        (status = 401, description = "no, an unknown or an expired citizen token", body = ErrorDoc),
    ))]
pub async fn me(Citizen(s): Citizen, State(app): State<App>) -> Json<Value> {
    let email = app.citizens().email(&s.iin);
    Json(json!({
        "iin": s.iin,
        "common_name": s.common_name,
        "cert_serial": s.cert_serial,
        "expires_at": s.expires_at,
        "email": email,
    }))
}

#[utoipa::path(get, path = "/api/citizen/applications", tag = "citizen", security(("citizen" = [])),
    responses(
        (status = 200, description = "the journal: the caller's applications (summaries without history), at most 100", body = JournalDoc),
        (status = 401, description = "no, an unknown or an expired citizen token", body = ErrorDoc),
        (status = 403, description = "`email_required`", body = ErrorDoc),
    ))]
pub async fn journal(Citizen(s): Citizen, State(app): State<App>) -> Result<Json<Value>, ApiError> {
    require_email(&app, &s)?;
    app.blocking(move |a| {
        let max = a.citizens().limits().max_journal_items;
        let store = a.read()?;
        let st = store.state();
        let items: Vec<view::Card> = st
            .apps_of_applicant(&s.iin)
            .take(max)
            .filter_map(|id| st.app(id))
            .map(|app| view::card_summary(st, app))
            .collect();
        Ok(json!({"total": st.count_of_applicant(&s.iin), "items": items}))
    })
    .await
    .map(Json)
}

#[utoipa::path(get, path = "/api/citizen/applications/{id}", tag = "citizen", security(("citizen" = [])),
    params(("id" = String, Path, description = "application number")),
    responses(
        (status = 200, description = "the card with its history", body = CardDoc),
        (status = 400, description = "not an application number", body = ErrorDoc),
        (status = 401, description = "no, an unknown or an expired citizen token", body = ErrorDoc),
        (status = 403, description = "`email_required`", body = ErrorDoc),
        (status = 404, description = "no such application in the caller's journal (also when it is someone else's)", body = ErrorDoc),
    ))]
pub async fn card(
    Citizen(s): Citizen,
    State(app): State<App>,
    UrlPath(id): UrlPath<String>,
) -> Result<Json<view::Card>, ApiError> {
    require_email(&app, &s)?;
    let id = parse_id(&id)?;
    app.blocking(move |a| {
        let store = a.read()?;
        match store.state().app(id) {
            Some(x) if x.applicant_iin.as_str() == s.iin => Ok(view::card(&store, id)?),
            _ => Err(not_yours(id)),
        }
    })
    .await
    .map(Json)
}

async fn document(
    action: Action,
    s: Session,
    app: App,
    id: String,
    reason: Option<String>,
) -> Result<Json<Value>, ApiError> {
    require_email(&app, &s)?;
    let id = parse_id(&id)?;
    let reason = check_reason(action, reason.as_deref())?;
    app.blocking(move |a| {
        let store = a.read()?;
        let now = store.now(Timestamp::now());
        let st = store.state();
        let x = st
            .app(id)
            .filter(|x| x.applicant_iin.as_str() == s.iin)
            .ok_or_else(|| not_yours(id))?;
        // Ask the engine now whether it would act (without changing anything), so that
        // nobody is asked to sign a request that is bound to be refused.
        store.core().decide(&action.command(id), now)?;
        let referral = x.referral.ok_or_else(|| {
            ApiError::new(
                StatusCode::CONFLICT,
                "no_active_referral",
                format!("{id} has no active referral"),
            )
        })?;
        drop(store);
        let (xml, nonce, expires_at) = a
            .citizens()
            .action_document(action, id, referral, &s.iin, &reason, now)?;
        Ok(json!({
            "xml": xml,
            "action": action.code(),
            "application": id.to_string(),
            "referral": referral,
            "nonce": nonce,
            "expires_at": expires_at,
        }))
    })
    .await
    .map(Json)
}

async fn signed_action(
    action: Action,
    s: Session,
    app: App,
    id: String,
    b: SignedBody,
) -> Result<Json<view::Card>, ApiError> {
    require_email(&app, &s)?;
    let id = parse_id(&id)?;
    check_size(&app, &b.signed_xml)?;
    app.blocking(move |a| {
        let c = a.citizens();
        let now = a.clock_now()?;
        let trust = c.trust()?;
        let xml = b.signed_xml.as_bytes();
        let outcome = kezek_pki::verify_outcome(xml, &trust, now, Purpose::Sign);
        let Some(verified) = outcome.accepted.as_ref().filter(|_| outcome.report.valid) else {
            return Err(report_error(&outcome.report, false));
        };
        // From here on, every value comes from the verified canonical document.
        let root = verified
            .root()
            .map_err(|e| mismatch(format!("the signed content cannot be read: {}", e.message)))?;
        let text = |name: &str| root.single_text(name).map_err(|e| mismatch(e.message));
        if root.name != action.code() || text("action")? != action.code() {
            return Err(mismatch(format!(
                "the signed document is a <{}>, not a {} request",
                root.name,
                action.code()
            )));
        }
        let doc_app: AppNo = text("application")?
            .parse()
            .map_err(|e: String| mismatch(format!("application: {e}")))?;
        if doc_app != id {
            return Err(mismatch(format!(
                "the signed document names application {doc_app}, not {id}"
            )));
        }
        let doc_referral: u64 = text("referral")?
            .parse()
            .map_err(|_| mismatch("referral: not a referral number"))?;
        let reason = text("reason")?;
        let nonce = text("nonce")?;
        let signer = verified.signer();
        let signer_iin = signer.iin.clone().unwrap_or_default();
        if signer_iin != s.iin {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "signer_not_applicant",
                format!(
                    "the document is signed by IIN {}, not by the logged-in citizen",
                    if signer_iin.is_empty() { "(none)" } else { &signer_iin }
                ),
            ));
        }
        let actor = Actor::Applicant {
            iin: signer_iin.clone(),
            cert_serial: signer.serial.clone(),
        };
        let mut store = a.write()?;
        let now = store.now(Timestamp::now()).max(now);
        let x = store
            .state()
            .app(id)
            .filter(|x| x.applicant_iin.as_str() == s.iin)
            .ok_or_else(|| not_yours(id))?;
        if x.applicant_iin.as_str() != signer_iin {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "signer_not_applicant",
                "the signer is not the application's applicant",
            ));
        }
        let current = x.referral;
        let mut pool = lock(&c.action_nonces)?;
        let rec = pool.check(&nonce, now)?;
        let bound = Binding::Action {
            action,
            app: id,
            referral: doc_referral,
            iin: s.iin.clone(),
        };
        if rec.binding != bound || !rec.issued.matches(root) {
            return Err(mismatch(
                "the signed document is not the one issued for this action, application, referral and citizen",
            ));
        }
        debug_assert_eq!(rec.issued.field("reason"), Some(reason.as_str()));
        if current != Some(doc_referral) {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "referral_changed",
                format!(
                    "the document names referral {doc_referral}, but {id} now has {}",
                    current.map_or("no active referral".to_string(), |r| format!("referral {r}"))
                ),
            ));
        }
        let (sha, new) = c.keep_evidence(
            xml,
            &json!({
                "purpose": "sign",
                "action": action.code(),
                "application": id.to_string(),
                "referral": doc_referral,
                "reason": reason,
                "nonce": nonce,
                "received_at": now,
                "citizen_iin": s.iin,
                "report": outcome.report,
            }),
        )?;
        let recs = match store.execute(
            &EngineRequest {
                command: action.command(id),
                actor: actor.clone(),
                reason: (!reason.is_empty()).then_some(reason.clone()),
            },
            now,
        ) {
            Ok(r) => r,
            Err(e) => {
                if new {
                    c.drop_evidence(&sha);
                }
                return Err(e.into());
            }
        };
        pool.spend(&nonce);
        drop(pool);
        let card = view::card(&store, id)?;
        drop(store);
        audit(
            a,
            now,
            &actor.to_string(),
            &format!("citizen_{}", action.code()),
            "ok",
            json!({
                "application": id.to_string(),
                "referral": doc_referral,
                "document_sha256": sha,
                "cert_serial": signer.serial,
                "iin": signer_iin,
                "events": recs.iter().map(|r| r.seq).collect::<Vec<_>>(),
            }),
        );
        Ok(card)
    })
    .await
    .map(Json)
}

#[utoipa::path(post, path = "/api/citizen/applications/{id}/recall/document", tag = "citizen", security(("citizen" = [])),
    params(("id" = String, Path, description = "application number")),
    request_body = CitizenReasonBody,
    responses(
        (status = 200, description = "the recall request to sign with the signing key: action, application, referral, applicant IIN, reason, a one-time nonce, issue time and expiry", body = DocumentDoc),
        (status = 401, description = "no, an unknown or an expired citizen token", body = ErrorDoc),
        (status = 403, description = "`email_required`", body = ErrorDoc),
        (status = 404, description = "not in the caller's journal", body = ErrorDoc),
        (status = 409, description = "the engine would refuse: `no_active_referral`, `recall_window_closed`", body = ErrorDoc),
        (status = 422, description = "`reason_required`, `invalid_input`", body = ErrorDoc),
    ))]
pub async fn recall_document(
    Citizen(s): Citizen,
    State(app): State<App>,
    UrlPath(id): UrlPath<String>,
    JsonBody(b): JsonBody<CitizenReasonBody>,
) -> Result<Json<Value>, ApiError> {
    document(Action::Recall, s, app, id, b.reason).await
}

#[utoipa::path(post, path = "/api/citizen/applications/{id}/recall", tag = "citizen", security(("citizen" = [])),
    params(("id" = String, Path, description = "application number")),
    request_body = SignedBody,
    responses(
        (status = 200, description = "recalled: the card, back at the position the order gives; the history shows the applicant as the actor", body = CardDoc),
        (status = 401, description = "no citizen token; `session_expired`", body = ErrorDoc),
        (status = 403, description = "`wrong_purpose` (an AUTH key), `signer_not_applicant`, the pki report's codes (`signature_invalid`, `digest_mismatch`, `untrusted`, `expired`, `revoked`, ...; the report is in `error.report`), `email_required`", body = ErrorDoc),
        (status = 404, description = "not in the caller's journal", body = ErrorDoc),
        (status = 409, description = "`nonce_unknown`, `nonce_used`, `nonce_expired`, `referral_changed`, and the engine's refusals (`recall_window_closed`, `no_active_referral`)", body = ErrorDoc),
        (status = 413, description = "`too_large`", body = ErrorDoc),
        (status = 422, description = "`document_mismatch` (another action, application, referral or citizen, or not the document as issued), or a document outside the signature profile", body = ErrorDoc),
    ))]
pub async fn recall(
    Citizen(s): Citizen,
    State(app): State<App>,
    UrlPath(id): UrlPath<String>,
    JsonBody(b): JsonBody<SignedBody>,
) -> Result<Json<view::Card>, ApiError> {
    signed_action(Action::Recall, s, app, id, b).await
}

#[utoipa::path(post, path = "/api/citizen/applications/{id}/extend/document", tag = "citizen", security(("citizen" = [])),
    params(("id" = String, Path, description = "application number")),
    request_body = CitizenReasonBody,
    responses(
        (status = 200, description = "the extension request to sign with the signing key", body = DocumentDoc),
        (status = 401, description = "no, an unknown or an expired citizen token", body = ErrorDoc),
        (status = 403, description = "`email_required`", body = ErrorDoc),
        (status = 404, description = "not in the caller's journal", body = ErrorDoc),
        (status = 409, description = "the engine would refuse: `no_active_referral`, `already_extended`", body = ErrorDoc),
        (status = 422, description = "`invalid_input`", body = ErrorDoc),
    ))]
pub async fn extend_document(
    Citizen(s): Citizen,
    State(app): State<App>,
    UrlPath(id): UrlPath<String>,
    JsonBody(b): JsonBody<CitizenReasonBody>,
) -> Result<Json<Value>, ApiError> {
    document(Action::Extend, s, app, id, b.reason).await
}

#[utoipa::path(post, path = "/api/citizen/applications/{id}/extend", tag = "citizen", security(("citizen" = [])),
    params(("id" = String, Path, description = "application number")),
    request_body = SignedBody,
    responses(
        (status = 200, description = "extended: the card", body = CardDoc),
        (status = 401, description = "no citizen token; `session_expired`", body = ErrorDoc),
        (status = 403, description = "`wrong_purpose`, `signer_not_applicant`, the pki report's codes, `email_required`", body = ErrorDoc),
        (status = 404, description = "not in the caller's journal", body = ErrorDoc),
        (status = 409, description = "`nonce_unknown`, `nonce_used`, `nonce_expired`, `referral_changed`, `already_extended`, `no_active_referral`", body = ErrorDoc),
        (status = 413, description = "`too_large`", body = ErrorDoc),
        (status = 422, description = "`document_mismatch`, or a document outside the signature profile", body = ErrorDoc),
    ))]
pub async fn extend(
    Citizen(s): Citizen,
    State(app): State<App>,
    UrlPath(id): UrlPath<String>,
    JsonBody(b): JsonBody<SignedBody>,
) -> Result<Json<view::Card>, ApiError> {
    signed_action(Action::Extend, s, app, id, b).await
}

/// The citizen routes (state not yet given).
pub fn routes() -> Router<App> {
    Router::new()
        .route("/api/citizen/challenge", post(challenge))
        .route("/api/citizen/login", post(login))
        .route("/api/citizen/email", post(set_email))
        .route("/api/citizen/me", get(me))
        .route("/api/citizen/applications", get(journal))
        .route("/api/citizen/applications/{id}", get(card))
        .route(
            "/api/citizen/applications/{id}/recall/document",
            post(recall_document),
        )
        .route("/api/citizen/applications/{id}/recall", post(recall))
        .route(
            "/api/citizen/applications/{id}/extend/document",
            post(extend_document),
        )
        .route("/api/citizen/applications/{id}/extend", post(extend))
}

// ---------------------------------------------------------------------------------------
// OpenAPI schemas of the citizen responses.

use super::api::doc::{CardDoc, ErrorDoc};

#[allow(dead_code)]
#[derive(ToSchema)]
#[schema(as = Challenge)]
pub struct ChallengeDoc {
    /// `<login><action>login</action><service>kezek</service><nonce>..</nonce><issued_at>..</issued_at><expires_at>..</expires_at></login>`
    pub xml: String,
    pub nonce: String,
    #[schema(format = DateTime)]
    pub expires_at: String,
}

#[allow(dead_code)]
#[derive(ToSchema)]
#[schema(as = Login)]
pub struct LoginDoc {
    /// `kzc_` + 64 hex digits: send as `Authorization: Bearer TOKEN`.
    pub token: String,
    #[schema(format = DateTime)]
    pub expires_at: String,
    pub iin: String,
    pub common_name: Option<String>,
    /// True until the citizen gives an e-mail address (POST /api/citizen/email).
    pub email_required: bool,
    pub email: Option<String>,
}

#[allow(dead_code)]
#[derive(ToSchema)]
#[schema(as = Email)]
pub struct EmailDoc {
    pub iin: String,
    pub email: String,
}

#[allow(dead_code)]
#[derive(ToSchema)]
#[schema(as = Journal)]
pub struct JournalDoc {
    /// All of the caller's applications (the list holds at most 100).
    pub total: u64,
    pub items: Vec<CardDoc>,
}

#[allow(dead_code)]
#[derive(ToSchema)]
#[schema(as = SignDocument)]
pub struct DocumentDoc {
    /// The request to sign, e.g. `<recall><action>recall</action><application>..</application><referral>..</referral><applicant_iin>..</applicant_iin><reason>..</reason><nonce>..</nonce><issued_at>..</issued_at><expires_at>..</expires_at></recall>`.
    pub xml: String,
    /// `recall` or `extend`.
    pub action: String,
    pub application: String,
    pub referral: u64,
    pub nonce: String,
    #[schema(format = DateTime)]
    pub expires_at: String,
}
