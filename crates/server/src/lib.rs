//! # gocost-server
//!
//! gocost's HTTP API (`/api/v1`, documented in `API.md`): merged profiles as gzip'd pprof
//! (so `go tool pprof http://…/api/v1/profile?query=…` works), top tables as JSON, series,
//! label names and values, scrape targets' health, and gocost's own `/metrics`. Every error
//! maps to a status code in one place ([`ApiError`]). The server never fetches a URL a
//! request names.
//!
//! It does not scrape or store (it is handed a [`Store`] and a health source).

mod access;
pub mod alerts;
pub mod errors;
mod insights;
pub mod listen;
mod push;
mod regress;
mod ui;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use gocost_scrape::Health;
use gocost_store::{Agg, Selector, Store};
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
    /// `/metrics`' leak gauges and when they were computed (see `insights::insight_metrics`).
    insight_metrics: std::sync::Mutex<Option<(Instant, String)>>,
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
    pub fn new(store: Arc<Store>, health: HealthSource) -> Arc<Self> {
        Arc::new(AppState {
            store,
            health,
            started: Instant::now(),
            requests: AtomicU64::new(0),
            query_errors: AtomicU64::new(0),
            query_nanos: AtomicU64::new(0),
            queries: AtomicU64::new(0),
            insight_metrics: std::sync::Mutex::new(None),
            cost_rates: RwLock::new(Default::default()),
            alerts: alerts::Alerts::default(),
            access: access::Access::default(),
            conns: listen::ConnStats::default(),
            body_timeout: RwLock::new(listen::ListenOptions::default().body_timeout),
        })
    }

    /// Sets the prices cost is computed with (from the config's `[cost]`; reloadable).
    pub fn set_cost_rates(&self, r: gocost_insights::cost::Rates) {
        if let Ok(mut g) = self.cost_rates.write() {
            *g = r;
        }
    }

    fn cost_rates(&self) -> gocost_insights::cost::Rates {
        self.cost_rates
            .read()
            .map(|g| g.clone())
            .unwrap_or_default()
    }
}

/// An API error and its HTTP status: the one table.
#[derive(Debug)]
pub enum ApiError {
    BadRequest(String),
    NotFound(String),
    Unavailable(String),
    /// Too many queries at once: 503 with `Retry-After`.
    Busy(String),
    Internal(String),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (code, msg) = match self {
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, m),
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, m),
            ApiError::Unavailable(m) => (StatusCode::SERVICE_UNAVAILABLE, m),
            ApiError::Internal(m) => (StatusCode::INTERNAL_SERVER_ERROR, m),
            ApiError::Busy(m) => {
                let mut r = (
                    StatusCode::SERVICE_UNAVAILABLE,
                    axum::Json(serde_json::json!({ "error": m })),
                )
                    .into_response();
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                return r;
            }
        };
        (code, axum::Json(serde_json::json!({ "error": msg }))).into_response()
    }
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

/// Parses a time, strictly: unix seconds (`1700000000`, `1700000000.5`, `-1`: digits with an
/// optional fraction, no exponent, NaN or infinity), RFC 3339 over the years Go prints
/// (`0001-01-01T00:00:00Z` … `9999-12-31T23:59:59Z`; times outside the nanosecond range of
/// 1677…2262 are clamped to its ends, where no profile can be), `now` or `now-<duration>`
/// (e.g. `now-1h`). Anything else, and unix seconds outside that range, is an error.
pub fn parse_time(s: &str, now: i64) -> Result<i64, String> {
    let s = s.trim();
    let shown: String = s.chars().take(64).collect();
    let range =
        || format!("time {shown:?} is out of range: unix seconds must lie between 1677 and 2262");
    if s == "now" {
        return Ok(now);
    }
    if let Some(d) = s.strip_prefix("now-") {
        let d = gocost_scrape::parse_duration(d)?;
        let ns = i64::try_from(d.as_nanos()).map_err(|_| range())?;
        return now.checked_sub(ns).ok_or_else(range);
    }
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    let (sign, unsigned) = match (s.strip_prefix('-'), s.strip_prefix('+')) {
        (Some(r), _) => (-1i128, r),
        (_, Some(r)) => (1, r),
        _ => (1, s),
    };
    let (int, frac) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    if digits(int) && (frac.is_empty() || digits(frac)) && !unsigned.ends_with('.') {
        if int.len() > 12 {
            return Err(range());
        }
        let secs: i128 = int.parse().map_err(|_| range())?;
        let mut nanos: i128 = 0;
        for (i, b) in frac.bytes().take(9).enumerate() {
            nanos += i128::from(b - b'0') * 10i128.pow(8 - i as u32);
        }
        let ns = sign * (secs * 1_000_000_000 + nanos);
        return i64::try_from(ns).map_err(|_| range());
    }
    match rfc3339_ns(s) {
        Some(ns) => Ok(ns.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64),
        None => Err(format!(
            "bad time {shown:?}: use unix seconds, RFC 3339, now or now-1h"
        )),
    }
}

/// RFC 3339 (`YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`, years 0000–9999, `T` or a space, `Z`
/// in either case) as nanoseconds since the epoch, over the whole range (wider than i64).
fn rfc3339_ns(s: &str) -> Option<i128> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i128> {
        let d = b.get(r)?;
        if d.is_empty() || !d.iter().all(u8::is_ascii_digit) {
            return None;
        }
        Some(d.iter().fold(0i128, |a, &c| a * 10 + i128::from(c - b'0')))
    };
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let days_in = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&mo)
        || d < 1
        || d > days_in[(mo - 1) as usize]
        || h > 23
        || mi > 59
        || sec > 59
    {
        return None;
    }
    let mut i = 19;
    let mut nanos = 0i128;
    if b[i] == b'.' {
        let start = i + 1;
        i = start;
        while i < b.len() && b[i].is_ascii_digit() {
            if i - start < 9 {
                nanos += i128::from(b[i] - b'0') * 10i128.pow(8 - (i - start) as u32);
            }
            i += 1;
        }
        if i == start {
            return None;
        }
    }
    let offset = match b.get(i..)? {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let (oh, om) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
            if oh > 23 || om > 59 {
                return None;
            }
            let o = (oh * 60 + om) * 60;
            if *sign == b'-' { -o } else { o }
        }
        _ => return None,
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let yy = if mo <= 2 { y - 1 } else { y };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec - offset;
    Some(secs * 1_000_000_000 + nanos)
}

#[derive(Deserialize, Default)]
struct RangeQuery {
    query: Option<String>,
    from: Option<String>,
    to: Option<String>,
    sample_index: Option<String>,
    nodecount: Option<usize>,
    /// Timeline bucket width (a duration such as `1m`); default: the range / 120.
    step: Option<String>,
    /// Diff: the base selection (default: `query`) and its range.
    base_query: Option<String>,
    base_from: Option<String>,
    base_to: Option<String>,
    /// Flame: `json` (default), `svg`, `folded` or `speedscope`.
    format: Option<String>,
    /// Flame SVG: `1`/`true` for an icicle graph (root at the top).
    inverted: Option<String>,
    /// pprof's refine options, as `go tool pprof -focus=…` etc.: regexps over frames
    /// (`focus`, `ignore`, `hide`, `show`, `show_from`, `prune_from`), label filters
    /// (`tagfocus`, `tagignore`), `granularity` (functions, filefunctions, files, lines,
    /// addresses), `noinlines`, and for top `cum` and `nodefraction`.
    #[serde(flatten)]
    refine: Refine,
    /// Timeline: break the totals down by this pprof label's values (`series`).
    by: Option<String>,
    /// How a series' profiles over the range combine: `mean` (the default for goroutine,
    /// goroutineleak and heap: snapshots are averaged per series, series add up), `latest`
    /// (each series' last profile) or `sum` (pprof's plain merge).
    agg: Option<String>,
}

/// pprof's refine options in a query string.
#[derive(Deserialize, Default, Clone)]
struct Refine {
    focus: Option<String>,
    ignore: Option<String>,
    hide: Option<String>,
    show: Option<String>,
    show_from: Option<String>,
    prune_from: Option<String>,
    tagfocus: Option<String>,
    tagignore: Option<String>,
    granularity: Option<String>,
    noinlines: Option<String>,
    cum: Option<String>,
    /// A string: numbers inside a flattened struct arrive as text.
    nodefraction: Option<String>,
}

fn flag(v: &Option<String>) -> bool {
    matches!(v.as_deref(), Some("" | "1" | "true"))
}

impl Refine {
    /// Whether any option changes the profile itself (not only how a report sorts it).
    fn changes_profile(&self) -> bool {
        [
            &self.focus,
            &self.ignore,
            &self.hide,
            &self.show,
            &self.show_from,
            &self.prune_from,
            &self.tagfocus,
            &self.tagignore,
            &self.granularity,
        ]
        .iter()
        .any(|v| v.as_deref().is_some_and(|v| !v.is_empty()))
            || flag(&self.noinlines)
    }
}

/// The `agg` of a request, or the default: [`Agg::Mean`] (it only changes snapshot columns,
/// so it is pprof's sum for every other kind).
fn agg_of(q: &RangeQuery) -> Result<Agg, ApiError> {
    q.agg
        .as_deref()
        .map_or(Ok(Agg::Mean), Agg::parse)
        .map_err(ApiError::BadRequest)
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
    let (from, to) = time_range(q.from.as_deref(), q.to.as_deref())?;
    Ok((sel, from, to))
}

/// `from`/`to` parameters (defaults `now-1h` and `now`), checked to be in order.
fn time_range(from: Option<&str>, to: Option<&str>) -> Result<(i64, i64), ApiError> {
    let now = now_ns();
    let from = parse_time(from.unwrap_or("now-1h"), now).map_err(ApiError::BadRequest)?;
    let to = parse_time(to.unwrap_or("now"), now).map_err(ApiError::BadRequest)?;
    if from > to {
        return Err(ApiError::BadRequest("from is after to".into()));
    }
    Ok((from, to))
}

fn merged(st: &AppState, q: &RangeQuery) -> Result<gocost_pprof::Profile, ApiError> {
    let (sel, from, to) = selection(q)?;
    let agg = agg_of(q)?;
    let t = Instant::now();
    let res = st.store.query_agg(&sel, from, to, agg);
    st.queries.fetch_add(1, Ordering::Relaxed);
    st.query_nanos
        .fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
    match res {
        Ok(Some(p)) => Ok(p),
        // The selector is not echoed: with tenancy it holds the tenant's reserved matcher.
        Ok(None) => Err(ApiError::NotFound(format!(
            "no {} profiles match the selector in the range",
            sel.kind.as_deref().unwrap_or("")
        ))),
        Err(e) => {
            st.query_errors.fetch_add(1, Ordering::Relaxed);
            Err(ApiError::Internal(e.to_string()))
        }
    }
}

/// Nothing in the range is an answer, not a failure: JSON reports answer 200 with their
/// empty shape and the reason in `empty` (a pprof download, which must be a profile, and
/// text reports still answer 404).
fn empty_answer(reason: String, mut shape: serde_json::Value) -> Response {
    shape["empty"] = serde_json::Value::String(reason);
    axum::Json(shape).into_response()
}

/// [`merged`] for the base side of a diff: "nothing matched" says it was the base.
fn merged_base(st: &AppState, q: &RangeQuery) -> Result<gocost_pprof::Profile, ApiError> {
    merged(st, q).map_err(|e| match e {
        ApiError::NotFound(m) => ApiError::NotFound(format!("base: {m}")),
        e => e,
    })
}

/// How long one query may take by default before the client gets 503 and its work is
/// cancelled (`[server] query_timeout`).
pub const QUERY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

static QUERY_TIMEOUT_MS: AtomicU64 = AtomicU64::new(QUERY_TIMEOUT.as_millis() as u64);
static QUERIES_CANCELLED: AtomicU64 = AtomicU64::new(0);

static QUERIES_REFUSED: AtomicU64 = AtomicU64::new(0);
static QUERIES_RUNNING: AtomicU64 = AtomicU64::new(0);
/// How long a query waits for a free slot before it is refused.
const QUERY_QUEUE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);
type Slots = (usize, Arc<tokio::sync::Semaphore>);
static QUERY_SLOTS: RwLock<Option<Slots>> = RwLock::new(None);

/// The default number of queries that run at once: the machine's cores (at least 2).
pub fn default_query_concurrency() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get().max(2))
}

/// Sets how many queries may run at once (the config's `[server] max_concurrent_queries`).
/// Each query's memory is bounded by what it reads, so this bounds the memory of a storm
/// of them: others wait up to 5 s for a slot, then get 503 with `Retry-After`.
pub fn set_query_concurrency(n: usize) {
    let n = n.max(1);
    if let Ok(mut g) = QUERY_SLOTS.write() {
        *g = Some((n, Arc::new(tokio::sync::Semaphore::new(n))));
    }
}

fn query_slots() -> Slots {
    if let Ok(g) = QUERY_SLOTS.read()
        && let Some(s) = g.as_ref()
    {
        return s.clone();
    }
    set_query_concurrency(default_query_concurrency());
    QUERY_SLOTS
        .read()
        .ok()
        .and_then(|g| g.clone())
        .unwrap_or_else(|| (2, Arc::new(tokio::sync::Semaphore::new(2))))
}

/// Sets how long a query may run (the config's `[server] query_timeout`).
pub fn set_query_timeout(d: std::time::Duration) {
    QUERY_TIMEOUT_MS.store(d.as_millis().max(1) as u64, Ordering::Relaxed);
}

/// Runs query work on a blocking thread. Past the query timeout the client gets 503 and the
/// work is cancelled: the merge and report loops check a flag ([`gocost_pprof::cancel`]) and
/// unwind, so an abandoned query does not burn a core to its end.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    let (n, slots) = query_slots();
    let Ok(Ok(permit)) = tokio::time::timeout(QUERY_QUEUE_WAIT, slots.acquire_owned()).await else {
        QUERIES_REFUSED.fetch_add(1, Ordering::Relaxed);
        return Err(ApiError::Busy(format!(
            "too many queries at once ({n} run at a time: the max_concurrent_queries setting in [server]); retry shortly"
        )));
    };
    let flag = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let f_flag = flag.clone();
    let mut h = tokio::task::spawn_blocking(move || {
        // The slot is held until the work ends, cancelled or not.
        let _permit = permit;
        QUERIES_RUNNING.fetch_add(1, Ordering::Relaxed);
        struct Done;
        impl Drop for Done {
            fn drop(&mut self) {
                QUERIES_RUNNING.fetch_sub(1, Ordering::Relaxed);
            }
        }
        let _done = Done;
        gocost_pprof::cancel::with_flag(f_flag, f)
    });
    let timeout = std::time::Duration::from_millis(QUERY_TIMEOUT_MS.load(Ordering::Relaxed));
    let unavailable = || {
        ApiError::Unavailable(format!(
            "query took longer than {timeout:?} (the query_timeout setting in [server]) and was stopped; narrow the range or the selector"
        ))
    };
    match tokio::time::timeout(timeout, &mut h).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) if e.is_panic() => {
            if gocost_pprof::cancel::is_cancelled(&*e.into_panic()) {
                Err(unavailable())
            } else {
                Err(ApiError::Internal(
                    "the query failed (a bug: see the log)".into(),
                ))
            }
        }
        Ok(Err(e)) => Err(ApiError::Internal(e.to_string())),
        Err(_) => {
            flag.store(true, Ordering::Relaxed);
            // Counted when the work has actually stopped.
            tokio::spawn(async move {
                if let Err(e) = h.await
                    && e.is_panic()
                    && gocost_pprof::cancel::is_cancelled(&*e.into_panic())
                {
                    QUERIES_CANCELLED.fetch_add(1, Ordering::Relaxed);
                }
            });
            Err(unavailable())
        }
    }
}

async fn profile(
    State(st): State<Arc<AppState>>,
    Query(q): Query<RangeQuery>,
) -> Result<Response, ApiError> {
    st.requests.fetch_add(1, Ordering::Relaxed);
    let bytes = blocking(move || {
        let p = if q.base_from.is_some() || q.base_to.is_some() || q.base_query.is_some() {
            diff_profile(&st, &q)?
        } else {
            merged(&st, &q)?
        };
        // Refined, it is the profile pprof's report would read (as `go tool pprof -proto`
        // with the same options writes it).
        let p = if q.refine.changes_profile() {
            report(p, &q)?.prof
        } else {
            p
        };
        Ok::<_, ApiError>(gocost_pprof::encode(&p))
    })
    .await??;
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
    let text = wants_text(&q)?;
    let top = match blocking(move || Ok::<_, ApiError>(report(merged(&st, &q)?, &q)?.top())).await?
    {
        Err(ApiError::NotFound(reason)) if !text => {
            return Ok(empty_answer(
                reason,
                serde_json::json!({ "header": [], "rows": [], "total": 0 }),
            ));
        }
        r => r?,
    };
    if text {
        // A String answers as text/plain; charset=utf-8.
        return Ok(top.to_text().into_response());
    }
    Ok(axum::Json(top).into_response())
}

/// Whether a report is asked for as pprof's text (`format=text`) rather than JSON.
fn wants_text(q: &RangeQuery) -> Result<bool, ApiError> {
    match q.format.as_deref() {
        None | Some("json") => Ok(false),
        Some("text") => Ok(true),
        Some(f) => Err(ApiError::BadRequest(format!(
            "unknown format {f:?}: use json or text"
        ))),
    }
}

/// `/api/v1/tags`: the pprof labels of the range's samples (`go tool pprof -tags`): per key
/// its values' shares. `format=text`: pprof's text.
async fn tags(
    State(st): State<Arc<AppState>>,
    Query(q): Query<RangeQuery>,
) -> Result<Response, ApiError> {
    st.requests.fetch_add(1, Ordering::Relaxed);
    let text = wants_text(&q)?;
    let body = blocking(move || {
        let p = match merged(&st, &q) {
            Err(ApiError::NotFound(reason)) if !text => {
                let shape = serde_json::json!({ "keys": [], "total": 0 });
                return Ok(empty_answer(reason, shape));
            }
            p => p?,
        };
        let rpt = report(p, &q)?;
        Ok::<_, ApiError>(if text {
            rpt.tags_text().into_response()
        } else {
            axum::Json(serde_json::json!({
                "sample_type": rpt.sample_type,
                "unit": rpt.sample_unit,
                "total": rpt.total,
                "keys": rpt.tags(),
            }))
            .into_response()
        })
    })
    .await??;
    Ok(body)
}

fn report(p: gocost_pprof::Profile, q: &RangeQuery) -> Result<gocost_report::Report, ApiError> {
    let r = &q.refine;
    let granularity = match r.granularity.as_deref().filter(|g| !g.is_empty()) {
        Some(g) => g.parse().map_err(ApiError::BadRequest)?,
        None => gocost_report::Granularity::Functions,
    };
    let defaults = gocost_report::Options::default();
    let nodefraction = match r.nodefraction.as_deref().filter(|v| !v.is_empty()) {
        Some(v) => v
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite() && *f >= 0.0)
            .ok_or_else(|| ApiError::BadRequest(format!("bad nodefraction {v:?}")))?,
        None => defaults.nodefraction,
    };
    let opts = gocost_report::Options {
        sample_index: q.sample_index.clone(),
        nodecount: Some(q.nodecount.unwrap_or(0)),
        focus: r.focus.clone(),
        ignore: r.ignore.clone(),
        hide: r.hide.clone(),
        show: r.show.clone(),
        show_from: r.show_from.clone(),
        prune_from: r.prune_from.clone(),
        tagfocus: r.tagfocus.clone(),
        tagignore: r.tagignore.clone(),
        granularity,
        noinlines: flag(&r.noinlines),
        cum: flag(&r.cum),
        nodefraction,
        ..defaults
    };
    gocost_report::Report::new(p, &opts).map_err(|e| ApiError::BadRequest(e.0))
}

/// The flame graph of the merged profile. `format=json` (default): a flat, depth-first node
/// list (children sorted by name): `names[i]`, and per node `[name index, inline 0/1, parent
/// index, total, self]`; node 0 is the root. With `base_from` and `base_to` (and optionally
/// `base_query`) a diff: the union of both trees, per node `[…, base total, base self]`, and
/// `base_total`. `format=svg|folded|speedscope`: the `gocost flame` files.
async fn flame(
    State(st): State<Arc<AppState>>,
    Query(q): Query<RangeQuery>,
) -> Result<Response, ApiError> {
    st.requests.fetch_add(1, Ordering::Relaxed);
    let format = q.format.clone().unwrap_or_else(|| "json".into());
    if !matches!(format.as_str(), "json" | "svg" | "folded" | "speedscope") {
        return Err(ApiError::BadRequest(format!(
            "unknown format {format:?}: use json, svg, folded or speedscope"
        )));
    }
    let is_diff = q.base_from.is_some() || q.base_to.is_some() || q.base_query.is_some();
    if is_diff && format != "json" {
        return Err(ApiError::BadRequest(
            "a diff flame graph is only available as format=json".into(),
        ));
    }
    let speedscope = format == "speedscope";
    let body = blocking(move || {
        let p = match merged(&st, &q) {
            Err(ApiError::NotFound(reason)) if format == "json" && !is_diff => {
                let shape = serde_json::json!({
                    "names": [""], "nodes": [[0, 0, -1, 0, 0]], "total": 0,
                    "sample_type": "", "unit": "", "empty": reason,
                });
                return Ok(("application/json", shape.to_string().into_bytes()));
            }
            p => p?,
        };
        let rpt = report(p, &q)?;
        let tree = gocost_flame::tree_from_report(&rpt);
        if is_diff {
            let base_rpt = report(merged_base(&st, &base_of(&q)?)?, &q)?;
            if base_rpt.sample_type != rpt.sample_type {
                return Err(ApiError::BadRequest(format!(
                    "base sample type {:?} differs from {:?}",
                    base_rpt.sample_type, rpt.sample_type
                )));
            }
            let base = gocost_flame::tree_from_report(&base_rpt);
            let d = gocost_flame::DiffTree::new(&tree, &base);
            let (order, parents) = flame_order(&d.tree);
            let nodes: Vec<[i64; 7]> = order
                .iter()
                .zip(parents)
                .map(|(&n, parent)| {
                    let node = &d.tree.nodes[n as usize];
                    [
                        i64::from(node.name),
                        i64::from(node.inline),
                        parent,
                        node.total,
                        node.self_value,
                        d.base_total[n as usize],
                        d.base_self[n as usize],
                    ]
                })
                .collect();
            let json = serde_json::json!({
                "sample_type": rpt.sample_type,
                "unit": rpt.sample_unit,
                "total": rpt.total,
                "base_total": base_rpt.total,
                "names": d.tree.names,
                "nodes": nodes,
            });
            return Ok::<_, ApiError>(("application/json", json.to_string().into_bytes()));
        }
        let mut buf = Vec::new();
        let unit = rpt.sample_unit.clone();
        let written = match format.as_str() {
            "svg" => {
                let fmt = |v: i64| gocost_pprof::units::label(v, &unit);
                let title = q.query.clone().unwrap_or_default();
                let opts = gocost_flame::Options {
                    title,
                    subtitle: format!("Type: {} · Total: {}", rpt.sample_type, fmt(rpt.total)),
                    format_value: &fmt,
                    inverted: matches!(q.inverted.as_deref(), Some("1" | "true")),
                    ..gocost_flame::Options::default()
                };
                gocost_flame::write_svg(&tree, &opts, &mut buf).map(|_| "image/svg+xml")
            }
            "folded" => {
                gocost_flame::write_folded(&tree, &mut buf).map(|_| "text/plain; charset=utf-8")
            }
            "speedscope" => {
                let su = match gocost_pprof::units::scale(1, &unit, "auto").1.as_str() {
                    "ns" | "us" | "ms" | "s" | "hrs" => gocost_flame::SpeedscopeUnit::Nanoseconds,
                    "B" | "kB" | "MB" | "GB" | "TB" | "PB" => gocost_flame::SpeedscopeUnit::Bytes,
                    _ => gocost_flame::SpeedscopeUnit::None,
                };
                gocost_flame::write_speedscope(&tree, &rpt.sample_type, su, &mut buf)
                    .map(|_| "application/json")
            }
            _ => {
                let (order, parents) = flame_order(&tree);
                let nodes: Vec<[i64; 5]> = order
                    .iter()
                    .zip(parents)
                    .map(|(&n, parent)| {
                        let node = &tree.nodes[n as usize];
                        [
                            i64::from(node.name),
                            i64::from(node.inline),
                            parent,
                            node.total,
                            node.self_value,
                        ]
                    })
                    .collect();
                let json = serde_json::json!({
                    "sample_type": rpt.sample_type,
                    "unit": rpt.sample_unit,
                    "total": rpt.total,
                    "names": tree.names,
                    "nodes": nodes,
                });
                serde_json::to_writer(&mut buf, &json)
                    .map_err(std::io::Error::other)
                    .map(|_| "application/json")
            }
        }
        .map_err(|e| ApiError::Internal(e.to_string()))?;
        Ok((written, buf))
    })
    .await??;
    let (content_type, bytes) = body;
    let mut r = bytes.into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    let file = match content_type {
        "image/svg+xml" => Some("attachment; filename=\"flame.svg\""),
        "text/plain; charset=utf-8" => Some("attachment; filename=\"flame.folded\""),
        _ if speedscope => Some("attachment; filename=\"flame.speedscope.json\""),
        _ => None,
    };
    if let Some(f) = file {
        r.headers_mut()
            .insert(header::CONTENT_DISPOSITION, HeaderValue::from_static(f));
    }
    Ok(r)
}

/// The nodes of a tree depth-first, children sorted by name (node 0 the root), and each
/// one's parent's position in that order (-1 for the root).
fn flame_order(tree: &gocost_flame::Tree) -> (Vec<u32>, Vec<i64>) {
    let mut order = Vec::with_capacity(tree.nodes.len());
    let mut parents = Vec::with_capacity(tree.nodes.len());
    let mut index = vec![0usize; tree.nodes.len()];
    let mut stack = vec![0u32];
    while let Some(n) = stack.pop() {
        index[n as usize] = order.len();
        parents.push(if n == 0 {
            -1
        } else {
            index[tree.nodes[n as usize].parent as usize] as i64
        });
        order.push(n);
        stack.extend(tree.sorted_children(n).into_iter().rev());
    }
    (order, parents)
}

/// The base side of a diff request: `base_query` (default `query`) over
/// `base_from..base_to`, both required.
fn base_of(q: &RangeQuery) -> Result<RangeQuery, ApiError> {
    if q.base_from.is_none() || q.base_to.is_none() {
        return Err(ApiError::BadRequest(
            "diff needs base_from and base_to".into(),
        ));
    }
    Ok(RangeQuery {
        query: q.base_query.clone().or_else(|| q.query.clone()),
        from: q.base_from.clone(),
        to: q.base_to.clone(),
        agg: q.agg.clone(),
        refine: q.refine.clone(),
        ..RangeQuery::default()
    })
}

/// Totals per time bucket of the selected profiles (for the default or given sample type).
/// Snapshot columns (goroutines, heap in use) are each series' mean in the bucket, summed
/// over series; with `agg=sum`, plain sums.
async fn timeline(
    State(st): State<Arc<AppState>>,
    Query(q): Query<RangeQuery>,
) -> Result<Response, ApiError> {
    st.requests.fetch_add(1, Ordering::Relaxed);
    let body = blocking(move || {
        let (sel, from, to) = selection(&q)?;
        let step = match &q.step {
            Some(s) => gocost_scrape::parse_duration(s)
                .map_err(ApiError::BadRequest)?
                .as_nanos() as i64,
            None => ((to - from) / 120).max(1_000_000_000),
        }
        .max(1_000_000);
        if (to - from) / step > 10_000 {
            return Err(ApiError::BadRequest(
                "step too small for the range (at most 10000 points)".into(),
            ));
        }
        let agg = agg_of(&q)?;
        let by = q.by.clone().filter(|b| !b.is_empty());
        // (Bucket start, series) → (Σ value per value of the `by` label ("" without one or
        // without `by`), profiles merged).
        type Cell = (BTreeMap<String, i64>, u64);
        let mut cells: BTreeMap<(i64, gocost_store::SeriesKey), Cell> = BTreeMap::new();
        // Whether the column is a snapshot (averaged per series unless agg=sum).
        let (mut stype, mut unit, mut snapshot) = (String::new(), String::new(), false);
        let wanted = q.sample_index.as_deref().unwrap_or("");
        let mut bad_index = None;
        // Refined, each profile goes through pprof's filters first (the report's sample
        // values, not its total, which is from before filtering).
        let refined = q.refine.changes_profile();
        let labels = by.is_some() || q.refine.tagfocus.is_some() || q.refine.tagignore.is_some();
        let mut bad_refine = None;
        st.store
            .for_each_profile(&sel, from, to, Some(step), labels, &mut |k, t, n, p| {
                let p = if refined {
                    match report(p, &q) {
                        Ok(r) => r.prof,
                        Err(e) => {
                            bad_refine = Some(e);
                            return Ok(());
                        }
                    }
                } else {
                    p
                };
                let i = match p.sample_index_by_name(wanted) {
                    Ok(i) => i,
                    Err(e) => {
                        bad_index = Some(e);
                        return Ok(());
                    }
                };
                stype = p.sample_type[i].r#type.to_string();
                unit = p.sample_type[i].unit.to_string();
                snapshot = gocost_store::is_snapshot(&k.kind, &stype);
                let c = cells
                    .entry((from + (t - from) / step * step, k.clone()))
                    .or_default();
                match by.as_deref() {
                    Some(b) => {
                        for s in &p.sample {
                            *c.0.entry(label_value(s, b)).or_default() += s.value[i];
                        }
                    }
                    // Without `by`, one total: no per-sample map lookup.
                    None => {
                        let v: i64 = p.sample.iter().map(|s| s.value[i]).sum();
                        *c.0.entry(String::new()).or_default() += v;
                    }
                }
                c.1 += n;
                Ok(())
            })
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        if let Some(e) = bad_index {
            return Err(ApiError::BadRequest(e));
        }
        if let Some(e) = bad_refine {
            return Err(e);
        }
        // Bucket start → (value per label value, profiles merged).
        let mut buckets: BTreeMap<i64, (BTreeMap<String, i64>, u64)> = BTreeMap::new();
        for ((b, _), (vals, n)) in cells {
            let e = buckets.entry(b).or_default();
            for (label, v) in vals {
                *e.0.entry(label).or_default() += if snapshot && agg != Agg::Sum {
                    (v as f64 / n.max(1) as f64).round() as i64
                } else {
                    v
                };
            }
            e.1 += n;
        }
        let points: Vec<[i64; 2]> = buckets
            .iter()
            .map(|(t, (v, _))| [t / 1_000_000, v.values().sum()])
            .collect();
        let counts: Vec<u64> = buckets.values().map(|(_, n)| *n).collect();
        // With `by`: the ten values of the label with the most in the range, then the rest.
        let series = by.map(|_| {
            let mut totals: BTreeMap<&str, i64> = BTreeMap::new();
            for (vals, _) in buckets.values() {
                for (l, v) in vals {
                    *totals.entry(l).or_default() += v.abs();
                }
            }
            let mut ranked: Vec<(&str, i64)> = totals.into_iter().collect();
            ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
            let top: Vec<&str> = ranked.iter().take(10).map(|x| x.0).collect();
            let mut out: Vec<serde_json::Value> = top
                .iter()
                .map(|l| {
                    let pts: Vec<[i64; 2]> = buckets
                        .iter()
                        .map(|(t, (v, _))| [t / 1_000_000, v.get(*l).copied().unwrap_or(0)])
                        .collect();
                    serde_json::json!({ "value": l, "points": pts })
                })
                .collect();
            if ranked.len() > top.len() {
                let pts: Vec<[i64; 2]> = buckets
                    .iter()
                    .map(|(t, (v, _))| {
                        let rest = v
                            .iter()
                            .filter(|(l, _)| !top.contains(&l.as_str()))
                            .map(|(_, x)| x)
                            .sum();
                        [t / 1_000_000, rest]
                    })
                    .collect();
                out.push(serde_json::json!({ "value": "other", "other": true, "points": pts }));
            }
            out
        });
        let mut body = serde_json::json!({
            "sample_type": stype, "unit": unit, "step_ms": step / 1_000_000, "points": points,
            "counts": counts,
        });
        if let Some(series) = series {
            body["series"] = serde_json::Value::Array(series);
        }
        Ok::<_, ApiError>(body)
    })
    .await??;
    Ok(axum::Json(body).into_response())
}

/// A sample's value of label `key` as the timeline breaks it down: the string value, or a
/// number in its unit as `-tags` prints it; `""` without one.
fn label_value(s: &gocost_pprof::Sample, key: &str) -> String {
    s.label
        .iter()
        .find(|l| &*l.key == key)
        .map_or(String::new(), |l| match &l.value {
            gocost_pprof::LabelValue::Str(v) => v.to_string(),
            gocost_pprof::LabelValue::Num { value, unit } => {
                gocost_pprof::units::scaled_label(*value, unit, "minimum")
            }
        })
}

/// `query` over `from..to` compared with `base_query` over `base_from..base_to`, as
/// `gocost top --diff-base` (percentages relative to the base).
async fn diff(
    State(st): State<Arc<AppState>>,
    Query(q): Query<RangeQuery>,
) -> Result<Response, ApiError> {
    st.requests.fetch_add(1, Ordering::Relaxed);
    let top =
        blocking(move || Ok::<_, ApiError>(report(diff_profile(&st, &q)?, &q)?.top())).await??;
    Ok(axum::Json(top).into_response())
}

/// The head (`query` over `from..to`) with the base subtracted and its samples labelled
/// `pprof::base=true`: what `go tool pprof -diff_base` builds, so that pprof reading it
/// reports the change with percentages of the base.
fn diff_profile(st: &AppState, q: &RangeQuery) -> Result<gocost_pprof::Profile, ApiError> {
    let p = merged(st, q)?;
    let mut base = merged_base(st, &base_of(q)?)?;
    base.set_label("pprof::base", "true");
    base.scale(-1.0);
    gocost_pprof::merge::combine(vec![p, base]).map_err(|e| ApiError::BadRequest(e.0))
}

/// Runtime-metric series (`metric{__name__="go_memstats_heap_alloc_bytes",job="api"}`) with
/// their points in the range: `[{"labels": {...}, "points": [[unix ms, value], ...]}]`.
async fn runtime(
    State(st): State<Arc<AppState>>,
    Query(q): Query<RangeQuery>,
) -> Result<Response, ApiError> {
    st.requests.fetch_add(1, Ordering::Relaxed);
    let text = q
        .query
        .as_deref()
        .ok_or_else(|| ApiError::BadRequest("missing query={__name__=\"...\"}".into()))?;
    let mut sel = Selector::parse(text).map_err(ApiError::BadRequest)?;
    match sel.kind.as_deref() {
        None | Some("metric") => sel.kind = Some("metric".into()),
        Some(k) => {
            return Err(ApiError::BadRequest(format!(
                "runtime series have kind metric, not {k:?}"
            )));
        }
    }
    let (from, to) = time_range(q.from.as_deref(), q.to.as_deref())?;
    let out = blocking(move || {
        let series = st
            .store
            .select_points(&sel, from, to)
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        let n: usize = series.iter().map(|(_, p)| p.len()).sum();
        if n > 200_000 {
            return Err(ApiError::BadRequest(format!(
                "{n} points: narrow the range or the selector"
            )));
        }
        Ok(series
            .into_iter()
            .map(|(k, pts)| {
                let points: Vec<(i64, f64)> =
                    pts.into_iter().map(|(t, v)| (t / 1_000_000, v)).collect();
                serde_json::json!({ "labels": k.labels, "points": points })
            })
            .collect::<Vec<serde_json::Value>>())
    })
    .await??;
    Ok(axum::Json(out).into_response())
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
        "Profiles stored (WAL head and blocks).",
        s.profiles.to_string(),
    );
    m(
        "gocost_store_head_profiles",
        "gauge",
        "Profiles in the WAL head, not yet in blocks.",
        s.head_profiles.to_string(),
    );
    m(
        "gocost_store_wal_bytes",
        "gauge",
        "Bytes of write-ahead log on disk.",
        s.wal_bytes.to_string(),
    );
    m(
        "gocost_store_blocks",
        "gauge",
        "Immutable blocks in the store.",
        s.blocks.to_string(),
    );
    m(
        "gocost_store_block_bytes",
        "gauge",
        "Bytes of blocks.",
        s.block_bytes.to_string(),
    );
    m(
        "gocost_store_block_ingested_bytes",
        "gauge",
        "Bytes the profiles in blocks had as received (block_bytes / this = storage ratio).",
        s.block_ingested_bytes.to_string(),
    );
    m(
        "gocost_store_blocks_written_total",
        "counter",
        "Blocks cut from the WAL since start.",
        s.blocks_written_total.to_string(),
    );
    m(
        "gocost_store_compactions_total",
        "counter",
        "Days compacted into one block since start.",
        s.compactions_total.to_string(),
    );
    m(
        "gocost_store_disk_full",
        "gauge",
        "1 while the disk holding the WAL is full: ingest is paused (pushes get 507) until space is freed.",
        u8::from(s.disk_full).to_string(),
    );
    m(
        "gocost_store_write_failing",
        "gauge",
        "1 while WAL writes or syncs fail (disk full or I/O errors); the log says why.",
        u8::from(s.write_error.is_some()).to_string(),
    );
    m(
        "gocost_store_write_errors_total",
        "counter",
        "WAL writes and syncs that failed since start (nothing of them was acknowledged).",
        s.write_errors_total.to_string(),
    );
    m(
        "gocost_store_unsynced_dropped_total",
        "counter",
        "Records written to the WAL but dropped because its fsync failed (never acknowledged).",
        s.lost_records_total.to_string(),
    );
    m(
        "gocost_ingest_profiles_total",
        "counter",
        "Profiles appended since start.",
        s.appends_total.to_string(),
    );
    m(
        "gocost_http_connections_open",
        "gauge",
        "HTTP connections open.",
        st.conns.open.load(Ordering::Relaxed).to_string(),
    );
    m(
        "gocost_http_connections_limit",
        "gauge",
        "The most HTTP connections open at once (server.max_connections).",
        st.conns.limit.load(Ordering::Relaxed).to_string(),
    );
    m(
        "gocost_http_connections_refused_total",
        "counter",
        "Connections refused (503 and closed) because max_connections were open, or accept failed.",
        st.conns.refused.load(Ordering::Relaxed).to_string(),
    );
    m(
        "gocost_http_header_timeouts_total",
        "counter",
        "Connections closed because a request header (or the next request) did not arrive within header_timeout.",
        st.conns.timeouts.load(Ordering::Relaxed).to_string(),
    );
    m(
        "gocost_http_requests_reading_body",
        "gauge",
        "Requests whose body is being received now.",
        st.conns.reading_body.load(Ordering::Relaxed).to_string(),
    );
    m(
        "gocost_http_body_timeouts_total",
        "counter",
        "Requests answered 400 because their body did not arrive within body_timeout.",
        st.conns.body_timeouts.load(Ordering::Relaxed).to_string(),
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
        "gocost_query_running",
        "gauge",
        "Queries running now (at most max_concurrent_queries).",
        QUERIES_RUNNING.load(Ordering::Relaxed).to_string(),
    );
    m(
        "gocost_query_refused_total",
        "counter",
        "Queries refused with 503 because max_concurrent_queries were running for 5 s.",
        QUERIES_REFUSED.load(Ordering::Relaxed).to_string(),
    );
    m(
        "gocost_query_cancelled_total",
        "counter",
        "Queries stopped after running past query_timeout (their work unwound, not left running).",
        QUERIES_CANCELLED.load(Ordering::Relaxed).to_string(),
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
    o.push_str(&insights::insight_metrics(&st).await);
    alerts::metrics(&st, &mut o);
    let mut r = o.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    r
}

/// The router with every route.
pub fn router(state: Arc<AppState>) -> Router {
    let max_body = usize::try_from(state.access.max_body()).unwrap_or(usize::MAX);
    let pushes = Router::new()
        .route("/ingest", axum::routing::post(push::ingest))
        .route("/pyroscope/ingest", axum::routing::post(push::ingest))
        .route(
            "/push.v1.PusherService/Push",
            axum::routing::post(push::push),
        )
        .layer(axum::extract::DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            listen::read_body,
        ));
    Router::new()
        .merge(pushes)
        .route("/", get(ui::index))
        .route("/ui/{file}", get(ui::file))
        .route("/api/v1/profile", get(profile))
        .route("/api/v1/top", get(top))
        .route("/api/v1/tags", get(tags))
        .route("/api/v1/flame", get(flame))
        .route("/api/v1/timeline", get(timeline))
        .route("/api/v1/diff", get(diff))
        .route("/api/v1/series", get(series))
        .route("/api/v1/runtime", get(runtime))
        .route("/api/v1/labels", get(labels))
        .route("/api/v1/label/{name}/values", get(label_values))
        .route("/api/v1/targets", get(targets))
        .route("/api/v1/leaks", get(insights::leaks))
        .route("/api/v1/heap_growth", get(insights::heap_growth))
        .route("/api/v1/regressions", get(regress::regressions))
        .route("/api/v1/cost", get(insights::cost))
        .route("/api/v1/gc", get(insights::gc))
        .route("/api/v1/alerts", get(alerts::list))
        .route("/metrics", get(metrics))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            access::guard,
        ))
        .layer(axum::middleware::from_fn(errors::json_errors))
        .with_state(state)
}
