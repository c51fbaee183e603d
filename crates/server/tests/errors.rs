//! Every error the server answers is JSON `{"error": ...}` (404, 405, 413, 414, 431, query
//! string errors), and times are parsed strictly.

use std::sync::{Arc, RwLock};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use gocost_server::{AppState, HealthSource, parse_time, router};
use gocost_store::{Options, SeriesKey, Store};
use tower::ServiceExt;

fn app() -> axum::Router {
    let dir = std::env::temp_dir().join(format!("gocost-errors-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store = std::thread::spawn(move || {
        let (store, _) = Store::open(Options::new(&dir)).unwrap();
        let cpu = std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../testdata/profiles/cpu.pb.gz"),
        )
        .unwrap();
        let key = SeriesKey::new("cpu", [("job".to_string(), "demo".to_string())]);
        store.append(&key, 1_700_000_000_000_000_000, &cpu).unwrap();
        store
    })
    .join()
    .unwrap();
    let health: HealthSource = Arc::new(RwLock::new(Box::new(Vec::new)));
    router(AppState::new(Arc::new(store), health))
}

async fn call(app: &axum::Router, req: Request<Body>) -> (StatusCode, serde_json::Value) {
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let ct = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    if !status.is_success() {
        assert!(ct.starts_with("application/json"), "{status}: {ct}");
    }
    let v = serde_json::from_slice(&body).unwrap_or_else(|e| {
        panic!(
            "{status}: not JSON ({e}): {}",
            String::from_utf8_lossy(&body)
        )
    });
    (status, v)
}

fn get(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).unwrap()
}

#[tokio::test]
async fn every_error_is_json() {
    let app = app();
    let cases: Vec<(Request<Body>, StatusCode, &str)> = vec![
        (
            get("/api/v1/nope"),
            StatusCode::NOT_FOUND,
            "no such endpoint: GET /api/v1/nope",
        ),
        (
            Request::post("/api/v1/top").body(Body::empty()).unwrap(),
            StatusCode::METHOD_NOT_ALLOWED,
            "POST is not allowed for /api/v1/top",
        ),
        (
            get("/api/v1/top?query=cpu&nodecount=x"),
            StatusCode::BAD_REQUEST,
            "nodecount",
        ),
        (
            get(&format!("/api/v1/top?query=cpu&x={}", "a".repeat(20_000))),
            StatusCode::URI_TOO_LONG,
            "URI",
        ),
        (
            Request::get("/api/v1/series")
                .header("x-big", "b".repeat(70_000))
                .body(Body::empty())
                .unwrap(),
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers",
        ),
        (
            Request::post("/ingest?name=a.cpu&format=folded")
                .header("content-length", "1000000000000")
                .body(Body::from("abc"))
                .unwrap(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "max_body setting in [limits]",
        ),
        (
            Request::post("/api/v1/traces?job=a")
                .header("content-length", "100000000")
                .body(Body::from("abc"))
                .unwrap(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "limit of 67108864 bytes (the max_trace_bytes setting in [limits])",
        ),
        (
            // A trace over max_body but under max_trace_bytes is read (and then judged).
            Request::post("/api/v1/traces")
                .body(Body::from(vec![b'x'; 20 << 20]))
                .unwrap(),
            StatusCode::BAD_REQUEST,
            "missing job=",
        ),
        (
            get("/api/v1/top?query=cpu&from=NaN"),
            StatusCode::BAD_REQUEST,
            "bad time",
        ),
    ];
    for (req, want, text) in cases {
        let uri = req.uri().to_string();
        let (status, v) = call(&app, req).await;
        assert_eq!(status, want, "{}: {v}", &uri[..uri.len().min(80)]);
        let msg = v["error"].as_str().unwrap_or_default();
        assert!(msg.contains(text), "{want}: {msg}");
    }
    // The end of time Go prints is a valid `to`.
    let (status, v) = call(
        &app,
        get("/api/v1/top?query=cpu&from=0&to=9999-12-31T23:59:59Z"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
}

#[test]
fn times_are_parsed_strictly() {
    let now = 1_800_000_000_000_000_000;
    for bad in [
        "NaN",
        "nan",
        "inf",
        "-inf",
        "+Inf",
        "-1e300",
        "1e3",
        "1e300",
        "0x10",
        "",
        " ",
        ".",
        "1.",
        "--1",
        "99999999999999",
        "now-",
        "now-x",
        "now+1h",
        "now-300000d",
        "yesterday",
        "2026-13-01T00:00:00Z",
    ] {
        assert!(parse_time(bad, now).is_err(), "{bad:?} parsed");
    }
    for (good, ns) in [
        ("0", 0),
        ("1700000000", 1_700_000_000_000_000_000),
        ("1700000000.5", 1_700_000_000_500_000_000),
        ("-1", -1_000_000_000),
        ("+5", 5_000_000_000),
        ("now", now),
        ("now-1h", now - 3_600_000_000_000),
        ("2026-11-22T10:00:00Z", 1_795_341_600_000_000_000),
        ("9999-12-31T23:59:59Z", i64::MAX),
        ("0001-01-01T00:00:00Z", i64::MIN),
    ] {
        assert_eq!(parse_time(good, now), Ok(ns), "{good:?}");
    }
    // A deterministic sweep of short strings over a time-ish alphabet: never a panic, and
    // what parses as whole seconds is those seconds (the `time` fuzz target's properties).
    let alphabet = b"0123456789.-+eEnaifNIT:Zw ";
    let mut x: u64 = 0x9e3779b97f4a7c15;
    for _ in 0..200_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let len = (x % 12) as usize;
        let s: String = (0..len)
            .map(|i| alphabet[((x >> (i * 5)) % alphabet.len() as u64) as usize] as char)
            .collect();
        let r = parse_time(&s, now);
        if let Ok(secs) = s.trim().parse::<i64>() {
            assert_eq!(r.clone().ok(), secs.checked_mul(1_000_000_000), "{s:?}");
        }
        let l = s.to_ascii_lowercase();
        if l.contains("nan") || l.contains("inf") {
            assert!(r.is_err(), "{s:?}");
        }
    }
}
