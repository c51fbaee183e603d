//! `gocost load` against a real Go server with a known latency (`testdata/go/loadbed`): every
//! request takes 50 ms, and every 5 s the server stalls for 1 s. The open model's percentiles
//! must be the analytic ones (latency counted from when each request was due, so the stall
//! shows); the closed model's must show how a closed loop hides it; errors and resets are
//! counted by kind; a generator with too few connections says its requests went out late.
//! These check tolerances, not timings, and run alone (`.config/nextest.toml`): other tests on
//! the same cores would delay the server's own sleeps.
//!
//! Go is found through `$GO` or `go` on `PATH`; without it the test is reported as ignored, except in CI.

use std::path::Path;
use std::process::Command;

use gocost_testkit::procs::{go_build, start_with_addr_file};

const DELAY: f64 = 0.050;
const STALL: f64 = 1.0;
const EVERY: f64 = 5.0;

fn load(args: &[&str]) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_gocost"))
        .arg("load")
        .args(args)
        .arg("--json")
        .output()
        .expect("run gocost load");
    assert!(
        out.status.success(),
        "gocost load {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON report")
}

fn within(got: f64, want: f64, tol: f64, what: &str) {
    assert!(
        (got - want).abs() <= tol * want,
        "{what}: {got:.4}s, analytic {want:.4}s (±{:.0} %)",
        tol * 100.0
    );
}

#[cfg_attr(not(has_go), ignore = "needs Go: set $GO or put go on PATH")]
#[test]
fn latency_under_load_is_the_analytic_one_and_stalls_are_not_hidden() {
    let go = gocost_testkit::go_toolchain();
    let dir = gocost_testkit::procs::fresh_dir("load", "loadbed");
    let bin = dir.join("loadbed");
    go_build(
        &go,
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/go/loadbed"),
        &bin,
    );
    let (_bed, addr) = start_with_addr_file(
        &bin,
        &["-delay=50ms", "-stall=1s", "-every=5s", "-duration=4m"],
        &dir.join("addr"),
    );
    let url = format!("http://{addr}/");

    // Open model, 100 requests/s, enough connections for every stalled request: 20 s are four
    // whole stall periods, so 20 % of the requests are due inside a stall and wait for its end
    // (uniformly 0–1 s), the other 80 % take 50 ms.
    let r = load(&[
        "--rate",
        "100",
        "--connections",
        "200",
        "--warmup",
        "2s",
        "--duration",
        "20s",
        &url,
    ]);
    assert_eq!(r["model"], "open");
    assert_eq!(r["errors"], 0, "{r}");
    let n = r["requests"].as_u64().unwrap();
    assert!((1999..=2001).contains(&n), "{n} requests, want 2,000");
    let l = &r["latency"];
    let q = |k: &str| l[k].as_f64().unwrap();
    let stalled = STALL / EVERY;
    let in_stall = |p: f64| DELAY + STALL * (1.0 - (1.0 - p) / stalled);
    eprintln!("open model: {l}");
    // A busy machine oversleeps every request by the same little: the stall's part of each
    // percentile (above the median) is what the correction is judged on.
    assert!(
        q("p50") >= DELAY && q("p50") <= DELAY * 1.5,
        "p50 {} (want {DELAY})",
        q("p50")
    );
    let over = q("p50") - DELAY;
    within(q("p90") - over, in_stall(0.90), 0.05, "open p90");
    within(q("p99") - over, in_stall(0.99), 0.03, "open p99");
    within(q("p999") - over, in_stall(0.999), 0.03, "open p99.9");
    assert_eq!(r["seconds"].as_array().unwrap().len(), 20);

    // Closed model, 10 clients: in each 5 s period a client sends ~80 requests that take
    // 50 ms and one that waits out the stall, so ~1 % of the requests see it: p90 looks
    // healthy where the open model's is half a second — what a closed loop (and a load tool
    // without the correction) reports. Throughput: 81 requests per client per period.
    let c = load(&[
        "--concurrency",
        "10",
        "--warmup",
        "1s",
        "--duration",
        "20s",
        &url,
    ]);
    assert_eq!(c["model"], "closed");
    let cl = &c["latency"];
    let cq = |k: &str| cl[k].as_f64().unwrap();
    eprintln!("closed model: {cl}, {} requests/s", c["throughput"]);
    assert!(cq("p90") <= DELAY * 1.5, "closed p90 {}", cq("p90"));
    assert!(
        q("p90") > 8.0 * cq("p90"),
        "the closed loop hides the stall from p90: {} vs the open model's {}",
        cq("p90"),
        q("p90")
    );
    assert!(
        cq("max") >= STALL * 0.8 && cq("max") <= (STALL + DELAY) * 1.25,
        "closed max {}",
        cq("max")
    );
    let tput = c["throughput"].as_f64().unwrap();
    let want = 10.0 * (1.0 + (EVERY - STALL) / DELAY) / EVERY;
    assert!(
        (tput - want).abs() <= 0.1 * want,
        "closed throughput {tput}/s, want ~{want}/s"
    );

    // Too few connections for the rate: 2 connections carry at most 40 requests/s.
    let late = load(&[
        "--rate",
        "100",
        "--connections",
        "2",
        "--warmup",
        "0s",
        "--duration",
        "3s",
        &url,
    ]);
    assert!(
        late["late"].as_u64().unwrap() > 100,
        "requests the generator could not send on time are counted: {}",
        late["late"]
    );

    // Errors by kind: 5xx answers and connections reset before an answer.
    let e = load(&[
        "--rate",
        "20",
        "--warmup",
        "0s",
        "--duration",
        "2s",
        &format!("http://{addr}/status/503"),
    ]);
    assert_eq!(e["errors"], e["requests"], "{e}");
    assert_eq!(e["statuses"]["503"], e["requests"], "{e}");
    let reset = load(&[
        "--rate",
        "20",
        "--warmup",
        "0s",
        "--duration",
        "2s",
        &format!("http://{addr}/reset"),
    ]);
    let kinds = reset["error_kinds"].as_object().unwrap();
    assert!(
        reset["errors"].as_u64().unwrap() >= 38 && kinds.keys().any(|k| k.contains("closed")),
        "{reset}"
    );
}

#[test]
fn bad_arguments_are_clear_errors() {
    let run = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_gocost"))
            .arg("load")
            .args(args)
            .output()
            .unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let (code, err) = run(&["http://127.0.0.1:1/"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("--rate") && err.contains("--concurrency"),
        "{err}"
    );
    let (code, err) = run(&["--rate", "1000:2000", "http://127.0.0.1:1/"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("--ramp"), "{err}");
    let (code, err) = run(&["--rate", "10", "https://127.0.0.1:1/"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("https"), "{err}");
    let (code, err) = run(&["--rate", "10", "-H", "nocolon", "http://127.0.0.1:1/"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("Name: value"), "{err}");
    // Nothing listens: every request is a connect error, counted, not a crash.
    let o = Command::new(env!("CARGO_BIN_EXE_gocost"))
        .args([
            "load",
            "--rate",
            "20",
            "--warmup",
            "0s",
            "--duration",
            "1s",
            "--json",
        ])
        .arg("http://127.0.0.1:1/")
        .output()
        .unwrap();
    assert!(o.status.success());
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["errors"], r["requests"], "{r}");
    assert!(
        r["error_kinds"]
            .as_object()
            .unwrap()
            .keys()
            .any(|k| k.starts_with("connect"))
    );
}
