//! The call graph `go tool pprof -dot` draws (pprof's `newTrimmedGraph` in visual mode and
//! `graph.ComposeDot`), and the `-peek` report (`printTree`) over the same graph.
//!
//! Visual mode differs from the text reports in three ways: nodes are ranked by an entropy
//! score (a node that only passes its input on scores low), `nodecount` counts each node's
//! tags (pprof labels, allocation sizes) as nodes too, and residual edges that another path
//! already explains are removed. Tags are drawn as "nodelets" beside their node.

use std::cmp::Ordering;
use std::fmt::Write as _;
use std::sync::LazyLock;

use gocost_pprof::units::{label, percentage, scale, scaled_label};
use gocost_pprof::{LabelValue, Profile};
use regex::Regex;
use rustc_hash::{FxHashMap, FxHashSet};
use serde::Serialize;

use crate::Report;
use crate::graph::{Edge, Graph, NodeInfo, Nodes, base_name};
use crate::text::{Shown, Trimmed, output_unit, report_labels};

/// Tags drawn per node (pprof's `maxNodelets`).
const MAX_NODELETS: usize = 4;

/// A call graph as `go tool pprof -dot` draws it.
#[derive(Debug, Clone, Serialize)]
pub struct CallGraph {
    /// The graph's name: the main binary's file name (empty when unknown).
    pub title: String,
    /// The legend's lines (pprof's report labels).
    pub legend: Vec<String>,
    pub total: i64,
    pub sample_type: String,
    pub sample_unit: String,
    /// The unit values are printed in.
    pub output_unit: String,
    /// In pprof's order: node `id` is its position + 1 (`N1`, `N2`, … in the dot text).
    pub nodes: Vec<GraphNode>,
    /// Heaviest first.
    pub edges: Vec<GraphEdge>,
}

#[derive(Debug, Clone, Serialize)]
pub struct GraphNode {
    pub id: usize,
    /// pprof's printable name (function, and file:line at finer granularities).
    pub name: String,
    /// The name as pprof shortens it for the box (package path dropped).
    pub short: String,
    pub flat: i64,
    pub cum: i64,
    pub flat_text: String,
    pub cum_text: String,
    /// Font size pprof gives the box (8–24, growing with flat).
    pub font_size: u32,
    /// Border and fill colours (pprof's red-to-grey scale by cum).
    pub color: String,
    pub fill: String,
    /// The tags drawn beside the node (label values, allocation sizes).
    pub tags: Vec<GraphTag>,
    #[serde(skip)]
    multiline: String,
}

/// A nodelet: one tag of a node (or, for numeric tags under a label, of a tag).
#[derive(Debug, Clone, Serialize)]
pub struct GraphTag {
    /// Dot id: `N3_0`, or `NN3_0_1` for a size under a label.
    pub id: String,
    /// Dot id of what it hangs from (`N3` or `N3_0`).
    pub parent: String,
    pub name: String,
    pub value: i64,
    pub value_text: String,
    /// Cumulative (includes callees' samples), drawn dotted.
    pub dotted: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct GraphEdge {
    /// Node ids.
    pub src: usize,
    pub dst: usize,
    pub weight: i64,
    pub weight_text: String,
    pub inline: bool,
    /// Stands for a path through nodes not shown.
    pub residual: bool,
    #[serde(skip)]
    src_name: String,
    #[serde(skip)]
    dst_name: String,
}

/// A tag of a node: string labels joined, or one numeric value.
#[derive(Debug, Clone, Default)]
struct Tag {
    name: String,
    unit: String,
    value: i64,
    flat: i64,
    cum: i64,
}

/// A tag's weight.
#[derive(Debug, Clone, Copy, Default)]
struct Val {
    flat: i64,
    cum: i64,
}

impl Val {
    fn bump(&mut self, w: i64, flat: bool) {
        if flat {
            self.flat += w;
        } else {
            self.cum += w;
        }
    }

    fn kept(&self, cutoff: i64) -> bool {
        self.flat.wrapping_abs() >= cutoff || self.cum.wrapping_abs() >= cutoff
    }
}

/// A node's tags, by interned name ([`Tags`]): label sets (joined string labels), and
/// numeric tags per (label set, numeric tag). Label set 0 is "no string labels".
#[derive(Debug, Clone, Default)]
struct NodeTags {
    labels: FxHashMap<u32, Val>,
    numeric: FxHashMap<(u32, u32), Val>,
}

impl NodeTags {
    fn trim(&mut self, cutoff: i64) {
        self.labels.retain(|_, t| t.kept(cutoff));
        self.numeric.retain(|_, t| t.kept(cutoff));
    }

    /// pprof's `countTags`: tags with a flat value.
    fn count(&self) -> usize {
        self.labels.values().filter(|t| t.flat != 0).count()
            + self.numeric.values().filter(|t| t.flat != 0).count()
    }
}

/// The tags of a graph's nodes. Names are interned: a busy service's profiles carry
/// thousands of label sets, each on every node of its samples' stacks.
#[derive(Debug, Clone, Default)]
struct Tags {
    /// Label set id → pprof's joined `key:value` text (`\n`-separated); 0 is "".
    sets: Vec<String>,
    /// Numeric tag id → (formatted value, value).
    nums: Vec<(String, i64)>,
    /// The unit of `bytes` labels.
    unit: String,
    nodes: FxHashMap<u32, NodeTags>,
}

impl Tags {
    fn trim(&mut self, cutoff: i64) {
        self.nodes.values_mut().for_each(|t| t.trim(cutoff));
    }

    fn label_tag(&self, id: u32, v: Val) -> Tag {
        Tag {
            name: self.sets[id as usize].clone(),
            unit: String::new(),
            value: 0,
            flat: v.flat,
            cum: v.cum,
        }
    }

    fn num_tag(&self, id: u32, v: Val) -> Tag {
        let (name, value) = &self.nums[id as usize];
        Tag {
            name: name.clone(),
            unit: self.unit.clone(),
            value: *value,
            flat: v.flat,
            cum: v.cum,
        }
    }
}

/// pprof's tags of each node of a graph built with `kept` (`Node.addSample`): string labels
/// joined (`key:value`, sorted, `\n`-separated, `pprof::base` dropped) and `bytes` values.
fn node_tags(p: &Profile, nodes: &Nodes, index: usize, kept: Option<&[bool]>) -> Tags {
    let mut out = Tags {
        sets: vec![String::new()],
        ..Tags::default()
    };
    let any = p.sample.iter().any(|s| {
        s.label.iter().any(|l| match &l.value {
            LabelValue::Str(_) => &*l.key != "pprof::base",
            LabelValue::Num { .. } => &*l.key == "bytes",
        })
    });
    if !any {
        return out;
    }
    out.unit = crate::filter::num_label_units(p)
        .get("bytes")
        .cloned()
        .unwrap_or_else(|| "bytes".into());
    let mut set_ids: FxHashMap<String, u32> = FxHashMap::default();
    set_ids.insert(String::new(), 0);
    let mut num_ids: FxHashMap<String, u32> = FxHashMap::default();
    let mut seen = vec![u32::MAX; nodes.infos.len()];
    let mut strs: Vec<String> = Vec::new();
    let mut nums: Vec<u32> = Vec::new();
    for (si, s) in p.sample.iter().enumerate() {
        if si.is_multiple_of(1024) {
            gocost_pprof::cancel::checkpoint();
        }
        let w = s.value[index];
        if w == 0 {
            continue;
        }
        strs.clear();
        nums.clear();
        for l in &s.label {
            match &l.value {
                LabelValue::Str(v) if &*l.key != "pprof::base" => {
                    strs.push(format!("{}:{}", l.key, v));
                }
                LabelValue::Num { value, .. } if &*l.key == "bytes" => {
                    let name = scaled_label(*value, &out.unit, "minimum");
                    let id = *num_ids.entry(name).or_insert_with_key(|k| {
                        out.nums.push((k.clone(), *value));
                        (out.nums.len() - 1) as u32
                    });
                    nums.push(id);
                }
                _ => {}
            }
        }
        strs.sort();
        let set = *set_ids.entry(strs.join("\\n")).or_insert_with_key(|k| {
            out.sets.push(k.clone());
            (out.sets.len() - 1) as u32
        });
        let add = |t: &mut NodeTags, flat: bool| {
            if set != 0 {
                t.labels.entry(set).or_default().bump(w, flat);
            }
            for &n in &nums {
                t.numeric.entry((set, n)).or_default().bump(w, flat);
            }
        };
        let stamp = si as u32;
        let mut parent: Option<u32> = None;
        let mut residual = false;
        for &l in s.location.iter().rev() {
            let ln = &nodes.loc_nodes[l as usize];
            for &node in ln.iter().rev() {
                if kept.is_some_and(|k| !k[node as usize]) {
                    residual = true;
                    continue;
                }
                if seen[node as usize] != stamp {
                    seen[node as usize] = stamp;
                    add(out.nodes.entry(node).or_default(), false);
                }
                parent = Some(node);
                residual = false;
            }
        }
        if let Some(par) = parent
            && !residual
        {
            add(out.nodes.entry(par).or_default(), true);
        }
    }
    out
}

/// Per node, its edges with the node at their other end.
type Adjacent = Vec<Vec<(u32, Edge)>>;

/// Each node's incoming and outgoing edges.
fn adjacency(g: &Graph, n: usize) -> (Adjacent, Adjacent) {
    let mut ins = vec![Vec::new(); n];
    let mut outs = vec![Vec::new(); n];
    for (&(src, dst), &e) in &g.edges {
        ins[dst as usize].push((src, e));
        outs[src as usize].push((dst, e));
    }
    (ins, outs)
}

/// pprof's `edgeEntropyScore`.
fn edge_entropy(edges: &[(u32, Edge)], own: i64) -> f64 {
    let mut total = own;
    for (_, e) in edges {
        if e.weight > 0 {
            total += e.weight.wrapping_abs();
        }
    }
    let mut score = 0.0;
    if total != 0 {
        for (_, e) in edges {
            let frac = e.weight.wrapping_abs() as f64 / total as f64;
            score += -frac * frac.log2();
        }
        if own > 0 {
            let frac = own.wrapping_abs() as f64 / total as f64;
            score += -frac * frac.log2();
        }
    }
    score
}

/// pprof's `EntropyOrder`: nodes that split or join flows, entries and leaves first.
fn sort_entropy(g: &mut Graph, nodes: &Nodes) {
    let n = nodes.infos.len();
    let (ins, outs) = adjacency(g, n);
    let mut score = vec![0i64; n];
    for &i in &g.nodes {
        let i = i as usize;
        let mut s = 0.0;
        s += if ins[i].is_empty() {
            1.0
        } else {
            edge_entropy(&ins[i], 0)
        };
        s += if outs[i].is_empty() {
            1.0
        } else {
            edge_entropy(&outs[i], g.flat[i])
        };
        score[i] = ((s * g.cum[i] as f64) as i64).wrapping_add(g.flat[i]);
    }
    g.sort_by_score(nodes, &score);
}

/// Go's `EdgeMap.Sort` order: heavier first, then by source and destination name.
fn edge_order(
    names: &dyn Fn(u32) -> String,
) -> impl Fn(&(u32, u32, Edge), &(u32, u32, Edge)) -> Ordering + '_ {
    move |a, b| {
        b.2.weight
            .wrapping_abs()
            .cmp(&a.2.weight.wrapping_abs())
            .then_with(|| names(a.0).cmp(&names(b.0)))
            .then_with(|| names(a.1).cmp(&names(b.1)))
    }
}

/// pprof's `RemoveRedundantEdges`: a residual edge goes when its destination is reachable
/// from its source another way; lightest first, never past a non-residual edge.
fn remove_redundant_edges(g: &mut Graph, nodes: &Nodes) {
    let n = nodes.infos.len();
    let name = |i: u32| nodes.infos[i as usize].printable_name();
    let mut ins: Vec<Vec<u32>> = vec![Vec::new(); n];
    for &(src, dst) in g.edges.keys() {
        ins[dst as usize].push(src);
    }
    for &dst in g.nodes.clone().iter().rev() {
        let mut in_edges: Vec<(u32, u32, Edge)> = ins[dst as usize]
            .iter()
            .map(|&src| (src, dst, g.edges[&(src, dst)]))
            .collect();
        in_edges.sort_by(edge_order(&name));
        for &(src, _, e) in in_edges.iter().rev() {
            if !e.residual {
                break;
            }
            // Is `src` still an ancestor of `dst` without this edge?
            let mut seen: FxHashSet<u32> = FxHashSet::default();
            seen.insert(dst);
            let mut queue = std::collections::VecDeque::from([dst]);
            let mut redundant = false;
            'bfs: while let Some(m) = queue.pop_front() {
                for &s in &ins[m as usize] {
                    if (s == src && m == dst) || seen.contains(&s) {
                        continue;
                    }
                    if s == src {
                        redundant = true;
                        break 'bfs;
                    }
                    seen.insert(s);
                    queue.push_back(s);
                }
            }
            if redundant {
                g.edges.remove(&(src, dst));
                ins[dst as usize].retain(|&s| s != src);
            }
        }
    }
}

/// The graph pprof's visual mode keeps (`newTrimmedGraph` with `OutputFormat == Dot`), with
/// the tags of its nodes, the node count before `nodecount`, and the nodes and edges dropped.
fn trimmed_visual(rpt: &Report, nodes: &Nodes) -> (Graph, Tags, usize, usize, usize) {
    let (p, index, o) = (&rpt.prof, rpt.index, &rpt.opts);
    let mut g = Graph::build(p, nodes, index, None);
    let total = g.total_flat();
    let node_cutoff = ((total as f64 * o.nodefraction) as i64).wrapping_abs();
    let edge_cutoff = ((total as f64 * o.edgefraction) as i64).wrapping_abs();
    let mut dropped_nodes = 0;
    if let Some((kept, d)) = g.above_cutoff(nodes, node_cutoff) {
        dropped_nodes = d;
        g = Graph::build(p, nodes, index, Some(&kept));
    }
    let orig_count = g.nodes.len();
    sort_entropy(&mut g, nodes);
    let mut tags = node_tags(p, nodes, index, g.kept.as_deref());
    let nodecount = o.nodecount.unwrap_or(0);
    if nodecount > 0 {
        tags.trim(node_cutoff);
        g.trim_edges(edge_cutoff);
        // Tags count as nodes: each node takes 1 + its tags (at most MAX_NODELETS).
        let mut max = nodecount;
        let mut count = 0;
        for (i, n) in g.nodes.iter().enumerate() {
            let t = tags
                .nodes
                .get(n)
                .map_or(0, NodeTags::count)
                .min(MAX_NODELETS);
            count += t + 1;
            if count >= max {
                max = i + 1;
                break;
            }
        }
        let max = max.min(g.nodes.len());
        if max != g.nodes.len() {
            let mut kept = vec![false; nodes.infos.len()];
            for &i in &g.nodes[..max] {
                kept[i as usize] = true;
            }
            g = Graph::build(p, nodes, index, Some(&kept));
            sort_entropy(&mut g, nodes);
            tags = node_tags(p, nodes, index, Some(&kept));
        }
    }
    tags.trim(node_cutoff);
    let dropped_edges = g.trim_edges(edge_cutoff);
    remove_redundant_edges(&mut g, nodes);
    (g, tags, orig_count, dropped_nodes, dropped_edges)
}

static GO_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^(?:[\w\-\.]+/)+([^.]+\..+)").expect("static regexp"));
static GO_VER_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^(.*?)/v(?:[2-9]|[1-9][0-9]+)([./].*)$").expect("static regexp"));
static JAVA_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:[a-z]\w*\.)*([A-Z][\w\$]*\.(?:<init>|[a-z][\w\$]*(?:\$\d+)?))(?:(?:\()|$)")
        .expect("static regexp")
});
static CPP_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:[_a-zA-Z]\w*::)+(_*[A-Z]\w*::~?[_a-zA-Z]\w*(?:<.*>)?)").expect("static regexp")
});
static CPP_ANON_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\(anonymous namespace\)::").expect("static regexp"));

/// pprof's `ShortenFunctionName`: drops the package path (`net/http.(*conn).serve` →
/// `http.(*conn).serve`).
pub fn shorten_function_name(f: &str) -> String {
    let f = CPP_ANON_RE.replace(f, "");
    let f = GO_VER_RE.replace(&f, "${1}${2}");
    for re in [&*GO_RE, &*JAVA_RE, &*CPP_RE] {
        if let Some(c) = re.captures(&f) {
            return c
                .iter()
                .skip(1)
                .map(|m| m.map_or("", |m| m.as_str()))
                .collect();
        }
    }
    f.into_owned()
}

/// Graphviz escaping as pprof does it (`escapeForDot`): `\` and `"` escaped, newlines
/// left-justified.
fn escape_for_dot(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\l")
}

/// pprof's `multilinePrintableName`: the short name split at dots, one part per line.
fn multiline_name(info: &NodeInfo) -> String {
    let mut name = escape_for_dot(&shorten_function_name(info.name));
    name = name.replace("::", "\\n");
    name = name.replace("[...]", "[…]");
    name = name.replace('.', "\\n");
    let file = if info.file.is_empty() {
        String::new()
    } else {
        base_name(&info.file).to_string()
    };
    let copy = NodeInfo {
        name: &name,
        address: info.address,
        file: file.into(),
        start_line: info.start_line,
        lineno: info.lineno,
        columnno: info.columnno,
        objfile: info.objfile,
    };
    let mut s = copy.printable_name_parts().join("\\n");
    s.push_str("\\n");
    s
}

/// pprof's `dotColor`: a score in [-1, 1] from green through grey to red.
fn dot_color(score: f64, background: bool) -> String {
    const SHIFT: f64 = 0.7;
    let (mut saturation, value) = if background { (0.1, 0.93) } else { (1.0, 0.7) };
    let mut score = score.clamp(-1.0, 1.0);
    if score.abs() < 0.2 {
        saturation *= score.abs() / 0.2;
    }
    if score > 0.0 {
        score = score.powf(1.0 - SHIFT);
    }
    if score < 0.0 {
        score = -(-score).powf(1.0 - SHIFT);
    }
    let (r, g);
    if score < 0.0 {
        g = value;
        r = value * (1.0 + saturation * score);
    } else {
        r = value;
        g = value * (1.0 - saturation * score);
    }
    let b = value * (1.0 - saturation);
    format!(
        "#{:02x}{:02x}{:02x}",
        (r * 255.0) as u8,
        (g * 255.0) as u8,
        (b * 255.0) as u8
    )
}

/// pprof's `SortTags` order: by cum (unless `flat`), then flat, heaviest first, then by name.
fn tag_order(a: &Tag, b: &Tag, flat: bool) -> Ordering {
    let by_cum = if flat {
        Ordering::Equal
    } else {
        b.cum.wrapping_abs().cmp(&a.cum.wrapping_abs())
    };
    by_cum
        .then_with(|| b.flat.wrapping_abs().cmp(&a.flat.wrapping_abs()))
        .then_with(|| a.name.cmp(&b.name))
}

/// pprof's `SortTags`.
fn sort_tags(ts: &mut [Tag], flat: bool) {
    ts.sort_by(|a, b| tag_order(a, b, flat));
}

/// pprof's `collapsedTags`: at most `count` numeric tags, the rest grouped into ranges
/// around the heaviest.
fn collapsed_tags(mut ts: Vec<Tag>, count: usize, flat: bool) -> Vec<Tag> {
    sort_tags(&mut ts, flat);
    if ts.len() <= count {
        return ts;
    }
    let distance = |t: &Tag, u: &Tag| {
        let (v, _) = scale(u.value, &u.unit, &t.unit);
        (t.value as f64 - v).abs()
    };
    let mut groups: Vec<Vec<Tag>> = ts[..count].iter().map(|t| vec![t.clone()]).collect();
    for t in &ts[count..] {
        let (mut best, mut d) = (0, distance(t, &groups[0][0]));
        for (i, g) in groups.iter().enumerate().skip(1) {
            let nd = distance(t, &g[0]);
            if nd < d {
                (best, d) = (i, nd);
            }
        }
        groups[best].push(t.clone());
    }
    let mut out: Vec<Tag> = groups
        .into_iter()
        .map(|g| {
            if g.len() == 1 {
                let t = &g[0];
                return Tag {
                    name: label(t.value, &t.unit),
                    ..t.clone()
                };
            }
            let (mut min, mut max) = (&g[0], &g[0]);
            let (mut f, mut c) = (0i64, 0i64);
            for (i, t) in g.iter().enumerate() {
                if i > 0 {
                    if (scale(t.value, &t.unit, &min.unit).0 as i64) < min.value {
                        min = t;
                    }
                    if (scale(t.value, &t.unit, &max.unit).0 as i64) > max.value {
                        max = t;
                    }
                }
                f += t.flat;
                c += t.cum;
            }
            Tag {
                name: format!(
                    "{}..{}",
                    label(min.value, &min.unit),
                    label(max.value, &max.unit)
                ),
                unit: String::new(),
                value: 0,
                flat: f,
                cum: c,
            }
        })
        .collect();
    sort_tags(&mut out, flat);
    out
}

/// pprof's `addNodelets` for one node: its label tags (top 4) and numeric tags.
fn nodelets(
    tags: &Tags,
    t: &NodeTags,
    node_id: usize,
    flat_tags: bool,
    fmt: &dyn Fn(i64) -> String,
) -> Vec<GraphTag> {
    let mut out = Vec::new();
    // The numeric tags under one label set.
    let under = |set: u32| -> Vec<Tag> {
        t.numeric
            .iter()
            .filter(|((s, _), _)| *s == set)
            .map(|(&(_, n), &v)| tags.num_tag(n, v))
            .collect()
    };
    let numeric = |list: Vec<Tag>, source: String, out: &mut Vec<GraphTag>| {
        for (j, t) in collapsed_tags(list, MAX_NODELETS, flat_tags)
            .into_iter()
            .enumerate()
        {
            let (w, dotted) = if flat_tags || t.flat == t.cum {
                (t.flat, false)
            } else {
                (t.cum, true)
            };
            if w != 0 {
                out.push(GraphTag {
                    id: format!("N{source}_{j}"),
                    parent: source.clone(),
                    name: t.name.clone(),
                    value: w,
                    value_text: fmt(w),
                    dotted,
                });
            }
        }
    };
    let mut ts: Vec<(u32, Tag)> = t
        .labels
        .iter()
        .map(|(&id, &v)| (id, tags.label_tag(id, v)))
        .collect();
    ts.sort_by(|a, b| tag_order(&a.1, &b.1, flat_tags));
    ts.truncate(MAX_NODELETS);
    for (i, (set, tag)) in ts.iter().enumerate() {
        let w = if flat_tags { tag.flat } else { tag.cum };
        if w == 0 {
            continue;
        }
        out.push(GraphTag {
            id: format!("N{node_id}_{i}"),
            parent: format!("N{node_id}"),
            name: tag.name.clone(),
            value: w,
            value_text: fmt(w),
            dotted: false,
        });
        let nts = under(*set);
        if !nts.is_empty() {
            numeric(nts, format!("N{node_id}_{i}"), &mut out);
        }
    }
    let nts = under(0);
    if !nts.is_empty() {
        numeric(nts, format!("N{node_id}"), &mut out);
    }
    out
}

impl CallGraph {
    /// pprof's call graph for `go tool pprof -dot` with the report's options.
    pub fn new(rpt: &Report) -> CallGraph {
        let nodes = Nodes::new(&rpt.prof);
        let (g, tags, orig, dropped_nodes, dropped_edges) = trimmed_visual(rpt, &nodes);
        let unit = output_unit(rpt, &g);
        let fmt = |v: i64| scaled_label(v, &rpt.sample_unit, &unit);
        let legend = report_labels(
            rpt,
            &fmt,
            Shown {
                total: g.total_flat(),
                nodes: g.nodes.len(),
                orig,
                dropped_nodes,
                dropped_edges,
            },
            true,
        );
        let title = rpt
            .prof
            .mapping
            .first()
            .filter(|m| !m.filename.is_empty())
            .map_or_else(String::new, |m| base_name(&m.filename).to_string());
        let id_of: FxHashMap<u32, usize> = g
            .nodes
            .iter()
            .enumerate()
            .map(|(i, &n)| (n, i + 1))
            .collect();
        let has_out: FxHashSet<u32> = g.edges.keys().map(|&(s, _)| s).collect();
        let max_flat = g
            .nodes
            .iter()
            .map(|&n| g.flat[n as usize].wrapping_abs())
            .max()
            .unwrap_or(0) as f64;
        let total_abs = rpt.total.wrapping_abs() as f64;
        let out_nodes: Vec<GraphNode> = g
            .nodes
            .iter()
            .enumerate()
            .map(|(i, &n)| {
                let info = &nodes.infos[n as usize];
                let (flat, cum) = (g.flat[n as usize], g.cum[n as usize]);
                let mut font_size = 8;
                if max_flat != 0.0 && flat != 0 && flat.wrapping_abs() as f64 <= max_flat {
                    font_size +=
                        (16.0 * (flat.wrapping_abs() as f64 / max_flat).sqrt()).ceil() as u32;
                }
                let score = cum as f64 / total_abs;
                GraphNode {
                    id: i + 1,
                    name: info.printable_name(),
                    short: shorten_function_name(info.name),
                    flat,
                    cum,
                    flat_text: fmt(flat),
                    cum_text: fmt(cum),
                    font_size,
                    color: dot_color(score, false),
                    fill: dot_color(score, true),
                    tags: tags
                        .nodes
                        .get(&n)
                        .map(|t| nodelets(&tags, t, i + 1, has_out.contains(&n), &fmt))
                        .unwrap_or_default(),
                    multiline: multiline_name(info),
                }
            })
            .collect();
        let name = |i: u32| nodes.infos[i as usize].printable_name();
        // pprof draws the out-edges of the graph's nodes (an edge into a node that is not
        // drawn, e.g. zero-sum in a diff, points at N0 as pprof's does).
        let mut edges: Vec<(u32, u32, Edge)> = g
            .edges
            .iter()
            .filter(|((s, _), _)| id_of.contains_key(s))
            .map(|(&(s, d), &e)| (s, d, e))
            .collect();
        edges.sort_by(edge_order(&name));
        let edges = edges
            .into_iter()
            .map(|(s, d, e)| GraphEdge {
                src: id_of.get(&s).copied().unwrap_or(0),
                dst: id_of.get(&d).copied().unwrap_or(0),
                weight: e.weight,
                weight_text: fmt(e.weight),
                inline: e.inline,
                residual: e.residual,
                src_name: name(s),
                dst_name: name(d),
            })
            .collect();
        CallGraph {
            title,
            legend,
            total: rpt.total,
            sample_type: rpt.sample_type.clone(),
            sample_unit: rpt.sample_unit.clone(),
            output_unit: unit.clone(),
            nodes: out_nodes,
            edges,
        }
    }

    /// The graph in Graphviz's dot language, as `go tool pprof -dot` prints it.
    pub fn to_dot(&self) -> String {
        let mut out = String::with_capacity(512 * (self.nodes.len() + 4));
        let name = if self.title.is_empty() {
            "unnamed"
        } else {
            &self.title
        };
        let _ = writeln!(out, "digraph \"{name}\" {{");
        out.push_str("node [style=filled fillcolor=\"#f8f8f8\"]\n");
        if let Some(first) = self.legend.first() {
            let labels: Vec<String> = self.legend.iter().map(|l| escape_for_dot(l)).collect();
            let _ = write!(
                out,
                "subgraph cluster_L {{ \"{}\" [shape=box fontsize=16 label=\"{}\\l\"",
                escape_for_dot(first),
                labels.join("\\l")
            );
            if !self.title.is_empty() {
                let _ = write!(out, " tooltip=\"{}\"", self.title);
            }
            out.push_str("] }\n");
        }
        let pct = |v: i64| percentage(v, self.total).trim().to_string();
        for n in &self.nodes {
            let mut lbl = n.multiline.clone();
            if n.flat != 0 {
                let _ = write!(lbl, "{} ({})", n.flat_text, pct(n.flat));
            } else {
                lbl.push('0');
            }
            let mut cum_text = &n.flat_text;
            if n.cum != n.flat {
                lbl.push_str(if n.flat != 0 { "\\n" } else { " " });
                cum_text = &n.cum_text;
                let _ = write!(lbl, "of {} ({})", n.cum_text, pct(n.cum));
            }
            let _ = writeln!(
                out,
                "N{id} [label=\"{lbl}\" id=\"node{id}\" fontsize={} shape=box tooltip=\"{} ({})\" color=\"{}\" fillcolor=\"{}\"]",
                n.font_size,
                escape_for_dot(&n.name),
                cum_text,
                n.color,
                n.fill,
                id = n.id,
            );
            for t in &n.tags {
                let _ = writeln!(
                    out,
                    "{} [label = \"{}\" id=\"{}\" fontsize=8 shape=box3d tooltip=\"{}\"]",
                    t.id, t.name, t.id, t.value_text
                );
                let _ = writeln!(
                    out,
                    "{} -> {} [label=\" {}\" weight=100 tooltip=\"{}\" labeltooltip=\"{}\"{}]",
                    t.parent,
                    t.id,
                    t.value_text,
                    t.value_text,
                    t.value_text,
                    if t.dotted { " style=\"dotted\"" } else { "" }
                );
            }
        }
        let has_tags: FxHashSet<usize> = self
            .nodes
            .iter()
            .filter(|n| !n.tags.is_empty())
            .map(|n| n.id)
            .collect();
        for e in &self.edges {
            let mut attr = format!(
                "label=\" {}{}\"",
                e.weight_text,
                if e.inline { "\\n (inline)" } else { "" }
            );
            if self.total != 0 {
                let weight = 1
                    + (e.weight.wrapping_mul(100) / self.total)
                        .wrapping_abs()
                        .min(100);
                if weight > 1 {
                    let _ = write!(attr, " weight={weight}");
                }
                let width = 1
                    + (e.weight.wrapping_mul(5) / self.total)
                        .wrapping_abs()
                        .min(5);
                if width > 1 {
                    let _ = write!(attr, " penwidth={width}");
                }
                let _ = write!(
                    attr,
                    " color=\"{}\"",
                    dot_color(e.weight as f64 / self.total.wrapping_abs() as f64, false)
                );
            }
            let tooltip = format!(
                "\"{} {} {} ({})\"",
                escape_for_dot(&e.src_name),
                if e.residual { "..." } else { "->" },
                escape_for_dot(&e.dst_name),
                e.weight_text
            );
            let _ = write!(attr, " tooltip={tooltip} labeltooltip={tooltip}");
            if e.residual {
                attr.push_str(" style=\"dotted\"");
            }
            if has_tags.contains(&e.src) {
                attr.push_str(" minlen=2");
            }
            let _ = writeln!(out, "N{} -> N{} [{attr}]", e.src, e.dst);
        }
        out.push_str("}\n");
        out
    }
}

/// One function of a `-peek` report: its callers and callees.
#[derive(Debug, Clone, Serialize)]
pub struct PeekEntry {
    pub name: String,
    pub flat: i64,
    pub cum: i64,
    pub flat_text: String,
    pub cum_text: String,
    pub flat_percent: String,
    pub sum_percent: String,
    pub cum_percent: String,
    /// Heaviest first.
    pub callers: Vec<PeekEdge>,
    pub callees: Vec<PeekEdge>,
}

/// A caller or callee in a `-peek` report.
#[derive(Debug, Clone, Serialize)]
pub struct PeekEdge {
    pub name: String,
    pub weight: i64,
    pub weight_text: String,
    /// Share of the peeked function's cum.
    pub percent: String,
    pub inline: bool,
}

/// A `-peek` report as data.
#[derive(Debug, Clone, Serialize)]
pub struct PeekReport {
    pub header: Vec<String>,
    pub total: i64,
    pub sample_type: String,
    pub sample_unit: String,
    pub output_unit: String,
    /// The functions whose names match, in the report's order.
    pub entries: Vec<PeekEntry>,
    /// Whether the graph has any node (pprof prints a closing separator then).
    #[serde(skip)]
    nonempty: bool,
}

impl PeekReport {
    /// pprof's `-peek`: for every node whose name matches `rx`, its callers and callees with
    /// the share of its cum each accounts for.
    pub fn new(rpt: &Report, rx: &Regex) -> PeekReport {
        let Trimmed {
            nodes,
            g,
            unit,
            header,
        } = Trimmed::new(rpt);
        let fmt = |v: i64| scaled_label(v, &rpt.sample_unit, &unit);
        let name = |i: u32| nodes.infos[i as usize].printable_name();
        let (ins, outs): (Adjacent, Adjacent) = adjacency(&g, nodes.infos.len());
        let side = |list: &[(u32, Edge)], n: u32, incoming: bool, cum: i64| {
            let mut es: Vec<(u32, u32, Edge)> = list
                .iter()
                .map(|&(o, e)| if incoming { (o, n, e) } else { (n, o, e) })
                .collect();
            es.sort_by(edge_order(&name));
            es.into_iter()
                .map(|(s, d, e)| PeekEdge {
                    name: name(if incoming { s } else { d }),
                    weight: e.weight,
                    weight_text: fmt(e.weight),
                    percent: percentage(e.weight, cum),
                    inline: e.inline,
                })
                .collect()
        };
        let mut flat_sum = 0i64;
        let mut entries = Vec::new();
        for &n in &g.nodes {
            let nm = name(n);
            if !rx.is_match(&nm) {
                continue;
            }
            let (flat, cum) = (g.flat[n as usize], g.cum[n as usize]);
            flat_sum = flat_sum.wrapping_add(flat);
            entries.push(PeekEntry {
                name: nm,
                flat,
                cum,
                flat_text: fmt(flat),
                cum_text: fmt(cum),
                flat_percent: percentage(flat, rpt.total),
                sum_percent: percentage(flat_sum, rpt.total),
                cum_percent: percentage(cum, rpt.total),
                callers: side(&ins[n as usize], n, true, cum),
                callees: side(&outs[n as usize], n, false, cum),
            });
        }
        PeekReport {
            header,
            total: rpt.total,
            sample_type: rpt.sample_type.clone(),
            sample_unit: rpt.sample_unit.clone(),
            output_unit: unit.clone(),
            entries,
            nonempty: !g.nodes.is_empty(),
        }
    }

    /// The report as `go tool pprof -peek` prints it.
    pub fn to_text(&self) -> String {
        const SEP: &str =
            "----------------------------------------------------------+-------------";
        let mut out = self.header.join("\n");
        out.push('\n');
        out.push_str(SEP);
        out.push('\n');
        out.push_str(
            "      flat  flat%   sum%        cum   cum%   calls calls% + context \t \t \n",
        );
        let edge = |out: &mut String, e: &PeekEdge| {
            let _ = writeln!(
                out,
                "{:>50} {} |   {}{}",
                e.weight_text,
                e.percent,
                e.name,
                if e.inline { " (inline)" } else { "" }
            );
        };
        for en in &self.entries {
            out.push_str(SEP);
            out.push('\n');
            for e in &en.callers {
                edge(&mut out, e);
            }
            let _ = writeln!(
                out,
                "{:>10} {} {} {:>10} {}                | {}",
                en.flat_text, en.flat_percent, en.sum_percent, en.cum_text, en.cum_percent, en.name
            );
            for e in &en.callees {
                edge(&mut out, e);
            }
        }
        if self.nonempty {
            out.push_str(SEP);
            out.push('\n');
        }
        out
    }
}
