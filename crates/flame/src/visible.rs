//! A tree cut to what a graph `width` pixels wide can draw: the UI's flame JSON.
//!
//! A box narrower than a pixel cannot be seen, hovered or clicked, yet a real service's tree
//! has tens of thousands of them. [`visible_rows`] keeps a node when it is at least one pixel
//! wide and folds each parent's narrower children into one *other* row that keeps their
//! value, so every kept box is as wide as in the full tree and the widths still add up. A
//! zoomed node (a path from the root) is measured against its own width below it, so the
//! zoomed view is exact at the pixel too; the rest is measured against the root.

use crate::Tree;

/// What a row is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A frame called normally.
    Frame,
    /// A frame inlined into its caller.
    Inline,
    /// The children of the parent row narrower than a pixel, summed (no children of its own).
    Other,
}

/// One row of the cut tree, in depth-first order (children by name, the *other* row last).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Row {
    /// The tree node; `None` for an [`Kind::Other`] row.
    pub node: Option<u32>,
    /// What the row is.
    pub kind: Kind,
    /// The parent's position in the row list (-1 for the root, row 0).
    pub parent: i64,
    /// Σ value through the row.
    pub total: i64,
    /// Σ value ending in the row (an *other* row's is its total: it has no children).
    pub self_value: i64,
}

/// The rows a graph `width` pixels wide draws, and how many tree nodes were left out (folded
/// into *other* rows, with their descendants). `width: None` keeps every node (no *other*
/// rows). `zoom` is a path of nodes from the root (each the previous one's child); its nodes
/// are always kept, and the descendants of its last node are measured against that node's
/// width instead of the root's.
pub fn visible_rows(tree: &Tree, width: Option<u32>, zoom: &[u32]) -> (Vec<Row>, usize) {
    let nodes = &tree.nodes;
    let zoomed = zoom.last().copied();
    // Subtree sizes (parents precede children), only needed to count what is left out.
    let sizes = width.map(|_| {
        let mut s = vec![1usize; nodes.len()];
        for i in (1..nodes.len()).rev() {
            let p = nodes[i].parent as usize;
            s[p] += s[i];
        }
        s
    });
    let on_path = |n: u32| zoom.contains(&n);
    let mut rows = Vec::with_capacity(nodes.len().min(1 << 16));
    let mut hidden = 0usize;
    enum Item {
        Node {
            node: u32,
            parent: i64,
            reference: i64,
        },
        Other {
            parent: i64,
            total: i64,
        },
    }
    let mut stack = vec![Item::Node {
        node: Tree::ROOT,
        parent: -1,
        reference: tree.abs_total(),
    }];
    while let Some(item) = stack.pop() {
        if rows.len() % 4096 == 4095 {
            gocost_report::cancel::checkpoint();
        }
        let (node, parent, reference) = match item {
            Item::Other { parent, total } => {
                rows.push(Row {
                    node: None,
                    kind: Kind::Other,
                    parent,
                    total,
                    self_value: total,
                });
                continue;
            }
            Item::Node {
                node,
                parent,
                reference,
            } => (node, parent, reference),
        };
        let n = &nodes[node as usize];
        let here = rows.len() as i64;
        rows.push(Row {
            node: Some(node),
            kind: if n.inline { Kind::Inline } else { Kind::Frame },
            parent,
            total: n.total,
            self_value: n.self_value,
        });
        let reference = if Some(node) == zoomed {
            n.abs_total
        } else {
            reference
        };
        let children = tree.sorted_children(node);
        let (mut other, mut dropped) = (0i64, false);
        let mut kept = Vec::with_capacity(children.len());
        for c in children {
            let cn = &nodes[c as usize];
            // At least one pixel: abs_total / reference × width ≥ 1 (in i128: no overflow).
            let wide = match width {
                None => true,
                Some(w) => {
                    reference <= 0
                        || i128::from(cn.abs_total) * i128::from(w) >= i128::from(reference)
                }
            };
            if wide || on_path(c) {
                kept.push(c);
            } else {
                other = other.wrapping_add(cn.total);
                dropped = true;
                hidden += sizes.as_ref().map_or(1, |s| s[c as usize]);
            }
        }
        if dropped {
            stack.push(Item::Other {
                parent: here,
                total: other,
            });
        }
        for &c in kept.iter().rev() {
            stack.push(Item::Node {
                node: c,
                parent: here,
                reference,
            });
        }
    }
    (rows, hidden)
}

/// The node at a path of frame labels (as [`Tree::label`] gives them) from the root, each
/// the previous one's child; `None` when the tree has no such path.
pub fn find_path(tree: &Tree, labels: &[String]) -> Option<Vec<u32>> {
    let mut cur = Tree::ROOT;
    let mut path = Vec::with_capacity(labels.len());
    for l in labels {
        let (name, inline) = match l.strip_suffix(" (inline)") {
            Some(n) => (n, true),
            None => (l.as_str(), false),
        };
        cur = *tree.nodes[cur as usize].children.iter().find(|&&c| {
            let n = &tree.nodes[c as usize];
            n.inline == inline && tree.names[n.name as usize] == name
        })?;
        path.push(cur);
    }
    Some(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> Tree {
        let mut t = Tree::new();
        t.add_frames([("main", false), ("big", false)], 900);
        t.add_frames([("main", false), ("small", false), ("leaf", false)], 4);
        t.add_frames([("main", false), ("tiny", false)], 3);
        t.add_frames([("main", false), ("big", false), ("a", true)], 93);
        t
    }

    #[test]
    fn everything_without_a_width() {
        let t = tree();
        let (rows, hidden) = visible_rows(&t, None, &[]);
        assert_eq!(hidden, 0);
        assert_eq!(rows.len(), t.nodes.len());
        assert!(rows.iter().all(|r| r.kind != Kind::Other));
        // Depth first, children by name: root, main, big, a, small, leaf, tiny.
        let names: Vec<&str> = rows.iter().map(|r| t.name(r.node.unwrap())).collect();
        assert_eq!(names, ["", "main", "big", "a", "small", "leaf", "tiny"]);
        assert_eq!(rows[3].kind, Kind::Inline);
        assert_eq!(rows[5].parent, 4);
    }

    #[test]
    fn narrow_children_fold_into_one_other_row_that_keeps_their_value() {
        let t = tree();
        // 1000 in all over 100 px: a pixel is 10. small (4) and tiny (3) go, with leaf.
        let (rows, hidden) = visible_rows(&t, Some(100), &[]);
        assert_eq!(hidden, 3);
        let last = rows.last().unwrap();
        assert_eq!(
            (last.kind, last.node, last.total, last.self_value),
            (Kind::Other, None, 7, 7)
        );
        assert_eq!(
            rows[last.parent as usize].node.map(|n| t.name(n)),
            Some("main")
        );
        // The kept rows' widths add up as in the full tree.
        let main_children: i64 = rows.iter().filter(|r| r.parent == 1).map(|r| r.total).sum();
        assert_eq!(main_children, 1000);
        // Exactly one pixel is kept.
        let (rows, _) = visible_rows(&t, Some(250), &[]);
        assert!(
            rows.iter()
                .any(|r| r.node.is_some_and(|n| t.name(n) == "small"))
        );
        assert!(
            !rows
                .iter()
                .any(|r| r.node.is_some_and(|n| t.name(n) == "tiny"))
        );
    }

    #[test]
    fn a_zoomed_node_is_measured_against_its_own_width() {
        let t = tree();
        let labels = ["main".to_string(), "small".to_string()];
        let path = find_path(&t, &labels).unwrap();
        let (rows, hidden) = visible_rows(&t, Some(100), &path);
        // small is on the path (kept although narrow); leaf fills it (4 of 4).
        assert!(
            rows.iter()
                .any(|r| r.node.is_some_and(|n| t.name(n) == "leaf"))
        );
        assert_eq!(hidden, 1); // tiny
        assert!(find_path(&t, &["main".into(), "nope".into()]).is_none());
        let inl = find_path(&t, &["main".into(), "big".into(), "a (inline)".into()]).unwrap();
        assert_eq!(t.name(inl[2]), "a");
    }
}
