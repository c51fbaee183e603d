//! Shared by the blocking-profile tests.
#![allow(dead_code)]

use std::collections::BTreeMap;

use gocost_trace::{BlockingKind, blocking_profile};

/// Per stack (PCs): frames (func, file, line), count, delay.
pub type Records = BTreeMap<Vec<u64>, (Vec<(String, String, u64)>, i64, i64)>;

/// Go's profile as records.
pub fn go_records(pb: &[u8]) -> Records {
    let p = gocost_pprof::decode(pb).expect("decode Go's profile");
    let mut out = Records::new();
    for s in &p.sample {
        let mut pcs = Vec::new();
        let mut frames = Vec::new();
        for &l in &s.location {
            let loc = &p.location[l as usize];
            pcs.push(loc.address);
            let line = &loc.line[0];
            let f = &p.function[line.function as usize];
            frames.push((f.name.to_string(), f.filename.to_string(), line.line as u64));
        }
        let e = out.entry(pcs).or_insert((frames, 0, 0));
        e.1 += s.value[0];
        e.2 += s.value[1];
    }
    out
}

pub fn our_records(trace: &[u8], kind: BlockingKind) -> Records {
    let events = gocost_trace::parse(trace).expect("parse");
    let mut out = Records::new();
    for r in blocking_profile(&events, kind) {
        let pcs = r.stack.iter().map(|f| f.pc).collect();
        let frames = r
            .stack
            .iter()
            .map(|f| (f.func.clone(), f.file.clone(), f.line))
            .collect();
        assert!(
            out.insert(pcs, (frames, r.count as i64, r.delay_ns))
                .is_none(),
            "two records for one stack"
        );
    }
    out
}

/// Fails naming every stack whose records differ.
pub fn assert_same(what: &str, want: &Records, got: &Records) {
    let mut diffs = Vec::new();
    for (pcs, w) in want {
        if got.get(pcs) != Some(w) {
            diffs.push(format!(
                "stack {pcs:x?}: go {:?} ours {:?}",
                (w.1, w.2),
                got.get(pcs).map(|g| (g.1, g.2))
            ));
        }
    }
    for (pcs, g) in got {
        if !want.contains_key(pcs) {
            diffs.push(format!("stack {pcs:x?}: only ours {:?}", (g.1, g.2)));
        }
    }
    assert!(diffs.is_empty(), "{what}:\n{}", diffs.join("\n"));
}
