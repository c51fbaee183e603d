//! The insight commands over profile files taken over time (in any order): `gocost leaks`
//! (goroutine profiles or `debug=2` dumps), `gocost heap-growth`, `gocost cost` and `gocost gc`.

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Args;
use gocost_insights::{cost, dump, gc, growth, heap, leaks};

use crate::source::InputError;

pub const AFTER_HELP: &str = "\
Give goroutine profiles of one process taken over time (at least 5, spanning at least 30 s;
e.g. `curl -o g$(date +%s).pb.gz http://HOST/debug/pprof/goroutine` every 15 s), in any order:
they are sorted by the time inside them. `debug=2` dumps work too (their time is the file's
modification time) and add who created the goroutines and how long they have waited. A
`goroutineleak` profile (Go 1.27+) adds leaks Go's runtime proved.

A group of goroutines (what they run, where they wait) is a leak when its count keeps
growing, still grows in the later half, rarely goes down, and is not in time.Sleep. Pools,
caches warming up and finite sleeps plateau; per-request goroutines come and go.

Examples:
  gocost leaks goroutine-*.pb.gz
  gocost leaks --json goroutine-*.pb.gz | jq '.[] | {function, rate_per_hour}'

Exit codes: 0 ok (leaks or not), 1 operational error, 2 bad input.";

#[derive(Args)]
pub struct LeaksArgs {
    /// Goroutine profiles, goroutineleak profiles or debug=2 dumps of one process.
    #[arg(required = true, value_name = "PROFILE")]
    profiles: Vec<PathBuf>,
    /// Print a JSON array, one object per leak.
    #[arg(long)]
    json: bool,
    /// Slower growth than this many goroutines per hour is not reported.
    #[arg(long, value_name = "N", default_value_t = 60.0)]
    min_rate: f64,
    /// Refuse inputs larger than this many bytes (after decompression).
    #[arg(long, value_name = "BYTES", default_value_t = gocost_pprof::DEFAULT_MAX_SIZE)]
    max_size: u64,
}

fn bad(msg: String) -> anyhow::Error {
    InputError(msg).into()
}

/// A file's bytes, refused beyond `max`.
fn read_capped(path: &Path, max: u64) -> Result<Vec<u8>> {
    crate::source::read_capped(&path.to_string_lossy(), max)
}

/// A profile that says when it was taken (analyses over time need it).
fn decode(path: &Path, bytes: &[u8], max: u64) -> Result<gocost_pprof::Profile> {
    let p = crate::source::decode(&path.to_string_lossy(), bytes, max, false)?;
    if p.time_nanos == 0 {
        return Err(bad(format!(
            "{}: the profile has no time (time_nanos)",
            path.display()
        )));
    }
    Ok(p)
}

fn snapshot(path: &Path, max: u64) -> Result<leaks::Snapshot> {
    let name = path.display();
    let bytes = read_capped(path, max)?;
    if dump::looks_like_dump(&bytes) {
        let text = std::str::from_utf8(&bytes)
            .map_err(|e| bad(format!("{name}: not a goroutine dump: {e}")))?;
        let gs = dump::parse(text).map_err(|e| bad(format!("{name}: {e}")))?;
        let mtime = std::fs::metadata(path)
            .and_then(|m| m.modified())
            .map_err(|e| bad(format!("{name}: {e}")))?;
        let ms = mtime
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        return Ok(leaks::snapshot_from_dump(&gs, ms));
    }
    let p = decode(path, &bytes, max)?;
    let typ = p
        .sample_type
        .first()
        .map(|t| t.r#type.to_string())
        .unwrap_or_default();
    let proven = match typ.as_str() {
        "goroutine" => false,
        "goroutineleak" => true,
        other => {
            return Err(bad(format!(
                "{name}: a {other:?} profile; gocost leaks reads goroutine and goroutineleak profiles"
            )));
        }
    };
    Ok(leaks::snapshot_from_profile(&p, proven))
}

fn time_text(ms: i64) -> String {
    gocost_report::timefmt::rfc3339_utc(ms)
}

pub fn run(a: LeaksArgs) -> Result<()> {
    let snaps = a
        .profiles
        .iter()
        .map(|p| snapshot(p, a.max_size))
        .collect::<Result<Vec<_>>>()?;
    let params = growth::Rule {
        min_rate_per_hour: a.min_rate,
        ..leaks::defaults()
    };
    let counted = leaks::counted(&snaps);
    if counted < params.min_points {
        eprintln!(
            "gocost: {counted} goroutine snapshot(s): growth needs at least {} over {} s; \
             only leaks Go's runtime proved can be reported",
            params.min_points, params.min_span_secs
        );
    }
    let found = leaks::find(&snaps, &params);
    if a.json {
        return write_json_with_times(&found, |f| f.first_seen_ms);
    }
    if found.is_empty() {
        return crate::write_stdout(&format!(
            "no goroutine leaks in {} snapshots\n",
            snaps.len()
        ));
    }
    let mut rows = vec![vec![
        "FUNCTION".to_string(),
        "BLOCKING".into(),
        "COUNT".into(),
        "RATE/HOUR".into(),
        "FIRST SEEN".into(),
        "CONFIDENCE".into(),
        "CREATED BY".into(),
    ]];
    for f in &found {
        rows.push(vec![
            f.function.clone(),
            if f.blocking_frame == f.function {
                f.blocking.clone()
            } else {
                format!("{} in {}", f.blocking, f.blocking_frame)
            },
            f.count.to_string(),
            format!("{:.0}", f.rate_per_hour),
            time_text(f.first_seen_ms),
            format!(
                "{:.2}{}",
                f.confidence,
                if f.evidence.contains(&"runtime") {
                    " (proven)"
                } else {
                    ""
                }
            ),
            f.created_by.clone().unwrap_or_default(),
        ]);
    }
    crate::write_stdout(&table(&rows, &[2, 3]))
}

/// Columns padded to their widest cell; the `right` ones right-aligned.
fn table(rows: &[Vec<String>], right: &[usize]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut w = vec![0usize; cols];
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let mut s = String::new();
    for r in rows {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            let pad = " ".repeat(w[i] - c.chars().count());
            if right.contains(&i) {
                line.push_str(&pad);
                line.push_str(c);
            } else {
                line.push_str(c);
                line.push_str(&pad);
            }
            line.push_str("  ");
        }
        s.push_str(line.trim_end());
        s.push('\n');
    }
    s
}

pub const HEAP_AFTER_HELP: &str = "\
Give heap profiles of one process taken over time (at least 5, spanning at least 30 s; e.g.
`curl -o h$(date +%s).pb.gz http://HOST/debug/pprof/heap` every 15 s), in any order: they are
sorted by the time inside them. Heap in use (inuse_space, as of each profile's last GC) is
summed per allocation site, the innermost function above Go's allocator.

A site is reported when its heap in use keeps growing: the same rule as `gocost leaks`
(robust slope, still growing lately, rarely shrinking), with at least --min-rate bytes per
hour and 4 MiB of growth (the heap profile samples one allocation per 512 KiB). Caches that
warm up plateau; garbage is freed by the next GC.

Examples:
  gocost heap-growth heap-*.pb.gz
  gocost heap-growth --json heap-*.pb.gz | jq '.[0].site'

Exit codes: 0 ok (growth or not), 1 operational error, 2 bad input.";

#[derive(Args)]
pub struct HeapArgs {
    /// Heap profiles of one process.
    #[arg(required = true, value_name = "PROFILE")]
    profiles: Vec<PathBuf>,
    /// Print a JSON array, one object per growing site.
    #[arg(long)]
    json: bool,
    /// Slower growth (bytes per hour) is not reported [default: 4 MiB/hour].
    #[arg(long, value_name = "BYTES", default_value_t = 4.0 * 1024.0 * 1024.0)]
    min_rate: f64,
    /// Refuse inputs larger than this many bytes (after decompression).
    #[arg(long, value_name = "BYTES", default_value_t = gocost_pprof::DEFAULT_MAX_SIZE)]
    max_size: u64,
}

pub fn run_heap(a: HeapArgs) -> Result<()> {
    let mut snaps = Vec::with_capacity(a.profiles.len());
    for path in &a.profiles {
        let p = decode(path, &read_capped(path, a.max_size)?, a.max_size)?;
        snaps.push(
            heap::snapshot_from_profile(&p).map_err(|e| bad(format!("{}: {e}", path.display())))?,
        );
    }
    let params = growth::Rule {
        min_rate_per_hour: a.min_rate,
        ..heap::defaults()
    };
    let found = heap::find(&snaps, &params);
    if a.json {
        return write_json_with_times(&found, |f| f.first_seen_ms);
    }
    if found.is_empty() {
        return crate::write_stdout(&format!(
            "no growing heap in {} heap profiles\n",
            snaps.len()
        ));
    }
    let mb = |b: f64| format!("{:.1} MiB", b / (1024.0 * 1024.0));
    let mut rows = vec![
        ["SITE", "IN USE", "GROWTH/HOUR", "FIRST SEEN", "CONFIDENCE"]
            .map(String::from)
            .to_vec(),
    ];
    for f in &found {
        rows.push(vec![
            f.site.clone(),
            mb(f.inuse_bytes as f64),
            mb(f.rate_bytes_per_hour),
            time_text(f.first_seen_ms),
            format!("{:.2}", f.confidence),
        ]);
    }
    crate::write_stdout(&table(&rows, &[1, 2]))
}

pub const COST_AFTER_HELP: &str = "\
Give CPU profiles (with their durations, e.g. from /debug/pprof/profile or `go test
-cpuprofile`) and/or heap profiles of one service. Cores = CPU time ÷ the time the CPU
profiles covered; memory = the mean heap in use of the heap profiles (a lower bound of the
process's memory: the Go heap only). Each is priced per hour and per month (730 hours) and
split over functions by their flat CPU time and heap in use.

Default rates are AWS Fargate's on-demand Linux/x86 prices in us-east-1: $0.04048 per
vCPU-hour and $0.004445 per GB-hour. Set your own with --cpu-rate and --memory-rate.

Examples:
  gocost cost cpu.pb.gz heap.pb.gz
  gocost cost --cpu-rate 0.05 --json cpu-*.pb.gz | jq .total_per_month

Exit codes: 0 ok, 1 operational error, 2 bad input.";

/// Prices of CPU and memory (`gocost cost`, `gocost load`).
#[derive(Args)]
pub struct Prices {
    /// Price of one core for an hour [default: the config's, else 0.04048].
    #[arg(long, value_name = "PRICE")]
    cpu_rate: Option<f64>,
    /// Price of one GiB of memory for an hour [default: the config's, else 0.004445].
    #[arg(long, value_name = "PRICE")]
    memory_rate: Option<f64>,
    /// Currency of the rates, for display [default: the config's, else USD].
    #[arg(long, value_name = "CODE")]
    currency: Option<String>,
    /// Read prices from this file's `[cost]` section (the file `gocost serve` reads);
    /// flags win.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

impl Prices {
    /// The flags over the config file's `[cost]` over the defaults.
    pub fn rates(&self) -> Result<cost::Rates> {
        let from_file = match &self.config {
            Some(path) => gocost_config::Config::load(path).map_err(bad)?.cost,
            None => gocost_config::CostConfig::default(),
        };
        let cfg = crate::serve::cost_rates(&from_file);
        let rates = cost::Rates {
            cpu_per_core_hour: self.cpu_rate.unwrap_or(cfg.cpu_per_core_hour),
            memory_per_gib_hour: self.memory_rate.unwrap_or(cfg.memory_per_gib_hour),
            currency: self.currency.clone().unwrap_or(cfg.currency),
        };
        if !(rates.cpu_per_core_hour >= 0.0 && rates.memory_per_gib_hour >= 0.0) {
            return Err(bad("--cpu-rate and --memory-rate must be 0 or more".into()));
        }
        Ok(rates)
    }
}

#[derive(Args)]
pub struct CostArgs {
    /// CPU and/or heap profiles of one service.
    #[arg(required = true, value_name = "PROFILE")]
    profiles: Vec<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    prices: Prices,
    /// Functions to list.
    #[arg(long, value_name = "N", default_value_t = 15)]
    top: usize,
    /// Refuse inputs larger than this many bytes (after decompression).
    #[arg(long, value_name = "BYTES", default_value_t = gocost_pprof::DEFAULT_MAX_SIZE)]
    max_size: u64,
}

pub fn run_cost(a: CostArgs) -> Result<()> {
    let mut usage = cost::Usage::new();
    for path in &a.profiles {
        let p = decode(path, &read_capped(path, a.max_size)?, a.max_size)?;
        usage
            .add(p)
            .map_err(|e| bad(format!("{}: {e}", path.display())))?;
    }
    let rates = a.prices.rates()?;
    let e = usage.estimate(&rates).map_err(bad)?;
    if a.json {
        let mut s = serde_json::to_string_pretty(&e)?;
        s.push('\n');
        return crate::write_stdout(&s);
    }
    let money = |v: f64| format!("{v:.2} {}", rates.currency);
    let mut s = String::new();
    use std::fmt::Write as _;
    let _ = writeln!(
        s,
        "CPU     {:.3} cores ({:.2} s of CPU in {:.2} s of {} CPU profile{})  {}/month",
        e.cores,
        e.cpu_seconds,
        e.covered_seconds,
        e.cpu_profiles,
        if e.cpu_profiles == 1 { "" } else { "s" },
        money(e.cpu_per_month)
    );
    let _ = writeln!(
        s,
        "Memory  {:.3} GiB (mean Go heap in use of {} heap profile{})  {}/month",
        e.heap_gib,
        e.heap_profiles,
        if e.heap_profiles == 1 { "" } else { "s" },
        money(e.memory_per_month)
    );
    let _ = writeln!(s, "Total   {}/month", money(e.total_per_month));
    let _ = writeln!(
        s,
        "Rates: {} {} per core-hour, {} per GiB-hour; a month is 730 hours.\n",
        rates.cpu_per_core_hour, rates.currency, rates.memory_per_gib_hour
    );
    let mut rows = vec![
        [
            "FUNCTION",
            "CORES",
            "HEAP MiB",
            "CPU/MONTH",
            "MEMORY/MONTH",
            "TOTAL/MONTH",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for f in e.functions.iter().take(a.top) {
        rows.push(vec![
            f.function.clone(),
            format!("{:.3}", f.cores),
            format!("{:.1}", f.heap_gib * 1024.0),
            format!("{:.2}", f.cpu_per_month),
            format!("{:.2}", f.memory_per_month),
            format!("{:.2}", f.total_per_month),
        ]);
    }
    s.push_str(&table(&rows, &[1, 2, 3, 4, 5]));
    crate::write_stdout(&s)
}

/// Findings as a JSON array, each with `first_seen` (RFC 3339) beside its unix milliseconds.
fn write_json_with_times<T: serde::Serialize>(found: &[T], ms: impl Fn(&T) -> i64) -> Result<()> {
    #[derive(serde::Serialize)]
    struct Row<'a, T> {
        #[serde(flatten)]
        f: &'a T,
        first_seen: String,
    }
    let rows: Vec<Row<T>> = found
        .iter()
        .map(|f| Row {
            f,
            first_seen: time_text(ms(f)),
        })
        .collect();
    let mut s = serde_json::to_string_pretty(&rows)?;
    s.push('\n');
    crate::write_stdout(&s)
}

pub const GC_AFTER_HELP: &str = "\
Give CPU profiles (what the collector takes) and/or allocs profiles (what drives it) of one
service; several of a kind are merged.

GC CPU is the share of CPU samples whose stack passes through the collector: background mark
workers (mark), mark assists charged to allocating goroutines (assist), sweeping (sweep) and
the stop-the-world phases. It is what `go tool pprof -focus` over those frames counts:
  go tool pprof -top -focus='^runtime\\.(gcAssistAlloc|gcBgMarkWorker|bgsweep|sweepone|\\(\\*sweepLocked\\)\\.sweep|gcStart|gcMarkDone|gcMarkTermination)$' cpu.pb.gz

Allocation is listed by site (the innermost frame above the allocator). A delta profile
(`/debug/pprof/allocs?seconds=30`, or what `gocost serve` stores) also gives rates per
second; a plain allocs profile counts since the process started. The allocation rate paces
the collector: the top sites are where GC cost is cut.

Examples:
  gocost gc cpu.pb.gz allocs.pb.gz
  curl -o a.pb.gz 'http://HOST/debug/pprof/allocs?seconds=30' && gocost gc --json a.pb.gz

Exit codes: 0 ok, 1 operational error, 2 bad input.";

#[derive(Args)]
pub struct GcArgs {
    /// CPU and/or allocs profiles of one service.
    #[arg(required = true, value_name = "PROFILE")]
    profiles: Vec<PathBuf>,
    /// Print JSON: {"gc_cpu": …, "allocation": …} (null without profiles of that kind).
    #[arg(long)]
    json: bool,
    /// Allocation sites to list.
    #[arg(long, value_name = "N", default_value_t = 15)]
    top: usize,
    /// Refuse inputs larger than this many bytes (after decompression).
    #[arg(long, value_name = "BYTES", default_value_t = gocost_pprof::DEFAULT_MAX_SIZE)]
    max_size: u64,
}

pub fn run_gc(a: GcArgs) -> Result<()> {
    let (mut cpu, mut allocs) = (gocost_pprof::Combiner::new(), gocost_pprof::Combiner::new());
    for path in &a.profiles {
        let p = crate::source::decode(
            &path.to_string_lossy(),
            &read_capped(path, a.max_size)?,
            a.max_size,
            false,
        )?;
        let has = |t: &str| p.sample_type.iter().any(|s| &*s.r#type == t);
        let into = if has("cpu") {
            &mut cpu
        } else if has("alloc_space") {
            &mut allocs
        } else {
            return Err(bad(format!(
                "{}: neither a CPU profile (cpu) nor an allocs profile (alloc_space)",
                path.display()
            )));
        };
        into.push(p)
            .map_err(|e| bad(format!("{}: {e}", path.display())))?;
    }
    let gc_cpu = cpu
        .finish()
        .map(|p| gc::gc_cpu(&p))
        .transpose()
        .map_err(bad)?;
    let allocation = allocs
        .finish()
        .map(|p| gc::allocation(&p, a.top))
        .transpose()
        .map_err(bad)?;
    if a.json {
        let mut s = serde_json::to_string_pretty(
            &serde_json::json!({ "gc_cpu": gc_cpu, "allocation": allocation }),
        )?;
        s.push('\n');
        return crate::write_stdout(&s);
    }
    use std::fmt::Write as _;
    let mut s = String::new();
    let pct = |f: f64| format!("{:.2}%", f * 100.0);
    if let Some(c) = &gc_cpu {
        let _ = writeln!(
            s,
            "GC CPU  {} of {:.2}s of CPU ({:.2}s; {:.3} cores)",
            pct(c.fraction),
            c.cpu_seconds,
            c.gc_seconds,
            c.cores
        );
        let mut rows = vec![["PHASE", "CPU", "SHARE"].map(String::from).to_vec()];
        for ph in &c.phases {
            rows.push(vec![
                ph.phase.to_string(),
                format!("{:.2}s", ph.seconds),
                pct(ph.fraction),
            ]);
        }
        s.push_str(&table(&rows, &[1, 2]));
        s.push('\n');
    }
    if let Some(al) = &allocation {
        let bytes = |n: f64| gocost_pprof::units::label(n.round() as i64, "bytes");
        if al.seconds > 0.0 {
            let _ = writeln!(
                s,
                "Allocation  {} in {:.1}s: {}/s, {:.0} objects/s",
                bytes(al.bytes as f64),
                al.seconds,
                bytes(al.bytes_per_second),
                al.objects_per_second
            );
        } else {
            let _ = writeln!(
                s,
                "Allocation  {} in {} objects since the process started (no duration: \
                 take a delta, e.g. ?seconds=30, for rates)",
                bytes(al.bytes as f64),
                al.objects
            );
        }
        let mut rows = vec![
            ["SITE", "BYTES", "OBJECTS", "BYTES/S", "SHARE"]
                .map(String::from)
                .to_vec(),
        ];
        for site in &al.sites {
            rows.push(vec![
                site.site.clone(),
                bytes(site.bytes as f64),
                site.objects.to_string(),
                if al.seconds > 0.0 {
                    bytes(site.bytes_per_second)
                } else {
                    "-".into()
                },
                pct(site.share),
            ]);
        }
        s.push_str(&table(&rows, &[1, 2, 3, 4]));
    }
    crate::write_stdout(&s)
}
