//! Read models: the application card, a queue page, offers, and the explanation of a
//! position. Serializable exactly as the command line and the API print them.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::Serialize;

use crate::error::{EngineError, Result};
use crate::event::{Event, EventRecord};
use crate::model::*;
use crate::state::State;
use crate::store::Store;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ReferralView {
    pub id: u64,
    pub kindergarten: String,
    pub kindergarten_name: String,
    pub publication: u64,
    pub issued_at: Timestamp,
    pub valid_until: Timestamp,
    pub recall_until: Timestamp,
    pub extended: bool,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct HistoryEntry {
    pub at: Timestamp,
    pub event: &'static str,
    pub actor: String,
    pub reason: Option<String>,
}

/// The application card (domain.md section 4).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Card {
    pub id: String,
    pub status: &'static str,
    pub status_kk: &'static str,
    pub status_ru: &'static str,
    pub cohort: i32,
    pub language: &'static str,
    pub category: String,
    pub registered_at: Timestamp,
    pub queue_position: Option<u64>,
    pub category_position: Option<u64>,
    pub referral: Option<ReferralView>,
    pub locked_until: Option<Timestamp>,
    pub stop_listed_until: Option<Timestamp>,
    pub child_iin: String,
    pub child_name: Option<String>,
    pub birth_date: jiff::civil::Date,
    pub applicant_iin: String,
    pub applicant_name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub history: Vec<HistoryEntry>,
}

pub fn referral_view(state: &State, id: u64) -> Option<ReferralView> {
    let r = state.data.referrals.get(&id)?;
    let name = state
        .data
        .kindergartens
        .get(&r.kindergarten)
        .map(|k| k.name.clone())
        .unwrap_or_default();
    Some(ReferralView {
        id: r.id,
        kindergarten: r.kindergarten.clone(),
        kindergarten_name: name,
        publication: r.publication,
        issued_at: r.issued_at,
        valid_until: r.valid_until,
        recall_until: r.recall_until,
        extended: r.extensions > 0,
    })
}

fn history_entry(rec: &EventRecord) -> HistoryEntry {
    HistoryEntry {
        at: rec.at,
        event: rec.event.name(),
        actor: rec.actor.to_string(),
        reason: rec.reason.clone(),
    }
}

/// A card without its history (queue pages list many; the history needs the log).
pub fn card_summary(state: &State, a: &Application) -> Card {
    let (kk, ru) = a.status.words();
    Card {
        id: a.id.to_string(),
        status: a.status.code(),
        status_kk: kk,
        status_ru: ru,
        cohort: a.cohort,
        language: a.language.code(),
        category: a.category.clone(),
        registered_at: a.registered_at,
        queue_position: state.queue_position(a),
        category_position: state.category_position(a),
        referral: a.referral.and_then(|r| referral_view(state, r)),
        locked_until: a.locked_until,
        stop_listed_until: a.stop_listed_until,
        child_iin: a.child_iin.to_string(),
        child_name: a.child_name.clone(),
        birth_date: a.birth_date,
        applicant_iin: a.applicant_iin.to_string(),
        applicant_name: a.applicant_name.clone(),
        email: a.email.clone(),
        phone: a.phone.clone(),
        history: Vec::new(),
    }
}

/// The full card, with its history read from the log.
pub fn card(store: &Store, id: AppNo) -> Result<Card> {
    let state = store.state();
    let a = state.app(id).ok_or_else(|| {
        EngineError::not_found("unknown_application", format!("no application {id}"))
    })?;
    let mut c = card_summary(state, a);
    for seq in &a.history {
        c.history.push(history_entry(&store.record(*seq)?));
    }
    Ok(c)
}

#[derive(Debug, Clone, Serialize)]
pub struct QueuePage {
    pub total: u64,
    pub items: Vec<Card>,
}

/// A page of a cohort queue (optionally one category), in queue order. `from` is the
/// 1-based queue position of the first item.
pub fn queue_page(
    state: &State,
    cohort: i32,
    category: Option<&str>,
    from: u64,
    limit: u64,
) -> QueuePage {
    let Some(q) = state.queue(cohort) else {
        return QueuePage {
            total: 0,
            items: Vec::new(),
        };
    };
    let start = from.saturating_sub(1) as usize;
    let (total, keys) = match category {
        Some(c) => (
            q.category_len(c) as u64,
            q.category_page(c, start, limit as usize),
        ),
        None => (q.len() as u64, q.page(start, limit as usize)),
    };
    let items = keys
        .iter()
        .filter_map(|k| state.app(k.app))
        .map(|a| card_summary(state, a))
        .collect();
    QueuePage { total, items }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Offer {
    pub publication: u64,
    pub kindergarten: String,
    pub kindergarten_name: String,
    pub cohort: i32,
    pub language: &'static str,
    pub places_left: u32,
    pub phase: &'static str,
    pub free_access_at: Timestamp,
}

pub fn offers(store: &Store, id: AppNo, now: Timestamp) -> Result<Vec<Offer>> {
    let state = store.state();
    Ok(store
        .core()
        .offers(id, now)?
        .into_iter()
        .map(|p| Offer {
            publication: p.id,
            kindergarten: p.kindergarten.clone(),
            kindergarten_name: state
                .data
                .kindergartens
                .get(&p.kindergarten)
                .map(|k| k.name.clone())
                .unwrap_or_default(),
            cohort: p.cohort,
            language: p.language.code(),
            places_left: p.places_left,
            phase: p.phase.code(),
            free_access_at: p.free_access_at,
        })
        .collect())
}

/// One change of an application's position and the event that caused it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Move {
    pub seq: u64,
    pub at: Timestamp,
    pub event: &'static str,
    /// The application the event concerned (another one, or this one).
    pub subject: Option<String>,
    pub from: Option<u64>,
    pub to: Option<u64>,
    pub why: String,
    /// Consecutive events of the same kind and reason are folded into one move (e.g. a
    /// bulk import that registered 900 applications ahead): how many it stands for.
    pub count: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Explanation {
    pub id: String,
    pub cohort: i32,
    pub category: String,
    pub queue_position: Option<u64>,
    pub category_position: Option<u64>,
    /// How many waiting applications of each category stand ahead (categories with none
    /// are left out), in the rules' category order.
    pub ahead: Vec<(String, u64)>,
    pub moves: Vec<Move>,
}

fn why(
    ev: &Event,
    me: AppNo,
    subject: Option<AppNo>,
    from: Option<u64>,
    to: Option<u64>,
    category: Option<&str>,
) -> String {
    let mine = subject == Some(me);
    let up = matches!((from, to), (Some(f), Some(t)) if t < f);
    match ev {
        Event::Registered(_) if mine => "registered".into(),
        Event::Registered(r) if r.category == "general" => {
            "an application registered earlier was added ahead (import)".into()
        }
        Event::Registered(_) => "a beneficiary registered ahead".into(),
        Event::ReferralIssued { .. } if mine => {
            "took a place: left the queue with a referral".into()
        }
        Event::ReferralIssued { .. } => "someone ahead took a place".into(),
        Event::ReferralRecalled { .. } if mine => {
            "recalled the referral: back at the position the order gives".into()
        }
        Event::ReferralRecalled { .. } => "a recall put someone back ahead".into(),
        Event::ReferralExpired { .. } if mine => {
            "the referral expired: back in the queue on the stop-list".into()
        }
        Event::ReferralExpired { .. } => {
            "an expired referral put someone back ahead (on the stop-list)".into()
        }
        Event::Withdrawn { .. } if mine => "withdrawn".into(),
        Event::Withdrawn { .. } => "an application ahead was withdrawn".into(),
        Event::Enrolled { .. } => "enrolled".into(),
        Event::CategoryChanged { category, .. } if mine => {
            format!("own category changed to {category}")
        }
        Event::CategoryChanged { category, .. } => format!(
            "an application changed category to {category} and moved {}",
            if up { "behind" } else { "ahead" }
        ),
        Event::BenefitCancelled { .. } if mine => {
            "benefit not confirmed: moved to the general queue with the original date".into()
        }
        Event::BenefitCancelled { .. } => {
            "a benefit ahead was not confirmed and that application moved behind".into()
        }
        Event::RulesActivated { version, .. } => {
            format!("rules version {version} re-ranked the queue")
        }
        _ => format!("{} ({})", ev.name(), category.unwrap_or("")),
    }
}

/// Explains a waiting application's position: who is ahead by category, and every event
/// that moved it (by replaying the log with the same `apply` and comparing positions).
pub fn explain(store: &Store, id: AppNo) -> Result<Explanation> {
    let state = store.state();
    let a = state.app(id).ok_or_else(|| {
        EngineError::not_found("unknown_application", format!("no application {id}"))
    })?;
    let order: BTreeMap<&str, i64> = state
        .rules()
        .map(|r| {
            r.params()
                .categories
                .iter()
                .map(|c| (c.code.as_str(), c.rank))
                .collect()
        })
        .unwrap_or_default();
    let mut ahead: Vec<(String, u64)> = if a.status.is_waiting() {
        state
            .queue(a.cohort)
            .map(|q| q.ahead_by_category(&a.key).into_iter().collect())
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    ahead.sort_by_key(|(c, _)| order.get(c.as_str()).copied().unwrap_or(i64::MAX));
    let registered_seq = a.history.first().copied().unwrap_or(0);
    let mut moves: Vec<Move> = Vec::new();
    let mut last: Option<u64> = None;
    store.replay(|s, rec| {
        if rec.seq < registered_seq {
            return;
        }
        let Some(me) = s.app(id) else { return };
        let pos = s.queue_position(me);
        if pos != last || rec.seq == registered_seq {
            let subject = rec.event.app();
            let why_text = why(&rec.event, id, subject, last, pos, None);
            if let Some(prev) = moves.last_mut() {
                // Only others' events fold; the application's own events stay one by one.
                let mine = prev.subject.as_deref() == Some(id.to_string().as_str());
                let same =
                    prev.event == rec.event.name() && prev.why == why_text && subject != Some(id);
                if same && !mine {
                    prev.to = pos;
                    prev.count += 1;
                    prev.subject = None;
                    last = pos;
                    return;
                }
            }
            moves.push(Move {
                seq: rec.seq,
                at: rec.at,
                event: rec.event.name(),
                subject: subject.map(|x| x.to_string()),
                from: last,
                to: pos,
                why: why_text,
                count: 1,
            });
            last = pos;
        }
    })?;
    Ok(Explanation {
        id: id.to_string(),
        cohort: a.cohort,
        category: a.category.clone(),
        queue_position: state.queue_position(a),
        category_position: state.category_position(a),
        ahead,
        moves,
    })
}
