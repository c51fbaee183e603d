//! `gocost load URL`: offer HTTP load to a service and report the latency it gave back.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use gocost_load::{Config, Model, Rate, Target};

use crate::source::InputError;

pub const AFTER_HELP: &str = "\
Open model (--rate): requests are due at a fixed rate whether or not the server keeps up, and
each latency counts from when its request was due, so a stall shows in the percentiles instead
of slowing the load down (wrk2's correction of coordinated omission). Requests a connection
could take only more than 1 ms late are counted as \"sent late\": add --connections.
Closed model (--concurrency): N clients back to back, latency from each send; for peak
throughput.

Examples:
  gocost load --rate 2000 --duration 60s http://127.0.0.1:8080/api/orders
  gocost load --rate 1000:20000 --ramp 60s --duration 120s --json http://127.0.0.1:8080/
  gocost load --concurrency 64 --duration 30s -H 'Authorization: Bearer x' http://127.0.0.1:8080/
  gocost load --rate 1000 --requests mix.txt http://127.0.0.1:8080/     # mix.txt: GET /a, POST /b {...}
  gocost load --rate 500 --duration 30s --profile http://127.0.0.1:6060 --cpu-profile cpu.pprof \
      http://127.0.0.1:8080/api/orders

With --profile, the service's net/http/pprof and expvar endpoints are read while the load runs:
goroutines, heap and GC pauses per second (every --profile-every), and a one-second CPU profile
per measured second (CPU per second and per request, top functions), and an execution trace of
--trace-seconds in the middle (GC, stop-the-world pauses, scheduler latency, assists). Each second whose P99
spiked is shown with what the runtime did in it. -o report.html writes the charts and the flame
graph as one page; two -o run.json files compare with gocost compare. The service needs import _ \"net/http/pprof\" and _ \"expvar\".";

#[derive(Args)]
pub struct LoadArgs {
    /// The service's URL (http://host:port/path or https://…).
    #[arg(value_name = "URL")]
    url: String,
    /// Open model: requests per second (N), or a ramp FROM:TO with --ramp.
    #[arg(long, value_name = "N|FROM:TO", conflicts_with = "concurrency")]
    rate: Option<String>,
    /// How long a --rate FROM:TO ramp takes (then TO holds).
    #[arg(long, value_name = "DURATION", default_value = "0s")]
    ramp: String,
    /// Closed model: this many clients, each sending when its last request was answered.
    #[arg(long, value_name = "N")]
    concurrency: Option<usize>,
    /// Measured time.
    #[arg(long, value_name = "DURATION", default_value = "30s")]
    duration: String,
    /// Load before measuring, not in the results (connections opened, caches warm).
    #[arg(long, value_name = "DURATION", default_value = "5s")]
    warmup: String,
    /// Open model: connections, each carrying one request at a time (default: enough for the
    /// rate at 100 ms per request, at least 16).
    #[arg(long, value_name = "N")]
    connections: Option<usize>,
    /// A new connection per request.
    #[arg(long, conflicts_with = "http2")]
    no_keepalive: bool,
    /// HTTP/2: h2c (prior knowledge) to http://, ALPN h2 to https://. --connections is then
    /// the number of TCP connections (default: one per 100 requests in flight) and --streams
    /// the requests in flight on each (default: the in-flight requests spread over them).
    #[arg(long)]
    http2: bool,
    /// HTTP/2: requests in flight at once on each connection (its concurrent streams).
    #[arg(long, value_name = "N", requires = "http2")]
    streams: Option<usize>,
    /// https: trust only the CA certificates in this PEM file (not the system's).
    #[arg(long, value_name = "FILE", conflicts_with = "insecure")]
    cacert: Option<PathBuf>,
    /// https: do not check the server's certificate (a test server's self-signed one).
    #[arg(short = 'k', long)]
    insecure: bool,
    /// HTTP method.
    #[arg(short = 'X', long, default_value = "GET")]
    method: String,
    /// A request header, `Name: value` (repeatable).
    #[arg(short = 'H', long = "header", value_name = "HEADER")]
    headers: Vec<String>,
    /// Request body.
    #[arg(long, conflicts_with = "body_file")]
    body: Option<String>,
    /// Request body from a file.
    #[arg(long, value_name = "FILE")]
    body_file: Option<PathBuf>,
    /// Rotate through the requests in FILE, one per line: `[METHOD] /path [body]` (GET when
    /// the method is left out; `#` comments). Replaces -X, --body and the URL's path.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["body", "body_file"])]
    requests: Option<PathBuf>,
    /// A request not answered in this time counts as an error (`timeout`).
    #[arg(long, value_name = "DURATION", default_value = "10s")]
    timeout: String,
    /// Print the report as JSON (per second and in total, with the latency histogram).
    #[arg(long, conflicts_with = "markdown")]
    json: bool,
    /// Print the report as Markdown (for a pull request or a wiki page).
    #[arg(long)]
    markdown: bool,
    /// Also write the report to this file, as its name ends: `.html` (one self-contained page
    /// with the charts and the CPU flame graph), `.md` (Markdown), else JSON. Repeatable.
    #[arg(short = 'o', long, value_name = "FILE")]
    output: Vec<PathBuf>,
    /// Read the loaded service's runtime while the load runs: its base URL, where
    /// /debug/pprof/ and /debug/vars answer (e.g. http://127.0.0.1:6060).
    #[arg(long, value_name = "URL")]
    profile: Option<String>,
    /// How often --profile reads goroutines, heap and GC.
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "1s",
        requires = "profile"
    )]
    profile_every: String,
    /// Write --profile's CPU profile of the measured seconds to this file (for go tool pprof).
    #[arg(long, value_name = "FILE", requires = "profile")]
    cpu_profile: Option<PathBuf>,
    /// With --profile: take an execution trace this long in the middle of the measured time
    /// (GC, stop-the-world pauses, scheduler latency, assists; 0 for none). Go's tracer costs
    /// the service a few percent while it runs.
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "1s",
        requires = "profile"
    )]
    trace_seconds: String,
    /// Write --profile's execution trace to this file (for go tool trace).
    #[arg(long, value_name = "FILE", requires = "profile")]
    trace_file: Option<PathBuf>,
    /// With --profile: prices for the cost per million requests.
    #[command(flatten)]
    prices: crate::insights::Prices,
    /// Keep the run in a gocost server (its base URL, e.g. http://127.0.0.1:4040): the run,
    /// its numbers in the list at /api/v1/loadruns, and its HTML report.
    #[arg(long, value_name = "URL")]
    store: Option<String>,
    /// --store: the run's name (the `job` it is listed under), e.g. the service and the change.
    #[arg(long, value_name = "NAME", default_value = "load", requires = "store")]
    name: String,
    /// --store: bearer token (one with the write scope, when the server has [auth]).
    #[arg(long, requires = "store")]
    token: Option<String>,
}

/// The JSON report: the load's, with the service's beside it when --profile was given.
#[derive(serde::Serialize)]
struct Output<'a> {
    #[serde(flatten)]
    load: &'a gocost_load::Report,
    #[serde(skip_serializing_if = "Option::is_none")]
    service: Option<&'a crate::load_service::Service>,
}

fn duration(name: &str, v: &str) -> Result<Duration> {
    gocost_config::parse_duration(v).map_err(|e| InputError(format!("--{name}: {e}")).into())
}

fn config(a: &LoadArgs) -> Result<Config> {
    let target = Target::parse(&a.url).map_err(InputError)?;
    let ramp = duration("ramp", &a.ramp)?;
    let model = match (&a.rate, a.concurrency) {
        (Some(r), _) => Model::Open(Rate::parse(r, ramp.as_secs_f64()).map_err(InputError)?),
        (None, Some(0)) => return Err(InputError("--concurrency must be at least 1".into()).into()),
        (None, Some(c)) => Model::Closed { concurrency: c },
        (None, None) => {
            return Err(InputError(
                "give --rate N (open model: a fixed arrival rate) or --concurrency N (closed model)"
                    .into(),
            )
            .into());
        }
    };
    if a.streams == Some(0) {
        return Err(InputError("--streams must be at least 1".into()).into());
    }
    // Requests in flight the rate needs at 100 ms each (or the closed model's clients).
    let in_flight = match model {
        Model::Open(r) => ((r.from.max(r.to) * 0.1).ceil() as usize).clamp(16, 10_000),
        Model::Closed { concurrency } => concurrency,
    };
    let connections = match (a.connections, a.http2, a.streams) {
        (Some(0), _, _) => {
            return Err(InputError("--connections must be at least 1".into()).into());
        }
        (Some(n), _, _) => n,
        (None, false, _) => in_flight,
        (None, true, Some(s)) => in_flight.div_ceil(s).max(1),
        (None, true, None) => in_flight.div_ceil(100).max(1),
    };
    let http2 = a.http2.then(|| gocost_load::Http2 {
        streams: a
            .streams
            .unwrap_or_else(|| in_flight.div_ceil(connections))
            .max(1),
    });
    let method = hyper_method(&a.method)?;
    let mut headers = Vec::new();
    for h in &a.headers {
        let (k, v) = h
            .split_once(':')
            .ok_or_else(|| InputError(format!("-H {h:?}: want `Name: value`")))?;
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    let body = match (&a.body, &a.body_file) {
        (Some(b), _) => b.clone().into_bytes(),
        (_, Some(f)) => {
            std::fs::read(f).map_err(|e| InputError(format!("{}: {e}", f.display())))?
        }
        _ => Vec::new(),
    };
    let requests = match &a.requests {
        Some(f) => {
            let text = std::fs::read_to_string(f)
                .map_err(|e| InputError(format!("--requests {}: {e}", f.display())))?;
            gocost_load::requests::parse(&text, &target)
                .map_err(|e| InputError(format!("--requests {}: {e}", f.display())))?
        }
        None => vec![gocost_load::requests::Spec {
            method,
            path: target.path.clone(),
            body: body.into(),
        }],
    };
    let tls = if target.tls {
        let trust = match (&a.cacert, a.insecure) {
            (Some(f), _) => gocost_load::tls::Trust::Ca(
                std::fs::read(f)
                    .map_err(|e| InputError(format!("--cacert {}: {e}", f.display())))?,
            ),
            (None, true) => gocost_load::tls::Trust::Insecure,
            (None, false) => gocost_load::tls::Trust::Platform,
        };
        Some(
            gocost_load::tls::client_config(&trust, a.http2).map_err(|e| match &a.cacert {
                Some(f) => InputError(format!("--cacert {}: {e}", f.display())),
                None => InputError(e),
            })?,
        )
    } else {
        None
    };
    Ok(Config {
        tls,
        requests,
        target,
        headers,
        model,
        duration: duration("duration", &a.duration)?.max(Duration::from_secs(1)),
        warmup: duration("warmup", &a.warmup)?,
        connections,
        keepalive: !a.no_keepalive,
        http2,
        timeout: duration("timeout", &a.timeout)?,
    })
}

/// Uploads the run (its JSON and HTML report) to a gocost server; its id.
fn store_run(
    server: &str,
    name: &str,
    token: Option<&str>,
    json: &str,
    html: String,
) -> Result<String> {
    let mut url =
        reqwest::Url::parse(server).map_err(|e| InputError(format!("--store {server}: {e}")))?;
    url.set_path("/api/v1/loadruns");
    let run: serde_json::Value = serde_json::from_str(json)?;
    let doc = serde_json::json!({"name": name, "run": run, "html": html});
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()?;
    let mut req = client
        .post(url.clone())
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(doc.to_string());
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().map_err(|e| {
        anyhow::anyhow!("--store {url}: {e} (the run is not kept; -o run.json keeps it locally)")
    })?;
    let status = resp.status();
    let body = resp.text().unwrap_or_default();
    if !status.is_success() {
        return Err(anyhow::anyhow!(
            "--store {url}: the server answered {status}: {}",
            body.trim()
        ));
    }
    let v: serde_json::Value = serde_json::from_str(&body)
        .map_err(|e| anyhow::anyhow!("--store {url}: not gocost's answer: {e}"))?;
    v["id"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| anyhow::anyhow!("--store {url}: no id in the answer {body:?}"))
}

fn hyper_method(m: &str) -> Result<gocost_load::Method> {
    gocost_load::Method::from_bytes(m.to_ascii_uppercase().as_bytes())
        .map_err(|_| InputError(format!("-X {m:?}: not an HTTP method")).into())
}

pub fn run(a: LoadArgs) -> Result<()> {
    let cfg = config(&a)?;
    let rates = a.prices.rates()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let tty = std::io::stderr().is_terminal();
    let watch = match &a.profile {
        Some(url) => {
            let every = duration("profile-every", &a.profile_every)?;
            if every < Duration::from_millis(100) {
                return Err(InputError("--profile-every: at least 100ms".into()).into());
            }
            let (w, notes) = rt
                .block_on(crate::load_service::Watch::new(
                    url,
                    every,
                    a.cpu_profile.clone(),
                    crate::load_service::TraceWant {
                        seconds: match a.trace_seconds.trim() {
                            "0" => Duration::ZERO,
                            v => duration("trace-seconds", v)?,
                        },
                        file: a.trace_file.clone(),
                    },
                ))
                .map_err(InputError)?;
            Some((w, notes))
        }
        None => None,
    };
    let (warmup, measured) = (cfg.warmup, cfg.duration);
    let load = gocost_load::run(cfg, |p| {
        if tty {
            let mut e = std::io::stderr().lock();
            let _ = write!(
                e,
                "\r{:>5.0}/{:.0}s  {} requests  {} errors  p99 {:.2}ms   ",
                p.elapsed,
                p.total,
                p.requests,
                p.errors,
                p.p99_so_far * 1e3
            );
            let _ = e.flush();
        }
    });
    let (report, observed) = rt.block_on(async {
        match &watch {
            Some((w, notes)) => {
                let start = tokio::time::Instant::now() + gocost_load::START_DELAY + warmup;
                let (r, o) = tokio::join!(load, w.watch(start, measured, notes.clone()));
                (r, Some(o))
            }
            None => (load.await, None),
        }
    });
    if tty {
        eprintln!();
    }
    let service = match observed {
        Some(o) => Some(o.join(&report, &rates).map_err(InputError)?),
        None => None,
    };
    let json = serde_json::to_string_pretty(&Output {
        load: &report,
        service: service.as_ref(),
    })? + "\n";
    for path in &a.output {
        let body = match path.extension().and_then(|e| e.to_str()) {
            Some("html" | "htm") => crate::load_report::html(&report, service.as_ref(), &json),
            Some("md" | "markdown") => crate::load_report::markdown(&report, service.as_ref()),
            _ => json.clone(),
        };
        std::fs::write(path, body).with_context(|| format!("writing {}", path.display()))?;
    }
    let text = if a.json {
        json.clone()
    } else if a.markdown {
        crate::load_report::markdown(&report, service.as_ref())
    } else {
        match &service {
            Some(s) => report.to_text() + &s.to_text(),
            None => report.to_text(),
        }
    };
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    // Last: a server that cannot take the run does not cost the report printed or written.
    if let Some(server) = &a.store {
        let html = crate::load_report::html(&report, service.as_ref(), &json);
        let id = store_run(server, &a.name, a.token.as_deref(), &json, html)?;
        eprintln!(
            "stored as load run {id}: {}/api/v1/loadruns/{id}/report",
            server.trim_end_matches('/')
        );
    }
    Ok(())
}
