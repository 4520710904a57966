//! `kezek admin add-user NAME --role ROLE` and `kezek admin token NAME`: accounts of the
//! web console, kept in `DATA/web/accounts.json` (see [`super::accounts`]). They do not
//! open the sled store, so they work while `kezek serve` runs; the server picks the
//! change up at the next request.

use std::io::{BufRead, IsTerminal, Read, Write};
use std::path::Path;

use clap::Subcommand;
use jiff::Timestamp;
use kezek_engine::{EngineError, Store};
use serde_json::json;

use super::accounts::{Accounts, Role, MAX_PASSWORD_BYTES};
use super::audit::{Audit, AuditEntry};
use crate::cli::Failure;

#[derive(Subcommand, Debug)]
pub enum AdminCmd {
    /// Create an account of the web console; the password is read from standard input.
    AddUser {
        name: String,
        #[arg(long, value_enum)]
        role: Role,
    },
    /// Print a new API token for an account (only its SHA-256 is stored).
    Token { name: String },
}

fn read_password() -> Result<String, Failure> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("password (shown as you type; at least 10 characters): ");
        let _ = std::io::stderr().flush();
    }
    let mut line = String::new();
    stdin
        .lock()
        .take(MAX_PASSWORD_BYTES as u64 + 2)
        .read_line(&mut line)
        .map_err(|e| Failure {
            exit: 4,
            code: "invalid_input".into(),
            message: format!("cannot read the password from standard input: {e}"),
        })?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

fn audit(data: &Path, action: &str, detail: serde_json::Value) {
    let entry = AuditEntry {
        at: Timestamp::now(),
        actor: "cli".into(),
        action: action.into(),
        outcome: "ok".into(),
        detail,
    };
    if let Err(e) = Audit::open(data).append(&entry) {
        eprintln!("warning: not written to the audit log: {e}");
    }
}

pub fn run(data: &Path, cmd: AdminCmd) -> Result<(), Failure> {
    if !Store::exists(data) {
        return Err(EngineError::not_found(
            "no_store",
            format!(
                "no store at {} (create one with `kezek serve`, `kezek init` or `kezek demo`)",
                data.display()
            ),
        )
        .into());
    }
    let accounts = Accounts::open(data)?;
    match cmd {
        AdminCmd::AddUser { name, role } => {
            let password = read_password()?;
            accounts.add_user(&name, role, &password)?;
            audit(data, "add_user", json!({"name": name, "role": role.code()}));
            println!("created the account '{name}' (role {})", role.code());
        }
        AdminCmd::Token { name } => {
            let token = accounts.issue_token(&name)?;
            audit(data, "token", json!({"name": name}));
            println!("{token}");
        }
    }
    Ok(())
}
