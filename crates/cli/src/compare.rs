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

A config file can keep a repository's settings (flags win):
  [compare]
  threshold = \"10%\"
  alpha = 0.01
  fail_on = [\"time\", \"allocs\"]
  format = \"markdown\"

Examples:
  go test -run '^$' -bench . -count 10 > base.txt      # on the main branch
  go test -run '^$' -bench . -count 10 > head.txt      # on the pull request
  gocost compare --base base.txt --head head.txt --format markdown > comment.md
  gocost compare --base main.cpu.pprof --head pr.cpu.pprof --threshold 10%
  gocost load --rate 500 --duration 60s --profile http://127.0.0.1:6060 -o head.json http://127.0.0.1:8080/
  gocost compare --base base.json --head head.json --threshold 10%

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
    let looks_binary = bytes.starts_with(&[0x1f, 0x8b]) || std::str::from_utf8(bytes).is_err();
    if looks_binary {
        let p = crate::source::decode(src, bytes, max, false)?;
        return Ok(Input::Profile(Box::new(p)));
    }
    if bytes.trim_ascii_start().starts_with(b"{") {
        let v: serde_json::Value = serde_json::from_slice(bytes)
            .map_err(|e| bad(format!("{src}: not a gocost load report: {e}")))?;
        if v.get("model").is_none() || v.get("seconds").is_none() {
            return Err(bad(format!(
                "{src}: JSON, but not a gocost load report (gocost load --json or -o run.json)"
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
