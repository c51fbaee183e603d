//! The MMU curve against `go tool trace`'s MMU view (Go 1.27.3's tool, which reads every
//! release's trace): for each committed trace and several choices of what counts as GC, the
//! 100 points of its `/mmu?mode=plot` curve (window → MMU) equal gocost's `MmuCurve::mmu` at
//! the same windows. Skipped with a message without the toolchain (a failure in CI).

use std::path::PathBuf;

use gocost_testkit::procs::http_get;
use gocost_trace::{MmuCurve, UtilFlags, mutator_utilization};

mod common;

/// The `curve` of the MMU view's JSON: `[[window, mmu], …]`.
fn curve(json: &str) -> Vec<(f64, f64)> {
    let start = json.find("\"curve\":[").expect("curve") + "\"curve\":[".len();
    let mut out = Vec::new();
    let mut rest = &json[start..];
    while let Some(open) = rest.find('[') {
        if rest[..open].contains(']') && rest[..open].trim_start_matches(',').starts_with(']') {
            break;
        }
        let close = rest[open..].find(']').expect("]") + open;
        let nums: Vec<f64> = rest[open + 1..close]
            .split(',')
            .map(|v| v.trim().parse().expect("number"))
            .collect();
        out.push((nums[0], nums[1]));
        rest = &rest[close + 1..];
        if rest.starts_with(']') {
            break;
        }
    }
    out
}

#[test]
fn mmu_curves_equal_go_tool_trace() {
    let mut points = 0;
    let mut inner = 0;
    let mut max_diff: f64 = 0.0;
    for minor in [22, 23, 24, 25, 26, 27] {
        let trace = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join(format!("../../testdata/traces/go1.{minor}.trace"));
        let Some((_proc, base)) = common::start_trace_ui(&trace) else {
            return;
        };
        let events = gocost_trace::parse(&std::fs::read(&trace).expect("trace")).expect("parse");
        let all = UtilFlags::ALL;
        let cases = [
            ("stw|background|assist|sweep", all),
            (
                "perProc|stw|background|assist|sweep",
                UtilFlags {
                    per_proc: true,
                    ..all
                },
            ),
            (
                "stw",
                UtilFlags {
                    stw: true,
                    ..UtilFlags::default()
                },
            ),
            (
                "background|assist",
                UtilFlags {
                    background: true,
                    assist: true,
                    ..UtilFlags::default()
                },
            ),
        ];
        for (name, flags) in cases {
            let (status, body) = http_get(&format!("{base}/mmu?mode=plot&flags={name}"));
            assert_eq!(status, 200, "{name}");
            let want = curve(&String::from_utf8_lossy(&body));
            assert_eq!(want.len(), 100, "go1.{minor} {name}: points");
            let c = MmuCurve::new(&mutator_utilization(&events, flags));
            for (w, mmu) in want {
                let ours = c.mmu(w as i64);
                assert!(
                    (ours - mmu).abs() <= 1e-12,
                    "go1.{minor} {name}: window {w} ns: go {mmu}, gocost {ours}"
                );
                points += 1;
                max_diff = max_diff.max((ours - mmu).abs());
                if mmu > 0.0 && mmu < 1.0 {
                    inner += 1;
                }
            }
        }
    }
    eprintln!(
        "{points} MMU points ({inner} strictly between 0 and 1) equal go tool trace's MMU view (largest difference {max_diff:e})"
    );
    assert!(
        points == 0 || inner > 500,
        "the curves should not be trivial"
    );
}
