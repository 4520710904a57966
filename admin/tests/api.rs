//! The JSON API, in process: every endpoint, role and error code; recall through the API
//! restores the position; rule impact; the console's bounds; the OpenAPI document;
//! concurrent readers and writers. And `kezek serve` as a process: first start, the
//! admin password, a token made while it runs, and the store lock.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command as Process, Stdio};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use jiff::Timestamp;
use kezek_admin::web::{self, App, Limits, Role};
use kezek_engine::demo::{self, Scale};
use kezek_engine::{view, Actor, AppNo, ClockMode, RuleSet, Store};
use serde_json::{json, Value};
use tower::ServiceExt;

struct Env {
    _dir: tempfile::TempDir,
    app: App,
    router: Router,
    viewer: String,
    operator: String,
    admin: String,
}

fn now() -> Timestamp {
    "2026-12-02T04:00:00Z".parse().unwrap()
}

fn env() -> Env {
    env_with(Limits::default())
}

fn env_with(limits: Limits) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data");
    let mut store = Store::init(
        &path,
        &RuleSet::default_files(),
        ClockMode::Manual,
        now(),
        Actor::System,
    )
    .unwrap();
    demo::build(&mut store, 1, Scale::Small, now()).unwrap();
    let app = App::new(store, limits).unwrap();
    let mut tokens = Vec::new();
    for (name, role) in [
        ("vera", Role::Viewer),
        ("oleg", Role::Operator),
        ("rita", Role::RulesAdmin),
    ] {
        app.accounts()
            .add_user(name, role, "a long enough password")
            .unwrap();
        tokens.push(app.accounts().issue_token(name).unwrap());
    }
    let router = web::router(app.clone());
    let admin = tokens.pop().unwrap();
    let operator = tokens.pop().unwrap();
    let viewer = tokens.pop().unwrap();
    Env {
        _dir: dir,
        app,
        router,
        viewer,
        operator,
        admin,
    }
}

/// One request through the router; the JSON body (or `null`).
async fn raw(
    router: &Router,
    method: &str,
    uri: &str,
    token: Option<&str>,
    body: Body,
) -> (StatusCode, Value) {
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json");
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let res = router
        .clone()
        .oneshot(req.body(body).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let ct = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let bytes = axum::body::to_bytes(res.into_body(), 64 << 20)
        .await
        .unwrap();
    let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if !bytes.is_empty() {
        assert!(
            ct.starts_with("application/json"),
            "{method} {uri}: content-type {ct}"
        );
    }
    (status, v)
}

async fn call(
    e: &Env,
    method: &str,
    uri: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
    raw(&e.router, method, uri, token, body).await
}

async fn get(e: &Env, uri: &str, token: &str) -> (StatusCode, Value) {
    call(e, "GET", uri, Some(token), None).await
}

async fn post(e: &Env, uri: &str, token: &str, body: Value) -> (StatusCode, Value) {
    call(e, "POST", uri, Some(token), Some(body)).await
}

/// Asserts an error response: status, code, a message.
#[track_caller]
fn is_error(r: &(StatusCode, Value), status: StatusCode, code: &str) {
    assert_eq!(r.0, status, "{}", r.1);
    assert_eq!(r.1["error"]["code"], code, "{}", r.1);
    assert!(
        r.1["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{}",
        r.1
    );
}

fn first_cohort(e: &Env) -> i32 {
    e.app.store().read().unwrap().state().cohorts()[0]
}

fn first_in_queue(e: &Env, cohort: i32) -> String {
    let s = e.app.store();
    let s = s.read().unwrap();
    view::queue_page(s.state(), cohort, None, 1, 1).items[0]
        .id
        .clone()
}

fn digest(e: &Env) -> [u8; 32] {
    e.app.store().read().unwrap().state().digest()
}

/// A waiting application that may take a place now, and the publication.
async fn takeable(e: &Env) -> (String, u64) {
    let cohorts = e.app.store().read().unwrap().state().cohorts();
    for c in cohorts {
        let (_, page) = get(e, &format!("/api/queues/{c}?limit=60"), &e.viewer).await;
        for item in page["items"].as_array().unwrap() {
            let id = item["id"].as_str().unwrap();
            let (st, offers) = get(e, &format!("/api/applications/{id}/offers"), &e.viewer).await;
            assert_eq!(st, StatusCode::OK);
            if let Some(o) = offers.as_array().unwrap().first() {
                return (id.to_string(), o["publication"].as_u64().unwrap());
            }
        }
    }
    panic!("no application may take a place in the demo city");
}

#[tokio::test]
async fn health_needs_no_login_everything_else_does() {
    let e = env();
    let r = call(&e, "GET", "/api/health", None, None).await;
    assert_eq!(r, (StatusCode::OK, json!({"status": "ok"})));
    let id = first_in_queue(&e, first_cohort(&e));
    for uri in [
        format!("/api/applications/{id}"),
        "/api/queues/2021".to_string(),
        "/api/openapi.json".to_string(),
        "/api/me".to_string(),
        "/api/rules".to_string(),
        "/api/publications".to_string(),
    ] {
        is_error(
            &call(&e, "GET", &uri, None, None).await,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        );
        is_error(
            &call(&e, "GET", &uri, Some("kz_0000"), None).await,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        );
    }
    // Not a bearer scheme.
    let mut req = Request::builder()
        .uri("/api/me")
        .header("authorization", format!("Basic {}", e.viewer));
    req = req.header("x", "y");
    let res = e
        .router
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(res.headers().get("www-authenticate").is_some());
    // The scheme is case-insensitive.
    let req = Request::builder()
        .uri("/api/me")
        .header("authorization", format!("bearer {}", e.viewer));
    let res = e
        .router
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let r = get(&e, "/api/me", &e.operator).await;
    assert_eq!(r.1, json!({"name": "oleg", "role": "operator"}));
}

#[tokio::test]
async fn the_card_is_the_cli_json_and_errors_are_json() {
    let e = env();
    let id = first_in_queue(&e, first_cohort(&e));
    let (st, card) = get(&e, &format!("/api/applications/{id}"), &e.viewer).await;
    assert_eq!(st, StatusCode::OK);
    let expected = {
        let s = e.app.store();
        let s = s.read().unwrap();
        serde_json::to_value(view::card(&s, id.parse().unwrap()).unwrap()).unwrap()
    };
    assert_eq!(card, expected);
    assert_eq!(card["queue_position"], 1);
    assert!(!card["history"].as_array().unwrap().is_empty());

    is_error(
        &get(&e, "/api/applications/UO.2020.1.1", &e.viewer).await,
        StatusCode::NOT_FOUND,
        "unknown_application",
    );
    is_error(
        &get(&e, "/api/applications/nonsense", &e.viewer).await,
        StatusCode::BAD_REQUEST,
        "invalid_application_number",
    );
    let (st, ex) = get(&e, &format!("/api/applications/{id}/explain"), &e.viewer).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(ex["queue_position"], 1);
    // Routing errors are JSON too.
    is_error(
        &get(&e, "/api/nothing-here", &e.viewer).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    is_error(
        &get(&e, "/api/rules/check", &e.viewer).await,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    );
}

#[tokio::test]
async fn queue_pages_in_order_with_limits() {
    let e = env();
    let c = first_cohort(&e);
    let total = e
        .app
        .store()
        .read()
        .unwrap()
        .state()
        .queue(c)
        .unwrap()
        .len() as u64;
    let (st, page) = get(&e, &format!("/api/queues/{c}?from=3&limit=5"), &e.viewer).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(page["total"], total);
    let pos: Vec<u64> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["queue_position"].as_u64().unwrap())
        .collect();
    assert_eq!(pos, vec![3, 4, 5, 6, 7]);
    let (_, all) = get(&e, &format!("/api/queues/{c}?limit=1000"), &e.viewer).await;
    assert_eq!(
        all["items"].as_array().unwrap().len() as u64,
        total.min(1000)
    );
    let (_, cat) = get(
        &e,
        &format!("/api/queues/{c}?category=general&limit=3"),
        &e.viewer,
    )
    .await;
    for i in cat["items"].as_array().unwrap() {
        assert_eq!(i["category"], "general");
    }
    let (_, none) = get(&e, "/api/queues/1950", &e.viewer).await;
    assert_eq!(none, json!({"total": 0, "items": []}));
    for q in ["limit=1001", "limit=0", "from=0", "from=abc", "limit=-1"] {
        is_error(
            &get(&e, &format!("/api/queues/{c}?{q}"), &e.viewer).await,
            StatusCode::BAD_REQUEST,
            "invalid_query",
        );
    }
    is_error(
        &get(&e, "/api/queues/abc", &e.viewer).await,
        StatusCode::BAD_REQUEST,
        "invalid_cohort",
    );
}

#[tokio::test]
async fn a_viewer_changes_nothing_and_roles_are_checked() {
    let e = env();
    let id = first_in_queue(&e, first_cohort(&e));
    let files = RuleSet::default_files();
    let before = digest(&e);
    let changes = [
        (
            format!("/api/applications/{id}/recall"),
            json!({"reason": "x"}),
        ),
        (
            format!("/api/applications/{id}/take"),
            json!({"publication": 1}),
        ),
        (format!("/api/applications/{id}/extend"), json!({})),
        (format!("/api/applications/{id}/enroll"), json!({})),
        (
            format!("/api/applications/{id}/withdraw"),
            json!({"reason": "x"}),
        ),
        (
            format!("/api/applications/{id}/cancel-benefit"),
            json!({"reason": "x"}),
        ),
        (
            format!("/api/applications/{id}/change-category"),
            json!({"category": "teacher", "reason": "x"}),
        ),
        (
            "/api/publications".to_string(),
            json!({"kindergarten": "DDO-0001", "cohort": 2021, "language": "kk", "places": 1}),
        ),
        (
            "/api/rules/activate".to_string(),
            json!({"files": files, "reason": "x"}),
        ),
    ];
    for (uri, body) in &changes {
        is_error(
            &post(&e, uri, &e.viewer, body.clone()).await,
            StatusCode::FORBIDDEN,
            "forbidden",
        );
        is_error(
            &call(&e, "POST", uri, None, Some(body.clone())).await,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        );
        // The role is checked before the body is read.
        is_error(
            &call(&e, "POST", uri, Some(&e.viewer), Some(json!("garbage"))).await,
            StatusCode::FORBIDDEN,
            "forbidden",
        );
    }
    // An operator may not activate rules.
    is_error(
        &post(
            &e,
            "/api/rules/activate",
            &e.operator,
            json!({"files": files, "reason": "x"}),
        )
        .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    assert_eq!(digest(&e), before);
    // Reads that change nothing are open to a viewer.
    assert_eq!(
        post(&e, "/api/rules/check", &e.viewer, json!({"files": files}))
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        post(&e, "/api/console", &e.viewer, json!({"script": "1 + 1"}))
            .await
            .1["result"],
        2
    );
}

#[tokio::test]
async fn take_then_recall_through_the_api_restores_the_position() {
    let e = env();
    let (id, publication) = takeable(&e).await;
    let uri = |what: &str| format!("/api/applications/{id}/{what}");
    let (_, before) = get(&e, &format!("/api/applications/{id}"), &e.viewer).await;
    let position = before["queue_position"].as_u64().unwrap();
    let category_position = before["category_position"].clone();

    // Errors first: none of them changes anything.
    let d0 = digest(&e);
    is_error(
        &post(&e, &uri("recall"), &e.operator, json!({"reason": "x"})).await,
        StatusCode::CONFLICT,
        "no_active_referral",
    );
    is_error(
        &post(
            &e,
            &uri("take"),
            &e.operator,
            json!({"publication": 999_999}),
        )
        .await,
        StatusCode::NOT_FOUND,
        "unknown_publication",
    );
    is_error(
        &post(&e, &uri("take"), &e.operator, json!({})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_body",
    );
    is_error(
        &post(
            &e,
            &uri("take"),
            &e.operator,
            json!({"publication": 1, "extra": 1}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_body",
    );
    is_error(
        &call(&e, "POST", &uri("take"), Some(&e.operator), None).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_body",
    );
    is_error(
        &raw(
            &e.router,
            "POST",
            &uri("take"),
            Some(&e.operator),
            Body::from("{not json"),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_json",
    );
    is_error(
        &post(
            &e,
            "/api/applications/UO.2020.1.1/take",
            &e.operator,
            json!({"publication": publication}),
        )
        .await,
        StatusCode::NOT_FOUND,
        "unknown_application",
    );
    is_error(
        &post(&e, &uri("withdraw"), &e.operator, json!({})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "reason_required",
    );
    is_error(
        &post(&e, &uri("extend"), &e.operator, json!({})).await,
        StatusCode::CONFLICT,
        "no_active_referral",
    );
    is_error(
        &post(&e, &uri("enroll"), &e.operator, json!({})).await,
        StatusCode::CONFLICT,
        "no_active_referral",
    );
    assert_eq!(digest(&e), d0);

    let (st, taken) = post(
        &e,
        &uri("take"),
        &e.operator,
        json!({"publication": publication}),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{taken}");
    assert_eq!(taken["status"], "referral_issued");
    assert!(taken["queue_position"].is_null());
    assert_eq!(taken["referral"]["publication"], publication);
    assert_eq!(
        taken["history"].as_array().unwrap().last().unwrap()["actor"],
        "operator:oleg"
    );
    is_error(
        &post(
            &e,
            &uri("take"),
            &e.operator,
            json!({"publication": publication}),
        )
        .await,
        StatusCode::CONFLICT,
        "wrong_status",
    );

    is_error(
        &post(&e, &uri("recall"), &e.operator, json!({})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "reason_required",
    );
    is_error(
        &post(&e, &uri("recall"), &e.operator, json!({"reason": "  "})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "reason_required",
    );
    let (st, back) = post(
        &e,
        &uri("recall"),
        &e.operator,
        json!({"reason": "the parent refused the place"}),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{back}");
    assert_eq!(back["status"], "queued");
    assert_eq!(back["queue_position"].as_u64(), Some(position));
    assert_eq!(back["category_position"], category_position);
    assert!(back["locked_until"].is_string());
    let last = back["history"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|h| h["event"] != "lock_applied")
        .unwrap()
        .clone();
    assert_eq!(last["reason"], "the parent refused the place");
    is_error(
        &post(&e, &uri("recall"), &e.operator, json!({"reason": "again"})).await,
        StatusCode::CONFLICT,
        "no_active_referral",
    );

    // Extend once (on another takeable application), then the second is refused.
    let (id2, pub2) = takeable(&e).await;
    let uri2 = |what: &str| format!("/api/applications/{id2}/{what}");
    assert_eq!(
        post(&e, &uri2("take"), &e.operator, json!({"publication": pub2}))
            .await
            .0,
        StatusCode::OK
    );
    let (st, ext) = post(&e, &uri2("extend"), &e.operator, json!({})).await;
    assert_eq!(st, StatusCode::OK, "{ext}");
    assert_eq!(ext["referral"]["extended"], true);
    is_error(
        &post(&e, &uri2("extend"), &e.operator, json!({})).await,
        StatusCode::CONFLICT,
        "already_extended",
    );
    let (st, enr) = call(&e, "POST", &uri2("enroll"), Some(&e.operator), None).await;
    assert_eq!(st, StatusCode::OK, "{enr}");
    assert_eq!(enr["status"], "enrolled");
    is_error(
        &post(
            &e,
            &uri2("withdraw"),
            &e.operator,
            json!({"reason": "moved"}),
        )
        .await,
        StatusCode::CONFLICT,
        "wrong_status",
    );

    // Withdraw, change category, cancel a benefit.
    let c = first_cohort(&e);
    let (_, page) = get(&e, &format!("/api/queues/{c}?limit=200"), &e.viewer).await;
    let items = page["items"].as_array().unwrap();
    let general = items
        .iter()
        .find(|i| i["category"] == "general" && i["status"] == "queued")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    is_error(
        &post(
            &e,
            &format!("/api/applications/{general}/cancel-benefit"),
            &e.operator,
            json!({"reason": "x"}),
        )
        .await,
        StatusCode::CONFLICT,
        "no_benefit",
    );
    is_error(
        &post(
            &e,
            &format!("/api/applications/{general}/change-category"),
            &e.operator,
            json!({"category": "astronaut", "reason": "x"}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unknown_category",
    );
    let (st, cc) = post(
        &e,
        &format!("/api/applications/{general}/change-category"),
        &e.operator,
        json!({"category": "teacher", "reason": "certificate"}),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{cc}");
    assert_eq!(cc["category"], "teacher");
    let (st, cb) = post(
        &e,
        &format!("/api/applications/{general}/cancel-benefit"),
        &e.operator,
        json!({"reason": "not confirmed"}),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{cb}");
    assert_eq!(cb["category"], "general");
    let (st, w) = post(
        &e,
        &format!("/api/applications/{general}/withdraw"),
        &e.operator,
        json!({"reason": "moved away"}),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{w}");
    assert_eq!(w["status"], "withdrawn");

    let s = e.app.store();
    let s = s.read().unwrap();
    s.state().check_invariants().unwrap();
    assert!(s.verify().unwrap().ok());
}

#[tokio::test]
async fn publications_are_published_and_listed() {
    let e = env();
    let (kg, cohort, lang, free) = {
        let s = e.app.store();
        let s = s.read().unwrap();
        s.state()
            .data
            .kindergartens
            .values()
            .flat_map(|k| {
                k.groups.iter().map(move |g| {
                    (
                        k.id.clone(),
                        g.cohort,
                        g.language.code().to_string(),
                        g.capacity - g.published,
                    )
                })
            })
            .find(|g| g.3 >= 2)
            .unwrap()
    };
    let body = |places: u32| json!({"kindergarten": kg, "cohort": cohort, "language": lang, "places": places});
    let (st, p) = post(&e, "/api/publications", &e.operator, body(1)).await;
    assert_eq!(st, StatusCode::CREATED, "{p}");
    assert_eq!(
        (
            p["places"].clone(),
            p["places_left"].clone(),
            p["phase"].clone()
        ),
        (json!(1), json!(1), json!("priority"))
    );
    let (st, list) = get(&e, "/api/publications", &e.viewer).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(list[0]["id"], p["id"]);
    is_error(
        &post(&e, "/api/publications", &e.operator, body(free + 5)).await,
        StatusCode::CONFLICT,
        "not_enough_capacity",
    );
    is_error(
        &post(&e, "/api/publications", &e.operator, body(0)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_input",
    );
    is_error(
        &post(
            &e,
            "/api/publications",
            &e.operator,
            json!({"kindergarten": "DDO-9999", "cohort": cohort, "language": lang, "places": 1}),
        )
        .await,
        StatusCode::NOT_FOUND,
        "unknown_kindergarten",
    );
    is_error(
        &post(
            &e,
            "/api/publications",
            &e.operator,
            json!({"kindergarten": kg, "cohort": cohort, "language": "en", "places": 1}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_language",
    );
    is_error(
        &post(
            &e,
            "/api/publications",
            &e.operator,
            json!({"kindergarten": kg, "cohort": cohort, "language": lang}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_body",
    );
    is_error(
        &post(
            &e,
            "/api/publications",
            &e.operator,
            json!({"kindergarten": kg, "cohort": "x", "language": lang, "places": 1}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_body",
    );
}

fn swapped_rules() -> BTreeMap<String, String> {
    // Swap the ranks of large_family (4) and orphan (5).
    let mut files = RuleSet::default_files();
    let cats = files["categories.rhai"]
        .replace("rank: 4,", "rank: 40,")
        .replace("rank: 5,", "rank: 4,")
        .replace("rank: 40,", "rank: 5,");
    files.insert("categories.rhai".into(), cats);
    files
}

#[tokio::test]
async fn rules_check_impact_and_activate() {
    let e = env();
    let files = RuleSet::default_files();
    let (st, ok) = post(&e, "/api/rules/check", &e.viewer, json!({"files": files})).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        (ok["ok"].clone(), ok["active"].clone()),
        (json!(true), json!(true))
    );

    let mut broken = files.clone();
    broken.insert(
        "order.rhai".into(),
        "fn order_key(app) {\n  [app.category_rank,\n}\nfn cohort(app) { app.birth_year }\n".into(),
    );
    for uri in ["/api/rules/check", "/api/rules/impact"] {
        let r = post(&e, uri, &e.viewer, json!({"files": broken})).await;
        is_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "rules_invalid");
        assert_eq!(r.1["error"]["file"], "order.rhai");
        assert!(
            r.1["error"]["line"]
                .as_u64()
                .is_some_and(|l| (2..=3).contains(&l)),
            "{}",
            r.1
        );
    }
    let mut missing = files.clone();
    missing.remove("phases.rhai");
    let r = post(&e, "/api/rules/check", &e.viewer, json!({"files": missing})).await;
    is_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "rules_invalid");
    assert_eq!(r.1["error"]["file"], "phases.rhai");
    is_error(
        &post(&e, "/api/rules/check", &e.viewer, json!({"files": "x"})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_body",
    );

    // The same rules move nobody.
    let (st, same) = post(&e, "/api/rules/impact", &e.viewer, json!({"files": files})).await;
    assert_eq!(st, StatusCode::OK, "{same}");
    assert_eq!(
        (
            same["moved"].clone(),
            same["up"].clone(),
            same["down"].clone(),
            same["max_move"].clone()
        ),
        (json!(0), json!(0), json!(0), json!(0))
    );
    assert_eq!(same["changes"], json!([]));

    // Swapping two category ranks moves both categories, and nobody else.
    let before = digest(&e);
    let swapped = swapped_rules();
    let (st, imp) = post(
        &e,
        "/api/rules/impact",
        &e.viewer,
        json!({"files": swapped}),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{imp}");
    let moved = imp["moved"].as_u64().unwrap();
    assert!(
        moved > 0 && imp["up"].as_u64().unwrap() > 0 && imp["down"].as_u64().unwrap() > 0,
        "{imp}"
    );
    assert_eq!(
        moved,
        imp["up"].as_u64().unwrap() + imp["down"].as_u64().unwrap()
    );
    let changes = imp["changes"].as_array().unwrap();
    assert_eq!(changes.len() as u64, moved.min(1000));
    let dist = |c: &Value| {
        c["old"]
            .as_u64()
            .unwrap()
            .abs_diff(c["new"].as_u64().unwrap())
    };
    assert_eq!(dist(&changes[0]), imp["max_move"].as_u64().unwrap());
    assert!(changes.windows(2).all(|w| dist(&w[0]) >= dist(&w[1])));
    {
        let s = e.app.store();
        let s = s.read().unwrap();
        for c in changes {
            let a = s
                .state()
                .app(c["id"].as_str().unwrap().parse::<AppNo>().unwrap())
                .unwrap();
            assert!(
                a.category == "orphan" || a.category == "large_family",
                "{c}"
            );
            assert_eq!(s.state().queue_position(a), c["old"].as_u64());
        }
    }
    // Paging and search of the changes; the counts stay whole.
    let some = changes[1]["id"].as_str().unwrap().to_string();
    let (_, paged) = post(
        &e,
        "/api/rules/impact",
        &e.viewer,
        json!({"files": swapped, "offset": 1, "limit": 2}),
    )
    .await;
    assert_eq!(paged["changes"].as_array().unwrap().len(), 2);
    assert_eq!(paged["changes"][0], changes[1]);
    assert_eq!(paged["moved"], imp["moved"]);
    let (_, found) = post(
        &e,
        "/api/rules/impact",
        &e.viewer,
        json!({"files": swapped, "search": some}),
    )
    .await;
    assert_eq!(found["changes_matching"], 1);
    assert_eq!(found["changes"][0]["id"], some.as_str());
    is_error(
        &post(
            &e,
            "/api/rules/impact",
            &e.viewer,
            json!({"files": swapped, "limit": 5000}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_body",
    );
    assert_eq!(digest(&e), before, "impact changed the state");

    // A candidate without a category in use is refused, as activation would be.
    let mut dropped = files.clone();
    dropped.insert(
        "categories.rhai".into(),
        files["categories.rhai"].replace("code: \"teacher\"", "code: \"teachers\""),
    );
    is_error(
        &post(
            &e,
            "/api/rules/impact",
            &e.viewer,
            json!({"files": dropped}),
        )
        .await,
        StatusCode::CONFLICT,
        "category_in_use",
    );

    // Activate: rules_admin only, with a reason; the impact then is nothing.
    is_error(
        &post(
            &e,
            "/api/rules/activate",
            &e.admin,
            json!({"files": swapped}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_body",
    );
    is_error(
        &post(
            &e,
            "/api/rules/activate",
            &e.admin,
            json!({"files": swapped, "reason": ""}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "reason_required",
    );
    is_error(
        &post(
            &e,
            "/api/rules/activate",
            &e.admin,
            json!({"files": broken, "reason": "x"}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "rules_invalid",
    );
    let (st, act) = post(
        &e,
        "/api/rules/activate",
        &e.admin,
        json!({"files": swapped, "reason": "orphans first"}),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{act}");
    assert_eq!(act["version"], 2);
    assert_eq!(act["actor"], "operator:rita");
    let (_, moved_card) = get(
        &e,
        &format!("/api/applications/{}", changes[0]["id"].as_str().unwrap()),
        &e.viewer,
    )
    .await;
    assert_eq!(moved_card["queue_position"], changes[0]["new"]);
    is_error(
        &post(
            &e,
            "/api/rules/activate",
            &e.admin,
            json!({"files": swapped, "reason": "again"}),
        )
        .await,
        StatusCode::CONFLICT,
        "no_change",
    );
    let (_, after) = post(
        &e,
        "/api/rules/impact",
        &e.viewer,
        json!({"files": swapped}),
    )
    .await;
    assert_eq!(after["moved"], 0);
    assert_eq!(after["identical"], true);

    let (st, shown) = get(&e, "/api/rules", &e.viewer).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(shown["version"], 2);
    assert_eq!(shown["history"].as_array().unwrap().len(), 2);
    assert_eq!(shown["history"][1]["reason"], "orphans first");
    let (st, v1) = get(&e, "/api/rules/versions/1", &e.viewer).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v1["files"], json!(files));
    is_error(
        &get(&e, "/api/rules/versions/99", &e.viewer).await,
        StatusCode::NOT_FOUND,
        "unknown_version",
    );
    is_error(
        &get(&e, "/api/rules/versions/x", &e.viewer).await,
        StatusCode::BAD_REQUEST,
        "invalid_version",
    );
    // Roll back: activate version 1's files again.
    let (st, rb) = post(
        &e,
        "/api/rules/activate",
        &e.admin,
        json!({"files": v1["files"], "reason": "roll back"}),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{rb}");
    assert_eq!(rb["version"], 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_answers_is_bounded_and_changes_nothing() {
    let e = env();
    let c = first_cohort(&e);
    let first = first_in_queue(&e, c);
    let before = digest(&e);

    let (st, r) = post(&e, "/api/console", &e.viewer, json!({"script": format!(
        "let q = queue({c}, 1, 5); let out = []; for a in q {{ out.push(#{{id: a.id, position: a.queue_position, category: a.category}}); }} print(`cohort {c}`); out"
    )})).await;
    assert_eq!(st, StatusCode::OK, "{r}");
    let rows = r["result"].as_array().unwrap();
    assert_eq!(rows.len(), 5);
    assert_eq!(rows[0]["id"], first.as_str());
    assert_eq!(rows[0]["position"], 1);
    assert_eq!(r["output"], json!([format!("cohort {c}")]));
    let (_, r) = post(&e, "/api/console", &e.viewer, json!({"script": format!(
        "[count({c}), position(\"{first}\"), app(\"{first}\").status, cohorts().len() > 0, categories()[0].code, publications().len() > 0, count_category({c}, \"general\") > 0]"
    )})).await;
    assert_eq!(
        r["result"],
        json!([
            e.app
                .store()
                .read()
                .unwrap()
                .state()
                .queue(c)
                .unwrap()
                .len(),
            1,
            "queued",
            true,
            "military",
            true,
            true
        ])
    );

    // A script that never ends: an error within a few seconds, and the server keeps serving.
    let started = Instant::now();
    let looping = post(&e, "/api/console", &e.viewer, json!({"script": "loop {}"}));
    let health = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let t = Instant::now();
        let h = call(&e, "GET", "/api/health", None, None).await;
        let card = get(&e, &format!("/api/applications/{first}"), &e.viewer).await;
        (h, card.0, t.elapsed())
    };
    let (r, (h, card_status, health_took)) = tokio::join!(looping, health);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        r.1["error"]["code"] == "console_time_limit"
            || r.1["error"]["code"] == "console_operation_limit",
        "{}",
        r.1
    );
    assert_eq!(r.0, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(h.0, StatusCode::OK);
    assert_eq!(card_status, StatusCode::OK);
    assert!(health_took < Duration::from_secs(1), "{health_took:?}");

    is_error(
        &post(
            &e,
            "/api/console",
            &e.viewer,
            json!({"script": "eval(\"1\")"}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "console_syntax",
    );
    let r = post(
        &e,
        "/api/console",
        &e.viewer,
        json!({"script": "let x = 1;\nx +* 2"}),
    )
    .await;
    is_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "console_syntax");
    assert!(
        r.1["error"]["message"].as_str().unwrap().contains("line 2"),
        "{}",
        r.1
    );
    let r = post(
        &e,
        "/api/console",
        &e.viewer,
        json!({"script": "let x = 1;\nthrow \"no\""}),
    )
    .await;
    is_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "console_error");
    is_error(
        &post(
            &e,
            "/api/console",
            &e.viewer,
            json!({"script": "queue(2021, 1, 1001)"}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "console_error",
    );
    is_error(
        &post(
            &e,
            "/api/console",
            &e.viewer,
            json!({"script": "let a = []; for i in 0..20000 { a.push(i) } a"}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "console_data_limit",
    );
    is_error(
        &post(
            &e,
            "/api/console",
            &e.viewer,
            json!({"script": "let s = \"x\"; for i in 0..40 { s += s } s"}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "console_data_limit",
    );
    is_error(
        &post(&e, "/api/console", &e.viewer, json!({"script": format!("let a = []; for i in 0..20 {{ a.push(queue({c}, 1, 1000)) }} a")})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "console_data_limit",
    );
    is_error(
        &post(&e, "/api/console", &e.viewer, json!({"script": format!("let a = []; for i in 0..9 {{ a.push(queue({c}, 1, 1000)) }} a")})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "console_output_too_large",
    );
    is_error(
        &post(
            &e,
            "/api/console",
            &e.viewer,
            json!({"script": "1;".repeat(40_000)}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "console_script_too_large",
    );
    is_error(
        &post(&e, "/api/console", &e.viewer, json!({"script": 5})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_body",
    );

    // Trying to change state: there is no function for it; what a script holds are copies.
    for script in [
        format!("let a = app(\"{first}\"); a.status = \"withdrawn\"; a.queue_position = 999; a"),
        format!("let q = queue({c}, 1, 10); q.clear(); q"),
        format!("recall(\"{first}\")"),
        format!("withdraw(\"{first}\", \"x\")"),
        "let p = publications(); p[0].places_left = 0; p[0]".to_string(),
    ] {
        let _ = post(&e, "/api/console", &e.operator, json!({"script": script})).await;
    }
    assert_eq!(digest(&e), before);
    let (_, card) = get(&e, &format!("/api/applications/{first}"), &e.viewer).await;
    assert_eq!(card["status"], "queued");
    assert_eq!(card["queue_position"], 1);

    // Every run is in the audit log.
    let audit = e.app.audit().recent(100);
    assert!(audit.len() >= 15, "{}", audit.len());
    assert!(audit.iter().all(|a| a.action == "console"));
    assert!(audit
        .iter()
        .any(|a| a.outcome == "console_time_limit" || a.outcome == "console_operation_limit"));
    assert!(audit
        .iter()
        .any(|a| a.outcome == "ok" && a.actor == "operator:vera"));
    assert!(audit[0].detail["script_sha256"].as_str().unwrap().len() == 64);
    assert!(audit
        .iter()
        .all(|a| a.detail["script_head"].as_str().unwrap().chars().count() <= 200));

    let (st, help) = get(&e, "/api/console", &e.viewer).await;
    assert_eq!(st, StatusCode::OK);
    assert!(help["functions"].as_array().unwrap().len() >= 8);
}

#[tokio::test]
async fn limits_on_bodies() {
    let e = env();
    let big = format!("{{\"script\": \"{}\"}}", "x".repeat(2 << 20));
    let r = raw(
        &e.router,
        "POST",
        "/api/console",
        Some(&e.viewer),
        Body::from(big),
    )
    .await;
    is_error(&r, StatusCode::PAYLOAD_TOO_LARGE, "too_large");
    // The same without a length up front (streamed).
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..40).map(|_| Ok(vec![b' '; 64 * 1024])).collect();
    let body = Body::from_stream(futures_util::stream::iter(chunks));
    let r = raw(&e.router, "POST", "/api/console", Some(&e.viewer), body).await;
    is_error(&r, StatusCode::PAYLOAD_TOO_LARGE, "too_large");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_over_the_time_limit_is_a_json_408() {
    let e = env_with(Limits {
        request_timeout: Duration::from_millis(300),
        console: kezek_engine::console::Limits {
            max_operations: 0,
            max_time: Duration::from_secs(3),
            ..Default::default()
        },
        ..Limits::default()
    });
    let started = Instant::now();
    let r = post(&e, "/api/console", &e.viewer, json!({"script": "loop {}"})).await;
    is_error(&r, StatusCode::REQUEST_TIMEOUT, "timeout");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    // The ticker runs beside the requests (a manual clock: nothing falls due).
    let ticker = web::spawn_ticker(e.app.clone());
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(get(&e, "/api/me", &e.viewer).await.0, StatusCode::OK);
    assert_eq!(e.app.advance_due().unwrap(), 0);
    ticker.abort();
}

#[tokio::test]
async fn openapi_lists_every_path_and_the_card_schema_matches() {
    let e = env();
    is_error(
        &call(&e, "GET", "/api/openapi.json", None, None).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    let (st, doc) = get(&e, "/api/openapi.json", &e.viewer).await;
    assert_eq!(st, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let expected: &[(&str, &[&str])] = &[
        ("/api/health", &["get"]),
        ("/api/me", &["get"]),
        ("/api/openapi.json", &["get"]),
        ("/api/applications/{id}", &["get"]),
        ("/api/applications/{id}/explain", &["get"]),
        ("/api/applications/{id}/offers", &["get"]),
        ("/api/applications/{id}/recall", &["post"]),
        ("/api/applications/{id}/take", &["post"]),
        ("/api/applications/{id}/extend", &["post"]),
        ("/api/applications/{id}/enroll", &["post"]),
        ("/api/applications/{id}/withdraw", &["post"]),
        ("/api/applications/{id}/cancel-benefit", &["post"]),
        ("/api/applications/{id}/change-category", &["post"]),
        ("/api/queues/{cohort}", &["get"]),
        ("/api/publications", &["get", "post"]),
        ("/api/rules", &["get"]),
        ("/api/rules/versions/{version}", &["get"]),
        ("/api/rules/check", &["post"]),
        ("/api/rules/impact", &["post"]),
        ("/api/rules/activate", &["post"]),
        ("/api/console", &["get", "post"]),
        ("/api/applications/{id}/applicant", &["post"]),
        ("/api/citizen/challenge", &["post"]),
        ("/api/citizen/login", &["post"]),
        ("/api/citizen/email", &["post"]),
        ("/api/citizen/me", &["get"]),
        ("/api/citizen/applications", &["get"]),
        ("/api/citizen/applications/{id}", &["get"]),
        ("/api/citizen/applications/{id}/recall/document", &["post"]),
        ("/api/citizen/applications/{id}/recall", &["post"]),
        ("/api/citizen/applications/{id}/extend/document", &["post"]),
        ("/api/citizen/applications/{id}/extend", &["post"]),
    ];
    let paths = doc["paths"].as_object().unwrap();
    assert_eq!(
        paths.len(),
        expected.len(),
        "{:?}",
        paths.keys().collect::<Vec<_>>()
    );
    for (path, methods) in expected {
        for m in *methods {
            assert!(paths[*path][*m].is_object(), "{m} {path} missing");
        }
    }
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    // The documented card has exactly the fields of the real card.
    let id = first_in_queue(&e, first_cohort(&e));
    let (_, card) = get(&e, &format!("/api/applications/{id}"), &e.viewer).await;
    let mut real: Vec<&String> = card.as_object().unwrap().keys().collect();
    let mut documented: Vec<&String> = doc["components"]["schemas"]["Card"]["properties"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    real.sort();
    documented.sort();
    assert_eq!(real, documented);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_readers_and_writers_keep_the_invariants() {
    let e = env();
    // Candidates for take/recall: the applications with offers now.
    let mut pairs = Vec::new();
    let cohorts = e.app.store().read().unwrap().state().cohorts();
    for c in cohorts {
        let (_, page) = get(&e, &format!("/api/queues/{c}?limit=30"), &e.viewer).await;
        for item in page["items"].as_array().unwrap() {
            let id = item["id"].as_str().unwrap().to_string();
            let (_, offers) = get(&e, &format!("/api/applications/{id}/offers"), &e.viewer).await;
            if let Some(o) = offers.as_array().unwrap().first() {
                pairs.push((id, o["publication"].as_u64().unwrap()));
            }
        }
    }
    assert!(!pairs.is_empty());
    let ids: Vec<String> = {
        let s = e.app.store();
        let s = s.read().unwrap();
        s.state()
            .data
            .apps
            .keys()
            .take(300)
            .map(|a| a.to_string())
            .collect()
    };
    let started = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..16usize {
        let router = e.router.clone();
        let (viewer, operator) = (e.viewer.clone(), e.operator.clone());
        let pairs = pairs.clone();
        let ids = ids.clone();
        tasks.push(tokio::spawn(async move {
            let mut statuses = Vec::new();
            for i in 0..20usize {
                let k = t * 20 + i;
                let r = match k % 4 {
                    0 => {
                        raw(
                            &router,
                            "GET",
                            &format!("/api/applications/{}", ids[k % ids.len()]),
                            Some(&viewer),
                            Body::empty(),
                        )
                        .await
                    }
                    1 => {
                        raw(
                            &router,
                            "GET",
                            &format!(
                                "/api/queues/{}?from={}&limit=50",
                                2020 + (k % 6),
                                1 + k % 40
                            ),
                            Some(&viewer),
                            Body::empty(),
                        )
                        .await
                    }
                    2 => {
                        let (id, p) = &pairs[k % pairs.len()];
                        let body = json!({"publication": p}).to_string();
                        raw(
                            &router,
                            "POST",
                            &format!("/api/applications/{id}/take"),
                            Some(&operator),
                            Body::from(body),
                        )
                        .await
                    }
                    _ => {
                        let (id, _) = &pairs[(k - 1) % pairs.len()];
                        let body = json!({"reason": "concurrency test"}).to_string();
                        raw(
                            &router,
                            "POST",
                            &format!("/api/applications/{id}/recall"),
                            Some(&operator),
                            Body::from(body),
                        )
                        .await
                    }
                };
                statuses.push((k % 4, r.0, r.1));
            }
            statuses
        }));
    }
    let mut ok_writes = 0;
    for t in tasks {
        for (kind, status, body) in t.await.unwrap() {
            match kind {
                0 | 1 => assert_eq!(status, StatusCode::OK, "{body}"),
                _ => {
                    assert!(
                        status == StatusCode::OK || status == StatusCode::CONFLICT,
                        "{status} {body}"
                    );
                    if status == StatusCode::OK {
                        ok_writes += 1;
                    }
                }
            }
        }
    }
    assert!(ok_writes > 0, "no write went through");
    assert!(started.elapsed() < Duration::from_secs(120));
    let s = e.app.store();
    let s = s.read().unwrap();
    s.state().check_invariants().unwrap();
    let report = s.verify().unwrap();
    assert!(report.ok(), "{report:?}");
}

// ---------------------------------------------------------------------------------------
// `kezek serve` as a process.

const BIN: &str = env!("CARGO_BIN_EXE_kezek");

fn http(addr: &str, method: &str, path: &str, token: Option<&str>) -> (u16, Value) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(s, "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status: u16 = out.split(' ').nth(1).unwrap().parse().unwrap();
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

fn kezek(data: &Path, args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    let mut child = Process::new(BIN)
        .arg("--data")
        .arg(data)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        // A command refused on its arguments exits before reading: a broken pipe here is
        // that refusal, which the exit code below reports.
        let written = child.stdin.take().unwrap().write_all(input.as_bytes());
        if let Err(e) = written {
            assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
        }
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn serve_creates_the_city_prints_the_password_and_holds_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("fresh");
    // Accounts need a store.
    let (code, _, err) = kezek(&data, &["admin", "token", "admin"], None);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("no_store"), "{err}");

    let mut server = Process::new(BIN)
        .arg("--data")
        .arg(&data)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("KEZEK_DEMO_SCALE", "small")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = server.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    let addr = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(240))
            .expect("serve printed no address");
        lines.push(line.clone());
        if let Some(rest) = line.split("listening on http://").nth(1) {
            break rest.split('/').next().unwrap().to_string();
        }
    };
    let text = lines.join("\n");
    assert!(text.contains("created the account 'admin'"), "{text}");
    let pos = lines
        .iter()
        .position(|l| l.contains("with the password"))
        .unwrap();
    let password = lines[pos + 1].trim().to_string();
    assert_eq!(password.len(), 20);
    let accounts = std::fs::read_to_string(data.join("web/accounts.json")).unwrap();
    assert!(!accounts.contains(&password) && accounts.contains("$argon2"));

    assert_eq!(
        http(&addr, "GET", "/api/health", None),
        (200, json!({"status": "ok"}))
    );
    assert_eq!(http(&addr, "GET", "/api/me", None).0, 401);

    // Accounts and tokens work while the server runs; the server sees them at once.
    let (code, out, err) = kezek(&data, &["admin", "token", "admin"], None);
    assert_eq!(code, 0, "{err}");
    let token = out.trim().to_string();
    assert_eq!(
        http(&addr, "GET", "/api/me", Some(&token)),
        (200, json!({"name": "admin", "role": "rules_admin"}))
    );
    let (code, _, err) = kezek(
        &data,
        &["admin", "add-user", "olga", "--role", "viewer"],
        Some("olga's long password\n"),
    );
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = kezek(
        &data,
        &["admin", "add-user", "olga", "--role", "viewer"],
        Some("olga's long password\n"),
    );
    assert_eq!(code, 3, "{err}");
    let (code, _, err) = kezek(
        &data,
        &["admin", "add-user", "pavel", "--role", "viewer"],
        Some("short\n"),
    );
    assert_eq!(code, 4, "{err}");
    let (code, _, _) = kezek(
        &data,
        &["admin", "add-user", "pavel", "--role", "boss"],
        Some("a long password\n"),
    );
    assert_eq!(code, 2);
    let (code, out, _) = kezek(&data, &["admin", "token", "olga"], None);
    assert_eq!(code, 0);
    let (st, _) = http(&addr, "POST", "/api/rules/activate", Some(out.trim()));
    assert_eq!(st, 403);
    let (st, page) = http(&addr, "GET", "/api/queues/2021?limit=3", Some(out.trim()));
    assert_eq!(st, 200);
    assert_eq!(page["items"].as_array().unwrap().len(), 3);

    // The store is held: another process says so clearly and changes nothing.
    let (code, _, err) = kezek(&data, &["audit", "verify"], None);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("store_locked"), "{err}");
    let (code, _, err) = kezek(&data, &["serve", "--listen", "127.0.0.1:0"], None);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("store_locked"), "{err}");

    // SIGTERM stops it cleanly; the store then verifies.
    unsafe {
        libc::kill(server.id() as i32, libc::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = server.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "serve did not stop");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "{status:?}");
    let (code, out, err) = kezek(&data, &["audit", "verify"], None);
    assert_eq!(code, 0, "{out}{err}");
    // A second start opens the store and creates no new admin.
    let audit = std::fs::read_to_string(data.join("web/audit.jsonl")).unwrap();
    assert!(audit.contains("\"action\":\"token\""));
}
