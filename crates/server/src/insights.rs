//! Insight endpoints: analyses of stored profiles over time (`gocost-insights`), per target,
//! through the API and as gauges on `/metrics`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use gocost_insights::{growth, heap, leaks};
use gocost_pprof::Profile;
use gocost_store::Selector;
use serde::{Deserialize, Serialize};

use crate::{ApiError, AppState, blocking, time_range};

#[derive(Deserialize, Default)]
pub(crate) struct InsightQuery {
    query: Option<String>,
    from: Option<String>,
    to: Option<String>,
    /// Slower growth (per hour) is not reported; default: the analysis's.
    min_rate: Option<f64>,
}

/// One target's findings.
#[derive(Serialize)]
struct SeriesFindings<F> {
    labels: BTreeMap<String, String>,
    /// Profiles analysed (for leaks: goroutine profiles).
    snapshots: usize,
    findings: Vec<F>,
}

type Labels = BTreeMap<String, String>;

/// An analysis of the profiles a selector matches over a range, per target.
type Analysis<F> =
    fn(&AppState, &Selector, i64, i64, &growth::Rule) -> Result<Vec<SeriesFindings<F>>, ApiError>;

/// A gauge family: name, help, and the value of a finding.
type Family<F> = (&'static str, &'static str, fn(&F) -> f64);

/// The selector of `q.query` for profiles of `kind` (which the query may omit).
fn kind_selector(q: &InsightQuery, kind: &str, what: &str) -> Result<Selector, ApiError> {
    let text = q.query.as_deref().unwrap_or(kind);
    let mut sel = Selector::parse(text).map_err(ApiError::BadRequest)?;
    match sel.kind.as_deref() {
        None => sel.kind = Some(kind.into()),
        Some(k) if k == kind => {}
        Some(k) => {
            return Err(ApiError::BadRequest(format!(
                "{what} is found in {kind} profiles, not {k:?}: query={kind}{{...}}"
            )));
        }
    }
    Ok(sel)
}

/// Runs `analyse` over the profiles `sel` matches, grouped per target, in a blocking task,
/// and answers JSON; 404 when no target has profiles of the kind in the range.
async fn per_target<F: Serialize + Send + 'static>(
    st: Arc<AppState>,
    q: InsightQuery,
    kind: &'static str,
    what: &'static str,
    defaults: growth::Rule,
    analyse: Analysis<F>,
) -> Result<Response, ApiError> {
    st.requests.fetch_add(1, Ordering::Relaxed);
    let body = blocking(move || {
        let sel = kind_selector(&q, kind, what)?;
        let (from, to) = time_range(q.from.as_deref(), q.to.as_deref())?;
        let rule = growth::Rule {
            min_rate_per_hour: q.min_rate.unwrap_or(defaults.min_rate_per_hour),
            ..defaults
        };
        let out = analyse(&st, &sel, from, to, &rule)?;
        if out.is_empty() {
            return Err(ApiError::NotFound(format!(
                "no {kind} profiles match {} in the range",
                q.query.as_deref().unwrap_or(kind)
            )));
        }
        Ok(out)
    })
    .await??;
    Ok(axum::Json(body).into_response())
}

/// Calls `f` with every profile of `kind` matching `sel`'s labels in `[from, to]`, its time
/// set to when it was stored.
fn each_profile(
    st: &AppState,
    sel: &Selector,
    kind: &str,
    from: i64,
    to: i64,
    f: &mut dyn FnMut(&Labels, Profile),
) -> Result<(), ApiError> {
    let s = Selector {
        kind: Some(kind.into()),
        matchers: sel.matchers.clone(),
    };
    st.store
        .for_each_profile(&s, from, to, None, &mut |key, t, mut p| {
            p.time_nanos = t;
            f(&key.labels, p);
            Ok(())
        })
        .map_err(|e| ApiError::Internal(e.to_string()))
}

/// `GET /api/v1/leaks?query=goroutine{job="api"}&from=now-1h`: goroutine leaks per target,
/// from its goroutine profiles over the range and, where scraped, the `goroutineleak`
/// profiles of the same target (leaks Go's runtime proved).
pub(crate) async fn leaks(
    State(st): State<Arc<AppState>>,
    Query(q): Query<InsightQuery>,
) -> Result<Response, ApiError> {
    per_target(
        st,
        q,
        "goroutine",
        "leaks",
        leaks::defaults(),
        leaks_by_series,
    )
    .await
}

fn leaks_by_series(
    st: &AppState,
    sel: &Selector,
    from: i64,
    to: i64,
    rule: &growth::Rule,
) -> Result<Vec<SeriesFindings<leaks::Finding>>, ApiError> {
    let mut per: BTreeMap<Labels, Vec<leaks::Snapshot>> = BTreeMap::new();
    each_profile(st, sel, "goroutine", from, to, &mut |labels, p| {
        per.entry(labels.clone())
            .or_default()
            .push(leaks::snapshot_from_profile(&p, false));
    })?;
    // Proof only for targets with goroutine profiles in range.
    each_profile(st, sel, "goroutineleak", from, to, &mut |labels, p| {
        if let Some(snaps) = per.get_mut(labels) {
            snaps.push(leaks::snapshot_from_profile(&p, true));
        }
    })?;
    Ok(per
        .into_iter()
        .map(|(labels, mut snaps)| SeriesFindings {
            labels,
            snapshots: leaks::counted(&snaps),
            findings: leaks::find(&mut snaps, rule),
        })
        .collect())
}

/// `GET /api/v1/heap_growth?query=heap{job="api"}&from=now-1h`: allocation sites whose heap
/// in use keeps growing, per target.
pub(crate) async fn heap_growth(
    State(st): State<Arc<AppState>>,
    Query(q): Query<InsightQuery>,
) -> Result<Response, ApiError> {
    per_target(
        st,
        q,
        "heap",
        "heap growth",
        heap::defaults(),
        heap_by_series,
    )
    .await
}

fn heap_by_series(
    st: &AppState,
    sel: &Selector,
    from: i64,
    to: i64,
    rule: &growth::Rule,
) -> Result<Vec<SeriesFindings<heap::Finding>>, ApiError> {
    let mut per: BTreeMap<Labels, Vec<heap::Snapshot>> = BTreeMap::new();
    each_profile(st, sel, "heap", from, to, &mut |labels, p| {
        // A profile without inuse_space (not a heap profile) is skipped.
        if let Ok(snap) = heap::snapshot_from_profile(&p) {
            per.entry(labels.clone()).or_default().push(snap);
        }
    })?;
    Ok(per
        .into_iter()
        .map(|(labels, mut snaps)| SeriesFindings {
            labels,
            snapshots: snaps.len(),
            findings: heap::find(&mut snaps, rule),
        })
        .collect())
}

/// How far back `/metrics` looks, and how long its answer is reused: Prometheus may scrape
/// every few seconds, the analyses read every goroutine and heap profile in the window.
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
        let from = to - METRICS_WINDOW_NS;
        let all = Selector {
            kind: None,
            matchers: Vec::new(),
        };
        let mut o = String::new();
        let leaks = leaks_by_series(&st2, &all, from, to, &leaks::defaults()).unwrap_or_default();
        gauges(
            &mut o,
            &leaks,
            &[
                (
                    "gocost_goroutine_leak_rate_per_hour",
                    "Growth of a leaking goroutine group (goroutines per hour) over the last 15 minutes.",
                    |f| f.rate_per_hour,
                ),
                (
                    "gocost_goroutine_leak_goroutines",
                    "Goroutines in a leaking group at the last scrape.",
                    |f| f.count as f64,
                ),
                (
                    "gocost_goroutine_leak_confidence",
                    "0..1: how sure the evidence makes gocost of the leak (1 = proven by Go's runtime).",
                    |f| f.confidence,
                ),
            ],
            |f| vec![("function", f.function.as_str()), ("blocking", f.blocking.as_str())],
        );
        let heaps = heap_by_series(&st2, &all, from, to, &heap::defaults()).unwrap_or_default();
        gauges(
            &mut o,
            &heaps,
            &[
                (
                    "gocost_heap_growth_bytes_per_hour",
                    "Growth of the heap in use of an allocation site that keeps growing (last 15 minutes).",
                    |f| f.rate_bytes_per_hour,
                ),
                (
                    "gocost_heap_growth_inuse_bytes",
                    "Heap in use of a growing allocation site at its last heap profile.",
                    |f| f.inuse_bytes as f64,
                ),
            ],
            |f| vec![("site", f.site.as_str())],
        );
        o
    })
    .await
    .unwrap_or_default();
    if let Ok(mut c) = st.insight_metrics.lock() {
        *c = Some((std::time::Instant::now(), text.clone()));
    }
    text
}

/// One gauge family per (name, help, value): a sample per finding, labelled with its
/// target's labels plus the finding's own.
fn gauges<F>(
    o: &mut String,
    series: &[SeriesFindings<F>],
    families: &[Family<F>],
    labels_of: fn(&F) -> Vec<(&str, &str)>,
) {
    use std::fmt::Write as _;
    for (name, help, value) in families {
        let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} gauge");
        for s in series {
            for f in &s.findings {
                let labels: Vec<String> = s
                    .labels
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .chain(labels_of(f))
                    .map(|(k, v)| format!("{k}=\"{}\"", crate::esc(v)))
                    .collect();
                let _ = writeln!(o, "{name}{{{}}} {}", labels.join(","), value(f));
            }
        }
    }
}
