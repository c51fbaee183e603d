//! `cargo run --release -p xtask -- bench-fleet`: gocost's own cost while scraping a fleet.
//!
//! Starts TARGETS fake Go services on 127.0.0.1 (each its own port, serving recorded
//! profiles of a real Go program at the `net/http/pprof` paths and its `/debug/vars`; all on
//! one thread, one file descriptor per connection), runs the release `gocost serve` — or
//! each `--gocost [NAME=]PATH`, side by side against the same fleet — scraping all of them
//! every INTERVAL for every profile kind, and after a warm-up samples each one's RSS and CPU
//! from /proc for SECONDS. Prints a table: CPU, RSS median and peak, blocks cut while
//! measured, WAL bytes ÷ bytes received (from gocost's `/metrics`), scrapes and failures.
//! `--block-duration D` sets `[storage] block_duration` (unset: gocost's default, 1h),
//! `--head-max SIZE` its `head_max` (unset: the default, 256MiB).
//! Goals (issue 16): 200 targets every 10 s in ≤ 100 MB peak RSS and ≤ 5 % of a core; 2,000
//! in ≤ 300 MB and ≤ 40 %; the WAL ≤ 25 % of what was received.

use std::io::Write;
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::arg;
use gocost_testkit::{profiles_dir, repo_root};

/// (utime + stime in seconds, RSS in bytes) of a process.
pub(crate) fn proc_usage(pid: u32) -> Option<(f64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let cpu = (f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?) / 100.0;
    Some((cpu, status_bytes(pid, "VmRSS:")?))
}

/// A size field of `/proc/<pid>/status` (`VmRSS:`, `VmHWM:`, … in kB), in bytes.
fn status_bytes(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix(field))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// Raises this process's open-file limit to its hard limit (gocost, started from here,
/// inherits it): 2,000 targets are 2,000 listening sockets here and thousands of
/// connections in gocost.
fn raise_fd_limit() -> u64 {
    let mut l = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) == 0 {
            l.rlim_cur = l.rlim_max;
            let _ = libc::setrlimit(libc::RLIMIT_NOFILE, &l);
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut l);
        }
    }
    l.rlim_cur
}

type Files = std::sync::Arc<Vec<(&'static str, Vec<u8>)>>;

/// The fake fleet: every target's listener and connection on one thread (epoll through
/// tokio), one file descriptor per connection. Each answers like `net/http` (HTTP/1.1
/// keep-alive) with the recorded profile of the path asked for.
fn serve_fleet(listeners: Vec<TcpListener>, files: Files) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bench-fleet: the fleet's runtime: {e}");
            return;
        }
    };
    rt.block_on(async move {
        for l in listeners {
            let _ = l.set_nonblocking(true);
            let Ok(l) = tokio::net::TcpListener::from_std(l) else {
                continue;
            };
            let files = files.clone();
            tokio::spawn(async move {
                while let Ok((s, _)) = l.accept().await {
                    tokio::spawn(serve_conn(s, files.clone()));
                }
            });
        }
        std::future::pending::<()>().await
    });
}

async fn serve_conn(s: tokio::net::TcpStream, files: Files) {
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        // One request's head (the scraper sends no bodies).
        let end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            if s.readable().await.is_err() {
                return;
            }
            match s.try_read(&mut chunk) {
                Ok(0) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => return,
            }
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        buf.drain(..end);
        let path = head.split_whitespace().nth(1).unwrap_or("/");
        let path = path.split('?').next().unwrap_or(path);
        let body = files
            .iter()
            .find(|(p, _)| *p == path)
            .map_or(&[][..], |(_, b)| b.as_slice());
        let status = if body.is_empty() {
            "404 Not Found"
        } else {
            "200 OK"
        };
        let mut out = format!(
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        out.extend_from_slice(body);
        let mut at = 0;
        while at < out.len() {
            if s.writable().await.is_err() {
                return;
            }
            match s.try_write(&out[at..]) {
                Ok(n) => at += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => return,
            }
        }
    }
}

/// One gocost under test: its binary, process, data and what was sampled of it.
struct Run {
    name: String,
    child: std::process::Child,
    dir: std::path::PathBuf,
    port: u16,
    cpu0: f64,
    rss: Vec<u64>,
}

impl Run {
    fn log_tail(&self) -> String {
        let log = self.dir.join("gocost.log");
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(20).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        format!(
            "{} exited; its log is {}, ending:\n{}",
            self.name,
            log.display(),
            tail.join("\n")
        )
    }
}

/// A value of gocost's `/metrics` (the sum of a metric's series).
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|r| r.starts_with(' ') || r.starts_with('{'))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

pub fn run(args: &[String]) -> Result<(), String> {
    let targets = arg(args, "--targets", 200)?;
    let interval = arg(args, "--interval-secs", 10)?;
    let seconds = arg(args, "--seconds", 60)?;
    let warmup = arg(args, "--warmup-secs", 2 * interval)?;
    let value = |name: &str| -> Result<Option<String>, String> {
        match args.iter().position(|a| a == name) {
            None => Ok(None),
            Some(i) => args
                .get(i + 1)
                .cloned()
                .map(Some)
                .ok_or_else(|| format!("{name} needs a value")),
        }
    };
    let kinds: Vec<String> = match value("--kinds")? {
        Some(list) => list.split(',').map(|k| format!("\"{k}\"")).collect(),
        None => ["cpu", "heap", "allocs", "goroutine", "mutex", "block"]
            .iter()
            .map(|k| format!("\"{k}\""))
            .collect(),
    };
    // Unset: gocost's default (1h), as the goals are stated.
    let block = value("--block-duration")?;
    // Unset: gocost's default head_max (256MiB).
    let head_max = value("--head-max")?;
    // `--gocost [NAME=]PATH`, repeatable: binaries measured side by side against one fleet.
    let mut bins: Vec<(String, std::path::PathBuf)> = Vec::new();
    for (i, a) in args.iter().enumerate() {
        if a == "--gocost" {
            let v = args.get(i + 1).ok_or("--gocost needs a path")?;
            let (name, path) = v.split_once('=').unwrap_or((v.as_str(), v.as_str()));
            bins.push((name.to_string(), std::path::PathBuf::from(path)));
        }
    }
    if bins.is_empty() {
        bins.push(("gocost".into(), repo_root().join("target/release/gocost")));
    }
    for (_, b) in &bins {
        if !b.exists() {
            return Err(format!(
                "{} missing: run `cargo build --release -p gocost` first",
                b.display()
            ));
        }
    }
    let fds = raise_fd_limit();
    let read = |n: &str| std::fs::read(profiles_dir().join(n)).map_err(|e| format!("{n}: {e}"));
    let files: Files = std::sync::Arc::new(vec![
        ("/debug/pprof/profile", read("cpu.pb.gz")?),
        ("/debug/pprof/heap", read("heap.pb.gz")?),
        ("/debug/pprof/allocs", read("allocs.pb.gz")?),
        ("/debug/pprof/goroutine", read("goroutine.pb.gz")?),
        ("/debug/pprof/mutex", read("mutex.pb.gz")?),
        ("/debug/pprof/block", read("block.pb.gz")?),
        (
            "/debug/vars",
            std::fs::read(repo_root().join("testdata/metrics/vars.json"))
                .map_err(|e| e.to_string())?,
        ),
    ]);
    let mut addrs = Vec::new();
    let mut listeners = Vec::new();
    for _ in 0..targets {
        let l = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        addrs.push(l.local_addr().map_err(|e| e.to_string())?.to_string());
        listeners.push(l);
    }
    std::thread::spawn(move || serve_fleet(listeners, files));
    let list: Vec<String> = addrs.iter().map(|a| format!("\"{a}\"")).collect();
    let mut storage = String::new();
    if let Some(b) = &block {
        storage += &format!("block_duration = \"{b}\"\n");
    }
    if let Some(m) = &head_max {
        storage += &format!("head_max = \"{m}\"\n");
    }
    if !storage.is_empty() {
        storage = format!("[storage]\n{storage}\n");
    }
    let config = format!(
        "{storage}[[scrape]]\njob = \"fleet\"\ntargets = [{}]\ninterval = \"{interval}s\"\nprofiles = [{}]\nmetrics = [\"expvar\"]\n",
        list.join(", "),
        kinds.join(", ")
    );
    let mut runs = Vec::new();
    for (i, (name, bin)) in bins.iter().enumerate() {
        let dir =
            std::env::temp_dir().join(format!("gocost-bench-fleet-{}-{i}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        std::fs::write(dir.join("gocost.toml"), &config).map_err(|e| e.to_string())?;
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let log = dir.join("gocost.log");
        let child = Command::new(bin)
            .args(["serve", "--config"])
            .arg(dir.join("gocost.toml"))
            .arg("--data")
            .arg(dir.join("data"))
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?)
            .spawn()
            .map_err(|e| format!("{}: {e}", bin.display()))?;
        runs.push(Run {
            name: name.clone(),
            child,
            dir,
            port,
            cpu0: 0.0,
            rss: Vec::new(),
        });
    }
    println!(
        "fleet: {targets} targets x {} profile kinds + expvar every {interval}s, block duration {}; {} side by side; open files up to {fds}; warm-up {warmup}s, then {seconds}s measured",
        kinds.len(),
        block.as_deref().unwrap_or("1h (default)"),
        runs.len()
    );
    std::thread::sleep(Duration::from_secs(warmup));
    let mut blocks0 = Vec::new();
    for r in &runs {
        let m = reqwest_free_get(r.port, "/metrics").unwrap_or_default();
        blocks0.push(metric(&m, "gocost_store_blocks_written_total"));
    }
    // The CPU readings after every /metrics answer.
    for r in &mut runs {
        r.cpu0 = proc_usage(r.child.id()).ok_or_else(|| r.log_tail())?.0;
    }
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(seconds) {
        std::thread::sleep(Duration::from_secs(1));
        for r in &mut runs {
            let (_, rss) = proc_usage(r.child.id()).ok_or_else(|| r.log_tail())?;
            r.rss.push(rss);
        }
    }
    let wall = t0.elapsed().as_secs_f64();
    println!(
        "\n| gocost | CPU % of a core | RSS median MB | RSS peak MB | blocks cut | WAL ÷ received | profiles | scrapes | failures |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    // Every CPU reading first: a /metrics answer costs the one asked, not the others.
    let mut c1s = Vec::new();
    let mut notes = Vec::new();
    for r in &runs {
        c1s.push(proc_usage(r.child.id()).ok_or_else(|| r.log_tail())?.0);
    }
    for ((r, b0), c1) in runs.iter_mut().zip(blocks0).zip(c1s) {
        // A fleet of thousands of targets makes a big /metrics: empty if it did not come.
        let asked = Instant::now();
        let m = reqwest_free_get(r.port, "/metrics").unwrap_or_default();
        let took = asked.elapsed().as_secs_f64();
        if m.is_empty() {
            println!(
                "({}: /metrics did not answer; its counters are left out)",
                r.name
            );
        }
        // What scraping gocost itself costs: its `/metrics` analyses every target's last
        // 15 minutes (leaks, heap growth, cost, GC).
        notes.push(format!(
            "({}: the last /metrics took {took:.2} s; peak RSS of the whole run, that /metrics included: {:.1} MB)",
            r.name,
            status_bytes(r.child.id(), "VmHWM:").unwrap_or(0) as f64 / 1e6
        ));
        let _ = r.child.kill();
        let _ = r.child.wait();
        let _ = std::fs::remove_dir_all(&r.dir);
        r.rss.sort_unstable();
        let cpu = 100.0 * (c1 - r.cpu0) / wall;
        let received = metric(&m, "gocost_store_received_bytes_total");
        let wal = metric(&m, "gocost_store_wal_profile_bytes_total");
        println!(
            "| {} | {cpu:.2} | {:.1} | {:.1} | {} | {:.3} | {} | {} | {} |",
            r.name,
            r.rss.get(r.rss.len() / 2).copied().unwrap_or(0) as f64 / 1e6,
            r.rss.last().copied().unwrap_or(0) as f64 / 1e6,
            metric(&m, "gocost_store_blocks_written_total") - b0,
            if received > 0.0 {
                wal / received
            } else {
                f64::NAN
            },
            metric(&m, "gocost_store_profiles"),
            metric(&m, "gocost_scrapes_total"),
            metric(&m, "gocost_scrape_failures_total"),
        );
    }
    for n in notes {
        println!("{n}");
    }
    println!(
        "goals (issue 16): 200 targets <= 5 % of a core and <= 100 MB peak; 2,000 targets <= 40 % and <= 300 MB; WAL <= 25 % of received; over at least two block cuts"
    );
    Ok(())
}

/// A plain HTTP GET to gocost on 127.0.0.1 (the bench needs nothing fancier).
fn reqwest_free_get(port: u16, path: &str) -> Option<String> {
    use std::io::Read;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(60))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}
