//! The block catalog: every block's index, parsed once when the store opens or a block is
//! written, kept in time order; reading sections and symbol tables of catalogued blocks; the
//! series, kinds and labels the head and the blocks hold.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::cache::BlockCache;
use crate::head::{Entry, Inner};
use crate::symtab::SymTab;
use crate::{BlobStore, BlockMeta, Error, SeriesKey, Store, block, block_err};

/// A block in the catalog: its index, parsed once.
pub(crate) struct Block {
    pub(crate) name: String,
    pub(crate) size: u64,
    pub(crate) meta: BlockMeta,
    /// Parsed once per series for all blocks ([`intern_key`]).
    pub(crate) keys: Vec<Arc<SeriesKey>>,
    pub(crate) metric_keys: Vec<Arc<SeriesKey>>,
    /// Retention is deleting it: reads pass it by.
    pub(crate) expiring: AtomicBool,
    /// When this process read its index (Unix ns): the inputs it replaces are deleted a
    /// delay after that at the earliest.
    pub(crate) seen_ns: i64,
}

impl Block {
    /// Whether a read of `[from, to]` needs the block.
    pub(crate) fn overlaps(&self, from: i64, to: i64) -> bool {
        self.meta.min_time_ns <= to
            && self.meta.max_time_ns >= from
            && !self.expiring.load(Ordering::Relaxed)
    }
}

/// Decoded symbol tables of blocks, by block name and group: blocks never change, so a
/// table decoded for one query serves the next (docs/adr/0026). Under a byte budget
/// (each table counted at its size in memory, [`SymTab::heap_bytes`]), oldest first out.
#[derive(Default)]
pub(crate) struct SymTabs {
    map: HashMap<(String, u32), (Arc<SymTab>, usize)>,
    order: std::collections::VecDeque<(String, u32)>,
    bytes: usize,
}

impl SymTabs {
    fn get(&self, k: &(String, u32)) -> Option<Arc<SymTab>> {
        self.map.get(k).map(|v| v.0.clone())
    }

    fn put(&mut self, k: (String, u32), t: Arc<SymTab>, size: usize, budget: usize) {
        if size > budget || self.map.contains_key(&k) {
            return;
        }
        self.map.insert(k.clone(), (t, size));
        self.order.push_back(k);
        self.bytes += size;
        while self.bytes > budget {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            if let Some((_, n)) = self.map.remove(&old) {
                self.bytes -= n;
            }
        }
    }
}

/// Catalog order: oldest data first.
pub(crate) fn block_order(a: &Block, b: &Block) -> std::cmp::Ordering {
    (a.meta.min_time_ns, &a.meta.id).cmp(&(b.meta.min_time_ns, &b.meta.id))
}

impl Inner {
    pub(crate) fn add_block(&mut self, b: Block) {
        for k in &b.keys {
            if !self.kinds.contains(&k.kind) {
                self.kinds.insert(k.kind.clone());
            }
        }
        let at = self.blocks.partition_point(|x| block_order(x, &b).is_le());
        self.blocks.insert(at, Arc::new(b));
    }
}

/// The kinds of the series in `head` and `blocks`.
pub(crate) fn kinds_of(
    head: &BTreeMap<SeriesKey, Vec<Entry>>,
    blocks: &[Arc<Block>],
) -> BTreeSet<String> {
    head.keys()
        .chain(blocks.iter().flat_map(|b| b.keys.iter().map(|k| &**k)))
        .map(|k| k.kind.clone())
        .collect()
}

pub(crate) const BLOCK_SUFFIX: &str = ".gcb";

/// A new block's id: `L<level>-<time>-<pid><n>`, and in a cluster
/// `L<level>-<time>-<instance>-<pid><n>` (docs/format/bucket.md): ids of different
/// instances never collide, whatever their clocks and process ids.
pub(crate) fn new_block_id(level: u32, instance: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let inst = if instance.is_empty() {
        String::new()
    } else {
        format!("{instance}-")
    };
    format!(
        "L{level}-{now:016x}-{inst}{:04x}{:04x}",
        std::process::id() & 0xffff,
        N.fetch_add(1, Ordering::Relaxed) & 0xffff
    )
}

impl Store {
    /// Where blocks are kept, for logs.
    pub fn blocks_location(&self) -> &str {
        self.blobs.describe()
    }

    /// A section of a block, inflated and checked, through the block cache.
    pub(crate) fn section(&self, b: &Block, s: &block::Section) -> Result<Vec<u8>, Error> {
        self.section_from(b, s, true)
    }

    /// A section, through the block cache only if `cached` (compaction reads every section
    /// of blocks about to be deleted: they would only push out what queries read).
    pub(crate) fn section_from(
        &self,
        b: &Block,
        s: &block::Section,
        cached: bool,
    ) -> Result<Vec<u8>, Error> {
        let r = section_range(s);
        let z = if cached {
            self.fetch(&[(&b.name, r)])?.pop().unwrap_or_default()
        } else {
            self.blobs.get_range(&b.name, r)?
        };
        block::inflate_checked(&z, s).map_err(|e| block_err(&b.name, e))
    }

    /// Ranges of blocks, in the order asked: through the block cache when there is one
    /// (misses fetched at once and kept), else from block storage.
    pub(crate) fn fetch(&self, want: &[(&str, Range<u64>)]) -> Result<Vec<Vec<u8>>, Error> {
        fetch_via(self.blobs.as_ref(), self.cache.as_ref(), want)
    }

    /// Forgets the cached ranges of blocks no longer in the catalog (deleted, compacted
    /// away, expired, dropped from the bucket index).
    pub(crate) fn sweep_cache(&self) {
        if let Some(c) = &self.cache {
            let names: Vec<String> = self.lock().blocks.iter().map(|b| b.name.clone()).collect();
            c.retain_blocks(&names.iter().map(String::as_str).collect());
        }
    }

    /// A block's symbol table for compaction (read past the block cache).
    pub(crate) fn symtab(
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
        let key = (b.name.clone(), group);
        let kept = self
            .symtabs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key);
        let t = match kept {
            Some(t) => t,
            None => {
                let t =
                    Arc::new(SymTab::decode(&self.section(b, &gm.symbols)?).map_err(|e| {
                        block_err(&b.name, format!("symbols of {:?}: {e}", gm.name))
                    })?);
                let size = t.heap_bytes();
                let budget = self.opts.head_cache_bytes / 2;
                self.symtabs.lock().unwrap_or_else(|p| p.into_inner()).put(
                    key,
                    t.clone(),
                    size,
                    budget,
                );
                t
            }
        };
        cache.insert((bi, group), t.clone());
        Ok(t)
    }

    /// All series keys, in the head and in blocks (in a cluster, the peers' heads too).
    pub fn series(&self) -> Vec<SeriesKey> {
        let remote = match self.ask_peers(&crate::cluster::HeadRequest {
            selector: "{}".into(),
            from_ns: i64::MIN,
            to_ns: i64::MAX,
            labels: false,
            merge: false,
            totals: false,
            latest: false,
            series_only: true,
        }) {
            Ok(r) => r.series,
            Err(e) => {
                tracing::warn!(target: "gocost::query", "asking the peers for their series: {e}");
                Vec::new()
            }
        };
        let mut out: BTreeSet<SeriesKey> = {
            let g = self.lock();
            g.head
                .keys()
                .chain(g.blocks.iter().flat_map(|b| b.keys.iter().map(|k| &**k)))
                .cloned()
                .collect()
        };
        out.extend(remote);
        // Execution traces (kind `trace`).
        out.extend(self.traces.keys());
        out.into_iter().collect()
    }

    /// The profile kinds of the stored series (scraped kinds and pushed ones such as `wall`),
    /// from memory: no block is read.
    pub fn kinds(&self) -> BTreeSet<String> {
        self.lock().kinds.clone()
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

    /// The block catalog's indexes, oldest first.
    pub fn blocks(&self) -> Vec<BlockMeta> {
        self.lock().blocks.iter().map(|b| b.meta.clone()).collect()
    }
}

pub(crate) fn catalog_entry(name: String, size: u64, meta: BlockMeta) -> Result<Block, Error> {
    let keys = meta
        .series
        .iter()
        .map(|s| intern_key(&s.key))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| block_err(&name, format!("series key: {e}")))?;
    let metric_keys = meta
        .metrics
        .iter()
        .map(|s| intern_key(&s.key))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| block_err(&name, format!("metric key: {e}")))?;
    Ok(Block {
        name,
        size,
        meta,
        keys,
        metric_keys,
        expiring: AtomicBool::new(false),
        seen_ns: crate::cluster::now_ns(),
    })
}

/// The parsed series keys of every catalogued block, by their text: a series is in every
/// block of its lifetime (24 hourly blocks a day, then one per day for the retention), and
/// a parsed key (a label map) costs about a kilobyte, so a fleet of thousands of series
/// would otherwise hold tens of megabytes per block. Entries whose key no block holds any
/// more are dropped when the map has doubled since the last sweep.
struct KeyInterner {
    keys: HashMap<Box<str>, std::sync::Weak<SeriesKey>>,
    sweep_at: usize,
}

pub(crate) fn intern_key(text: &str) -> Result<Arc<SeriesKey>, crate::SelectorError> {
    static KEYS: std::sync::LazyLock<std::sync::Mutex<KeyInterner>> =
        std::sync::LazyLock::new(|| {
            std::sync::Mutex::new(KeyInterner {
                keys: HashMap::new(),
                sweep_at: 1024,
            })
        });
    let mut g = KEYS.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(k) = g.keys.get(text).and_then(std::sync::Weak::upgrade) {
        return Ok(k);
    }
    let k = Arc::new(SeriesKey::parse(text)?);
    if g.keys.len() >= g.sweep_at {
        g.keys.retain(|_, w| w.strong_count() > 0);
        g.sweep_at = (2 * g.keys.len()).max(1024);
    }
    g.keys.insert(text.into(), Arc::downgrade(&k));
    Ok(k)
}

/// Reads a block's footer and index.
pub(crate) fn read_index(blobs: &dyn BlobStore, name: &str, size: u64) -> Result<Block, Error> {
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

/// Where a section's compressed bytes lie.
pub(crate) fn section_range(s: &block::Section) -> Range<u64> {
    s.offset..s.offset.saturating_add(s.len)
}

/// [`Store::fetch`] with the parts given.
pub(crate) fn fetch_via(
    blobs: &dyn BlobStore,
    cache: Option<&Arc<BlockCache>>,
    want: &[(&str, Range<u64>)],
) -> Result<Vec<Vec<u8>>, Error> {
    let Some(cache) = cache else {
        return blobs.get_many(want);
    };
    let mut out: Vec<Option<Vec<u8>>> = want.iter().map(|(n, r)| cache.get(n, r)).collect();
    let miss: Vec<usize> = (0..want.len()).filter(|&i| out[i].is_none()).collect();
    if !miss.is_empty() {
        let asks: Vec<(&str, Range<u64>)> = miss.iter().map(|&i| want[i].clone()).collect();
        let mut keep = Vec::with_capacity(miss.len());
        for (&i, b) in miss.iter().zip(blobs.get_many(&asks)?) {
            keep.push((
                want[i].0.to_string(),
                want[i].1.clone(),
                Arc::new(b.clone()),
            ));
            out[i] = Some(b);
        }
        // Written on a thread of their own: the query goes on.
        cache.put_later(keep);
    }
    Ok(out.into_iter().map(Option::unwrap_or_default).collect())
}

/// The footers and indexes of blocks `(name, size)`, in that order, read at once (through
/// the cache when there is one). A block that cannot be read is an error of its own; the
/// others are read all the same.
pub(crate) fn read_indexes(
    blobs: &dyn BlobStore,
    cache: Option<&Arc<BlockCache>>,
    want: &[(&str, u64)],
) -> Vec<Result<Block, Error>> {
    let footer = block::FOOTER_LEN as u64;
    let mut out: Vec<Option<Result<Block, Error>>> = Vec::with_capacity(want.len());
    let mut tails: Vec<(usize, (&str, Range<u64>))> = Vec::new();
    for (i, &(name, size)) in want.iter().enumerate() {
        if size < block::MAGIC.len() as u64 + footer {
            out.push(Some(Err(block_err(name, "too short to be a block"))));
        } else {
            out.push(None);
            tails.push((i, (name, size - footer..size)));
        }
    }
    // All at once; if any fails (a block deleted since it was listed), one by one.
    let asks: Vec<(&str, Range<u64>)> = tails.iter().map(|t| t.1.clone()).collect();
    let got: Vec<Result<Vec<u8>, Error>> = match fetch_via(blobs, cache, &asks) {
        Ok(v) => v.into_iter().map(Ok).collect(),
        Err(_) => asks
            .iter()
            .map(|a| {
                Ok(fetch_via(blobs, cache, std::slice::from_ref(a))?
                    .pop()
                    .unwrap_or_default())
            })
            .collect(),
    };
    // (block, its index's range, the index's CRC)
    type IndexAt<'a> = (usize, (&'a str, Range<u64>), u32);
    let mut idx: Vec<IndexAt<'_>> = Vec::new();
    for ((i, (name, _)), tail) in tails.into_iter().zip(got) {
        let parsed =
            tail.and_then(|t| block::parse_footer(&t, want[i].1).map_err(|e| block_err(name, e)));
        match parsed {
            Ok((r, crc)) => idx.push((i, (name, r), crc)),
            Err(e) => out[i] = Some(Err(e)),
        }
    }
    let asks: Vec<(&str, Range<u64>)> = idx.iter().map(|t| t.1.clone()).collect();
    let got: Vec<Result<Vec<u8>, Error>> = match fetch_via(blobs, cache, &asks) {
        Ok(v) => v.into_iter().map(Ok).collect(),
        Err(_) => asks
            .iter()
            .map(|a| {
                Ok(fetch_via(blobs, cache, std::slice::from_ref(a))?
                    .pop()
                    .unwrap_or_default())
            })
            .collect(),
    };
    for ((i, (name, _), crc), bytes) in idx.into_iter().zip(got) {
        out[i] = Some(bytes.and_then(|b| {
            let meta = block::parse_index(&b, crc).map_err(|e| block_err(name, e))?;
            catalog_entry(name.to_string(), want[i].1, meta)
        }));
    }
    out.into_iter()
        .map(|b| b.unwrap_or_else(|| Err(Error::Io(std::io::Error::other("not read")))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_series_key_is_parsed_once_for_every_block_that_holds_it() {
        let text = r#"cpu{instance="10.1.2.3:6060",job="interned"}"#;
        let a = intern_key(text).unwrap();
        let b = intern_key(text).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(a.labels["job"], "interned");
        // Once no block holds it, it is parsed afresh (and dropped at the next sweep).
        drop((a, b));
        assert_eq!(intern_key(text).unwrap().kind, "cpu");
        assert!(intern_key("cpu{").is_err());
    }
}
