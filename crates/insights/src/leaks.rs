//! Goroutine leaks: goroutine stacks whose counts keep growing, told apart from ones that
//! plateau (worker pools, caches warming up, finite sleeps) or churn (per-request work).
//!
//! Goroutines are grouped by what they run (the outermost function) and where they block (the
//! innermost frame outside the runtime and the standard library's sync/time/poll internals),
//! with the kind of wait read from the runtime frames under it. A group is a leak when,
//! over snapshots spanning at least [`Params::min_span_secs`]:
//!
//! - it grows: the Theil–Sen slope is above [`Params::min_rate_per_hour`] and the count rose
//!   by at least [`Params::min_growth`];
//! - it still grows: the slope over the later half is at least half the whole slope (a
//!   plateau's is about zero);
//! - it rarely shrinks: at most a quarter of the steps go down (per-request goroutines come
//!   and go);
//! - it is not asleep: a goroutine in `time.Sleep` always wakes up.
//!
//! Go's own leak detector (the `goroutineleak` profile and `(leaked)` marks in dumps, go1.27)
//! proves leaks directly: such groups are reported with confidence 1 whatever their growth.

use std::collections::BTreeMap;

use gocost_pprof::Profile;
use serde::Serialize;

use crate::dump::Goroutine;
use crate::growth::{self, At, Timeline};

/// Goroutine counts per group at one time.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub time_ms: i64,
    pub groups: BTreeMap<Key, GroupObs>,
}

impl Snapshot {
    /// Whether it counts goroutines (a goroutine profile or dump); snapshots of the
    /// goroutineleak profile only hold proven leaks.
    pub fn is_counted(&self) -> bool {
        self.groups.values().any(|g| g.count > 0)
    }
}

/// How many snapshots count goroutines (see [`Snapshot::is_counted`]).
pub fn counted(snapshots: &[Snapshot]) -> usize {
    snapshots.iter().filter(|s| s.is_counted()).count()
}

/// What a group of goroutines runs and where it waits.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    /// The outermost function: what the goroutine was started to run.
    pub function: String,
    /// The innermost frame of the program (outside runtime internals): where it waits.
    pub blocking_frame: String,
    /// The kind of wait (`chan receive`, `select`, `sync.Mutex.Lock`, ...).
    pub blocking: String,
}

/// One group in one snapshot.
#[derive(Debug, Clone, Default)]
pub struct GroupObs {
    pub count: i64,
    /// Goroutines Go's leak detector proved leaked.
    pub proven: i64,
    /// The `go` statement's site, from dumps.
    pub created_by: Option<String>,
    /// Longest wait in minutes, from dumps.
    pub max_wait_minutes: Option<u64>,
    /// One full stack (innermost first), for the report.
    pub stack: Vec<String>,
}

/// Frames that say how a goroutine waits, innermost first; the first match wins.
const WAITS: &[(&str, &str)] = &[
    ("runtime.chanrecv", "chan receive"),
    ("runtime.chansend", "chan send"),
    ("runtime.selectgo", "select"),
    ("runtime.block", "select (no cases)"),
    ("sync.(*WaitGroup).Wait", "sync.WaitGroup.Wait"),
    ("sync.(*Cond).Wait", "sync.Cond.Wait"),
    ("sync.(*RWMutex).RLock", "sync.RWMutex.RLock"),
    ("sync.(*RWMutex).Lock", "sync.RWMutex.Lock"),
    ("sync.(*Mutex).Lock", "sync.Mutex.Lock"),
    ("internal/sync.(*Mutex).Lock", "sync.Mutex.Lock"),
    ("time.Sleep", "sleep"),
    ("internal/poll.runtime_pollWait", "IO wait"),
    ("syscall.Syscall", "syscall"),
    ("syscall.RawSyscall", "syscall"),
];

/// Frames that belong to the waiting machinery, not to the program.
fn is_internal(f: &str) -> bool {
    f.starts_with("runtime.")
        || f.starts_with("internal/")
        || f.starts_with("sync.")
        || f.starts_with("time.Sleep")
        || f.starts_with("syscall.")
}

/// Groups a stack (innermost first).
pub fn key_of(stack: &[String]) -> Key {
    let blocking = stack
        .iter()
        .find_map(|f| {
            WAITS
                .iter()
                .find(|(prefix, _)| f.starts_with(prefix))
                .map(|(_, k)| k.to_string())
        })
        .unwrap_or_else(|| "running".to_string());
    let blocking_frame = stack
        .iter()
        .find(|f| !is_internal(f))
        .or(stack.first())
        .cloned()
        .unwrap_or_default();
    Key {
        function: stack.last().cloned().unwrap_or_default(),
        blocking_frame,
        blocking,
    }
}

/// Function names of a pprof sample's stack, innermost first (inlined frames expanded).
pub(crate) fn sample_stack(p: &Profile, locs: &[u32]) -> Vec<String> {
    let mut out = Vec::new();
    for &l in locs {
        let Some(loc) = p.location.get(l as usize) else {
            continue;
        };
        for line in &loc.line {
            if let Some(f) = p.function.get(line.function as usize) {
                out.push(f.name.to_string());
            }
        }
    }
    out
}

/// A snapshot from a `goroutine` profile; `proven` marks a `goroutineleak` profile (its
/// goroutines are the ones Go proved leaked).
pub fn snapshot_from_profile(p: &Profile, proven: bool) -> Snapshot {
    let mut s = Snapshot {
        time_ms: p.time_nanos / 1_000_000,
        groups: BTreeMap::new(),
    };
    for sample in &p.sample {
        let count = sample.value.first().copied().unwrap_or(0);
        let stack = sample_stack(p, &sample.location);
        let g = s.groups.entry(key_of(&stack)).or_default();
        if proven {
            g.proven += count;
        } else {
            g.count += count;
        }
        if g.stack.is_empty() {
            g.stack = stack;
        }
    }
    s
}

/// A snapshot from a parsed `debug=2` dump taken at `time_ms`.
pub fn snapshot_from_dump(gs: &[Goroutine], time_ms: i64) -> Snapshot {
    let mut s = Snapshot {
        time_ms,
        groups: BTreeMap::new(),
    };
    for g in gs {
        if g.state == "running" && g.frames.iter().any(|f| f.starts_with("runtime/pprof.")) {
            continue; // the handler writing this very dump
        }
        // Dumps hide the runtime's frames; the header's wait reason says how it waits.
        let mut key = key_of(&g.frames);
        if !matches!(
            g.state.as_str(),
            "running"
                | "runnable"
                | "syscall"
                | "waiting"
                | "idle"
                | "dead"
                | "copystack"
                | "preempted"
        ) {
            key.blocking = g.state.clone();
        }
        let o = s.groups.entry(key).or_default();
        o.count += 1;
        o.proven += g.leaked as i64;
        if o.created_by.is_none()
            && let Some((f, site)) = &g.created_by
        {
            o.created_by = Some(if site.is_empty() {
                f.clone()
            } else {
                format!("{f} at {site}")
            });
        }
        if let Some(m) = g.wait_minutes {
            o.max_wait_minutes = Some(o.max_wait_minutes.map_or(m, |x: u64| x.max(m)));
        }
        if o.stack.is_empty() {
            o.stack = g.frames.clone();
        }
    }
    s
}

/// The growth rule for goroutine counts: 5 snapshots over 30 s, 60 goroutines an hour, a
/// rise of 10, confidence 0.3 (a steady leak watched for 30 s scores above 0.5).
pub fn defaults() -> growth::Rule {
    growth::Rule {
        min_span_secs: 30.0,
        min_points: 5,
        min_rate_per_hour: 60.0,
        min_growth: 10.0,
        min_confidence: 0.3,
    }
}

/// A leak found.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// What the leaked goroutines run (e.g. `main.watchLoop`).
    pub function: String,
    /// How they wait (`chan receive`, `chan send`, `select`, `sync.Mutex.Lock`,
    /// `sync.WaitGroup.Wait`, `IO wait`, ...).
    pub blocking: String,
    /// The program's frame where they wait.
    pub blocking_frame: String,
    /// Goroutines in the group at the last snapshot.
    pub count: i64,
    /// Growth per hour (Theil–Sen slope).
    pub rate_per_hour: f64,
    /// Unix milliseconds of the first snapshot the group appeared in.
    pub first_seen_ms: i64,
    /// 0..1: how sure the evidence makes us (1 = proven by Go's leak detector).
    pub confidence: f64,
    /// `growth` (counts over time) and/or `runtime` (Go's leak detector).
    pub evidence: Vec<&'static str>,
    /// The `go` statement that created them, when a dump said.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_wait_minutes: Option<u64>,
    /// One of their stacks, innermost first.
    pub stack: Vec<String>,
}

/// Finds leaks in snapshots (any order; they are sorted by time).
pub fn find(snapshots: &[Snapshot], rule: &growth::Rule) -> Vec<Finding> {
    let mut h = History::default();
    for s in snapshots {
        h.push(s.clone());
    }
    h.find(rule)
}

/// One target's snapshots folded as they come, in any order: per group its counts, and its
/// details (stack, creator) once, from the latest snapshot that had them. What the server
/// keeps per target while it reads a window of profiles: a snapshot holds every group's
/// key and stack as strings (kilobytes), its fold 16 bytes per group.
#[derive(Debug, Default)]
pub struct History {
    /// Per snapshot pushed: its time, and whether it counts goroutines.
    times: Vec<i64>,
    counted: Vec<bool>,
    groups: BTreeMap<Key, Group>,
}

#[derive(Debug, Default)]
struct Group {
    /// (snapshot, goroutines) for every snapshot the group is in.
    counts: Vec<(u32, i64)>,
    proven: i64,
    /// The first snapshot with goroutines in the group (counted or proven).
    first_seen: Option<At>,
    created_by: Option<(At, String)>,
    max_wait_minutes: Option<u64>,
    stack: Option<(At, Vec<String>)>,
}

impl History {
    /// Folds one snapshot in.
    pub fn push(&mut self, s: Snapshot) {
        let i = self.times.len() as u32;
        let at = (s.time_ms, i);
        self.times.push(s.time_ms);
        self.counted.push(s.is_counted());
        for (key, g) in s.groups {
            let e = self.groups.entry(key).or_default();
            e.counts.push((i, g.count));
            e.proven = e.proven.max(g.proven);
            if (g.count > 0 || g.proven > 0) && e.first_seen.is_none_or(|f| at < f) {
                e.first_seen = Some(at);
            }
            if let Some(c) = g.created_by
                && e.created_by.as_ref().is_none_or(|(a, _)| at > *a)
            {
                e.created_by = Some((at, c));
            }
            e.max_wait_minutes = e.max_wait_minutes.max(g.max_wait_minutes);
            if !g.stack.is_empty() && e.stack.as_ref().is_none_or(|(a, _)| at > *a) {
                e.stack = Some((at, g.stack));
            }
        }
    }

    /// Snapshots folded in.
    pub fn len(&self) -> usize {
        self.times.len()
    }

    pub fn is_empty(&self) -> bool {
        self.times.is_empty()
    }

    /// How many snapshots count goroutines (see [`Snapshot::is_counted`]).
    pub fn counted(&self) -> usize {
        self.counted.iter().filter(|&&c| c).count()
    }

    /// The leaking groups, fastest first.
    pub fn find(&self, rule: &growth::Rule) -> Vec<Finding> {
        let Some(t0) = self.times.iter().copied().min() else {
            return Vec::new();
        };
        // Goroutine snapshots are complete: a group absent from one had 0 goroutines.
        let axis = Timeline::new(&self.times, |i| self.counted[i]);
        let last = axis.last();
        let mut out = Vec::new();
        for (key, g) in &self.groups {
            let pts = axis.points(&g.counts);
            let count = g
                .counts
                .iter()
                .find(|&&(i, _)| Some(i) == last)
                .map_or(0, |&(_, n)| n)
                .max(g.proven);

            let mut evidence = Vec::new();
            let mut confidence: f64 = 0.0;
            let mut rate = 0.0;
            if key.blocking != "sleep"
                && let Some(gr) = growth::sustained(&pts, rule)
            {
                rate = gr.rate_per_hour;
                confidence = gr.confidence;
                evidence.push("growth");
            }
            if g.proven > 0 {
                evidence.push("runtime");
                confidence = 1.0;
            }
            if evidence.is_empty() {
                continue;
            }
            out.push(Finding {
                function: key.function.clone(),
                blocking: key.blocking.clone(),
                blocking_frame: key.blocking_frame.clone(),
                count,
                rate_per_hour: (rate * 10.0).round() / 10.0,
                first_seen_ms: g.first_seen.map_or(t0, |a| a.0),
                confidence: (confidence * 100.0).round() / 100.0,
                evidence,
                created_by: g.created_by.as_ref().map(|c| c.1.clone()),
                max_wait_minutes: g.max_wait_minutes,
                stack: g.stack.as_ref().map_or(Vec::new(), |s| s.1.clone()),
            });
        }
        out.sort_by(|a, b| {
            b.rate_per_hour
                .total_cmp(&a.rate_per_hour)
                .then_with(|| b.count.cmp(&a.count))
                .then_with(|| a.function.cmp(&b.function))
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(t: i64, groups: &[(&str, &str, i64)]) -> Snapshot {
        let mut s = Snapshot {
            time_ms: t * 1000,
            groups: BTreeMap::new(),
        };
        for &(f, kind, n) in groups {
            let stack: Vec<String> = match kind {
                "recv" => vec![
                    "runtime.gopark".into(),
                    "runtime.chanrecv1".into(),
                    f.into(),
                ],
                "sleep" => vec!["runtime.gopark".into(), "time.Sleep".into(), f.into()],
                _ => vec!["runtime.gopark".into(), "runtime.selectgo".into(), f.into()],
            };
            s.groups.insert(
                key_of(&stack),
                GroupObs {
                    count: n,
                    stack,
                    ..Default::default()
                },
            );
        }
        s
    }

    #[test]
    fn growth_is_a_leak_plateaus_churn_and_sleeps_are_not() {
        let mut snaps: Vec<Snapshot> = (0..20)
            .map(|i| {
                let t = i * 5;
                snap(
                    t,
                    &[
                        ("main.leak", "recv", t),
                        ("main.pool", "recv", t.min(30)),
                        ("main.req", "select", [3, 9, 1, 7, 0, 12, 4][i as usize % 7]),
                        ("main.nap", "sleep", t),
                    ],
                )
            })
            .collect();
        snaps.reverse(); // any order
        let f = find(&snaps, &defaults());
        assert_eq!(f.len(), 1, "{f:#?}");
        assert_eq!(f[0].function, "main.leak");
        assert_eq!(f[0].blocking, "chan receive");
        assert_eq!(f[0].count, 95);
        assert_eq!(f[0].rate_per_hour, 3600.0);
        assert!(f[0].confidence >= 0.9, "{}", f[0].confidence);
    }
}
