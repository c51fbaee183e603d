//! Insight endpoints: analyses of stored profiles over time (`gocost-insights`), per target,
//! through the API and as gauges on `/metrics`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use gocost_insights::{cost, gc, growth, heap, leaks};
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
pub(crate) struct SeriesFindings<F> {
    pub labels: BTreeMap<String, String>,
    /// Profiles analysed (for leaks: goroutine profiles).
    pub snapshots: usize,
    pub findings: Vec<F>,
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
pub(crate) fn each_profile(
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
        .for_each_profile(&s, from, to, None, false, &mut |key, t, _, mut p| {
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

pub(crate) fn leaks_by_series(
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

pub(crate) fn heap_by_series(
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
    let mut out: Vec<SeriesFindings<heap::Finding>> = per
        .into_iter()
        .map(|(labels, mut snaps)| SeriesFindings {
            labels,
            snapshots: snaps.len(),
            findings: heap::find(&mut snaps, rule),
        })
        .collect();
    // Growing goroutine descriptors: the heap profile cannot say who starts them; the same
    // target's goroutine profiles can.
    let goroutines = |f: &heap::Finding| f.site == heap::GOROUTINES_SITE;
    if out.iter().any(|s| s.findings.iter().any(goroutines)) {
        let leaking: BTreeMap<Labels, Vec<String>> =
            leaks_by_series(st, sel, from, to, &leaks::defaults())?
                .into_iter()
                .map(|s| {
                    let fs = s.findings.iter().map(|f| f.function.clone()).collect();
                    (s.labels, fs)
                })
                .collect();
        for s in &mut out {
            for f in s.findings.iter_mut().filter(|f| goroutines(f)) {
                f.started_by = leaking.get(&s.labels).cloned().unwrap_or_default();
            }
        }
    }
    Ok(out)
}

#[derive(Deserialize, Default)]
pub(crate) struct CostQuery {
    query: Option<String>,
    from: Option<String>,
    to: Option<String>,
    /// Label names to add up by (comma-separated); default `job`. Empty: per target.
    by: Option<String>,
    /// Functions listed per group (default 20).
    top: Option<usize>,
}

/// One group's cost (targets whose `by` labels are equal), as `gocost cost` estimates it.
#[derive(Serialize)]
struct GroupCost {
    labels: Labels,
    /// Targets (label sets) added up.
    targets: usize,
    #[serde(flatten)]
    estimate: cost::Estimate,
}

/// `GET /api/v1/cost?query={job="api"}&from=now-24h&by=job`: what each service (or any
/// label's value) costs per hour and month, from its CPU profiles (cores), its resident
/// memory (or the Go runtime's, or the heap profiles'), priced with the `[cost]` rates;
/// biggest spenders first, each with its most expensive functions.
pub(crate) async fn cost(
    State(st): State<Arc<AppState>>,
    Query(q): Query<CostQuery>,
) -> Result<Response, ApiError> {
    st.requests.fetch_add(1, Ordering::Relaxed);
    let body = blocking(move || {
        let sel =
            Selector::parse(q.query.as_deref().unwrap_or("{}")).map_err(ApiError::BadRequest)?;
        if let Some(k) = sel.kind.as_deref()
            && k != "cpu"
            && k != "heap"
        {
            return Err(ApiError::BadRequest(format!(
                "cost reads cpu and heap profiles; leave the kind out of the query (got {k:?})"
            )));
        }
        let (from, to) = time_range(q.from.as_deref(), q.to.as_deref())?;
        let by: Vec<String> = match q.by.as_deref() {
            None => vec!["job".into()],
            Some(s) => s
                .split(',')
                .map(|x| x.trim().to_string())
                .filter(|x| !x.is_empty())
                .collect(),
        };
        let rates = st.cost_rates();
        let per = cost_by_series(&st, &sel, from, to, &rates)?;
        if per.is_empty() {
            return Err(ApiError::NotFound(format!(
                "no cpu or heap profiles match {} in the range",
                q.query.as_deref().unwrap_or("{}")
            )));
        }
        let mut groups: BTreeMap<Labels, GroupCost> = BTreeMap::new();
        for (labels, e) in per {
            let key: Labels = if by.is_empty() {
                labels
            } else {
                by.iter()
                    .map(|k| (k.clone(), labels.get(k).cloned().unwrap_or_default()))
                    .collect()
            };
            match groups.get_mut(&key) {
                Some(g) => {
                    g.targets += 1;
                    g.estimate.add(&e);
                }
                None => {
                    groups.insert(
                        key.clone(),
                        GroupCost {
                            labels: key,
                            targets: 1,
                            estimate: e,
                        },
                    );
                }
            }
        }
        let mut groups: Vec<GroupCost> = groups.into_values().collect();
        groups.sort_by(|a, b| {
            b.estimate
                .total_per_month
                .total_cmp(&a.estimate.total_per_month)
        });
        let top = q.top.unwrap_or(20);
        for g in &mut groups {
            g.estimate.functions.truncate(top);
        }
        let total: f64 = groups.iter().map(|g| g.estimate.total_per_month).sum();
        Ok(serde_json::json!({
            "by": by,
            "rates": rates,
            "hours_per_month": cost::HOURS_PER_MONTH,
            "total_per_month": total,
            "groups": groups,
        }))
    })
    .await??;
    Ok(axum::Json(body).into_response())
}

/// Memory series gocost prefers for cost, best first.
const MEMORY_METRICS: &[(&str, cost::MemorySource)] = &[
    ("process_resident_memory_bytes", cost::MemorySource::Rss),
    ("go_memstats_sys_bytes", cost::MemorySource::GoSys),
];

/// Each target's cost estimate over `[from, to]`: CPU and heap profiles, memory from its
/// runtime metrics when scraped.
pub(crate) fn cost_by_series(
    st: &AppState,
    sel: &Selector,
    from: i64,
    to: i64,
    rates: &cost::Rates,
) -> Result<Vec<(Labels, cost::Estimate)>, ApiError> {
    let cpu = merged_by_series(st, sel, "cpu", from, to)?;
    cost_with(st, sel, from, to, rates, &cpu)
}

/// Each target's profiles of `kind` in `[from, to]`, merged, and how many were merged.
pub(crate) type Merged = BTreeMap<Labels, (Profile, usize)>;

pub(crate) fn merged_by_series(
    st: &AppState,
    sel: &Selector,
    kind: &str,
    from: i64,
    to: i64,
) -> Result<Merged, ApiError> {
    let mut per: BTreeMap<Labels, (gocost_pprof::Combiner, usize)> = BTreeMap::new();
    let mut bad = None;
    each_profile(st, sel, kind, from, to, &mut |labels, p| {
        let (c, n) = per.entry(labels.clone()).or_default();
        *n += 1;
        if let Err(e) = c.push(p) {
            bad.get_or_insert(e);
        }
    })?;
    if let Some(e) = bad {
        return Err(ApiError::Internal(format!("merging {kind} profiles: {e}")));
    }
    Ok(per
        .into_iter()
        .filter_map(|(l, (c, n))| Some((l, (c.finish()?, n))))
        .collect())
}

/// [`cost_by_series`] with the targets' CPU profiles already merged (`/metrics` shares them
/// with GC).
fn cost_with(
    st: &AppState,
    sel: &Selector,
    from: i64,
    to: i64,
    rates: &cost::Rates,
    cpu: &Merged,
) -> Result<Vec<(Labels, cost::Estimate)>, ApiError> {
    let mut per: BTreeMap<Labels, cost::Usage> = BTreeMap::new();
    let bad = |e: String| ApiError::Internal(format!("cost: {e}"));
    for (labels, (p, n)) in cpu {
        per.entry(labels.clone())
            .or_default()
            .add_cpu_merged(p.clone(), *n)
            .map_err(bad)?;
    }
    for (labels, (p, n)) in merged_by_series(st, sel, "heap", from, to)? {
        per.entry(labels)
            .or_default()
            .add_heap_merged(p, n)
            .map_err(bad)?;
    }
    // Memory: the mean of the best memory metric each target has.
    let names: Vec<&str> = MEMORY_METRICS.iter().map(|m| m.0).collect();
    let mut msel = Selector::parse(&format!("metric{{__name__=~\"{}\"}}", names.join("|")))
        .map_err(ApiError::Internal)?;
    msel.matchers.extend(sel.matchers.iter().cloned());
    let points = st
        .store
        .select_points(&msel, from, to)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let mut best: BTreeMap<Labels, (usize, f64)> = BTreeMap::new();
    for (key, pts) in points {
        let mut labels = key.labels.clone();
        let Some(name) = labels.remove("__name__") else {
            continue;
        };
        let Some(rank) = MEMORY_METRICS.iter().position(|m| m.0 == name) else {
            continue;
        };
        if pts.is_empty() || !per.contains_key(&labels) {
            continue;
        }
        let mean = pts.iter().map(|p| p.1).sum::<f64>() / pts.len() as f64;
        if best.get(&labels).is_none_or(|b| rank < b.0) {
            best.insert(labels, (rank, mean));
        }
    }
    for (labels, (rank, mean)) in best {
        if let Some(u) = per.get_mut(&labels) {
            u.set_memory(mean, MEMORY_METRICS[rank].1);
        }
    }
    per.into_iter()
        .filter(|(_, u)| !u.is_empty())
        .map(|(l, u)| {
            u.estimate(rates)
                .map(|e| (l, e))
                .map_err(|e| ApiError::Internal(format!("cost: {e}")))
        })
        .collect()
}

/// One target's GC cost.
#[derive(Serialize, Default)]
pub(crate) struct GcCost {
    pub labels: Labels,
    /// Stop-the-world pauses in the range (needs the job's `metrics = ["expvar"]`).
    pub pauses: Option<gc::Pauses>,
    pub heatmap: Option<gc::Heatmap>,
    /// The collector's share of the CPU profiles' time.
    pub gc_cpu: Option<gc::GcCpu>,
    /// Allocation rates from the `allocs` deltas, by site.
    pub allocation: Option<gc::Allocation>,
}

#[derive(Deserialize, Default)]
pub(crate) struct GcQuery {
    query: Option<String>,
    from: Option<String>,
    to: Option<String>,
    /// Allocation sites listed (default 20).
    top: Option<usize>,
}

/// `GET /api/v1/gc?query={job="api"}&from=now-1h`: per target, GC pauses (quantiles and a
/// heatmap), the CPU the collector takes (from CPU profiles) and the allocation that drives
/// it (from allocs profiles, by site).
pub(crate) async fn gc(
    State(st): State<Arc<AppState>>,
    Query(q): Query<GcQuery>,
) -> Result<Response, ApiError> {
    st.requests.fetch_add(1, Ordering::Relaxed);
    let body = blocking(move || {
        let sel =
            Selector::parse(q.query.as_deref().unwrap_or("{}")).map_err(ApiError::BadRequest)?;
        if let Some(k) = sel.kind.as_deref() {
            return Err(ApiError::BadRequest(format!(
                "gc reads pauses, cpu and allocs profiles; leave the kind out of the query (got {k:?})"
            )));
        }
        let (from, to) = time_range(q.from.as_deref(), q.to.as_deref())?;
        let out = gc_by_series(&st, &sel, from, to, q.top.unwrap_or(20))?;
        if out.is_empty() {
            return Err(ApiError::NotFound(format!(
                "no GC pauses, cpu or allocs profiles match {} in the range",
                q.query.as_deref().unwrap_or("{}")
            )));
        }
        Ok(out)
    })
    .await??;
    Ok(axum::Json(body).into_response())
}

pub(crate) fn gc_by_series(
    st: &AppState,
    sel: &Selector,
    from: i64,
    to: i64,
    top: usize,
) -> Result<Vec<GcCost>, ApiError> {
    let cpu = merged_by_series(st, sel, "cpu", from, to)?;
    gc_with(st, sel, from, to, top, &cpu)
}

/// [`gc_by_series`] with the targets' CPU profiles already merged.
fn gc_with(
    st: &AppState,
    sel: &Selector,
    from: i64,
    to: i64,
    top: usize,
    cpu: &Merged,
) -> Result<Vec<GcCost>, ApiError> {
    let allocs = merged_by_series(st, sel, "allocs", from, to)?;
    let mut out: BTreeMap<Labels, GcCost> = BTreeMap::new();
    let mut psel =
        Selector::parse("metric{__name__=\"go_gc_pause_seconds\"}").map_err(ApiError::Internal)?;
    psel.matchers.extend(sel.matchers.iter().cloned());
    for (key, pts) in st
        .store
        .select_points(&psel, from, to)
        .map_err(|e| ApiError::Internal(e.to_string()))?
    {
        let mut labels = key.labels;
        labels.remove("__name__");
        let g = out.entry(labels.clone()).or_default();
        g.labels = labels;
        g.pauses = gc::pauses(&pts);
        g.heatmap = Some(gc::heatmap(&pts, from, to, 60));
    }
    for (labels, (p, _)) in cpu {
        let g = out.entry(labels.clone()).or_default();
        g.labels = labels.clone();
        g.gc_cpu = gc::gc_cpu(p).ok();
    }
    for (labels, (p, _)) in allocs {
        let g = out.entry(labels.clone()).or_default();
        g.labels = labels;
        g.allocation = gc::allocation(&p, top).ok();
    }
    Ok(out.into_values().collect())
}

/// Regressions need profiles on both sides of a deploy: `/metrics` looks back an hour.
const REGRESSION_WINDOW_NS: i64 = 3600 * 1_000_000_000;

/// `gocost_regression_change{function, build}`: how much more CPU (relative, 0.3 = +30 %) a
/// function takes since a build change of the last hour, per target.
fn regression_gauges(o: &mut String, st: &AppState, all: &Selector, from: i64, to: i64) {
    let per = crate::regress::regressions_by_series(st, all, from, to).unwrap_or_default();
    family(
        o,
        "gocost_regression_change",
        "Relative CPU increase of a function after a build change in the last hour (0.3 = 30 % more), significant after Holm correction.",
        per.iter().flat_map(|s| {
            s.changes.iter().filter(|c| c.compared).flat_map(move |c| {
                c.regressions.iter().map(move |r| {
                    let build = c.after.name();
                    (
                        label_text(&s.labels, &[("function", &r.function), ("build", build)]),
                        r.change,
                    )
                })
            })
        }),
    );
}

/// GC gauges per target over the `/metrics` window.
fn gc_gauges(o: &mut String, st: &AppState, all: &Selector, from: i64, to: i64, cpu: &Merged) {
    let per = gc_with(st, all, from, to, 0, cpu).unwrap_or_default();
    family(
        o,
        "gocost_gc_pause_seconds",
        "Stop-the-world GC pauses of the last 15 minutes (quantile 1 = the longest).",
        per.iter().flat_map(|g| {
            g.pauses.iter().flat_map(|p| {
                [
                    ("0.5", p.p50),
                    ("0.9", p.p90),
                    ("0.99", p.p99),
                    ("1", p.max),
                ]
                .map(|(q, v)| (label_text(&g.labels, &[("quantile", q)]), v))
            })
        }),
    );
    family(
        o,
        "gocost_gc_cpu_fraction",
        "Share of the last 15 minutes' CPU profile time spent in the garbage collector (mark, assists, sweep, stop-the-world).",
        per.iter()
            .filter_map(|g| Some((label_text(&g.labels, &[]), g.gc_cpu.as_ref()?.fraction))),
    );
    family(
        o,
        "gocost_allocation_bytes_per_second",
        "Bytes allocated per second over the last 15 minutes (allocs profiles).",
        per.iter().filter_map(|g| {
            Some((
                label_text(&g.labels, &[]),
                g.allocation.as_ref()?.bytes_per_second,
            ))
        }),
    );
}

/// One gauge family in Prometheus text: `# HELP`, `# TYPE`, then a sample per (labels, value).
fn family(
    o: &mut String,
    name: &str,
    help: &str,
    samples: impl IntoIterator<Item = (String, f64)>,
) {
    use std::fmt::Write as _;
    let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} gauge");
    for (labels, v) in samples {
        let _ = writeln!(o, "{name}{{{labels}}} {v}");
    }
}

/// Prometheus label text: a target's labels, then extra ones.
fn label_text(l: &Labels, extra: &[(&str, &str)]) -> String {
    l.iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .chain(extra.iter().copied())
        .map(|(k, v)| format!("{k}=\"{}\"", crate::esc(v)))
        .collect::<Vec<_>>()
        .join(",")
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
        // One merge of each target's CPU profiles serves cost and GC.
        let cpu = merged_by_series(&st2, &all, "cpu", from, to).unwrap_or_default();
        cost_gauges(&mut o, &st2, &all, from, to, &cpu);
        gc_gauges(&mut o, &st2, &all, from, to, &cpu);
        regression_gauges(&mut o, &st2, &all, to - REGRESSION_WINDOW_NS, to);
        o
    })
    .await
    .unwrap_or_default();
    if let Ok(mut c) = st.insight_metrics.lock() {
        *c = Some((std::time::Instant::now(), text.clone()));
    }
    text
}

/// Cost per target over the `/metrics` window: `gocost_cost_per_hour{resource="cpu|memory"}`,
/// `gocost_cost_cores`, `gocost_cost_memory_bytes`.
fn cost_gauges(o: &mut String, st: &AppState, all: &Selector, from: i64, to: i64, cpu: &Merged) {
    let rates = st.cost_rates();
    let per = cost_with(st, all, from, to, &rates, cpu).unwrap_or_default();
    family(
        o,
        "gocost_cost_per_hour",
        &format!(
            "What a target costs per hour (currency {}) at the [cost] rates, over the last 15 minutes: resource=\"cpu\" from CPU profiles, \"memory\" from resident memory (or the heap).",
            crate::esc(&rates.currency)
        ),
        per.iter().flat_map(|(l, e)| {
            [("cpu", e.cpu_per_hour), ("memory", e.memory_per_hour)]
                .map(|(r, v)| (label_text(l, &[("resource", r)]), v))
        }),
    );
    family(
        o,
        "gocost_cost_cores",
        "Cores a target kept busy on average over the last 15 minutes (CPU profiles).",
        per.iter().map(|(l, e)| (label_text(l, &[]), e.cores)),
    );
    family(
        o,
        "gocost_cost_memory_bytes",
        "Memory a target is charged for (mean over the last 15 minutes; see the API's memory_source).",
        per.iter()
            .map(|(l, e)| (label_text(l, &[]), e.memory_gib * 1024.0 * 1024.0 * 1024.0)),
    );
}

/// One gauge family per (name, help, value): a sample per finding, labelled with its
/// target's labels plus the finding's own.
fn gauges<F>(
    o: &mut String,
    series: &[SeriesFindings<F>],
    families: &[Family<F>],
    labels_of: fn(&F) -> Vec<(&str, &str)>,
) {
    for (name, help, value) in families {
        family(
            o,
            name,
            help,
            series.iter().flat_map(|s| {
                s.findings
                    .iter()
                    .map(|f| (label_text(&s.labels, &labels_of(f)), value(f)))
            }),
        );
    }
}
