//! # gocost-server
//!
//! gocost's HTTP API (`/api/v1`, documented in `API.md`): merged profiles as gzip'd pprof
//! (so `go tool pprof http://…/api/v1/profile?query=…` works), top tables as JSON, series,
//! label names and values, scrape targets' health, and gocost's own `/metrics`. The server
//! never fetches a URL a request names. It does not scrape or store (it is handed a
//! [`gocost_store::Store`], as an [`AsyncStore`], and a health source).
//!
//! Where things are:
//!
//! - this file: the shared state ([`AppState`]) and the [`router`] that assembles the app;
//! - `routes/`: one file per area of routes (its `mod.rs` lists which route is where);
//! - `errors.rs`: [`ApiError`], the one error → status table, and the JSON error shape;
//! - `query.rs`: how queries run (concurrency, timeout and cancellation, budgets);
//! - `select.rs`: a request's selection and per-target walks over the store;
//! - `insights.rs`, `regress.rs`: the analyses per target (routes, `/metrics`, alerts);
//! - `alerts.rs`: alert rules evaluated on an interval, webhook delivery;
//! - `access.rs`: auth, tenancy and push limits (one middleware); `listen.rs`: the listener;
//! - `prom.rs`: the Prometheus text writer; `time.rs`: times in requests.

mod access;
pub mod alerts;
pub mod cluster;
pub mod errors;
mod grpc;
mod insights;
pub mod listen;
mod prom;
mod query;
mod regress;
mod routes;
mod select;
mod time;
pub mod trace_json;

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use axum::Router;
use axum::routing::{get, post};
use gocost_scrape::Health;
use gocost_store::AsyncStore;

pub use errors::ApiError;
pub use query::{
    QUERY_TIMEOUT, QueryBudget, default_query_concurrency, set_after_query, set_query_budget,
    set_query_concurrency, set_query_timeout,
};
pub use time::parse_time;

use routes::{
    alerts as alert_routes, flame, insights as insight_routes, loadruns, metrics, profiles, push,
    series, timeline, traces, ui,
};

/// Where target health comes from (the running scraper; swapped on reload).
pub type HealthSource = Arc<RwLock<Box<dyn Fn() -> Vec<Health> + Send + Sync>>>;

/// Where the targets relabelling dropped come from (the running scraper; swapped on reload).
pub type DroppedSource = Box<dyn Fn() -> Vec<gocost_scrape::DroppedTarget> + Send + Sync>;

/// Shared server state.
pub struct AppState {
    /// The store, reached only from blocking work (`query::blocking` lends it as `Lent`).
    pub store: AsyncStore,
    pub health: HealthSource,
    /// `/api/v1/targets?state=dropped` (see [`AppState::set_dropped_source`]).
    pub(crate) dropped: RwLock<DroppedSource>,
    pub(crate) started: Instant,
    pub(crate) requests: AtomicU64,
    pub(crate) query_errors: AtomicU64,
    pub(crate) query_nanos: AtomicU64,
    pub(crate) queries: AtomicU64,
    /// `/metrics`' insight gauges and when they were computed (`routes/metrics.rs`).
    pub(crate) insight_metrics: std::sync::Mutex<Option<(Instant, String)>>,
    /// A refresh of them is running behind a `/metrics` answer.
    pub(crate) insight_refreshing: std::sync::atomic::AtomicBool,
    /// Prices for `/api/v1/cost` and the cost gauges (the config's `[cost]`).
    cost_rates: RwLock<gocost_insights::cost::Rates>,
    /// Alert rules and their state (the config's `[[alert]]`; see `alerts::run`).
    pub alerts: alerts::Alerts,
    /// Tokens, tenancy and push limits (the config's `[auth]`, `[tenancy]`, `[limits]`).
    pub access: access::Access,
    /// Open, refused and timed-out connections (see [`listen`]).
    pub conns: listen::ConnStats,
    /// How long a push's body may take to arrive (`[server] body_timeout`).
    pub body_timeout: RwLock<std::time::Duration>,
}

impl AppState {
    pub fn new(store: impl Into<AsyncStore>, health: HealthSource) -> Arc<Self> {
        Arc::new(AppState {
            store: store.into(),
            health,
            dropped: RwLock::new(Box::new(Vec::new)),
            started: Instant::now(),
            requests: AtomicU64::new(0),
            query_errors: AtomicU64::new(0),
            query_nanos: AtomicU64::new(0),
            queries: AtomicU64::new(0),
            insight_metrics: std::sync::Mutex::new(None),
            insight_refreshing: std::sync::atomic::AtomicBool::new(false),
            cost_rates: RwLock::new(Default::default()),
            alerts: alerts::Alerts::default(),
            access: access::Access::default(),
            conns: listen::ConnStats::default(),
            body_timeout: RwLock::new(listen::ListenOptions::default().body_timeout),
        })
    }

    /// Sets where the dropped targets come from (the running scraper).
    pub fn set_dropped_source(&self, f: DroppedSource) {
        if let Ok(mut g) = self.dropped.write() {
            *g = f;
        }
    }

    /// Sets the prices cost is computed with (from the config's `[cost]`; reloadable).
    pub fn set_cost_rates(&self, r: gocost_insights::cost::Rates) {
        if let Ok(mut g) = self.cost_rates.write() {
            *g = r;
        }
    }

    pub(crate) fn cost_rates(&self) -> gocost_insights::cost::Rates {
        self.cost_rates
            .read()
            .map(|g| g.clone())
            .unwrap_or_default()
    }
}

/// The router with every route.
pub fn router(state: Arc<AppState>) -> Router {
    // Bodies are read whole by `listen::read_body` under each route's cap
    // (`Access::body_cap`); axum's own limit is lifted to the largest of them.
    let caps = [
        state.access.body_cap(access::TRACE_UPLOAD).0,
        state.access.max_body(),
    ];
    let max_body = usize::try_from(caps.into_iter().max().unwrap_or(0)).unwrap_or(usize::MAX);
    let pushes = Router::new()
        .route(access::TRACE_UPLOAD, get(traces::list).post(traces::upload))
        .route(
            access::LOAD_RUNS,
            get(loadruns::list).post(loadruns::upload),
        )
        .route("/ingest", post(push::ingest))
        .route("/pyroscope/ingest", post(push::ingest))
        .route("/push.v1.PusherService/Push", post(push::push))
        .route(push::OTLP_PROFILES, post(push::otlp))
        .route(push::OTLP_GRPC_EXPORT, post(push::otlp_grpc))
        .layer(axum::extract::DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            listen::read_body,
        ));
    Router::new()
        .merge(pushes)
        .route("/", get(ui::index))
        .route("/ui/{file}", get(ui::file))
        .route("/api/v1/profile", get(profiles::profile))
        .route("/api/v1/top", get(profiles::top))
        .route("/api/v1/tags", get(profiles::tags))
        .route("/api/v1/graph", get(profiles::graph))
        .route("/api/v1/peek", get(profiles::peek))
        .route("/api/v1/flame", get(flame::flame))
        .route("/api/v1/timeline", get(timeline::timeline))
        .route("/api/v1/diff", get(profiles::diff))
        .route("/api/v1/series", get(series::series))
        .route("/api/v1/runtime", get(series::runtime))
        .route("/api/v1/labels", get(series::labels))
        .route("/api/v1/label/{name}/values", get(series::label_values))
        .route("/api/v1/targets", get(series::targets))
        .route("/api/v1/leaks", get(insight_routes::leaks))
        .route("/api/v1/heap_growth", get(insight_routes::heap_growth))
        .route("/api/v1/regressions", get(insight_routes::regressions))
        .route("/api/v1/cost", get(insight_routes::cost))
        .route("/api/v1/gc", get(insight_routes::gc))
        .route("/api/v1/alerts", get(alert_routes::list))
        .route("/api/v1/loadruns/{id}", get(loadruns::get))
        .route("/api/v1/loadruns/{id}/report", get(loadruns::report))
        .route("/api/v1/trace/{id}", get(traces::download))
        .route("/api/v1/trace/{id}/summary", get(traces::summary))
        .route("/api/v1/trace/{id}/timeline", get(traces::timeline))
        .route("/metrics", get(metrics::metrics))
        .route(cluster::HEAD_ROUTE, get(cluster::head))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            access::guard,
        ))
        .layer(axum::middleware::from_fn(errors::json_errors))
        .layer(axum::middleware::from_fn(cluster::mark_partial))
        .layer(axum::middleware::from_fn(grpc::errors))
        .with_state(state)
}
