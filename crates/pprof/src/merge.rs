//! Merging profiles with pprof's rules (`profile.Merge`, `CompatibilizeSampleTypes`,
//! `measurement.ScaleProfiles`).
//!
//! Identical samples (same stack after merging locations, same labels) are combined,
//! locations/functions/mappings are deduplicated by content and renumbered densely in
//! first-seen order, `time_nanos` becomes the earliest, durations are summed and the period is
//! the largest. [`Merger`] does this incrementally so that thousands of profiles can be merged
//! while holding only the merged result in memory.

use std::fmt;
use std::hash::{Hash, Hasher};

use rustc_hash::{FxHashMap, FxHashSet, FxHasher};

use crate::model::*;
use crate::units;

/// Why profiles could not be merged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergeError(pub String);

impl fmt::Display for MergeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for MergeError {}

fn vt(v: &ValueType) -> String {
    format!("{}/{}", v.r#type, v.unit)
}

fn vts(v: &[ValueType]) -> String {
    let s: Vec<String> = v.iter().map(vt).collect();
    format!("[{}]", s.join(" "))
}

/// pprof's `compatible`: identical period type and sample types.
pub fn check_compatible(a: &Profile, b: &Profile) -> Result<(), MergeError> {
    if a.period_type != b.period_type {
        return Err(MergeError(format!(
            "incompatible period types {} and {}",
            vt(&a.period_type),
            vt(&b.period_type)
        )));
    }
    if a.sample_type != b.sample_type {
        return Err(MergeError(format!(
            "incompatible sample types {} and {}",
            vts(&a.sample_type),
            vts(&b.sample_type)
        )));
    }
    Ok(())
}

/// Keeps only the sample types (by name) present in every profile, in the first profile's
/// order, reordering values as needed.
pub fn compatibilize_sample_types(ps: &mut [Profile]) -> Result<(), MergeError> {
    let Some(first) = ps.first() else {
        return Ok(());
    };
    let common: Vec<Str> = first
        .sample_type
        .iter()
        .filter(|st| {
            ps.iter()
                .all(|p| p.sample_type.iter().any(|t| t.r#type == st.r#type))
        })
        .map(|st| st.r#type.clone())
        .collect();
    // pprof counts occurrences, so a type repeated within one profile also counts; match it.
    let common: Vec<Str> = common
        .into_iter()
        .filter(|name| {
            ps.iter()
                .map(|p| p.sample_type.iter().filter(|t| &t.r#type == name).count())
                .sum::<usize>()
                == ps.len()
        })
        .collect();
    if common.is_empty() {
        return Err(MergeError(
            "profiles have empty common sample type list".into(),
        ));
    }
    for p in ps.iter_mut() {
        let mut default = common[0].clone();
        let mut remap = Vec::with_capacity(common.len());
        let mut modify = false;
        for (i, st) in common.iter().enumerate() {
            if *st == p.default_sample_type {
                default = p.default_sample_type.clone();
            }
            let Some(idx) = p.sample_type.iter().position(|t| &t.r#type == st) else {
                return Err(MergeError(format!(
                    "{st:?} sample type is not found in profile"
                )));
            };
            remap.push(idx);
            modify |= idx != i;
        }
        if !modify && common.len() == p.sample_type.len() {
            continue;
        }
        p.default_sample_type = default;
        p.sample_type = remap.iter().map(|&i| p.sample_type[i].clone()).collect();
        for s in &mut p.sample {
            s.value = remap.iter().map(|&i| s.value[i]).collect();
        }
    }
    Ok(())
}

/// The finest of a set of compatible value types (pprof's `CommonValueType`); `None` for
/// fewer than two.
fn common_value_type(ts: &[&ValueType]) -> Result<Option<ValueType>, MergeError> {
    if ts.len() <= 1 {
        return Ok(None);
    }
    let mut min = ts[0];
    for t in &ts[1..] {
        if !units::compatible_value_types(&min.r#type, &min.unit, &t.r#type, &t.unit) {
            return Err(MergeError(format!(
                "incompatible types: {} {}",
                vt(min),
                vt(t)
            )));
        }
        if units::scale(1, &t.unit, &min.unit).0 < 1.0 {
            min = t;
        }
    }
    Ok(Some(min.clone()))
}

/// Converts every profile's values and period to the finest common unit.
pub fn scale_profiles(ps: &mut [Profile]) -> Result<(), MergeError> {
    if ps.is_empty() {
        return Ok(());
    }
    let pts: Vec<&ValueType> = ps.iter().map(|p| &p.period_type).collect();
    let period_type =
        common_value_type(&pts).map_err(|e| MergeError(format!("period type: {e}")))?;
    let n = ps[0].sample_type.len();
    for p in &ps[1..] {
        if p.sample_type.len() != n {
            return Err(MergeError(format!(
                "inconsistent samples type count: {n} != {}",
                p.sample_type.len()
            )));
        }
    }
    let mut sample_type = Vec::with_capacity(n);
    for i in 0..n {
        let ts: Vec<&ValueType> = ps.iter().map(|p| &p.sample_type[i]).collect();
        sample_type
            .push(common_value_type(&ts).map_err(|e| MergeError(format!("sample types: {e}")))?);
    }
    for p in ps.iter_mut() {
        if let Some(pt) = &period_type {
            let (v, _) = units::scale(p.period, &p.period_type.unit, &pt.unit);
            p.period = v as i64;
            p.period_type.unit = pt.unit.clone();
        }
        let mut ratios = vec![1.0; n];
        for (i, st) in p.sample_type.iter_mut().enumerate() {
            if let Some(common) = &sample_type[i] {
                ratios[i] = units::scale(1, &st.unit, &common.unit).0;
                st.unit = common.unit.clone();
            }
        }
        p.scale_n(&ratios);
    }
    Ok(())
}

/// pprof's `combineProfiles`: make sample types compatible, scale units, and merge (a single
/// profile is returned as is, like pprof, without renumbering).
pub fn combine(mut ps: Vec<Profile>) -> Result<Profile, MergeError> {
    if ps.is_empty() {
        return Err(MergeError("no profiles to merge".into()));
    }
    compatibilize_sample_types(&mut ps)?;
    scale_profiles(&mut ps)?;
    if ps.len() == 1 {
        return Ok(ps.pop().unwrap_or_default());
    }
    merge(ps)
}

/// pprof's `profile.Merge`: all profiles must have identical sample and period types.
pub fn merge(ps: Vec<Profile>) -> Result<Profile, MergeError> {
    let mut it = ps.into_iter();
    let Some(first) = it.next() else {
        return Err(MergeError("no profiles to merge".into()));
    };
    let mut m = Merger::new(&first);
    m.add_owned(first)?;
    for p in it {
        m.add_owned(p)?;
    }
    Ok(m.finish())
}

/// Removes unreferenced entities and zero samples, renumbering ids (pprof's `Compact`).
pub fn compact(p: &Profile) -> Profile {
    let mut m = Merger::new(p);
    // A profile is always compatible with itself.
    let _ = m.add(p);
    m.finish()
}

#[derive(PartialEq, Eq, Hash)]
struct MappingKey {
    size: u64,
    offset: u64,
    build_id_or_file: Str,
}

/// The header fields a merge combines, in whatever form holds them: the model's strings
/// (`Merger`) or a store's string-table ids (gocost-store's rollups). [`merge_header`] is the
/// one copy of pprof's rules for them.
pub trait MergeHeader {
    /// A string or its id; `Default` is the empty string.
    type Str: Clone + Default + PartialEq;
    fn time_nanos(&mut self) -> &mut i64;
    fn duration_nanos(&mut self) -> &mut i64;
    fn period(&mut self) -> &mut i64;
    fn default_sample_type(&mut self) -> &mut Self::Str;
    fn doc_url(&mut self) -> &mut Self::Str;
    /// Whether the merged header has this comment already.
    fn has_comment(&self, c: &Self::Str) -> bool;
    fn push_comment(&mut self, c: Self::Str);
}

/// One input profile's header fields, as [`merge_header`] reads them.
#[derive(Debug, Clone, Copy)]
pub struct HeaderOf<'a, S> {
    pub time_nanos: i64,
    pub duration_nanos: i64,
    pub period: i64,
    pub comments: &'a [S],
    pub default_sample_type: &'a S,
    pub doc_url: &'a S,
}

impl<'a> HeaderOf<'a, Str> {
    /// A profile's header fields.
    pub fn profile(p: &'a Profile) -> Self {
        HeaderOf {
            time_nanos: p.time_nanos,
            duration_nanos: p.duration_nanos,
            period: p.period,
            comments: &p.comments,
            default_sample_type: &p.default_sample_type,
            doc_url: &p.doc_url,
        }
    }
}

/// Merges one input's header into the merged one, as pprof's `Merge` does: the earliest
/// non-zero time, durations summed, the largest period, each comment once in first-seen
/// order, the first non-empty default sample type and doc URL. (Sample types, period type
/// and drop/keep frames come from the first profile; mappings are merged with the samples.)
pub fn merge_header<H: MergeHeader + ?Sized>(into: &mut H, from: HeaderOf<'_, H::Str>) {
    let t = into.time_nanos();
    if *t == 0 || from.time_nanos < *t {
        *t = from.time_nanos;
    }
    let d = into.duration_nanos();
    *d = d.wrapping_add(from.duration_nanos);
    let p = into.period();
    if *p == 0 || *p < from.period {
        *p = from.period;
    }
    for c in from.comments {
        if !into.has_comment(c) {
            into.push_comment(c.clone());
        }
    }
    let empty = H::Str::default();
    let s = into.default_sample_type();
    if *s == empty {
        *s = from.default_sample_type.clone();
    }
    let s = into.doc_url();
    if *s == empty {
        *s = from.doc_url.clone();
    }
}

/// A merge's output header, with the comments seen so far.
struct MergedHeader<'a> {
    out: &'a mut Profile,
    seen: &'a mut FxHashSet<Str>,
}

impl MergeHeader for MergedHeader<'_> {
    type Str = Str;
    fn time_nanos(&mut self) -> &mut i64 {
        &mut self.out.time_nanos
    }
    fn duration_nanos(&mut self) -> &mut i64 {
        &mut self.out.duration_nanos
    }
    fn period(&mut self) -> &mut i64 {
        &mut self.out.period
    }
    fn default_sample_type(&mut self) -> &mut Str {
        &mut self.out.default_sample_type
    }
    fn doc_url(&mut self) -> &mut Str {
        &mut self.out.doc_url
    }
    fn has_comment(&self, c: &Str) -> bool {
        self.seen.contains(c)
    }
    fn push_comment(&mut self, c: Str) {
        self.seen.insert(c.clone());
        self.out.comments.push(c);
    }
}

/// The merged samples' index: open addressing with linear probing over one `u64` per slot
/// (the sample's index + 1 in the high half, the low half of its hash in the low half; 0 is
/// empty), at most half full. A merge of a day of profiles holds millions of distinct samples,
/// and nearly every lookup misses the caches: here a lookup reads one slot (rarely two),
/// where a general hash map reads its control bytes and then the bucket.
#[derive(Default)]
struct SampleTable {
    slots: Vec<u64>,
    /// log2 of `slots.len()` (0 while empty).
    bits: u32,
    /// Every merged sample's hash, by index: to place the slots again when they grow.
    hashes: Vec<u64>,
}

impl SampleTable {
    fn home(hash: u64, bits: u32) -> usize {
        (hash.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - bits)) as usize
    }

    /// Asks the CPU to fetch the slot a lookup of `hash` reads first (a hint: the probe
    /// itself still reads whatever the slot holds then).
    fn prefetch(&self, hash: u64) {
        if self.bits == 0 {
            return;
        }
        #[cfg(target_arch = "x86_64")]
        if let Some(slot) = self.slots.get(Self::home(hash, self.bits)) {
            // SAFETY: a prefetch never faults and changes nothing but the caches, and SSE
            // (which has it) is part of every x86-64 CPU; the address is a live slot's.
            unsafe {
                std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                    (slot as *const u64).cast(),
                );
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = hash;
    }

    /// The index of the sample with this hash for which `same` holds, or the free slot where
    /// it would go (pass it to [`claim`](SampleTable::claim)).
    fn find(&mut self, hash: u64, same: impl Fn(u32) -> bool) -> Result<u32, usize> {
        if (self.hashes.len() + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let mask = self.slots.len() - 1;
        let mut pos = Self::home(hash, self.bits);
        loop {
            let slot = self.slots[pos];
            if slot == 0 {
                return Err(pos);
            }
            if slot as u32 == hash as u32 {
                let idx = (slot >> 32) as u32 - 1;
                if same(idx) {
                    return Ok(idx);
                }
            }
            pos = (pos + 1) & mask;
        }
    }

    /// Records sample `idx` (the next index: samples are added in order) in a slot `find`
    /// returned.
    fn claim(&mut self, slot: usize, idx: u32, hash: u64) {
        debug_assert_eq!(idx as usize, self.hashes.len());
        self.slots[slot] = (u64::from(idx) + 1) << 32 | u64::from(hash as u32);
        self.hashes.push(hash);
    }

    /// Sizes the table for `n` samples at once, instead of growing through every power of two.
    fn reserve(&mut self, n: usize) {
        let bits = (n
            .saturating_mul(2)
            .max(1)
            .next_power_of_two()
            .trailing_zeros())
        .max(10);
        if bits > self.bits {
            self.bits = bits - 1;
            self.grow();
        }
        self.hashes.reserve(n.saturating_sub(self.hashes.len()));
    }

    fn grow(&mut self) {
        self.bits = (self.bits + 1).max(10);
        self.slots = vec![0; 1 << self.bits];
        let mask = self.slots.len() - 1;
        for (idx, &hash) in self.hashes.iter().enumerate() {
            let mut pos = Self::home(hash, self.bits);
            while self.slots[pos] != 0 {
                pos = (pos + 1) & mask;
            }
            self.slots[pos] = (idx as u64 + 1) << 32 | u64::from(hash as u32);
        }
    }
}

/// A keyed sample waiting to be placed (see `Merger::add_samples`).
struct Held {
    index: usize,
    buf: usize,
    hash: u64,
    labels: u32,
}

/// Incremental merge. Create it from the first profile (which fixes the sample types),
/// [`add`](Merger::add) each profile in order, then [`finish`](Merger::finish).
pub struct Merger {
    /// The merged profile but its samples, which are kept flat in `merged` until
    /// [`finish`](Merger::finish).
    out: Profile,
    comments_seen: FxHashSet<Str>,
    merged: MergedSamples,
    samples: SampleTable,
    /// Location and function identity: hash of pprof's key → newest index, with chains.
    locations: FxHashMap<u64, u32>,
    loc_next: Vec<u32>,
    functions: FxHashMap<u64, u32>,
    fn_next: Vec<u32>,
    line_scratch: Vec<Line>,
    mappings: FxHashMap<MappingKey, u32>,
    // Per-source memo tables (reset for each profile).
    loc_map: Vec<u32>,
    fn_map: Vec<u32>,
    map_map: Vec<(u32, i64)>,
    /// The source's label sets (when it numbers them) → merged label sets.
    set_map: Vec<u32>,
    /// Mapped locations of the sample being keyed and of the one held behind it.
    scratch: [Vec<u32>; 2],
}

const UNSET: u32 = u32::MAX;

/// The merged samples, flat: a day of profiles whose samples stay distinct is millions of
/// them, which as `Sample`s would be three allocations each (and most of a merge's memory).
/// A sample's labels are one id into a table of distinct label sets.
#[derive(Default)]
struct MergedSamples {
    nvalues: usize,
    location: Vec<LocationIdx>,
    location_end: Vec<usize>,
    value: Vec<i64>,
    labels: Vec<u32>,
    /// Distinct label sets, by id; `sets[0]` is the empty one.
    sets: Vec<Vec<Label>>,
    /// Label-set identity: hash → newest id, with chains in `set_next`.
    set_index: FxHashMap<u64, u32>,
    set_next: Vec<u32>,
}

impl MergedSamples {
    fn new(nvalues: usize) -> Self {
        MergedSamples {
            nvalues,
            sets: vec![Vec::new()],
            set_next: vec![UNSET],
            ..Default::default()
        }
    }

    fn len(&self) -> usize {
        self.location_end.len()
    }

    fn locations(&self, i: usize) -> &[LocationIdx] {
        let start = if i == 0 { 0 } else { self.location_end[i - 1] };
        &self.location[start..self.location_end[i]]
    }

    fn values_mut(&mut self, i: usize) -> &mut [i64] {
        &mut self.value[i * self.nvalues..(i + 1) * self.nvalues]
    }

    /// The id of this label set, added if new.
    fn label_set(&mut self, label: &[Label]) -> u32 {
        if label.is_empty() {
            return 0;
        }
        let mut h = FxHasher::default();
        label.hash(&mut h);
        let hash = h.finish();
        let mut cur = self.set_index.get(&hash).copied().unwrap_or(UNSET);
        while cur != UNSET {
            if self.sets[cur as usize] == label {
                return cur;
            }
            cur = self.set_next[cur as usize];
        }
        let id = self.sets.len() as u32;
        self.sets.push(label.to_vec());
        let head = self.set_index.insert(hash, id).unwrap_or(UNSET);
        self.set_next.push(head);
        id
    }

    fn push(&mut self, location: &[LocationIdx], value: &[i64], labels: u32) {
        self.location.extend_from_slice(location);
        self.location_end.push(self.location.len());
        self.value.extend_from_slice(value);
        self.labels.push(labels);
    }
}

impl Samples for MergedSamples {
    fn len(&self) -> usize {
        MergedSamples::len(self)
    }
    fn label_sets(&self) -> usize {
        self.sets.len()
    }
    fn get(&self, i: usize) -> SampleRef<'_> {
        SampleRef {
            location: self.locations(i),
            value: &self.value[i * self.nvalues..(i + 1) * self.nvalues],
            label: &self.sets[self.labels[i] as usize],
            label_set: Some(self.labels[i]),
        }
    }
}

impl Merger {
    /// Starts a merge whose header (sample types, period type, drop/keep frames) comes from
    /// `first`. `first` must still be passed to [`add`](Merger::add).
    pub fn new(first: &Profile) -> Self {
        let out = Profile {
            sample_type: first.sample_type.clone(),
            drop_frames: first.drop_frames.clone(),
            keep_frames: first.keep_frames.clone(),
            period_type: first.period_type.clone(),
            ..Default::default()
        };
        Merger {
            merged: MergedSamples::new(out.sample_type.len()),
            out,
            comments_seen: FxHashSet::default(),
            samples: SampleTable::default(),
            locations: FxHashMap::default(),
            loc_next: Vec::new(),
            functions: FxHashMap::default(),
            fn_next: Vec::new(),
            line_scratch: Vec::new(),
            mappings: FxHashMap::default(),
            loc_map: Vec::new(),
            fn_map: Vec::new(),
            map_map: Vec::new(),
            set_map: Vec::new(),
            scratch: [Vec::new(), Vec::new()],
        }
    }

    /// Makes room for `samples` merged samples of `frames` locations each on average (a hint:
    /// a merge of many profiles whose samples stay distinct otherwise spends a tenth of its
    /// time growing its tables and faulting in the copies). Capped at 1 GiB of room.
    pub fn reserve(&mut self, samples: usize, frames: usize) {
        let per_sample = 8 + 4 + 8 * self.merged.nvalues + 4 * frames + 8 + 16;
        let samples = samples.min((1 << 30) / per_sample);
        let m = &mut self.merged;
        m.location.reserve(
            samples
                .saturating_mul(frames)
                .saturating_sub(m.location.len()),
        );
        m.location_end.reserve(samples.saturating_sub(m.len()));
        m.labels.reserve(samples.saturating_sub(m.len()));
        m.value
            .reserve((samples * m.nvalues).saturating_sub(m.value.len()));
        self.samples.reserve(samples);
    }

    /// The sample types every added profile must have.
    pub fn sample_type(&self) -> &[ValueType] {
        &self.out.sample_type
    }

    /// The period type every added profile must have.
    pub fn period_type(&self) -> &ValueType {
        &self.out.period_type
    }

    /// Merges one more profile.
    pub fn add(&mut self, src: &Profile) -> Result<(), MergeError> {
        self.add_samples(src, &src.sample[..])
    }

    /// Like [`add`](Merger::add), taking the profile by value (kept for callers that hold
    /// one; the merge copies what it keeps either way).
    pub fn add_owned(&mut self, src: Profile) -> Result<(), MergeError> {
        self.add(&src)
    }

    /// Merges one more profile whose samples are kept apart from it (`src.sample` is not
    /// read): [`decode_flat_with`](crate::decode_flat_with)'s output.
    pub fn add_flat(&mut self, src: &Profile, samples: &FlatSamples) -> Result<(), MergeError> {
        self.add_samples(src, samples)
    }

    fn add_samples<S: Samples + ?Sized>(
        &mut self,
        src: &Profile,
        samples: &S,
    ) -> Result<(), MergeError> {
        self.begin(src)?;
        self.set_map.clear();
        self.set_map.resize(samples.label_sets(), UNSET);
        // One sample behind: a sample's slot is prefetched when its key is made and probed
        // after the next sample's key, so the cache miss of the probe overlaps that work.
        let mut held: Option<Held> = None;
        for i in 0..samples.len() {
            if i.is_multiple_of(1024) {
                crate::cancel::checkpoint();
            }
            let s = samples.get(i);
            if s.value.iter().all(|&v| v == 0) {
                continue;
            }
            // Keyed into the scratch buffer the held sample is not in.
            let buf = held.as_ref().map_or(0, |h| 1 - h.buf);
            let (hash, labels) = self.key(src, &s, buf);
            let next = Held {
                index: i,
                buf,
                hash,
                labels,
            };
            if let Some(h) = held.replace(next) {
                self.place(&h, samples.get(h.index).value);
            }
        }
        if let Some(h) = held {
            self.place(&h, samples.get(h.index).value);
        }
        Ok(())
    }

    /// Adds a keyed sample (its locations mapped into `scratch[h.buf]`) to the identical
    /// merged sample's values, or as a new merged sample.
    fn place(&mut self, h: &Held, value: &[i64]) {
        let locs = std::mem::take(&mut self.scratch[h.buf]);
        match self.probe(h.hash, &locs, h.labels) {
            Some(idx) => {
                for (a, b) in self.merged.values_mut(idx as usize).iter_mut().zip(value) {
                    *a = a.wrapping_add(*b);
                }
            }
            None => {
                // A query's budget (`cancel::Budget`): the merged samples and their depth.
                crate::cancel::nodes(self.merged.len() + 1);
                crate::cancel::depth(locs.len());
                self.merged.push(&locs, value, h.labels);
            }
        }
        self.scratch[h.buf] = locs;
    }

    /// Checks compatibility and resets the per-source tables.
    fn begin(&mut self, src: &Profile) -> Result<(), MergeError> {
        if self.out.period_type != src.period_type {
            return Err(MergeError(format!(
                "incompatible period types {} and {}",
                vt(&self.out.period_type),
                vt(&src.period_type)
            )));
        }
        if self.out.sample_type != src.sample_type {
            return Err(MergeError(format!(
                "incompatible sample types {} and {}",
                vts(&self.out.sample_type),
                vts(&src.sample_type)
            )));
        }
        self.add_header(src);
        self.loc_map.clear();
        self.loc_map.resize(src.location.len(), UNSET);
        self.fn_map.clear();
        self.fn_map.resize(src.function.len(), UNSET);
        self.map_map.clear();
        self.map_map.resize(src.mapping.len(), (UNSET, 0));
        if self.out.mapping.is_empty() && !src.mapping.is_empty() {
            // mapping[0] is the main binary: take the first one seen first.
            self.map_mapping(src, 0);
        }
        Ok(())
    }

    fn add_header(&mut self, s: &Profile) {
        let mut into = MergedHeader {
            out: &mut self.out,
            seen: &mut self.comments_seen,
        };
        merge_header(&mut into, HeaderOf::profile(s));
    }

    /// Maps a sample's locations into `self.scratch[buf]` and returns the hash of the merged
    /// sample's identity (locations and label set) and its label set, prefetching its slot.
    fn key(&mut self, src: &Profile, s: &SampleRef<'_>, buf: usize) -> (u64, u32) {
        let mut locs = std::mem::take(&mut self.scratch[buf]);
        locs.clear();
        for &l in s.location {
            locs.push(self.map_location(src, l));
        }
        let labels = match s.label_set {
            Some(set) => match self.set_map[set as usize] {
                UNSET => {
                    let id = self.merged.label_set(s.label);
                    self.set_map[set as usize] = id;
                    id
                }
                id => id,
            },
            None => self.merged.label_set(s.label),
        };
        let mut h = FxHasher::default();
        locs.hash(&mut h);
        h.write_u32(labels);
        let hash = h.finish();
        self.samples.prefetch(hash);
        self.scratch[buf] = locs;
        (hash, labels)
    }

    /// The merged sample with these mapped locations and label set; if none, the slot for
    /// the one `place` adds next is claimed.
    fn probe(&mut self, hash: u64, locs: &[u32], labels: u32) -> Option<u32> {
        let new_idx = self.merged.len() as u32;
        let merged = &self.merged;
        match self.samples.find(hash, |i| {
            merged.labels[i as usize] == labels && merged.locations(i as usize) == locs
        }) {
            Ok(i) => Some(i),
            Err(slot) => {
                self.samples.claim(slot, new_idx, hash);
                None
            }
        }
    }

    /// pprof's location key for merged `lines`, hashed. pprof joins lines as `fn|line|col`
    /// into a slice of 3n slots indexed with a stride of 2, so a line's column slot is
    /// overwritten by the next line's function id and the last n-1 slots stay empty: the key
    /// is the number of lines, each line's function and line number, and the last line's
    /// column. [`same_lines_key`](Merger::same_lines_key) compares by the same rule; merged
    /// function indices stand for their ids (id = index + 1).
    fn hash_lines_key(lines: &[Line], h: &mut FxHasher) {
        h.write_usize(lines.len());
        for ln in lines {
            h.write_u32(ln.function);
            h.write_i64(ln.line);
        }
        if let Some(last) = lines.last() {
            h.write_i64(last.column);
        }
    }

    /// Whether two merged line lists have the same pprof location key (see
    /// [`hash_lines_key`](Merger::hash_lines_key)).
    fn same_lines_key(a: &[Line], b: &[Line]) -> bool {
        a.len() == b.len()
            && a.iter()
                .zip(b)
                .all(|(x, y)| x.function == y.function && x.line == y.line)
            && a.last().map(|l| l.column) == b.last().map(|l| l.column)
    }

    /// (address relative to its mapping, mapping id) as in pprof's location key.
    fn loc_addr_key(&self, mapping: Option<MappingIdx>, address: u64) -> (u64, u64) {
        match mapping {
            Some(m) => {
                let mm = &self.out.mapping[m as usize];
                (address.wrapping_sub(mm.memory_start), mm.id)
            }
            None => (address, 0),
        }
    }

    fn map_location(&mut self, src: &Profile, li: LocationIdx) -> LocationIdx {
        let memo = self.loc_map[li as usize];
        if memo != UNSET {
            return memo;
        }
        let l = &src.location[li as usize];
        let (mapping, offset) = match l.mapping {
            Some(mi) => {
                let (m, off) = self.map_mapping(src, mi);
                (Some(m), off)
            }
            None => (None, 0),
        };
        let mut line = std::mem::take(&mut self.line_scratch);
        line.clear();
        for ln in &l.line {
            let function = self.map_function(src, ln.function);
            line.push(Line {
                function,
                line: ln.line,
                column: ln.column,
            });
        }
        let address = (l.address as i64).wrapping_add(offset) as u64;
        let (kaddr, kmap) = self.loc_addr_key(mapping, address);
        let mut h = FxHasher::default();
        (kaddr, kmap, l.is_folded).hash(&mut h);
        Self::hash_lines_key(&line, &mut h);
        let hash = h.finish();
        // Walk the hash chain, comparing full keys (no allocation per lookup).
        let mut cur = self.locations.get(&hash).copied().unwrap_or(UNSET);
        let mut found = UNSET;
        while cur != UNSET {
            let c = &self.out.location[cur as usize];
            if c.is_folded == l.is_folded
                && self.loc_addr_key(c.mapping, c.address) == (kaddr, kmap)
                && Self::same_lines_key(&c.line, &line)
            {
                found = cur;
                break;
            }
            cur = self.loc_next[cur as usize];
        }
        if found != UNSET {
            self.line_scratch = line;
            self.loc_map[li as usize] = found;
            return found;
        }
        let idx = self.out.location.len() as u32;
        let head = self.locations.insert(hash, idx).unwrap_or(UNSET);
        self.loc_next.push(head);
        self.out.location.push(Location {
            id: u64::from(idx) + 1,
            mapping,
            address,
            line: line.clone(),
            is_folded: l.is_folded,
        });
        self.line_scratch = line;
        self.loc_map[li as usize] = idx;
        idx
    }

    fn map_mapping(&mut self, src: &Profile, mi: MappingIdx) -> (MappingIdx, i64) {
        let memo = self.map_map[mi as usize];
        if memo.0 != UNSET {
            return memo;
        }
        let m = &src.mapping[mi as usize];
        let size = m.memory_limit.wrapping_sub(m.memory_start);
        let size = size.wrapping_add(0xfff);
        let size = size - size % 0x1000;
        let key = MappingKey {
            size,
            offset: m.file_offset,
            build_id_or_file: if !m.build_id.is_empty() {
                m.build_id.clone()
            } else {
                m.filename.clone()
            },
        };
        if let Some(&existing) = self.mappings.get(&key) {
            let off = (self.out.mapping[existing as usize].memory_start as i64)
                .wrapping_sub(m.memory_start as i64);
            self.map_map[mi as usize] = (existing, off);
            return (existing, off);
        }
        let idx = self.out.mapping.len() as u32;
        let mut nm = m.clone();
        nm.id = u64::from(idx) + 1;
        self.out.mapping.push(nm);
        self.mappings.insert(key, idx);
        self.map_map[mi as usize] = (idx, 0);
        (idx, 0)
    }

    fn map_function(&mut self, src: &Profile, fi: FunctionIdx) -> FunctionIdx {
        let memo = self.fn_map[fi as usize];
        if memo != UNSET {
            return memo;
        }
        let f = &src.function[fi as usize];
        // pprof's function key: (start_line, name, system_name, filename).
        let mut h = FxHasher::default();
        (f.start_line, &*f.name, &*f.system_name, &*f.filename).hash(&mut h);
        let hash = h.finish();
        let mut cur = self.functions.get(&hash).copied().unwrap_or(UNSET);
        while cur != UNSET {
            let c = &self.out.function[cur as usize];
            if c.start_line == f.start_line
                && c.name == f.name
                && c.system_name == f.system_name
                && c.filename == f.filename
            {
                self.fn_map[fi as usize] = cur;
                return cur;
            }
            cur = self.fn_next[cur as usize];
        }
        let idx = self.out.function.len() as u32;
        let mut nf = f.clone();
        nf.id = u64::from(idx) + 1;
        self.out.function.push(nf);
        let head = self.functions.insert(hash, idx).unwrap_or(UNSET);
        self.fn_next.push(head);
        self.fn_map[fi as usize] = idx;
        idx
    }

    /// Whether a merged sample's values summed to zero (pprof then compacts the result).
    fn has_zero_samples(&self) -> bool {
        let n = self.merged.nvalues;
        n > 0
            && self
                .merged
                .value
                .chunks_exact(n)
                .any(|v| v.iter().all(|&v| v == 0))
    }

    /// The merged profile. Samples that summed to zero are removed (with a compaction pass,
    /// as pprof does).
    pub fn finish(self) -> Profile {
        let zero = self.has_zero_samples();
        let Merger {
            mut out, merged, ..
        } = self;
        out.sample = merged.to_samples();
        if zero { compact(&out) } else { out }
    }

    /// The merged profile gzip'd as [`encode_parallel`](crate::encode_parallel) writes it,
    /// straight from the merge's own flat table (no `Sample` per merged sample).
    pub fn encode_parallel(&self, workers: usize) -> Vec<u8> {
        if self.has_zero_samples() {
            // pprof compacts such a merge: its ids change.
            let mut p = self.out.clone();
            p.sample = self.merged.to_samples();
            return crate::encode_parallel(&compact(&p), workers);
        }
        crate::encode::encode_samples_parallel(&self.out, &self.merged, workers)
    }
}

/// pprof's `Normalize`: scales `p` so that each sample type sums to the same total as in
/// `base`.
pub fn normalize(p: &mut Profile, base: &Profile) -> Result<(), MergeError> {
    check_compatible(p, base)?;
    let n = p.sample_type.len();
    let sums = |q: &Profile| {
        let mut t = vec![0i64; n];
        for s in &q.sample {
            for (a, b) in t.iter_mut().zip(&s.value) {
                *a = a.wrapping_add(*b);
            }
        }
        t
    };
    let (b, s) = (sums(base), sums(p));
    let ratios: Vec<f64> = b
        .iter()
        .zip(&s)
        .map(|(&b, &s)| if s == 0 { 0.0 } else { b as f64 / s as f64 })
        .collect();
    p.scale_n(&ratios);
    Ok(())
}

/// pprof's `combineProfiles` over a stream of profiles: a single profile comes back untouched
/// (not renumbered); profiles with identical sample and period types are merged
/// incrementally, holding only the merged result; otherwise sample types are made compatible
/// and units scaled pairwise.
#[derive(Default)]
pub struct Combiner {
    state: CombineState,
}

// One value per merge, moved a handful of times: variant sizes do not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Default)]
enum CombineState {
    #[default]
    Empty,
    One(Profile),
    Merging(Merger),
}

impl Combiner {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the next profile.
    pub fn push(&mut self, p: Profile) -> Result<(), MergeError> {
        self.state = match std::mem::take(&mut self.state) {
            CombineState::Empty => CombineState::One(p),
            CombineState::One(f)
                if f.sample_type == p.sample_type && f.period_type == p.period_type =>
            {
                let mut m = Merger::new(&f);
                m.add_owned(f)?;
                m.add_owned(p)?;
                CombineState::Merging(m)
            }
            CombineState::One(f) => CombineState::One(combine(vec![f, p])?),
            CombineState::Merging(mut m)
                if m.sample_type() == p.sample_type.as_slice()
                    && *m.period_type() == p.period_type =>
            {
                m.add_owned(p)?;
                CombineState::Merging(m)
            }
            CombineState::Merging(m) => CombineState::One(combine(vec![m.finish(), p])?),
        };
        Ok(())
    }

    /// The combined profile, or `None` if nothing was pushed.
    pub fn finish(self) -> Option<Profile> {
        match self.state {
            CombineState::Empty => None,
            CombineState::One(p) => Some(p),
            CombineState::Merging(m) => Some(m.finish()),
        }
    }
}
