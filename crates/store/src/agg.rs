//! How the profiles of a range add up.
//!
//! Profiles of events in an interval — CPU time, allocations, contentions (`cpu`, `allocs`,
//! `mutex`, `block`, and the `alloc_*` columns of `heap`, which the scraper stores as the
//! allocations since the previous scrape) — add up over a range. Snapshots of what a process
//! holds at one time — goroutines and the heap in use (`goroutine`, `goroutineleak`, the
//! `inuse_*` columns of `heap`) — do not: thirty snapshots of 2,900 goroutines are not
//! 87,000 goroutines. Over a range such a column is, per series (one target), the mean of
//! its snapshots, and series add up ([`Agg::Mean`], Pyroscope's `aggregationType=average`).
//! [`Agg::Latest`] (the last profile of each series) and [`Agg::Sum`] (pprof's plain merge of
//! everything) can be asked for.

use std::collections::{BTreeMap, HashMap};

use gocost_pprof::{Combiner, Profile};

use crate::query::Visit;
use crate::{Error, Selector, SeriesKey, Store, block, symtab};

/// How a query reads the stored profiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read {
    /// Each profile as stored, merged one by one by pprof's rules: the profile pprof's merge
    /// of them gives, sample for sample (a download for `go tool pprof`).
    Exact,
    /// Each series' profiles summed in stack space against their symbols first, one profile
    /// rebuilt per series and symbol table, then merged (docs/adr/0017): the same value for
    /// every stack (and label set, with `labels`; without, samples that differ only in
    /// their labels are one) for far less work — for reports.
    Summed { labels: bool },
}

impl Read {
    /// How a visit reads for it: (sample labels, summed per series and symbol table).
    pub(crate) fn labels_and_sum(self) -> (bool, bool) {
        match self {
            Read::Exact => (true, false),
            Read::Summed { labels } => (labels, true),
        }
    }
}

/// How the profiles of one series over a range combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Agg {
    /// pprof's plain merge: every value adds up.
    Sum,
    /// Snapshot columns ([`is_snapshot`]): the mean of each series' snapshots, then series
    /// add up. Other columns add up.
    Mean,
    /// The last profile of each series in the range; series add up.
    Latest,
}

impl Agg {
    /// The names the API takes: `mean`, `latest`, `sum`.
    pub const NAMES: [&'static str; 3] = ["mean", "latest", "sum"];

    pub fn parse(s: &str) -> Result<Agg, String> {
        match s {
            "mean" | "average" => Ok(Agg::Mean),
            "latest" => Ok(Agg::Latest),
            "sum" => Ok(Agg::Sum),
            _ => Err(format!("unknown agg {s:?}: use mean, latest or sum")),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Agg::Mean => "mean",
            Agg::Latest => "latest",
            Agg::Sum => "sum",
        }
    }
}

/// Whether a sample type of a profile kind is a snapshot (what a process holds at one
/// time) rather than a count of events in an interval.
pub fn is_snapshot(kind: &str, sample_type: &str) -> bool {
    match kind {
        "goroutine" | "goroutineleak" => true,
        "heap" => sample_type.starts_with("inuse_"),
        _ => false,
    }
}

/// Divides the snapshot columns of a series' merged profile by its profile count; samples
/// left with no non-zero value are dropped.
fn mean_of(kind: &str, mut p: Profile, n: u64) -> Profile {
    let r = 1.0 / n.max(1) as f64;
    let ratios: Vec<f64> = p
        .sample_type
        .iter()
        .map(|t| if is_snapshot(kind, &t.r#type) { r } else { 1.0 })
        .collect();
    p.scale_columns(&ratios);
    p
}

/// Profiles per series, merged as they come, with how many profiles they stand for.
type PerSeries = BTreeMap<SeriesKey, (Combiner, u64)>;

/// What [`series_means`] hands each block's (then the head's) per-series merges to.
type SeriesFold<'a> = dyn FnMut(PerSeries) -> Result<(), Error> + 'a;

/// Each series' profiles, as a visit folds them in its order, merged per series (a series'
/// merge in the order its profiles come), then each series' snapshot columns divided by its
/// profile count ([`mean_of`]): the series' means in key order. `visit` is called with the
/// fold to give each block's (and then the head's) per-series merges to. With `threads` > 1
/// the per-series merges run on that many threads beside the visit (a series always on the
/// same one), so the caller's thread only hands them over; the answer does not depend on
/// it, nor on which blocks hold which series.
fn series_means(
    threads: usize,
    visit: &mut dyn FnMut(&mut SeriesFold<'_>) -> Result<(), Error>,
) -> Result<Vec<Profile>, Error> {
    /// One thread's series.
    fn add(per: &mut PerSeries, k: SeriesKey, c: Combiner, n: u64) -> Result<(), Error> {
        let e = per.entry(k).or_default();
        e.1 += n;
        match c.finish() {
            Some(p) => e.0.push(p).map_err(Error::Merge),
            None => Ok(()),
        }
    }
    fn means(per: PerSeries) -> Vec<(SeriesKey, Profile)> {
        per.into_iter()
            .filter_map(|(k, (c, n))| {
                let p = mean_of(&k.kind, c.finish()?, n);
                Some((k, p))
            })
            .collect()
    }
    let mut out = if threads <= 1 {
        let mut per = PerSeries::new();
        visit(&mut |part| {
            for (k, (c, n)) in part {
                add(&mut per, k, c, n)?;
            }
            Ok(())
        })?;
        means(per)
    } else {
        let ctx = gocost_pprof::cancel::context();
        let lane = |k: &SeriesKey| {
            use std::hash::{Hash, Hasher};
            let mut h = std::hash::DefaultHasher::new();
            k.hash(&mut h);
            (h.finish() % threads as u64) as usize
        };
        std::thread::scope(|s| -> Result<_, Error> {
            let mut txs = Vec::new();
            let mut lanes = Vec::new();
            for _ in 0..threads {
                // A few blocks' worth ahead at most: a slow lane holds the visit back.
                let (tx, rx) = std::sync::mpsc::sync_channel::<(SeriesKey, Combiner, u64)>(8);
                let ctx = &ctx;
                lanes.push(s.spawn(move || {
                    ctx.run(|| {
                        let mut per = PerSeries::new();
                        for (k, c, n) in rx {
                            add(&mut per, k, c, n)?;
                        }
                        Ok::<_, Error>(means(per))
                    })
                }));
                txs.push(tx);
            }
            let visited = visit(&mut |part| {
                for (k, (c, n)) in part {
                    let to = &txs[lane(&k)];
                    // A lane that stopped has failed: its error is the answer.
                    if to.send((k, c, n)).is_err() {
                        return Err(Error::Merge(gocost_pprof::MergeError(
                            "a series merge stopped".into(),
                        )));
                    }
                }
                Ok(())
            });
            drop(txs);
            let mut out = Vec::new();
            for l in lanes {
                let done = l.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
                out.extend(done?);
            }
            visited?;
            Ok(out)
        })?
    };
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out.into_iter().map(|(_, p)| p).collect())
}

impl Store {
    /// The profile of matching series within `[from_ns, to_ns]` combined as `agg` says
    /// (`None` if nothing matched), read [`Read::Exact`]ly.
    pub fn query_agg(
        &self,
        sel: &Selector,
        from_ns: i64,
        to_ns: i64,
        agg: Agg,
    ) -> Result<Option<Profile>, Error> {
        self.query_agg_as(sel, from_ns, to_ns, agg, Read::Exact)
    }

    /// [`Store::query_agg`], the stored profiles read as `read` says.
    pub fn query_agg_as(
        &self,
        sel: &Selector,
        from_ns: i64,
        to_ns: i64,
        agg: Agg,
        read: Read,
    ) -> Result<Option<Profile>, Error> {
        let (labels, merge) = read.labels_and_sum();
        match agg {
            Agg::Sum => self.query_sum(sel, from_ns, to_ns, read),
            Agg::Mean => {
                let how = Visit {
                    use_rollup: Some(&|_, _| true),
                    labels,
                    keep: None,
                    merge,
                    totals: false,
                    latest: false,
                };
                let threads = crate::query::query_threads(self.opts.query_threads, usize::MAX);
                let means = series_means(threads, &mut |fold| {
                    self.visit_folded(
                        sel,
                        from_ns,
                        to_ns,
                        &how,
                        &PerSeries::new,
                        &|part, k, _, n, p| {
                            let e = part.entry(k.clone()).or_default();
                            e.1 += n;
                            e.0.push(p).map_err(Error::Merge)
                        },
                        fold,
                    )
                })?;
                crate::query::merge_in_order(means, threads)
            }
            Agg::Latest => {
                let latest = self.latest_times(sel, from_ns, to_ns)?;
                let (Some(&lo), Some(&hi)) = (latest.values().min(), latest.values().max()) else {
                    return Ok(None);
                };
                let mut all = Combiner::new();
                let keep = |k: &SeriesKey, t: i64| latest.get(k) == Some(&t);
                let how = Visit {
                    labels,
                    keep: Some(&keep),
                    latest: true,
                    ..Visit::default()
                };
                self.visit(sel, lo, hi, &how, &mut |_, _, _, p| {
                    all.push(p).map_err(Error::Merge)
                })?;
                Ok(all.finish())
            }
        }
    }

    /// The time of each matching series' last profile within `[from, to]`. Blocks are
    /// read only where a series' last profile in the block lies after `to`.
    fn latest_times(
        &self,
        sel: &Selector,
        from: i64,
        to: i64,
    ) -> Result<HashMap<SeriesKey, i64>, Error> {
        // The other instances' heads, each series' last profile there.
        let how = Visit {
            latest: true,
            ..Visit::default()
        };
        let remote = self.ask_peers(&crate::query::head_request(sel, from, to, &how))?;
        let (mut latest, blocks) = {
            let g = self.lock();
            let mut latest = HashMap::new();
            for (k, v) in g.head.iter().filter(|(k, _)| sel.matches(k)) {
                let hi = v.partition_point(|e| e.time_ns <= to);
                if let Some(e) = hi.checked_sub(1).map(|i| &v[i])
                    && e.time_ns >= from
                {
                    latest.insert(k.clone(), e.time_ns);
                }
            }
            for (k, t, _, _) in &remote.items {
                if sel.matches(k) && (from..=to).contains(t) {
                    let e = latest.entry(k.clone()).or_insert(*t);
                    *e = (*e).max(*t);
                }
            }
            (latest, remote.blocks(&g.blocks, from, to))
        };
        for b in &blocks {
            for (si, key) in b.keys.iter().enumerate() {
                let sm = &b.meta.series[si];
                if !sel.matches(key) || sm.min_time_ns > to || sm.max_time_ns < from {
                    continue;
                }
                if latest
                    .get(key)
                    .is_some_and(|&t| t >= sm.max_time_ns.min(to))
                {
                    continue;
                }
                let t = if sm.max_time_ns <= to {
                    sm.max_time_ns
                } else {
                    let raw = self.section(b, &sm.raw)?;
                    let mut best = None;
                    for bytes in block::parse_raw(&raw).map_err(|e| crate::block_err(&b.name, e))? {
                        let t =
                            symtab::stored_time(bytes).map_err(|e| crate::block_err(&b.name, e))?;
                        if (from..=to).contains(&t) {
                            best = best.max(Some(t));
                        }
                    }
                    match best {
                        Some(t) => t,
                        None => continue,
                    }
                };
                let e = latest.entry((**key).clone()).or_insert(t);
                *e = (*e).max(t);
            }
        }
        Ok(latest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_columns() {
        assert!(is_snapshot("goroutine", "goroutine"));
        assert!(is_snapshot("heap", "inuse_space"));
        assert!(!is_snapshot("heap", "alloc_space"));
        assert!(!is_snapshot("allocs", "inuse_space"));
        assert!(!is_snapshot("cpu", "samples"));
        for n in Agg::NAMES {
            assert_eq!(Agg::parse(n).map(Agg::name), Ok(n));
        }
        assert!(Agg::parse("max").is_err());
    }
}
