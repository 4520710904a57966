//! The load generator of `cargo run --release -p kezek-benches --bin load` for two seconds
//! against a real `kezek serve` (this package's binary) on the small demo city: every
//! request answered 2xx, every acknowledged write found after the server is killed and
//! started again. No timings are checked.

use std::path::PathBuf;

use kezek_benches::load::{run, Kind, Options, Scale};

const BIN: &str = env!("CARGO_BIN_EXE_kezek-e2e");

#[test]
fn a_short_load_run_has_no_errors_and_loses_no_write() {
    let opts = Options {
        kezek: PathBuf::from(BIN),
        seconds: 2.0,
        connections: 4,
        write_percent: 30,
        explain_percent: 10,
        scale: Scale::Small,
        seed: 3,
        client_threads: 1,
    };
    let report = run(&opts).unwrap_or_else(|e| panic!("the load run could not be made: {e}"));
    let table = report.markdown();
    assert!(report.ok(), "{table}");
    assert_eq!(report.errors, 0, "{table}");
    assert!(report.lost.is_empty(), "{table}");
    assert!(report.total.requests > 0, "{table}");
    // Writes of both kinds were acknowledged and then looked for after the restart.
    assert!(report.publications_acknowledged > 0, "{table}");
    assert!(report.applicant_changes_acknowledged > 0, "{table}");
    assert!(report.applications_changed > 0, "{table}");
    assert!(report.places_acknowledged >= report.publications_acknowledged as i64);
    // Every row of the table is a kind that was sent; the total adds them up.
    let sum: u64 = report.rows.iter().map(|r| r.requests).sum();
    assert_eq!(sum, report.total.requests, "{table}");
    assert!(table.contains(Kind::Card.label()), "{table}");
    assert!(table.contains("none lost"), "{table}");
}

#[test]
fn options_out_of_range_are_refused_by_name() {
    let base = Options {
        kezek: PathBuf::from(BIN),
        seconds: 1.0,
        connections: 1,
        write_percent: 0,
        explain_percent: 0,
        scale: Scale::Small,
        seed: 1,
        client_threads: 1,
    };
    let e = run(&Options {
        connections: 0,
        ..base.clone()
    })
    .expect_err("0 connections refused");
    assert!(e.contains("--connections"), "{e}");
    let e = run(&Options {
        write_percent: 101,
        ..base.clone()
    })
    .expect_err("101% refused");
    assert!(e.contains("--write-percent"), "{e}");
    let e = run(&Options {
        seconds: 0.0,
        ..base
    })
    .expect_err("0 s refused");
    assert!(e.contains("--seconds"), "{e}");
}
