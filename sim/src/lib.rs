//! Kezek's what-if simulation: a horizon of the city replayed in memory under a baseline and
//! a candidate rule set, on the same random draws, through the engine's own [`Core`]
//! (commands decided by `Core::execute`, time moved by `Core::advance`, events applied by
//! `State::apply`). Nothing here decides what the engine decides: the simulation only plays
//! the parents and the operators (registrations, publications, takes, recalls, extensions,
//! enrolments, withdrawals) and observes the events.
//!
//! The entry points: [`Scenario::from_toml`], [`StartState::prepare`], then [`simulate`]
//! (one seed) or [`simulate_runs`] (N seeds over all cores). A caller (the command line, a
//! web page) passes a [`Control`] to bound the time and to cancel.
//!
//! [`Core`]: kezek_engine::Core

pub mod draws;
pub mod out;
pub mod report;
pub mod run;
pub mod scenario;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use kezek_engine::state::Data;
use kezek_engine::{EngineError, RuleSet};

pub use report::{MultiReport, Report};
pub use scenario::Scenario;

/// The most runs (seeds) one call may ask for.
pub const MAX_RUNS: u32 = 1_000;

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The scenario is invalid: which field, what is wrong.
    #[error("{field}: {message}")]
    Scenario { field: String, message: String },
    /// A rule set cannot run this scenario (does not compile, does not know a category).
    #[error("{label} rules: {message}")]
    Rules { label: String, message: String },
    /// The engine refused or failed.
    #[error("{0}")]
    Engine(#[from] EngineError),
    #[error("the simulation was cancelled")]
    Cancelled,
    #[error("the simulation ran past its deadline")]
    TimedOut,
}

/// Bounds a simulation: a cancellation flag, a deadline, and a progress counter (in
/// simulated days, summed over runs and rule sets) for a progress bar.
#[derive(Default)]
pub struct Control<'a> {
    pub cancel: Option<&'a AtomicBool>,
    pub deadline: Option<Instant>,
    pub progress: Option<&'a AtomicU64>,
}

impl Control<'_> {
    pub(crate) fn check(&self) -> Result<(), SimError> {
        if self.cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
            return Err(SimError::Cancelled);
        }
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(SimError::TimedOut);
        }
        Ok(())
    }

    pub(crate) fn days_done(&self, days: u64) {
        if let Some(p) = self.progress {
            p.fetch_add(days, Ordering::Relaxed);
        }
    }
}

/// A rule set to simulate under: a label for the report and its files.
#[derive(Debug, Clone)]
pub struct RuleInput {
    pub label: String,
    pub files: BTreeMap<String, String>,
}

/// The start state, prepared once and shared by every run: the primary data and the
/// instant the simulation starts at.
pub struct StartState {
    pub data: Data,
    pub at: jiff::Timestamp,
    /// Short description for the report ("demo city seed 1 (city)", "store").
    pub source: String,
}

impl StartState {
    /// Builds the start state: the demo city from its seed (in memory, under the embedded
    /// default rules), or the given store data (a copy: the store itself is never touched).
    pub fn prepare(scenario: &Scenario, store: Option<Data>) -> Result<StartState, SimError> {
        run::prepare_start(scenario, store)
    }

    /// The rules active in the start state.
    pub fn active_rules(&self) -> Option<BTreeMap<String, String>> {
        self.data.rules_versions.last().map(|v| v.files.clone())
    }
}

/// The number of simulated days one run of one rule set covers (for progress bars).
pub fn days_per_rule_set(scenario: &Scenario, start: &StartState) -> u64 {
    run::horizon_end(start.at, scenario.horizon_months)
        .map(|end| ((end.as_second() - start.at.as_second()) / 86_400).max(1) as u64)
        .unwrap_or(1)
}

/// Checks that a rule set compiles, so a bad directory is refused before anything runs.
pub fn check_rules(input: &RuleInput) -> Result<RuleSet, SimError> {
    RuleSet::compile(&input.files).map_err(|e| SimError::Rules {
        label: input.label.clone(),
        message: e.to_string(),
    })
}

/// One seed: the baseline, and the candidate if any, on the same draws, side by side.
/// `None` as the baseline means the rules active in the start state.
pub fn simulate(
    scenario: &Scenario,
    start: &StartState,
    baseline: Option<&RuleInput>,
    candidate: Option<&RuleInput>,
    seed: u64,
    control: &Control<'_>,
) -> Result<Report, SimError> {
    let (report, _) = run::simulate_pair(scenario, start, baseline, candidate, seed, control)?;
    Ok(report)
}

/// `runs` seeds (`scenario.seed`, `+1`, ...) over all cores; each figure with its spread.
pub fn simulate_runs(
    scenario: &Scenario,
    start: &StartState,
    baseline: Option<&RuleInput>,
    candidate: Option<&RuleInput>,
    runs: u32,
    control: &Control<'_>,
) -> Result<MultiReport, SimError> {
    use rayon::prelude::*;
    if runs == 0 || runs > MAX_RUNS {
        return Err(SimError::Scenario {
            field: "runs".into(),
            message: format!("must be 1 to {MAX_RUNS}"),
        });
    }
    let seeds: Vec<u64> = (0..u64::from(runs))
        .map(|i| scenario.seed.wrapping_add(i))
        .collect();
    let reports: Result<Vec<Report>, SimError> = seeds
        .par_iter()
        .map(|seed| simulate(scenario, start, baseline, candidate, *seed, control))
        .collect();
    Ok(report::aggregate(reports?))
}
