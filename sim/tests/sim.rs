//! The simulation against its promises: determinism, conservation, a rule change that
//! matters does, one that should not moves nobody, and the lifecycle is the engine's own.
//! Scenarios are small (the small demo city, a few months) so that this stays fast.

use std::collections::BTreeMap;

use kezek_engine::model::ReferralState;
use kezek_engine::RuleSet;
use kezek_sim::run::simulate_with_cores;
use kezek_sim::{Control, RuleInput, Scenario, SimError, StartState};

fn scenario_text(seed: u64, extra: &str) -> String {
    format!(
        r#"
seed = {seed}
horizon_months = 4

[start]
from = "demo"
demo_seed = 3
demo_scale = "small"

[arrivals]
kk_share = 0.6
[[arrivals.rates]]
cohort = 2025
category = "general"
per_month = 50.0
[[arrivals.rates]]
cohort = 2022
category = "general"
per_month = 12.0
[[arrivals.rates]]
cohort = 2022
category = "large_family"
per_month = 4.0

[[publications]]
date = "2027-01-11"
cohort = 2022
language = "kk"
places = 60

[[publications]]
date = "2027-01-11"
cohort = 2022
language = "ru"
places = 40

[[publications]]
every = "week"
from = "2027-01-18"
to = "2027-03-22"
cohort = 2021
language = "kk"
places = 12

[[publications]]
every = "week"
from = "2027-01-18"
to = "2027-03-22"
cohort = 2021
language = "ru"
places = 8

[behaviour]
take_in_priority = 0.8
take_in_free_access = 0.5
recall = 0.1
extend = 0.1
expire = 0.1
enroll = 0.7
enroll_after_extend = 0.8
withdraw_per_month = 0.01
{extra}
"#
    )
}

fn scenario(seed: u64) -> Scenario {
    Scenario::from_toml(&scenario_text(seed, "")).expect("the test scenario is valid")
}

fn rules_with(file: &str, replace: &str, by: &str, label: &str) -> RuleInput {
    let mut files = RuleSet::default_files();
    let src = files.get_mut(file).expect("default file");
    assert!(src.contains(replace), "{file} holds {replace:?}");
    *src = src.replace(replace, by);
    RuleInput {
        label: label.into(),
        files,
    }
}

const DEFAULT_KEY: &str = "[app.category_rank, app.registered_at]";

/// First come, first served: no category goes first.
fn fcfs() -> RuleInput {
    rules_with("order.rhai", DEFAULT_KEY, "[app.registered_at]", "fcfs")
}

/// Astana's 1:3 interleaving (one beneficiary, then three general), in the only form a key
/// of plain facts allows (see `scenarios/rules/interleave-1-3/order.rhai`).
fn interleave() -> RuleInput {
    let files: BTreeMap<String, String> = RuleSet::default_files()
        .into_iter()
        .map(|(name, src)| {
            if name == "order.rhai" {
                let path = concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/../scenarios/rules/interleave-1-3/order.rhai"
                );
                (
                    name,
                    std::fs::read_to_string(path).expect("the interleaving rule file"),
                )
            } else {
                (name, src)
            }
        })
        .collect();
    RuleInput {
        label: "interleave-1-3".into(),
        files,
    }
}

#[test]
fn same_inputs_give_the_same_bytes_and_other_seeds_other_draws() {
    let sc = scenario(11);
    let start = StartState::prepare(&sc, None).expect("start");
    let cand = fcfs();
    let run = |seed| {
        kezek_sim::simulate(&sc, &start, None, Some(&cand), seed, &Control::default())
            .expect("simulate")
            .to_json()
    };
    let a = run(11);
    let b = run(11);
    assert_eq!(a, b, "same scenario, rules and seed: byte-identical JSON");
    // A fresh start state and scenario give the same bytes too.
    let start2 = StartState::prepare(&sc, None).expect("start");
    let c = kezek_sim::simulate(&sc, &start2, None, Some(&cand), 11, &Control::default())
        .expect("simulate")
        .to_json();
    assert_eq!(a, c);
    let d = run(12);
    assert_ne!(a, d, "another seed draws differently");
    // No wall-clock time and no hash-map order in the report: nothing but the inputs.
    let v: serde_json::Value = serde_json::from_str(&a).expect("JSON");
    assert_eq!(v["scenario"]["seed"], 11);
}

#[test]
fn places_and_arrivals_are_conserved_and_the_engine_state_holds() {
    let sc = scenario(5);
    let start = StartState::prepare(&sc, None).expect("start");
    let (report, cores) =
        simulate_with_cores(&sc, &start, None, Some(&fcfs()), 5).expect("simulate");
    for (rep, core) in std::iter::once(&report.baseline)
        .chain(report.candidate.as_ref())
        .zip(&cores)
    {
        // The lifecycle ran in the engine: its invariants hold, and it recorded events.
        core.state.check_invariants().expect("engine invariants");
        assert!(core.state.data.last_seq > start.data.last_seq + 1_000);
        // Places issued never exceed places published, per publication and in all.
        let mut published_in_horizon = 0u64;
        for p in core.state.data.publications.values() {
            let held = core
                .state
                .data
                .referrals
                .values()
                .filter(|r| {
                    r.publication == p.id
                        && matches!(r.state, ReferralState::Active | ReferralState::Used)
                })
                .count() as u32;
            assert!(held <= p.places, "publication {} over-issued", p.id);
            assert_eq!(p.places_left + held, p.places);
            if !start.data.publications.contains_key(&p.id) {
                published_in_horizon += u64::from(p.places);
            }
        }
        assert_eq!(rep.places.published, published_in_horizon);
        assert!(rep.places.published > 0);
        let start_places: u64 = start
            .data
            .publications
            .values()
            .map(|p| u64::from(p.places))
            .sum();
        assert!(rep.placed_total <= rep.places.published + start_places);
        assert!(rep.referrals.enrolled <= rep.referrals.issued);
        assert_eq!(
            rep.referrals.take_refused, 0,
            "the simulation offers only what the engine allows"
        );
        // Every arrival is accounted for: waiting, placed (holding or enrolled), withdrawn.
        let a = &rep.arrivals;
        assert!(a.registered > 100);
        assert_eq!(a.refused, 0);
        assert_eq!(a.drawn, a.registered + a.refused);
        let e = &a.end;
        assert_eq!(
            a.registered,
            e.waiting + e.holding_referral + e.enrolled + e.withdrawn
        );
        let s = &rep.start;
        assert_eq!(
            s.waiting,
            s.end.waiting + s.end.holding_referral + s.end.enrolled + s.end.withdrawn
        );
        assert!(
            rep.referrals.issued > 0 && rep.referrals.recalled > 0 && rep.referrals.extended > 0
        );
        assert!(rep.withdrawn > 0);
        // The arrivals are registered in the engine under the same numbers in both runs.
        assert_eq!(
            core.state.data.apps.len() as u64,
            start.data.apps.len() as u64 + a.registered
        );
    }
    assert_eq!(
        report.baseline.arrivals.drawn,
        report.candidate.as_ref().map_or(0, |c| c.arrivals.drawn)
    );
}

fn beneficiaries(rep: &kezek_sim::report::RuleSetReport) -> (u64, Vec<f64>) {
    let placed = rep
        .placed
        .iter()
        .filter(|(c, _)| c.as_str() != "general")
        .map(|(_, m)| m.values().sum::<u64>())
        .sum();
    let medians = rep
        .waiting_days
        .iter()
        .filter(|(c, _)| c.as_str() != "general")
        .map(|(_, w)| w.median_days)
        .collect();
    (placed, medians)
}

#[test]
fn interleaving_beneficiaries_raises_their_placements_and_shortens_their_wait() {
    let sc = scenario(21);
    let start = StartState::prepare(&sc, None).expect("start");
    let report = kezek_sim::simulate(
        &sc,
        &start,
        Some(&fcfs()),
        Some(&interleave()),
        21,
        &Control::default(),
    )
    .expect("simulate");
    let cand = report.candidate.as_ref().expect("candidate");
    let (base_placed, _) = beneficiaries(&report.baseline);
    let (cand_placed, _) = beneficiaries(cand);
    assert!(
        cand_placed > base_placed,
        "beneficiaries placed: {cand_placed} under 1:3 interleaving, {base_placed} first come first served"
    );
    // Waiting days of all beneficiaries placed, pooled: lower under interleaving.
    let pooled = |r: &kezek_sim::report::RuleSetReport| {
        let (mut n, mut sum) = (0.0, 0.0);
        for (c, w) in &r.waiting_days {
            if c != "general" {
                n += w.n as f64;
                sum += w.median_days * w.n as f64;
            }
        }
        sum / n.max(1.0)
    };
    assert!(
        pooled(cand) < pooled(&report.baseline),
        "beneficiaries' median days: {} interleaved, {} first come first served",
        pooled(cand),
        pooled(&report.baseline)
    );
    let cmp = report.comparison.expect("comparison");
    let moved = cmp
        .by_category
        .get("large_family")
        .expect("large families compared");
    assert!(
        moved.earlier > moved.later,
        "large families mostly earlier: {moved:?}"
    );
    assert!(cmp.earlier > 0 && cmp.later > 0);
}

#[test]
fn renaming_a_category_consistently_moves_nobody() {
    let sc = Scenario::from_toml(&scenario_text(
        31,
        "[category_aliases]\nlarge_family = \"many_children\"\n",
    ))
    .expect("scenario");
    let start = StartState::prepare(&sc, None).expect("start");
    let renamed = rules_with(
        "categories.rhai",
        "code: \"large_family\"",
        "code: \"many_children\"",
        "renamed",
    );
    let report = kezek_sim::simulate(&sc, &start, None, Some(&renamed), 31, &Control::default())
        .expect("simulate");
    let cand = report.candidate.as_ref().expect("candidate");
    assert!(
        cand.activated,
        "the renamed set was activated on the start state"
    );
    let cmp = report.comparison.as_ref().expect("comparison");
    assert_eq!((cmp.earlier, cmp.later), (0, 0), "nobody moves: {cmp:?}");
    assert!(cmp.applications > 1_000);
    // Every figure is the same, category names included (reports use the scenario's codes).
    let strip = |r: &kezek_sim::report::RuleSetReport| {
        let mut v = serde_json::to_value(r).expect("json");
        for k in ["label", "rules_hash", "activated"] {
            v.as_object_mut().expect("object").remove(k);
        }
        v
    };
    assert_eq!(strip(&report.baseline), strip(cand));
    assert!(report.baseline.placed.contains_key("large_family"));
    // Without the alias the renamed set cannot run this start state, and says why.
    let plain = scenario(31);
    let err = kezek_sim::simulate(
        &plain,
        &start,
        None,
        Some(&renamed),
        31,
        &Control::default(),
    )
    .expect_err("unknown category");
    assert!(err.to_string().contains("large_family"), "{err}");
}

#[test]
fn cancellation_stops_a_run() {
    let sc = scenario(3);
    let start = StartState::prepare(&sc, None).expect("start");
    let flag = std::sync::atomic::AtomicBool::new(true);
    let control = Control {
        cancel: Some(&flag),
        ..Control::default()
    };
    let err = kezek_sim::simulate(&sc, &start, None, None, 3, &control).expect_err("cancelled");
    assert!(matches!(err, SimError::Cancelled));
}

#[test]
fn several_seeds_report_a_spread() {
    let sc = scenario(40);
    let start = StartState::prepare(&sc, None).expect("start");
    let m = kezek_sim::simulate_runs(&sc, &start, None, Some(&fcfs()), 3, &Control::default())
        .expect("runs");
    assert_eq!(m.seeds, vec![40, 41, 42]);
    let f = &m.figures["baseline.referrals.issued"];
    assert!(f.min <= f.median && f.median <= f.max);
    assert!(m.figures.contains_key("candidate.placed_total"));
    assert!(m.figures.contains_key("comparison.earlier"));
    let files = kezek_sim::out::files_of_runs(&m);
    assert!(files["figures.csv"].lines().count() > 10);
    assert!(files["queue.svg"].starts_with("<svg"));
}

#[test]
fn scenario_errors_name_the_field() {
    let cases: [(&str, &str); 6] = [
        ("seed = 1\nhorizon_months = 3\nbogus = 1\n", "bogus"),
        ("seed = 1\nhorizon_months = 0\n[start]\nfrom = \"demo\"\n[behaviour]\ntake_in_priority = 1.0\ntake_in_free_access = 1.0\nrecall = 0.0\nextend = 0.0\nexpire = 0.0\nenroll = 1.0\nenroll_after_extend = 1.0\n", "horizon_months"),
        ("seed = 1\nhorizon_months = 3\n[start]\nfrom = \"demo\"\n[behaviour]\ntake_in_priority = 1.5\ntake_in_free_access = 1.0\nrecall = 0.0\nextend = 0.0\nexpire = 0.0\nenroll = 1.0\nenroll_after_extend = 1.0\n", "behaviour.take_in_priority"),
        ("seed = 1\nhorizon_months = 3\n[start]\nfrom = \"demo\"\n[behaviour]\ntake_in_priority = 1.0\ntake_in_free_access = 1.0\nrecall = 0.5\nextend = 0.0\nexpire = 0.0\nenroll = 1.0\nenroll_after_extend = 1.0\n", "behaviour.enroll"),
        ("seed = 1\nhorizon_months = 3\n[start]\nfrom = \"demo\"\n[[publications]]\nevery = \"year\"\nfrom = 2027-01-01\nto = 2027-05-01\ncohort = 2022\nlanguage = \"kk\"\nplaces = 3\n[behaviour]\ntake_in_priority = 1.0\ntake_in_free_access = 1.0\nrecall = 0.0\nextend = 0.0\nexpire = 0.0\nenroll = 1.0\nenroll_after_extend = 1.0\n", "publications[0].every"),
        ("seed = 1\nhorizon_months = 3\n[start]\nfrom = \"demo\"\n[[arrivals.rates]]\ncohort = 2022\ncategory = \"general\"\nlanguage = \"en\"\nper_month = 3.0\n[behaviour]\ntake_in_priority = 1.0\ntake_in_free_access = 1.0\nrecall = 0.0\nextend = 0.0\nexpire = 0.0\nenroll = 1.0\nenroll_after_extend = 1.0\n", "arrivals.rates[0].language"),
    ];
    for (text, field) in cases {
        let err = Scenario::from_toml(text).expect_err(field);
        let msg = err.to_string();
        assert!(msg.contains(field), "{field}: {msg}");
    }
    // The example in the repository parses.
    let example = include_str!("../../scenarios/example.toml");
    Scenario::from_toml(example).expect("scenarios/example.toml");
}
