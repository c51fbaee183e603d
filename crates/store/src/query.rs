//! Queries: selecting series, visiting their profiles in blocks (rollups for whole buckets
//! inside the range, raw profiles at the edges) and in the head (read back from the WAL),
//! merging them; runtime-metric points.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::sync::Arc;

use gocost_pprof::{Combiner, Profile};

use crate::catalog::{Block, section_range};
use crate::cluster::HeadRequest;
use crate::head::Entry;
use crate::symtab::{RollupAcc, SymTab};
use crate::{Error, Selector, SeriesKey, Store, block, block_err, codec, symtab, wal};

/// What a visit of the stored profiles is called with: the series, the profile's time (a
/// rollup's bucket start), how many profiles it stands for (1, or a rollup's count), and
/// the profile.
pub type Visitor<'a> = dyn FnMut(&SeriesKey, i64, u64, Profile) -> Result<(), Error> + 'a;

/// How a visit reads the stored profiles.
#[derive(Default)]
pub(crate) struct Visit<'a> {
    /// Which rollups (bucket start, end) inside the range may stand in for their
    /// profiles; `None`: none.
    pub(crate) use_rollup: Option<&'a dyn Fn(i64, i64) -> bool>,
    /// Decode sample labels.
    pub(crate) labels: bool,
    /// Which single profiles (series, time) to read, asked before anything is decoded;
    /// `None`: all.
    pub(crate) keep: Option<&'a Keep<'a>>,
    /// Sum the profiles of each series that share symbol tables (a block's group, a WAL
    /// segment's) in stack space before one profile is rebuilt from the sum, instead of
    /// rebuilding each: the visitor sees fewer profiles, at the earliest time, with the
    /// count they stand for. For callers that only merge what they are given.
    pub(crate) merge: bool,
    /// Only each profile's totals per sample type ([`SymTab::totals`]) for profiles read
    /// from blocks and the head's encoded ones; others are whole.
    pub(crate) totals: bool,
    /// Only the last profile of each series is wanted (what peers are asked for).
    pub(crate) latest: bool,
}

/// How many compressed bytes of sections a visit of blocks in a bucket fetches at once
/// (at least one series' worth).
const BATCH_BYTES: u64 = 32 << 20;

/// Stored profiles of one series sharing a symbol table: (time, count, bytes).
type Parts<'b> = Vec<(i64, u64, &'b [u8])>;

/// Symbol snapshots of the head: WAL segment → group → tables (only groups with profiles
/// encoded on append).
type HeadTabs = HashMap<u64, HashMap<String, Arc<SymTab>>>;

/// Whether to read the single profile of a series at a time.
pub(crate) type Keep<'a> = dyn Fn(&SeriesKey, i64) -> bool + 'a;

/// A runtime-metric series with its (time, value) points.
pub type MetricSeries = (SeriesKey, Vec<(i64, f64)>);

impl Store {
    /// Runtime-metric series matching `sel` with their points in `[from_ns, to_ns]`.
    pub fn select_points(
        &self,
        sel: &Selector,
        from_ns: i64,
        to_ns: i64,
    ) -> Result<Vec<MetricSeries>, Error> {
        let (mut out, blocks) = {
            let g = self.lock();
            let mut out: BTreeMap<SeriesKey, Vec<(i64, f64)>> = BTreeMap::new();
            for (k, v) in g.metrics.iter().filter(|(k, _)| sel.matches(k)) {
                let lo = v.partition_point(|p| p.t < from_ns);
                let hi = v.partition_point(|p| p.t <= to_ns);
                if lo < hi {
                    out.insert(k.clone(), v[lo..hi].iter().map(|p| (p.t, p.v)).collect());
                }
            }
            let blocks: Vec<Arc<Block>> = g
                .blocks
                .iter()
                .filter(|b| {
                    b.overlaps(from_ns, to_ns) && b.metric_keys.iter().any(|k| sel.matches(k))
                })
                .cloned()
                .collect();
            (out, blocks)
        };
        for b in blocks {
            let Some(sec) = b.meta.points else { continue };
            let all = block::parse_points(&self.section(&b, &sec)?, b.metric_keys.len())
                .map_err(|e| block_err(&b.name, e))?;
            for (k, pts) in b.metric_keys.iter().zip(all) {
                if !sel.matches(k) {
                    continue;
                }
                let v = out.entry(k.clone()).or_default();
                v.extend(pts.into_iter().filter(|p| p.0 >= from_ns && p.0 <= to_ns));
            }
        }
        out.retain(|_, v| !v.is_empty());
        for v in out.values_mut() {
            v.sort_by_key(|p| p.0);
        }
        Ok(out.into_iter().collect())
    }

    /// Calls `f` with the profiles of matching series within `[from_ns, to_ns]`, for totals
    /// over time, with how many profiles each stands for; sample labels are decoded only
    /// with `labels`.
    /// With `step_ns`, a stored rollup (the merge of every profile of an hour or a day)
    /// stands in for its profiles when it lies wholly inside one `step_ns` bucket counted
    /// from `from_ns`; `f` then sees it at its bucket start, with its profile count. Without,
    /// every profile is visited at its own time (count 1).
    pub fn for_each_profile(
        &self,
        sel: &Selector,
        from_ns: i64,
        to_ns: i64,
        step_ns: Option<i64>,
        labels: bool,
        f: &mut Visitor<'_>,
    ) -> Result<(), Error> {
        let how = Visit {
            labels,
            ..Visit::default()
        };
        self.for_each(sel, from_ns, to_ns, step_ns, how, f)
    }

    /// [`Store::for_each_profile`] for timelines of totals: `f` is given profiles that may
    /// hold only their totals per sample type (one stackless sample), without labels, read
    /// without rebuilding stacks.
    pub fn for_each_total(
        &self,
        sel: &Selector,
        from_ns: i64,
        to_ns: i64,
        step_ns: Option<i64>,
        f: &mut Visitor<'_>,
    ) -> Result<(), Error> {
        let how = Visit {
            totals: true,
            ..Visit::default()
        };
        self.for_each(sel, from_ns, to_ns, step_ns, how, f)
    }

    /// Visits with `how`, rollups standing in for whole `step_ns` buckets.
    fn for_each(
        &self,
        sel: &Selector,
        from_ns: i64,
        to_ns: i64,
        step_ns: Option<i64>,
        how: Visit<'_>,
        f: &mut Visitor<'_>,
    ) -> Result<(), Error> {
        let same_bucket = |step: i64| {
            move |a: i64, z: i64| (a - from_ns).div_euclid(step) == (z - from_ns).div_euclid(step)
        };
        let bucket = step_ns.filter(|&s| s > 0).map(same_bucket);
        let how = Visit {
            use_rollup: bucket.as_ref().map(|b| b as &dyn Fn(i64, i64) -> bool),
            ..how
        };
        self.visit(sel, from_ns, to_ns, &how, f)
    }

    /// The merged profile of matching series within `[from_ns, to_ns]` (`None` if nothing
    /// matched), merged with pprof's rules: [`Agg::Sum`]. Whole hours and days inside the
    /// range come from rollups, merged when the block was written.
    pub fn query(
        &self,
        sel: &Selector,
        from_ns: i64,
        to_ns: i64,
    ) -> Result<Option<Profile>, Error> {
        self.query_sum(sel, from_ns, to_ns, crate::Read::Exact)
    }

    /// [`Store::query`], the stored profiles read as `read` says.
    pub(crate) fn query_sum(
        &self,
        sel: &Selector,
        from_ns: i64,
        to_ns: i64,
        read: crate::Read,
    ) -> Result<Option<Profile>, Error> {
        let (labels, merge) = read.labels_and_sum();
        let mut c = Combiner::new();
        let how = Visit {
            use_rollup: Some(&|_, _| true),
            labels,
            keep: None,
            merge,
            totals: false,
            latest: false,
        };
        self.visit(sel, from_ns, to_ns, &how, &mut |_, _, _, p| {
            c.push(p).map_err(Error::Merge)
        })?;
        Ok(c.finish())
    }

    pub(crate) fn visit(
        &self,
        sel: &Selector,
        from: i64,
        to: i64,
        how: &Visit<'_>,
        f: &mut Visitor<'_>,
    ) -> Result<(), Error> {
        let keep = |k: &SeriesKey, t: i64| how.keep.is_none_or(|keep| keep(k, t));
        // The other instances' heads first: their answers say which of their blocks to read.
        let remote = self.ask_peers(&head_request(sel, from, to, how))?;
        let (head, tabs, files, blocks) = self.take(sel, from, to, how, false, |catalog| {
            remote.blocks(catalog, from, to)
        })?;
        self.visit_blocks(sel, from, to, how, &blocks, f)?;
        self.visit_head(&head, &tabs, &files, how, f)?;
        for (k, t, n, p) in remote.items {
            if sel.matches(&k) && (from..=to).contains(&t) && keep(&k, t) {
                f(&k, t, n, p)?;
            }
        }
        Ok(())
    }

    /// A peer's part of a query ([`Store::head_answer`]): visits the head's profiles that
    /// no block holds, and returns this instance's blocks overlapping the range, both taken
    /// under one lock.
    pub(crate) fn visit_local(
        &self,
        sel: &Selector,
        req: &HeadRequest,
        f: &mut Visitor<'_>,
    ) -> Result<Vec<Arc<Block>>, Error> {
        let how = Visit {
            use_rollup: None,
            labels: req.labels,
            keep: None,
            merge: req.merge,
            totals: req.totals,
            latest: req.latest,
        };
        let (from, to) = (req.from_ns, req.to_ns);
        let (head, tabs, files, blocks) =
            self.take(sel, from, to, &how, req.latest, |catalog| {
                catalog
                    .iter()
                    .filter(|b| self.answers_for(b) && b.overlaps(from, to))
                    .cloned()
                    .collect()
            })?;
        self.visit_head(&head, &tabs, &files, &how, f)?;
        Ok(blocks)
    }

    /// What a visit reads, taken under the lock (read without it): the head's entries in
    /// range that no block holds (a flush puts its block in the catalog before it drops the
    /// segment's entries from the head) — with `latest`, only each series' last —, the
    /// symbol snapshots and WAL files to read them, and the blocks `pick` chooses from the
    /// catalog.
    #[allow(clippy::type_complexity)]
    fn take(
        &self,
        sel: &Selector,
        from: i64,
        to: i64,
        how: &Visit<'_>,
        latest: bool,
        pick: impl FnOnce(&[Arc<Block>]) -> Vec<Arc<Block>>,
    ) -> Result<
        (
            Vec<(SeriesKey, Vec<Entry>)>,
            HeadTabs,
            HashMap<u64, File>,
            Vec<Arc<Block>>,
        ),
        Error,
    > {
        let keep = |k: &SeriesKey, t: i64| how.keep.is_none_or(|keep| keep(k, t));
        // Head profiles encoded on append are read through snapshots of their segment's
        // symbols; the rest from the WAL (open segment handles stay readable if a flush
        // deletes the files meanwhile).
        let mut g = self.lock();
        let cut: std::collections::HashSet<u64> = g
            .blocks
            .iter()
            .filter(|b| b.meta.level == 0 && self.is_own(b))
            .flat_map(|b| b.meta.sources.iter().copied())
            .collect();
        let head: Vec<(SeriesKey, Vec<Entry>)> = g
            .head
            .iter()
            .filter(|(k, _)| sel.matches(k))
            .filter_map(|(k, v)| {
                let lo = v.partition_point(|e| e.time_ns < from);
                let hi = v.partition_point(|e| e.time_ns <= to);
                let mut picked: Vec<Entry> = v[lo..hi]
                    .iter()
                    .filter(|e| keep(k, e.time_ns) && !cut.contains(&e.pos.seq))
                    .cloned()
                    .collect();
                if latest && picked.len() > 1 {
                    picked.drain(..picked.len() - 1);
                }
                (!picked.is_empty()).then(|| (k.clone(), picked))
            })
            .collect();
        let mut tabs: HeadTabs = HashMap::new();
        let mut files = HashMap::new();
        for (k, e) in head.iter().flat_map(|(k, v)| v.iter().map(move |e| (k, e))) {
            if e.enc.is_some() || e.encoded {
                let group = block::group_of(k);
                let seg = tabs.entry(e.pos.seq).or_default();
                if !seg.contains_key(group)
                    && let Some(b) = g
                        .head_symbols
                        .get_mut(&e.pos.seq)
                        .and_then(|m| m.get_mut(group))
                {
                    seg.insert(group.to_string(), b.snapshot());
                }
            }
            if e.enc.is_none()
                && let std::collections::hash_map::Entry::Vacant(s) = files.entry(e.pos.seq)
            {
                s.insert(g.wal.open_segment(e.pos.seq)?);
            }
        }
        let blocks = pick(&g.blocks);
        drop(g);
        Ok((head, tabs, files, blocks))
    }

    /// Visits the matching series of `blocks`, in block and series order. Over a bucket
    /// the sections are fetched in batches (of up to [`BATCH_BYTES`] compressed): first
    /// the symbol tables and rollups of a batch's series at once, then the raw sections the
    /// rollups do not cover, at once; from `<data>/blocks/` one series at a time.
    fn visit_blocks(
        &self,
        sel: &Selector,
        from: i64,
        to: i64,
        how: &Visit<'_>,
        blocks: &[Arc<Block>],
        f: &mut Visitor<'_>,
    ) -> Result<(), Error> {
        let keep = |k: &SeriesKey, t: i64| how.keep.is_none_or(|keep| keep(k, t));
        let work: Vec<(usize, usize)> = blocks
            .iter()
            .enumerate()
            .flat_map(|(bi, b)| {
                b.keys.iter().enumerate().filter_map(move |(si, key)| {
                    let sm = &b.meta.series[si];
                    (sel.matches(key) && sm.min_time_ns <= to && sm.max_time_ns >= from)
                        .then_some((bi, si))
                })
            })
            .collect();
        let budget = if self.blobs.local_dir().is_some() {
            0
        } else {
            BATCH_BYTES
        };
        let rollups_of = |sm: &block::SeriesMeta| sm.rollups.filter(|_| how.use_rollup.is_some());
        let mut tabs: HashMap<(usize, u32), Arc<SymTab>> = HashMap::new();
        let mut at = 0;
        while at < work.len() {
            let mut end = at;
            let mut bytes = 0u64;
            while end < work.len() {
                let (bi, si) = work[end];
                let sm = &blocks[bi].meta.series[si];
                let need = sm.raw.len + rollups_of(sm).map_or(0, |r| r.len);
                if end > at && bytes.saturating_add(need) > budget {
                    break;
                }
                bytes = bytes.saturating_add(need);
                end += 1;
            }
            let batch = &work[at..end];
            at = end;
            // Symbol tables of the blocks before this batch are done with.
            let first = batch[0].0;
            tabs.retain(|&(bi, _), _| bi >= first);
            // 1. The symbol tables not decoded yet and the rollups, at once.
            let mut asks: Vec<(&str, std::ops::Range<u64>)> = Vec::new();
            let mut new_tabs: Vec<(usize, u32, &block::Section)> = Vec::new();
            for &(bi, si) in batch {
                let b = &blocks[bi];
                let group = b.meta.series[si].group;
                if tabs.contains_key(&(bi, group))
                    || new_tabs.iter().any(|&(x, g, _)| (x, g) == (bi, group))
                {
                    continue;
                }
                let gm = b
                    .meta
                    .groups
                    .get(group as usize)
                    .ok_or_else(|| block_err(&b.name, format!("group {group} out of range")))?;
                new_tabs.push((bi, group, &gm.symbols));
                asks.push((&b.name, section_range(&gm.symbols)));
            }
            for &(bi, si) in batch {
                if let Some(r) = rollups_of(&blocks[bi].meta.series[si]) {
                    asks.push((&blocks[bi].name, section_range(&r)));
                }
            }
            let mut got = self.fetch(&asks)?.into_iter();
            for (bi, group, sec) in new_tabs {
                let b = &blocks[bi];
                let z = got.next().unwrap_or_default();
                let bytes = block::inflate_checked(&z, sec).map_err(|e| block_err(&b.name, e))?;
                let t = SymTab::decode(&bytes)
                    .map_err(|e| block_err(&b.name, format!("symbols of group {group}: {e}")))?;
                tabs.insert((bi, group), Arc::new(t));
            }
            let mut rollups: Vec<Vec<u8>> = Vec::with_capacity(batch.len());
            for &(bi, si) in batch {
                let b = &blocks[bi];
                rollups.push(match rollups_of(&b.meta.series[si]) {
                    Some(r) => {
                        let z = got.next().unwrap_or_default();
                        block::inflate_checked(&z, &r).map_err(|e| block_err(&b.name, e))?
                    }
                    None => Vec::new(),
                });
            }
            // Whole buckets inside the range, largest first, never overlapping; whether
            // the raw profiles are needed beside them.
            let mut picks: Vec<(Vec<(i64, i64)>, Parts<'_>)> = Vec::with_capacity(batch.len());
            let mut raw_asks: Vec<(&str, std::ops::Range<u64>)> = Vec::new();
            let mut raw_of: Vec<Option<usize>> = Vec::with_capacity(batch.len());
            for (&(bi, si), rollups) in batch.iter().zip(&rollups) {
                let b = &blocks[bi];
                let sm = &b.meta.series[si];
                let mut picked: Vec<(i64, i64)> = Vec::new();
                let mut parts: Parts<'_> = Vec::new();
                if let Some(ok) = how.use_rollup
                    && !rollups.is_empty()
                {
                    let mut rolls =
                        block::parse_rollups(rollups).map_err(|e| block_err(&b.name, e))?;
                    rolls.sort_by_key(|r| (std::cmp::Reverse(r.step), r.start));
                    for r in rolls {
                        let end = r.start.saturating_add(r.step - 1);
                        if r.start < from
                            || end > to
                            || !ok(r.start, end)
                            || picked.iter().any(|&(a, z)| r.start <= z && a <= end)
                        {
                            continue;
                        }
                        picked.push((r.start, end));
                        parts.push((r.start, r.count.max(1), r.bytes));
                    }
                }
                let (lo, hi) = (from.max(sm.min_time_ns), to.min(sm.max_time_ns));
                if covered_range(&picked, lo, hi) {
                    raw_of.push(None);
                } else {
                    raw_of.push(Some(raw_asks.len()));
                    raw_asks.push((&b.name, section_range(&sm.raw)));
                }
                picks.push((picked, parts));
            }
            // 2. The raw sections, at once; inflated one series at a time.
            let mut raws: Vec<Vec<u8>> = self.fetch(&raw_asks)?;
            for ((&(bi, si), (picked, rolled)), raw_at) in batch.iter().zip(&picks).zip(raw_of) {
                let b = &blocks[bi];
                let key = &b.keys[si];
                let sm = &b.meta.series[si];
                let bad = |e: block::BlockError| block_err(&b.name, e);
                let bad_codec = |e: codec::CodecError| block_err(&b.name, e);
                let covered = |t: i64| picked.iter().any(|&(a, z)| a <= t && t <= z);
                let raw = match raw_at {
                    Some(i) => {
                        let z = std::mem::take(&mut raws[i]);
                        block::inflate_checked(&z, &sm.raw).map_err(bad)?
                    }
                    None => Vec::new(),
                };
                let mut parts: Parts<'_> = rolled.clone();
                if !raw.is_empty() {
                    for bytes in block::parse_raw(&raw).map_err(bad)? {
                        let t = symtab::stored_time(bytes).map_err(bad_codec)?;
                        if t < from || t > to || covered(t) || !keep(key, t) {
                            continue;
                        }
                        parts.push((t, 1, bytes));
                    }
                }
                let tab = tabs
                    .get(&(bi, sm.group))
                    .cloned()
                    .ok_or_else(|| block_err(&b.name, format!("group {} not read", sm.group)))?;
                emit(key, &tab, parts, how, &bad_codec, f)?;
            }
        }
        Ok(())
    }

    fn visit_head(
        &self,
        head: &[(SeriesKey, Vec<Entry>)],
        tabs: &HeadTabs,
        files: &HashMap<u64, File>,
        how: &Visit<'_>,
        f: &mut Visitor<'_>,
    ) -> Result<(), Error> {
        let decode = gocost_pprof::DecodeOptions {
            max_size: self.opts.max_profile_size,
            labels: how.labels,
        };
        let bad_head =
            |e: codec::CodecError| Error::Io(std::io::Error::other(format!("head: {e}")));
        for (key, entries) in head {
            let seg_tabs = |seq: u64| tabs.get(&seq).and_then(|m| m.get(block::group_of(key)));
            // Encoded profiles the head cache does not hold, read from the WAL.
            let read: Vec<Option<Vec<u8>>> = entries
                .iter()
                .map(|e| match e.enc {
                    None if e.encoded => read_entry(files, e).map(Some),
                    _ => Ok(None),
                })
                .collect::<Result<_, _>>()?;
            // Encoded profiles per segment with its symbol table, in time order.
            let mut encoded: BTreeMap<u64, (&SymTab, Parts<'_>)> = BTreeMap::new();
            for (e, bytes) in entries.iter().zip(&read) {
                match (e.enc.as_deref().or(bytes.as_deref()), seg_tabs(e.pos.seq)) {
                    (Some(enc), Some(tab)) => encoded
                        .entry(e.pos.seq)
                        .or_insert_with(|| (tab, Vec::new()))
                        .1
                        .push((e.time_ns, 1, enc)),
                    (_, None) if e.encoded => {
                        return Err(Error::Io(std::io::Error::other(format!(
                            "head: the symbols of WAL segment {} for {key} are missing",
                            e.pos.seq
                        ))));
                    }
                    _ => {
                        let bytes = read_entry(files, e)?;
                        let p = gocost_pprof::decode_with(&bytes, &decode)
                            .map_err(Error::BadProfile)?;
                        f(key, e.time_ns, 1, p)?;
                    }
                }
            }
            for (tab, parts) in encoded.into_values() {
                emit(key, tab, parts, how, &bad_head, f)?;
            }
        }
        Ok(())
    }
}

/// Calls `f` with the profiles of `parts` (of one series, sharing `tab`): their sum in stack
/// space as one profile when the visit merges, else each.
fn emit(
    key: &SeriesKey,
    tab: &SymTab,
    parts: Parts<'_>,
    how: &Visit<'_>,
    bad: &dyn Fn(codec::CodecError) -> Error,
    f: &mut Visitor<'_>,
) -> Result<(), Error> {
    let rebuild = |b: &[u8]| {
        if how.totals {
            tab.totals(b)
        } else {
            tab.profile(b, how.labels)
        }
    };
    if how.merge && parts.len() > 1 {
        let mut acc = if how.labels {
            RollupAcc::default()
        } else {
            RollupAcc::without_labels()
        };
        let (mut t0, mut n) = (i64::MAX, 0u64);
        for &(t, c, bytes) in &parts {
            acc.add(bytes).map_err(bad)?;
            t0 = t0.min(t);
            n = n.saturating_add(c);
        }
        // `None`: sample or period types changed within the parts: each on its own.
        if let Some(sum) = acc.finish(t0) {
            return f(key, t0, n, rebuild(&sum).map_err(bad)?);
        }
    }
    for (t, n, bytes) in parts {
        f(key, t, n, rebuild(bytes).map_err(bad)?)?;
    }
    Ok(())
}

/// What a visit asks of the peers.
pub(crate) fn head_request(sel: &Selector, from: i64, to: i64, how: &Visit<'_>) -> HeadRequest {
    HeadRequest {
        selector: sel.to_string(),
        from_ns: from,
        to_ns: to,
        labels: how.labels,
        merge: how.merge,
        totals: how.totals,
        latest: how.latest,
        series_only: false,
    }
}

/// Whether `[lo, hi]` lies inside the union of the (disjoint) intervals.
pub(crate) fn covered_range(picked: &[(i64, i64)], lo: i64, hi: i64) -> bool {
    if lo > hi {
        return true;
    }
    let mut v = picked.to_vec();
    v.sort_unstable();
    let mut at = lo;
    for (a, z) in v {
        if a > at {
            return false;
        }
        if z >= at {
            if z >= hi {
                return true;
            }
            at = z + 1;
        }
    }
    false
}

pub(crate) fn read_entry(files: &HashMap<u64, File>, e: &Entry) -> Result<Vec<u8>, Error> {
    let f = files.get(&e.pos.seq).ok_or_else(|| {
        Error::Io(std::io::Error::other(format!(
            "WAL segment {} not open",
            e.pos.seq
        )))
    })?;
    Ok(wal::read_payload(f, e.pos)?)
}
