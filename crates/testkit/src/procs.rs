//! Processes and HTTP for end-to-end tests: real Go programs and `gocost serve` on loopback,
//! killed when dropped; a plain HTTP/1.0 GET that needs no client library.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A child process, killed and reaped when dropped.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The path of Go's own `name` tool (`go tool -n name`: `pprof`, `trace`), which `go` builds
/// into its cache first when the release ships it unbuilt. Run it directly: under a different
/// `HOME` or `GOCACHE`, `go tool` would rebuild it every time.
pub fn go_tool(go: &Path, name: &str) -> std::path::PathBuf {
    let out = Command::new(go)
        .args(["tool", "-n", name])
        .output()
        .expect("running go tool -n");
    assert!(
        out.status.success(),
        "{} tool -n {name}: {}",
        go.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    std::path::PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// Runs `f` (a spawn or an `output()`), again for up to 10 s while it fails with "text file
/// busy": another process still has the executable open for writing (several tests' `go tool`
/// building the same tool into Go's cache at once).
pub fn retry_busy<T>(mut f: impl FnMut() -> std::io::Result<T>) -> std::io::Result<T> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match f() {
            Err(e)
                if e.kind() == std::io::ErrorKind::ExecutableFileBusy
                    && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(50));
            }
            r => return r,
        }
    }
}

/// `go build -o out .` in `src`; panics with Go's output if it fails.
pub fn go_build(go: &Path, src: &Path, out: &Path) {
    go_build_with(go, src, out, &[]);
}

/// `go build ARGS -o out .` in `src` (build tags, `-ldflags`); panics with Go's output if it
/// fails.
pub fn go_build_with(go: &Path, src: &Path, out: &Path, args: &[&str]) {
    let o = Command::new(go)
        .arg("build")
        .args(args)
        .arg("-o")
        .arg(out)
        .arg(".")
        .current_dir(src)
        .output()
        .expect("running go build");
    assert!(
        o.status.success(),
        "go build in {}: {}",
        src.display(),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// `testdata/go/regress` built as `version` with build `tags` (a slower build is a regression).
pub fn build_regress(go: &Path, out: &Path, version: &str, tags: &str) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/go/regress");
    let ldflags = format!("-ldflags=-X main.version={version}");
    go_build_with(go, &src, out, &["-tags", tags, &ldflags]);
}

/// Percent-encodes a query parameter's value.
pub fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Starts a test-bed program that writes its listen address to `addr_file` (its last
/// argument) and returns it with that address.
pub fn start_with_addr_file(bin: &Path, args: &[&str], addr_file: &Path) -> (Proc, String) {
    let p = Proc(
        Command::new(bin)
            .args(args)
            .arg(addr_file)
            .stdout(Stdio::null())
            .spawn()
            .expect("starting the test bed"),
    );
    let t = Instant::now();
    loop {
        if let Ok(a) = std::fs::read_to_string(addr_file)
            && !a.is_empty()
        {
            return (p, a.trim().to_string());
        }
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "{} did not start",
            bin.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Starts `gocost serve` (the binary at `gocost`) on a free loopback port with `config` and
/// `data`; returns it and its address.
pub fn start_gocost(gocost: &Path, config: &Path, data: &Path) -> (Proc, String) {
    start_gocost_args(
        gocost,
        &[
            "--config".as_ref(),
            config.as_os_str(),
            "--data".as_ref(),
            data.as_os_str(),
        ],
    )
}

/// `GET http://host:port/path` over HTTP/1.0 (the server closes the connection after the
/// response): the status and the body. Loopback test servers only.
pub fn http_get(url: &str) -> (u16, Vec<u8>) {
    let r = http_request("GET", url, &[], b"");
    (r.status, r.body)
}

/// Polls `f` until it holds, panicking after `timeout`; generous timeouts, because CI
/// machines run many tests (and real servers starting up) on two cores at once.
pub fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// A fresh, empty directory `gocost-<what>-<pid>-<name>` under the system's temp dir.
pub fn fresh_dir(what: &str, name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("gocost-{what}-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("creating a temp dir");
    d
}

/// Starts `gocost serve` on a free loopback port with extra arguments (e.g. `--config`,
/// `--data`, `--no-demo`); returns it and its address.
pub fn start_gocost_args(gocost: &Path, args: &[&std::ffi::OsStr]) -> (Proc, String) {
    let mut child = Command::new(gocost)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(args)
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting gocost serve");
    let stderr = child.stderr.take().expect("piped stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("serving on http://").nth(1) {
                let _ = tx.send(rest.split_whitespace().next().unwrap_or("").to_string());
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("gocost serve did not start");
    (Proc(child), addr)
}

/// Everything a process wrote to stderr so far, line by line (filled by a reader thread).
pub type Log = std::sync::Arc<std::sync::Mutex<Vec<String>>>;

/// [`start_gocost_args`] that also keeps every stderr line, for tests that look at what
/// gocost logged.
pub fn start_gocost_logged(gocost: &Path, args: &[&std::ffi::OsStr]) -> (Proc, String, Log) {
    start_gocost_logged_env(gocost, args, &[])
}

/// [`start_gocost_logged`] with environment variables set for the process.
pub fn start_gocost_logged_env(
    gocost: &Path,
    args: &[&std::ffi::OsStr],
    env: &[(&str, &std::ffi::OsStr)],
) -> (Proc, String, Log) {
    let mut child = Command::new(gocost)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(args)
        .envs(env.iter().copied())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting gocost serve");
    let stderr = child.stderr.take().expect("piped stderr");
    let log: Log = Default::default();
    let (tx, rx) = std::sync::mpsc::channel();
    let l = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("serving on http://").nth(1) {
                let _ = tx.send(rest.split_whitespace().next().unwrap_or("").to_string());
            }
            l.lock().unwrap_or_else(|p| p.into_inner()).push(line);
        }
    });
    let addr = match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(a) => a,
        Err(_) => panic!(
            "gocost serve did not start: {:?}",
            log.lock().unwrap_or_else(|p| p.into_inner())
        ),
    };
    (Proc(child), addr, log)
}

/// Sends `signal` (e.g. `"TERM"`, `"INT"`) to a process with `kill(1)`.
pub fn signal(p: &Proc, signal: &str) {
    let ok = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(p.0.id().to_string())
        .status()
        .expect("running kill")
        .success();
    assert!(ok, "kill -{signal} failed");
}

/// An HTTP/1.0 response: status, header lines (lower-cased names) and body.
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first header of that (lower-case) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// `METHOD http://host:port/path` over HTTP/1.0 with extra headers and a body. Loopback
/// test servers only.
pub fn http_request(method: &str, url: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
    let rest = url.strip_prefix("http://").expect("an http:// URL");
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let mut s = TcpStream::connect(host).unwrap_or_else(|e| panic!("{url}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(60))).ok();
    let mut req = format!("{method} {path} HTTP/1.0\r\nHost: {host}\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    s.write_all(req.as_bytes()).expect("sending the request");
    // A server may refuse a body before reading all of it (413): still read its answer.
    let _ = s.write_all(body);
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("{url}: no HTTP header in the response"));
    let head = String::from_utf8_lossy(&buf[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("{url}: bad status line {head:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Response {
        status,
        headers,
        body: buf[split + 4..].to_vec(),
    }
}
