//! Per-goroutine time accounting, as `go tool trace`'s goroutine pages show it (Go 1.27's
//! summarizer): where each goroutine's time went — executing, waiting for a P, blocked (by
//! reason), in syscalls — and how long it spent in special ranges (GC mark assists, sweeping,
//! stop-the-world pauses it started).

use std::collections::{BTreeMap, HashMap};

use crate::event::{Change, Event, GoId, GoState, Kind, NO_PROC, ProcId, ProcState, Resource};

/// Where one goroutine's time went, in nanoseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecStats {
    /// Running.
    pub exec_ns: i64,
    /// Runnable, waiting for a P (and, as Go counts it, runnable again after a syscall whose
    /// P was taken, until the end of the trace).
    pub sched_wait_ns: i64,
    /// Blocked, by reason (`chan receive`, `sync`, `network`, `sleep`, …).
    pub block_ns_by_reason: BTreeMap<String, i64>,
    /// In syscalls, while holding its P.
    pub syscall_ns: i64,
    /// In syscalls after the P was taken away (blocked in the syscall).
    pub syscall_block_ns: i64,
    /// From its first appearance to its end (or the end of the trace).
    pub total_ns: i64,
    /// Time in special ranges by name (`GC mark assist`, `GC incremental sweep`,
    /// `stop-the-world (…)`); overlaps the other times.
    pub range_ns: BTreeMap<String, i64>,
}

impl ExecStats {
    /// Total time not accounted for by the other (non-overlapping) times.
    pub fn unknown_ns(&self) -> i64 {
        let sum = self.exec_ns
            + self.sched_wait_ns
            + self.syscall_ns
            + self.syscall_block_ns
            + self.block_ns_by_reason.values().sum::<i64>();
        if sum < self.total_ns {
            self.total_ns - sum
        } else {
            0
        }
    }

    /// The non-overlapping times under the names `go tool trace` gives them.
    pub fn non_overlapping(&self) -> BTreeMap<String, i64> {
        let mut m = BTreeMap::from([
            ("Execution time".to_string(), self.exec_ns),
            ("Sched wait time".to_string(), self.sched_wait_ns),
            ("Syscall execution time".to_string(), self.syscall_ns),
            ("Block time (syscall)".to_string(), self.syscall_block_ns),
            ("Unknown time".to_string(), self.unknown_ns()),
        ]);
        for (reason, ns) in &self.block_ns_by_reason {
            *m.entry(format!("Block time ({reason})")).or_default() += ns;
        }
        m
    }
}

/// One goroutine's summary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GoroutineSummary {
    /// Its ID.
    pub id: GoId,
    /// Its start function (the outermost frame of the first stack seen with a state change);
    /// empty if none was seen.
    pub name: String,
    /// The PC of that frame.
    pub pc: u64,
    /// First appearance (the start of the trace for goroutines that already existed).
    pub creation_ns: i64,
    /// First time it ran; 0 if it never ran.
    pub start_ns: i64,
    /// When it exited (or blocked forever); 0 if it did not.
    pub end_ns: i64,
    /// Where its time went.
    pub stats: ExecStats,
}

#[derive(Default)]
struct Pending {
    start: i64,
    runnable: i64,
    block: i64,
    block_reason: String,
    syscall: i64,
    syscall_block: i64,
    ranges: HashMap<String, i64>,
}

struct G {
    s: GoroutineSummary,
    p: Pending,
}

impl G {
    fn new(id: GoId, creation: i64) -> G {
        G {
            s: GoroutineSummary {
                id,
                creation_ns: creation,
                ..Default::default()
            },
            p: Pending::default(),
        }
    }

    fn snapshot(&self, last: i64) -> ExecStats {
        let mut r = self.s.stats.clone();
        let p = &self.p;
        if r.total_ns == 0 {
            r.total_ns = last - self.s.creation_ns;
        }
        if p.start != 0 {
            r.exec_ns += last - p.start;
        }
        if p.runnable != 0 {
            r.sched_wait_ns += last - p.runnable;
        }
        if p.block != 0 {
            *r.block_ns_by_reason
                .entry(p.block_reason.clone())
                .or_default() += last - p.block;
        }
        if p.syscall != 0 {
            r.syscall_ns += last - p.syscall;
        }
        if p.syscall_block != 0 {
            // (Go counts this as scheduler wait.)
            r.sched_wait_ns += last - p.syscall_block;
        }
        for (name, &ts) in &p.ranges {
            *r.range_ns.entry(name.clone()).or_default() += last - ts;
        }
        r
    }

    fn finalize(&mut self, last: i64, trigger: Option<i64>) {
        if let Some(t) = trigger {
            self.s.end_ns = t;
        }
        self.s.stats = self.snapshot(last);
        self.p = Pending::default();
    }
}

/// Every goroutine of the trace, summarised as `go tool trace` does.
pub fn goroutine_summaries(events: &[Event]) -> BTreeMap<GoId, GoroutineSummary> {
    let mut gs: HashMap<GoId, G> = HashMap::new();
    let mut syscalling_p: HashMap<ProcId, GoId> = HashMap::new();
    let mut syscalling_g: HashMap<GoId, ProcId> = HashMap::new();
    let mut ranges_p: HashMap<(ProcId, String), GoId> = HashMap::new();
    let mut sync_ts = 0;
    let mut last_ts = 0;
    for ev in events {
        let t = ev.time();
        if sync_ts == 0 {
            sync_ts = t;
        }
        last_ts = t;
        match ev.kind() {
            Kind::Sync => sync_ts = t,
            Kind::StateTransition => {
                let Some(st) = ev.transition() else { continue };
                match st.change {
                    Change::Goroutine(id, old, new) => {
                        if old == new {
                            continue;
                        }
                        match old {
                            GoState::Undetermined => {
                                let mut g = G::new(id, sync_ts);
                                let d = t - sync_ts;
                                let s = &mut g.s.stats;
                                match new {
                                    GoState::Running => s.exec_ns += d,
                                    GoState::Waiting => {
                                        *s.block_ns_by_reason
                                            .entry(st.reason.to_string())
                                            .or_default() += d
                                    }
                                    GoState::Runnable => s.sched_wait_ns += d,
                                    GoState::Syscall if ev.proc() == NO_PROC => {
                                        s.syscall_block_ns += d
                                    }
                                    GoState::Syscall => s.syscall_ns += d,
                                    _ => {}
                                }
                                gs.insert(id, g);
                            }
                            GoState::NotExist => {
                                gs.insert(id, G::new(id, t));
                            }
                            _ => {}
                        }
                        let Some(g) = gs.get_mut(&id) else { continue };
                        match old {
                            GoState::Running => {
                                g.s.stats.exec_ns += t - g.p.start;
                                g.p.start = 0;
                            }
                            GoState::Waiting if g.p.block != 0 => {
                                *g.s.stats
                                    .block_ns_by_reason
                                    .entry(g.p.block_reason.clone())
                                    .or_default() += t - g.p.block;
                                g.p.block = 0;
                            }
                            GoState::Runnable if g.p.runnable != 0 => {
                                g.s.stats.sched_wait_ns += t - g.p.runnable;
                                g.p.runnable = 0;
                            }
                            GoState::Syscall if g.p.syscall != 0 => {
                                if g.p.syscall_block != 0 {
                                    g.s.stats.syscall_block_ns += t - g.p.syscall_block;
                                    g.s.stats.syscall_ns += g.p.syscall_block - g.p.syscall;
                                } else {
                                    g.s.stats.syscall_ns += t - g.p.syscall;
                                }
                                g.p.syscall = 0;
                                g.p.syscall_block = 0;
                                if let Some(p) = syscalling_g.remove(&id) {
                                    syscalling_p.remove(&p);
                                }
                            }
                            _ => {}
                        }
                        if g.s.name.is_empty()
                            && let Some(f) = st.stack.and_then(|s| s.frames().last())
                        {
                            g.s.pc = f.pc;
                            g.s.name = f.func.to_string();
                        }
                        match new {
                            GoState::Running => {
                                g.p.start = t;
                                if g.s.start_ns == 0 {
                                    g.s.start_ns = t;
                                }
                            }
                            GoState::Runnable => g.p.runnable = t,
                            GoState::Waiting if st.reason != "forever" => {
                                g.p.block = t;
                                g.p.block_reason = st.reason.to_string();
                            }
                            GoState::Waiting | GoState::NotExist => g.finalize(t, Some(t)),
                            GoState::Syscall => {
                                syscalling_p.insert(ev.proc(), id);
                                syscalling_g.insert(id, ev.proc());
                                g.p.syscall = t;
                            }
                            GoState::Undetermined => {}
                        }
                    }
                    Change::Proc(id, old, new) => {
                        if old != new
                            && new == ProcState::Idle
                            && let Some(gid) = syscalling_p.remove(&id)
                            && let Some(g) = gs.get_mut(&gid)
                        {
                            g.p.syscall_block = t;
                        }
                    }
                }
            }
            Kind::RangeBegin | Kind::RangeActive => {
                let Some(r) = ev.range() else { continue };
                let name = r.name().into_owned();
                let gid = match r.scope {
                    Resource::Goroutine(g) => Some(g),
                    Resource::Proc(p) => {
                        let g = ev.goroutine();
                        if gs.contains_key(&g) {
                            ranges_p.insert((p, name.clone()), g);
                        }
                        Some(g)
                    }
                    _ => None,
                };
                let Some(g) = gid.and_then(|g| gs.get_mut(&g)) else {
                    continue;
                };
                if ev.kind() == Kind::RangeActive {
                    if let Some(&ts) = g.p.ranges.get(&name)
                        && ts != 0
                    {
                        *g.s.stats.range_ns.entry(name.clone()).or_default() += sync_ts - ts;
                    }
                    g.p.ranges.insert(name, sync_ts);
                } else {
                    g.p.ranges.insert(name, t);
                }
            }
            Kind::RangeEnd => {
                let Some(r) = ev.range() else { continue };
                let name = r.name().into_owned();
                let gid = match r.scope {
                    Resource::Goroutine(g) => Some(g),
                    Resource::Proc(p) => ranges_p
                        .remove(&(p, name.clone()))
                        .filter(|&g| g == ev.goroutine()),
                    _ => None,
                };
                let Some(g) = gid.and_then(|g| gs.get_mut(&g)) else {
                    continue;
                };
                let Some(ts) = g.p.ranges.remove(&name) else {
                    continue;
                };
                if ts == 0 {
                    continue;
                }
                *g.s.stats.range_ns.entry(name).or_default() += t - ts;
            }
            _ => {}
        }
    }
    gs.into_iter()
        .map(|(id, mut g)| {
            g.finalize(last_ts, None);
            (id, g.s)
        })
        .collect()
}
