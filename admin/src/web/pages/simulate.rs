//! `/simulate`: the what-if simulation (`kezek-sim`) from the console. A form chooses the
//! baseline (the active rule version or an earlier one), a candidate (an earlier version, or
//! rule files edited in the page), a scenario (TOML, prefilled with the repository's
//! example) and the number of seeds. A run is a background job (one at a time, bounded by
//! `Limits::sim_time`, cancellable) whose page polls until the baseline and the candidate
//! show side by side as tables and charts, with the CSV files to download.
//!
//! A `store` start simulates on a copy of the live state taken under the read lock: the
//! store is never written. Any signed-in role may run it; every run is recorded in the web
//! audit log (action `simulate`).

use std::collections::{BTreeMap, VecDeque};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect};
use jiff::Timestamp;
use kezek_engine::RuleSet;
use kezek_sim::out::Files;
use kezek_sim::report::{Figure, RuleSetReport};
use kezek_sim::scenario::StartKind;
use kezek_sim::{Control, Report, RuleInput, Scenario, SimError, StartState};
use maud::{html, Markup, PreEscaped};
use serde_json::{json, Value};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::rules::draft_files;
use super::{checked_form, csrf_field, layout, when, Ctx, PageError, PageResult};
use crate::web::accounts::Role;
use crate::web::api::actor;
use crate::web::audit::AuditEntry;
use crate::web::error::ApiError;
use crate::web::server::App;

/// The repository's example scenario, started from the live state.
const EXAMPLE_SCENARIO: &str = include_str!("../../../../scenarios/example.toml");

/// Jobs kept in memory (the oldest finished one goes first).
pub const MAX_JOBS: usize = 16;
/// Largest shifts listed on the page, each way.
const SHOWN_SHIFTS: usize = 5;

/// The example with `from = "store"` (its demo fields commented out: they go with `demo`).
fn example_scenario() -> String {
    let mut out = String::with_capacity(EXAMPLE_SCENARIO.len() + 16);
    for line in EXAMPLE_SCENARIO.lines() {
        if line.starts_with("from = \"demo\"") {
            out.push_str(&line.replacen("from = \"demo\"", "from = \"store\"", 1));
        } else if line.starts_with("demo_seed") || line.starts_with("demo_scale") {
            out.push_str("# ");
            out.push_str(line);
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

// ---------------------------------------------------------------------------------------
// Jobs.

/// The simulations of the page: a gate (one at a time) and the recent jobs.
pub struct SimJobs {
    gate: Arc<Semaphore>,
    jobs: Mutex<VecDeque<Arc<Job>>>,
}

impl Default for SimJobs {
    fn default() -> Self {
        SimJobs {
            gate: Arc::new(Semaphore::new(1)),
            jobs: Mutex::new(VecDeque::new()),
        }
    }
}

impl SimJobs {
    fn get(&self, id: &str) -> Option<Arc<Job>> {
        let jobs = self.jobs.lock().ok()?;
        jobs.iter().find(|j| j.id == id).cloned()
    }

    fn insert(&self, job: Arc<Job>) {
        if let Ok(mut jobs) = self.jobs.lock() {
            while jobs.len() >= MAX_JOBS {
                match jobs.iter().position(|j| !j.running()) {
                    Some(i) => {
                        jobs.remove(i);
                    }
                    None => break,
                }
            }
            jobs.push_back(job);
        }
    }
}

struct Finished {
    report: Report,
    /// Several seeds: each figure's spread.
    spread: Option<(u32, BTreeMap<String, Figure>)>,
    files: Files,
    elapsed_ms: u128,
}

enum JobState {
    Running,
    Done(Box<Finished>),
    Failed { code: &'static str, message: String },
}

pub struct Job {
    id: String,
    actor: String,
    started_at: Timestamp,
    started: Instant,
    runs: u32,
    baseline: String,
    candidate: Option<String>,
    cancel: AtomicBool,
    progress: AtomicU64,
    total: AtomicU64,
    state: Mutex<JobState>,
}

impl Job {
    fn running(&self) -> bool {
        self.state
            .lock()
            .map(|s| matches!(*s, JobState::Running))
            .unwrap_or(false)
    }
}

fn new_id() -> String {
    use rand::RngCore;
    let mut b = [0u8; 12];
    rand::rng().fill_bytes(&mut b);
    hex::encode(b)
}

struct Spec {
    scenario: Scenario,
    scenario_text: String,
    baseline: RuleInput,
    candidate: Option<RuleInput>,
    runs: u32,
}

/// The job's thread: copies the live state if asked, simulates, records the outcome and
/// the audit entry. The permit is held until the end (one simulation at a time).
fn run_job(app: App, job: Arc<Job>, spec: Spec, permit: OwnedSemaphorePermit) {
    let deadline = Instant::now() + app.limits().sim_time;
    let work = || -> Result<Finished, SimError> {
        let store = match spec.scenario.start {
            StartKind::Store => {
                let s = app.read().map_err(|e| SimError::Scenario {
                    field: "start".into(),
                    message: e.message,
                })?;
                // A copy under the read lock: the simulation never touches the store.
                Some(s.state().data.clone())
            }
            StartKind::Demo { .. } => None,
        };
        let start = StartState::prepare(&spec.scenario, store)?;
        let sets = 1 + u64::from(spec.candidate.is_some());
        job.total.store(
            kezek_sim::days_per_rule_set(&spec.scenario, &start) * sets * u64::from(spec.runs),
            Ordering::Relaxed,
        );
        let control = Control {
            cancel: Some(&job.cancel),
            deadline: Some(deadline),
            progress: Some(&job.progress),
        };
        let t0 = Instant::now();
        if spec.runs == 1 {
            let r = kezek_sim::simulate(
                &spec.scenario,
                &start,
                Some(&spec.baseline),
                spec.candidate.as_ref(),
                spec.scenario.seed,
                &control,
            )?;
            Ok(Finished {
                files: kezek_sim::out::files_of_report(&r),
                report: r,
                spread: None,
                elapsed_ms: t0.elapsed().as_millis(),
            })
        } else {
            let m = kezek_sim::simulate_runs(
                &spec.scenario,
                &start,
                Some(&spec.baseline),
                spec.candidate.as_ref(),
                spec.runs,
                &control,
            )?;
            let files = kezek_sim::out::files_of_runs(&m);
            Ok(Finished {
                files,
                spread: Some((m.runs, m.figures)),
                report: m.first,
                elapsed_ms: t0.elapsed().as_millis(),
            })
        }
    };
    let outcome = match std::panic::catch_unwind(AssertUnwindSafe(work)) {
        Ok(Ok(f)) => JobState::Done(Box::new(f)),
        Ok(Err(SimError::Cancelled)) => JobState::Failed {
            code: "cancelled",
            message: SimError::Cancelled.to_string(),
        },
        Ok(Err(SimError::TimedOut)) => JobState::Failed {
            code: "timed_out",
            message: format!(
                "{} ({} s)",
                SimError::TimedOut,
                app.limits().sim_time.as_secs()
            ),
        },
        Ok(Err(e @ SimError::Scenario { .. })) => JobState::Failed {
            code: "invalid_scenario",
            message: e.to_string(),
        },
        Ok(Err(e @ SimError::Rules { .. })) => JobState::Failed {
            code: "rules_invalid",
            message: e.to_string(),
        },
        Ok(Err(e)) => JobState::Failed {
            code: "error",
            message: e.to_string(),
        },
        Err(_) => JobState::Failed {
            code: "internal",
            message: "the simulation failed unexpectedly".into(),
        },
    };
    let mut detail = {
        use sha2::{Digest, Sha256};
        json!({
            "job": job.id,
            "scenario_sha256": hex::encode(Sha256::digest(spec.scenario_text.as_bytes())),
            "scenario_bytes": spec.scenario_text.len(),
        })
    };
    if let Value::Object(d) = &mut detail {
        d.insert("via".into(), json!("page"));
        d.insert("baseline".into(), json!(job.baseline));
        d.insert("candidate".into(), json!(job.candidate));
        d.insert("runs".into(), json!(spec.runs));
        d.insert("seed".into(), json!(spec.scenario.seed));
        d.insert("horizon_months".into(), json!(spec.scenario.horizon_months));
        d.insert(
            "elapsed_ms".into(),
            json!(job.started.elapsed().as_millis() as u64),
        );
        if let JobState::Failed { message, .. } = &outcome {
            d.insert("error".into(), json!(message));
        }
    }
    let entry = AuditEntry {
        at: Timestamp::now(),
        actor: job.actor.clone(),
        action: "simulate".into(),
        outcome: match &outcome {
            JobState::Failed { code, .. } => (*code).to_string(),
            _ => "ok".into(),
        },
        detail,
    };
    if let Err(e) = app.audit().append(&entry) {
        eprintln!("audit: {e}");
    }
    if let Ok(mut s) = job.state.lock() {
        *s = outcome;
    }
    drop(permit);
}

// ---------------------------------------------------------------------------------------
// The form.

/// What the form shows (the defaults, or what was posted).
struct FormValues {
    baseline: u32,
    candidate: String,
    files: BTreeMap<String, String>,
    scenario: String,
    runs: u32,
}

struct VersionRow {
    version: u32,
    hash: String,
    activated_at: Timestamp,
}

fn form(
    ctx: &Ctx,
    app: &App,
    versions: &[VersionRow],
    active: u32,
    v: &FormValues,
    error: Option<&str>,
) -> Markup {
    let max_runs = app.limits().sim_max_runs.max(1);
    let label = |r: &VersionRow| {
        format!(
            "{} {} · {} · {}",
            ctx.t("version"),
            r.version,
            r.hash.get(..12).unwrap_or(&r.hash),
            when(r.activated_at)
        )
    };
    html! {
        @if let Some(e) = error {
            p.flash.err #sim-error data-test="sim-error" role="alert" { (e) }
        }
        form method="post" action="/simulate" #sim-form data-test="sim-form" {
            (csrf_field(ctx))
            div.grid2 {
                label { (ctx.t("sim_baseline"))
                    select name="baseline" #sim-baseline data-test="sim-baseline" {
                        @for r in versions.iter().rev() {
                            option value=(r.version) selected[r.version == v.baseline] {
                                (label(r)) @if r.version == active { " (" (ctx.t("active")) ")" }
                            }
                        }
                    }
                }
                label { (ctx.t("sim_candidate"))
                    select name="candidate" #sim-candidate data-test="sim-candidate" {
                        option value="draft" selected[v.candidate == "draft"] { (ctx.t("sim_candidate_draft")) }
                        option value="none" selected[v.candidate == "none"] { (ctx.t("sim_candidate_none")) }
                        @for r in versions.iter().rev() {
                            option value=(r.version) selected[v.candidate == r.version.to_string()] { (label(r)) }
                        }
                    }
                }
            }
            details #sim-files data-test="sim-files" {
                summary { (ctx.t("sim_files")) }
                p.muted { (ctx.t("sim_files_note")) }
                @for (name, src) in &v.files {
                    label.mono { (name)
                        textarea.code name=(format!("file:{name}")) rows="12" spellcheck="false" wrap="off" data-test="sim-file" data-file=(name) { (src) }
                    }
                }
            }
            label { (ctx.t("sim_scenario"))
                textarea.code name="scenario" rows="24" spellcheck="false" wrap="off" #sim-scenario data-test="sim-scenario" maxlength=(kezek_sim::scenario::MAX_SCENARIO_BYTES) { (v.scenario) }
            }
            div.buttons {
                label { (ctx.t("sim_runs")) " "
                    input type="number" name="runs" min="1" max=(max_runs) value=(v.runs) #sim-runs data-test="sim-runs";
                }
                button.primary type="submit" #sim-run data-test="sim-run" { (ctx.t("run")) }
                span.muted { (ctx.t("sim_note")) " " (app.limits().sim_time.as_secs()) " s." }
            }
        }
    }
}

type VersionFiles = BTreeMap<u32, BTreeMap<String, String>>;

/// The rule history: its rows, the active version, and each version's files.
fn version_rows(app: &App) -> Result<(Vec<VersionRow>, u32, VersionFiles), ApiError> {
    let s = app.read()?;
    let versions = &s.state().data.rules_versions;
    let rows = versions
        .iter()
        .map(|v| VersionRow {
            version: v.version,
            hash: v.hash.clone(),
            activated_at: v.activated_at,
        })
        .collect();
    let active = versions.last().map_or(0, |v| v.version);
    let files = versions
        .iter()
        .map(|v| (v.version, v.files.clone()))
        .collect();
    Ok((rows, active, files))
}

async fn form_page(
    ctx: &Ctx,
    app: &App,
    values: Option<FormValues>,
    error: Option<&str>,
    status: StatusCode,
) -> PageResult {
    let lang = ctx.lang;
    let (rows, active, mut all) = app
        .blocking(version_rows)
        .await
        .map_err(|e| PageError::from(e).in_lang(lang))?;
    let values = values.unwrap_or_else(|| FormValues {
        baseline: active,
        candidate: "draft".into(),
        files: all.remove(&active).unwrap_or_default(),
        scenario: example_scenario(),
        runs: 1,
    });
    let body = form(ctx, app, &rows, active, &values, error);
    let mut res = layout(ctx, "simulate", ctx.t("nav_simulate"), body);
    *res.status_mut() = status;
    Ok(res)
}

pub async fn simulate_page(ctx: Ctx, State(app): State<App>) -> PageResult {
    form_page(&ctx, &app, None, None, StatusCode::OK).await
}

/// A rule set's compile error with its file and line.
fn rules_error(ctx: &Ctx, which: &str, files: &BTreeMap<String, String>) -> Option<String> {
    RuleSet::compile(files).err().map(|e| {
        let at = match e.line {
            Some(l) => format!("{}:{l}", e.file),
            None => e.file.clone(),
        };
        format!("{} — {at}: {e}", ctx.t(which))
    })
}

pub async fn simulate_post(ctx: Ctx, State(app): State<App>, body: Bytes) -> PageResult {
    let lang = ctx.lang;
    let err = |e: PageError| e.in_lang(lang);
    let f = checked_form(&ctx, &body).map_err(err)?;
    let scenario_text = f.get("scenario").unwrap_or("").replace("\r\n", "\n");
    let candidate_kind = f.get("candidate").unwrap_or("none").trim().to_string();
    let files = if candidate_kind == "draft" {
        draft_files(&ctx, &f).map_err(err)?
    } else {
        BTreeMap::new()
    };
    let (rows, active, all) = app
        .blocking(version_rows)
        .await
        .map_err(|e| err(e.into()))?;
    let active_files = all.get(&active).cloned().unwrap_or_default();
    let baseline_n: u32 = f
        .get("baseline")
        .and_then(|b| b.trim().parse().ok())
        .unwrap_or(active);
    let runs_raw = f.get("runs").unwrap_or("1").trim().to_string();
    let values = FormValues {
        baseline: baseline_n,
        candidate: candidate_kind.clone(),
        files: if files.is_empty() {
            active_files
        } else {
            files.clone()
        },
        scenario: scenario_text.clone(),
        runs: runs_raw.parse().unwrap_or(1),
    };
    let refuse = |values: FormValues, msg: String, status: StatusCode| {
        let body = form(&ctx, &app, &rows, active, &values, Some(&msg));
        let mut res = layout(&ctx, "simulate", ctx.t("nav_simulate"), body);
        *res.status_mut() = status;
        Ok(res)
    };
    let max_runs = app.limits().sim_max_runs.max(1);
    let runs = match runs_raw.parse::<u32>() {
        Ok(n) if (1..=max_runs).contains(&n) => n,
        _ => {
            return refuse(
                values,
                format!("runs: {} 1–{max_runs}", ctx.t("sim_bad_runs")),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
        }
    };
    let scenario = match Scenario::from_toml(&scenario_text) {
        Ok(s) => s,
        Err(e) => {
            return refuse(
                values,
                format!("{}: {e}", ctx.t("sim_scenario")),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
        }
    };
    let version_files = |n: u32| all.get(&n).cloned();
    let Some(baseline_files) = version_files(baseline_n) else {
        return refuse(
            values,
            format!("baseline: {} {baseline_n}", ctx.t("no_such_version")),
            StatusCode::UNPROCESSABLE_ENTITY,
        );
    };
    let baseline = RuleInput {
        label: format!("version {baseline_n}"),
        files: baseline_files,
    };
    let candidate = match candidate_kind.as_str() {
        "none" => None,
        "draft" => Some(RuleInput {
            label: "draft".into(),
            files,
        }),
        other => {
            let n = other.parse::<u32>().ok();
            match n.and_then(version_files) {
                Some(files) => Some(RuleInput {
                    label: format!("version {other}"),
                    files,
                }),
                None => {
                    return refuse(
                        values,
                        format!("candidate: {} {other}", ctx.t("no_such_version")),
                        StatusCode::UNPROCESSABLE_ENTITY,
                    )
                }
            }
        }
    };
    // Both rule sets must compile before anything runs (the error names file and line).
    let checked = {
        let (b, c) = (
            baseline.files.clone(),
            candidate.as_ref().map(|c| c.files.clone()),
        );
        let c2 = ctx.clone();
        app.blocking(move |_| {
            Ok(rules_error(&c2, "sim_baseline", &b)
                .or_else(|| c.and_then(|c| rules_error(&c2, "sim_candidate", &c))))
        })
        .await
        .map_err(|e| err(e.into()))?
    };
    if let Some(m) = checked {
        return refuse(values, m, StatusCode::UNPROCESSABLE_ENTITY);
    }
    let Ok(permit) = app.inner.sims.gate.clone().try_acquire_owned() else {
        return refuse(
            values,
            ctx.t("sim_busy").to_string(),
            StatusCode::SERVICE_UNAVAILABLE,
        );
    };
    let job = Arc::new(Job {
        id: new_id(),
        actor: actor(&ctx.caller).to_string(),
        started_at: Timestamp::now(),
        started: Instant::now(),
        runs,
        baseline: baseline.label.clone(),
        candidate: candidate.as_ref().map(|c| c.label.clone()),
        cancel: AtomicBool::new(false),
        progress: AtomicU64::new(0),
        total: AtomicU64::new(0),
        state: Mutex::new(JobState::Running),
    });
    app.inner.sims.insert(job.clone());
    let spec = Spec {
        scenario,
        scenario_text,
        baseline,
        candidate,
        runs,
    };
    let (a, j) = (app.clone(), job.clone());
    let spawned = std::thread::Builder::new()
        .name("kezek-sim".into())
        .spawn(move || run_job(a, j, spec, permit));
    if let Err(e) = spawned {
        if let Ok(mut s) = job.state.lock() {
            *s = JobState::Failed {
                code: "internal",
                message: format!("cannot start the simulation: {e}"),
            };
        }
    }
    Ok(Redirect::to(&format!("/simulate/jobs/{}", job.id)).into_response())
}

// ---------------------------------------------------------------------------------------
// The job page.

fn may_cancel(ctx: &Ctx, job: &Job) -> bool {
    actor(&ctx.caller).to_string() == job.actor || ctx.can(Role::RulesAdmin)
}

fn find_job(ctx: &Ctx, app: &App, id: &str) -> Result<Arc<Job>, PageError> {
    app.inner
        .sims
        .get(id)
        .ok_or_else(|| PageError::not_found(ctx.t("sim_no_job")).in_lang(ctx.lang))
}

pub async fn job_page(ctx: Ctx, State(app): State<App>, Path(id): Path<String>) -> PageResult {
    let job = find_job(&ctx, &app, &id)?;
    let state = job
        .state
        .lock()
        .map_err(|_| PageError::new(StatusCode::INTERNAL_SERVER_ERROR, "poisoned"))?;
    let running = matches!(*state, JobState::Running);
    let head = html! {
        p { a href="/simulate" data-test="sim-new" { "← " (ctx.t("sim_new")) } }
        dl.inline #sim-job data-test="sim-job" data-job=(job.id) {
            div.field { dt { (ctx.t("sim_baseline")) } dd data-test="sim-job-baseline" { (job.baseline) } }
            div.field { dt { (ctx.t("sim_candidate")) } dd { (job.candidate.as_deref().unwrap_or("—")) } }
            div.field { dt { (ctx.t("sim_runs")) } dd { (job.runs) } }
            div.field { dt { (ctx.t("sim_started")) } dd { (when(job.started_at)) } }
            div.field { dt { (ctx.t("actor")) } dd { (job.actor) } }
        }
    };
    let body = match &*state {
        JobState::Running => {
            let done = job.progress.load(Ordering::Relaxed);
            let total = job.total.load(Ordering::Relaxed);
            let pct = (done.min(total) * 100).checked_div(total).unwrap_or(0);
            html! {
                (head)
                meta http-equiv="refresh" content="2";
                section #sim-running data-test="sim-running" {
                    h2 { (ctx.t("sim_running")) }
                    progress max="100" value=(pct) data-test="sim-progress" {}
                    " " span data-test="sim-percent" { (pct) " %" }
                    p.muted { (done.min(total)) " / " (total) " " (ctx.t("sim_days")) " · "
                        (job.started.elapsed().as_secs()) " / " (app.limits().sim_time.as_secs()) " s" }
                    @if may_cancel(&ctx, &job) {
                        form method="post" action=(format!("/simulate/jobs/{}/cancel", job.id)) #sim-cancel-form data-test="sim-cancel-form" {
                            (csrf_field(&ctx))
                            button type="submit" #sim-cancel data-test="sim-cancel" { (ctx.t("cancel")) }
                        }
                    }
                }
            }
        }
        JobState::Failed { code, message } => html! {
            (head)
            p.flash.err #sim-failed data-test=(format!("sim-{}", code.replace('_', "-"))) data-code=(code) {
                (match *code { "cancelled" => ctx.t("sim_cancelled"), "timed_out" => ctx.t("sim_timed_out"), _ => ctx.t("sim_failed") })
                " — " (message)
            }
        },
        JobState::Done(f) => html! { (head) (result_markup(&ctx, &job.id, f)) },
    };
    drop(state);
    let mut res = layout(&ctx, "simulate", ctx.t("nav_simulate"), body);
    if running {
        res.headers_mut()
            .insert("refresh", HeaderValue::from_static("2"));
    }
    Ok(res)
}

pub async fn cancel_post(
    ctx: Ctx,
    State(app): State<App>,
    Path(id): Path<String>,
    body: Bytes,
) -> PageResult {
    let lang = ctx.lang;
    checked_form(&ctx, &body).map_err(|e| e.in_lang(lang))?;
    let job = find_job(&ctx, &app, &id)?;
    if !may_cancel(&ctx, &job) {
        return Err(PageError::new(StatusCode::FORBIDDEN, ctx.t("sim_not_yours")).in_lang(lang));
    }
    job.cancel.store(true, Ordering::Relaxed);
    Ok(Redirect::to(&format!("/simulate/jobs/{}", job.id)).into_response())
}

pub async fn job_file(
    ctx: Ctx,
    State(app): State<App>,
    Path((id, file)): Path<(String, String)>,
) -> PageResult {
    let job = find_job(&ctx, &app, &id)?;
    let state = job
        .state
        .lock()
        .map_err(|_| PageError::new(StatusCode::INTERNAL_SERVER_ERROR, "poisoned"))?;
    let content = match &*state {
        JobState::Done(f) if file.ends_with(".csv") => f.files.get(&file).cloned(),
        _ => None,
    };
    drop(state);
    let Some(content) = content else {
        return Err(PageError::not_found(ctx.t("no_such_page")).in_lang(ctx.lang));
    };
    // The name is one of files_of_report's (plain ASCII), so it is safe in the header.
    let disposition = format!("attachment; filename=\"simulation-{}-{file}\"", job.id);
    let mut res = ([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], content).into_response();
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        res.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(res)
}

// ---------------------------------------------------------------------------------------
// The result.

fn sets(r: &Report) -> Vec<(&'static str, &RuleSetReport)> {
    let mut v = vec![("sim_baseline", &r.baseline)];
    if let Some(c) = &r.candidate {
        v.push(("sim_candidate", c));
    }
    v
}

fn result_markup(ctx: &Ctx, id: &str, f: &Finished) -> Markup {
    let r = &f.report;
    let sets = sets(r);
    type Metric = (&'static str, fn(&RuleSetReport) -> u64);
    let metrics: [Metric; 12] = [
        ("sim_waiting_start", |x| x.start.waiting),
        ("sim_arrivals", |x| x.arrivals.registered),
        ("sim_published", |x| x.places.published),
        ("sim_placed", |x| x.placed_total),
        ("sim_issued", |x| x.referrals.issued),
        ("sim_recalled", |x| x.referrals.recalled),
        ("sim_expired", |x| x.referrals.expired),
        ("sim_extended", |x| x.referrals.extended),
        ("sim_enrolled", |x| x.referrals.enrolled),
        ("sim_unused", |x| x.places.unused_at_priority_end),
        ("sim_envy", |x| x.justified_envy.total),
        ("sim_waiting_end", |x| x.queue.last().map_or(0, |q| q.total)),
    ];
    let mut cats: Vec<&String> = sets
        .iter()
        .flat_map(|(_, x)| x.placed.keys().chain(x.waiting_days.keys()))
        .collect();
    cats.sort();
    cats.dedup();
    let head = html! {
        th {}
        @for (k, x) in &sets { th.n { (ctx.t(k)) br; span.mono.muted { (x.label) " · " (x.rules_hash.get(..8).unwrap_or(&x.rules_hash)) } } }
    };
    html! {
        section #sim-result data-test="sim-done" {
            p.muted data-test="sim-scenario-summary" {
                (ctx.t("sim_seed")) " " (r.scenario.seed) " · " (r.scenario.horizon_months) " " (ctx.t("sim_months"))
                " · " (r.scenario.start_at) " → " (r.scenario.end_at) " · " (r.scenario.start)
                " · " (f.elapsed_ms) " ms"
            }
            div.grid2 {
                div {
                    h2 { (ctx.t("sim_summary")) }
                    table #sim-summary data-test="sim-summary" {
                        thead { tr { (head) } }
                        tbody {
                            @for (k, get) in &metrics {
                                tr data-test="sim-row" data-metric=(k) { th { (ctx.t(k)) } @for (_, x) in &sets { td.n { (get(x)) } } }
                            }
                        }
                    }
                }
                div {
                    h2 { (ctx.t("sim_by_category")) }
                    table #sim-categories data-test="sim-categories" {
                        thead {
                            tr { th { (ctx.t("category")) } @for (k, _) in &sets { th.n colspan="3" { (ctx.t(k)) } } }
                            tr { th {} @for _ in &sets { th.n { (ctx.t("sim_placed")) } th.n { (ctx.t("sim_median_days")) } th.n { (ctx.t("sim_p90_days")) } } }
                        }
                        tbody {
                            @for c in &cats {
                                tr data-test="sim-category" data-category=(c) {
                                    td.mono { (c) }
                                    @for (_, x) in &sets {
                                        td.n { (x.placed.get(*c).map_or(0, |m| m.values().sum::<u64>())) }
                                        @match x.waiting_days.get(*c) {
                                            Some(w) => { td.n { (w.median_days) } td.n { (w.p90_days) } },
                                            None => { td.n { "—" } td.n { "—" } },
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @if let Some(c) = &r.comparison {
                section #sim-comparison data-test="sim-comparison" {
                    h2 { (ctx.t("sim_comparison")) }
                    div.cards {
                        div.card { div.num data-test="sim-earlier" { (c.earlier) } div.lbl { (ctx.t("sim_earlier")) } }
                        div.card { div.num data-test="sim-later" { (c.later) } div.lbl { (ctx.t("sim_later")) } }
                        div.card { div.num data-test="sim-unchanged" { (c.unchanged) } div.lbl { (ctx.t("sim_unchanged")) } }
                        div.card { div.num { (c.placed_only_in_candidate) } div.lbl { (ctx.t("sim_only_candidate")) } }
                        div.card { div.num { (c.placed_only_in_baseline) } div.lbl { (ctx.t("sim_only_baseline")) } }
                    }
                    @if !c.by_category.is_empty() {
                        table data-test="sim-moved-by-category" {
                            thead { tr { th { (ctx.t("category")) } th.n { (ctx.t("sim_earlier")) } th.n { (ctx.t("sim_later")) } } }
                            tbody { @for (cat, el) in &c.by_category { tr { td.mono { (cat) } td.n { (el.earlier) } td.n { (el.later) } } } }
                        }
                    }
                    @let shifts: Vec<_> = c.largest_earlier.iter().take(SHOWN_SHIFTS).chain(c.largest_later.iter().take(SHOWN_SHIFTS)).collect();
                    @if !shifts.is_empty() {
                        h3 { (ctx.t("sim_largest_shifts")) }
                        table data-test="sim-shifts" {
                            thead { tr { th { (ctx.t("application")) } th { (ctx.t("category")) } th.n { (ctx.t("cohort")) } th.n { (ctx.t("sim_baseline")) } th.n { (ctx.t("sim_candidate")) } th.n { "Δ" } } }
                            tbody { @for s in shifts { tr { td.mono { (s.application) } td.mono { (s.category) } td.n { (s.cohort) } td.n { (s.baseline_days) } td.n { (s.candidate_days) } td.n { (format!("{:+}", s.shift_days)) } } } }
                        }
                    }
                }
            }
            @if let Some((runs, figures)) = &f.spread {
                section #sim-spread data-test="sim-spread" {
                    h2 { (ctx.t("sim_spread")) " (" (runs) ")" }
                    table {
                        thead { tr { th {} th.n { "min" } th.n { "p10" } th.n { "median" } th.n { "p90" } th.n { "max" } } }
                        tbody {
                            @for (k, x) in figures.iter().filter(|(k, _)| main_figure(k)) {
                                tr { td.mono { (k) } td.n { (x.min) } td.n { (x.p10) } td.n { (x.median) } td.n { (x.p90) } td.n { (x.max) } }
                            }
                        }
                    }
                }
            }
            section #sim-charts data-test="sim-charts" {
                h2 { (ctx.t("sim_charts")) }
                @for (name, svg) in f.files.iter().filter(|(n, _)| n.ends_with(".svg")) {
                    // Our own SVG (kezek_sim::out escapes every text it writes).
                    figure.chart data-test="sim-chart" data-file=(name) { (PreEscaped(svg.as_str())) }
                }
            }
            section #sim-downloads data-test="sim-downloads" {
                h2 { (ctx.t("sim_downloads")) }
                ul {
                    @for name in f.files.keys().filter(|n| n.ends_with(".csv")) {
                        li { a href=(format!("/simulate/jobs/{id}/{name}")) download=(name) data-test="sim-csv" { (name) } }
                    }
                }
            }
        }
    }
}

fn main_figure(k: &str) -> bool {
    !k.ends_with(".n")
        && (k.ends_with("placed_total")
            || k.ends_with("referrals.issued")
            || k.ends_with("justified_envy.total")
            || k.contains("waiting_days")
            || k.starts_with("comparison.earlier")
            || k.starts_with("comparison.later"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_prefilled_scenario_parses_and_starts_from_the_store() {
        let s = kezek_sim::Scenario::from_toml(&super::example_scenario()).unwrap();
        assert_eq!(s.start, kezek_sim::scenario::StartKind::Store);
    }
}
