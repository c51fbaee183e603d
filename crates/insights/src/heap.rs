//! Heap growth: allocation sites whose heap in use (`inuse_space` of heap profiles, as of
//! each profile's last completed GC) keeps growing over time, told apart from caches that
//! warm up and plateau and from garbage that a GC frees. The site is the innermost frame of
//! the program above the runtime's allocator; the rule is [`crate::growth::sustained`].

use std::collections::BTreeMap;

use gocost_pprof::Profile;
use serde::Serialize;

use crate::growth::{self, At, Timeline};

/// Heap in use per allocation site at one time.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub time_ms: i64,
    /// Site → (bytes in use, objects in use, one stack innermost first).
    pub sites: BTreeMap<String, (i64, i64, Vec<String>)>,
}

/// The site of what new goroutines allocate: their descriptors (`g`), from `runtime.malg`.
/// Go's heap profile cannot say which function started them (the stack ends in
/// `runtime.systemstack`); goroutine profiles can ([`Finding::started_by`]).
pub const GOROUTINES_SITE: &str = "runtime.malg";

/// The runtime's allocation entry points, never a site themselves.
fn allocator(f: &str) -> bool {
    f.starts_with("runtime.mallocgc")
        || matches!(
            f,
            "runtime.newobject"
                | "runtime.newarray"
                | "runtime.makeslice"
                | "runtime.makeslicecopy"
                | "runtime.growslice"
                | "runtime.makemap"
                | "runtime.makemap_small"
                | "runtime.makechan"
                | "runtime.rawbyteslice"
                | "runtime.rawruneslice"
                | "runtime.rawstring"
                | "runtime.rawstringtmp"
                | "runtime.concatstrings"
                | "runtime.slicebytetostring"
                | "runtime.convTslice"
                | "runtime.convTstring"
                | "runtime.convT"
                | "runtime.convT64"
                | "runtime.convT32"
                | "runtime.convT16"
        )
}

/// The allocating frame: the first one outside the runtime and its internal packages; for
/// stacks wholly inside the runtime (goroutine descriptors, the runtime's own caches), the
/// first frame past its allocation entry points.
pub fn site_of(stack: &[String]) -> String {
    stack
        .iter()
        .find(|f| !f.starts_with("runtime.") && !f.starts_with("internal/"))
        .or_else(|| stack.iter().find(|f| !allocator(f)))
        .or(stack.first())
        .cloned()
        .unwrap_or_default()
}

/// A snapshot from a heap profile; an error if it has no `inuse_space`.
pub fn snapshot_from_profile(p: &Profile) -> Result<Snapshot, String> {
    let idx = |name: &str| p.sample_type.iter().position(|t| &*t.r#type == name);
    let space = idx("inuse_space").ok_or("not a heap profile (no inuse_space sample type)")?;
    let objects = idx("inuse_objects");
    let mut s = Snapshot {
        time_ms: p.time_nanos / 1_000_000,
        sites: BTreeMap::new(),
    };
    for sample in &p.sample {
        let bytes = sample.value.get(space).copied().unwrap_or(0);
        let objs = objects
            .and_then(|i| sample.value.get(i))
            .copied()
            .unwrap_or(0);
        if bytes == 0 && objs == 0 {
            continue;
        }
        let stack = crate::leaks::sample_stack(p, &sample.location);
        let e = s.sites.entry(site_of(&stack)).or_default();
        e.0 += bytes;
        e.1 += objs;
        if e.2.is_empty() {
            e.2 = stack;
        }
    }
    Ok(s)
}

/// The growth rule for heap in use: 5 profiles over 30 s, 4 MiB an hour, a rise of 4 MiB —
/// well above the heap profile's sampling (one sample per 512 KiB allocated, on average) —
/// and confidence 0.3: a buffer that fills slowly on a busy machine drifts up through the
/// sampling noise and scores about 0.1; a site that keeps what it allocates, above 0.5.
pub fn defaults() -> growth::Rule {
    growth::Rule {
        min_span_secs: 30.0,
        min_points: 5,
        min_rate_per_hour: 4.0 * 1024.0 * 1024.0,
        min_growth: 4.0 * 1024.0 * 1024.0,
        min_confidence: 0.3,
    }
}

/// An allocation site whose heap in use keeps growing.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// The function that allocates what is kept.
    pub site: String,
    /// Bytes in use at the last snapshot (the heap profile's sampled estimate).
    pub inuse_bytes: i64,
    pub inuse_objects: i64,
    /// Growth in bytes per hour (Theil–Sen slope).
    pub rate_bytes_per_hour: f64,
    pub first_seen_ms: i64,
    pub confidence: f64,
    /// One allocating stack, innermost first.
    pub stack: Vec<String>,
    /// For [`GOROUTINES_SITE`]: the functions whose goroutines keep growing in the same
    /// target's goroutine profiles (filled in by whoever has them).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub started_by: Vec<String>,
}

/// Sites whose heap in use keeps growing, fastest first (snapshots in any order).
pub fn find(snapshots: &[Snapshot], rule: &growth::Rule) -> Vec<Finding> {
    let mut h = History::default();
    for s in snapshots {
        h.push(s.clone());
    }
    h.find(rule)
}

/// One target's heap snapshots folded as they come, in any order: per site its bytes in
/// use per snapshot, and the latest snapshot's objects and stack once (see
/// [`crate::leaks::History`]).
#[derive(Debug, Default)]
pub struct History {
    times: Vec<i64>,
    sites: BTreeMap<String, Site>,
}

#[derive(Debug)]
struct Site {
    /// (snapshot, bytes in use) for every snapshot the site is in.
    bytes: Vec<(u32, i64)>,
    first: At,
    /// The latest snapshot's bytes, objects and stack.
    last: (At, i64, i64, Vec<String>),
}

impl History {
    /// Folds one snapshot in.
    pub fn push(&mut self, s: Snapshot) {
        let i = self.times.len() as u32;
        let at = (s.time_ms, i);
        self.times.push(s.time_ms);
        for (site, (bytes, objects, stack)) in s.sites {
            let e = self.sites.entry(site).or_insert_with(|| Site {
                bytes: Vec::new(),
                first: at,
                last: (at, 0, 0, Vec::new()),
            });
            e.bytes.push((i, bytes));
            e.first = e.first.min(at);
            if at >= e.last.0 {
                e.last = (at, bytes, objects, stack);
            }
        }
    }

    /// Snapshots folded in.
    pub fn len(&self) -> usize {
        self.times.len()
    }

    pub fn is_empty(&self) -> bool {
        self.times.is_empty()
    }

    /// The growing sites, fastest first.
    pub fn find(&self, rule: &growth::Rule) -> Vec<Finding> {
        let axis = Timeline::new(&self.times, |_| true);
        let mut out = Vec::new();
        for (site, e) in &self.sites {
            let pts = axis.points(&e.bytes);
            let Some(g) = growth::sustained(&pts, rule) else {
                continue;
            };
            out.push(Finding {
                site: site.clone(),
                inuse_bytes: e.last.1,
                inuse_objects: e.last.2,
                rate_bytes_per_hour: g.rate_per_hour.round(),
                first_seen_ms: e.first.0,
                confidence: (g.confidence * 100.0).round() / 100.0,
                stack: e.last.3.clone(),
                started_by: Vec::new(),
            });
        }
        out.sort_by(|a, b| {
            b.rate_bytes_per_hour
                .total_cmp(&a.rate_bytes_per_hour)
                .then_with(|| a.site.cmp(&b.site))
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growing_sites_are_found_plateaus_and_garbage_are_not() {
        const MB: i64 = 1 << 20;
        let snaps: Vec<Snapshot> = (0..20i64)
            .map(|i| {
                let mut s = Snapshot {
                    time_ms: i * 5000,
                    ..Default::default()
                };
                for (site, bytes) in [
                    ("main.remember", i * 2 * MB),
                    ("main.warm", (i * 4 * MB).min(24 * MB)),
                    ("main.scratch", [3, 0, 5, 1, 4, 0, 2][i as usize % 7] * MB),
                ] {
                    s.sites
                        .insert(site.into(), (bytes, bytes / 1024, vec![site.into()]));
                }
                s
            })
            .collect();
        let f = find(&snaps, &defaults());
        assert_eq!(f.len(), 1, "{f:#?}");
        assert_eq!(f[0].site, "main.remember");
        assert_eq!(f[0].inuse_bytes, 38 * MB);
        assert_eq!(f[0].rate_bytes_per_hour, (2 * MB * 720) as f64);
        assert_eq!(
            site_of(&[
                "runtime.mallocgc".into(),
                "runtime.makeslice".into(),
                "main.f".into()
            ]),
            "main.f"
        );
        // A new goroutine's descriptor, as Go 1.27's heap profile records it.
        let g: Vec<String> = [
            "runtime.mallocgc",
            "runtime.newobject",
            "runtime.malg",
            "runtime.newproc1",
            "runtime.newproc.func1",
            "runtime.systemstack",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(site_of(&g), GOROUTINES_SITE);
    }
}
