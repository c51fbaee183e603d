//! What gocost shows for goroutines and heap in use is what the service holds: a real Go
//! program (`testdata/go/steady`) parks a known number of goroutines and keeps a known
//! number of bytes, and says so at `/held`; `gocost serve` scrapes it every second, and the
//! API's profile, top, flame and timeline over the range — and `go tool pprof` reading the
//! API — agree with `/held` within 5 %, however many snapshots the range holds.
//!
//! Go is found through `$GO` or `go` on `PATH`; without it the test is reported as ignored, except in CI.

use gocost_testkit::procs::enc;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use gocost_testkit::procs::{go_build, http_get, start_gocost, start_with_addr_file, wait_for};

fn json(url: &str) -> serde_json::Value {
    let (code, body) = http_get(url);
    assert_eq!(code, 200, "{url}: {}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).unwrap()
}

fn near(got: f64, want: f64, what: &str) {
    assert!(
        (got - want).abs() <= 0.05 * want,
        "{what}: gocost shows {got}, the service holds {want}"
    );
}

#[cfg_attr(not(has_go), ignore = "needs Go: set $GO or put go on PATH")]
#[test]
fn goroutines_and_heap_over_a_range_are_what_the_service_holds() {
    let go = gocost_testkit::go_toolchain();
    let dir = gocost_testkit::procs::fresh_dir("truth", "steady");
    let bin = dir.join("steady");
    go_build(
        &go,
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/go/steady"),
        &bin,
    );
    let (_bed, addr) = start_with_addr_file(
        &bin,
        &["-goroutines=2900", "-heap=32", "-duration=3m"],
        &dir.join("addr"),
    );
    let config = dir.join("gocost.toml");
    std::fs::write(
        &config,
        format!(
            "[[scrape]]\njob = \"steady\"\ntargets = [\"{addr}\"]\ninterval = \"1s\"\nprofiles = [\"goroutine\", \"heap\"]\n"
        ),
    )
    .unwrap();
    let (_gocost, api) = start_gocost(
        Path::new(env!("CARGO_BIN_EXE_gocost")),
        &config,
        &dir.join("data"),
    );
    let held = json(&format!("http://{addr}/held"));
    let goroutines = held["goroutines"].as_f64().unwrap();
    let heap = held["heap_bytes"].as_f64().unwrap();
    assert_eq!(held["parked"], 2900);

    let g = enc(r#"goroutine{job="steady"}"#);
    let h = enc(r#"heap{job="steady"}"#);
    let range = "from=now-5m";
    // At least eight snapshots of each: a sum would be eight times the truth.
    let count = |q: &str| {
        let tl = json(&format!(
            "http://{api}/api/v1/timeline?query={q}&{range}&step=1h"
        ));
        tl["counts"]
            .as_array()
            .map_or(0, |c| c.iter().filter_map(|n| n.as_u64()).sum::<u64>())
    };
    wait_for("8 scrapes of each kind", Duration::from_secs(90), || {
        http_get(&format!("http://{api}/api/v1/series")).0 == 200
            && count(&g) >= 8
            && count(&h) >= 8
    });
    let n = count(&g) as f64;

    let top = json(&format!("http://{api}/api/v1/top?query={g}&{range}"));
    near(
        top["total"].as_f64().unwrap(),
        goroutines,
        "top total (goroutines)",
    );
    let park = top["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "main.park")
        .unwrap_or_else(|| panic!("no main.park row: {top:#}"));
    near(
        park["cum"].as_f64().unwrap(),
        2900.0,
        "main.park (goroutines)",
    );

    let flame = json(&format!("http://{api}/api/v1/flame?query={g}&{range}"));
    near(
        flame["nodes"][0][3].as_f64().unwrap(),
        goroutines,
        "flame root (goroutines)",
    );

    let tl = json(&format!(
        "http://{api}/api/v1/timeline?query={g}&{range}&step=2s"
    ));
    for p in tl["points"].as_array().unwrap() {
        near(
            p[1].as_f64().unwrap(),
            goroutines,
            "a timeline bucket (goroutines)",
        );
    }

    let latest = json(&format!(
        "http://{api}/api/v1/top?query={g}&{range}&agg=latest"
    ));
    near(latest["total"].as_f64().unwrap(), goroutines, "agg=latest");
    // pprof's plain merge adds every snapshot up: that is what agg=sum asks for.
    let sum = json(&format!(
        "http://{api}/api/v1/top?query={g}&{range}&agg=sum"
    ));
    let sum = sum["total"].as_f64().unwrap();
    assert!(
        sum >= 0.95 * n * goroutines,
        "agg=sum: {sum} for {n} snapshots"
    );

    // Heap in use: main.hold's bytes (4 MiB objects, each in the heap profile's sample).
    let top = json(&format!(
        "http://{api}/api/v1/top?query={h}&{range}&sample_index=inuse_space"
    ));
    let hold = top["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "main.hold")
        .unwrap_or_else(|| panic!("no main.hold row: {top:#}"));
    near(
        hold["cum"].as_f64().unwrap(),
        heap,
        "main.hold (inuse_space)",
    );

    // `go tool pprof` reading the API prints the same numbers.
    let out = Command::new(&go)
        .args(["tool", "pprof", "-top", "-nodecount=1"])
        .arg(format!("http://{api}/api/v1/profile?query={g}&{range}"))
        .env("PPROF_TMPDIR", &dir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let total: f64 = text
        .split(" total")
        .next()
        .and_then(|s| s.rsplit(' ').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no total in go tool pprof's output:\n{text}"));
    near(
        total,
        goroutines,
        "go tool pprof -top of the API (goroutines)",
    );
}
