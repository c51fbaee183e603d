//! The insight routes: `/api/v1/leaks`, `heap_growth`, `cost`, `gc` and `regressions` —
//! the request's selector and range checked, the analysis (`crate::insights`,
//! `crate::regress`) run as a query, its findings answered as JSON.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use gocost_insights::regress::Rule;
use gocost_insights::{cost, growth, heap, leaks};
use gocost_store::Selector;
use serde::{Deserialize, Serialize};

use crate::insights::{
    SeriesFindings, cost_by_series, gc_by_series, heap_by_series, leaks_by_series,
};
use crate::query::{Lent, blocking};
use crate::regress::regressions_with;
use crate::select::{Labels, empty_list};
use crate::time::time_range;
use crate::{ApiError, AppState};

#[derive(Deserialize, Default)]
pub(crate) struct InsightQuery {
    query: Option<String>,
    from: Option<String>,
    to: Option<String>,
    /// Slower growth (per hour) is not reported; default: the analysis's.
    min_rate: Option<f64>,
}

/// An analysis of the profiles a selector matches over a range, per target.
type Analysis<F> =
    fn(&Lent<'_>, &Selector, i64, i64, &growth::Rule) -> Result<Vec<SeriesFindings<F>>, ApiError>;

/// The selector of `q.query` for profiles of `kind` (which the query may omit).
fn kind_selector(q: &InsightQuery, kind: &str, what: &str) -> Result<Selector, ApiError> {
    let text = q.query.as_deref().unwrap_or(kind);
    let mut sel = Selector::parse(text)?;
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
/// and answers JSON: an empty list (200, its reason in `gocost-empty`) when no target has
/// profiles of the kind in the range.
async fn per_target<F: Serialize + Send + 'static>(
    st: Arc<AppState>,
    q: InsightQuery,
    kind: &'static str,
    what: &'static str,
    defaults: growth::Rule,
    analyse: Analysis<F>,
) -> Result<Response, ApiError> {
    st.requests.fetch_add(1, Ordering::Relaxed);
    let body = blocking(&st, move |st| {
        let sel = kind_selector(&q, kind, what)?;
        let (from, to) = time_range(q.from.as_deref(), q.to.as_deref())?;
        let rule = growth::Rule {
            min_rate_per_hour: q.min_rate.unwrap_or(defaults.min_rate_per_hour),
            ..defaults
        };
        let out = analyse(st, &sel, from, to, &rule)?;
        let empty = out.is_empty().then(|| {
            format!(
                "no {kind} profiles match {} in the range",
                q.query.as_deref().unwrap_or(kind)
            )
        });
        Ok::<_, ApiError>((out, empty))
    })
    .await??;
    Ok(empty_list(body.0, body.1))
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
    let body = blocking(&st, move |st| {
        let sel = Selector::parse(q.query.as_deref().unwrap_or("{}"))?;
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
        let per = cost_by_series(st, &sel, from, to, &rates)?;
        let empty = per.is_empty().then(|| {
            format!(
                "no cpu or heap profiles match {} in the range",
                q.query.as_deref().unwrap_or("{}")
            )
        });
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
        let mut out = serde_json::json!({
            "by": by,
            "rates": rates,
            "hours_per_month": cost::HOURS_PER_MONTH,
            "total_per_month": total,
            "groups": groups,
        });
        if let Some(reason) = empty {
            out["empty"] = reason.into();
        }
        Ok(out)
    })
    .await??;
    Ok(axum::Json(body).into_response())
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
    let body = blocking(&st, move |st| {
        let sel =
            Selector::parse(q.query.as_deref().unwrap_or("{}"))?;
        if let Some(k) = sel.kind.as_deref() {
            return Err(ApiError::BadRequest(format!(
                "gc reads pauses, cpu and allocs profiles; leave the kind out of the query (got {k:?})"
            )));
        }
        let (from, to) = time_range(q.from.as_deref(), q.to.as_deref())?;
        let out = gc_by_series(st, &sel, from, to, q.top.unwrap_or(20))?;
        let empty = out.is_empty().then(|| {
            format!(
                "no GC pauses, cpu or allocs profiles match {} in the range",
                q.query.as_deref().unwrap_or("{}")
            )
        });
        Ok((out, empty))
    })
    .await??;
    Ok(empty_list(body.0, body.1))
}

#[derive(Deserialize, Default)]
pub(crate) struct RegressQuery {
    query: Option<String>,
    from: Option<String>,
    to: Option<String>,
    /// Smallest change that counts, as a fraction (0.1 = 10 %).
    threshold: Option<f64>,
    /// Profiles needed per side before a change is judged, and compared at most.
    min_profiles: Option<usize>,
    max_profiles: Option<usize>,
}

/// The CPU selector of `text` (the kind may be omitted).
fn cpu_selector(text: &str) -> Result<Selector, ApiError> {
    let mut sel = Selector::parse(text)?;
    match sel.kind.as_deref() {
        None => sel.kind = Some("cpu".into()),
        Some("cpu") => {}
        Some(k) => {
            return Err(ApiError::BadRequest(format!(
                "regressions are found in cpu profiles, not {k:?}: query=cpu{{...}}"
            )));
        }
    }
    Ok(sel)
}

/// `GET /api/v1/regressions?query=cpu{job="api"}&from=now-1h`: per target, every build
/// change in the range and the functions it made more expensive.
pub(crate) async fn regressions(
    State(st): State<Arc<AppState>>,
    Query(q): Query<RegressQuery>,
) -> Result<Response, ApiError> {
    st.requests.fetch_add(1, Ordering::Relaxed);
    let body = blocking(&st, move |st| {
        let text = q.query.as_deref().unwrap_or("cpu");
        let sel = cpu_selector(text)?;
        let (from, to) = time_range(q.from.as_deref(), q.to.as_deref())?;
        let d = Rule::default();
        let rule = Rule {
            threshold: q.threshold.unwrap_or(d.threshold),
            min_profiles: q.min_profiles.unwrap_or(d.min_profiles).max(4),
            max_profiles: q.max_profiles.unwrap_or(d.max_profiles).clamp(4, 100),
            ..d
        };
        if !(0.0..=10.0).contains(&rule.threshold) {
            return Err(ApiError::BadRequest(format!(
                "threshold {} is not a fraction (0.1 = 10 %)",
                rule.threshold
            )));
        }
        let out = regressions_with(st, &sel, from, to, &rule)?;
        let empty = out
            .is_empty()
            .then(|| format!("no cpu profiles match {text} in the range"));
        Ok((out, empty))
    })
    .await??;
    Ok(empty_list(body.0, body.1))
}
