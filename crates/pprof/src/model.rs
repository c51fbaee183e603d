//! The in-memory profile model: pprof's nouns, with references resolved to indices.
//!
//! This mirrors the model `go tool pprof` works on after decoding (`profile.Profile` in
//! google/pprof): strings are resolved, ids are kept for encoding, and cross references
//! (sample → location → mapping/function) are indices into the owning `Vec`s so that reports
//! never do id lookups in hot loops.

/// A shared immutable string: decoded profiles share one allocation per string-table entry.
pub type Str = std::sync::Arc<str>;

/// Index of a [`Mapping`] in [`Profile::mapping`].
pub type MappingIdx = u32;
/// Index of a [`Location`] in [`Profile::location`].
pub type LocationIdx = u32;
/// Index of a [`Function`] in [`Profile::function`].
pub type FunctionIdx = u32;

/// A profile as `go tool pprof` sees it after decoding.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Profile {
    /// One entry per value column of every sample.
    pub sample_type: Vec<ValueType>,
    pub sample: Vec<Sample>,
    /// `mapping[0]` is by convention the main binary.
    pub mapping: Vec<Mapping>,
    pub location: Vec<Location>,
    pub function: Vec<Function>,
    /// Regexp of frames to drop (with everything leafward of them). Empty = none.
    pub drop_frames: Str,
    /// Regexp of frames exempt from `drop_frames`.
    pub keep_frames: Str,
    /// Collection time, ns since the Unix epoch.
    pub time_nanos: i64,
    pub duration_nanos: i64,
    pub period_type: ValueType,
    pub period: i64,
    pub comments: Vec<Str>,
    /// Type *name* of the preferred sample type; empty = the last one.
    pub default_sample_type: Str,
    pub doc_url: Str,
}

/// A `(type, unit)` pair such as `cpu/nanoseconds`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ValueType {
    pub r#type: Str,
    pub unit: Str,
}

impl ValueType {
    pub fn new(r#type: impl Into<String>, unit: impl Into<String>) -> Self {
        ValueType {
            r#type: Str::from(r#type.into()),
            unit: Str::from(unit.into()),
        }
    }
}

/// One sample: a stack (leaf first), one value per sample type, and labels.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sample {
    /// Leaf first: `location[0]` is the innermost frame.
    pub location: Vec<LocationIdx>,
    pub value: Vec<i64>,
    /// Labels in pprof's canonical order: string labels sorted by key, then numeric labels
    /// sorted by key; values of one key keep their order (a stable sort of the wire order).
    pub label: Vec<Label>,
}

/// A sample label: a string value or a number with an optional unit.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Label {
    pub key: Str,
    pub value: LabelValue,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LabelValue {
    Str(Str),
    /// A numeric label; `unit` is empty when the profile gave none.
    Num {
        value: i64,
        unit: Str,
    },
}

impl Sample {
    /// String labels (key, value) in canonical order.
    pub fn str_labels(&self) -> impl Iterator<Item = (&str, &str)> {
        self.label.iter().filter_map(|l| match &l.value {
            LabelValue::Str(s) => Some((&*l.key, &**s)),
            LabelValue::Num { .. } => None,
        })
    }

    /// Numeric labels (key, value, unit) in canonical order.
    pub fn num_labels(&self) -> impl Iterator<Item = (&str, i64, &str)> {
        self.label.iter().filter_map(|l| match &l.value {
            LabelValue::Num { value, unit } => Some((&*l.key, *value, &**unit)),
            LabelValue::Str(_) => None,
        })
    }

    /// Whether any label has this key and string value.
    pub fn has_label(&self, key: &str, value: &str) -> bool {
        self.str_labels().any(|(k, v)| k == key && v == value)
    }
}

/// One sample seen through [`Samples`]: its stack (leaf first), values and labels, borrowed
/// from wherever the samples are kept.
#[derive(Debug, Clone, Copy)]
pub struct SampleRef<'a> {
    pub location: &'a [LocationIdx],
    pub value: &'a [i64],
    pub label: &'a [Label],
    /// The label set's index among its source's distinct ones ([`FlatSamples::label_sets`]),
    /// if the source numbers them: a merge then resolves each set once, not per sample.
    pub label_set: Option<u32>,
}

/// Samples however they are kept: a profile's `Vec<Sample>`, or flat ([`FlatSamples`], a
/// merge's own table) where millions of them would otherwise be three allocations each.
pub trait Samples {
    fn len(&self) -> usize;
    fn get(&self, i: usize) -> SampleRef<'_>;
    /// How many label sets [`SampleRef::label_set`] numbers (0 if it is always `None`).
    fn label_sets(&self) -> usize {
        0
    }
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The samples as the model's `Sample`s (each buffer sized exactly).
    fn to_samples(&self) -> Vec<Sample> {
        (0..self.len())
            .map(|i| {
                let s = self.get(i);
                Sample {
                    location: s.location.to_vec(),
                    value: s.value.to_vec(),
                    label: s.label.to_vec(),
                }
            })
            .collect()
    }
}

impl Samples for [Sample] {
    fn len(&self) -> usize {
        <[Sample]>::len(self)
    }
    fn get(&self, i: usize) -> SampleRef<'_> {
        let s = &self[i];
        SampleRef {
            location: &s.location,
            value: &s.value,
            label: &s.label,
            label_set: None,
        }
    }
}

/// A profile's own samples as a sized value (for `&dyn Samples`).
impl Samples for Vec<Sample> {
    fn len(&self) -> usize {
        Vec::len(self)
    }
    fn get(&self, i: usize) -> SampleRef<'_> {
        Samples::get(&self[..], i)
    }
}

/// A profile's samples in flat arrays (sample `i`'s locations are
/// `location[location_end[i-1]..location_end[i]]`, its values `value[i*n..(i+1)*n]`, its
/// labels `label_sets[label_set[i]]`): what a decoder hands a merge, with no allocation per
/// sample. Label sets are kept once each as the decoder tells them apart (by string-table
/// indices: two sets may still be equal in content); a merge compares them by content.
#[derive(Debug, Clone, Default)]
pub struct FlatSamples {
    /// Values per sample (the profile's sample types).
    pub nvalues: usize,
    pub location: Vec<LocationIdx>,
    pub location_end: Vec<usize>,
    pub value: Vec<i64>,
    pub label_set: Vec<u32>,
    /// `label_sets[0]` is the empty set.
    pub label_sets: Vec<Vec<Label>>,
}

impl FlatSamples {
    pub fn new(nvalues: usize) -> Self {
        FlatSamples {
            nvalues,
            label_sets: vec![Vec::new()],
            ..Default::default()
        }
    }

    /// Appends a sample whose labels are set `set` (from [`add_label_set`]).
    ///
    /// [`add_label_set`]: FlatSamples::add_label_set
    pub(crate) fn push_with_set(&mut self, location: &[LocationIdx], value: &[i64], set: u32) {
        debug_assert_eq!(value.len(), self.nvalues);
        self.location.extend_from_slice(location);
        self.location_end.push(self.location.len());
        self.value.extend_from_slice(value);
        self.label_set.push(set);
    }

    /// Adds a label set its caller knows to be new (the decoder tells sets apart by their
    /// string-table indices), returning its index.
    pub(crate) fn add_label_set(&mut self, label: Vec<Label>) -> u32 {
        let id = self.label_sets.len() as u32;
        self.label_sets.push(label);
        id
    }
}

impl Samples for FlatSamples {
    fn len(&self) -> usize {
        self.location_end.len()
    }
    fn get(&self, i: usize) -> SampleRef<'_> {
        let start = if i == 0 { 0 } else { self.location_end[i - 1] };
        let set = self.label_set[i];
        SampleRef {
            location: &self.location[start..self.location_end[i]],
            value: &self.value[i * self.nvalues..(i + 1) * self.nvalues],
            label: &self.label_sets[set as usize],
            label_set: Some(set),
        }
    }
    fn label_sets(&self) -> usize {
        self.label_sets.len()
    }
}

/// Sorts labels into pprof's canonical order (see [`Sample::label`]).
pub fn canonicalize_labels(labels: &mut [Label]) {
    if labels.len() > 1 {
        labels.sort_by(|a, b| {
            let an = matches!(a.value, LabelValue::Num { .. });
            let bn = matches!(b.value, LabelValue::Num { .. });
            an.cmp(&bn).then_with(|| a.key.cmp(&b.key))
        });
    }
}

/// A memory mapping of the profiled process (binary, shared library, vdso…).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mapping {
    pub id: u64,
    pub memory_start: u64,
    pub memory_limit: u64,
    pub file_offset: u64,
    pub filename: Str,
    pub build_id: Str,
    pub has_functions: bool,
    pub has_filenames: bool,
    pub has_line_numbers: bool,
    pub has_inline_frames: bool,
}

/// A code location; several `line`s mean inlining: `line[0]` is the innermost inlined
/// callee, the last line the physical function owning `address`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Location {
    pub id: u64,
    pub mapping: Option<MappingIdx>,
    pub address: u64,
    pub line: Vec<Line>,
    pub is_folded: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Line {
    pub function: FunctionIdx,
    pub line: i64,
    pub column: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Function {
    pub id: u64,
    pub name: Str,
    pub system_name: Str,
    pub filename: Str,
    pub start_line: i64,
}

impl Profile {
    /// pprof's `SampleIndexByName`: `""` means the default sample type (if it names one)
    /// else the last type; a number or a type name (with an `inuse_` fallback) otherwise.
    pub fn sample_index_by_name(&self, name: &str) -> Result<usize, String> {
        let n = self.sample_type.len();
        if name.is_empty() {
            if !self.default_sample_type.is_empty()
                && let Some(i) = self
                    .sample_type
                    .iter()
                    .position(|t| t.r#type == self.default_sample_type)
            {
                return Ok(i);
            }
            return Ok(n.saturating_sub(1));
        }
        if let Ok(i) = name.parse::<i64>() {
            if i < 0 || i as usize >= n {
                return Err(format!(
                    "sample_index {name} is outside the range [0..{}]",
                    n as i64 - 1
                ));
            }
            return Ok(i as usize);
        }
        let stripped = name.strip_prefix("inuse_").unwrap_or(name);
        for cand in [name, stripped] {
            if let Some(i) = self.sample_type.iter().position(|t| &*t.r#type == cand) {
                return Ok(i);
            }
        }
        let names: Vec<&str> = self.sample_type.iter().map(|t| &*t.r#type).collect();
        Err(format!(
            "sample_index {name:?} must be one of: [{}]",
            names.join(" ")
        ))
    }

    /// Multiplies every sample value by `ratio` (per sample type), as pprof's `ScaleN`:
    /// values become `int64(math.Round(v * ratio))`. A ratio of exactly 1 leaves the column
    /// alone; a sample is kept only if one of the *scaled* columns is non-zero afterwards
    /// (pprof's rule, even when an unscaled column is non-zero).
    pub fn scale_n(&mut self, ratios: &[f64]) {
        if ratios.iter().all(|&r| r == 1.0) {
            return;
        }
        self.sample.retain_mut(|s| {
            let mut keep = false;
            for (v, &r) in s.value.iter_mut().zip(ratios) {
                if r != 1.0 {
                    *v = (*v as f64 * r).round() as i64;
                    keep |= *v != 0;
                }
            }
            keep
        });
    }

    /// Multiplies each value column by its ratio and drops samples left with no non-zero
    /// value. Unlike [`Profile::scale_n`] (pprof's `ScaleN`, which drops a sample when its
    /// *scaled* columns are all zero), a sample whose other columns still hold values stays.
    pub fn scale_columns(&mut self, ratios: &[f64]) {
        if ratios.iter().all(|&r| r == 1.0) {
            return;
        }
        self.sample.retain_mut(|s| {
            for (v, &r) in s.value.iter_mut().zip(ratios) {
                if r != 1.0 {
                    *v = (*v as f64 * r).round() as i64;
                }
            }
            s.value.iter().any(|&v| v != 0)
        });
    }

    /// Multiplies all values by one ratio (pprof's `Scale`).
    pub fn scale(&mut self, ratio: f64) {
        let r = vec![ratio; self.sample_type.len()];
        self.scale_n(&r);
    }

    /// Adds or replaces a string label on every sample (pprof's `SetLabel`).
    pub fn set_label(&mut self, key: &str, value: &str) {
        let (key, value): (Str, Str) = (key.into(), value.into());
        for s in &mut self.sample {
            s.label
                .retain(|l| !(l.key == key && matches!(l.value, LabelValue::Str(_))));
            s.label.push(Label {
                key: key.clone(),
                value: LabelValue::Str(value.clone()),
            });
            canonicalize_labels(&mut s.label);
        }
    }

    /// The number of samples whose values are all zero.
    pub fn has_zero_samples(&self) -> bool {
        self.sample.iter().any(|s| s.value.iter().all(|&v| v == 0))
    }
}
