//! What is stored: `/api/v1/series`, `labels`, `label/{name}/values`, the scrape
//! `targets`' health, and runtime-metric series (`/api/v1/runtime`).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use gocost_store::Selector;

use crate::query::blocking;
use crate::select::RangeQuery;
use crate::time::time_range;
use crate::{ApiError, AppState};

/// Runtime-metric series (`metric{__name__="go_memstats_heap_alloc_bytes",job="api"}`) with
/// their points in the range: `[{"labels": {...}, "points": [[unix ms, value], ...]}]`.
pub(crate) async fn runtime(
    State(st): State<Arc<AppState>>,
    Query(q): Query<RangeQuery>,
) -> Result<Response, ApiError> {
    st.requests.fetch_add(1, Ordering::Relaxed);
    let text = q
        .query
        .as_deref()
        .ok_or_else(|| ApiError::BadRequest("missing query={__name__=\"...\"}".into()))?;
    let mut sel = Selector::parse(text)?;
    match sel.kind.as_deref() {
        None | Some("metric") => sel.kind = Some("metric".into()),
        Some(k) => {
            return Err(ApiError::BadRequest(format!(
                "runtime series have kind metric, not {k:?}"
            )));
        }
    }
    let (from, to) = time_range(q.from.as_deref(), q.to.as_deref())?;
    let out = blocking(&st, move |st| {
        let series = st.store.select_points(&sel, from, to)?;
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

pub(crate) async fn series(
    State(st): State<Arc<AppState>>,
    Query(q): Query<RangeQuery>,
) -> Result<Response, ApiError> {
    st.requests.fetch_add(1, Ordering::Relaxed);
    let sel = match &q.query {
        Some(t) => Selector::parse(t)?,
        None => Selector {
            kind: None,
            matchers: Vec::new(),
        },
    };
    let out: Vec<serde_json::Value> = blocking(&st, move |st| {
        st.store
            .series()
            .into_iter()
            .filter(|k| sel.matches(k))
            .map(
                |k| serde_json::json!({ "kind": k.kind, "labels": k.labels, "key": k.to_string() }),
            )
            .collect()
    })
    .await?;
    Ok(axum::Json(out).into_response())
}

pub(crate) async fn labels(State(st): State<Arc<AppState>>) -> Result<Response, ApiError> {
    st.requests.fetch_add(1, Ordering::Relaxed);
    let names = blocking(&st, |st| st.store.label_names()).await?;
    Ok(axum::Json(names).into_response())
}

pub(crate) async fn label_values(
    State(st): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    st.requests.fetch_add(1, Ordering::Relaxed);
    let values = blocking(&st, move |st| st.store.label_values(&name)).await?;
    Ok(axum::Json(values).into_response())
}

#[derive(serde::Deserialize)]
pub(crate) struct TargetsQuery {
    state: Option<String>,
}

/// The scrape targets: `state` `active` (default: one entry per target and kind, with its
/// labels and discovered labels), `dropped` (the discovered labels of the targets
/// relabelling dropped) or `any` (`{"activeTargets": […], "droppedTargets": […]}`).
pub(crate) async fn targets(
    State(st): State<Arc<AppState>>,
    Query(q): Query<TargetsQuery>,
) -> Result<Response, ApiError> {
    st.requests.fetch_add(1, Ordering::Relaxed);
    let active = || st.health.read().map(|f| f()).unwrap_or_default();
    let dropped = || st.dropped.read().map(|f| f()).unwrap_or_default();
    Ok(match q.state.as_deref().unwrap_or("active") {
        "active" => axum::Json(active()).into_response(),
        "dropped" => axum::Json(dropped()).into_response(),
        "any" => axum::Json(serde_json::json!({
            "activeTargets": active(),
            "droppedTargets": dropped(),
        }))
        .into_response(),
        s => {
            return Err(ApiError::BadRequest(format!(
                "state {s:?}: use active, dropped or any"
            )));
        }
    })
}
