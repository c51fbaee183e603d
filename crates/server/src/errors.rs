//! The one error → status table, and every error answer's shape.
//!
//! [`ApiError`] is every error a route answers: user mistakes (a bad selector, time or
//! option, an unknown kind, profiles the request asks to merge that cannot be merged, a bad
//! push) are 4xx naming the problem; only gocost's own failures are 500. Its
//! `IntoResponse` is the table: each variant's status, headers (`Retry-After`,
//! `WWW-Authenticate`) and the body `{"error": "..."}` ([`error_body`]). Library errors come
//! in through `From` (`gocost_store::Error`, `gocost_ingest::Error`, `gocost_report::Error`,
//! `MergeError`, a query's `OverBudget`), so a handler says `?` and the table decides.
//!
//! [`json_errors`] makes the answers nobody built from an [`ApiError`] the same shape:
//! axum's own rejections (a bad query string, an unknown route: 404, a wrong method: 405, a
//! body over the limit: 413) and the limits checked there (a URI over [`MAX_URI`]: 414,
//! headers over [`MAX_HEADERS`]: 431). Messages never show the reserved `__tenant__`
//! matcher the access guard adds to selectors.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Longest request target (path and query) accepted.
pub const MAX_URI: usize = 16 << 10;
/// Most bytes of request headers accepted (names and values).
pub const MAX_HEADERS: usize = 64 << 10;

/// Every error the server answers, by what went wrong; [`IntoResponse`] maps each to its
/// status (the table is that one `match`).
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request is wrong (a selector, time, range, option or body), including
    /// profiles it asks to merge that cannot be merged.
    #[error("{0}")]
    BadRequest(String),
    /// 401 with `WWW-Authenticate`: no token, or not a known one.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: the token lacks the scope or the tenant.
    #[error("{0}")]
    Forbidden(String),
    /// 404: nothing of that name (a trace, a route).
    #[error("{0}")]
    NotFound(String),
    /// 413: a body over the `[limits] max_body` cap.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// 415: a push in a content type gocost does not read.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 422: a query past its budget (`[server] query_max_*`); the same query will not fit
    /// later either.
    #[error("{0}")]
    TooBig(String),
    /// 429 with `Retry-After`: a tenant over its push rate or series limit.
    #[error("{msg}")]
    TooManyRequests { msg: String, retry_after: u64 },
    /// 503 with `Retry-After: 1`: too many queries at once.
    #[error("{0}")]
    Busy(String),
    /// 503: the work took longer than the query timeout and was stopped.
    #[error("{0}")]
    Timeout(String),
    /// The store cannot take or read data now: 507 while its disk is full, else 503
    /// (an I/O error, a failed sync); both with `Retry-After`.
    #[error("{msg}")]
    Storage { msg: String, disk_full: bool },
    /// 500: a failure of gocost's own (a bug, a malformed block); logged.
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    /// The status, and the `Retry-After` seconds if the client should retry.
    pub fn status(&self) -> (StatusCode, Option<u64>) {
        match self {
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, None),
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, None),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, None),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, None),
            ApiError::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, None),
            ApiError::UnsupportedMediaType(_) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, None),
            ApiError::TooBig(_) => (StatusCode::UNPROCESSABLE_ENTITY, None),
            ApiError::TooManyRequests { retry_after, .. } => {
                (StatusCode::TOO_MANY_REQUESTS, Some(*retry_after))
            }
            ApiError::Busy(_) => (StatusCode::SERVICE_UNAVAILABLE, Some(1)),
            ApiError::Timeout(_) => (StatusCode::SERVICE_UNAVAILABLE, None),
            ApiError::Storage {
                disk_full: true, ..
            } => (StatusCode::INSUFFICIENT_STORAGE, Some(30)),
            ApiError::Storage { .. } => (StatusCode::SERVICE_UNAVAILABLE, Some(5)),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, None),
        }
    }

    /// The same error about a write: a storage failure says nothing was stored.
    pub(crate) fn not_stored(self) -> ApiError {
        match self {
            ApiError::Storage { msg, disk_full } if !msg.starts_with("not stored") => {
                ApiError::Storage {
                    msg: format!("not stored: {msg}"),
                    disk_full,
                }
            }
            e => e,
        }
    }

    /// The message with a prefix (which side of a diff, which profile of a push).
    pub(crate) fn context(self, what: &str) -> ApiError {
        let p = |m: String| format!("{what}{m}");
        match self {
            ApiError::BadRequest(m) => ApiError::BadRequest(p(m)),
            ApiError::NotFound(m) => ApiError::NotFound(p(m)),
            ApiError::Storage { msg, disk_full } => ApiError::Storage {
                msg: p(msg),
                disk_full,
            },
            e => e,
        }
    }

    /// Connect's error code for the status (`invalid_argument`, `unavailable`, …).
    pub(crate) fn connect_code(&self) -> &'static str {
        match self.status().0 {
            StatusCode::BAD_REQUEST | StatusCode::UNSUPPORTED_MEDIA_TYPE => "invalid_argument",
            StatusCode::TOO_MANY_REQUESTS
            | StatusCode::PAYLOAD_TOO_LARGE
            | StatusCode::UNPROCESSABLE_ENTITY
            | StatusCode::INSUFFICIENT_STORAGE => "resource_exhausted",
            StatusCode::SERVICE_UNAVAILABLE => "unavailable",
            StatusCode::UNAUTHORIZED => "unauthenticated",
            StatusCode::FORBIDDEN => "permission_denied",
            StatusCode::NOT_FOUND => "not_found",
            _ => "internal",
        }
    }

    /// The answer in Connect's shape (`code`, `message`; `error` as in every other answer),
    /// for the Connect push route.
    pub(crate) fn into_connect_response(self) -> Response {
        let code = self.connect_code();
        let msg = self.to_string();
        let mut r = self.into_response();
        *r.body_mut() = Body::from(
            serde_json::json!({ "code": code, "message": msg, "error": msg }).to_string(),
        );
        r.headers_mut().remove(header::CONTENT_LENGTH);
        r
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (code, retry) = self.status();
        // gocost's own failures; load (503) and the store's state (the CLI says when ingest
        // fails and resumes) would repeat per request.
        if let ApiError::Internal(m) = &self {
            tracing::error!(target: "gocost::http", error = %m, "request failed");
        }
        let unauthorized = matches!(self, ApiError::Unauthorized(_));
        let mut r = error_body(code, &self.to_string());
        if let Some(s) = retry
            && let Ok(v) = HeaderValue::from_str(&s.to_string())
        {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        if unauthorized {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"gocost\", charset=\"UTF-8\""),
            );
        }
        r
    }
}

/// What a store error means to a client: a profile it cannot take or profiles it cannot
/// merge are the request's (400); I/O and a failed sync are 503, a full disk 507 (retry
/// later); a malformed block is gocost's (500).
/// A selector the request gave that does not parse: the client's mistake, named with its
/// byte offset.
impl From<gocost_store::SelectorError> for ApiError {
    fn from(e: gocost_store::SelectorError) -> Self {
        ApiError::BadRequest(e.to_string())
    }
}

impl From<gocost_store::Error> for ApiError {
    fn from(e: gocost_store::Error) -> Self {
        use gocost_store::Error as E;
        match e {
            E::BadProfile(_) | E::TooLarge(_) | E::TooDeep(_) => {
                ApiError::BadRequest(e.to_string())
            }
            E::Merge(m) => merge_error(m),
            E::QueryOnly => ApiError::Forbidden(e.to_string()),
            E::DiskFull(_) => ApiError::Storage {
                msg: e.to_string(),
                disk_full: true,
            },
            E::Io(_) | E::NotDurable(_) => ApiError::Storage {
                msg: e.to_string(),
                disk_full: false,
            },
            // A malformed block, and variants the store adds later until they are placed
            // here (the store's error is `#[non_exhaustive]`).
            _ => ApiError::Internal(e.to_string()),
        }
    }
}

/// A push gocost-ingest refused: the error names the field, part or line; its class is
/// the status (400 malformed, 413 past the decompression cap, 415 an unknown encoding).
impl From<gocost_ingest::Error> for ApiError {
    fn from(e: gocost_ingest::Error) -> Self {
        match e {
            gocost_ingest::Error::TooLarge(m) => ApiError::PayloadTooLarge(m),
            gocost_ingest::Error::Unsupported(m) => ApiError::UnsupportedMediaType(m),
            other => ApiError::BadRequest(other.message().to_string()),
        }
    }
}

/// A report option pprof refuses (a bad regexp, an unknown sample index, …).
impl From<gocost_report::Error> for ApiError {
    fn from(e: gocost_report::Error) -> Self {
        ApiError::BadRequest(e.to_string())
    }
}

impl From<gocost_pprof::MergeError> for ApiError {
    fn from(e: gocost_pprof::MergeError) -> Self {
        merge_error(e)
    }
}

/// Profiles the request selected that pprof cannot merge (different sample types or
/// periods): the selection is the user's, so 400, saying how to narrow it.
fn merge_error(e: gocost_pprof::MergeError) -> ApiError {
    ApiError::BadRequest(format!(
        "the selected profiles cannot be merged: {}; narrow the selector (e.g. by job) to profiles of one shape",
        e.0
    ))
}

/// The body of every error answer: `{"error": "..."}`, JSON.
pub fn error_body(code: StatusCode, msg: &str) -> Response {
    (code, axum::Json(serde_json::json!({ "error": msg }))).into_response()
}

fn json_error(code: StatusCode, msg: String) -> Response {
    error_body(code, &msg)
}

/// Removes the reserved tenant matcher from a message (`cpu{__tenant__="t",job="a"}` →
/// `cpu{job="a"}`).
pub fn scrub_tenant(msg: &str) -> String {
    const KEY: &str = "__tenant__";
    let mut out = String::with_capacity(msg.len());
    let mut rest = msg;
    while let Some(i) = rest.find(KEY) {
        let (before, after) = rest.split_at(i);
        let after = &after[KEY.len()..];
        // The operator, then a quoted (possibly escaped) value.
        let op_len = ["!~", "=~", "!=", "="]
            .iter()
            .find(|op| after.trim_start().starts_with(**op))
            .map(|op| after.len() - after.trim_start().len() + op.len());
        let Some(op_len) = op_len else {
            out.push_str(before);
            out.push_str("(tenant)");
            rest = after;
            continue;
        };
        let v = after[op_len..].trim_start();
        let quoted_end = v.strip_prefix('"').and_then(|q| {
            let mut esc = false;
            for (j, c) in q.char_indices() {
                match (esc, c) {
                    (true, _) => esc = false,
                    (false, '\\') => esc = true,
                    (false, '"') => return Some(j + 2),
                    _ => {}
                }
            }
            None
        });
        let end = quoted_end.unwrap_or(v.len());
        let mut tail = &v[end..];
        let mut before = before;
        if let Some(t) = tail.trim_start().strip_prefix(',') {
            tail = t.trim_start();
        } else if let Some(b) = before.trim_end().strip_suffix(',') {
            before = b;
        }
        out.push_str(before);
        rest = tail;
    }
    out.push_str(rest);
    out
}

fn scrub_json(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::String(s) if s.contains("__tenant__") => *s = scrub_tenant(s),
        serde_json::Value::Array(a) => a.iter_mut().for_each(scrub_json),
        serde_json::Value::Object(o) => o.values_mut().for_each(scrub_json),
        _ => {}
    }
}

/// The outermost middleware: request-size limits first, then every 4xx/5xx answer made JSON.
pub(crate) async fn json_errors(req: Request, next: Next) -> Response {
    let uri_len = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if uri_len > MAX_URI {
        return json_error(
            StatusCode::URI_TOO_LONG,
            format!("the request URI has {uri_len} bytes, more than the {MAX_URI} accepted"),
        );
    }
    let header_bytes: usize = req
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    if header_bytes > MAX_HEADERS {
        return json_error(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            format!(
                "the request headers have {header_bytes} bytes, more than the {MAX_HEADERS} accepted"
            ),
        );
    }
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let resp = next.run(req).await;
    let code = resp.status();
    if !(code.is_client_error() || code.is_server_error()) {
        return resp;
    }
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    // OTLP's errors are a protobuf `google.rpc.Status` (built with the tenant scrubbed).
    if resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes() == crate::routes::push::OTLP_PROTOBUF.as_bytes())
    {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, 4 << 20)
        .await
        .unwrap_or_default();
    if is_json {
        if !bytes.windows(10).any(|w| w == b"__tenant__") {
            return Response::from_parts(parts, Body::from(bytes));
        }
        if let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(&bytes) {
            scrub_json(&mut v);
            parts.headers.remove(header::CONTENT_LENGTH);
            return Response::from_parts(parts, Body::from(v.to_string()));
        }
    }
    let text = String::from_utf8_lossy(&bytes).trim().to_string();
    let msg = match code {
        StatusCode::NOT_FOUND if text.is_empty() => {
            format!("no such endpoint: {method} {path} (the API is in API.md)")
        }
        StatusCode::METHOD_NOT_ALLOWED => {
            let allow = parts
                .headers
                .get(header::ALLOW)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            format!("{method} is not allowed for {path} (allowed: {allow})")
        }
        _ if text.is_empty() => code.canonical_reason().unwrap_or("error").to_lowercase(),
        _ => text,
    };
    let msg = scrub_tenant(&msg);
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let body = serde_json::json!({ "error": msg }).to_string();
    Response::from_parts(parts, Body::from(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn answer(e: ApiError) -> (StatusCode, Option<String>, serde_json::Value) {
        let r = e.into_response();
        let retry = r
            .headers()
            .get(header::RETRY_AFTER)
            .map(|v| v.to_str().unwrap_or_default().to_string());
        let code = r.status();
        let b = axum::body::to_bytes(r.into_body(), 1 << 20)
            .await
            .unwrap_or_default();
        (code, retry, serde_json::from_slice(&b).unwrap_or_default())
    }

    #[tokio::test]
    async fn the_table() {
        use gocost_store::Error as E;
        let bad_profile = match gocost_pprof::decode(b"\x0a\xff") {
            Err(e) => e,
            Ok(_) => panic!("garbage decoded"),
        };
        for (e, code, retry, msg) in [
            (ApiError::BadRequest("b".into()), 400, None, "b"),
            (ApiError::Unauthorized("u".into()), 401, None, "u"),
            (ApiError::Forbidden("f".into()), 403, None, "f"),
            (ApiError::NotFound("n".into()), 404, None, "n"),
            (ApiError::PayloadTooLarge("p".into()), 413, None, "p"),
            (ApiError::UnsupportedMediaType("m".into()), 415, None, "m"),
            (ApiError::TooBig("t".into()), 422, None, "t"),
            (
                ApiError::TooManyRequests {
                    msg: "r".into(),
                    retry_after: 7,
                },
                429,
                Some("7"),
                "r",
            ),
            (ApiError::Busy("b".into()), 503, Some("1"), "b"),
            (ApiError::Timeout("t".into()), 503, None, "t"),
            (ApiError::Internal("i".into()), 500, None, "i"),
            // Store errors: the request's (400), the disk's (507/503, retry), gocost's (500).
            (E::BadProfile(bad_profile).into(), 400, None, "bad profile"),
            (E::TooLarge(9).into(), 400, None, "9 bytes"),
            (E::TooDeep("deep".into()).into(), 400, None, "deep"),
            (
                E::Merge(gocost_pprof::MergeError("types differ".into())).into(),
                400,
                None,
                "cannot be merged: types differ",
            ),
            (E::DiskFull("full".into()).into(), 507, Some("30"), "full"),
            (
                ApiError::from(E::NotDurable("fsync".into())).not_stored(),
                503,
                Some("5"),
                "not stored: fsync",
            ),
            (
                E::Io(std::io::Error::other("eio")).into(),
                503,
                Some("5"),
                "store I/O: eio",
            ),
            (E::Block("b1: bad".into()).into(), 500, None, "b1: bad"),
            (
                gocost_ingest::Error::Malformed("line 2: no value".into()).into(),
                400,
                None,
                "line 2",
            ),
            (
                gocost_ingest::Error::TooLarge("body (pprof): too large".into()).into(),
                413,
                None,
                "body (pprof)",
            ),
            (
                gocost_ingest::Error::Unsupported("Content-Encoding \"br\"".into()).into(),
                415,
                None,
                "Content-Encoding",
            ),
            (
                gocost_report::Error::NoMatch("bad focus".into()).into(),
                400,
                None,
                "bad focus",
            ),
            (
                gocost_store::Selector::parse("cpu{job}")
                    .expect_err("no operator")
                    .into(),
                400,
                None,
                "at byte 4: a matcher without an operator",
            ),
        ] {
            let shown = format!("{e:?}");
            let (got, got_retry, body) = answer(e).await;
            assert_eq!(got.as_u16(), code, "{shown}");
            assert_eq!(got_retry.as_deref(), retry, "{shown}");
            let m = body["error"].as_str().unwrap_or_default();
            assert!(m.contains(msg), "{shown}: {body}");
        }
        // 401 says how to authenticate; a write's storage error says nothing was kept, once.
        let r = ApiError::Unauthorized("x".into()).into_response();
        assert!(r.headers().contains_key(header::WWW_AUTHENTICATE));
        let e = ApiError::from(E::DiskFull("not stored: disk full".into())).not_stored();
        assert_eq!(e.to_string(), "not stored: disk full");
        // Connect's shape for the push route.
        let r = ApiError::TooManyRequests {
            msg: "slow down".into(),
            retry_after: 3,
        }
        .into_connect_response();
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        let b = axum::body::to_bytes(r.into_body(), 1 << 10)
            .await
            .unwrap_or_default();
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap_or_default();
        assert_eq!(v["code"], "resource_exhausted");
        assert_eq!(v["message"], "slow down");
        assert_eq!(v["error"], "slow down");
    }

    #[test]
    fn the_tenant_matcher_is_removed() {
        for (a, b) in [
            (r#"cpu{__tenant__="t",job="a"}"#, r#"cpu{job="a"}"#),
            (r#"cpu{job="a",__tenant__="t"}"#, r#"cpu{job="a"}"#),
            (
                r#"no profiles match cpu{__tenant__="t\"x"}"#,
                "no profiles match cpu{}",
            ),
            (
                r#"{job="a", __tenant__ != "x", k="v"}"#,
                r#"{job="a", k="v"}"#,
            ),
            ("nothing here", "nothing here"),
        ] {
            assert_eq!(scrub_tenant(a), b, "{a}");
        }
    }
}
