//! Criterion benches of the queue engine. `cargo bench -p kezek-benches`.

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion};
use kezek_benches::{bench_now, core_with, rows};
use kezek_engine::{Actor, ClockMode, RuleSet, Store};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn position_query(c: &mut Criterion) {
    let mut g = c.benchmark_group("position_query");
    for n in [1_000usize, 100_000, 1_000_000] {
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

criterion_group!(benches, position_query, bulk_import);
criterion_main!(benches);
