//! The web UI in headless Chromium against a real `gocost serve` that scrapes real Go
//! services: two instances of `testdata/go/demo` (profiles, allocs and expvar runtime
//! metrics; priced by a `[cost]` section and watched by an alert rule that fires), the
//! goroutine-leak test bed, `testdata/go/regress` deployed as a slower build during the test
//! (a regression), a target that is down (for the targets page), and a synthetic target serving one real
//! goroutine profile whose flame graph has 51,842 nodes (the 50k-node render measurement),
//! and `testdata/go/traced` with execution traces every 3 s (the Traces view and the trace
//! markers and charts of Explore, Runtime and Insights).
//! The browser half is `ui/tests/ui.test.mjs` (playwright-core driving Debian's chromium);
//! it checks every view against the API, saves screenshots and downloads to
//! `target/ui-screenshots/`, and prints render and interaction times. This side checks the
//! downloaded pprof with `gocost top`.
//!
//! Needs Go, node with `ui/tests/node_modules` (`npm ci` there) and `/usr/bin/chromium`
//! (or `$CHROMIUM`): without them the test is reported as ignored (skipped), unless `CI` is set. With
//! `GOCOST_UI_HOLD=<seconds>` the setup stays up that long first (its URL is printed), to look
//! at the page or rerun the script by hand.

use gocost_testkit::procs::build_regress;
use gocost_testkit::procs::enc;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use gocost_testkit::procs::{Proc, go_build, http_get, start_with_addr_file};

fn root() -> PathBuf {
    gocost_testkit::repo_root()
}

/// What the browser half needs (Go, Chromium, the script).
fn prerequisites() -> (PathBuf, PathBuf, PathBuf) {
    let go = gocost_testkit::go_toolchain();
    gocost_testkit::tools::require(&gocost_testkit::tools::BROWSER);
    let chromium = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    (go, chromium, root().join("ui/tests/ui.test.mjs"))
}

fn start_demo(go: &Path, dir: &Path, n: usize) -> Vec<(Proc, String)> {
    let bin = dir.join("demo");
    go_build(go, &root().join("testdata/go/demo"), &bin);
    (0..n)
        .map(|i| start_with_addr_file(&bin, &["-duration=15m"], &dir.join(format!("addr{i}"))))
        .collect()
}

/// A goroutine profile of `runtime.goexit → main.main → 40 services → 35 layers → 36 leaves`:
/// 50,400 stacks, a flame graph of 1 + 1 + 40 + 1,400 + 50,400 = 51,842 nodes. Built with
/// gocost-pprof's model and encoder, so it is a real, valid profile.proto.
fn synthetic_profile() -> Vec<u8> {
    use gocost_pprof::{Function, Line, Location, Profile, Sample, ValueType};
    let mut names = vec!["runtime.goexit".to_string(), "main.main".to_string()];
    names.extend((0..40).map(|i| format!("example.com/synth/svc{i:02}.(*Handler).Serve")));
    names.extend((0..35).map(|j| format!("example.com/synth/layer{j:02}.Process")));
    names.extend((0..36).map(|k| format!("example.com/synth/leaf{k:02}.Compute")));
    let function: Vec<Function> = names
        .iter()
        .enumerate()
        .map(|(i, n)| Function {
            id: i as u64 + 1,
            name: n.as_str().into(),
            system_name: n.as_str().into(),
            filename: "synth.go".into(),
            ..Default::default()
        })
        .collect();
    let location: Vec<Location> = (0..names.len())
        .map(|i| Location {
            id: i as u64 + 1,
            address: 0x1000 + i as u64 * 16,
            line: vec![Line {
                function: i as u32,
                line: 10 + i as i64,
                column: 0,
            }],
            ..Default::default()
        })
        .collect();
    let mut sample = Vec::with_capacity(50_400);
    for i in 0..40u32 {
        for j in 0..35u32 {
            for k in 0..36u32 {
                sample.push(Sample {
                    // Leaf first.
                    location: vec![2 + 40 + 35 + k, 2 + 40 + j, 2 + i, 1, 0],
                    value: vec![1 + i64::from((i * 31 + j * 17 + k * 7) % 50)],
                    label: vec![],
                });
            }
        }
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;
    let p = Profile {
        sample_type: vec![ValueType::new("goroutine", "count")],
        period_type: ValueType::new("goroutine", "count"),
        period: 1,
        time_nanos: now,
        function,
        location,
        sample,
        ..Default::default()
    };
    gocost_pprof::encode(&p)
}

/// Serves `body` as every response on 127.0.0.1 (a fake pprof endpoint) until the test ends.
fn serve_bytes(body: Vec<u8>) -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let body = std::sync::Arc::new(body);
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut c) = conn else { continue };
            let body = body.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let _ = c.set_read_timeout(Some(Duration::from_secs(5)));
                let _ = c.read(&mut buf);
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = c.write_all(head.as_bytes());
                let _ = c.write_all(&body);
            });
        }
    });
    addr
}

fn start_gocost(config: &Path, data: &Path) -> (Proc, String) {
    gocost_testkit::procs::start_gocost(Path::new(env!("CARGO_BIN_EXE_gocost")), config, data)
}

/// The JSON at `url`, or null when the request fails.
fn json(url: &str) -> serde_json::Value {
    match http_get(url) {
        (200, body) => serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
        _ => serde_json::Value::Null,
    }
}

fn wait_for(what: &str, f: impl FnMut() -> bool) {
    gocost_testkit::procs::wait_for(what, Duration::from_secs(90), f)
}

#[cfg_attr(
    not(has_browser),
    ignore = "needs Go, node, Chromium (apt-get install chromium) and `npm ci` in ui/tests"
)]
#[test]
fn web_ui_in_headless_chromium() {
    let (go, chromium, script) = prerequisites();
    let dir = std::env::temp_dir().join(format!("gocost-ui-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let demos = start_demo(&go, &dir, 2);
    // The goroutine-leak test bed (four leaks, five decoys; rates ×4) for the Leaks view.
    let bed_bin = dir.join("leaks");
    go_build(&go, &root().join("testdata/go/leaks"), &bed_bin);
    let (_bed, bed) = start_with_addr_file(
        &bed_bin,
        &["-rate=4", "-nap=12s", "-duration=15m"],
        &dir.join("addr-leaks"),
    );
    // A service that is deployed during the test (the regression test bed, restarted on its
    // address as a build with `main.checksum` twice as slow) for the Insights regressions.
    let (v1, v2) = (dir.join("regress-1.0"), dir.join("regress-1.1"));
    build_regress(&go, &v1, "1.0", "");
    build_regress(&go, &v2, "1.1", "slow");
    let (deploy1, deploy) = start_with_addr_file(
        &v1,
        &["-addr=127.0.0.1:0", "-duration=15m"],
        &dir.join("addr-deploy"),
    );
    // A service traced every 3 s (and CPU-profiled), without expvar: the Traces view, trace
    // markers on Explore's timeline, scheduler latency and MMU on Runtime, and Insights' GC
    // pauses from the traces.
    let traced_bin = dir.join("traced");
    go_build(&go, &root().join("testdata/go/traced"), &traced_bin);
    let (_traced, traced) =
        start_with_addr_file(&traced_bin, &["-duration=15m"], &dir.join("addr-traced"));
    let synth = serve_bytes(synthetic_profile());
    let config = dir.join("gocost.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[storage]
retention = "1d"

[cost]
cpu_per_core_hour = 0.05
memory_per_gib_hour = 0.01
currency = "EUR"

[alerting]
interval = "2s"

[[alert]]
name = "demo over budget"
when = "cost_per_month"
query = '{{job="demo"}}'
above = 0
window = "10m"

[[scrape]]
job = "demo"
targets = ["{}", "{}"]
interval = "2s"
cpu_window = "1s"
profiles = ["cpu", "heap", "allocs", "goroutine", "mutex"]
metrics = ["expvar"]

[[scrape]]
job = "deploy"
targets = ["{deploy}"]
interval = "2s"
cpu_window = "2s"
profiles = ["cpu"]

[[scrape]]
job = "traced"
targets = ["{traced}"]
interval = "2s"
cpu_window = "1s"
profiles = ["cpu", "trace"]
trace = {{ every = "3s", seconds = 1 }}

[[scrape]]
job = "synthetic"
targets = ["{synth}"]
interval = "10s"
profiles = ["goroutine"]

[[scrape]]
job = "leaky"
targets = ["{bed}"]
interval = "1s"
profiles = ["goroutine"]

[[scrape]]
job = "down"
targets = ["127.0.0.1:1"]
interval = "2s"
profiles = ["goroutine"]

[[scrape]]
job = "noexpvar"
targets = ["{bed}"]
interval = "2s"
profiles = []
metrics = ["expvar"]
"#,
            demos[0].1, demos[1].1
        ),
    )
    .unwrap();
    let started = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let (_gocost, addr) = start_gocost(&config, &dir.join("data"));
    let base = format!("http://{addr}");

    // Enough data for two halves of a range to compare: ≥ 10 cpu profiles per instance.
    let cpu = enc(r#"cpu{job="demo"}"#);
    wait_for("cpu profiles", || {
        let tl = json(&format!(
            "{base}/api/v1/timeline?query={cpu}&from=now-10m&step=1s"
        ));
        tl["points"].as_array().is_some_and(|p| p.len() >= 10)
    });
    // The deploy: once the first build has enough profiles, it restarts as the slower one.
    let regressions = || {
        json(&format!(
            "{base}/api/v1/regressions?query={}&from=now-10m",
            enc(r#"cpu{job="deploy"}"#)
        ))
    };
    wait_for("10 profiles of the first build", || {
        regressions()[0]["profiles"]
            .as_u64()
            .is_some_and(|n| n >= 10)
    });
    drop(deploy1);
    let _ = std::fs::remove_file(dir.join("addr-deploy"));
    let (_deploy2, again) = start_with_addr_file(
        &v2,
        &[&format!("-addr={deploy}"), "-duration=15m"],
        &dir.join("addr-deploy"),
    );
    assert_eq!(again, deploy);
    wait_for("the synthetic profile and runtime metrics", || {
        let g = json(&format!(
            "{base}/api/v1/top?query={}&from=now-10m&nodecount=1",
            enc(r#"goroutine{job="synthetic"}"#)
        ));
        let heap = json(&format!(
            "{base}/api/v1/runtime?query={}&from=now-10m",
            enc(r#"{__name__="go_memstats_heap_alloc_bytes",job="demo"}"#)
        ));
        g["rows"].is_array() && heap.as_array().is_some_and(|a| !a.is_empty())
    });
    wait_for("the deploy compared", || {
        regressions()[0]["changes"][0]["compared"] == true
    });
    wait_for("allocs profiles and a firing alert", || {
        let gc = json(&format!(
            "{base}/api/v1/gc?query={}&from=now-10m",
            enc(r#"{job="demo"}"#)
        ));
        let alerts = json(&format!("{base}/api/v1/alerts"));
        gc[0]["allocation"].is_object()
            && alerts[0]["firing"]
                .as_array()
                .is_some_and(|f| !f.is_empty())
    });
    wait_for("three execution traces", || {
        json(&format!(
            "{base}/api/v1/traces?query={}&from=now-10m",
            enc(r#"trace{job="traced"}"#)
        ))
        .as_array()
        .is_some_and(|t| t.len() >= 3)
    });
    wait_for("the leaks of the test bed", || {
        let l = json(&format!(
            "{base}/api/v1/leaks?query={}&from=now-10m&to=now-6s",
            enc(r#"goroutine{job="leaky"}"#)
        ));
        l[0]["findings"].as_array().is_some_and(|f| f.len() == 4)
    });

    if let Some(secs) = std::env::var_os("GOCOST_UI_HOLD") {
        // A development aid: keep this setup up to drive the page (or the script) by hand.
        eprintln!("gocost UI test setup: {base}/ (started {started}); holding {secs:?} s");
        let secs = secs.to_str().and_then(|s| s.parse().ok()).unwrap_or(600);
        std::thread::sleep(Duration::from_secs(secs));
    }
    let out = root().join("target/ui-screenshots");
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).unwrap();
    let st = Command::new("node")
        .arg(&script)
        .arg(&base)
        .arg(&out)
        .arg(started.to_string())
        .env("CHROMIUM", &chromium)
        .current_dir(root().join("ui/tests"))
        .status()
        .unwrap();
    assert!(
        st.success(),
        "the browser tests failed (screenshots in {})",
        out.display()
    );

    // The pprof the page downloaded is a profile gocost (and so go tool pprof) reads.
    let pprof = out.join("downloads/profile.pb.gz");
    let bytes = std::fs::read(&pprof).unwrap();
    assert_eq!(&bytes[..2], &[0x1f, 0x8b], "gzip");
    let top = Command::new(env!("CARGO_BIN_EXE_gocost"))
        .arg("top")
        .arg(&pprof)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&top.stdout);
    assert!(
        top.status.success() && text.contains("Type: cpu") && text.contains("main."),
        "{text}{}",
        String::from_utf8_lossy(&top.stderr)
    );
    if let Ok(t) = std::fs::read_to_string(out.join("timings.txt")) {
        eprintln!("{t}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
