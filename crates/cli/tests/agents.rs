//! Real Pyroscope agents push to a real `gocost serve`, changed only in the server address
//! (and a token/tenant, which gocost requires here): the Python agent (`pyroscope-io`,
//! Connect `PushRequest`), the Node.js agent (`@pyroscope/nodejs`, `/ingest` pprof) and the
//! Rust agent (the `pyroscope` crate, `/ingest` gzip'd pprof). Each test program burns CPU
//! in functions with known names; the API must show those names with sensible values.
//!
//! The agents are installed by `.ci/run` (`testdata/agents/`): a venv with pyroscope-io,
//! `npm ci` there, and the Rust program built by this test. Without them the test is reported
//! as ignored (skipped), except in CI (`CI` set), where it fails.

use gocost_testkit::procs::enc;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use gocost_testkit::procs::{Proc, fresh_dir, http_request, start_gocost_args};

const WRITE: &str = "agents-push-token-0123456789";
const READ: &str = "agents-read-token-0123456789";
const TENANT: &str = "agents";
const SECS: u64 = 20;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn python() -> PathBuf {
    gocost_testkit::tools::require(&gocost_testkit::tools::AGENTS);
    repo().join("testdata/agents/python/.venv/bin/python")
}

fn node() -> PathBuf {
    repo().join("testdata/agents/node")
}

/// Builds the Rust agent's test program (fast when already built).
fn rust_agent() -> PathBuf {
    let target = repo().join("target/agent-rust");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let o = Command::new(cargo)
        .args(["build", "--quiet", "--manifest-path"])
        .arg(repo().join("testdata/agents/rust/Cargo.toml"))
        .arg("--target-dir")
        .arg(&target)
        .output()
        .expect("running cargo");
    assert!(
        o.status.success(),
        "building the Rust agent: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    target.join("debug/gocost-agent-rust")
}

fn get(base: &str, path: &str) -> serde_json::Value {
    let r = http_request(
        "GET",
        &format!("{base}{path}"),
        &[("Authorization", &format!("Bearer {READ}"))],
        b"",
    );
    assert_eq!(r.status, 200, "{path}: {}", r.text());
    serde_json::from_slice(&r.body).expect("JSON")
}

/// The top table of a selector over the last 10 minutes: (total, [(name, flat, cum)]).
fn top(base: &str, query: &str, sample_index: &str) -> (i64, Vec<(String, i64, i64)>) {
    let t = get(
        base,
        &format!(
            "/api/v1/top?query={}&from=now-10m&sample_index={sample_index}",
            enc(query)
        ),
    );
    let rows = t["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap_or("").to_string(),
                r["flat"].as_i64().unwrap_or(0),
                r["cum"].as_i64().unwrap_or(0),
            )
        })
        .collect();
    (t["total"].as_i64().unwrap_or(0), rows)
}

fn spawn(cmd: &mut Command) -> Proc {
    Proc(
        cmd.stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting an agent"),
    )
}

fn wait(name: &str, p: &mut Child, timeout: Duration) {
    let t = Instant::now();
    loop {
        if let Some(st) = p.try_wait().expect("waiting") {
            let mut err = String::new();
            if let Some(mut e) = p.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut err);
            }
            assert!(st.success(), "{name} agent failed: {err}");
            return;
        }
        assert!(t.elapsed() < timeout, "{name} agent did not finish");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[cfg_attr(
    not(has_agents),
    ignore = "needs the Pyroscope agents of testdata/agents (see .ci/run) and node"
)]
#[test]
fn real_pyroscope_agents_push_to_gocost() {
    let (py, node_dir, rust) = (python(), node(), rust_agent());
    let dir = fresh_dir("agents", "push");
    let cfg = dir.join("gocost.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"
[tenancy]
enabled = true

[[auth.tokens]]
name = "agents-push"
token = "{WRITE}"
scopes = ["write"]
tenants = ["{TENANT}"]

[[auth.tokens]]
name = "agents-read"
token = "{READ}"
scopes = ["read"]
tenants = ["{TENANT}"]
"#
        ),
    )
    .unwrap();
    let data = dir.join("data");
    let (_gocost, addr) = start_gocost_args(
        Path::new(env!("CARGO_BIN_EXE_gocost")),
        &[
            "--config".as_ref(),
            cfg.as_os_str(),
            "--data".as_ref(),
            data.as_os_str(),
            "--no-demo".as_ref(),
        ],
    );
    let base = format!("http://{addr}");
    let secs = SECS.to_string();
    let started = Instant::now();
    let mut py_agent = spawn(
        Command::new(&py)
            .arg(repo().join("testdata/agents/python/agent.py"))
            .args([&base, "py-agent", &secs, WRITE, TENANT]),
    );
    let mut node_agent = spawn(
        Command::new("node")
            .arg("agent.js")
            .args([&base, "node-agent", &secs, WRITE, TENANT])
            .current_dir(&node_dir),
    );
    // The Rust agent sends no tenant: its token is bound to one, so that one is used.
    let mut rust_agent = spawn(
        Command::new(&rust)
            .args([&base, "rust-agent", &secs])
            .env("GOCOST_TOKEN", WRITE),
    );
    let limit = Duration::from_secs(SECS + 60);
    wait("python", &mut py_agent.0, limit);
    wait("node", &mut node_agent.0, limit);
    wait("rust", &mut rust_agent.0, limit);
    let ran = started.elapsed().as_secs_f64();

    // Nobody else sees them: no token → 401; the anonymous tenant has none of them.
    let r = http_request("GET", &format!("{base}/api/v1/series"), &[], b"");
    assert_eq!(r.status, 401, "{}", r.text());

    let series = get(&base, "/api/v1/series");
    let mut kinds: Vec<(String, String)> = series
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["labels"]["job"].as_str().unwrap_or("").to_string(),
                s["kind"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    kinds.sort();
    kinds.dedup();
    eprintln!("series: {kinds:?}");
    for want in [
        ("node-agent", "heap"),
        ("node-agent", "wall"),
        ("py-agent", "cpu"),
        ("rust-agent", "cpu"),
    ] {
        assert!(
            kinds.contains(&(want.0.to_string(), want.1.to_string())),
            "{want:?} not in {kinds:?}"
        );
    }
    for s in series.as_array().unwrap() {
        assert!(s["labels"].get("__tenant__").is_none(), "{s}");
        assert!(
            !s["key"].as_str().unwrap_or("").contains("__tenant__"),
            "{s}"
        );
    }
    let py_labels = get(&base, "/api/v1/label/team/values");
    assert!(
        py_labels.as_array().unwrap().iter().any(|v| v == "py"),
        "{py_labels}"
    );

    // Python: its own functions, CPU time of about one busy thread (sampled at 100 Hz).
    let (total, rows) = top(&base, r#"cpu{job="py-agent"}"#, "cpu");
    eprintln!(
        "python: total {total} ns over {ran:.1}s: {:?}",
        &rows[..rows.len().min(4)]
    );
    let leaf = rows
        .iter()
        .find(|r| r.0.starts_with("gocost_py_busy_leaf"))
        .expect("python leaf");
    let outer = rows
        .iter()
        .find(|r| r.0.starts_with("gocost_py_busy_outer"))
        .expect("python caller");
    assert!(
        leaf.1 as f64 > 0.5 * total as f64,
        "leaf flat {} of {total}",
        leaf.1
    );
    assert!(
        outer.2 >= leaf.2,
        "caller cum {} < leaf cum {}",
        outer.2,
        leaf.2
    );
    let cpu_s = total as f64 / 1e9;
    assert!(
        cpu_s > 0.1 * SECS as f64 && cpu_s < 1.5 * ran,
        "python CPU {cpu_s:.1}s for {SECS}s of one busy thread"
    );

    // Node: wall time and heap in use, with the program's function names.
    let (total, rows) = top(&base, r#"wall{job="node-agent"}"#, "wall");
    eprintln!(
        "node: wall total {total} ns: {:?}",
        &rows[..rows.len().min(4)]
    );
    // V8 inlines much of the leaf into its caller, and wall time includes the event loop
    // around them: the caller's cum holds most of the busy time.
    assert!(
        rows.iter().any(|r| r.0.contains("gocostNodeBusyLeaf")),
        "node leaf"
    );
    let outer = rows
        .iter()
        .find(|r| r.0.contains("gocostNodeBusyOuter"))
        .expect("node caller");
    assert!(
        outer.2 as f64 > 0.3 * total as f64,
        "node caller cum {} of {total}",
        outer.2
    );
    let wall_s = total as f64 / 1e9;
    assert!(
        wall_s > 0.2 * SECS as f64 && wall_s < 1.5 * ran,
        "node wall {wall_s:.1}s"
    );
    let (heap, _) = top(&base, r#"heap{job="node-agent"}"#, "inuse_space");
    assert!(heap > 0, "node heap in use {heap}");

    // Rust: the program's own (demangled) functions and about one busy thread.
    let (total, rows) = top(&base, r#"cpu{job="rust-agent"}"#, "cpu");
    eprintln!("rust: total {total} ns: {:?}", &rows[..rows.len().min(4)]);
    let spin: i64 = rows
        .iter()
        .filter(|r| r.0.contains("gocost_rust_spin_"))
        .map(|r| r.2)
        .sum();
    assert!(
        spin as f64 > 0.3 * total as f64,
        "spin functions {spin} of {total}"
    );
    let cpu_s = total as f64 / 1e9;
    assert!(
        cpu_s > 0.1 * SECS as f64 && cpu_s < 1.5 * ran,
        "rust CPU {cpu_s:.1}s"
    );
}
