//! Burns CPU in two named functions while the real Rust Pyroscope agent pushes to the
//! server given as the first argument (app name in the second) for the given seconds.
use pyroscope::PyroscopeAgent;
use pyroscope_pprofrs::{pprof_backend, PprofConfig};
use std::time::{Duration, Instant};

#[inline(never)]
fn gocost_rust_spin_a(n: u64) -> u64 {
    let mut x = n;
    for i in 0..2_000_000u64 {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(i);
    }
    std::hint::black_box(x)
}

#[inline(never)]
fn gocost_rust_spin_b(n: u64) -> u64 {
    let mut x = n;
    for i in 0..1_000_000u64 {
        x = x.rotate_left(7) ^ i;
    }
    std::hint::black_box(x)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let url = args
        .get(1)
        .cloned()
        .unwrap_or_else(|| "http://127.0.0.1:4040".into());
    let app = args.get(2).cloned().unwrap_or_else(|| "rust-agent".into());
    let secs: u64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(25);
    let token = std::env::var("GOCOST_TOKEN").ok();
    let mut builder = PyroscopeAgent::builder(url, app)
        .backend(pprof_backend(PprofConfig::new().sample_rate(100)))
        .tags([("env", "test")].to_vec());
    if let Some(t) = token {
        builder = builder.auth_token(t);
    }
    let agent = builder.build().expect("agent");
    let agent = agent.start().expect("start");
    let end = Instant::now() + Duration::from_secs(secs);
    let mut acc = 0u64;
    while Instant::now() < end {
        acc = acc.wrapping_add(gocost_rust_spin_a(acc));
        acc = acc.wrapping_add(gocost_rust_spin_b(acc));
    }
    println!("{acc}");
    std::thread::sleep(Duration::from_millis(200));
    let agent = agent.stop().expect("stop");
    agent.shutdown();
}
