//! Text reports: `-top`, `-traces`, `-raw`, and their header lines.

use std::fmt::Write as _;

use gocost_pprof::units::{percentage, scale, scaled_label};
use gocost_pprof::{LabelValue, Profile, Sample};
use serde::Serialize;

use crate::Report;
use crate::graph::{Graph, Nodes, base_name, trimmed_graph};
use crate::timefmt;

/// One row of a top report.
#[derive(Debug, Clone, Serialize)]
pub struct TopRow {
    pub name: String,
    /// `""`, `"(inline)"` or `"(partial-inline)"`.
    pub inline: &'static str,
    pub flat: i64,
    pub cum: i64,
    pub flat_text: String,
    pub cum_text: String,
    pub flat_percent: String,
    pub sum_percent: String,
    pub cum_percent: String,
}

/// A top report: header lines and rows, as `go tool pprof -top` prints them.
#[derive(Debug, Clone, Serialize)]
pub struct TopReport {
    pub header: Vec<String>,
    pub rows: Vec<TopRow>,
    pub total: i64,
    pub sample_type: String,
    pub sample_unit: String,
    /// The unit values are printed in (`ms`, `kB`, … or the sample unit).
    pub output_unit: String,
}

impl TopReport {
    pub fn to_text(&self) -> String {
        let mut out = String::with_capacity(80 * (self.rows.len() + 10));
        for h in &self.header {
            out.push_str(h);
            out.push('\n');
        }
        let _ = writeln!(
            out,
            "{:>10} {:>5}% {:>5}% {:>10} {:>5}%",
            "flat", "flat", "sum", "cum", "cum"
        );
        for r in &self.rows {
            let _ = write!(
                out,
                "{:>10} {} {} {:>10} {}  {}",
                r.flat_text, r.flat_percent, r.sum_percent, r.cum_text, r.cum_percent, r.name
            );
            if !r.inline.is_empty() {
                out.push(' ');
                out.push_str(r.inline);
            }
            out.push('\n');
        }
        out
    }
}

/// pprof's `ProfileLabels`: File, Build ID, comments, Type, Doc, Time, Duration.
pub(crate) fn profile_labels(rpt: &Report, format: &dyn Fn(i64) -> String) -> Vec<String> {
    let p = &rpt.prof;
    let mut l = Vec::new();
    if let Some(m) = p.mapping.first() {
        if !m.filename.is_empty() {
            l.push(format!("File: {}", base_name(&m.filename)));
        }
        if !m.build_id.is_empty() {
            l.push(format!("Build ID: {}", m.build_id));
        }
    }
    for c in &p.comments {
        if !c.starts_with('#') {
            l.push(c.to_string());
        }
    }
    if !rpt.sample_type.is_empty() {
        l.push(format!("Type: {}", rpt.sample_type));
    }
    if !p.doc_url.is_empty() {
        l.push(format!("Doc: {}", p.doc_url));
    }
    if p.time_nanos != 0 {
        l.push(format!("Time: {}", timefmt::header_time(p.time_nanos)));
    }
    if p.duration_nanos != 0 {
        let d = gocost_pprof::units::label(p.duration_nanos, "nanoseconds");
        let (tn, tu) = scale(rpt.total, &rpt.sample_unit, "nanoseconds");
        let ratio = if tu == "ns" && tn != 0.0 {
            format!("({})", percentage(tn as i64, p.duration_nanos))
        } else {
            String::new()
        };
        l.push(format!(
            "Duration: {d}, Total samples = {} {ratio}",
            format(rpt.total)
        ));
    }
    l
}

/// pprof's `selectOutputUnit`: the unit that prints the graph's smallest non-zero value
/// (or a hundredth of the total) readably.
pub(crate) fn output_unit(rpt: &Report, g: &Graph) -> String {
    let mut min = 0i64;
    for &i in &g.nodes {
        let mut v = g.flat[i as usize].wrapping_abs();
        if v == 0 {
            v = g.cum[i as usize].wrapping_abs();
        }
        if v > 0 && (min == 0 || v < min) {
            min = v;
        }
    }
    if g.nodes.is_empty() {
        return "minimum".to_string();
    }
    let max = rpt.total;
    if min == 0 {
        min = max;
    }
    let (_, umin) = scale(min, &rpt.sample_unit, "minimum");
    let (_, umax) = scale(max, &rpt.sample_unit, "minimum");
    let mut unit = umin.clone();
    if umin != umax && min.wrapping_mul(100) < max {
        unit = scale(min.wrapping_mul(100), &rpt.sample_unit, "minimum").1;
    }
    if unit.is_empty() {
        rpt.sample_unit.clone()
    } else {
        unit
    }
}

/// What a trimmed graph shows, for the header lines.
pub(crate) struct Shown {
    /// Σ flat of the shown nodes.
    pub total: i64,
    pub nodes: usize,
    /// Nodes before `nodecount` truncation.
    pub orig: usize,
    pub dropped_nodes: usize,
    pub dropped_edges: usize,
}

/// pprof's `reportLabels`: the profile's labels, active filters, what is shown and dropped;
/// `full` adds the graph legend's pointer to how to read it.
pub(crate) fn report_labels(
    rpt: &Report,
    fmt: &dyn Fn(i64) -> String,
    shown: Shown,
    full: bool,
) -> Vec<String> {
    let o = &rpt.opts;
    let mut header = profile_labels(rpt, fmt);
    if !rpt.active_filters.is_empty() {
        header.push("Active filters:".into());
        for f in &rpt.active_filters {
            let s = if f.len() > 80 {
                let mut cut = 80;
                while !f.is_char_boundary(cut) {
                    cut -= 1;
                }
                format!("{}…", &f[..cut])
            } else {
                f.clone()
            };
            header.push(format!("   {s}"));
        }
    }
    header.push(format!(
        "Showing nodes accounting for {}, {} of {} total",
        fmt(shown.total),
        percentage(shown.total, rpt.total).trim(),
        fmt(rpt.total)
    ));
    if rpt.total != 0 {
        let plural = |n: usize, what: &str| {
            if n > 1 {
                format!("{what}s")
            } else {
                what.to_string()
            }
        };
        if shown.dropped_nodes > 0 {
            header.push(format!(
                "Dropped {} {} (cum <= {})",
                shown.dropped_nodes,
                plural(shown.dropped_nodes, "node"),
                fmt(((rpt.total as f64 * o.nodefraction) as i64).wrapping_abs())
            ));
        }
        if shown.dropped_edges > 0 {
            header.push(format!(
                "Dropped {} {} (freq <= {})",
                shown.dropped_edges,
                plural(shown.dropped_edges, "edge"),
                fmt(((rpt.total as f64 * o.edgefraction) as i64).wrapping_abs())
            ));
        }
        if shown.nodes > 0 && shown.nodes < shown.orig {
            header.push(format!(
                "Showing top {} nodes out of {}",
                shown.nodes, shown.orig
            ));
        }
    }
    if full {
        header.push("\nSee https://git.io/JfYMW for how to read the graph".into());
    }
    header
}

/// The graph text reports print (pprof's `newTrimmedGraph` outside visual mode), its unit
/// and its header lines.
pub(crate) struct Trimmed<'a> {
    pub nodes: Nodes<'a>,
    pub g: Graph,
    pub unit: String,
    pub header: Vec<String>,
}

impl<'a> Trimmed<'a> {
    pub fn new(rpt: &'a Report) -> Trimmed<'a> {
        let o = &rpt.opts;
        let nodes = Nodes::new(&rpt.prof);
        let (g, orig, dropped) = trimmed_graph(
            &rpt.prof,
            &nodes,
            rpt.index,
            o.nodefraction,
            o.edgefraction,
            o.nodecount.unwrap_or(0),
            o.cum,
        );
        let unit = output_unit(rpt, &g);
        let fmt = |v: i64| scaled_label(v, &rpt.sample_unit, &unit);
        let header = report_labels(
            rpt,
            &fmt,
            Shown {
                total: g.total_flat(),
                nodes: g.nodes.len(),
                orig,
                dropped_nodes: dropped,
                dropped_edges: 0,
            },
            false,
        );
        Trimmed {
            nodes,
            g,
            unit,
            header,
        }
    }
}

pub fn top(rpt: &Report) -> TopReport {
    let Trimmed {
        nodes,
        g,
        unit: output_unit,
        header,
    } = Trimmed::new(rpt);
    let fmt = |v: i64| scaled_label(v, &rpt.sample_unit, &output_unit);

    let inl = g.inline_labels();
    let mut rows = Vec::with_capacity(g.nodes.len());
    let mut sum = 0i64;
    for &i in &g.nodes {
        let (flat, cum) = (g.flat[i as usize], g.cum[i as usize]);
        sum = sum.wrapping_add(flat);
        rows.push(TopRow {
            name: nodes.infos[i as usize].printable_name(),
            inline: inl.get(&i).copied().unwrap_or(""),
            flat,
            cum,
            flat_text: fmt(flat),
            cum_text: fmt(cum),
            flat_percent: percentage(flat, rpt.total),
            sum_percent: percentage(sum, rpt.total),
            cum_percent: percentage(cum, rpt.total),
        });
    }
    TopReport {
        header,
        rows,
        total: rpt.total,
        sample_type: rpt.sample_type.clone(),
        sample_unit: rpt.sample_unit.clone(),
        output_unit,
    }
}

/// pprof's `NumLabelUnits`: the unit of each numeric label key.
fn num_label_units(p: &Profile) -> rustc_hash::FxHashMap<String, String> {
    let mut units: rustc_hash::FxHashMap<String, String> = Default::default();
    let mut keys: Vec<&str> = Vec::new();
    for s in &p.sample {
        for (k, _, u) in s.num_labels() {
            if !keys.contains(&k) {
                keys.push(k);
            }
            if !u.is_empty() && !units.contains_key(k) {
                units.insert(k.to_string(), u.to_string());
            }
        }
    }
    for k in keys {
        if units.get(k).is_none_or(|u| u.is_empty()) {
            let u = match k {
                "alignment" | "request" => "bytes",
                other => other,
            };
            units.insert(k.to_string(), u.to_string());
        }
    }
    units
}

/// Groups a sample's labels by key (values in order), as Go's label maps do.
fn grouped<'a, T>(
    s: &'a Sample,
    pick: impl Fn(&'a LabelValue) -> Option<T>,
) -> Vec<(&'a str, Vec<T>)> {
    let mut out: Vec<(&str, Vec<T>)> = Vec::new();
    for l in &s.label {
        if let Some(v) = pick(&l.value) {
            match out.iter_mut().find(|(k, _)| *k == &*l.key) {
                Some((_, vs)) => vs.push(v),
                None => out.push((&l.key, vec![v])),
            }
        }
    }
    out
}

pub fn traces(rpt: &Report) -> String {
    let p = &rpt.prof;
    let auto = |v: i64| scaled_label(v, &rpt.sample_unit, "minimum");
    let mut out = String::new();
    for l in profile_labels(rpt, &auto) {
        out.push_str(&l);
        out.push('\n');
    }
    let units = num_label_units(p);
    let nodes = Nodes::new(p);
    const SEP: &str = "-----------+-------------------------------------------------------";
    let names: Vec<String> = nodes.infos.iter().map(|i| i.printable_name()).collect();
    for s in &p.sample {
        if s.location
            .iter()
            .all(|&l| nodes.loc_nodes[l as usize].is_empty())
        {
            continue;
        }
        out.push_str(SEP);
        out.push('\n');
        let mut labels: Vec<String> = grouped(s, |v| match v {
            LabelValue::Str(x) => Some(&**x),
            _ => None,
        })
        .into_iter()
        .map(|(k, vs)| format!("{k:>10}:  {}\n", vs.join(" ")))
        .collect();
        labels.sort();
        labels.iter().for_each(|l| out.push_str(l));
        let mut nlabels: Vec<String> = grouped(s, |v| match v {
            LabelValue::Num { value, .. } => Some(*value),
            _ => None,
        })
        .into_iter()
        .map(|(k, vs)| {
            let unit = units.get(k).map_or("", String::as_str);
            let vals: Vec<String> = vs
                .iter()
                .map(|&v| gocost_pprof::units::label(v, unit))
                .collect();
            format!("{k:>10}:  {}\n", vals.join(" "))
        })
        .collect();
        nlabels.sort();
        nlabels.iter().for_each(|l| out.push_str(l));
        let v = s.value[rpt.index];
        let mut first = true;
        for &l in &s.location {
            let ln = &nodes.loc_nodes[l as usize];
            for (i, &n) in ln.iter().enumerate() {
                let vs = if first { auto(v) } else { String::new() };
                first = false;
                let inline = if i != ln.len() - 1 { " (inline)" } else { "" };
                let _ = writeln!(out, "{vs:>10}   {}{inline}", names[n as usize]);
            }
        }
    }
    out.push_str(SEP);
    out.push('\n');
    out
}

/// pprof's `Profile.String()`.
pub fn raw(p: &Profile) -> String {
    let mut ss: Vec<String> = Vec::with_capacity(p.sample.len() + p.location.len() + 16);
    for c in &p.comments {
        ss.push(format!("Comment: {c}"));
    }
    if !p.doc_url.is_empty() {
        ss.push(format!("Doc: {}", p.doc_url));
    }
    ss.push(format!(
        "PeriodType: {} {}",
        p.period_type.r#type, p.period_type.unit
    ));
    ss.push(format!("Period: {}", p.period));
    if p.time_nanos != 0 {
        ss.push(format!("Time: {}", timefmt::go_time_string(p.time_nanos)));
    }
    if p.duration_nanos != 0 {
        ss.push(format!(
            "Duration: {}",
            timefmt::go_duration_4(p.duration_nanos)
        ));
    }
    ss.push("Samples:".into());
    let mut sh = String::new();
    for t in &p.sample_type {
        let dflt = if t.r#type == p.default_sample_type {
            "[dflt]"
        } else {
            ""
        };
        let _ = write!(sh, "{}/{}{} ", t.r#type, t.unit, dflt);
    }
    ss.push(sh.trim().to_string());
    for s in &p.sample {
        let mut sv = String::new();
        for v in &s.value {
            let _ = write!(sv, " {v:>10}");
        }
        sv.push_str(": ");
        for &l in &s.location {
            let _ = write!(sv, "{} ", p.location[l as usize].id);
        }
        ss.push(sv);
        const HDR: &str = "                ";
        let str_labels = grouped(s, |v| match v {
            LabelValue::Str(x) => Some(&**x),
            _ => None,
        });
        if !str_labels.is_empty() {
            let mut ls: Vec<String> = str_labels
                .iter()
                .map(|(k, vs)| format!("{k}:[{}]", vs.join(" ")))
                .collect();
            ls.sort();
            ss.push(format!("{HDR}{}", ls.join(" ")));
        }
        let num_labels = grouped(s, |v| match v {
            LabelValue::Num { value, unit } => Some((*value, &**unit)),
            _ => None,
        });
        if !num_labels.is_empty() {
            let mut ls: Vec<String> = num_labels
                .iter()
                .map(|(k, vs)| {
                    if vs.iter().any(|(_, u)| !u.is_empty()) {
                        let v: Vec<String> = vs.iter().map(|(v, u)| format!("{v} {u}")).collect();
                        format!("{k}:[{}]", v.join(" "))
                    } else {
                        let v: Vec<String> = vs.iter().map(|(v, _)| v.to_string()).collect();
                        format!("{k}:[{}]", v.join(" "))
                    }
                })
                .collect();
            ls.sort();
            ss.push(format!("{HDR}{}", ls.join(" ")));
        }
    }
    ss.push("Locations".into());
    for l in &p.location {
        let mut loc = format!("{:>6}: {:#x} ", l.id, l.address);
        if let Some(m) = l.mapping {
            let _ = write!(loc, "M={} ", p.mapping[m as usize].id);
        }
        if l.is_folded {
            loc.push_str("[F] ");
        }
        if l.line.is_empty() {
            ss.push(loc.clone());
        }
        let mut lines = Vec::new();
        for ln in &l.line {
            let f = &p.function[ln.function as usize];
            let mut s = format!(
                "{} {}:{}:{} s={}",
                f.name, f.filename, ln.line, ln.column, f.start_line
            );
            if f.name != f.system_name {
                let _ = write!(s, "({})", f.system_name);
            }
            lines.push(format!("{loc}{s}"));
            loc = "             ".into();
        }
        if !lines.is_empty() {
            ss.push(lines.join("\n"));
        }
    }
    ss.push("Mappings".into());
    for m in &p.mapping {
        let mut bits = String::new();
        for (b, s) in [
            (m.has_functions, "[FN]"),
            (m.has_filenames, "[FL]"),
            (m.has_line_numbers, "[LN]"),
            (m.has_inline_frames, "[IN]"),
        ] {
            if b {
                bits.push_str(s);
            }
        }
        ss.push(format!(
            "{}: {:#x}/{:#x}/{:#x} {} {} {}",
            m.id, m.memory_start, m.memory_limit, m.file_offset, m.filename, m.build_id, bits
        ));
    }
    let mut out = ss.join("\n");
    out.push('\n');
    out
}

/// One label key of the `-tags` report: its values' share of the sample values.
#[derive(Debug, Clone, Serialize)]
pub struct TagKey {
    pub key: String,
    /// A numeric label (allocation `bytes`, ...): filter it with a range (`bytes=1MB`), not
    /// a regexp.
    pub numeric: bool,
    /// Σ of the values of samples with this key (a sample counts once per value it has).
    pub total: i64,
    /// Values by share, largest first (then by name), as pprof lists them; numeric values
    /// are formatted in their unit (`1MB`).
    pub values: Vec<(String, i64)>,
}

/// The label keys and values of the report's samples, as pprof's `-tags` counts them: keys
/// by name, values by share.
pub fn tag_keys(rpt: &Report) -> Vec<TagKey> {
    let units = crate::filter::num_label_units(&rpt.prof);
    let mut keys: std::collections::BTreeMap<String, std::collections::HashMap<String, i64>> =
        Default::default();
    let mut numeric = std::collections::HashSet::new();
    for s in &rpt.prof.sample {
        let v = s.value[rpt.index];
        for l in &s.label {
            let val = match &l.value {
                LabelValue::Str(x) => x.to_string(),
                LabelValue::Num { value, .. } => {
                    numeric.insert(l.key.to_string());
                    scaled_label(
                        *value,
                        units.get(&*l.key).map_or("", String::as_str),
                        "minimum",
                    )
                }
            };
            let e = keys
                .entry(l.key.to_string())
                .or_default()
                .entry(val)
                .or_default();
            *e = e.wrapping_add(v);
        }
    }
    keys.into_iter()
        .map(|(key, vals)| {
            let mut values: Vec<(String, i64)> = vals.into_iter().collect();
            values.sort_by(|a, b| {
                b.1.wrapping_abs()
                    .cmp(&a.1.wrapping_abs())
                    .then_with(|| a.0.cmp(&b.0))
            });
            let total = values.iter().fold(0i64, |t, v| t.wrapping_add(v.1));
            TagKey {
                numeric: numeric.contains(&key),
                key,
                total,
                values,
            }
        })
        .collect()
}

/// The `-tags` report as pprof prints it (`text/tabwriter`, right-aligned, one space of
/// padding; each key's lines are one block of columns).
pub fn tags(rpt: &Report) -> String {
    let fmt = |v: i64| scaled_label(v, &rpt.sample_unit, "minimum");
    let mut out = String::new();
    for k in tag_keys(rpt) {
        let head = if rpt.total > 0 {
            format!(
                " Total {} of {} ({})",
                fmt(k.total),
                fmt(rpt.total),
                percentage(k.total, rpt.total)
            )
        } else {
            format!(" Total {} of {}", fmt(k.total), fmt(rpt.total))
        };
        let cells: Vec<(String, String)> = k
            .values
            .iter()
            .map(|(name, v)| {
                let c = if rpt.total > 0 {
                    format!("{} ({}):", fmt(*v), percentage(*v, rpt.total))
                } else {
                    format!("{}:", fmt(*v))
                };
                (c, format!(" {name}"))
            })
            .collect();
        let key = format!("{}:", k.key);
        // Widths in characters, as tabwriter counts them (UTF-8 runes).
        let w0 = key.chars().count().max(1) + 1;
        let w1 = cells.iter().map(|c| c.0.chars().count()).max().unwrap_or(0) + 1;
        let _ = writeln!(out, "{key:>w0$}{head}");
        for (c, name) in &cells {
            let _ = writeln!(out, "{:>w0$}{c:>w1$}{name}", " ");
        }
        out.push('\n');
    }
    out
}
