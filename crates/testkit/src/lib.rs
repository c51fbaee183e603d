//! # gocost-testkit (dev-only)
//!
//! Shared by the golden tests and `xtask`: the case table (`testdata/golden/cases.txt`), the
//! rule that names each golden file after its flags, the translation of `go tool pprof`
//! flags into `gocost` arguments, the list of known divergences, and a byte-exact comparison
//! with a readable diff.
//!
//! ```
//! let case = gocost_testkit::Case::parse("-top -nodecount=5 -cum cpu.pb.gz").unwrap();
//! assert_eq!(case.slug, "top__nodecount=5__cum__cpu.pb.gz");
//! ```

pub mod procs;
pub mod tools;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

/// `testdata/profiles`.
pub fn profiles_dir() -> PathBuf {
    repo_root().join("testdata/profiles")
}

/// `testdata/golden`.
pub fn golden_dir() -> PathBuf {
    repo_root().join("testdata/golden")
}

/// One `go tool pprof` invocation of the golden table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case {
    /// The arguments after `go tool pprof -symbolize=none`; profile paths are relative to
    /// `testdata/profiles`.
    pub args: Vec<String>,
    /// The golden file's name without `.txt`, derived from `args`.
    pub slug: String,
}

/// Flags a case may use (with `=` for flags taking a value).
const FLAGS: &[&str] = &[
    "-top",
    "-raw",
    "-traces",
    "-tags",
    "-nodecount=",
    "-sample_index=",
    "-cum",
    "-focus=",
    "-ignore=",
    "-hide=",
    "-show=",
    "-show_from=",
    "-prune_from=",
    "-tagfocus=",
    "-tagignore=",
    "-nodefraction=",
    "-edgefraction=",
    "-dot",
    "-peek=",
    "-functions",
    "-filefunctions",
    "-files",
    "-lines",
    "-addresses",
    "-diff_base=",
    "-base=",
    "-normalize",
    "-noinlines",
];

impl Case {
    /// Parses one line of the case table.
    pub fn parse(line: &str) -> Result<Case, String> {
        let args: Vec<String> = line.split_whitespace().map(str::to_string).collect();
        if args.is_empty() {
            return Err("empty case".into());
        }
        for a in &args {
            if a.starts_with('-')
                && !FLAGS.iter().any(|f| {
                    if f.ends_with('=') {
                        a.starts_with(f)
                    } else {
                        a == f
                    }
                })
            {
                return Err(format!("unsupported flag {a:?}"));
            }
        }
        if !matches!(
            args[0].as_str(),
            "-top" | "-raw" | "-traces" | "-tags" | "-dot"
        ) && !args[0].starts_with("-peek=")
        {
            return Err(format!(
                "a case starts with -top, -raw, -traces, -tags, -dot or -peek=, not {:?}",
                args[0]
            ));
        }
        Ok(Case {
            slug: slug(&args),
            args,
        })
    }
}

/// The golden file name for a case: the arguments without their leading `-`, joined by
/// `__`, with `/` → `_` and any character outside `[A-Za-z0-9._=-]` → `~`.
pub fn slug(args: &[String]) -> String {
    args.iter()
        .map(|a| {
            a.trim_start_matches('-')
                .chars()
                .map(|c| match c {
                    '/' => '_',
                    c if c.is_ascii_alphanumeric() || "._=-".contains(c) => c,
                    _ => '~',
                })
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("__")
}

/// Parses a case table.
pub fn parse_cases(text: &str) -> Result<Vec<Case>, String> {
    let mut out: Vec<Case> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let case = Case::parse(line).map_err(|e| format!("cases.txt:{}: {e}", i + 1))?;
        if out.iter().any(|c| c.slug == case.slug) {
            return Err(format!("cases.txt:{}: duplicate case {}", i + 1, case.slug));
        }
        out.push(case);
    }
    Ok(out)
}

/// The case table `testdata/golden/cases.txt`.
pub fn cases() -> Vec<Case> {
    let path = golden_dir().join("cases.txt");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    parse_cases(&text).unwrap_or_else(|e| panic!("{e}"))
}

/// Known divergences: slug → reason (`testdata/golden/divergences.txt`, `slug<TAB>reason`).
pub fn divergences() -> BTreeMap<String, String> {
    let path = golden_dir().join("divergences.txt");
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| match l.split_once('\t') {
            Some((s, r)) => (s.trim().to_string(), r.trim().to_string()),
            None => (l.to_string(), String::new()),
        })
        .collect()
}

/// The `gocost` arguments equivalent to a case's `go tool pprof` arguments, with profile
/// paths made absolute.
pub fn gocost_args(case: &Case) -> Vec<String> {
    let dir = profiles_dir();
    let path = |p: &str| dir.join(p).to_string_lossy().into_owned();
    let mut out = Vec::new();
    for a in &case.args {
        match a.as_str() {
            "-top" => out.insert(0, "top".to_string()),
            "-raw" => out.insert(0, "raw".to_string()),
            "-traces" => out.insert(0, "traces".to_string()),
            "-tags" => out.insert(0, "tags".to_string()),
            "-dot" => out.insert(0, "dot".to_string()),
            a if a.starts_with("-peek=") => {
                out.insert(0, a["-peek=".len()..].to_string());
                out.insert(0, "peek".to_string());
            }
            "-cum" => out.push("--cum".into()),
            "-normalize" => out.push("--normalize".into()),
            "-noinlines" => out.push("--noinlines".into()),
            "-functions" | "-filefunctions" | "-files" | "-lines" | "-addresses" => {
                out.push("--granularity".into());
                out.push(a[1..].to_string());
            }
            _ => {
                if let Some(rest) = a.strip_prefix('-') {
                    let (k, v) = rest.split_once('=').unwrap_or((rest, ""));
                    out.push(format!("--{}", k.replace('_', "-")));
                    out.push(if k == "diff_base" || k == "base" {
                        path(v)
                    } else {
                        v.to_string()
                    });
                } else {
                    out.push(path(a));
                }
            }
        }
    }
    out
}

/// Compares output with a golden file byte for byte. On a mismatch, writes the actual output
/// to `target/golden-actual/<name>.txt` and returns a readable description of the first
/// difference with context.
pub fn compare_golden(name: &str, expected: &[u8], actual: &[u8]) -> Result<(), String> {
    if expected == actual {
        return Ok(());
    }
    let dir = repo_root().join("target/golden-actual");
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(dir.join(format!("{name}.txt")), actual);
    let e = String::from_utf8_lossy(expected);
    let a = String::from_utf8_lossy(actual);
    let el: Vec<&str> = e.split('\n').collect();
    let al: Vec<&str> = a.split('\n').collect();
    let first = (0..el.len().max(al.len()))
        .find(|&i| el.get(i) != al.get(i))
        .unwrap_or(0);
    let mut msg = format!("{name}: first difference at line {}\n", first + 1);
    let lo = first.saturating_sub(3);
    for i in lo..(first + 4).min(el.len().max(al.len())) {
        match (el.get(i), al.get(i)) {
            (Some(x), Some(y)) if x == y => msg.push_str(&format!("    {x:?}\n")),
            (x, y) => {
                if let Some(x) = x {
                    msg.push_str(&format!("  - {x:?}\n"));
                }
                if let Some(y) = y {
                    msg.push_str(&format!("  + {y:?}\n"));
                }
            }
        }
    }
    Err(msg)
}

/// The Go toolchain (`$GO` or `go` on PATH) for a test marked
/// `#[cfg_attr(not(has_go), ignore = "…")]`; see [`tools`].
pub fn go_toolchain() -> PathBuf {
    tools::require(&tools::GO)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_safe_and_distinct() {
        let a = Case::parse("-top -focus=(fib|mix) cpu.pb.gz").unwrap();
        assert_eq!(a.slug, "top__focus=~fib~mix~__cpu.pb.gz");
        let b = Case::parse("-raw goroot/inline/inline_hot.pprof").unwrap();
        assert_eq!(b.slug, "raw__goroot_inline_inline_hot.pprof");
        assert!(Case::parse("-web cpu.pb.gz").is_err());
        assert!(Case::parse("cpu.pb.gz").is_err());
        assert!(parse_cases("-top a\n-top a\n").is_err());
    }

    #[test]
    fn translates_flags() {
        let c = Case::parse(
            "-top -nodecount=5 -sample_index=alloc_space -lines -diff_base=a.pb.gz b.pb.gz",
        )
        .unwrap();
        let args = gocost_args(&c);
        let dir = profiles_dir().to_string_lossy().into_owned();
        assert_eq!(
            args,
            vec![
                "top".to_string(),
                "--nodecount".into(),
                "5".into(),
                "--sample-index".into(),
                "alloc_space".into(),
                "--granularity".into(),
                "lines".into(),
                "--diff-base".into(),
                format!("{dir}/a.pb.gz"),
                format!("{dir}/b.pb.gz"),
            ]
        );
    }

    #[test]
    fn compare_reports_first_difference() {
        assert!(compare_golden("same", b"a\nb\n", b"a\nb\n").is_ok());
        let e = compare_golden("testkit-selftest", b"a\nb\nc\n", b"a\nx\nc\n").unwrap_err();
        assert!(e.contains("line 2"), "{e}");
        assert!(e.contains("- \"b\"") && e.contains("+ \"x\""), "{e}");
    }
}
