//! The wire event types and their argument layouts, per trace format version.
//!
//! Every difference between format versions lives in [`Format`]: which event types exist
//! (`events`), how a generation's clock is announced, and how generations are delimited.

/// A wire event type (the first byte of an event).
pub(crate) type EvType = u64;

pub(crate) const EV_EVENT_BATCH: EvType = 1;
pub(crate) const EV_STACKS: EvType = 2;
pub(crate) const EV_STACK: EvType = 3;
pub(crate) const EV_STRINGS: EvType = 4;
pub(crate) const EV_STRING: EvType = 5;
pub(crate) const EV_CPU_SAMPLES: EvType = 6;
pub(crate) const EV_CPU_SAMPLE: EvType = 7;
pub(crate) const EV_FREQUENCY: EvType = 8;
pub(crate) const EV_PROCS_CHANGE: EvType = 9;
pub(crate) const EV_PROC_START: EvType = 10;
pub(crate) const EV_PROC_STOP: EvType = 11;
pub(crate) const EV_PROC_STEAL: EvType = 12;
pub(crate) const EV_PROC_STATUS: EvType = 13;
pub(crate) const EV_GO_CREATE: EvType = 14;
pub(crate) const EV_GO_CREATE_SYSCALL: EvType = 15;
pub(crate) const EV_GO_START: EvType = 16;
pub(crate) const EV_GO_DESTROY: EvType = 17;
pub(crate) const EV_GO_DESTROY_SYSCALL: EvType = 18;
pub(crate) const EV_GO_STOP: EvType = 19;
pub(crate) const EV_GO_BLOCK: EvType = 20;
pub(crate) const EV_GO_UNBLOCK: EvType = 21;
pub(crate) const EV_GO_SYSCALL_BEGIN: EvType = 22;
pub(crate) const EV_GO_SYSCALL_END: EvType = 23;
pub(crate) const EV_GO_SYSCALL_END_BLOCKED: EvType = 24;
pub(crate) const EV_GO_STATUS: EvType = 25;
pub(crate) const EV_STW_BEGIN: EvType = 26;
pub(crate) const EV_STW_END: EvType = 27;
pub(crate) const EV_GC_ACTIVE: EvType = 28;
pub(crate) const EV_GC_BEGIN: EvType = 29;
pub(crate) const EV_GC_END: EvType = 30;
pub(crate) const EV_GC_SWEEP_ACTIVE: EvType = 31;
pub(crate) const EV_GC_SWEEP_BEGIN: EvType = 32;
pub(crate) const EV_GC_SWEEP_END: EvType = 33;
pub(crate) const EV_GC_MARK_ASSIST_ACTIVE: EvType = 34;
pub(crate) const EV_GC_MARK_ASSIST_BEGIN: EvType = 35;
pub(crate) const EV_GC_MARK_ASSIST_END: EvType = 36;
pub(crate) const EV_HEAP_ALLOC: EvType = 37;
pub(crate) const EV_HEAP_GOAL: EvType = 38;
pub(crate) const EV_GO_LABEL: EvType = 39;
pub(crate) const EV_USER_TASK_BEGIN: EvType = 40;
pub(crate) const EV_USER_TASK_END: EvType = 41;
pub(crate) const EV_USER_REGION_BEGIN: EvType = 42;
pub(crate) const EV_USER_REGION_END: EvType = 43;
pub(crate) const EV_USER_LOG: EvType = 44;
pub(crate) const EV_GO_SWITCH: EvType = 45;
pub(crate) const EV_GO_SWITCH_DESTROY: EvType = 46;
pub(crate) const EV_GO_CREATE_BLOCKED: EvType = 47;
pub(crate) const EV_GO_STATUS_STACK: EvType = 48;
pub(crate) const EV_EXPERIMENTAL_BATCH: EvType = 49;
pub(crate) const EV_SYNC: EvType = 50;
pub(crate) const EV_CLOCK_SNAPSHOT: EvType = 51;
pub(crate) const EV_END_OF_GENERATION: EvType = 52;
/// First experimental event type (`AllocFree`: spans, heap objects, goroutine stacks).
pub(crate) const EV_SPAN: EvType = 128;
pub(crate) const EV_GOROUTINE_STACK_FREE: EvType = 136;
/// Not a wire type: the reader's own synchronisation event between generations.
pub(crate) const EV_SYNC_EVENT: EvType = 255;

/// Most arguments a timed event has after its timestamp.
pub(crate) const MAX_ARGS: usize = 4;
/// Largest batch the runtime writes.
pub(crate) const MAX_BATCH_SIZE: u64 = 64 << 10;
/// Most frames in one stack.
pub(crate) const MAX_FRAMES_PER_STACK: u64 = 128;
/// Longest string (string table entry).
pub(crate) const MAX_STRING_SIZE: u64 = 1 << 10;

/// What one timed event type looks like on the wire.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Spec {
    pub name: &'static str,
    /// Argument names after the timestamp delta.
    pub args: &'static [&'static str],
    /// 1-based positions (counting the timestamp as 0) of stack ID arguments, the event's
    /// own stack first.
    pub stack_ids: &'static [usize],
    /// 1-based positions of string ID arguments.
    pub string_ids: &'static [usize],
    /// For `End`/`Active` events: the `Begin` event of their range.
    pub start: EvType,
}

const fn s(name: &'static str, args: &'static [&'static str]) -> Spec {
    Spec {
        name,
        args,
        stack_ids: &[],
        string_ids: &[],
        start: 0,
    }
}
const fn stk(
    name: &'static str,
    args: &'static [&'static str],
    stack_ids: &'static [usize],
) -> Spec {
    Spec {
        name,
        args,
        stack_ids,
        string_ids: &[],
        start: 0,
    }
}
const fn rng(name: &'static str, args: &'static [&'static str], start: EvType) -> Spec {
    Spec {
        name,
        args,
        stack_ids: &[],
        string_ids: &[],
        start,
    }
}

/// The timed event types (the ones that appear inside event batches), by type byte.
pub(crate) fn spec(t: EvType) -> Option<&'static Spec> {
    let i = t as usize;
    if (EV_PROCS_CHANGE as usize..=EV_GO_STATUS_STACK as usize).contains(&i) {
        return Some(&TIMED[i - EV_PROCS_CHANGE as usize]);
    }
    if (EV_SPAN..=EV_GOROUTINE_STACK_FREE).contains(&t) {
        return Some(&EXPERIMENTAL[i - EV_SPAN as usize]);
    }
    if t == EV_CPU_SAMPLE {
        return Some(&CPU_SAMPLE);
    }
    None
}

pub(crate) static CPU_SAMPLE: Spec = stk("CPUSample", &["m", "p", "g", "stack"], &[4]);

static TIMED: [Spec; (EV_GO_STATUS_STACK - EV_PROCS_CHANGE + 1) as usize] = [
    stk("ProcsChange", &["procs_value", "stack"], &[2]),
    s("ProcStart", &["p", "p_seq"]),
    s("ProcStop", &[]),
    s("ProcSteal", &["p", "p_seq", "m"]),
    s("ProcStatus", &["p", "pstatus"]),
    stk("GoCreate", &["new_g", "new_stack", "stack"], &[3, 2]),
    s("GoCreateSyscall", &["new_g"]),
    s("GoStart", &["g", "g_seq"]),
    s("GoDestroy", &[]),
    s("GoDestroySyscall", &[]),
    Spec {
        name: "GoStop",
        args: &["reason_string", "stack"],
        stack_ids: &[2],
        string_ids: &[1],
        start: 0,
    },
    Spec {
        name: "GoBlock",
        args: &["reason_string", "stack"],
        stack_ids: &[2],
        string_ids: &[1],
        start: 0,
    },
    stk("GoUnblock", &["g", "g_seq", "stack"], &[3]),
    stk("GoSyscallBegin", &["p_seq", "stack"], &[2]),
    rng("GoSyscallEnd", &[], EV_GO_SYSCALL_BEGIN),
    rng("GoSyscallEndBlocked", &[], EV_GO_SYSCALL_BEGIN),
    s("GoStatus", &["g", "m", "gstatus"]),
    Spec {
        name: "STWBegin",
        args: &["kind_string", "stack"],
        stack_ids: &[2],
        string_ids: &[1],
        start: 0,
    },
    rng("STWEnd", &[], EV_STW_BEGIN),
    rng("GCActive", &["gc_seq"], EV_GC_BEGIN),
    stk("GCBegin", &["gc_seq", "stack"], &[2]),
    rng("GCEnd", &["gc_seq"], EV_GC_BEGIN),
    rng("GCSweepActive", &["p"], EV_GC_SWEEP_BEGIN),
    stk("GCSweepBegin", &["stack"], &[1]),
    rng(
        "GCSweepEnd",
        &["swept_value", "reclaimed_value"],
        EV_GC_SWEEP_BEGIN,
    ),
    rng("GCMarkAssistActive", &["g"], EV_GC_MARK_ASSIST_BEGIN),
    stk("GCMarkAssistBegin", &["stack"], &[1]),
    rng("GCMarkAssistEnd", &[], EV_GC_MARK_ASSIST_BEGIN),
    s("HeapAlloc", &["heapalloc_value"]),
    s("HeapGoal", &["heapgoal_value"]),
    Spec {
        name: "GoLabel",
        args: &["label_string"],
        stack_ids: &[],
        string_ids: &[1],
        start: 0,
    },
    Spec {
        name: "UserTaskBegin",
        args: &["task", "parent_task", "name_string", "stack"],
        stack_ids: &[4],
        string_ids: &[3],
        start: 0,
    },
    Spec {
        name: "UserTaskEnd",
        args: &["task", "stack"],
        stack_ids: &[2],
        string_ids: &[],
        start: EV_USER_TASK_BEGIN,
    },
    Spec {
        name: "UserRegionBegin",
        args: &["task", "name_string", "stack"],
        stack_ids: &[3],
        string_ids: &[2],
        start: 0,
    },
    Spec {
        name: "UserRegionEnd",
        args: &["task", "name_string", "stack"],
        stack_ids: &[3],
        string_ids: &[2],
        start: EV_USER_REGION_BEGIN,
    },
    Spec {
        name: "UserLog",
        args: &["task", "key_string", "value_string", "stack"],
        stack_ids: &[4],
        string_ids: &[2, 3],
        start: 0,
    },
    s("GoSwitch", &["g", "g_seq"]),
    s("GoSwitchDestroy", &["g", "g_seq"]),
    stk("GoCreateBlocked", &["new_g", "new_stack", "stack"], &[3, 2]),
    stk("GoStatusStack", &["g", "m", "gstatus", "stack"], &[4]),
];

static EXPERIMENTAL: [Spec; (EV_GOROUTINE_STACK_FREE - EV_SPAN + 1) as usize] = [
    s("Span", &["id", "npages_value", "kindclass"]),
    s("SpanAlloc", &["id", "npages_value", "kindclass"]),
    s("SpanFree", &["id"]),
    s("HeapObject", &["id", "type"]),
    s("HeapObjectAlloc", &["id", "type"]),
    s("HeapObjectFree", &["id"]),
    s("GoroutineStack", &["id", "order"]),
    s("GoroutineStackAlloc", &["id", "order"]),
    s("GoroutineStackFree", &["id"]),
];

/// The trace format versions gocost reads: the `N` of the `go 1.N trace` header. Go 1.22
/// introduced this (generational) format; the header names the first release that wrote
/// each revision, so Go 1.24 writes `go 1.23 trace` and Go 1.27 writes `go 1.26 trace`.
///
/// | version | written by | differences |
/// |---|---|---|
/// | `Go122` | Go 1.22 | event types up to `UserLog`; a generation's clock batch is a lone `Frequency`; generations are told apart by the batch headers' generation numbers |
/// | `Go123` | Go 1.23, 1.24 | + `GoSwitch`, `GoSwitchDestroy`, `GoCreateBlocked`, `GoStatusStack`, experimental batches and events |
/// | `Go125` | Go 1.25 | the clock batch starts with `Sync` and carries a `ClockSnapshot` (trace, monotonic and wall clocks), which is required |
/// | `Go126` | Go 1.26, 1.27 | generations end with an explicit `EndOfGeneration` byte |
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Format {
    /// `go 1.22 trace`.
    Go122,
    /// `go 1.23 trace`.
    Go123,
    /// `go 1.25 trace`.
    Go125,
    /// `go 1.26 trace`.
    Go126,
}

impl Format {
    pub(crate) fn from_minor(minor: u32) -> Option<Format> {
        match minor {
            22 => Some(Format::Go122),
            23 => Some(Format::Go123),
            25 => Some(Format::Go125),
            26 => Some(Format::Go126),
            _ => None,
        }
    }

    /// The `N` of `go 1.N trace`.
    pub fn minor(self) -> u32 {
        match self {
            Format::Go122 => 22,
            Format::Go123 => 23,
            Format::Go125 => 25,
            Format::Go126 => 26,
        }
    }

    /// Whether a timed event of type `t` exists in this version.
    pub(crate) fn has_event(self, t: EvType) -> bool {
        match self {
            Format::Go122 => (EV_PROCS_CHANGE..=EV_USER_LOG).contains(&t),
            _ => {
                (EV_PROCS_CHANGE..=EV_GO_STATUS_STACK).contains(&t)
                    || (EV_SPAN..=EV_GOROUTINE_STACK_FREE).contains(&t)
            }
        }
    }

    /// Go 1.25+: the clock batch begins with `Sync` and holds a clock snapshot.
    pub(crate) fn has_sync_batch(self) -> bool {
        self >= Format::Go125
    }

    /// Go 1.26+: generations end with `EndOfGeneration`.
    pub(crate) fn has_end_of_generation(self) -> bool {
        self >= Format::Go126
    }

    /// Experimental batches exist (Go 1.23+).
    pub(crate) fn has_experiments(self) -> bool {
        self >= Format::Go123
    }
}

/// The name of a wire event type, as Go's tools print it.
pub(crate) fn name(t: EvType) -> &'static str {
    match t {
        EV_EVENT_BATCH => "EventBatch",
        EV_STACKS => "Stacks",
        EV_STACK => "Stack",
        EV_STRINGS => "Strings",
        EV_STRING => "String",
        EV_CPU_SAMPLES => "CPUSamples",
        EV_FREQUENCY => "Frequency",
        EV_EXPERIMENTAL_BATCH => "ExperimentalBatch",
        EV_SYNC => "Sync",
        EV_CLOCK_SNAPSHOT => "ClockSnapshot",
        EV_END_OF_GENERATION => "EndOfGeneration",
        EV_SYNC_EVENT => "Sync",
        _ => spec(t).map_or("Invalid", |s| s.name),
    }
}

/// A fast hasher for the integer IDs the reader keys its maps by (goroutines, procs,
/// threads, string and stack IDs, PCs): not DoS-resistant, which does not matter for maps
/// that live while one trace is read and whose size the input bounds.
#[derive(Default, Clone, Copy)]
pub(crate) struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(5) ^ b as u64).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }

    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn write_i64(&mut self, v: i64) {
        self.write_u64(v as u64);
    }
}

/// A map keyed by IDs.
pub(crate) type IdMap<K, V> =
    std::collections::HashMap<K, V, std::hash::BuildHasherDefault<IdHasher>>;
