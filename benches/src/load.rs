//! The load run: a real `kezek serve` on a fresh demo city, driven through its JSON API by
//! many kept-alive loopback connections (closed loop: each connection sends its next
//! request when the last is answered) with mixed reads and writes; then the server is
//! killed (SIGKILL), started again on the same folder, and every acknowledged write is
//! looked for.
//!
//! Every request is expected to succeed: reads ask for applications and queue positions
//! that exist; a publication reserves its places from what the groups had free at the
//! start (nothing else publishes), and when none are left the writes become applicant
//! changes; an applicant change on an application is made by one connection only, to an
//! IIN other than the current one. So any non-2xx answer or transport error is an error.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use hyper::Method;
use jiff::civil::date;
use kezek_engine::iin::Iin;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

use crate::client::{Answer, Client};
use crate::server::{add_token, Memory, Server};

/// Bounds of the options.
pub const MAX_SECONDS: f64 = 3_600.0;
pub const MAX_CONNECTIONS: usize = 1_024;
/// Applications read from the queues to pick requests from.
pub const MAX_APPS: usize = 200_000;
/// Kindergartens looked up per console call (`DDO-0001`, `DDO-0002`, ...: the demo
/// city's numbering), and at most in all.
const KG_BATCH: usize = 200;
const MAX_KINDERGARTENS: usize = 9_999;
/// Error messages kept for the report.
const ERROR_SAMPLES: usize = 10;
/// Time the server has to build the demo city (or open a store) and listen.
pub const START_LIMIT: Duration = Duration::from_secs(600);

/// The demo city's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    /// About 800 kindergartens and 49,000 waiting (what `kezek serve` builds by default).
    City,
    /// About 40 kindergartens and 2,000 waiting (`KEZEK_DEMO_SCALE=small`).
    Small,
}

impl Scale {
    fn env(self) -> &'static str {
        match self {
            Scale::City => "city",
            Scale::Small => "small",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Options {
    /// The `kezek` binary.
    pub kezek: PathBuf,
    pub seconds: f64,
    pub connections: usize,
    /// Percent of requests that write (0-100).
    pub write_percent: u32,
    /// Percent of the reads that ask for an explanation (0-100). `explain` replays the
    /// whole event log under the store's read lock, so it is off by default.
    pub explain_percent: u32,
    pub scale: Scale,
    pub seed: u64,
    /// Worker threads of the generator's runtime (the server runs on the same machine).
    pub client_threads: usize,
}

impl Options {
    pub fn check(&self) -> Result<(), String> {
        if !(self.seconds > 0.0 && self.seconds <= MAX_SECONDS) {
            return Err(format!(
                "--seconds: must be above 0 and at most {MAX_SECONDS}"
            ));
        }
        if self.connections == 0 || self.connections > MAX_CONNECTIONS {
            return Err(format!("--connections: must be 1 to {MAX_CONNECTIONS}"));
        }
        if self.write_percent > 100 {
            return Err("--write-percent: must be 0 to 100".into());
        }
        if self.explain_percent > 100 {
            return Err("--explain-percent: must be 0 to 100".into());
        }
        if self.client_threads == 0 || self.client_threads > 64 {
            return Err("--client-threads: must be 1 to 64".into());
        }
        Ok(())
    }
}

/// What a request asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Card,
    Queue,
    Explain,
    Offers,
    Console,
    Publish,
    Applicant,
}

impl Kind {
    pub const ALL: [Kind; 7] = [
        Kind::Card,
        Kind::Queue,
        Kind::Explain,
        Kind::Offers,
        Kind::Console,
        Kind::Publish,
        Kind::Applicant,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Kind::Card => "GET /api/applications/{id}",
            Kind::Queue => "GET /api/queues/{cohort}?from&limit=20",
            Kind::Explain => "GET /api/applications/{id}/explain",
            Kind::Offers => "GET /api/applications/{id}/offers",
            Kind::Console => "POST /api/console (queue sizes)",
            Kind::Publish => "POST /api/publications (1-3 places)",
            Kind::Applicant => "POST /api/applications/{id}/applicant",
        }
    }

    pub fn writes(self) -> bool {
        matches!(self, Kind::Publish | Kind::Applicant)
    }
}

/// Shares of the reads other than explanations, in percent.
const READ_MIX: [(Kind, u32); 4] = [
    (Kind::Card, 60),
    (Kind::Queue, 27),
    (Kind::Offers, 10),
    (Kind::Console, 3),
];
/// Percent of the writes that publish places (the rest change an applicant).
const PUBLISH_SHARE: u32 = 75;

/// A waiting application as the queue pages showed it.
#[derive(Debug, Clone)]
struct AppRef {
    id: String,
    applicant_iin: String,
}

/// A kindergarten group and the places it could still publish at the start.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Group {
    kindergarten: String,
    cohort: i64,
    language: String,
    free: i64,
}

/// What the run starts from, read through the API.
struct City {
    apps: Vec<AppRef>,
    /// Cohorts and their queue lengths.
    queues: Vec<(i64, u64)>,
    groups: Vec<Group>,
    publications: usize,
}

/// An acknowledged publication.
#[derive(Debug, Clone)]
struct Published {
    id: u64,
    kindergarten: String,
    cohort: i64,
    language: String,
    places: i64,
}

/// The places not yet reserved by a publication, by group.
struct Pool {
    free: Vec<i64>,
    open: Vec<usize>,
}

impl Pool {
    fn new(groups: &[Group]) -> Pool {
        let free: Vec<i64> = groups.iter().map(|g| g.free.max(0)).collect();
        let open = (0..free.len()).filter(|&i| free[i] > 0).collect();
        Pool { free, open }
    }

    /// Reserves 1-3 places of a random group that has them.
    fn reserve(&mut self, rng: &mut ChaCha8Rng) -> Option<(usize, i64)> {
        if self.open.is_empty() {
            return None;
        }
        let k = rng.random_range(0..self.open.len());
        let g = self.open[k];
        let places = rng.random_range(1..=3).min(self.free[g]);
        self.free[g] -= places;
        if self.free[g] == 0 {
            self.open.swap_remove(k);
        }
        Some((g, places))
    }
}

/// Latencies and outcomes of one kind of request.
#[derive(Clone)]
struct Tally {
    micros: Histogram<u64>,
    errors: u64,
}

impl Tally {
    fn new() -> Tally {
        Tally {
            // 1 us to 10 min, three significant digits.
            micros: Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds"),
            errors: 0,
        }
    }
}

/// One connection's results.
struct WorkerOut {
    tallies: BTreeMap<Kind, Tally>,
    errors: Vec<String>,
    published: Vec<Published>,
    /// Application -> the applicant IIN last acknowledged.
    applicants: HashMap<String, String>,
    applicant_changes: usize,
}

struct Ctx {
    addr: SocketAddr,
    reader: String,
    writer: String,
    city: City,
    pool: Mutex<Pool>,
    adults: Vec<String>,
    write_percent: u32,
    explain_percent: u32,
    connections: usize,
    seed: u64,
}

/// One row of the report.
#[derive(Debug, Clone)]
pub struct Row {
    pub label: String,
    pub requests: u64,
    pub errors: u64,
    pub per_second: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

fn row(label: &str, t: &Tally, seconds: f64) -> Row {
    let h = &t.micros;
    let ms = |us: u64| us as f64 / 1000.0;
    Row {
        label: label.to_string(),
        requests: h.len(),
        errors: t.errors,
        per_second: h.len() as f64 / seconds,
        p50_ms: ms(h.value_at_quantile(0.50)),
        p90_ms: ms(h.value_at_quantile(0.90)),
        p99_ms: ms(h.value_at_quantile(0.99)),
        p999_ms: ms(h.value_at_quantile(0.999)),
        max_ms: ms(h.max()),
    }
}

/// What a load run measured and found.
#[derive(Debug, Clone)]
pub struct Report {
    pub seconds: f64,
    pub connections: usize,
    pub write_percent: u32,
    pub explain_percent: u32,
    pub scale: Scale,
    pub waiting: u64,
    pub groups: usize,
    pub free_places: i64,
    pub rows: Vec<Row>,
    pub total: Row,
    pub errors: u64,
    pub error_samples: Vec<String>,
    pub publications_acknowledged: usize,
    pub places_acknowledged: i64,
    pub applicant_changes_acknowledged: usize,
    /// Applications whose applicant was changed (each checked for the last IIN).
    pub applications_changed: usize,
    /// Acknowledged writes missing or different after the restart (empty: none lost).
    pub lost: Vec<String>,
    /// The server's memory at the end of the run.
    pub memory: Option<Memory>,
    /// The machine's 1-minute load average at the end of the run (`/proc/loadavg`).
    pub load_average: String,
}

impl Report {
    /// No errors and no lost writes.
    pub fn ok(&self) -> bool {
        self.errors == 0 && self.lost.is_empty()
    }

    /// A short Markdown summary and table.
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
        let _ = writeln!(
            s,
            "Load run: `kezek serve` on the demo city ({}: {} waiting, {} groups with {} places \
             publishable), {} kept-alive loopback connections, closed loop, {:.0} s, {}% writes, \
             {}% of reads explanations; generator and server on the same {}-core machine \
             (load average {}).\n",
            self.scale.env(),
            self.waiting,
            self.groups,
            self.free_places,
            self.connections,
            self.seconds,
            self.write_percent,
            self.explain_percent,
            cores,
            self.load_average
        );
        let _ = writeln!(
            s,
            "| request | requests | per s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | errors |"
        );
        let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        for r in self.rows.iter().chain(std::iter::once(&self.total)) {
            let _ = writeln!(
                s,
                "| {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {} |",
                r.label,
                r.requests,
                r.per_second,
                r.p50_ms,
                r.p90_ms,
                r.p99_ms,
                r.p999_ms,
                r.max_ms,
                r.errors
            );
        }
        let _ = writeln!(
            s,
            "\nWrites acknowledged: {} publications ({} places) and {} applicant changes; \
             on {} applications; after SIGKILL and a restart on the same folder: {}.",
            self.publications_acknowledged,
            self.places_acknowledged,
            self.applicant_changes_acknowledged,
            self.applications_changed,
            if self.lost.is_empty() {
                "every one present, none lost".to_string()
            } else {
                format!("{} missing or different", self.lost.len())
            }
        );
        if let Some(m) = self.memory {
            let _ = writeln!(
                s,
                "Server memory at the end: VmRSS {:.0} MiB, VmHWM {:.0} MiB.",
                m.rss_mib(),
                m.hwm_mib()
            );
        }
        if self.errors > 0 {
            let _ = writeln!(s, "\n{} error(s); the first:", self.errors);
            for e in &self.error_samples {
                let _ = writeln!(s, "- {e}");
            }
        }
        for l in self.lost.iter().take(ERROR_SAMPLES) {
            let _ = writeln!(s, "- lost: {l}");
        }
        s
    }
}

/// Adult IINs to attach applications to.
fn adult_iins(n: u32) -> Vec<String> {
    (0..n)
        .map(|i| {
            let born = date(
                1975 + (i % 25) as i16,
                1 + (i % 12) as i8,
                1 + (i % 28) as i8,
            );
            Iin::make_valid(born, i % 2 == 1, 100 + i * 20).to_string()
        })
        .collect()
}

fn runtime(threads: usize) -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))
}

fn str_field(v: &Value, name: &str, what: &str) -> Result<String, String> {
    v.get(name)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| format!("{what}: no text field '{name}' in {v}"))
}

fn int_field(v: &Value, name: &str, what: &str) -> Result<i64, String> {
    v.get(name)
        .and_then(Value::as_i64)
        .ok_or_else(|| format!("{what}: no whole-number field '{name}' in {v}"))
}

async fn console(c: &mut Client, token: &str, script: &str) -> Result<Value, String> {
    let v = c
        .post_json("/api/console", token, &json!({ "script": script }))
        .await?;
    v.get("result")
        .cloned()
        .ok_or_else(|| format!("POST /api/console: no result in {v}"))
}

/// The cohorts with a queue and their lengths.
pub(crate) async fn queues(c: &mut Client, token: &str) -> Result<Vec<(i64, u64)>, String> {
    let cohorts = console(c, token, "cohorts()").await?;
    let cohorts = cohorts
        .as_array()
        .ok_or_else(|| format!("cohorts(): not an array: {cohorts}"))?;
    let mut out = Vec::new();
    for v in cohorts {
        let cohort = v
            .as_i64()
            .ok_or_else(|| format!("cohorts(): not a year: {v}"))?;
        let page = c
            .get_json(&format!("/api/queues/{cohort}?from=1&limit=1"), token)
            .await?;
        let total = page
            .get("total")
            .and_then(Value::as_u64)
            .ok_or_else(|| format!("queue {cohort}: no total in the page"))?;
        out.push((cohort, total));
    }
    Ok(out)
}

/// Reads the waiting applications page by page (at most `max`).
async fn waiting_apps(
    c: &mut Client,
    token: &str,
    queues: &[(i64, u64)],
    max: usize,
) -> Result<Vec<AppRef>, String> {
    let mut apps = Vec::new();
    for &(cohort, total) in queues {
        let mut from = 1u64;
        while from <= total && apps.len() < max {
            let path = format!("/api/queues/{cohort}?from={from}&limit=1000");
            let page = c.get_json(&path, token).await?;
            let items = page
                .get("items")
                .and_then(Value::as_array)
                .ok_or_else(|| format!("GET {path}: no items"))?;
            if items.is_empty() {
                break;
            }
            for it in items {
                apps.push(AppRef {
                    id: str_field(it, "id", &path)?,
                    applicant_iin: str_field(it, "applicant_iin", &path)?,
                });
            }
            from += items.len() as u64;
        }
    }
    Ok(apps)
}

/// Every group of the demo city's kindergartens with its publishable places, through
/// the console's `kindergarten(id)`.
async fn groups(c: &mut Client, token: &str) -> Result<Vec<Group>, String> {
    let mut out = Vec::new();
    let mut first = 1;
    while first <= MAX_KINDERGARTENS {
        let last = (first + KG_BATCH - 1).min(MAX_KINDERGARTENS);
        let ids: Vec<String> = (first..=last).map(|k| format!("\"DDO-{k:04}\"")).collect();
        let script = format!(
            "let out = []; let missing = 0;\n\
             for id in [{}] {{\n\
               let k = kindergarten(id);\n\
               if type_of(k) == \"()\" {{ missing += 1; continue; }}\n\
               for g in k.groups {{\n\
                 out.push(#{{kg: id, cohort: g.cohort, language: g.language, free: g.capacity - g.published}});\n\
               }}\n\
             }}\n\
             #{{groups: out, missing: missing}}",
            ids.join(",")
        );
        let r = console(c, token, &script).await?;
        let what = "kindergarten groups";
        let gs = r
            .get("groups")
            .and_then(Value::as_array)
            .ok_or_else(|| format!("{what}: no groups in {r}"))?;
        for g in gs {
            out.push(Group {
                kindergarten: str_field(g, "kg", what)?,
                cohort: int_field(g, "cohort", what)?,
                language: str_field(g, "language", what)?,
                free: int_field(g, "free", what)?,
            });
        }
        if int_field(&r, "missing", what)? > 0 {
            break;
        }
        first = last + 1;
    }
    out.sort();
    Ok(out)
}

async fn publications(c: &mut Client, token: &str) -> Result<Vec<Value>, String> {
    match c.get_json("/api/publications", token).await? {
        Value::Array(a) => Ok(a),
        v => Err(format!("GET /api/publications: not an array: {v:.200}")),
    }
}

async fn discover(c: &mut Client, token: &str) -> Result<City, String> {
    let queues = queues(c, token).await?;
    let apps = waiting_apps(c, token, &queues, MAX_APPS).await?;
    if apps.is_empty() {
        return Err("no waiting application found in the queues".into());
    }
    let groups = groups(c, token).await?;
    if groups.is_empty() {
        return Err("no kindergarten DDO-0001... found: is this the demo city?".into());
    }
    let publications = publications(c, token).await?.len();
    Ok(City {
        apps,
        queues,
        groups,
        publications,
    })
}

fn pick_kind(rng: &mut ChaCha8Rng, write_percent: u32, explain_percent: u32) -> Kind {
    if rng.random_range(0..100) < write_percent {
        return if rng.random_range(0..100) < PUBLISH_SHARE {
            Kind::Publish
        } else {
            Kind::Applicant
        };
    }
    if rng.random_range(0..100) < explain_percent {
        return Kind::Explain;
    }
    let total: u32 = READ_MIX.iter().map(|(_, w)| w).sum();
    let mut x = rng.random_range(0..total);
    for (k, w) in READ_MIX {
        if x < w {
            return k;
        }
        x -= w;
    }
    Kind::Card
}

/// One request of `kind`; `Err` is an error to count (a non-2xx answer, a transport
/// error, an answer that does not show the write).
async fn one(
    c: &mut Client,
    ctx: &Ctx,
    w: usize,
    kind: Kind,
    rng: &mut ChaCha8Rng,
    out: &mut WorkerOut,
    reserved: Option<(usize, i64)>,
) -> Result<(), String> {
    let apps = &ctx.city.apps;
    let any_app = |rng: &mut ChaCha8Rng| &apps[rng.random_range(0..apps.len())];
    let read = |a: &Answer, what: String| -> Result<(), String> {
        if a.ok() {
            Ok(())
        } else {
            Err(format!("{what}: {} {}", a.status, a.excerpt()))
        }
    };
    match kind {
        Kind::Card | Kind::Explain | Kind::Offers => {
            let id = &any_app(rng).id;
            let path = match kind {
                Kind::Card => format!("/api/applications/{id}"),
                Kind::Explain => format!("/api/applications/{id}/explain"),
                _ => format!("/api/applications/{id}/offers"),
            };
            let a = c.call(Method::GET, &path, &ctx.reader, None).await?;
            read(&a, format!("GET {path}"))
        }
        Kind::Queue => {
            let (cohort, total) = ctx.city.queues[rng.random_range(0..ctx.city.queues.len())];
            let from = rng.random_range(1..=total.max(1));
            let path = format!("/api/queues/{cohort}?from={from}&limit=20");
            let a = c.call(Method::GET, &path, &ctx.reader, None).await?;
            read(&a, format!("GET {path}"))
        }
        Kind::Console => {
            let script = "let n = 0; for c in cohorts() { n += count(c); } n";
            let body = json!({ "script": script }).to_string();
            let a = c
                .call(Method::POST, "/api/console", &ctx.reader, Some(body))
                .await?;
            read(&a, "POST /api/console".into())
        }
        Kind::Publish => {
            let (g, places) = reserved.ok_or("a publication without reserved places")?;
            let group = &ctx.city.groups[g];
            let body = json!({
                "kindergarten": group.kindergarten,
                "cohort": group.cohort,
                "language": group.language,
                "places": places,
                "reason": "load run",
            });
            let path = "/api/publications";
            let a = c
                .call(Method::POST, path, &ctx.writer, Some(body.to_string()))
                .await?;
            read(&a, format!("POST {path} {body}"))?;
            let v = a.json(path)?;
            let id = v
                .get("id")
                .and_then(Value::as_u64)
                .ok_or_else(|| format!("POST {path}: no publication id in {v}"))?;
            out.published.push(Published {
                id,
                kindergarten: group.kindergarten.clone(),
                cohort: group.cohort,
                language: group.language.clone(),
                places,
            });
            Ok(())
        }
        Kind::Applicant => {
            // This connection's share of the applications: no other changes them.
            let n = apps.len();
            let mine = (n + ctx.connections - 1 - w) / ctx.connections;
            let idx = w + rng.random_range(0..mine) * ctx.connections;
            let app = &apps[idx];
            let current = out
                .applicants
                .get(&app.id)
                .unwrap_or(&app.applicant_iin)
                .clone();
            let mut iin = &ctx.adults[rng.random_range(0..ctx.adults.len())];
            if *iin == current {
                iin = ctx
                    .adults
                    .iter()
                    .find(|a| **a != current)
                    .ok_or("no second adult IIN")?;
            }
            let path = format!("/api/applications/{}/applicant", app.id);
            let body = json!({ "iin": iin, "reason": "load run" });
            let a = c
                .call(Method::POST, &path, &ctx.writer, Some(body.to_string()))
                .await?;
            read(&a, format!("POST {path} {body}"))?;
            let card = a.json(&path)?;
            let now = str_field(&card, "applicant_iin", &path)?;
            if now != *iin {
                return Err(format!(
                    "POST {path}: answered 2xx but the card shows the applicant {now}, not {iin}"
                ));
            }
            out.applicants.insert(app.id.clone(), iin.clone());
            out.applicant_changes += 1;
            Ok(())
        }
    }
}

async fn worker(w: usize, ctx: Arc<Ctx>, deadline: Instant) -> WorkerOut {
    let mut rng = ChaCha8Rng::seed_from_u64(ctx.seed.wrapping_add(w as u64 * 7_919));
    let mut c = Client::new(ctx.addr);
    let mut out = WorkerOut {
        tallies: BTreeMap::new(),
        errors: Vec::new(),
        published: Vec::new(),
        applicants: HashMap::new(),
        applicant_changes: 0,
    };
    // A connection with no application of its own makes no applicant changes.
    let has_apps = w < ctx.city.apps.len();
    while Instant::now() < deadline {
        let mut kind = pick_kind(&mut rng, ctx.write_percent, ctx.explain_percent);
        let mut reserved = None;
        if kind == Kind::Publish {
            reserved = ctx.pool.lock().ok().and_then(|mut p| p.reserve(&mut rng));
            if reserved.is_none() {
                kind = Kind::Applicant;
            }
        }
        if kind == Kind::Applicant && !has_apps {
            kind = Kind::Card;
        }
        let t = Instant::now();
        let r = one(&mut c, &ctx, w, kind, &mut rng, &mut out, reserved).await;
        let us = t.elapsed().as_micros().min(u64::MAX as u128) as u64;
        let tally = out.tallies.entry(kind).or_insert_with(Tally::new);
        tally.micros.saturating_record(us.max(1));
        if let Err(e) = r {
            tally.errors += 1;
            if out.errors.len() < ERROR_SAMPLES {
                out.errors.push(format!("{}: {e}", kind.label()));
            }
        }
    }
    out
}

/// Looks for every acknowledged write in a server started anew on the same folder.
async fn verify(
    c: &mut Client,
    token: &str,
    city: &City,
    published: &[Published],
    applicants: &HashMap<String, String>,
) -> Result<Vec<String>, String> {
    let mut lost = Vec::new();
    let pubs = publications(c, token).await?;
    if pubs.len() != city.publications + published.len() {
        lost.push(format!(
            "{} publications after the restart, expected {} before the run + {} acknowledged",
            pubs.len(),
            city.publications,
            published.len()
        ));
    }
    let by_id: HashMap<u64, &Value> = pubs
        .iter()
        .filter_map(|p| Some((p.get("id")?.as_u64()?, p)))
        .collect();
    for p in published {
        let Some(v) = by_id.get(&p.id) else {
            lost.push(format!("publication {} is missing", p.id));
            continue;
        };
        let same = v.get("kindergarten").and_then(Value::as_str) == Some(&p.kindergarten)
            && v.get("cohort").and_then(Value::as_i64) == Some(p.cohort)
            && v.get("language").and_then(Value::as_str) == Some(&p.language)
            && v.get("places").and_then(Value::as_i64) == Some(p.places);
        if !same {
            lost.push(format!("publication {} differs: {v}", p.id));
        }
    }
    // The groups' publishable places: what they had, less what was acknowledged.
    let mut expected: BTreeMap<(String, i64, String), i64> = city
        .groups
        .iter()
        .map(|g| {
            (
                (g.kindergarten.clone(), g.cohort, g.language.clone()),
                g.free,
            )
        })
        .collect();
    for p in published {
        if let Some(f) = expected.get_mut(&(p.kindergarten.clone(), p.cohort, p.language.clone())) {
            *f -= p.places;
        }
    }
    let now = groups(c, token).await?;
    if now.len() != expected.len() {
        lost.push(format!(
            "{} groups after the restart, {} before",
            now.len(),
            expected.len()
        ));
    }
    for g in &now {
        let key = (g.kindergarten.clone(), g.cohort, g.language.clone());
        if expected.get(&key) != Some(&g.free) {
            lost.push(format!(
                "group {} {} {}: {} places publishable, expected {:?}",
                g.kindergarten,
                g.cohort,
                g.language,
                g.free,
                expected.get(&key)
            ));
        }
    }
    for (id, iin) in applicants {
        let card = c
            .get_json(&format!("/api/applications/{id}"), token)
            .await?;
        let now = str_field(&card, "applicant_iin", id)?;
        if now != *iin {
            lost.push(format!(
                "{id}: applicant {now} after the restart, {iin} acknowledged"
            ));
        }
    }
    Ok(lost)
}

/// The whole run: start, discover, load, kill, restart, verify. An `Err` is a failure to
/// set up or to check (the run could not be judged); errors of requests under load are in
/// the report (see [`Report::ok`]).
pub fn run(opts: &Options) -> Result<Report, String> {
    opts.check()?;
    let dir = tempfile::tempdir().map_err(|e| format!("cannot make a temporary folder: {e}"))?;
    let data = dir.path().join("kezek-data");
    let env = [("KEZEK_DEMO_SCALE", opts.scale.env())];
    let server = Server::start(&opts.kezek, &data, &env, START_LIMIT)?;
    let reader = add_token(&opts.kezek, &data, "load-reader", "viewer")?;
    let writer = add_token(&opts.kezek, &data, "load-writer", "operator")?;
    let rt = runtime(opts.client_threads)?;
    let addr = server.addr();
    let city = rt.block_on(async {
        let mut c = Client::new(addr);
        discover(&mut c, &reader).await
    })?;
    let waiting = city.queues.iter().map(|(_, n)| n).sum();
    let free_places = city.groups.iter().map(|g| g.free.max(0)).sum();
    let ctx = Arc::new(Ctx {
        addr,
        reader: reader.clone(),
        writer,
        pool: Mutex::new(Pool::new(&city.groups)),
        city,
        adults: adult_iins(64),
        write_percent: opts.write_percent,
        explain_percent: opts.explain_percent,
        connections: opts.connections,
        seed: opts.seed,
    });

    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(opts.seconds);
    let outs = rt.block_on(async {
        let tasks: Vec<_> = (0..opts.connections)
            .map(|w| tokio::spawn(worker(w, ctx.clone(), deadline)))
            .collect();
        let mut outs = Vec::new();
        for t in tasks {
            outs.push(
                t.await
                    .map_err(|e| format!("a connection's task failed: {e}"))?,
            );
        }
        Ok::<_, String>(outs)
    })?;
    let seconds = started.elapsed().as_secs_f64();
    let load_average = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "unknown".into());
    let mut server = server;
    let memory = server.memory().ok();
    if !server.running() {
        return Err(format!(
            "kezek serve ended during the run; its output:\n{}",
            server.log_tail()
        ));
    }

    // Merge the connections' results.
    let mut tallies: BTreeMap<Kind, Tally> = BTreeMap::new();
    let mut all = Tally::new();
    let mut error_samples = Vec::new();
    let mut published = Vec::new();
    let mut applicants = HashMap::new();
    let mut applicant_changes = 0;
    for o in outs {
        for (k, t) in o.tallies {
            all.micros.add(&t.micros).map_err(|e| e.to_string())?;
            all.errors += t.errors;
            let m = tallies.entry(k).or_insert_with(Tally::new);
            m.micros.add(&t.micros).map_err(|e| e.to_string())?;
            m.errors += t.errors;
        }
        for e in o.errors {
            if error_samples.len() < ERROR_SAMPLES {
                error_samples.push(e);
            }
        }
        published.extend(o.published);
        applicants.extend(o.applicants);
        applicant_changes += o.applicant_changes;
    }
    let rows: Vec<Row> = Kind::ALL
        .iter()
        .filter_map(|k| tallies.get(k).map(|t| row(k.label(), t, seconds)))
        .collect();
    let total = row("all", &all, seconds);

    // Kill the server hard, start it again on the same folder, and look for every write.
    server.kill()?;
    let server = Server::start(&opts.kezek, &data, &[], START_LIMIT)?;
    let addr = server.addr();
    let lost = rt.block_on(async {
        let mut c = Client::new(addr);
        verify(&mut c, &reader, &ctx.city, &published, &applicants).await
    })?;
    server.kill()?;

    Ok(Report {
        seconds,
        connections: opts.connections,
        write_percent: opts.write_percent,
        explain_percent: opts.explain_percent,
        scale: opts.scale,
        waiting,
        groups: ctx.city.groups.len(),
        free_places,
        rows,
        errors: total.errors,
        total,
        error_samples,
        publications_acknowledged: published.len(),
        places_acknowledged: published.iter().map(|p| p.places).sum(),
        applicant_changes_acknowledged: applicant_changes,
        applications_changed: applicants.len(),
        lost,
        memory,
        load_average,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pool_never_gives_more_than_a_group_has() {
        let groups: Vec<Group> = (0..5)
            .map(|i| Group {
                kindergarten: format!("DDO-{i:04}"),
                cohort: 2021,
                language: "kk".into(),
                free: i,
            })
            .collect();
        let mut pool = Pool::new(&groups);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut taken = [0i64; 5];
        while let Some((g, n)) = pool.reserve(&mut rng) {
            assert!((1..=3).contains(&n));
            taken[g] += n;
        }
        assert_eq!(taken, [0, 1, 2, 3, 4]);
    }

    #[test]
    fn adult_iins_are_valid_and_distinct() {
        let v = adult_iins(64);
        let set: std::collections::HashSet<_> = v.iter().collect();
        assert_eq!(set.len(), 64);
        for s in &v {
            assert!(Iin::parse(s).is_ok(), "{s}");
        }
    }
}
