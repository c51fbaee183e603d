//! `cargo run --release -p xtask -- bench-trace [--repeats N] [--fresh]`: gocost-trace's
//! parse of a busy trace against `go tool trace -d=parsed` of the same file. With `--pprof`,
//! `gocost trace pprof --type sched` against `go tool trace -pprof=sched` instead (see
//! `bench_pprof.rs`).
//!
//! The trace is recorded once from `testdata/go/tracebed -busy` (a few MB) into
//! `target/bench-trace/` with the newest Go found (`$GO`, else `.venv-go/1.27.3/bin/go`,
//! else `go`); `--fresh` records it again. Both sides run `repeats` times (default 3) and the
//! best CPU time counts: Go's tool (the binary `go tool -n trace` names, so the `go` wrapper
//! is not timed) printing every event, gocost reading every event, and gocost reading and
//! printing them in the tool's text. The texts must be equal (the oracle on a big trace).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::{Result, arg, output};
use gocost_testkit::repo_root;
use gocost_trace::text::{Dialect, write_event};

/// CPU seconds (user + system) of this process and of its waited-for children, from /proc.
fn cpu_seconds() -> (f64, f64) {
    let Ok(s) = std::fs::read_to_string("/proc/self/stat") else {
        return (0.0, 0.0);
    };
    let rest = s.rsplit_once(')').map_or("", |x| x.1);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (
        (ticks(11) + ticks(12)) / 100.0,
        (ticks(13) + ticks(14)) / 100.0,
    )
}

/// Peak resident memory of this process (VmHWM), in MiB.
fn peak_rss_mib() -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

pub(crate) fn newest_go() -> PathBuf {
    if let Some(g) = std::env::var_os("GO") {
        return g.into();
    }
    let venv = repo_root().join(".venv-go/1.27.3/bin/go");
    if venv.exists() { venv } else { "go".into() }
}

fn go_minor(go: &Path) -> Result<u32> {
    let v = String::from_utf8_lossy(&output(Command::new(go).arg("env").arg("GOVERSION"))?)
        .trim()
        .to_string();
    v.strip_prefix("go1.")
        .and_then(|r| r.split('.').next())
        .and_then(|m| m.parse().ok())
        .ok_or_else(|| format!("cannot tell the Go release from {v:?}"))
}

pub fn run(args: &[String]) -> Result<()> {
    let repeats = arg(args, "--repeats", 3)?.max(1);
    let go = newest_go();
    let minor = go_minor(&go)?;
    if args.iter().any(|a| a == "--pprof") {
        return crate::bench_pprof::run(args, &go, minor);
    }
    let dialect = Dialect::go(minor).ok_or_else(|| format!("Go 1.{minor} has no v2 traces"))?;
    let dir = crate::target_dir().join("bench-trace");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let trace = dir.join(format!("busy-go1.{minor}.trace"));
    if args.iter().any(|a| a == "--fresh") || !trace.exists() {
        eprintln!("recording {} with {}", trace.display(), go.display());
        let st = Command::new(&go)
            .args(["run", "-trimpath", ".", "-busy"])
            .arg(&trace)
            .current_dir(repo_root().join("testdata/go/tracebed"))
            .env("GOTOOLCHAIN", "local")
            .status()
            .map_err(|e| e.to_string())?;
        if !st.success() {
            return Err("tracebed failed".into());
        }
    }
    let bytes = std::fs::read(&trace).map_err(|e| e.to_string())?;
    let tool = String::from_utf8_lossy(&output(Command::new(&go).args(["tool", "-n", "trace"]))?)
        .trim()
        .to_string();

    // Go's tool: best CPU time over the repeats; its text kept for the comparison.
    let mut go_best = (f64::MAX, 0.0);
    let mut go_text = Vec::new();
    for _ in 0..repeats {
        let (_, c0) = cpu_seconds();
        let t0 = Instant::now();
        let out = Command::new(&tool)
            .arg(dialect.flag())
            .arg(&trace)
            .env("TZ", "UTC")
            .stderr(Stdio::null())
            .output()
            .map_err(|e| format!("{tool}: {e}"))?;
        let wall = t0.elapsed().as_secs_f64();
        let (_, c1) = cpu_seconds();
        if !out.status.success() {
            return Err(format!("{tool} {} failed", dialect.flag()));
        }
        if c1 - c0 < go_best.0 {
            go_best = (c1 - c0, wall);
        }
        go_text = out.stdout;
    }

    // gocost: reading every event, and reading + printing them.
    let mut parse_best = (f64::MAX, 0.0);
    let mut text_best = (f64::MAX, 0.0);
    let mut events = 0usize;
    let mut ours = String::new();
    for _ in 0..repeats {
        let (c0, _) = cpu_seconds();
        let t0 = Instant::now();
        let opts = gocost_trace::Options {
            syncs: dialect.syncs(),
            ..Default::default()
        };
        let mut n = 0usize;
        for ev in gocost_trace::Reader::with_options(&bytes, opts).map_err(|e| e.to_string())? {
            let ev = ev.map_err(|e| e.to_string())?;
            n += 1;
            std::hint::black_box(&ev);
        }
        let wall = t0.elapsed().as_secs_f64();
        let (c1, _) = cpu_seconds();
        if c1 - c0 < parse_best.0 {
            parse_best = (c1 - c0, wall);
        }
        events = n;

        let (c0, _) = cpu_seconds();
        let t0 = Instant::now();
        ours.clear();
        for ev in gocost_trace::Reader::with_options(&bytes, opts).map_err(|e| e.to_string())? {
            write_event(&mut ours, &ev.map_err(|e| e.to_string())?, dialect);
            ours.push('\n');
        }
        let wall = t0.elapsed().as_secs_f64();
        let (c1, _) = cpu_seconds();
        if c1 - c0 < text_best.0 {
            text_best = (c1 - c0, wall);
        }
    }
    if ours.as_bytes() != go_text.as_slice() {
        let want = String::from_utf8_lossy(&go_text);
        let line = ours
            .lines()
            .zip(want.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(0);
        return Err(format!(
            "the texts differ at line {}: ours {:?}, go {:?}",
            line + 1,
            ours.lines().nth(line),
            want.lines().nth(line)
        ));
    }
    let mb = bytes.len() as f64 / 1e6;
    println!(
        "trace: {} ({mb:.1} MB, {events} events, Go 1.{minor})",
        trace.display()
    );
    println!(
        "go tool trace {}:  {:.3} s CPU ({:.3} s wall)",
        dialect.flag(),
        go_best.0,
        go_best.1
    );
    println!(
        "gocost read:             {:.3} s CPU ({:.3} s wall, {:.0} MB/s)",
        parse_best.0,
        parse_best.1,
        mb / parse_best.1
    );
    println!(
        "gocost read + text:      {:.3} s CPU ({:.3} s wall); the texts are equal",
        text_best.0, text_best.1
    );
    println!(
        "ratio (go CPU / gocost read CPU):        {:.1}×",
        go_best.0 / parse_best.0.max(0.001)
    );
    println!(
        "ratio (go CPU / gocost read + text CPU): {:.1}×",
        go_best.0 / text_best.0.max(0.001)
    );
    println!(
        "gocost peak memory (with the text held): {:.0} MiB",
        peak_rss_mib()
    );
    Ok(())
}
