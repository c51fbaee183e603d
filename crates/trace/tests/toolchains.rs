//! The oracle, live: the real `go tool trace` of every Go release 1.22–1.27 against
//! gocost-trace. Each release's toolchain is `$GOCOST_GO_1_N` or `.venv-go/<version>/bin/go`
//! in the repository (see `testdata/traces/README.md`); a missing one is skipped with a
//! message, except in CI (`CI` set), where it is a failure.
//!
//! `GOCOST_BLESS_TRACES=1` rewrites the committed traces and goldens from scratch.

use std::path::{Path, PathBuf};
use std::process::Command;

use gocost_trace::BlockingKind;
use gocost_trace::text::{Dialect, parsed};

mod common;

/// The releases and the exact versions the goldens were made with.
const RELEASES: [(u32, &str); 6] = [
    (22, "1.22.10"),
    (23, "1.23.9"),
    (24, "1.24.11"),
    (25, "1.25.5"),
    (26, "1.26.6"),
    (27, "1.27.3"),
];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn toolchain(minor: u32, version: &str) -> PathBuf {
    let go = gocost_testkit::tools::go_release(minor);
    let out = Command::new(&go)
        .arg("version")
        .output()
        .expect("go version");
    let v = String::from_utf8_lossy(&out.stdout);
    assert!(
        v.contains(&format!("go{version} ")),
        "{} is not Go {version}: {v}",
        go.display()
    );
    go
}

/// `go tool trace -d=parsed` (or `-d=1`) of `trace`, as the tool prints it.
fn go_parsed(go: &Path, minor: u32, trace: &Path) -> Vec<u8> {
    let flag = Dialect::go(minor).expect("dialect").flag();
    let out = Command::new(go)
        .args(["tool", "trace", flag])
        .arg(trace)
        .env("TZ", "UTC")
        .env("GOTOOLCHAIN", "local")
        .output()
        .expect("go tool trace");
    assert!(
        out.status.success(),
        "go tool trace {flag} {}: {}",
        trace.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// `go tool trace -pprof=KIND` of `trace`.
fn go_pprof(go: &Path, kind: &str, trace: &Path) -> Vec<u8> {
    let out = Command::new(go)
        .args(["tool", "trace", &format!("-pprof={kind}")])
        .arg(trace)
        .env("GOTOOLCHAIN", "local")
        .output()
        .expect("go tool trace -pprof");
    assert!(
        out.status.success(),
        "go tool trace -pprof={kind} {}: {}",
        trace.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Runs the test bed under `go`, writing a trace to `out`.
fn record(go: &Path, out: &Path, busy: bool) {
    let mut cmd = Command::new(go);
    cmd.args(["run", "-trimpath", "."]);
    if busy {
        cmd.arg("-busy");
    }
    let st = cmd
        .arg(out)
        .current_dir(repo().join("testdata/go/tracebed"))
        .env("GOTOOLCHAIN", "local")
        .env("GOFLAGS", "-mod=mod")
        .status()
        .expect("go run tracebed");
    assert!(st.success(), "tracebed under {}", go.display());
}

/// Compares gocost's text for `trace` with `go`'s; returns the number of events.
fn compare(what: &str, trace: &Path, minor: u32, want: &[u8]) -> usize {
    let bytes = std::fs::read(trace).expect("trace");
    let ours = parsed(&bytes, Dialect::go(minor).expect("dialect"))
        .unwrap_or_else(|(_, e)| panic!("{what}: {e}"));
    if ours.as_bytes() != want {
        let want = String::from_utf8_lossy(want);
        let line = ours
            .lines()
            .zip(want.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(0);
        panic!(
            "{what}: gocost differs from go tool trace at line {}:\n ours: {:?}\n   go: {:?}",
            line + 1,
            ours.lines().nth(line),
            want.lines().nth(line)
        );
    }
    ours.lines().filter(|l| l.starts_with("M=")).count()
}

#[cfg_attr(
    not(has_go_releases),
    ignore = "needs Go 1.22–1.27 in .venv-go (see .ci/run)"
)]
#[test]
fn goldens_are_what_each_go_prints() {
    let dir = repo().join("testdata/traces");
    let kinds = ["net", "sync", "syscall", "sched"];
    if std::env::var_os("GOCOST_BLESS_TRACES").is_some() {
        for (minor, version) in RELEASES {
            let go = toolchain(minor, version);
            let trace = dir.join(format!("go1.{minor}.trace"));
            record(&go, &trace, false);
            std::fs::write(
                dir.join(format!("go1.{minor}.parsed.txt")),
                go_parsed(&go, minor, &trace),
            )
            .expect("write golden");
            eprintln!("blessed go1.{minor}.trace and its parse");
        }
        // Go 1.27's blocking profiles of every release's trace (tests/blocking.rs).
        {
            let go27 = toolchain(27, "1.27.3");
            for (minor, _) in RELEASES {
                let trace = dir.join(format!("go1.{minor}.trace"));
                for kind in kinds {
                    let pb = go_pprof(&go27, kind, &trace);
                    std::fs::write(dir.join(format!("go1.{minor}.pprof-{kind}.pb")), pb)
                        .expect("write profile");
                }
            }
        }
    }
    for (minor, version) in RELEASES {
        let go = toolchain(minor, version);
        let trace = dir.join(format!("go1.{minor}.trace"));
        let golden = dir.join(format!("go1.{minor}.parsed.txt"));
        let committed = std::fs::read(&golden).expect("golden");
        assert!(
            go_parsed(&go, minor, &trace) == committed,
            "{}: not what Go {version} prints today",
            golden.display()
        );
        let n = compare(&format!("go1.{minor}.trace"), &trace, minor, &committed);
        eprintln!("go {version}: golden checked, {n} events");
        {
            let go27 = toolchain(27, "1.27.3");
            for kind in kinds {
                let pb = dir.join(format!("go1.{minor}.pprof-{kind}.pb"));
                let committed = common::go_records(&std::fs::read(&pb).expect("profile golden"));
                let today = common::go_records(&go_pprof(&go27, kind, &trace));
                assert!(
                    committed == today,
                    "{}: not what Go 1.27.3's go tool trace -pprof={kind} prints today",
                    pb.display()
                );
            }
        }
    }
}

#[cfg_attr(
    not(has_go_releases),
    ignore = "needs Go 1.22–1.27 in .venv-go (see .ci/run)"
)]
#[test]
fn fresh_traces_equal_each_go() {
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fresh-traces");
    std::fs::create_dir_all(&tmp).expect("tmp");
    for (minor, version) in RELEASES {
        let go = toolchain(minor, version);
        let trace = tmp.join(format!("go{version}.trace"));
        record(&go, &trace, false);
        let n = compare(
            &format!("fresh Go {version} trace"),
            &trace,
            minor,
            &go_parsed(&go, minor, &trace),
        );
        eprintln!("go {version}: fresh trace, {n} events equal");
        // Blocking profiles: Go 1.27's rules, so against Go 1.27's tool (it reads them all).
        {
            let go27 = toolchain(27, "1.27.3");
            let bytes = std::fs::read(&trace).expect("trace");
            for kind in [
                BlockingKind::Net,
                BlockingKind::Sync,
                BlockingKind::Syscall,
                BlockingKind::Sched,
            ] {
                let want = common::go_records(&go_pprof(&go27, kind.name(), &trace));
                let got = common::our_records(&bytes, kind);
                common::assert_same(
                    &format!("fresh Go {version} trace, -pprof={}", kind.name()),
                    &want,
                    &got,
                );
            }
            let (points, _) = common::check_mmu(&trace);
            eprintln!("go {version}: fresh trace, {points} MMU points equal");
        }
    }
}

/// Every release's tool also reads the traces of the releases before it.
#[cfg_attr(
    not(has_go_releases),
    ignore = "needs Go 1.22–1.27 in .venv-go (see .ci/run)"
)]
#[test]
fn newer_tools_read_older_traces_alike() {
    let dir = repo().join("testdata/traces");
    let mut total = 0;
    for (tool, version) in RELEASES {
        let go = toolchain(tool, version);
        for (minor, _) in RELEASES.iter().filter(|(m, _)| *m < tool) {
            let trace = dir.join(format!("go1.{minor}.trace"));
            total += compare(
                &format!("go1.{minor}.trace read by Go {version}"),
                &trace,
                tool,
                &go_parsed(&go, tool, &trace),
            );
        }
    }
    eprintln!("older traces read by newer tools: {total} events equal");
}
