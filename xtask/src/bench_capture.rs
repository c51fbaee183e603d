//! `cargo run --release -p xtask -- bench-capture [--rounds N] [--phase-secs N]
//! [--every-secs N] [--seconds N] [--concurrency N]`: what continuous execution tracing costs
//! a real Go HTTP service, as its throughput with and without capture, in one run.
//!
//! The service is `testdata/go/traced` (built with the newest Go, as `bench-trace`; its
//! background workers off) and the load `gocost load --concurrency N` (closed model) on its
//! `/work` handler (a small API call: JSON encoding, allocation). Each round measures two
//! phases of `--phase-secs` (default 20) each, in alternating order so a drifting machine
//! favours neither: *off* — no tracer; *on* — the release `gocost serve` scraping the service
//! with `profiles = ["trace"]` and `trace = { every = "<every-secs>s", seconds = <seconds> }`
//! (default a 1 s trace every 2 s: the tracer on half the time, a harsher schedule than any
//! deployment's), so the service pays for the tracer and gocost's parsing shares the machine.
//! It prints each phase's throughput, the traces stored in each on-phase, the CPU gocost
//! used, and the ratio on / off of the summed throughputs (1.0 = free). Rounds default to 3.
//!
//! Measured (`--rounds 2 --phase-secs 15`, 8 clients, Go 1.27, a 2-core machine shared with
//! two compiling engineers, so single phases vary by ±10 %): off 3,719 / 3,044 req/s, on
//! 3,207 / 2,789 req/s (8 and 7 traces stored), **on / off 0.887**; gocost serve used 2.9 CPU
//! seconds over the 30 s of capture (parsing and storing 1-second traces of 0.8–1.6 MB, on
//! the same two cores as the service). The tracer runs half the time here; at a
//! deployment's schedule (5 s every few minutes) the cost is that share of it.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::{Result, arg};
use gocost_testkit::procs::{Proc, go_build, http_get, start_gocost, start_with_addr_file};
use gocost_testkit::repo_root;

/// CPU seconds (user + system) a live process used so far, from /proc.
fn cpu_seconds(pid: u32) -> f64 {
    let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    let rest = s.rsplit_once(')').map_or("", |x| x.1);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// One closed-model load phase: answered requests per second.
fn load(gocost: &Path, url: &str, secs: u64, concurrency: u64) -> Result<f64> {
    let out = crate::output(Command::new(gocost).args([
        "load",
        url,
        "--concurrency",
        &concurrency.to_string(),
        "--duration",
        &format!("{secs}s"),
        "--warmup",
        "2s",
        "--json",
    ]))?;
    let v: serde_json::Value = serde_json::from_slice(&out).map_err(|e| e.to_string())?;
    let errors = v["errors"].as_u64().unwrap_or(0);
    if errors > 0 {
        return Err(format!(
            "gocost load: {errors} errors: {}",
            v["error_kinds"]
        ));
    }
    v["throughput"]
        .as_f64()
        .ok_or_else(|| "gocost load printed no throughput".into())
}

pub fn run(args: &[String]) -> Result<()> {
    let rounds = arg(args, "--rounds", 3)?.max(1);
    let phase = arg(args, "--phase-secs", 20)?.max(5);
    let every = arg(args, "--every-secs", 2)?.max(1);
    let seconds = arg(args, "--seconds", 1)?.max(1);
    let concurrency = arg(args, "--concurrency", 8)?.max(1);
    let root = repo_root();
    let dir = crate::target_dir().join("bench-capture");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let gocost = crate::release_gocost()?;
    let go = crate::bench_trace::newest_go();
    let bed = dir.join("traced");
    go_build(&go, &root.join("testdata/go/traced"), &bed);
    let (_svc, addr) = start_with_addr_file(
        &bed,
        &["-workers=0", "-duration=2h"],
        &dir.join("traced.addr"),
    );
    let url = format!("http://{addr}/work");
    let cfg = dir.join("gocost.toml");
    std::fs::write(
        &cfg,
        format!(
            "[[scrape]]\njob = \"traced\"\ntargets = [\"{addr}\"]\ninterval = \"1h\"\n\
             profiles = [\"trace\"]\ntrace = {{ every = \"{every}s\", seconds = {seconds} }}\n"
        ),
    )
    .map_err(|e| e.to_string())?;
    // One unmeasured phase first: the service's and the machine's caches warm.
    load(&gocost, &url, 5, concurrency)?;

    let (mut off, mut on) = (Vec::new(), Vec::new());
    let mut gocost_cpu = 0.0;
    let mut traces = Vec::new();
    for r in 0..rounds {
        let order: [bool; 2] = if r % 2 == 0 {
            [false, true]
        } else {
            [true, false]
        };
        for capture in order {
            if !capture {
                let t = load(&gocost, &url, phase, concurrency)?;
                eprintln!("round {}: off {t:.0} req/s", r + 1);
                off.push(t);
                continue;
            }
            let data = dir.join(format!("data-{r}"));
            let (serve, api): (Proc, String) = start_gocost(&gocost, &cfg, &data);
            let t = load(&gocost, &url, phase, concurrency)?;
            let (_, body) = http_get(&format!("http://{api}/api/v1/traces?from=now-1h"));
            let n = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.as_array().map(Vec::len))
                .unwrap_or(0);
            gocost_cpu += cpu_seconds(serve.0.id());
            drop(serve);
            eprintln!("round {}: on  {t:.0} req/s ({n} traces stored)", r + 1);
            on.push(t);
            traces.push(n);
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    if traces.iter().all(|&n| n == 0) {
        return Err("no trace was stored: capture did not run".into());
    }
    let sum = |v: &[f64]| v.iter().sum::<f64>();
    println!(
        "service testdata/go/traced /work, {concurrency} clients, {rounds} rounds of {phase} s per phase; capture: a {seconds} s trace every {every} s"
    );
    for (i, (a, b)) in off.iter().zip(&on).enumerate() {
        println!(
            "round {}: off {a:>8.0} req/s   on {b:>8.0} req/s ({} traces)   on/off {:.3}",
            i + 1,
            traces[i],
            b / a
        );
    }
    println!(
        "gocost serve CPU while capturing: {gocost_cpu:.2} s over {} s",
        rounds * phase
    );
    println!(
        "throughput with capture / without: {:.3} (1.0 = free)",
        sum(&on) / sum(&off).max(1e-9)
    );
    Ok(())
}
