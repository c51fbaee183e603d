//! The API over a store filled with real recorded profiles (testdata/profiles), through the
//! router in-process.

use std::sync::{Arc, RwLock};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use gocost_server::{AppState, HealthSource, router};
use gocost_store::{Options, SeriesKey, Store};
use tower::ServiceExt;

const MIN: i64 = 60_000_000_000;
const T0: i64 = 1_800_000_000_000_000_000;

fn profile(name: &str) -> Vec<u8> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/profiles")
        .join(name);
    std::fs::read(p).unwrap()
}

fn app(name: &str) -> axum::Router {
    let dir = std::env::temp_dir().join(format!("gocost-api-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    // The store's API is for blocking threads; the tests run on an async one.
    let (store, _) = std::thread::spawn(move || Store::open(Options::new(&dir)))
        .join()
        .unwrap()
        .unwrap();
    let key = |kind: &str, inst: &str| {
        SeriesKey::new(
            kind,
            [
                ("job".to_string(), "demo".to_string()),
                ("instance".to_string(), inst.to_string()),
            ],
        )
    };
    for m in 0..10 {
        let cpu = if m % 2 == 0 {
            "cpu.pb.gz"
        } else {
            "cpu2.pb.gz"
        };
        store
            .append(&key("cpu", "a"), T0 + m * MIN, &profile(cpu))
            .unwrap();
        store
            .append(&key("heap", "a"), T0 + m * MIN, &profile("heap.pb.gz"))
            .unwrap();
        store
            .append(
                &key("goroutine", "b"),
                T0 + m * MIN,
                &profile("goroutine.pb.gz"),
            )
            .unwrap();
    }
    let health: HealthSource = Arc::new(RwLock::new(Box::new(Vec::new)));
    router(AppState::new(Arc::new(store), health))
}

async fn get(app: &axum::Router, uri: &str) -> (StatusCode, Vec<u8>) {
    let resp = app
        .clone()
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let body = axum::body::to_bytes(resp.into_body(), 64 << 20)
        .await
        .unwrap();
    (status, body.to_vec())
}

fn range(from_min: i64, to_min: i64) -> String {
    format!(
        "from={}&to={}",
        (T0 + from_min * MIN) / 1_000_000_000,
        (T0 + to_min * MIN) / 1_000_000_000
    )
}

fn enc(s: &str) -> String {
    s.replace('{', "%7B")
        .replace('}', "%7D")
        .replace('"', "%22")
        .replace('=', "%3D")
}

#[tokio::test]
async fn profile_is_the_pprof_merge_of_the_range() {
    let app = app("profile");
    let (code, body) = get(
        &app,
        &format!(
            "/api/v1/profile?query={}&{}",
            enc(r#"cpu{job="demo"}"#),
            range(0, 3)
        ),
    )
    .await;
    assert_eq!(code, StatusCode::OK);
    let got = gocost_pprof::decode(&body).unwrap();
    // Minutes 0..=3: cpu, cpu2, cpu, cpu2 — merged as pprof merges those four files.
    let want = gocost_pprof::merge::combine(
        ["cpu.pb.gz", "cpu2.pb.gz", "cpu.pb.gz", "cpu2.pb.gz"]
            .iter()
            .map(|f| gocost_pprof::decode(&profile(f)).unwrap())
            .collect(),
    )
    .unwrap();
    assert_eq!(got, want);
}

#[tokio::test]
async fn top_flame_timeline_and_diff() {
    let app = app("views");
    let q = enc(r#"cpu{job="demo"}"#);
    let (code, body) = get(
        &app,
        &format!("/api/v1/top?query={q}&{}&nodecount=5", range(0, 9)),
    )
    .await;
    assert_eq!(code, StatusCode::OK);
    let top: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(top["sample_type"], "cpu");
    assert_eq!(top["rows"].as_array().unwrap().len(), 5);

    let (code, body) = get(&app, &format!("/api/v1/flame?query={q}&{}", range(0, 9))).await;
    assert_eq!(code, StatusCode::OK);
    let fl: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let nodes = fl["nodes"].as_array().unwrap();
    assert_eq!(nodes[0][2], -1, "root first");
    assert_eq!(nodes[0][3], fl["total"], "root total = report total");
    assert!(nodes.len() > 50);
    for n in nodes.iter().skip(1) {
        assert!(n[2].as_i64().unwrap() >= 0);
    }

    let (code, body) = get(
        &app,
        &format!("/api/v1/timeline?query={q}&{}&step=2m", range(0, 9)),
    )
    .await;
    assert_eq!(code, StatusCode::OK);
    let tl: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let pts = tl["points"].as_array().unwrap();
    assert_eq!(pts.len(), 5, "{tl}");
    let cpu = gocost_pprof::decode(&profile("cpu.pb.gz")).unwrap();
    let cpu2 = gocost_pprof::decode(&profile("cpu2.pb.gz")).unwrap();
    let sum = |p: &gocost_pprof::Profile| p.sample.iter().map(|s| s.value[1]).sum::<i64>();
    assert_eq!(pts[0][1].as_i64().unwrap(), sum(&cpu) + sum(&cpu2));
    assert_eq!(
        tl["counts"][0], 2,
        "two profiles in the first 2-minute bucket"
    );

    let (code, body) = get(
        &app,
        &format!(
            "/api/v1/diff?query={q}&{}&base_from={}&base_to={}",
            range(1, 1),
            (T0) / 1_000_000_000,
            T0 / 1_000_000_000
        ),
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let d: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        d["total"].as_i64().unwrap(),
        sum(&cpu),
        "diff percentages are relative to the base"
    );
}

#[tokio::test]
async fn series_labels_and_errors() {
    let app = app("meta");
    let (_, body) = get(&app, "/api/v1/series").await;
    let s: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(s.as_array().unwrap().len(), 3);
    let (_, body) = get(
        &app,
        &format!("/api/v1/series?query={}", enc(r#"{instance="b"}"#)),
    )
    .await;
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&body)
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let (_, body) = get(&app, "/api/v1/label/instance/values").await;
    assert_eq!(body, br#"["a","b"]"#);
    let (_, body) = get(&app, "/api/v1/labels").await;
    assert_eq!(body, br#"["instance","job"]"#);
    for (uri, want) in [
        ("/api/v1/profile".to_string(), StatusCode::BAD_REQUEST),
        (
            format!("/api/v1/profile?query={}", enc("cpu{")),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/v1/profile?query=cpu&from=yesterday".to_string(),
            StatusCode::BAD_REQUEST,
        ),
        (
            format!("/api/v1/profile?query=cpu&{}", range(5, 1)),
            StatusCode::BAD_REQUEST,
        ),
        (
            format!("/api/v1/profile?query=mutex&{}", range(0, 9)),
            StatusCode::NOT_FOUND,
        ),
        (
            format!("/api/v1/top?query=heap&sample_index=bogus&{}", range(0, 9)),
            StatusCode::BAD_REQUEST,
        ),
        (
            format!("/api/v1/timeline?query=cpu&step=1ms&{}", range(0, 9)),
            StatusCode::BAD_REQUEST,
        ),
        (
            format!("/api/v1/diff?query=cpu&{}", range(0, 9)),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let (code, body) = get(&app, &uri).await;
        assert_eq!(code, want, "{uri}: {}", String::from_utf8_lossy(&body));
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()), "{uri}");
    }
    let (code, body) = get(&app, "/metrics").await;
    assert_eq!(code, StatusCode::OK);
    let m = String::from_utf8(body).unwrap();
    assert!(m.contains("gocost_store_profiles 30"), "{m}");
}

#[test]
fn times() {
    let now = 1_000 * 1_000_000_000;
    assert_eq!(gocost_server::parse_time("now", now), Ok(now));
    assert_eq!(
        gocost_server::parse_time("now-1m", now),
        Ok(now - 60_000_000_000)
    );
    assert_eq!(
        gocost_server::parse_time("1700000000", now),
        Ok(1_700_000_000_000_000_000)
    );
    assert_eq!(
        gocost_server::parse_time("2023-11-14T22:13:20Z", now),
        Ok(1_700_000_000_000_000_000)
    );
    assert!(gocost_server::parse_time("soon", now).is_err());
}

#[tokio::test]
async fn flame_downloads_and_diff_flame() {
    let app = app("flamefmt");
    let q = enc(r#"cpu{job="demo"}"#);
    let r = range(0, 9);
    let (code, svg) = get(&app, &format!("/api/v1/flame?query={q}&{r}&format=svg")).await;
    assert_eq!(code, StatusCode::OK);
    let svg = String::from_utf8(svg).unwrap();
    assert!(
        svg.starts_with("<?xml") || svg.starts_with("<svg"),
        "{}",
        &svg[..80]
    );
    assert!(svg.trim_end().ends_with("</svg>"));
    let (code, folded) = get(&app, &format!("/api/v1/flame?query={q}&{r}&format=folded")).await;
    assert_eq!(code, StatusCode::OK);
    let (_, fl) = get(&app, &format!("/api/v1/flame?query={q}&{r}")).await;
    let fl: serde_json::Value = serde_json::from_slice(&fl).unwrap();
    let sum: i64 = String::from_utf8(folded)
        .unwrap()
        .lines()
        .map(|l| l.rsplit_once(' ').unwrap().1.parse::<i64>().unwrap())
        .sum();
    assert_eq!(sum, fl["total"].as_i64().unwrap(), "folded lines add up");
    let (code, ss) = get(
        &app,
        &format!("/api/v1/flame?query={q}&{r}&format=speedscope"),
    )
    .await;
    assert_eq!(code, StatusCode::OK);
    let ss: serde_json::Value = serde_json::from_slice(&ss).unwrap();
    assert_eq!(ss["profiles"][0]["type"], "sampled");
    assert_eq!(ss["profiles"][0]["unit"], "nanoseconds");
    let (code, body) = get(&app, &format!("/api/v1/flame?query={q}&{r}&format=png")).await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(&body).contains("unknown format"));

    // Diff: minute 1 (cpu2) against minute 0 (cpu); the union tree carries both totals.
    let (code, body) = get(
        &app,
        &format!(
            "/api/v1/flame?query={q}&{}&base_from={}&base_to={}",
            range(1, 1),
            T0 / 1_000_000_000,
            T0 / 1_000_000_000
        ),
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let d: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let cpu = gocost_pprof::decode(&profile("cpu.pb.gz")).unwrap();
    let cpu2 = gocost_pprof::decode(&profile("cpu2.pb.gz")).unwrap();
    let sum = |p: &gocost_pprof::Profile| p.sample.iter().map(|s| s.value[1]).sum::<i64>();
    let nodes = d["nodes"].as_array().unwrap();
    assert_eq!(nodes[0][3].as_i64().unwrap(), sum(&cpu2), "head total");
    assert_eq!(nodes[0][5].as_i64().unwrap(), sum(&cpu), "base total");
    assert_eq!(d["base_total"].as_i64().unwrap(), sum(&cpu));
    let (head_self, base_self) = nodes.iter().fold((0, 0), |(h, b), n| {
        (h + n[4].as_i64().unwrap(), b + n[6].as_i64().unwrap())
    });
    assert_eq!((head_self, base_self), (sum(&cpu2), sum(&cpu)));
    let (code, _) = get(
        &app,
        &format!("/api/v1/flame?query={q}&{}&base_from=0", range(1, 1)),
    )
    .await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "base_to is required");
}

#[tokio::test]
async fn ui_is_embedded() {
    let app = app("ui");
    let (code, html) = get(&app, "/").await;
    assert_eq!(code, StatusCode::OK);
    assert!(String::from_utf8_lossy(&html).contains("/ui/app.js"));
    let resp = app
        .clone()
        .oneshot(Request::get("/ui/app.js").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    let etag = resp.headers()["etag"].clone();
    let again = app
        .clone()
        .oneshot(
            Request::get("/ui/app.js")
                .header("if-none-match", etag)
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    let (code, _) = get(&app, "/ui/nope.js").await;
    assert_eq!(code, StatusCode::NOT_FOUND);
}

/// Goroutines and heap in use over a range are what one target holds (the mean of its
/// snapshots), not the sum of every snapshot; `agg=latest` and `agg=sum` can be asked for.
#[tokio::test]
async fn snapshot_kinds_over_a_range_are_means() {
    let app = app("agg");
    let total =
        |p: &gocost_pprof::Profile, i: usize| p.sample.iter().map(|s| s.value[i]).sum::<i64>();
    let g = gocost_pprof::decode(&profile("goroutine.pb.gz")).unwrap();
    let h = gocost_pprof::decode(&profile("heap.pb.gz")).unwrap();
    let q = enc(r#"goroutine{job="demo"}"#);
    for (agg, times) in [
        ("", 1),
        ("&agg=mean", 1),
        ("&agg=latest", 1),
        ("&agg=sum", 10),
    ] {
        let (code, body) = get(
            &app,
            &format!("/api/v1/profile?query={q}&{}{agg}", range(0, 9)),
        )
        .await;
        assert_eq!(code, StatusCode::OK, "{agg}");
        let p = gocost_pprof::decode(&body).unwrap();
        assert_eq!(total(&p, 0), times * total(&g, 0), "{agg}");
    }
    let (code, body) = get(
        &app,
        &format!("/api/v1/timeline?query={q}&{}&step=2m", range(0, 9)),
    )
    .await;
    assert_eq!(code, StatusCode::OK);
    let tl: serde_json::Value = serde_json::from_slice(&body).unwrap();
    for pt in tl["points"].as_array().unwrap() {
        assert_eq!(pt[1].as_i64().unwrap(), total(&g, 0), "{tl}");
    }
    // Heap: inuse_space is the mean, alloc_space (as stored) adds up.
    let q = enc(r#"heap{job="demo"}"#);
    let (code, body) = get(&app, &format!("/api/v1/profile?query={q}&{}", range(0, 9))).await;
    assert_eq!(code, StatusCode::OK);
    let p = gocost_pprof::decode(&body).unwrap();
    let col = |p: &gocost_pprof::Profile, name: &str| {
        p.sample_type
            .iter()
            .position(|t| &*t.r#type == name)
            .unwrap()
    };
    assert_eq!(
        total(&p, col(&p, "inuse_space")),
        total(&h, col(&h, "inuse_space"))
    );
    assert_eq!(
        total(&p, col(&p, "alloc_space")),
        10 * total(&h, col(&h, "alloc_space"))
    );
    let (code, _) = get(
        &app,
        &format!("/api/v1/top?query={q}&{}&agg=max", range(0, 9)),
    )
    .await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
}

/// A refined timeline sums what the refined profile holds, bucket by bucket.
#[tokio::test]
async fn refine_applies_to_profile_and_timeline() {
    let app = app("refine");
    let q = enc(r#"cpu{job="demo"}"#);
    let focus = "focus=%5Emain%5C.fib%24";
    let (code, body) = get(
        &app,
        &format!("/api/v1/profile?query={q}&{}&{focus}", range(0, 9)),
    )
    .await;
    assert_eq!(code, StatusCode::OK);
    let p = gocost_pprof::decode(&body).unwrap();
    let i = p.sample_index_by_name("cpu").unwrap();
    let refined: i64 = p.sample.iter().map(|s| s.value[i]).sum();
    let (_, body) = get(&app, &format!("/api/v1/profile?query={q}&{}", range(0, 9))).await;
    let whole = gocost_pprof::decode(&body).unwrap();
    let all: i64 = whole.sample.iter().map(|s| s.value[i]).sum();
    assert!(0 < refined && refined < all, "{refined} of {all}");
    let (code, body) = get(
        &app,
        &format!(
            "/api/v1/timeline?query={q}&{}&step=2m&sample_index=cpu&{focus}",
            range(0, 9)
        ),
    )
    .await;
    assert_eq!(code, StatusCode::OK);
    let tl: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let sum: i64 = tl["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p[1].as_i64().unwrap())
        .sum();
    assert_eq!(sum, refined);
    let (code, _) = get(
        &app,
        &format!("/api/v1/top?query={q}&{}&focus=%28", range(0, 9)),
    )
    .await;
    assert_eq!(
        code,
        StatusCode::BAD_REQUEST,
        "a bad regexp is the user's mistake"
    );
}

/// The diff download is what `go tool pprof -diff_base` builds: head − base, base samples
/// labelled, so the report's total is the base's.
#[tokio::test]
async fn diff_download_is_pprofs_diff_base() {
    let app = app("diffdl");
    let q = enc(r#"cpu{job="demo"}"#);
    let (code, body) = get(
        &app,
        &format!(
            "/api/v1/profile?query={q}&{}&base_from={}&base_to={}",
            range(1, 1),
            T0 / 1_000_000_000,
            T0 / 1_000_000_000
        ),
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let d = gocost_pprof::decode(&body).unwrap();
    let cpu = gocost_pprof::decode(&profile("cpu.pb.gz")).unwrap();
    let cpu2 = gocost_pprof::decode(&profile("cpu2.pb.gz")).unwrap();
    let i = d.sample_index_by_name("cpu").unwrap();
    let sum = |p: &gocost_pprof::Profile| p.sample.iter().map(|s| s.value[i]).sum::<i64>();
    assert_eq!(sum(&d), sum(&cpu2) - sum(&cpu), "head − base");
    let rpt = gocost_report::Report::new(d, &Default::default()).unwrap();
    assert_eq!(rpt.total, sum(&cpu), "percentages of the base");
}

/// The timeline broken down by a pprof label: one series per value, adding up to the totals.
#[tokio::test]
async fn timeline_by_label() {
    let app = app("by");
    let q = enc(r#"cpu{job="demo"}"#);
    let (code, body) = get(
        &app,
        &format!(
            "/api/v1/timeline?query={q}&{}&step=2m&sample_index=cpu&by=tenant",
            range(0, 9)
        ),
    )
    .await;
    assert_eq!(code, StatusCode::OK);
    let tl: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let series = tl["series"].as_array().unwrap();
    let mut values: Vec<&str> = series
        .iter()
        .map(|s| s["value"].as_str().unwrap())
        .collect();
    values.sort();
    assert_eq!(values, ["", "acme", "globex"], "{tl}");
    for (k, p) in tl["points"].as_array().unwrap().iter().enumerate() {
        let sum: i64 = series
            .iter()
            .map(|s| s["points"][k][1].as_i64().unwrap())
            .sum();
        assert_eq!(sum, p[1].as_i64().unwrap(), "bucket {k}");
    }
}

/// Nothing in the range is a 200 with the report's empty shape and the reason; the pprof
/// download and pprof's text still answer 404 (they must be a profile / pprof's output).
#[tokio::test]
async fn an_empty_range_is_an_answer() {
    let app = app("empty");
    let q = enc(r#"mutex{job="demo"}"#);
    for (path, shape) in [
        ("top", "rows"),
        ("flame", "nodes"),
        ("tags", "keys"),
        ("graph", "nodes"),
        ("peek?symbol=main&", "entries"),
    ] {
        let sep = if path.ends_with('&') { "" } else { "?" };
        let (code, body) = get(
            &app,
            &format!("/api/v1/{path}{sep}query={q}&{}", range(0, 9)),
        )
        .await;
        assert_eq!(code, StatusCode::OK, "{path}");
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert!(
            v["empty"]
                .as_str()
                .unwrap()
                .contains("no mutex profiles match the selector"),
            "{path}: {v}"
        );
        assert!(v[shape].is_array(), "{path}: {v}");
    }
    // Insights answer lists: nothing in the range is `[]`, the reason in a header.
    for path in ["leaks", "heap_growth", "regressions", "gc"] {
        let resp = app
            .clone()
            .oneshot(
                Request::get(format!("/api/v1/{path}?from=1000&to=2000"))
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
        let reason = resp.headers()["gocost-empty"].to_str().unwrap().to_string();
        assert!(reason.contains("in the range"), "{path}: {reason}");
        let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        assert_eq!(&body[..], b"[]", "{path}");
    }
    for path in ["profile", "top?format=text&"] {
        let sep = if path.ends_with('&') { "" } else { "?" };
        let (code, _) = get(
            &app,
            &format!("/api/v1/{path}{sep}query={q}&{}", range(0, 9)),
        )
        .await;
        assert_eq!(code, StatusCode::NOT_FOUND, "{path}");
    }
}

/// A kind that is neither one gocost scrapes nor one the store holds is a mistake in the
/// query: 400 naming the kinds, on every profile route (and a diff's base). A pushed kind the
/// store holds (the Node agent's `wall`) is answered, and a known kind without data in the
/// range stays an empty 200.
#[tokio::test]
async fn an_unknown_kind_is_400_naming_the_kinds() {
    let dir = std::env::temp_dir().join(format!("gocost-api-{}-kinds", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (store, _) = std::thread::spawn(move || Store::open(Options::new(&dir)))
        .join()
        .unwrap()
        .unwrap();
    let key = |kind: &str| SeriesKey::new(kind, [("job".to_string(), "node".to_string())]);
    for m in 0..3 {
        store
            .append(&key("cpu"), T0 + m * MIN, &profile("cpu.pb.gz"))
            .unwrap();
        store
            .append(&key("wall"), T0 + m * MIN, &profile("cpu.pb.gz"))
            .unwrap();
    }
    assert_eq!(
        store.kinds().into_iter().collect::<Vec<_>>(),
        ["cpu", "wall"]
    );
    let health: HealthSource = Arc::new(RwLock::new(Box::new(Vec::new)));
    let app = router(AppState::new(Arc::new(store), health));
    let bad = enc(r#"cpux{job="node"}"#);
    for uri in [
        format!("/api/v1/top?query={bad}&{}", range(0, 9)),
        format!("/api/v1/flame?query={bad}&{}", range(0, 9)),
        format!("/api/v1/profile?query={bad}&{}", range(0, 9)),
        format!("/api/v1/timeline?query={bad}&{}", range(0, 9)),
        format!("/api/v1/tags?query={bad}&{}", range(0, 9)),
        format!(
            "/api/v1/flame?query=cpu&base_query={bad}&{}&base_from={}&base_to={}",
            range(0, 9),
            T0 / 1_000_000_000,
            (T0 + 9 * MIN) / 1_000_000_000
        ),
    ] {
        let (code, body) = get(&app, &uri).await;
        assert_eq!(
            code,
            StatusCode::BAD_REQUEST,
            "{uri}: {}",
            String::from_utf8_lossy(&body)
        );
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let e = v["error"].as_str().unwrap();
        assert!(
            e.contains("unknown profile kind \"cpux\"")
                && e.contains("cpu, heap, allocs")
                && e.contains("pushed here: wall"),
            "{uri}: {e}"
        );
    }
    let (code, body) = get(&app, &format!("/api/v1/top?query=wall&{}", range(0, 9))).await;
    assert_eq!(code, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(!v["rows"].as_array().unwrap().is_empty(), "{v}");
    assert!(v.get("empty").is_none_or(|e| e.is_null()), "{v}");
    let (code, body) = get(&app, &format!("/api/v1/top?query=block&{}", range(0, 9))).await;
    assert_eq!(code, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(v["empty"].as_str().is_some(), "{v}");
}

/// Each row's path of labels from the root (kind 1 rows get " (inline)"), by row.
fn flame_paths(fl: &serde_json::Value) -> Vec<String> {
    let names = fl["names"].as_array().unwrap();
    let mut paths: Vec<String> = Vec::new();
    for n in fl["nodes"].as_array().unwrap() {
        let name = names[n[0].as_u64().unwrap() as usize].as_str().unwrap();
        let label = if n[1] == 1 {
            format!("{name} (inline)")
        } else {
            name.to_string()
        };
        let path = match n[2].as_i64().unwrap() {
            -1 => String::new(),
            p => format!("{}\u{1f}{label}", paths[p as usize]),
        };
        paths.push(path);
    }
    paths
}

#[tokio::test]
async fn flame_width_keeps_every_box_a_pixel_can_show() {
    let app = app("flame-width");
    let q = enc(r#"cpu{job="demo"}"#);
    let url = |extra: &str| format!("/api/v1/flame?query={q}&{}{extra}", range(0, 9));
    let json = |b: &[u8]| serde_json::from_slice::<serde_json::Value>(b).unwrap();
    let (code, body) = get(&app, &url("")).await;
    assert_eq!(code, StatusCode::OK);
    let full = json(&body);
    let full_paths = flame_paths(&full);
    let full_nodes = full["nodes"].as_array().unwrap();
    let by_path: std::collections::HashMap<&str, &serde_json::Value> = full_paths
        .iter()
        .map(String::as_str)
        .zip(full_nodes)
        .collect();
    let root = full_nodes[0][3].as_i64().unwrap();
    let w = 120i64;
    let (code, body) = get(&app, &url(&format!("&width={w}"))).await;
    assert_eq!(code, StatusCode::OK);
    let cut = json(&body);
    let cut_nodes = cut["nodes"].as_array().unwrap();
    let cut_paths = flame_paths(&cut);
    let hidden = cut["hidden"].as_u64().unwrap() as usize;
    assert!(
        hidden > 0,
        "the demo profile has boxes under a pixel at {w} px"
    );
    let mut frames = 0;
    let mut child_sum = vec![0i64; cut_nodes.len()];
    for (i, (n, path)) in cut_nodes.iter().zip(&cut_paths).enumerate() {
        let total = n[3].as_i64().unwrap();
        if i > 0 {
            child_sum[n[2].as_u64().unwrap() as usize] += total;
        }
        if n[1] == 2 {
            assert_eq!(n[4], n[3], "an other row's self is its total");
            continue;
        }
        frames += 1;
        let f = by_path
            .get(path.as_str())
            .expect("a kept row is a node of the full tree");
        assert_eq!(
            (&f[3], &f[4]),
            (&n[3], &n[4]),
            "{path}: same total and self"
        );
        assert!(
            i == 0 || total * w >= root,
            "{path}: {total} is under a pixel"
        );
    }
    assert_eq!(
        frames + hidden,
        full_nodes.len(),
        "every node kept or counted hidden"
    );
    for (i, n) in cut_nodes.iter().enumerate() {
        if n[1] != 2 && child_sum[i] > 0 {
            assert_eq!(
                child_sum[i] + n[4].as_i64().unwrap(),
                n[3].as_i64().unwrap()
            );
        }
    }
    // Every full-tree node at least a pixel wide is kept.
    let kept: std::collections::HashSet<&str> = cut_paths.iter().map(String::as_str).collect();
    for (n, path) in full_nodes.iter().zip(&full_paths) {
        if n[3].as_i64().unwrap() * w >= root {
            assert!(
                kept.contains(path.as_str()),
                "{path} is a pixel wide but missing"
            );
        }
    }

    // Zoomed into a narrow node: its children are measured against it.
    let (narrow, np) = full_nodes
        .iter()
        .zip(&full_paths)
        .filter(|(n, p)| {
            let t = n[3].as_i64().unwrap();
            t * w < root && t > n[4].as_i64().unwrap() && !p.is_empty()
        })
        .max_by_key(|(n, _)| n[3].as_i64().unwrap())
        .expect("a narrow node with children");
    let labels: Vec<&str> = np.split('\u{1f}').skip(1).collect();
    let zoom = serde_json::to_string(&labels).unwrap();
    let zoom_q = zoom
        .replace('%', "%25")
        .replace('"', "%22")
        .replace(' ', "%20")
        .replace('[', "%5B")
        .replace(']', "%5D")
        .replace('(', "%28")
        .replace(')', "%29")
        .replace('*', "%2A")
        .replace('&', "%26")
        .replace('/', "%2F");
    let (code, body) = get(&app, &url(&format!("&width={w}&zoom={zoom_q}"))).await;
    assert_eq!(code, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let zoomed = json(&body);
    let zoomed_paths = flame_paths(&zoomed);
    let zt = narrow[3].as_i64().unwrap();
    for (n, path) in full_nodes.iter().zip(&full_paths) {
        if path.starts_with(&format!("{np}\u{1f}")) && n[3].as_i64().unwrap() * w >= zt {
            assert!(
                zoomed_paths.contains(path),
                "{path} is a pixel wide in the zoom"
            );
        }
    }

    for bad in [
        "&width=0",
        "&width=wide",
        "&width=10&zoom=main",
        "&width=10&format=svg",
    ] {
        let (code, body) = get(&app, &url(bad)).await;
        assert_eq!(code, StatusCode::BAD_REQUEST, "{bad}");
        assert!(String::from_utf8_lossy(&body).contains("error"));
    }
}

#[tokio::test]
async fn targets_answer_active_dropped_or_both() {
    let dir = std::env::temp_dir().join(format!("gocost-api-targets-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let d = dir.clone();
    let (store, _) = std::thread::spawn(move || Store::open(Options::new(&d)))
        .join()
        .unwrap()
        .unwrap();
    let health: HealthSource = Arc::new(RwLock::new(Box::new(|| {
        vec![gocost_scrape::Health {
            job: "api".into(),
            instance: "10.0.0.1:6060".into(),
            kind: "heap".into(),
            labels: [("job".to_string(), "api".to_string())].into(),
            discovered_labels: [("__address__".to_string(), "10.0.0.1:6060".to_string())].into(),
            ..Default::default()
        }]
    })));
    let state = AppState::new(Arc::new(store), health);
    state.set_dropped_source(Box::new(|| {
        vec![gocost_scrape::DroppedTarget {
            job: "api".into(),
            discovered_labels: [("__address__".to_string(), "10.0.0.9:6060".to_string())].into(),
        }]
    }));
    let app = router(state);
    let json = |b: &[u8]| serde_json::from_slice::<serde_json::Value>(b).unwrap();
    let (code, body) = get(&app, "/api/v1/targets").await;
    assert_eq!(code, StatusCode::OK);
    let active = json(&body);
    assert_eq!(active[0]["labels"]["job"], "api");
    assert_eq!(
        active[0]["discovered_labels"]["__address__"],
        "10.0.0.1:6060"
    );
    let (code, body) = get(&app, "/api/v1/targets?state=dropped").await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(
        json(&body)[0]["discovered_labels"]["__address__"],
        "10.0.0.9:6060"
    );
    let (code, body) = get(&app, "/api/v1/targets?state=any").await;
    assert_eq!(code, StatusCode::OK);
    let both = json(&body);
    assert_eq!(both["activeTargets"], active);
    assert_eq!(both["droppedTargets"].as_array().map(Vec::len), Some(1));
    let (code, body) = get(&app, "/api/v1/targets?state=all").await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(&body).contains("state \\\"all\\\""));
    let _ = std::fs::remove_dir_all(&dir);
}

/// `/metrics` analyses a fleet a batch of instances at a time: with more instances than
/// one batch holds (and a target without an instance label), every target's cost gauge is
/// there exactly once, and its value is what the target alone gets.
#[tokio::test]
async fn metrics_insights_cover_every_target_once_across_batches() {
    let dir = std::env::temp_dir().join(format!("gocost-api-{}-batches", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;
    let store = std::thread::spawn(move || {
        let (store, _) = Store::open(Options::new(&dir)).unwrap();
        let cpu = profile("cpu.pb.gz");
        let mut targets: Vec<Vec<(String, String)>> = (0..70)
            .map(|i| {
                vec![
                    ("job".to_string(), "fleet".to_string()),
                    ("instance".to_string(), format!("10.0.0.{i}:6060")),
                ]
            })
            .collect();
        targets.push(vec![("job".to_string(), "lonely".to_string())]);
        for labels in targets {
            let key = SeriesKey::new("cpu", labels);
            for m in 1..=3 {
                store.append(&key, now - m * MIN, &cpu).unwrap();
            }
        }
        store
    })
    .join()
    .unwrap();
    let health: HealthSource = Arc::new(RwLock::new(Box::new(Vec::new)));
    let app = router(AppState::new(Arc::new(store), health));
    let (code, body) = get(&app, "/metrics").await;
    assert_eq!(code, StatusCode::OK);
    let m = String::from_utf8(body).unwrap();
    let cores: Vec<&str> = m
        .lines()
        .filter(|l| l.starts_with("gocost_cost_cores{"))
        .collect();
    assert_eq!(cores.len(), 71, "{}", cores.join("\n"));
    let mut seen = std::collections::BTreeSet::new();
    for l in &cores {
        let (labels, v) = l.rsplit_once(' ').unwrap();
        assert!(seen.insert(labels.to_string()), "twice: {labels}");
        assert_eq!(v, cores[0].rsplit_once(' ').unwrap().1, "{l}");
    }
    assert!(
        seen.iter().any(|l| l.contains("job=\"lonely\"")),
        "{seen:?}"
    );
    // The API's cost over the same fleet, batched the same way: every target once.
    let (code, body) = get(&app, "/api/v1/cost?from=now-1h&by=job,instance").await;
    assert_eq!(code, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let groups = v["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 71, "{v}");
    assert!(groups.iter().all(|g| g["targets"] == 1), "{v}");
}
