//! The refreshers: one tokio task per `file_sd`, `http_sd` and `dns_sd` entry, each sending
//! its whole list of groups when it changes. A refresh that fails keeps the last good list
//! (a file that no longer parses keeps that file's last good groups) and logs why.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use gocost_config::{DnsRecordType, DnsSdConfig, FileSdConfig, HttpSdConfig, ScrapeConfig};
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinHandle;

use super::dns::{Record, ResolvConf, lookup_search};
use super::sdfile::{Format, glob_match, has_glob, parse_groups};
use super::{Group, Labels};

/// (which refresher, its groups).
pub type Updates = UnboundedSender<(usize, Vec<Group>)>;

/// How often `file_sd` files are checked for a change (their names, sizes, times).
pub const FILE_POLL: Duration = Duration::from_secs(1);

/// The largest HTTP SD answer read.
pub const MAX_HTTP_SD_BYTES: u64 = 16 << 20;

/// Starts the job's refreshers; refresher `i` sends as `(first + i, groups)`.
pub fn spawn(
    sc: &ScrapeConfig,
    client: &reqwest::Client,
    tx: &Updates,
    first: usize,
) -> Vec<JoinHandle<()>> {
    let mut tasks = Vec::new();
    let mut idx = first;
    for f in &sc.file_sd {
        tasks.push(tokio::spawn(file_sd(
            sc.job.clone(),
            f.clone(),
            idx,
            tx.clone(),
        )));
        idx += 1;
    }
    for h in &sc.http_sd {
        let auth = (sc.bearer_token.clone(), sc.headers.clone());
        tasks.push(tokio::spawn(http_sd(
            sc.job.clone(),
            h.clone(),
            auth,
            client.clone(),
            idx,
            tx.clone(),
        )));
        idx += 1;
    }
    for d in &sc.dns_sd {
        tasks.push(tokio::spawn(dns_sd(
            sc.job.clone(),
            d.clone(),
            idx,
            tx.clone(),
        )));
        idx += 1;
    }
    tasks
}

/// The number of refreshers `spawn` starts for `sc`.
pub fn count(sc: &ScrapeConfig) -> usize {
    sc.file_sd.len() + sc.http_sd.len() + sc.dns_sd.len()
}

/// The files a `file_sd` pattern names now, sorted.
pub fn expand(pattern: &str) -> Vec<String> {
    let (dir, name) = match pattern.rsplit_once('/') {
        Some((d, n)) => (Some(d), n),
        None => (None, pattern),
    };
    if !has_glob(name) {
        return vec![pattern.to_string()];
    }
    let read = std::fs::read_dir(match dir {
        Some("") => "/",
        Some(d) => d,
        None => ".",
    });
    let mut out: Vec<String> = read
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| glob_match(name, n) && Format::of_path(n).is_some())
        .map(|n| match dir {
            Some(d) => format!("{d}/{n}"),
            None => n,
        })
        .collect();
    out.sort();
    out
}

/// What says a file changed: its name, size, modification time and inode.
type Signature = Vec<(String, Option<(u64, std::time::SystemTime, u64)>)>;

fn signature(files: &[String]) -> Signature {
    files
        .iter()
        .map(|f| {
            let m = std::fs::metadata(f).ok().and_then(|m| {
                #[cfg(unix)]
                let ino = std::os::unix::fs::MetadataExt::ino(&m);
                #[cfg(not(unix))]
                let ino = 0;
                Some((m.len(), m.modified().ok()?, ino))
            });
            (f.clone(), m)
        })
        .collect()
}

/// Reads every file again: parsed groups per file, the last good kept for one that does not
/// parse (its error logged, naming the file and the position).
fn read_files(job: &str, files: &[String], last: &mut BTreeMap<String, Vec<Group>>) {
    let mut now = BTreeMap::new();
    for f in files {
        let Some(format) = Format::of_path(f) else {
            continue;
        };
        let bytes = match std::fs::read(f) {
            Ok(b) => b,
            // Gone since it was listed: its targets go too (as Prometheus).
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                tracing::error!(job = %job, "file_sd: {f}: {e}; keeping its last good targets");
                if let Some(g) = last.remove(f) {
                    now.insert(f.clone(), g);
                }
                continue;
            }
        };
        let extra = Labels::from([("__meta_filepath".to_string(), f.clone())]);
        match parse_groups(&bytes, format, f, &extra) {
            Ok(g) => {
                now.insert(f.clone(), g);
            }
            Err(e) => {
                tracing::error!(job = %job, "file_sd: {f}: {e}; keeping its last good targets");
                if let Some(g) = last.remove(f) {
                    now.insert(f.clone(), g);
                }
            }
        }
    }
    *last = now;
}

async fn file_sd(job: String, cfg: FileSdConfig, idx: usize, tx: Updates) {
    let refresh = cfg.refresh_interval();
    let mut last_sig: Option<Signature> = None;
    let mut last_read = Instant::now();
    let mut good: BTreeMap<String, Vec<Group>> = BTreeMap::new();
    let mut sent: Option<Vec<Group>> = None;
    loop {
        let patterns = cfg.files.clone();
        let due = last_read.elapsed() >= refresh;
        let prev_sig = last_sig.clone();
        let job2 = job.clone();
        let mut state = std::mem::take(&mut good);
        let res = tokio::task::spawn_blocking(move || {
            let mut files: Vec<String> = patterns.iter().flat_map(|p| expand(p)).collect();
            files.dedup();
            let sig = signature(&files);
            let changed = prev_sig.as_ref() != Some(&sig);
            if changed || due {
                read_files(&job2, &files, &mut state);
            }
            (sig, changed || due, state)
        })
        .await;
        let Ok((sig, reread, state)) = res else {
            tokio::time::sleep(FILE_POLL).await;
            continue;
        };
        good = state;
        last_sig = Some(sig);
        if reread {
            last_read = Instant::now();
            let groups: Vec<Group> = good.values().flatten().cloned().collect();
            if sent.as_ref() != Some(&groups) {
                if tx.send((idx, groups.clone())).is_err() {
                    return;
                }
                sent = Some(groups);
            }
        }
        tokio::time::sleep(FILE_POLL.min(refresh)).await;
    }
}

/// Prometheus' HTTP SD answer check: `application/json`, maybe with a UTF-8 charset.
fn json_content_type(ct: &str) -> bool {
    let ct = ct.trim().to_ascii_lowercase();
    let mut parts = ct.split(';');
    parts.next().map(str::trim) == Some("application/json")
        && parts.all(|p| {
            let p = p.trim().replace('"', "");
            p == "charset=utf-8"
        })
}

async fn fetch_http_sd(
    cfg: &HttpSdConfig,
    auth: &(Option<String>, BTreeMap<String, String>),
    client: &reqwest::Client,
) -> Result<Vec<Group>, String> {
    let mut req = client
        .get(&cfg.url)
        .timeout(cfg.refresh_interval().min(Duration::from_secs(60)));
    if let Some(t) = &auth.0 {
        req = req.bearer_auth(t);
    }
    for (k, v) in &auth.1 {
        req = req.header(k, v);
    }
    let mut resp = req.send().await.map_err(|e| e.without_url().to_string())?;
    if resp.status() != reqwest::StatusCode::OK {
        return Err(format!("HTTP {} (200 is expected)", resp.status()));
    }
    let ct = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    if !json_content_type(&ct) {
        return Err(format!(
            "Content-Type {ct:?} (application/json is expected)"
        ));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| e.without_url().to_string())?
    {
        if body.len() as u64 + chunk.len() as u64 > MAX_HTTP_SD_BYTES {
            return Err(format!("answer larger than {MAX_HTTP_SD_BYTES} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    let url = gocost_config::redact_url(&cfg.url);
    let extra = Labels::from([("__meta_url".to_string(), url.clone())]);
    parse_groups(&body, Format::Json, &url, &extra)
}

async fn http_sd(
    job: String,
    cfg: HttpSdConfig,
    auth: (Option<String>, BTreeMap<String, String>),
    client: reqwest::Client,
    idx: usize,
    tx: Updates,
) {
    let url = gocost_config::redact_url(&cfg.url);
    let mut sent: Option<Vec<Group>> = None;
    let mut failing = false;
    loop {
        match fetch_http_sd(&cfg, &auth, &client).await {
            Ok(groups) => {
                if failing {
                    tracing::info!(job = %job, "http_sd: {url}: refreshed again");
                    failing = false;
                }
                if sent.as_ref() != Some(&groups) {
                    if tx.send((idx, groups.clone())).is_err() {
                        return;
                    }
                    sent = Some(groups);
                }
            }
            Err(e) => {
                tracing::error!(job = %job, "http_sd: {url}: {e}; keeping the last good targets");
                failing = true;
            }
        }
        tokio::time::sleep(cfg.refresh_interval()).await;
    }
}

/// `host:port` as Go's `net.JoinHostPort` writes it.
fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// A name's records as Prometheus' DNS discovery labels them.
pub fn dns_group(name: &str, records: &[Record], port: Option<u16>) -> Group {
    let targets = records
        .iter()
        .map(|r| {
            let mut l = Labels::from([("__meta_dns_name".to_string(), name.to_string())]);
            match r {
                Record::Srv { port, target } => {
                    l.insert("__meta_dns_srv_record_target".into(), target.clone());
                    l.insert("__meta_dns_srv_record_port".into(), port.to_string());
                    l.insert(
                        "__address__".into(),
                        host_port(target.trim_end_matches('.'), *port),
                    );
                }
                Record::Ip(ip) => {
                    l.insert(
                        "__address__".into(),
                        host_port(&ip.to_string(), port.unwrap_or(0)),
                    );
                }
            }
            l
        })
        .collect();
    Group {
        source: name.to_string(),
        targets,
        labels: Labels::new(),
    }
}

async fn dns_sd(job: String, cfg: DnsSdConfig, idx: usize, tx: Updates) {
    let t = cfg.record_type().unwrap_or(DnsRecordType::Srv);
    let mut sent: Option<Vec<Group>> = None;
    let mut failing = false;
    loop {
        // Read at every refresh, as Go's resolver notices a changed resolv.conf.
        let conf = match cfg.resolver.as_deref().map(str::parse) {
            Some(Err(e)) => Err(format!("resolver {:?}: {e}", cfg.resolver)),
            Some(Ok(r)) => ResolvConf::system(Some(r)),
            None => ResolvConf::system(None),
        };
        let mut groups = Vec::new();
        let mut err = None;
        match conf {
            Ok(conf) => {
                for name in &cfg.names {
                    match lookup_search(&conf, name, t, Duration::from_secs(5)).await {
                        Ok(records) => groups.push(dns_group(name, &records, cfg.port)),
                        Err(e) => {
                            err = Some(e);
                            break;
                        }
                    }
                }
            }
            Err(e) => err = Some(e),
        }
        match err {
            None => {
                if failing {
                    tracing::info!(job = %job, "dns_sd: resolving again");
                    failing = false;
                }
                if sent.as_ref() != Some(&groups) {
                    if tx.send((idx, groups.clone())).is_err() {
                        return;
                    }
                    sent = Some(groups);
                }
            }
            Some(e) => {
                tracing::error!(job = %job, "dns_sd: {e}; keeping the last good targets");
                failing = true;
            }
        }
        tokio::time::sleep(cfg.refresh_interval()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_sd_content_types() {
        assert!(json_content_type("application/json"));
        assert!(json_content_type("application/json; charset=utf-8"));
        assert!(json_content_type("Application/JSON;charset=\"utf-8\""));
        assert!(!json_content_type("text/plain"));
        assert!(!json_content_type("application/json; charset=latin1"));
    }

    #[test]
    fn dns_records_become_prometheus_labelled_targets() {
        let g = dns_group(
            "_pprof._tcp.example.org",
            &[
                Record::Srv {
                    port: 6060,
                    target: "a.example.org.".into(),
                },
                Record::Ip("::1".parse().unwrap()),
            ],
            Some(7070),
        );
        assert_eq!(g.targets[0]["__address__"], "a.example.org:6060");
        assert_eq!(
            g.targets[0]["__meta_dns_srv_record_target"],
            "a.example.org."
        );
        assert_eq!(g.targets[0]["__meta_dns_srv_record_port"], "6060");
        assert_eq!(g.targets[0]["__meta_dns_name"], "_pprof._tcp.example.org");
        assert_eq!(g.targets[1]["__address__"], "[::1]:7070");
    }

    #[test]
    fn globs_expand_to_matching_sd_files() {
        let dir = std::env::temp_dir().join(format!("gocost-sd-glob-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for n in ["a.json", "b.yml", "c.txt", "d.json.tmp"] {
            std::fs::write(dir.join(n), "[]").unwrap();
        }
        let d = dir.display();
        assert_eq!(
            expand(&format!("{d}/*")),
            [format!("{d}/a.json"), format!("{d}/b.yml")]
        );
        assert_eq!(expand(&format!("{d}/*.json")), [format!("{d}/a.json")]);
        assert_eq!(expand(&format!("{d}/x.json")), [format!("{d}/x.json")]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
