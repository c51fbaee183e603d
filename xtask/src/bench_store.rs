//! `cargo run --release -p xtask -- bench-store`: the store's numbers from issue 3.
//!
//! 1. Ingest throughput: real recorded profiles appended (validated, WAL-written) and then
//!    cut into a block, in MB of pprof per CPU-second, against Pyroscope's own sizing rule
//!    of about 8 MB/s per core.
//! 2. History: DAYS days × SERVICES services of CPU profiles (real recordings with shifted
//!    timestamps), cut into hourly blocks and compacted per day, then the finished weeks
//!    into week blocks (docs/adr/0034); bytes on disk per byte of pprof received.
//! 3. Flame graphs over the whole history (all services, one service, and a range that does
//!    not start or end on an hour): query + report + flame tree, p50/p95 over repeats, read
//!    as the API's flame endpoint reads (summed in stack space without labels, `agg=mean`:
//!    docs/adr/0017) and as the profile download reads (each profile through pprof's merge);
//!    on week blocks with the default query threads, beside one thread and beside the day
//!    blocks before the weeks were compacted.
//!
//! `--seeds A,B,…` builds everything from the given CPU profiles instead of testdata's small
//! ones, e.g. the realistic corpus `scripts/bench.py` records (60-second profiles of a
//! generated 800-function service, target/bench-svc/profiles/cpu-*.pb.gz): flame trees of
//! tens of thousands of nodes. `--busy-interval-secs 10` adds one busy service scraped every
//! 10 s over the last day, and flame cases for its last hour and last day (the UI's Explore).
//!
//! `--keep DIR` builds the history in DIR and leaves it there; a later run with the same
//! `--keep DIR` (and the same `--days`, `--services`, `--busy-interval-secs`) skips ingest
//! and history and only times the flame cases on what DIR holds: for timing a query change
//! without rebuilding a 30-day history; `--only TEXT` times only the cases whose line holds
//! TEXT (e.g. `--only "(API), all services, whole"`).

use std::time::Instant;

use crate::arg;
use gocost_store::{Agg, DAY_NS, HOUR_NS, Options, Read, Selector, SeriesKey, Store};
use gocost_testkit::profiles_dir;

/// CPU seconds this process has used (user + system), from /proc.
fn cpu_seconds() -> f64 {
    let Ok(s) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name's closing parenthesis; utime and stime are 14 and 15.
    let rest = s.rsplit_once(')').map_or("", |x| x.1);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// Seconds per repeat of a flame case as the API's flame endpoint builds it (query, report,
/// tree), and the tree's node count.
fn flame_times(
    s: &Store,
    sel: &Selector,
    from: i64,
    to: i64,
    agg: Agg,
    read: Read,
    repeats: usize,
) -> Result<(Vec<f64>, usize), String> {
    let mut times = Vec::new();
    let mut nodes = 0;
    for _ in 0..repeats {
        let t0 = Instant::now();
        let p = s
            .query_agg_as(sel, from, to, agg, read)
            .map_err(|e| e.to_string())?
            .ok_or("no data")?;
        nodes = flame_nodes(p)?;
        times.push(t0.elapsed().as_secs_f64());
    }
    Ok((times, nodes))
}

/// The flame tree of `p` as the API's flame endpoint builds it (report, then tree): its
/// node count.
pub(crate) fn flame_nodes(p: gocost_pprof::Profile) -> Result<usize, String> {
    let opts = gocost_report::Options {
        nodecount: Some(0),
        ..Default::default()
    };
    let rpt = gocost_report::Report::new(p, &opts).map_err(|e| e.to_string())?;
    Ok(gocost_flame::tree_from_report(&rpt).node_count())
}

fn read(name: &str) -> Result<Vec<u8>, String> {
    read_path(&profiles_dir().join(name))
}

fn read_path(p: &std::path::Path) -> Result<Vec<u8>, String> {
    std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()))
}

/// `--seeds a,b,c`: the files given, if any.
fn seeds(args: &[String]) -> Result<Option<Vec<Vec<u8>>>, String> {
    let Some(i) = args.iter().position(|a| a == "--seeds") else {
        return Ok(None);
    };
    let list = args
        .get(i + 1)
        .ok_or("--seeds needs a comma-separated list of files")?;
    let files: Vec<Vec<u8>> = list
        .split(',')
        .filter(|f| !f.is_empty())
        .map(|f| read_path(std::path::Path::new(f)))
        .collect::<Result<_, _>>()?;
    if files.is_empty() {
        return Err("--seeds: no files given".into());
    }
    Ok(Some(files))
}

fn key(kind: &str, svc: i64) -> SeriesKey {
    SeriesKey::new(
        kind,
        [
            ("job".to_string(), format!("svc-{svc:02}")),
            ("instance".to_string(), format!("10.0.0.{svc}:6060")),
        ],
    )
}

/// Where the bytes on disk go, by kind of section (compressed, and inflated).
fn print_disk_breakdown(blocks: &[gocost_store::BlockMeta], total: u64) {
    let mut kinds: [(&str, u64, u64); 7] = [
        ("symbols", 0, 0),
        ("raw", 0, 0),
        ("raw_hours", 0, 0),
        ("rollups (1d, 1w)", 0, 0),
        ("hour_rollups (1h)", 0, 0),
        ("fine_rollups (10m)", 0, 0),
        ("points", 0, 0),
    ];
    let mut add = |k: usize, s: Option<&gocost_store::Section>| {
        if let Some(s) = s {
            kinds[k].1 += s.len;
            kinds[k].2 += s.raw_len;
        }
    };
    for b in blocks {
        for g in &b.groups {
            add(0, Some(&g.symbols));
        }
        for s in &b.series {
            add(1, Some(&s.raw));
            add(2, s.raw_hours.as_ref());
            add(3, s.rollups.as_ref());
            add(4, s.hour_rollups.as_ref());
            add(5, s.fine_rollups.as_ref());
        }
        add(6, b.points.as_ref());
    }
    let sections: u64 = kinds.iter().map(|k| k.1).sum();
    for (name, len, raw) in
        kinds
            .iter()
            .chain([&("indexes and headers", total.saturating_sub(sections), 0)])
    {
        println!(
            "    {name:<20} {:8.1} MB {:5.1}%  ({:.1} MB inflated)",
            *len as f64 / 1e6,
            100.0 * *len as f64 / total.max(1) as f64,
            *raw as f64 / 1e6
        );
    }
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

pub fn run(args: &[String]) -> Result<(), String> {
    let days = arg(args, "--days", 30)? as i64;
    let services = arg(args, "--services", 20)? as i64;
    let interval = arg(args, "--interval-secs", 300)? as i64 * 1_000_000_000;
    let repeats = arg(args, "--repeats", 10)?.max(1) as usize;
    let busy = arg(args, "--busy-interval-secs", 0)? as i64 * 1_000_000_000;
    let seeds = seeds(args)?;
    let e = |e: gocost_store::Error| e.to_string();
    let keep = match args.iter().position(|a| a == "--keep") {
        Some(i) => Some(std::path::PathBuf::from(
            args.get(i + 1).ok_or("--keep needs a directory")?,
        )),
        None => None,
    };
    let tmp = keep.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("gocost-bench-store-{}", std::process::id()))
    });
    let start = 20_000 * DAY_NS;
    let end = start + days * DAY_NS - 1;
    // The one service: svc-03, or the last there is with fewer.
    let one = format!(r#"cpu{{job="svc-{:02}"}}"#, (services - 1).clamp(0, 3));
    let cases = flame_cases(&one, start, end, busy);
    if keep.is_some() && tmp.join("history").exists() {
        let only = match args.iter().position(|a| a == "--only") {
            Some(i) => args.get(i + 1).ok_or("--only needs a text")?.as_str(),
            None => "",
        };
        return time_kept(&tmp.join("history"), &cases, repeats, only);
    }
    let _ = std::fs::remove_dir_all(&tmp);

    // 1. Ingest throughput over every recorded kind.
    let kinds = [
        ("cpu", "cpu.pb.gz"),
        ("cpu", "cpu2.pb.gz"),
        ("heap", "heap.pb.gz"),
        ("allocs", "allocs.delta.pb.gz"),
        ("goroutine", "goroutine.pb.gz"),
        ("mutex", "mutex.delta.pb.gz"),
        ("block", "block.delta.pb.gz"),
    ];
    let data: Vec<(&str, Vec<u8>)> = match &seeds {
        Some(s) => s.iter().map(|b| ("cpu", b.clone())).collect(),
        None => kinds
            .iter()
            .map(|(k, f)| Ok((*k, read(f)?)))
            .collect::<Result<_, String>>()?,
    };
    let (s, _) = Store::open(Options::new(tmp.join("ingest"))).map_err(e)?;
    let n = 20_000i64;
    let (c0, w0) = (cpu_seconds(), Instant::now());
    let mut bytes = 0u64;
    for i in 0..n {
        let (kind, b) = &data[(i as usize) % data.len()];
        s.append(&key(kind, i % 50), i * 1_000_000_000, b)
            .map_err(e)?;
        bytes += b.len() as u64;
    }
    s.sync().map_err(e)?;
    let (c1, w1) = (cpu_seconds(), w0.elapsed().as_secs_f64());
    s.flush(true).map_err(e)?;
    let (c2, w2) = (cpu_seconds(), w0.elapsed().as_secs_f64());
    let mb = bytes as f64 / 1e6;
    let append_rate = mb / (c1 - c0).max(1e-9);
    let total_rate = mb / (c2 - c0).max(1e-9);
    println!("ingest: {n} profiles, {mb:.1} MB of pprof");
    println!(
        "  append (validate + WAL): {append_rate:.1} MB/s per core ({:.2} CPU-s, {w1:.2} s wall)",
        c1 - c0
    );
    println!(
        "  append + cut into a block: {total_rate:.1} MB/s per core ({:.2} CPU-s, {w2:.2} s wall)",
        c2 - c0
    );
    println!(
        "  ratio vs Pyroscope's sizing rule (8 MB/s per core): {:.1}x (goal >= 6.2x, i.e. 50 MB/s)",
        total_rate / 8.0
    );
    let st = s.stats();
    println!(
        "  block bytes per byte received: {:.3}",
        st.block_bytes as f64 / st.block_ingested_bytes.max(1) as f64
    );
    drop(s);

    // 2. History.
    let cpus = match seeds {
        Some(s) => s,
        None => vec![
            read("cpu.pb.gz")?,
            read("cpu2.pb.gz")?,
            read("batch.cpu.pb.gz")?,
        ],
    };
    let busy_key = key("cpu", 99);
    let mut o = Options::new(tmp.join("history"));
    // Built as day blocks (retention under four weeks compacts no weeks), timed, then
    // compacted into week blocks and timed again (docs/adr/0034).
    o.retention_ns = 7 * DAY_NS;
    let (s, _) = Store::open(o.clone()).map_err(e)?;
    let per_day = DAY_NS / interval;
    let (c0, w0) = (cpu_seconds(), Instant::now());
    let mut count = 0u64;
    for d in 0..days {
        for h in 0..24 {
            for i in 0..per_day / 24 {
                let t = start + d * DAY_NS + h * HOUR_NS + i * interval;
                for svc in 0..services {
                    let b = &cpus[((i + svc) as usize) % cpus.len()];
                    s.append(&key("cpu", svc), t + svc, b).map_err(e)?;
                    count += 1;
                }
            }
            if busy > 0 && d == days - 1 {
                // The busy service (svc-99): every `busy` over this hour.
                for i in 0..HOUR_NS / busy {
                    let t = start + d * DAY_NS + h * HOUR_NS + i * busy;
                    let b = &cpus[(i as usize) % cpus.len()];
                    s.append(&busy_key, t + 99, b).map_err(e)?;
                    count += 1;
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
    if busy > 0 {
        println!(
            "history: plus svc-99 every {}s over the last day",
            busy / 1_000_000_000
        );
    }
    println!(
        "history: {days} days x {services} services every {}s = {count} profiles, {:.1} MB of pprof, built in {:.1} CPU-s ({:.1} s wall)",
        interval / 1_000_000_000,
        st.block_ingested_bytes as f64 / 1e6,
        cpu_seconds() - c0,
        w0.elapsed().as_secs_f64()
    );
    println!(
        "  on disk: {} blocks, {:.1} MB = {:.2}% of the pprof received (goal <= 10%)",
        st.blocks,
        st.block_bytes as f64 / 1e6,
        100.0 * st.block_bytes as f64 / st.block_ingested_bytes.max(1) as f64
    );

    print_disk_breakdown(&s.blocks(), st.block_bytes);
    let day_blocks_bytes = st.block_bytes;

    // 3. Flame graphs over the history.
    // Every case × read, timed on a store opened with `threads` query threads: on the day
    // blocks with the default (the machine's cores, at most 4), then on week blocks with one
    // and the default (docs/adr/0033, 0034), printed side by side.
    drop(s);
    let timed = |o: &Options, threads: usize| -> Result<Vec<(Vec<f64>, usize)>, String> {
        let mut o = o.clone();
        o.query_threads = threads;
        let s = Store::open(o).map_err(e)?.0;
        time_cases(&s, &cases, repeats)
    };
    let days_only = timed(&o, 0)?;
    // The finished weeks into week blocks.
    let mut o = o.clone();
    o.retention_ns = 0;
    let (s, _) = Store::open(o.clone()).map_err(e)?;
    let (c0, w0) = (cpu_seconds(), Instant::now());
    let weeks = s.compact(start + (days + 2) * DAY_NS).map_err(e)?;
    let st = s.stats();
    println!(
        "week blocks: {weeks} weeks compacted in {:.1} CPU-s ({:.1} s wall); on disk {} blocks, \
         {:.1} MB = {:.2}% of the pprof received ({:.2}x the day blocks' bytes)",
        cpu_seconds() - c0,
        w0.elapsed().as_secs_f64(),
        st.blocks,
        st.block_bytes as f64 / 1e6,
        100.0 * st.block_bytes as f64 / st.block_ingested_bytes.max(1) as f64,
        st.block_bytes as f64 / day_blocks_bytes.max(1) as f64,
    );
    print_disk_breakdown(&s.blocks(), st.block_bytes);
    drop(s);
    let one_thread = timed(&o, 1)?;
    let default = timed(&o, 0)?;
    let labels = cases
        .iter()
        .flat_map(|&(name, ..)| READS.iter().map(move |&(how, ..)| (how, name)));
    for ((how, name), (((mut times, nodes), (mut t1, _)), (mut td, _))) in
        labels.zip(default.into_iter().zip(one_thread).zip(days_only))
    {
        let (p95, p95_1, p95_d) = (
            pct(&mut times, 0.95),
            pct(&mut t1, 0.95),
            pct(&mut td, 0.95),
        );
        println!(
            "flame ({how}), {name}: p50 {:.3}s p95 {p95:.3}s ({nodes} nodes; goal p95 < 1s); \
             one thread p95 {p95_1:.3}s = {:.2}x; day blocks p95 {p95_d:.3}s = {:.2}x",
            pct(&mut times, 0.5),
            p95_1 / p95.max(1e-9),
            p95_d / p95.max(1e-9),
        );
    }
    if keep.is_none() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    Ok(())
}

/// How the flame cases are read: as the API's flame endpoint reads, and as the profile
/// download reads.
const READS: [(&str, Agg, Read); 2] = [
    ("API", Agg::Mean, Read::Summed { labels: false }),
    ("exact", Agg::Sum, Read::Exact),
];

/// The flame cases over a history of `[start, end]`: (name, selector, from, to).
fn flame_cases(
    one: &str,
    start: i64,
    end: i64,
    busy: i64,
) -> Vec<(&'static str, String, i64, i64)> {
    let minute = 60 * 1_000_000_000;
    let mut cases = vec![
        ("all services, whole range", "cpu".to_string(), start, end),
        ("one service, whole range", one.to_string(), start, end),
        (
            "all services, unaligned range",
            "cpu".to_string(),
            start + 90 * minute + 7,
            end - 7 * minute,
        ),
    ];
    if busy > 0 {
        let q = r#"cpu{job="svc-99"}"#.to_string();
        cases.push(("busy service, last hour", q.clone(), end + 1 - HOUR_NS, end));
        // "Last hour" as the UI asks for it: not on hour boundaries, so partly raw profiles.
        cases.push((
            "busy service, last hour unaligned",
            q.clone(),
            end + 1 - HOUR_NS - 17 * minute,
            end - 17 * minute,
        ));
        cases.push(("busy service, last day", q, end + 1 - DAY_NS, end));
    }
    cases
}

/// Every case × read on `s`: the seconds of each repeat and the tree's node count.
fn time_cases(
    s: &Store,
    cases: &[(&str, String, i64, i64)],
    repeats: usize,
) -> Result<Vec<(Vec<f64>, usize)>, String> {
    let mut out = Vec::new();
    for (_, q, from, to) in cases {
        let sel = Selector::parse(q).map_err(|e| e.to_string())?;
        for (_, agg, read) in READS {
            out.push(flame_times(s, &sel, *from, *to, agg, read, repeats)?);
        }
    }
    Ok(out)
}

/// `--keep DIR` on a history already built: the flame cases timed on it as it is.
fn time_kept(
    dir: &std::path::Path,
    cases: &[(&str, String, i64, i64)],
    repeats: usize,
    only: &str,
) -> Result<(), String> {
    let mut o = Options::new(dir);
    o.retention_ns = 0;
    let s = Store::open(o).map_err(|e| e.to_string())?.0;
    println!(
        "history kept in {}: {} blocks",
        dir.display(),
        s.stats().blocks
    );
    for (name, q, from, to) in cases {
        let sel = Selector::parse(q).map_err(|e| e.to_string())?;
        for (how, agg, read) in READS {
            if !format!("({how}), {name}").contains(only) {
                continue;
            }
            let (mut times, nodes) = flame_times(&s, &sel, *from, *to, agg, read, repeats)?;
            println!(
                "flame ({how}), {name}: p50 {:.3}s p95 {:.3}s ({nodes} nodes)",
                pct(&mut times, 0.5),
                pct(&mut times, 0.95),
            );
        }
    }
    Ok(())
}
