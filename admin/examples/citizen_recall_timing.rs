//! Median time of one signed recall through the API, end to end: the request through the
//! router, full verification of the signed XML (profile, digest, RSA signature, chain,
//! key usage), the nonce and binding checks, the evidence written and synced, the engine
//! command flushed to disk, the audit line, and the card in the answer.
//!
//! `cargo run --release -p kezek-admin --example citizen_recall_timing [ROUNDS]`

use std::time::Instant;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use jiff::{SignedDuration, Timestamp};
use kezek_admin::web::{self, App, Limits};
use kezek_engine::demo::{self, Scale};
use kezek_engine::{view, Actor, ClockMode, Command, Request as EngineRequest, RuleSet, Store};
use kezek_pki::testca::{KeyKind, Person, TestCa};
use serde_json::{json, Value};
use tower::ServiceExt;

type Fail = Box<dyn std::error::Error>;

async fn call(
    router: &Router,
    uri: &str,
    token: Option<&str>,
    body: Value,
) -> Result<(StatusCode, Value), Fail> {
    let mut req = Request::builder()
        .method("POST")
        .uri(uri)
        .header("content-type", "application/json");
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let res = router
        .clone()
        .oneshot(req.body(Body::from(body.to_string()))?)
        .await?;
    let status = res.status();
    let bytes = axum::body::to_bytes(res.into_body(), 16 << 20).await?;
    Ok((status, serde_json::from_slice(&bytes)?))
}

fn ok(r: (StatusCode, Value)) -> Result<Value, Fail> {
    if r.0 != StatusCode::OK {
        return Err(format!("{}: {}", r.0, r.1).into());
    }
    Ok(r.1)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Fail> {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(31);
    let now: Timestamp = "2026-12-02T04:00:00Z".parse()?;
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let mut store = Store::init(
        &data,
        &RuleSet::default_files(),
        ClockMode::Manual,
        now,
        Actor::System,
    )?;
    demo::build(&mut store, 1, Scale::Small, now)?;

    let from = now - SignedDuration::from_hours(24);
    let ca = TestCa::generate("KEZEK TIMING CA (RSA)", from)?;
    let iin = "880314401201";
    let person = Person::new(iin, "ТЕСТОВА", "ТЕСТ", "ТЕСТОВНА");
    let auth = ca.issue(&person, KeyKind::Auth, from)?;
    let sign = ca.issue(&person, KeyKind::Sign, from)?;
    std::fs::create_dir_all(data.join("pki/ca"))?;
    std::fs::write(data.join("pki/ca/timing.der"), ca.certificate().der())?;

    let app = App::new(store, Limits::default())?;
    let router = web::router(app.clone());
    let challenge = ok(call(&router, "/api/citizen/challenge", None, json!({})).await?)?;
    let xml = challenge["xml"].as_str().ok_or("no xml")?;
    let signed = kezek_pki::sign_xml(xml.as_bytes(), &auth.key, auth.certificate.der())?;
    let login = ok(call(
        &router,
        "/api/citizen/login",
        None,
        json!({"signed_xml": String::from_utf8(signed)?}),
    )
    .await?)?;
    let token = login["token"].as_str().ok_or("no token")?.to_string();
    ok(call(
        &router,
        "/api/citizen/email",
        Some(&token),
        json!({"email": "timing@example.kz"}),
    )
    .await?)?;

    let mut times_ms = Vec::new();
    for _ in 0..rounds {
        // An application that may take a place, attached to the parent, with a referral.
        let (id, publication) = {
            let s = app.store();
            let s = s.read().map_err(|_| "poisoned")?;
            let mut found = None;
            'outer: for c in s.state().cohorts() {
                for item in view::queue_page(s.state(), c, None, 1, 200).items {
                    let id = item.id.parse()?;
                    if let Some(o) = view::offers(&s, id, now)?.first() {
                        found = Some((id, o.publication));
                        break 'outer;
                    }
                }
            }
            found.ok_or("no application may take a place any more")?
        };
        {
            let s = app.store();
            let mut s = s.write().map_err(|_| "poisoned")?;
            let op = Actor::Operator("timing".into());
            s.execute(
                &EngineRequest {
                    command: Command::ChangeApplicant {
                        app: id,
                        applicant_iin: iin.into(),
                        applicant_name: None,
                    },
                    actor: op.clone(),
                    reason: Some("timing".into()),
                },
                now,
            )?;
            s.execute(
                &EngineRequest {
                    command: Command::Take {
                        app: id,
                        publication,
                    },
                    actor: op,
                    reason: None,
                },
                now,
            )?;
        }
        let doc = ok(call(
            &router,
            &format!("/api/citizen/applications/{id}/recall/document"),
            Some(&token),
            json!({"reason": "timing"}),
        )
        .await?)?;
        let xml = doc["xml"].as_str().ok_or("no xml")?;
        let signed = String::from_utf8(kezek_pki::sign_xml(
            xml.as_bytes(),
            &sign.key,
            sign.certificate.der(),
        )?)?;
        let t = Instant::now();
        let card = ok(call(
            &router,
            &format!("/api/citizen/applications/{id}/recall"),
            Some(&token),
            json!({ "signed_xml": signed }),
        )
        .await?)?;
        times_ms.push(t.elapsed().as_secs_f64() * 1e3);
        if card["status"] != "queued" {
            return Err(format!("{id} not recalled: {card}").into());
        }
    }
    times_ms.sort_by(f64::total_cmp);
    println!(
        "signed recall through the API (verify + checks + evidence + engine flush): median {:.2} ms, min {:.2} ms, max {:.2} ms over {} rounds",
        times_ms[times_ms.len() / 2],
        times_ms[0],
        times_ms[times_ms.len() - 1],
        times_ms.len()
    );
    Ok(())
}
