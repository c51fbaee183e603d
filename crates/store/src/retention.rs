//! Retention: profiles and points older than the retention leave the head, whole blocks
//! whose newest data is older are deleted, and so are old execution traces.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::catalog::{Block, kinds_of};
use crate::{Error, Store};

impl Store {
    /// Drops profiles and points older than the retention (relative to `now_ns`): from the
    /// head, and whole blocks whose newest data is older.
    pub fn apply_retention(&self, now_ns: i64) -> Result<(), Error> {
        if self.opts.retention_ns <= 0 {
            return Ok(());
        }
        let _m = self.maintenance.lock().unwrap_or_else(|p| p.into_inner());
        let cutoff = now_ns - self.opts.retention_ns;
        // Who deletes expired blocks: each writer its own, or the bucket's compactor every
        // instance's (docs/adr/0022); the others only forget them.
        let bucket = matches!(
            self.mode,
            crate::CompactionMode::Lease | crate::CompactionMode::Static(_)
        );
        let compactor = bucket && self.compactor_term().is_some();
        let deletes = |b: &Block| {
            if bucket { compactor } else { self.is_own(b) }
        };
        let mut forgot_own = false;
        let expired: Vec<Arc<Block>> = {
            let mut g = self.lock();
            let mut freed = 0;
            for v in g.head.values_mut() {
                let n = v.partition_point(|e| e.time_ns < cutoff);
                freed += v
                    .drain(..n)
                    .map(|e| e.enc.map_or(0, |b| b.len()))
                    .sum::<usize>();
            }
            g.cache_bytes -= freed;
            g.head.retain(|_, v| !v.is_empty());
            for v in g.metrics.values_mut() {
                let n = v.partition_point(|p| p.t < cutoff);
                v.drain(..n);
            }
            g.metrics.retain(|_, v| !v.is_empty());
            // Expired blocks stay in the catalog until their objects are gone; meanwhile
            // new reads pass them by.
            // Another instance's blocks are its own to delete: here they are only forgotten.
            let before = g.blocks.len();
            g.blocks.retain(|b| {
                let keep = b.meta.max_time_ns >= cutoff || deletes(b);
                forgot_own |= !keep && self.is_own(b);
                keep
            });
            if g.blocks.len() != before {
                g.kinds = kinds_of(&g.head, &g.blocks);
            }
            let old: Vec<Arc<Block>> = g
                .blocks
                .iter()
                .filter(|b| b.meta.max_time_ns < cutoff)
                .cloned()
                .collect();
            for b in &old {
                b.expiring.store(true, Ordering::Relaxed);
            }
            old
        };
        // Delete, then forget: a block whose deletion fails stays in the catalog (counted in
        // the stats, read by no query) and is tried again on the next pass, so nothing leaks
        // unseen; one forgotten was deleted first, so the catalog never names a missing
        // object. The catalog lives in memory and is read back from block storage on open:
        // a crash in between leaves no trace of either kind (docs/adr/0011).
        let mut failed = None;
        let mut deleted = 0;
        for b in expired {
            match self.blobs.delete(&b.name) {
                Ok(()) => {
                    deleted += 1;
                    let mut g = self.lock();
                    g.blocks.retain(|x| !Arc::ptr_eq(x, &b));
                    g.kinds = kinds_of(&g.head, &g.blocks);
                }
                Err(e) => {
                    b.expiring.store(false, Ordering::Relaxed);
                    tracing::warn!(
                        block = %b.name,
                        "retention could not delete an expired block (kept, tried again on the next pass): {e}"
                    );
                    self.lock().retention_errors += 1;
                    failed.get_or_insert(e);
                }
            }
        }
        if deleted > 0 || forgot_own {
            self.index_changed();
        }
        if compactor {
            // Expired blocks no index lists any more (their writers forgot them).
            if let Err(e) = self.sweep(now_ns, Some(cutoff)) {
                failed.get_or_insert(e);
            }
        }
        self.sweep_cache();
        self.traces.expire(cutoff)?;
        self.load_runs.expire(cutoff)?;
        failed.map_or(Ok(()), Err)
    }
}
