//! Go runtime metrics as time-series points: from `/debug/vars` (expvar's `memstats`) and
//! from Prometheus text exposition (`/metrics` of services using the Go client: `go_*`,
//! `process_*`).

/// What one `/debug/vars` scrape yields.
#[derive(Debug, Default, PartialEq)]
pub struct Expvar {
    /// Gauges and counters, named like the Prometheus Go client names them.
    pub values: Vec<(&'static str, f64)>,
    /// Each GC cycle's stop-the-world pause since the previous scrape: (end, seconds).
    pub pauses: Vec<(i64, f64)>,
    pub num_gc: u32,
    /// Cycles whose pauses fell out of the 256-entry ring between two scrapes.
    pub lost_pauses: u64,
}

/// The part of `/debug/vars` gocost reads: `memstats`' fields, by name. Everything else
/// (`cmdline`, the service's own vars, `BySize`, …) is skipped without being built.
#[derive(serde::Deserialize)]
struct Vars {
    memstats: Option<MemStats>,
}

#[derive(serde::Deserialize)]
struct MemStats {
    #[serde(rename = "HeapAlloc")]
    heap_alloc: Option<f64>,
    #[serde(rename = "HeapInuse")]
    heap_inuse: Option<f64>,
    #[serde(rename = "HeapSys")]
    heap_sys: Option<f64>,
    #[serde(rename = "HeapObjects")]
    heap_objects: Option<f64>,
    #[serde(rename = "Sys")]
    sys: Option<f64>,
    #[serde(rename = "NextGC")]
    next_gc: Option<f64>,
    #[serde(rename = "StackInuse")]
    stack_inuse: Option<f64>,
    #[serde(rename = "TotalAlloc")]
    total_alloc: Option<f64>,
    #[serde(rename = "Mallocs")]
    mallocs: Option<f64>,
    #[serde(rename = "Frees")]
    frees: Option<f64>,
    #[serde(rename = "NumGC")]
    num_gc: Option<u64>,
    #[serde(rename = "PauseTotalNs")]
    pause_total_ns: Option<f64>,
    #[serde(rename = "GCCPUFraction")]
    gc_cpu_fraction: Option<f64>,
    #[serde(rename = "PauseNs", default)]
    pause_ns: Vec<u64>,
    #[serde(rename = "PauseEnd", default)]
    pause_end: Vec<u64>,
}

/// Parses a `/debug/vars` body. `prev_num_gc` is the `NumGC` of the previous scrape of the
/// same process (`None` on the first scrape: every pause still in the ring is reported).
/// GC cycle n (1-based) lives at index (n-1) % 256 of `PauseNs`/`PauseEnd`.
pub fn parse_expvar(body: &[u8], prev_num_gc: Option<u32>) -> Result<Expvar, String> {
    let v: Vars = serde_json::from_slice(body).map_err(|e| format!("parsing /debug/vars: {e}"))?;
    let ms = v
        .memstats
        .ok_or("/debug/vars has no memstats (is expvar imported?)")?;
    let mut out = Expvar::default();
    // Named like the Prometheus Go client names them.
    for (x, name, scale) in [
        (ms.heap_alloc, "go_memstats_heap_alloc_bytes", 1.0),
        (ms.heap_inuse, "go_memstats_heap_inuse_bytes", 1.0),
        (ms.heap_sys, "go_memstats_heap_sys_bytes", 1.0),
        (ms.heap_objects, "go_memstats_heap_objects", 1.0),
        (ms.sys, "go_memstats_sys_bytes", 1.0),
        (ms.next_gc, "go_memstats_next_gc_bytes", 1.0),
        (ms.stack_inuse, "go_memstats_stack_inuse_bytes", 1.0),
        (ms.total_alloc, "go_memstats_alloc_bytes_total", 1.0),
        (ms.mallocs, "go_memstats_mallocs_total", 1.0),
        (ms.frees, "go_memstats_frees_total", 1.0),
        (ms.num_gc.map(|n| n as f64), "go_gc_cycles_total", 1.0),
        (ms.pause_total_ns, "go_gc_pause_seconds_total", 1e-9),
        (ms.gc_cpu_fraction, "go_gc_cpu_fraction", 1.0),
    ] {
        if let Some(x) = x {
            out.values.push((name, x * scale));
        }
    }
    pauses(
        &mut out,
        ms.num_gc.unwrap_or(0) as u32,
        prev_num_gc,
        &ms.pause_ns,
        &ms.pause_end,
    );
    Ok(out)
}

/// The GC pauses since the previous scrape from the `PauseNs`/`PauseEnd` rings (GC cycle n,
/// 1-based, at index (n-1) % 256), into `out` with `num_gc`; rings that are not 256 long
/// give none.
fn pauses(out: &mut Expvar, num_gc: u32, prev_num_gc: Option<u32>, pns: &[u64], pend: &[u64]) {
    out.num_gc = num_gc;
    if pns.len() != 256 || pend.len() != 256 {
        return;
    }
    // A smaller NumGC than before means a new process: report its ring from the start.
    let prev = match prev_num_gc {
        Some(p) if p <= num_gc => p,
        _ => 0,
    };
    let first = if num_gc - prev > 256 {
        out.lost_pauses = u64::from(num_gc - prev - 256);
        num_gc - 255
    } else {
        prev + 1
    };
    for n in first..=num_gc {
        if n == 0 {
            continue;
        }
        let i = ((n - 1) % 256) as usize;
        out.pauses.push((pend[i] as i64, pns[i] as f64 / 1e9));
    }
}

/// One sample of a Prometheus text exposition.
#[derive(Debug, Clone, PartialEq)]
pub struct PromSample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

/// At most this many samples are kept from one `/metrics` scrape.
pub const MAX_PROM_SAMPLES: usize = 10_000;

/// The goroutine count on `net/http/pprof`'s index page (`/debug/pprof/`), whose rows are
/// `<tr><td>N</td><td><a href='goroutine?debug=1'>goroutine</a></td></tr>` (Go 1.22–1.27):
/// `runtime.NumGoroutine` without a goroutine profile's stop-the-world.
pub fn index_goroutines(index: &str) -> Option<u64> {
    index.lines().find_map(|l| {
        let rest = l.trim().strip_prefix("<tr><td>")?;
        let (n, rest) = rest.split_once("</td>")?;
        if !rest.contains(">goroutine</a>") {
            return None;
        }
        n.parse().ok()
    })
}

/// Parses Prometheus text exposition format (version 0.0.4), keeping the Go runtime and
/// process families (`go_*`, `process_*`). Timestamps in the text are ignored: points get
/// the scrape time. Errors name the line.
pub fn parse_prometheus(body: &[u8]) -> Result<Vec<PromSample>, String> {
    let text = std::str::from_utf8(body).map_err(|e| format!("/metrics is not UTF-8: {e}"))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = |what: &str| format!("/metrics line {}: {what}", i + 1);
        let name_end = line
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(line.len());
        let name = &line[..name_end];
        if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(at("expected a metric name"));
        }
        let mut rest = &line[name_end..];
        let mut labels = Vec::new();
        if let Some(r) = rest.strip_prefix('{') {
            rest = r;
            loop {
                rest = rest.trim_start_matches([' ', ',']);
                if let Some(r) = rest.strip_prefix('}') {
                    rest = r;
                    break;
                }
                let eq = rest
                    .find('=')
                    .ok_or_else(|| at("expected label=\"value\""))?;
                let lname = rest[..eq].trim();
                if lname.is_empty() || !lname.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                {
                    return Err(at("bad label name"));
                }
                let r = rest[eq + 1..]
                    .trim_start()
                    .strip_prefix('"')
                    .ok_or_else(|| at("label value must be quoted"))?;
                let mut value = String::new();
                let mut chars = r.char_indices();
                let end = loop {
                    match chars.next() {
                        None => return Err(at("unterminated label value")),
                        Some((j, '"')) => break j,
                        Some((_, '\\')) => match chars.next() {
                            Some((_, 'n')) => value.push('\n'),
                            Some((_, c)) => value.push(c),
                            None => return Err(at("unterminated label value")),
                        },
                        Some((_, c)) => value.push(c),
                    }
                };
                labels.push((lname.to_string(), value));
                rest = &r[end + 1..];
            }
        }
        let mut fields = rest.split_whitespace();
        let v = fields.next().ok_or_else(|| at("missing value"))?;
        let value = match v {
            "+Inf" | "Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            "NaN" => f64::NAN,
            v => v.parse().map_err(|_| at(&format!("bad value {v:?}")))?,
        };
        if let Some(ts) = fields.next()
            && ts.parse::<i64>().is_err()
        {
            return Err(at(&format!("bad timestamp {ts:?}")));
        }
        if !(name.starts_with("go_") || name.starts_with("process_")) {
            continue;
        }
        if out.len() >= MAX_PROM_SAMPLES {
            return Err(format!(
                "/metrics has more than {MAX_PROM_SAMPLES} go_*/process_* samples"
            ));
        }
        out.push(PromSample {
            name: name.to_string(),
            labels,
            value,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn goroutines_from_the_pprof_index() {
        let index = "<table>\n<tr><td>0</td><td><a href='block?debug=1'>block</a></td></tr>\n\
                     <tr><td>7</td><td><a href='goroutine?debug=1'>goroutine</a></td></tr>\n";
        assert_eq!(index_goroutines(index), Some(7));
        assert_eq!(index_goroutines("goroutine 1 [running]:\n"), None);
        assert_eq!(index_goroutines(""), None);
    }

    fn vars() -> Vec<u8> {
        std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../testdata/metrics/vars.json"),
        )
        .unwrap()
    }

    use serde_json::Value;

    const FIELDS: &[(&str, &str, f64)] = &[
        ("HeapAlloc", "go_memstats_heap_alloc_bytes", 1.0),
        ("HeapInuse", "go_memstats_heap_inuse_bytes", 1.0),
        ("HeapSys", "go_memstats_heap_sys_bytes", 1.0),
        ("HeapObjects", "go_memstats_heap_objects", 1.0),
        ("Sys", "go_memstats_sys_bytes", 1.0),
        ("NextGC", "go_memstats_next_gc_bytes", 1.0),
        ("StackInuse", "go_memstats_stack_inuse_bytes", 1.0),
        ("TotalAlloc", "go_memstats_alloc_bytes_total", 1.0),
        ("Mallocs", "go_memstats_mallocs_total", 1.0),
        ("Frees", "go_memstats_frees_total", 1.0),
        ("NumGC", "go_gc_cycles_total", 1.0),
        ("PauseTotalNs", "go_gc_pause_seconds_total", 1e-9),
        ("GCCPUFraction", "go_gc_cpu_fraction", 1.0),
    ];

    /// The parse before the typed one (through a whole `serde_json::Value`): the reference. `prev_num_gc` is the `NumGC` of the previous scrape of the
    /// same process (`None` on the first scrape: every pause still in the ring is reported).
    /// GC cycle n (1-based) lives at index (n-1) % 256 of `PauseNs`/`PauseEnd`.
    fn parse_expvar_value(body: &[u8], prev_num_gc: Option<u32>) -> Result<Expvar, String> {
        let v: Value =
            serde_json::from_slice(body).map_err(|e| format!("parsing /debug/vars: {e}"))?;
        let ms = v
            .get("memstats")
            .ok_or("/debug/vars has no memstats (is expvar imported?)")?;
        let mut out = Expvar::default();
        for &(field, name, scale) in FIELDS {
            if let Some(x) = ms.get(field).and_then(Value::as_f64) {
                out.values.push((name, x * scale));
            }
        }
        let num_gc = ms.get("NumGC").and_then(Value::as_u64).unwrap_or(0) as u32;
        let ring = |k: &str| -> Vec<u64> {
            ms.get(k)
                .and_then(Value::as_array)
                .map(|a| a.iter().map(|x| x.as_u64().unwrap_or(0)).collect())
                .unwrap_or_default()
        };
        // The ring arithmetic is the parser's own: this reference is for reading the body.
        pauses(
            &mut out,
            num_gc,
            prev_num_gc,
            &ring("PauseNs"),
            &ring("PauseEnd"),
        );
        Ok(out)
    }

    #[test]
    fn the_typed_parse_reads_what_the_whole_value_read() {
        let body = vars();
        for prev in [None, Some(0), Some(5), Some(7), Some(9)] {
            assert_eq!(
                parse_expvar(&body, prev),
                parse_expvar_value(&body, prev),
                "{prev:?}"
            );
        }
        // A service's own vars of any shape beside memstats are skipped.
        let mut v: Value = serde_json::from_slice(&body).unwrap();
        v["mine"] = serde_json::json!({"a": [1, "x", null, {"b": true}]});
        let body = serde_json::to_vec(&v).unwrap();
        assert_eq!(parse_expvar(&body, None), parse_expvar_value(&body, None));
    }

    #[test]
    fn memstats_and_the_pause_ring() {
        let e = parse_expvar(&vars(), None).unwrap();
        assert_eq!(e.num_gc, 7);
        assert!(
            e.values
                .contains(&("go_memstats_heap_alloc_bytes", 23506088.0))
        );
        assert!(e.values.contains(&("go_gc_cycles_total", 7.0)));
        assert_eq!(e.pauses.len(), 7);
        assert_eq!(e.pauses[0].1, 1206721.0 / 1e9);
        let total: f64 = e.pauses.iter().map(|p| p.1).sum();
        assert!(
            (total - 38861986.0 / 1e9).abs() < 1e-9,
            "pauses sum to PauseTotalNs"
        );
        assert!(
            e.pauses.windows(2).all(|w| w[0].0 <= w[1].0),
            "in time order"
        );
        // Incremental: only cycles after the previous scrape.
        let inc = parse_expvar(&vars(), Some(5)).unwrap();
        assert_eq!(inc.pauses.len(), 2);
        assert_eq!(inc.pauses[1].1, 7891736.0 / 1e9);
        assert!(parse_expvar(b"{}", None).is_err());
        assert!(parse_expvar(b"nope", None).is_err());
    }

    #[test]
    fn prometheus_text_from_a_real_go_client() {
        // Recorded from a real Prometheus server's own /metrics (a Go program using
        // client_golang): testdata/metrics/README.md says how.
        let body = std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../testdata/metrics/prometheus.txt"),
        )
        .unwrap();
        let s = parse_prometheus(&body).unwrap();
        let get = |name: &str, labels: &[(&str, &str)]| {
            s.iter()
                .find(|x| {
                    x.name == name
                        && x.labels.len() == labels.len()
                        && labels
                            .iter()
                            .all(|(k, v)| x.labels.iter().any(|(a, b)| a == k && b == v))
                })
                .map(|x| x.value)
        };
        assert!(get("go_goroutines", &[]).is_some_and(|v| v > 0.0));
        assert!(get("process_resident_memory_bytes", &[]).is_some_and(|v| v > 1e6));
        assert!(get("go_gc_duration_seconds", &[("quantile", "0.5")]).is_some());
        assert!(get("go_memstats_heap_alloc_bytes", &[]).is_some());
        assert!(
            s.iter()
                .all(|x| x.name.starts_with("go_") || x.name.starts_with("process_"))
        );
        assert!(!s.iter().any(|x| x.name.starts_with("prometheus_")));
    }

    #[test]
    fn prometheus_text_edge_cases_and_errors() {
        let s = parse_prometheus(
            b"# HELP go_x x\n# TYPE go_x gauge\ngo_x{a=\"q\\\"\\\\\\n\",b=\"\"} +Inf 1700000000000\n\
              process_y -1.5e3\nother 1\ngo_nan NaN\n",
        )
        .unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].labels[0], ("a".to_string(), "q\"\\\n".to_string()));
        assert_eq!(s[0].value, f64::INFINITY);
        assert_eq!(s[1].value, -1500.0);
        assert!(s[2].value.is_nan());
        for (bad, why) in [
            (&b"go_x{a=1} 2\n"[..], "line 1: label value must be quoted"),
            (b"ok 1\ngo_x{a=\"1} 2\n", "line 2: unterminated label value"),
            (b"go_x\n", "line 1: missing value"),
            (b"go_x abc\n", "line 1: bad value \"abc\""),
            (b"{a=\"b\"} 1\n", "line 1: expected a metric name"),
        ] {
            let e = parse_prometheus(bad).unwrap_err();
            assert!(e.contains(why), "{e} (wanted {why})");
        }
    }
}
