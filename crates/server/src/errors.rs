//! Every error answer is the JSON API.md promises, `{"error": "..."}`, whoever made it: the
//! handlers ([`crate::ApiError`]), axum's own rejections (a bad query string, an unknown
//! route: 404, a wrong method: 405, a body over the limit: 413) or the limits checked here
//! (a URI over [`MAX_URI`]: 414, headers over [`MAX_HEADERS`]: 431). Messages never show the
//! reserved `__tenant__` matcher the access guard adds to selectors.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Longest request target (path and query) accepted.
pub const MAX_URI: usize = 16 << 10;
/// Most bytes of request headers accepted (names and values).
pub const MAX_HEADERS: usize = 64 << 10;

fn json_error(code: StatusCode, msg: String) -> Response {
    (code, axum::Json(serde_json::json!({ "error": msg }))).into_response()
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
    use super::scrub_tenant;

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
