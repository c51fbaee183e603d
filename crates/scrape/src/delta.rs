//! Cumulative profiles (allocs, mutex, block count since process start) become deltas
//! between consecutive scrapes, the way `net/http/pprof`'s `?seconds=N` does it.

use gocost_pprof::{MergeError, Profile, merge};

/// Σ of each value column.
fn totals(p: &Profile) -> Vec<i64> {
    let mut t = vec![0i64; p.sample_type.len()];
    for s in &p.sample {
        for (a, b) in t.iter_mut().zip(&s.value) {
            *a = a.wrapping_add(*b);
        }
    }
    t
}

/// What to store for a cumulative profile given the previous scrape of the same series.
#[derive(Debug)]
pub enum Delta {
    /// The difference `cur - prev`, with `time_nanos` = now and `duration_nanos` = the gap.
    Diff(Profile),
    /// A counter went down: the process restarted, so `cur` itself is what happened since.
    Restarted(Profile),
}

/// Computes `cur - prev` with pprof's merge rules (samples that cancel out disappear).
pub fn delta(prev: &Profile, cur: &Profile) -> Result<Delta, MergeError> {
    let (tp, tc) = (totals(prev), totals(cur));
    if prev.sample_type != cur.sample_type || tc.iter().zip(&tp).any(|(c, p)| c < p) {
        return Ok(Delta::Restarted(cur.clone()));
    }
    let mut base = prev.clone();
    base.scale(-1.0);
    let mut d = merge::combine(vec![cur.clone(), base])?;
    d.time_nanos = cur.time_nanos;
    d.duration_nanos = cur.time_nanos.saturating_sub(prev.time_nanos).max(0);
    d.default_sample_type = cur.default_sample_type.clone();
    Ok(Delta::Diff(d))
}

/// What to store for a scraped heap profile: its `inuse_*` columns as scraped (what the
/// process held at its last GC), its `alloc_*` columns — counts since the process started —
/// as the allocations since the previous scrape (what the `allocs` kind stores), so that
/// over a range they add up to the allocations made in it. Without a previous scrape the
/// allocations are unknown (0); after a restart they are those since the restart. This is
/// also what Pyroscope's Go agents push.
pub fn heap(prev: Option<&Profile>, cur: &Profile) -> Result<Profile, MergeError> {
    let alloc: Vec<bool> = cur
        .sample_type
        .iter()
        .map(|t| !gocost_store::is_snapshot("heap", &t.r#type))
        .collect();
    let only = |p: &Profile, keep_alloc: bool| {
        let mut p = p.clone();
        let keep: Vec<f64> = alloc
            .iter()
            .map(|&a| if a == keep_alloc { 1.0 } else { 0.0 })
            .collect();
        p.scale_columns(&keep);
        p
    };
    let Some(prev) = prev.filter(|p| p.sample_type == cur.sample_type) else {
        return Ok(only(cur, false));
    };
    let (tp, tc) = (totals(prev), totals(cur));
    let restarted = alloc
        .iter()
        .zip(tc.iter().zip(&tp))
        .any(|(&a, (c, p))| a && c < p);
    if restarted {
        return Ok(cur.clone());
    }
    let mut base = only(prev, true);
    base.scale(-1.0);
    let mut d = merge::combine(vec![cur.clone(), base])?;
    d.time_nanos = cur.time_nanos;
    d.duration_nanos = cur.time_nanos.saturating_sub(prev.time_nanos).max(0);
    d.default_sample_type = cur.default_sample_type.clone();
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use gocost_pprof::{Function, Line, Location, Sample, ValueType};

    fn p(t: i64, a: i64, b: i64) -> Profile {
        let f = |id, n: &str| Function {
            id,
            name: n.into(),
            system_name: n.into(),
            ..Default::default()
        };
        let l = |id, fi| Location {
            id,
            line: vec![Line {
                function: fi,
                line: 1,
                column: 0,
            }],
            ..Default::default()
        };
        Profile {
            sample_type: vec![
                ValueType::new("contentions", "count"),
                ValueType::new("delay", "nanoseconds"),
            ],
            period_type: ValueType::new("contentions", "count"),
            period: 1,
            time_nanos: t,
            function: vec![f(1, "main.a"), f(2, "main.b")],
            location: vec![l(1, 0), l(2, 1)],
            sample: vec![
                Sample {
                    location: vec![0],
                    value: vec![a, a * 10],
                    label: vec![],
                },
                Sample {
                    location: vec![1],
                    value: vec![b, b * 10],
                    label: vec![],
                },
            ],
            ..Default::default()
        }
    }

    #[test]
    fn difference_of_consecutive_scrapes() {
        let Delta::Diff(d) = delta(&p(100, 5, 7), &p(160, 9, 7)).unwrap() else {
            panic!("restart?")
        };
        assert_eq!(d.sample.len(), 1, "the unchanged sample cancels out");
        assert_eq!(d.sample[0].value, vec![4, 40]);
        assert_eq!((d.time_nanos, d.duration_nanos), (160, 60));
    }

    fn heap_p(t: i64, alloc: [i64; 2], inuse: [i64; 2]) -> Profile {
        let mut p = p(t, 0, 0);
        p.sample_type = vec![
            ValueType::new("alloc_space", "bytes"),
            ValueType::new("inuse_space", "bytes"),
        ];
        for (i, s) in p.sample.iter_mut().enumerate() {
            s.value = vec![alloc[i], inuse[i]];
        }
        p
    }

    fn values(p: &Profile) -> Vec<Vec<i64>> {
        let mut v: Vec<Vec<i64>> = p.sample.iter().map(|s| s.value.clone()).collect();
        v.sort();
        v
    }

    #[test]
    fn heap_keeps_in_use_and_stores_allocations_since_the_last_scrape() {
        let first = heap(None, &heap_p(100, [50, 70], [10, 0])).unwrap();
        assert_eq!(
            values(&first),
            vec![vec![0, 10]],
            "no allocations known yet"
        );
        let prev = heap_p(100, [50, 70], [10, 0]);
        let d = heap(Some(&prev), &heap_p(160, [80, 70], [4, 9])).unwrap();
        // main.a allocated 30 more and holds 4; main.b allocated nothing and holds 9.
        assert_eq!(values(&d), vec![vec![0, 9], vec![30, 4]]);
        assert_eq!((d.time_nanos, d.duration_nanos), (160, 60));
        let restarted = heap(Some(&prev), &heap_p(160, [5, 1], [3, 1])).unwrap();
        assert_eq!(values(&restarted), vec![vec![1, 1], vec![5, 3]]);
    }

    #[test]
    fn a_counter_reset_is_a_restart() {
        assert!(matches!(
            delta(&p(100, 5, 7), &p(160, 1, 0)).unwrap(),
            Delta::Restarted(_)
        ));
    }
}
