//! gRPC answers on gocost's HTTP port (HTTP/2, see `listen.rs`), for the OTLP receiver's
//! `ProfilesService/Export`: a unary call answered with one framed message and
//! `grpc-status: 0` in the trailers, and every failure — whichever layer refused the call
//! (auth, tenancy, body cap, routing, the handler) — as a trailers-only answer (HTTP 200,
//! `grpc-status` and `grpc-message` in the headers), which is what gRPC clients read.

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use gocost_ingest::grpc;
use http_body_util::BodyExt;

/// gRPC's media type (`application/grpc+proto` is the same with the codec named).
pub(crate) const CONTENT_TYPE: &str = "application/grpc";

/// Whether a request (or answer) is gRPC by its `Content-Type`.
pub(crate) fn is_grpc(h: &HeaderMap) -> bool {
    h.get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            let media = v.split(';').next().unwrap_or("").trim();
            media.eq_ignore_ascii_case(CONTENT_TYPE)
                || media
                    .get(..CONTENT_TYPE.len() + 1)
                    .is_some_and(|p| p.eq_ignore_ascii_case("application/grpc+"))
        })
}

/// A successful unary call: `msg` as one message, `grpc-status: 0` in the trailers.
pub(crate) fn ok(msg: &[u8]) -> Response {
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from_static("0"));
    let body = http_body_util::Full::new(Bytes::from(grpc::frame(msg)))
        .with_trailers(async move { Some(Ok(trailers)) });
    let mut r = Response::new(Body::new(body));
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    r
}

/// A failed call, trailers-only: HTTP 200 with the status in the headers.
pub(crate) fn status(code: u32, msg: &str) -> Response {
    let mut r = Response::new(Body::empty());
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    h.insert("grpc-status", HeaderValue::from(code));
    if let Ok(v) = HeaderValue::from_str(&grpc::percent_encode(msg)) {
        h.insert("grpc-message", v);
    }
    r
}

/// Middleware, outermost: a gRPC request's answer that is not already gRPC's (an HTTP
/// error of any layer: 401, 403, 404, 413, 429, 503…) becomes a trailers-only status with
/// the error's message (its JSON `error`, already scrubbed of tenant names), the HTTP
/// status mapped by [`grpc::code_for_http`] and a `Retry-After` named in the message.
pub(crate) async fn errors(req: Request, next: Next) -> Response {
    if !is_grpc(req.headers()) {
        return next.run(req).await;
    }
    let resp = next.run(req).await;
    if resp.headers().contains_key("grpc-status")
        || (resp.status() == StatusCode::OK && is_grpc(resp.headers()))
    {
        return resp;
    }
    let code = grpc::code_for_http(resp.status().as_u16());
    let retry = resp
        .headers()
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let bytes = axum::body::to_bytes(resp.into_body(), 64 << 10)
        .await
        .unwrap_or_default();
    let mut msg = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_string))
        .unwrap_or_else(|| String::from_utf8_lossy(&bytes).trim().to_string());
    if let Some(s) = retry {
        msg.push_str(&format!(" (retry after {s} s)"));
    }
    status(code, &msg)
}
