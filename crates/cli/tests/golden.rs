//! Every case of `testdata/golden/cases.txt`: gocost with the equivalent flags must print
//! exactly what `go tool pprof` printed (the committed golden), byte for byte. Cases listed in
//! `divergences.txt` must still differ (so the list never goes stale).

use std::process::Command;

use gocost_testkit::{cases, compare_golden, divergences, gocost_args, golden_dir};

#[test]
fn goldens_match_go_tool_pprof() {
    let all = cases();
    assert!(all.len() >= 100, "only {} golden cases", all.len());
    let known = divergences();
    let mut failures = Vec::new();
    let mut stale = Vec::new();
    for case in &all {
        let golden = golden_dir().join(format!("{}.txt", case.slug));
        let want = std::fs::read(&golden).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (run `cargo run -p xtask -- goldens`)",
                golden.display()
            )
        });
        let out = Command::new(env!("CARGO_BIN_EXE_gocost"))
            .args(gocost_args(case))
            .env("TZ", "UTC")
            .output()
            .expect("run gocost");
        let got = if out.status.success() {
            out.stdout
        } else {
            format!("gocost failed: {}", String::from_utf8_lossy(&out.stderr)).into_bytes()
        };
        let res = compare_golden(&case.slug, &want, &got);
        match (res, known.get(&case.slug)) {
            (Ok(()), Some(_)) => stale.push(case.slug.clone()),
            (Err(e), None) => failures.push(e),
            _ => {}
        }
    }
    assert!(
        stale.is_empty(),
        "now identical to go tool pprof, remove from divergences.txt: {stale:?}"
    );
    assert!(
        failures.is_empty(),
        "{} of {} goldens differ (actual output in target/golden-actual/):\n{}",
        failures.len(),
        all.len(),
        failures
            .iter()
            .take(8)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}
