//! Model-based property tests of the engine.
//!
//! Random sequences of every command and of clock moves run against `kezek_engine::Core`
//! (in memory) and against a plain reference model written here: a list of applications,
//! publications and referrals, with each cohort queue computed by sorting the waiting
//! applications by (category rank, registration second, application number). The model
//! decides what each command should do (the exact events, or the refusal code) and what
//! time brings (phase ends, expiries, lock and stop-list ends), with its own calendar.
//!
//! After every step the engine must agree with the model: the events it returned (or the
//! refusal it gave, with nothing changed), every position and category position, statuses,
//! places, referrals and timers; positions in each cohort are exactly 1..n; no place is
//! held twice; `check_invariants` holds; and a recall within the window puts every
//! position of the cohort back to what it was just before the referral was issued.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use jiff::civil::{date, Date, Time, Weekday};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, ToSpan};
use kezek_engine::event::{GroupRow, Registration};
use kezek_engine::iin::Iin;
use kezek_engine::model::{OrderKey, ReferralState};
use kezek_engine::{
    Actor, AppNo, Command, Core, Event, EventRecord, Language, Phase, RegisterInput, Request,
    RuleSet, Status,
};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config as ProptestConfig, RngAlgorithm, TestRng, TestRunner};

// ---------------------------------------------------------------------------------------
// The model's own calendar (Asia/Almaty through the tz database, working days Monday to
// Friday minus the holidays of rules/calendar.rhai, written out again here).

fn tz() -> &'static TimeZone {
    static TZ: OnceLock<TimeZone> = OnceLock::new();
    TZ.get_or_init(|| TimeZone::get("Asia/Almaty").expect("tz database has Asia/Almaty"))
}

fn local_date(t: Timestamp) -> Date {
    t.to_zoned(tz().clone()).date()
}

fn at_local(d: Date, t: Time) -> Timestamp {
    d.to_datetime(t)
        .to_zoned(tz().clone())
        .expect("valid local time")
        .timestamp()
}

fn plus_days(t: Timestamp, days: i64) -> Timestamp {
    t.to_zoned(tz().clone())
        .checked_add(days.days())
        .expect("in range")
        .timestamp()
}

fn holidays() -> &'static BTreeSet<Date> {
    static H: OnceLock<BTreeSet<Date>> = OnceLock::new();
    H.get_or_init(|| {
        let mut h = BTreeSet::new();
        for y in 2023..=2027i16 {
            for (m, d) in [
                (1, 1),
                (1, 2),
                (1, 7),
                (3, 8),
                (3, 21),
                (3, 22),
                (3, 23),
                (5, 1),
                (5, 7),
                (5, 9),
                (7, 6),
                (8, 30),
                (10, 25),
                (12, 16),
            ] {
                h.insert(date(y, m, d));
            }
        }
        for d in [
            date(2023, 6, 28),
            date(2024, 6, 16),
            date(2025, 6, 6),
            date(2026, 5, 27),
            date(2027, 5, 16),
        ] {
            h.insert(d);
        }
        h
    })
}

fn working(d: Date) -> bool {
    !matches!(d.weekday(), Weekday::Saturday | Weekday::Sunday) && !holidays().contains(&d)
}

fn nth_working_day_after(d: Date, n: u32) -> Date {
    let mut d = d;
    let mut left = n;
    while left > 0 {
        d = d.tomorrow().unwrap();
        if working(d) {
            left -= 1;
        }
    }
    d
}

/// Referral validity: until the end of the 5th working day after the issue date.
fn model_valid_until(issued: Timestamp) -> Timestamp {
    let last = nth_working_day_after(local_date(issued), 5);
    at_local(last.tomorrow().unwrap(), Time::midnight())
}

/// Free access: 06:57 local on the 3rd working day after the publication date.
fn model_free_access_at(published: Timestamp) -> Timestamp {
    at_local(
        nth_working_day_after(local_date(published), 3),
        Time::constant(6, 57, 0, 0),
    )
}

// ---------------------------------------------------------------------------------------
// Rule sets: the defaults, one with the beneficiaries' ranks reversed, and the defaults
// with a comment added (another version, the same order).

const CATEGORIES: [&str; 7] = [
    "military",
    "special_bodies",
    "disability",
    "large_family",
    "orphan",
    "teacher",
    "general",
];

const RANKS_DEFAULT: [i64; 7] = [1, 2, 3, 4, 5, 6, 7];
const RANKS_REVERSED: [i64; 7] = [16, 15, 14, 13, 12, 11, 20];

fn reversed_categories_file() -> String {
    let mut s = String::from("fn categories() {\n    [\n");
    for (code, rank) in CATEGORIES.iter().zip(RANKS_REVERSED) {
        s += &format!("        #{{ code: \"{code}\", rank: {rank}, kk: \"{code}\", ru: \"{code}\", en: \"{code}\" }},\n");
    }
    s += "    ]\n}\n";
    s
}

/// (files, the ranks they give) of rule set variant `v`.
fn rule_variant(v: usize) -> (BTreeMap<String, String>, [i64; 7]) {
    let mut files = RuleSet::default_files();
    match v {
        0 => (files, RANKS_DEFAULT),
        1 => {
            files.insert("categories.rhai".into(), reversed_categories_file());
            (files, RANKS_REVERSED)
        }
        _ => {
            let f = files.get_mut("order.rhai").unwrap();
            f.push_str("\n// the same order, another version\n");
            (files, RANKS_DEFAULT)
        }
    }
}

fn rule_hash(v: usize) -> String {
    static H: OnceLock<Vec<String>> = OnceLock::new();
    H.get_or_init(|| {
        (0..3)
            .map(|v| RuleSet::compile(&rule_variant(v).0).unwrap().hash())
            .collect()
    })[v]
        .clone()
}

// ---------------------------------------------------------------------------------------
// The reference model.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MStatus {
    Queued,
    Referral,
    Enrolled,
    StopListed,
    Withdrawn,
}

impl MStatus {
    fn waiting(self) -> bool {
        matches!(self, MStatus::Queued | MStatus::StopListed)
    }
    fn engine(self) -> Status {
        match self {
            MStatus::Queued => Status::Queued,
            MStatus::Referral => Status::ReferralIssued,
            MStatus::Enrolled => Status::Enrolled,
            MStatus::StopListed => Status::StopListed,
            MStatus::Withdrawn => Status::Withdrawn,
        }
    }
}

#[derive(Debug, Clone)]
struct MApp {
    id: AppNo,
    child: String,
    cohort: i32,
    lang: Language,
    category: String,
    registered_at: Timestamp,
    status: MStatus,
    referral: Option<u64>,
    locked_until: Option<Timestamp>,
    stop_until: Option<Timestamp>,
}

#[derive(Debug, Clone)]
struct MPub {
    kg: String,
    cohort: i32,
    lang: Language,
    places: u32,
    left: u32,
    free_access_at: Timestamp,
    priority: bool,
}

#[derive(Debug, Clone)]
struct MRef {
    app: AppNo,
    publication: u64,
    valid_until: Timestamp,
    recall_until: Timestamp,
    extensions: u32,
    state: ReferralState,
}

/// A transition that time brings; the derived order (instant, then kind, then id) is the
/// order the engine emits them in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum MTimer {
    PhaseEnd(u64),
    Expire(u64),
    LockEnd(AppNo),
    StopListEnd(AppNo),
}

#[derive(Debug, Clone)]
struct Model {
    now: Timestamp,
    last_at: Timestamp,
    rules: usize,
    ranks: [i64; 7],
    rules_version: u32,
    apps: BTreeMap<AppNo, MApp>,
    pubs: BTreeMap<u64, MPub>,
    refs: BTreeMap<u64, MRef>,
    /// (kindergarten, cohort, language) -> (capacity, published)
    groups: BTreeMap<(String, i32, Language), (u32, u32)>,
    kg_names: BTreeMap<String, String>,
    /// Child IIN -> its application that is not withdrawn.
    children: BTreeMap<String, AppNo>,
    max_seq: u32,
    /// Bumped whenever the waiting set or a key of a cohort changes.
    cohort_version: BTreeMap<i32, u64>,
}

type Outcome = Result<Vec<Event>, &'static str>;

const STOP_LIST_DAYS: i64 = 10;
const EXTENSION_DAYS: i64 = 30;
const RECALL_HOURS: i64 = 24;

impl Model {
    fn new(now: Timestamp) -> Model {
        Model {
            now,
            last_at: Timestamp::UNIX_EPOCH,
            rules: usize::MAX,
            ranks: RANKS_DEFAULT,
            rules_version: 0,
            apps: BTreeMap::new(),
            pubs: BTreeMap::new(),
            refs: BTreeMap::new(),
            groups: BTreeMap::new(),
            kg_names: BTreeMap::new(),
            children: BTreeMap::new(),
            max_seq: 0,
            cohort_version: BTreeMap::new(),
        }
    }

    fn rank(&self, category: &str) -> i64 {
        let i = CATEGORIES.iter().position(|c| *c == category).unwrap();
        self.ranks[i]
    }

    fn key_of(&self, category: &str, registered_at: Timestamp, id: AppNo) -> OrderKey {
        OrderKey::new(&[self.rank(category), registered_at.as_second()], id)
    }

    fn sort_key(&self, a: &MApp) -> (i64, i64, AppNo) {
        (self.rank(&a.category), a.registered_at.as_second(), a.id)
    }

    fn bump(&mut self, cohort: i32) {
        *self.cohort_version.entry(cohort).or_default() += 1;
    }

    fn version(&self, cohort: i32) -> u64 {
        self.cohort_version.get(&cohort).copied().unwrap_or(0)
    }

    /// The waiting applications of every cohort, in queue order: the reference queues.
    fn queues(&self) -> BTreeMap<i32, Vec<AppNo>> {
        let mut q: BTreeMap<i32, Vec<(i64, i64, AppNo)>> = BTreeMap::new();
        for a in self.apps.values().filter(|a| a.status.waiting()) {
            q.entry(a.cohort).or_default().push(self.sort_key(a));
        }
        q.into_iter()
            .map(|(c, mut v)| {
                v.sort();
                (c, v.into_iter().map(|k| k.2).collect())
            })
            .collect()
    }

    fn position(&self, id: AppNo) -> Option<u64> {
        let a = &self.apps[&id];
        if !a.status.waiting() {
            return None;
        }
        let mine = self.sort_key(a);
        let ahead = self
            .apps
            .values()
            .filter(|b| b.status.waiting() && b.cohort == a.cohort && self.sort_key(b) < mine)
            .count();
        Some(ahead as u64 + 1)
    }

    fn priority_free(&self, cohort: i32) -> u64 {
        self.pubs
            .values()
            .filter(|p| p.priority && p.cohort == cohort)
            .map(|p| p.left as u64)
            .sum()
    }

    fn active_ref(&self, a: &MApp) -> Result<(u64, &MRef), &'static str> {
        match a.referral {
            Some(r) if a.status == MStatus::Referral => {
                let rf = &self.refs[&r];
                assert_eq!(
                    rf.state,
                    ReferralState::Active,
                    "model: referral of {}",
                    a.id
                );
                Ok((r, rf))
            }
            _ => Err("no_active_referral"),
        }
    }

    fn next_timer(&self) -> Option<(Timestamp, MTimer)> {
        let mut all = Vec::new();
        for (id, p) in &self.pubs {
            if p.priority {
                all.push((p.free_access_at, MTimer::PhaseEnd(*id)));
            }
        }
        for (id, r) in &self.refs {
            if r.state == ReferralState::Active {
                all.push((r.valid_until, MTimer::Expire(*id)));
            }
        }
        for a in self.apps.values() {
            if let Some(t) = a.locked_until {
                all.push((t, MTimer::LockEnd(a.id)));
            }
            if let (MStatus::StopListed, Some(t)) = (a.status, a.stop_until) {
                all.push((t, MTimer::StopListEnd(a.id)));
            }
        }
        all.into_iter().min()
    }

    /// What time brings up to `to`: the events, each with the instant it is stamped with.
    fn advance(&mut self, to: Timestamp) -> Vec<(Timestamp, Event)> {
        let mut out = Vec::new();
        while let Some((due, timer)) = self.next_timer().filter(|(t, _)| *t <= to) {
            let at = due.max(self.last_at);
            let ev = match timer {
                MTimer::PhaseEnd(p) => Event::PriorityPhaseEnded { publication: p },
                MTimer::Expire(r) => {
                    let rf = &self.refs[&r];
                    Event::ReferralExpired {
                        referral: r,
                        app: rf.app,
                        stop_listed_until: plus_days(rf.valid_until, STOP_LIST_DAYS),
                    }
                }
                MTimer::LockEnd(a) => Event::LockLifted { app: a },
                MTimer::StopListEnd(a) => Event::StopListLifted { app: a },
            };
            self.apply(&ev, at);
            out.push((at, ev));
        }
        self.now = to;
        out
    }

    /// What a command should do at `self.now`: its events, or the code of its refusal.
    fn decide(&self, cmd: &Command, reason: bool) -> Outcome {
        let needs_reason = matches!(
            cmd,
            Command::ActivateRules { .. }
                | Command::Recall { .. }
                | Command::CancelBenefit { .. }
                | Command::Withdraw { .. }
                | Command::ChangeCategory { .. }
                | Command::ChangeApplicant { .. }
        );
        if needs_reason && !reason {
            return Err("reason_required");
        }
        let now = self.now;
        let app = |id: &AppNo| self.apps.get(id).ok_or("unknown_application");
        match cmd {
            // Not generated here: the applicant moves no position (the model keeps no
            // applicant); admin/tests/citizen.rs covers the command and its checks.
            Command::ChangeApplicant { .. } => {
                unreachable!("the model does not generate applicant changes")
            }
            Command::ActivateRules { files } => {
                let v = (0..3).find(|v| &rule_variant(*v).0 == files).unwrap();
                if v == self.rules {
                    return Err("no_change");
                }
                Ok(vec![Event::RulesActivated {
                    version: self.rules_version + 1,
                    hash: rule_hash(v),
                    files: files.clone(),
                }])
            }
            Command::AddGroups { groups } => {
                let mut seen = BTreeSet::new();
                for g in groups {
                    if !seen.insert((g.kindergarten.clone(), g.cohort, g.language))
                        || self
                            .groups
                            .contains_key(&(g.kindergarten.clone(), g.cohort, g.language))
                        || self
                            .kg_names
                            .get(&g.kindergarten)
                            .is_some_and(|n| *n != g.name)
                    {
                        return Err("invalid_input");
                    }
                }
                Ok(vec![Event::GroupsAdded {
                    groups: groups.clone(),
                }])
            }
            Command::Register(input) => {
                let registered_at = input.registered_at.unwrap_or(now);
                if local_date(registered_at) < input.birth_date {
                    return Err("invalid_date");
                }
                if self.children.contains_key(&input.child_iin) {
                    return Err("duplicate_application");
                }
                let id = AppNo {
                    year: local_date(registered_at).year() as u16,
                    seq: self.max_seq + 1,
                    n: 1,
                };
                let category = input.category.clone().unwrap();
                Ok(vec![Event::Registered(Box::new(Registration {
                    app: id,
                    child_iin: Iin::parse(&input.child_iin).unwrap(),
                    child_name: None,
                    birth_date: input.birth_date,
                    applicant_iin: Iin::parse(&input.applicant_iin).unwrap(),
                    applicant_name: None,
                    email: None,
                    phone: None,
                    language: input.language.unwrap(),
                    key: self.key_of(&category, registered_at, id),
                    category,
                    registered_at,
                    cohort: i32::from(input.birth_date.year()),
                }))])
            }
            Command::ChangeCategory { app: id, category } => {
                let a = app(id)?;
                if !a.status.waiting() {
                    return Err("wrong_status");
                }
                if &a.category == category {
                    return Err("no_change");
                }
                Ok(vec![Event::CategoryChanged {
                    app: *id,
                    category: category.clone(),
                    key: self.key_of(category, a.registered_at, *id),
                }])
            }
            Command::Publish {
                kindergarten,
                cohort,
                language,
                places,
            } => {
                if !self.kg_names.contains_key(kindergarten) {
                    return Err("unknown_kindergarten");
                }
                let Some((capacity, published)) =
                    self.groups.get(&(kindergarten.clone(), *cohort, *language))
                else {
                    return Err("unknown_group");
                };
                if *places == 0 || *places > 10_000 {
                    return Err("invalid_input");
                }
                if *places > capacity - published {
                    return Err("not_enough_capacity");
                }
                if local_date(now).month() == 8 {
                    return Err("blackout");
                }
                Ok(vec![Event::PlacesPublished {
                    publication: self.pubs.keys().next_back().map_or(1, |k| k + 1),
                    kindergarten: kindergarten.clone(),
                    cohort: *cohort,
                    language: *language,
                    places: *places,
                    free_access_at: model_free_access_at(now),
                }])
            }
            Command::Take {
                app: id,
                publication,
            } => {
                let a = app(id)?;
                let p = self.pubs.get(publication).ok_or("unknown_publication")?;
                match a.status {
                    MStatus::Queued => {}
                    MStatus::StopListed => return Err("stop_listed"),
                    _ => return Err("wrong_status"),
                }
                if p.cohort != a.cohort || p.lang != a.lang {
                    return Err("not_eligible");
                }
                if p.left == 0 {
                    return Err("no_places");
                }
                if p.priority {
                    if a.locked_until.is_some_and(|t| t > now) {
                        return Err("locked");
                    }
                    if self.position(*id).unwrap() > self.priority_free(a.cohort) {
                        return Err("not_eligible");
                    }
                }
                Ok(vec![Event::ReferralIssued {
                    referral: self.refs.keys().next_back().map_or(1, |k| k + 1),
                    app: *id,
                    publication: *publication,
                    valid_until: model_valid_until(now),
                    recall_until: now + SignedDuration::from_hours(RECALL_HOURS),
                    phase: if p.priority {
                        Phase::Priority
                    } else {
                        Phase::FreeAccess
                    },
                }])
            }
            Command::Recall { app: id } => {
                let (r, rf) = self.active_ref(app(id)?)?;
                if now > rf.recall_until {
                    return Err("recall_window_closed");
                }
                let mut ev = vec![Event::ReferralRecalled {
                    referral: r,
                    app: *id,
                }];
                let free_at = self.pubs[&rf.publication].free_access_at;
                if free_at > now {
                    ev.push(Event::LockApplied {
                        app: *id,
                        until: free_at,
                    });
                }
                Ok(ev)
            }
            Command::Extend { app: id } => {
                let (r, rf) = self.active_ref(app(id)?)?;
                if rf.extensions >= 1 {
                    return Err("already_extended");
                }
                Ok(vec![Event::ReferralExtended {
                    referral: r,
                    app: *id,
                    valid_until: plus_days(rf.valid_until, EXTENSION_DAYS),
                }])
            }
            Command::Enroll { app: id } => {
                let (r, _) = self.active_ref(app(id)?)?;
                Ok(vec![Event::Enrolled {
                    referral: r,
                    app: *id,
                }])
            }
            Command::CancelBenefit { app: id } => {
                let a = app(id)?;
                if !(a.status.waiting() || a.status == MStatus::Referral) {
                    return Err("wrong_status");
                }
                if a.category == "general" {
                    return Err("no_benefit");
                }
                Ok(vec![Event::BenefitCancelled {
                    app: *id,
                    referral: a.referral,
                    category: "general".into(),
                    key: self.key_of("general", a.registered_at, *id),
                }])
            }
            Command::Withdraw { app: id } => {
                let a = app(id)?;
                if matches!(a.status, MStatus::Withdrawn | MStatus::Enrolled) {
                    return Err("wrong_status");
                }
                Ok(vec![Event::Withdrawn {
                    app: *id,
                    referral: a.referral,
                }])
            }
        }
    }

    fn close_ref(&mut self, r: u64, to: ReferralState) {
        let rf = self.refs.get_mut(&r).unwrap();
        assert_eq!(rf.state, ReferralState::Active);
        rf.state = to;
        let p = rf.publication;
        if to != ReferralState::Used {
            let p = self.pubs.get_mut(&p).unwrap();
            p.left += 1;
            assert!(p.left <= p.places);
        }
    }

    /// The model's own reading of an event.
    fn apply(&mut self, ev: &Event, at: Timestamp) {
        self.last_at = at;
        match ev {
            // The applicant moves no position.
            Event::ApplicantChanged { .. } => {}
            Event::RulesActivated { files, version, .. } => {
                let v = (0..3).find(|v| &rule_variant(*v).0 == files).unwrap();
                self.rules = v;
                self.ranks = rule_variant(v).1;
                self.rules_version = *version;
                let cohorts: Vec<i32> = self.apps.values().map(|a| a.cohort).collect();
                for c in cohorts {
                    self.bump(c);
                }
            }
            Event::GroupsAdded { groups } => {
                for g in groups {
                    self.kg_names
                        .entry(g.kindergarten.clone())
                        .or_insert_with(|| g.name.clone());
                    self.groups.insert(
                        (g.kindergarten.clone(), g.cohort, g.language),
                        (g.capacity, 0),
                    );
                }
            }
            Event::Registered(r) => {
                self.max_seq = self.max_seq.max(r.app.seq);
                self.children.insert(r.child_iin.to_string(), r.app);
                self.apps.insert(
                    r.app,
                    MApp {
                        id: r.app,
                        child: r.child_iin.to_string(),
                        cohort: r.cohort,
                        lang: r.language,
                        category: r.category.clone(),
                        registered_at: r.registered_at,
                        status: MStatus::Queued,
                        referral: None,
                        locked_until: None,
                        stop_until: None,
                    },
                );
                self.bump(r.cohort);
            }
            Event::CategoryChanged { app, category, .. } => {
                let a = self.apps.get_mut(app).unwrap();
                a.category = category.clone();
                let c = a.cohort;
                self.bump(c);
            }
            Event::PlacesPublished {
                publication,
                kindergarten,
                cohort,
                language,
                places,
                free_access_at,
            } => {
                self.groups
                    .get_mut(&(kindergarten.clone(), *cohort, *language))
                    .unwrap()
                    .1 += places;
                self.pubs.insert(
                    *publication,
                    MPub {
                        kg: kindergarten.clone(),
                        cohort: *cohort,
                        lang: *language,
                        places: *places,
                        left: *places,
                        free_access_at: *free_access_at,
                        priority: *free_access_at > at,
                    },
                );
            }
            Event::PriorityPhaseEnded { publication } => {
                let p = self.pubs.get_mut(publication).unwrap();
                assert!(p.priority);
                p.priority = false;
            }
            Event::ReferralIssued {
                referral,
                app,
                publication,
                valid_until,
                recall_until,
                ..
            } => {
                let p = self.pubs.get_mut(publication).unwrap();
                p.left -= 1;
                let a = self.apps.get_mut(app).unwrap();
                assert_eq!(a.status, MStatus::Queued);
                a.status = MStatus::Referral;
                a.referral = Some(*referral);
                let c = a.cohort;
                self.refs.insert(
                    *referral,
                    MRef {
                        app: *app,
                        publication: *publication,
                        valid_until: *valid_until,
                        recall_until: *recall_until,
                        extensions: 0,
                        state: ReferralState::Active,
                    },
                );
                self.bump(c);
            }
            Event::ReferralExtended {
                referral,
                valid_until,
                ..
            } => {
                let r = self.refs.get_mut(referral).unwrap();
                r.valid_until = *valid_until;
                r.extensions += 1;
            }
            Event::ReferralRecalled { referral, app } => {
                self.close_ref(*referral, ReferralState::Recalled);
                let a = self.apps.get_mut(app).unwrap();
                a.status = MStatus::Queued;
                a.referral = None;
                let c = a.cohort;
                self.bump(c);
            }
            Event::LockApplied { app, until } => {
                self.apps.get_mut(app).unwrap().locked_until = Some(*until);
            }
            Event::LockLifted { app } => {
                self.apps.get_mut(app).unwrap().locked_until = None;
            }
            Event::ReferralExpired {
                referral,
                app,
                stop_listed_until,
            } => {
                self.close_ref(*referral, ReferralState::Expired);
                let a = self.apps.get_mut(app).unwrap();
                a.status = MStatus::StopListed;
                a.referral = None;
                a.stop_until = Some(*stop_listed_until);
                let c = a.cohort;
                self.bump(c);
            }
            Event::StopListLifted { app } => {
                let a = self.apps.get_mut(app).unwrap();
                assert_eq!(a.status, MStatus::StopListed);
                a.status = MStatus::Queued;
                a.stop_until = None;
            }
            Event::BenefitCancelled {
                app,
                referral,
                category,
                ..
            } => {
                if let Some(r) = referral {
                    self.close_ref(*r, ReferralState::Cancelled);
                    let a = self.apps.get_mut(app).unwrap();
                    a.status = MStatus::Queued;
                    a.referral = None;
                }
                let a = self.apps.get_mut(app).unwrap();
                a.category = category.clone();
                let c = a.cohort;
                self.bump(c);
            }
            Event::Enrolled { referral, app } => {
                self.close_ref(*referral, ReferralState::Used);
                let a = self.apps.get_mut(app).unwrap();
                a.status = MStatus::Enrolled;
                a.referral = None;
            }
            Event::Withdrawn { app, referral } => {
                if let Some(r) = referral {
                    self.close_ref(*r, ReferralState::Withdrawn);
                }
                let a = self.apps.get_mut(app).unwrap();
                a.status = MStatus::Withdrawn;
                a.referral = None;
                a.locked_until = None;
                a.stop_until = None;
                let (c, child) = (a.cohort, a.child.clone());
                self.children.remove(&child);
                self.bump(c);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Operations.

/// Which application an operation names: an index into those that fit a filter (any
/// application if none fits), or a number no application has.
#[derive(Debug, Clone, Copy)]
enum Pick {
    Any(usize),
    WithReferral(usize),
    Waiting(usize),
    Beneficiary(usize),
    Unknown,
}

#[derive(Debug, Clone, Copy)]
enum TakePick {
    Any(usize, usize),
    /// A pair the model expects to be accepted.
    Acceptable(usize),
    /// A stop-listed application and a publication of its cohort and language.
    StopListed(usize),
    /// A locked application and a priority publication of its cohort and language.
    Locked(usize),
    UnknownPublication(usize),
}

#[derive(Debug, Clone, Copy)]
enum RegAt {
    Now,
    Back(u32),
    /// The registration instant of an existing application: ties broken by number.
    SameAs(usize),
    /// A second before the child's birth (local midnight): refused.
    BeforeBirth,
}

#[derive(Debug, Clone, Copy)]
enum Wait {
    Secs(u32),
    /// To the next timer of the model, plus `delta` seconds (boundaries).
    NextTimer(i8),
    /// To the end of the recall window of an active referral, plus `delta` seconds.
    RecallEnd(usize, i8),
}

#[derive(Debug, Clone)]
enum Op {
    Register {
        year: i32,
        day: u16,
        female: bool,
        serial: u16,
        category: usize,
        ru: bool,
        at: RegAt,
    },
    ChangeCategory(Pick, usize, bool),
    Publish(usize, u32),
    Take(TakePick),
    Recall(Pick, bool),
    Extend(Pick),
    Enroll(Pick),
    CancelBenefit(Pick, bool),
    Withdraw(Pick, bool),
    AddGroup(usize, i32, bool, u32),
    ActivateRules(usize),
    Wait(Wait),
    /// A command at an instant before the last event: refused, nothing changes.
    Backwards(Pick),
    /// A command at a later instant without advancing first: refused if a transition is due.
    Unadvanced(u32, Pick),
}

fn pick() -> impl Strategy<Value = Pick> {
    prop_oneof![
        3 => any::<usize>().prop_map(Pick::Any),
        5 => any::<usize>().prop_map(Pick::WithReferral),
        3 => any::<usize>().prop_map(Pick::Waiting),
        2 => any::<usize>().prop_map(Pick::Beneficiary),
        1 => Just(Pick::Unknown),
    ]
}

fn reason() -> impl Strategy<Value = bool> {
    prop::bool::weighted(0.93)
}

fn op() -> impl Strategy<Value = Op> {
    let register = (
        2020..=2022i32,
        prop_oneof![0..365u16, 0..4u16],
        any::<bool>(),
        0..8u16,
        prop_oneof![3 => Just(6usize), 4 => 0..7usize],
        any::<bool>(),
        prop_oneof![
            3 => Just(RegAt::Now),
            2 => (0..3_600u32).prop_map(RegAt::Back),
            2 => (0..86_400 * 40u32).prop_map(RegAt::Back),
            1 => (0..86_400 * 1_100u32).prop_map(RegAt::Back),
            3 => any::<usize>().prop_map(RegAt::SameAs),
            1 => Just(RegAt::BeforeBirth),
        ],
    )
        .prop_map(
            |(year, day, female, serial, category, ru, at)| Op::Register {
                year,
                day,
                female,
                serial,
                category,
                ru,
                at,
            },
        );
    let take = prop_oneof![
        3 => (any::<usize>(), any::<usize>()).prop_map(|(a, p)| TakePick::Any(a, p)),
        10 => any::<usize>().prop_map(TakePick::Acceptable),
        1 => any::<usize>().prop_map(TakePick::StopListed),
        1 => any::<usize>().prop_map(TakePick::Locked),
        1 => any::<usize>().prop_map(TakePick::UnknownPublication),
    ];
    let wait = prop_oneof![
        3 => (60..3_600u32).prop_map(Wait::Secs),
        3 => (3_600..86_400u32).prop_map(Wait::Secs),
        3 => (86_400..86_400 * 4u32).prop_map(Wait::Secs),
        1 => (86_400 * 4..86_400 * 16u32).prop_map(Wait::Secs),
        3 => (-1..=1i8).prop_map(Wait::NextTimer),
        2 => (any::<usize>(), -1..=1i8).prop_map(|(i, d)| Wait::RecallEnd(i, d)),
    ];
    prop_oneof![
        10 => register,
        3 => (pick(), 0..7usize, reason()).prop_map(|(p, c, r)| Op::ChangeCategory(p, c, r)),
        8 => (prop_oneof![6 => 0..12usize, 1 => 12..19usize], prop_oneof![8 => 1..=3u32, 1 => Just(0u32), 1 => 4..=9u32])
            .prop_map(|(g, n)| Op::Publish(g, n)),
        20 => take.prop_map(Op::Take),
        6 => (pick(), reason()).prop_map(|(p, r)| Op::Recall(p, r)),
        4 => pick().prop_map(Op::Extend),
        3 => pick().prop_map(Op::Enroll),
        3 => (pick(), reason()).prop_map(|(p, r)| Op::CancelBenefit(p, r)),
        3 => (pick(), reason()).prop_map(|(p, r)| Op::Withdraw(p, r)),
        1 => (0..3usize, 2020..=2022i32, any::<bool>(), 1..=4u32)
            .prop_map(|(k, c, l, n)| Op::AddGroup(k, c, l, n)),
        1 => (0..3usize).prop_map(Op::ActivateRules),
        15 => wait.prop_map(Op::Wait),
        1 => pick().prop_map(Op::Backwards),
        1 => (1..86_400 * 8u32, pick()).prop_map(|(s, p)| Op::Unadvanced(s, p)),
    ]
}

/// Where a sequence starts (09:00 local): before the move to UTC+5, before the August
/// blackout, over the New Year holidays, before Nauryz.
const STARTS: [(i16, i8, i8); 4] = [(2024, 2, 26), (2025, 7, 28), (2025, 12, 29), (2026, 3, 16)];

const KINDERGARTENS: [(&str, &str); 3] = [
    ("K1", "ГККП «Ясли-сад № 157»"),
    ("K2", "ТОО «Балапан-2»"),
    ("K3", "ГККП «Ясли-сад № 12»"),
];

fn initial_groups() -> Vec<GroupRow> {
    let rows = [
        (0, 2020, Language::Kk, 8),
        (0, 2021, Language::Kk, 8),
        (0, 2021, Language::Ru, 6),
        (0, 2022, Language::Kk, 6),
        (1, 2020, Language::Ru, 6),
        (1, 2021, Language::Kk, 5),
        (1, 2022, Language::Ru, 6),
        (1, 2022, Language::Kk, 5),
    ];
    rows.iter()
        .map(|(k, c, l, cap)| group_row(*k, *c, *l, *cap))
        .collect()
}

fn group_row(k: usize, cohort: i32, language: Language, capacity: u32) -> GroupRow {
    GroupRow {
        kindergarten: KINDERGARTENS[k].0.into(),
        name: KINDERGARTENS[k].1.into(),
        district: "Бостандыкский".into(),
        cohort,
        language,
        capacity,
    }
}

fn lang(ru: bool) -> Language {
    if ru {
        Language::Ru
    } else {
        Language::Kk
    }
}

// ---------------------------------------------------------------------------------------
// The runner: one engine, one model, the same operations.

#[derive(Debug, Default, Clone)]
struct Stats {
    /// (command, outcome code or "ok") -> count
    outcomes: BTreeMap<(String, String), u64>,
    timer_events: BTreeMap<String, u64>,
    recall_restores_checked: u64,
    steps: u64,
}

thread_local! {
    static STATS: RefCell<Stats> = RefCell::new(Stats::default());
}

struct Harness {
    core: Core,
    model: Model,
    /// Positions of a cohort just before a referral was issued, and the cohort's version
    /// just after: referral -> (cohort, version, app -> position).
    before_take: BTreeMap<u64, (i32, u64, BTreeMap<AppNo, u64>)>,
    step: usize,
}

fn cmd_name(c: &Command) -> &'static str {
    match c {
        Command::ActivateRules { .. } => "activate_rules",
        Command::AddGroups { .. } => "add_groups",
        Command::Register(_) => "register",
        Command::ChangeCategory { .. } => "change_category",
        Command::Publish { .. } => "publish",
        Command::Take { .. } => "take",
        Command::Recall { .. } => "recall",
        Command::Extend { .. } => "extend",
        Command::Enroll { .. } => "enroll",
        Command::CancelBenefit { .. } => "cancel_benefit",
        Command::Withdraw { .. } => "withdraw",
        Command::ChangeApplicant { .. } => "change_applicant",
    }
}

const UNKNOWN_APP: AppNo = AppNo {
    year: 2019,
    seq: 999_999,
    n: 1,
};

impl Harness {
    fn new(start: usize) -> Harness {
        let (y, m, d) = STARTS[start];
        let now = at_local(date(y, m, d), Time::constant(9, 0, 0, 0));
        let mut h = Harness {
            core: Core::default(),
            model: Model::new(now),
            before_take: BTreeMap::new(),
            step: 0,
        };
        h.advance(now);
        h.run_command(
            Command::ActivateRules {
                files: rule_variant(0).0,
            },
            true,
        );
        h.run_command(
            Command::AddGroups {
                groups: initial_groups(),
            },
            true,
        );
        assert_eq!(h.core.state.rules_version(), 1);
        assert_eq!(h.core.state.data.kindergartens.len(), 2);
        h
    }

    fn now(&self) -> Timestamp {
        self.model.now
    }

    fn pick(&self, p: Pick) -> AppNo {
        let m = &self.model;
        let (i, filtered): (usize, Vec<AppNo>) = match p {
            Pick::Unknown => return UNKNOWN_APP,
            Pick::Any(i) => (i, m.apps.keys().copied().collect()),
            Pick::WithReferral(i) => (
                i,
                m.apps
                    .values()
                    .filter(|a| a.status == MStatus::Referral)
                    .map(|a| a.id)
                    .collect(),
            ),
            Pick::Waiting(i) => (
                i,
                m.apps
                    .values()
                    .filter(|a| a.status.waiting())
                    .map(|a| a.id)
                    .collect(),
            ),
            Pick::Beneficiary(i) => (
                i,
                m.apps
                    .values()
                    .filter(|a| a.category != "general" && a.status != MStatus::Withdrawn)
                    .map(|a| a.id)
                    .collect(),
            ),
        };
        let list = if filtered.is_empty() {
            m.apps.keys().copied().collect()
        } else {
            filtered
        };
        if list.is_empty() {
            UNKNOWN_APP
        } else {
            list[i % list.len()]
        }
    }

    fn take_pair(&self, t: TakePick) -> (AppNo, u64) {
        let m = &self.model;
        let pubs: Vec<u64> = m.pubs.keys().copied().collect();
        let pairs = |f: &dyn Fn(&MApp, u64, &MPub) -> bool| -> Vec<(AppNo, u64)> {
            let mut v = Vec::new();
            for a in m.apps.values() {
                for (id, p) in &m.pubs {
                    if f(a, *id, p) {
                        v.push((a.id, *id));
                    }
                }
            }
            v
        };
        let (i, list) = match t {
            TakePick::Any(a, p) => {
                let app = self.pick(Pick::Any(a));
                let publication = if pubs.is_empty() {
                    1
                } else {
                    pubs[p % pubs.len()]
                };
                return (app, publication);
            }
            TakePick::UnknownPublication(a) => {
                return (self.pick(Pick::Waiting(a)), pubs.len() as u64 + 100)
            }
            TakePick::Acceptable(i) => (
                i,
                pairs(&|a, p, _| {
                    m.decide(
                        &Command::Take {
                            app: a.id,
                            publication: p,
                        },
                        true,
                    )
                    .is_ok()
                }),
            ),
            TakePick::StopListed(i) => (
                i,
                pairs(&|a, _, p| {
                    a.status == MStatus::StopListed && a.cohort == p.cohort && a.lang == p.lang
                }),
            ),
            TakePick::Locked(i) => (
                i,
                pairs(&|a, _, p| {
                    a.status == MStatus::Queued
                        && a.locked_until.is_some_and(|t| t > m.now)
                        && p.priority
                        && p.left > 0
                        && a.cohort == p.cohort
                        && a.lang == p.lang
                }),
            ),
        };
        if list.is_empty() {
            self.take_pair(TakePick::Any(i, i / 7))
        } else {
            list[i % list.len()]
        }
    }

    fn command(&self, op: &Op) -> Option<(Command, bool)> {
        let m = &self.model;
        Some(match op {
            Op::Register {
                year,
                day,
                female,
                serial,
                category,
                ru,
                at,
            } => {
                let birth = date(*year as i16, 1, 1)
                    .checked_add((*day as i64).days())
                    .unwrap();
                let child = Iin::make_valid(birth, *female, *serial as u32);
                let registered_at = match at {
                    RegAt::Now => None,
                    RegAt::Back(s) => Some(self.now() - SignedDuration::from_secs(*s as i64)),
                    RegAt::BeforeBirth => {
                        Some(at_local(birth, Time::midnight()) - SignedDuration::from_secs(1))
                    }
                    RegAt::SameAs(i) => {
                        let all: Vec<Timestamp> =
                            m.apps.values().map(|a| a.registered_at).collect();
                        if all.is_empty() {
                            None
                        } else {
                            Some(all[i % all.len()])
                        }
                    }
                };
                let input = RegisterInput {
                    child_iin: child.to_string(),
                    birth_date: birth,
                    applicant_iin: Iin::make_valid(date(1990, 5, 5), true, 77).to_string(),
                    category: Some(CATEGORIES[*category].into()),
                    language: Some(lang(*ru)),
                    registered_at,
                    ..RegisterInput::default()
                };
                (Command::Register(Box::new(input)), true)
            }
            Op::ChangeCategory(p, c, r) => (
                Command::ChangeCategory {
                    app: self.pick(*p),
                    category: CATEGORIES[*c].into(),
                },
                *r,
            ),
            Op::Publish(g, places) => {
                let (kindergarten, cohort, language) = if *g == 18 {
                    ("K9".to_string(), 2021, Language::Kk)
                } else {
                    (
                        KINDERGARTENS[g / 6].0.to_string(),
                        2020 + (g % 6 / 2) as i32,
                        lang(g % 2 == 1),
                    )
                };
                (
                    Command::Publish {
                        kindergarten,
                        cohort,
                        language,
                        places: *places,
                    },
                    true,
                )
            }
            Op::Take(t) => {
                let (app, publication) = self.take_pair(*t);
                (Command::Take { app, publication }, true)
            }
            Op::Recall(p, r) => (Command::Recall { app: self.pick(*p) }, *r),
            Op::Extend(p) => (Command::Extend { app: self.pick(*p) }, true),
            Op::Enroll(p) => (Command::Enroll { app: self.pick(*p) }, true),
            Op::CancelBenefit(p, r) => (Command::CancelBenefit { app: self.pick(*p) }, *r),
            Op::Withdraw(p, r) => (Command::Withdraw { app: self.pick(*p) }, *r),
            Op::AddGroup(k, c, l, n) => (
                Command::AddGroups {
                    groups: vec![group_row(*k, *c, lang(*l), *n)],
                },
                true,
            ),
            Op::ActivateRules(v) => (
                Command::ActivateRules {
                    files: rule_variant(*v).0,
                },
                true,
            ),
            Op::Wait(_) | Op::Backwards(_) | Op::Unadvanced(..) => return None,
        })
    }

    fn run(&mut self, op: &Op) {
        self.step += 1;
        match op {
            Op::Wait(w) => {
                let now = self.now();
                let to = match w {
                    Wait::Secs(s) => now + SignedDuration::from_secs(*s as i64),
                    Wait::NextTimer(d) => match self.model.next_timer() {
                        Some((t, _)) => t + SignedDuration::from_secs(*d as i64),
                        None => now + SignedDuration::from_hours(1),
                    },
                    Wait::RecallEnd(i, d) => {
                        let ends: Vec<Timestamp> = self
                            .model
                            .refs
                            .values()
                            .filter(|r| r.state == ReferralState::Active)
                            .map(|r| r.recall_until)
                            .collect();
                        if ends.is_empty() {
                            now + SignedDuration::from_mins(10)
                        } else {
                            ends[i % ends.len()] + SignedDuration::from_secs(*d as i64)
                        }
                    }
                };
                self.advance(to.max(now));
            }
            Op::Backwards(p) => {
                let at = self.model.last_at - SignedDuration::from_secs(1);
                let req = Request {
                    command: Command::Withdraw { app: self.pick(*p) },
                    actor: Actor::Operator("model".into()),
                    reason: Some("backwards".into()),
                };
                self.expect_refused(&req, at, "clock_backwards");
            }
            Op::Unadvanced(s, p) => {
                let at = self.now() + SignedDuration::from_secs(*s as i64);
                if self.model.next_timer().is_some_and(|(t, _)| t <= at) {
                    let req = Request {
                        command: Command::Enroll { app: self.pick(*p) },
                        actor: Actor::Operator("model".into()),
                        reason: None,
                    };
                    self.expect_refused(&req, at, "not_advanced");
                }
            }
            _ => {
                let (cmd, reason) = self.command(op).unwrap();
                self.run_command(cmd, reason);
            }
        }
        self.check();
    }

    fn expect_refused(&mut self, req: &Request, at: Timestamp, code: &str) {
        let digest = self.core.state.digest();
        let err = self
            .core
            .execute(req, at)
            .expect_err("a command out of time must be refused");
        assert_eq!(err.code, code, "{err}");
        assert_eq!(
            digest,
            self.core.state.digest(),
            "a refusal changed the state"
        );
        record(cmd_name(&req.command), code);
    }

    fn advance(&mut self, to: Timestamp) {
        let expected = self.model.advance(to);
        let got = self.core.advance(to).expect("advance");
        let got_pairs: Vec<(Timestamp, Event)> =
            got.iter().map(|r| (r.at, r.event.clone())).collect();
        assert_eq!(
            got_pairs, expected,
            "step {}: what time brought up to {to} differs from the model",
            self.step
        );
        self.check_records(&got, None);
        STATS.with(|s| {
            let mut s = s.borrow_mut();
            for (_, e) in &expected {
                *s.timer_events.entry(e.name().to_string()).or_default() += 1;
            }
        });
    }

    fn check_records(&self, recs: &[EventRecord], reason: Option<&str>) {
        for r in recs {
            assert!(r.at <= self.now(), "event stamped after now");
            if let Some(why) = reason {
                assert_eq!(r.reason.as_deref(), Some(why));
            }
            if let Some(a) = r.event.app() {
                let app = self
                    .core
                    .state
                    .app(a)
                    .expect("event of a known application");
                assert!(
                    app.history.contains(&r.seq),
                    "{a}'s history lacks event {}",
                    r.seq
                );
            }
        }
        for w in recs.windows(2) {
            assert_eq!(w[0].seq + 1, w[1].seq);
            assert!(w[0].at <= w[1].at);
        }
    }

    fn positions(&self, cohort: i32) -> BTreeMap<AppNo, u64> {
        let st = &self.core.state;
        st.data
            .apps
            .values()
            .filter(|a| a.cohort == cohort)
            .filter_map(|a| st.queue_position(a).map(|p| (a.id, p)))
            .collect()
    }

    fn run_command(&mut self, cmd: Command, with_reason: bool) {
        let now = self.now();
        let reason = with_reason.then(|| format!("step {}", self.step));
        let actor = match &cmd {
            Command::Recall { .. } | Command::Extend { .. } | Command::Withdraw { .. } => {
                Actor::Applicant {
                    iin: "900505677777".into(),
                    cert_serial: "ab12".into(),
                }
            }
            _ => Actor::Operator("model".into()),
        };
        let req = Request {
            command: cmd,
            actor,
            reason: reason.clone(),
        };
        let expected = self.model.decide(&req.command, with_reason);
        let digest = self.core.state.digest();
        let last_seq = self.core.state.data.last_seq;
        // Positions of the cohort before a take, to compare after its recall.
        let pre_take = match &req.command {
            Command::Take { app, .. } => self
                .model
                .apps
                .get(app)
                .map(|a| (a.cohort, self.positions(a.cohort))),
            _ => None,
        };
        // A recall with nothing else changed in the cohort since the take.
        let restore = match (&req.command, &expected) {
            (Command::Recall { app }, Ok(_)) => {
                let r = self.model.apps[app].referral.unwrap();
                self.before_take
                    .get(&r)
                    .filter(|(c, v, _)| self.model.version(*c) == *v)
                    .cloned()
            }
            _ => None,
        };
        let got = self.core.execute(&req, now);
        let name = cmd_name(&req.command);
        match (&got, &expected) {
            (Ok(recs), Ok(events)) => {
                let got_events: Vec<Event> = recs.iter().map(|r| r.event.clone()).collect();
                assert_eq!(
                    &got_events, events,
                    "step {}: {name} at {now}: events differ from the model",
                    self.step
                );
                for r in recs {
                    assert_eq!(r.at, now);
                    assert_eq!(r.actor, req.actor);
                }
                assert_eq!(recs[0].seq, last_seq + 1);
                self.check_records(recs, reason.as_deref());
                for e in events {
                    self.model.apply(e, now);
                    if let Event::ReferralIssued { referral, .. } = e {
                        let (cohort, positions) = pre_take.clone().unwrap();
                        self.before_take
                            .insert(*referral, (cohort, self.model.version(cohort), positions));
                    }
                }
                if let Some((cohort, _, positions)) = restore {
                    assert_eq!(
                        self.positions(cohort),
                        positions,
                        "step {}: the recall did not restore the positions of cohort {cohort}",
                        self.step
                    );
                    STATS.with(|s| s.borrow_mut().recall_restores_checked += 1);
                }
                record(name, "ok");
            }
            (Err(e), Err(code)) => {
                assert_eq!(
                    e.code, *code,
                    "step {}: {name} at {now} refused for another reason: {e}",
                    self.step
                );
                assert_eq!(digest, self.core.state.digest(), "step {}: a refused {name} changed the state", self.step);
                assert_eq!(last_seq, self.core.state.data.last_seq);
                record(name, code);
            }
            (Ok(recs), Err(code)) => panic!(
                "step {}: {name} at {now} was accepted ({:?}) but the model expected `{code}`: {:?}",
                self.step,
                recs.iter().map(|r| &r.event).collect::<Vec<_>>(),
                req.command
            ),
            (Err(e), Ok(events)) => panic!(
                "step {}: {name} at {now} was refused ({}: {e}) but the model expected {events:?}",
                self.step, e.code
            ),
        }
    }

    /// Everything that must hold after every step.
    fn check(&self) {
        let st = &self.core.state;
        let m = &self.model;
        if let Err(e) = st.check_invariants() {
            panic!("step {}: invariant broken: {e}", self.step);
        }
        assert_eq!(st.data.last_at, m.last_at);
        assert!(
            st.data.apps.keys().eq(m.apps.keys()),
            "the applications differ"
        );
        for (id, ma) in &m.apps {
            let a = st.app(*id).unwrap();
            assert_eq!(a.status, ma.status.engine(), "status of {id}");
            assert_eq!(a.category, ma.category, "category of {id}");
            assert_eq!(a.cohort, ma.cohort);
            assert_eq!(a.language, ma.lang);
            assert_eq!(a.referral, ma.referral, "referral of {id}");
            assert_eq!(a.locked_until, ma.locked_until, "lock of {id}");
            assert_eq!(a.stop_listed_until, ma.stop_until, "stop-list of {id}");
            if !ma.status.waiting() {
                assert_eq!(st.queue_position(a), None);
                assert_eq!(st.category_position(a), None);
            }
            let child = Iin::parse(&ma.child).unwrap();
            assert_eq!(st.app_of_child(&child), m.children.get(&ma.child).copied());
        }
        // Positions against the reference queues; 1..n in each cohort.
        let queues = m.queues();
        assert_eq!(st.cohorts(), queues.keys().copied().collect::<Vec<_>>());
        for (cohort, q) in &queues {
            let mut seen = Vec::new();
            let mut per_category: BTreeMap<&str, u64> = BTreeMap::new();
            for (i, id) in q.iter().enumerate() {
                let a = st.app(*id).unwrap();
                let pos = st.queue_position(a);
                assert_eq!(
                    pos,
                    Some(i as u64 + 1),
                    "step {}: position of {id} in cohort {cohort}",
                    self.step
                );
                let n = per_category.entry(a.category.as_str()).or_default();
                *n += 1;
                let want = if a.category == "general" { 0 } else { *n };
                assert_eq!(
                    st.category_position(a),
                    Some(want),
                    "step {}: category position of {id} ({})",
                    self.step,
                    a.category
                );
                seen.push(pos.unwrap());
            }
            seen.sort_unstable();
            assert!(
                seen.iter().copied().eq(1..=q.len() as u64),
                "positions are not 1..n"
            );
            assert_eq!(st.queue(*cohort).unwrap().len(), q.len());
            assert_eq!(st.priority_free(*cohort), m.priority_free(*cohort));
        }
        // Publications, referrals, places.
        assert_eq!(st.data.publications.len(), m.pubs.len());
        let mut held: BTreeMap<u64, u32> = BTreeMap::new();
        let mut active_per_app: BTreeMap<AppNo, u32> = BTreeMap::new();
        for (id, r) in &st.data.referrals {
            let mr = &m.refs[id];
            assert_eq!(r.state, mr.state, "state of referral {id}");
            assert_eq!(r.valid_until, mr.valid_until);
            assert_eq!(r.recall_until, mr.recall_until);
            assert_eq!(r.extensions, mr.extensions);
            assert_eq!((r.app, r.publication), (mr.app, mr.publication));
            if matches!(r.state, ReferralState::Active | ReferralState::Used) {
                *held.entry(r.publication).or_default() += 1;
            }
            if r.state == ReferralState::Active {
                *active_per_app.entry(r.app).or_default() += 1;
                let a = st.app(r.app).unwrap();
                assert_eq!((a.status, a.referral), (Status::ReferralIssued, Some(*id)));
            }
        }
        assert_eq!(st.data.referrals.len(), m.refs.len());
        assert!(
            active_per_app.values().all(|n| *n == 1),
            "two active referrals for one application"
        );
        for (id, p) in &st.data.publications {
            let mp = &m.pubs[id];
            assert!(
                p.places_left <= p.places,
                "publication {id} over its places"
            );
            let h = held.get(id).copied().unwrap_or(0);
            assert!(h <= p.places, "a place of publication {id} is held twice");
            assert_eq!(p.places_left + h, p.places);
            assert_eq!(p.places_left, mp.left, "places left of publication {id}");
            assert_eq!(
                (p.places, p.cohort, p.language),
                (mp.places, mp.cohort, mp.lang)
            );
            assert_eq!(p.kindergarten, mp.kg);
            assert_eq!(p.free_access_at, mp.free_access_at);
            assert_eq!(
                p.phase == Phase::Priority,
                mp.priority,
                "phase of publication {id}"
            );
            let open = st
                .open_publications(p.cohort, p.language)
                .iter()
                .any(|o| o.id == *id);
            assert_eq!(open, p.places_left > 0);
        }
        for kg in st.data.kindergartens.values() {
            for g in &kg.groups {
                let (cap, published) = m.groups[&(kg.id.clone(), g.cohort, g.language)];
                assert_eq!((g.capacity, g.published), (cap, published));
                assert!(g.published <= g.capacity);
            }
        }
        // The engine's next timer is the model's.
        assert_eq!(
            st.next_timer().map(|(t, _)| t),
            m.next_timer().map(|(t, _)| t),
            "step {}: next timer",
            self.step
        );
        STATS.with(|s| s.borrow_mut().steps += 1);
    }

    /// The offers the engine lists are the publications the model would let it take.
    fn check_offers(&self) {
        for a in self.model.apps.values() {
            let got: Vec<u64> = self
                .core
                .offers(a.id, self.now())
                .unwrap()
                .iter()
                .map(|p| p.id)
                .collect();
            let want: Vec<u64> = self
                .model
                .pubs
                .keys()
                .copied()
                .filter(|p| {
                    self.model
                        .decide(
                            &Command::Take {
                                app: a.id,
                                publication: *p,
                            },
                            true,
                        )
                        .is_ok()
                })
                .collect();
            assert_eq!(got, want, "offers of {}", a.id);
        }
    }
}

fn record(cmd: &str, outcome: &str) {
    STATS.with(|s| {
        *s.borrow_mut()
            .outcomes
            .entry((cmd.to_string(), outcome.to_string()))
            .or_default() += 1;
    });
}

fn run_ops(start: usize, ops: &[Op]) {
    let mut h = Harness::new(start);
    for (i, op) in ops.iter().enumerate() {
        h.run(op);
        if i % 8 == 7 {
            h.check_offers();
        }
    }
    h.check_offers();
}

/// Cases of a property: `default`, or `KEZEK_MODEL_CASES` for a longer hunt.
fn cases(default: u32) -> u32 {
    std::env::var("KEZEK_MODEL_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn ops(max: usize) -> impl Strategy<Value = (usize, Vec<Op>)> {
    (0..STARTS.len(), prop::collection::vec(op(), 1..max))
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(1024),
        failure_persistence: None,
        max_shrink_iters: 4_000,
        ..ProptestConfig::default()
    })]

    #[test]
    fn engine_agrees_with_the_model((start, ops) in ops(90)) {
        run_ops(start, &ops);
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(96),
        failure_persistence: None,
        max_shrink_iters: 2_000,
        ..ProptestConfig::default()
    })]

    /// Long runs: many registrations pile up, referrals expire, stop-lists end.
    #[test]
    fn engine_agrees_with_the_model_over_long_runs((start, ops) in ops(300)) {
        run_ops(start, &ops);
    }
}

/// The generator is not vacuous: over a fixed set of sequences, every command is accepted
/// and refused for each reason the brief names, every timer fires, and recalls are checked
/// against the positions before the take.
#[test]
fn the_sequences_exercise_every_command_and_refusal() {
    STATS.with(|s| *s.borrow_mut() = Stats::default());
    let mut runner = TestRunner::new_with_rng(
        ProptestConfig::default(),
        TestRng::deterministic_rng(RngAlgorithm::ChaCha),
    );
    let strategy = ops(150);
    for _ in 0..100 {
        let (start, ops) = strategy.new_tree(&mut runner).unwrap().current();
        run_ops(start, &ops);
    }
    let stats = STATS.with(|s| s.borrow().clone());
    let count = |cmd: &str, outcome: &str| {
        stats
            .outcomes
            .get(&(cmd.to_string(), outcome.to_string()))
            .copied()
            .unwrap_or(0)
    };
    eprintln!(
        "{} steps; recall restores checked: {}",
        stats.steps, stats.recall_restores_checked
    );
    for ((c, o), n) in &stats.outcomes {
        eprintln!("  {c:<16} {o:<22} {n}");
    }
    for (e, n) in &stats.timer_events {
        eprintln!("  timer {e:<22} {n}");
    }
    for cmd in [
        "register",
        "change_category",
        "publish",
        "take",
        "recall",
        "extend",
        "enroll",
        "cancel_benefit",
        "withdraw",
        "activate_rules",
        "add_groups",
    ] {
        assert!(count(cmd, "ok") > 0, "{cmd} never accepted");
    }
    for (cmd, code) in [
        ("register", "duplicate_application"),
        ("register", "invalid_date"),
        ("take", "not_eligible"),
        ("take", "no_places"),
        ("take", "stop_listed"),
        ("take", "locked"),
        ("take", "wrong_status"),
        ("recall", "recall_window_closed"),
        ("recall", "no_active_referral"),
        ("recall", "reason_required"),
        ("extend", "already_extended"),
        ("publish", "not_enough_capacity"),
        ("publish", "unknown_group"),
        ("cancel_benefit", "no_benefit"),
        ("withdraw", "wrong_status"),
    ] {
        assert!(count(cmd, code) > 0, "{cmd} never refused with {code}");
    }
    for e in [
        "priority_phase_ended",
        "referral_expired",
        "lock_lifted",
        "stop_list_lifted",
    ] {
        assert!(
            stats.timer_events.get(e).copied().unwrap_or(0) > 0,
            "{e} never happened"
        );
    }
    assert!(
        stats.recall_restores_checked > 0,
        "no recall was checked against the positions before its take"
    );
}
