//! `kezek simulate` end to end: a store start read from a private copy (the live store's
//! files are byte-for-byte unchanged), the same bytes twice, candidate rules with `--out`,
//! and the exit codes of bad input.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{copy_rules, Kezek};
use jiff::civil::date;

/// 2026-12-02 09:00 in Almaty (UTC+5), a Wednesday.
const NOW: &str = "2026-12-02T04:00:00Z";

const KINDERGARTENS: &str = "id,name,district,cohort,language,capacity
K1,ГККП «Ясли-сад № 1»,Алмалинский,2022,kk,20
K1,ГККП «Ясли-сад № 1»,Алмалинский,2022,ru,20
K2,ТОО «Балапан»,Медеуский,2022,kk,10
";

const SCENARIO: &str = r#"
seed = 7
horizon_months = 2

[start]
from = "store"

[[arrivals.rates]]
cohort = 2022
category = "general"
language = "kk"
per_month = 6.0

[[publications]]
date = "2026-12-07"
cohort = 2022
language = "kk"
places = 8

[[publications]]
every = "week"
from = "2026-12-14"
to = "2027-01-18"
cohort = 2022
language = "kk"
places = 2

[behaviour]
take_in_priority = 0.9
take_in_free_access = 0.6
recall = 0.1
extend = 0.1
expire = 0.1
enroll = 0.7
enroll_after_extend = 0.9
"#;

fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(dir).expect("read dir") {
        let e = e.expect("entry");
        let p = e.path();
        if p.is_dir() {
            for (k, v) in files(&p) {
                out.insert(format!("{}/{k}", e.file_name().to_string_lossy()), v);
            }
        } else {
            out.insert(
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(&p).expect("read"),
            );
        }
    }
    out
}

fn city() -> Kezek {
    let k = Kezek::init(NOW);
    k.import_kindergartens(KINDERGARTENS);
    for i in 1..=30u32 {
        let cat = if i % 5 == 0 {
            "large_family"
        } else {
            "general"
        };
        k.register(date(2022, 3, 1 + (i % 28) as i8), i, cat, "kk");
    }
    k
}

#[test]
fn simulate_reads_the_store_without_touching_it_and_repeats_itself() {
    let k = city();
    let scenario = k.write("scenario.toml", SCENARIO);
    let before = files(&k.data());
    let a = k.run(&["simulate", &scenario, "--json"]);
    assert_eq!(a.code, 0, "{}\n{}", a.stdout, a.stderr);
    let v = a.json();
    assert_eq!(v["baseline"]["start"]["waiting"], 30);
    assert!(
        v["baseline"]["referrals"]["issued"].as_u64().unwrap() > 5,
        "{v}"
    );
    assert!(v["candidate"].is_null());
    assert_eq!(
        files(&k.data()),
        before,
        "the live store's files are unchanged"
    );
    let b = k.run(&["simulate", &scenario, "--json"]);
    assert_eq!(a.stdout, b.stdout, "byte-identical JSON");
    // Timings are on standard error only.
    assert!(a.stderr.contains("simulated in"));
    k.verify();
}

#[test]
fn simulate_candidate_rules_side_by_side_with_out_files() {
    let k = city();
    let scenario = k.write("scenario.toml", SCENARIO);
    let rules = copy_rules(&k.path("fcfs"));
    let order = rules.join("order.rhai");
    let src = std::fs::read_to_string(&order).expect("order.rhai");
    std::fs::write(
        &order,
        src.replace(
            "[app.category_rank, app.registered_at]",
            "[app.registered_at]",
        ),
    )
    .expect("write");
    let out = k.path("out");
    let v = k.json(&[
        "simulate",
        &scenario,
        "--rules",
        rules.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(v["candidate"]["activated"], true);
    assert!(v["comparison"]["applications"].as_u64().unwrap() >= 30);
    for f in [
        "placed.csv",
        "waiting_days.csv",
        "queue.csv",
        "queue.svg",
        "waiting_days.svg",
        "shifts.csv",
    ] {
        assert!(out.join(f).is_file(), "{f} written");
    }
    let text = k.ok(&[
        "simulate",
        &scenario,
        "--rules",
        rules.to_str().unwrap(),
        "--runs",
        "2",
    ]);
    assert!(text.contains("2 seeds"), "{text}");
}

#[test]
fn simulate_refuses_bad_input_with_the_right_exit_codes() {
    let k = city();
    let bad = k.write(
        "bad.toml",
        &SCENARIO.replace("recall = 0.1", "recall = 0.3"),
    );
    let e = k.fails(&["simulate", &bad], 4, "invalid_scenario");
    assert!(
        e["message"].as_str().unwrap().contains("behaviour.enroll"),
        "{e}"
    );
    let unknown = k.write(
        "unknown.toml",
        &SCENARIO.replace("seed = 7", "seed = 7\nsede = 8"),
    );
    let e = k.fails(&["simulate", &unknown], 4, "invalid_scenario");
    assert!(e["message"].as_str().unwrap().contains("sede"), "{e}");
    let ok = k.write("scenario.toml", SCENARIO);
    k.fails(
        &["simulate", &ok, "--rules", "/nonexistent-rules"],
        4,
        "rules_invalid",
    );
    k.fails(&["simulate", &ok, "--runs", "0"], 4, "invalid_input");
    let r = k.run(&["simulate", &ok, "--baseline", "/x"]);
    assert_eq!(r.code, 2, "--baseline needs --rules: {}", r.stderr);
    let empty = Kezek::new();
    let s = empty.write("scenario.toml", SCENARIO);
    empty.fails(&["simulate", &s], 4, "no_store");
}
