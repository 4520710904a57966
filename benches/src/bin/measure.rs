//! `cargo run --release -p kezek-benches --bin measure [N]`: prints the figures quoted in
//! closing notes — median time of a position query in a cohort of N applications
//! (default 1,000,000) and the rate of a durable bulk import into a sled store.

use std::time::Instant;

use kezek_benches::{bench_now, core_with, rows};
use kezek_engine::{Actor, ClockMode, RuleSet, Store};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let t = Instant::now();
    let (core, ids) = core_with(n, 7);
    let build_s = t.elapsed().as_secs_f64();
    println!("built a cohort of {n} applications in memory in {build_s:.2} s ({:.0} registrations/s, rules evaluated per application)", n as f64 / build_s);

    // Position queries: 25 rounds of 10,000 random applications; median per query.
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let mut per_query_ns = Vec::new();
    let mut checksum = 0u64;
    for _ in 0..25 {
        let picks: Vec<_> = (0..10_000)
            .map(|_| ids[rng.random_range(0..ids.len())])
            .collect();
        let t = Instant::now();
        for id in &picks {
            let app = core.state.app(*id).expect("generated id exists");
            checksum = checksum.wrapping_add(core.state.queue_position(app).unwrap_or(0));
            checksum = checksum.wrapping_add(core.state.category_position(app).unwrap_or(0));
        }
        per_query_ns.push(t.elapsed().as_nanos() as f64 / picks.len() as f64);
    }
    println!(
        "position query (queue_position + category_position) at {n}: median {:.0} ns over 25 rounds of 10,000 (checksum {checksum})",
        median(per_query_ns)
    );

    // Durable bulk import: 100,000 rows into a fresh store, committed in groups, flushed.
    let import_n = 100_000.min(n);
    let mut rates = Vec::new();
    for round in 0..3 {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut store = Store::init(
            dir.path(),
            &RuleSet::default_files(),
            ClockMode::Manual,
            bench_now(),
            Actor::System,
        )
        .expect("init");
        let rows = rows(import_n, 100 + round, 100_000);
        let t = Instant::now();
        store
            .import_applications(&rows, &Actor::System, bench_now())
            .expect("import");
        rates.push(import_n as f64 / t.elapsed().as_secs_f64());
    }
    println!("bulk import of {import_n} rows into sled (checked, applied, flushed): median {:.0} rows/s over 3 runs", median(rates));
}
