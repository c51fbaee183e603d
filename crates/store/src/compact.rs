//! Compaction: a finished UTC day's blocks become one level-1 block with hourly and daily
//! rollups, and a finished week's day blocks one level-2 block with a weekly rollup too
//! (docs/adr/0034); the inputs are deleted once it is in place (a crash between is finished
//! on the next open, which deletes blocks another block `replaces`).
//!
//! In a cluster with one compactor per bucket (docs/adr/0022) the compactor merges the day's
//! blocks of every instance; its block lists every block it stands for (`replaces`, through
//! earlier compactions too) and is visible once its part of the bucket index lists it. The
//! inputs are deleted after the delay, by it or by the next holder of the lease (`sweep`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use crate::block::WEEK_NS;
use crate::block::{BlockError, BlockInfo};
use crate::catalog::{Block, new_block_id};
use crate::flush::TmpFile;
use crate::symtab::SymTab;
use crate::{CompactionMode, DAY_NS, Error, HOUR_NS, SeriesKey, Store, block, block_err, symtab};

/// The most stored-profile bytes of one series a week's compaction holds in memory; a week
/// with a larger series stays in day blocks (the inputs and the output of one series are
/// held at once: about three times this at the peak).
const MAX_SERIES_RAW: u64 = 64 << 20;

impl Store {
    /// Merges the blocks of each finished UTC day (ended at least two block durations
    /// before `now_ns`) into one block with hourly and daily rollups, then the day blocks of
    /// each finished week into one. Returns how many days and weeks were compacted.
    pub fn compact(&self, now_ns: i64) -> Result<usize, Error> {
        let _m = self.maintenance.lock().unwrap_or_else(|p| p.into_inner());
        if self.query_only() {
            return Ok(0);
        }
        // Every instance's blocks for the bucket's compactor; otherwise this instance's
        // only (another's are its own to compact), or none when another instance is the
        // compactor.
        let term = match self.mode {
            CompactionMode::Single | CompactionMode::Own => None,
            CompactionMode::Lease | CompactionMode::Static(_) => match self.compactor_term() {
                Some(t) => Some(t),
                None => return Ok(0),
            },
        };
        if term.is_some() {
            // A fresh view of every instance's blocks (the sweep reads the bucket index);
            // the inputs of earlier compactions whose delay is over, and blocks a killed
            // compactor left, go.
            self.sweep(now_ns, None)?;
        }
        let mine = |g: &crate::head::Inner| -> Vec<Arc<Block>> {
            g.blocks
                .iter()
                .filter(|b| term.is_some() || self.is_own(b))
                .cloned()
                .collect()
        };
        let blocks = mine(&self.lock());
        // Days: the blocks cut from the WAL (and a day block already there, when late data
        // came in after it) become one level-1 block. A week block is left alone: late
        // data for its week becomes a day block of its own, and then joins the week.
        let mut days: BTreeMap<i64, Vec<Arc<Block>>> = BTreeMap::new();
        for b in blocks.iter().filter(|b| b.meta.level <= 1) {
            days.entry(b.meta.min_time_ns.div_euclid(DAY_NS))
                .or_default()
                .push(b.clone());
        }
        let mut n = 0;
        for (day, group) in days {
            let finished = (day + 1) * DAY_NS + 2 * self.opts.block_duration_ns <= now_ns;
            if !finished || group.iter().all(|b| b.meta.level > 0) {
                continue;
            }
            self.compact_group(&group, term, 1)?;
            n += 1;
        }
        // Weeks (docs/adr/0034): a finished week's day blocks become one level-2 block.
        if self.week_blocks() {
            let blocks = mine(&self.lock());
            let mut weeks: BTreeMap<i64, Vec<Arc<Block>>> = BTreeMap::new();
            for b in &blocks {
                weeks
                    .entry(b.meta.min_time_ns.div_euclid(WEEK_NS))
                    .or_default()
                    .push(b.clone());
            }
            for (week, group) in weeks {
                let finished = (week + 1) * WEEK_NS + 2 * self.opts.block_duration_ns <= now_ns;
                // Not before every day of it is compacted; nothing to do for one block.
                if !finished
                    || group.len() < 2
                    || group.iter().any(|b| b.meta.level == 0)
                    || !self.fits_in_memory(&group)
                {
                    continue;
                }
                self.compact_group(&group, term, 2)?;
                n += 1;
            }
        }
        if n > 0 {
            self.sweep_cache();
        }
        Ok(n)
    }

    /// Whether finished weeks are compacted into level-2 blocks: only when retention keeps
    /// four weeks or more (or everything), since a block is deleted when all of it is past
    /// retention, and a week's data may outlive retention by up to a week.
    fn week_blocks(&self) -> bool {
        let r = self.opts.retention_ns;
        r <= 0 || r >= 4 * WEEK_NS
    }

    /// Whether compacting `group` keeps memory within [`MAX_SERIES_RAW`]: compaction holds
    /// one series' stored profiles from every input, and writes them again, at once.
    fn fits_in_memory(&self, group: &[Arc<Block>]) -> bool {
        let mut per: HashMap<&str, u64> = HashMap::new();
        for b in group {
            for s in &b.meta.series {
                *per.entry(s.key.as_str()).or_default() += s.raw.raw_len;
            }
        }
        let biggest = per.values().copied().max().unwrap_or(0);
        if biggest > MAX_SERIES_RAW {
            tracing::debug!(
                bytes = biggest,
                "a week not compacted: a series holds more than compaction keeps in memory"
            );
        }
        biggest <= MAX_SERIES_RAW
    }

    /// Merges `group` into one block of `level` (1: a day, 2: a week); `term`: as the
    /// bucket's compactor.
    pub(crate) fn compact_group(
        &self,
        group: &[Arc<Block>],
        term: Option<u64>,
        level: u32,
    ) -> Result<(), Error> {
        let mut replaces: Vec<String> = group.iter().map(|b| b.meta.id.clone()).collect();
        let mut merged_sources: BTreeMap<String, Vec<u64>> = BTreeMap::new();
        if term.is_some() {
            // Through earlier compactions too: a reader that still sees an input of an input
            // (listed by its writer during the delay) reads it through this block only.
            for b in group {
                replaces.extend(b.meta.replaces.iter().cloned());
                if b.meta.level == 0 {
                    merged_sources
                        .entry(b.meta.instance.clone())
                        .or_default()
                        .extend(&b.meta.sources);
                }
                for (inst, seqs) in &b.meta.merged_sources {
                    merged_sources.entry(inst.clone()).or_default().extend(seqs);
                }
            }
            replaces.sort();
            replaces.dedup();
            for v in merged_sources.values_mut() {
                v.sort_unstable();
                v.dedup();
            }
        }
        let (mut w, tmp) = self.block_writer(BlockInfo {
            id: new_block_id(level, self.instance()),
            level,
            steps: if level >= 2 {
                vec![block::FINE_NS, HOUR_NS, DAY_NS, WEEK_NS]
            } else {
                vec![block::FINE_NS, HOUR_NS, DAY_NS]
            },
            sources: Vec::new(),
            replaces,
            instance: self.instance().to_string(),
            compactor_term: term,
            merged_sources,
        })?;
        let _tmp = TmpFile(tmp.clone());
        // Every series of every input, grouped by service, each merged across inputs.
        let mut keys: BTreeSet<(String, SeriesKey)> = BTreeSet::new();
        for b in group {
            for k in &b.keys {
                keys.insert((block::group_of(k).to_string(), (**k).clone()));
            }
        }
        let mut tabs: HashMap<(usize, u32), Arc<SymTab>> = HashMap::new();
        let mut ingested = 0u64;
        for b in group {
            ingested += b.meta.ingested_bytes;
        }
        let mut service: Option<&str> = None;
        for (name, key) in &keys {
            // Symbols are per service: keep only the current one's decoded.
            if service != Some(name.as_str()) {
                service = Some(name.as_str());
                tabs.clear();
            }
            // The series' stored profiles in every input, decoded one at a time in time
            // order: a day of one series never sits in memory decoded.
            let mut raws: Vec<(Arc<SymTab>, Vec<u8>, &str)> = Vec::new();
            for (bi, b) in group.iter().enumerate() {
                let Some(si) = b.keys.iter().position(|k| **k == *key) else {
                    continue;
                };
                let sm = &b.meta.series[si];
                let tab = self.symtab(&mut tabs, bi, b, sm.group)?;
                raws.push((tab, self.section_from(b, &sm.raw, false)?, &b.name));
            }
            let mut order: Vec<(i64, usize, &[u8])> = Vec::new();
            for (ri, (_, raw, name)) in raws.iter().enumerate() {
                for bytes in block::parse_raw(raw).map_err(|e| block_err(name, e))? {
                    let t = symtab::stored_time(bytes).map_err(|e| block_err(name, e))?;
                    order.push((t, ri, bytes));
                }
            }
            order.sort_by_key(|x| (x.0, x.1));
            let items = order.into_iter().map(|(t, ri, bytes)| {
                let (tab, _, name) = &raws[ri];
                let p = tab
                    .profile(bytes, true)
                    .map_err(|e| BlockError(format!("{name}: {e}")))?;
                Ok(block::Item::Profile(t, Box::new(p), 0))
            });
            w.series(key, items)?;
        }
        let mut points: BTreeMap<SeriesKey, Vec<(i64, f64)>> = BTreeMap::new();
        for b in group {
            let Some(sec) = b.meta.points else { continue };
            let all = block::parse_points(&self.section_from(b, &sec, false)?, b.metric_keys.len())
                .map_err(|e| block_err(&b.name, e))?;
            for (k, pts) in b.metric_keys.iter().zip(all) {
                points.entry((**k).clone()).or_default().extend(pts);
            }
        }
        w.points(points)?;
        w.add_ingested(ingested);
        let meta = w.finish()?;
        let nb = self.put_block(&tmp, meta)?;
        if let Some(e) = self
            .opts
            .faults
            .as_ref()
            .and_then(|h| (h.0)(crate::FaultPoint::CompactCommit))
        {
            return Err(e.into()); // as if killed here: the block stays, visible to no index
        }
        let name = nb.name.clone();
        if term.is_some() && !self.may_commit() {
            // The lease may expire before the block would be listed: another instance may
            // compact the same day. Never visible, so deleted at once.
            let _ = self.blobs.delete(&name);
            return Err(Error::Io(std::io::Error::other(
                "compaction abandoned: the compactor lease ends too soon to make its block visible",
            )));
        }
        {
            let mut g = self.lock();
            let gone: BTreeSet<&str> = group.iter().map(|b| b.meta.id.as_str()).collect();
            g.blocks.retain(|b| !gone.contains(b.meta.id.as_str()));
            g.add_block(nb);
            g.compactions += 1;
        }
        if term.is_some() {
            // The bucket's compactor: the block counts once this instance's part of the
            // bucket index lists it. If that write fails, it is taken back whole.
            if let Err(e) = self.publish_index() {
                {
                    let mut g = self.lock();
                    g.blocks.retain(|b| b.name != name);
                    for b in group {
                        if !g.blocks.iter().any(|x| x.name == b.name) {
                            g.blocks.push(b.clone());
                        }
                    }
                    g.blocks.sort_by(|a, b| crate::catalog::block_order(a, b));
                    g.index_dirty = true;
                }
                let _ = self.blobs.delete(&name);
                return Err(e);
            }
        } else {
            self.index_changed();
        }
        self.delete_replaced(
            group.iter().map(|b| b.name.clone()).collect(),
            term.is_some().then_some(name.as_str()),
        )
    }
}

impl Store {
    /// The bucket compactor's tidying, from one listing of the bucket's blocks: deletes the
    /// inputs of compactions (any instance's) whose delay is over, blocks a killed
    /// compactor of an earlier term left behind (in the bucket, listed by no index), and
    /// with `cutoff`, blocks whose newest data is older (those their writers have already
    /// forgotten too: a writer forgets its expired blocks, the compactor deletes them).
    pub(crate) fn sweep(&self, now: i64, cutoff: Option<i64>) -> Result<(), Error> {
        let Some(term) = self.compactor_term() else {
            return Ok(());
        };
        // What the bucket index lists now, read after this instance took the lease: a block
        // an earlier holder made visible before its lease ended is listed.
        self.refresh_cluster()?;
        let delay = self
            .opts
            .cluster
            .as_ref()
            .map_or(0, |c| c.delete_delay.as_nanos() as i64);
        let listing = self.blobs.list(crate::catalog::BLOCK_SUFFIX)?;
        let (known, replaced, due, listed, swept) = {
            let g = self.lock();
            let known: BTreeSet<String> = g.blocks.iter().map(|b| b.name.clone()).collect();
            let mut replaced = BTreeSet::new();
            let mut due = BTreeSet::new();
            for b in &g.blocks {
                for r in &b.meta.replaces {
                    let name = format!("{r}{}", crate::catalog::BLOCK_SUFFIX);
                    if now >= b.seen_ns.saturating_add(delay) {
                        due.insert(name.clone());
                    }
                    replaced.insert(name);
                }
            }
            (known, replaced, due, g.listed.clone(), g.swept.clone())
        };
        for l in listing {
            if due.contains(&l.name) {
                tracing::debug!(block = %l.name, "deleting a compaction's input");
                if let Err(e) = self.blobs.delete(&l.name) {
                    tracing::warn!(block = %l.name, "deleting a compaction's input failed (tried again): {e}");
                }
                continue;
            }
            if known.contains(&l.name) || replaced.contains(&l.name) {
                continue;
            }
            if let Some(max) = swept.get(&l.name) {
                if cutoff.is_some_and(|c| *max < c) {
                    tracing::info!(block = %l.name, "deleting an expired block its writer forgot");
                    self.blobs.delete(&l.name)?;
                    self.lock().swept.remove(&l.name);
                }
                continue;
            }
            let b = match crate::catalog::read_index(self.blobs.as_ref(), &l.name, l.size) {
                Ok(b) => b,
                Err(e) => {
                    tracing::debug!(block = %l.name, "sweep: block not readable: {e}");
                    continue;
                }
            };
            let expired = cutoff.is_some_and(|c| b.meta.max_time_ns < c);
            let in_index = listed.as_ref().is_some_and(|l| l.contains(&b.name));
            let left_over = !in_index && b.meta.compactor_term.is_some_and(|t| t < term);
            if expired || left_over {
                tracing::info!(
                    block = %l.name,
                    "deleting {}",
                    if expired {
                        "an expired block its writer forgot"
                    } else {
                        "a block an earlier compactor wrote but never made visible"
                    }
                );
                self.blobs.delete(&l.name)?;
            } else {
                self.lock().swept.insert(l.name, b.meta.max_time_ns);
            }
        }
        Ok(())
    }
}
