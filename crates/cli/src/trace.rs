//! `gocost trace`: Go execution traces from files or a live service — a summary, GC pauses
//! and the MMU, scheduler latency, goroutines, and the blocking profiles `go tool trace
//! -pprof` writes.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use gocost_pprof::{Function, Line, Location, Profile, Sample, Str, ValueType};
use gocost_trace::{BlockingKind, BlockingRecord, Event, Overview};
use serde_json::{Value, json};

use crate::source::{InputError, map_capped, read_capped};

pub const AFTER_HELP: &str = "\
TRACE is a Go execution trace: what runtime/trace.Start, `go test -trace` or a service's
/debug/pprof/trace?seconds=N wrote, from Go 1.22 to 1.27 (older formats are refused naming
their Go version). `-` reads stdin.

Take one from a live service (net/http/pprof imported), then look at it:
  gocost trace http://127.0.0.1:6060 --seconds 5 -o app.trace
  gocost trace summary app.trace        # pauses, scheduler latency, MMU, blocking at a glance
  gocost trace gc app.trace             # every stop-the-world pause, GC cycles, the MMU curve
  gocost trace sched app.trace          # runnable→running latency per goroutine group
  gocost trace goroutines app.trace     # where each group's time went (go tool trace's page)
  gocost trace pprof --type sched -o sched.pb.gz app.trace && go tool pprof -top sched.pb.gz
Every command takes --json. `go tool trace app.trace` opens the same file.

Exit codes: 0 ok, 1 operational error (I/O, network), 2 bad input (the error names the file
and the byte offset) or usage.";

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct TraceArgs {
    #[command(subcommand)]
    cmd: Option<TraceCmd>,
    /// Take a trace from a live service: a URL of its net/http/pprof handlers (a URL
    /// without a path means /debug/pprof/trace).
    #[arg(value_name = "URL", required = true)]
    url: Option<String>,
    /// How long to trace, in seconds.
    #[arg(long, value_name = "N", default_value_t = 5)]
    seconds: u64,
    /// Where to write the trace (default: trace-<unix seconds>.out).
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Refuse a trace larger than this many bytes.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_TRACE)]
    max_size: u64,
}

/// Largest trace read by default: 1 GiB.
const DEFAULT_MAX_TRACE: u64 = 1 << 30;

#[derive(Subcommand)]
enum TraceCmd {
    /// The trace at a glance: duration, GOMAXPROCS, pauses, scheduler latency, mark
    /// assists, MMU, blocking by kind.
    Summary(FileArgs),
    /// Every stop-the-world pause with its reason, the GC cycles (mark, assist, sweep time)
    /// and the minimum mutator utilisation (MMU) from 100 µs to 1 s.
    #[command(
        after_help = "MMU: for a window length, the worst fraction of the procs the program \
                      (not the GC) had over any window that long; go tool trace's MMU view, with \
                      STW, background workers, assists and sweeping all counted as GC."
    )]
    Gc(FileArgs),
    /// Scheduler latency (runnable → running) per goroutine group (by start function):
    /// count, p50, p90, p99, max, total.
    Sched(FileArgs),
    /// Goroutine groups as go tool trace's goroutines page shows them: execution, scheduler
    /// wait, block time by reason, syscalls, GC assist and sweep.
    #[command(after_help = "With --json, every goroutine too, with all of its times (ns).")]
    Goroutines(FileArgs),
    /// A blocking profile as `go tool trace -pprof=TYPE` writes it (gzip'd profile.proto):
    /// `go tool pprof -top` prints the same for both.
    #[command(
        after_help = "Types: net (waiting on the network), sync (channels, select, \
                      sync primitives), syscall (in system calls), sched (runnable, waiting for a \
                      P; charged to where the goroutine was made runnable).\n\n\
                      Example: gocost trace pprof --type sync -o sync.pb.gz app.trace && \
                      go tool pprof -top sync.pb.gz"
    )]
    Pprof(PprofArgs),
    /// Send a trace to a running `gocost serve` (POST /api/v1/traces): it is stored with its
    /// analyses, as scraped traces are.
    #[command(
        after_help = "Example: gocost trace upload --server http://127.0.0.1:4040 --job checkout \
                      \x20 --label env=prod app.trace\n\n                      The trace is checked here first; the answer is its id: \
                      GET /api/v1/trace/<id> downloads it again."
    )]
    Upload(UploadArgs),
}

#[derive(Args)]
struct UploadArgs {
    /// The gocost server.
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:4040")]
    server: String,
    /// The service the trace is of (the series' job label).
    #[arg(long, value_name = "NAME")]
    job: String,
    /// The instance label (default: none).
    #[arg(long, value_name = "HOST:PORT")]
    instance: Option<String>,
    /// More labels, `name=value` (repeatable).
    #[arg(long, value_name = "NAME=VALUE")]
    label: Vec<String>,
    /// When the trace began (unix seconds or RFC 3339; default: now).
    #[arg(long, value_name = "TIME")]
    time: Option<String>,
    /// Bearer token (a token with the write scope, when the server has [auth]).
    #[arg(long, value_name = "TOKEN")]
    token: Option<String>,
    #[command(flatten)]
    file: FileArgs,
}

#[derive(Args)]
struct FileArgs {
    /// The trace file (`-` for stdin).
    #[arg(value_name = "TRACE")]
    trace: String,
    /// Print JSON instead of text (times in nanoseconds); for `pprof`, the profile's `-top`
    /// report as JSON instead of the profile.
    #[arg(long)]
    json: bool,
    /// Refuse a trace larger than this many bytes.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_TRACE)]
    max_size: u64,
}

#[derive(Args)]
struct PprofArgs {
    /// Which waits: net, sync, syscall or sched.
    #[arg(long = "type", value_name = "TYPE")]
    kind: String,
    /// Output file (default: stdout, as go tool trace -pprof).
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    #[command(flatten)]
    file: FileArgs,
}

pub fn run(a: TraceArgs) -> Result<()> {
    match a.cmd {
        None => {
            let url = a
                .url
                .ok_or_else(|| InputError("give a URL or a command (see --help)".into()))?;
            take(&url, a.seconds, a.output, a.max_size)
        }
        Some(TraceCmd::Summary(f)) => {
            let t = load(&f)?;
            let o = gocost_trace::overview(&t.events);
            let blocking = gocost_server::trace_json::blocking_totals(&t.events);
            if f.json {
                print_json(&summary_json(&t, &o, &blocking))
            } else {
                out(&summary_text(&t, &o, &blocking))
            }
        }
        Some(TraceCmd::Gc(f)) => {
            let t = load(&f)?;
            gc(&t, f.json)
        }
        Some(TraceCmd::Sched(f)) => {
            let t = load(&f)?;
            sched(&t, f.json)
        }
        Some(TraceCmd::Goroutines(f)) => {
            let t = load(&f)?;
            goroutines(&t, f.json)
        }
        Some(TraceCmd::Upload(u)) => upload(u),
        Some(TraceCmd::Pprof(p)) => {
            let kind = BlockingKind::from_name(&p.kind).ok_or_else(|| {
                InputError(format!(
                    "--type {:?}: not one of net, sync, syscall, sched",
                    p.kind
                ))
            })?;
            // Streamed: the events go by one at a time, never held.
            let bytes = map_capped(&p.file.trace, p.file.max_size)?;
            let name = &p.file.trace;
            let bad = |e: gocost_trace::Error| InputError(format!("{name}: reading trace: {e}"));
            let profile = |mut p: gocost_trace::BlockingProfiler| -> Result<_> {
                let mut r = gocost_trace::Reader::new(&bytes).map_err(bad)?;
                while let Some(ev) = r.next_event() {
                    p.push(ev.map_err(bad)?);
                }
                Ok(p.finish())
            };
            // Charged as they end; a trace that breaks the assumption is read again.
            let recs = match profile(gocost_trace::BlockingProfiler::new(kind))? {
                Some(r) => r,
                None => profile(gocost_trace::BlockingProfiler::exact(kind))?.unwrap_or_default(),
            };
            drop(bytes);
            let prof = blocking_pprof(&recs);
            if p.file.json {
                let rpt = gocost_report::Report::new(prof, &gocost_report::Options::default())
                    .map_err(|e| InputError(e.to_string()))?;
                return print_json(&serde_json::to_value(rpt.top())?);
            }
            let bytes = gocost_pprof::encode(&prof);
            match &p.output {
                Some(path) => std::fs::write(path, bytes)
                    .with_context(|| format!("writing {}", path.display())),
                None => {
                    let mut o = std::io::stdout().lock();
                    o.write_all(&bytes)?;
                    o.flush()?;
                    Ok(())
                }
            }
        }
    }
}

/// A parsed trace.
pub struct Loaded {
    pub name: String,
    pub go_minor: u32,
    pub bytes: usize,
    pub events: Vec<Event>,
}

fn load(f: &FileArgs) -> Result<Loaded> {
    let bytes = map_capped(&f.trace, f.max_size)?;
    parse(&f.trace, &bytes)
}

/// Parses a trace's bytes; a malformed trace is bad input naming `name` and the byte offset.
pub fn parse(name: &str, bytes: &[u8]) -> Result<Loaded> {
    let bad = |e: gocost_trace::Error| InputError(format!("{name}: reading trace: {e}"));
    let r = gocost_trace::Reader::new(bytes).map_err(bad)?;
    let go_minor = r.format().minor();
    let events = r.collect::<Result<Vec<_>, _>>().map_err(bad)?;
    Ok(Loaded {
        name: name.to_string(),
        go_minor,
        bytes: bytes.len(),
        events,
    })
}

/// Takes a trace from a live service's /debug/pprof/trace.
fn take(url: &str, seconds: u64, output: Option<PathBuf>, max: u64) -> Result<()> {
    if seconds == 0 {
        return Err(InputError("--seconds must be at least 1".into()).into());
    }
    let bytes = crate::source::fetch(url, "/debug/pprof/trace", Some(seconds), max)?;
    // Check it is a trace before keeping it.
    let t = parse(url, &bytes)?;
    let path = output.unwrap_or_else(|| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        PathBuf::from(format!("trace-{now}.out"))
    });
    std::fs::write(&path, &bytes).with_context(|| format!("writing {}", path.display()))?;
    eprintln!(
        "Wrote {} ({} bytes, {} events, Go 1.{} format); look at it with: gocost trace summary {}",
        path.display(),
        bytes.len(),
        t.events.len(),
        t.go_minor,
        path.display()
    );
    Ok(())
}

fn upload(u: UploadArgs) -> Result<()> {
    let bytes = read_capped(&u.file.trace, u.file.max_size)?;
    parse(&u.file.trace, &bytes)?;
    let mut url = reqwest::Url::parse(&u.server)
        .map_err(|e| InputError(format!("--server {}: {e}", u.server)))?;
    url.set_path("/api/v1/traces");
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("job", &u.job);
        if let Some(i) = &u.instance {
            q.append_pair("instance", i);
        }
        for l in &u.label {
            let (k, v) = l
                .split_once('=')
                .ok_or_else(|| InputError(format!("--label {l:?}: want name=value")))?;
            q.append_pair(k, v);
        }
        if let Some(t) = &u.time {
            q.append_pair("time", t);
        }
    }
    let client = reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(120))
        .build()?;
    let mut req = client.post(url.clone()).body(bytes);
    if let Some(t) = &u.token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().map_err(|e| anyhow::anyhow!("{url}: {e}"))?;
    let status = resp.status();
    let body = resp.text().unwrap_or_default();
    if !status.is_success() {
        let e = anyhow::anyhow!("{url}: server answered {status}: {}", body.trim());
        return Err(if status.is_client_error() {
            InputError(format!("{e}")).into()
        } else {
            e
        });
    }
    out(&format!("{}\n", body.trim()))
}

/// The pprof profile `go tool trace -pprof` builds from blocking records (its
/// `traceviewer.BuildProfile`): `contentions/count` and `delay/nanoseconds`, one location
/// per PC, one function per (file, name), no mappings.
pub fn blocking_pprof(records: &[BlockingRecord]) -> Profile {
    let mut p = Profile {
        period_type: ValueType::new("trace", "count"),
        period: 1,
        sample_type: vec![
            ValueType::new("contentions", "count"),
            ValueType::new("delay", "nanoseconds"),
        ],
        ..Profile::default()
    };
    let mut locs: std::collections::HashMap<u64, u32> = std::collections::HashMap::new();
    let mut funcs: std::collections::HashMap<(String, String), u32> =
        std::collections::HashMap::new();
    for rec in records {
        let mut sloc = Vec::with_capacity(rec.stack.len());
        for f in &rec.stack {
            let loc = match locs.get(&f.pc) {
                Some(&l) => l,
                None => {
                    let key = (f.file.clone(), f.func.clone());
                    let func = match funcs.get(&key) {
                        Some(&fi) => fi,
                        None => {
                            let name = Str::from(f.func.as_str());
                            p.function.push(Function {
                                id: p.function.len() as u64 + 1,
                                name: name.clone(),
                                system_name: name,
                                filename: Str::from(f.file.as_str()),
                                start_line: 0,
                            });
                            let fi = (p.function.len() - 1) as u32;
                            funcs.insert(key, fi);
                            fi
                        }
                    };
                    p.location.push(Location {
                        id: p.location.len() as u64 + 1,
                        mapping: None,
                        address: f.pc,
                        line: vec![Line {
                            function: func,
                            line: f.line as i64,
                            column: 0,
                        }],
                        is_folded: false,
                    });
                    let l = (p.location.len() - 1) as u32;
                    locs.insert(f.pc, l);
                    l
                }
            };
            sloc.push(loc);
        }
        p.sample.push(Sample {
            location: sloc,
            value: vec![rec.count as i64, rec.delay_ns],
            label: Vec::new(),
        });
    }
    p
}

/// A duration as Go's `time.Duration` prints it, rounded to 3 significant decimals
/// (`1.234ms`, `56µs`, `2.5s`).
pub fn dur(ns: i64) -> String {
    let (neg, n) = (ns < 0, ns.unsigned_abs());
    let s = if n < 1_000 {
        format!("{n}ns")
    } else if n < 1_000_000 {
        format!("{}µs", trim(n as f64 / 1e3))
    } else if n < 1_000_000_000 {
        format!("{}ms", trim(n as f64 / 1e6))
    } else {
        format!("{}s", trim(n as f64 / 1e9))
    };
    if neg { format!("-{s}") } else { s }
}

fn trim(x: f64) -> String {
    let s = format!("{x:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

fn pct(x: f64) -> String {
    format!("{:.2}%", x * 100.0)
}

fn durations_text(d: &gocost_trace::Durations) -> String {
    format!(
        "total {}, p50 {}, p90 {}, p99 {}, max {}",
        dur(d.total_ns),
        dur(d.p50_ns),
        dur(d.p90_ns),
        dur(d.p99_ns),
        dur(d.max_ns)
    )
}

fn window_name(ns: i64) -> String {
    dur(ns)
}

fn summary_json(t: &Loaded, o: &Overview, blocking: &[(BlockingKind, u64, i64)]) -> Value {
    let mut m = gocost_server::trace_json::overview(o, blocking);
    m.insert("file".into(), json!(t.name));
    m.insert("go_format".into(), json!(format!("1.{}", t.go_minor)));
    m.insert("bytes".into(), json!(t.bytes));
    Value::Object(m)
}

fn summary_text(t: &Loaded, o: &Overview, blocking: &[(BlockingKind, u64, i64)]) -> String {
    let mut s = String::new();
    let mut line = |k: &str, v: String| s.push_str(&format!("{k:<16} {v}\n"));
    line(
        "trace:",
        format!("{} (Go 1.{} format, {} bytes)", t.name, t.go_minor, t.bytes),
    );
    line(
        "duration:",
        format!("{} ({} events)", dur(o.duration_ns()), o.events),
    );
    line("GOMAXPROCS:", o.gomaxprocs.to_string());
    line("goroutines:", o.goroutines.to_string());
    line("GC cycles:", o.gc_cycles.to_string());
    line(
        "stop-the-world:",
        format!("{} pauses, {}", o.stw.count, durations_text(&o.stw)),
    );
    line(
        "sched latency:",
        format!("{} waits, {}", o.sched.count, durations_text(&o.sched)),
    );
    line(
        "mark assists:",
        format!(
            "{} of the procs' time ({} in assists, waits for credit included)",
            pct(o.assist_fraction),
            dur(o.assist_ns)
        ),
    );
    line(
        "MMU:",
        o.mmu
            .iter()
            .map(|&(w, m)| format!("{} {}", window_name(w), pct(m)))
            .collect::<Vec<_>>()
            .join(", "),
    );
    line(
        "blocked:",
        blocking
            .iter()
            .map(|&(k, n, ns)| format!("{} {} ({n} waits)", k.name(), dur(ns)))
            .collect::<Vec<_>>()
            .join(", "),
    );
    s
}

/// MMU windows `gocost trace gc` prints: 100 µs to 1 s, three per decade.
fn mmu_windows() -> Vec<i64> {
    let mut w = Vec::new();
    let mut base = 100_000i64;
    while base <= 1_000_000_000 {
        for m in [1, 2, 5] {
            if base * m <= 1_000_000_000 {
                w.push(base * m);
            }
        }
        base *= 10;
    }
    w
}

fn gc(t: &Loaded, as_json: bool) -> Result<()> {
    let start = t.events.first().map_or(0, Event::time);
    let pauses = gocost_trace::pauses(&t.events);
    let cycles = gocost_trace::gc_cycles(&t.events);
    let curve = gocost_trace::MmuCurve::new(&gocost_trace::mutator_utilization(
        &t.events,
        gocost_trace::UtilFlags::ALL,
    ));
    let mmu: Vec<(i64, f64)> = mmu_windows()
        .into_iter()
        .map(|w| (w, curve.mmu(w)))
        .collect();
    if as_json {
        return print_json(&json!({
            "pauses": pauses.iter().map(|p| json!({
                "start_ns": p.start_ns, "end_ns": p.end_ns, "duration_ns": p.duration_ns(),
                "reason": p.reason, "gc": p.is_gc(), "goroutine": p.goroutine,
            })).collect::<Vec<_>>(),
            "cycles": cycles.iter().map(|c| json!({
                "mark_start_ns": c.mark_start_ns, "mark_end_ns": c.mark_end_ns,
                "pause_ns": c.pauses.iter().map(|p| p.duration_ns()).sum::<i64>(),
                "pauses": c.pauses.len(),
                "assist_ns": c.assist_ns, "assists": c.assists, "sweep_ns": c.sweep_ns,
                "swept_bytes": c.swept_bytes, "reclaimed_bytes": c.reclaimed_bytes,
            })).collect::<Vec<_>>(),
            "mmu": mmu.iter().map(|&(w, m)| json!({"window_ns": w, "mmu": m})).collect::<Vec<_>>(),
        }));
    }
    let mut s = format!(
        "Stop-the-world pauses: {} (times from the start of the trace)\n",
        pauses.len()
    );
    s.push_str(&format!("{:>12} {:>12}  reason\n", "at", "duration"));
    for p in &pauses {
        s.push_str(&format!(
            "{:>12} {:>12}  {}\n",
            dur(p.start_ns - start),
            dur(p.duration_ns()),
            p.reason
        ));
    }
    s.push_str(&format!("\nGC cycles: {}\n", cycles.len()));
    s.push_str(&format!(
        "{:>12} {:>12} {:>12} {:>8} {:>12} {:>12}\n",
        "start", "mark", "pauses", "assists", "assist", "sweep"
    ));
    for c in &cycles {
        let at = c
            .mark_start_ns
            .map_or("(before)".to_string(), |t| dur(t - start));
        let mark = match (c.mark_start_ns, c.mark_end_ns) {
            (Some(a), Some(b)) => dur(b - a),
            _ => "-".to_string(),
        };
        s.push_str(&format!(
            "{:>12} {:>12} {:>12} {:>8} {:>12} {:>12}\n",
            at,
            mark,
            dur(c.pauses.iter().map(|p| p.duration_ns()).sum()),
            c.assists,
            dur(c.assist_ns),
            dur(c.sweep_ns)
        ));
    }
    s.push_str("\nMinimum mutator utilisation (STW, background workers, assists, sweeping):\n");
    for (w, m) in &mmu {
        s.push_str(&format!("{:>12} {:>8}\n", window_name(*w), pct(*m)));
    }
    out(&s)
}

fn sched(t: &Loaded, as_json: bool) -> Result<()> {
    let groups = gocost_trace::sched_latency_by_group(&t.events);
    if as_json {
        return print_json(&json!(
            groups
                .iter()
                .map(|g| json!({
                    "function": g.name, "goroutines": g.goroutines,
                    "waits": gocost_server::trace_json::durations(&g.waits),
                }))
                .collect::<Vec<_>>()
        ));
    }
    let mut s = String::from(
        "Scheduler latency (runnable → running) per goroutine group, longest total first\n",
    );
    s.push_str(&format!(
        "{:>8} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}  start function\n",
        "gs", "waits", "total", "p50", "p90", "p99", "max"
    ));
    for g in &groups {
        let w = &g.waits;
        s.push_str(&format!(
            "{:>8} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}  {}\n",
            g.goroutines,
            w.count,
            dur(w.total_ns),
            dur(w.p50_ns),
            dur(w.p90_ns),
            dur(w.p99_ns),
            dur(w.max_ns),
            if g.name.is_empty() {
                "(unknown)"
            } else {
                &g.name
            }
        ));
    }
    out(&s)
}

#[derive(Default)]
struct Group {
    count: usize,
    exec: i64,
    sched: i64,
    block: i64,
    syscall: i64,
    assist: i64,
    sweep: i64,
    total: i64,
}

fn goroutines(t: &Loaded, as_json: bool) -> Result<()> {
    let sums = gocost_trace::goroutine_summaries(&t.events);
    let mut groups: BTreeMap<&str, Group> = BTreeMap::new();
    for g in sums.values() {
        let e = groups.entry(g.name.as_str()).or_default();
        let st = &g.stats;
        e.count += 1;
        e.exec += st.exec_ns;
        e.sched += st.sched_wait_ns;
        e.block += st.block_ns_by_reason.values().sum::<i64>();
        e.syscall += st.syscall_ns + st.syscall_block_ns;
        e.assist += st.range_ns.get("GC mark assist").copied().unwrap_or(0);
        e.sweep += st
            .range_ns
            .get("GC incremental sweep")
            .copied()
            .unwrap_or(0);
        e.total += st.total_ns;
    }
    let mut order: Vec<(&str, Group)> = groups.into_iter().collect();
    order.sort_by(|a, b| b.1.exec.cmp(&a.1.exec).then_with(|| a.0.cmp(b.0)));
    if as_json {
        return print_json(&json!({
            "groups": order.iter().map(|(n, g)| json!({
                "function": n, "goroutines": g.count, "exec_ns": g.exec, "sched_wait_ns": g.sched,
                "block_ns": g.block, "syscall_ns": g.syscall, "gc_assist_ns": g.assist,
                "gc_sweep_ns": g.sweep, "total_ns": g.total,
            })).collect::<Vec<_>>(),
            "goroutines": sums.values().map(|g| json!({
                "id": g.id, "function": g.name, "creation_ns": g.creation_ns,
                "start_ns": g.start_ns, "end_ns": g.end_ns, "total_ns": g.stats.total_ns,
                "exec_ns": g.stats.exec_ns, "sched_wait_ns": g.stats.sched_wait_ns,
                "syscall_ns": g.stats.syscall_ns, "syscall_block_ns": g.stats.syscall_block_ns,
                "block_ns": g.stats.block_ns_by_reason, "range_ns": g.stats.range_ns,
                "unknown_ns": g.stats.unknown_ns(),
            })).collect::<Vec<_>>(),
        }));
    }
    let mut s = String::from("Goroutine groups by start function, most execution time first\n");
    s.push_str(&format!(
        "{:>6} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}  start function\n",
        "count", "exec", "sched", "block", "syscall", "assist", "sweep"
    ));
    for (n, g) in &order {
        s.push_str(&format!(
            "{:>6} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}  {}\n",
            g.count,
            dur(g.exec),
            dur(g.sched),
            dur(g.block),
            dur(g.syscall),
            dur(g.assist),
            dur(g.sweep),
            if n.is_empty() { "(unknown)" } else { n }
        ));
    }
    out(&s)
}

fn print_json(v: &Value) -> Result<()> {
    let mut s = serde_json::to_string_pretty(v)?;
    s.push('\n');
    out(&s)
}

fn out(s: &str) -> Result<()> {
    let mut o = std::io::stdout().lock();
    o.write_all(s.as_bytes())?;
    o.flush()?;
    Ok(())
}
