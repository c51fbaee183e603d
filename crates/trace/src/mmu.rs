//! Mutator utilisation and the minimum mutator utilisation (MMU) curve, as `go tool trace`'s
//! MMU view computes them (Go 1.27): the fraction of the procs the program (not the GC) had
//! over time, and for a window length the worst mean of it over any window that long.

use std::collections::HashMap;

use crate::event::{Change, Event, GoId, GoState, Kind, RangeKind, Resource};

/// What counts as the GC taking a proc away from the program (Go's `UtilFlags`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UtilFlags {
    /// Stop-the-world pauses of the GC take all procs.
    pub stw: bool,
    /// Background mark workers take their proc while they run.
    pub background: bool,
    /// Mark assists take the assisting goroutine's proc.
    pub assist: bool,
    /// Sweeping takes the sweeping proc.
    pub sweep: bool,
    /// One series per proc instead of one for the whole program.
    pub per_proc: bool,
}

impl UtilFlags {
    /// Everything the GC does, over the whole program (the MMU view's defaults).
    pub const ALL: UtilFlags = UtilFlags {
        stw: true,
        background: true,
        assist: true,
        sweep: true,
        per_proc: false,
    };
}

/// From this time on, the program had `util` of the procs (0 to 1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MutatorUtil {
    /// Nanoseconds, trace clock.
    pub time: i64,
    /// Fraction of the procs available to the program.
    pub util: f64,
}

fn add_util(v: &mut Vec<MutatorUtil>, mu: MutatorUtil) {
    if let Some(last) = v.last_mut() {
        if mu.util == last.util {
            return;
        }
        if mu.time == last.time {
            if mu.util < last.util {
                *last = mu;
            }
            return;
        }
    }
    v.push(mu);
}

fn executing(s: Option<&GoState>) -> bool {
    matches!(s, Some(GoState::Running | GoState::Syscall))
}

#[derive(Clone, Copy, Default)]
struct PerP {
    gc: i64,
    series: usize,
}

/// The mutator utilisation over the trace: one series (or one per proc), each a step
/// function of time.
pub fn mutator_utilization(events: &[Event], flags: UtilFlags) -> Vec<Vec<MutatorUtil>> {
    let mut out: Vec<Vec<MutatorUtil>> = Vec::new();
    let mut stw = 0i64;
    let mut ps: Vec<PerP> = Vec::new();
    let mut in_gc: HashMap<GoId, bool> = HashMap::new();
    let mut states: HashMap<GoId, GoState> = HashMap::new();
    let mut bg_mark: HashMap<GoId, bool> = HashMap::new();
    let mut procs: Vec<(i64, usize)> = Vec::new();
    let mut n_sync = 0u64;
    let is_stw = |k: &RangeKind<'_>| {
        flags.stw && matches!(k, RangeKind::StopTheWorld(r) if r.contains("GC"))
    };
    let is_assist = |k: &RangeKind<'_>| flags.assist && *k == RangeKind::GcMarkAssist;
    let is_sweep = |k: &RangeKind<'_>| flags.sweep && *k == RangeKind::GcSweep;
    let p_of = |ev: &Event| usize::try_from(ev.proc()).ok();

    for ev in events {
        let t = ev.time();
        match ev.kind() {
            Kind::Sync => n_sync = ev.sync().map_or(n_sync, |s| s.n),
            Kind::Metric => {
                if let Some(m) = ev.metric().filter(|m| m.name == crate::GOMAXPROCS) {
                    let n = usize::try_from(m.value).unwrap_or(usize::MAX).min(1 << 16);
                    if ps.len() > n {
                        if flags.per_proc {
                            for p in &ps[n..] {
                                add_util(&mut out[p.series], MutatorUtil { time: t, util: 0.0 });
                            }
                        }
                        ps.truncate(n);
                    }
                    while ps.len() < n {
                        let mut series = 0;
                        if flags.per_proc || out.is_empty() {
                            series = out.len();
                            out.push(vec![MutatorUtil { time: t, util: 1.0 }]);
                        }
                        ps.push(PerP { gc: 0, series });
                    }
                    if procs.last().is_none_or(|&(_, k)| k != n) {
                        procs.push((t, n));
                    }
                }
            }
            _ => {}
        }
        if ps.is_empty() {
            continue;
        }
        match ev.kind() {
            Kind::RangeActive | Kind::RangeBegin => {
                let Some(r) = ev.range() else { continue };
                if ev.kind() == Kind::RangeActive {
                    if n_sync > 1 {
                        // Go leaves ranges active at a later generation's start alone.
                        push_util(&mut out, &ps, stw, flags, t);
                        continue;
                    }
                    let take = (is_assist(&r.kind) && executing(states.get(&ev.goroutine())))
                        || (!is_assist(&r.kind) && is_sweep(&r.kind));
                    if take && !flags.per_proc && !out.is_empty() {
                        // The range was already running: take its proc away from the start.
                        let mut pi = 0;
                        let mut mi = 0;
                        while mi < out[0].len() {
                            if pi + 1 < procs.len() && procs[pi + 1].0 < out[0][mi].time {
                                pi += 1;
                                continue;
                            }
                            let n = procs.get(pi).map_or(1, |p| p.1.max(1));
                            out[0][mi].util -= 1.0 / n as f64;
                            if out[0][mi].util < 0.0 {
                                out[0][mi].util = 0.0;
                            }
                            mi += 1;
                        }
                    }
                }
                if is_stw(&r.kind) {
                    stw += 1;
                } else if is_sweep(&r.kind) {
                    if let Some(p) = p_of(ev).and_then(|p| ps.get_mut(p)) {
                        p.gc += 1;
                    }
                } else if is_assist(&r.kind) {
                    if let Some(p) = p_of(ev).and_then(|p| ps.get_mut(p)) {
                        p.gc += 1;
                    }
                    if let Resource::Goroutine(g) = r.scope
                        && g != crate::NO_GOROUTINE
                    {
                        in_gc.insert(g, true);
                    }
                }
            }
            Kind::RangeEnd => {
                let Some(r) = ev.range() else { continue };
                if is_stw(&r.kind) {
                    stw -= 1;
                } else if is_sweep(&r.kind) {
                    if let Some(p) = p_of(ev).and_then(|p| ps.get_mut(p)) {
                        p.gc -= 1;
                    }
                } else if is_assist(&r.kind) {
                    if let Some(p) = p_of(ev).and_then(|p| ps.get_mut(p)) {
                        p.gc -= 1;
                    }
                    if let Resource::Goroutine(g) = r.scope
                        && g != crate::NO_GOROUTINE
                    {
                        in_gc.remove(&g);
                    }
                }
            }
            Kind::StateTransition => {
                if let Some(Change::Goroutine(g, old, new)) = ev.transition().map(|t| t.change) {
                    if in_gc.contains_key(&g) || bg_mark.contains_key(&g) {
                        let (was, is) = (executing(Some(&old)), executing(Some(&new)));
                        if let Some(p) = p_of(ev).and_then(|p| ps.get_mut(p)) {
                            if !was && is {
                                p.gc += 1;
                            } else if was && !is {
                                p.gc -= 1;
                            }
                        }
                    }
                    states.insert(g, new);
                }
            }
            Kind::Label => {
                let l = ev.label().unwrap_or("");
                if flags.background
                    && l.starts_with("GC ")
                    && l != "GC (idle)"
                    && !(flags.per_proc && l == "GC (dedicated)")
                {
                    bg_mark.insert(ev.goroutine(), true);
                    if let Some(p) = p_of(ev).and_then(|p| ps.get_mut(p)) {
                        p.gc += 1;
                    }
                }
            }
            _ => {}
        }
        push_util(&mut out, &ps, stw, flags, t);
    }
    let Some(last) = events.last() else {
        return Vec::new();
    };
    for p in &ps {
        add_util(
            &mut out[p.series],
            MutatorUtil {
                time: last.time(),
                util: 0.0,
            },
        );
    }
    out
}

fn push_util(out: &mut [Vec<MutatorUtil>], ps: &[PerP], stw: i64, flags: UtilFlags, t: i64) {
    if !flags.per_proc {
        let gc_ps = if stw > 0 {
            ps.len()
        } else {
            ps.iter().filter(|p| p.gc > 0).count()
        };
        let util = 1.0 - gc_ps as f64 / ps.len() as f64;
        add_util(&mut out[0], MutatorUtil { time: t, util });
    } else {
        for p in ps {
            let util = if stw > 0 || p.gc > 0 { 0.0 } else { 1.0 };
            add_util(&mut out[p.series], MutatorUtil { time: t, util });
        }
    }
}

/// One series with its running integral.
struct Series {
    util: Vec<MutatorUtil>,
    /// `sums[i]`: the integral of utilisation up to `util[i].time`.
    sums: Vec<f64>,
}

impl Series {
    /// The integral of utilisation up to `t`.
    fn integral(&self, t: i64) -> f64 {
        let pos = self.util.partition_point(|u| u.time <= t).saturating_sub(1);
        let u = self.util[pos];
        let partial = if t != u.time {
            u.util * (t - u.time) as f64
        } else {
            0.0
        };
        self.sums[pos] + partial
    }
}

/// The MMU curve of some utilisation series.
pub struct MmuCurve {
    series: Vec<Series>,
}

impl MmuCurve {
    /// The curve of `utils` (from [`mutator_utilization`]).
    pub fn new(utils: &[Vec<MutatorUtil>]) -> MmuCurve {
        let series = utils
            .iter()
            .filter(|u| !u.is_empty())
            .map(|u| {
                let mut sums = Vec::with_capacity(u.len());
                let mut prev = MutatorUtil { time: 0, util: 0.0 };
                let mut sum = 0.0;
                for &x in u {
                    sum += prev.util * (x.time - prev.time) as f64;
                    sums.push(sum);
                    prev = x;
                }
                Series {
                    util: u.clone(),
                    sums,
                }
            })
            .collect();
        MmuCurve { series }
    }

    /// The minimum mutator utilisation for windows of `window_ns`: the lowest mean
    /// utilisation over any window that long (windows longer than a series count as the
    /// whole series), 1 if there is no data.
    pub fn mmu(&self, window_ns: i64) -> f64 {
        if window_ns <= 0 {
            return 0.0;
        }
        let mut mmu: f64 = 1.0;
        for s in &self.series {
            let (t0, t_end) = (s.util[0].time, s.util[s.util.len() - 1].time);
            let w = window_ns.min(t_end - t0);
            if w <= 0 {
                continue;
            }
            let last_start = t_end - w;
            // The mean over a window is lowest where the window starts or ends at a change.
            let mut eval = |start: i64| {
                let mu = (s.integral(start + w) - s.integral(start)) / w as f64;
                if mu < mmu {
                    mmu = mu;
                }
            };
            eval(t0);
            eval(last_start);
            for u in &s.util {
                if u.time <= last_start {
                    eval(u.time);
                }
                let start = u.time - w;
                if start >= t0 && start <= last_start {
                    eval(start);
                }
            }
        }
        mmu
    }
}
