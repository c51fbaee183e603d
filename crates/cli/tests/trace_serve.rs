//! Continuous execution traces through a real `gocost serve`: a real Go service
//! (testdata/go/traced) traced on a schedule, the traces stored (downloads are what Go
//! wrote; `go tool trace` reads them), their analyses as series and on `/metrics`, uploads
//! through the CLI, all kept across a restart. Skipped with a message without Go (a failure
//! in CI).

use gocost_testkit::procs::enc;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use gocost_testkit::procs::{
    fresh_dir, go_build, http_get, http_request, start_gocost, start_with_addr_file, wait_for,
};

fn gocost_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_gocost"))
}

fn json(url: &str) -> serde_json::Value {
    let (code, body) = http_get(url);
    assert_eq!(code, 200, "{url}: {}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).expect("JSON")
}

fn traces(base: &str) -> Vec<serde_json::Value> {
    json(&format!("{base}/api/v1/traces?from=now-1h"))
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn config(dir: &Path, target: &str) -> PathBuf {
    let c = dir.join("gocost.toml");
    std::fs::write(
        &c,
        format!(
            "[storage]\npath = \"{}\"\n\n[[scrape]]\njob = \"traced\"\ntargets = [\"{target}\"]\n\
             interval = \"15s\"\nprofiles = [\"trace\"]\ntrace = {{ every = \"3s\", seconds = 1 }}\n",
            dir.join("data").display()
        ),
    )
    .expect("config");
    c
}

#[cfg_attr(not(has_go), ignore = "needs Go: set $GO or put go on PATH")]
#[test]
fn traces_scraped_stored_analysed_and_uploaded() {
    let go = gocost_testkit::go_toolchain();
    let dir = fresh_dir("trace-serve", "scrape");
    let bin = dir.join("traced");
    go_build(
        &go,
        &gocost_testkit::repo_root().join("testdata/go/traced"),
        &bin,
    );
    let (_svc, target) = start_with_addr_file(&bin, &[], &dir.join("addr"));
    let cfg = config(&dir, &target);
    let data = dir.join("data");
    let (server, addr) = start_gocost(&gocost_bin(), &cfg, &data);
    let base = format!("http://{addr}");

    // The schedule: one trace every 3 s (after a per-target offset).
    wait_for("two scraped traces", Duration::from_secs(120), || {
        traces(&base).len() >= 2
    });
    let list = traces(&base);
    let first = &list[0];
    assert_eq!(first["labels"]["job"], "traced");
    assert_eq!(first["labels"]["instance"], target.as_str());
    let id = first["id"].as_str().expect("id").to_string();

    // The download is a trace Go's own tool reads.
    let (code, bytes) = http_get(&format!("{base}/api/v1/trace/{id}"));
    assert_eq!(code, 200);
    assert_eq!(bytes.len() as u64, first["bytes"].as_u64().expect("bytes"));
    assert!(bytes.starts_with(b"go 1."), "a Go trace");
    let file = dir.join("downloaded.trace");
    std::fs::write(&file, &bytes).expect("write");
    let parsed = Command::new(&go)
        .args(["tool", "trace", "-d=parsed"])
        .arg(&file)
        .output()
        .expect("go tool trace");
    assert!(
        parsed.status.success() && !parsed.stdout.is_empty(),
        "go tool trace -d=parsed: {}",
        String::from_utf8_lossy(&parsed.stderr)
    );

    // Its analyses, as series: quantiles of scheduler latency and pauses, MMU, assists.
    for (name, label) in [
        ("go_trace_sched_latency_seconds", "quantile"),
        ("go_trace_stw_seconds", "quantile"),
        ("go_trace_mmu", "window"),
        ("go_trace_gc_assist_fraction", ""),
        ("go_trace_stw_pause_seconds", "reason"),
    ] {
        let q = enc(&format!("{{__name__=\"{name}\",job=\"traced\"}}"));
        let v = json(&format!("{base}/api/v1/runtime?query={q}&from=now-1h"));
        let series = v.as_array().expect("series");
        assert!(!series.is_empty(), "no {name} series");
        if !label.is_empty() {
            assert!(
                series.iter().all(|s| s["labels"][label].is_string()),
                "{name}: {v}"
            );
        }
    }
    // The summary equals what the CLI computes from the downloaded file.
    let summary = json(&format!("{base}/api/v1/trace/{id}/summary"));
    let cli = Command::new(gocost_bin())
        .args(["trace", "summary", "--json"])
        .arg(&file)
        .output()
        .expect("gocost trace summary");
    let cli: serde_json::Value = serde_json::from_slice(&cli.stdout).expect("JSON");
    for k in [
        "stw",
        "sched_latency",
        "mmu",
        "blocking",
        "gomaxprocs",
        "assist_ns",
    ] {
        assert_eq!(summary[k], cli[k], "{k}");
    }
    let tl = json(&format!("{base}/api/v1/trace/{id}/timeline"));
    assert!(tl["slices"].as_array().is_some_and(|s| !s.is_empty()));
    assert!(tl["procs"].as_array().is_some_and(|p| !p.is_empty()));
    assert!(
        tl["stw"].as_array().is_some_and(|p| !p.is_empty()),
        "tracing itself stops the world"
    );

    // /metrics: quantiles per target.
    let (code, m) = http_get(&format!("{base}/metrics"));
    assert_eq!(code, 200);
    let m = String::from_utf8_lossy(&m);
    for q in ["0.5", "0.9", "0.99", "1"] {
        let want = format!(
            "gocost_sched_latency_seconds{{instance=\"{target}\",job=\"traced\",quantile=\"{q}\"}} "
        );
        assert!(m.contains(&want), "{want} missing");
    }
    assert!(m.contains("# TYPE gocost_gc_stw_seconds gauge"));

    // Uploads: the CLI sends a trace; the download is the same bytes.
    let golden = gocost_testkit::repo_root().join("testdata/traces/go1.27.trace");
    let up = Command::new(gocost_bin())
        .args([
            "trace", "upload", "--server", &base, "--job", "laptop", "--label", "env=dev",
        ])
        .arg(&golden)
        .output()
        .expect("gocost trace upload");
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
    let answer: serde_json::Value = serde_json::from_slice(&up.stdout).expect("JSON");
    let up_id = answer["id"].as_str().expect("id").to_string();
    let (code, back) = http_get(&format!("{base}/api/v1/trace/{up_id}"));
    assert_eq!(code, 200);
    assert_eq!(back, std::fs::read(&golden).expect("golden"));
    let only = json(&format!(
        "{base}/api/v1/traces?query={}&from=now-1h",
        enc("trace{job=\"laptop\"}")
    ));
    assert_eq!(only.as_array().map(Vec::len), Some(1));
    assert_eq!(only[0]["labels"]["env"], "dev");

    // Bad uploads are refused whole, naming the problem.
    let cut = std::fs::read(&golden).expect("golden");
    let r = http_request(
        "POST",
        &format!("{base}/api/v1/traces?job=bad"),
        &[],
        &cut[..3000],
    );
    assert_eq!(r.status, 400);
    assert!(r.text().contains("parsing trace: byte "), "{}", r.text());
    let r = http_request("POST", &format!("{base}/api/v1/traces"), &[], &cut);
    assert_eq!(r.status, 400);
    assert!(r.text().contains("missing job"), "{}", r.text());
    let (code, _) = http_get(&format!("{base}/api/v1/trace/..%2F..%2Fetc"));
    assert_eq!(code, 404);
    let (code, _) = http_get(&format!("{base}/api/v1/trace/0000000000000000-00000000"));
    assert_eq!(code, 404);

    // Everything is still there after a restart.
    let before = traces(&base).len();
    drop(server);
    std::fs::write(&cfg, "[storage]\n").expect("config without scrape jobs");
    let (_server, addr) = start_gocost(&gocost_bin(), &cfg, &data);
    let base = format!("http://{addr}");
    let after = traces(&base);
    assert!(
        after.len() >= before,
        "{} traces before, {} after",
        before,
        after.len()
    );
    let (code, again) = http_get(&format!("{base}/api/v1/trace/{up_id}"));
    assert_eq!(code, 200);
    assert_eq!(again, back);
    let (code, again) = http_get(&format!("{base}/api/v1/trace/{id}"));
    assert_eq!(code, 200);
    assert_eq!(again, bytes);
}
