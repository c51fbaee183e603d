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
/// The most a section or index may inflate to.
const MAX_SECTION: u64 = 1 << 30;

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
    pub rollups: Option<Section>,
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
    /// 0 = cut from the WAL, 1 = compacted to one UTC day.
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
}

impl FileWriter {
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

impl BlockWriter {
    pub fn new(info: BlockInfo, out: Box<dyn Write + Send>) -> Result<Self, BlockError> {
        let mut f = FileWriter {
            out,
            pos: 0,
            z: flate2::Compress::new(flate2::Compression::new(6), false),
            buf: Vec::new(),
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
            let symbols = match sym {
                GroupSymbols::Building(b) => self.f.section(&b.encode())?,
                GroupSymbols::Encoded(bytes) => self.f.section(&bytes)?,
            };
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
        let mut rollups = W::default();
        let mut n_rollups = 0u64;
        let mut open: Vec<Option<Bucket>> = steps.iter().map(|_| None).collect();
        let (mut n, mut lo, mut hi, mut prev) = (0u64, i64::MAX, i64::MIN, i64::MIN);
        let mut close = |si: usize, b: Bucket, out: &mut W| {
            // One profile needs no rollup; nor does a bucket a smaller step already holds.
            let same_as_smaller =
                si > 0 && b.first.div_euclid(steps[si - 1]) == b.last.div_euclid(steps[si - 1]);
            let count = b.acc.count();
            if !same_as_smaller && let Some(bytes) = b.acc.finish(b.start) {
                out.u(steps[si] as u64);
                out.u(count);
                out.bytes(&bytes);
                n_rollups += 1;
            }
        };
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
            (n, lo, hi) = (n + 1, lo.min(t), hi.max(t));
            self.meta.ingested_bytes += raw_len;
            for (si, &step) in steps.iter().enumerate() {
                let start = t.div_euclid(step) * step;
                if let Some(b) = open[si].take_if(|b| b.start != start) {
                    close(si, b, &mut rollups);
                }
                let b = open[si].get_or_insert_with(|| Bucket {
                    start,
                    first: t,
                    last: t,
                    acc: RollupAcc::default(),
                });
                b.last = t;
                b.acc
                    .add(enc)
                    .map_err(|e| BlockError(format!("series {key}: rollup: {e}")))?;
            }
            raw.bytes(enc);
        }
        for (si, b) in open.into_iter().enumerate() {
            if let Some(b) = b {
                close(si, b, &mut rollups);
            }
        }
        if n == 0 {
            return Ok(());
        }
        let mut body = W::default();
        body.u(n);
        body.0.extend_from_slice(&raw.0);
        let raw = self.f.section(&body.0)?;
        let rollups = if n_rollups > 0 {
            let mut body = W::default();
            body.u(n_rollups);
            body.0.extend_from_slice(&rollups.0);
            Some(self.f.section(&body.0)?)
        } else {
            None
        };
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
        });
        Ok(())
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
    let mut out = Vec::with_capacity(n);
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
        for b in profiles {
            tab.profile(b, true).map_err(|e| section_err("raw", e))?;
        }
        if let Some(r) = &s.rollups {
            let sec = read_section(file, r)?;
            for r in parse_rollups(&sec)? {
                tab.profile(r.bytes, true)
                    .map_err(|e| section_err("rollups", e))?;
            }
        }
    }
    if let Some(p) = &meta.points {
        parse_points(&read_section(file, p)?, meta.metrics.len())?;
    }
    Ok(meta)
}
