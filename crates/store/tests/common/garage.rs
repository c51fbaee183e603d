//! A real S3-compatible server for tests: Garage on 127.0.0.1 with a bucket and a key.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use gocost_store::{BlobConfig, Options, S3Config};

pub const ACCESS_KEY: &str = "GK31c2f218a2e44f485b94239e";
pub const SECRET_KEY: &str = "b892c0665f0ada8a4755dae98baa3b133590e6b7a0a0fd8d6bd46b59fbb5b6a4";
pub const BUCKET: &str = "gocost";

pub struct Garage {
    child: Child,
    pub s3: String,
}

impl Drop for Garage {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn start_garage(bin: &Path, dir: &Path) -> Garage {
    let (rpc, s3, admin) = (free_port(), free_port(), free_port());
    std::fs::create_dir_all(dir).unwrap();
    let cfg = dir.join("garage.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"metadata_dir = "{meta}"
data_dir = "{data}"
db_engine = "sqlite"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:{rpc}"
rpc_public_addr = "127.0.0.1:{rpc}"
rpc_secret = "1799bccfd7411eddcf9ebd316bc1f5287ad12a68094e1c6ac6abde7e6feae1ec"

[s3_api]
api_bind_addr = "127.0.0.1:{s3}"
s3_region = "garage"

[admin]
api_bind_addr = "127.0.0.1:{admin}"
"#,
            meta = dir.join("meta").display(),
            data = dir.join("data").display(),
        ),
    )
    .unwrap();
    let child = Command::new(bin)
        .arg("-c")
        .arg(&cfg)
        .args(["server", "--single-node", "--default-bucket"])
        .env("GARAGE_DEFAULT_ACCESS_KEY", ACCESS_KEY)
        .env("GARAGE_DEFAULT_SECRET_KEY", SECRET_KEY)
        .env("GARAGE_DEFAULT_BUCKET", BUCKET)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("garage.log")).unwrap())
        .spawn()
        .unwrap();
    let g = Garage {
        child,
        s3: format!("http://127.0.0.1:{s3}"),
    };
    // Ready when the admin health endpoint says so.
    let start = Instant::now();
    loop {
        let ok = std::net::TcpStream::connect(("127.0.0.1", admin)).is_ok_and(|mut c| {
            use std::io::{Read, Write};
            let _ = c.set_read_timeout(Some(Duration::from_secs(2)));
            let _ = c.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            let mut out = String::new();
            let _ = c.read_to_string(&mut out);
            out.starts_with("HTTP/1.1 200")
        });
        if ok {
            return g;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "garage did not become healthy: {}",
            std::fs::read_to_string(dir.join("garage.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn s3_options(data: &Path, endpoint: &str, prefix: &str) -> Options {
    let mut o = Options::new(data);
    o.blobs = s3_config(endpoint, prefix);
    o
}

/// The Garage binary (`$GARAGE` or `garage` on the path), for a test marked
/// `#[cfg_attr(not(has_garage), ignore = "…")]`.
pub fn garage_binary() -> PathBuf {
    gocost_testkit::tools::require(&gocost_testkit::tools::GARAGE)
}

/// The bucket of a running Garage under `prefix`.
pub fn s3_config(endpoint: &str, prefix: &str) -> BlobConfig {
    BlobConfig::S3(S3Config {
        bucket: BUCKET.into(),
        prefix: prefix.into(),
        endpoint: endpoint.into(),
        region: "garage".into(),
        access_key_id: ACCESS_KEY.into(),
        secret_access_key: SECRET_KEY.into(),
        allow_http: true,
    })
}

/// A Garage cluster of three nodes on 127.0.0.1 (replication factor 3, one zone each), with
/// the bucket and key of [`start_garage`]; each node answers S3 (`s3[i]`). Dropping it
/// stops them all; [`GarageCluster::kill`] stops one.
pub struct GarageCluster {
    nodes: Vec<Option<Child>>,
    pub s3: Vec<String>,
}

impl GarageCluster {
    /// Kills node `i` (SIGKILL) and waits for it.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.nodes[i].take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for GarageCluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
    }
}

/// Runs `garage -c cfg args…` until it succeeds (the cluster converges for a while);
/// returns its stdout.
fn garage_cli(bin: &Path, cfg: &Path, args: &[&str]) -> String {
    let start = Instant::now();
    loop {
        let out = Command::new(bin)
            .arg("-c")
            .arg(cfg)
            .args(args)
            .output()
            .unwrap();
        if out.status.success() {
            return String::from_utf8_lossy(&out.stdout).into_owned();
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "garage {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

pub fn start_garage_cluster(bin: &Path, dir: &Path) -> GarageCluster {
    let mut nodes = Vec::new();
    let mut s3s = Vec::new();
    let mut cfgs = Vec::new();
    let mut admins = Vec::new();
    for i in 0..3 {
        let d = dir.join(format!("node{i}"));
        std::fs::create_dir_all(&d).unwrap();
        let (rpc, s3, admin) = (free_port(), free_port(), free_port());
        let cfg = d.join("garage.toml");
        std::fs::write(
            &cfg,
            format!(
                r#"metadata_dir = "{meta}"
data_dir = "{data}"
db_engine = "sqlite"
replication_factor = 3
rpc_bind_addr = "127.0.0.1:{rpc}"
rpc_public_addr = "127.0.0.1:{rpc}"
rpc_secret = "1799bccfd7411eddcf9ebd316bc1f5287ad12a68094e1c6ac6abde7e6feae1ec"

[s3_api]
api_bind_addr = "127.0.0.1:{s3}"
s3_region = "garage"

[admin]
api_bind_addr = "127.0.0.1:{admin}"
"#,
                meta = d.join("meta").display(),
                data = d.join("data").display(),
            ),
        )
        .unwrap();
        let child = Command::new(bin)
            .arg("-c")
            .arg(&cfg)
            .arg("server")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(d.join("garage.log")).unwrap())
            .spawn()
            .unwrap();
        nodes.push(Some(child));
        s3s.push(format!("http://127.0.0.1:{s3}"));
        cfgs.push(cfg);
        admins.push(admin);
    }
    let cluster = GarageCluster { nodes, s3: s3s };
    let ids: Vec<String> = cfgs
        .iter()
        .map(|c| garage_cli(bin, c, &["node", "id", "-q"]).trim().to_string())
        .collect();
    for id in &ids[1..] {
        garage_cli(bin, &cfgs[0], &["node", "connect", id]);
    }
    for (i, id) in ids.iter().enumerate() {
        let short = id.split('@').next().unwrap_or(id);
        let zone = format!("z{i}");
        garage_cli(
            bin,
            &cfgs[0],
            &["layout", "assign", "-z", &zone, "-c", "1G", short],
        );
    }
    garage_cli(bin, &cfgs[0], &["layout", "apply", "--version", "1"]);
    garage_cli(
        bin,
        &cfgs[0],
        &[
            "key",
            "import",
            "--yes",
            "-n",
            "gocost-test",
            ACCESS_KEY,
            SECRET_KEY,
        ],
    );
    garage_cli(bin, &cfgs[0], &["bucket", "create", BUCKET]);
    garage_cli(
        bin,
        &cfgs[0],
        &[
            "bucket",
            "allow",
            "--read",
            "--write",
            "--owner",
            BUCKET,
            "--key",
            "gocost-test",
        ],
    );
    // Every node healthy (it sees the layout and a quorum).
    let start = Instant::now();
    for admin in admins {
        loop {
            let ok = std::net::TcpStream::connect(("127.0.0.1", admin)).is_ok_and(|mut c| {
                use std::io::{Read, Write};
                let _ = c.set_read_timeout(Some(Duration::from_secs(2)));
                let _ =
                    c.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
                let mut out = String::new();
                let _ = c.read_to_string(&mut out);
                out.starts_with("HTTP/1.1 200")
            });
            if ok {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "the garage cluster did not become healthy: {}",
                std::fs::read_to_string(dir.join("node0/garage.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    cluster
}
