//! Checking and repairing a data directory (`gocost verify`, `--repair`), and checking a
//! running store's blocks.

use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::path::Path;

use crate::catalog::{BLOCK_SUFFIX, read_index};
use crate::symtab::SymTabBuilder;
use crate::{Error, Options, SeriesKey, Store, blobs, block, wal};

impl Store {
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
    /// Execution traces (`<data>/traces/`) and their bytes, each read whole and checked.
    pub traces: usize,
    pub trace_bytes: u64,
    /// `gocost load` runs (`<data>/loadruns/`), checked as traces are.
    pub load_runs: usize,
    /// Damaged block files (names in block storage) and WAL segments (sequence numbers,
    /// with the end of their last good record), for [`repair`].
    damaged_blocks: Vec<String>,
    damaged_segments: Vec<(u64, u64)>,
    /// Damaged trace and load-run files (paths under the data directory).
    damaged_traces: Vec<String>,
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
    // In a cluster, only this instance's blocks are its to repair and to replay against.
    let me = opts.cluster.as_ref().map_or("", |c| c.instance.as_str());
    let mine = |name: &str| me.is_empty() || name.contains(&format!("-{me}-"));
    if let Some(blobs) = blobs::open_existing(&opts.blobs, dir)? {
        for l in blobs.list(BLOCK_SUFFIX)? {
            let b = match read_index(blobs.as_ref(), &l.name, l.size) {
                Ok(b) => b,
                Err(e) => {
                    r.problems.push(format!("block {}: {e}", l.name));
                    if mine(&l.name) {
                        r.damaged_blocks.push(l.name);
                    }
                    continue;
                }
            };
            let file = blobs.get_range(&b.name, 0..b.size)?;
            if let Err(e) = block::verify_file(&file) {
                r.problems.push(format!("block {}: {e}", b.name));
                if mine(&b.name) {
                    r.damaged_blocks.push(b.name);
                }
                continue;
            }
            blocks.push(b);
        }
    }
    // In a cluster a block counts once an index part lists it (docs/format/bucket.md);
    // one no part lists is a block cut or compaction that did not finish.
    if let (Some(_), Some(blobs)) = (&opts.cluster, blobs::open_existing(&opts.blobs, dir)?) {
        let listed = bucket_listed(blobs.as_ref(), &mut r)?;
        blocks.retain(|b| {
            let counted = listed.contains(&b.name);
            if !counted {
                r.notes.push(format!(
                    "block {}: no part of the bucket index lists it (a block cut whose index write is pending, or a compaction that did not finish): not counted",
                    b.name
                ));
            }
            counted
        });
    }
    let replaced: BTreeSet<&str> = blocks
        .iter()
        .flat_map(|b| b.meta.replaces.iter().map(String::as_str))
        .collect();
    // Every replaced block stands in exactly one counted block.
    let mut replaced_by: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
    for b in blocks
        .iter()
        .filter(|b| !replaced.contains(b.meta.id.as_str()))
    {
        for id in &b.meta.replaces {
            replaced_by
                .entry(id.as_str())
                .or_default()
                .push(b.name.as_str());
        }
    }
    for (id, by) in &replaced_by {
        if by.len() > 1 {
            r.problems.push(format!(
                "block {id} is replaced by {} blocks read alike ({}): its profiles count {} times",
                by.len(),
                by.join(", "),
                by.len()
            ));
        }
    }
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
    let done = crate::block::segments_in_blocks(blocks.iter().map(|b| &b.meta), me);
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
        let mut symbols = SegmentSymbols::default();
        for (key, stored) in &c.profiles {
            let Ok(k) = SeriesKey::parse(key) else {
                r.problems
                    .push(format!("{}: unparsable series key {key:?}", path.display()));
                continue;
            };
            let res = match stored {
                wal::Stored::Raw(payload) => gocost_pprof::decode_with(payload, &decode)
                    .map(drop)
                    .map_err(|e| e.to_string()),
                wal::Stored::Encoded {
                    symbols: delta,
                    enc,
                } => symbols.read(&k, delta, enc),
            };
            if let Err(e) = res {
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
    verify_traces(dir, "traces", &mut r)?;
    verify_traces(dir, "loadruns", &mut r)?;
    if let Ok(rd) = std::fs::read_dir(dir.join(crate::flush::QUARANTINE)) {
        for e in rd.flatten() {
            r.notes.push(format!(
                "{}: a WAL segment with profiles that did not decode when its block was cut, kept as evidence (the block has the others)",
                e.path().display()
            ));
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

/// The block names the parts of the bucket index list (a part that does not parse is a
/// problem).
fn bucket_listed(
    blobs: &dyn crate::BlobStore,
    r: &mut VerifyReport,
) -> Result<BTreeSet<String>, Error> {
    let mut listed = BTreeSet::new();
    for l in blobs.list_dir(crate::INDEX_DIR)? {
        let name = format!("{}/{}", crate::INDEX_DIR, l.name);
        let Some(bytes) = blobs.get(&name)? else {
            continue;
        };
        match serde_json::from_slice::<crate::BucketIndex>(&bytes) {
            Ok(idx) => listed.extend(idx.blocks.into_iter().map(|b| b.name)),
            Err(e) => r.problems.push(format!("bucket index {name}: {e}")),
        }
    }
    Ok(listed)
}

/// Reads every capture file in `<data>/<sub>` whole: header, series key and the checksum of
/// the trace (or load run).
fn verify_traces(data: &Path, sub: &str, r: &mut VerifyReport) -> Result<(), Error> {
    let dir = &data.join(sub);
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let mut names: Vec<String> = rd
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()?;
    names.sort();
    for name in names {
        let path = dir.join(&name);
        if name.starts_with("tmp-") {
            r.notes.push(format!(
                "{}: a trace whose write was interrupted (removed on the next start)",
                path.display()
            ));
            continue;
        }
        if !name.ends_with(crate::traces::SUFFIX) {
            continue;
        }
        let bytes = std::fs::read(&path)?;
        match crate::traces::check_trace_file(&bytes) {
            Ok(_) if sub == "loadruns" => r.load_runs += 1,
            Ok(_) => {
                r.traces += 1;
                r.trace_bytes += bytes.len() as u64;
            }
            Err(e) => {
                r.problems.push(format!("{}: {e}", path.display()));
                r.damaged_traces.push(format!("{sub}/{name}"));
            }
        }
    }
    Ok(())
}

/// Repairs what [`verify_dir`] found: damaged blocks and WAL segments are moved to
/// `<data>/damaged/` (a damaged segment's good records are kept in place), then the store is
/// opened once, which tidies the rest (torn tails, leftovers). Returns what was done.
pub fn repair_dir(opts: &Options, found: &VerifyReport) -> Result<Vec<String>, Error> {
    let mut done = Vec::new();
    let damaged = opts.dir.join("damaged");
    if !found.damaged_blocks.is_empty()
        || !found.damaged_segments.is_empty()
        || !found.damaged_traces.is_empty()
    {
        std::fs::create_dir_all(&damaged)?;
    }
    for rel in &found.damaged_traces {
        let name = rel.rsplit('/').next().unwrap_or(rel);
        std::fs::rename(opts.dir.join(rel), damaged.join(name))?;
        done.push(format!("moved trace {name} to {}", damaged.display()));
    }
    if let Some(blobs) = blobs::open_existing(&opts.blobs, &opts.dir)? {
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
                        blobs.describe()
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
/// Encoded profiles are read against the segment's symbols as replay rebuilds them.
pub fn check_wal_segment(bytes: &[u8]) -> (usize, Option<String>) {
    let (records, _, mut problem) = wal::parse_segment(bytes, Path::new("segment"));
    let n = records.len();
    let mut symbols = SegmentSymbols::default();
    for (off, r) in records {
        let wal::Record::Encoded {
            key,
            symbols: delta,
            enc,
            ..
        } = r
        else {
            continue;
        };
        let Ok(k) = SeriesKey::parse(&key) else {
            continue;
        };
        if let Err(e) = symbols.read(&k, &delta, &enc) {
            problem.get_or_insert(format!("segment: record at byte {off}: {e}"));
            break;
        }
    }
    (n, problem)
}

/// A WAL segment's symbols per service, rebuilt record by record as replay does; a service
/// whose rows stopped making sense (`None`) reads no further.
#[derive(Default)]
struct SegmentSymbols(HashMap<String, Option<SymTabBuilder>>);

impl SegmentSymbols {
    /// Adds an encoded record's rows and reads its profile back.
    fn read(&mut self, key: &SeriesKey, delta: &[u8], enc: &[u8]) -> Result<(), String> {
        let slot = self
            .0
            .entry(block::group_of(key).to_string())
            .or_insert_with(|| Some(SymTabBuilder::new()));
        let Some(b) = slot.as_mut() else {
            return Err("unreadable: an earlier record of its service was".into());
        };
        if let Err(e) = b.apply(delta) {
            *slot = None;
            return Err(format!("its symbols: {e}"));
        }
        b.lens()
            .check(enc)
            .and_then(|()| b.snapshot().profile(enc, true).map(drop))
            .map_err(|e| e.to_string())
    }
}
