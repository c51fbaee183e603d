//! `/api/v1/regressions` over a store: series that differ only in `version` are one target,
//! and a change of `version` is a build change that is judged once both sides have enough
//! CPU profiles.

use std::sync::{Arc, RwLock};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use gocost_server::{AppState, HealthSource, router};
use gocost_store::{Options, SeriesKey, Store};
use tower::ServiceExt;

const MIN: i64 = 60_000_000_000;
const T0: i64 = 1_800_000_000_000_000_000;

fn app(name: &str, before: i64, after: i64) -> axum::Router {
    let dir = std::env::temp_dir().join(format!("gocost-regress-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (store, _) = std::thread::spawn(move || Store::open(Options::new(&dir)))
        .join()
        .unwrap()
        .unwrap();
    let cpu = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/profiles/cpu.pb.gz"),
    )
    .unwrap();
    let key = |version: &str| {
        SeriesKey::new(
            "cpu",
            [
                ("job".to_string(), "api".to_string()),
                ("instance".to_string(), "a:1".to_string()),
                ("version".to_string(), version.to_string()),
            ],
        )
    };
    for m in 0..before + after {
        let v = if m < before { "1.0" } else { "1.1" };
        store.append(&key(v), T0 + m * MIN, &cpu).unwrap();
    }
    let health: HealthSource = Arc::new(RwLock::new(Box::new(Vec::new)));
    router(AppState::new(Arc::new(store), health))
}

async fn get(app: &axum::Router, uri: &str) -> (StatusCode, serde_json::Value) {
    let resp = app
        .clone()
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let body = axum::body::to_bytes(resp.into_body(), 64 << 20)
        .await
        .unwrap();
    (status, serde_json::from_slice(&body).unwrap())
}

fn uri(query: &str) -> String {
    format!(
        "/api/v1/regressions?query={query}&from={}&to={}",
        T0 / 1_000_000_000,
        (T0 + 60 * MIN) / 1_000_000_000
    )
}

#[tokio::test]
async fn a_version_change_is_judged_per_target() {
    let app = app("judged", 10, 10);
    let (code, doc) = get(&app, &uri("cpu%7Bjob%3D%22api%22%7D")).await;
    assert_eq!(code, StatusCode::OK, "{doc}");
    let targets = doc.as_array().unwrap();
    assert_eq!(targets.len(), 1, "{doc:#}");
    let t = &targets[0];
    assert_eq!(
        t["labels"],
        serde_json::json!({"instance": "a:1", "job": "api"})
    );
    assert_eq!(t["profiles"], 20);
    let changes = t["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 1, "{doc:#}");
    let c = &changes[0];
    assert_eq!(c["before"]["version"], "1.0");
    assert_eq!(c["after"]["version"], "1.1");
    // The same recorded profile on both sides: its build ID, and nothing got slower.
    assert_eq!(c["before"]["build_id"], c["after"]["build_id"]);
    assert_eq!(c["at_ms"], (T0 + 10 * MIN) / 1_000_000);
    assert_eq!(c["compared"], true, "{c:#}");
    assert_eq!(
        (c["before_profiles"].as_u64(), c["after_profiles"].as_u64()),
        (Some(10), Some(9))
    );
    assert_eq!(c["regressions"], serde_json::json!([]));
}

#[tokio::test]
async fn too_few_profiles_and_bad_queries() {
    let app = app("few", 10, 4);
    let (code, doc) = get(&app, &uri("cpu")).await;
    assert_eq!(code, StatusCode::OK, "{doc}");
    let c = &doc[0]["changes"][0];
    assert_eq!(c["compared"], false, "{c:#}");
    assert!(c["note"].as_str().unwrap().contains("8 per side"), "{c:#}");
    let (code, doc) = get(&app, &uri("heap")).await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{doc}");
    // Nothing matched is an empty answer, not an error.
    let (code, doc) = get(&app, &uri("cpu%7Bjob%3D%22nope%22%7D")).await;
    assert_eq!(code, StatusCode::OK, "{doc}");
    assert_eq!(doc, serde_json::json!([]));
}
