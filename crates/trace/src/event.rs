//! Events and what they mean: the typed view of one ordered trace event.

use std::borrow::Cow;
use std::sync::Arc;

use crate::spec::*;
use crate::wire::Table;

/// A goroutine ID; [`NO_GOROUTINE`] for none.
pub type GoId = i64;
/// A P (proc) ID; [`NO_PROC`] for none.
pub type ProcId = i64;
/// An M (OS thread) ID; [`NO_THREAD`] for none.
pub type ThreadId = i64;
/// A user task ID ([`NO_TASK`]: none; 0 is the background task).
pub type TaskId = u64;

/// No goroutine.
pub const NO_GOROUTINE: GoId = -1;
/// No proc.
pub const NO_PROC: ProcId = -1;
/// No thread.
pub const NO_THREAD: ThreadId = -1;
/// No task.
pub const NO_TASK: TaskId = u64::MAX;

/// The scheduling context an event happened in: thread, proc, goroutine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ctx {
    pub g: GoId,
    pub p: ProcId,
    pub m: ThreadId,
}

impl Ctx {
    pub(crate) const NONE: Ctx = Ctx {
        g: NO_GOROUTINE,
        p: NO_PROC,
        m: NO_THREAD,
    };
}

/// What an event is about (Go's `trace.EventKind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Start (Go 1.25+) or end (older tools) of a generation: a point where the reader
    /// knows the whole state.
    Sync,
    /// A sample of a runtime metric: [`Event::metric`].
    Metric,
    /// A goroutine got a label (the GC marks its workers): [`Event::label`].
    Label,
    /// A CPU profile sample with its stack.
    StackSample,
    /// A range (STW, GC mark, sweep, mark assist) begins: [`Event::range`].
    RangeBegin,
    /// A range already active when the generation began.
    RangeActive,
    /// A range ends.
    RangeEnd,
    /// `trace.NewTask`: [`Event::task`].
    TaskBegin,
    /// A task's `End`.
    TaskEnd,
    /// A user region begins: [`Event::region`].
    RegionBegin,
    /// A user region ends.
    RegionEnd,
    /// `trace.Log`: [`Event::log`].
    Log,
    /// A goroutine or proc changed state: [`Event::transition`].
    StateTransition,
    /// An experimental event (`GOEXPERIMENT=traceallocfree`): [`Event::experimental`].
    Experimental,
}

impl Kind {
    /// The name Go's tools print.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Sync => "Sync",
            Kind::Metric => "Metric",
            Kind::Label => "Label",
            Kind::StackSample => "StackSample",
            Kind::RangeBegin => "RangeBegin",
            Kind::RangeActive => "RangeActive",
            Kind::RangeEnd => "RangeEnd",
            Kind::TaskBegin => "TaskBegin",
            Kind::TaskEnd => "TaskEnd",
            Kind::RegionBegin => "RegionBegin",
            Kind::RegionEnd => "RegionEnd",
            Kind::Log => "Log",
            Kind::StateTransition => "StateTransition",
            Kind::Experimental => "Experimental",
        }
    }

    pub(crate) fn of(t: EvType) -> Kind {
        match t {
            EV_SYNC_EVENT => Kind::Sync,
            EV_CPU_SAMPLE => Kind::StackSample,
            EV_PROCS_CHANGE | EV_HEAP_ALLOC | EV_HEAP_GOAL => Kind::Metric,
            EV_STW_BEGIN | EV_GC_BEGIN | EV_GC_SWEEP_BEGIN | EV_GC_MARK_ASSIST_BEGIN => {
                Kind::RangeBegin
            }
            EV_GC_ACTIVE | EV_GC_SWEEP_ACTIVE | EV_GC_MARK_ASSIST_ACTIVE => Kind::RangeActive,
            EV_STW_END | EV_GC_END | EV_GC_SWEEP_END | EV_GC_MARK_ASSIST_END => Kind::RangeEnd,
            EV_GO_LABEL => Kind::Label,
            EV_USER_TASK_BEGIN => Kind::TaskBegin,
            EV_USER_TASK_END => Kind::TaskEnd,
            EV_USER_REGION_BEGIN => Kind::RegionBegin,
            EV_USER_REGION_END => Kind::RegionEnd,
            EV_USER_LOG => Kind::Log,
            EV_SPAN..=EV_GOROUTINE_STACK_FREE => Kind::Experimental,
            _ => Kind::StateTransition,
        }
    }
}

/// One event of the ordered stream. Cheap to clone (its generation's tables are shared).
#[derive(Debug, Clone)]
pub struct Event {
    pub(crate) typ: EvType,
    pub(crate) time: i64,
    pub(crate) ctx: Ctx,
    pub(crate) args: [u64; MAX_ARGS],
    pub(crate) table: Option<Arc<Table>>,
    /// A task's type name carried to its end event (it may be in another generation).
    pub(crate) extra: Option<Box<str>>,
}

/// A stack: frames leaf first, resolved through the generation's tables.
#[derive(Debug, Clone, Copy)]
pub struct Stack<'a> {
    table: &'a Table,
    pcs: &'a [u64],
}

/// One frame of a [`Stack`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// Program counter.
    pub pc: u64,
    /// Function name.
    pub func: &'a str,
    /// Source file.
    pub file: &'a str,
    /// Line number.
    pub line: u64,
}

impl<'a> Stack<'a> {
    /// The frames, leaf first.
    pub fn frames(&self) -> impl Iterator<Item = Frame<'a>> + 'a {
        let table = self.table;
        self.pcs.iter().map(move |&pc| {
            let f = table.pcs.get(&pc);
            Frame {
                pc,
                func: f.and_then(|f| table.string(f.func)).unwrap_or(""),
                file: f.and_then(|f| table.string(f.file)).unwrap_or(""),
                line: f.map_or(0, |f| f.line),
            }
        })
    }

    /// Number of frames.
    pub fn len(&self) -> usize {
        self.pcs.len()
    }

    /// Whether there are no frames.
    pub fn is_empty(&self) -> bool {
        self.pcs.is_empty()
    }
}

/// A sample of a runtime metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metric {
    /// The `runtime/metrics` name: [`GOMAXPROCS`], [`HEAP_LIVE`] or [`HEAP_GOAL`].
    pub name: &'static str,
    /// The value.
    pub value: u64,
}

/// GOMAXPROCS changed.
pub const GOMAXPROCS: &str = "/sched/gomaxprocs:threads";
/// Live heap bytes (`gcController.heapLive`).
pub const HEAP_LIVE: &str = "/memory/classes/heap/objects:bytes";
/// The GC's heap goal.
pub const HEAP_GOAL: &str = "/gc/heap/goal:bytes";

/// What a resource ID names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Resource {
    /// Nothing (the GC mark phase is global).
    None,
    /// A goroutine.
    Goroutine(GoId),
    /// A proc.
    Proc(ProcId),
    /// A thread.
    Thread(ThreadId),
}

impl std::fmt::Display for Resource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Resource::None => f.write_str("None"),
            Resource::Goroutine(id) => write!(f, "Goroutine({id})"),
            Resource::Proc(id) => write!(f, "Proc({id})"),
            Resource::Thread(id) => write!(f, "Thread({id})"),
        }
    }
}

/// Which range an event begins, continues or ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeKind<'a> {
    /// A stop-the-world pause, with its reason (`GC mark termination`, `start trace`, …).
    StopTheWorld(&'a str),
    /// The GC's concurrent mark phase (`GCBegin` … `GCEnd`).
    GcMark,
    /// Incremental sweeping on a proc.
    GcSweep,
    /// A goroutine assisting the GC's mark phase.
    GcMarkAssist,
}

/// A range event's details.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range<'a> {
    /// Which range.
    pub kind: RangeKind<'a>,
    /// What it runs on.
    pub scope: Resource,
}

impl Range<'_> {
    /// The name Go's tools give it.
    pub fn name(&self) -> Cow<'static, str> {
        match self.kind {
            RangeKind::StopTheWorld(r) => Cow::Owned(format!("stop-the-world ({r})")),
            RangeKind::GcMark => Cow::Borrowed("GC concurrent mark phase"),
            RangeKind::GcSweep => Cow::Borrowed("GC incremental sweep"),
            RangeKind::GcMarkAssist => Cow::Borrowed("GC mark assist"),
        }
    }
}

/// What a sweep range's end reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SweepResult {
    /// Bytes swept.
    pub swept: u64,
    /// Bytes reclaimed.
    pub reclaimed: u64,
}

/// A user task's begin or end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Task<'a> {
    /// The task.
    pub id: TaskId,
    /// Its parent ([`NO_TASK`] if none or unknown).
    pub parent: TaskId,
    /// Its type (the `NewTask` name; empty at an end whose begin was not seen).
    pub name: &'a str,
}

/// A user region's begin or end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region<'a> {
    /// The task it belongs to (0: background).
    pub task: TaskId,
    /// Its type (the region name).
    pub name: &'a str,
}

/// A `trace.Log` message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Log<'a> {
    /// The task it belongs to.
    pub task: TaskId,
    /// Its category (key).
    pub category: &'a str,
    /// The message.
    pub message: &'a str,
}

/// A goroutine's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GoState {
    /// Not known (first generation, before its status was seen).
    Undetermined,
    /// Does not exist (before creation, after exit).
    NotExist,
    /// Runnable, waiting for a P.
    Runnable,
    /// Running.
    Running,
    /// Blocked.
    Waiting,
    /// In a system call.
    Syscall,
}

/// A proc's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProcState {
    /// Not known.
    Undetermined,
    /// Does not exist.
    NotExist,
    /// Running (has an M).
    Running,
    /// Idle.
    Idle,
}

impl GoState {
    pub(crate) fn from_u8(v: u64) -> GoState {
        match v {
            1 => GoState::NotExist,
            2 => GoState::Runnable,
            3 => GoState::Running,
            4 => GoState::Waiting,
            5 => GoState::Syscall,
            _ => GoState::Undetermined,
        }
    }

    /// The name Go's tools print.
    pub fn as_str(self) -> &'static str {
        match self {
            GoState::Undetermined => "Undetermined",
            GoState::NotExist => "NotExist",
            GoState::Runnable => "Runnable",
            GoState::Running => "Running",
            GoState::Waiting => "Waiting",
            GoState::Syscall => "Syscall",
        }
    }

    /// From a wire goroutine status (1 runnable, 2 running, 3 syscall, 4 waiting).
    pub(crate) fn from_status(s: u64) -> GoState {
        match s {
            1 => GoState::Runnable,
            2 => GoState::Running,
            3 => GoState::Syscall,
            4 => GoState::Waiting,
            _ => GoState::Undetermined,
        }
    }
}

impl ProcState {
    pub(crate) fn from_u8(v: u64) -> ProcState {
        match v {
            1 => ProcState::NotExist,
            2 => ProcState::Running,
            3 => ProcState::Idle,
            _ => ProcState::Undetermined,
        }
    }

    pub(crate) fn to_u8(self) -> u64 {
        match self {
            ProcState::Undetermined => 0,
            ProcState::NotExist => 1,
            ProcState::Running => 2,
            ProcState::Idle => 3,
        }
    }

    /// From a wire proc status (1 running, 2 idle, 3 syscall, 4 syscall-abandoned).
    pub(crate) fn from_status(s: u64) -> ProcState {
        match s {
            1 | 3 => ProcState::Running,
            2 | 4 => ProcState::Idle,
            _ => ProcState::Undetermined,
        }
    }

    /// The name Go's tools print.
    pub fn as_str(self) -> &'static str {
        match self {
            ProcState::Undetermined => "Undetermined",
            ProcState::NotExist => "NotExist",
            ProcState::Running => "Running",
            ProcState::Idle => "Idle",
        }
    }
}

impl GoState {
    pub(crate) fn to_u8(self) -> u64 {
        match self {
            GoState::Undetermined => 0,
            GoState::NotExist => 1,
            GoState::Runnable => 2,
            GoState::Running => 3,
            GoState::Waiting => 4,
            GoState::Syscall => 5,
        }
    }
}

/// Which states changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// A goroutine went from the first state to the second.
    Goroutine(GoId, GoState, GoState),
    /// A proc went from the first state to the second.
    Proc(ProcId, ProcState, ProcState),
}

/// A state transition's details.
#[derive(Debug, Clone, Copy)]
pub struct Transition<'a> {
    /// What changed.
    pub change: Change,
    /// Why (for goroutines that stop or block: `chan receive`, `sync`, `sleep`, …).
    pub reason: &'a str,
    /// The stack of the goroutine whose state changed (the new goroutine's start for a
    /// creation; its blocking point for a block), if the trace has one.
    pub stack: Option<Stack<'a>>,
}

impl Transition<'_> {
    /// The resource whose state changed.
    pub fn resource(&self) -> Resource {
        match self.change {
            Change::Goroutine(g, ..) => Resource::Goroutine(g),
            Change::Proc(p, ..) => Resource::Proc(p),
        }
    }
}

/// A clock snapshot (Go 1.25+ traces): one instant on the trace, monotonic and wall clocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockSnapshot {
    /// Trace time (ns).
    pub trace: i64,
    /// Monotonic clock (ns).
    pub mono: u64,
    /// Wall clock: seconds since the Unix epoch.
    pub wall_sec: i64,
    /// Wall clock: nanoseconds within the second (may exceed 1e9 in a malformed trace).
    pub wall_nsec: i64,
}

/// A sync event's details.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sync {
    /// 1 for the first sync, then counting up.
    pub n: u64,
    /// The generation's clock snapshot, when the sync starts a Go 1.25+ generation.
    pub clock: Option<ClockSnapshot>,
}

/// An experimental event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Experimental {
    /// The event's name (`SpanAlloc`, …).
    pub name: &'static str,
    /// Its argument names and values.
    pub args: Vec<(&'static str, u64)>,
}

impl Event {
    /// Nanoseconds on the trace's clock (Go's `trace.Time`), strictly increasing.
    pub fn time(&self) -> i64 {
        self.time
    }

    /// The goroutine the event happened on, or [`NO_GOROUTINE`].
    pub fn goroutine(&self) -> GoId {
        self.ctx.g
    }

    /// The proc, or [`NO_PROC`].
    pub fn proc(&self) -> ProcId {
        self.ctx.p
    }

    /// The thread, or [`NO_THREAD`].
    pub fn thread(&self) -> ThreadId {
        self.ctx.m
    }

    /// What kind of event this is.
    pub fn kind(&self) -> Kind {
        Kind::of(self.typ)
    }

    /// The wire event's name (`GoBlock`, `GCSweepEnd`, `STWBegin`, …): finer than [`kind`](Self::kind),
    /// e.g. to tell syscalls (`GoSyscallBegin`) from blocking (`GoBlock`).
    pub fn wire_name(&self) -> &'static str {
        name(self.typ)
    }

    fn table(&self) -> Option<&Table> {
        self.table.as_deref()
    }

    fn string(&self, id: u64) -> &str {
        self.table().and_then(|t| t.string(id)).unwrap_or("")
    }

    fn stack_of(&self, id: u64) -> Option<Stack<'_>> {
        let table = self.table()?;
        Some(Stack {
            table,
            pcs: table.stack(id).unwrap_or(&[]),
        })
    }

    /// The id of the event's own stack and the table it resolves in: `Some` exactly when
    /// [`stack`](Self::stack) is (a key to cache resolved stacks by).
    pub(crate) fn stack_ref(&self) -> Option<(&Arc<Table>, u64)> {
        if self.typ == EV_SYNC_EVENT {
            return None;
        }
        let id = if self.typ == EV_CPU_SAMPLE {
            self.args[0]
        } else {
            let sp = spec(self.typ)?;
            let &i = sp.stack_ids.first()?;
            let id = self.args[i - 1];
            if id == 0 {
                return None;
            }
            id
        };
        Some((self.table.as_ref()?, id))
    }

    /// The event's own stack (where it happened), if it has one.
    pub fn stack(&self) -> Option<Stack<'_>> {
        if self.typ == EV_SYNC_EVENT {
            return None;
        }
        if self.typ == EV_CPU_SAMPLE {
            return self.stack_of(self.args[0]);
        }
        let sp = spec(self.typ)?;
        let &i = sp.stack_ids.first()?;
        let id = self.args[i - 1];
        if id == 0 { None } else { self.stack_of(id) }
    }

    /// For [`Kind::Metric`].
    pub fn metric(&self) -> Option<Metric> {
        let name = match self.typ {
            EV_PROCS_CHANGE => GOMAXPROCS,
            EV_HEAP_ALLOC => HEAP_LIVE,
            EV_HEAP_GOAL => HEAP_GOAL,
            _ => return None,
        };
        Some(Metric {
            name,
            value: self.args[0],
        })
    }

    /// For [`Kind::Label`]: the label, on [`goroutine`](Self::goroutine).
    pub fn label(&self) -> Option<&str> {
        (self.typ == EV_GO_LABEL).then(|| self.string(self.args[0]))
    }

    /// For the range kinds.
    pub fn range(&self) -> Option<Range<'_>> {
        let (kind, scope) = match self.typ {
            EV_STW_BEGIN | EV_STW_END => (
                RangeKind::StopTheWorld(self.string(self.args[0])),
                Resource::Goroutine(self.ctx.g),
            ),
            EV_GC_BEGIN | EV_GC_ACTIVE | EV_GC_END => (RangeKind::GcMark, Resource::None),
            EV_GC_SWEEP_ACTIVE => (RangeKind::GcSweep, Resource::Proc(self.args[0] as i64)),
            EV_GC_SWEEP_BEGIN | EV_GC_SWEEP_END => (RangeKind::GcSweep, Resource::Proc(self.ctx.p)),
            EV_GC_MARK_ASSIST_ACTIVE => (
                RangeKind::GcMarkAssist,
                Resource::Goroutine(self.args[0] as i64),
            ),
            EV_GC_MARK_ASSIST_BEGIN | EV_GC_MARK_ASSIST_END => {
                (RangeKind::GcMarkAssist, Resource::Goroutine(self.ctx.g))
            }
            _ => return None,
        };
        Some(Range { kind, scope })
    }

    /// For the end of a sweep range: what it swept.
    pub fn sweep_result(&self) -> Option<SweepResult> {
        (self.typ == EV_GC_SWEEP_END).then(|| SweepResult {
            swept: self.args[0],
            reclaimed: self.args[1],
        })
    }

    /// For [`Kind::TaskBegin`] and [`Kind::TaskEnd`].
    pub fn task(&self) -> Option<Task<'_>> {
        match self.typ {
            EV_USER_TASK_BEGIN => Some(Task {
                id: self.args[0],
                parent: self.args[1],
                name: self.string(self.args[2]),
            }),
            EV_USER_TASK_END => Some(Task {
                id: self.args[0],
                parent: self.args[2],
                name: self.extra.as_deref().unwrap_or(""),
            }),
            _ => None,
        }
    }

    /// For [`Kind::RegionBegin`] and [`Kind::RegionEnd`].
    pub fn region(&self) -> Option<Region<'_>> {
        matches!(self.typ, EV_USER_REGION_BEGIN | EV_USER_REGION_END).then(|| Region {
            task: self.args[0],
            name: self.string(self.args[1]),
        })
    }

    /// For [`Kind::Log`].
    pub fn log(&self) -> Option<Log<'_>> {
        (self.typ == EV_USER_LOG).then(|| Log {
            task: self.args[0],
            category: self.string(self.args[1]),
            message: self.string(self.args[2]),
        })
    }

    /// For [`Kind::StateTransition`].
    pub fn transition(&self) -> Option<Transition<'_>> {
        Some(Transition {
            change: self.change()?,
            reason: self.reason(),
            stack: self.transition_stack(),
        })
    }

    /// What a state transition changed (the `change` of [`transition`](Self::transition),
    /// without resolving its reason and stack).
    #[inline]
    pub(crate) fn change(&self) -> Option<Change> {
        use GoState as G;
        let a = &self.args;
        let g = |id: i64, from, to| Change::Goroutine(id, from, to);
        Some(match self.typ {
            EV_PROC_START => Change::Proc(a[0] as i64, ProcState::Idle, ProcState::Running),
            EV_PROC_STOP => Change::Proc(self.ctx.p, ProcState::Running, ProcState::Idle),
            EV_PROC_STEAL => {
                // a[3]: the proc's wire status before the steal (set when ordering).
                let from = if a[3] == 4 {
                    ProcState::Idle
                } else {
                    ProcState::Running
                };
                Change::Proc(a[0] as i64, from, ProcState::Idle)
            }
            // a[2]: the old state (set when ordering).
            EV_PROC_STATUS => Change::Proc(
                a[0] as i64,
                ProcState::from_u8(a[2]),
                ProcState::from_status(a[1]),
            ),
            EV_GO_CREATE => g(a[0] as i64, G::NotExist, G::Runnable),
            EV_GO_CREATE_BLOCKED => g(a[0] as i64, G::NotExist, G::Waiting),
            EV_GO_CREATE_SYSCALL => g(a[0] as i64, G::NotExist, G::Syscall),
            EV_GO_START => g(a[0] as i64, G::Runnable, G::Running),
            EV_GO_DESTROY => g(self.ctx.g, G::Running, G::NotExist),
            EV_GO_DESTROY_SYSCALL => g(self.ctx.g, G::Syscall, G::NotExist),
            EV_GO_STOP => g(self.ctx.g, G::Running, G::Runnable),
            EV_GO_BLOCK => g(self.ctx.g, G::Running, G::Waiting),
            EV_GO_UNBLOCK | EV_GO_SWITCH | EV_GO_SWITCH_DESTROY => {
                g(a[0] as i64, G::Waiting, G::Runnable)
            }
            EV_GO_SYSCALL_BEGIN => g(self.ctx.g, G::Running, G::Syscall),
            EV_GO_SYSCALL_END => g(self.ctx.g, G::Syscall, G::Running),
            EV_GO_SYSCALL_END_BLOCKED => g(self.ctx.g, G::Syscall, G::Runnable),
            EV_GO_STATUS | EV_GO_STATUS_STACK => {
                // a[2]: old state << 32 | wire status (set when ordering).
                let (from, to) = (a[2] >> 32, a[2] & 0xffff_ffff);
                g(a[0] as i64, G::from_u8(from), G::from_status(to))
            }
            _ => return None,
        })
    }

    /// A transition's reason: for goroutines that stop or block, else "".
    #[inline]
    pub(crate) fn reason(&self) -> &str {
        match self.typ {
            EV_GO_STOP | EV_GO_BLOCK => self.string(self.args[0]),
            _ => "",
        }
    }

    /// A transition's stack (see [`Transition::stack`]).
    fn transition_stack(&self) -> Option<Stack<'_>> {
        match self.typ {
            EV_GO_CREATE | EV_GO_CREATE_BLOCKED => self.stack_of(self.args[1]),
            EV_GO_STOP | EV_GO_BLOCK | EV_GO_SYSCALL_BEGIN | EV_GO_STATUS | EV_GO_STATUS_STACK => {
                self.stack()
            }
            _ => None,
        }
    }

    /// For [`Kind::Sync`].
    pub fn sync(&self) -> Option<Sync> {
        if self.typ != EV_SYNC_EVENT {
            return None;
        }
        let clock = self.table().and_then(|t| {
            t.clock.map(|c| ClockSnapshot {
                trace: t.mul(c.time),
                mono: c.mono,
                wall_sec: c.sec as i64,
                wall_nsec: c.nsec as i64,
            })
        });
        Some(Sync {
            n: self.args[0],
            clock,
        })
    }

    /// For [`Kind::Experimental`].
    pub fn experimental(&self) -> Option<Experimental> {
        if !(EV_SPAN..=EV_GOROUTINE_STACK_FREE).contains(&self.typ) {
            return None;
        }
        let sp = spec(self.typ)?;
        Some(Experimental {
            name: sp.name,
            args: sp
                .args
                .iter()
                .zip(self.args)
                .map(|(&n, v)| (n, v))
                .collect(),
        })
    }
}
