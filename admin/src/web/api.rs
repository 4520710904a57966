//! The JSON API: handlers, request bodies, and the OpenAPI document (utoipa).
//!
//! Every endpoint but `/api/health` needs `Authorization: Bearer TOKEN`, or a browser
//! session (the `kezek_session` cookie, and on POST the header `X-CSRF-Token` with the
//! session's token). Whatever changes
//! nothing needs the `viewer` role: cards, queues, publications, rules, the rules check
//! and impact (they only compute), the console (read-only) and the OpenAPI document.
//! Actions on applications and places need `operator`; rule activation `rules_admin`.
//! Every change goes through `Store::execute` as `operator:NAME` and is on disk before
//! the response.
//!
//! Bodies are JSON whatever the content type says (an empty body reads as `{}`); unknown
//! fields are refused. Impact runs one at a time, console scripts two at a time; the
//! others wait (within the request time limit).

use std::collections::BTreeMap;
use std::sync::OnceLock;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{header, Method, StatusCode, Uri};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use jiff::Timestamp;
use kezek_engine::rules::RuleError;
use kezek_engine::{console, impact, view};
use kezek_engine::{Actor, AppNo, Command, Event, Language, Request as EngineRequest, RuleSet};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use super::accounts::{Caller, Role};
use super::audit::{script_detail, AuditEntry};
use super::error::ApiError;
use super::server::App;
use super::session;

// ---------------------------------------------------------------------------------------
// Authentication and roles.

fn authenticate(parts: &Parts, app: &App, need: Role) -> Result<Caller, ApiError> {
    let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
        // No token: a browser session, with its CSRF token on anything but a read.
        if let Some(id) = session::cookie(&parts.headers, session::SESSION_COOKIE) {
            return session_caller(parts, app, id, need);
        }
        return Err(ApiError::unauthorized(
            "sign in: send the header Authorization: Bearer TOKEN (or sign in at /login)",
        ));
    };
    let value = value
        .to_str()
        .map_err(|_| ApiError::unauthorized("the Authorization header is not text"))?;
    let token = match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
        _ => {
            return Err(ApiError::unauthorized(
                "the Authorization header must be: Bearer TOKEN",
            ))
        }
    };
    let caller = app
        .accounts()
        .authenticate(token)
        .ok_or_else(|| ApiError::unauthorized("unknown or revoked token"))?;
    check_role(caller, need)
}

fn check_role(caller: Caller, need: Role) -> Result<Caller, ApiError> {
    if caller.role < need {
        return Err(ApiError::forbidden(format!(
            "this needs the role {}; the account '{}' has the role {}",
            need.code(),
            caller.name,
            caller.role.code()
        )));
    }
    Ok(caller)
}

/// The caller of a browser session. A request that may change something (any method but
/// GET, HEAD, OPTIONS) must carry the session's CSRF token in `X-CSRF-Token`.
fn session_caller(parts: &Parts, app: &App, id: &str, need: Role) -> Result<Caller, ApiError> {
    let s =
        app.inner.sessions.get(id, false).ok_or_else(|| {
            ApiError::unauthorized("the session has ended: sign in again at /login")
        })?;
    let safe = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
    if !safe {
        let sent = parts
            .headers
            .get(session::CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !session::same_secret(sent, &s.csrf) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "csrf_failed",
                "a change through a browser session needs the header X-CSRF-Token with the session's token",
            ));
        }
    }
    let caller = app
        .accounts()
        .caller(&s.caller.name)
        .ok_or_else(|| ApiError::unauthorized("the account is disabled or gone"))?;
    check_role(caller, need)
}

macro_rules! role_extractor {
    ($name:ident, $role:expr) => {
        /// A caller with at least this role (401 without a valid token, 403 below the role).
        pub struct $name(pub Caller);

        impl FromRequestParts<App> for $name {
            type Rejection = ApiError;
            async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, ApiError> {
                authenticate(parts, app, $role).map($name)
            }
        }
    };
}

role_extractor!(Viewer, Role::Viewer);
role_extractor!(Operator, Role::Operator);
role_extractor!(RulesAdmin, Role::RulesAdmin);

pub(crate) fn actor(c: &Caller) -> Actor {
    Actor::Operator(c.name.clone())
}

// ---------------------------------------------------------------------------------------
// Request bodies.

/// A JSON body (any content type; an empty body reads as `{}`). Malformed JSON is 400
/// `invalid_json`; JSON of the wrong shape is 422 `invalid_body`; over the limit 413.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            let status = e.status();
            let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
                "too_large"
            } else {
                "bad_request"
            };
            ApiError::new(status, code, e.body_text())
        })?;
        let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &bytes
        };
        serde_json::from_slice(bytes).map(JsonBody).map_err(|e| {
            if e.is_data() {
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_body",
                    e.to_string(),
                )
            } else {
                ApiError::bad_request("invalid_json", format!("the body is not JSON: {e}"))
            }
        })
    }
}

/// `{"reason": "..."}`: required for recall, withdraw and cancel-benefit.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReasonBody {
    pub reason: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TakeBody {
    /// The publication whose place the application takes.
    pub publication: u64,
    pub reason: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeCategoryBody {
    pub category: String,
    pub reason: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplicantBody {
    /// The parent's IIN, as typed: 12 digits with a valid check digit.
    pub iin: String,
    /// The parent's full name, if known (otherwise the card shows none).
    pub applicant_name: Option<String>,
    pub reason: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishBody {
    pub kindergarten: String,
    pub cohort: i32,
    /// `kk` or `ru`.
    pub language: String,
    pub places: u32,
    pub reason: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RulesBody {
    /// Rule files by name (`categories.rhai`, `order.rhai`, ...): the whole set.
    pub files: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImpactBody {
    pub files: BTreeMap<String, String>,
    /// Only changes whose application number contains this text.
    pub search: Option<String>,
    /// Changes to skip (after the search), default 0.
    pub offset: Option<usize>,
    /// Changes to list, default and at most 1000.
    pub limit: Option<usize>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActivateBody {
    pub files: BTreeMap<String, String>,
    pub reason: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsoleBody {
    pub script: String,
}

#[derive(Debug, Deserialize)]
pub struct QueueQuery {
    pub from: Option<String>,
    pub limit: Option<String>,
    pub category: Option<String>,
}

fn parse_id(s: &str) -> Result<AppNo, ApiError> {
    s.parse::<AppNo>()
        .map_err(|e| ApiError::bad_request("invalid_application_number", e))
}

fn rule_error(e: RuleError) -> ApiError {
    let mut err = ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "rules_invalid",
        e.to_string(),
    )
    .with("file", e.file.clone());
    err = err.with("line", e.line.map_or(Value::Null, |l| json!(l)));
    err
}

// ---------------------------------------------------------------------------------------
// Handlers.

#[utoipa::path(get, path = "/api/health", tag = "meta",
    responses((status = 200, description = "the server is up", body = HealthDoc)))]
pub async fn health() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

#[utoipa::path(get, path = "/api/me", tag = "meta", security(("bearer" = [])),
    responses(
        (status = 200, description = "the caller's account", body = MeDoc),
        (status = 401, description = "no or an unknown token", body = ErrorDoc),
    ))]
pub async fn me(Viewer(c): Viewer) -> Json<Value> {
    Json(json!({"name": c.name, "role": c.role.code()}))
}

#[utoipa::path(get, path = "/api/openapi.json", tag = "meta", security(("bearer" = [])),
    responses(
        (status = 200, description = "this document", body = Object),
        (status = 401, description = "no or an unknown token", body = ErrorDoc),
    ))]
pub async fn openapi_json(Viewer(_): Viewer) -> Json<Value> {
    Json(openapi().clone())
}

#[utoipa::path(get, path = "/api/applications/{id}", tag = "applications", security(("bearer" = [])),
    params(("id" = String, Path, description = "application number, e.g. UO.2018.489862.1")),
    responses(
        (status = 200, description = "the card, as `kezek show --json` prints it", body = CardDoc),
        (status = 400, description = "not an application number", body = ErrorDoc),
        (status = 401, description = "no or an unknown token", body = ErrorDoc),
        (status = 404, description = "no such application", body = ErrorDoc),
    ))]
pub async fn card(
    Viewer(_): Viewer,
    State(app): State<App>,
    Path(id): Path<String>,
) -> Result<Json<view::Card>, ApiError> {
    let id = parse_id(&id)?;
    app.blocking(move |a| Ok(view::card(&*a.read()?, id)?))
        .await
        .map(Json)
}

#[utoipa::path(get, path = "/api/applications/{id}/explain", tag = "applications", security(("bearer" = [])),
    params(("id" = String, Path, description = "application number")),
    responses(
        (status = 200, description = "why the application stands where it stands: who is ahead by category, and every event that moved it", body = Object),
        (status = 400, description = "not an application number", body = ErrorDoc),
        (status = 401, description = "no or an unknown token", body = ErrorDoc),
        (status = 404, description = "no such application", body = ErrorDoc),
    ))]
pub async fn explain(
    Viewer(_): Viewer,
    State(app): State<App>,
    Path(id): Path<String>,
) -> Result<Json<view::Explanation>, ApiError> {
    let id = parse_id(&id)?;
    app.blocking(move |a| Ok(view::explain(&*a.read()?, id)?))
        .await
        .map(Json)
}

#[utoipa::path(get, path = "/api/applications/{id}/offers", tag = "applications", security(("bearer" = [])),
    params(("id" = String, Path, description = "application number")),
    responses(
        (status = 200, description = "the places the application may take now", body = [OfferDoc]),
        (status = 400, description = "not an application number", body = ErrorDoc),
        (status = 401, description = "no or an unknown token", body = ErrorDoc),
        (status = 404, description = "no such application", body = ErrorDoc),
    ))]
pub async fn offers(
    Viewer(_): Viewer,
    State(app): State<App>,
    Path(id): Path<String>,
) -> Result<Json<Vec<view::Offer>>, ApiError> {
    let id = parse_id(&id)?;
    app.blocking(move |a| {
        let s = a.read()?;
        let now = s.now(Timestamp::now());
        Ok(view::offers(&s, id, now)?)
    })
    .await
    .map(Json)
}

#[utoipa::path(get, path = "/api/queues/{cohort}", tag = "queues", security(("bearer" = [])),
    params(
        ("cohort" = i32, Path, description = "the cohort (birth year)"),
        ("from" = Option<u64>, Query, description = "queue position of the first item, 1-based (default 1)"),
        ("limit" = Option<u64>, Query, description = "items, 1 to 1000 (default 20)"),
        ("category" = Option<String>, Query, description = "only this category (positions then count within it)"),
    ),
    responses(
        (status = 200, description = "a page of the queue in order", body = QueuePageDoc),
        (status = 400, description = "a parameter of the wrong form or out of range", body = ErrorDoc),
        (status = 401, description = "no or an unknown token", body = ErrorDoc),
    ))]
pub async fn queue(
    Viewer(_): Viewer,
    State(app): State<App>,
    Path(cohort): Path<String>,
    Query(q): Query<QueueQuery>,
) -> Result<Json<view::QueuePage>, ApiError> {
    let cohort: i32 = cohort.parse().map_err(|_| {
        ApiError::bad_request(
            "invalid_cohort",
            format!("'{cohort}' is not a cohort (a birth year)"),
        )
    })?;
    let max = app.limits().max_page;
    let num = |name: &str, v: &Option<String>, default: u64| -> Result<u64, ApiError> {
        match v {
            None => Ok(default),
            Some(s) => s.parse::<u64>().map_err(|_| {
                ApiError::bad_request(
                    "invalid_query",
                    format!("{name}: '{s}' is not a whole number"),
                )
            }),
        }
    };
    let from = num("from", &q.from, 1)?;
    let limit = num("limit", &q.limit, 20)?;
    if from == 0 {
        return Err(ApiError::bad_request(
            "invalid_query",
            "from: positions start at 1",
        ));
    }
    if limit == 0 || limit > max {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("limit: must be 1 to {max}"),
        ));
    }
    let category = q.category;
    app.blocking(move |a| {
        let s = a.read()?;
        Ok(view::queue_page(
            s.state(),
            cohort,
            category.as_deref(),
            from,
            limit,
        ))
    })
    .await
    .map(Json)
}

/// Runs a command as the caller and answers with the application's card.
async fn act(
    app: App,
    caller: Caller,
    id: AppNo,
    command: Command,
    reason: Option<String>,
) -> Result<Json<view::Card>, ApiError> {
    app.blocking(move |a| {
        let mut s = a.write()?;
        let now = s.now(Timestamp::now());
        s.execute(
            &EngineRequest {
                command,
                actor: actor(&caller),
                reason,
            },
            now,
        )?;
        Ok(view::card(&s, id)?)
    })
    .await
    .map(Json)
}

#[utoipa::path(post, path = "/api/applications/{id}/recall", tag = "actions", security(("bearer" = [])),
    params(("id" = String, Path, description = "application number")),
    request_body = ReasonBody,
    responses(
        (status = 200, description = "recalled: the card, back at the position the order gives", body = CardDoc),
        (status = 400, description = "not an application number, or not JSON", body = ErrorDoc),
        (status = 401, description = "no or an unknown token", body = ErrorDoc),
        (status = 403, description = "the role is below operator", body = ErrorDoc),
        (status = 404, description = "no such application", body = ErrorDoc),
        (status = 409, description = "refused: no active referral, the recall window closed", body = ErrorDoc),
        (status = 422, description = "no reason, or a body of the wrong shape", body = ErrorDoc),
    ))]
pub async fn recall(
    Operator(c): Operator,
    State(app): State<App>,
    Path(id): Path<String>,
    JsonBody(b): JsonBody<ReasonBody>,
) -> Result<Json<view::Card>, ApiError> {
    let id = parse_id(&id)?;
    act(app, c, id, Command::Recall { app: id }, b.reason).await
}

#[utoipa::path(post, path = "/api/applications/{id}/take", tag = "actions", security(("bearer" = [])),
    params(("id" = String, Path, description = "application number")),
    request_body = TakeBody,
    responses(
        (status = 200, description = "a referral was issued: the card", body = CardDoc),
        (status = 400, description = "not an application number, or not JSON", body = ErrorDoc),
        (status = 401, description = "no or an unknown token", body = ErrorDoc),
        (status = 403, description = "the role is below operator", body = ErrorDoc),
        (status = 404, description = "no such application or publication", body = ErrorDoc),
        (status = 409, description = "refused: not eligible, locked, stop-listed, no places", body = ErrorDoc),
        (status = 422, description = "a body of the wrong shape", body = ErrorDoc),
    ))]
pub async fn take(
    Operator(c): Operator,
    State(app): State<App>,
    Path(id): Path<String>,
    JsonBody(b): JsonBody<TakeBody>,
) -> Result<Json<view::Card>, ApiError> {
    let id = parse_id(&id)?;
    let command = Command::Take {
        app: id,
        publication: b.publication,
    };
    act(app, c, id, command, b.reason).await
}

#[utoipa::path(post, path = "/api/applications/{id}/extend", tag = "actions", security(("bearer" = [])),
    params(("id" = String, Path, description = "application number")),
    request_body(content = ReasonBody, description = "optional"),
    responses(
        (status = 200, description = "the referral was extended: the card", body = CardDoc),
        (status = 400, description = "not an application number, or not JSON", body = ErrorDoc),
        (status = 401, description = "no or an unknown token", body = ErrorDoc),
        (status = 403, description = "the role is below operator", body = ErrorDoc),
        (status = 404, description = "no such application", body = ErrorDoc),
        (status = 409, description = "refused: no active referral, already extended", body = ErrorDoc),
        (status = 422, description = "a body of the wrong shape", body = ErrorDoc),
    ))]
pub async fn extend(
    Operator(c): Operator,
    State(app): State<App>,
    Path(id): Path<String>,
    JsonBody(b): JsonBody<ReasonBody>,
) -> Result<Json<view::Card>, ApiError> {
    let id = parse_id(&id)?;
    act(app, c, id, Command::Extend { app: id }, b.reason).await
}

#[utoipa::path(post, path = "/api/applications/{id}/enroll", tag = "actions", security(("bearer" = [])),
    params(("id" = String, Path, description = "application number")),
    request_body(content = ReasonBody, description = "optional"),
    responses(
        (status = 200, description = "the referral was used: the card", body = CardDoc),
        (status = 400, description = "not an application number, or not JSON", body = ErrorDoc),
        (status = 401, description = "no or an unknown token", body = ErrorDoc),
        (status = 403, description = "the role is below operator", body = ErrorDoc),
        (status = 404, description = "no such application", body = ErrorDoc),
        (status = 409, description = "refused: no active referral", body = ErrorDoc),
        (status = 422, description = "a body of the wrong shape", body = ErrorDoc),
    ))]
pub async fn enroll(
    Operator(c): Operator,
    State(app): State<App>,
    Path(id): Path<String>,
    JsonBody(b): JsonBody<ReasonBody>,
) -> Result<Json<view::Card>, ApiError> {
    let id = parse_id(&id)?;
    act(app, c, id, Command::Enroll { app: id }, b.reason).await
}

#[utoipa::path(post, path = "/api/applications/{id}/withdraw", tag = "actions", security(("bearer" = [])),
    params(("id" = String, Path, description = "application number")),
    request_body = ReasonBody,
    responses(
        (status = 200, description = "withdrawn: the card", body = CardDoc),
        (status = 400, description = "not an application number, or not JSON", body = ErrorDoc),
        (status = 401, description = "no or an unknown token", body = ErrorDoc),
        (status = 403, description = "the role is below operator", body = ErrorDoc),
        (status = 404, description = "no such application", body = ErrorDoc),
        (status = 409, description = "refused: already withdrawn or enrolled", body = ErrorDoc),
        (status = 422, description = "no reason, or a body of the wrong shape", body = ErrorDoc),
    ))]
pub async fn withdraw(
    Operator(c): Operator,
    State(app): State<App>,
    Path(id): Path<String>,
    JsonBody(b): JsonBody<ReasonBody>,
) -> Result<Json<view::Card>, ApiError> {
    let id = parse_id(&id)?;
    act(app, c, id, Command::Withdraw { app: id }, b.reason).await
}

#[utoipa::path(post, path = "/api/applications/{id}/cancel-benefit", tag = "actions", security(("bearer" = [])),
    params(("id" = String, Path, description = "application number")),
    request_body = ReasonBody,
    responses(
        (status = 200, description = "the benefit was not confirmed: any referral cancelled, the application in the general queue with its original date; the card", body = CardDoc),
        (status = 400, description = "not an application number, or not JSON", body = ErrorDoc),
        (status = 401, description = "no or an unknown token", body = ErrorDoc),
        (status = 403, description = "the role is below operator", body = ErrorDoc),
        (status = 404, description = "no such application", body = ErrorDoc),
        (status = 409, description = "refused: no benefit, wrong status", body = ErrorDoc),
        (status = 422, description = "no reason, or a body of the wrong shape", body = ErrorDoc),
    ))]
pub async fn cancel_benefit(
    Operator(c): Operator,
    State(app): State<App>,
    Path(id): Path<String>,
    JsonBody(b): JsonBody<ReasonBody>,
) -> Result<Json<view::Card>, ApiError> {
    let id = parse_id(&id)?;
    act(app, c, id, Command::CancelBenefit { app: id }, b.reason).await
}

#[utoipa::path(post, path = "/api/applications/{id}/change-category", tag = "actions", security(("bearer" = [])),
    params(("id" = String, Path, description = "application number")),
    request_body = ChangeCategoryBody,
    responses(
        (status = 200, description = "the category changed: the card", body = CardDoc),
        (status = 400, description = "not an application number, or not JSON", body = ErrorDoc),
        (status = 401, description = "no or an unknown token", body = ErrorDoc),
        (status = 403, description = "the role is below operator", body = ErrorDoc),
        (status = 404, description = "no such application", body = ErrorDoc),
        (status = 409, description = "refused: wrong status, no change", body = ErrorDoc),
        (status = 422, description = "unknown category, no reason, or a body of the wrong shape", body = ErrorDoc),
    ))]
pub async fn change_category(
    Operator(c): Operator,
    State(app): State<App>,
    Path(id): Path<String>,
    JsonBody(b): JsonBody<ChangeCategoryBody>,
) -> Result<Json<view::Card>, ApiError> {
    let id = parse_id(&id)?;
    let command = Command::ChangeCategory {
        app: id,
        category: b.category,
    };
    act(app, c, id, command, b.reason).await
}

#[utoipa::path(post, path = "/api/applications/{id}/applicant", tag = "actions", security(("bearer" = [])),
    params(("id" = String, Path, description = "application number")),
    request_body = ApplicantBody,
    responses(
        (status = 200, description = "the application is attached to that parent's IIN (who then sees it in the journal): the card", body = CardDoc),
        (status = 400, description = "not an application number, or not JSON", body = ErrorDoc),
        (status = 401, description = "no or an unknown token", body = ErrorDoc),
        (status = 403, description = "the role is below operator", body = ErrorDoc),
        (status = 404, description = "no such application", body = ErrorDoc),
        (status = 409, description = "`no_change`: already that applicant's", body = ErrorDoc),
        (status = 422, description = "`invalid_iin` (format, check digit, the child's own, under 16), no reason, a body of the wrong shape", body = ErrorDoc),
    ))]
pub async fn change_applicant(
    Operator(c): Operator,
    State(app): State<App>,
    Path(id): Path<String>,
    JsonBody(b): JsonBody<ApplicantBody>,
) -> Result<Json<view::Card>, ApiError> {
    let id = parse_id(&id)?;
    let command = Command::ChangeApplicant {
        app: id,
        applicant_iin: b.iin,
        applicant_name: b.applicant_name,
    };
    act(app, c, id, command, b.reason).await
}

fn publication_json(state: &kezek_engine::State, p: &kezek_engine::model::Publication) -> Value {
    let name = state
        .data
        .kindergartens
        .get(&p.kindergarten)
        .map(|k| k.name.clone())
        .unwrap_or_default();
    json!({
        "id": p.id,
        "kindergarten": p.kindergarten,
        "kindergarten_name": name,
        "cohort": p.cohort,
        "language": p.language.code(),
        "places": p.places,
        "places_left": p.places_left,
        "phase": p.phase.code(),
        "published_at": p.published_at,
        "free_access_at": p.free_access_at,
    })
}

#[utoipa::path(get, path = "/api/publications", tag = "places", security(("bearer" = [])),
    responses(
        (status = 200, description = "every publication, newest first", body = [PublicationDoc]),
        (status = 401, description = "no or an unknown token", body = ErrorDoc),
    ))]
pub async fn publications(
    Viewer(_): Viewer,
    State(app): State<App>,
) -> Result<Json<Vec<Value>>, ApiError> {
    app.blocking(|a| {
        let s = a.read()?;
        let st = s.state();
        Ok(st
            .data
            .publications
            .values()
            .rev()
            .map(|p| publication_json(st, p))
            .collect())
    })
    .await
    .map(Json)
}

#[utoipa::path(post, path = "/api/publications", tag = "places", security(("bearer" = [])),
    request_body = PublishBody,
    responses(
        (status = 201, description = "published: the priority phase starts", body = PublicationDoc),
        (status = 400, description = "not JSON", body = ErrorDoc),
        (status = 401, description = "no or an unknown token", body = ErrorDoc),
        (status = 403, description = "the role is below operator", body = ErrorDoc),
        (status = 404, description = "no such kindergarten", body = ErrorDoc),
        (status = 409, description = "refused: not enough capacity, the August blackout", body = ErrorDoc),
        (status = 422, description = "no such group, places out of range, a body of the wrong shape", body = ErrorDoc),
    ))]
pub async fn publish(
    Operator(c): Operator,
    State(app): State<App>,
    JsonBody(b): JsonBody<PublishBody>,
) -> Result<impl IntoResponse, ApiError> {
    let language: Language = b.language.parse().map_err(|e: String| {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_language", e)
    })?;
    let command = Command::Publish {
        kindergarten: b.kindergarten,
        cohort: b.cohort,
        language,
        places: b.places,
    };
    let out = app
        .blocking(move |a| {
            let mut s = a.write()?;
            let now = s.now(Timestamp::now());
            let recs = s.execute(
                &EngineRequest {
                    command,
                    actor: actor(&c),
                    reason: b.reason,
                },
                now,
            )?;
            let id = recs
                .iter()
                .find_map(|r| match &r.event {
                    Event::PlacesPublished { publication, .. } => Some(*publication),
                    _ => None,
                })
                .ok_or_else(|| ApiError::internal("the publication was not recorded"))?;
            let st = s.state();
            let p = st
                .data
                .publications
                .get(&id)
                .ok_or_else(|| ApiError::internal("the publication is missing"))?;
            Ok(publication_json(st, p))
        })
        .await?;
    Ok((StatusCode::CREATED, Json(out)))
}

#[utoipa::path(get, path = "/api/rules", tag = "rules", security(("bearer" = [])),
    responses(
        (status = 200, description = "the active rule version, its parameters, and the history of versions", body = Object),
        (status = 401, description = "no or an unknown token", body = ErrorDoc),
    ))]
pub async fn rules_show(
    Viewer(_): Viewer,
    State(app): State<App>,
) -> Result<Json<Value>, ApiError> {
    app.blocking(|a| {
        let s = a.read()?;
        let st = s.state();
        let (Some(v), Some(rules)) = (st.data.rules_versions.last(), st.rules()) else {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "no_rules",
                "no rule set is active",
            ));
        };
        let p = rules.params();
        Ok(json!({
            "version": v.version,
            "hash": v.hash,
            "activated_at": v.activated_at,
            "actor": v.actor.to_string(),
            "reason": v.reason,
            "categories": p.categories,
            "recall_window_hours": p.recall_window_hours,
            "referral_validity_working_days": p.referral_validity_working_days,
            "extension_days": p.extension_days,
            "max_extensions": p.max_extensions,
            "stop_list_days": p.stop_list_days,
            "priority_phase_working_days": p.priority_phase_working_days,
            "free_access_time": p.free_access_time.to_string(),
            "holidays": p.holidays.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
            "files": v.files,
            "history": st.data.rules_versions.iter().map(|v| json!({
                "version": v.version, "hash": v.hash, "activated_at": v.activated_at,
                "actor": v.actor.to_string(), "reason": v.reason,
            })).collect::<Vec<_>>(),
        }))
    })
    .await
    .map(Json)
}

#[utoipa::path(get, path = "/api/rules/versions/{version}", tag = "rules", security(("bearer" = [])),
    params(("version" = u32, Path, description = "a rule version number")),
    responses(
        (status = 200, description = "that version with its files (to diff, or to roll back by activating them again)", body = Object),
        (status = 400, description = "not a version number", body = ErrorDoc),
        (status = 401, description = "no or an unknown token", body = ErrorDoc),
        (status = 404, description = "no such version", body = ErrorDoc),
    ))]
pub async fn rules_version(
    Viewer(_): Viewer,
    State(app): State<App>,
    Path(version): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let version: u32 = version.parse().map_err(|_| {
        ApiError::bad_request(
            "invalid_version",
            format!("'{version}' is not a version number"),
        )
    })?;
    app.blocking(move |a| {
        let s = a.read()?;
        let v = s
            .state()
            .data
            .rules_versions
            .iter()
            .find(|v| v.version == version)
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::NOT_FOUND,
                    "unknown_version",
                    format!("no rule version {version}"),
                )
            })?;
        Ok(json!({
            "version": v.version, "hash": v.hash, "activated_at": v.activated_at,
            "actor": v.actor.to_string(), "reason": v.reason, "files": v.files,
        }))
    })
    .await
    .map(Json)
}

#[utoipa::path(post, path = "/api/rules/check", tag = "rules", security(("bearer" = [])),
    request_body = RulesBody,
    responses(
        (status = 200, description = "the rule set compiles and passes its checks", body = CheckDoc),
        (status = 400, description = "not JSON", body = ErrorDoc),
        (status = 401, description = "no or an unknown token", body = ErrorDoc),
        (status = 422, description = "`rules_invalid`, with `file` and `line` (null when unknown) in the error object", body = ErrorDoc),
    ))]
pub async fn rules_check(
    Viewer(_): Viewer,
    State(app): State<App>,
    JsonBody(b): JsonBody<RulesBody>,
) -> Result<Json<Value>, ApiError> {
    app.blocking(move |a| {
        let rules = RuleSet::compile(&b.files).map_err(rule_error)?;
        let active = a.read()?.state().rules().map(RuleSet::hash);
        Ok(json!({
            "ok": true,
            "hash": rules.hash(),
            "active": active.as_deref() == Some(rules.hash().as_str()),
            "files": rules.files().keys().collect::<Vec<_>>(),
            "categories": rules.params().categories,
        }))
    })
    .await
    .map(Json)
}

#[utoipa::path(post, path = "/api/rules/impact", tag = "rules", security(("bearer" = [])),
    request_body = ImpactBody,
    responses(
        (status = 200, description = "whom the candidate would move; the counts cover every waiting application, `changes` is one page of them, largest moves first", body = ImpactDoc),
        (status = 400, description = "not JSON", body = ErrorDoc),
        (status = 401, description = "no or an unknown token", body = ErrorDoc),
        (status = 409, description = "the candidate drops a category in use, or a rule fails on an application", body = ErrorDoc),
        (status = 422, description = "`rules_invalid`, with `file` and `line`", body = ErrorDoc),
    ))]
pub async fn rules_impact(
    Viewer(_): Viewer,
    State(app): State<App>,
    JsonBody(b): JsonBody<ImpactBody>,
) -> Result<Json<Value>, ApiError> {
    let max = app.limits().max_changes;
    let limit = b.limit.unwrap_or(max);
    if limit > max {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            format!("limit: at most {max}"),
        ));
    }
    let offset = b.offset.unwrap_or(0);
    let _permit = app
        .inner
        .impact_gate
        .acquire()
        .await
        .map_err(|_| ApiError::internal("the server is stopping"))?;
    app.blocking(move |a| {
        let rules = RuleSet::compile(&b.files).map_err(rule_error)?;
        // Copy under the read lock; re-rank outside it.
        let snap = impact::capture(a.read()?.state());
        let mut imp = impact::compute(&snap, &rules)?;
        if let Some(q) = b.search.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
            imp.changes.retain(|c| c.id.contains(q));
        }
        let matching = imp.changes.len();
        let changes: Vec<_> = imp.changes.drain(..).skip(offset).take(limit).collect();
        let mut v = serde_json::to_value(&imp).map_err(|e| ApiError::internal(e.to_string()))?;
        if let Value::Object(o) = &mut v {
            o.insert("changes".into(), json!(changes));
            o.insert("changes_matching".into(), json!(matching));
            o.insert("offset".into(), json!(offset));
            o.insert("limit".into(), json!(limit));
        }
        Ok(v)
    })
    .await
    .map(Json)
}

#[utoipa::path(post, path = "/api/rules/activate", tag = "rules", security(("bearer" = [])),
    request_body = ActivateBody,
    responses(
        (status = 200, description = "the new version is active; every queue was re-ranked as one event", body = ActivatedDoc),
        (status = 400, description = "not JSON", body = ErrorDoc),
        (status = 401, description = "no or an unknown token", body = ErrorDoc),
        (status = 403, description = "the role is below rules_admin", body = ErrorDoc),
        (status = 409, description = "refused: already active (`no_change`), a category in use dropped", body = ErrorDoc),
        (status = 422, description = "`rules_invalid` with `file` and `line`; no reason", body = ErrorDoc),
    ))]
pub async fn rules_activate(
    RulesAdmin(c): RulesAdmin,
    State(app): State<App>,
    JsonBody(b): JsonBody<ActivateBody>,
) -> Result<Json<Value>, ApiError> {
    app.blocking(move |a| {
        // Compile first (outside the lock) for an error with file and line.
        RuleSet::compile(&b.files).map_err(rule_error)?;
        let mut s = a.write()?;
        let now = s.now(Timestamp::now());
        s.execute(
            &EngineRequest {
                command: Command::ActivateRules { files: b.files },
                actor: actor(&c),
                reason: Some(b.reason),
            },
            now,
        )?;
        let st = s.state();
        let v = st
            .data
            .rules_versions
            .last()
            .ok_or_else(|| ApiError::internal("no rule version after activation"))?;
        Ok(json!({
            "version": v.version,
            "hash": v.hash,
            "activated_at": v.activated_at,
            "actor": v.actor.to_string(),
            "reason": v.reason,
            "applications": st.data.apps.len(),
        }))
    })
    .await
    .map(Json)
}

#[utoipa::path(get, path = "/api/console", tag = "console", security(("bearer" = [])),
    responses(
        (status = 200, description = "the console's functions and limits", body = Object),
        (status = 401, description = "no or an unknown token", body = ErrorDoc),
    ))]
pub async fn console_help(Viewer(_): Viewer, State(app): State<App>) -> Json<Value> {
    let l = &app.limits().console;
    Json(json!({
        "functions": console::FUNCTIONS.iter().map(|(sig, what)| json!({"signature": sig, "description": what})).collect::<Vec<_>>(),
        "limits": {
            "max_operations": l.max_operations,
            "max_time_ms": l.max_time.as_millis() as u64,
            "max_call_levels": l.max_call_levels,
            "max_string_size": l.max_string_size,
            "max_array_size": l.max_array_size,
            "max_map_size": l.max_map_size,
            "max_script_bytes": l.max_script_bytes,
            "max_output_bytes": l.max_output_bytes,
            "max_output_items": l.max_output_items,
            "max_page": l.max_page,
        },
    }))
}

#[utoipa::path(post, path = "/api/console", tag = "console", security(("bearer" = [])),
    request_body = ConsoleBody,
    responses(
        (status = 200, description = "the script's result (its last expression) as JSON, and what it printed", body = ConsoleDoc),
        (status = 400, description = "not JSON", body = ErrorDoc),
        (status = 401, description = "no or an unknown token", body = ErrorDoc),
        (status = 422, description = "`console_syntax`, `console_error` (with the line), `console_time_limit`, `console_operation_limit`, `console_data_limit`, `console_output_too_large`, `console_script_too_large`", body = ErrorDoc),
    ))]
pub async fn console_run(
    Viewer(c): Viewer,
    State(app): State<App>,
    JsonBody(b): JsonBody<ConsoleBody>,
) -> Result<Json<Value>, ApiError> {
    let _permit = app
        .inner
        .console_gate
        .acquire()
        .await
        .map_err(|_| ApiError::internal("the server is stopping"))?;
    app.blocking(move |a| {
        let limits = a.limits().console.clone();
        let result = console::run(a.state_source(), &b.script, &limits);
        let mut detail = script_detail(&b.script);
        if let (Value::Object(d), Ok(out)) = (&mut detail, &result) {
            d.insert("operations".into(), json!(out.operations));
            d.insert("elapsed_ms".into(), json!(out.elapsed_ms));
        }
        let entry = AuditEntry {
            at: Timestamp::now(),
            actor: actor(&c).to_string(),
            action: "console".into(),
            outcome: match &result {
                Ok(_) => "ok".into(),
                Err(e) => e.code.to_string(),
            },
            detail,
        };
        if let Err(e) = a.audit().append(&entry) {
            eprintln!("audit: {e}");
        }
        let out = result?;
        Ok(json!({
            "result": out.result,
            "output": out.output,
            "operations": out.operations,
            "elapsed_ms": out.elapsed_ms,
        }))
    })
    .await
    .map(Json)
}

/// Unknown paths: a JSON 404 under `/api/`, the HTML 404 page elsewhere.
async fn no_route(uri: Uri, parts: Parts) -> axum::response::Response {
    if uri.path() == "/api" || uri.path().starts_with("/api/") {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint").into_response()
    } else {
        super::pages::not_found_page(parts).await
    }
}

/// The API's routes (state not yet given). The server adds the limits around them.
pub fn routes() -> Router<App> {
    Router::new()
        .route("/api/health", get(health))
        .route("/api/me", get(me))
        .route("/api/openapi.json", get(openapi_json))
        .route("/api/applications/{id}", get(card))
        .route("/api/applications/{id}/explain", get(explain))
        .route("/api/applications/{id}/offers", get(offers))
        .route("/api/applications/{id}/recall", post(recall))
        .route("/api/applications/{id}/take", post(take))
        .route("/api/applications/{id}/extend", post(extend))
        .route("/api/applications/{id}/enroll", post(enroll))
        .route("/api/applications/{id}/withdraw", post(withdraw))
        .route(
            "/api/applications/{id}/cancel-benefit",
            post(cancel_benefit),
        )
        .route(
            "/api/applications/{id}/change-category",
            post(change_category),
        )
        .route("/api/queues/{cohort}", get(queue))
        .route("/api/publications", get(publications).post(publish))
        .route("/api/rules", get(rules_show))
        .route("/api/rules/versions/{version}", get(rules_version))
        .route("/api/rules/check", post(rules_check))
        .route("/api/rules/impact", post(rules_impact))
        .route("/api/rules/activate", post(rules_activate))
        .route("/api/console", get(console_help).post(console_run))
        .route("/api/applications/{id}/applicant", post(change_applicant))
        .merge(super::citizen::routes())
        .fallback(no_route)
}

// ---------------------------------------------------------------------------------------
// The OpenAPI document. Response schemas mirror the engine's serialized types (the
// engine does not depend on utoipa); a test compares them with real responses.

#[allow(dead_code)]
pub(crate) mod doc {
    use utoipa::ToSchema;

    /// `{"error": {"code": "...", "message": "..."}}`.
    #[derive(ToSchema)]
    #[schema(as = Error)]
    pub struct ErrorDoc {
        pub error: ErrorInner,
    }

    #[derive(ToSchema)]
    pub struct ErrorInner {
        /// A stable snake_case code, e.g. `recall_window_closed`.
        pub code: String,
        pub message: String,
        /// Rule errors only: the file.
        pub file: Option<String>,
        /// Rule errors only: the line (1-based), null when unknown.
        pub line: Option<u64>,
    }

    #[derive(ToSchema)]
    #[schema(as = Health)]
    pub struct HealthDoc {
        /// `ok`
        pub status: String,
    }

    #[derive(ToSchema)]
    #[schema(as = Me)]
    pub struct MeDoc {
        pub name: String,
        /// `viewer`, `operator` or `rules_admin`.
        pub role: String,
    }

    #[derive(ToSchema)]
    #[schema(as = Referral)]
    pub struct ReferralDoc {
        pub id: u64,
        pub kindergarten: String,
        pub kindergarten_name: String,
        pub publication: u64,
        #[schema(format = DateTime)]
        pub issued_at: String,
        #[schema(format = DateTime)]
        pub valid_until: String,
        #[schema(format = DateTime)]
        pub recall_until: String,
        pub extended: bool,
    }

    #[derive(ToSchema)]
    #[schema(as = HistoryEntry)]
    pub struct HistoryDoc {
        #[schema(format = DateTime)]
        pub at: String,
        pub event: String,
        pub actor: String,
        pub reason: Option<String>,
    }

    /// The application card (the same JSON as `kezek show --json`).
    #[derive(ToSchema)]
    #[schema(as = Card)]
    pub struct CardDoc {
        pub id: String,
        /// `queued`, `referral_issued`, `enrolled`, `stop_listed`, `withdrawn`.
        pub status: String,
        pub status_kk: String,
        pub status_ru: String,
        pub cohort: i32,
        pub language: String,
        pub category: String,
        #[schema(format = DateTime)]
        pub registered_at: String,
        /// While waiting; null otherwise.
        pub queue_position: Option<u64>,
        /// While waiting; 0 for the general category.
        pub category_position: Option<u64>,
        pub referral: Option<ReferralDoc>,
        #[schema(format = DateTime)]
        pub locked_until: Option<String>,
        #[schema(format = DateTime)]
        pub stop_listed_until: Option<String>,
        pub child_iin: String,
        pub child_name: Option<String>,
        #[schema(format = Date)]
        pub birth_date: String,
        pub applicant_iin: String,
        pub applicant_name: Option<String>,
        pub email: Option<String>,
        pub phone: Option<String>,
        /// The changes tab (empty in queue pages).
        pub history: Vec<HistoryDoc>,
    }

    #[derive(ToSchema)]
    #[schema(as = QueuePage)]
    pub struct QueuePageDoc {
        pub total: u64,
        pub items: Vec<CardDoc>,
    }

    #[derive(ToSchema)]
    #[schema(as = Offer)]
    pub struct OfferDoc {
        pub publication: u64,
        pub kindergarten: String,
        pub kindergarten_name: String,
        pub cohort: i32,
        pub language: String,
        pub places_left: u32,
        pub phase: String,
        #[schema(format = DateTime)]
        pub free_access_at: String,
    }

    #[derive(ToSchema)]
    #[schema(as = Publication)]
    pub struct PublicationDoc {
        pub id: u64,
        pub kindergarten: String,
        pub kindergarten_name: String,
        pub cohort: i32,
        pub language: String,
        pub places: u32,
        pub places_left: u32,
        /// `priority` or `free_access`.
        pub phase: String,
        #[schema(format = DateTime)]
        pub published_at: String,
        #[schema(format = DateTime)]
        pub free_access_at: String,
    }

    #[derive(ToSchema)]
    #[schema(as = RulesCheck)]
    pub struct CheckDoc {
        pub ok: bool,
        pub hash: String,
        /// True when this is the active rule set.
        pub active: bool,
        pub files: Vec<String>,
        pub categories: Vec<serde_json::Value>,
    }

    #[derive(ToSchema)]
    #[schema(as = Change)]
    pub struct ChangeDoc {
        pub id: String,
        /// Queue position now.
        pub old: u64,
        /// Queue position under the candidate.
        pub new: u64,
        pub old_cohort: i32,
        pub new_cohort: i32,
    }

    #[derive(ToSchema)]
    #[schema(as = Impact)]
    pub struct ImpactDoc {
        pub waiting: u64,
        pub moved: u64,
        pub up: u64,
        pub down: u64,
        pub max_move: u64,
        pub changes: Vec<ChangeDoc>,
        /// Changes matching `search` (all changes without one).
        pub changes_matching: u64,
        pub offset: u64,
        pub limit: u64,
        pub candidate_hash: String,
        pub identical: bool,
    }

    #[derive(ToSchema)]
    #[schema(as = Activated)]
    pub struct ActivatedDoc {
        pub version: u32,
        pub hash: String,
        #[schema(format = DateTime)]
        pub activated_at: String,
        pub actor: String,
        pub reason: Option<String>,
        /// Applications re-ranked.
        pub applications: u64,
    }

    #[derive(ToSchema)]
    #[schema(as = ConsoleResult)]
    pub struct ConsoleDoc {
        /// The value of the script's last expression; arrays of maps render as tables.
        pub result: serde_json::Value,
        /// Lines the script printed.
        pub output: Vec<String>,
        pub operations: u64,
        pub elapsed_ms: u64,
    }
}

pub(crate) use doc::*;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        // A citizen's token from POST /api/citizen/login (a signature login).
        components.add_security_scheme(
            "citizen",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Kezek admin API",
        description = "The preschool enrollment queue: cards, queues, actions, rules with impact, a read-only Rhai console, and the parent's flow (signature login, journal, signed recall and extension). Errors are {\"error\": {\"code\", \"message\"}}."
    ),
    paths(
        health, me, openapi_json, card, explain, offers, queue, recall, take, extend, enroll,
        withdraw, cancel_benefit, change_category, change_applicant, publications, publish,
        rules_show, rules_version, rules_check, rules_impact, rules_activate, console_help,
        console_run,
        super::citizen::challenge, super::citizen::login, super::citizen::set_email,
        super::citizen::me, super::citizen::journal, super::citizen::card,
        super::citizen::recall_document, super::citizen::recall,
        super::citizen::extend_document, super::citizen::extend
    ),
    components(schemas(
        ErrorDoc, ErrorInner, HealthDoc, MeDoc, CardDoc, ReferralDoc, HistoryDoc, QueuePageDoc,
        OfferDoc, PublicationDoc, CheckDoc, ChangeDoc, ImpactDoc, ActivatedDoc, ConsoleDoc,
        ReasonBody, TakeBody, ChangeCategoryBody, PublishBody, RulesBody, ImpactBody,
        ActivateBody, ConsoleBody, ApplicantBody,
        super::citizen::SignedBody, super::citizen::EmailBody, super::citizen::CitizenReasonBody,
        super::citizen::ChallengeDoc, super::citizen::LoginDoc, super::citizen::EmailDoc,
        super::citizen::JournalDoc, super::citizen::DocumentDoc
    )),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

/// The OpenAPI document as JSON (built once).
pub fn openapi() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| serde_json::to_value(ApiDoc::openapi()).unwrap_or(Value::Null))
}
