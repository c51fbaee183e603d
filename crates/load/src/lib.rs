//! # gocost-load
//!
//! The load side of `gocost load`: sends HTTP/1.1 or HTTP/2 requests to one service and
//! measures what it answers, second by second.
//!
//! - **Open model** (a rate): request `i` is due at a fixed time ([`schedule::Rate`]) whether
//!   or not earlier ones were answered, and its latency counts from when it was due. A server
//!   that stalls for a second cannot hide the stall by slowing the generator down (the
//!   "coordinated omission" wrk2 corrects). A request sent more than 1 ms after it was due is
//!   counted as late: the generator (its connections) could not keep up.
//! - **Closed model** (a concurrency): N clients each send the next request when the previous
//!   one is answered; latency counts from the send. For peak-throughput runs.
//!
//! Latencies go into per-second HDR histograms ([`stats`]), merged from the workers once a
//! second, so memory does not grow with the number of requests.

pub mod requests;
pub mod schedule;
pub mod stats;
pub mod tls;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use serde::Serialize;
use tokio::net::TcpStream;
use tokio::sync::Mutex;
use tokio::time::Instant;

pub use hyper::Method;
pub use schedule::Rate;
use stats::{Percentiles, Second, Tally};

/// Seconds as the text reports print a latency: `1.234s`, else `21.02ms`.
pub fn ms(s: f64) -> String {
    if s >= 1.0 {
        format!("{s:.3}s")
    } else {
        format!("{:.2}ms", s * 1e3)
    }
}

/// Time from [`run`]'s call to the first request's due time (the workers' start).
pub const START_DELAY: Duration = Duration::from_millis(20);

/// How load is offered.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Model {
    /// Requests at a rate, latency from the due time.
    Open(Rate),
    /// N clients back to back, latency from the send.
    Closed { concurrency: usize },
}

/// A run's settings.
#[derive(Debug, Clone)]
pub struct Config {
    pub target: Target,
    pub headers: Vec<(String, String)>,
    /// The requests to send, rotated (request `i` is `i mod n`): one, or a `--requests` file.
    pub requests: Vec<requests::Spec>,
    pub model: Model,
    /// Measured time, after the warm-up.
    pub duration: Duration,
    /// Load before measuring (not in the results).
    pub warmup: Duration,
    /// Open model: connections (each carries one request at a time).
    pub connections: usize,
    pub keepalive: bool,
    /// HTTP/2 (h2c with prior knowledge on `http://`, ALPN `h2` on `https://`), `streams`
    /// requests at a time on each of the connections; `None`: HTTP/1.1.
    pub http2: Option<Http2>,
    pub timeout: Duration,
    /// For an `https://` target: how its certificate is checked ([`tls::client_config`]).
    pub tls: Option<Arc<tls::ClientConfig>>,
}

/// HTTP/2 settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Http2 {
    /// Requests in flight at once on one connection (its concurrent streams).
    pub streams: usize,
}

/// An `http://host:port/path?query` target.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub host: String,
    pub port: u16,
    /// Path and query, `/` at least.
    pub path: String,
    /// `https://`: TLS (HTTP/1.1 over it), verified by [`Config::tls`].
    pub tls: bool,
}

impl Target {
    pub fn parse(url: &str) -> Result<Target, String> {
        let (tls, rest) = match (url.strip_prefix("https://"), url.strip_prefix("http://")) {
            (Some(r), _) => (true, r),
            (None, Some(r)) => (false, r),
            _ => return Err(format!("{url}: not an http:// or https:// URL")),
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => (
                h,
                p.parse::<u16>()
                    .map_err(|_| format!("{url}: bad port {p:?}"))?,
            ),
            _ => (authority, if tls { 443 } else { 80 }),
        };
        if host.is_empty() {
            return Err(format!("{url}: no host"));
        }
        Ok(Target {
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            port,
            path: path.to_string(),
            tls,
        })
    }

    fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// What a run measured, second by second and in total.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub url: String,
    /// `open` or `closed`.
    pub model: &'static str,
    /// Open model: the offered rate (the final one of a ramp).
    pub rate: Option<f64>,
    pub concurrency: Option<usize>,
    pub connections: usize,
    /// `HTTP/1.1` or `HTTP/2`.
    pub protocol: &'static str,
    /// HTTP/2: requests in flight on each connection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub streams: Option<usize>,
    pub duration_seconds: f64,
    pub warmup_seconds: f64,
    /// Wall-clock time (Unix nanoseconds) at which the measured seconds begin: second `t`
    /// of `seconds` starts `t` seconds after it.
    pub measured_from_unix_ns: i64,
    pub requests: u64,
    pub errors: u64,
    /// Requests a connection could take up only more than 1 ms after they were due (open
    /// model): the generator's connections could not keep up with the rate.
    pub late: u64,
    /// Answered requests per second over the measured time.
    pub throughput: f64,
    pub latency: Percentiles,
    pub statuses: std::collections::BTreeMap<u16, u64>,
    pub error_kinds: std::collections::BTreeMap<String, u64>,
    pub seconds: Vec<SecondReport>,
    /// The whole run's latency histogram: `[upper bound in seconds, count]` per bucket.
    pub histogram: Vec<(f64, u64)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SecondReport {
    /// Seconds since the end of the warm-up.
    pub t: u64,
    pub requests: u64,
    pub errors: u64,
    pub late: u64,
    pub latency: Percentiles,
}

/// Live numbers for a progress line.
#[derive(Debug, Clone, Copy, Default)]
pub struct Progress {
    pub elapsed: f64,
    pub total: f64,
    pub requests: u64,
    pub errors: u64,
    pub p99_so_far: f64,
}

/// A request as sent, built once per run (an URI parsed and headers checked once, not per
/// request); errors are what each request using it fails with.
struct Prepared {
    requests: Vec<PreparedRequest>,
    headers: Result<hyper::HeaderMap, String>,
}

struct PreparedRequest {
    method: Method,
    uri: Result<hyper::Uri, String>,
    body: Bytes,
}

impl Prepared {
    fn new(cfg: &Config) -> Prepared {
        let authority = cfg.target.authority();
        let requests = cfg
            .requests
            .iter()
            .map(|spec| PreparedRequest {
                method: spec.method.clone(),
                // HTTP/2 carries the authority in the URI (:authority); HTTP/1.1 in Host.
                uri: if cfg.http2.is_some() {
                    let scheme = if cfg.target.tls { "https" } else { "http" };
                    format!("{scheme}://{authority}{}", spec.path).parse()
                } else {
                    spec.path.parse()
                }
                .map_err(|e| format!("request: {e}")),
                body: spec.body.clone(),
            })
            .collect();
        let headers = (|| {
            let mut h = hyper::HeaderMap::new();
            let value = |v: &str| {
                hyper::header::HeaderValue::from_str(v).map_err(|e| format!("request: {e}"))
            };
            if cfg.http2.is_none() {
                h.insert(hyper::header::HOST, value(&authority)?);
                if !cfg.keepalive {
                    h.insert(hyper::header::CONNECTION, value("close")?);
                }
            }
            for (k, v) in &cfg.headers {
                let name = hyper::header::HeaderName::from_bytes(k.as_bytes())
                    .map_err(|e| format!("request: {e}"))?;
                h.append(name, value(v)?);
            }
            Ok(h)
        })();
        Prepared { requests, headers }
    }
}

struct Shared {
    cfg: Config,
    prepared: Prepared,
    start: Instant,
    next: AtomicU64,
    stop: AtomicBool,
    table: Mutex<Table>,
    /// Per worker: the earliest measured second it may still add to (a request in flight, or
    /// what it recorded and has not yet flushed); `u64::MAX` for none. With the next request's
    /// due second, the seconds before the smallest of these are finished and can be sealed.
    holding: Vec<AtomicU64>,
    /// HTTP/2: the connections the workers share (worker `w` uses `w / streams`), each opened
    /// by the first worker that finds it missing or closed.
    h2: Vec<Mutex<Option<H2Sender>>>,
    sent: AtomicU64,
    failed: AtomicU64,
    /// The next `--requests` entry.
    rotation: AtomicU64,
}

/// The run's seconds: finished ones sealed (percentiles and counts, their latencies folded
/// into the run's histogram), later ones still open to the workers' additions. Memory stays
/// flat: an open second holds only its histogram's non-empty buckets, and seconds are open
/// only until every request due in them is answered.
struct Table {
    sealed: Vec<SecondReport>,
    /// Second `sealed.len() + k` at index `k`.
    open: std::collections::VecDeque<Tally>,
    /// The sealed seconds' latencies and counts.
    total: Second,
    scratch: hdrhistogram::Histogram<u64>,
}

impl Table {
    fn new() -> Table {
        Table {
            sealed: Vec::new(),
            open: std::collections::VecDeque::new(),
            total: Second::default(),
            scratch: stats::histogram(),
        }
    }

    fn add(&mut self, second: u64, s: &Second) {
        let i = second as usize;
        if let Some(done) = self.sealed.get_mut(i) {
            // Sealing waits for every request due in a second (`holding`), so this does
            // not happen; should it, the run's totals still count it.
            done.requests += s.counts.requests();
            done.errors += s.counts.error_count();
            done.late += s.counts.late;
            let _ = self.total.latency.add(&s.latency);
            self.total.counts.add(&s.counts);
            return;
        }
        let k = i - self.sealed.len();
        if self.open.len() <= k {
            self.open.resize_with(k + 1, Tally::default);
        }
        self.open[k].add(s);
    }

    /// Seals every second before `second`.
    fn seal_before(&mut self, second: u64) {
        while (self.sealed.len() as u64) < second {
            let t = self.open.pop_front().unwrap_or_default();
            self.scratch.reset();
            t.fill(&mut self.scratch);
            t.fill(&mut self.total.latency);
            self.total.counts.add(&t.counts);
            self.sealed.push(SecondReport {
                t: self.sealed.len() as u64,
                requests: t.counts.requests(),
                errors: t.counts.error_count(),
                late: t.counts.late,
                latency: Percentiles::of(&self.scratch),
            });
        }
    }

    /// The P99 of the latest second with answers (for the progress line).
    fn recent_p99(&self) -> f64 {
        match self.open.iter().rev().find(|t| !t.is_empty()) {
            Some(t) => t.quantile(0.99) as f64 / 1e6,
            None => self.sealed.last().map_or(0.0, |s| s.latency.p99),
        }
    }
}

/// A worker's current second, flushed into the shared table when the second changes.
struct Local {
    second: u64,
    data: Second,
}

impl Local {
    async fn record(&mut self, sh: &Shared, second: u64, f: impl FnOnce(&mut Second)) {
        if second != self.second {
            self.flush(sh).await;
            self.second = second;
        }
        f(&mut self.data);
    }

    async fn flush(&mut self, sh: &Shared) {
        if self.data.is_empty() {
            return;
        }
        sh.table.lock().await.add(self.second, &self.data);
        self.data.clear();
    }

    /// What this worker may still add to: `next` (the second of a request it is about to
    /// send or has in flight) or the second of its unflushed data, if earlier.
    fn holds(&self, next: u64) -> u64 {
        if self.data.is_empty() {
            next
        } else {
            self.second.min(next)
        }
    }
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;
type H2Sender = hyper::client::conn::http2::SendRequest<Full<Bytes>>;

/// An HTTP/2 connection: h2c with prior knowledge, or TLS whose ALPN agreed on `h2`.
async fn connect_h2(t: &Target, tls: Option<&Arc<tls::ClientConfig>>) -> Result<H2Sender, String> {
    let stream = TcpStream::connect((t.host.as_str(), t.port))
        .await
        .map_err(|e| format!("connect: {}", e.kind()))?;
    let _ = stream.set_nodelay(true);
    if t.tls {
        let cfg = tls.ok_or("tls: no TLS settings for an https target")?;
        let stream = tls::connect(cfg, &t.host, stream).await?;
        if stream.get_ref().1.alpn_protocol() != Some(b"h2") {
            return Err("tls: the server did not agree to HTTP/2 (ALPN h2)".into());
        }
        return handshake_h2(stream).await;
    }
    handshake_h2(stream).await
}

/// HTTP/2 over a connected stream; the connection is driven by a task of its own.
async fn handshake_h2<S>(stream: S) -> Result<H2Sender, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// Worker `worker`'s HTTP/2 connection (opened or replaced under its slot's lock).
async fn h2_sender(sh: &Shared, worker: usize, streams: usize) -> Result<H2Sender, String> {
    let slot = &sh.h2[(worker / streams.max(1)).min(sh.h2.len().saturating_sub(1))];
    let mut g = slot.lock().await;
    match g.as_ref() {
        Some(s) if !s.is_closed() => Ok(s.clone()),
        _ => {
            let s = connect_h2(&sh.cfg.target, sh.cfg.tls.as_ref()).await?;
            *g = Some(s.clone());
            Ok(s)
        }
    }
}

async fn connect(t: &Target, tls: Option<&Arc<tls::ClientConfig>>) -> Result<Sender, String> {
    let stream = TcpStream::connect((t.host.as_str(), t.port))
        .await
        .map_err(|e| format!("connect: {}", e.kind()))?;
    let _ = stream.set_nodelay(true);
    if t.tls {
        let cfg = tls.ok_or("tls: no TLS settings for an https target")?;
        let stream = tls::connect(cfg, &t.host, stream).await?;
        return handshake(stream).await;
    }
    handshake(stream).await
}

/// HTTP/1.1 over a connected stream; the connection is driven by a task of its own.
async fn handshake<S>(stream: S) -> Result<Sender, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// One request on `conn` (connecting first when needed), or with HTTP/2 on worker
/// `worker`'s shared connection: the status, or an error kind.
async fn send(sh: &Shared, worker: usize, conn: &mut Option<Sender>) -> Result<u16, String> {
    let cfg = &sh.cfg;
    let prepared = &sh.prepared;
    let p = match prepared.requests.as_slice() {
        [one] => one,
        [] => return Err("request: none configured".into()),
        all => &all[(sh.rotation.fetch_add(1, Ordering::Relaxed) % all.len() as u64) as usize],
    };
    let (uri, headers) = match (&p.uri, &prepared.headers) {
        (Ok(u), Ok(h)) => (u.clone(), h.clone()),
        (Err(e), _) | (_, Err(e)) => return Err(e.clone()),
    };
    let mut req = Request::new(Full::new(p.body.clone()));
    *req.method_mut() = p.method.clone();
    *req.uri_mut() = uri;
    *req.headers_mut() = headers;
    let res = async {
        let resp = if let Some(h2) = cfg.http2 {
            let mut sender = h2_sender(sh, worker, h2.streams).await?;
            sender
                .ready()
                .await
                .map_err(|e| format!("connection: {e}"))?;
            sender
                .send_request(req)
                .await
                .map_err(|e| format!("response: {}", short_error(&e)))?
        } else {
            if conn.as_ref().is_none_or(|s| s.is_closed()) {
                *conn = Some(connect(&cfg.target, cfg.tls.as_ref()).await?);
            }
            let Some(sender) = conn.as_mut() else {
                return Err("connect: no connection".into());
            };
            sender
                .ready()
                .await
                .map_err(|e| format!("connection: {e}"))?;
            sender
                .send_request(req)
                .await
                .map_err(|e| format!("response: {}", short_error(&e)))?
        };
        let status = resp.status().as_u16();
        resp.into_body()
            .collect()
            .await
            .map_err(|e| format!("body: {e}"))?;
        Ok::<u16, String>(status)
    };
    let out = match tokio::time::timeout(cfg.timeout, res).await {
        Ok(r) => r,
        Err(_) => Err("timeout".to_string()),
    };
    if out.is_err() || !cfg.keepalive {
        *conn = None;
    }
    out
}

fn short_error(e: &hyper::Error) -> String {
    if e.is_incomplete_message() {
        "connection closed before the response".into()
    } else if e.is_canceled() {
        "canceled".into()
    } else {
        // hyper's own text ("http2 error") says little; its cause names the problem.
        match std::error::Error::source(e) {
            Some(cause) => format!("{e}: {cause}"),
            None => e.to_string(),
        }
    }
}

/// Open model: take the next due request, wait for its time, send it.
async fn open_worker(sh: Arc<Shared>, worker: usize, rate: Rate) {
    let total = (sh.cfg.warmup + sh.cfg.duration).as_secs_f64();
    let warm = sh.cfg.warmup.as_secs_f64();
    let mut conn: Option<Sender> = None;
    let mut local = Local {
        second: 0,
        data: Second::default(),
    };
    let second_of = |due_s: f64| (due_s - warm).max(0.0) as u64;
    loop {
        if sh.stop.load(Ordering::Relaxed) {
            break;
        }
        // Announced before taking a request, so the table never seals a second this one
        // may land in (the request taken is due no earlier than `next` was).
        let unpicked = second_of(rate.due(sh.next.load(Ordering::SeqCst)));
        sh.holding[worker].store(local.holds(unpicked), Ordering::SeqCst);
        let i = sh.next.fetch_add(1, Ordering::SeqCst);
        let due_s = rate.due(i);
        if due_s >= total {
            break;
        }
        let due = sh.start + Duration::from_secs_f64(due_s);
        let picked = Instant::now();
        if picked < due {
            if due - picked > Duration::from_millis(50) && !local.data.is_empty() {
                // Idle for a while: hand over what this worker holds.
                local.flush(&sh).await;
                sh.holding[worker].store(second_of(due_s), Ordering::SeqCst);
            }
            tokio::time::sleep_until(due).await;
        }
        let sent = Instant::now();
        let res = send(&sh, worker, &mut conn).await;
        let done = Instant::now();
        // Ready before it was due: the wait past `due` is the timer's, not the server's, so
        // time from the send. Picked up late: a previous answer held this connection, so time
        // from when the request was due (the coordinated-omission correction).
        let from = if picked <= due { sent } else { due };
        if due_s < warm {
            continue;
        }
        let second = (due_s - warm) as u64;
        let late = picked.saturating_duration_since(due) > Duration::from_millis(1);
        let us = done.saturating_duration_since(from).as_micros() as u64;
        record(&sh, &mut local, second, res, us, late).await;
    }
    local.flush(&sh).await;
    sh.holding[worker].store(u64::MAX, Ordering::SeqCst);
}

/// Closed model: send, wait for the answer, send again.
async fn closed_worker(sh: Arc<Shared>, worker: usize) {
    let total = sh.cfg.warmup + sh.cfg.duration;
    let warm = sh.cfg.warmup;
    let mut conn: Option<Sender> = None;
    let mut local = Local {
        second: 0,
        data: Second::default(),
    };
    loop {
        // Announced before the send's time is taken: it is no earlier (see `Table`).
        let now = sh.start.elapsed().saturating_sub(warm).as_secs();
        sh.holding[worker].store(local.holds(now), Ordering::SeqCst);
        let sent = Instant::now();
        let at = sent.saturating_duration_since(sh.start);
        if at >= total || sh.stop.load(Ordering::Relaxed) {
            break;
        }
        let res = send(&sh, worker, &mut conn).await;
        let done = Instant::now();
        if at < warm {
            continue;
        }
        let second = (at - warm).as_secs();
        let us = done.saturating_duration_since(sent).as_micros() as u64;
        record(&sh, &mut local, second, res, us, false).await;
    }
    local.flush(&sh).await;
    sh.holding[worker].store(u64::MAX, Ordering::SeqCst);
}

async fn record(
    sh: &Shared,
    local: &mut Local,
    second: u64,
    res: Result<u16, String>,
    us: u64,
    late: bool,
) {
    sh.sent.fetch_add(1, Ordering::Relaxed);
    local
        .record(sh, second, |s| {
            match &res {
                Ok(status) => {
                    *s.counts.statuses.entry(*status).or_default() += 1;
                    let _ = s.latency.record(us.max(1));
                }
                Err(kind) => {
                    *s.counts.errors.entry(kind.clone()).or_default() += 1;
                }
            }
            if late {
                s.counts.late += 1;
            }
        })
        .await;
    if res.is_err() {
        sh.failed.fetch_add(1, Ordering::Relaxed);
    }
}

/// Runs the load; `progress` is called about once a second.
pub async fn run(cfg: Config, mut progress: impl FnMut(Progress)) -> Report {
    let workers = match (cfg.model, cfg.http2) {
        (Model::Open(_), Some(h2)) => cfg.connections.max(1) * h2.streams.max(1),
        (Model::Open(_), None) => cfg.connections.max(1),
        (Model::Closed { concurrency }, _) => concurrency.max(1),
    };
    // HTTP/2: `connections` shared connections (closed model: enough for the clients).
    let h2_conns = match (cfg.http2, cfg.model) {
        (None, _) => 0,
        (Some(_), Model::Open(_)) => cfg.connections.max(1),
        (Some(h2), Model::Closed { concurrency }) => concurrency.max(1).div_ceil(h2.streams.max(1)),
    };
    let start = Instant::now() + START_DELAY;
    let measured_from = std::time::SystemTime::now() + START_DELAY + cfg.warmup;
    let sh = Arc::new(Shared {
        prepared: Prepared::new(&cfg),
        cfg: cfg.clone(),
        start,
        next: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        table: Mutex::new(Table::new()),
        holding: (0..workers).map(|_| AtomicU64::new(0)).collect(),
        h2: (0..h2_conns).map(|_| Mutex::new(None)).collect(),
        sent: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        rotation: AtomicU64::new(0),
    });
    let mut tasks = Vec::with_capacity(workers);
    for w in 0..workers {
        let sh = sh.clone();
        tasks.push(match cfg.model {
            Model::Open(rate) => tokio::spawn(open_worker(sh, w, rate)),
            Model::Closed { .. } => tokio::spawn(closed_worker(sh, w)),
        });
    }
    let total = (cfg.warmup + cfg.duration).as_secs_f64();
    let deadline = sh.start + cfg.warmup + cfg.duration + cfg.timeout + Duration::from_secs(1);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    let all = futures_join(tasks);
    tokio::pin!(all);
    loop {
        tokio::select! {
            _ = &mut all => break,
            _ = tick.tick() => {
                let elapsed = sh.start.elapsed().as_secs_f64().min(total);
                // What no worker can add to any more: before the next request's second (read
                // first) and before every second a worker holds.
                let warm = cfg.warmup.as_secs_f64();
                let unpicked = match cfg.model {
                    Model::Open(rate) => rate.due(sh.next.load(Ordering::SeqCst)),
                    Model::Closed { .. } => sh.start.elapsed().as_secs_f64(),
                };
                let mut finished = (unpicked - warm).max(0.0) as u64;
                for h in &sh.holding {
                    finished = finished.min(h.load(Ordering::SeqCst));
                }
                let p99 = {
                    let mut t = sh.table.lock().await;
                    t.seal_before(finished.min(cfg.duration.as_secs()));
                    t.recent_p99()
                };
                progress(Progress {
                    elapsed,
                    total,
                    requests: sh.sent.load(Ordering::Relaxed),
                    errors: sh.failed.load(Ordering::Relaxed),
                    p99_so_far: p99,
                });
                if Instant::now() > deadline {
                    // Workers stuck past every timeout: stop them.
                    sh.stop.store(true, Ordering::Relaxed);
                }
            }
        }
    }
    let table = std::mem::replace(&mut *sh.table.lock().await, Table::new());
    let from_ns = measured_from
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64);
    report(&cfg, table, from_ns)
}

async fn futures_join(tasks: Vec<tokio::task::JoinHandle<()>>) {
    for t in tasks {
        let _ = t.await;
    }
}

fn report(cfg: &Config, mut table: Table, measured_from_unix_ns: i64) -> Report {
    let n = cfg.duration.as_secs().max(1);
    let end = table.sealed.len() as u64 + table.open.len() as u64;
    table.seal_before(end.max(n));
    let Table {
        sealed: per_second,
        total: all,
        ..
    } = table;
    let (model, rate, concurrency) = match cfg.model {
        Model::Open(r) => ("open", Some(r.to), None),
        Model::Closed { concurrency } => ("closed", None, Some(concurrency)),
    };
    let dur = cfg.duration.as_secs_f64();
    let answered: u64 = all.counts.statuses.values().sum();
    let mut histogram = Vec::new();
    for v in all.latency.iter_log(1000, 1.25) {
        if v.count_since_last_iteration() > 0 {
            histogram.push((
                v.value_iterated_to() as f64 / 1e6,
                v.count_since_last_iteration(),
            ));
        }
    }
    Report {
        url: format!(
            "{}://{}{}",
            if cfg.target.tls { "https" } else { "http" },
            cfg.target.authority(),
            cfg.target.path
        ),
        model,
        rate,
        concurrency,
        protocol: if cfg.http2.is_some() {
            "HTTP/2"
        } else {
            "HTTP/1.1"
        },
        streams: cfg.http2.map(|h| h.streams),
        connections: match (cfg.model, cfg.http2) {
            (Model::Closed { concurrency }, Some(h)) => concurrency.div_ceil(h.streams.max(1)),
            (Model::Closed { concurrency }, None) => concurrency,
            (Model::Open(_), _) => cfg.connections,
        },
        duration_seconds: dur,
        warmup_seconds: cfg.warmup.as_secs_f64(),
        measured_from_unix_ns,
        requests: all.counts.requests(),
        errors: all.counts.error_count(),
        late: all.counts.late,
        throughput: answered as f64 / dur.max(1e-9),
        latency: Percentiles::of(&all.latency),
        statuses: all.counts.statuses,
        error_kinds: all.counts.errors,
        seconds: per_second,
        histogram,
    }
}

impl Report {
    /// The report as text: what was offered, what came back, latency percentiles, and the
    /// seconds whose P99 stood out.
    pub fn to_text(&self) -> String {
        use std::fmt::Write as _;
        let mut o = String::new();
        let conns = match self.streams {
            Some(s) => format!("{} HTTP/2 connections × {s} streams", self.connections),
            None => format!("{} connections", self.connections),
        };
        let offered = match (self.rate, self.concurrency) {
            (Some(r), _) => format!("open model, {r} requests/s over {conns}"),
            (_, Some(c)) if self.streams.is_some() => {
                format!("closed model, {c} concurrent clients over {conns}")
            }
            (_, Some(c)) => format!("closed model, {c} concurrent clients"),
            _ => String::new(),
        };
        let _ = writeln!(o, "Target:     {}", self.url);
        let _ = writeln!(
            o,
            "Load:       {offered}; {}s measured after {}s of warm-up",
            self.duration_seconds, self.warmup_seconds
        );
        let _ = writeln!(
            o,
            "Requests:   {} ({:.1}/s answered), {} errors, {} sent late",
            self.requests, self.throughput, self.errors, self.late
        );
        let st: Vec<String> = self
            .statuses
            .iter()
            .map(|(s, n)| format!("{s}: {n}"))
            .chain(self.error_kinds.iter().map(|(k, n)| format!("{k}: {n}")))
            .collect();
        let _ = writeln!(o, "Answers:    {}", st.join(", "));
        let l = &self.latency;
        let _ = writeln!(
            o,
            "Latency:    p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  (mean {})",
            ms(l.p50),
            ms(l.p90),
            ms(l.p99),
            ms(l.p999),
            ms(l.max),
            ms(l.mean)
        );
        if self.rate.is_some() {
            let _ = writeln!(
                o,
                "            (open model: latency counts from when each request was due, so stalls are not hidden)"
            );
        }
        let spikes: Vec<String> = self
            .spikes()
            .into_iter()
            .map(|t| format!("{t}s ({})", ms(self.seconds[t as usize].latency.p99)))
            .collect();
        if !spikes.is_empty() {
            let _ = writeln!(o, "P99 spikes: {}", spikes.join(", "));
        }
        o
    }

    /// The median of the per-second P99s (seconds with requests), 0 if none.
    pub fn typical_p99(&self) -> f64 {
        let mut p99s: Vec<f64> = self
            .seconds
            .iter()
            .filter(|s| s.requests > 0)
            .map(|s| s.latency.p99)
            .collect();
        p99s.sort_by(f64::total_cmp);
        p99s.get(p99s.len() / 2).copied().unwrap_or(0.0)
    }

    /// The seconds whose P99 spiked: over twice the run's median P99, and over 1 ms.
    pub fn spikes(&self) -> Vec<u64> {
        let mid = self.typical_p99();
        self.seconds
            .iter()
            .filter(|s| s.requests > 0 && s.latency.p99 > 2.0 * mid && s.latency.p99 > 0.001)
            .map(|s| s.t)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse() {
        let t = Target::parse("http://127.0.0.1:8080/api/x?y=1").unwrap();
        assert_eq!(
            t,
            Target {
                host: "127.0.0.1".into(),
                port: 8080,
                path: "/api/x?y=1".into(),
                tls: false,
            }
        );
        assert_eq!(Target::parse("http://localhost").unwrap().port, 80);
        assert_eq!(Target::parse("http://[::1]:9/").unwrap().host, "::1");
        let t = Target::parse("https://example.test/x").unwrap();
        assert!(t.tls && t.port == 443, "{t:?}");
        assert!(Target::parse("ftp://x/").unwrap_err().contains("https://"));
        assert!(Target::parse("ftp://x/").unwrap_err().contains("http://"));
        assert!(
            Target::parse("http://x:99999/")
                .unwrap_err()
                .contains("port")
        );
    }
}
