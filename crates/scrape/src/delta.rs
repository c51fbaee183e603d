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

    #[test]
    fn a_counter_reset_is_a_restart() {
        assert!(matches!(
            delta(&p(100, 5, 7), &p(160, 1, 0)).unwrap(),
            Delta::Restarted(_)
        ));
    }
}
