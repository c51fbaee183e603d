//! What garbage collection costs a service, and what drives it:
//!
//! - **pauses**: the stop-the-world pause of every GC cycle (the runtime's `PauseNs` ring,
//!   which gocost turns into one `go_gc_pause_seconds` point per cycle): count, quantiles,
//!   total, and a heatmap (time × pause length);
//! - **GC CPU**: the share of CPU profile samples spent in the collector — background mark
//!   workers, mark assists charged to allocating goroutines, sweeping, and the
//!   stop-the-world phases — measured from the stacks, so it is the fraction *of the
//!   profiled time*, not the runtime's lifetime `GCCPUFraction`;
//! - **allocation**: bytes and objects allocated per second from `allocs` deltas, by
//!   allocation site (the innermost frame above the allocator, as for heap growth). The
//!   allocation rate is what paces the collector: halve it and GC runs half as often.

use gocost_pprof::Profile;
use serde::Serialize;

/// Pause statistics over a range.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Pauses {
    /// GC cycles seen.
    pub count: usize,
    pub total_seconds: f64,
    /// Quantiles by linear interpolation between order statistics (numpy's default,
    /// Hyndman–Fan type 7).
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

/// Quantile `q` (0..=1) of sorted values, type 7.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        1 => sorted[0],
        n => {
            let h = (n - 1) as f64 * q.clamp(0.0, 1.0);
            let lo = h.floor() as usize;
            let hi = (lo + 1).min(n - 1);
            sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
        }
    }
}

/// Statistics of pause lengths (seconds); `None` without any.
pub fn pauses(points: &[(i64, f64)]) -> Option<Pauses> {
    let mut v: Vec<f64> = points
        .iter()
        .map(|p| p.1)
        .filter(|x| x.is_finite())
        .collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(Pauses {
        count: v.len(),
        total_seconds: v.iter().sum(),
        p50: quantile(&v, 0.5),
        p90: quantile(&v, 0.9),
        p99: quantile(&v, 0.99),
        max: v[v.len() - 1],
    })
}

/// Upper bounds (seconds) of the heatmap's pause buckets; a last bucket holds the rest.
pub const PAUSE_BUCKETS: &[f64] = &[
    10e-6, 25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3,
];

/// Pauses counted per time column and pause bucket.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Heatmap {
    pub step_ms: i64,
    /// Upper bounds of the buckets in seconds; `counts` rows have one more (above the last).
    pub le: Vec<f64>,
    /// `[unix ms of the column start, [count per bucket]]`, columns without pauses omitted.
    pub columns: Vec<(i64, Vec<u32>)>,
}

/// The heatmap of pauses `(unix ns, seconds)` over `[from_ns, to_ns]` in `columns` columns.
pub fn heatmap(points: &[(i64, f64)], from_ns: i64, to_ns: i64, columns: usize) -> Heatmap {
    let step_ns = ((to_ns - from_ns).max(1) / columns.max(1) as i64).max(1_000_000_000);
    let mut cols: std::collections::BTreeMap<i64, Vec<u32>> = Default::default();
    for &(t, v) in points {
        if t < from_ns || t > to_ns || !v.is_finite() {
            continue;
        }
        let start = from_ns + (t - from_ns) / step_ns * step_ns;
        let b = PAUSE_BUCKETS.partition_point(|&le| le < v);
        cols.entry(start / 1_000_000)
            .or_insert_with(|| vec![0; PAUSE_BUCKETS.len() + 1])[b] += 1;
    }
    Heatmap {
        step_ms: step_ns / 1_000_000,
        le: PAUSE_BUCKETS.to_vec(),
        columns: cols.into_iter().collect(),
    }
}

/// The collector's phases, told apart by a frame anywhere in the stack; the first that
/// matches names the sample. [`GC_FRAMES`] is the same set as one regexp, for
/// `go tool pprof -focus`.
pub const PHASES: &[(&str, &[&str])] = &[
    ("assist", &["runtime.gcAssistAlloc"]),
    ("mark", &["runtime.gcBgMarkWorker"]),
    (
        "sweep",
        &[
            "runtime.bgsweep",
            "runtime.sweepone",
            "runtime.(*sweepLocked).sweep",
        ],
    ),
    (
        "stop_the_world",
        &[
            "runtime.gcStart",
            "runtime.gcMarkDone",
            "runtime.gcMarkTermination",
        ],
    ),
];

/// Every frame of [`PHASES`] as an anchored regexp.
pub const GC_FRAMES: &str = r"^runtime\.(gcAssistAlloc|gcBgMarkWorker|bgsweep|sweepone|\(\*sweepLocked\)\.sweep|gcStart|gcMarkDone|gcMarkTermination)$";

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Phase {
    pub phase: &'static str,
    pub seconds: f64,
    /// Of all CPU time in the profile.
    pub fraction: f64,
}

/// GC's share of the CPU time of a CPU profile.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct GcCpu {
    pub cpu_seconds: f64,
    pub gc_seconds: f64,
    pub fraction: f64,
    /// Cores the collector kept busy on average (GC CPU ÷ the time profiled).
    pub cores: f64,
    pub phases: Vec<Phase>,
}

/// GC CPU of a (merged) CPU profile; an error if it has no `cpu` sample type.
pub fn gc_cpu(p: &Profile) -> Result<GcCpu, String> {
    let i = p
        .sample_type
        .iter()
        .position(|t| &*t.r#type == "cpu")
        .ok_or("not a CPU profile (no cpu sample type)")?;
    // Phase of each function, by index.
    let phase_of: Vec<Option<usize>> = p
        .function
        .iter()
        .map(|f| {
            PHASES
                .iter()
                .position(|(_, names)| names.contains(&&*f.name))
        })
        .collect();
    let mut by_phase = vec![0i64; PHASES.len()];
    let mut total = 0i64;
    for s in &p.sample {
        let v = s.value.get(i).copied().unwrap_or(0);
        total += v;
        let phase = s
            .location
            .iter()
            .filter_map(|&l| p.location.get(l as usize))
            .flat_map(|loc| &loc.line)
            .filter_map(|line| phase_of.get(line.function as usize).copied().flatten())
            .min();
        if let Some(ph) = phase {
            by_phase[ph] += v;
        }
    }
    let secs = |ns: i64| ns as f64 / 1e9;
    let frac = |ns: i64| {
        if total > 0 {
            ns as f64 / total as f64
        } else {
            0.0
        }
    };
    let gc: i64 = by_phase.iter().sum();
    Ok(GcCpu {
        cpu_seconds: secs(total),
        gc_seconds: secs(gc),
        fraction: frac(gc),
        cores: if p.duration_nanos > 0 {
            gc as f64 / p.duration_nanos as f64
        } else {
            0.0
        },
        phases: PHASES
            .iter()
            .zip(&by_phase)
            .map(|((name, _), &ns)| Phase {
                phase: name,
                seconds: secs(ns),
                fraction: frac(ns),
            })
            .collect(),
    })
}

/// One allocation site's rate.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Site {
    pub site: String,
    pub bytes: i64,
    pub objects: i64,
    pub bytes_per_second: f64,
    pub objects_per_second: f64,
    /// Of all bytes allocated.
    pub share: f64,
}

/// What a service allocates per second, by site.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Allocation {
    /// Time the `allocs` deltas covered; 0 for a profile counted since the process started
    /// (then the rates are 0 too).
    pub seconds: f64,
    pub bytes: i64,
    pub objects: i64,
    pub bytes_per_second: f64,
    pub objects_per_second: f64,
    /// Biggest first.
    pub sites: Vec<Site>,
}

/// Allocation by site of merged `allocs` deltas (their durations summed: rates per second)
/// or of a profile counted since the process started (no duration: totals only); the `top`
/// biggest sites listed.
pub fn allocation(p: &Profile, top: usize) -> Result<Allocation, String> {
    let idx = |name: &str| p.sample_type.iter().position(|t| &*t.r#type == name);
    let space = idx("alloc_space").ok_or("not an allocs profile (no alloc_space sample type)")?;
    let objects = idx("alloc_objects");
    let mut per: std::collections::HashMap<String, (i64, i64)> = Default::default();
    let (mut bytes, mut objs) = (0i64, 0i64);
    for s in &p.sample {
        let b = s.value.get(space).copied().unwrap_or(0);
        let o = objects.and_then(|i| s.value.get(i)).copied().unwrap_or(0);
        if b == 0 && o == 0 {
            continue;
        }
        bytes += b;
        objs += o;
        let e = per
            .entry(crate::heap::site_of(&crate::leaks::sample_stack(
                p,
                &s.location,
            )))
            .or_default();
        e.0 += b;
        e.1 += o;
    }
    let secs = p.duration_nanos.max(0) as f64 / 1e9;
    let rate = |n: i64| if secs > 0.0 { n as f64 / secs } else { 0.0 };
    let mut sites: Vec<Site> = per
        .into_iter()
        .map(|(site, (b, o))| Site {
            site,
            bytes: b,
            objects: o,
            bytes_per_second: rate(b),
            objects_per_second: rate(o),
            share: if bytes > 0 {
                b as f64 / bytes as f64
            } else {
                0.0
            },
        })
        .collect();
    sites.sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| a.site.cmp(&b.site)));
    sites.truncate(top);
    Ok(Allocation {
        seconds: secs,
        bytes,
        objects: objs,
        bytes_per_second: rate(bytes),
        objects_per_second: rate(objs),
        sites,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_like_numpy() {
        // numpy.quantile([1, 2, 3, 4, 10], [0.5, 0.9, 0.99]) = 3, 7.6, 9.76
        let v = [1.0, 2.0, 3.0, 4.0, 10.0];
        assert_eq!(quantile(&v, 0.5), 3.0);
        assert!((quantile(&v, 0.9) - 7.6).abs() < 1e-12);
        assert!((quantile(&v, 0.99) - 9.76).abs() < 1e-12);
        assert_eq!(quantile(&v, 1.0), 10.0);
        assert_eq!(quantile(&[7.0], 0.99), 7.0);
        let p = pauses(&[(1, 0.002), (2, 0.001), (3, 0.003)]).unwrap();
        assert_eq!((p.count, p.p50, p.max), (3, 0.002, 0.003));
        assert!((p.total_seconds - 0.006).abs() < 1e-15);
        assert!(pauses(&[]).is_none());
    }

    #[test]
    fn heatmap_counts_each_pause_once() {
        let s = 1_000_000_000;
        let pts = [(0, 5e-6), (s / 2, 30e-6), (5 * s, 1.0), (11 * s, 1e-3)];
        let h = heatmap(&pts, 0, 10 * s, 10);
        assert_eq!(h.step_ms, 1000);
        // 11 s is out of range; 1 ms belongs to the `le = 1ms` bucket (inclusive bounds).
        assert_eq!(h.columns.len(), 2);
        assert_eq!(h.columns[0].1[0], 1);
        assert_eq!(h.columns[0].1[2], 1);
        assert_eq!(h.columns[1].0, 5000);
        assert_eq!(*h.columns[1].1.last().unwrap(), 1);
        let total: u32 = h.columns.iter().flat_map(|c| &c.1).sum();
        assert_eq!(total, 3);
    }

    #[test]
    fn the_phase_list_and_the_regexp_name_the_same_frames() {
        let re = regex_lite_match_all(GC_FRAMES);
        let mut listed: Vec<&str> = PHASES.iter().flat_map(|p| p.1.iter().copied()).collect();
        listed.sort();
        assert_eq!(re, listed);
    }

    /// The alternatives of `^runtime\.(a|b|…)$`, unescaped, sorted.
    fn regex_lite_match_all(re: &str) -> Vec<String> {
        let inner = &re["^runtime\\.(".len()..re.len() - ")$".len()];
        let mut v: Vec<String> = inner
            .split('|')
            .map(|a| format!("runtime.{}", a.replace('\\', "")))
            .collect();
        v.sort();
        v
    }
}
