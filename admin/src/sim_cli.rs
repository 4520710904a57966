//! `kezek simulate`: the what-if simulation from the command line (the library is
//! `kezek-sim`). Never touches the live store: a `store` start reads a private copy.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use kezek_engine::state::Data;
use kezek_engine::{RuleSet, Store};
use kezek_sim::report::RuleSetReport;
use kezek_sim::scenario::{StartKind, MAX_SCENARIO_BYTES};
use kezek_sim::{Control, Report, RuleInput, Scenario, SimError, StartState};

use crate::cli::Failure;

pub struct Args {
    pub scenario: PathBuf,
    pub rules: Option<PathBuf>,
    pub baseline: Option<PathBuf>,
    pub runs: u32,
    pub out: Option<PathBuf>,
}

fn invalid(code: &str, message: impl Into<String>) -> Failure {
    Failure {
        exit: 4,
        code: code.into(),
        message: message.into(),
    }
}

impl From<SimError> for Failure {
    fn from(e: SimError) -> Failure {
        match e {
            SimError::Scenario { .. } => invalid("invalid_scenario", e.to_string()),
            SimError::Rules { .. } => invalid("rules_invalid", e.to_string()),
            SimError::Engine(e) => e.into(),
            SimError::Cancelled | SimError::TimedOut => Failure {
                exit: 1,
                code: "cancelled".into(),
                message: e.to_string(),
            },
        }
    }
}

fn rule_input(dir: &Path) -> Result<RuleInput, Failure> {
    let files = RuleSet::read_dir(dir).map_err(|e| invalid("rules_invalid", e.to_string()))?;
    let input = RuleInput {
        label: dir.display().to_string(),
        files,
    };
    kezek_sim::check_rules(&input)?;
    Ok(input)
}

fn copy_dir(from: &Path, to: &Path, depth: u32) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let target = to.join(entry.file_name());
        if kind.is_dir() && depth < 4 {
            copy_dir(&entry.path(), &target, depth + 1)?;
        } else if kind.is_file() {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

/// The store's state, read from a private copy: the live store is never opened, so it is
/// never written, and a running `kezek serve` is no obstacle.
fn store_data(data: &Path) -> Result<Data, Failure> {
    if !Store::exists(data) {
        return Err(invalid(
            "no_store",
            format!(
                "no store at {} (the scenario starts from the store)",
                data.display()
            ),
        ));
    }
    let tmp = tempfile::tempdir().map_err(|e| Failure {
        exit: 1,
        code: "storage".into(),
        message: format!("cannot make a temporary folder: {e}"),
    })?;
    let copy = tmp.path().join("store");
    copy_dir(data, &copy, 0).map_err(|e| Failure {
        exit: 1,
        code: "storage".into(),
        message: format!("cannot copy the store {}: {e}", data.display()),
    })?;
    let store = Store::open(&copy)?;
    let d = store.state().data.clone();
    drop(store);
    Ok(d)
}

pub fn run(data: &Path, args: Args, json: bool) -> Result<(), Failure> {
    let meta = std::fs::metadata(&args.scenario).map_err(|e| {
        invalid(
            "unreadable_file",
            format!("{}: {e}", args.scenario.display()),
        )
    })?;
    if meta.len() as usize > MAX_SCENARIO_BYTES {
        return Err(invalid(
            "too_large",
            format!(
                "{}: larger than {MAX_SCENARIO_BYTES} bytes",
                args.scenario.display()
            ),
        ));
    }
    let text = std::fs::read_to_string(&args.scenario).map_err(|e| {
        invalid(
            "unreadable_file",
            format!("{}: {e}", args.scenario.display()),
        )
    })?;
    let scenario = Scenario::from_toml(&text)?;
    if args.runs == 0 || args.runs > kezek_sim::MAX_RUNS {
        return Err(invalid(
            "invalid_input",
            format!("--runs: 1 to {}", kezek_sim::MAX_RUNS),
        ));
    }
    if let Some(out) = &args.out {
        if out.exists() && !out.is_dir() {
            return Err(invalid(
                "invalid_input",
                format!("--out: {} is not a directory", out.display()),
            ));
        }
    }
    let candidate = args.rules.as_deref().map(rule_input).transpose()?;
    let baseline = args.baseline.as_deref().map(rule_input).transpose()?;

    let started = Instant::now();
    let store = match scenario.start {
        StartKind::Store => Some(store_data(data)?),
        StartKind::Demo { .. } => None,
    };
    let start = StartState::prepare(&scenario, store)?;
    let prepared = started.elapsed();

    let sets = 1 + u64::from(candidate.is_some());
    let total = kezek_sim::days_per_rule_set(&scenario, &start) * sets * u64::from(args.runs);
    let progress = AtomicU64::new(0);
    let done = AtomicBool::new(false);
    let control = Control {
        cancel: None,
        deadline: None,
        progress: Some(&progress),
    };
    let run_started = Instant::now();
    let result = std::thread::scope(|s| {
        if std::io::stderr().is_terminal() {
            s.spawn(|| {
                let bar = indicatif::ProgressBar::new(total);
                if let Ok(style) = indicatif::ProgressStyle::with_template(
                    "simulating {bar:40} {pos}/{len} days ({eta} left)",
                ) {
                    bar.set_style(style);
                }
                while !done.load(Ordering::Relaxed) {
                    bar.set_position(progress.load(Ordering::Relaxed).min(total));
                    std::thread::sleep(Duration::from_millis(100));
                }
                bar.finish_and_clear();
            });
        }
        let r = if args.runs == 1 {
            kezek_sim::simulate(
                &scenario,
                &start,
                baseline.as_ref(),
                candidate.as_ref(),
                scenario.seed,
                &control,
            )
            .map(Either::One)
        } else {
            kezek_sim::simulate_runs(
                &scenario,
                &start,
                baseline.as_ref(),
                candidate.as_ref(),
                args.runs,
                &control,
            )
            .map(Either::Many)
        };
        done.store(true, Ordering::Relaxed);
        r
    });
    let result = result?;
    // Timings go to standard error only: the report stays byte-identical.
    eprintln!(
        "start state ({}) prepared in {:.2} s; {} run(s) × {} rule set(s) simulated in {:.2} s",
        start.source,
        prepared.as_secs_f64(),
        args.runs,
        sets,
        run_started.elapsed().as_secs_f64()
    );

    if let Some(out) = &args.out {
        let files = match &result {
            Either::One(r) => kezek_sim::out::files_of_report(r),
            Either::Many(m) => kezek_sim::out::files_of_runs(m),
        };
        kezek_sim::out::write(out, &files).map_err(|e| Failure {
            exit: 1,
            code: "storage".into(),
            message: format!("--out {}: {e}", out.display()),
        })?;
        eprintln!("wrote {} file(s) to {}", files.len(), out.display());
    }
    match &result {
        Either::One(r) if json => println!("{}", r.to_json()),
        Either::Many(m) if json => println!("{}", m.to_json()),
        Either::One(r) => print!("{}", summary(r)),
        Either::Many(m) => {
            print!("{}", summary(&m.first));
            println!(
                "\n{} seeds ({}..{}): spread of the main figures (min · median · max)",
                m.runs,
                m.seeds.first().copied().unwrap_or(0),
                m.seeds.last().copied().unwrap_or(0)
            );
            for (k, f) in &m.figures {
                let main = k.ends_with("placed_total")
                    || k.ends_with("referrals.issued")
                    || k.ends_with("justified_envy.total")
                    || k.contains("waiting_days")
                    || k.starts_with("comparison.earlier")
                    || k.starts_with("comparison.later");
                if main && !k.ends_with(".n") {
                    println!("  {k:<48} {} · {} · {}", f.min, f.median, f.max);
                }
            }
        }
    }
    Ok(())
}

enum Either {
    One(Report),
    Many(kezek_sim::MultiReport),
}

fn summary(r: &Report) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let sc = &r.scenario;
    let _ = writeln!(
        s,
        "simulation seed {} · {} month(s) from {} · start: {}",
        sc.seed, sc.horizon_months, sc.start_at, sc.start
    );
    let sets: Vec<&RuleSetReport> = std::iter::once(&r.baseline)
        .chain(r.candidate.as_ref())
        .collect();
    let _ = write!(s, "{:<34}", "");
    for (i, x) in sets.iter().enumerate() {
        let name = format!(
            "{} {}",
            if i == 0 { "baseline" } else { "candidate" },
            &x.rules_hash[..8]
        );
        let _ = write!(s, "{name:>22}");
    }
    s.push('\n');
    let row = |s: &mut String, name: &str, f: &dyn Fn(&RuleSetReport) -> String| {
        let _ = write!(s, "{name:<34}");
        for x in &sets {
            let _ = write!(s, "{:>22}", f(x));
        }
        s.push('\n');
    };
    row(&mut s, "waiting at start", &|x| x.start.waiting.to_string());
    row(&mut s, "arrivals registered", &|x| {
        x.arrivals.registered.to_string()
    });
    row(&mut s, "places published", &|x| {
        x.places.published.to_string()
    });
    row(&mut s, "places refused (blackout)", &|x| {
        x.places.refused_blackout.to_string()
    });
    row(&mut s, "unused at priority end", &|x| {
        x.places.unused_at_priority_end.to_string()
    });
    row(&mut s, "referrals issued", &|x| {
        x.referrals.issued.to_string()
    });
    row(&mut s, "  recalled", &|x| x.referrals.recalled.to_string());
    row(&mut s, "  extended", &|x| x.referrals.extended.to_string());
    row(&mut s, "  expired", &|x| x.referrals.expired.to_string());
    row(&mut s, "  enrolled", &|x| x.referrals.enrolled.to_string());
    row(&mut s, "placed", &|x| x.placed_total.to_string());
    let mut cats: Vec<&String> = sets.iter().flat_map(|x| x.placed.keys()).collect();
    cats.sort();
    cats.dedup();
    for c in &cats {
        row(&mut s, &format!("  placed {c}"), &|x| {
            x.placed
                .get(*c)
                .map_or(0, |m| m.values().sum::<u64>())
                .to_string()
        });
    }
    let mut wcats: Vec<&String> = sets.iter().flat_map(|x| x.waiting_days.keys()).collect();
    wcats.sort();
    wcats.dedup();
    for c in &wcats {
        row(&mut s, &format!("  days to referral {c}"), &|x| {
            x.waiting_days.get(*c).map_or("-".into(), |w| {
                format!("{} / p90 {}", w.median_days, w.p90_days)
            })
        });
    }
    row(&mut s, "justified envy", &|x| {
        x.justified_envy.total.to_string()
    });
    row(&mut s, "waiting at end", &|x| {
        x.queue.last().map_or(0, |q| q.total).to_string()
    });
    if let Some(c) = &r.comparison {
        let _ = writeln!(
            s,
            "against the baseline: {} earlier · {} later · {} unchanged (of {}); placed only under the candidate {}, only under the baseline {}",
            c.earlier, c.later, c.unchanged, c.applications, c.placed_only_in_candidate, c.placed_only_in_baseline
        );
        for x in c
            .largest_earlier
            .iter()
            .take(3)
            .chain(c.largest_later.iter().take(3))
        {
            let _ = writeln!(
                s,
                "  {} ({}, {}): {} -> {} days ({:+})",
                x.application,
                x.category,
                x.cohort,
                x.baseline_days,
                x.candidate_days,
                x.shift_days
            );
        }
    }
    s
}
