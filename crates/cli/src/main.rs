//! `gocost`: the command-line entry point.
//!
//! Exit codes: 0 success; 1 an operational failure (I/O, network); 2 bad input — an unreadable
//! or malformed profile, incompatible profiles, or a bad flag. A closed stdout (e.g. piping
//! into `head`) is not an error.

mod buildcost;
mod compare;
mod flame;
mod insights;
mod load;
mod load_report;
mod load_service;
mod serve;
mod source;
mod trace;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use gocost_report::{Granularity, Kind, Options, Report};

use source::{InputError, Inputs, LoadOptions};

const AFTER_HELP: &str = "\
PROFILE is a file written by Go (net/http/pprof, runtime/pprof, `go test -cpuprofile`),
gzip'd or raw protobuf, or an http(s):// URL of a Go pprof endpoint. Several PROFILEs are
merged first, exactly as `go tool pprof a.pb.gz b.pb.gz` does.

Examples:
  gocost top cpu.pb.gz                          # like: go tool pprof -top cpu.pb.gz
  gocost top --cum --nodecount 20 cpu.pb.gz
  gocost top --sample-index alloc_space heap.pb.gz
  gocost top --diff-base before.pb.gz after.pb.gz
  gocost merge -o day.pb.gz profiles/*.pb.gz
  gocost flame -o cpu.svg cpu.pb.gz
  gocost top http://127.0.0.1:6060/debug/pprof/profile --seconds 10
  gocost compare --base old.txt --head new.txt  # go test -bench output or profiles, for CI
  gocost size app                               # a Go binary's bytes by package and module
  gocost compare --base app.old --head app      # binary growth, new modules, for CI
  gocost build-cost -- go build -a ./...        # compile time per package
  gocost leaks goroutine-*.pb.gz                # goroutine leaks over time
  gocost heap-growth heap-*.pb.gz               # allocation sites that keep growing
  gocost cost cpu.pb.gz heap.pb.gz              # cores and heap, priced per month
  gocost gc cpu.pb.gz allocs.pb.gz              # GC CPU by phase, allocation by site
  gocost trace http://127.0.0.1:6060 -o app.trace --seconds 5   # an execution trace
  gocost trace summary app.trace                # pauses, scheduler latency, MMU, blocking

Exit codes: 0 ok, 1 operational error (I/O, network) or, for compare, a regression,\n2 bad input or usage.";

#[derive(Parser)]
#[command(
    name = "gocost",
    version,
    about = "Know what your Go services cost. An exact, fast `go tool pprof` for profile files.",
    after_help = AFTER_HELP
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
    /// Log level for what gocost reports on stderr: error, warn, info, debug or trace, or a
    /// RUST_LOG-style filter (`gocost_scrape=debug,info`). RUST_LOG is used when this is unset.
    #[arg(long, global = true, value_name = "LEVEL")]
    log_level: Option<String>,
}

/// Logs go to stderr, one line per event with time, level and target (`RUST_LOG` conventions).
fn init_logging(level: Option<&str>) -> anyhow::Result<()> {
    use tracing_subscriber::EnvFilter;
    let filter = match level {
        Some(l) => {
            EnvFilter::try_new(l).map_err(|e| InputError(format!("--log-level {l:?}: {e}")))?
        }
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    Ok(())
}

#[derive(Subcommand)]
enum Cmd {
    /// Scrape Go services into the embedded store and serve the API (default: 127.0.0.1:4040).
    #[command(
        after_help = "With no --config, gocost loads a recording of a real Go service as job=\"demo\", so\n\
                      `go tool pprof 'http://127.0.0.1:4040/api/v1/profile?query=cpu{job=\"demo\"}'` works at once.\n\n\
                      A minimal config (Prometheus-style scrape jobs):\n\n\
                      \x20 [storage]\n\
                      \x20 path = \"./data\"\n\
                      \x20 retention = \"30d\"            # also: sync_interval (<= 5s), block_duration (1h), [storage.s3]\n\n\
                      \x20 [[scrape]]\n\
                      \x20 job = \"checkout\"\n\
                      \x20 targets = [\"127.0.0.1:6060\"]\n\
                      \x20 interval = \"15s\"\n\
                      \x20 profiles = [\"cpu\", \"heap\", \"allocs\", \"goroutine\", \"mutex\", \"block\"]\n\
                      \x20 metrics = [\"expvar\", \"prometheus\"]\n\
                      \x20 labels = { env = \"prod\" }\n\n\
                      SIGHUP reloads the config's scrape jobs. Every key is in the README; the API in API.md."
    )]
    Serve(ServeCmd),
    /// Print the top functions by flat (or cum) value: `go tool pprof -top`.
    #[command(
        after_help = "Output is byte-identical to `go tool pprof -top` with the same flags; times print \
                      in the local time zone (TZ), as pprof's do.\n\n\
                      Example: gocost top --cum --nodecount 20 --focus 'main\\.' cpu.pb.gz"
    )]
    Top(TopArgs),
    /// Print every sample's stack: `go tool pprof -traces`.
    Traces(ReportArgs),
    /// Print the profile's raw contents: `go tool pprof -raw`.
    Raw(ReportArgs),
    /// Print the pprof labels (pprof.Do, allocation sizes) and their shares: `go tool pprof -tags`.
    Tags(ReportArgs),
    /// Print the call graph in Graphviz's dot language: `go tool pprof -dot`.
    #[command(
        after_help = "Output is byte-identical to `go tool pprof -dot` with the same flags: the same \
                      nodes, edges, weights, tags and pruning (nodes by entropy, --nodecount \
                      counting tags as nodes, redundant dotted edges removed).\n\n\
                      Example: gocost dot --focus 'main\\.' cpu.pb.gz | dot -Tsvg > cpu.svg"
    )]
    Dot(DotArgs),
    /// Print the callers and callees of functions matching a regexp: `go tool pprof -peek`.
    #[command(
        after_help = "Output is byte-identical to `go tool pprof -peek=REGEX`: for each matching \
                      function, callers above it and callees below, each with its weight and its \
                      share of the function's cum. Nothing is trimmed.\n\n\
                      Example: gocost peek 'runtime\\.mallocgc$' heap.pb.gz"
    )]
    Peek(PeekArgs),
    /// Offer HTTP load to a service (a fixed rate or concurrency) and report its latency.
    #[command(after_help = load::AFTER_HELP)]
    Load(Box<load::LoadArgs>),
    /// Merge profiles into one file that `go tool pprof` reads like the inputs together.
    Merge(MergeArgs),
    /// Draw a flame graph: .svg (interactive), .folded (collapsed stacks) or .json (speedscope).
    Flame(FlameArgs),
    /// CI gate: compare benchmark results or profiles, base vs head; exit 1 on a regression.
    #[command(after_help = compare::AFTER_HELP)]
    Compare(compare::CompareArgs),
    /// A Go binary's size by package, module and section, with its modules (go version -m).
    #[command(after_help = buildcost::SIZE_AFTER_HELP)]
    Size(buildcost::SizeArgs),
    /// Compile time per package of a go build (-debug-actiongraph): slowest, critical path.
    #[command(after_help = buildcost::BUILD_COST_AFTER_HELP)]
    BuildCost(buildcost::BuildCostArgs),
    /// Find goroutine leaks in goroutine profiles (or debug=2 dumps) taken over time.
    #[command(after_help = insights::AFTER_HELP)]
    Leaks(insights::LeaksArgs),
    /// Find allocation sites whose heap in use keeps growing, in heap profiles over time.
    #[command(after_help = insights::HEAP_AFTER_HELP)]
    HeapGrowth(insights::HeapArgs),
    /// What a service costs: cores and heap from its CPU and heap profiles, priced.
    #[command(after_help = insights::COST_AFTER_HELP)]
    Cost(insights::CostArgs),
    /// What garbage collection costs (GC CPU by phase) and what drives it (allocation sites).
    #[command(after_help = insights::GC_AFTER_HELP)]
    Gc(insights::GcArgs),
    /// Go execution traces: take one from a service; summary, GC pauses and MMU, scheduler
    /// latency, goroutines, blocking profiles (`go tool trace -pprof`).
    #[command(after_help = trace::AFTER_HELP)]
    Trace(trace::TraceArgs),
    /// Check a stopped server's data directory: replay the WAL, read every block whole.
    #[command(
        after_help = "Reads the data directory and changes nothing in it (it runs on a full disk). \
                      Exits 0 when every block and WAL record decodes, 1 when something is damaged \
                      (each problem is printed with the file and byte offset; notes are harmless \
                      leftovers the next start tidies), 2 when the check cannot run (no such \
                      directory, a bad config, or a running `gocost serve` holds the directory: \
                      stop it first). With --repair, damaged blocks and WAL segments are moved to \
                      <data>/damaged/ (a segment's good records stay), leftovers are tidied, and \
                      the exit code is the check's after the repair."
    )]
    Verify(VerifyCmd),
}

#[derive(Args)]
struct VerifyCmd {
    /// Configuration file (for storage.path and storage.s3).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Data directory (default: the config's storage.path, else ./gocost-data).
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Fix what the check finds (moves damaged files to <data>/damaged/); without it,
    /// nothing is changed.
    #[arg(long)]
    repair: bool,
}

#[derive(Args)]
#[command(next_help_heading = "Input")]
struct SourceArgs {
    /// Profile files or http(s):// URLs; several are merged.
    #[arg(required = true, value_name = "PROFILE")]
    profiles: Vec<String>,
    /// Subtract this profile and show percentages relative to it (pprof's -diff_base).
    #[arg(long, value_name = "FILE")]
    diff_base: Vec<String>,
    /// Subtract this profile (pprof's -base), e.g. to see what a cumulative profile grew by.
    #[arg(long, value_name = "FILE", conflicts_with = "diff_base")]
    base: Vec<String>,
    /// Scale the profile to the base's total before subtracting.
    #[arg(long)]
    normalize: bool,
    /// Duration of CPU and delta profiles fetched from URLs, in seconds.
    #[arg(long, value_name = "N")]
    seconds: Option<u64>,
    /// Refuse profiles that decompress to more than this many bytes (guards against gzip bombs).
    #[arg(long, value_name = "BYTES", default_value_t = gocost_pprof::DEFAULT_MAX_SIZE)]
    max_size: u64,
}

#[derive(Args)]
#[command(next_help_heading = "Sample type, filters and granularity")]
struct FilterArgs {
    /// Sample type to report: a name (e.g. alloc_space, delay) or index. Default: the
    /// profile's default type, else the last one.
    #[arg(long, value_name = "NAME|N")]
    sample_index: Option<String>,
    /// Only samples with a frame matching this regexp (function, file or binary name).
    #[arg(long, value_name = "RE")]
    focus: Option<String>,
    /// Drop samples with a frame matching this regexp.
    #[arg(long, value_name = "RE")]
    ignore: Option<String>,
    /// Remove frames matching this regexp; their time goes to the caller.
    #[arg(long, value_name = "RE")]
    hide: Option<String>,
    /// Keep only frames matching this regexp.
    #[arg(long, value_name = "RE")]
    show: Option<String>,
    /// Drop the frames above (callers of) the outermost frame matching this regexp, and
    /// samples without one.
    #[arg(long, value_name = "RE")]
    show_from: Option<String>,
    /// Only samples with a label matching: `key=RE[,RE...]`, `RE` (against `key:value`), or
    /// a range of a numeric label (`64kb:`, `:1mb`, `4kb:64kb`, `bytes=512`).
    #[arg(long, value_name = "FILTER")]
    tagfocus: Option<String>,
    /// Drop samples with a label matching (as --tagfocus).
    #[arg(long, value_name = "FILTER")]
    tagignore: Option<String>,
    /// Drop the frames below (callees of) the innermost frame matching this regexp.
    #[arg(long, value_name = "RE")]
    prune_from: Option<String>,
    /// Aggregate by functions (default), filefunctions, files, lines or addresses.
    #[arg(long, value_name = "G", default_value = "functions")]
    granularity: String,
    /// Charge inlined functions to their physical caller.
    #[arg(long)]
    noinlines: bool,
}

#[derive(Args)]
struct ReportArgs {
    #[command(flatten)]
    filter: FilterArgs,
    #[command(flatten)]
    src: SourceArgs,
}

#[derive(Args)]
struct TopArgs {
    /// Show at most N rows (0 = all).
    #[arg(long, value_name = "N")]
    nodecount: Option<usize>,
    /// Hide nodes whose cum is below this fraction of the total.
    #[arg(long, value_name = "F", default_value_t = 0.005)]
    nodefraction: f64,
    /// Sort by cumulative value instead of flat.
    #[arg(long)]
    cum: bool,
    /// Print JSON (header, rows with raw and formatted values) instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    filter: FilterArgs,
    #[command(flatten)]
    src: SourceArgs,
}

#[derive(Args)]
struct DotArgs {
    /// Draw at most N nodes; a node's tags count as nodes too (pprof's default: 80).
    #[arg(long, value_name = "N")]
    nodecount: Option<usize>,
    /// Hide nodes whose cum is below this fraction of the total.
    #[arg(long, value_name = "F", default_value_t = 0.005)]
    nodefraction: f64,
    /// Hide edges whose weight is below this fraction of the total.
    #[arg(long, value_name = "F", default_value_t = 0.001)]
    edgefraction: f64,
    /// Print the graph as JSON (nodes, edges, tags, legend) instead of dot.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    filter: FilterArgs,
    #[command(flatten)]
    src: SourceArgs,
}

#[derive(Args)]
struct PeekArgs {
    /// Functions to show: a regexp matched against each node's name.
    #[arg(value_name = "REGEX")]
    regex: String,
    /// Order the functions by cumulative value instead of flat.
    #[arg(long)]
    cum: bool,
    #[command(flatten)]
    filter: FilterArgs,
    #[command(flatten)]
    src: SourceArgs,
}

#[derive(Args)]
struct ServeCmd {
    /// Configuration file (TOML; see the README for the format).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Data directory (default: the config's storage.path, else ./gocost-data).
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Address to listen on (default 127.0.0.1:4040: loopback only).
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// Do not load the bundled demo recording into an empty store.
    #[arg(long)]
    no_demo: bool,
    /// This instance's role in a `[cluster]` (over the config's `role`): `all`, or `query`
    /// (answer queries only: no scraping, nothing stored).
    #[arg(long, value_parser = ["all", "query"])]
    role: Option<String>,
}

#[derive(Args)]
struct MergeArgs {
    #[command(flatten)]
    src: SourceArgs,
    /// Output file (gzip'd profile.proto).
    #[arg(short, long, value_name = "FILE")]
    output: PathBuf,
}

#[derive(Args)]
struct FlameArgs {
    /// Output file; the format follows the extension: .svg, .folded or .json (speedscope).
    #[arg(short, long, value_name = "FILE")]
    output: PathBuf,
    /// Draw an icicle graph (roots at the top) instead of a flame graph.
    #[arg(long)]
    inverted: bool,
    #[command(flatten)]
    filter: FilterArgs,
    #[command(flatten)]
    src: SourceArgs,
}

fn load_opts(s: &SourceArgs, labels: bool) -> LoadOptions {
    LoadOptions {
        max_size: s.max_size,
        seconds: s.seconds,
        labels,
    }
}

fn inputs(s: &SourceArgs) -> Inputs {
    Inputs {
        sources: s.profiles.clone(),
        bases: if s.diff_base.is_empty() {
            s.base.clone()
        } else {
            s.diff_base.clone()
        },
        diff_base: !s.diff_base.is_empty(),
        normalize: s.normalize,
    }
}

fn report_options(kind: Kind, f: &FilterArgs) -> Result<Options> {
    let granularity: Granularity = f.granularity.parse().map_err(|e: String| InputError(e))?;
    Ok(Options {
        kind,
        sample_index: f.sample_index.clone(),
        focus: f.focus.clone(),
        ignore: f.ignore.clone(),
        hide: f.hide.clone(),
        show: f.show.clone(),
        show_from: f.show_from.clone(),
        tagfocus: f.tagfocus.clone(),
        tagignore: f.tagignore.clone(),
        prune_from: f.prune_from.clone(),
        granularity,
        noinlines: f.noinlines,
        ..Options::default()
    })
}

fn build_report(src: &SourceArgs, opts: &Options) -> Result<Report> {
    // Only -raw and -traces print labels, and tag filters read them; other reports ignore
    // them.
    let labels = matches!(opts.kind, Kind::Raw | Kind::Traces | Kind::Tags | Kind::Dot)
        || opts.tagfocus.is_some()
        || opts.tagignore.is_some();
    let p = source::load(&inputs(src), &load_opts(src, labels))?;
    let rpt = Report::new(p, opts).map_err(|e| InputError(e.to_string()))?;
    for w in &rpt.warnings {
        eprintln!("{w}");
    }
    Ok(rpt)
}

fn write_stdout(s: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(s.as_bytes())?;
    out.flush()?;
    Ok(())
}

fn run(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::Serve(a) => serve::serve(serve::ServeArgs {
            config: a.config,
            data: a.data,
            listen: a.listen,
            no_demo: a.no_demo,
            role: a.role,
        }),
        Cmd::Verify(a) => {
            if serve::verify(a.config, a.data, a.repair)? {
                Ok(())
            } else {
                Err(anyhow::anyhow!("the store has problems (listed above)"))
            }
        }
        Cmd::Top(a) => {
            let mut opts = report_options(Kind::Top, &a.filter)?;
            opts.cum = a.cum;
            opts.nodecount = a.nodecount;
            opts.nodefraction = a.nodefraction;
            let rpt = build_report(&a.src, &opts)?;
            let top = rpt.top();
            // The process is about to exit: skip freeing a possibly huge profile.
            std::mem::forget(rpt);
            if a.json {
                let mut s = serde_json::to_string_pretty(&top)?;
                s.push('\n');
                write_stdout(&s)
            } else {
                write_stdout(&top.to_text())
            }
        }
        Cmd::Traces(a) => {
            let rpt = build_report(&a.src, &report_options(Kind::Traces, &a.filter)?)?;
            write_stdout(&rpt.traces_text())
        }
        Cmd::Raw(a) => {
            let rpt = build_report(&a.src, &report_options(Kind::Raw, &a.filter)?)?;
            write_stdout(&rpt.raw_text())
        }
        Cmd::Tags(a) => {
            let rpt = build_report(&a.src, &report_options(Kind::Tags, &a.filter)?)?;
            write_stdout(&rpt.tags_text())
        }
        Cmd::Dot(a) => {
            let mut opts = report_options(Kind::Dot, &a.filter)?;
            opts.nodecount = a.nodecount;
            opts.nodefraction = a.nodefraction;
            opts.edgefraction = a.edgefraction;
            let g = build_report(&a.src, &opts)?.call_graph();
            if a.json {
                let mut s = serde_json::to_string_pretty(&g)?;
                s.push('\n');
                write_stdout(&s)
            } else {
                write_stdout(&g.to_dot())
            }
        }
        Cmd::Peek(a) => {
            let mut opts = report_options(Kind::Peek, &a.filter)?;
            opts.cum = a.cum;
            let rpt = build_report(&a.src, &opts)?;
            let text = rpt
                .peek_text(&a.regex)
                .map_err(|e| InputError(e.to_string()))?;
            write_stdout(&text)
        }
        Cmd::Load(a) => load::run(*a),
        Cmd::Merge(a) => {
            let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
            let bytes = match source::load_merge(&inputs(&a.src), &load_opts(&a.src, true))? {
                source::Merged::Profile(p) => {
                    let bytes = gocost_pprof::encode_parallel(&p, workers);
                    std::mem::forget(p);
                    bytes
                }
                source::Merged::Merger(m) => {
                    let bytes = m.encode_parallel(workers);
                    // Freeing hundreds of MB of merged samples only delays the exit.
                    std::mem::forget(m);
                    bytes
                }
            };
            std::fs::write(&a.output, bytes)
                .with_context(|| format!("writing {}", a.output.display()))?;
            Ok(())
        }
        Cmd::Compare(a) => {
            if compare::run(a)? {
                Err(Regressed.into())
            } else {
                Ok(())
            }
        }
        Cmd::Size(a) => buildcost::run_size(a),
        Cmd::BuildCost(a) => {
            if buildcost::run_build_cost(a)? {
                Err(Regressed.into())
            } else {
                Ok(())
            }
        }
        Cmd::Leaks(a) => insights::run(a),
        Cmd::HeapGrowth(a) => insights::run_heap(a),
        Cmd::Cost(a) => insights::run_cost(a),
        Cmd::Gc(a) => insights::run_gc(a),
        Cmd::Trace(a) => trace::run(a),
        Cmd::Flame(a) => {
            flame::check_format(&a.output)?;
            let rpt = build_report(&a.src, &report_options(Kind::Top, &a.filter)?)?;
            flame::flame(&rpt, &a.output, a.inverted)
        }
    }
}

/// `gocost compare` found a regression: exit code 1, the report already said why.
#[derive(Debug)]
struct Regressed;

impl std::fmt::Display for Regressed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("regression")
    }
}

impl std::error::Error for Regressed {}

#[cfg(not(feature = "system-alloc"))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (the same index in its v2 and v3 headers).
#[cfg(not(feature = "system-alloc"))]
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// A command that reads its inputs once and exits keeps the memory it frees for its next
/// allocations instead of handing it back to the kernel after mimalloc's purge delay: merging
/// a day of profiles frees and reallocates hundreds of MB, and every page handed back came
/// back as a fresh page the kernel had to zero (docs/adr/0023). `serve` and `load` run for
/// hours and keep the default, so their RSS follows what they hold.
fn tune_allocator(cmd: &Cmd) {
    if matches!(cmd, Cmd::Serve(_) | Cmd::Load(_)) {
        return;
    }
    #[cfg(not(feature = "system-alloc"))]
    // SAFETY: setting an option is a plain store into mimalloc's option table.
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1)
    };
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tune_allocator(&cli.cmd);
    // Every HTTPS client of the binary (scrapes, remote sources, traces, load --profile)
    // uses ring's rustls provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    if let Err(e) = init_logging(cli.log_level.as_deref()) {
        eprintln!("gocost: {e:#}");
        return ExitCode::from(2);
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if let Some(io) = e.downcast_ref::<std::io::Error>()
                && io.kind() == std::io::ErrorKind::BrokenPipe
            {
                return ExitCode::SUCCESS;
            }
            if e.downcast_ref::<Regressed>().is_some() {
                return ExitCode::from(1);
            }
            eprintln!("gocost: {e:#}");
            if e.downcast_ref::<InputError>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::from(1)
            }
        }
    }
}
