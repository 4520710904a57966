//! `/audit`: everything people and the system did, newest first: the engine's events
//! (the event log: actor, time, what, reason) and the web layer's audit log (logins,
//! console runs, accounts, tokens), with filters (actor, action, Almaty dates) and a CSV
//! export (`/audit.csv`, same filters).

use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use jiff::civil::Date;
use jiff::Timestamp;
use kezek_engine::calendar::local_date;
use kezek_engine::{Event, EventRecord};
use maud::html;
use serde::Deserialize;

use super::{layout, when, Ctx, PageError, PageResult};
use crate::web::server::App;

/// Rows on the page, and in one CSV export.
pub const MAX_PAGE_ROWS: usize = 500;
pub const MAX_CSV_ROWS: usize = 100_000;
/// Web audit entries read (the newest).
const MAX_WEB_ENTRIES: usize = 100_000;

#[derive(Debug, Deserialize, Clone, Default)]
pub struct AuditQuery {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    /// `all` (default), `events` or `web`.
    pub source: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Row {
    pub at: Timestamp,
    pub source: &'static str,
    pub actor: String,
    pub action: String,
    pub what: String,
    pub reason: String,
}

struct Filter {
    actor: String,
    action: String,
    from: Option<Date>,
    to: Option<Date>,
    events: bool,
    web: bool,
}

fn date_param(v: &Option<String>, name: &str) -> Result<Option<Date>, PageError> {
    match v.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(s) => s.parse::<Date>().map(Some).map_err(|_| {
            PageError::bad_request(format!("{name}: '{s}' is not a date (YYYY-MM-DD)"))
        }),
    }
}

impl Filter {
    fn new(q: &AuditQuery) -> Result<Filter, PageError> {
        let clip = |s: &Option<String>| -> Result<String, PageError> {
            let s = s.as_deref().unwrap_or("").trim();
            if s.len() > 100 {
                return Err(PageError::bad_request("a filter is longer than 100 bytes"));
            }
            Ok(s.to_lowercase())
        };
        let (events, web) = match q.source.as_deref() {
            Some("events") => (true, false),
            Some("web") => (false, true),
            _ => (true, true),
        };
        Ok(Filter {
            actor: clip(&q.actor)?,
            action: clip(&q.action)?,
            from: date_param(&q.from, "from")?,
            to: date_param(&q.to, "to")?,
            events,
            web,
        })
    }
    fn keeps(&self, at: Timestamp, actor: &str, action: &str) -> bool {
        let d = local_date(at);
        (self.actor.is_empty() || actor.to_lowercase().contains(&self.actor))
            && (self.action.is_empty() || action.to_lowercase().contains(&self.action))
            && self.from.is_none_or(|f| d >= f)
            && self.to.is_none_or(|t| d <= t)
    }
}

/// What an event did, in a few words.
pub fn what(rec: &EventRecord) -> String {
    match &rec.event {
        Event::RulesActivated { version, hash, .. } => {
            format!("version {version} ({})", hash.get(..12).unwrap_or(hash))
        }
        Event::GroupsAdded { groups } => format!("{} groups", groups.len()),
        Event::Registered(r) => format!("{} ({})", r.app, r.category),
        Event::CategoryChanged { app, category, .. } => format!("{app} → {category}"),
        Event::PlacesPublished {
            publication,
            kindergarten,
            cohort,
            language,
            places,
            ..
        } => format!("#{publication} {kindergarten} {cohort} {language} ×{places}"),
        Event::PriorityPhaseEnded { publication } => format!("#{publication}"),
        Event::ReferralIssued {
            referral,
            app,
            publication,
            ..
        } => format!("{app} referral #{referral} (publication #{publication})"),
        other => other.app().map(|a| a.to_string()).unwrap_or_default(),
    }
}

/// The newest `limit` rows that pass the filter, newest first.
fn collect(
    app: &App,
    f: &Filter,
    limit: usize,
) -> Result<(Vec<Row>, usize), crate::web::error::ApiError> {
    let mut rows: Vec<Row> = Vec::new();
    let mut matched = 0usize;
    if f.web {
        for e in app.audit().recent(MAX_WEB_ENTRIES) {
            if f.keeps(e.at, &e.actor, &e.action) {
                matched += 1;
                let mut detail = match &e.detail {
                    serde_json::Value::Null => String::new(),
                    d => d.to_string(),
                };
                if detail.len() > 300 {
                    let mut cut = 300;
                    while !detail.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    detail.truncate(cut);
                    detail.push('…');
                }
                rows.push(Row {
                    at: e.at,
                    source: "web",
                    actor: e.actor,
                    action: e.action,
                    what: detail,
                    reason: e.outcome,
                });
            }
        }
    }
    if f.events {
        let s = app.read()?;
        let mut ring = std::collections::VecDeque::with_capacity(limit.min(10_000));
        for rec in s.records(1) {
            let rec = rec?;
            let actor = rec.actor.to_string();
            if f.keeps(rec.at, &actor, rec.event.name()) {
                matched += 1;
                if ring.len() == limit {
                    ring.pop_front();
                }
                if limit > 0 {
                    ring.push_back(Row {
                        at: rec.at,
                        source: "event",
                        actor,
                        action: rec.event.name().to_string(),
                        what: what(&rec),
                        reason: rec.reason.clone().unwrap_or_default(),
                    });
                }
            }
        }
        rows.extend(ring);
    }
    rows.sort_by_key(|r| std::cmp::Reverse(r.at));
    rows.truncate(limit);
    Ok((rows, matched))
}

pub async fn audit_page(
    ctx: Ctx,
    State(app): State<App>,
    Query(q): Query<AuditQuery>,
) -> PageResult {
    let lang = ctx.lang;
    let filter = Filter::new(&q).map_err(|e| e.in_lang(lang))?;
    let (rows, matched) = app
        .blocking(move |a| collect(a, &filter, MAX_PAGE_ROWS))
        .await
        .map_err(|e| PageError::from(e).in_lang(lang))?;
    let csv_q = serde_urlencoded::to_string([
        ("actor", q.actor.clone().unwrap_or_default()),
        ("action", q.action.clone().unwrap_or_default()),
        ("from", q.from.clone().unwrap_or_default()),
        ("to", q.to.clone().unwrap_or_default()),
        ("source", q.source.clone().unwrap_or_default()),
    ])
    .unwrap_or_default();
    let source = q.source.clone().unwrap_or_default();
    let body = html! {
        form.row method="get" action="/audit" #audit-filter data-test="audit-filter" {
            label { (ctx.t("actor")) input type="text" name="actor" value=(q.actor.clone().unwrap_or_default()) maxlength="100" data-test="filter-actor"; }
            label { (ctx.t("action")) input type="text" name="action" value=(q.action.clone().unwrap_or_default()) maxlength="100" data-test="filter-action"; }
            label { (ctx.t("date_from")) input type="date" name="from" value=(q.from.clone().unwrap_or_default()) data-test="filter-from"; }
            label { (ctx.t("date_to")) input type="date" name="to" value=(q.to.clone().unwrap_or_default()) data-test="filter-to"; }
            label { (ctx.t("source"))
                select name="source" data-test="filter-source" {
                    option value="" selected[source.is_empty()] { (ctx.t("all")) }
                    option value="events" selected[source == "events"] { (ctx.t("source_events")) }
                    option value="web" selected[source == "web"] { (ctx.t("source_web")) }
                }
            }
            button.primary type="submit" data-test="filter-submit" { (ctx.t("filter")) }
            a.button href=(format!("/audit.csv?{csv_q}")) #audit-csv data-test="audit-csv" download="audit.csv" { "CSV" }
        }
        p.muted #audit-count data-test="audit-count" { (matched) " " (ctx.t("found")) @if matched > rows.len() { " · " (ctx.t("showing_newest")) " " (rows.len()) } }
        div.scroll {
        table #audit data-test="audit" {
            thead { tr { th { (ctx.t("time")) } th { (ctx.t("source")) } th { (ctx.t("actor")) } th { (ctx.t("action")) } th { (ctx.t("what")) } th { (ctx.t("reason_outcome")) } } }
            tbody {
                @for r in &rows {
                    tr data-test="audit-row" data-source=(r.source) data-action=(r.action) {
                        td.nowrap { (when(r.at)) } td { (r.source) } td { (r.actor) } td { (r.action) } td.wrap { (r.what) } td.wrap { (r.reason) }
                    }
                }
            }
        }
        }
    };
    Ok(layout(&ctx, "audit", ctx.t("nav_audit"), body))
}

/// A CSV field: quoted when needed; a leading `=`, `+`, `-` or `@` is prefixed with `'`
/// so that a spreadsheet does not run it as a formula.
pub fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

pub async fn audit_csv(
    ctx: Ctx,
    State(app): State<App>,
    Query(q): Query<AuditQuery>,
) -> PageResult {
    let lang = ctx.lang;
    let filter = Filter::new(&q).map_err(|e| e.in_lang(lang))?;
    let (rows, _) = app
        .blocking(move |a| collect(a, &filter, MAX_CSV_ROWS))
        .await
        .map_err(|e| PageError::from(e).in_lang(lang))?;
    let mut out = String::from("time_utc,time_almaty,source,actor,action,what,reason_or_outcome\n");
    for r in &rows {
        let fields = [
            r.at.to_string(),
            when(r.at),
            r.source.to_string(),
            r.actor.clone(),
            r.action.clone(),
            r.what.clone(),
            r.reason.clone(),
        ];
        let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        out.push_str(&line.join(","));
        out.push('\n');
    }
    let res: Response = (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"audit.csv\"",
            ),
        ],
        out,
    )
        .into_response();
    Ok(res)
}
