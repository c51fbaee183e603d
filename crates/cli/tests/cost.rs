//! `gocost cost` checked against the numbers `go tool pprof` prints for the same profiles
//! (the committed goldens `testdata/golden/top__cpu.pb.gz.txt` and `top__heap.pb.gz.txt`):
//! cores = pprof's "Total samples ÷ Duration", heap = pprof's inuse_space total.

use std::path::Path;
use std::process::Command;

fn root() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The first number after `key` in a pprof header line (`Duration: 5.03s` → 5.03).
fn number_after(text: &str, key: &str) -> f64 {
    let rest = &text[text.find(key).unwrap_or_else(|| panic!("{key} in {text}")) + key.len()..];
    let num: String = rest
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    num.parse().unwrap()
}

#[test]
fn cost_agrees_with_pprof_and_the_rates() {
    let golden =
        |name: &str| std::fs::read_to_string(root().join("testdata/golden").join(name)).unwrap();
    let cpu = golden("top__cpu.pb.gz.txt");
    let heap = golden("top__heap.pb.gz.txt");
    // "Duration: 5.03s, Total samples = 4.60s (91.50%)": the percentage is cores, to 4 digits.
    let cores_pprof = number_after(&cpu, "Total samples = ") / number_after(&cpu, "Duration: ");
    let busy_pct = number_after(&cpu, "s (");
    // "... of 15056.61kB total"
    let heap_kb = number_after(&heap, "% of ");

    let o = Command::new(env!("CARGO_BIN_EXE_gocost"))
        .args([
            "cost",
            "--json",
            "--cpu-rate",
            "0.05",
            "--memory-rate",
            "0.01",
        ])
        .arg(root().join("testdata/profiles/cpu.pb.gz"))
        .arg(root().join("testdata/profiles/heap.pb.gz"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let e: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let cores = e["cores"].as_f64().unwrap();
    assert!(
        (cores * 100.0 - busy_pct).abs() <= 0.005,
        "{cores} vs pprof's {busy_pct}%"
    );
    assert!(
        (cores - cores_pprof).abs() / cores_pprof < 0.003,
        "{cores} vs {cores_pprof}"
    );
    let gib = e["heap_gib"].as_f64().unwrap();
    let kb = gib * 1024.0 * 1024.0;
    assert!(
        (kb - heap_kb).abs() <= 0.005,
        "{kb} kB vs pprof's {heap_kb} kB"
    );
    // Prices: per hour × 730.
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs().max(1.0);
    assert!(close(
        e["cpu_per_month"].as_f64().unwrap(),
        cores * 0.05 * 730.0
    ));
    assert!(close(
        e["memory_per_month"].as_f64().unwrap(),
        gib * 0.01 * 730.0
    ));
    assert!(close(
        e["total_per_month"].as_f64().unwrap(),
        (cores * 0.05 + gib * 0.01) * 730.0
    ));
    // Functions split the whole: their cores and heap add up to the service's.
    let fs = e["functions"].as_array().unwrap();
    let sum = |k: &str| fs.iter().map(|f| f[k].as_f64().unwrap()).sum::<f64>();
    assert!(close(sum("cores"), cores), "{} vs {cores}", sum("cores"));
    assert!(close(sum("heap_gib"), gib));
    // runtime.asyncPreempt is charged to the loops it interrupted.
    assert!(fs.iter().all(|f| f["function"] != "runtime.asyncPreempt"));
    assert!(
        fs.windows(2)
            .all(|w| { w[0]["total_per_month"].as_f64() >= w[1]["total_per_month"].as_f64() })
    );

    let o = Command::new(env!("CARGO_BIN_EXE_gocost"))
        .arg("cost")
        .arg(root().join("testdata/profiles/goroutine.pb.gz"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("goroutine.pb.gz: neither a CPU profile"));
}
