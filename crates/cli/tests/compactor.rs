//! One compactor per bucket with real `gocost serve` processes (docs/adr/0022): three
//! writers and a query-only instance over a bucket in a shared directory (`[storage]
//! shared_dir`, which honours the create-only writes of the lease), and one gocost that
//! got every push. A finished day's profiles pushed to the three writers are merged by
//! whichever holds the lease; it is killed with SIGKILL as soon as its merged block appears
//! in the bucket; another takes the lease over and finishes. The query instance's answers
//! then equal the single instance's, one block holds the day, and `gocost verify` of every
//! writer is clean and counts every profile once.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use gocost_testkit::procs::{Proc, fresh_dir, http_request, wait_for};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn profile(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/profiles")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn serve(config: &Path, data: &Path, port: u16, extra: &[&str]) -> Proc {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(data.with_extension("log"))
        .unwrap();
    let p = Proc(
        Command::new(env!("CARGO_BIN_EXE_gocost"))
            .arg("serve")
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--config")
            .arg(config)
            .arg("--data")
            .arg(data)
            .arg("--no-demo")
            .args(extra)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting gocost serve"),
    );
    wait_for("gocost serve", Duration::from_secs(60), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            && http_request(
                "GET",
                &format!("http://127.0.0.1:{port}/api/v1/series"),
                &[],
                b"",
            )
            .status
                == 200
    });
    p
}

fn write_config(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(format!("{name}.toml"));
    std::fs::write(&p, text).unwrap();
    p
}

fn push(port: u16, name: &str, from: i64, body: &[u8]) {
    let r = http_request(
        "POST",
        &format!("http://127.0.0.1:{port}/ingest?name={name}&format=pprof&from={from}"),
        &[],
        body,
    );
    assert_eq!(r.status, 200, "{}", r.text());
}

fn get(port: u16, path: &str) -> (u16, Option<String>, Vec<u8>) {
    let r = http_request("GET", &format!("http://127.0.0.1:{port}{path}"), &[], b"");
    (
        r.status,
        r.header("x-gocost-partial").map(str::to_string),
        r.body,
    )
}

/// The answers compared, or `None` while one is partial.
fn answers(port: u16, from: i64, to: i64) -> Option<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    for q in [
        format!("/api/v1/top?query=cpu&from={from}&to={to}&format=text"),
        format!("/api/v1/top?query=goroutine&from={from}&to={to}&format=text"),
        format!("/api/v1/timeline?query=cpu&from={from}&to={to}&step=1h"),
    ] {
        let (status, partial, body) = get(port, &q);
        assert_eq!(status, 200, "{q}: {}", String::from_utf8_lossy(&body));
        if partial.is_some() {
            return None;
        }
        out.push(body);
    }
    Some(out)
}

/// The bucket's blocks as its index parts list them: (name, level, replaces).
fn listed(bucket: &Path) -> Vec<(String, u64, Vec<String>)> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(bucket.join("index")) else {
        return out;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.ends_with(".json") || name.starts_with('.') {
            continue;
        }
        let Ok(bytes) = std::fs::read(e.path()) else {
            continue;
        };
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
            continue; // being replaced: read again on the next poll
        };
        for b in v["blocks"].as_array().into_iter().flatten() {
            out.push((
                b["name"].as_str().unwrap_or_default().to_string(),
                b["level"].as_u64().unwrap_or_default(),
                b["replaces"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|r| r.as_str().map(str::to_string))
                    .collect(),
            ));
        }
    }
    out
}

/// The blocks a reader counts: listed, and replaced by no listed block.
fn counted(bucket: &Path) -> Vec<(String, u64)> {
    let l = listed(bucket);
    let replaced: std::collections::BTreeSet<String> = l
        .iter()
        .flat_map(|b| b.2.iter().map(|r| format!("{r}.gcb")))
        .collect();
    let mut out: Vec<(String, u64)> = l
        .into_iter()
        .filter(|b| !replaced.contains(&b.0))
        .map(|b| (b.0, b.1))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The holder of the newest lease generation ("" if none or released).
fn lease_holder(bucket: &Path) -> String {
    let Ok(rd) = std::fs::read_dir(bucket.join("lease")) else {
        return String::new();
    };
    let newest = rd
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("compactor-"))
        .max();
    newest
        .and_then(|n| std::fs::read(bucket.join("lease").join(n)).ok())
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v["holder"].as_str().map(str::to_string))
        .unwrap_or_default()
}

#[test]
fn a_compactor_killed_mid_compaction_is_taken_over_and_nothing_counts_twice() {
    let dir = fresh_dir("compactor", "e2e");
    let bucket = dir.join("bucket");
    std::fs::create_dir_all(&bucket).unwrap();
    let names = ["a", "b", "c"];
    let ports: Vec<u16> = names.iter().map(|_| free_port()).collect();
    let (pq, ps) = (free_port(), free_port());
    let peers: Vec<String> = ports
        .iter()
        .map(|p| format!("\"http://127.0.0.1:{p}\""))
        .collect();
    let cluster = |name: &str| {
        format!(
            "[storage]\nblock_duration = \"3s\"\nshared_dir = \"{}\"\n[cluster]\ninstance = \"{name}\"\nrefresh = \"1s\"\nlease_ttl = \"3s\"\npeer_timeout = \"3s\"\npeers = [{}]\n",
            bucket.display(),
            peers.join(", ")
        )
    };
    let configs: Vec<PathBuf> = names
        .iter()
        .map(|n| write_config(&dir, n, &cluster(n)))
        .collect();
    let cq = write_config(&dir, "q", &cluster("q"));
    let cs = write_config(&dir, "single", "[storage]\nblock_duration = \"3s\"\n");
    let mut w: Vec<Option<Proc>> = (0..3)
        .map(|i| Some(serve(&configs[i], &dir.join(names[i]), ports[i], &[])))
        .collect();
    let _q = serve(&cq, &dir.join("q"), pq, &["--role", "query"]);
    let _s = serve(&cs, &dir.join("single"), ps, &[]);
    // The query instance holds no WAL and no lock on its data directory (its block cache,
    // with its own lock, is all it writes there).
    for gone in ["wal", "LOCK", "traces", "loadruns"] {
        assert!(
            !dir.join("q").join(gone).exists(),
            "a query instance made {gone}"
        );
    }
    assert!(dir.join("q/cache/LOCK").exists(), "its cache is locked");

    // Two hours of a finished UTC day (three days ago) of three services, one per writer;
    // service svc0 also in writer b: one service's blocks from several writers.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let day = (now / 86_400 - 3) * 86_400;
    let (cpu, cpu2, gor) = (
        profile("cpu.pb.gz"),
        profile("cpu2.pb.gz"),
        profile("goroutine.pb.gz"),
    );
    let mut pushed = 0u64;
    for m in 0..12i64 {
        for svc in 0..3usize {
            let t = day + 3600 + m * 600 + svc as i64;
            let c = if (m + svc as i64) % 2 == 0 {
                &cpu
            } else {
                &cpu2
            };
            let writer = if svc == 0 && m % 2 == 1 { 1 } else { svc };
            for port in [ports[writer], ps] {
                push(port, &format!("svc{svc}.cpu"), t, c);
                push(port, &format!("svc{svc}.goroutines"), t, &gor);
            }
            pushed += 2;
        }
    }
    let (from, to) = (day, day + 86_399);
    let want = answers(ps, from, to).expect("one instance is never partial");

    // Whoever holds the lease merges the day; killed as soon as its merged block is in
    // the bucket (before or after its index part lists it).
    let mut killed = String::new();
    wait_for("a merged block", Duration::from_secs(120), || {
        let l1 = std::fs::read_dir(&bucket)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .find(|n| n.starts_with("L1-") && n.ends_with(".gcb"));
        let Some(l1) = l1 else { return false };
        for (i, n) in names.iter().enumerate() {
            if l1.contains(&format!("-{n}-")) {
                if let Some(mut p) = w[i].take() {
                    p.0.kill().unwrap(); // SIGKILL
                    p.0.wait().unwrap();
                }
                killed = n.to_string();
            }
        }
        true
    });
    eprintln!("killed the compactor {killed}");
    // Another takes the lease after it expires (3s).
    wait_for("another compactor", Duration::from_secs(60), || {
        let h = lease_holder(&bucket);
        !h.is_empty() && h != killed
    });
    let k = names.iter().position(|n| *n == killed).unwrap();
    w[k] = Some(serve(&configs[k], &dir.join(names[k]), ports[k], &[]));
    // Settled: one block for the day, and the query instance answers as one gocost.
    wait_for("one daily block", Duration::from_secs(120), || {
        let c = counted(&bucket);
        c.len() == 1 && c[0].1 == 1
    });
    wait_for("complete answers", Duration::from_secs(60), || {
        answers(pq, from, to).is_some()
    });
    assert_eq!(
        answers(pq, from, to),
        Some(want),
        "q answers as one instance"
    );

    drop(w);
    for (i, n) in names.iter().enumerate() {
        let out = Command::new(env!("CARGO_BIN_EXE_gocost"))
            .arg("verify")
            .arg("--config")
            .arg(&configs[i])
            .arg("--data")
            .arg(dir.join(n))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{n}: {text}");
        assert!(text.contains("\nclean"), "{n}: {text}");
        assert!(
            text.contains(&format!("{pushed} profiles: {pushed} in 1 blocks")),
            "{n}: every profile once: {text}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
