//! `gocost load` against a real Go server with a known latency (`testdata/go/loadbed`): every
//! request takes 50 ms, and every 5 s the server stalls for 1 s. The open model's percentiles
//! must be the analytic ones (latency counted from when each request was due, so the stall
//! shows); the closed model's must show how a closed loop hides it; errors and resets are
//! counted by kind; a generator with too few connections says its requests went out late.
//! These check tolerances, not timings, and run alone (`.config/nextest.toml`): other tests on
//! the same cores would delay the server's own sleeps.
//!
//! Go is found through `$GO` or `go` on `PATH`; without it the test is reported as ignored, except in CI.

use std::path::{Path, PathBuf};
use std::process::Command;

use gocost_testkit::procs::{go_build, start_with_addr_file};

const DELAY: f64 = 0.050;
const STALL: f64 = 1.0;
const EVERY: f64 = 5.0;

/// The test bed, built into a fresh directory named for the test: (Go, the directory, the
/// binary).
fn build_bed(name: &str) -> (PathBuf, PathBuf, PathBuf) {
    let go = gocost_testkit::go_toolchain();
    let dir = gocost_testkit::procs::fresh_dir("load", name);
    let bin = dir.join("loadbed");
    go_build(
        &go,
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/go/loadbed"),
        &bin,
    );
    (go, dir, bin)
}

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
    let (_, dir, bin) = build_bed("loadbed");
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
    let (code, err) = run(&["--rate", "10", "ftp://127.0.0.1:1/"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("http:// or https://"), "{err}");
    let (code, err) = run(&[
        "--rate",
        "10",
        "--cacert",
        "/nonexistent/ca.pem",
        "https://127.0.0.1:1/",
    ]);
    assert_eq!(code, Some(2));
    assert!(err.contains("--cacert /nonexistent/ca.pem"), "{err}");
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

/// `NumGC` from the service's `/debug/vars`.
fn num_gc(addr: &str) -> u64 {
    let (status, body) = gocost_testkit::procs::http_get(&format!("http://{addr}/debug/vars"));
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_slice(&body).expect("expvar JSON");
    v["memstats"]["NumGC"].as_u64().expect("memstats.NumGC")
}

/// `--profile`: the bed's stalls are batch jobs that park 500 goroutines and hold 64 MiB while
/// they run, and each request allocates 256 KiB. The service's side of the report must put
/// those bursts in the seconds whose P99 spiked (the join is right in time), count GC cycles
/// the service really ran, and bring back a CPU profile `go tool pprof` reads.
#[cfg_attr(not(has_go), ignore = "needs Go: set $GO or put go on PATH")]
#[test]
fn profile_joins_what_the_service_did_with_the_seconds_that_spiked() {
    const FANOUT: u64 = 500;
    const BURST: f64 = 64.0 * 1024.0 * 1024.0;
    let (go, dir, bin) = build_bed("profile");
    let (_bed, addr) = start_with_addr_file(
        &bin,
        &[
            "-delay=20ms",
            "-stall=1s",
            "-every=5s",
            "-alloc=262144",
            &format!("-burst={}", BURST as u64),
            &format!("-fanout={FANOUT}"),
            "-duration=2m",
        ],
        &dir.join("addr"),
    );
    let gc_before = num_gc(&addr);
    let cpu = dir.join("cpu.pprof");
    let trace = dir.join("trace.out");
    let r = load(&[
        "--rate",
        "200",
        "--connections",
        "300",
        "--warmup",
        "2s",
        "--duration",
        "15s",
        "--profile",
        &format!("http://{addr}/debug/pprof/"),
        "--profile-every",
        "250ms",
        "--cpu-profile",
        cpu.to_str().unwrap(),
        "--trace-seconds",
        "4s",
        "--trace-file",
        trace.to_str().unwrap(),
        &format!("http://{addr}/"),
    ]);
    let gc_after = num_gc(&addr);
    let s = &r["service"];
    assert_eq!(s["url"], format!("http://{addr}"), "{s}");
    assert!(s["notes"].as_array().unwrap().is_empty(), "{}", s["notes"]);
    let seconds = s["seconds"].as_array().unwrap();
    assert_eq!(seconds.len(), 15);

    // GC: the cycles placed in seconds are the pauses listed, and no more than the service ran.
    let pauses = s["gc_pauses"].as_array().unwrap().len() as u64;
    let per_second: u64 = seconds
        .iter()
        .map(|x| x["gc_cycles"].as_u64().unwrap())
        .sum();
    assert_eq!(per_second, pauses);
    assert!(
        pauses > 0,
        "no GC cycles seen under 50 MB/s of garbage: {s}"
    );
    assert!(
        pauses + s["gc_pauses_lost"].as_u64().unwrap() <= gc_after - gc_before,
        "{pauses} pauses, the service ran {} cycles",
        gc_after - gc_before
    );

    // The bursts sit in the seconds that spiked (or next to one: a stall straddles two).
    let spiked: Vec<u64> = s["spikes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["t"].as_u64().unwrap())
        .collect();
    let base = seconds
        .iter()
        .filter_map(|x| x["goroutines_max"].as_u64())
        .min()
        .expect("goroutine counts");
    let burst_seconds: Vec<u64> = seconds
        .iter()
        .filter(|x| {
            x["goroutines_max"].as_u64().unwrap_or(0) >= base + FANOUT / 2
                && x["heap_inuse_max_bytes"].as_f64().unwrap_or(0.0) >= BURST / 2.0
        })
        .map(|x| x["t"].as_u64().unwrap())
        .collect();
    // 15 s hold three stalls; a 250 ms read catches each.
    assert!(
        burst_seconds.len() >= 3,
        "bursts seen in {burst_seconds:?}: {s}"
    );
    for t in &burst_seconds {
        assert!(
            spiked.iter().any(|&p| p.abs_diff(*t) <= 1),
            "a burst at {t}s, but spikes only at {spiked:?}"
        );
    }
    let joined = s["spikes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| {
            x["goroutines_max"].as_u64().unwrap_or(0) >= base + FANOUT / 2
                && x["goroutines_before"].as_u64().is_some()
        })
        .count();
    assert!(joined >= 2, "spikes without their bursts: {s}");

    // The execution trace: 4 s in the middle, as written to the file, and its GC cycles are
    // the ones expvar saw end in that window (give or take the edges).
    let t = &s["trace"];
    assert_eq!(t["from"].as_f64(), Some(5.5), "{t}");
    assert_eq!(
        t["bytes"].as_u64(),
        Some(std::fs::metadata(&trace).unwrap().len()),
        "{t}"
    );
    let o = &t["overview"];
    assert!(o["events"].as_u64().unwrap() > 1000, "{o}");
    assert!(o["sched_latency"]["count"].as_u64().unwrap() > 0, "{o}");
    let in_window = s["gc_pauses"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| (5.5..=9.5).contains(&p["t"].as_f64().unwrap()))
        .count() as i64;
    let traced = o["gc_cycles"].as_i64().unwrap();
    assert!(
        in_window >= 2 && (traced - in_window).abs() <= 2,
        "{traced} GC cycles in the trace, {in_window} ended in its window by expvar: {o}"
    );
    assert!(
        o["stw"]["count"].as_i64().unwrap() >= 2 * (traced - 1),
        "{o}"
    );

    // CPU: time per request, and the profile as the service sent it.
    let c = &s["cpu"];
    assert!(c["seconds"].as_f64().unwrap() > 0.0, "{c}");
    assert!(c["per_request_seconds"].as_f64().unwrap() > 0.0, "{c}");
    assert!(!c["top"].as_array().unwrap().is_empty(), "{c}");
    let pprof = gocost_testkit::procs::go_tool(&go, "pprof");
    let out = gocost_testkit::procs::retry_busy(|| {
        Command::new(&pprof)
            .args(["-symbolize=none", "-top"])
            .arg(&cpu)
            .env("HOME", &dir)
            .env("PPROF_TMPDIR", &dir)
            .output()
    })
    .expect("run go tool pprof");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.contains("sha256") || out.contains("main.handle"),
        "go tool pprof -top of the written profile:\n{out}"
    );
}

/// `--profile` at an address that does not serve pprof is refused before any load is sent.
#[cfg_attr(not(has_go), ignore = "needs Go: set $GO or put go on PATH")]
#[test]
fn profile_without_pprof_is_a_clear_error() {
    let o = Command::new(env!("CARGO_BIN_EXE_gocost"))
        .args([
            "load",
            "--rate",
            "10",
            "--duration",
            "1s",
            "--profile",
            "http://127.0.0.1:1",
            "http://127.0.0.1:1/",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("net/http/pprof") && err.contains("/debug/vars"),
        "{err}"
    );
    let o = Command::new(env!("CARGO_BIN_EXE_gocost"))
        .args([
            "load",
            "--rate",
            "10",
            "--profile-every",
            "1s",
            "http://127.0.0.1:1/",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--profile"));
}

/// `-o report.html`: the self-contained page opens in headless Chromium with no network and
/// shows the JSON's numbers (`ui/tests/load_report.test.mjs` checks the summary, every chart's
/// per-second values, the spikes, the GC heatmap, the histogram and the flame graph);
/// `-o report.md` writes the Markdown one.
#[cfg_attr(
    not(has_browser),
    ignore = "needs Go, node, Chromium (apt-get install chromium) and `npm ci` in ui/tests"
)]
#[test]
fn html_report_renders_in_the_browser() {
    gocost_testkit::tools::require(&gocost_testkit::tools::BROWSER);
    let (_, dir, bin) = build_bed("html");
    let (_bed, addr) = start_with_addr_file(
        &bin,
        &[
            "-delay=10ms",
            "-stall=500ms",
            "-every=5s",
            "-alloc=262144",
            "-burst=33554432",
            "-fanout=200",
            "-duration=1m",
        ],
        &dir.join("addr"),
    );
    let html = dir.join("report.html");
    let md = dir.join("report.md");
    let r = load(&[
        "--rate",
        "200",
        "--connections",
        "200",
        "--warmup",
        "1s",
        "--duration",
        "10s",
        "--profile",
        &format!("http://{addr}"),
        "--profile-every",
        "250ms",
        "-o",
        html.to_str().unwrap(),
        "-o",
        md.to_str().unwrap(),
        &format!("http://{addr}/"),
    ]);
    assert!(
        !r["service"]["spikes"].as_array().unwrap().is_empty(),
        "{r}"
    );
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.starts_with("<!doctype html>"));
    let md = std::fs::read_to_string(&md).unwrap();
    assert!(
        md.contains("| P50 | P90 | P99 |") && md.contains("P99 spike"),
        "{md}"
    );

    let root = gocost_testkit::repo_root();
    let out = root.join("target/ui-screenshots/load");
    let st = Command::new("node")
        .arg(root.join("ui/tests/load_report.test.mjs"))
        .arg(&html)
        .arg(&out)
        .env(
            "CHROMIUM",
            std::env::var_os("CHROMIUM").unwrap_or_else(|| "/usr/bin/chromium".into()),
        )
        .current_dir(root.join("ui/tests"))
        .status()
        .expect("run node");
    assert!(
        st.success(),
        "the report's browser checks failed (page: {}, screenshot in {})",
        html.display(),
        out.display()
    );
}

/// Runs are compared as benchmarks are (`gocost compare --base run.json --head run.json`,
/// one sample per second): a build that answers 4× slower and burns 8× the CPU per request
/// fails the gate (exit 1) on latency and CPU per request; the same build run twice passes.
#[cfg_attr(not(has_go), ignore = "needs Go: set $GO or put go on PATH")]
#[test]
fn compare_gates_runs_on_latency_and_cpu_per_request() {
    let (_, dir, bin) = build_bed("compare");
    let run = |name: &str, delay: &str, alloc: &str| {
        let (_bed, addr) = start_with_addr_file(
            &bin,
            &[delay, alloc, "-duration=1m"],
            &dir.join(format!("addr-{name}")),
        );
        let out = dir.join(format!("{name}.json"));
        load(&[
            "--rate",
            "200",
            "--warmup",
            "1s",
            "--duration",
            "10s",
            "--profile",
            &format!("http://{addr}"),
            "-o",
            out.to_str().unwrap(),
            &format!("http://{addr}/"),
        ]);
        out
    };
    let base = run("base", "-delay=10ms", "-alloc=65536");
    let again = run("again", "-delay=10ms", "-alloc=65536");
    let slow = run("slow", "-delay=40ms", "-alloc=524288");
    let compare = |head: &Path, threshold: &str| {
        let o = Command::new(env!("CARGO_BIN_EXE_gocost"))
            .args(["compare", "--threshold", threshold, "--base"])
            .arg(&base)
            .arg("--head")
            .arg(head)
            .output()
            .unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
        )
    };
    let (code, out) = compare(&slow, "10%");
    assert_eq!(code, Some(1), "{out}");
    for row in ["latency-p50", "latency-p99", "cpu"] {
        assert!(
            out.lines()
                .any(|l| l.starts_with(row) && l.ends_with("REGRESSION")),
            "{row} is not a regression:\n{out}"
        );
    }
    assert!(
        out.lines()
            .any(|l| l.starts_with("answered") && !l.contains("REGRESSION")),
        "{out}"
    );
    // The same build again: per-second CPU samples are noisy (100 Hz sampling of ~0.1
    // cores), so the gate that must not fail uses a wide threshold.
    let (code, out) = compare(&again, "50%");
    assert_eq!(code, Some(0), "{out}");
}

/// `--requests FILE` rotates through its lines: against the bed's `/status/N`, a third of the
/// answers are each line's status; a bad line is exit 2 naming the file and line.
#[cfg_attr(not(has_go), ignore = "needs Go: set $GO or put go on PATH")]
#[test]
fn requests_file_rotates_and_bad_lines_are_named() {
    let (_, dir, bin) = build_bed("requests");
    let (_bed, addr) =
        start_with_addr_file(&bin, &["-delay=1ms", "-duration=1m"], &dir.join("addr"));
    let file = dir.join("mix.txt");
    std::fs::write(
        &file,
        format!(
            "# a mix\n/status/200\n\nPOST /status/201 {{\"a\": 1}}\nGET http://{addr}/status/404\n"
        ),
    )
    .unwrap();
    let r = load(&[
        "--rate",
        "90",
        "--warmup",
        "0s",
        "--duration",
        "2s",
        "--requests",
        file.to_str().unwrap(),
        &format!("http://{addr}/"),
    ]);
    let st = r["statuses"].as_object().unwrap();
    let n = |k: &str| st.get(k).and_then(|v| v.as_u64()).unwrap_or(0);
    assert_eq!(n("200") + n("201") + n("404"), 180, "{r}");
    for k in ["200", "201", "404"] {
        assert!((59..=61).contains(&n(k)), "{k}: {}: {r}", n(k));
    }

    std::fs::write(&file, "/ok\nget /lower\n").unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_gocost"))
        .args(["load", "--rate", "10", "--requests"])
        .arg(&file)
        .arg(format!("http://{addr}/"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("mix.txt: line 2"), "{err}");
}

/// `https://` targets: the bed's self-signed certificate is trusted with `--cacert` (its
/// PEM) or ignored with `-k`; without either every request is a counted TLS error naming
/// the certificate problem, not a crash.
#[cfg_attr(not(has_go), ignore = "needs Go: set $GO or put go on PATH")]
#[test]
fn https_targets_check_the_certificate() {
    let (_, dir, bin) = build_bed("https");
    let pem = dir.join("cert.pem");
    let (_bed, addr) = start_with_addr_file(
        &bin,
        &["-delay=1ms", "-duration=1m", "-tls", pem.to_str().unwrap()],
        &dir.join("addr"),
    );
    let url = format!("https://{addr}/");
    let base = ["--rate", "40", "--warmup", "0s", "--duration", "1s"];
    for trust in [vec!["--cacert", pem.to_str().unwrap()], vec!["-k"]] {
        let args: Vec<&str> = base
            .iter()
            .copied()
            .chain(trust.clone())
            .chain([url.as_str()])
            .collect();
        let r = load(&args);
        assert_eq!(r["errors"], 0, "{trust:?}: {r}");
        assert_eq!(r["statuses"]["200"], 40, "{trust:?}: {r}");
        assert_eq!(r["url"], url);
    }
    let args: Vec<&str> = base.iter().copied().chain([url.as_str()]).collect();
    let r = load(&args);
    assert_eq!(r["errors"], r["requests"], "{r}");
    let kinds = r["error_kinds"].as_object().unwrap();
    assert!(
        kinds.keys().all(|k| k.starts_with("tls: certificate")),
        "{r}"
    );
}

/// The bed's `/conns`: connections it accepted and requests that came over HTTP/2.
fn bed_conns(addr: &str) -> (u64, u64) {
    let (status, body) = gocost_testkit::procs::http_get(&format!("http://{addr}/conns"));
    assert_eq!(status, 200);
    let text = String::from_utf8_lossy(&body).to_string();
    let num = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or_else(|| panic!("{key} in {text:?}"))
    };
    (num("connections "), num("http2 "))
}

/// `--http2`: every request reaches the server as HTTP/2 (h2c with prior knowledge), several
/// at a time on each of the few connections asked for, with the latency the server gives;
/// over TLS the server must agree to h2 by ALPN.
#[cfg_attr(not(has_go), ignore = "needs Go: set $GO or put go on PATH")]
#[test]
fn http2_multiplexes_requests_over_few_connections() {
    let (_, dir, bin) = build_bed("http2");
    let (_bed, addr) = start_with_addr_file(
        &bin,
        &["-delay=50ms", "-duration=2m", "-h2c"],
        &dir.join("addr"),
    );
    let url = format!("http://{addr}/");
    // 200 req/s × 50 ms = 10 in flight: over 2 connections × 8 streams, never late.
    let r = load(&[
        "--http2",
        "--connections",
        "2",
        "--streams",
        "8",
        "--rate",
        "200",
        "--warmup",
        "0s",
        "--duration",
        "3s",
        &url,
    ]);
    assert_eq!(r["errors"], 0, "{r}");
    assert_eq!(r["statuses"]["200"], 600, "{r}");
    assert_eq!(r["protocol"], "HTTP/2", "{r}");
    assert_eq!(
        (r["connections"].as_u64(), r["streams"].as_u64()),
        (Some(2), Some(8))
    );
    assert_eq!(r["late"], 0, "16 streams for 10 in flight: {r}");
    within(
        r["latency"]["p50"].as_f64().unwrap(),
        0.050,
        0.3,
        "HTTP/2 P50",
    );
    let (conns, h2) = bed_conns(&addr);
    assert_eq!(h2, 600, "every request over HTTP/2");
    assert!(conns <= 3, "2 connections (and the /conns read): {conns}");

    // Without --streams: the in-flight requests (16 at least) spread over the connections.
    let r = load(&[
        "--http2",
        "--concurrency",
        "6",
        "--warmup",
        "0s",
        "--duration",
        "1s",
        &url,
    ]);
    assert_eq!(r["errors"], 0, "{r}");
    assert_eq!(
        (r["connections"].as_u64(), r["streams"].as_u64()),
        (Some(1), Some(6))
    );

    // HTTPS: h2 by ALPN.
    let pem = dir.join("cert.pem");
    let (_tls_bed, tls_addr) = start_with_addr_file(
        &bin,
        &["-delay=1ms", "-duration=1m", "-tls", pem.to_str().unwrap()],
        &dir.join("tls-addr"),
    );
    let r = load(&[
        "--http2",
        "--cacert",
        pem.to_str().unwrap(),
        "--rate",
        "50",
        "--warmup",
        "0s",
        "--duration",
        "1s",
        &format!("https://{tls_addr}/"),
    ]);
    assert_eq!(
        (r["errors"].as_u64(), r["statuses"]["200"].as_u64()),
        (Some(0), Some(50)),
        "{r}"
    );

    // A server without h2c: the failures say so (a protocol error, not a hang).
    let (_h1_bed, h1_addr) =
        start_with_addr_file(&bin, &["-delay=1ms", "-duration=1m"], &dir.join("h1-addr"));
    let r = load(&[
        "--http2",
        "--rate",
        "10",
        "--warmup",
        "0s",
        "--duration",
        "1s",
        "--timeout",
        "2s",
        &format!("http://{h1_addr}/"),
    ]);
    assert_eq!(r["errors"], r["requests"], "{r}");
}

/// `--store`: the run is kept by a real `gocost serve` — listed under its name with its
/// numbers, its JSON given back as `-o` wrote it (what `gocost compare` reads), its HTML
/// report served sandboxed — and a server that refuses it is an error after the report.
#[cfg_attr(not(has_go), ignore = "needs Go: set $GO or put go on PATH")]
#[test]
fn store_keeps_the_run_in_a_gocost_server() {
    let (_, dir, bin) = build_bed("store");
    let (_bed, addr) =
        start_with_addr_file(&bin, &["-delay=2ms", "-duration=1m"], &dir.join("addr"));
    let gocost = Path::new(env!("CARGO_BIN_EXE_gocost"));
    let data = dir.join("data");
    let (_srv, srv) = gocost_testkit::procs::start_gocost_args(
        gocost,
        &["--no-demo".as_ref(), "--data".as_ref(), data.as_os_str()],
    );
    let local = dir.join("run.json");
    let server = format!("http://{srv}");
    let r = load(&[
        "--rate",
        "50",
        "--warmup",
        "0s",
        "--duration",
        "2s",
        "--store",
        &server,
        "--name",
        "checkout-v2",
        "-o",
        local.to_str().unwrap(),
        &format!("http://{addr}/"),
    ]);
    assert_eq!(r["statuses"]["200"], 100, "{r}");
    let (status, body) = gocost_testkit::procs::http_get(&format!("{server}/api/v1/loadruns"));
    assert_eq!(status, 200);
    let list: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["name"], "checkout-v2");
    assert_eq!(list[0]["requests"], 100);
    assert_eq!(list[0]["latency"], r["latency"]);
    let id = list[0]["id"].as_str().unwrap();
    let (status, body) = gocost_testkit::procs::http_get(&format!("{server}/api/v1/loadruns/{id}"));
    assert_eq!(status, 200);
    let kept: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&local).unwrap()).unwrap();
    assert_eq!(kept, written, "the kept run is the -o file");
    let resp = gocost_testkit::procs::http_request(
        "GET",
        &format!("{server}/api/v1/loadruns/{id}/report"),
        &[],
        b"",
    );
    assert_eq!(resp.status, 200);
    assert!(
        resp.text().contains("<svg"),
        "the HTML report with its charts"
    );
    assert_eq!(
        resp.header("content-security-policy"),
        Some("sandbox allow-scripts")
    );

    // A bad name: the report is still printed, then the refusal, and the exit is non-zero.
    let out = Command::new(gocost)
        .args([
            "load",
            "--rate",
            "10",
            "--warmup",
            "0s",
            "--duration",
            "1s",
            "--store",
        ])
        .args([
            server.as_str(),
            "--name",
            "no spaces",
            &format!("http://{addr}/"),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("Requests:"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("400") && err.contains("name"), "{err}");
}
