//! `gocost serve` end to end against a real Go service: it scrapes it, `go tool pprof`
//! reads merged profiles from the API, a broken target shows its error without disturbing
//! the healthy one, and `kill -9` loses nothing older than the sync interval.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use gocost_testkit::procs::{Proc, go_build, http_get as get, start_with_addr_file};

fn go() -> PathBuf {
    gocost_testkit::go_toolchain()
}

fn tmp(name: &str) -> PathBuf {
    gocost_testkit::procs::fresh_dir("serve", name)
}

fn start_demo(go: &Path, dir: &Path) -> (Proc, String) {
    let bin = dir.join("demo");
    go_build(
        go,
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/go/demo"),
        &bin,
    );
    start_with_addr_file(&bin, &["-duration=2m"], &dir.join("addr"))
}

/// Starts `gocost serve` on a free loopback port; returns it and its address.
fn start_gocost(config: &Path, data: &Path) -> (Proc, String) {
    gocost_testkit::procs::start_gocost(Path::new(env!("CARGO_BIN_EXE_gocost")), config, data)
}

fn json(url: &str) -> serde_json::Value {
    let (code, body) = get(url);
    assert_eq!(code, 200, "{url}: {}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).unwrap()
}

fn wait_for(what: &str, f: impl FnMut() -> bool) {
    gocost_testkit::procs::wait_for(what, Duration::from_secs(90), f)
}

#[cfg_attr(not(has_go), ignore = "needs Go: set $GO or put go on PATH")]
#[test]
fn scrapes_a_go_service_and_serves_pprof() {
    let go = go();
    let dir = tmp("e2e");
    let (_demo, demo_addr) = start_demo(&go, &dir);
    let config = dir.join("gocost.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[storage]
retention = "1d"
sync_interval = "500ms"
block_duration = "2s"
head_cache = "100KiB"
head_max = "256MiB"

[[scrape]]
job = "demo"
targets = ["{demo_addr}"]
interval = "2s"
cpu_window = "1s"
profiles = ["cpu", "goroutine", "mutex", "heap"]
metrics = ["expvar"]
labels = {{ env = "test" }}

[[scrape]]
job = "broken"
targets = ["127.0.0.1:1"]
interval = "1s"
profiles = ["goroutine"]
"#
        ),
    )
    .unwrap();
    let data = dir.join("data");
    let (gocost, addr) = start_gocost(&config, &data);
    let base = format!("http://{addr}");

    // Targets: the healthy one comes up, the broken one reports why.
    wait_for("targets", || {
        let t = json(&format!("{base}/api/v1/targets"));
        let arr = t.as_array().unwrap();
        let up = |job: &str, kind: &str| {
            arr.iter()
                .any(|h| h["job"] == job && h["kind"] == kind && h["up"] == true)
        };
        let broken_err = arr
            .iter()
            .any(|h| h["job"] == "broken" && h["last_error"].is_string());
        up("demo", "goroutine") && up("demo", "cpu") && broken_err
    });

    // go tool pprof reads the API directly.
    let pprof = gocost_testkit::procs::go_tool(&go, "pprof");
    let home = dir.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let pprof_top = |base: &str, query: &str| {
        let url = format!("{base}/api/v1/profile?query={query}&from=now-10m");
        let out = gocost_testkit::procs::retry_busy(|| {
            Command::new(&pprof)
                .args(["-symbolize=none", "-top", &url])
                .env("HOME", &home)
                .env("PPROF_TMPDIR", &home)
                .output()
        })
        .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let g = pprof_top(&base, r#"goroutine{job="demo",env="test"}"#);
    assert!(
        g.contains("Type: goroutine") && g.contains("main.blockOnChan"),
        "{g}"
    );
    let cpu = pprof_top(&base, r#"cpu{job="demo"}"#);
    assert!(cpu.contains("Type: cpu") && cpu.contains("main."), "{cpu}");

    // Cumulative kinds are stored as deltas once two scrapes exist.
    wait_for("a mutex delta", || {
        get(&format!(
            "{base}/api/v1/profile?query=mutex%7Bjob%3D%22demo%22%7D&from=now-10m"
        ))
        .0 == 200
    });
    let top = json(&format!(
        "{base}/api/v1/top?query=mutex%7Bjob%3D%22demo%22%7D&from=now-10m"
    ));
    assert_eq!(top["sample_type"], "delay");

    // Runtime metrics from /debug/vars: heap gauges and each GC pause.
    wait_for("runtime metrics", || {
        let heap = json(&format!(
            "{base}/api/v1/runtime?query=%7B__name__%3D%22go_memstats_heap_alloc_bytes%22%2Cjob%3D%22demo%22%7D&from=now-10m"
        ));
        let pauses = json(&format!(
            "{base}/api/v1/runtime?query=%7B__name__%3D%22go_gc_pause_seconds%22%7D&from=now-1h"
        ));
        let has = |v: &serde_json::Value| {
            v.as_array().is_some_and(|a| {
                a.iter()
                    .any(|s| !s["points"].as_array().unwrap().is_empty())
            })
        };
        has(&heap) && has(&pauses)
    });

    // Errors are JSON with a status: bad selector, unknown kind, nothing in range.
    assert_eq!(get(&format!("{base}/api/v1/profile?query=cpu%7B")).0, 400);
    assert_eq!(
        get(&format!(
            "{base}/api/v1/profile?query=%7Bjob%3D%22demo%22%7D"
        ))
        .0,
        400
    );
    assert_eq!(
        get(&format!("{base}/api/v1/profile?query=cpu&from=0&to=1")).0,
        404
    );
    let metrics = String::from_utf8(get(&format!("{base}/metrics")).1).unwrap();
    assert!(
        metrics.contains("gocost_scrape_up{job=\"demo\",instance=")
            && metrics.contains("gocost_store_profiles")
    );
    let head = metric(&format!("{base}/metrics"), "gocost_store_head_bytes");
    // (Right after a block cut the head may be empty: only its presence and bound.)
    assert!(
        (0.0..256.0 * 1024.0 * 1024.0).contains(&head),
        "the head's memory is exported, under head_max: {head}"
    );

    // kill -9, three times, while ingesting: each restart replays cleanly and keeps what was
    // synced before the kill.
    let mut gocost = gocost;
    let mut base = base;
    for round in 0..3 {
        std::thread::sleep(Duration::from_millis(1500));
        let before = json(&format!("{base}/api/v1/series"))
            .as_array()
            .unwrap()
            .len();
        let count_before = metric(&format!("{base}/metrics"), "gocost_store_profiles");
        std::thread::sleep(Duration::from_millis(700)); // > sync interval
        let _ = gocost.0.kill(); // SIGKILL
        let _ = gocost.0.wait();
        let (g2, addr2) = start_gocost(&config, &data);
        gocost = g2;
        let base2 = format!("http://{addr2}");
        let after = json(&format!("{base2}/api/v1/series"))
            .as_array()
            .unwrap()
            .len();
        assert!(after >= before, "round {round}: series {after} < {before}");
        let count_after = metric(&format!("{base2}/metrics"), "gocost_store_profiles");
        assert!(
            count_after >= count_before,
            "round {round}: {count_after} profiles < {count_before}"
        );
        base = base2;
    }
    // Blocks were cut while serving (every 2 s) and survived the kills.
    let blocks = metric(&format!("{base}/metrics"), "gocost_store_blocks");
    assert!(blocks >= 1.0, "no blocks cut");
    // The real tool still reads a range that spans blocks and the head.
    let g = pprof_top(&base, r#"goroutine{job="demo"}"#);
    assert!(g.contains("main.blockOnChan"), "{g}");
    drop(gocost);
    // Stopped, the store verifies clean: every block and WAL record decodes.
    let v = Command::new(env!("CARGO_BIN_EXE_gocost"))
        .args(["verify", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&v.stdout);
    assert!(
        v.status.success() && text.contains("clean"),
        "{text}{}",
        String::from_utf8_lossy(&v.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The value of an unlabelled series on a /metrics page; a missing or unparsable series fails
/// the test (a check must never pass on a metric that is not there).
fn metric(url: &str, name: &str) -> f64 {
    let text = String::from_utf8(get(url).1).unwrap();
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("{url} has no series {name}:\n{text}"));
    line.trim()
        .parse()
        .unwrap_or_else(|e| panic!("{url}: {name} {line:?}: {e}"))
}

/// A fake target on 127.0.0.1 misbehaving in one way; serves a bounded number of requests
/// and stops with the test.
fn faulty(kind: &'static str) -> String {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for conn in l.incoming().take(200) {
            let Ok(mut c) = conn else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; 2048];
                let _ = c.set_read_timeout(Some(Duration::from_secs(5)));
                let _ = c.read(&mut buf);
                match kind {
                    "hang" => std::thread::sleep(Duration::from_secs(30)),
                    "500" => {
                        let _ = c.write_all(
                            b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\nboom",
                        );
                    }
                    "garbage" => {
                        let _ = c
                            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nnot pprof!!");
                    }
                    "huge" => {
                        let _ =
                            c.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 104857600\r\n\r\n");
                        let chunk = vec![0u8; 1 << 16];
                        for _ in 0..64 {
                            if c.write_all(&chunk).is_err() {
                                break;
                            }
                        }
                    }
                    _ => {
                        // trickle: one byte every 200 ms
                        let _ = c.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n");
                        for _ in 0..1000 {
                            if c.write_all(b"x").is_err() {
                                break;
                            }
                            std::thread::sleep(Duration::from_millis(200));
                        }
                    }
                }
            });
        }
    });
    addr
}

#[cfg_attr(not(has_go), ignore = "needs Go: set $GO or put go on PATH")]
#[test]
fn faulty_targets_do_not_disturb_healthy_ones() {
    let go = go();
    let dir = tmp("faulty");
    let (_demo, demo_addr) = start_demo(&go, &dir);
    let kinds = ["hang", "500", "garbage", "huge", "trickle"];
    let mut jobs = String::new();
    for k in kinds {
        jobs.push_str(&format!(
            "\n[[scrape]]\njob = \"{k}\"\ntargets = [\"{}\"]\ninterval = \"1s\"\ntimeout = \"1s\"\nmax_body = \"1MiB\"\nprofiles = [\"goroutine\"]\n",
            faulty(k)
        ));
    }
    let config = dir.join("gocost.toml");
    std::fs::write(
        &config,
        format!(
            "[[scrape]]\njob = \"demo\"\ntargets = [\"{demo_addr}\"]\ninterval = \"1s\"\nprofiles = [\"goroutine\", \"heap\"]\n{jobs}"
        ),
    )
    .unwrap();
    let (_gocost, addr) = start_gocost(&config, &dir.join("data"));
    let targets = || json(&format!("http://{addr}/api/v1/targets"));
    wait_for("every faulty target to report an error", || {
        let t = targets();
        kinds.iter().all(|k| {
            t.as_array()
                .unwrap()
                .iter()
                .any(|h| h["job"] == *k && h["last_error"].is_string())
        })
    });
    // Meanwhile the healthy target kept its 1 s cadence.
    let t0 = targets();
    let count = |t: &serde_json::Value| {
        t.as_array()
            .unwrap()
            .iter()
            .find(|h| h["job"] == "demo" && h["kind"] == "goroutine")
            .unwrap()["scrapes_total"]
            .as_u64()
            .unwrap()
    };
    let before = count(&t0);
    std::thread::sleep(Duration::from_secs(5));
    let t1 = targets();
    assert!(
        count(&t1) >= before + 3,
        "healthy target slowed down: {} → {}",
        before,
        count(&t1)
    );
    for h in t1.as_array().unwrap() {
        let job = h["job"].as_str().unwrap();
        if job == "demo" {
            assert_eq!(h["up"], true, "{h}");
        } else {
            assert_eq!(h["up"], false, "{h}");
        }
    }
    let errs: Vec<String> = t1
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["job"] != "demo")
        .map(|h| format!("{}: {}", h["job"], h["last_error"]))
        .collect();
    let all = errs.join("\n");
    // A hanging and a trickling target are timeouts, and their errors say so.
    for slow in ["\"hang\": \"timeout", "\"trickle\": \"timeout"] {
        assert!(all.contains(slow), "{all}");
    }
    assert!(all.contains("500"), "{all}");
    assert!(all.contains("max_body"), "{all}");
    assert!(
        all.contains("parsing profile") || all.contains("bad profile"),
        "{all}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A real Prometheus scrapes gocost's `/metrics` and sees its series; gocost in turn
/// scrapes that Prometheus — a real Go service — for profiles and for the `go_*` and
/// `process_*` runtime metrics of its `/metrics`.
#[cfg_attr(
    not(has_prometheus),
    ignore = "needs Prometheus: set $PROMETHEUS or put prometheus on PATH"
)]
#[test]
fn prometheus_scrapes_gocost_metrics() {
    let prom = gocost_testkit::tools::require(&gocost_testkit::tools::PROMETHEUS);
    let dir = tmp("prom");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = dir.join("gocost.toml");
    std::fs::write(
        &config,
        format!(
            r#"[storage]
sync_interval = "1s"

[[scrape]]
job = "prometheus"
targets = ["127.0.0.1:{port}"]
interval = "1s"
profiles = ["goroutine", "heap"]
metrics = ["prometheus"]
"#
        ),
    )
    .unwrap();
    let (_gocost, addr) = start_gocost(&config, &dir.join("data"));
    let prom_cfg = dir.join("prometheus.yml");
    std::fs::write(
        &prom_cfg,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: gocost\n    static_configs:\n      - targets: ['{addr}']\n"
        ),
    )
    .unwrap();
    let _prom = Proc(
        Command::new(&prom)
            .arg(format!("--config.file={}", prom_cfg.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let query = |q: &str| -> Option<f64> {
        let r = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(5))
            .no_proxy()
            .build()
            .ok()?
            .get(format!(
                "http://127.0.0.1:{port}/api/v1/query?query={}",
                percent(q)
            ))
            .send()
            .ok()?;
        let v: serde_json::Value = serde_json::from_slice(&r.bytes().ok()?).ok()?;
        v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    wait_for("Prometheus to scrape gocost", || {
        query(r#"up{job="gocost"}"#) == Some(1.0)
            && query("gocost_store_profiles").is_some_and(|v| v > 0.0)
    });
    // gocost's scrapes of Prometheus failed until it started, then back off and recover
    // (Prometheus renames the colliding `job` label of gocost's series to `exported_job`).
    wait_for("gocost to scrape Prometheus", || {
        query(r#"gocost_scrape_up{exported_job="prometheus",kind="prometheus"}"#) == Some(1.0)
    });
    // gocost's side: Prometheus's goroutines as a profile, its runtime as metric series.
    let base = format!("http://{addr}");
    let runtime = |name: &str| {
        json(&format!(
            "{base}/api/v1/runtime?query={}&from=now-5m",
            percent(&format!(r#"{{__name__="{name}",job="prometheus"}}"#))
        ))
    };
    wait_for("runtime metrics from Prometheus's /metrics", || {
        runtime("go_goroutines")
            .as_array()
            .is_some_and(|a| !a.is_empty())
    });
    let g = runtime("go_goroutines");
    let v = g[0]["points"][0][1].as_f64().unwrap();
    assert!((5.0..10_000.0).contains(&v), "go_goroutines {v}");
    let rss = runtime("process_resident_memory_bytes");
    assert!(rss[0]["points"][0][1].as_f64().unwrap() > 1e6, "{rss}");
    let q = runtime("go_gc_duration_seconds");
    let quantiles: Vec<&str> = q
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["labels"]["quantile"].as_str())
        .collect();
    assert!(quantiles.contains(&"0.5"), "{q}");
    let top = String::from_utf8(
        get(&format!(
            "{base}/api/v1/top?query={}&from=now-5m",
            percent(r#"goroutine{job="prometheus"}"#)
        ))
        .1,
    )
    .unwrap();
    assert!(top.contains("github.com/prometheus/prometheus"), "{top}");
    let _ = std::fs::remove_dir_all(&dir);
}

fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'_' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// SIGHUP reloads the scrape jobs from the config file; a broken edit keeps the old ones.
#[test]
fn sighup_reloads_scrape_jobs() {
    let dir = tmp("hup");
    let config = dir.join("gocost.toml");
    let job = |name: &str| {
        format!(
            "[[scrape]]\njob = \"{name}\"\ntargets = [\"127.0.0.1:1\"]\ninterval = \"1s\"\nprofiles = [\"goroutine\"]\n"
        )
    };
    std::fs::write(&config, job("before")).unwrap();
    let (gocost, addr) = start_gocost(&config, &dir.join("data"));
    let jobs = || -> Vec<String> {
        json(&format!("http://{addr}/api/v1/targets"))
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["job"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(jobs(), ["before"]);
    let hup = || {
        let st = Command::new("kill")
            .args(["-HUP", &gocost.0.id().to_string()])
            .status()
            .unwrap();
        assert!(st.success());
    };
    std::fs::write(&config, "this is not toml").unwrap();
    hup();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(jobs(), ["before"], "a broken config must keep the old jobs");
    std::fs::write(&config, job("after")).unwrap();
    hup();
    wait_for("the reloaded job", || jobs() == ["after"]);
    drop(gocost);
    let _ = std::fs::remove_dir_all(&dir);
}
