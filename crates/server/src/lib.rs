//! # gocost-server
//!
//! gocost's HTTP API (`/api/v1`, documented in `API.md`): merged profiles as gzip'd pprof
//! (so `go tool pprof http://…/api/v1/profile?query=…` works), top tables as JSON, series,
//! label names and values, scrape targets' health, and gocost's own `/metrics`. Every error
//! maps to a status code in one place ([`ApiError`]). The server never fetches a URL a
//! request names.
//!
//! It does not scrape or store (it is handed a [`Store`] and a health source).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use gocost_scrape::Health;
use gocost_store::{Selector, Store};
use serde::Deserialize;

/// Where target health comes from (the running scraper; swapped on reload).
pub type HealthSource = Arc<RwLock<Box<dyn Fn() -> Vec<Health> + Send + Sync>>>;

/// Shared server state.
pub struct AppState {
    pub store: Arc<Store>,
    pub health: HealthSource,
    started: Instant,
    requests: AtomicU64,
    query_errors: AtomicU64,
    query_nanos: AtomicU64,
    queries: AtomicU64,
}

impl AppState {
    pub fn new(store: Arc<Store>, health: HealthSource) -> Arc<Self> {
        Arc::new(AppState {
            store,
            health,
            started: Instant::now(),
            requests: AtomicU64::new(0),
            query_errors: AtomicU64::new(0),
            query_nanos: AtomicU64::new(0),
            queries: AtomicU64::new(0),
        })
    }
}

/// An API error and its HTTP status: the one table.
#[derive(Debug)]
pub enum ApiError {
    BadRequest(String),
    NotFound(String),
    Internal(String),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (code, msg) = match self {
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, m),
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, m),
            ApiError::Internal(m) => (StatusCode::INTERNAL_SERVER_ERROR, m),
        };
        (code, axum::Json(serde_json::json!({ "error": msg }))).into_response()
    }
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

/// Parses a time: unix seconds (`1700000000`, `1700000000.5`), RFC 3339, `now` or
/// `now-<duration>` (e.g. `now-1h`).
pub fn parse_time(s: &str, now: i64) -> Result<i64, String> {
    let s = s.trim();
    if s == "now" {
        return Ok(now);
    }
    if let Some(d) = s.strip_prefix("now-") {
        let d = gocost_scrape::parse_duration(d)?;
        return Ok(now - d.as_nanos() as i64);
    }
    if let Ok(secs) = s.parse::<f64>() {
        return Ok((secs * 1e9) as i64);
    }
    s.parse::<jiff::Timestamp>()
        .map(|t| t.as_nanosecond() as i64)
        .map_err(|_| format!("bad time {s:?}: use unix seconds, RFC 3339, now or now-1h"))
}

#[derive(Deserialize)]
struct RangeQuery {
    query: Option<String>,
    from: Option<String>,
    to: Option<String>,
    sample_index: Option<String>,
    nodecount: Option<usize>,
}

fn selection(q: &RangeQuery) -> Result<(Selector, i64, i64), ApiError> {
    let text = q
        .query
        .as_deref()
        .ok_or_else(|| ApiError::BadRequest("missing query=KIND{label=\"v\"}".into()))?;
    let sel = Selector::parse(text).map_err(ApiError::BadRequest)?;
    if sel.kind.is_none() {
        return Err(ApiError::BadRequest(format!(
            "query {text:?} needs a profile kind ({})",
            gocost_store::KINDS.join(", ")
        )));
    }
    let now = now_ns();
    let from =
        parse_time(q.from.as_deref().unwrap_or("now-1h"), now).map_err(ApiError::BadRequest)?;
    let to = parse_time(q.to.as_deref().unwrap_or("now"), now).map_err(ApiError::BadRequest)?;
    if from > to {
        return Err(ApiError::BadRequest("from is after to".into()));
    }
    Ok((sel, from, to))
}

fn merged(st: &AppState, q: &RangeQuery) -> Result<gocost_pprof::Profile, ApiError> {
    let (sel, from, to) = selection(q)?;
    let t = Instant::now();
    let res = st.store.query(&sel, from, to);
    st.queries.fetch_add(1, Ordering::Relaxed);
    st.query_nanos
        .fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
    match res {
        Ok(Some(p)) => Ok(p),
        Ok(None) => Err(ApiError::NotFound(format!(
            "no profiles match {} in the range",
            q.query.as_deref().unwrap_or("")
        ))),
        Err(e) => {
            st.query_errors.fetch_add(1, Ordering::Relaxed);
            Err(ApiError::Internal(e.to_string()))
        }
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))
}

async fn profile(
    State(st): State<Arc<AppState>>,
    Query(q): Query<RangeQuery>,
) -> Result<Response, ApiError> {
    st.requests.fetch_add(1, Ordering::Relaxed);
    let bytes = blocking(move || merged(&st, &q).map(|p| gocost_pprof::encode(&p))).await??;
    let mut r = bytes.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    r.headers_mut().insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"profile.pb.gz\""),
    );
    Ok(r)
}

async fn top(
    State(st): State<Arc<AppState>>,
    Query(q): Query<RangeQuery>,
) -> Result<Response, ApiError> {
    st.requests.fetch_add(1, Ordering::Relaxed);
    let top = blocking(move || {
        let p = merged(&st, &q)?;
        let opts = gocost_report::Options {
            sample_index: q.sample_index.clone(),
            nodecount: Some(q.nodecount.unwrap_or(0)),
            ..Default::default()
        };
        let rpt = gocost_report::Report::new(p, &opts).map_err(|e| ApiError::BadRequest(e.0))?;
        Ok::<_, ApiError>(rpt.top())
    })
    .await??;
    Ok(axum::Json(top).into_response())
}

async fn series(
    State(st): State<Arc<AppState>>,
    Query(q): Query<RangeQuery>,
) -> Result<Response, ApiError> {
    st.requests.fetch_add(1, Ordering::Relaxed);
    let sel = match &q.query {
        Some(t) => Selector::parse(t).map_err(ApiError::BadRequest)?,
        None => Selector {
            kind: None,
            matchers: Vec::new(),
        },
    };
    let out: Vec<serde_json::Value> = st
        .store
        .series()
        .into_iter()
        .filter(|k| sel.matches(k))
        .map(|k| serde_json::json!({ "kind": k.kind, "labels": k.labels, "key": k.to_string() }))
        .collect();
    Ok(axum::Json(out).into_response())
}

async fn labels(State(st): State<Arc<AppState>>) -> Response {
    st.requests.fetch_add(1, Ordering::Relaxed);
    axum::Json(st.store.label_names()).into_response()
}

async fn label_values(State(st): State<Arc<AppState>>, Path(name): Path<String>) -> Response {
    st.requests.fetch_add(1, Ordering::Relaxed);
    axum::Json(st.store.label_values(&name)).into_response()
}

async fn targets(State(st): State<Arc<AppState>>) -> Response {
    st.requests.fetch_add(1, Ordering::Relaxed);
    let h = st.health.read().map(|f| f()).unwrap_or_default();
    axum::Json(h).into_response()
}

fn esc(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

async fn metrics(State(st): State<Arc<AppState>>) -> Response {
    use std::fmt::Write as _;
    let s = st.store.stats();
    let mut o = String::new();
    let mut m = |name: &str, kind: &str, help: &str, v: String| {
        let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}");
    };
    m(
        "gocost_store_series",
        "gauge",
        "Series in the store.",
        s.series.to_string(),
    );
    m(
        "gocost_store_profiles",
        "gauge",
        "Profiles held in the store.",
        s.profiles.to_string(),
    );
    m(
        "gocost_store_profile_bytes",
        "gauge",
        "Bytes of stored profiles.",
        s.profile_bytes.to_string(),
    );
    m(
        "gocost_store_wal_bytes",
        "gauge",
        "Bytes of write-ahead log on disk.",
        s.wal_bytes.to_string(),
    );
    m(
        "gocost_ingest_profiles_total",
        "counter",
        "Profiles appended since start.",
        s.appends_total.to_string(),
    );
    m(
        "gocost_http_requests_total",
        "counter",
        "API requests served.",
        st.requests.load(Ordering::Relaxed).to_string(),
    );
    m(
        "gocost_query_total",
        "counter",
        "Profile queries run.",
        st.queries.load(Ordering::Relaxed).to_string(),
    );
    m(
        "gocost_query_errors_total",
        "counter",
        "Profile queries that failed.",
        st.query_errors.load(Ordering::Relaxed).to_string(),
    );
    m(
        "gocost_query_seconds_total",
        "counter",
        "Time spent in profile queries.",
        format!("{:.6}", st.query_nanos.load(Ordering::Relaxed) as f64 / 1e9),
    );
    m(
        "gocost_uptime_seconds",
        "gauge",
        "Seconds since gocost started.",
        format!("{:.3}", st.started.elapsed().as_secs_f64()),
    );
    let health = st.health.read().map(|f| f()).unwrap_or_default();
    for (name, kind, help) in [
        (
            "gocost_scrape_up",
            "gauge",
            "1 if the last scrape of the target's profile kind succeeded.",
        ),
        (
            "gocost_scrape_duration_seconds",
            "gauge",
            "Duration of the last scrape.",
        ),
        (
            "gocost_scrape_bytes",
            "gauge",
            "Bytes fetched by the last scrape.",
        ),
        ("gocost_scrapes_total", "counter", "Scrapes attempted."),
        (
            "gocost_scrape_failures_total",
            "counter",
            "Scrapes that failed.",
        ),
    ] {
        let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for h in &health {
            let v = match name {
                "gocost_scrape_up" => u64::from(h.up).to_string(),
                "gocost_scrape_duration_seconds" => {
                    format!("{:.3}", h.last_duration_ms as f64 / 1e3)
                }
                "gocost_scrape_bytes" => h.last_bytes.to_string(),
                "gocost_scrapes_total" => h.scrapes_total.to_string(),
                _ => h.failures_total.to_string(),
            };
            let _ = writeln!(
                o,
                "{name}{{job=\"{}\",instance=\"{}\",kind=\"{}\"}} {v}",
                esc(&h.job),
                esc(&h.instance),
                esc(&h.kind)
            );
        }
    }
    let mut r = o.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    r
}

async fn index() -> Response {
    let html = r#"<!doctype html><meta charset="utf-8"><title>gocost</title>
<h1>gocost</h1>
<p>The web UI arrives with a later release. The API is live:</p>
<ul>
<li><a href="/api/v1/series">/api/v1/series</a> — stored series</li>
<li><a href="/api/v1/targets">/api/v1/targets</a> — scrape targets and their health</li>
<li><a href="/api/v1/labels">/api/v1/labels</a> — label names</li>
<li><a href="/metrics">/metrics</a> — gocost's own metrics</li>
</ul>
<p>Read a merged profile with pprof: <code>go tool pprof 'http://HOST/api/v1/profile?query=cpu{job="demo"}&amp;from=now-1h'</code></p>"#;
    let mut r = html.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    r
}

/// The router with every route.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/api/v1/profile", get(profile))
        .route("/api/v1/top", get(top))
        .route("/api/v1/series", get(series))
        .route("/api/v1/labels", get(labels))
        .route("/api/v1/label/{name}/values", get(label_values))
        .route("/api/v1/targets", get(targets))
        .route("/metrics", get(metrics))
        .with_state(state)
}
