//! Kezek's engine: the preschool enrollment queue of a city.
//!
//! Commands in, events out; state rebuilt from events; the clock is an input. This crate
//! knows nothing of HTTP or terminals: `admin/` owns the interfaces.

pub mod calendar;
pub mod command;
pub mod console;
pub mod demo;
pub mod error;
pub mod event;
pub mod iin;
pub mod impact;
pub mod import;
pub mod index;
pub mod model;
pub mod rules;
pub mod state;
pub mod store;
pub mod view;

pub use command::{Command, Core, RegisterInput, Request};
pub use error::{EngineError, ErrorKind, Result};
pub use event::{Actor, Event, EventRecord};
pub use model::{AppNo, Language, Phase, Status};
pub use rules::RuleSet;
pub use state::State;
pub use store::{ClockMode, Store};
