//! Developer tasks, run with `cargo run -p xtask -- <task>`:
//!
//! - `capture`: builds the Go programs in `testdata/go/`, runs them on 127.0.0.1 and records
//!   their profiles into `testdata/profiles/` (plus the `.pprof` files of Go's own tree).
//! - `goldens [--check]`: runs the real `go tool pprof` for every case of
//!   `testdata/golden/cases.txt` and writes `testdata/golden/<slug>.txt`; with `--check`,
//!   regenerates into a temporary directory and fails on any difference.
//!
//! - `bench-trace [--repeats N] [--fresh]`: gocost-trace against `go tool trace -d=parsed`
//!   on a busy trace (see `bench_trace.rs`); with `--pprof`, `gocost trace pprof --type
//!   sched` against `go tool trace -pprof=sched` on a 5 s and a 60 s trace, CPU and peak
//!   memory (see `bench_pprof.rs`).
//!
//! - `bench-capture [--rounds N] …`: a real Go HTTP service's throughput under `gocost
//!   load`, with and without continuous trace capture by `gocost serve`, alternating in one
//!   run; prints the ratio (see `bench_capture.rs`).
//!
//! - `bench-cluster [--pushes N] [--writers N] …`: ingest CPU per MB with 1, 2 and 4 instances
//!   over one bucket, and the compactor's time per day of data (see `bench_cluster.rs`).
//! - `bench-bucket [--days N] [--services N] …`: the same queries over blocks in a Garage
//!   bucket (started there) and on local disk, first run and warm (the block cache), bytes
//!   fetched, as ratios (see `bench_bucket.rs`).
//!
//! - `soak [--duration D] [--interval D] …`: a stability run of the release `gocost serve`
//!   against a fleet of real Go services and a push load, failing on growth (see `soak.rs`).
//!
//! Go is `$GO` or `go` on `PATH`.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

mod bench_bucket;
mod bench_capture;
mod bench_cluster;
mod bench_fleet;
mod bench_pprof;
mod bench_store;
mod bench_trace;
mod soak;

use gocost_testkit::{Case, cases, golden_dir, profiles_dir, repo_root};

type Result<T> = std::result::Result<T, String>;

fn go() -> PathBuf {
    std::env::var_os("GO")
        .map(PathBuf::from)
        .unwrap_or_else(|| "go".into())
}

/// Cargo's target directory: `$CARGO_TARGET_DIR` (relative ones from the repository root),
/// else `target/`.
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| repo_root().join("target"), |d| repo_root().join(d))
}

/// Builds the release `gocost` (quietly; fast when it is fresh) and returns its path.
fn release_gocost() -> Result<PathBuf> {
    let st = Command::new("cargo")
        .args([
            "build",
            "--release",
            "-q",
            "-p",
            "gocost",
            "--bin",
            "gocost",
        ])
        .current_dir(repo_root())
        .status()
        .map_err(|e| e.to_string())?;
    if !st.success() {
        return Err("cargo build --release -p gocost failed".into());
    }
    Ok(target_dir().join("release/gocost"))
}

fn output(cmd: &mut Command) -> Result<Vec<u8>> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(out.stdout)
}

fn go_version() -> Result<String> {
    let v = String::from_utf8_lossy(&output(Command::new(go()).arg("version"))?).into_owned();
    // "go version go1.27.3 linux/amd64" → "go1.27.3"
    v.split_whitespace()
        .find(|w| w.starts_with("go1"))
        .map(str::to_string)
        .ok_or_else(|| format!("unexpected `go version` output: {v}"))
}

fn temp_dir(name: &str) -> Result<PathBuf> {
    let d = std::env::temp_dir().join(format!("gocost-xtask-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).map_err(|e| format!("{}: {e}", d.display()))?;
    Ok(d)
}

// ---------------------------------------------------------------- goldens

/// The `pprof` tool binary, resolved once (`go tool -n pprof`), so each case runs it directly.
fn pprof_binary() -> Result<PathBuf> {
    let out = output(Command::new(go()).args(["tool", "-n", "pprof"]))?;
    let p = String::from_utf8_lossy(&out).trim().to_string();
    if p.is_empty() {
        return Err("`go tool -n pprof` printed nothing".into());
    }
    Ok(PathBuf::from(p))
}

fn run_case(pprof: &Path, home: &Path, case: &Case) -> Result<Vec<u8>> {
    let mut cmd = Command::new(pprof);
    cmd.arg("-symbolize=none")
        .args(&case.args)
        .current_dir(profiles_dir())
        .env("TZ", "UTC")
        .env("HOME", home)
        .env("PPROF_TMPDIR", home)
        .env_remove("PPROF_BINARY_PATH")
        .stdin(Stdio::null());
    output(&mut cmd).map_err(|e| format!("case {}: {e}", case.slug))
}

/// Runs every case (twice: pprof's output must be deterministic to be a golden) on two
/// threads, writing `<slug>.txt` files into `out`.
fn generate(out: &Path) -> Result<()> {
    let pprof = pprof_binary()?;
    let home = temp_dir("home")?;
    let all = cases();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let errors = std::sync::Mutex::new(Vec::<String>::new());
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(case) = all.get(i) else { break };
                    let res = run_case(&pprof, &home, case).and_then(|a| {
                        let b = run_case(&pprof, &home, case)?;
                        if a != b {
                            return Err(format!(
                                "case {}: go tool pprof's output differs between two runs \
                                 (nondeterministic); it cannot be a golden",
                                case.slug
                            ));
                        }
                        std::fs::write(out.join(format!("{}.txt", case.slug)), &a)
                            .map_err(|e| format!("{}: {e}", case.slug))
                    });
                    if let Err(e) = res
                        && let Ok(mut v) = errors.lock()
                    {
                        v.push(e);
                    }
                }
            });
        }
    });
    let errors = errors.into_inner().unwrap_or_default();
    if !errors.is_empty() {
        return Err(errors.join("\n"));
    }
    std::fs::write(out.join("GO_VERSION"), format!("{}\n", go_version()?))
        .map_err(|e| e.to_string())?;
    eprintln!("generated {} goldens with {}", all.len(), go_version()?);
    Ok(())
}

fn golden_files(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".txt") && n != "cases.txt" && n != "divergences.txt")
                .collect()
        })
        .unwrap_or_default()
}

fn goldens(check: bool) -> Result<()> {
    let dir = golden_dir();
    if !check {
        generate(&dir)?;
        let want: BTreeSet<String> = cases().iter().map(|c| format!("{}.txt", c.slug)).collect();
        for stale in golden_files(&dir).difference(&want) {
            std::fs::remove_file(dir.join(stale)).map_err(|e| format!("{stale}: {e}"))?;
            eprintln!("removed stale golden {stale}");
        }
        return Ok(());
    }
    let tmp = temp_dir("goldens")?;
    generate(&tmp)?;
    let mut problems = Vec::new();
    let (have, fresh) = (golden_files(&dir), golden_files(&tmp));
    for name in have.union(&fresh) {
        match (std::fs::read(dir.join(name)), std::fs::read(tmp.join(name))) {
            (Ok(a), Ok(b)) if a == b => {}
            (Ok(_), Ok(_)) => problems.push(format!("differs: {name}")),
            (Err(_), Ok(_)) => problems.push(format!("missing (not committed): {name}")),
            (Ok(_), Err(_)) => problems.push(format!("extra (no case for it): {name}")),
            (Err(_), Err(_)) => {}
        }
    }
    let (a, b) = (
        std::fs::read(dir.join("GO_VERSION")),
        std::fs::read(tmp.join("GO_VERSION")),
    );
    if a.ok() != b.ok() {
        problems.push("GO_VERSION differs: the goldens were made with another Go".into());
    }
    if problems.is_empty() {
        eprintln!("goldens: all {} match a fresh `go tool pprof`", fresh.len());
        Ok(())
    } else {
        Err(format!(
            "goldens differ from what this Go's `go tool pprof` prints \
             (run `cargo run -p xtask -- goldens` and review):\n  {}",
            problems.join("\n  ")
        ))
    }
}

// ---------------------------------------------------------------- capture

/// One HTTP/1.0 request to a loopback address: the response's header block and body.
fn http_exchange(
    addr: &str,
    method: &str,
    path: &str,
    body: &[u8],
    timeout: Duration,
) -> Result<(String, Vec<u8>)> {
    let mut s = TcpStream::connect(addr).map_err(|e| format!("{addr}{path}: {e}"))?;
    s.set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    let head = format!(
        "{method} {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes())
        .and_then(|_| s.write_all(body))
        .map_err(|e| format!("{path}: {e}"))?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)
        .map_err(|e| format!("{path}: {e}"))?;
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| format!("{path}: no HTTP header"))?;
    let head = String::from_utf8_lossy(&buf[..split]).into_owned();
    Ok((head, buf[split + 4..].to_vec()))
}

/// A plain HTTP/1.0 GET to a loopback address (the demo service), body only.
fn http_get(addr: &str, path: &str, timeout: Duration) -> Result<Vec<u8>> {
    let (head, body) = http_exchange(addr, "GET", path, b"", timeout)?;
    if !head.starts_with("HTTP/1.0 200") && !head.starts_with("HTTP/1.1 200") {
        return Err(format!("{path}: {}", head.lines().next().unwrap_or("")));
    }
    Ok(body)
}

fn build(dir: &str, out: &Path) -> Result<PathBuf> {
    let bin = out.join(dir);
    output(
        Command::new(go())
            .args(["build", "-o"])
            .arg(&bin)
            .arg(".")
            .current_dir(repo_root().join("testdata/go").join(dir)),
    )?;
    Ok(bin)
}

struct Kill(std::process::Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn capture() -> Result<()> {
    let tmp = temp_dir("capture")?;
    let dst = profiles_dir();
    std::fs::create_dir_all(&dst).map_err(|e| e.to_string())?;
    let demo = build("demo", &tmp)?;
    let batch = build("batch", &tmp)?;

    let addr_file = tmp.join("addr");
    let _svc = Kill(
        Command::new(&demo)
            .arg("-duration=3m")
            .arg(&addr_file)
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| format!("demo: {e}"))?,
    );
    let start = Instant::now();
    let addr = loop {
        if let Ok(a) = std::fs::read_to_string(&addr_file)
            && !a.is_empty()
        {
            break a;
        }
        if start.elapsed() > Duration::from_secs(20) {
            return Err("demo did not start".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    // Let it warm up so that heap records are published (after GCs) and contention builds.
    std::thread::sleep(Duration::from_secs(8));
    let get = |path: &str, name: &str| -> Result<()> {
        eprintln!("capturing {name} ← {path}");
        let body = http_get(&addr, path, Duration::from_secs(60))?;
        std::fs::write(dst.join(name), body).map_err(|e| e.to_string())
    };
    get("/debug/pprof/profile?seconds=5", "cpu.pb.gz")?;
    for p in [
        "heap",
        "allocs",
        "goroutine",
        "goroutineleak",
        "mutex",
        "block",
        "threadcreate",
    ] {
        get(&format!("/debug/pprof/{p}"), &format!("{p}.pb.gz"))?;
    }
    for p in ["allocs", "goroutine", "mutex", "block"] {
        get(
            &format!("/debug/pprof/{p}?seconds=2"),
            &format!("{p}.delta.pb.gz"),
        )?;
    }
    get("/debug/pprof/profile?seconds=3", "cpu2.pb.gz")?;
    drop(_svc);

    eprintln!("capturing batch.cpu.pb.gz, batch.heap.pb.gz from testdata/go/batch");
    output(Command::new(&batch).arg(&dst))?;

    let goroot = String::from_utf8_lossy(&output(Command::new(go()).args(["env", "GOROOT"]))?)
        .trim()
        .to_string();
    let pgo = Path::new(&goroot).join("src/cmd/compile/internal/test/testdata/pgo");
    for sub in std::fs::read_dir(&pgo).map_err(|e| format!("{}: {e}", pgo.display()))? {
        let sub = sub.map_err(|e| e.to_string())?.path();
        let Ok(rd) = std::fs::read_dir(&sub) else {
            continue;
        };
        for f in rd.filter_map(|e| e.ok()).map(|e| e.path()) {
            if f.extension().is_some_and(|x| x == "pprof") {
                let name = sub.file_name().unwrap_or_default();
                let to = dst.join("goroot").join(name);
                std::fs::create_dir_all(&to).map_err(|e| e.to_string())?;
                std::fs::copy(&f, to.join(f.file_name().unwrap_or_default()))
                    .map_err(|e| format!("{}: {e}", f.display()))?;
            }
        }
    }
    std::fs::write(dst.join("GO_VERSION"), format!("{}\n", go_version()?))
        .map_err(|e| e.to_string())?;
    eprintln!("corpus recorded in {}", dst.display());
    Ok(())
}

/// The number after `--name` in a bench's arguments, or `default`.
fn arg(args: &[String], name: &str, default: u64) -> Result<u64> {
    match args.iter().position(|a| a == name) {
        None => Ok(default),
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("{name} needs a number")),
    }
}

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let res = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["capture"] => capture(),
        ["bench-capture", rest @ ..] => {
            let rest: Vec<String> = rest.iter().map(|s| s.to_string()).collect();
            bench_capture::run(&rest)
        }
        ["bench-fleet", rest @ ..] => {
            let rest: Vec<String> = rest.iter().map(|s| s.to_string()).collect();
            bench_fleet::run(&rest)
        }
        ["bench-cluster", rest @ ..] => {
            let rest: Vec<String> = rest.iter().map(|s| s.to_string()).collect();
            bench_cluster::run(&rest)
        }
        ["bench-bucket", rest @ ..] => {
            let rest: Vec<String> = rest.iter().map(|s| s.to_string()).collect();
            bench_bucket::run(&rest)
        }
        ["bench-store", rest @ ..] => {
            let rest: Vec<String> = rest.iter().map(|s| s.to_string()).collect();
            bench_store::run(&rest)
        }
        ["bench-trace", rest @ ..] => {
            let rest: Vec<String> = rest.iter().map(|s| s.to_string()).collect();
            bench_trace::run(&rest)
        }
        ["soak", rest @ ..] => {
            let rest: Vec<String> = rest.iter().map(|s| s.to_string()).collect();
            soak::run(&rest)
        }
        ["goldens"] => goldens(false),
        ["goldens", "--check"] => goldens(true),
        _ => Err("usage: cargo run -p xtask -- capture | goldens [--check] | bench-bucket [--days N] [--services N] [--interval-secs N] [--repeats N] | bench-cluster [--pushes N] [--writers N] [--services N] [--interval-secs N] | bench-store [--days N] [--services N] [--interval-secs N] [--repeats N] [--seeds A,B,…] [--busy-interval-secs N] [--keep DIR [--only TEXT]] | bench-fleet [--targets N] [--interval-secs N] [--seconds N] [--warmup-secs N] [--kinds a,b] [--block-duration D] [--gocost [NAME=]PATH]… | bench-trace [--pprof] [--repeats N] [--fresh] | bench-capture [--rounds N] [--phase-secs N] [--every-secs N] [--seconds N] [--concurrency N] | soak [--duration 10m] [--interval 1m] [--warmup D] [--block D] [--scrape-interval 15s] [--pushes 5] [--csv FILE]".into()),
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}
