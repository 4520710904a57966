//! State: what the events say, plus the indexes derived from it. `apply` is pure: no
//! clock, no I/O, no randomness — reopening, replaying and simulating run the same code.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::error::{EngineError, Result};
use crate::event::{Actor, Event, EventRecord};
use crate::iin::Iin;
use crate::index::CohortQueue;
use crate::model::*;
use crate::rules::{AppFacts, RuleSet};

/// One activated rule set, as the history of versions shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RulesVersion {
    pub version: u32,
    pub hash: String,
    pub activated_at: Timestamp,
    pub actor: Actor,
    pub reason: Option<String>,
    pub seq: u64,
    pub files: BTreeMap<String, String>,
}

/// The primary data: everything the events established. Serializable as a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Data {
    pub apps: BTreeMap<AppNo, Application>,
    pub kindergartens: BTreeMap<String, Kindergarten>,
    pub publications: BTreeMap<u64, Publication>,
    pub referrals: BTreeMap<u64, Referral>,
    pub rules_versions: Vec<RulesVersion>,
    /// Highest sequence used in application numbers, to number new ones.
    pub max_app_seq: u32,
    /// Sequence number and hash of the last applied event.
    pub last_seq: u64,
    pub last_hash: [u8; 32],
    pub last_at: Timestamp,
}

impl Default for Data {
    fn default() -> Self {
        Data {
            apps: BTreeMap::new(),
            kindergartens: BTreeMap::new(),
            publications: BTreeMap::new(),
            referrals: BTreeMap::new(),
            rules_versions: Vec::new(),
            max_app_seq: 0,
            last_seq: 0,
            last_hash: [0; 32],
            // Before any event: an initial clock may be set anywhere in jiff's range.
            last_at: Timestamp::MIN,
        }
    }
}

/// A transition that time brings, due at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Timer {
    PhaseEnd(u64),
    Expire(u64),
    LockEnd(AppNo),
    StopListEnd(AppNo),
}

/// The state: primary data plus derived indexes (rebuilt from data, never stored).
pub struct State {
    pub data: Data,
    rules: Option<RuleSet>,
    queues: HashMap<i32, CohortQueue>,
    timers: BTreeSet<(Timestamp, Timer)>,
    /// Free places in priority-phase publications per cohort.
    priority_free: HashMap<i32, u64>,
    /// Publications with places left, per cohort and language.
    open_pubs: BTreeMap<(i32, Language), BTreeSet<u64>>,
    /// The application of each child that is not finished (not withdrawn).
    children: HashMap<Iin, AppNo>,
    /// The applications of each applicant IIN (every status): the citizen's journal.
    by_applicant: HashMap<String, BTreeSet<AppNo>>,
}

impl Default for State {
    fn default() -> Self {
        State::from_data(Data::default()).expect("empty data is consistent")
    }
}

impl State {
    /// Rebuilds the derived indexes from primary data (used after loading a snapshot).
    pub fn from_data(data: Data) -> Result<State> {
        let rules = match data.rules_versions.last() {
            Some(v) => Some(RuleSet::compile(&v.files).map_err(|e| {
                EngineError::internal("corrupt_store", format!("stored rules do not compile: {e}"))
            })?),
            None => None,
        };
        let mut s = State {
            data,
            rules,
            queues: HashMap::new(),
            timers: BTreeSet::new(),
            priority_free: HashMap::new(),
            open_pubs: BTreeMap::new(),
            children: HashMap::new(),
            by_applicant: HashMap::new(),
        };
        s.rebuild_derived();
        Ok(s)
    }

    fn rebuild_derived(&mut self) {
        self.queues.clear();
        self.timers.clear();
        self.priority_free.clear();
        self.open_pubs.clear();
        self.children.clear();
        self.by_applicant.clear();
        self.rebuild_queues();
        for app in self.data.apps.values() {
            self.by_applicant
                .entry(app.applicant_iin.as_str().to_string())
                .or_default()
                .insert(app.id);
            if app.status != Status::Withdrawn {
                self.children.insert(app.child_iin.clone(), app.id);
            }
            if let Some(t) = app.locked_until {
                self.timers.insert((t, Timer::LockEnd(app.id)));
            }
            if let (Status::StopListed, Some(t)) = (app.status, app.stop_listed_until) {
                self.timers.insert((t, Timer::StopListEnd(app.id)));
            }
        }
        for p in self.data.publications.values() {
            if p.phase == Phase::Priority {
                self.timers
                    .insert((p.free_access_at, Timer::PhaseEnd(p.id)));
                *self.priority_free.entry(p.cohort).or_default() += p.places_left as u64;
            }
            if p.places_left > 0 {
                self.open_pubs
                    .entry((p.cohort, p.language))
                    .or_default()
                    .insert(p.id);
            }
        }
        for r in self.data.referrals.values() {
            if r.state == ReferralState::Active {
                self.timers.insert((r.valid_until, Timer::Expire(r.id)));
            }
        }
    }

    /// The cohort queues from the applications' keys. The keys go in in order: the index's
    /// B-tree then only ever appends to its last node, where inserting them in id order
    /// (random order-key order) shifts half a node (up to 1,024 keys) per insert.
    fn rebuild_queues(&mut self) {
        self.queues.clear();
        let mut waiting: Vec<(i32, OrderKey, &str)> = self
            .data
            .apps
            .values()
            .filter(|a| a.status.is_waiting())
            .map(|a| (a.cohort, a.key, a.category.as_str()))
            .collect();
        waiting.sort_unstable_by_key(|a| (a.0, a.1));
        for (cohort, key, category) in waiting {
            self.queues.entry(cohort).or_default().insert(key, category);
        }
    }

    /// The active rule set (`None` only before the first activation).
    pub fn rules(&self) -> Option<&RuleSet> {
        self.rules.as_ref()
    }

    pub fn rules_version(&self) -> u32 {
        self.data.rules_versions.last().map_or(0, |v| v.version)
    }

    pub fn app(&self, id: AppNo) -> Option<&Application> {
        self.data.apps.get(&id)
    }

    pub fn app_of_child(&self, iin: &Iin) -> Option<AppNo> {
        self.children.get(iin).copied()
    }

    /// The applications whose applicant is `iin` (any status), in number order. The IIN
    /// is compared as text: a certificate's IIN need not pass the check digit.
    pub fn apps_of_applicant(&self, iin: &str) -> impl Iterator<Item = AppNo> + '_ {
        self.by_applicant.get(iin).into_iter().flatten().copied()
    }

    /// How many applications `iin` has filed or been attached to.
    pub fn count_of_applicant(&self, iin: &str) -> usize {
        self.by_applicant.get(iin).map_or(0, BTreeSet::len)
    }

    pub fn queue(&self, cohort: i32) -> Option<&CohortQueue> {
        self.queues.get(&cohort)
    }

    pub fn cohorts(&self) -> Vec<i32> {
        let mut c: Vec<i32> = self.queues.keys().copied().collect();
        c.sort_unstable();
        c
    }

    /// `queue_position` of a waiting application, O(log n).
    pub fn queue_position(&self, app: &Application) -> Option<u64> {
        if !app.status.is_waiting() {
            return None;
        }
        Some(self.queues.get(&app.cohort)?.position(&app.key))
    }

    /// `category_position`: position among the application's own category in its cohort;
    /// 0 for the general category, as on the Almaty card.
    pub fn category_position(&self, app: &Application) -> Option<u64> {
        if !app.status.is_waiting() {
            return None;
        }
        if app.category == "general" {
            return Some(0);
        }
        self.queues
            .get(&app.cohort)?
            .category_position(&app.key, &app.category)
    }

    pub fn priority_free(&self, cohort: i32) -> u64 {
        self.priority_free.get(&cohort).copied().unwrap_or(0)
    }

    /// Publications with places left for a cohort and language, in id order.
    pub fn open_publications(&self, cohort: i32, language: Language) -> Vec<&Publication> {
        self.open_pubs
            .get(&(cohort, language))
            .into_iter()
            .flatten()
            .filter_map(|id| self.data.publications.get(id))
            .collect()
    }

    /// The earliest pending timer due at or before `now`.
    pub fn next_due(&self, now: Timestamp) -> Option<(Timestamp, Timer)> {
        self.timers.first().copied().filter(|(t, _)| *t <= now)
    }

    /// The next pending timer, due or not (for simulations that jump between instants).
    pub fn next_timer(&self) -> Option<(Timestamp, Timer)> {
        self.timers.first().copied()
    }

    fn corrupt(what: impl Into<String>) -> EngineError {
        EngineError::internal("corrupt_log", what.into())
    }

    fn app_mut(&mut self, id: AppNo) -> Result<&mut Application> {
        self.data
            .apps
            .get_mut(&id)
            .ok_or_else(|| Self::corrupt(format!("event names unknown application {id}")))
    }

    fn enqueue(&mut self, id: AppNo) -> Result<()> {
        let app = self.app(id).ok_or_else(|| Self::corrupt("enqueue"))?;
        let (cohort, key, cat) = (app.cohort, app.key, app.category.clone());
        self.queues.entry(cohort).or_default().insert(key, &cat);
        Ok(())
    }

    fn dequeue(&mut self, id: AppNo) -> Result<()> {
        let app = self.app(id).ok_or_else(|| Self::corrupt("dequeue"))?;
        let (cohort, key, cat) = (app.cohort, app.key, app.category.clone());
        if let Some(q) = self.queues.get_mut(&cohort) {
            q.remove(&key, &cat);
            if q.is_empty() {
                self.queues.remove(&cohort);
            }
        }
        Ok(())
    }

    /// Changes the free places of a publication by `delta` and keeps the derived counts.
    fn adjust_places(&mut self, pub_id: u64, delta: i64) -> Result<()> {
        let p = self
            .data
            .publications
            .get_mut(&pub_id)
            .ok_or_else(|| Self::corrupt(format!("unknown publication {pub_id}")))?;
        let left = p.places_left as i64 + delta;
        if left < 0 || left > p.places as i64 {
            return Err(Self::corrupt(format!(
                "publication {pub_id} would hold {left} of {} places",
                p.places
            )));
        }
        p.places_left = left as u32;
        let (cohort, lang, phase, id) = (p.cohort, p.language, p.phase, p.id);
        if phase == Phase::Priority {
            let f = self.priority_free.entry(cohort).or_default();
            *f = (*f as i64 + delta) as u64;
        }
        let set = self.open_pubs.entry((cohort, lang)).or_default();
        if left > 0 {
            set.insert(id);
        } else {
            set.remove(&id);
            if set.is_empty() {
                self.open_pubs.remove(&(cohort, lang));
            }
        }
        Ok(())
    }

    /// Closes a referral of `app`: the place goes back to its publication unless it was used.
    fn close_referral(&mut self, ref_id: u64, app: AppNo, to: ReferralState) -> Result<()> {
        let r = self
            .data
            .referrals
            .get_mut(&ref_id)
            .ok_or_else(|| Self::corrupt(format!("unknown referral {ref_id}")))?;
        if r.state != ReferralState::Active {
            return Err(Self::corrupt(format!("referral {ref_id} is not active")));
        }
        if r.app != app {
            return Err(Self::corrupt(format!("referral {ref_id} is not {app}'s")));
        }
        r.state = to;
        let (valid_until, pub_id) = (r.valid_until, r.publication);
        self.timers.remove(&(valid_until, Timer::Expire(ref_id)));
        if to != ReferralState::Used {
            self.adjust_places(pub_id, 1)?;
        }
        Ok(())
    }

    fn set_lock(&mut self, id: AppNo, until: Option<Timestamp>) -> Result<()> {
        let app = self.app_mut(id)?;
        let old = std::mem::replace(&mut app.locked_until, until);
        if let Some(t) = old {
            self.timers.remove(&(t, Timer::LockEnd(id)));
        }
        if let Some(t) = until {
            self.timers.insert((t, Timer::LockEnd(id)));
        }
        Ok(())
    }

    fn set_stop_list(&mut self, id: AppNo, until: Option<Timestamp>) -> Result<()> {
        let app = self.app_mut(id)?;
        let old = std::mem::replace(&mut app.stop_listed_until, until);
        app.status = if until.is_some() {
            Status::StopListed
        } else {
            Status::Queued
        };
        if let Some(t) = old {
            self.timers.remove(&(t, Timer::StopListEnd(id)));
        }
        if let Some(t) = until {
            self.timers.insert((t, Timer::StopListEnd(id)));
        }
        Ok(())
    }

    /// Changes an application's category and order key, keeping it in place in the
    /// indexes if it is waiting.
    fn rekey(&mut self, id: AppNo, category: &str, key: OrderKey) -> Result<()> {
        let waiting = self.app(id).is_some_and(|a| a.status.is_waiting());
        if waiting {
            self.dequeue(id)?;
        }
        let app = self.app_mut(id)?;
        app.category = category.to_string();
        app.key = key;
        if waiting {
            self.enqueue(id)?;
        }
        Ok(())
    }

    /// Applies one event. Pure: the outcome depends only on the state and the record.
    /// An error means the log is inconsistent with the state (a corrupted store).
    pub fn apply(&mut self, rec: &EventRecord) -> Result<()> {
        self.apply_prepared(rec, None)
    }

    /// [`State::apply`], with the re-ranking of a rule activation already computed by the
    /// decision that emitted it (used only if it was made for this very record: same seq,
    /// same rules hash). Replays pass `None` and re-rank themselves.
    pub(crate) fn apply_prepared(
        &mut self,
        rec: &EventRecord,
        prepared: Option<PreparedRerank>,
    ) -> Result<()> {
        if rec.seq != self.data.last_seq + 1 {
            return Err(Self::corrupt(format!(
                "event {} follows event {}",
                rec.seq, self.data.last_seq
            )));
        }
        if rec.prev_hash != self.data.last_hash {
            return Err(Self::corrupt(format!(
                "event {} breaks the hash chain",
                rec.seq
            )));
        }
        if let Some(app) = rec.event.app() {
            if !matches!(rec.event, Event::Registered(_)) {
                self.app_mut(app)?.history.push(rec.seq);
            }
        }
        match &rec.event {
            Event::RulesActivated {
                version,
                hash,
                files,
            } => {
                let (rules, keys) = match prepared {
                    Some(p) if p.seq == rec.seq && &p.hash == hash => (p.rules, p.keys),
                    _ => {
                        let rules = RuleSet::compile(files).map_err(|e| {
                            Self::corrupt(format!("logged rules do not compile: {e}"))
                        })?;
                        if &rules.hash() != hash {
                            return Err(Self::corrupt("logged rules do not match their hash"));
                        }
                        let keys = rerank(&rules, &self.data.apps).map_err(|e| {
                            Self::corrupt(format!("re-ranking failed on replay: {e}"))
                        })?;
                        (rules, keys)
                    }
                };
                for (id, cohort, key) in keys {
                    let app = self.app_mut(id)?;
                    if app.cohort != cohort || app.key != key {
                        app.cohort = cohort;
                        app.key = key;
                        app.history.push(rec.seq);
                    }
                }
                self.rules = Some(rules);
                self.data.rules_versions.push(RulesVersion {
                    version: *version,
                    hash: hash.clone(),
                    activated_at: rec.at,
                    actor: rec.actor.clone(),
                    reason: rec.reason.clone(),
                    seq: rec.seq,
                    files: files.clone(),
                });
                // Only the queues hang on the keys and cohorts: the other derived indexes
                // (applicants, children, timers, publications) stay as they are.
                self.rebuild_queues();
            }
            Event::GroupsAdded { groups } => {
                for g in groups {
                    let kg = self
                        .data
                        .kindergartens
                        .entry(g.kindergarten.clone())
                        .or_insert_with(|| Kindergarten {
                            id: g.kindergarten.clone(),
                            name: g.name.clone(),
                            district: g.district.clone(),
                            groups: Vec::new(),
                        });
                    kg.groups.push(Group {
                        cohort: g.cohort,
                        language: g.language,
                        capacity: g.capacity,
                        published: 0,
                    });
                }
            }
            Event::Registered(r) => {
                let app = Application {
                    id: r.app,
                    child_iin: r.child_iin.clone(),
                    child_name: r.child_name.clone(),
                    birth_date: r.birth_date,
                    applicant_iin: r.applicant_iin.clone(),
                    applicant_name: r.applicant_name.clone(),
                    email: r.email.clone(),
                    phone: r.phone.clone(),
                    language: r.language,
                    category: r.category.clone(),
                    registered_at: r.registered_at,
                    cohort: r.cohort,
                    key: r.key,
                    status: Status::Queued,
                    referral: None,
                    locked_until: None,
                    stop_listed_until: None,
                    history: vec![rec.seq],
                };
                if self.data.apps.insert(r.app, app).is_some() {
                    return Err(Self::corrupt(format!("{} registered twice", r.app)));
                }
                self.data.max_app_seq = self.data.max_app_seq.max(r.app.seq);
                self.children.insert(r.child_iin.clone(), r.app);
                self.by_applicant
                    .entry(r.applicant_iin.as_str().to_string())
                    .or_default()
                    .insert(r.app);
                self.enqueue(r.app)?;
            }
            Event::CategoryChanged { app, category, key } => {
                self.rekey(*app, category, *key)?;
            }
            Event::PlacesPublished {
                publication,
                kindergarten,
                cohort,
                language,
                places,
                free_access_at,
            } => {
                let kg = self
                    .data
                    .kindergartens
                    .get_mut(kindergarten)
                    .ok_or_else(|| Self::corrupt("publication of unknown kindergarten"))?;
                let group = kg
                    .groups
                    .iter_mut()
                    .find(|g| g.cohort == *cohort && g.language == *language)
                    .ok_or_else(|| Self::corrupt("publication of unknown group"))?;
                group.published += places;
                let phase = if *free_access_at > rec.at {
                    Phase::Priority
                } else {
                    Phase::FreeAccess
                };
                self.data.publications.insert(
                    *publication,
                    Publication {
                        id: *publication,
                        kindergarten: kindergarten.clone(),
                        cohort: *cohort,
                        language: *language,
                        places: *places,
                        places_left: 0,
                        published_at: rec.at,
                        free_access_at: *free_access_at,
                        phase,
                    },
                );
                if phase == Phase::Priority {
                    self.timers
                        .insert((*free_access_at, Timer::PhaseEnd(*publication)));
                }
                self.adjust_places(*publication, *places as i64)?;
            }
            Event::PriorityPhaseEnded { publication } => {
                let p = self
                    .data
                    .publications
                    .get_mut(publication)
                    .ok_or_else(|| Self::corrupt("phase end of unknown publication"))?;
                if p.phase != Phase::Priority {
                    return Err(Self::corrupt("phase end of a publication in free access"));
                }
                p.phase = Phase::FreeAccess;
                let (cohort, left, t) = (p.cohort, p.places_left as u64, p.free_access_at);
                let f = self.priority_free.entry(cohort).or_default();
                *f -= left;
                self.timers.remove(&(t, Timer::PhaseEnd(*publication)));
            }
            Event::ReferralIssued {
                referral,
                app,
                publication,
                valid_until,
                recall_until,
                phase,
            } => {
                if self.app(*app).map(|a| a.status) != Some(Status::Queued)
                    || self.data.referrals.contains_key(referral)
                {
                    return Err(Self::corrupt(format!(
                        "referral {referral} cannot go to {app}"
                    )));
                }
                self.adjust_places(*publication, -1)?;
                let kindergarten = self.data.publications[publication].kindergarten.clone();
                self.dequeue(*app)?;
                let a = self.app_mut(*app)?;
                a.status = Status::ReferralIssued;
                a.referral = Some(*referral);
                self.data.referrals.insert(
                    *referral,
                    Referral {
                        id: *referral,
                        app: *app,
                        publication: *publication,
                        kindergarten,
                        issued_at: rec.at,
                        valid_until: *valid_until,
                        recall_until: *recall_until,
                        extensions: 0,
                        phase: *phase,
                        state: ReferralState::Active,
                    },
                );
                self.timers.insert((*valid_until, Timer::Expire(*referral)));
            }
            Event::ReferralExtended {
                referral,
                valid_until,
                ..
            } => {
                let r = self
                    .data
                    .referrals
                    .get_mut(referral)
                    .ok_or_else(|| Self::corrupt("extension of unknown referral"))?;
                let old = std::mem::replace(&mut r.valid_until, *valid_until);
                r.extensions += 1;
                self.timers.remove(&(old, Timer::Expire(*referral)));
                self.timers.insert((*valid_until, Timer::Expire(*referral)));
            }
            Event::ReferralRecalled { referral, app } => {
                self.close_referral(*referral, *app, ReferralState::Recalled)?;
                let a = self.app_mut(*app)?;
                a.status = Status::Queued;
                a.referral = None;
                self.enqueue(*app)?;
            }
            Event::LockApplied { app, until } => self.set_lock(*app, Some(*until))?,
            Event::LockLifted { app } => self.set_lock(*app, None)?,
            Event::ReferralExpired {
                referral,
                app,
                stop_listed_until,
            } => {
                self.close_referral(*referral, *app, ReferralState::Expired)?;
                self.app_mut(*app)?.referral = None;
                self.set_stop_list(*app, Some(*stop_listed_until))?;
                self.enqueue(*app)?;
            }
            Event::StopListLifted { app } => self.set_stop_list(*app, None)?,
            Event::BenefitCancelled {
                app,
                referral,
                category,
                key,
            } => {
                if let Some(r) = referral {
                    self.close_referral(*r, *app, ReferralState::Cancelled)?;
                    let a = self.app_mut(*app)?;
                    a.referral = None;
                    a.status = Status::Queued;
                    a.category = category.clone();
                    a.key = *key;
                    self.enqueue(*app)?;
                } else {
                    self.rekey(*app, category, *key)?;
                }
            }
            Event::Enrolled { referral, app } => {
                self.close_referral(*referral, *app, ReferralState::Used)?;
                let a = self.app_mut(*app)?;
                a.status = Status::Enrolled;
                a.referral = None;
            }
            Event::Withdrawn { app, referral } => {
                if let Some(r) = referral {
                    self.close_referral(*r, *app, ReferralState::Withdrawn)?;
                } else if self.app(*app).is_some_and(|a| a.status.is_waiting()) {
                    self.dequeue(*app)?;
                }
                self.set_lock(*app, None)?;
                let a = self.app_mut(*app)?;
                let (old_stop, child) = (a.stop_listed_until.take(), a.child_iin.clone());
                a.status = Status::Withdrawn;
                a.referral = None;
                if let Some(t) = old_stop {
                    self.timers.remove(&(t, Timer::StopListEnd(*app)));
                }
                self.children.remove(&child);
            }
            Event::ApplicantChanged {
                app,
                applicant_iin,
                applicant_name,
            } => {
                let a = self.app_mut(*app)?;
                let old = std::mem::replace(&mut a.applicant_iin, applicant_iin.clone());
                a.applicant_name = applicant_name.clone();
                if let Some(set) = self.by_applicant.get_mut(old.as_str()) {
                    set.remove(app);
                    if set.is_empty() {
                        self.by_applicant.remove(old.as_str());
                    }
                }
                self.by_applicant
                    .entry(applicant_iin.as_str().to_string())
                    .or_default()
                    .insert(*app);
            }
        }
        self.data.last_seq = rec.seq;
        self.data.last_hash = rec.hash();
        self.data.last_at = rec.at;
        Ok(())
    }

    /// A digest of the primary data: equal states have equal digests.
    pub fn digest(&self) -> [u8; 32] {
        let bytes = postcard::to_stdvec(&self.data).expect("postcard encodes plain data");
        EventRecord::hash_bytes(&bytes)
    }

    /// Checks the invariants that must hold after every event. Used by tests and by
    /// `audit verify`; O(n).
    pub fn check_invariants(&self) -> std::result::Result<(), String> {
        let mut waiting: HashMap<i32, usize> = HashMap::new();
        for app in self.data.apps.values() {
            let waits = app.status.is_waiting();
            if waits {
                *waiting.entry(app.cohort).or_default() += 1;
            }
            let indexed = self
                .queues
                .get(&app.cohort)
                .is_some_and(|q| q.contains(&app.key));
            if waits != indexed {
                return Err(format!("{} waiting={waits} but indexed={indexed}", app.id));
            }
            match (app.status, app.referral) {
                (Status::ReferralIssued, Some(r)) => match self.data.referrals.get(&r) {
                    Some(rf) if rf.state == ReferralState::Active && rf.app == app.id => {}
                    _ => return Err(format!("{} points at a referral that is not its", app.id)),
                },
                (Status::ReferralIssued, None) | (_, Some(_)) => {
                    return Err(format!("{} status and referral disagree", app.id))
                }
                _ => {}
            }
        }
        let mut by_applicant: HashMap<&str, BTreeSet<AppNo>> = HashMap::new();
        for app in self.data.apps.values() {
            by_applicant
                .entry(app.applicant_iin.as_str())
                .or_default()
                .insert(app.id);
        }
        if by_applicant.len() != self.by_applicant.len()
            || by_applicant
                .iter()
                .any(|(iin, set)| self.by_applicant.get(*iin) != Some(set))
        {
            return Err("the applicant index disagrees with the applications".into());
        }
        for (cohort, q) in &self.queues {
            if q.len() != waiting.get(cohort).copied().unwrap_or(0) {
                return Err(format!("queue {cohort} holds {} keys", q.len()));
            }
        }
        let mut active_per_pub: HashMap<u64, u32> = HashMap::new();
        let mut used_per_pub: HashMap<u64, u32> = HashMap::new();
        for r in self.data.referrals.values() {
            match r.state {
                ReferralState::Active => *active_per_pub.entry(r.publication).or_default() += 1,
                ReferralState::Used => *used_per_pub.entry(r.publication).or_default() += 1,
                _ => {}
            }
        }
        let mut prio: HashMap<i32, u64> = HashMap::new();
        for p in self.data.publications.values() {
            let held = active_per_pub.get(&p.id).copied().unwrap_or(0)
                + used_per_pub.get(&p.id).copied().unwrap_or(0);
            if p.places_left + held != p.places {
                return Err(format!(
                    "publication {}: {} left + {held} held != {} places",
                    p.id, p.places_left, p.places
                ));
            }
            if p.phase == Phase::Priority {
                *prio.entry(p.cohort).or_default() += p.places_left as u64;
            }
        }
        for (c, n) in &self.priority_free {
            if prio.get(c).copied().unwrap_or(0) != *n {
                return Err(format!("priority places of cohort {c} miscounted"));
            }
        }
        for kg in self.data.kindergartens.values() {
            for g in &kg.groups {
                if g.published > g.capacity {
                    return Err(format!("{} publishes more than its capacity", kg.id));
                }
            }
        }
        Ok(())
    }
}

/// A rule activation's re-ranking, computed while deciding it and handed to
/// [`State::apply_prepared`] with the record: the rules then run once per application, not
/// twice (at a million applications each pass costs seconds).
pub(crate) struct PreparedRerank {
    /// The seq the activation's record will have.
    pub(crate) seq: u64,
    pub(crate) hash: String,
    pub(crate) rules: RuleSet,
    pub(crate) keys: Vec<(AppNo, i32, OrderKey)>,
}

/// Applications per parallel chunk of [`rerank`]: large enough that a chunk's own big
/// stack (see [`RuleSet::with_stack`]) costs nothing against its rule calls.
const RERANK_CHUNK_APPS: usize = 16_384;

/// New cohort and order key of every application under a rule set, in id order. The
/// applications are spread over the cores (rayon), each chunk on its own big stack; the
/// result, and the error reported (the one of the first failing application in id
/// order), do not depend on the number of threads.
pub fn rerank(
    rules: &RuleSet,
    apps: &BTreeMap<AppNo, Application>,
) -> std::result::Result<Vec<(AppNo, i32, OrderKey)>, crate::rules::RuleError> {
    use rayon::prelude::*;
    let all: Vec<&Application> = apps.values().collect();
    let chunks: Vec<std::result::Result<Vec<_>, _>> = all
        .par_chunks(RERANK_CHUNK_APPS)
        .map(|chunk| {
            RuleSet::with_stack(|| {
                chunk
                    .iter()
                    .map(|a| {
                        let id = a.id.to_string();
                        let facts = AppFacts {
                            id: &id,
                            category: &a.category,
                            language: a.language.code(),
                            birth_date: a.birth_date,
                            registered_at: a.registered_at,
                        };
                        let key = rules.order_key(&facts)?;
                        let cohort = rules.cohort(&facts)?;
                        Ok((a.id, cohort, OrderKey::new(&key, a.id)))
                    })
                    .collect::<std::result::Result<Vec<_>, _>>()
            })
        })
        .collect();
    let mut out = Vec::with_capacity(all.len());
    for chunk in chunks {
        out.extend(chunk?);
    }
    Ok(out)
}
