//! The API's refine options are pprof's: every `-top`, `-tags`, `-dot` and `-peek` case of
//! `testdata/golden/cases.txt` (focus, ignore, hide, show, show_from, prune_from, tagfocus,
//! tagignore, granularity, noinlines, cum, nodecount, nodefraction, sample_index, several
//! files merged), asked of `/api/v1/top?format=text`, `/api/v1/tags?format=text`,
//! `/api/v1/graph?format=dot` or `/api/v1/peek?format=text&symbol=…` with the same options
//! over the stored profiles, prints exactly what `go tool pprof` printed for the files (the
//! committed golden), byte for byte.

use std::sync::{Arc, RwLock};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use gocost_server::{AppState, HealthSource, router};
use gocost_store::{Options, SeriesKey, Store};
use gocost_testkit::{cases, compare_golden, divergences, golden_dir, profiles_dir};
use tower::ServiceExt;

const T0: i64 = 1_800_000_000_000_000_000;

/// Percent-encodes a query-string value.
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The query string equivalent to a `-top` case's flags; `None` for cases the API has no
/// equivalent of (a diff base, `-normalize`).
fn params(args: &[String]) -> Option<(Vec<String>, Vec<String>)> {
    let (mut q, mut files) = (Vec::new(), Vec::new());
    for a in &args[1..] {
        match a.as_str() {
            "-cum" | "-noinlines" => q.push(format!("{}=1", &a[1..])),
            "-functions" | "-filefunctions" | "-files" | "-lines" | "-addresses" => {
                q.push(format!("granularity={}", &a[1..]))
            }
            _ if a.starts_with("-diff_base=") || a.starts_with("-base=") || a == "-normalize" => {
                return None;
            }
            _ => match a.strip_prefix('-') {
                Some(flag) => {
                    let (k, v) = flag.split_once('=')?;
                    q.push(format!("{k}={}", enc(v)));
                }
                None => files.push(a.clone()),
            },
        }
    }
    Some((q, files))
}

#[tokio::test]
async fn top_tags_graph_and_peek_with_refine_options_are_go_tool_pprofs() {
    let dir = std::env::temp_dir().join(format!("gocost-api-golden-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (store, _) = std::thread::spawn(move || Store::open(Options::new(&dir)))
        .join()
        .unwrap()
        .unwrap();
    let known = divergences();
    let mut asked = Vec::new();
    for (i, case) in cases().iter().enumerate() {
        let (report, format, extra) = match case.args[0].as_str() {
            "-top" => ("top", "text", None),
            "-tags" => ("tags", "text", None),
            "-dot" => ("graph", "dot", None),
            a => match a.strip_prefix("-peek=") {
                Some(rx) => ("peek", "text", Some(format!("symbol={}", enc(rx)))),
                None => continue,
            },
        };
        if known.contains_key(&case.slug) {
            continue;
        }
        let Some((mut q, files)) = params(&case.args) else {
            continue;
        };
        q.push(format!("format={format}"));
        q.extend(extra);
        let key = SeriesKey::new("cpu", [("case".to_string(), i.to_string())]);
        for (j, f) in files.iter().enumerate() {
            let bytes = std::fs::read(profiles_dir().join(f)).unwrap();
            store.append(&key, T0 + j as i64, &bytes).unwrap();
        }
        asked.push((case.slug.clone(), i, report.to_string(), q));
    }
    let health: HealthSource = Arc::new(RwLock::new(Box::new(Vec::new)));
    let app = router(AppState::new(Arc::new(store), health));
    let mut failures = Vec::new();
    for (slug, i, report, q) in &asked {
        let uri = format!(
            "/api/v1/{report}?agg=sum&query=cpu%7Bcase%3D%22{i}%22%7D&from={}&to={}&{}",
            T0 / 1_000_000_000 - 1,
            T0 / 1_000_000_000 + 10,
            q.join("&")
        );
        let resp = app
            .clone()
            .oneshot(Request::get(&uri).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let body = axum::body::to_bytes(resp.into_body(), 64 << 20)
            .await
            .unwrap();
        let got = if status == StatusCode::OK {
            body.to_vec()
        } else {
            format!("{status}: {}", String::from_utf8_lossy(&body)).into_bytes()
        };
        let want = std::fs::read(golden_dir().join(format!("{slug}.txt"))).unwrap();
        if let Err(e) = compare_golden(&format!("api__{slug}"), &want, &got) {
            failures.push(e);
        }
    }
    assert!(asked.len() >= 200, "only {} cases asked", asked.len());
    for (report, at_least) in [("tags", 10), ("graph", 20), ("peek", 5)] {
        let n = asked.iter().filter(|a| a.2 == report).count();
        assert!(n >= at_least, "only {n} {report} cases asked");
    }
    assert!(
        failures.is_empty(),
        "{} of {} API answers differ from go tool pprof (actual output in target/golden-actual/):\n{}",
        failures.len(),
        asked.len(),
        failures
            .iter()
            .take(5)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}
