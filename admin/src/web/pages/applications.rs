//! `/applications`: search by application number or IIN (IINs masked in lists), a
//! cohort's queue page by page, the active referrals; `/applications/{id}`: the card
//! (domain.md section 4) with its changes and the explanation of its position, and the
//! operator's actions, each behind a confirmation dialog with a reason. Actions run the
//! same `Store::execute` as the API, as `operator:NAME`, so the event log records who,
//! when and why.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use jiff::Timestamp;
use kezek_engine::iin::Iin;
use kezek_engine::{view, AppNo, Command, Request as EngineRequest, Status};
use maud::{html, Markup};
use serde::Deserialize;

use super::{
    category_name, checked_form, confirm_dialog, date_in, enc, flash_redirect, layout, mask_iin,
    need_role, status_word, when, when_opt, Ctx, PageError, PageResult, MAX_SEARCH_RESULTS,
    PAGE_ROWS,
};
use crate::web::accounts::Role;
use crate::web::api::actor;
use crate::web::server::App;

/// The seed's warning before a recall (recall-referral-instruction-kk.md, step 8), in
/// Kazakh as published and in Russian.
pub const RECALL_WARNING_KK: &str = "Сіз алынған жолдаманы шынымен кері шақыруды қалайсыз ба? Кері шақырған кезде алынған жолдама жойылып, бала кезекке қайтадан тұрады. Сонымен бірге жолдаманы кері шақырғаннан кейін бірінші кезектегілер үшін бұған дейін қол жетімді болған балабақшалардың тізімі регламенттелген уақыт аяқталған сәтке дейін таңдау үшін қол жетімді БОЛМАЙДЫ (таңдау мүмкіндігі орындарды (болған жағдайда) еркін қол жеткізуге жариялағаннан кейін пайда болады)";
pub const RECALL_WARNING_RU: &str = "Вы действительно хотите отозвать полученное направление? При отзыве полученное направление будет удалено, а ребёнок снова встанет в очередь. При этом после отзыва направления детские сады, которые до этого были доступны первым в очереди, НЕ БУДУТ доступны для выбора до окончания регламентированного времени (возможность выбора появится после публикации мест (при их наличии) в свободный доступ)";

#[derive(Debug, Deserialize)]
pub struct SearchQuery {
    pub q: Option<String>,
    pub cohort: Option<String>,
    pub page: Option<String>,
}

fn page_no(s: Option<&str>) -> usize {
    s.and_then(|p| p.parse::<usize>().ok())
        .filter(|p| *p >= 1 && *p <= 1_000_000)
        .unwrap_or(1)
}

/// One row of a list (IINs masked).
fn rows(ctx: &Ctx, state: &kezek_engine::State, cards: &[view::Card]) -> Markup {
    let l = ctx.lang;
    html! {
        div.scroll {
        table.list #results data-test="results" {
            thead { tr {
                th { (ctx.t("app_number")) } th { (ctx.t("child")) } th { (ctx.t("child_iin")) }
                th { (ctx.t("cohort")) } th { (ctx.t("category")) } th.n { (ctx.t("queue_position")) }
                th.n { (ctx.t("category_position")) } th { (ctx.t("status")) } th { (ctx.t("registered_at")) }
            } }
            tbody {
                @for c in cards {
                    tr data-test="result-row" data-id=(c.id) {
                        td { a href=(format!("/applications/{}", c.id)) data-test="result-link" { (c.id) } }
                        td { (c.child_name.as_deref().unwrap_or("—")) }
                        td.mono { (mask_iin(&c.child_iin)) }
                        td { (c.cohort) }
                        td { (category_name(state, l, &c.category)) }
                        td.n { (c.queue_position.map_or("—".to_string(), |p| p.to_string())) }
                        td.n { (c.category_position.map_or("—".to_string(), |p| p.to_string())) }
                        td { (status_word(l, c.status, c.status_kk, c.status_ru)) }
                        td { (when(c.registered_at)) }
                    }
                }
            }
        }
        }
    }
}

/// The applications holding a referral, the newest referral first.
fn active_referrals(state: &kezek_engine::State) -> Vec<&kezek_engine::model::Application> {
    let mut refs: Vec<_> = state
        .data
        .apps
        .values()
        .filter(|a| a.status == Status::ReferralIssued)
        .collect();
    refs.sort_by_key(|a| std::cmp::Reverse(a.referral));
    refs
}

/// Finds applications by number (whole or part) or IIN (child or applicant).
fn search(state: &kezek_engine::State, q: &str) -> Vec<AppNo> {
    let q = q.trim();
    if let Ok(id) = q.parse::<AppNo>() {
        return state.app(id).map(|a| vec![a.id]).unwrap_or_default();
    }
    let digits = q.len() == 12 && q.bytes().all(|b| b.is_ascii_digit());
    if digits {
        let mut out = Vec::new();
        if let Ok(iin) = Iin::parse(q) {
            if let Some(a) = state.app_of_child(&iin) {
                out.push(a);
            }
        }
        for a in state.data.apps.values() {
            if a.applicant_iin.to_string() == q && !out.contains(&a.id) {
                out.push(a.id);
                if out.len() >= MAX_SEARCH_RESULTS {
                    break;
                }
            }
        }
        return out;
    }
    // Part of a number: `489862`, `UO.2018.48`.
    let needle = q.to_uppercase();
    if needle.len() < 3 {
        return Vec::new();
    }
    state
        .data
        .apps
        .values()
        .filter(|a| a.id.to_string().contains(&needle))
        .take(MAX_SEARCH_RESULTS)
        .map(|a| a.id)
        .collect()
}

pub async fn search_page(
    ctx: Ctx,
    State(app): State<App>,
    Query(q): Query<SearchQuery>,
) -> PageResult {
    let lang = ctx.lang;
    let query = q.q.clone().unwrap_or_default();
    if query.len() > 200 {
        return Err(PageError::bad_request(ctx.t("query_too_long")).in_lang(lang));
    }
    let cohort: Option<i32> = match q.cohort.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(c) => Some(c.parse().map_err(|_| {
            PageError::bad_request(format!("{}: '{c}'", ctx.t("bad_cohort"))).in_lang(lang)
        })?),
    };
    let page = page_no(q.page.as_deref());
    let c = ctx.clone();
    let body = app
        .blocking(move |a| {
            let ctx = c;
            let s = a.read()?;
            let state = s.state();
            let cohorts = state.cohorts();
            let m = html! {
                form.search method="get" action="/applications" #search-form data-test="search-form" {
                    input type="search" name="q" value=(query) placeholder=(ctx.t("search_placeholder")) #search-q data-test="search-q" maxlength="200" autofocus;
                    button.primary type="submit" #search-submit data-test="search-submit" { (ctx.t("search")) }
                }
                p.muted { (ctx.t("search_help")) }
                nav.tabs #cohort-tabs {
                    span { (ctx.t("queue_of_cohort")) ": " }
                    @for c in &cohorts {
                        a href=(format!("/applications?cohort={c}")) .active[cohort == Some(*c)] data-test=(format!("cohort-{c}")) { (c) }
                    }
                }
                @if !query.trim().is_empty() {
                    @let found = search(state, &query);
                    h2 { (ctx.t("results")) " (" (found.len()) ")" }
                    @if found.is_empty() {
                        p.muted #no-results data-test="no-results" { (ctx.t("nothing_found")) }
                    } @else {
                        @let cards: Vec<view::Card> = found.iter().filter_map(|id| state.app(*id)).map(|a| view::card_summary(state, a)).collect();
                        (rows(&ctx, state, &cards))
                    }
                } @else if let Some(c) = cohort {
                    @let from = ((page - 1) * PAGE_ROWS + 1) as u64;
                    @let qp = view::queue_page(state, c, None, from, PAGE_ROWS as u64);
                    @let pages = (qp.total as usize).div_ceil(PAGE_ROWS).max(1);
                    h2 { (ctx.t("queue_of_cohort")) " " (c) " (" (qp.total) ")" }
                    (rows(&ctx, state, &qp.items))
                    (super::pager(&ctx, page, pages))
                } @else {
                    @let refs = active_referrals(state);
                    h2 { (ctx.t("active_referrals")) " (" (refs.len()) ")" }
                    @let cards: Vec<view::Card> = refs.iter().take(PAGE_ROWS).map(|a| view::card_summary(state, a)).collect();
                    (rows(&ctx, state, &cards))
                }
            };
            Ok(m)
        })
        .await
        .map_err(|e| PageError::from(e).in_lang(lang))?;
    Ok(layout(
        &ctx,
        "applications",
        ctx.t("nav_applications"),
        body,
    ))
}

#[derive(Debug, Deserialize)]
pub struct CardQuery {
    pub tab: Option<String>,
}

fn field(label: &str, value: Markup, test: &str) -> Markup {
    html! { div.field { dt { (label) } dd data-test=(test) { (value) } } }
}

fn text(s: &str) -> Markup {
    html! { (s) }
}

fn opt(s: &Option<String>) -> Markup {
    html! { (s.as_deref().unwrap_or("—")) }
}

fn actions(ctx: &Ctx, c: &view::Card) -> Markup {
    if !ctx.can(Role::Operator) {
        return html! { p.muted #actions-hidden data-test="actions-hidden" { (ctx.t("actions_need_operator")) } };
    }
    let base = format!("/applications/{}", c.id);
    let has_ref = c.status == "referral_issued";
    let waiting = c.status == "queued" || c.status == "stop_listed";
    let can_withdraw = c.status != "withdrawn" && c.status != "enrolled";
    let benefit = c.category != "general" && (waiting || has_ref);
    html! {
        div.actions #actions data-test="actions" {
            @if has_ref {
                (confirm_dialog(ctx, "recall", &format!("{base}/recall"), ctx.t("act_recall"), html! {
                    div.warning #recall-warning data-test="recall-warning" {
                        p.title { (ctx.t("attention")) }
                        p lang="kk" data-test="recall-warning-kk" { (RECALL_WARNING_KK) }
                        p lang="ru" data-test="recall-warning-ru" { (RECALL_WARNING_RU) }
                    }
                    @if let Some(r) = &c.referral {
                        p { (ctx.t("referral")) ": " strong { (r.kindergarten_name) } ", " (when(r.issued_at)) ". " (ctx.t("recall_until")) ": " (when(r.recall_until)) }
                    }
                }, true, html! {}))
                @if c.referral.as_ref().is_some_and(|r| !r.extended) {
                    (confirm_dialog(ctx, "extend", &format!("{base}/extend"), ctx.t("act_extend"), html! { p { (ctx.t("extend_note")) } }, false, html! {}))
                }
                (confirm_dialog(ctx, "enroll", &format!("{base}/enroll"), ctx.t("act_enroll"), html! { p { (ctx.t("enroll_note")) } }, false, html! {}))
            }
            @if benefit {
                (confirm_dialog(ctx, "cancel-benefit", &format!("{base}/cancel-benefit"), ctx.t("act_cancel_benefit"), html! { p { (ctx.t("cancel_benefit_note")) } }, true, html! {}))
            }
            @if can_withdraw {
                (confirm_dialog(ctx, "withdraw", &format!("{base}/withdraw"), ctx.t("act_withdraw"), html! { p { (ctx.t("withdraw_note")) } }, true, html! {}))
            }
        }
    }
}

fn event_word(ctx: &Ctx, name: &str) -> String {
    let key = format!("ev_{name}");
    let w = ctx.t(&key);
    if w.starts_with('⟦') {
        name.to_string()
    } else {
        w.to_string()
    }
}

fn card_body(
    ctx: &Ctx,
    state: &kezek_engine::State,
    c: &view::Card,
    tab: &str,
    expl: Option<&view::Explanation>,
) -> Markup {
    let l = ctx.lang;
    let last_change = c.history.last().map(|h| h.at);
    html! {
        div.cardhead #card data-test="card" data-id=(c.id) data-status=(c.status) {
            div.big {
                span.lbl { (ctx.t("queue_position")) }
                span.num #queue-position data-test="queue-position" { (c.queue_position.map_or("—".to_string(), |p| p.to_string())) }
            }
            div.big {
                span.lbl { (ctx.t("category_position")) }
                span.num #category-position data-test="category-position" { (c.category_position.map_or("—".to_string(), |p| p.to_string())) }
            }
            div.big {
                span.lbl { (ctx.t("status")) }
                span.status #status data-test="status" data-status=(c.status) { (status_word(l, c.status, c.status_kk, c.status_ru)) }
                span.muted { (c.status_kk) " / " (c.status_ru) }
            }
            (actions(ctx, c))
        }
        nav.tabs #card-tabs {
            a href="?tab=card" .active[tab == "card"] data-test="tab-card" { (ctx.t("tab_application")) }
            a href="?tab=changes" .active[tab == "changes"] data-test="tab-changes" { (ctx.t("tab_changes")) " (" (c.history.len()) ")" }
            a href="?tab=explain" .active[tab == "explain"] data-test="tab-explain" { (ctx.t("tab_explain")) }
        }
        @if tab == "changes" {
            table #history data-test="history" {
                thead { tr { th { (ctx.t("time")) } th { (ctx.t("event")) } th { (ctx.t("actor")) } th { (ctx.t("reason")) } } }
                tbody {
                    @for h in &c.history {
                        tr data-event=(h.event) { td { (when(h.at)) } td { (event_word(ctx, h.event)) } td { (h.actor) } td { (h.reason.as_deref().unwrap_or("")) } }
                    }
                }
            }
        } @else if tab == "explain" {
            @if let Some(e) = expl {
                section #explanation data-test="explanation" {
                    @if e.ahead.is_empty() {
                        p { (ctx.t("nobody_ahead")) }
                    } @else {
                        h3 { (ctx.t("ahead_by_category")) }
                        table #ahead data-test="ahead" {
                            tbody { @for (cat, n) in &e.ahead { tr { td { (category_name(state, l, cat)) } td.n { (n) } } } }
                        }
                    }
                    h3 { (ctx.t("position_moves")) }
                    table #moves data-test="moves" {
                        thead { tr { th { (ctx.t("time")) } th { (ctx.t("event")) } th.n { (ctx.t("from")) } th.n { (ctx.t("to")) } th { (ctx.t("why")) } th.n { "×" } } }
                        tbody {
                            @for m in &e.moves {
                                tr { td { (when(m.at)) } td { (event_word(ctx, m.event)) } td.n { (m.from.map_or("—".into(), |x| x.to_string())) } td.n { (m.to.map_or("—".into(), |x| x.to_string())) } td { (m.why) @if let Some(s) = &m.subject { " (" (s) ")" } } td.n { (m.count) } }
                            }
                        }
                    }
                }
            }
        } @else {
            div.grid3 {
                section.box #application data-test="application" {
                    h2 { (ctx.t("application")) }
                    dl {
                        (field(ctx.t("app_number"), text(&c.id), "app-number"))
                        (field(ctx.t("registered_at"), text(&when(c.registered_at)), "registered-at"))
                        (field(ctx.t("cohort"), text(&c.cohort.to_string()), "cohort"))
                        (field(ctx.t("language"), text(c.language), "language"))
                        (field(ctx.t("category"), text(&category_name(state, l, &c.category)), "category"))
                        (field(ctx.t("last_change"), text(&when_opt(last_change)), "last-change"))
                    }
                }
                section.box #child data-test="child" {
                    h2 { (ctx.t("child")) }
                    dl {
                        (field(ctx.t("full_name"), opt(&c.child_name), "child-name"))
                        (field(ctx.t("iin"), text(&c.child_iin), "child-iin"))
                        (field(ctx.t("birth_date"), text(&date_in(l, c.birth_date)), "birth-date"))
                    }
                }
                section.box #applicant data-test="applicant" {
                    h2 { (ctx.t("applicant")) }
                    dl {
                        (field(ctx.t("full_name"), opt(&c.applicant_name), "applicant-name"))
                        (field(ctx.t("iin"), text(&c.applicant_iin), "applicant-iin"))
                        (field(ctx.t("email"), opt(&c.email), "email"))
                        (field(ctx.t("phone"), opt(&c.phone), "phone"))
                    }
                }
            }
            div.grid3 {
                section.box #referral data-test="referral" {
                    h2 { (ctx.t("referral")) }
                    @if let Some(r) = &c.referral {
                        dl {
                            (field(ctx.t("kindergarten"), html! { a href=(format!("/kindergartens/{}", enc(&r.kindergarten))) { (r.kindergarten_name) } }, "referral-kindergarten"))
                            (field(ctx.t("issued_at"), text(&when(r.issued_at)), "referral-issued"))
                            (field(ctx.t("valid_until"), text(&when(r.valid_until)), "referral-valid"))
                            (field(ctx.t("recall_until"), text(&when(r.recall_until)), "referral-recall-until"))
                            (field(ctx.t("extended"), text(ctx.t(if r.extended { "yes" } else { "no" })), "referral-extended"))
                        }
                    } @else {
                        p.muted data-test="no-referral" { (ctx.t("none")) }
                    }
                }
                section.box #lock data-test="lock" {
                    h2 { (ctx.t("lock")) }
                    p data-test="locked-until" { (when_opt(c.locked_until)) }
                    p.muted { (ctx.t("lock_note")) }
                }
                section.box #stop-list data-test="stop-list" {
                    h2 { (ctx.t("stop_list")) }
                    p data-test="stop-listed-until" { (when_opt(c.stop_listed_until)) }
                    p.muted { (ctx.t("stop_list_note")) }
                }
            }
        }
    }
}

pub async fn card_page(
    ctx: Ctx,
    State(app): State<App>,
    Path(id): Path<String>,
    Query(q): Query<CardQuery>,
) -> PageResult {
    let lang = ctx.lang;
    let id: AppNo = id
        .parse()
        .map_err(|e: String| PageError::bad_request(e).in_lang(lang))?;
    let tab = match q.tab.as_deref() {
        Some("changes") => "changes",
        Some("explain") => "explain",
        _ => "card",
    };
    let title = format!("{} {}", ctx.t("application"), id);
    let body = app
        .blocking(move |a| {
            let s = a.read()?;
            let c = view::card(&s, id)?;
            let expl = if tab == "explain" {
                Some(view::explain(&s, id)?)
            } else {
                None
            };
            Ok(card_body(&ctx, s.state(), &c, tab, expl.as_ref())).map(|m| (m, ctx))
        })
        .await
        .map_err(|e| PageError::from(e).in_lang(lang))?;
    let (m, ctx) = body;
    Ok(layout(&ctx, "applications", &title, m))
}

pub async fn action_post(
    ctx: Ctx,
    State(app): State<App>,
    Path((id, action)): Path<(String, String)>,
    body: Bytes,
) -> PageResult {
    let lang = ctx.lang;
    let err = |e: PageError| e.in_lang(lang);
    let f = checked_form(&ctx, &body).map_err(err)?;
    need_role(&ctx, Role::Operator).map_err(err)?;
    let app_no: AppNo = id
        .parse()
        .map_err(|e: String| err(PageError::bad_request(e)))?;
    let command = match action.as_str() {
        "recall" => Command::Recall { app: app_no },
        "extend" => Command::Extend { app: app_no },
        "enroll" => Command::Enroll { app: app_no },
        "withdraw" => Command::Withdraw { app: app_no },
        "cancel-benefit" => Command::CancelBenefit { app: app_no },
        _ => {
            return Err(err(PageError::new(
                StatusCode::NOT_FOUND,
                ctx.t("no_such_action"),
            )))
        }
    };
    let reason = f.opt("reason");
    if reason.as_ref().is_some_and(|r| r.chars().count() > 1000) {
        return Err(err(PageError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ctx.t("reason_too_long"),
        )));
    }
    let caller = ctx.caller.clone();
    let result = app
        .blocking(move |a| {
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
            Ok(())
        })
        .await;
    let to = format!("/applications/{app_no}");
    Ok(match result {
        Ok(()) => {
            let text = format!(
                "{}: {}",
                ctx.t(&format!("done_{}", action.replace('-', "_"))),
                app_no
            );
            flash_redirect(&app, &ctx, true, text, &to)
        }
        Err(e) => flash_redirect(
            &app,
            &ctx,
            false,
            format!("{} [{}]", e.message, e.code),
            &to,
        ),
    })
}
