//! The one rule for "this keeps growing" (goroutine counts, heap in use): over points
//! `(seconds, value)` spanning at least `min_span_secs`, the Theil–Sen slope is at least
//! `min_rate_per_hour`, the value rose by at least `min_growth` (median of the last three
//! points minus median of the first three), the later half still grows at half the slope or
//! more (a plateau's is about zero), at most a quarter of the steps go down (churn), and the
//! confidence is at least `min_confidence` (noisy series that only drift upwards, such as a
//! buffer that fills slowly on a busy machine, score far below a steady leak).

/// Thresholds of [`sustained`].
#[derive(Debug, Clone)]
pub struct Rule {
    pub min_span_secs: f64,
    pub min_points: usize,
    pub min_rate_per_hour: f64,
    pub min_growth: f64,
    /// Growth whose [`Growth::confidence`] is lower is not reported.
    pub min_confidence: f64,
}

/// Sustained growth found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Growth {
    pub rate_per_hour: f64,
    /// 0..0.99: linearity (R²) × steadiness (share of steps that do not go down) × how long
    /// it was watched (full weight from two minutes on).
    pub confidence: f64,
}

/// Median of pairwise slopes (per second).
pub fn theil_sen(pts: &[(f64, f64)]) -> f64 {
    let mut slopes = Vec::with_capacity(pts.len() * pts.len() / 2);
    for i in 0..pts.len() {
        for j in i + 1..pts.len() {
            let dt = pts[j].0 - pts[i].0;
            if dt > 0.0 {
                slopes.push((pts[j].1 - pts[i].1) / dt);
            }
        }
    }
    if slopes.is_empty() {
        return 0.0;
    }
    slopes.sort_by(f64::total_cmp);
    let n = slopes.len();
    if n % 2 == 1 {
        slopes[n / 2]
    } else {
        (slopes[n / 2 - 1] + slopes[n / 2]) / 2.0
    }
}

/// R² of the least-squares line through the points.
fn r_squared(pts: &[(f64, f64)]) -> f64 {
    let n = pts.len() as f64;
    let (mx, my) = (
        pts.iter().map(|p| p.0).sum::<f64>() / n,
        pts.iter().map(|p| p.1).sum::<f64>() / n,
    );
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for &(x, y) in pts {
        sxy += (x - mx) * (y - my);
        sxx += (x - mx) * (x - mx);
        syy += (y - my) * (y - my);
    }
    if sxx == 0.0 || syy == 0.0 {
        return 0.0;
    }
    (sxy * sxy) / (sxx * syy)
}

/// Whether the points show sustained growth under `rule`.
pub fn sustained(pts: &[(f64, f64)], rule: &Rule) -> Option<Growth> {
    let span = pts.last()?.0 - pts.first()?.0;
    if pts.len() < rule.min_points || span < rule.min_span_secs {
        return None;
    }
    let slope = theil_sen(pts);
    let recent = theil_sen(&pts[pts.len() / 2..]);
    let k = 3.min(pts.len() / 2).max(1);
    let med = |xs: &[(f64, f64)]| {
        let mut v: Vec<f64> = xs.iter().map(|p| p.1).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let rise = med(&pts[pts.len() - k..]) - med(&pts[..k]);
    let drops = pts.windows(2).filter(|w| w[1].1 < w[0].1).count();
    let drop_frac = drops as f64 / (pts.len() - 1) as f64;
    let rate_per_hour = slope * 3600.0;
    if rate_per_hour < rule.min_rate_per_hour
        || rise < rule.min_growth
        || recent < 0.5 * slope
        || drop_frac > 0.25
    {
        return None;
    }
    let watched = (span / 120.0).min(1.0);
    let confidence = (r_squared(pts) * (1.0 - drop_frac) * (0.5 + 0.5 * watched)).clamp(0.0, 0.99);
    (confidence >= rule.min_confidence).then_some(Growth {
        rate_per_hour,
        confidence,
    })
}

/// Where a snapshot falls in time order: its time, then the order it came in (a history
/// is folded from snapshots in any order).
pub(crate) type At = (i64, u32);

/// The time axis of a history folded from snapshots in any order: the snapshots it is made
/// of (all, or those that count) sorted by [`At`], in seconds since the earliest snapshot.
pub(crate) struct Timeline {
    secs: Vec<f64>,
    /// Per snapshot pushed: its place on the axis, if on it.
    rank: Vec<Option<usize>>,
    last: Option<u32>,
}

impl Timeline {
    /// The axis of the snapshots at `times` (in the order pushed) for which `on` holds.
    pub(crate) fn new(times: &[i64], on: impl Fn(usize) -> bool) -> Timeline {
        let t0 = times.iter().copied().min().unwrap_or(0);
        let mut order: Vec<u32> = (0..times.len() as u32)
            .filter(|&i| on(i as usize))
            .collect();
        order.sort_by_key(|&i| (times[i as usize], i));
        let mut rank = vec![None; times.len()];
        for (r, &i) in order.iter().enumerate() {
            rank[i as usize] = Some(r);
        }
        Timeline {
            secs: order
                .iter()
                .map(|&i| (times[i as usize] - t0) as f64 / 1000.0)
                .collect(),
            rank,
            last: order.last().copied(),
        }
    }

    /// A series' points: its `(snapshot, value)`s where it was seen, 0 on the rest of the axis.
    pub(crate) fn points(&self, values: &[(u32, i64)]) -> Vec<(f64, f64)> {
        let mut pts: Vec<(f64, f64)> = self.secs.iter().map(|&t| (t, 0.0)).collect();
        for &(i, v) in values {
            if let Some(r) = self.rank[i as usize] {
                pts[r].1 = v as f64;
            }
        }
        pts
    }

    /// The latest snapshot on the axis.
    pub(crate) fn last(&self) -> Option<u32> {
        self.last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule() -> Rule {
        Rule {
            min_span_secs: 30.0,
            min_points: 5,
            min_rate_per_hour: 4.0,
            min_growth: 4.0,
            min_confidence: 0.3,
        }
    }

    fn pts(values: &[f64]) -> Vec<(f64, f64)> {
        values
            .iter()
            .enumerate()
            .map(|(i, &v)| (2.0 * i as f64, v))
            .collect()
    }

    #[test]
    fn steady_growth_is_confident() {
        let v: Vec<f64> = (0..21).map(|i| f64::from(i) * 1.5).collect();
        let g = sustained(&pts(&v), &rule()).expect("a straight line grows");
        assert!(g.confidence > 0.6, "{g:?}");
        assert_eq!(g.rate_per_hour, 1.5 / 2.0 * 3600.0);
    }

    /// A buffer filling in fits and starts through sampling noise (as a ring of 32 KiB
    /// buffers does on a busy machine): it passes the slope, rise, later-half and churn
    /// rules, and only its confidence (≈ 0.05) tells it from growth.
    #[test]
    fn noisy_drift_is_below_the_confidence_floor() {
        let v = [
            2., 2., 2., 8., 8., 8., 1., 1., 1., 1., 8., 8., 8., 2., 2., 2., 3., 3., 9., 9., 9.,
        ];
        let p = pts(&v);
        let lenient = Rule {
            min_confidence: 0.0,
            ..rule()
        };
        let g = sustained(&p, &lenient).expect("the other rules pass");
        assert!(g.confidence < 0.1, "{g:?}");
        assert_eq!(sustained(&p, &rule()), None);
    }
}
