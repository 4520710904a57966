//! `cargo run --release -p kezek-benches --bin rss -- [--applications 1000000]`: the
//! resident memory of a real `kezek serve` holding N applications. Builds a store with N
//! applications in one cohort through the engine's own import (as `measure` does),
//! snapshots it, starts the release `kezek serve` on it (build it first:
//! `cargo build --release -p kezek-admin`), warms it with API reads, and prints `VmRSS`
//! and `VmHWM` from `/proc/PID/status` as a Markdown table, and again after one
//! explanation (which replays the event log). Exits 1 if a request fails,
//! 2 on bad options or a failed set-up.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Parser;
use hyper::Method;
use kezek_benches::client::Client;
use kezek_benches::server::{add_token, locate_kezek, Server};
use kezek_benches::{bench_now, rows};
use kezek_engine::{Actor, ClockMode, RuleSet, Store};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const MAX_APPLICATIONS: usize = 10_000_000;
const MAX_REQUESTS: usize = 10_000_000;

#[derive(Parser, Debug)]
#[command(about = "Resident memory of `kezek serve` holding N applications")]
struct Args {
    /// Applications in the store (one cohort, birth year 2021).
    #[arg(long, default_value_t = 1_000_000)]
    applications: usize,
    /// Reads sent to warm the server before the measurement (cards, queue pages, offers
    /// of random applications).
    #[arg(long, default_value_t = 5_000)]
    requests: usize,
    /// Seed of the generated applications.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// The `kezek` binary (default: $KEZEK_BIN, or beside this program, or
    /// $CARGO_TARGET_DIR/release/kezek, or target/release/kezek).
    #[arg(long)]
    kezek: Option<PathBuf>,
}

fn dir_bytes(p: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(p) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn run(args: &Args) -> Result<Result<String, String>, String> {
    if args.applications == 0 || args.applications > MAX_APPLICATIONS {
        return Err(format!("--applications: must be 1 to {MAX_APPLICATIONS}"));
    }
    if args.requests > MAX_REQUESTS {
        return Err(format!("--requests: at most {MAX_REQUESTS}"));
    }
    let kezek = locate_kezek(args.kezek.as_deref())?;
    let n = args.applications;
    let dir = tempfile::tempdir().map_err(|e| format!("cannot make a temporary folder: {e}"))?;
    let data = dir.path().join("kezek-data");

    // The store: N applications imported through the engine, then a snapshot, so the
    // server starts the way it would after a restart.
    let t = Instant::now();
    let input = rows(n, args.seed, 100_000);
    let ids: Vec<String> = input
        .iter()
        .filter_map(|(_, r)| r.app.map(|a| a.to_string()))
        .collect();
    {
        let now = bench_now();
        let mut store = Store::init(
            &data,
            &RuleSet::default_files(),
            ClockMode::Manual,
            now,
            Actor::System,
        )
        .map_err(|e| format!("cannot create the store: {e}"))?;
        store
            .import_applications(&input, &Actor::System, now)
            .map_err(|e| format!("the import failed: {e}"))?;
        store
            .checkpoint()
            .map_err(|e| format!("the snapshot failed: {e}"))?;
    }
    drop(input);
    let build_s = t.elapsed().as_secs_f64();
    let disk = dir_bytes(&data);
    eprintln!(
        "rss: a store of {n} applications built in {build_s:.1} s ({:.0} MiB on disk); starting {}",
        mib(disk),
        kezek.display()
    );

    let mut server = Server::start(&kezek, &data, &[], Duration::from_secs(1_800))?;
    let start_s = server.started_in().as_secs_f64();
    // Let the first tick and the start settle before the first reading.
    std::thread::sleep(Duration::from_secs(2));
    let at_start = server.memory()?;
    let token = add_token(&kezek, &data, "rss-reader", "viewer")?;

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let addr = server.addr();
    let t = Instant::now();
    let failures: Vec<String> = rt.block_on(async {
        let mut c = Client::new(addr);
        let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
        let mut failures = Vec::new();
        for i in 0..args.requests {
            let id = &ids[rng.random_range(0..ids.len())];
            let path = match i % 10 {
                0..=5 => format!("/api/applications/{id}"),
                6..=8 => format!("/api/queues/2021?from={}&limit=20", rng.random_range(1..=n)),
                _ => format!("/api/applications/{id}/offers"),
            };
            match c.call(Method::GET, &path, &token, None).await {
                Ok(a) if a.ok() => {}
                Ok(a) => failures.push(format!("GET {path}: {} {}", a.status, a.excerpt())),
                Err(e) => failures.push(format!("GET {path}: {e}")),
            }
        }
        failures
    });
    let warm_s = t.elapsed().as_secs_f64();
    let warm = server.memory()?;
    // One explanation: it replays the whole event log into a fresh state.
    let t = Instant::now();
    let explained = rt.block_on(async {
        let mut c = Client::new(addr);
        let path = format!("/api/applications/{}/explain", ids[ids.len() / 2]);
        match c.call(Method::GET, &path, &token, None).await {
            Ok(a) if a.ok() => "answered".to_string(),
            Ok(a) => format!("answered {} `{}`", a.status, a.excerpt()),
            Err(e) => format!("failed: {e}"),
        }
    });
    let explain_s = t.elapsed().as_secs_f64();
    let after_explain = server.memory()?;
    server.kill()?;
    if !failures.is_empty() {
        return Ok(Err(format!(
            "{} of {} warm-up requests failed; the first: {}",
            failures.len(),
            args.requests,
            failures[0]
        )));
    }
    let per_app = warm.rss_kib as f64 * 1024.0 / n as f64;
    Ok(Ok(format!(
        "Resident memory of `kezek serve` (release) holding {n} applications in one cohort \
         (store built through the engine's import and snapshotted; {:.0} MiB on disk; the \
         server opened it in {start_s:.1} s; {} warm-up reads in {warm_s:.1} s: cards, queue \
         pages, offers; then one explanation, which replays the event log: {explained} after {explain_s:.1} s).\n\n\
         | applications | VmRSS after start MiB | VmRSS after warm-up MiB | VmHWM after warm-up MiB | bytes per application (VmRSS) | VmRSS / VmHWM after one explain MiB |\n\
         |---:|---:|---:|---:|---:|---:|\n\
         | {n} | {:.0} | {:.0} | {:.0} | {per_app:.0} | {:.0} / {:.0} |\n",
        mib(disk),
        args.requests,
        at_start.rss_mib(),
        warm.rss_mib(),
        warm.hwm_mib(),
        after_explain.rss_mib(),
        after_explain.hwm_mib(),
    )))
}

fn main() {
    let args = Args::parse();
    match run(&args) {
        Ok(Ok(table)) => print!("{table}"),
        Ok(Err(e)) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    }
}
