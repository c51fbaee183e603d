//! `cargo run --release -p xtask -- bench-fleet`: gocost's own cost while scraping a fleet.
//!
//! Starts TARGETS fake Go services on 127.0.0.1 (each its own port, serving recorded
//! profiles of a real Go program at the `net/http/pprof` paths and its `/debug/vars`), runs
//! the release `gocost serve` scraping all of them every INTERVAL for every profile kind,
//! and after a warm-up samples gocost's RSS and CPU from /proc for SECONDS.
//! Goal (issue 3): 200 targets every 10 s in ≤ 100 MB RSS and ≤ 5 % of a core.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::arg;
use gocost_testkit::{profiles_dir, repo_root};

/// (utime + stime in seconds, RSS in bytes) of a process.
fn proc_usage(pid: u32) -> Option<(f64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let cpu = (f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?) / 100.0;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some((cpu, rss_kb * 1024))
}

/// One fake target: answers like `net/http` (HTTP/1.1 keep-alive), one thread per
/// connection.
fn serve_target(l: TcpListener, files: std::sync::Arc<Vec<(&'static str, Vec<u8>)>>) {
    for stream in l.incoming() {
        let Ok(s) = stream else { continue };
        let files = files.clone();
        std::thread::spawn(move || serve_conn(s, &files));
    }
}

fn serve_conn(mut s: std::net::TcpStream, files: &[(&'static str, Vec<u8>)]) {
    let _ = s.set_read_timeout(Some(Duration::from_secs(120)));
    let Ok(c) = s.try_clone() else { return };
    let mut r = BufReader::new(c);
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).map_or(true, |n| n == 0) {
            return;
        }
        let mut h = String::new();
        while r.read_line(&mut h).is_ok_and(|n| n > 2) {
            h.clear();
        }
        let path = line.split_whitespace().nth(1).unwrap_or("/");
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
        let head = format!(
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        if s.write_all(head.as_bytes())
            .and_then(|_| s.write_all(body))
            .is_err()
        {
            return;
        }
    }
}

pub fn run(args: &[String]) -> Result<(), String> {
    let targets = arg(args, "--targets", 200)?;
    let interval = arg(args, "--interval-secs", 10)?;
    let seconds = arg(args, "--seconds", 60)?;
    let warmup = arg(args, "--warmup-secs", 2 * interval)?;
    let kinds: Vec<String> = match args.iter().position(|a| a == "--kinds") {
        Some(i) => args
            .get(i + 1)
            .ok_or("--kinds needs a comma-separated list")?
            .split(',')
            .map(|k| format!("\"{k}\""))
            .collect(),
        None => ["cpu", "heap", "allocs", "goroutine", "mutex", "block"]
            .iter()
            .map(|k| format!("\"{k}\""))
            .collect(),
    };
    let gocost = repo_root().join("target/release/gocost");
    if !gocost.exists() {
        return Err(format!(
            "{} missing: run `cargo build --release -p gocost` first",
            gocost.display()
        ));
    }
    let read = |n: &str| std::fs::read(profiles_dir().join(n)).map_err(|e| format!("{n}: {e}"));
    let files = std::sync::Arc::new(vec![
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
    for _ in 0..targets {
        let l = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        addrs.push(l.local_addr().map_err(|e| e.to_string())?.to_string());
        let f = files.clone();
        std::thread::spawn(move || serve_target(l, f));
    }
    let dir = std::env::temp_dir().join(format!("gocost-bench-fleet-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let list: Vec<String> = addrs.iter().map(|a| format!("\"{a}\"")).collect();
    let config = format!(
        "[storage]\nblock_duration = \"{}s\"\n\n[[scrape]]\njob = \"fleet\"\ntargets = [{}]\ninterval = \"{interval}s\"\nprofiles = [{}]\nmetrics = [\"expvar\"]\n",
        (seconds / 2).max(5),
        list.join(", "),
        kinds.join(", ")
    );
    std::fs::write(dir.join("gocost.toml"), config).map_err(|e| e.to_string())?;
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    let log = dir.join("gocost.log");
    let mut child = Command::new(&gocost)
        .args(["serve", "--config"])
        .arg(dir.join("gocost.toml"))
        .arg("--data")
        .arg(dir.join("data"))
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?)
        .spawn()
        .map_err(|e| e.to_string())?;
    let pid = child.id();
    // When gocost stops, the bench ends with the last lines of its log (kept in `dir`).
    let exited = || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(20).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        format!(
            "gocost exited; its log is {}, ending:\n{}",
            log.display(),
            tail.join("\n")
        )
    };
    println!(
        "fleet: {targets} targets x {} profile kinds + expvar every {interval}s; warm-up {warmup}s, then {seconds}s measured",
        kinds.len()
    );
    std::thread::sleep(Duration::from_secs(warmup));
    let (c0, _) = proc_usage(pid).ok_or_else(exited)?;
    let t0 = Instant::now();
    let mut peak = 0u64;
    let mut samples = Vec::new();
    while t0.elapsed() < Duration::from_secs(seconds) {
        std::thread::sleep(Duration::from_secs(1));
        let (_, rss) = proc_usage(pid).ok_or_else(exited)?;
        peak = peak.max(rss);
        samples.push(rss);
    }
    let (c1, _) = proc_usage(pid).ok_or_else(exited)?;
    let wall = t0.elapsed().as_secs_f64();
    let metrics = reqwest_free_get(port, "/metrics").unwrap_or_default();
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    samples.sort_unstable();
    let cpu = 100.0 * (c1 - c0) / wall;
    println!(
        "gocost: CPU {cpu:.2}% of a core (goal <= 5%); RSS median {:.1} MB, peak {:.1} MB (goal <= 100 MB)",
        samples[samples.len() / 2] as f64 / 1e6,
        peak as f64 / 1e6
    );
    for name in [
        "gocost_store_profiles ",
        "gocost_store_blocks ",
        "gocost_store_block_bytes ",
        "gocost_store_block_ingested_bytes ",
    ] {
        if let Some(l) = metrics.lines().find(|l| l.starts_with(name)) {
            println!("  {l}");
        }
    }
    let failures: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("gocost_scrape_failures_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    println!("  scrape failures: {failures}");
    Ok(())
}

/// A plain HTTP GET to gocost on 127.0.0.1 (the bench needs nothing fancier).
fn reqwest_free_get(port: u16, path: &str) -> Option<String> {
    use std::io::Read;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}
