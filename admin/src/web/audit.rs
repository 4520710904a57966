//! The web layer's audit log: what people did through the console that is not a queue
//! event (console scripts, accounts, tokens). Queue changes are in the event log with
//! their actor; the audit page shows both.
//!
//! One JSON object per line in `DATA/web/audit.jsonl`, appended (`O_APPEND`) and synced;
//! the command line appends to the same file while the server runs.

use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use jiff::Timestamp;
use kezek_engine::EngineError;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::accounts::web_dir;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub at: Timestamp,
    /// `operator:NAME` (as in the event log), or `cli` for the command line.
    pub actor: String,
    /// `console`, `add_user`, `token`, ...
    pub action: String,
    /// `ok`, or the error code.
    pub outcome: String,
    /// What was done: for a console run the script's SHA-256 and its first 200 characters.
    pub detail: Value,
}

pub struct Audit {
    path: PathBuf,
    lock: Mutex<()>,
}

impl Audit {
    pub fn open(data: &Path) -> Audit {
        Audit {
            path: web_dir(data).join("audit.jsonl"),
            lock: Mutex::new(()),
        }
    }

    pub fn append(&self, entry: &AuditEntry) -> Result<(), EngineError> {
        let mut line = serde_json::to_vec(entry)
            .map_err(|e| EngineError::internal("audit_io", e.to_string()))?;
        line.push(b'\n');
        let _guard = self.lock.lock();
        if let Some(dir) = self.path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| {
                EngineError::internal("audit_io", format!("{}: {e}", self.path.display()))
            })?;
        f.write_all(&line)
            .and_then(|_| f.sync_data())
            .map_err(|e| EngineError::internal("audit_io", format!("{}: {e}", self.path.display())))
    }

    /// The last `limit` entries, oldest first (lines that do not parse are skipped).
    pub fn recent(&self, limit: usize) -> Vec<AuditEntry> {
        let Ok(f) = std::fs::File::open(&self.path) else {
            return Vec::new();
        };
        let mut out = std::collections::VecDeque::with_capacity(limit.min(10_000));
        for line in BufReader::new(f).lines().map_while(Result::ok) {
            if let Ok(e) = serde_json::from_str::<AuditEntry>(&line) {
                if out.len() == limit {
                    out.pop_front();
                }
                if limit > 0 {
                    out.push_back(e);
                }
            }
        }
        out.into()
    }
}

/// The audit detail of a console script: its SHA-256 and its first 200 characters.
pub fn script_detail(script: &str) -> Value {
    use sha2::{Digest, Sha256};
    let head: String = script.chars().take(200).collect();
    serde_json::json!({
        "script_sha256": hex::encode(Sha256::digest(script.as_bytes())),
        "script_head": head,
        "script_bytes": script.len(),
    })
}
