//! The one error → status table, class by class: for each, a request that triggers it and
//! the status and message it gets. User mistakes are 4xx naming the problem (never 500);
//! a push is all or nothing; an analysis behind `/metrics` that fails is counted, not
//! silently empty.

use std::sync::{Arc, RwLock};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use gocost_server::{AppState, HealthSource, router};
use gocost_store::{Options, SeriesKey, Store};
use tower::ServiceExt;

fn testdata(name: &str) -> Vec<u8> {
    std::fs::read(gocost_testkit::profiles_dir().join(name)).unwrap()
}

const T0: i64 = 1_700_000_000_000_000_000;

/// A store with a CPU profile of job `demo` at T0, and a heap profile stored as kind `cpu`
/// for job `mixed` (so `cpu` over both cannot be merged), both at `at`.
fn state(name: &str, at: i64) -> Arc<AppState> {
    state_with(
        name,
        vec![("demo", "cpu.pb.gz", at), ("mixed", "heap.pb.gz", at)],
    )
}

/// A store with `(job, file, time)` stored as kind `cpu`.
fn state_with(name: &str, profiles: Vec<(&'static str, &'static str, i64)>) -> Arc<AppState> {
    let dir = std::env::temp_dir().join(format!("gocost-table-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store = std::thread::spawn(move || {
        let (store, _) = Store::open(Options::new(&dir)).unwrap();
        for (job, file, at) in profiles {
            let key = SeriesKey::new("cpu", [("job".to_string(), job.to_string())]);
            store.append(&key, at, &testdata(file)).unwrap();
        }
        store
    })
    .join()
    .unwrap();
    let health: HealthSource = Arc::new(RwLock::new(Box::new(Vec::new)));
    AppState::new(Arc::new(store), health)
}

struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

impl Answer {
    fn error(&self) -> String {
        let v: serde_json::Value = serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("{}: not JSON ({e}): {}", self.status, self.body));
        v["error"].as_str().unwrap_or_default().to_string()
    }
}

async fn send(app: &axum::Router, req: Request<Body>) -> Answer {
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let b = axum::body::to_bytes(resp.into_body(), 64 << 20)
        .await
        .unwrap();
    Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&b).into_owned(),
    }
}

fn get(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).unwrap()
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn user_mistakes_are_4xx_naming_the_problem() {
    let app = router(state("mistakes", T0));
    let range = "from=1699999990&to=1700000010";
    let cases: Vec<(String, StatusCode, &str)> = vec![
        // A selector that does not parse.
        (
            format!("/api/v1/top?query={}&{range}", enc("cpu{job=")),
            StatusCode::BAD_REQUEST,
            "selector",
        ),
        // A kind that cannot exist here.
        (
            format!("/api/v1/top?query=cpuu&{range}"),
            StatusCode::BAD_REQUEST,
            "unknown profile kind \"cpuu\"",
        ),
        (
            format!("/api/v1/top?query={}&{range}", enc("{job=\"demo\"}")),
            StatusCode::BAD_REQUEST,
            "needs a profile kind",
        ),
        // A range backwards, a time that is not one.
        (
            "/api/v1/top?query=cpu&from=1700000010&to=1699999990".into(),
            StatusCode::BAD_REQUEST,
            "from is after to",
        ),
        (
            "/api/v1/flame?query=cpu&from=last+tuesday".into(),
            StatusCode::BAD_REQUEST,
            "bad time",
        ),
        // Profiles the request asks to merge that cannot be merged: was a 500.
        (
            format!("/api/v1/top?query=cpu&{range}"),
            StatusCode::BAD_REQUEST,
            "cannot be merged",
        ),
        (
            format!("/api/v1/profile?query=cpu&{range}"),
            StatusCode::BAD_REQUEST,
            "narrow the selector",
        ),
        // A diff of two shapes.
        (
            format!(
                "/api/v1/diff?query={}&base_query={}&{range}&base_from=1699999990&base_to=1700000010",
                enc("cpu{job=\"demo\"}"),
                enc("cpu{job=\"mixed\"}")
            ),
            StatusCode::BAD_REQUEST,
            "cannot be merged",
        ),
        // Report options pprof refuses.
        (
            format!(
                "/api/v1/top?query={}&{range}&focus=%28",
                enc("cpu{job=\"demo\"}")
            ),
            StatusCode::BAD_REQUEST,
            "focus",
        ),
        (
            format!(
                "/api/v1/top?query={}&{range}&sample_index=nope",
                enc("cpu{job=\"demo\"}")
            ),
            StatusCode::BAD_REQUEST,
            "nope",
        ),
        (
            format!("/api/v1/flame?query=cpu&{range}&format=png"),
            StatusCode::BAD_REQUEST,
            "unknown format \"png\"",
        ),
        // An insight over the wrong kind, a regression threshold that is not a fraction.
        (
            format!("/api/v1/leaks?query=heap&{range}"),
            StatusCode::BAD_REQUEST,
            "leaks is found in goroutine profiles",
        ),
        (
            format!("/api/v1/regressions?{range}&threshold=50"),
            StatusCode::BAD_REQUEST,
            "threshold 50 is not a fraction",
        ),
        // Nothing of that name.
        (
            "/api/v1/trace/0123456789abcdef".into(),
            StatusCode::NOT_FOUND,
            "no trace",
        ),
        (
            "/api/v1/nope".into(),
            StatusCode::NOT_FOUND,
            "no such endpoint",
        ),
    ];
    for (uri, want, text) in cases {
        let a = send(&app, get(&uri)).await;
        assert_eq!(a.status, want, "{uri}: {}", a.body);
        assert!(
            a.headers
                .get("content-type")
                .is_some_and(|v| v.to_str().unwrap().starts_with("application/json")),
            "{uri}"
        );
        let msg = a.error();
        assert!(msg.contains(text), "{uri}: {msg:?} lacks {text:?}");
    }
    // The merge the user did not ask for is fine: one job.
    let a = send(
        &app,
        get(&format!(
            "/api/v1/top?query={}&{range}",
            enc("cpu{job=\"demo\"}")
        )),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
}

#[tokio::test]
async fn access_errors_come_from_the_same_table() {
    let st = state("access", T0);
    let cfg = gocost_config::Config::parse(
        r#"
[[auth.tokens]]
name = "reader"
token = "0123456789abcdef-read"
scopes = ["read"]

[tenancy]
enabled = true

[limits]
ingest_rate = 0.001
ingest_burst = 1
"#,
        std::path::Path::new("gocost.toml"),
    )
    .unwrap();
    st.access.configure(&cfg);
    let app = router(st);
    let bearer = |uri: &str, token: &str| {
        Request::get(uri)
            .header("authorization", format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap()
    };
    let a = send(&app, get("/api/v1/series")).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert!(a.error().contains("missing token"), "{}", a.body);
    assert!(a.headers.contains_key("www-authenticate"));
    let a = send(&app, bearer("/api/v1/series", "0123456789abcdef-nope")).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(a.error(), "invalid token");
    // Basic auth, URL-safe base64 without padding, the token as password.
    let a = send(
        &app,
        Request::get("/api/v1/series")
            .header("authorization", "Basic eDowMTIzNDU2Nzg5YWJjZGVmLXJlYWQ")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let a = send(&app, bearer("/metrics", "0123456789abcdef-read")).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert!(a.error().contains("lacks the admin scope"), "{}", a.body);
    let a = send(
        &app,
        Request::get("/api/v1/series")
            .header("authorization", "Bearer 0123456789abcdef-read")
            .header("x-scope-orgid", "bad tenant!")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.error().contains("X-Scope-OrgID"), "{}", a.body);
}

#[tokio::test]
async fn push_limits_and_bodies_come_from_the_same_table() {
    let st = state("limits", T0);
    let cfg = gocost_config::Config::parse(
        "[tenancy]\nenabled = true\n[limits]\ningest_rate = 0.001\ningest_burst = 1\n",
        std::path::Path::new("gocost.toml"),
    )
    .unwrap();
    st.access.configure(&cfg);
    let app = router(st);
    let push = |name: &str, tenant: &str| {
        Request::post(format!("/ingest?name={name}&format=folded"))
            .header("x-scope-orgid", tenant)
            .body(Body::from("main;work 5\n"))
            .unwrap()
    };
    // A bad body: 400 naming the line.
    let a = send(
        &app,
        Request::post("/ingest?name=a&format=folded")
            .header("x-scope-orgid", "t1")
            .body(Body::from("a;b 1\na;c\n"))
            .unwrap(),
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.error().contains("line 2"), "{}", a.body);
    // The tenant's push rate: the second push at once is 429 with Retry-After.
    let a = send(&app, push("a", "t2")).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let a = send(&app, push("a", "t2")).await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS, "{}", a.body);
    assert!(a.error().contains("over its push rate"), "{}", a.body);
    assert!(a.headers.contains_key("retry-after"));
    // Another tenant has its own bucket.
    let a = send(&app, push("a", "t3")).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    // Connect: a wrong content type is 415 in Connect's shape.
    let a = send(
        &app,
        Request::post("/push.v1.PusherService/Push")
            .header("content-type", "application/json")
            .header("x-scope-orgid", "t5")
            .body(Body::from("{}"))
            .unwrap(),
    )
    .await;
    assert_eq!(a.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let v: serde_json::Value = serde_json::from_str(&a.body).unwrap();
    assert_eq!(v["code"], "invalid_argument");
    assert_eq!(v["message"], v["error"]);
}

/// Protobuf: a length-delimited field.
fn field(n: u8, bytes: &[u8]) -> Vec<u8> {
    let mut out = vec![(n << 3) | 2];
    let mut len = bytes.len();
    loop {
        let b = (len & 0x7f) as u8;
        len >>= 7;
        if len == 0 {
            out.push(b);
            break;
        }
        out.push(b | 0x80);
    }
    out.extend_from_slice(bytes);
    out
}

/// A `PushRequest` series: labels and one raw profile.
fn series(service: &str, profile: &[u8]) -> Vec<u8> {
    let label = |k: &str, v: &str| {
        field(
            1,
            &[field(1, k.as_bytes()), field(2, v.as_bytes())].concat(),
        )
    };
    let sample = field(2, &field(1, profile));
    field(
        1,
        &[
            label("__name__", "process_cpu"),
            label("service_name", service),
            sample,
        ]
        .concat(),
    )
}

#[tokio::test]
async fn a_refused_push_stores_nothing() {
    let app = router(state("atomic", T0));
    let cpu = testdata("cpu.pb.gz");
    let connect = |body: Vec<u8>| {
        Request::post("/push.v1.PusherService/Push")
            .header("content-type", "application/proto")
            .body(Body::from(body))
            .unwrap()
    };
    // Three series, the last one broken: 400, and not one of them is stored.
    let bad = [
        series("first", &cpu),
        series("second", &cpu),
        series("third", &cpu[..cpu.len() / 2]),
    ]
    .concat();
    let a = send(&app, connect(bad)).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.body);
    let a = send(&app, get("/api/v1/label/job/values")).await;
    assert_eq!(a.body, r#"["demo","mixed"]"#);
    // The same push whole is stored whole.
    let good = [series("first", &cpu), series("second", &cpu)].concat();
    let a = send(&app, connect(good)).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let a = send(&app, get("/api/v1/label/job/values")).await;
    assert_eq!(a.body, r#"["demo","first","mixed","second"]"#);
}

#[tokio::test]
async fn a_failing_metrics_analysis_is_counted_not_silent() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;
    // One target's `cpu` profiles cannot be merged: the cpu analysis (cost, GC) fails.
    let app = router(state_with(
        "metrics",
        vec![
            ("mixed", "cpu.pb.gz", now - 60_000_000_000),
            ("mixed", "heap.pb.gz", now - 30_000_000_000),
        ],
    ));
    let a = send(&app, get("/metrics")).await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(
        a.body
            .contains("# TYPE gocost_insight_errors_total counter"),
        "{}",
        a.body
    );
    let count = |name: &str| -> f64 {
        a.body
            .lines()
            .find_map(|l| {
                l.strip_prefix(&format!(
                    "gocost_insight_errors_total{{analysis=\"{name}\"}} "
                ))
            })
            .unwrap_or_else(|| panic!("no counter for {name}"))
            .parse()
            .unwrap()
    };
    assert_eq!(count("cpu"), 1.0);
    assert_eq!(count("leaks"), 0.0);
    assert_eq!(count("all"), 0.0);
    // The rest of the answer is still there.
    assert!(a.body.contains("\ngocost_store_series 1\n"), "{}", a.body);
}
