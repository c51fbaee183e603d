//! Blocking profiles from a trace: where goroutines waited, per stack, as
//! `go tool trace -pprof=net|sync|syscall|sched` computes them (Go 1.27's rules).
//!
//! A wait starts when a goroutine enters the profiled state (waiting on the network;
//! waiting on a channel, `select` or `sync` primitive; in a system call; runnable but not
//! running) and ends at its next transition to another state. The wait is charged to the
//! stack of the event that started it — for `sched`, that is where the goroutine was made
//! runnable (its creator's `go` statement, the unblocking code) — and only the part of it
//! inside the goroutine's life (from when it first ran to when it ended, or to the end of
//! the trace) counts.

use std::collections::HashMap;
use std::sync::Arc;

use crate::event::{Change, Event, GoId, GoState, Kind};
use crate::ids::IdVec;
use crate::wire::Table;

/// Which waits a blocking profile collects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BlockingKind {
    /// Blocked on the network (`-pprof=net`).
    Net,
    /// Blocked on channels, `select` and `sync` primitives (`-pprof=sync`).
    Sync,
    /// In system calls (`-pprof=syscall`).
    Syscall,
    /// Runnable, waiting for a P: scheduler latency (`-pprof=sched`).
    Sched,
}

impl BlockingKind {
    /// From `go tool trace -pprof`'s name for it.
    pub fn from_name(name: &str) -> Option<BlockingKind> {
        match name {
            "net" => Some(BlockingKind::Net),
            "sync" => Some(BlockingKind::Sync),
            "syscall" => Some(BlockingKind::Syscall),
            "sched" => Some(BlockingKind::Sched),
            _ => None,
        }
    }

    /// `go tool trace -pprof`'s name for it.
    pub fn name(self) -> &'static str {
        match self {
            BlockingKind::Net => "net",
            BlockingKind::Sync => "sync",
            BlockingKind::Syscall => "syscall",
            BlockingKind::Sched => "sched",
        }
    }

    fn state(self) -> GoState {
        match self {
            BlockingKind::Net | BlockingKind::Sync => GoState::Waiting,
            BlockingKind::Syscall => GoState::Syscall,
            BlockingKind::Sched => GoState::Runnable,
        }
    }

    fn tracks(self, reason: &str) -> bool {
        match self {
            BlockingKind::Net => reason == "network",
            BlockingKind::Sync => {
                reason.contains("chan") || reason.contains("sync") || reason.contains("select")
            }
            BlockingKind::Syscall | BlockingKind::Sched => true,
        }
    }
}

/// One frame, owned.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OwnedFrame {
    /// Program counter.
    pub pc: u64,
    /// Function name.
    pub func: String,
    /// Source file.
    pub file: String,
    /// Line.
    pub line: u64,
}

/// The waits charged to one stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockingRecord {
    /// The stack, leaf first (at most 128 frames; empty when the starting event had none).
    pub stack: Vec<OwnedFrame>,
    /// How many waits.
    pub count: u64,
    /// Their total duration in nanoseconds.
    pub delay_ns: i64,
}

/// Most frames of a stack a record keeps (as Go's tool).
const MAX_STACK: usize = 128;

/// A goroutine's life as `go tool trace`'s goroutine summary sees it.
#[derive(Default, Clone, Copy)]
struct Life {
    start: i64,
    end: i64,
}

/// One finished wait, charged when the trace ends (the goroutine lives it is clipped to
/// are only known then).
#[derive(Clone, Copy)]
struct Wait {
    g: GoId,
    start: i64,
    end: i64,
    /// Index into [`BlockingProfiler::stacks`].
    stack: u32,
}

/// Waits per chunk of [`BlockingProfiler::waits`].
const WAIT_CHUNK: usize = 1 << 14;

/// What the profiler keeps of one goroutine.
#[derive(Default)]
struct Goroutine {
    /// Its life as `go tool trace`'s goroutine summary sees it (from its first
    /// creation or status event on).
    life: Option<Life>,
    /// In the profiled state: since when, and the stack charged.
    waiting: Option<(i64, u32)>,
    /// Whether a wait of its has ended (charged or not, in eager mode).
    touched: bool,
    /// The latest end of its waits.
    max_end: i64,
}

/// A distinct resolved stack.
struct Interned {
    frames: Vec<OwnedFrame>,
    /// Index of its PCs (trailing zeros trimmed) among [`BlockingProfiler::pcs`].
    pcs: u32,
}

/// A blocking profile computed while the trace streams by: feed it every event in order
/// ([`push`](Self::push)), then [`finish`](Self::finish). It holds per-goroutine state and
/// each distinct stack once — never the events.
///
/// A wait only counts inside its goroutine's life, known for sure only at the end of the
/// trace. [`new`](Self::new) charges each wait when it ends, assuming what real traces
/// show (goroutine ids are not reused, events come in time order), and checks the
/// assumption: when it fails, [`finish`](Self::finish) gives `None`, and the events must be
/// fed again to [`exact`](Self::exact), which keeps every wait until the end (one small
/// record each) and cannot fail. Both give what Go's tool gives.
///
/// ```
/// # let t = { let mut t = b"go 1.22 trace\0\0\0".to_vec(); t.extend([1, 1, 0, 0, 2, 8, 1]); t };
/// let mut p = gocost_trace::BlockingProfiler::new(gocost_trace::BlockingKind::Sched);
/// let mut r = gocost_trace::Reader::new(&t)?;
/// while let Some(ev) = r.next_event() {
///     p.push(ev?); // lent, not copied
/// }
/// assert_eq!(p.finish(), Some(vec![]));
/// # Ok::<(), gocost_trace::Error>(())
/// ```
pub struct BlockingProfiler {
    kind: BlockingKind,
    state: GoState,
    /// Charging waits as they end (else keeping them for the end).
    eager: bool,
    /// In eager mode: the assumption failed (the caller must replay in exact mode).
    failed: bool,
    /// The latest end of any wait.
    max_end: i64,
    /// Eager mode: per PCs index, its record in `recs`.
    by_pcs: Vec<Option<usize>>,
    /// Eager mode: per record, its latest stack, count and delay.
    recs: Vec<(u32, u64, i64)>,
    gs: IdVec<GoId, Goroutine>,
    /// The finished waits, in chunks (no copy as they grow).
    waits: Vec<Vec<Wait>>,
    last_time: i64,
    stacks: Vec<Interned>,
    by_frames: HashMap<Vec<OwnedFrame>, u32>,
    pcs: HashMap<Vec<u64>, u32>,
    /// The generation's table the cache below resolves in, and its stack ids' interned
    /// stacks (held, so the table is not freed and its address reused while cached).
    table: Option<Arc<Table>>,
    cache: IdVec<u64, u32>,
    /// The interned stack of events without one.
    no_stack: Option<u32>,
}

impl BlockingProfiler {
    /// A profiler of `kind`'s waits that charges them as they end (see the type's doc).
    pub fn new(kind: BlockingKind) -> BlockingProfiler {
        BlockingProfiler {
            eager: true,
            ..BlockingProfiler::exact(kind)
        }
    }

    /// A profiler of `kind`'s waits that keeps them all until the end: never `None`.
    pub fn exact(kind: BlockingKind) -> BlockingProfiler {
        BlockingProfiler {
            kind,
            state: kind.state(),
            eager: false,
            failed: false,
            max_end: i64::MIN,
            by_pcs: Vec::new(),
            recs: Vec::new(),
            gs: IdVec::default(),
            waits: Vec::new(),
            last_time: 0,
            stacks: Vec::new(),
            by_frames: HashMap::new(),
            pcs: HashMap::new(),
            table: None,
            cache: IdVec::default(),
            no_stack: None,
        }
    }

    /// Takes the trace's next event.
    pub fn push(&mut self, ev: &Event) {
        self.last_time = ev.time();
        if self.failed {
            return;
        }
        let Some(Change::Goroutine(id, old, new)) = ev.change() else {
            return;
        };
        let time = ev.time();
        let g = self.gs.get_or_insert_with(id, Goroutine::default);
        // Each goroutine's life: from its first run to its exit (or the end of the trace).
        if old != new {
            if matches!(old, GoState::Undetermined | GoState::NotExist) {
                // A new life: it would apply to the waits charged already.
                if self.eager && g.touched {
                    self.failed = true;
                    return;
                }
                g.life = Some(Life::default());
            }
            if let Some(l) = &mut g.life {
                let set = match new {
                    GoState::Running if l.start == 0 => Some(&mut l.start),
                    GoState::Waiting if ev.reason() == "forever" => Some(&mut l.end),
                    GoState::NotExist => Some(&mut l.end),
                    _ => None,
                };
                if let Some(set) = set {
                    *set = time;
                    // Charged waits assumed their goroutine started, or ends, no earlier.
                    if self.eager && g.touched && time < g.max_end {
                        self.failed = true;
                        return;
                    }
                }
            }
        }
        if ev.kind() != Kind::StateTransition {
            return;
        }
        let Some((start, stack)) = g.waiting else {
            if new == self.state && self.kind.tracks(ev.reason()) {
                let stack = self.intern(ev);
                if let Some(g) = self.gs.get_mut(id) {
                    g.waiting = Some((time, stack));
                }
            }
            return;
        };
        if new == self.state {
            return;
        }
        g.waiting = None;
        self.max_end = self.max_end.max(time);
        if self.eager {
            g.touched = true;
            g.max_end = g.max_end.max(time);
            let Some(life) = g.life else {
                return; // no life: never charged (unless one begins: then it fails)
            };
            if life.end != 0 {
                self.failed = true;
                return;
            }
            if life.start == 0 {
                return; // charged only if it starts earlier: then it fails
            }
            // Its life ends at or after `time` (or the trace does).
            let overlap = time - life.start.max(start);
            if overlap > 0 {
                let key = self.stacks[stack as usize].pcs as usize;
                if self.by_pcs.len() <= key {
                    self.by_pcs.resize(key + 1, None);
                }
                let recs = &mut self.recs;
                let idx = *self.by_pcs[key].get_or_insert_with(|| {
                    recs.push((stack, 0, 0));
                    recs.len() - 1
                });
                let r = &mut recs[idx];
                r.0 = stack;
                r.1 += 1;
                r.2 += overlap;
            }
            return;
        }
        let w = Wait {
            g: id,
            start,
            end: time,
            stack,
        };
        match self.waits.last_mut() {
            Some(c) if c.len() < c.capacity() => c.push(w),
            _ => {
                let mut c = Vec::with_capacity(WAIT_CHUNK);
                c.push(w);
                self.waits.push(c);
            }
        }
    }

    /// The stack of `ev`, interned.
    fn intern(&mut self, ev: &Event) -> u32 {
        let Some((table, id)) = ev.stack_ref() else {
            if let Some(i) = self.no_stack {
                return i;
            }
            let i = self.intern_frames(Vec::new());
            self.no_stack = Some(i);
            return i;
        };
        if !self.table.as_ref().is_some_and(|t| Arc::ptr_eq(t, table)) {
            self.table = Some(table.clone());
            self.cache.clear();
        }
        if let Some(&i) = self.cache.get(id) {
            return i;
        }
        let frames: Vec<OwnedFrame> = ev
            .stack()
            .map(|st| {
                st.frames()
                    .take(MAX_STACK)
                    .map(|f| OwnedFrame {
                        pc: f.pc,
                        func: f.func.to_string(),
                        file: f.file.to_string(),
                        line: f.line,
                    })
                    .collect()
            })
            .unwrap_or_default();
        let i = self.intern_frames(frames);
        self.cache.insert(id, i);
        i
    }

    fn intern_frames(&mut self, frames: Vec<OwnedFrame>) -> u32 {
        if let Some(&i) = self.by_frames.get(&frames) {
            return i;
        }
        // Stacks are told apart by their PCs, as Go's tool does with a zero-padded array:
        // trailing zero PCs do not count (a one-frame stack at PC 0 is no stack).
        let mut pcs: Vec<u64> = frames.iter().map(|f| f.pc).collect();
        while pcs.last() == Some(&0) {
            pcs.pop();
        }
        let n = self.pcs.len() as u32;
        let pcs = *self.pcs.entry(pcs).or_insert(n);
        let i = self.stacks.len() as u32;
        self.by_frames.insert(frames.clone(), i);
        self.stacks.push(Interned { frames, pcs });
        i
    }

    /// The profile: one record per distinct stack, in the order stacks were first charged;
    /// `None` when an eager profiler's assumption failed (see the type's doc).
    pub fn finish(self) -> Option<Vec<BlockingRecord>> {
        let trace_end = self.last_time;
        if self.eager && (self.failed || self.max_end > trace_end) {
            return None;
        }
        let mut by_pcs: Vec<Option<usize>> = vec![None; self.pcs.len()];
        // Per record: its latest stack (which names the frames, as Go's tool), count, delay.
        let mut recs: Vec<(u32, u64, i64)> = self.recs;
        for w in self.waits.iter().flatten() {
            let Some(life) = self.gs.get(w.g).and_then(|g| g.life.as_ref()) else {
                continue;
            };
            let end = if life.end == 0 { trace_end } else { life.end };
            let (s, e) = (w.start, w.end);
            if end < s || e < life.start {
                continue;
            }
            let overlap = end.min(e) - life.start.max(s);
            if overlap <= 0 {
                continue;
            }
            let key = self.stacks[w.stack as usize].pcs as usize;
            let idx = *by_pcs[key].get_or_insert_with(|| {
                recs.push((w.stack, 0, 0));
                recs.len() - 1
            });
            let r = &mut recs[idx];
            r.0 = w.stack;
            r.1 += 1;
            r.2 += overlap;
        }
        let mut stacks: Vec<Option<Vec<OwnedFrame>>> =
            self.stacks.into_iter().map(|s| Some(s.frames)).collect();
        // A stack may name several records (once charged under each): clone all but the
        // last use.
        let mut uses = vec![0u32; stacks.len()];
        for r in &recs {
            uses[r.0 as usize] += 1;
        }
        let out = recs
            .into_iter()
            .map(|(stack, count, delay_ns)| {
                let i = stack as usize;
                uses[i] -= 1;
                let frames = if uses[i] == 0 {
                    stacks[i].take().unwrap_or_default()
                } else {
                    stacks[i].clone().unwrap_or_default()
                };
                BlockingRecord {
                    stack: frames,
                    count,
                    delay_ns,
                }
            })
            .collect();
        Some(out)
    }
}

/// The blocking profile of `kind` over the whole trace, one record per distinct stack (in
/// the order stacks were first charged). [`BlockingProfiler`] computes the same from a
/// stream.
pub fn blocking_profile(events: &[Event], kind: BlockingKind) -> Vec<BlockingRecord> {
    let mut p = BlockingProfiler::new(kind);
    for ev in events {
        p.push(ev);
    }
    if let Some(recs) = p.finish() {
        return recs;
    }
    let mut p = BlockingProfiler::exact(kind);
    for ev in events {
        p.push(ev);
    }
    p.finish().unwrap_or_default()
}
