//! `/api/v1/flame`: a selection's flame graph as the UI's JSON, SVG, folded stacks or
//! speedscope (through `gocost-flame`), and the diff of two selections as one tree.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::{Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::query::{Capped, blocking, output_too_big};
use crate::routes::profiles::report;
use crate::select::{RangeQuery, base_of, merged_base, merged_for_report};
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
    let width = match q.width.as_deref() {
        None | Some("") => None,
        Some(w) => match w.parse::<u32>() {
            Ok(w @ 1..=100_000) => Some(w),
            _ => {
                return Err(ApiError::BadRequest(format!(
                    "width {w:?}: the graph's width in pixels, a whole number from 1 to 100000"
                )));
            }
        },
    };
    let zoom: Option<Vec<String>> = match q.zoom.as_deref() {
        None | Some("") => None,
        Some(z) => Some(serde_json::from_str(z).map_err(|e| {
            ApiError::BadRequest(format!(
                "zoom: a JSON array of frame labels from the root, as the UI's zoom ({e})"
            ))
        })?),
    };
    if (width.is_some() || zoom.is_some()) && (format != "json" || is_diff) {
        return Err(ApiError::BadRequest(
            "width and zoom cut the JSON flame graph of one selection: not a diff or another format"
                .into(),
        ));
    }
    let body = blocking(&st, move |st| {
        let p = match merged_for_report(st, &q, false) {
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
            // Every node (no `width` cut for diffs: a box's width there mixes both sides).
            let (rows, _) = gocost_flame::visible_rows(&d.tree, None, &[]);
            let nodes: Vec<[i64; 7]> = rows
                .iter()
                .filter_map(|r| {
                    let n = r.node? as usize;
                    let node = &d.tree.nodes[n];
                    Some([
                        i64::from(node.name),
                        i64::from(node.inline),
                        r.parent,
                        r.total,
                        r.self_value,
                        d.base_total[n],
                        d.base_self[n],
                    ])
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
                let (names, nodes, hidden) = drawable(&tree, width, zoom.as_deref());
                let mut json = serde_json::json!({
                    "sample_type": rpt.sample_type,
                    "unit": rpt.sample_unit,
                    "total": rpt.total,
                    "names": names,
                    "nodes": nodes,
                });
                if let Some(w) = width {
                    json["width"] = w.into();
                    json["hidden"] = hidden.into();
                }
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

/// The name of the rows that stand for the children narrower than a pixel (kind 2).
const OTHER: &str = "(other)";

/// The flame JSON's `names` and `nodes` (`[name, kind, parent, total, self]`, kind 0 a frame,
/// 1 an inlined frame, 2 the children of the parent narrower than a pixel) of a graph
/// `width` pixels wide zoomed into `zoom` (frame labels from the root; a path the tree does
/// not have is no zoom), and the number of tree nodes left out. Without a width: every node,
/// with the tree's own names.
fn drawable(
    tree: &gocost_flame::Tree,
    width: Option<u32>,
    zoom: Option<&[String]>,
) -> (Vec<String>, Vec<[i64; 5]>, usize) {
    let path = zoom
        .and_then(|z| gocost_flame::find_path(tree, z))
        .unwrap_or_default();
    let (rows, hidden) = gocost_flame::visible_rows(tree, width, &path);
    let row = |name: i64, r: &gocost_flame::Row| {
        let kind = match r.kind {
            gocost_flame::Kind::Frame => 0,
            gocost_flame::Kind::Inline => 1,
            gocost_flame::Kind::Other => 2,
        };
        [name, kind, r.parent, r.total, r.self_value]
    };
    if width.is_none() {
        let nodes = rows
            .iter()
            .map(|r| {
                row(
                    r.node.map_or(0, |n| i64::from(tree.nodes[n as usize].name)),
                    r,
                )
            })
            .collect();
        return (tree.names.clone(), nodes, hidden);
    }
    // Only the names the kept rows use, in first-use order.
    let mut index = vec![u32::MAX; tree.names.len()];
    let mut names: Vec<String> = Vec::new();
    let mut other = None;
    let nodes = rows
        .iter()
        .map(|r| {
            let id = match r.node {
                Some(n) => {
                    let k = tree.nodes[n as usize].name as usize;
                    if index[k] == u32::MAX {
                        index[k] = names.len() as u32;
                        names.push(tree.names[k].clone());
                    }
                    index[k]
                }
                None => *other.get_or_insert_with(|| {
                    names.push(OTHER.to_string());
                    names.len() as u32 - 1
                }),
            };
            row(i64::from(id), r)
        })
        .collect();
    (names, nodes, hidden)
}
