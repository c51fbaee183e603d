//! Stop-the-world pauses and GC cycles from a trace.

use std::collections::HashMap;

use crate::event::{Event, GoId, Kind, RangeKind, Resource};

/// One stop-the-world pause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pause {
    /// When the world started stopping (ns, trace clock).
    pub start_ns: i64,
    /// When it was restarted.
    pub end_ns: i64,
    /// Why (`GC sweep termination`, `GC mark termination`, `start trace`, …).
    pub reason: String,
    /// The goroutine that stopped the world.
    pub goroutine: GoId,
}

impl Pause {
    /// How long the world was stopped.
    pub fn duration_ns(&self) -> i64 {
        self.end_ns - self.start_ns
    }

    /// Whether the garbage collector stopped the world (rather than, say, the tracer).
    pub fn is_gc(&self) -> bool {
        self.reason.starts_with("GC ")
    }
}

/// One GC cycle: its mark phase, and the pauses, assists and sweeping from its start to the
/// next cycle's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcCycle {
    /// Start of the cycle (`GCBegin`, just before its sweep-termination pause); `None` if it
    /// was already marking when the trace began.
    pub mark_start_ns: Option<i64>,
    /// End of the mark phase (`GCEnd`, during the mark-termination pause); `None` if the
    /// trace ended first.
    pub mark_end_ns: Option<i64>,
    /// The GC's stop-the-world pauses (sweep termination, mark termination).
    pub pauses: Vec<Pause>,
    /// Mark assist time of all goroutines in the cycle.
    pub assist_ns: i64,
    /// How many mark assists.
    pub assists: u64,
    /// Incremental sweep time (by goroutines that allocate) in the cycle.
    pub sweep_ns: i64,
    /// Bytes swept and reclaimed by those sweeps.
    pub swept_bytes: u64,
    /// Bytes reclaimed by them.
    pub reclaimed_bytes: u64,
}

/// Every completed stop-the-world pause, in the order they began.
pub fn pauses(events: &[Event]) -> Vec<Pause> {
    let mut open: HashMap<GoId, (i64, String)> = HashMap::new();
    let mut out = Vec::new();
    for ev in events {
        let Some(r) = ev.range() else { continue };
        let RangeKind::StopTheWorld(reason) = r.kind else {
            continue;
        };
        let Resource::Goroutine(g) = r.scope else {
            continue;
        };
        match ev.kind() {
            Kind::RangeBegin => {
                open.insert(g, (ev.time(), reason.to_string()));
            }
            Kind::RangeEnd => {
                if let Some((start, reason)) = open.remove(&g) {
                    out.push(Pause {
                        start_ns: start,
                        end_ns: ev.time(),
                        reason,
                        goroutine: g,
                    });
                }
            }
            _ => {}
        }
    }
    out.sort_by_key(|p| p.start_ns);
    out
}

/// The GC cycles of the trace, in order. A cycle begins where the runtime starts it (its
/// mark phase's begin event, which comes just before its sweep-termination pause; or the
/// start of the trace when it was already marking); its pauses, mark assists and sweeps are
/// the ones that begin before the next cycle does.
pub fn gc_cycles(events: &[Event]) -> Vec<GcCycle> {
    let mut cycles: Vec<GcCycle> = Vec::new();
    // Boundaries: where each cycle begins.
    let mut starts: Vec<i64> = Vec::new();
    for ev in events {
        let Some(r) = ev.range() else { continue };
        match (r.kind, ev.kind()) {
            (RangeKind::GcMark, Kind::RangeBegin) => {
                starts.push(ev.time());
                cycles.push(GcCycle {
                    mark_start_ns: Some(ev.time()),
                    ..Default::default()
                });
            }
            (RangeKind::GcMark, Kind::RangeActive) if cycles.is_empty() => {
                starts.push(i64::MIN);
                cycles.push(GcCycle::default());
            }
            (RangeKind::GcMark, Kind::RangeEnd) => {
                if let Some(c) = cycles.last_mut() {
                    c.mark_end_ns = Some(ev.time());
                }
            }
            _ => {}
        }
    }
    if cycles.is_empty() {
        return cycles;
    }
    let cycle_at = |t: i64| starts.partition_point(|&s| s <= t).checked_sub(1);
    for p in pauses(events).into_iter().filter(Pause::is_gc) {
        if let Some(i) = cycle_at(p.start_ns) {
            cycles[i].pauses.push(p);
        }
    }
    let mut assist_open: HashMap<GoId, i64> = HashMap::new();
    let mut sweep_open: HashMap<i64, i64> = HashMap::new();
    for ev in events {
        let Some(r) = ev.range() else { continue };
        match (r.kind, r.scope, ev.kind()) {
            (RangeKind::GcMarkAssist, Resource::Goroutine(g), Kind::RangeBegin) => {
                assist_open.insert(g, ev.time());
            }
            (RangeKind::GcMarkAssist, Resource::Goroutine(g), Kind::RangeEnd) => {
                if let Some(start) = assist_open.remove(&g)
                    && let Some(i) = cycle_at(start)
                {
                    cycles[i].assist_ns += ev.time() - start;
                    cycles[i].assists += 1;
                }
            }
            (RangeKind::GcSweep, Resource::Proc(p), Kind::RangeBegin) => {
                sweep_open.insert(p, ev.time());
            }
            (RangeKind::GcSweep, Resource::Proc(p), Kind::RangeEnd) => {
                if let Some(start) = sweep_open.remove(&p)
                    && let Some(i) = cycle_at(start)
                {
                    cycles[i].sweep_ns += ev.time() - start;
                    if let Some(s) = ev.sweep_result() {
                        cycles[i].swept_bytes += s.swept;
                        cycles[i].reclaimed_bytes += s.reclaimed;
                    }
                }
            }
            _ => {}
        }
    }
    cycles
}
