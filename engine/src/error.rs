//! Engine errors. Each has a stable `code` (snake_case) that the interfaces translate to
//! exit codes and HTTP statuses; the engine itself knows neither.

use crate::rules::RuleError;

/// What kind of failure: the interfaces map these to exit codes / HTTP statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The input is malformed or names something that does not exist (exit 4, HTTP 4xx).
    Invalid,
    /// The input is well-formed but the rules or the state refuse it (exit 3, HTTP 409/422).
    Refused,
    /// Not found (exit 4, HTTP 404).
    NotFound,
    /// Storage or internal failure (exit 1, HTTP 500).
    Internal,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct EngineError {
    pub kind: ErrorKind,
    pub code: &'static str,
    pub message: String,
}

impl EngineError {
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        EngineError {
            kind: ErrorKind::Invalid,
            code,
            message: message.into(),
        }
    }
    pub fn refused(code: &'static str, message: impl Into<String>) -> Self {
        EngineError {
            kind: ErrorKind::Refused,
            code,
            message: message.into(),
        }
    }
    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        EngineError {
            kind: ErrorKind::NotFound,
            code,
            message: message.into(),
        }
    }
    pub fn internal(code: &'static str, message: impl Into<String>) -> Self {
        EngineError {
            kind: ErrorKind::Internal,
            code,
            message: message.into(),
        }
    }
    /// A rule script failed while a command ran: the command is refused.
    pub fn rule(e: RuleError) -> Self {
        EngineError::refused("rule_failed", format!("a rule failed: {e}"))
    }
}

impl From<sled::Error> for EngineError {
    fn from(e: sled::Error) -> Self {
        EngineError::internal("storage", format!("storage error: {e}"))
    }
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;
