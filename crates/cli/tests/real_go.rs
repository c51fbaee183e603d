//! Tests against the real Go toolchain: `go tool pprof` reads what `gocost merge` writes
//! exactly as it reads the inputs, and gocost fetches profiles from a live Go service.
//!
//! Go is found through `$GO` or `go` on `PATH`. Without it these tests are reported as ignored,
//! except in CI (`CI` set), where a missing Go is a failure.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn go() -> PathBuf {
    gocost_testkit::go_toolchain()
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn profiles() -> PathBuf {
    root().join("testdata/profiles")
}

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("gocost-realgo-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The pprof tool binary (`go tool -n pprof`), run directly: with `HOME` pointed elsewhere
/// `go tool` would rebuild it into a fresh cache every time.
fn pprof_binary(go: &Path) -> PathBuf {
    gocost_testkit::procs::go_tool(go, "pprof")
}

/// Runs a command that must succeed and returns its stdout.
fn stdout_of(cmd: &mut Command) -> Vec<u8> {
    let out = gocost_testkit::procs::retry_busy(|| cmd.output()).unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn pprof_top(pprof: &Path, files: &[PathBuf]) -> Vec<u8> {
    let home = tmpdir("home");
    stdout_of(
        Command::new(pprof)
            .args(["-symbolize=none", "-top"])
            .args(files)
            .env("TZ", "UTC")
            .env("HOME", &home)
            .env("PPROF_TMPDIR", &home),
    )
}

#[cfg_attr(not(has_go), ignore = "needs Go: set $GO or put go on PATH")]
#[test]
fn pprof_reads_gocost_merge_output_like_the_inputs() {
    let go = go();
    let pprof = pprof_binary(&go);
    let sets: &[&[&str]] = &[
        &["cpu.pb.gz", "cpu2.pb.gz"],
        &["heap.pb.gz", "allocs.pb.gz"],
        &["mutex.pb.gz", "block.pb.gz"],
        &["goroutine.pb.gz", "goroutine.delta.pb.gz"],
        &["allocs.delta.pb.gz", "allocs.pb.gz"],
        &["cpu.pb.gz", "cpu2.pb.gz", "cpu.pb.gz"],
    ];
    let dir = tmpdir("merge");
    for (i, set) in sets.iter().enumerate() {
        let inputs: Vec<PathBuf> = set.iter().map(|f| profiles().join(f)).collect();
        let out = dir.join(format!("merged-{i}.pb.gz"));
        let st = Command::new(env!("CARGO_BIN_EXE_gocost"))
            .arg("merge")
            .arg("-o")
            .arg(&out)
            .args(&inputs)
            .status()
            .unwrap();
        assert!(st.success());
        let want = pprof_top(&pprof, &inputs);
        let got = pprof_top(&pprof, std::slice::from_ref(&out));
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&want),
            "go tool pprof -top of gocost merge {set:?}"
        );
    }
}

struct Service(Child);

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[cfg_attr(not(has_go), ignore = "needs Go: set $GO or put go on PATH")]
#[test]
fn fetches_profiles_from_a_live_go_service() {
    let go = go();
    let dir = tmpdir("svc");
    let bin = dir.join("demo");
    let st = Command::new(&go)
        .args(["build", "-o"])
        .arg(&bin)
        .arg(".")
        .current_dir(root().join("testdata/go/demo"))
        .status()
        .unwrap();
    assert!(st.success(), "go build testdata/go/demo");
    let addr_file = dir.join("addr");
    let svc = Service(
        Command::new(&bin)
            .arg(&addr_file)
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let start = Instant::now();
    let addr = loop {
        if let Ok(a) = std::fs::read_to_string(&addr_file)
            && !a.trim().is_empty()
        {
            break a.trim().to_string();
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "demo did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_gocost"))
            .args(args)
            .env("TZ", "UTC")
            .output()
            .unwrap()
    };
    let cpu = run(&[
        "top",
        "--seconds",
        "1",
        &format!("http://{addr}/debug/pprof/profile"),
    ]);
    assert!(
        cpu.status.success(),
        "{}",
        String::from_utf8_lossy(&cpu.stderr)
    );
    let text = String::from_utf8_lossy(&cpu.stdout);
    // A one-second CPU profile lasts about a second: the runtime reports
    // e.g. "994.55ms" or "1.01s", so only the field's presence is exact.
    assert!(
        text.contains("Type: cpu") && text.contains("\nDuration: "),
        "{text}"
    );
    let g = run(&["traces", &format!("http://{addr}/debug/pprof/goroutine")]);
    assert!(g.status.success());
    assert!(String::from_utf8_lossy(&g.stdout).contains("Type: goroutine"));
    let missing = run(&["top", &format!("http://{addr}/debug/pprof/nonexistent")]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("404"));
    drop(svc);
}
