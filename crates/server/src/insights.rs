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
        if per.is_empty() {
            return Err(ApiError::NotFound(format!(
                "no goroutine profiles match {text} in the range"
            )));
        }
        let params = leaks::Params {
            min_rate_per_hour: q.min_rate.unwrap_or(60.0),
            ..leaks::Params::default()
        };
        let out: Vec<SeriesLeaks> = per
            .into_iter()
            .map(|(labels, mut snaps)| SeriesLeaks {
                labels,
                snapshots: snaps
                    .iter()
                    .filter(|s| s.groups.values().any(|g| g.count > 0))
                    .count(),
                findings: leaks::find(&mut snaps, &params),
            })
            .collect();
        Ok(out)
    })
    .await??;
    Ok(axum::Json(body).into_response())
}
