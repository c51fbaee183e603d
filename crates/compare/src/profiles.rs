//! Comparing two sets of pprof profiles per function: each function's flat (self) and cum
//! values, normalised by each side's total (its share, the default) or as a mean per profile,
//! and a significance test of the flat change:
//!
//! - with at least 4 profiles on each side (enough for p ≤ 0.05), a Mann–Whitney U test over
//!   the per-profile values, as for benchmarks;
//! - otherwise, a test of the sample counts behind the merged values (sampling noise), when
//!   the profiles have a `count` sample type (CPU `samples`, heap `alloc_objects`, ...):
//!   two proportions for shares, a conditional binomial for per-profile means — both by the
//!   normal approximation.

use std::collections::HashMap;

use gocost_pprof::Profile;
use gocost_report::{Options as ReportOptions, Report};
use serde::Serialize;

use crate::{Category, Options, Verdict, stats};

/// How function values are made comparable between sides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Normalize {
    /// Each value as a share of its side's total: a longer or busier run does not look like
    /// a regression.
    Total,
    /// Values as they are, averaged per profile when a side has several.
    None,
}

impl Normalize {
    pub fn parse(s: &str) -> Result<Normalize, String> {
        match s {
            "total" => Ok(Normalize::Total),
            "none" | "absolute" => Ok(Normalize::None),
            _ => Err(format!("unknown --normalize {s:?} (total, none)")),
        }
    }
}

/// Settings of a profile comparison.
#[derive(Debug, Clone)]
pub struct ProfileOptions {
    /// The sample type to compare (pprof's `-sample_index`), default: the profile's default.
    pub sample_index: Option<String>,
    pub normalize: Normalize,
    /// Functions whose flat share is below this on both sides are shown, never failed.
    pub min_share: f64,
}

impl Default for ProfileOptions {
    fn default() -> Self {
        ProfileOptions {
            sample_index: None,
            normalize: Normalize::Total,
            min_share: 0.01,
        }
    }
}

/// One function's values in one profile.
#[derive(Debug, Clone, Copy, Default)]
struct FnValues {
    flat: i64,
    cum: i64,
    /// Flat value in the count sample type (for the sampling-noise test).
    flat_count: i64,
}

struct Summarized {
    total: i64,
    count_total: i64,
    funcs: HashMap<String, FnValues>,
}

fn report(p: Profile, index: Option<&str>) -> Result<Report, String> {
    let o = ReportOptions {
        sample_index: index.map(str::to_string),
        hide: Some(gocost_report::HIDE_ASYNC_PREEMPT.to_string()),
        nodefraction: 0.0,
        edgefraction: 0.0,
        nodecount: Some(0),
        ..ReportOptions::default()
    };
    Report::new(p, &o).map_err(|e| e.to_string())
}

fn summarize(p: Profile, o: &ProfileOptions) -> Result<(Summarized, String, String), String> {
    let count_index = p
        .sample_type
        .iter()
        .position(|st| &*st.unit == "count")
        .map(|i| i.to_string());
    let counts = match &count_index {
        Some(ci) => Some(report(p.clone(), Some(ci))?.top()),
        None => None,
    };
    let rpt = report(p, o.sample_index.as_deref())?;
    let (typ, unit) = (rpt.sample_type.clone(), rpt.sample_unit.clone());
    let total = rpt.total;
    let top = rpt.top();
    let mut funcs: HashMap<String, FnValues> = HashMap::new();
    for r in &top.rows {
        let e = funcs.entry(r.name.clone()).or_default();
        e.flat += r.flat;
        e.cum = e.cum.max(r.cum);
    }
    let mut count_total = 0;
    if let Some(c) = counts {
        count_total = c.total;
        for r in &c.rows {
            funcs.entry(r.name.clone()).or_default().flat_count += r.flat;
        }
    }
    Ok((
        Summarized {
            total,
            count_total,
            funcs,
        },
        typ,
        unit,
    ))
}

/// One side of a function row.
#[derive(Debug, Clone, Serialize)]
pub struct FnSide {
    /// Σ flat over the side's profiles (in the sample unit).
    pub flat: i64,
    pub cum: i64,
    /// Normalised flat and cum: shares of the total, or means per profile.
    pub flat_norm: f64,
    pub cum_norm: f64,
}

/// A function compared.
#[derive(Debug, Clone, Serialize)]
pub struct FnRow {
    pub function: String,
    pub base: FnSide,
    pub head: FnSide,
    /// Relative changes of the normalised values (None when the base is 0).
    pub flat_change: Option<f64>,
    pub cum_change: Option<f64>,
    /// The test's p-value, and after Holm's correction for the number of functions tested.
    pub p: Option<f64>,
    pub p_adjusted: Option<f64>,
    /// Whether the function is large enough (--min-share) to be tested and to fail.
    pub gated: bool,
    /// `p_adjusted ≤ alpha`.
    pub significant: bool,
    pub verdict: Verdict,
}

/// The result of a profile comparison.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub sample_type: String,
    pub sample_unit: String,
    pub category: Category,
    pub normalize: Normalize,
    pub base_profiles: usize,
    pub head_profiles: usize,
    pub base_total: i64,
    pub head_total: i64,
    /// "u-test", "two-proportion", "rate" or "none".
    pub test: &'static str,
    /// Every function, biggest change in normalised flat value first.
    pub rows: Vec<FnRow>,
    pub warnings: Vec<String>,
}

/// Compares profiles; each side's profiles are listed with a name for error messages.
pub fn compare(
    base: Vec<(String, Profile)>,
    head: Vec<(String, Profile)>,
    po: &ProfileOptions,
    o: &Options,
) -> Result<Comparison, String> {
    let mut warnings = Vec::new();
    let mut sides: Vec<Vec<Summarized>> = Vec::new();
    let mut types: Vec<(String, String)> = Vec::new();
    for profiles in [base, head] {
        let mut s = Vec::new();
        for (name, p) in profiles {
            let (sum, typ, unit) = summarize(p, po).map_err(|e| format!("{name}: {e}"))?;
            if let Some((t0, u0)) = types.first()
                && (t0 != &typ || u0 != &unit)
            {
                return Err(format!(
                    "{name}: compares {typ}/{unit} but the first profile {t0}/{u0}; \
                     choose one with --sample-index"
                ));
            }
            types.push((typ, unit));
            s.push(sum);
        }
        sides.push(s);
    }
    let (sample_type, sample_unit) = types.swap_remove(0);
    let category = Category::of_sample_type(&sample_type, &sample_unit);
    let (hs, bs) = (
        sides.pop().unwrap_or_default(),
        sides.pop().unwrap_or_default(),
    );
    let (kb, kh) = (bs.len(), hs.len());
    let base_total: i64 = bs.iter().map(|s| s.total).sum();
    let head_total: i64 = hs.iter().map(|s| s.total).sum();
    let (cb, ch): (i64, i64) = (
        bs.iter().map(|s| s.count_total).sum(),
        hs.iter().map(|s| s.count_total).sum(),
    );
    if base_total == 0 || head_total == 0 {
        return Err(format!(
            "the {} profiles have no {sample_type} samples",
            if base_total == 0 { "base" } else { "head" }
        ));
    }
    let need = stats::samples_for_u_test(o.alpha).unwrap_or(usize::MAX);
    let test = if kb >= need && kh >= need {
        "u-test"
    } else if cb > 0 && ch > 0 {
        match po.normalize {
            Normalize::Total => "two-proportion",
            Normalize::None => "rate",
        }
    } else {
        warnings.push(format!(
            "no significance test: fewer than {need} profiles per side and no count sample type; \
             changes are judged by the threshold alone"
        ));
        "none"
    };

    let mut names: Vec<&String> = bs
        .iter()
        .chain(hs.iter())
        .flat_map(|s| s.funcs.keys())
        .collect();
    names.sort();
    names.dedup();
    let norm = |v: f64, total: i64, k: usize| match po.normalize {
        Normalize::Total => v / total as f64,
        Normalize::None => v / k as f64,
    };
    let per_profile = |side: &[Summarized], f: &str| -> Vec<f64> {
        side.iter()
            .map(|s| {
                let v = s.funcs.get(f).map_or(0, |x| x.flat) as f64;
                match po.normalize {
                    Normalize::Total => v / s.total.max(1) as f64,
                    Normalize::None => v,
                }
            })
            .collect()
    };
    let mut rows = Vec::with_capacity(names.len());
    for f in names {
        let sum = |side: &[Summarized]| {
            side.iter().fold(FnValues::default(), |mut a, s| {
                if let Some(v) = s.funcs.get(f.as_str()) {
                    a.flat += v.flat;
                    a.cum += v.cum;
                    a.flat_count += v.flat_count;
                }
                a
            })
        };
        let (b, h) = (sum(&bs), sum(&hs));
        let fside = |v: &FnValues, total: i64, k: usize| FnSide {
            flat: v.flat,
            cum: v.cum,
            flat_norm: norm(v.flat as f64, total, k),
            cum_norm: norm(v.cum as f64, total, k),
        };
        let (bside, hside) = (fside(&b, base_total, kb), fside(&h, head_total, kh));
        let flat_change = relative_change(po.normalize, bside.flat_norm, hside.flat_norm);
        let cum_change = relative_change(po.normalize, bside.cum_norm, hside.cum_norm);
        let p = match test {
            "u-test" => Some(
                stats::mann_whitney_u(&per_profile(&bs, f), &per_profile(&hs, f))
                    .map_or(1.0, |t| t.p),
            ),
            // z for now; turned into p below, once the dispersion is known.
            "two-proportion" => Some(two_proportion_z(b.flat_count, cb, h.flat_count, ch)),
            "rate" => Some(rate_z(b.flat_count, kb, h.flat_count, kh)),
            _ => None,
        };
        let share = |v: i64, t: i64| v.unsigned_abs() as f64 / t.max(1) as f64;
        let gated =
            share(b.flat, base_total) >= po.min_share || share(h.flat, head_total) >= po.min_share;
        rows.push(FnRow {
            function: f.clone(),
            base: bside,
            head: hside,
            flat_change,
            cum_change,
            p,
            p_adjusted: None,
            gated,
            significant: false,
            verdict: Verdict::Unchanged,
        });
    }
    if matches!(test, "two-proportion" | "rate") {
        // Runs differ by more than sampling noise (caches, frequency, scheduling), so
        // Poisson z-scores overstate significance. Most functions do not change between
        // base and head, so the spread of their z-scores measures the real noise: scale by
        // λ = median(z²) / median(χ²₁) when above 1 ("genomic control", Devlin & Roeder 1999).
        let mut z2: Vec<f64> = rows
            .iter()
            .filter(|r| r.base.flat.unsigned_abs().max(r.head.flat.unsigned_abs()) > 0)
            .filter_map(|r| r.p.map(|z| z * z))
            .collect();
        z2.sort_by(f64::total_cmp);
        let lambda = if z2.len() >= 10 {
            (z2[z2.len() / 2] / 0.454_936_423_119_572_8).max(1.0)
        } else {
            1.0
        };
        if lambda > 1.0 {
            warnings.push(format!(
                "run-to-run noise is {lambda:.2}x the sampling noise (dispersion from {} functions); \
                 p-values are scaled for it. Several profiles per side (>= 4) measure it directly",
                z2.len()
            ));
        }
        for r in &mut rows {
            r.p =
                r.p.map(|z| 2.0 * stats::norm_cdf(-(z / lambda.sqrt()).abs()));
        }
    }
    // Many functions are tested at once: Holm's step-down correction keeps the chance of
    // any false alarm at alpha. Only gated functions (above --min-share) are tested.
    let mut order: Vec<usize> = (0..rows.len())
        .filter(|&i| rows[i].gated && rows[i].p.is_some())
        .collect();
    order.sort_by(|&a, &b| {
        rows[a]
            .p
            .unwrap_or(1.0)
            .total_cmp(&rows[b].p.unwrap_or(1.0))
    });
    let m = order.len();
    let mut running = 0.0f64;
    for (rank, &i) in order.iter().enumerate() {
        let adj = ((m - rank) as f64 * rows[i].p.unwrap_or(1.0)).min(1.0);
        running = running.max(adj);
        rows[i].p_adjusted = Some(running);
    }
    for r in &mut rows {
        r.significant = match (test, r.p_adjusted) {
            ("none", _) => true,
            (_, Some(p)) => p <= o.alpha,
            _ => false,
        };
        // A function that appears from nothing is an infinite change.
        let change = r.flat_change.or(if r.head.flat_norm > 0.0 {
            Some(f64::INFINITY)
        } else {
            None
        });
        r.verdict = if r.gated {
            Verdict::decide(change, r.significant, false, category, o)
        } else {
            Verdict::Unchanged
        };
    }
    // Biggest movers first: by the change in share (or per-profile value), then by name.
    let key = |r: &FnRow| match po.normalize {
        Normalize::Total => (r.head.flat_norm - r.base.flat_norm).abs(),
        Normalize::None => (r.head.flat_norm - r.base.flat_norm).abs() / base_total.max(1) as f64,
    };
    rows.sort_by(|a, b| {
        key(b)
            .total_cmp(&key(a))
            .then_with(|| a.function.cmp(&b.function))
    });
    Ok(Comparison {
        sample_type,
        sample_unit,
        category,
        normalize: po.normalize,
        base_profiles: kb,
        head_profiles: kh,
        base_total,
        head_total,
        test,
        rows,
        warnings,
    })
}

/// The relative change of a normalised value. For shares it is the change of the function
/// relative to the rest of the profile — the odds ratio (h / (1 − h)) / (b / (1 − b)) − 1 —
/// so a function with 60 % of the time that got 15 % slower reads +15 %, not the +6 % its
/// share moved. For per-profile values it is h / b − 1. None when the base is 0.
pub fn relative_change(n: Normalize, b: f64, h: f64) -> Option<f64> {
    if b == h {
        return Some(0.0);
    }
    if b == 0.0 {
        return None;
    }
    match n {
        Normalize::None => Some(h / b - 1.0),
        Normalize::Total => {
            if b >= 1.0 {
                return None;
            }
            if h >= 1.0 {
                return Some(f64::INFINITY);
            }
            Some((h / (1.0 - h)) / (b / (1.0 - b)) - 1.0)
        }
    }
}

/// z-score of "the function's share of samples is the same on both sides" (pooled
/// two-proportion test).
pub fn two_proportion_z(x1: i64, n1: i64, x2: i64, n2: i64) -> f64 {
    let (x1, n1, x2, n2) = (x1 as f64, n1 as f64, x2 as f64, n2 as f64);
    let pooled = (x1 + x2) / (n1 + n2);
    let se = (pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2)).sqrt();
    if se == 0.0 || !se.is_finite() {
        return 0.0;
    }
    (x2 / n2 - x1 / n1) / se
}

/// z-score of "the function's sample rate per profile is the same": given x1 + x2 samples,
/// x2 ~ Binomial(x1 + x2, k2 / (k1 + k2)).
pub fn rate_z(x1: i64, k1: usize, x2: i64, k2: usize) -> f64 {
    let m = (x1 + x2) as f64;
    if m == 0.0 {
        return 0.0;
    }
    let q = k2 as f64 / (k1 + k2) as f64;
    (x2 as f64 - m * q) / (m * q * (1.0 - q)).sqrt()
}
