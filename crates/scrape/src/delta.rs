//! Cumulative profiles (allocs, mutex, block counts since process start, and a heap
//! profile's `alloc_*` columns) become deltas between consecutive scrapes, the way
//! `go tool pprof -base previous current` shows them.
//!
//! The previous scrape is not kept as a profile: per series only a [`Baseline`] is — a
//! 64-bit fingerprint of each sample's stack (per frame its address and its lines'
//! function names and line numbers) and labels, and the sample's values in the columns
//! that are subtracted. The next scrape's samples are looked up by fingerprint and their
//! values reduced in place, so no profile is cloned or merged (docs/adr/0025).
//!
//! Rules:
//! - A sample whose fingerprint is in the baseline has the baseline's values subtracted.
//! - Go's heap and allocs samples carry a `bytes` label (the average object size of the
//!   bucket). A baseline sample that found no equal fingerprint is subtracted from a new
//!   sample with the same stack and other labels (its size moved), so what a stack
//!   allocated is still the difference.
//! - A stack that had counts in the baseline and is gone, a counter column (every column
//!   but `inuse_*`) whose total went down, or a sample whose counter went down: the process
//!   restarted, so the profile itself is what happened since (and becomes the baseline).
//!   An allocs profile's `inuse_*` columns go down whenever memory is freed: not a restart.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;

use gocost_pprof::{LabelValue, Profile, Str, ValueType};

/// A hasher for keys that are fingerprints already.
#[derive(Default)]
struct Fingerprint(u64);

impl std::hash::Hasher for Fingerprint {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = mix(self.0, u64::from(b));
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type FpMap = HashMap<u64, u32, BuildHasherDefault<Fingerprint>>;

/// Adds `x` to the running hash `h` (FxHash's step with a final avalanche at the end).
fn mix(h: u64, x: u64) -> u64 {
    (h.rotate_left(5) ^ x).wrapping_mul(0x517c_c1b7_2722_0a95)
}

/// A well-spread 64-bit value of `h` (murmur3's finaliser).
fn finish(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

fn hash_str(s: &str) -> u64 {
    let mut h = mix(0, s.len() as u64);
    let mut chunks = s.as_bytes().chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        h = mix(h, u64::from_le_bytes(w));
    }
    for &b in chunks.remainder() {
        h = mix(h, u64::from(b));
    }
    h
}

/// The label that holds a heap sample's object size.
const SIZE_LABEL: &str = "bytes";

/// What was kept of the previous scrape of one series: its time, its sample types, and per
/// sample a fingerprint and the values of the subtracted columns.
#[derive(Debug, Clone, Default)]
pub struct Baseline {
    time_nanos: i64,
    sample_type: Vec<ValueType>,
    /// Which columns are subtracted (all for allocs/mutex/block; `alloc_*` for heap).
    cols: Vec<usize>,
    /// Whole fingerprint (stack and every label) → row.
    index: FpMap,
    /// Per row: the fingerprint of the stack and the labels but the size.
    frames: Vec<u64>,
    /// Per row, `cols.len()` values.
    values: Vec<i64>,
}

impl Baseline {
    /// Samples kept.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Bytes it holds (about), for tests and accounting.
    pub fn heap_bytes(&self) -> usize {
        self.index.capacity() * 13
            + self.frames.capacity() * 8
            + self.values.capacity() * 8
            + self.cols.capacity() * 8
    }
}

/// What to store for a cumulative profile given the previous scrape's baseline.
#[derive(Debug)]
pub enum Delta {
    /// The first scrape of a cumulative kind: only the baseline, nothing to store.
    First,
    /// The difference `cur - prev`, with `time_nanos` = now and `duration_nanos` = the gap.
    Diff(Profile),
    /// A counter went down or a stack vanished: the process restarted, so the profile is
    /// what happened since.
    Restarted(Profile),
}

impl Delta {
    /// The profile to store, if any.
    pub fn into_profile(self) -> Option<Profile> {
        match self {
            Delta::First => None,
            Delta::Diff(p) | Delta::Restarted(p) => Some(p),
        }
    }
}

/// A counter column: one whose values only grow in a running process.
fn is_counter(t: &ValueType) -> bool {
    !t.r#type.starts_with("inuse_")
}

/// Per sample: (fingerprint of everything, fingerprint without the size label).
fn fingerprints(p: &Profile) -> Vec<(u64, u64)> {
    let funcs: Vec<u64> = p.function.iter().map(|f| hash_str(&f.name)).collect();
    let locs: Vec<u64> = p
        .location
        .iter()
        .map(|l| {
            let mut h = mix(0x9e37_79b9, l.address);
            for line in &l.line {
                let f = funcs.get(line.function as usize).copied().unwrap_or(0);
                h = mix(mix(h, f), line.line as u64);
            }
            h
        })
        .collect();
    // Strings repeat across samples (label keys and values share one allocation each).
    let mut strs: HashMap<*const u8, u64> = HashMap::new();
    let mut sh = |s: &Str| *strs.entry(s.as_ptr()).or_insert_with(|| hash_str(s));
    p.sample
        .iter()
        .map(|s| {
            let mut h = mix(0, s.location.len() as u64);
            for &l in &s.location {
                h = mix(h, locs.get(l as usize).copied().unwrap_or(u64::MAX));
            }
            let mut size = 0x5bd1_e995u64;
            for l in &s.label {
                let k = sh(&l.key);
                match &l.value {
                    LabelValue::Num { value, unit } if &*l.key == SIZE_LABEL => {
                        size = mix(mix(size, *value as u64), sh(unit));
                    }
                    LabelValue::Num { value, unit } => {
                        h = mix(mix(mix(h, k), *value as u64), sh(unit));
                    }
                    LabelValue::Str(v) => h = mix(mix(mix(h, k), 1), sh(v)),
                }
            }
            (finish(mix(h, size)), finish(h))
        })
        .collect()
}

/// The baseline of `p` (its `cols`), from its samples' fingerprints.
fn baseline_of(p: &Profile, fps: &[(u64, u64)], cols: Vec<usize>) -> Baseline {
    let mut index = FpMap::default();
    index.reserve(p.sample.len());
    let mut frames = Vec::with_capacity(p.sample.len());
    let mut values = Vec::with_capacity(p.sample.len() * cols.len());
    for (s, &(fp, fr)) in p.sample.iter().zip(fps) {
        match index.get(&fp) {
            // The same stack and labels twice (not in Go's profiles; merged as pprof would).
            Some(&row) => {
                let at = row as usize * cols.len();
                for (i, &c) in cols.iter().enumerate() {
                    values[at + i] += s.value.get(c).copied().unwrap_or(0);
                }
            }
            None => {
                index.insert(fp, frames.len() as u32);
                frames.push(fr);
                values.extend(cols.iter().map(|&c| s.value.get(c).copied().unwrap_or(0)));
            }
        }
    }
    Baseline {
        time_nanos: p.time_nanos,
        sample_type: p.sample_type.clone(),
        cols,
        index,
        frames,
        values,
    }
}

/// No sample (the end of a list).
const NONE: u32 = u32::MAX;

/// Subtracts `prev` from `cur` (whose baseline is `next` and fingerprints `fps`) in place.
/// Returns `false`, with `cur` as it was, if the process restarted: a stack with counts
/// vanished, or a counter came out lower than its baseline.
///
/// Each baseline row is taken off a group of samples: those with its whole fingerprint
/// (Go's heap profile can hold one visible stack twice, from buckets that differ only in
/// hidden runtime frames), else — its size label moved — the unmatched samples with its
/// stack and other labels. Within a group a counter is taken off sample by sample down to
/// zero (so one sample does not go negative while its twin grew), a gauge off the first.
fn subtract(prev: &Baseline, next: &Baseline, cur: &mut Profile, fps: &[(u64, u64)]) -> bool {
    let n = prev.cols.len();
    let samples = fps.len();
    let counter: Vec<bool> = prev
        .cols
        .iter()
        .map(|&c| cur.sample_type.get(c).is_some_and(is_counter))
        .collect();
    // Samples per whole fingerprint, in sample order (a linked list per row of `next`).
    let mut first = vec![NONE; next.len()];
    let mut link = vec![NONE; samples];
    let mut matched = vec![false; samples];
    for i in (0..samples).rev() {
        if let Some(&row) = next.index.get(&fps[i].0) {
            link[i] = first[row as usize];
            first[row as usize] = i as u32;
        }
    }
    // (baseline row, first sample, which list).
    let mut jobs: Vec<(u32, u32, bool)> = Vec::with_capacity(prev.len());
    let mut residue: Vec<u32> = Vec::new();
    for (fp, &row) in &prev.index {
        match next.index.get(fp) {
            Some(&nrow) => {
                let start = first[nrow as usize];
                let mut i = start;
                while i != NONE {
                    matched[i as usize] = true;
                    i = link[i as usize];
                }
                jobs.push((row, start, true));
            }
            None => residue.push(row),
        }
    }
    // Unmatched samples per stack (labels but the size): a second list.
    let mut by_frames = FpMap::default();
    let mut link_frames = vec![NONE; samples];
    if !residue.is_empty() {
        for i in (0..samples).rev().filter(|&i| !matched[i]) {
            let head = by_frames.entry(fps[i].1).or_insert(NONE);
            link_frames[i] = *head;
            *head = i as u32;
        }
        for row in residue {
            let r = row as usize;
            if prev.values[r * n..(r + 1) * n].iter().all(|&v| v == 0) {
                continue;
            }
            match by_frames.get(&prev.frames[r]) {
                Some(&start) => jobs.push((row, start, false)),
                None => return false,
            }
        }
    }
    // The values as scraped, to put back if a counter comes out short.
    let saved: Vec<i64> = cur
        .sample
        .iter()
        .flat_map(|s| {
            prev.cols
                .iter()
                .map(|&c| s.value.get(c).copied().unwrap_or(0))
        })
        .collect();
    let mut rem = vec![0i64; n];
    let mut ok = true;
    'jobs: for (row, start, exact) in jobs {
        let r = row as usize;
        rem.copy_from_slice(&prev.values[r * n..(r + 1) * n]);
        let mut i = start;
        let mut at_first = true;
        while i != NONE {
            let s = &mut cur.sample[i as usize];
            for k in 0..n {
                let Some(v) = s.value.get_mut(prev.cols[k]) else {
                    continue;
                };
                if counter[k] && rem[k] > 0 {
                    let take = rem[k].min((*v).max(0));
                    *v -= take;
                    rem[k] -= take;
                } else if at_first {
                    *v = v.wrapping_sub(rem[k]);
                    rem[k] = 0;
                }
            }
            at_first = false;
            i = if exact {
                link[i as usize]
            } else {
                link_frames[i as usize]
            };
        }
        if rem.iter().zip(&counter).any(|(&x, &c)| c && x > 0) {
            ok = false;
            break 'jobs;
        }
    }
    if !ok {
        for (s, vals) in cur.sample.iter_mut().zip(saved.chunks_exact(n.max(1))) {
            for (&c, &v) in prev.cols.iter().zip(vals) {
                if let Some(x) = s.value.get_mut(c) {
                    *x = v;
                }
            }
        }
    }
    ok
}

/// Σ of each kept column of a baseline.
fn baseline_totals(b: &Baseline) -> Vec<i64> {
    let n = b.cols.len();
    let mut t = vec![0i64; n];
    for row in b.values.chunks_exact(n.max(1)) {
        for (a, v) in t.iter_mut().zip(row) {
            *a = a.wrapping_add(*v);
        }
    }
    t
}

/// The delta of a cumulative kind (`allocs`, `mutex`, `block`: every column, as `go tool
/// pprof -base` subtracts them) against the previous scrape's baseline, and the baseline
/// for the next one. `cur` is consumed: the delta is made in it.
pub fn delta(prev: Option<&Baseline>, cur: Profile) -> (Delta, Baseline) {
    let cols: Vec<usize> = (0..cur.sample_type.len()).collect();
    diff(prev, cur, cols, false)
}

/// What to store for a scraped heap profile: its `inuse_*` columns as scraped (what the
/// process held at its last GC), its `alloc_*` columns — counts since the process started —
/// as the allocations since the previous scrape (what the `allocs` kind stores), so that
/// over a range they add up to the allocations made in it. Without a previous scrape the
/// allocations are unknown (0); after a restart they are those since the restart. This is
/// also what Pyroscope's Go agents push.
pub fn heap(prev: Option<&Baseline>, cur: Profile) -> (Profile, Baseline) {
    let cols: Vec<usize> = cur
        .sample_type
        .iter()
        .enumerate()
        .filter(|(_, t)| !gocost_store::is_snapshot("heap", &t.r#type))
        .map(|(i, _)| i)
        .collect();
    let (d, b) = diff(prev, cur, cols, true);
    // With `store_first`, `diff` never answers `First`.
    (d.into_profile().unwrap_or_default(), b)
}

fn diff(
    prev: Option<&Baseline>,
    mut cur: Profile,
    cols: Vec<usize>,
    store_first: bool,
) -> (Delta, Baseline) {
    let fps = fingerprints(&cur);
    let next = baseline_of(&cur, &fps, cols);
    let prev = prev.filter(|p| p.sample_type == cur.sample_type && p.cols == next.cols);
    let Some(prev) = prev else {
        if !store_first {
            return (Delta::First, next);
        }
        // No allocations known yet: the subtracted columns are 0.
        for s in &mut cur.sample {
            for &c in &next.cols {
                if let Some(v) = s.value.get_mut(c) {
                    *v = 0;
                }
            }
        }
        cur.sample.retain(|s| s.value.iter().any(|&v| v != 0));
        return (Delta::Diff(cur), next);
    };
    // Totals of the counters went down: restarted (cheap, checked first).
    let went_down = {
        let (tc, tp) = (baseline_totals(&next), baseline_totals(prev));
        next.cols
            .iter()
            .zip(tc.iter().zip(&tp))
            .any(|(&c, (c1, p1))| cur.sample_type.get(c).is_some_and(is_counter) && c1 < p1)
    };
    if went_down {
        return (Delta::Restarted(cur), next);
    }
    if !subtract(prev, &next, &mut cur, &fps) {
        return (Delta::Restarted(cur), next);
    }
    cur.sample.retain(|s| s.value.iter().any(|&v| v != 0));
    cur.duration_nanos = cur.time_nanos.saturating_sub(prev.time_nanos).max(0);
    (Delta::Diff(cur), next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use gocost_pprof::{Function, Label, Line, Location, Sample, merge};
    use std::collections::BTreeMap;

    /// The code this module replaced (whole previous profiles, merged with the current one
    /// scaled by -1): the oracle for the baseline's answers.
    mod old {
        use gocost_pprof::{MergeError, Profile, merge};

        fn totals(p: &Profile) -> Vec<i64> {
            let mut t = vec![0i64; p.sample_type.len()];
            for s in &p.sample {
                for (a, b) in t.iter_mut().zip(&s.value) {
                    *a = a.wrapping_add(*b);
                }
            }
            t
        }

        pub fn delta(prev: &Profile, cur: &Profile) -> Result<Option<Profile>, MergeError> {
            let (tp, tc) = (totals(prev), totals(cur));
            if prev.sample_type != cur.sample_type || tc.iter().zip(&tp).any(|(c, p)| c < p) {
                return Ok(None);
            }
            let mut base = prev.clone();
            base.scale(-1.0);
            let mut d = merge::combine(vec![cur.clone(), base])?;
            d.time_nanos = cur.time_nanos;
            d.duration_nanos = cur.time_nanos.saturating_sub(prev.time_nanos).max(0);
            Ok(Some(d))
        }

        pub fn heap(prev: &Profile, cur: &Profile) -> Result<Profile, MergeError> {
            let alloc: Vec<bool> = cur
                .sample_type
                .iter()
                .map(|t| !gocost_store::is_snapshot("heap", &t.r#type))
                .collect();
            let mut base = prev.clone();
            let keep: Vec<f64> = alloc.iter().map(|&a| if a { -1.0 } else { 0.0 }).collect();
            base.scale_columns(&keep);
            let mut d = merge::combine(vec![cur.clone(), base])?;
            d.time_nanos = cur.time_nanos;
            Ok(d)
        }
    }

    fn real(name: &str) -> Profile {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../testdata/profiles")
            .join(name);
        let b = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        gocost_pprof::decode(&b).expect("decodes")
    }

    /// Per stack (function names, leaf first) and labels: the summed values, zeros left
    /// out — what two profiles must agree on to show the same thing.
    fn by_stack(p: &Profile) -> BTreeMap<(Vec<String>, Vec<String>), Vec<i64>> {
        let mut m: BTreeMap<(Vec<String>, Vec<String>), Vec<i64>> = BTreeMap::new();
        for s in &p.sample {
            let frames = s
                .location
                .iter()
                .flat_map(|&l| {
                    let loc = &p.location[l as usize];
                    loc.line.iter().map(move |ln| {
                        format!(
                            "{}:{}#{:x}",
                            p.function[ln.function as usize].name, ln.line, loc.address
                        )
                    })
                })
                .collect();
            let labels = s
                .label
                .iter()
                .filter(|l| &*l.key != SIZE_LABEL)
                .map(|l| format!("{}={:?}", l.key, l.value))
                .collect();
            let e = m
                .entry((frames, labels))
                .or_insert_with(|| vec![0; s.value.len()]);
            for (a, v) in e.iter_mut().zip(&s.value) {
                *a += v;
            }
        }
        m.retain(|_, v| v.iter().any(|&x| x != 0));
        m
    }

    /// A later scrape of `p`: every third sample's values grown by `k`× (counts only grow).
    fn grown(p: &Profile, k: i64, dt: i64) -> Profile {
        let mut q = p.clone();
        q.time_nanos += dt;
        for (i, s) in q.sample.iter_mut().enumerate() {
            if i % 3 == 0 {
                for v in &mut s.value {
                    *v *= k;
                }
            }
        }
        q
    }

    #[test]
    fn deltas_of_real_profiles_equal_the_old_merges() {
        for name in ["allocs.pb.gz", "mutex.pb.gz", "block.pb.gz"] {
            let prev = real(name);
            let cur = grown(&prev, 3, 10_000_000_000);
            let (first, b) = delta(None, prev.clone());
            assert!(matches!(first, Delta::First), "{name}");
            // One row per distinct stack and labels (Go's heap profiles repeat some).
            assert!(b.len() <= prev.sample.len() && !b.is_empty(), "{name}");
            let (d, _) = delta(Some(&b), cur.clone());
            let Delta::Diff(d) = d else {
                panic!("{name}: {d:?}")
            };
            let want = old::delta(&prev, &cur)
                .expect("merges")
                .expect("no restart");
            assert!(!d.sample.is_empty(), "{name}");
            assert_eq!(by_stack(&d), by_stack(&want), "{name}");
            assert_eq!(
                (d.time_nanos, d.duration_nanos),
                (want.time_nanos, want.duration_nanos)
            );
            // Unchanged: nothing happened.
            let (same, _) = delta(Some(&b), prev.clone());
            let Delta::Diff(same) = same else {
                panic!("{name}: {same:?}")
            };
            assert!(same.sample.is_empty(), "{name}: {:?}", same.sample);
        }
    }

    #[test]
    fn heap_then_allocs_of_one_process_equal_the_old_merge() {
        // Scraped one after the other from the same process: a real consecutive pair.
        let (prev, cur) = (real("heap.pb.gz"), real("allocs.pb.gz"));
        let (_, b) = heap(None, prev.clone());
        let (d, _) = heap(Some(&b), cur.clone());
        let want = old::heap(&prev, &cur).expect("merges");
        assert_eq!(by_stack(&d), by_stack(&want));
        // As the allocs kind: every column subtracted, as pprof -base does.
        let (_, b) = delta(None, prev.clone());
        let (d, _) = delta(Some(&b), cur.clone());
        let Delta::Diff(d) = d else { panic!("{d:?}") };
        let mut base = prev.clone();
        base.scale(-1.0);
        let want = merge::combine(vec![cur, base]).expect("merges");
        assert_eq!(by_stack(&d), by_stack(&want));
    }

    fn p(t: i64, a: i64, b: i64) -> Profile {
        let f = |id, n: &str| Function {
            id,
            name: n.into(),
            system_name: n.into(),
            ..Default::default()
        };
        let l = |id, fi| Location {
            id,
            address: 0x1000 * id,
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

    fn base(p: Profile) -> Baseline {
        delta(None, p).1
    }

    #[test]
    fn difference_of_consecutive_scrapes() {
        let (d, _) = delta(Some(&base(p(100, 5, 7))), p(160, 9, 7));
        let Delta::Diff(d) = d else {
            panic!("restart?")
        };
        assert_eq!(d.sample.len(), 1, "the unchanged sample cancels out");
        assert_eq!(d.sample[0].value, vec![4, 40]);
        assert_eq!((d.time_nanos, d.duration_nanos), (160, 60));
    }

    #[test]
    fn a_counter_reset_is_a_restart() {
        let (d, _) = delta(Some(&base(p(100, 5, 7))), p(160, 1, 0));
        assert!(matches!(d, Delta::Restarted(_)), "{d:?}");
        // One counter down, the total up: still a restart, with the scraped values.
        let (d, _) = delta(Some(&base(p(100, 5, 7))), p(160, 50, 6));
        let Delta::Restarted(d) = d else {
            panic!("{d:?}")
        };
        assert_eq!(d.sample[1].value, vec![6, 60], "the values as scraped");
    }

    #[test]
    fn a_vanished_stack_is_a_restart() {
        // The totals grew, but main.b's stack is gone.
        let mut cur = p(160, 20, 7);
        cur.sample.truncate(1);
        let (d, _) = delta(Some(&base(p(100, 5, 7))), cur);
        assert!(matches!(d, Delta::Restarted(_)), "{d:?}");
        // A stack that had nothing may go.
        let mut cur = p(160, 9, 0);
        cur.sample.truncate(1);
        let (d, _) = delta(Some(&base(p(100, 5, 0))), cur);
        assert!(matches!(d, Delta::Diff(_)), "{d:?}");
    }

    fn sized(mut p: Profile, sizes: [i64; 2]) -> Profile {
        for (s, size) in p.sample.iter_mut().zip(sizes) {
            s.label = vec![Label {
                key: SIZE_LABEL.into(),
                value: LabelValue::Num {
                    value: size,
                    unit: "bytes".into(),
                },
            }];
        }
        p
    }

    #[test]
    fn a_sample_whose_size_moved_is_subtracted_by_its_stack() {
        let prev = sized(p(100, 5, 7), [64, 32]);
        let cur = sized(p(160, 9, 8), [64, 48]);
        let (d, _) = delta(Some(&base(prev)), cur);
        let Delta::Diff(d) = d else { panic!("{d:?}") };
        let mut v: Vec<Vec<i64>> = d.sample.iter().map(|s| s.value.clone()).collect();
        v.sort();
        assert_eq!(v, vec![vec![1, 10], vec![4, 40]]);
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
        let (first, b) = heap(None, heap_p(100, [50, 70], [10, 0]));
        assert_eq!(
            values(&first),
            vec![vec![0, 10]],
            "no allocations known yet"
        );
        let (d, _) = heap(Some(&b), heap_p(160, [80, 70], [4, 9]));
        // main.a allocated 30 more and holds 4; main.b allocated nothing and holds 9.
        assert_eq!(values(&d), vec![vec![0, 9], vec![30, 4]]);
        assert_eq!((d.time_nanos, d.duration_nanos), (160, 60));
        let (restarted, _) = heap(Some(&b), heap_p(160, [5, 1], [3, 1]));
        assert_eq!(values(&restarted), vec![vec![1, 1], vec![5, 3]]);
    }

    #[test]
    fn allocs_in_use_going_down_is_not_a_restart() {
        let mut prev = heap_p(100, [50, 70], [40, 30]);
        let mut cur = heap_p(160, [80, 70], [4, 3]);
        for q in [&mut prev, &mut cur] {
            q.sample_type = vec![
                ValueType::new("alloc_space", "bytes"),
                ValueType::new("inuse_space", "bytes"),
            ];
        }
        let (d, _) = delta(Some(&base(prev)), cur);
        let Delta::Diff(d) = d else {
            panic!("freed memory is no restart: {d:?}")
        };
        assert_eq!(values(&d), vec![vec![0, -27], vec![30, -36]]);
    }
}
