//! # gocost-trace
//!
//! Go execution traces — what `runtime/trace` and `/debug/pprof/trace` write — read into a
//! stream of typed events: goroutine and proc state transitions (creation, start, block with
//! its reason, syscalls, exit), GC mark phases, stop-the-world pauses with their reason,
//! mark assists, sweeps, heap and heap-goal samples, GOMAXPROCS, user tasks, regions and
//! logs, and CPU samples, each with its stack resolved to frames.
//!
//! It reads the generational format Go 1.22 introduced, as written by Go 1.22 through 1.27
//! ([`Format`] lists the revisions and what changed); older traces are refused with an
//! error naming their Go version. Events come out in exactly the order, with exactly the
//! timestamps, that Go's own `internal/trace` reader gives (checked against `go tool trace
//! -d=parsed` of real traces of every release), and [`text`] prints them as that tool does.
//! The format and the ordering rules are described in `docs/format/trace.md`.
//!
//! It is synchronous and does no I/O: give it the trace's bytes. Malformed input is an
//! [`Error`] naming the field and byte offset, never a panic; sizes are capped
//! ([`Limits`]). Analyses built on the stream: [`blocking_profile`] (what `go tool trace
//! -pprof=net|sync|syscall|sched` computes; [`BlockingProfiler`] as the events stream by) and [`goroutine_summaries`] (its goroutine
//! pages: execution, scheduler wait, blocking by reason, syscalls, GC ranges), [`pauses`]
//! (every stop-the-world pause with its reason) and [`gc_cycles`] (per GC cycle: mark phase,
//! pauses, assist and sweep time), [`mutator_utilization`] and [`MmuCurve`] (the MMU view), [`sched_waits`] and
//! [`sched_latency_by_group`] (scheduler latency, one wait at a time), and [`overview`] (a
//! trace at a glance: pauses, scheduler latency, assist fraction, MMU at fixed windows).
//!
//! ```
//! // The smallest Go 1.22 trace: a header, one frequency batch, one event batch with one
//! // ProcStatus event.
//! let mut t = b"go 1.22 trace\0\0\0".to_vec();
//! t.extend([1, 1, 0, 0, 2, 8, 1]); // EventBatch gen=1 M=0 time=0 size=2: Frequency 1/ns
//! t.extend([1, 1, 1, 5, 4, 13, 0, 3, 2]); // EventBatch gen=1 M=1 time=5: ProcStatus P=3 idle
//! let events: Vec<_> = gocost_trace::Reader::new(&t)?.collect::<Result<_, _>>()?;
//! assert_eq!(events[0].kind(), gocost_trace::Kind::Sync); // a generation begins
//! let st = events[1].transition().unwrap();
//! assert_eq!(st.change, gocost_trace::Change::Proc(3, gocost_trace::ProcState::Undetermined, gocost_trace::ProcState::Idle));
//! assert_eq!(events.last().unwrap().kind(), gocost_trace::Kind::Sync);
//! # Ok::<(), gocost_trace::Error>(())
//! ```
//!
//! The iterator clones each event out; [`Reader::next_event`] lends it instead (no copy, no
//! reference count per event): the way to stream a big trace through an analysis.

mod blocking;
mod error;
mod event;
mod gc;
mod ids;
mod mmu;
mod order;
mod overview;
mod reader;
mod spec;
mod summary;
pub mod text;
mod wire;

pub use blocking::{BlockingKind, BlockingProfiler, BlockingRecord, OwnedFrame, blocking_profile};
pub use error::{Error, ErrorKind};
pub use event::{
    Change, ClockSnapshot, Event, Experimental, Frame, GOMAXPROCS, GoId, GoState, HEAP_GOAL,
    HEAP_LIVE, Kind, Log, Metric, NO_GOROUTINE, NO_PROC, NO_TASK, NO_THREAD, ProcId, ProcState,
    Range, RangeKind, Region, Resource, Stack, SweepResult, Sync, Task, TaskId, ThreadId,
    Transition,
};
pub use gc::{GcCycle, Pause, gc_cycles, pauses};
pub use mmu::{MmuCurve, MutatorUtil, UtilFlags, mutator_utilization};
pub use overview::{
    Durations, MMU_WINDOWS_NS, Overview, SchedGroup, SchedWait, overview, sched_latency_by_group,
    sched_waits,
};
pub use reader::{Limits, Options, Reader, SyncPlacement};
pub use spec::Format;
pub use summary::{ExecStats, GoroutineSummary, goroutine_summaries};
pub use wire::Table;

/// Reads a whole trace (default [`Options`]).
pub fn parse(trace: &[u8]) -> Result<Vec<Event>, Error> {
    Reader::new(trace)?.collect()
}
