//! The JSON of a trace's analyses, one shape for the API (`/api/v1/trace/{id}/summary`) and
//! the CLI (`gocost trace summary --json`).

use gocost_trace::{BlockingKind, Durations, Event, Overview};
use serde_json::{Map, Value, json};

/// The blocking kinds, in `go tool trace -pprof`'s order.
pub const KINDS: [BlockingKind; 4] = [
    BlockingKind::Net,
    BlockingKind::Sync,
    BlockingKind::Syscall,
    BlockingKind::Sched,
];

/// Waits and their total time per blocking kind.
pub fn blocking_totals(events: &[Event]) -> Vec<(BlockingKind, u64, i64)> {
    KINDS
        .iter()
        .map(|&k| {
            let recs = gocost_trace::blocking_profile(events, k);
            (
                k,
                recs.iter().map(|r| r.count).sum(),
                recs.iter().map(|r| r.delay_ns).sum(),
            )
        })
        .collect()
}

pub fn durations(d: &Durations) -> Value {
    json!({"count": d.count, "total_ns": d.total_ns, "p50_ns": d.p50_ns, "p90_ns": d.p90_ns,
           "p99_ns": d.p99_ns, "max_ns": d.max_ns})
}

/// The overview's fields and the blocking totals; callers add what they know of the trace.
pub fn overview(o: &Overview, blocking: &[(BlockingKind, u64, i64)]) -> Map<String, Value> {
    let v = json!({
        "events": o.events,
        "start_ns": o.start_ns,
        "end_ns": o.end_ns,
        "duration_ns": o.duration_ns(),
        "gomaxprocs": o.gomaxprocs,
        "goroutines": o.goroutines,
        "gc_cycles": o.gc_cycles,
        "stw": durations(&o.stw),
        "sched_latency": durations(&o.sched),
        "assist_ns": o.assist_ns,
        "assist_fraction": o.assist_fraction,
        "mmu": o.mmu.iter().map(|&(w, m)| json!({"window_ns": w, "mmu": m})).collect::<Vec<_>>(),
        "blocking": blocking.iter().map(|&(k, n, ns)| json!({"type": k.name(), "waits": n, "total_ns": ns})).collect::<Vec<_>>(),
    });
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}
