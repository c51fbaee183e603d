//! `cargo run --release -p xtask -- soak --duration 10m --interval 20s`: a stability run of
//! the release `gocost serve` (issue 20, item 7) — the long test teams run before a launch,
//! scaled to one machine.
//!
//! The fleet, all real Go programs from `testdata/go` on 127.0.0.1:
//! - `leaks` ×2 (goroutines leaking at known rates, `-rate 0.05`),
//! - `heapgrow` ×2 (heap in use growing, `-rate 0.005`: ~10 KB/s each),
//! - `steady` ×2 (constant goroutines and heap; also scraped for `/debug/vars`),
//! - `restarting` ×2 (`regress` exiting every `--restart-every`, started again on its port at
//!   once: cumulative profiles reset, a crash-looping deploy),
//! - `flapping` ×1 (`regress` up for `--flap`, then down for `--flap`, on one port),
//!
//! scraped for cpu, heap, allocs, goroutine, mutex and block every `--scrape-interval`, plus a
//! push load (`--pushes` per second to `/ingest`: folded CPU stacks of three apps, a pprof
//! body, and `wall` pushes like the Node agent's). Every `--interval` it records gocost's RSS,
//! open fds and threads (from /proc), WAL and block bytes (its `/metrics`), the scrape lateness
//! of the always-up targets (`/api/v1/targets`: how long after its due time the last scrape
//! ended), and the latency of five queries (three over the last 10 minutes, two over the whole
//! run). The rows go to a CSV file as they come.
//!
//! **The growth rule.** Samples before `--warmup` (default: a quarter of the run, at least two
//! block durations, so that the head cache has filled and blocks have been cut) are not
//! judged. Over the rest, each metric's slope is fitted (Theil–Sen: the median of the slopes
//! between every pair of samples, so one spike or one GC does not move it), and the growth it
//! predicts across the judged window must stay under a limit:
//! - RSS: at most max(10 % of its median, 16 MiB),
//! - open fds and threads: at most max(10 % of the median, 8),
//! - WAL bytes: at most half the largest WAL seen + 1 MiB (the WAL is a saw: it fills
//!   for one block duration, then is cut into a block), and it must fall (be cut) at least once
//!   in every two block durations of the judged window.
//!
//! Block bytes grow with the data (nothing reaches retention in a soak); their slope is
//! printed, not judged. The run also fails if gocost exits, any push or query is answered
//! other than 200, a scrape of an always-up target is more than a minute late, gocost does
//! not exit 0 within 30 s of SIGTERM, or `gocost verify` finds a problem afterwards.

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use gocost_testkit::{profiles_dir, repo_root};

type Result<T> = std::result::Result<T, String>;

/// `90s`, `10m`, `2h`, `1h30m` or plain seconds.
pub fn parse_duration(s: &str) -> Result<Duration> {
    if let Ok(n) = s.parse::<u64>() {
        return Ok(Duration::from_secs(n));
    }
    let mut total = 0u64;
    let mut num = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let n: u64 = num.parse().map_err(|_| format!("bad duration {s:?}"))?;
        num.clear();
        total += n * match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            _ => return Err(format!("bad duration {s:?} (use s, m or h)")),
        };
    }
    if !num.is_empty() || total == 0 {
        return Err(format!("bad duration {s:?} (e.g. 90s, 10m, 2h)"));
    }
    Ok(Duration::from_secs(total))
}

fn opt_duration(args: &[String], name: &str, default: Duration) -> Result<Duration> {
    match args.iter().position(|a| a == name) {
        None => Ok(default),
        Some(i) => parse_duration(args.get(i + 1).ok_or(format!("{name} needs a value"))?),
    }
}

fn opt_str<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    let i = args.iter().position(|a| a == name)?;
    args.get(i + 1).map(String::as_str)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

// ------------------------------------------------------------------ processes

/// How a service of the fleet lives.
#[derive(Clone, Copy, PartialEq)]
enum Life {
    /// Runs for the whole soak; an exit is reported (and it is started again).
    Forever,
    /// Exits by itself every few minutes and is started again on its port at once.
    Restarting,
    /// Up for a while, then down for as long, on one port.
    Flapping,
}

struct Service {
    job: &'static str,
    life: Life,
    bin: PathBuf,
    args: Vec<String>,
    /// Fixed port (restarting and flapping services), else the address from its addr file.
    addr: String,
    child: Option<Child>,
    down_since: Option<Instant>,
    starts: u32,
    unexpected_exits: u32,
}

impl Service {
    fn start(&mut self, dir: &Path) -> Result<()> {
        let addr_file = dir.join(format!("{}-{}.addr", self.job, self.starts));
        let _ = std::fs::remove_file(&addr_file);
        let child = Command::new(&self.bin)
            .args(&self.args)
            .arg(&addr_file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("{}: {e}", self.bin.display()))?;
        self.child = Some(child);
        self.starts += 1;
        let t = Instant::now();
        loop {
            if let Ok(a) = std::fs::read_to_string(&addr_file)
                && !a.trim().is_empty()
            {
                self.addr = a.trim().to_string();
                return Ok(());
            }
            if t.elapsed() > Duration::from_secs(30) {
                return Err(format!("{} did not start", self.job));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A free loopback port (bound, then released for a child to take).
fn free_port() -> Result<u16> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}

fn go_build(go: &Path, name: &str, out: &Path) -> Result<PathBuf> {
    let bin = out.join(name);
    crate::output(
        Command::new(go)
            .args(["build", "-o"])
            .arg(&bin)
            .arg(".")
            .current_dir(repo_root().join("testdata/go").join(name)),
    )?;
    Ok(bin)
}

/// The release `gocost`: `$GOCOST`, else `$CARGO_TARGET_DIR/release/gocost`, else
/// `target/release/gocost`.
fn gocost_binary() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("GOCOST") {
        return Ok(p.into());
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"));
    let p = target.join("release/gocost");
    if p.exists() {
        Ok(p)
    } else {
        Err(format!(
            "{} missing: run `cargo build --release -p gocost` first",
            p.display()
        ))
    }
}

// ------------------------------------------------------------------ HTTP

/// One HTTP/1.0 request to gocost on loopback: status and body.
fn request(port: u16, method: &str, path: &str, body: &[u8]) -> Result<(u16, Vec<u8>)> {
    let addr = format!("127.0.0.1:{port}");
    let (head, body) = crate::http_exchange(&addr, method, path, body, Duration::from_secs(120))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("{path}: bad status line"))?;
    Ok((status, body))
}

/// `%`-encodes a query-string value.
fn enc(s: &str) -> String {
    let mut o = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            o.push(b as char);
        } else {
            o.push_str(&format!("%{b:02X}"));
        }
    }
    o
}

// ------------------------------------------------------------------ push load

/// Pushes like agents do, `per_sec` a second, until `stop`: folded CPU stacks for three apps
/// (a fixed vocabulary of stacks, as a real program has), every fifth a pprof body, every
/// seventh a `wall` push like the Node agent's. Counts answers that are not 200.
fn push_load(
    port: u16,
    per_sec: u64,
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    bad: Arc<AtomicU64>,
) {
    let pprof = std::fs::read(profiles_dir().join("cpu.pb.gz")).unwrap_or_default();
    let frames = [
        "main.main",
        "main.serve",
        "net/http.(*conn).serve",
        "main.handle",
        "encoding/json.Marshal",
        "main.compute",
        "runtime.mallocgc",
        "main.parse",
        "bufio.(*Reader).Read",
        "main.render",
        "strings.Builder.WriteString",
        "runtime.memmove",
    ];
    let mut rng = 0x9e3779b97f4a7c15u64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let gap = Duration::from_micros(1_000_000 / per_sec.max(1));
    let mut i = 0u64;
    let t0 = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let (name, format, body) = if i % 5 == 4 && !pprof.is_empty() {
            ("soak-pprof.cpu{}".to_string(), "pprof", pprof.clone())
        } else {
            let mut text = String::new();
            for s in 0..40u64 {
                let depth = 4 + (s % 9) as usize;
                let stack: Vec<&str> = (0..depth)
                    .map(|d| frames[((s * 7 + d as u64 * 3) % frames.len() as u64) as usize])
                    .collect();
                text.push_str(&format!("{} {}\n", stack.join(";"), 1 + next() % 50));
            }
            let name = if i % 7 == 6 {
                format!("soak-node.wall{{pod=\"p{}\"}}", i % 2)
            } else {
                format!("soak-push-{}.cpu{{pod=\"p{}\"}}", i % 3, i % 4)
            };
            (name, "folded", text.into_bytes())
        };
        let path = format!(
            "/ingest?name={}&format={format}&from={}",
            enc(&name),
            now_ms() / 1000
        );
        match request(port, "POST", &path, &body) {
            Ok((200, _)) => ok.fetch_add(1, Ordering::Relaxed),
            Ok((code, b)) => {
                eprintln!(
                    "soak: push answered {code}: {}",
                    String::from_utf8_lossy(&b)
                );
                bad.fetch_add(1, Ordering::Relaxed)
            }
            Err(e) => {
                eprintln!("soak: push failed: {e}");
                bad.fetch_add(1, Ordering::Relaxed)
            }
        };
        i += 1;
        // Keep the rate, not the gap: a slow push does not lower it for long.
        let due = gap * i as u32;
        if let Some(wait) = due.checked_sub(t0.elapsed()) {
            std::thread::sleep(wait);
        }
    }
}

// ------------------------------------------------------------------ samples

/// One row of the soak's record.
#[derive(Clone, Default)]
struct Sample {
    t: f64,
    rss: f64,
    fds: f64,
    threads: f64,
    wal: f64,
    blocks: f64,
    /// Encoded head profiles in memory (`gocost_store_head_cache_bytes`), MB.
    cache: f64,
    /// Bytes written to the WAL for profiles / bytes received, so far.
    wal_ratio: f64,
    profiles: f64,
    /// The latest end of a scrape past its due time, over the always-up targets, in ms.
    late_ms: f64,
    /// The slowest of the queries over the last 10 minutes, ms.
    q_recent_ms: f64,
    /// The slowest of the queries over the whole run, ms.
    q_whole_ms: f64,
    pushes: u64,
    push_errors: u64,
}

fn proc_field(pid: u32, field: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let v = status.lines().find_map(|l| l.strip_prefix(field))?;
    v.trim().trim_end_matches("kB").trim().parse().ok()
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(f64::NAN)
}

/// Lateness in ms of the last scrapes of the always-up jobs (`jobs`), only of targets up.
fn lateness(targets: &[u8], jobs: &[&str], interval_ms: f64) -> Result<f64> {
    let v: serde_json::Value =
        serde_json::from_slice(targets).map_err(|e| format!("/api/v1/targets: {e}"))?;
    let now = now_ms() as f64;
    let mut worst = 0f64;
    for t in v.as_array().ok_or("/api/v1/targets: not a list")? {
        let job = t.get("job").and_then(|j| j.as_str()).unwrap_or("");
        let up = t.get("up").and_then(|u| u.as_bool()).unwrap_or(false);
        let last = t
            .get("last_scrape_ms")
            .and_then(|l| l.as_f64())
            .unwrap_or(0.0);
        if jobs.contains(&job) && up && last > 0.0 {
            worst = worst.max(now - last - interval_ms);
        }
    }
    Ok(worst.max(0.0))
}

/// Theil–Sen slope: the median of the slopes between every pair of points.
fn theil_sen(xs: &[f64], ys: &[f64]) -> f64 {
    let mut slopes = Vec::new();
    for i in 0..xs.len() {
        for j in i + 1..xs.len() {
            if xs[j] != xs[i] && ys[i].is_finite() && ys[j].is_finite() {
                slopes.push((ys[j] - ys[i]) / (xs[j] - xs[i]));
            }
        }
    }
    median(&mut slopes)
}

fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// A one-line curve of `ys` (at most `width` characters).
fn sparkline(ys: &[f64], width: usize) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let finite: Vec<f64> = ys.iter().copied().filter(|y| y.is_finite()).collect();
    if finite.is_empty() {
        return String::new();
    }
    let (lo, hi) = finite
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), &y| (a.min(y), b.max(y)));
    let n = ys.len();
    let cols = n.min(width);
    (0..cols)
        .map(|c| {
            // The mean of the samples that fall in this column.
            let (a, b) = (c * n / cols, ((c + 1) * n / cols).max(c * n / cols + 1));
            let part: Vec<f64> = ys[a..b.min(n)]
                .iter()
                .copied()
                .filter(|y| y.is_finite())
                .collect();
            if part.is_empty() {
                return ' ';
            }
            let y = part.iter().sum::<f64>() / part.len() as f64;
            let k = if hi > lo {
                ((y - lo) / (hi - lo) * 7.0).round() as usize
            } else {
                0
            };
            BARS[k.min(7)]
        })
        .collect()
}

// ------------------------------------------------------------------ the run

pub fn run(args: &[String]) -> Result<()> {
    let duration = opt_duration(args, "--duration", Duration::from_secs(600))?;
    let interval = opt_duration(args, "--interval", Duration::from_secs(60))?;
    let scrape = opt_duration(args, "--scrape-interval", Duration::from_secs(15))?;
    let block = opt_duration(
        args,
        "--block",
        (duration / 8).clamp(Duration::from_secs(120), Duration::from_secs(3600)),
    )?;
    let warmup = opt_duration(args, "--warmup", (duration / 4).max(block * 2))?;
    let restart_every = opt_duration(args, "--restart-every", Duration::from_secs(90))?;
    let flap = opt_duration(args, "--flap", Duration::from_secs(20))?;
    let pushes = crate::arg(args, "--pushes", 5)?;
    if warmup >= duration {
        return Err(format!(
            "the warm-up ({}s) is not shorter than the run ({}s): nothing would be judged \
             (lower --warmup or --block, or raise --duration)",
            warmup.as_secs(),
            duration.as_secs()
        ));
    }
    let judged = (duration - warmup).as_secs_f64() / interval.as_secs_f64();
    if judged < 5.0 {
        return Err(format!(
            "only {judged:.0} samples after the warm-up: at least 5 are needed to fit a slope \
             (shorten --interval)"
        ));
    }

    let dir = std::env::temp_dir().join(format!("gocost-soak-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let csv_path = opt_str(args, "--csv")
        .map(PathBuf::from)
        .unwrap_or_else(|| dir.join("soak.csv"));
    // A copy of the binary: a rebuild during a long run does not change what runs.
    let gocost = dir.join("gocost");
    std::fs::copy(gocost_binary()?, &gocost).map_err(|e| format!("copying gocost: {e}"))?;

    let go = crate::go();
    eprintln!("soak: building the Go test beds");
    let bins = dir.join("bin");
    std::fs::create_dir_all(&bins).map_err(|e| e.to_string())?;
    let leaks = go_build(&go, "leaks", &bins)?;
    let heapgrow = go_build(&go, "heapgrow", &bins)?;
    let steady = go_build(&go, "steady", &bins)?;
    let regress = go_build(&go, "regress", &bins)?;

    let lifetime = format!("-duration={}s", duration.as_secs() + 600);
    let mut fleet: Vec<Service> = Vec::new();
    let mut add = |job, life, bin: &PathBuf, args: Vec<String>, addr: String| {
        fleet.push(Service {
            job,
            life,
            bin: bin.clone(),
            args,
            addr,
            child: None,
            down_since: None,
            starts: 0,
            unexpected_exits: 0,
        })
    };
    for _ in 0..2 {
        add(
            "leaks",
            Life::Forever,
            &leaks,
            vec!["-rate=0.05".into(), lifetime.clone()],
            String::new(),
        );
        add(
            "heapgrow",
            Life::Forever,
            &heapgrow,
            vec!["-rate=0.005".into(), lifetime.clone()],
            String::new(),
        );
        add(
            "steady",
            Life::Forever,
            &steady,
            vec!["-goroutines=300".into(), "-heap=8".into(), lifetime.clone()],
            String::new(),
        );
    }
    for _ in 0..2 {
        let port = free_port()?;
        add(
            "restarting",
            Life::Restarting,
            &regress,
            vec![
                format!("-addr=127.0.0.1:{port}"),
                "-rate=100".into(),
                format!("-duration={}s", restart_every.as_secs()),
            ],
            String::new(),
        );
    }
    let port = free_port()?;
    add(
        "flapping",
        Life::Flapping,
        &regress,
        vec![
            format!("-addr=127.0.0.1:{port}"),
            "-rate=100".into(),
            format!("-duration={}s", flap.as_secs()),
        ],
        String::new(),
    );
    for s in &mut fleet {
        s.start(&dir)?;
    }

    // The config: one job per kind of service.
    let mut config = format!("[storage]\nblock_duration = \"{}s\"\n\n", block.as_secs());
    for job in ["leaks", "heapgrow", "steady", "restarting", "flapping"] {
        let targets: Vec<String> = fleet
            .iter()
            .filter(|s| s.job == job)
            .map(|s| format!("\"{}\"", s.addr))
            .collect();
        let metrics = if job == "steady" {
            "metrics = [\"expvar\"]\n"
        } else {
            ""
        };
        config.push_str(&format!(
            "[[scrape]]\njob = \"{job}\"\ntargets = [{}]\ninterval = \"{}s\"\n\
             profiles = [\"cpu\", \"heap\", \"allocs\", \"goroutine\", \"mutex\", \"block\"]\n{metrics}\n",
            targets.join(", "),
            scrape.as_secs()
        ));
    }
    std::fs::write(dir.join("gocost.toml"), &config).map_err(|e| e.to_string())?;
    let port = free_port()?;
    let log = std::fs::File::create(dir.join("gocost.log")).map_err(|e| e.to_string())?;
    let mut server = Command::new(&gocost)
        .args(["serve", "--no-demo", "--config"])
        .arg(dir.join("gocost.toml"))
        .arg("--data")
        .arg(dir.join("data"))
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("starting gocost: {e}"))?;
    let pid = server.id();
    let t = Instant::now();
    while request(port, "GET", "/metrics", b"").is_err() {
        if t.elapsed() > Duration::from_secs(30) {
            let _ = server.kill();
            return Err("gocost serve did not start (see gocost.log)".into());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let start_ms = now_ms();
    println!(
        "soak: gocost (pid {pid}) on 127.0.0.1:{port}, data in {}\n\
         soak: {} services ({} restarting every {}s, 1 flapping {}s up/{}s down) × 6 kinds every {}s, \
         {pushes} pushes/s; block duration {}s; {}s, a sample every {}s, judged after {}s; CSV: {}",
        dir.display(),
        fleet.len(),
        fleet.iter().filter(|s| s.life == Life::Restarting).count(),
        restart_every.as_secs(),
        flap.as_secs(),
        flap.as_secs(),
        scrape.as_secs(),
        block.as_secs(),
        duration.as_secs(),
        interval.as_secs(),
        warmup.as_secs(),
        csv_path.display()
    );

    let stop = Arc::new(AtomicBool::new(false));
    let (ok, bad) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let pusher = {
        let (stop, ok, bad) = (stop.clone(), ok.clone(), bad.clone());
        std::thread::spawn(move || push_load(port, pushes, stop, ok, bad))
    };

    let mut csv =
        std::fs::File::create(&csv_path).map_err(|e| format!("{}: {e}", csv_path.display()))?;
    let header = "t_s,rss_mb,fds,threads,wal_mb,blocks_mb,profiles,late_ms,q_recent_ms,q_whole_ms,pushes,push_errors,cache_mb,wal_ratio";
    writeln!(csv, "{header}").map_err(|e| e.to_string())?;
    println!("{header}");

    let t0 = Instant::now();
    let mut samples: Vec<Sample> = Vec::new();
    let mut problems: Vec<String> = Vec::new();
    let mut next_sample = Duration::ZERO;
    let recent = [
        "/api/v1/flame?query=".to_string() + &enc("cpu{job=\"leaks\"}") + "&from=now-10m",
        "/api/v1/top?query=".to_string() + &enc("heap{job=\"heapgrow\"}") + "&from=now-10m",
        "/api/v1/flame?query=".to_string() + &enc("cpu{job=\"soak-push-0\"}") + "&from=now-10m",
    ];
    let whole = [
        format!(
            "/api/v1/timeline?query={}&from={}",
            enc("cpu{}"),
            start_ms / 1000
        ),
        format!(
            "/api/v1/top?query={}&from={}",
            enc("goroutine{}"),
            start_ms / 1000
        ),
    ];
    let always_up = ["leaks", "heapgrow", "steady"];
    while t0.elapsed() < duration && problems.is_empty() {
        // Keep the fleet living its lives.
        for s in &mut fleet {
            let exited = matches!(
                s.child.as_mut().map(|c| c.try_wait()),
                Some(Ok(Some(_)) | Err(_))
            );
            if exited {
                s.child = None;
                match s.life {
                    Life::Forever => {
                        s.unexpected_exits += 1;
                        eprintln!(
                            "soak: {} at {} exited unexpectedly; starting it again",
                            s.job, s.addr
                        );
                        s.start(&dir)?;
                    }
                    Life::Restarting => s.start(&dir)?,
                    Life::Flapping => s.down_since = Some(Instant::now()),
                }
            }
            if s.life == Life::Flapping
                && s.child.is_none()
                && s.down_since.is_some_and(|d| d.elapsed() >= flap)
            {
                s.down_since = None;
                s.start(&dir)?;
            }
        }
        if let Ok(Some(st)) = server.try_wait() {
            problems.push(format!("gocost exited during the soak: {st}"));
            break;
        }
        if t0.elapsed() < next_sample {
            std::thread::sleep(Duration::from_millis(250));
            continue;
        }
        next_sample += interval;

        let mut s = Sample {
            t: t0.elapsed().as_secs_f64(),
            rss: proc_field(pid, "VmRSS:").unwrap_or(f64::NAN) / 1024.0,
            threads: proc_field(pid, "Threads:").unwrap_or(f64::NAN),
            fds: std::fs::read_dir(format!("/proc/{pid}/fd"))
                .map_or(f64::NAN, |d| d.count() as f64),
            ..Default::default()
        };
        match request(port, "GET", "/metrics", b"") {
            Ok((200, m)) => {
                let m = String::from_utf8_lossy(&m);
                s.wal = metric(&m, "gocost_store_wal_bytes") / 1e6;
                s.blocks = metric(&m, "gocost_store_block_bytes") / 1e6;
                s.profiles = metric(&m, "gocost_store_profiles");
                s.cache = metric(&m, "gocost_store_head_cache_bytes") / 1e6;
                s.wal_ratio = metric(&m, "gocost_store_wal_profile_bytes_total")
                    / metric(&m, "gocost_store_received_bytes_total").max(1.0);
            }
            other => problems.push(format!("/metrics: {:?}", other.map(|(c, _)| c))),
        }
        match request(port, "GET", "/api/v1/targets", b"") {
            Ok((200, b)) => match lateness(&b, &always_up, scrape.as_millis() as f64) {
                Ok(l) => s.late_ms = l,
                Err(e) => problems.push(e),
            },
            other => problems.push(format!("/api/v1/targets: {:?}", other.map(|(c, _)| c))),
        }
        let time_queries = |paths: &[String], problems: &mut Vec<String>| {
            let mut worst = 0f64;
            for p in paths {
                let q = Instant::now();
                match request(port, "GET", p, b"") {
                    Ok((200, _)) => {}
                    Ok((code, b)) => problems.push(format!(
                        "{p} answered {code}: {}",
                        String::from_utf8_lossy(&b)
                    )),
                    Err(e) => problems.push(e),
                }
                worst = worst.max(q.elapsed().as_secs_f64() * 1e3);
            }
            worst
        };
        s.q_recent_ms = time_queries(&recent, &mut problems);
        s.q_whole_ms = time_queries(&whole, &mut problems);
        s.pushes = ok.load(Ordering::Relaxed);
        s.push_errors = bad.load(Ordering::Relaxed);
        if s.push_errors > 0 {
            problems.push(format!("{} pushes were not answered 200", s.push_errors));
        }
        if s.t >= warmup.as_secs_f64() && s.late_ms > 60_000.0 {
            problems.push(format!(
                "a scrape of an always-up target is {:.0} s late",
                s.late_ms / 1e3
            ));
        }
        let row = format!(
            "{:.0},{:.1},{:.0},{:.0},{:.2},{:.2},{:.0},{:.0},{:.0},{:.0},{},{},{:.2},{:.3}",
            s.t,
            s.rss,
            s.fds,
            s.threads,
            s.wal,
            s.blocks,
            s.profiles,
            s.late_ms,
            s.q_recent_ms,
            s.q_whole_ms,
            s.pushes,
            s.push_errors,
            s.cache,
            s.wal_ratio
        );
        println!("{row}");
        writeln!(csv, "{row}").map_err(|e| e.to_string())?;
        samples.push(s);
    }

    stop.store(true, Ordering::Relaxed);
    let _ = pusher.join();
    let restarts: u32 = fleet.iter().map(|s| s.starts.saturating_sub(1)).sum();
    let unexpected: u32 = fleet.iter().map(|s| s.unexpected_exits).sum();
    for s in &mut fleet {
        s.stop();
    }

    // A graceful stop, then the store must verify clean.
    let stopped = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .map_err(|e| e.to_string())?
        .success();
    let t = Instant::now();
    let status = loop {
        if let Ok(Some(st)) = server.try_wait() {
            break Some(st);
        }
        if !stopped || t.elapsed() > Duration::from_secs(30) {
            let _ = server.kill();
            let _ = server.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    match status {
        Some(st) if st.success() => {}
        Some(st) if problems.is_empty() => {
            problems.push(format!("gocost exited with {st} after SIGTERM"))
        }
        Some(_) => {}
        None => problems.push("gocost did not exit within 30 s of SIGTERM".into()),
    }
    let verify = Command::new(&gocost)
        .args(["verify", "--data"])
        .arg(dir.join("data"))
        .output()
        .map_err(|e| e.to_string())?;
    if !verify.status.success() {
        problems.push(format!(
            "gocost verify after the soak: {}{}",
            String::from_utf8_lossy(&verify.stdout),
            String::from_utf8_lossy(&verify.stderr)
        ));
    }

    let verdict = judge(
        &samples,
        warmup.as_secs_f64(),
        block.as_secs_f64(),
        &mut problems,
    );
    println!("\n{verdict}");
    println!(
        "fleet: {restarts} restarts (restarting and flapping services), {unexpected} unexpected exits; \
         pushes: {} acknowledged, {} not",
        ok.load(Ordering::Relaxed),
        bad.load(Ordering::Relaxed)
    );
    println!("CSV: {}", csv_path.display());
    if problems.is_empty() {
        println!("soak: PASS");
        if args.iter().all(|a| a != "--keep") {
            let _ = std::fs::remove_dir_all(dir.join("data"));
        }
        Ok(())
    } else {
        Err(format!("soak: FAIL\n  {}", problems.join("\n  ")))
    }
}

/// The table, the curves and the growth verdict (appending failures to `problems`).
fn judge(samples: &[Sample], warmup: f64, block: f64, problems: &mut Vec<String>) -> String {
    let mut out = String::new();
    if samples.is_empty() {
        problems.push("no samples".into());
        return out;
    }
    // The table: at most 24 rows, evenly spread, always the last.
    out.push_str(
        "   time   RSS MB   fds  threads   WAL MB  blocks MB  profiles  late ms  q recent ms  q whole ms\n",
    );
    let n = samples.len();
    let rows: Vec<usize> = if n <= 24 {
        (0..n).collect()
    } else {
        let mut r: Vec<usize> = (0..23).map(|i| i * (n - 1) / 23).collect();
        r.push(n - 1);
        r.dedup();
        r
    };
    for &i in &rows {
        let s = &samples[i];
        out.push_str(&format!(
            "{:>6.0}s {:>8.1} {:>5.0} {:>8.0} {:>8.2} {:>10.2} {:>9.0} {:>8.0} {:>12.0} {:>11.0}{}\n",
            s.t,
            s.rss,
            s.fds,
            s.threads,
            s.wal,
            s.blocks,
            s.profiles,
            s.late_ms,
            s.q_recent_ms,
            s.q_whole_ms,
            if s.t < warmup { "  (warm-up)" } else { "" }
        ));
    }
    let judged: Vec<&Sample> = samples.iter().filter(|s| s.t >= warmup).collect();
    out.push_str(&format!(
        "\ncurves (all {} samples; judged: the {} after the {:.0}s warm-up):\n",
        n,
        judged.len(),
        warmup
    ));
    type Get = fn(&Sample) -> f64;
    let series: [(&str, Get); 9] = [
        ("RSS MB", |s| s.rss),
        ("head cache MB", |s| s.cache),
        ("fds", |s| s.fds),
        ("threads", |s| s.threads),
        ("WAL MB", |s| s.wal),
        ("blocks MB", |s| s.blocks),
        ("late ms", |s| s.late_ms),
        ("q recent ms", |s| s.q_recent_ms),
        ("q whole ms", |s| s.q_whole_ms),
    ];
    for (name, get) in series {
        let ys: Vec<f64> = samples.iter().map(get).collect();
        let (lo, hi) = ys
            .iter()
            .filter(|y| y.is_finite())
            .fold((f64::MAX, f64::MIN), |(a, b), &y| (a.min(y), b.max(y)));
        out.push_str(&format!(
            "  {name:>11} {} [{lo:.1} … {hi:.1}]\n",
            sparkline(&ys, 60)
        ));
    }
    if judged.len() < 5 {
        problems.push(format!(
            "only {} samples after the warm-up: too few to fit a slope",
            judged.len()
        ));
        return out;
    }
    let xs: Vec<f64> = judged.iter().map(|s| s.t).collect();
    let window = xs[xs.len() - 1] - xs[0];
    out.push_str(&format!(
        "\ngrowth over the judged {:.0} min (Theil–Sen slope × window; limit):\n",
        window / 60.0
    ));
    let mut check = |name: &str, ys: Vec<f64>, limit: Option<f64>, unit: &str| {
        let slope = theil_sen(&xs, &ys);
        let growth = slope * window;
        let (first, last) = (ys[0], ys[ys.len() - 1]);
        let verdict = match limit {
            Some(l) if growth > l => {
                problems.push(format!(
                    "{name} grows: {growth:+.2} {unit} over the judged window ({:+.2} {unit}/h), limit {l:.2}",
                    slope * 3600.0
                ));
                format!("FAIL (limit {l:.2})")
            }
            Some(l) => format!("ok (limit {l:.2})"),
            None => "not judged (grows with the data)".into(),
        };
        out.push_str(&format!(
            "  {name:>9}: {first:.2} → {last:.2} {unit}; slope {:+.3} {unit}/h, fitted growth {growth:+.2} {unit}: {verdict}\n",
            slope * 3600.0
        ));
    };
    let col = |f: fn(&Sample) -> f64| judged.iter().map(|s| f(s)).collect::<Vec<f64>>();
    let rss = col(|s| s.rss);
    let rss_limit = (0.10 * median(&mut rss.clone())).max(16.0);
    check("RSS", rss, Some(rss_limit), "MB");
    let fds = col(|s| s.fds);
    let fds_limit = (0.10 * median(&mut fds.clone())).max(8.0);
    check("fds", fds, Some(fds_limit), "");
    let threads = col(|s| s.threads);
    let threads_limit = (0.10 * median(&mut threads.clone())).max(8.0);
    check("threads", threads, Some(threads_limit), "");
    let wal = col(|s| s.wal);
    let wal_limit = 0.5 * wal.iter().copied().fold(0.0, f64::max) + 1.0;
    check("WAL", wal, Some(wal_limit), "MB");
    check("blocks", col(|s| s.blocks), None, "MB");
    // The WAL must also be cut into blocks: it falls at least once in every two block
    // durations of the judged window.
    let cuts = judged.windows(2).filter(|w| w[1].wal < w[0].wal).count();
    let want = (window / (2.0 * block)).floor() as usize;
    out.push_str(&format!(
        "  WAL cut into blocks {cuts} times in the judged window (at least {want} wanted)\n  \
         profile bytes written to the WAL: {:.1} % of the bytes received\n",
        judged.last().map_or(f64::NAN, |s| s.wal_ratio * 100.0)
    ));
    if cuts < want {
        problems.push(format!(
            "the WAL was cut {cuts} times in {:.0} min, fewer than once every two block durations",
            window / 60.0
        ));
    }
    let late = col(|s| s.late_ms);
    let recent = col(|s| s.q_recent_ms);
    let whole = col(|s| s.q_whole_ms);
    let max = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
    out.push_str(&format!(
        "  scrape lateness: median {:.0} ms, max {:.0} ms\n  queries over the last 10 min: median {:.0} ms, max {:.0} ms (slope {:+.1} ms/h)\n  queries over the whole run: median {:.0} ms, max {:.0} ms (slope {:+.1} ms/h)\n",
        median(&mut late.clone()),
        max(&late),
        median(&mut recent.clone()),
        max(&recent),
        theil_sen(&xs, &recent) * 3600.0,
        median(&mut whole.clone()),
        max(&whole),
        theil_sen(&xs, &whole) * 3600.0,
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("20"), Ok(Duration::from_secs(20)));
        assert!(parse_duration("10x").is_err());
        assert!(parse_duration("m").is_err());
        assert!(parse_duration("5m3").is_err());
    }

    #[test]
    fn theil_sen_ignores_a_spike() {
        let xs: Vec<f64> = (0..20).map(f64::from).collect();
        let mut ys = vec![100.0; 20];
        ys[10] = 1000.0;
        assert_eq!(theil_sen(&xs, &ys), 0.0);
        let ys: Vec<f64> = xs.iter().map(|x| 2.0 * x + 1.0).collect();
        assert_eq!(theil_sen(&xs, &ys), 2.0);
    }

    #[test]
    fn a_sawtooth_does_not_look_like_growth() {
        // A WAL that fills for 10 samples and is cut, over four periods.
        let xs: Vec<f64> = (0..40).map(f64::from).collect();
        let ys: Vec<f64> = xs.iter().map(|x| x % 10.0).collect();
        let growth = theil_sen(&xs, &ys) * 39.0;
        assert!(growth < 0.5 * 9.0 + 1.0, "{growth}");
        // Three periods, judged from the middle of one.
        let growth = theil_sen(&xs[5..35], &ys[5..35]) * 29.0;
        assert!(growth < 0.5 * 9.0 + 1.0, "{growth}");
        // One that is never cut grows by its whole size when judged after a short warm-up;
        // after a long one, the cut rule (it must fall) is what catches it.
        let growth = theil_sen(&xs[8..], &xs[8..]) * 31.0;
        assert!(growth > 0.5 * 39.0 + 1.0, "{growth}");
    }
}
