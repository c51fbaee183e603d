//! The interactive SVG writer.
//!
//! Stable hooks for scripts and browser tests: every box is a `<g class="f">` whose
//! `<title>` reads `name (value, pct%)` and whose `data-x`/`data-w`/`data-d` attributes give
//! its start, width (in value units) and depth; `#details` shows the hovered box, `#search`
//! and `#reset` are the controls, `#matched` shows the matched percentage after a search.
//! Click a box to zoom; Ctrl-F or `/` searches (a regular expression); Escape resets.

use std::fmt::Write as _;
use std::io::{self, Write};

use crate::Tree;

/// How to draw the SVG.
pub struct Options<'a> {
    /// Headline, e.g. `demo — cpu`.
    pub title: String,
    /// Second line, e.g. `Type: cpu · Total: 2.62s`.
    pub subtitle: String,
    /// Formats a value for titles and the details line (pprof's unit formatting).
    pub format_value: &'a dyn Fn(i64) -> String,
    /// Boxes narrower than this many pixels are not drawn (their value still counts in
    /// their ancestors).
    pub min_width_px: f64,
    pub width_px: u32,
    /// Icicle graph: root at the top.
    pub inverted: bool,
}

fn plain(v: i64) -> String {
    v.to_string()
}

impl Default for Options<'_> {
    fn default() -> Self {
        Options {
            title: "Flame graph".into(),
            subtitle: String::new(),
            format_value: &plain,
            min_width_px: 0.1,
            width_px: 1200,
            inverted: false,
        }
    }
}

const FRAME_H: f64 = 16.0;
const FONT: f64 = 12.0;
const PAD: f64 = 10.0;
const HEADER: f64 = 56.0;
const FOOTER: f64 = 28.0;
const CHAR_W: f64 = FONT * 0.59;

fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c if (c as u32) < 0x20 && c != '\t' => o.push('\u{fffd}'),
            c => o.push(c),
        }
    }
    o
}

fn fnv1a(s: &str) -> u32 {
    let mut h: u32 = 0x811c9dc5;
    for b in s.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x01000193);
    }
    h
}

/// Deterministic colours: warm for application code, aqua for the runtime, yellow-green for
/// the standard library (a package path without a dot in its first element).
fn color(name: &str) -> String {
    let h = fnv1a(name);
    let (a, b, c) = (
        (h & 0xff) as f64 / 255.0,
        ((h >> 8) & 0xff) as f64 / 255.0,
        ((h >> 16) & 0xff) as f64 / 255.0,
    );
    let first = match name.find('/') {
        Some(i) => &name[..i],
        None => name.split('.').next().unwrap_or(""),
    };
    let (r, g, bl) = if name.starts_with("runtime.")
        || name.starts_with("runtime/")
        || name.starts_with("internal/runtime")
    {
        (50.0 + 60.0 * a, 170.0 + 60.0 * b, 170.0 + 60.0 * c)
    } else if !first.is_empty() && first != "main" && !first.contains('.') && !first.contains('(') {
        (175.0 + 55.0 * a, 175.0 + 55.0 * b, 50.0 + 40.0 * c)
    } else {
        (205.0 + 50.0 * a, 80.0 + 120.0 * b, 40.0 + 40.0 * c)
    };
    format!("rgb({},{},{})", r as u32, g as u32, bl as u32)
}

/// Diff colours (blue = less, orange = more; safe for red-green colour blindness), intensity
/// by the share of the box that changed in that direction.
fn diff_color(total: i64, abs_total: i64) -> String {
    if abs_total == 0 || total == 0 {
        return "rgb(220,220,220)".into();
    }
    let f = (total.unsigned_abs() as f64 / abs_total as f64).clamp(0.0, 1.0);
    let k = 220.0 - 150.0 * f;
    if total > 0 {
        format!(
            "rgb(240,{},{})",
            (k + 10.0) as u32,
            (k - 120.0).max(20.0) as u32
        )
    } else {
        format!(
            "rgb({},{},240)",
            (k - 120.0).max(20.0) as u32,
            (k + 10.0) as u32
        )
    }
}

fn fit(label: &str, width: f64) -> String {
    let n = ((width - 6.0) / CHAR_W).floor();
    if n < 3.0 {
        return String::new();
    }
    let n = n as usize;
    if label.chars().count() <= n {
        label.to_string()
    } else {
        let mut s: String = label.chars().take(n - 2).collect();
        s.push_str("..");
        s
    }
}

/// Writes a standalone interactive SVG flame graph (deterministic: same tree, same bytes).
pub fn write_svg(tree: &Tree, opts: &Options, w: &mut dyn Write) -> io::Result<()> {
    let width = f64::from(opts.width_px.max(200));
    let inner = width - 2.0 * PAD;
    let root_abs = tree.nodes[0].abs_total;
    let diff = tree.has_negative();
    let fmtv = opts.format_value;
    // Lay out: depth-first, children by name; x in value units.
    let mut boxes: Vec<(u32, i64)> = Vec::new(); // (node, x)
    let mut max_depth = 0u32;
    if root_abs > 0 {
        let mut stack: Vec<(u32, i64)> = vec![(0, 0)];
        while let Some((node, x)) = stack.pop() {
            let n = &tree.nodes[node as usize];
            if (n.abs_total as f64 / root_abs as f64) * inner < opts.min_width_px {
                continue;
            }
            boxes.push((node, x));
            max_depth = max_depth.max(n.depth);
            let mut cx = x;
            let kids = tree.sorted_children(node);
            let mut pushes = Vec::with_capacity(kids.len());
            for c in kids {
                pushes.push((c, cx));
                cx += tree.nodes[c as usize].abs_total;
            }
            stack.extend(pushes.into_iter().rev());
        }
    }
    let height = HEADER + FRAME_H * f64::from(max_depth + 1) + FOOTER;
    let y_of = |d: u32| {
        if opts.inverted {
            HEADER + FRAME_H * f64::from(d)
        } else {
            HEADER + FRAME_H * f64::from(max_depth - d)
        }
    };
    let mut s = String::with_capacity(256 * boxes.len() + 8192);
    let _ = write!(
        s,
        r##"<?xml version="1.0" standalone="no"?>
<svg version="1.1" width="{width}" height="{height}" viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg" data-total="{root_abs}" data-pad="{PAD}" data-inner="{inner}">
<style>
text {{ font-family: Verdana, sans-serif; font-size: {FONT}px; fill: #000; }}
g.f text {{ pointer-events: none; }}
g.f:hover rect {{ stroke: #000; stroke-width: 0.5; cursor: pointer; }}
g.m rect {{ fill: rgb(230,0,230); }}
.ctl {{ cursor: pointer; fill: #145; text-decoration: underline; }}
#title {{ font-size: 17px; }}
</style>
<rect x="0" y="0" width="{width}" height="{height}" fill="#f8f8f8"/>
<text id="title" x="{cx}" y="22" text-anchor="middle">{title}</text>
<text id="subtitle" x="{cx}" y="40" text-anchor="middle" fill="#555">{subtitle}</text>
<text id="reset" class="ctl" x="{PAD}" y="22">Reset zoom</text>
<text id="search" class="ctl" x="{sx}" y="22" text-anchor="end">Search</text>
<text id="matched" x="{sx}" y="40" text-anchor="end"></text>
<text id="details" x="{PAD}" y="{dy}"> </text>
"##,
        cx = width / 2.0,
        title = esc(&opts.title),
        subtitle = esc(&opts.subtitle),
        sx = width - PAD,
        dy = height - 10.0,
    );
    if boxes.is_empty() {
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="middle">no samples</text>"#,
            width / 2.0,
            HEADER + 12.0
        );
    }
    s.push_str("<g id=\"frames\">\n");
    for &(node, x) in &boxes {
        let n = &tree.nodes[node as usize];
        let label = if node == 0 {
            "root".to_string()
        } else {
            tree.label(node)
        };
        let bx = PAD + x as f64 / root_abs as f64 * inner;
        let bw = n.abs_total as f64 / root_abs as f64 * inner;
        let pct = if root_abs != 0 {
            n.abs_total as f64 / root_abs as f64 * 100.0
        } else {
            0.0
        };
        let fill = if diff {
            diff_color(n.total, n.abs_total)
        } else if node == 0 {
            "rgb(200,200,200)".to_string()
        } else {
            color(tree.name(node))
        };
        let title = if diff {
            format!("{label} ({}, {pct:.2}% of the change)", fmtv(n.total))
        } else {
            format!("{label} ({}, {pct:.2}%)", fmtv(n.total))
        };
        let _ = writeln!(
            s,
            r#"<g class="f" data-x="{x}" data-w="{w}" data-d="{d}"><title>{title}</title><rect x="{bx:.2}" y="{y:.1}" width="{bw:.2}" height="{h:.1}" fill="{fill}" rx="2"/><text x="{tx:.2}" y="{ty:.1}">{text}</text></g>"#,
            w = n.abs_total,
            d = n.depth,
            title = esc(&title),
            y = y_of(n.depth),
            h = FRAME_H - 1.0,
            tx = bx + 3.0,
            ty = y_of(n.depth) + FRAME_H - 4.5,
            text = esc(&fit(&label, bw)),
        );
    }
    s.push_str("</g>\n");
    s.push_str(SCRIPT);
    s.push_str("</svg>\n");
    w.write_all(s.as_bytes())
}

const SCRIPT: &str = r#"<script><![CDATA[
(function () {
  var svg = document.documentElement;
  var total = +svg.getAttribute("data-total"), pad = +svg.getAttribute("data-pad"), inner = +svg.getAttribute("data-inner");
  var boxes = Array.prototype.slice.call(document.querySelectorAll("g.f"));
  var details = document.getElementById("details"), matched = document.getElementById("matched");
  var charW = 12 * 0.59;
  function label(g) { var t = g.querySelector("title").textContent; return t.substring(0, t.lastIndexOf(" (")); }
  function fit(l, w) { var n = Math.floor((w - 6) / charW); if (n < 3) return ""; return l.length <= n ? l : l.substring(0, n - 2) + ".."; }
  function layout(zx, zw, zd) {
    boxes.forEach(function (g) {
      var x = +g.getAttribute("data-x"), w = +g.getAttribute("data-w"), d = +g.getAttribute("data-d");
      var outside = x + w <= zx || x >= zx + zw;
      var aboveNotAncestor = d < zd && !(x <= zx && x + w >= zx + zw);
      if (zw <= 0 || outside || aboveNotAncestor) { g.style.display = "none"; return; }
      var s = Math.max(x, zx), e = Math.min(x + w, zx + zw);
      var nx = pad + (s - zx) / zw * inner, nw = (e - s) / zw * inner;
      g.style.display = "";
      var r = g.querySelector("rect"), t = g.querySelector("text");
      r.setAttribute("x", nx.toFixed(2)); r.setAttribute("width", nw.toFixed(2));
      t.setAttribute("x", (nx + 3).toFixed(2)); t.textContent = fit(label(g), nw);
    });
  }
  function zoom(g) { layout(+g.getAttribute("data-x"), +g.getAttribute("data-w"), +g.getAttribute("data-d")); }
  function reset() { layout(0, total, 0); boxes.forEach(function (g) { g.classList.remove("m"); }); matched.textContent = ""; }
  function search(re) {
    var rx; try { rx = new RegExp(re); } catch (e) { matched.textContent = "bad regexp"; return; }
    var hits = [];
    boxes.forEach(function (g) { var m = rx.test(label(g)); g.classList.toggle("m", m); if (m) hits.push(g); });
    hits.sort(function (a, b) { return (+a.getAttribute("data-x")) - (+b.getAttribute("data-x")) || (+b.getAttribute("data-w")) - (+a.getAttribute("data-w")); });
    var sum = 0, end = -1;
    hits.forEach(function (g) { var x = +g.getAttribute("data-x"), w = +g.getAttribute("data-w"); if (x >= end) { sum += w; end = x + w; } });
    matched.textContent = "Matched: " + (total ? (100 * sum / total).toFixed(2) : "0.00") + "%";
  }
  boxes.forEach(function (g) {
    g.addEventListener("click", function () { zoom(g); });
    g.addEventListener("mouseover", function () { details.textContent = g.querySelector("title").textContent; });
    g.addEventListener("mouseout", function () { details.textContent = " "; });
  });
  document.getElementById("reset").addEventListener("click", reset);
  document.getElementById("search").addEventListener("click", function () { var re = prompt("Search (regular expression):"); if (re) search(re); });
  document.addEventListener("keydown", function (e) {
    if ((e.ctrlKey && e.key === "f") || e.key === "/") { e.preventDefault(); var re = prompt("Search (regular expression):"); if (re) search(re); }
    else if (e.key === "Escape") reset();
  });
  window.gocostFlame = { zoom: zoom, reset: reset, search: search };
})();
]]></script>
"#;
