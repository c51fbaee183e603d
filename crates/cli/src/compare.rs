//! `gocost compare`: the CI gate. Reads the inputs (benchmark output or profiles, told apart
//! by their bytes), applies the `[compare]` section of a config file under the flags, and
//! hands the rest to `gocost-compare`. Exit code 0 = no regression, 1 = regression,
//! 2 = bad input (the caller maps errors).

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::{Args, ValueEnum};
use gocost_compare::profiles::{Normalize, ProfileOptions};
use gocost_compare::render::{self, Outcome};
use gocost_compare::{Category, Options, benchfmt, parse_fraction};
use serde::Deserialize;

use crate::source::InputError;

pub const AFTER_HELP: &str = "\
Inputs are `go test -bench` output (several runs per benchmark: -count=10), pprof profiles
(e.g. from `go test -cpuprofile`) or `gocost load` runs (--json / -o run.json), told apart by
their bytes; give benchmarks and profiles at once for a benchmark table plus the functions
that changed most. A load run counts each measured second as one sample: its P50/P90/P99
latency (sec/req), answered requests (req/s) and, with --profile, CPU per request
(cpu-sec/req). Several benchmark files per side are
concatenated; several profiles are compared profile by profile. `-` reads stdin.

Benchmarks are summarised and tested as benchstat does: per benchmark and unit, the median
and its 95% confidence interval, and a two-sided Mann-Whitney U test between base and head.
A result is a REGRESSION when p <= --alpha, it got worse (more time, bytes or allocations,
less throughput) by at least --threshold, and its category is in --fail-on.

Profiles are compared per function: flat and cum, as a share of each side's total
(--normalize total) or as values per profile (--normalize none). The flat change is tested
with a U test when each side has >= 4 profiles, else with a test of the sample counts.

Two Go binaries (one per side; ELF, Mach-O or PE, told apart by their bytes) are compared
by size: per section, module and package, with the modules that came, went or changed
version and new `replace` directives. The gate fails when the head grew by more than
--max-size-growth (default 10%), when it has a module the base had not and
--deny-new-modules or --allow-module is given (allow-listed modules pass), or when it has a
new `replace` directive whose module is not in --allow-replace / allow_replace. Each failure
names the packages and modules responsible. `gocost build-cost --json` runs compare like
benchmarks (several per side).

A config file can keep a repository's settings (flags win):
  [compare]
  threshold = \"10%\"
  alpha = 0.01
  fail_on = [\"time\", \"allocs\"]
  format = \"markdown\"
  max_size_growth = [\"5%\", \"2MB\"]      # Go binaries
  deny_new_modules = true
  allow_modules = [\"github.com/myorg/*\"]
  allow_replace = [\"example.com/internal/*\"]

Examples:
  go test -run '^$' -bench . -count 10 > base.txt      # on the main branch
  go test -run '^$' -bench . -count 10 > head.txt      # on the pull request
  gocost compare --base base.txt --head head.txt --format markdown > comment.md
  gocost compare --base main.cpu.pprof --head pr.cpu.pprof --threshold 10%
  gocost load --rate 500 --duration 60s --profile http://127.0.0.1:6060 -o head.json http://127.0.0.1:8080/
  gocost compare --base base.json --head head.json --threshold 10%
  go build -o app.base ./cmd/app                      # on the main branch, then on the PR:
  gocost compare --base app.base --head app --max-size-growth 5%,1MB --deny-new-modules

Exit codes: 0 no regression, 1 a regression, 2 bad input or usage.";

#[derive(Debug, Clone, Copy, ValueEnum, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Text,
    Markdown,
    Json,
}

#[derive(Args)]
pub struct CompareArgs {
    /// Base (before) inputs: benchmark output files or profiles.
    #[arg(long, required = true, num_args = 1.., value_name = "FILE")]
    base: Vec<String>,
    /// Head (after) inputs, of the same kind as the base.
    #[arg(long, required = true, num_args = 1.., value_name = "FILE")]
    head: Vec<String>,
    /// Smallest change that counts, e.g. 5% or 0.05 [default: 5%].
    #[arg(long, value_name = "PCT")]
    threshold: Option<String>,
    /// Significance level: a change counts when p <= alpha [default: 0.05].
    #[arg(long, value_name = "P")]
    alpha: Option<f64>,
    /// Categories whose regressions fail: time, memory, allocs, other (comma-separated)
    /// [default: time,memory,allocs].
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    fail_on: Option<Vec<String>>,
    /// Output format [default: text].
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// Profiles: the sample type to compare (e.g. alloc_space); default: the profile's.
    #[arg(long, value_name = "NAME|N")]
    sample_index: Option<String>,
    /// Profiles: compare shares of each side's total, or values per profile [default: total].
    #[arg(long, value_name = "total|none")]
    normalize: Option<String>,
    /// Profiles: functions below this share of the total on both sides never fail [default: 1%].
    #[arg(long, value_name = "PCT")]
    min_share: Option<String>,
    /// Profiles: how many functions to list in text and Markdown [default: 20].
    #[arg(long, value_name = "N")]
    top: Option<usize>,
    /// Config file with a [compare] section [default: ./gocost.toml if it exists].
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Refuse inputs larger than this many bytes (profiles: after decompression).
    #[arg(long, value_name = "BYTES", default_value_t = gocost_pprof::DEFAULT_MAX_SIZE)]
    max_size: u64,
    /// Go binaries: fail when the head is larger than the base by more than this: a
    /// percentage (10%) or a size (500kB, 2MB, 1MiB); both may be given, comma-separated
    /// [default: 10%].
    #[arg(
        long,
        value_name = "PCT|SIZE",
        value_delimiter = ',',
        help_heading = "Go binaries"
    )]
    max_size_growth: Option<Vec<String>>,
    /// Go binaries: fail when the head has a module the base had not (unless --allow-module
    /// lists it).
    #[arg(long, help_heading = "Go binaries")]
    deny_new_modules: bool,
    /// Go binaries: a module that may be added: a path or a prefix with `*`
    /// (github.com/myorg/*); giving one implies --deny-new-modules for the others.
    #[arg(long, value_name = "PATTERN", help_heading = "Go binaries")]
    allow_module: Vec<String>,
    /// Go binaries: a module whose new `replace` directive passes (a path or prefix with
    /// `*`); any other new `replace` fails.
    #[arg(long, value_name = "PATTERN", help_heading = "Go binaries")]
    allow_replace: Vec<String>,
}

/// The `[compare]` section of a config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    threshold: Option<String>,
    alpha: Option<f64>,
    fail_on: Option<Vec<String>>,
    format: Option<Format>,
    sample_index: Option<String>,
    normalize: Option<String>,
    min_share: Option<String>,
    top: Option<usize>,
    max_size_growth: Option<StringOrList>,
    deny_new_modules: Option<bool>,
    allow_modules: Option<Vec<String>>,
    allow_replace: Option<Vec<String>>,
}

/// `"10%"` or `["10%", "2MB"]`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum StringOrList {
    One(String),
    List(Vec<String>),
}

impl StringOrList {
    fn into_vec(self) -> Vec<String> {
        match self {
            StringOrList::One(s) => vec![s],
            StringOrList::List(l) => l,
        }
    }
}

#[derive(Deserialize)]
struct FileWithCompare {
    #[serde(default)]
    compare: FileSettings,
}

fn bad(msg: impl Into<String>) -> anyhow::Error {
    InputError(msg.into()).into()
}

fn file_settings(explicit: Option<&Path>) -> Result<FileSettings> {
    let path = match explicit {
        Some(p) => p.to_path_buf(),
        None => {
            let p = PathBuf::from("gocost.toml");
            if !p.exists() {
                return Ok(FileSettings::default());
            }
            p
        }
    };
    let text =
        std::fs::read_to_string(&path).map_err(|e| bad(format!("{}: {e}", path.display())))?;
    let f: FileWithCompare =
        toml::from_str(&text).map_err(|e| bad(format!("{}: {e}", path.display())))?;
    Ok(f.compare)
}

enum Input {
    Bench(Vec<benchfmt::Result>),
    Profile(Box<gocost_pprof::Profile>),
}

/// Benchmark output is text; a profile is gzip'd or binary protobuf; a `gocost load` run is
/// JSON.
fn parse_input(src: &str, bytes: &[u8], max: u64) -> Result<Input> {
    if gocost_buildcost::is_executable(bytes) {
        return Err(bad(format!(
            "{src}: an executable: compare one Go binary with one (--base old --head new)"
        )));
    }
    let looks_binary = bytes.starts_with(&[0x1f, 0x8b]) || std::str::from_utf8(bytes).is_err();
    if looks_binary {
        let p = crate::source::decode(src, bytes, max, false)?;
        return Ok(Input::Profile(Box::new(p)));
    }
    if bytes.trim_ascii_start().starts_with(b"{") {
        let v: serde_json::Value = serde_json::from_slice(bytes)
            .map_err(|e| bad(format!("{src}: not a gocost load report: {e}")))?;
        if v.get("build_cost").is_some() {
            let b: gocost_buildcost::actiongraph::BuildCost = serde_json::from_value(v)
                .map_err(|e| bad(format!("{src}: not a gocost build-cost report: {e}")))?;
            let (results, _) = benchfmt::parse(&b.to_bench_text());
            return Ok(Input::Bench(results));
        }
        if v.get("model").is_none() || v.get("seconds").is_none() {
            return Err(bad(format!(
                "{src}: JSON, but not a gocost load report (gocost load --json) or build-cost report (gocost build-cost --json)"
            )));
        }
        return Ok(Input::Bench(
            benchfmt::load_run(&v).map_err(|e| bad(format!("{src}: {e}")))?,
        ));
    }
    let text = std::str::from_utf8(bytes).unwrap_or_default();
    let (results, errors) = benchfmt::parse(text);
    for e in &errors {
        eprintln!("gocost: {src}:{}: {}", e.line, e.msg);
    }
    if results.is_empty() {
        return Err(bad(format!(
            "{src}: no benchmark results (expected `go test -bench` output or a pprof profile)"
        )));
    }
    Ok(Input::Bench(results))
}

fn load_side(srcs: &[String], max: u64) -> Result<Vec<(String, Input)>> {
    srcs.iter()
        .map(|s| {
            Ok((
                s.clone(),
                parse_input(s, &crate::source::read_capped(s, max)?, max)?,
            ))
        })
        .collect()
}

/// Whether a file starts with an executable's magic (stdin never does: it is read later).
fn starts_like_executable(path: &str) -> bool {
    use std::io::Read;
    if path == "-" {
        return false;
    }
    let mut head = [0u8; 64];
    let Ok(mut f) = std::fs::File::open(path) else {
        return false;
    };
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..]) {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k,
        }
    }
    gocost_buildcost::is_executable(&head[..n])
}

/// `gocost build-cost --base … --head …`: saved runs compared as benchmarks.
pub fn run_files(
    base: Vec<String>,
    head: Vec<String>,
    threshold: Option<String>,
    format: Option<Format>,
) -> Result<bool> {
    run(CompareArgs {
        base,
        head,
        threshold,
        alpha: None,
        fail_on: None,
        format,
        sample_index: None,
        normalize: None,
        min_share: None,
        top: None,
        config: None,
        max_size: gocost_pprof::DEFAULT_MAX_SIZE,
        max_size_growth: None,
        deny_new_modules: false,
        allow_module: Vec::new(),
        allow_replace: Vec::new(),
    })
}

/// Runs the comparison, prints the report, and returns whether something regressed.
pub fn run(a: CompareArgs) -> Result<bool> {
    let fs = file_settings(a.config.as_deref())?;
    let threshold = a.threshold.or(fs.threshold).unwrap_or_else(|| "5%".into());
    let alpha = a.alpha.or(fs.alpha).unwrap_or(0.05);
    if !(alpha > 0.0 && alpha < 1.0) {
        return Err(bad(format!("--alpha {alpha}: must be between 0 and 1")));
    }
    let fail_on = match a.fail_on.or(fs.fail_on) {
        Some(list) => list
            .iter()
            .map(|s| Category::parse(s.trim()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(bad)?,
        None => Options::default().fail_on,
    };
    let o = Options {
        threshold: parse_fraction(&threshold).map_err(|e| bad(format!("--threshold: {e}")))?,
        alpha,
        fail_on,
    };
    let po = ProfileOptions {
        sample_index: a.sample_index.or(fs.sample_index),
        normalize: Normalize::parse(
            &a.normalize
                .or(fs.normalize)
                .unwrap_or_else(|| "total".into()),
        )
        .map_err(bad)?,
        min_share: parse_fraction(&a.min_share.or(fs.min_share).unwrap_or_else(|| "1%".into()))
            .map_err(|e| bad(format!("--min-share: {e}")))?,
    };
    let format = a.format.or(fs.format).unwrap_or(Format::Text);
    let top = a.top.or(fs.top).unwrap_or(20);

    if a.base.iter().chain(&a.head).filter(|s| *s == "-").count() > 1 {
        return Err(bad("only one input can be stdin (-)"));
    }
    // Go binaries: their size, modules and `replace` directives (told apart by their magic).
    let exe: Vec<bool> = a
        .base
        .iter()
        .chain(&a.head)
        .map(|p| starts_like_executable(p))
        .collect();
    if exe.iter().any(|&e| e) {
        if a.base.len() != 1 || a.head.len() != 1 || !exe.iter().all(|&e| e) {
            return Err(bad(
                "Go binaries are compared one with one: --base old-binary --head new-binary",
            ));
        }
        let settings = crate::buildcost::BinarySettings {
            max_size_growth: a
                .max_size_growth
                .or(fs.max_size_growth.map(StringOrList::into_vec))
                .unwrap_or_else(|| vec!["10%".into()]),
            deny_new_modules: a.deny_new_modules || fs.deny_new_modules.unwrap_or(false),
            allow_modules: if a.allow_module.is_empty() {
                fs.allow_modules.unwrap_or_default()
            } else {
                a.allow_module
            },
            allow_replace: if a.allow_replace.is_empty() {
                fs.allow_replace.unwrap_or_default()
            } else {
                a.allow_replace
            },
        };
        return crate::buildcost::compare_binaries(&a.base[0], &a.head[0], &settings, format, top);
    }
    let base = load_side(&a.base, a.max_size)?;
    let head = load_side(&a.head, a.max_size)?;
    // Each side may hold benchmark output, profiles, or both; what one side has, the other
    // must have too.
    type Side = (Vec<benchfmt::Result>, Vec<(String, gocost_pprof::Profile)>);
    let split = |side: Vec<(String, Input)>| -> Side {
        let (mut benches, mut profiles) = (Vec::new(), Vec::new());
        for (name, input) in side {
            match input {
                Input::Bench(r) => benches.extend(r),
                Input::Profile(p) => profiles.push((name, *p)),
            }
        }
        (benches, profiles)
    };
    let ((bb, bp), (hb, hp)) = (split(base), split(head));
    for (what, b, h) in [
        ("benchmark output", !bb.is_empty(), !hb.is_empty()),
        ("profiles", !bp.is_empty(), !hp.is_empty()),
    ] {
        if b != h {
            return Err(bad(format!(
                "only the {} side has {what}; give both sides the same kinds of input",
                if b { "base" } else { "head" }
            )));
        }
    }
    let outcome = Outcome {
        benchmarks: (!bb.is_empty()).then(|| gocost_compare::bench::compare(&bb, &hb, &o)),
        profiles: if bp.is_empty() {
            None
        } else {
            Some(gocost_compare::profiles::compare(bp, hp, &po, &o).map_err(bad)?)
        },
    };
    let text = match format {
        Format::Text => render::text(&outcome, &o, top),
        Format::Markdown => render::markdown(&outcome, &o, top),
        Format::Json => render::json(&outcome, &o),
    };
    crate::write_stdout(&text)?;
    Ok(outcome.regressions() > 0)
}
