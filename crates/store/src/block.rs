//! Immutable blocks: every profile and metric point of a stretch of time, with symbols
//! deduplicated per service, stacks as a prefix tree, and rollups (pre-merged profiles per
//! hour and per day) for long ranges. Byte layout: `docs/format/block.md`.
//!
//! This module only turns data into bytes and back; [`crate::blobs`] moves the bytes.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::{Read, Write};

use gocost_pprof::Profile;
use serde::{Deserialize, Serialize};

use crate::codec::{CodecError, R, W};
use crate::series::SeriesKey;
pub use crate::symtab::SymTabBuilder;
use crate::symtab::{RollupAcc, SymTab, stored_time};

pub const MAGIC: &[u8; 8] = b"GCBLK001";
pub const FOOTER_MAGIC: &[u8; 8] = b"GCBLKEND";
/// `index_len` u32, `index_crc` u32, magic.
pub const FOOTER_LEN: usize = 16;
pub const VERSION: u32 = 1;
pub const HOUR_NS: i64 = 3600 * 1_000_000_000;
pub const DAY_NS: i64 = 24 * HOUR_NS;
/// The finest rollup step: ten minutes (docs/adr/0026).
pub const FINE_NS: i64 = 10 * 60 * 1_000_000_000;
/// A week's rollup step (weeks run from the epoch: Thursday 00:00 UTC), the longest step of
/// a level-2 block.
pub const WEEK_NS: i64 = 7 * DAY_NS;

/// Which rollups section of a series holds a step's rollups: 0 `rollups` (a day and
/// longer), 1 `hour_rollups`, 2 `fine_rollups` (under an hour). A query reads each only
/// where the ones before leave a whole bucket of its step uncovered.
pub(crate) fn tier(step: i64) -> usize {
    TIER_STEP
        .iter()
        .position(|&s| step >= s)
        .unwrap_or(TIERS - 1)
}

/// Rollup sections, by [`tier`].
pub(crate) const TIERS: usize = 3;

/// The smallest step each [`tier`] holds.
pub(crate) const TIER_STEP: [i64; TIERS] = [DAY_NS, HOUR_NS, FINE_NS];
/// Fewest profiles a rollup of a step under an hour merges: less busy series (scraped every
/// 2.5 min or more rarely) keep only their hourly rollups, at no cost on disk.
pub const MIN_FINE_PROFILES: u64 = 4;
/// The most a section or index may inflate to.
const MAX_SECTION: u64 = 1 << 30;
/// A raw section at least this large (inflated) that spans two hours or more is written in
/// pieces per UTC hour, with a table of them (`raw_hours`, docs/adr/0026).
pub const RAW_SPLIT_MIN: usize = 64 << 10;

/// A malformed block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockError(pub String);

impl fmt::Display for BlockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BlockError {}

fn section_err(what: &str, e: CodecError) -> BlockError {
    BlockError(format!("{what} section: {e}"))
}

/// Where a deflate-compressed section lies in the block file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Section {
    pub offset: u64,
    pub len: u64,
    /// Length after inflating.
    pub raw_len: u64,
    /// CRC-32 (IEEE) of the compressed bytes.
    pub crc: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupMeta {
    /// The services's `job` label ("" when series have none).
    pub name: String,
    pub symbols: Section,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesMeta {
    pub key: String,
    pub group: u32,
    pub profiles: u64,
    pub min_time_ns: i64,
    pub max_time_ns: i64,
    pub raw: Section,
    /// Rollups of a day and longer (in blocks written before `hour_rollups` existed, of an
    /// hour and longer).
    pub rollups: Option<Section>,
    /// Rollups of one hour, kept apart so that ranges of whole days and weeks never read
    /// them; absent in blocks written before, whose `rollups` hold them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hour_rollups: Option<Section>,
    /// Where each UTC day's hourly rollups lie inside `hour_rollups` (the section
    /// compressed with a full flush between days, as `raw` between hours: [`parse_pieces`]).
    /// Absent unless the section spans two days or more (a week block) and is large.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hour_days: Option<Section>,
    /// Rollups of steps under an hour (docs/adr/0026), kept apart so that long ranges never
    /// read them; absent in blocks written before they existed, which readers take as
    /// none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fine_rollups: Option<Section>,
    /// Where each UTC hour's profiles lie inside `raw` (the section compressed with a full
    /// flush between hours, so each inflates alone): [`parse_raw_hours`]. Absent for small
    /// sections and in blocks written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_hours: Option<Section>,
}

impl SeriesMeta {
    /// The series' rollups sections by [`tier`], largest steps first.
    pub fn rollup_sections(&self) -> [Option<&Section>; TIERS] {
        [
            self.rollups.as_ref(),
            self.hour_rollups.as_ref(),
            self.fine_rollups.as_ref(),
        ]
    }
}

/// One UTC hour's piece of a raw section ([`SeriesMeta::raw_hours`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawHour {
    /// The hour's start; its profiles all lie in `[start, start + 1h)`.
    pub start: i64,
    pub profiles: u64,
    /// Where its compressed bytes lie, from the raw section's start.
    pub offset: u64,
    pub len: u64,
    /// Length after inflating.
    pub raw_len: u64,
    /// CRC-32 of the compressed bytes.
    pub crc: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricMeta {
    pub key: String,
    pub points: u64,
    pub min_time_ns: i64,
    pub max_time_ns: i64,
}

/// A block's index: everything needed to plan a query without reading its sections.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlockMeta {
    pub version: u32,
    pub id: String,
    /// 0 = cut from the WAL, 1 = compacted to one UTC day, 2 = to one week ([`WEEK_NS`]).
    pub level: u32,
    pub min_time_ns: i64,
    pub max_time_ns: i64,
    /// Rollup bucket widths, largest last.
    pub steps: Vec<i64>,
    /// WAL segments whose records this block holds (level 0).
    pub sources: Vec<u64>,
    /// Blocks this one replaces (compaction).
    pub replaces: Vec<String>,
    /// Bytes of the profiles as received (for the disk-per-raw-byte ratio).
    pub ingested_bytes: u64,
    pub groups: Vec<GroupMeta>,
    pub series: Vec<SeriesMeta>,
    pub metrics: Vec<MetricMeta>,
    pub points: Option<Section>,
    /// The gocost instance that wrote it (`[cluster] instance`; "" for a store outside a
    /// cluster, and for blocks written before clusters existed).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub instance: String,
    /// Written by the bucket's one compactor (docs/adr/0022): the lease term it held (0
    /// for a compactor set by configuration). Such a block may replace blocks of every
    /// instance, and every instance lists it in its answers to peers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compactor_term: Option<u64>,
    /// The WAL segments, per writing instance, that the level-0 blocks it replaces (even
    /// through other compacted blocks) were cut from: a writer that restarts with such a
    /// segment still on its disk knows it is in a block.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub merged_sources: BTreeMap<String, Vec<u64>>,
}

/// The WAL segments of instance `me` already in blocks: its own blocks' sources, and those
/// the bucket's compactor merged from its blocks (which may be deleted by now).
pub(crate) fn segments_in_blocks<'a>(
    metas: impl IntoIterator<Item = &'a BlockMeta>,
    me: &str,
) -> BTreeSet<u64> {
    let mut done = BTreeSet::new();
    for m in metas {
        if m.instance == me {
            done.extend(m.sources.iter().copied());
        }
        if let Some(merged) = m.merged_sources.get(me) {
            done.extend(merged.iter().copied());
        }
    }
    done
}

/// The group (service) a series belongs to: symbols are shared within it.
pub fn group_of(key: &SeriesKey) -> &str {
    key.labels
        .get("job")
        .or_else(|| key.labels.get("service_name"))
        .map_or("", String::as_str)
}

struct FileWriter {
    out: Box<dyn Write + Send>,
    pos: u64,
    /// One compressor for every section, reset between them: its state is far larger
    /// than most sections.
    z: flate2::Compress,
    buf: Vec<u8>,
    /// The deflate levels of sections, and of symbol sections.
    levels: (u32, u32),
}

impl FileWriter {
    /// [`FileWriter::section`] at deflate level `level`.
    fn section_at(&mut self, body: &[u8], level: u32) -> Result<Section, BlockError> {
        if level == self.levels.0 {
            return self.section(body);
        }
        let set = |z: &mut flate2::Compress, l: u32| {
            z.reset();
            z.set_level(flate2::Compression::new(l))
                .map_err(|e| BlockError(format!("setting the deflate level: {e}")))
        };
        set(&mut self.z, level)?;
        let s = self.section(body);
        set(&mut self.z, self.levels.0)?;
        s
    }

    fn write(&mut self, b: &[u8]) -> Result<(), BlockError> {
        self.out
            .write_all(b)
            .map_err(|e| BlockError(format!("writing the block: {e}")))?;
        self.pos += b.len() as u64;
        Ok(())
    }

    /// Writes `body` deflate-compressed; returns where it went.
    fn section(&mut self, body: &[u8]) -> Result<Section, BlockError> {
        self.z.reset();
        let mut z = std::mem::take(&mut self.buf);
        z.clear();
        z.reserve(body.len() / 2 + 64);
        loop {
            if z.len() == z.capacity() {
                z.reserve(z.capacity().max(1 << 12));
            }
            let done = self.z.total_in() as usize;
            let st = self
                .z
                .compress_vec(&body[done..], &mut z, flate2::FlushCompress::Finish)
                .map_err(|e| BlockError(format!("compressing a section: {e}")))?;
            if st == flate2::Status::StreamEnd {
                break;
            }
        }
        let s = Section {
            offset: self.pos,
            len: z.len() as u64,
            raw_len: body.len() as u64,
            crc: crc32fast::hash(&z),
        };
        let res = self.write(&z);
        self.buf = z;
        res.map(|()| s)
    }
}

/// Where a piece of a section lies from the section's start, its length, and its CRC-32.
type Piece = (u64, u64, u32);

impl FileWriter {
    /// [`FileWriter::section`] with a full flush before each offset of `cuts` (ascending,
    /// inside `body`), so the bytes from each cut on inflate without what came before;
    /// returns where the section went and, per cut, where its piece (to the next cut or the
    /// end) lies from the section's start.
    fn section_cut(
        &mut self,
        body: &[u8],
        cuts: &[usize],
    ) -> Result<(Section, Vec<Piece>), BlockError> {
        self.z.reset();
        let mut z = std::mem::take(&mut self.buf);
        z.clear();
        z.reserve(body.len() / 2 + 64);
        let ends: Vec<usize> = cuts.iter().copied().chain([body.len()]).collect();
        let mut bounds = Vec::with_capacity(ends.len());
        for (i, &end) in ends.iter().enumerate() {
            let last = i + 1 == ends.len();
            let flush = if last {
                flate2::FlushCompress::Finish
            } else {
                flate2::FlushCompress::Full
            };
            loop {
                if z.len() == z.capacity() {
                    z.reserve(z.capacity().max(1 << 12));
                }
                let done = self.z.total_in() as usize;
                let st = self
                    .z
                    .compress_vec(&body[done..end], &mut z, flush)
                    .map_err(|e| BlockError(format!("compressing a section: {e}")))?;
                if last {
                    if st == flate2::Status::StreamEnd {
                        break;
                    }
                } else if self.z.total_in() as usize == end && z.len() < z.capacity() {
                    break;
                }
            }
            bounds.push(z.len() as u64);
        }
        let pieces = (0..cuts.len())
            .map(|i| {
                let (a, e) = (bounds[i], bounds[i + 1]);
                (a, e - a, crc32fast::hash(&z[a as usize..e as usize]))
            })
            .collect();
        let s = Section {
            offset: self.pos,
            len: z.len() as u64,
            raw_len: body.len() as u64,
            crc: crc32fast::hash(&z),
        };
        let res = self.write(&z);
        self.buf = z;
        res.map(|()| (s, pieces))
    }
}

/// Inflates and checks one section of a whole block file held in `file`.
fn read_section(file: &[u8], s: &Section) -> Result<Vec<u8>, BlockError> {
    let z = usize::try_from(s.offset)
        .ok()
        .and_then(|a| Some((a, usize::try_from(s.len).ok()?)))
        .and_then(|(a, n)| file.get(a..a.checked_add(n)?))
        .ok_or_else(|| {
            BlockError(format!(
                "section at byte {} ({} bytes) lies outside the block",
                s.offset, s.len
            ))
        })?;
    inflate_checked(z, s)
}

/// Inflates one section's compressed bytes.
pub fn inflate_checked(z: &[u8], s: &Section) -> Result<Vec<u8>, BlockError> {
    if crc32fast::hash(z) != s.crc {
        return Err(BlockError(format!(
            "section at byte {}: checksum mismatch",
            s.offset
        )));
    }
    // Deflate cannot expand more than ~1032:1: a larger claim is damage, not data.
    if s.raw_len > MAX_SECTION || s.raw_len > (z.len() as u64).saturating_mul(1032) + 64 {
        return Err(BlockError(format!(
            "section at byte {}: {} bytes inflated is impossible or over the limit",
            s.offset, s.raw_len
        )));
    }
    let mut out = Vec::with_capacity(s.raw_len as usize);
    flate2::read::DeflateDecoder::new(z)
        .take(s.raw_len + 1)
        .read_to_end(&mut out)
        .map_err(|e| BlockError(format!("section at byte {}: {e}", s.offset)))?;
    if out.len() as u64 != s.raw_len {
        return Err(BlockError(format!(
            "section at byte {}: inflates to {} bytes, index says {}",
            s.offset,
            out.len(),
            s.raw_len
        )));
    }
    Ok(out)
}

/// Parses the footer (the last [`FOOTER_LEN`] bytes of a block of `size` bytes): where
/// the index lies and its checksum.
pub fn parse_footer(tail: &[u8], size: u64) -> Result<(std::ops::Range<u64>, u32), BlockError> {
    if tail.len() != FOOTER_LEN || &tail[8..] != FOOTER_MAGIC {
        return Err(BlockError("missing block footer (truncated file?)".into()));
    }
    let word = |i: usize| u32::from_le_bytes([tail[i], tail[i + 1], tail[i + 2], tail[i + 3]]);
    let (len, crc) = (word(0), word(4));
    let end = size.saturating_sub(FOOTER_LEN as u64);
    let start = end
        .checked_sub(u64::from(len))
        .filter(|&s| s >= MAGIC.len() as u64)
        .ok_or_else(|| BlockError(format!("index length {len} exceeds the block")))?;
    Ok((start..end, crc))
}

pub fn parse_index(b: &[u8], crc: u32) -> Result<BlockMeta, BlockError> {
    if crc32fast::hash(b) != crc {
        return Err(BlockError("index checksum mismatch".into()));
    }
    let m: BlockMeta = serde_json::from_slice(b).map_err(|e| BlockError(format!("index: {e}")))?;
    if m.version != VERSION {
        return Err(BlockError(format!(
            "block format version {} (this gocost reads {VERSION})",
            m.version
        )));
    }
    Ok(m)
}

/// Parses a whole block file's index (queries read ranges instead).
pub fn parse_file(file: &[u8]) -> Result<BlockMeta, BlockError> {
    if file.len() < MAGIC.len() + FOOTER_LEN || &file[..8] != MAGIC {
        return Err(BlockError("not a gocost block (bad magic)".into()));
    }
    let (index, crc) = parse_footer(&file[file.len() - FOOTER_LEN..], file.len() as u64)?;
    parse_index(&file[index.start as usize..index.end as usize], crc)
}

/// What the caller knows about a block being written.
pub struct BlockInfo {
    pub id: String,
    pub level: u32,
    pub steps: Vec<i64>,
    pub sources: Vec<u64>,
    pub replaces: Vec<String>,
    /// The writing instance ("" outside a cluster).
    pub instance: String,
    /// See [`BlockMeta::compactor_term`].
    pub compactor_term: Option<u64>,
    /// See [`BlockMeta::merged_sources`].
    pub merged_sources: BTreeMap<String, Vec<u64>>,
}

/// One profile handed to [`BlockWriter::series`], with its ingest time and its size as
/// received.
pub enum Item {
    /// A decoded profile: encoded against the group's symbols here.
    Profile(i64, Box<Profile>, u64),
    /// Already encoded against the symbols handed over with
    /// [`BlockWriter::group_symbols`] (the head did it on append).
    Encoded(i64, std::sync::Arc<[u8]>, u64),
}

/// The merge of one rollup bucket in progress.
struct Bucket {
    start: i64,
    first: i64,
    last: i64,
    acc: RollupAcc,
    /// The one stored profile, while the bucket holds only one (it has no rollup of its
    /// own to hand to the next step).
    single: Option<Vec<u8>>,
}

/// Closes bucket `b` of `steps[si]`: writes its rollup if it is one to store, and adds
/// what it holds — its sum, or its one profile — to the open bucket of the next larger step,
/// which contains it (steps divide each other, all from the epoch): each profile is summed
/// once, by the smallest step, and larger steps sum their smaller ones' sums.
fn close_bucket(
    si: usize,
    b: Bucket,
    steps: &[i64],
    open: &mut [Option<Bucket>],
    out: &mut [W; TIERS],
    n_rollups: &mut [u64; TIERS],
) -> Result<(), CodecError> {
    // One profile needs no rollup (nor do fewer than `MIN_FINE_PROFILES` under an hour);
    // nor does a bucket a smaller step already holds.
    let count = b.acc.count();
    let same_as_smaller = si > 0
        && b.first.div_euclid(steps[si - 1]) == b.last.div_euclid(steps[si - 1])
        && count >= min_profiles(steps[si - 1]);
    let sum = b.acc.finish(b.start);
    if !same_as_smaller
        && count >= min_profiles(steps[si])
        && let Some(bytes) = &sum
    {
        let t = tier(steps[si]);
        out[t].u(steps[si] as u64);
        out[t].u(count);
        out[t].bytes(bytes);
        n_rollups[t] += 1;
    }
    let Some(&up) = steps.get(si + 1) else {
        return Ok(());
    };
    let p = open[si + 1].get_or_insert_with(|| Bucket {
        start: b.start.div_euclid(up) * up,
        first: b.first,
        last: b.last,
        acc: RollupAcc::default(),
        single: None,
    });
    p.last = b.last;
    match (sum, b.single) {
        (Some(bytes), _) => p.acc.add_n(&bytes, count)?,
        (None, Some(one)) if count == 1 => {
            if p.acc.count() == 0 {
                p.acc.add(&one)?;
                p.single = Some(one);
            } else {
                p.acc.add(&one)?;
            }
        }
        // Sample or period types changed inside it: none for the larger step either.
        _ => p.acc.poison(count),
    }
    Ok(())
}

/// Where each UTC day's rollups start in `items` (a rollups section's entries after its
/// count, in time order): (day, offset, entries).
fn rollup_days(items: &[u8]) -> Result<Vec<(i64, usize, u64)>, BlockError> {
    let mut r = R::new(items);
    let mut out: Vec<(i64, usize, u64)> = Vec::new();
    while !r.done() {
        let at = r.off;
        let e = |e| section_err("rollups", e);
        r.u().map_err(e)?;
        r.u().map_err(e)?;
        let day = stored_time(r.bytes().map_err(e)?)
            .map_err(e)?
            .div_euclid(DAY_NS)
            * DAY_NS;
        if out.last().is_none_or(|d| d.0 != day) {
            out.push((day, at, 0));
        }
        if let Some(d) = out.last_mut() {
            d.2 += 1;
        }
    }
    Ok(out)
}

/// Writes a block one series at a time into a file (or any writer), so memory holds one
/// series' profiles and the current service's symbols, never the whole block.
pub struct BlockWriter {
    f: FileWriter,
    meta: BlockMeta,
    group: Option<(String, GroupSymbols)>,
}

/// The current group's symbols: built as its profiles are added, or encoded already (the
/// head's, against which its [`Item::Encoded`] profiles were encoded).
enum GroupSymbols {
    Building(Box<SymTabBuilder>),
    Encoded(Vec<u8>),
}

/// The deflate level of a block's sections. A cut (level 0) writes the head's last hour or
/// so while scrapes and pushes go on, and lives only until its day is compacted, which
/// compresses every section again: level 4 takes 42 % less CPU than 6 for 5 % more bytes on
/// realistic CPU profiles (`xtask bench-store --seeds`: a 20,000-profile cut 18.0 → 10.5
/// CPU-s, 0.143 → 0.150 block bytes per byte received; the compacted history the same
/// 242.7 MB either way). What is kept — compacted blocks — is written at 6.
pub(crate) fn deflate_level(block_level: u32) -> u32 {
    if block_level == 0 { 4 } else { 6 }
}

/// The deflate level of a block's symbol sections: a week block's are stored (level 0,
/// deflate's stored blocks, which inflate at the speed of a copy). Every query over the
/// week loads each service's tables, and inflating them was the largest cost of a 30-day
/// flame graph (17 % of its CPU) while deflate shrinks them only 1.36×; in a week block
/// they are 2 % of the bytes (docs/adr/0035). Day and cut blocks, which hold a table per
/// service per day (8.6 % of a history kept as day blocks), keep compressing them.
pub(crate) fn symbols_deflate_level(block_level: u32) -> u32 {
    if block_level >= 2 {
        0
    } else {
        deflate_level(block_level)
    }
}

impl BlockWriter {
    pub fn new(info: BlockInfo, out: Box<dyn Write + Send>) -> Result<Self, BlockError> {
        let mut f = FileWriter {
            out,
            pos: 0,
            z: flate2::Compress::new(flate2::Compression::new(deflate_level(info.level)), false),
            buf: Vec::new(),
            levels: (deflate_level(info.level), symbols_deflate_level(info.level)),
        };
        f.write(MAGIC)?;
        Ok(BlockWriter {
            f,
            meta: BlockMeta {
                version: VERSION,
                id: info.id,
                level: info.level,
                min_time_ns: i64::MAX,
                max_time_ns: i64::MIN,
                steps: info.steps,
                sources: info.sources,
                replaces: info.replaces,
                ingested_bytes: 0,
                groups: Vec::new(),
                series: Vec::new(),
                metrics: Vec::new(),
                points: None,
                instance: info.instance,
                compactor_term: info.compactor_term,
                merged_sources: info.merged_sources,
            },
            group: None,
        })
    }

    fn end_group(&mut self) -> Result<(), BlockError> {
        if let Some((name, sym)) = self.group.take() {
            let body = match sym {
                GroupSymbols::Building(b) => b.encode(),
                GroupSymbols::Encoded(bytes) => bytes,
            };
            let symbols = self.f.section_at(&body, self.f.levels.1)?;
            self.meta.groups.push(GroupMeta { name, symbols });
        }
        Ok(())
    }

    fn start_group(&mut self, name: &str, sym: GroupSymbols) -> Result<(), BlockError> {
        self.end_group()?;
        if self.meta.groups.iter().any(|g| g.name == name) {
            return Err(BlockError(format!(
                "series of group {name:?} are not contiguous"
            )));
        }
        self.group = Some((name.to_string(), sym));
        Ok(())
    }

    /// Starts the group `name` with symbols built elsewhere (the head's, which encoded the
    /// [`Item::Encoded`] profiles of its series). Its series must follow.
    pub fn group_symbols(&mut self, name: &str, sym: SymTabBuilder) -> Result<(), BlockError> {
        self.start_group(name, GroupSymbols::Building(Box::new(sym)))
    }

    /// Starts the group `name` with its symbol tables as [`SymTabBuilder::encode`] wrote
    /// them; its series (all [`Item::Encoded`] against them) must follow.
    pub fn group_encoded(&mut self, name: &str, symbols: Vec<u8>) -> Result<(), BlockError> {
        self.start_group(name, GroupSymbols::Encoded(symbols))
    }

    /// Makes `name` the current group, with fresh symbols if it is not already.
    fn enter_group(&mut self, name: &str) -> Result<(), BlockError> {
        if self.group.as_ref().is_none_or(|(g, _)| g != name) {
            self.group_symbols(name, SymTabBuilder::new())?;
        }
        Ok(())
    }

    /// Adds one series with its profiles in time order. Series of one group (service)
    /// must come one after another: symbols are shared within a group.
    pub fn series(
        &mut self,
        key: &SeriesKey,
        profiles: impl IntoIterator<Item = Result<Item, BlockError>>,
    ) -> Result<(), BlockError> {
        self.enter_group(group_of(key))?;
        let gi = self.meta.groups.len() as u32;
        let steps = self.meta.steps.clone();
        let Some((_, sym)) = self.group.as_mut() else {
            return Err(BlockError(format!("series {key}: no group")));
        };
        let mut raw = W::default();
        // Per UTC hour of the profiles: (start, offset in `raw`, profiles).
        let mut hours: Vec<(i64, usize, u64)> = Vec::new();
        // Rollups by section ([`tier`]).
        let mut rollups: [W; TIERS] = Default::default();
        let mut n_rollups = [0u64; TIERS];
        let mut open: Vec<Option<Bucket>> = steps.iter().map(|_| None).collect();
        let (mut n, mut lo, mut hi, mut prev) = (0u64, i64::MAX, i64::MIN, i64::MIN);
        let rollup_err = |e: CodecError| BlockError(format!("series {key}: rollup: {e}"));
        for item in profiles {
            let item = item?;
            let encoded;
            let (t, enc, raw_len): (i64, &[u8], u64) = match &item {
                Item::Profile(t, p, raw_len) => {
                    let GroupSymbols::Building(sym) = sym else {
                        return Err(BlockError(format!(
                            "series {key}: a profile to encode in a group of encoded symbols"
                        )));
                    };
                    encoded = sym.encode_profile(p, *t);
                    (*t, &encoded, *raw_len)
                }
                Item::Encoded(t, enc, raw_len) => (*t, enc, *raw_len),
            };
            if t < prev {
                return Err(BlockError(format!(
                    "series {key}: profiles out of time order"
                )));
            }
            prev = t;
            let hour = t.div_euclid(HOUR_NS) * HOUR_NS;
            if hours.last().is_none_or(|h: &(i64, usize, u64)| h.0 != hour) {
                hours.push((hour, raw.0.len(), 0));
            }
            if let Some(h) = hours.last_mut() {
                h.2 += 1;
            }
            (n, lo, hi) = (n + 1, lo.min(t), hi.max(t));
            self.meta.ingested_bytes += raw_len;
            // Buckets this profile is past are closed, smallest step first (each hands its
            // sum to the next step's bucket, still open); the profile goes to the smallest.
            for (si, &step) in steps.iter().enumerate() {
                let start = t.div_euclid(step) * step;
                if let Some(b) = open[si].take_if(|b| b.start != start) {
                    close_bucket(si, b, &steps, &mut open, &mut rollups, &mut n_rollups)
                        .map_err(rollup_err)?;
                }
            }
            if let Some(&step) = steps.first() {
                let b = open[0].get_or_insert_with(|| Bucket {
                    start: t.div_euclid(step) * step,
                    first: t,
                    last: t,
                    acc: RollupAcc::default(),
                    single: Some(enc.to_vec()),
                });
                if b.acc.count() > 0 {
                    b.single = None;
                }
                b.last = t;
                b.acc.add(enc).map_err(rollup_err)?;
            }
            raw.bytes(enc);
        }
        for si in 0..open.len() {
            if let Some(b) = open[si].take() {
                close_bucket(si, b, &steps, &mut open, &mut rollups, &mut n_rollups)
                    .map_err(rollup_err)?;
            }
        }
        if n == 0 {
            return Ok(());
        }
        let (raw, raw_hours) = self.split_section(n, &raw.0, &hours)?;
        let mut sections = [None, None, None];
        let mut hour_days = None;
        for (i, (n, w)) in n_rollups.iter().zip(&rollups).enumerate() {
            if *n > 0 {
                // A week's hours by day, so that a range needing a few of them inflates
                // their day only (docs/adr/0034).
                let days = if i == 1 {
                    rollup_days(&w.0).map_err(|e| BlockError(format!("series {key}: {e}")))?
                } else {
                    Vec::new()
                };
                let (sec, table) = self.split_section(*n, &w.0, &days)?;
                sections[i] = Some(sec);
                if i == 1 {
                    hour_days = table;
                }
            }
        }
        let [rollups, hour_rollups, fine_rollups] = sections;
        self.meta.min_time_ns = self.meta.min_time_ns.min(lo);
        self.meta.max_time_ns = self.meta.max_time_ns.max(hi);
        self.meta.series.push(SeriesMeta {
            key: key.to_string(),
            group: gi,
            profiles: n,
            min_time_ns: lo,
            max_time_ns: hi,
            raw,
            rollups,
            hour_rollups,
            hour_days,
            fine_rollups,
            raw_hours,
        });
        Ok(())
    }

    /// Writes a section of `n` entries (`items`: their bytes, which follow the count) and,
    /// when `marks` (start, offset into `items`, entries) name two pieces or more and the
    /// section is at least [`RAW_SPLIT_MIN`], compresses it with a full flush before each
    /// piece, so each inflates alone, and writes the table of where they lie
    /// ([`parse_pieces`]).
    fn split_section(
        &mut self,
        n: u64,
        items: &[u8],
        marks: &[(i64, usize, u64)],
    ) -> Result<(Section, Option<Section>), BlockError> {
        let mut body = W::default();
        body.u(n);
        let head = body.0.len();
        body.0.extend_from_slice(items);
        if marks.len() < 2 || body.0.len() < RAW_SPLIT_MIN {
            return Ok((self.f.section(&body.0)?, None));
        }
        let cuts: Vec<usize> = marks.iter().map(|m| head + m.1).collect();
        let (sec, pieces) = self.f.section_cut(&body.0, &cuts)?;
        let mut t = W::default();
        t.u(marks.len() as u64);
        for (i, (m, (off, len, crc))) in marks.iter().zip(pieces).enumerate() {
            let end = cuts.get(i + 1).copied().unwrap_or(body.0.len());
            t.i(m.0);
            t.u(m.2);
            t.u(off);
            t.u(len);
            t.u((end - cuts[i]) as u64);
            t.u(u64::from(crc));
        }
        Ok((sec, Some(self.f.section(&t.0)?)))
    }

    /// Adds runtime-metric points (any order).
    pub fn points(
        &mut self,
        points: BTreeMap<SeriesKey, Vec<(i64, f64)>>,
    ) -> Result<(), BlockError> {
        let points: Vec<_> = points.into_iter().filter(|(_, v)| !v.is_empty()).collect();
        if points.is_empty() {
            return Ok(());
        }
        let mut w = W::default();
        w.u(points.len() as u64);
        for (key, mut pts) in points {
            pts.sort_by_key(|p| p.0);
            let (lo, hi) = (pts[0].0, pts[pts.len() - 1].0);
            self.meta.min_time_ns = self.meta.min_time_ns.min(lo);
            self.meta.max_time_ns = self.meta.max_time_ns.max(hi);
            self.meta.metrics.push(MetricMeta {
                key: key.to_string(),
                points: pts.len() as u64,
                min_time_ns: lo,
                max_time_ns: hi,
            });
            w.u(pts.len() as u64);
            let mut prev = 0i64;
            for &(t, v) in &pts {
                w.i(t.wrapping_sub(prev));
                w.f64(v);
                prev = t;
            }
        }
        self.meta.points = Some(self.f.section(&w.0)?);
        Ok(())
    }

    /// Counts `bytes` received that the block holds but no [`Item`] carried (a compaction's
    /// inputs' own count), for its index's `ingested_bytes`.
    pub fn add_ingested(&mut self, bytes: u64) {
        self.meta.ingested_bytes += bytes;
    }

    pub fn is_empty(&self) -> bool {
        self.meta.series.is_empty() && self.meta.metrics.is_empty()
    }

    /// Ends the block (index and footer) and flushes the writer; returns the index.
    pub fn finish(mut self) -> Result<BlockMeta, BlockError> {
        self.end_group()?;
        let index =
            serde_json::to_vec(&self.meta).map_err(|e| BlockError(format!("index: {e}")))?;
        self.f.write(&index)?;
        self.f.write(&(index.len() as u32).to_le_bytes())?;
        self.f.write(&crc32fast::hash(&index).to_le_bytes())?;
        self.f.write(FOOTER_MAGIC)?;
        self.f
            .out
            .flush()
            .map_err(|e| BlockError(format!("writing the block: {e}")))?;
        Ok(self.meta)
    }
}

/// The fewest profiles a stored rollup of `step` merges.
pub fn min_profiles(step: i64) -> u64 {
    if step < HOUR_NS { MIN_FINE_PROFILES } else { 2 }
}

/// One stored rollup: the merge of the profiles in `[start, start + step)`.
pub struct Rollup<'a> {
    pub step: i64,
    pub start: i64,
    /// How many profiles were merged into it.
    pub count: u64,
    pub bytes: &'a [u8],
}

pub fn parse_rollups(b: &[u8]) -> Result<Vec<Rollup<'_>>, BlockError> {
    let mut r = R::new(b);
    let n = r.len().map_err(|e| section_err("rollups", e))?;
    rollup_entries(&mut r, n)
}

/// The `n` rollups of one piece of a split rollups section (`hour_days`): entries with no
/// count before them, and nothing after.
pub fn parse_rollups_piece(b: &[u8], n: u64) -> Result<Vec<Rollup<'_>>, BlockError> {
    let mut r = R::new(b);
    let out = rollup_entries(&mut r, usize::try_from(n).unwrap_or(usize::MAX))?;
    if !r.done() {
        return Err(BlockError("rollups piece: trailing bytes".into()));
    }
    Ok(out)
}

fn rollup_entries<'a>(r: &mut R<'a>, n: usize) -> Result<Vec<Rollup<'a>>, BlockError> {
    let mut out = Vec::with_capacity(n.min(r.b.len()));
    for _ in 0..n {
        let step = r.u().map_err(|e| section_err("rollups", e))? as i64;
        let count = r.u().map_err(|e| section_err("rollups", e))?;
        let bytes = r.bytes().map_err(|e| section_err("rollups", e))?;
        let start = stored_time(bytes).map_err(|e| section_err("rollups", e))?;
        if step <= 0 {
            return Err(BlockError("rollups section: step must be positive".into()));
        }
        out.push(Rollup {
            step,
            start,
            count,
            bytes,
        });
    }
    Ok(out)
}

/// The stored profiles of a raw section, in time order.
pub fn parse_raw(b: &[u8]) -> Result<Vec<&[u8]>, BlockError> {
    let mut r = R::new(b);
    let n = r.len().map_err(|e| section_err("raw", e))?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(r.bytes().map_err(|e| section_err("raw", e))?);
    }
    Ok(out)
}

/// The table of a raw section's hours ([`SeriesMeta::raw_hours`]), checked against the
/// section (`raw`): pieces in order, inside it, hours ascending.
pub fn parse_raw_hours(b: &[u8], raw: &Section) -> Result<Vec<RawHour>, BlockError> {
    parse_pieces(b, raw, "raw hours")
}

/// A table of a split section's pieces (`raw_hours`, `hour_days`): where each piece of
/// `whole` lies, the time its entries start at (an hour) and how many there are.
pub fn parse_pieces(
    b: &[u8],
    whole: &Section,
    what: &'static str,
) -> Result<Vec<RawHour>, BlockError> {
    let e = |e| section_err(what, e);
    let bad = |problem: &str| BlockError(format!("{what} section: {problem}"));
    let mut r = R::new(b);
    let n = r.len().map_err(e)?;
    let mut out: Vec<RawHour> = Vec::with_capacity(n);
    for _ in 0..n {
        let h = RawHour {
            start: r.i().map_err(e)?,
            profiles: r.u().map_err(e)?,
            offset: r.u().map_err(e)?,
            len: r.u().map_err(e)?,
            raw_len: r.u().map_err(e)?,
            crc: u32::try_from(r.u().map_err(e)?).map_err(|_| bad("checksum out of range"))?,
        };
        if h.offset
            .checked_add(h.len)
            .is_none_or(|end| end > whole.len)
        {
            return Err(bad("a piece lies outside its section"));
        }
        if out
            .last()
            .is_some_and(|p| p.start >= h.start || p.offset + p.len > h.offset)
        {
            return Err(bad("pieces out of order"));
        }
        if h.start.rem_euclid(HOUR_NS) != 0 {
            return Err(bad("a piece does not start on an hour"));
        }
        out.push(h);
    }
    if !r.done() {
        return Err(bad("trailing bytes"));
    }
    Ok(out)
}

/// Inflates one hour's piece of a raw section: `z`, its compressed bytes.
pub fn inflate_piece(z: &[u8], h: &RawHour) -> Result<Vec<u8>, BlockError> {
    let bad = |what: String| BlockError(format!("raw hour at {}: {what}", h.start));
    if crc32fast::hash(z) != h.crc {
        return Err(bad("checksum mismatch".into()));
    }
    if h.raw_len > MAX_SECTION || h.raw_len > (z.len() as u64).saturating_mul(1032) + 64 {
        return Err(bad(format!("{} bytes inflated is impossible", h.raw_len)));
    }
    let mut out = Vec::with_capacity(h.raw_len as usize);
    let mut d = flate2::Decompress::new(false);
    while (d.total_in() as usize) < z.len() && out.len() < out.capacity() {
        let before = (d.total_in(), out.len());
        let st = d
            .decompress_vec(
                &z[d.total_in() as usize..],
                &mut out,
                flate2::FlushDecompress::Sync,
            )
            .map_err(|e| bad(e.to_string()))?;
        if st == flate2::Status::StreamEnd || before == (d.total_in(), out.len()) {
            break;
        }
    }
    if out.len() as u64 != h.raw_len {
        return Err(bad(format!(
            "inflates to at least {} bytes, the table says {}",
            out.len(),
            h.raw_len
        )));
    }
    Ok(out)
}

/// The `n` stored profiles of an inflated raw hour, in time order.
pub fn parse_raw_piece(b: &[u8], n: u64) -> Result<Vec<&[u8]>, BlockError> {
    let mut r = R::new(b);
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(r.bytes().map_err(|e| section_err("raw hour", e))?);
    }
    if !r.done() {
        return Err(BlockError("raw hour: trailing bytes".into()));
    }
    Ok(out)
}

/// Every metric series of a points section with its points.
pub fn parse_points(b: &[u8], n_series: usize) -> Result<Vec<Vec<(i64, f64)>>, BlockError> {
    let e = |e| section_err("points", e);
    let mut r = R::new(b);
    let n = r.len().map_err(e)?;
    if n != n_series {
        return Err(BlockError(format!(
            "points section holds {n} series, index says {n_series}"
        )));
    }
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let m = r.len().map_err(e)?;
        let mut pts = Vec::with_capacity(m);
        let mut t = 0i64;
        for _ in 0..m {
            t = t.wrapping_add(r.i().map_err(e)?);
            pts.push((t, r.f64().map_err(e)?));
        }
        out.push(pts);
    }
    Ok(out)
}

/// Piece `p` of the split section `whole` of a whole block file, inflated (`what` names it
/// in errors).
fn piece_in_file(
    file: &[u8],
    whole: &Section,
    p: &RawHour,
    what: &str,
) -> Result<Vec<u8>, BlockError> {
    let z = usize::try_from(whole.offset + p.offset)
        .ok()
        .and_then(|a| file.get(a..a.checked_add(usize::try_from(p.len).ok()?)?))
        .ok_or_else(|| BlockError(format!("{what} lies outside the block")))?;
    inflate_piece(z, p)
}

/// Checks a whole block file: the index, every section's checksum, and that every symbol
/// table, profile, rollup and point decodes. Returns the index.
pub fn verify_file(file: &[u8]) -> Result<BlockMeta, BlockError> {
    let meta = parse_file(file)?;
    let mut tabs = Vec::with_capacity(meta.groups.len());
    for g in &meta.groups {
        let b = read_section(file, &g.symbols)?;
        tabs.push(SymTab::decode(&b).map_err(|e| section_err("symbols", e))?);
    }
    for s in &meta.series {
        let tab = tabs.get(s.group as usize).ok_or_else(|| {
            BlockError(format!("series {}: group {} out of range", s.key, s.group))
        })?;
        let raw = read_section(file, &s.raw)?;
        let profiles = parse_raw(&raw)?;
        if profiles.len() as u64 != s.profiles {
            return Err(BlockError(format!(
                "series {}: {} profiles stored, index says {}",
                s.key,
                profiles.len(),
                s.profiles
            )));
        }
        if let Some(hs) = &s.raw_hours {
            // Each hour's piece inflates alone to exactly its profiles, in order.
            let hours = parse_raw_hours(&read_section(file, hs)?, &s.raw)?;
            let mut at = 0;
            for h in &hours {
                let piece = piece_in_file(file, &s.raw, h, "a raw hour")?;
                for b in parse_raw_piece(&piece, h.profiles)? {
                    let t = stored_time(b).map_err(|e| section_err("raw hour", e))?;
                    if profiles.get(at) != Some(&b) || t.div_euclid(HOUR_NS) * HOUR_NS != h.start {
                        return Err(BlockError(format!(
                            "series {}: raw hour at {} differs from the raw section",
                            s.key, h.start
                        )));
                    }
                    at += 1;
                }
            }
            if at != profiles.len() {
                return Err(BlockError(format!(
                    "series {}: raw hours hold {at} profiles, the raw section {}",
                    s.key,
                    profiles.len()
                )));
            }
        }
        for b in profiles {
            tab.profile(b, true).map_err(|e| section_err("raw", e))?;
        }
        for r in s.rollup_sections().into_iter().flatten() {
            let sec = read_section(file, r)?;
            for r in parse_rollups(&sec)? {
                tab.profile(r.bytes, true)
                    .map_err(|e| section_err("rollups", e))?;
            }
        }
        if let (Some(hd), Some(hr)) = (&s.hour_days, &s.hour_rollups) {
            // Each day's piece inflates alone to exactly its hourly rollups, in order.
            let whole = read_section(file, hr)?;
            let whole = parse_rollups(&whole)?;
            let mut at = 0;
            for d in parse_pieces(&read_section(file, hd)?, hr, "hour days")? {
                let piece = piece_in_file(file, hr, &d, "a day of hourly rollups")?;
                for r in parse_rollups_piece(&piece, d.profiles)? {
                    let same = whole
                        .get(at)
                        .is_some_and(|w| w.bytes == r.bytes && w.step == r.step);
                    if !same || r.start.div_euclid(DAY_NS) * DAY_NS != d.start {
                        return Err(BlockError(format!(
                            "series {}: hourly rollups of the day at {} differ from the section",
                            s.key, d.start
                        )));
                    }
                    at += 1;
                }
            }
            if at != whole.len() {
                return Err(BlockError(format!(
                    "series {}: days hold {at} hourly rollups, the section {}",
                    s.key,
                    whole.len()
                )));
            }
        }
    }
    if let Some(p) = &meta.points {
        parse_points(&read_section(file, p)?, meta.metrics.len())?;
    }
    Ok(meta)
}
