//! Push routes for Pyroscope agents: `POST /ingest` (and `/pyroscope/ingest`) and the
//! Connect `POST /push.v1.PusherService/Push`. Bodies are parsed whole by `gocost-ingest`
//! before anything is stored; each profile becomes a series like a scraped one
//! (kind, `job` = the application, the agent's tags, and the tenant's reserved label).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use gocost_ingest::{Limits, Pushed};
use gocost_store::SeriesKey;

use crate::AppState;
use crate::access::{Tenant, status};

fn limits(st: &AppState) -> Limits {
    Limits {
        // A profile may decompress to 4× the body cap (pprof compresses ~4–10×; more is a bomb).
        max_decompressed: st.access.max_body().saturating_mul(4),
        ..Limits::default()
    }
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

fn bad(e: impl std::fmt::Display) -> Response {
    status(StatusCode::BAD_REQUEST, e.to_string())
}

/// Stores every profile of one push, after checking the tenant's series limit for all of
/// them; nothing is stored if any is refused.
async fn store(st: Arc<AppState>, tenant: Tenant, pushed: Vec<Pushed>) -> Result<usize, Response> {
    let keyed: Vec<(SeriesKey, Pushed)> = pushed
        .into_iter()
        .map(|mut p| {
            tenant.tag(&mut p.labels);
            let labels = std::mem::take(&mut p.labels);
            (SeriesKey::new(&p.kind, labels), p)
        })
        .collect();
    let n = keyed.len();
    let res = tokio::task::spawn_blocking(move || {
        let keys: Vec<SeriesKey> = keyed.iter().map(|(k, _)| k.clone()).collect();
        if let Err(have) = st.access.admit_series(&st.store, &tenant, &keys) {
            let mut r = status(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "tenant {:?} has {have} series, its limit: this push would add more",
                    tenant.id
                ),
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
            return Err(Box::new(r));
        }
        // Acknowledged only once durable: every record is synced to disk (one fsync shared
        // with concurrent pushes) before the 200.
        let mut lsns = Vec::with_capacity(keyed.len());
        for (k, p) in &keyed {
            let lsn = st
                .store
                .append_profile(k, p.time_ns, &p.profile)
                .map_err(|e| Box::new(store_error(&format!("{k}: "), e)))?;
            lsns.push(lsn);
        }
        for lsn in lsns {
            st.store
                .commit(lsn)
                .map_err(|e| Box::new(store_error("", e)))?;
        }
        Ok(())
    })
    .await
    .map_err(|e| status(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    res.map(|()| n).map_err(|r| *r)
}

/// The answer to a push the store did not take: 507 while the disk is full, 503 when the
/// WAL could not be written or synced (both with `Retry-After`: nothing was stored, the
/// agent should send it again), 400 for a profile over the record limit.
fn store_error(what: &str, e: gocost_store::Error) -> Response {
    use gocost_store::Error as E;
    let (code, retry) = match &e {
        E::TooLarge(_) | E::TooDeep(_) => return bad(format!("{what}{e}")),
        E::DiskFull(_) => (StatusCode::INSUFFICIENT_STORAGE, "30"),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "5"),
    };
    let mut r = status(code, format!("not stored: {e}"));
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static(retry));
    r
}

fn header_str(h: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// Undoes the body's `Content-Encoding` and parses it with `f`, off the async threads (both
/// are CPU work on up to `max_body` bytes); a bad push is a 400 naming the problem.
async fn parse<T: Send + 'static>(
    headers: &HeaderMap,
    body: Bytes,
    lim: gocost_ingest::Limits,
    f: impl FnOnce(&[u8], &gocost_ingest::Limits) -> Result<T, gocost_ingest::Error> + Send + 'static,
) -> Result<T, Response> {
    let enc = header_str(headers, header::CONTENT_ENCODING).map(str::to_string);
    match tokio::task::spawn_blocking(move || {
        let body = gocost_ingest::decode_body(enc.as_deref(), body.to_vec(), &lim)?;
        f(&body, &lim)
    })
    .await
    {
        Ok(Ok(p)) => Ok(p),
        Ok(Err(e)) => Err(bad(e)),
        Err(e) => Err(status(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
    }
}

/// `POST /ingest?name=app{k=v}&from=&until=&format=pprof|folded|lines&sampleRate=…`.
pub(crate) async fn ingest(
    State(st): State<Arc<AppState>>,
    Extension(tenant): Extension<Tenant>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    st.requests.fetch_add(1, Ordering::Relaxed);
    let lim = limits(&st);
    let pairs: Vec<(String, String)> =
        match serde_urlencoded::from_str(query.as_deref().unwrap_or("")) {
            Ok(p) => p,
            Err(e) => return bad(format!("bad query string: {e}")),
        };
    let q = match gocost_ingest::IngestQuery::from_pairs(
        pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        &lim,
    ) {
        Ok(q) => q,
        Err(e) => return bad(e),
    };
    let ct = header_str(&headers, header::CONTENT_TYPE).map(str::to_string);
    let parsed = parse(&headers, body, lim, move |body, lim| {
        gocost_ingest::ingest(&q, ct.as_deref(), body, now_ns(), lim)
    });
    let pushed = match parsed.await {
        Ok(p) => p,
        Err(r) => return r,
    };
    match store(st, tenant, pushed).await {
        Ok(n) => Json(serde_json::json!({ "profiles": n })).into_response(),
        Err(r) => r,
    }
}

/// `POST /push.v1.PusherService/Push`: a Connect unary call with a protobuf `PushRequest`
/// (`Content-Type: application/proto`, optionally gzip'd); answers an empty
/// `PushResponse`.
pub(crate) async fn push(
    state: State<Arc<AppState>>,
    tenant: Extension<Tenant>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    connect_error(push_call(state, tenant, headers, body).await).await
}

/// An error answer in Connect's shape (`code`, `message`; `error` kept for gocost's
/// clients), so Connect clients log what went wrong.
async fn connect_error(r: Response) -> Response {
    let code = match r.status() {
        StatusCode::OK => return r,
        StatusCode::BAD_REQUEST | StatusCode::UNSUPPORTED_MEDIA_TYPE => "invalid_argument",
        StatusCode::TOO_MANY_REQUESTS
        | StatusCode::PAYLOAD_TOO_LARGE
        | StatusCode::INSUFFICIENT_STORAGE => "resource_exhausted",
        StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        StatusCode::UNAUTHORIZED => "unauthenticated",
        StatusCode::FORBIDDEN => "permission_denied",
        _ => "internal",
    };
    let (mut parts, body) = r.into_parts();
    let msg = match axum::body::to_bytes(body, 1 << 20).await {
        Ok(b) => serde_json::from_slice::<serde_json::Value>(&b)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
            .unwrap_or_else(|| String::from_utf8_lossy(&b).into_owned()),
        Err(e) => e.to_string(),
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let body = serde_json::json!({ "code": code, "message": msg, "error": msg }).to_string();
    Response::from_parts(parts, axum::body::Body::from(body))
}

async fn push_call(
    State(st): State<Arc<AppState>>,
    Extension(tenant): Extension<Tenant>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    st.requests.fetch_add(1, Ordering::Relaxed);
    let lim = limits(&st);
    let ct = header_str(&headers, header::CONTENT_TYPE).unwrap_or("");
    if !ct.starts_with("application/proto") && !ct.starts_with("application/x-protobuf") {
        return status(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("Content-Type {ct:?}: send application/proto (Connect's protobuf codec)"),
        );
    }
    let parsed = parse(&headers, body, lim, |body, lim| {
        gocost_ingest::parse_push_request(body, now_ns(), lim)
    });
    let pushed = match parsed.await {
        Ok(p) => p,
        Err(r) => return r,
    };
    match store(st, tenant, pushed).await {
        Ok(_) => {
            let mut r = StatusCode::OK.into_response();
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/proto"),
            );
            r
        }
        Err(r) => r,
    }
}
