//! Insight endpoints: analyses of stored profiles over time (`gocost-insights`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use gocost_insights::{growth, heap, leaks};
use gocost_store::Selector;
use serde::{Deserialize, Serialize};

use crate::{ApiError, AppState, blocking, time_range};

#[derive(Deserialize, Default)]
pub(crate) struct LeakQuery {
    query: Option<String>,
    from: Option<String>,
    to: Option<String>,
    /// Slower growth (goroutines per hour) is not reported; default 60.
    min_rate: Option<f64>,
}

#[derive(Serialize)]
struct SeriesLeaks {
    labels: BTreeMap<String, String>,
    /// Goroutine profiles analysed.
    snapshots: usize,
    findings: Vec<leaks::Finding>,
}

/// `GET /api/v1/leaks?query=goroutine{job="api"}&from=now-1h`: goroutine leaks per series,
/// from its goroutine profiles over the range and, where scraped, the `goroutineleak`
/// profiles of the same target (leaks Go's runtime proved).
pub(crate) async fn leaks(
    State(st): State<Arc<AppState>>,
    Query(q): Query<LeakQuery>,
) -> Result<Response, ApiError> {
    st.requests.fetch_add(1, Ordering::Relaxed);
    let body = blocking(move || {
        let text = q.query.as_deref().unwrap_or("goroutine");
        let mut sel = Selector::parse(text).map_err(ApiError::BadRequest)?;
        match sel.kind.as_deref() {
            None | Some("goroutine") => sel.kind = Some("goroutine".into()),
            Some(k) => {
                return Err(ApiError::BadRequest(format!(
                    "leaks are found in goroutine profiles, not {k:?}: query=goroutine{{...}}"
                )));
            }
        }
        let (from, to) = time_range(q.from.as_deref(), q.to.as_deref())?;
        let params = growth::Rule {
            min_rate_per_hour: q.min_rate.unwrap_or(60.0),
            ..leaks::defaults()
        };
        let out = leaks_by_series(&st, &sel, from, to, &params)?;
        if out.is_empty() {
            return Err(ApiError::NotFound(format!(
                "no goroutine profiles match {text} in the range"
            )));
        }
        Ok(out)
    })
    .await??;
    Ok(axum::Json(body).into_response())
}

/// Leaks per target of the goroutine series `sel` matches, over `[from, to]`.
fn leaks_by_series(
    st: &AppState,
    sel: &Selector,
    from: i64,
    to: i64,
    params: &growth::Rule,
) -> Result<Vec<SeriesLeaks>, ApiError> {
    // Per target (the series' labels): its snapshots, counted and proven.
    let mut per: BTreeMap<BTreeMap<String, String>, Vec<leaks::Snapshot>> = BTreeMap::new();
    for (kind, proven) in [("goroutine", false), ("goroutineleak", true)] {
        let s = Selector {
            kind: Some(kind.into()),
            matchers: sel.matchers.clone(),
        };
        st.store
            .for_each_profile(&s, from, to, None, &mut |key, t, mut p| {
                if proven && !per.contains_key(&key.labels) {
                    return Ok(()); // no goroutine profiles of this target in range
                }
                p.time_nanos = t;
                per.entry(key.labels.clone())
                    .or_default()
                    .push(leaks::snapshot_from_profile(&p, proven));
                Ok(())
            })
            .map_err(|e| ApiError::Internal(e.to_string()))?;
    }
    Ok(per
        .into_iter()
        .map(|(labels, mut snaps)| SeriesLeaks {
            labels,
            snapshots: snaps
                .iter()
                .filter(|s| s.groups.values().any(|g| g.count > 0))
                .count(),
            findings: leaks::find(&mut snaps, params),
        })
        .collect())
}

/// How far back `/metrics` looks for leaks, and how long its answer is reused: Prometheus
/// may scrape every few seconds, the analysis reads every goroutine profile in the window.
const METRICS_WINDOW_NS: i64 = 15 * 60 * 1_000_000_000;
const METRICS_REFRESH: std::time::Duration = std::time::Duration::from_secs(60);

/// The insight gauges of `/metrics` (goroutine leaks, heap growth; Prometheus text),
/// recomputed at most once a minute.
pub(crate) async fn insight_metrics(st: &Arc<AppState>) -> String {
    if let Ok(c) = st.insight_metrics.lock()
        && let Some((at, text)) = c.as_ref()
        && at.elapsed() < METRICS_REFRESH
    {
        return text.clone();
    }
    let st2 = Arc::clone(st);
    let text = blocking(move || {
        let to = crate::now_ns();
        let sel = Selector {
            kind: Some("goroutine".into()),
            matchers: Vec::new(),
        };
        let from = to - METRICS_WINDOW_NS;
        let series = leaks_by_series(&st2, &sel, from, to, &leaks::defaults()).unwrap_or_default();
        let heap_sel = Selector {
            kind: Some("heap".into()),
            matchers: Vec::new(),
        };
        let heaps =
            heap_by_series(&st2, &heap_sel, from, to, &heap::defaults()).unwrap_or_default();
        render_metrics(&series) + &render_heap_metrics(&heaps)
    })
    .await
    .unwrap_or_default();
    if let Ok(mut c) = st.insight_metrics.lock() {
        *c = Some((std::time::Instant::now(), text.clone()));
    }
    text
}

fn render_metrics(series: &[SeriesLeaks]) -> String {
    use std::fmt::Write as _;
    let mut o = String::new();
    for (name, help) in [
        (
            "gocost_goroutine_leak_rate_per_hour",
            "Growth of a leaking goroutine group (goroutines per hour) over the last 15 minutes.",
        ),
        (
            "gocost_goroutine_leak_goroutines",
            "Goroutines in a leaking group at the last scrape.",
        ),
        (
            "gocost_goroutine_leak_confidence",
            "0..1: how sure the evidence makes gocost of the leak (1 = proven by Go's runtime).",
        ),
    ] {
        let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} gauge");
        for s in series {
            for f in &s.findings {
                let labels = label_set(
                    &s.labels,
                    &[("function", &f.function), ("blocking", &f.blocking)],
                );
                let v = match name {
                    "gocost_goroutine_leak_rate_per_hour" => f.rate_per_hour,
                    "gocost_goroutine_leak_goroutines" => f.count as f64,
                    _ => f.confidence,
                };
                let _ = writeln!(o, "{name}{{{labels}}} {v}");
            }
        }
    }
    o
}

#[derive(Serialize)]
struct SeriesHeap {
    labels: BTreeMap<String, String>,
    /// Heap profiles analysed.
    snapshots: usize,
    findings: Vec<heap::Finding>,
}

/// Heap growth per target of the heap series `sel` matches, over `[from, to]`.
fn heap_by_series(
    st: &AppState,
    sel: &Selector,
    from: i64,
    to: i64,
    params: &growth::Rule,
) -> Result<Vec<SeriesHeap>, ApiError> {
    let mut per: BTreeMap<BTreeMap<String, String>, Vec<heap::Snapshot>> = BTreeMap::new();
    st.store
        .for_each_profile(sel, from, to, None, &mut |key, t, mut p| {
            p.time_nanos = t;
            // A profile without inuse_space (not a heap profile) is skipped.
            if let Ok(snap) = heap::snapshot_from_profile(&p) {
                per.entry(key.labels.clone()).or_default().push(snap);
            }
            Ok(())
        })
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(per
        .into_iter()
        .map(|(labels, mut snaps)| SeriesHeap {
            labels,
            snapshots: snaps.len(),
            findings: heap::find(&mut snaps, params),
        })
        .collect())
}

#[derive(Deserialize, Default)]
pub(crate) struct HeapQuery {
    query: Option<String>,
    from: Option<String>,
    to: Option<String>,
    /// Slower growth (bytes per hour) is not reported; default 4 MiB.
    min_rate: Option<f64>,
}

/// `GET /api/v1/heap_growth?query=heap{job="api"}&from=now-1h`: allocation sites whose heap
/// in use keeps growing, per target.
pub(crate) async fn heap_growth(
    State(st): State<Arc<AppState>>,
    Query(q): Query<HeapQuery>,
) -> Result<Response, ApiError> {
    st.requests.fetch_add(1, Ordering::Relaxed);
    let body = blocking(move || {
        let text = q.query.as_deref().unwrap_or("heap");
        let mut sel = Selector::parse(text).map_err(ApiError::BadRequest)?;
        match sel.kind.as_deref() {
            None | Some("heap") => sel.kind = Some("heap".into()),
            Some(k) => {
                return Err(ApiError::BadRequest(format!(
                    "heap growth is found in heap profiles, not {k:?}: query=heap{{...}}"
                )));
            }
        }
        let (from, to) = time_range(q.from.as_deref(), q.to.as_deref())?;
        let params = growth::Rule {
            min_rate_per_hour: q.min_rate.unwrap_or(heap::defaults().min_rate_per_hour),
            ..heap::defaults()
        };
        let out = heap_by_series(&st, &sel, from, to, &params)?;
        if out.is_empty() {
            return Err(ApiError::NotFound(format!(
                "no heap profiles match {text} in the range"
            )));
        }
        Ok(out)
    })
    .await??;
    Ok(axum::Json(body).into_response())
}

/// Series labels plus extra ones, as Prometheus text.
fn label_set(labels: &BTreeMap<String, String>, extra: &[(&str, &str)]) -> String {
    labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .chain(extra.iter().copied())
        .map(|(k, v)| format!("{k}=\"{}\"", crate::esc(v)))
        .collect::<Vec<_>>()
        .join(",")
}

fn render_heap_metrics(series: &[SeriesHeap]) -> String {
    use std::fmt::Write as _;
    let mut o = String::new();
    for (name, help) in [
        (
            "gocost_heap_growth_bytes_per_hour",
            "Growth of the heap in use of an allocation site that keeps growing (last 15 minutes).",
        ),
        (
            "gocost_heap_growth_inuse_bytes",
            "Heap in use of a growing allocation site at its last heap profile.",
        ),
    ] {
        let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} gauge");
        for s in series {
            for f in &s.findings {
                let v = if name == "gocost_heap_growth_bytes_per_hour" {
                    f.rate_bytes_per_hour
                } else {
                    f.inuse_bytes as f64
                };
                let labels = label_set(&s.labels, &[("site", &f.site)]);
                let _ = writeln!(o, "{name}{{{labels}}} {v}");
            }
        }
    }
    o
}
