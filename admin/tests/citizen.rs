//! The parent's flow end to end through the router: signature login with the AUTH key,
//! the e-mail on first login, the journal, and recall and extension signed with the
//! signing key; every refusal (wrong key, another person's signature, replayed or expired
//! nonce, tampered document, another application, untrusted CA, revoked certificate, ...)
//! is named and leaves the store's digest unchanged. A test CA (pki's `testca`) issues the
//! keys; the real NCA test intermediate and its CRL sit in the trust store beside it.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use jiff::{SignedDuration, Timestamp};
use kezek_admin::web::{self, App, CitizenLimits, Limits, Role};
use kezek_engine::demo::{self, Scale};
use kezek_engine::iin::Iin;
use kezek_engine::{Actor, ClockMode, RuleSet, Store};
use kezek_pki::rsa::RsaPrivateKey;
use kezek_pki::testca::{self, KeyKind, Person, TestCa};
use kezek_pki::Certificate;
use serde_json::{json, Value};
use tower::ServiceExt;

fn now() -> Timestamp {
    "2026-12-02T04:00:00Z".parse().unwrap()
}

/// Keys are slow to make: one CA key, one rogue CA key and one key for every person's
/// certificates (the certificate, not the key, carries the IIN and the key usage).
struct Pki {
    ca: TestCa,
    key: RsaPrivateKey,
    a: Keys,
    b: Keys,
    /// A's signing certificate from the rogue CA.
    a_rogue_sign: Certificate,
    /// A second signing certificate of A, revoked by the CRL of [`revoked_crl`].
    a_revoked_sign: Certificate,
}

struct Keys {
    iin: String,
    auth: Certificate,
    sign: Certificate,
}

fn parent_iin(serial: u32) -> String {
    Iin::make_valid(jiff::civil::date(1988, 3, 14), serial % 2 == 1, serial).to_string()
}

fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let from = now() - SignedDuration::from_hours(24 * 30);
        let to = now() + SignedDuration::from_hours(24 * 335);
        let ca = TestCa::with_key(
            testca::generate_key().unwrap(),
            "KEZEK TEST CA (RSA)",
            from,
            to + SignedDuration::from_hours(24 * 3000),
        )
        .unwrap();
        let rogue = TestCa::with_key(
            testca::generate_key().unwrap(),
            "ROGUE CA (RSA)",
            from,
            to + SignedDuration::from_hours(24 * 3000),
        )
        .unwrap();
        let key = testca::generate_key().unwrap();
        let public = key.to_public_key();
        let keys = |ca: &TestCa, iin: &str| {
            let p = Person::new(iin, "АХМЕТОВА", "АЙГЕРІМ", "СЕРІКҚЫЗЫ");
            Keys {
                iin: iin.to_string(),
                auth: ca
                    .issue_for_key(&public, &p, KeyKind::Auth, from, to)
                    .unwrap(),
                sign: ca
                    .issue_for_key(&public, &p, KeyKind::Sign, from, to)
                    .unwrap(),
            }
        };
        let a = keys(&ca, &parent_iin(1201));
        let b = keys(&ca, &parent_iin(3402));
        let a_rogue_sign = keys(&rogue, &a.iin).sign;
        let a_revoked_sign = keys(&ca, &a.iin).sign;
        Pki {
            ca,
            key,
            a,
            b,
            a_rogue_sign,
            a_revoked_sign,
        }
    })
}

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../pki/tests/fixtures/nca")
}

struct Env {
    _dir: tempfile::TempDir,
    data: PathBuf,
    app: App,
    router: Router,
    operator: String,
    viewer: String,
}

fn env() -> Env {
    env_with(Limits::default())
}

fn env_with(limits: Limits) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut store = Store::init(
        &data,
        &RuleSet::default_files(),
        ClockMode::Manual,
        now(),
        Actor::System,
    )
    .unwrap();
    demo::build(&mut store, 1, Scale::Small, now()).unwrap();
    // The trust store: the test CA, and the real NCA test intermediate with its CRL.
    let ca_dir = data.join("pki/ca");
    let crl_dir = data.join("pki/crl");
    std::fs::create_dir_all(&ca_dir).unwrap();
    std::fs::create_dir_all(&crl_dir).unwrap();
    std::fs::write(ca_dir.join("kezek-test.der"), pki().ca.certificate().der()).unwrap();
    let nca = std::fs::read(fixtures().join("nca_rsa_test.pem"))
        .expect("the NCA fixtures (pki/tests/fixtures/nca)");
    std::fs::write(
        ca_dir.join("nca-test.der"),
        Certificate::parse(&nca).unwrap().der(),
    )
    .unwrap();
    std::fs::copy(
        fixtures().join("nca_rsa_test.crl.der"),
        crl_dir.join("nca-test.der"),
    )
    .unwrap();
    let app = App::new(store, limits).unwrap();
    app.accounts()
        .add_user("oleg", Role::Operator, "a long enough password")
        .unwrap();
    app.accounts()
        .add_user("vera", Role::Viewer, "a long enough password")
        .unwrap();
    let operator = app.accounts().issue_token("oleg").unwrap();
    let viewer = app.accounts().issue_token("vera").unwrap();
    let router = web::router(app.clone());
    Env {
        _dir: dir,
        data,
        app,
        router,
        operator,
        viewer,
    }
}

async fn call(
    e: &Env,
    method: &str,
    uri: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json");
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
    let res = e
        .router
        .clone()
        .oneshot(req.body(body).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let bytes = axum::body::to_bytes(res.into_body(), 64 << 20)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

async fn get(e: &Env, uri: &str, token: &str) -> (StatusCode, Value) {
    call(e, "GET", uri, Some(token), None).await
}

async fn post(e: &Env, uri: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
    call(e, "POST", uri, token, Some(body)).await
}

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

fn digest(e: &Env) -> [u8; 32] {
    e.app.store().read().unwrap().state().digest()
}

/// A request that must be refused with `status` and `code` and change nothing.
async fn refused(
    e: &Env,
    uri: &str,
    token: Option<&str>,
    body: Value,
    status: StatusCode,
    code: &str,
) -> Value {
    let before = digest(e);
    let r = post(e, uri, token, body).await;
    is_error(&r, status, code);
    assert_eq!(
        digest(e),
        before,
        "{uri} refused with {code} but changed the store"
    );
    r.1
}

fn sign(xml: &str, cert: &Certificate) -> String {
    let signed = kezek_pki::sign_xml(xml.as_bytes(), &pki().key, cert.der()).unwrap();
    String::from_utf8(signed).unwrap()
}

fn tick(e: &Env, by: SignedDuration) {
    let s = e.app.store();
    let mut s = s.write().unwrap();
    let to = s.config().manual_now + by;
    s.tick_to(to).unwrap();
}

async fn challenge(e: &Env) -> String {
    let (st, v) = post(e, "/api/citizen/challenge", None, json!({})).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let xml = v["xml"].as_str().unwrap().to_string();
    assert!(xml.starts_with("<login>") && xml.contains(v["nonce"].as_str().unwrap()));
    assert_eq!(v["nonce"].as_str().unwrap().len(), 32, "128-bit nonce");
    xml
}

/// Logs in with the AUTH certificate; gives the token and the login response.
async fn login(e: &Env, auth: &Certificate) -> (String, Value) {
    let xml = challenge(e).await;
    let (st, v) = post(
        e,
        "/api/citizen/login",
        None,
        json!({"signed_xml": sign(&xml, auth)}),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    (v["token"].as_str().unwrap().to_string(), v)
}

async fn login_with_email(e: &Env, k: &Keys) -> String {
    let (token, _) = login(e, &k.auth).await;
    let (st, v) = post(
        e,
        "/api/citizen/email",
        Some(&token),
        json!({"email": format!("parent{}@example.kz", &k.iin[..4])}),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    token
}

/// A waiting application that may take a place now, and the publication.
async fn takeable(e: &Env) -> (String, u64) {
    let cohorts = e.app.store().read().unwrap().state().cohorts();
    for c in cohorts {
        let (_, page) = get(e, &format!("/api/queues/{c}?limit=60"), &e.viewer).await;
        for item in page["items"].as_array().unwrap() {
            let id = item["id"].as_str().unwrap();
            let (_, offers) = get(e, &format!("/api/applications/{id}/offers"), &e.viewer).await;
            if let Some(o) = offers.as_array().unwrap().first() {
                return (id.to_string(), o["publication"].as_u64().unwrap());
            }
        }
    }
    panic!("no application may take a place in the demo city");
}

/// An application attached to `iin` by an operator, holding a fresh referral; its queue
/// position before the take.
async fn attached_with_referral(e: &Env, iin: &str) -> (String, u64) {
    let (id, publication) = takeable(e).await;
    let (_, card) = get(e, &format!("/api/applications/{id}"), &e.viewer).await;
    let position = card["queue_position"].as_u64().unwrap();
    let (st, card) = post(
        e,
        &format!("/api/applications/{id}/applicant"),
        Some(&e.operator),
        json!({"iin": iin, "applicant_name": "Ахметова Айгерім", "reason": "the mother files for the family: merged to her IIN"}),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{card}");
    assert_eq!(card["applicant_iin"], iin);
    let last = card["history"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["event"], "applicant_changed");
    assert_eq!(last["actor"], "operator:oleg");
    let (st, card) = post(
        e,
        &format!("/api/applications/{id}/take"),
        Some(&e.operator),
        json!({"publication": publication}),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{card}");
    assert_eq!(card["status"], "referral_issued");
    (id, position)
}

async fn document(e: &Env, token: &str, id: &str, action: &str, reason: Option<&str>) -> Value {
    let body = match reason {
        Some(r) => json!({ "reason": r }),
        None => json!({}),
    };
    let (st, v) = post(
        e,
        &format!("/api/citizen/applications/{id}/{action}/document"),
        Some(token),
        body,
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    v
}

fn read_audit(data: &Path) -> Vec<Value> {
    std::fs::read_to_string(data.join("web/audit.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test]
async fn a_parent_logs_in_sees_the_journal_recalls_with_a_signature_and_gets_the_position_back() {
    let e = env();
    let p = pki();
    let (id, position) = attached_with_referral(&e, &p.a.iin).await;

    // Login with the AUTH key: the first login asks for an e-mail address.
    let (token, v) = login(&e, &p.a.auth).await;
    assert!(token.starts_with("kzc_") && token.len() == 68);
    assert_eq!(v["email_required"], true);
    assert_eq!(v["iin"], p.a.iin.as_str());
    is_error(
        &get(&e, "/api/citizen/applications", &token).await,
        StatusCode::FORBIDDEN,
        "email_required",
    );
    for bad in [
        "no-at-sign",
        "a@b",
        "two@@example.kz",
        "sp ace@example.kz",
        "",
    ] {
        is_error(
            &post(
                &e,
                "/api/citizen/email",
                Some(&token),
                json!({ "email": bad }),
            )
            .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_email",
        );
    }
    let (st, v) = post(
        &e,
        "/api/citizen/email",
        Some(&token),
        json!({"email": "aigerim@example.kz"}),
    )
    .await;
    assert_eq!(
        (st, v["email"].clone()),
        (StatusCode::OK, json!("aigerim@example.kz"))
    );
    let profiles: Value =
        serde_json::from_slice(&std::fs::read(e.data.join("web/citizens.json")).unwrap()).unwrap();
    assert_eq!(
        profiles["citizens"][&p.a.iin]["email"],
        "aigerim@example.kz"
    );
    // The next login knows the address.
    let (_, again) = login(&e, &p.a.auth).await;
    assert_eq!(again["email_required"], false);

    // The journal: exactly the applications whose applicant is A.
    let (st, journal) = get(&e, "/api/citizen/applications", &token).await;
    assert_eq!(st, StatusCode::OK, "{journal}");
    let ids: Vec<&str> = journal["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![id.as_str()]);
    assert_eq!(journal["total"], 1);
    let (st, card) = get(&e, &format!("/api/citizen/applications/{id}"), &token).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(card["status"], "referral_issued");
    let referral = card["referral"]["id"].as_u64().unwrap();

    // Another parent sees nothing of it: 404, the same as for an application that does
    // not exist.
    let tb = login_with_email(&e, &p.b).await;
    let (_, jb) = get(&e, "/api/citizen/applications", &tb).await;
    assert_eq!(jb["total"], 0);
    is_error(
        &get(&e, &format!("/api/citizen/applications/{id}"), &tb).await,
        StatusCode::NOT_FOUND,
        "unknown_application",
    );
    is_error(
        &get(&e, "/api/citizen/applications/UO.2001.999999.1", &tb).await,
        StatusCode::NOT_FOUND,
        "unknown_application",
    );
    refused(
        &e,
        &format!("/api/citizen/applications/{id}/recall/document"),
        Some(&tb),
        json!({"reason": "не моё"}),
        StatusCode::NOT_FOUND,
        "unknown_application",
    )
    .await;

    // The recall document names the action, application, referral, reason, nonce, times.
    refused(
        &e,
        &format!("/api/citizen/applications/{id}/recall/document"),
        Some(&token),
        json!({}),
        StatusCode::UNPROCESSABLE_ENTITY,
        "reason_required",
    )
    .await;
    let doc = document(
        &e,
        &token,
        &id,
        "recall",
        Some("Передумали: ближе к дому & к бабушке"),
    )
    .await;
    let xml = doc["xml"].as_str().unwrap();
    for part in [
        "<recall>".to_string(),
        "<action>recall</action>".to_string(),
        format!("<application>{id}</application>"),
        format!("<referral>{referral}</referral>"),
        format!("<applicant_iin>{}</applicant_iin>", p.a.iin),
        "<reason>Передумали: ближе к дому &amp; к бабушке</reason>".to_string(),
        format!("<nonce>{}</nonce>", doc["nonce"].as_str().unwrap()),
        "<issued_at>".to_string(),
        "<expires_at>".to_string(),
    ] {
        assert!(xml.contains(&part), "{part} missing from {xml}");
    }
    let signed = sign(xml, &p.a.sign);
    let (st, card) = post(
        &e,
        &format!("/api/citizen/applications/{id}/recall"),
        Some(&token),
        json!({ "signed_xml": signed }),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{card}");
    assert_eq!(card["status"], "queued");
    assert_eq!(card["queue_position"].as_u64(), Some(position));
    let actor = format!("applicant:{}:{}", p.a.iin, p.a.sign.info().serial);
    let recalled = card["history"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["event"] == "referral_recalled")
        .unwrap();
    assert_eq!(recalled["actor"], actor.as_str());
    assert_eq!(recalled["reason"], "Передумали: ближе к дому & к бабушке");
    e.app
        .store()
        .read()
        .unwrap()
        .state()
        .check_invariants()
        .unwrap();

    // The evidence: the signed XML and its report, referenced from the audit log.
    let sha = {
        use sha2::{Digest, Sha256};
        hex::encode(Sha256::digest(signed.as_bytes()))
    };
    let kept = std::fs::read_to_string(e.data.join(format!("web/signed/{sha}.xml"))).unwrap();
    assert_eq!(kept, signed);
    let report: Value = serde_json::from_slice(
        &std::fs::read(e.data.join(format!("web/signed/{sha}.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(report["report"]["valid"], true);
    assert_eq!(report["application"], id.as_str());
    let audit = read_audit(&e.data);
    let line = audit
        .iter()
        .find(|l| l["action"] == "citizen_recall")
        .unwrap();
    assert_eq!(line["actor"], actor.as_str());
    assert_eq!(line["detail"]["document_sha256"], sha.as_str());
    assert_eq!(
        line["detail"]["cert_serial"],
        p.a.sign.info().serial.as_str()
    );

    // Replaying the same signed request: the nonce works once.
    refused(
        &e,
        &format!("/api/citizen/applications/{id}/recall"),
        Some(&token),
        json!({ "signed_xml": signed }),
        StatusCode::CONFLICT,
        "nonce_used",
    )
    .await;
}

#[tokio::test]
async fn every_refusal_is_named_and_changes_nothing() {
    let e = env();
    let p = pki();
    let (id, _) = attached_with_referral(&e, &p.a.iin).await;
    let (other, _) = attached_with_referral(&e, &p.b.iin).await;
    let recall = format!("/api/citizen/applications/{id}/recall");

    // Login: a signing key is refused; so is a replayed, an expired, or a foreign document.
    let xml = challenge(&e).await;
    let v = refused(
        &e,
        "/api/citizen/login",
        None,
        json!({"signed_xml": sign(&xml, &p.a.sign)}),
        StatusCode::FORBIDDEN,
        "wrong_purpose",
    )
    .await;
    assert_eq!(v["error"]["report"]["key_usage"], "sign");
    let signed_login = sign(&xml, &p.a.auth);
    let (st, _) = post(
        &e,
        "/api/citizen/login",
        None,
        json!({"signed_xml": signed_login}),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    refused(
        &e,
        "/api/citizen/login",
        None,
        json!({"signed_xml": signed_login}),
        StatusCode::CONFLICT,
        "nonce_used",
    )
    .await;
    let self_made = "<login>\n  <action>login</action>\n  <service>kezek</service>\n  <nonce>00112233445566778899aabbccddeeff</nonce>\n</login>\n";
    refused(
        &e,
        "/api/citizen/login",
        None,
        json!({"signed_xml": sign(self_made, &p.a.auth)}),
        StatusCode::CONFLICT,
        "nonce_unknown",
    )
    .await;
    let xml = challenge(&e).await;
    let with_extra = xml.replace("</login>", "<admin>true</admin></login>");
    refused(
        &e,
        "/api/citizen/login",
        None,
        json!({"signed_xml": sign(&with_extra, &p.a.auth)}),
        StatusCode::UNPROCESSABLE_ENTITY,
        "document_mismatch",
    )
    .await;
    refused(
        &e,
        "/api/citizen/login",
        None,
        json!({"signed_xml": "<login>not signed</login>"}),
        StatusCode::UNPROCESSABLE_ENTITY,
        "missing_signature",
    )
    .await;
    let xml = challenge(&e).await;
    tick(&e, SignedDuration::from_mins(6));
    refused(
        &e,
        "/api/citizen/login",
        None,
        json!({"signed_xml": sign(&xml, &p.a.auth)}),
        StatusCode::CONFLICT,
        "nonce_expired",
    )
    .await;

    let ta = login_with_email(&e, &p.a).await;
    let tb = login_with_email(&e, &p.b).await;
    // No token, or an operator's token, is not a citizen.
    is_error(
        &call(&e, "GET", "/api/citizen/applications", None, None).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    is_error(
        &get(&e, "/api/citizen/applications", &e.operator).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    // ... and a citizen's token is not an operator's.
    is_error(
        &get(&e, &format!("/api/applications/{id}"), &ta).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );

    let reason = Some("Нашли частный сад");
    // An expired nonce: the document was handed out more than five minutes ago.
    let late = document(&e, &ta, &id, "recall", reason).await;
    tick(&e, SignedDuration::from_mins(6));
    refused(
        &e,
        &recall,
        Some(&ta),
        json!({"signed_xml": sign(late["xml"].as_str().unwrap(), &p.a.sign)}),
        StatusCode::CONFLICT,
        "nonce_expired",
    )
    .await;
    // An AUTH key on a recall.
    let doc = document(&e, &ta, &id, "recall", reason).await;
    let xml = doc["xml"].as_str().unwrap();
    refused(
        &e,
        &recall,
        Some(&ta),
        json!({"signed_xml": sign(xml, &p.a.auth)}),
        StatusCode::FORBIDDEN,
        "wrong_purpose",
    )
    .await;
    // Another person's signature on A's request (sent in A's session).
    refused(
        &e,
        &recall,
        Some(&ta),
        json!({"signed_xml": sign(xml, &p.b.sign)}),
        StatusCode::FORBIDDEN,
        "signer_not_applicant",
    )
    .await;
    // ... or in B's own session: not B's application.
    refused(
        &e,
        &recall,
        Some(&tb),
        json!({"signed_xml": sign(xml, &p.b.sign)}),
        StatusCode::NOT_FOUND,
        "unknown_application",
    )
    .await;
    // Tampered after signing: the reason changed.
    let signed = sign(xml, &p.a.sign);
    let tampered = signed.replace("Нашли частный сад", "Нашли другой сад");
    assert_ne!(tampered, signed);
    let v = refused(
        &e,
        &recall,
        Some(&ta),
        json!({"signed_xml": tampered}),
        StatusCode::FORBIDDEN,
        "digest_mismatch",
    )
    .await;
    assert_eq!(v["error"]["report"]["signature_valid"], false);
    // A comment slipped into the application number after signing.
    let commented = signed.replacen(
        &format!("<application>{id}"),
        &format!("<application><!---->{id}"),
        1,
    );
    refused(
        &e,
        &recall,
        Some(&ta),
        json!({"signed_xml": commented}),
        StatusCode::UNPROCESSABLE_ENTITY,
        "comment_forbidden",
    )
    .await;
    // The document for this application sent for another one, or as another action.
    refused(
        &e,
        &format!("/api/citizen/applications/{other}/recall"),
        Some(&ta),
        json!({"signed_xml": signed}),
        StatusCode::UNPROCESSABLE_ENTITY,
        "document_mismatch",
    )
    .await;
    refused(
        &e,
        &format!("/api/citizen/applications/{id}/extend"),
        Some(&ta),
        json!({"signed_xml": signed}),
        StatusCode::UNPROCESSABLE_ENTITY,
        "document_mismatch",
    )
    .await;
    // A document the server did not issue, though signed by the right key.
    let forged = xml.replace(
        doc["nonce"].as_str().unwrap(),
        "ffeeddccbbaa99887766554433221100",
    );
    refused(
        &e,
        &recall,
        Some(&ta),
        json!({"signed_xml": sign(&forged, &p.a.sign)}),
        StatusCode::CONFLICT,
        "nonce_unknown",
    )
    .await;
    // The issued document with another reason, signed: not the document as issued.
    let rewritten = xml.replace("Нашли частный сад", "Другая причина");
    refused(
        &e,
        &recall,
        Some(&ta),
        json!({"signed_xml": sign(&rewritten, &p.a.sign)}),
        StatusCode::UNPROCESSABLE_ENTITY,
        "document_mismatch",
    )
    .await;
    // A certificate from a CA nobody trusts.
    let v = refused(
        &e,
        &recall,
        Some(&ta),
        json!({"signed_xml": sign(xml, &p.a_rogue_sign)}),
        StatusCode::FORBIDDEN,
        "untrusted",
    )
    .await;
    assert_eq!(v["error"]["report"]["chain"], "untrusted");
    // A revoked certificate (the CRL is added while the server runs).
    let crl =
        p.ca.crl(
            &[p.a_revoked_sign.serial_hex()],
            now() - SignedDuration::from_hours(1),
            now() + SignedDuration::from_hours(24 * 7),
            1,
        )
        .unwrap();
    std::fs::write(e.data.join("pki/crl/kezek-test.der"), crl).unwrap();
    let v = refused(
        &e,
        &recall,
        Some(&ta),
        json!({"signed_xml": sign(xml, &p.a_revoked_sign)}),
        StatusCode::FORBIDDEN,
        "revoked",
    )
    .await;
    assert_eq!(v["error"]["report"]["chain"], "revoked");
    // Bodies: unknown fields, over the size limit.
    refused(
        &e,
        &recall,
        Some(&ta),
        json!({"signed_xml": signed, "application": other}),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_body",
    )
    .await;
    refused(
        &e,
        &recall,
        Some(&ta),
        json!({"signed_xml": "x".repeat(70 * 1024)}),
        StatusCode::PAYLOAD_TOO_LARGE,
        "too_large",
    )
    .await;

    // After all that, the document issued first still works (nothing was spent).
    let (st, card) = post(&e, &recall, Some(&ta), json!({"signed_xml": signed})).await;
    assert_eq!(st, StatusCode::OK, "{card}");
    assert_eq!(card["status"], "queued");
    // The recall window is the engine's: no document for a referral that is gone.
    refused(
        &e,
        &format!("{recall}/document"),
        Some(&ta),
        json!({"reason": "ещё раз"}),
        StatusCode::CONFLICT,
        "no_active_referral",
    )
    .await;
    // The session expires by the server's clock.
    tick(&e, SignedDuration::from_mins(31));
    is_error(
        &get(&e, "/api/citizen/applications", &ta).await,
        StatusCode::UNAUTHORIZED,
        "session_expired",
    );
}

#[tokio::test]
async fn a_parent_extends_a_referral_once_with_a_signature() {
    let e = env();
    let p = pki();
    let (id, _) = attached_with_referral(&e, &p.a.iin).await;
    let token = login_with_email(&e, &p.a).await;
    let extend = format!("/api/citizen/applications/{id}/extend");
    let doc = document(&e, &token, &id, "extend", None).await;
    let xml = doc["xml"].as_str().unwrap();
    assert!(xml.contains("<action>extend</action>"));
    refused(
        &e,
        &extend,
        Some(&token),
        json!({"signed_xml": sign(xml, &p.a.auth)}),
        StatusCode::FORBIDDEN,
        "wrong_purpose",
    )
    .await;
    refused(
        &e,
        &extend,
        Some(&token),
        json!({"signed_xml": sign(xml, &p.b.sign)}),
        StatusCode::FORBIDDEN,
        "signer_not_applicant",
    )
    .await;
    let signed = sign(xml, &p.a.sign);
    refused(
        &e,
        &format!("/api/citizen/applications/{id}/recall"),
        Some(&token),
        json!({"signed_xml": signed}),
        StatusCode::UNPROCESSABLE_ENTITY,
        "document_mismatch",
    )
    .await;
    let (st, card) = post(&e, &extend, Some(&token), json!({"signed_xml": signed})).await;
    assert_eq!(st, StatusCode::OK, "{card}");
    assert_eq!(card["referral"]["extended"], true);
    let last = card["history"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["event"], "referral_extended");
    assert_eq!(
        last["actor"],
        format!("applicant:{}:{}", p.a.iin, p.a.sign.info().serial).as_str()
    );
    refused(
        &e,
        &extend,
        Some(&token),
        json!({"signed_xml": signed}),
        StatusCode::CONFLICT,
        "nonce_used",
    )
    .await;
    // A second extension: the engine refuses before anything is handed out to sign.
    refused(
        &e,
        &format!("{extend}/document"),
        Some(&token),
        json!({}),
        StatusCode::CONFLICT,
        "already_extended",
    )
    .await;
    let audit = read_audit(&e.data);
    assert!(audit.iter().any(|l| l["action"] == "citizen_extend"));
}

#[tokio::test]
async fn operators_attach_an_application_to_a_parent_with_a_checked_iin() {
    let e = env();
    let (id, _) = takeable(&e).await;
    let uri = format!("/api/applications/{id}/applicant");
    let iin = parent_iin(5555);
    let mut bad = iin.clone();
    let last = bad.pop().unwrap();
    bad.push(if last == '9' {
        '0'
    } else {
        char::from(last as u8 + 1)
    });
    refused(
        &e,
        &uri,
        Some(&e.operator),
        json!({"iin": bad, "reason": "merge"}),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_iin",
    )
    .await;
    refused(
        &e,
        &uri,
        Some(&e.operator),
        json!({"iin": "12345", "reason": "merge"}),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_iin",
    )
    .await;
    let child = Iin::make_valid(jiff::civil::date(2024, 1, 1), false, 7).to_string();
    refused(
        &e,
        &uri,
        Some(&e.operator),
        json!({"iin": child, "reason": "merge"}),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_iin",
    )
    .await;
    refused(
        &e,
        &uri,
        Some(&e.operator),
        json!({"iin": iin}),
        StatusCode::UNPROCESSABLE_ENTITY,
        "reason_required",
    )
    .await;
    refused(
        &e,
        &uri,
        Some(&e.viewer),
        json!({"iin": iin, "reason": "merge"}),
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    let (st, card) = post(
        &e,
        &uri,
        Some(&e.operator),
        json!({"iin": iin, "reason": "merge"}),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{card}");
    assert_eq!(card["applicant_iin"], iin.as_str());
    assert_eq!(card["applicant_name"], Value::Null);
    refused(
        &e,
        &uri,
        Some(&e.operator),
        json!({"iin": iin, "reason": "again"}),
        StatusCode::CONFLICT,
        "no_change",
    )
    .await;
    // The index follows the event through a reopen (replay) too.
    let s = e.app.store();
    let s = s.read().unwrap();
    assert_eq!(s.state().count_of_applicant(&iin), 1);
    let report = s.verify().unwrap();
    assert!(report.ok(), "{:?}", report.problems);
}

#[tokio::test]
async fn outstanding_nonces_are_bounded_the_oldest_evicted() {
    let e = env_with(Limits {
        citizen: CitizenLimits {
            max_login_nonces: 2,
            ..CitizenLimits::default()
        },
        ..Limits::default()
    });
    let p = pki();
    let first = challenge(&e).await;
    let second = challenge(&e).await;
    let third = challenge(&e).await;
    refused(
        &e,
        "/api/citizen/login",
        None,
        json!({"signed_xml": sign(&first, &p.a.auth)}),
        StatusCode::CONFLICT,
        "nonce_unknown",
    )
    .await;
    for xml in [second, third] {
        let (st, v) = post(
            &e,
            "/api/citizen/login",
            None,
            json!({"signed_xml": sign(&xml, &p.a.auth)}),
        )
        .await;
        assert_eq!(st, StatusCode::OK, "{v}");
    }
}

#[tokio::test]
async fn the_real_nca_test_certificates_are_read_but_refused_as_expired() {
    // The NCA fixtures have no private keys: a document carrying the real AUTH
    // certificate with a signature made by another key fails the signature check, and the
    // certificate is expired at the server's clock (2026) anyway.
    let e = env();
    let p = pki();
    let xml = challenge(&e).await;
    let signed = sign(&xml, &p.a.auth);
    let real =
        Certificate::parse(&std::fs::read(fixtures().join("individual_auth_rsa.pem")).unwrap())
            .unwrap();
    use base64::Engine as _;
    let b64 = |c: &Certificate| base64::engine::general_purpose::STANDARD.encode(c.der());
    let wrap = |s: String| {
        s.as_bytes()
            .chunks(76)
            .map(|c| String::from_utf8_lossy(c).to_string())
            .collect::<Vec<_>>()
            .join("&#13;\n")
    };
    let swapped = signed.replace(&wrap(b64(&p.a.auth)), &wrap(b64(&real)));
    assert_ne!(swapped, signed);
    let v = refused(
        &e,
        "/api/citizen/login",
        None,
        json!({"signed_xml": swapped}),
        StatusCode::UNAUTHORIZED,
        "signature_invalid",
    )
    .await;
    let report = &v["error"]["report"];
    assert_eq!(report["signer"]["iin"], "123456789011");
    assert_eq!(report["key_usage"], "auth");
    assert_eq!(report["chain"], "expired");
}

#[tokio::test]
async fn the_openapi_document_lists_the_citizen_endpoints() {
    let e = env();
    let (_, doc) = get(&e, "/api/openapi.json", &e.viewer).await;
    for (path, method) in [
        ("/api/citizen/challenge", "post"),
        ("/api/citizen/login", "post"),
        ("/api/citizen/email", "post"),
        ("/api/citizen/me", "get"),
        ("/api/citizen/applications", "get"),
        ("/api/citizen/applications/{id}", "get"),
        ("/api/citizen/applications/{id}/recall/document", "post"),
        ("/api/citizen/applications/{id}/recall", "post"),
        ("/api/citizen/applications/{id}/extend/document", "post"),
        ("/api/citizen/applications/{id}/extend", "post"),
        ("/api/applications/{id}/applicant", "post"),
    ] {
        assert!(doc["paths"][path][method].is_object(), "{method} {path}");
    }
    assert!(doc["components"]["securitySchemes"]["citizen"].is_object());
}
