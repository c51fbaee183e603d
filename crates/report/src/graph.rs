//! pprof's call graph (`internal/graph`): nodes identified by [`NodeInfo`], flat and cum
//! values (cum counted once per sample, so recursion is not double counted), edges with
//! their inline flag, node trimming and pprof's sort orders.

use std::cmp::Ordering;
use std::hash::Hash;

use gocost_pprof::Profile;
use rustc_hash::FxHashMap;

/// A node's identity, as pprof's `graph.NodeInfo` (without `OrigName`, which text reports
/// never set).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NodeInfo<'a> {
    pub name: &'a str,
    pub address: u64,
    pub file: std::borrow::Cow<'a, str>,
    pub start_line: i64,
    pub lineno: i64,
    pub columnno: i64,
    pub objfile: &'a str,
}

impl NodeInfo<'_> {
    /// pprof's `PrintableName`: `[%016x address] [name] [file:line[:col] | file | [obj] | <unknown>]`.
    pub fn printable_name(&self) -> String {
        self.printable_name_parts().join(" ")
    }

    /// pprof's `NameComponents`, the parts [`NodeInfo::printable_name`] joins.
    pub fn printable_name_parts(&self) -> Vec<String> {
        let mut parts: Vec<String> = Vec::with_capacity(3);
        if self.address != 0 {
            parts.push(format!("{:016x}", self.address));
        }
        if !self.name.is_empty() {
            parts.push(self.name.to_string());
        }
        if self.lineno != 0 {
            let mut s = format!("{}:{}", self.file, self.lineno);
            if self.columnno != 0 {
                s.push_str(&format!(":{}", self.columnno));
            }
            parts.push(s);
        } else if !self.file.is_empty() {
            parts.push(self.file.to_string());
        } else if !self.name.is_empty() {
        } else if !self.objfile.is_empty() {
            parts.push(format!("[{}]", base_name(self.objfile)));
        } else {
            parts.push("<unknown>".into());
        }
        parts
    }

    /// Go's `fmt.Sprint(NodeInfo)`, pprof's last-resort tie breaker.
    fn sprint(&self) -> String {
        format!(
            "{{{} {} {} {} {} {} {} {}}}",
            self.name,
            "",
            self.address,
            self.file,
            self.start_line,
            self.lineno,
            self.columnno,
            self.objfile
        )
    }
}

/// Go's `filepath.Base`.
pub fn base_name(p: &str) -> &str {
    if p.is_empty() {
        return ".";
    }
    let t = p.trim_end_matches('/');
    if t.is_empty() {
        return "/";
    }
    match t.rfind('/') {
        Some(i) => &t[i + 1..],
        None => t,
    }
}

/// Go's `filepath.Clean` (lexical).
pub fn clean_path(p: &str) -> std::borrow::Cow<'_, str> {
    let dirty = p.contains("//")
        || p.contains("/./")
        || p.contains("/../")
        || p.starts_with("./")
        || p.starts_with("../")
        || (p.len() > 1 && p.ends_with('/'))
        || p.ends_with("/.")
        || p.ends_with("/..")
        || p == "."
        || p == "..";
    if !dirty {
        return std::borrow::Cow::Borrowed(p);
    }
    let rooted = p.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if out.last().is_some_and(|l| *l != "..") {
                    out.pop();
                } else if !rooted {
                    out.push("..");
                }
            }
            x => out.push(x),
        }
    }
    let s = out.join("/");
    std::borrow::Cow::Owned(match (rooted, s.is_empty()) {
        (true, _) => format!("/{s}"),
        (false, true) => ".".into(),
        (false, false) => s,
    })
}

/// All potential graph nodes of a profile and, per location, its nodes (caller line last).
pub struct Nodes<'a> {
    pub infos: Vec<NodeInfo<'a>>,
    /// `loc_nodes[loc]` = node per line, in line order (`line[0]` = innermost).
    pub loc_nodes: Vec<Vec<u32>>,
}

impl<'a> Nodes<'a> {
    /// pprof's `CreateNodes` (with `ObjNames` off).
    pub fn new(p: &'a Profile) -> Self {
        let mut index: FxHashMap<NodeInfo<'a>, u32> = FxHashMap::default();
        let mut infos = Vec::new();
        let mut loc_nodes = Vec::with_capacity(p.location.len());
        for l in &p.location {
            let objfile = l.mapping.map_or("", |m| &*p.mapping[m as usize].filename);
            let mut nodes = Vec::with_capacity(l.line.len().max(1));
            let mut add = |info: NodeInfo<'a>| {
                let next = infos.len() as u32;
                let id = *index.entry(info.clone()).or_insert(next);
                if id == next {
                    infos.push(info);
                }
                id
            };
            if l.line.is_empty() {
                nodes.push(add(NodeInfo {
                    name: "",
                    address: l.address,
                    file: "".into(),
                    start_line: 0,
                    lineno: 0,
                    columnno: 0,
                    objfile,
                }));
            }
            for ln in &l.line {
                let f = &p.function[ln.function as usize];
                let mut info = NodeInfo {
                    name: &f.name,
                    address: l.address,
                    file: clean_path(&f.filename),
                    start_line: 0,
                    lineno: ln.line,
                    columnno: ln.column,
                    objfile: "",
                };
                if f.filename.is_empty() {
                    info.file = "".into();
                }
                if info.name.is_empty() {
                    info.objfile = objfile;
                    info.start_line = f.start_line;
                }
                nodes.push(add(info));
            }
            loc_nodes.push(nodes);
        }
        Nodes { infos, loc_nodes }
    }
}

/// The samples' stacks with their weights, samples with identical stacks combined.
///
/// The graph ignores labels and is linear in the weights, so combining samples that share a
/// stack changes nothing — except for a stack whose samples have mixed signs (diffs), whose
/// zero-summing parts still create edges in pprof; those samples are kept apart.
fn stacks(p: &Profile, index: usize) -> Vec<(&[u32], i64)> {
    use std::collections::hash_map::Entry;
    let mut out: Vec<(&[u32], i64)> = Vec::with_capacity(p.sample.len() / 4 + 1);
    // stack → (index in out, sign seen so far: 1 positive, -1 negative)
    let mut index_of: FxHashMap<&[u32], (u32, i8)> = FxHashMap::default();
    let mut mixed: Vec<(&[u32], i64)> = Vec::new();
    for (ci, s) in p.sample.iter().enumerate() {
        if ci.is_multiple_of(1024) {
            gocost_pprof::cancel::checkpoint();
        }
        let w = s.value[index];
        if w == 0 {
            continue;
        }
        let sign = if w > 0 { 1 } else { -1 };
        match index_of.entry(&s.location) {
            Entry::Occupied(mut e) => {
                let (i, sg) = *e.get();
                if sg == sign {
                    out[i as usize].1 += w;
                } else {
                    mixed.push((&s.location, w));
                    e.get_mut().1 = 0;
                }
            }
            Entry::Vacant(e) => {
                e.insert((out.len() as u32, sign));
                out.push((&s.location, w));
            }
        }
    }
    if mixed.is_empty() {
        return out;
    }
    // Rare (diff profiles): keep every sample of a mixed-sign stack separate.
    let mixed_stacks: rustc_hash::FxHashSet<&[u32]> = index_of
        .iter()
        .filter(|(_, v)| v.1 == 0)
        .map(|(k, _)| *k)
        .collect();
    let mut res: Vec<(&[u32], i64)> = out
        .into_iter()
        .filter(|(st, _)| !mixed_stacks.contains(st))
        .collect();
    for (ci, s) in p.sample.iter().enumerate() {
        if ci.is_multiple_of(1024) {
            gocost_pprof::cancel::checkpoint();
        }
        let w = s.value[index];
        if w != 0 && mixed_stacks.contains(s.location.as_slice()) {
            res.push((&s.location, w));
        }
    }
    res
}

/// A call edge: its weight, whether every call through it is inlined, and whether it
/// stands for a path through nodes that were not kept (pprof's residual edges, dotted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edge {
    pub weight: i64,
    pub inline: bool,
    pub residual: bool,
}

/// A built graph: values per node and the inline state of incoming edges.
pub struct Graph {
    pub flat: Vec<i64>,
    pub cum: Vec<i64>,
    /// Nodes present in the graph (non-zero flat or cum, and kept).
    pub nodes: Vec<u32>,
    /// (src, dst) → the edge.
    pub edges: FxHashMap<(u32, u32), Edge>,
    /// The node mask the graph was built with.
    pub kept: Option<Vec<bool>>,
}

impl Graph {
    /// pprof's `newGraph`: `kept` restricts the nodes (others become residual gaps).
    pub fn build(p: &Profile, nodes: &Nodes, index: usize, kept: Option<&[bool]>) -> Graph {
        Self::build_with(p, nodes, index, kept, true)
    }

    /// [`Graph::build`], optionally skipping edges (only the final graph of a report needs
    /// them).
    pub fn build_with(
        p: &Profile,
        nodes: &Nodes,
        index: usize,
        kept: Option<&[bool]>,
        with_edges: bool,
    ) -> Graph {
        let n = nodes.infos.len();
        let mut flat = vec![0i64; n];
        let mut cum = vec![0i64; n];
        // (src, dst) → (edge, last sample that added to it)
        let mut wedges: FxHashMap<(u32, u32), (Edge, u32)> = FxHashMap::default();
        let mut seen = vec![u32::MAX; n];
        for (si, (locs, w)) in stacks(p, index).into_iter().enumerate() {
            let stamp = si as u32;
            let mut parent: Option<u32> = None;
            let mut residual = false;
            for &l in locs.iter().rev() {
                let ln = &nodes.loc_nodes[l as usize];
                for ni in (0..ln.len()).rev() {
                    let node = ln[ni];
                    if kept.is_some_and(|k| !k[node as usize]) {
                        residual = true;
                        continue;
                    }
                    if seen[node as usize] != stamp {
                        seen[node as usize] = stamp;
                        cum[node as usize] += w;
                    }
                    if with_edges
                        && let Some(par) = parent
                        && par != node
                    {
                        let inline = ni != ln.len() - 1;
                        let (e, last) = wedges.entry((par, node)).or_insert((
                            Edge {
                                weight: 0,
                                inline,
                                residual,
                            },
                            u32::MAX,
                        ));
                        if *last != stamp {
                            *last = stamp;
                            e.weight += w;
                            e.inline &= inline;
                            e.residual |= residual;
                        }
                    }
                    parent = Some(node);
                    residual = false;
                }
            }
            if let Some(par) = parent
                && !residual
            {
                flat[par as usize] += w;
            }
        }
        let present = (0..n as u32)
            .filter(|&i| {
                kept.is_none_or(|k| k[i as usize])
                    && (flat[i as usize] != 0 || cum[i as usize] != 0)
            })
            .collect();
        let edges = wedges.into_iter().map(|(k, (e, _))| (k, e)).collect();
        Graph {
            flat,
            cum,
            nodes: present,
            edges,
            kept: kept.map(<[bool]>::to_vec),
        }
    }

    /// pprof's `DiscardLowFrequencyNodes`: the mask of nodes whose |cum| reaches `cutoff`
    /// and how many fall below it; `None` when the cutoff drops nothing.
    pub fn above_cutoff(&self, nodes: &Nodes, cutoff: i64) -> Option<(Vec<bool>, usize)> {
        if cutoff <= 0 {
            return None;
        }
        let mut kept = vec![false; nodes.infos.len()];
        let mut count = 0;
        for &i in &self.nodes {
            if self.cum[i as usize].wrapping_abs() >= cutoff {
                kept[i as usize] = true;
                count += 1;
            }
        }
        (count != self.nodes.len()).then(|| (kept, self.nodes.len() - count))
    }

    /// Σ flat over the graph's nodes.
    pub fn total_flat(&self) -> i64 {
        self.nodes.iter().map(|&i| self.flat[i as usize]).sum()
    }

    /// pprof's `Nodes.Sort` with `FlatNameOrder` or `CumNameOrder`.
    pub fn sort(&mut self, nodes: &Nodes, cum_sort: bool) {
        if cum_sort {
            let cum = self.cum.clone();
            self.sort_by_score(nodes, &cum);
        } else {
            self.sort_with(nodes, None);
        }
    }

    /// pprof's score orders (`CumNameOrder`, `EntropyOrder`): by |score|, then name, then
    /// |flat|.
    pub fn sort_by_score(&mut self, nodes: &Nodes, score: &[i64]) {
        self.sort_with(nodes, Some(score));
    }

    fn sort_with(&mut self, nodes: &Nodes, score: Option<&[i64]>) {
        let names: FxHashMap<u32, String> = self
            .nodes
            .iter()
            .map(|&i| (i, nodes.infos[i as usize].printable_name()))
            .collect();
        let (flat, cum) = (&self.flat, &self.cum);
        let cmp_name = |a: u32, b: u32| -> Ordering {
            let (ia, ib) = (&nodes.infos[a as usize], &nodes.infos[b as usize]);
            if ia.address != 0 && ib.address != 0 && ia.address != ib.address {
                return ia.address.cmp(&ib.address);
            }
            names[&a].cmp(&names[&b])
        };
        let tie = |a: u32, b: u32| {
            nodes.infos[a as usize]
                .sprint()
                .cmp(&nodes.infos[b as usize].sprint())
        };
        self.nodes.sort_by(|&a, &b| {
            let (fa, fb) = (
                flat[a as usize].wrapping_abs(),
                flat[b as usize].wrapping_abs(),
            );
            match score {
                Some(score) => {
                    let (sa, sb) = (
                        score[a as usize].wrapping_abs(),
                        score[b as usize].wrapping_abs(),
                    );
                    sb.cmp(&sa)
                        .then_with(|| cmp_name(a, b))
                        .then_with(|| fb.cmp(&fa))
                        .then_with(|| tie(a, b))
                }
                None => {
                    let (ca, cb) = (
                        cum[a as usize].wrapping_abs(),
                        cum[b as usize].wrapping_abs(),
                    );
                    fb.cmp(&fa)
                        .then_with(|| cmp_name(a, b))
                        .then_with(|| cb.cmp(&ca))
                        .then_with(|| tie(a, b))
                }
            }
        });
    }

    /// Removes edges lighter than `cutoff` (pprof's `TrimLowFrequencyEdges`); returns how
    /// many it removed.
    pub fn trim_edges(&mut self, cutoff: i64) -> usize {
        let before = self.edges.len();
        if cutoff > 0 {
            self.edges.retain(|_, e| e.weight.wrapping_abs() >= cutoff);
        }
        before - self.edges.len()
    }

    /// pprof's inline label for a node: `(inline)` if all incoming edges are inline,
    /// `(partial-inline)` if some are.
    pub fn inline_labels(&self) -> FxHashMap<u32, &'static str> {
        let mut state: FxHashMap<u32, (bool, bool)> = FxHashMap::default();
        for (&(_, dst), edge) in &self.edges {
            let e = state.entry(dst).or_default();
            if edge.inline {
                e.0 = true;
            } else {
                e.1 = true;
            }
        }
        state
            .into_iter()
            .filter_map(|(k, (inl, noinl))| match (inl, noinl) {
                (true, true) => Some((k, "(partial-inline)")),
                (true, false) => Some((k, "(inline)")),
                _ => None,
            })
            .collect()
    }
}

/// pprof's `newTrimmedGraph` for text reports: returns the graph, the node count before
/// `nodecount` truncation and the number of nodes dropped by `nodefraction`.
pub fn trimmed_graph(
    p: &Profile,
    nodes: &Nodes,
    index: usize,
    nodefraction: f64,
    edgefraction: f64,
    nodecount: usize,
    cum_sort: bool,
) -> (Graph, usize, usize) {
    let mut g = Graph::build_with(p, nodes, index, None, false);
    let mut has_edges = false;
    let total = g.total_flat();
    let node_cutoff = ((total as f64 * nodefraction) as i64).wrapping_abs();
    let edge_cutoff = ((total as f64 * edgefraction) as i64).wrapping_abs();
    let mut dropped = 0;
    if let Some((kept, d)) = g.above_cutoff(nodes, node_cutoff) {
        dropped = d;
        let last = nodecount == 0 || g.nodes.len() - d <= nodecount;
        g = Graph::build_with(p, nodes, index, Some(&kept), last);
        has_edges = last;
    }
    let orig_count = g.nodes.len();
    g.sort(nodes, cum_sort);
    if nodecount > 0 && g.nodes.len() > nodecount {
        let mut kept = vec![false; nodes.infos.len()];
        for &i in &g.nodes[..nodecount] {
            kept[i as usize] = true;
        }
        g = Graph::build(p, nodes, index, Some(&kept));
        has_edges = true;
        g.sort(nodes, cum_sort);
    }
    if !has_edges {
        // Same nodes and values as `g`; this pass also collects the edges.
        let order = std::mem::take(&mut g.nodes);
        let kept = g.kept.take();
        g = Graph::build(p, nodes, index, kept.as_deref());
        g.nodes = order;
    }
    g.trim_edges(edge_cutoff);
    (g, orig_count, dropped)
}
