//! # gocost-flame
//!
//! Flame graphs from weighted stacks: a prefix [`Tree`] and three writers — a standalone,
//! interactive, deterministic SVG ([`write_svg`]), Brendan Gregg's folded stacks
//! ([`write_folded`]) and speedscope's JSON file format ([`write_speedscope`]).
//!
//! The tree takes any stacks (root first); [`tree_from_report`] builds it from a pprof
//! report. It does no I/O besides writing to the `Write` it is given.
//!
//! ```
//! use gocost_flame::{Frame, Tree};
//!
//! let f = |n: &str| Frame { name: n.to_string(), inline: false };
//! let mut t = Tree::new();
//! t.add(&[f("main.main"), f("main.work")], 30);
//! t.add(&[f("main.main"), f("main.idle")], 10);
//! let mut out = Vec::new();
//! gocost_flame::write_folded(&t, &mut out).unwrap();
//! assert_eq!(String::from_utf8(out).unwrap(), "main.main;main.idle 10\nmain.main;main.work 30\n");
//! ```

mod svg;

use std::io::{self, Write};

use rustc_hash::FxHashMap;

pub use svg::{Options, write_svg};

/// One frame of a stack: a box label.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Frame {
    pub name: String,
    /// The frame was inlined into its caller (a different box from the same function called
    /// normally, as in pprof's flame graph).
    pub inline: bool,
}

/// A tree node. Node 0 is the synthetic root.
#[derive(Debug, Clone)]
pub struct Node {
    /// Index into [`Tree::names`].
    pub name: u32,
    pub inline: bool,
    pub parent: u32,
    pub depth: u32,
    /// Σ value of stacks through this node (signed).
    pub total: i64,
    /// Σ |value| of stacks through this node: the box width.
    pub abs_total: i64,
    /// Σ value of stacks ending here.
    pub self_value: i64,
    pub children: Vec<u32>,
}

/// A prefix tree of stacks.
#[derive(Debug, Clone)]
pub struct Tree {
    pub names: Vec<String>,
    pub nodes: Vec<Node>,
    name_ids: FxHashMap<String, u32>,
    child_index: FxHashMap<(u32, u32, bool), u32>,
}

impl Default for Tree {
    fn default() -> Self {
        Self::new()
    }
}

impl Tree {
    pub fn new() -> Self {
        Tree {
            names: vec![String::new()],
            nodes: vec![Node {
                name: 0,
                inline: false,
                parent: 0,
                depth: 0,
                total: 0,
                abs_total: 0,
                self_value: 0,
                children: Vec::new(),
            }],
            name_ids: FxHashMap::default(),
            child_index: FxHashMap::default(),
        }
    }

    fn intern(&mut self, name: &str) -> u32 {
        if let Some(&i) = self.name_ids.get(name) {
            return i;
        }
        let i = self.names.len() as u32;
        self.names.push(name.to_string());
        self.name_ids.insert(name.to_string(), i);
        i
    }

    /// Adds one stack (root first) with its value. Zero values are ignored.
    pub fn add(&mut self, stack: &[Frame], value: i64) {
        if value == 0 {
            return;
        }
        let abs = value.wrapping_abs();
        let mut cur = 0u32;
        self.nodes[0].total += value;
        self.nodes[0].abs_total += abs;
        for f in stack {
            let name = self.intern(&f.name);
            let key = (cur, name, f.inline);
            let next = match self.child_index.get(&key) {
                Some(&n) => n,
                None => {
                    let n = self.nodes.len() as u32;
                    let depth = self.nodes[cur as usize].depth + 1;
                    self.nodes.push(Node {
                        name,
                        inline: f.inline,
                        parent: cur,
                        depth,
                        total: 0,
                        abs_total: 0,
                        self_value: 0,
                        children: Vec::new(),
                    });
                    self.nodes[cur as usize].children.push(n);
                    self.child_index.insert(key, n);
                    n
                }
            };
            let node = &mut self.nodes[next as usize];
            node.total += value;
            node.abs_total += abs;
            cur = next;
        }
        self.nodes[cur as usize].self_value += value;
    }

    /// Σ value over all stacks.
    pub fn total(&self) -> i64 {
        self.nodes[0].total
    }

    /// Number of nodes, the synthetic root excluded.
    pub fn node_count(&self) -> usize {
        self.nodes.len() - 1
    }

    /// The name of a node.
    pub fn name(&self, node: u32) -> &str {
        &self.names[self.nodes[node as usize].name as usize]
    }

    /// A node's label: its name, with ` (inline)` for inlined frames.
    pub fn label(&self, node: u32) -> String {
        let n = &self.nodes[node as usize];
        if n.inline {
            format!("{} (inline)", self.name(node))
        } else {
            self.name(node).to_string()
        }
    }

    /// Children of a node ordered by name (inline after non-inline), so that output does
    /// not depend on insertion order.
    pub fn sorted_children(&self, node: u32) -> Vec<u32> {
        let mut c = self.nodes[node as usize].children.clone();
        c.sort_by(|&a, &b| {
            self.name(a).cmp(self.name(b)).then(
                self.nodes[a as usize]
                    .inline
                    .cmp(&self.nodes[b as usize].inline),
            )
        });
        c
    }

    /// Whether any stack had a negative value (a diff).
    pub fn has_negative(&self) -> bool {
        self.nodes.iter().any(|n| n.total < 0 || n.self_value < 0)
    }

    /// The path of a node from the root (exclusive) to itself.
    pub fn path(&self, mut node: u32) -> Vec<u32> {
        let mut p = Vec::new();
        while node != 0 {
            p.push(node);
            node = self.nodes[node as usize].parent;
        }
        p.reverse();
        p
    }
}

/// The flame graph of a report: every sample's stack (pprof's flame-graph frames: function
/// names, inlined frames marked) weighted by the report's sample type.
pub fn tree_from_report(rpt: &gocost_report::Report) -> Tree {
    let mut tree = Tree::new();
    for (stack, v) in gocost_report::flame_stacks(rpt) {
        let frames: Vec<Frame> = stack
            .into_iter()
            .map(|f| Frame {
                name: f.name,
                inline: f.inline,
            })
            .collect();
        tree.add(&frames, v);
    }
    tree
}

/// Folded-stack frame text: `;` separates frames, so a `;` inside a name becomes `:`;
/// inlined frames get a ` (inline)` suffix like in pprof.
fn folded_frame(t: &Tree, node: u32) -> String {
    t.label(node).replace(';', ":")
}

/// Brendan Gregg's collapsed format: one `root;…;leaf value` line per distinct stack with a
/// non-zero self value, sorted.
pub fn write_folded(tree: &Tree, w: &mut dyn Write) -> io::Result<()> {
    let mut lines: Vec<(String, i64)> = Vec::new();
    let mut stack: Vec<(u32, String)> = vec![(0, String::new())];
    while let Some((node, prefix)) = stack.pop() {
        let n = &tree.nodes[node as usize];
        if node != 0 && n.self_value != 0 {
            lines.push((prefix.clone(), n.self_value));
        }
        for &c in &n.children {
            let f = folded_frame(tree, c);
            let p = if prefix.is_empty() {
                f
            } else {
                format!("{prefix};{f}")
            };
            stack.push((c, p));
        }
    }
    lines.sort();
    // The same path can arise from an inlined and a non-inlined box only if labels collide;
    // sum equal lines.
    let mut out = String::new();
    let mut i = 0;
    while i < lines.len() {
        let mut v = lines[i].1;
        let mut j = i + 1;
        while j < lines.len() && lines[j].0 == lines[i].0 {
            v += lines[j].1;
            j += 1;
        }
        out.push_str(&lines[i].0);
        out.push(' ');
        out.push_str(&v.to_string());
        out.push('\n');
        i = j;
    }
    w.write_all(out.as_bytes())
}

/// Units speedscope understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpeedscopeUnit {
    Nanoseconds,
    Bytes,
    None,
}

impl SpeedscopeUnit {
    fn as_str(self) -> &'static str {
        match self {
            SpeedscopeUnit::Nanoseconds => "nanoseconds",
            SpeedscopeUnit::Bytes => "bytes",
            SpeedscopeUnit::None => "none",
        }
    }
}

/// speedscope's file format (a "sampled" profile): one sample per distinct stack with a
/// non-zero self value, weighted by it. speedscope has no negative weights, so diff values
/// are written as their absolute value.
pub fn write_speedscope(
    tree: &Tree,
    name: &str,
    unit: SpeedscopeUnit,
    w: &mut dyn Write,
) -> io::Result<()> {
    let mut frame_of: FxHashMap<String, usize> = FxHashMap::default();
    let mut frames: Vec<serde_json::Value> = Vec::new();
    let mut samples: Vec<Vec<usize>> = Vec::new();
    let mut weights: Vec<i64> = Vec::new();
    // Depth-first in sorted order, so output is deterministic.
    let mut stack: Vec<u32> = tree.sorted_children(0).into_iter().rev().collect();
    while let Some(node) = stack.pop() {
        let n = &tree.nodes[node as usize];
        if n.self_value != 0 {
            let mut s = Vec::new();
            for p in tree.path(node) {
                let label = tree.label(p);
                let next = frame_of.len();
                let idx = *frame_of.entry(label.clone()).or_insert_with(|| {
                    frames.push(serde_json::json!({ "name": label }));
                    next
                });
                s.push(idx);
            }
            samples.push(s);
            weights.push(n.self_value.wrapping_abs());
        }
        stack.extend(tree.sorted_children(node).into_iter().rev());
    }
    let end: i64 = weights.iter().sum();
    let doc = serde_json::json!({
        "$schema": "https://www.speedscope.app/file-format-schema.json",
        "shared": { "frames": frames },
        "profiles": [{
            "type": "sampled",
            "name": name,
            "unit": unit.as_str(),
            "startValue": 0,
            "endValue": end,
            "samples": samples,
            "weights": weights,
        }],
        "name": name,
        "activeProfileIndex": 0,
        "exporter": "gocost",
    });
    serde_json::to_writer(&mut *w, &doc).map_err(io::Error::other)?;
    w.write_all(b"\n")
}
