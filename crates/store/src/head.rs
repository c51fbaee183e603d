//! The head: what is in the WAL but not yet in a block. Appends (validated, framed, written
//! to the WAL and indexed here under one lock), syncs and group commit, the reaping of records
//! a failed sync dropped, and opening the store (replaying the WAL into the head).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use gocost_pprof::{Profile, Samples};

/// A profile to store: its header, locations and functions, and its samples (its own, or a
/// flat decode's kept apart from it).
type ProfileRef<'a> = (&'a Profile, &'a dyn Samples);

use crate::cache::BlockCache;
use crate::catalog::{BLOCK_SUFFIX, Block, block_order, kinds_of, read_indexes};
use crate::{
    BlobConfig, Error, Lsn, MAX_RECORD, Options, ReplayReport, SeriesKey, Store, blobs, block,
    symtab, traces, wal,
};

/// A profile in the head: its time, where it lies in the WAL, and — while the head cache
/// has room — its encoding in memory, so queries and the block cut read no file.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) time_ns: i64,
    pub(crate) pos: wal::Pos,
    /// The WAL holds it encoded against its segment's symbols (a type 3 record; else as
    /// received, type 1, from a segment of an earlier version).
    pub(crate) encoded: bool,
    /// Bytes of the profile as received.
    pub(crate) raw_len: u32,
    pub(crate) enc: Option<Arc<[u8]>>,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Point {
    pub(crate) t: i64,
    pub(crate) v: f64,
    pub(crate) seq: u64,
    /// Offset of its WAL record in the segment.
    pub(crate) off: u64,
}

/// Symbols of the profiles the head encoded on append: per WAL segment, per service.
pub(crate) type HeadSymbols = BTreeMap<u64, BTreeMap<String, block::SymTabBuilder>>;

pub(crate) struct Inner {
    /// `None` on a query instance (`--role query`), which takes no writes.
    pub(crate) wal: Option<wal::Wal>,
    pub(crate) head_symbols: HeadSymbols,
    /// Bytes of encoded profiles held by head entries.
    pub(crate) cache_bytes: usize,
    pub(crate) head: BTreeMap<SeriesKey, Vec<Entry>>,
    pub(crate) metrics: BTreeMap<SeriesKey, Vec<Point>>,
    pub(crate) blocks: Vec<Arc<Block>>,
    /// The kinds of the series in the head and the blocks (kept as series arrive; recomputed
    /// when retention drops blocks), for telling a query's unknown kind from an empty one.
    pub(crate) kinds: BTreeSet<String>,
    pub(crate) appends: u64,
    pub(crate) received_bytes: u64,
    pub(crate) wal_profile_bytes: u64,
    pub(crate) blocks_written: u64,
    pub(crate) compactions: u64,
    /// Records failed syncs dropped (their LSN ranges), for [`Store::commit`].
    pub(crate) lost: VecDeque<(std::ops::RangeInclusive<Lsn>, String)>,
    pub(crate) lost_records: u64,
    /// Set while WAL writes fail (the first line of the error), cleared by a good append.
    pub(crate) write_error: Option<String>,
    pub(crate) disk_full: bool,
    pub(crate) write_errors: u64,
    /// Profiles flushes found undecodable in the WAL (their segments are in quarantine).
    pub(crate) undecodable: u64,
    /// Block deletions retention tried and failed (the blocks stay, and are tried again).
    pub(crate) retention_errors: u64,
    /// This instance's part of the bucket index needs writing (cluster).
    pub(crate) index_dirty: bool,
    /// Blocks a compaction replaced, deleted after the delay (cluster): (name, when, the
    /// bucket compactor's block replacing them).
    pub(crate) delete_later: Vec<(String, i64, Option<String>)>,
    /// This instance's blocks the bucket's compactor replaced, still listed in its part
    /// of the bucket index until the time given (cluster).
    pub(crate) superseded: Vec<(crate::cluster::IndexedBlock, i64)>,
    /// The block names the bucket index listed at the last refresh (cluster).
    pub(crate) listed: Option<BTreeSet<String>>,
    /// Blocks the compactor's sweep read and found neither expired nor left over: name →
    /// newest data (Unix ns).
    pub(crate) swept: BTreeMap<String, i64>,
}

impl Inner {
    /// The WAL, for a write: a query instance has none.
    pub(crate) fn wal(&mut self) -> Result<&mut wal::Wal, Error> {
        self.wal.as_mut().ok_or(Error::QueryOnly)
    }

    /// About how much memory the head holds: its index of profiles, metric points, the
    /// symbol tables of its segments and the encoded profiles it keeps (series keys, a
    /// few per target, not counted). [`Options::head_max_bytes`] bounds it.
    pub(crate) fn head_bytes(&self) -> u64 {
        let entries: usize = self
            .head
            .values()
            .map(|v| v.capacity() * std::mem::size_of::<Entry>())
            .sum();
        let points: usize = self
            .metrics
            .values()
            .map(|v| v.capacity() * std::mem::size_of::<Point>())
            .sum();
        let symbols: usize = self
            .head_symbols
            .values()
            .flat_map(|m| m.values())
            .map(block::SymTabBuilder::approx_bytes)
            .sum();
        (entries + points + symbols + self.cache_bytes) as u64
    }

    /// The WAL, to read: a query instance has none.
    pub(crate) fn wal_ref(&self) -> Result<&wal::Wal, Error> {
        self.wal.as_ref().ok_or(Error::QueryOnly)
    }
}

/// How many failed-sync LSN ranges [`Store::commit`] remembers.
pub(crate) const LOST_RANGES: usize = 4096;

pub(crate) fn is_disk_full(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
    )
}

pub(crate) fn insert_sorted<T>(v: &mut Vec<T>, x: T, t: impl Fn(&T) -> i64) {
    let at = t(&x);
    let pos = v.partition_point(|e| t(e) <= at);
    v.insert(pos, x);
}

impl Store {
    /// Opens the store in `opts.dir`: reads the block catalog, then replays the WAL
    /// segments that are not in blocks yet.
    pub fn open(opts: Options) -> Result<(Store, ReplayReport), Error> {
        // A query instance reads blocks from a bucket and heads from its peers: it writes no
        // WAL, no blocks, no traces, and takes no lock on the data directory (only its block
        // cache, `<data>/cache/`, is its own and locked by itself).
        let query_only = opts.cluster.as_ref().is_some_and(|c| c.query_only);
        if query_only && matches!(opts.blobs, BlobConfig::Local) {
            return Err(Error::Io(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "a query instance (role = \"query\") reads its blocks from a bucket: set \
                 [storage] s3 or shared_dir",
            )));
        }
        std::fs::create_dir_all(&opts.dir)?;
        // One writing process per data directory: two would interleave WAL segments. The
        // kernel drops the lock when the process dies, however it dies.
        let lock = if query_only {
            None
        } else {
            let lock =
                crate::lock_file(&opts.dir.join("LOCK"), &opts.dir.display().to_string(), "")?;
            // Block files a crash left half-written.
            let _ = std::fs::remove_dir_all(opts.dir.join("tmp"));
            Some(lock)
        };
        let blobs = blobs::open_blob_store(&opts.blobs, &opts.dir, opts.faults.clone())?;
        // Blocks in a bucket are read through a cache on the local disk (docs/adr/0027);
        // those in `<data>/blocks/` are on the local disk already.
        let cache = match opts.blobs {
            BlobConfig::Local => None,
            _ if opts.block_cache_bytes == 0 => None,
            _ => Some(Arc::new(BlockCache::open(
                &opts.dir.join("cache"),
                opts.block_cache_bytes,
            )?)),
        };
        let mut report = ReplayReport::default();
        let mut blocks = Vec::new();
        let listed = blobs.list(BLOCK_SUFFIX)?;
        if let Some(c) = &cache {
            // Entries of blocks deleted while this process was not running.
            c.retain_blocks(&listed.iter().map(|l| l.name.as_str()).collect());
        }
        let want: Vec<(&str, u64)> = listed.iter().map(|l| (l.name.as_str(), l.size)).collect();
        for (l, b) in listed
            .iter()
            .zip(read_indexes(blobs.as_ref(), cache.as_ref(), &want))
        {
            match b {
                Ok(b) => blocks.push(b),
                Err(e) => report
                    .corrupt
                    .push(format!("block {} skipped: {e}", l.name)),
            }
        }
        // In a cluster, blocks carry the instance that wrote them: only its own are this
        // store's to delete and to replay against (another instance's WAL numbers are not
        // this one's).
        let cluster = opts.cluster.clone();
        let cluster = cluster.as_ref();
        let me = cluster.map_or("", |c| c.instance.as_str());
        // A compaction of this instance as the bucket's compactor that was killed before
        // its part of the bucket index listed the block: never visible, so never counted.
        // It is deleted (the next compactor compacts its inputs again).
        if let Some(c) = cluster.filter(|c| !c.query_only) {
            let listed = crate::cluster::own_index(blobs.as_ref(), &c.instance);
            blocks.retain(|b| {
                let orphan = b.meta.instance == me
                    && b.meta.compactor_term.is_some()
                    && listed.as_ref().is_some_and(|l| !l.contains(&b.name));
                if orphan {
                    tracing::info!(block = %b.name, "deleting a compaction this instance did not finish");
                    if let Err(e) = blobs.delete(&b.name) {
                        tracing::warn!(block = %b.name, "deleting it failed (the compactor's sweep will): {e}");
                    }
                }
                !orphan
            });
        }
        // WAL segments already in blocks: this instance's blocks' sources, and those that
        // the bucket's compactor merged from its blocks (which may be deleted by now).
        let done = crate::block::segments_in_blocks(blocks.iter().map(|b| &b.meta), me);
        // A compaction that wrote its block but did not finish deleting the inputs. This
        // instance's own compaction of its own blocks is finished here; the inputs of
        // another's (the bucket's compactor's) are its to delete after the delay: only
        // not read.
        let replaced_by: BTreeMap<String, String> = blocks
            .iter()
            .flat_map(|b| {
                b.meta
                    .replaces
                    .iter()
                    .map(|r| (r.clone(), b.meta.instance.clone()))
            })
            .collect();
        for b in blocks.iter().filter(|b| {
            !query_only
                && b.meta.instance == me
                && replaced_by.get(&b.meta.id).is_some_and(|by| by == me)
        }) {
            blobs.delete(&b.name)?;
        }
        blocks.retain(|b| !replaced_by.contains_key(&b.meta.id));
        blocks.sort_by(block_order);
        let (mode, probe) = crate::cluster::decide_mode(cluster, blobs.as_ref())?;
        let mut head: BTreeMap<SeriesKey, Vec<Entry>> = BTreeMap::new();
        let mut metrics: BTreeMap<SeriesKey, Vec<Point>> = BTreeMap::new();
        let mut head_symbols = HeadSymbols::new();
        let mut cache_bytes = 0usize;
        // Services of a segment whose symbols stopped making sense: their later records
        // there cannot be read.
        let mut broken: BTreeMap<(u64, String), (u64, String)> = BTreeMap::new();
        let mut skipped = 0usize;
        let (wal, wal_report) = if query_only {
            (None, wal::ReplayReport::default())
        } else {
            let (wal, report) = wal::Wal::open(
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
                                    encoded: false,
                                    raw_len: pos.len,
                                    enc: None,
                                },
                                |e| e.time_ns,
                            ),
                            Err(_) => skipped += 1,
                        }
                    }
                    (
                        wal::Record::Encoded {
                            time_ns,
                            key,
                            raw_len,
                            symbols,
                            enc,
                        },
                        Some(pos),
                    ) => {
                        let Ok(k) = SeriesKey::parse(&key) else {
                            skipped += 1;
                            return;
                        };
                        let group = block::group_of(&k).to_string();
                        if let Some(b) = broken.get_mut(&(seq, group.clone())) {
                            b.0 += 1;
                            return;
                        }
                        let sym = head_symbols
                            .entry(seq)
                            .or_default()
                            .entry(group.clone())
                            .or_default();
                        if let Err(e) = sym.apply(&symbols) {
                            let why = format!("the symbols of the record at byte {off}: {e}");
                            broken.insert((seq, group), (1, why));
                            return;
                        }
                        // One that does not parse stays out of the cache: the block cut reads
                        // it again, finds it bad and keeps the segment in quarantine.
                        let fits = cache_bytes < opts.head_cache_bytes;
                        let enc = (fits && sym.lens().check(&enc).is_ok()).then(|| {
                            cache_bytes += enc.len();
                            Arc::from(enc)
                        });
                        insert_sorted(
                            head.entry(k).or_default(),
                            Entry {
                                time_ns,
                                pos,
                                encoded: true,
                                raw_len,
                                enc,
                            },
                            |e| e.time_ns,
                        )
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
                    (wal::Record::Profile { .. } | wal::Record::Encoded { .. }, None) => {
                        skipped += 1
                    }
                },
            )?;
            (Some(wal), report)
        };
        for ((seq, group), (n, why)) in broken {
            report.corrupt.push(format!(
                "WAL segment {seq}: {n} profiles of {group:?} skipped: {why}"
            ));
        }
        report.segments = wal_report.segments;
        report.records = wal_report.records;
        report.truncated_bytes = wal_report.truncated_bytes;
        report.corrupt.extend(wal_report.corrupt);
        if skipped > 0 {
            report.corrupt.push(format!(
                "{skipped} records with unparsable series keys skipped"
            ));
        }
        let (traces, load_runs) = if query_only {
            (
                traces::Traces::empty(&opts.dir, "traces"),
                traces::Traces::empty(&opts.dir, "loadruns"),
            )
        } else {
            (
                traces::Traces::open(&opts.dir, "traces", &mut report.corrupt)?,
                traces::Traces::open(&opts.dir, "loadruns", &mut report.corrupt)?,
            )
        };
        let blocks: Vec<Arc<Block>> = blocks.into_iter().map(Arc::new).collect();
        let kinds = kinds_of(&head, &blocks);
        let store = Store {
            traces,
            load_runs,
            opts,
            _lock: lock,
            blobs,
            cache,
            inner: Mutex::new(Inner {
                wal,
                head_symbols,
                cache_bytes,
                head,
                metrics,
                blocks,
                kinds,
                appends: 0,
                received_bytes: 0,
                wal_profile_bytes: 0,
                blocks_written: 0,
                compactions: 0,
                lost: VecDeque::new(),
                lost_records: 0,
                write_error: None,
                disk_full: false,
                write_errors: 0,
                undecodable: 0,
                retention_errors: 0,
                index_dirty: cluster.is_some_and(|c| !c.query_only),
                delete_later: Vec::new(),
                superseded: Vec::new(),
                listed: None,
                swept: BTreeMap::new(),
            }),
            mode,
            probe,
            lease: Mutex::new(crate::lease::Lease::new(
                me,
                cluster.map_or(std::time::Duration::from_secs(60), |c| c.lease_ttl),
            )),
            maintenance: Mutex::new(()),
            sync_lock: Mutex::new(()),
            peers: std::sync::OnceLock::new(),
            publish: Mutex::new(()),
            sums: Mutex::new(crate::query::HeadSums::default()),
            symtabs: Mutex::new(crate::catalog::SymTabs::default()),
        };
        Ok((store, report))
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
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
        // Flat: no allocation per sample, each label set resolved and encoded once.
        let (p, samples) =
            gocost_pprof::decode_flat_with(bytes, &opts).map_err(Error::BadProfile)?;
        let lsns = self.append_encoded(&[(key, time_ns, (&p, &samples), Some(bytes.len()))])?;
        lsns.first()
            .copied()
            .ok_or_else(|| Error::Io(std::io::Error::other("internal: no record appended")))
    }

    /// Stores a profile gocost built itself (a delta of cumulative scrapes); it needs no
    /// validation but its depth. `received`: the bytes it was made from (the scrape's
    /// body), for the counts of bytes received; `None` counts its encoding.
    pub fn append_profile(
        &self,
        key: &SeriesKey,
        time_ns: i64,
        p: &Profile,
        received: Option<usize>,
    ) -> Result<Lsn, Error> {
        let lsns = self.append_encoded(&[(key, time_ns, (p, &p.sample), received)])?;
        lsns.first()
            .copied()
            .ok_or_else(|| Error::Io(std::io::Error::other("internal: no record appended")))
    }

    /// Stores profiles gocost built or checked itself (a push), all or none: they are
    /// written to the WAL with one write, so a failed write (a full disk) stores none of
    /// them. Durable after the next sync; [`commit`](Store::commit) the last number.
    /// Each comes with the bytes it was received as (its share of the push's body).
    pub fn append_profiles(
        &self,
        items: &[(SeriesKey, i64, &Profile, usize)],
    ) -> Result<Vec<Lsn>, Error> {
        let items: Vec<_> = items
            .iter()
            .map(|(k, t, p, received)| (k, *t, (*p, &p.sample as &dyn Samples), Some(*received)))
            .collect();
        self.append_encoded(&items)
    }

    /// Writes profiles to the WAL encoded against the current segment's symbols of their
    /// services (each record carries the rows it added), all with one write, and indexes
    /// them. `received`: the bytes a profile came as (`None`: gocost built it; its encoding
    /// counts). A write that fails takes its rows out of the symbols again.
    fn append_encoded(
        &self,
        items: &[(&SeriesKey, i64, ProfileRef<'_>, Option<usize>)],
    ) -> Result<Vec<Lsn>, Error> {
        if self.query_only() {
            return Err(Error::QueryOnly);
        }
        for (_, _, (p, samples), _) in items {
            gocost_pprof::check_depth_of(p, *samples, gocost_pprof::MAX_STACK_DEPTH)
                .map_err(Error::TooDeep)?;
        }
        // Which segment the records go to must be settled before they are encoded: a
        // rotation due for about this much (received bytes; the size is a soft limit).
        let estimate: usize = items.iter().map(|i| i.3.unwrap_or(4096)).sum();
        let mut g = self.lock();
        let mut _sync = None;
        if g.wal()?.needs_rotation(estimate) {
            // Starting a segment syncs the current one: that takes the sync lock first.
            drop(g);
            _sync = Some(self.sync_lock.lock().unwrap_or_else(|p| p.into_inner()));
            g = self.lock();
        }
        let seq = match g.wal()?.prepare(estimate) {
            Ok(seq) => seq,
            Err(e) => {
                self.reap(&mut g);
                return Err(self.write_failed(&mut g, e));
            }
        };
        let mut undo: Vec<(&str, symtab::Lens)> = Vec::new();
        let mut recs = Vec::with_capacity(items.len());
        {
            let seg = g.head_symbols.entry(seq).or_default();
            for (key, time_ns, (p, samples), received) in items {
                let group = block::group_of(key);
                let sym = seg.entry(group.to_string()).or_default();
                let lens = sym.lens();
                if !undo.iter().any(|(g, _)| *g == group) {
                    undo.push((group, lens));
                }
                let enc = sym.encode_samples(p, *samples, *time_ns);
                let symbols = sym.encode_since(&lens);
                let raw_len = received.unwrap_or(enc.len());
                recs.push(wal::Record::Encoded {
                    time_ns: *time_ns,
                    key: key.to_string(),
                    raw_len: u32::try_from(raw_len).unwrap_or(u32::MAX),
                    symbols,
                    enc,
                });
            }
        }
        let rollback = |g: &mut Inner| {
            if let Some(seg) = g.head_symbols.get_mut(&seq) {
                for (group, lens) in &undo {
                    if let Some(sym) = seg.get_mut(*group) {
                        sym.truncate(lens);
                    }
                }
            }
        };
        let mut frames = Vec::with_capacity(recs.len());
        for rec in &recs {
            match wal::Wal::frame(rec) {
                Ok(f) => frames.push(f),
                Err(_) => {
                    rollback(&mut g);
                    return Err(Error::TooLarge(rec.encoded_len()));
                }
            }
        }
        let pairs: Vec<(&wal::Record, &[u8])> = recs
            .iter()
            .zip(&frames)
            .map(|(r, f)| (r, f.as_slice()))
            .collect();
        let res = g.wal()?.append_prepared(&pairs);
        self.reap(&mut g);
        let appended = match res {
            Ok(a) => a,
            Err(e) => {
                rollback(&mut g);
                return Err(self.write_failed(&mut g, e));
            }
        };
        if g.write_error.take().is_some() {
            g.disk_full = false;
        }
        g.wal_profile_bytes += frames.iter().map(|f| f.len() as u64).sum::<u64>();
        let mut lsns = Vec::with_capacity(items.len());
        for ((key, time_ns, _, _), (rec, a)) in items.iter().zip(recs.into_iter().zip(appended)) {
            lsns.push(a.lsn);
            let (Some(pos), wal::Record::Encoded { raw_len, enc, .. }) = (a.payload, rec) else {
                continue;
            };
            g.appends += 1;
            g.received_bytes += u64::from(raw_len);
            let enc = (g.cache_bytes < self.opts.head_cache_bytes).then(|| {
                g.cache_bytes += enc.len();
                Arc::from(enc)
            });
            insert_sorted(
                g.head.entry((*key).clone()).or_default(),
                Entry {
                    time_ns: *time_ns,
                    pos,
                    encoded: true,
                    raw_len,
                    enc,
                },
                |e| e.time_ns,
            );
            if !g.kinds.contains(&key.kind) {
                g.kinds.insert(key.kind.clone());
            }
        }
        Ok(lsns)
    }

    /// Appends one record (not a profile: those are encoded against the segment, see
    /// `append_encoded`) to the WAL; on success returns with the lock held, so the caller
    /// indexes the record before anyone can see the WAL without it. A write that fails
    /// leaves the WAL as it was (the partial record is cut off again).
    pub(crate) fn wal_append(
        &self,
        rec: &wal::Record,
    ) -> Result<(MutexGuard<'_, Inner>, wal::Appended), Error> {
        let frame = wal::Wal::frame(rec).map_err(|_| Error::TooLarge(rec.encoded_len()))?;
        let mut g = self.lock();
        let mut _sync = None;
        if g.wal()?.needs_rotation(frame.len()) {
            // Starting a segment syncs the current one: that takes the sync lock first.
            drop(g);
            _sync = Some(self.sync_lock.lock().unwrap_or_else(|p| p.into_inner()));
            g = self.lock();
        }
        let res = g.wal()?.append_many(&[(rec, frame.as_slice())]);
        self.reap(&mut g);
        match res {
            Ok(mut a) => {
                if g.write_error.take().is_some() {
                    g.disk_full = false;
                }
                let a = a.pop().ok_or_else(|| {
                    Error::Io(std::io::Error::other("internal: no record appended"))
                })?;
                Ok((g, a))
            }
            Err(e) => Err(self.write_failed(&mut g, e)),
        }
    }

    /// Notes a failed WAL write or sync and says what it means for the caller.
    pub(crate) fn write_failed(&self, g: &mut Inner, e: std::io::Error) -> Error {
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
    pub(crate) fn reap(&self, g: &mut Inner) {
        let lost = g.wal.as_mut().map(|w| w.take_lost()).unwrap_or_default();
        for l in lost {
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
    pub(crate) fn durable(g: &Inner, lsn: Lsn) -> Result<bool, Error> {
        if let Some((_, e)) = g.lost.iter().rev().find(|(r, _)| r.contains(&lsn)) {
            return Err(Error::NotDurable(format!(
                "the WAL could not be synced ({e}): the profile was not stored"
            )));
        }
        Ok(g.wal.as_ref().is_some_and(|w| w.synced_lsn() >= lsn))
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
        if self.query_only() {
            return Err(Error::QueryOnly);
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
            // The series is nearly always there already: looked up without a clone.
            match g.metrics.get_mut(k) {
                Some(pts) => insert_sorted(pts, p, |p| p.t),
                None => insert_sorted(g.metrics.entry(k.clone()).or_default(), p, |p| p.t),
            }
        }
        Ok(a.lsn)
    }

    /// Makes every appended profile durable. The `fsync` runs outside the store's lock:
    /// appends and queries go on meanwhile. If it fails, the records it was to make durable
    /// are dropped (from the WAL and the head) and the next record starts a new segment.
    pub fn sync(&self) -> Result<(), Error> {
        let _s = self.sync_lock.lock().unwrap_or_else(|p| p.into_inner());
        self.sync_locked()
    }

    /// [`sync`](Store::sync) with the sync lock held.
    pub(crate) fn sync_locked(&self) -> Result<(), Error> {
        let Some(t) = self.lock().wal.as_ref().and_then(|w| w.sync_ticket()) else {
            return Ok(());
        };
        let res = t.sync();
        let mut g = self.lock();
        let res = match g.wal.as_mut() {
            Some(w) => w.synced(&t, res),
            None => res,
        };
        self.reap(&mut g);
        res.map_err(|e| {
            let msg = format!("syncing the WAL failed ({e}): unsynced records were dropped");
            g.write_error = Some(msg.clone());
            Error::NotDurable(msg)
        })
    }
}
