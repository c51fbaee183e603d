//! Execution traces over HTTP: the list of captures, downloads (`go tool trace` opens them),
//! a capture's analyses, its per-P timeline for the UI's trace view, and uploads.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::body::Bytes;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use gocost_store::{Selector, TraceInfo};
use gocost_trace::{Change, Event, GoState, Kind, RangeKind, Resource};
use serde_json::{Value, json};

use crate::access::Tenant;
use crate::query::{Lent, blocking, blocking_unlimited};
use crate::select::RangeQuery;
use crate::time::{now_ns, parse_time, time_range};
use crate::{ApiError, AppState};

fn info_json(t: &TraceInfo) -> Value {
    json!({
        "id": t.id,
        "labels": t.key.labels,
        "time_ms": t.time_ns / 1_000_000,
        "bytes": t.bytes,
    })
}

/// `GET /api/v1/traces?query=&from=&to=`: the stored captures, oldest first.
pub(crate) async fn list(
    State(st): State<Arc<AppState>>,
    Query(q): Query<RangeQuery>,
) -> Result<Response, ApiError> {
    st.requests.fetch_add(1, Ordering::Relaxed);
    let mut sel = match &q.query {
        Some(t) => Selector::parse(t)?,
        None => Selector {
            kind: None,
            matchers: Vec::new(),
        },
    };
    match sel.kind.as_deref() {
        None | Some("trace") => sel.kind = Some("trace".into()),
        Some(k) => {
            return Err(ApiError::BadRequest(format!(
                "traces have kind trace, not {k:?}"
            )));
        }
    }
    let (from, to) = time_range(q.from.as_deref(), q.to.as_deref())?;
    let out: Vec<Value> = blocking(&st, move |st| {
        st.store
            .traces(&sel, from, to)
            .iter()
            .map(info_json)
            .collect()
    })
    .await?;
    Ok(Json(out).into_response())
}

/// The trace `id` if it exists and the tenant may see it.
fn find(st: &Lent<'_>, tenant: &Tenant, id: &str) -> Result<TraceInfo, ApiError> {
    let missing = || ApiError::NotFound(format!("no trace {id:?}"));
    if !gocost_store::valid_trace_id(id) {
        return Err(missing());
    }
    let info = st.store.trace_info(id).ok_or_else(missing)?;
    if !tenant.owns(&info.key) {
        return Err(missing());
    }
    Ok(info)
}

/// The trace `id` and its bytes, if it exists and the tenant may see it.
async fn read(
    st: &Arc<AppState>,
    tenant: &Tenant,
    id: &str,
) -> Result<(TraceInfo, Vec<u8>), ApiError> {
    let (id, tenant) = (id.to_string(), tenant.clone());
    let got = blocking_unlimited(st, "reading the trace", move |st| {
        find(st, &tenant, &id)?;
        st.store.read_trace(&id).map_err(ApiError::from)
    })
    .await??;
    got.ok_or_else(|| ApiError::NotFound("the trace is gone (retention)".into()))
}

/// `GET /api/v1/trace/{id}`: the trace as Go wrote it.
pub(crate) async fn download(
    State(st): State<Arc<AppState>>,
    Extension(tenant): Extension<Tenant>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    st.requests.fetch_add(1, Ordering::Relaxed);
    let (_, bytes) = read(&st, &tenant, &id).await?;
    let mut r = bytes.into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{id}.trace\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(r)
}

/// What `/api/v1/trace/{id}/summary` answers: the overview, pauses, GC cycles, scheduler
/// latency per group and blocking totals (the numbers of `gocost trace summary|gc|sched`).
pub fn summary_json(info: &TraceInfo, events: &[Event]) -> Value {
    let o = gocost_trace::overview(events);
    let start = o.start_ns;
    let mut m = crate::trace_json::overview(&o, &crate::trace_json::blocking_totals(events));
    m.insert("trace".into(), info_json(info));
    m.insert(
        "pauses".into(),
        o.pauses
            .iter()
            .map(|p| json!({"at_ns": p.start_ns - start, "duration_ns": p.duration_ns(), "reason": p.reason}))
            .collect(),
    );
    m.insert(
        "sched_groups".into(),
        gocost_trace::sched_latency_by_group(events)
            .iter()
            .take(50)
            .map(|g| json!({"function": g.name, "goroutines": g.goroutines, "waits": crate::trace_json::durations(&g.waits)}))
            .collect(),
    );
    Value::Object(m)
}

async fn parsed<T: Send + 'static>(
    st: Arc<AppState>,
    tenant: &Tenant,
    id: &str,
    f: impl FnOnce(&TraceInfo, &[Event]) -> T + Send + 'static,
) -> Result<T, ApiError> {
    let (info, bytes) = read(&st, tenant, id).await?;
    blocking(&st, move |_| {
        let events = gocost_trace::parse(&bytes)
            .map_err(|e| ApiError::Internal(format!("stored trace does not parse: {e}")))?;
        Ok(f(&info, &events))
    })
    .await?
}

/// `GET /api/v1/trace/{id}/summary`.
pub(crate) async fn summary(
    State(st): State<Arc<AppState>>,
    Extension(tenant): Extension<Tenant>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    st.requests.fetch_add(1, Ordering::Relaxed);
    let v = parsed(st, &tenant, &id, summary_json).await?;
    Ok(Json(v).into_response())
}

/// Most slices the timeline answers (the rest are merged away by dropping the shortest).
const MAX_SLICES: usize = 200_000;

/// The per-P timeline: for each proc, the goroutines it ran (start, end relative to the
/// trace's first event, goroutine, start function index); GC mark, STW and assist ranges.
pub fn timeline_json(info: &TraceInfo, events: &[Event]) -> Value {
    let start = events.first().map_or(0, Event::time);
    let end = events.last().map_or(0, Event::time);
    let names = gocost_trace::goroutine_summaries(events);
    let mut fn_index: BTreeMap<&str, usize> = BTreeMap::new();
    let mut fns: Vec<&str> = Vec::new();
    // Running goroutine per P, from when.
    let mut running: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
    let mut slices: Vec<(i64, i64, i64, i64, usize)> = Vec::new(); // (p, s, e, g, fn)
    let mut close = |slices: &mut Vec<_>, p: i64, s: i64, e: i64, g: i64| {
        let name = names.get(&g).map_or("", |x| x.name.as_str());
        let n = fns.len();
        let fi = *fn_index.entry(name).or_insert_with(|| {
            fns.push(name);
            n
        });
        if e > s {
            slices.push((p, s - start, e - start, g, fi));
        }
    };
    let mut gc: Vec<(i64, i64)> = Vec::new();
    let mut stw: Vec<(i64, i64, String)> = Vec::new();
    let mut assists: Vec<(i64, i64, i64)> = Vec::new();
    let mut gc_open: Option<i64> = None;
    let mut stw_open: BTreeMap<i64, (i64, String)> = BTreeMap::new();
    let mut assist_open: BTreeMap<i64, i64> = BTreeMap::new();
    for ev in events {
        if ev.kind() == Kind::StateTransition
            && let Some(t) = ev.transition()
            && let Change::Goroutine(g, old, new) = t.change
        {
            let p = ev.proc();
            if new == GoState::Running && old != GoState::Running {
                running.insert(p, (g, ev.time()));
            } else if old == GoState::Running && new != GoState::Running {
                let pp = running
                    .iter()
                    .find(|(_, (rg, _))| *rg == g)
                    .map(|(&pp, _)| pp);
                if let Some(pp) = pp
                    && let Some((_, s)) = running.remove(&pp)
                {
                    close(&mut slices, pp, s, ev.time(), g);
                }
            }
        }
        if let Some(r) = ev.range() {
            let t = ev.time() - start;
            match (r.kind, r.scope, ev.kind()) {
                (RangeKind::GcMark, _, Kind::RangeBegin | Kind::RangeActive) => {
                    gc_open = Some(t);
                }
                (RangeKind::GcMark, _, Kind::RangeEnd) => {
                    gc.push((gc_open.take().unwrap_or(0), t));
                }
                (RangeKind::StopTheWorld(reason), Resource::Goroutine(g), Kind::RangeBegin) => {
                    stw_open.insert(g, (t, reason.to_string()));
                }
                (RangeKind::StopTheWorld(_), Resource::Goroutine(g), Kind::RangeEnd) => {
                    if let Some((s, reason)) = stw_open.remove(&g) {
                        stw.push((s, t, reason));
                    }
                }
                (
                    RangeKind::GcMarkAssist,
                    Resource::Goroutine(g),
                    Kind::RangeBegin | Kind::RangeActive,
                ) => {
                    assist_open.insert(g, t);
                }
                (RangeKind::GcMarkAssist, Resource::Goroutine(g), Kind::RangeEnd) => {
                    if let Some(s) = assist_open.remove(&g) {
                        assists.push((ev.proc(), s, t));
                    }
                }
                _ => {}
            }
        }
    }
    for (p, (g, s)) in std::mem::take(&mut running) {
        close(&mut slices, p, s, end, g);
    }
    if let Some(s) = gc_open {
        gc.push((s, end - start));
    }
    let truncated = slices.len() > MAX_SLICES;
    if truncated {
        slices.sort_by_key(|x| std::cmp::Reverse(x.2 - x.1));
        slices.truncate(MAX_SLICES);
    }
    slices.sort_by_key(|x| (x.0, x.1));
    let procs: std::collections::BTreeSet<i64> = slices.iter().map(|x| x.0).collect();
    json!({
        "trace": info_json(info),
        "duration_ns": end - start,
        "procs": procs,
        "functions": fns,
        "slices": slices.iter().map(|x| [x.0, x.1, x.2, x.3, x.4 as i64]).collect::<Vec<_>>(),
        "truncated": truncated,
        "gc": gc,
        "stw": stw.iter().map(|(s, e, r)| json!([s, e, r])).collect::<Vec<_>>(),
        "assists": assists,
    })
}

/// `GET /api/v1/trace/{id}/timeline`.
pub(crate) async fn timeline(
    State(st): State<Arc<AppState>>,
    Extension(tenant): Extension<Tenant>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    st.requests.fetch_add(1, Ordering::Relaxed);
    let v = parsed(st, &tenant, &id, timeline_json).await?;
    Ok(Json(v).into_response())
}

/// `POST /api/v1/traces?job=…&instance=…&<label>=…`: stores an uploaded trace (the body, as
/// Go wrote it) and its analyses; 200 once durable.
pub(crate) async fn upload(
    State(st): State<Arc<AppState>>,
    Extension(tenant): Extension<Tenant>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    st.requests.fetch_add(1, Ordering::Relaxed);
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(query.as_deref().unwrap_or(""))
            .map_err(|e| ApiError::BadRequest(format!("bad query string: {e}")))?;
    let mut labels: BTreeMap<String, String> = BTreeMap::new();
    let mut time_ns = now_ns();
    for (k, v) in pairs {
        if k == "time" {
            time_ns =
                parse_time(&v, now_ns()).map_err(|e| ApiError::BadRequest(format!("time: {e}")))?;
            continue;
        }
        if k.is_empty()
            || k.starts_with("__")
            || !k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(ApiError::BadRequest(format!(
                "label name {k:?}: letters, digits and _ only, not starting with __"
            )));
        }
        labels.insert(k, v);
    }
    if !labels.contains_key("job") {
        return Err(ApiError::BadRequest(
            "missing job=… (the service the trace is of)".into(),
        ));
    }
    tenant.tag(&mut labels);
    let stored = blocking_unlimited(&st, "storing the trace", move |st| {
        gocost_scrape::trace::store_trace(st.store, &labels, time_ns, &body)
    })
    .await?
    .map_err(|e| match e {
        gocost_scrape::trace::StoreTraceError::Bad(e) => ApiError::BadRequest(e),
        gocost_scrape::trace::StoreTraceError::Store(e) => ApiError::from(e).not_stored(),
    })?;
    Ok(
        Json(json!({"id": stored.info.id, "bytes": stored.info.bytes, "points": stored.points}))
            .into_response(),
    )
}
