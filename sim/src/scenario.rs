//! The scenario file (TOML): start state, horizon, arrivals, the calendar of place
//! publications, parent behaviour, a seed. Parsed strictly (unknown fields are refused) and
//! then checked; every error names the field.

use std::collections::BTreeMap;

use jiff::civil::{Date, Time};
use jiff::Timestamp;
use kezek_engine::Language;
use serde::Deserialize;

use crate::SimError;

/// Limits on what a scenario may ask for.
pub const MAX_SCENARIO_BYTES: usize = 1024 * 1024;
pub const MAX_HORIZON_MONTHS: u32 = 60;
pub const MAX_RATE_ROWS: usize = 1_000;
pub const MAX_PER_MONTH: f64 = 100_000.0;
pub const MAX_PUBLICATION_ENTRIES: usize = 10_000;
pub const MAX_PUBLICATION_OCCURRENCES: usize = 100_000;
pub const MAX_PLACES_PER_OCCURRENCE: u32 = 100_000;
pub const MAX_ALIASES: usize = 64;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    pub seed: u64,
    pub horizon_months: u32,
    pub start: StartFile,
    #[serde(default)]
    pub arrivals: ArrivalsFile,
    #[serde(default)]
    pub publications: Vec<PublicationFile>,
    pub behaviour: Behaviour,
    #[serde(default)]
    pub category_aliases: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartFile {
    /// `"demo"` or `"store"`.
    pub from: String,
    pub demo_seed: Option<u64>,
    /// `"city"` or `"small"`.
    pub demo_scale: Option<String>,
    /// RFC 3339 instant (a TOML date-time or a string).
    pub at: Option<toml::Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArrivalsFile {
    #[serde(default)]
    pub from_history: bool,
    pub kk_share: Option<f64>,
    #[serde(default)]
    pub rates: Vec<RateFile>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateFile {
    pub cohort: i32,
    pub category: String,
    pub language: Option<String>,
    pub per_month: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublicationFile {
    pub date: Option<toml::Value>,
    pub every: Option<String>,
    pub from: Option<toml::Value>,
    pub to: Option<toml::Value>,
    /// Local time of day "HH:MM" (default "09:00").
    pub time: Option<String>,
    pub cohort: i32,
    pub language: String,
    pub places: u32,
}

/// Parent behaviour: probabilities (0 to 1).
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Behaviour {
    /// A parent eligible in a priority phase takes a place offered (per publication).
    pub take_in_priority: f64,
    /// A waiting parent takes a free-access place of their cohort and language (per publication).
    pub take_in_free_access: f64,
    /// What happens to a referral; these four add up to 1.
    pub recall: f64,
    pub extend: f64,
    pub expire: f64,
    pub enroll: f64,
    /// After an extension: enrolled (otherwise the referral expires).
    pub enroll_after_extend: f64,
    /// Monthly chance that a waiting application is withdrawn.
    #[serde(default)]
    pub withdraw_per_month: f64,
}

/// Where the simulation starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartKind {
    Demo {
        seed: u64,
        small: bool,
    },
    /// The current store (its state is passed in by the caller, read-only).
    Store,
}

/// One arrival rate: registrations per month of children of a cohort (birth year) and
/// category; `language` `None` splits by `kk_share`.
#[derive(Debug, Clone, PartialEq)]
pub struct Rate {
    pub cohort: i32,
    pub category: String,
    pub language: Option<Language>,
    pub per_month: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Arrivals {
    Rates(Vec<Rate>),
    /// The rates seen in the start state's registrations of the last 12 months, by age
    /// (registration year minus birth year), category and language.
    FromHistory,
}

/// One publication in the calendar (a repeated entry is expanded into several).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Occurrence {
    pub date: Date,
    pub time: Time,
    pub cohort: i32,
    pub language: Language,
    pub places: u32,
    /// Index of the `[[publications]]` entry it comes from.
    pub entry: usize,
}

/// A checked scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub seed: u64,
    pub horizon_months: u32,
    pub start: StartKind,
    pub start_at: Option<Timestamp>,
    pub arrivals: Arrivals,
    pub kk_share: f64,
    pub publications: Vec<Occurrence>,
    pub behaviour: Behaviour,
    /// Category codes of the start state and the arrivals -> the code a rule set that
    /// renamed them uses (applied only to a rule set that does not know the original).
    pub category_aliases: BTreeMap<String, String>,
}

fn bad(field: impl Into<String>, message: impl Into<String>) -> SimError {
    SimError::Scenario {
        field: field.into(),
        message: message.into(),
    }
}

fn probability(field: &str, v: f64) -> Result<f64, SimError> {
    if v.is_finite() && (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(bad(field, format!("{v} is not a probability from 0 to 1")))
    }
}

fn language(field: &str, s: &str) -> Result<Language, SimError> {
    match s {
        "kk" => Ok(Language::Kk),
        "ru" => Ok(Language::Ru),
        _ => Err(bad(field, format!("'{s}' is not a language: use kk or ru"))),
    }
}

fn cohort(field: &str, c: i32) -> Result<i32, SimError> {
    if (1900..=2200).contains(&c) {
        Ok(c)
    } else {
        Err(bad(field, format!("{c} is not a birth year")))
    }
}

fn date(field: &str, v: &toml::Value) -> Result<Date, SimError> {
    let text = match v {
        toml::Value::String(s) => s.clone(),
        toml::Value::Datetime(d) if d.date.is_some() && d.time.is_none() => d.to_string(),
        other => return Err(bad(field, format!("{other} is not a date YYYY-MM-DD"))),
    };
    text.parse::<Date>()
        .map_err(|_| bad(field, format!("'{text}' is not a date YYYY-MM-DD")))
}

fn instant(field: &str, v: &toml::Value) -> Result<Timestamp, SimError> {
    let text = match v {
        toml::Value::String(s) => s.clone(),
        toml::Value::Datetime(d) => d.to_string(),
        other => return Err(bad(field, format!("{other} is not an RFC 3339 instant"))),
    };
    text.parse::<Timestamp>().map_err(|_| {
        bad(
            field,
            format!(
                "'{text}' is not an RFC 3339 instant with an offset (2026-12-01T09:00:00+05:00)"
            ),
        )
    })
}

fn time_of_day(field: &str, s: &str) -> Result<Time, SimError> {
    let b = s.as_bytes();
    let ok = b.len() == 5 && b[2] == b':';
    let parsed = ok
        .then(|| {
            let h: i8 = s[0..2].parse().ok()?;
            let m: i8 = s[3..5].parse().ok()?;
            Time::new(h, m, 0, 0).ok()
        })
        .flatten();
    parsed.ok_or_else(|| bad(field, format!("'{s}' is not a time of day HH:MM")))
}

fn category_code(field: &str, s: &str) -> Result<String, SimError> {
    let ok = (1..=32).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
    if ok {
        Ok(s.to_string())
    } else {
        Err(bad(
            field,
            format!("'{s}' is not a category code ([a-z_], 1 to 32)"),
        ))
    }
}

impl Scenario {
    /// Parses and checks a scenario. Errors name the field.
    pub fn from_toml(text: &str) -> Result<Scenario, SimError> {
        if text.len() > MAX_SCENARIO_BYTES {
            return Err(bad(
                "scenario",
                format!("larger than {} KiB", MAX_SCENARIO_BYTES / 1024),
            ));
        }
        let file: ScenarioFile = toml::from_str(text).map_err(|e| {
            let field = e
                .message()
                .split('`')
                .nth(1)
                .map(str::to_string)
                .unwrap_or_else(|| "scenario".into());
            SimError::Scenario {
                field,
                message: e.to_string().trim().replace('\n', " "),
            }
        })?;
        Scenario::check(file)
    }

    fn check(f: ScenarioFile) -> Result<Scenario, SimError> {
        if !(1..=MAX_HORIZON_MONTHS).contains(&f.horizon_months) {
            return Err(bad(
                "horizon_months",
                format!("must be 1 to {MAX_HORIZON_MONTHS}"),
            ));
        }
        let start = match f.start.from.as_str() {
            "demo" => {
                let small = match f.start.demo_scale.as_deref() {
                    None | Some("city") => false,
                    Some("small") => true,
                    Some(other) => {
                        return Err(bad(
                            "start.demo_scale",
                            format!("'{other}' is not a scale: use city or small"),
                        ))
                    }
                };
                StartKind::Demo {
                    seed: f.start.demo_seed.unwrap_or(1),
                    small,
                }
            }
            "store" => {
                if f.start.demo_seed.is_some() {
                    return Err(bad("start.demo_seed", "goes with from = \"demo\" only"));
                }
                if f.start.demo_scale.is_some() {
                    return Err(bad("start.demo_scale", "goes with from = \"demo\" only"));
                }
                StartKind::Store
            }
            other => {
                return Err(bad(
                    "start.from",
                    format!("'{other}' is not a start: use demo or store"),
                ))
            }
        };
        let start_at = f
            .start
            .at
            .as_ref()
            .map(|v| instant("start.at", v))
            .transpose()?;

        let kk_share = probability("arrivals.kk_share", f.arrivals.kk_share.unwrap_or(0.62))?;
        if f.arrivals.rates.len() > MAX_RATE_ROWS {
            return Err(bad(
                "arrivals.rates",
                format!("at most {MAX_RATE_ROWS} rows"),
            ));
        }
        let arrivals = if f.arrivals.from_history {
            if !f.arrivals.rates.is_empty() {
                return Err(bad(
                    "arrivals.rates",
                    "give rates or from_history = true, not both",
                ));
            }
            Arrivals::FromHistory
        } else {
            let mut rates = Vec::new();
            for (i, r) in f.arrivals.rates.iter().enumerate() {
                let field = |name: &str| format!("arrivals.rates[{i}].{name}");
                if !(r.per_month.is_finite() && (0.0..=MAX_PER_MONTH).contains(&r.per_month)) {
                    return Err(bad(
                        field("per_month"),
                        format!("{} is not 0 to {MAX_PER_MONTH}", r.per_month),
                    ));
                }
                rates.push(Rate {
                    cohort: cohort(&field("cohort"), r.cohort)?,
                    category: category_code(&field("category"), &r.category)?,
                    language: r
                        .language
                        .as_deref()
                        .map(|l| language(&field("language"), l))
                        .transpose()?,
                    per_month: r.per_month,
                });
            }
            Arrivals::Rates(rates)
        };

        if f.publications.len() > MAX_PUBLICATION_ENTRIES {
            return Err(bad(
                "publications",
                format!("at most {MAX_PUBLICATION_ENTRIES} entries"),
            ));
        }
        let mut publications = Vec::new();
        for (i, p) in f.publications.iter().enumerate() {
            let field = |name: &str| format!("publications[{i}].{name}");
            let lang = language(&field("language"), &p.language)?;
            let c = cohort(&field("cohort"), p.cohort)?;
            if p.places == 0 || p.places > MAX_PLACES_PER_OCCURRENCE {
                return Err(bad(
                    field("places"),
                    format!("must be 1 to {MAX_PLACES_PER_OCCURRENCE}"),
                ));
            }
            let time = match &p.time {
                Some(t) => time_of_day(&field("time"), t)?,
                None => Time::constant(9, 0, 0, 0),
            };
            let dates: Vec<Date> = match (&p.date, &p.every, &p.from, &p.to) {
                (Some(d), None, None, None) => vec![date(&field("date"), d)?],
                (None, Some(every), Some(from), Some(to)) => {
                    let from = date(&field("from"), from)?;
                    let to = date(&field("to"), to)?;
                    if to < from {
                        return Err(bad(field("to"), "is before from"));
                    }
                    if !matches!(every.as_str(), "day" | "week" | "month") {
                        return Err(bad(
                            field("every"),
                            format!("'{every}' is not a period: use day, week or month"),
                        ));
                    }
                    let mut out = Vec::new();
                    let mut k: i64 = 0;
                    loop {
                        let span = match every.as_str() {
                            "day" => jiff::Span::new().days(k),
                            "week" => jiff::Span::new().weeks(k),
                            _ => jiff::Span::new().months(k),
                        };
                        let Ok(d) = from.checked_add(span) else { break };
                        if d > to {
                            break;
                        }
                        out.push(d);
                        if out.len() > MAX_PUBLICATION_OCCURRENCES {
                            return Err(bad(
                                field("every"),
                                format!("more than {MAX_PUBLICATION_OCCURRENCES} publications"),
                            ));
                        }
                        k += 1;
                    }
                    out
                }
                _ => {
                    return Err(bad(
                        field("date"),
                        "give either date, or every with from and to",
                    ))
                }
            };
            for d in dates {
                publications.push(Occurrence {
                    date: d,
                    time,
                    cohort: c,
                    language: lang,
                    places: p.places,
                    entry: i,
                });
            }
            if publications.len() > MAX_PUBLICATION_OCCURRENCES {
                return Err(bad(
                    "publications",
                    format!("more than {MAX_PUBLICATION_OCCURRENCES} publications in all"),
                ));
            }
        }

        let b = &f.behaviour;
        for (name, v) in [
            ("take_in_priority", b.take_in_priority),
            ("take_in_free_access", b.take_in_free_access),
            ("recall", b.recall),
            ("extend", b.extend),
            ("expire", b.expire),
            ("enroll", b.enroll),
            ("enroll_after_extend", b.enroll_after_extend),
            ("withdraw_per_month", b.withdraw_per_month),
        ] {
            probability(&format!("behaviour.{name}"), v)?;
        }
        let sum = b.recall + b.extend + b.expire + b.enroll;
        if (sum - 1.0).abs() > 1e-9 {
            return Err(bad(
                "behaviour.enroll",
                format!(
                    "recall + extend + expire + enroll must add up to 1 (they add up to {sum})"
                ),
            ));
        }

        if f.category_aliases.len() > MAX_ALIASES {
            return Err(bad(
                "category_aliases",
                format!("at most {MAX_ALIASES} aliases"),
            ));
        }
        for (from, to) in &f.category_aliases {
            category_code(&format!("category_aliases.{from}"), from)?;
            category_code(&format!("category_aliases.{from}"), to)?;
        }

        Ok(Scenario {
            seed: f.seed,
            horizon_months: f.horizon_months,
            start,
            start_at,
            arrivals,
            kk_share,
            publications,
            behaviour: f.behaviour,
            category_aliases: f.category_aliases,
        })
    }
}
