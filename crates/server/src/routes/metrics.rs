//! gocost's own `/metrics` (Prometheus text through [`crate::prom`]): the store, HTTP and
//! query counters, scrape health per target, and the insight gauges — goroutine leaks, heap
//! growth, cost, GC, regressions and trace quantiles per target over the last 15 minutes,
//! computed at most once a minute. An analysis that fails is logged and counted
//! (`gocost_insight_errors_total{analysis}`), its gauges left out, never silently empty.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use gocost_insights::{cost, heap, leaks};
use gocost_store::Selector;

use crate::insights::{
    GcCost, SeriesFindings, cost_with, gc_with, heap_by_series, leaks_by_series, target_batches,
};
use crate::prom::{self, Text, Type};
use crate::query::{
    Lent, QUERIES_CANCELLED, QUERIES_OVER_BUDGET, QUERIES_REFUSED, QUERIES_RUNNING, blocking,
};
use crate::regress::regressions_by_series;
use crate::select::{Labels, merged_by_series};
use crate::{ApiError, AppState};

/// A gauge family: name, help, and the value of a finding.
type Family<F> = (&'static str, &'static str, fn(&F) -> f64);

/// The analyses behind the gauges (`all`: the whole run, e.g. refused for lack of a query
/// slot), and how often each failed since start.
const ANALYSES: [&str; 8] = [
    "all",
    "leaks",
    "heap_growth",
    "cpu",
    "cost",
    "gc",
    "regressions",
    "traces",
];
static ANALYSIS_ERRORS: [AtomicU64; ANALYSES.len()] = [const { AtomicU64::new(0) }; ANALYSES.len()];

/// An analysis' result, or, when it failed, a warning in the log, one more on its error
/// counter and no gauges.
fn or_log<T: Default>(analysis: &'static str, r: Result<T, ApiError>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => {
            if let Some(i) = ANALYSES.iter().position(|a| *a == analysis) {
                ANALYSIS_ERRORS[i].fetch_add(1, Ordering::Relaxed);
            }
            tracing::warn!(
                target: "gocost::metrics",
                analysis,
                error = %e,
                "an analysis behind /metrics failed: its gauges are left out"
            );
            T::default()
        }
    }
}

/// `gocost_insight_errors_total{analysis}`.
fn analysis_errors(o: &mut Text) {
    o.samples(
        "gocost_insight_errors_total",
        Type::Counter,
        "Runs of an analysis behind /metrics' insight gauges that failed (its gauges were left out; the log says why).",
        ANALYSES.iter().zip(&ANALYSIS_ERRORS).map(|(a, n)| {
            (
                prom::labels(&Labels::new(), &[("analysis", a)]),
                n.load(Ordering::Relaxed) as f64,
            )
        }),
    );
}

/// A gauge family and its samples.
fn family(o: &mut Text, name: &str, help: &str, samples: impl IntoIterator<Item = (String, f64)>) {
    o.samples(name, Type::Gauge, help, samples);
}

pub(crate) async fn metrics(State(st): State<Arc<AppState>>) -> Response {
    // The store's own slots, not a query slot: a storm of queries must not blind Prometheus.
    let s = match st.store.run("the store's stats", |s| s.stats()).await {
        Ok(s) => s,
        Err(e) => return ApiError::Busy(e.to_string()).into_response(),
    };
    let mut o = Text::new();
    let mut m = |name: &str, kind: &str, help: &str, v: f64| {
        let kind = if kind == "counter" {
            Type::Counter
        } else {
            Type::Gauge
        };
        o.single(name, kind, help, v);
    };
    m(
        "gocost_store_series",
        "gauge",
        "Series in the store.",
        s.series as f64,
    );
    m(
        "gocost_store_profiles",
        "gauge",
        "Profiles stored (WAL head and blocks).",
        s.profiles as f64,
    );
    m(
        "gocost_store_head_profiles",
        "gauge",
        "Profiles in the WAL head, not yet in blocks.",
        s.head_profiles as f64,
    );
    m(
        "gocost_store_wal_bytes",
        "gauge",
        "Bytes of write-ahead log on disk.",
        s.wal_bytes as f64,
    );
    m(
        "gocost_store_head_cache_bytes",
        "gauge",
        "Bytes of encoded head profiles held in memory (at most [storage] head_cache).",
        s.head_cache_bytes as f64,
    );
    m(
        "gocost_store_head_bytes",
        "gauge",
        "About how much memory the head holds: its index, metric points, symbol tables and encoded profiles (a block is cut early past [storage] head_max).",
        s.head_bytes as f64,
    );
    m(
        "gocost_store_received_bytes_total",
        "counter",
        "Bytes of the profiles stored, as received (scraped or pushed).",
        s.received_bytes_total as f64,
    );
    m(
        "gocost_store_wal_profile_bytes_total",
        "counter",
        "Bytes of profile records written to the WAL (profiles encoded against the segment's symbols).",
        s.wal_profile_bytes_total as f64,
    );
    m(
        "gocost_store_blocks",
        "gauge",
        "Immutable blocks in the store.",
        s.blocks as f64,
    );
    m(
        "gocost_store_block_bytes",
        "gauge",
        "Bytes of blocks.",
        s.block_bytes as f64,
    );
    m(
        "gocost_store_block_read_bytes_total",
        "counter",
        "Bytes of blocks read from block storage (from a bucket: fetched over the network, gaps of merged requests included), the block cache's hits not counted.",
        s.block_read_bytes_total as f64,
    );
    if let Some(c) = &s.block_cache {
        m(
            "gocost_store_block_cache_bytes",
            "gauge",
            "Bytes of block ranges kept in the local block cache (at most [storage] block_cache).",
            c.bytes as f64,
        );
        m(
            "gocost_store_block_cache_entries",
            "gauge",
            "Block ranges kept in the local block cache.",
            c.entries as f64,
        );
        m(
            "gocost_store_block_cache_served_bytes_total",
            "counter",
            "Bytes of block ranges served from the local block cache instead of the bucket.",
            c.served_bytes_total as f64,
        );
        m(
            "gocost_store_block_cache_damaged_total",
            "counter",
            "Block cache entries found damaged on read (deleted and fetched again).",
            c.damaged_total as f64,
        );
    }
    m(
        "gocost_store_block_ingested_bytes",
        "gauge",
        "Bytes the profiles in blocks had as received (block_bytes / this = storage ratio).",
        s.block_ingested_bytes as f64,
    );
    m(
        "gocost_store_blocks_written_total",
        "counter",
        "Blocks cut from the WAL since start.",
        s.blocks_written_total as f64,
    );
    m(
        "gocost_store_compactions_total",
        "counter",
        "Days compacted into one block since start.",
        s.compactions_total as f64,
    );
    m(
        "gocost_store_disk_full",
        "gauge",
        "1 while the disk holding the WAL is full: ingest is paused (pushes get 507) until space is freed.",
        u8::from(s.disk_full) as f64,
    );
    m(
        "gocost_store_write_failing",
        "gauge",
        "1 while WAL writes or syncs fail (disk full or I/O errors); the log says why.",
        u8::from(s.write_error.is_some()) as f64,
    );
    m(
        "gocost_store_write_errors_total",
        "counter",
        "WAL writes and syncs that failed since start (nothing of them was acknowledged).",
        s.write_errors_total as f64,
    );
    m(
        "gocost_store_unsynced_dropped_total",
        "counter",
        "Records written to the WAL but dropped because its fsync failed (never acknowledged).",
        s.lost_records_total as f64,
    );
    m(
        "gocost_store_undecodable_profiles_total",
        "counter",
        "Profiles in the WAL a block cut found no longer decode: left out, logged, their segment kept in <data>/quarantine/.",
        s.undecodable_total as f64,
    );
    m(
        "gocost_store_retention_errors_total",
        "counter",
        "Expired blocks retention could not delete (kept and tried again on the next pass).",
        s.retention_errors_total as f64,
    );
    m(
        "gocost_ingest_profiles_total",
        "counter",
        "Profiles appended since start.",
        s.appends_total as f64,
    );
    m(
        "gocost_http_connections_open",
        "gauge",
        "HTTP connections open.",
        st.conns.open.load(Ordering::Relaxed) as f64,
    );
    m(
        "gocost_http_connections_limit",
        "gauge",
        "The most HTTP connections open at once (server.max_connections).",
        st.conns.limit.load(Ordering::Relaxed) as f64,
    );
    m(
        "gocost_http_connections_refused_total",
        "counter",
        "Connections refused (503 and closed) because max_connections were open, or accept failed.",
        st.conns.refused.load(Ordering::Relaxed) as f64,
    );
    m(
        "gocost_http_header_timeouts_total",
        "counter",
        "Connections closed because a request header (or the next request) did not arrive within header_timeout.",
        st.conns.timeouts.load(Ordering::Relaxed) as f64,
    );
    m(
        "gocost_http_requests_reading_body",
        "gauge",
        "Requests whose body is being received now.",
        st.conns.reading_body.load(Ordering::Relaxed) as f64,
    );
    m(
        "gocost_http_body_timeouts_total",
        "counter",
        "Requests answered 400 because their body did not arrive within body_timeout.",
        st.conns.body_timeouts.load(Ordering::Relaxed) as f64,
    );
    m(
        "gocost_http_requests_total",
        "counter",
        "API requests served.",
        st.requests.load(Ordering::Relaxed) as f64,
    );
    m(
        "gocost_query_total",
        "counter",
        "Profile queries run.",
        st.queries.load(Ordering::Relaxed) as f64,
    );
    m(
        "gocost_query_errors_total",
        "counter",
        "Profile queries that failed.",
        st.query_errors.load(Ordering::Relaxed) as f64,
    );
    m(
        "gocost_query_seconds_total",
        "counter",
        "Time spent in profile queries.",
        st.query_nanos.load(Ordering::Relaxed) as f64 / 1e9,
    );
    m(
        "gocost_query_running",
        "gauge",
        "Queries running now (at most max_concurrent_queries).",
        QUERIES_RUNNING.load(Ordering::Relaxed) as f64,
    );
    m(
        "gocost_query_refused_total",
        "counter",
        "Queries refused with 503 because max_concurrent_queries were running for 5 s.",
        QUERIES_REFUSED.load(Ordering::Relaxed) as f64,
    );
    m(
        "gocost_query_cancelled_total",
        "counter",
        "Queries stopped after running past query_timeout (their work unwound, not left running).",
        QUERIES_CANCELLED.load(Ordering::Relaxed) as f64,
    );
    m(
        "gocost_query_over_budget_total",
        "counter",
        "Queries answered 422 because they went over query_max_nodes, query_max_depth or query_max_output.",
        QUERIES_OVER_BUDGET.load(Ordering::Relaxed) as f64,
    );
    m(
        "gocost_uptime_seconds",
        "gauge",
        "Seconds since gocost started.",
        st.started.elapsed().as_secs_f64(),
    );
    let health = st.health.read().map(|f| f()).unwrap_or_default();
    for (name, kind, help) in [
        (
            "gocost_scrape_up",
            "gauge",
            "1 if the last scrape of the target's profile kind succeeded.",
        ),
        (
            "gocost_scrape_duration_seconds",
            "gauge",
            "Duration of the last scrape.",
        ),
        (
            "gocost_scrape_bytes",
            "gauge",
            "Bytes fetched by the last scrape.",
        ),
        ("gocost_scrapes_total", "counter", "Scrapes attempted."),
        (
            "gocost_scrape_failures_total",
            "counter",
            "Scrapes that failed.",
        ),
    ] {
        let kind = if kind == "counter" {
            Type::Counter
        } else {
            Type::Gauge
        };
        o.family(name, kind, help);
        for h in &health {
            let v = match name {
                "gocost_scrape_up" => f64::from(u8::from(h.up)),
                "gocost_scrape_duration_seconds" => h.last_duration_ms as f64 / 1e3,
                "gocost_scrape_bytes" => h.last_bytes as f64,
                "gocost_scrapes_total" => h.scrapes_total as f64,
                _ => h.failures_total as f64,
            };
            let labels = prom::labels(
                &Labels::new(),
                &[
                    ("job", &h.job),
                    ("instance", &h.instance),
                    ("kind", &h.kind),
                ],
            );
            o.sample(name, &labels, v);
        }
    }
    o.append(&insight_metrics(&st).await);
    analysis_errors(&mut o);
    crate::alerts::metrics(&st, &mut o);
    let mut r = o.finish().into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    r
}

/// Regressions need profiles on both sides of a deploy: `/metrics` looks back an hour.
const REGRESSION_WINDOW_NS: i64 = 3600 * 1_000_000_000;

/// `gocost_regression_change{function, build}`: how much more CPU (relative, 0.3 = +30 %) a
/// function takes since a build change of the last hour, per target.
fn regression_gauges(o: &mut Text, st: &Lent<'_>, all: &Selector, from: i64, to: i64) {
    let per = or_log("regressions", regressions_by_series(st, all, from, to));
    family(
        o,
        "gocost_regression_change",
        "Relative CPU increase of a function after a build change in the last hour (0.3 = 30 % more), significant after Holm correction.",
        per.iter().flat_map(|s| {
            s.changes.iter().filter(|c| c.compared).flat_map(move |c| {
                c.regressions.iter().map(move |r| {
                    let build = c.after.name();
                    (
                        prom::labels(&s.labels, &[("function", &r.function), ("build", build)]),
                        r.change,
                    )
                })
            })
        }),
    );
}

/// GC gauges per target over the `/metrics` window.
fn gc_gauges(o: &mut Text, per: &[GcCost]) {
    family(
        o,
        "gocost_gc_pause_seconds",
        "Stop-the-world GC pauses of the last 15 minutes (quantile 1 = the longest).",
        per.iter().flat_map(|g| {
            g.pauses.iter().flat_map(|p| {
                [
                    ("0.5", p.p50),
                    ("0.9", p.p90),
                    ("0.99", p.p99),
                    ("1", p.max),
                ]
                .map(|(q, v)| (prom::labels(&g.labels, &[("quantile", q)]), v))
            })
        }),
    );
    family(
        o,
        "gocost_gc_cpu_fraction",
        "Share of the last 15 minutes' CPU profile time spent in the garbage collector (mark, assists, sweep, stop-the-world).",
        per.iter()
            .filter_map(|g| Some((prom::labels(&g.labels, &[]), g.gc_cpu.as_ref()?.fraction))),
    );
    family(
        o,
        "gocost_allocation_bytes_per_second",
        "Bytes allocated per second over the last 15 minutes (allocs profiles).",
        per.iter().filter_map(|g| {
            Some((
                prom::labels(&g.labels, &[]),
                g.allocation.as_ref()?.bytes_per_second,
            ))
        }),
    );
}

/// How far back `/metrics` looks, and how long its answer is reused: Prometheus may scrape
/// every few seconds, the analyses read every goroutine and heap profile in the window.
const METRICS_WINDOW_NS: i64 = 15 * 60 * 1_000_000_000;
const METRICS_REFRESH: std::time::Duration = std::time::Duration::from_secs(60);

/// The insight gauges of `/metrics` (goroutine leaks, heap growth; Prometheus text),
/// recomputed at most once a minute.
///
/// Past the minute, the last answer is served at once and the refresh runs behind it (one at
/// a time): over a fleet of thousands of targets the analyses take longer than a
/// Prometheus scrape may (tens of seconds at 2,000), and gauges over 15 minutes lose
/// nothing by being a minute or two old. Only the first scrape waits for them.
async fn insight_metrics(st: &Arc<AppState>) -> String {
    let cached = st.insight_metrics.lock().ok().and_then(|c| c.clone());
    match cached {
        Some((at, text)) if at.elapsed() < METRICS_REFRESH => text,
        Some((_, text)) => {
            if !st.insight_refreshing.swap(true, Ordering::AcqRel) {
                let st = st.clone();
                tokio::spawn(async move {
                    refresh_insight_metrics(&st).await;
                    st.insight_refreshing.store(false, Ordering::Release);
                });
            }
            text
        }
        None => refresh_insight_metrics(st).await,
    }
}

/// Computes the insight gauges and keeps them for [`insight_metrics`].
async fn refresh_insight_metrics(st: &Arc<AppState>) -> String {
    let text = blocking(st, move |st| {
        let to = crate::time::now_ns();
        let from = to - METRICS_WINDOW_NS;
        let all = Selector {
            kind: None,
            matchers: Vec::new(),
        };
        // The analyses run over a batch of targets at a time: each holds its targets'
        // profiles of the window (merged or folded) while it runs, so a fleet of thousands
        // is analysed in the memory of a batch; their findings are small.
        let mut leaking = Vec::new();
        let mut growing = Vec::new();
        let mut costs = Vec::new();
        let mut gcs = Vec::new();
        let rates = st.cost_rates();
        for sel in target_batches(st, &all) {
            let l = leaks_by_series(st, &sel, from, to, &leaks::defaults());
            leaking.extend(or_log("leaks", l));
            let h = heap_by_series(st, &sel, from, to, &heap::defaults());
            growing.extend(or_log("heap_growth", h));
            // One merge of each target's CPU profiles serves cost and GC.
            let cpu = or_log("cpu", merged_by_series(st, &sel, "cpu", from, to));
            costs.extend(or_log("cost", cost_with(st, &sel, from, to, &rates, &cpu)));
            gcs.extend(or_log("gc", gc_with(st, &sel, from, to, 0, &cpu)));
        }
        let mut o = Text::new();
        gauges(
            &mut o,
            &leaking,
            &[
                (
                    "gocost_goroutine_leak_rate_per_hour",
                    "Growth of a leaking goroutine group (goroutines per hour) over the last 15 minutes.",
                    |f| f.rate_per_hour,
                ),
                (
                    "gocost_goroutine_leak_goroutines",
                    "Goroutines in a leaking group at the last scrape.",
                    |f| f.count as f64,
                ),
                (
                    "gocost_goroutine_leak_confidence",
                    "0..1: how sure the evidence makes gocost of the leak (1 = proven by Go's runtime).",
                    |f| f.confidence,
                ),
            ],
            |f| vec![("function", f.function.as_str()), ("blocking", f.blocking.as_str())],
        );
        gauges(
            &mut o,
            &growing,
            &[
                (
                    "gocost_heap_growth_bytes_per_hour",
                    "Growth of the heap in use of an allocation site that keeps growing (last 15 minutes).",
                    |f| f.rate_bytes_per_hour,
                ),
                (
                    "gocost_heap_growth_inuse_bytes",
                    "Heap in use of a growing allocation site at its last heap profile.",
                    |f| f.inuse_bytes as f64,
                ),
            ],
            |f| vec![("site", f.site.as_str())],
        );
        cost_gauges(&mut o, &rates, &costs);
        gc_gauges(&mut o, &gcs);
        regression_gauges(&mut o, st, &all, to - REGRESSION_WINDOW_NS, to);
        trace_gauges(&mut o, st, from, to);
        o.finish()
    })
    .await;
    match text {
        Ok(text) => {
            if let Ok(mut c) = st.insight_metrics.lock() {
                *c = Some((std::time::Instant::now(), text.clone()));
            }
            text
        }
        // Not cached: the next scrape tries again.
        Err(e) => or_log("all", Err(e)),
    }
}

/// From each target's latest execution trace in the `/metrics` window (the series
/// `gocost_scrape::trace` stores): `gocost_sched_latency_seconds{quantile}` and
/// `gocost_gc_stw_seconds{quantile}`.
fn trace_gauges(o: &mut Text, st: &Lent<'_>, from: i64, to: i64) {
    for (stored, name, help) in [
        (
            "go_trace_sched_latency_seconds",
            "gocost_sched_latency_seconds",
            "Scheduler latency (runnable to running) quantiles of the target's latest execution trace in the last 15 minutes.",
        ),
        (
            "go_trace_gc_stw_seconds",
            "gocost_gc_stw_seconds",
            "Quantiles of the GC's stop-the-world pauses in the target's latest execution trace in the last 15 minutes.",
        ),
    ] {
        let Ok(sel) = Selector::parse(&format!("metric{{__name__=\"{stored}\"}}")) else {
            continue;
        };
        let series = or_log(
            "traces",
            st.store
                .select_points(&sel, from, to)
                .map_err(ApiError::from),
        );
        // Per target, the quantiles of its newest capture (all written at the same time).
        let mut per: BTreeMap<Labels, Vec<(String, i64, f64)>> = BTreeMap::new();
        for (k, pts) in &series {
            let Some(&(t, v)) = pts.last() else { continue };
            let mut l = k.labels.clone();
            l.remove("__name__");
            let q = l.remove("quantile").unwrap_or_default();
            per.entry(l).or_default().push((q, t, v));
        }
        family(
            o,
            name,
            help,
            per.iter().flat_map(|(l, qs)| {
                let newest = qs.iter().map(|x| x.1).max().unwrap_or(0);
                qs.iter()
                    .filter(move |x| x.1 == newest)
                    .map(|(q, _, v)| (prom::labels(l, &[("quantile", q.as_str())]), *v))
            }),
        );
    }
}

/// Cost per target over the `/metrics` window: `gocost_cost_per_hour{resource="cpu|memory"}`,
/// `gocost_cost_cores`, `gocost_cost_memory_bytes`.
fn cost_gauges(o: &mut Text, rates: &cost::Rates, per: &[(Labels, cost::Estimate)]) {
    family(
        o,
        "gocost_cost_per_hour",
        &format!(
            "What a target costs per hour (currency {}) at the [cost] rates, over the last 15 minutes: resource=\"cpu\" from CPU profiles, \"memory\" from resident memory (or the heap).",
            prom::escape(&rates.currency)
        ),
        per.iter().flat_map(|(l, e)| {
            [("cpu", e.cpu_per_hour), ("memory", e.memory_per_hour)]
                .map(|(r, v)| (prom::labels(l, &[("resource", r)]), v))
        }),
    );
    family(
        o,
        "gocost_cost_cores",
        "Cores a target kept busy on average over the last 15 minutes (CPU profiles).",
        per.iter().map(|(l, e)| (prom::labels(l, &[]), e.cores)),
    );
    family(
        o,
        "gocost_cost_memory_bytes",
        "Memory a target is charged for (mean over the last 15 minutes; see the API's memory_source).",
        per.iter().map(|(l, e)| {
            (
                prom::labels(l, &[]),
                e.memory_gib * 1024.0 * 1024.0 * 1024.0,
            )
        }),
    );
}

/// One gauge family per (name, help, value): a sample per finding, labelled with its
/// target's labels plus the finding's own.
fn gauges<F>(
    o: &mut Text,
    series: &[SeriesFindings<F>],
    families: &[Family<F>],
    labels_of: fn(&F) -> Vec<(&str, &str)>,
) {
    for (name, help, value) in families {
        family(
            o,
            name,
            help,
            series.iter().flat_map(|s| {
                s.findings
                    .iter()
                    .map(|f| (prom::labels(&s.labels, &labels_of(f)), value(f)))
            }),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Past the minute, `/metrics` answers with the last gauges at once and refreshes them
    /// behind the answer.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stale_insight_gauges_are_served_and_refreshed_behind() {
        let dir = std::env::temp_dir().join(format!("gocost-metrics-stale-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (store, _) = tokio::task::spawn_blocking(move || {
            gocost_store::Store::open(gocost_store::Options::new(&dir))
        })
        .await
        .unwrap()
        .unwrap();
        let health: crate::HealthSource = Arc::new(std::sync::RwLock::new(Box::new(Vec::new)));
        let st = AppState::new(Arc::new(store), health);
        let first = insight_metrics(&st).await;
        assert!(!first.contains("stale"), "{first}");
        let old = std::time::Instant::now() - METRICS_REFRESH - std::time::Duration::from_secs(1);
        *st.insight_metrics.lock().unwrap() = Some((old, "# stale\n".into()));
        assert_eq!(insight_metrics(&st).await, "# stale\n");
        for _ in 0..500 {
            let c = st.insight_metrics.lock().unwrap().clone().unwrap();
            if c.0 > old {
                assert_eq!(c.1, first);
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("the stale gauges were never refreshed");
    }
}
