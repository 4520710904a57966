//! The administrator's interfaces over the Kezek engine: the `kezek` command line (and
//! the web console). This crate owns the terminal and the protocol; the engine knows
//! neither. It translates engine errors (stable codes) into exit codes.

pub mod cli;
pub mod output;
pub mod pki_cli;
pub mod sim_cli;
pub mod web;
