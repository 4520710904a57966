//! The domain model: applications, kindergartens with groups, publications of places,
//! referrals. Plain data; every field is set only by `State::apply`.

use std::fmt;
use std::str::FromStr;

use jiff::civil::Date;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::iin::Iin;

/// An application number `UO.<year>.<sequence>.<n>`, e.g. `UO.2018.489862.1`.
/// Ordered numerically (year, sequence, n): the last tie-break of the queue order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AppNo {
    pub year: u16,
    pub seq: u32,
    pub n: u16,
}

impl fmt::Display for AppNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UO.{}.{}.{}", self.year, self.seq, self.n)
    }
}

impl FromStr for AppNo {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad =
            || format!("'{s}' is not an application number of the form UO.<year>.<sequence>.<n>");
        let mut parts = s.trim().split('.');
        if parts.next() != Some("UO") {
            return Err(bad());
        }
        fn num(p: Option<&str>) -> Option<&str> {
            p.filter(|x| !x.is_empty() && x.len() <= 9 && x.bytes().all(|b| b.is_ascii_digit()))
        }
        let year: u16 = num(parts.next())
            .and_then(|x| x.parse().ok())
            .ok_or_else(bad)?;
        let seq: u32 = num(parts.next())
            .and_then(|x| x.parse().ok())
            .ok_or_else(bad)?;
        let n: u16 = num(parts.next())
            .and_then(|x| x.parse().ok())
            .ok_or_else(bad)?;
        if parts.next().is_some() || !(1900..=2200).contains(&year) || n == 0 {
            return Err(bad());
        }
        Ok(AppNo { year, seq, n })
    }
}

/// Language of instruction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Language {
    Kk,
    Ru,
}

impl Language {
    pub fn code(self) -> &'static str {
        match self {
            Language::Kk => "kk",
            Language::Ru => "ru",
        }
    }
    pub const ALL: [Language; 2] = [Language::Kk, Language::Ru];
}

impl FromStr for Language {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_lowercase().as_str() {
            "kk" | "kz" | "kaz" | "қазақ" | "казахский" | "kazakh" => {
                Ok(Language::Kk)
            }
            "ru" | "rus" | "орыс" | "русский" | "russian" => Ok(Language::Ru),
            _ => Err(format!("'{s}' is not a language: use kk or ru")),
        }
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// Status of an application (domain.md section 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    Queued,
    ReferralIssued,
    Enrolled,
    StopListed,
    Withdrawn,
}

impl Status {
    pub fn code(self) -> &'static str {
        match self {
            Status::Queued => "queued",
            Status::ReferralIssued => "referral_issued",
            Status::Enrolled => "enrolled",
            Status::StopListed => "stop_listed",
            Status::Withdrawn => "withdrawn",
        }
    }
    /// (Kazakh, Russian) as the card shows them.
    pub fn words(self) -> (&'static str, &'static str) {
        match self {
            Status::Queued => ("Кезекте", "В очереди"),
            Status::ReferralIssued => ("Жолдама берілді", "Направление выдано"),
            Status::Enrolled => ("Қабылданды", "Зачислен"),
            Status::StopListed => ("Тоқтату тізімінде", "В стоп-листе"),
            Status::Withdrawn => ("Кері қайтарылды", "Отозвано заявителем"),
        }
    }
    /// Waiting applications hold a queue position: queued and stop-listed ones.
    pub fn is_waiting(self) -> bool {
        matches!(self, Status::Queued | Status::StopListed)
    }
}

/// The key that orders a cohort queue: the rules' values (category rank, registration
/// instant, ...; unused slots are 0), then the application number. Computed when an
/// application is registered, changes category, or a rule set is activated; never on
/// take or recall — which is why a recall restores every position by construction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct OrderKey {
    pub rule: [i64; 4],
    pub app: AppNo,
}

impl OrderKey {
    pub fn new(values: &[i64], app: AppNo) -> OrderKey {
        let mut rule = [0i64; 4];
        for (slot, v) in rule.iter_mut().zip(values) {
            *slot = *v;
        }
        OrderKey { rule, app }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Application {
    pub id: AppNo,
    pub child_iin: Iin,
    pub child_name: Option<String>,
    pub birth_date: Date,
    pub applicant_iin: Iin,
    pub applicant_name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub language: Language,
    pub category: String,
    pub registered_at: Timestamp,
    pub cohort: i32,
    pub key: OrderKey,
    pub status: Status,
    /// The active referral, while status is `referral_issued`.
    pub referral: Option<u64>,
    pub locked_until: Option<Timestamp>,
    pub stop_listed_until: Option<Timestamp>,
    /// Sequence numbers of the events that concern this application (the "changes" tab).
    pub history: Vec<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    pub cohort: i32,
    pub language: Language,
    pub capacity: u32,
    /// Places ever published for this group (each is open, held by a referral, or taken
    /// by an enrolled child); publishable = capacity - published.
    pub published: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Kindergarten {
    pub id: String,
    pub name: String,
    pub district: String,
    pub groups: Vec<Group>,
}

impl Kindergarten {
    pub fn group(&self, cohort: i32, language: Language) -> Option<&Group> {
        self.groups
            .iter()
            .find(|g| g.cohort == cohort && g.language == language)
    }
}

/// Phase of a publication (domain.md section 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Phase {
    Priority,
    FreeAccess,
}

impl Phase {
    pub fn code(self) -> &'static str {
        match self {
            Phase::Priority => "priority",
            Phase::FreeAccess => "free_access",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Publication {
    pub id: u64,
    pub kindergarten: String,
    pub cohort: i32,
    pub language: Language,
    pub places: u32,
    pub places_left: u32,
    pub published_at: Timestamp,
    pub free_access_at: Timestamp,
    pub phase: Phase,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReferralState {
    Active,
    Recalled,
    Expired,
    Cancelled,
    Used,
    Withdrawn,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Referral {
    pub id: u64,
    pub app: AppNo,
    pub publication: u64,
    pub kindergarten: String,
    pub issued_at: Timestamp,
    pub valid_until: Timestamp,
    pub recall_until: Timestamp,
    pub extensions: u32,
    pub phase: Phase,
    pub state: ReferralState,
}
