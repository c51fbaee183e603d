//! Pauses and GC cycles on the committed traces of every release, cross-checked with the
//! goroutine summaries (whose range times equal `go tool trace`'s goroutine pages, see
//! `goroutines.rs`): the same stop-the-world, assist and sweep time, counted two ways.

use std::collections::BTreeMap;
use std::path::PathBuf;

use gocost_trace::{Kind, gc_cycles, goroutine_summaries, parse, pauses};

fn events(minor: u32) -> Vec<gocost_trace::Event> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(format!("../../testdata/traces/go1.{minor}.trace"));
    parse(&std::fs::read(p).expect("trace")).expect("parse")
}

#[test]
fn pauses_equal_the_goroutine_range_times() {
    for minor in [22, 23, 24, 25, 26, 27] {
        let evs = events(minor);
        let ps = pauses(&evs);
        assert!(
            ps.iter().filter(|p| p.is_gc()).count() >= 4,
            "go1.{minor}: GC pauses"
        );
        assert!(ps.iter().all(|p| p.duration_ns() > 0));
        let mut ours: BTreeMap<(i64, String), i64> = BTreeMap::new();
        for p in &ps {
            *ours
                .entry((p.goroutine, format!("stop-the-world ({})", p.reason)))
                .or_default() += p.duration_ns();
        }
        let mut theirs: BTreeMap<(i64, String), i64> = BTreeMap::new();
        for g in goroutine_summaries(&evs).values() {
            for (name, ns) in &g.stats.range_ns {
                if name.starts_with("stop-the-world") {
                    theirs.insert((g.id, name.clone()), *ns);
                }
            }
        }
        assert_eq!(ours, theirs, "go1.{minor}");
    }
}

#[test]
fn cycles_hold_their_pauses_assists_and_sweeps() {
    for minor in [22, 23, 24, 25, 26, 27] {
        let evs = events(minor);
        let cycles = gc_cycles(&evs);
        let begins = evs
            .iter()
            .filter(|e| {
                e.kind() == Kind::RangeBegin
                    && e.range()
                        .is_some_and(|r| r.name() == "GC concurrent mark phase")
            })
            .count();
        assert!(begins >= 2, "go1.{minor}: GC cycles");
        assert_eq!(
            cycles.iter().filter(|c| c.mark_start_ns.is_some()).count(),
            begins,
            "go1.{minor}"
        );
        for c in &cycles {
            if let (Some(s), Some(e)) = (c.mark_start_ns, c.mark_end_ns) {
                assert!(s < e);
                // A whole cycle: sweep termination as marking starts, mark termination at its end.
                let reasons: Vec<&str> = c.pauses.iter().map(|p| p.reason.as_str()).collect();
                assert_eq!(
                    reasons,
                    ["GC sweep termination", "GC mark termination"],
                    "go1.{minor}: {c:?}"
                );
                assert!(
                    c.pauses[0].start_ns >= s
                        && c.pauses[1].start_ns <= e
                        && c.pauses[1].end_ns >= e,
                    "go1.{minor}: {c:?}"
                );
            }
        }
        // Assist and sweep time, two ways: per cycle here, per goroutine in the summaries.
        let sums = goroutine_summaries(&evs);
        let range = |name: &str| {
            sums.values()
                .map(|g| g.stats.range_ns.get(name).copied().unwrap_or(0))
                .sum::<i64>()
        };
        let assists: i64 = cycles.iter().map(|c| c.assist_ns).sum();
        let sweeps: i64 = cycles.iter().map(|c| c.sweep_ns).sum();
        assert!(assists > 0 && sweeps > 0, "go1.{minor}");
        assert_eq!(assists, range("GC mark assist"), "go1.{minor}: assist time");
        assert_eq!(
            sweeps,
            range("GC incremental sweep"),
            "go1.{minor}: sweep time"
        );
    }
}
