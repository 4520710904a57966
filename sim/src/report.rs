//! The report: figures per rule set, the comparison against the baseline, and the spread
//! over several seeds. Only ordered maps and sorted lists: the same inputs give the same
//! bytes. No wall-clock time appears here.

use std::collections::BTreeMap;

use kezek_engine::AppNo;
use serde::Serialize;

use crate::run::Outcome;
use crate::scenario::Behaviour;

/// Median and 90th percentile (nearest rank) of a list of durations, in days.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Spread {
    pub n: u64,
    pub median_days: f64,
    pub p90_days: f64,
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Nearest-rank percentile of a sorted list.
pub fn percentile<T: Copy>(sorted: &[T], p: f64) -> Option<T> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

impl Spread {
    pub fn of_seconds(sorted: &[i64]) -> Spread {
        let days = |s: Option<i64>| round2(s.unwrap_or(0) as f64 / 86_400.0);
        Spread {
            n: sorted.len() as u64,
            median_days: days(percentile(sorted, 50.0)),
            p90_days: days(percentile(sorted, 90.0)),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct EndStatus {
    pub waiting: u64,
    pub holding_referral: u64,
    pub enrolled: u64,
    pub withdrawn: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Arrivals {
    /// Drawn from the scenario's rates (the same for every rule set of a seed).
    pub drawn: u64,
    /// Drawn for a cohort not yet born at the registration date: not registered.
    pub skipped_unborn: u64,
    pub registered: u64,
    /// Registrations the engine refused (see `refusals`).
    pub refused: u64,
    /// Where the registered arrivals are at the end.
    pub end: EndStatus,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct StartApps {
    pub waiting: u64,
    /// Where the applications waiting at the start are at the end.
    pub end: EndStatus,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Referrals {
    pub issued: u64,
    pub recalled: u64,
    pub expired: u64,
    pub extended: u64,
    pub enrolled: u64,
    /// A parent who would recall found the window closed (the referral then expires).
    pub recall_refused: u64,
    /// A parent who would extend was refused by the rules (the referral then expires).
    pub extension_refused: u64,
    /// Takes the engine refused after the simulation offered them (expected 0).
    pub take_refused: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Places {
    /// Places the calendar asked to publish.
    pub requested: u64,
    /// Places the engine published (including those of the start state's own calendar
    /// within the horizon).
    pub published: u64,
    /// Refused by the rules' blackout (`publication_allowed`).
    pub refused_blackout: u64,
    /// More than the groups' capacity left to publish.
    pub not_publishable: u64,
    /// Places still free when priority phases ended (then open to free access).
    pub unused_at_priority_end: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct PublicationRow {
    pub date: String,
    pub cohort: i32,
    pub language: String,
    pub requested: u64,
    pub published: u64,
    /// Why places were not published (the engine's refusal code, or `no_capacity`).
    pub refused: Option<String>,
    pub unused_at_priority_end: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct QueueSample {
    pub week: u32,
    pub date: String,
    pub total: u64,
    pub by_cohort: BTreeMap<i32, u64>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Envy {
    pub priority: u64,
    pub free_access: u64,
    pub total: u64,
}

/// The figures of one rule set over the horizon.
#[derive(Debug, Clone, Serialize)]
pub struct RuleSetReport {
    pub label: String,
    pub rules_hash: String,
    /// Whether the rule set was activated on the start state (it differs from the active one).
    pub activated: bool,
    pub start: StartApps,
    pub arrivals: Arrivals,
    /// Children placed within the horizon (referral used, or still held at the end), by
    /// the scenario's category code and cohort.
    pub placed: BTreeMap<String, BTreeMap<i32, u64>>,
    pub placed_total: u64,
    /// Days from registration to the first referral issued within the horizon.
    pub waiting_days: BTreeMap<String, Spread>,
    pub referrals: Referrals,
    pub withdrawn: u64,
    pub places: Places,
    /// The calendar, one row per publication date, cohort and language.
    pub publications: Vec<PublicationRow>,
    /// Waiting applications at the start of each week (and at the end).
    pub queue: Vec<QueueSample>,
    /// Referrals issued while an application ahead in the order, same cohort and
    /// language, was still waiting (queued or stop-listed).
    pub justified_envy: Envy,
    /// Commands the engine refused, by code.
    pub refusals: BTreeMap<String, u64>,
}

impl RuleSetReport {
    pub fn new(label: &str, hash: &str) -> RuleSetReport {
        RuleSetReport {
            label: label.to_string(),
            rules_hash: hash.to_string(),
            activated: false,
            start: StartApps::default(),
            arrivals: Arrivals::default(),
            placed: BTreeMap::new(),
            placed_total: 0,
            waiting_days: BTreeMap::new(),
            referrals: Referrals::default(),
            withdrawn: 0,
            places: Places::default(),
            publications: Vec::new(),
            queue: Vec::new(),
            justified_envy: Envy::default(),
            refusals: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Shift {
    pub application: String,
    pub category: String,
    pub cohort: i32,
    /// Days from the registration to the placing referral, in each rule set.
    pub baseline_days: f64,
    pub candidate_days: f64,
    /// Candidate minus baseline: negative is earlier.
    pub shift_days: f64,
}

/// The candidate against the baseline, application by application.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Comparison {
    /// Applications compared (waiting at the start, or arrived within the horizon).
    pub applications: u64,
    /// Placed earlier under the candidate (including placed only under the candidate).
    pub earlier: u64,
    /// Placed later under the candidate (including placed only under the baseline).
    pub later: u64,
    pub unchanged: u64,
    pub placed_only_in_candidate: u64,
    pub placed_only_in_baseline: u64,
    /// By category: (earlier, later).
    pub by_category: BTreeMap<String, EarlierLater>,
    /// The largest shifts among applications placed under both, earliest first.
    pub largest_earlier: Vec<Shift>,
    pub largest_later: Vec<Shift>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct EarlierLater {
    pub earlier: u64,
    pub later: u64,
}

pub const LARGEST_SHIFTS: usize = 10;

impl Comparison {
    pub(crate) fn of(
        base: &BTreeMap<AppNo, Outcome>,
        cand: &BTreeMap<AppNo, Outcome>,
    ) -> Comparison {
        let mut c = Comparison::default();
        let mut shifts: Vec<(i64, AppNo, Shift)> = Vec::new();
        for (id, b) in base {
            let Some(k) = cand.get(id) else { continue };
            c.applications += 1;
            let cat = c.by_category.entry(b.category.clone()).or_default();
            match (b.placed_at, k.placed_at) {
                (None, None) => c.unchanged += 1,
                (None, Some(_)) => {
                    c.earlier += 1;
                    c.placed_only_in_candidate += 1;
                    cat.earlier += 1;
                }
                (Some(_), None) => {
                    c.later += 1;
                    c.placed_only_in_baseline += 1;
                    cat.later += 1;
                }
                (Some(x), Some(y)) => {
                    let d = y.as_second() - x.as_second();
                    if d < 0 {
                        c.earlier += 1;
                        cat.earlier += 1;
                    } else if d > 0 {
                        c.later += 1;
                        cat.later += 1;
                    } else {
                        c.unchanged += 1;
                    }
                    if d != 0 {
                        let days = |t: jiff::Timestamp| {
                            round2((t.as_second() - b.registered_at.as_second()) as f64 / 86_400.0)
                        };
                        shifts.push((
                            d,
                            *id,
                            Shift {
                                application: id.to_string(),
                                category: b.category.clone(),
                                cohort: b.cohort,
                                baseline_days: days(x),
                                candidate_days: days(y),
                                shift_days: round2(d as f64 / 86_400.0),
                            },
                        ));
                    }
                }
            }
        }
        shifts.sort_by_key(|(d, id, _)| (*d, *id));
        c.largest_earlier = shifts
            .iter()
            .filter(|(d, _, _)| *d < 0)
            .take(LARGEST_SHIFTS)
            .map(|(_, _, s)| s.clone())
            .collect();
        c.largest_later = shifts
            .iter()
            .rev()
            .filter(|(d, _, _)| *d > 0)
            .take(LARGEST_SHIFTS)
            .map(|(_, _, s)| s.clone())
            .collect();
        c
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ScenarioSummary {
    pub seed: u64,
    pub horizon_months: u32,
    pub start: String,
    pub start_at: String,
    pub end_at: String,
    pub behaviour: Behaviour,
}

/// One seed: the baseline, the candidate, and the comparison.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub scenario: ScenarioSummary,
    pub baseline: RuleSetReport,
    pub candidate: Option<RuleSetReport>,
    pub comparison: Option<Comparison>,
}

impl Report {
    /// Pretty JSON, the same bytes for the same inputs.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }
}

/// A figure over several seeds.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Figure {
    pub min: f64,
    pub p10: f64,
    pub median: f64,
    pub p90: f64,
    pub max: f64,
}

/// Several seeds: every numeric figure of the single-seed report (by its path, e.g.
/// `baseline.referrals.issued`) with its spread, plus the first seed's report in full.
#[derive(Debug, Clone, Serialize)]
pub struct MultiReport {
    pub runs: u32,
    pub seeds: Vec<u64>,
    pub figures: BTreeMap<String, Figure>,
    pub first: Report,
    #[serde(skip)]
    pub reports: Vec<Report>,
}

impl MultiReport {
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }
}

/// Numeric leaves of a JSON value by path (lists of shifts and publications are left out:
/// they are not the same items from seed to seed).
pub fn flatten(v: &serde_json::Value, path: &str, out: &mut BTreeMap<String, f64>) {
    match v {
        serde_json::Value::Number(n) => {
            if let Some(x) = n.as_f64() {
                out.insert(path.to_string(), x);
            }
        }
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                if matches!(
                    k.as_str(),
                    "largest_earlier" | "largest_later" | "publications" | "scenario"
                ) {
                    continue;
                }
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                flatten(x, &p, out);
            }
        }
        serde_json::Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                // Queue samples by week number, so that paths sort and read well.
                let p = format!("{path}.{i:03}");
                flatten(x, &p, out);
            }
        }
        _ => {}
    }
}

pub(crate) fn aggregate(mut reports: Vec<Report>) -> MultiReport {
    reports.sort_by_key(|r| r.scenario.seed);
    let mut values: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for r in &reports {
        let v = serde_json::to_value(r).unwrap_or(serde_json::Value::Null);
        let mut flat = BTreeMap::new();
        flatten(&v, "", &mut flat);
        for (k, x) in flat {
            if k.ends_with(".week") || k.ends_with(".cohort") {
                continue;
            }
            values.entry(k).or_default().push(x);
        }
    }
    let figures = values
        .into_iter()
        .map(|(k, mut xs)| {
            xs.sort_by(f64::total_cmp);
            let p = |q: f64| percentile(&xs, q).unwrap_or(0.0);
            let fig = Figure {
                min: xs.first().copied().unwrap_or(0.0),
                p10: p(10.0),
                median: p(50.0),
                p90: p(90.0),
                max: xs.last().copied().unwrap_or(0.0),
            };
            (k, fig)
        })
        .collect();
    let seeds = reports.iter().map(|r| r.scenario.seed).collect();
    let first = reports[0].clone();
    MultiReport {
        runs: reports.len() as u32,
        seeds,
        figures,
        first,
        reports,
    }
}
