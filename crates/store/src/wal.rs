//! The write-ahead log: append-only segment files of CRC-checked records, replayed on start.
//! Byte layout: `docs/format/wal.md`.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read as _, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Segments gocost writes: profiles encoded against the segment's symbols (type 3).
pub const SEGMENT_MAGIC: &[u8; 8] = b"GCWAL002";
/// Segments of earlier versions (profiles as received, type 1): still replayed.
pub const SEGMENT_MAGIC_V1: &[u8; 8] = b"GCWAL001";
/// Records larger than this are refused on write and treated as corruption on replay.
pub const MAX_RECORD: usize = 64 << 20;
const SEGMENT_SIZE: u64 = 128 << 20;
const REC_PROFILE: u8 = 1;
const REC_POINTS: u8 = 2;
const REC_ENCODED: u8 = 3;

/// One logged record.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    /// A profile of a series.
    Profile {
        time_ns: i64,
        /// The series key in its canonical text form.
        key: String,
        /// The profile exactly as received (gzip'd or raw protobuf).
        payload: Vec<u8>,
    },
    /// Runtime-metric points: (series key, time, value).
    Points(Vec<(String, i64, f64)>),
    /// A profile encoded against its segment's symbols of its service (`block::group_of`):
    /// the rows it added to them, then the profile (`docs/format/wal.md`).
    Encoded {
        time_ns: i64,
        key: String,
        /// Bytes of the profile as received.
        raw_len: u32,
        /// `SymTabBuilder::encode_since` of the rows this profile added.
        symbols: Vec<u8>,
        /// `SymTabBuilder::encode_profile`.
        enc: Vec<u8>,
    },
}

fn take<'a>(b: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    let (h, t) = (b.get(..n)?, b.get(n..)?);
    *b = t;
    Some(h)
}

fn take_u32(b: &mut &[u8]) -> Option<usize> {
    Some(u32::from_le_bytes(take(b, 4)?.try_into().ok()?) as usize)
}

fn take_i64(b: &mut &[u8]) -> Option<i64> {
    Some(i64::from_le_bytes(take(b, 8)?.try_into().ok()?))
}

fn take_str(b: &mut &[u8]) -> Option<String> {
    let n = take_u32(b)?;
    Some(std::str::from_utf8(take(b, n)?).ok()?.to_string())
}

fn put_str(b: &mut Vec<u8>, s: &str) {
    b.extend_from_slice(&(s.len() as u32).to_le_bytes());
    b.extend_from_slice(s.as_bytes());
}

impl Record {
    fn encode(&self) -> Vec<u8> {
        let mut b = Vec::new();
        match self {
            Record::Profile {
                time_ns,
                key,
                payload,
            } => {
                b.reserve(1 + 8 + 4 + key.len() + 4 + payload.len());
                b.push(REC_PROFILE);
                b.extend_from_slice(&time_ns.to_le_bytes());
                put_str(&mut b, key);
                b.extend_from_slice(&(payload.len() as u32).to_le_bytes());
                b.extend_from_slice(payload);
            }
            Record::Encoded {
                time_ns,
                key,
                raw_len,
                symbols,
                enc,
            } => {
                b.reserve(1 + 8 + 4 + key.len() + 4 + 4 + symbols.len() + 4 + enc.len());
                b.push(REC_ENCODED);
                b.extend_from_slice(&time_ns.to_le_bytes());
                put_str(&mut b, key);
                b.extend_from_slice(&raw_len.to_le_bytes());
                b.extend_from_slice(&(symbols.len() as u32).to_le_bytes());
                b.extend_from_slice(symbols);
                b.extend_from_slice(&(enc.len() as u32).to_le_bytes());
                b.extend_from_slice(enc);
            }
            Record::Points(points) => {
                b.push(REC_POINTS);
                b.extend_from_slice(&(points.len() as u32).to_le_bytes());
                for (key, t, v) in points {
                    put_str(&mut b, key);
                    b.extend_from_slice(&t.to_le_bytes());
                    b.extend_from_slice(&v.to_bits().to_le_bytes());
                }
            }
        }
        b
    }

    /// How many bytes the record's body takes (for errors about its size).
    pub fn encoded_len(&self) -> usize {
        self.encode().len()
    }

    /// Where a profile record's payload (type 1) or encoded profile (type 3) starts,
    /// counted from the start of its body, and its length.
    fn payload_at(&self) -> Option<(u64, u32)> {
        match self {
            Record::Profile { key, payload, .. } => {
                Some((1 + 8 + 4 + key.len() as u64 + 4, payload.len() as u32))
            }
            Record::Encoded {
                key, symbols, enc, ..
            } => Some((
                1 + 8 + 4 + key.len() as u64 + 4 + 4 + symbols.len() as u64 + 4,
                enc.len() as u32,
            )),
            Record::Points(_) => None,
        }
    }

    fn decode(b: &[u8]) -> Option<Record> {
        let (&kind, mut rest) = b.split_first()?;
        let r = match kind {
            REC_PROFILE => {
                let time_ns = take_i64(&mut rest)?;
                let key = take_str(&mut rest)?;
                let plen = take_u32(&mut rest)?;
                let payload = take(&mut rest, plen)?.to_vec();
                Record::Profile {
                    time_ns,
                    key,
                    payload,
                }
            }
            REC_ENCODED => {
                let time_ns = take_i64(&mut rest)?;
                let key = take_str(&mut rest)?;
                let raw_len = take_u32(&mut rest)? as u32;
                let n = take_u32(&mut rest)?;
                let symbols = take(&mut rest, n)?.to_vec();
                let n = take_u32(&mut rest)?;
                let enc = take(&mut rest, n)?.to_vec();
                Record::Encoded {
                    time_ns,
                    key,
                    raw_len,
                    symbols,
                    enc,
                }
            }
            REC_POINTS => {
                let n = take_u32(&mut rest)?;
                let mut points = Vec::with_capacity(n.min(rest.len() / 20));
                for _ in 0..n {
                    let key = take_str(&mut rest)?;
                    let t = take_i64(&mut rest)?;
                    let v = f64::from_bits(take_i64(&mut rest)? as u64);
                    points.push((key, t, v));
                }
                Record::Points(points)
            }
            _ => return None,
        };
        rest.is_empty().then_some(r)
    }
}

/// What replay found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReplayReport {
    pub segments: usize,
    pub records: usize,
    /// Bytes cut from the end of the last segment: a record torn by a crash.
    pub truncated_bytes: u64,
    /// Problems found in earlier segments (records after them in that segment are lost).
    pub corrupt: Vec<String>,
}

struct Segment {
    seq: u64,
    path: PathBuf,
    records: u64,
}

/// Where a profile's payload lies in the WAL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pos {
    pub seq: u64,
    pub offset: u64,
    pub len: u32,
}

/// Where an appended record lies, and its log sequence number: records are numbered from 1
/// in the order this process appended them; [`Wal::synced_lsn`] says how far they are
/// durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub lsn: u64,
    pub seq: u64,
    /// File offset of the record's header.
    pub offset: u64,
    /// A profile's payload.
    pub payload: Option<Pos>,
}

/// Records a failed sync dropped: everything from `offset` of segment `seq`, the records
/// numbered `lsns`. The store drops them from its head; their writers get an error.
#[derive(Debug, Clone)]
pub struct Lost {
    pub seq: u64,
    pub offset: u64,
    pub lsns: std::ops::RangeInclusive<u64>,
    pub error: String,
}

/// Where a fault can be injected (tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultPoint {
    /// Writing a record: an injected error fails the write after half the record is
    /// written, as a full disk does.
    Write,
    /// `fdatasync` of a segment.
    Sync,
    /// Creating a segment file.
    Create,
    /// Block storage: putting an object in one piece (before the local rename or the
    /// single upload).
    BlobPut,
    /// Block storage: uploading part `n` (from 1) of a multipart upload.
    BlobPart(u32),
    /// Block storage: completing a put (local: syncing the directory after the rename;
    /// S3: completing the multipart upload).
    BlobComplete,
    /// Block storage: deleting an object.
    BlobDelete,
    /// Block storage: writing a small object whole (the bucket index).
    IndexPut,
    /// A compaction whose block is in block storage, just before it is made visible (in
    /// the catalog and the bucket index): an injected error stops it there, leaving the
    /// block behind as a process killed at that instant would.
    CompactCommit,
}

/// A test hook called before each WAL write, sync and segment creation, and each block
/// storage step ([`FaultPoint`]); the error it returns is what the operation fails with.
#[derive(Clone)]
pub struct FaultHook(pub Arc<dyn Fn(FaultPoint) -> Option<io::Error> + Send + Sync>);

impl std::fmt::Debug for FaultHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FaultHook")
    }
}

fn fault(h: &Option<FaultHook>, at: FaultPoint) -> io::Result<()> {
    match h.as_ref().and_then(|h| (h.0)(at)) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// What must be fsynced to make every record appended so far durable: taken under the
/// store's lock, synced outside it (appends go on meanwhile), then handed back to
/// [`Wal::synced`].
pub struct SyncTicket {
    pub file: Arc<File>,
    seq: u64,
    len: u64,
    lsn: u64,
    faults: Option<FaultHook>,
}

impl SyncTicket {
    /// `fdatasync`s the segment.
    pub fn sync(&self) -> io::Result<()> {
        fault(&self.faults, FaultPoint::Sync)?;
        self.file.sync_data()
    }
}

/// An open WAL directory.
///
/// Invariant: the current segment holds whole records up to `out_len` and nothing after it
/// (unless `broken`: a failed write could not be cut off, and is cut before the next
/// append). Records up to `synced_len` are durable.
pub struct Wal {
    dir: PathBuf,
    segments: Vec<Segment>,
    out: Arc<File>,
    out_len: u64,
    synced_len: u64,
    /// Bytes of a failed write may lie after `out_len`.
    broken: bool,
    /// A sync of the current segment failed: the next record goes to a new segment.
    need_rotate: bool,
    next_lsn: u64,
    synced_lsn: u64,
    lost: Vec<Lost>,
    faults: Option<FaultHook>,
    opened: std::time::Instant,
}

fn seg_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:08}.wal"))
}

/// Creates segment `seq` holding only its magic, synced. A file left by a failed creation
/// is removed, so the next try can create it again.
fn create_segment(dir: &Path, seq: u64, faults: &Option<FaultHook>) -> io::Result<(File, u64)> {
    let path = seg_path(dir, seq);
    fault(faults, FaultPoint::Create)?;
    let f = match OpenOptions::new().create_new(true).write(true).open(&path) {
        Ok(f) => f,
        // Left by a failed creation of an earlier try (only the newest segment can be).
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            let len = fs::metadata(&path)?.len();
            if len > SEGMENT_MAGIC.len() as u64 {
                return Err(e);
            }
            fs::remove_file(&path)?;
            OpenOptions::new()
                .create_new(true)
                .write(true)
                .open(&path)?
        }
        Err(e) => return Err(e),
    };
    let res = (|| {
        (&f).write_all(SEGMENT_MAGIC)?;
        f.sync_all()?;
        File::open(dir)?.sync_all()
    })();
    if let Err(e) = res {
        drop(f);
        let _ = fs::remove_file(&path);
        return Err(e);
    }
    Ok((f, SEGMENT_MAGIC.len() as u64))
}

/// Whether a segment file is what a failed creation leaves: shorter than the magic, and a
/// prefix of it. It holds no record.
fn is_unborn(data: &[u8]) -> bool {
    data.len() < SEGMENT_MAGIC.len() && SEGMENT_MAGIC.starts_with(data)
}

/// Reads a segment's records; returns them, the offset of the end of the last good record,
/// and a description of what stopped the read early, if anything.
/// Each record comes with the file offset of its body.
type Records = Vec<(u64, Record)>;

fn read_segment(path: &Path) -> io::Result<(Records, u64, Option<String>)> {
    let mut data = Vec::new();
    File::open(path)?.read_to_end(&mut data)?;
    Ok(parse_segment(&data, path))
}

/// Parses a segment's bytes (see [`read_segment`]).
pub fn parse_segment(data: &[u8], path: &Path) -> (Records, u64, Option<String>) {
    if data.len() < SEGMENT_MAGIC.len()
        || (&data[..8] != SEGMENT_MAGIC && &data[..8] != SEGMENT_MAGIC_V1)
    {
        return (
            Vec::new(),
            0,
            Some(format!("{}: bad segment header", path.display())),
        );
    }
    let mut off = SEGMENT_MAGIC.len();
    let mut out = Vec::new();
    while off < data.len() {
        let bad = |why: &str| Some(format!("{}: {why} at byte {off}", path.display()));
        if data.len() - off < 8 {
            return (out, off as u64, bad("truncated record header"));
        }
        let len = u32::from_le_bytes(data[off..off + 4].try_into().unwrap_or_default()) as usize;
        let crc = u32::from_le_bytes(data[off + 4..off + 8].try_into().unwrap_or_default());
        if len > MAX_RECORD {
            return (out, off as u64, bad("record length out of range"));
        }
        let Some(body) = data.get(off + 8..off + 8 + len) else {
            return (out, off as u64, bad("truncated record"));
        };
        if crc32fast::hash(body) != crc {
            return (out, off as u64, bad("checksum mismatch"));
        }
        let Some(rec) = Record::decode(body) else {
            return (out, off as u64, bad("malformed record"));
        };
        out.push(((off + 8) as u64, rec));
        off += 8 + len;
    }
    (out, off as u64, None)
}

/// The segment files of a WAL directory, oldest first (none if it does not exist).
pub fn list_segments(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut seqs: Vec<u64> = rd
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.strip_suffix(".wal").and_then(|s| s.parse().ok())
        })
        .collect();
    seqs.sort_unstable();
    Ok(seqs.into_iter().map(|s| (s, seg_path(dir, s))).collect())
}

/// What a read-only check of one segment found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentCheck {
    pub seq: u64,
    pub records: usize,
    pub bytes: u64,
    /// End of the last good record.
    pub good_end: u64,
    /// What stopped the read early.
    pub problem: Option<String>,
    /// A file a failed creation left (no records; removed on open).
    pub unborn: bool,
    /// Profile records: (series key, what it holds).
    pub profiles: Vec<(String, Stored)>,
    /// Series keys of runtime-metric points.
    pub point_keys: Vec<String>,
}

/// A profile as a WAL record holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stored {
    /// As received (type 1).
    Raw(Vec<u8>),
    /// Encoded against the segment's symbols of its service, with the rows it added
    /// (type 3): readable only after the records before it.
    Encoded { symbols: Vec<u8>, enc: Vec<u8> },
}

/// Reads a segment without changing it.
pub fn check_segment(seq: u64, path: &Path) -> io::Result<SegmentCheck> {
    let mut data = Vec::new();
    File::open(path)?.read_to_end(&mut data)?;
    let unborn = is_unborn(&data);
    let (records, good_end, problem) = parse_segment(&data, path);
    let mut profiles = Vec::new();
    let mut point_keys = Vec::new();
    let n = records.len();
    for (_, r) in records {
        match r {
            Record::Profile { key, payload, .. } => profiles.push((key, Stored::Raw(payload))),
            Record::Encoded {
                key, symbols, enc, ..
            } => profiles.push((key, Stored::Encoded { symbols, enc })),
            Record::Points(p) => point_keys.extend(p.into_iter().map(|(k, _, _)| k)),
        }
    }
    Ok(SegmentCheck {
        seq,
        records: n,
        profiles,
        point_keys,
        bytes: data.len() as u64,
        good_end,
        problem: if unborn { None } else { problem },
        unborn,
    })
}

impl Wal {
    /// Opens (creating if needed) the WAL in `dir`, calling `f` for every record in order
    /// with its segment, the offset of its header and the position of its payload
    /// (profiles). Segments for which `done` is true are already in blocks: they are
    /// deleted, not replayed. A torn record at the end of the last segment is cut off;
    /// corruption elsewhere is reported and the rest of that segment skipped. Files a
    /// failed segment creation left (shorter than the magic) are removed.
    pub fn open(
        dir: &Path,
        done: impl Fn(u64) -> bool,
        faults: Option<FaultHook>,
        mut f: impl FnMut(u64, u64, Option<Pos>, Record),
    ) -> io::Result<(Wal, ReplayReport)> {
        fs::create_dir_all(dir)?;
        let mut listed = list_segments(dir)?;
        let mut report = ReplayReport::default();
        let mut segments = Vec::new();
        // Unborn files first: the one before them is then really the last.
        listed.retain(|(_, path)| {
            let short = fs::metadata(path).is_ok_and(|m| m.len() < SEGMENT_MAGIC.len() as u64);
            let unborn = short && fs::read(path).is_ok_and(|d| is_unborn(&d));
            if unborn {
                let _ = fs::remove_file(path);
            }
            !unborn
        });
        let n_listed = listed.len();
        let last_seq = listed.last().map(|s| s.0);
        for (i, (seq, path)) in listed.into_iter().enumerate() {
            if done(seq) {
                fs::remove_file(&path)?;
                continue;
            }
            let (records, good_end, problem) = read_segment(&path)?;
            let last = i + 1 == n_listed;
            let n = records.len() as u64;
            for (off, r) in records {
                report.records += 1;
                let pos = r.payload_at().map(|(p, len)| Pos {
                    seq,
                    offset: off + p,
                    len,
                });
                f(seq, off - 8, pos, r);
            }
            if let Some(p) = problem {
                if last && good_end >= SEGMENT_MAGIC.len() as u64 {
                    let len = fs::metadata(&path)?.len();
                    let file = OpenOptions::new().write(true).open(&path)?;
                    file.set_len(good_end)?;
                    file.sync_all()?;
                    report.truncated_bytes = len - good_end;
                } else {
                    report.corrupt.push(p);
                }
            }
            report.segments += 1;
            segments.push(Segment {
                seq,
                path,
                records: n,
            });
        }
        // Append to a fresh segment: earlier ones are never written again.
        let next = last_seq.map_or(1, |s| s + 1);
        let (out, out_len) = create_segment(dir, next, &faults)?;
        segments.push(Segment {
            seq: next,
            path: seg_path(dir, next),
            records: 0,
        });
        Ok((
            Wal {
                dir: dir.to_path_buf(),
                segments,
                out: Arc::new(out),
                out_len,
                synced_len: out_len,
                broken: false,
                need_rotate: false,
                next_lsn: 1,
                synced_lsn: 0,
                lost: Vec::new(),
                faults,
                opened: std::time::Instant::now(),
            },
            report,
        ))
    }

    /// Frames a record (header + body), refusing one over [`MAX_RECORD`].
    pub fn frame(r: &Record) -> io::Result<Vec<u8>> {
        let body = r.encode();
        if body.len() > MAX_RECORD {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "record too large",
            ));
        }
        let mut rec = Vec::with_capacity(8 + body.len());
        rec.extend_from_slice(&(body.len() as u32).to_le_bytes());
        rec.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
        rec.extend_from_slice(&body);
        Ok(rec)
    }

    /// Whether appending `frame_len` bytes first starts a new segment (which syncs the
    /// current one: the caller must hold the store's sync lock).
    pub fn needs_rotation(&self, frame_len: usize) -> bool {
        self.need_rotate
            || (self.out_len > SEGMENT_MAGIC.len() as u64
                && self.out_len + frame_len as u64 > SEGMENT_SIZE)
    }

    /// Appends framed records (see [`frame`](Wal::frame)) with one positional write, all or
    /// none; they are durable after the next sync. A failed write is cut off again whole, so
    /// the segment stays a sequence of whole records (if even the cut fails, it is retried
    /// before the next append). The records stay separate frames: replay is unchanged.
    pub fn append_many(&mut self, recs: &[(&Record, &[u8])]) -> io::Result<Vec<Appended>> {
        let total: usize = recs.iter().map(|(_, f)| f.len()).sum();
        self.prepare(total)?;
        self.append_prepared(recs)
    }

    /// Readies the WAL for a write of about `frame_len` bytes: cuts off what a failed write
    /// left, and starts a new segment if one is due (which syncs the current one: the caller
    /// must hold the store's sync lock). Returns the segment the next
    /// [`append_prepared`](Wal::append_prepared) writes to: records encoded against that
    /// segment's symbols are encoded between the two, under the store's lock.
    pub fn prepare(&mut self, frame_len: usize) -> io::Result<u64> {
        if self.broken {
            self.out.set_len(self.out_len)?;
            self.broken = false;
        }
        if self.needs_rotation(frame_len) {
            self.rotate()?;
        }
        Ok(self.current_seq())
    }

    /// Appends framed records to the current segment, never starting another (see
    /// [`prepare`](Wal::prepare); the segment size is a soft limit).
    pub fn append_prepared(&mut self, recs: &[(&Record, &[u8])]) -> io::Result<Vec<Appended>> {
        let joined;
        let bytes: &[u8] = match recs {
            [(_, one)] => one,
            _ => {
                joined = recs
                    .iter()
                    .flat_map(|(_, f)| f.iter().copied())
                    .collect::<Vec<u8>>();
                &joined
            }
        };
        let start = self.out_len;
        let res = match fault(&self.faults, FaultPoint::Write) {
            Ok(()) => self.out.write_all_at(bytes, start),
            Err(e) => {
                let _ = self.out.write_all_at(&bytes[..bytes.len() / 2], start);
                Err(e)
            }
        };
        if let Err(e) = res {
            if self.out.set_len(start).is_err() {
                self.broken = true;
            }
            return Err(e);
        }
        let seq = self.current_seq();
        let mut at = start;
        let mut out = Vec::with_capacity(recs.len());
        for (r, frame) in recs {
            let lsn = self.next_lsn;
            self.next_lsn += 1;
            out.push(Appended {
                lsn,
                seq,
                offset: at,
                payload: r.payload_at().map(|(p, len)| Pos {
                    seq,
                    offset: at + 8 + p,
                    len,
                }),
            });
            at += frame.len() as u64;
        }
        self.out_len = at;
        if let Some(s) = self.segments.last_mut() {
            s.records += recs.len() as u64;
        }
        Ok(out)
    }

    /// Every record numbered up to this is durable (or was lost: see [`take_lost`](Wal::take_lost)).
    pub fn synced_lsn(&self) -> u64 {
        self.synced_lsn
    }

    /// What to fsync to make every record appended so far durable; `None` if they are.
    pub fn sync_ticket(&self) -> Option<SyncTicket> {
        (self.next_lsn - 1 > self.synced_lsn || self.out_len > self.synced_len).then(|| {
            SyncTicket {
                file: self.out.clone(),
                seq: self.current_seq(),
                len: self.out_len,
                lsn: self.next_lsn - 1,
                faults: self.faults.clone(),
            }
        })
    }

    /// Takes the outcome of a ticket's sync. The caller holds the store's sync lock from
    /// [`sync_ticket`](Wal::sync_ticket) to here, so the segment cannot have changed but
    /// for appends. A failed sync leaves the records after the last good sync in doubt
    /// (Linux may have dropped their pages): they are cut off and reported as lost, and the
    /// next record starts a new segment.
    pub fn synced(&mut self, t: &SyncTicket, res: io::Result<()>) -> io::Result<()> {
        match res {
            Ok(()) => {
                if t.seq == self.current_seq() {
                    self.synced_len = self.synced_len.max(t.len);
                }
                self.synced_lsn = self.synced_lsn.max(t.lsn);
                Ok(())
            }
            Err(e) => {
                if t.seq == self.current_seq() {
                    self.drop_unsynced(&e);
                }
                Err(e)
            }
        }
    }

    fn drop_unsynced(&mut self, e: &io::Error) {
        let last = self.next_lsn - 1;
        if last > self.synced_lsn || self.out_len > self.synced_len {
            self.lost.push(Lost {
                seq: self.current_seq(),
                offset: self.synced_len,
                lsns: self.synced_lsn + 1..=last,
                error: e.to_string(),
            });
        }
        if self.out.set_len(self.synced_len).is_err() {
            self.broken = true;
        }
        self.out_len = self.synced_len;
        self.synced_lsn = last;
        self.need_rotate = true;
    }

    /// Records failed syncs dropped since the last call.
    pub fn take_lost(&mut self) -> Vec<Lost> {
        std::mem::take(&mut self.lost)
    }

    /// Waits until every appended record is on disk (under the store's sync lock).
    pub fn sync(&mut self) -> io::Result<()> {
        match self.sync_ticket() {
            Some(t) => {
                let res = t.sync();
                self.synced(&t, res)
            }
            None => Ok(()),
        }
    }

    pub fn current_seq(&self) -> u64 {
        self.segments.last().map_or(0, |s| s.seq)
    }

    /// How long the current segment has been open, if it holds records.
    pub fn current_age(&self) -> Option<std::time::Duration> {
        let s = self.segments.last()?;
        (s.records > 0).then(|| self.opened.elapsed())
    }

    /// Closed segments (every one but the one being written).
    pub fn closed(&self) -> Vec<u64> {
        let n = self.segments.len().saturating_sub(1);
        self.segments[..n].iter().map(|s| s.seq).collect()
    }

    /// Closes the current segment (synced) and starts the next (under the store's sync
    /// lock). If the next cannot be created, the current one stays open.
    pub fn rotate(&mut self) -> io::Result<()> {
        self.sync()?;
        if self.broken {
            self.out.set_len(self.out_len)?;
            self.broken = false;
        }
        let next = self.current_seq() + 1;
        let (out, len) = create_segment(&self.dir, next, &self.faults)?;
        self.out = Arc::new(out);
        self.out_len = len;
        self.synced_len = len;
        self.need_rotate = false;
        self.opened = std::time::Instant::now();
        self.segments.push(Segment {
            seq: next,
            path: seg_path(&self.dir, next),
            records: 0,
        });
        Ok(())
    }

    /// Deletes closed segments up to and including `seq` (their records are in a block).
    pub fn remove_through(&mut self, seq: u64) -> io::Result<()> {
        let n = self.segments.len();
        let mut keep = Vec::with_capacity(n);
        let mut err = None;
        for (i, s) in std::mem::take(&mut self.segments).into_iter().enumerate() {
            if i + 1 < n && s.seq <= seq && err.is_none() {
                match fs::remove_file(&s.path) {
                    Ok(()) => continue,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => err = Some(e),
                }
            }
            keep.push(s);
        }
        self.segments = keep;
        err.map_or(Ok(()), Err)
    }

    /// Copies closed segment `seq` to `dir/name` (created if needed), synced: file and
    /// directory.
    pub fn copy_aside(&self, seq: u64, dir: &Path, name: &str) -> io::Result<()> {
        let Some(s) = self.segments.iter().find(|s| s.seq == seq) else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("no WAL segment {seq}"),
            ));
        };
        fs::create_dir_all(dir)?;
        let to = dir.join(name);
        fs::copy(&s.path, &to)?;
        File::open(&to)?.sync_all()?;
        File::open(dir)?.sync_all()
    }

    /// Opens a segment for reading payloads (the handle stays valid if the segment is
    /// deleted meanwhile).
    pub fn open_segment(&self, seq: u64) -> io::Result<File> {
        File::open(seg_path(&self.dir, seq))
    }

    /// Total bytes of all segments.
    pub fn size_bytes(&self) -> u64 {
        self.segments
            .iter()
            .filter_map(|s| fs::metadata(&s.path).ok())
            .map(|m| m.len())
            .sum()
    }
}

/// Reads a profile payload from an open segment.
pub fn read_payload(f: &File, pos: Pos) -> io::Result<Vec<u8>> {
    let mut b = vec![0u8; pos.len as usize];
    f.read_exact_at(&mut b, pos.offset)?;
    Ok(b)
}
