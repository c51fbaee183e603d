//! Stacks for flame graphs (pprof's `report/stacks.go`): one stack per sample, root first,
//! inlined frames marked.

use crate::Report;
use crate::graph::Nodes;

/// One frame of a flame-graph stack.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StackFrame {
    pub name: String,
    /// The frame was inlined into its caller.
    pub inline: bool,
}

/// Every sample with a non-zero value as a root→leaf stack of frames and its value.
pub fn flame_stacks(rpt: &Report) -> Vec<(Vec<StackFrame>, i64)> {
    let mut out = Vec::with_capacity(rpt.prof.sample.len());
    for_each_flame_stack(rpt, |stack, v| {
        let stack = stack
            .iter()
            .map(|&(name, inline)| StackFrame {
                name: name.to_string(),
                inline,
            })
            .collect();
        out.push((stack, v));
    });
    out
}

/// [`flame_stacks`] one at a time, without holding them: `f` gets each stack as (name,
/// inlined) pairs, root first, and its value.
pub fn for_each_flame_stack(rpt: &Report, mut f: impl FnMut(&[(&str, bool)], i64)) {
    let p = &rpt.prof;
    let nodes = Nodes::new(p);
    let names: Vec<String> = nodes.infos.iter().map(|i| i.printable_name()).collect();
    let mut stack: Vec<(&str, bool)> = Vec::new();
    for (ci, s) in p.sample.iter().enumerate() {
        if ci.is_multiple_of(1024) {
            gocost_pprof::cancel::checkpoint();
        }
        let v = s.value[rpt.index];
        if v == 0 {
            continue;
        }
        stack.clear();
        for &l in s.location.iter().rev() {
            let ln = &nodes.loc_nodes[l as usize];
            for i in (0..ln.len()).rev() {
                stack.push((names[ln[i] as usize].as_str(), i != ln.len() - 1));
            }
        }
        // Frames, inlined ones counted: a query's budget (`cancel::Budget`) bounds them.
        gocost_pprof::cancel::depth(stack.len());
        f(&stack, v);
    }
}
