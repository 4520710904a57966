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
//! - [`session`]: browser sessions, CSRF tokens, the login throttle, cookies.
//! - [`i18n`]: the words of the pages in Kazakh, Russian and English.
//! - [`pages`]: the HTML pages of the console (maud), with `assets/` (CSS, JS).

pub mod accounts;
pub mod admin;
pub mod api;
pub mod audit;
pub mod citizen;
pub mod error;
pub mod i18n;
pub mod pages;
pub mod server;
pub mod session;

pub use accounts::{Accounts, Caller, Role};
pub use admin::AdminCmd;
pub use citizen::CitizenLimits;
pub use server::{router, serve, spawn_ticker, App, Limits};
pub use session::SessionLimits;
