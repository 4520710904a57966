//! `/`: the queue at a glance: queue size per cohort and category, open publications with
//! their phase and when it ends, today's referrals, recalls and expiries, and a chart of
//! the queue size and placements over time (inline SVG, computed from the event log).

use axum::extract::{Query, State};
use jiff::Timestamp;
use kezek_engine::calendar::local_date;
use maud::{html, Markup};
use serde::Deserialize;

use super::stats::Point;
use super::{category_name, date_in, layout, when, Ctx, PageError, PageResult};
use crate::web::i18n::Lang;
use crate::web::server::App;

#[derive(Debug, Deserialize)]
pub struct OverviewQuery {
    pub days: Option<String>,
}

pub async fn overview_page(
    ctx: Ctx,
    State(app): State<App>,
    Query(q): Query<OverviewQuery>,
) -> PageResult {
    let lang = ctx.lang;
    let days: i64 = match q.days.as_deref() {
        None | Some("") => 90,
        Some(s) => s
            .parse::<i64>()
            .ok()
            .filter(|d| (7..=730).contains(d))
            .ok_or_else(|| {
                PageError::bad_request(format!("days: {} (7–730)", ctx.t("bad_number")))
                    .in_lang(lang)
            })?,
    };
    let c = ctx.clone();
    let body = app
        .blocking(move |a| {
            let ctx = c;
            let s = a.read()?;
            let now = s.now(Timestamp::now());
            let today = local_date(now);
            let (counts, series) = {
                let mut st = a
                    .inner
                    .stats
                    .lock()
                    .map_err(|_| crate::web::error::ApiError::internal("stats lock"))?;
                st.refresh(&s)?;
                (st.day(today), st.series(today, days))
            };
            let state = s.state();
            let cats: Vec<String> = state
                .rules()
                .map(|r| r.params().categories.iter().map(|c| c.code.clone()).collect())
                .unwrap_or_default();
            let cohorts = state.cohorts();
            let mut open: Vec<_> = state
                .data
                .publications
                .values()
                .filter(|p| p.places_left > 0)
                .collect();
            open.sort_by_key(|p| (p.free_access_at, p.id));
            let total: u64 = cohorts
                .iter()
                .map(|c| state.queue(*c).map_or(0, |q| q.len() as u64))
                .sum();
            let m = html! {
                section.cards #today data-test="today" {
                    div.card { div.num #today-referrals data-test="today-referrals" { (counts.referrals) } div.lbl { (ctx.t("today_referrals")) } }
                    div.card { div.num #today-recalls data-test="today-recalls" { (counts.recalls) } div.lbl { (ctx.t("today_recalls")) } }
                    div.card { div.num #today-expiries data-test="today-expiries" { (counts.expiries) } div.lbl { (ctx.t("today_expiries")) } }
                    div.card { div.num #queue-total data-test="queue-total" { (total) } div.lbl { (ctx.t("waiting_total")) } }
                    div.card { div.num { (open.len()) } div.lbl { (ctx.t("open_publications")) } }
                }
                p.muted { (ctx.t("now_is")) " " (when(now)) " (" (ctx.t("almaty_time")) ")" }
                section {
                    h2 { (ctx.t("chart_title")) }
                    nav.tabs {
                        @for d in [30i64, 90, 365] {
                            a href=(format!("/?days={d}")) .active[d == days] { (d) " " (ctx.t("days")) }
                        }
                    }
                    (chart(lang, &series, &ctx))
                }
                section {
                    h2 { (ctx.t("queue_by_cohort")) }
                    div.scroll {
                    table #queue-by-cohort data-test="queue-by-cohort" {
                        thead { tr {
                            th { (ctx.t("cohort")) }
                            th.n { (ctx.t("total")) }
                            @for c in &cats { th.n { (category_name(state, lang, c)) } }
                        } }
                        tbody {
                            @for c in &cohorts {
                                @let q = state.queue(*c);
                                tr data-cohort=(c) {
                                    td { a href=(format!("/applications?cohort={c}")) { (c) } }
                                    td.n { strong { (q.map_or(0, |q| q.len())) } }
                                    @for cat in &cats { td.n { (q.map_or(0, |q| q.category_len(cat))) } }
                                }
                            }
                        }
                    }
                    }
                }
                section {
                    h2 { (ctx.t("open_publications")) " (" (open.len()) ")" }
                    @if open.is_empty() {
                        p.muted { (ctx.t("none")) }
                    } @else {
                        div.scroll {
                        table #open-publications data-test="open-publications" {
                            thead { tr {
                                th { "#" } th { (ctx.t("kindergarten")) } th { (ctx.t("cohort")) } th { (ctx.t("language")) }
                                th.n { (ctx.t("places")) } th.n { (ctx.t("places_left")) } th { (ctx.t("phase")) } th { (ctx.t("phase_ends")) }
                            } }
                            tbody {
                                @for p in open.iter().take(200) {
                                    tr {
                                        td { (p.id) }
                                        td { a href=(format!("/kindergartens/{}", super::enc(&p.kindergarten))) {
                                            (state.data.kindergartens.get(&p.kindergarten).map_or(p.kindergarten.as_str(), |k| k.name.as_str())) } }
                                        td { (p.cohort) }
                                        td { (p.language.code()) }
                                        td.n { (p.places) }
                                        td.n { (p.places_left) }
                                        td { span class=(format!("badge {}", p.phase.code())) { (ctx.t(p.phase.code())) } }
                                        td { @if p.phase == kezek_engine::Phase::Priority { (when(p.free_access_at)) } @else { "—" } }
                                    }
                                }
                            }
                        }
                        }
                    }
                }
            };
            Ok(m)
        })
        .await
        .map_err(|e| PageError::from(e).in_lang(lang))?;
    Ok(layout(&ctx, "overview", ctx.t("nav_overview"), body))
}

/// The chart: the queue size as a line (left scale), referrals issued per day as bars
/// (right scale). Plain SVG: no script, no external file.
fn chart(lang: Lang, pts: &[Point], ctx: &Ctx) -> Markup {
    const W: f64 = 760.0;
    const H: f64 = 240.0;
    const L: f64 = 64.0;
    const R: f64 = 48.0;
    const T: f64 = 14.0;
    const B: f64 = 30.0;
    if pts.is_empty() {
        return html! { p.muted { (ctx.t("none")) } };
    }
    let qmax = pts.iter().map(|p| p.queue).max().unwrap_or(0).max(1) as f64;
    let qmin = pts
        .iter()
        .map(|p| p.queue)
        .min()
        .unwrap_or(0)
        .min(qmax as i64) as f64;
    let qlo = (qmin - (qmax - qmin) * 0.1).max(0.0);
    let pmax = pts.iter().map(|p| p.placements).max().unwrap_or(0).max(1) as f64;
    let n = pts.len() as f64;
    let x = |i: usize| L + (W - L - R) * (i as f64 + 0.5) / n;
    let yq = |v: i64| T + (H - T - B) * (1.0 - (v as f64 - qlo) / (qmax - qlo).max(1.0));
    let yp = |v: u64| T + (H - T - B) * (1.0 - v as f64 / pmax);
    let bar_w = ((W - L - R) / n * 0.7).max(1.0);
    let line: String = pts
        .iter()
        .enumerate()
        .map(|(i, p)| format!("{:.1},{:.1}", x(i), yq(p.queue)))
        .collect::<Vec<_>>()
        .join(" ");
    let first = pts[0];
    let last = pts[pts.len() - 1];
    html! {
        figure.chart #chart data-test="chart" {
            svg xmlns="http://www.w3.org/2000/svg" viewBox=(format!("0 0 {W} {H}")) role="img" aria-label=(ctx.t("chart_title")) {
                line x1=(L) y1=(H - B) x2=(W - R) y2=(H - B) stroke="#99a" {}
                line x1=(L) y1=(T) x2=(L) y2=(H - B) stroke="#99a" {}
                text x=(L - 6.0) y=(T + 4.0) text-anchor="end" font-size="11" fill="#246" { (qmax as i64) }
                text x=(L - 6.0) y=(H - B) text-anchor="end" font-size="11" fill="#246" { (qlo as i64) }
                text x=(W - R + 6.0) y=(T + 4.0) font-size="11" fill="#a60" { (pmax as u64) }
                text x=(W - R + 6.0) y=(H - B) font-size="11" fill="#a60" { "0" }
                text x=(L) y=(H - 10.0) font-size="11" fill="#445" { (date_in(lang, first.date)) }
                text x=(W - R) y=(H - 10.0) font-size="11" text-anchor="end" fill="#445" { (date_in(lang, last.date)) }
                @for (i, p) in pts.iter().enumerate() {
                    @if p.placements > 0 {
                        rect x=(format!("{:.1}", x(i) - bar_w / 2.0)) y=(format!("{:.1}", yp(p.placements))) width=(format!("{bar_w:.1}")) height=(format!("{:.1}", H - B - yp(p.placements))) fill="#e8a33d" {
                            title { (date_in(lang, p.date)) ": " (p.placements) }
                        }
                    }
                }
                polyline points=(line) fill="none" stroke="#1f5fa8" stroke-width="2" {}
            }
            figcaption {
                span.key.q { "■" } " " (ctx.t("chart_queue")) " (" (last.queue) ")  "
                span.key.p { "■" } " " (ctx.t("chart_placements"))
            }
        }
    }
}
