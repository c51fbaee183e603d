//! # gocost-compare
//!
//! The statistics and verdicts behind `gocost compare`, a CI gate for performance:
//!
//! - [`bench`]: two sets of `go test -bench` results ([`benchfmt`]) compared as benchstat
//!   compares them — per benchmark and unit, the median and its 95 % confidence interval on
//!   each side and a two-sided Mann–Whitney U test ([`stats`]);
//! - [`profiles`]: two sets of pprof profiles compared per function (flat and cum),
//!   normalised by each side's total or absolute, with a significance test;
//! - [`render`]: text, Markdown (for a pull-request comment) and JSON.
//!
//! A change is a **regression** when it is statistically significant (p ≤ alpha), goes the
//! bad way (more time, bytes or allocations; less throughput) by at least the threshold,
//! and its category is one the user fails on. Synchronous, no I/O: the CLI reads the files.

pub mod bench;
pub mod benchfmt;
pub mod profiles;
pub mod render;
pub mod scale;
pub mod stats;

use serde::Serialize;

/// What a measurement is about, for `--fail-on`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    /// sec/op and other time units (`gocost load`'s sec/req, cpu-sec/req), and throughput
    /// (…/s).
    Time,
    /// B/op, and bytes in profiles (alloc_space, inuse_space).
    Memory,
    /// allocs/op, and object counts in profiles (alloc_objects, inuse_objects).
    Allocs,
    /// Custom benchmark metrics and other profile sample types.
    Other,
}

impl Category {
    /// The category of a (tidied) benchmark unit.
    pub fn of_unit(unit: &str) -> Category {
        if unit == "B/op" {
            Category::Memory
        } else if unit == "allocs/op" {
            Category::Allocs
        } else if unit.starts_with("sec/") || unit.starts_with("cpu-sec/") || unit.ends_with("/s") {
            Category::Time
        } else {
            Category::Other
        }
    }

    /// The category of a profile sample type (`cpu`/`nanoseconds`, `alloc_space`/`bytes`, ...).
    pub fn of_sample_type(typ: &str, unit: &str) -> Category {
        match unit {
            "nanoseconds" | "microseconds" | "milliseconds" | "seconds" => Category::Time,
            "bytes" => Category::Memory,
            _ if typ.ends_with("_objects") => Category::Allocs,
            _ if typ == "samples" => Category::Time,
            _ => Category::Other,
        }
    }

    pub fn parse(s: &str) -> Result<Category, String> {
        match s {
            "time" | "cpu" => Ok(Category::Time),
            "memory" | "mem" | "bytes" => Ok(Category::Memory),
            "allocs" | "allocations" => Ok(Category::Allocs),
            "other" | "custom" => Ok(Category::Other),
            _ => Err(format!(
                "unknown --fail-on category {s:?} (time, memory, allocs, other)"
            )),
        }
    }
}

/// The decision for one row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Significantly worse by at least the threshold, in a category that fails.
    Regression,
    /// Significantly worse by at least the threshold, in a category that does not fail.
    Worse,
    /// Significantly better by at least the threshold.
    Improvement,
    /// No significant change, or one smaller than the threshold.
    Unchanged,
    /// Only on one side.
    Missing,
}

impl Verdict {
    /// Decides a row from its relative change (head/base − 1), significance and direction.
    pub fn decide(
        change: Option<f64>,
        significant: bool,
        higher_is_better: bool,
        category: Category,
        o: &Options,
    ) -> Verdict {
        let Some(c) = change else {
            return Verdict::Missing;
        };
        if !significant || c.abs() < o.threshold || c == 0.0 {
            return Verdict::Unchanged;
        }
        let worse = if higher_is_better { c < 0.0 } else { c > 0.0 };
        if !worse {
            Verdict::Improvement
        } else if o.fail_on.contains(&category) {
            Verdict::Regression
        } else {
            Verdict::Worse
        }
    }
}

/// The gate's settings.
#[derive(Debug, Clone)]
pub struct Options {
    /// Smallest relative change that counts (0.05 = 5 %).
    pub threshold: f64,
    /// Significance level: a change counts when p ≤ alpha.
    pub alpha: f64,
    /// Categories whose regressions fail the gate.
    pub fail_on: Vec<Category>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            threshold: 0.05,
            alpha: 0.05,
            fail_on: vec![Category::Time, Category::Memory, Category::Allocs],
        }
    }
}

/// Parses `5%`, `5 %` or `0.05` into a fraction.
pub fn parse_fraction(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let v = match t.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|v| v / 100.0),
        None => t.parse::<f64>(),
    }
    .map_err(|_| format!("{s:?} is not a percentage (e.g. 5% or 0.05)"))?;
    if !(0.0..=100.0).contains(&v) || !v.is_finite() {
        return Err(format!("{s:?} is out of range"));
    }
    Ok(v)
}
