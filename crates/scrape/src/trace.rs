//! Execution traces into the store: the trace itself as a blob (so `go tool trace` opens the
//! download) and its analyses as runtime-metric series, for scraped and uploaded traces
//! alike. Synchronous (parsing is CPU work, storing is file I/O): call it from a blocking
//! thread.
//!
//! Series written for a capture (kind `metric`, the target's labels plus `__name__`), at the
//! capture's start unless said otherwise:
//!
//! | `__name__` | value |
//! |---|---|
//! | `go_trace_stw_seconds{quantile="0.5"\|"0.9"\|"0.99"\|"1"}`, `_count`, `_sum` | stop-the-world pauses of the capture (any reason, the tracer's own too) |
//! | `go_trace_gc_stw_seconds{quantile=…}`, `_count`, `_sum` | the GC's stop-the-world pauses |
//! | `go_trace_sched_latency_seconds{quantile=…}`, `_count`, `_sum` | runnable → running waits |
//! | `go_trace_mmu{window="100us"\|"1ms"\|"10ms"\|"100ms"\|"1s"}` | minimum mutator utilisation (0–1) |
//! | `go_trace_gc_assist_fraction` | mark assist time ÷ (duration × GOMAXPROCS) |
//! | `go_trace_duration_seconds` | how long the trace ran |
//! | `go_trace_stw_pause_seconds{reason}` | one point per pause, at the time it began |
//! | `go_trace_gc_assist_seconds` | one point per GC cycle: its mark assist time, at its start |

use std::collections::BTreeMap;

use gocost_store::{SeriesKey, Store, TraceInfo};
use gocost_trace::{Durations, Event};

/// What a stored capture gave.
#[derive(Debug, Clone)]
pub struct Stored {
    pub info: TraceInfo,
    pub points: usize,
}

/// Reads one statistic of [`Durations`].
pub type Stat = fn(&Durations) -> i64;

/// The quantiles stored for pauses and scheduler latency.
pub const QUANTILES: [(&str, Stat); 4] = [
    ("0.5", |d| d.p50_ns),
    ("0.9", |d| d.p90_ns),
    ("0.99", |d| d.p99_ns),
    ("1", |d| d.max_ns),
];

fn window_label(ns: i64) -> String {
    match ns {
        n if n >= 1_000_000_000 && n % 1_000_000_000 == 0 => format!("{}s", n / 1_000_000_000),
        n if n >= 1_000_000 && n % 1_000_000 == 0 => format!("{}ms", n / 1_000_000),
        n => format!("{}us", n / 1_000),
    }
}

/// The offset from trace time to Unix time: the capture began at `start_unix_ns` (its first
/// event). A Go 1.25+ trace's clock snapshot is more exact and is used when it agrees with
/// that within a minute (an uploaded old trace keeps the time it is stored under).
fn wall_offset(events: &[Event], start_unix_ns: i64) -> i64 {
    let first = events.first().map_or(0, Event::time);
    let by_start = start_unix_ns.saturating_sub(first);
    let snap = events
        .iter()
        .filter_map(|e| e.sync().and_then(|s| s.clock))
        .next();
    match snap {
        Some(c) if c.wall_sec > 0 && (0..1_000_000_000).contains(&c.wall_nsec) => {
            let by_clock = c
                .wall_sec
                .saturating_mul(1_000_000_000)
                .saturating_add(c.wall_nsec)
                .saturating_sub(c.trace);
            if (by_clock - by_start).abs() < 60_000_000_000 {
                by_clock
            } else {
                by_start
            }
        }
        _ => by_start,
    }
}

/// The analyses of one trace as points (see the module's table). `labels` are the target's.
pub fn trace_points(
    events: &[Event],
    labels: &BTreeMap<String, String>,
    start_unix_ns: i64,
) -> Vec<(SeriesKey, i64, f64)> {
    let key = |name: &str, extra: &[(&str, String)]| {
        let mut l = labels.clone();
        l.insert("__name__".into(), name.to_string());
        for (k, v) in extra {
            l.insert((*k).to_string(), v.clone());
        }
        SeriesKey::new("metric", l)
    };
    let o = gocost_trace::overview(events);
    let t = start_unix_ns;
    let mut pts = Vec::new();
    let gc_stw = Durations::of(
        o.pauses
            .iter()
            .filter(|p| p.is_gc())
            .map(|p| p.duration_ns())
            .collect(),
    );
    for (name, d) in [
        ("go_trace_stw_seconds", &o.stw),
        ("go_trace_gc_stw_seconds", &gc_stw),
        ("go_trace_sched_latency_seconds", &o.sched),
    ] {
        if d.count > 0 {
            for (q, f) in QUANTILES {
                pts.push((key(name, &[("quantile", q.into())]), t, f(d) as f64 / 1e9));
            }
        }
        pts.push((key(&format!("{name}_count"), &[]), t, d.count as f64));
        pts.push((key(&format!("{name}_sum"), &[]), t, d.total_ns as f64 / 1e9));
    }
    for &(w, m) in &o.mmu {
        pts.push((key("go_trace_mmu", &[("window", window_label(w))]), t, m));
    }
    pts.push((
        key("go_trace_gc_assist_fraction", &[]),
        t,
        o.assist_fraction,
    ));
    pts.push((
        key("go_trace_duration_seconds", &[]),
        t,
        o.duration_ns() as f64 / 1e9,
    ));
    let offset = wall_offset(events, start_unix_ns);
    let wall = |t: i64| t.saturating_add(offset);
    for p in &o.pauses {
        pts.push((
            key(
                "go_trace_stw_pause_seconds",
                &[("reason", p.reason.clone())],
            ),
            wall(p.start_ns),
            p.duration_ns() as f64 / 1e9,
        ));
    }
    for c in gocost_trace::gc_cycles(events) {
        if let Some(s) = c.mark_start_ns {
            pts.push((
                key("go_trace_gc_assist_seconds", &[]),
                wall(s),
                c.assist_ns as f64 / 1e9,
            ));
        }
    }
    pts
}

/// Parses `trace`, then stores it and its analyses durably (the blob and the points are
/// synced before this returns). `labels` are the target's (`job`, `instance`, …); the
/// trace's series is `trace{labels}`. A trace that does not parse is refused whole, with
/// the byte offset of the problem.
pub fn store_trace(
    store: &Store,
    labels: &BTreeMap<String, String>,
    start_unix_ns: i64,
    trace: &[u8],
) -> Result<Stored, StoreTraceError> {
    let events = gocost_trace::parse(trace)
        .map_err(|e| StoreTraceError::Bad(format!("parsing trace: {e}")))?;
    let key = SeriesKey::new("trace", labels.clone());
    let info = store
        .put_trace(&key, start_unix_ns, trace)
        .map_err(StoreTraceError::Store)?;
    let points = trace_points(&events, labels, start_unix_ns);
    let lsn = store
        .append_points(&points)
        .map_err(StoreTraceError::Store)?;
    store.commit(lsn).map_err(StoreTraceError::Store)?;
    Ok(Stored {
        info,
        points: points.len(),
    })
}

/// Why a trace was not stored.
#[derive(Debug)]
pub enum StoreTraceError {
    /// The bytes are not a trace gocost reads.
    Bad(String),
    /// The store could not keep it.
    Store(gocost_store::Error),
}

impl std::fmt::Display for StoreTraceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreTraceError::Bad(e) => f.write_str(e),
            StoreTraceError::Store(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for StoreTraceError {}
