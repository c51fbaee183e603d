//! The interactive SVG writer; its stable hooks are documented on [`write_svg`].

use std::fmt::Write as _;
use std::io::{self, Write};

use crate::Tree;

/// How to draw the SVG.
pub struct Options<'a> {
    /// Headline, e.g. `demo — cpu`.
    pub title: String,
    /// Second line, e.g. `Type: cpu · Total: 2.62s`.
    pub subtitle: String,
    /// Formats a (signed) value for titles and the details line — pprof's unit formatting,
    /// e.g. `|v| "1.23s"`. The default prints the number.
    pub format_value: &'a dyn Fn(i64) -> String,
    /// Boxes narrower than this many pixels at full width are not drawn (their value still
    /// counts in their ancestors). Default 0.1.
    pub min_width_px: f64,
    /// Width of the image in pixels (at least 200 are used). Default 1200.
    pub width_px: u32,
    /// Icicle graph: root at the top. Default `false` (a flame graph, root at the bottom).
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

/// XML-escapes text and attribute values; characters XML 1.0 forbids become U+FFFD. Also
/// right for HTML text and quoted attributes.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            '\t' => o.push(c),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => o.push('\u{fffd}'),
            c => o.push(c),
        }
    }
    o
}

/// 32-bit FNV-1a.
fn fnv1a(s: &str) -> u32 {
    let mut h: u32 = 0x811c9dc5;
    for b in s.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x01000193);
    }
    h
}

/// Which hue family a function's box gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Palette {
    /// `runtime.*`, `runtime/…`, `internal/runtime/…`: aqua.
    Runtime,
    /// The standard library (a package path whose first element has no dot, `main`
    /// excluded): yellow-green.
    Std,
    /// Everything else — `main`, modules like `github.com/…`, unqualified names: warm.
    User,
}

fn palette(name: &str) -> Palette {
    if name.starts_with("runtime.")
        || name.starts_with("runtime/")
        || name.starts_with("internal/runtime/")
    {
        return Palette::Runtime;
    }
    // The package path ends before the receiver or type arguments: `net/http.(*conn).serve`,
    // `main.F[go.shape.int]`.
    let head = name.split(['(', '[', ' ']).next().unwrap_or("");
    let first = match head.find('/') {
        Some(i) => &head[..i],
        None => match head.find('.') {
            Some(i) => &head[..i],
            None => return Palette::User,
        },
    };
    if first.is_empty() || first == "main" || first.contains('.') {
        Palette::User
    } else {
        Palette::Std
    }
}

/// A deterministic colour from the hash of the function name within its palette.
fn color(name: &str) -> String {
    let h = fnv1a(name);
    let (a, b, c) = (
        f64::from(h & 0xff) / 255.0,
        f64::from((h >> 8) & 0xff) / 255.0,
        f64::from((h >> 16) & 0xff) / 255.0,
    );
    let (r, g, bl) = match palette(name) {
        Palette::Runtime => (50.0 + 60.0 * a, 170.0 + 60.0 * b, 170.0 + 60.0 * c),
        Palette::Std => (175.0 + 55.0 * a, 175.0 + 55.0 * b, 50.0 + 40.0 * c),
        Palette::User => (205.0 + 50.0 * a, 80.0 + 120.0 * b, 40.0 + 40.0 * c),
    };
    format!("rgb({},{},{})", r as u32, g as u32, bl as u32)
}

/// Diff colours (orange = more, blue = less; safe for red-green colour blindness), the
/// intensity by the share of the box's |change| that went in that direction.
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

/// The part of `label` that fits in a box `width` pixels wide, ending in `..` when cut;
/// empty when fewer than 3 characters fit.
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

/// Writes a standalone interactive SVG flame graph: one file with its CSS and script inline,
/// no external resources. Deterministic: the same tree and options give the same bytes,
/// whatever order the stacks were added in (children are drawn sorted by name).
///
/// Boxes are sized by |value| ([`crate::Node::abs_total`]), so diffs draw; when the tree has
/// a negative value ([`Tree::has_negative`]) boxes are coloured by the sign of their change
/// (orange = more, blue = less) instead of by function. An empty tree gives a valid SVG that
/// says "no samples".
///
/// # Stable hooks (for scripts and browser tests)
///
/// | element | what it is |
/// |---|---|
/// | `svg` root | `data-total` (Σ\|value\|), `data-pad`, `data-inner` (drawing width), `data-charw` |
/// | `#title`, `#subtitle` | the two header lines from [`Options`] |
/// | `#reset` | "Reset zoom" control (click) |
/// | `#search` | "Search" control (click: prompts for a JavaScript regular expression) |
/// | `#matched` | after a search: `Matched: P%` of the total (nested matches counted once) |
/// | `#details` | the hovered box's `<title>` text, a single space otherwise |
/// | `#legend` | diff graphs only: what the colours mean |
/// | `#frames` | the group holding every box |
/// | `g.f` | one box: `<title>`, `<rect>`, `<text>`; `data-x`, `data-w` = start and width in value units (Σ\|value\|), `data-d` = depth (root 0) |
/// | `g.f.m` | a box the current search matched |
/// | `window.gocostFlame` | `{zoom(g), reset(), search(re), clearSearch()}` |
///
/// A box's `<title>` reads `label (value, P%)` (`label (value, P% of the change)` in a
/// diff), with `value` from [`Options::format_value`] and `P` its width's share of the total.
///
/// Interaction: hover shows the details line; click zooms into a box (it becomes full width,
/// its ancestors stay, everything else outside it is hidden); "Reset zoom" undoes it; Ctrl-F
/// (⌘-F) or `/` searches like the "Search" control (an empty answer clears the search);
/// Escape resets zoom and search. Boxes narrower than [`Options::min_width_px`] at full width
/// are not in the file at all, so zooming cannot reveal them and a search cannot match them.
pub fn write_svg(tree: &Tree, opts: &Options, w: &mut dyn Write) -> io::Result<()> {
    let width = f64::from(opts.width_px.max(200));
    let inner = width - 2.0 * PAD;
    let root_abs = tree.abs_total();
    let diff = tree.has_negative();
    let fmtv = opts.format_value;
    // Lay out: depth-first, children by name; x in value units.
    let mut boxes: Vec<(u32, i64)> = Vec::new(); // (node, x)
    let mut max_depth = 0u32;
    if root_abs > 0 {
        let mut stack: Vec<(u32, i64)> = vec![(Tree::ROOT, 0)];
        while let Some((node, x)) = stack.pop() {
            let n = tree.node(node);
            if (n.abs_total as f64 / root_abs as f64) * inner < opts.min_width_px {
                continue;
            }
            boxes.push((node, x));
            max_depth = max_depth.max(n.depth);
            let mut cx = x;
            let kids = tree.sorted_children(node);
            let first = stack.len();
            for c in kids {
                stack.push((c, cx));
                cx = cx.saturating_add(tree.node(c).abs_total);
            }
            stack[first..].reverse();
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
    let mut s = String::with_capacity(320 * boxes.len() + 8192);
    let _ = write!(
        s,
        r##"<?xml version="1.0" standalone="no"?>
<svg version="1.1" width="{width}" height="{height}" viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg" data-total="{root_abs}" data-pad="{PAD}" data-inner="{inner}" data-charw="{CHAR_W}">
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
    if diff {
        let _ = writeln!(
            s,
            r##"<text id="legend" x="{}" y="{}" text-anchor="end" fill="#555">width: |change| · orange: more · blue: less</text>"##,
            width - PAD,
            height - 10.0
        );
    }
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
        let n = tree.node(node);
        let label = if node == Tree::ROOT {
            "root".to_string()
        } else {
            tree.label(node)
        };
        let share = n.abs_total as f64 / root_abs as f64;
        let bx = PAD + x as f64 / root_abs as f64 * inner;
        let bw = share * inner;
        let pct = share * 100.0;
        let fill = if diff {
            diff_color(n.total, n.abs_total)
        } else if node == Tree::ROOT {
            "rgb(200,200,200)".to_string()
        } else {
            color(tree.name(node))
        };
        let title = if diff {
            format!("{label} ({}, {pct:.2}% of the change)", fmtv(n.total))
        } else {
            format!("{label} ({}, {pct:.2}%)", fmtv(n.total))
        };
        let y = y_of(n.depth);
        let _ = writeln!(
            s,
            r#"<g class="f" data-x="{x}" data-w="{w}" data-d="{d}"><title>{title}</title><rect x="{bx:.2}" y="{y:.1}" width="{bw:.2}" height="{h:.1}" fill="{fill}" rx="2"/><text x="{tx:.2}" y="{ty:.1}">{text}</text></g>"#,
            w = n.abs_total,
            d = n.depth,
            title = esc(&title),
            h = FRAME_H - 1.0,
            tx = bx + 3.0,
            ty = y + FRAME_H - 4.5,
            text = esc(&fit(&label, bw)),
        );
    }
    s.push_str("</g>\n");
    s.push_str(SCRIPT);
    s.push_str("</svg>\n");
    w.write_all(s.as_bytes())
}

/// The inline script. It reads the layout from the `data-*` attributes, so it is the same
/// text in every file.
const SCRIPT: &str = r#"<script type="text/ecmascript"><![CDATA[
(function () {
  "use strict";
  var svg = document.documentElement;
  var total = +svg.getAttribute("data-total"), pad = +svg.getAttribute("data-pad");
  var inner = +svg.getAttribute("data-inner"), charW = +svg.getAttribute("data-charw");
  var boxes = Array.prototype.slice.call(document.querySelectorAll("g.f"));
  var details = document.getElementById("details"), matched = document.getElementById("matched");
  function num(g, a) { return +g.getAttribute(a); }
  function title(g) { return g.querySelector("title").textContent; }
  function label(g) { var t = title(g); return t.substring(0, t.lastIndexOf(" (")); }
  function fit(l, w) {
    var n = Math.floor((w - 6) / charW);
    if (n < 3) return "";
    return l.length <= n ? l : l.substring(0, n - 2) + "..";
  }
  function layout(zx, zw, zd) {
    boxes.forEach(function (g) {
      var x = num(g, "data-x"), w = num(g, "data-w"), d = num(g, "data-d");
      var outside = x + w <= zx || x >= zx + zw;
      var notAncestor = d < zd && !(x <= zx && x + w >= zx + zw);
      if (zw <= 0 || outside || notAncestor) { g.style.display = "none"; return; }
      var s = Math.max(x, zx), e = Math.min(x + w, zx + zw);
      var nx = pad + (s - zx) / zw * inner, nw = (e - s) / zw * inner;
      g.style.display = "";
      var r = g.querySelector("rect"), t = g.querySelector("text");
      r.setAttribute("x", nx.toFixed(2));
      r.setAttribute("width", nw.toFixed(2));
      t.setAttribute("x", (nx + 3).toFixed(2));
      t.textContent = fit(label(g), nw);
    });
  }
  function zoom(g) { layout(num(g, "data-x"), num(g, "data-w"), num(g, "data-d")); }
  function clearSearch() {
    boxes.forEach(function (g) { g.classList.remove("m"); });
    matched.textContent = "";
  }
  function reset() { layout(0, total, 0); }
  function search(re) {
    var rx;
    try { rx = new RegExp(re); } catch (e) { matched.textContent = "bad regexp"; return; }
    var hits = [];
    boxes.forEach(function (g) {
      var m = num(g, "data-d") > 0 && rx.test(label(g));
      g.classList.toggle("m", m);
      if (m) hits.push(g);
    });
    // Nested matches cover the same samples: count each matched region once.
    hits.sort(function (a, b) {
      return num(a, "data-x") - num(b, "data-x") || num(b, "data-w") - num(a, "data-w");
    });
    var sum = 0, end = -1;
    hits.forEach(function (g) {
      var x = num(g, "data-x"), w = num(g, "data-w");
      if (x >= end) { sum += w; end = x + w; }
    });
    matched.textContent = "Matched: " + (total ? (100 * sum / total).toFixed(2) : "0.00") + "%";
  }
  function ask() {
    var re = prompt("Search (regular expression):");
    if (re === null) return;
    if (re === "") clearSearch(); else search(re);
  }
  boxes.forEach(function (g) {
    g.addEventListener("click", function () { zoom(g); });
    g.addEventListener("mouseover", function () { details.textContent = title(g); });
    g.addEventListener("mouseout", function () { details.textContent = " "; });
  });
  document.getElementById("reset").addEventListener("click", reset);
  document.getElementById("search").addEventListener("click", ask);
  document.addEventListener("keydown", function (e) {
    var mod = e.ctrlKey || e.metaKey;
    if ((mod && (e.key === "f" || e.key === "F")) || (e.key === "/" && !mod)) {
      e.preventDefault();
      ask();
    } else if (e.key === "Escape") {
      reset();
      clearSearch();
    }
  });
  window.gocostFlame = { zoom: zoom, reset: reset, search: search, clearSearch: clearSearch };
})();
]]></script>
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn palettes() {
        for (name, want) in [
            ("runtime.mallocgc", Palette::Runtime),
            ("runtime/pprof.writeHeap", Palette::Runtime),
            ("internal/runtime/maps.(*Map).Get", Palette::Runtime),
            ("fmt.Println", Palette::Std),
            ("net/http.(*conn).serve", Palette::Std),
            ("sync.(*Mutex).Lock", Palette::Std),
            ("main.main", Palette::User),
            ("main.F[go.shape.int]", Palette::User),
            ("main.(*T).M", Palette::User),
            ("github.com/acme/svc/db.Query", Palette::User),
            ("gopkg.in/yaml.v3.Unmarshal", Palette::User),
            ("main.F[a/b.T]", Palette::User),
            ("__libc_start_main", Palette::User),
            ("[unknown]", Palette::User),
            ("", Palette::User),
        ] {
            assert_eq!(palette(name), want, "{name}");
        }
    }

    #[test]
    fn colours_are_stable() {
        // FNV-1a test vectors, then a pinned colour.
        assert_eq!(fnv1a(""), 0x811c9dc5);
        assert_eq!(fnv1a("a"), 0xe40c292c);
        assert_eq!(color("main.main"), color("main.main"));
        assert_ne!(color("main.main"), color("main.work"));
    }

    #[test]
    fn fitting_and_escaping() {
        assert_eq!(fit("main.main", 1000.0), "main.main");
        assert_eq!(fit("main.main", 6.0 + 5.5 * CHAR_W), "mai..");
        assert_eq!(fit("main.main", 6.0 + 2.5 * CHAR_W), "");
        assert_eq!(
            esc("a<b>&\"c'\n\u{ffff}\t"),
            "a&lt;b&gt;&amp;&quot;c&#39;\u{fffd}\u{fffd}\t"
        );
    }
}
