//! `gocost compare` end to end: real Go benchmarks and CPU profiles of
//! `testdata/go/benchcmp`, built as is and with `-tags slower` (one function, checksum, does
//! 40% more work: with the rest of the suite and a compiler beside them, 60 ms benchmarks
//! were seen to spread by ±25–65 %, and the 15 % of `-tags slow` then went unseen, p = 0.09).
//! Identical builds must pass, the slow build must fail and name checksum; the
//! numbers must be benchstat's. Runs interleave base and head so that the machine's load
//! drifts hit both sides alike.
//!
//! Go is found through `$GO` or `go` on `PATH`; without it the Go tests are reported as ignored, except in CI.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use regex::Regex;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn tmp(name: &str) -> PathBuf {
    gocost_testkit::procs::fresh_dir("compare", name)
}

fn gocost(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gocost"))
        .arg("compare")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Builds the test bed's test binary (with `-tags <tag>` if given) into `dir`.
fn build(go: &Path, dir: &Path, tag: Option<&str>) -> PathBuf {
    let out = dir.join(format!("{}.test", tag.unwrap_or("base")));
    let mut c = Command::new(go);
    c.args(["test", "-c", "-o"]).arg(&out);
    if let Some(tag) = tag {
        c.args(["-tags", tag]);
    }
    let st = c
        .arg(".")
        .current_dir(root().join("testdata/go/benchcmp"))
        .status()
        .unwrap();
    assert!(st.success(), "go test -c failed");
    out
}

fn run_bench(bin: &Path, args: &[&str]) -> Vec<u8> {
    let o = Command::new(bin)
        .arg("-test.run=^$")
        .args(args)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    o.stdout
}

#[cfg_attr(not(has_go), ignore = "needs Go: set $GO or put go on PATH")]
#[test]
fn benchmarks_identical_builds_pass_and_a_slowdown_fails() {
    let go = gocost_testkit::go_toolchain();
    let dir = tmp("bench");
    let base = build(&go, &dir, None);
    let slow = build(&go, &dir, Some("slower"));
    let args = [
        "-test.bench=^Benchmark(Checksum|Parse|Sort)$",
        "-test.benchtime=60ms",
    ];
    let (mut a, mut b, mut c) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..10 {
        a.extend(run_bench(&base, &args));
        b.extend(run_bench(&base, &args));
        c.extend(run_bench(&slow, &args));
    }
    std::fs::write(dir.join("a.txt"), &a).unwrap();
    std::fs::write(dir.join("b.txt"), &b).unwrap();
    std::fs::write(dir.join("c.txt"), &c).unwrap();

    // Identical code: no regression. At the default alpha of 0.05 a few percent of
    // identical pairs fail by chance (measured by scripts/compare_fpr.py: 1 in 30 on a quiet
    // machine); this check uses 0.01 so that CI does not fail on that chance.
    let o = gocost(
        &["--base", "a.txt", "--head", "b.txt", "--alpha", "0.01"],
        &dir,
    );
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(
        stdout(&o).starts_with("ok: no regression"),
        "{}",
        stdout(&o)
    );

    // 40% more work in checksum: a regression, named, in every format.
    let o = gocost(&["--base", "a.txt", "--head", "c.txt"], &dir);
    let text = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{text}");
    assert!(text.starts_with("FAIL: "), "{text}");
    let line = text
        .lines()
        .find(|l| l.starts_with("Checksum-") && l.contains("REGRESSION"))
        .unwrap_or_else(|| panic!("checksum not flagged:\n{text}"));
    assert!(line.contains('+'), "{line}");
    for l in text.lines().filter(|l| l.contains("REGRESSION")) {
        assert!(
            l.starts_with("Checksum-"),
            "only checksum regressed: {l}\n{text}"
        );
    }

    let o = gocost(
        &["--base", "a.txt", "--head", "c.txt", "--format", "json"],
        &dir,
    );
    assert_eq!(o.status.code(), Some(1));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["verdict"], "fail");
    let regs: Vec<&serde_json::Value> = doc["benchmarks"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["verdict"] == "regression")
        .collect();
    assert!(!regs.is_empty());
    for r in &regs {
        assert!(r["name"].as_str().unwrap().starts_with("Checksum-"), "{r}");
        let change = r["change"].as_f64().unwrap();
        let p = r["p"].as_f64().unwrap();
        assert!(p <= 0.05, "{r}");
        // sec/op went up, B/s went down.
        if r["unit"] == "sec/op" {
            assert!((0.1..1.5).contains(&change), "{r}");
        } else {
            assert_eq!(r["unit"], "B/s");
            assert!(change < -0.1, "{r}");
        }
    }

    let o = gocost(
        &["--base", "a.txt", "--head", "c.txt", "--format", "markdown"],
        &dir,
    );
    assert_eq!(o.status.code(), Some(1));
    let md = stdout(&o);
    assert!(md.starts_with("### ❌ gocost compare: "), "{md}");
    assert!(
        md.contains("| Checksum-") && md.contains("❌ regression"),
        "{md}"
    );

    // Only allocations gate: the time regression is reported, not failed.
    let o = gocost(
        &["--base", "a.txt", "--head", "c.txt", "--fail-on", "allocs"],
        &dir,
    );
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("worse outside --fail-on"),
        "{}",
        stdout(&o)
    );

    // A repository's config raises the threshold beyond the change; flags still win.
    std::fs::write(dir.join("gocost.toml"), "[compare]\nthreshold = \"300%\"\n").unwrap();
    let o = gocost(&["--base", "a.txt", "--head", "c.txt"], &dir);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(stdout(&o).contains("threshold 300%"));
    let o = gocost(
        &["--base", "a.txt", "--head", "c.txt", "--threshold", "5%"],
        &dir,
    );
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg_attr(not(has_go), ignore = "needs Go: set $GO or put go on PATH")]
#[test]
fn profiles_name_the_function_that_got_slower() {
    let go = gocost_testkit::go_toolchain();
    let dir = tmp("prof");
    let base = build(&go, &dir, None);
    let slow = build(&go, &dir, Some("slower"));
    // A fixed amount of work per profile (-benchtime=Nx), on both cores; eight per side, so
    // that a U test over the profiles stays significant after Holm's correction.
    let mut names = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..8 {
        for (bin, side, list) in [
            (&base, "a", &mut names.0),
            (&base, "b", &mut names.1),
            (&slow, "c", &mut names.2),
        ] {
            let f = format!("{side}{i}.pprof");
            let prof = format!("-test.cpuprofile={}", dir.join(&f).display());
            let out = run_bench(
                bin,
                &[
                    "-test.bench=^BenchmarkMixParallel$",
                    "-test.benchtime=20000x",
                    &prof,
                ],
            );
            let txt = dir.join(format!("{side}.txt"));
            let mut all = std::fs::read(&txt).unwrap_or_default();
            all.extend(out);
            std::fs::write(&txt, all).unwrap();
            list.push(f);
        }
    }
    let args = |base: &[String], head: &[String]| -> Vec<String> {
        // Gate the hot functions only (5% of the time or more): fewer functions tested at
        // once, less correction for multiple tests.
        let mut v: Vec<String> = ["--normalize", "none", "--min-share", "5%", "--base"]
            .map(String::from)
            .to_vec();
        v.extend(base.iter().cloned());
        v.push("--head".into());
        v.extend(head.iter().cloned());
        v
    };
    let run = |a: Vec<String>| {
        let refs: Vec<&str> = a.iter().map(String::as_str).collect();
        gocost(&refs, &dir)
    };

    let o = run(args(&names.0, &names.1));
    assert_eq!(
        o.status.code(),
        Some(0),
        "identical builds:\n{}",
        stdout(&o)
    );

    let mut a = args(&names.0, &names.2);
    a.extend(["--format".to_string(), "json".into()]);
    let o = run(a);
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(o.status.code(), Some(1), "{doc:#}");
    assert_eq!(doc["profiles"]["test"], "u-test");
    let regs: Vec<&str> = doc["profiles"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["verdict"] == "regression")
        .map(|r| r["function"].as_str().unwrap())
        .collect();
    assert_eq!(regs, ["example.com/benchcmp.checksum"], "{doc:#}");

    // Benchmark output and profiles together: the table, then the functions that changed.
    let mut a = args(&names.0, &names.2);
    a.extend(["--format", "markdown", "--base", "a.txt", "--head", "c.txt"].map(String::from));
    let o = run(a);
    let md = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{md}");
    let table = md.find("| MixParallel-").unwrap_or_else(|| panic!("{md}"));
    let funcs = md
        .find("#### Top changed functions")
        .unwrap_or_else(|| panic!("{md}"));
    assert!(table < funcs, "{md}");
    assert!(
        md[funcs..].contains("| `example.com/benchcmp.checksum` |"),
        "{md}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The cells of benchstat's table rows: (name, base, ±, head, ±, delta, p/n) and geomeans.
fn table_cells(text: &str, sep: &str) -> Vec<Vec<String>> {
    let row = Regex::new(&format!(
        r"^(\S+)\s+(\S+) ± (\S+)(?: [¹²³⁴⁵⁶⁷⁸⁹⁰]+)?\s+(\S+) ± (\S+)(?: [¹²³⁴⁵⁶⁷⁸⁹⁰]+)?\s+(\S+){sep}\(([^)]*)\)"
    ))
    .unwrap();
    let sup = Regex::new("[¹²³⁴⁵⁶⁷⁸⁹⁰]+").unwrap();
    let mut out = Vec::new();
    for l in text.lines() {
        if let Some(c) = row.captures(l) {
            out.push((1..=7).map(|i| c[i].to_string()).collect());
        } else if let Some(rest) = l.strip_prefix("geomean ") {
            // Values, without warning markers (a missing geomean is blank in both).
            let rest = sup.replace_all(rest, "");
            out.push(rest.split_whitespace().map(String::from).collect());
        }
    }
    out
}

#[test]
fn numbers_match_benchstat() {
    let dir = root().join("testdata/compare/bench");
    for (base, head, golden) in [
        ("base.txt", "head.txt", "benchstat.txt"),
        ("base3.txt", "head3.txt", "benchstat3.txt"),
    ] {
        let want = std::fs::read_to_string(dir.join(golden)).unwrap();
        let o = gocost(&["--base", base, "--head", head], &dir);
        assert!(o.status.code() == Some(0) || o.status.code() == Some(1));
        let ours = table_cells(&stdout(&o), r"\s+");
        let theirs = table_cells(&want, " ");
        assert!(theirs.len() >= 10, "{golden}: parsed {theirs:?}");
        assert_eq!(ours, theirs, "{golden}\n--- gocost:\n{}", stdout(&o));
    }
}

#[test]
fn bad_input_is_exit_2_and_names_the_file() {
    let dir = tmp("bad");
    std::fs::write(dir.join("empty.txt"), "PASS\nok  \texample.com/x\t0.1s\n").unwrap();
    std::fs::write(dir.join("junk.pprof"), [0x1f, 0x8b, 0x08, 0x00, 0xff, 0xff]).unwrap();
    std::fs::write(dir.join("b.txt"), "BenchmarkX-2 10 5 ns/op\n").unwrap();
    std::fs::write(dir.join("other.json"), "{\"a\": 1}").unwrap();
    std::fs::write(dir.join("cut.json"), "{\"model\": \"open\", \"seconds\": [").unwrap();
    std::fs::write(
        dir.join("bad-second.json"),
        "{\"model\": \"open\", \"seconds\": [{\"requests\": 5}]}",
    )
    .unwrap();
    let prof = root().join("testdata/profiles");
    let some_profile = std::fs::read_dir(&prof)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with(".pb.gz"))
        .unwrap();
    std::fs::copy(&some_profile, dir.join("p.pb.gz")).unwrap();
    for (args, needle) in [
        (
            vec!["--base", "missing.txt", "--head", "b.txt"],
            "missing.txt",
        ),
        (
            vec!["--base", "other.json", "--head", "b.txt"],
            "other.json: JSON, but not a gocost load report",
        ),
        (
            vec!["--base", "cut.json", "--head", "b.txt"],
            "cut.json: not a gocost load report: EOF",
        ),
        (
            vec!["--base", "bad-second.json", "--head", "b.txt"],
            "bad-second.json: seconds[0]",
        ),
        (
            vec!["--base", "empty.txt", "--head", "b.txt"],
            "empty.txt: no benchmark results",
        ),
        (
            vec!["--base", "junk.pprof", "--head", "b.txt"],
            "junk.pprof: parsing profile",
        ),
        (
            vec!["--base", "p.pb.gz", "--head", "b.txt"],
            "only the head side has benchmark output",
        ),
        (
            vec!["--base", "b.txt", "--head", "b.txt", "--threshold", "lots"],
            "--threshold",
        ),
        (
            vec!["--base", "b.txt", "--head", "b.txt", "--fail-on", "speed"],
            "speed",
        ),
        (
            vec!["--base", "b.txt", "--head", "b.txt", "--alpha", "2"],
            "--alpha",
        ),
    ] {
        let o = gocost(&args, &dir);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    // A malformed [compare] section is bad input too.
    std::fs::write(dir.join("gocost.toml"), "[compare]\nthreshhold = \"5%\"\n").unwrap();
    let o = gocost(&["--base", "b.txt", "--head", "b.txt"], &dir);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("threshhold"));
    let _ = std::fs::remove_dir_all(&dir);
}
