//! Execution traces as files: `<data>/traces/<id>.gctrace`, one per capture, each the trace's
//! bytes as Go wrote them behind a small header naming its series and time
//! (`docs/format/traces.md`). `gocost load` runs are kept the same way in `<data>/loadruns/`
//! (kind `loadrun`, the bytes a JSON document). A trace is durable when [`Traces::put`] returns: the file is
//! written under a temporary name, `fsync`ed, renamed into place, and the directory
//! `fsync`ed (docs/adr/0008).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::head::is_disk_full;
use crate::series::{Selector, SeriesKey};
use crate::{Error, Store};

/// The first 8 bytes of a trace file.
pub const TRACE_MAGIC: &[u8; 8] = b"GCTRACE1";
pub(crate) const SUFFIX: &str = ".gctrace";
/// Largest trace kept (bytes of the trace itself).
pub const MAX_TRACE_BYTES: usize = 256 << 20;
/// Longest series key in a header.
const MAX_KEY: usize = 64 << 10;

/// One stored trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceInfo {
    /// `<time_ns as 16 hex digits>-<8 hex digits of the key's hash>`: sorts by time, names
    /// the file.
    pub id: String,
    /// Its series (kind `trace`, the target's labels).
    pub key: SeriesKey,
    /// When the capture began, ns since the Unix epoch.
    pub time_ns: i64,
    /// Size of the trace (without the header).
    pub bytes: u64,
}

pub(crate) struct Traces {
    dir: PathBuf,
    index: Mutex<BTreeMap<String, TraceInfo>>,
}

fn fnv(s: &str) -> u32 {
    s.bytes().fold(0x811c9dc5u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x01000193)
    })
}

/// Whether `id` has the shape [`TraceInfo::id`] has (so it can name a file safely).
pub fn valid_id(id: &str) -> bool {
    let b = id.as_bytes();
    b.len() == 25
        && b[16] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 16 || c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
}

/// The header of a trace file: (key, time_ns, header length), or what is wrong.
fn parse_header(h: &[u8]) -> Result<(SeriesKey, i64, usize), String> {
    if h.len() < 24 || &h[..8] != TRACE_MAGIC {
        return Err("not a gocost trace file (bad magic)".into());
    }
    let word = |at: usize| -> [u8; 8] {
        let mut w = [0u8; 8];
        w.copy_from_slice(&h[at..at + 8]);
        w
    };
    let time_ns = i64::from_le_bytes(word(8));
    let mut l = [0u8; 4];
    l.copy_from_slice(&h[16..20]);
    let key_len = u32::from_le_bytes(l) as usize;
    if key_len > MAX_KEY {
        return Err(format!("byte 16: key length {key_len} over {MAX_KEY}"));
    }
    let end = 20 + key_len + 4;
    if h.len() < end {
        return Err("header truncated".into());
    }
    let key = std::str::from_utf8(&h[20..20 + key_len])
        .map_err(|_| "byte 20: key is not UTF-8".to_string())?;
    let key = SeriesKey::parse(key).map_err(|e| format!("byte 20: key: {e}"))?;
    Ok((key, time_ns, end))
}

fn header(key: &SeriesKey, time_ns: i64, trace: &[u8]) -> Vec<u8> {
    let k = key.to_string();
    let mut h = Vec::with_capacity(24 + k.len());
    h.extend_from_slice(TRACE_MAGIC);
    h.extend_from_slice(&time_ns.to_le_bytes());
    h.extend_from_slice(&(k.len() as u32).to_le_bytes());
    h.extend_from_slice(k.as_bytes());
    h.extend_from_slice(&crc32fast::hash(trace).to_le_bytes());
    h
}

fn io_err(e: std::io::Error) -> Error {
    if is_disk_full(&e) {
        Error::DiskFull(format!("not stored: disk full: {e}"))
    } else {
        Error::Io(e)
    }
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Reads the header of one file (not the trace).
fn read_info(path: &Path, id: &str) -> Result<TraceInfo, String> {
    let mut f = File::open(path).map_err(|e| e.to_string())?;
    let size = f.metadata().map_err(|e| e.to_string())?.len();
    let mut h = vec![0u8; 24];
    f.read_exact(&mut h).map_err(|e| e.to_string())?;
    let mut l = [0u8; 4];
    l.copy_from_slice(&h[16..20]);
    let key_len = (u32::from_le_bytes(l) as usize).min(MAX_KEY + 1);
    h.resize(24 + key_len, 0);
    f.read_exact(&mut h[24..]).map_err(|e| e.to_string())?;
    let (key, time_ns, hl) = parse_header(&h)?;
    Ok(TraceInfo {
        id: id.to_string(),
        key,
        time_ns,
        bytes: size.saturating_sub(hl as u64),
    })
}

impl Traces {
    /// Opens `<data>/<sub>` (`traces`, `loadruns`), indexing every file's header; files
    /// that are not whole capture files (a crash's temporaries, damage) are reported and
    /// skipped.
    pub(crate) fn open(
        data: &Path,
        sub: &str,
        problems: &mut Vec<String>,
    ) -> Result<Traces, Error> {
        let dir = data.join(sub);
        std::fs::create_dir_all(&dir)?;
        let mut index = BTreeMap::new();
        for e in std::fs::read_dir(&dir)? {
            let e = e?;
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with("tmp-") {
                let _ = std::fs::remove_file(e.path());
                continue;
            }
            let Some(id) = name.strip_suffix(SUFFIX).filter(|id| valid_id(id)) else {
                continue;
            };
            match read_info(&e.path(), id) {
                Ok(info) => {
                    index.insert(id.to_string(), info);
                }
                Err(err) => problems.push(format!("{sub}/{name} skipped: {err}")),
            }
        }
        Ok(Traces {
            dir,
            index: Mutex::new(index),
        })
    }

    /// No traces, and no directory made: a query instance stores none.
    pub(crate) fn empty(data: &Path, sub: &str) -> Traces {
        Traces {
            dir: data.join(sub),
            index: Mutex::new(BTreeMap::new()),
        }
    }

    fn path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}{SUFFIX}"))
    }

    pub(crate) fn put(
        &self,
        key: &SeriesKey,
        time_ns: i64,
        trace: &[u8],
    ) -> Result<TraceInfo, Error> {
        if trace.len() > MAX_TRACE_BYTES {
            return Err(Error::TooLarge(trace.len()));
        }
        let k = key.to_string();
        let id = format!("{:016x}-{:08x}", time_ns.max(0) as u64, fnv(&k));
        let tmp = self.dir.join(format!("tmp-{id}"));
        let write = || -> std::io::Result<()> {
            let mut f = File::create(&tmp)?;
            f.write_all(&header(key, time_ns, trace))?;
            f.write_all(trace)?;
            f.sync_all()?;
            std::fs::rename(&tmp, self.path(&id))?;
            sync_dir(&self.dir)
        };
        if let Err(e) = write() {
            let _ = std::fs::remove_file(&tmp);
            return Err(io_err(e));
        }
        let info = TraceInfo {
            id: id.clone(),
            key: key.clone(),
            time_ns,
            bytes: trace.len() as u64,
        };
        self.index
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, info.clone());
        Ok(info)
    }

    pub(crate) fn list(&self, sel: &Selector, from_ns: i64, to_ns: i64) -> Vec<TraceInfo> {
        self.index
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .filter(|t| t.time_ns >= from_ns && t.time_ns <= to_ns && sel.matches(&t.key))
            .cloned()
            .collect()
    }

    pub(crate) fn get(&self, id: &str) -> Option<TraceInfo> {
        self.index
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
    }

    /// The trace's bytes, checked against the header's CRC.
    pub(crate) fn read(&self, id: &str) -> Result<Option<(TraceInfo, Vec<u8>)>, Error> {
        let Some(info) = self.get(id) else {
            return Ok(None);
        };
        let bytes = std::fs::read(self.path(id))?;
        let (_, _, hl) =
            parse_header(&bytes).map_err(|e| Error::Block(format!("trace {id}: {e}")))?;
        let mut c = [0u8; 4];
        c.copy_from_slice(&bytes[hl - 4..hl]);
        let trace = bytes[hl..].to_vec();
        if crc32fast::hash(&trace) != u32::from_le_bytes(c) {
            return Err(Error::Block(format!("trace {id}: checksum mismatch")));
        }
        Ok(Some((info, trace)))
    }

    /// Deletes traces older than `cutoff_ns`.
    pub(crate) fn expire(&self, cutoff_ns: i64) -> Result<(), Error> {
        let old: Vec<String> = {
            let g = self.index.lock().unwrap_or_else(|p| p.into_inner());
            g.values()
                .filter(|t| t.time_ns < cutoff_ns)
                .map(|t| t.id.clone())
                .collect()
        };
        // Delete, then forget: a trace whose file cannot be deleted stays listed.
        for id in old {
            match std::fs::remove_file(self.path(&id)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
            self.index
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&id);
        }
        Ok(())
    }

    /// The series that have traces.
    pub(crate) fn keys(&self) -> std::collections::BTreeSet<SeriesKey> {
        self.index
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .map(|t| t.key.clone())
            .collect()
    }

    pub(crate) fn count_and_bytes(&self) -> (usize, u64) {
        let g = self.index.lock().unwrap_or_else(|p| p.into_inner());
        (g.len(), g.values().map(|t| t.bytes).sum())
    }
}

/// Checks one trace file's bytes whole (header and CRC): what `gocost verify` runs and what
/// the fuzz target feeds.
pub fn check_trace_file(bytes: &[u8]) -> Result<(SeriesKey, i64), String> {
    let (key, time, hl) = parse_header(bytes)?;
    let mut c = [0u8; 4];
    c.copy_from_slice(&bytes[hl - 4..hl]);
    if crc32fast::hash(&bytes[hl..]) != u32::from_le_bytes(c) {
        return Err(format!("byte {}: checksum mismatch", hl - 4));
    }
    Ok((key, time))
}

impl Store {
    /// Stores an execution trace (`key`'s kind is `trace`) taken at `time_ns`, durably: it
    /// is on disk (file and directory synced) when this returns (docs/format/traces.md).
    pub fn put_trace(
        &self,
        key: &SeriesKey,
        time_ns: i64,
        trace: &[u8],
    ) -> Result<TraceInfo, Error> {
        if self.query_only() {
            return Err(Error::QueryOnly);
        }
        self.traces.put(key, time_ns, trace)
    }

    /// Stored traces of matching series taken in `[from_ns, to_ns]`, oldest first.
    pub fn traces(&self, sel: &Selector, from_ns: i64, to_ns: i64) -> Vec<TraceInfo> {
        self.traces.list(sel, from_ns, to_ns)
    }

    /// One stored trace's description.
    pub fn trace_info(&self, id: &str) -> Option<TraceInfo> {
        self.traces.get(id)
    }

    /// One stored trace's bytes (as Go wrote them), checked against their checksum; `None`
    /// if there is no such trace.
    pub fn read_trace(&self, id: &str) -> Result<Option<(TraceInfo, Vec<u8>)>, Error> {
        self.traces.read(id)
    }

    /// Stores a `gocost load` run (`key`'s kind is `loadrun`; `doc` its JSON document) that
    /// began at `time_ns`, durably, as traces are.
    pub fn put_load_run(
        &self,
        key: &SeriesKey,
        time_ns: i64,
        doc: &[u8],
    ) -> Result<TraceInfo, Error> {
        if self.query_only() {
            return Err(Error::QueryOnly);
        }
        self.load_runs.put(key, time_ns, doc)
    }

    /// Stored load runs of matching series that began in `[from_ns, to_ns]`, oldest first.
    pub fn load_runs(&self, sel: &Selector, from_ns: i64, to_ns: i64) -> Vec<TraceInfo> {
        self.load_runs.list(sel, from_ns, to_ns)
    }

    /// One stored load run's document, checked against its checksum.
    pub fn read_load_run(&self, id: &str) -> Result<Option<(TraceInfo, Vec<u8>)>, Error> {
        self.load_runs.read(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip_and_damage() {
        let key = SeriesKey::new("trace", [("job".to_string(), "a".to_string())]);
        let mut f = header(&key, 42, b"go 1.22 trace\0\0\0");
        f.extend_from_slice(b"go 1.22 trace\0\0\0");
        assert_eq!(check_trace_file(&f), Ok((key, 42)));
        let n = f.len();
        f[n - 1] ^= 1;
        assert!(check_trace_file(&f).unwrap_err().contains("checksum"));
        assert!(check_trace_file(&f[..10]).is_err());
        assert!(check_trace_file(b"GCTRACE1\0\0\0\0\0\0\0\0\xff\xff\xff\xff\0\0\0\0").is_err());
        assert!(valid_id("0000000000000001-0a0b0c0d"));
        assert!(!valid_id("../../etc/passwd-0a0b0c0d"));
        assert!(!valid_id("0000000000000001-0A0B0C0D"));
    }
}
