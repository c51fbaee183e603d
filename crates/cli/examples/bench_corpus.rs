//! Builds the benchmark corpus: a day of 1-minute CPU profiles made from real ones.
//!
//! `cargo run --release --example bench_corpus -- OUT_DIR N PROFILE...` writes
//! `OUT_DIR/minute-0000.pb.gz` … : copy `i` is `PROFILE[i % len]` with its time shifted by
//! `i` minutes and a `minute=<i mod 60>` label plus `hour=<i / 60>` label on every sample —
//! as a day of scrapes of a labelled service looks after merging (distinct label sets keep
//! samples apart, so the merged profile has many samples).

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let out = PathBuf::from(args.next().ok_or("usage: OUT_DIR N PROFILE...")?);
    let n: usize = args.next().ok_or("usage: OUT_DIR N PROFILE...")?.parse()?;
    let inputs: Vec<gocost_pprof::Profile> = args
        .map(|a| -> Result<_, Box<dyn std::error::Error>> {
            Ok(gocost_pprof::decode(&std::fs::read(&a)?).map_err(|e| format!("{a}: {e}"))?)
        })
        .collect::<Result<_, _>>()?;
    if inputs.is_empty() {
        return Err("no input profiles".into());
    }
    std::fs::create_dir_all(&out)?;
    for i in 0..n {
        let mut p = inputs[i % inputs.len()].clone();
        p.time_nanos += i as i64 * 60_000_000_000;
        p.set_label("minute", &format!("{:02}", i % 60));
        p.set_label("hour", &format!("{:02}", i / 60));
        std::fs::write(
            out.join(format!("minute-{i:04}.pb.gz")),
            gocost_pprof::encode(&p),
        )?;
    }
    Ok(())
}
