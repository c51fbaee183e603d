//! The HTTP listener: gocost's own accept loop over hyper, so that slow, idle and too many
//! clients cannot take the server down, and a stop signal drains it within a grace period.
//! A connection speaks HTTP/1.1, or HTTP/2 with prior knowledge (gRPC clients without TLS):
//! which, its first bytes tell (HTTP/2's preface), read within `header_timeout`.
//!
//! - **Header timeout**: a connection must deliver a request's complete header within
//!   `header_timeout` of opening, or of its previous response (so idle keep-alive
//!   connections are closed after it too).
//! - **Body timeout**: a push's body must arrive within `body_timeout` (see
//!   [`read_body`]); one that stops short of its `Content-Length` is answered 400.
//! - **Connection limit**: at most `max_connections` are open (by default three quarters of
//!   the process' file-descriptor limit); past it a new connection gets a 503 and is closed,
//!   with one log line per episode and `gocost_http_connections_refused_total`.
//! - **Shutdown**: on the signal the listener closes, idle connections close, requests in
//!   flight finish; after `grace` what is left is cut.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

use crate::{ApiError, AppState};

/// How the listener treats connections (the config's `[server]`).
#[derive(Debug, Clone)]
pub struct ListenOptions {
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    /// 0 = from the file-descriptor limit.
    pub max_connections: usize,
    pub grace: Duration,
}

impl Default for ListenOptions {
    fn default() -> Self {
        ListenOptions {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            max_connections: 0,
            grace: Duration::from_secs(10),
        }
    }
}

/// The process' soft limit on open files (Linux: `/proc/self/limits`), if known.
pub fn fd_limit() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = s.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// The connection limit the options ask for: the setting, else three quarters of the fd
/// limit (the rest is for the store's files and scrapes), and never above it.
pub fn connection_limit(o: &ListenOptions) -> usize {
    let fds = fd_limit().unwrap_or(1024);
    let auto = (fds / 4 * 3).max(16);
    let n = if o.max_connections == 0 {
        auto
    } else {
        o.max_connections as u64
    };
    n.min(fds.saturating_sub(32).max(16)) as usize
}

/// Connection counters for `/metrics`.
#[derive(Default)]
pub struct ConnStats {
    pub open: AtomicU64,
    pub refused: AtomicU64,
    pub timeouts: AtomicU64,
    pub body_timeouts: AtomicU64,
    /// Requests whose body is being read now.
    pub reading_body: AtomicU64,
    /// Set while the limit is hit (one log line per episode).
    at_limit: AtomicBool,
    pub limit: AtomicU64,
}

/// What a drained shutdown did.
#[derive(Debug, Default)]
pub struct Drained {
    /// Connections open when the signal came that closed by themselves.
    pub finished: usize,
    /// Connections still open after the grace period, cut.
    pub cut: usize,
}

/// Drives a hyper connection (HTTP/1 or HTTP/2: each has its own `graceful_shutdown`) to its
/// end, asking it to finish gracefully once `stop` turns true.
macro_rules! until_stopped {
    ($conn:ident, $stop:ident) => {{
        tokio::pin!($conn);
        tokio::select! {
            r = $conn.as_mut() => r,
            _ = async { $stop.wait_for(|s| *s).await.map(|_| ()) } => {
                $conn.as_mut().graceful_shutdown();
                $conn.await
            }
        }
    }};
}

/// Serves `app` on `listener` until `shutdown` resolves, then drains (see the module).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    state: Arc<AppState>,
    opts: ListenOptions,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<Drained> {
    let limit = connection_limit(&opts);
    let stats = &state.conns;
    stats.limit.store(limit as u64, Ordering::Relaxed);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut conns = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            _ = &mut shutdown => break,
            a = listener.accept() => a,
        };
        let stream = match accepted {
            Ok((s, _)) => s,
            Err(e) => {
                // Out of file descriptors (EMFILE/ENFILE) or a transient error: back off
                // instead of spinning.
                if !stats.at_limit.swap(true, Ordering::Relaxed) {
                    tracing::warn!(target: "gocost::http", error = %e, "accepting a connection failed (retrying)");
                }
                stats.refused.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        // Reap the connection tasks that ended meanwhile before counting.
        while conns.try_join_next().is_some() {}
        if conns.len() >= limit {
            stats.refused.fetch_add(1, Ordering::Relaxed);
            if !stats.at_limit.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    target: "gocost::http",
                    open = conns.len(),
                    limit,
                    "connections at the limit (server.max_connections): refusing new ones with 503"
                );
            }
            refuse(stream, limit);
            continue;
        }
        if stats.at_limit.swap(false, Ordering::Relaxed) {
            tracing::info!(target: "gocost::http", "accepting connections again");
        }
        let _ = stream.set_nodelay(true);
        let svc = TowerToHyperService::new(app.clone());
        let mut stop = stop_rx.clone();
        let st = state.clone();
        let header_timeout = opts.header_timeout;
        st.conns.open.fetch_add(1, Ordering::Relaxed);
        conns.spawn(async move {
            let res = match sniff_h2(&stream, header_timeout).await {
                // Silent or closed before a first request line or preface: as a header
                // timeout.
                None => {
                    st.conns.timeouts.fetch_add(1, Ordering::Relaxed);
                    st.conns.open.fetch_sub(1, Ordering::Relaxed);
                    return;
                }
                Some(false) => {
                    let conn = hyper::server::conn::http1::Builder::new()
                        .timer(TokioTimer::new())
                        .header_read_timeout(header_timeout)
                        .serve_connection(TokioIo::new(stream), svc);
                    until_stopped!(conn, stop)
                }
                // HTTP/2 with prior knowledge (gRPC clients; no TLS, so no ALPN): pings
                // every header_timeout close a connection whose peer is gone.
                Some(true) => {
                    let conn = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                        .timer(TokioTimer::new())
                        .keep_alive_interval(Some(header_timeout))
                        .keep_alive_timeout(header_timeout)
                        .serve_connection(TokioIo::new(stream), svc);
                    until_stopped!(conn, stop)
                }
            };
            if let Err(e) = res
                && e.is_timeout()
            {
                st.conns.timeouts.fetch_add(1, Ordering::Relaxed);
            }
            st.conns.open.fetch_sub(1, Ordering::Relaxed);
        });
    }
    drop(listener);
    let open = conns.len();
    let _ = stop_tx.send(true);
    let mut drained = Drained::default();
    let deadline = tokio::time::sleep(opts.grace);
    tokio::pin!(deadline);
    while !conns.is_empty() {
        tokio::select! {
            _ = conns.join_next() => drained.finished += 1,
            _ = &mut deadline => break,
        }
    }
    drained.cut = conns.len();
    conns.shutdown().await;
    drained.finished = drained.finished.min(open);
    Ok(drained)
}

/// HTTP/2's connection preface, which a client speaking HTTP/2 with prior knowledge sends
/// first.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Whether a new connection speaks HTTP/2 (it starts with the preface) or HTTP/1 (it does
/// not), from its first bytes, read without taking them; `None` when it sends nothing
/// within `within` or closes first. The bytes of the preface normally come in one
/// segment; while a prefix of it has come, it looks again every few milliseconds.
async fn sniff_h2(stream: &tokio::net::TcpStream, within: Duration) -> Option<bool> {
    let mut buf = [0u8; H2_PREFACE.len()];
    let look = async {
        loop {
            let n = stream.peek(&mut buf).await.ok()?;
            if n == 0 {
                return None;
            }
            if buf[..n] != H2_PREFACE[..n] {
                return Some(false);
            }
            if n == H2_PREFACE.len() {
                return Some(true);
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(within, look).await.ok().flatten()
}

/// Answers a connection over the limit with a 503 (if the socket takes it at once) and
/// closes it.
fn refuse(stream: tokio::net::TcpStream, limit: usize) {
    let body = serde_json::json!({
        "error": format!("too many open connections (server.max_connections = {limit}); retry later")
    })
    .to_string();
    let resp = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.try_write(resp.as_bytes());
}

/// Middleware for routes that take a body: reads it whole within `body_timeout` and at most
/// the route's cap (`Access::body_cap`: `max_body`, or `max_trace_bytes` for uploaded traces). A declared `Content-Length` over the cap is refused at once (413), a
/// body that stops short of it is answered 400 when the timeout ends.
pub(crate) async fn read_body(
    State(st): State<Arc<AppState>>,
    req: Request,
    next: Next,
) -> Response {
    let (max, setting) = st.access.body_cap(req.uri().path());
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max) {
        return ApiError::PayloadTooLarge(format!(
            "body of {} bytes is over the server's limit of {max} bytes (the {setting} setting in [limits])",
            declared.unwrap_or_default()
        ))
        .into_response();
    }
    let timeout = *st.body_timeout.read().unwrap_or_else(|p| p.into_inner());
    let (parts, body) = req.into_parts();
    let limit = usize::try_from(max).unwrap_or(usize::MAX);
    st.conns.reading_body.fetch_add(1, Ordering::Relaxed);
    let read = tokio::time::timeout(timeout, axum::body::to_bytes(body, limit)).await;
    st.conns.reading_body.fetch_sub(1, Ordering::Relaxed);
    let bytes = match read {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => {
            let too_big = std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>())
                || e.to_string().contains("length limit");
            return if too_big {
                ApiError::PayloadTooLarge(format!(
                    "body is over the server's limit of {max} bytes (the {setting} setting in [limits])"
                ))
            } else {
                ApiError::BadRequest(format!("reading the request body failed: {e}"))
            }
            .into_response();
        }
        Err(_) => {
            st.conns.body_timeouts.fetch_add(1, Ordering::Relaxed);
            let mut r = ApiError::BadRequest(format!(
                "the request body did not arrive within {:?} (the body_timeout setting in [server]){}",
                timeout,
                declared.map_or(String::new(), |n| format!(
                    ": fewer than its Content-Length of {n} bytes"
                ))
            ))
            .into_response();
            r.headers_mut().insert(
                header::CONNECTION,
                axum::http::HeaderValue::from_static("close"),
            );
            return r;
        }
    };
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}
