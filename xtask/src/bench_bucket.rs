//! `cargo run --release -p xtask -- bench-bucket`: queries over blocks in a bucket against
//! the same queries on local disk (issue 15, item 5; docs/adr/0027).
//!
//! DAYS days × SERVICES services of CPU profiles (real recordings, shifted in time) are cut
//! into hourly blocks and compacted per day on local disk; the same block files are then
//! uploaded to a Garage bucket (started here, one node on 127.0.0.1). The same queries run
//! on a store over local disk and a store over the bucket, side by side:
//! - **first run**: the store reopened before each run (the bucket store with an empty
//!   block cache), p95 over `--repeats` runs;
//! - **warm**: the query repeated on one open store, p95;
//! - **no cache**: the bucket store with `block_cache_bytes = 0`, repeated;
//! - bytes read from block storage per run (local: `pread`s; bucket: over the network).
//!
//! Printed as ratios bucket ÷ local (goal: warm ≤ 2×).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::arg;
use gocost_store::{
    BlobConfig, DAY_NS, HOUR_NS, Options, S3Config, Selector, SeriesKey, Store, open_blob_store,
};
use gocost_testkit::profiles_dir;

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

pub(crate) fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}

/// The real CPU profiles the bucket and cluster benchmarks store (testdata/profiles).
pub(crate) fn cpu_profiles() -> Result<Vec<Vec<u8>>, String> {
    ["cpu.pb.gz", "cpu2.pb.gz", "batch.cpu.pb.gz"]
        .iter()
        .map(|f| {
            let p = profiles_dir().join(f);
            std::fs::read(&p).map_err(|e| format!("{}: {e}", p.display()))
        })
        .collect()
}

/// One Garage node with a bucket and a key, as the store's tests start it.
fn start_garage(bin: &Path, dir: &Path) -> Result<Garage, String> {
    let (rpc, s3, admin) = (free_port()?, free_port()?, free_port()?);
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
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
    .map_err(|e| e.to_string())?;
    let log = std::fs::File::create(dir.join("garage.log")).map_err(|e| e.to_string())?;
    let child = Command::new(bin)
        .arg("-c")
        .arg(&cfg)
        .args(["server", "--single-node", "--default-bucket"])
        .env("GARAGE_DEFAULT_ACCESS_KEY", ACCESS_KEY)
        .env("GARAGE_DEFAULT_SECRET_KEY", SECRET_KEY)
        .env("GARAGE_DEFAULT_BUCKET", BUCKET)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("{}: {e}", bin.display()))?;
    let g = Garage {
        child,
        s3: format!("http://127.0.0.1:{s3}"),
    };
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
            return Ok(g);
        }
        if start.elapsed() > Duration::from_secs(30) {
            return Err(format!(
                "garage did not become healthy: {}",
                std::fs::read_to_string(dir.join("garage.log")).unwrap_or_default()
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn s3(endpoint: &str) -> BlobConfig {
    BlobConfig::S3(S3Config {
        bucket: BUCKET.into(),
        prefix: "bench".into(),
        endpoint: endpoint.into(),
        region: "garage".into(),
        access_key_id: ACCESS_KEY.into(),
        secret_access_key: SECRET_KEY.into(),
        allow_http: true,
    })
}

fn key(svc: i64) -> SeriesKey {
    SeriesKey::new(
        "cpu",
        [
            ("job".to_string(), format!("svc-{svc:03}")),
            (
                "instance".to_string(),
                format!("10.0.{}.{}:6060", svc / 250, svc % 250),
            ),
        ],
    )
}

fn pct(v: &[f64], p: f64) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

/// What one query costs: seconds, bytes read from block storage.
fn run_query(s: &Store, sel: &Selector, from: i64, to: i64) -> Result<(f64, u64), String> {
    let b0 = s.stats().block_read_bytes_total;
    let t0 = Instant::now();
    let p = s
        .query(sel, from, to)
        .map_err(|e| e.to_string())?
        .ok_or("no data")?;
    std::hint::black_box(crate::bench_store::flame_nodes(p)?);
    Ok((
        t0.elapsed().as_secs_f64(),
        s.stats().block_read_bytes_total - b0,
    ))
}

#[derive(Default)]
struct Side {
    first: Vec<f64>,
    first_bytes: u64,
    warm: Vec<f64>,
    warm_bytes: u64,
}

/// One way to open a store: how, and what to empty before a first run.
type Opener<'a> = (&'a dyn Fn() -> Result<Store, String>, &'a dyn Fn());

/// First runs (each on a freshly opened store, its `fresh` called before), then warm runs
/// on one open store; the stores take turns within each repeat, so that whatever else the
/// machine does weighs on all of them alike.
fn measure(
    sides: &[Opener<'_>],
    sel: &Selector,
    from: i64,
    to: i64,
    repeats: usize,
) -> Result<Vec<Side>, String> {
    let mut out: Vec<Side> = sides.iter().map(|_| Side::default()).collect();
    for _ in 0..repeats {
        for ((open, fresh), side) in sides.iter().zip(&mut out) {
            fresh();
            let s = open()?;
            let (t, b) = run_query(&s, sel, from, to)?;
            side.first.push(t);
            side.first_bytes = b;
        }
    }
    let stores: Vec<Store> = sides
        .iter()
        .map(|(open, _)| open())
        .collect::<Result<_, _>>()?;
    for s in &stores {
        run_query(s, sel, from, to)?;
    }
    for _ in 0..repeats {
        for (s, side) in stores.iter().zip(&mut out) {
            let (t, b) = run_query(s, sel, from, to)?;
            side.warm.push(t);
            side.warm_bytes = side.warm_bytes.max(b);
        }
    }
    Ok(out)
}

fn mb(b: u64) -> f64 {
    b as f64 / 1e6
}

pub fn run(args: &[String]) -> Result<(), String> {
    let days = arg(args, "--days", 30)? as i64;
    let services = arg(args, "--services", 200)? as i64;
    let interval = arg(args, "--interval-secs", 900)? as i64 * 1_000_000_000;
    let repeats = arg(args, "--repeats", 5)?.max(1) as usize;
    // `--cases all,one,unaligned` (default: all three); `--no-uncached` skips the side
    // without a cache (a round trip per section: minutes against a server with delayed ACKs).
    let only: Option<Vec<String>> = args
        .iter()
        .position(|a| a == "--cases")
        .and_then(|i| args.get(i + 1))
        .map(|v| v.split(',').map(str::to_string).collect());
    let uncached = !args.iter().any(|a| a == "--no-uncached");
    let bin = gocost_testkit::tools::require(&gocost_testkit::tools::GARAGE);
    let e = |e: gocost_store::Error| e.to_string();
    let tmp: PathBuf =
        std::env::temp_dir().join(format!("gocost-bench-bucket-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let garage = start_garage(&bin, &tmp.join("garage"))?;

    // The history, on local disk.
    let cpus = cpu_profiles()?;
    let local_dir = tmp.join("local");
    let local_opts = || {
        let mut o = Options::new(&local_dir);
        o.retention_ns = 0;
        o
    };
    let start = 20_000 * DAY_NS;
    let t0 = Instant::now();
    {
        let (s, _) = Store::open(local_opts()).map_err(e)?;
        let per_hour = HOUR_NS / interval;
        for d in 0..days {
            for h in 0..24 {
                for i in 0..per_hour {
                    let t = start + d * DAY_NS + h * HOUR_NS + i * interval;
                    for svc in 0..services {
                        let b = &cpus[((i + svc) as usize) % cpus.len()];
                        s.append(&key(svc), t + svc, b).map_err(e)?;
                    }
                }
                s.flush(true).map_err(e)?;
            }
            s.compact(start + (d + 2) * DAY_NS).map_err(e)?;
            eprint!("\r  history: day {}/{days}", d + 1);
        }
        eprintln!();
        s.compact(start + (days + 2) * DAY_NS).map_err(e)?;
        let st = s.stats();
        println!(
            "history: {days} days x {services} services every {}s: {} blocks, {:.1} MB (built in {:.0} s)",
            interval / 1_000_000_000,
            st.blocks,
            mb(st.block_bytes),
            t0.elapsed().as_secs_f64()
        );
    }
    // The same block files, into the bucket.
    let bucket = open_blob_store(&s3(&garage.s3), &tmp, None).map_err(e)?;
    let up = tmp.join("upload");
    for f in std::fs::read_dir(local_dir.join("blocks")).map_err(|e| e.to_string())? {
        let f = f.map_err(|e| e.to_string())?;
        let name = f.file_name().to_string_lossy().into_owned();
        std::fs::copy(f.path(), &up).map_err(|e| e.to_string())?;
        bucket.put_file(&name, &up).map_err(e)?;
    }
    drop(bucket);

    let bucket_dir = tmp.join("bucket");
    let bucket_opts = |cache: u64| {
        let mut o = Options::new(&bucket_dir);
        o.retention_ns = 0;
        o.blobs = s3(&garage.s3);
        o.block_cache_bytes = cache;
        o
    };
    // Stores take turns: the bucket with its cache, and without (another data directory).
    let nocache_dir = tmp.join("bucket-nocache");
    let nocache_opts = || {
        let mut o = Options::new(&nocache_dir);
        o.retention_ns = 0;
        o.blobs = s3(&garage.s3);
        o.block_cache_bytes = 0;
        o
    };
    let end = start + days * DAY_NS - 1;
    let minute = 60 * 1_000_000_000;
    // The one service: svc-003, or the last there is with fewer.
    let one = format!(r#"cpu{{job="svc-{:03}"}}"#, (services - 1).clamp(0, 3));
    let cases = [
        ("all", "all services, whole range", "cpu", start, end),
        ("one", "one service, whole range", one.as_str(), start, end),
        (
            "unaligned",
            "all services, unaligned",
            "cpu",
            start + 90 * minute + 7,
            end - 7 * minute,
        ),
    ];
    println!(
        "p95 over {repeats} runs; ratio = bucket / local (goal: warm <= 2x); first = store reopened, bucket's cache empty"
    );
    for (_, name, q, from, to) in cases
        .into_iter()
        .filter(|c| only.as_ref().is_none_or(|o| o.iter().any(|x| x == c.0)))
    {
        let sel = Selector::parse(q).map_err(|e| e.to_string())?;
        let open_local = || Ok(Store::open(local_opts()).map_err(e)?.0);
        let open_cached = || Ok(Store::open(bucket_opts(1 << 30)).map_err(e)?.0);
        let open_none = || Ok(Store::open(nocache_opts()).map_err(e)?.0);
        let empty_cache = || {
            let _ = std::fs::remove_dir_all(bucket_dir.join("cache"));
        };
        let mut which: Vec<Opener<'_>> = vec![(&open_local, &|| {}), (&open_cached, &empty_cache)];
        if uncached {
            which.push((&open_none, &|| {}));
        }
        let mut sides = measure(&which, &sel, from, to, repeats)?.into_iter();
        let (Some(local), Some(cached)) = (sides.next(), sides.next()) else {
            return Err("two sides measured".into());
        };
        let none = sides.next();
        let (lf, lw) = (pct(&local.first, 0.95), pct(&local.warm, 0.95));
        let (cf, cw) = (pct(&cached.first, 0.95), pct(&cached.warm, 0.95));
        println!("{name}:");
        let p50 = |v: &[f64]| pct(v, 0.5);
        println!(
            "  p50: local first {:.3}s warm {:.3}s; bucket first {:.3}s ({:.2}x) warm {:.3}s ({:.2}x)",
            p50(&local.first),
            p50(&local.warm),
            p50(&cached.first),
            p50(&cached.first) / p50(&local.first),
            p50(&cached.warm),
            p50(&cached.warm) / p50(&local.warm),
        );
        println!(
            "  local:  first {lf:.3}s  warm {lw:.3}s  read {:.1} MB per run",
            mb(local.first_bytes)
        );
        println!(
            "  bucket: first {cf:.3}s ({:.2}x)  warm {cw:.3}s ({:.2}x)  fetched first {:.1} MB ({:.2}x), warm {:.1} MB",
            cf / lf,
            cw / lw,
            mb(cached.first_bytes),
            cached.first_bytes as f64 / local.first_bytes.max(1) as f64,
            mb(cached.warm_bytes)
        );
        if let Some(none) = none {
            let (nf, nw) = (pct(&none.first, 0.95), pct(&none.warm, 0.95));
            println!(
                "  bucket without the cache: first {nf:.3}s ({:.2}x)  repeated {nw:.3}s ({:.2}x)  fetched {:.1} MB per run; p50 first {:.3}s, repeated {:.3}s",
                nf / lf,
                nw / lw,
                mb(none.first_bytes),
                p50(&none.first),
                p50(&none.warm)
            );
        }
    }
    let _ = std::fs::remove_dir_all(&bucket_dir);
    drop(garage);
    let _ = std::fs::remove_dir_all(&tmp);
    Ok(())
}
