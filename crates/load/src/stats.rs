//! What a run measured: per-second HDR histograms of latency (microseconds), counts by status
//! and error, merged from the workers once a second so memory does not grow with requests;
//! finished seconds are kept as their non-empty buckets ([`Tally`]).

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Latencies are recorded in microseconds, 1 µs to 1 hour, three significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("static histogram bounds")
}

/// Counts of one second: answers by status, failures by kind, requests sent late.
#[derive(Debug, Clone, Default)]
pub struct Counts {
    pub statuses: BTreeMap<u16, u64>,
    pub errors: BTreeMap<String, u64>,
    /// Requests sent more than 1 ms after they were due (the generator fell behind).
    pub late: u64,
}

impl Counts {
    pub fn add(&mut self, o: &Counts) {
        for (k, v) in &o.statuses {
            *self.statuses.entry(*k).or_default() += v;
        }
        for (k, v) in &o.errors {
            *self.errors.entry(k.clone()).or_default() += v;
        }
        self.late += o.late;
    }

    pub fn requests(&self) -> u64 {
        self.statuses.values().sum::<u64>() + self.errors.values().sum::<u64>()
    }

    pub fn error_count(&self) -> u64 {
        self.errors.values().sum::<u64>()
            + self
                .statuses
                .iter()
                .filter(|(s, _)| **s >= 500)
                .map(|(_, n)| n)
                .sum::<u64>()
    }

    fn is_empty(&self) -> bool {
        self.statuses.is_empty() && self.errors.is_empty() && self.late == 0
    }
}

/// What one worker measured of one second (by intended send time), before it is added to
/// the run's [`Tally`] of that second.
#[derive(Debug, Clone)]
pub struct Second {
    pub latency: Histogram<u64>,
    pub counts: Counts,
}

impl Default for Second {
    fn default() -> Self {
        Second {
            latency: histogram(),
            counts: Counts::default(),
        }
    }
}

impl Second {
    pub fn is_empty(&self) -> bool {
        self.latency.is_empty() && self.counts.is_empty()
    }

    /// Empties it for the next second, keeping the histogram's memory.
    pub fn clear(&mut self) {
        self.latency.reset();
        self.counts = Counts::default();
    }
}

/// One second of the run as the run keeps it: the latency histogram's non-empty buckets
/// only. A full HDR histogram of this range is ~190 KB however few requests it counts; a
/// second's answers fill tens to a few thousand buckets, so a long run's memory grows with
/// the latencies it saw, not by 190 KB a second. Same buckets, so the same percentiles.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    /// (the bucket's highest equivalent value in µs, count), ascending.
    latency: Vec<(u64, u64)>,
    pub counts: Counts,
}

impl Tally {
    /// Adds a worker's second.
    pub fn add(&mut self, s: &Second) {
        self.counts.add(&s.counts);
        if s.latency.is_empty() {
            return;
        }
        let mut merged = Vec::with_capacity(self.latency.len() + 64);
        let mut mine = self.latency.iter().copied().peekable();
        for v in s.latency.iter_recorded() {
            let (value, count) = (v.value_iterated_to(), v.count_at_value());
            while let Some(&(mv, mc)) = mine.peek() {
                if mv >= value {
                    break;
                }
                merged.push((mv, mc));
                mine.next();
            }
            match mine.peek() {
                Some(&(mv, mc)) if mv == value => {
                    merged.push((value, mc + count));
                    mine.next();
                }
                _ => merged.push((value, count)),
            }
        }
        merged.extend(mine);
        self.latency = merged;
    }

    /// Records this second's latencies into `h` (a histogram of [`histogram`]'s range).
    pub fn fill(&self, h: &mut Histogram<u64>) {
        for &(v, c) in &self.latency {
            let _ = h.record_n(v, c);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.latency.is_empty()
    }

    /// The latency at quantile `q` in µs (as `Histogram::value_at_quantile` gives it).
    pub fn quantile(&self, q: f64) -> u64 {
        let total: u64 = self.latency.iter().map(|x| x.1).sum();
        let want = ((q * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for &(v, c) in &self.latency {
            seen += c;
            if seen >= want {
                return v;
            }
        }
        self.latency.last().map_or(0, |x| x.0)
    }
}

/// Latency percentiles in seconds.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub mean: f64,
}

impl Percentiles {
    pub fn of(h: &Histogram<u64>) -> Percentiles {
        let s = |us: u64| us as f64 / 1e6;
        if h.is_empty() {
            return Percentiles {
                p50: 0.0,
                p90: 0.0,
                p99: 0.0,
                p999: 0.0,
                max: 0.0,
                mean: 0.0,
            };
        }
        Percentiles {
            p50: s(h.value_at_quantile(0.5)),
            p90: s(h.value_at_quantile(0.9)),
            p99: s(h.value_at_quantile(0.99)),
            p999: s(h.value_at_quantile(0.999)),
            max: s(h.max()),
            mean: h.mean() / 1e6,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tally of worker seconds gives the same histogram (so the same percentiles) as the
    /// full histograms added together, in a fraction of the memory.
    #[test]
    fn a_tally_keeps_the_buckets_of_the_full_histogram() {
        let mut full = histogram();
        let mut tally = Tally::default();
        let mut x: u64 = 0x9e3779b97f4a7c15;
        for worker in 0..8 {
            let mut s = Second::default();
            for _ in 0..5_000 {
                // xorshift: latencies from 1 µs to ~4 s, skewed low.
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let us = 1 + (x % 4_000_000) / (1 + (x >> 40) % 1000);
                s.latency.record(us).unwrap();
            }
            *s.counts.statuses.entry(200).or_default() += 5_000;
            s.counts.late += worker;
            full.add(&s.latency).unwrap();
            tally.add(&s);
            s.clear();
            assert!(s.is_empty());
        }
        let mut back = histogram();
        tally.fill(&mut back);
        assert_eq!(back, full);
        assert_eq!(Percentiles::of(&back), Percentiles::of(&full));
        for q in [0.5, 0.9, 0.99, 0.999, 1.0] {
            assert_eq!(tally.quantile(q), full.value_at_quantile(q), "q={q}");
        }
        assert_eq!(tally.counts.requests(), 40_000);
        assert_eq!(tally.counts.late, 28);
        assert!(tally.latency.len() < 20_000);
    }
}
