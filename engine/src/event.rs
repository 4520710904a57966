//! Events: what was decided. The log of events is the truth; state is rebuilt from it.

use std::collections::BTreeMap;

use jiff::civil::Date;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::iin::Iin;
use crate::model::{AppNo, Language, OrderKey, Phase};

/// Who caused an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Actor {
    /// The engine itself: transitions that time brings.
    System,
    /// An administrator or operator, by account name.
    Operator(String),
    /// The applicant, by signature: IIN and certificate serial.
    Applicant { iin: String, cert_serial: String },
}

impl std::fmt::Display for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Actor::System => f.write_str("system"),
            Actor::Operator(name) => write!(f, "operator:{name}"),
            Actor::Applicant { iin, cert_serial } => write!(f, "applicant:{iin}:{cert_serial}"),
        }
    }
}

/// One group of a kindergarten as imported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupRow {
    pub kindergarten: String,
    pub name: String,
    pub district: String,
    pub cohort: i32,
    pub language: Language,
    pub capacity: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    pub app: AppNo,
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
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    RulesActivated {
        version: u32,
        hash: String,
        files: BTreeMap<String, String>,
    },
    GroupsAdded {
        groups: Vec<GroupRow>,
    },
    Registered(Box<Registration>),
    CategoryChanged {
        app: AppNo,
        category: String,
        key: OrderKey,
    },
    PlacesPublished {
        publication: u64,
        kindergarten: String,
        cohort: i32,
        language: Language,
        places: u32,
        free_access_at: Timestamp,
    },
    PriorityPhaseEnded {
        publication: u64,
    },
    ReferralIssued {
        referral: u64,
        app: AppNo,
        publication: u64,
        valid_until: Timestamp,
        recall_until: Timestamp,
        phase: Phase,
    },
    ReferralExtended {
        referral: u64,
        app: AppNo,
        valid_until: Timestamp,
    },
    ReferralRecalled {
        referral: u64,
        app: AppNo,
    },
    LockApplied {
        app: AppNo,
        until: Timestamp,
    },
    LockLifted {
        app: AppNo,
    },
    ReferralExpired {
        referral: u64,
        app: AppNo,
        stop_listed_until: Timestamp,
    },
    StopListLifted {
        app: AppNo,
    },
    /// A benefit was not confirmed: any referral is cancelled and the application goes to
    /// the general queue with its original registration time.
    BenefitCancelled {
        app: AppNo,
        referral: Option<u64>,
        category: String,
        key: OrderKey,
    },
    Enrolled {
        referral: u64,
        app: AppNo,
    },
    Withdrawn {
        app: AppNo,
        referral: Option<u64>,
    },
    /// An operator attached the application to another applicant (the seed's "merge the
    /// application to the parent's IIN"): that parent now sees it in their journal.
    /// Appended last, so the encoding of the earlier variants is unchanged.
    ApplicantChanged {
        app: AppNo,
        applicant_iin: Iin,
        applicant_name: Option<String>,
    },
}

impl Event {
    /// The stable name shown in the card's history and the audit log.
    pub fn name(&self) -> &'static str {
        match self {
            Event::RulesActivated { .. } => "rules_activated",
            Event::GroupsAdded { .. } => "groups_added",
            Event::Registered(_) => "registered",
            Event::CategoryChanged { .. } => "category_changed",
            Event::PlacesPublished { .. } => "places_published",
            Event::PriorityPhaseEnded { .. } => "priority_phase_ended",
            Event::ReferralIssued { .. } => "referral_issued",
            Event::ReferralExtended { .. } => "referral_extended",
            Event::ReferralRecalled { .. } => "referral_recalled",
            Event::LockApplied { .. } => "lock_applied",
            Event::LockLifted { .. } => "lock_lifted",
            Event::ReferralExpired { .. } => "referral_expired",
            Event::StopListLifted { .. } => "stop_list_lifted",
            Event::BenefitCancelled { .. } => "benefit_cancelled",
            Event::Enrolled { .. } => "enrolled",
            Event::Withdrawn { .. } => "withdrawn",
            Event::ApplicantChanged { .. } => "applicant_changed",
        }
    }

    /// The application an event concerns, if one.
    pub fn app(&self) -> Option<AppNo> {
        match self {
            Event::Registered(r) => Some(r.app),
            Event::CategoryChanged { app, .. }
            | Event::ReferralIssued { app, .. }
            | Event::ReferralExtended { app, .. }
            | Event::ReferralRecalled { app, .. }
            | Event::LockApplied { app, .. }
            | Event::LockLifted { app }
            | Event::ReferralExpired { app, .. }
            | Event::StopListLifted { app }
            | Event::BenefitCancelled { app, .. }
            | Event::Enrolled { app, .. }
            | Event::Withdrawn { app, .. }
            | Event::ApplicantChanged { app, .. } => Some(*app),
            _ => None,
        }
    }
}

/// An event as it stands in the log: numbered, timed, attributed, chained.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRecord {
    pub seq: u64,
    pub at: Timestamp,
    pub actor: Actor,
    pub reason: Option<String>,
    pub event: Event,
    /// SHA-256 of the previous record (all zeros for the first).
    pub prev_hash: [u8; 32],
}

impl EventRecord {
    /// The canonical bytes of the record (what is stored and what is hashed).
    pub fn encode(&self) -> Vec<u8> {
        // Serializing plain owned data to a Vec cannot fail.
        postcard::to_stdvec(self).expect("postcard encodes plain data")
    }

    /// Decodes a stored record; a corrupted or foreign byte string is an error, not a panic.
    pub fn decode(bytes: &[u8]) -> Result<EventRecord, postcard::Error> {
        postcard::from_bytes(bytes)
    }

    /// The record's hash: SHA-256 over its canonical bytes (which include `prev_hash`).
    pub fn hash(&self) -> [u8; 32] {
        Self::hash_bytes(&self.encode())
    }

    pub fn hash_bytes(bytes: &[u8]) -> [u8; 32] {
        Sha256::digest(bytes).into()
    }
}
