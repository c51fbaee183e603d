//! The MMU curve against `go tool trace`'s MMU view (Go 1.27.3's tool, which reads every
//! release's trace): for each committed trace and several choices of what counts as GC, the
//! 100 points of its `/mmu?mode=plot` curve (window → MMU) equal gocost's `MmuCurve::mmu` at
//! the same windows. Reported as ignored without the toolchain (a failure in CI).

use std::path::PathBuf;

mod common;

#[cfg_attr(
    not(has_go_1_27),
    ignore = "needs Go 1.27.3 in .venv-go/1.27.3 or $GOCOST_GO_1_27"
)]
#[test]
fn mmu_curves_equal_go_tool_trace() {
    let (mut points, mut inner) = (0, 0);
    for minor in [22, 23, 24, 25, 26, 27] {
        let trace = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join(format!("../../testdata/traces/go1.{minor}.trace"));
        let (p, i) = common::check_mmu(&trace);
        points += p;
        inner += i;
    }
    eprintln!(
        "{points} MMU points ({inner} strictly between 0 and 1) equal go tool trace's MMU view"
    );
    assert!(inner > 500, "the curves should not be trivial");
}
