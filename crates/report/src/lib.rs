//! # gocost-report
//!
//! Turns a [`Profile`] into the reports `go tool pprof` prints — `-top`, `-traces`, `-raw` —
//! byte for byte, plus the stacks flame graphs are drawn from. It owns pprof's report
//! pipeline: sample index selection, the report total, focus/ignore/hide/show filters,
//! granularity aggregation, the flat/cum call graph with node trimming, sorting, unit
//! selection and header lines. It does no I/O and does not decode or merge profiles (that is
//! `gocost-pprof`).
//!
//! ```
//! use gocost_pprof::{Profile, Sample, ValueType, Location, Line, Function};
//! use gocost_report::{Options, Report};
//!
//! let p = Profile {
//!     sample_type: vec![ValueType::new("samples", "count")],
//!     function: vec![Function { id: 1, name: "main.main".into(), ..Default::default() }],
//!     location: vec![Location { id: 1, line: vec![Line { function: 0, ..Default::default() }], ..Default::default() }],
//!     sample: vec![Sample { location: vec![0], value: vec![5], ..Default::default() }],
//!     ..Default::default()
//! };
//! let rpt = Report::new(p, &Options::default()).unwrap();
//! let text = rpt.top_text();
//! assert!(text.ends_with("         5   100%   100%          5   100%  main.main\n"));
//! ```

mod dot;
mod filter;
mod graph;
mod stacks;
mod text;
pub mod timefmt;

use gocost_pprof::{Profile, prune};
use regex::Regex;

pub use dot::{
    CallGraph, GraphEdge, GraphNode, GraphTag, PeekEdge, PeekEntry, PeekReport,
    shorten_function_name,
};
pub use gocost_pprof::cancel;
pub use graph::NodeInfo;
pub use stacks::{StackFrame, flame_stacks, for_each_flame_stack};
pub use text::{TagKey, TopReport, TopRow};

/// A `hide` regexp for Go's asynchronous preemption: `runtime.asyncPreempt` is the leaf of
/// whatever tight loop it interrupted, so its time belongs to that caller. Analyses that
/// rank functions (compare, cost) hide it; pprof's own reports do not.
pub const HIDE_ASYNC_PREEMPT: &str = r"^runtime\.asyncPreempt$";

/// Report granularity (pprof's `-functions`, `-filefunctions`, `-files`, `-lines`,
/// `-addresses`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Granularity {
    #[default]
    Functions,
    FileFunctions,
    Files,
    Lines,
    Addresses,
}

impl std::str::FromStr for Granularity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "functions" => Granularity::Functions,
            "filefunctions" => Granularity::FileFunctions,
            "files" => Granularity::Files,
            "lines" => Granularity::Lines,
            "addresses" => Granularity::Addresses,
            _ => {
                return Err(format!(
                    "unknown granularity {s:?} (functions, filefunctions, files, lines, addresses)"
                ));
            }
        })
    }
}

/// What kind of report is being prepared; pprof adjusts trimming and granularity per kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Kind {
    #[default]
    Top,
    Traces,
    Raw,
    /// `-tags`: label keys and values (reads sample labels).
    Tags,
    /// `-dot`: the call graph (reads sample labels for its tags).
    Dot,
    /// `-peek`: callers and callees of matching functions, untrimmed.
    Peek,
}

/// Report options, named after pprof's flags.
#[derive(Debug, Clone)]
pub struct Options {
    pub kind: Kind,
    /// `-sample_index`: a type name or a number; `None` = the profile's default.
    pub sample_index: Option<String>,
    /// `-cum`: sort by cumulative value.
    pub cum: bool,
    pub focus: Option<String>,
    pub ignore: Option<String>,
    pub hide: Option<String>,
    pub show: Option<String>,
    /// `-show_from`: drop frames rootward of the rootmost frame matching this.
    pub show_from: Option<String>,
    /// `-tagfocus`, `-tagignore`: keep / drop samples by label (`key=regexp`, `regexp`
    /// matched against `key:value`, or a numeric range such as `64kb:`).
    pub tagfocus: Option<String>,
    pub tagignore: Option<String>,
    /// `-prune_from`: drop frames leafward of the leafmost frame matching this.
    pub prune_from: Option<String>,
    /// `-nodecount`: `None` = pprof's default for the report kind (unlimited for top).
    pub nodecount: Option<usize>,
    pub nodefraction: f64,
    pub edgefraction: f64,
    pub granularity: Granularity,
    /// `-noinlines`: charge inlined callees to their physical caller.
    pub noinlines: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            kind: Kind::Top,
            sample_index: None,
            cum: false,
            focus: None,
            ignore: None,
            hide: None,
            show: None,
            show_from: None,
            tagfocus: None,
            tagignore: None,
            prune_from: None,
            nodecount: None,
            nodefraction: 0.005,
            edgefraction: 0.001,
            granularity: Granularity::Functions,
            noinlines: false,
        }
    }
}

/// A report error: a bad option for this profile. The texts are pprof's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A refine option's regexp (`focus`, `ignore`, `hide`, `show`, `show_from`,
    /// `prune_from`) does not compile.
    #[error("parsing {option} regexp: {error}")]
    BadRegexp { option: String, error: String },
    /// The profile's own `drop_frames` regexp does not compile.
    #[error("failed to compile drop_frames regexp: {0}")]
    DropFrames(String),
    /// The profile has no sample types.
    #[error("profile has no samples")]
    NoSamples,
    /// `sample_index` names no sample type of the profile (pprof's text says which exist).
    #[error("{0}")]
    SampleIndex(String),
    /// A `tagfocus`/`tagignore` value that does not parse.
    #[error("{0}")]
    TagFilter(String),
    /// `peek`'s regexp does not compile.
    #[error("parsing argument regexp {regexp}: {error}")]
    PeekRegexp { regexp: String, error: String },
    /// `peek`'s regexp matches no function.
    #[error("no matches found for regexp: {0}")]
    NoMatch(String),
}

/// A profile prepared for reporting: filtered and aggregated, with its total.
pub struct Report {
    /// The profile after filters and aggregation.
    pub prof: Profile,
    /// Index of the reported sample type.
    pub index: usize,
    /// The report total (Σ|value| before filters; base-only with `-diff_base`).
    pub total: i64,
    pub sample_type: String,
    pub sample_unit: String,
    /// `name=value` of each active filter, for the header.
    pub active_filters: Vec<String>,
    /// Warnings pprof prints on stderr (e.g. "Focus expression matched no samples").
    pub warnings: Vec<String>,
    pub opts: Options,
}

fn compile(name: &str, v: &Option<String>) -> Result<Option<Regex>, Error> {
    match v {
        None => Ok(None),
        Some(s) if s.is_empty() => Ok(None),
        Some(s) => Regex::new(s).map(Some).map_err(|e| Error::BadRegexp {
            option: name.to_string(),
            error: e.to_string(),
        }),
    }
}

impl Report {
    /// Runs pprof's report pipeline up to graph building: drop_frames pruning, sample index,
    /// total, filters, aggregation.
    pub fn new(mut prof: Profile, opts: &Options) -> Result<Report, Error> {
        let mut opts = opts.clone();
        match opts.kind {
            Kind::Raw => {
                opts.granularity = Granularity::Addresses;
                opts.noinlines = false;
                opts.nodecount = Some(0);
                opts.nodefraction = 0.0;
                opts.edgefraction = 0.0;
            }
            Kind::Top | Kind::Tags => {
                if opts.nodecount.is_none() {
                    opts.nodecount = Some(0);
                }
            }
            Kind::Traces | Kind::Dot => {
                if opts.nodecount.is_none() {
                    opts.nodecount = Some(80);
                }
            }
            Kind::Peek => {
                opts.nodecount = Some(0);
                opts.nodefraction = 0.0;
                opts.edgefraction = 0.0;
            }
        }
        prune::remove_uninteresting(&mut prof).map_err(|e| Error::DropFrames(e.to_string()))?;
        if prof.sample_type.is_empty() {
            return Err(Error::NoSamples);
        }
        let index = prof
            .sample_index_by_name(opts.sample_index.as_deref().unwrap_or(""))
            .map_err(Error::SampleIndex)?;
        let st = &prof.sample_type[index];
        let (sample_type, sample_unit) = (st.r#type.to_string(), st.unit.to_string());

        let mut active_filters = Vec::new();
        for (k, v) in [
            ("focus", &opts.focus),
            ("ignore", &opts.ignore),
            ("hide", &opts.hide),
            ("show", &opts.show),
            ("show_from", &opts.show_from),
            ("tagfocus", &opts.tagfocus),
            ("tagignore", &opts.tagignore),
        ] {
            if let Some(v) = v.as_ref().filter(|v| !v.is_empty()) {
                active_filters.push(format!("{k}={v}"));
            }
        }
        let total = compute_total(&prof, index);
        let focus = compile("focus", &opts.focus)?;
        let ignore = compile("ignore", &opts.ignore)?;
        let hide = compile("hide", &opts.hide)?;
        let show = compile("show", &opts.show)?;
        let m = filter::filter_samples_by_name(
            &mut prof,
            focus.as_ref(),
            ignore.as_ref(),
            hide.as_ref(),
            show.as_ref(),
        );
        let show_from = compile("show_from", &opts.show_from)?;
        let show_from_matched = show_from
            .as_ref()
            .is_none_or(|rx| filter::show_from(&mut prof, rx));
        // Numeric labels' units, read from the samples only when a tag filter needs them.
        let tagged = [&opts.tagfocus, &opts.tagignore]
            .iter()
            .any(|v| v.as_deref().is_some_and(|v| !v.is_empty()));
        let units = if tagged {
            filter::num_label_units(&prof)
        } else {
            Default::default()
        };
        let tag = |name: &str, v: &Option<String>| {
            v.as_deref()
                .filter(|v| !v.is_empty())
                .map(|v| filter::tag_filter(name, v, &units).map_err(Error::TagFilter))
                .transpose()
        };
        let tagfocus = tag("tagfocus", &opts.tagfocus)?;
        let tagignore = tag("tagignore", &opts.tagignore)?;
        let (tf, ti) =
            filter::filter_samples_by_tag(&mut prof, tagfocus.as_ref(), tagignore.as_ref());
        if let Some(rx) = compile("prune_from", &opts.prune_from)? {
            gocost_pprof::prune::prune_from(&mut prof, &rx);
        }
        let mut warnings = Vec::new();
        for (name, present, matched) in [
            ("Focus", focus.is_some(), m.focus),
            ("Ignore", ignore.is_some(), m.ignore),
            ("Hide", hide.is_some(), m.hide),
            ("Show", show.is_some(), m.show),
            ("ShowFrom", show_from.is_some(), show_from_matched),
            ("TagFocus", tagfocus.is_some(), tf),
            ("TagIgnore", tagignore.is_some(), ti),
        ] {
            if present && !matched {
                warnings.push(format!("{name} expression matched no samples"));
            }
        }
        filter::aggregate(&mut prof, opts.granularity, !opts.noinlines);
        Ok(Report {
            prof,
            index,
            total,
            sample_type,
            sample_unit,
            active_filters,
            warnings,
            opts,
        })
    }

    /// The `-raw` report (pprof's `Profile.String()`).
    pub fn raw_text(&self) -> String {
        text::raw(&self.prof)
    }

    /// The `-traces` report.
    pub fn traces_text(&self) -> String {
        text::traces(self)
    }

    /// The `-top` report as data.
    pub fn top(&self) -> TopReport {
        text::top(self)
    }

    /// The `-tags` report as data: label keys with their values' shares.
    pub fn tags(&self) -> Vec<text::TagKey> {
        text::tag_keys(self)
    }

    /// The `-tags` report as pprof prints it.
    pub fn tags_text(&self) -> String {
        text::tags(self)
    }

    /// The `-top` report as pprof prints it.
    pub fn top_text(&self) -> String {
        self.top().to_text()
    }

    /// The call graph `-dot` draws, as data.
    pub fn call_graph(&self) -> CallGraph {
        CallGraph::new(self)
    }

    /// The `-dot` report as pprof prints it.
    pub fn dot_text(&self) -> String {
        self.call_graph().to_dot()
    }

    /// The `-peek` report for functions matching `regexp` (build the report with
    /// [`Kind::Peek`]); an error when nothing matches, as pprof's.
    pub fn peek(&self, regexp: &str) -> Result<PeekReport, Error> {
        let rx = Regex::new(regexp).map_err(|e| Error::PeekRegexp {
            regexp: regexp.to_string(),
            error: e.to_string(),
        })?;
        let r = PeekReport::new(self, &rx);
        if r.entries.is_empty() {
            return Err(Error::NoMatch(regexp.to_string()));
        }
        Ok(r)
    }

    /// The `-peek` report as pprof prints it.
    pub fn peek_text(&self, regexp: &str) -> Result<String, Error> {
        self.peek(regexp).map(|r| r.to_text())
    }
}

/// pprof's `computeTotal`: Σ|value|, or only the `-diff_base` samples' when there are any.
fn compute_total(p: &Profile, index: usize) -> i64 {
    let (mut total, mut diff) = (0i64, 0i64);
    for (ci, s) in p.sample.iter().enumerate() {
        if ci.is_multiple_of(1024) {
            gocost_pprof::cancel::checkpoint();
        }
        let v = s.value[index].wrapping_abs();
        total = total.wrapping_add(v);
        if s.has_label("pprof::base", "true") {
            diff = diff.wrapping_add(v);
        }
    }
    if diff > 0 { diff } else { total }
}
