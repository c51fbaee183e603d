//! The binary's contract: exit codes, error messages naming the file and the field, help
//! text, JSON output, and `merge` output read back identically.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use gocost_pprof::{Function, Line, Location, Mapping, Profile, Sample, ValueType};

fn gocost(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gocost"))
        .args(args)
        .env("TZ", "UTC")
        .output()
        .expect("run gocost")
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("gocost-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

/// A small CPU-like profile: main.main → main.work (leaf), main.main → main.idle.
fn profile(work: i64, idle: i64) -> Profile {
    let f = |id: u64, name: &str| Function {
        id,
        name: name.into(),
        system_name: name.into(),
        filename: "/src/main.go".into(),
        start_line: 10 * id as i64,
    };
    let loc = |id: u64, fi: u32| Location {
        id,
        mapping: Some(0),
        address: 0x1000 + id,
        line: vec![Line {
            function: fi,
            line: 10 * id as i64 + 1,
            column: 0,
        }],
        is_folded: false,
    };
    Profile {
        sample_type: vec![
            ValueType::new("samples", "count"),
            ValueType::new("cpu", "nanoseconds"),
        ],
        period_type: ValueType::new("cpu", "nanoseconds"),
        period: 10_000_000,
        time_nanos: 1_700_000_000_000_000_000,
        duration_nanos: 1_000_000_000,
        mapping: vec![Mapping {
            id: 1,
            memory_start: 0x1000,
            memory_limit: 0x2000,
            filename: "/bin/app".into(),
            has_functions: true,
            ..Default::default()
        }],
        function: vec![f(1, "main.main"), f(2, "main.work"), f(3, "main.idle")],
        location: vec![loc(1, 0), loc(2, 1), loc(3, 2)],
        sample: vec![
            Sample {
                location: vec![1, 0],
                value: vec![work, work * 10_000_000],
                label: vec![],
            },
            Sample {
                location: vec![2, 0],
                value: vec![idle, idle * 10_000_000],
                label: vec![],
            },
        ],
        ..Default::default()
    }
}

fn write(name: &str, p: &Profile) -> PathBuf {
    let path = tmp(name);
    std::fs::write(&path, gocost_pprof::encode(p)).unwrap();
    path
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn top_prints_pprof_text() {
    let f = write("a.pb.gz", &profile(30, 10));
    let out = gocost(&["top", s(&f)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let want = "\
File: app
Type: cpu
Time: 2023-11-14 22:13:20 UTC
Duration: 1s, Total samples = 400ms (40.00%)
Showing nodes accounting for 400ms, 100% of 400ms total
      flat  flat%   sum%        cum   cum%
     300ms 75.00% 75.00%      300ms 75.00%  main.work
     100ms 25.00%   100%      100ms 25.00%  main.idle
         0     0%   100%      400ms   100%  main.main
";
    assert_eq!(text, want);
}

#[test]
fn top_json_has_rows_with_raw_values() {
    let f = write("j.pb.gz", &profile(3, 1));
    let out = gocost(&["top", "--json", s(&f)]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["rows"][0]["name"], "main.work");
    assert_eq!(v["rows"][0]["flat"], 30_000_000);
    assert_eq!(v["total"], 40_000_000);
    assert_eq!(v["sample_type"], "cpu");
}

#[test]
fn merge_sums_inputs_and_keeps_earliest_time() {
    let a = write("m1.pb.gz", &profile(3, 1));
    let mut later = profile(5, 0);
    later.time_nanos += 60_000_000_000;
    let b = write("m2.pb.gz", &later);
    let out_path = tmp("merged.pb.gz");
    let out = gocost(&["merge", "-o", s(&out_path), s(&a), s(&b)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let merged = gocost_pprof::decode(&std::fs::read(&out_path).unwrap()).unwrap();
    let total: i64 = merged.sample.iter().map(|s| s.value[0]).sum();
    assert_eq!(total, 9);
    assert_eq!(merged.time_nanos, 1_700_000_000_000_000_000);
    assert_eq!(merged.duration_nanos, 2_000_000_000);
    // Reports over the merged file equal reports over the inputs together.
    let direct = gocost(&["top", s(&a), s(&b)]);
    let via = gocost(&["top", s(&out_path)]);
    assert_eq!(direct.stdout, via.stdout);
}

/// `merge` merges flat while the inputs' types agree; an input in other units (cpu in
/// microseconds) sends the rest down pprof's pairwise combining (units scaled to the finest),
/// and the result is what the reports' own loading of the same inputs gives.
#[test]
fn merge_of_inputs_whose_units_differ_midway_scales_them() {
    let a = write("u1.pb.gz", &profile(3, 1));
    let b = write("u2.pb.gz", &profile(2, 2));
    let mut micro = profile(4, 0);
    micro.sample_type[1] = ValueType::new("cpu", "microseconds");
    micro.period_type = ValueType::new("cpu", "microseconds");
    micro.period = 10_000;
    for s in &mut micro.sample {
        s.value[1] /= 1000;
    }
    let c = write("u3.pb.gz", &micro);
    let d = write("u4.pb.gz", &profile(1, 1));
    let out_path = tmp("units-merged.pb.gz");
    let files = [s(&a), s(&b), s(&c), s(&d)];
    let mut args = vec!["merge", "-o", s(&out_path)];
    args.extend(files);
    let out = gocost(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let merged = gocost_pprof::decode(&std::fs::read(&out_path).unwrap()).unwrap();
    assert_eq!(&*merged.sample_type[1].unit, "nanoseconds");
    let cpu: i64 = merged.sample.iter().map(|s| s.value[1]).sum();
    assert_eq!(cpu, 14 * 10_000_000, "4 + 4 + 4 + 2 samples of 10ms");
    let mut top = vec!["top"];
    top.extend(files);
    let direct = gocost(&top);
    let via = gocost(&["top", s(&out_path)]);
    assert!(direct.status.success());
    assert_eq!(
        String::from_utf8_lossy(&direct.stdout),
        String::from_utf8_lossy(&via.stdout)
    );
}

#[test]
fn malformed_profile_exits_2_naming_file_and_offset() {
    let path = tmp("bad.pb");
    std::fs::write(&path, [0x0a, 0x04, 0x08, 99, 0x10, 0x01, 0x32, 0x00]).unwrap();
    let out = gocost(&["top", s(&path)]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("bad.pb"), "{err}");
    assert!(err.contains("Profile.sample_type[0].type"), "{err}");
    assert!(err.contains("byte offset 0"), "{err}");
}

#[test]
fn truncated_gzip_exits_2() {
    let good = gocost_pprof::encode(&profile(1, 1));
    let path = tmp("trunc.pb.gz");
    std::fs::write(&path, &good[..good.len() / 2]).unwrap();
    let out = gocost(&["top", s(&path)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("trunc.pb.gz"));
}

#[test]
fn size_cap_is_an_option() {
    let f = write("cap.pb.gz", &profile(1, 1));
    let out = gocost(&["top", "--max-size", "16", s(&f)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("size limit of 16 bytes"));
}

#[test]
fn missing_file_exits_1() {
    let out = gocost(&["top", "/nonexistent/profile.pb.gz"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/profile.pb.gz"));
}

#[test]
fn bad_sample_index_exits_2_with_choices() {
    let f = write("si.pb.gz", &profile(1, 1));
    let out = gocost(&["top", "--sample-index", "bogus", s(&f)]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("must be one of: [samples cpu]"), "{err}");
}

#[test]
fn incompatible_profiles_exit_2() {
    let a = write("i1.pb.gz", &profile(1, 1));
    let mut heap = profile(1, 1);
    heap.sample_type = vec![
        ValueType::new("inuse_space", "bytes"),
        ValueType::new("x", "count"),
    ];
    heap.period_type = ValueType::new("space", "bytes");
    let b = write("i2.pb.gz", &heap);
    let out = gocost(&["top", s(&a), s(&b)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("i2.pb.gz"));
}

#[test]
fn usage_errors_exit_2_and_help_teaches() {
    assert_eq!(gocost(&["top"]).status.code(), Some(2));
    let help = String::from_utf8(gocost(&["--help"]).stdout).unwrap();
    for word in ["top", "traces", "raw", "merge", "flame", "Exit codes"] {
        assert!(help.contains(word), "help lacks {word}:\n{help}");
    }
    let top = String::from_utf8(gocost(&["top", "--help"]).stdout).unwrap();
    for flag in [
        "--nodecount",
        "--sample-index",
        "--cum",
        "--focus",
        "--granularity",
        "--diff-base",
    ] {
        assert!(top.contains(flag), "top help lacks {flag}");
    }
}

#[test]
fn flame_writes_svg_folded_and_speedscope() {
    let f = write("fl.pb.gz", &profile(30, 10));
    for ext in ["svg", "folded", "json"] {
        let out_path = tmp(&format!("flame.{ext}"));
        let out = gocost(&["flame", "-o", s(&out_path), s(&f)]);
        assert!(
            out.status.success(),
            "{ext}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = std::fs::read_to_string(&out_path).unwrap();
        match ext {
            "svg" => {
                assert!(
                    text.starts_with("<?xml") && text.contains("main.work (300ms, 75.00%)"),
                    "{text}"
                );
            }
            "folded" => assert_eq!(
                text,
                "main.main;main.idle 100000000\nmain.main;main.work 300000000\n"
            ),
            _ => {
                let v: serde_json::Value = serde_json::from_str(&text).unwrap();
                assert_eq!(v["profiles"][0]["endValue"], 400_000_000);
                assert_eq!(v["profiles"][0]["unit"], "nanoseconds");
            }
        }
    }
    let bad = gocost(&["flame", "-o", s(&tmp("x.png")), s(&f)]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains(".svg, .folded or .json"));
}
