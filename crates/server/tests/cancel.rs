//! A query past the query timeout is answered 503 and its work is stopped (the merge loops
//! see the cancellation flag and unwind), not left running to its end. Own test binary: the
//! timeout is process-wide.

use std::sync::{Arc, RwLock};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use gocost_server::{AppState, HealthSource, router};
use gocost_store::{Options, SeriesKey, Store};
use tower::ServiceExt;

const MIN: i64 = 60_000_000_000;
const T0: i64 = 1_800_000_000_000_000_000;

async fn get(app: &axum::Router, uri: &str) -> (StatusCode, String) {
    let resp = app
        .clone()
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let body = axum::body::to_bytes(resp.into_body(), 64 << 20)
        .await
        .unwrap();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// `gocost_query_cancelled_total` on a /metrics page; missing, the test fails.
fn cancelled(text: &str) -> f64 {
    let v = text
        .lines()
        .find_map(|l| l.strip_prefix("gocost_query_cancelled_total "))
        .unwrap_or_else(|| panic!("no gocost_query_cancelled_total in /metrics:\n{text}"));
    v.trim().parse().expect("a number")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_past_its_timeout_is_stopped() {
    let dir = std::env::temp_dir().join(format!("gocost-cancel-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let cpu = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/profiles/cpu.pb.gz"),
    )
    .unwrap();
    let store = std::thread::spawn(move || {
        let (store, _) = Store::open(Options::new(&dir)).unwrap();
        let key = SeriesKey::new("cpu", [("job".to_string(), "demo".to_string())]);
        for m in 0..300 {
            store.append(&key, T0 + m * MIN, &cpu).unwrap();
        }
        store
    })
    .join()
    .unwrap();
    let health: HealthSource = Arc::new(RwLock::new(Box::new(Vec::new)));
    let app = router(AppState::new(Arc::new(store), health));
    // Merging 300 profiles takes far longer than a millisecond.
    gocost_server::set_query_timeout(std::time::Duration::from_millis(1));
    let uri = format!(
        "/api/v1/flame?query=cpu&from={}&to={}",
        T0 / 1_000_000_000,
        (T0 + 300 * MIN) / 1_000_000_000
    );
    let (status, body) = get(&app, &uri).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(
        body.contains("query_timeout") && body.contains("stopped"),
        "{body}"
    );
    // The abandoned work unwinds at its next checkpoint.
    let mut n = 0.0;
    for _ in 0..600 {
        n = cancelled(&get(&app, "/metrics").await.1);
        if n >= 1.0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(n >= 1.0, "the timed-out query was not stopped");
    gocost_server::set_query_timeout(gocost_server::QUERY_TIMEOUT);
    let (status, body) = get(&app, &uri).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}
