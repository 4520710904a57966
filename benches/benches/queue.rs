//! Criterion benches of Kezek: `cargo bench -p kezek-benches` (the full sizes, up to
//! 1,000,000 applications in a cohort; about a quarter of an hour on 2 cores).
//!
//! Quick mode: when the binary runs without `--bench` (as `cargo test --workspace` runs it,
//! this target has `test = true`) or with `KEZEK_BENCH_QUICK=1`, every bench runs on small
//! sizes (1,000 applications, a small city, a short horizon), and criterion's test mode
//! runs each routine once. CI so checks that every bench still works without spending
//! minutes on it.
//!
//! | group | what one iteration is |
//! |---|---|
//! | `position_query/N` | queue and category position of a random waiting application, cohort of N |
//! | `registration_durable/N` | one registration through the sled store (rules, events, flush), store of N |
//! | `bulk_import/per_1000_rows_durable` | an import of 1,000 rows into a new store, flushed |
//! | `take_and_recall_durable/N` | a referral taken in free access and recalled, each step flushed, store of N |
//! | `publication_round/1000_places` | 1,000 places published in 50 groups, then the priority phase: the first in the queue (as many as places are free, the default rule) ask for their offers and take; the rest are left for free access |
//! | `activate_rules/N` | activating another rule set: every application of N re-ranked |
//! | `signed_recall_verify` | a recall signed in the NCALayer profile verified: digest, RSA-2048 signature, chain to the CA, validity, key usage |
//! | `simulated_year/demo_city` | a year of the demo city simulated under its rules (one rule set, one seed) |

use std::collections::BTreeMap;
use std::path::Path;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion};
use jiff::{SignedDuration, Span, Timestamp};
use kezek_benches::{bench_now, core_with, rows};
use kezek_engine::event::GroupRow;
use kezek_engine::iin::Iin;
use kezek_engine::state::State;
use kezek_engine::{
    Actor, AppNo, ClockMode, Command, Core, Language, RegisterInput, Request, RuleSet, Store,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Small sizes when not run as a benchmark (see the module's comment).
fn quick() -> bool {
    std::env::var_os("KEZEK_BENCH_QUICK").is_some_and(|v| v != "0")
        || !std::env::args().any(|a| a == "--bench")
}

/// `full` normally, `small` in quick mode.
fn sizes(full: &[usize], small: &[usize]) -> Vec<usize> {
    if quick() {
        small.to_vec()
    } else {
        full.to_vec()
    }
}

fn request(command: Command, reason: Option<&str>) -> Request {
    Request {
        command,
        actor: Actor::Operator("bench".into()),
        reason: reason.map(str::to_string),
    }
}

/// A durable store (manual clock at [`bench_now`]) holding `n` applications of cohort 2021.
fn store_with(n: usize) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut store = Store::init(
        dir.path(),
        &RuleSet::default_files(),
        ClockMode::Manual,
        bench_now(),
        Actor::System,
    )
    .expect("init");
    store
        .import_applications(&rows(n, 7, 100_000), &Actor::System, bench_now())
        .expect("generated rows import");
    (dir, store)
}

fn position_query(c: &mut Criterion) {
    let mut g = c.benchmark_group("position_query");
    for n in sizes(&[1_000, 100_000, 1_000_000], &[1_000]) {
        let (core, ids) = core_with(n, 7);
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| {
                let id = ids[rng.random_range(0..ids.len())];
                let app = core.state.app(id).expect("exists");
                (
                    core.state.queue_position(app),
                    core.state.category_position(app),
                )
            })
        });
    }
    g.finish();
}

/// Fresh child IINs born in 2022 (the stores above hold only 2021), one per call.
struct Children {
    next: u32,
}

impl Children {
    fn next(&mut self) -> (Iin, jiff::civil::Date) {
        loop {
            let i = self.next;
            self.next += 1;
            let birth = jiff::civil::date(2022, 1, 1)
                .checked_add(Span::new().days(i64::from(i / 4_000 % 365)))
                .expect("a day of 2022");
            if let Some(iin) = Iin::make(birth, i % 2 == 1, i % 4_000 / 2 + 1) {
                return (iin, birth);
            }
        }
    }
}

fn registration_durable(c: &mut Criterion) {
    let mut g = c.benchmark_group("registration_durable");
    for n in sizes(&[100_000], &[1_000]) {
        let (_dir, mut store) = store_with(n);
        let mut children = Children { next: 0 };
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| {
                let (child, birth) = children.next();
                let applicant =
                    Iin::make_valid(jiff::civil::date(1991, 2, 3), true, children.next % 9_000)
                        .to_string();
                let input = RegisterInput {
                    child_iin: child.to_string(),
                    birth_date: birth,
                    applicant_iin: applicant.clone(),
                    category: Some("general".into()),
                    ..Default::default()
                };
                store
                    .execute(
                        &request(Command::Register(Box::new(input)), None),
                        bench_now(),
                    )
                    .expect("a fresh child registers")
            })
        });
    }
    g.finish();
}

fn bulk_import(c: &mut Criterion) {
    let mut g = c.benchmark_group("bulk_import");
    g.sample_size(10);
    g.bench_function("per_1000_rows_durable", |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().expect("temp dir");
                let store = Store::init(
                    dir.path(),
                    &RuleSet::default_files(),
                    ClockMode::Manual,
                    bench_now(),
                    Actor::System,
                )
                .expect("init");
                (dir, store, rows(1_000, 5, 100_000))
            },
            |(dir, mut store, rows)| {
                store
                    .import_applications(&rows, &Actor::System, bench_now())
                    .expect("import");
                drop(store);
                drop(dir);
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

/// `count` groups of `capacity` places in cohort 2021, two thirds in Kazakh.
fn groups(count: usize, capacity: u32) -> Vec<GroupRow> {
    (0..count)
        .map(|k| GroupRow {
            kindergarten: format!("BENCH-{k}"),
            name: format!("Bench kindergarten {k}"),
            district: "Алмалинский".into(),
            cohort: 2021,
            language: if k % 3 == 0 {
                Language::Ru
            } else {
                Language::Kk
            },
            capacity,
        })
        .collect()
}

fn take_and_recall_durable(c: &mut Criterion) {
    let mut g = c.benchmark_group("take_and_recall_durable");
    for n in sizes(&[100_000, 1_000_000], &[1_000]) {
        let (_dir, mut store) = store_with(n);
        let now = bench_now();
        store
            .execute(
                &request(
                    Command::AddGroups {
                        groups: groups(1, 10),
                    },
                    None,
                ),
                now,
            )
            .expect("add a group");
        store
            .execute(
                &request(
                    Command::Publish {
                        kindergarten: "BENCH-0".into(),
                        cohort: 2021,
                        language: Language::Ru,
                        places: 10,
                    },
                    None,
                ),
                now,
            )
            .expect("publish");
        let publication = store
            .state()
            .open_publications(2021, Language::Ru)
            .first()
            .map(|p| (p.id, p.free_access_at))
            .expect("the publication just made");
        // Free access: every waiting application of the language may take, whatever its
        // position; the clock moves a second per cycle so the log stays in time order.
        let mut at = publication.1 + SignedDuration::from_mins(1);
        store.tick_to(at).expect("to free access");
        let ids: Vec<AppNo> = store
            .state()
            .queue(2021)
            .expect("the cohort")
            .iter()
            .map(|k| k.app)
            .filter(|id| {
                store
                    .state()
                    .app(*id)
                    .is_some_and(|a| a.language == Language::Ru)
            })
            .collect();
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| {
                let app = ids[rng.random_range(0..ids.len())];
                at += SignedDuration::from_secs(1);
                store
                    .execute(
                        &request(
                            Command::Take {
                                app,
                                publication: publication.0,
                            },
                            None,
                        ),
                        at,
                    )
                    .expect("take in free access");
                store
                    .execute(&request(Command::Recall { app }, Some("bench")), at)
                    .expect("recall within the window");
            })
        });
    }
    g.finish();
}

/// Publishes `groups` x `per_group` places at `now` and runs the priority phase: the
/// waiting applications in queue order ask for their offers and take the first. The
/// default rules let the first as many as there are free places choose
/// (`priority_eligible`), so the walk ends at the first application below that line; a
/// place of a language that nobody eligible speaks stays for free access. Returns the
/// referrals issued.
fn publication_round(core: &mut Core, groups: &[GroupRow], per_group: u32, now: Timestamp) -> u32 {
    for gr in groups {
        core.execute(
            &request(
                Command::Publish {
                    kindergarten: gr.kindergarten.clone(),
                    cohort: gr.cohort,
                    language: gr.language,
                    places: per_group,
                },
                None,
            ),
            now,
        )
        .expect("publish");
    }
    let total = groups.len() as u32 * per_group;
    let order: Vec<AppNo> = core
        .state
        .queue(2021)
        .expect("the cohort")
        .page(1, 50_000)
        .into_iter()
        .map(|k| k.app)
        .collect();
    let mut taken = 0;
    for (i, app) in order.into_iter().enumerate() {
        // Its position now: those before it that took a place have left the queue.
        let position = i as u32 - taken + 1;
        if position > total - taken {
            break;
        }
        let first = core
            .offers(app, now)
            .expect("a queued application")
            .first()
            .map(|p| p.id);
        if let Some(publication) = first {
            core.execute(&request(Command::Take { app, publication }, None), now)
                .expect("an offered place is taken");
            taken += 1;
        }
    }
    taken
}

fn publication_round_bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("publication_round");
    g.sample_size(10);
    let (n, count, per_group) = if quick() {
        (1_000, 10, 10)
    } else {
        (100_000, 50, 20)
    };
    let (mut core, _) = core_with(n, 7);
    let gs = groups(count, per_group);
    core.execute(
        &request(Command::AddGroups { groups: gs.clone() }, None),
        bench_now(),
    )
    .expect("add groups");
    let places = count as u32 * per_group;
    g.bench_function(format!("{places}_places"), |b| {
        b.iter_batched(
            // A fresh state each round (its indexes rebuilt from the data; not timed).
            || Core::new(State::from_data(core.state.data.clone()).expect("the same data")),
            |mut core| {
                let taken = publication_round(&mut core, &gs, per_group, bench_now());
                // Most places go in the priority phase (the rest wait for free access).
                assert!(taken * 10 >= places * 8, "{taken} of {places} taken");
                core
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

/// The rule files of a folder (`*.rhai`).
fn rule_files(dir: &Path) -> BTreeMap<String, String> {
    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(dir).expect("the rules folder") {
        let path = entry.expect("a folder entry").path();
        if path.extension().is_some_and(|e| e == "rhai") {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .expect("a file name")
                .to_string();
            files.insert(name, std::fs::read_to_string(&path).expect("a rule file"));
        }
    }
    files
}

fn activate_rules(c: &mut Criterion) {
    let mut g = c.benchmark_group("activate_rules");
    g.sample_size(10);
    let fcfs = rule_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/rules/fcfs"));
    let default = RuleSet::default_files();
    for n in sizes(&[1_000_000], &[1_000]) {
        let (mut core, _) = core_with(n, 7);
        let mut flip = false;
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| {
                // Alternate, so that every activation really re-ranks.
                flip = !flip;
                let files = if flip { fcfs.clone() } else { default.clone() };
                core.execute(
                    &request(Command::ActivateRules { files }, Some("bench")),
                    bench_now(),
                )
                .expect("a valid rule set activates")
            })
        });
    }
    g.finish();
}

fn signed_recall_verify(c: &mut Criterion) {
    use kezek_pki::testca::{self, KeyKind, Person, TestCa};
    let now = bench_now();
    let from = now - SignedDuration::from_hours(24 * 30);
    let to = now + SignedDuration::from_hours(24 * 300);
    let ca = TestCa::with_key(
        testca::generate_key().expect("a CA key"),
        "KEZEK BENCH CA (RSA)",
        from,
        to + SignedDuration::from_hours(24 * 3000),
    )
    .expect("a CA");
    let key = testca::generate_key().expect("a key");
    let iin = Iin::make_valid(jiff::civil::date(1988, 3, 14), true, 1201).to_string();
    let person = Person::new(&iin, "АХМЕТОВА", "АЙГЕРІМ", "СЕРІКҚЫЗЫ");
    let cert = ca
        .issue_for_key(&key.to_public_key(), &person, KeyKind::Sign, from, to)
        .expect("a signing certificate");
    let xml = format!(
        "<recall><action>recall</action><application>UO.2024.100001.1</application>\
         <referral>7</referral><applicant_iin>{iin}</applicant_iin>\
         <reason>передумали / ойымыз өзгерді</reason><nonce>3b9f0c1e8a7d4e6f</nonce>\
         <issued_at>2026-12-02T05:00:00Z</issued_at><expires_at>2026-12-02T05:10:00Z</expires_at></recall>"
    );
    let signed = kezek_pki::sign_xml(xml.as_bytes(), &key, cert.der()).expect("signed");
    let mut trust = kezek_pki::TrustStore::new();
    trust.add_ca(ca.certificate().clone()).expect("a CA anchor");
    c.bench_function("signed_recall_verify", |b| {
        b.iter(|| {
            let outcome = kezek_pki::verify_outcome(&signed, &trust, now, kezek_pki::Purpose::Sign);
            assert!(outcome.accepted.is_some(), "{:?}", outcome.report);
            outcome
        })
    });
}

fn simulated_year(c: &mut Criterion) {
    let mut g = c.benchmark_group("simulated_year");
    g.sample_size(10);
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/example.toml");
    let mut text = std::fs::read_to_string(&path).expect("scenarios/example.toml");
    if quick() {
        // The small city over two months: the same code, seconds instead of minutes in
        // a debug build.
        text = text
            .replace("demo_scale = \"city\"", "demo_scale = \"small\"")
            .replace("horizon_months = 12", "horizon_months = 2");
    }
    let scenario = kezek_sim::Scenario::from_toml(&text).expect("the example scenario");
    let start = kezek_sim::StartState::prepare(&scenario, None).expect("the demo city");
    g.bench_function("demo_city", |b| {
        b.iter(|| {
            kezek_sim::simulate(
                &scenario,
                &start,
                None,
                None,
                scenario.seed,
                &kezek_sim::Control::default(),
            )
            .expect("the simulation runs")
        })
    });
    g.finish();
}

criterion_group!(
    benches,
    position_query,
    registration_durable,
    bulk_import,
    take_and_recall_durable,
    publication_round_bench,
    activate_rules,
    signed_recall_verify,
    simulated_year
);
criterion_main!(benches);
