//! Blocking profiles against `go tool trace -pprof=net|sync|syscall|sched` (Go 1.27.3's, which
//! reads the traces of every release): the profiles it wrote for the committed traces are
//! committed beside them (`go1.N.pprof-KIND.pb`), and the records must be the same — per
//! stack (by PCs, with the same function names, files and lines), the same count and delay.

use std::path::PathBuf;

use gocost_trace::BlockingKind;

mod common;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/traces")
}
use common::{go_records, our_records};

#[test]
fn equal_go_tool_trace_pprof() {
    let mut compared = 0;
    let mut waits = 0;
    for minor in [22, 23, 24, 25, 26, 27] {
        let trace = std::fs::read(dir().join(format!("go1.{minor}.trace"))).expect("trace");
        for kind in [
            BlockingKind::Net,
            BlockingKind::Sync,
            BlockingKind::Syscall,
            BlockingKind::Sched,
        ] {
            let golden = dir().join(format!("go1.{minor}.pprof-{}.pb", kind.name()));
            let want = go_records(&std::fs::read(&golden).expect("golden profile"));
            let got = our_records(&trace, kind);
            common::assert_same(&format!("go1.{minor} -pprof={}", kind.name()), &want, &got);
            compared += want.len();
            waits += want.values().map(|v| v.1).sum::<i64>();
        }
    }
    eprintln!("{compared} stacks, {waits} waits equal go tool trace -pprof");
    assert!(compared > 50);
}

/// Streamed: the eager profiler (charging waits as they end) succeeds on real traces and
/// gives what the exact one (keeping every wait to the end) gives, record for record.
#[test]
fn streamed_eager_equals_exact() {
    use gocost_trace::{BlockingProfiler, Reader};
    for minor in [22, 23, 24, 25, 26, 27] {
        let trace = std::fs::read(dir().join(format!("go1.{minor}.trace"))).expect("trace");
        for kind in [
            BlockingKind::Net,
            BlockingKind::Sync,
            BlockingKind::Syscall,
            BlockingKind::Sched,
        ] {
            let run = |mut p: BlockingProfiler| {
                for ev in Reader::new(&trace).expect("header") {
                    p.push(&ev.expect("event"));
                }
                p.finish()
            };
            let eager = run(BlockingProfiler::new(kind));
            let exact = run(BlockingProfiler::exact(kind));
            assert!(eager.is_some(), "go1.{minor} {}: eager failed", kind.name());
            assert_eq!(eager, exact, "go1.{minor} {}", kind.name());
        }
    }
}

/// A stream that breaks the eager profiler's assumption (the same trace twice: goroutines
/// begin again, time goes back) makes it give up; the exact profiler does not, and
/// `blocking_profile` falls back to it.
#[test]
fn eager_gives_up_where_exact_does_not() {
    use gocost_trace::{BlockingProfiler, blocking_profile};
    let trace = std::fs::read(dir().join("go1.27.trace")).expect("trace");
    let once = gocost_trace::parse(&trace).expect("parse");
    let twice: Vec<_> = once.iter().chain(once.iter()).cloned().collect();
    let kind = BlockingKind::Sched;
    let mut eager = BlockingProfiler::new(kind);
    let mut exact = BlockingProfiler::exact(kind);
    for ev in &twice {
        eager.push(ev);
        exact.push(ev);
    }
    assert_eq!(eager.finish(), None);
    let exact = exact.finish().expect("exact never gives up");
    assert!(!exact.is_empty());
    assert_eq!(blocking_profile(&twice, kind), exact);
}
