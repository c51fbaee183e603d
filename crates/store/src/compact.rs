//! Compaction: a finished UTC day's blocks become one level-1 block with hourly and daily
//! rollups; the inputs are deleted once it is in place (a crash between is finished on the
//! next open, which deletes blocks another block `replaces`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use crate::block::{BlockError, BlockInfo};
use crate::catalog::{Block, new_block_id};
use crate::flush::TmpFile;
use crate::symtab::SymTab;
use crate::{DAY_NS, Error, HOUR_NS, SeriesKey, Store, block, block_err, symtab};

impl Store {
    /// Merges the blocks of each finished UTC day (ended at least two block durations
    /// before `now_ns`) into one block with hourly and daily rollups. Returns how many days
    /// were compacted.
    pub fn compact(&self, now_ns: i64) -> Result<usize, Error> {
        let _m = self.maintenance.lock().unwrap_or_else(|p| p.into_inner());
        if self.query_only() {
            return Ok(0);
        }
        // This instance's blocks only: another's are its own to compact.
        let blocks: Vec<Arc<Block>> = {
            let g = self.lock();
            g.blocks
                .iter()
                .filter(|b| self.is_own(b))
                .cloned()
                .collect()
        };
        let mut days: BTreeMap<i64, Vec<Arc<Block>>> = BTreeMap::new();
        for b in &blocks {
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
            self.compact_group(&group)?;
            n += 1;
        }
        Ok(n)
    }

    pub(crate) fn compact_group(&self, group: &[Arc<Block>]) -> Result<(), Error> {
        let (mut w, tmp) = self.block_writer(BlockInfo {
            id: new_block_id(1, self.instance()),
            level: 1,
            steps: vec![HOUR_NS, DAY_NS],
            sources: Vec::new(),
            replaces: group.iter().map(|b| b.meta.id.clone()).collect(),
            instance: self.instance().to_string(),
        })?;
        let _tmp = TmpFile(tmp.clone());
        // Every series of every input, grouped by service, each merged across inputs.
        let mut keys: BTreeSet<(String, SeriesKey)> = BTreeSet::new();
        for b in group {
            for k in &b.keys {
                keys.insert((block::group_of(k).to_string(), k.clone()));
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
                let Some(si) = b.keys.iter().position(|k| k == key) else {
                    continue;
                };
                let sm = &b.meta.series[si];
                let tab = self.symtab(&mut tabs, bi, b, sm.group)?;
                raws.push((tab, self.section(b, &sm.raw)?, &b.name));
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
            let all = block::parse_points(&self.section(b, &sec)?, b.metric_keys.len())
                .map_err(|e| block_err(&b.name, e))?;
            for (k, pts) in b.metric_keys.iter().zip(all) {
                points.entry(k.clone()).or_default().extend(pts);
            }
        }
        w.points(points)?;
        let mut meta = w.finish()?;
        meta.ingested_bytes = ingested;
        let nb = self.put_block(&tmp, meta)?;
        {
            let mut g = self.lock();
            let gone: BTreeSet<&str> = group.iter().map(|b| b.meta.id.as_str()).collect();
            g.blocks.retain(|b| !gone.contains(b.meta.id.as_str()));
            g.add_block(nb);
            g.compactions += 1;
        }
        self.index_changed();
        self.delete_replaced(group.iter().map(|b| b.name.clone()).collect())
    }
}
