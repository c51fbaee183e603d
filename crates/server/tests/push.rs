//! The push routes in-process: real Go profiles pushed as Pyroscope agents send them, read
//! back through the API with the same totals; every refused push says why and stores
//! nothing; tokens from a config apply to pushes.

use std::sync::{Arc, RwLock};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use gocost_server::{AppState, HealthSource, router};
use gocost_store::{Options, Store};
use tower::ServiceExt;

fn testdata(name: &str) -> Vec<u8> {
    std::fs::read(gocost_testkit::profiles_dir().join(name)).unwrap()
}

fn state(name: &str) -> Arc<AppState> {
    let dir = std::env::temp_dir().join(format!("gocost-push-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (store, _) = std::thread::spawn(move || Store::open(Options::new(&dir)))
        .join()
        .unwrap()
        .unwrap();
    let health: HealthSource = Arc::new(RwLock::new(Box::new(Vec::new)));
    AppState::new(Arc::new(store), health)
}

async fn send(
    app: &axum::Router,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> (StatusCode, String) {
    let mut r = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    let resp = app
        .clone()
        .oneshot(r.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let code = resp.status();
    let b = axum::body::to_bytes(resp.into_body(), 64 << 20)
        .await
        .unwrap();
    (code, String::from_utf8_lossy(&b).into_owned())
}

fn total(p: &gocost_pprof::Profile, i: usize) -> i64 {
    p.sample.iter().map(|s| s.value[i]).sum()
}

#[tokio::test]
async fn pushed_go_profiles_read_back_with_their_totals() {
    let app = router(state("roundtrip"));
    let cpu = testdata("cpu.pb.gz");
    let (code, body) = send(
        &app,
        "POST",
        "/ingest?name=goapp%7Benv%3Dprod%2Cregion%3Deu%7D&from=1800000000&until=1800000010&format=pprof&spyName=gospy",
        &[("Content-Type", "binary/octet-stream")],
        cpu.clone(),
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(body, r#"{"profiles":1}"#);
    let want = gocost_pprof::decode(&cpu).unwrap();
    let i = want.sample_index_by_name("cpu").unwrap();
    let (code, body) = send(
        &app,
        "GET",
        "/api/v1/top?query=cpu%7Bjob%3D%22goapp%22%2Cenv%3D%22prod%22%7D&from=1799999990&to=1800000020&sample_index=cpu",
        &[],
        vec![],
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let top: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(top["total"].as_i64().unwrap(), total(&want, i));

    // The same profile through /pyroscope/ingest, gzip'd again as a body encoding, as a heap
    // profile named by its suffix.
    let heap = testdata("heap.pb.gz");
    let raw = gocost_pprof::gunzip(&heap, 64 << 20).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &raw).unwrap();
    let (code, body) = send(
        &app,
        "POST",
        "/pyroscope/ingest?name=goapp.inuse_space&from=1800000000&format=pprof",
        &[("Content-Encoding", "gzip")],
        gz.finish().unwrap(),
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let (_, body) = send(&app, "GET", "/api/v1/series", &[], vec![]).await;
    let series: serde_json::Value = serde_json::from_str(&body).unwrap();
    let keys: Vec<&str> = series
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["key"].as_str().unwrap())
        .collect();
    assert_eq!(
        keys,
        [
            r#"cpu{env="prod",job="goapp",region="eu"}"#,
            r#"heap{job="goapp"}"#
        ]
    );
}

#[tokio::test]
async fn refused_pushes_say_why_and_store_nothing() {
    let app = router(state("refused"));
    let cpu = testdata("cpu.pb.gz");
    // A gzip bomb: 80 MiB of zeros in ~80 KiB, past the 64 MiB decompression cap.
    let bomb = {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&vec![0u8; 80 << 20]).unwrap();
        gz.finish().unwrap()
    };
    for (uri, headers, body, code, want) in [
        (
            "/ingest?format=pprof",
            &[][..],
            cpu.clone(),
            400,
            "missing name",
        ),
        (
            "/ingest?name=a&format=jfr",
            &[],
            cpu.clone(),
            400,
            "format \\\"jfr\\\"",
        ),
        (
            "/ingest?name=a&from=yesterday",
            &[],
            b"a;b 1\n".to_vec(),
            400,
            "from \\\"yesterday\\\"",
        ),
        (
            "/ingest?name=a&format=folded",
            &[],
            b"a;b 1\na;c\n".to_vec(),
            400,
            "line 2",
        ),
        (
            "/ingest?name=a&format=pprof",
            &[],
            cpu[..cpu.len() / 2].to_vec(),
            400,
            "body (pprof)",
        ),
        (
            "/ingest?name=a&format=pprof",
            &[("Content-Type", "multipart/form-data; boundary=XYZ")],
            b"--XYZ\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nx\r\n--XYZ--\r\n"
                .to_vec(),
            400,
            "no part named \\\"profile\\\"",
        ),
        (
            "/ingest?name=a&format=pprof",
            &[("Content-Encoding", "gzip")],
            b"not gzip".to_vec(),
            400,
            "request body",
        ),
        (
            "/ingest?name=a&format=pprof",
            &[("Content-Encoding", "br")],
            b"x".to_vec(),
            415,
            "Content-Encoding \\\"br\\\"",
        ),
        (
            "/ingest?name=a&format=pprof",
            &[("Content-Encoding", "gzip")],
            bomb.clone(),
            413,
            "request body",
        ),
        (
            "/push.v1.PusherService/Push",
            &[("Content-Type", "application/json")],
            b"{}".to_vec(),
            415,
            "application/proto",
        ),
        (
            "/push.v1.PusherService/Push",
            &[("Content-Type", "application/proto")],
            b"\x0a\x05ab".to_vec(),
            400,
            "PushRequest",
        ),
    ] {
        let (got, body) = send(&app, "POST", uri, headers, body).await;
        assert_eq!(got.as_u16(), code, "{uri}: {body}");
        assert!(body.contains(want), "{uri}: {body} lacks {want}");
        if uri.starts_with("/push.v1") {
            // Connect's error shape.
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert_eq!(v["code"], "invalid_argument", "{body}");
            assert_eq!(v["message"], v["error"], "{body}");
        } else {
            assert!(body.starts_with("{\"error\":"), "{body}");
        }
    }
    let (_, body) = send(&app, "GET", "/api/v1/series", &[], vec![]).await;
    assert_eq!(body, "[]");
    // Pushes are POST only.
    let (got, _) = send(&app, "GET", "/ingest?name=a", &[], vec![]).await;
    assert_eq!(got, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn configured_tokens_guard_pushes() {
    let st = state("tokens");
    let cfg = gocost_config::Config::parse(
        r#"
[[auth.tokens]]
name = "pusher"
token = "0123456789abcdef-push"
scopes = ["write"]
"#,
        std::path::Path::new("gocost.toml"),
    )
    .unwrap();
    st.access.configure(&cfg);
    let app = router(st);
    let uri = "/ingest?name=a&format=folded";
    let (got, body) = send(&app, "POST", uri, &[], b"a;b 1\n".to_vec()).await;
    assert_eq!(got, StatusCode::UNAUTHORIZED, "{body}");
    assert!(body.contains("missing token"), "{body}");
    let (got, body) = send(
        &app,
        "POST",
        uri,
        &[("Authorization", "Bearer 0123456789abcdef-pusx")],
        b"a;b 1\n".to_vec(),
    )
    .await;
    assert_eq!(got, StatusCode::UNAUTHORIZED, "{body}");
    assert!(body.contains("invalid token"), "{body}");
    // Basic auth with the token as the password (what the Python agent sends).
    let (got, body) = send(
        &app,
        "POST",
        uri,
        &[(
            "Authorization",
            "Basic YWdlbnQ6MDEyMzQ1Njc4OWFiY2RlZi1wdXNo",
        )],
        b"a;b 1\n".to_vec(),
    )
    .await;
    assert_eq!(got, StatusCode::OK, "{body}");
    // A write-only token cannot read.
    let (got, body) = send(
        &app,
        "GET",
        "/api/v1/series",
        &[("Authorization", "Bearer 0123456789abcdef-push")],
        vec![],
    )
    .await;
    assert_eq!(got, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body.contains(r#"\"pusher\" lacks the read scope"#),
        "{body}"
    );
    assert!(!body.contains("0123456789abcdef"), "{body}");
}

/// A target whose stored profiles cost cannot read (a heap profile pushed under a `.cpu`
/// name) is left out of the cost table, not a 500 for every target.
#[tokio::test]
async fn cost_leaves_out_a_target_it_cannot_price() {
    let app = router(state("cost-odd"));
    for (name, file) in [("good", "cpu.pb.gz"), ("odd.cpu", "heap.pb.gz")] {
        let (code, body) = send(
            &app,
            "POST",
            &format!("/ingest?name={name}&from=1800000000&format=pprof"),
            &[],
            testdata(file),
        )
        .await;
        assert_eq!(code, StatusCode::OK, "{name}: {body}");
    }
    let (code, body) = send(
        &app,
        "GET",
        "/api/v1/cost?by=job&from=1799999990&to=1800000020",
        &[],
        vec![],
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert!(
        body.contains("\"good\"") && !body.contains("\"odd\""),
        "{body}"
    );
}
