//! `/api/v1/flame`: a selection's flame graph as the UI's JSON, SVG, folded stacks or
//! speedscope (through `gocost-flame`), and the diff of two selections as one tree.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::{Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::query::{Capped, blocking, output_too_big};
use crate::routes::profiles::report;
use crate::select::{RangeQuery, base_of, merged, merged_base};
use crate::{ApiError, AppState};

/// The flame graph of the merged profile. `format=json` (default): a flat, depth-first node
/// list (children sorted by name): `names[i]`, and per node `[name index, inline 0/1, parent
/// index, total, self]`; node 0 is the root. With `base_from` and `base_to` (and optionally
/// `base_query`) a diff: the union of both trees, per node `[…, base total, base self]`, and
/// `base_total`. `format=svg|folded|speedscope`: the `gocost flame` files.
pub(crate) async fn flame(
    State(st): State<Arc<AppState>>,
    Query(q): Query<RangeQuery>,
) -> Result<Response, ApiError> {
    st.requests.fetch_add(1, Ordering::Relaxed);
    let format = q.format.clone().unwrap_or_else(|| "json".into());
    if !matches!(format.as_str(), "json" | "svg" | "folded" | "speedscope") {
        return Err(ApiError::BadRequest(format!(
            "unknown format {format:?}: use json, svg, folded or speedscope"
        )));
    }
    let is_diff = q.base_from.is_some() || q.base_to.is_some() || q.base_query.is_some();
    if is_diff && format != "json" {
        return Err(ApiError::BadRequest(
            "a diff flame graph is only available as format=json".into(),
        ));
    }
    let speedscope = format == "speedscope";
    let body = blocking(&st, move |st| {
        let p = match merged(st, &q) {
            Err(ApiError::NotFound(reason)) if format == "json" && !is_diff => {
                let shape = serde_json::json!({
                    "names": [""], "nodes": [[0, 0, -1, 0, 0]], "total": 0,
                    "sample_type": "", "unit": "", "empty": reason,
                });
                return Ok(("application/json", shape.to_string().into_bytes()));
            }
            p => p?,
        };
        let rpt = report(p, &q)?;
        let tree = gocost_flame::tree_from_report(&rpt);
        if is_diff {
            let base_rpt = report(merged_base(st, &base_of(&q)?)?, &q)?;
            if base_rpt.sample_type != rpt.sample_type {
                return Err(ApiError::BadRequest(format!(
                    "base sample type {:?} differs from {:?}",
                    base_rpt.sample_type, rpt.sample_type
                )));
            }
            let base = gocost_flame::tree_from_report(&base_rpt);
            let d = gocost_flame::DiffTree::new(&tree, &base);
            let (order, parents) = flame_order(&d.tree);
            let nodes: Vec<[i64; 7]> = order
                .iter()
                .zip(parents)
                .map(|(&n, parent)| {
                    let node = &d.tree.nodes[n as usize];
                    [
                        i64::from(node.name),
                        i64::from(node.inline),
                        parent,
                        node.total,
                        node.self_value,
                        d.base_total[n as usize],
                        d.base_self[n as usize],
                    ]
                })
                .collect();
            let json = serde_json::json!({
                "sample_type": rpt.sample_type,
                "unit": rpt.sample_unit,
                "total": rpt.total,
                "base_total": base_rpt.total,
                "names": d.tree.names,
                "nodes": nodes,
            });
            let mut buf = Capped::new();
            if serde_json::to_writer(&mut buf, &json).is_err() && !buf.over {
                return Err(ApiError::Internal("writing the diff flame graph".into()));
            }
            return Ok::<_, ApiError>(("application/json", buf.finish()?));
        }
        let mut buf = Capped::new();
        let unit = rpt.sample_unit.clone();
        let written = match format.as_str() {
            "svg" => {
                let fmt = |v: i64| gocost_pprof::units::label(v, &unit);
                let title = q.query.clone().unwrap_or_default();
                let opts = gocost_flame::Options {
                    title,
                    subtitle: format!("Type: {} · Total: {}", rpt.sample_type, fmt(rpt.total)),
                    format_value: &fmt,
                    inverted: matches!(q.inverted.as_deref(), Some("1" | "true")),
                    ..gocost_flame::Options::default()
                };
                gocost_flame::write_svg(&tree, &opts, &mut buf).map(|_| "image/svg+xml")
            }
            "folded" => {
                gocost_flame::write_folded(&tree, &mut buf).map(|_| "text/plain; charset=utf-8")
            }
            "speedscope" => {
                let su = match gocost_pprof::units::scale(1, &unit, "auto").1.as_str() {
                    "ns" | "us" | "ms" | "s" | "hrs" => gocost_flame::SpeedscopeUnit::Nanoseconds,
                    "B" | "kB" | "MB" | "GB" | "TB" | "PB" => gocost_flame::SpeedscopeUnit::Bytes,
                    _ => gocost_flame::SpeedscopeUnit::None,
                };
                gocost_flame::write_speedscope(&tree, &rpt.sample_type, su, &mut buf)
                    .map(|_| "application/json")
            }
            _ => {
                let (order, parents) = flame_order(&tree);
                let nodes: Vec<[i64; 5]> = order
                    .iter()
                    .zip(parents)
                    .map(|(&n, parent)| {
                        let node = &tree.nodes[n as usize];
                        [
                            i64::from(node.name),
                            i64::from(node.inline),
                            parent,
                            node.total,
                            node.self_value,
                        ]
                    })
                    .collect();
                let json = serde_json::json!({
                    "sample_type": rpt.sample_type,
                    "unit": rpt.sample_unit,
                    "total": rpt.total,
                    "names": tree.names,
                    "nodes": nodes,
                });
                serde_json::to_writer(&mut buf, &json)
                    .map_err(std::io::Error::other)
                    .map(|_| "application/json")
            }
        };
        if buf.over {
            return Err(output_too_big(buf.max));
        }
        let written = written.map_err(|e| ApiError::Internal(e.to_string()))?;
        Ok((written, buf.finish()?))
    })
    .await??;
    let (content_type, bytes) = body;
    let mut r = bytes.into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    let file = match content_type {
        "image/svg+xml" => Some("attachment; filename=\"flame.svg\""),
        "text/plain; charset=utf-8" => Some("attachment; filename=\"flame.folded\""),
        _ if speedscope => Some("attachment; filename=\"flame.speedscope.json\""),
        _ => None,
    };
    if let Some(f) = file {
        r.headers_mut()
            .insert(header::CONTENT_DISPOSITION, HeaderValue::from_static(f));
    }
    Ok(r)
}

/// The nodes of a tree depth-first, children sorted by name (node 0 the root), and each
/// one's parent's position in that order (-1 for the root).
fn flame_order(tree: &gocost_flame::Tree) -> (Vec<u32>, Vec<i64>) {
    let mut order = Vec::with_capacity(tree.nodes.len());
    let mut parents = Vec::with_capacity(tree.nodes.len());
    let mut index = vec![0usize; tree.nodes.len()];
    let mut stack = vec![0u32];
    while let Some(n) = stack.pop() {
        index[n as usize] = order.len();
        parents.push(if n == 0 {
            -1
        } else {
            index[tree.nodes[n as usize].parent as usize] as i64
        });
        order.push(n);
        stack.extend(tree.sorted_children(n).into_iter().rev());
    }
    (order, parents)
}
