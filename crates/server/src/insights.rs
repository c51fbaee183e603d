//! The insight analyses per target over stored profiles (`gocost-insights`): goroutine
//! leaks, heap growth, cost, GC. The API's insight routes (`routes/insights.rs`), the
//! `/metrics` gauges (`routes/metrics.rs`) and the alert rules (`alerts.rs`) all call these;
//! they read the store through [`crate::select`] and answer typed findings, never HTTP.

use std::collections::BTreeMap;

use gocost_insights::{cost, gc, growth, heap, leaks};
use gocost_store::{Matcher, Selector};
use serde::Serialize;

use crate::ApiError;
use crate::query::Lent;
use crate::select::{Labels, Merged, each_profile, merged_by_series};

/// One target's findings.
#[derive(Serialize)]
pub(crate) struct SeriesFindings<F> {
    pub labels: BTreeMap<String, String>,
    /// Profiles analysed (for leaks: goroutine profiles).
    pub snapshots: usize,
    pub findings: Vec<F>,
}

pub(crate) fn leaks_by_series(
    st: &Lent<'_>,
    sel: &Selector,
    from: i64,
    to: i64,
    rule: &growth::Rule,
) -> Result<Vec<SeriesFindings<leaks::Finding>>, ApiError> {
    // Each snapshot folded into its target's history as it is read: a window of a fleet's
    // goroutine profiles never sits in memory as snapshots.
    let mut per: BTreeMap<Labels, leaks::History> = BTreeMap::new();
    each_profile(st, sel, "goroutine", from, to, &mut |labels, p| {
        let s = leaks::snapshot_from_profile(&p, false);
        match per.get_mut(labels) {
            Some(h) => h.push(s),
            None => per.entry(labels.clone()).or_default().push(s),
        }
    })?;
    // Proof only for targets with goroutine profiles in range.
    each_profile(st, sel, "goroutineleak", from, to, &mut |labels, p| {
        if let Some(h) = per.get_mut(labels) {
            h.push(leaks::snapshot_from_profile(&p, true));
        }
    })?;
    Ok(per
        .into_iter()
        .map(|(labels, h)| SeriesFindings {
            labels,
            snapshots: h.counted(),
            findings: h.find(rule),
        })
        .collect())
}

pub(crate) fn heap_by_series(
    st: &Lent<'_>,
    sel: &Selector,
    from: i64,
    to: i64,
    rule: &growth::Rule,
) -> Result<Vec<SeriesFindings<heap::Finding>>, ApiError> {
    let mut per: BTreeMap<Labels, heap::History> = BTreeMap::new();
    each_profile(st, sel, "heap", from, to, &mut |labels, p| {
        // A profile without inuse_space (not a heap profile) is skipped.
        if let Ok(snap) = heap::snapshot_from_profile(&p) {
            match per.get_mut(labels) {
                Some(h) => h.push(snap),
                None => per.entry(labels.clone()).or_default().push(snap),
            }
        }
    })?;
    let mut out: Vec<SeriesFindings<heap::Finding>> = per
        .into_iter()
        .map(|(labels, h)| SeriesFindings {
            labels,
            snapshots: h.len(),
            findings: h.find(rule),
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

/// Memory series gocost prefers for cost, best first.
const MEMORY_METRICS: &[(&str, cost::MemorySource)] = &[
    ("process_resident_memory_bytes", cost::MemorySource::Rss),
    ("go_memstats_sys_bytes", cost::MemorySource::GoSys),
];

/// Each target's cost estimate over `[from, to]`: CPU and heap profiles, memory from its
/// runtime metrics when scraped.
pub(crate) fn cost_by_series(
    st: &Lent<'_>,
    sel: &Selector,
    from: i64,
    to: i64,
    rates: &cost::Rates,
) -> Result<Vec<(Labels, cost::Estimate)>, ApiError> {
    let mut out = Vec::new();
    for sel in target_batches(st, sel) {
        let cpu = merged_by_series(st, &sel, "cpu", from, to)?;
        out.extend(cost_with(st, &sel, from, to, rates, &cpu)?);
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Instances per batch of an analysis over many targets ([`target_batches`]).
pub(crate) const BATCH: usize = 64;

/// `sel` split by the instances of the series it matches into selectors of at most
/// [`BATCH`] instances each (`instance=~"a|b|…"`, the values escaped), then the series
/// without an instance: every series is in exactly one batch with the rest of its target.
/// An analysis that merges each target's profiles holds a batch's merges at a time, not a
/// fleet's (docs/adr/0030). `sel` itself when it matches fewer instances.
pub(crate) fn target_batches(st: &Lent<'_>, sel: &Selector) -> Vec<Selector> {
    let labels_only = Selector {
        kind: None,
        matchers: sel.matchers.clone(),
    };
    let instances: std::collections::BTreeSet<String> = st
        .store
        .series()
        .into_iter()
        .filter(|k| labels_only.matches(k))
        .filter_map(|mut k| k.labels.remove("instance"))
        .filter(|i| !i.is_empty())
        .collect();
    if instances.len() <= BATCH {
        return vec![sel.clone()];
    }
    let instances: Vec<String> = instances.into_iter().collect();
    let with = |m: Matcher| {
        let mut s = sel.clone();
        s.matchers.push(m);
        s
    };
    let mut out = Vec::new();
    for chunk in instances.chunks(BATCH) {
        match Matcher::one_of("instance", chunk) {
            Ok(m) => out.push(with(m)),
            // Cannot happen (escaped literals); all at once rather than none.
            Err(e) => {
                tracing::warn!(target: "gocost::query", error = %e, "batching targets by instance");
                return vec![sel.clone()];
            }
        }
    }
    if let Some(none) = Selector::parse("{instance=\"\"}")
        .ok()
        .and_then(|s| s.matchers.into_iter().next())
    {
        out.push(with(none));
    }
    out
}

/// [`cost_by_series`] with the targets' CPU profiles already merged (`/metrics` shares them
/// with GC).
pub(crate) fn cost_with(
    st: &Lent<'_>,
    sel: &Selector,
    from: i64,
    to: i64,
    rates: &cost::Rates,
    cpu: &Merged,
) -> Result<Vec<(Labels, cost::Estimate)>, ApiError> {
    let mut per: BTreeMap<Labels, cost::Usage> = BTreeMap::new();
    // A target whose stored profiles are not what cost reads (a "cpu" series pushed without
    // a cpu/nanoseconds column, say) is left out of the table and logged; the others are
    // still priced.
    let skip = |labels: &Labels, e: String| {
        tracing::warn!(target: "gocost::query", target_labels = ?labels, error = %e, "cost: a target's profiles cannot be priced; left out");
    };
    let mut unpriced: Vec<Labels> = Vec::new();
    for (labels, (p, n)) in cpu {
        if let Err(e) = per
            .entry(labels.clone())
            .or_default()
            .add_cpu_merged(p.clone(), *n)
        {
            skip(labels, e);
            unpriced.push(labels.clone());
        }
    }
    for (labels, (p, n)) in merged_by_series(st, sel, "heap", from, to)? {
        if let Err(e) = per.entry(labels.clone()).or_default().add_heap_merged(p, n) {
            skip(&labels, e);
            unpriced.push(labels);
        }
    }
    for l in &unpriced {
        per.remove(l);
    }
    // Memory: the mean of the best memory metric each target has.
    let names: Vec<&str> = MEMORY_METRICS.iter().map(|m| m.0).collect();
    let mut msel = Selector::parse(&format!("metric{{__name__=~\"{}\"}}", names.join("|")))
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    msel.matchers.extend(sel.matchers.iter().cloned());
    let points = st.store.select_points(&msel, from, to)?;
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
    Ok(per
        .into_iter()
        .filter(|(_, u)| !u.is_empty())
        .filter_map(|(l, u)| match u.estimate(rates) {
            Ok(e) => Some((l, e)),
            Err(e) => {
                skip(&l, e);
                None
            }
        })
        .collect())
}

/// One target's GC cost.
#[derive(Serialize, Default)]
pub(crate) struct GcCost {
    pub labels: Labels,
    /// Stop-the-world pauses in the range: from the job's `metrics = ["expvar"]` (one per GC
    /// cycle), else from its execution traces (each GC stop-the-world pause).
    pub pauses: Option<gc::Pauses>,
    /// Where the pauses come from: `expvar` or `trace`.
    pub pause_source: Option<&'static str>,
    pub heatmap: Option<gc::Heatmap>,
    /// The collector's share of the CPU profiles' time.
    pub gc_cpu: Option<gc::GcCpu>,
    /// Allocation rates from the `allocs` deltas, by site.
    pub allocation: Option<gc::Allocation>,
}

pub(crate) fn gc_by_series(
    st: &Lent<'_>,
    sel: &Selector,
    from: i64,
    to: i64,
    top: usize,
) -> Result<Vec<GcCost>, ApiError> {
    let mut out = Vec::new();
    for sel in target_batches(st, sel) {
        let cpu = merged_by_series(st, &sel, "cpu", from, to)?;
        out.extend(gc_with(st, &sel, from, to, top, &cpu)?);
    }
    out.sort_by(|a, b| a.labels.cmp(&b.labels));
    Ok(out)
}

/// [`gc_by_series`] with the targets' CPU profiles already merged.
pub(crate) fn gc_with(
    st: &Lent<'_>,
    sel: &Selector,
    from: i64,
    to: i64,
    top: usize,
    cpu: &Merged,
) -> Result<Vec<GcCost>, ApiError> {
    let allocs = merged_by_series(st, sel, "allocs", from, to)?;
    let mut out: BTreeMap<Labels, GcCost> = BTreeMap::new();
    let mut psel = Selector::parse("metric{__name__=\"go_gc_pause_seconds\"}")
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    psel.matchers.extend(sel.matchers.iter().cloned());
    for (key, pts) in st.store.select_points(&psel, from, to)? {
        let mut labels = key.labels;
        labels.remove("__name__");
        let g = out.entry(labels.clone()).or_default();
        g.labels = labels;
        g.pauses = gc::pauses(&pts);
        g.heatmap = Some(gc::heatmap(&pts, from, to, 60));
        g.pause_source = Some("expvar");
    }
    // Without expvar: the GC's stop-the-world pauses from the target's execution traces.
    let mut tsel =
        Selector::parse("metric{__name__=\"go_trace_stw_pause_seconds\",reason=~\"GC .*\"}")
            .map_err(|e| ApiError::Internal(e.to_string()))?;
    tsel.matchers.extend(sel.matchers.iter().cloned());
    let mut traced: BTreeMap<Labels, Vec<(i64, f64)>> = BTreeMap::new();
    for (key, pts) in st.store.select_points(&tsel, from, to)? {
        let mut labels = key.labels;
        labels.remove("__name__");
        labels.remove("reason");
        traced.entry(labels).or_default().extend(pts);
    }
    for (labels, mut pts) in traced {
        if out.get(&labels).is_some_and(|g| g.pauses.is_some()) {
            continue;
        }
        pts.sort_by_key(|p| p.0);
        let g = out.entry(labels.clone()).or_default();
        g.labels = labels;
        g.pauses = gc::pauses(&pts);
        g.heatmap = Some(gc::heatmap(&pts, from, to, 60));
        g.pause_source = Some("trace");
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
