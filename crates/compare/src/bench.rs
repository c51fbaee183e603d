//! Comparing two sets of `go test -bench` results as benchstat does — per benchmark and unit,
//! the median with its 95 % interval on each side and a Mann–Whitney U test between them —
//! then deciding, with a threshold, what regressed.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::benchfmt::{self, tidy_unit};
use crate::stats::{self, Summary, UTestError};
use crate::{Category, Options, Verdict};

/// One side's measurements of one benchmark in one unit.
#[derive(Debug, Clone, Serialize)]
pub struct Side {
    /// Sorted values in the tidied unit (seconds, bytes, ...).
    pub values: Vec<f64>,
    pub median: f64,
    /// The median's confidence interval (±∞ when there are too few runs).
    #[serde(serialize_with = "ser_inf")]
    pub lo: f64,
    #[serde(serialize_with = "ser_inf")]
    pub hi: f64,
    /// The interval as benchstat prints it after "±".
    pub range: String,
}

fn ser_inf<S: serde::Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    if v.is_finite() {
        s.serialize_f64(*v)
    } else {
        s.serialize_none()
    }
}

/// A benchmark × unit row.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub pkg: String,
    pub name: String,
    pub unit: String,
    pub category: Category,
    /// Whether larger values are better (throughput units, `…/s`).
    pub higher_is_better: bool,
    pub base: Option<Side>,
    pub head: Option<Side>,
    /// head median / base median − 1 (None if a side is missing or the base median is 0
    /// while the head's is not).
    pub change: Option<f64>,
    /// The U test's two-sided p-value (1 when the test cannot be done, e.g. all equal).
    pub p: Option<f64>,
    /// `p ≤ alpha`.
    pub significant: bool,
    pub verdict: Verdict,
    pub warnings: Vec<String>,
}

impl Row {
    /// The change as benchstat prints it: `~` when not significant, else `+12.34%`.
    pub fn delta_text(&self, alpha: f64) -> String {
        let (Some(b), Some(h), Some(p)) = (&self.base, &self.head, self.p) else {
            return String::new();
        };
        if p > alpha {
            return "~".into();
        }
        if b.median == h.median {
            return "0.00%".into();
        }
        if b.median == 0.0 {
            return "?".into();
        }
        format!("{:+.2}%", (h.median / b.median - 1.0) * 100.0)
    }

    /// `p=0.002 n=10` or `p=0.002 n=10+8`, as benchstat prints it.
    pub fn p_text(&self) -> String {
        let (Some(b), Some(h), Some(p)) = (&self.base, &self.head, self.p) else {
            return String::new();
        };
        let mut s = if p != 0.0 {
            format!("p={p:.3} ")
        } else {
            String::new()
        };
        if b.values.len() == h.values.len() {
            s += &format!("n={}", b.values.len());
        } else {
            s += &format!("n={}+{}", b.values.len(), h.values.len());
        }
        s
    }
}

/// The geometric means of one unit's medians (benchstat's last row).
#[derive(Debug, Clone, Serialize)]
pub struct Geomean {
    pub unit: String,
    pub base: Option<f64>,
    pub head: Option<f64>,
    /// Geomean of head/base ratios − 1.
    pub change: Option<f64>,
}

/// Everything a benchmark comparison found.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// Shared configuration lines (goos, goarch, pkg, cpu) of the base inputs.
    pub config: Vec<(String, String)>,
    pub rows: Vec<Row>,
    pub geomeans: Vec<Geomean>,
    pub warnings: Vec<String>,
}

/// Measurements of one side, keyed by (pkg, name, unit), in first-seen order.
type Samples = Vec<((String, String, String), Vec<f64>)>;

fn collect(results: &[benchfmt::Result]) -> Samples {
    let mut out: Samples = Vec::new();
    let mut index: BTreeMap<(String, String, String), usize> = BTreeMap::new();
    for r in results {
        for (v, unit) in &r.values {
            let (unit, factor) = tidy_unit(unit);
            let key = (r.config("pkg").to_string(), r.name.clone(), unit);
            let i = *index.entry(key.clone()).or_insert_with(|| {
                out.push((key, Vec::new()));
                out.len() - 1
            });
            out[i].1.push(v * factor);
        }
    }
    out
}

fn side(mut values: Vec<f64>) -> Side {
    values.sort_by(f64::total_cmp);
    let s: Summary = stats::summarize(&values, stats::CONFIDENCE);
    Side {
        range: s.pct_range(),
        median: s.center,
        lo: s.lo,
        hi: s.hi,
        values,
    }
}

/// Compares base results with head results.
pub fn compare(base: &[benchfmt::Result], head: &[benchfmt::Result], o: &Options) -> Comparison {
    let mut warnings = Vec::new();
    for key in ["goos", "goarch", "cpu"] {
        let vals = |rs: &[benchfmt::Result]| {
            let mut v: Vec<String> = rs.iter().map(|r| r.config(key).to_string()).collect();
            v.sort();
            v.dedup();
            v
        };
        let (b, h) = (vals(base), vals(head));
        if b != h {
            warnings.push(format!(
                "base and head ran with different {key}: {} vs {}; their numbers may not be comparable",
                b.join(", "),
                h.join(", ")
            ));
        }
    }
    let config = base
        .first()
        .map(|r| {
            r.config
                .iter()
                .filter(|(k, _)| matches!(k.as_str(), "goos" | "goarch" | "pkg" | "cpu"))
                .cloned()
                .collect()
        })
        .unwrap_or_default();

    let b = collect(base);
    let mut h: BTreeMap<(String, String, String), Vec<f64>> = BTreeMap::new();
    let mut head_order = Vec::new();
    for (k, v) in collect(head) {
        head_order.push(k.clone());
        h.insert(k, v);
    }
    let mut rows = Vec::new();
    for (key, bv) in b {
        let hv = h.remove(&key);
        rows.push(row(key, Some(bv), hv, o));
    }
    for key in head_order {
        if let Some(hv) = h.remove(&key) {
            rows.push(row(key, None, Some(hv), o));
        }
    }

    let mut geomeans = Vec::new();
    let mut units: Vec<&str> = Vec::new();
    for r in &rows {
        if !units.contains(&r.unit.as_str()) {
            units.push(&r.unit);
        }
    }
    for unit in units {
        let rs: Vec<&Row> = rows.iter().filter(|r| r.unit == unit).collect();
        if rs.len() < 2 {
            continue;
        }
        let gm = |xs: Vec<f64>| Some(stats::geomean(&xs)).filter(|v| v.is_finite());
        let base = gm(rs
            .iter()
            .filter_map(|r| r.base.as_ref().map(|s| s.median))
            .collect());
        let head = gm(rs
            .iter()
            .filter_map(|r| r.head.as_ref().map(|s| s.median))
            .collect());
        let mut ratios = Vec::new();
        let mut bad = false;
        for r in &rs {
            if let (Some(b), Some(h)) = (&r.base, &r.head) {
                if b.median == h.median {
                    ratios.push(1.0);
                } else if b.median == 0.0 {
                    bad = true;
                } else {
                    ratios.push(h.median / b.median);
                }
            }
        }
        let change = if bad {
            None
        } else {
            gm(ratios).map(|g| g - 1.0)
        };
        if base.is_none() || head.is_none() {
            warnings.push(format!(
                "{unit}: no geomean of the medians: summaries must be >0 to compute geomean"
            ));
        }
        geomeans.push(Geomean {
            unit: unit.to_string(),
            base,
            head,
            change,
        });
    }
    Comparison {
        config,
        rows,
        geomeans,
        warnings,
    }
}

fn row(
    (pkg, name, unit): (String, String, String),
    base: Option<Vec<f64>>,
    head: Option<Vec<f64>>,
    o: &Options,
) -> Row {
    let category = Category::of_unit(&unit);
    let higher_is_better = unit.ends_with("/s");
    let base = base.map(side);
    let head = head.map(side);
    let mut warnings = Vec::new();
    for (what, s) in [("base", &base), ("head", &head)] {
        if let Some(s) = s
            && s.range == "∞"
        {
            let need = stats::samples_for_ci(stats::CONFIDENCE)
                .map_or(">50".to_string(), |n| format!(">= {n}"));
            warnings.push(format!(
                "{what}: need {need} samples for a confidence interval at level 0.95 (go test -count)"
            ));
        }
    }
    let (mut change, mut p, mut significant, mut verdict) = (None, None, false, Verdict::Missing);
    if let (Some(b), Some(h)) = (&base, &head) {
        let (pv, tested) = match stats::mann_whitney_u(&b.values, &h.values) {
            Ok(t) => (t.p, true),
            Err(e @ UTestError::AllEqual) | Err(e @ UTestError::SampleSize) => {
                warnings.push(e.to_string());
                (1.0, false)
            }
        };
        p = Some(pv);
        significant = pv <= o.alpha;
        if tested
            && !significant
            && let Some(need) = stats::samples_for_u_test(o.alpha)
            && b.values.len() < need
            && h.values.len() < need
        {
            warnings.push(format!(
                "need >= {need} samples on each side to detect a difference at alpha level {} (go test -count)",
                o.alpha
            ));
        }
        change = if b.median == h.median {
            Some(0.0)
        } else if b.median == 0.0 {
            // 0 → something: an infinite relative change (e.g. a first allocation).
            Some(if h.median > 0.0 {
                f64::INFINITY
            } else {
                f64::NEG_INFINITY
            })
        } else {
            Some(h.median / b.median - 1.0)
        };
        verdict = Verdict::decide(change, significant, higher_is_better, category, o);
    }
    Row {
        pkg,
        name,
        unit,
        category,
        higher_is_better,
        base,
        head,
        change: change.filter(|c| c.is_finite()),
        p,
        significant,
        verdict,
        warnings,
    }
}
