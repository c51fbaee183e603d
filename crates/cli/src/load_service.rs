//! `gocost load --profile URL`: what the loaded service did, second by second, beside what
//! its clients saw. While the load runs, the service's `net/http/pprof` and expvar endpoints
//! are read at the run's pace:
//! - `/debug/vars` every `--profile-every` (default 1 s): heap in use, `Sys`, the GC CPU
//!   fraction, and every GC cycle's stop-the-world pause with its end time (expvar's 256-entry
//!   ring, read as the scraper reads it), placed in the second it ended in;
//! - `/debug/pprof/` (the index) at the same pace: the goroutine count, as `runtime.NumGoroutine`
//!   gives it (a goroutine profile would stop the world at every read);
//! - `/debug/pprof/profile?seconds=1` back to back, one per measured second: CPU time per
//!   second (so CPU per request has a sample per second, for `gocost compare`), and merged,
//!   cores, CPU per request and the top functions (written out with `--cpu-profile FILE` for
//!   `go tool pprof`).
//!
//! - `/debug/pprof/trace?seconds=N` once, for the `--trace-seconds` in the middle of the
//!   measured time (default 1 s; Go's tracer costs a few percent while it runs): the
//!   execution trace's overview — GC cycles, stop-the-world pauses, scheduler latency, mark
//!   assists, minimum mutator utilisation, blocking — as `gocost trace` gives it (written out
//!   with `--trace-file FILE` for `go tool trace`).
//!
//! Then the join: every second whose P99 spiked (the load report's rule) with what the runtime
//! did in it — GC cycles and the longest pause, goroutines and heap before and at most.
//!
//! Times: pauses carry the service's clock, the seconds the generator's; they agree on one
//! machine and to within NTP's skew across machines.

use std::time::Duration;

use serde::Serialize;

/// Largest answer read from the service (a CPU profile of a busy service is a few MB).
const MAX_BODY: usize = 64 << 20;

/// The most per-sample failures a report lists (the rest are counted).
const MAX_NOTES: usize = 8;

/// What the service did over the measured seconds.
#[derive(Debug, Clone, Serialize)]
pub struct Service {
    /// The service's base URL (where `/debug/pprof/` and `/debug/vars` live).
    pub url: String,
    pub every_seconds: f64,
    /// One per measured second, as the load report's `seconds`.
    pub seconds: Vec<ServiceSecond>,
    /// Every GC cycle that ended in the measured time: when (seconds since the warm-up's
    /// end) and its stop-the-world pause.
    pub gc_pauses: Vec<GcPause>,
    /// GC cycles whose pauses fell out of expvar's ring between two reads (read faster).
    pub gc_pauses_lost: u64,
    pub cpu: Option<Cpu>,
    /// What a million answered requests cost at the run's CPU and memory (`[cost]` prices).
    pub cost: Option<Cost>,
    /// The seconds whose P99 spiked, with what the runtime did in them.
    pub spikes: Vec<Spike>,
    /// The execution trace of some measured seconds.
    pub trace: Option<Trace>,
    /// What could not be read, and what the service lacks for it.
    pub notes: Vec<String>,
}

/// An execution trace taken during the measured seconds (`--trace-seconds`).
#[derive(Debug, Clone, Serialize)]
pub struct Trace {
    /// When it began (seconds since the measured start) and for how long it was asked.
    pub from: f64,
    pub seconds: f64,
    pub bytes: usize,
    /// What it shows: the overview `gocost trace --json` and the API give (events, GC
    /// cycles, `stw` and `sched_latency` percentiles, `assist_fraction`, `mmu`, `blocking`).
    pub overview: serde_json::Map<String, serde_json::Value>,
    /// Where it was written (`--trace-file`).
    pub file: Option<String>,
}

impl Trace {
    /// One line: the window, GC, stop-the-world pauses, scheduler latency and assists.
    pub fn summary(&self) -> String {
        use gocost_load::ms;
        let o = serde_json::Value::Object(self.overview.clone());
        // A number of the overview by its JSON pointer, e.g. `/stw/max_ns`.
        let num = |at: &str| {
            o.pointer(at)
                .and_then(serde_json::Value::as_f64)
                .unwrap_or(0.0)
        };
        format!(
            "{:.1}s from {:.1}s: {} GC cycles, {} stop-the-world pauses (max {}), scheduler latency p99 {}, mark assists {:.1}% of the CPU",
            self.seconds,
            self.from,
            num("/gc_cycles"),
            num("/stw/count"),
            ms(num("/stw/max_ns") / 1e9),
            ms(num("/sched_latency/p99_ns") / 1e9),
            num("/assist_fraction") * 100.0
        )
    }
}

/// What to do about an execution trace: how long (zero: none) and where to write it.
#[derive(Debug, Clone, Default)]
pub struct TraceWant {
    pub seconds: Duration,
    pub file: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ServiceSecond {
    pub t: u64,
    /// The last read in the second, and the most any read in it saw.
    pub goroutines: Option<u64>,
    pub goroutines_max: Option<u64>,
    pub heap_inuse_bytes: Option<f64>,
    pub heap_inuse_max_bytes: Option<f64>,
    pub sys_bytes: Option<f64>,
    pub gc_cpu_fraction: Option<f64>,
    pub gc_cycles: u32,
    pub gc_pause_max_seconds: f64,
    /// CPU time the service spent in this second (its one-second CPU profile).
    pub cpu_seconds: Option<f64>,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct GcPause {
    pub t: f64,
    pub seconds: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Cpu {
    /// CPU time the profile sampled over the measured seconds.
    pub seconds: f64,
    /// That over the profile's duration.
    pub cores: f64,
    /// CPU per answered request.
    pub per_request_seconds: Option<f64>,
    /// `go tool pprof -top`'s first rows (flat).
    pub top: Vec<TopFunction>,
    /// Where the profile was written (`--cpu-profile`).
    pub profile: Option<String>,
    /// The profile's flame graph (the interactive SVG), for the HTML report.
    #[serde(skip)]
    pub flame_svg: Option<String>,
}

/// The run's cost per million answered requests: CPU from the profile (cores), memory from
/// expvar's `Sys` (the mean of the per-second reads: what the process holds from the OS).
#[derive(Debug, Clone, Serialize)]
pub struct Cost {
    pub cores: f64,
    pub memory_gib: Option<f64>,
    pub cpu_per_million: f64,
    pub memory_per_million: f64,
    pub total_per_million: f64,
    pub rates: gocost_insights::cost::Rates,
}

#[derive(Debug, Clone, Serialize)]
pub struct TopFunction {
    pub function: String,
    pub flat_seconds: f64,
    pub flat_share: f64,
    pub cum_seconds: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Spike {
    pub t: u64,
    pub p99_seconds: f64,
    /// The run's median per-second P99.
    pub typical_p99_seconds: f64,
    pub gc_cycles: u32,
    pub gc_pause_max_seconds: f64,
    /// The last read of the second before, and the most seen in this one.
    pub goroutines_before: Option<u64>,
    pub goroutines_max: Option<u64>,
    pub heap_inuse_before_bytes: Option<f64>,
    pub heap_inuse_max_bytes: Option<f64>,
}

/// Reads a service's runtime while it is loaded.
pub struct Watch {
    base: String,
    client: reqwest::Client,
    every: Duration,
    cpu_profile: Option<std::path::PathBuf>,
    trace: TraceWant,
}

/// One read of the service.
#[derive(Debug, Default, Clone, Copy)]
struct Read {
    at: f64,
    goroutines: Option<u64>,
    heap_inuse: Option<f64>,
    sys: Option<f64>,
    gc_cpu_fraction: Option<f64>,
}

/// What the reads gathered, before they are put in seconds.
#[derive(Default)]
struct Gathered {
    reads: Vec<Read>,
    pauses: Vec<(i64, f64)>,
    lost: u64,
    notes: Vec<String>,
    failures: u64,
    /// The one-second CPU profiles, by measured second.
    cpu: Vec<(u64, gocost_pprof::Profile)>,
    /// The execution trace: when it began (since the measured start), how long, its bytes.
    trace: Option<(Duration, Duration, Result<Vec<u8>, String>)>,
}

/// The expvar fields a read keeps (named as `gocost_scrape::runtime` names them).
fn value(e: &gocost_scrape::runtime::Expvar, name: &str) -> Option<f64> {
    e.values.iter().find(|(n, _)| *n == name).map(|&(_, v)| v)
}

impl Watch {
    /// Checks that the service answers before any load is sent: at least one of
    /// `/debug/vars` and `/debug/pprof/` must, or the run would measure nothing.
    pub async fn new(
        url: &str,
        every: Duration,
        cpu_profile: Option<std::path::PathBuf>,
        trace: TraceWant,
    ) -> Result<(Watch, Vec<String>), String> {
        let base = url.trim_end_matches('/');
        let base = base
            .strip_suffix("/debug/pprof")
            .unwrap_or(base)
            .to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(format!(
                "--profile {url:?}: want the service's base URL, e.g. http://127.0.0.1:6060"
            ));
        }
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| format!("--profile: {e}"))?;
        let w = Watch {
            base,
            client,
            every,
            cpu_profile,
            trace,
        };
        let mut notes = Vec::new();
        let vars = w.get("/debug/vars", Duration::from_secs(5)).await;
        let gor = w.get("/debug/pprof/", Duration::from_secs(5)).await;
        match (&vars, &gor) {
            (Err(a), Err(b)) => {
                return Err(format!(
                    "--profile {}: the service answers neither /debug/vars ({a}) nor /debug/pprof/ ({b}); \
                     it needs import _ \"net/http/pprof\" (and _ \"expvar\") on that address",
                    w.base
                ));
            }
            (Err(e), _) => notes.push(format!(
                "/debug/vars: {e}: no heap or GC numbers (the service needs import _ \"expvar\")"
            )),
            (_, Err(e)) => notes.push(format!(
                "/debug/pprof/: {e}: no goroutine counts or CPU profile (the service needs import _ \"net/http/pprof\")"
            )),
            _ => {}
        }
        Ok((w, notes))
    }

    async fn get(&self, path: &str, timeout: Duration) -> Result<Vec<u8>, String> {
        let url = format!("{}{path}", self.base);
        let mut r = self
            .client
            .get(&url)
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| {
                if e.is_timeout() {
                    format!("timeout after {timeout:?}")
                } else {
                    e.without_url().to_string()
                }
            })?;
        let status = r.status();
        if !status.is_success() {
            return Err(format!("HTTP {}", status.as_u16()));
        }
        // Capped: a service answering without end must not fill this process.
        let mut body = Vec::new();
        while let Some(chunk) = r.chunk().await.map_err(|e| e.without_url().to_string())? {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(format!("answer larger than {MAX_BODY} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    /// Reads the service from `start` (when the measured seconds begin) for `duration`,
    /// then joins what it read with the load's report.
    pub async fn watch(
        &self,
        start: tokio::time::Instant,
        duration: Duration,
        mut notes: Vec<String>,
    ) -> Observed {
        tokio::time::sleep_until(start).await;
        // CPU: one profile per measured second, back to back (Go serves one at a time), so
        // each second has its CPU time; they are merged for the top functions and the flame
        // graph. A failed window ends the series (the next would fail alike).
        let cpu = async {
            let mut windows = Vec::new();
            for i in 0..duration.as_secs().max(1) {
                tokio::time::sleep_until(start + Duration::from_secs(i)).await;
                let got = self
                    .get("/debug/pprof/profile?seconds=1", Duration::from_secs(16))
                    .await
                    .and_then(|b| gocost_pprof::decode(&b).map_err(|e| e.to_string()));
                match got {
                    Ok(p) => windows.push((i, p)),
                    Err(e) => return (windows, Some(format!("/debug/pprof/profile at {i}s: {e}"))),
                }
            }
            (windows, None)
        };
        let reads = async {
            let mut g = Gathered::default();
            let mut prev_gc = None;
            let mut tick = tokio::time::interval_at(start, self.every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                let at = tick.tick().await;
                let at = at.duration_since(start).as_secs_f64();
                if at > duration.as_secs_f64() + 1e-3 {
                    break;
                }
                let (vars, gor) = tokio::join!(
                    self.get("/debug/vars", self.every.max(Duration::from_secs(1))),
                    self.get("/debug/pprof/", self.every.max(Duration::from_secs(1)))
                );
                let mut r = Read {
                    at,
                    ..Read::default()
                };
                let mut fail = |what: &str, e: String| {
                    g.failures += 1;
                    if g.notes.len() < MAX_NOTES {
                        g.notes.push(format!("{what} at {at:.1}s: {e}"));
                    }
                };
                match vars.map(|b| gocost_scrape::runtime::parse_expvar(&b, prev_gc)) {
                    Ok(Ok(e)) => {
                        r.heap_inuse = value(&e, "go_memstats_heap_inuse_bytes");
                        r.sys = value(&e, "go_memstats_sys_bytes");
                        r.gc_cpu_fraction = value(&e, "go_gc_cpu_fraction");
                        // The first read only sets where the run's cycles begin.
                        if prev_gc.is_some() {
                            g.pauses.extend(e.pauses);
                            g.lost += e.lost_pauses;
                        }
                        prev_gc = Some(e.num_gc);
                    }
                    Ok(Err(e)) | Err(e) => fail("/debug/vars", e),
                }
                match gor
                    .map(|b| gocost_scrape::runtime::index_goroutines(&String::from_utf8_lossy(&b)))
                {
                    Ok(Some(n)) => r.goroutines = Some(n),
                    Ok(None) => fail("/debug/pprof/", "no goroutine row on the index page".into()),
                    Err(e) => fail("/debug/pprof/", e),
                }
                g.reads.push(r);
            }
            g
        };
        // The execution trace: once, centred in the measured time (beside the CPU profile:
        // Go runs both at once).
        let trace = async {
            let len = self.trace.seconds.min(duration);
            if len.is_zero() {
                return None;
            }
            let at = (duration - len) / 2;
            tokio::time::sleep_until(start + at).await;
            let path = format!("/debug/pprof/trace?seconds={}", len.as_secs_f64());
            Some((
                at,
                len,
                self.get(&path, len + Duration::from_secs(16)).await,
            ))
        };
        let ((windows, cpu_err), mut g, trace) = tokio::join!(cpu, reads, trace);
        g.cpu = windows;
        g.trace = trace;
        if let Some(e) = cpu_err {
            g.notes.push(e);
        }
        if g.failures as usize > g.notes.len() {
            g.notes.push(format!("{} reads failed in all", g.failures));
        }
        notes.append(&mut g.notes);
        Observed {
            g,
            notes,
            base: self.base.clone(),
            every: self.every,
            cpu_profile: self.cpu_profile.clone(),
            trace_file: self.trace.file.clone(),
        }
    }
}

/// What [`Watch::watch`] read, to be joined with the load's report.
pub struct Observed {
    g: Gathered,
    notes: Vec<String>,
    base: String,
    every: Duration,
    cpu_profile: Option<std::path::PathBuf>,
    trace_file: Option<std::path::PathBuf>,
}

impl Observed {
    /// Puts the reads in the load report's seconds and joins the spikes.
    pub fn join(
        self,
        load: &gocost_load::Report,
        rates: &gocost_insights::cost::Rates,
    ) -> Result<Service, String> {
        let Observed {
            mut g,
            mut notes,
            base,
            every,
            cpu_profile,
            trace_file,
        } = self;
        let trace = match g.trace.take() {
            Some((at, len, Ok(bytes))) => {
                match trace_summary(at, len, bytes, trace_file.as_deref()) {
                    Ok(t) => Some(t),
                    Err(e) => {
                        notes.push(e);
                        None
                    }
                }
            }
            Some((at, _, Err(e))) => {
                notes.push(format!(
                    "/debug/pprof/trace at {:.1}s: {e}",
                    at.as_secs_f64()
                ));
                None
            }
            None => None,
        };
        let n = load.seconds.len();
        let mut seconds: Vec<ServiceSecond> = (0..n)
            .map(|t| ServiceSecond {
                t: t as u64,
                ..ServiceSecond::default()
            })
            .collect();
        // A read at time x (seconds since the measured start) describes the second it ends
        // or falls in: reads at 0 < x ≤ t+1 belong to second t = ceil(x) - 1. The read at 0
        // is the state before the first second.
        let mut before = Read::default();
        for r in &g.reads {
            if r.at <= 1e-3 {
                before = *r;
                continue;
            }
            let t = ((r.at - 1e-3).floor() as usize).min(n.saturating_sub(1));
            let Some(s) = seconds.get_mut(t) else {
                continue;
            };
            let max_u = |a: Option<u64>, b: Option<u64>| a.max(b);
            let max_f = |a: Option<f64>, b: Option<f64>| match (a, b) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
            s.goroutines = r.goroutines.or(s.goroutines);
            s.goroutines_max = max_u(s.goroutines_max, r.goroutines);
            s.heap_inuse_bytes = r.heap_inuse.or(s.heap_inuse_bytes);
            s.heap_inuse_max_bytes = max_f(s.heap_inuse_max_bytes, r.heap_inuse);
            s.sys_bytes = r.sys.or(s.sys_bytes);
            s.gc_cpu_fraction = r.gc_cpu_fraction.or(s.gc_cpu_fraction);
        }
        let from = load.measured_from_unix_ns;
        let mut gc_pauses = Vec::new();
        for &(end_ns, secs) in &g.pauses {
            let t = (end_ns - from) as f64 / 1e9;
            if !(0.0..n as f64).contains(&t) {
                continue;
            }
            gc_pauses.push(GcPause { t, seconds: secs });
            let s = &mut seconds[t as usize];
            s.gc_cycles += 1;
            s.gc_pause_max_seconds = s.gc_pause_max_seconds.max(secs);
        }
        gc_pauses.sort_by(|a, b| a.t.total_cmp(&b.t));

        for (t, p) in &g.cpu {
            if let Some(s) = seconds.get_mut(*t as usize) {
                s.cpu_seconds = Some(cpu_nanos(p) as f64 / 1e9);
            }
        }
        let windows = g.cpu.len();
        let cpu = if windows == 0 {
            None
        } else {
            let merged = gocost_pprof::merge(g.cpu.into_iter().map(|(_, p)| p).collect())
                .map_err(|e| format!("merging the CPU profiles: {e}"))?;
            Some(cpu_summary(
                merged,
                windows as f64,
                load,
                cpu_profile.as_deref(),
            )?)
        };

        let typical = load.typical_p99();
        let spikes = load
            .spikes()
            .into_iter()
            .map(|t| {
                let i = t as usize;
                let s = &seconds[i];
                let (g_before, h_before) = match i.checked_sub(1) {
                    Some(p) => (seconds[p].goroutines, seconds[p].heap_inuse_bytes),
                    None => (before.goroutines, before.heap_inuse),
                };
                Spike {
                    t,
                    p99_seconds: load.seconds[i].latency.p99,
                    typical_p99_seconds: typical,
                    gc_cycles: s.gc_cycles,
                    gc_pause_max_seconds: s.gc_pause_max_seconds,
                    goroutines_before: g_before,
                    goroutines_max: s.goroutines_max,
                    heap_inuse_before_bytes: h_before,
                    heap_inuse_max_bytes: s.heap_inuse_max_bytes,
                }
            })
            .collect();
        let cost = cpu.as_ref().and_then(|c| cost(c, &seconds, load, rates));
        if g.lost > 0 {
            notes.push(format!(
                "{} GC cycles' pauses fell out of expvar's 256-entry ring between reads: read more often (--profile-every)",
                g.lost
            ));
        }
        Ok(Service {
            url: base,
            every_seconds: every.as_secs_f64(),
            seconds,
            gc_pauses,
            gc_pauses_lost: g.lost,
            cpu,
            cost,
            spikes,
            trace,
            notes,
        })
    }
}

/// The overview of an execution trace taken at `at` for `len` (written to `out` first if
/// asked).
fn trace_summary(
    at: Duration,
    len: Duration,
    bytes: Vec<u8>,
    out: Option<&std::path::Path>,
) -> Result<Trace, String> {
    let file = match out {
        Some(path) => {
            std::fs::write(path, &bytes)
                .map_err(|e| format!("--trace-file {}: {e}", path.display()))?;
            Some(path.display().to_string())
        }
        None => None,
    };
    let events = gocost_trace::parse(&bytes)
        .map_err(|e| format!("the execution trace ({} bytes): {e}", bytes.len()))?;
    let o = gocost_trace::overview(&events);
    let blocking = gocost_server::trace_json::blocking_totals(&events);
    Ok(Trace {
        from: at.as_secs_f64(),
        seconds: len.as_secs_f64(),
        bytes: bytes.len(),
        overview: gocost_server::trace_json::overview(&o, &blocking),
        file,
    })
}

/// CPU nanoseconds in a CPU profile (its `cpu` column).
fn cpu_nanos(p: &gocost_pprof::Profile) -> i64 {
    let Some(i) = p.sample_type.iter().position(|t| &*t.r#type == "cpu") else {
        return 0;
    };
    p.sample
        .iter()
        .map(|s| s.value.get(i).copied().unwrap_or(0))
        .sum()
}

/// CPU time, cores, per request and the top functions of the run's CPU profile (the
/// seconds' profiles merged, over `dur` seconds; written to `out` first if asked).
fn cpu_summary(
    p: gocost_pprof::Profile,
    dur: f64,
    load: &gocost_load::Report,
    out: Option<&std::path::Path>,
) -> Result<Cpu, String> {
    let profile = match out {
        Some(path) => {
            std::fs::write(path, gocost_pprof::encode(&p))
                .map_err(|e| format!("--cpu-profile {}: {e}", path.display()))?;
            Some(path.display().to_string())
        }
        None => None,
    };
    let rpt = match gocost_report::Report::new(p, &gocost_report::Options::default()) {
        Ok(r) => r,
        // A profile with no samples (an idle service): no time, no functions.
        Err(gocost_report::Error::NoSamples) => {
            return Ok(Cpu {
                seconds: 0.0,
                cores: 0.0,
                per_request_seconds: None,
                top: Vec::new(),
                profile,
                flame_svg: None,
            });
        }
        Err(e) => return Err(format!("the CPU profile: {e}")),
    };
    let top = rpt.top();
    let secs = top.total as f64 / 1e9;
    let answered: u64 = load.statuses.values().sum();
    let fmt = |v: i64| gocost_pprof::units::label(v, &rpt.sample_unit);
    let opts = gocost_flame::Options {
        title: format!("CPU of {} under load", load.url),
        subtitle: format!(
            "Type: {} · Total: {} over the {}s measured",
            rpt.sample_type,
            fmt(rpt.total),
            load.duration_seconds
        ),
        format_value: &fmt,
        ..gocost_flame::Options::default()
    };
    let mut svg = Vec::new();
    gocost_flame::write_svg(&gocost_flame::tree_from_report(&rpt), &opts, &mut svg)
        .map_err(|e| format!("drawing the CPU flame graph: {e}"))?;
    Ok(Cpu {
        seconds: secs,
        cores: secs / dur.max(1e-9),
        per_request_seconds: (answered > 0).then(|| secs / answered as f64),
        top: top
            .rows
            .iter()
            .take(10)
            .map(|r| TopFunction {
                function: r.name.clone(),
                flat_seconds: r.flat as f64 / 1e9,
                flat_share: r.flat as f64 / (top.total.max(1)) as f64,
                cum_seconds: r.cum as f64 / 1e9,
            })
            .collect(),
        profile,
        flame_svg: String::from_utf8(svg).ok(),
    })
}

/// Cost per million answered requests; `None` when none was answered.
fn cost(
    cpu: &Cpu,
    seconds: &[ServiceSecond],
    load: &gocost_load::Report,
    rates: &gocost_insights::cost::Rates,
) -> Option<Cost> {
    let answered: u64 = load.statuses.values().sum();
    if answered == 0 {
        return None;
    }
    let sys: Vec<f64> = seconds.iter().filter_map(|s| s.sys_bytes).collect();
    let memory_gib =
        (!sys.is_empty()).then(|| sys.iter().sum::<f64>() / sys.len() as f64 / (1u64 << 30) as f64);
    let hours = load.duration_seconds / 3600.0;
    let per_million = 1e6 / answered as f64;
    let cpu_per_million = cpu.cores * rates.cpu_per_core_hour * hours * per_million;
    let memory_per_million =
        memory_gib.unwrap_or(0.0) * rates.memory_per_gib_hour * hours * per_million;
    Some(Cost {
        cores: cpu.cores,
        memory_gib,
        cpu_per_million,
        memory_per_million,
        total_per_million: cpu_per_million + memory_per_million,
        rates: rates.clone(),
    })
}

impl Service {
    /// The service's part of the text report.
    pub fn to_text(&self) -> String {
        use crate::load_report::mib;
        use gocost_load::ms;
        use std::fmt::Write as _;
        let mut o = String::new();
        let _ = writeln!(o, "Service:    {}", self.url);
        if let Some(c) = &self.cpu {
            let per = c
                .per_request_seconds
                .map_or(String::new(), |s| format!(", {} CPU per request", ms(s)));
            let _ = writeln!(
                o,
                "CPU:        {:.2}s over the run ({:.2} cores){per}",
                c.seconds, c.cores
            );
            for f in c.top.iter().take(5) {
                let _ = writeln!(
                    o,
                    "            {:5.1}%  {}",
                    f.flat_share * 100.0,
                    f.function
                );
            }
            if let Some(p) = &c.profile {
                let _ = writeln!(o, "            (go tool pprof {p})");
            }
        }
        if let Some(c) = &self.cost {
            let _ = writeln!(
                o,
                "Cost:       {:.4} {} per million requests (CPU {:.4}, memory {:.4})",
                c.total_per_million, c.rates.currency, c.cpu_per_million, c.memory_per_million
            );
        }
        let gor: Vec<u64> = self
            .seconds
            .iter()
            .filter_map(|s| s.goroutines_max)
            .collect();
        if let (Some(lo), Some(hi)) = (gor.iter().min(), gor.iter().max()) {
            let _ = writeln!(o, "Goroutines: {lo}–{hi}");
        }
        let heap: Vec<f64> = self
            .seconds
            .iter()
            .filter_map(|s| s.heap_inuse_max_bytes)
            .collect();
        if let Some(hi) = heap.iter().copied().reduce(f64::max) {
            let lo = heap.iter().copied().fold(f64::INFINITY, f64::min);
            let _ = writeln!(o, "Heap:       {}–{} in use", mib(lo), mib(hi));
        }
        if !self.gc_pauses.is_empty() {
            let mut p: Vec<f64> = self.gc_pauses.iter().map(|p| p.seconds).collect();
            p.sort_by(f64::total_cmp);
            let q = |f: f64| p[((p.len() - 1) as f64 * f).round() as usize];
            let _ = writeln!(
                o,
                "GC:         {} cycles ({:.1}/s), pauses p50 {}  p99 {}  max {}",
                p.len(),
                p.len() as f64 / self.seconds.len().max(1) as f64,
                ms(q(0.5)),
                ms(q(0.99)),
                ms(q(1.0))
            );
        }
        if let Some(t) = &self.trace {
            let _ = writeln!(o, "Trace:      {}", t.summary());
            if let Some(f) = &t.file {
                let _ = writeln!(o, "            (go tool trace {f})");
            }
        }
        for s in &self.spikes {
            let mut what = Vec::new();
            if s.gc_cycles > 0 {
                what.push(format!(
                    "{} GC cycles (longest pause {})",
                    s.gc_cycles,
                    ms(s.gc_pause_max_seconds)
                ));
            }
            if let (Some(b), Some(m)) = (s.goroutines_before, s.goroutines_max) {
                what.push(format!("goroutines {b} → {m}"));
            }
            if let (Some(b), Some(m)) = (s.heap_inuse_before_bytes, s.heap_inuse_max_bytes) {
                what.push(format!("heap {} → {}", mib(b), mib(m)));
            }
            let _ = writeln!(
                o,
                "Spike {}s:   p99 {} (typical {}): {}",
                s.t,
                ms(s.p99_seconds),
                ms(s.typical_p99_seconds),
                if what.is_empty() {
                    "no runtime data".to_string()
                } else {
                    what.join(", ")
                }
            );
        }
        for n in &self.notes {
            let _ = writeln!(o, "Note:       {n}");
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The one-line summary reads the overview's fields where `trace_json::overview` puts them.
    #[test]
    fn trace_summary_line_reads_the_overview() {
        let overview = serde_json::json!({
            "gc_cycles": 7,
            "stw": {"count": 14, "max_ns": 2_500_000},
            "sched_latency": {"p99_ns": 40_000},
            "assist_fraction": 0.0125,
        });
        let t = Trace {
            from: 5.5,
            seconds: 4.0,
            bytes: 1,
            overview: overview.as_object().cloned().unwrap_or_default(),
            file: None,
        };
        assert_eq!(
            t.summary(),
            "4.0s from 5.5s: 7 GC cycles, 14 stop-the-world pauses (max 2.50ms), \
             scheduler latency p99 0.04ms, mark assists 1.2% of the CPU"
        );
    }
}
