//! The reader: generations in, one time-ordered stream of events out.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::error::{Error, ErrorKind};
use crate::event::{Ctx, Event};
use crate::order::{Base, Ordering};
use crate::spec::*;
use crate::wire::{self, Batch, Builder, CpuSample, Generation, Read, Table};

/// Latest event time accepted (ns); see [`Reader`]'s iterator.
const MAX_TIME: i64 = 1 << 61;

/// Caps on what reading a trace may hold in memory.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest trace accepted, in bytes.
    pub max_trace_bytes: usize,
    /// Largest generation (sum of its batches' bytes); a generation is held whole while its
    /// events are ordered.
    pub max_generation_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_trace_bytes: 4 << 30,
            max_generation_bytes: 1 << 30,
        }
    }
}

/// When [`Kind::Sync`](crate::Kind::Sync) events appear.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SyncPlacement {
    /// At the start of every generation (with its clock snapshot) and once at the end, as
    /// Go 1.25 and later report them.
    #[default]
    GenerationStart,
    /// At the end of every generation, as Go 1.22–1.24's tools report them.
    GenerationEnd,
}

/// Options for [`Reader::with_options`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Size caps.
    pub limits: Limits,
    /// Where sync events go.
    pub syncs: SyncPlacement,
}

/// One thread's position in its batches.
#[derive(Debug, Clone)]
struct Cursor {
    m: i64,
    /// The thread's slot in the ordering's states.
    mslot: usize,
    /// Index into the generation's `batches`.
    slot: usize,
    last_ts: i64,
    idx: usize,
    off: usize,
    ev: Base,
}

impl Cursor {
    /// Reads this thread's next event into `ev`; false when its batches are done.
    #[inline]
    fn next(&mut self, batches: &[Batch<'_>], freq: f64, format: Format) -> Result<bool, Error> {
        while self.idx < batches.len() && batches[self.idx].data.len() == self.off {
            self.idx += 1;
            self.off = 0;
            self.last_ts = 0;
        }
        let Some(b) = batches.get(self.idx) else {
            return Ok(false);
        };
        if self.last_ts == 0 {
            self.last_ts = wire::mul(freq, b.time);
        }
        let d = b.data;
        let at = b.offset + self.off;
        let typ = EvType::from(d[self.off]);
        let sp = match spec(typ) {
            Some(sp) if typ != EV_CPU_SAMPLE && format.has_event(typ) => sp,
            _ => {
                return Err(Error::at(
                    ErrorKind::Malformed,
                    at,
                    format!(
                        "found invalid event type {typ} in a batch of thread {}",
                        self.m
                    ),
                ));
            }
        };
        let mut pos = self.off + 1;
        let bad = |pos: usize, what: &str| {
            Error::at(
                ErrorKind::Malformed,
                b.offset + pos,
                format!("{} event: bad or truncated varint for {what}", sp.name),
            )
        };
        let dt = wire::uvarint(d, &mut pos).ok_or_else(|| bad(pos, "timestamp"))?;
        let mut args = [0u64; MAX_ARGS];
        for (i, a) in sp.args.iter().enumerate() {
            args[i] = wire::uvarint(d, &mut pos).ok_or_else(|| bad(pos, a))?;
        }
        let time = wire::mul(freq, dt).wrapping_add(self.last_ts);
        self.last_ts = time;
        self.ev = Base { typ, time, args };
        self.off = pos;
        Ok(true)
    }
}

/// What [`Reader::read_event`] found.
enum Next {
    /// An event is in the ordering's queue.
    Queued,
    /// An event made by the reader (a sync, a CPU sample).
    Made(Event),
    End,
}

/// A frontier entry: a thread's next event time and its cursor (an index into
/// `Reader::cursors`). Small, so the heap moves 16 bytes, not cursors.
#[derive(Debug, Clone, Copy)]
struct Front {
    time: i64,
    slot: usize,
}

// Go's frontier is a binary min-heap on the cursors' event times; the exact heap operations
// matter when two threads' events have the same time, so they are reproduced here.
fn sift_up(h: &mut [Front], mut i: usize) -> usize {
    while i > 0 && h[(i - 1) / 2].time > h[i].time {
        h.swap((i - 1) / 2, i);
        i = (i - 1) / 2;
    }
    i
}

fn sift_down(h: &mut [Front], mut i: usize) {
    loop {
        let mut m = i;
        let mut min = if i < h.len() { h[i].time } else { i64::MAX };
        for c in [2 * i + 1, 2 * i + 2] {
            if c < h.len() && h[c].time < min {
                min = h[c].time;
                m = c;
            }
        }
        if m == i {
            return;
        }
        h.swap(i, m);
        i = m;
    }
}

fn heap_update(h: &mut [Front], i: usize) {
    if sift_up(h, i) != i {
        return;
    }
    sift_down(h, i);
}

fn heap_remove(h: &mut Vec<Front>, mut i: usize) {
    while i > 0 {
        h.swap((i - 1) / 2, i);
        i = (i - 1) / 2;
    }
    let last = h.len() - 1;
    h.swap(0, last);
    h.pop();
    sift_down(h, 0);
}

/// Reads a Go execution trace: an iterator of events in Go's order, ending at the first
/// error (after which it yields nothing).
pub struct Reader<'a> {
    input: &'a [u8],
    pos: usize,
    format: Format,
    opts: Options,
    last_ts: i64,
    gn: Option<Generation<'a>>,
    /// One per thread of the generation (by its slot in `batches`).
    cursors: Vec<Cursor>,
    /// The heap of threads with events left.
    frontier: Vec<Front>,
    cpu: VecDeque<CpuSample>,
    order: Ordering,
    syncs: u64,
    done: bool,
    spill: Option<(u64, Batch<'a>)>,
    /// An error to report after a last sync.
    pending: Option<Error>,
    /// The event [`Reader::next_event`] lends.
    cur: Event,
    pending_synced: bool,
    /// `SyncPlacement::GenerationEnd`: whether this generation's sync was emitted.
    emitted_sync: bool,
}

impl<'a> Reader<'a> {
    /// A reader with default [`Options`].
    pub fn new(input: &'a [u8]) -> Result<Reader<'a>, Error> {
        Reader::with_options(input, Options::default())
    }

    /// A reader; fails at once if the header is not one of a supported version.
    pub fn with_options(input: &'a [u8], opts: Options) -> Result<Reader<'a>, Error> {
        let minor = wire::read_header(input)?;
        let Some(format) = Format::from_minor(minor) else {
            let message = if minor <= 21 {
                format!(
                    "trace format of Go 1.{minor} is not supported: gocost reads the traces of Go 1.22 and later (record the trace with a newer Go)"
                )
            } else {
                format!(
                    "unknown trace version go 1.{minor}: gocost reads go 1.22, 1.23, 1.25 and 1.26 traces (Go 1.22–1.27)"
                )
            };
            return Err(Error {
                kind: ErrorKind::UnsupportedVersion { go_minor: minor },
                offset: Some(0),
                message,
            });
        };
        if input.len() > opts.limits.max_trace_bytes {
            return Err(Error::at(
                ErrorKind::TooLarge,
                opts.limits.max_trace_bytes,
                format!(
                    "trace is {} bytes, over the limit of {}",
                    input.len(),
                    opts.limits.max_trace_bytes
                ),
            ));
        }
        Ok(Reader {
            input,
            pos: wire::HEADER_LEN,
            format,
            opts,
            last_ts: 0,
            gn: None,
            cursors: Vec::new(),
            frontier: Vec::new(),
            cpu: VecDeque::new(),
            order: Ordering::default(),
            syncs: 0,
            done: false,
            spill: None,
            pending: None,
            cur: Event {
                typ: EV_SYNC_EVENT,
                time: 0,
                ctx: Ctx::NONE,
                args: [0; MAX_ARGS],
                table: None,
                extra: None,
            },
            pending_synced: false,
            emitted_sync: true,
        })
    }

    /// The trace's format version.
    pub fn format(&self) -> Format {
        self.format
    }

    fn sync_event(&mut self, table: Option<Arc<Table>>, time: i64) -> Event {
        self.syncs += 1;
        Event {
            typ: EV_SYNC_EVENT,
            time,
            ctx: Ctx::NONE,
            args: [self.syncs, 0, 0, 0],
            table,
            extra: None,
        }
    }

    /// Reads the next generation (formats before Go 1.26: a generation ends where a batch
    /// of the next one begins; from Go 1.26: at `EndOfGeneration`). `Ok(None)` at the end.
    /// A read error after a generation began returns that (partial) generation, and the
    /// error is reported after its events.
    fn read_generation(&mut self) -> Result<Option<Generation<'a>>, Error> {
        let max = self.opts.limits.max_generation_bytes;
        let mut builder: Option<Builder<'a>> = None;
        if let Some((gn, b)) = self.spill.take() {
            let mut bl = Builder::new(gn);
            bl.add(b, self.format, max)?;
            builder = Some(bl);
        }
        loop {
            let at = self.pos;
            let read = match wire::read_batch(self.input, &mut self.pos, self.format) {
                Ok(r) => r,
                Err(e) if !self.format.has_end_of_generation() && builder.is_some() => {
                    // Go keeps the events read so far and reports the error after them.
                    self.pending = Some(e);
                    self.pos = self.input.len();
                    break;
                }
                Err(e) => return Err(e),
            };
            match read {
                Read::Eof => {
                    if self.format.has_end_of_generation() {
                        if builder.as_ref().is_some_and(|b| b.has_event_batches()) {
                            return Err(Error::at(
                                ErrorKind::Truncated,
                                at,
                                "incomplete generation found; trace likely truncated",
                            ));
                        }
                        return Ok(None);
                    }
                    break;
                }
                Read::EndOfGeneration => {
                    if builder.is_none() {
                        // Go takes the generation number 0 here and then finds no frequency.
                        builder = Some(Builder::new(0));
                    }
                    break;
                }
                Read::Batch(gn, b) => {
                    if gn == 0 {
                        return Err(Error::at(
                            ErrorKind::Malformed,
                            at + 1,
                            "invalid generation number 0",
                        ));
                    }
                    match &mut builder {
                        None => builder = Some(Builder::new(gn)),
                        Some(bl) if bl.gn == gn => {}
                        Some(bl)
                            if !self.format.has_end_of_generation()
                                && gn == bl.gn.wrapping_add(1) =>
                        {
                            self.spill = Some((gn, b));
                            break;
                        }
                        Some(_) if self.format.has_end_of_generation() => {
                            return Err(Error::at(
                                ErrorKind::Inconsistent,
                                at,
                                "broken trace: missing end-of-generation event, or generations are interleaved",
                            ));
                        }
                        Some(_) => {
                            return Err(Error::at(
                                ErrorKind::Inconsistent,
                                at,
                                "generations out of order",
                            ));
                        }
                    }
                    if let Some(bl) = &mut builder {
                        bl.add(b, self.format, max)?;
                    }
                }
            }
        }
        let Some(bl) = builder else {
            // No batch at all after the header (formats before Go 1.26): Go reports a
            // missing frequency.
            return Err(Error::at(
                ErrorKind::Truncated,
                self.pos,
                "no frequency event found (empty trace)",
            ));
        };
        bl.finish(self.format, self.pos).map(Some)
    }

    fn install(&mut self, gn: Generation<'a>) -> Result<(), Error> {
        self.cpu = gn.cpu_samples.iter().copied().collect();
        self.cursors.clear();
        for (slot, (m, batches)) in gn.batches.iter().enumerate() {
            let mut c = Cursor {
                m: *m,
                mslot: self.order.thread_slot(*m),
                slot,
                last_ts: 0,
                idx: 0,
                off: 0,
                ev: Base::default(),
            };
            if c.next(batches, gn.table.freq, self.format)? {
                self.frontier.push(Front {
                    time: c.ev.time,
                    slot,
                });
                let i = self.frontier.len() - 1;
                sift_up(&mut self.frontier, i);
            }
            self.cursors.push(c);
        }
        self.gn = Some(gn);
        Ok(())
    }

    fn advance(&mut self, i: usize) -> Result<bool, Error> {
        let Some(gn) = &self.gn else { return Ok(false) };
        let c = &mut self.cursors[self.frontier[i].slot];
        if !self
            .order
            .advance(&mut c.ev, &gn.table, c.m, c.mslot, gn.gn)?
        {
            return Ok(false);
        }
        if c.next(&gn.batches[c.slot].1, gn.table.freq, self.format)? {
            self.frontier[i].time = c.ev.time;
            heap_update(&mut self.frontier, i);
        } else {
            heap_remove(&mut self.frontier, i);
        }
        Ok(true)
    }

    fn cpu_event(&self, s: CpuSample) -> Event {
        Event {
            typ: EV_CPU_SAMPLE,
            time: s.time,
            ctx: Ctx {
                g: s.g,
                p: s.p,
                m: s.m,
            },
            args: [s.stack, 0, 0, 0],
            table: self.gn.as_ref().map(|g| g.table.clone()),
            extra: None,
        }
    }

    /// The next event before clamping: queued by the ordering, made here (syncs, CPU
    /// samples), or the end.
    fn read_event(&mut self) -> Result<Next, Error> {
        if !self.order.queue.is_empty() {
            return Ok(Next::Queued);
        }
        if self.frontier.is_empty() && self.cpu.is_empty() {
            if self.opts.syncs == SyncPlacement::GenerationEnd {
                if !self.emitted_sync {
                    self.emitted_sync = true;
                    let table = self.gn.as_ref().map(|g| g.table.clone());
                    return Ok(Next::Made(self.sync_event(table, self.last_ts)));
                }
                if let Some(e) = self.pending.take() {
                    return Err(e);
                }
                if self.gn.is_some() && self.spill.is_none() {
                    return Ok(Next::End);
                }
                let Some(gn) = self.read_generation()? else {
                    return Ok(Next::End);
                };
                self.install(gn)?;
                self.emitted_sync = false;
            } else {
                if let Some(e) = self.pending.take() {
                    if self.pending_synced {
                        return Err(e);
                    }
                    self.pending_synced = true;
                    self.pending = Some(e);
                    return Ok(Next::Made(self.sync_event(None, self.last_ts)));
                }
                if !self.format.has_end_of_generation() && self.gn.is_some() && self.spill.is_none()
                {
                    self.done = true;
                    return Ok(Next::Made(self.sync_event(None, self.last_ts)));
                }
                match self.read_generation() {
                    Ok(Some(gn)) => {
                        self.install(gn)?;
                        let (table, t) = match &self.gn {
                            Some(g) => (g.table.clone(), g.table.mul(g.min_ts)),
                            None => return Ok(Next::End),
                        };
                        return Ok(Next::Made(self.sync_event(Some(table), t)));
                    }
                    Ok(None) => {
                        self.done = true;
                        return Ok(Next::Made(self.sync_event(None, self.last_ts)));
                    }
                    Err(e) => {
                        // Go emits a last sync before the error.
                        self.gn = None;
                        self.pending = Some(e);
                        self.pending_synced = true;
                        return Ok(Next::Made(self.sync_event(None, self.last_ts)));
                    }
                }
            }
        }
        if let Some(&s) = self.cpu.front()
            && self.frontier.first().is_none_or(|c| s.time < c.time)
        {
            self.cpu.pop_front();
            return Ok(Next::Made(self.cpu_event(s)));
        }
        if self.frontier.is_empty() {
            return Err(Error::order("broken trace: frontier is empty"));
        }
        if !self.advance(0)? {
            // Go sorts the frontier by time (an insertion sort for up to 12 threads, which
            // is stable; a stable sort here for any number) and tries the others in order.
            self.frontier.sort_by_key(|c| c.time);
            let mut ok = false;
            for i in 1..self.frontier.len() {
                if self.advance(i)? {
                    ok = true;
                    break;
                }
            }
            if !ok {
                let gn = self.gn.as_ref().map_or(0, |g| g.gn);
                let mut msg = format!(
                    "broken trace: failed to advance: no thread's next event can happen (generation {gn}); frontier:"
                );
                for f in &self.frontier {
                    let c = &self.cursors[f.slot];
                    msg.push_str(&format!(
                        " [M {} {} time={}]",
                        c.m,
                        name(c.ev.typ),
                        c.ev.time
                    ));
                }
                return Err(Error::order(msg));
            }
        }
        if self.order.queue.is_empty() {
            return Err(Error::order(
                "internal error: advance succeeded but produced no event",
            ));
        }
        Ok(Next::Queued)
    }

    fn validate(&self, ev: &Event) -> Result<(), Error> {
        if ev.typ == EV_SYNC_EVENT {
            return Ok(());
        }
        let Some(table) = ev.table.as_deref() else {
            return Ok(());
        };
        if ev.typ == EV_CPU_SAMPLE {
            if table.stack(ev.args[0]).is_none() {
                return Err(Error::order(format!(
                    "found invalid stack ID {} for event CPUSample",
                    ev.args[0]
                )));
            }
            return Ok(());
        }
        let Some(sp) = spec(ev.typ) else {
            return Ok(());
        };
        for &i in sp.stack_ids {
            let id = ev.args[i - 1];
            if table.stack(id).is_none() {
                return Err(Error::order(format!(
                    "found invalid stack ID {id} for event {}",
                    sp.name
                )));
            }
        }
        for &i in sp.string_ids {
            let id = ev.args[i - 1];
            if table.string(id).is_none() {
                return Err(Error::order(format!(
                    "found invalid string ID {id} for event {}",
                    sp.name
                )));
            }
        }
        Ok(())
    }
}

impl Reader<'_> {
    /// The next event, lent: the reader keeps it, so nothing is copied out or reference
    /// counted per event (the fast way to stream a trace; [`Iterator::next`] clones it).
    /// `None` at the end; after an error, nothing more.
    pub fn next_event(&mut self) -> Option<Result<&Event, Error>> {
        if self.done {
            return None;
        }
        match self.step() {
            Ok(true) => Some(Ok(&self.cur)),
            Ok(false) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }

    /// Reads the next event into `cur`; false at the end.
    fn step(&mut self) -> Result<bool, Error> {
        match self.read_event()? {
            Next::Queued => {
                let Some(ev) = self.order.queue.pop_front() else {
                    return Err(Error::order("internal error: no queued event"));
                };
                // Field by field, so that `cur` keeps its table (the generation's, unless a
                // new generation began): no reference count per event.
                let Event {
                    typ,
                    time,
                    ctx,
                    args,
                    table: _,
                    extra,
                } = ev;
                let c = &mut self.cur;
                c.typ = typ;
                c.time = time;
                c.ctx = ctx;
                c.args = args;
                c.extra = extra;
                let table = self.gn.as_ref().map(|g| &g.table);
                let same = match (&c.table, table) {
                    (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                    (None, None) => true,
                    _ => false,
                };
                if !same {
                    c.table = table.cloned();
                }
            }
            Next::Made(ev) => self.cur = ev,
            Next::End => return Ok(false),
        }
        self.validate(&self.cur)?;
        let ev = &mut self.cur;
        if ev.time <= self.last_ts {
            ev.time = self.last_ts.wrapping_add(1);
        }
        if !(0..=MAX_TIME).contains(&ev.time) {
            // Real clocks are nowhere near this (2^61 ns is 73 years); refusing it keeps
            // every time difference and sum an analysis makes in range.
            return Err(Error::order(format!(
                "broken trace: {} event at time {} ns, outside 0..2^61",
                name(ev.typ),
                ev.time
            )));
        }
        self.last_ts = ev.time;
        Ok(true)
    }
}

impl Iterator for Reader<'_> {
    type Item = Result<Event, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_event().map(|r| r.cloned())
    }
}
