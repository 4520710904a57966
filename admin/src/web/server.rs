//! The server: the shared state of the web layer, the router with its limits, the clock
//! ticker, and `kezek serve`.
//!
//! The engine's [`Store`] is single-writer. It lives in one `RwLock`: reads (cards,
//! queues, console calls) share the read lock, commands take the write lock, and every
//! access runs on the blocking thread pool (a command flushes to disk before it
//! returns, and the response is sent only after that). A background task advances the
//! clock every second: time-driven transitions (phase ends, expiries, lock and stop-list
//! ends) are emitted as events even when nobody asks.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use axum::http::StatusCode;
use axum::Router;
use jiff::Timestamp;
use kezek_engine::console::{self, StateSource};
use kezek_engine::demo::{self, Scale};
use kezek_engine::{Actor, ClockMode, EngineError, RuleSet, State, Store};
use tokio::sync::Semaphore;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

use super::accounts::{random_password, Accounts, Role};
use super::audit::Audit;
use super::citizen::{CitizenLimits, Citizens};
use super::error::{json_errors, ApiError};
use super::pages::simulate::SimJobs;
use super::pages::stats::Stats;
use super::session::{SessionLimits, Sessions};
use crate::cli::Failure;

/// The limits of the web layer.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Bytes of a request body.
    pub body_bytes: usize,
    /// Time of one request, end to end.
    pub request_timeout: Duration,
    /// Rows of one queue page.
    pub max_page: u64,
    /// Changes one impact response lists (the counts cover all).
    pub max_changes: usize,
    /// Console scripts running at once (the rest wait).
    pub console_concurrency: usize,
    pub console: console::Limits,
    /// Browser sessions and the login throttle.
    pub sessions: SessionLimits,
    /// The parent's flow: nonce and session lifetimes, pool sizes, the journal's length.
    pub citizen: CitizenLimits,
    /// Time one simulation of the `/simulate` page may run before it is stopped.
    pub sim_time: Duration,
    /// Seeds one simulation of the page may ask for.
    pub sim_max_runs: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            body_bytes: 1024 * 1024,
            request_timeout: Duration::from_secs(10),
            max_page: 1000,
            max_changes: 1000,
            console_concurrency: 2,
            console: console::Limits::default(),
            sessions: SessionLimits::default(),
            citizen: CitizenLimits::default(),
            sim_time: Duration::from_secs(60),
            sim_max_runs: 4,
        }
    }
}

pub(crate) struct Inner {
    pub(crate) store: Arc<RwLock<Store>>,
    pub(crate) accounts: Accounts,
    pub(crate) audit: Audit,
    pub(crate) citizens: Citizens,
    pub(crate) limits: Limits,
    pub(crate) console_gate: Semaphore,
    /// One impact computation at a time (each re-ranks every waiting application).
    pub(crate) impact_gate: Semaphore,
    /// The simulations of the `/simulate` page: one at a time, recent jobs in memory.
    pub(crate) sims: SimJobs,
    /// Browser sessions and the login throttle (in memory).
    pub(crate) sessions: Sessions,
    /// Figures of the overview and the public page, read from the log incrementally.
    pub(crate) stats: Mutex<Stats>,
}

/// The web layer's state, shared by every request.
#[derive(Clone)]
pub struct App {
    pub(crate) inner: Arc<Inner>,
}

fn poisoned() -> ApiError {
    ApiError::internal("the store lock is poisoned: restart the server")
}

/// The console reads the state through the store's read lock, one call at a time.
struct StoreSource(Arc<RwLock<Store>>);

impl StateSource for StoreSource {
    fn with_state(&self, f: &mut dyn FnMut(&State)) {
        if let Ok(s) = self.0.read() {
            f(s.state())
        }
    }
}

impl App {
    /// Wraps an open store; accounts and the audit log are in `DATA/web/`.
    pub fn new(store: Store, limits: Limits) -> Result<App, EngineError> {
        let data = store.path().to_path_buf();
        let accounts = Accounts::open(&data)?;
        let audit = Audit::open(&data);
        let citizens = Citizens::open(&data, limits.citizen.clone())?;
        Ok(App {
            inner: Arc::new(Inner {
                store: Arc::new(RwLock::new(store)),
                accounts,
                audit,
                citizens,
                console_gate: Semaphore::new(limits.console_concurrency.max(1)),
                impact_gate: Semaphore::new(1),
                sims: SimJobs::default(),
                sessions: Sessions::new(limits.sessions.clone()),
                stats: Mutex::new(Stats::default()),
                limits,
            }),
        })
    }

    pub fn accounts(&self) -> &Accounts {
        &self.inner.accounts
    }

    pub fn audit(&self) -> &Audit {
        &self.inner.audit
    }

    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// The citizen side: nonces, sessions, profiles.
    pub fn citizens(&self) -> &Citizens {
        &self.inner.citizens
    }

    /// The server's clock: the store's manual clock, or the wall clock (never before the
    /// last event). Signatures are verified, and nonces and sessions expire, by it.
    pub fn clock_now(&self) -> Result<Timestamp, ApiError> {
        Ok(self.read()?.now(Timestamp::now()))
    }

    /// The store (tests check invariants through it).
    pub fn store(&self) -> Arc<RwLock<Store>> {
        self.inner.store.clone()
    }

    pub(crate) fn read(&self) -> Result<RwLockReadGuard<'_, Store>, ApiError> {
        self.inner.store.read().map_err(|_| poisoned())
    }

    pub(crate) fn write(&self) -> Result<RwLockWriteGuard<'_, Store>, ApiError> {
        self.inner.store.write().map_err(|_| poisoned())
    }

    pub(crate) fn state_source(&self) -> Arc<dyn StateSource> {
        Arc::new(StoreSource(self.inner.store.clone()))
    }

    /// Emits the transitions due by now, if any (the write lock is taken only then).
    pub fn advance_due(&self) -> Result<usize, ApiError> {
        {
            let s = self.read()?;
            let now = s.now(Timestamp::now());
            if s.state().next_due(now).is_none() {
                return Ok(0);
            }
        }
        let mut s = self.write()?;
        let now = s.now(Timestamp::now());
        Ok(s.advance(now)?.len())
    }

    /// Runs `f` on the blocking pool (store access, scripts, password hashing).
    pub(crate) async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&App) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let app = self.clone();
        tokio::task::spawn_blocking(move || f(&app))
            .await
            .map_err(|e| ApiError::internal(format!("the request failed: {e}")))?
    }
}

/// The whole router with its limits: body size, request time; JSON errors under `/api/`,
/// HTML pages elsewhere (with their language and security headers).
pub fn router(app: App) -> Router {
    let limits = app.inner.limits.clone();
    super::api::routes()
        .merge(super::pages::routes())
        .with_state(app.clone())
        .layer(RequestBodyLimitLayer::new(limits.body_bytes))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            limits.request_timeout,
        ))
        .layer(axum::middleware::from_fn(errors_by_path))
        .layer(axum::middleware::from_fn_with_state(
            app,
            super::pages::lang_and_headers,
        ))
}

/// The plain-text errors of the layers and the router (413, 408, 405, ...) become JSON
/// errors under `/api/` and HTML error pages elsewhere.
async fn errors_by_path(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let path = req.uri().path();
    let api = path == "/api" || path.starts_with("/api/");
    let lang = super::pages::request_lang_of(&req);
    let res = next.run(req).await;
    if api {
        json_errors(res).await
    } else {
        super::pages::html_errors(res, lang)
    }
}

/// Advances the clock every second until the runtime stops.
pub fn spawn_ticker(app: App) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(1));
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            match app.blocking(|a| a.advance_due()).await {
                Ok(0) => {}
                Ok(n) => println!("clock: {n} transition(s) emitted"),
                Err(e) => eprintln!("clock: error[{}]: {}", e.code, e.message),
            }
        }
    })
}

fn failure(e: EngineError) -> Failure {
    Failure::from(e)
}

fn io_failure(what: &str, e: impl std::fmt::Display) -> Failure {
    Failure {
        exit: 1,
        code: "io".into(),
        message: format!("{what}: {e}"),
    }
}

/// The demo scale for a new data folder: the city, or `KEZEK_DEMO_SCALE=small` (about
/// 2,000 waiting; for tests and quick tries).
fn demo_scale() -> Scale {
    match std::env::var("KEZEK_DEMO_SCALE").as_deref() {
        Ok("small") => Scale::Small,
        _ => Scale::City,
    }
}

/// Opens the store, or creates it with the default rules and the demo city when the data
/// folder holds none.
fn open_or_create(data: &Path) -> Result<Store, Failure> {
    if Store::exists(data) {
        return Ok(Store::open(data)?);
    }
    println!(
        "no store at {}: creating one with the default rules and the demo city",
        data.display()
    );
    let started = std::time::Instant::now();
    let mut store = Store::init(
        data,
        &RuleSet::default_files(),
        ClockMode::System,
        Timestamp::now(),
        Actor::Operator("serve".into()),
    )?;
    let now = store.now(Timestamp::now());
    store.advance(now)?;
    let summary = demo::build(&mut store, 1, demo_scale(), now)?;
    println!(
        "demo city built in {:.1} s: {} kindergartens, {} applications, {} publications",
        started.elapsed().as_secs_f64(),
        summary.kindergartens,
        summary.applications,
        summary.publications.len()
    );
    Ok(store)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

/// `kezek serve`: opens (or creates) the store, makes the first `admin` account if there
/// is none, and serves until interrupted.
pub fn serve(data: &Path, listen: &str) -> Result<(), Failure> {
    let store = open_or_create(data)?;
    let app = App::new(store, Limits::default()).map_err(failure)?;
    if app.accounts().is_empty() {
        let password = random_password();
        app.accounts()
            .add_user("admin", Role::RulesAdmin, &password)
            .map_err(failure)?;
        println!("created the account 'admin' (role rules_admin) with the password:");
        println!("  {password}");
        println!("  (shown only this once; `kezek admin token admin` prints an API token)");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| io_failure("cannot start the runtime", e))?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| io_failure(&format!("cannot listen on {listen}"), e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| io_failure("cannot read the address", e))?;
        println!("Kezek console listening on http://{addr}/ (API under /api/)");
        let ticker = spawn_ticker(app.clone());
        let served = axum::serve(
            listener,
            router(app.clone()).into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown_signal())
        .await;
        ticker.abort();
        served.map_err(|e| io_failure("server error", e))
    })?;
    // A snapshot on the way out makes the next start quick.
    if let Ok(mut s) = app.inner.store.write() {
        if let Err(e) = s.checkpoint() {
            eprintln!("warning: no snapshot on exit: {e}");
        }
    }
    println!("stopped");
    Ok(())
}
