//! The simulation loop: a virtual clock over the engine's [`Core`].
//!
//! Two sources of time: the engine's own timers (`State::next_timer`: phase ends, expiries,
//! lock and stop-list ends, emitted by `Core::advance`) and the simulation's actions
//! (arrivals, publications, parents' decisions, withdrawals, weekly samples). The loop
//! jumps to the earlier of the two, lets the engine emit what fell due, performs the
//! actions of that instant, then lets parents take the places that are open.
//!
//! Who takes a place: in a priority phase, the engine's `may_take` (the rules'
//! `priority_eligible`) says who may; the simulation walks the cohort queue from the top
//! and stops at the first application the engine finds not eligible (eligibility is taken
//! to be monotone in the queue position). In free access, waiting parents of the cohort
//! and language come in a fixed random order (their "speed"), each considering each open
//! publication once. Each parent's answer is a draw addressed by (seed, application, kind,
//! k), the same in both rule sets.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use jiff::civil::Date;
use jiff::Timestamp;
use kezek_engine::calendar;
use kezek_engine::demo::{self, Scale};
use kezek_engine::event::{Actor, Event, EventRecord};
use kezek_engine::iin::Iin;
use kezek_engine::model::{OrderKey, Phase, ReferralState, Status};
use kezek_engine::state::Data;
use kezek_engine::{AppNo, Command, Core, Language, RegisterInput, Request, RuleSet, State};
use rand::Rng;

use crate::draws::{self, Kind};
use crate::report::{self, Comparison, Report, RuleSetReport};
use crate::scenario::{Arrivals, Occurrence, Rate, Scenario, StartKind};
use crate::{Control, RuleInput, SimError, StartState};

/// Seconds in an average month, for monthly hazards.
const MONTH_SECONDS: f64 = 30.436_875 * 86_400.0;
/// The most arrivals one run may draw.
pub const MAX_ARRIVALS: usize = 2_000_000;

pub fn horizon_end(start: Timestamp, months: u32) -> Option<Timestamp> {
    start
        .to_zoned(calendar::tz().clone())
        .checked_add(jiff::Span::new().months(i64::from(months)))
        .ok()
        .map(|z| z.timestamp())
}

pub(crate) fn prepare_start(
    scenario: &Scenario,
    store: Option<Data>,
) -> Result<StartState, SimError> {
    match (&scenario.start, store) {
        (StartKind::Demo { seed, small }, _) => {
            let at = scenario.start_at.unwrap_or_else(demo::anchor);
            if at < demo::anchor() {
                return Err(SimError::Scenario {
                    field: "start.at".into(),
                    message: format!(
                        "the demo city is dated up to {}; start at or after it",
                        calendar::show(demo::anchor())
                    ),
                });
            }
            let mut core = Core::default();
            core.execute(
                &Request {
                    command: Command::ActivateRules {
                        files: RuleSet::default_files(),
                    },
                    actor: Actor::System,
                    reason: Some("simulation: demo city".into()),
                },
                at,
            )?;
            let scale = if *small { Scale::Small } else { Scale::City };
            demo::build(&mut core, *seed, scale, at)?;
            Ok(StartState {
                data: core.state.data,
                at,
                source: format!(
                    "demo city, seed {seed}, {}",
                    if *small { "small" } else { "city" }
                ),
            })
        }
        (StartKind::Store, Some(data)) => {
            if data.rules_versions.is_empty() {
                return Err(SimError::Scenario {
                    field: "start.from".into(),
                    message: "the store has no rules".into(),
                });
            }
            let at = scenario.start_at.unwrap_or(data.last_at);
            if at < data.last_at {
                return Err(SimError::Scenario {
                    field: "start.at".into(),
                    message: format!(
                        "before the store's last event ({})",
                        calendar::show(data.last_at)
                    ),
                });
            }
            Ok(StartState {
                data,
                at,
                source: "store".into(),
            })
        }
        (StartKind::Store, None) => Err(SimError::Scenario {
            field: "start.from".into(),
            message: "\"store\" needs a store to start from".into(),
        }),
    }
}

// ---------------------------------------------------------------------------------------
// The plan: what does not depend on the rules (arrivals), drawn once per seed.

#[derive(Debug, Clone)]
pub(crate) struct Arrival {
    pub at: Timestamp,
    pub app: AppNo,
    pub input: RegisterInput,
    /// The scenario's category code (before aliases).
    pub category: String,
}

pub(crate) struct Plan {
    pub arrivals: Vec<Arrival>,
    pub skipped_unborn: u64,
    pub end: Timestamp,
}

fn month_start(start: Timestamp, m: u32) -> Option<Timestamp> {
    horizon_end(start, m)
}

fn rates_from_history(data: &Data, start: Timestamp) -> Vec<(i32, String, Language, f64)> {
    // (age in years, category, language) -> registrations in the last 12 months.
    let from = horizon_end(start, 0)
        .and_then(|s| {
            s.to_zoned(calendar::tz().clone())
                .checked_sub(jiff::Span::new().months(12))
                .ok()
        })
        .map(|z| z.timestamp())
        .unwrap_or(start);
    let mut counts: BTreeMap<(i32, String, Language), u64> = BTreeMap::new();
    for a in data.apps.values() {
        if a.registered_at > from && a.registered_at <= start {
            let age = i32::from(calendar::local_date(a.registered_at).year())
                - i32::from(a.birth_date.year());
            *counts
                .entry((age, a.category.clone(), a.language))
                .or_default() += 1;
        }
    }
    counts
        .into_iter()
        .map(|((age, c, l), n)| (age, c, l, n as f64 / 12.0))
        .collect()
}

pub(crate) fn make_plan(
    scenario: &Scenario,
    start: &StartState,
    seed: u64,
) -> Result<Plan, SimError> {
    let end = horizon_end(start.at, scenario.horizon_months).ok_or_else(|| SimError::Scenario {
        field: "horizon_months".into(),
        message: "the horizon ends past the supported range of dates".into(),
    })?;
    let mut rng = draws::sequence(seed, draws::STREAM_ARRIVALS);
    let history = match &scenario.arrivals {
        Arrivals::FromHistory => Some(rates_from_history(&start.data, start.at)),
        Arrivals::Rates(_) => None,
    };
    let mut used: HashSet<String> = start
        .data
        .apps
        .values()
        .map(|a| a.child_iin.as_str().to_string())
        .collect();
    let mut drafts: Vec<(Timestamp, Date, String, Language)> = Vec::new();
    let mut skipped_unborn = 0u64;
    for m in 0..scenario.horizon_months {
        let (Some(a), Some(b)) = (month_start(start.at, m), month_start(start.at, m + 1)) else {
            continue;
        };
        let year = i32::from(calendar::local_date(a).year());
        let rows: Vec<Rate> = match (&scenario.arrivals, &history) {
            (Arrivals::Rates(r), _) => r.clone(),
            (Arrivals::FromHistory, Some(h)) => h
                .iter()
                .map(|(age, c, l, per_month)| Rate {
                    cohort: year - age,
                    category: c.clone(),
                    language: Some(*l),
                    per_month: *per_month,
                })
                .collect(),
            (Arrivals::FromHistory, None) => Vec::new(),
        };
        for r in rows {
            let whole = r.per_month.floor();
            let n = whole as u64 + u64::from(rng.random::<f64>() < r.per_month - whole);
            for _ in 0..n {
                let at = Timestamp::from_second(rng.random_range(a.as_second()..b.as_second()))
                    .unwrap_or(a);
                let language = r.language.unwrap_or_else(|| {
                    if rng.random::<f64>() < scenario.kk_share {
                        Language::Kk
                    } else {
                        Language::Ru
                    }
                });
                let day_fraction = rng.random::<f64>();
                // Born in the cohort's year, at least a day before registering.
                let first = Date::new(r.cohort as i16, 1, 1).ok();
                let last_of_year = Date::new(r.cohort as i16, 12, 31).ok();
                let before = calendar::local_date(at).yesterday().ok();
                let (Some(first), Some(last_of_year), Some(before)) = (first, last_of_year, before)
                else {
                    skipped_unborn += 1;
                    continue;
                };
                let last = last_of_year.min(before);
                if last < first {
                    skipped_unborn += 1;
                    continue;
                }
                let days = first.until(last).map(|s| s.get_days()).unwrap_or(0).max(0);
                let offset = ((days as f64 + 1.0) * day_fraction).floor() as i64;
                let birth = first
                    .checked_add(jiff::Span::new().days(offset.min(i64::from(days))))
                    .unwrap_or(first);
                drafts.push((at, birth, r.category.clone(), language));
                if drafts.len() > MAX_ARRIVALS {
                    return Err(SimError::Scenario {
                        field: "arrivals".into(),
                        message: format!("more than {MAX_ARRIVALS} arrivals in one run"),
                    });
                }
            }
        }
    }
    drafts.sort_by_key(|d| d.0);
    let base = start.data.max_app_seq + 1;
    let mut arrivals = Vec::with_capacity(drafts.len());
    for (i, (at, birth, category, language)) in drafts.into_iter().enumerate() {
        let female = rng.random_bool(0.5);
        let mut serial = rng.random_range(0..10_000u32);
        let mut child = Iin::make_valid(birth, female, serial);
        let mut tries = 0;
        while used.contains(child.as_str()) && tries < 10_000 {
            serial = serial.wrapping_add(20) % 10_000;
            child = Iin::make_valid(birth, female, serial);
            tries += 1;
        }
        used.insert(child.as_str().to_string());
        let parent_birth = Date::new(
            rng.random_range(1975..=2000),
            rng.random_range(1..=12),
            rng.random_range(1..=28),
        )
        .unwrap_or(Date::constant(1990, 1, 1));
        let applicant = Iin::make_valid(
            parent_birth,
            rng.random_bool(0.7),
            rng.random_range(0..10_000),
        );
        let seq = base
            .checked_add(i as u32)
            .ok_or_else(|| SimError::Scenario {
                field: "arrivals".into(),
                message: "application numbers ran out".into(),
            })?;
        let app = AppNo {
            year: calendar::local_date(at).year() as u16,
            seq,
            n: 1,
        };
        arrivals.push(Arrival {
            at,
            app,
            category: category.clone(),
            input: RegisterInput {
                app: Some(app),
                child_iin: child.as_str().to_string(),
                birth_date: birth,
                applicant_iin: applicant.as_str().to_string(),
                child_name: None,
                applicant_name: None,
                category: Some(category),
                language: Some(language),
                email: None,
                phone: None,
                registered_at: Some(at),
            },
        });
    }
    Ok(Plan {
        arrivals,
        skipped_unborn,
        end,
    })
}

// ---------------------------------------------------------------------------------------
// One rule set over the horizon.

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Act {
    Arrival(usize),
    Publish(usize),
    Sample(u32),
    Recall(AppNo, u64),
    Extend(AppNo, u64),
    Enroll(AppNo, u64),
    Withdraw(AppNo),
}

#[derive(Debug, Default, Clone)]
struct AppSim {
    /// The scenario's category code.
    category: String,
    speed: u64,
    /// Indexed as (cohort, language, key, waiting, queued).
    indexed: Option<(i32, Language, OrderKey, bool, bool)>,
    referrals: u32,
    offers_priority: u32,
    offers_free: u32,
    first_referral_at: Option<Timestamp>,
    placed_at: Option<Timestamp>,
    in_horizon: bool,
}

type Lane = (i32, Language);

pub(crate) struct Outcome {
    pub category: String,
    pub cohort: i32,
    pub registered_at: Timestamp,
    /// When the referral that placed the child (used, or still held at the end) was issued.
    pub placed_at: Option<Timestamp>,
}

pub(crate) struct RunResult {
    pub report: RuleSetReport,
    pub outcomes: BTreeMap<AppNo, Outcome>,
    pub core: Core,
}

struct Sim<'a> {
    scenario: &'a Scenario,
    plan: &'a Plan,
    seed: u64,
    core: Core,
    actions: BTreeMap<(Timestamp, u64), Act>,
    next_seq: u64,
    apps: HashMap<AppNo, AppSim>,
    /// Waiting keys per cohort and language (for justified envy).
    waiting: HashMap<Lane, BTreeSet<OrderKey>>,
    /// Queued applications per cohort and language in free-access order.
    rush: HashMap<Lane, BTreeSet<(u64, AppNo)>>,
    /// Free-access publication -> the last (speed, app) asked.
    cursor: HashMap<u64, (u64, AppNo)>,
    /// Applications that became queued behind a free-access cursor: asked on the next pass.
    late: HashMap<Lane, Vec<(u64, AppNo)>>,
    declined: HashSet<(AppNo, u64)>,
    dirty: BTreeSet<Lane>,
    /// Publication id -> occurrence index in the calendar.
    pub_occurrence: HashMap<u64, usize>,
    referrals_in_horizon: HashSet<u64>,
    rep: RuleSetReport,
    reverse_alias: BTreeMap<String, String>,
}

impl<'a> Sim<'a> {
    fn schedule(&mut self, at: Timestamp, act: Act) {
        if at < self.plan.end {
            self.actions.insert((at, self.next_seq), act);
            self.next_seq += 1;
        }
    }

    fn state(&self) -> &State {
        &self.core.state
    }

    fn request(command: Command, reason: Option<&str>) -> Request {
        Request {
            command,
            actor: Actor::Operator("simulation".into()),
            reason: reason.map(str::to_string),
        }
    }

    fn scenario_category(&self, code: &str) -> String {
        self.reverse_alias
            .get(code)
            .cloned()
            .unwrap_or_else(|| code.to_string())
    }

    /// The simulation's record of an application (its free-access speed drawn once).
    fn app_sim(&mut self, id: AppNo) -> &mut AppSim {
        let seed = self.seed;
        self.apps.entry(id).or_insert_with(|| AppSim {
            speed: draws::raw(seed, id, Kind::Speed, 0),
            ..AppSim::default()
        })
    }

    /// Re-indexes one application after events changed it.
    fn sync(&mut self, id: AppNo) {
        let Some(a) = self.core.state.app(id) else {
            return;
        };
        let now = (
            a.cohort,
            a.language,
            a.key,
            a.status.is_waiting(),
            a.status == Status::Queued,
        );
        let category = a.category.clone();
        let reverse = self.reverse_alias.get(&category).cloned();
        let entry = self.app_sim(id);
        if entry.category.is_empty() {
            entry.category = reverse.unwrap_or(category);
        }
        let speed = entry.speed;
        let old = entry.indexed.replace(now);
        if old == Some(now) {
            return;
        }
        if let Some((c, l, key, waiting, queued)) = old {
            if waiting {
                if let Some(s) = self.waiting.get_mut(&(c, l)) {
                    s.remove(&key);
                }
            }
            if queued {
                if let Some(s) = self.rush.get_mut(&(c, l)) {
                    s.remove(&(speed, id));
                }
            }
        }
        let (c, l, key, waiting, queued) = now;
        if waiting {
            self.waiting.entry((c, l)).or_default().insert(key);
        }
        if queued {
            self.rush.entry((c, l)).or_default().insert((speed, id));
            // Behind the cursor of an open free-access publication: ask on the next pass.
            let behind = self.core.state.open_publications(c, l).iter().any(|p| {
                self.cursor
                    .get(&p.id)
                    .is_some_and(|cur| *cur >= (speed, id))
            });
            if behind {
                self.late.entry((c, l)).or_default().push((speed, id));
            }
        }
        self.dirty.insert((c, Language::Kk));
        self.dirty.insert((c, Language::Ru));
    }

    fn resync_all(&mut self) {
        let ids: Vec<AppNo> = self.core.state.data.apps.keys().copied().collect();
        for id in ids {
            self.sync(id);
        }
    }

    fn observe(&mut self, recs: &[EventRecord]) {
        for rec in recs {
            match &rec.event {
                Event::RulesActivated { .. } => self.resync_all(),
                Event::PlacesPublished {
                    publication,
                    cohort,
                    language,
                    places,
                    ..
                } => {
                    self.rep.places.published += u64::from(*places);
                    self.dirty.insert((*cohort, *language));
                    let _ = publication;
                }
                Event::PriorityPhaseEnded { publication } => {
                    if let Some(p) = self.core.state.data.publications.get(publication) {
                        let left = u64::from(p.places_left);
                        self.rep.places.unused_at_priority_end += left;
                        if let Some(i) = self.pub_occurrence.get(publication) {
                            if let Some(row) = self.rep.publications.get_mut(*i) {
                                row.unused_at_priority_end += left;
                            }
                        }
                        self.dirty.insert((p.cohort, p.language));
                    }
                }
                Event::ReferralIssued {
                    referral,
                    app,
                    phase,
                    ..
                } => {
                    self.rep.referrals.issued += 1;
                    self.referrals_in_horizon.insert(*referral);
                    // Justified envy: someone ahead in the same cohort and language still waits.
                    if let Some(a) = self.core.state.app(*app) {
                        let lane = (a.cohort, a.language);
                        let key = a.key;
                        let envy = self
                            .waiting
                            .get(&lane)
                            .and_then(|s| s.iter().find(|k| **k != key).copied())
                            .is_some_and(|first| first < key);
                        if envy {
                            match phase {
                                Phase::Priority => self.rep.justified_envy.priority += 1,
                                Phase::FreeAccess => self.rep.justified_envy.free_access += 1,
                            }
                        }
                    }
                    let k = {
                        let s = self.app_sim(*app);
                        if s.first_referral_at.is_none() {
                            s.first_referral_at = Some(rec.at);
                        }
                        let k = s.referrals;
                        s.referrals += 1;
                        k
                    };
                    self.plan_referral(*app, *referral, k, rec.at);
                }
                Event::ReferralExtended { .. } => self.rep.referrals.extended += 1,
                Event::ReferralRecalled { .. } => self.rep.referrals.recalled += 1,
                Event::ReferralExpired { .. } => self.rep.referrals.expired += 1,
                Event::Enrolled { referral, app } => {
                    self.rep.referrals.enrolled += 1;
                    if self.referrals_in_horizon.contains(referral) {
                        let issued = self
                            .core
                            .state
                            .data
                            .referrals
                            .get(referral)
                            .map(|r| r.issued_at);
                        self.app_sim(*app).placed_at = issued;
                    }
                }
                Event::Withdrawn { .. } => self.rep.withdrawn += 1,
                _ => {}
            }
            if let Some(app) = rec.event.app() {
                self.sync(app);
            }
        }
    }

    /// Decides what the parent does with the k-th referral, issued at `at`.
    fn plan_referral(&mut self, app: AppNo, referral: u64, k: u32, at: Timestamp) {
        let Some(r) = self.core.state.data.referrals.get(&referral) else {
            return;
        };
        let (recall_until, valid_until) = (r.recall_until, r.valid_until);
        let b = &self.scenario.behaviour;
        let u = draws::uniform(self.seed, app, Kind::Outcome, k);
        let f = 0.05 + 0.9 * draws::uniform(self.seed, app, Kind::Timing, k);
        let between = |from: Timestamp, to: Timestamp| {
            let span = (to.as_second() - from.as_second()).max(0) as f64;
            Timestamp::from_second(from.as_second() + (span * f) as i64).unwrap_or(from)
        };
        let at = at.max(self.core.state.data.last_at);
        if u < b.recall {
            if recall_until > at {
                self.schedule(between(at, recall_until), Act::Recall(app, referral));
            } else {
                // The parent wanted to give it back but the window is closed: it expires.
                self.rep.referrals.recall_refused += 1;
            }
        } else if u < b.recall + b.extend {
            self.schedule(between(at, valid_until), Act::Extend(app, referral));
        } else if u < b.recall + b.extend + b.expire {
            // Let expire: the engine's timer does it.
        } else {
            self.schedule(between(at, valid_until), Act::Enroll(app, referral));
        }
    }

    fn active_referral(&self, app: AppNo, referral: u64) -> bool {
        self.core.state.app(app).is_some_and(|a| {
            a.referral == Some(referral)
                && self
                    .core
                    .state
                    .data
                    .referrals
                    .get(&referral)
                    .is_some_and(|r| r.state == ReferralState::Active)
        })
    }

    fn exec(
        &mut self,
        command: Command,
        reason: Option<&str>,
        at: Timestamp,
    ) -> Result<Option<Vec<EventRecord>>, SimError> {
        let req = Self::request(command, reason);
        match self.core.execute(&req, at) {
            Ok(recs) => {
                self.observe(&recs);
                Ok(Some(recs))
            }
            Err(e) if e.kind == kezek_engine::ErrorKind::Internal => Err(e.into()),
            Err(e) => {
                *self.rep.refusals.entry(e.code.to_string()).or_default() += 1;
                Ok(None)
            }
        }
    }

    fn perform(&mut self, act: Act, at: Timestamp) -> Result<(), SimError> {
        match act {
            Act::Arrival(i) => {
                let arrival = &self.plan.arrivals[i];
                let mut input = arrival.input.clone();
                let category = arrival.category.clone();
                let app = arrival.app;
                if let Some(to) = self.scenario.category_aliases.get(&category) {
                    let known = self
                        .core
                        .state
                        .rules()
                        .is_some_and(|r| r.category_rank(&category).is_some());
                    if !known {
                        input.category = Some(to.clone());
                    }
                }
                self.app_sim(app).category = category;
                self.app_sim(app).in_horizon = true;
                if self
                    .exec(Command::Register(Box::new(input)), None, at)?
                    .is_some()
                {
                    self.rep.arrivals.registered += 1;
                    self.plan_withdrawal(app, at);
                } else {
                    self.rep.arrivals.refused += 1;
                }
            }
            Act::Publish(i) => self.publish(i, at)?,
            Act::Sample(week) => self.sample(week, at),
            Act::Recall(app, referral) => {
                if self.active_referral(app, referral)
                    && self
                        .exec(Command::Recall { app }, Some("simulated recall"), at)?
                        .is_none()
                {
                    self.rep.referrals.recall_refused += 1;
                }
            }
            Act::Extend(app, referral) => {
                if self.active_referral(app, referral) {
                    let k = self
                        .apps
                        .get(&app)
                        .map_or(0, |s| s.referrals.saturating_sub(1));
                    if self.exec(Command::Extend { app }, None, at)?.is_some() {
                        let b = &self.scenario.behaviour;
                        if draws::uniform(self.seed, app, Kind::AfterExtend, k)
                            < b.enroll_after_extend
                        {
                            let valid = self.core.state.data.referrals[&referral].valid_until;
                            let f = 0.05
                                + 0.9 * draws::uniform(self.seed, app, Kind::TimingAfterExtend, k);
                            let span = (valid.as_second() - at.as_second()).max(0) as f64;
                            let when = Timestamp::from_second(at.as_second() + (span * f) as i64)
                                .unwrap_or(at);
                            self.schedule(when, Act::Enroll(app, referral));
                        }
                    } else {
                        // Refused (no extension allowed): the referral runs out.
                        self.rep.referrals.extension_refused += 1;
                    }
                }
            }
            Act::Enroll(app, referral) => {
                if self.active_referral(app, referral) {
                    self.exec(Command::Enroll { app }, None, at)?;
                }
            }
            Act::Withdraw(app) => {
                if self
                    .core
                    .state
                    .app(app)
                    .is_some_and(|a| a.status.is_waiting())
                {
                    self.exec(Command::Withdraw { app }, Some("simulated withdrawal"), at)?;
                }
            }
        }
        Ok(())
    }

    fn plan_withdrawal(&mut self, app: AppNo, from: Timestamp) {
        let h = self.scenario.behaviour.withdraw_per_month;
        if h <= 0.0 {
            return;
        }
        let u = draws::uniform(self.seed, app, Kind::Withdraw, 0);
        let months = -(1.0 - u).ln() / h;
        let secs = months * MONTH_SECONDS;
        if secs.is_finite() && secs < (self.plan.end.as_second() - from.as_second()) as f64 {
            if let Ok(t) = Timestamp::from_second(from.as_second() + secs as i64) {
                self.schedule(t, Act::Withdraw(app));
            }
        }
    }

    fn sample(&mut self, week: u32, at: Timestamp) {
        let mut by_cohort = BTreeMap::new();
        let mut total = 0u64;
        for c in self.core.state.cohorts() {
            let n = self.core.state.queue(c).map_or(0, |q| q.len() as u64);
            total += n;
            by_cohort.insert(c, n);
        }
        self.rep.queue.push(report::QueueSample {
            week,
            date: calendar::local_date(at).to_string(),
            total,
            by_cohort,
        });
    }

    /// Publishes an occurrence of the calendar over the groups of its cohort and language
    /// that can still publish places, in kindergarten order.
    fn publish(&mut self, i: usize, at: Timestamp) -> Result<(), SimError> {
        let occ: Occurrence = self.scenario.publications[i].clone();
        let row = self.rep.publications.len();
        self.rep.publications.push(report::PublicationRow {
            date: occ.date.to_string(),
            cohort: occ.cohort,
            language: occ.language.code().to_string(),
            requested: u64::from(occ.places),
            published: 0,
            refused: None,
            unused_at_priority_end: 0,
        });
        self.rep.places.requested += u64::from(occ.places);
        let groups: Vec<(String, u32)> = self
            .core
            .state
            .data
            .kindergartens
            .values()
            .filter_map(|kg| {
                kg.group(occ.cohort, occ.language)
                    .map(|g| (kg.id.clone(), g.capacity - g.published))
            })
            .filter(|(_, free)| *free > 0)
            .collect();
        let mut left = occ.places;
        for (kg, free) in groups {
            if left == 0 {
                break;
            }
            let places = free.min(left);
            let req = Self::request(
                Command::Publish {
                    kindergarten: kg,
                    cohort: occ.cohort,
                    language: occ.language,
                    places,
                },
                None,
            );
            match self.core.execute(&req, at) {
                Ok(recs) => {
                    for r in &recs {
                        if let Event::PlacesPublished { publication, .. } = r.event {
                            self.pub_occurrence.insert(publication, row);
                        }
                    }
                    self.observe(&recs);
                    left -= places;
                    self.rep.publications[row].published += u64::from(places);
                }
                Err(e) if e.kind == kezek_engine::ErrorKind::Internal => return Err(e.into()),
                Err(e) => {
                    self.rep.publications[row].refused = Some(e.code.to_string());
                    *self.rep.refusals.entry(e.code.to_string()).or_default() += 1;
                    break;
                }
            }
        }
        if left > 0 {
            if e_is_blackout(&self.rep.publications[row].refused) {
                self.rep.places.refused_blackout += u64::from(left);
            } else {
                self.rep.places.not_publishable += u64::from(left);
                if self.rep.publications[row].refused.is_none() {
                    self.rep.publications[row].refused = Some("no_capacity".into());
                }
            }
        }
        Ok(())
    }

    /// Parents take the open places of the dirty lanes.
    fn allocate(&mut self, at: Timestamp) -> Result<(), SimError> {
        while let Some(lane) = self.dirty.pop_first() {
            self.allocate_priority(lane, at)?;
            self.allocate_free(lane, at)?;
        }
        Ok(())
    }

    fn open_pubs(&self, lane: Lane, phase: Phase) -> Vec<u64> {
        self.core
            .state
            .open_publications(lane.0, lane.1)
            .into_iter()
            .filter(|p| p.phase == phase && p.places_left > 0)
            .map(|p| p.id)
            .collect()
    }

    fn allocate_priority(&mut self, lane: Lane, at: Timestamp) -> Result<(), SimError> {
        if self.open_pubs(lane, Phase::Priority).is_empty() {
            return Ok(());
        }
        if self.core.state.queue(lane.0).is_none() {
            return Ok(());
        }
        // Positions 1.. of the whole cohort; a chunk is copied, takes only remove keys.
        let mut from = 0usize;
        const CHUNK: usize = 512;
        'scan: while let Some(q) = self.core.state.queue(lane.0) {
            let keys = q.page(from, CHUNK);
            if keys.is_empty() {
                break;
            }
            let mut taken = 0usize;
            for key in &keys {
                let Some(a) = self.core.state.app(key.app) else {
                    continue;
                };
                if a.language != lane.1 || a.status != Status::Queued {
                    continue;
                }
                if a.locked_until.is_some_and(|t| t > at) {
                    continue;
                }
                loop {
                    let pubs = self.open_pubs(lane, Phase::Priority);
                    if pubs.is_empty() {
                        break 'scan;
                    }
                    let Some(pid) = pubs
                        .into_iter()
                        .find(|p| !self.declined.contains(&(key.app, *p)))
                    else {
                        break;
                    };
                    let check = {
                        let s = &self.core.state;
                        match (s.app(key.app), s.data.publications.get(&pid)) {
                            (Some(a), Some(p)) => self.core.may_take(a, p, at),
                            _ => break,
                        }
                    };
                    match check {
                        Ok(()) => {}
                        Err(e) if e.code == "not_eligible" => break 'scan,
                        Err(_) => break,
                    }
                    let s = self.app_sim(key.app);
                    let k = s.offers_priority;
                    s.offers_priority += 1;
                    if draws::uniform(self.seed, key.app, Kind::TakePriority, k)
                        < self.scenario.behaviour.take_in_priority
                    {
                        if self
                            .exec(
                                Command::Take {
                                    app: key.app,
                                    publication: pid,
                                },
                                None,
                                at,
                            )?
                            .is_some()
                        {
                            taken += 1;
                        } else {
                            self.rep.referrals.take_refused += 1;
                        }
                        break;
                    }
                    self.declined.insert((key.app, pid));
                }
            }
            // Takers left the queue: the next chunk starts that many positions earlier.
            from = from + keys.len() - taken;
        }
        Ok(())
    }

    fn allocate_free(&mut self, lane: Lane, at: Timestamp) -> Result<(), SimError> {
        let pubs = self.open_pubs(lane, Phase::FreeAccess);
        if pubs.is_empty() {
            self.late.remove(&lane);
            return Ok(());
        }
        let late = self.late.remove(&lane).unwrap_or_default();
        for pid in pubs {
            // Latecomers first: they came while the places were open.
            let cursor = self.cursor.get(&pid).copied();
            for entry in &late {
                if cursor.is_some_and(|c| *entry <= c) && !self.offer_free(entry.1, pid, at)? {
                    continue;
                }
                if self.places_left(pid) == 0 {
                    break;
                }
            }
            // Then the rush, from where this publication's last pass stopped.
            loop {
                if self.places_left(pid) == 0 {
                    break;
                }
                let start = self.cursor.get(&pid).copied();
                let next: Vec<(u64, AppNo)> = match self.rush.get(&lane) {
                    Some(set) => match start {
                        Some(c) => set
                            .range((std::ops::Bound::Excluded(c), std::ops::Bound::Unbounded))
                            .take(64)
                            .copied()
                            .collect(),
                        None => set.iter().take(64).copied().collect(),
                    },
                    None => Vec::new(),
                };
                if next.is_empty() {
                    break;
                }
                for entry in next {
                    self.cursor.insert(pid, entry);
                    self.offer_free(entry.1, pid, at)?;
                    if self.places_left(pid) == 0 {
                        break;
                    }
                }
            }
        }
        Ok(())
    }

    fn places_left(&self, pid: u64) -> u32 {
        self.core
            .state
            .data
            .publications
            .get(&pid)
            .map_or(0, |p| p.places_left)
    }

    /// Offers a free-access place of `pid` to `app`; true if taken.
    fn offer_free(&mut self, app: AppNo, pid: u64, at: Timestamp) -> Result<bool, SimError> {
        if self.declined.contains(&(app, pid)) {
            return Ok(false);
        }
        let ok = {
            let s = &self.core.state;
            match (s.app(app), s.data.publications.get(&pid)) {
                (Some(a), Some(p)) => self.core.may_take(a, p, at).is_ok(),
                _ => false,
            }
        };
        if !ok {
            return Ok(false);
        }
        let s = self.app_sim(app);
        let k = s.offers_free;
        s.offers_free += 1;
        if draws::uniform(self.seed, app, Kind::TakeFree, k)
            < self.scenario.behaviour.take_in_free_access
        {
            if self
                .exec(
                    Command::Take {
                        app,
                        publication: pid,
                    },
                    None,
                    at,
                )?
                .is_some()
            {
                return Ok(true);
            }
            self.rep.referrals.take_refused += 1;
            return Ok(false);
        }
        self.declined.insert((app, pid));
        Ok(false)
    }
}

fn e_is_blackout(refused: &Option<String>) -> bool {
    refused.as_deref() == Some("blackout")
}

/// The start data translated for a rule set: category codes it does not know are mapped
/// through the scenario's aliases. Errors name the category no alias covers.
fn translate(
    data: &Data,
    rules: &RuleSet,
    scenario: &Scenario,
    label: &str,
) -> Result<(Data, BTreeMap<String, String>), SimError> {
    let mut data = data.clone();
    let mut reverse = BTreeMap::new();
    let mut missing: BTreeMap<String, u64> = BTreeMap::new();
    for a in data.apps.values_mut() {
        if rules.category_rank(&a.category).is_some() {
            continue;
        }
        match scenario.category_aliases.get(&a.category) {
            Some(to) if rules.category_rank(to).is_some() => {
                reverse.insert(to.clone(), a.category.clone());
                a.category = to.clone();
            }
            _ => *missing.entry(a.category.clone()).or_default() += 1,
        }
    }
    if let Some((c, n)) = missing.iter().next() {
        return Err(SimError::Rules {
            label: label.to_string(),
            message: format!(
                "category '{c}' of {n} application(s) of the start state is not defined; map it in [category_aliases]"
            ),
        });
    }
    for (from, to) in &scenario.category_aliases {
        if rules.category_rank(from).is_none() && rules.category_rank(to).is_some() {
            reverse.insert(to.clone(), from.clone());
        }
    }
    Ok((data, reverse))
}

pub(crate) fn run_rule_set(
    scenario: &Scenario,
    start: &StartState,
    plan: &Plan,
    rules: Option<&RuleInput>,
    seed: u64,
    control: &Control<'_>,
) -> Result<RunResult, SimError> {
    RuleSet::with_stack(|| run_rule_set_inner(scenario, start, plan, rules, seed, control))
}

fn run_rule_set_inner(
    scenario: &Scenario,
    start: &StartState,
    plan: &Plan,
    rules: Option<&RuleInput>,
    seed: u64,
    control: &Control<'_>,
) -> Result<RunResult, SimError> {
    let active = start
        .data
        .rules_versions
        .last()
        .map(|v| v.files.clone())
        .unwrap_or_default();
    let (label, files) = match rules {
        Some(r) => (r.label.clone(), r.files.clone()),
        None => ("active".to_string(), active),
    };
    let compiled = RuleSet::compile(&files).map_err(|e| SimError::Rules {
        label: label.clone(),
        message: e.to_string(),
    })?;
    for rate in match &scenario.arrivals {
        Arrivals::Rates(r) => r.as_slice(),
        Arrivals::FromHistory => &[],
    } {
        let known = compiled.category_rank(&rate.category).is_some()
            || scenario
                .category_aliases
                .get(&rate.category)
                .is_some_and(|to| compiled.category_rank(to).is_some());
        if !known {
            return Err(SimError::Rules {
                label,
                message: format!(
                    "the arrivals' category '{}' is not defined; map it in [category_aliases]",
                    rate.category
                ),
            });
        }
    }
    let (data, reverse_alias) = translate(&start.data, &compiled, scenario, &label)?;
    let state = State::from_data(data)?;
    let mut core = Core::new(state);
    core.advance(start.at)?;
    let same = core
        .state
        .data
        .rules_versions
        .last()
        .is_some_and(|v| v.hash == compiled.hash());
    let mut sim = Sim {
        scenario,
        plan,
        seed,
        core,
        actions: BTreeMap::new(),
        next_seq: 0,
        apps: HashMap::new(),
        waiting: HashMap::new(),
        rush: HashMap::new(),
        cursor: HashMap::new(),
        late: HashMap::new(),
        declined: HashSet::new(),
        dirty: BTreeSet::new(),
        pub_occurrence: HashMap::new(),
        referrals_in_horizon: HashSet::new(),
        rep: RuleSetReport::new(&label, &compiled.hash()),
        reverse_alias,
    };
    sim.resync_all();
    if !same {
        // The candidate goes live at the start, as `kezek rules activate` would: every
        // queue is re-ranked by the engine.
        sim.exec(
            Command::ActivateRules { files },
            Some("simulation: rule set under test"),
            start.at,
        )?
        .ok_or_else(|| SimError::Rules {
            label: label.clone(),
            message: "the engine refused to activate this rule set on the start state".into(),
        })?;
        sim.rep.activated = true;
    }
    // Referrals already held at the start: their parents decide too.
    let held: Vec<(AppNo, u64, Timestamp)> = sim
        .core
        .state
        .data
        .referrals
        .values()
        .filter(|r| r.state == ReferralState::Active)
        .map(|r| (r.app, r.id, r.issued_at))
        .collect();
    for (app, referral, _) in held {
        let k = {
            let s = sim.app_sim(app);
            let k = s.referrals;
            s.referrals += 1;
            k
        };
        sim.plan_referral(app, referral, k, start.at);
    }
    let waiting_at_start: Vec<AppNo> = sim
        .core
        .state
        .data
        .apps
        .values()
        .filter(|a| a.status.is_waiting())
        .map(|a| a.id)
        .collect();
    sim.rep.start.waiting = waiting_at_start.len() as u64;
    for app in &waiting_at_start {
        sim.app_sim(*app).in_horizon = true;
        sim.plan_withdrawal(*app, start.at);
    }
    for (i, a) in plan.arrivals.iter().enumerate() {
        sim.schedule(a.at, Act::Arrival(i));
    }
    sim.rep.arrivals.drawn = plan.arrivals.len() as u64;
    sim.rep.arrivals.skipped_unborn = plan.skipped_unborn;
    for (i, o) in scenario.publications.iter().enumerate() {
        let at = calendar::instant(o.date, o.time);
        if at >= start.at {
            sim.schedule(at, Act::Publish(i));
        }
    }
    let mut week = 0u32;
    loop {
        let t = calendar::add_days(start.at, 7 * i64::from(week));
        if t >= plan.end {
            break;
        }
        sim.schedule(t, Act::Sample(week));
        week += 1;
    }
    // Every lane with open places at the start is looked at once.
    for (c, l) in sim
        .core
        .state
        .data
        .publications
        .values()
        .filter(|p| p.places_left > 0)
        .map(|p| (p.cohort, p.language))
        .collect::<Vec<_>>()
    {
        sim.dirty.insert((c, l));
    }
    sim.allocate(start.at)?;

    let mut steps = 0u64;
    let mut last_day = start.at;
    loop {
        steps += 1;
        if steps.is_multiple_of(512) {
            control.check()?;
        }
        let next_act = sim.actions.first_key_value().map(|((t, _), _)| *t);
        let next_timer = sim.state().next_timer().map(|(t, _)| t);
        let t = match (next_act, next_timer) {
            (Some(a), Some(b)) => a.min(b),
            (Some(a), None) => a,
            (None, Some(b)) => b,
            (None, None) => break,
        };
        if t >= plan.end {
            break;
        }
        let t = t.max(sim.state().data.last_at);
        let recs = sim.core.advance(t)?;
        sim.observe(&recs);
        while let Some(entry) = sim.actions.first_entry() {
            if entry.key().0 > t {
                break;
            }
            let act = entry.remove();
            sim.perform(act, t)?;
        }
        sim.allocate(t)?;
        let days = (t.as_second() - last_day.as_second()) / 86_400;
        if days > 0 {
            control.days_done(days as u64);
            last_day = calendar::add_days(last_day, days);
        }
    }
    let total_days = (plan.end.as_second() - start.at.as_second()) / 86_400;
    let done = (last_day.as_second() - start.at.as_second()) / 86_400;
    control.days_done((total_days - done).max(0) as u64);
    sim.sample(week, plan.end);

    // The end: accounting and outcomes.
    let mut outcomes = BTreeMap::new();
    let state = &sim.core.state;
    let mut waits: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for a in state.data.apps.values() {
        let Some(s) = sim.apps.get(&a.id) else {
            continue;
        };
        if !s.in_horizon {
            continue;
        }
        let category = if s.category.is_empty() {
            sim.scenario_category(&a.category)
        } else {
            s.category.clone()
        };
        let arrived = a.registered_at >= start.at && a.id.seq > start.data.max_app_seq;
        let bucket = if arrived {
            &mut sim.rep.arrivals.end
        } else {
            &mut sim.rep.start.end
        };
        match a.status {
            Status::Queued | Status::StopListed => bucket.waiting += 1,
            Status::ReferralIssued => bucket.holding_referral += 1,
            Status::Enrolled => bucket.enrolled += 1,
            Status::Withdrawn => bucket.withdrawn += 1,
        }
        // The referral that placed the child: used, or still held at the end.
        let placed_at = match a.status {
            Status::ReferralIssued => a
                .referral
                .filter(|r| sim.referrals_in_horizon.contains(r))
                .and_then(|r| state.data.referrals.get(&r))
                .map(|r| r.issued_at),
            Status::Enrolled => s.placed_at,
            _ => None,
        };
        if placed_at.is_some() {
            *sim.rep
                .placed
                .entry(category.clone())
                .or_default()
                .entry(a.cohort)
                .or_default() += 1;
            sim.rep.placed_total += 1;
        }
        if let Some(first) = s.first_referral_at {
            waits
                .entry(category.clone())
                .or_default()
                .push(first.as_second() - a.registered_at.as_second());
        }
        outcomes.insert(
            a.id,
            Outcome {
                category,
                cohort: a.cohort,
                registered_at: a.registered_at,
                placed_at,
            },
        );
    }
    for (c, mut w) in waits {
        w.sort_unstable();
        sim.rep
            .waiting_days
            .insert(c, report::Spread::of_seconds(&w));
    }
    sim.rep.justified_envy.total =
        sim.rep.justified_envy.priority + sim.rep.justified_envy.free_access;
    Ok(RunResult {
        report: sim.rep,
        outcomes,
        core: sim.core,
    })
}

/// Runs the baseline and the candidate on the same plan; compares them.
pub(crate) fn simulate_pair(
    scenario: &Scenario,
    start: &StartState,
    baseline: Option<&RuleInput>,
    candidate: Option<&RuleInput>,
    seed: u64,
    control: &Control<'_>,
) -> Result<(Report, Vec<Core>), SimError> {
    let plan = make_plan(scenario, start, seed)?;
    // The two rule sets are independent given the plan: one core each.
    let (base, cand) = rayon::join(
        || run_rule_set(scenario, start, &plan, baseline, seed, control),
        || candidate.map(|c| run_rule_set(scenario, start, &plan, Some(c), seed, control)),
    );
    let base = base?;
    let mut cores = Vec::new();
    let (candidate_report, comparison) = match cand {
        Some(cand) => {
            let cand = cand?;
            let cmp = Comparison::of(&base.outcomes, &cand.outcomes);
            cores.push(cand.core);
            (Some(cand.report), Some(cmp))
        }
        None => (None, None),
    };
    cores.insert(0, base.core);
    let report = Report {
        scenario: report::ScenarioSummary {
            seed,
            horizon_months: scenario.horizon_months,
            start: start.source.clone(),
            start_at: start.at.to_string(),
            end_at: plan.end.to_string(),
            behaviour: scenario.behaviour.clone(),
        },
        baseline: base.report,
        candidate: candidate_report,
        comparison,
    };
    Ok((report, cores))
}

/// For tests: one seed, with the final engine cores (baseline first).
pub fn simulate_with_cores(
    scenario: &Scenario,
    start: &StartState,
    baseline: Option<&RuleInput>,
    candidate: Option<&RuleInput>,
    seed: u64,
) -> Result<(Report, Vec<Core>), SimError> {
    simulate_pair(
        scenario,
        start,
        baseline,
        candidate,
        seed,
        &Control::default(),
    )
}
