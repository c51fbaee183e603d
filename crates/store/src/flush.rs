//! Flush: each closed WAL segment becomes a level-0 block (written to `<data>/tmp`, then
//! moved or uploaded into block storage), after which the segment is deleted — or, if any
//! of its profiles no longer decodes, moved to `<data>/quarantine/` (logged and counted in
//! [`Stats::undecodable_total`](crate::Stats)), never silently dropped.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use crate::block::{BlockError, BlockInfo, BlockWriter};
use crate::catalog::{BLOCK_SUFFIX, Block, catalog_entry, new_block_id};
use crate::head::Entry;
use crate::{BlockMeta, Error, HOUR_NS, SeriesKey, Store, block, wal};

/// Where WAL segments go that held profiles a flush could not decode (`<data>/quarantine/`,
/// as `<seq>-<block id>.wal`: the block holds the segment's other profiles).
pub(crate) const QUARANTINE: &str = "quarantine";

impl Store {
    /// Cuts closed WAL segments into blocks (one each). The current segment is closed
    /// first if it is older than the block duration, or if `force`. Returns whether a
    /// block was written.
    pub fn flush(&self, force: bool) -> Result<bool, Error> {
        if self.query_only() {
            return Ok(false);
        }
        let _m = self.maintenance.lock().unwrap_or_else(|p| p.into_inner());
        {
            let _s = self.sync_lock.lock().unwrap_or_else(|p| p.into_inner());
            let mut g = self.lock();
            let max = self.opts.head_max_bytes;
            let held = g.head_bytes();
            let full = max > 0 && held >= max;
            let due = g.wal()?.current_age().is_some_and(|a| {
                force || full || a.as_nanos() as i64 >= self.opts.block_duration_ns
            });
            if due && full && !force {
                tracing::info!(
                    "the head holds {held} bytes, over [storage] head_max ({max}): cutting a block early"
                );
            }
            if due {
                let res = g.wal()?.rotate();
                self.reap(&mut g);
                if let Err(e) = res {
                    return Err(self.write_failed(&mut g, e));
                }
            }
        }
        let mut wrote = false;
        loop {
            let Some(seq) = self.lock().wal_ref()?.closed().first().copied() else {
                return Ok(wrote);
            };
            wrote |= self.flush_segment(seq)?;
        }
    }

    /// Writes the block of one closed WAL segment, then deletes the segment and drops it
    /// from the head. If that fails, the head is as it was, and the segment stays for the
    /// next try.
    pub(crate) fn flush_segment(&self, seq: u64) -> Result<bool, Error> {
        let (series, points, file) = {
            let g = self.lock();
            let mut series: Vec<(SeriesKey, Vec<Entry>)> = g
                .head
                .iter()
                .filter_map(|(k, v)| {
                    let e: Vec<Entry> = v.iter().filter(|e| e.pos.seq == seq).cloned().collect();
                    (!e.is_empty()).then(|| (k.clone(), e))
                })
                .collect();
            series
                .sort_by(|a, b| (block::group_of(&a.0), &a.0).cmp(&(block::group_of(&b.0), &b.0)));
            let points: BTreeMap<SeriesKey, Vec<(i64, f64)>> = g
                .metrics
                .iter()
                .map(|(k, v)| {
                    let pts = v.iter().filter(|p| p.seq == seq).map(|p| (p.t, p.v));
                    (k.clone(), pts.collect())
                })
                .collect();
            let file = g.wal_ref()?.open_segment(seq)?;
            (series, points, file)
        };
        let id = new_block_id(0, self.instance());
        let (mut w, tmp) = self.block_writer(BlockInfo {
            id: id.clone(),
            level: 0,
            steps: vec![block::FINE_NS, HOUR_NS],
            sources: vec![seq],
            replaces: Vec::new(),
            instance: self.instance().to_string(),
            compactor_term: None,
            merged_sources: Default::default(),
        })?;
        let _tmp = TmpFile(tmp.clone());
        let decode = gocost_pprof::DecodeOptions {
            max_size: self.opts.max_profile_size,
            labels: true,
        };
        // Payloads that no longer decode (they were validated on append: the bytes changed
        // on disk in a way the checksum did not catch, or a smaller size cap is in force).
        let mut undecodable = 0u64;
        let mut group: Option<&str> = None;
        // The table lengths of the current group's encoded symbols.
        let mut lens: Option<crate::symtab::Lens> = None;
        for (key, entries) in &series {
            let name = block::group_of(key);
            if group != Some(name) {
                group = Some(name);
                // Profiles encoded on append: the block takes the segment's symbols of the
                // service as they are (the segment is closed: they no longer change). The
                // head keeps them until the segment is gone.
                let symbols = {
                    let g = self.lock();
                    g.head_symbols
                        .get(&seq)
                        .and_then(|m| m.get(name))
                        .map(|b| (b.encode(), b.lens()))
                };
                lens = symbols.as_ref().map(|s| s.1);
                match symbols {
                    Some((symbols, _)) => w.group_encoded(name, symbols)?,
                    None if entries.iter().any(|e| e.encoded) => {
                        return Err(Error::Io(std::io::Error::other(format!(
                            "WAL segment {seq}: the symbols of {name:?} are missing"
                        ))));
                    }
                    None => {}
                }
            }
            let undecodable = &mut undecodable;
            let items = entries.iter().filter_map(|e| {
                let raw_len = u64::from(e.raw_len);
                if let Some(enc) = &e.enc {
                    return Some(Ok(block::Item::Encoded(e.time_ns, enc.clone(), raw_len)));
                }
                let bytes = match wal::read_payload(&file, e.pos) {
                    Ok(b) => b,
                    // The segment stays for the next try.
                    Err(err) => {
                        return Some(Err(BlockError(format!(
                            "WAL segment {seq}: reading the profile of {key} at byte {}: {err}",
                            e.pos.offset
                        ))));
                    }
                };
                let checked = if e.encoded {
                    lens.as_ref()
                        .map_or(Err("no symbols".to_string()), |l| {
                            l.check(&bytes).map_err(|e| e.to_string())
                        })
                        .map(|()| block::Item::Encoded(e.time_ns, bytes.into(), raw_len))
                } else {
                    gocost_pprof::decode_with(&bytes, &decode)
                        .map(|p| block::Item::Profile(e.time_ns, Box::new(p), raw_len))
                        .map_err(|e| e.to_string())
                };
                match checked {
                    Ok(item) => Some(Ok(item)),
                    Err(err) => {
                        // Left out of the block, never silently: the segment is kept in
                        // quarantine below.
                        tracing::error!(
                            segment = seq,
                            offset = e.pos.offset,
                            series = %key,
                            time_ns = e.time_ns,
                            "a profile in the WAL no longer decodes, left out of block {id}: {err}"
                        );
                        *undecodable += 1;
                        None
                    }
                }
            });
            w.series(key, items)?;
        }
        w.points(points)?;
        // The segment is copied aside (synced) before its block is put: once the block is
        // in place the segment counts as cut and is deleted, so the copy must exist first.
        // If the cut fails after this, the copy is removed again and the next try copies.
        let mut kept = None;
        if undecodable > 0 {
            let to = self.opts.dir.join(QUARANTINE);
            let name = format!("{seq:08}-{id}.wal");
            self.lock().wal()?.copy_aside(seq, &to, &name)?;
            kept = Some(TmpFile(to.join(name)));
        }
        let wrote = !w.is_empty();
        if wrote {
            let meta = w.finish()?;
            let b = self.put_block(&tmp, meta)?;
            {
                let mut g = self.lock();
                g.add_block(b);
                g.blocks_written += 1;
            }
            self.index_changed();
        } else {
            drop(w);
            let _ = std::fs::remove_file(&tmp);
        }
        let mut g = self.lock();
        let mut freed = 0;
        for v in g.head.values_mut() {
            v.retain(|e| {
                let keep = e.pos.seq != seq;
                if !keep {
                    freed += e.enc.as_ref().map_or(0, |b| b.len());
                }
                keep
            });
        }
        g.cache_bytes -= freed;
        g.head.retain(|_, v| !v.is_empty());
        g.head_symbols.remove(&seq);
        self.sums
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drop_segment(seq);
        for v in g.metrics.values_mut() {
            v.retain(|p| p.seq != seq);
        }
        g.metrics.retain(|_, v| !v.is_empty());
        if let Some(kept) = kept {
            let kept = kept.keep();
            g.undecodable += undecodable;
            tracing::error!(
                segment = seq,
                "{undecodable} profiles of WAL segment {seq} did not decode; the segment is kept as {}",
                kept.display()
            );
        }
        g.wal()?.remove_through(seq)?;
        Ok(wrote)
    }

    /// A block writer into a temporary file under `<data>/tmp/`.
    pub(crate) fn block_writer(&self, info: BlockInfo) -> Result<(BlockWriter, PathBuf), Error> {
        let dir = self.opts.dir.join("tmp");
        std::fs::create_dir_all(&dir)?;
        let tmp = dir.join(format!("{}{BLOCK_SUFFIX}.tmp", info.id));
        let f = std::io::BufWriter::with_capacity(1 << 20, File::create(&tmp)?);
        let w = BlockWriter::new(info, Box::new(f))?;
        Ok((w, tmp))
    }

    /// Moves a written block into block storage and makes its catalog entry.
    pub(crate) fn put_block(&self, tmp: &Path, meta: BlockMeta) -> Result<Block, Error> {
        let name = format!("{}{BLOCK_SUFFIX}", meta.id);
        let size = std::fs::metadata(tmp)?.len();
        if let Err(e) = self.blobs.put_file(&name, tmp) {
            let _ = std::fs::remove_file(tmp);
            return Err(e);
        }
        catalog_entry(name, size, meta)
    }
}

/// A block's temporary file, removed when the cut that writes it ends, however it ends (a
/// cut that succeeded has moved it away already): a failed cut leaves nothing behind.
pub(crate) struct TmpFile(pub(crate) PathBuf);

impl TmpFile {
    /// Keeps the file after all.
    pub(crate) fn keep(mut self) -> PathBuf {
        std::mem::take(&mut self.0)
    }
}

impl Drop for TmpFile {
    fn drop(&mut self) {
        if !self.0.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}
