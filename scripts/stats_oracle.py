#!/usr/bin/env python3
"""Independent values for gocost compare's statistics, computed with scipy.

Writes testdata/compare/stats/scipy.json: fixed sample pairs (generated here from a fixed
seed) with the two-sided Mann-Whitney U test p-value scipy computes for each, the binomial
coverage of median confidence intervals, and sample medians. gocost's tests
(crates/compare/tests/stats.rs) compare their own numbers against this file.

    python3 -m venv /tmp/scipy && /tmp/scipy/bin/pip install scipy==1.17.1
    /tmp/scipy/bin/python scripts/stats_oracle.py            # rewrite the file
    /tmp/scipy/bin/python scripts/stats_oracle.py --check    # fail if it would change

Methods, per case (the same choice benchstat makes):
- no ties, both samples <= 50: scipy.stats.mannwhitneyu(method="exact");
- ties, both samples <= 25: the exact permutation distribution of U
  (scipy.stats.permutation_test, n_resamples=inf) — only for cases small enough to enumerate;
- otherwise: mannwhitneyu(method="asymptotic", use_continuity=True), whose variance has the
  tie correction.
"""
import json
import math
import random
import sys
from pathlib import Path

import numpy as np
import scipy
from scipy import stats

OUT = Path(__file__).resolve().parent.parent / "testdata/compare/stats/scipy.json"


def cases():
    rng = random.Random(20261123)
    out = []
    # (n1, n2, shift, rounding) — rounding to a grid makes ties.
    shapes = [
        (3, 3, 0.0, None), (4, 4, 2.0, None), (5, 5, 0.3, None), (5, 7, 0.5, None),
        (6, 6, 0.0, None), (8, 8, 0.4, None), (10, 10, 0.2, None), (10, 10, 1.0, None),
        (10, 12, 0.1, None), (20, 20, 0.3, None), (30, 25, 0.2, None), (50, 50, 0.1, None),
        (50, 50, 0.3, None), (51, 60, 0.2, None), (80, 80, 0.05, None), (120, 100, 0.1, None),
        (4, 4, 0.0, 0.5), (5, 5, 0.3, 0.5), (5, 6, 0.5, 1.0), (6, 6, 0.2, 0.25),
        (8, 8, 0.3, 0.5), (7, 9, 0.1, 1.0), (9, 9, 0.4, 0.5), (10, 10, 0.3, 0.5),
        (26, 30, 0.2, 0.5), (40, 40, 0.1, 0.25), (60, 60, 0.0, 1.0),
    ]
    for n1, n2, shift, grid in shapes:
        x = [rng.gauss(10.0, 1.0) for _ in range(n1)]
        y = [rng.gauss(10.0 + shift, 1.0) for _ in range(n2)]
        if grid is not None:
            x = [round(v / grid) * grid for v in x]
            y = [round(v / grid) * grid for v in y]
        out.append((x, y))
    # Benchmark-like: nanoseconds per op, a few identical values.
    out.append(([1726, 1723, 1707, 1707, 1713, 1729, 1736, 1707, 1705, 1774],
                [1423, 1416, 1411, 1413, 1412, 1426, 1422, 1424, 1447, 1425]))
    out.append(([3069, 3075, 3069, 3067, 3207, 3064, 3064, 3058, 3059, 3062],
                [3075, 3065, 3059, 3065, 3060, 3081, 3186, 3135, 3087, 3062]))
    return out


def u_stat(x, y, axis=-1):
    return stats.mannwhitneyu(x, y, axis=axis, method="asymptotic").statistic


def p_value(x, y):
    ties = len(set(x) | set(y)) < len(x) + len(y)
    n1, n2 = len(x), len(y)
    if not ties and n1 <= 50 and n2 <= 50:
        return float(stats.mannwhitneyu(x, y, method="exact").pvalue), "exact"
    if ties and n1 <= 25 and n2 <= 25:
        if math.comb(n1 + n2, n1) > 2_000_000:
            return None, "permutation (too large to enumerate)"
        r = stats.permutation_test((x, y), u_stat, permutation_type="independent",
                                   n_resamples=np.inf, alternative="two-sided")
        return float(r.pvalue), "permutation"
    r = stats.mannwhitneyu(x, y, method="asymptotic", use_continuity=True)
    return float(r.pvalue), "asymptotic"


def main():
    doc = {"generated_by": "scripts/stats_oracle.py", "scipy": scipy.__version__,
           "u_test": [], "median": [], "median_ci_coverage": []}
    for x, y in cases():
        p, method = p_value(x, y)
        if p is None:
            continue
        doc["u_test"].append({"x": x, "y": y, "p": p, "method": method})
        doc["median"].append({"x": x, "median": float(np.median(x))})
    # For every n: the probability that the population median lies between order statistics
    # lo and hi (1-based) is P(lo <= K < hi) for K ~ Binomial(n, 1/2). The test checks gocost's
    # interval for each n has at least 95 % coverage and reports the coverage it claims.
    for n in range(1, 61):
        # Coverage of any interval is a difference of two CDF values; store the CDF.
        cdf = [float(stats.binom.cdf(k, n, 0.5)) for k in range(-1, n + 1)]
        doc["median_ci_coverage"].append({"n": n, "binom_cdf_from_minus_1": cdf})
    text = json.dumps(doc, indent=1) + "\n"
    if "--check" in sys.argv:
        if OUT.read_text() != text:
            sys.exit(f"{OUT} differs from what scipy computes now")
        print(f"{OUT}: matches")
        return
    OUT.write_text(text)
    print(f"wrote {OUT}: {len(doc['u_test'])} U-test cases")


if __name__ == "__main__":
    main()
