//! Many gocost instances over one bucket (docs/adr/0020, docs/format/bucket.md).
//!
//! Each instance has an id; the blocks it writes carry it (in their name and index) and it
//! alone compacts, deletes and replays against them. It keeps its own part of the bucket
//! index, `index/<instance>.json`: the list of its blocks with their series, tenants and
//! time ranges, rewritten after every change. Readers list `index/` (one object per
//! instance, never the whole bucket) on a period and read the indexes of blocks they do not
//! know yet. What is still in another instance's head is asked of it at query time through
//! [`Peers`]; a peer that does not answer makes the answer partial ([`collect_partial`]).

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use gocost_pprof::Profile;
use serde::{Deserialize, Serialize};

use crate::catalog::{Block, read_indexes};
use crate::{Error, Listed, Selector, SeriesKey, Store};

/// The bucket index's directory under the common prefix.
pub const INDEX_DIR: &str = "index";
/// The version of the bucket index format.
pub const INDEX_VERSION: u32 = 1;

/// A store that is one of several instances over one bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterOptions {
    /// This instance's id: 1 to 64 of `A-Z a-z 0-9 _ - .` ([`valid_instance`]).
    pub instance: String,
    /// Query-only (`role = "query"`): appends are refused and no block is written.
    pub query_only: bool,
    /// How long blocks a compaction replaced stay in the bucket for readers whose index
    /// is older, before they are deleted.
    pub delete_delay: Duration,
    /// Who compacts and applies retention to the bucket's blocks (docs/adr/0022).
    pub compactor: Compactor,
    /// How long the compactor lease lasts unless renewed (renewed every third of it).
    pub lease_ttl: Duration,
}

impl ClusterOptions {
    pub fn new(instance: impl Into<String>) -> Self {
        ClusterOptions {
            instance: instance.into(),
            query_only: false,
            delete_delay: Duration::from_secs(120),
            compactor: Compactor::Auto,
            lease_ttl: Duration::from_secs(60),
        }
    }
}

/// `[cluster] compactor`: who compacts the bucket's blocks and applies retention to them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compactor {
    /// One compactor elected through a lease object in the bucket if it honours
    /// conditional writes (probed at start); otherwise each writer compacts and deletes
    /// its own blocks (docs/adr/0020), logged as such.
    #[default]
    Auto,
    /// This instance is the bucket's one compactor, without a lease (for buckets that
    /// ignore conditional writes, such as Garage): exactly one instance may say so, every
    /// other one `None`.
    This,
    /// This instance never compacts nor deletes blocks (another one is `This`).
    None,
}

/// How a store compacts, decided when it opens ([`Store::compaction_mode`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompactionMode {
    /// Outside a cluster: every block is this store's.
    Single,
    /// Each writer its own blocks (the bucket does not honour conditional writes).
    Own,
    /// The holder of the bucket's lease compacts every instance's blocks.
    Lease,
    /// Set by configuration: this instance compacts every instance's blocks (`true`),
    /// or none (`false`; also a query-only instance).
    Static(bool),
}

/// Whether `s` can be an instance id: it goes into object names.
pub fn valid_instance(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// One instance's part of the bucket index (`index/<instance>.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BucketIndex {
    pub version: u32,
    pub instance: String,
    /// When it was written (Unix ns), for people reading it.
    pub updated_ns: i64,
    pub blocks: Vec<IndexedBlock>,
}

/// A block in the bucket index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexedBlock {
    /// The object name under the common prefix (`<id>.gcb`).
    pub name: String,
    pub size: u64,
    pub level: u32,
    pub min_time_ns: i64,
    pub max_time_ns: i64,
    /// Profile series it holds.
    pub series: u64,
    /// The tenants of its series (`__tenant__`; "" = the anonymous tenant).
    pub tenants: Vec<String>,
    /// Block ids it replaces (a compaction's inputs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replaces: Vec<String>,
}

impl IndexedBlock {
    fn of(b: &Block) -> IndexedBlock {
        let tenants: BTreeSet<String> = b
            .keys
            .iter()
            .chain(&b.metric_keys)
            .map(|k| k.labels.get("__tenant__").cloned().unwrap_or_default())
            .collect();
        IndexedBlock {
            name: b.name.clone(),
            size: b.size,
            level: b.meta.level,
            min_time_ns: b.meta.min_time_ns,
            max_time_ns: b.meta.max_time_ns,
            series: b.keys.len() as u64,
            tenants: tenants.into_iter().collect(),
            replaces: b.meta.replaces.clone(),
        }
    }
}

/// What a query asks of a peer: the profiles of matching series in its head (not in its
/// blocks) within `[from_ns, to_ns]`, read as the asking store would read its own head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeadRequest {
    pub selector: String,
    pub from_ns: i64,
    pub to_ns: i64,
    /// Decode sample labels.
    pub labels: bool,
    /// Sum each series' profiles per symbol table (as a summed read does).
    pub merge: bool,
    /// Only each profile's totals (timelines).
    pub totals: bool,
    /// Only the last profile of each series (`agg=latest`).
    pub latest: bool,
    /// No profiles: only the keys of the matching series in the head (series listings).
    #[serde(default)]
    pub series_only: bool,
}

/// A peer's answer: its instance id, the blocks it has written that overlap the range (so
/// that the asker reads exactly those of its blocks: none missed, none twice), and the
/// profiles in its head that no block holds yet: (series, time, how many profiles it
/// stands for, profile).
#[derive(Debug, Clone, Default)]
pub struct HeadAnswer {
    pub instance: String,
    pub blocks: Vec<Listed>,
    pub items: Vec<(SeriesKey, i64, u64, Profile)>,
    /// With [`HeadRequest::series_only`]: the head's series (profiles and metric points)
    /// matching the selector.
    pub series: Vec<SeriesKey>,
}

/// How a store reaches the other instances' heads (the server implements it over HTTP).
pub trait Peers: Send + Sync {
    /// Asks every peer (concurrently); one result per peer, an error naming the peer and
    /// why it did not answer. Called from a blocking thread.
    fn heads(&self, req: &HeadRequest) -> Vec<Result<HeadAnswer, String>>;
}

thread_local! {
    /// Peers that did not answer during [`collect_partial`] on this thread.
    static PARTIAL: RefCell<Option<BTreeSet<String>>> = const { RefCell::new(None) };
}

/// Runs `f`, returning what it returned and the peers that did not answer the queries it
/// made (empty: the answer is complete). Queries run synchronously on the calling thread.
pub fn collect_partial<T>(f: impl FnOnce() -> T) -> (T, Vec<String>) {
    let outer = PARTIAL.with(|p| p.borrow_mut().replace(BTreeSet::new()));
    struct Restore(Option<Option<BTreeSet<String>>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            if let Some(outer) = self.0.take() {
                PARTIAL.with(|p| *p.borrow_mut() = outer);
            }
        }
    }
    let mut restore = Restore(Some(outer));
    let v = f();
    let missing = PARTIAL.with(|p| p.borrow_mut().take()).unwrap_or_default();
    if let Some(outer) = restore.0.take() {
        // The peers missing here are missing for the outer scope too.
        PARTIAL.with(|p| {
            *p.borrow_mut() = outer.map(|mut o| {
                o.extend(missing.iter().cloned());
                o
            })
        });
    }
    (v, missing.into_iter().collect())
}

fn note_partial(why: String) {
    PARTIAL.with(|p| {
        if let Some(set) = p.borrow_mut().as_mut() {
            set.insert(why);
        }
    });
}

/// What the peers said for one query: their head profiles, and for each peer that answered,
/// the exact set of its blocks to read.
#[derive(Default)]
pub(crate) struct Remote {
    pub(crate) items: Vec<(SeriesKey, i64, u64, Profile)>,
    /// The peers' head series (a series listing).
    pub(crate) series: Vec<SeriesKey>,
    /// Instance → its blocks for this query (replacing the catalog's view of it).
    pub(crate) blocks: HashMap<String, Vec<Arc<Block>>>,
}

impl Remote {
    /// The blocks a query of `[from, to]` reads: the catalog's, with the answering peers'
    /// blocks as they said.
    pub(crate) fn blocks(&self, catalog: &[Arc<Block>], from: i64, to: i64) -> Vec<Arc<Block>> {
        let mut out: Vec<Arc<Block>> = catalog
            .iter()
            .filter(|b| b.overlaps(from, to) && !self.blocks.contains_key(&b.meta.instance))
            .cloned()
            .collect();
        for bs in self.blocks.values() {
            out.extend(bs.iter().filter(|b| b.overlaps(from, to)).cloned());
        }
        // A compactor's block may come from several answers and the catalog; and one
        // answer may list a block another's compaction replaced: each profile once.
        let mut seen = BTreeSet::new();
        out.retain(|b| seen.insert(b.name.clone()));
        hide_replaced(&mut out);
        out
    }
}

pub(crate) fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

impl Store {
    /// This instance's id ("" outside a cluster).
    pub fn instance(&self) -> &str {
        self.opts
            .cluster
            .as_ref()
            .map_or("", |c| c.instance.as_str())
    }

    /// Whether this store only answers queries (`role = "query"`).
    pub fn query_only(&self) -> bool {
        self.opts.cluster.as_ref().is_some_and(|c| c.query_only)
    }

    /// Whether this instance wrote `b` (outside a cluster: every block).
    pub(crate) fn is_own(&self, b: &Block) -> bool {
        b.meta.instance == self.instance()
    }

    /// Whether this instance lists `b` when a peer asks for its blocks: its own, and the
    /// bucket compactor's (which may stand for its own).
    pub(crate) fn answers_for(&self, b: &Block) -> bool {
        self.is_own(b) || b.meta.compactor_term.is_some()
    }

    /// How this store compacts (decided when it opened).
    pub fn compaction_mode(&self) -> CompactionMode {
        self.mode
    }

    /// Whether the bucket honoured conditional writes when this store opened and probed
    /// it (`None`: not probed — outside a cluster, query-only, or a static compactor).
    pub fn conditional_put_probe(&self) -> Option<bool> {
        self.probe
    }

    /// Sets how queries reach the other instances' heads.
    pub fn set_peers(&self, peers: Arc<dyn Peers>) {
        let _ = self.peers.set(peers);
    }

    /// Writes this instance's part of the bucket index from the catalog (a writer in a
    /// cluster; otherwise nothing). A failure is kept for the next call of
    /// [`Store::refresh_cluster`], which writes it again.
    pub fn publish_index(&self) -> Result<(), Error> {
        let Some(c) = &self.opts.cluster else {
            return Ok(());
        };
        if c.query_only {
            return Ok(());
        }
        let _p = self.publish.lock().unwrap_or_else(|p| p.into_inner());
        let idx = {
            let mut g = self.lock();
            g.index_dirty = false;
            BucketIndex {
                version: INDEX_VERSION,
                instance: c.instance.clone(),
                updated_ns: now_ns(),
                blocks: {
                    let now = now_ns();
                    g.superseded.retain(|(_, until)| *until > now);
                    g.blocks
                        .iter()
                        .filter(|b| self.is_own(b))
                        .map(|b| IndexedBlock::of(b))
                        .chain(g.superseded.iter().map(|(b, _)| b.clone()))
                        .collect()
                },
            }
        };
        let bytes = serde_json::to_vec(&idx)
            .map_err(|e| Error::Io(std::io::Error::other(format!("bucket index: {e}"))))?;
        let name = format!("{INDEX_DIR}/{}.json", c.instance);
        if let Err(e) = self.blobs.put_bytes(&name, &bytes) {
            self.lock().index_dirty = true;
            return Err(e);
        }
        Ok(())
    }

    /// Marks this instance's part of the bucket index for rewriting and tries it now; a
    /// failure is logged (the block it is about is safe; readers see it after the retry).
    pub(crate) fn index_changed(&self) {
        if self.opts.cluster.is_none() {
            return;
        }
        self.lock().index_dirty = true;
        if let Err(e) = self.publish_index() {
            tracing::warn!("writing the bucket index failed (retried on the next refresh): {e}");
        }
    }

    /// Brings the catalog up to date with the other instances' blocks from the bucket index
    /// (new ones' indexes read, deleted and replaced ones dropped), writes this instance's
    /// own part again if an earlier write failed, and deletes the replaced blocks whose
    /// delay is over. Returns how many blocks were added and dropped. Outside a cluster it
    /// does nothing.
    pub fn refresh_cluster(&self) -> Result<(usize, usize), Error> {
        let Some(c) = &self.opts.cluster else {
            return Ok((0, 0));
        };
        if self.lock().index_dirty {
            self.publish_index()?;
        }
        self.delete_due(now_ns());
        let mut wanted: BTreeMap<String, (String, u64)> = BTreeMap::new();
        for l in self.blobs.list_dir(INDEX_DIR)? {
            let Some(inst) = l.name.strip_suffix(".json") else {
                continue;
            };
            if inst == c.instance {
                continue;
            }
            let Some(bytes) = self.blobs.get(&format!("{INDEX_DIR}/{}", l.name))? else {
                continue; // deleted since the listing
            };
            let idx: BucketIndex = match serde_json::from_slice(&bytes) {
                Ok(i) => i,
                Err(e) => {
                    tracing::warn!(index = %l.name, "bucket index skipped: {e}");
                    continue;
                }
            };
            if idx.version != INDEX_VERSION || idx.instance != inst {
                tracing::warn!(
                    index = %l.name,
                    "bucket index skipped: version {} of instance {:?}",
                    idx.version,
                    idx.instance
                );
                continue;
            }
            for b in idx.blocks {
                wanted.insert(b.name, (idx.instance.clone(), b.size));
            }
        }
        let (known, drop): (BTreeSet<String>, Vec<Arc<Block>>) = {
            let g = self.lock();
            let foreign = g.blocks.iter().filter(|b| !self.is_own(b));
            let drop = foreign
                .clone()
                .filter(|b| !wanted.contains_key(&b.name))
                .cloned()
                .collect();
            (g.blocks.iter().map(|b| b.name.clone()).collect(), drop)
        };
        let mut added = Vec::new();
        let new: Vec<(&String, &(String, u64))> =
            wanted.iter().filter(|(n, _)| !known.contains(*n)).collect();
        let asks: Vec<(&str, u64)> = new
            .iter()
            .map(|(n, (_, size))| (n.as_str(), *size))
            .collect();
        let read = read_indexes(self.blobs.as_ref(), self.cache.as_ref(), &asks);
        for ((name, (inst, _)), b) in new.into_iter().zip(read) {
            match b {
                Ok(b) if b.meta.instance == *inst => added.push(b),
                Ok(b) => tracing::warn!(
                    block = %name,
                    "block skipped: the index of {inst:?} lists it, but {:?} wrote it",
                    b.meta.instance
                ),
                // Deleted since the index was written, or not readable yet: next time.
                Err(e) => tracing::debug!(block = %name, "block not read yet: {e}"),
            }
        }
        let n_added = added.len();
        let mut g = self.lock();
        g.blocks.retain(|b| !drop.iter().any(|d| Arc::ptr_eq(b, d)));
        for b in added {
            g.add_block(b);
        }
        self.hide(&mut g);
        g.kinds = crate::catalog::kinds_of(&g.head, &g.blocks);
        // What the bucket index lists now (this instance's part as it will write it), for
        // the compactor's sweep.
        let mut listed: BTreeSet<String> = wanted.into_keys().collect();
        listed.extend(
            g.blocks
                .iter()
                .filter(|b| self.is_own(b))
                .map(|b| b.name.clone()),
        );
        listed.extend(g.superseded.iter().map(|(b, _)| b.name.clone()));
        g.listed = Some(listed);
        let republish = g.index_dirty;
        std::mem::drop(g);
        self.sweep_cache();
        if republish {
            self.publish_index()?;
        }
        Ok((n_added, drop.len()))
    }

    /// Drops the blocks another block in the catalog replaces; this instance's own ones
    /// that the bucket's compactor replaced stay listed in its part of the bucket index for
    /// the delay (a reader whose index of the compactor is older still reads them there:
    /// no moment where a reader finds neither).
    pub(crate) fn hide(&self, g: &mut crate::head::Inner) {
        let removed = hide_replaced(&mut g.blocks);
        let Some(c) = &self.opts.cluster else {
            return;
        };
        let until = now_ns().saturating_add(c.delete_delay.as_nanos() as i64);
        for b in removed.iter().filter(|b| self.is_own(b)) {
            if !g.superseded.iter().any(|(s, _)| s.name == b.name) {
                g.superseded.push((IndexedBlock::of(b), until));
                g.index_dirty = true;
            }
        }
    }

    /// Deletes the blocks a compaction replaced whose delay is over (failures are tried
    /// again on the next call). Those of a compaction as the bucket's compactor only while
    /// its block is still there: if the next compactor deleted it as never made visible
    /// (its index write landed too late), its inputs are all there is.
    fn delete_due(&self, now: i64) {
        let due: Vec<(String, i64, Option<String>)> = {
            let mut g = self.lock();
            let (due, keep) = std::mem::take(&mut g.delete_later)
                .into_iter()
                .partition(|(_, at, _)| *at <= now);
            g.delete_later = keep;
            due
        };
        let mut gone: BTreeSet<String> = BTreeSet::new();
        for (name, _, by) in due {
            if let Some(by) = &by {
                let exists = if gone.contains(by) {
                    Some(false)
                } else {
                    match self.blobs.get_range(by, 0..1) {
                        Ok(_) => Some(true),
                        Err(Error::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                            Some(false)
                        }
                        Err(_) => None, // unknown: tried again later
                    }
                };
                match exists {
                    Some(true) => {}
                    Some(false) => {
                        gone.insert(by.clone());
                        tracing::warn!(block = %name, "not deleted: the compaction that replaced it ({by}) is gone");
                        continue;
                    }
                    None => {
                        self.lock().delete_later.push((name, now, Some(by.clone())));
                        continue;
                    }
                }
            }
            if let Err(e) = self.blobs.delete(&name) {
                tracing::warn!(block = %name, "deleting a replaced block failed (tried again): {e}");
                self.lock().delete_later.push((name, now, by));
            }
        }
    }

    /// The blocks a compaction replaced: deleted now outside a cluster, after the delay in
    /// one (readers with an older index may still read them). `by`: the block replacing
    /// them, written as the bucket's compactor.
    pub(crate) fn delete_replaced(
        &self,
        names: Vec<String>,
        by: Option<&str>,
    ) -> Result<(), Error> {
        match &self.opts.cluster {
            None => {
                for n in names {
                    self.blobs.delete(&n)?;
                }
                Ok(())
            }
            Some(c) => {
                let at = now_ns().saturating_add(c.delete_delay.as_nanos() as i64);
                self.lock()
                    .delete_later
                    .extend(names.into_iter().map(|n| (n, at, by.map(str::to_string))));
                Ok(())
            }
        }
    }

    /// This instance's answer to a peer's [`HeadRequest`]: its head's profiles that no
    /// block holds, and its blocks overlapping the range, taken at one instant.
    pub fn head_answer(&self, req: &HeadRequest) -> Result<HeadAnswer, Error> {
        let sel = Selector::parse(&req.selector).map_err(|e| {
            Error::Io(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("selector: {e}"),
            ))
        })?;
        if req.series_only {
            let g = self.lock();
            let series: BTreeSet<SeriesKey> = g
                .head
                .keys()
                .chain(g.metrics.keys())
                .filter(|k| sel.matches(k))
                .cloned()
                .collect();
            let blocks = g
                .blocks
                .iter()
                .filter(|b| self.answers_for(b) && b.overlaps(req.from_ns, req.to_ns))
                .map(|b| Listed {
                    name: b.name.clone(),
                    size: b.size,
                })
                .collect();
            return Ok(HeadAnswer {
                instance: self.instance().to_string(),
                blocks,
                items: Vec::new(),
                series: series.into_iter().collect(),
            });
        }
        let mut items = Vec::new();
        let blocks = self.visit_local(&sel, req, &mut |k, t, n, p| {
            items.push((k.clone(), t, n, p));
            Ok(())
        })?;
        Ok(HeadAnswer {
            instance: self.instance().to_string(),
            blocks: blocks
                .into_iter()
                .map(|b| Listed {
                    name: b.name.clone(),
                    size: b.size,
                })
                .collect(),
            items,
            series: Vec::new(),
        })
    }

    /// Asks the peers for their heads (nothing without peers). Peers that do not answer are
    /// noted for [`collect_partial`]; the blocks the answering ones list are read (their
    /// indexes, once) if the catalog lacks them.
    pub(crate) fn ask_peers(&self, req: &HeadRequest) -> Result<Remote, Error> {
        let Some(peers) = self.peers.get() else {
            return Ok(Remote::default());
        };
        let mut remote = Remote::default();
        for ans in peers.heads(req) {
            let ans = match ans {
                Ok(a) => a,
                Err(why) => {
                    tracing::warn!(target: "gocost::query", "peer did not answer: {why}");
                    note_partial(why);
                    continue;
                }
            };
            if ans.instance == self.instance() || ans.instance.is_empty() {
                continue; // this instance itself, listed among the peers
            }
            let mut blocks = Vec::new();
            for l in &ans.blocks {
                let known = self
                    .lock()
                    .blocks
                    .iter()
                    .find(|b| b.name == l.name)
                    .cloned();
                let b = match known {
                    Some(b) => b,
                    None => {
                        let b = read_indexes(
                            self.blobs.as_ref(),
                            self.cache.as_ref(),
                            &[(l.name.as_str(), l.size)],
                        )
                        .pop()
                        .unwrap_or_else(|| Err(Error::Io(std::io::Error::other("not read"))))?;
                        let mut g = self.lock();
                        match g.blocks.iter().find(|x| x.name == l.name) {
                            Some(x) => x.clone(),
                            None => {
                                g.add_block(b);
                                self.hide(&mut g);
                                match g.blocks.iter().find(|x| x.name == l.name) {
                                    Some(x) => x.clone(),
                                    None => continue,
                                }
                            }
                        }
                    }
                };
                blocks.push(b);
            }
            remote.blocks.insert(ans.instance.clone(), blocks);
            remote.items.extend(ans.items);
            remote.series.extend(ans.series);
        }
        Ok(remote)
    }
}

/// Drops blocks another block in the catalog replaces (a compaction whose inputs are not
/// deleted yet): reading both would count their profiles twice.
pub(crate) fn hide_replaced(blocks: &mut Vec<Arc<Block>>) -> Vec<Arc<Block>> {
    let replaced: BTreeSet<&str> = blocks
        .iter()
        .flat_map(|b| b.meta.replaces.iter().map(String::as_str))
        .collect();
    if replaced.is_empty() {
        return Vec::new();
    }
    let replaced: BTreeSet<String> = replaced.into_iter().map(str::to_string).collect();
    let (gone, kept) = std::mem::take(blocks)
        .into_iter()
        .partition(|b| replaced.contains(&b.meta.id));
    *blocks = kept;
    gone
}

/// How a store opening with `cluster` over `blobs` compacts, and what the probe of
/// conditional writes found (when it ran).
pub(crate) fn decide_mode(
    cluster: Option<&ClusterOptions>,
    blobs: &dyn crate::BlobStore,
) -> Result<(CompactionMode, Option<bool>), Error> {
    let Some(c) = cluster else {
        return Ok((CompactionMode::Single, None));
    };
    if c.query_only {
        return Ok((CompactionMode::Static(false), None));
    }
    match c.compactor {
        Compactor::This => {
            tracing::info!(
                "compactor: this instance compacts and applies retention to every instance's blocks ([cluster] compactor = \"this\"; no lease)"
            );
            Ok((CompactionMode::Static(true), None))
        }
        Compactor::None => {
            tracing::info!(
                "compactor: another instance compacts this one's blocks ([cluster] compactor = \"none\")"
            );
            Ok((CompactionMode::Static(false), None))
        }
        Compactor::Auto => {
            let probe = format!("{}/probe-{}", crate::lease::LEASE_DIR, c.instance);
            if crate::blobs::probe_conditional_put(blobs, &probe)? {
                tracing::info!(
                    "compactor: elected through a lease in {} (conditional writes honoured); whichever instance holds it compacts every instance's blocks",
                    blobs.describe()
                );
                Ok((CompactionMode::Lease, Some(true)))
            } else {
                tracing::warn!(
                    "compactor: {} does not honour conditional writes (a create-only put of an existing object succeeded), so no lease is used: each writer compacts and deletes its own blocks. For one compactor per bucket set [cluster] compactor = \"this\" on exactly one instance and \"none\" on the others",
                    blobs.describe()
                );
                Ok((CompactionMode::Own, Some(false)))
            }
        }
    }
}

impl Store {
    /// The lease term in which this instance may compact every instance's blocks now, if
    /// it may ([`CompactionMode::Lease`] while holding the lease; 0 for a static
    /// compactor).
    pub(crate) fn compactor_term(&self) -> Option<u64> {
        match self.mode {
            CompactionMode::Static(true) => Some(0),
            CompactionMode::Lease => self
                .lease
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .valid_term(std::time::Instant::now()),
            _ => None,
        }
    }

    /// Whether this instance is the bucket's compactor now (a static one, or the holder
    /// of a valid lease).
    pub fn is_bucket_compactor(&self) -> bool {
        self.compactor_term().is_some()
    }

    /// Takes, renews or gives up the compactor lease ([`CompactionMode::Lease`]; otherwise
    /// nothing). Call it at least every sixth of the lease time.
    pub fn tick_lease(&self) -> Result<crate::LeaseEvent, Error> {
        if self.mode != CompactionMode::Lease {
            return Ok(crate::LeaseEvent::Unchanged);
        }
        let ev = self
            .lease
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .tick(self.blobs.as_ref())?;
        match &ev {
            crate::LeaseEvent::Taken { generation, from } => tracing::info!(
                "compactor lease taken (generation {generation}{}): this instance now compacts and applies retention to the bucket",
                if from.is_empty() {
                    String::new()
                } else {
                    format!(", from {from}")
                }
            ),
            crate::LeaseEvent::Lost { why } => {
                tracing::warn!("compactor lease lost ({why}): compaction and retention stop here")
            }
            crate::LeaseEvent::Unchanged => {}
        }
        Ok(ev)
    }

    /// Gives the compactor lease up (a clean shutdown), so another instance takes it at
    /// once. Returns whether this instance held it.
    pub fn release_lease(&self) -> Result<bool, Error> {
        if self.mode != CompactionMode::Lease {
            return Ok(false);
        }
        let _m = self.maintenance.lock().unwrap_or_else(|p| p.into_inner());
        self.lease
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .release(self.blobs.as_ref())
    }

    /// Whether the lease leaves enough time to make a compaction's block visible (a sixth
    /// of the lease time; always for a static compactor).
    pub(crate) fn may_commit(&self) -> bool {
        match self.mode {
            CompactionMode::Static(true) => true,
            CompactionMode::Lease => {
                let ttl = self
                    .opts
                    .cluster
                    .as_ref()
                    .map_or(Duration::ZERO, |c| c.lease_ttl);
                self.lease
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remaining(std::time::Instant::now())
                    > ttl / 6
            }
            _ => true,
        }
    }
}

/// The block names this instance's part of the bucket index lists; `None` if it cannot be
/// read (then nothing is judged from it).
pub(crate) fn own_index(blobs: &dyn crate::BlobStore, instance: &str) -> Option<BTreeSet<String>> {
    let name = format!("{INDEX_DIR}/{instance}.json");
    match blobs.get(&name) {
        Ok(Some(bytes)) => match serde_json::from_slice::<BucketIndex>(&bytes) {
            Ok(idx) => Some(idx.blocks.into_iter().map(|b| b.name).collect()),
            Err(e) => {
                tracing::warn!(index = %name, "bucket index unreadable: {e}");
                None
            }
        },
        Ok(None) => Some(BTreeSet::new()),
        Err(e) => {
            tracing::warn!(index = %name, "bucket index not read: {e}");
            None
        }
    }
}
