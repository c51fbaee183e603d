//! A trace at a glance, and scheduler latency: what `gocost trace summary|sched` print and
//! what the server stores as series for every capture.
//!
//! Scheduler latency is the time a goroutine spends runnable before it runs: each
//! transition to `Runnable` starts a wait, the next transition of that goroutine to
//! `Running` ends it (a goroutine runnable when the trace began waits from there). These
//! are the waits `go tool trace -pprof=sched` adds up (without its clipping to the
//! goroutine's life), one by one, so their distribution can be told.

use std::collections::{BTreeMap, HashMap};

use crate::event::{Change, Event, GOMAXPROCS, GoId, GoState, Kind, RangeKind, Resource};
use crate::gc::{Pause, gc_cycles, pauses};
use crate::mmu::{MmuCurve, UtilFlags, mutator_utilization};
use crate::summary::goroutine_summaries;

/// The windows at which [`Overview::mmu`] is computed: 100 µs, 1 ms, 10 ms, 100 ms, 1 s.
pub const MMU_WINDOWS_NS: [i64; 5] = [100_000, 1_000_000, 10_000_000, 100_000_000, 1_000_000_000];

/// One scheduler wait: a goroutine runnable from `start_ns` until it ran at `end_ns`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchedWait {
    /// The goroutine.
    pub goroutine: GoId,
    /// When it became runnable (or the trace began).
    pub start_ns: i64,
    /// When it started running.
    pub end_ns: i64,
}

/// Every scheduler wait of the trace, in the order they ended.
pub fn sched_waits(events: &[Event]) -> Vec<SchedWait> {
    let mut runnable: HashMap<GoId, i64> = HashMap::new();
    let mut out = Vec::new();
    for ev in events {
        if ev.kind() != Kind::StateTransition {
            continue;
        }
        let Some(t) = ev.transition() else { continue };
        let Change::Goroutine(id, old, new) = t.change else {
            continue;
        };
        if new == GoState::Runnable {
            if old != GoState::Runnable {
                runnable.insert(id, ev.time());
            }
            continue;
        }
        let Some(start) = runnable.remove(&id) else {
            continue;
        };
        if new == GoState::Running {
            out.push(SchedWait {
                goroutine: id,
                start_ns: start,
                end_ns: ev.time(),
            });
        }
    }
    out
}

/// Count, sum and quantiles of a set of durations (nanoseconds). Quantiles are nearest-rank:
/// the smallest value with at least that fraction of the values at or below it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Durations {
    /// How many.
    pub count: u64,
    /// Their sum.
    pub total_ns: i64,
    /// Median.
    pub p50_ns: i64,
    /// 90th percentile.
    pub p90_ns: i64,
    /// 99th percentile.
    pub p99_ns: i64,
    /// Largest.
    pub max_ns: i64,
}

impl Durations {
    /// The statistics of `values` (any order).
    pub fn of(mut values: Vec<i64>) -> Durations {
        values.sort_unstable();
        let n = values.len();
        if n == 0 {
            return Durations::default();
        }
        let q = |f: f64| {
            let rank = (f * n as f64).ceil() as usize;
            values[rank.clamp(1, n) - 1]
        };
        Durations {
            count: n as u64,
            total_ns: values.iter().sum(),
            p50_ns: q(0.5),
            p90_ns: q(0.9),
            p99_ns: q(0.99),
            max_ns: values[n - 1],
        }
    }
}

/// Scheduler latency of the goroutines that share a start function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchedGroup {
    /// The start function (`go tool trace`'s goroutine group name); empty when unknown.
    pub name: String,
    /// How many goroutines of the group waited at least once.
    pub goroutines: usize,
    /// Their waits.
    pub waits: Durations,
}

/// Scheduler latency per goroutine group (by start function), the groups that waited
/// longest in total first (then by name).
pub fn sched_latency_by_group(events: &[Event]) -> Vec<SchedGroup> {
    let names = goroutine_summaries(events);
    let mut groups: BTreeMap<&str, (Vec<i64>, std::collections::BTreeSet<GoId>)> = BTreeMap::new();
    for w in sched_waits(events) {
        let name = names.get(&w.goroutine).map_or("", |s| s.name.as_str());
        let g = groups.entry(name).or_default();
        g.0.push(w.end_ns - w.start_ns);
        g.1.insert(w.goroutine);
    }
    let mut out: Vec<SchedGroup> = groups
        .into_iter()
        .map(|(name, (d, gs))| SchedGroup {
            name: name.to_string(),
            goroutines: gs.len(),
            waits: Durations::of(d),
        })
        .collect();
    out.sort_by(|a, b| {
        b.waits
            .total_ns
            .cmp(&a.waits.total_ns)
            .then_with(|| a.name.cmp(&b.name))
    });
    out
}

/// The time-weighted mean of a utilisation step function from its first to its last point.
fn mean_util(u: &[crate::mmu::MutatorUtil]) -> Option<f64> {
    let (first, last) = (u.first()?, u.last()?);
    let span = last.time - first.time;
    if span <= 0 {
        return None;
    }
    let sum: f64 = u
        .windows(2)
        .map(|w| w[0].util * (w[1].time - w[0].time) as f64)
        .sum();
    Some(sum / span as f64)
}

/// A trace at a glance.
#[derive(Debug, Clone, PartialEq)]
pub struct Overview {
    /// First event (ns, trace clock).
    pub start_ns: i64,
    /// Last event.
    pub end_ns: i64,
    /// How many events.
    pub events: usize,
    /// The largest GOMAXPROCS the trace reported (0 if none).
    pub gomaxprocs: u64,
    /// Goroutines seen.
    pub goroutines: usize,
    /// GC cycles that began or were running in the trace.
    pub gc_cycles: usize,
    /// Every stop-the-world pause (GC's and others').
    pub pauses: Vec<Pause>,
    /// Their durations.
    pub stw: Durations,
    /// Scheduler latency (every wait of every goroutine).
    pub sched: Durations,
    /// Mark assist time of all goroutines: their assist ranges, including the time an
    /// assisting goroutine waited for credit (so it can exceed the procs' time).
    pub assist_ns: i64,
    /// The share of the procs' time that mark assists took from the program: 1 − the mean
    /// of the mutator utilisation counting only assists (as [`mutator_utilization`] counts
    /// them: a proc is taken while an assisting goroutine runs on it), over the whole trace.
    /// 0 to 1.
    pub assist_fraction: f64,
    /// Minimum mutator utilisation (everything the GC does, the MMU view's defaults) at
    /// [`MMU_WINDOWS_NS`].
    pub mmu: Vec<(i64, f64)>,
}

impl Overview {
    /// From the first to the last event.
    pub fn duration_ns(&self) -> i64 {
        self.end_ns - self.start_ns
    }
}

/// The overview of a trace's events.
pub fn overview(events: &[Event]) -> Overview {
    let start_ns = events.first().map_or(0, Event::time);
    let end_ns = events.last().map_or(0, Event::time);
    let mut gomaxprocs = 0;
    let mut assist_ns = 0;
    let mut assist_open: HashMap<GoId, i64> = HashMap::new();
    for ev in events {
        if let Some(m) = ev.metric()
            && m.name == GOMAXPROCS
        {
            gomaxprocs = gomaxprocs.max(m.value);
        }
        if let Some(r) = ev.range()
            && r.kind == RangeKind::GcMarkAssist
            && let Resource::Goroutine(g) = r.scope
        {
            match ev.kind() {
                Kind::RangeBegin | Kind::RangeActive => {
                    assist_open.insert(g, ev.time());
                }
                Kind::RangeEnd => {
                    if let Some(s) = assist_open.remove(&g) {
                        assist_ns += ev.time() - s;
                    }
                }
                _ => {}
            }
        }
    }
    // Assists still running when the trace ended.
    assist_ns += assist_open.values().map(|s| end_ns - s).sum::<i64>();
    let assist_only = UtilFlags {
        assist: true,
        ..UtilFlags::default()
    };
    let assist_fraction = mutator_utilization(events, assist_only)
        .first()
        .and_then(|u| mean_util(u))
        .map_or(0.0, |m| (1.0 - m).clamp(0.0, 1.0));
    let p = pauses(events);
    let stw = Durations::of(p.iter().map(Pause::duration_ns).collect());
    let sched = Durations::of(
        sched_waits(events)
            .iter()
            .map(|w| w.end_ns - w.start_ns)
            .collect(),
    );
    let curve = MmuCurve::new(&mutator_utilization(events, UtilFlags::ALL));
    Overview {
        start_ns,
        end_ns,
        events: events.len(),
        gomaxprocs,
        goroutines: goroutine_summaries(events).len(),
        gc_cycles: gc_cycles(events).len(),
        pauses: p,
        stw,
        sched,
        assist_ns,
        assist_fraction,
        mmu: MMU_WINDOWS_NS.iter().map(|&w| (w, curve.mmu(w))).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::Durations;

    #[test]
    fn mean_of_a_step_function() {
        use crate::mmu::MutatorUtil as U;
        let u = [
            U { time: 0, util: 1.0 },
            U {
                time: 10,
                util: 0.5,
            },
            U {
                time: 30,
                util: 1.0,
            },
            U {
                time: 40,
                util: 0.0,
            },
        ];
        assert_eq!(super::mean_util(&u), Some((10.0 + 10.0 + 10.0) / 40.0));
        assert_eq!(super::mean_util(&u[..1]), None);
    }

    #[test]
    fn nearest_rank_quantiles() {
        let d = Durations::of((1..=100).rev().collect());
        assert_eq!((d.count, d.total_ns), (100, 5050));
        assert_eq!((d.p50_ns, d.p90_ns, d.p99_ns, d.max_ns), (50, 90, 99, 100));
        let one = Durations::of(vec![7]);
        assert_eq!((one.p50_ns, one.p99_ns, one.max_ns), (7, 7, 7));
        assert_eq!(Durations::of(vec![]), Durations::default());
    }
}
