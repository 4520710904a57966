//! The web console and its JSON API (`kezek serve`).
//!
//! - [`server`]: the shared state ([`App`]), the router with its limits, the clock
//!   ticker, `kezek serve`.
//! - [`api`]: the JSON API under `/api/` and its OpenAPI document.
//! - [`accounts`]: accounts, roles, API tokens (`DATA/web/accounts.json`).
//! - [`audit`]: the web layer's audit log (`DATA/web/audit.jsonl`).
//! - [`citizen`]: the parent's flow: signature login, the journal, signed recall and
//!   extension (`DATA/web/citizens.json`, `DATA/web/signed/`).
//! - [`admin`]: `kezek admin add-user` and `kezek admin token`.
//! - [`error`]: the JSON errors and the mapping of engine errors to HTTP statuses.

pub mod accounts;
pub mod admin;
pub mod api;
pub mod audit;
pub mod citizen;
pub mod error;
pub mod server;

pub use accounts::{Accounts, Caller, Role};
pub use admin::AdminCmd;
pub use citizen::CitizenLimits;
pub use server::{router, serve, spawn_ticker, App, Limits};
