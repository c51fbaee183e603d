//! # gocost-store
//!
//! gocost's embedded profile store, in a data directory with no server to install. Every
//! profile and runtime-metric point is first appended to a write-ahead log (`wal/`, fsynced
//! on an interval the caller drives, or before [`Store::commit`] returns for callers that
//! acknowledge what they store; replayed on start, torn tails cut off; a failed write or sync
//! is cut off again, never left half in the log: `docs/adr/0006`) and indexed in an
//! in-memory head that points into it. [`Store::flush`] turns closed WAL segments into
//! immutable blocks — symbols deduplicated per service, stacks as a prefix tree, hourly
//! rollups — written through `object_store` to `blocks/` or an S3-compatible bucket;
//! [`Store::compact`] merges a finished UTC day's blocks into one with daily rollups.
//! Queries select series with a PromQL-like selector and merge their profiles over a time
//! range with pprof's rules, using rollups for whole hours and days inside the range.
//!
//! It owns series keys, the selector language, the WAL and block formats
//! (`docs/format/`) and queries; it does not fetch anything (that is `gocost-scrape`) or
//! serve HTTP. Its API is synchronous: call it from blocking threads, not async tasks.
//!
//! ```
//! # let dir = std::env::temp_dir().join(format!("gocost-store-doc-{}", std::process::id()));
//! use gocost_store::{Options, SeriesKey, Selector, Store};
//! let p = gocost_pprof::Profile {
//!     sample_type: vec![gocost_pprof::ValueType::new("goroutine", "count")],
//!     sample: vec![gocost_pprof::Sample { value: vec![3], ..Default::default() }],
//!     ..Default::default()
//! };
//! let (store, _) = Store::open(Options::new(&dir)).unwrap();
//! let key = SeriesKey::new("goroutine", [("job".into(), "api".into())]);
//! store.append(&key, 1_000, &gocost_pprof::encode(&p)).unwrap();
//! store.sync().unwrap();
//! store.flush(true).unwrap(); // now in an immutable block
//! let merged = store.query(&Selector::parse(r#"goroutine{job="api"}"#).unwrap(), 0, 2_000).unwrap();
//! assert_eq!(merged.unwrap().sample[0].value, vec![3]);
//! # std::fs::remove_dir_all(&dir).unwrap();
//! ```

mod agg;
mod blobs;
mod block;
mod codec;
mod series;
mod symtab;
mod wal;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use gocost_pprof::{Combiner, DecodeError, MergeError, Profile};

pub use agg::{Agg, is_snapshot};
pub use blobs::{BlobConfig, S3Config};
pub use block::{BlockError, BlockMeta, DAY_NS, HOUR_NS, verify_file as verify_block};
pub use series::{KINDS, Matcher, Op, Selector, SeriesKey};
pub use wal::{FaultHook, FaultPoint, MAX_RECORD, ReplayReport};

use block::{BlockInfo, BlockWriter};
use symtab::SymTab;

/// Store options.
#[derive(Debug, Clone)]
pub struct Options {
    pub dir: PathBuf,
    /// Profiles older than this are dropped (nanoseconds; 0 = keep forever).
    pub retention_ns: i64,
    /// Cap on one profile's decompressed size when decoding it.
    pub max_profile_size: u64,
    /// How long a WAL segment stays open before [`Store::flush`] cuts it into a block.
    pub block_duration_ns: i64,
    /// Where blocks are kept.
    pub blobs: BlobConfig,
    /// Memory for profiles the head keeps encoded until their block is cut (past it,
    /// the cut decodes them again from the WAL).
    pub head_cache_bytes: usize,
    /// Faults to inject into WAL writes and syncs (tests only).
    #[doc(hidden)]
    pub faults: Option<FaultHook>,
}

impl Options {
    pub fn new(dir: impl AsRef<Path>) -> Self {
        Options {
            dir: dir.as_ref().to_path_buf(),
            retention_ns: 30 * DAY_NS,
            max_profile_size: 64 << 20,
            block_duration_ns: HOUR_NS,
            blobs: BlobConfig::Local,
            head_cache_bytes: 64 << 20,
            faults: None,
        }
    }
}

/// A store error.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    Io(std::io::Error),
    /// The profile given to `append` does not decode.
    BadProfile(DecodeError),
    /// The selected profiles cannot be merged (different sample types).
    Merge(MergeError),
    TooLarge(usize),
    /// A sample's stack is deeper than [`gocost_pprof::MAX_STACK_DEPTH`] (what is wrong).
    TooDeep(String),
    /// A block is malformed (named, with what is wrong).
    Block(String),
    /// The disk holding the WAL is full: nothing was stored, and ingest is paused until
    /// space is freed (the next append tries again).
    DiskFull(String),
    /// The record was written but the WAL could not be made durable (a failed `fsync`):
    /// it was dropped again, and is not stored.
    NotDurable(String),
}

/// The number of an appended WAL record; [`Store::commit`] waits until it is durable.
pub type Lsn = u64;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(e) => write!(f, "store I/O: {e}"),
            Error::BadProfile(e) => write!(f, "bad profile: {e}"),
            Error::Merge(e) => write!(f, "cannot merge the selected profiles: {e}"),
            Error::TooLarge(n) => write!(
                f,
                "profile of {n} bytes exceeds the {MAX_RECORD}-byte limit"
            ),
            Error::Block(e) => write!(f, "block: {e}"),
            Error::TooDeep(e) => write!(f, "{e}"),
            Error::DiskFull(e) => write!(f, "{e}"),
            Error::NotDurable(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e)
    }
}

impl From<BlockError> for Error {
    fn from(e: BlockError) -> Self {
        Error::Block(e.0)
    }
}

fn block_err(name: &str, e: impl fmt::Display) -> Error {
    Error::Block(format!("{name}: {e}"))
}

/// Counters for gocost's own `/metrics`.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    pub series: usize,
    /// Profiles stored (head and blocks; rollups not counted).
    pub profiles: u64,
    /// Profiles in the head (not yet in blocks).
    pub head_profiles: usize,
    pub wal_bytes: u64,
    pub blocks: usize,
    pub block_bytes: u64,
    /// Bytes of the profiles in blocks, as received.
    pub block_ingested_bytes: u64,
    pub appends_total: u64,
    pub blocks_written_total: u64,
    pub compactions_total: u64,
    /// Appends refuse to write because the disk is full (until one succeeds).
    pub disk_full: bool,
    /// Why the last WAL write or sync failed, while ingest is failing.
    pub write_error: Option<String>,
    /// WAL writes and syncs that failed since start.
    pub write_errors_total: u64,
    /// Records written but dropped again because the WAL sync failed.
    pub lost_records_total: u64,
}

/// What a visit of the stored profiles is called with: the series, the profile's time (a
/// rollup's bucket start), how many profiles it stands for (1, or a rollup's count), and
/// the profile.
pub type Visitor<'a> = dyn FnMut(&SeriesKey, i64, u64, Profile) -> Result<(), Error> + 'a;

/// How a visit reads the stored profiles.
#[derive(Default)]
struct Visit<'a> {
    /// Which rollups (bucket start, end) inside the range may stand in for their
    /// profiles; `None`: none.
    use_rollup: Option<&'a dyn Fn(i64, i64) -> bool>,
    /// Decode sample labels.
    labels: bool,
    /// Which single profiles (series, time) to read, asked before anything is decoded;
    /// `None`: all.
    keep: Option<&'a Keep<'a>>,
}

/// Whether to read the single profile of a series at a time.
type Keep<'a> = dyn Fn(&SeriesKey, i64) -> bool + 'a;

/// A runtime-metric series with its (time, value) points.
pub type MetricSeries = (SeriesKey, Vec<(i64, f64)>);

/// A profile in the head: its time, where its payload lies in the WAL, and — while the
/// head cache has room — the profile already encoded against its segment's symbols, so
/// cutting the block needs no second decode.
#[derive(Debug, Clone)]
struct Entry {
    time_ns: i64,
    pos: wal::Pos,
    enc: Option<Arc<[u8]>>,
}

#[derive(Debug, Clone, Copy)]
struct Point {
    t: i64,
    v: f64,
    seq: u64,
    /// Offset of its WAL record in the segment.
    off: u64,
}

/// A block in the catalog: its index, parsed once.
struct Block {
    name: String,
    size: u64,
    meta: BlockMeta,
    keys: Vec<SeriesKey>,
    metric_keys: Vec<SeriesKey>,
}

impl Block {
    fn overlaps(&self, from: i64, to: i64) -> bool {
        self.meta.min_time_ns <= to && self.meta.max_time_ns >= from
    }
}

/// Symbols of the profiles the head encoded on append: per WAL segment, per service.
type HeadSymbols = BTreeMap<u64, BTreeMap<String, block::SymTabBuilder>>;

struct Inner {
    wal: wal::Wal,
    head_symbols: HeadSymbols,
    /// Bytes of encoded profiles held by head entries.
    cache_bytes: usize,
    head: BTreeMap<SeriesKey, Vec<Entry>>,
    metrics: BTreeMap<SeriesKey, Vec<Point>>,
    blocks: Vec<Arc<Block>>,
    appends: u64,
    blocks_written: u64,
    compactions: u64,
    /// Records failed syncs dropped (their LSN ranges), for [`Store::commit`].
    lost: VecDeque<(std::ops::RangeInclusive<Lsn>, String)>,
    lost_records: u64,
    /// Set while WAL writes fail (the first line of the error), cleared by a good append.
    write_error: Option<String>,
    disk_full: bool,
    write_errors: u64,
}

/// How many failed-sync LSN ranges [`Store::commit`] remembers.
const LOST_RANGES: usize = 4096;

fn is_disk_full(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
    )
}

/// The store. All methods take `&self`; it is safe to share across threads.
pub struct Store {
    opts: Options,
    _lock: File,
    blobs: blobs::Blobs,
    inner: Mutex<Inner>,
    /// Held while a flush, compaction or retention pass rewrites blocks.
    maintenance: Mutex<()>,
    /// Held around every fsync of the WAL (taken before `inner`), so one sync's outcome is
    /// never another's: Linux reports a writeback error to one `fsync` only.
    sync_lock: Mutex<()>,
}

/// Catalog order: oldest data first.
fn block_order(a: &Block, b: &Block) -> std::cmp::Ordering {
    (a.meta.min_time_ns, &a.meta.id).cmp(&(b.meta.min_time_ns, &b.meta.id))
}

impl Inner {
    fn add_block(&mut self, b: Block) {
        let at = self.blocks.partition_point(|x| block_order(x, &b).is_le());
        self.blocks.insert(at, Arc::new(b));
    }
}

fn insert_sorted<T>(v: &mut Vec<T>, x: T, t: impl Fn(&T) -> i64) {
    let at = t(&x);
    let pos = v.partition_point(|e| t(e) <= at);
    v.insert(pos, x);
}

const BLOCK_SUFFIX: &str = ".gcb";

fn new_block_id(level: u32) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    format!(
        "L{level}-{now:016x}-{:04x}{:04x}",
        std::process::id() & 0xffff,
        N.fetch_add(1, Ordering::Relaxed) & 0xffff
    )
}

impl Store {
    /// Opens the store in `opts.dir`: reads the block catalog, then replays the WAL
    /// segments that are not in blocks yet.
    pub fn open(opts: Options) -> Result<(Store, ReplayReport), Error> {
        std::fs::create_dir_all(&opts.dir)?;
        // One process per data directory: two would interleave WAL segments. The kernel
        // drops the lock when the process dies, however it dies.
        let lock = File::create(opts.dir.join("LOCK"))?;
        if let Err(e) = lock.try_lock() {
            return Err(Error::Io(std::io::Error::new(
                std::io::ErrorKind::WouldBlock,
                format!(
                    "{} is in use by another gocost process ({e})",
                    opts.dir.display()
                ),
            )));
        }
        // Block files a crash left half-written.
        let _ = std::fs::remove_dir_all(opts.dir.join("tmp"));
        let blobs = blobs::Blobs::open(&opts.blobs, &opts.dir)?;
        let mut report = ReplayReport::default();
        let mut blocks = Vec::new();
        for l in blobs.list(BLOCK_SUFFIX)? {
            match read_index(&blobs, &l.name, l.size) {
                Ok(b) => blocks.push(b),
                Err(e) => report
                    .corrupt
                    .push(format!("block {} skipped: {e}", l.name)),
            }
        }
        // A compaction that wrote its block but did not finish deleting the inputs.
        let replaced: BTreeSet<String> = blocks
            .iter()
            .flat_map(|b| b.meta.replaces.iter().cloned())
            .collect();
        for b in blocks.iter().filter(|b| replaced.contains(&b.meta.id)) {
            blobs.delete(&b.name)?;
        }
        blocks.retain(|b| !replaced.contains(&b.meta.id));
        blocks.sort_by(block_order);
        let done: BTreeSet<u64> = blocks
            .iter()
            .flat_map(|b| b.meta.sources.iter().copied())
            .collect();
        let mut head: BTreeMap<SeriesKey, Vec<Entry>> = BTreeMap::new();
        let mut metrics: BTreeMap<SeriesKey, Vec<Point>> = BTreeMap::new();
        let mut skipped = 0usize;
        let (wal, wal_report) = wal::Wal::open(
            &opts.dir.join("wal"),
            |seq| done.contains(&seq),
            opts.faults.clone(),
            |seq, off, pos, r| match (r, pos) {
                (wal::Record::Profile { time_ns, key, .. }, Some(pos)) => {
                    match SeriesKey::parse(&key) {
                        Ok(k) => insert_sorted(
                            head.entry(k).or_default(),
                            Entry {
                                time_ns,
                                pos,
                                enc: None,
                            },
                            |e| e.time_ns,
                        ),
                        Err(_) => skipped += 1,
                    }
                }
                (wal::Record::Points(points), _) => {
                    for (key, t, v) in points {
                        match SeriesKey::parse(&key) {
                            Ok(k) => insert_sorted(
                                metrics.entry(k).or_default(),
                                Point { t, v, seq, off },
                                |p| p.t,
                            ),
                            Err(_) => skipped += 1,
                        }
                    }
                }
                (wal::Record::Profile { .. }, None) => skipped += 1,
            },
        )?;
        report.segments = wal_report.segments;
        report.records = wal_report.records;
        report.truncated_bytes = wal_report.truncated_bytes;
        report.corrupt.extend(wal_report.corrupt);
        if skipped > 0 {
            report.corrupt.push(format!(
                "{skipped} records with unparsable series keys skipped"
            ));
        }
        let store = Store {
            opts,
            _lock: lock,
            blobs,
            inner: Mutex::new(Inner {
                wal,
                head_symbols: BTreeMap::new(),
                cache_bytes: 0,
                head,
                metrics,
                blocks: blocks.into_iter().map(Arc::new).collect(),
                appends: 0,
                blocks_written: 0,
                compactions: 0,
                lost: VecDeque::new(),
                lost_records: 0,
                write_error: None,
                disk_full: false,
                write_errors: 0,
            }),
            maintenance: Mutex::new(()),
            sync_lock: Mutex::new(()),
        };
        Ok((store, report))
    }

    /// Where blocks are kept, for logs.
    pub fn blocks_location(&self) -> &str {
        &self.blobs.describe
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the head half-updated in a way that
        // matters more than losing the store: keep serving.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Validates and stores one profile of a series at `time_ns`. It is written to the WAL
    /// at once and durable after the next [`sync`](Store::sync); [`commit`](Store::commit)
    /// with the returned number waits for that.
    pub fn append(&self, key: &SeriesKey, time_ns: i64, bytes: &[u8]) -> Result<Lsn, Error> {
        if bytes.len() > MAX_RECORD - 1024 {
            return Err(Error::TooLarge(bytes.len()));
        }
        let opts = gocost_pprof::DecodeOptions {
            max_size: self.opts.max_profile_size,
            labels: true,
        };
        let p = gocost_pprof::decode_with(bytes, &opts).map_err(Error::BadProfile)?;
        gocost_pprof::check_depth(&p, gocost_pprof::MAX_STACK_DEPTH).map_err(Error::TooDeep)?;
        self.append_valid(key, time_ns, bytes, &p)
    }

    /// Stores a profile gocost built itself (a delta of cumulative scrapes): it is encoded
    /// here, and needs no validation.
    pub fn append_profile(&self, key: &SeriesKey, time_ns: i64, p: &Profile) -> Result<Lsn, Error> {
        gocost_pprof::check_depth(p, gocost_pprof::MAX_STACK_DEPTH).map_err(Error::TooDeep)?;
        let bytes = gocost_pprof::encode(p);
        if bytes.len() > MAX_RECORD - 1024 {
            return Err(Error::TooLarge(bytes.len()));
        }
        self.append_valid(key, time_ns, &bytes, p)
    }

    fn append_valid(
        &self,
        key: &SeriesKey,
        time_ns: i64,
        bytes: &[u8],
        p: &Profile,
    ) -> Result<Lsn, Error> {
        let rec = wal::Record::Profile {
            time_ns,
            key: key.to_string(),
            payload: bytes.to_vec(),
        };
        let (mut g, a) = self.wal_append(&rec)?;
        let Some(pos) = a.payload else {
            return Ok(a.lsn);
        };
        g.appends += 1;
        let enc = if g.cache_bytes < self.opts.head_cache_bytes {
            let sym = g
                .head_symbols
                .entry(pos.seq)
                .or_default()
                .entry(block::group_of(key).to_string())
                .or_default();
            let enc: Arc<[u8]> = sym.encode_profile(p, time_ns).into();
            g.cache_bytes += enc.len();
            Some(enc)
        } else {
            None
        };
        insert_sorted(
            g.head.entry(key.clone()).or_default(),
            Entry { time_ns, pos, enc },
            |e| e.time_ns,
        );
        Ok(a.lsn)
    }

    /// Appends one record to the WAL; on success returns with the lock held, so the caller
    /// indexes the record before anyone can see the WAL without it. A write that fails
    /// leaves the WAL as it was (the partial record is cut off again).
    fn wal_append(
        &self,
        rec: &wal::Record,
    ) -> Result<(MutexGuard<'_, Inner>, wal::Appended), Error> {
        let frame = wal::Wal::frame(rec).map_err(|_| {
            Error::TooLarge(match rec {
                wal::Record::Profile { payload, .. } => payload.len(),
                wal::Record::Points(p) => p.iter().map(|(k, _, _)| k.len() + 20).sum(),
            })
        })?;
        let mut g = self.lock();
        let mut _sync = None;
        if g.wal.needs_rotation(frame.len()) {
            // Starting a segment syncs the current one: that takes the sync lock first.
            drop(g);
            _sync = Some(self.sync_lock.lock().unwrap_or_else(|p| p.into_inner()));
            g = self.lock();
        }
        let res = g.wal.append(rec, &frame);
        self.reap(&mut g);
        match res {
            Ok(a) => {
                if g.write_error.take().is_some() {
                    g.disk_full = false;
                }
                Ok((g, a))
            }
            Err(e) => Err(self.write_failed(&mut g, e)),
        }
    }

    /// Notes a failed WAL write or sync and says what it means for the caller.
    fn write_failed(&self, g: &mut Inner, e: std::io::Error) -> Error {
        g.write_errors += 1;
        let wal = self.opts.dir.join("wal");
        if is_disk_full(&e) {
            g.disk_full = true;
            let msg = format!(
                "disk full: cannot write the WAL in {} ({e}); ingest is paused until space is freed",
                wal.display()
            );
            g.write_error = Some(msg.clone());
            Error::DiskFull(msg)
        } else {
            let msg = format!("writing the WAL in {} failed: {e}", wal.display());
            g.write_error = Some(msg.clone());
            Error::Io(std::io::Error::new(e.kind(), msg))
        }
    }

    /// Drops from the head what failed syncs cut from the WAL, and remembers their numbers
    /// for [`commit`](Store::commit).
    fn reap(&self, g: &mut Inner) {
        for l in g.wal.take_lost() {
            let mut freed = 0;
            let mut n = 0u64;
            for v in g.head.values_mut() {
                v.retain(|e| {
                    let gone = e.pos.seq == l.seq && e.pos.offset >= l.offset;
                    if gone {
                        freed += e.enc.as_ref().map_or(0, |b| b.len());
                        n += 1;
                    }
                    !gone
                });
            }
            g.cache_bytes -= freed;
            g.head.retain(|_, v| !v.is_empty());
            for v in g.metrics.values_mut() {
                v.retain(|p| !(p.seq == l.seq && p.off >= l.offset));
            }
            g.metrics.retain(|_, v| !v.is_empty());
            g.appends = g.appends.saturating_sub(n);
            g.lost_records += l.lsns.end().saturating_sub(*l.lsns.start()) + 1;
            g.write_errors += 1;
            g.write_error = Some(format!("syncing the WAL failed: {}", l.error));
            if g.lost.len() == LOST_RANGES {
                g.lost.pop_front();
            }
            g.lost.push_back((l.lsns, l.error));
        }
    }

    /// Whether record `lsn` is durable: `Ok(true)` if synced, `Ok(false)` if not yet, an
    /// error if a failed sync dropped it.
    fn durable(g: &Inner, lsn: Lsn) -> Result<bool, Error> {
        if let Some((_, e)) = g.lost.iter().rev().find(|(r, _)| r.contains(&lsn)) {
            return Err(Error::NotDurable(format!(
                "the WAL could not be synced ({e}): the profile was not stored"
            )));
        }
        Ok(g.wal.synced_lsn() >= lsn)
    }

    /// Waits until record `lsn` (from an append) is durable: synced to disk, so that a crash
    /// or power loss cannot lose it. Concurrent callers share one `fsync` (group commit).
    /// An error means the record is not stored: the sync failed and it was dropped.
    pub fn commit(&self, lsn: Lsn) -> Result<(), Error> {
        if Self::durable(&self.lock(), lsn)? {
            return Ok(());
        }
        let _s = self.sync_lock.lock().unwrap_or_else(|p| p.into_inner());
        if Self::durable(&self.lock(), lsn)? {
            return Ok(());
        }
        self.sync_locked()?;
        if Self::durable(&self.lock(), lsn)? {
            Ok(())
        } else {
            Err(Error::NotDurable(format!(
                "record {lsn} is not in the WAL: the profile was not stored"
            )))
        }
    }

    /// Stores runtime-metric points: (series, time, value). Series keys use the kind
    /// `metric` and the label `__name__`.
    pub fn append_points(&self, points: &[(SeriesKey, i64, f64)]) -> Result<Lsn, Error> {
        if points.is_empty() {
            return Ok(0);
        }
        let rec = wal::Record::Points(
            points
                .iter()
                .map(|(k, t, v)| (k.to_string(), *t, *v))
                .collect(),
        );
        let (mut g, a) = self.wal_append(&rec)?;
        for (k, t, v) in points {
            let p = Point {
                t: *t,
                v: *v,
                seq: a.seq,
                off: a.offset,
            };
            insert_sorted(g.metrics.entry(k.clone()).or_default(), p, |p| p.t);
        }
        Ok(a.lsn)
    }

    /// Runtime-metric series matching `sel` with their points in `[from_ns, to_ns]`.
    pub fn select_points(
        &self,
        sel: &Selector,
        from_ns: i64,
        to_ns: i64,
    ) -> Result<Vec<MetricSeries>, Error> {
        let (mut out, blocks) = {
            let g = self.lock();
            let mut out: BTreeMap<SeriesKey, Vec<(i64, f64)>> = BTreeMap::new();
            for (k, v) in g.metrics.iter().filter(|(k, _)| sel.matches(k)) {
                let lo = v.partition_point(|p| p.t < from_ns);
                let hi = v.partition_point(|p| p.t <= to_ns);
                if lo < hi {
                    out.insert(k.clone(), v[lo..hi].iter().map(|p| (p.t, p.v)).collect());
                }
            }
            let blocks: Vec<Arc<Block>> = g
                .blocks
                .iter()
                .filter(|b| {
                    b.overlaps(from_ns, to_ns) && b.metric_keys.iter().any(|k| sel.matches(k))
                })
                .cloned()
                .collect();
            (out, blocks)
        };
        for b in blocks {
            let Some(sec) = b.meta.points else { continue };
            let all = block::parse_points(&self.section(&b, &sec)?, b.metric_keys.len())
                .map_err(|e| block_err(&b.name, e))?;
            for (k, pts) in b.metric_keys.iter().zip(all) {
                if !sel.matches(k) {
                    continue;
                }
                let v = out.entry(k.clone()).or_default();
                v.extend(pts.into_iter().filter(|p| p.0 >= from_ns && p.0 <= to_ns));
            }
        }
        out.retain(|_, v| !v.is_empty());
        for v in out.values_mut() {
            v.sort_by_key(|p| p.0);
        }
        Ok(out.into_iter().collect())
    }

    /// Makes every appended profile durable. The `fsync` runs outside the store's lock:
    /// appends and queries go on meanwhile. If it fails, the records it was to make durable
    /// are dropped (from the WAL and the head) and the next record starts a new segment.
    pub fn sync(&self) -> Result<(), Error> {
        let _s = self.sync_lock.lock().unwrap_or_else(|p| p.into_inner());
        self.sync_locked()
    }

    /// [`sync`](Store::sync) with the sync lock held.
    fn sync_locked(&self) -> Result<(), Error> {
        let Some(t) = self.lock().wal.sync_ticket() else {
            return Ok(());
        };
        let res = t.sync();
        let mut g = self.lock();
        let res = g.wal.synced(&t, res);
        self.reap(&mut g);
        res.map_err(|e| {
            let msg = format!("syncing the WAL failed ({e}): unsynced records were dropped");
            g.write_error = Some(msg.clone());
            Error::NotDurable(msg)
        })
    }

    fn section(&self, b: &Block, s: &block::Section) -> Result<Vec<u8>, Error> {
        let z = self
            .blobs
            .get_range(&b.name, s.offset..s.offset.saturating_add(s.len))?;
        block::inflate_checked(&z, s).map_err(|e| block_err(&b.name, e))
    }

    /// Cuts closed WAL segments into blocks (one each). The current segment is closed
    /// first if it is older than the block duration, or if `force`. Returns whether a
    /// block was written.
    pub fn flush(&self, force: bool) -> Result<bool, Error> {
        let _m = self.maintenance.lock().unwrap_or_else(|p| p.into_inner());
        {
            let _s = self.sync_lock.lock().unwrap_or_else(|p| p.into_inner());
            let mut g = self.lock();
            let due = g
                .wal
                .current_age()
                .is_some_and(|a| force || a.as_nanos() as i64 >= self.opts.block_duration_ns);
            if due {
                let res = g.wal.rotate();
                self.reap(&mut g);
                if let Err(e) = res {
                    return Err(self.write_failed(&mut g, e));
                }
            }
        }
        let mut wrote = false;
        loop {
            let Some(seq) = self.lock().wal.closed().first().copied() else {
                return Ok(wrote);
            };
            wrote |= self.flush_segment(seq)?;
        }
    }

    /// Writes the block of one closed WAL segment, then deletes the segment. If that
    /// fails, the segment stays for the next try, which decodes its profiles from the WAL
    /// (their cached encodings went with the symbols handed to the failed block).
    fn flush_segment(&self, seq: u64) -> Result<bool, Error> {
        let res = self.try_flush_segment(seq);
        if res.is_err() {
            let mut g = self.lock();
            g.head_symbols.remove(&seq);
            let mut freed = 0;
            for e in g.head.values_mut().flatten().filter(|e| e.pos.seq == seq) {
                freed += e.enc.take().map_or(0, |b| b.len());
            }
            g.cache_bytes -= freed;
        }
        res
    }

    fn try_flush_segment(&self, seq: u64) -> Result<bool, Error> {
        let (series, points, file, mut symbols) = {
            let mut g = self.lock();
            let mut series: Vec<(SeriesKey, Vec<Entry>)> = g
                .head
                .iter()
                .filter_map(|(k, v)| {
                    let e: Vec<Entry> = v.iter().filter(|e| e.pos.seq == seq).cloned().collect();
                    (!e.is_empty()).then(|| (k.clone(), e))
                })
                .collect();
            series
                .sort_by(|a, b| (block::group_of(&a.0), &a.0).cmp(&(block::group_of(&b.0), &b.0)));
            let points: BTreeMap<SeriesKey, Vec<(i64, f64)>> = g
                .metrics
                .iter()
                .map(|(k, v)| {
                    let pts = v.iter().filter(|p| p.seq == seq).map(|p| (p.t, p.v));
                    (k.clone(), pts.collect())
                })
                .collect();
            let file = g.wal.open_segment(seq)?;
            let symbols = g.head_symbols.remove(&seq).unwrap_or_default();
            (series, points, file, symbols)
        };
        let (mut w, tmp) = self.block_writer(BlockInfo {
            id: new_block_id(0),
            level: 0,
            steps: vec![HOUR_NS],
            sources: vec![seq],
            replaces: Vec::new(),
        })?;
        let _tmp = TmpFile(tmp.clone());
        let decode = gocost_pprof::DecodeOptions {
            max_size: self.opts.max_profile_size,
            labels: true,
        };
        let mut group: Option<&str> = None;
        for (key, entries) in &series {
            let name = block::group_of(key);
            if group != Some(name) {
                group = Some(name);
                if let Some(sym) = symbols.remove(name) {
                    w.group_symbols(name, sym)?;
                }
            }
            let items = entries.iter().filter_map(|e| {
                let raw_len = u64::from(e.pos.len);
                if let Some(enc) = &e.enc {
                    return Some(Ok(block::Item::Encoded(e.time_ns, enc.clone(), raw_len)));
                }
                let bytes = wal::read_payload(&file, e.pos).ok()?;
                // Validated on append; a payload that no longer decodes is left out.
                let p = gocost_pprof::decode_with(&bytes, &decode).ok()?;
                Some(Ok(block::Item::Profile(e.time_ns, Box::new(p), raw_len)))
            });
            w.series(key, items)?;
        }
        w.points(points)?;
        let wrote = !w.is_empty();
        if wrote {
            let meta = w.finish()?;
            let b = self.put_block(&tmp, meta)?;
            let mut g = self.lock();
            g.add_block(b);
            g.blocks_written += 1;
        } else {
            drop(w);
            let _ = std::fs::remove_file(&tmp);
        }
        let mut g = self.lock();
        let mut freed = 0;
        for v in g.head.values_mut() {
            v.retain(|e| {
                let keep = e.pos.seq != seq;
                if !keep {
                    freed += e.enc.as_ref().map_or(0, |b| b.len());
                }
                keep
            });
        }
        g.cache_bytes -= freed;
        g.head.retain(|_, v| !v.is_empty());
        for v in g.metrics.values_mut() {
            v.retain(|p| p.seq != seq);
        }
        g.metrics.retain(|_, v| !v.is_empty());
        g.wal.remove_through(seq)?;
        Ok(wrote)
    }

    /// A block writer into a temporary file under `<data>/tmp/`.
    fn block_writer(&self, info: BlockInfo) -> Result<(BlockWriter, PathBuf), Error> {
        let dir = self.opts.dir.join("tmp");
        std::fs::create_dir_all(&dir)?;
        let tmp = dir.join(format!("{}{BLOCK_SUFFIX}.tmp", info.id));
        let f = std::io::BufWriter::with_capacity(1 << 20, File::create(&tmp)?);
        let w = BlockWriter::new(info, Box::new(f))?;
        Ok((w, tmp))
    }

    /// Moves a written block into block storage and makes its catalog entry.
    fn put_block(&self, tmp: &Path, meta: BlockMeta) -> Result<Block, Error> {
        let name = format!("{}{BLOCK_SUFFIX}", meta.id);
        let size = std::fs::metadata(tmp)?.len();
        if let Err(e) = self.blobs.put_file(&name, tmp) {
            let _ = std::fs::remove_file(tmp);
            return Err(e.into());
        }
        catalog_entry(name, size, meta)
    }

    /// Merges the blocks of each finished UTC day (ended at least two block durations
    /// before `now_ns`) into one block with hourly and daily rollups. Returns how many days
    /// were compacted.
    pub fn compact(&self, now_ns: i64) -> Result<usize, Error> {
        let _m = self.maintenance.lock().unwrap_or_else(|p| p.into_inner());
        let blocks = self.lock().blocks.clone();
        let mut days: BTreeMap<i64, Vec<Arc<Block>>> = BTreeMap::new();
        for b in &blocks {
            days.entry(b.meta.min_time_ns.div_euclid(DAY_NS))
                .or_default()
                .push(b.clone());
        }
        let mut n = 0;
        for (day, group) in days {
            let finished = (day + 1) * DAY_NS + 2 * self.opts.block_duration_ns <= now_ns;
            if !finished || group.iter().all(|b| b.meta.level > 0) {
                continue;
            }
            self.compact_group(&group)?;
            n += 1;
        }
        Ok(n)
    }

    fn compact_group(&self, group: &[Arc<Block>]) -> Result<(), Error> {
        let (mut w, tmp) = self.block_writer(BlockInfo {
            id: new_block_id(1),
            level: 1,
            steps: vec![HOUR_NS, DAY_NS],
            sources: Vec::new(),
            replaces: group.iter().map(|b| b.meta.id.clone()).collect(),
        })?;
        let _tmp = TmpFile(tmp.clone());
        // Every series of every input, grouped by service, each merged across inputs.
        let mut keys: BTreeSet<(String, SeriesKey)> = BTreeSet::new();
        for b in group {
            for k in &b.keys {
                keys.insert((block::group_of(k).to_string(), k.clone()));
            }
        }
        let mut tabs: HashMap<(usize, u32), Arc<SymTab>> = HashMap::new();
        let mut ingested = 0u64;
        for b in group {
            ingested += b.meta.ingested_bytes;
        }
        let mut service: Option<&str> = None;
        for (name, key) in &keys {
            // Symbols are per service: keep only the current one's decoded.
            if service != Some(name.as_str()) {
                service = Some(name.as_str());
                tabs.clear();
            }
            // The series' stored profiles in every input, decoded one at a time in time
            // order: a day of one series never sits in memory decoded.
            let mut raws: Vec<(Arc<SymTab>, Vec<u8>, &str)> = Vec::new();
            for (bi, b) in group.iter().enumerate() {
                let Some(si) = b.keys.iter().position(|k| k == key) else {
                    continue;
                };
                let sm = &b.meta.series[si];
                let tab = self.symtab(&mut tabs, bi, b, sm.group)?;
                raws.push((tab, self.section(b, &sm.raw)?, &b.name));
            }
            let mut order: Vec<(i64, usize, &[u8])> = Vec::new();
            for (ri, (_, raw, name)) in raws.iter().enumerate() {
                for bytes in block::parse_raw(raw).map_err(|e| block_err(name, e))? {
                    let t = symtab::stored_time(bytes).map_err(|e| block_err(name, e))?;
                    order.push((t, ri, bytes));
                }
            }
            order.sort_by_key(|x| (x.0, x.1));
            let items = order.into_iter().map(|(t, ri, bytes)| {
                let (tab, _, name) = &raws[ri];
                let p = tab
                    .profile(bytes, true)
                    .map_err(|e| BlockError(format!("{name}: {e}")))?;
                Ok(block::Item::Profile(t, Box::new(p), 0))
            });
            w.series(key, items)?;
        }
        let mut points: BTreeMap<SeriesKey, Vec<(i64, f64)>> = BTreeMap::new();
        for b in group {
            let Some(sec) = b.meta.points else { continue };
            let all = block::parse_points(&self.section(b, &sec)?, b.metric_keys.len())
                .map_err(|e| block_err(&b.name, e))?;
            for (k, pts) in b.metric_keys.iter().zip(all) {
                points.entry(k.clone()).or_default().extend(pts);
            }
        }
        w.points(points)?;
        let mut meta = w.finish()?;
        meta.ingested_bytes = ingested;
        let nb = self.put_block(&tmp, meta)?;
        {
            let mut g = self.lock();
            let gone: BTreeSet<&str> = group.iter().map(|b| b.meta.id.as_str()).collect();
            g.blocks.retain(|b| !gone.contains(b.meta.id.as_str()));
            g.add_block(nb);
            g.compactions += 1;
        }
        for b in group {
            self.blobs.delete(&b.name)?;
        }
        Ok(())
    }

    fn symtab(
        &self,
        cache: &mut HashMap<(usize, u32), Arc<SymTab>>,
        bi: usize,
        b: &Block,
        group: u32,
    ) -> Result<Arc<SymTab>, Error> {
        if let Some(t) = cache.get(&(bi, group)) {
            return Ok(t.clone());
        }
        let gm = b
            .meta
            .groups
            .get(group as usize)
            .ok_or_else(|| block_err(&b.name, format!("group {group} out of range")))?;
        let t = Arc::new(
            SymTab::decode(&self.section(b, &gm.symbols)?)
                .map_err(|e| block_err(&b.name, format!("symbols of {:?}: {e}", gm.name)))?,
        );
        cache.insert((bi, group), t.clone());
        Ok(t)
    }

    /// Drops profiles and points older than the retention (relative to `now_ns`): from the
    /// head, and whole blocks whose newest data is older.
    pub fn apply_retention(&self, now_ns: i64) -> Result<(), Error> {
        if self.opts.retention_ns <= 0 {
            return Ok(());
        }
        let _m = self.maintenance.lock().unwrap_or_else(|p| p.into_inner());
        let cutoff = now_ns - self.opts.retention_ns;
        let expired: Vec<Arc<Block>> = {
            let mut g = self.lock();
            let mut freed = 0;
            for v in g.head.values_mut() {
                let n = v.partition_point(|e| e.time_ns < cutoff);
                freed += v
                    .drain(..n)
                    .map(|e| e.enc.map_or(0, |b| b.len()))
                    .sum::<usize>();
            }
            g.cache_bytes -= freed;
            g.head.retain(|_, v| !v.is_empty());
            for v in g.metrics.values_mut() {
                let n = v.partition_point(|p| p.t < cutoff);
                v.drain(..n);
            }
            g.metrics.retain(|_, v| !v.is_empty());
            let (old, keep) = std::mem::take(&mut g.blocks)
                .into_iter()
                .partition(|b| b.meta.max_time_ns < cutoff);
            g.blocks = keep;
            old
        };
        for b in expired {
            self.blobs.delete(&b.name)?;
        }
        Ok(())
    }

    /// Calls `f` with the profiles of matching series within `[from_ns, to_ns]`, for totals
    /// over time, with how many profiles each stands for; sample labels are decoded only
    /// with `labels`.
    /// With `step_ns`, a stored rollup (the merge of every profile of an hour or a day)
    /// stands in for its profiles when it lies wholly inside one `step_ns` bucket counted
    /// from `from_ns`; `f` then sees it at its bucket start, with its profile count. Without,
    /// every profile is visited at its own time (count 1).
    pub fn for_each_profile(
        &self,
        sel: &Selector,
        from_ns: i64,
        to_ns: i64,
        step_ns: Option<i64>,
        labels: bool,
        f: &mut Visitor<'_>,
    ) -> Result<(), Error> {
        match step_ns.filter(|&s| s > 0) {
            Some(step) => {
                let same_bucket = |a: i64, z: i64| {
                    (a - from_ns).div_euclid(step) == (z - from_ns).div_euclid(step)
                };
                let how = Visit {
                    use_rollup: Some(&same_bucket),
                    labels,
                    keep: None,
                };
                self.visit(sel, from_ns, to_ns, &how, f)
            }
            None => {
                let how = Visit {
                    labels,
                    ..Visit::default()
                };
                self.visit(sel, from_ns, to_ns, &how, f)
            }
        }
    }

    /// The merged profile of matching series within `[from_ns, to_ns]` (`None` if nothing
    /// matched), merged with pprof's rules: [`Agg::Sum`]. Whole hours and days inside the
    /// range come from rollups, merged when the block was written.
    pub fn query(
        &self,
        sel: &Selector,
        from_ns: i64,
        to_ns: i64,
    ) -> Result<Option<Profile>, Error> {
        let mut c = Combiner::new();
        let how = Visit {
            use_rollup: Some(&|_, _| true),
            labels: true,
            keep: None,
        };
        self.visit(sel, from_ns, to_ns, &how, &mut |_, _, _, p| {
            c.push(p).map_err(Error::Merge)
        })?;
        Ok(c.finish())
    }

    fn visit(
        &self,
        sel: &Selector,
        from: i64,
        to: i64,
        how: &Visit<'_>,
        f: &mut Visitor<'_>,
    ) -> Result<(), Error> {
        let keep = |k: &SeriesKey, t: i64| how.keep.is_none_or(|keep| keep(k, t));
        // Take what to read under the lock; read it without. Open segment handles stay
        // readable if a flush deletes the files meanwhile.
        let (head, files, blocks) = {
            let g = self.lock();
            let head: Vec<(SeriesKey, Vec<Entry>)> = g
                .head
                .iter()
                .filter(|(k, _)| sel.matches(k))
                .filter_map(|(k, v)| {
                    let lo = v.partition_point(|e| e.time_ns < from);
                    let hi = v.partition_point(|e| e.time_ns <= to);
                    let picked: Vec<Entry> = v[lo..hi]
                        .iter()
                        .filter(|e| keep(k, e.time_ns))
                        .cloned()
                        .collect();
                    (!picked.is_empty()).then(|| (k.clone(), picked))
                })
                .collect();
            let mut files = HashMap::new();
            for e in head.iter().flat_map(|(_, v)| v) {
                if let std::collections::hash_map::Entry::Vacant(s) = files.entry(e.pos.seq) {
                    s.insert(g.wal.open_segment(e.pos.seq)?);
                }
            }
            let blocks: Vec<Arc<Block>> = g
                .blocks
                .iter()
                .filter(|b| b.overlaps(from, to))
                .cloned()
                .collect();
            (head, files, blocks)
        };
        let labels = how.labels;
        for (bi, b) in blocks.iter().enumerate() {
            let mut tabs = HashMap::new();
            for (si, key) in b.keys.iter().enumerate() {
                let sm = &b.meta.series[si];
                if !sel.matches(key) || sm.min_time_ns > to || sm.max_time_ns < from {
                    continue;
                }
                let tab = self.symtab(&mut tabs, bi, b, sm.group)?;
                let bad = |e: block::BlockError| block_err(&b.name, e);
                let bad_codec = |e: codec::CodecError| block_err(&b.name, e);
                // Whole buckets inside the range, largest first, never overlapping.
                let mut picked: Vec<(i64, i64)> = Vec::new();
                if let Some(ok) = how.use_rollup
                    && let Some(rs) = &sm.rollups
                {
                    let sec = self.section(b, rs)?;
                    let mut rolls = block::parse_rollups(&sec).map_err(bad)?;
                    rolls.sort_by_key(|r| (std::cmp::Reverse(r.step), r.start));
                    for r in rolls {
                        let end = r.start.saturating_add(r.step - 1);
                        if r.start < from
                            || end > to
                            || !ok(r.start, end)
                            || picked.iter().any(|&(a, z)| r.start <= z && a <= end)
                        {
                            continue;
                        }
                        picked.push((r.start, end));
                        f(
                            key,
                            r.start,
                            r.count.max(1),
                            tab.profile(r.bytes, labels).map_err(bad_codec)?,
                        )?;
                    }
                }
                let covered = |t: i64| picked.iter().any(|&(a, z)| a <= t && t <= z);
                let (lo, hi) = (from.max(sm.min_time_ns), to.min(sm.max_time_ns));
                if covered_range(&picked, lo, hi) {
                    continue;
                }
                let raw = self.section(b, &sm.raw)?;
                for bytes in block::parse_raw(&raw).map_err(bad)? {
                    let t = symtab::stored_time(bytes).map_err(bad_codec)?;
                    if t < from || t > to || covered(t) || !keep(key, t) {
                        continue;
                    }
                    f(key, t, 1, tab.profile(bytes, labels).map_err(bad_codec)?)?;
                }
            }
        }
        let decode = gocost_pprof::DecodeOptions {
            max_size: self.opts.max_profile_size,
            labels,
        };
        for (key, entries) in &head {
            for e in entries {
                let bytes = read_entry(&files, e)?;
                let p = gocost_pprof::decode_with(&bytes, &decode).map_err(Error::BadProfile)?;
                f(key, e.time_ns, 1, p)?;
            }
        }
        Ok(())
    }

    /// All series keys, in the head and in blocks.
    pub fn series(&self) -> Vec<SeriesKey> {
        let g = self.lock();
        let s: BTreeSet<&SeriesKey> = g
            .head
            .keys()
            .chain(g.blocks.iter().flat_map(|b| b.keys.iter()))
            .collect();
        s.into_iter().cloned().collect()
    }

    /// Label names across all series (the kind is separate, not a label).
    pub fn label_names(&self) -> Vec<String> {
        let keys = self.series();
        let s: BTreeSet<&String> = keys.iter().flat_map(|k| k.labels.keys()).collect();
        s.into_iter().cloned().collect()
    }

    /// Values of one label across all series.
    pub fn label_values(&self, name: &str) -> Vec<String> {
        let keys = self.series();
        let s: BTreeSet<&String> = keys.iter().filter_map(|k| k.labels.get(name)).collect();
        s.into_iter().cloned().collect()
    }

    /// Reads every block whole and checks that all of it decodes; returns the problems
    /// found (empty = clean).
    pub fn verify(&self) -> Result<Vec<String>, Error> {
        let blocks = self.lock().blocks.clone();
        let mut problems = Vec::new();
        for b in blocks {
            let file = self.blobs.get_range(&b.name, 0..b.size)?;
            if let Err(e) = block::verify_file(&file) {
                problems.push(format!("{}: {e}", b.name));
            }
        }
        Ok(problems)
    }

    /// The block catalog's indexes, oldest first.
    pub fn blocks(&self) -> Vec<BlockMeta> {
        self.lock().blocks.iter().map(|b| b.meta.clone()).collect()
    }

    pub fn stats(&self) -> Stats {
        let g = self.lock();
        let mut keys: BTreeSet<&SeriesKey> = g.head.keys().collect();
        keys.extend(g.blocks.iter().flat_map(|b| b.keys.iter()));
        let head_profiles: usize = g.head.values().map(Vec::len).sum();
        Stats {
            series: keys.len(),
            profiles: head_profiles as u64
                + g.blocks
                    .iter()
                    .flat_map(|b| b.meta.series.iter())
                    .map(|s| s.profiles)
                    .sum::<u64>(),
            head_profiles,
            wal_bytes: g.wal.size_bytes(),
            blocks: g.blocks.len(),
            block_bytes: g.blocks.iter().map(|b| b.size).sum(),
            block_ingested_bytes: g.blocks.iter().map(|b| b.meta.ingested_bytes).sum(),
            appends_total: g.appends,
            blocks_written_total: g.blocks_written,
            compactions_total: g.compactions,
            disk_full: g.disk_full,
            write_error: g.write_error.clone(),
            write_errors_total: g.write_errors,
            lost_records_total: g.lost_records,
        }
    }
}

/// What [`verify_dir`] found.
#[derive(Debug, Clone, Default)]
pub struct VerifyReport {
    /// Damage: data that is or would be lost (each with the file and byte offset).
    pub problems: Vec<String>,
    /// Harmless leftovers the next start (or `--repair`) tidies: a torn last WAL record, a
    /// segment already in a block, a temporary file of an interrupted block cut.
    pub notes: Vec<String>,
    pub series: usize,
    pub blocks: usize,
    pub block_bytes: u64,
    pub block_ingested_bytes: u64,
    pub block_profiles: u64,
    pub wal_segments: usize,
    pub wal_records: usize,
    pub wal_profiles: usize,
    /// Damaged block files (names in block storage) and WAL segments (sequence numbers,
    /// with the end of their last good record), for [`repair`].
    damaged_blocks: Vec<String>,
    damaged_segments: Vec<(u64, u64)>,
}

/// Checks a data directory without changing anything in it (it may be on a full disk, or
/// be evidence): every block read whole and decoded, every WAL record's checksum, series key
/// and profile. Fails if another process (a running server) holds the directory.
pub fn verify_dir(opts: &Options) -> Result<VerifyReport, Error> {
    let dir = &opts.dir;
    // The server's lock, taken shared: a running server holds it exclusively. Nothing is
    // created if it does not exist.
    let _lock = match File::open(dir.join("LOCK")) {
        Ok(f) => {
            if let Err(e) = f.try_lock_shared() {
                return Err(Error::Io(std::io::Error::new(
                    std::io::ErrorKind::WouldBlock,
                    format!(
                        "{} is in use by another gocost process ({e}): stop it first",
                        dir.display()
                    ),
                )));
            }
            Some(f)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e.into()),
    };
    let mut r = VerifyReport::default();
    let mut keys: BTreeSet<String> = BTreeSet::new();
    let mut blocks = Vec::new();
    if let Some(blobs) = blobs::Blobs::open_existing(&opts.blobs, dir)? {
        for l in blobs.list(BLOCK_SUFFIX)? {
            let b = match read_index(&blobs, &l.name, l.size) {
                Ok(b) => b,
                Err(e) => {
                    r.problems.push(format!("block {}: {e}", l.name));
                    r.damaged_blocks.push(l.name);
                    continue;
                }
            };
            let file = blobs.get_range(&b.name, 0..b.size)?;
            if let Err(e) = block::verify_file(&file) {
                r.problems.push(format!("block {}: {e}", b.name));
                r.damaged_blocks.push(b.name);
                continue;
            }
            blocks.push(b);
        }
    }
    let replaced: BTreeSet<&str> = blocks
        .iter()
        .flat_map(|b| b.meta.replaces.iter().map(String::as_str))
        .collect();
    for b in &blocks {
        if replaced.contains(b.meta.id.as_str()) {
            r.notes.push(format!(
                "block {} was compacted into another (deleted on the next start)",
                b.name
            ));
            continue;
        }
        r.blocks += 1;
        r.block_bytes += b.size;
        r.block_ingested_bytes += b.meta.ingested_bytes;
        r.block_profiles += b.meta.series.iter().map(|s| s.profiles).sum::<u64>();
        keys.extend(b.meta.series.iter().map(|s| s.key.clone()));
    }
    let done: BTreeSet<u64> = blocks
        .iter()
        .flat_map(|b| b.meta.sources.iter().copied())
        .collect();
    let segs = wal::list_segments(&dir.join("wal"))?;
    let last = segs.last().map(|s| s.0);
    let decode = gocost_pprof::DecodeOptions {
        max_size: opts.max_profile_size,
        labels: false,
    };
    for (seq, path) in &segs {
        if done.contains(seq) {
            r.notes.push(format!(
                "{}: already in a block (deleted on the next start)",
                path.display()
            ));
            continue;
        }
        let c = wal::check_segment(*seq, path)?;
        if c.unborn {
            r.notes.push(format!(
                "{}: an empty segment a failed creation left (removed on the next start)",
                path.display()
            ));
            continue;
        }
        r.wal_segments += 1;
        r.wal_records += c.records;
        r.wal_profiles += c.profiles.len();
        if let Some(p) = &c.problem {
            // Only the newest segment can end in a record torn by a crash.
            if Some(*seq) == last && c.good_end >= wal::SEGMENT_MAGIC.len() as u64 {
                r.notes.push(format!(
                    "{p}: a torn last record of {} bytes (cut on the next start)",
                    c.bytes - c.good_end
                ));
            } else {
                r.problems.push(format!(
                    "{p} ({} bytes after it are lost)",
                    c.bytes - c.good_end
                ));
                r.damaged_segments.push((*seq, c.good_end));
            }
        }
        for (key, payload) in &c.profiles {
            if SeriesKey::parse(key).is_err() {
                r.problems
                    .push(format!("{}: unparsable series key {key:?}", path.display()));
                continue;
            }
            if let Err(e) = gocost_pprof::decode_with(payload, &decode) {
                r.problems
                    .push(format!("{}: profile of {key}: {e}", path.display()));
            }
            keys.insert(key.clone());
        }
        for key in &c.point_keys {
            if SeriesKey::parse(key).is_err() {
                r.problems
                    .push(format!("{}: unparsable series key {key:?}", path.display()));
            }
        }
    }
    if let Ok(rd) = std::fs::read_dir(dir.join("tmp")) {
        for e in rd.flatten() {
            r.notes.push(format!(
                "{}: a temporary file of an interrupted block cut (removed on the next start)",
                e.path().display()
            ));
        }
    }
    r.series = keys.len();
    Ok(r)
}

/// Repairs what [`verify_dir`] found: damaged blocks and WAL segments are moved to
/// `<data>/damaged/` (a damaged segment's good records are kept in place), then the store is
/// opened once, which tidies the rest (torn tails, leftovers). Returns what was done.
pub fn repair_dir(opts: &Options, found: &VerifyReport) -> Result<Vec<String>, Error> {
    let mut done = Vec::new();
    let damaged = opts.dir.join("damaged");
    if !found.damaged_blocks.is_empty() || !found.damaged_segments.is_empty() {
        std::fs::create_dir_all(&damaged)?;
    }
    if let Some(blobs) = blobs::Blobs::open_existing(&opts.blobs, &opts.dir)? {
        for name in &found.damaged_blocks {
            match blobs.local_dir() {
                Some(d) => {
                    std::fs::rename(d.join(name), damaged.join(name))?;
                    done.push(format!("moved block {name} to {}", damaged.display()));
                }
                None => {
                    blobs.delete(name)?;
                    done.push(format!(
                        "deleted damaged block {name} from {}",
                        blobs.describe
                    ));
                }
            }
        }
    }
    for &(seq, good_end) in &found.damaged_segments {
        let path = opts.dir.join("wal").join(format!("{seq:08}.wal"));
        let copy = damaged.join(format!("{seq:08}.wal"));
        std::fs::copy(&path, &copy)?;
        if good_end >= wal::SEGMENT_MAGIC.len() as u64 {
            let f = std::fs::OpenOptions::new().write(true).open(&path)?;
            f.set_len(good_end)?;
            f.sync_all()?;
            done.push(format!(
                "{}: cut after its last good record (byte {good_end}); the whole file is in {}",
                path.display(),
                copy.display()
            ));
        } else {
            std::fs::remove_file(&path)?;
            done.push(format!(
                "{}: no good record; moved to {}",
                path.display(),
                copy.display()
            ));
        }
    }
    let (store, report) = Store::open(opts.clone())?;
    store.sync()?;
    drop(store);
    if report.truncated_bytes > 0 {
        done.push(format!(
            "cut a torn last WAL record of {} bytes",
            report.truncated_bytes
        ));
    }
    Ok(done)
}

/// Parses the bytes of one WAL segment file as replay does: how many records decode, and
/// what stopped the read early (with the byte offset), if anything. For checks and fuzzing.
pub fn check_wal_segment(bytes: &[u8]) -> (usize, Option<String>) {
    let (records, _, problem) = wal::parse_segment(bytes, Path::new("segment"));
    (records.len(), problem)
}

/// A block's temporary file, removed when the cut that writes it ends, however it ends (a
/// cut that succeeded has moved it away already): a failed cut leaves nothing behind.
struct TmpFile(PathBuf);

impl Drop for TmpFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Whether `[lo, hi]` lies inside the union of the (disjoint) intervals.
fn covered_range(picked: &[(i64, i64)], lo: i64, hi: i64) -> bool {
    if lo > hi {
        return true;
    }
    let mut v = picked.to_vec();
    v.sort_unstable();
    let mut at = lo;
    for (a, z) in v {
        if a > at {
            return false;
        }
        if z >= at {
            if z >= hi {
                return true;
            }
            at = z + 1;
        }
    }
    false
}

fn read_entry(files: &HashMap<u64, File>, e: &Entry) -> Result<Vec<u8>, Error> {
    let f = files.get(&e.pos.seq).ok_or_else(|| {
        Error::Io(std::io::Error::other(format!(
            "WAL segment {} not open",
            e.pos.seq
        )))
    })?;
    Ok(wal::read_payload(f, e.pos)?)
}

fn catalog_entry(name: String, size: u64, meta: BlockMeta) -> Result<Block, Error> {
    let keys = meta
        .series
        .iter()
        .map(|s| SeriesKey::parse(&s.key))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| block_err(&name, format!("series key: {e}")))?;
    let metric_keys = meta
        .metrics
        .iter()
        .map(|s| SeriesKey::parse(&s.key))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| block_err(&name, format!("metric key: {e}")))?;
    Ok(Block {
        name,
        size,
        meta,
        keys,
        metric_keys,
    })
}

/// Reads a block's footer and index.
fn read_index(blobs: &blobs::Blobs, name: &str, size: u64) -> Result<Block, Error> {
    let footer = block::FOOTER_LEN as u64;
    if size < block::MAGIC.len() as u64 + footer {
        return Err(block_err(name, "too short to be a block"));
    }
    let tail = blobs.get_range(name, size - footer..size)?;
    let (index, crc) = block::parse_footer(&tail, size).map_err(|e| block_err(name, e))?;
    let idx = blobs.get_range(name, index)?;
    let meta = block::parse_index(&idx, crc).map_err(|e| block_err(name, e))?;
    catalog_entry(name.to_string(), size, meta)
}
