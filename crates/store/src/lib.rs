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
//! serve HTTP. Its API is synchronous: async code holds an [`AsyncStore`], which lends the
//! store only to closures it runs on blocking threads (a direct call does not compile; the
//! blob layer also answers [`Error::AsyncContext`] to a call from an async task).
//!
//! Where each part lives:
//!
//! | file | part |
//! |---|---|
//! | `lib.rs` | [`Store`], [`Options`], [`Error`], [`Stats`] |
//! | `handle.rs` | [`AsyncStore`]: the store for async code (blocking pool, bounded) |
//! | `head.rs` | opening (catalog read, WAL replay), appends, sync and group commit |
//! | `catalog.rs` | the block catalog: indexes, sections, symbol tables, series and labels |
//! | `flush.rs` | closed WAL segments → level-0 blocks; undecodable payloads → `quarantine/` |
//! | `compact.rs` | a finished day's blocks → one level-1 block |
//! | `retention.rs` | dropping old data: delete, then forget |
//! | `query.rs` | selecting and merging profiles (rollups, raw profiles, the head), points |
//! | `verify.rs` | `verify_dir`, `repair_dir`, [`Store::verify`] |
//! | `blobs.rs` | [`BlobStore`]: local files or S3 through `object_store` |
//! | `cache.rs` | the on-disk cache of block ranges read from a bucket |
//! | `cluster.rs` | instances sharing a bucket: the bucket index, peers' heads, partial answers |
//! | `lease.rs` | the bucket's one compactor, elected through a lease object |
//! | `wal.rs`, `block.rs`, `symtab.rs`, `codec.rs` | the WAL, block and stored-profile formats |
//! | `series.rs`, `agg.rs`, `traces.rs` | series keys and selectors, range aggregation, traces |
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
mod cache;
mod catalog;
mod cluster;
mod codec;
mod compact;
mod flush;
mod handle;
mod head;
mod lease;
mod query;
mod retention;
mod series;
mod symtab;
mod traces;
mod verify;
mod wal;

use std::collections::BTreeSet;
use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use gocost_pprof::{DecodeError, MergeError};

pub use agg::{Agg, Read, is_snapshot};
pub use blobs::{
    BlobConfig, BlobStore, Listed, LocalBlobs, ObjectBlobs, PART_SIZE, S3Config, open_blob_store,
    probe_conditional_put,
};
pub use block::{
    BlockError, BlockMeta, DAY_NS, FINE_NS, HOUR_NS, Section, WEEK_NS, verify_file as verify_block,
};
pub use cache::{
    CacheStats, ENTRY_HEADER as CACHE_ENTRY_HEADER, EntryError as CacheEntryError,
    encode_entry as encode_cache_entry, parse_entry as parse_cache_entry,
};
pub use cluster::{
    BucketIndex, ClusterOptions, CompactionMode, Compactor, HeadAnswer, HeadRequest, INDEX_DIR,
    IndexedBlock, Peers, collect_partial, valid_instance,
};
pub use handle::{AsyncStore, DEFAULT_BLOCKING_LIMIT, RunError};
pub use lease::{LEASE_DIR, LeaseEvent, LeaseRecord, lease_name, parse_lease};
pub use series::{KINDS, Matcher, Op, Selector, SelectorError, SelectorProblem, SeriesKey};
pub use traces::{
    MAX_TRACE_BYTES, TRACE_MAGIC, TraceInfo, check_trace_file, valid_id as valid_trace_id,
};
pub use wal::{FaultHook, FaultPoint, MAX_RECORD, ReplayReport};

pub use query::{MetricSeries, Visitor};
pub use verify::{VerifyReport, check_wal_segment, repair_dir, verify_dir};

use head::Inner;

/// Creates `path` and takes an exclusive lock on it, for as long as the file is open (the
/// kernel drops it when the process dies, however it dies). Held: `WouldBlock`, saying
/// `what` "is in use by another gocost process" and `hint`.
pub(crate) fn lock_file(path: &Path, what: &str, hint: &str) -> std::io::Result<File> {
    let lock = File::create(path)?;
    if let Err(e) = lock.try_lock() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::WouldBlock,
            format!("{what} is in use by another gocost process ({e}){hint}"),
        ));
    }
    Ok(lock)
}

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
    /// Memory the head may hold (its index, metric points, symbol tables and encoded
    /// profiles, as [`Stats::head_bytes`] estimates it) before [`Store::flush`] cuts the
    /// current WAL segment into a block, however young: memory bounded by a setting, not by
    /// the number of profiles an hour brings. 0 = no bound.
    pub head_max_bytes: u64,
    /// Disk for ranges of blocks read from a bucket (`<dir>/cache/`, docs/format/cache.md;
    /// 0 = no cache). Blocks in `<dir>/blocks/` are never cached.
    pub block_cache_bytes: u64,
    /// One of several instances over one bucket (`[cluster]`; docs/adr/0020); `None`: the
    /// only one.
    pub cluster: Option<ClusterOptions>,
    /// Threads one merging query reads its blocks on (docs/adr/0033); 0 = the machine's
    /// cores, at most 4.
    pub query_threads: usize,
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
            head_max_bytes: 256 << 20,
            block_cache_bytes: 1 << 30,
            cluster: None,
            query_threads: 0,
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
    /// A call that touches block storage came from a thread that drives async tasks (it
    /// names the operation); such calls must come from blocking threads
    /// (`tokio::task::spawn_blocking`). Nothing was done.
    AsyncContext(&'static str),
    /// This instance only answers queries (`[cluster] role = "query"`): nothing is stored.
    QueryOnly,
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
            Error::QueryOnly => write!(
                f,
                "this gocost instance only answers queries (role query): send profiles to a writer instance"
            ),
            Error::AsyncContext(op) => write!(
                f,
                "block storage {op} called from an async task: call the store from a blocking thread (spawn_blocking)"
            ),
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
    /// Bytes of encoded head profiles held in memory.
    pub head_cache_bytes: usize,
    /// About how much memory the head holds (index, metric points, symbol tables and
    /// encoded profiles), which [`Options::head_max_bytes`] bounds.
    pub head_bytes: u64,
    /// Bytes of the profiles appended, as received (for profiles gocost built, what they
    /// were built from, or their encoding).
    pub received_bytes_total: u64,
    /// Bytes of the profile records written to the WAL.
    pub wal_profile_bytes_total: u64,
    /// Execution traces stored, and their bytes.
    pub traces: usize,
    pub trace_bytes: u64,
    /// Profiles in the WAL that a flush found no longer decode: left out of their block,
    /// logged, and their segment kept in `<data>/quarantine/`.
    pub undecodable_total: u64,
    /// Block deletions by retention that failed (each block stays in the catalog and is
    /// deleted on a later pass).
    pub retention_errors_total: u64,
    /// Bytes of blocks read from block storage by ranged reads since start (from a bucket:
    /// over the network), ranges served by the block cache not counted.
    pub block_read_bytes_total: u64,
    /// The block cache (a bucket's blocks only; `None` without one).
    pub block_cache: Option<CacheStats>,
}

/// The store. All methods take `&self`; it is safe to share across threads.
pub struct Store {
    opts: Options,
    /// The data directory's lock (`None` on a query instance, which writes nothing there).
    _lock: Option<File>,
    blobs: Box<dyn BlobStore>,
    /// Ranges of blocks read from a bucket, kept on the local disk (docs/adr/0027).
    cache: Option<std::sync::Arc<cache::BlockCache>>,
    inner: Mutex<Inner>,
    /// Held while a flush, compaction or retention pass rewrites blocks.
    maintenance: Mutex<()>,
    /// Execution traces (`<data>/traces/`).
    traces: traces::Traces,
    /// `gocost load` runs (`<data>/loadruns/`), stored as traces are.
    load_runs: traces::Traces,
    /// Held around every fsync of the WAL (taken before `inner`), so one sync's outcome is
    /// never another's: Linux reports a writeback error to one `fsync` only.
    sync_lock: Mutex<()>,
    /// How queries reach the other instances' heads (a cluster with peers).
    peers: std::sync::OnceLock<std::sync::Arc<dyn Peers>>,
    /// Held while this instance's part of the bucket index is written.
    publish: Mutex<()>,
    /// How it compacts, and what the conditional-write probe found (cluster).
    mode: CompactionMode,
    probe: Option<bool>,
    /// The bucket's compactor lease as this instance sees it ([`CompactionMode::Lease`]).
    lease: Mutex<lease::Lease>,
    /// Sums of whole ten minutes of the head's encoded profiles, made by queries.
    sums: Mutex<query::HeadSums>,
    /// Blocks' symbol tables decoded by earlier queries.
    symtabs: Mutex<catalog::SymTabs>,
}

impl Drop for Store {
    fn drop(&mut self) {
        // Block cache entries still being written are finished while the data directory
        // is still this process' (its lock is released after).
        if let Some(c) = &self.cache {
            c.flush();
        }
    }
}

impl Store {
    pub fn stats(&self) -> Stats {
        let g = self.lock();
        let mut keys: BTreeSet<&SeriesKey> = g.head.keys().collect();
        keys.extend(g.blocks.iter().flat_map(|b| b.keys.iter().map(|k| &**k)));
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
            wal_bytes: g.wal.as_ref().map_or(0, |w| w.size_bytes()),
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
            head_cache_bytes: g.cache_bytes,
            head_bytes: g.head_bytes(),
            received_bytes_total: g.received_bytes,
            wal_profile_bytes_total: g.wal_profile_bytes,
            traces: self.traces.count_and_bytes().0,
            trace_bytes: self.traces.count_and_bytes().1,
            undecodable_total: g.undecodable,
            retention_errors_total: g.retention_errors,
            block_read_bytes_total: self.blobs.read_bytes(),
            block_cache: self.cache.as_ref().map(|c| c.stats()),
        }
    }
}
