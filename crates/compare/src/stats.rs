//! The statistics benchstat uses (golang.org/x/perf/benchmath, "assume nothing"): the sample
//! median with a distribution-free confidence interval from order statistics, and the
//! two-sided Mann–Whitney U test — exact (conditional on ties) for small samples, the normal
//! approximation with tie and continuity corrections otherwise. Same inputs, same numbers:
//! `testdata/compare/stats` holds values computed by scipy and by benchstat's own library.

/// benchstat's confidence level for summaries.
pub const CONFIDENCE: f64 = 0.95;

/// Largest sample sizes for which the exact U distribution is used (benchstat's limits).
const EXACT_LIMIT: usize = 50;
const EXACT_LIMIT_TIES: usize = 25;

/// The median of a sorted, non-empty sample, as benchstat computes it (quantile
/// definition R8 of Hyndman & Fan at q = ½, with the same floating-point steps).
pub fn median(sorted: &[f64]) -> f64 {
    let Some(&last) = sorted.last() else {
        return f64::NAN;
    };
    let n = sorted.len() as f64;
    let pos = 1.0 / 3.0 + 0.5 * (n + 1.0 / 3.0);
    let k = pos.trunc();
    let frac = pos - k;
    let k = k as usize;
    if k == 0 {
        sorted[0]
    } else if k >= sorted.len() {
        last
    } else {
        sorted[k - 1] + frac * (sorted[k] - sorted[k - 1])
    }
}

/// The confidence interval of a median as two 1-based order statistics of a sample of `n`:
/// `lo == 0` means −∞ and `hi == n + 1` means +∞ (the sample is too small).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MedianCi {
    pub lo: usize,
    pub hi: usize,
    /// The interval's actual confidence (at least the requested one).
    pub confidence: f64,
}

/// C(n, k) as Go's go-moremath computes it: exact up to n = 20, else through lgamma.
fn choose(n: usize, k: usize) -> f64 {
    if k == 0 || k == n {
        return 1.0;
    }
    if k > n {
        return 0.0;
    }
    if n <= 20 {
        let mut num: i64 = 1;
        for v in (n - (k - 1))..=n {
            num *= v as i64;
        }
        let den: i64 = (1..=k as i64).product();
        return (num / den) as f64;
    }
    let (a, b, c) = (
        libm::lgamma((n + 1) as f64),
        libm::lgamma((k + 1) as f64),
        libm::lgamma((n - k + 1) as f64),
    );
    libm::exp(a - b - c)
}

fn binom_half_pmf(n: usize, k: i64) -> f64 {
    if k < 0 || k > n as i64 {
        return 0.0;
    }
    let k = k as usize;
    choose(n, k) * 0.5f64.powi(k as i32) * 0.5f64.powi((n - k) as i32)
}

/// Φ, the standard normal CDF.
pub fn norm_cdf(z: f64) -> f64 {
    libm::erfc(-z / std::f64::consts::SQRT_2) / 2.0
}

/// Φ⁻¹: Acklam's rational approximation refined by one step of Halley's method (accurate
/// to about 1e-15).
pub fn norm_inv_cdf(p: f64) -> f64 {
    if p.is_nan() || !(0.0..=1.0).contains(&p) {
        return f64::NAN;
    }
    if p == 0.0 {
        return f64::NEG_INFINITY;
    }
    if p == 1.0 {
        return f64::INFINITY;
    }
    const A: [f64; 6] = [
        -3.969683028665376e+01,
        2.209460984245205e+02,
        -2.759285104469687e+02,
        1.38357751867269e+02,
        -3.066479806614716e+01,
        2.506628277459239e+00,
    ];
    const B: [f64; 5] = [
        -5.447609879822406e+01,
        1.615858368580409e+02,
        -1.556989798598866e+02,
        6.680131188771972e+01,
        -1.328068155288572e+01,
    ];
    const C: [f64; 6] = [
        -7.784894002430293e-03,
        -3.223964580411365e-01,
        -2.400758277161838e+00,
        -2.549732539343734e+00,
        4.374664141464968e+00,
        2.938163982698783e+00,
    ];
    const D: [f64; 4] = [
        7.784695709041462e-03,
        3.224671290700398e-01,
        2.445134137142996e+00,
        3.754408661907416e+00,
    ];
    const P_LOW: f64 = 0.02425;
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    let x = if p < P_LOW {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - P_LOW {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    };
    let e = norm_cdf(x) - p;
    let u = e * (2.0 * std::f64::consts::PI).sqrt() * (x * x / 2.0).exp();
    x - u / (1.0 + x * u / 2.0)
}

/// The order statistics bounding a `confidence` interval of the median of `n` values:
/// exact binomial sums for n ≤ 30 (growing from the mode, left-biased on ties), the normal
/// approximation with continuity correction above.
pub fn median_ci(n: usize, confidence: f64) -> MedianCi {
    if confidence >= 1.0 {
        return MedianCi {
            lo: 0,
            hi: n + 1,
            confidence: 1.0,
        };
    }
    let (l, r, conf);
    if n <= 30 {
        // k = how many sample values lie below the population median ~ Binomial(n, ½);
        // [l, r) is the set of k summed so far.
        let x = ((n + 1) as f64 * 0.5).ceil() as i64 - 1;
        let mut accum = binom_half_pmf(n, x);
        let (mut lo, mut hi) = (x, x + 1);
        let mut lp = binom_half_pmf(n, lo - 1);
        let mut rp = binom_half_pmf(n, hi);
        while accum < confidence && (lp > 0.0 || rp > 0.0) {
            if lp >= rp {
                accum += lp;
                lo -= 1;
                lp = binom_half_pmf(n, lo - 1);
            } else {
                accum += rp;
                hi += 1;
                rp = binom_half_pmf(n, hi);
            }
        }
        (l, r, conf) = (lo, hi, accum);
    } else {
        let mu = n as f64 * 0.5;
        let sigma = (n as f64 * 0.25).sqrt();
        let cdf = |x: f64| norm_cdf((x - mu) / sigma);
        let l1 = mu + sigma * norm_inv_cdf((1.0 - confidence) / 2.0);
        let r1 = 2.0 * mu - l1;
        // Round out to the k ± ½ bands of the discrete distribution.
        let lo = ((l1 - 0.5).floor() + 0.5).floor() as i64 + 1;
        let mut hi = ((r1 - 0.5).ceil() + 0.5).floor() as i64 + 1;
        let band = |l: i64, r: i64| cdf(r as f64 - 0.5) - cdf(l as f64 - 0.5);
        let mut c = band(lo, hi);
        // A left-biased interval one order shorter, if it still has the confidence.
        let biased = band(lo, hi - 1);
        if biased >= confidence && biased < c {
            c = biased;
            hi -= 1;
        }
        if lo <= 0 && hi > n as i64 {
            c = 1.0;
        }
        (l, r, conf) = (lo, hi, c);
    }
    MedianCi {
        lo: l.max(0) as usize,
        hi: (r.min(n as i64 + 1)).max(0) as usize,
        confidence: conf,
    }
}

/// A sample summarised as benchstat does: the median and its confidence interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub center: f64,
    pub lo: f64,
    pub hi: f64,
    pub confidence: f64,
}

/// Summarises a sorted, non-empty sample.
pub fn summarize(sorted: &[f64], confidence: f64) -> Summary {
    let ci = median_ci(sorted.len(), confidence);
    let lo = if ci.lo < 1 {
        f64::NEG_INFINITY
    } else {
        sorted[ci.lo - 1]
    };
    let hi = if ci.hi > sorted.len() {
        f64::INFINITY
    } else {
        sorted[ci.hi - 1]
    };
    Summary {
        center: median(sorted),
        lo,
        hi,
        confidence: ci.confidence,
    }
}

impl Summary {
    /// The interval as benchstat prints it after "±": the larger relative distance from the
    /// median to a bound, as a whole percentage; "∞" when unbounded, "?" when a bound has
    /// another sign than the median.
    pub fn pct_range(&self) -> String {
        if self.lo.is_infinite() || self.hi.is_infinite() {
            return "∞".into();
        }
        let sign = |v: f64| {
            if v > 0.0 {
                1
            } else if v < 0.0 {
                -1
            } else {
                0
            }
        };
        let c = sign(self.center);
        if c != sign(self.lo) || c != sign(self.hi) {
            return "?".into();
        }
        if self.center == 0.0 {
            return "0%".into();
        }
        let v = (self.hi / self.center - 1.0).max(1.0 - self.lo / self.center);
        format!("{:.0}%", 100.0 * v)
    }
}

/// The smallest n for which a median interval at `confidence` is bounded on both sides
/// (benchstat's hint when it is not), or `None` above 50.
pub fn samples_for_ci(confidence: f64) -> Option<usize> {
    (2..=50).find(|&n| {
        let ci = median_ci(n, confidence);
        ci.lo > 0 && ci.hi <= n
    })
}

/// The smallest equal sample size whose most extreme outcome is significant at `alpha`
/// (two-sided exact U test: 2 / C(2n, n)), or `None` above 9 — benchstat's hint.
pub fn samples_for_u_test(alpha: f64) -> Option<usize> {
    (1..=9).find(|&n| 2.0 / exact_choose(2 * n, n) as f64 <= alpha)
}

fn exact_choose(n: usize, k: usize) -> u128 {
    let k = k.min(n - k);
    let mut c: u128 = 1;
    for i in 0..k {
        // Exact at every step: c * (n - i) is divisible by (i + 1).
        c = c * (n - i) as u128 / (i + 1) as u128;
    }
    c
}

/// The result of a two-sided Mann–Whitney U test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UTest {
    /// U of the first sample (ties count ½).
    pub u: f64,
    pub p: f64,
    pub n1: usize,
    pub n2: usize,
    /// Whether the exact distribution was used (else the normal approximation).
    pub exact: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UTestError {
    /// A sample is empty.
    SampleSize,
    /// Every value in both samples is the same: the test says nothing.
    AllEqual,
}

impl std::fmt::Display for UTestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            UTestError::SampleSize => "sample is too small",
            UTestError::AllEqual => "all samples are equal",
        })
    }
}

/// Two-sided Mann–Whitney U test of "x and y come from the same distribution".
pub fn mann_whitney_u(x: &[f64], y: &[f64]) -> Result<UTest, UTestError> {
    let (n1, n2) = (x.len(), y.len());
    if n1 == 0 || n2 == 0 {
        return Err(UTestError::SampleSize);
    }
    // Merge, remembering which sample each value came from.
    let mut merged: Vec<(f64, bool)> = x
        .iter()
        .map(|&v| (v, true))
        .chain(y.iter().map(|&v| (v, false)))
        .collect();
    merged.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Tie groups: (first rank, last rank) of each run of equal values; R1 in half units.
    let mut groups: Vec<(usize, usize)> = Vec::new();
    let mut twice_r1: u64 = 0;
    let mut i = 0;
    while i < merged.len() {
        let v = merged[i].0;
        let start = i;
        let mut from_x = 0u64;
        while i < merged.len() && merged[i].0 == v {
            from_x += merged[i].1 as u64;
            i += 1;
        }
        let (first, last) = (start + 1, i);
        twice_r1 += from_x * (first + last) as u64;
        groups.push((first, last));
    }
    let has_ties = groups.len() < merged.len();
    let nn = (n1 * n2) as f64;
    let u1 = twice_r1 as f64 / 2.0 - (n1 * (n1 + 1)) as f64 / 2.0;
    let u2 = nn - u1;
    let exact = if has_ties {
        n1 <= EXACT_LIMIT_TIES && n2 <= EXACT_LIMIT_TIES
    } else {
        n1 <= EXACT_LIMIT && n2 <= EXACT_LIMIT
    };
    let p = if exact {
        if groups.len() == 1 {
            return Err(UTestError::AllEqual);
        }
        if u1 == u2 {
            // The distribution is symmetric about U: the two tails together are everything.
            1.0
        } else {
            2.0 * u_cdf(n1, n2, &groups, u1.min(u2))
        }
    } else {
        let t: f64 = groups
            .iter()
            .map(|&(a, b)| {
                let t = (b - a + 1) as f64;
                t * t * t - t
            })
            .sum();
        let n = (n1 + n2) as f64;
        let sigma = (nn * ((n + 1.0) - t / (n * (n - 1.0))) / 12.0).sqrt();
        if sigma == 0.0 {
            return Err(UTestError::AllEqual);
        }
        let mut numer = u1 - nn / 2.0;
        if numer != 0.0 {
            numer -= numer.signum() * 0.5; // continuity correction
        }
        let z = numer / sigma;
        2.0 * norm_cdf(z).min(1.0 - norm_cdf(z))
    };
    Ok(UTest {
        u: u1,
        p,
        n1,
        n2,
        exact,
    })
}

/// P(U ≤ u) under the null hypothesis, conditional on the tie groups: every choice of which
/// n1 of the n1 + n2 ranked values belong to the first sample is equally likely. Counted
/// exactly (u128) by dynamic programming over the tie groups.
fn u_cdf(n1: usize, n2: usize, groups: &[(usize, usize)], u: f64) -> f64 {
    // U1 = R1 − n1(n1+1)/2, so U1 ≤ u ⇔ 2·R1 ≤ 2u + n1(n1+1).
    let bound = (2.0 * u) as usize + n1 * (n1 + 1);
    let width = bound + 1;
    let total = n1 + n2;
    // ways[j][w]: choices of j values so far with 2·(their rank sum) = w, as f64 (counts
    // reach C(100, 50) ≈ 1e29; f64 keeps 16 significant digits of each, plenty for p).
    // [lo[j], hi[j]] is where row j can be non-zero, so loops skip the zeros.
    let mut ways = vec![0f64; (n1 + 1) * width];
    ways[0] = 1.0;
    let (mut lo, mut hi) = (vec![usize::MAX; n1 + 1], vec![0usize; n1 + 1]);
    (lo[0], hi[0]) = (0, 0);
    let mut taken = 0; // values seen so far
    for &(first, last) in groups {
        let t = last - first + 1;
        let two_mid = first + last; // 2 × the group's mid-rank
        let jmax = (taken + t).min(n1);
        // Rows that can no longer reach n1 with the values left are dead.
        let jmin = n1.saturating_sub(total - taken - t).max(1);
        // Update in place from the top so that each group is used once.
        for j in (jmin..=jmax).rev() {
            let mut binom = 1.0; // C(t, k), built up as k grows
            for k in 1..=t.min(j) {
                binom = binom * (t - k + 1) as f64 / k as f64;
                let add = k * two_mid;
                let src_row = j - k;
                if add > bound || lo[src_row] > hi[src_row] {
                    continue;
                }
                let from = lo[src_row] + add;
                let to = (hi[src_row] + add).min(bound);
                if from > to {
                    continue;
                }
                let (src, dst) = (src_row * width, j * width);
                for w in from..=to {
                    ways[dst + w] += ways[src + w - add] * binom;
                }
                lo[j] = lo[j].min(from);
                hi[j] = hi[j].max(to);
            }
        }
        taken += t;
    }
    let hits: f64 = ways[n1 * width..].iter().sum();
    hits / exact_choose(total, n1) as f64
}

/// The geometric mean of positive values (NaN when a value is not positive or there are
/// none), accumulated as benchstat does.
pub fn geomean(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    let mut m = 0.0;
    for (i, &x) in xs.iter().enumerate() {
        if x <= 0.0 {
            return f64::NAN;
        }
        m += (x.ln() - m) / (i + 1) as f64;
    }
    m.exp()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_samples() {
        assert_eq!(median(&[1.0, 2.0, 9.0]), 2.0);
        assert_eq!(median(&[1.0, 2.0, 3.0, 10.0]), 2.5);
        assert_eq!(median(&[4.0]), 4.0);
    }

    #[test]
    fn tiny_samples_have_unbounded_intervals() {
        let s = summarize(&[1.0, 2.0, 3.0], CONFIDENCE);
        assert_eq!(s.pct_range(), "∞");
        assert_eq!(samples_for_ci(CONFIDENCE), Some(6));
        assert_eq!(samples_for_u_test(0.05), Some(4));
    }

    #[test]
    fn all_equal_is_an_error_not_a_p_value() {
        assert_eq!(
            mann_whitney_u(&[3.0, 3.0], &[3.0, 3.0, 3.0]),
            Err(UTestError::AllEqual)
        );
        assert_eq!(mann_whitney_u(&[], &[1.0]), Err(UTestError::SampleSize));
    }

    #[test]
    fn separated_samples_reach_the_minimum_p() {
        let r = mann_whitney_u(&[1.0, 2.0, 3.0, 4.0], &[5.0, 6.0, 7.0, 8.0]).unwrap();
        assert_eq!(r.u, 0.0);
        assert!((r.p - 2.0 / 70.0).abs() < 1e-15);
    }
}
