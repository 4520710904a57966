//! `/public` (no login): per cohort and language of instruction, how many children wait,
//! how many places were published and how many are still free. Counts only: no names,
//! numbers or IINs. Cached until the next event.

use axum::extract::State;
use axum::http::request::Parts;
use axum::response::Response;
use jiff::Timestamp;
use maud::{html, DOCTYPE};

use super::{html_response, lang_switch, request_lang, when, PageError};
use crate::web::error::ApiError;
use crate::web::i18n::t;
use crate::web::server::App;

pub async fn public_page(State(app): State<App>, parts: Parts) -> Result<Response, PageError> {
    let lang = request_lang(&parts);
    let (rows, now) = app
        .blocking(|a| {
            let s = a.read()?;
            let now = s.now(Timestamp::now());
            let mut st = a
                .inner
                .stats
                .lock()
                .map_err(|_| ApiError::internal("stats lock"))?;
            Ok((st.public_rows(&s), now))
        })
        .await
        .map_err(|e| PageError::from(e).in_lang(lang))?;
    let total_wait: u64 = rows.iter().map(|r| r.waiting).sum();
    let total_free: u64 = rows.iter().map(|r| r.places_free).sum();
    let m = html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (t(lang, "public_title")) " · Kezek" }
                link rel="stylesheet" href="/assets/style.css";
            }
            body data-page="public" {
                header.top {
                    a.brand href="/public" { "Kezek" span.sub { (t(lang, "brand_sub")) } }
                    div.user { (lang_switch(lang, &parts.uri)) a href="/login" data-test="login-link" { (t(lang, "login_button")) } }
                }
                main #main {
                    h1 #page-title { (t(lang, "public_title")) }
                    p.muted { (t(lang, "public_intro")) " " (when(now)) " (" (t(lang, "almaty_time")) ")." }
                    section.cards {
                        div.card { div.num #public-waiting data-test="public-waiting" { (total_wait) } div.lbl { (t(lang, "waiting")) } }
                        div.card { div.num #public-free data-test="public-free" { (total_free) } div.lbl { (t(lang, "places_free")) } }
                    }
                    table #public-table data-test="public-table" {
                        thead { tr {
                            th { (t(lang, "cohort")) } th { (t(lang, "language")) } th.n { (t(lang, "waiting")) }
                            th.n { (t(lang, "places_published")) } th.n { (t(lang, "places_free")) }
                        } }
                        tbody {
                            @for r in &rows {
                                tr data-test="public-row" data-cohort=(r.cohort) data-language=(r.language.code()) {
                                    td { (r.cohort) }
                                    td { (t(lang, if r.language.code() == "kk" { "lang_kk" } else { "lang_ru" })) }
                                    td.n { (r.waiting) } td.n { (r.places_published) } td.n { (r.places_free) }
                                }
                            }
                        }
                    }
                    p.muted { (t(lang, "public_note")) }
                }
                footer { (t(lang, "footer")) }
            }
        }
    };
    Ok(html_response(m))
}
