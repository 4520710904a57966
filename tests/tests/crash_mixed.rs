//! The crash run: the `kezek` process is killed (SIGKILL) at random points of a mixed
//! workload — registrations, bulk imports, publications, takes, recalls, extensions,
//! enrolments, rule activations (alternating between two rule sets, so every queue is
//! re-ranked) and clock ticks — over a store of a few thousand applications.
//!
//! The test keeps a mirror of the store: the engine's in-memory `Core`, given the same
//! commands at the same instants as the command line gives the store. Every command the
//! binary reports done (exit 0) is applied to the mirror too. After each kill the store is
//! reopened and must be, to the digest of its primary data and the clock, either the mirror
//! (the killed command left nothing) or the mirror plus the whole killed command; a command
//! that exited 0 before the kill landed must be there. Then `audit verify` must pass (the
//! chain, the replay against the live state and the snapshot, the invariants), the effect
//! of every command reported done so far is checked one by one, and the workload goes on
//! from the recovered state.
//!
//! Each kill comes after a random delay: half of them over 0 to 1.2 times the measured run
//! time of the kind of command being run, half over 0.7 to 1.05 times it (where a command
//! writes, flushes and may write a snapshot). So most kills land inside a command (opening
//! the store, deciding, writing, flushing) and some just after it ended; the run counts
//! both.
//!
//! `cargo test --workspace --test crash_mixed` runs 20 points (the CI version).
//! `KEZEK_CRASH_POINTS=200 cargo test --release --workspace --test crash_mixed -- --nocapture`
//! runs 200; `KEZEK_CRASH_SEED=N` replays a run (the seed is printed).

mod common;

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{Kezek, Rng};
use jiff::civil::{date, Date};
use jiff::{SignedDuration, Timestamp, ToSpan};
use kezek_engine::event::Actor;
use kezek_engine::iin::Iin;
use kezek_engine::model::ReferralState;
use kezek_engine::state::State;
use kezek_engine::store::IMPORT_GROUP_EVENTS;
use kezek_engine::{
    import, AppNo, Command, Core, EventRecord, Language, Phase, RegisterInput, Request, RuleSet,
    Status, Store,
};

const NOW: &str = "2026-12-02T04:00:00Z";
/// Applications imported before the first kill: enough that opening the store, writing a
/// snapshot and replaying take a while.
const INITIAL_APPLICATIONS: usize = 5_000;
/// Kill points when `KEZEK_CRASH_POINTS` is not set (the CI version).
const DEFAULT_POINTS: usize = 20;
const MAX_POINTS: usize = 100_000;
const DEFAULT_SEED: u64 = 0xC8A5_4D00_0000_0001;
/// Commands run to the end before each killed one: 0 to this, minus one.
const DONE_PER_POINT_BELOW: u64 = 3;
/// Cohorts (birth years) of the workload; every child is under 7 at the test's clock.
const COHORTS: [i32; 4] = [2021, 2022, 2023, 2024];
const KINDERGARTENS: usize = 3;
const CATEGORIES: [&str; 7] = [
    "general",
    "general",
    "general",
    "general",
    "large_family",
    "teacher",
    "disability",
];
const REASON: &str = "crash run";

/// The actor the command line acts as.
fn cli_actor() -> Actor {
    Actor::Operator("cli".into())
}

fn env_number(name: &str, default: u64, max: u64) -> u64 {
    let Ok(v) = std::env::var(name) else {
        return default;
    };
    let v = v.trim();
    let parsed = match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(&hex.replace('_', ""), 16),
        None => v.replace('_', "").parse::<u64>(),
    };
    match parsed {
        Ok(n) if n <= max => n,
        Ok(n) => panic!("{name}: {n} is over the limit {max}"),
        Err(e) => panic!("{name}: '{v}' is not a number ({e})"),
    }
}

/// The two rule sets the workload alternates between: the default (benefit categories
/// first) and first come, first served (registration time only).
fn rule_dirs() -> [(&'static str, PathBuf); 2] {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    [
        ("default", root.join("rules")),
        ("fcfs", root.join("scenarios").join("rules").join("fcfs")),
    ]
}

/// A child no other child of the run shares: `n` picks the birth date (cohorts 2021 to
/// 2024), the sex and the serial bucket (20 serials each: `make_valid` searches within).
fn child(n: u64) -> (Date, Iin) {
    let days = (n % 1_460) as i64;
    let female = (n / 1_460) % 2 == 1;
    let bucket = (n / 2_920) as u32;
    assert!(bucket < 500, "child number {n} is past the unique range");
    let birth = date(2021, 1, 1).checked_add(days.days()).unwrap();
    (birth, Iin::make_valid(birth, female, bucket * 20))
}

fn language(rng: &mut Rng) -> Language {
    if rng.range(0, 3) == 0 {
        Language::Ru
    } else {
        Language::Kk
    }
}

/// A command of the workload, as run by the binary and as given to the mirror.
#[derive(Debug, Clone)]
enum Op {
    Register {
        child: Iin,
        birth: Date,
        applicant: String,
        category: &'static str,
        language: Language,
    },
    Import {
        file: String,
        csv: String,
        ids: Vec<AppNo>,
    },
    Publish {
        kindergarten: String,
        cohort: i32,
        language: Language,
        places: u32,
    },
    Take {
        app: AppNo,
        publication: u64,
    },
    Recall {
        app: AppNo,
    },
    Extend {
        app: AppNo,
    },
    Enroll {
        app: AppNo,
    },
    Activate {
        name: &'static str,
        dir: PathBuf,
        files: BTreeMap<String, String>,
    },
    Tick {
        hours: u64,
    },
}

impl Op {
    fn kind(&self) -> &'static str {
        match self {
            Op::Register { .. } => "register",
            Op::Import { .. } => "import",
            Op::Publish { .. } => "publish",
            Op::Take { .. } => "take",
            Op::Recall { .. } => "recall",
            Op::Extend { .. } => "extend",
            Op::Enroll { .. } => "enroll",
            Op::Activate { .. } => "activate",
            Op::Tick { .. } => "tick",
        }
    }

    /// The kind, and for a rule activation which rule set.
    fn label(&self) -> String {
        match self {
            Op::Activate { name, .. } => format!("activate {name}"),
            Op::Import { ids, .. } => format!("import {}", ids.len()),
            _ => self.kind().to_string(),
        }
    }

    fn args(&self) -> Vec<String> {
        let s = |x: &str| x.to_string();
        let mut a: Vec<String> = match self {
            Op::Register {
                child,
                birth,
                applicant,
                category,
                language,
            } => vec![
                s("register"),
                s("--child-iin"),
                child.to_string(),
                s("--birth-date"),
                birth.to_string(),
                s("--applicant-iin"),
                applicant.clone(),
                s("--category"),
                s(category),
                s("--language"),
                s(language.code()),
            ],
            Op::Import { file, .. } => vec![s("import"), s("applications"), file.clone()],
            Op::Publish {
                kindergarten,
                cohort,
                language,
                places,
            } => vec![
                s("publish"),
                s("--kindergarten"),
                kindergarten.clone(),
                s("--cohort"),
                cohort.to_string(),
                s("--language"),
                s(language.code()),
                s("--places"),
                places.to_string(),
            ],
            Op::Take { app, publication } => vec![
                s("take"),
                app.to_string(),
                s("--publication"),
                publication.to_string(),
            ],
            Op::Recall { app } => vec![s("recall"), app.to_string(), s("--reason"), s(REASON)],
            Op::Extend { app } => vec![s("extend"), app.to_string()],
            Op::Enroll { app } => vec![s("enroll"), app.to_string()],
            Op::Activate { dir, .. } => vec![
                s("rules"),
                s("activate"),
                dir.to_str().expect("utf-8 path").to_string(),
                s("--reason"),
                s(REASON),
            ],
            Op::Tick { hours } => vec![s("tick"), s("--by"), format!("{hours}h")],
        };
        a.push(s("--json"));
        a
    }

    /// The command's request, as the command line builds it (not for import and tick).
    fn request(&self) -> Request {
        let (command, reason) = match self.clone() {
            Op::Register {
                child,
                birth,
                applicant,
                category,
                language,
            } => (
                Command::Register(Box::new(RegisterInput {
                    child_iin: child.to_string(),
                    birth_date: birth,
                    applicant_iin: applicant,
                    category: Some(category.to_string()),
                    language: Some(language),
                    ..RegisterInput::default()
                })),
                None,
            ),
            Op::Publish {
                kindergarten,
                cohort,
                language,
                places,
            } => (
                Command::Publish {
                    kindergarten,
                    cohort,
                    language,
                    places,
                },
                None,
            ),
            Op::Take { app, publication } => (Command::Take { app, publication }, None),
            Op::Recall { app } => (Command::Recall { app }, Some(REASON.to_string())),
            Op::Extend { app } => (Command::Extend { app }, None),
            Op::Enroll { app } => (Command::Enroll { app }, None),
            Op::Activate { files, .. } => {
                (Command::ActivateRules { files }, Some(REASON.to_string()))
            }
            Op::Import { .. } | Op::Tick { .. } => unreachable!("not a single request"),
        };
        Request {
            command,
            actor: cli_actor(),
            reason,
        }
    }
}

/// The mirror: the engine in memory and the manual clock, as the store must hold them.
struct Mirror {
    core: Core,
    now: Timestamp,
}

impl Mirror {
    fn from_store(store: &Store) -> Mirror {
        Mirror {
            core: Core::new(State::from_data(store.state().data.clone()).expect("state")),
            now: store.config().manual_now,
        }
    }

    fn copy(&self) -> Mirror {
        Mirror {
            core: Core::new(State::from_data(self.core.state.data.clone()).expect("state")),
            now: self.now,
        }
    }

    fn state(&self) -> &State {
        &self.core.state
    }

    /// Runs `op` as the command line does against the store: due transitions first, then
    /// the command. Returns the records it wrote.
    fn apply(&mut self, op: &Op) -> kezek_engine::Result<Vec<EventRecord>> {
        if let Op::Tick { hours } = op {
            let to = self
                .now
                .checked_add(SignedDuration::from_hours(*hours as i64))
                .unwrap();
            let recs = self.core.advance(to)?;
            self.now = to;
            return Ok(recs);
        }
        let mut recs = self.core.advance(self.now)?;
        if let Op::Import { csv, .. } = op {
            let rules = self.state().rules().cloned().expect("rules");
            let rows = import::parse_applications(csv.as_bytes(), &rules)?;
            recs.extend(
                self.core
                    .import_applications(&rows, &cli_actor(), self.now)?,
            );
            return Ok(recs);
        }
        recs.extend(self.core.execute(&op.request(), self.now)?);
        Ok(recs)
    }

    /// Would the store accept `op` now? (Reads only: the engine's `decide`.) A tick always
    /// is; an import's rows are made valid, and a refusal would fail the run.
    fn accepts(&self, op: &Op) -> bool {
        match op {
            Op::Tick { .. } | Op::Import { .. } => true,
            _ => RuleSet::with_stack(|| self.core.decide(&op.request().command, self.now)).is_ok(),
        }
    }
}

/// What a command reported done must leave in the store, checked after every kill.
#[derive(Debug)]
enum Done {
    Registered { app: AppNo, child: Iin },
    Imported { ids: Vec<AppNo> },
    Published { id: u64, places: u32 },
    Took { app: AppNo, referral: u64 },
    Recalled { referral: u64 },
    Extended { referral: u64 },
    Enrolled { referral: u64 },
    Activated { version: u32, hash: String },
    Ticked { to: Timestamp },
}

/// The ledger entry of `op`, read from the mirror after it ran (`recs` its records), after
/// checking the binary's JSON output against the mirror when there is one.
fn done_entry(op: &Op, m: &Mirror, recs: &[EventRecord], out: Option<&serde_json::Value>) -> Done {
    use kezek_engine::Event;
    let s = m.state();
    let d = match op {
        Op::Register { child, .. } => {
            let app = recs
                .iter()
                .find_map(|r| match &r.event {
                    Event::Registered(reg) => Some(reg.app),
                    _ => None,
                })
                .expect("a registration");
            if let Some(v) = out {
                assert_eq!(v["id"], app.to_string(), "register: {v}");
                assert_eq!(v["status"], "queued", "register: {v}");
            }
            Done::Registered {
                app,
                child: child.clone(),
            }
        }
        Op::Import { ids, .. } => {
            if let Some(v) = out {
                assert_eq!(v["imported"], ids.len(), "import: {v}");
            }
            Done::Imported { ids: ids.clone() }
        }
        Op::Publish { places, .. } => {
            let id = recs
                .iter()
                .find_map(|r| match &r.event {
                    Event::PlacesPublished { publication, .. } => Some(*publication),
                    _ => None,
                })
                .expect("a publication");
            if let Some(v) = out {
                assert_eq!(v["id"], id, "publish: {v}");
                assert_eq!(v["places"], *places, "publish: {v}");
            }
            Done::Published {
                id,
                places: *places,
            }
        }
        Op::Take { app, .. } => {
            let referral = recs
                .iter()
                .find_map(|r| match &r.event {
                    Event::ReferralIssued { referral, .. } => Some(*referral),
                    _ => None,
                })
                .expect("a referral");
            if let Some(v) = out {
                assert_eq!(v["id"], referral, "take: {v}");
            }
            Done::Took {
                app: *app,
                referral,
            }
        }
        Op::Recall { app } | Op::Extend { app } | Op::Enroll { app } => {
            let referral = recs
                .iter()
                .rev()
                .find_map(|r| match r.event {
                    Event::ReferralRecalled { referral, .. }
                    | Event::ReferralExtended { referral, .. }
                    | Event::Enrolled { referral, .. } => Some(referral),
                    _ => None,
                })
                .unwrap_or_else(|| panic!("{} of {app}: no referral event", op.kind()));
            if let Some(v) = out {
                let status = format!("{:?}", s.app(*app).unwrap().status);
                let shown = v["status"].as_str().unwrap_or_default().replace('_', "");
                assert!(
                    status.eq_ignore_ascii_case(&shown),
                    "{}: the card says {shown}, the mirror {status}",
                    op.kind()
                );
            }
            match op {
                Op::Recall { .. } => Done::Recalled { referral },
                Op::Extend { .. } => Done::Extended { referral },
                _ => Done::Enrolled { referral },
            }
        }
        Op::Activate { .. } => {
            let v = s.data.rules_versions.last().expect("a rule version");
            if let Some(o) = out {
                assert_eq!(o["version"], v.version, "rules activate: {o}");
                assert_eq!(o["hash"], v.hash, "rules activate: {o}");
            }
            Done::Activated {
                version: v.version,
                hash: v.hash.clone(),
            }
        }
        Op::Tick { .. } => {
            if let Some(v) = out {
                let seqs: Vec<u64> = v["events"]
                    .as_array()
                    .expect("tick events")
                    .iter()
                    .map(|e| e["seq"].as_u64().unwrap())
                    .collect();
                let mine: Vec<u64> = recs.iter().map(|r| r.seq).collect();
                assert_eq!(seqs, mine, "tick: {v}");
            }
            Done::Ticked { to: m.now }
        }
    };
    d
}

/// Checks the effect of every command reported done so far on the reopened store.
fn check_ledger(store: &Store, ledger: &[Done], point: usize) -> usize {
    let s = store.state();
    let mut checks = 0;
    let mut last_rules = None;
    for d in ledger {
        match d {
            Done::Registered { app, child } => {
                let a = s
                    .app(*app)
                    .unwrap_or_else(|| panic!("point {point}: {app} was registered, then lost"));
                assert_eq!(&a.child_iin, child, "point {point}: {app}");
            }
            Done::Imported { ids } => {
                for id in ids {
                    assert!(
                        s.app(*id).is_some(),
                        "point {point}: {id} was imported, then lost"
                    );
                }
            }
            Done::Published { id, places } => {
                let p = s.data.publications.get(id).unwrap_or_else(|| {
                    panic!("point {point}: publication {id} was published, then lost")
                });
                assert_eq!(p.places, *places, "point {point}: publication {id}");
            }
            Done::Took { app, referral } => {
                let r = s.data.referrals.get(referral).unwrap_or_else(|| {
                    panic!("point {point}: referral {referral} was issued, then lost")
                });
                assert_eq!(r.app, *app, "point {point}: referral {referral}");
            }
            Done::Recalled { referral } => assert_eq!(
                s.data.referrals.get(referral).map(|r| r.state),
                Some(ReferralState::Recalled),
                "point {point}: referral {referral} was recalled"
            ),
            Done::Extended { referral } => assert!(
                s.data
                    .referrals
                    .get(referral)
                    .is_some_and(|r| r.extensions >= 1),
                "point {point}: referral {referral} was extended"
            ),
            Done::Enrolled { referral } => assert_eq!(
                s.data.referrals.get(referral).map(|r| r.state),
                Some(ReferralState::Used),
                "point {point}: referral {referral} was used"
            ),
            Done::Activated { version, hash } => {
                let v = s.data.rules_versions.iter().find(|v| v.version == *version);
                assert_eq!(
                    v.map(|v| &v.hash),
                    Some(hash),
                    "point {point}: rule version {version} was activated"
                );
                last_rules = Some(*version);
            }
            Done::Ticked { to } => assert!(
                store.config().manual_now >= *to,
                "point {point}: the clock was moved to {to}, then went back to {}",
                store.config().manual_now
            ),
        }
        checks += 1;
    }
    if let Some(v) = last_rules {
        assert_eq!(
            s.rules_version(),
            v,
            "point {point}: the active rule version is not the one last reported done"
        );
    }
    checks
}

/// Draws the next command from the mirror's state: one the store will accept.
struct Workload {
    rng: Rng,
    /// Children numbered so far (each gets a unique IIN from its number).
    children: u64,
    imports: usize,
    rules: [(&'static str, PathBuf, BTreeMap<String, String>, String); 2],
}

impl Workload {
    fn new(seed: u64) -> Workload {
        let rules = rule_dirs().map(|(name, dir)| {
            let files = RuleSet::read_dir(&dir).expect("rule files");
            let hash = RuleSet::compile(&files).expect("rules compile").hash();
            (name, dir, files, hash)
        });
        assert_ne!(rules[0].3, rules[1].3);
        Workload {
            rng: Rng(seed),
            children: 0,
            imports: 0,
            rules,
        }
    }

    /// A journal of `rows` new waiting applications, numbered after the mirror's last.
    fn journal(&mut self, m: &Mirror, rows: usize) -> (String, Vec<AppNo>) {
        let mut csv = String::with_capacity(rows * 110 + 200);
        csv.push_str("application_number,child_iin,birth_date,registered_at,category,status,applicant_iin,language\n");
        let mut ids = Vec::with_capacity(rows);
        let first_seq = m.state().data.max_app_seq.max(100_000) + 1;
        for i in 0..rows {
            let n = self.children;
            self.children += 1;
            let (birth, iin) = child(n);
            let registered = birth.checked_add(30.days()).unwrap().at(
                9 + (n % 9) as i8,
                (n % 60) as i8,
                (n / 60 % 60) as i8,
                0,
            );
            let id: AppNo = format!("UO.{}.{}.1", registered.year(), first_seq + i as u32)
                .parse()
                .unwrap();
            let cat = CATEGORIES[self.rng.range(0, CATEGORIES.len() as u64) as usize];
            let lang = language(&mut self.rng);
            csv.push_str(&format!(
                "{id},{iin},{birth},{registered},{cat},queued,{},{}\n",
                common::adult_iin(n as u32 % 4_000),
                lang.code()
            ));
            ids.push(id);
        }
        (csv, ids)
    }

    fn import(&mut self, k: &Kezek, m: &Mirror, rows: usize) -> Op {
        let (csv, ids) = self.journal(m, rows);
        self.imports += 1;
        let file = k.write(&format!("journal-{}.csv", self.imports), &csv);
        Op::Import { file, csv, ids }
    }

    fn register(&mut self) -> Op {
        let n = self.children;
        self.children += 1;
        let (birth, iin) = child(n);
        Op::Register {
            child: iin,
            birth,
            applicant: common::adult_iin(n as u32 % 4_000),
            category: CATEGORIES[self.rng.range(0, CATEGORIES.len() as u64) as usize],
            language: language(&mut self.rng),
        }
    }

    fn publish(&mut self, m: &Mirror, cohort: i32, language: Language) -> Option<Op> {
        let start = self.rng.range(0, KINDERGARTENS as u64) as usize;
        let places = self.rng.range(1, 4) as u32;
        for i in 0..KINDERGARTENS {
            let op = Op::Publish {
                kindergarten: format!("K{}", 1 + (start + i) % KINDERGARTENS),
                cohort,
                language,
                places,
            };
            if m.accepts(&op) {
                return Some(op);
            }
        }
        None
    }

    /// A take of an open place by an application the engine lets take it; if there is
    /// none, a publication for the head of a queue.
    fn take_or_publish(&mut self, m: &Mirror) -> Option<Op> {
        let s = m.state();
        let mut pubs: Vec<_> = s
            .data
            .publications
            .values()
            .filter(|p| p.places_left > 0)
            .collect();
        // Start from a random one.
        if !pubs.is_empty() {
            let r = self.rng.range(0, pubs.len() as u64) as usize;
            pubs.rotate_left(r);
        }
        for p in pubs {
            let Some(q) = s.queue(p.cohort) else { continue };
            let eligible: Vec<AppNo> = q
                .page(0, 300)
                .iter()
                .filter_map(|key| s.app(key.app))
                .filter(|a| m.core.may_take(a, p, m.now).is_ok())
                .map(|a| a.id)
                .collect();
            if eligible.is_empty() {
                continue;
            }
            // In the priority phase only the first few may take; in free access anyone.
            let pick = if p.phase == Phase::Priority {
                0
            } else {
                self.rng.range(0, eligible.len() as u64) as usize
            };
            let op = Op::Take {
                app: eligible[pick],
                publication: p.id,
            };
            assert!(m.accepts(&op), "the mirror refuses its own pick {op:?}");
            return Some(op);
        }
        // Nobody can take an open place: publish for the head of a random cohort.
        let cohort = COHORTS[self.rng.range(0, COHORTS.len() as u64) as usize];
        let head = s
            .queue(cohort)?
            .page(0, 50)
            .iter()
            .filter_map(|key| s.app(key.app))
            .find(|a| a.status == Status::Queued)
            .map(|a| a.language)?;
        self.publish(m, cohort, head)
    }

    /// A recall, extension or enrolment of a random referral the engine accepts it for.
    fn on_referral(&mut self, m: &Mirror, make: fn(AppNo) -> Op) -> Option<Op> {
        let holders: Vec<AppNo> = m
            .state()
            .data
            .apps
            .values()
            .filter(|a| a.status == Status::ReferralIssued)
            .map(|a| a.id)
            .collect();
        if holders.is_empty() {
            return None;
        }
        let start = self.rng.range(0, holders.len() as u64) as usize;
        (0..holders.len().min(20))
            .map(|i| make(holders[(start + i) % holders.len()]))
            .find(|op| m.accepts(op))
    }

    fn activate(&mut self, m: &Mirror) -> Op {
        let active = &m.state().data.rules_versions.last().expect("rules").hash;
        let (name, dir, files, _) = self
            .rules
            .iter()
            .find(|r| &r.3 != active)
            .expect("two rule sets")
            .clone();
        Op::Activate { name, dir, files }
    }

    fn next(&mut self, k: &Kezek, m: &Mirror) -> Op {
        let op = match self.rng.range(0, 100) {
            0..=21 => Some(self.register()),
            22..=26 => {
                // One group at most: an import is then wholly there or wholly absent.
                let rows = (self.rng.range(100, 800) as usize).min(IMPORT_GROUP_EVENTS);
                Some(self.import(k, m, rows))
            }
            27..=38 => {
                let cohort = COHORTS[self.rng.range(0, COHORTS.len() as u64) as usize];
                let lang = language(&mut self.rng);
                self.publish(m, cohort, lang)
            }
            39..=60 => self.take_or_publish(m),
            61..=71 => self.on_referral(m, |app| Op::Recall { app }),
            72..=76 => self.on_referral(m, |app| Op::Extend { app }),
            77..=79 => self.on_referral(m, |app| Op::Enroll { app }),
            80..=87 => Some(self.activate(m)),
            _ => Some(Op::Tick {
                hours: self.rng.range(1, 37),
            }),
        };
        let op = op.unwrap_or_else(|| self.register());
        assert!(
            m.accepts(&op),
            "the workload drew a command the engine refuses: {op:?}"
        );
        op
    }
}

/// Typical run times of each kind of command here, to spread the kills over them.
#[derive(Default)]
struct Timings(BTreeMap<&'static str, Vec<Duration>>);

impl Timings {
    fn add(&mut self, kind: &'static str, d: Duration) {
        let v = self.0.entry(kind).or_default();
        v.push(d);
        if v.len() > 9 {
            v.remove(0);
        }
    }

    /// The median of the last runs of `kind`, or of any kind before one was seen.
    fn typical(&self, kind: &'static str) -> Duration {
        let mut v: Vec<Duration> = match self.0.get(kind) {
            Some(v) => v.clone(),
            None => self.0.values().flatten().copied().collect(),
        };
        v.sort();
        v.get(v.len() / 2)
            .copied()
            .unwrap_or(Duration::from_millis(500))
    }
}

/// How a run of the binary ended.
enum Ended {
    /// Exited 0 (before any kill): stdout and how long it took.
    Done(String, Duration),
    /// Killed while it ran.
    Killed,
}

/// Runs `op`; if `kill_after` is given, kills it then unless it has ended.
fn run(k: &Kezek, op: &Op, kill_after: Option<Duration>) -> Ended {
    let args = op.args();
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let started = Instant::now();
    let mut child = k.spawn(&argv);
    if let Some(delay) = kill_after {
        let deadline = started + delay;
        loop {
            if child.try_wait().expect("wait").is_some() {
                break;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                child.kill().expect("kill");
                break;
            }
            std::thread::sleep(left.min(Duration::from_millis(1)));
        }
    }
    let out = child.wait_with_output().expect("wait");
    let took = started.elapsed();
    if out.status.signal() == Some(9) {
        return Ended::Killed;
    }
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "`kezek {}` failed without a kill ({:?}):\n{stdout}\n{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Ended::Done(stdout, took)
}

/// Runs `op` to the end, applies it to the mirror, checks the output, and returns its
/// ledger entry.
fn run_done(k: &Kezek, m: &mut Mirror, op: &Op, timings: &mut Timings) -> Done {
    let Ended::Done(stdout, took) = run(k, op, None) else {
        unreachable!("not killed")
    };
    timings.add(op.kind(), took);
    let recs = m
        .apply(op)
        .expect("the mirror accepts what the store accepted");
    let v: serde_json::Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("`{}` printed no JSON ({e}): {stdout}", op.kind()));
    done_entry(op, m, &recs, Some(&v))
}

#[derive(Default, Debug)]
struct Tally {
    inside_absent: usize,
    inside_present: usize,
    between: usize,
    done: usize,
    checks: usize,
    sled_leftovers: usize,
    killed_by_kind: BTreeMap<&'static str, usize>,
}

#[test]
fn kill_at_random_points_of_a_mixed_workload() {
    let points = env_number(
        "KEZEK_CRASH_POINTS",
        DEFAULT_POINTS as u64,
        MAX_POINTS as u64,
    ) as usize;
    let seed = env_number("KEZEK_CRASH_SEED", DEFAULT_SEED, u64::MAX);
    eprintln!("crash run: {points} points, seed {seed:#x} (KEZEK_CRASH_SEED={seed:#x} replays it)");
    let started = Instant::now();

    let k = Kezek::init(NOW);
    let mut groups = String::from("id,name,district,cohort,language,capacity\n");
    for i in 1..=KINDERGARTENS {
        for c in COHORTS {
            for l in ["kk", "ru"] {
                groups.push_str(&format!("K{i},Ясли-сад № {i},Алмалинский,{c},{l},1000\n"));
            }
        }
    }
    k.import_kindergartens(&groups);
    let mut m = Mirror::from_store(&Store::open(&k.data()).expect("open"));
    let mut w = Workload::new(seed);
    let mut timings = Timings::default();
    let mut ledger: Vec<Done> = Vec::new();
    let first = w.import(&k, &m, INITIAL_APPLICATIONS);
    ledger.push(run_done(&k, &mut m, &first, &mut timings));
    // One of each kind that needs no earlier state, to learn their run times.
    for op in [w.register(), w.activate(&m), Op::Tick { hours: 1 }] {
        ledger.push(run_done(&k, &mut m, &op, &mut timings));
    }
    let mut t = Tally {
        done: ledger.len(),
        ..Tally::default()
    };

    for point in 0..points {
        for _ in 0..w.rng.range(0, DONE_PER_POINT_BELOW) {
            let op = w.next(&k, &m);
            ledger.push(run_done(&k, &mut m, &op, &mut timings));
            t.done += 1;
        }
        let op = w.next(&k, &m);
        let typical = timings.typical(op.kind());
        // Half the kills anywhere in the command's run time (and a little after), half
        // near its end, where it writes, flushes and may write a snapshot.
        let us = typical.as_micros() as u64;
        let delay = Duration::from_micros(if w.rng.range(0, 2) == 0 {
            w.rng.range(0, (us * 6 / 5).max(1))
        } else {
            w.rng
                .range(us * 7 / 10, (us * 21 / 20).max(us * 7 / 10 + 1))
        });
        let ended = run(&k, &op, Some(delay));

        // The two states the store may be in: without the command, or with all of it.
        let mut with = m.copy();
        let recs = with.apply(&op).expect("the mirror accepts the command");
        let sled_leftovers = std::fs::read_dir(k.data())
            .unwrap()
            .filter(|e| {
                let name = e.as_ref().unwrap().file_name();
                let name = name.to_string_lossy();
                name.starts_with("snap.") && name.ends_with(".generating")
            })
            .count();
        t.sled_leftovers += sled_leftovers;

        // Restart: the binary reopens the store and audits it.
        k.verify();
        let store = Store::open(&k.data()).expect("the store reopens after a kill");
        let digest = store.state().digest();
        let clock = store.config().manual_now;
        let absent = digest == m.state().digest() && clock == m.now;
        let present = digest == with.state().digest() && clock == with.now;
        let outcome = match (&ended, absent, present) {
            (Ended::Done(stdout, took), _, true) => {
                timings.add(op.kind(), *took);
                let v: serde_json::Value = serde_json::from_str(stdout).expect("JSON");
                ledger.push(done_entry(&op, &with, &recs, Some(&v)));
                t.between += 1;
                t.done += 1;
                "ended before the kill"
            }
            (Ended::Killed, true, _) => {
                t.inside_absent += 1;
                "killed inside, left nothing"
            }
            (Ended::Killed, false, true) => {
                ledger.push(done_entry(&op, &with, &recs, None));
                t.inside_present += 1;
                "killed inside, wholly written"
            }
            _ => {
                let extra: Vec<String> = store
                    .records(m.state().data.last_seq + 1)
                    .map(|r| {
                        let r = r.unwrap();
                        format!("{} {}", r.seq, r.event.name())
                    })
                    .collect();
                panic!(
                    "point {point}: after `kezek {}` ({}), the store is neither without it nor with all of it: \
                     {} events (mirror {} without, {} with), clock {clock} (mirror {} / {}); events after the mirror's: {extra:?}",
                    op.args().join(" "),
                    if matches!(ended, Ended::Killed) { "killed" } else { "done" },
                    store.state().data.last_seq,
                    m.state().data.last_seq,
                    with.state().data.last_seq,
                    m.now,
                    with.now,
                );
            }
        };
        if matches!(ended, Ended::Killed) {
            *t.killed_by_kind.entry(op.kind()).or_default() += 1;
        }
        t.checks += check_ledger(&store, &ledger, point);
        eprintln!(
            "point {point}: `{}` after {delay:?} (typical {typical:?}): {outcome}; {} events{}",
            op.label(),
            store.state().data.last_seq,
            if sled_leftovers > 0 {
                format!("; {sled_leftovers} half-written sled snapshot file(s) left")
            } else {
                String::new()
            }
        );
        // Continue from the recovered state (the same as the mirror's, by its digest).
        m = Mirror::from_store(&store);
        drop(store);
    }

    let events = k.verify();
    let inside = t.inside_absent + t.inside_present;
    eprintln!(
        "crash run: seed {seed:#x}, {points} points: {inside} kills inside a command ({} left nothing, {} wholly written), \
         {} after the command ended; killed: {:?}; {} commands done, {} effect checks passed; \
         {} half-written sled snapshot files seen (removed by Store::open); {events} events, {} applications; {:.1} s",
        t.inside_absent,
        t.inside_present,
        t.between,
        t.killed_by_kind,
        t.done,
        t.checks,
        t.sled_leftovers,
        m.state().data.apps.len(),
        started.elapsed().as_secs_f64()
    );
    assert_eq!(inside + t.between, points);
}
