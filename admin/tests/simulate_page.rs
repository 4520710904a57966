//! The `/simulate` page, in process: a small scenario run through the form and the
//! polling to completion (tables, charts, a CSV), bad scenarios and bad rules refused with
//! the field or file named and nothing run, cancel, one simulation at a time, the store
//! unchanged, the audit log, and the roles (a viewer may run it, nobody signed out may).

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use kezek_admin::web::Limits;
use kezek_engine::RuleSet;

mod support;

use support::*;

/// A month of the store's own state: a few arrivals and one publication.
const SMALL: &str = r#"
seed = 7
horizon_months = 1

[start]
from = "store"

[arrivals]
kk_share = 0.6

[[arrivals.rates]]
cohort = 2024
category = "general"
per_month = 40.0

[[arrivals.rates]]
cohort = 2024
category = "large_family"
per_month = 10.0

[[publications]]
date = "2026-12-14"
cohort = 2022
language = "kk"
places = 30

[behaviour]
take_in_priority = 0.85
take_in_free_access = 0.5
recall = 0.04
extend = 0.08
expire = 0.05
enroll = 0.83
enroll_after_extend = 0.9
"#;

/// A year of the small demo city: long enough to be cancelled while it runs.
const LONG: &str = r#"
seed = 3
horizon_months = 36

[start]
from = "demo"
demo_seed = 2
demo_scale = "small"

[[arrivals.rates]]
cohort = 2025
category = "general"
per_month = 200.0

[[publications]]
every = "week"
from = "2027-01-04"
to = "2029-11-26"
cohort = 2023
language = "kk"
places = 20

[behaviour]
take_in_priority = 0.85
take_in_free_access = 0.5
recall = 0.04
extend = 0.08
expire = 0.05
enroll = 0.83
enroll_after_extend = 0.9
"#;

/// The form's fields: the active version as the baseline, the given candidate and files.
fn form(
    tok: &str,
    scenario: &str,
    candidate: &str,
    files: &std::collections::BTreeMap<String, String>,
) -> Vec<(String, String)> {
    let mut f = vec![
        ("csrf".to_string(), tok.to_string()),
        ("baseline".into(), "1".into()),
        ("candidate".into(), candidate.into()),
        ("scenario".into(), scenario.into()),
        ("runs".into(), "1".into()),
    ];
    for (k, v) in files {
        f.push((format!("file:{k}"), v.clone()));
    }
    f
}

async fn post_form(b: &mut Browser<'_>, f: &[(String, String)]) -> Resp {
    let pairs: Vec<(&str, &str)> = f.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    b.post("/simulate", &pairs).await
}

/// Polls a job's page until it no longer runs.
async fn wait(b: &mut Browser<'_>, job: &str) -> Resp {
    let until = Instant::now() + Duration::from_secs(300);
    loop {
        let r = b.get(job).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        if !r.body.contains("data-test=\"sim-running\"") {
            return r;
        }
        assert!(Instant::now() < until, "the simulation did not end");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_viewer_runs_a_small_scenario_to_the_tables_and_a_csv() {
    let e = env();
    let mut b = Browser::signed_in(&e, "vera").await;
    let page = b.get("/simulate").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("data-test=\"nav-simulate\""));
    assert!(
        page.body.contains("from = &quot;store&quot;"),
        "prefilled from the example"
    );
    let tok = csrf(&page.body);
    let before = digest(&e);
    let mut files = RuleSet::default_files();
    // The candidate: the same rules but a shorter priority phase is not needed here;
    // the active files as a draft must move nobody.
    let r = post_form(&mut b, &form(&tok, SMALL, "draft", &files)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let job = r.location().to_string();
    assert!(job.starts_with("/simulate/jobs/"), "{job}");
    let done = wait(&mut b, &job).await;
    assert!(
        done.body.contains("data-test=\"sim-done\""),
        "{}",
        done.body
    );
    assert!(done.body.contains("data-test=\"sim-summary\""));
    assert!(done.body.contains("data-test=\"sim-category\""));
    assert!(done.body.contains("data-test=\"sim-chart\""));
    assert!(done.body.contains("<svg"));
    // The same rules on the same draws: nobody moves.
    assert_eq!(test_text(&done.body, "sim-earlier"), "0");
    assert_eq!(test_text(&done.body, "sim-later"), "0");
    let arrivals = done
        .body
        .find("data-metric=\"sim_arrivals\"")
        .expect("an arrivals row");
    assert!(done.body[arrivals..].contains("<td class=\"n\">"));
    // The CSV, as an attachment; only the report's own names.
    let csv = b.get(&format!("{job}/placed.csv")).await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(csv.headers["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment"));
    assert!(csv
        .body
        .starts_with("rule_set,label,category,cohort,placed\n"));
    assert!(done.body.contains(&format!("href=\"{job}/placed.csv\"")));
    assert_eq!(
        b.get(&format!("{job}/secret.csv")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        b.get(&format!("{job}/queue.svg")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        b.get("/simulate/jobs/nope").await.status,
        StatusCode::NOT_FOUND
    );
    // The store is untouched; the run is in the audit log.
    assert_eq!(digest(&e), before);
    let audit = b.get("/audit?action=simulate").await;
    assert_eq!(audit.body.matches("data-test=\"audit-row\"").count(), 1);
    // A broken candidate is refused with its file and line, and nothing runs.
    let name = files.keys().next().unwrap().clone();
    files.insert(name.clone(), "fn broken( {\n".into());
    let r = post_form(&mut b, &form(&tok, SMALL, "draft", &files)).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    let msg = test_text(&r.body, "sim-error");
    assert!(msg.contains(&format!("{name}:1")), "{msg}");
    assert_eq!(audit_rows(&mut b).await, 1);
}

async fn audit_rows(b: &mut Browser<'_>) -> usize {
    b.get("/audit?action=simulate")
        .await
        .body
        .matches("data-test=\"audit-row\"")
        .count()
}

#[tokio::test]
async fn a_bad_scenario_names_the_field_and_runs_nothing() {
    let e = env();
    let mut b = Browser::signed_in(&e, "oleg").await;
    let tok = csrf(&b.get("/simulate").await.body);
    let files = RuleSet::default_files();
    let typo = SMALL.replace("horizon_months = 1", "horizon_month = 1");
    let r = post_form(&mut b, &form(&tok, &typo, "none", &files)).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let msg = test_text(&r.body, "sim-error");
    assert!(msg.contains("horizon_month"), "{msg}");
    let broken = SMALL.replace("seed = 7", "seed = \"seven\"");
    let r = post_form(&mut b, &form(&tok, &broken, "none", &files)).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let msg = test_text(&r.body, "sim-error");
    assert!(msg.contains("line 2"), "{msg}");
    let far = SMALL.replace("horizon_months = 1", "horizon_months = 600");
    let r = post_form(&mut b, &form(&tok, &far, "none", &files)).await;
    assert!(test_text(&r.body, "sim-error").contains("horizon_months"));
    let mut runs = form(&tok, SMALL, "none", &files);
    runs[4].1 = "99".into();
    let r = post_form(&mut b, &runs).await;
    assert!(test_text(&r.body, "sim-error").starts_with("runs"));
    let r = post_form(&mut b, &form(&tok, SMALL, "9", &files)).await;
    assert!(test_text(&r.body, "sim-error").starts_with("candidate"));
    assert_eq!(audit_rows(&mut b).await, 0);
}

#[tokio::test]
async fn a_run_is_cancelled_and_a_second_one_waits_its_turn() {
    let e = env();
    let mut b = Browser::signed_in(&e, "vera").await;
    let tok = csrf(&b.get("/simulate").await.body);
    let files = RuleSet::default_files();
    let mut other = Browser::signed_in(&e, "oleg").await;
    let otok = csrf(&other.get("/simulate").await.body);
    let r = post_form(&mut b, &form(&tok, LONG, "draft", &files)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let job = r.location().to_string();
    // One at a time: a second request gets a clear "busy".
    let busy = post_form(&mut b, &form(&tok, SMALL, "none", &files)).await;
    assert_eq!(busy.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(busy.body.contains("data-test=\"sim-error\""));
    // Somebody else may not cancel it; a wrong token neither.
    let r = other
        .post(&format!("{job}/cancel"), &[("csrf", &otok)])
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = b.post(&format!("{job}/cancel"), &[("csrf", "x")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = b.post(&format!("{job}/cancel"), &[("csrf", &tok)]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let end = wait(&mut b, &job).await;
    assert!(
        end.body.contains("data-test=\"sim-cancelled\""),
        "{}",
        end.body
    );
    assert_eq!(
        b.get(&format!("{job}/placed.csv")).await.status,
        StatusCode::NOT_FOUND
    );
    // The gate is free again; two seeds show their spread.
    let mut two = form(&tok, SMALL, "none", &files);
    two[4].1 = "2".into();
    let r = post_form(&mut b, &two).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let done = wait(&mut b, r.location()).await;
    assert!(done.body.contains("data-test=\"sim-done\""));
    assert!(
        !done.body.contains("data-test=\"sim-comparison\""),
        "no candidate"
    );
    assert!(done.body.contains("data-test=\"sim-spread\""));
    let figures = b.get(&format!("{}/figures.csv", r.location())).await;
    assert!(figures.body.starts_with("figure,min,p10,median,p90,max\n"));
    let audit = b.get("/audit?action=simulate").await;
    assert_eq!(audit.body.matches("data-test=\"audit-row\"").count(), 2);
}

#[tokio::test]
async fn a_run_past_its_time_limit_is_stopped() {
    let e = env_with(Limits {
        sim_time: Duration::from_millis(1),
        ..Limits::default()
    });
    let mut b = Browser::signed_in(&e, "rita").await;
    let tok = csrf(&b.get("/simulate").await.body);
    let r = post_form(&mut b, &form(&tok, LONG, "none", &RuleSet::default_files())).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let end = wait(&mut b, r.location()).await;
    assert!(
        end.body.contains("data-test=\"sim-timed-out\""),
        "{}",
        end.body
    );
}

#[tokio::test]
async fn signed_out_nobody_runs_a_simulation() {
    let e = env();
    let mut anon = Browser::new(&e);
    let r = anon.get("/simulate").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(r.location().starts_with("/login"));
    let r = anon
        .post(
            "/simulate",
            &[("csrf", "x"), ("scenario", SMALL), ("candidate", "none")],
        )
        .await;
    assert!(
        !r.location().starts_with("/simulate/jobs/"),
        "{}",
        r.location()
    );
    assert_ne!(r.status, StatusCode::OK);
    assert_eq!(
        anon.get("/simulate/jobs/x/placed.csv").await.status,
        StatusCode::SEE_OTHER
    );
}
