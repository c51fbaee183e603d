//! The scraper: one task per target and profile kind, each isolated (its own timeouts,
//! response cap and backoff), so a slow or broken target never delays healthy ones.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use gocost_store::{AsyncStore, SeriesKey, Store};
use tokio::task::JoinHandle;

use crate::ScrapeError;
use crate::delta::Baseline;
use crate::discovery::{self, Group, JobDefaults, Rule, Target};
use crate::pool::{Place, Pool};
use gocost_config::{Config, ScrapeConfig};

/// The health of one target's profile kind, for the API and `/metrics`.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Health {
    pub job: String,
    pub instance: String,
    pub kind: String,
    pub url: String,
    pub up: bool,
    pub last_error: Option<String>,
    /// The HTTP status of the last attempt, when it failed with one (404: the service does
    /// not serve that endpoint).
    pub last_status: Option<u16>,
    /// Unix milliseconds of the last attempt.
    pub last_scrape_ms: i64,
    pub last_duration_ms: u64,
    pub last_bytes: u64,
    pub scrapes_total: u64,
    pub failures_total: u64,
    /// The target's labels after relabelling (its series' labels).
    pub labels: BTreeMap<String, String>,
    /// The labels discovery gave it, before relabelling (`__address__` without credentials).
    pub discovered_labels: BTreeMap<String, String>,
}

/// Keyed by (job, target key, kind).
type HealthMap = Arc<Mutex<BTreeMap<(String, String, String), Health>>>;

/// Running scrape loops, per job: the job's refreshers and a task that owns its targets'
/// loops (aborting it stops them).
pub struct Scraper {
    tasks: Vec<JoinHandle<()>>,
    health: HealthMap,
    dropped: DroppedMap,
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

/// Cumulative profiles are stored as deltas between scrapes.
pub fn is_cumulative(kind: &str) -> bool {
    matches!(kind, "allocs" | "mutex" | "block")
}

fn endpoint(kind: &str) -> &str {
    match kind {
        "cpu" => "profile",
        other => other,
    }
}

struct Job {
    /// Shared by every target × kind of the job (a job may list hundreds of targets).
    cfg: Arc<ScrapeConfig>,
    instance: String,
    kind: String,
    url: String,
    key: SeriesKey,
    /// The job's client (one connection pool for all its targets and kinds).
    client: reqwest::Client,
    /// The job's timeout plus, for CPU profiles and traces, the time they take.
    timeout: Duration,
    health_key: (String, String, String),
    /// Where bodies are decoded and stored (shared by every loop of the scraper).
    pool: Pool,
}

/// A fetch error: timeouts say so (a hanging or dripping target), with the limit and the
/// setting it comes from; other errors with their cause.
fn fetch_error(job: &Job, e: reqwest::Error) -> ScrapeError {
    // The URL is in the health answer already, without its userinfo; reqwest's would keep it.
    let e = e.without_url();
    let mut cause = String::new();
    let mut src = std::error::Error::source(&e);
    while let Some(s) = src {
        cause = format!(": {s}");
        src = s.source();
    }
    if e.is_timeout() {
        let (extra, setting) = match job.kind.as_str() {
            "cpu" => (
                job.cfg.cpu_window(),
                "the job's timeout plus its cpu_window",
            ),
            "trace" => (
                Duration::from_secs(job.cfg.trace.seconds()),
                "the job's timeout plus its trace.seconds",
            ),
            _ => (Duration::ZERO, "the job's timeout"),
        };
        ScrapeError::Timeout {
            limit: job.cfg.timeout() + extra,
            setting,
            cause: e.to_string(),
        }
    } else {
        ScrapeError::Fetch(format!("{e}{cause}"))
    }
}

/// Fetches the job's URL. With `place`, a place in the pool's queue is taken once the
/// response's headers are in and before its body is read, and handed back with it: a
/// scrape waits there, its body unread, while the pool is behind (docs/adr/0025).
async fn fetch(job: &Job, place: bool) -> Result<(Vec<u8>, Option<Place>), ScrapeError> {
    let mut req = job.client.get(&job.url).timeout(job.timeout);
    if let Some(t) = &job.cfg.bearer_token {
        req = req.bearer_auth(t);
    }
    for (k, v) in &job.cfg.headers {
        req = req.header(k, v);
    }
    let mut resp = req.send().await.map_err(|e| fetch_error(job, e))?;
    let status = resp.status();
    let (cap, setting) = if job.kind == "trace" {
        (job.cfg.trace.max_bytes(), "trace.max_bytes")
    } else {
        (job.cfg.max_body(), "max_body")
    };
    if let Some(len) = resp.content_length()
        && len > cap
    {
        return Err(ScrapeError::TooLarge {
            len: Some(len),
            setting,
            cap,
        });
    }
    let place = if place && status.is_success() {
        Some(job.pool.place().await?)
    } else {
        None
    };
    let mut body = Vec::with_capacity(resp.content_length().map_or(0, |n| n as usize));
    while let Some(chunk) = resp.chunk().await.map_err(|e| fetch_error(job, e))? {
        if body.len() as u64 + chunk.len() as u64 > cap {
            return Err(ScrapeError::TooLarge {
                len: None,
                setting,
                cap,
            });
        }
        body.extend_from_slice(&chunk);
    }
    if !status.is_success() {
        let text = String::from_utf8_lossy(&body[..body.len().min(200)])
            .trim()
            .to_string();
        return Err(ScrapeError::Status { status, body: text });
    }
    Ok((body, place))
}

/// Fetches once and stores what the kind calls for; returns bytes fetched.
/// Scrapes `/debug/vars` into runtime-metric points; `prev_gc` tracks the GC count so that
/// each GC pause is stored once.
async fn scrape_expvar(job: &Job, prev_gc: &mut Option<u32>) -> Result<u64, ScrapeError> {
    let (body, place) = fetch(job, true).await?;
    let place = place.ok_or_else(|| ScrapeError::Store("no place in the pool".into()))?;
    let t = now_ns();
    let n = body.len() as u64;
    let (labels, prev) = (job.key.labels.clone(), *prev_gc);
    let num_gc = Pool::run(place, "storing metric points", move |s| {
        let e = crate::runtime::parse_expvar(&body, prev).map_err(ScrapeError::Parse)?;
        let key = |name: &str| {
            let mut labels = labels.clone();
            labels.insert("__name__".into(), name.to_string());
            SeriesKey::new("metric", labels)
        };
        let mut points: Vec<(SeriesKey, i64, f64)> =
            e.values.iter().map(|(n, v)| (key(n), t, *v)).collect();
        let pause = key("go_gc_pause_seconds");
        points.extend(
            e.pauses
                .iter()
                .map(|(end, secs)| (pause.clone(), *end, *secs)),
        );
        if e.lost_pauses > 0 {
            points.push((key("gocost_gc_pauses_lost"), t, e.lost_pauses as f64));
        }
        s.append_points(&points)?;
        Ok::<_, ScrapeError>(e.num_gc)
    })
    .await??;
    *prev_gc = Some(num_gc);
    Ok(n)
}

/// Scrapes a Prometheus `/metrics` into runtime-metric points (`go_*`, `process_*`). A
/// metric label that collides with a target label is kept as `exported_<name>`, as
/// Prometheus does.
async fn scrape_prometheus(job: &Job) -> Result<u64, ScrapeError> {
    let (body, place) = fetch(job, true).await?;
    let place = place.ok_or_else(|| ScrapeError::Store("no place in the pool".into()))?;
    let t = now_ns();
    let n = body.len() as u64;
    let target = job.key.labels.clone();
    Pool::run(place, "storing metric points", move |st| {
        prometheus_points(&body, &target, t).and_then(|p| Ok(st.append_points(&p).map(drop)?))
    })
    .await??;
    Ok(n)
}

/// A Prometheus `/metrics` body as points of the target's series.
fn prometheus_points(
    body: &[u8],
    target: &BTreeMap<String, String>,
    t: i64,
) -> Result<Vec<(SeriesKey, i64, f64)>, ScrapeError> {
    let samples = crate::runtime::parse_prometheus(body).map_err(ScrapeError::Parse)?;
    let points: Vec<(SeriesKey, i64, f64)> = samples
        .into_iter()
        .map(|s| {
            let mut labels = target.clone();
            for (k, v) in s.labels {
                let k = if labels.contains_key(&k) || k == "__name__" {
                    format!("exported_{k}")
                } else {
                    k
                };
                labels.insert(k, v);
            }
            labels.insert("__name__".into(), s.name);
            (SeriesKey::new("metric", labels), t, s.value)
        })
        .collect();
    if points.is_empty() {
        return Err(ScrapeError::Parse(
            "/metrics has no go_* or process_* samples".into(),
        ));
    }
    Ok(points)
}

/// Fetches one profile and decodes and stores it on the pool.
async fn scrape_once(job: &Job, prev: &mut Option<Baseline>) -> Result<u64, ScrapeError> {
    let (body, place) = fetch(job, true).await?;
    let place = place.ok_or_else(|| ScrapeError::Store("no place in the pool".into()))?;
    let n = body.len() as u64;
    let t = now_ns();
    let (key, kind, last) = (job.key.clone(), job.kind.clone(), prev.take());
    let (next, res) = Pool::run(place, "storing the profile", move |s| {
        store_profile(s, &key, &kind, t, &body, last)
    })
    .await?;
    *prev = next;
    res.map(|()| n)
}

/// Decodes and stores one scraped profile. Heap profiles are stored with their allocation
/// counters as deltas (`delta::heap`); other cumulative kinds as the delta to the previous
/// scrape (the first is only the baseline); the rest as fetched. Returns the baseline to
/// diff the next scrape against (the previous one kept when this one fails to decode).
fn store_profile(
    store: &Store,
    key: &SeriesKey,
    kind: &str,
    t: i64,
    body: &[u8],
    prev: Option<Baseline>,
) -> (Option<Baseline>, Result<(), ScrapeError>) {
    if kind != "heap" && !is_cumulative(kind) {
        return (
            prev,
            store.append(key, t, body).map(drop).map_err(Into::into),
        );
    }
    let cur = match gocost_pprof::decode(body) {
        Ok(p) => p,
        Err(e) => {
            let e = ScrapeError::Parse(format!("parsing profile: {e}"));
            return (prev, Err(e));
        }
    };
    // The first scrape of a cumulative kind is only the baseline.
    let (stored, next) = if kind == "heap" {
        let (d, b) = crate::delta::heap(prev.as_ref(), cur);
        (Some(d), b)
    } else {
        let (d, b) = crate::delta::delta(prev.as_ref(), cur);
        (d.into_profile(), b)
    };
    drop(prev);
    let res = match stored {
        Some(d) => store
            .append_profile(key, t, &d, Some(body.len()))
            .map(drop)
            .map_err(Into::into),
        None => Ok(()),
    };
    (Some(next), res)
}

/// Takes one execution trace and stores it with its analyses (on a blocking thread).
async fn scrape_trace(job: &Job, store: &AsyncStore) -> Result<u64, ScrapeError> {
    let start = now_ns();
    let (body, _) = fetch(job, false).await?;
    let n = body.len() as u64;
    let labels = job.key.labels.clone();
    store
        .run("storing the trace", move |s| {
            crate::trace::store_trace(s, &labels, start, &body)
                .map(drop)
                .map_err(|e| match e {
                    crate::trace::StoreTraceError::Bad(e) => ScrapeError::Parse(e),
                    crate::trace::StoreTraceError::Store(e) => e.into(),
                })
        })
        .await??;
    Ok(n)
}

/// A fixed offset in `[0, interval)` derived from `key` (the target's URL): each target
/// keeps its own phase, so a fleet's scrapes (and traces) do not happen in lockstep.
fn jitter(key: &str, interval: Duration) -> Duration {
    let h = key.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    });
    Duration::from_millis(h % (interval.as_millis().max(1) as u64))
}

async fn run(job: Job, store: AsyncStore, health: HealthMap) {
    let interval = if job.kind == "trace" {
        job.cfg.trace.every()
    } else {
        job.cfg.interval()
    };
    tokio::time::sleep(jitter(&job.url, interval)).await;
    let mut prev: Option<Baseline> = None;
    let mut prev_gc: Option<u32> = None;
    let mut failures: u32 = 0;
    // The last attempt's error (`Some(None)`: it succeeded), for logging changes only.
    let mut last_error: Option<Option<String>> = None;
    loop {
        let start = Instant::now();
        let res = if job.kind == "expvar" {
            scrape_expvar(&job, &mut prev_gc).await
        } else if job.kind == "prometheus" {
            scrape_prometheus(&job).await
        } else if job.kind == "trace" {
            scrape_trace(&job, &store).await
        } else {
            scrape_once(&job, &mut prev).await
        };
        let took = start.elapsed();
        {
            let mut h = health.lock().unwrap_or_else(|p| p.into_inner());
            // A target that went away is no longer in the map: not added back.
            let Some(e) = h.get_mut(&job.health_key) else {
                return;
            };
            e.last_scrape_ms = now_ns() / 1_000_000;
            e.last_duration_ms = took.as_millis() as u64;
            e.scrapes_total += 1;
            match &res {
                Ok(n) => {
                    e.up = true;
                    e.last_error = None;
                    e.last_status = None;
                    e.last_bytes = *n;
                }
                Err(err) => {
                    e.up = false;
                    e.last_error = Some(err.to_string());
                    e.last_status = err.status();
                    e.failures_total += 1;
                }
            }
        }
        log_change(&job, &mut last_error, &res);
        failures = if res.is_ok() { 0 } else { failures + 1 };
        tokio::time::sleep(next_wait(interval, failures, took)).await;
    }
}

/// How long to wait before the next attempt: the interval minus what this one took (the
/// cadence is kept), doubled after each consecutive failure up to 4× the interval, and never
/// less than 100 ms.
fn next_wait(interval: Duration, failures: u32, took: Duration) -> Duration {
    let wait = (interval * (1 << failures.min(2))).saturating_sub(took);
    wait.max(Duration::from_millis(100))
}

/// Logs a target's scrape state when it changes (down with a new error, or back up), not on
/// every attempt: a target that stays down for a day logs once.
fn log_change(job: &Job, last_error: &mut Option<Option<String>>, res: &Result<u64, ScrapeError>) {
    let now = res.as_ref().err().map(ToString::to_string);
    if last_error.as_ref() == Some(&now) {
        return;
    }
    let (j, instance, kind) = (&job.cfg.job, &job.instance, &job.kind);
    match (&now, last_error.as_ref()) {
        (Some(e), _) => {
            tracing::warn!(job = %j, instance = %instance, kind = %kind, "scrape failed: {e}")
        }
        (None, Some(Some(_))) => {
            tracing::info!(job = %j, instance = %instance, kind = %kind, "scrape recovered")
        }
        (None, _) => {
            tracing::debug!(job = %j, instance = %instance, kind = %kind, "first scrape ok")
        }
    }
    *last_error = Some(now);
}

/// Tasks aborted when dropped: a target's scrape loops (one per kind).
struct Running(Vec<JoinHandle<()>>);

impl Drop for Running {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

/// A target relabelling dropped, for the API (as Prometheus' `droppedTargets`).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct DroppedTarget {
    pub job: String,
    /// Its labels before relabelling (`__address__` without credentials).
    pub discovered_labels: BTreeMap<String, String>,
}

type DroppedMap = Arc<Mutex<BTreeMap<String, Vec<DroppedTarget>>>>;

/// The most dropped targets kept per job for the API.
pub const MAX_DROPPED: usize = 10_000;

/// One job's targets: its groups per source (0: the static `targets`, then each
/// refresher), and the loops of the targets they resolve to.
struct JobRunner {
    sc: Arc<ScrapeConfig>,
    defaults: JobDefaults,
    rules: Vec<Rule>,
    shard: (u64, u64),
    store: AsyncStore,
    pool: Pool,
    health: HealthMap,
    dropped: DroppedMap,
    /// Made on first use; one for the job, whatever each kind's timeout (set per request):
    /// a client per timeout would hold a pool, so a connection, per target for each.
    client: Option<reqwest::Client>,
    groups: Vec<Vec<Group>>,
    running: BTreeMap<String, Running>,
    /// The last resolve's errors, logged when they change.
    errors: Vec<String>,
}

impl JobRunner {
    fn client(&mut self) -> Result<reqwest::Client, String> {
        if let Some(c) = &self.client {
            return Ok(c.clone());
        }
        let c = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            // One idle connection per target: a fleet of thousands of targets must not hold
            // thousands of buffers more (each of hyper's connections holds ~60 KB).
            .pool_max_idle_per_host(1)
            .danger_accept_invalid_certs(self.sc.insecure_skip_verify)
            .no_proxy()
            .build()
            .map_err(|e| format!("job {}: {e}", self.sc.job))?;
        self.client = Some(c.clone());
        Ok(c)
    }

    /// Resolves the groups into targets and starts and stops loops to match.
    fn apply(&mut self) -> Result<(), String> {
        let groups: Vec<Group> = self.groups.iter().flatten().cloned().collect();
        let (shard, shards) = self.shard;
        let r = discovery::resolve(&self.defaults, &self.rules, &groups, |addr| {
            gocost_config::shard_of(shard_address(addr), shards) == shard
        });
        if r.errors != self.errors {
            for e in &r.errors {
                tracing::warn!(job = %self.sc.job, "target skipped: {e}");
            }
            self.errors = r.errors.clone();
        }
        let (stop, start) = discovery::plan(self.running.keys(), &r.active);
        let job = self.sc.job.clone();
        for key in stop {
            self.running.remove(&key);
            let mut h = self.health.lock().unwrap_or_else(|p| p.into_inner());
            let gone: Vec<_> = h
                .keys()
                .filter(|(j, k, _)| *j == job && *k == key)
                .cloned()
                .collect();
            for g in gone {
                if let Some(e) = h.remove(&g) {
                    tracing::info!(job = %job, instance = %e.instance, kind = %e.kind, "target gone: scraping stopped");
                }
            }
        }
        {
            // Targets kept: their discovered labels may have changed (another file, record).
            let mut h = self.health.lock().unwrap_or_else(|p| p.into_inner());
            for t in &r.active {
                let key = t.key();
                if !self.running.contains_key(&key) {
                    continue;
                }
                let shown = discovery::redact_labels(&t.discovered);
                for ((j, k, _), e) in h.range_mut((job.clone(), key.clone(), String::new())..) {
                    if *j != job || *k != key {
                        break;
                    }
                    if e.discovered_labels != shown {
                        e.discovered_labels = shown.clone();
                    }
                }
            }
        }
        for t in start {
            let key = t.key();
            let tasks = self.spawn_target(t, &key)?;
            self.running.insert(key, Running(tasks));
        }
        let mut dropped: Vec<DroppedTarget> = r
            .dropped
            .iter()
            .take(MAX_DROPPED)
            .map(|l| DroppedTarget {
                job: job.clone(),
                discovered_labels: discovery::redact_labels(l),
            })
            .collect();
        dropped.shrink_to_fit();
        self.dropped
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(job, dropped);
        Ok(())
    }

    /// Starts one loop per kind of a target.
    fn spawn_target(&mut self, t: &Target, key: &str) -> Result<Vec<JoinHandle<()>>, String> {
        let sc = self.sc.clone();
        let mut tasks = Vec::new();
        let address = &t.address;
        let scheme = &t.scheme;
        let instance = t
            .labels
            .get("instance")
            .cloned()
            .unwrap_or_else(|| gocost_config::redact_url(address));
        for kind in sc.profiles().into_iter().chain(sc.metrics.iter().cloned()) {
            let cpu = kind == "cpu";
            let timeout = sc.timeout()
                + match kind.as_str() {
                    "cpu" => sc.cpu_window(),
                    "trace" => Duration::from_secs(sc.trace.seconds()),
                    _ => Duration::ZERO,
                };
            let client = self.client()?;
            let mut url = if kind == "expvar" {
                format!("{scheme}://{address}{}", sc.expvar_path())
            } else if kind == "prometheus" {
                format!("{scheme}://{address}{}", sc.metrics_path())
            } else {
                format!(
                    "{scheme}://{address}{}/{}",
                    t.path_prefix.trim_end_matches('/'),
                    endpoint(&kind)
                )
            };
            // gocost's own `seconds` (the CPU window, the trace's length: the timeout is
            // made for them) before the target's `__param_*`, which may not replace it.
            let own = if cpu {
                Some(sc.cpu_window().as_secs().max(1))
            } else if kind == "trace" {
                Some(sc.trace.seconds())
            } else {
                None
            };
            let mut query = reqwest::Url::parse("http://q/").map_err(|e| e.to_string())?;
            {
                let mut q = query.query_pairs_mut();
                if let Some(s) = own {
                    q.append_pair("seconds", &s.to_string());
                }
                for (n, v) in &t.params {
                    if !(own.is_some() && n == "seconds") {
                        q.append_pair(n, v);
                    }
                }
            }
            if let Some(q) = query.query().filter(|q| !q.is_empty()) {
                url.push('?');
                url.push_str(q);
            }
            // A target may carry credentials (`user:pw@host:port`, sent as basic auth): the
            // instance label and the health answer never show them.
            let job = Job {
                cfg: sc.clone(),
                instance: instance.clone(),
                kind: kind.clone(),
                key: SeriesKey::new(&kind, t.labels.clone()),
                url: url.clone(),
                client,
                timeout,
                health_key: (sc.job.clone(), key.to_string(), kind.clone()),
                pool: self.pool.clone(),
            };
            self.health
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(
                    job.health_key.clone(),
                    Health {
                        job: sc.job.clone(),
                        instance: instance.clone(),
                        kind,
                        url: gocost_config::redact_url(&url),
                        labels: t.labels.clone(),
                        discovered_labels: discovery::redact_labels(&t.discovered),
                        ..Default::default()
                    },
                );
            tasks.push(tokio::spawn(run(
                job,
                self.store.clone(),
                self.health.clone(),
            )));
        }
        Ok(tasks)
    }
}

/// Applies the refreshers' updates as they come; holds the job's loops until aborted.
async fn run_job(
    mut runner: JobRunner,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<(usize, Vec<Group>)>,
) {
    while let Some((i, groups)) = rx.recv().await {
        if let Some(slot) = runner.groups.get_mut(i) {
            *slot = groups;
        }
        if let Err(e) = runner.apply() {
            tracing::error!(job = %runner.sc.job, "starting targets: {e}");
        }
    }
    // No refreshers (static targets only): keep the loops until the scraper stops.
    std::future::pending::<()>().await;
}

impl Scraper {
    /// Starts scraping every target of `cfg` into `store` (on the current tokio runtime):
    /// the static targets at once, discovered ones as their refreshers find them; in a
    /// `[cluster]`, only this instance's shard of the targets ([`gocost_config::shard_of`]
    /// of the final `__address__`), none for a query-only instance.
    pub fn start(cfg: &Config, store: impl Into<AsyncStore>) -> Result<Scraper, String> {
        let store: AsyncStore = store.into();
        let health: HealthMap = Arc::default();
        let dropped: DroppedMap = Arc::default();
        let mut tasks = Vec::new();
        // `[cluster]`: a query-only instance scrapes nothing; a shard keeps its targets.
        let (shard, shards, query_only) = match &cfg.cluster {
            Some(c) => {
                let (i, n) = c.shard()?;
                (i, n, c.role()? == gocost_config::Role::Query)
            }
            None => (0, 1, false),
        };
        // One pool for every job (docs/adr/0025); its threads end with the loops.
        let pool = (!query_only && !cfg.scrape.is_empty()).then(|| {
            Pool::start(
                &store,
                cfg.storage
                    .scrape_workers
                    .unwrap_or_else(crate::pool::default_workers),
            )
        });
        for sc in cfg.scrape.iter().filter(|_| !query_only) {
            let Some(pool) = pool.clone() else { break };
            let rules =
                discovery::compile(&sc.relabel).map_err(|e| format!("job {}: {e}", sc.job))?;
            let mut groups = vec![Vec::new(); 1 + discovery::refresh::count(sc)];
            groups[0] = vec![discovery::static_group(sc)];
            let mut runner = JobRunner {
                sc: Arc::new(sc.clone()),
                defaults: JobDefaults::of(sc),
                rules,
                shard: (shard, shards),
                store: store.clone(),
                pool,
                health: health.clone(),
                dropped: dropped.clone(),
                client: None,
                groups,
                running: BTreeMap::new(),
                errors: Vec::new(),
            };
            runner.apply()?;
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            if sc.discovers() {
                let client = reqwest::Client::builder()
                    .connect_timeout(Duration::from_secs(5))
                    .danger_accept_invalid_certs(sc.insecure_skip_verify)
                    .no_proxy()
                    .build()
                    .map_err(|e| format!("job {}: {e}", sc.job))?;
                tasks.extend(discovery::refresh::spawn(sc, &client, &tx, 1));
            }
            drop(tx);
            tasks.push(tokio::spawn(run_job(runner, rx)));
        }
        Ok(Scraper {
            tasks,
            health,
            dropped,
        })
    }

    /// Health of every (target, kind).
    pub fn health(&self) -> Vec<Health> {
        self.health
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// The targets relabelling dropped, per job.
    pub fn dropped(&self) -> Vec<DroppedTarget> {
        self.dropped
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .flatten()
            .cloned()
            .collect()
    }

    /// Stops all loops (e.g. before a config reload).
    pub fn stop(&self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Drop for Scraper {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The part of a target that decides its shard: `host:port`, without credentials
/// (`user:pw@host:port`), as Prometheus' `__address__` holds it.
pub fn shard_address(target: &str) -> &str {
    target.rsplit_once('@').map_or(target, |(_, a)| a)
}

#[cfg(test)]
mod tests {
    use super::*;
    use gocost_config::Config;
    use std::io::{Read, Write};
    use std::path::{Path, PathBuf};

    fn profile(name: &str) -> Vec<u8> {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../testdata/profiles")
            .join(name);
        std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    fn store(name: &str) -> (Arc<Store>, PathBuf) {
        let dir =
            std::env::temp_dir().join(format!("gocost-scraper-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (s, _) = Store::open(gocost_store::Options::new(&dir)).expect("open store");
        (Arc::new(s), dir)
    }

    /// A loopback target: the `i`th connection is answered with `respond(i)` (a whole HTTP
    /// response), or held open without an answer when it returns `None`. Serves at most 20
    /// connections; returns `host:port`.
    fn target(respond: impl Fn(usize) -> Option<Vec<u8>> + Send + 'static) -> String {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = l.local_addr().expect("addr").to_string();
        std::thread::spawn(move || {
            for (i, conn) in l.incoming().take(20).enumerate() {
                let Ok(mut c) = conn else { return };
                let mut buf = [0u8; 4096];
                let _ = c.read(&mut buf);
                match respond(i) {
                    Some(r) => {
                        let _ = c.write_all(&r);
                    }
                    None => std::thread::sleep(Duration::from_secs(3)),
                }
            }
        });
        addr
    }

    fn ok(body: &[u8]) -> Vec<u8> {
        let mut r = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .into_bytes();
        r.extend_from_slice(body);
        r
    }

    fn config(addr: &str, profiles: &str) -> Config {
        let text = format!(
            "[[scrape]]\njob = \"t\"\ntargets = [\"{addr}\"]\ninterval = \"1s\"\nprofiles = [{profiles}]\n"
        );
        Config::parse(&text, Path::new("test.toml")).expect("config")
    }

    /// A runtime for the scrape loops. The test's own thread is not one of its workers, so
    /// it may call the store directly (store calls must come from blocking threads).
    fn runtime() -> tokio::runtime::Runtime {
        // TLS for reqwest, as `gocost serve` installs it.
        let _ = rustls::crypto::ring::default_provider().install_default();
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime")
    }

    /// Starts scraping `cfg` into `store` on `rt`.
    fn start(rt: &tokio::runtime::Runtime, cfg: &Config, store: &Arc<Store>) -> Scraper {
        let _in = rt.enter();
        Scraper::start(cfg, store.clone()).expect("start")
    }

    /// Waits until `done(health)` (at most 10 s); returns the health of the one target.
    fn wait_for(s: &Scraper, done: impl Fn(&Health) -> bool) -> Health {
        let t0 = Instant::now();
        loop {
            let h = s.health().pop().expect("one target");
            if done(&h) {
                return h;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "no such state within 10 s: {h:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn a_shard_scrapes_its_targets_and_a_query_instance_none() {
        let targets: Vec<String> = (1..=12).map(|p| format!("127.0.0.1:{p}")).collect();
        let list: Vec<String> = targets.iter().map(|t| format!("\"{t}\"")).collect();
        let cfg = |cluster: &str| {
            let text = format!(
                "[[scrape]]\njob = \"t\"\ntargets = [{}]\ninterval = \"1h\"\nprofiles = [\"heap\"]\n[cluster]\n{cluster}\n",
                list.join(", ")
            );
            Config::parse(&text, Path::new("test.toml")).expect("config")
        };
        let rt = runtime();
        let (store, dir) = store("shard");
        let mut seen = 0;
        for i in 0..3 {
            let s = start(&rt, &cfg(&format!("shard = \"{i}/3\"")), &store);
            let mut got: Vec<String> = s.health().into_iter().map(|h| h.instance).collect();
            got.sort();
            let mut want: Vec<String> = targets
                .iter()
                .filter(|t| gocost_config::shard_of(t, 3) == i)
                .cloned()
                .collect();
            want.sort();
            assert_eq!(got, want, "shard {i}/3");
            seen += got.len();
            s.stop();
        }
        assert_eq!(seen, targets.len(), "every target in exactly one shard");
        let s = start(&rt, &cfg("role = \"query\""), &store);
        assert!(s.health().is_empty());
        assert_eq!(shard_address("user:pw@10.0.0.7:8080"), "10.0.0.7:8080");
        drop(rt);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn param_labels_are_sent_as_url_parameters() {
        let (store, _dir) = store("params");
        let text = "[[scrape]]\njob = \"t\"\ntargets = [\"127.0.0.1:9\"]\ninterval = \"1h\"\nprofiles = [\"heap\", \"cpu\"]\n\
             [[scrape.relabel]]\ntarget_label = \"__param_gc\"\nreplacement = \"1\"\n\
             [[scrape.relabel]]\ntarget_label = \"__param_seconds\"\nreplacement = \"99 9\"\n";
        let cfg = Config::parse(text, Path::new("test.toml")).expect("config");
        let rt = runtime();
        let s = start(&rt, &cfg, &store);
        let mut urls: Vec<String> = s.health().into_iter().map(|h| h.url).collect();
        urls.sort();
        // The CPU window stays gocost's; a value is URL-encoded.
        assert_eq!(
            urls,
            [
                "http://127.0.0.1:9/debug/pprof/heap?gc=1&seconds=99+9",
                "http://127.0.0.1:9/debug/pprof/profile?seconds=10&gc=1",
            ],
        );
    }

    #[test]
    fn file_sd_targets_start_and_stop_and_relabelling_drops_some() {
        let (store, dir) = store("sd");
        let sd = dir.join("sd");
        std::fs::create_dir_all(&sd).expect("sd dir");
        let file = sd.join("t.json");
        let write = |targets: &[&str]| {
            let list: Vec<String> = targets.iter().map(|t| format!("\"{t}\"")).collect();
            let tmp = sd.join("t.tmp");
            std::fs::write(&tmp, format!("[{{\"targets\": [{}]}}]", list.join(",")))
                .expect("write");
            std::fs::rename(&tmp, &file).expect("rename");
        };
        write(&["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"]);
        let text = format!(
            "[[scrape]]\njob = \"t\"\ntargets = [\"127.0.0.1:9\"]\ninterval = \"1h\"\nprofiles = [\"heap\"]\n\
             [[scrape.file_sd]]\nfiles = [\"{}/*.json\"]\n\
             [[scrape.relabel]]\nsource_labels = [\"__address__\"]\nregex = \".*:3\"\naction = \"drop\"\n",
            sd.display()
        );
        let cfg = Config::parse(&text, Path::new("test.toml")).expect("config");
        let rt = runtime();
        let s = start(&rt, &cfg, &store);
        let instances = |s: &Scraper| {
            let mut v: Vec<String> = s.health().into_iter().map(|h| h.instance).collect();
            v.sort();
            v
        };
        // The static target at once; the file's within a poll.
        assert!(instances(&s).contains(&"127.0.0.1:9".to_string()));
        let t0 = Instant::now();
        while instances(&s) != ["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:9"] {
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "{:?}",
                instances(&s)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let dropped = s.dropped();
        assert_eq!(dropped.len(), 1);
        assert_eq!(dropped[0].discovered_labels["__address__"], "127.0.0.1:3");
        let h = s
            .health()
            .into_iter()
            .find(|h| h.instance == "127.0.0.1:1")
            .expect("1");
        assert_eq!(
            h.discovered_labels["__meta_filepath"],
            file.display().to_string()
        );
        // One goes, one comes; the static target stays.
        write(&["127.0.0.1:2", "127.0.0.1:4"]);
        let t0 = Instant::now();
        while instances(&s) != ["127.0.0.1:2", "127.0.0.1:4", "127.0.0.1:9"] {
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "{:?}",
                instances(&s)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(s.dropped().is_empty());
        s.stop();
        drop(rt);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn back_off_doubles_up_to_four_intervals_and_keeps_the_cadence() {
        let i = Duration::from_secs(10);
        let took = Duration::from_secs(3);
        assert_eq!(next_wait(i, 0, took), Duration::from_secs(7));
        assert_eq!(next_wait(i, 1, took), Duration::from_secs(17));
        assert_eq!(next_wait(i, 2, took), Duration::from_secs(37));
        assert_eq!(next_wait(i, 9, took), Duration::from_secs(37));
        // A scrape that took longer than the interval waits the minimum, not zero.
        assert_eq!(
            next_wait(i, 0, Duration::from_secs(60)),
            Duration::from_millis(100)
        );
    }

    #[test]
    fn a_hanging_target_times_out_naming_the_limit() {
        let addr = target(|_| None);
        let mut cfg = config(&addr, "\"goroutine\"");
        cfg.scrape[0].timeout = Some(Duration::from_millis(300));
        let (store, dir) = store("hang");
        let rt = runtime();
        let s = start(&rt, &cfg, &store);
        let h = wait_for(&s, |h| h.failures_total > 0);
        let e = h.last_error.clone().unwrap_or_default();
        assert!(
            !h.up
                && e.contains("timeout")
                && e.contains("300ms")
                && e.contains("the job's timeout"),
            "{e}"
        );
        assert!(h.last_duration_ms < 2_000, "the deadline held: {h:?}");
        assert_eq!(store.stats().profiles, 0);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn cumulative_kinds_store_deltas_from_the_second_scrape() {
        let allocs = profile("allocs.pb.gz");
        let addr = target(move |_| Some(ok(&allocs)));
        let mut cfg = config(&addr, "\"allocs\"");
        cfg.scrape[0].interval = Some(Duration::from_secs(3));
        let (store, dir) = store("delta");
        let rt = runtime();
        let s = start(&rt, &cfg, &store);
        // The first scrape is the baseline: nothing stored (the next is 3 s away).
        let h = wait_for(&s, |h| h.scrapes_total >= 1);
        assert!(h.up, "{h:?}");
        assert_eq!(
            store.stats().profiles,
            0,
            "the first scrape is only the baseline"
        );
        let h = wait_for(&s, |h| h.scrapes_total >= 2);
        assert!(h.up, "{h:?}");
        assert_eq!(
            store.stats().profiles,
            1,
            "the second scrape stores the delta"
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn heap_is_stored_from_the_first_scrape() {
        let heap = profile("heap.pb.gz");
        let addr = target(move |_| Some(ok(&heap)));
        let (store, dir) = store("heap");
        let rt = runtime();
        let s = start(&rt, &config(&addr, "\"heap\""), &store);
        let h = wait_for(&s, |h| h.scrapes_total >= 1);
        assert!(h.up, "{h:?}");
        assert_eq!(store.stats().profiles, 1);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn bad_answers_are_errors_with_their_cause() {
        let allocs = profile("allocs.pb.gz");
        let addr = target(move |i| {
            Some(match i {
                0 => ok(b"not a profile"),
                1 => b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\nConnection: close\r\n\r\noops".to_vec(),
                _ => ok(&allocs),
            })
        });
        let (store, dir) = store("bad");
        let cfg = config(&addr, "\"allocs\"");
        let rt = runtime();
        let s = start(&rt, &cfg, &store);
        let mut errors = Vec::new();
        let mut statuses = Vec::new();
        let t0 = Instant::now();
        while errors.len() < 2 {
            let h = s.health().pop().expect("one target");
            if let Some(e) = h.last_error
                && errors.last() != Some(&e)
            {
                errors.push(e);
                statuses.push(h.last_status);
            }
            assert!(
                t0.elapsed() < Duration::from_secs(15),
                "errors seen: {errors:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(errors[0].starts_with("parsing profile"), "{errors:?}");
        assert!(
            errors[1].starts_with("HTTP 500") && errors[1].ends_with("oops"),
            "{errors:?}"
        );
        // The status is data too (the UI's hints key on a 404), only when there is one.
        assert_eq!(statuses, [None, Some(500)]);
        assert_eq!(store.stats().profiles, 0);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn oversized_responses_are_refused_naming_the_setting() {
        let addr = target(|_| Some(ok(&[b'x'; 4096])));
        let mut cfg = config(&addr, "\"goroutine\"");
        cfg.scrape[0].max_body = Some(1024);
        let (store, dir) = store("big");
        let rt = runtime();
        let s = start(&rt, &cfg, &store);
        let h = wait_for(&s, |h| h.failures_total > 0);
        let e = h.last_error.unwrap_or_default();
        assert!(e.contains("4096 bytes exceeds max_body (1024)"), "{e}");
        assert_eq!(store.stats().profiles, 0);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn credentials_in_a_target_are_never_shown() {
        let cfg = config("user:s3cret@127.0.0.1:9", "\"heap\"");
        let (store, dir) = store("cred");
        let rt = runtime();
        // The first scrape fails (nothing listens there); its health shows no credentials.
        let h = wait_for(&start(&rt, &cfg, &store), |h| h.scrapes_total > 0);
        assert_eq!(h.instance, "127.0.0.1:9");
        assert_eq!(h.url, "http://127.0.0.1:9/debug/pprof/heap");
        let shown = format!("{h:?}");
        assert!(
            !shown.contains("s3cret") && !shown.contains("user"),
            "{shown}"
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
