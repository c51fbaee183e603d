//! What a request selects, shared by every route and analysis: the query string of the
//! profile routes ([`RangeQuery`]), its selector, kind and range checked ([`selection`]),
//! the merged profile of a selection ([`merged`]), and per-target walks over stored profiles
//! ([`each_profile`], [`merged_by_series`]) that the insight analyses, regressions and
//! `/metrics` build on. It imports no route and no analysis, so those never import each
//! other.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;
use std::time::Instant;

use axum::response::{IntoResponse, Response};
use gocost_pprof::Profile;
use gocost_store::{Agg, Read, Selector};
use serde::{Deserialize, Serialize};

use crate::query::Lent;
use crate::time::time_range;
use crate::{ApiError, access};

/// A target's labels.
pub(crate) type Labels = BTreeMap<String, String>;

#[derive(Deserialize, Default)]
pub(crate) struct RangeQuery {
    pub(crate) query: Option<String>,
    pub(crate) from: Option<String>,
    pub(crate) to: Option<String>,
    pub(crate) sample_index: Option<String>,
    pub(crate) nodecount: Option<usize>,
    /// Timeline bucket width (a duration such as `1m`); default: the range / 120.
    pub(crate) step: Option<String>,
    /// Diff: the base selection (default: `query`) and its range.
    pub(crate) base_query: Option<String>,
    pub(crate) base_from: Option<String>,
    pub(crate) base_to: Option<String>,
    /// Flame: `json` (default), `svg`, `folded` or `speedscope`.
    pub(crate) format: Option<String>,
    /// Flame SVG: `1`/`true` for an icicle graph (root at the top).
    pub(crate) inverted: Option<String>,
    /// Flame JSON: the graph's width in pixels; children narrower than a pixel are folded
    /// into one row per parent (`gocost_flame::visible_rows`).
    pub(crate) width: Option<String>,
    /// Flame JSON: the zoomed node, a JSON array of frame labels from the root; below it,
    /// a pixel is measured against its width.
    pub(crate) zoom: Option<String>,
    /// pprof's refine options, as `go tool pprof -focus=…` etc.: regexps over frames
    /// (`focus`, `ignore`, `hide`, `show`, `show_from`, `prune_from`), label filters
    /// (`tagfocus`, `tagignore`), `granularity` (functions, filefunctions, files, lines,
    /// addresses), `noinlines`, and for top `cum` and `nodefraction`.
    #[serde(flatten)]
    pub(crate) refine: Refine,
    /// Timeline: break the totals down by this pprof label's values (`series`).
    pub(crate) by: Option<String>,
    /// Peek: the functions to show (a regexp, pprof's `-peek`).
    pub(crate) symbol: Option<String>,
    /// How a series' profiles over the range combine: `mean` (the default for goroutine,
    /// goroutineleak and heap: snapshots are averaged per series, series add up), `latest`
    /// (each series' last profile) or `sum` (pprof's plain merge).
    pub(crate) agg: Option<String>,
}

/// pprof's refine options in a query string.
#[derive(Deserialize, Default, Clone)]
pub(crate) struct Refine {
    pub(crate) focus: Option<String>,
    pub(crate) ignore: Option<String>,
    pub(crate) hide: Option<String>,
    pub(crate) show: Option<String>,
    pub(crate) show_from: Option<String>,
    pub(crate) prune_from: Option<String>,
    pub(crate) tagfocus: Option<String>,
    pub(crate) tagignore: Option<String>,
    pub(crate) granularity: Option<String>,
    pub(crate) noinlines: Option<String>,
    pub(crate) cum: Option<String>,
    /// A string: numbers inside a flattened struct arrive as text.
    pub(crate) nodefraction: Option<String>,
    /// The call graph's edge cutoff (a fraction of the total, as text).
    pub(crate) edgefraction: Option<String>,
}

pub(crate) fn flag(v: &Option<String>) -> bool {
    matches!(v.as_deref(), Some("" | "1" | "true"))
}

impl Refine {
    /// Whether a label filter (`tagfocus`, `tagignore`) is set: the samples' labels are needed.
    pub(crate) fn filters_tags(&self) -> bool {
        [&self.tagfocus, &self.tagignore]
            .iter()
            .any(|v| v.as_deref().is_some_and(|v| !v.is_empty()))
    }

    /// Whether any option changes the profile itself (not only how a report sorts it).
    pub(crate) fn changes_profile(&self) -> bool {
        [
            &self.focus,
            &self.ignore,
            &self.hide,
            &self.show,
            &self.show_from,
            &self.prune_from,
            &self.tagfocus,
            &self.tagignore,
            &self.granularity,
        ]
        .iter()
        .any(|v| v.as_deref().is_some_and(|v| !v.is_empty()))
            || flag(&self.noinlines)
    }
}

/// The `agg` of a request, or the default: [`Agg::Mean`] (it only changes snapshot columns,
/// so it is pprof's sum for every other kind).
pub(crate) fn agg_of(q: &RangeQuery) -> Result<Agg, ApiError> {
    q.agg
        .as_deref()
        .map_or(Ok(Agg::Mean), Agg::parse)
        .map_err(ApiError::BadRequest)
}

pub(crate) fn selection(st: &Lent<'_>, q: &RangeQuery) -> Result<(Selector, i64, i64), ApiError> {
    let text = q
        .query
        .as_deref()
        .ok_or_else(|| ApiError::BadRequest("missing query=KIND{label=\"v\"}".into()))?;
    let sel = Selector::parse(text)?;
    match sel.kind.as_deref() {
        None => {
            return Err(ApiError::BadRequest(format!(
                "query {text:?} needs a profile kind ({})",
                gocost_store::KINDS.join(", ")
            )));
        }
        Some(k) => known_kind(st, &sel, k)?,
    }
    let (from, to) = time_range(q.from.as_deref(), q.to.as_deref())?;
    Ok((sel, from, to))
}

/// A kind gocost scrapes, or one the store holds (pushed kinds such as the Node agent's
/// `wall`): else the query names a kind that cannot exist here, a user's mistake answered 400
/// with the kinds there are. (A known kind with nothing in the range is an empty answer.)
fn known_kind(st: &Lent<'_>, sel: &Selector, kind: &str) -> Result<(), ApiError> {
    if gocost_store::KINDS.contains(&kind) {
        return Ok(());
    }
    // With tenancy, only the kinds of the tenant's own series count (and are named).
    let stored: BTreeSet<String> =
        match sel.matchers.iter().find(|m| m.name == access::TENANT_LABEL) {
            Some(t) => st
                .store
                .series()
                .into_iter()
                .filter(|k| t.matches(k.labels.get(access::TENANT_LABEL).map(String::as_str)))
                .map(|k| k.kind)
                .collect(),
            None => st.store.kinds(),
        };
    if stored.contains(kind) {
        return Ok(());
    }
    let pushed: Vec<&str> = stored
        .iter()
        .map(String::as_str)
        .filter(|k| !gocost_store::KINDS.contains(k))
        .collect();
    Err(ApiError::BadRequest(format!(
        "unknown profile kind {kind:?}: the kinds are {}{}",
        gocost_store::KINDS.join(", "),
        if pushed.is_empty() {
            String::new()
        } else {
            format!(", and pushed here: {}", pushed.join(", "))
        }
    )))
}

/// The selection's profile as pprof's merge of the stored profiles gives it, sample for
/// sample (downloads, diffs of downloads).
pub(crate) fn merged(st: &Lent<'_>, q: &RangeQuery) -> Result<gocost_pprof::Profile, ApiError> {
    merged_as(st, q, Read::Exact)
}

/// [`merged`] for a report: summed in stack space (docs/adr/0017), with sample labels when
/// the report shows them (`labels`: tags, the call graph's tag nodes) or a tag filter needs
/// them.
pub(crate) fn merged_for_report(
    st: &Lent<'_>,
    q: &RangeQuery,
    labels: bool,
) -> Result<gocost_pprof::Profile, ApiError> {
    let labels = labels || q.refine.filters_tags();
    merged_as(st, q, Read::Summed { labels })
}

fn merged_as(st: &Lent<'_>, q: &RangeQuery, read: Read) -> Result<gocost_pprof::Profile, ApiError> {
    let (sel, from, to) = selection(st, q)?;
    let agg = agg_of(q)?;
    let t = Instant::now();
    let res = st.store.query_agg_as(&sel, from, to, agg, read);
    st.queries.fetch_add(1, Ordering::Relaxed);
    st.query_nanos
        .fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
    match res {
        Ok(Some(p)) => Ok(p),
        // The selector is not echoed: with tenancy it holds the tenant's reserved matcher.
        Ok(None) => Err(ApiError::NotFound(format!(
            "no {} profiles match the selector in the range",
            sel.kind.as_deref().unwrap_or("")
        ))),
        Err(e) => {
            st.query_errors.fetch_add(1, Ordering::Relaxed);
            Err(e.into())
        }
    }
}

/// Nothing in the range is an answer, not a failure: JSON reports answer 200 with their
/// empty shape and the reason in `empty` (a pprof download, which must be a profile, and
/// text reports still answer 404).
pub(crate) fn empty_answer(reason: String, mut shape: serde_json::Value) -> Response {
    shape["empty"] = serde_json::Value::String(reason);
    axum::Json(shape).into_response()
}

/// [`merged`] for the base side of a diff: "nothing matched" says it was the base.
pub(crate) fn merged_base(
    st: &Lent<'_>,
    q: &RangeQuery,
) -> Result<gocost_pprof::Profile, ApiError> {
    merged(st, q).map_err(|e| match e {
        ApiError::NotFound(_) | ApiError::BadRequest(_) => e.context("base: "),
        e => e,
    })
}

/// The base side of a diff request: `base_query` (default `query`) over
/// `base_from..base_to`, both required.
pub(crate) fn base_of(q: &RangeQuery) -> Result<RangeQuery, ApiError> {
    if q.base_from.is_none() || q.base_to.is_none() {
        return Err(ApiError::BadRequest(
            "diff needs base_from and base_to".into(),
        ));
    }
    Ok(RangeQuery {
        query: q.base_query.clone().or_else(|| q.query.clone()),
        from: q.base_from.clone(),
        to: q.base_to.clone(),
        agg: q.agg.clone(),
        refine: q.refine.clone(),
        ..RangeQuery::default()
    })
}

/// A list answer: an empty one is 200 `[]` like any other, its reason in the
/// `Gocost-Empty` header (nothing in a range is an answer, not an error).
pub(crate) fn empty_list<T: Serialize>(list: Vec<T>, empty: Option<String>) -> Response {
    let mut r = axum::Json(list).into_response();
    if let Some(reason) = empty
        && let Ok(v) = axum::http::HeaderValue::from_str(&reason)
    {
        r.headers_mut().insert("gocost-empty", v);
    }
    r
}

/// Calls `f` with every profile of `kind` matching `sel`'s labels in `[from, to]`, its time
/// set to when it was stored.
pub(crate) fn each_profile(
    st: &Lent<'_>,
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
        .map_err(ApiError::from)
}

/// Each target's profiles of `kind` in `[from, to]`, merged, and how many were merged.
pub(crate) type Merged = BTreeMap<Labels, (Profile, usize)>;

pub(crate) fn merged_by_series(
    st: &Lent<'_>,
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
        return Err(ApiError::from(e).context(&format!("{kind}: ")));
    }
    Ok(per
        .into_iter()
        .filter_map(|(l, (c, n))| Some((l, (c.finish()?, n))))
        .collect())
}
