//! Target discovery end to end (docs/discovery/): a real `gocost serve` follows `file_sd`
//! files rewritten under it with real Go services behind the targets, an HTTP SD endpoint
//! whose answer changes (and fails), a real DNS server (dnsmasq) whose SRV and A records
//! change; and its relabelling gives the same targets as a real Prometheus' for the same
//! files and rules.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gocost_testkit::procs::{
    Log, Proc, enc, go_build, http_get as get, start_gocost_logged, start_with_addr_file,
};
use serde_json::Value;

fn tmp(name: &str) -> PathBuf {
    gocost_testkit::procs::fresh_dir("discovery", name)
}

fn wait_for(what: &str, f: impl FnMut() -> bool) {
    gocost_testkit::procs::wait_for(what, Duration::from_secs(90), f)
}

fn json(url: &str) -> Value {
    let (code, body) = get(url);
    assert_eq!(code, 200, "{url}: {}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).unwrap_or_else(|e| panic!("{url}: {e}"))
}

/// Builds the `steady` test bed once per test binary run (into `dir`).
fn steady_bin(dir: &Path) -> PathBuf {
    let bin = dir.join("steady");
    go_build(
        &gocost_testkit::go_toolchain(),
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/go/steady"),
        &bin,
    );
    bin
}

/// A small real Go service serving net/http/pprof; its `host:port`.
fn steady(bin: &Path, dir: &Path, name: &str) -> (Proc, String) {
    start_with_addr_file(
        bin,
        &["-goroutines=10", "-heap=4", "-duration=10m"],
        &dir.join(format!("{name}.addr")),
    )
}

fn start_gocost(config: &Path, data: &Path) -> (Proc, String, Log) {
    start_gocost_logged(
        Path::new(env!("CARGO_BIN_EXE_gocost")),
        &[
            "--config".as_ref(),
            config.as_os_str(),
            "--data".as_ref(),
            data.as_os_str(),
            "--no-demo".as_ref(),
        ],
    )
}

/// Writes a file as a whole (a new file renamed over the old one), as config tools do.
fn write_atomic(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// The instances `/api/v1/targets` lists for `job`.
fn instances(base: &str, job: &str) -> BTreeSet<String> {
    json(&format!("{base}/api/v1/targets"))
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["job"] == job)
        .filter_map(|t| t["instance"].as_str().map(str::to_string))
        .collect()
}

/// One target's entry (the first kind) in `/api/v1/targets`.
fn target(base: &str, instance: &str) -> Option<Value> {
    json(&format!("{base}/api/v1/targets"))
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["instance"] == instance)
        .cloned()
}

/// Profiles stored for `instance` (goroutine) in the last hour.
fn stored(base: &str, instance: &str) -> u64 {
    let q = enc(&format!("goroutine{{instance=\"{instance}\"}}"));
    let tl = json(&format!(
        "{base}/api/v1/timeline?query={q}&from=now-1h&step=1h"
    ));
    tl["counts"]
        .as_array()
        .map_or(0, |c| c.iter().filter_map(Value::as_u64).sum())
}

fn scrapes(base: &str, instance: &str) -> u64 {
    target(base, instance).map_or(0, |t| t["scrapes_total"].as_u64().unwrap_or(0))
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[cfg_attr(not(has_go), ignore = "needs Go: set $GO or put go on PATH")]
#[test]
fn file_sd_targets_come_and_go_while_serving() {
    let dir = tmp("file");
    let bin = steady_bin(&dir);
    let (_a, a) = steady(&bin, &dir, "a");
    let (_b, b) = steady(&bin, &dir, "b");
    let sd = dir.join("sd");
    std::fs::create_dir_all(&sd).unwrap();
    let a_json = sd.join("a.json");
    write_atomic(
        &a_json,
        &format!(r#"[{{"targets": ["{a}"], "labels": {{"team": "red"}}}}]"#),
    );
    let config = dir.join("gocost.toml");
    std::fs::write(
        &config,
        format!(
            r#"[storage]
sync_interval = "200ms"

[[scrape]]
job = "fleet"
interval = "1s"
profiles = ["goroutine"]

[[scrape.file_sd]]
files = ["{sd}/*.json", "{sd}/*.yml"]
refresh_interval = "5m"
"#,
            sd = sd.display()
        ),
    )
    .unwrap();
    let (_gocost, addr, log) = start_gocost(&config, &dir.join("data"));
    let base = format!("http://{addr}");

    // The first file's target is scraped and its profiles stored, with its labels.
    wait_for("a's profiles", || stored(&base, &a) >= 2);
    let t = target(&base, &a).expect("a is a target");
    assert_eq!(t["labels"]["team"], "red", "{t}");
    assert_eq!(t["labels"]["job"], "fleet", "{t}");
    assert_eq!(
        t["discovered_labels"]["__meta_filepath"],
        a_json.display().to_string(),
        "{t}"
    );
    assert_eq!(t["discovered_labels"]["__address__"], a.as_str(), "{t}");

    // A YAML file appears: its target starts within one poll, well before refresh_interval.
    write_atomic(
        &sd.join("b.yml"),
        &format!("- targets: ['{b}']\n  labels:\n    team: blue\n"),
    );
    wait_for("b's profiles", || stored(&base, &b) >= 2);
    assert_eq!(instances(&base, "fleet"), set(&[&a, &b]));

    // a.json is rewritten broken: its last good targets stay, the error names the file and
    // the position.
    write_atomic(&a_json, &format!(r#"[{{"targets": ["{a}",]}}]"#));
    let said = || {
        log.lock()
            .unwrap()
            .iter()
            .any(|l| l.contains(&a_json.display().to_string()) && l.contains("line 1 column"))
    };
    wait_for("the parse error in the log", said);
    assert_eq!(instances(&base, "fleet"), set(&[&a, &b]));
    let before = scrapes(&base, &a);
    wait_for("a is still scraped", || scrapes(&base, &a) > before + 1);

    // a.json goes away: a stops (its loop cancelled, its series ends), b goes on.
    std::fs::remove_file(&a_json).unwrap();
    wait_for("a gone", || instances(&base, "fleet") == set(&[&b]));
    let b0 = scrapes(&base, &b);
    wait_for("b scraped once more", || scrapes(&base, &b) > b0);
    let a_stored = stored(&base, &a);
    let b1 = scrapes(&base, &b);
    wait_for("b scraped three more times", || {
        scrapes(&base, &b) >= b1 + 3
    });
    assert_eq!(
        stored(&base, &a),
        a_stored,
        "a removed target is not scraped"
    );
    assert!(stored(&base, &b) > 2);
    let _ = std::fs::remove_dir_all(&dir);
}

/// An HTTP SD endpoint on 127.0.0.1 answering what `answer` holds now (status, content
/// type, body); it records each request's Authorization header.
struct SdServer {
    addr: String,
    answer: Arc<Mutex<(u16, String, String)>>,
    auth: Arc<Mutex<Vec<String>>>,
}

fn sd_server() -> SdServer {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let answer = Arc::new(Mutex::new((
        200,
        "application/json".to_string(),
        "[]".to_string(),
    )));
    let auth = Arc::new(Mutex::new(Vec::new()));
    let (ans, au) = (answer.clone(), auth.clone());
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut c) = conn else { return };
            let _ = c.set_read_timeout(Some(Duration::from_secs(5)));
            let mut r = BufReader::new(match c.try_clone() {
                Ok(c) => c,
                Err(_) => continue,
            });
            let mut header = String::new();
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                header.push_str(&line);
            }
            let authz = header
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("authorization")
                        .then(|| v.trim().to_string())
                })
                .unwrap_or_default();
            au.lock().unwrap().push(authz);
            let (status, ct, body) = ans.lock().unwrap().clone();
            let _ = write!(
                c,
                "HTTP/1.1 {status} X\r\nContent-Type: {ct}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    SdServer { addr, answer, auth }
}

#[cfg_attr(not(has_go), ignore = "needs Go: set $GO or put go on PATH")]
#[test]
fn http_sd_follows_the_endpoint_and_keeps_the_last_list_when_it_fails() {
    let dir = tmp("http");
    let bin = steady_bin(&dir);
    let (_a, a) = steady(&bin, &dir, "a");
    let (_b, b) = steady(&bin, &dir, "b");
    let sd = sd_server();
    let groups = |addrs: &[&str]| {
        let list: Vec<String> = addrs.iter().map(|a| format!("\"{a}\"")).collect();
        format!(
            r#"[{{"targets": [{}], "labels": {{"dc": "x"}}}}]"#,
            list.join(",")
        )
    };
    *sd.answer.lock().unwrap() = (200, "application/json".into(), groups(&[&a]));
    let config = dir.join("gocost.toml");
    std::fs::write(
        &config,
        format!(
            r#"[[scrape]]
job = "web"
interval = "1s"
profiles = ["goroutine"]
bearer_token = "sd-token-123"

[[scrape.http_sd]]
url = "http://{}/sd"
refresh_interval = "1s"
"#,
            sd.addr
        ),
    )
    .unwrap();
    let (_gocost, addr, log) = start_gocost(&config, &dir.join("data"));
    let base = format!("http://{addr}");
    wait_for("a's profiles", || stored(&base, &a) >= 1);
    let t = target(&base, &a).expect("a");
    assert_eq!(
        t["discovered_labels"]["__meta_url"],
        format!("http://{}/sd", sd.addr)
    );
    assert_eq!(t["labels"]["dc"], "x");
    assert!(
        sd.auth
            .lock()
            .unwrap()
            .iter()
            .all(|h| h == "Bearer sd-token-123"),
        "the job's token is sent: {:?}",
        sd.auth.lock().unwrap()
    );

    *sd.answer.lock().unwrap() = (200, "application/json".into(), groups(&[&a, &b]));
    wait_for("b's profiles", || stored(&base, &b) >= 1);
    assert_eq!(instances(&base, "web"), set(&[&a, &b]));

    // Failing refreshes (an error status, then a wrong content type) keep the last list.
    for (status, ct, says) in [
        (500, "application/json", "HTTP 500"),
        (200, "text/plain", "Content-Type"),
    ] {
        *sd.answer.lock().unwrap() = (status, ct.into(), "[]".into());
        let asked = sd.auth.lock().unwrap().len();
        wait_for("two failed refreshes", || {
            sd.auth.lock().unwrap().len() >= asked + 2
        });
        wait_for(&format!("the failure ({says}) in the log"), || {
            log.lock()
                .unwrap()
                .iter()
                .any(|l| l.contains("http_sd") && l.contains(says))
        });
        assert_eq!(instances(&base, "web"), set(&[&a, &b]));
    }

    *sd.answer.lock().unwrap() = (200, "application/json".into(), groups(&[&b]));
    wait_for("a gone", || instances(&base, "web") == set(&[&b]));
    let _ = std::fs::remove_dir_all(&dir);
}

/// dnsmasq on 127.0.0.1:`port` answering `records` (its command-line options), in the
/// foreground, reading no system files.
fn dnsmasq(port: u16, records: &[String]) -> Proc {
    let bin = gocost_testkit::tools::require(&gocost_testkit::tools::DNSMASQ);
    let mut child = Command::new(bin)
        .args([
            "--keep-in-foreground",
            "--conf-file=/dev/null",
            "--no-resolv",
            "--no-hosts",
            "--no-poll",
            "--bind-interfaces",
            "--listen-address=127.0.0.1",
            "--pid-file=",
            "--user=root",
            "--log-facility=-",
            "--log-queries",
        ])
        .arg(format!("--port={port}"))
        .args(records)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting dnsmasq");
    // Ready when it says so (it logs to stderr with --log-facility=-).
    let mut err = BufReader::new(child.stderr.take().expect("stderr"));
    let mut seen = String::new();
    let mut line = String::new();
    while err.read_line(&mut line).unwrap_or(0) > 0 {
        seen.push_str(&line);
        if line.contains("started") {
            break;
        }
        line.clear();
    }
    assert!(seen.contains("started"), "dnsmasq did not start: {seen}");
    // Keep draining its log so it never blocks on a full pipe.
    std::thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = err.read_to_end(&mut sink);
    });
    Proc(child)
}

fn free_udp_port() -> u16 {
    // A port free for both UDP and TCP on 127.0.0.1.
    loop {
        let u = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = u.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

#[cfg_attr(not(has_go), ignore = "needs Go: set $GO or put go on PATH")]
#[cfg_attr(
    not(has_dnsmasq),
    ignore = "needs dnsmasq: set $DNSMASQ or apt-get install dnsmasq"
)]
#[test]
fn dns_sd_follows_srv_and_a_records() {
    let dir = tmp("dns");
    let bin = steady_bin(&dir);
    let (_a, a) = steady(&bin, &dir, "a");
    let (_b, b) = steady(&bin, &dir, "b");
    let port_of = |addr: &str| addr.rsplit_once(':').unwrap().1.to_string();
    let (pa, pb) = (port_of(&a), port_of(&b));
    let dns_port = free_udp_port();
    let srv = |ports: &[&str]| -> Vec<String> {
        let mut r = vec![
            "--host-record=steady.gocost.test,127.0.0.1,::1".to_string(),
            // Names under nowhere.test do not exist (NXDOMAIN): the search list moves on.
            "--local=/nowhere.test/".to_string(),
        ];
        // More SRV records than a 512-byte UDP answer holds: truncated, asked again over TCP.
        for i in 0..40 {
            r.push(format!(
                "--srv-host=_many._tcp.gocost.test,m{i}.gocost.test,{}",
                7000 + i
            ));
        }
        for (i, p) in ports.iter().enumerate() {
            r.push(format!(
                "--srv-host=_pprof._tcp.gocost.test,s{i}.gocost.test,{p},0,{i}"
            ));
        }
        r
    };
    let mut dns = dnsmasq(dns_port, &srv(&[&pa]));
    let config = dir.join("gocost.toml");
    std::fs::write(
        &config,
        format!(
            r#"[[scrape]]
job = "srv"
interval = "1s"
profiles = ["goroutine"]

[[scrape.dns_sd]]
names = ["_pprof._tcp.gocost.test"]
resolver = "127.0.0.1:{dns_port}"
refresh_interval = "1s"

# The SRV targets' names are only in the test's DNS: scrape them on 127.0.0.1 at their port.
[[scrape.relabel]]
source_labels = ["__meta_dns_srv_record_port"]
target_label = "__address__"
replacement = "127.0.0.1:$1"

[[scrape]]
job = "a-record"
interval = "1s"
profiles = ["goroutine"]

[[scrape.dns_sd]]
names = ["steady.gocost.test"]
type = "A"
port = {pb}
resolver = "127.0.0.1:{dns_port}"
refresh_interval = "1s"

[[scrape.dns_sd]]
names = ["steady.gocost.test"]
type = "AAAA"
port = {pb}
resolver = "127.0.0.1:{dns_port}"
refresh_interval = "1s"

# A short name found through resolv.conf's search list (nowhere.test first: NXDOMAIN).
[[scrape]]
job = "search"
interval = "1h"
profiles = ["goroutine"]

[[scrape.dns_sd]]
names = ["steady"]
type = "A"
port = {pb}
resolver = "127.0.0.1:{dns_port}"
refresh_interval = "1s"

[[scrape]]
job = "many"
interval = "1h"
profiles = ["goroutine"]

[[scrape.dns_sd]]
names = ["_many._tcp.gocost.test"]
resolver = "127.0.0.1:{dns_port}"
refresh_interval = "1s"
"#
        ),
    )
    .unwrap();
    let resolv = dir.join("resolv.conf");
    std::fs::write(
        &resolv,
        "nameserver 127.0.0.1\nsearch nowhere.test gocost.test\noptions ndots:2\n",
    )
    .unwrap();
    let data = dir.join("data");
    let (_gocost, addr, _log) = gocost_testkit::procs::start_gocost_logged_env(
        Path::new(env!("CARGO_BIN_EXE_gocost")),
        &[
            "--config".as_ref(),
            config.as_os_str(),
            "--data".as_ref(),
            data.as_os_str(),
            "--no-demo".as_ref(),
        ],
        &[("GOCOST_RESOLV_CONF", resolv.as_os_str())],
    );
    let base = format!("http://{addr}");

    wait_for("the SRV target's profiles", || stored(&base, &a) >= 1);
    let t = target(&base, &a).expect("a");
    let d = &t["discovered_labels"];
    assert_eq!(d["__meta_dns_name"], "_pprof._tcp.gocost.test", "{t}");
    assert_eq!(d["__meta_dns_srv_record_target"], "s0.gocost.test.", "{t}");
    assert_eq!(d["__meta_dns_srv_record_port"], pa.as_str(), "{t}");
    assert_eq!(d["__address__"], format!("s0.gocost.test:{pa}"), "{t}");
    wait_for("the A target's profiles", || stored(&base, &b) >= 1);
    // The AAAA record is a target too (the test bed listens on IPv4 only: it is listed, its
    // scrapes fail).
    let v6 = format!("[::1]:{pb}");
    wait_for("the AAAA target", || {
        instances(&base, "a-record") == set(&[&b, &v6])
    });
    // `steady` through the search list: steady.nowhere.test (NXDOMAIN), steady.gocost.test.
    wait_for("the target found through the search list", || {
        instances(&base, "search") == set(&[&b])
    });
    let t = json(&format!("{base}/api/v1/targets"))
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["job"] == "search")
        .cloned()
        .unwrap();
    assert_eq!(t["discovered_labels"]["__meta_dns_name"], "steady", "{t}");
    // 40 SRV records: the truncated UDP answer is asked again over TCP.
    wait_for("40 SRV targets", || instances(&base, "many").len() == 40);
    assert!(instances(&base, "many").contains("m39.gocost.test:7039"));

    // The records change (dnsmasq restarted with others): b joins the SRV job. While it is
    // down the refreshes fail and the last list stays.
    drop(dns);
    dns = dnsmasq(dns_port, &srv(&[&pa, &pb]));
    wait_for("two SRV targets", || {
        instances(&base, "srv") == set(&[&a, &b])
    });
    drop(dns);
    let _dns = dnsmasq(dns_port, &srv(&[&pb]));
    wait_for("one SRV target", || instances(&base, "srv") == set(&[&b]));
    let _ = std::fs::remove_dir_all(&dir);
}

/// The relabelling cases checked against Prometheus: one file of target groups, the same
/// rules in both configurations (YAML for Prometheus, TOML for gocost).
const GROUPS: &str = r#"[
  {"targets": ["10.1.0.1:6060", "10.1.0.2:6060", "10.1.0.3:9999"], "labels": {"env": "prod", "team": "red"}},
  {"targets": ["10.2.0.1:6060", "web-1"], "labels": {"env": "staging", "team": "blue", "team_lead": "ana"}},
  {"targets": ["10.3.0.1:6060"], "labels": {"env": "dev", "team": "x"}},
  {"targets": ["10.4.0.1:6060", "10.4.0.2:7070"], "labels": {"env": "prod", "team": "x", "zone": "eu", "site": "Straße-İst"}},
  {"targets": ["10.5.0.1:6060"], "labels": {"env": "prod", "instance": "named-by-sd"}},
  {"targets": ["10.6.0.1:6060"], "labels": {"env": "prod", "team": "prod"}}
]"#;

/// (Prometheus YAML, gocost TOML) per rule, applied in this order.
const RULES: &[(&str, &str)] = &[
    // keep: only prod and staging
    (
        "source_labels: [env]\n  regex: prod|staging\n  action: keep",
        "source_labels = [\"env\"]\nregex = \"prod|staging\"\naction = \"keep\"",
    ),
    // drop: one port
    (
        "source_labels: [__address__]\n  regex: '.*:9999'\n  action: drop",
        "source_labels = [\"__address__\"]\nregex = \".*:9999\"\naction = \"drop\"",
    ),
    // replace with groups and the default replacement
    (
        "source_labels: [__address__]\n  regex: '([^:]+):(\\d+)'\n  target_label: host",
        "source_labels = [\"__address__\"]\nregex = '([^:]+):(\\d+)'\ntarget_label = \"host\"",
    ),
    // replace joining two labels with a separator, a named template
    (
        "source_labels: [env, team]\n  separator: /\n  regex: '(?P<e>[^/]+)/(.*)'\n  target_label: owner\n  replacement: '${2}@${e}'",
        "source_labels = [\"env\", \"team\"]\nseparator = \"/\"\nregex = '(?P<e>[^/]+)/(.*)'\ntarget_label = \"owner\"\nreplacement = '${2}@${e}'",
    ),
    // an empty result deletes the label
    (
        "source_labels: [team]\n  regex: x\n  target_label: team\n  replacement: ''",
        "source_labels = [\"team\"]\nregex = \"x\"\ntarget_label = \"team\"\nreplacement = \"\"",
    ),
    // a new port for one address
    (
        "source_labels: [__address__]\n  regex: '(10\\.4\\.0\\.2):7070'\n  target_label: __address__\n  replacement: '$1:6061'",
        "source_labels = [\"__address__\"]\nregex = '(10\\.4\\.0\\.2):7070'\ntarget_label = \"__address__\"\nreplacement = '$1:6061'",
    ),
    // hashmod into a temporary label, copied out
    (
        "source_labels: [__address__]\n  modulus: 3\n  target_label: __tmp_shard\n  action: hashmod",
        "source_labels = [\"__address__\"]\nmodulus = 3\ntarget_label = \"__tmp_shard\"\naction = \"hashmod\"",
    ),
    (
        "source_labels: [__tmp_shard]\n  target_label: shard",
        "source_labels = [\"__tmp_shard\"]\ntarget_label = \"shard\"",
    ),
    // labelmap from the meta label
    (
        "regex: '__meta_(file)path'\n  replacement: 'sd_$1'\n  action: labelmap",
        "regex = '__meta_(file)path'\nreplacement = 'sd_$1'\naction = \"labelmap\"",
    ),
    // dropequal: env equal to team (10.6.0.1); keepequal: a missing label equal to
    // `instance`, so only targets without one (not 10.5.0.1)
    (
        "source_labels: [env]\n  target_label: team\n  action: dropequal",
        "source_labels = [\"env\"]\ntarget_label = \"team\"\naction = \"dropequal\"",
    ),
    (
        "source_labels: [__tmp_none]\n  target_label: instance\n  action: keepequal",
        "source_labels = [\"__tmp_none\"]\ntarget_label = \"instance\"\naction = \"keepequal\"",
    ),
    // uppercase and lowercase, as Go maps case (ß stays ß, İ becomes i)
    (
        "source_labels: [env, site]\n  target_label: env_uc\n  action: uppercase",
        "source_labels = [\"env\", \"site\"]\ntarget_label = \"env_uc\"\naction = \"uppercase\"",
    ),
    (
        "source_labels: [env_uc, team]\n  separator: '-'\n  target_label: tag\n  action: lowercase",
        "source_labels = [\"env_uc\", \"team\"]\nseparator = \"-\"\ntarget_label = \"tag\"\naction = \"lowercase\"",
    ),
    // labeldrop, labelkeep
    (
        "regex: 'team_.*'\n  action: labeldrop",
        "regex = 'team_.*'\naction = \"labeldrop\"",
    ),
    (
        "regex: '__.*|job|env|env_uc|tag|team|host|owner|shard|zone|instance|sd_.*'\n  action: labelkeep",
        "regex = '__.*|job|env|env_uc|tag|team|host|owner|shard|zone|instance|sd_.*'\naction = \"labelkeep\"",
    ),
];

/// A label set as a sorted `k=v` list (the comparison's unit).
fn label_set(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = v
        .as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("?")))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

fn sets(list: &[Value], key: &str) -> BTreeSet<Vec<String>> {
    list.iter().map(|t| label_set(&t[key])).collect()
}

#[cfg_attr(
    not(has_prometheus),
    ignore = "needs Prometheus: set $PROMETHEUS or put prometheus on PATH"
)]
#[test]
fn relabelling_matches_prometheus() {
    let prom = gocost_testkit::tools::require(&gocost_testkit::tools::PROMETHEUS);
    let dir = tmp("relabel");
    let file = dir.join("targets.json");
    std::fs::write(&file, GROUPS).unwrap();
    // Each rule as a YAML list item under `relabel_configs:` (two spaces in).
    let prom_rules: Vec<String> = RULES
        .iter()
        .map(|(y, _)| format!("  - {}", y.replace("\n  ", "\n    ")))
        .collect();
    let prom_cfg = dir.join("prometheus.yml");
    std::fs::write(
        &prom_cfg,
        format!(
            "scrape_configs:\n- job_name: rl\n  scrape_interval: 1h\n  scrape_timeout: 10s\n  metrics_path: /debug/pprof\n  file_sd_configs:\n  - files: ['{f}']\n  relabel_configs:\n{}\n- job_name: rl-plain\n  scrape_interval: 1h\n  scrape_timeout: 10s\n  metrics_path: /debug/pprof\n  file_sd_configs:\n  - files: ['{f}']\n",
            prom_rules.join("\n"),
            f = file.display(),
        ),
    )
    .unwrap();
    let gocost_rules: Vec<String> = RULES
        .iter()
        .map(|(_, t)| format!("[[scrape.relabel]]\n{t}\n"))
        .collect();
    let config = dir.join("gocost.toml");
    std::fs::write(
        &config,
        format!(
            "[[scrape]]\njob = \"rl\"\ninterval = \"1h\"\ntimeout = \"10s\"\nprofiles = [\"goroutine\"]\n[[scrape.file_sd]]\nfiles = [\"{}\"]\n{}",
            file.display(),
            gocost_rules.join("")
        ),
    )
    .unwrap();
    let prom_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _prom = Proc(
        Command::new(&prom)
            .arg(format!("--config.file={}", prom_cfg.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let (_gocost, addr, _log) = start_gocost(&config, &dir.join("data"));

    // Prometheus' targets once its file discovery has run for both jobs: `rl` with the
    // rules, `rl-plain` without (every target of the file active).
    let mut theirs = Value::Null;
    let pool = |v: &Value, job: &str| -> Vec<Value> {
        v["data"]["activeTargets"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|t| t["scrapePool"] == job)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    };
    wait_for("Prometheus' targets", || {
        if std::net::TcpStream::connect(("127.0.0.1", prom_port)).is_err() {
            return false; // not listening yet
        }
        let (code, body) = get(&format!("http://127.0.0.1:{prom_port}/api/v1/targets"));
        if code != 200 {
            return false;
        }
        theirs = serde_json::from_slice(&body).unwrap_or(Value::Null);
        !pool(&theirs, "rl").is_empty() && pool(&theirs, "rl-plain").len() == 10
    });
    let p_active = pool(&theirs, "rl");
    let p_plain = pool(&theirs, "rl-plain");
    let p_dropped: Vec<Value> = theirs["data"]["droppedTargets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["discoveredLabels"]["job"] == "rl")
        .cloned()
        .collect();
    let base = format!("http://{addr}");
    let mut ours = Value::Null;
    wait_for("gocost's targets", || {
        ours = json(&format!("{base}/api/v1/targets?state=any"));
        ours["activeTargets"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
    });
    let g_active = ours["activeTargets"].as_array().unwrap().clone();
    let g_dropped = ours["droppedTargets"].as_array().unwrap().clone();

    let (pl, gl) = (sets(&p_active, "labels"), sets(&g_active, "labels"));
    assert_eq!(gl, pl, "labels after relabelling");
    assert_eq!(
        sets(&g_dropped, "discovered_labels"),
        sets(&p_dropped, "discoveredLabels"),
        "dropped targets"
    );
    // Discovered labels do not depend on the rules: every target's (active or dropped) are
    // those Prometheus shows for the job without rules. (Debian's Prometheus 2.42 shows an
    // active target's discoveredLabels partly overwritten by its relabelling, so the job
    // with the rules cannot be the reference for them.)
    let ours_all: BTreeSet<Vec<String>> = sets(&g_active, "discovered_labels")
        .into_iter()
        .chain(sets(&g_dropped, "discovered_labels"))
        .collect();
    let plain: BTreeSet<Vec<String>> = sets(&p_plain, "discoveredLabels")
        .into_iter()
        .map(|l| {
            l.into_iter()
                .map(|kv| {
                    if kv == "job=rl-plain" {
                        "job=rl".to_string()
                    } else {
                        kv
                    }
                })
                .collect::<Vec<_>>()
        })
        .map(|mut l| {
            l.sort();
            l
        })
        .collect();
    assert_eq!(ours_all, plain, "discovered labels");
    // The table exercises every action: some targets kept, some dropped, labels renamed.
    assert!(
        pl.len() == 6 && p_dropped.len() == 4,
        "{pl:?} {p_dropped:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
