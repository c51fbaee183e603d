//! Queries: selecting series, visiting their profiles in blocks (rollups for whole buckets
//! inside the range, raw profiles at the edges) and in the head (read back from the WAL),
//! merging them; runtime-metric points.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::sync::{Arc, Condvar, Mutex, mpsc};

use gocost_pprof::{Combiner, Profile};

use crate::block::Section;
use crate::catalog::{Block, section_range};
use crate::cluster::HeadRequest;
use crate::head::Entry;
use crate::symtab::{RollupAcc, SymTab};
use crate::{
    DAY_NS, Error, HOUR_NS, Selector, SeriesKey, Store, block, block_err, codec, symtab, wal,
};

/// What a visit of the stored profiles is called with: the series, the profile's time (a
/// rollup's bucket start), how many profiles it stands for (1, or a rollup's count), and
/// the profile.
pub type Visitor<'a> = dyn FnMut(&SeriesKey, i64, u64, Profile) -> Result<(), Error> + 'a;

/// What [`Store::visit_folded`] adds each profile to an accumulator with.
pub(crate) type Adder<'a, A> =
    dyn Fn(&mut A, &SeriesKey, i64, u64, Profile) -> Result<(), Error> + Sync + 'a;

/// How many threads one query reads `blocks` blocks on: `asked` ([`Options::query_threads`]),
/// or with 0 the machine's cores (at most 4); no more than there are blocks.
///
/// [`Options::query_threads`]: crate::Options::query_threads
pub(crate) fn query_threads(asked: usize, blocks: usize) -> usize {
    // The core count is read once (it reads cgroup files), not per query.
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    let n = match asked {
        0 => *CORES.get_or_init(|| {
            std::thread::available_parallelism()
                .map_or(1, std::num::NonZeroUsize::get)
                .min(4)
        }),
        n => n,
    };
    n.min(blocks)
}

/// `map` over `items` on up to `threads` threads, `fold` given the results in `items`'
/// order as soon as each and those before it are done ([`Store::visit_folded`]'s blocks).
/// No thread takes an item more than two per thread ahead of the fold, so memory holds a
/// few results, not all. The helpers run under the caller's cancellation flag and budget
/// (`gocost_pprof::cancel`); what one unwinds with (a cancelled or over-budget query) is
/// resumed on the caller's thread. However the fold ends — an error, or an unwind from
/// `fold` itself —, no helper takes another item or waits on the fold any more.
fn map_in_order<T: Sync, A: Send>(
    items: &[T],
    threads: usize,
    map: &(dyn Fn(&T) -> Result<A, Error> + Sync),
    fold: &mut dyn FnMut(A) -> Result<(), Error>,
) -> Result<(), Error> {
    if threads <= 1 {
        for it in items {
            fold(map(it)?)?;
        }
        return Ok(());
    }
    let ctx = gocost_pprof::cancel::context();
    let window = 2 * threads;
    // (the next item to take, how many are folded), and a wake-up for takers that wait
    // on the fold.
    let state = (Mutex::new((0usize, 0usize)), Condvar::new());
    let lock = || state.0.lock().unwrap_or_else(|p| p.into_inner());
    let stop = || {
        lock().0 = items.len();
        state.1.notify_all();
    };
    type Done<A> = std::thread::Result<Result<A, Error>>;
    let (tx, rx) = mpsc::channel::<(usize, Done<A>)>();
    let unwound = std::thread::scope(|s| {
        for _ in 0..threads {
            let tx = tx.clone();
            let (state, lock, ctx) = (&state, &lock, &ctx);
            s.spawn(move || {
                loop {
                    let i = {
                        let mut g = lock();
                        while g.0 < items.len() && g.0 >= g.1 + window {
                            g = state.1.wait(g).unwrap_or_else(|p| p.into_inner());
                        }
                        if g.0 >= items.len() {
                            return;
                        }
                        g.0 += 1;
                        g.0 - 1
                    };
                    let Some(it) = items.get(i) else { return };
                    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        ctx.run(|| map(it))
                    }));
                    if tx.send((i, r)).is_err() {
                        return;
                    }
                }
            });
        }
        drop(tx);
        struct StopOnExit<'s>(&'s dyn Fn());
        impl Drop for StopOnExit<'_> {
            fn drop(&mut self) {
                (self.0)();
            }
        }
        let _stop = StopOnExit(&stop);
        let mut pending: BTreeMap<usize, Result<A, Error>> = BTreeMap::new();
        let mut done = 0;
        for (i, r) in rx.iter() {
            pending.insert(i, r?);
            while let Some(r) = pending.remove(&done) {
                if let Err(e) = r.and_then(&mut *fold) {
                    return Ok(Err(e));
                }
                done += 1;
                lock().1 = done;
                state.1.notify_all();
            }
        }
        Ok(Ok(()))
    });
    unwound.unwrap_or_else(|payload| std::panic::resume_unwind(payload))
}

/// The merge of `profiles` in their order, as one [`Combiner`] gives it, on up to
/// `threads` threads: consecutive runs merged apart, then the runs' merges in order (the
/// merge of the merges of consecutive runs is the merge of them all).
pub(crate) fn merge_in_order(
    profiles: Vec<Profile>,
    threads: usize,
) -> Result<Option<Profile>, Error> {
    let per_run = profiles.len().div_ceil(threads.max(1)).max(1);
    let mut runs: Vec<Mutex<Vec<Profile>>> = Vec::new();
    let mut it = profiles.into_iter().peekable();
    while it.peek().is_some() {
        runs.push(Mutex::new(it.by_ref().take(per_run).collect()));
    }
    let mut all = Combiner::new();
    let merge_run = |run: &Mutex<Vec<Profile>>| -> Result<Option<Profile>, Error> {
        let run = std::mem::take(&mut *run.lock().unwrap_or_else(|p| p.into_inner()));
        let mut c = Combiner::new();
        for p in run {
            c.push(p).map_err(Error::Merge)?;
        }
        Ok(c.finish())
    };
    map_in_order(
        &runs,
        threads.min(runs.len()),
        &merge_run,
        &mut |p| match p {
            Some(p) => all.push(p).map_err(Error::Merge),
            None => Ok(()),
        },
    )?;
    Ok(all.finish())
}

/// What a visit reads, gathered before any block is read ([`Store::gather`]).
struct Gathered {
    remote: crate::cluster::Remote,
    head: Vec<(SeriesKey, Vec<Entry>)>,
    tabs: HeadTabs,
    files: HashMap<u64, File>,
    blocks: Vec<Arc<Block>>,
}

/// How a visit reads the stored profiles.
#[derive(Default)]
pub(crate) struct Visit<'a> {
    /// Which rollups (bucket start, end) inside the range may stand in for their
    /// profiles; `None`: none.
    pub(crate) use_rollup: Option<&'a (dyn Fn(i64, i64) -> bool + Sync)>,
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

/// How many compressed bytes of sections a prefetch asks for at once.
const BATCH_BYTES: u64 = 32 << 20;

/// Stored profiles of one series sharing a symbol table: (time, count, bytes).
type Parts<'b> = Vec<(i64, u64, &'b [u8])>;

/// Symbol snapshots of the head: WAL segment → group → tables (only groups with profiles
/// encoded on append).
type HeadTabs = HashMap<u64, HashMap<String, Arc<SymTab>>>;

/// Whether to read the single profile of a series at a time.
pub(crate) type Keep<'a> = dyn Fn(&SeriesKey, i64) -> bool + Sync + 'a;

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
                let v = out.entry((**k).clone()).or_default();
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
            use_rollup: bucket
                .as_ref()
                .map(|b| b as &(dyn Fn(i64, i64) -> bool + Sync)),
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
        self.visit_folded(
            sel,
            from_ns,
            to_ns,
            &how,
            &Combiner::new,
            &|part, _, _, _, p| part.push(p).map_err(Error::Merge),
            &mut |part| match part.finish() {
                Some(p) => c.push(p).map_err(Error::Merge),
                None => Ok(()),
            },
        )?;
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
        let q = self.gather(sel, from, to, how)?;
        self.visit_blocks(sel, from, to, how, &q.blocks, f)?;
        self.visit_rest(sel, from, to, how, q, f)
    }

    /// [`Store::visit`] for callers that fold what they are given (merges): the blocks are
    /// read a block at a time on up to [`Options::query_threads`](crate::Options::query_threads) threads, each block's profiles
    /// going to an accumulator of its own (`new`, then `add` for each profile), and `fold`
    /// gets the accumulators in block order, then one for the head and the peers — the
    /// order a serial visit has, so a merge done in `fold` comes out the same: merging the
    /// merges of consecutive runs of profiles is merging them all (samples, locations and
    /// functions keep their first-seen order; values add up).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn visit_folded<A: Send>(
        &self,
        sel: &Selector,
        from: i64,
        to: i64,
        how: &Visit<'_>,
        new: &(dyn Fn() -> A + Sync),
        add: &Adder<'_, A>,
        fold: &mut dyn FnMut(A) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let q = self.gather(sel, from, to, how)?;
        let one_block = |b: &Arc<Block>| -> Result<A, Error> {
            let mut acc = new();
            self.visit_blocks(
                sel,
                from,
                to,
                how,
                std::slice::from_ref(b),
                &mut |k, t, n, p| add(&mut acc, k, t, n, p),
            )?;
            Ok(acc)
        };
        let threads = query_threads(self.opts.query_threads, q.blocks.len());
        map_in_order(&q.blocks, threads, &one_block, fold)?;
        let mut acc = new();
        self.visit_rest(sel, from, to, how, q, &mut |k, t, n, p| {
            add(&mut acc, k, t, n, p)
        })?;
        fold(acc)
    }

    /// What a visit reads, before any block is: the peers' answers and [`Store::take`]'s.
    fn gather(
        &self,
        sel: &Selector,
        from: i64,
        to: i64,
        how: &Visit<'_>,
    ) -> Result<Gathered, Error> {
        // The other instances' heads first: their answers say which of their blocks to read.
        let remote = self.ask_peers(&head_request(sel, from, to, how))?;
        let (head, tabs, files, blocks) = self.take(sel, from, to, how, false, |catalog| {
            remote.blocks(catalog, from, to)
        })?;
        Ok(Gathered {
            remote,
            head,
            tabs,
            files,
            blocks,
        })
    }

    /// A visit's profiles after the blocks': the head's, then the peers'.
    fn visit_rest(
        &self,
        sel: &Selector,
        from: i64,
        to: i64,
        how: &Visit<'_>,
        q: Gathered,
        f: &mut Visitor<'_>,
    ) -> Result<(), Error> {
        let keep = |k: &SeriesKey, t: i64| how.keep.is_none_or(|keep| keep(k, t));
        self.visit_head(&q.head, &q.tabs, &q.files, how, Some((from, to)), f)?;
        for (k, t, n, p) in q.remote.items {
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
        self.visit_head(&head, &tabs, &files, &how, None, f)?;
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
                s.insert(g.wal_ref()?.open_segment(e.pos.seq)?);
            }
        }
        let blocks = pick(&g.blocks);
        drop(g);
        Ok((head, tabs, files, blocks))
    }

    /// Visits the matching series of `blocks`, in block and series order, one series at a
    /// time. Over a bucket with a block cache, each block's small sections the visit will
    /// read (symbol tables, rollups, the raw sections' hour tables) are first fetched at
    /// once ([`Store::prefetch`]), so that the series' reads find them in the cache.
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
        let prefetch = self.cache.is_some() && self.blobs.local_dir().is_none();
        for (bi, b) in blocks.iter().enumerate() {
            let mut tabs = HashMap::new();
            if prefetch {
                self.prefetch(b, sel, from, to, how)?;
            }
            for (si, key) in b.keys.iter().enumerate() {
                let sm = &b.meta.series[si];
                if !sel.matches(key) || sm.min_time_ns > to || sm.max_time_ns < from {
                    continue;
                }
                let tab = self.symtab(&mut tabs, bi, b, sm.group)?;
                let bad = |e: block::BlockError| block_err(&b.name, e);
                let bad_codec = |e: codec::CodecError| block_err(&b.name, e);
                // Whole buckets inside the range, largest first, never overlapping: weeks
                // and days, then — only where they leave a whole bucket of the next step
                // uncovered — hours, then ten minutes (docs/adr/0026, 0034).
                let (lo, hi) = (from.max(sm.min_time_ns), to.min(sm.max_time_ns));
                let mut picked: Vec<(i64, i64)> = Vec::new();
                // Per tier, what was read: whole sections, or pieces of `n` rollups.
                type Pieces = Vec<(Option<u64>, Vec<u8>)>;
                let bufs: [std::cell::OnceCell<Pieces>; block::TIERS] = Default::default();
                let mut parts: Parts<'_> = Vec::new();
                if let Some(ok) = how.use_rollup {
                    for (t, sec) in sm.rollup_sections().into_iter().enumerate() {
                        let Some(sec) = sec else { continue };
                        // `rollups` is always read (in blocks written before `hour_rollups`
                        // existed it holds the hours too); the others only where the
                        // series' data, widened to whole buckets of their step, holds one
                        // that what is picked leaves uncovered.
                        let step = block::TIER_STEP[t];
                        let lo_s = from.max(sm.min_time_ns.div_euclid(step) * step);
                        let hi_s = to
                            .min((sm.max_time_ns.div_euclid(step) * step).saturating_add(step - 1));
                        if t > 0 && !gap_holds(&picked, lo_s, hi_s, step) {
                            continue;
                        }
                        let read: Pieces = match (t, &sm.hour_days) {
                            // A week's hours: only the days that hold some to read.
                            (1, Some(hd)) => {
                                let table = self.section(b, hd)?;
                                let mut read = Pieces::new();
                                for d in
                                    block::parse_pieces(&table, sec, "hour days").map_err(bad)?
                                {
                                    let (a, z) = (
                                        d.start.max(lo_s),
                                        d.start.saturating_add(DAY_NS - 1).min(hi_s),
                                    );
                                    if a <= z && gap_holds(&picked, a, z, step) {
                                        read.push((Some(d.profiles), self.piece(b, sec, &d)?));
                                    }
                                }
                                read
                            }
                            _ => vec![(None, self.section(b, sec)?)],
                        };
                        let _ = bufs[t].set(read);
                        for (n, buf) in bufs[t].get().into_iter().flatten() {
                            let rolls = match n {
                                Some(n) => block::parse_rollups_piece(buf, *n),
                                None => block::parse_rollups(buf),
                            };
                            pick(rolls.map_err(bad)?, from, to, ok, &mut picked, &mut parts);
                        }
                    }
                }
                let covered = |t: i64| picked.iter().any(|&(a, z)| a <= t && t <= z);
                // The raw profiles outside them: only the hours that hold some, when the
                // section is split by hour (docs/adr/0026), else the whole section.
                let raw: Vec<(Option<u64>, Vec<u8>)> = if covered_range(&picked, lo, hi) {
                    Vec::new()
                } else if let Some(hs) = &sm.raw_hours {
                    let table = self.section(b, hs)?;
                    let mut pieces = Vec::new();
                    for h in block::parse_raw_hours(&table, &sm.raw).map_err(bad)? {
                        let (a, z) = (h.start.max(lo), h.start.saturating_add(HOUR_NS - 1).min(hi));
                        if a > z || covered_range(&picked, a, z) {
                            continue;
                        }
                        pieces.push((Some(h.profiles), self.piece(b, &sm.raw, &h)?));
                    }
                    pieces
                } else {
                    vec![(None, self.section(b, &sm.raw)?)]
                };
                let mut stored: Vec<&[u8]> = Vec::new();
                for (n, bytes) in &raw {
                    stored.extend(match n {
                        Some(n) => block::parse_raw_piece(bytes, *n).map_err(bad)?,
                        None => block::parse_raw(bytes).map_err(bad)?,
                    });
                }
                for bytes in stored {
                    let t = symtab::stored_time(bytes).map_err(bad_codec)?;
                    if t < from || t > to || covered(t) || !keep(key, t) {
                        continue;
                    }
                    parts.push((t, 1, bytes));
                }
                emit(key, &tab, parts, how, &bad_codec, f)?;
            }
        }
        Ok(())
    }

    /// One piece of a split section of `b` (a raw hour, a day of hourly rollups), inflated.
    fn piece(&self, b: &Block, whole: &Section, p: &block::RawHour) -> Result<Vec<u8>, Error> {
        let at = whole.offset.saturating_add(p.offset);
        let z = self
            .fetch(&[(&b.name, at..at.saturating_add(p.len))])?
            .pop()
            .unwrap_or_default();
        block::inflate_piece(&z, p).map_err(|e| block_err(&b.name, e))
    }

    /// Fetches into the block cache, in batches of up to [`BATCH_BYTES`] (coalesced and
    /// concurrent), the sections of `b` a visit of the series matching `sel` in
    /// `[from, to]` reads whatever the rollups cover — each group's symbol table, the
    /// rollups (when the visit uses them) and the raw sections' hour tables —, then the raw
    /// hour pieces it will likely read: two round trips per block, not one per piece.
    fn prefetch(
        &self,
        b: &Block,
        sel: &Selector,
        from: i64,
        to: i64,
        how: &Visit<'_>,
    ) -> Result<(), Error> {
        let mut asks: Vec<(&str, std::ops::Range<u64>)> = Vec::new();
        let mut groups = std::collections::BTreeSet::new();
        for (si, key) in b.keys.iter().enumerate() {
            let sm = &b.meta.series[si];
            if !sel.matches(key) || sm.min_time_ns > to || sm.max_time_ns < from {
                continue;
            }
            if groups.insert(sm.group)
                && let Some(g) = b.meta.groups.get(sm.group as usize)
            {
                asks.push((&b.name, section_range(&g.symbols)));
            }
            if how.use_rollup.is_some() {
                // A week's hourly rollups split by day: their table, not the section (the
                // visit fetches the days it needs).
                let hours = sm.hour_days.as_ref().or(sm.hour_rollups.as_ref());
                asks.extend(
                    [sm.rollups.as_ref(), hours, sm.fine_rollups.as_ref()]
                        .into_iter()
                        .flatten()
                        .map(|r| (b.name.as_str(), section_range(r))),
                );
            }
            asks.extend(
                sm.raw_hours
                    .iter()
                    .map(|r| (b.name.as_str(), section_range(r))),
            );
        }
        self.fetch_batched(asks)?;
        // Then the raw pieces the visit will read, now that their hour tables are here: the
        // hours that meet the range, less those wholly inside it when rollups cover them. A
        // guess that only decides what is fetched together (an edge hour partly covered by
        // ten-minute rollups is fetched, and read, whole); the visit reads what it needs
        // either way.
        let mut asks: Vec<(&str, std::ops::Range<u64>)> = Vec::new();
        for (si, key) in b.keys.iter().enumerate() {
            let sm = &b.meta.series[si];
            if !sel.matches(key) || sm.min_time_ns > to || sm.max_time_ns < from {
                continue;
            }
            let Some(hs) = &sm.raw_hours else {
                continue;
            };
            let table = self.section(b, hs)?;
            let hours =
                block::parse_raw_hours(&table, &sm.raw).map_err(|e| block_err(&b.name, e))?;
            let rolled =
                how.use_rollup.is_some() && (sm.rollups.is_some() || sm.hour_rollups.is_some());
            for h in hours {
                let (a, z) = (h.start, h.start.saturating_add(HOUR_NS - 1));
                if z < from || a > to || (rolled && a >= from && z <= to) {
                    continue;
                }
                let at = sm.raw.offset.saturating_add(h.offset);
                asks.push((b.name.as_str(), at..at.saturating_add(h.len)));
            }
        }
        self.fetch_batched(asks)
    }

    /// Fetches ranges into the block cache in batches of up to [`BATCH_BYTES`] (each batch
    /// coalesced and concurrent).
    fn fetch_batched(&self, asks: Vec<(&str, std::ops::Range<u64>)>) -> Result<(), Error> {
        let mut batch = Vec::new();
        let mut bytes = 0u64;
        for a in asks {
            bytes = bytes.saturating_add(a.1.end - a.1.start);
            batch.push(a);
            if bytes >= BATCH_BYTES {
                self.fetch(&batch)?;
                batch.clear();
                bytes = 0;
            }
        }
        if !batch.is_empty() {
            self.fetch(&batch)?;
        }
        Ok(())
    }

    /// Visits the head's `head` entries; `range`: the query's, whose whole ten minutes of
    /// encoded profiles a summing visit takes from (and adds to) the head's sums cache.
    fn visit_head(
        &self,
        head: &[(SeriesKey, Vec<Entry>)],
        tabs: &HeadTabs,
        files: &HashMap<u64, File>,
        how: &Visit<'_>,
        range: Option<(i64, i64)>,
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
            let mut encoded: BTreeMap<u64, (&SymTab, Parts<'_>, Vec<&Entry>)> = BTreeMap::new();
            for (e, bytes) in entries.iter().zip(&read) {
                match (e.enc.as_deref().or(bytes.as_deref()), seg_tabs(e.pos.seq)) {
                    (Some(enc), Some(tab)) => {
                        let seg = encoded
                            .entry(e.pos.seq)
                            .or_insert_with(|| (tab, Vec::new(), Vec::new()));
                        seg.1.push((e.time_ns, 1, enc));
                        seg.2.push(e);
                    }
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
            for (seq, (tab, parts, es)) in encoded {
                let sums;
                let parts = match range {
                    Some((from, to)) if how.merge && !how.totals => {
                        sums = self.head_sums(key, seq, from, to, how.labels, &parts, &es);
                        with_sums(parts, &sums)
                    }
                    _ => parts,
                };
                emit(key, tab, parts, how, &bad_head, f)?;
            }
        }
        Ok(())
    }
}

/// The sums of whole ten minutes of one series' encoded head profiles, by bucket start:
/// (bucket start, its first profile's time, profiles, summed bytes).
type Sums = Vec<(i64, i64, u64, Arc<[u8]>)>;

/// The head's sums cache (docs/adr/0026): per series, WAL segment, ten minutes and whether
/// labels are kept, the stack-space sum of the encoded profiles a query found there, with a
/// fingerprint of those profiles (a late profile changes it: the sum is made again). Kept
/// under a byte budget, oldest first out; a segment's go when it is cut into a block.
#[derive(Default)]
pub(crate) struct HeadSums {
    map: HashMap<SumKey, (u64, u64, Arc<[u8]>)>,
    order: std::collections::VecDeque<SumKey>,
    bytes: usize,
}

type SumKey = (SeriesKey, u64, i64, bool);

impl HeadSums {
    /// Forgets the sums of WAL segment `seq`.
    pub(crate) fn drop_segment(&mut self, seq: u64) {
        self.order.retain(|k| k.1 != seq);
        let mut freed = 0;
        self.map.retain(|k, v| {
            let keep = k.1 != seq;
            if !keep {
                freed += v.2.len();
            }
            keep
        });
        self.bytes -= freed;
    }
}

impl Store {
    /// The sums of every whole ten minutes inside `[from, to]` among one series' encoded
    /// head profiles of WAL segment `seq` (`parts`, of `entries`, in time order) that hold
    /// at least [`block::MIN_FINE_PROFILES`]: from the cache, or made and kept.
    #[allow(clippy::too_many_arguments)]
    fn head_sums(
        &self,
        key: &SeriesKey,
        seq: u64,
        from: i64,
        to: i64,
        labels: bool,
        parts: &Parts<'_>,
        entries: &[&Entry],
    ) -> Sums {
        let budget = self.opts.head_cache_bytes / 4;
        let step = block::FINE_NS;
        let mut out = Vec::new();
        let mut i = 0;
        while i < parts.len() {
            let b = parts[i].0.div_euclid(step) * step;
            let n = parts[i..].partition_point(|p| p.0 < b.saturating_add(step));
            let (run, es) = (&parts[i..i + n], &entries[i..i + n]);
            i += n;
            let whole = b >= from && b.checked_add(step - 1).is_some_and(|e| e <= to);
            if budget == 0 || !whole || (n as u64) < block::MIN_FINE_PROFILES {
                continue;
            }
            let print = {
                use std::hash::{BuildHasher, Hasher};
                let mut h = rustc_hash::FxBuildHasher.build_hasher();
                for e in es {
                    h.write_i64(e.time_ns);
                    h.write_u64(e.pos.offset);
                    h.write_u32(e.pos.len);
                }
                h.finish()
            };
            let k: SumKey = (key.clone(), seq, b, labels);
            {
                let c = self.sums.lock().unwrap_or_else(|p| p.into_inner());
                if let Some((cn, cp, bytes)) = c.map.get(&k)
                    && *cn == n as u64
                    && *cp == print
                {
                    out.push((b, run[0].0, n as u64, bytes.clone()));
                    continue;
                }
            }
            let mut acc = if labels {
                RollupAcc::default()
            } else {
                RollupAcc::without_labels()
            };
            if run.iter().any(|p| acc.add(p.2).is_err()) {
                continue; // the visit reports it
            }
            let Some(sum) = acc.finish(b) else { continue };
            let sum: Arc<[u8]> = sum.into();
            out.push((b, run[0].0, n as u64, sum.clone()));
            if sum.len() > budget {
                continue;
            }
            let mut c = self.sums.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(old) = c.map.insert(k.clone(), (n as u64, print, sum.clone())) {
                c.bytes -= old.2.len();
            } else {
                c.order.push_back(k);
            }
            c.bytes += sum.len();
            while c.bytes > budget {
                let Some(k) = c.order.pop_front() else { break };
                if let Some(old) = c.map.remove(&k) {
                    c.bytes -= old.2.len();
                }
            }
        }
        out
    }
}

/// `parts` (in time order) with the profiles of each ten minutes `sums` holds replaced by
/// their sum.
fn with_sums<'b>(parts: Parts<'b>, sums: &'b Sums) -> Parts<'b> {
    if sums.is_empty() {
        return parts;
    }
    let step = block::FINE_NS;
    let mut out: Parts<'b> = sums.iter().map(|(_, t, n, s)| (*t, *n, &s[..])).collect();
    out.extend(parts.into_iter().filter(|p| {
        let b = p.0.div_euclid(step) * step;
        sums.binary_search_by_key(&b, |s| s.0).is_err()
    }));
    out.sort_by_key(|p| p.0);
    out
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

/// Adds to `parts` the rollups lying wholly inside `[from, to]` that `ok` allows and that
/// overlap none already `picked`, largest step first; records them in `picked`.
fn pick<'b>(
    mut rolls: Vec<block::Rollup<'b>>,
    from: i64,
    to: i64,
    ok: &dyn Fn(i64, i64) -> bool,
    picked: &mut Vec<(i64, i64)>,
    parts: &mut Parts<'b>,
) {
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

/// Whether some part of `[lo, hi]` outside the (disjoint) `picked` intervals holds a whole
/// bucket of `step` (aligned to multiples of it).
pub(crate) fn gap_holds(picked: &[(i64, i64)], lo: i64, hi: i64, step: i64) -> bool {
    let mut v = picked.to_vec();
    v.sort_unstable();
    let holds = |a: i64, z: i64| {
        let s = a.div_euclid(step) * step + if a.rem_euclid(step) == 0 { 0 } else { step };
        s.checked_add(step - 1).is_some_and(|e| e <= z)
    };
    let mut at = lo;
    for (a, z) in v {
        if a > at && at <= hi && holds(at, (a - 1).min(hi)) {
            return true;
        }
        at = at.max(z.saturating_add(1));
    }
    at <= hi && holds(at, hi)
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

#[cfg(test)]
mod tests {
    use super::gap_holds;

    #[test]
    fn a_gap_holds_a_bucket_only_when_a_whole_aligned_one_fits() {
        // Buckets of 10 from 0.
        assert!(gap_holds(&[], 0, 9, 10));
        assert!(!gap_holds(&[], 1, 18, 10));
        assert!(gap_holds(&[], 1, 19, 10));
        assert!(!gap_holds(&[(0, 9)], 0, 9, 10));
        // Covered in the middle, whole buckets on either side.
        assert!(gap_holds(&[(10, 19)], 0, 29, 10));
        assert!(gap_holds(&[(0, 19)], 5, 29, 10));
        assert!(!gap_holds(&[(0, 19)], 5, 28, 10));
        assert!(!gap_holds(&[(20, 29), (0, 14)], 0, 29, 10));
        assert!(gap_holds(&[(30, 39), (0, 9)], 0, 39, 10));
        // Negative times are aligned the same way.
        assert!(gap_holds(&[], -10, -1, 10));
        assert!(!gap_holds(&[], -15, -2, 10));
        assert!(!gap_holds(&[], 5, 4, 10));
    }
}
