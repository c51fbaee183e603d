//! `gocost load`'s report as one self-contained HTML page (`-o report.html`) and as Markdown
//! (`--markdown`, `-o report.md`). Pure functions of the run's report: no I/O, no network
//! needed to open the page (charts are inline SVG drawn here, the CPU flame graph is
//! gocost's interactive SVG in a `data:` frame).
//!
//! The page's stable hooks, for tests and for people who script it:
//! - `#report-json`: the `--json` report, verbatim;
//! - `[data-key]` cells of `#summary` carry `data-value`, the JSON number they print;
//! - every chart is `svg.chart#chart-NAME`; its series are `g.series[data-name]` with
//!   `data-values` (one per second, comma-separated, empty where there is no value);
//!   spike seconds are `rect.spike[data-t]`;
//! - the GC pause heatmap's cells are `rect.cell[data-t][data-le][data-count]`;
//! - the latency histogram's bars are `rect.bar[data-le][data-count]`;
//! - `iframe#flame` holds the CPU flame graph; `#spikes` rows are `tr[data-t]`.

use std::fmt::Write as _;

use base64::Engine as _;
use gocost_flame::esc;
use gocost_load::Report;

use crate::load_service::{GcPause, Service};

const W: f64 = 960.0;
const H: f64 = 220.0;
const LEFT: f64 = 72.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 26.0;
const BOTTOM: f64 = 26.0;
/// The Okabe–Ito palette, as the web UI's charts.
const COLORS: [&str; 6] = [
    "#0072b2", "#e69f00", "#009e73", "#cc79a7", "#d55e00", "#56b4e9",
];

/// Seconds as pprof prints durations in tables: `1.234s`, `21.02ms`, `85µs`.
pub fn secs(s: f64) -> String {
    if s == 0.0 {
        "0".into()
    } else if s >= 1.0 {
        format!("{s:.3}s")
    } else if s >= 1e-3 {
        format!("{:.2}ms", s * 1e3)
    } else {
        format!("{:.0}µs", s * 1e6)
    }
}

pub fn mib(b: f64) -> String {
    format!("{:.1} MiB", b / (1024.0 * 1024.0))
}

fn count(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// A round step for about `n` ticks up to `max`.
fn nice_step(max: f64, n: f64) -> f64 {
    let raw = (max / n).max(f64::MIN_POSITIVE);
    let mag = 10f64.powf(raw.log10().floor());
    let f = raw / mag;
    let m = if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 2.5 {
        2.5
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    };
    m * mag
}

/// One line of a chart: a value per second.
struct Series<'a> {
    name: &'a str,
    values: Vec<Option<f64>>,
}

fn values_attr(v: &[Option<f64>]) -> String {
    let mut o = String::with_capacity(v.len() * 8);
    for (i, x) in v.iter().enumerate() {
        if i > 0 {
            o.push(',');
        }
        if let Some(x) = x {
            let _ = write!(o, "{x}");
        }
    }
    o
}

/// The x axis: one slot per second, labelled every few seconds.
fn x_axis(o: &mut String, n: usize) {
    let pw = W - LEFT - RIGHT;
    let step = (nice_step(n as f64, 8.0).round() as usize).max(1);
    let y = H - BOTTOM;
    let _ = write!(
        o,
        r##"<line x1="{LEFT}" y1="{y}" x2="{}" y2="{y}" stroke="#888"/>"##,
        W - RIGHT
    );
    for t in (0..=n).step_by(step) {
        let x = LEFT + pw * t as f64 / n.max(1) as f64;
        let _ = write!(
            o,
            r##"<text x="{x:.1}" y="{:.1}" text-anchor="middle" class="tick">{t}s</text>"##,
            y + 16.0
        );
    }
}

/// A line chart of per-second series, with the spike seconds shaded.
fn line_chart(
    id: &str,
    title: &str,
    fmt: &dyn Fn(f64) -> String,
    series: &[Series],
    spikes: &[u64],
) -> String {
    let n = series.iter().map(|s| s.values.len()).max().unwrap_or(0);
    let max = series
        .iter()
        .flat_map(|s| s.values.iter().flatten())
        .copied()
        .fold(0.0f64, f64::max);
    let step = nice_step(if max > 0.0 { max } else { 1.0 }, 4.0);
    let ymax = (max / step).ceil().max(1.0) * step;
    let pw = W - LEFT - RIGHT;
    let ph = H - TOP - BOTTOM;
    let x = |t: usize| LEFT + pw * (t as f64 + 0.5) / n.max(1) as f64;
    let y = |v: f64| TOP + ph * (1.0 - v / ymax);
    let mut o = String::new();
    let _ = write!(
        o,
        r#"<figure><figcaption>{}</figcaption><svg class="chart" id="chart-{id}" viewBox="0 0 {W} {H}" role="img" aria-label="{}">"#,
        esc(title),
        esc(title)
    );
    for &t in spikes {
        let x0 = LEFT + pw * t as f64 / n.max(1) as f64;
        let _ = write!(
            o,
            r#"<rect class="spike" data-t="{t}" x="{x0:.1}" y="{TOP}" width="{:.1}" height="{ph}"><title>P99 spike at {t}s</title></rect>"#,
            pw / n.max(1) as f64
        );
    }
    let mut v = 0.0;
    while v <= ymax + step / 2.0 {
        let yy = y(v);
        let _ = write!(
            o,
            r##"<line x1="{LEFT}" y1="{yy:.1}" x2="{}" y2="{yy:.1}" class="grid"/><text x="{}" y="{:.1}" text-anchor="end" class="tick">{}</text>"##,
            W - RIGHT,
            LEFT - 6.0,
            yy + 4.0,
            esc(&fmt(v))
        );
        v += step;
    }
    x_axis(&mut o, n);
    for (i, s) in series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let mut pts = String::new();
        for (t, v) in s.values.iter().enumerate() {
            if let Some(v) = v {
                let _ = write!(pts, "{:.1},{:.1} ", x(t), y(*v));
            }
        }
        let _ = write!(
            o,
            r#"<g class="series" data-name="{}" data-values="{}"><polyline points="{}" fill="none" stroke="{color}" stroke-width="1.6"/></g>"#,
            esc(s.name),
            values_attr(&s.values),
            pts.trim_end()
        );
        let lx = LEFT + 8.0 + 120.0 * i as f64;
        let _ = write!(
            o,
            r#"<rect x="{lx}" y="6" width="10" height="10" fill="{color}"/><text x="{}" y="15" class="legend">{}</text>"#,
            lx + 14.0,
            esc(s.name)
        );
    }
    // Hover: one transparent column per second with every series' value.
    for t in 0..n {
        let mut tip = format!("{t}s");
        for s in series {
            if let Some(Some(v)) = s.values.get(t) {
                let _ = write!(tip, "\n{}: {}", s.name, fmt(*v));
            }
        }
        let _ = write!(
            o,
            r#"<rect class="hover" x="{:.1}" y="{TOP}" width="{:.1}" height="{ph}"><title>{}</title></rect>"#,
            LEFT + pw * t as f64 / n.max(1) as f64,
            pw / n.max(1) as f64,
            esc(&tip)
        );
    }
    o.push_str("</svg></figure>\n");
    o
}

/// Upper bounds of the GC pause heatmap's rows, in seconds (the last is open).
const PAUSE_ROWS: [f64; 12] = [
    25e-6,
    50e-6,
    100e-6,
    250e-6,
    500e-6,
    1e-3,
    2.5e-3,
    5e-3,
    10e-3,
    25e-3,
    100e-3,
    f64::INFINITY,
];

/// Time × pause duration, shaded by how many pauses fell in each cell.
fn pause_heatmap(pauses: &[GcPause], n: usize) -> String {
    let row_of = |s: f64| PAUSE_ROWS.iter().position(|&le| s <= le).unwrap_or(0);
    let mut cells = vec![vec![0u32; PAUSE_ROWS.len()]; n];
    let mut top_row = 3; // at least up to 250µs, so a quiet run still has an axis
    for p in pauses {
        let t = (p.t.max(0.0) as usize).min(n.saturating_sub(1));
        let r = row_of(p.seconds);
        if let Some(c) = cells.get_mut(t) {
            c[r] += 1;
        }
        top_row = top_row.max(r);
    }
    let rows = top_row + 1;
    let most = cells.iter().flatten().copied().max().unwrap_or(0).max(1);
    let pw = W - LEFT - RIGHT;
    let ph = H - TOP - BOTTOM;
    let cw = pw / n.max(1) as f64;
    let rh = ph / rows as f64;
    let mut o = String::new();
    let _ = write!(
        o,
        r#"<figure><figcaption>GC stop-the-world pauses (time × duration; darker: more pauses)</figcaption><svg class="chart" id="chart-gc-pauses" viewBox="0 0 {W} {H}" role="img" aria-label="GC pause heatmap">"#
    );
    for r in 0..rows {
        let y = TOP + ph - rh * (r as f64 + 1.0);
        let label = if PAUSE_ROWS[r].is_finite() {
            format!("≤{}", secs(PAUSE_ROWS[r]))
        } else {
            format!(">{}", secs(PAUSE_ROWS[r - 1]))
        };
        let _ = write!(
            o,
            r#"<text x="{}" y="{:.1}" text-anchor="end" class="tick">{}</text>"#,
            LEFT - 6.0,
            y + rh / 2.0 + 4.0,
            esc(&label)
        );
    }
    for (t, col) in cells.iter().enumerate() {
        for (r, &c) in col.iter().enumerate().take(rows) {
            if c == 0 {
                continue;
            }
            let y = TOP + ph - rh * (r as f64 + 1.0);
            let a = 0.15 + 0.85 * f64::from(c) / f64::from(most);
            let le = if PAUSE_ROWS[r].is_finite() {
                PAUSE_ROWS[r].to_string()
            } else {
                "+Inf".into()
            };
            let _ = write!(
                o,
                r##"<rect class="cell" data-t="{t}" data-le="{le}" data-count="{c}" x="{:.1}" y="{y:.1}" width="{cw:.1}" height="{rh:.1}" fill="#0072b2" fill-opacity="{a:.2}"><title>{t}s: {c} pause{} {}</title></rect>"##,
                LEFT + cw * t as f64,
                if c == 1 { "" } else { "s" },
                esc(&if PAUSE_ROWS[r].is_finite() {
                    format!("≤ {}", secs(PAUSE_ROWS[r]))
                } else {
                    format!("> {}", secs(PAUSE_ROWS[r - 1]))
                })
            );
        }
    }
    x_axis(&mut o, n);
    o.push_str("</svg></figure>\n");
    o
}

/// The run's latency histogram on a log scale: one bar per bucket.
fn histogram(h: &[(f64, u64)]) -> String {
    let mut o = String::new();
    let _ = write!(
        o,
        r#"<figure><figcaption>Latency histogram (log scale)</figcaption><svg class="chart" id="chart-histogram" viewBox="0 0 {W} {H}" role="img" aria-label="Latency histogram">"#
    );
    if let (Some(first), Some(last)) = (h.first(), h.last()) {
        let lo = (first.0 / 1.25).max(1e-6).ln();
        let hi = last.0.max(first.0 * 1.01).ln();
        let pw = W - LEFT - RIGHT;
        let ph = H - TOP - BOTTOM;
        let x = |s: f64| LEFT + pw * (s.max(1e-6).ln() - lo) / (hi - lo);
        let most = h.iter().map(|b| b.1).max().unwrap_or(1).max(1) as f64;
        let mut prev = first.0 / 1.25;
        for &(le, c) in h {
            let bh = ph * c as f64 / most;
            let _ = write!(
                o,
                r##"<rect class="bar" data-le="{le}" data-count="{c}" x="{:.1}" y="{:.1}" width="{:.1}" height="{bh:.1}" fill="#0072b2"><title>{}–{}: {c} requests</title></rect>"##,
                x(prev),
                TOP + ph - bh,
                (x(le) - x(prev) - 0.5).max(0.5),
                secs(prev),
                secs(le)
            );
            prev = le;
        }
        // Decade ticks.
        let mut d = 10f64.powf((first.0 / 1.25).log10().floor());
        while d <= last.0 * 10.0 {
            if d.ln() >= lo && d.ln() <= hi {
                let _ = write!(
                    o,
                    r#"<text x="{:.1}" y="{}" text-anchor="middle" class="tick">{}</text>"#,
                    x(d),
                    H - BOTTOM + 16.0,
                    secs(d)
                );
            }
            d *= 10.0;
        }
    }
    o.push_str("</svg></figure>\n");
    o
}

fn row(o: &mut String, key: &str, label: &str, value: Option<f64>, text: String) {
    let v = value.map_or(String::new(), |v| format!(r#" data-value="{v}""#));
    let _ = write!(
        o,
        r#"<tr><th>{}</th><td data-key="{key}"{v}>{}</td></tr>"#,
        esc(label),
        esc(&text)
    );
}

const STYLE: &str = r#"
:root { color-scheme: light dark; --fg: #1b1f23; --bg: #fff; --muted: #666; --line: #ddd; }
@media (prefers-color-scheme: dark) { :root { --fg: #e6e6e6; --bg: #16181b; --muted: #9aa; --line: #333; } }
body { font: 14px/1.45 system-ui, sans-serif; color: var(--fg); background: var(--bg); margin: 0 auto; max-width: 1000px; padding: 16px; }
h1 { font-size: 20px; margin: 0 0 4px; word-break: break-all; }
h2 { font-size: 16px; margin: 24px 0 8px; border-bottom: 1px solid var(--line); }
.sub { color: var(--muted); margin: 0 0 12px; }
table { border-collapse: collapse; }
th, td { text-align: left; padding: 3px 12px 3px 0; vertical-align: top; }
td { font-variant-numeric: tabular-nums; }
#summary th { font-weight: normal; color: var(--muted); }
figure { margin: 8px 0 16px; }
figcaption { font-weight: 600; margin-bottom: 2px; }
svg.chart { width: 100%; height: auto; display: block; }
svg .tick, svg .legend { font-size: 11px; fill: var(--muted); }
svg .grid { stroke: var(--line); }
svg .spike { fill: #d55e00; fill-opacity: 0.12; }
svg .hover { fill: transparent; }
svg .hover:hover { fill: #888; fill-opacity: 0.12; }
iframe#flame { width: 100%; border: 1px solid var(--line); background: #f8f8f8; }
.fn { font-family: ui-monospace, monospace; word-break: break-all; }
.note { color: var(--muted); }
"#;

/// The whole page.
pub fn html(load: &Report, service: Option<&Service>, json: &str) -> String {
    let mut o = String::with_capacity(64 * 1024 + json.len());
    let spikes = load.spikes();
    let n = load.seconds.len();
    let title = format!("gocost load — {}", load.url);
    let _ = write!(
        o,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{}</title><style>{STYLE}</style></head><body>\n",
        esc(&title)
    );
    let model = match (load.rate, load.concurrency) {
        (Some(r), _) => format!(
            "open model, {} requests/s over {} connections",
            count(r),
            load.connections
        ),
        (None, Some(c)) => format!("closed model, {c} clients"),
        _ => load.model.to_string(),
    };
    let started = gocost_report::timefmt::rfc3339_utc(load.measured_from_unix_ns / 1_000_000);
    let _ = write!(
        o,
        r#"<h1>{}</h1><p class="sub">{}; {}s measured from {} after {}s of warm-up</p>"#,
        esc(&load.url),
        esc(&model),
        load.duration_seconds,
        esc(&started),
        load.warmup_seconds
    );

    // Summary.
    o.push_str(r#"<h2>Summary</h2><table id="summary">"#);
    row(
        &mut o,
        "requests",
        "Requests",
        Some(load.requests as f64),
        load.requests.to_string(),
    );
    row(
        &mut o,
        "throughput",
        "Answered per second",
        Some(load.throughput),
        format!("{:.1}/s", load.throughput),
    );
    row(
        &mut o,
        "errors",
        "Errors",
        Some(load.errors as f64),
        if load.error_kinds.is_empty() {
            load.errors.to_string()
        } else {
            let kinds: Vec<String> = load
                .error_kinds
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect();
            format!("{} ({})", load.errors, kinds.join(", "))
        },
    );
    if load.late > 0 {
        row(
            &mut o,
            "late",
            "Sent late (add --connections)",
            Some(load.late as f64),
            load.late.to_string(),
        );
    }
    let l = &load.latency;
    for (key, label, v) in [
        ("latency.p50", "P50", l.p50),
        ("latency.p90", "P90", l.p90),
        ("latency.p99", "P99", l.p99),
        ("latency.p999", "P99.9", l.p999),
        ("latency.max", "Max", l.max),
        ("latency.mean", "Mean", l.mean),
    ] {
        row(&mut o, key, label, Some(v), secs(v));
    }
    if let Some(c) = service.and_then(|s| s.cpu.as_ref()) {
        row(
            &mut o,
            "service.cpu.cores",
            "Service CPU",
            Some(c.cores),
            format!("{:.2} cores ({:.2}s)", c.cores, c.seconds),
        );
        if let Some(p) = c.per_request_seconds {
            row(
                &mut o,
                "service.cpu.per_request_seconds",
                "CPU per request",
                Some(p),
                secs(p),
            );
        }
    }
    if let Some(c) = service.and_then(|s| s.cost.as_ref()) {
        row(
            &mut o,
            "service.cost.total_per_million",
            "Cost per million requests",
            Some(c.total_per_million),
            format!(
                "{:.4} {} (CPU {:.4}, memory {:.4}; {} per core-hour, {} per GiB-hour)",
                c.total_per_million,
                c.rates.currency,
                c.cpu_per_million,
                c.memory_per_million,
                c.rates.cpu_per_core_hour,
                c.rates.memory_per_gib_hour
            ),
        );
    }
    o.push_str("</table>\n");

    // Load over time.
    o.push_str("<h2>Latency and throughput</h2>\n");
    let per = |f: fn(&gocost_load::SecondReport) -> f64| -> Vec<Option<f64>> {
        load.seconds
            .iter()
            .map(|s| (s.requests > 0).then(|| f(s)))
            .collect()
    };
    o.push_str(&line_chart(
        "latency",
        "Latency per second (open model: from when each request was due); shaded: P99 spikes",
        &secs,
        &[
            Series {
                name: "P50",
                values: per(|s| s.latency.p50),
            },
            Series {
                name: "P90",
                values: per(|s| s.latency.p90),
            },
            Series {
                name: "P99",
                values: per(|s| s.latency.p99),
            },
            Series {
                name: "P99.9",
                values: per(|s| s.latency.p999),
            },
        ],
        &spikes,
    ));
    o.push_str(&line_chart(
        "throughput",
        "Requests and errors per second",
        &|v| count(v),
        &[
            Series {
                name: "answered",
                values: load
                    .seconds
                    .iter()
                    .map(|s| Some(s.requests.saturating_sub(s.errors) as f64))
                    .collect(),
            },
            Series {
                name: "errors",
                values: load.seconds.iter().map(|s| Some(s.errors as f64)).collect(),
            },
        ],
        &spikes,
    ));
    o.push_str(&histogram(&load.histogram));

    if let Some(s) = service {
        service_html(&mut o, s, &spikes, n);
    } else {
        o.push_str(r#"<p class="note">Run with <code>--profile http://host:port</code> (the service's net/http/pprof and expvar address) to see its CPU, heap, goroutines and GC pauses beside the latency.</p>"#);
    }
    let _ = write!(
        o,
        "<script type=\"application/json\" id=\"report-json\">{}</script>\n</body></html>\n",
        json.replace("</", "<\\/")
    );
    o
}

fn service_html(o: &mut String, s: &Service, spikes: &[u64], n: usize) {
    let _ = writeln!(o, "<h2>The service: {}</h2>", esc(&s.url));
    let col = |f: fn(&crate::load_service::ServiceSecond) -> Option<f64>| -> Vec<Option<f64>> {
        s.seconds.iter().map(f).collect()
    };
    o.push_str(&line_chart(
        "memory",
        "Memory: heap in use and Sys (from the OS) per second",
        &mib,
        &[
            Series {
                name: "heap in use (max)",
                values: col(|x| x.heap_inuse_max_bytes),
            },
            Series {
                name: "Sys",
                values: col(|x| x.sys_bytes),
            },
        ],
        spikes,
    ));
    o.push_str(&line_chart(
        "goroutines",
        "Goroutines (most seen in each second)",
        &|v| count(v),
        &[Series {
            name: "goroutines",
            values: col(|x| x.goroutines_max.map(|g| g as f64)),
        }],
        spikes,
    ));
    o.push_str(&line_chart(
        "cpu",
        "CPU of the service per second (cores; a one-second CPU profile each)",
        &|v| format!("{v:.2}"),
        &[Series {
            name: "cores",
            values: col(|x| x.cpu_seconds),
        }],
        spikes,
    ));
    o.push_str(&pause_heatmap(&s.gc_pauses, n));
    o.push_str(&line_chart(
        "gc-cpu",
        "GC CPU fraction (since the service started, as runtime.MemStats reports it)",
        &|v| format!("{:.1}%", v * 100.0),
        &[Series {
            name: "GC CPU",
            values: col(|x| x.gc_cpu_fraction),
        }],
        spikes,
    ));

    o.push_str(r#"<h2>P99 spikes and what the runtime did</h2>"#);
    if s.spikes.is_empty() {
        o.push_str(r#"<p class="note">No second's P99 was over twice the run's typical P99.</p>"#);
    } else {
        o.push_str(r#"<table id="spikes"><tr><th>Second</th><th>P99</th><th>Typical P99</th><th>GC cycles</th><th>Longest pause</th><th>Goroutines</th><th>Heap in use</th></tr>"#);
        for k in &s.spikes {
            let arrow_u = |a: Option<u64>, b: Option<u64>| match (a, b) {
                (Some(a), Some(b)) => format!("{a} → {b}"),
                (None, Some(b)) => b.to_string(),
                _ => "—".into(),
            };
            let arrow_b = |a: Option<f64>, b: Option<f64>| match (a, b) {
                (Some(a), Some(b)) => format!("{} → {}", mib(a), mib(b)),
                (None, Some(b)) => mib(b),
                _ => "—".into(),
            };
            let _ = write!(
                o,
                r#"<tr data-t="{}"><td>{}s</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>"#,
                k.t,
                k.t,
                secs(k.p99_seconds),
                secs(k.typical_p99_seconds),
                k.gc_cycles,
                if k.gc_cycles > 0 {
                    secs(k.gc_pause_max_seconds)
                } else {
                    "—".into()
                },
                arrow_u(k.goroutines_before, k.goroutines_max),
                arrow_b(k.heap_inuse_before_bytes, k.heap_inuse_max_bytes)
            );
        }
        o.push_str("</table>\n");
    }

    if let Some(c) = &s.cpu {
        o.push_str("<h2>CPU</h2>");
        if !c.top.is_empty() {
            o.push_str(r#"<table id="top"><tr><th>flat</th><th>flat%</th><th>cum</th><th>function</th></tr>"#);
            for f in &c.top {
                let _ = write!(
                    o,
                    r#"<tr><td>{}</td><td>{:.1}%</td><td>{}</td><td class="fn">{}</td></tr>"#,
                    secs(f.flat_seconds),
                    f.flat_share * 100.0,
                    secs(f.cum_seconds),
                    esc(&f.function)
                );
            }
            o.push_str("</table>\n");
        }
        if let Some(svg) = &c.flame_svg {
            let height = svg_height(svg).unwrap_or(600.0);
            let _ = write!(
                o,
                r#"<figure><figcaption>CPU flame graph of the measured seconds (click a frame to zoom, Ctrl-F to search)</figcaption><iframe id="flame" title="CPU flame graph" style="height:{}px" src="data:image/svg+xml;base64,{}"></iframe></figure>"#,
                height.ceil() + 4.0,
                base64::engine::general_purpose::STANDARD.encode(svg)
            );
        }
        if let Some(p) = &c.profile {
            let _ = write!(
                o,
                r#"<p class="note">The profile: <code>go tool pprof {}</code></p>"#,
                esc(p)
            );
        }
    }
    if let Some(t) = &s.trace {
        let _ = write!(
            o,
            r#"<h2>Execution trace</h2><p id="trace">{}</p>"#,
            esc(&t.summary())
        );
        if let Some(f) = &t.file {
            let _ = write!(
                o,
                r#"<p class="note">The trace: <code>go tool trace {}</code></p>"#,
                esc(f)
            );
        }
    }
    if !s.notes.is_empty() {
        o.push_str(r#"<h2>Notes</h2><ul id="notes">"#);
        for n in &s.notes {
            let _ = write!(o, "<li>{}</li>", esc(n));
        }
        o.push_str("</ul>\n");
    }
}

/// The `height="…"` of an SVG's root element.
fn svg_height(svg: &str) -> Option<f64> {
    let i = svg.find("<svg")?;
    let rest = &svg[i..];
    let h = rest.find(" height=\"")? + " height=\"".len();
    let end = rest[h..].find('"')?;
    rest[h..h + end].parse().ok()
}

/// The report as Markdown: the summary, the spikes joined with the runtime, the top
/// functions and the cost.
pub fn markdown(load: &Report, service: Option<&Service>) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "### gocost load: `{}`\n", load.url);
    let model = match (load.rate, load.concurrency) {
        (Some(r), _) => format!("open model, {} req/s", count(r)),
        (None, Some(c)) => format!("closed model, {c} clients"),
        _ => load.model.to_string(),
    };
    let _ = writeln!(
        o,
        "{model}, {}s measured after {}s of warm-up: **{} requests**, {:.1}/s answered, {} errors{}.\n",
        load.duration_seconds,
        load.warmup_seconds,
        load.requests,
        load.throughput,
        load.errors,
        if load.late > 0 {
            format!(", {} sent late", load.late)
        } else {
            String::new()
        }
    );
    let l = &load.latency;
    let _ = writeln!(
        o,
        "| P50 | P90 | P99 | P99.9 | Max | Mean |\n|---:|---:|---:|---:|---:|---:|\n| {} | {} | {} | {} | {} | {} |\n",
        secs(l.p50),
        secs(l.p90),
        secs(l.p99),
        secs(l.p999),
        secs(l.max),
        secs(l.mean)
    );
    let Some(s) = service else {
        let spikes = load.spikes();
        if !spikes.is_empty() {
            let list: Vec<String> = spikes.iter().map(|t| format!("{t}s")).collect();
            let _ = writeln!(o, "P99 spiked at {}.", list.join(", "));
        }
        return o;
    };
    if let Some(c) = &s.cpu {
        let _ = write!(o, "Service CPU: {:.2} cores", c.cores);
        if let Some(p) = c.per_request_seconds {
            let _ = write!(o, ", {} per request", secs(p));
        }
        if let Some(k) = &s.cost {
            let _ = write!(
                o,
                "; **{:.4} {} per million requests**",
                k.total_per_million, k.rates.currency
            );
        }
        o.push_str(".\n\n");
        if !c.top.is_empty() {
            o.push_str("| flat | flat% | function |\n|---:|---:|---|\n");
            for f in c.top.iter().take(5) {
                let _ = writeln!(
                    o,
                    "| {} | {:.1}% | `{}` |",
                    secs(f.flat_seconds),
                    f.flat_share * 100.0,
                    f.function.replace('|', "\\|").replace('`', "'")
                );
            }
            o.push('\n');
        }
    }
    if !s.gc_pauses.is_empty() {
        let max = s.gc_pauses.iter().map(|p| p.seconds).fold(0.0, f64::max);
        let _ = writeln!(
            o,
            "GC: {} cycles in the measured seconds, longest pause {}.\n",
            s.gc_pauses.len(),
            secs(max)
        );
    }
    if let Some(t) = &s.trace {
        let _ = writeln!(o, "Execution trace: {}.\n", t.summary());
    }
    if !s.spikes.is_empty() {
        o.push_str("| P99 spike | P99 | GC cycles | longest pause | goroutines | heap in use |\n|---:|---:|---:|---:|---|---|\n");
        for k in &s.spikes {
            let g = match (k.goroutines_before, k.goroutines_max) {
                (Some(a), Some(b)) => format!("{a} → {b}"),
                _ => "—".into(),
            };
            let h = match (k.heap_inuse_before_bytes, k.heap_inuse_max_bytes) {
                (Some(a), Some(b)) => format!("{} → {}", mib(a), mib(b)),
                _ => "—".into(),
            };
            let _ = writeln!(
                o,
                "| {}s | {} | {} | {} | {g} | {h} |",
                k.t,
                secs(k.p99_seconds),
                k.gc_cycles,
                if k.gc_cycles > 0 {
                    secs(k.gc_pause_max_seconds)
                } else {
                    "—".into()
                }
            );
        }
        o.push('\n');
    }
    for n in &s.notes {
        let _ = writeln!(o, "> {n}");
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_round() {
        assert_eq!(nice_step(1.0, 4.0), 0.25);
        assert_eq!(nice_step(970.0, 4.0), 250.0);
        assert_eq!(nice_step(0.0123, 4.0), 0.005);
    }

    #[test]
    fn durations_read_as_pprof_prints_them() {
        assert_eq!(secs(1.5), "1.500s");
        assert_eq!(secs(0.02102), "21.02ms");
        assert_eq!(secs(0.000085), "85µs");
        assert_eq!(secs(0.0), "0");
    }

    #[test]
    fn svg_height_is_read_from_the_root() {
        assert_eq!(
            svg_height("<?xml?>\n<svg version=\"1.1\" width=\"1200\" height=\"342\" x>"),
            Some(342.0)
        );
        assert_eq!(svg_height("<svg>"), None);
    }
}
