//! The console's HTML pages, in process: login with CSRF and the throttle, roles refused
//! (not only hidden), every page in every language, HTML escaping of hostile names, the
//! recall through the confirmation form restoring the position, the rules editor (check,
//! impact, activate, diff, roll back), the console and the audit log, the public page,
//! and the JSON API through a browser session with and without `X-CSRF-Token`.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use jiff::civil::date;
use jiff::Timestamp;
use kezek_admin::web::i18n::{t, Lang};
use kezek_admin::web::{self, Limits};
use kezek_engine::event::GroupRow;
use kezek_engine::iin::Iin;
use kezek_engine::{
    view, Actor, AppNo, Command, Event, Language, RegisterInput, Request as EngineRequest, RuleSet,
};
use serde_json::Value;
use tower::ServiceExt;

mod support;

use support::*;
/// A waiting application that may take a place now, its position, and the publication.
fn takeable(e: &Env) -> (AppNo, u64, u64) {
    let store = e.app.store();
    let s = store.read().unwrap();
    for c in s.state().cohorts() {
        for card in view::queue_page(s.state(), c, None, 1, 60).items {
            let id: AppNo = card.id.parse().unwrap();
            if let Some(o) = view::offers(&s, id, now()).unwrap().first() {
                return (id, card.queue_position.unwrap(), o.publication);
            }
        }
    }
    panic!("no application may take a place");
}

fn execute(e: &Env, command: Command, reason: Option<&str>) -> Vec<kezek_engine::EventRecord> {
    let store = e.app.store();
    let mut s = store.write().unwrap();
    let now = s.now(Timestamp::now());
    s.execute(
        &EngineRequest {
            command,
            actor: Actor::Operator("setup".into()),
            reason: reason.map(str::to_string),
        },
        now,
    )
    .unwrap()
}

#[tokio::test]
async fn login_csrf_throttle_and_logout() {
    let e = env();
    let mut b = Browser::new(&e);
    // Every page but the public one needs a login.
    for uri in [
        "/",
        "/applications",
        "/rules",
        "/console",
        "/simulate",
        "/audit",
        "/audit.csv",
    ] {
        let r = b.get(uri).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{uri}");
        assert!(r.location().starts_with("/login?next="), "{uri}");
    }
    assert_eq!(b.get("/public").await.status, StatusCode::OK);
    assert_eq!(b.get("/assets/style.css").await.status, StatusCode::OK);
    assert_eq!(b.get("/api/health").await.status, StatusCode::OK);
    // The login form sets its own CSRF cookie, HttpOnly and SameSite=Strict.
    let page = b.get("/login").await;
    let set = page.headers.get("set-cookie").unwrap().to_str().unwrap();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    let tok = csrf(&page.body);
    // Without the token, or with another one: refused, whatever the password.
    let r = b
        .post("/login", &[("username", "oleg"), ("password", PASSWORD)])
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = b
        .post(
            "/login",
            &[
                ("csrf", &"0".repeat(64)),
                ("username", "oleg"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(!b.cookies.contains_key("kezek_session"));
    // Wrong passwords: refused; after five, even the right one is refused for a while.
    for _ in 0..5 {
        let r = b
            .post(
                "/login",
                &[
                    ("csrf", &tok),
                    ("username", "oleg"),
                    ("password", "wrong password!"),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert!(r.body.contains("data-test=\"login-error\""));
    }
    let r = b
        .post(
            "/login",
            &[("csrf", &tok), ("username", "oleg"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    assert!(r.headers.get("retry-after").is_some());
    assert!(!b.cookies.contains_key("kezek_session"));
    // Another account is not locked.
    let r = b.login("vera", PASSWORD).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location(), "/");
    let set: Vec<_> = r
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    let session = set
        .iter()
        .find(|c| c.starts_with("kezek_session="))
        .unwrap();
    assert!(session.contains("HttpOnly") && session.contains("SameSite=Strict"));
    let home = b.get("/").await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(home.body.contains("data-test=\"whoami\">vera"));
    // The audit log has the refused and the accepted logins.
    let audit = e.app.audit().recent(100);
    assert!(audit
        .iter()
        .any(|a| a.action == "login" && a.outcome == "bad_credentials"));
    assert!(audit
        .iter()
        .any(|a| a.action == "login" && a.outcome == "throttled"));
    assert!(audit
        .iter()
        .any(|a| a.action == "login" && a.outcome == "ok"));
    // A form without the session's token is refused and changes nothing.
    let before = digest(&e);
    let r = b.post("/console", &[("script", "1 + 1")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.body.contains("data-test=\"error\""));
    assert_eq!(digest(&e), before);
    // Sign out: the session ends.
    let tok = b.token().await;
    let r = b.post("/logout", &[("csrf", &tok)]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(b.get("/").await.status, StatusCode::SEE_OTHER);
    // An old session id does not come back.
    b.cookies.insert("kezek_session".into(), "f".repeat(64));
    assert_eq!(b.get("/").await.status, StatusCode::SEE_OTHER);
    // `next` never leaves the site.
    let mut c = Browser::new(&e);
    let page = c.get("/login?next=//evil.example/").await;
    let tok = csrf(&page.body);
    let r = c
        .post(
            "/login",
            &[
                ("csrf", &tok),
                ("username", "rita"),
                ("password", PASSWORD),
                ("next", "//evil.example/"),
            ],
        )
        .await;
    assert_eq!(r.location(), "/");
}

#[tokio::test]
async fn failed_logins_from_one_address_lock_that_address() {
    let e = env_with(Limits {
        sessions: web::SessionLimits {
            free_failures_per_ip: 4,
            ..web::SessionLimits::default()
        },
        ..Limits::default()
    });
    let mut b = Browser::new(&e);
    b.ip = Some("10.0.0.7:5555".parse().unwrap());
    // Four names, one wrong password each: no name is locked, the address is.
    for name in ["a1", "a2", "a3", "a4"] {
        let r = b.login(name, "wrong password!").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    let r = b.login("oleg", PASSWORD).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    // From another address the same account signs in.
    let mut c = Browser::new(&e);
    c.ip = Some("10.0.0.8:5555".parse().unwrap());
    assert_eq!(
        c.login("oleg", PASSWORD).await.status,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn actions_are_hidden_and_refused_below_the_role() {
    let e = env();
    let (id, _, publication) = takeable(&e);
    execute(
        &e,
        Command::Take {
            app: id,
            publication,
        },
        None,
    );
    let mut viewer = Browser::signed_in(&e, "vera").await;
    let card = viewer.get(&format!("/applications/{id}")).await;
    assert_eq!(card.status, StatusCode::OK);
    assert!(card.body.contains("data-test=\"actions-hidden\""));
    assert!(!card.body.contains("data-test=\"open-recall\""));
    let tok = csrf(&card.body);
    let before = digest(&e);
    for action in ["recall", "extend", "enroll", "withdraw", "cancel-benefit"] {
        let r = viewer
            .post(
                &format!("/applications/{id}/{action}"),
                &[("csrf", &tok), ("reason", "forged")],
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{action}");
    }
    let r = viewer
        .post(
            "/kindergartens/DDO-0001/publish",
            &[("csrf", &tok), ("group", "2021:kk"), ("places", "1")],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let draft = viewer.get("/rules/draft").await;
    assert!(draft.body.contains("data-test=\"activate-hidden\""));
    assert!(!draft.body.contains("data-test=\"open-activate\""));
    let files = RuleSet::default_files();
    let mut fields: Vec<(String, String)> = vec![
        ("csrf".into(), tok.clone()),
        ("op".into(), "activate".into()),
        ("reason".into(), "forged".into()),
    ];
    for (k, v) in &files {
        fields.push((format!("file:{k}"), v.replace("general", "general ")));
    }
    let refs: Vec<(&str, &str)> = fields
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    assert_eq!(
        viewer.post("/rules/draft", &refs).await.status,
        StatusCode::FORBIDDEN
    );
    // An operator may act on applications but not on rules.
    let mut op = Browser::signed_in(&e, "oleg").await;
    let tok = op.token().await;
    let r = op
        .post(
            "/rules/rollback",
            &[("csrf", &tok), ("version", "1"), ("reason", "x")],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let card = op.get(&format!("/applications/{id}")).await;
    assert!(card.body.contains("data-test=\"open-recall\""));
    assert_eq!(digest(&e), before, "nothing changed");
}

#[tokio::test]
async fn every_page_renders_in_every_language() {
    let e = env();
    let (id, _, _) = takeable(&e);
    let mut b = Browser::signed_in(&e, "rita").await;
    let pages: Vec<(String, &str)> = vec![
        ("/".into(), "nav_overview"),
        ("/applications".into(), "active_referrals"),
        ("/applications?cohort=2021".into(), "queue_of_cohort"),
        (format!("/applications?q={id}"), "results"),
        (format!("/applications/{id}"), "category_position"),
        (format!("/applications/{id}?tab=changes"), "tab_changes"),
        (format!("/applications/{id}?tab=explain"), "position_moves"),
        ("/kindergartens".into(), "district"),
        ("/kindergartens?q=ГККП&page=1".into(), "district"),
        ("/kindergartens/DDO-0001".into(), "publish_places"),
        ("/publications".into(), "publications"),
        ("/rules".into(), "active_version"),
        ("/rules/draft".into(), "check"),
        ("/rules/diff?a=1&b=1".into(), "no_differences"),
        ("/console".into(), "functions"),
        ("/simulate".into(), "sim_scenario"),
        ("/audit".into(), "reason_outcome"),
        ("/public".into(), "public_title"),
    ];
    for lang in Lang::ALL {
        // The language is chosen by the query once, then remembered by the cookie.
        let r = b.get(&format!("/?lang={}", lang.code())).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(
            b.cookies.get("kezek_lang").map(String::as_str),
            Some(lang.code())
        );
        for (uri, key) in &pages {
            let r = b.get(uri).await;
            assert_eq!(r.status, StatusCode::OK, "{uri} in {lang:?}: {}", r.body);
            assert!(
                r.headers["content-type"]
                    .to_str()
                    .unwrap()
                    .starts_with("text/html"),
                "{uri}"
            );
            assert!(r.headers.get("content-security-policy").is_some(), "{uri}");
            assert!(
                r.body.contains(&format!("<html lang=\"{}\"", lang.code())),
                "{uri}"
            );
            let word = t(lang, key);
            assert!(r.body.contains(word), "{uri} in {lang:?}: no '{word}'");
            assert!(
                !r.body.contains('⟦'),
                "{uri} in {lang:?}: a word is missing: {}",
                {
                    let at = r.body.find('⟦').unwrap();
                    &r.body[at..(at + 40).min(r.body.len())]
                }
            );
        }
    }
    // Pages of things that do not exist: 404 pages, not JSON.
    for uri in [
        "/applications/UO.2000.1.1",
        "/kindergartens/NOPE",
        "/nope",
        "/rules/diff?a=1&b=99",
    ] {
        let r = b.get(uri).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{uri}");
        assert!(r.body.contains("data-test=\"error\""), "{uri}");
    }
    assert_eq!(
        b.get("/applications/not-a-number").await.status,
        StatusCode::BAD_REQUEST
    );
    // Errors of the layers and the router are pages too (with the security headers).
    let r = b.get("/applications/UO.2022.1.1/recall").await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(r.body.contains("data-test=\"error\""));
    assert!(r.headers.get("content-security-policy").is_some());
    let big = "x".repeat(2 * 1024 * 1024);
    let r = b.post("/console", &[("script", big.as_str())]).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(r.body.contains("data-test=\"error\""));
    let r = b.get("/nope").await;
    assert!(r.headers.get("content-security-policy").is_some());
    assert_eq!(
        b.get("/api/nope").await.json()["error"]["code"],
        "not_found"
    );
}

#[tokio::test]
async fn hostile_names_are_escaped() {
    let e = env();
    let evil_kg = "<img src=x onerror=alert(1)>\"'&";
    let evil_child = "<script>alert('child')</script>";
    execute(
        &e,
        Command::AddGroups {
            groups: vec![GroupRow {
                kindergarten: "EVIL-1".into(),
                name: evil_kg.into(),
                district: "<b>district</b>".into(),
                cohort: 2023,
                language: Language::Kk,
                capacity: 10,
            }],
        },
        Some("test"),
    );
    let recs = execute(
        &e,
        Command::Register(Box::new(RegisterInput {
            app: None,
            child_iin: Iin::make_valid(date(2023, 5, 5), true, 4242).to_string(),
            birth_date: date(2023, 5, 5),
            applicant_iin: Iin::make_valid(date(1990, 1, 1), false, 77).to_string(),
            child_name: Some(evil_child.into()),
            applicant_name: Some("<i>parent</i>".into()),
            category: None,
            language: Some(Language::Kk),
            email: Some("\"><svg onload=alert(2)>@x.kz".into()),
            phone: None,
            registered_at: None,
        })),
        None,
    );
    let id = recs
        .iter()
        .find_map(|r| match &r.event {
            Event::Registered(x) => Some(x.app),
            _ => None,
        })
        .unwrap();
    let mut b = Browser::signed_in(&e, "oleg").await;
    for uri in [
        format!("/applications/{id}"),
        format!("/applications?q={id}"),
        "/applications?cohort=2023".to_string(),
        "/kindergartens?q=EVIL".to_string(),
        "/kindergartens/EVIL-1".to_string(),
        "/audit?action=groups".to_string(),
    ] {
        let r = b.get(&uri).await;
        assert_eq!(r.status, StatusCode::OK, "{uri}");
        for raw in [
            "<script>alert",
            "<img src=x",
            "<svg onload",
            "<b>district",
            "<i>parent",
        ] {
            assert!(!r.body.contains(raw), "{uri}: unescaped {raw}");
        }
    }
    let card = b.get(&format!("/applications/{id}")).await;
    assert!(card
        .body
        .contains("&lt;script&gt;alert('child')&lt;/script&gt;"));
    let kg = b.get("/kindergartens/EVIL-1").await;
    assert!(kg
        .body
        .contains("&lt;img src=x onerror=alert(1)&gt;&quot;'&amp;"));
    // The publish form posts to an encoded path; publishing there works.
    let tok = csrf(&kg.body);
    let r = b
        .post(
            "/kindergartens/EVIL-1/publish",
            &[
                ("csrf", &tok),
                ("group", "2023:kk"),
                ("places", "2"),
                ("reason", "test"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let kg = b.get("/kindergartens/EVIL-1").await;
    assert!(kg.body.contains("data-test=\"flash-ok\""), "{}", kg.body);
    assert!(kg.body.contains("data-test=\"publication-row\""));
}

#[tokio::test]
async fn recall_through_the_form_restores_the_position() {
    let e = env();
    let (id, position, publication) = takeable(&e);
    execute(
        &e,
        Command::Take {
            app: id,
            publication,
        },
        None,
    );
    let mut b = Browser::signed_in(&e, "oleg").await;
    let card = b.get(&format!("/applications/{id}")).await;
    assert_eq!(test_text(&card.body, "queue-position"), "—");
    assert!(card.body.contains("data-test=\"dialog-recall\""));
    // The dialog shows the seed's warning in Kazakh and Russian.
    assert!(card.body.contains("шынымен кері шақыруды қалайсыз ба"));
    assert!(card.body.contains("Вы действительно хотите отозвать"));
    let tok = csrf(&card.body);
    // No reason: refused by the engine, shown once, nothing changed.
    let before = digest(&e);
    let r = b
        .post(
            &format!("/applications/{id}/recall"),
            &[("csrf", &tok), ("reason", " ")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let card = b.get(&format!("/applications/{id}")).await;
    assert!(card.body.contains("data-test=\"flash-error\""));
    assert_eq!(digest(&e), before);
    let r = b
        .post(
            &format!("/applications/{id}/recall"),
            &[("csrf", &tok), ("reason", "the parent asked by phone")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location(), format!("/applications/{id}"));
    let card = b.get(&format!("/applications/{id}")).await;
    assert!(
        card.body.contains("data-test=\"flash-ok\""),
        "{}",
        card.body
    );
    assert_eq!(
        test_text(&card.body, "queue-position"),
        position.to_string()
    );
    // The flash shows once.
    let again = b.get(&format!("/applications/{id}")).await;
    assert!(!again.body.contains("data-test=\"flash-ok\""));
    // The event log has who and why, as through the API.
    let changes = b.get(&format!("/applications/{id}?tab=changes")).await;
    assert!(changes.body.contains("operator:oleg"));
    assert!(changes.body.contains("the parent asked by phone"));
    let store = e.app.store();
    let s = store.read().unwrap();
    s.state().check_invariants().unwrap();
    let c = view::card(&s, id).unwrap();
    let last = c
        .history
        .iter()
        .rev()
        .find(|h| h.event == "referral_recalled")
        .unwrap();
    assert_eq!(last.actor, "operator:oleg");
}

#[tokio::test]
async fn the_api_takes_the_session_with_its_csrf_header() {
    let e = env();
    let (id, position, publication) = takeable(&e);
    execute(
        &e,
        Command::Take {
            app: id,
            publication,
        },
        None,
    );
    let mut b = Browser::signed_in(&e, "oleg").await;
    let tok = b.token().await;
    let me = b.api("GET", "/api/me", None, Value::Null).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.json()["name"], "oleg");
    let uri = format!("/api/applications/{id}/recall");
    let body = serde_json::json!({"reason": "through the browser"});
    let before = digest(&e);
    let r = b.api("POST", &uri, None, body.clone()).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.json()["error"]["code"], "csrf_failed");
    let r = b
        .api("POST", &uri, Some(&"a".repeat(64)), body.clone())
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(digest(&e), before);
    let r = b.api("POST", &uri, Some(&tok), body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json()["queue_position"], position);
    // A viewer's session is a viewer: 403 on a change even with the token.
    let mut v = Browser::signed_in(&e, "vera").await;
    let vt = v.token().await;
    let r = v
        .api(
            "POST",
            &format!("/api/applications/{id}/withdraw"),
            Some(&vt),
            serde_json::json!({"reason": "x"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.json()["error"]["code"], "forbidden");
    // Bearer tokens work as before; without anything: 401.
    let token = e.app.accounts().issue_token("oleg").unwrap();
    let r = e
        .router
        .clone()
        .oneshot(
            Request::builder()
                .uri("/api/me")
                .header("authorization", format!("Bearer {token}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let mut anon = Browser::new(&e);
    assert_eq!(
        anon.api("GET", "/api/me", None, Value::Null).await.status,
        StatusCode::UNAUTHORIZED
    );
}

fn draft_fields(
    csrf: &str,
    op: &str,
    files: &std::collections::BTreeMap<String, String>,
    extra: &[(&str, &str)],
) -> Vec<(String, String)> {
    let mut f: Vec<(String, String)> = vec![
        ("csrf".into(), csrf.into()),
        ("op".into(), op.into()),
        ("base".into(), "1".into()),
    ];
    for (k, v) in files {
        f.push((format!("file:{k}"), v.replace('\n', "\r\n")));
    }
    for (k, v) in extra {
        f.push((k.to_string(), v.to_string()));
    }
    f
}

async fn post_fields(b: &mut Browser<'_>, uri: &str, f: &[(String, String)]) -> Resp {
    let refs: Vec<(&str, &str)> = f.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    b.post(uri, &refs).await
}

#[tokio::test]
async fn rules_check_impact_activate_diff_and_roll_back() {
    let e = env();
    let mut b = Browser::signed_in(&e, "rita").await;
    let tok = b.token().await;
    let files = RuleSet::default_files();
    // A broken file: the error names the file and the line.
    let mut broken = files.clone();
    let name = broken.keys().find(|k| k.contains("order")).unwrap().clone();
    broken.insert(
        name.clone(),
        "fn order_key(app) {\n  [app.category_rank,\n}\n".into(),
    );
    let r = post_fields(
        &mut b,
        "/rules/draft",
        &draft_fields(&tok, "check", &broken, &[]),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(r.body.contains("data-test=\"check-error\""));
    assert!(r.body.contains(&format!("data-file=\"{name}\"")));
    // The default set checks out (CR LF from the browser is fine) and is the active one.
    let r = post_fields(
        &mut b,
        "/rules/draft",
        &draft_fields(&tok, "check", &files, &[]),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("data-test=\"check-ok\""), "{}", r.body);
    // A candidate that puts the general category first moves people.
    let cats = files
        .keys()
        .find(|k| k.contains("categories"))
        .unwrap()
        .clone();
    let mut cand = files.clone();
    let src = cand[&cats].clone();
    cand.insert(cats.clone(), swap_first_rank(&src));
    let r = post_fields(
        &mut b,
        "/rules/draft",
        &draft_fields(&tok, "impact", &cand, &[]),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let moved: u64 = test_text(&r.body, "impact-moved").parse().unwrap();
    assert!(moved > 0, "the candidate moves someone");
    assert!(r.body.contains("data-test=\"impact-row\""));
    // Activate without a reason: refused; with one: version 2.
    let r = post_fields(
        &mut b,
        "/rules/draft",
        &draft_fields(&tok, "activate", &cand, &[("reason", " ")]),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = post_fields(
        &mut b,
        "/rules/draft",
        &draft_fields(
            &tok,
            "activate",
            &cand,
            &[("reason", "general first, a drill")],
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let rules = b.get("/rules").await;
    assert_eq!(test_text(&rules.body, "active-version"), "2");
    assert!(rules.body.contains("general first, a drill"));
    assert!(rules.body.contains("operator:rita"));
    let diff = b.get("/rules/diff?a=1&b=2").await;
    assert!(diff.body.contains("data-test=\"diff-add\""));
    assert!(diff.body.contains(&format!("data-file=\"{cats}\"")));
    // Roll back to version 1: version 3 with version 1's files.
    let r = b
        .post(
            "/rules/rollback",
            &[("csrf", &tok), ("version", "1"), ("reason", "drill over")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let rules = b.get("/rules").await;
    assert_eq!(test_text(&rules.body, "active-version"), "3");
    let store = e.app.store();
    let s = store.read().unwrap();
    let v = &s.state().data.rules_versions;
    assert_eq!(v[2].files, v[0].files);
    s.state().check_invariants().unwrap();
}

/// Gives the general category the smallest rank in a categories file.
fn swap_first_rank(src: &str) -> String {
    // The rule files list categories with `rank: N`; make general's rank -1000.
    let at = src.find("\"general\"").expect("general in categories.rhai");
    let rest = &src[at..];
    let r = rest.find("rank").expect("a rank after general");
    let num_start = at
        + r
        + rest[r..]
            .find(|c: char| c.is_ascii_digit() || c == '-')
            .unwrap();
    let num_end = num_start
        + src[num_start..]
            .find(|c: char| !(c.is_ascii_digit() || c == '-'))
            .unwrap();
    format!("{}-1000{}", &src[..num_start], &src[num_end..])
}

#[tokio::test]
async fn console_audit_csv_and_public_page() {
    let e = env();
    let mut b = Browser::signed_in(&e, "vera").await;
    let tok = b.token().await;
    let before = digest(&e);
    let r = b
        .post(
            "/console",
            &[
                ("csrf", &tok),
                ("script", "let c = cohorts()[0];\nqueue(c, 1, 5)"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body.matches("data-test=\"console-row\"").count(), 5);
    let r = b
        .post("/console", &[("csrf", &tok), ("script", "loop {")])
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("data-test=\"console-error\""));
    assert_eq!(digest(&e), before);
    let audit = b.get("/audit?action=console").await;
    assert_eq!(audit.body.matches("data-test=\"audit-row\"").count(), 2);
    let events = b.get("/audit?source=events&action=rules_activated").await;
    assert!(events.body.contains("data-source=\"event\""));
    assert!(!events.body.contains("data-source=\"web\""));
    let csv = b.get("/audit.csv?action=console").await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(csv.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let lines: Vec<&str> = csv.body.lines().collect();
    assert_eq!(
        lines[0],
        "time_utc,time_almaty,source,actor,action,what,reason_or_outcome"
    );
    assert_eq!(lines.len(), 3);
    assert!(lines[1].contains("operator:vera"));
    assert_eq!(
        b.get("/audit?from=yesterday").await.status,
        StatusCode::BAD_REQUEST
    );
    // The public page: counts, no personal data, no login.
    let mut anon = Browser::new(&e);
    for lang in ["kk", "ru", "en"] {
        let r = anon.get(&format!("/public?lang={lang}")).await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(r.body.contains("data-test=\"public-row\""));
        assert!(!r.body.contains("UO."), "no application numbers");
        let digits12 = r
            .body
            .as_bytes()
            .windows(12)
            .any(|w| w.iter().all(u8::is_ascii_digit));
        assert!(!digits12, "no IINs");
    }
    let waiting: u64 = test_text(&anon.get("/public").await.body, "public-waiting")
        .parse()
        .unwrap();
    let store = e.app.store();
    let s = store.read().unwrap();
    let total: u64 = s
        .state()
        .cohorts()
        .iter()
        .map(|c| s.state().queue(*c).unwrap().len() as u64)
        .sum();
    assert_eq!(waiting, total);
}
