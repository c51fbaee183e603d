//! The write-ahead log: append-only segment files of CRC-checked records, replayed on start.
//! Byte layout: `docs/format/wal.md`.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read as _, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

pub const SEGMENT_MAGIC: &[u8; 8] = b"GCWAL001";
/// Records larger than this are refused on write and treated as corruption on replay.
pub const MAX_RECORD: usize = 64 << 20;
const SEGMENT_SIZE: u64 = 128 << 20;
const REC_PROFILE: u8 = 1;
const REC_POINTS: u8 = 2;

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

    /// Where a profile record's payload starts, counted from the start of its body.
    fn payload_offset(&self) -> Option<u64> {
        match self {
            Record::Profile { key, .. } => Some(1 + 8 + 4 + key.len() as u64 + 4),
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

/// An open WAL directory.
pub struct Wal {
    dir: PathBuf,
    segments: Vec<Segment>,
    out: File,
    out_len: u64,
    dirty: bool,
    opened: std::time::Instant,
}

fn seg_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:08}.wal"))
}

fn create_segment(dir: &Path, seq: u64) -> io::Result<(File, u64)> {
    let path = seg_path(dir, seq);
    let mut f = OpenOptions::new()
        .create_new(true)
        .write(true)
        .open(&path)?;
    f.write_all(SEGMENT_MAGIC)?;
    f.sync_all()?;
    File::open(dir)?.sync_all()?;
    Ok((f, SEGMENT_MAGIC.len() as u64))
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
    if data.len() < SEGMENT_MAGIC.len() || &data[..8] != SEGMENT_MAGIC {
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

impl Wal {
    /// Opens (creating if needed) the WAL in `dir`, calling `f` for every record in order
    /// with its segment and the position of its payload (profiles). Segments for which `done` is true are
    /// already in blocks: they are deleted, not replayed. A torn record at the end of the
    /// last segment is cut off; corruption elsewhere is reported and the rest of that
    /// segment skipped.
    pub fn open(
        dir: &Path,
        done: impl Fn(u64) -> bool,
        mut f: impl FnMut(u64, Option<Pos>, Record),
    ) -> io::Result<(Wal, ReplayReport)> {
        fs::create_dir_all(dir)?;
        let mut seqs: Vec<u64> = fs::read_dir(dir)?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let n = e.file_name().to_string_lossy().into_owned();
                n.strip_suffix(".wal").and_then(|s| s.parse().ok())
            })
            .collect();
        seqs.sort_unstable();
        let mut report = ReplayReport::default();
        let mut segments = Vec::new();
        for (i, &seq) in seqs.iter().enumerate() {
            let path = seg_path(dir, seq);
            if done(seq) {
                fs::remove_file(&path)?;
                continue;
            }
            let (records, good_end, problem) = read_segment(&path)?;
            let last = i + 1 == seqs.len();
            let n = records.len() as u64;
            for (off, r) in records {
                report.records += 1;
                let pos = r.payload_offset().map(|p| Pos {
                    seq,
                    offset: off + p,
                    len: match &r {
                        Record::Profile { payload, .. } => payload.len() as u32,
                        Record::Points(_) => 0,
                    },
                });
                f(seq, pos, r);
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
        let next = seqs.last().map_or(1, |s| s + 1);
        let (out, out_len) = create_segment(dir, next)?;
        segments.push(Segment {
            seq: next,
            path: seg_path(dir, next),
            records: 0,
        });
        Ok((
            Wal {
                dir: dir.to_path_buf(),
                segments,
                out,
                out_len,
                dirty: false,
                opened: std::time::Instant::now(),
            },
            report,
        ))
    }

    /// Appends a record (written at once; durable after the next [`sync`](Wal::sync)).
    /// Returns where a profile's payload lies, for reading it back.
    pub fn append(&mut self, r: &Record) -> io::Result<Option<Pos>> {
        let body = r.encode();
        if body.len() > MAX_RECORD {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "record too large",
            ));
        }
        if self.out_len + 8 + body.len() as u64 > SEGMENT_SIZE {
            self.rotate()?;
        }
        let mut rec = Vec::with_capacity(8 + body.len());
        rec.extend_from_slice(&(body.len() as u32).to_le_bytes());
        rec.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
        rec.extend_from_slice(&body);
        if let Err(e) = self.out.write_all(&rec) {
            // A partial record must not be followed by good ones: start a new segment.
            let _ = self.rotate();
            return Err(e);
        }
        let start = self.out_len + 8;
        self.out_len += rec.len() as u64;
        self.dirty = true;
        let seq = self.current_seq();
        if let Some(s) = self.segments.last_mut() {
            s.records += 1;
        }
        Ok(r.payload_offset().map(|p| Pos {
            seq,
            offset: start + p,
            len: (body.len() as u64 - p) as u32,
        }))
    }

    /// Waits until every appended record is on disk.
    pub fn sync(&mut self) -> io::Result<()> {
        if self.dirty {
            self.out.sync_data()?;
            self.dirty = false;
        }
        Ok(())
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

    /// Closes the current segment and starts the next.
    pub fn rotate(&mut self) -> io::Result<()> {
        self.sync()?;
        let next = self.current_seq() + 1;
        let (out, len) = create_segment(&self.dir, next)?;
        self.out = out;
        self.out_len = len;
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
        for (i, s) in std::mem::take(&mut self.segments).into_iter().enumerate() {
            if i + 1 < n && s.seq <= seq {
                fs::remove_file(&s.path)?;
            } else {
                keep.push(s);
            }
        }
        self.segments = keep;
        Ok(())
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
