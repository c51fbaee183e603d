//! `/api/v1/regressions`: per target, the build changes in its CPU profiles over the range
//! (the main mapping's build ID, or the `version` label) and the functions each change made
//! significantly more expensive ([`gocost_insights::regress`]).
//!
//! A target is a series' labels without `version`: series that differ only in `version`
//! are one service across its deploys (a job whose `labels` say `version = "1.4.2"`, changed
//! on reload, or pushed profiles labelled per release). Instances stay separate targets:
//! each is compared with itself, so a rolling deploy is judged per instance.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use gocost_insights::regress::{self, Change, Observation, Rule};
use gocost_store::Selector;
use serde::{Deserialize, Serialize};

use crate::insights::each_profile;
use crate::{ApiError, AppState, blocking, time_range};

/// The label that names a release; its changes are build changes.
pub(crate) const VERSION_LABEL: &str = "version";

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

/// One target's build changes.
#[derive(Serialize)]
pub(crate) struct SeriesRegressions {
    /// The series' labels without `version`.
    pub labels: BTreeMap<String, String>,
    /// CPU profiles read.
    pub profiles: usize,
    pub changes: Vec<Change>,
}

/// The CPU selector of `text` (the kind may be omitted).
fn cpu_selector(text: &str) -> Result<Selector, ApiError> {
    let mut sel = Selector::parse(text).map_err(ApiError::BadRequest)?;
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
    let body = blocking(move || {
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
        let out = regressions_with(&st, &sel, from, to, &rule)?;
        if out.is_empty() {
            return Err(ApiError::NotFound(format!(
                "no cpu profiles match {text} in the range"
            )));
        }
        Ok(out)
    })
    .await??;
    Ok(axum::Json(body).into_response())
}

/// Build changes per target with the default rule (for `/metrics` and the UI).
pub(crate) fn regressions_by_series(
    st: &AppState,
    sel: &Selector,
    from: i64,
    to: i64,
) -> Result<Vec<SeriesRegressions>, ApiError> {
    regressions_with(st, sel, from, to, &Rule::default())
}

fn regressions_with(
    st: &AppState,
    sel: &Selector,
    from: i64,
    to: i64,
    rule: &Rule,
) -> Result<Vec<SeriesRegressions>, ApiError> {
    // Two passes: which build each profile came from, then only the profiles compared
    // (a long range of many targets does not fit in memory; the profiles around each
    // change do).
    let mut per: BTreeMap<BTreeMap<String, String>, Vec<Observation>> = BTreeMap::new();
    each_profile(st, sel, "cpu", from, to, &mut |labels, p| {
        let mut target = labels.clone();
        let version = target.remove(VERSION_LABEL);
        per.entry(target).or_default().push(Observation::identity(
            p.time_nanos,
            version,
            regress::build_id(&p),
        ));
    })?;
    let wanted: BTreeMap<BTreeMap<String, String>, std::collections::BTreeSet<i64>> = per
        .iter_mut()
        .map(|(t, obs)| (t.clone(), regress::wanted(obs, rule)))
        .filter(|(_, w)| !w.is_empty())
        .collect();
    if !wanted.is_empty() {
        each_profile(st, sel, "cpu", from, to, &mut |labels, p| {
            let mut target = labels.clone();
            let version = target.remove(VERSION_LABEL);
            if !wanted
                .get(&target)
                .is_some_and(|w| w.contains(&p.time_nanos))
            {
                return;
            }
            if let Some(o) = per.get_mut(&target).and_then(|obs| {
                obs.iter_mut()
                    .find(|o| o.time_nanos == p.time_nanos && o.version == version)
            }) {
                o.profile = Some(p);
            }
        })?;
    }
    Ok(per
        .into_iter()
        .map(|(labels, mut obs)| SeriesRegressions {
            labels,
            profiles: obs.len(),
            changes: regress::find(&mut obs, rule),
        })
        .collect())
}
