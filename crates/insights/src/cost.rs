//! What a service costs: CPU from CPU profiles (cores = CPU time ÷ the time the profiles
//! covered), memory from heap profiles (the mean heap in use), each priced per hour and
//! split over functions by their flat share (CPU time, heap in use).
//!
//! Default rates are AWS Fargate's on-demand Linux/x86 prices in us-east-1 — $0.04048 per
//! vCPU-hour and $0.004445 per GB-hour — a common reference for what a core and a gigabyte
//! of a container cost; set your own. A month is 730 hours. Heap in use is what the Go
//! heap holds as of the last GC; the process's RSS is larger (runtime, stacks, free space
//! kept for reuse), so memory cost from heap profiles is a lower bound.

use gocost_pprof::Profile;
use gocost_report::{Options, Report};
use serde::Serialize;

/// Prices per hour.
#[derive(Debug, Clone, Serialize)]
pub struct Rates {
    pub cpu_per_core_hour: f64,
    pub memory_per_gib_hour: f64,
    pub currency: String,
}

impl Default for Rates {
    fn default() -> Self {
        Rates {
            cpu_per_core_hour: 0.04048,
            memory_per_gib_hour: 0.004445,
            currency: "USD".into(),
        }
    }
}

pub const HOURS_PER_MONTH: f64 = 730.0;
const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// One function's share of the cost.
#[derive(Debug, Clone, Serialize)]
pub struct FunctionCost {
    pub function: String,
    /// Cores it keeps busy on average (its flat CPU time ÷ the covered time).
    pub cores: f64,
    /// GiB of heap its allocations hold on average.
    pub heap_gib: f64,
    pub cpu_per_month: f64,
    pub memory_per_month: f64,
    pub total_per_month: f64,
}

/// A cost estimate.
#[derive(Debug, Clone, Serialize)]
pub struct Estimate {
    pub cpu_profiles: usize,
    pub heap_profiles: usize,
    /// Σ CPU time and Σ time covered by the CPU profiles, seconds.
    pub cpu_seconds: f64,
    pub covered_seconds: f64,
    /// Average cores busy.
    pub cores: f64,
    /// Mean heap in use, GiB.
    pub heap_gib: f64,
    pub cpu_per_hour: f64,
    pub memory_per_hour: f64,
    pub cpu_per_month: f64,
    pub memory_per_month: f64,
    pub total_per_month: f64,
    pub rates: Rates,
    /// The biggest spenders first.
    pub functions: Vec<FunctionCost>,
}

/// Flat value per function and the report total, for one sample type.
fn flat_by_function(p: Profile, sample_index: &str) -> Result<(Vec<(String, i64)>, i64), String> {
    let o = Options {
        sample_index: Some(sample_index.to_string()),
        hide: Some(gocost_report::HIDE_ASYNC_PREEMPT.to_string()),
        nodefraction: 0.0,
        edgefraction: 0.0,
        nodecount: Some(0),
        ..Options::default()
    };
    let rpt = Report::new(p, &o).map_err(|e| e.0)?;
    let top = rpt.top();
    Ok((
        top.rows.into_iter().map(|r| (r.name, r.flat)).collect(),
        top.total,
    ))
}

/// Estimates from CPU profiles (`cpu`/`nanoseconds`, with their durations) and heap
/// profiles (`inuse_space`); either list may be empty, not both.
pub fn estimate(cpu: Vec<Profile>, heap: Vec<Profile>, rates: &Rates) -> Result<Estimate, String> {
    if cpu.is_empty() && heap.is_empty() {
        return Err("no CPU or heap profiles".into());
    }
    let (n_cpu, n_heap) = (cpu.len(), heap.len());
    let mut per: std::collections::HashMap<String, (f64, f64)> = Default::default();
    let (mut cpu_ns, mut covered_ns) = (0i64, 0i64);
    for (i, p) in cpu.into_iter().enumerate() {
        if p.duration_nanos <= 0 {
            return Err(format!(
                "CPU profile {} has no duration: it cannot say how many cores were busy",
                i + 1
            ));
        }
        covered_ns += p.duration_nanos;
        let (rows, total) = flat_by_function(p, "cpu")?;
        cpu_ns += total;
        for (f, v) in rows {
            per.entry(f).or_default().0 += v as f64;
        }
    }
    let mut heap_bytes = 0i64;
    for p in heap {
        let (rows, total) = flat_by_function(p, "inuse_space")?;
        heap_bytes += total;
        for (f, v) in rows {
            per.entry(f).or_default().1 += v as f64;
        }
    }
    let covered = covered_ns as f64 / 1e9;
    let cores = if covered > 0.0 {
        cpu_ns as f64 / 1e9 / covered
    } else {
        0.0
    };
    let heap_gib = if n_heap > 0 {
        heap_bytes as f64 / n_heap as f64 / GIB
    } else {
        0.0
    };
    let cpu_per_hour = cores * rates.cpu_per_core_hour;
    let memory_per_hour = heap_gib * rates.memory_per_gib_hour;
    let mut functions: Vec<FunctionCost> = per
        .into_iter()
        .map(|(function, (cpu_v, heap_v))| {
            let f_cores = if covered > 0.0 {
                cpu_v / 1e9 / covered
            } else {
                0.0
            };
            let f_gib = if n_heap > 0 {
                heap_v / n_heap as f64 / GIB
            } else {
                0.0
            };
            let cpu_pm = f_cores * rates.cpu_per_core_hour * HOURS_PER_MONTH;
            let mem_pm = f_gib * rates.memory_per_gib_hour * HOURS_PER_MONTH;
            FunctionCost {
                function,
                cores: f_cores,
                heap_gib: f_gib,
                cpu_per_month: cpu_pm,
                memory_per_month: mem_pm,
                total_per_month: cpu_pm + mem_pm,
            }
        })
        .filter(|f| f.total_per_month > 0.0)
        .collect();
    functions.sort_by(|a, b| {
        b.total_per_month
            .total_cmp(&a.total_per_month)
            .then_with(|| a.function.cmp(&b.function))
    });
    Ok(Estimate {
        cpu_profiles: n_cpu,
        heap_profiles: n_heap,
        cpu_seconds: cpu_ns as f64 / 1e9,
        covered_seconds: covered,
        cores,
        heap_gib,
        cpu_per_hour,
        memory_per_hour,
        cpu_per_month: cpu_per_hour * HOURS_PER_MONTH,
        memory_per_month: memory_per_hour * HOURS_PER_MONTH,
        total_per_month: (cpu_per_hour + memory_per_hour) * HOURS_PER_MONTH,
        rates: rates.clone(),
        functions,
    })
}
