//! The console's HTML pages: server-rendered with `maud` (every interpolated value is
//! HTML-escaped), one vendored style sheet and one vendored script (`assets/`), no CDN.
//!
//! - [`Ctx`]: a signed-in browser request (session, CSRF token, language, flash).
//!   Without a session a page redirects to `/login`.
//! - Forms post `application/x-www-form-urlencoded` with the session's CSRF token in the
//!   field `csrf`; after a change they redirect (303) to a page that shows the outcome
//!   once (the session's flash).
//! - Every page's words come from [`super::i18n`]; `?lang=kk|ru|en` on any page switches
//!   and remembers the choice in a cookie.

pub mod applications;
pub mod audit;
pub mod console;
pub mod kindergartens;
pub mod login;
pub mod overview;
pub mod public;
pub mod rules;
pub mod simulate;
pub mod stats;

use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use jiff::civil::Date;
use jiff::Timestamp;
use kezek_engine::calendar;
use maud::{html, Markup, PreEscaped, DOCTYPE};

use super::accounts::{Caller, Role};
use super::error::ApiError;
use super::i18n::{t, Lang};
use super::server::App;
use super::session::{self, Flash, CSRF_FIELD, SESSION_COOKIE};

pub const STYLE_CSS: &str = include_str!("../assets/style.css");
pub const APP_JS: &str = include_str!("../assets/app.js");

/// Rows of one list page.
pub const PAGE_ROWS: usize = 50;
/// Results of an application search.
pub const MAX_SEARCH_RESULTS: usize = 100;

// ---------------------------------------------------------------------------------------
// The request context.

/// A signed-in browser request.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub caller: Caller,
    pub sid: String,
    pub csrf: String,
    pub lang: Lang,
    pub flash: Option<Flash>,
    /// The path and query of this request (for the language links).
    pub uri: Uri,
}

impl Ctx {
    pub fn t(&self, key: &str) -> &'static str {
        t(self.lang, key)
    }
    pub fn can(&self, role: Role) -> bool {
        self.caller.role >= role
    }
}

/// The page language of a request: `?lang=`, then the cookie, then `Accept-Language`.
pub fn request_lang(parts: &Parts) -> Lang {
    if let Some(l) = parts.extensions.get::<Lang>() {
        return *l;
    }
    lang_of(&parts.uri, &parts.headers).0
}

/// The page language of a whole request (before routing).
pub fn request_lang_of(req: &Request) -> Lang {
    lang_of(req.uri(), req.headers()).0
}

/// Turns a plain-text error response (from a layer or the router) into an HTML error
/// page; HTML, JSON and CSV responses pass as they are.
pub fn html_errors(res: Response, lang: Lang) -> Response {
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    let typed = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.starts_with("text/html")
                || v.starts_with("application/json")
                || v.starts_with("text/csv")
        });
    if typed {
        return res;
    }
    let key = match status {
        StatusCode::PAYLOAD_TOO_LARGE => "err_too_large",
        StatusCode::REQUEST_TIMEOUT => "err_timeout",
        StatusCode::METHOD_NOT_ALLOWED => "err_method",
        StatusCode::NOT_FOUND => "no_such_page",
        _ => "err_request",
    };
    let mut out = PageError::new(status, t(lang, key))
        .in_lang(lang)
        .into_response();
    for (k, v) in res.headers() {
        if k != header::CONTENT_TYPE && k != header::CONTENT_LENGTH {
            out.headers_mut().insert(k.clone(), v.clone());
        }
    }
    out
}

/// The language and whether it came from the query (then the cookie is set).
fn lang_of(uri: &Uri, headers: &axum::http::HeaderMap) -> (Lang, bool) {
    if let Some(q) = uri.query() {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(q).unwrap_or_default();
        if let Some(l) = pairs
            .iter()
            .find(|(k, _)| k == "lang")
            .and_then(|(_, v)| Lang::parse(v))
        {
            return (l, true);
        }
    }
    if let Some(l) = session::cookie(headers, session::LANG_COOKIE).and_then(Lang::parse) {
        return (l, false);
    }
    let accept = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    for part in accept.split(',') {
        let tag = part.split(';').next().unwrap_or("").trim();
        if let Some(l) = Lang::parse(tag.split('-').next().unwrap_or("")) {
            return (l, false);
        }
    }
    (Lang::Kk, false)
}

/// Sets the page language for the request, remembers a `?lang=` choice in a cookie, and
/// adds the security headers of HTML pages.
pub async fn lang_and_headers(
    app: axum::extract::State<App>,
    mut req: Request,
    next: Next,
) -> Response {
    let (lang, from_query) = lang_of(req.uri(), req.headers());
    req.extensions_mut().insert(lang);
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    if from_query {
        let secure = app.inner.sessions.limits().secure_cookies;
        if let Ok(v) = HeaderValue::from_str(&session::lang_cookie(lang, secure)) {
            h.append(header::SET_COOKIE, v);
        }
    }
    let is_html = h
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if is_html {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            ),
        );
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        h.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        );
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    res
}

/// The local path to come back to after the login (`/` unless it is a safe local path).
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.contains('\\')
                && n.len() <= 2000
                && !n.chars().any(|c| c.is_control()) =>
        {
            n.to_string()
        }
        _ => "/".to_string(),
    }
}

fn login_redirect(uri: &Uri) -> Response {
    let next = uri.path_and_query().map_or("/", |p| p.as_str());
    let q = serde_urlencoded::to_string([("next", next)]).unwrap_or_default();
    Redirect::to(&format!("/login?{q}")).into_response()
}

impl FromRequestParts<App> for Ctx {
    type Rejection = Response;
    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Response> {
        let lang = request_lang(parts);
        let Some(id) = session::cookie(&parts.headers, SESSION_COOKIE) else {
            return Err(login_redirect(&parts.uri));
        };
        let take_flash = parts.method == Method::GET;
        let Some(s) = app.inner.sessions.get(id, take_flash) else {
            return Err(login_redirect(&parts.uri));
        };
        // The accounts file is the truth: a disabled account or a changed role counts now.
        let Some(caller) = app.accounts().caller(&s.caller.name) else {
            app.inner.sessions.remove(&s.id);
            return Err(login_redirect(&parts.uri));
        };
        Ok(Ctx {
            caller,
            sid: s.id,
            csrf: s.csrf,
            lang,
            flash: s.flash,
            uri: parts.uri.clone(),
        })
    }
}

// ---------------------------------------------------------------------------------------
// Forms.

/// A posted form: its fields in order.
pub struct Fields(pub Vec<(String, String)>);

impl Fields {
    pub fn parse(body: &[u8]) -> Result<Fields, PageError> {
        serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
            .map(Fields)
            .map_err(|e| PageError::bad_request(format!("the form does not parse: {e}")))
    }
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    /// A field that must be there and not blank.
    pub fn required(&self, name: &str, ctx: &Ctx) -> Result<String, PageError> {
        match self.get(name).map(str::trim) {
            Some(v) if !v.is_empty() => Ok(v.to_string()),
            _ => Err(PageError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("{}: {}", name, ctx.t("field_required")),
            )),
        }
    }
    /// An optional, trimmed, non-blank field.
    pub fn opt(&self, name: &str) -> Option<String> {
        self.get(name)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    }
}

/// Reads a form and checks its CSRF token against the session's.
pub fn checked_form(ctx: &Ctx, body: &[u8]) -> Result<Fields, PageError> {
    let f = Fields::parse(body)?;
    match f.get(CSRF_FIELD) {
        Some(tok) if session::same_secret(tok, &ctx.csrf) => Ok(f),
        _ => Err(PageError::new(StatusCode::FORBIDDEN, ctx.t("csrf_failed"))),
    }
}

/// Refuses a form below a role (the buttons are hidden too, but a form can be forged).
pub fn need_role(ctx: &Ctx, role: Role) -> Result<(), PageError> {
    if ctx.can(role) {
        Ok(())
    } else {
        Err(PageError::new(
            StatusCode::FORBIDDEN,
            format!("{} {}", ctx.t("role_needed"), role.code()),
        ))
    }
}

/// Shows `ok`/`error` once on the next page and goes there.
pub fn flash_redirect(
    app: &App,
    ctx: &Ctx,
    ok: bool,
    text: impl Into<String>,
    to: &str,
) -> Response {
    app.inner.sessions.set_flash(&ctx.sid, ok, text);
    Redirect::to(to).into_response()
}

// ---------------------------------------------------------------------------------------
// Errors as pages.

#[derive(Debug)]
pub struct PageError {
    pub status: StatusCode,
    pub message: String,
    pub lang: Lang,
}

impl PageError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> PageError {
        PageError {
            status,
            message: message.into(),
            lang: Lang::En,
        }
    }
    pub fn bad_request(message: impl Into<String>) -> PageError {
        PageError::new(StatusCode::BAD_REQUEST, message)
    }
    pub fn not_found(message: impl Into<String>) -> PageError {
        PageError::new(StatusCode::NOT_FOUND, message)
    }
    pub fn in_lang(mut self, lang: Lang) -> PageError {
        self.lang = lang;
        self
    }
}

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> PageError {
        PageError::new(e.status, e.message)
    }
}

impl From<kezek_engine::EngineError> for PageError {
    fn from(e: kezek_engine::EngineError) -> PageError {
        ApiError::from(e).into()
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let l = self.lang;
        let body = html! {
            (DOCTYPE)
            html lang=(l.code()) {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    title { (t(l, "error")) " " (self.status.as_u16()) " · Kezek" }
                    link rel="stylesheet" href="/assets/style.css";
                }
                body {
                    main.narrow {
                        h1 { (t(l, "error")) " " (self.status.as_u16()) }
                        p.flash.err #error data-test="error" data-status=(self.status.as_u16()) { (self.message) }
                        p { a href="/" { (t(l, "back_home")) } }
                    }
                }
            }
        };
        (self.status, html_response(body)).into_response()
    }
}

/// A page's result: HTML or an error page in the request's language.
pub type PageResult = Result<Response, PageError>;

pub fn html_response(m: Markup) -> Response {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        m.into_string(),
    )
        .into_response()
}

// ---------------------------------------------------------------------------------------
// Formatting.

/// An instant in Almaty time: `2026-12-02 10:00`.
pub fn when(t: Timestamp) -> String {
    calendar::local_datetime(t)
        .strftime("%Y-%m-%d %H:%M")
        .to_string()
}

pub fn when_opt(t: Option<Timestamp>) -> String {
    t.map(when).unwrap_or_else(|| "—".into())
}

const KK_MONTHS: [&str; 12] = [
    "қаң", "ақп", "нау", "сәу", "мам", "мау", "шіл", "там", "қыр", "қаз", "қар", "жел",
];

/// A date as each language writes it: `28-ақп-14`, `28.02.2014`, `2014-02-28`.
pub fn date_in(lang: Lang, d: Date) -> String {
    match lang {
        Lang::Kk => format!(
            "{}-{}-{:02}",
            d.day(),
            KK_MONTHS[(d.month() as usize).saturating_sub(1).min(11)],
            d.year().rem_euclid(100)
        ),
        Lang::Ru => format!("{:02}.{:02}.{}", d.day(), d.month(), d.year()),
        Lang::En => d.to_string(),
    }
}

/// An IIN in lists: the first four and last two digits, `9501******34`.
pub fn mask_iin(iin: &str) -> String {
    let chars: Vec<char> = iin.chars().collect();
    if chars.len() < 8 {
        return "*".repeat(chars.len());
    }
    let n = chars.len();
    chars[..4]
        .iter()
        .chain(std::iter::repeat_n(&'*', n - 6))
        .chain(chars[n - 2..].iter())
        .collect()
}

/// A query string with one parameter set (others kept).
pub fn with_param(uri: &Uri, key: &str, value: &str) -> String {
    let mut pairs: Vec<(String, String)> = uri
        .query()
        .and_then(|q| serde_urlencoded::from_str(q).ok())
        .unwrap_or_default();
    pairs.retain(|(k, _)| k != key);
    pairs.push((key.to_string(), value.to_string()));
    format!(
        "{}?{}",
        uri.path(),
        serde_urlencoded::to_string(&pairs).unwrap_or_default()
    )
}

/// A path segment, percent-encoded (everything but unreserved characters).
pub fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The words of a status in the page language.
pub fn status_word(lang: Lang, code: &str, kk: &str, ru: &str) -> String {
    match lang {
        Lang::Kk => kk.to_string(),
        Lang::Ru => ru.to_string(),
        Lang::En => code.replace('_', " "),
    }
}

/// A category's name in the page language (the rules carry kk/ru/en names).
pub fn category_name(state: &kezek_engine::State, lang: Lang, code: &str) -> String {
    state
        .rules()
        .and_then(|r| r.params().categories.iter().find(|c| c.code == code))
        .map(|c| match lang {
            Lang::Kk => c.kk.clone(),
            Lang::Ru => c.ru.clone(),
            Lang::En => c.en.clone(),
        })
        .unwrap_or_else(|| code.to_string())
}

// ---------------------------------------------------------------------------------------
// The layout.

const NAV: [(&str, &str, &str); 8] = [
    ("overview", "/", "nav_overview"),
    ("applications", "/applications", "nav_applications"),
    ("kindergartens", "/kindergartens", "nav_kindergartens"),
    ("rules", "/rules", "nav_rules"),
    ("console", "/console", "nav_console"),
    ("simulate", "/simulate", "nav_simulate"),
    ("audit", "/audit", "nav_audit"),
    ("public", "/public", "nav_public"),
];

/// The language links of the page (`?lang=` on the current address).
pub fn lang_switch(lang: Lang, uri: &Uri) -> Markup {
    html! {
        span.langs #lang-switch data-test="lang-switch" {
            @for l in Lang::ALL {
                @if l == lang {
                    strong data-test=(format!("lang-{}", l.code())) { (l.label()) }
                } @else {
                    a href=(with_param(uri, "lang", l.code())) data-test=(format!("lang-{}", l.code())) hreflang=(l.code()) { (l.label()) }
                }
            }
        }
    }
}

/// The page around a body: the header with the navigation, the user, the language switch
/// and the sign-out button; the flash message; the title.
pub fn layout(ctx: &Ctx, page: &str, title: &str, body: Markup) -> Response {
    let l = ctx.lang;
    let m = html! {
        (DOCTYPE)
        html lang=(l.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Kezek" }
                // For scripts calling the JSON API with the session (X-CSRF-Token).
                meta name="csrf-token" content=(ctx.csrf);
                link rel="stylesheet" href="/assets/style.css";
                script src="/assets/app.js" defer {}
            }
            body data-page=(page) data-role=(ctx.caller.role.code()) {
                header.top {
                    a.brand href="/" { "Kezek" span.sub { (t(l, "brand_sub")) } }
                    nav #nav {
                        @for (id, href, key) in NAV {
                            a href=(href) .active[id == page] data-test=(format!("nav-{id}")) { (t(l, key)) }
                        }
                    }
                    div.user {
                        span #whoami data-test="whoami" { (ctx.caller.name) " · " (t(l, role_key(ctx.caller.role))) }
                        (lang_switch(l, &ctx.uri))
                        form.inline method="post" action="/logout" #logout-form data-test="logout-form" {
                            input type="hidden" name="csrf" value=(ctx.csrf);
                            button.link type="submit" #logout data-test="logout" { (t(l, "logout")) }
                        }
                    }
                }
                main #main {
                    @if let Some(f) = &ctx.flash {
                        p.flash.ok[f.ok].err[!f.ok] #flash data-test=(if f.ok { "flash-ok" } else { "flash-error" }) role="status" { (f.text) }
                    }
                    h1 #page-title { (title) }
                    (body)
                }
                footer { (t(l, "footer")) }
            }
        }
    };
    html_response(m)
}

pub fn role_key(r: Role) -> &'static str {
    match r {
        Role::Viewer => "role_viewer",
        Role::Operator => "role_operator",
        Role::RulesAdmin => "role_rules_admin",
    }
}

/// A hidden CSRF field for a form.
pub fn csrf_field(ctx: &Ctx) -> Markup {
    html! { input type="hidden" name="csrf" value=(ctx.csrf); }
}

/// A confirmation dialog holding a form with a reason: the button that opens it and the
/// `<dialog>` (ids `dlg-NAME`, `open-NAME`, `confirm-NAME`, field `reason`).
pub fn confirm_dialog(
    ctx: &Ctx,
    name: &str,
    action: &str,
    button: &str,
    warning: Markup,
    reason_required: bool,
    extra: Markup,
) -> Markup {
    let dlg = format!("dlg-{name}");
    html! {
        button.action type="button" id=(format!("open-{name}")) data-test=(format!("open-{name}")) data-dialog=(dlg) { (button) }
        dialog id=(dlg) data-test=(format!("dialog-{name}")) {
            form method="post" action=(action) id=(format!("form-{name}")) data-test=(format!("form-{name}")) {
                h2 { (button) }
                (warning)
                (csrf_field(ctx))
                (extra)
                label {
                    (ctx.t("reason")) @if reason_required { " *" }
                    textarea name="reason" rows="3" maxlength="1000" required[reason_required] data-test="reason" {}
                }
                div.buttons {
                    button.primary type="submit" id=(format!("confirm-{name}")) data-test=(format!("confirm-{name}")) { (ctx.t("confirm")) }
                    button type="button" data-close="" data-test=(format!("cancel-{name}")) { (ctx.t("cancel")) }
                }
            }
        }
    }
}

/// Pager links for `?page=N` lists.
pub fn pager(ctx: &Ctx, page: usize, pages: usize) -> Markup {
    html! {
        @if pages > 1 {
            nav.pager data-test="pager" {
                @if page > 1 {
                    a href=(with_param(&ctx.uri, "page", &(page - 1).to_string())) data-test="page-prev" { "← " (ctx.t("prev")) }
                }
                span { (page) " / " (pages) }
                @if page < pages {
                    a href=(with_param(&ctx.uri, "page", &(page + 1).to_string())) data-test="page-next" { (ctx.t("next")) " →" }
                }
            }
        }
    }
}

/// Raw HTML of a trusted constant (never user data).
pub fn trusted(s: &'static str) -> PreEscaped<&'static str> {
    PreEscaped(s)
}

// ---------------------------------------------------------------------------------------
// Assets and routes.

async fn style_css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLE_CSS,
    )
        .into_response()
}

async fn app_js() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        APP_JS,
    )
        .into_response()
}

/// The HTML 404 of paths outside `/api/`.
pub async fn not_found_page(parts: Parts) -> Response {
    let lang = request_lang(&parts);
    PageError::not_found(t(lang, "no_such_page"))
        .in_lang(lang)
        .into_response()
}

/// The pages' routes (state not yet given).
pub fn routes() -> Router<App> {
    Router::new()
        .route("/assets/style.css", get(style_css))
        .route("/assets/app.js", get(app_js))
        .route("/login", get(login::login_page).post(login::login_post))
        .route("/logout", get(login::logout_page).post(login::logout_post))
        .route("/public", get(public::public_page))
        .route("/", get(overview::overview_page))
        .route("/applications", get(applications::search_page))
        .route("/applications/{id}", get(applications::card_page))
        .route(
            "/applications/{id}/{action}",
            post(applications::action_post),
        )
        .route("/kindergartens", get(kindergartens::list_page))
        .route("/kindergartens/{id}", get(kindergartens::kindergarten_page))
        .route(
            "/kindergartens/{id}/publish",
            post(kindergartens::publish_post),
        )
        .route("/publications", get(kindergartens::publications_page))
        .route("/rules", get(rules::rules_page))
        .route("/rules/diff", get(rules::diff_page))
        .route(
            "/rules/draft",
            get(rules::draft_page).post(rules::draft_post),
        )
        .route("/rules/rollback", post(rules::rollback_post))
        .route(
            "/console",
            get(console::console_page).post(console::console_post),
        )
        .route(
            "/simulate",
            get(simulate::simulate_page).post(simulate::simulate_post),
        )
        .route("/simulate/jobs/{id}", get(simulate::job_page))
        .route("/simulate/jobs/{id}/cancel", post(simulate::cancel_post))
        .route("/simulate/jobs/{id}/{file}", get(simulate::job_file))
        .route("/audit", get(audit::audit_page))
        .route("/audit.csv", get(audit::audit_csv))
}
