//! `/login` and `/logout`.
//!
//! The login form carries a double-submit CSRF token (the cookie `kezek_login` and the
//! field `csrf` must match). The password is checked with argon2 on the blocking pool,
//! after the throttle: a locked-out name or address is refused (429) without a check.
//! A successful login starts a new session (a new id: no session fixation) and is
//! recorded in the audit log, as is every refused attempt.

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use jiff::Timestamp;
use maud::{html, DOCTYPE};
use serde::Deserialize;
use serde_json::json;

use super::{html_response, lang_switch, request_lang, safe_next, Fields, PageError, PageResult};
use crate::web::audit::AuditEntry;
use crate::web::i18n::{t, Lang};
use crate::web::server::App;
use crate::web::session::{self, LoginRefusal, LOGIN_COOKIE, SESSION_COOKIE};

#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    pub next: Option<String>,
}

fn login_form(
    lang: Lang,
    uri: &axum::http::Uri,
    token: &str,
    next: &str,
    name: &str,
    error: Option<&str>,
) -> Response {
    let m = html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (t(lang, "login_title")) " · Kezek" }
                link rel="stylesheet" href="/assets/style.css";
            }
            body data-page="login" {
                main.narrow.login {
                    p.brand { "Kezek" span.sub { (t(lang, "brand_sub")) } }
                    (lang_switch(lang, uri))
                    h1 #page-title { (t(lang, "login_title")) }
                    @if let Some(e) = error {
                        p.flash.err #login-error data-test="login-error" role="alert" { (e) }
                    }
                    form method="post" action="/login" #login-form data-test="login-form" {
                        input type="hidden" name="csrf" value=(token);
                        input type="hidden" name="next" value=(next);
                        label { (t(lang, "username"))
                            input type="text" name="username" #username data-test="username" value=(name) autocomplete="username" maxlength="64" required autofocus; }
                        label { (t(lang, "password"))
                            input type="password" name="password" #password data-test="password" autocomplete="current-password" maxlength="1024" required; }
                        button.primary type="submit" #login-submit data-test="login-submit" { (t(lang, "login_button")) }
                    }
                    p.muted { (t(lang, "login_hint")) }
                    p { a href="/public" { (t(lang, "nav_public")) } }
                }
            }
        }
    };
    html_response(m)
}

fn with_login_cookie(mut res: Response, token: &str, secure: bool) -> Response {
    let c = session::set_cookie(
        LOGIN_COOKIE,
        token,
        Some(std::time::Duration::from_secs(3600)),
        secure,
    );
    if let Ok(v) = HeaderValue::from_str(&c) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    res
}

/// The login token of the browser (kept if it has a good one, so that two tabs work).
fn login_token(headers: &HeaderMap) -> String {
    session::cookie(headers, LOGIN_COOKIE)
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(str::to_string)
        .unwrap_or_else(session::random_token)
}

pub async fn login_page(
    State(app): State<App>,
    Query(q): Query<LoginQuery>,
    parts: Parts,
) -> Response {
    let lang = request_lang(&parts);
    let token = login_token(&parts.headers);
    let next = safe_next(q.next.as_deref());
    // Already signed in: go on.
    if let Some(id) = session::cookie(&parts.headers, SESSION_COOKIE) {
        if app.inner.sessions.get(id, false).is_some() {
            return Redirect::to(&next).into_response();
        }
    }
    let secure = app.inner.sessions.limits().secure_cookies;
    with_login_cookie(
        login_form(lang, &parts.uri, &token, &next, "", None),
        &token,
        secure,
    )
}

fn client_ip(parts: &Parts) -> Option<String> {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
}

fn audit_login(app: &App, name: &str, outcome: &str, ip: Option<&str>) {
    let entry = AuditEntry {
        at: Timestamp::now(),
        actor: format!("operator:{name}"),
        action: "login".into(),
        outcome: outcome.into(),
        detail: json!({ "ip": ip }),
    };
    if let Err(e) = app.audit().append(&entry) {
        eprintln!("audit: {e}");
    }
}

pub async fn login_post(State(app): State<App>, parts: Parts, body: Bytes) -> PageResult {
    let lang = request_lang(&parts);
    let secure = app.inner.sessions.limits().secure_cookies;
    let f = Fields::parse(&body).map_err(|e| e.in_lang(lang))?;
    let next = safe_next(f.get("next"));
    let cookie_token = session::cookie(&parts.headers, LOGIN_COOKIE).unwrap_or("");
    let form_token = f.get("csrf").unwrap_or("");
    if !session::same_secret(cookie_token, form_token) {
        return Err(PageError::new(StatusCode::FORBIDDEN, t(lang, "csrf_failed")).in_lang(lang));
    }
    let name = f.get("username").unwrap_or("").trim().to_string();
    let password = f.get("password").unwrap_or("").to_string();
    let token = cookie_token.to_string();
    let again = |status: StatusCode, msg: String, name: &str| -> Response {
        let mut res = login_form(lang, &parts.uri, &token, &next, name, Some(&msg));
        *res.status_mut() = status;
        res
    };
    if name.is_empty() || name.len() > 64 || password.is_empty() || password.len() > 1024 {
        return Ok(again(
            StatusCode::UNPROCESSABLE_ENTITY,
            t(lang, "login_failed").to_string(),
            "",
        ));
    }
    let ip = client_ip(&parts);
    if let Err(LoginRefusal::Throttled(d)) = app.inner.sessions.check_throttle(&name, ip.as_deref())
    {
        audit_login(&app, &name, "throttled", ip.as_deref());
        let msg = format!("{} {}", t(lang, "login_throttled"), d.as_secs().max(1));
        let mut res = again(StatusCode::TOO_MANY_REQUESTS, msg, &name);
        if let Ok(v) = HeaderValue::from_str(&d.as_secs().max(1).to_string()) {
            res.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return Ok(res);
    }
    let checked = {
        let name = name.clone();
        app.blocking(move |a| Ok(a.accounts().check_login(&name, &password)))
            .await
            .map_err(|e| PageError::from(e).in_lang(lang))?
    };
    let Some(caller) = checked else {
        app.inner.sessions.record_failure(&name, ip.as_deref());
        audit_login(&app, &name, "bad_credentials", ip.as_deref());
        return Ok(again(
            StatusCode::UNAUTHORIZED,
            t(lang, "login_failed").to_string(),
            &name,
        ));
    };
    app.inner.sessions.record_success(&name);
    // A new session id at every login; an old session of this browser ends.
    if let Some(old) = session::cookie(&parts.headers, SESSION_COOKIE) {
        app.inner.sessions.remove(old);
    }
    let id = app.inner.sessions.create(caller);
    audit_login(&app, &name, "ok", ip.as_deref());
    let mut res = Redirect::to(&next).into_response();
    let max_age = app.inner.sessions.limits().absolute;
    let h = res.headers_mut();
    for c in [
        session::set_cookie(SESSION_COOKIE, &id, Some(max_age), secure),
        session::set_cookie(LOGIN_COOKIE, "", None, secure),
    ] {
        if let Ok(v) = HeaderValue::from_str(&c) {
            h.append(header::SET_COOKIE, v);
        }
    }
    Ok(res)
}

/// `GET /logout`: a page with the sign-out button (signing out changes state: POST).
pub async fn logout_page(State(app): State<App>, parts: Parts) -> Response {
    let lang = request_lang(&parts);
    let Some(s) = session::cookie(&parts.headers, SESSION_COOKIE)
        .and_then(|id| app.inner.sessions.get(id, false))
    else {
        return Redirect::to("/login").into_response();
    };
    let m = html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            head {
                meta charset="utf-8";
                title { (t(lang, "logout")) " · Kezek" }
                link rel="stylesheet" href="/assets/style.css";
            }
            body {
                main.narrow {
                    h1 { (t(lang, "logout")) }
                    form method="post" action="/logout" #logout-form data-test="logout-form" {
                        input type="hidden" name="csrf" value=(s.csrf);
                        button.primary type="submit" #logout data-test="logout" { (t(lang, "logout")) }
                    }
                }
            }
        }
    };
    html_response(m)
}

pub async fn logout_post(State(app): State<App>, parts: Parts, body: Bytes) -> PageResult {
    let lang = request_lang(&parts);
    let secure = app.inner.sessions.limits().secure_cookies;
    let Some(s) = session::cookie(&parts.headers, SESSION_COOKIE)
        .and_then(|id| app.inner.sessions.get(id, false))
    else {
        return Ok(Redirect::to("/login").into_response());
    };
    let f = Fields::parse(&body).map_err(|e| e.in_lang(lang))?;
    if !f
        .get("csrf")
        .is_some_and(|tok| session::same_secret(tok, &s.csrf))
    {
        return Err(PageError::new(StatusCode::FORBIDDEN, t(lang, "csrf_failed")).in_lang(lang));
    }
    app.inner.sessions.remove(&s.id);
    let mut res = Redirect::to("/login").into_response();
    if let Ok(v) = HeaderValue::from_str(&session::set_cookie(SESSION_COOKIE, "", None, secure)) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(res)
}
