//! `gocost load` runs kept by the server: uploads (`gocost load --store`), the list with each
//! run's numbers, a run's JSON (what `gocost compare` reads) and its HTML report.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use gocost_store::{Selector, SeriesKey, TraceInfo};
use serde_json::{Value, json};

use crate::access::Tenant;
use crate::query::{Lent, blocking, blocking_unlimited};
use crate::select::RangeQuery;
use crate::time::time_range;
use crate::{ApiError, AppState};

/// The series kind of stored runs.
pub(crate) const KIND: &str = "loadrun";

/// A run's name: what `job` is for a service.
fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 200
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:/".contains(&b))
}

/// `POST /api/v1/loadruns`: stores a run. The body is a JSON object: `run` (the report `gocost
/// load --json` writes), `name` (letters, digits, `-_.:/`; default `load`) and optionally
/// `html` (the `-o report.html` page). 200 `{"id"}` once durable.
pub(crate) async fn upload(
    State(st): State<Arc<AppState>>,
    Extension(tenant): Extension<Tenant>,
    body: Bytes,
) -> Result<Response, ApiError> {
    st.requests.fetch_add(1, Ordering::Relaxed);
    let doc: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("not a JSON load run document: {e}")))?;
    let run = doc.get("run").filter(|r| r.is_object()).ok_or_else(|| {
        ApiError::BadRequest(
            "want {\"run\": <gocost load --json report>, \"name\": …, \"html\": …}".into(),
        )
    })?;
    let time_ns = run["measured_from_unix_ns"].as_i64().ok_or_else(|| {
        ApiError::BadRequest(
            "run.measured_from_unix_ns: want a number (a gocost load report)".into(),
        )
    })?;
    if !run["seconds"].is_array() || !run["latency"].is_object() {
        return Err(ApiError::BadRequest(
            "run: want \"seconds\" and \"latency\" (a gocost load --json report)".into(),
        ));
    }
    let name = match doc.get("name") {
        None | Some(Value::Null) => "load".to_string(),
        Some(Value::String(n)) if valid_name(n) => n.clone(),
        Some(n) => {
            return Err(ApiError::BadRequest(format!(
                "name {n}: letters, digits and -_.:/ only, at most 200"
            )));
        }
    };
    if doc
        .get("html")
        .is_some_and(|h| !h.is_string() && !h.is_null())
    {
        return Err(ApiError::BadRequest(
            "html: want a string (the report page)".into(),
        ));
    }
    let mut labels = BTreeMap::from([("job".to_string(), name)]);
    tenant.tag(&mut labels);
    let key = SeriesKey {
        kind: KIND.to_string(),
        labels,
    };
    let info = blocking_unlimited(&st, "storing the load run", move |st| {
        st.store.put_load_run(&key, time_ns, &body)
    })
    .await?
    .map_err(|e| ApiError::from(e).not_stored())?;
    Ok(Json(json!({"id": info.id})).into_response())
}

/// A list entry: the run's numbers, not its seconds.
fn summary(info: &TraceInfo, doc: &Value) -> Value {
    let r = &doc["run"];
    json!({
        "id": info.id,
        "name": info.key.labels.get("job"),
        "time_ms": info.time_ns / 1_000_000,
        "url": r["url"],
        "model": r["model"],
        "rate": r["rate"],
        "concurrency": r["concurrency"],
        "protocol": r["protocol"],
        "duration_seconds": r["duration_seconds"],
        "requests": r["requests"],
        "errors": r["errors"],
        "throughput": r["throughput"],
        "latency": r["latency"],
        "cpu_per_request_seconds": r["service"]["cpu"]["per_request_seconds"],
        "cost_per_million": r["service"]["cost"]["total_per_million"],
        "currency": r["service"]["cost"]["rates"]["currency"],
        "report": doc["html"].is_string(),
    })
}

/// `GET /api/v1/loadruns?query=&from=&to=`: stored runs (kind `loadrun`, `job` the run's
/// name), newest first, with their numbers.
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
        None | Some(KIND) => sel.kind = Some(KIND.into()),
        Some(k) => {
            return Err(ApiError::BadRequest(format!(
                "load runs have kind {KIND}, not {k:?}"
            )));
        }
    }
    let (from, to) = time_range(q.from.as_deref(), q.to.as_deref())?;
    let out = blocking(&st, move |st| {
        let mut out = Vec::new();
        for info in st.store.load_runs(&sel, from, to).iter().rev() {
            let doc = match st.store.read_load_run(&info.id) {
                Ok(Some((_, bytes))) => serde_json::from_slice(&bytes).unwrap_or(Value::Null),
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!(target: "gocost::http", "load run {}: {e}", info.id);
                    continue;
                }
            };
            out.push(summary(info, &doc));
        }
        Ok::<_, ApiError>(out)
    })
    .await??;
    Ok(Json(out).into_response())
}

/// The run `id`'s document, if it exists and the tenant may see it.
fn read(st: &Lent<'_>, tenant: &Tenant, id: &str) -> Result<Value, ApiError> {
    let missing = || ApiError::NotFound(format!("no load run {id:?}"));
    if !gocost_store::valid_trace_id(id) {
        return Err(missing());
    }
    let (info, bytes) = st.store.read_load_run(id)?.ok_or_else(missing)?;
    if !tenant.owns(&info.key) {
        return Err(missing());
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::Internal(format!("load run {id}: stored JSON: {e}")))
}

/// `GET /api/v1/loadruns/{id}`: the run as `gocost load --json` wrote it (what `gocost
/// compare --base … --head …` reads).
pub(crate) async fn get(
    State(st): State<Arc<AppState>>,
    Extension(tenant): Extension<Tenant>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    st.requests.fetch_add(1, Ordering::Relaxed);
    let doc = blocking(&st, move |st| read(st, &tenant, &id)).await??;
    Ok(Json(doc["run"].clone()).into_response())
}

/// `GET /api/v1/loadruns/{id}/report`: the run's HTML report, in a sandbox (its own origin:
/// an uploaded page cannot act as the UI).
pub(crate) async fn report(
    State(st): State<Arc<AppState>>,
    Extension(tenant): Extension<Tenant>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    st.requests.fetch_add(1, Ordering::Relaxed);
    let id2 = id.clone();
    let doc = blocking(&st, move |st| read(st, &tenant, &id2)).await??;
    let Some(html) = doc["html"].as_str() else {
        return Err(ApiError::NotFound(format!(
            "load run {id:?} was stored without its HTML report"
        )));
    };
    let mut r = html.to_string().into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox allow-scripts"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    Ok(r)
}
