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

use crate::event::{Change, Event, GoId, GoState, Kind};

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

/// The blocking profile of `kind` over the whole trace, one record per distinct stack (in
/// the order stacks were first charged).
pub fn blocking_profile(events: &[Event], kind: BlockingKind) -> Vec<BlockingRecord> {
    // Each goroutine's life: from its first run to its exit (or the end of the trace).
    let mut lives: HashMap<GoId, Life> = HashMap::new();
    for ev in events {
        let Some(t) = ev.transition() else { continue };
        let Change::Goroutine(id, old, new) = t.change else {
            continue;
        };
        if old == new {
            continue;
        }
        if matches!(old, GoState::Undetermined | GoState::NotExist) {
            lives.insert(id, Life::default());
        }
        let Some(l) = lives.get_mut(&id) else {
            continue;
        };
        match new {
            GoState::Running if l.start == 0 => l.start = ev.time(),
            GoState::Waiting if t.reason == "forever" => l.end = ev.time(),
            GoState::NotExist => l.end = ev.time(),
            _ => {}
        }
    }
    let trace_end = events.last().map_or(0, Event::time);

    let state = kind.state();
    let mut tracking: HashMap<GoId, usize> = HashMap::new();
    let mut by_pcs: HashMap<Vec<u64>, usize> = HashMap::new();
    let mut out: Vec<BlockingRecord> = Vec::new();
    for (i, ev) in events.iter().enumerate() {
        if ev.kind() != Kind::StateTransition {
            continue;
        }
        let Some(t) = ev.transition() else { continue };
        let Change::Goroutine(id, _, new) = t.change else {
            continue;
        };
        let Some(&start) = tracking.get(&id) else {
            if new == state && kind.tracks(t.reason) {
                tracking.insert(id, i);
            }
            continue;
        };
        if new == state {
            continue;
        }
        tracking.remove(&id);
        let start_ev = &events[start];
        let Some(life) = lives.get(&id) else { continue };
        let end = if life.end == 0 { trace_end } else { life.end };
        let (s, e) = (start_ev.time(), ev.time());
        if end < s || e < life.start {
            continue;
        }
        let overlap = end.min(e) - life.start.max(s);
        if overlap <= 0 {
            continue;
        }
        let frames: Vec<OwnedFrame> = start_ev
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
        // Stacks are told apart by their PCs, as Go's tool does with a zero-padded array:
        // trailing zero PCs do not count (a one-frame stack at PC 0 is no stack).
        let mut pcs: Vec<u64> = frames.iter().map(|f| f.pc).collect();
        while pcs.last() == Some(&0) {
            pcs.pop();
        }
        let idx = *by_pcs.entry(pcs).or_insert_with(|| {
            out.push(BlockingRecord {
                stack: Vec::new(),
                count: 0,
                delay_ns: 0,
            });
            out.len() - 1
        });
        let rec = &mut out[idx];
        // The latest stack with these PCs names the frames (as Go's tool).
        rec.stack = frames;
        rec.count += 1;
        rec.delay_ns += overlap;
    }
    out
}
