//! Compile time from `go build -debug-actiongraph=FILE`: the JSON list of the go command's
//! actions (one per package step: `build` compiles, `cgo …` runs cgo and the C compiler,
//! `link` links), each with its dependencies and `TimeStart`/`TimeDone`. From it: wall time
//! per package split into compile, cgo, link and other steps; the slowest actions; and the
//! critical path, the chain of dependent actions whose durations add up the most (no
//! amount of parallelism builds faster than it).
//!
//! Cached actions take microseconds: build cold (`go build -a`, or a fresh `GOCACHE`) to
//! measure what a clean CI build pays.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::{Deserialize, Serialize};

use crate::{Error, ErrorKind};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawAction {
    #[serde(rename = "ID")]
    id: usize,
    mode: String,
    #[serde(default)]
    package: String,
    #[serde(default)]
    deps: Option<Vec<usize>>,
    #[serde(default)]
    time_start: Option<String>,
    #[serde(default)]
    time_done: Option<String>,
}

/// What an action does, for the per-package split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Step {
    Compile,
    Cgo,
    Link,
    Other,
}

impl Step {
    fn of(mode: &str) -> Step {
        if mode == "build" {
            Step::Compile
        } else if mode.starts_with("cgo") || mode == "collect cgo" {
            Step::Cgo
        } else if mode == "link" {
            Step::Link
        } else {
            Step::Other
        }
    }
}

/// One action with its wall time.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ActionTime {
    pub package: String,
    pub mode: String,
    pub seconds: f64,
}

/// One package's steps.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct PackageTime {
    pub package: String,
    pub compile: f64,
    pub cgo: f64,
    pub link: f64,
    pub other: f64,
    pub total: f64,
}

/// What a build cost.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BuildCost {
    /// Marks the JSON as this report (so `gocost compare` can tell it apart).
    pub build_cost: u32,
    /// The command that ran (set by the caller).
    #[serde(default)]
    pub command: Vec<String>,
    /// First action's start to last action's end.
    pub wall_seconds: f64,
    pub actions: usize,
    /// Actions that took at least a millisecond (the rest were cached or trivial).
    pub actions_run: usize,
    /// Largest total first.
    pub packages: Vec<PackageTime>,
    /// The slowest actions, slowest first.
    pub slowest: Vec<ActionTime>,
    /// From the first action to the last: the chain of dependencies with the largest sum.
    pub critical_path: Vec<ActionTime>,
    pub critical_path_seconds: f64,
}

fn err(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::Malformed, "action graph", None, msg)
}

/// Nanoseconds since the Unix epoch of an RFC 3339 time (`2026-12-05T08:45:08.824711238Z`,
/// or with a `+01:00` offset), as Go's JSON writes `time.Time`.
pub fn parse_time(s: &str) -> Option<i128> {
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> { s.get(r)?.parse().ok() };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let mut i = 19;
    let mut frac: i128 = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let digits = &s[start..i];
        if digits.is_empty() || digits.len() > 9 {
            return None;
        }
        frac = digits.parse::<i128>().ok()? * 10i128.pow(9 - digits.len() as u32);
    }
    let offset = match s.get(i..)? {
        "Z" => 0,
        tz if tz.len() == 6 && (tz.starts_with('+') || tz.starts_with('-')) && &tz[3..4] == ":" => {
            let sign = if tz.starts_with('-') { -1 } else { 1 };
            sign * (tz.get(1..3)?.parse::<i64>().ok()? * 3600
                + tz.get(4..6)?.parse::<i64>().ok()? * 60)
        }
        _ => return None,
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + mi * 60 + se - offset;
    Some(i128::from(secs) * 1_000_000_000 + frac)
}

/// Reads an action graph and sums it up; `top`: how many slowest actions to keep.
pub fn analyze(json: &[u8], top: usize) -> Result<BuildCost, Error> {
    let raw: Vec<RawAction> = serde_json::from_slice(json).map_err(|e| {
        Error::new(
            ErrorKind::Malformed,
            "action graph",
            None,
            format!("line {} column {}: {e}", e.line(), e.column()),
        )
    })?;
    if raw.is_empty() {
        return Err(err(
            "no actions (was the build run with -debug-actiongraph?)",
        ));
    }
    let n = raw.len();
    let mut index = BTreeMap::new();
    for (i, a) in raw.iter().enumerate() {
        if index.insert(a.id, i).is_some() {
            return Err(err(format!("action ID {} appears twice", a.id)));
        }
    }
    let mut dur = vec![0f64; n];
    let (mut first, mut last) = (i128::MAX, i128::MIN);
    for (i, a) in raw.iter().enumerate() {
        let parse = |t: &Option<String>, field: &str| -> Result<Option<i128>, Error> {
            match t {
                None => Ok(None),
                Some(s) => parse_time(s).map(Some).ok_or_else(|| {
                    err(format!(
                        "action {}: {field} {s:?} is not an RFC 3339 time",
                        a.id
                    ))
                }),
            }
        };
        if let (Some(s), Some(d)) = (
            parse(&a.time_start, "TimeStart")?,
            parse(&a.time_done, "TimeDone")?,
        ) {
            first = first.min(s);
            last = last.max(d);
            dur[i] = (d - s).max(0) as f64 / 1e9;
        }
    }
    let deps: Vec<Vec<usize>> = raw
        .iter()
        .map(|a| {
            a.deps
                .iter()
                .flatten()
                .map(|d| {
                    index.get(d).copied().ok_or_else(|| {
                        err(format!("action {} depends on unknown action {d}", a.id))
                    })
                })
                .collect()
        })
        .collect::<Result<_, _>>()?;

    // Longest path ending at each action, by an iterative depth-first walk (cycles refused).
    let mut cost = vec![f64::NAN; n];
    let mut via: Vec<Option<usize>> = vec![None; n];
    let mut state = vec![0u8; n]; // 0 new, 1 on the stack, 2 done
    for root in 0..n {
        if state[root] == 2 {
            continue;
        }
        let mut stack = vec![(root, 0usize)];
        state[root] = 1;
        while let Some(&mut (v, ref mut next)) = stack.last_mut() {
            if let Some(&d) = deps[v].get(*next) {
                *next += 1;
                match state[d] {
                    0 => {
                        state[d] = 1;
                        stack.push((d, 0));
                    }
                    1 => {
                        return Err(err(format!(
                            "a dependency cycle through action {}",
                            raw[d].id
                        )));
                    }
                    _ => {}
                }
                continue;
            }
            let best = deps[v]
                .iter()
                .copied()
                .max_by(|&a, &b| cost[a].total_cmp(&cost[b]));
            cost[v] = dur[v] + best.map_or(0.0, |b| cost[b]);
            via[v] = best;
            state[v] = 2;
            stack.pop();
        }
    }
    let end = (0..n).max_by(|&a, &b| cost[a].total_cmp(&cost[b]));
    let mut critical_path = Vec::new();
    let mut at = end;
    while let Some(v) = at {
        if dur[v] >= 0.001 {
            critical_path.push(ActionTime {
                package: raw[v].package.clone(),
                mode: raw[v].mode.clone(),
                seconds: dur[v],
            });
        }
        at = via[v];
    }
    critical_path.reverse();

    let mut packages: BTreeMap<&str, PackageTime> = BTreeMap::new();
    for (i, a) in raw.iter().enumerate() {
        let p = packages.entry(&a.package).or_default();
        match Step::of(&a.mode) {
            Step::Compile => p.compile += dur[i],
            Step::Cgo => p.cgo += dur[i],
            Step::Link => p.link += dur[i],
            Step::Other => p.other += dur[i],
        }
        p.total += dur[i];
    }
    let mut packages: Vec<PackageTime> = packages
        .into_iter()
        .map(|(name, mut p)| {
            p.package = name.to_string();
            p
        })
        .collect();
    packages.sort_by(|a, b| b.total.total_cmp(&a.total).then(a.package.cmp(&b.package)));
    let mut slowest: Vec<ActionTime> = raw
        .iter()
        .enumerate()
        .map(|(i, a)| ActionTime {
            package: a.package.clone(),
            mode: a.mode.clone(),
            seconds: dur[i],
        })
        .collect();
    slowest.sort_by(|a, b| b.seconds.total_cmp(&a.seconds));
    slowest.truncate(top);
    Ok(BuildCost {
        build_cost: 1,
        command: Vec::new(),
        wall_seconds: if last >= first {
            (last - first) as f64 / 1e9
        } else {
            0.0
        },
        actions: n,
        actions_run: dur.iter().filter(|&&d| d >= 0.001).count(),
        packages,
        slowest,
        critical_path_seconds: end.map_or(0.0, |e| cost[e]),
        critical_path,
    })
}

impl BuildCost {
    /// Text: totals, the slowest packages, the critical path.
    pub fn to_text(&self, top: usize) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "build: {:.2}s wall, {} actions ({} ran ≥ 1ms), critical path {:.2}s",
            self.wall_seconds, self.actions, self.actions_run, self.critical_path_seconds
        );
        let _ = writeln!(
            s,
            "\n{:>9} {:>9} {:>9} {:>9} {:>9}  package",
            "total", "compile", "cgo", "link", "other"
        );
        for p in self.packages.iter().filter(|p| p.total > 0.0).take(top) {
            let _ = writeln!(
                s,
                "{:>8.3}s {:>8.3}s {:>8.3}s {:>8.3}s {:>8.3}s  {}",
                p.total, p.compile, p.cgo, p.link, p.other, p.package
            );
        }
        let _ = writeln!(s, "\ncritical path (each step waits for the one before):");
        for a in &self.critical_path {
            let _ = writeln!(s, "{:>8.3}s  {} {}", a.seconds, a.mode, a.package);
        }
        s
    }

    /// The run as Go benchmark lines (`BenchmarkBuild/wall 1 N ns/op`, one per package's
    /// total), so several runs per side are compared with benchstat's statistics.
    pub fn to_bench_text(&self) -> String {
        let mut s = String::from("pkg: gocost build-cost\n");
        let name = |p: &str| p.replace(char::is_whitespace, "_");
        let _ = writeln!(
            s,
            "BenchmarkBuild/wall 1 {:.0} ns/op",
            self.wall_seconds * 1e9
        );
        let _ = writeln!(
            s,
            "BenchmarkBuild/critical-path 1 {:.0} ns/op",
            self.critical_path_seconds * 1e9
        );
        for p in &self.packages {
            if p.total > 0.0 {
                let _ = writeln!(
                    s,
                    "BenchmarkBuild/pkg={} 1 {:.0} ns/op",
                    name(&p.package),
                    p.total * 1e9
                );
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(parse_time("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_time("1970-01-02T00:00:01.5Z"),
            Some(86_401_500_000_000)
        );
        assert_eq!(
            parse_time("2000-03-01T01:00:00+01:00"),
            parse_time("2000-03-01T00:00:00Z")
        );
        // 2000-03-01 is day 11017 since the epoch.
        assert_eq!(
            parse_time("2000-03-01T00:00:00Z"),
            Some(11_017 * 86_400 * 1_000_000_000)
        );
        assert_eq!(parse_time("2000-13-01T00:00:00Z"), None);
        assert_eq!(parse_time("yesterday"), None);
    }

    #[test]
    fn per_package_and_critical_path() {
        let j = br#"[
 {"ID":0,"Mode":"link-install","Package":"m","Deps":[1],"TimeStart":"2026-01-01T00:00:09Z","TimeDone":"2026-01-01T00:00:09.1Z"},
 {"ID":1,"Mode":"link","Package":"m","Deps":[2,3],"TimeStart":"2026-01-01T00:00:07Z","TimeDone":"2026-01-01T00:00:09Z"},
 {"ID":2,"Mode":"build","Package":"m/slow","Deps":[4],"TimeStart":"2026-01-01T00:00:01Z","TimeDone":"2026-01-01T00:00:07Z"},
 {"ID":3,"Mode":"build","Package":"m/fast","Deps":[4],"TimeStart":"2026-01-01T00:00:01Z","TimeDone":"2026-01-01T00:00:02Z"},
 {"ID":4,"Mode":"build","Package":"fmt","Deps":null,"TimeStart":"2026-01-01T00:00:00Z","TimeDone":"2026-01-01T00:00:01Z"},
 {"ID":5,"Mode":"nop","Package":"","Deps":[]}
]"#;
        let b = analyze(j, 3).unwrap();
        assert_eq!(b.packages[0].package, "m/slow");
        assert_eq!(b.packages[0].compile, 6.0);
        assert_eq!(b.slowest[0].package, "m/slow");
        let path: Vec<&str> = b.critical_path.iter().map(|a| a.package.as_str()).collect();
        assert_eq!(path, ["fmt", "m/slow", "m", "m"]);
        assert!((b.critical_path_seconds - 9.1).abs() < 1e-9);
        assert!((b.wall_seconds - 9.1).abs() < 1e-9);
        assert!(
            b.to_bench_text()
                .contains("BenchmarkBuild/pkg=m/slow 1 6000000000 ns/op")
        );

        let cyc = br#"[{"ID":0,"Mode":"build","Deps":[1]},{"ID":1,"Mode":"build","Deps":[0]}]"#;
        assert!(analyze(cyc, 3).unwrap_err().to_string().contains("cycle"));
        let unknown = br#"[{"ID":0,"Mode":"build","Deps":[7]}]"#;
        assert!(
            analyze(unknown, 3)
                .unwrap_err()
                .to_string()
                .contains("unknown action 7")
        );
        assert!(analyze(b"{", 3).unwrap_err().to_string().contains("line 1"));
    }
}
