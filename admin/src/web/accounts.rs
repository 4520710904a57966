//! Accounts, roles and API tokens of the web console.
//!
//! They are not queue events, so they are not in the event log: they live in
//! `DATA/web/accounts.json` (mode 0600), beside the sled store. A file, not a sled tree,
//! so that `kezek admin add-user` and `kezek admin token` work while `kezek serve` holds
//! the store: every change takes an exclusive `flock` on `DATA/web/accounts.lock`, reads
//! the file, changes it, writes a temporary file, syncs it and renames it over the old
//! one (atomic). The server reads the file again whenever its inode, size or modification
//! time changes, so a token made from the command line works at once.
//!
//! Passwords are stored only as argon2id hashes (PHC strings); API tokens only as their
//! SHA-256. A token is `kz_` followed by 64 hex digits (256 random bits).

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::RwLock;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use jiff::Timestamp;
use kezek_engine::EngineError;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What an account may do. Each role implies the ones before it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads: cards, queues, rules, impact, the console.
    Viewer,
    /// Acts on applications and places.
    Operator,
    /// Drafts and activates rules (and everything an operator does).
    #[value(name = "rules_admin")]
    RulesAdmin,
}

impl Role {
    pub fn code(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::RulesAdmin => "rules_admin",
        }
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "viewer" => Ok(Role::Viewer),
            "operator" => Ok(Role::Operator),
            "rules_admin" => Ok(Role::RulesAdmin),
            _ => Err(format!(
                "'{s}' is not a role: use viewer, operator or rules_admin"
            )),
        }
    }
}

/// The limits on names and passwords.
pub const MAX_NAME_CHARS: usize = 32;
pub const MIN_PASSWORD_CHARS: usize = 10;
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// Tokens one account may hold; the oldest is dropped beyond this.
pub const MAX_TOKENS_PER_ACCOUNT: usize = 20;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccountRecord {
    pub name: String,
    pub role: Role,
    /// argon2id, PHC string format.
    pub password_hash: String,
    pub created_at: Timestamp,
    #[serde(default)]
    pub disabled: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenRecord {
    /// SHA-256 of the token, hex.
    pub sha256: String,
    pub account: String,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AccountsFile {
    pub accounts: BTreeMap<String, AccountRecord>,
    pub tokens: Vec<TokenRecord>,
}

/// A signed-in caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub name: String,
    pub role: Role,
}

fn io_err(what: &str, path: &Path, e: std::io::Error) -> EngineError {
    EngineError::internal("accounts_io", format!("{what} {}: {e}", path.display()))
}

/// The folder of the web layer's own files inside a data folder.
pub fn web_dir(data: &Path) -> PathBuf {
    data.join("web")
}

pub fn check_name(name: &str) -> Result<(), EngineError> {
    let ok = !name.is_empty()
        && name.chars().count() <= MAX_NAME_CHARS
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(EngineError::invalid(
            "invalid_name",
            format!(
                "account name '{name}': 1 to {MAX_NAME_CHARS} characters of a-z, 0-9, '_', '.', '-'"
            ),
        ))
    }
}

pub fn check_password(password: &str) -> Result<(), EngineError> {
    if password.chars().count() < MIN_PASSWORD_CHARS || password.len() > MAX_PASSWORD_BYTES {
        return Err(EngineError::invalid(
            "weak_password",
            format!(
                "the password must be {MIN_PASSWORD_CHARS} characters or more (and at most {MAX_PASSWORD_BYTES} bytes)"
            ),
        ));
    }
    Ok(())
}

pub fn hash_password(password: &str) -> Result<String, EngineError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| EngineError::internal("password_hash", format!("cannot hash: {e}")))
}

pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("kz_{}", hex::encode(bytes))
}

/// A random password for the first `admin` account.
pub fn random_password() -> String {
    use rand::distr::{Alphanumeric, SampleString};
    Alphanumeric.sample_string(&mut rand::rng(), 20)
}

/// An exclusive lock on the accounts lock file, held while the value lives.
struct FileLock {
    _file: File,
}

impl FileLock {
    fn acquire(path: &Path) -> Result<FileLock, EngineError> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(|e| io_err("cannot open", path, e))?;
        #[cfg(unix)]
        {
            use std::os::unix::io::AsRawFd;
            // SAFETY: flock on a file descriptor we own; released when the file closes.
            let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
            if rc != 0 {
                return Err(io_err("cannot lock", path, std::io::Error::last_os_error()));
            }
        }
        Ok(FileLock { _file: file })
    }
}

/// What identifies one version of the accounts file on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<std::time::SystemTime>,
    inode: u64,
}

fn stamp(path: &Path) -> Option<Stamp> {
    let m = fs::metadata(path).ok()?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&m);
    #[cfg(not(unix))]
    let inode = 0;
    Some(Stamp {
        len: m.len(),
        modified: m.modified().ok(),
        inode,
    })
}

struct Cached {
    stamp: Option<Stamp>,
    by_token: HashMap<String, Caller>,
    file: AccountsFile,
}

/// The accounts of one data folder.
pub struct Accounts {
    dir: PathBuf,
    cache: RwLock<Cached>,
}

impl Accounts {
    /// Opens (or prepares) the accounts of a data folder. Creates `DATA/web/`.
    pub fn open(data: &Path) -> Result<Accounts, EngineError> {
        let dir = web_dir(data);
        fs::create_dir_all(&dir).map_err(|e| io_err("cannot create", &dir, e))?;
        let a = Accounts {
            dir,
            cache: RwLock::new(Cached {
                stamp: None,
                by_token: HashMap::new(),
                file: AccountsFile::default(),
            }),
        };
        a.refresh()?;
        Ok(a)
    }

    fn path(&self) -> PathBuf {
        self.dir.join("accounts.json")
    }

    fn read_file(&self) -> Result<AccountsFile, EngineError> {
        let path = self.path();
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                EngineError::internal(
                    "accounts_corrupt",
                    format!("{} does not parse: {e}", path.display()),
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(AccountsFile::default()),
            Err(e) => Err(io_err("cannot read", &path, e)),
        }
    }

    fn write_file(&self, file: &AccountsFile) -> Result<(), EngineError> {
        let path = self.path();
        let tmp = self.dir.join("accounts.json.tmp");
        let bytes = serde_json::to_vec_pretty(file)
            .map_err(|e| EngineError::internal("accounts_io", e.to_string()))?;
        let mut opts = OpenOptions::new();
        opts.create(true).truncate(true).write(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts
            .open(&tmp)
            .map_err(|e| io_err("cannot write", &tmp, e))?;
        f.write_all(&bytes)
            .and_then(|_| f.sync_all())
            .map_err(|e| io_err("cannot write", &tmp, e))?;
        fs::rename(&tmp, &path).map_err(|e| io_err("cannot replace", &path, e))?;
        if let Ok(d) = File::open(&self.dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// Re-reads the file if it changed on disk since the last read.
    pub fn refresh(&self) -> Result<(), EngineError> {
        let now = stamp(&self.path());
        if let Ok(c) = self.cache.read() {
            if c.stamp == now && now.is_some() {
                return Ok(());
            }
        }
        let file = self.read_file()?;
        let mut by_token = HashMap::new();
        for t in &file.tokens {
            if let Some(a) = file.accounts.get(&t.account).filter(|a| !a.disabled) {
                by_token.insert(
                    t.sha256.clone(),
                    Caller {
                        name: a.name.clone(),
                        role: a.role,
                    },
                );
            }
        }
        let mut c = self
            .cache
            .write()
            .map_err(|_| EngineError::internal("poisoned", "the accounts cache is poisoned"))?;
        *c = Cached {
            stamp: now,
            by_token,
            file,
        };
        Ok(())
    }

    /// Changes the file under the lock, from its current content on disk.
    fn update<T>(
        &self,
        f: impl FnOnce(&mut AccountsFile) -> Result<T, EngineError>,
    ) -> Result<T, EngineError> {
        let _lock = FileLock::acquire(&self.dir.join("accounts.lock"))?;
        let mut file = self.read_file()?;
        let out = f(&mut file)?;
        self.write_file(&file)?;
        drop(_lock);
        self.refresh()?;
        Ok(out)
    }

    /// The caller a bearer token belongs to (`None` if unknown or the account is disabled).
    pub fn authenticate(&self, token: &str) -> Option<Caller> {
        if token.len() > 256 {
            return None;
        }
        if let Err(e) = self.refresh() {
            eprintln!("accounts: {e}");
        }
        let hash = token_hash(token);
        self.cache.read().ok()?.by_token.get(&hash).cloned()
    }

    /// Checks a password (for browser logins).
    pub fn check_login(&self, name: &str, password: &str) -> Option<Caller> {
        let _ = self.refresh();
        let (phc, caller) = {
            let c = self.cache.read().ok()?;
            let a = c.file.accounts.get(name).filter(|a| !a.disabled)?;
            (
                a.password_hash.clone(),
                Caller {
                    name: a.name.clone(),
                    role: a.role,
                },
            )
        };
        verify_password(password, &phc).then_some(caller)
    }

    /// The account of a name as it stands now (`None` if unknown or disabled): sessions
    /// follow role changes and disabled accounts at once.
    pub fn caller(&self, name: &str) -> Option<Caller> {
        let _ = self.refresh();
        let c = self.cache.read().ok()?;
        let a = c.file.accounts.get(name).filter(|a| !a.disabled)?;
        Some(Caller {
            name: a.name.clone(),
            role: a.role,
        })
    }

    pub fn is_empty(&self) -> bool {
        let _ = self.refresh();
        self.cache
            .read()
            .map(|c| c.file.accounts.is_empty())
            .unwrap_or(false)
    }

    pub fn list(&self) -> Vec<(String, Role)> {
        let _ = self.refresh();
        self.cache
            .read()
            .map(|c| {
                c.file
                    .accounts
                    .values()
                    .map(|a| (a.name.clone(), a.role))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Creates an account. Refuses a name in use.
    pub fn add_user(&self, name: &str, role: Role, password: &str) -> Result<(), EngineError> {
        check_name(name)?;
        check_password(password)?;
        let password_hash = hash_password(password)?;
        self.update(|f| {
            if f.accounts.contains_key(name) {
                return Err(EngineError::refused(
                    "account_exists",
                    format!("an account named '{name}' already exists"),
                ));
            }
            f.accounts.insert(
                name.to_string(),
                AccountRecord {
                    name: name.to_string(),
                    role,
                    password_hash,
                    created_at: Timestamp::now(),
                    disabled: false,
                },
            );
            Ok(())
        })
    }

    /// Issues a new API token for an account and returns it (only its hash is kept).
    pub fn issue_token(&self, name: &str) -> Result<String, EngineError> {
        let token = new_token();
        let sha256 = token_hash(&token);
        self.update(|f| {
            match f.accounts.get(name) {
                Some(a) if !a.disabled => {}
                Some(_) => {
                    return Err(EngineError::refused(
                        "account_disabled",
                        format!("the account '{name}' is disabled"),
                    ))
                }
                None => {
                    return Err(EngineError::not_found(
                        "unknown_account",
                        format!("no account named '{name}'"),
                    ))
                }
            }
            let mine: Vec<usize> = f
                .tokens
                .iter()
                .enumerate()
                .filter(|(_, t)| t.account == name)
                .map(|(i, _)| i)
                .collect();
            if mine.len() >= MAX_TOKENS_PER_ACCOUNT {
                f.tokens.remove(mine[0]);
            }
            f.tokens.push(TokenRecord {
                sha256,
                account: name.to_string(),
                created_at: Timestamp::now(),
            });
            Ok(())
        })?;
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_tokens_and_passwords() {
        let dir = tempfile::tempdir().unwrap();
        let a = Accounts::open(dir.path()).unwrap();
        assert!(a.is_empty());
        a.add_user("ops", Role::Operator, "correct horse battery")
            .unwrap();
        assert_eq!(
            a.add_user("ops", Role::Viewer, "another password")
                .unwrap_err()
                .code,
            "account_exists"
        );
        assert_eq!(
            a.add_user("Bad Name", Role::Viewer, "0123456789")
                .unwrap_err()
                .code,
            "invalid_name"
        );
        assert_eq!(
            a.add_user("v", Role::Viewer, "short").unwrap_err().code,
            "weak_password"
        );
        let t = a.issue_token("ops").unwrap();
        assert!(t.starts_with("kz_") && t.len() == 67);
        assert_eq!(
            a.authenticate(&t),
            Some(Caller {
                name: "ops".into(),
                role: Role::Operator
            })
        );
        assert_eq!(a.authenticate("kz_nope"), None);
        assert_eq!(a.issue_token("nobody").unwrap_err().code, "unknown_account");
        // A second handle (another process) sees the token; the file holds no secret.
        let b = Accounts::open(dir.path()).unwrap();
        assert!(b.authenticate(&t).is_some());
        let text = fs::read_to_string(dir.path().join("web/accounts.json")).unwrap();
        assert!(!text.contains(&t) && !text.contains("correct horse"));
        assert!(b.check_login("ops", "correct horse battery").is_some());
        assert!(b.check_login("ops", "wrong password!").is_none());
        // A token issued through one handle works through the other at once.
        let t2 = b.issue_token("ops").unwrap();
        assert!(a.authenticate(&t2).is_some());
    }
}
