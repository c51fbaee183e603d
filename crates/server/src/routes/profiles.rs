//! The profile routes: `/api/v1/profile` (pprof bytes `go tool pprof` reads), `top`, `tags`,
//! `graph`, `peek` and `diff` — a selection's merged profile through pprof's report with
//! the request's refine options.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::{Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::query::{Lent, blocking, capped_json, output_too_big, query_budget};
use crate::select::{
    RangeQuery, base_of, empty_answer, flag, merged, merged_base, merged_for_report,
};
use crate::{ApiError, AppState};

pub(crate) async fn profile(
    State(st): State<Arc<AppState>>,
    Query(q): Query<RangeQuery>,
) -> Result<Response, ApiError> {
    st.requests.fetch_add(1, Ordering::Relaxed);
    let bytes = blocking(&st, move |st| {
        let p = if q.base_from.is_some() || q.base_to.is_some() || q.base_query.is_some() {
            diff_profile(st, &q)?
        } else {
            merged(st, &q)?
        };
        // Refined, it is the profile pprof's report would read (as `go tool pprof -proto`
        // with the same options writes it).
        let p = if q.refine.changes_profile() {
            report(p, &q)?.prof
        } else {
            p
        };
        let bytes = gocost_pprof::encode(&p);
        let max = query_budget().max_output;
        if bytes.len() > max {
            return Err(output_too_big(max));
        }
        Ok::<_, ApiError>(bytes)
    })
    .await??;
    let mut r = bytes.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    r.headers_mut().insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"profile.pb.gz\""),
    );
    Ok(r)
}

pub(crate) async fn top(
    State(st): State<Arc<AppState>>,
    Query(q): Query<RangeQuery>,
) -> Result<Response, ApiError> {
    st.requests.fetch_add(1, Ordering::Relaxed);
    let text = wants_text(&q)?;
    let top = match blocking(&st, move |st| {
        Ok::<_, ApiError>(report(merged_for_report(st, &q, false)?, &q)?.top())
    })
    .await?
    {
        Err(ApiError::NotFound(reason)) if !text => {
            return Ok(empty_answer(
                reason,
                serde_json::json!({ "header": [], "rows": [], "total": 0 }),
            ));
        }
        r => r?,
    };
    if text {
        // A String answers as text/plain; charset=utf-8.
        return Ok(top.to_text().into_response());
    }
    capped_json(&top)
}

/// Whether a report is asked for as pprof's text (`format=text`) rather than JSON.
fn wants_text(q: &RangeQuery) -> Result<bool, ApiError> {
    match q.format.as_deref() {
        None | Some("json") => Ok(false),
        Some("text") => Ok(true),
        Some(f) => Err(ApiError::BadRequest(format!(
            "unknown format {f:?}: use json or text"
        ))),
    }
}

/// `/api/v1/tags`: the pprof labels of the range's samples (`go tool pprof -tags`): per key
/// its values' shares. `format=text`: pprof's text.
pub(crate) async fn tags(
    State(st): State<Arc<AppState>>,
    Query(q): Query<RangeQuery>,
) -> Result<Response, ApiError> {
    st.requests.fetch_add(1, Ordering::Relaxed);
    let text = wants_text(&q)?;
    let body = blocking(&st, move |st| {
        let p = match merged_for_report(st, &q, true) {
            Err(ApiError::NotFound(reason)) if !text => {
                let shape = serde_json::json!({ "keys": [], "total": 0 });
                return Ok(empty_answer(reason, shape));
            }
            p => p?,
        };
        let rpt = report(p, &q)?;
        Ok::<_, ApiError>(if text {
            rpt.tags_text().into_response()
        } else {
            axum::Json(serde_json::json!({
                "sample_type": rpt.sample_type,
                "unit": rpt.sample_unit,
                "total": rpt.total,
                "keys": rpt.tags(),
            }))
            .into_response()
        })
    })
    .await??;
    Ok(body)
}

/// `/api/v1/graph`: the call graph `go tool pprof -dot` draws, as JSON (nodes, edges,
/// tags, legend) or, with `format=dot`, pprof's dot text.
pub(crate) async fn graph(
    State(st): State<Arc<AppState>>,
    Query(q): Query<RangeQuery>,
) -> Result<Response, ApiError> {
    st.requests.fetch_add(1, Ordering::Relaxed);
    let dot = match q.format.as_deref() {
        None | Some("json") => false,
        Some("dot") => true,
        Some(f) => {
            return Err(ApiError::BadRequest(format!(
                "unknown format {f:?}: use json or dot"
            )));
        }
    };
    blocking(&st, move |st| {
        let p = match merged_for_report(st, &q, true) {
            Err(ApiError::NotFound(reason)) if !dot => {
                let shape =
                    serde_json::json!({ "legend": [], "nodes": [], "edges": [], "total": 0 });
                return Ok(empty_answer(reason, shape));
            }
            p => p?,
        };
        let g = report_as(p, &q, gocost_report::Kind::Dot)?.call_graph();
        Ok::<_, ApiError>(if dot {
            (
                [(header::CONTENT_TYPE, "text/vnd.graphviz; charset=utf-8")],
                g.to_dot(),
            )
                .into_response()
        } else {
            axum::Json(g).into_response()
        })
    })
    .await?
}

/// `/api/v1/peek?symbol=REGEXP`: the callers and callees of the functions matching
/// `symbol` (`go tool pprof -peek`), as JSON or `format=text`.
pub(crate) async fn peek(
    State(st): State<Arc<AppState>>,
    Query(q): Query<RangeQuery>,
) -> Result<Response, ApiError> {
    st.requests.fetch_add(1, Ordering::Relaxed);
    let text = wants_text(&q)?;
    let symbol = q.symbol.clone().filter(|s| !s.is_empty()).ok_or_else(|| {
        ApiError::BadRequest("peek needs symbol=REGEXP (the functions to show)".into())
    })?;
    blocking(&st, move |st| {
        let p = match merged_for_report(st, &q, false) {
            Err(ApiError::NotFound(reason)) if !text => {
                let shape = serde_json::json!({ "header": [], "entries": [], "total": 0 });
                return Ok(empty_answer(reason, shape));
            }
            p => p?,
        };
        let rpt = report_as(p, &q, gocost_report::Kind::Peek)?;
        let r = rpt.peek(&symbol)?;
        Ok::<_, ApiError>(if text {
            r.to_text().into_response()
        } else {
            axum::Json(r).into_response()
        })
    })
    .await?
}

pub(crate) fn report(
    p: gocost_pprof::Profile,
    q: &RangeQuery,
) -> Result<gocost_report::Report, ApiError> {
    report_as(p, q, gocost_report::Kind::Top)
}

/// A number in a query string that must be a fraction (finite, not negative).
fn fraction(name: &str, v: &Option<String>, default: f64) -> Result<f64, ApiError> {
    match v.as_deref().filter(|v| !v.is_empty()) {
        Some(v) => v
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite() && *f >= 0.0)
            .ok_or_else(|| ApiError::BadRequest(format!("bad {name} {v:?}"))),
        None => Ok(default),
    }
}

/// The report of a range's profile with the request's options; top reports show every node
/// unless `nodecount` says otherwise, graphs pprof's 80.
pub(crate) fn report_as(
    p: gocost_pprof::Profile,
    q: &RangeQuery,
    kind: gocost_report::Kind,
) -> Result<gocost_report::Report, ApiError> {
    let r = &q.refine;
    let granularity = match r.granularity.as_deref().filter(|g| !g.is_empty()) {
        Some(g) => g.parse().map_err(ApiError::BadRequest)?,
        None => gocost_report::Granularity::Functions,
    };
    let defaults = gocost_report::Options::default();
    let nodefraction = fraction("nodefraction", &r.nodefraction, defaults.nodefraction)?;
    let edgefraction = fraction("edgefraction", &r.edgefraction, defaults.edgefraction)?;
    let nodecount = match kind {
        gocost_report::Kind::Top => Some(q.nodecount.unwrap_or(0)),
        _ => q.nodecount,
    };
    let opts = gocost_report::Options {
        kind,
        sample_index: q.sample_index.clone(),
        nodecount,
        edgefraction,
        focus: r.focus.clone(),
        ignore: r.ignore.clone(),
        hide: r.hide.clone(),
        show: r.show.clone(),
        show_from: r.show_from.clone(),
        prune_from: r.prune_from.clone(),
        tagfocus: r.tagfocus.clone(),
        tagignore: r.tagignore.clone(),
        granularity,
        noinlines: flag(&r.noinlines),
        cum: flag(&r.cum),
        nodefraction,
    };
    Ok(gocost_report::Report::new(p, &opts)?)
}

/// `query` over `from..to` compared with `base_query` over `base_from..base_to`, as
/// `gocost top --diff-base` (percentages relative to the base).
pub(crate) async fn diff(
    State(st): State<Arc<AppState>>,
    Query(q): Query<RangeQuery>,
) -> Result<Response, ApiError> {
    st.requests.fetch_add(1, Ordering::Relaxed);
    let top = blocking(&st, move |st| {
        Ok::<_, ApiError>(report(diff_profile(st, &q)?, &q)?.top())
    })
    .await??;
    Ok(axum::Json(top).into_response())
}

/// The head (`query` over `from..to`) with the base subtracted and its samples labelled
/// `pprof::base=true`: what `go tool pprof -diff_base` builds, so that pprof reading it
/// reports the change with percentages of the base.
pub(crate) fn diff_profile(
    st: &Lent<'_>,
    q: &RangeQuery,
) -> Result<gocost_pprof::Profile, ApiError> {
    let p = merged(st, q)?;
    let mut base = merged_base(st, &base_of(q)?)?;
    base.set_label("pprof::base", "true");
    base.scale(-1.0);
    Ok(gocost_pprof::merge::combine(vec![p, base])?)
}
