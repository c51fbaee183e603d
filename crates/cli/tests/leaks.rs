//! `gocost leaks` against a real Go service with known goroutine leaks and decoys
//! (`testdata/go/leaks`, rates ×4 so that 40 s of scrapes are enough): every leak is found
//! with its blocking kind and about its rate, no decoy is, and a `debug=2` dump and Go's own
//! `goroutineleak` profile add the creating site and proof.
//!
//! Go is found through `$GO` or `go` on `PATH`; without it the test skips, except in CI.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("gocost-leaks-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn get(url: &str) -> Vec<u8> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let r = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
        .get(url)
        .send()
        .unwrap();
    assert!(r.status().is_success(), "{url}: {}", r.status());
    r.bytes().unwrap().to_vec()
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

#[test]
fn finds_every_leak_and_no_decoy() {
    let Some(go) = gocost_testkit::go_toolchain() else {
        return;
    };
    let dir = tmp("bed");
    let bin = dir.join("leaks");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/go/leaks");
    let st = Command::new(&go)
        .args(["build", "-o"])
        .arg(&bin)
        .arg(".")
        .current_dir(root)
        .status()
        .unwrap();
    assert!(st.success());
    let addr_file = dir.join("addr");
    let _p = Proc(
        Command::new(&bin)
            .args(["-rate=4", "-nap=12s", "-duration=3m"])
            .arg(&addr_file)
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let t = Instant::now();
    let addr = loop {
        if let Ok(a) = std::fs::read_to_string(&addr_file)
            && !a.is_empty()
        {
            break a;
        }
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "test bed did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    };

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
