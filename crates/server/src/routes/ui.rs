//! The web UI: the files of `ui/` (plain ES modules and CSS, no build step) compiled into
//! the binary, served at `/` (the page) and `/ui/<file>`. Responses carry an `ETag` (a hash
//! of the bytes) and `Cache-Control: no-cache`, so a browser revalidates each load and gets
//! `304 Not Modified` until the binary changes.
//!
//! For working on the UI, `GOCOST_UI_DIR=ui gocost serve` reads the same files from that
//! directory on every request instead, so an edit shows on reload without a rebuild.

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $ct:expr) => {
        Asset {
            name: $name,
            content_type: $ct,
            body: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../ui/", $name)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

static ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("style.css", "text/css; charset=utf-8"),
    asset!("favicon.svg", "image/svg+xml"),
    asset!("app.js", JS),
    asset!("api.js", JS),
    asset!("format.js", JS),
    asset!("flame.js", JS),
    asset!("graph.js", JS),
    asset!("charts.js", JS),
    asset!("explore.js", JS),
    asset!("compare.js", JS),
    asset!("runtime.js", JS),
    asset!("insights.js", JS),
    asset!("traces.js", JS),
    asset!("loadruns.js", JS),
];

/// 64-bit FNV-1a of the bytes, as the ETag.
fn etag(body: &[u8]) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for &b in body {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("\"{h:016x}\"")
}

fn serve(name: &str, req: &HeaderMap) -> Response {
    let Some(a) = ASSETS.iter().find(|a| a.name == name) else {
        return (StatusCode::NOT_FOUND, "no such file").into_response();
    };
    // Only names from the list above are read, so a request cannot name another path; a
    // development aid, so the small synchronous read is acceptable here.
    let from_disk = std::env::var_os("GOCOST_UI_DIR")
        .and_then(|d| std::fs::read(std::path::Path::new(&d).join(a.name)).ok());
    let body: std::borrow::Cow<'static, [u8]> = match from_disk {
        Some(b) => b.into(),
        None => a.body.into(),
    };
    let tag = etag(&body);
    let fresh = req
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag));
    let mut r = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        match body {
            std::borrow::Cow::Borrowed(b) => b.into_response(),
            std::borrow::Cow::Owned(v) => v.into_response(),
        }
    };
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(a.content_type),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(v) = HeaderValue::from_str(&tag) {
        h.insert(header::ETAG, v);
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}

/// `GET /`: the page (every view; the view and its state are in the query string).
pub async fn index(req: HeaderMap) -> Response {
    serve("index.html", &req)
}

/// `GET /ui/{file}`: one embedded asset.
pub async fn file(Path(name): Path<String>, req: HeaderMap) -> Response {
    serve(&name, &req)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_module_the_page_imports_is_embedded() {
        for a in ASSETS.iter().filter(|a| a.name.ends_with(".js")) {
            let text = std::str::from_utf8(a.body).unwrap();
            for line in text.lines().filter(|l| l.starts_with("import ")) {
                let Some(spec) = line.split(['\'', '"']).nth(1) else {
                    continue;
                };
                let name = spec.trim_start_matches("./");
                assert!(
                    ASSETS.iter().any(|b| b.name == name),
                    "{} imports {spec}, which is not embedded",
                    a.name
                );
            }
        }
    }
}
