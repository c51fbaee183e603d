//! Regressions, the analysis behind `/api/v1/regressions`, the regression gauges and alert
//! rules: per target, the build changes in its CPU profiles over the range (the main
//! mapping's build ID, or the `version` label) and the functions each change made
//! significantly more expensive ([`gocost_insights::regress`]).
//!
//! A target is a series' labels without `version`: series that differ only in `version`
//! are one service across its deploys (a job whose `labels` say `version = "1.4.2"`, changed
//! on reload, or pushed profiles labelled per release). Instances stay separate targets:
//! each is compared with itself, so a rolling deploy is judged per instance.

use std::collections::BTreeMap;

use gocost_insights::regress::{self, Change, Observation, Rule};
use gocost_store::Selector;
use serde::Serialize;

use crate::ApiError;
use crate::query::Lent;
use crate::select::each_profile;

/// The label that names a release; its changes are build changes.
pub(crate) const VERSION_LABEL: &str = "version";

/// One target's build changes.
#[derive(Serialize)]
pub(crate) struct SeriesRegressions {
    /// The series' labels without `version`.
    pub labels: BTreeMap<String, String>,
    /// CPU profiles read.
    pub profiles: usize,
    pub changes: Vec<Change>,
}

/// Build changes per target with the default rule (for `/metrics` and the UI).
pub(crate) fn regressions_by_series(
    st: &Lent<'_>,
    sel: &Selector,
    from: i64,
    to: i64,
) -> Result<Vec<SeriesRegressions>, ApiError> {
    regressions_with(st, sel, from, to, &Rule::default())
}

pub(crate) fn regressions_with(
    st: &Lent<'_>,
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
