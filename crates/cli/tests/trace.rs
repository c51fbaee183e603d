//! `gocost trace`: its blocking profiles against `go tool trace -pprof` (goldens: what Go
//! 1.27.3's `go tool pprof -top` printed for the profiles its `go tool trace -pprof=TYPE`
//! wrote, `testdata/traces/go1.N.pprof-TYPE.top.txt`; see testdata/traces/README.md), the
//! other commands' text and JSON, bad input, and taking a trace from a live Go service.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn gocost(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gocost"))
        .args(args)
        .env("TZ", "UTC")
        .output()
        .expect("run gocost")
}

fn traces() -> PathBuf {
    gocost_testkit::repo_root().join("testdata/traces")
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("gocost-trace-test-{}", std::process::id()));
    std::fs::create_dir_all(&d).expect("temp dir");
    d.join(name)
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "gocost failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

const KINDS: [&str; 4] = ["net", "sync", "syscall", "sched"];
const MINORS: [u32; 6] = [22, 23, 24, 25, 26, 27];

#[cfg_attr(not(has_go), ignore = "needs Go: set $GO or put go on PATH")]
#[test]
fn pprof_top_equals_go_tool_trace_pprof() {
    let go = gocost_testkit::go_toolchain();
    let mut failures = Vec::new();
    let mut checked_with_go = 0;
    for minor in MINORS {
        let trace = traces().join(format!("go1.{minor}.trace"));
        for kind in KINDS {
            let name = format!("go1.{minor}.pprof-{kind}.top");
            let golden = std::fs::read(traces().join(format!("{name}.txt"))).expect("golden");
            let out = tmp(&format!("{name}.pb.gz"));
            ok(&gocost(&[
                "trace",
                "pprof",
                "--type",
                kind,
                "-o",
                out.to_str().expect("utf-8 path"),
                trace.to_str().expect("utf-8 path"),
            ]));
            // gocost's own -top (byte-identical to go tool pprof's, tested in golden.rs).
            let ours = gocost(&["top", out.to_str().expect("utf-8 path")]);
            if let Err(e) = gocost_testkit::compare_golden(&name, &golden, ok(&ours).as_bytes()) {
                failures.push(e);
            }
            // The real tool on gocost's file.
            {
                let o = Command::new(&go)
                    .args(["tool", "pprof", "-top"])
                    .arg(&out)
                    .env("TZ", "UTC")
                    .output()
                    .expect("go tool pprof");
                assert!(o.status.success(), "go tool pprof -top {}", out.display());
                if let Err(e) = gocost_testkit::compare_golden(&name, &golden, &o.stdout) {
                    failures.push(format!("go tool pprof on gocost's profile: {e}"));
                }
                checked_with_go += 1;
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    eprintln!("24 -top goldens equal, {checked_with_go} also read by go tool pprof");
}

#[test]
fn pprof_to_stdout_and_as_json() {
    let trace = traces().join("go1.27.trace");
    let t = trace.to_str().expect("utf-8 path");
    // Without -o the gzip'd profile goes to stdout, as go tool trace -pprof writes it.
    let raw = gocost(&["trace", "pprof", "--type", "sched", t]);
    assert!(raw.status.success());
    assert!(raw.stdout.starts_with(&[0x1f, 0x8b]));
    let prof = gocost_pprof::decode(&raw.stdout).expect("a profile on stdout");
    assert_eq!(prof.sample_type.len(), 2);
    assert_eq!(&*prof.sample_type[1].r#type, "delay");
    let j: serde_json::Value = serde_json::from_str(&ok(&gocost(&[
        "trace", "pprof", "--type", "sync", "--json", t,
    ])))
    .expect("json");
    assert!(j["rows"].as_array().is_some_and(|r| !r.is_empty()));
    let bad = gocost(&["trace", "pprof", "--type", "cpu", t]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("net, sync, syscall, sched"));
}

#[test]
fn summary_gc_sched_goroutines() {
    let trace = traces().join("go1.27.trace");
    let t = trace.to_str().expect("utf-8 path");
    let s = ok(&gocost(&["trace", "summary", t]));
    for want in [
        "GOMAXPROCS:",
        "stop-the-world:",
        "sched latency:",
        "MMU:",
        "blocked:",
    ] {
        assert!(s.contains(want), "{want} missing in:\n{s}");
    }
    let j: serde_json::Value =
        serde_json::from_str(&ok(&gocost(&["trace", "summary", "--json", t]))).expect("json");
    // The pauses are those `gocost trace gc` lists; the blocking totals those of -pprof.
    let gc: serde_json::Value =
        serde_json::from_str(&ok(&gocost(&["trace", "gc", "--json", t]))).expect("json");
    let pauses = gc["pauses"].as_array().expect("pauses");
    assert_eq!(j["stw"]["count"].as_u64(), Some(pauses.len() as u64));
    assert!(pauses.len() >= 3, "the test bed runs the GC");
    let total: i64 = pauses
        .iter()
        .map(|p| p["duration_ns"].as_i64().expect("duration"))
        .sum();
    assert_eq!(j["stw"]["total_ns"].as_i64(), Some(total));
    assert!(gc["cycles"].as_array().is_some_and(|c| !c.is_empty()));
    let mmu = gc["mmu"].as_array().expect("mmu");
    let vals: Vec<f64> = mmu
        .iter()
        .map(|m| m["mmu"].as_f64().expect("mmu"))
        .collect();
    assert!(
        vals.windows(2).all(|w| w[0] <= w[1]),
        "MMU grows with the window: {vals:?}"
    );
    let go_sched =
        gocost_pprof::decode(&std::fs::read(traces().join("go1.27.pprof-sched.pb")).expect("pb"))
            .expect("decode");
    let sched_total: i64 = go_sched.sample.iter().map(|s| s.value[1]).sum();
    let blocking = j["blocking"].as_array().expect("blocking");
    let sched = blocking
        .iter()
        .find(|b| b["type"] == "sched")
        .expect("sched");
    assert_eq!(sched["total_ns"].as_i64(), Some(sched_total));
    // Every wait -pprof=sched counts is one of the scheduler waits (clipped to the
    // goroutine's life there), so the latency distribution covers at least as much.
    assert!(j["sched_latency"]["total_ns"].as_i64().expect("sched") >= sched_total);
    let assist = j["assist_fraction"].as_f64().expect("assist fraction");
    assert!(assist > 0.0 && assist < 1.0, "assist fraction {assist}");

    let sched = ok(&gocost(&["trace", "sched", t]));
    assert!(sched.contains("main.round"), "{sched}");
    let groups: serde_json::Value =
        serde_json::from_str(&ok(&gocost(&["trace", "sched", "--json", t]))).expect("json");
    let waits: u64 = groups
        .as_array()
        .expect("groups")
        .iter()
        .map(|g| g["waits"]["count"].as_u64().expect("count"))
        .sum();
    assert_eq!(Some(waits), j["sched_latency"]["count"].as_u64());

    let g = ok(&gocost(&["trace", "goroutines", t]));
    assert!(g.contains("runtime.gcBgMarkWorker"), "{g}");
    let gj: serde_json::Value =
        serde_json::from_str(&ok(&gocost(&["trace", "goroutines", "--json", t]))).expect("json");
    assert_eq!(
        gj["goroutines"].as_array().map(Vec::len),
        j["goroutines"].as_u64().map(|n| n as usize)
    );
}

#[test]
fn bad_traces_name_the_file_and_offset() {
    let good = std::fs::read(traces().join("go1.27.trace")).expect("trace");
    let cut = tmp("cut.trace");
    std::fs::write(&cut, &good[..3000]).expect("write");
    let o = gocost(&["trace", "summary", cut.to_str().expect("utf-8 path")]);
    assert_eq!(o.status.code(), Some(2));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("cut.trace: reading trace: byte "), "{e}");

    let old = traces().join("go1.21.trace");
    let o = gocost(&["trace", "gc", old.to_str().expect("utf-8 path")]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("Go 1.21"));

    let o = gocost(&["trace", "summary", "/nonexistent/x.trace"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("/nonexistent/x.trace"));

    let not = tmp("profile.trace");
    std::fs::write(&not, b"\x1f\x8b not a trace").expect("write");
    let o = gocost(&["trace", "sched", not.to_str().expect("utf-8 path")]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("profile.trace: reading trace: byte 0"));

    let small = gocost(&[
        "trace",
        "summary",
        "--max-size",
        "100",
        traces().join("go1.27.trace").to_str().expect("utf-8 path"),
    ]);
    assert_eq!(small.status.code(), Some(2));
}

#[test]
fn help_teaches() {
    let h = ok(&gocost(&["trace", "--help"]));
    for want in [
        "gocost trace summary",
        "--seconds",
        "go tool pprof -top",
        "Exit codes",
    ] {
        assert!(h.contains(want), "{want} missing in:\n{h}");
    }
    let p = ok(&gocost(&["trace", "pprof", "--help"]));
    assert!(p.contains("sched (runnable"), "{p}");
}

/// `gocost trace URL --seconds N` against a real Go service (testdata/go/traced).
#[cfg_attr(not(has_go), ignore = "needs Go: set $GO or put go on PATH")]
#[test]
fn takes_a_trace_from_a_live_service() {
    let go = gocost_testkit::go_toolchain();
    let dir = gocost_testkit::procs::fresh_dir("trace-cli", "live");
    let bin = dir.join("traced");
    gocost_testkit::procs::go_build(
        &go,
        &gocost_testkit::repo_root().join("testdata/go/traced"),
        &bin,
    );
    let (_p, addr) = gocost_testkit::procs::start_with_addr_file(&bin, &[], &dir.join("addr"));
    let out = dir.join("live.trace");
    let o = gocost(&[
        "trace",
        &format!("http://{addr}"),
        "--seconds",
        "1",
        "-o",
        out.to_str().expect("utf-8 path"),
    ]);
    ok(&o);
    let s = ok(&gocost(&[
        "trace",
        "summary",
        "--json",
        out.to_str().expect("utf-8 path"),
    ]));
    let j: serde_json::Value = serde_json::from_str(&s).expect("json");
    assert!(j["events"].as_u64().is_some_and(|n| n > 100), "{s}");
    // A cap below the trace's size refuses it, naming the cap.
    let o = gocost(&[
        "trace",
        &format!("http://{addr}/debug/pprof/trace"),
        "--seconds",
        "1",
        "--max-size",
        "64",
        "-o",
        dir.join("small.trace").to_str().expect("utf-8 path"),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("exceeds 64 bytes"));
    assert!(!Path::new(&dir.join("small.trace")).exists());
}
