//! `--requests FILE`: the requests a run rotates through, one per line.
//!
//! ```text
//! # comments and blank lines are skipped
//! /health                          a path: GET
//! GET /api/orders?id=17
//! POST /api/orders {"item": 3}     the rest of the line is the body
//! DELETE http://127.0.0.1:8080/api/orders/17
//! ```
//!
//! A full URL must name the run's host and port (the connections are to it). Request `i` of
//! the run is line `i mod n`.

use bytes::Bytes;
use hyper::Method;

use crate::Target;

/// Most requests a file may hold.
pub const MAX_REQUESTS: usize = 100_000;
/// Longest line (with its body).
pub const MAX_LINE: usize = 64 * 1024;

/// One request of the rotation.
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    pub method: Method,
    /// Path and query, `/` first.
    pub path: String,
    pub body: Bytes,
}

/// Parses a requests file against the run's target; errors name the line.
pub fn parse(text: &str, target: &Target) -> Result<Vec<Spec>, String> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if raw.len() > MAX_LINE {
            return Err(format!("line {n}: longer than {MAX_LINE} bytes"));
        }
        if out.len() == MAX_REQUESTS {
            return Err(format!("line {n}: more than {MAX_REQUESTS} requests"));
        }
        let (first, rest) = split_word(line);
        let (method, (url, body)) = if first.starts_with('/') || first.contains("://") {
            (Method::GET, (first, rest))
        } else {
            if first.len() > 16 || !first.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(format!(
                    "line {n}: {:?} is neither a method (GET, POST, …) nor a path (/…)",
                    clip(first)
                ));
            }
            let m = Method::from_bytes(first.as_bytes())
                .map_err(|_| format!("line {n}: {:?} is not an HTTP method", clip(first)))?;
            let (url, body) = split_word(rest);
            if url.is_empty() {
                return Err(format!("line {n}: {first} without a path"));
            }
            (m, (url, body))
        };
        let path = if url.starts_with('/') {
            url.to_string()
        } else {
            let t = Target::parse(url).map_err(|e| format!("line {n}: {e}"))?;
            if t.host != target.host || t.port != target.port || t.tls != target.tls {
                return Err(format!(
                    "line {n}: {} is not the run's {}://{}:{} (the connections are to it)",
                    clip(url),
                    if target.tls { "https" } else { "http" },
                    target.host,
                    target.port
                ));
            }
            t.path
        };
        if path.bytes().any(|b| b.is_ascii_control() || b == b' ') {
            return Err(format!("line {n}: a control character in the path"));
        }
        if path.parse::<hyper::Uri>().is_err() {
            return Err(format!("line {n}: {:?} is not a valid path", clip(&path)));
        }
        out.push(Spec {
            method,
            path,
            body: Bytes::copy_from_slice(body.as_bytes()),
        });
    }
    if out.is_empty() {
        return Err("no requests (one per line: [METHOD] /path [body])".into());
    }
    Ok(out)
}

/// The first space-separated word and the rest (trimmed).
fn split_word(s: &str) -> (&str, &str) {
    match s.split_once([' ', '\t']) {
        Some((a, b)) => (a, b.trim()),
        None => (s, ""),
    }
}

fn clip(s: &str) -> &str {
    match s.char_indices().nth(64) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Target {
        Target::parse("http://127.0.0.1:8080/").unwrap()
    }

    #[test]
    fn lines_become_requests() {
        let text = "# orders\n\n/health\nGET /api/orders?id=17\nPOST /api/orders {\"item\": 3}\n\
                    DELETE http://127.0.0.1:8080/api/orders/17\n";
        let r = parse(text, &target()).unwrap();
        assert_eq!(r.len(), 4);
        assert_eq!(
            (r[0].method.as_str(), r[0].path.as_str()),
            ("GET", "/health")
        );
        assert_eq!(r[1].path, "/api/orders?id=17");
        assert_eq!(r[2].method, Method::POST);
        assert_eq!(&r[2].body[..], b"{\"item\": 3}");
        assert_eq!(
            (r[3].method.as_str(), r[3].path.as_str()),
            ("DELETE", "/api/orders/17")
        );
    }

    #[test]
    fn bad_lines_are_named() {
        for (text, want) in [
            ("/a\nget /b\n", "line 2: \"get\" is neither a method"),
            ("POST\n", "line 1: POST without a path"),
            (
                "GET http://other:80/x\n",
                "line 1: http://other:80/x is not the run's http://127.0.0.1:8080",
            ),
            (
                "GET https://127.0.0.1:8080/x\n",
                "line 1: https://127.0.0.1:8080/x is not the run's http://",
            ),
            ("# nothing\n\n", "no requests"),
        ] {
            let e = parse(text, &target()).unwrap_err();
            assert!(e.starts_with(want), "{text:?}: {e}");
        }
        let long = format!("/a {}\n", "x".repeat(MAX_LINE));
        assert!(parse(&long, &target()).unwrap_err().contains("longer than"));
    }
}
