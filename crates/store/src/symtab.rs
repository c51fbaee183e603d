//! One service's symbols, deduplicated across all its profiles in a block: strings,
//! mappings, functions, locations, and call stacks as a prefix tree. Profiles are stored as
//! columns that point into these tables (`docs/format/block.md`).

use std::hash::Hash;
use std::sync::Arc;

use gocost_pprof::{
    Function, HeaderOf, Label, LabelValue, Line, Location, Mapping, MergeHeader, Profile, Sample,
    Samples, Str, ValueType, merge_header,
};
use rustc_hash::FxHashMap;

use crate::codec::{CodecError, R, W};

#[derive(Clone, PartialEq, Eq, Hash)]
struct MappingRow {
    memory_start: u64,
    memory_limit: u64,
    file_offset: u64,
    filename: u32,
    build_id: u32,
    flags: u8,
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct FunctionRow {
    name: u32,
    system_name: u32,
    filename: u32,
    start_line: i64,
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct LocationRow {
    /// 0 = none, else mapping row + 1.
    mapping: u32,
    address: u64,
    is_folded: bool,
    /// (function row, line, column)
    lines: Vec<(u32, i64, i64)>,
}

/// Memory a row holds outside the table (for the head's memory bound).
trait RowHeap {
    fn heap(&self) -> usize {
        0
    }
}

impl RowHeap for Str {
    fn heap(&self) -> usize {
        self.len() + 16
    }
}
impl RowHeap for MappingRow {}
impl RowHeap for FunctionRow {}
impl RowHeap for LocationRow {}
impl RowHeap for (u32, u32) {}

/// A table that hands out a dense index per distinct row.
struct Table<T> {
    rows: Vec<T>,
    index: FxHashMap<T, u32>,
    /// The rows' [`RowHeap::heap`], summed as they come and go.
    heap: usize,
}

impl<T: Clone + Eq + Hash> Default for Table<T> {
    fn default() -> Self {
        Table {
            rows: Vec::new(),
            index: FxHashMap::default(),
            heap: 0,
        }
    }
}

impl<T: Clone + Eq + Hash + RowHeap> Table<T> {
    /// Drops the rows from `n` on.
    fn truncate(&mut self, n: usize) {
        for row in self.rows.drain(n.min(self.rows.len())..) {
            self.heap -= row.heap();
            self.index.remove(&row);
        }
    }

    fn intern(&mut self, row: T) -> u32 {
        if let Some(&i) = self.index.get(&row) {
            return i;
        }
        let i = self.rows.len() as u32;
        self.heap += row.heap();
        self.rows.push(row.clone());
        self.index.insert(row, i);
        i
    }
}

/// What one whole stack takes in `stack_memo`: its rows, the box, the node and a control byte.
fn memo_heap(rows: &[u32]) -> usize {
    rows.len() * 4 + 16 + 4 + 1
}

/// The symbol tables of one group, built up as profiles are added.
pub struct SymTabBuilder {
    strings: Table<Str>,
    mappings: Table<MappingRow>,
    functions: Table<FunctionRow>,
    locations: Table<LocationRow>,
    /// Stack tree nodes (parent node, location row); node 0 is the root (empty stack), so
    /// node `i` ≥ 1 is row `i - 1`.
    stacks: Table<(u32, u32)>,
    /// Whole stacks (location rows, root first) → node.
    stack_memo: FxHashMap<Box<[u32]>, u32>,
    /// What `stack_memo`'s entries take, kept as they come and go.
    stack_memo_heap: usize,
    /// (mapping row, address, is_folded) → location row.
    addr_memo: FxHashMap<(u32, u64, bool), u32>,
    /// The last [`SymTabBuilder::snapshot`], extended by the next one.
    snap: Option<Arc<SymTab>>,
}

impl Default for SymTabBuilder {
    /// Empty tables but for string 0, which is always "".
    fn default() -> Self {
        let mut b = SymTabBuilder {
            strings: Table::default(),
            mappings: Table::default(),
            functions: Table::default(),
            locations: Table::default(),
            stacks: Table::default(),
            stack_memo: FxHashMap::default(),
            stack_memo_heap: 0,
            addr_memo: FxHashMap::default(),
            snap: None,
        };
        b.strings.intern(Str::from(""));
        b
    }
}

impl<T> Table<T> {
    /// About what the rows and their index take: each row twice (the list and the map's
    /// key), a map slot's index and control byte, growth room, and what rows hold outside.
    fn approx_bytes(&self) -> usize {
        self.heap
            + self.rows.capacity() * std::mem::size_of::<T>()
            + self.index.capacity() * (std::mem::size_of::<T>() + 5)
    }
}

impl SymTabBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// About how much memory the tables take (for the head's memory bound): the tables,
    /// the strings' bytes and the memos, whole stacks included. Kept as rows come and go:
    /// `Store::stats` asks for it on every call.
    pub fn approx_bytes(&self) -> usize {
        self.strings.approx_bytes()
            + self.mappings.approx_bytes()
            + self.functions.approx_bytes()
            + self.locations.approx_bytes()
            + self.stacks.approx_bytes()
            + self.stack_memo_heap
            + self.addr_memo.capacity() * (std::mem::size_of::<((u32, u64, bool), u32)>() + 1)
    }

    fn s(&mut self, s: &Str) -> u32 {
        self.strings.intern(s.clone())
    }

    fn vt(&mut self, v: &ValueType) -> (u64, u64) {
        (self.s(&v.r#type).into(), self.s(&v.unit).into())
    }

    /// Encodes `p` against these tables (adding what is new).
    pub fn encode_profile(&mut self, p: &Profile, time_ns: i64) -> Vec<u8> {
        self.encode_samples(p, &p.sample[..], time_ns)
    }

    /// [`encode_profile`](SymTabBuilder::encode_profile) of `p` with `samples` for its
    /// samples (a flat decode's: each numbered label set is encoded once).
    pub fn encode_samples(
        &mut self,
        p: &Profile,
        samples: &(impl Samples + ?Sized),
        time_ns: i64,
    ) -> Vec<u8> {
        // All mappings, in order: pprof's report header names the first one's file.
        let maps: Vec<u32> = p
            .mapping
            .iter()
            .map(|mp| {
                let row = MappingRow {
                    memory_start: mp.memory_start,
                    memory_limit: mp.memory_limit,
                    file_offset: mp.file_offset,
                    filename: self.s(&mp.filename),
                    build_id: self.s(&mp.build_id),
                    flags: u8::from(mp.has_functions)
                        | u8::from(mp.has_filenames) << 1
                        | u8::from(mp.has_line_numbers) << 2
                        | u8::from(mp.has_inline_frames) << 3,
                };
                self.mappings.intern(row)
            })
            .collect();
        let head = Header {
            time_nanos: p.time_nanos,
            duration_nanos: p.duration_nanos,
            period_type: self.vt(&p.period_type),
            period: p.period,
            sample_types: p.sample_type.iter().map(|v| self.vt(v)).collect(),
            strs: [
                &p.default_sample_type,
                &p.drop_frames,
                &p.keep_frames,
                &p.doc_url,
            ]
            .map(|x| self.s(x).into()),
            comments: p.comments.iter().map(|c| self.s(c).into()).collect(),
            mappings: maps.iter().map(|&m| m.into()).collect(),
        };
        let mut w = W::default();
        w.i(time_ns);
        head.write(&mut w);
        // Rows of this profile's functions and locations, interned on first use.
        let mut funcs: Vec<Option<u32>> = vec![None; p.function.len()];
        let mut locs: Vec<Option<u32>> = vec![None; p.location.len()];
        let mut nodes: Vec<u64> = Vec::with_capacity(samples.len());
        let mut rows: Vec<u32> = Vec::new();
        for i in 0..samples.len() {
            let s = samples.get(i);
            rows.clear();
            for &l in s.location.iter().rev() {
                let row = match locs.get(l as usize).copied().flatten() {
                    Some(r) => r,
                    None => {
                        let r = self.location_of(p, l as usize, &maps, &mut funcs);
                        if let Some(slot) = locs.get_mut(l as usize) {
                            *slot = Some(r);
                        }
                        r
                    }
                };
                rows.push(row);
            }
            // Whole stacks repeat from profile to profile: one lookup instead of one per
            // frame.
            let node = match self.stack_memo.get(rows.as_slice()) {
                Some(&n) => n,
                None => {
                    let mut node = 0u32;
                    for &row in &rows {
                        node = self.stacks.intern((node, row)) + 1;
                    }
                    self.stack_memo_heap += memo_heap(&rows);
                    self.stack_memo.insert(rows.as_slice().into(), node);
                    node
                }
            };
            nodes.push(node.into());
        }
        // Label sets: a numbered one is encoded once (its strings interned then); all are
        // stored once per profile by content.
        let mut sets = SetTable::default();
        let mut of_number: Vec<Option<u32>> = vec![None; samples.label_sets()];
        let mut scratch = W::default();
        for i in 0..samples.len() {
            let s = samples.get(i);
            let slot = s.label_set.and_then(|id| of_number.get_mut(id as usize));
            if let Some(&Some(set)) = slot.as_deref() {
                sets.push_number(set);
                continue;
            }
            scratch.0.clear();
            self.encode_labels(&mut scratch, s.label);
            let set = sets.push(&scratch.0);
            if let Some(slot) = slot {
                *slot = Some(set);
            }
        }
        let nst = p.sample_type.len();
        write_samples(
            &mut w,
            &nodes,
            nst,
            |i, k| samples.get(i).value.get(k).copied().unwrap_or(0),
            &sets,
        );
        w.0
    }

    /// A sample's labels: their count, then each key, kind and value (strings interned).
    fn encode_labels(&mut self, w: &mut W, label: &[Label]) {
        w.u(label.len() as u64);
        for l in label {
            let k = self.s(&l.key);
            w.u(k.into());
            match &l.value {
                LabelValue::Str(v) => {
                    w.u(0);
                    let v = self.s(v);
                    w.u(v.into());
                }
                LabelValue::Num { value, unit } => {
                    w.u(1);
                    w.i(*value);
                    let u = self.s(unit);
                    w.u(u.into());
                }
            }
        }
    }

    /// The row of `p`'s location `l`. Within one mapping (same binary, same load address,
    /// same symbolization flags) an address always means the same location, so known
    /// addresses skip building the row.
    fn location_of(
        &mut self,
        p: &Profile,
        l: usize,
        maps: &[u32],
        funcs: &mut [Option<u32>],
    ) -> u32 {
        let key = p.location.get(l).and_then(|loc| {
            let m = *maps.get(loc.mapping? as usize)?;
            (loc.address != 0).then_some((m, loc.address, loc.is_folded))
        });
        if let Some(&r) = key.as_ref().and_then(|k| self.addr_memo.get(k)) {
            return r;
        }
        let r = self.location_row(p, l, maps, funcs);
        if let Some(k) = key {
            self.addr_memo.insert(k, r);
        }
        r
    }

    fn location_row(
        &mut self,
        p: &Profile,
        l: usize,
        maps: &[u32],
        funcs: &mut [Option<u32>],
    ) -> u32 {
        let Some(loc) = p.location.get(l) else {
            return self.locations.intern(LocationRow {
                mapping: 0,
                address: 0,
                is_folded: false,
                lines: Vec::new(),
            });
        };
        let mapping = loc
            .mapping
            .and_then(|m| maps.get(m as usize).copied())
            .map_or(0, |r| r + 1);
        let mut lines = Vec::with_capacity(loc.line.len());
        for ln in &loc.line {
            let f = ln.function as usize;
            let fr = match funcs.get(f).copied().flatten() {
                Some(r) => r,
                None => {
                    let row = match p.function.get(f) {
                        Some(func) => FunctionRow {
                            name: self.s(&func.name),
                            system_name: self.s(&func.system_name),
                            filename: self.s(&func.filename),
                            start_line: func.start_line,
                        },
                        None => FunctionRow {
                            name: 0,
                            system_name: 0,
                            filename: 0,
                            start_line: 0,
                        },
                    };
                    let r = self.functions.intern(row);
                    if let Some(slot) = funcs.get_mut(f) {
                        *slot = Some(r);
                    }
                    r
                }
            };
            lines.push((fr, ln.line, ln.column));
        }
        self.locations.intern(LocationRow {
            mapping,
            address: loc.address,
            is_folded: loc.is_folded,
            lines,
        })
    }

    /// The tables as they are now, to rebuild the profiles encoded so far without writing
    /// and decoding them (queries of the head). The tables only grow, so the last snapshot
    /// is kept and extended: a snapshot costs the rows added since the previous one (a
    /// copy of them all while a query still holds the previous one).
    pub fn snapshot(&mut self) -> Arc<SymTab> {
        let mut t = self.snap.take().unwrap_or_default();
        if t.strings.len() < self.strings.rows.len()
            || t.mappings.len() < self.mappings.rows.len()
            || t.functions.len() < self.functions.rows.len()
            || t.locations.len() < self.locations.rows.len()
            || t.stacks.len() < self.stacks.rows.len()
        {
            self.extend(Arc::make_mut(&mut t));
        }
        self.snap = Some(t.clone());
        t
    }

    /// Appends the rows `t` lacks.
    fn extend(&self, t: &mut SymTab) {
        let str = |i: u32| self.strings.rows[i as usize].clone();
        t.strings
            .extend_from_slice(&self.strings.rows[t.strings.len()..]);
        for (i, m) in self.mappings.rows.iter().enumerate().skip(t.mappings.len()) {
            t.mappings.push(mapping(
                i,
                [m.memory_start, m.memory_limit, m.file_offset],
                str(m.filename),
                str(m.build_id),
                m.flags.into(),
            ));
        }
        for (i, f) in self
            .functions
            .rows
            .iter()
            .enumerate()
            .skip(t.functions.len())
        {
            t.functions.push(Function {
                id: i as u64 + 1,
                name: str(f.name),
                system_name: str(f.system_name),
                filename: str(f.filename),
                start_line: f.start_line,
            });
        }
        for (i, l) in self
            .locations
            .rows
            .iter()
            .enumerate()
            .skip(t.locations.len())
        {
            let line = l
                .lines
                .iter()
                .map(|&(function, line, column)| Line {
                    function,
                    line,
                    column,
                })
                .collect();
            t.locations
                .push((l.mapping, location(i, l.address, l.is_folded, line)));
        }
        t.stacks
            .extend_from_slice(&self.stacks.rows[t.stacks.len()..]);
    }

    /// The tables as a section body.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = W::default();
        self.write_rows(&mut w, &Lens::default());
        w.0
    }

    /// How many rows each table holds: where the next profile's new rows start.
    pub fn lens(&self) -> Lens {
        Lens {
            strings: self.strings.rows.len(),
            mappings: self.mappings.rows.len(),
            functions: self.functions.rows.len(),
            locations: self.locations.rows.len(),
            stacks: self.stacks.rows.len(),
        }
    }

    /// The rows added since `from` (a WAL record's symbols: [`apply`](Self::apply) adds
    /// them to a builder that holds exactly the rows before them).
    pub fn encode_since(&self, from: &Lens) -> Vec<u8> {
        let mut w = W::default();
        for n in from.as_array() {
            w.u(n as u64);
        }
        self.write_rows(&mut w, from);
        w.0
    }

    /// Adds the rows of an [`encode_since`](Self::encode_since): they must start where
    /// these tables end, and be new.
    pub fn apply(&mut self, delta: &[u8]) -> Result<(), CodecError> {
        let mut r = R::new(delta);
        for have in self.lens().as_array() {
            if r.u()? != have as u64 {
                return Err(r.err("symbols do not continue the segment's tables"));
            }
        }
        let fresh = |r: &R<'_>, i: u32, want: usize| {
            if i as usize == want {
                Ok(())
            } else {
                Err(r.err("a symbol row repeats"))
            }
        };
        for _ in 0..r.len()? {
            let s = Str::from(r.str()?);
            let want = self.strings.rows.len();
            fresh(&r, self.strings.intern(s), want)?;
        }
        for _ in 0..r.len()? {
            let ns = self.strings.rows.len();
            let row = MappingRow {
                memory_start: r.u()?,
                memory_limit: r.u()?,
                file_offset: r.u()?,
                filename: r.idx(ns)?,
                build_id: r.idx(ns)?,
                flags: u8::try_from(r.u()?).map_err(|_| r.err("mapping flags out of range"))?,
            };
            let want = self.mappings.rows.len();
            fresh(&r, self.mappings.intern(row), want)?;
        }
        for _ in 0..r.len()? {
            let ns = self.strings.rows.len();
            let row = FunctionRow {
                name: r.idx(ns)?,
                system_name: r.idx(ns)?,
                filename: r.idx(ns)?,
                start_line: r.i()?,
            };
            let want = self.functions.rows.len();
            fresh(&r, self.functions.intern(row), want)?;
        }
        for _ in 0..r.len()? {
            let mapping = r.idx(self.mappings.rows.len() + 1)?;
            let address = r.u()?;
            let is_folded = r.u()? != 0;
            let n = r.len()?;
            let mut lines = Vec::with_capacity(n);
            for _ in 0..n {
                lines.push((r.idx(self.functions.rows.len())?, r.i()?, r.i()?));
            }
            let row = LocationRow {
                mapping,
                address,
                is_folded,
                lines,
            };
            let want = self.locations.rows.len();
            fresh(&r, self.locations.intern(row), want)?;
        }
        for _ in 0..r.len()? {
            // A parent always precedes its child: node i + 1 has a parent ≤ i.
            let parent = r.idx(self.stacks.rows.len() + 1)?;
            let loc = r.idx(self.locations.rows.len())?;
            let want = self.stacks.rows.len();
            fresh(&r, self.stacks.intern((parent, loc)), want)?;
        }
        if !r.done() {
            return Err(r.err("trailing bytes after the symbols"));
        }
        Ok(())
    }

    /// Drops the rows added since `to` (a WAL write that failed: its record is gone).
    pub fn truncate(&mut self, to: &Lens) {
        self.strings.truncate(to.strings);
        self.mappings.truncate(to.mappings);
        self.functions.truncate(to.functions);
        self.locations.truncate(to.locations);
        self.stacks.truncate(to.stacks);
        self.stack_memo.retain(|_, n| (*n as usize) <= to.stacks);
        self.stack_memo_heap = self.stack_memo.keys().map(|k| memo_heap(k)).sum();
        self.addr_memo.retain(|_, r| (*r as usize) < to.locations);
        if self.snap.as_ref().is_some_and(|t| {
            t.strings.len() > to.strings
                || t.mappings.len() > to.mappings
                || t.functions.len() > to.functions
                || t.locations.len() > to.locations
                || t.stacks.len() > to.stacks
        }) {
            self.snap = None;
        }
    }

    /// Each table's count and its rows from `from` on.
    fn write_rows(&self, w: &mut W, from: &Lens) {
        let rows = |n: usize, at: usize| n.saturating_sub(at);
        w.u(rows(self.strings.rows.len(), from.strings) as u64);
        for s in self.strings.rows.iter().skip(from.strings) {
            w.bytes(s.as_bytes());
        }
        w.u(rows(self.mappings.rows.len(), from.mappings) as u64);
        for m in self.mappings.rows.iter().skip(from.mappings) {
            w.u(m.memory_start);
            w.u(m.memory_limit);
            w.u(m.file_offset);
            w.u(m.filename.into());
            w.u(m.build_id.into());
            w.u(m.flags.into());
        }
        w.u(rows(self.functions.rows.len(), from.functions) as u64);
        for f in self.functions.rows.iter().skip(from.functions) {
            w.u(f.name.into());
            w.u(f.system_name.into());
            w.u(f.filename.into());
            w.i(f.start_line);
        }
        w.u(rows(self.locations.rows.len(), from.locations) as u64);
        for l in self.locations.rows.iter().skip(from.locations) {
            w.u(l.mapping.into());
            w.u(l.address);
            w.u(l.is_folded.into());
            w.u(l.lines.len() as u64);
            for &(f, line, col) in &l.lines {
                w.u(f.into());
                w.i(line);
                w.i(col);
            }
        }
        w.u(rows(self.stacks.rows.len(), from.stacks) as u64);
        for &(parent, loc) in self.stacks.rows.iter().skip(from.stacks) {
            w.u(parent.into());
            w.u(loc.into());
        }
    }
}

/// Row counts of a [`SymTabBuilder`]'s tables.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Lens {
    strings: usize,
    mappings: usize,
    functions: usize,
    locations: usize,
    stacks: usize,
}

impl Lens {
    /// Checks that an encoded profile parses and points only at rows tables of these lengths hold (a
    /// profile read back from the WAL before its block takes it).
    pub fn check(&self, b: &[u8]) -> Result<(), CodecError> {
        let s = parse_stored(b)?;
        let ns = self.strings as u64;
        let out = |what| CodecError { offset: 0, what };
        let h = &s.head;
        let strs = [h.period_type.0, h.period_type.1]
            .into_iter()
            .chain(h.sample_types.iter().flat_map(|&(t, u)| [t, u]))
            .chain(h.strs)
            .chain(h.comments.iter().copied());
        if strs.into_iter().any(|i| i >= ns) {
            return Err(out("string index out of range"));
        }
        if h.mappings.iter().any(|&m| m >= self.mappings as u64) {
            return Err(out("mapping index out of range"));
        }
        if s.nodes.iter().any(|&n| n > self.stacks as u64) {
            return Err(out("stack index out of range"));
        }
        for l in &s.labels {
            let mut r = R::new(l);
            for _ in 0..r.len()? {
                let key = r.u()?;
                let val = match r.u()? {
                    0 => r.u()?,
                    _ => {
                        r.i()?;
                        r.u()?
                    }
                };
                if key >= ns || val >= ns {
                    return Err(out("string index out of range"));
                }
            }
        }
        Ok(())
    }

    fn as_array(&self) -> [usize; 5] {
        [
            self.strings,
            self.mappings,
            self.functions,
            self.locations,
            self.stacks,
        ]
    }
}

/// Decoded symbol tables of one group, ready to rebuild profiles.
#[derive(Clone, Default)]
pub struct SymTab {
    strings: Vec<Str>,
    mappings: Vec<Mapping>,
    functions: Vec<Function>,
    /// Locations with `mapping` holding a mapping row + 1 (0 = none) and line functions
    /// holding function rows; remapped per rebuilt profile.
    locations: Vec<(u32, Location)>,
    stacks: Vec<(u32, u32)>,
}

impl SymTab {
    pub fn decode(b: &[u8]) -> Result<SymTab, CodecError> {
        let mut r = R::new(b);
        let n = r.len()?;
        let mut strings = Vec::with_capacity(n);
        for _ in 0..n {
            strings.push(Str::from(r.str()?));
        }
        let ns = strings.len();
        let n = r.len()?;
        let mut mappings = Vec::with_capacity(n);
        for i in 0..n {
            let (memory_start, memory_limit, file_offset) = (r.u()?, r.u()?, r.u()?);
            let filename = strings[r.idx(ns)? as usize].clone();
            let build_id = strings[r.idx(ns)? as usize].clone();
            let flags = r.u()?;
            mappings.push(mapping(
                i,
                [memory_start, memory_limit, file_offset],
                filename,
                build_id,
                flags,
            ));
        }
        let n = r.len()?;
        let mut functions = Vec::with_capacity(n);
        for i in 0..n {
            let name = strings[r.idx(ns)? as usize].clone();
            let system_name = strings[r.idx(ns)? as usize].clone();
            let filename = strings[r.idx(ns)? as usize].clone();
            functions.push(Function {
                id: i as u64 + 1,
                name,
                system_name,
                filename,
                start_line: r.i()?,
            });
        }
        let n = r.len()?;
        let mut locations = Vec::with_capacity(n);
        for i in 0..n {
            let mapping = r.idx(mappings.len() + 1)?;
            let address = r.u()?;
            let is_folded = r.u()? != 0;
            let nl = r.len()?;
            let mut line = Vec::with_capacity(nl);
            for _ in 0..nl {
                line.push(Line {
                    function: r.idx(functions.len())?,
                    line: r.i()?,
                    column: r.i()?,
                });
            }
            locations.push((mapping, location(i, address, is_folded, line)));
        }
        let n = r.len()?;
        let mut stacks = Vec::with_capacity(n);
        for i in 0..n {
            // A parent always precedes its child: node i + 1 has a parent ≤ i.
            let parent = r.idx(i + 1)?;
            let loc = r.idx(locations.len())?;
            stacks.push((parent, loc));
        }
        if !r.done() {
            return Err(r.err("trailing bytes after the symbol tables"));
        }
        Ok(SymTab {
            strings,
            mappings,
            functions,
            locations,
            stacks,
        })
    }

    /// About how many bytes of memory the decoded tables hold (what a cache of them
    /// counts).
    pub fn heap_bytes(&self) -> usize {
        use std::mem::size_of;
        // Each heap block: its bytes and the allocator's bookkeeping, about 16 bytes.
        let strings: usize = self.strings.iter().map(|s| s.len() + 32).sum();
        let lines: usize = self
            .locations
            .iter()
            .map(|(_, l)| l.line.capacity() * size_of::<Line>() + 16)
            .sum();
        self.strings.capacity() * size_of::<Str>()
            + strings
            + self.mappings.capacity() * size_of::<Mapping>()
            + self.functions.capacity() * size_of::<Function>()
            + self.locations.capacity() * size_of::<(u32, Location)>()
            + lines
            + self.stacks.capacity() * size_of::<(u32, u32)>()
    }

    fn str(&self, id: u64) -> Result<Str, CodecError> {
        self.strings.get(id as usize).cloned().ok_or(CodecError {
            offset: 0,
            what: "string index out of range",
        })
    }

    fn value_type(&self, (t, u): (u64, u64)) -> Result<ValueType, CodecError> {
        Ok(ValueType {
            r#type: self.str(t)?,
            unit: self.str(u)?,
        })
    }

    /// Decodes one sample's encoded labels.
    fn labels(&self, b: &[u8]) -> Result<Vec<Label>, CodecError> {
        let mut r = R::new(b);
        let n = r.len()?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let key = self.str(r.u()?)?;
            let value = match r.u()? {
                0 => LabelValue::Str(self.str(r.u()?)?),
                _ => {
                    let value = r.i()?;
                    LabelValue::Num {
                        value,
                        unit: self.str(r.u()?)?,
                    }
                }
            };
            out.push(Label { key, value });
        }
        Ok(out)
    }

    /// Rebuilds a stored profile, with only the symbols its samples use.
    pub fn profile(&self, b: &[u8], labels: bool) -> Result<Profile, CodecError> {
        let s = parse_stored(b)?;
        let (mut p, mut map_map) = self.header(&s.head)?;
        self.add_samples(&mut p, &mut map_map, &s, labels)?;
        Ok(p)
    }

    /// A stored profile's header with one sample, stackless, holding the profile's total per
    /// sample type: what a timeline needs, without rebuilding stacks.
    pub fn totals(&self, b: &[u8]) -> Result<Profile, CodecError> {
        let s = parse_stored(b)?;
        let (mut p, _) = self.header(&s.head)?;
        let nst = s.head.sample_types.len();
        let mut value = vec![0i64; nst];
        for row in s.values.chunks_exact(nst.max(1)) {
            for (a, b) in value.iter_mut().zip(row) {
                *a = a.wrapping_add(*b);
            }
        }
        p.sample.push(Sample {
            location: Vec::new(),
            value,
            label: Vec::new(),
        });
        Ok(p)
    }

    /// A profile with a stored header's fields and mappings, no samples yet; and the
    /// mapping rows (+ 1) it holds → their index in it.
    fn header(&self, h: &Header) -> Result<(Profile, FxHashMap<u32, u32>), CodecError> {
        let mut p = Profile {
            time_nanos: h.time_nanos,
            duration_nanos: h.duration_nanos,
            period_type: self.value_type(h.period_type)?,
            period: h.period,
            default_sample_type: self.str(h.strs[0])?,
            drop_frames: self.str(h.strs[1])?,
            keep_frames: self.str(h.strs[2])?,
            doc_url: self.str(h.strs[3])?,
            ..Default::default()
        };
        for &vt in &h.sample_types {
            p.sample_type.push(self.value_type(vt)?);
        }
        for &c in &h.comments {
            p.comments.push(self.str(c)?);
        }
        let mut map_map: FxHashMap<u32, u32> = FxHashMap::default();
        for &row in &h.mappings {
            let Some(m) = self.mappings.get(row as usize) else {
                return Err(CodecError {
                    offset: 0,
                    what: "mapping index out of range",
                });
            };
            let mut m = m.clone();
            m.id = p.mapping.len() as u64 + 1;
            map_map
                .entry(row as u32 + 1)
                .or_insert(p.mapping.len() as u32);
            p.mapping.push(m);
        }
        Ok((p, map_map))
    }

    /// Adds a stored profile's samples (and the locations and functions they use) to `p`,
    /// made by [`SymTab::header`] with `map_map`.
    fn add_samples(
        &self,
        p: &mut Profile,
        map_map: &mut FxHashMap<u32, u32>,
        s: &Stored<'_>,
        labels: bool,
    ) -> Result<(), CodecError> {
        let nst = s.head.sample_types.len();
        // Table row → index in `p` (`UNMAPPED`: not yet in it), dense: a sample's stack walk
        // looks up every frame, and a hash lookup per frame was most of the rebuild.
        let mut loc_map: Vec<u32> = vec![UNMAPPED; self.locations.len()];
        let mut fn_map: Vec<u32> = vec![UNMAPPED; self.functions.len()];
        p.sample = Vec::with_capacity(s.nodes.len());
        let mut scratch = Vec::new();
        for (i, (&node, &lb)) in s.nodes.iter().zip(&s.labels).enumerate() {
            if node > self.stacks.len() as u64 {
                return Err(CodecError {
                    offset: 0,
                    what: "stack node out of range",
                });
            }
            let mut node = node as u32;
            // Walked into a scratch vector, then copied once at its length: growing each
            // sample's own vector frame by frame reallocated it several times.
            let location = &mut scratch;
            location.clear();
            while node != 0 {
                let (parent, row) = self.stacks[node as usize - 1];
                let Some(&mapped) = loc_map.get(row as usize) else {
                    return Err(CodecError {
                        offset: 0,
                        what: "location index out of range",
                    });
                };
                let idx = match mapped {
                    UNMAPPED => {
                        let i = self.add_location(p, row, &mut fn_map, map_map)?;
                        loc_map[row as usize] = i;
                        i
                    }
                    i => i,
                };
                location.push(idx);
                node = parent;
            }
            p.sample.push(Sample {
                location: location.clone(),
                value: s.values[i * nst..(i + 1) * nst].to_vec(),
                label: if labels { self.labels(lb)? } else { Vec::new() },
            });
        }
        Ok(())
    }

    fn add_location(
        &self,
        p: &mut Profile,
        row: u32,
        fn_map: &mut [u32],
        map_map: &mut FxHashMap<u32, u32>,
    ) -> Result<u32, CodecError> {
        let (mrow, src) = &self.locations[row as usize];
        let mut loc = src.clone();
        loc.id = p.location.len() as u64 + 1;
        if *mrow != 0 {
            let m = *map_map.entry(*mrow).or_insert_with(|| {
                let mut m = self.mappings[*mrow as usize - 1].clone();
                m.id = p.mapping.len() as u64 + 1;
                p.mapping.push(m);
                p.mapping.len() as u32 - 1
            });
            loc.mapping = Some(m);
        }
        for ln in &mut loc.line {
            let (Some(slot), Some(f)) = (
                fn_map.get_mut(ln.function as usize),
                self.functions.get(ln.function as usize),
            ) else {
                return Err(CodecError {
                    offset: 0,
                    what: "function index out of range",
                });
            };
            if *slot == UNMAPPED {
                let mut f = f.clone();
                f.id = p.function.len() as u64 + 1;
                p.function.push(f);
                *slot = p.function.len() as u32 - 1;
            }
            ln.function = *slot;
        }
        p.location.push(loc);
        Ok(p.location.len() as u32 - 1)
    }
}

/// A table row not yet given an index in the profile being rebuilt.
const UNMAPPED: u32 = u32::MAX;

/// Mapping row `i` as a profile's mapping (`flags` as [`SymTabBuilder::encode`] writes them).
fn mapping(
    i: usize,
    [start, limit, offset]: [u64; 3],
    filename: Str,
    build_id: Str,
    flags: u64,
) -> Mapping {
    Mapping {
        id: i as u64 + 1,
        memory_start: start,
        memory_limit: limit,
        file_offset: offset,
        filename,
        build_id,
        has_functions: flags & 1 != 0,
        has_filenames: flags & 2 != 0,
        has_line_numbers: flags & 4 != 0,
        has_inline_frames: flags & 8 != 0,
    }
}

/// Location row `i`, its mapping set per rebuilt profile.
fn location(i: usize, address: u64, is_folded: bool, line: Vec<Line>) -> Location {
    Location {
        id: i as u64 + 1,
        mapping: None,
        address,
        line,
        is_folded,
    }
}

/// A stored profile's header with its strings and mappings as table ids. Layout in
/// `docs/format/block.md` ("A stored profile"); this is its one reader and writer.
#[derive(Clone, Default, PartialEq)]
struct Header {
    time_nanos: i64,
    duration_nanos: i64,
    period_type: (u64, u64),
    period: i64,
    sample_types: Vec<(u64, u64)>,
    /// default_sample_type, drop_frames, keep_frames, doc_url
    strs: [u64; 4],
    comments: Vec<u64>,
    mappings: Vec<u64>,
}

impl Header {
    fn write(&self, w: &mut W) {
        w.i(self.time_nanos);
        w.i(self.duration_nanos);
        w.u(self.period_type.0);
        w.u(self.period_type.1);
        w.i(self.period);
        w.u(self.sample_types.len() as u64);
        for &(t, u) in &self.sample_types {
            w.u(t);
            w.u(u);
        }
        for s in self.strs {
            w.u(s);
        }
        w.u(self.comments.len() as u64);
        for &c in &self.comments {
            w.u(c);
        }
        w.u(self.mappings.len() as u64);
        for &m in &self.mappings {
            w.u(m);
        }
    }

    fn read(r: &mut R) -> Result<Header, CodecError> {
        let (time_nanos, duration_nanos) = (r.i()?, r.i()?);
        let period_type = (r.u()?, r.u()?);
        let period = r.i()?;
        let n = r.len()?;
        let mut sample_types = Vec::with_capacity(n);
        for _ in 0..n {
            sample_types.push((r.u()?, r.u()?));
        }
        let strs = [r.u()?, r.u()?, r.u()?, r.u()?];
        let n = r.len()?;
        let mut comments = Vec::with_capacity(n);
        for _ in 0..n {
            comments.push(r.u()?);
        }
        let n = r.len()?;
        let mut mappings = Vec::with_capacity(n);
        for _ in 0..n {
            mappings.push(r.u()?);
        }
        Ok(Header {
            time_nanos,
            duration_nanos,
            period_type,
            period,
            sample_types,
            strs,
            comments,
            mappings,
        })
    }
}

/// pprof's header merge over string ids (id 0 is ""): the rollup's header is merged by the
/// same code as `Merger`'s.
impl MergeHeader for Header {
    type Str = u64;
    fn time_nanos(&mut self) -> &mut i64 {
        &mut self.time_nanos
    }
    fn duration_nanos(&mut self) -> &mut i64 {
        &mut self.duration_nanos
    }
    fn period(&mut self) -> &mut i64 {
        &mut self.period
    }
    fn default_sample_type(&mut self) -> &mut u64 {
        &mut self.strs[0]
    }
    fn doc_url(&mut self) -> &mut u64 {
        &mut self.strs[3]
    }
    fn has_comment(&self, c: &u64) -> bool {
        self.comments.contains(c)
    }
    fn push_comment(&mut self, c: u64) {
        self.comments.push(c);
    }
}

/// A stored profile read back without its symbols: the header, and samples as stack
/// nodes, values (`sample_types` per sample) and the encoded bytes of each one's labels.
struct Stored<'a> {
    head: Header,
    nodes: Vec<u64>,
    values: Vec<i64>,
    labels: Vec<&'a [u8]>,
}

/// The ingest time of a stored profile (its first field).
pub fn stored_time(b: &[u8]) -> Result<i64, CodecError> {
    R::new(b).i()
}

/// Marks a stored profile's samples as encoding 2 (values in columns, label sets once):
/// written, after a sample count of 0, where encoding 1 has its sample count.
const SAMPLES_COLUMNS: u64 = 2;

/// One profile's distinct label sets, encoded, in first-use order, and each sample's, in
/// sample order.
#[derive(Default)]
struct SetTable {
    bytes: Vec<u8>,
    index: FxHashMap<Box<[u8]>, u32>,
    of_sample: Vec<u32>,
}

impl SetTable {
    /// The next sample's labels, encoded as `set` (added if new); returns the set's number.
    fn push(&mut self, set: &[u8]) -> u32 {
        let id = match self.index.get(set) {
            Some(&id) => id,
            None => {
                let id = self.index.len() as u32;
                self.index.insert(set.into(), id);
                self.bytes.extend_from_slice(set);
                id
            }
        };
        self.of_sample.push(id);
        id
    }

    /// The next sample's labels: set `id`, which an earlier [`SetTable::push`] returned.
    fn push_number(&mut self, id: u32) {
        self.of_sample.push(id);
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Writes a stored profile's samples after its header (docs/format/block.md, "A stored
/// profile"): stack nodes, then each sample type's values divided by their greatest common
/// divisor (a CPU profile's nanoseconds become its counts), then the label sets and each
/// sample's. A profile without samples is written as encoding 1 (a count of 0).
fn write_samples(
    w: &mut W,
    nodes: &[u64],
    nst: usize,
    value: impl Fn(usize, usize) -> i64,
    sets: &SetTable,
) {
    let n = nodes.len();
    w.u(0);
    if n == 0 {
        return;
    }
    w.u(SAMPLES_COLUMNS);
    w.u(n as u64);
    for &node in nodes {
        w.u(node);
    }
    for k in 0..nst {
        let mut g = 0u64;
        for i in 0..n {
            g = gcd(g, value(i, k).unsigned_abs());
            if g == 1 {
                break;
            }
        }
        let scale = if g == 0 || g > i64::MAX as u64 {
            1
        } else {
            g as i64
        };
        w.u(scale as u64);
        for i in 0..n {
            w.i(value(i, k) / scale);
        }
    }
    w.u(sets.index.len() as u64);
    w.0.extend_from_slice(&sets.bytes);
    if sets.index.len() > 1 {
        for &set in &sets.of_sample {
            w.u(set.into());
        }
    }
}

/// Reads past one encoded label set.
fn skip_label_set(r: &mut R) -> Result<(), CodecError> {
    let nl = r.len()?;
    for _ in 0..nl {
        r.u()?;
        match r.u()? {
            0 => {
                r.u()?;
            }
            1 => {
                r.i()?;
                r.u()?;
            }
            _ => return Err(r.err("unknown label kind")),
        }
    }
    Ok(())
}

fn parse_stored(b: &[u8]) -> Result<Stored<'_>, CodecError> {
    let mut r = R::new(b);
    r.i()?; // ingest time
    let head = Header::read(&mut r)?;
    let nst = head.sample_types.len();
    let mut ns = r.len()?;
    // Encoding 2 follows a count of 0 (an encoding-1 profile without samples ends there).
    let columns = ns == 0 && !r.done();
    if columns {
        if r.u()? != SAMPLES_COLUMNS {
            return Err(r.err("unknown sample encoding"));
        }
        ns = r.len()?;
    }
    let mut nodes = Vec::with_capacity(ns);
    for _ in 0..ns {
        nodes.push(r.u()?);
    }
    // Each value takes at least a byte.
    if (ns as u64).saturating_mul(nst as u64) > (b.len() - r.off.min(b.len())) as u64 {
        return Err(r.err("sample count exceeds the section"));
    }
    let mut labels = Vec::with_capacity(ns);
    let values = if columns {
        let mut values = vec![0i64; ns * nst];
        for k in 0..nst {
            let scale = r.u()?;
            if scale == 0 || scale > i64::MAX as u64 {
                return Err(r.err("bad value scale"));
            }
            for i in 0..ns {
                values[i * nst + k] = r
                    .i()?
                    .checked_mul(scale as i64)
                    .ok_or_else(|| r.err("value overflows"))?;
            }
        }
        let nsets = r.len()?;
        if nsets == 0 && ns > 0 {
            return Err(r.err("samples without a label set"));
        }
        let mut sets = Vec::with_capacity(nsets);
        for _ in 0..nsets {
            let start = r.off;
            skip_label_set(&mut r)?;
            sets.push(&b[start..r.off]);
        }
        for _ in 0..ns {
            let i = if nsets > 1 { r.idx(nsets)? as usize } else { 0 };
            labels.push(sets[i]);
        }
        values
    } else {
        let mut values = Vec::with_capacity(ns * nst);
        for _ in 0..ns * nst {
            values.push(r.i()?);
        }
        for _ in 0..ns {
            let start = r.off;
            skip_label_set(&mut r)?;
            labels.push(&b[start..r.off]);
        }
        values
    };
    if !r.done() {
        return Err(r.err("trailing bytes after a profile"));
    }
    Ok(Stored {
        head,
        nodes,
        values,
        labels,
    })
}

/// Merges stored profiles of one series into a rollup without rebuilding them: samples
/// with the same stack node and labels are summed, the header is merged by pprof's own
/// rules (`gocost_pprof::merge_header`, the code `Merger` uses), with the first profile's
/// drop/keep frames and mappings. This is finer than pprof's sample identity, never
/// coarser, and queries merge rollups with pprof's rules, so answers are the same as
/// merging the profiles themselves.
#[derive(Default)]
pub struct RollupAcc {
    count: u64,
    head: Header,
    /// Hash of (stack node, label bytes) → the last index into `samples` with that hash;
    /// `chain[i]`: the one before `i` with the same hash (`u32::MAX`: none).
    index: FxHashMap<u64, u32>,
    chain: Vec<u32>,
    /// (stack node, label bytes: empty without labels) per summed sample.
    samples: Vec<(u64, Vec<u8>)>,
    /// Their values, `sample_types` per sample.
    values: Vec<i64>,
    /// Sample or period types changed within the bucket: no rollup (queries use the
    /// profiles).
    incompatible: bool,
    /// Sum samples by stack alone, their labels dropped ([`RollupAcc::without_labels`]).
    no_labels: bool,
}

/// A sample's labels when there are none: a count of 0.
const NO_LABELS: &[u8] = &[0];

impl RollupAcc {
    /// An accumulator that sums samples by stack alone and drops their labels, for
    /// answers that never show them: on labelled profiles, far fewer samples.
    pub fn without_labels() -> RollupAcc {
        RollupAcc {
            no_labels: true,
            ..RollupAcc::default()
        }
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// Adds a stored rollup of `n` profiles (as [`RollupAcc::finish`] wrote it): the same
    /// as adding those profiles.
    pub fn add_n(&mut self, b: &[u8], n: u64) -> Result<(), CodecError> {
        self.add(b)?;
        self.count += n.saturating_sub(1);
        Ok(())
    }

    /// Counts `n` profiles whose types differ within them: no rollup.
    pub fn poison(&mut self, n: u64) {
        self.count += n;
        self.incompatible = true;
    }

    /// Adds one stored profile (as written by [`SymTabBuilder::encode_profile`]).
    /// Under a server query's budget and cancellation flag (`gocost_pprof::cancel`), the
    /// summed samples count as nodes and each profile is a checkpoint.
    pub fn add(&mut self, b: &[u8]) -> Result<(), CodecError> {
        gocost_pprof::cancel::checkpoint();
        let s = parse_stored(b)?;
        self.count += 1;
        let (h, o) = (&mut self.head, &s.head);
        if self.count == 1 {
            h.period_type = o.period_type;
            h.sample_types = o.sample_types.clone();
            h.strs[1] = o.strs[1];
            h.strs[2] = o.strs[2];
            h.mappings = o.mappings.clone();
        } else if o.period_type != h.period_type || o.sample_types != h.sample_types {
            self.incompatible = true;
        }
        if self.incompatible {
            return Ok(());
        }
        merge_header(
            h,
            HeaderOf {
                time_nanos: o.time_nanos,
                duration_nanos: o.duration_nanos,
                period: o.period,
                comments: &o.comments,
                default_sample_type: &o.strs[0],
                doc_url: &o.strs[3],
            },
        );
        let nst = o.sample_types.len();
        if self.samples.is_empty() {
            // Most of a series' stacks recur in every profile: room for about as many again.
            self.samples.reserve(s.nodes.len());
            self.chain.reserve(s.nodes.len());
            self.values.reserve(s.values.len());
            self.index.reserve(s.nodes.len());
        }
        for (i, (&node, &labels)) in s.nodes.iter().zip(&s.labels).enumerate() {
            let v = &s.values[i * nst..(i + 1) * nst];
            if v.iter().all(|&x| x == 0) {
                continue;
            }
            let labels: &[u8] = if self.no_labels { &[] } else { labels };
            let hash = {
                use std::hash::{BuildHasher, Hasher};
                let mut hs = rustc_hash::FxBuildHasher.build_hasher();
                hs.write_u64(node);
                if !self.no_labels {
                    hs.write(labels);
                }
                hs.finish()
            };
            let next = self.samples.len() as u32;
            let last = *self.index.entry(hash).or_insert(u32::MAX);
            let mut j = last;
            while j != u32::MAX {
                let (n, l) = &self.samples[j as usize];
                if *n == node && l.as_slice() == labels {
                    break;
                }
                j = self.chain[j as usize];
            }
            if j != u32::MAX {
                let at = j as usize * nst;
                for (a, b) in self.values[at..at + nst].iter_mut().zip(v) {
                    *a = a.wrapping_add(*b);
                }
            } else {
                gocost_pprof::cancel::nodes(self.samples.len() + 1);
                self.index.insert(hash, next);
                self.chain.push(last);
                self.samples.push((node, labels.to_vec()));
                self.values.extend_from_slice(v);
            }
        }
        Ok(())
    }

    /// The rollup as a stored profile at `start`; `None` if it needs none (one profile) or
    /// cannot be made (types changed).
    pub fn finish(self, start: i64) -> Option<Vec<u8>> {
        if self.count < 2 || self.incompatible {
            return None;
        }
        let mut w = W::default();
        w.i(start);
        self.head.write(&mut w);
        let nst = self.head.sample_types.len();
        let samples: Vec<_> = self
            .samples
            .iter()
            .zip(self.values.chunks_exact(nst.max(1)))
            .filter(|(_, v)| v.iter().any(|&v| v != 0))
            .collect();
        let nodes: Vec<u64> = samples.iter().map(|(s, _)| s.0).collect();
        let mut sets = SetTable::default();
        for (s, _) in &samples {
            sets.push(if self.no_labels { NO_LABELS } else { &s.1 });
        }
        write_samples(&mut w, &nodes, nst, |i, k| samples[i].1[k], &sets);
        Some(w.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(
        time: i64,
        dur: i64,
        period: i64,
        comments: &[&str],
        default: &str,
        doc: &str,
    ) -> Profile {
        let f = Function {
            id: 1,
            name: "main.work".into(),
            ..Default::default()
        };
        Profile {
            sample_type: vec![ValueType::new("samples", "count")],
            period_type: ValueType::new("cpu", "nanoseconds"),
            period,
            time_nanos: time,
            duration_nanos: dur,
            comments: comments.iter().map(|c| Str::from(*c)).collect(),
            default_sample_type: default.into(),
            doc_url: doc.into(),
            drop_frames: "runtime\\..*".into(),
            function: vec![f],
            location: vec![Location {
                id: 1,
                line: vec![Line {
                    function: 0,
                    line: 7,
                    column: 0,
                }],
                ..Default::default()
            }],
            sample: vec![Sample {
                location: vec![0],
                value: vec![dur / 1000],
                label: Vec::new(),
            }],
            ..Default::default()
        }
    }

    /// A rollup's header must be what pprof's merge of its profiles has: if the store ever
    /// grows its own copy of the rules again and it drifts, this fails.
    #[test]
    fn rollup_header_is_pprofs_merge_header() {
        let cases: Vec<Vec<Profile>> = vec![
            vec![
                profile(0, 10_000, 100, &["b", "a"], "", ""),
                profile(5_000, 20_000, 300, &["a", "c"], "samples", "https://x"),
                profile(3_000, 30_000, 200, &["c", "d", "b"], "other", "https://y"),
            ],
            vec![
                profile(9_000, 1_000, 0, &[], "samples", ""),
                profile(0, 2_000, 50, &["z"], "", "https://doc"),
                profile(7_000, i64::MAX, 10, &["z", "y"], "", ""),
            ],
        ];
        for ps in cases {
            let mut b = SymTabBuilder::new();
            let mut acc = RollupAcc::default();
            for (i, p) in ps.iter().enumerate() {
                acc.add(&b.encode_profile(p, 1_000 + i as i64)).unwrap();
            }
            let bytes = acc.finish(0).expect("a rollup of several profiles");
            let tab = SymTab::decode(&b.encode()).unwrap();
            let got = tab.profile(&bytes, true).unwrap();
            let want = gocost_pprof::merge(ps).unwrap();
            let header = |p: &Profile| {
                (
                    p.time_nanos,
                    p.duration_nanos,
                    p.period,
                    p.comments.clone(),
                    p.default_sample_type.clone(),
                    p.doc_url.clone(),
                    p.drop_frames.clone(),
                    p.period_type.clone(),
                    p.sample_type.clone(),
                )
            };
            assert_eq!(header(&got), header(&want));
        }
    }

    fn real(name: &str) -> Profile {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../testdata/profiles")
            .join(name);
        gocost_pprof::decode(&std::fs::read(&p).unwrap()).unwrap()
    }

    /// A flat decode (what `Store::append` stores) encodes to the same bytes and the same
    /// tables as the model's decode, profile after profile (labels included: the goroutine
    /// and CPU profiles of the corpus carry pprof labels).
    #[test]
    fn flat_samples_encode_as_the_model_does() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/profiles");
        let mut names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "gz"))
            .collect();
        names.sort();
        assert!(names.len() >= 10);
        let (mut model, mut flat) = (SymTabBuilder::new(), SymTabBuilder::new());
        let opts = gocost_pprof::DecodeOptions::default();
        for (i, path) in names.iter().enumerate() {
            let bytes = std::fs::read(path).unwrap();
            let p = gocost_pprof::decode(&bytes).unwrap();
            let (q, samples) = gocost_pprof::decode_flat_with(&bytes, &opts).unwrap();
            let want = model.encode_profile(&p, i as i64);
            let got = flat.encode_samples(&q, &samples, i as i64);
            assert_eq!(got, want, "{}", path.display());
            assert_eq!(flat.lens(), model.lens(), "{}", path.display());
        }
    }

    /// The same samples in encoding 1 (values row by row, each sample's labels in full), as
    /// blocks and WAL segments written before encoding 2 hold them.
    fn as_encoding_1(b: &[u8]) -> Vec<u8> {
        let s = parse_stored(b).unwrap();
        let mut w = W::default();
        w.i(stored_time(b).unwrap());
        s.head.write(&mut w);
        w.u(s.nodes.len() as u64);
        for &n in &s.nodes {
            w.u(n);
        }
        for &v in &s.values {
            w.i(v);
        }
        for l in &s.labels {
            w.0.extend_from_slice(l);
        }
        w.0
    }

    /// Profiles stored in encoding 1 read back as they did: the same profiles and rollups
    /// as the same samples in encoding 2, which is smaller. Values whose common divisor is
    /// not 1 (negative ones, zero columns, the extremes) come back exact.
    #[test]
    fn encoding_1_reads_as_encoding_2() {
        let mut ps: Vec<Profile> = ["cpu.pb.gz", "heap.pb.gz", "goroutine.pb.gz", "cpu2.pb.gz"]
            .map(real)
            .into();
        let mut odd = profile(1, 2, 10, &[], "", "");
        odd.sample_type.push(ValueType::new("space", "bytes"));
        odd.sample_type.push(ValueType::new("min", "count"));
        odd.sample_type.push(ValueType::new("zero", "count"));
        let s = odd.sample[0].clone();
        odd.sample = [
            (-20, i64::MIN, 0),
            (30, 0, i64::MIN),
            (0, i64::MAX, 0),
            (50, -4, 0),
        ]
        .map(|(a, b, c)| Sample {
            value: vec![a, b, c, 0],
            ..s.clone()
        })
        .into();
        ps.push(odd);
        let mut b = SymTabBuilder::new();
        let (mut acc1, mut acc2) = (RollupAcc::default(), RollupAcc::default());
        let mut stored = Vec::new();
        for (i, p) in ps.iter().enumerate() {
            let v2 = b.encode_profile(p, i as i64);
            let v1 = as_encoding_1(&v2);
            if p.sample.len() >= 100 {
                assert!(v2.len() < v1.len(), "{i}: {} vs {}", v2.len(), v1.len());
            }
            b.lens().check(&v1).unwrap();
            acc1.add(&v1).unwrap();
            acc2.add(&v2).unwrap();
            stored.push((v1, v2));
        }
        let tab = SymTab::decode(&b.encode()).unwrap();
        for (i, (v1, v2)) in stored.iter().enumerate() {
            let got = tab.profile(v1, true).unwrap();
            assert_eq!(got, tab.profile(v2, true).unwrap(), "{i}");
            let want = &ps[i];
            assert_eq!(got.sample.len(), want.sample.len());
            for (g, w) in got.sample.iter().zip(&want.sample) {
                assert_eq!(g.value, w.value, "{i}");
                assert_eq!(g.label, w.label, "{i}");
            }
        }
        // Mixed types poison both rollups alike; the CPU ones sum alike.
        assert_eq!(acc1.finish(0), acc2.finish(0));
        let (mut acc1, mut acc2) = (RollupAcc::default(), RollupAcc::default());
        for i in [0, 3, 0] {
            acc1.add(&stored[i].0).unwrap();
            acc2.add(&stored[i].1).unwrap();
        }
        let (r1, r2) = (acc1.finish(0).unwrap(), acc2.finish(0).unwrap());
        assert_eq!(
            tab.profile(&r1, true).unwrap(),
            tab.profile(&r2, true).unwrap()
        );
    }

    /// What the WAL does: each profile's record carries the rows it added; a builder that
    /// applies them in order ends with the same tables and reads every profile back. A
    /// write that fails takes its rows out again, and what follows still lines up.
    #[test]
    fn deltas_rebuild_the_tables_and_a_failed_write_is_taken_back() {
        let ps = [
            real("cpu.pb.gz"),
            real("cpu2.pb.gz"),
            real("heap.pb.gz"),
            real("cpu.pb.gz"),
        ];
        let mut a = SymTabBuilder::new();
        let mut b = SymTabBuilder::new();
        let mut stored = Vec::new();
        for (i, p) in ps.iter().enumerate() {
            let lens = a.lens();
            // A write of `heap` fails first: its rows are dropped, then it is written again.
            if i == 2 {
                let _ = a.encode_profile(p, 1);
                assert_ne!(a.lens(), lens);
                a.truncate(&lens);
                assert_eq!(a.lens(), lens);
            }
            let enc = a.encode_profile(p, i as i64);
            let delta = a.encode_since(&lens);
            b.apply(&delta).unwrap();
            assert_eq!(b.lens(), a.lens());
            a.lens().check(&enc).unwrap();
            stored.push(enc);
        }
        assert_eq!(a.encode(), b.encode());
        // A profile that adds nothing carries an empty delta.
        let before = b.lens();
        b.apply(&a.encode_since(&a.lens())).unwrap();
        assert_eq!(b.lens(), before);
        let tab = b.snapshot();
        for (p, enc) in ps.iter().zip(&stored) {
            let got = tab.profile(enc, true).unwrap();
            assert_eq!(got.sample.len(), p.sample.len());
            let total = |p: &Profile| p.sample.iter().map(|s| s.value[0]).sum::<i64>();
            assert_eq!(total(&got), total(p));
        }
        // A delta applied out of order, twice, or damaged is refused.
        let mut c = SymTabBuilder::new();
        let first = {
            let mut x = SymTabBuilder::new();
            let l = x.lens();
            x.encode_profile(&ps[0], 0);
            x.encode_since(&l)
        };
        c.apply(&first).unwrap();
        assert!(c.apply(&first).is_err());
        let mut d = SymTabBuilder::new();
        assert!(d.apply(&first[..first.len() - 1]).is_err());
        // An encoded profile that points past the tables is caught before a block takes it.
        assert!(Lens::default().check(&stored[0]).is_err());
    }
}
