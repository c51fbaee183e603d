//! Load runs kept by the server (`gocost load --store`): upload, list, the run's JSON back
//! as it was sent, its HTML report in a sandbox, and clear errors for what is not a run.

use std::sync::{Arc, RwLock};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use gocost_server::{AppState, HealthSource, router};
use gocost_store::{Options, Store};
use tower::ServiceExt;

fn app(name: &str) -> axum::Router {
    let dir = std::env::temp_dir().join(format!("gocost-loadruns-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (store, _) = std::thread::spawn(move || Store::open(Options::new(&dir)))
        .join()
        .unwrap()
        .unwrap();
    let health: HealthSource = Arc::new(RwLock::new(Box::new(Vec::new)));
    router(AppState::new(Arc::new(store), health))
}

async fn call(
    app: &axum::Router,
    req: Request<Body>,
) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let resp = app.clone().oneshot(req).await.unwrap();
    let (status, headers) = (resp.status(), resp.headers().clone());
    let body = axum::body::to_bytes(resp.into_body(), 64 << 20)
        .await
        .unwrap();
    (status, headers, body.to_vec())
}

async fn post(app: &axum::Router, body: &serde_json::Value) -> (StatusCode, serde_json::Value) {
    let req = Request::post("/api/v1/loadruns")
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let (s, _, b) = call(app, req).await;
    (
        s,
        serde_json::from_slice(&b).unwrap_or(serde_json::Value::Null),
    )
}

async fn get(app: &axum::Router, uri: &str) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    call(app, Request::get(uri).body(Body::empty()).unwrap()).await
}

fn run(p99: f64, at: i64) -> serde_json::Value {
    serde_json::json!({
        "url": "http://127.0.0.1:8080/", "model": "open", "rate": 100.0, "protocol": "HTTP/1.1",
        "duration_seconds": 2.0, "measured_from_unix_ns": at, "requests": 200, "errors": 0,
        "throughput": 100.0,
        "latency": {"p50": 0.01, "p90": 0.02, "p99": p99, "p999": p99, "max": p99, "mean": 0.012},
        "seconds": [
            {"t": 0, "requests": 100, "errors": 0, "late": 0,
             "latency": {"p50": 0.01, "p90": 0.02, "p99": p99, "p999": p99, "max": p99, "mean": 0.012}},
            {"t": 1, "requests": 100, "errors": 0, "late": 0,
             "latency": {"p50": 0.01, "p90": 0.02, "p99": p99, "p999": p99, "max": p99, "mean": 0.012}}
        ],
        "service": {"cpu": {"per_request_seconds": 0.0002}, "cost": {"total_per_million": 0.5, "rates": {"currency": "EUR"}}}
    })
}

#[tokio::test]
async fn runs_are_stored_listed_and_given_back() {
    let app = app("store");
    let now = 1_800_000_000_000_000_000i64;
    let a = run(0.030, now);
    let (s, r) = post(
        &app,
        &serde_json::json!({"name": "checkout", "run": a, "html": "<!doctype html><p>report</p>"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let id_a = r["id"].as_str().unwrap().to_string();
    let (s, r) = post(
        &app,
        &serde_json::json!({"run": run(0.045, now + 60_000_000_000)}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let id_b = r["id"].as_str().unwrap().to_string();

    let from = now / 1_000_000_000 - 10;
    let (s, _, body) = get(
        &app,
        &format!("/api/v1/loadruns?from={from}&to={}", from + 600),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let list: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["id"], id_b.as_str(), "newest first");
    assert_eq!(list[0]["name"], "load", "the default name");
    assert_eq!(list[1]["name"], "checkout");
    assert_eq!(list[1]["latency"]["p99"], 0.030);
    assert_eq!(list[1]["cost_per_million"], 0.5);
    assert_eq!(list[1]["currency"], "EUR");
    assert_eq!(
        (list[1]["report"].as_bool(), list[0]["report"].as_bool()),
        (Some(true), Some(false))
    );
    let (s, _, body) = get(
        &app,
        &format!(
            "/api/v1/loadruns?query=loadrun%7Bjob%3D%22checkout%22%7D&from={from}&to={}",
            from + 600
        ),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&body)
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // The run's JSON as gocost load wrote it: what gocost compare reads.
    let (s, _, body) = get(&app, &format!("/api/v1/loadruns/{id_a}")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&body).unwrap(),
        a
    );

    let (s, h, body) = get(&app, &format!("/api/v1/loadruns/{id_a}/report")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body, b"<!doctype html><p>report</p>");
    assert_eq!(h["content-type"], "text/html; charset=utf-8");
    assert_eq!(
        h["content-security-policy"], "sandbox allow-scripts",
        "an uploaded page gets no origin"
    );
    let (s, _, body) = get(&app, &format!("/api/v1/loadruns/{id_b}/report")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(String::from_utf8_lossy(&body).contains("without its HTML report"));
    for missing in ["0000000000000000-00000000", "../../etc/passwd", "x"] {
        let (s, _, _) = get(&app, &format!("/api/v1/loadruns/{missing}")).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{missing}");
    }
}

#[tokio::test]
async fn what_is_not_a_run_is_a_clear_400() {
    let app = app("bad");
    let cases = [
        (serde_json::json!([1, 2]), "want {\"run\""),
        (
            serde_json::json!({"run": {"seconds": []}}),
            "measured_from_unix_ns",
        ),
        (
            serde_json::json!({"run": {"measured_from_unix_ns": 1, "seconds": []}}),
            "\"latency\"",
        ),
        (
            serde_json::json!({"name": "a b", "run": run(0.1, 1)}),
            "name",
        ),
        (serde_json::json!({"run": run(0.1, 1), "html": 3}), "html"),
    ];
    for (body, want) in cases {
        let (s, r) = post(&app, &body).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
        assert!(r["error"].as_str().unwrap().contains(want), "{body}: {r}");
    }
    let req = Request::post("/api/v1/loadruns")
        .body(Body::from("not json"))
        .unwrap();
    let (s, _, b) = call(&app, req).await;
    assert_eq!(
        s,
        StatusCode::BAD_REQUEST,
        "{}",
        String::from_utf8_lossy(&b)
    );
}
