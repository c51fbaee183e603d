//! The ordering state machine: decides whether an event can happen next, given what every
//! goroutine, proc and thread is doing, and queues the events that result.
//!
//! Events from different threads come in separate batches whose timestamps may disagree;
//! the reader offers the earliest event of each thread and this module accepts it only if
//! the states and sequence numbers allow it (a goroutine must be runnable before it starts,
//! a proc idle before it starts, …). This mirrors Go's `internal/trace` ordering exactly,
//! so that the stream equals `go tool trace`'s.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::error::Error;
use crate::event::*;
use crate::ids::IdVec;
use crate::spec::*;
use crate::wire::Table;

// Wire goroutine statuses.
const GO_RUNNABLE: u64 = 1;
const GO_RUNNING: u64 = 2;
const GO_SYSCALL: u64 = 3;
const GO_WAITING: u64 = 4;
// Wire proc statuses.
const PROC_RUNNING: u64 = 1;
const PROC_IDLE: u64 = 2;
const PROC_SYSCALL: u64 = 3;
const PROC_SYSCALL_ABANDONED: u64 = 4;

fn go_status_name(s: u64) -> &'static str {
    match s {
        GO_RUNNABLE => "Runnable",
        GO_RUNNING => "Running",
        GO_SYSCALL => "Syscall",
        GO_WAITING => "Waiting",
        _ => "Bad",
    }
}

fn proc_status_name(s: u64) -> &'static str {
    match s {
        PROC_RUNNING => "Running",
        PROC_IDLE => "Idle",
        PROC_SYSCALL => "Syscall",
        PROC_SYSCALL_ABANDONED => "SyscallAbandoned",
        _ => "Bad",
    }
}

/// A sequence number within a generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seq {
    gn: u64,
    seq: u64,
}

impl Seq {
    fn succeeds(self, b: Seq) -> bool {
        self.gn == b.gn && self.seq == b.seq.wrapping_add(1)
    }
}

/// A range in flight: its begin event type and (for STW) its reason string ID.
type RangeType = (EvType, u64);

#[derive(Debug, Default)]
struct Ranges(Vec<RangeType>);

impl Ranges {
    fn begin(&mut self, r: RangeType) -> Result<(), Error> {
        if self.0.contains(&r) {
            return Err(Error::order(format!(
                "discovered event already in-flight for when starting event {}",
                name(r.0)
            )));
        }
        self.0.push(r);
        Ok(())
    }

    fn active(&mut self, r: RangeType, initial_gen: bool) -> Result<(), Error> {
        if initial_gen {
            if self.0.contains(&r) {
                return Err(Error::order(format!(
                    "found named active range already in first gn: {}",
                    name(r.0)
                )));
            }
            self.0.push(r);
        } else if !self.0.contains(&r) {
            return Err(Error::order(format!(
                "resource is missing active range: {}",
                name(r.0)
            )));
        }
        Ok(())
    }

    fn end(&mut self, typ: EvType) -> Result<u64, Error> {
        let start = spec(typ).map_or(0, |s| s.start);
        let Some(i) = self.0.iter().position(|r| r.0 == start) else {
            return Err(Error::order(format!(
                "tried to end event {}, but not in-flight",
                name(start)
            )));
        };
        Ok(self.0.swap_remove(i).1)
    }
}

fn range_type(typ: EvType, desc: u64) -> RangeType {
    let start = spec(typ).map_or(0, |s| s.start);
    (if start != 0 { start } else { typ }, desc)
}

#[derive(Debug)]
struct GState {
    status: u64,
    seq: Seq,
    regions: Vec<(TaskId, String)>,
    ranges: Ranges,
}

#[derive(Debug)]
struct PState {
    status: u64,
    seq: Seq,
    ranges: Ranges,
}

#[derive(Debug, Clone, Copy)]
struct MState {
    g: GoId,
    p: ProcId,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GcState {
    NotRunning,
    Running,
}

/// What a context must (not) have.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Need {
    MustNot,
    May,
    Must,
}
use Need::*;

fn validate(ctx: Ctx, m: Need, p: Need, g: Need) -> Result<(), Error> {
    let check = |need: Need, has: bool, what: &str| match (need, has) {
        (Must, false) => Err(Error::order(format!(
            "expected a {what} but didn't have one"
        ))),
        (MustNot, true) => Err(Error::order(format!("expected no {what} but had one"))),
        _ => Ok(()),
    };
    check(m, ctx.m != NO_THREAD, "thread")?;
    check(p, ctx.p != NO_PROC, "proc")?;
    check(g, ctx.g != NO_GOROUTINE, "goroutine")
}

fn user_go(ctx: Ctx) -> Result<(), Error> {
    validate(ctx, Must, Must, Must)
}

/// A candidate event from one thread's batch.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Base {
    pub typ: EvType,
    pub time: i64,
    pub args: [u64; MAX_ARGS],
}

/// The threads' states, each in a slot that the reader's cursor for the thread keeps: the
/// per-event lookup is an index (thread ids are OS thread ids, far from dense). A slot is
/// `None` until its thread's first event is tried, as Go creates the state then.
#[derive(Default)]
struct Threads {
    slots: IdMap<ThreadId, usize>,
    states: Vec<(ThreadId, Option<MState>)>,
}

impl Threads {
    fn slot(&mut self, m: ThreadId) -> usize {
        let states = &mut self.states;
        *self.slots.entry(m).or_insert_with(|| {
            states.push((m, None));
            states.len() - 1
        })
    }

    fn get(&self, m: ThreadId) -> Option<&MState> {
        let &i = self.slots.get(&m)?;
        self.states[i].1.as_ref()
    }

    fn get_mut(&mut self, m: ThreadId) -> Option<&mut MState> {
        let &i = self.slots.get(&m)?;
        self.states[i].1.as_mut()
    }

    fn insert(&mut self, m: ThreadId, st: MState) {
        let i = self.slot(m);
        self.states[i].1 = Some(st);
    }

    fn iter(&self) -> impl Iterator<Item = (ThreadId, &MState)> {
        self.states
            .iter()
            .filter_map(|(m, st)| st.as_ref().map(|st| (*m, st)))
    }
}

#[derive(Default)]
pub(crate) struct Ordering {
    g: IdVec<GoId, GState>,
    p: IdVec<ProcId, PState>,
    m: Threads,
    tasks: IdMap<TaskId, (String, TaskId)>,
    gc_seq: u64,
    gc: Option<GcState>,
    initial_gen: u64,
    pub queue: VecDeque<Event>,
}

type Outcome = Result<(Ctx, bool), Error>;

impl Ordering {
    /// The slot of thread `m`'s state, for [`advance`](Self::advance).
    pub fn thread_slot(&mut self, m: ThreadId) -> usize {
        self.m.slot(m)
    }

    /// Tries to make `ev` (from thread `m`, whose slot is `slot`) happen next. `Ok(false)`:
    /// not yet, try another thread's event first.
    pub fn advance(
        &mut self,
        ev: &mut Base,
        table: &Arc<Table>,
        m: ThreadId,
        slot: usize,
        gn: u64,
    ) -> Result<bool, Error> {
        if self.initial_gen == 0 {
            self.initial_gen = gn;
        }
        let cur = if m == NO_THREAD {
            Ctx::NONE
        } else {
            let ms = self.m.states[slot].1.get_or_insert(MState {
                g: NO_GOROUTINE,
                p: NO_PROC,
            });
            Ctx {
                g: ms.g,
                p: ms.p,
                m,
            }
        };
        let (new, ok) = self.dispatch(ev, table, gn, cur)?;
        if ok
            && m != NO_THREAD
            && let Some(ms) = self.m.states[slot].1.as_mut()
        {
            ms.p = new.p;
            ms.g = new.g;
        }
        Ok(ok)
    }

    /// Queues an event. Queued events carry no table: they are all of the generation being
    /// read, whose table the reader attaches as it hands them out (no reference count is
    /// taken per event).
    #[inline]
    fn push(&mut self, ctx: Ctx, ev: &Base) {
        self.queue.push_back(Event {
            typ: ev.typ,
            time: ev.time,
            ctx,
            args: ev.args,
            table: None,
            extra: None,
        });
    }

    fn push_made(&mut self, ctx: Ctx, typ: EvType, time: i64, args: &[u64]) {
        let mut a = [0; MAX_ARGS];
        a[..args.len()].copy_from_slice(args);
        self.queue.push_back(Event {
            typ,
            time,
            ctx,
            args: a,
            table: None,
            extra: None,
        });
    }

    #[inline]
    fn dispatch(&mut self, ev: &mut Base, t: &Arc<Table>, gn: u64, cur: Ctx) -> Outcome {
        match ev.typ {
            EV_PROCS_CHANGE | EV_GO_LABEL | EV_USER_LOG => {
                user_go(cur)?;
                self.push(cur, ev);
                Ok((cur, true))
            }
            EV_PROC_START => self.proc_start(ev, gn, cur),
            EV_PROC_STOP => self.proc_stop(ev, cur),
            EV_PROC_STEAL => self.proc_steal(ev, gn, cur),
            EV_PROC_STATUS => self.proc_status(ev, gn, cur),
            EV_GO_CREATE | EV_GO_CREATE_BLOCKED => self.go_create(ev, gn, cur),
            EV_GO_CREATE_SYSCALL => self.go_create_syscall(ev, gn, cur),
            EV_GO_START => self.go_start(ev, gn, cur),
            EV_GO_DESTROY | EV_GO_STOP | EV_GO_BLOCK => self.go_stop_exec(ev, cur),
            EV_GO_DESTROY_SYSCALL => self.go_destroy_syscall(ev, cur),
            EV_GO_UNBLOCK => self.go_unblock(ev, gn, cur),
            EV_GO_SYSCALL_BEGIN => self.go_syscall_begin(ev, gn, cur),
            EV_GO_SYSCALL_END => self.go_syscall_end(ev, cur),
            EV_GO_SYSCALL_END_BLOCKED => self.go_syscall_end_blocked(ev, cur),
            EV_GO_STATUS | EV_GO_STATUS_STACK => self.go_status(ev, gn, cur),
            EV_STW_BEGIN | EV_GC_MARK_ASSIST_BEGIN => self.go_range_begin(ev, cur),
            EV_STW_END | EV_GC_MARK_ASSIST_END => self.go_range_end(ev, cur),
            EV_GC_MARK_ASSIST_ACTIVE => self.go_range_active(ev, gn, cur),
            EV_GC_ACTIVE => self.gc_active(ev, gn, cur),
            EV_GC_BEGIN => self.gc_begin(ev, cur),
            EV_GC_END => self.gc_end(ev, cur),
            EV_GC_SWEEP_ACTIVE => self.sweep_active(ev, gn, cur),
            EV_GC_SWEEP_BEGIN => self.sweep_begin(ev, cur),
            EV_GC_SWEEP_END => self.sweep_end(ev, cur),
            EV_HEAP_ALLOC | EV_HEAP_GOAL => {
                validate(cur, Must, Must, May)?;
                self.push(cur, ev);
                Ok((cur, true))
            }
            EV_USER_TASK_BEGIN => self.task_begin(ev, t, cur),
            EV_USER_TASK_END => self.task_end(ev, cur),
            EV_USER_REGION_BEGIN | EV_USER_REGION_END => self.region(ev, t, cur),
            EV_GO_SWITCH | EV_GO_SWITCH_DESTROY => self.go_switch(ev, gn, cur),
            EV_SPAN..=EV_GOROUTINE_STACK_FREE => {
                validate(cur, Must, May, May)?;
                self.push(cur, ev);
                Ok((cur, true))
            }
            other => Err(Error::order(format!(
                "bad event type found while ordering: {other}"
            ))),
        }
    }

    fn proc_status(&mut self, ev: &mut Base, gn: u64, mut cur: Ctx) -> Outcome {
        let pid = ev.args[0] as i64;
        let status = ev.args[1];
        if status > PROC_SYSCALL_ABANDONED {
            return Err(Error::order(format!(
                "invalid status for proc {pid}: {status}"
            )));
        }
        let mut old = ProcState::from_status(status);
        if let Some(s) = self.p.get_mut(pid) {
            if status == PROC_SYSCALL_ABANDONED && s.status == PROC_SYSCALL {
                old = ProcState::Running;
                ev.args[1] = PROC_SYSCALL;
            } else if status == PROC_SYSCALL_ABANDONED && s.status == PROC_SYSCALL_ABANDONED {
                old = ProcState::Idle;
                ev.args[1] = PROC_SYSCALL_ABANDONED;
            } else if s.status != status {
                return Err(Error::order(format!(
                    "inconsistent status for proc {pid}: old {} vs. new {}",
                    proc_status_name(s.status),
                    proc_status_name(status)
                )));
            }
            s.seq = Seq { gn, seq: 0 };
        } else {
            self.p.insert(
                pid,
                PState {
                    status,
                    seq: Seq { gn, seq: 0 },
                    ranges: Ranges::default(),
                },
            );
            old = if gn == self.initial_gen {
                ProcState::Undetermined
            } else {
                ProcState::NotExist
            };
        }
        ev.args[2] = old.to_u8();
        let mut new = cur;
        if status == PROC_RUNNING || status == PROC_SYSCALL {
            new.p = pid;
        }
        if status == PROC_SYSCALL_ABANDONED && old == ProcState::Running {
            // Find the thread that had the proc: the event happens in its context. (Go
            // takes the last match in map order; a consistent trace has exactly one.)
            let mut found = None;
            for (mid, ms) in self.m.iter() {
                if ms.p == pid && found.is_none_or(|(m, _)| mid < m) {
                    found = Some((mid, ms.g));
                }
            }
            let Some((mid, g)) = found else {
                return Err(Error::order(format!(
                    "failed to find sched context for proc {pid} that's about to be stolen"
                )));
            };
            cur = Ctx { m: mid, p: pid, g };
        }
        self.push(cur, ev);
        Ok((new, true))
    }

    fn proc_start(&mut self, ev: &mut Base, gn: u64, cur: Ctx) -> Outcome {
        let pid = ev.args[0] as i64;
        let seq = Seq {
            gn,
            seq: ev.args[1],
        };
        match self.p.get_mut(pid) {
            Some(s) if s.status == PROC_IDLE && seq.succeeds(s.seq) && cur.p == NO_PROC => {
                validate(cur, Must, MustNot, May)?;
                s.status = PROC_RUNNING;
                s.seq = seq;
            }
            _ => return Ok((cur, false)),
        }
        self.push(cur, ev);
        Ok((Ctx { p: pid, ..cur }, true))
    }

    fn proc_stop(&mut self, ev: &mut Base, cur: Ctx) -> Outcome {
        let Some(s) = self.p.get_mut(cur.p) else {
            return Err(Error::order(format!(
                "event ProcStop for proc ({}) that doesn't exist",
                cur.p
            )));
        };
        if s.status != PROC_RUNNING && s.status != PROC_SYSCALL {
            return Err(Error::order(
                "ProcStop event for proc that's not Running or Syscall",
            ));
        }
        validate(cur, Must, Must, May)?;
        s.status = PROC_IDLE;
        self.push(cur, ev);
        Ok((Ctx { p: NO_PROC, ..cur }, true))
    }

    fn proc_steal(&mut self, ev: &mut Base, gn: u64, cur: Ctx) -> Outcome {
        let pid = ev.args[0] as i64;
        let seq = Seq {
            gn,
            seq: ev.args[1],
        };
        let old = match self.p.get_mut(pid) {
            Some(s)
                if (s.status == PROC_SYSCALL || s.status == PROC_SYSCALL_ABANDONED)
                    && seq.succeeds(s.seq) =>
            {
                validate(cur, Must, May, May)?;
                let old = s.status;
                s.status = PROC_IDLE;
                s.seq = seq;
                old
            }
            _ => return Ok((cur, false)),
        };
        ev.args[3] = old;
        if old == PROC_SYSCALL_ABANDONED {
            self.push(cur, ev);
            return Ok((cur, true));
        }
        let mid = ev.args[2] as i64;
        if mid == cur.m {
            if cur.p != pid {
                return Err(Error::order(format!(
                    "tried to self-steal proc {pid} (thread {mid}), but got proc {} instead",
                    cur.p
                )));
            }
            self.push(cur, ev);
            return Ok((Ctx { p: NO_PROC, ..cur }, true));
        }
        let Some(ms) = self.m.get_mut(mid) else {
            return Err(Error::order(format!(
                "stole proc from non-existent thread {mid}"
            )));
        };
        if ms.p != pid {
            return Err(Error::order(format!(
                "tried to steal proc {pid} from thread {mid}, but got proc {} instead",
                ms.p
            )));
        }
        ms.p = NO_PROC;
        self.push(cur, ev);
        Ok((cur, true))
    }

    fn go_status(&mut self, ev: &mut Base, gn: u64, mut cur: Ctx) -> Outcome {
        let gid = ev.args[0] as i64;
        let mid = ev.args[1] as i64;
        let status = ev.args[2];
        if status > GO_WAITING {
            return Err(Error::order(format!(
                "invalid status for goroutine {gid}: {status}"
            )));
        }
        let mut old = GoState::from_status(status);
        if let Some(s) = self.g.get_mut(gid) {
            if s.status != status {
                return Err(Error::order(format!(
                    "inconsistent status for goroutine {gid}: old {} vs. new {}",
                    go_status_name(s.status),
                    go_status_name(status)
                )));
            }
            s.seq = Seq { gn, seq: 0 };
        } else if gn == self.initial_gen {
            self.g.insert(
                gid,
                GState {
                    status,
                    seq: Seq { gn, seq: 0 },
                    regions: Vec::new(),
                    ranges: Ranges::default(),
                },
            );
            old = GoState::Undetermined;
        } else {
            return Err(Error::order(format!(
                "found goroutine status for new goroutine after the first generation: id={gid} status={}",
                go_status_name(status)
            )));
        }
        ev.args[2] = old.to_u8() << 32 | status;
        let mut new = cur;
        match status {
            GO_RUNNING => new.g = gid,
            GO_SYSCALL => {
                if mid == NO_THREAD {
                    return Err(Error::order(format!(
                        "found goroutine {gid} in syscall without a thread"
                    )));
                }
                if mid == cur.m {
                    if gn != self.initial_gen && cur.g != gid {
                        return Err(Error::order(format!(
                            "inconsistent thread for syscalling goroutine {gid}: thread has goroutine {}",
                            cur.g
                        )));
                    }
                    new.g = gid;
                } else {
                    match self.m.get(mid) {
                        Some(ms) => {
                            if ms.g != gid {
                                return Err(Error::order(format!(
                                    "inconsistent thread for syscalling goroutine {gid}: thread has goroutine {}",
                                    ms.g
                                )));
                            }
                            cur.g = ms.g;
                        }
                        None => {
                            self.m.insert(mid, MState { g: gid, p: NO_PROC });
                        }
                    }
                    cur.m = mid;
                }
            }
            _ => {}
        }
        self.push(cur, ev);
        Ok((new, true))
    }

    fn go_create(&mut self, ev: &mut Base, gn: u64, cur: Ctx) -> Outcome {
        validate(cur, Must, Must, May)?;
        if let Some(s) = self.g.get(cur.g)
            && s.status != GO_RUNNING
        {
            return Err(Error::order(format!(
                "{} event for goroutine that's not Running",
                name(ev.typ)
            )));
        }
        let new = ev.args[0] as i64;
        if self.g.contains_key(new) {
            return Err(Error::order(format!(
                "tried to create goroutine ({new}) that already exists"
            )));
        }
        let status = if ev.typ == EV_GO_CREATE_BLOCKED {
            GO_WAITING
        } else {
            GO_RUNNABLE
        };
        self.g.insert(
            new,
            GState {
                status,
                seq: Seq { gn, seq: 0 },
                regions: Vec::new(),
                ranges: Ranges::default(),
            },
        );
        self.push(cur, ev);
        Ok((cur, true))
    }

    fn running_g(&mut self, typ: EvType, g: GoId, want: u64) -> Result<&mut GState, Error> {
        let Some(s) = self.g.get_mut(g) else {
            return Err(Error::order(format!(
                "event {} for goroutine ({g}) that doesn't exist",
                name(typ)
            )));
        };
        if s.status != want {
            return Err(Error::order(format!(
                "{} event for goroutine that's not {}",
                name(typ),
                go_status_name(want)
            )));
        }
        Ok(s)
    }

    fn go_stop_exec(&mut self, ev: &mut Base, cur: Ctx) -> Outcome {
        user_go(cur)?;
        let s = self.running_g(ev.typ, cur.g, GO_RUNNING)?;
        match ev.typ {
            EV_GO_STOP => s.status = GO_RUNNABLE,
            EV_GO_BLOCK => s.status = GO_WAITING,
            _ => {
                self.g.remove(cur.g);
            }
        }
        self.push(cur, ev);
        Ok((
            Ctx {
                g: NO_GOROUTINE,
                ..cur
            },
            true,
        ))
    }

    fn go_start(&mut self, ev: &mut Base, gn: u64, cur: Ctx) -> Outcome {
        let gid = ev.args[0] as i64;
        let seq = Seq {
            gn,
            seq: ev.args[1],
        };
        match self.g.get_mut(gid) {
            Some(s) if s.status == GO_RUNNABLE && seq.succeeds(s.seq) => {
                validate(cur, Must, Must, MustNot)?;
                s.status = GO_RUNNING;
                s.seq = seq;
            }
            _ => return Ok((cur, false)),
        }
        self.push(cur, ev);
        Ok((Ctx { g: gid, ..cur }, true))
    }

    fn go_unblock(&mut self, ev: &mut Base, gn: u64, cur: Ctx) -> Outcome {
        let gid = ev.args[0] as i64;
        let seq = Seq {
            gn,
            seq: ev.args[1],
        };
        match self.g.get_mut(gid) {
            Some(s) if s.status == GO_WAITING && seq.succeeds(s.seq) => {
                s.status = GO_RUNNABLE;
                s.seq = seq;
            }
            _ => return Ok((cur, false)),
        }
        self.push(cur, ev);
        Ok((cur, true))
    }

    fn go_switch(&mut self, ev: &mut Base, gn: u64, cur: Ctx) -> Outcome {
        user_go(cur)?;
        self.running_g(ev.typ, cur.g, GO_RUNNING)?;
        let next = ev.args[0] as i64;
        let seq = Seq {
            gn,
            seq: ev.args[1],
        };
        match self.g.get(next) {
            Some(s) if s.status == GO_WAITING && seq.succeeds(s.seq) => {}
            _ => return Ok((cur, false)),
        }
        self.push(cur, ev);
        if ev.typ == EV_GO_SWITCH {
            if let Some(s) = self.g.get_mut(cur.g) {
                s.status = GO_WAITING;
            }
            self.push_made(cur, EV_GO_BLOCK, ev.time, &[0, 0]);
        } else {
            self.g.remove(cur.g);
            self.push_made(cur, EV_GO_DESTROY, ev.time, &[]);
        }
        if let Some(s) = self.g.get_mut(next) {
            s.status = GO_RUNNING;
            s.seq = seq;
        }
        let start = Ctx {
            g: NO_GOROUTINE,
            ..cur
        };
        self.push_made(start, EV_GO_START, ev.time, &[next as u64, ev.args[1]]);
        Ok((Ctx { g: next, ..cur }, true))
    }

    fn go_syscall_begin(&mut self, ev: &mut Base, gn: u64, cur: Ctx) -> Outcome {
        user_go(cur)?;
        self.running_g(ev.typ, cur.g, GO_RUNNING)?.status = GO_SYSCALL;
        let Some(p) = self.p.get_mut(cur.p) else {
            return Err(Error::order(format!(
                "uninitialized proc {} found during GoSyscallBegin",
                cur.p
            )));
        };
        p.status = PROC_SYSCALL;
        let pseq = Seq {
            gn,
            seq: ev.args[0],
        };
        if !pseq.succeeds(p.seq) {
            return Err(Error::order(format!(
                "failed to advance GoSyscallBegin: can't make sequence: {} (gen={}) -> {} (gen={})",
                p.seq.seq, p.seq.gn, pseq.seq, pseq.gn
            )));
        }
        p.seq = pseq;
        self.push(cur, ev);
        Ok((cur, true))
    }

    fn go_syscall_end(&mut self, ev: &mut Base, cur: Ctx) -> Outcome {
        user_go(cur)?;
        let typ = ev.typ;
        let s = self.g.get_mut(cur.g).ok_or_else(|| {
            Error::order(format!(
                "event {} for goroutine ({}) that doesn't exist",
                name(typ),
                cur.g
            ))
        })?;
        if s.status != GO_SYSCALL {
            return Err(Error::order(format!(
                "{} event for goroutine that's not Running",
                name(typ)
            )));
        }
        s.status = GO_RUNNING;
        let Some(p) = self.p.get_mut(cur.p) else {
            return Err(Error::order(format!(
                "uninitialized proc {} found during {}",
                cur.p,
                name(typ)
            )));
        };
        if p.status != PROC_SYSCALL {
            return Err(Error::order(format!(
                "expected proc {} in state Syscall, but got {} instead",
                cur.p,
                proc_status_name(p.status)
            )));
        }
        p.status = PROC_RUNNING;
        self.push(cur, ev);
        Ok((cur, true))
    }

    fn go_syscall_end_blocked(&mut self, ev: &mut Base, cur: Ctx) -> Outcome {
        if cur.p != NO_PROC {
            let Some(p) = self.p.get(cur.p) else {
                return Err(Error::order(format!(
                    "uninitialized proc {} found during GoSyscallEndBlocked",
                    cur.p
                )));
            };
            if p.status == PROC_SYSCALL {
                return Ok((cur, false));
            }
        }
        validate(cur, Must, May, Must)?;
        let s = self.g.get_mut(cur.g).ok_or_else(|| {
            Error::order(format!(
                "event GoSyscallEndBlocked for goroutine ({}) that doesn't exist",
                cur.g
            ))
        })?;
        if s.status != GO_SYSCALL {
            return Err(Error::order(
                "GoSyscallEndBlocked event for goroutine that's not Running",
            ));
        }
        s.status = GO_RUNNABLE;
        self.push(cur, ev);
        Ok((
            Ctx {
                g: NO_GOROUTINE,
                ..cur
            },
            true,
        ))
    }

    fn go_create_syscall(&mut self, ev: &mut Base, gn: u64, cur: Ctx) -> Outcome {
        validate(cur, Must, May, MustNot)?;
        let new = ev.args[0] as i64;
        if self.g.contains_key(new) {
            return Err(Error::order(format!(
                "tried to create goroutine ({new}) in syscall that already exists"
            )));
        }
        self.g.insert(
            new,
            GState {
                status: GO_SYSCALL,
                seq: Seq { gn, seq: 0 },
                regions: Vec::new(),
                ranges: Ranges::default(),
            },
        );
        self.push(cur, ev);
        Ok((Ctx { g: new, ..cur }, true))
    }

    fn go_destroy_syscall(&mut self, ev: &mut Base, cur: Ctx) -> Outcome {
        validate(cur, Must, May, Must)?;
        self.running_g(ev.typ, cur.g, GO_SYSCALL)?;
        self.g.remove(cur.g);
        let mut new = Ctx {
            g: NO_GOROUTINE,
            ..cur
        };
        if cur.p != NO_PROC {
            let Some(p) = self.p.get_mut(cur.p) else {
                return Err(Error::order(format!(
                    "found invalid proc {} during GoDestroySyscall",
                    cur.p
                )));
            };
            if p.status != PROC_SYSCALL {
                return Err(Error::order(format!(
                    "proc {} in unexpected state {} during GoDestroySyscall",
                    cur.p,
                    proc_status_name(p.status)
                )));
            }
            p.status = PROC_SYSCALL_ABANDONED;
            new.p = NO_PROC;
            // The proc is implicitly stolen: an extra ProcSteal first.
            self.push_made(
                cur,
                EV_PROC_STEAL,
                ev.time,
                &[cur.p as u64, 0, 0, PROC_SYSCALL],
            );
        }
        self.push(cur, ev);
        Ok((new, true))
    }

    fn task_begin(&mut self, ev: &mut Base, t: &Arc<Table>, cur: Ctx) -> Outcome {
        let id = ev.args[0];
        if self.tasks.contains_key(&id) {
            return Err(Error::order(format!("task ID conflict: {id}")));
        }
        let mut parent = ev.args[1];
        if parent == 0 {
            parent = NO_TASK;
            ev.args[1] = NO_TASK;
        }
        let Some(name) = t.string(ev.args[2]) else {
            return Err(Error::order(format!(
                "invalid string ID {} for UserTaskBegin event",
                ev.args[2]
            )));
        };
        self.tasks.insert(id, (name.to_string(), parent));
        user_go(cur)?;
        self.push(cur, ev);
        Ok((cur, true))
    }

    fn task_end(&mut self, ev: &mut Base, cur: Ctx) -> Outcome {
        let (name, parent) = self
            .tasks
            .remove(&ev.args[0])
            .unwrap_or_else(|| (String::new(), NO_TASK));
        ev.args[2] = parent;
        user_go(cur)?;
        self.push(cur, ev);
        if let Some(e) = self.queue.back_mut() {
            e.extra = (!name.is_empty()).then(|| name.into_boxed_str());
        }
        Ok((cur, true))
    }

    fn region(&mut self, ev: &mut Base, t: &Arc<Table>, cur: Ctx) -> Outcome {
        user_go(cur)?;
        let task = ev.args[0];
        let Some(rname) = t.string(ev.args[1]) else {
            return Err(Error::order(format!(
                "invalid string ID {} for {} event",
                ev.args[1],
                name(ev.typ)
            )));
        };
        let Some(g) = self.g.get_mut(cur.g) else {
            return Err(Error::order(format!(
                "encountered {} without known state for current goroutine {}",
                name(ev.typ),
                cur.g
            )));
        };
        if ev.typ == EV_USER_REGION_BEGIN {
            g.regions.push((task, rname.to_string()));
        } else if let Some(last) = g.regions.last() {
            if last.0 != task || last.1 != rname {
                return Err(Error::order(format!(
                    "misuse of region in goroutine {}: region end {{{task} {rname}}} when the inner-most active region start event is {{{} {}}}",
                    cur.g, last.0, last.1
                )));
            }
            g.regions.pop();
        }
        self.push(cur, ev);
        Ok((cur, true))
    }

    fn gc_active(&mut self, ev: &mut Base, gn: u64, cur: Ctx) -> Outcome {
        let seq = ev.args[0];
        if gn == self.initial_gen {
            if self.gc.is_some() {
                return Err(Error::order(
                    "GCActive in the first generation isn't first GC event",
                ));
            }
            self.gc_seq = seq;
            self.gc = Some(GcState::Running);
            self.push(cur, ev);
            return Ok((cur, true));
        }
        if seq != self.gc_seq.wrapping_add(1) {
            return Ok((cur, false));
        }
        if self.gc != Some(GcState::Running) {
            return Err(Error::order(
                "encountered GCActive while GC was not in progress",
            ));
        }
        self.gc_seq = seq;
        user_go(cur)?;
        self.push(cur, ev);
        Ok((cur, true))
    }

    fn gc_begin(&mut self, ev: &mut Base, cur: Ctx) -> Outcome {
        let seq = ev.args[0];
        if self.gc.is_none() {
            self.gc_seq = seq;
            self.gc = Some(GcState::Running);
            self.push(cur, ev);
            return Ok((cur, true));
        }
        if seq != self.gc_seq.wrapping_add(1) {
            return Ok((cur, false));
        }
        if self.gc == Some(GcState::Running) {
            return Err(Error::order(
                "encountered GCBegin while GC was already in progress",
            ));
        }
        self.gc_seq = seq;
        self.gc = Some(GcState::Running);
        user_go(cur)?;
        self.push(cur, ev);
        Ok((cur, true))
    }

    fn gc_end(&mut self, ev: &mut Base, cur: Ctx) -> Outcome {
        let seq = ev.args[0];
        if seq != self.gc_seq.wrapping_add(1) {
            return Ok((cur, false));
        }
        match self.gc {
            Some(GcState::NotRunning) => {
                return Err(Error::order(
                    "encountered GCEnd when GC was not in progress",
                ));
            }
            None => {
                return Err(Error::order(
                    "encountered GCEnd when GC was in an undetermined state",
                ));
            }
            Some(GcState::Running) => {}
        }
        self.gc_seq = seq;
        self.gc = Some(GcState::NotRunning);
        user_go(cur)?;
        self.push(cur, ev);
        Ok((cur, true))
    }

    fn proc_ranges(&mut self, p: ProcId) -> Result<&mut Ranges, Error> {
        self.p
            .get_mut(p)
            .map(|s| &mut s.ranges)
            .ok_or_else(|| Error::order(format!("uninitialized proc {p} in a sweep event")))
    }

    fn sweep_begin(&mut self, ev: &mut Base, cur: Ctx) -> Outcome {
        validate(cur, Must, Must, May)?;
        self.proc_ranges(cur.p)?.begin(range_type(ev.typ, 0))?;
        self.push(cur, ev);
        Ok((cur, true))
    }

    fn sweep_active(&mut self, ev: &mut Base, gn: u64, cur: Ctx) -> Outcome {
        let pid = ev.args[0] as i64;
        let initial = gn == self.initial_gen;
        let Some(p) = self.p.get_mut(pid) else {
            return Err(Error::order(format!(
                "encountered GCSweepActive for unknown proc {pid}"
            )));
        };
        p.ranges.active(range_type(ev.typ, 0), initial)?;
        self.push(cur, ev);
        Ok((cur, true))
    }

    fn sweep_end(&mut self, ev: &mut Base, cur: Ctx) -> Outcome {
        validate(cur, Must, Must, May)?;
        self.proc_ranges(cur.p)?.end(ev.typ)?;
        self.push(cur, ev);
        Ok((cur, true))
    }

    fn go_range_begin(&mut self, ev: &mut Base, cur: Ctx) -> Outcome {
        user_go(cur)?;
        let desc = if ev.typ == EV_STW_BEGIN {
            ev.args[0]
        } else {
            0
        };
        let Some(g) = self.g.get_mut(cur.g) else {
            return Err(Error::order(format!(
                "encountered event of type {} without known state for current goroutine {}",
                ev.typ, cur.g
            )));
        };
        g.ranges.begin(range_type(ev.typ, desc))?;
        self.push(cur, ev);
        Ok((cur, true))
    }

    fn go_range_active(&mut self, ev: &mut Base, gn: u64, cur: Ctx) -> Outcome {
        let gid = ev.args[0] as i64;
        let initial = gn == self.initial_gen;
        let Some(g) = self.g.get_mut(gid) else {
            return Err(Error::order(format!(
                "uninitialized goroutine {gid} found during {}",
                name(ev.typ)
            )));
        };
        g.ranges.active(range_type(ev.typ, 0), initial)?;
        self.push(cur, ev);
        Ok((cur, true))
    }

    fn go_range_end(&mut self, ev: &mut Base, cur: Ctx) -> Outcome {
        user_go(cur)?;
        let Some(g) = self.g.get_mut(cur.g) else {
            return Err(Error::order(format!(
                "encountered event of type {} without known state for current goroutine {}",
                ev.typ, cur.g
            )));
        };
        let desc = g.ranges.end(ev.typ)?;
        if ev.typ == EV_STW_END {
            ev.args[0] = desc;
        }
        self.push(cur, ev);
        Ok((cur, true))
    }
}
