//! The demo city: an Almaty-sized queue built deterministically from a seed, through the
//! same commands as real data (groups added, the journal imported, places published,
//! referrals taken).

use std::collections::BTreeMap;

use jiff::civil::{date, Date, Time};
use jiff::Timestamp;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::calendar;
use crate::command::{Command, Core, RegisterInput, Request};
use crate::error::{EngineError, Result};
use crate::event::{Actor, GroupRow};
use crate::iin::Iin;
use crate::model::{AppNo, Language};
use crate::state::State;
use crate::store::Store;

/// Where the demo city is built: a durable [`Store`], or an in-memory [`Core`] (the
/// simulation's start state). Both run the same commands.
pub trait Target {
    fn state(&self) -> &State;
    /// Due transitions first, then the command (as [`Store::execute`]).
    fn execute(&mut self, req: &Request, now: Timestamp) -> Result<Vec<crate::event::EventRecord>>;
    fn import_applications(
        &mut self,
        rows: &[(usize, RegisterInput)],
        actor: &Actor,
        now: Timestamp,
    ) -> Result<usize>;
    fn checkpoint(&mut self) -> Result<()>;
}

impl Target for Store {
    fn state(&self) -> &State {
        Store::state(self)
    }
    fn execute(&mut self, req: &Request, now: Timestamp) -> Result<Vec<crate::event::EventRecord>> {
        Store::execute(self, req, now)
    }
    fn import_applications(
        &mut self,
        rows: &[(usize, RegisterInput)],
        actor: &Actor,
        now: Timestamp,
    ) -> Result<usize> {
        Store::import_applications(self, rows, actor, now)
    }
    fn checkpoint(&mut self) -> Result<()> {
        Store::checkpoint(self)
    }
}

impl Target for Core {
    fn state(&self) -> &State {
        &self.state
    }
    fn execute(&mut self, req: &Request, now: Timestamp) -> Result<Vec<crate::event::EventRecord>> {
        let mut recs = self.advance(now)?;
        recs.extend(Core::execute(self, req, now)?);
        Ok(recs)
    }
    fn import_applications(
        &mut self,
        rows: &[(usize, RegisterInput)],
        actor: &Actor,
        now: Timestamp,
    ) -> Result<usize> {
        self.advance(now)?;
        Ok(Core::import_applications(self, rows, actor, now)?.len())
    }
    fn checkpoint(&mut self) -> Result<()> {
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    /// About 49,000 waiting, 800 kindergartens, 65,000 places (Almaty, domain.md §8).
    City,
    /// About 2,000 waiting and 40 kindergartens, for quick tries and tests.
    Small,
}

/// The demo city's registrations end here; the store's clock must not be earlier.
pub fn anchor() -> Timestamp {
    calendar::instant(date(2026, 12, 1), Time::midnight())
}

const DISTRICTS: [&str; 8] = [
    "Алатауский",
    "Алмалинский",
    "Ауэзовский",
    "Бостандыкский",
    "Жетысуский",
    "Медеуский",
    "Наурызбайский",
    "Турксибский",
];
/// Category shares per 1,000 applications (ours: no city publishes them together).
const CATEGORY_SHARES: [(&str, u32); 7] = [
    ("military", 15),
    ("special_bodies", 10),
    ("disability", 30),
    ("large_family", 100),
    ("orphan", 5),
    ("teacher", 30),
    ("general", 810),
];
const SURNAMES: [&str; 12] = [
    "Ахметов",
    "Сериков",
    "Нурланов",
    "Иванов",
    "Касымов",
    "Омаров",
    "Жумабаев",
    "Ким",
    "Абенов",
    "Сапаров",
    "Петров",
    "Тулегенов",
];
const GIVEN: [&str; 12] = [
    "Алихан",
    "Айша",
    "Нурсултан",
    "Амина",
    "Данияр",
    "Медина",
    "Арсен",
    "Томирис",
    "Санжар",
    "Алия",
    "Тимур",
    "Асель",
];

#[derive(Debug, Clone, Serialize)]
pub struct DemoSummary {
    pub seed: u64,
    pub kindergartens: usize,
    pub groups: usize,
    pub capacity: u64,
    pub applications: usize,
    pub waiting_by_cohort: BTreeMap<i32, u64>,
    pub by_category: BTreeMap<String, u64>,
    pub publications: Vec<u64>,
    pub places_published: u64,
    pub referrals: usize,
    pub samples: Vec<String>,
}

fn pick_category(rng: &mut ChaCha8Rng, known: &dyn Fn(&str) -> bool) -> String {
    let mut x = rng.random_range(0..1000u32);
    for (code, share) in CATEGORY_SHARES {
        if x < share {
            return if known(code) {
                code.to_string()
            } else {
                "general".to_string()
            };
        }
        x -= share;
    }
    "general".into()
}

fn random_instant(rng: &mut ChaCha8Rng, from: Timestamp, to: Timestamp) -> Timestamp {
    let (a, b) = (from.as_second(), to.as_second());
    if b <= a {
        return from;
    }
    Timestamp::from_second(rng.random_range(a..b)).unwrap_or(from)
}

/// Builds the demo city into an empty store (or in-memory core) at `now`.
pub fn build<T: Target>(
    store: &mut T,
    seed: u64,
    scale: Scale,
    now: Timestamp,
) -> Result<DemoSummary> {
    if !store.state().data.apps.is_empty() || !store.state().data.kindergartens.is_empty() {
        return Err(EngineError::refused(
            "store_not_empty",
            "the demo city is built only into an empty store",
        ));
    }
    if now < anchor() {
        return Err(EngineError::refused(
            "clock_too_early",
            format!(
                "the demo city is dated up to {}; the store's clock is at {now}",
                anchor()
            ),
        ));
    }
    let (n_kg, n_apps) = match scale {
        Scale::City => (800usize, 49_000usize),
        Scale::Small => (40, 2_000),
    };
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let cohorts: Vec<i32> = (2020..=2025).collect();
    let actor = Actor::Operator("demo".into());

    // Kindergartens: about a quarter state ("ГККП"), the rest private partners.
    let mut groups = Vec::new();
    for k in 0..n_kg {
        let id = format!("DDO-{:04}", k + 1);
        let name = if k % 4 == 0 {
            format!("ГККП «Ясли-сад № {}»", k / 4 + 1)
        } else {
            format!("ТОО «Балапан-{}»", k + 1)
        };
        let district = DISTRICTS[rng.random_range(0..DISTRICTS.len())].to_string();
        let n_groups = rng.random_range(3..=5usize);
        let first = rng.random_range(0..=cohorts.len() - n_groups.min(cohorts.len()));
        for c in &cohorts[first..(first + n_groups).min(cohorts.len())] {
            let language = if rng.random_bool(0.62) {
                Language::Kk
            } else {
                Language::Ru
            };
            groups.push(GroupRow {
                kindergarten: id.clone(),
                name: name.clone(),
                district: district.clone(),
                cohort: *c,
                language,
                capacity: rng.random_range(14..=26),
            });
        }
    }
    // A kindergarten may have drawn the same cohort and language twice: merge them.
    let mut merged: BTreeMap<(String, i32, Language), GroupRow> = BTreeMap::new();
    for g in groups {
        merged
            .entry((g.kindergarten.clone(), g.cohort, g.language))
            .and_modify(|m| {
                m.capacity = (m.capacity + g.capacity).min(crate::command::MAX_GROUP_CAPACITY)
            })
            .or_insert(g);
    }
    let groups: Vec<GroupRow> = merged.into_values().collect();
    let capacity: u64 = groups.iter().map(|g| g.capacity as u64).sum();
    store.execute(
        &Request {
            command: Command::AddGroups {
                groups: groups.clone(),
            },
            actor: actor.clone(),
            reason: Some("demo city".into()),
        },
        now,
    )?;

    // Applications, registered between birth and the anchor, numbered in time order.
    let rules = store
        .state()
        .rules()
        .cloned()
        .ok_or_else(|| EngineError::refused("no_rules", "no rules"))?;
    let known = |c: &str| rules.category_rank(c).is_some();
    let end = anchor();
    let mut drafts = Vec::with_capacity(n_apps);
    for i in 0..n_apps {
        let cohort = cohorts[rng.random_range(0..cohorts.len())];
        let day_of_year = rng.random_range(0..365);
        let birth_date = date(cohort as i16, 1, 1)
            .checked_add(jiff::Span::new().days(day_of_year))
            .unwrap_or(date(cohort as i16, 6, 1));
        let birth = calendar::instant(birth_date, Time::midnight());
        let from = calendar::add_days(birth, 20);
        let to = calendar::add_days(birth, 3 * 365).min(end);
        let registered_at = random_instant(&mut rng, from, to.max(from));
        let female = rng.random_bool(0.5);
        let child = Iin::make_valid(birth_date, female, (i as u32) % 10_000);
        let parent_birth: Date = date(
            rng.random_range(1978..=2001),
            rng.random_range(1..=12),
            rng.random_range(1..=28),
        );
        let applicant = Iin::make_valid(
            parent_birth,
            rng.random_bool(0.7),
            rng.random_range(0..10_000),
        );
        let surname = SURNAMES[rng.random_range(0..SURNAMES.len())];
        let category = pick_category(&mut rng, &known);
        let language = if rng.random_bool(0.62) {
            Language::Kk
        } else {
            Language::Ru
        };
        drafts.push((
            registered_at,
            RegisterInput {
                app: None,
                child_iin: child.to_string(),
                birth_date,
                applicant_iin: applicant.to_string(),
                child_name: Some(format!(
                    "{surname} {}",
                    GIVEN[rng.random_range(0..GIVEN.len())]
                )),
                applicant_name: Some(format!(
                    "{surname} {}",
                    GIVEN[rng.random_range(0..GIVEN.len())]
                )),
                category: Some(category),
                language: Some(language),
                email: Some(format!("parent{}@example.kz", i + 1)),
                phone: Some(format!("+7 701 {:03} {:04}", i / 10_000, i % 10_000)),
                registered_at: Some(registered_at),
            },
        ));
    }
    // Child IINs can collide (same birth date and serial): keep the first of each.
    let mut seen = std::collections::HashSet::new();
    drafts.retain(|(_, d)| seen.insert(d.child_iin.clone()));
    drafts.sort_by_key(|(t, _)| *t);
    let rows: Vec<(usize, RegisterInput)> = drafts
        .into_iter()
        .enumerate()
        .map(|(i, (t, mut d))| {
            d.app = Some(AppNo {
                year: calendar::local_date(t).year() as u16,
                seq: 400_000 + i as u32,
                n: 1,
            });
            (i + 1, d)
        })
        .collect();
    let applications = store.import_applications(&rows, &actor, now)?;

    // A publication round, unless the rules forbid publishing today (the August blackout).
    let mut publications = Vec::new();
    let mut places_published = 0u64;
    let mut referrals = 0usize;
    let allowed = rules
        .publication_allowed(calendar::local_date(now))
        .unwrap_or(false);
    if allowed {
        let step = (groups.len() / 60).max(1);
        for g in groups.iter().step_by(step) {
            let places = (g.capacity / 4).max(1);
            let recs = store.execute(
                &Request {
                    command: Command::Publish {
                        kindergarten: g.kindergarten.clone(),
                        cohort: g.cohort,
                        language: g.language,
                        places,
                    },
                    actor: actor.clone(),
                    reason: Some("demo publication round".into()),
                },
                now,
            )?;
            for r in recs {
                if let crate::event::Event::PlacesPublished { publication, .. } = r.event {
                    publications.push(publication);
                    places_published += places as u64;
                }
            }
        }
        // The first in each queue take places of their priority phase.
        for p in publications.clone() {
            let (cohort, language) = {
                let p = &store.state().data.publications[&p];
                (p.cohort, p.language)
            };
            let first = store
                .state()
                .queue(cohort)
                .map(|q| q.page(0, 400))
                .unwrap_or_default()
                .into_iter()
                .map(|k| k.app)
                .find(|a| {
                    store.state().app(*a).is_some_and(|x| {
                        x.language == language && x.status == crate::model::Status::Queued
                    })
                });
            if let Some(app) = first {
                let req = Request {
                    command: Command::Take {
                        app,
                        publication: p,
                    },
                    actor: actor.clone(),
                    reason: None,
                };
                if store.execute(&req, now).is_ok() {
                    referrals += 1;
                }
            }
            if referrals >= 20 {
                break;
            }
        }
    }
    store.checkpoint()?;

    let state = store.state();
    let mut waiting_by_cohort = BTreeMap::new();
    let mut by_category: BTreeMap<String, u64> = BTreeMap::new();
    for c in state.cohorts() {
        waiting_by_cohort.insert(c, state.queue(c).map_or(0, |q| q.len() as u64));
    }
    for a in state.data.apps.values() {
        *by_category.entry(a.category.clone()).or_default() += 1;
    }
    let mut samples = Vec::new();
    if let Some(c) = state.cohorts().first() {
        if let Some(q) = state.queue(*c) {
            let n = q.len();
            for i in [0, n / 2, n.saturating_sub(1)] {
                if let Some(k) = q.page(i, 1).first() {
                    samples.push(k.app.to_string());
                }
            }
        }
    }
    Ok(DemoSummary {
        seed,
        kindergartens: state.data.kindergartens.len(),
        groups: groups.len(),
        capacity,
        applications,
        waiting_by_cohort,
        by_category,
        publications,
        places_published,
        referrals,
        samples,
    })
}
