//! Alert rules end to end: `gocost serve` watches a real Go service with goroutine leaks
//! (`testdata/go/leaks`, rates ×4), a `goroutine_leak` rule fires and POSTs Alertmanager's
//! webhook JSON to a local receiver, a cost rule over budget fires and resolves when a
//! reload raises the budget, a rule under its threshold never notifies, and `/api/v1/alerts`
//! and `/metrics` show the state.
//!
//! Go is found through `$GO` or `go` on `PATH`; without it the test is reported as ignored, except in CI.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use gocost_testkit::procs::{fresh_dir, go_build, http_get, start_gocost, start_with_addr_file};

/// A webhook receiver on a free loopback port: each POST body (JSON) is sent on the channel
/// and answered 200. It serves at most `max` requests, each with a 10 s read timeout.
fn receiver(max: usize) -> (String, Inbox) {
    let ln = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = ln.local_addr().unwrap().to_string();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for conn in ln.incoming().take(max) {
            let Ok(mut c) = conn else { continue };
            let _ = c.set_read_timeout(Some(Duration::from_secs(10)));
            let mut r = BufReader::new(c.try_clone().unwrap());
            let mut len = 0usize;
            let mut line = String::new();
            while r.read_line(&mut line).is_ok_and(|n| n > 0) {
                let l = line.trim_end().to_ascii_lowercase();
                if l.is_empty() {
                    break;
                }
                if let Some(v) = l.strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
                line.clear();
            }
            let mut body = vec![0; len.min(1 << 20)];
            if r.read_exact(&mut body).is_err() {
                continue;
            }
            let _ =
                c.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            if let Ok(v) = serde_json::from_slice(&body) {
                let _ = tx.send(v);
            }
        }
    });
    (
        addr,
        Inbox {
            rx,
            held: Default::default(),
        },
    )
}

fn config(bed: &str, hook: &str, budget: f64) -> String {
    format!(
        "[alerting]\ninterval = \"2s\"\n\n\
         [[alert]]\nname = \"leaking goroutines\"\nwhen = \"goroutine_leak\"\n\
         query = '{{job=\"bed\"}}'\nwindow = \"10m\"\nwebhook = [\"http://{hook}/hook\"]\n\
         labels = {{ severity = \"page\" }}\n\n\
         [[alert]]\nname = \"over budget\"\nwhen = \"cost_per_month\"\nabove = {budget}\n\
         window = \"10m\"\nwebhook = [\"http://{hook}/hook\"]\n\n\
         [[alert]]\nname = \"slow GC\"\nwhen = \"gc_cpu_fraction\"\nabove = 0.99\n\
         webhook = [\"http://{hook}/hook\"]\n\n\
         [[scrape]]\njob = \"bed\"\ntargets = [\"{bed}\"]\ninterval = \"2s\"\n\
         profiles = [\"goroutine\", \"cpu\"]\n"
    )
}

/// The webhook's notifications, in arrival order.
struct Inbox {
    rx: mpsc::Receiver<serde_json::Value>,
    /// Arrived while another rule's was awaited: deliveries of one evaluation race.
    held: std::cell::RefCell<Vec<serde_json::Value>>,
}

/// The next notification of rule `name` (one that arrived earlier while another rule's was
/// awaited, else a new one), waiting up to `secs`. No notification of "slow GC" may come.
fn next_of(inbox: &Inbox, name: &str, secs: u64) -> serde_json::Value {
    let mut held = inbox.held.borrow_mut();
    if let Some(i) = held
        .iter()
        .position(|v| v["groupLabels"]["alertname"] == name)
    {
        return held.remove(i);
    }
    let end = Instant::now() + Duration::from_secs(secs);
    loop {
        let left = end.saturating_duration_since(Instant::now());
        match inbox.rx.recv_timeout(left) {
            Ok(v) if v["groupLabels"]["alertname"] == name => return v,
            Ok(v) => {
                assert_ne!(v["groupLabels"]["alertname"], "slow GC", "{v:#}");
                held.push(v);
            }
            Err(_) => panic!("no notification for {name:?} within {secs} s"),
        }
    }
}

#[cfg_attr(not(has_go), ignore = "needs Go: set $GO or put go on PATH")]
#[test]
fn rules_fire_resolve_and_notify_webhooks() {
    let go = gocost_testkit::go_toolchain();
    let dir = fresh_dir("alerts", "serve");
    let bin = dir.join("leaks");
    go_build(
        &go,
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/go/leaks"),
        &bin,
    );
    let (_bed, bed) = start_with_addr_file(
        &bin,
        &["-rate=4", "-nap=12s", "-duration=3m"],
        &dir.join("addr"),
    );
    let (hook, rx) = receiver(50);
    let cfg = dir.join("gocost.toml");
    // Any CPU use is over a budget of 0.
    std::fs::write(&cfg, config(&bed, &hook, 0.0)).unwrap();
    let (gocost, api) = start_gocost(
        Path::new(env!("CARGO_BIN_EXE_gocost")),
        &cfg,
        &dir.join("data"),
    );

    // Cost over budget: fires within a few evaluations.
    let v = next_of(&rx, "over budget", 60);
    assert_eq!(v["version"], "4");
    assert_eq!(v["status"], "firing", "{v:#}");
    let a = &v["alerts"][0];
    assert_eq!(a["labels"]["job"], "bed", "{v:#}");
    assert!(
        a["annotations"]["summary"]
            .as_str()
            .unwrap()
            .contains("a month")
    );
    assert_eq!(a["endsAt"], "0001-01-01T00:00:00Z");

    // Leaks: every one the leaks test finds, each an alert with the rule's labels.
    let mut functions = std::collections::BTreeSet::new();
    let end = Instant::now() + Duration::from_secs(120);
    while functions.len() < 4 {
        let left = end.saturating_duration_since(Instant::now()).as_secs();
        let v = next_of(&rx, "leaking goroutines", left.max(1));
        assert_eq!(v["status"], "firing");
        for a in v["alerts"].as_array().unwrap() {
            assert_eq!(a["status"], "firing", "{v:#}");
            assert_eq!(a["labels"]["severity"], "page");
            assert_eq!(a["labels"]["alertname"], "leaking goroutines");
            assert!(a["labels"]["blocking"].is_string(), "{a:#}");
            functions.insert(a["labels"]["function"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(
        functions.into_iter().collect::<Vec<_>>(),
        [
            "main.lockForever",
            "main.publish",
            "main.waitForAll",
            "main.watchLoop"
        ]
    );

    // The API and /metrics agree.
    let (code, body) = http_get(&format!("http://{api}/api/v1/alerts"));
    assert_eq!(code, 200);
    let rules: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let rule = |n: &str| {
        rules
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == n)
            .unwrap_or_else(|| panic!("{n} in {rules:#}"))
            .clone()
    };
    assert!(
        rule("leaking goroutines")["firing"]
            .as_array()
            .unwrap()
            .len()
            >= 4
    );
    assert!(rule("slow GC")["firing"].as_array().unwrap().is_empty());
    assert!(rule("slow GC")["last_evaluation_ms"].is_i64());
    assert_eq!(rule("over budget")["unit"], "money per month, per job");
    let (_, m) = http_get(&format!("http://{api}/metrics"));
    let m = String::from_utf8(m).unwrap();
    assert!(
        m.contains("gocost_alerts_firing{alertname=\"over budget\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("gocost_alerts_firing{alertname=\"slow GC\"} 0"),
        "{m}"
    );
    let sent = m
        .lines()
        .find_map(|l| l.strip_prefix("gocost_alert_notifications_total "))
        .unwrap();
    assert!(sent.parse::<u64>().unwrap() >= 2, "{m}");

    // A reload raises the budget: the cost alert resolves (a notification from before the
    // reload does not count).
    rx.held.borrow_mut().clear();
    std::fs::write(&cfg, config(&bed, &hook, 1e9)).unwrap();
    let pid = gocost.0.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success()
    );
    let v = next_of(&rx, "over budget", 60);
    assert_eq!(v["status"], "resolved", "{v:#}");
    assert_eq!(v["alerts"][0]["status"], "resolved");
    assert_ne!(v["alerts"][0]["endsAt"], "0001-01-01T00:00:00Z");

    // A bad rule is refused with the file, the rule and the reason.
    std::fs::write(
        dir.join("bad.toml"),
        "[[alert]]\nname = \"x\"\nwhen = \"gc_pause_p99\"\n",
    )
    .unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_gocost"))
        .args(["serve", "--config"])
        .arg(dir.join("bad.toml"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("bad.toml: alert[0] (\"x\"): gc_pause_p99 needs a threshold"),
        "{err}"
    );
}

/// Rules on execution traces: a real trace (Go 1.27's, `testdata/traces/go1.27.trace`) is
/// uploaded twice to a real `gocost serve`, under two jobs; its `go_trace_*` series feed
/// `trace_sched_latency_p99` and `trace_stw_p99` rules that fire with exactly the trace's
/// quantiles (as `gocost_trace::overview` computes them) for the job their query names, and a
/// `trace_gc_assist_fraction` rule over 1 never fires.
#[test]
fn trace_rules_fire_on_stored_trace_series() {
    let dir = fresh_dir("alerts", "traces");
    let (hook, rx) = receiver(20);
    let cfg = dir.join("gocost.toml");
    std::fs::write(
        &cfg,
        format!(
            "[alerting]\ninterval = \"1s\"\n\n\
             [[alert]]\nname = \"sched latency\"\nwhen = \"trace_sched_latency_p99\"\nabove = 0\n\
             query = '{{job=\"checkout\"}}'\nwebhook = [\"http://{hook}/hook\"]\n\n\
             [[alert]]\nname = \"stw\"\nwhen = \"trace_stw_p99\"\nabove = 0\n\
             webhook = [\"http://{hook}/hook\"]\n\n\
             [[alert]]\nname = \"assists\"\nwhen = \"trace_gc_assist_fraction\"\nabove = 1\n\
             webhook = [\"http://{hook}/hook\"]\n"
        ),
    )
    .unwrap();
    let (_gocost, api) = start_gocost(
        Path::new(env!("CARGO_BIN_EXE_gocost")),
        &cfg,
        &dir.join("data"),
    );
    let trace = gocost_testkit::repo_root().join("testdata/traces/go1.27.trace");
    for job in ["checkout", "search"] {
        let up = std::process::Command::new(env!("CARGO_BIN_EXE_gocost"))
            .args(["trace", "upload", "--server", &format!("http://{api}")])
            .args(["--job", job])
            .arg(&trace)
            .output()
            .unwrap();
        assert!(
            up.status.success(),
            "{}",
            String::from_utf8_lossy(&up.stderr)
        );
    }
    let events = gocost_trace::parse(&std::fs::read(&trace).unwrap()).unwrap();
    let o = gocost_trace::overview(&events);
    assert!(o.sched.count > 0 && o.stw.count > 0);
    let value = |a: &serde_json::Value| -> f64 {
        a["annotations"]["value"].as_str().unwrap().parse().unwrap()
    };

    // Scheduler latency: only the job the query names.
    let v = next_of(&rx, "sched latency", 60);
    assert_eq!(v["status"], "firing", "{v:#}");
    let alerts = v["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 1, "{v:#}");
    assert_eq!(alerts[0]["labels"]["job"], "checkout");
    assert_eq!(value(&alerts[0]), o.sched.p99_ns as f64 / 1e9, "{v:#}");
    let summary = alerts[0]["annotations"]["summary"].as_str().unwrap();
    assert!(summary.starts_with("p99 scheduler latency "), "{summary}");

    // Stop-the-world pauses: both jobs (the rule has no query), each with the trace's p99.
    let mut jobs = std::collections::BTreeSet::new();
    while jobs.len() < 2 {
        let v = next_of(&rx, "stw", 60);
        for a in v["alerts"].as_array().unwrap() {
            assert_eq!(a["status"], "firing", "{v:#}");
            assert_eq!(value(a), o.stw.p99_ns as f64 / 1e9, "{v:#}");
            jobs.insert(a["labels"]["job"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(jobs.into_iter().collect::<Vec<_>>(), ["checkout", "search"]);

    // Assists over the whole of the procs' time cannot happen: evaluated, never firing.
    let assists = || {
        let (code, body) = http_get(&format!("http://{api}/api/v1/alerts"));
        assert_eq!(code, 200);
        let rules: serde_json::Value = serde_json::from_slice(&body).unwrap();
        rules
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "assists")
            .unwrap()
            .clone()
    };
    gocost_testkit::procs::wait_for(
        "the assists rule evaluated",
        Duration::from_secs(60),
        || assists()["last_evaluation_ms"].is_i64(),
    );
    let rules = assists();
    let assists = &rules;
    assert!(assists["last_error"].is_null(), "{rules:#}");
    assert!(
        assists["firing"].as_array().unwrap().is_empty(),
        "{rules:#}"
    );
    assert_eq!(assists["unit"], "fraction of the procs' time (0..1)");
}
