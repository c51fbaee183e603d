//! `/api/v1/timeline`: a selection's totals per time bucket, optionally broken down by a
//! pprof label's values.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use gocost_store::Agg;

use crate::query::blocking;
use crate::routes::profiles::report;
use crate::select::{RangeQuery, agg_of, selection};
use crate::{ApiError, AppState};

/// Totals per time bucket of the selected profiles (for the default or given sample type).
/// Snapshot columns (goroutines, heap in use) are each series' mean in the bucket, summed
/// over series; with `agg=sum`, plain sums.
pub(crate) async fn timeline(
    State(st): State<Arc<AppState>>,
    Query(q): Query<RangeQuery>,
) -> Result<Response, ApiError> {
    st.requests.fetch_add(1, Ordering::Relaxed);
    let body = blocking(&st, move |st| {
        let (sel, from, to) = selection(st, &q)?;
        let step = match &q.step {
            Some(s) => gocost_config::parse_duration(s)
                .map_err(ApiError::BadRequest)?
                .as_nanos() as i64,
            None => ((to - from) / 120).max(1_000_000_000),
        }
        .max(1_000_000);
        if (to - from) / step > 10_000 {
            return Err(ApiError::BadRequest(
                "step too small for the range (at most 10000 points)".into(),
            ));
        }
        let agg = agg_of(&q)?;
        let by = q.by.clone().filter(|b| !b.is_empty());
        // (Bucket start, series) → (Σ value per value of the `by` label ("" without one or
        // without `by`), profiles merged).
        type Cell = (BTreeMap<String, i64>, u64);
        let mut cells: BTreeMap<(i64, gocost_store::SeriesKey), Cell> = BTreeMap::new();
        // Whether the column is a snapshot (averaged per series unless agg=sum).
        let (mut stype, mut unit, mut snapshot) = (String::new(), String::new(), false);
        let wanted = q.sample_index.as_deref().unwrap_or("");
        let mut bad_index = None;
        // Refined, each profile goes through pprof's filters first (the report's sample
        // values, not its total, which is from before filtering).
        let refined = q.refine.changes_profile();
        let labels = by.is_some() || q.refine.filters_tags();
        let mut bad_refine = None;
        let mut visit = |k: &gocost_store::SeriesKey, t: i64, n: u64, p: gocost_pprof::Profile| {
            let p = if refined {
                match report(p, &q) {
                    Ok(r) => r.prof,
                    Err(e) => {
                        bad_refine = Some(e);
                        return Ok(());
                    }
                }
            } else {
                p
            };
            let i = match p.sample_index_by_name(wanted) {
                Ok(i) => i,
                Err(e) => {
                    bad_index = Some(e);
                    return Ok(());
                }
            };
            stype = p.sample_type[i].r#type.to_string();
            unit = p.sample_type[i].unit.to_string();
            snapshot = gocost_store::is_snapshot(&k.kind, &stype);
            let c = cells
                .entry((from + (t - from) / step * step, k.clone()))
                .or_default();
            match by.as_deref() {
                Some(b) => {
                    for s in &p.sample {
                        *c.0.entry(label_value(s, b)).or_default() += s.value[i];
                    }
                }
                // Without `by`, one total: no per-sample map lookup.
                None => {
                    let v: i64 = p.sample.iter().map(|s| s.value[i]).sum();
                    *c.0.entry(String::new()).or_default() += v;
                }
            }
            c.1 += n;
            Ok(())
        };
        // Plain totals need no stacks: the store reads them without rebuilding profiles.
        if refined || labels {
            st.store
                .for_each_profile(&sel, from, to, Some(step), labels, &mut visit)?;
        } else {
            st.store
                .for_each_total(&sel, from, to, Some(step), &mut visit)?;
        }
        if let Some(e) = bad_index {
            return Err(ApiError::BadRequest(e));
        }
        if let Some(e) = bad_refine {
            return Err(e);
        }
        // Bucket start → (value per label value, profiles merged).
        let mut buckets: BTreeMap<i64, (BTreeMap<String, i64>, u64)> = BTreeMap::new();
        for ((b, _), (vals, n)) in cells {
            let e = buckets.entry(b).or_default();
            for (label, v) in vals {
                *e.0.entry(label).or_default() += if snapshot && agg != Agg::Sum {
                    (v as f64 / n.max(1) as f64).round() as i64
                } else {
                    v
                };
            }
            e.1 += n;
        }
        let points: Vec<[i64; 2]> = buckets
            .iter()
            .map(|(t, (v, _))| [t / 1_000_000, v.values().sum()])
            .collect();
        let counts: Vec<u64> = buckets.values().map(|(_, n)| *n).collect();
        // With `by`: the ten values of the label with the most in the range, then the rest.
        let series = by.map(|_| {
            let mut totals: BTreeMap<&str, i64> = BTreeMap::new();
            for (vals, _) in buckets.values() {
                for (l, v) in vals {
                    *totals.entry(l).or_default() += v.abs();
                }
            }
            let mut ranked: Vec<(&str, i64)> = totals.into_iter().collect();
            ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
            let top: Vec<&str> = ranked.iter().take(10).map(|x| x.0).collect();
            let mut out: Vec<serde_json::Value> = top
                .iter()
                .map(|l| {
                    let pts: Vec<[i64; 2]> = buckets
                        .iter()
                        .map(|(t, (v, _))| [t / 1_000_000, v.get(*l).copied().unwrap_or(0)])
                        .collect();
                    serde_json::json!({ "value": l, "points": pts })
                })
                .collect();
            if ranked.len() > top.len() {
                let pts: Vec<[i64; 2]> = buckets
                    .iter()
                    .map(|(t, (v, _))| {
                        let rest = v
                            .iter()
                            .filter(|(l, _)| !top.contains(&l.as_str()))
                            .map(|(_, x)| x)
                            .sum();
                        [t / 1_000_000, rest]
                    })
                    .collect();
                out.push(serde_json::json!({ "value": "other", "other": true, "points": pts }));
            }
            out
        });
        let mut body = serde_json::json!({
            "sample_type": stype, "unit": unit, "step_ms": step / 1_000_000, "points": points,
            "counts": counts,
        });
        if let Some(series) = series {
            body["series"] = serde_json::Value::Array(series);
        }
        Ok::<_, ApiError>(body)
    })
    .await??;
    Ok(axum::Json(body).into_response())
}

/// A sample's value of label `key` as the timeline breaks it down: the string value, or a
/// number in its unit as `-tags` prints it; `""` without one.
fn label_value(s: &gocost_pprof::Sample, key: &str) -> String {
    s.label
        .iter()
        .find(|l| &*l.key == key)
        .map_or(String::new(), |l| match &l.value {
            gocost_pprof::LabelValue::Str(v) => v.to_string(),
            gocost_pprof::LabelValue::Num { value, unit } => {
                gocost_pprof::units::scaled_label(*value, unit, "minimum")
            }
        })
}
