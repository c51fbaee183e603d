//! What a service costs: CPU from CPU profiles (cores = CPU time ÷ the time the profiles
//! covered), memory from the process's resident memory when known (`process_resident_memory_bytes`,
//! else the Go runtime's `go_memstats_sys_bytes`), else from heap profiles (the mean heap in
//! use); each priced per hour and split over functions by their flat share (CPU time, heap
//! in use).
//!
//! Default rates are AWS Fargate's on-demand Linux/x86 prices in us-east-1 — $0.04048 per
//! vCPU-hour and $0.004445 per GB-hour — a common reference for what a core and a gigabyte
//! of a container cost; set your own. A month is 730 hours. Heap in use is what the Go
//! heap holds as of the last GC; the process's RSS is larger (runtime, stacks, free space
//! kept for reuse), so memory cost from heap profiles alone is a lower bound; with RSS, each
//! function's memory is its share of the heap times the RSS.

use gocost_pprof::{Combiner, Profile};
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
    /// GiB of memory charged to it: its share of the heap × the memory measured.
    pub memory_gib: f64,
    pub cpu_per_month: f64,
    pub memory_per_month: f64,
    pub total_per_month: f64,
}

/// Where the memory number comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MemorySource {
    /// No memory data.
    None,
    /// The mean Go heap in use of the heap profiles (a lower bound).
    Heap,
    /// The mean of `go_memstats_sys_bytes` (all memory the Go runtime got from the OS).
    GoSys,
    /// The mean of `process_resident_memory_bytes`.
    Rss,
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
    /// Memory priced, GiB (see `memory_source`).
    pub memory_gib: f64,
    pub memory_source: MemorySource,
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
    let rpt = Report::new(p, &o).map_err(|e| e.to_string())?;
    let top = rpt.top();
    Ok((
        top.rows.into_iter().map(|r| (r.name, r.flat)).collect(),
        top.total,
    ))
}

/// What one service (one process, or one target over time) used: CPU and heap profiles,
/// merged as they come, and optionally measured memory.
#[derive(Default)]
pub struct Usage {
    cpu: Combiner,
    heap: Combiner,
    cpu_profiles: usize,
    heap_profiles: usize,
    memory: Option<(f64, MemorySource)>,
}

impl Usage {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a CPU profile (`cpu`/`nanoseconds`, with its duration).
    pub fn add_cpu(&mut self, p: Profile) -> Result<(), String> {
        self.add_cpu_merged(p, 1)
    }

    /// Adds the merge of `n` CPU profiles (their durations summed).
    pub fn add_cpu_merged(&mut self, p: Profile, n: usize) -> Result<(), String> {
        if p.duration_nanos <= 0 {
            return Err(format!(
                "CPU profile {} has no duration: it cannot say how many cores were busy",
                self.cpu_profiles + 1
            ));
        }
        self.cpu_profiles += n;
        self.cpu.push(p).map_err(|e| e.to_string())
    }

    /// Adds a heap profile (a snapshot with `inuse_space`).
    pub fn add_heap(&mut self, p: Profile) -> Result<(), String> {
        self.add_heap_merged(p, 1)
    }

    /// Adds the merge (sum) of `n` heap profiles.
    pub fn add_heap_merged(&mut self, p: Profile, n: usize) -> Result<(), String> {
        self.heap_profiles += n;
        self.heap.push(p).map_err(|e| e.to_string())
    }

    /// Adds a CPU or heap profile, told apart by its sample types.
    pub fn add(&mut self, p: Profile) -> Result<(), String> {
        let has = |t: &str| p.sample_type.iter().any(|s| &*s.r#type == t);
        if has("cpu") {
            self.add_cpu(p)
        } else if has("inuse_space") {
            self.add_heap(p)
        } else {
            Err("neither a CPU profile (cpu) nor a heap profile (inuse_space)".into())
        }
    }

    /// Prices memory from a measured mean (bytes) instead of the heap profiles.
    pub fn set_memory(&mut self, mean_bytes: f64, source: MemorySource) {
        self.memory = Some((mean_bytes, source));
    }

    /// True when nothing was added.
    pub fn is_empty(&self) -> bool {
        self.cpu_profiles == 0 && self.heap_profiles == 0 && self.memory.is_none()
    }

    pub fn estimate(self, rates: &Rates) -> Result<Estimate, String> {
        if self.is_empty() {
            return Err("no CPU or heap profiles".into());
        }
        let (n_cpu, n_heap) = (self.cpu_profiles, self.heap_profiles);
        let mut per: std::collections::HashMap<String, (f64, f64)> = Default::default();
        let (mut cpu_ns, mut covered_ns) = (0i64, 0i64);
        if let Some(p) = self.cpu.finish() {
            covered_ns = p.duration_nanos;
            let (rows, total) = flat_by_function(p, "cpu")?;
            cpu_ns = total;
            for (f, v) in rows {
                per.entry(f).or_default().0 += v as f64;
            }
        }
        let mut heap_bytes = 0i64;
        if let Some(p) = self.heap.finish() {
            let (rows, total) = flat_by_function(p, "inuse_space")?;
            heap_bytes = total;
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
        let (memory_gib, memory_source) = match self.memory {
            Some((b, src)) => (b / GIB, src),
            None if n_heap > 0 => (heap_gib, MemorySource::Heap),
            None => (0.0, MemorySource::None),
        };
        // Each function's memory: its share of the heap, times the memory priced.
        let mem_per_heap = if heap_gib > 0.0 {
            memory_gib / heap_gib
        } else {
            0.0
        };
        let cpu_per_hour = cores * rates.cpu_per_core_hour;
        let memory_per_hour = memory_gib * rates.memory_per_gib_hour;
        let mut functions: Vec<FunctionCost> = per
            .into_iter()
            .map(|(function, (cpu_v, heap_v))| {
                let f_cores = if covered > 0.0 {
                    cpu_v / 1e9 / covered
                } else {
                    0.0
                };
                let f_heap = if n_heap > 0 {
                    heap_v / n_heap as f64 / GIB
                } else {
                    0.0
                };
                let f_mem = f_heap * mem_per_heap;
                let cpu_pm = f_cores * rates.cpu_per_core_hour * HOURS_PER_MONTH;
                let mem_pm = f_mem * rates.memory_per_gib_hour * HOURS_PER_MONTH;
                FunctionCost {
                    function,
                    cores: f_cores,
                    heap_gib: f_heap,
                    memory_gib: f_mem,
                    cpu_per_month: cpu_pm,
                    memory_per_month: mem_pm,
                    total_per_month: cpu_pm + mem_pm,
                }
            })
            .filter(|f| f.total_per_month > 0.0)
            .collect();
        sort_functions(&mut functions);
        Ok(Estimate {
            cpu_profiles: n_cpu,
            heap_profiles: n_heap,
            cpu_seconds: cpu_ns as f64 / 1e9,
            covered_seconds: covered,
            cores,
            heap_gib,
            memory_gib,
            memory_source,
            cpu_per_hour,
            memory_per_hour,
            cpu_per_month: cpu_per_hour * HOURS_PER_MONTH,
            memory_per_month: memory_per_hour * HOURS_PER_MONTH,
            total_per_month: (cpu_per_hour + memory_per_hour) * HOURS_PER_MONTH,
            rates: rates.clone(),
            functions,
        })
    }
}

fn sort_functions(fs: &mut [FunctionCost]) {
    fs.sort_by(|a, b| {
        b.total_per_month
            .total_cmp(&a.total_per_month)
            .then_with(|| a.function.cmp(&b.function))
    });
}

impl Estimate {
    /// Adds another service's (or instance's) estimate at the same rates: cores, memory
    /// and money add up, per function too. Covered seconds add up as well, so
    /// `cpu_seconds / covered_seconds` is the mean per instance, not `cores`.
    pub fn add(&mut self, o: &Estimate) {
        self.cpu_profiles += o.cpu_profiles;
        self.heap_profiles += o.heap_profiles;
        self.cpu_seconds += o.cpu_seconds;
        self.covered_seconds += o.covered_seconds;
        self.cores += o.cores;
        self.heap_gib += o.heap_gib;
        self.memory_gib += o.memory_gib;
        self.memory_source = least_precise(self.memory_source, o.memory_source);
        self.cpu_per_hour += o.cpu_per_hour;
        self.memory_per_hour += o.memory_per_hour;
        self.cpu_per_month += o.cpu_per_month;
        self.memory_per_month += o.memory_per_month;
        self.total_per_month += o.total_per_month;
        let mut at: std::collections::HashMap<String, usize> = self
            .functions
            .iter()
            .enumerate()
            .map(|(i, f)| (f.function.clone(), i))
            .collect();
        for f in &o.functions {
            match at.get(&f.function) {
                Some(&i) => {
                    let s = &mut self.functions[i];
                    s.cores += f.cores;
                    s.heap_gib += f.heap_gib;
                    s.memory_gib += f.memory_gib;
                    s.cpu_per_month += f.cpu_per_month;
                    s.memory_per_month += f.memory_per_month;
                    s.total_per_month += f.total_per_month;
                }
                None => {
                    at.insert(f.function.clone(), self.functions.len());
                    self.functions.push(f.clone());
                }
            }
        }
        sort_functions(&mut self.functions);
    }
}

/// Of two sources, the one that names a sum of both: the less precise, ignoring `None`
/// (heap < Go sys < RSS).
fn least_precise(a: MemorySource, b: MemorySource) -> MemorySource {
    let rank = |s: MemorySource| match s {
        MemorySource::None => 3,
        MemorySource::Rss => 2,
        MemorySource::GoSys => 1,
        MemorySource::Heap => 0,
    };
    if rank(a) <= rank(b) { a } else { b }
}
