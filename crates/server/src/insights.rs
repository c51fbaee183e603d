//! Insight endpoints: analyses of stored profiles over time (`gocost-insights`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use gocost_insights::leaks;
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
        let params = leaks::Params {
            min_rate_per_hour: q.min_rate.unwrap_or(60.0),
            ..leaks::Params::default()
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
    params: &leaks::Params,
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

/// The leak gauges of `/metrics` (Prometheus text), recomputed at most once a minute.
pub(crate) async fn leak_metrics(st: &Arc<AppState>) -> String {
    if let Ok(c) = st.leak_metrics.lock()
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
        let series = leaks_by_series(
            &st2,
            &sel,
            to - METRICS_WINDOW_NS,
            to,
            &leaks::Params::default(),
        )
        .unwrap_or_default();
        render_metrics(&series)
    })
    .await
    .unwrap_or_default();
    if let Ok(mut c) = st.leak_metrics.lock() {
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
                let mut labels: Vec<String> = s
                    .labels
                    .iter()
                    .map(|(k, v)| format!("{k}=\"{}\"", crate::esc(v)))
                    .collect();
                labels.push(format!("function=\"{}\"", crate::esc(&f.function)));
                labels.push(format!("blocking=\"{}\"", crate::esc(&f.blocking)));
                let v = match name {
                    "gocost_goroutine_leak_rate_per_hour" => f.rate_per_hour,
                    "gocost_goroutine_leak_goroutines" => f.count as f64,
                    _ => f.confidence,
                };
                let _ = writeln!(o, "{name}{{{}}} {v}", labels.join(","));
            }
        }
    }
    o
}
