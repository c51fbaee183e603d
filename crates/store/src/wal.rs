//! The write-ahead log: append-only segment files of CRC-checked records, replayed on start.
//! Byte layout: `docs/format/wal.md`.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
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
    /// The newest time in the record.
    pub fn max_time(&self) -> i64 {
        match self {
            Record::Profile { time_ns, .. } => *time_ns,
            Record::Points(p) => p.iter().map(|x| x.1).max().unwrap_or(i64::MIN),
        }
    }

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
    max_time: i64,
}

/// An open WAL directory.
pub struct Wal {
    dir: PathBuf,
    segments: Vec<Segment>,
    out: BufWriter<File>,
    out_len: u64,
    dirty: bool,
}

fn seg_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:08}.wal"))
}

fn create_segment(dir: &Path, seq: u64) -> io::Result<(BufWriter<File>, u64)> {
    let path = seg_path(dir, seq);
    let mut f = OpenOptions::new()
        .create_new(true)
        .write(true)
        .open(&path)?;
    f.write_all(SEGMENT_MAGIC)?;
    f.sync_all()?;
    File::open(dir)?.sync_all()?;
    Ok((
        BufWriter::with_capacity(1 << 20, f),
        SEGMENT_MAGIC.len() as u64,
    ))
}

/// Reads a segment's records; returns them, the offset of the end of the last good record,
/// and a description of what stopped the read early, if anything.
fn read_segment(path: &Path) -> io::Result<(Vec<Record>, u64, Option<String>)> {
    let mut data = Vec::new();
    File::open(path)?.read_to_end(&mut data)?;
    if data.len() < SEGMENT_MAGIC.len() || &data[..8] != SEGMENT_MAGIC {
        return Ok((
            Vec::new(),
            0,
            Some(format!("{}: bad segment header", path.display())),
        ));
    }
    let mut off = SEGMENT_MAGIC.len();
    let mut out = Vec::new();
    while off < data.len() {
        let bad = |why: &str| Some(format!("{}: {why} at byte {off}", path.display()));
        if data.len() - off < 8 {
            return Ok((out, off as u64, bad("truncated record header")));
        }
        let len = u32::from_le_bytes(data[off..off + 4].try_into().unwrap_or_default()) as usize;
        let crc = u32::from_le_bytes(data[off + 4..off + 8].try_into().unwrap_or_default());
        if len > MAX_RECORD {
            return Ok((out, off as u64, bad("record length out of range")));
        }
        let Some(body) = data.get(off + 8..off + 8 + len) else {
            return Ok((out, off as u64, bad("truncated record")));
        };
        if crc32fast::hash(body) != crc {
            return Ok((out, off as u64, bad("checksum mismatch")));
        }
        let Some(rec) = Record::decode(body) else {
            return Ok((out, off as u64, bad("malformed record")));
        };
        out.push(rec);
        off += 8 + len;
    }
    Ok((out, off as u64, None))
}

impl Wal {
    /// Opens (creating if needed) the WAL in `dir`, calling `f` for every record in order.
    /// A torn record at the end of the last segment is cut off; corruption elsewhere is
    /// reported and the rest of that segment skipped.
    pub fn open(dir: &Path, mut f: impl FnMut(Record)) -> io::Result<(Wal, ReplayReport)> {
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
            let (records, good_end, problem) = read_segment(&path)?;
            let last = i + 1 == seqs.len();
            let mut max_time = i64::MIN;
            for r in records {
                max_time = max_time.max(r.max_time());
                report.records += 1;
                f(r);
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
                max_time,
            });
        }
        // Append to a fresh segment: earlier ones are never written again.
        let next = seqs.last().map_or(1, |s| s + 1);
        let (out, out_len) = create_segment(dir, next)?;
        segments.push(Segment {
            seq: next,
            path: seg_path(dir, next),
            max_time: i64::MIN,
        });
        Ok((
            Wal {
                dir: dir.to_path_buf(),
                segments,
                out,
                out_len,
                dirty: false,
            },
            report,
        ))
    }

    /// Appends a record (buffered; durable after the next [`sync`](Wal::sync)).
    pub fn append(&mut self, r: &Record) -> io::Result<()> {
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
        self.out.write_all(&(body.len() as u32).to_le_bytes())?;
        self.out.write_all(&crc32fast::hash(&body).to_le_bytes())?;
        self.out.write_all(&body)?;
        self.out_len += 8 + body.len() as u64;
        self.dirty = true;
        if let Some(s) = self.segments.last_mut() {
            s.max_time = s.max_time.max(r.max_time());
        }
        Ok(())
    }

    /// Flushes buffered records and waits until they are on disk.
    pub fn sync(&mut self) -> io::Result<()> {
        if self.dirty {
            self.out.flush()?;
            self.out.get_ref().sync_data()?;
            self.dirty = false;
        }
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.sync()?;
        let next = self.segments.last().map_or(1, |s| s.seq + 1);
        let (out, len) = create_segment(&self.dir, next)?;
        self.out = out;
        self.out_len = len;
        self.segments.push(Segment {
            seq: next,
            path: seg_path(&self.dir, next),
            max_time: i64::MIN,
        });
        Ok(())
    }

    /// Deletes closed segments whose newest record is older than `cutoff_ns`.
    pub fn drop_before(&mut self, cutoff_ns: i64) -> io::Result<usize> {
        let n = self.segments.len();
        let mut removed = 0;
        let mut keep = Vec::with_capacity(n);
        for (i, s) in std::mem::take(&mut self.segments).into_iter().enumerate() {
            if i + 1 < n && s.max_time < cutoff_ns {
                fs::remove_file(&s.path)?;
                removed += 1;
            } else {
                keep.push(s);
            }
        }
        self.segments = keep;
        Ok(removed)
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
