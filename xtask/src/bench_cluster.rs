//! `cargo run --release -p xtask -- bench-cluster`: what sharing a bucket costs (issue 15's
//! numbers; docs/adr/0020, 0022).
//!
//! 1. **Ingest CPU per MB with 1, 2 and 4 instances** on this machine: that many release
//!    `gocost serve` processes over one bucket (a shared directory), PUSHES real CPU profiles
//!    pushed to them round-robin by four client threads (`/ingest`, each acknowledged only
//!    once synced), the CPU time of every gocost process from /proc before and after, ÷ the
//!    MB pushed. Flat is the goal: an instance costs per byte what one alone does.
//! 2. **The compactor's time per day of data**: WRITERS stores over one shared-directory
//!    bucket each cut hourly blocks of their share of a day of SERVICES services (every
//!    service in two writers), the lease holder compacts the day (every writer's blocks into
//!    one daily block per service), timed beside one store compacting the same day alone.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::arg;
use crate::bench_bucket::{cpu_profiles, free_port};
use crate::bench_fleet::proc_usage;
use gocost_store::{
    BlobConfig, ClusterOptions, DAY_NS, HOUR_NS, LeaseEvent, Options, SeriesKey, Store,
};
use gocost_testkit::procs::{Proc, http_request, wait_for};

/// Ingest with `n` instances: (CPU seconds of all of them, MB pushed, wall seconds).
fn ingest(
    bin: &Path,
    n: usize,
    pushes: usize,
    bodies: &[Vec<u8>],
    dir: &Path,
) -> Result<(f64, f64, f64), String> {
    let bucket = dir.join("bucket");
    std::fs::create_dir_all(&bucket).map_err(|e| e.to_string())?;
    let mut procs: Vec<(Proc, u16)> = Vec::new();
    for i in 0..n {
        let port = free_port()?;
        let cfg = dir.join(format!("i{i}.toml"));
        std::fs::write(
            &cfg,
            format!(
                "[storage]\nshared_dir = \"{}\"\n\n[cluster]\ninstance = \"i{i}\"\n",
                bucket.display()
            ),
        )
        .map_err(|e| e.to_string())?;
        let p = Proc(
            Command::new(bin)
                .args([
                    "serve",
                    "--no-demo",
                    "--listen",
                    &format!("127.0.0.1:{port}"),
                ])
                .arg("--config")
                .arg(&cfg)
                .arg("--data")
                .arg(dir.join(format!("i{i}")))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| format!("{}: {e}", bin.display()))?,
        );
        wait_for("gocost serve", Duration::from_secs(60), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        procs.push((p, port));
    }
    let pids: Vec<u32> = procs.iter().map(|(p, _)| p.0.id()).collect();
    let ports: Vec<u16> = procs.iter().map(|(_, port)| *port).collect();
    let used = |pids: &[u32]| {
        pids.iter()
            .filter_map(|&p| proc_usage(p))
            .map(|u| u.0)
            .sum::<f64>()
    };
    let before = used(&pids);
    let t0 = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let now_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_secs() as usize;
    let bytes: usize = std::thread::scope(|s| {
        let hs: Vec<_> = (0..4)
            .map(|_| {
                let (next, ports) = (next.clone(), &ports);
                s.spawn(move || {
                    let mut sent = 0usize;
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= pushes {
                            return sent;
                        }
                        let body = &bodies[i % bodies.len()];
                        // 50 services, each profile a second apart within its service.
                        let url = format!(
                            "http://127.0.0.1:{}/ingest?name=svc{}.cpu&format=pprof&from={}",
                            ports[i % ports.len()],
                            i % 50,
                            now_s - 3600 + i / 50
                        );
                        let r = http_request("POST", &url, &[], body);
                        assert_eq!(r.status, 200, "{}", r.text());
                        sent += body.len();
                    }
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap_or(0)).sum()
    });
    let wall = t0.elapsed().as_secs_f64();
    let cpu = used(&pids) - before;
    drop(procs);
    Ok((cpu, bytes as f64 / 1e6, wall))
}

fn key(svc: usize) -> SeriesKey {
    SeriesKey::new(
        "cpu",
        [
            ("service_name".into(), format!("svc{svc}")),
            ("instance".into(), format!("host-{svc}:6060")),
        ],
    )
}

/// A day of `services` services every `interval` ns into `stores` (each service's profiles
/// alternate between two of them), hourly blocks.
fn fill_day(
    stores: &[&Store],
    services: usize,
    interval: i64,
    start: i64,
    bodies: &[Vec<u8>],
) -> Result<(), String> {
    let e = |e: gocost_store::Error| e.to_string();
    for h in 0..24 {
        for i in 0..HOUR_NS / interval {
            let t = start + h * HOUR_NS + i * interval;
            for svc in 0..services {
                let w = if stores.len() == 1 {
                    0
                } else {
                    (svc + (i as usize % 2)) % stores.len()
                };
                stores[w]
                    .append(
                        &key(svc),
                        t + svc as i64,
                        &bodies[(i as usize + svc) % bodies.len()],
                    )
                    .map_err(e)?;
            }
        }
        for s in stores {
            s.flush(true).map_err(e)?;
        }
    }
    Ok(())
}

pub fn run(args: &[String]) -> Result<(), String> {
    let pushes = arg(args, "--pushes", 3000)? as usize;
    let writers = arg(args, "--writers", 3)?.max(1) as usize;
    let services = arg(args, "--services", 50)? as usize;
    let interval = arg(args, "--interval-secs", 60)? as i64 * 1_000_000_000;
    let bodies = cpu_profiles()?;
    let tmp = std::env::temp_dir().join(format!("gocost-bench-cluster-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let bin = crate::release_gocost()?;

    println!(
        "ingest: {pushes} pushes of real CPU profiles over one shared-directory bucket, 4 client threads"
    );
    println!("| instances | CPU s | MB pushed | CPU ms per MB | ÷ one instance | pushes/s |");
    println!("|---|---|---|---|---|---|");
    let mut one = None;
    for n in [1usize, 2, 4] {
        let (cpu, mb, wall) = ingest(&bin, n, pushes, &bodies, &tmp.join(format!("ingest-{n}")))?;
        let per = cpu * 1000.0 / mb;
        let base = *one.get_or_insert(per);
        println!(
            "| {n} | {cpu:.2} | {mb:.1} | {per:.1} | {:.2}x | {:.0} |",
            per / base,
            pushes as f64 / wall
        );
    }

    // The compactor: a day from several writers over one bucket, beside one store alone.
    let e = |e: gocost_store::Error| e.to_string();
    let start = 20_000 * DAY_NS;
    let later = start + 3 * DAY_NS;
    let bucket = tmp.join("compact-bucket");
    std::fs::create_dir_all(&bucket).map_err(|e| e.to_string())?;
    let ws: Vec<Store> = (0..writers)
        .map(|i| {
            let mut o = Options::new(tmp.join(format!("w{i}")));
            o.retention_ns = 0;
            o.blobs = BlobConfig::Dir(bucket.clone());
            o.cluster = Some(ClusterOptions {
                delete_delay: Duration::ZERO,
                ..ClusterOptions::new(format!("w{i}"))
            });
            Store::open(o).map(|(s, _)| s).map_err(e)
        })
        .collect::<Result<_, _>>()?;
    let mut o = Options::new(tmp.join("alone"));
    o.retention_ns = 0;
    let (alone, _) = Store::open(o).map_err(e)?;
    let refs: Vec<&Store> = ws.iter().collect();
    fill_day(&refs, services, interval, start, &bodies)?;
    fill_day(&[&alone], services, interval, start, &bodies)?;
    for s in &ws {
        s.refresh_cluster().map_err(e)?;
    }
    let holder = {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some(i) =
                (0..ws.len()).find(|&i| matches!(ws[i].tick_lease(), Ok(LeaseEvent::Taken { .. })))
            {
                break i;
            }
            if Instant::now() > deadline {
                return Err("no writer took the compactor lease".into());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    let blocks_before = ws[holder].stats().blocks;
    let t = Instant::now();
    let merged = ws[holder].compact(later).map_err(e)?;
    let shared = t.elapsed().as_secs_f64();
    let t = Instant::now();
    alone.compact(later).map_err(e)?;
    let single = t.elapsed().as_secs_f64();
    println!(
        "\ncompaction of one day ({services} services every {}s, hourly blocks): {writers} writers' {blocks_before} blocks over one bucket by the lease holder: {shared:.2} s ({merged} compacted); one store alone: {single:.2} s; ratio {:.2}x",
        interval / 1_000_000_000,
        shared / single.max(1e-9)
    );
    drop((ws, alone));
    let _ = std::fs::remove_dir_all(&tmp);
    Ok(())
}
