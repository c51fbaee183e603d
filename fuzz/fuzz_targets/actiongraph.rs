//! Any bytes as `go build -debug-actiongraph` output: a build-cost report or an error, never a
//! panic or a hang (cycles refused); its times are finite and not negative, and its benchmark
//! lines parse as `gocost compare` reads them.
#![no_main]

use gocost_buildcost::actiongraph;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(b) = actiongraph::analyze(data, 5) else {
        return;
    };
    assert!(b.wall_seconds.is_finite() && b.wall_seconds >= 0.0);
    assert!(b.critical_path_seconds.is_finite() && b.critical_path_seconds >= 0.0);
    assert!(b.slowest.len() <= 5);
    for p in &b.packages {
        assert!(p.total >= 0.0 && p.total.is_finite());
    }
    let _ = b.to_text(5);
    let (results, errors) = gocost_compare::benchfmt::parse(&b.to_bench_text());
    assert!(errors.is_empty(), "{errors:?}");
    assert!(results.len() >= 2);
});
