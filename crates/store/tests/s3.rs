//! Blocks in a real S3-compatible server (Garage, on 127.0.0.1): the same data answers the
//! same queries as from the WAL head, after compaction and after a restart that reads the
//! catalog back from the bucket.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use gocost_store::{BlobConfig, DAY_NS, Options, S3Config, Store};

const ACCESS_KEY: &str = "GK31c2f218a2e44f485b94239e";
const SECRET_KEY: &str = "b892c0665f0ada8a4755dae98baa3b133590e6b7a0a0fd8d6bd46b59fbb5b6a4";
const BUCKET: &str = "gocost";

struct Garage {
    child: Child,
    s3: String,
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

fn start_garage(bin: &Path, dir: &Path) -> Garage {
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

fn s3_options(data: &Path, endpoint: &str, prefix: &str) -> Options {
    let mut o = Options::new(data);
    o.blobs = BlobConfig::S3(S3Config {
        bucket: BUCKET.into(),
        prefix: prefix.into(),
        endpoint: endpoint.into(),
        region: "garage".into(),
        access_key_id: ACCESS_KEY.into(),
        secret_access_key: SECRET_KEY.into(),
        allow_http: true,
    });
    o
}

#[test]
fn blocks_live_in_a_real_s3_compatible_server() {
    let Some(bin) = gocost_testkit::external_tool("GARAGE", "garage", "--version") else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("gocost-s3-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let garage = start_garage(&bin, &dir.join("garage"));
    let data = dir.join("data");
    let (s, _) = Store::open(s3_options(&data, &garage.s3, "team/a")).unwrap();
    assert!(s.blocks_location().starts_with("s3://gocost/team/a"));
    fill(&s);
    let head = answers(&s);
    assert!(s.flush(true).unwrap());
    assert_eq!(answers(&s), head);
    assert_eq!(
        s.compact(20_002 * DAY_NS).unwrap(),
        1,
        "one block, one day to compact"
    );
    assert_eq!(answers(&s), head);
    assert_eq!(s.verify().unwrap(), Vec::<String>::new());
    let ids: Vec<String> = s.blocks().into_iter().map(|b| b.id).collect();
    drop(s);
    // Nothing went to the local disk but the WAL.
    let local: Vec<PathBuf> = std::fs::read_dir(&data)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().is_some_and(|n| n == "blocks"))
        .collect();
    assert!(local.is_empty(), "{local:?}");

    // A fresh data directory (another machine) sees the same blocks in the bucket.
    let (s, r) = Store::open(s3_options(&dir.join("data2"), &garage.s3, "team/a")).unwrap();
    assert!(r.corrupt.is_empty(), "{r:?}");
    let mut again: Vec<String> = s.blocks().into_iter().map(|b| b.id).collect();
    again.sort();
    let mut ids = ids;
    ids.sort();
    assert_eq!(again, ids);
    assert_eq!(answers(&s), head);
    // Another prefix is another store.
    drop(s);
    let (s, _) = Store::open(s3_options(&dir.join("data3"), &garage.s3, "team/b")).unwrap();
    assert!(s.blocks().is_empty());
    drop(s);
    drop(garage);
    let _ = std::fs::remove_dir_all(&dir);
}
