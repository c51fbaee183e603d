//! The block cache: byte ranges of blocks read from a bucket, kept on the local disk
//! (`<data>/cache/<block>/<start>-<end>`, docs/format/cache.md, docs/adr/0027) so that a
//! query that has read them once reads them again from the disk, not over the network.
//!
//! Blocks are immutable and their names are never reused, so an entry never goes stale; the
//! entries of a block leave with it (when the catalog forgets it, and at open for blocks the
//! bucket no longer lists). Each entry carries a small header (magic, length, CRC-32 of the
//! bytes) checked on every read: a damaged or torn entry is deleted and the range fetched
//! again, never served. Entries are written to a temporary file and renamed (no fsync: a
//! crash loses entries, the header check finds torn ones). The cache holds at most
//! `capacity` bytes of entry files, evicting the least recently used; at open it is rebuilt
//! from the directory (oldest written first in the LRU order). One process per cache
//! directory (it holds `<cache>/LOCK`; a query instance takes no lock on the data directory
//! itself), so the index in memory is the truth.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};

/// The cache directory's lock file (the one name in it that is not a block's).
const LOCK: &str = "LOCK";

/// The first bytes of every entry file.
pub const ENTRY_MAGIC: &[u8; 8] = b"GCCACHE1";
/// Magic, length (u64 LE), CRC-32 (IEEE) of the bytes (u32 LE).
pub const ENTRY_HEADER: usize = 20;

/// A damaged entry: what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryError(pub String);

impl std::fmt::Display for EntryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The bytes of one entry file, header first.
pub fn encode_entry(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(ENTRY_HEADER + bytes.len());
    out.extend_from_slice(ENTRY_MAGIC);
    out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(bytes).to_le_bytes());
    out.extend_from_slice(bytes);
    out
}

/// The header's length and CRC fields, if the magic is right (`h`: at least the header).
fn parse_header(h: &[u8]) -> Result<(u64, u32), EntryError> {
    if h.len() < ENTRY_HEADER {
        return Err(EntryError(format!(
            "{} bytes: shorter than the header",
            h.len()
        )));
    }
    if &h[..8] != ENTRY_MAGIC {
        return Err(EntryError("bad magic".into()));
    }
    let mut len = [0u8; 8];
    len.copy_from_slice(&h[8..16]);
    let mut crc = [0u8; 4];
    crc.copy_from_slice(&h[16..20]);
    Ok((u64::from_le_bytes(len), u32::from_le_bytes(crc)))
}

fn check_body(body: &[u8], len: u64, crc: u32) -> Result<(), EntryError> {
    if len != body.len() as u64 {
        return Err(EntryError(format!(
            "header says {len} bytes, the file holds {}",
            body.len()
        )));
    }
    if crc32fast::hash(body) != crc {
        return Err(EntryError("checksum mismatch".into()));
    }
    Ok(())
}

/// Checks an entry file's header against its bytes and returns the bytes.
pub fn parse_entry(file: &[u8]) -> Result<&[u8], EntryError> {
    let (len, crc) = parse_header(file)?;
    let body = &file[ENTRY_HEADER..];
    check_body(body, len, crc)?;
    Ok(body)
}

/// The bytes of the entry file at `p`, which should hold `want` bytes: read straight into
/// their own buffer (no copy of the header out of it), checked as [`parse_entry`] checks.
fn read_entry_file(p: &Path, want: u64) -> std::io::Result<Result<Vec<u8>, EntryError>> {
    use std::io::Read;
    let mut f = std::fs::File::open(p)?;
    let mut h = [0u8; ENTRY_HEADER];
    match f.read_exact(&mut h) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            return Ok(Err(EntryError("shorter than the header".into())));
        }
        Err(e) => return Err(e),
    }
    let (len, crc) = match parse_header(&h) {
        Ok(x) => x,
        Err(e) => return Ok(Err(e)),
    };
    if len != want {
        return Ok(Err(EntryError(format!(
            "header says {len} bytes, the range has {want}"
        ))));
    }
    let mut body = Vec::with_capacity(usize::try_from(want.min(1 << 26)).unwrap_or(0));
    f.take(want.saturating_add(1)).read_to_end(&mut body)?;
    Ok(check_body(&body, len, crc).map(|()| body))
}

/// Whether `name` may be a directory of the cache: a block name as the bucket lists it
/// (flat, not hidden). Ranges of other names are not cached.
fn cacheable(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && !name.contains(['/', '\\', '\0'])
        && name.len() <= 200
}

fn entry_name(r: &Range<u64>) -> String {
    format!("{}-{}", r.start, r.end)
}

fn parse_entry_name(s: &str) -> Option<Range<u64>> {
    let (a, z) = s.split_once('-')?;
    let (a, z): (u64, u64) = (a.parse().ok()?, z.parse().ok()?);
    // Only the canonical spelling (no `+`, no leading zeros) names an entry.
    (a < z && entry_name(&(a..z)) == s).then_some(a..z)
}

type Key = (String, u64, u64);

#[derive(Default)]
struct Lru {
    /// Entry → (file size, last use).
    entries: HashMap<Key, (u64, u64)>,
    /// Last use → entry (oldest first).
    order: BTreeMap<u64, Key>,
    /// Block → its entries' count (to find a block's entries without a scan).
    blocks: HashMap<String, usize>,
    bytes: u64,
    clock: u64,
}

impl Lru {
    fn touch(&mut self, k: &Key) -> bool {
        self.clock += 1;
        let now = self.clock;
        let Some((_, used)) = self.entries.get_mut(k) else {
            return false;
        };
        let old = std::mem::replace(used, now);
        if let Some(k) = self.order.remove(&old) {
            self.order.insert(now, k);
        }
        true
    }

    fn insert(&mut self, k: Key, size: u64) {
        self.remove(&k);
        self.clock += 1;
        *self.blocks.entry(k.0.clone()).or_default() += 1;
        self.order.insert(self.clock, k.clone());
        self.entries.insert(k, (size, self.clock));
        self.bytes += size;
    }

    fn remove(&mut self, k: &Key) -> bool {
        let Some((size, used)) = self.entries.remove(k) else {
            return false;
        };
        self.order.remove(&used);
        self.bytes -= size;
        if let Some(n) = self.blocks.get_mut(&k.0) {
            *n -= 1;
            if *n == 0 {
                self.blocks.remove(&k.0);
            }
        }
        true
    }

    /// Removes least recently used entries until at most `cap` bytes remain; returns them.
    fn evict(&mut self, cap: u64) -> Vec<Key> {
        let mut out = Vec::new();
        while self.bytes > cap {
            let Some((_, k)) = self.order.pop_first() else {
                break;
            };
            if let Some((size, _)) = self.entries.remove(&k) {
                self.bytes -= size;
            }
            if let Some(n) = self.blocks.get_mut(&k.0) {
                *n -= 1;
                if *n == 0 {
                    self.blocks.remove(&k.0);
                }
            }
            out.push(k);
        }
        out
    }
}

/// What the cache did, for `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Bytes of entry files on disk now, and how many.
    pub bytes: u64,
    pub entries: usize,
    /// Bytes of ranges served from the cache (not fetched) since start.
    pub served_bytes_total: u64,
    /// Entries found damaged (deleted, their ranges fetched again) since start.
    pub damaged_total: u64,
}

/// The on-disk cache of block ranges.
pub struct BlockCache {
    /// Held while the cache is open: the index in memory is the directory's only writer.
    _lock: std::fs::File,
    dir: PathBuf,
    capacity: u64,
    lru: Mutex<Lru>,
    /// Ranges handed to [`BlockCache::put_later`] and not written yet (served from here
    /// meanwhile), and how many writer threads run.
    pending: Mutex<HashMap<Key, Arc<Vec<u8>>>>,
    writers: Mutex<usize>,
    written: Condvar,
    served: AtomicU64,
    damaged: AtomicU64,
    tmp: AtomicU64,
}

impl BlockCache {
    /// Opens (creating) the cache in `dir`, at most `capacity` bytes, with the entries a
    /// previous process left (temporary files and names that are not entries are deleted).
    pub fn open(dir: &Path, capacity: u64) -> std::io::Result<BlockCache> {
        std::fs::create_dir_all(dir)?;
        let lock = crate::lock_file(
            &dir.join(LOCK),
            &format!("the block cache {}", dir.display()),
            ": give each instance its own data directory, or set [storage] block_cache = \"0\"",
        )?;
        let mut found: Vec<(std::time::SystemTime, Key, u64)> = Vec::new();
        let mut torn = 0u64;
        for d in std::fs::read_dir(dir)? {
            let d = d?;
            let path = d.path();
            if d.file_name() == LOCK {
                continue;
            }
            let block = d.file_name().into_string().ok().filter(|b| cacheable(b));
            let Some(block) = block.filter(|_| d.file_type().is_ok_and(|t| t.is_dir())) else {
                remove_any(&path);
                continue;
            };
            let mut any = false;
            for e in std::fs::read_dir(&path)? {
                let e = e?;
                let r = e.file_name().to_str().and_then(parse_entry_name);
                let meta = e.metadata()?;
                match r {
                    Some(r)
                        if meta.is_file()
                            && meta.len() == ENTRY_HEADER as u64 + (r.end - r.start) =>
                    {
                        let t = meta.modified().unwrap_or(std::time::UNIX_EPOCH);
                        found.push((t, (block.clone(), r.start, r.end), meta.len()));
                        any = true;
                    }
                    Some(_) if meta.is_file() => {
                        // Torn (a crash while it was written, or damage): never read.
                        torn += 1;
                        remove_any(&e.path());
                    }
                    _ => remove_any(&e.path()),
                }
            }
            if !any {
                let _ = std::fs::remove_dir(&path);
            }
        }
        found.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
        let mut lru = Lru::default();
        for (_, k, size) in found {
            lru.insert(k, size);
        }
        let cache = BlockCache {
            _lock: lock,
            dir: dir.to_path_buf(),
            capacity,
            lru: Mutex::new(Lru::default()),
            pending: Mutex::new(HashMap::new()),
            writers: Mutex::new(0),
            written: Condvar::new(),
            served: AtomicU64::new(0),
            damaged: AtomicU64::new(torn),
            tmp: AtomicU64::new(0),
        };
        let gone = lru.evict(capacity);
        *cache.lock() = lru;
        cache.unlink(gone);
        Ok(cache)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Lru> {
        // The index stays consistent between statements: a panic elsewhere leaves it usable.
        self.lru.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn path(&self, block: &str, r: &Range<u64>) -> PathBuf {
        self.dir.join(block).join(entry_name(r))
    }

    fn unlink(&self, keys: Vec<Key>) {
        for (b, a, z) in keys {
            let _ = std::fs::remove_file(self.path(&b, &(a..z)));
        }
    }

    /// The bytes `r` of block `block`, if the cache holds them whole and undamaged.
    pub fn get(&self, block: &str, r: &Range<u64>) -> Option<Vec<u8>> {
        if !cacheable(block) || r.is_empty() {
            return None;
        }
        let k = (block.to_string(), r.start, r.end);
        if !self.lock().touch(&k) {
            let p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            let b = p.get(&k)?;
            self.served.fetch_add(b.len() as u64, Ordering::Relaxed);
            return Some(b.as_ref().clone());
        }
        let got = match read_entry_file(&self.path(block, r), r.end - r.start) {
            Ok(got) => got,
            // Evicted meanwhile by another thread.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                tracing::warn!(block, range = ?r, "block cache entry unreadable, dropped: {e}");
                self.drop_entry(&k);
                return None;
            }
        };
        match got {
            Ok(b) => {
                self.served.fetch_add(b.len() as u64, Ordering::Relaxed);
                Some(b)
            }
            Err(e) => {
                self.bad(&k, &e.0);
                None
            }
        }
    }

    fn bad(&self, k: &Key, why: &str) {
        tracing::warn!(block = %k.0, range = ?(k.1..k.2), "block cache entry damaged ({why}): dropped, fetched again");
        self.damaged.fetch_add(1, Ordering::Relaxed);
        self.drop_entry(k);
    }

    fn drop_entry(&self, k: &Key) {
        if self.lock().remove(k) {
            let _ = std::fs::remove_file(self.path(&k.0, &(k.1..k.2)));
        }
    }

    /// Keeps the bytes `r` of block `block` (fetched from the bucket). A failure to write is
    /// logged, not returned: the cache is only a cache.
    pub fn put(&self, block: &str, r: &Range<u64>, bytes: &[u8]) {
        let size = (ENTRY_HEADER + bytes.len()) as u64;
        if !cacheable(block) || r.is_empty() || r.end - r.start != bytes.len() as u64 {
            return;
        }
        if size > self.capacity {
            return;
        }
        let k = (block.to_string(), r.start, r.end);
        if self.lock().entries.contains_key(&k) {
            return;
        }
        let dir = self.dir.join(block);
        let tmp = dir.join(format!(
            ".tmp-{}-{}",
            std::process::id(),
            self.tmp.fetch_add(1, Ordering::Relaxed)
        ));
        let res = (|| -> std::io::Result<()> {
            std::fs::create_dir_all(&dir)?;
            std::fs::write(&tmp, encode_entry(bytes))?;
            std::fs::rename(&tmp, dir.join(entry_name(r)))
        })();
        if let Err(e) = res {
            let _ = std::fs::remove_file(&tmp);
            tracing::warn!(block, range = ?r, "block cache: keeping a range failed: {e}");
            return;
        }
        let gone = {
            let mut g = self.lock();
            g.insert(k, size);
            g.evict(self.capacity)
        };
        self.unlink(gone);
    }

    /// [`BlockCache::put`] on a thread of its own, so that a query does not wait for the
    /// files to be written: until they are, the ranges are served from memory. The store
    /// waits for them when it closes ([`BlockCache::flush`]).
    pub fn put_later(self: &Arc<Self>, items: Vec<(String, Range<u64>, Arc<Vec<u8>>)>) {
        let items: Vec<(Key, Arc<Vec<u8>>)> = {
            let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            let mut out = Vec::with_capacity(items.len());
            for (b, r, bytes) in items {
                let k = (b, r.start, r.end);
                if !p.contains_key(&k) {
                    p.insert(k.clone(), bytes.clone());
                    out.push((k, bytes));
                }
            }
            out
        };
        if items.is_empty() {
            return;
        }
        *self.writers.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        let me = self.clone();
        let spawned = std::thread::Builder::new()
            .name("gocost-block-cache".into())
            .spawn({
                let items = items.clone();
                move || me.write_pending(items)
            });
        if let Err(e) = spawned {
            tracing::warn!("block cache: no writer thread ({e}); writing in place");
            self.write_pending(items);
        }
    }

    fn write_pending(&self, items: Vec<(Key, Arc<Vec<u8>>)>) {
        for (k, bytes) in items {
            self.put(&k.0, &(k.1..k.2), &bytes);
            self.pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&k);
        }
        let mut n = self.writers.lock().unwrap_or_else(|e| e.into_inner());
        *n -= 1;
        self.written.notify_all();
    }

    /// Waits until every [`BlockCache::put_later`] is written.
    pub fn flush(&self) {
        let mut n = self.writers.lock().unwrap_or_else(|e| e.into_inner());
        while *n > 0 {
            n = self.written.wait(n).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Forgets every entry of `block` (deleted from the bucket, or no longer read).
    pub fn drop_block(&self, block: &str) {
        if !cacheable(block) {
            return;
        }
        {
            let mut g = self.lock();
            if g.blocks.remove(block).is_none() {
                return;
            }
            let keys: Vec<Key> = g.entries.keys().filter(|k| k.0 == block).cloned().collect();
            for k in keys {
                g.remove(&k);
            }
        }
        let _ = std::fs::remove_dir_all(self.dir.join(block));
    }

    /// Forgets the entries of every block not in `keep` (blocks deleted while this process
    /// was not running).
    pub fn retain_blocks(&self, keep: &std::collections::BTreeSet<&str>) {
        let gone: Vec<String> = self
            .lock()
            .blocks
            .keys()
            .filter(|b| !keep.contains(b.as_str()))
            .cloned()
            .collect();
        for b in gone {
            self.drop_block(&b);
        }
    }

    pub fn stats(&self) -> CacheStats {
        let g = self.lock();
        CacheStats {
            bytes: g.bytes,
            entries: g.entries.len(),
            served_bytes_total: self.served.load(Ordering::Relaxed),
            damaged_total: self.damaged.load(Ordering::Relaxed),
        }
    }
}

fn remove_any(p: &Path) {
    if std::fs::remove_file(p).is_err() {
        let _ = std::fs::remove_dir_all(p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("gocost-cache-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn bytes(n: usize, seed: u8) -> Vec<u8> {
        (0..n).map(|i| (i as u8).wrapping_mul(31) ^ seed).collect()
    }

    #[test]
    fn entries_round_trip_and_damage_is_found() {
        let b = bytes(1000, 7);
        let e = encode_entry(&b);
        assert_eq!(parse_entry(&e).unwrap(), &b[..]);
        for cut in [0, 5, ENTRY_HEADER - 1, ENTRY_HEADER, e.len() - 1] {
            assert!(parse_entry(&e[..cut]).is_err(), "cut at {cut}");
        }
        for flip in [0, 9, 17, ENTRY_HEADER, e.len() - 1] {
            let mut d = e.clone();
            d[flip] ^= 0x20;
            assert!(parse_entry(&d).is_err(), "flip at {flip}");
        }
        assert_eq!(parse_entry_name("10-20"), Some(10..20));
        for bad in ["20-10", "5-5", "01-20", "+1-20", "1-20-3", "a-b", "1_2"] {
            assert_eq!(parse_entry_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn evicts_least_recently_used_by_size() {
        let dir = temp("evict");
        let entry = (ENTRY_HEADER + 1000) as u64;
        let c = BlockCache::open(&dir, 3 * entry).unwrap();
        c.put("a.gcb", &(0..1000), &bytes(1000, 1));
        c.put("a.gcb", &(1000..2000), &bytes(1000, 2));
        c.put("b.gcb", &(0..1000), &bytes(1000, 3));
        assert_eq!(c.stats().bytes, 3 * entry);
        // a's first range used: the second is now the least recently used.
        assert_eq!(c.get("a.gcb", &(0..1000)), Some(bytes(1000, 1)));
        c.put("b.gcb", &(1000..2000), &bytes(1000, 4));
        let s = c.stats();
        assert_eq!((s.bytes, s.entries), (3 * entry, 3));
        assert_eq!(c.get("a.gcb", &(1000..2000)), None);
        assert!(!dir.join("a.gcb/1000-2000").exists());
        assert_eq!(c.get("a.gcb", &(0..1000)), Some(bytes(1000, 1)));
        assert_eq!(c.get("b.gcb", &(0..1000)), Some(bytes(1000, 3)));
        assert_eq!(c.get("b.gcb", &(1000..2000)), Some(bytes(1000, 4)));
        // Larger than the whole cache: not kept, nothing evicted for it.
        c.put("c.gcb", &(0..5000), &bytes(5000, 5));
        assert_eq!(c.get("c.gcb", &(0..5000)), None);
        assert_eq!(c.stats().entries, 3);
        assert_eq!(c.stats().served_bytes_total, 4000);
        // A deleted block's entries go with it.
        c.drop_block("b.gcb");
        assert_eq!(c.stats().entries, 1);
        assert!(!dir.join("b.gcb").exists());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_damaged_entry_is_dropped_not_served() {
        let dir = temp("damaged");
        let c = BlockCache::open(&dir, 1 << 20).unwrap();
        c.put("a.gcb", &(0..1000), &bytes(1000, 1));
        c.put("a.gcb", &(1000..1500), &bytes(500, 2));
        c.put("a.gcb", &(2000..2100), &bytes(100, 3));
        // A flipped bit, a torn tail, a file of another range's length.
        let p = dir.join("a.gcb/0-1000");
        let mut f = std::fs::read(&p).unwrap();
        f[ENTRY_HEADER + 500] ^= 1;
        std::fs::write(&p, f).unwrap();
        let p = dir.join("a.gcb/1000-1500");
        let f = std::fs::read(&p).unwrap();
        std::fs::write(&p, &f[..f.len() - 10]).unwrap();
        std::fs::write(dir.join("a.gcb/2000-2100"), encode_entry(&bytes(99, 3))).unwrap();
        assert_eq!(c.get("a.gcb", &(0..1000)), None);
        assert_eq!(c.get("a.gcb", &(1000..1500)), None);
        assert_eq!(c.get("a.gcb", &(2000..2100)), None);
        let s = c.stats();
        assert_eq!(
            (s.entries, s.damaged_total, s.served_bytes_total),
            (0, 3, 0)
        );
        assert!(!dir.join("a.gcb/0-1000").exists());
        // Fetched again and kept again.
        c.put("a.gcb", &(0..1000), &bytes(1000, 1));
        assert_eq!(c.get("a.gcb", &(0..1000)), Some(bytes(1000, 1)));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn ranges_kept_later_are_served_at_once_and_written() {
        let dir = temp("later");
        let c = Arc::new(BlockCache::open(&dir, 1 << 20).unwrap());
        let items: Vec<(String, Range<u64>, Arc<Vec<u8>>)> = (0..50u64)
            .map(|i| {
                (
                    "a.gcb".to_string(),
                    i * 100..(i + 1) * 100,
                    Arc::new(bytes(100, i as u8)),
                )
            })
            .collect();
        c.put_later(items.clone());
        for (b, r, want) in &items {
            assert_eq!(c.get(b, r).as_ref(), Some(want.as_ref()));
        }
        c.flush();
        assert_eq!(c.stats().entries, 50);
        assert!(c.pending.lock().unwrap().is_empty());
        assert!(dir.join("a.gcb/4900-5000").exists());
        assert_eq!(c.stats().served_bytes_total, 5000);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_restart_keeps_the_entries_and_their_order() {
        let dir = temp("restart");
        let entry = (ENTRY_HEADER + 100) as u64;
        {
            let c = BlockCache::open(&dir, 10 * entry).unwrap();
            for i in 0..4u64 {
                c.put("a.gcb", &(i * 100..(i + 1) * 100), &bytes(100, i as u8));
                // Distinct modification times, the order a restart rebuilds.
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
        // Left-overs of a crash: a temporary file, a stray name, a stray file at the top.
        std::fs::write(dir.join("a.gcb/.tmp-1-1"), b"half").unwrap();
        std::fs::write(dir.join("a.gcb/junk"), b"x").unwrap();
        std::fs::write(dir.join("stray"), b"x").unwrap();
        // A torn entry (its size is not the range's): dropped and counted as damaged.
        std::fs::write(
            dir.join("a.gcb/500-600"),
            &encode_entry(&bytes(100, 9))[..50],
        )
        .unwrap();
        // Reopened smaller: the oldest two go.
        let c = BlockCache::open(&dir, 2 * entry).unwrap();
        let s = c.stats();
        assert_eq!((s.entries, s.bytes, s.damaged_total), (2, 2 * entry, 1));
        assert!(!dir.join("a.gcb/500-600").exists());
        assert_eq!(c.get("a.gcb", &(0..100)), None);
        assert_eq!(c.get("a.gcb", &(100..200)), None);
        assert_eq!(c.get("a.gcb", &(200..300)), Some(bytes(100, 2)));
        assert_eq!(c.get("a.gcb", &(300..400)), Some(bytes(100, 3)));
        assert!(!dir.join("a.gcb/.tmp-1-1").exists());
        assert!(!dir.join("a.gcb/junk").exists());
        assert!(!dir.join("stray").exists());
        // Blocks the bucket no longer has are forgotten.
        c.retain_blocks(&std::collections::BTreeSet::from(["b.gcb"]));
        assert_eq!(c.stats().entries, 0);
        assert!(!dir.join("a.gcb").exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
