//! # gocost-flame
//!
//! Flame graphs from weighted stacks: a prefix [`Tree`] and three writers — a standalone,
//! interactive, deterministic SVG ([`write_svg`]), Brendan Gregg's folded stacks
//! ([`write_folded`]) and speedscope's JSON file format ([`write_speedscope`]).
//!
//! **Owns:** merging stacks into a tree (totals, self values, inlined frames as their own
//! boxes), laying the tree out and drawing it, and the exact bytes of the three formats —
//! the same tree always gives the same bytes, whatever order its stacks were added in.
//!
//! **Does not own:** pprof semantics (which frames a sample has, sample types, unit
//! formatting — the caller passes a value formatter; [`tree_from_report`] is the one bridge,
//! taking the stacks `gocost-report` computes), files, the network, threads or async. The
//! only I/O is writing to the [`std::io::Write`] the caller gives.
//!
//! Values are signed so that diff profiles work: a box's *width* is the sum of `|value|` of
//! the stacks through it ([`Node::abs_total`]), its *value* the signed sum ([`Node::total`]).
//!
//! ```
//! use gocost_flame::{Frame, Options, Tree};
//!
//! let f = |n: &str| Frame { name: n.to_string(), inline: false };
//! let mut t = Tree::new();
//! t.add(&[f("main.main"), f("main.work")], 30);
//! t.add(&[f("main.main"), f("main.idle")], 10);
//! assert_eq!(t.total(), 40);
//! assert_eq!(t.node_count(), 3);
//!
//! let mut out = Vec::new();
//! gocost_flame::write_folded(&t, &mut out).unwrap();
//! assert_eq!(String::from_utf8(out).unwrap(), "main.main;main.idle 10\nmain.main;main.work 30\n");
//!
//! let ms = |v: i64| format!("{v}ms");
//! let opts = Options { title: "demo — cpu".into(), format_value: &ms, ..Options::default() };
//! let mut svg = Vec::new();
//! gocost_flame::write_svg(&t, &opts, &mut svg).unwrap();
//! assert!(String::from_utf8(svg).unwrap().contains("<title>main.work (30ms, 75.00%)</title>"));
//! ```

#![warn(missing_docs)]

mod svg;
mod visible;

use std::io::{self, Write};

use rustc_hash::FxHashMap;

pub use svg::{Options, esc, write_svg};
pub use visible::{Kind, Row, find_path, visible_rows};

/// One frame of a stack: a box label.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Frame {
    /// The function name as it should be shown, e.g. `main.(*T).M` or `main.F[...]`.
    pub name: String,
    /// The frame was inlined into its caller (a different box from the same function called
    /// normally, as in pprof's flame graph).
    pub inline: bool,
}

/// A tree node: one box. Node [`Tree::ROOT`] (index 0) is the synthetic root.
#[derive(Debug, Clone)]
pub struct Node {
    /// Index into [`Tree::names`] (0, the empty string, for the root).
    pub name: u32,
    /// The frame was inlined into its caller.
    pub inline: bool,
    /// Index of the parent node (the root is its own parent).
    pub parent: u32,
    /// Distance from the root (the root is 0).
    pub depth: u32,
    /// Σ value of the stacks through this node (signed, wrapping like Go's `int64`).
    pub total: i64,
    /// Σ |value| of the stacks through this node (saturating): the box width.
    pub abs_total: i64,
    /// Σ value of the stacks ending here.
    pub self_value: i64,
    /// Child indices, in insertion order (see [`Tree::sorted_children`]).
    pub children: Vec<u32>,
}

/// A prefix tree of stacks. Stacks are merged while their frames are equal (same name and
/// same `inline` flag); recursion is not folded (`a;a;a` is three nested boxes).
#[derive(Debug, Clone)]
pub struct Tree {
    /// Interned function names; `names[0]` is the empty string (the root's).
    pub names: Vec<String>,
    /// All nodes; `nodes[0]` is the root, and a parent always precedes its children.
    pub nodes: Vec<Node>,
    name_ids: FxHashMap<String, u32>,
    child_index: FxHashMap<(u32, u32, bool), u32>,
    negative: bool,
}

impl Default for Tree {
    fn default() -> Self {
        Self::new()
    }
}

impl Tree {
    /// Index of the synthetic root node.
    pub const ROOT: u32 = 0;

    /// An empty tree: only the root, total 0.
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
            negative: false,
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

    /// Adds one stack (root first) with its value: every node on the path gets `value` added
    /// to its total (and `|value|` to its width), the last one also to its self value. An
    /// empty stack counts in the root only. Zero values are ignored.
    pub fn add(&mut self, stack: &[Frame], value: i64) {
        self.add_frames(stack.iter().map(|f| (f.name.as_str(), f.inline)), value);
    }

    /// [`add`](Tree::add) with the frames as (name, inlined) pairs, root first.
    pub fn add_frames<'a>(&mut self, stack: impl IntoIterator<Item = (&'a str, bool)>, value: i64) {
        if value == 0 {
            return;
        }
        self.negative |= value < 0;
        let abs = value.saturating_abs();
        let mut cur = Self::ROOT;
        let root = &mut self.nodes[0];
        root.total = root.total.wrapping_add(value);
        root.abs_total = root.abs_total.saturating_add(abs);
        for (f_name, f_inline) in stack {
            let name = self.intern(f_name);
            let key = (cur, name, f_inline);
            let next = match self.child_index.get(&key) {
                Some(&n) => n,
                None => {
                    let n = self.nodes.len() as u32;
                    // A query's budget (`cancel::Budget`) bounds the tree.
                    gocost_report::cancel::nodes(self.nodes.len() + 1);
                    let depth = self.nodes[cur as usize].depth + 1;
                    self.nodes.push(Node {
                        name,
                        inline: f_inline,
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
            node.total = node.total.wrapping_add(value);
            node.abs_total = node.abs_total.saturating_add(abs);
            cur = next;
        }
        let last = &mut self.nodes[cur as usize];
        last.self_value = last.self_value.wrapping_add(value);
    }

    /// Σ value over all stacks (signed).
    pub fn total(&self) -> i64 {
        self.nodes[0].total
    }

    /// Σ |value| over all stacks: the width of the whole graph.
    pub fn abs_total(&self) -> i64 {
        self.nodes[0].abs_total
    }

    /// Number of nodes, the synthetic root excluded.
    pub fn node_count(&self) -> usize {
        self.nodes.len() - 1
    }

    /// The node at `index` (panics if out of range).
    pub fn node(&self, index: u32) -> &Node {
        &self.nodes[index as usize]
    }

    /// The function name of a node (empty for the root).
    pub fn name(&self, node: u32) -> &str {
        &self.names[self.nodes[node as usize].name as usize]
    }

    /// A node's label: its name, with ` (inline)` appended for inlined frames (as pprof
    /// shows them).
    pub fn label(&self, node: u32) -> String {
        let n = &self.nodes[node as usize];
        if n.inline {
            format!("{} (inline)", self.name(node))
        } else {
            self.name(node).to_string()
        }
    }

    /// Children of a node ordered by name (byte order; a non-inlined frame before the
    /// inlined one of the same name), so that output does not depend on insertion order.
    pub fn sorted_children(&self, node: u32) -> Vec<u32> {
        let mut c = self.nodes[node as usize].children.clone();
        c.sort_unstable_by(|&a, &b| {
            self.name(a).cmp(self.name(b)).then(
                self.nodes[a as usize]
                    .inline
                    .cmp(&self.nodes[b as usize].inline),
            )
        });
        c
    }

    /// Whether any stack was added with a negative value (a diff profile).
    pub fn has_negative(&self) -> bool {
        self.negative
    }

    /// The path of a node from the root (exclusive) to itself (inclusive).
    pub fn path(&self, mut node: u32) -> Vec<u32> {
        let mut p = Vec::with_capacity(self.nodes[node as usize].depth as usize);
        while node != Self::ROOT {
            p.push(node);
            node = self.nodes[node as usize].parent;
        }
        p.reverse();
        p
    }

    /// Visits every node except the root depth-first, children in [`Tree::sorted_children`]
    /// order (the order in which the SVG draws them), parents before children.
    pub fn walk(&self, mut visit: impl FnMut(u32, &Node)) {
        let mut stack: Vec<u32> = self.sorted_children(Self::ROOT);
        stack.reverse();
        while let Some(node) = stack.pop() {
            visit(node, &self.nodes[node as usize]);
            let kids = self.sorted_children(node);
            stack.extend(kids.into_iter().rev());
        }
    }
}

/// Two flame trees over the union of their stacks, for a diff flame graph: the nodes of
/// `head` (same indices) followed by nodes only `base` has, each with its value in both.
#[derive(Debug, Clone)]
pub struct DiffTree {
    /// The union tree; its values ([`Node::total`], [`Node::self_value`]) are the head's
    /// (0 for nodes only the base has).
    pub tree: Tree,
    /// Per node of [`DiffTree::tree`]: the base's total.
    pub base_total: Vec<i64>,
    /// Per node of [`DiffTree::tree`]: the base's self value.
    pub base_self: Vec<i64>,
}

impl DiffTree {
    /// Matches `base`'s nodes to `head`'s by path (frame name and inline flag from the root)
    /// and adds the base-only paths as nodes with zero head values.
    pub fn new(head: &Tree, base: &Tree) -> DiffTree {
        let mut tree = head.clone();
        let mut base_total = vec![0i64; tree.nodes.len()];
        let mut base_self = vec![0i64; tree.nodes.len()];
        // Base node index → union node index; parents precede children in `base.nodes`.
        let mut map = vec![Tree::ROOT; base.nodes.len()];
        for (i, n) in base.nodes.iter().enumerate() {
            let u = if i == 0 {
                Tree::ROOT
            } else {
                let parent = map[n.parent as usize];
                let name = tree.intern(&base.names[n.name as usize]);
                let key = (parent, name, n.inline);
                match tree.child_index.get(&key) {
                    Some(&u) => u,
                    None => {
                        let u = tree.nodes.len() as u32;
                        gocost_report::cancel::nodes(tree.nodes.len() + 1);
                        let depth = tree.nodes[parent as usize].depth + 1;
                        tree.nodes.push(Node {
                            name,
                            inline: n.inline,
                            parent,
                            depth,
                            total: 0,
                            abs_total: 0,
                            self_value: 0,
                            children: Vec::new(),
                        });
                        tree.nodes[parent as usize].children.push(u);
                        tree.child_index.insert(key, u);
                        base_total.push(0);
                        base_self.push(0);
                        u
                    }
                }
            };
            map[i] = u;
            base_total[u as usize] = base_total[u as usize].wrapping_add(n.total);
            base_self[u as usize] = base_self[u as usize].wrapping_add(n.self_value);
        }
        DiffTree {
            tree,
            base_total,
            base_self,
        }
    }
}

/// The flame graph of a report: every sample's stack (pprof's flame-graph frames: function
/// names, inlined frames marked) weighted by the report's sample type.
pub fn tree_from_report(rpt: &gocost_report::Report) -> Tree {
    // Stack by stack, straight into the tree: the stacks are never all held at once.
    let mut tree = Tree::new();
    gocost_report::for_each_flame_stack(rpt, |stack, v| tree.add_frames(stack.iter().copied(), v));
    tree
}

/// Folded-stack frame text (see [`write_folded`]).
fn folded_frame(t: &Tree, node: u32) -> String {
    t.label(node)
        .chars()
        .map(|c| match c {
            ';' => ':',
            '\n' | '\r' => ' ',
            c => c,
        })
        .collect()
}

/// Writes Brendan Gregg's collapsed ("folded") format, as read by `flamegraph.pl`, inferno
/// and speedscope: one `root;…;leaf value\n` line per distinct stack with a non-zero self
/// value, sorted lexicographically (byte order).
///
/// - Inlined frames get a ` (inline)` suffix, like pprof's labels.
/// - `;` separates frames, so a `;` inside a name is written as `:`; a line break inside a
///   name becomes a space. Splitting a line at its last space and the stack at `;` then
///   always gives back the frames.
/// - Values are signed (diff profiles keep their sign).
/// - Lines whose text collides after the replacements above are summed into one.
pub fn write_folded(tree: &Tree, w: &mut dyn Write) -> io::Result<()> {
    // Depth first with one path buffer: entering a node appends its frame, leaving it cuts
    // the buffer back, so the work is linear in the tree plus the output (a stack a million
    // frames deep is not copied at every level).
    let mut lines: Vec<(String, i64)> = Vec::new();
    let mut path = String::new();
    // (node, length of `path` before the node's frame, entered yet)
    let mut stack: Vec<(u32, usize, bool)> = vec![(Tree::ROOT, 0, false)];
    let mut visited = 0usize;
    while let Some((node, before, entered)) = stack.pop() {
        if entered {
            path.truncate(before);
            continue;
        }
        visited += 1;
        if visited.is_multiple_of(4096) {
            gocost_report::cancel::checkpoint();
        }
        if node != Tree::ROOT {
            if !path.is_empty() {
                path.push(';');
            }
            path.push_str(&folded_frame(tree, node));
        }
        stack.push((node, before, true));
        let n = &tree.nodes[node as usize];
        if node != Tree::ROOT && n.self_value != 0 {
            lines.push((path.clone(), n.self_value));
        }
        let here = path.len();
        for &c in n.children.iter().rev() {
            stack.push((c, here, false));
        }
    }
    lines.sort_unstable();
    let mut out = String::new();
    let mut i = 0;
    while i < lines.len() {
        let mut v = lines[i].1;
        let mut j = i + 1;
        while j < lines.len() && lines[j].0 == lines[i].0 {
            v = v.wrapping_add(lines[j].1);
            j += 1;
        }
        if v != 0 {
            out.push_str(&lines[i].0);
            out.push(' ');
            out.push_str(&v.to_string());
            out.push('\n');
        }
        i = j;
    }
    w.write_all(out.as_bytes())
}

/// The unit of a speedscope profile (the schema's `ValueUnit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpeedscopeUnit {
    /// `"nanoseconds"`: CPU, wall and delay profiles as Go records them.
    Nanoseconds,
    /// `"microseconds"`.
    Microseconds,
    /// `"milliseconds"`.
    Milliseconds,
    /// `"seconds"`.
    Seconds,
    /// `"bytes"`: heap profiles' space sample types.
    Bytes,
    /// `"none"`: counts (objects, goroutines, contentions, samples).
    None,
}

impl SpeedscopeUnit {
    /// The unit's name in the file format.
    pub fn as_str(self) -> &'static str {
        match self {
            SpeedscopeUnit::Nanoseconds => "nanoseconds",
            SpeedscopeUnit::Microseconds => "microseconds",
            SpeedscopeUnit::Milliseconds => "milliseconds",
            SpeedscopeUnit::Seconds => "seconds",
            SpeedscopeUnit::Bytes => "bytes",
            SpeedscopeUnit::None => "none",
        }
    }
}

/// Writes speedscope's file format (<https://www.speedscope.app/file-format-schema.json>)
/// with one `"sampled"` profile named `name`: one sample per distinct stack with a non-zero
/// self value (frame indices root → leaf), weighted by that value, in depth-first order with
/// children sorted by name. `shared.frames` holds one entry per distinct label (inlined
/// frames are labelled `name (inline)`), in order of first use.
///
/// speedscope has no negative weights, so a diff's values are written as their absolute
/// value; `endValue` is the sum of the weights (the tree's total when nothing is negative).
pub fn write_speedscope(
    tree: &Tree,
    name: &str,
    unit: SpeedscopeUnit,
    w: &mut dyn Write,
) -> io::Result<()> {
    let mut frame_of: FxHashMap<(u32, bool), usize> = FxHashMap::default();
    let mut frames: Vec<serde_json::Value> = Vec::new();
    let mut samples: Vec<Vec<usize>> = Vec::new();
    let mut weights: Vec<i64> = Vec::new();
    let mut path: Vec<usize> = Vec::new();
    tree.walk(|node, n| {
        path.truncate(n.depth as usize - 1);
        let idx = *frame_of.entry((n.name, n.inline)).or_insert_with(|| {
            frames.push(serde_json::json!({ "name": tree.label(node) }));
            frames.len() - 1
        });
        path.push(idx);
        if n.self_value != 0 {
            samples.push(path.clone());
            weights.push(n.self_value.saturating_abs());
        }
    });
    let end = weights.iter().fold(0i64, |a, &b| a.saturating_add(b));
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
