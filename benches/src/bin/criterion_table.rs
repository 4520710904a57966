//! Prints the medians of the last `cargo bench` run as a Markdown table: it reads
//! criterion's `new/benchmark.json` and `new/estimates.json` under the criterion folder
//! (default `target/criterion`, or `$CARGO_TARGET_DIR/criterion`). Used by
//! `benches/results.sh`. Exits 1 when the folder holds no results, 2 on bad options.

use std::path::{Path, PathBuf};

use clap::Parser;
use serde_json::Value;

#[derive(Parser)]
#[command(about = "The medians of the last criterion run as a Markdown table")]
struct Args {
    /// Criterion's output folder.
    #[arg(long)]
    dir: Option<PathBuf>,
}

/// One benchmark's result.
struct Row {
    id: String,
    median_ns: f64,
    low_ns: f64,
    high_ns: f64,
    /// Elements per iteration, when the bench declared a throughput.
    elements: Option<f64>,
}

/// Every `new` folder below `dir` (criterion nests group / function / parameter).
fn new_dirs(dir: &Path, out: &mut Vec<PathBuf>, depth: usize) {
    // Criterion nests three levels; a deeper tree is not criterion's.
    if depth > 6 {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in entries {
        if !p.is_dir() {
            continue;
        }
        if p.file_name().is_some_and(|n| n == "new") {
            out.push(p);
        } else if p.file_name().is_some_and(|n| n != "report" && n != "base") {
            new_dirs(&p, out, depth + 1);
        }
    }
}

fn read_json(path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

fn row(new: &Path) -> Result<Row, String> {
    let bench = read_json(&new.join("benchmark.json"))?;
    let est = read_json(&new.join("estimates.json"))?;
    let id = bench["full_id"]
        .as_str()
        .ok_or_else(|| format!("{}: no full_id", new.display()))?
        .to_string();
    let num = |v: &Value, what: &str| {
        v.as_f64()
            .ok_or_else(|| format!("{}: no {what}", new.display()))
    };
    let median = &est["median"];
    Ok(Row {
        id,
        median_ns: num(&median["point_estimate"], "median")?,
        low_ns: num(&median["confidence_interval"]["lower_bound"], "lower bound")?,
        high_ns: num(&median["confidence_interval"]["upper_bound"], "upper bound")?,
        elements: bench["throughput"]["Elements"].as_f64(),
    })
}

/// A duration in the unit that keeps three or four digits.
fn human(ns: f64) -> String {
    if ns < 1e3 {
        format!("{ns:.0} ns")
    } else if ns < 1e6 {
        format!("{:.2} µs", ns / 1e3)
    } else if ns < 1e9 {
        format!("{:.2} ms", ns / 1e6)
    } else {
        format!("{:.2} s", ns / 1e9)
    }
}

fn main() {
    let args = Args::parse();
    let dir = args.dir.unwrap_or_else(|| {
        std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("target"))
            .join("criterion")
    });
    let mut news = Vec::new();
    new_dirs(&dir, &mut news, 0);
    let mut rows = Vec::new();
    for n in &news {
        match row(n) {
            Ok(r) => rows.push(r),
            Err(e) => eprintln!("criterion_table: skipped {e}"),
        }
    }
    if rows.is_empty() {
        eprintln!(
            "criterion_table: no results under {} (run `cargo bench -p kezek-benches` first)",
            dir.display()
        );
        std::process::exit(1);
    }
    println!("| benchmark | median | 95% interval of the median | per element |");
    println!("|---|---:|---:|---:|");
    for r in rows {
        let per = r
            .elements
            .filter(|e| *e > 0.0)
            .map(|e| human(r.median_ns / e))
            .unwrap_or_default();
        println!(
            "| {} | {} | {} – {} | {per} |",
            r.id,
            human(r.median_ns),
            human(r.low_ns),
            human(r.high_ns)
        );
    }
}
