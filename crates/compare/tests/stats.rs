//! gocost's statistics against values computed elsewhere on fixed inputs:
//! `testdata/compare/stats/scipy.json` (scipy; `scripts/stats_oracle.py`) and
//! `testdata/compare/stats/benchstat.json` (benchstat's own statistics library; see the
//! README there for the command).

use gocost_compare::stats;
use serde_json::Value;

fn load(name: &str) -> Value {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/compare/stats")
        .join(name);
    serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * a.abs().max(b.abs()) + 1e-300
}

#[test]
fn u_test_p_values_match_scipy() {
    let doc = load("scipy.json");
    let cases = doc["u_test"].as_array().unwrap();
    assert!(cases.len() >= 25);
    let mut methods = std::collections::BTreeSet::new();
    for (i, c) in cases.iter().enumerate() {
        let (x, y) = (floats(&c["x"]), floats(&c["y"]));
        let want = c["p"].as_f64().unwrap();
        let method = c["method"].as_str().unwrap();
        let got = stats::mann_whitney_u(&x, &y).unwrap();
        // The exact methods agree to rounding; the normal approximations too.
        assert!(
            close(got.p, want, 1e-9),
            "case {i} ({method}, n={}+{}): gocost p={} scipy p={want}",
            x.len(),
            y.len(),
            got.p
        );
        assert_eq!(got.exact, method != "asymptotic", "case {i}: method");
        methods.insert(method);
    }
    assert_eq!(methods.len(), 3, "every method is covered: {methods:?}");
}

#[test]
fn medians_match_numpy() {
    let doc = load("scipy.json");
    for c in doc["median"].as_array().unwrap() {
        let mut x = floats(&c["x"]);
        x.sort_by(f64::total_cmp);
        let want = c["median"].as_f64().unwrap();
        assert!(close(stats::median(&x), want, 1e-12), "{x:?}");
    }
}

#[test]
fn median_intervals_cover_95_percent_by_scipy_binomial() {
    let doc = load("scipy.json");
    for c in doc["median_ci_coverage"].as_array().unwrap() {
        let n = c["n"].as_u64().unwrap() as usize;
        // cdf[k + 1] = P(K <= k) for K ~ Binomial(n, 1/2), k = -1..=n.
        let cdf = floats(&c["binom_cdf_from_minus_1"]);
        let ci = stats::median_ci(n, stats::CONFIDENCE);
        // The median lies between order statistics lo and hi when lo <= K < hi.
        let coverage = cdf[ci.hi] - cdf[ci.lo];
        assert!(coverage >= 0.95 - 1e-12, "n={n}: {ci:?} covers {coverage}");
        if n <= 30 {
            // Exact sums: the claimed confidence is the coverage.
            assert!(
                close(ci.confidence, coverage, 1e-12),
                "n={n}: {ci:?} vs {coverage}"
            );
        }
    }
}

#[test]
fn median_intervals_and_p_values_match_benchstat() {
    let doc = load("benchstat.json");
    let cis = doc["median_ci_95"].as_array().unwrap();
    assert_eq!(cis.len(), 200);
    for c in cis {
        let n = c["n"].as_u64().unwrap() as usize;
        let ci = stats::median_ci(n, stats::CONFIDENCE);
        let (lo, hi) = (
            c["lo"].as_u64().unwrap() as usize,
            c["hi"].as_u64().unwrap() as usize,
        );
        assert_eq!((ci.lo, ci.hi), (lo, hi), "n={n}");
        assert!(
            close(ci.confidence, c["confidence"].as_f64().unwrap(), 1e-9),
            "n={n}"
        );
    }
    let scipy = load("scipy.json");
    let inputs = scipy["u_test"].as_array().unwrap();
    let outs = doc["u_test"].as_array().unwrap();
    assert_eq!(inputs.len(), outs.len());
    for (i, (inp, out)) in inputs.iter().zip(outs).enumerate() {
        let got = stats::mann_whitney_u(&floats(&inp["x"]), &floats(&inp["y"])).unwrap();
        let want = out["p"].as_f64().unwrap();
        assert!(
            close(got.p, want, 1e-9),
            "case {i}: gocost {} benchstat {want}",
            got.p
        );
        assert_eq!(got.u, out["u"].as_f64().unwrap(), "case {i}: U");
    }
}
