//! The oracle, offline: for a real trace written by each Go release (1.22–1.27), the event
//! stream printed in that release's dialect equals, byte for byte, what that release's
//! `go tool trace -d=parsed` printed for the same file (committed beside it; how both were
//! made is in `testdata/traces/README.md`, and `tests/toolchains.rs` re-checks them against
//! the real toolchains).

use std::path::PathBuf;

use gocost_trace::text::{Dialect, parsed};

fn traces_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/traces")
}

/// Compares with the golden; on a difference, writes ours next to the target dir and names
/// the first differing line.
fn check(minor: u32) -> usize {
    let dir = traces_dir();
    let trace = std::fs::read(dir.join(format!("go1.{minor}.trace"))).expect("trace");
    let golden =
        std::fs::read_to_string(dir.join(format!("go1.{minor}.parsed.txt"))).expect("golden");
    let dialect = Dialect::go(minor).expect("dialect");
    let ours = match parsed(&trace, dialect) {
        Ok(t) => t,
        Err((_, e)) => panic!("go1.{minor}.trace: {e}"),
    };
    if ours != golden {
        let out =
            PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("go1.{minor}.parsed.ours.txt"));
        let _ = std::fs::write(&out, &ours);
        let line = ours
            .lines()
            .zip(golden.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(ours.lines().count().min(golden.lines().count()));
        panic!(
            "go1.{minor}: differs from go tool trace {} at line {} (ours in {})\n ours: {:?}\n  go:  {:?}",
            dialect.flag(),
            line + 1,
            out.display(),
            ours.lines().nth(line),
            golden.lines().nth(line)
        );
    }
    let events = golden.lines().filter(|l| l.starts_with("M=")).count();
    eprintln!(
        "go1.{minor}: {events} events equal go tool trace {}",
        dialect.flag()
    );
    events
}

#[test]
fn go1_22() {
    assert!(check(22) > 1000);
}

#[test]
fn go1_23() {
    assert!(check(23) > 1000);
}

#[test]
fn go1_24() {
    assert!(check(24) > 1000);
}

#[test]
fn go1_25() {
    assert!(check(25) > 1000);
}

#[test]
fn go1_26() {
    assert!(check(26) > 1000);
}

#[test]
fn go1_27() {
    assert!(check(27) > 1000);
}

/// Every kind of event the test bed is there to produce shows up in every release's trace.
#[test]
fn traces_cover_the_event_kinds() {
    use gocost_trace::{Change, GoState, Kind, RangeKind};
    for minor in [22, 23, 24, 25, 26, 27] {
        let trace = std::fs::read(traces_dir().join(format!("go1.{minor}.trace"))).expect("trace");
        let events = gocost_trace::parse(&trace).expect("parse");
        let has = |f: &dyn Fn(&gocost_trace::Event) -> bool| events.iter().any(f);
        let ctx = format!("go1.{minor}");
        assert!(
            has(&|e| e.kind() == Kind::StackSample && e.stack().is_some_and(|s| !s.is_empty())),
            "{ctx}: CPU samples"
        );
        assert!(
            has(&|e| e
                .range()
                .is_some_and(|r| matches!(r.kind, RangeKind::StopTheWorld(s) if s.contains("GC")))),
            "{ctx}: GC STW"
        );
        assert!(
            has(&|e| e.range().is_some_and(|r| r.kind == RangeKind::GcMarkAssist)),
            "{ctx}: mark assists"
        );
        assert!(has(&|e| e.sweep_result().is_some()), "{ctx}: sweeps");
        assert!(
            has(&|e| e
                .metric()
                .is_some_and(|m| m.name == gocost_trace::HEAP_GOAL)),
            "{ctx}: heap goal"
        );
        assert!(
            has(&|e| e
                .metric()
                .is_some_and(|m| m.name == gocost_trace::HEAP_LIVE)),
            "{ctx}: heap live"
        );
        assert!(
            has(&|e| e.task().is_some_and(|t| t.name == "worker")),
            "{ctx}: tasks"
        );
        assert!(
            has(&|e| e.region().is_some_and(|r| r.name == "spin")),
            "{ctx}: regions"
        );
        assert!(
            has(&|e| e.log().is_some_and(|l| l.category == "round")),
            "{ctx}: logs"
        );
        assert!(
            has(&|e| e.transition().is_some_and(|t| matches!(
                t.change,
                Change::Goroutine(_, GoState::Running, GoState::Syscall)
            ))),
            "{ctx}: syscalls"
        );
        assert!(
            has(&|e| e.transition().is_some_and(|t| t.reason == "chan receive")),
            "{ctx}: channel blocking"
        );
        assert!(
            has(&|e| e.transition().is_some_and(|t| matches!(
                t.change,
                Change::Goroutine(_, GoState::NotExist, GoState::Runnable)
            ))),
            "{ctx}: goroutine creation"
        );
        let syncs = events.iter().filter(|e| e.kind() == Kind::Sync).count();
        assert!(
            syncs >= 3,
            "{ctx}: more than one generation ({syncs} syncs)"
        );
        // Times strictly increase.
        assert!(
            events.windows(2).all(|w| w[0].time() < w[1].time()),
            "{ctx}: time order"
        );
    }
}
