//! `cargo run --release -p xtask -- bench-trace --pprof [--repeats N] [--fresh]`: the
//! release `gocost trace pprof --type sched` against `go tool trace -pprof=sched` on a 5 s
//! and a 60 s trace of a busy Go program (issue 13's numbers).
//!
//! The traces are recorded once from `testdata/go/tracebed -for 5s|60s` into
//! `$CARGO_TARGET_DIR/bench-trace/` (else `target/`; `--fresh` records them again) with the
//! newest Go found (as `bench-trace`). The release `gocost` is built first. For each trace both run `repeats`
//! times (default 3), alternating, each as a child whose CPU time (user + system) and peak
//! RSS come from `wait4`; the best of each counts. The two profiles' `go tool pprof -top`
//! must be identical. `--baseline GOCOST` runs another gocost binary beside them (a build
//! of an older commit) and prints its numbers too: before and after in one run.
//!
//! Measured (2-core machine shared with two compiling engineers; CPU = user + sys, best of 3;
//! `--baseline` = the build of the commit before the hot-path work of docs/adr/0013):
//!
//! | trace | MB | before: CPU × | after: CPU × | mem × | top |
//! |---|---|---|---|---|---|
//! | 5 s | 20.7 | 7.7× (0.542 s vs go 4.198 s) | 8.2× (0.510 s) | 0.023 | identical |
//! | 60 s | 41.6 | 8.2× (1.123 s vs go 9.171 s) | 8.7× (1.049 s) | 0.016 | identical |
//!
//! A second run (`--repeats 2`, final code) on a busier machine: 5 s 5.8× → 6.4× (0.687 →
//! 0.618 s vs go 3.979 s), 60 s 9.8× → 9.9× (1.250 → 1.235 s vs go 12.277 s): the absolute
//! ratio moves ±30 % with the machine's load, the before/after within one run less.
//! Callgrind on the 5 s trace: 4.17 G → 3.44 G instructions for the records. The goal
//! (≥ 10×) is not reached yet; `perf` puts most of the remaining cycles in moving each
//! `Event` (96 bytes) through the ordering queue and the iterator's `Option<Result<…>>`
//! (store-forwarding stalls), and one `Arc` increment/decrement per event.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::{Result, arg, output};
use gocost_testkit::repo_root;

/// What one child used.
#[derive(Clone, Copy)]
struct Usage {
    user: f64,
    sys: f64,
    wall: f64,
    /// Peak resident memory, MiB.
    rss_mib: f64,
}

impl Usage {
    fn cpu(&self) -> f64 {
        self.user + self.sys
    }
}

/// Runs `cmd` (stdout to `stdout`) and waits for it with `wait4`.
fn measure(cmd: &mut Command, stdout: &Path) -> Result<Usage> {
    let out = File::create(stdout).map_err(|e| e.to_string())?;
    let t0 = Instant::now();
    let child = cmd
        .stdout(Stdio::from(out))
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("{cmd:?}: {e}"))?;
    let pid = libc::pid_t::try_from(child.id()).map_err(|e| e.to_string())?;
    let mut status: libc::c_int = 0;
    // SAFETY: an all-zero rusage is a valid value; wait4 fills it.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our child, not yet waited for; the pointers are to live locals.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
    let wall = t0.elapsed().as_secs_f64();
    if r != pid {
        return Err(format!(
            "wait4 {cmd:?}: {}",
            std::io::Error::last_os_error()
        ));
    }
    if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        return Err(format!("{cmd:?} failed (status {status})"));
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Ok(Usage {
        user: secs(ru.ru_utime),
        sys: secs(ru.ru_stime),
        wall,
        rss_mib: ru.ru_maxrss as f64 / 1024.0,
    })
}

fn best(runs: &[Usage]) -> Usage {
    let mut b = runs[0];
    for u in runs {
        if u.cpu() < b.cpu() {
            b = Usage {
                rss_mib: b.rss_mib,
                ..*u
            };
        }
        b.rss_mib = b.rss_mib.min(u.rss_mib);
    }
    b
}

/// The traces: (label, -for duration, ping-pong pairs).
const TRACES: [(&str, &str, &str); 2] = [("5s", "5s", "128"), ("60s", "60s", "16")];

pub fn run(args: &[String], go: &Path, minor: u32) -> Result<()> {
    let repeats = arg(args, "--repeats", 3)?.max(1) as usize;
    let root = repo_root();
    let dir = crate::target_dir().join("bench-trace");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let gocost = crate::release_gocost()?;
    let baseline: Option<PathBuf> = args
        .iter()
        .position(|a| a == "--baseline")
        .map(|i| {
            args.get(i + 1)
                .map(PathBuf::from)
                .ok_or("--baseline needs a path")
        })
        .transpose()?;
    let tool = String::from_utf8_lossy(&output(Command::new(go).args(["tool", "-n", "trace"]))?)
        .trim()
        .to_string();
    let mut rows = Vec::new();
    for (label, dur, pairs) in TRACES {
        let trace = dir.join(format!("busy-{label}-go1.{minor}.trace"));
        if args.iter().any(|a| a == "--fresh") || !trace.exists() {
            eprintln!("recording {} with {}", trace.display(), go.display());
            let st = Command::new(go)
                .args(["run", "-trimpath", ".", "-for", dur, "-pairs", pairs])
                .arg(&trace)
                .current_dir(root.join("testdata/go/tracebed"))
                .env("GOTOOLCHAIN", "local")
                .status()
                .map_err(|e| e.to_string())?;
            if !st.success() {
                return Err("tracebed failed".into());
            }
        }
        let ours_pb = dir.join(format!("busy-{label}.gocost.pb"));
        let go_pb = dir.join(format!("busy-{label}.go.pb"));
        let (mut ours, mut theirs, mut base) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..repeats {
            if let Some(b) = &baseline {
                base.push(measure(
                    Command::new(b)
                        .args(["trace", "pprof", "--type", "sched", "-o"])
                        .arg(dir.join(format!("busy-{label}.baseline.pb")))
                        .arg(&trace),
                    &dir.join("gocost.stdout"),
                )?);
            }
            theirs.push(measure(
                Command::new(&tool).arg("-pprof=sched").arg(&trace),
                &go_pb,
            )?);
            ours.push(measure(
                Command::new(&gocost)
                    .args(["trace", "pprof", "--type", "sched", "-o"])
                    .arg(&ours_pb)
                    .arg(&trace),
                &dir.join("gocost.stdout"),
            )?);
        }
        let top = |pb: &PathBuf| -> Result<String> {
            let o = output(
                Command::new(go)
                    .args(["tool", "pprof", "-top"])
                    .arg(pb)
                    .env("GOTOOLCHAIN", "local"),
            )?;
            Ok(String::from_utf8_lossy(&o).into_owned())
        };
        let same = top(&ours_pb)? == top(&go_pb)?;
        let mb = std::fs::metadata(&trace).map_err(|e| e.to_string())?.len() as f64 / 1e6;
        if !base.is_empty() {
            let same = top(&dir.join(format!("busy-{label}.baseline.pb")))? == top(&go_pb)?;
            rows.push((label, "baseline", mb, best(&base), best(&theirs), same));
        }
        rows.push((label, "gocost", mb, best(&ours), best(&theirs), same));
    }
    println!(
        "best of {repeats}, Go 1.{minor}; CPU = user + sys of the child, memory = its peak RSS"
    );
    println!(
        "{:<5} {:<8} {:>6}  {:>26}  {:>26}  {:>9} {:>9}  top",
        "trace",
        "binary",
        "MB",
        "gocost CPU s (user/sys) RSS",
        "go CPU s (user/sys) RSS",
        "CPU ×",
        "mem ×"
    );
    let mut all_same = true;
    for (label, which, mb, o, g, same) in &rows {
        all_same &= same;
        println!(
            "{label:<5} {which:<8} {mb:>6.1}  {:>6.3} ({:.2}/{:.2}) {:>5.0}M  {:>6.3} ({:.2}/{:.2}) {:>5.0}M  {:>8.1}× {:>8.3}  {}",
            o.cpu(),
            o.user,
            o.sys,
            o.rss_mib,
            g.cpu(),
            g.user,
            g.sys,
            g.rss_mib,
            g.cpu() / o.cpu().max(0.001),
            o.rss_mib / g.rss_mib.max(0.001),
            if *same { "identical" } else { "DIFFERENT" }
        );
        let _ = (o.wall, g.wall);
    }
    println!("CPU × = go CPU / gocost CPU (goal ≥ 10); mem × = gocost RSS / go RSS (goal ≤ 0.25)");
    if !all_same {
        return Err("the -top of the two profiles differ".into());
    }
    Ok(())
}
