//! The scraper: one task per target and profile kind, each isolated (its own timeouts,
//! response cap and backoff), so a slow or broken target never delays healthy ones.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use gocost_pprof::Profile;
use gocost_store::{SeriesKey, Store};
use tokio::task::JoinHandle;

use crate::config::{Config, ScrapeConfig};
use crate::delta::{Delta, delta};

/// The health of one target's profile kind, for the API and `/metrics`.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Health {
    pub job: String,
    pub instance: String,
    pub kind: String,
    pub url: String,
    pub up: bool,
    pub last_error: Option<String>,
    /// Unix milliseconds of the last attempt.
    pub last_scrape_ms: i64,
    pub last_duration_ms: u64,
    pub last_bytes: u64,
    pub scrapes_total: u64,
    pub failures_total: u64,
}

type HealthMap = Arc<Mutex<BTreeMap<(String, String, String), Health>>>;

/// Running scrape loops.
pub struct Scraper {
    tasks: Vec<JoinHandle<()>>,
    health: HealthMap,
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
    client: reqwest::Client,
}

/// A fetch error as a health message: timeouts say so (a hanging or dripping target), with
/// the limit and the setting it comes from; other errors with their cause.
fn fetch_error(job: &Job, e: reqwest::Error) -> String {
    let mut cause = String::new();
    let mut src = std::error::Error::source(&e);
    while let Some(s) = src {
        cause = format!(": {s}");
        src = s.source();
    }
    if e.is_timeout() {
        let cpu = job.kind == "cpu";
        let limit = job.cfg.timeout()
            + if cpu {
                job.cfg.cpu_window()
            } else {
                std::time::Duration::ZERO
            };
        format!(
            "timeout: no complete response within {limit:?} (the job's timeout{}): {e}",
            if cpu { " plus its cpu_window" } else { "" }
        )
    } else {
        format!("{e}{cause}")
    }
}

async fn fetch(job: &Job) -> Result<Vec<u8>, String> {
    let mut req = job.client.get(&job.url);
    if let Some(t) = &job.cfg.bearer_token {
        req = req.bearer_auth(t);
    }
    for (k, v) in &job.cfg.headers {
        req = req.header(k, v);
    }
    let mut resp = req.send().await.map_err(|e| fetch_error(job, e))?;
    let status = resp.status();
    let cap = job.cfg.max_body();
    if let Some(len) = resp.content_length()
        && len > cap
    {
        return Err(format!("response of {len} bytes exceeds max_body ({cap})"));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| fetch_error(job, e))? {
        if body.len() as u64 + chunk.len() as u64 > cap {
            return Err(format!("response exceeds max_body ({cap} bytes)"));
        }
        body.extend_from_slice(&chunk);
    }
    if !status.is_success() {
        let text = String::from_utf8_lossy(&body[..body.len().min(200)])
            .trim()
            .to_string();
        return Err(format!("HTTP {status}: {text}"));
    }
    Ok(body)
}

/// Fetches once and stores what the kind calls for; returns bytes fetched.
/// Scrapes `/debug/vars` into runtime-metric points; `prev_gc` tracks the GC count so that
/// each GC pause is stored once.
async fn scrape_expvar(job: &Job, store: &Store, prev_gc: &mut Option<u32>) -> Result<u64, String> {
    let body = fetch(job).await?;
    let t = now_ns();
    let e = crate::runtime::parse_expvar(&body, *prev_gc)?;
    let key = |name: &str| {
        let mut labels = job.key.labels.clone();
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
    store.append_points(&points).map_err(|e| e.to_string())?;
    *prev_gc = Some(e.num_gc);
    Ok(body.len() as u64)
}

/// Scrapes a Prometheus `/metrics` into runtime-metric points (`go_*`, `process_*`). A
/// metric label that collides with a target label is kept as `exported_<name>`, as
/// Prometheus does.
async fn scrape_prometheus(job: &Job, store: &Store) -> Result<u64, String> {
    let body = fetch(job).await?;
    let t = now_ns();
    let samples = crate::runtime::parse_prometheus(&body)?;
    let points: Vec<(SeriesKey, i64, f64)> = samples
        .into_iter()
        .map(|s| {
            let mut labels = job.key.labels.clone();
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
        return Err("/metrics has no go_* or process_* samples".into());
    }
    store.append_points(&points).map_err(|e| e.to_string())?;
    Ok(body.len() as u64)
}

async fn scrape_once(job: &Job, store: &Store, prev: &mut Option<Profile>) -> Result<u64, String> {
    let body = fetch(job).await?;
    let n = body.len() as u64;
    let t = now_ns();
    if job.kind == "heap" {
        let cur = gocost_pprof::decode(&body).map_err(|e| format!("parsing profile: {e}"))?;
        let stored = crate::delta::heap(prev.as_ref(), &cur).map_err(|e| e.to_string())?;
        store
            .append_profile(&job.key, t, &stored)
            .map_err(|e| e.to_string())?;
        *prev = Some(cur);
        return Ok(n);
    }
    if !is_cumulative(&job.kind) {
        store
            .append(&job.key, t, &body)
            .map_err(|e| e.to_string())?;
        return Ok(n);
    }
    let cur = gocost_pprof::decode(&body).map_err(|e| format!("parsing profile: {e}"))?;
    let stored = match prev.as_ref() {
        None => None, // the first scrape is the baseline
        Some(p) => Some(match delta(p, &cur).map_err(|e| e.to_string())? {
            Delta::Diff(d) | Delta::Restarted(d) => d,
        }),
    };
    if let Some(d) = stored {
        store
            .append_profile(&job.key, t, &d)
            .map_err(|e| e.to_string())?;
    }
    *prev = Some(cur);
    Ok(n)
}

fn jitter(key: &str, interval: Duration) -> Duration {
    let h = key.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    });
    Duration::from_millis(h % (interval.as_millis().max(1) as u64))
}

async fn run(job: Job, store: Arc<Store>, health: HealthMap) {
    let interval = job.cfg.interval();
    tokio::time::sleep(jitter(&job.url, interval)).await;
    let mut prev: Option<Profile> = None;
    let mut prev_gc: Option<u32> = None;
    let mut failures: u32 = 0;
    loop {
        let start = Instant::now();
        let res = if job.kind == "expvar" {
            scrape_expvar(&job, &store, &mut prev_gc).await
        } else if job.kind == "prometheus" {
            scrape_prometheus(&job, &store).await
        } else {
            scrape_once(&job, &store, &mut prev).await
        };
        let took = start.elapsed();
        {
            let mut h = health.lock().unwrap_or_else(|p| p.into_inner());
            let e = h
                .entry((job.cfg.job.clone(), job.instance.clone(), job.kind.clone()))
                .or_default();
            e.last_scrape_ms = now_ns() / 1_000_000;
            e.last_duration_ms = took.as_millis() as u64;
            e.scrapes_total += 1;
            match &res {
                Ok(n) => {
                    e.up = true;
                    e.last_error = None;
                    e.last_bytes = *n;
                }
                Err(err) => {
                    e.up = false;
                    e.last_error = Some(err.clone());
                    e.failures_total += 1;
                }
            }
        }
        failures = if res.is_ok() {
            0
        } else {
            (failures + 1).min(2)
        };
        // Back off on failures (up to 4× the interval); keep the cadence otherwise.
        let wait = (interval * (1 << failures)).saturating_sub(took);
        tokio::time::sleep(wait.max(Duration::from_millis(100))).await;
    }
}

impl Scraper {
    /// Starts scraping every target of `cfg` into `store` (on the current tokio runtime).
    pub fn start(cfg: &Config, store: Arc<Store>) -> Result<Scraper, String> {
        let health: HealthMap = Arc::default();
        let mut tasks = Vec::new();
        let mut clients: HashMap<(bool, u64), reqwest::Client> = HashMap::new();
        for sc in &cfg.scrape {
            let shared = Arc::new(sc.clone());
            for target in &sc.targets {
                for kind in sc.profiles().into_iter().chain(sc.metrics.iter().cloned()) {
                    let cpu = kind == "cpu";
                    let timeout = sc.timeout() + if cpu { sc.cpu_window() } else { Duration::ZERO };
                    let key = (sc.insecure_skip_verify, timeout.as_millis() as u64);
                    let client = match clients.get(&key) {
                        Some(c) => c.clone(),
                        None => {
                            let c = reqwest::Client::builder()
                                .timeout(timeout)
                                .connect_timeout(Duration::from_secs(5))
                                // One idle connection per target and client: a fleet of
                                // hundreds of targets must not hold thousands of buffers.
                                .pool_max_idle_per_host(1)
                                .danger_accept_invalid_certs(sc.insecure_skip_verify)
                                .no_proxy()
                                .build()
                                .map_err(|e| format!("job {}: {e}", sc.job))?;
                            clients.insert(key, c.clone());
                            c
                        }
                    };
                    let scheme = sc.scheme.as_deref().unwrap_or("http");
                    let mut url = if kind == "expvar" {
                        format!("{scheme}://{target}{}", sc.expvar_path())
                    } else if kind == "prometheus" {
                        format!("{scheme}://{target}{}", sc.metrics_path())
                    } else {
                        format!(
                            "{scheme}://{target}{}/{}",
                            sc.path_prefix().trim_end_matches('/'),
                            endpoint(&kind)
                        )
                    };
                    if cpu {
                        url.push_str(&format!("?seconds={}", sc.cpu_window().as_secs().max(1)));
                    }
                    let mut labels: BTreeMap<String, String> = sc.labels.clone();
                    labels.insert("job".into(), sc.job.clone());
                    labels.insert("instance".into(), target.clone());
                    let job = Job {
                        cfg: shared.clone(),
                        instance: target.clone(),
                        kind: kind.clone(),
                        key: SeriesKey::new(&kind, labels),
                        url: url.clone(),
                        client,
                    };
                    health.lock().unwrap_or_else(|p| p.into_inner()).insert(
                        (sc.job.clone(), target.clone(), kind.clone()),
                        Health {
                            job: sc.job.clone(),
                            instance: target.clone(),
                            kind,
                            url,
                            ..Default::default()
                        },
                    );
                    tasks.push(tokio::spawn(run(job, store.clone(), health.clone())));
                }
            }
        }
        Ok(Scraper { tasks, health })
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
