//! Bytes → batches → generations: the header, varints, batch headers, and the per-generation
//! tables (strings, stacks, frames, CPU samples, the clock).

use std::sync::Arc;

use crate::error::{Error, ErrorKind};
use crate::ids::IdVec;
use crate::spec::*;

/// `go 1.N trace` followed by NULs to 16 bytes.
pub(crate) const HEADER_LEN: usize = 16;

/// Reads the header; returns the `N` of `go 1.N trace`.
pub(crate) fn read_header(b: &[u8]) -> Result<u32, Error> {
    let not_trace = || {
        Error::at(
            ErrorKind::NotATrace,
            0,
            "bad file format: not a Go execution trace (no \"go 1.N trace\" header)",
        )
    };
    let rest = b.strip_prefix(b"go 1.").ok_or_else(not_trace)?;
    let digits = rest.iter().take_while(|c| c.is_ascii_digit()).count();
    if digits == 0 || digits > 4 {
        return Err(not_trace());
    }
    let minor: u32 = std::str::from_utf8(&rest[..digits])
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(not_trace)?;
    let tail = &rest[digits..];
    if !tail.starts_with(b" trace") {
        return Err(not_trace());
    }
    // Go writes exactly 16 bytes: "go 1.NN trace" padded with NULs.
    let used = 5 + digits + 6;
    if b.len() < HEADER_LEN || b[used..HEADER_LEN].iter().any(|&c| c != 0) {
        return Err(Error::at(
            ErrorKind::NotATrace,
            used,
            "bad file format: header is not NUL-padded to 16 bytes",
        ));
    }
    Ok(minor)
}

/// A little-endian base-128 varint (Go's `binary.Uvarint`): at most 10 bytes.
#[inline]
pub(crate) fn uvarint(b: &[u8], pos: &mut usize) -> Option<u64> {
    // Most values (deltas, small ids) fit in one byte.
    let c = *b.get(*pos)?;
    if c < 0x80 {
        *pos += 1;
        return Some(c as u64);
    }
    uvarint_long(b, pos)
}

#[inline(never)]
fn uvarint_long(b: &[u8], pos: &mut usize) -> Option<u64> {
    let mut x: u64 = 0;
    let mut shift = 0u32;
    for i in 0..10 {
        let c = *b.get(*pos + i)?;
        if c < 0x80 {
            if i == 9 && c > 1 {
                return None;
            }
            *pos += i + 1;
            return Some(x | (c as u64) << shift);
        }
        x |= ((c & 0x7f) as u64) << shift;
        shift += 7;
    }
    None
}

/// One batch: a run of events one thread (M) wrote, or a table section.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Batch<'a> {
    pub m: i64,
    pub time: u64,
    pub data: &'a [u8],
    /// Offset of `data` in the whole trace, for error messages.
    pub offset: usize,
    pub exp: u8,
}

impl Batch<'_> {
    fn first(&self) -> Option<u8> {
        if self.exp != 0 {
            None
        } else {
            self.data.first().copied()
        }
    }
}

/// What reading a batch produced.
pub(crate) enum Read<'a> {
    Eof,
    EndOfGeneration,
    Batch(u64, Batch<'a>),
}

pub(crate) fn read_batch<'a>(
    b: &'a [u8],
    pos: &mut usize,
    format: Format,
) -> Result<Read<'a>, Error> {
    let start = *pos;
    let Some(typ) = b.get(start).map(|&t| EvType::from(t)) else {
        return Ok(Read::Eof);
    };
    *pos += 1;
    if typ == EV_END_OF_GENERATION && format.has_end_of_generation() {
        return Ok(Read::EndOfGeneration);
    }
    if typ != EV_EVENT_BATCH && !(typ == EV_EXPERIMENTAL_BATCH && format.has_experiments()) {
        return Err(Error::at(
            ErrorKind::Malformed,
            start,
            format!("expected batch event, got event {typ}"),
        ));
    }
    let mut exp = 0;
    if typ == EV_EXPERIMENTAL_BATCH {
        exp = *b.get(*pos).ok_or_else(|| {
            Error::at(
                ErrorKind::Truncated,
                *pos,
                "truncated experimental batch header",
            )
        })?;
        *pos += 1;
    }
    let field = |pos: &mut usize, name: &str| {
        let at = *pos;
        uvarint(b, pos).ok_or_else(|| {
            let kind = if at >= b.len() || b[at..].iter().all(|&c| c >= 0x80) && b.len() - at < 10 {
                ErrorKind::Truncated
            } else {
                ErrorKind::Malformed
            };
            Error::at(
                kind,
                at,
                format!("error reading batch {name}: bad or truncated varint"),
            )
        })
    };
    let gn = field(pos, "gen")?;
    let m = field(pos, "M ID")?;
    let time = field(pos, "timestamp")?;
    let size_at = *pos;
    let size = field(pos, "size")?;
    if size > MAX_BATCH_SIZE {
        return Err(Error::at(
            ErrorKind::Malformed,
            size_at,
            format!("invalid batch size {size}, maximum is {MAX_BATCH_SIZE}"),
        ));
    }
    let size = size as usize;
    let data_at = *pos;
    if b.len() - data_at < size {
        return Err(Error::at(
            ErrorKind::Truncated,
            data_at,
            format!(
                "failed to read full batch: read {} but wanted {size}",
                b.len() - data_at
            ),
        ));
    }
    *pos += size;
    Ok(Read::Batch(
        gn,
        Batch {
            m: m as i64,
            time,
            data: &b[data_at..data_at + size],
            offset: data_at,
            exp,
        },
    ))
}

/// One stack frame as the trace records it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RawFrame {
    pub func: u64,
    pub file: u64,
    pub line: u64,
}

/// The clock snapshot of a generation (Go 1.25+).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RawClock {
    pub time: u64,
    pub mono: u64,
    pub sec: u64,
    pub nsec: u64,
}

/// The tables of one generation, shared by its events.
#[derive(Debug, Default)]
pub struct Table {
    pub(crate) strings: IdVec<u64, String>,
    pub(crate) stacks: IdVec<u64, Box<[u64]>>,
    pub(crate) pcs: IdMap<u64, RawFrame>,
    pub(crate) freq: f64,
    pub(crate) clock: Option<RawClock>,
}

impl Table {
    /// String `id`; 0 is the empty string.
    pub(crate) fn string(&self, id: u64) -> Option<&str> {
        if id == 0 {
            Some("")
        } else {
            self.strings.get(id).map(String::as_str)
        }
    }

    /// Stack `id`'s PCs, leaf first; 0 is the empty stack.
    pub(crate) fn stack(&self, id: u64) -> Option<&[u64]> {
        if id == 0 {
            Some(&[])
        } else {
            self.stacks.get(id).map(|s| &s[..])
        }
    }

    /// Converts a raw timestamp to nanoseconds as Go does (float multiply, truncate).
    #[inline]
    pub(crate) fn mul(&self, t: u64) -> i64 {
        mul(self.freq, t)
    }
}

#[inline]
pub(crate) fn mul(freq: f64, t: u64) -> i64 {
    (t as f64 * freq) as i64
}

/// A CPU sample before it becomes an event.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CpuSample {
    pub time: i64,
    pub m: i64,
    pub p: i64,
    pub g: i64,
    pub stack: u64,
}

/// One generation, read whole.
pub(crate) struct Generation<'a> {
    pub gn: u64,
    /// Event batches per M, Ms in the order first seen.
    pub batches: Vec<(i64, Vec<Batch<'a>>)>,
    pub cpu_samples: Vec<CpuSample>,
    pub min_ts: u64,
    pub table: Arc<Table>,
}

/// Accumulates one generation's batches.
pub(crate) struct Builder<'a> {
    pub gn: u64,
    batches: Vec<(i64, Vec<Batch<'a>>)>,
    by_m: IdMap<i64, usize>,
    cpu: Vec<CpuSample>,
    pub min_ts: u64,
    table: Table,
    has_freq: bool,
    bytes: usize,
}

impl<'a> Builder<'a> {
    pub fn new(gn: u64) -> Self {
        Builder {
            gn,
            batches: Vec::new(),
            by_m: IdMap::default(),
            cpu: Vec::new(),
            min_ts: 0,
            table: Table::default(),
            has_freq: false,
            bytes: 0,
        }
    }

    /// Whether an event batch (not a table) was added.
    pub fn has_event_batches(&self) -> bool {
        !self.batches.is_empty()
    }

    pub fn add(
        &mut self,
        b: Batch<'a>,
        format: Format,
        max_generation_bytes: usize,
    ) -> Result<(), Error> {
        if self.min_ts == 0 || b.time < self.min_ts {
            self.min_ts = b.time;
        }
        self.bytes += b.data.len();
        if self.bytes > max_generation_bytes {
            return Err(Error::at(
                ErrorKind::TooLarge,
                b.offset,
                format!(
                    "generation {} is over {max_generation_bytes} bytes",
                    self.gn
                ),
            ));
        }
        let sync_byte = if format.has_sync_batch() {
            EV_SYNC
        } else {
            EV_FREQUENCY
        };
        match b.first().map(EvType::from) {
            Some(EV_STRINGS) => self.add_strings(b),
            Some(EV_STACKS) => self.add_stacks(b),
            Some(EV_CPU_SAMPLES) => self.add_cpu_samples(b),
            Some(t) if t == sync_byte => self.add_sync(b, format),
            _ if b.exp != 0 => Ok(()), // Experimental batches: kept by nobody yet.
            _ => {
                let i = *self.by_m.entry(b.m).or_insert_with(|| {
                    self.batches.push((b.m, Vec::new()));
                    self.batches.len() - 1
                });
                self.batches[i].1.push(b);
                Ok(())
            }
        }
    }

    fn add_strings(&mut self, b: Batch<'a>) -> Result<(), Error> {
        let d = b.data;
        let mut pos = 1;
        while pos < d.len() {
            let at = b.offset + pos;
            if EvType::from(d[pos]) != EV_STRING {
                return Err(Error::at(
                    ErrorKind::Malformed,
                    at,
                    format!("expected string event, got {}", d[pos]),
                ));
            }
            pos += 1;
            let id = field(d, &mut pos, b.offset, "string ID")?;
            let len_at = b.offset + pos;
            let len = field(d, &mut pos, b.offset, "string length")?;
            if len > MAX_STRING_SIZE {
                return Err(Error::at(
                    ErrorKind::Malformed,
                    len_at,
                    format!("invalid string size {len}, maximum is {MAX_STRING_SIZE}"),
                ));
            }
            let len = len as usize;
            if d.len() - pos < len {
                return Err(Error::at(
                    ErrorKind::Truncated,
                    b.offset + pos,
                    format!(
                        "failed to read full string: read {} but wanted {len}",
                        d.len() - pos
                    ),
                ));
            }
            let s = String::from_utf8_lossy(&d[pos..pos + len]).into_owned();
            pos += len;
            if id == 0 || self.table.strings.insert(id, s).is_some() {
                return Err(Error::at(
                    ErrorKind::Malformed,
                    at,
                    format!("multiple strings with the same ID: id={id}"),
                ));
            }
        }
        Ok(())
    }

    fn add_stacks(&mut self, b: Batch<'a>) -> Result<(), Error> {
        let d = b.data;
        let mut pos = 1;
        while pos < d.len() {
            let at = b.offset + pos;
            if EvType::from(d[pos]) != EV_STACK {
                return Err(Error::at(
                    ErrorKind::Malformed,
                    at,
                    format!("expected stack event, got {}", d[pos]),
                ));
            }
            pos += 1;
            let id = field(d, &mut pos, b.offset, "stack ID")?;
            let n_at = b.offset + pos;
            let n = field(d, &mut pos, b.offset, "stack frame count")?;
            if n > MAX_FRAMES_PER_STACK {
                return Err(Error::at(
                    ErrorKind::Malformed,
                    n_at,
                    format!("invalid stack size {n}, maximum is {MAX_FRAMES_PER_STACK}"),
                ));
            }
            let mut pcs = Vec::with_capacity(n as usize);
            for _ in 0..n {
                let pc = field(d, &mut pos, b.offset, "frame PC")?;
                let func = field(d, &mut pos, b.offset, "frame func string ID")?;
                let file = field(d, &mut pos, b.offset, "frame file string ID")?;
                let line = field(d, &mut pos, b.offset, "frame line")?;
                pcs.push(pc);
                self.table
                    .pcs
                    .entry(pc)
                    .or_insert(RawFrame { func, file, line });
            }
            if id == 0
                || self
                    .table
                    .stacks
                    .insert(id, pcs.into_boxed_slice())
                    .is_some()
            {
                return Err(Error::at(
                    ErrorKind::Malformed,
                    at,
                    format!("multiple stacks with the same ID: id={id}"),
                ));
            }
        }
        Ok(())
    }

    fn add_cpu_samples(&mut self, b: Batch<'a>) -> Result<(), Error> {
        let d = b.data;
        let mut pos = 1;
        while pos < d.len() {
            let at = b.offset + pos;
            if EvType::from(d[pos]) != EV_CPU_SAMPLE {
                return Err(Error::at(
                    ErrorKind::Malformed,
                    at,
                    format!("expected CPU sample event, got {}", d[pos]),
                ));
            }
            pos += 1;
            let ts = field(d, &mut pos, b.offset, "CPU sample timestamp")?;
            let m = field(d, &mut pos, b.offset, "CPU sample M ID")?;
            let p = field(d, &mut pos, b.offset, "CPU sample P ID")?;
            let g = field(d, &mut pos, b.offset, "CPU sample goroutine ID")?;
            let stack = field(d, &mut pos, b.offset, "CPU sample stack ID")?;
            let g = if g == 0 { -1 } else { g as i64 };
            self.cpu.push(CpuSample {
                time: ts as i64,
                m: m as i64,
                p: p as i64,
                g,
                stack,
            });
        }
        Ok(())
    }

    fn add_sync(&mut self, b: Batch<'a>, format: Format) -> Result<(), Error> {
        let d = b.data;
        let mut pos = usize::from(format.has_sync_batch());
        let mut last = b.time;
        while pos < d.len() {
            let at = b.offset + pos;
            let t = EvType::from(d[pos]);
            pos += 1;
            match t {
                EV_FREQUENCY => {
                    if self.has_freq {
                        return Err(Error::at(
                            ErrorKind::Malformed,
                            at,
                            "found multiple frequency events",
                        ));
                    }
                    let f = field(d, &mut pos, b.offset, "frequency")?;
                    if f == 0 {
                        return Err(Error::at(ErrorKind::Malformed, at + 1, "frequency is zero"));
                    }
                    self.table.freq = 1.0 / (f as f64 / 1e9);
                    self.has_freq = true;
                }
                EV_CLOCK_SNAPSHOT if format.has_sync_batch() => {
                    if self.table.clock.is_some() {
                        return Err(Error::at(
                            ErrorKind::Malformed,
                            at,
                            "found multiple clock snapshot events",
                        ));
                    }
                    let dt = field(d, &mut pos, b.offset, "clock snapshot timestamp")?;
                    last = last.wrapping_add(dt);
                    let mono = field(d, &mut pos, b.offset, "clock snapshot monotonic time")?;
                    let sec = field(d, &mut pos, b.offset, "clock snapshot wall seconds")?;
                    let nsec = field(d, &mut pos, b.offset, "clock snapshot wall nanoseconds")?;
                    self.table.clock = Some(RawClock {
                        time: last,
                        mono,
                        sec,
                        nsec,
                    });
                }
                _ => {
                    return Err(Error::at(
                        ErrorKind::Malformed,
                        at,
                        format!("expected frequency or clock snapshot event, got {t}"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Checks the generation is complete and returns it.
    pub fn finish(mut self, format: Format, end_offset: usize) -> Result<Generation<'a>, Error> {
        if !self.has_freq {
            return Err(Error::at(
                ErrorKind::Inconsistent,
                end_offset,
                format!("generation {}: no frequency event found", self.gn),
            ));
        }
        if format.has_sync_batch() && self.table.clock.is_none() {
            return Err(Error::at(
                ErrorKind::Inconsistent,
                end_offset,
                format!("generation {}: no clock snapshot event found", self.gn),
            ));
        }
        let t = &self.table;
        let mut ids: Vec<_> = t.stacks.keys().collect();
        ids.sort_unstable();
        for id in ids {
            for pc in t.stacks.get(id).map_or(&[][..], |s| &s[..]) {
                let Some(f) = t.pcs.get(pc) else {
                    return Err(Error::order(format!(
                        "found unknown pc {pc:x} for stack {id}"
                    )));
                };
                if t.string(f.func).is_none() {
                    return Err(Error::order(format!(
                        "found invalid func string ID {} for stack {id}",
                        f.func
                    )));
                }
                if t.string(f.file).is_none() {
                    return Err(Error::order(format!(
                        "found invalid file string ID {} for stack {id}",
                        f.file
                    )));
                }
            }
        }
        let freq = self.table.freq;
        for s in &mut self.cpu {
            s.time = mul(freq, s.time as u64);
        }
        // Stable: samples at the same nanosecond stay in trace order.
        self.cpu.sort_by_key(|s| s.time);
        Ok(Generation {
            gn: self.gn,
            batches: self.batches,
            cpu_samples: self.cpu,
            min_ts: self.min_ts,
            table: Arc::new(self.table),
        })
    }
}

fn field(d: &[u8], pos: &mut usize, base: usize, name: &str) -> Result<u64, Error> {
    let at = *pos;
    uvarint(d, pos).ok_or_else(|| {
        let kind = if d.len() - at < 10 && d[at..].iter().all(|&c| c >= 0x80) {
            ErrorKind::Truncated
        } else {
            ErrorKind::Malformed
        };
        Error::at(
            kind,
            base + at,
            format!("bad or truncated varint in {name}"),
        )
    })
}
