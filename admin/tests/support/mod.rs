//! What the page tests share: a store with the small demo city and three accounts behind
//! the router (`Env`), and `Browser`, a cookie jar that signs in through the login form
//! and posts forms with their CSRF token.
#![allow(dead_code)]

use std::collections::HashMap;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use jiff::Timestamp;
use kezek_admin::web::{self, App, Limits, Role};
use kezek_engine::demo::{self, Scale};
use kezek_engine::{Actor, ClockMode, RuleSet, Store};
use serde_json::Value;
use tower::ServiceExt;

pub const PASSWORD: &str = "a long enough password";

pub struct Env {
    pub _dir: tempfile::TempDir,
    pub app: App,
    pub router: Router,
}

pub fn now() -> Timestamp {
    "2026-12-02T04:00:00Z".parse().unwrap()
}

pub fn env() -> Env {
    env_with(Limits::default())
}

pub fn env_with(limits: Limits) -> Env {
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
    for (name, role) in [
        ("vera", Role::Viewer),
        ("oleg", Role::Operator),
        ("rita", Role::RulesAdmin),
    ] {
        app.accounts().add_user(name, role, PASSWORD).unwrap();
    }
    let router = web::router(app.clone());
    Env {
        _dir: dir,
        app,
        router,
    }
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: String,
}

impl Resp {
    pub fn location(&self) -> &str {
        self.headers
            .get("location")
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

/// A browser: a cookie jar over the router.
pub struct Browser<'a> {
    pub e: &'a Env,
    pub cookies: HashMap<String, String>,
    /// The client address the server sees (as `kezek serve` gives it).
    pub ip: Option<std::net::SocketAddr>,
}

impl<'a> Browser<'a> {
    pub fn new(e: &'a Env) -> Browser<'a> {
        Browser {
            e,
            cookies: HashMap::new(),
            ip: None,
        }
    }

    pub async fn send(&mut self, req: axum::http::request::Builder, body: Body) -> Resp {
        let cookie: Vec<String> = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let req = if cookie.is_empty() {
            req
        } else {
            req.header("cookie", cookie.join("; "))
        };
        let mut req = req.body(body).unwrap();
        if let Some(ip) = self.ip {
            req.extensions_mut().insert(axum::extract::ConnectInfo(ip));
        }
        let res = self.e.router.clone().oneshot(req).await.unwrap();
        for v in res.headers().get_all("set-cookie") {
            let s = v.to_str().unwrap();
            let (pair, _) = s.split_once(';').unwrap_or((s, ""));
            let (k, val) = pair.split_once('=').unwrap();
            if s.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_string(), val.to_string());
            }
        }
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = axum::body::to_bytes(res.into_body(), 64 << 20)
            .await
            .unwrap();
        Resp {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    pub async fn get(&mut self, uri: &str) -> Resp {
        self.send(Request::builder().uri(uri), Body::empty()).await
    }

    pub async fn post(&mut self, uri: &str, fields: &[(&str, &str)]) -> Resp {
        let body = serde_urlencoded::to_string(fields).unwrap();
        self.send(
            Request::builder()
                .method("POST")
                .uri(uri)
                .header("content-type", "application/x-www-form-urlencoded"),
            Body::from(body),
        )
        .await
    }

    pub async fn api(&mut self, method: &str, uri: &str, csrf: Option<&str>, body: Value) -> Resp {
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", "application/json");
        if let Some(c) = csrf {
            req = req.header("x-csrf-token", c);
        }
        self.send(req, Body::from(body.to_string())).await
    }

    /// Signs in through the login form.
    pub async fn login(&mut self, name: &str, password: &str) -> Resp {
        let page = self.get("/login").await;
        assert_eq!(page.status, StatusCode::OK);
        let tok = csrf(&page.body);
        self.post(
            "/login",
            &[
                ("csrf", &tok),
                ("username", name),
                ("password", password),
                ("next", "/"),
            ],
        )
        .await
    }

    pub async fn signed_in(e: &'a Env, name: &str) -> Browser<'a> {
        let mut b = Browser::new(e);
        let r = b.login(name, PASSWORD).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
        b
    }

    /// The CSRF token of a signed-in page.
    pub async fn token(&mut self) -> String {
        csrf(&self.get("/console").await.body)
    }
}

pub fn csrf(html: &str) -> String {
    let at = html
        .find("name=\"csrf\" value=\"")
        .expect("a csrf field in the page");
    html[at + 19..at + 19 + 64].to_string()
}

/// The text of the element with `data-test="NAME"` (up to the next tag).
pub fn test_text(html: &str, name: &str) -> String {
    let key = format!("data-test=\"{name}\"");
    let at = html
        .find(&key)
        .unwrap_or_else(|| panic!("no {name} in page"));
    let rest = &html[at..];
    let start = rest.find('>').unwrap() + 1;
    let end = rest[start..].find('<').unwrap() + start;
    rest[start..end].to_string()
}

pub fn digest(e: &Env) -> [u8; 32] {
    e.app.store().read().unwrap().state().digest()
}
