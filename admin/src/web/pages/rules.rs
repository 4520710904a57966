//! `/rules`: the active version and its parameters, the history of versions (who
//! activated each, when, why: from the `rules_activated` events), a line diff between any
//! two versions, and the draft editor: one highlighted textarea per file, **check**
//! (errors with file and line), **impact** (who moves, up and down, the largest moves, a
//! searchable table of old and new positions), **activate** (a reason, `rules_admin`),
//! and **roll back** to an earlier version (a reason, `rules_admin`).

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use jiff::Timestamp;
use kezek_engine::state::RulesVersion;
use kezek_engine::{impact, Command, Request as EngineRequest, RuleSet};
use maud::{html, Markup};
use serde::Deserialize;
use similar::{ChangeTag, TextDiff};

use super::{
    checked_form, confirm_dialog, csrf_field, flash_redirect, layout, need_role, when, Ctx, Fields,
    PageError, PageResult,
};
use crate::web::accounts::Role;
use crate::web::api::actor;
use crate::web::error::ApiError;
use crate::web::server::App;

/// Files of one draft, and bytes of one file.
pub const MAX_DRAFT_FILES: usize = 32;
pub const MAX_FILE_NAME_CHARS: usize = 64;
/// Rows of the impact table on the page (the counts cover all).
pub const MAX_IMPACT_ROWS: usize = 1000;

fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

fn history_table(ctx: &Ctx, versions: &[RulesVersion], active: u32) -> Markup {
    html! {
        div.scroll {
        table #rule-history data-test="rule-history" {
            thead { tr {
                th { (ctx.t("version")) } th { (ctx.t("hash")) } th { (ctx.t("activated_at")) }
                th { (ctx.t("actor")) } th { (ctx.t("reason")) } th { }
            } }
            tbody {
                @for v in versions.iter().rev() {
                    tr data-test="version-row" data-version=(v.version) .current[v.version == active] {
                        td { strong { (v.version) } @if v.version == active { " " span.badge.priority data-test="active-badge" { (ctx.t("active")) } } }
                        td.mono { (short(&v.hash)) }
                        td { (when(v.activated_at)) }
                        td { (v.actor.to_string()) }
                        td { (v.reason.as_deref().unwrap_or("")) }
                        td.nowrap {
                            @if v.version > 1 {
                                a href=(format!("/rules/diff?a={}&b={}", v.version - 1, v.version)) data-test="diff-prev" { (ctx.t("diff_prev")) } " · "
                            }
                            a href=(format!("/rules/draft?from={}", v.version)) data-test="edit-from" { (ctx.t("edit_from")) }
                            @if v.version != active && ctx.can(Role::RulesAdmin) {
                                " · "
                                (confirm_dialog(ctx, &format!("rollback-{}", v.version), "/rules/rollback",
                                    &format!("{} {}", ctx.t("rollback_to"), v.version),
                                    html! { p { (ctx.t("rollback_note")) } }, true,
                                    html! { input type="hidden" name="version" value=(v.version); }))
                            }
                        }
                    }
                }
            }
        }
        }
    }
}

pub async fn rules_page(ctx: Ctx, State(app): State<App>) -> PageResult {
    let lang = ctx.lang;
    let c = ctx.clone();
    let body = app
        .blocking(move |a| {
            let ctx = c;
            let s = a.read()?;
            let st = s.state();
            let versions = st.data.rules_versions.clone();
            let Some(v) = versions.last() else {
                return Ok(html! { p { (ctx.t("no_rules")) } });
            };
            let p = st.rules().map(|r| r.params().clone());
            Ok(html! {
                section.box #active-rules data-test="active-rules" data-version=(v.version) {
                    h2 { (ctx.t("active_version")) " " span #active-version data-test="active-version" { (v.version) } }
                    dl.inline {
                        div.field { dt { (ctx.t("hash")) } dd.mono { (short(&v.hash)) } }
                        div.field { dt { (ctx.t("activated_at")) } dd { (when(v.activated_at)) } }
                        div.field { dt { (ctx.t("actor")) } dd { (v.actor.to_string()) } }
                        div.field { dt { (ctx.t("reason")) } dd { (v.reason.as_deref().unwrap_or("—")) } }
                        div.field { dt { (ctx.t("files")) } dd { (v.files.keys().cloned().collect::<Vec<_>>().join(", ")) } }
                    }
                    p {
                        a.button.primary href="/rules/draft" #new-draft data-test="new-draft" { (ctx.t("edit_draft")) }
                    }
                }
                @if let Some(p) = p {
                    section {
                        h2 { (ctx.t("parameters")) }
                        div.grid2 {
                            table #categories data-test="categories" {
                                thead { tr { th { (ctx.t("category")) } th.n { (ctx.t("rank")) } th { "kk" } th { "ru" } th { "en" } } }
                                tbody { @for c in &p.categories { tr { td.mono { (c.code) } td.n { (c.rank) } td { (c.kk) } td { (c.ru) } td { (c.en) } } } }
                            }
                            table #params data-test="params" {
                                tbody {
                                    tr { td { (ctx.t("p_recall_window_hours")) } td.n { (p.recall_window_hours) } }
                                    tr { td { (ctx.t("p_referral_validity")) } td.n { (p.referral_validity_working_days) } }
                                    tr { td { (ctx.t("p_extension_days")) } td.n { (p.extension_days) } }
                                    tr { td { (ctx.t("p_max_extensions")) } td.n { (p.max_extensions) } }
                                    tr { td { (ctx.t("p_stop_list_days")) } td.n { (p.stop_list_days) } }
                                    tr { td { (ctx.t("p_priority_days")) } td.n { (p.priority_phase_working_days) } }
                                    tr { td { (ctx.t("p_free_access_time")) } td.n { (p.free_access_time.to_string()) } }
                                    tr { td { (ctx.t("p_holidays")) } td.n { (p.holidays.len()) } }
                                }
                            }
                        }
                    }
                }
                section {
                    h2 { (ctx.t("history")) }
                    (history_table(&ctx, &versions, v.version))
                    form.row method="get" action="/rules/diff" #diff-form data-test="diff-form" {
                        label { (ctx.t("diff_from")) select name="a" data-test="diff-a" { @for x in &versions { option value=(x.version) selected[x.version + 1 == v.version] { (x.version) } } } }
                        label { (ctx.t("diff_to")) select name="b" data-test="diff-b" { @for x in &versions { option value=(x.version) selected[x.version == v.version] { (x.version) } } } }
                        button type="submit" data-test="diff-submit" { (ctx.t("show_diff")) }
                    }
                }
            })
        })
        .await
        .map_err(|e| PageError::from(e).in_lang(lang))?;
    Ok(layout(&ctx, "rules", ctx.t("nav_rules"), body))
}

#[derive(Debug, Deserialize)]
pub struct DiffQuery {
    pub a: Option<String>,
    pub b: Option<String>,
}

fn version_files(versions: &[RulesVersion], n: u32) -> Option<&BTreeMap<String, String>> {
    versions.iter().find(|v| v.version == n).map(|v| &v.files)
}

/// A unified line diff of two file sets, by file.
pub fn diff_markup(
    ctx: &Ctx,
    old: &BTreeMap<String, String>,
    new: &BTreeMap<String, String>,
) -> Markup {
    let names: std::collections::BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    let empty = String::new();
    html! {
        @for name in names {
            @let a = old.get(name).unwrap_or(&empty);
            @let b = new.get(name).unwrap_or(&empty);
            @if a != b {
                @let d = TextDiff::from_lines(a.as_str(), b.as_str());
                section.diff data-test="diff-file" data-file=(name) {
                    h3.mono { (name) @if !old.contains_key(name) { " (" (ctx.t("added")) ")" } @if !new.contains_key(name) { " (" (ctx.t("removed")) ")" } }
                    pre.diff {
                        @for group in d.grouped_ops(3) {
                            span.hunk { "@@\n" }
                            @for op in group {
                                @for ch in d.iter_changes(&op) {
                                    @let (cls, sign) = match ch.tag() { ChangeTag::Delete => ("del", "-"), ChangeTag::Insert => ("add", "+"), ChangeTag::Equal => ("ctx", " ") };
                                    @let num = ch.new_index().or(ch.old_index()).map_or(0, |i| i + 1);
                                    span class=(cls) data-test=(format!("diff-{cls}")) { span.ln { (format!("{num:>4} ")) } (sign) (ch.value().trim_end_matches('\n')) "\n" }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

pub async fn diff_page(ctx: Ctx, State(app): State<App>, Query(q): Query<DiffQuery>) -> PageResult {
    let lang = ctx.lang;
    let num = |s: Option<&str>, what: &str| -> Result<u32, PageError> {
        s.and_then(|x| x.trim().parse::<u32>().ok()).ok_or_else(|| {
            PageError::bad_request(format!("{what}: {}", ctx.t("bad_version"))).in_lang(lang)
        })
    };
    let a = num(q.a.as_deref(), "a")?;
    let b = num(q.b.as_deref(), "b")?;
    let c = ctx.clone();
    let body = app
        .blocking(move |app| {
            let ctx = c;
            let s = app.read()?;
            let versions = &s.state().data.rules_versions;
            let missing = |n: u32| {
                ApiError::new(
                    StatusCode::NOT_FOUND,
                    "unknown_version",
                    format!("{} {n}", ctx.t("no_such_version")),
                )
            };
            let fa = version_files(versions, a).ok_or_else(|| missing(a))?;
            let fb = version_files(versions, b).ok_or_else(|| missing(b))?;
            Ok(html! {
                p { a href="/rules" { "← " (ctx.t("nav_rules")) } }
                h2 #diff-title data-test="diff-title" { (ctx.t("version")) " " (a) " → " (b) }
                @if fa == fb {
                    p.muted #diff-same data-test="diff-same" { (ctx.t("no_differences")) }
                } @else {
                    div #diff data-test="diff" { (diff_markup(&ctx, fa, fb)) }
                }
            })
        })
        .await
        .map_err(|e| PageError::from(e).in_lang(lang))?;
    Ok(layout(&ctx, "rules", ctx.t("rules_diff"), body))
}

#[derive(Debug, Deserialize)]
pub struct DraftQuery {
    pub from: Option<String>,
}

/// What the draft page shows under the editor.
enum Outcome {
    None,
    CheckOk {
        hash: String,
        active: bool,
        categories: usize,
    },
    RuleError {
        file: String,
        line: Option<usize>,
        message: String,
    },
    Error(String),
    Impact(Box<impact::Impact>, String),
}

/// The draft editor. The file shown is the one with an error, else the one the user was
/// editing (`tab`, kept by app.js in a hidden field), else the first.
fn editor(
    ctx: &Ctx,
    files: &BTreeMap<String, String>,
    base: u32,
    outcome: &Outcome,
    tab: Option<&str>,
) -> Markup {
    let err_file = match outcome {
        Outcome::RuleError { file, .. } => Some(file.as_str()),
        _ => None,
    };
    let shown: Option<&str> = err_file
        .or(tab)
        .filter(|f| files.contains_key(*f))
        .or_else(|| files.keys().next().map(String::as_str));
    let search = match outcome {
        Outcome::Impact(_, s) => s.clone(),
        _ => String::new(),
    };
    html! {
        form method="post" action="/rules/draft" #draft-form data-test="draft-form" {
            (csrf_field(ctx))
            input type="hidden" name="base" value=(base);
            input type="hidden" name="tab" value=(shown.unwrap_or("")) data-test="draft-tab";
            p.muted { (ctx.t("draft_from")) " " (base) ". " (ctx.t("draft_note")) }
            nav.tabs.filetabs #file-tabs data-test="file-tabs" {
                @for (i, name) in files.keys().enumerate() {
                    a href=(format!("#file-{i}")) data-tab=(format!("file-{i}")) .active[shown == Some(name.as_str())] .haserr[err_file == Some(name.as_str())] data-test="file-tab" data-file=(name) { (name) }
                }
            }
            @for (i, (name, src)) in files.iter().enumerate() {
                div.filepane id=(format!("file-{i}")) data-file=(name) data-test="file-pane" .shown[shown == Some(name.as_str())] {
                    div.editor {
                        pre.hl aria-hidden="true" { code {} }
                        textarea.code name=(format!("file:{name}")) spellcheck="false" wrap="off" rows="24" data-test="file-editor" data-file=(name) data-rhai="" { (src) }
                    }
                }
            }
            div.buttons #draft-buttons {
                button type="submit" name="op" value="check" formnovalidate #check data-test="check" { (ctx.t("check")) }
                span.group {
                    input type="search" name="search" value=(search) placeholder=(ctx.t("impact_search")) maxlength="64" data-test="impact-search";
                    button type="submit" name="op" value="impact" formnovalidate #impact data-test="impact" { (ctx.t("impact")) }
                }
                @if ctx.can(Role::RulesAdmin) {
                    button.primary type="button" #open-activate data-test="open-activate" data-dialog="dlg-activate" { (ctx.t("activate")) }
                    dialog #dlg-activate data-test="dialog-activate" {
                        h2 { (ctx.t("activate")) }
                        p { (ctx.t("activate_note")) }
                        label { (ctx.t("reason")) " *"
                            textarea name="reason" rows="3" maxlength="1000" required data-test="reason" {} }
                        div.buttons {
                            button.primary type="submit" name="op" value="activate" #confirm-activate data-test="confirm-activate" { (ctx.t("confirm")) }
                            button type="button" data-close="" data-test="cancel-activate" { (ctx.t("cancel")) }
                        }
                    }
                } @else {
                    span.muted #activate-hidden data-test="activate-hidden" { (ctx.t("activate_needs_admin")) }
                }
            }
        }
        (outcome_markup(ctx, outcome))
    }
}

fn outcome_markup(ctx: &Ctx, outcome: &Outcome) -> Markup {
    match outcome {
        Outcome::None => html! {},
        Outcome::CheckOk {
            hash,
            active,
            categories,
        } => html! {
            p.flash.ok #check-result data-test="check-ok" {
                (ctx.t("check_ok")) " " span.mono { (short(hash)) } " · " (categories) " " (ctx.t("categories_n"))
                @if *active { " · " (ctx.t("same_as_active")) }
            }
        },
        Outcome::RuleError {
            file,
            line,
            message,
        } => html! {
            div.flash.err #check-result data-test="check-error" data-file=(file) data-line=(line.map_or(String::new(), |l| l.to_string())) {
                strong.mono { (file) @if let Some(l) = line { ":" (l) } } " — " (message)
            }
        },
        Outcome::Error(m) => html! { p.flash.err #check-result data-test="draft-error" { (m) } },
        Outcome::Impact(imp, search) => html! {
            section #impact-result data-test="impact-result" {
                h2 { (ctx.t("impact")) }
                @if imp.identical { p.muted data-test="impact-identical" { (ctx.t("same_as_active")) } }
                div.cards {
                    div.card { div.num data-test="impact-waiting" { (imp.waiting) } div.lbl { (ctx.t("waiting")) } }
                    div.card { div.num #impact-moved data-test="impact-moved" { (imp.moved) } div.lbl { (ctx.t("moved")) } }
                    div.card { div.num #impact-up data-test="impact-up" { (imp.up) } div.lbl { (ctx.t("up")) } }
                    div.card { div.num #impact-down data-test="impact-down" { (imp.down) } div.lbl { (ctx.t("down")) } }
                    div.card { div.num #impact-max data-test="impact-max-move" { (imp.max_move) } div.lbl { (ctx.t("max_move")) } }
                }
                @let shown: Vec<_> = imp.changes.iter().filter(|c| search.is_empty() || c.id.contains(search.as_str())).take(MAX_IMPACT_ROWS).collect();
                h3 { (ctx.t("largest_moves")) " (" (shown.len()) " / " (imp.moved) ")" }
                input type="search" placeholder=(ctx.t("filter_rows")) data-filter="impact-table" #impact-filter data-test="impact-filter";
                div.scroll {
                table #impact-table data-test="impact-table" {
                    thead { tr { th { (ctx.t("app_number")) } th.n { (ctx.t("old_position")) } th.n { (ctx.t("new_position")) } th.n { (ctx.t("move")) } th { (ctx.t("cohort")) } } }
                    tbody {
                        @for c in shown {
                            tr data-test="impact-row" data-id=(c.id) {
                                td { a href=(format!("/applications/{}", c.id)) { (c.id) } }
                                td.n { (c.old) } td.n { (c.new) }
                                td.n.up[c.new < c.old].down[c.new > c.old] { @if c.new < c.old { "▲ " (c.old - c.new) } @else { "▼ " (c.new - c.old) } }
                                td { (c.old_cohort) @if c.old_cohort != c.new_cohort { " → " (c.new_cohort) } }
                            }
                        }
                    }
                }
                }
            }
        },
    }
}

pub async fn draft_page(
    ctx: Ctx,
    State(app): State<App>,
    Query(q): Query<DraftQuery>,
) -> PageResult {
    let lang = ctx.lang;
    let from: Option<u32> = match q.from.as_deref() {
        None | Some("") => None,
        Some(s) => Some(s.parse().map_err(|_| {
            PageError::bad_request(format!("from: {}", ctx.t("bad_version"))).in_lang(lang)
        })?),
    };
    let c = ctx.clone();
    let body = app
        .blocking(move |a| {
            let ctx = c;
            let s = a.read()?;
            let versions = &s.state().data.rules_versions;
            let v = match from {
                Some(n) => versions.iter().find(|v| v.version == n).ok_or_else(|| {
                    ApiError::new(
                        StatusCode::NOT_FOUND,
                        "unknown_version",
                        format!("{} {n}", ctx.t("no_such_version")),
                    )
                })?,
                None => versions.last().ok_or_else(|| {
                    ApiError::new(StatusCode::CONFLICT, "no_rules", ctx.t("no_rules"))
                })?,
            };
            Ok(editor(&ctx, &v.files, v.version, &Outcome::None, None))
        })
        .await
        .map_err(|e| PageError::from(e).in_lang(lang))?;
    Ok(layout(&ctx, "rules", ctx.t("draft_title"), body))
}

/// The files of a posted draft (`file:NAME` fields), within the limits.
pub(crate) fn draft_files(ctx: &Ctx, f: &Fields) -> Result<BTreeMap<String, String>, PageError> {
    let mut files = BTreeMap::new();
    for (k, v) in &f.0 {
        if let Some(name) = k.strip_prefix("file:") {
            let ok_name = !name.is_empty()
                && name.chars().count() <= MAX_FILE_NAME_CHARS
                && name.ends_with(".rhai")
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
            if !ok_name {
                return Err(PageError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    format!("'{name}': {}", ctx.t("bad_file_name")),
                ));
            }
            // Browsers send CR LF in textareas; the rules are stored as written in files.
            files.insert(name.to_string(), v.replace("\r\n", "\n"));
        }
    }
    if files.is_empty() || files.len() > MAX_DRAFT_FILES {
        return Err(PageError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("{} (1–{MAX_DRAFT_FILES})", ctx.t("bad_file_count")),
        ));
    }
    Ok(files)
}

pub async fn draft_post(ctx: Ctx, State(app): State<App>, body: Bytes) -> PageResult {
    let lang = ctx.lang;
    let err = |e: PageError| e.in_lang(lang);
    let f = checked_form(&ctx, &body).map_err(err)?;
    let files = draft_files(&ctx, &f).map_err(err)?;
    let base: u32 = f.get("base").and_then(|b| b.parse().ok()).unwrap_or(0);
    // Only a name of the draft's own files is used (checked in `editor`).
    let tab: Option<String> = f.opt("tab").map(|t| t.chars().take(64).collect());
    let op = f.get("op").unwrap_or("check").to_string();
    let search: String = f
        .opt("search")
        .unwrap_or_default()
        .chars()
        .take(64)
        .collect();
    let outcome = match op.as_str() {
        "check" => {
            let files2 = files.clone();
            let r = app
                .blocking(move |a| {
                    let compiled = RuleSet::compile(&files2);
                    let active = a.read()?.state().rules().map(RuleSet::hash);
                    Ok((compiled, active))
                })
                .await;
            match r {
                Ok((Ok(r), active)) => Outcome::CheckOk {
                    active: active.as_deref() == Some(r.hash().as_str()),
                    hash: r.hash(),
                    categories: r.params().categories.len(),
                },
                Ok((Err(e), _)) => Outcome::RuleError {
                    file: e.file.clone(),
                    line: e.line,
                    message: e.to_string(),
                },
                Err(e) => Outcome::Error(format!("{} [{}]", e.message, e.code)),
            }
        }
        "impact" => {
            let _permit =
                app.inner.impact_gate.acquire().await.map_err(|_| {
                    err(PageError::new(StatusCode::SERVICE_UNAVAILABLE, "stopping"))
                })?;
            let files2 = files.clone();
            let r = app
                .blocking(move |a| {
                    let rules = match RuleSet::compile(&files2) {
                        Ok(r) => r,
                        Err(e) => return Ok(Err(e)),
                    };
                    let snap = impact::capture(a.read()?.state());
                    Ok(Ok(impact::compute(&snap, &rules)?))
                })
                .await;
            match r {
                Ok(Ok(imp)) => Outcome::Impact(Box::new(imp), search),
                Ok(Err(e)) => Outcome::RuleError {
                    file: e.file.clone(),
                    line: e.line,
                    message: e.to_string(),
                },
                Err(e) => Outcome::Error(format!("{} [{}]", e.message, e.code)),
            }
        }
        "activate" => {
            need_role(&ctx, Role::RulesAdmin).map_err(err)?;
            let reason = f.required("reason", &ctx).map_err(err)?;
            match activate(&app, &ctx, files.clone(), reason).await {
                Ok(resp) => return Ok(resp),
                Err(o) => o,
            }
        }
        _ => return Err(err(PageError::bad_request(ctx.t("bad_value")))),
    };
    let status = match outcome {
        Outcome::RuleError { .. } | Outcome::Error(_) => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::OK,
    };
    let mut res = layout(
        &ctx,
        "rules",
        ctx.t("draft_title"),
        editor(&ctx, &files, base, &outcome, tab.as_deref()),
    );
    *res.status_mut() = status;
    Ok(res)
}

/// Activates a file set as `operator:NAME` (compiled first for an error with file and
/// line); on success goes to `/rules` with the outcome.
async fn activate(
    app: &App,
    ctx: &Ctx,
    files: BTreeMap<String, String>,
    reason: String,
) -> Result<Response, Outcome> {
    let caller = ctx.caller.clone();
    let r = app
        .blocking(move |a| {
            // Compiled first (outside the lock) for an error with file and line.
            if let Err(e) = RuleSet::compile(&files) {
                return Ok(Err(e));
            }
            let mut s = a.write()?;
            let now = s.now(Timestamp::now());
            s.execute(
                &EngineRequest {
                    command: Command::ActivateRules { files },
                    actor: actor(&caller),
                    reason: Some(reason),
                },
                now,
            )?;
            Ok(Ok(s.state().rules_version()))
        })
        .await;
    match r {
        Ok(Ok(v)) => Ok(flash_redirect(
            app,
            ctx,
            true,
            format!("{} {v}", ctx.t("done_activate")),
            "/rules",
        )),
        Ok(Err(e)) => Err(Outcome::RuleError {
            file: e.file.clone(),
            line: e.line,
            message: e.to_string(),
        }),
        Err(e) => Err(Outcome::Error(format!("{} [{}]", e.message, e.code))),
    }
}

pub async fn rollback_post(ctx: Ctx, State(app): State<App>, body: Bytes) -> PageResult {
    let lang = ctx.lang;
    let err = |e: PageError| e.in_lang(lang);
    let f = checked_form(&ctx, &body).map_err(err)?;
    need_role(&ctx, Role::RulesAdmin).map_err(err)?;
    let version: u32 = f
        .required("version", &ctx)
        .map_err(err)?
        .parse()
        .map_err(|_| err(PageError::bad_request(ctx.t("bad_version"))))?;
    let reason = f.required("reason", &ctx).map_err(err)?;
    let files = app
        .blocking(move |a| {
            Ok(version_files(&a.read()?.state().data.rules_versions, version).cloned())
        })
        .await
        .map_err(|e| err(e.into()))?
        .ok_or_else(|| {
            err(PageError::not_found(format!(
                "{} {version}",
                ctx.t("no_such_version")
            )))
        })?;
    Ok(match activate(&app, &ctx, files, reason).await {
        Ok(r) => r,
        Err(Outcome::Error(m)) | Err(Outcome::RuleError { message: m, .. }) => {
            flash_redirect(&app, &ctx, false, m, "/rules")
        }
        Err(_) => flash_redirect(&app, &ctx, false, ctx.t("error"), "/rules"),
    })
}
