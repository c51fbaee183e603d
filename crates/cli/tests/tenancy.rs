//! Auth, tenancy and limits through a real `gocost serve`.
//!
//! `isolation`: two tenants push the same service and label names (`checkout`,
//! `env=prod`) with different function names; every route is tried with no token, a wrong
//! token, read-only, read-write, the other tenant's header, an unbound reader and admin,
//! and each answer's status is checked against a table. Every 2xx answer is searched for
//! the other tenant's function name and the reserved tenant label.
//!
//! `flood`: a noisy tenant over its push rate gets 429 with `Retry-After` while a quiet
//! tenant's pushes and queries all succeed; a tenant at its series limit gets 429 for new
//! series only.

use gocost_testkit::procs::enc;
use std::path::Path;
use std::time::{Duration, Instant};

use gocost_testkit::procs::{Proc, Response, fresh_dir, http_request, start_gocost_args};

const ADMIN: &str = "admin-token-000000000000";
const A_RW: &str = "team-a-rw-token-00000000";
const A_RO: &str = "team-a-ro-token-00000000";
const B_RW: &str = "team-b-rw-token-00000000";
const READER: &str = "unbound-reader-token-000";

fn start(name: &str, extra: &str) -> (Proc, String) {
    let dir = fresh_dir("tenancy", name);
    let cfg = dir.join("gocost.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"
[tenancy]
enabled = true

[[auth.tokens]]
name = "admin"
token = "{ADMIN}"
scopes = ["admin"]

[[auth.tokens]]
name = "a-rw"
token = "{A_RW}"
scopes = ["read", "write"]
tenants = ["team-a"]

[[auth.tokens]]
name = "a-ro"
token = "{A_RO}"
scopes = ["read"]
tenants = ["team-a"]

[[auth.tokens]]
name = "b-rw"
token = "{B_RW}"
scopes = ["read", "write"]
tenants = ["team-b"]

[[auth.tokens]]
name = "reader"
token = "{READER}"
scopes = ["read"]
{extra}
"#
        ),
    )
    .unwrap();
    let data = dir.join("data");
    start_gocost_args(
        Path::new(env!("CARGO_BIN_EXE_gocost")),
        &[
            "--config".as_ref(),
            cfg.as_os_str(),
            "--data".as_ref(),
            data.as_os_str(),
            "--no-demo".as_ref(),
        ],
    )
}

/// A credential: the Authorization token (if any) and the X-Scope-OrgID header (if any).
#[derive(Clone, Copy, Debug)]
struct Cred {
    name: &'static str,
    token: Option<&'static str>,
    tenant: Option<&'static str>,
}

fn req(method: &str, url: &str, c: Cred, body: &[u8]) -> Response {
    let auth = c.token.map(|t| format!("Bearer {t}"));
    let mut h: Vec<(&str, &str)> = Vec::new();
    if let Some(a) = &auth {
        h.push(("Authorization", a));
    }
    if let Some(t) = c.tenant {
        h.push(("X-Scope-OrgID", t));
    }
    http_request(method, url, &h, body)
}

fn push(base: &str, c: Cred, name: &str, body: &str) -> Response {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    req(
        "POST",
        &format!(
            "{base}/ingest?name={name}&format=folded&sampleRate=100&from={}&until={now}",
            now - 10
        ),
        c,
        body.as_bytes(),
    )
}

const NONE: Cred = Cred {
    name: "no token",
    token: None,
    tenant: None,
};
const WRONG: Cred = Cred {
    name: "wrong token",
    token: Some("not-a-configured-token-x"),
    tenant: None,
};
const A_READ: Cred = Cred {
    name: "team-a read-only",
    token: Some(A_RO),
    tenant: None,
};
const A_WRITE: Cred = Cred {
    name: "team-a read-write",
    token: Some(A_RW),
    tenant: Some("team-a"),
};
const A_AS_B: Cred = Cred {
    name: "team-a token, team-b header",
    token: Some(A_RW),
    tenant: Some("team-b"),
};
const B_WRITE: Cred = Cred {
    name: "team-b read-write",
    token: Some(B_RW),
    tenant: None,
};
const READER_B: Cred = Cred {
    name: "unbound reader, team-b header",
    token: Some(READER),
    tenant: Some("team-b"),
};
const READER_ANON: Cred = Cred {
    name: "unbound reader, no header (anonymous)",
    token: Some(READER),
    tenant: None,
};
const ADMIN_A: Cred = Cred {
    name: "admin, team-a header",
    token: Some(ADMIN),
    tenant: Some("team-a"),
};

/// Function names in a response: JSON/text as is, pprof bodies decoded.
fn names_in(r: &Response) -> String {
    if r.body.starts_with(&[0x1f, 0x8b]) {
        let p = gocost_pprof::decode(&r.body).expect("a profile");
        return p
            .function
            .iter()
            .map(|f| f.name.to_string())
            .collect::<Vec<_>>()
            .join("\n");
    }
    r.text()
}

#[test]
fn isolation() {
    let (_gocost, addr) = start("isolation", "\n[storage]\nblock_duration = \"2s\"\n");
    let base = format!("http://{addr}");
    // Same service and labels for both tenants; only the functions differ.
    for (c, f, n) in [(A_WRITE, "a_only_fn", 100), (B_WRITE, "b_only_fn", 700)] {
        for i in 0..3 {
            let r = push(
                &base,
                c,
                "checkout.cpu%7Benv%3Dprod%7D",
                &format!("main;{f} {n}\nmain;shared_fn {}\n", 10 + i),
            );
            assert_eq!(r.status, 200, "{}: {}", c.name, r.text());
        }
    }
    let q = enc(r#"cpu{job="checkout",env="prod"}"#);
    let range = "from=now-1h&to=now";
    let routes: Vec<(String, &str)> = vec![
        (format!("/api/v1/profile?query={q}&{range}"), "profile"),
        (format!("/api/v1/top?query={q}&{range}"), "top"),
        (format!("/api/v1/flame?query={q}&{range}"), "flame"),
        (
            format!("/api/v1/flame?query={q}&{range}&format=folded"),
            "flame folded",
        ),
        (format!("/api/v1/timeline?query={q}&{range}"), "timeline"),
        (
            format!("/api/v1/diff?query={q}&{range}&base_from=now-1h&base_to=now"),
            "diff",
        ),
        (format!("/api/v1/series?query={q}"), "series"),
        ("/api/v1/series".into(), "series (all)"),
        ("/api/v1/labels".into(), "labels"),
        ("/api/v1/label/job/values".into(), "label values"),
        (
            "/api/v1/label/__tenant__/values".into(),
            "tenant label values",
        ),
        ("/api/v1/targets".into(), "targets"),
        (format!("/api/v1/cost?{range}"), "cost"),
        (format!("/api/v1/regressions?{range}"), "regressions"),
        (format!("/api/v1/leaks?{range}"), "leaks"),
        (format!("/api/v1/heap_growth?{range}"), "heap growth"),
        (format!("/api/v1/gc?{range}"), "gc"),
        ("/api/v1/alerts".into(), "alerts"),
        ("/metrics".into(), "metrics"),
        ("/".into(), "ui"),
    ];
    // Expected status per (route, credential) for the data routes; `D` = the route's own
    // answer for a tenant that may read (200, or 404 where no profile of its kind exists).
    const D: u16 = 0;
    let creds = [
        NONE,
        WRONG,
        A_READ,
        A_WRITE,
        A_AS_B,
        B_WRITE,
        READER_B,
        READER_ANON,
        ADMIN_A,
    ];
    let mut checked = 0;
    let mut table = String::new();
    // Twice: from the WAL head right after the pushes, then from blocks once they are cut
    // (tenants share a service name, so they share its block symbol table).
    for phase in ["head", "blocks"] {
        if phase == "blocks" {
            let t = Instant::now();
            loop {
                let m = req("GET", &format!("{base}/metrics"), ADMIN_A, b"").text();
                if m.lines().any(|l| l == "gocost_store_head_profiles 0")
                    && !m.lines().any(|l| l == "gocost_store_blocks 0")
                {
                    break;
                }
                assert!(t.elapsed() < Duration::from_secs(60), "no block cut: {m}");
                std::thread::sleep(Duration::from_millis(250));
            }
        }
        for (path, what) in &routes {
            let url = format!("{base}{path}");
            for c in creds {
                let expect = match (*what, c.name) {
                    ("ui", _) => 200,
                    (_, "no token" | "wrong token") => 401,
                    (_, "team-a token, team-b header") => 403,
                    ("metrics", "admin, team-a header") => 200,
                    ("metrics", _) => 403,
                    _ => D,
                };
                let r = req("GET", &url, c, b"");
                let body = names_in(&r);
                table.push_str(&format!(
                    "{phase:>6} {what:>20} | {:<40} | {}\n",
                    c.name, r.status
                ));
                // A reader's answer: 404 where its tenant has no profile of the route's kind
                // (the anonymous tenant has no pushed data at all) and the answer must be a
                // profile or pprof's text — JSON reports (top, flame) and the insights
                // (empty lists, cost with `empty`) answer an empty range with 200 —, 200
                // otherwise.
                let expect = if expect != D {
                    expect
                } else if c.name.starts_with("unbound reader, no header")
                    && !matches!(
                        *what,
                        "timeline"
                            | "top"
                            | "flame"
                            | "series"
                            | "series (all)"
                            | "labels"
                            | "label values"
                            | "tenant label values"
                            | "targets"
                            | "alerts"
                            | "cost"
                            | "regressions"
                            | "leaks"
                            | "heap growth"
                            | "gc"
                    )
                {
                    404
                } else {
                    200
                };
                assert_eq!(r.status, expect, "{what} as {}: {}", c.name, r.text());
                if r.status == 401 {
                    assert!(
                        r.header("www-authenticate").is_some(),
                        "{what}: 401 without a challenge"
                    );
                    assert!(r.text().contains("token"), "{}", r.text());
                }
                if r.status == 200 && *what != "metrics" && *what != "ui" {
                    assert!(
                        !body.contains("__tenant__"),
                        "{what} as {} shows the tenant label: {body}",
                        c.name
                    );
                    let (mine, other) = match c.name {
                        "team-a read-only" | "team-a read-write" | "admin, team-a header" => {
                            (Some("a_only_fn"), &["b_only_fn"][..])
                        }
                        "team-b read-write" | "unbound reader, team-b header" => {
                            (Some("b_only_fn"), &["a_only_fn"][..])
                        }
                        _ => (None, &["a_only_fn", "b_only_fn"][..]),
                    };
                    for o in other {
                        assert!(!body.contains(o), "{what} as {} leaks {o}: {body}", c.name);
                    }
                    if let Some(m) = mine
                        && matches!(*what, "profile" | "top" | "flame" | "flame folded")
                    {
                        assert!(body.contains(m), "{what} as {}: no {m} in {body}", c.name);
                    }
                    if c.name.starts_with("unbound reader, no header") && what.starts_with("series")
                    {
                        assert_eq!(body.trim(), "[]", "anonymous tenant sees pushed series");
                    }
                }
                checked += 1;
            }
        }
    }
    // Escaped paths reach no route with weaker rules.
    for path in [
        "/%6Detrics",
        "/api/v1/%6Cabels",
        "/api/v1/label/%5F_tenant__/values",
        "/api/v1/%73eries",
    ] {
        let r = req("GET", &format!("{base}{path}"), A_READ, b"");
        let t = r.text();
        assert!(
            r.status != 200
                || !(t.contains("team-b") || t.contains("__tenant__") || t.contains("b_only_fn")),
            "{path}: {t}"
        );
        assert!(
            path != "/%6Detrics" || r.status != 200,
            "{path}: {}",
            r.status
        );
        checked += 1;
    }
    // Values: each tenant's total is its own pushes only (3 × (n + shared)).
    let top = |c: Cred| -> i64 {
        let r = req(
            "GET",
            &format!("{base}/api/v1/top?query={q}&{range}&sample_index=samples"),
            c,
            b"",
        );
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        v["total"].as_i64().unwrap()
    };
    assert_eq!(top(A_READ), 3 * 100 + 10 + 11 + 12);
    assert_eq!(top(READER_B), 3 * 700 + 10 + 11 + 12);

    // Writes: who may push where.
    for (c, want) in [
        (NONE, 401),
        (WRONG, 401),
        (A_READ, 403),
        (A_AS_B, 403),
        (READER_B, 403),
        (A_WRITE, 200),
        (B_WRITE, 200),
        (ADMIN_A, 200),
    ] {
        let r = push(&base, c, "checkout.cpu", "main;x 1\n");
        table.push_str(&format!(
            "{:>20} | {:<40} | {}\n",
            "POST /ingest", c.name, r.status
        ));
        assert_eq!(r.status, want, "push as {}: {}", c.name, r.text());
        checked += 1;
    }
    // A spoofed reserved label in the push is dropped: the series stays the pusher's.
    let r = push(
        &base,
        B_WRITE,
        "spoof.cpu%7B__tenant__%3Dteam-a%7D",
        "main;spoof_fn 5\n",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let r = req("GET", &format!("{base}/api/v1/series"), A_READ, b"");
    assert!(!r.text().contains("spoof"), "{}", r.text());
    // A malformed push is refused whole, naming the line; nothing of it is stored.
    let r = push(&base, A_WRITE, "half.cpu", "main;good 1\nmain;bad x\n");
    assert_eq!(r.status, 400);
    assert!(r.text().contains("line 2"), "{}", r.text());
    let r = req("GET", &format!("{base}/api/v1/series"), A_READ, b"");
    assert!(!r.text().contains("half"), "{}", r.text());
    eprintln!("{table}");
    eprintln!("{checked} route × credential pairs checked");
}

#[test]
fn flood() {
    let (_gocost, addr) = start(
        "flood",
        "\n[limits]\ningest_rate = 2\ningest_burst = 4\nmax_series = 3\nmax_body = \"64KiB\"\n",
    );
    let base = format!("http://{addr}");
    let noisy = A_WRITE;
    let quiet = B_WRITE;
    let t = Instant::now();
    let (mut ok, mut limited, mut quiet_ok) = (0, 0, 0);
    let mut next_quiet = Instant::now();
    let mut retry_after = Vec::new();
    while t.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(5));
        let r = push(&base, noisy, "loud.cpu", "main;noise 1\n");
        match r.status {
            200 => ok += 1,
            429 => {
                limited += 1;
                let ra: u64 = r
                    .header("retry-after")
                    .and_then(|v| v.parse().ok())
                    .expect("Retry-After seconds");
                retry_after.push(ra);
                assert!(r.text().contains("team-a"), "{}", r.text());
            }
            s => panic!("noisy push: {s} {}", r.text()),
        }
        if Instant::now() >= next_quiet {
            let r = push(&base, quiet, "calm.cpu", "main;calm 1\n");
            assert_eq!(r.status, 200, "the quiet tenant was limited: {}", r.text());
            let r = req(
                "GET",
                &format!("{base}/api/v1/top?query=cpu%7Bjob%3D%22calm%22%7D&from=now-1h"),
                quiet,
                b"",
            );
            assert_eq!(r.status, 200, "quiet tenant query: {}", r.text());
            quiet_ok += 1;
            next_quiet = Instant::now() + Duration::from_millis(600);
        }
    }
    let secs = t.elapsed().as_secs_f64();
    eprintln!(
        "flood: noisy {ok} accepted, {limited} refused (429) in {secs:.1}s; quiet {quiet_ok} pushes + queries all accepted; Retry-After {:?}",
        retry_after.iter().min()
    );
    // Burst 4 plus 2 per second.
    assert!(ok as f64 <= 4.0 + 2.0 * secs + 1.0, "{ok} accepted");
    assert!(ok >= 4, "{ok} accepted");
    assert!(limited > 10 * ok, "{limited} refused vs {ok} accepted");
    assert!(quiet_ok >= 7, "{quiet_ok}");
    assert!(retry_after.iter().all(|&s| (1..=1).contains(&s)));

    // Series limit: the quiet tenant has 1 series (calm); 2 more fit, the 4th is refused,
    // and pushes to existing series still pass.
    std::thread::sleep(Duration::from_millis(1500));
    for (i, want) in [(1, 200), (2, 200), (3, 429)] {
        std::thread::sleep(Duration::from_millis(600));
        let r = push(&base, quiet, &format!("svc{i}.cpu"), "main;f 1\n");
        assert_eq!(r.status, want, "series {i}: {}", r.text());
        if want == 429 {
            assert!(r.text().contains("series"), "{}", r.text());
            assert_eq!(r.header("retry-after"), Some("60"));
        }
    }
    std::thread::sleep(Duration::from_millis(600));
    let r = push(&base, quiet, "calm.cpu", "main;calm 1\n");
    assert_eq!(r.status, 200, "{}", r.text());

    // Size caps: a body over max_body → 413; a gzip bomb (1 KiB → 8 MiB, over 4 × max_body
    // decompressed) → 413 too, naming the body and the setting.
    std::thread::sleep(Duration::from_millis(600));
    let big = "main;f 1\n".repeat(10_000);
    let r = push(&base, quiet, "calm.cpu", &big);
    assert_eq!(r.status, 413, "{}", r.text());
    std::thread::sleep(Duration::from_millis(600));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut gz, &vec![b'a'; 8 << 20]).unwrap();
    let bomb = gz.finish().unwrap();
    let auth = format!("Bearer {B_RW}");
    let r = http_request(
        "POST",
        &format!("{base}/ingest?name=calm.cpu&format=folded"),
        &[("Authorization", &auth), ("Content-Encoding", "gzip")],
        &bomb,
    );
    assert_eq!(r.status, 413, "{}", r.text());
    assert!(
        r.text().contains("request body") && r.text().contains("max_body"),
        "{}",
        r.text()
    );
}

/// Execution traces belong to the tenant that uploaded them: uploads need the write scope;
/// each tenant lists, downloads and analyses only its own; the reserved label never shows.
#[test]
fn traces_per_tenant() {
    let (_p, addr) = start("traces", "");
    let base = format!("http://{addr}");
    let trace = std::fs::read(gocost_testkit::repo_root().join("testdata/traces/go1.27.trace"))
        .expect("trace");
    let a = Cred {
        name: "a-rw",
        token: Some(A_RW),
        tenant: None,
    };
    let a_ro = Cred {
        name: "a-ro",
        token: Some(A_RO),
        tenant: None,
    };
    let b = Cred {
        name: "b-rw",
        token: Some(B_RW),
        tenant: None,
    };
    let url = format!("{base}/api/v1/traces?job=checkout");
    assert_eq!(
        req("POST", &url, a_ro, &trace).status,
        403,
        "read-only upload"
    );
    let none = Cred {
        name: "none",
        token: None,
        tenant: None,
    };
    assert_eq!(req("POST", &url, none, &trace).status, 401);
    let up = req("POST", &url, a, &trace);
    assert_eq!(up.status, 200, "{}", up.text());
    let id = serde_json::from_slice::<serde_json::Value>(&up.body).expect("JSON")["id"]
        .as_str()
        .expect("id")
        .to_string();

    let list = |c: Cred| {
        let r = req("GET", &format!("{base}/api/v1/traces?from=now-1h"), c, b"");
        assert_eq!(r.status, 200, "{}: {}", c.name, r.text());
        serde_json::from_slice::<serde_json::Value>(&r.body).expect("JSON")
    };
    let la = list(a_ro);
    assert_eq!(la.as_array().map(Vec::len), Some(1));
    assert!(!la.to_string().contains("__tenant__"), "{la}");
    assert_eq!(list(b).as_array().map(Vec::len), Some(0));

    let get = |c: Cred, path: &str| req("GET", &format!("{base}/api/v1/trace/{id}{path}"), c, b"");
    let mine = get(a_ro, "");
    assert_eq!(mine.status, 200);
    assert_eq!(mine.body, trace);
    let summary = get(a_ro, "/summary");
    assert_eq!(summary.status, 200);
    assert!(!summary.text().contains("__tenant__"));
    for path in ["", "/summary", "/timeline"] {
        assert_eq!(
            get(b, path).status,
            404,
            "team-b reads team-a's trace{path}"
        );
    }
}
