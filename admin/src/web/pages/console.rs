//! `/console`: the read-only Rhai console (the engine's `console` module, bounded) with
//! its documented functions; results render as tables. Each run is recorded in the audit
//! log, as through the API.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use jiff::Timestamp;
use kezek_engine::console;
use maud::{html, Markup};
use serde_json::{json, Value};

use super::{checked_form, csrf_field, layout, Ctx, PageError, PageResult};
use crate::web::api::actor;
use crate::web::audit::{script_detail, AuditEntry};
use crate::web::server::App;

const EXAMPLE: &str =
    "// the first ten of the oldest cohort\nlet c = cohorts()[0];\nqueue(c, 1, 10)";

/// Rows of a result table shown on the page.
const MAX_TABLE_ROWS: usize = 1000;

fn cell(v: &Value) -> String {
    match v {
        Value::Null => "—".into(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        other => other.to_string(),
    }
}

/// A JSON value as HTML: an array of maps as a table (the union of their keys as
/// columns), a map as a two-column table, an array of scalars as a list, a scalar as is.
pub fn value_table(v: &Value) -> Markup {
    match v {
        Value::Array(items) if !items.is_empty() && items.iter().all(Value::is_object) => {
            let mut cols: Vec<&String> = Vec::new();
            for it in items {
                if let Value::Object(m) = it {
                    for k in m.keys() {
                        if !cols.contains(&k) {
                            cols.push(k);
                        }
                    }
                }
            }
            // The identifying columns first (a card's keys come sorted, which would put
            // the applicant's IIN before the application number).
            let mut placed = 0;
            for lead in ["id", "queue_position", "status"] {
                if let Some(i) = cols[placed..].iter().position(|c| c.as_str() == lead) {
                    let c = cols.remove(placed + i);
                    cols.insert(placed, c);
                    placed += 1;
                }
            }
            html! {
                div.scroll {
                table #console-table data-test="console-table" {
                    thead { tr { th.n { "#" } @for c in &cols { th { (c) } } } }
                    tbody {
                        @for (i, it) in items.iter().take(MAX_TABLE_ROWS).enumerate() {
                            tr data-test="console-row" { td.n { (i + 1) } @for c in &cols { td { (cell(it.get(c.as_str()).unwrap_or(&Value::Null))) } } }
                        }
                    }
                }
                }
                @if items.len() > MAX_TABLE_ROWS { p.muted { (MAX_TABLE_ROWS) " / " (items.len()) } }
            }
        }
        Value::Object(m) => html! {
            table #console-table data-test="console-table" {
                tbody { @for (k, v) in m { tr data-test="console-row" { th { (k) } td { (cell(v)) } } } }
            }
        },
        Value::Array(items) => html! {
            table #console-table data-test="console-table" {
                tbody { @for (i, v) in items.iter().take(MAX_TABLE_ROWS).enumerate() { tr data-test="console-row" { td.n { (i + 1) } td { (cell(v)) } } } }
            }
        },
        other => html! { pre #console-scalar data-test="console-scalar" { (cell(other)) } },
    }
}

fn page(ctx: &Ctx, app: &App, script: &str, result: Option<Result<Value, String>>) -> Markup {
    let l = &app.limits().console;
    html! {
        div.grid2.console {
            div {
                form method="post" action="/console" #console-form data-test="console-form" {
                    (csrf_field(ctx))
                    div.editor {
                        pre.hl aria-hidden="true" { code {} }
                        textarea.code name="script" rows="12" spellcheck="false" wrap="off" #console-script data-test="console-script" data-rhai="" maxlength=(l.max_script_bytes) { (script) }
                    }
                    div.buttons {
                        button.primary type="submit" #console-run data-test="console-run" { (ctx.t("run")) }
                        span.muted { (ctx.t("console_note")) }
                    }
                }
                @match &result {
                    Some(Ok(v)) => {
                        section #console-result data-test="console-result" {
                            h2 { (ctx.t("result")) }
                            @if let Some(out) = v.get("output").and_then(Value::as_array).filter(|o| !o.is_empty()) {
                                pre.output data-test="console-output" { @for line in out { (cell(line)) "\n" } }
                            }
                            (value_table(v.get("result").unwrap_or(&Value::Null)))
                            p.muted { (ctx.t("operations")) ": " (cell(v.get("operations").unwrap_or(&Value::Null))) " · " (cell(v.get("elapsed_ms").unwrap_or(&Value::Null))) " ms" }
                        }
                    },
                    Some(Err(m)) => { p.flash.err #console-error data-test="console-error" { (m) } },
                    None => {},
                }
            }
            aside #console-help data-test="console-help" {
                h2 { (ctx.t("functions")) }
                dl.help {
                    @for (sig, what) in console::FUNCTIONS {
                        dt.mono { (sig) } dd { (what) }
                    }
                    dt.mono { "print(x)" } dd { (ctx.t("print_help")) }
                }
                h3 { (ctx.t("limits")) }
                ul.muted {
                    li { (ctx.t("lim_operations")) ": " (l.max_operations) }
                    li { (ctx.t("lim_time")) ": " (l.max_time.as_millis()) " ms" }
                    li { (ctx.t("lim_script")) ": " (l.max_script_bytes) " B" }
                    li { (ctx.t("lim_output")) ": " (l.max_output_bytes) " B" }
                    li { (ctx.t("lim_rows")) ": " (l.max_page) }
                }
            }
        }
    }
}

pub async fn console_page(ctx: Ctx, State(app): State<App>) -> PageResult {
    let body = page(&ctx, &app, EXAMPLE, None);
    Ok(layout(&ctx, "console", ctx.t("nav_console"), body))
}

pub async fn console_post(ctx: Ctx, State(app): State<App>, body: Bytes) -> PageResult {
    let lang = ctx.lang;
    let err = |e: PageError| e.in_lang(lang);
    let f = checked_form(&ctx, &body).map_err(err)?;
    let script = f.get("script").unwrap_or("").replace("\r\n", "\n");
    let _permit = app
        .inner
        .console_gate
        .acquire()
        .await
        .map_err(|_| err(PageError::new(StatusCode::SERVICE_UNAVAILABLE, "stopping")))?;
    let caller = ctx.caller.clone();
    let s2 = script.clone();
    let result = app
        .blocking(move |a| {
            let limits = a.limits().console.clone();
            let result = console::run(a.state_source(), &s2, &limits);
            let mut detail = script_detail(&s2);
            if let (Value::Object(d), Ok(out)) = (&mut detail, &result) {
                d.insert("operations".into(), json!(out.operations));
                d.insert("elapsed_ms".into(), json!(out.elapsed_ms));
            }
            if let Value::Object(d) = &mut detail {
                d.insert("via".into(), json!("page"));
            }
            let entry = AuditEntry {
                at: Timestamp::now(),
                actor: actor(&caller).to_string(),
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
            Ok(match result {
                Ok(out) => Ok(json!({
                    "result": out.result,
                    "output": out.output,
                    "operations": out.operations,
                    "elapsed_ms": out.elapsed_ms,
                })),
                Err(e) => Err(format!("{} [{}]", e.message, e.code)),
            })
        })
        .await
        .map_err(|e| err(e.into()))?;
    let status = if result.is_ok() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let body = page(&ctx, &app, &script, Some(result));
    let mut res = layout(&ctx, "console", ctx.t("nav_console"), body);
    *res.status_mut() = status;
    Ok(res)
}
