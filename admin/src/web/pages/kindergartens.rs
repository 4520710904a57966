//! `/kindergartens` (searchable, paged), `/kindergartens/{id}` (groups with capacity,
//! places published and still publishable, the kindergarten's publications, the publish
//! form for operators), `/publications` (every publication with its phase).

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use jiff::Timestamp;
use kezek_engine::{Command, Event, Language, Phase, Request as EngineRequest};
use maud::{html, Markup};
use serde::Deserialize;

use super::{
    checked_form, csrf_field, enc, flash_redirect, layout, need_role, pager, when, Ctx, PageError,
    PageResult, PAGE_ROWS,
};
use crate::web::accounts::Role;
use crate::web::api::actor;
use crate::web::server::App;

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    pub q: Option<String>,
    pub page: Option<String>,
}

fn page_no(s: Option<&str>) -> usize {
    s.and_then(|p| p.parse::<usize>().ok())
        .filter(|p| *p >= 1 && *p <= 1_000_000)
        .unwrap_or(1)
}

pub async fn list_page(ctx: Ctx, State(app): State<App>, Query(q): Query<ListQuery>) -> PageResult {
    let lang = ctx.lang;
    let query = q.q.clone().unwrap_or_default();
    if query.len() > 200 {
        return Err(PageError::bad_request(ctx.t("query_too_long")).in_lang(lang));
    }
    let page = page_no(q.page.as_deref());
    let c = ctx.clone();
    let body = app
        .blocking(move |a| {
            let ctx = c;
            let s = a.read()?;
            let st = s.state();
            let needle = query.trim().to_lowercase();
            let found: Vec<_> = st
                .data
                .kindergartens
                .values()
                .filter(|k| {
                    needle.is_empty()
                        || k.id.to_lowercase().contains(&needle)
                        || k.name.to_lowercase().contains(&needle)
                        || k.district.to_lowercase().contains(&needle)
                })
                .collect();
            let pages = found.len().div_ceil(PAGE_ROWS).max(1);
            let page = page.min(pages);
            Ok(html! {
                form.search method="get" action="/kindergartens" #kg-search-form data-test="kg-search-form" {
                    input type="search" name="q" value=(query) placeholder=(ctx.t("kg_search_placeholder")) #kg-q data-test="kg-q" maxlength="200";
                    button.primary type="submit" data-test="kg-search-submit" { (ctx.t("search")) }
                    a href="/publications" data-test="publications-link" { (ctx.t("publications")) }
                }
                p.muted { (found.len()) " " (ctx.t("found")) }
                div.scroll {
                table.list #kindergartens data-test="kindergartens" {
                    thead { tr {
                        th { "ID" } th { (ctx.t("name")) } th { (ctx.t("district")) } th.n { (ctx.t("groups")) }
                        th.n { (ctx.t("capacity")) } th.n { (ctx.t("publishable")) } th.n { (ctx.t("places_left")) }
                    } }
                    tbody {
                        @for k in found.iter().skip((page - 1) * PAGE_ROWS).take(PAGE_ROWS) {
                            @let cap: u32 = k.groups.iter().map(|g| g.capacity).sum();
                            @let free: u32 = k.groups.iter().map(|g| g.capacity.saturating_sub(g.published)).sum();
                            @let left: u32 = st.data.publications.values().filter(|p| p.kindergarten == k.id).map(|p| p.places_left).sum();
                            tr data-test="kg-row" data-id=(k.id) {
                                td.mono { a href=(format!("/kindergartens/{}", enc(&k.id))) data-test="kg-link" { (k.id) } }
                                td { (k.name) }
                                td { (k.district) }
                                td.n { (k.groups.len()) }
                                td.n { (cap) }
                                td.n { (free) }
                                td.n { (left) }
                            }
                        }
                    }
                }
                }
                (pager(&ctx, page, pages))
            })
        })
        .await
        .map_err(|e| PageError::from(e).in_lang(lang))?;
    Ok(layout(
        &ctx,
        "kindergartens",
        ctx.t("nav_kindergartens"),
        body,
    ))
}

fn publications_table(
    ctx: &Ctx,
    st: &kezek_engine::State,
    pubs: &[&kezek_engine::model::Publication],
    with_kg: bool,
) -> Markup {
    html! {
        div.scroll {
        table #publications data-test="publications" {
            thead { tr {
                th { "#" } @if with_kg { th { (ctx.t("kindergarten")) } }
                th { (ctx.t("cohort")) } th { (ctx.t("language")) } th.n { (ctx.t("places")) } th.n { (ctx.t("places_left")) }
                th { (ctx.t("published_at")) } th { (ctx.t("phase")) } th { (ctx.t("free_access_at")) }
            } }
            tbody {
                @for p in pubs {
                    tr data-test="publication-row" data-id=(p.id) data-phase=(p.phase.code()) {
                        td { (p.id) }
                        @if with_kg {
                            td { a href=(format!("/kindergartens/{}", enc(&p.kindergarten))) {
                                (st.data.kindergartens.get(&p.kindergarten).map_or(p.kindergarten.as_str(), |k| k.name.as_str())) } }
                        }
                        td { (p.cohort) }
                        td { (p.language.code()) }
                        td.n { (p.places) }
                        td.n { (p.places_left) }
                        td { (when(p.published_at)) }
                        td { span class=(format!("badge {}", p.phase.code())) { (ctx.t(p.phase.code())) } }
                        td { (when(p.free_access_at)) }
                    }
                }
            }
        }
        }
    }
}

pub async fn kindergarten_page(
    ctx: Ctx,
    State(app): State<App>,
    Path(id): Path<String>,
) -> PageResult {
    let lang = ctx.lang;
    let c = ctx.clone();
    let (title, body) = app
        .blocking(move |a| {
            let ctx = c;
            let s = a.read()?;
            let st = s.state();
            let k = st.data.kindergartens.get(&id).ok_or_else(|| {
                crate::web::error::ApiError::new(
                    axum::http::StatusCode::NOT_FOUND,
                    "unknown_kindergarten",
                    format!("{} '{id}'", ctx.t("no_such_kindergarten")),
                )
            })?;
            let pubs: Vec<_> = st.data.publications.values().rev().filter(|p| p.kindergarten == k.id).collect();
            let m = html! {
                p.muted { "ID " span.mono #kg-id data-test="kg-id" { (k.id) } " · " (ctx.t("district")) ": " (k.district) }
                h2 { (ctx.t("groups")) }
                table #groups data-test="groups" {
                    thead { tr {
                        th { (ctx.t("cohort")) } th { (ctx.t("language")) } th.n { (ctx.t("capacity")) }
                        th.n { (ctx.t("published")) } th.n { (ctx.t("publishable")) } th.n { (ctx.t("places_left")) } th.n { (ctx.t("waiting")) }
                    } }
                    tbody {
                        @for g in &k.groups {
                            @let left: u32 = pubs.iter().filter(|p| p.cohort == g.cohort && p.language == g.language).map(|p| p.places_left).sum();
                            tr data-test="group-row" data-cohort=(g.cohort) data-language=(g.language.code()) {
                                td { (g.cohort) } td { (g.language.code()) } td.n { (g.capacity) } td.n { (g.published) }
                                td.n { (g.capacity.saturating_sub(g.published)) } td.n { (left) }
                                td.n { (st.queue(g.cohort).map_or(0, |q| q.len())) }
                            }
                        }
                    }
                }
                @if ctx.can(Role::Operator) {
                    h2 { (ctx.t("publish_places")) }
                    form.row method="post" action=(format!("/kindergartens/{}/publish", enc(&k.id))) #publish-form data-test="publish-form" {
                        (csrf_field(&ctx))
                        label { (ctx.t("group"))
                            select name="group" #publish-group data-test="publish-group" required {
                                @for g in &k.groups {
                                    option value=(format!("{}:{}", g.cohort, g.language.code())) { (g.cohort) " · " (g.language.code()) " (" (g.capacity.saturating_sub(g.published)) ")" }
                                }
                            }
                        }
                        label { (ctx.t("places"))
                            input type="number" name="places" min="1" max="1000" value="1" required #publish-places data-test="publish-places"; }
                        label { (ctx.t("reason"))
                            input type="text" name="reason" maxlength="1000" #publish-reason data-test="publish-reason"; }
                        button.primary type="submit" #publish-submit data-test="publish-submit" { (ctx.t("publish")) }
                    }
                    p.muted { (ctx.t("publish_note")) }
                } @else {
                    p.muted #publish-hidden data-test="publish-hidden" { (ctx.t("publish_needs_operator")) }
                }
                h2 { (ctx.t("publications")) " (" (pubs.len()) ")" }
                (publications_table(&ctx, st, &pubs, false))
            };
            Ok((k.name.clone(), m))
        })
        .await
        .map_err(|e| PageError::from(e).in_lang(lang))?;
    Ok(layout(&ctx, "kindergartens", &title, body))
}

pub async fn publish_post(
    ctx: Ctx,
    State(app): State<App>,
    Path(id): Path<String>,
    body: Bytes,
) -> PageResult {
    let lang = ctx.lang;
    let err = |e: PageError| e.in_lang(lang);
    let f = checked_form(&ctx, &body).map_err(err)?;
    need_role(&ctx, Role::Operator).map_err(err)?;
    let group = f.required("group", &ctx).map_err(err)?;
    let bad = |what: &str| {
        err(PageError::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            format!("{what}: {}", ctx.t("bad_value")),
        ))
    };
    let (cohort, language) = group.split_once(':').ok_or_else(|| bad("group"))?;
    let cohort: i32 = cohort.parse().map_err(|_| bad("group"))?;
    let language: Language = language.parse().map_err(|_| bad("group"))?;
    let places: u32 = f
        .required("places", &ctx)
        .map_err(err)?
        .parse()
        .map_err(|_| bad("places"))?;
    let reason = f.opt("reason");
    let to = format!("/kindergartens/{}", enc(&id));
    let caller = ctx.caller.clone();
    let result = app
        .blocking(move |a| {
            let mut s = a.write()?;
            let now = s.now(Timestamp::now());
            let recs = s.execute(
                &EngineRequest {
                    command: Command::Publish {
                        kindergarten: id,
                        cohort,
                        language,
                        places,
                    },
                    actor: actor(&caller),
                    reason,
                },
                now,
            )?;
            Ok(recs.iter().find_map(|r| match &r.event {
                Event::PlacesPublished { publication, .. } => Some(*publication),
                _ => None,
            }))
        })
        .await;
    Ok(match result {
        Ok(p) => flash_redirect(
            &app,
            &ctx,
            true,
            format!("{} #{}", ctx.t("done_publish"), p.unwrap_or(0)),
            &to,
        ),
        Err(e) => flash_redirect(
            &app,
            &ctx,
            false,
            format!("{} [{}]", e.message, e.code),
            &to,
        ),
    })
}

#[derive(Debug, Deserialize)]
pub struct PubQuery {
    pub phase: Option<String>,
    pub page: Option<String>,
}

pub async fn publications_page(
    ctx: Ctx,
    State(app): State<App>,
    Query(q): Query<PubQuery>,
) -> PageResult {
    let lang = ctx.lang;
    let phase = match q.phase.as_deref() {
        Some("priority") => Some(Phase::Priority),
        Some("free_access") => Some(Phase::FreeAccess),
        _ => None,
    };
    let page = page_no(q.page.as_deref());
    let c = ctx.clone();
    let body = app
        .blocking(move |a| {
            let ctx = c;
            let s = a.read()?;
            let st = s.state();
            let pubs: Vec<_> = st
                .data
                .publications
                .values()
                .rev()
                .filter(|p| phase.is_none_or(|ph| p.phase == ph))
                .collect();
            let pages = pubs.len().div_ceil(PAGE_ROWS).max(1);
            let page = page.min(pages);
            let shown: Vec<_> = pubs.iter().skip((page - 1) * PAGE_ROWS).take(PAGE_ROWS).copied().collect();
            Ok(html! {
                nav.tabs {
                    a href="/publications" .active[phase.is_none()] { (ctx.t("all")) }
                    a href="/publications?phase=priority" .active[phase == Some(Phase::Priority)] data-test="phase-priority" { (ctx.t("priority")) }
                    a href="/publications?phase=free_access" .active[phase == Some(Phase::FreeAccess)] data-test="phase-free" { (ctx.t("free_access")) }
                }
                p.muted { (pubs.len()) " " (ctx.t("found")) }
                (publications_table(&ctx, st, &shown, true))
                (pager(&ctx, page, pages))
            })
        })
        .await
        .map_err(|e| PageError::from(e).in_lang(lang))?;
    Ok(layout(&ctx, "kindergartens", ctx.t("publications"), body))
}
