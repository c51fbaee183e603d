//! `gocost leaks` against a real Go service with known goroutine leaks and decoys
//! (`testdata/go/leaks`, rates ×4 so that 40 s of scrapes are enough): every leak is found
//! with its blocking kind and about its rate, no decoy is, and a `debug=2` dump and Go's own
//! `goroutineleak` profile add the creating site and proof.
//!
//! Go is found through `$GO` or `go` on `PATH`; without it the test is reported as ignored, except in CI.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use gocost_testkit::procs::{Proc, go_build, http_get, start_gocost, start_with_addr_file};

fn tmp(name: &str) -> PathBuf {
    gocost_testkit::procs::fresh_dir("leaks", name)
}

fn get(url: &str) -> Vec<u8> {
    let (code, body) = http_get(url);
    assert_eq!(code, 200, "{url}: {}", String::from_utf8_lossy(&body));
    body
}

/// Builds and starts the test bed (rates ×4, naps of 12 s) in `dir`.
fn start_bed(go: &Path, dir: &Path) -> (Proc, String) {
    let bin = dir.join("leaks");
    go_build(
        go,
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/go/leaks"),
        &bin,
    );
    start_with_addr_file(
        &bin,
        &["-rate=4", "-nap=12s", "-duration=3m"],
        &dir.join("addr"),
    )
}

fn leaks(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gocost"))
        .arg("leaks")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

/// (function, blocking kind, goroutines per second at -rate=4)
const LEAKS: [(&str, &str, f64); 4] = [
    ("main.watchLoop", "chan receive", 4.0),
    ("main.publish", "chan send", 2.0),
    ("main.waitForAll", "sync.WaitGroup.Wait", 2.0),
    ("main.lockForever", "sync.Mutex.Lock", 1.0),
];

fn json(o: &Output) -> Vec<serde_json::Value> {
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice::<Vec<serde_json::Value>>(&o.stdout).unwrap()
}

#[cfg_attr(not(has_go), ignore = "needs Go: set $GO or put go on PATH")]
#[test]
fn finds_every_leak_and_no_decoy() {
    let go = gocost_testkit::go_toolchain();
    let dir = tmp("bed");
    let (_bed, addr) = start_bed(&go, &dir);

    // A goroutine profile every 2 s for 40 s, named out of time order on purpose.
    let mut files = Vec::new();
    let start = Instant::now();
    for i in 0..21u32 {
        let due = Duration::from_secs(2 * u64::from(i));
        if let Some(wait) = due.checked_sub(start.elapsed()) {
            std::thread::sleep(wait);
        }
        let name = format!("g{:02}.pb.gz", (i * 8) % 21);
        std::fs::write(
            dir.join(&name),
            get(&format!("http://{addr}/debug/pprof/goroutine")),
        )
        .unwrap();
        files.push(name);
    }
    let dump = get(&format!("http://{addr}/debug/pprof/goroutine?debug=2"));
    std::fs::write(dir.join("dump.txt"), &dump).unwrap();
    let proven = get(&format!("http://{addr}/debug/pprof/goroutineleak"));
    std::fs::write(dir.join("leak.pb.gz"), &proven).unwrap();

    let mut args: Vec<&str> = vec!["--json"];
    args.extend(files.iter().map(String::as_str));
    let found = json(&leaks(&args, &dir));
    let names: Vec<&str> = found
        .iter()
        .map(|f| f["function"].as_str().unwrap())
        .collect();
    let mut want: Vec<&str> = LEAKS.iter().map(|l| l.0).collect();
    let mut got = names.clone();
    want.sort();
    got.sort();
    assert_eq!(got, want, "from growth alone: {found:#?}");
    for (func, kind, per_sec) in LEAKS {
        let f = found.iter().find(|f| f["function"] == func).unwrap();
        assert_eq!(f["blocking"], kind, "{f:#}");
        assert_eq!(f["evidence"], serde_json::json!(["growth"]), "{f:#}");
        let rate = f["rate_per_hour"].as_f64().unwrap() / 3600.0;
        assert!(
            (rate - per_sec).abs() <= 0.25 * per_sec,
            "{func}: {rate}/s, want about {per_sec}/s"
        );
        let count = f["count"].as_i64().unwrap();
        assert!(count as f64 >= 30.0 * per_sec, "{func}: {count} goroutines");
        let c = f["confidence"].as_f64().unwrap();
        assert!(c > 0.5 && c <= 1.0, "{func}: confidence {c}");
        assert!(f["first_seen"].as_str().unwrap().ends_with('Z'));
    }

    // The dump says who created them; Go's detector proves the unreachable ones.
    args.extend(["dump.txt", "leak.pb.gz"]);
    let found = json(&leaks(&args, &dir));
    assert_eq!(found.len(), 4, "{found:#?}");
    for (func, _, _) in LEAKS {
        let f = found.iter().find(|f| f["function"] == func).unwrap();
        let created = f["created_by"].as_str().unwrap_or_default();
        assert!(
            created.contains("main.go:"),
            "{func}: created_by {created:?}"
        );
        let proven = f["evidence"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e == "runtime");
        // The mutex is reachable from main's stack: Go cannot prove that one.
        assert_eq!(proven, func != "main.lockForever", "{f:#}");
        if proven {
            assert_eq!(f["confidence"], 1.0);
        }
    }

    // The table for people.
    let o = leaks(&files.iter().map(String::as_str).collect::<Vec<_>>(), &dir);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.starts_with("FUNCTION "), "{text}");
    assert_eq!(text.lines().count(), 5, "{text}");
    assert!(
        text.contains("main.publish") && text.contains("chan send"),
        "{text}"
    );
}

#[test]
fn bad_input_is_exit_2_and_names_the_file() {
    let dir = tmp("bad");
    let profiles = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/profiles");
    let heap = std::fs::read_dir(&profiles)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| {
            let n = p.file_name().unwrap().to_string_lossy().into_owned();
            n.starts_with("heap") && n.ends_with(".pb.gz")
        })
        .unwrap();
    std::fs::copy(&heap, dir.join("heap.pb.gz")).unwrap();
    std::fs::write(dir.join("junk"), b"\x1f\x8b\x08\x00garbage").unwrap();
    std::fs::write(
        dir.join("dump.txt"),
        "goroutine 1 [running]:\nnot a frame\n",
    )
    .unwrap();
    for (file, needle) in [
        ("heap.pb.gz", "reads goroutine and goroutineleak profiles"),
        ("junk", "junk: parsing profile"),
        ("dump.txt", "dump.txt: line 2"),
        ("missing.pb.gz", "missing.pb.gz"),
    ] {
        let o = leaks(&[file], &dir);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{file}: {err}");
        assert!(err.contains(needle), "{file}: {err}");
    }
}

/// The same analysis through `gocost serve`: it scrapes goroutine and goroutineleak profiles
/// and `/api/v1/leaks` reports per target.
#[cfg_attr(not(has_go), ignore = "needs Go: set $GO or put go on PATH")]
#[test]
fn serve_reports_leaks_per_target() {
    let go = gocost_testkit::go_toolchain();
    let dir = tmp("serve");
    let (_bed, addr) = start_bed(&go, &dir);
    let config = dir.join("gocost.toml");
    std::fs::write(
        &config,
        format!(
            "[[scrape]]\njob = \"bed\"\ntargets = [\"{addr}\"]\ninterval = \"2s\"\n\
             profiles = [\"goroutine\", \"goroutineleak\"]\n"
        ),
    )
    .unwrap();
    let (_gocost, api) = start_gocost(
        Path::new(env!("CARGO_BIN_EXE_gocost")),
        &config,
        &dir.join("data"),
    );
    let url =
        format!("http://{api}/api/v1/leaks?query=goroutine%7Bjob%3D%22bed%22%7D&from=now-10m");
    let start = Instant::now();
    let found = loop {
        std::thread::sleep(Duration::from_secs(5));
        let (code, body) = http_get(&url);
        if code == 200 {
            let doc: serde_json::Value = serde_json::from_slice(&body).unwrap();
            let series = doc.as_array().unwrap();
            assert_eq!(series.len(), 1, "{doc:#}");
            assert_eq!(series[0]["labels"]["job"], "bed");
            let f = series[0]["findings"].as_array().unwrap().clone();
            let growth = f
                .iter()
                .filter(|x| {
                    x["evidence"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|e| e == "growth")
                })
                .count();
            if growth == 4 {
                break f;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no four leaks by growth within 2 minutes: {code} {}",
            String::from_utf8_lossy(&body)
        );
    };
    let mut names: Vec<&str> = found
        .iter()
        .map(|f| f["function"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "main.lockForever",
            "main.publish",
            "main.waitForAll",
            "main.watchLoop"
        ],
        "{found:#?}"
    );
    for f in &found {
        let proven = f["evidence"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e == "runtime");
        assert_eq!(proven, f["function"] != "main.lockForever", "{f:#}");
    }
    let (code, body) = http_get(&format!("http://{api}/api/v1/leaks?query=heap"));
    assert_eq!(code, 400, "{}", String::from_utf8_lossy(&body));

    // The same leaks as gauges for Prometheus and Alertmanager.
    let metrics = String::from_utf8(get(&format!("http://{api}/metrics"))).unwrap();
    for f in &found {
        let func = f["function"].as_str().unwrap();
        let line = metrics
            .lines()
            .find(|l| {
                l.starts_with("gocost_goroutine_leak_rate_per_hour{")
                    && l.contains(&format!("function=\"{func}\""))
            })
            .unwrap_or_else(|| panic!("no rate gauge for {func}:\n{metrics}"));
        assert!(
            line.contains("job=\"bed\"") && line.contains("blocking=\""),
            "{line}"
        );
        let v: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        assert!(v > 1000.0, "{line}");
    }
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("gocost_goroutine_leak_confidence{")
                && l.contains("main.watchLoop")
                && l.ends_with(" 1")),
        "{metrics}"
    );
}

/// Heap growth on a real Go service (`testdata/go/heapgrow`): two sites whose heap in use
/// grows, three that look busy but do not (a cache that warms up, a ring buffer, garbage).
/// The CLI reads heap profiles the test saved; `gocost serve`, scraping the same service,
/// answers `/api/v1/heap_growth` and exports the gauges.
#[cfg_attr(not(has_go), ignore = "needs Go: set $GO or put go on PATH")]
#[test]
fn heap_growth_names_the_growing_sites() {
    let go = gocost_testkit::go_toolchain();
    let dir = tmp("heap");
    let bin = dir.join("heapgrow");
    go_build(
        &go,
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/go/heapgrow"),
        &bin,
    );
    let (_bed, addr) = start_with_addr_file(&bin, &["-duration=3m"], &dir.join("addr"));
    let config = dir.join("gocost.toml");
    std::fs::write(
        &config,
        format!(
            "[[scrape]]\njob = \"heapy\"\ntargets = [\"{addr}\"]\ninterval = \"2s\"\nprofiles = [\"heap\"]\n"
        ),
    )
    .unwrap();
    let (_gocost, api) = start_gocost(
        Path::new(env!("CARGO_BIN_EXE_gocost")),
        &config,
        &dir.join("data"),
    );
    let mut files = Vec::new();
    let start = Instant::now();
    for i in 0..21u64 {
        if let Some(wait) = Duration::from_secs(2 * i).checked_sub(start.elapsed()) {
            std::thread::sleep(wait);
        }
        let name = format!("h{i:02}.pb.gz");
        std::fs::write(
            dir.join(&name),
            get(&format!("http://{addr}/debug/pprof/heap")),
        )
        .unwrap();
        files.push(name);
    }
    let want = ["main.cacheForever", "main.remember"];
    let sites = |found: &[serde_json::Value]| {
        let mut s: Vec<String> = found
            .iter()
            .map(|f| f["site"].as_str().unwrap().to_string())
            .collect();
        s.sort();
        s
    };

    let mut args = vec!["--json"];
    args.extend(files.iter().map(String::as_str));
    let o = Command::new(env!("CARGO_BIN_EXE_gocost"))
        .arg("heap-growth")
        .args(&args)
        .current_dir(&dir)
        .output()
        .unwrap();
    let found = json(&o);
    assert_eq!(sites(&found), want, "{found:#?}");
    for f in &found {
        // Both grow by hundreds of KiB a second; 4 MiB/h is the reporting floor.
        let rate = f["rate_bytes_per_hour"].as_f64().unwrap();
        assert!(rate > 100.0 * 1024.0 * 1024.0, "{f:#}");
        assert!(f["inuse_bytes"].as_i64().unwrap() > 4 << 20, "{f:#}");
    }

    let url =
        format!("http://{api}/api/v1/heap_growth?query=heap%7Bjob%3D%22heapy%22%7D&from=now-10m");
    // gocost's own scrapes run on their own clock: poll until they show both sites (they
    // keep growing), then check exactly what the API says.
    let start = Instant::now();
    let doc = loop {
        let doc: serde_json::Value = serde_json::from_slice(&get(&url)).unwrap();
        let both = doc[0]["findings"]
            .as_array()
            .is_some_and(|f| sites(f).len() >= want.len());
        if both || start.elapsed() > Duration::from_secs(90) {
            break doc;
        }
        std::thread::sleep(Duration::from_secs(3));
    };
    let series = doc.as_array().unwrap();
    assert_eq!(series.len(), 1, "{doc:#}");
    assert_eq!(
        sites(series[0]["findings"].as_array().unwrap()),
        want,
        "{doc:#}"
    );
    let metrics = String::from_utf8(get(&format!("http://{api}/metrics"))).unwrap();
    for site in want {
        assert!(
            metrics
                .lines()
                .any(|l| l.starts_with("gocost_heap_growth_bytes_per_hour{")
                    && l.contains("job=\"heapy\"")
                    && l.contains(&format!("site=\"{site}\""))),
            "no gauge for {site}:\n{metrics}"
        );
    }
    let (code, _) = http_get(&format!("http://{api}/api/v1/heap_growth?query=cpu"));
    assert_eq!(code, 400);
}
