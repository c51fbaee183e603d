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

/// Go 1.27.3's `go tool trace -http=127.0.0.1:0 TRACE` (its web UI), killed when dropped, and
/// the base URL it listens on; `None` (skipped) without the toolchain.
pub fn start_trace_ui(trace: &std::path::Path) -> Option<(gocost_testkit::procs::Proc, String)> {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let default =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv-go/1.27.3/bin/go");
    let go =
        gocost_testkit::external_tool("GOCOST_GO_1_27", &default.to_string_lossy(), "version")?;
    let out = Command::new(&go)
        .args(["tool", "-n", "trace"])
        .output()
        .expect("go tool -n trace");
    let tool = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let mut child = Command::new(tool)
        .arg("-http=127.0.0.1:0")
        .arg(trace)
        .env("BROWSER", "true")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("go tool trace -http");
    let stderr = child.stderr.take().expect("stderr");
    let proc = gocost_testkit::procs::Proc(child);
    for line in BufReader::new(stderr).lines() {
        let line = line.expect("stderr line");
        if let Some(i) = line.find("http://") {
            return Some((proc, line[i..].trim().to_string()));
        }
    }
    panic!("go tool trace did not say where it listens");
}
