//! `cargo run --release -p kezek-benches --bin load -- [--seconds 60] [--connections 32]`:
//! the JSON API of a real `kezek serve` under a loopback load (see `kezek_benches::load`).
//! Build the server first: `cargo build --release -p kezek-admin`. Prints a Markdown table
//! of throughput and latency percentiles per request kind; exits 1 on any error or lost
//! write, 2 on bad options or a failed set-up.

use std::path::PathBuf;

use clap::{Parser, ValueEnum};
use kezek_benches::load::{self, Options, Scale};
use kezek_benches::server::locate_kezek;

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ScaleArg {
    City,
    Small,
}

#[derive(Parser, Debug)]
#[command(about = "Load run of the JSON API of `kezek serve` on the demo city")]
struct Args {
    /// Seconds of load.
    #[arg(long, default_value_t = 60.0)]
    seconds: f64,
    /// Kept-alive connections, each sending its next request when the last is answered.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Percent of requests that write (publications, applicant changes).
    #[arg(long, default_value_t = 8)]
    write_percent: u32,
    /// Percent of the reads that ask for an explanation (`/explain` replays the whole
    /// event log, so it is off by default).
    #[arg(long, default_value_t = 0)]
    explain_percent: u32,
    /// The demo city's size.
    #[arg(long, value_enum, default_value = "city")]
    scale: ScaleArg,
    /// Seed of the request mix.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Threads of the load generator (the server shares the machine).
    #[arg(long, default_value_t = 1)]
    client_threads: usize,
    /// The `kezek` binary (default: $KEZEK_BIN, or beside this program, or
    /// $CARGO_TARGET_DIR/release/kezek, or target/release/kezek).
    #[arg(long)]
    kezek: Option<PathBuf>,
}

fn main() {
    let args = Args::parse();
    let kezek = match locate_kezek(args.kezek.as_deref()) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    let opts = Options {
        kezek,
        seconds: args.seconds,
        connections: args.connections,
        write_percent: args.write_percent,
        explain_percent: args.explain_percent,
        scale: match args.scale {
            ScaleArg::City => Scale::City,
            ScaleArg::Small => Scale::Small,
        },
        seed: args.seed,
        client_threads: args.client_threads,
    };
    eprintln!(
        "load: {} for {} s over {} connections (starting the server builds the demo city first)",
        opts.kezek.display(),
        opts.seconds,
        opts.connections
    );
    match load::run(&opts) {
        Ok(report) => {
            print!("{}", report.markdown());
            if !report.ok() {
                std::process::exit(1);
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    }
}
