//! `gocost size` (a Go binary's bytes by section, package and module), the binary side of
//! `gocost compare` (two builds of a program: growth, modules, `replace` directives, gates)
//! and `gocost build-cost` (compile time per package from `go build -debug-actiongraph`).

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use gocost_buildcost::diff::{self, Gates};
use gocost_buildcost::size::{self, By, SizeReport};

use crate::source::InputError;

/// Go binaries can be large; refuse only absurd inputs.
pub const MAX_BINARY: u64 = 4 << 30;

fn bad(msg: impl Into<String>) -> anyhow::Error {
    InputError(msg.into()).into()
}

pub const SIZE_AFTER_HELP: &str = "\
Attributes every byte of a Go executable (ELF; Mach-O and PE too) to its sections (text,
rodata, pclntab, data, bss, DWARF, symtab) and, from the symbol table, to Go packages and
modules. Modules come from the build info Go embeds (what `go version -m` prints): a package
belongs to the module with the longest matching path, standard-library packages to `std`.
Bytes no symbol owns (string data, type descriptors, most of the pclntab, DWARF, headers)
are reported as not attributed, never spread over the packages. A binary built with
-ldflags=-s has no symbol table: its code is attributed from the pclntab, its data is not.

Package sizes equal the per-package sums of `go tool nm -size -type`; section sizes those of
`readelf -S`.

Examples:
  go build -o app ./cmd/app
  gocost size app                       # the largest packages
  gocost size --by module app           # per module, with versions and replacements
  gocost size --by section app          # text, rodata, pclntab, data, bss, DWARF, symtab
  gocost size --json app > size.json
  gocost compare --base app.main --head app   # the change, as a CI gate

Exit codes: 0 ok, 1 I/O error, 2 not a Go binary or a malformed one.";

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ByArg {
    Package,
    Module,
    Section,
}

#[derive(Args)]
pub struct SizeArgs {
    /// The Go executable.
    #[arg(value_name = "BINARY")]
    binary: PathBuf,
    /// Group by package, module or section.
    #[arg(long, value_enum, default_value = "package")]
    by: ByArg,
    /// Rows to list (0 = all).
    #[arg(long, value_name = "N", default_value_t = 30)]
    top: usize,
    /// Print the whole report as JSON (sections, packages, modules, build info).
    #[arg(long)]
    json: bool,
}

/// Reads and measures a binary; errors name the file.
pub fn measure(path: &str) -> Result<SizeReport> {
    let bytes = crate::source::read_capped(path, MAX_BINARY)?;
    size::analyze(&bytes).map_err(|e| bad(format!("{path}: {e}")))
}

pub fn run_size(a: SizeArgs) -> Result<()> {
    let path = a.binary.to_string_lossy().into_owned();
    let r = measure(&path)?;
    if a.json {
        let mut s = serde_json::to_string_pretty(&r)?;
        s.push('\n');
        return crate::write_stdout(&s);
    }
    let by = match a.by {
        ByArg::Package => By::Package,
        ByArg::Module => By::Module,
        ByArg::Section => By::Section,
    };
    crate::write_stdout(&r.to_text(by, a.top))
}

/// The gates' settings for binaries, from flags and `[compare]`.
pub struct BinarySettings {
    pub max_size_growth: Vec<String>,
    pub deny_new_modules: bool,
    pub allow_modules: Vec<String>,
    pub allow_replace: Vec<String>,
}

/// Parses `10%`, `0.1` (a fraction) or `2MB`, `512kB`, `1MiB`, `300000` (bytes).
pub fn parse_growth(s: &str, g: &mut Gates) -> Result<()> {
    let t = s.trim();
    if t.ends_with('%') || (t.contains('.') && t.parse::<f64>().is_ok_and(|v| v < 1.0)) {
        let f = gocost_compare::parse_fraction(t)
            .map_err(|e| bad(format!("--max-size-growth: {e}")))?;
        g.max_growth_frac = Some(f);
        return Ok(());
    }
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" | "k" => 1e3,
        "mb" | "m" => 1e6,
        "gb" | "g" => 1e9,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        u => {
            return Err(bad(format!(
                "--max-size-growth {s:?}: unknown unit {u:?} (use 10%, 500kB, 2MB or 1MiB)"
            )));
        }
    };
    let v: f64 = num.parse().map_err(|_| {
        bad(format!(
            "--max-size-growth {s:?}: not a size or percentage (10%, 500kB, 2MB)"
        ))
    })?;
    g.max_growth_bytes = Some((v * mult).round() as u64);
    Ok(())
}

/// `gocost compare` for two Go binaries. Returns whether the gate failed.
pub fn compare_binaries(
    base: &str,
    head: &str,
    s: &BinarySettings,
    format: crate::compare::Format,
    top: usize,
) -> Result<bool> {
    let mut gates = Gates {
        deny_new_modules: s.deny_new_modules,
        allow_modules: s.allow_modules.clone(),
        allow_replace: s.allow_replace.clone(),
        ..Gates::default()
    };
    for g in &s.max_size_growth {
        parse_growth(g, &mut gates)?;
    }
    let (b, h) = (measure(base)?, measure(head)?);
    let d = diff::compare(base, &b, head, &h, &gates);
    let text = match format {
        crate::compare::Format::Text => d.to_text(top),
        crate::compare::Format::Markdown => d.to_markdown(top),
        crate::compare::Format::Json => d.to_json(),
    };
    crate::write_stdout(&text)?;
    Ok(d.failed())
}

pub const BUILD_COST_AFTER_HELP: &str = "\
Runs a go command with -debug-actiongraph (Go 1.21 or newer) and attributes its wall time to
packages: compile, cgo (cgo and the C compiler) and link steps, the slowest actions and the
critical path (the chain of dependent steps no parallelism shortens). Cached packages cost
microseconds: to measure what a clean CI build pays, add -a (or use a fresh GOCACHE).

Several runs compared with benchstat's statistics (median, confidence interval, U test),
exactly like benchmarks in `gocost compare`:
  for i in 1 2 3 4 5; do gocost build-cost --json -- go build -a -o /dev/null ./... > base$i.json; done
  (on the pull request: head1.json … head5.json)
  gocost build-cost --base base*.json --head head*.json --threshold 10%

Examples:
  gocost build-cost -- go build ./...
  gocost build-cost --top 10 -- go build -a -o app ./cmd/app
  gocost build-cost --json --graph actions.json -- go test -c ./pkg

Exit codes: 0 ok, 1 the go command failed (its output is shown) or, with --base/--head, a
regression, 2 bad input or usage.";

#[derive(Args)]
pub struct BuildCostArgs {
    /// Print the report as JSON (the input of --base/--head).
    #[arg(long)]
    json: bool,
    /// Rows to list: packages and slowest actions.
    #[arg(long, value_name = "N", default_value_t = 20)]
    top: usize,
    /// Keep the action graph the go command wrote in this file.
    #[arg(long, value_name = "FILE")]
    graph: Option<PathBuf>,
    /// Instead of building: read an action graph that `go build -debug-actiongraph=FILE` wrote.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["base", "head"])]
    from_graph: Option<PathBuf>,
    /// Compare runs: `gocost build-cost --json` outputs of the base (one or more).
    #[arg(long, num_args = 1.., value_name = "FILE", requires = "head")]
    base: Vec<String>,
    /// … and of the head.
    #[arg(long, num_args = 1.., value_name = "FILE", requires = "base")]
    head: Vec<String>,
    /// With --base/--head: the smallest change that counts [default: 5%].
    #[arg(long, value_name = "PCT")]
    threshold: Option<String>,
    /// With --base/--head: output format.
    #[arg(long, value_enum)]
    format: Option<crate::compare::Format>,
    /// The go command: `go build ./...`, `go build -a -o app .`, `go test -c ./pkg`.
    #[arg(last = true, value_name = "GO COMMAND")]
    command: Vec<String>,
}

/// `-debug-actiongraph` works in Go 1.21 and later (`go1.21.0`, `go1.27.3`, `devel go1.28-…`).
fn check_go_version(go: &str) -> Result<()> {
    let out = Command::new(go)
        .args(["env", "GOVERSION"])
        .output()
        .with_context(|| format!("running {go} env GOVERSION"))?;
    let v = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let minor = v
        .split("go1.")
        .nth(1)
        .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|m| m.parse::<u32>().ok());
    match minor {
        Some(m) if m < 21 => Err(bad(format!(
            "{v}: -debug-actiongraph needs Go 1.21 or newer"
        ))),
        _ => Ok(()),
    }
}

pub fn run_build_cost(a: BuildCostArgs) -> Result<bool> {
    if !a.base.is_empty() {
        if !a.command.is_empty() {
            return Err(bad("--base/--head compare saved runs: give no go command"));
        }
        return crate::compare::run_files(a.base, a.head, a.threshold, a.format);
    }
    let mut cost = if let Some(g) = &a.from_graph {
        let bytes = std::fs::read(g).with_context(|| format!("reading {}", g.display()))?;
        gocost_buildcost::actiongraph::analyze(&bytes, a.top)
            .map_err(|e| bad(format!("{}: {e}", g.display())))?
    } else {
        run_go(&a)?
    };
    cost.command = a.command.clone();
    if a.json {
        let mut s = serde_json::to_string_pretty(&cost)?;
        s.push('\n');
        crate::write_stdout(&s)?;
    } else {
        crate::write_stdout(&cost.to_text(a.top))?;
    }
    Ok(false)
}

fn run_go(a: &BuildCostArgs) -> Result<gocost_buildcost::actiongraph::BuildCost> {
    let (go, rest) = a
        .command
        .split_first()
        .ok_or_else(|| bad("no go command: gocost build-cost -- go build ./... (see --help)"))?;
    let sub = rest.first().map(String::as_str);
    if !matches!(sub, Some("build" | "install" | "test" | "vet" | "run")) {
        return Err(bad(format!(
            "`{}`: want a go command that builds: go build, go install, go test -c, go vet",
            a.command.join(" ")
        )));
    }
    if rest.iter().any(|x| x.starts_with("-debug-actiongraph")) {
        return Err(bad(
            "the command already has -debug-actiongraph: use --graph FILE to keep it, or --from-graph FILE to read one",
        ));
    }
    check_go_version(go)?;
    let tmp;
    let graph = match &a.graph {
        Some(g) => g.clone(),
        None => {
            tmp = TempFile(
                std::env::temp_dir()
                    .join(format!("gocost-actiongraph-{}.json", std::process::id())),
            );
            tmp.0.clone()
        }
    };
    let status = Command::new(go)
        .arg(rest[0].as_str())
        .arg(format!("-debug-actiongraph={}", graph.display()))
        .args(&rest[1..])
        .status()
        .with_context(|| format!("running {go}"))?;
    if !status.success() {
        anyhow::bail!("`{}` failed ({status})", a.command.join(" "));
    }
    let bytes = std::fs::read(&graph).with_context(|| {
        format!(
            "reading the action graph {} (did the go command build anything?)",
            graph.display()
        )
    })?;
    gocost_buildcost::actiongraph::analyze(&bytes, a.top)
        .map_err(|e| bad(format!("{}: {e}", graph.display())))
}

/// Removed when dropped.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
