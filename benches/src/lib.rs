//! Shared set-ups for the benches and the `measure` command: queues of a given size built
//! through the engine's own import path (rules evaluated, keys computed, events applied).

pub mod client;
pub mod load;
pub mod server;

use jiff::civil::{date, Time};
use jiff::Timestamp;
use kezek_engine::calendar;
use kezek_engine::iin::Iin;
use kezek_engine::{Actor, AppNo, Command, Core, RegisterInput, Request, RuleSet};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The instant the benches run at.
pub fn bench_now() -> Timestamp {
    calendar::instant(date(2026, 12, 2), Time::constant(10, 0, 0, 0))
}

/// `n` journal rows of one cohort (birth year 2021), numbered from `first_seq`, with
/// realistic category shares and registration times spread over five years.
pub fn rows(n: usize, seed: u64, first_seq: u32) -> Vec<(usize, RegisterInput)> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let cats = [
        "military",
        "special_bodies",
        "disability",
        "large_family",
        "orphan",
        "teacher",
    ];
    let start = calendar::instant(date(2021, 12, 31), Time::midnight()).as_second();
    let end = calendar::instant(date(2026, 11, 30), Time::midnight()).as_second();
    let mut next_serial = std::collections::HashMap::new();
    (0..n)
        .map(|i| {
            // Each birth date carries 2 x 10,000 serials: spread over the year.
            let day = (i / 18_000) as i64 % 365;
            let birth = date(2021, 1, 1)
                .checked_add(jiff::Span::new().days(day))
                .unwrap_or(date(2021, 6, 1));
            let female = (i / 9_000) % 2 == 1;
            // Serials without a check digit are skipped, so count them per date and sex.
            let serial: &mut u32 = next_serial.entry((day, female)).or_insert(0);
            let child = loop {
                let s = *serial;
                *serial += 1;
                if let Some(iin) = Iin::make(birth, female, s) {
                    break iin;
                }
            };
            let category = if rng.random_range(0..100) < 19 {
                cats[rng.random_range(0..cats.len())]
            } else {
                "general"
            };
            let t = Timestamp::from_second(rng.random_range(start..end))
                .unwrap_or(Timestamp::UNIX_EPOCH);
            (
                i + 1,
                RegisterInput {
                    app: Some(AppNo {
                        year: calendar::local_date(t).year() as u16,
                        seq: first_seq + i as u32,
                        n: 1,
                    }),
                    child_iin: child.to_string(),
                    birth_date: birth,
                    applicant_iin: Iin::make_valid(date(1990, 5, 5), false, (i % 9_000) as u32)
                        .to_string(),
                    category: Some(category.to_string()),
                    // A third in Russian, as in the demo city's groups.
                    language: Some(if i % 3 == 0 {
                        kezek_engine::Language::Ru
                    } else {
                        kezek_engine::Language::Kk
                    }),
                    registered_at: Some(t),
                    ..Default::default()
                },
            )
        })
        .collect()
}

/// An in-memory engine with the default rules and `n` applications in one cohort.
pub fn core_with(n: usize, seed: u64) -> (Core, Vec<AppNo>) {
    let mut core = Core::default();
    let now = bench_now();
    let req = Request {
        command: Command::ActivateRules {
            files: RuleSet::default_files(),
        },
        actor: Actor::System,
        reason: Some("bench".into()),
    };
    core.execute(&req, now).expect("default rules activate");
    let rows = rows(n, seed, 100_000);
    let ids = rows.iter().filter_map(|(_, r)| r.app).collect();
    core.import_applications(&rows, &Actor::System, now)
        .expect("generated rows import");
    (core, ids)
}
