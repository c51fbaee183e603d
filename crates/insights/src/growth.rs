//! The one rule for "this keeps growing" (goroutine counts, heap in use): over points
//! `(seconds, value)` spanning at least `min_span_secs`, the Theil–Sen slope is at least
//! `min_rate_per_hour`, the value rose by at least `min_growth` (median of the last three
//! points minus median of the first three), the later half still grows at half the slope or
//! more (a plateau's is about zero), and at most a quarter of the steps go down (churn).

/// Thresholds of [`sustained`].
#[derive(Debug, Clone)]
pub struct Rule {
    pub min_span_secs: f64,
    pub min_points: usize,
    pub min_rate_per_hour: f64,
    pub min_growth: f64,
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
    Some(Growth {
        rate_per_hour,
        confidence: (r_squared(pts) * (1.0 - drop_frac) * (0.5 + 0.5 * watched)).clamp(0.0, 0.99),
    })
}
