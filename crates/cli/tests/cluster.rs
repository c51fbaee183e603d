//! Three `gocost serve` processes over one bucket of a real 3-node Garage cluster
//! (docs/adr/0020): writers `a` and `b` take pushes (cutting blocks every few seconds, so
//! data is in the bucket and in their heads), `q` is query-only. Its answers (top, flame,
//! the merged profile, the mean of goroutine snapshots) equal those of one gocost that got
//! every push; `b` killed with SIGKILL ⇒ `q`'s answers are marked partial (header and JSON
//! field); `b` restarted on its data directory ⇒ complete and equal again.

#[path = "../../store/tests/common/garage.rs"]
#[allow(dead_code)]
mod garage;

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

/// `gocost serve` on `port`, ready when it answers.
fn serve(config: &Path, data: &Path, port: u16, extra: &[&str]) -> Proc {
    let log = std::fs::File::create(data.with_extension("log")).unwrap();
    let p = Proc(
        Command::new(env!("CARGO_BIN_EXE_gocost"))
            .arg("serve")
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--config")
            .arg(config)
            .arg("--data")
            .arg(data)
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

fn config(dir: &Path, name: &str, s3: Option<&str>, cluster: Option<String>) -> PathBuf {
    let mut c = String::from("[storage]\nblock_duration = \"3s\"\n");
    if let Some(endpoint) = s3 {
        c.push_str(&format!(
            "[storage.s3]\nbucket = \"{}\"\nprefix = \"e2e\"\nendpoint = \"{endpoint}\"\nregion = \"garage\"\naccess_key_id = \"{}\"\nsecret_access_key = \"{}\"\nallow_http = true\n",
            garage::BUCKET,
            garage::ACCESS_KEY,
            garage::SECRET_KEY
        ));
    }
    if let Some(cl) = cluster {
        c.push_str("[cluster]\n");
        c.push_str(&cl);
    }
    let p = dir.join(format!("{name}.toml"));
    std::fs::write(&p, c).unwrap();
    p
}

fn get(port: u16, path: &str) -> (u16, Option<String>, Vec<u8>) {
    let r = http_request("GET", &format!("http://127.0.0.1:{port}{path}"), &[], b"");
    let partial = r.header("x-gocost-partial").map(str::to_string);
    (r.status, partial, r.body)
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

/// The answers compared: (path, body) of each.
fn answers(port: u16, from: i64, to: i64) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for q in [
        format!("/api/v1/top?query=cpu&from={from}&to={to}&format=text"),
        format!("/api/v1/top?query=cpu&from={from}&to={to}"),
        format!("/api/v1/flame?query=cpu&from={from}&to={to}"),
        format!("/api/v1/top?query=goroutine&from={from}&to={to}"),
        format!("/api/v1/top?query=cpu%7Bservice_name%3D%22svc1%22%7D&from={from}&to={to}"),
        "/api/v1/series".to_string(),
        "/api/v1/label/service_name/values".to_string(),
    ] {
        let (status, partial, body) = get(port, &q);
        assert_eq!(status, 200, "{q}: {}", String::from_utf8_lossy(&body));
        assert_eq!(partial, None, "{q}");
        out.push((q, body));
    }
    // The merged profile, as `go tool pprof` would download it: compared as its report.
    let (status, _, body) = get(
        port,
        &format!("/api/v1/profile?query=cpu&from={from}&to={to}"),
    );
    assert_eq!(status, 200);
    let p = gocost_pprof::decode(&body).unwrap();
    let total: Vec<i64> = p
        .sample_type
        .iter()
        .enumerate()
        .map(|(i, _)| p.sample.iter().map(|s| s.value[i]).sum())
        .collect();
    out.push((
        "profile totals".into(),
        format!("{total:?} {}", p.sample.len()).into_bytes(),
    ));
    out
}

#[cfg_attr(
    not(has_garage),
    ignore = "needs Garage: set $GARAGE or put garage on PATH"
)]
#[test]
fn a_query_instance_answers_for_the_fleet() {
    let bin = gocost_testkit::tools::require(&gocost_testkit::tools::GARAGE);
    let dir = fresh_dir("cluster", "e2e");
    let mut garage = garage::start_garage_cluster(&bin, &dir.join("garage"));
    let s3 = garage.s3.clone();
    let (pa, pb, pq, ps) = (free_port(), free_port(), free_port(), free_port());
    let peers = |ports: &[u16]| {
        let list: Vec<String> = ports
            .iter()
            .map(|p| format!("\"http://127.0.0.1:{p}\""))
            .collect();
        format!(
            "peers = [{}]\nrefresh = \"1s\"\npeer_timeout = \"3s\"\n",
            list.join(", ")
        )
    };
    let ca = config(
        &dir,
        "a",
        Some(&s3[0]),
        Some(format!("instance = \"a\"\n{}", peers(&[pb]))),
    );
    let cb = config(
        &dir,
        "b",
        Some(&s3[1]),
        Some(format!("instance = \"b\"\n{}", peers(&[pa]))),
    );
    let cq = config(
        &dir,
        "q",
        Some(&s3[2]),
        Some(format!("instance = \"q\"\n{}", peers(&[pa, pb, pq]))),
    );
    let cs = config(&dir, "single", None, None);
    let _a = serve(&ca, &dir.join("a"), pa, &[]);
    let mut b = serve(&cb, &dir.join("b"), pb, &[]);
    let _q = serve(&cq, &dir.join("q"), pq, &["--role", "query"]);
    let _s = serve(&cs, &dir.join("single"), ps, &["--no-demo"]);
    // Garage ignores conditional writes: the writers say so and elect no compactor (each
    // compacts its own blocks; docs/adr/0022).
    for w in ["a", "b"] {
        let log = std::fs::read_to_string(dir.join(format!("{w}.log"))).unwrap();
        assert!(
            log.contains("does not honour conditional writes") && !log.contains("lease taken"),
            "{w}: {log}"
        );
    }

    // Ten minutes of a fleet of four services, pushed to a or b by service, and all to the
    // single instance; a query-only instance refuses pushes.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let start = now - 600;
    let (cpu, cpu2, gor) = (
        profile("cpu.pb.gz"),
        profile("cpu2.pb.gz"),
        profile("goroutine.pb.gz"),
    );
    let send = |minutes: std::ops::Range<i64>| {
        for m in minutes {
            for svc in 0..4 {
                let writer = if svc % 2 == 0 { pa } else { pb };
                let t = start + m * 60 + svc;
                let c = if (m + svc) % 2 == 0 { &cpu } else { &cpu2 };
                for port in [writer, ps] {
                    push(port, &format!("svc{svc}.cpu"), t, c);
                    push(port, &format!("svc{svc}.goroutines"), t, &gor);
                }
            }
        }
    };
    send(0..5);
    let r = http_request(
        "POST",
        &format!("http://127.0.0.1:{pq}/ingest?name=x.cpu&format=pprof"),
        &[],
        &cpu,
    );
    assert_eq!(r.status, 403, "{}", r.text());
    // Wait until both writers cut blocks (block_duration 3s), then push more: the rest is
    // in their heads when the queries run (or in new blocks: the answer is the same).
    let blocks = |port: u16| {
        let (_, _, m) = get(port, "/metrics");
        String::from_utf8_lossy(&m)
            .lines()
            .find_map(|l| l.strip_prefix("gocost_store_blocks "))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    wait_for("blocks in the bucket", Duration::from_secs(60), || {
        blocks(pa) >= 1.0 && blocks(pb) >= 1.0
    });
    send(5..10);
    let (from, to) = (start - 1, now + 1);
    let t = std::time::Instant::now();
    let want = answers(ps, from, to);
    let single_took = t.elapsed();
    let t = std::time::Instant::now();
    assert_eq!(answers(pq, from, to), want, "q answers as one instance");
    eprintln!(
        "the answers took {single_took:?} from one instance, {:?} from the query instance",
        t.elapsed()
    );
    // The writers answer for the whole fleet too.
    assert_eq!(answers(pa, from, to), want, "a answers as one instance");
    // q read the blocks from the bucket through its block cache (docs/adr/0027); the
    // single instance, on local disk, has none.
    let metric = |port: u16, name: &str| {
        let (_, _, m) = get(port, "/metrics");
        String::from_utf8_lossy(&m).lines().find_map(|l| {
            l.strip_prefix(name)
                .and_then(|v| v.strip_prefix(' '))
                .and_then(|v| v.trim().parse::<f64>().ok())
        })
    };
    assert!(metric(pq, "gocost_store_block_read_bytes_total").is_some_and(|v| v > 0.0));
    // Its answers ask the same ranges again: served from the cache (or from memory while
    // being written), not fetched again.
    assert!(metric(pq, "gocost_store_block_cache_served_bytes_total").is_some_and(|v| v > 0.0));
    assert_eq!(metric(ps, "gocost_store_block_cache_entries"), None);

    // b killed: q still answers, marked partial.
    b.0.kill().unwrap();
    b.0.wait().unwrap();
    let (status, partial, body) = get(pq, &format!("/api/v1/top?query=cpu&from={from}&to={to}"));
    assert_eq!(status, 200);
    let partial = partial.expect("a partial answer says so in its header");
    assert!(partial.starts_with("1 peer(s) did not answer"), "{partial}");
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["partial"].as_array().map(Vec::len), Some(1), "{json}");
    let (status, partial, _) = get(
        pq,
        &format!("/api/v1/profile?query=cpu&from={from}&to={to}"),
    );
    assert_eq!(status, 200);
    assert!(partial.is_some(), "pprof downloads carry the header");

    // b back on its data directory: its head replayed, q's answers complete and equal.
    let _b = serve(&cb, &dir.join("b"), pb, &[]);
    assert_eq!(
        answers(pq, from, to),
        want,
        "complete again after b restarted"
    );

    // One Garage node down (b's endpoint): pushes are still acknowledged, q (on another
    // node) still answers completely — b keeps what it cannot cut in its WAL and head.
    garage.kill(1);
    send(10..12);
    let to = to + 120;
    let want = answers(ps, from, to);
    assert_eq!(
        answers(pq, from, to),
        want,
        "complete with a storage node down"
    );
    drop(b);
    let _ = std::fs::remove_dir_all(&dir);
}
