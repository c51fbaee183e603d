//! Blocks answer exactly what the WAL head answered: real Go profiles are queried from the
//! head, again after they are cut into blocks (with hourly rollups), again after a day's
//! blocks are compacted (daily rollups), and again after a restart.

use std::collections::BTreeMap;
use std::path::PathBuf;

use gocost_pprof::{LabelValue, Profile};
use gocost_store::{DAY_NS, HOUR_NS, Options, Selector, SeriesKey, Store};

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("gocost-blocks-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn testdata(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/profiles")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn key(kind: &str, job: &str, instance: &str) -> SeriesKey {
    SeriesKey::new(
        kind,
        [
            ("job".into(), job.into()),
            ("instance".into(), instance.into()),
        ],
    )
}

/// What a report can see of a profile, independent of ids and sample order.
fn canon(p: &Profile) -> (String, BTreeMap<String, Vec<i64>>) {
    let header = format!(
        "types={:?} period={:?}/{} time={} dur={} file={:?} comments={:?} default={:?}",
        p.sample_type,
        p.period_type,
        p.period,
        p.time_nanos,
        p.duration_nanos,
        p.mapping.first().map(|m| (&m.filename, &m.build_id)),
        p.comments,
        p.default_sample_type,
    );
    let mut samples: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for s in &p.sample {
        let mut k = String::new();
        for &l in &s.location {
            let loc = &p.location[l as usize];
            k.push_str(&format!("{:x}", loc.address));
            for ln in &loc.line {
                let f = &p.function[ln.function as usize];
                k.push_str(&format!("|{}:{}:{}", f.name, f.filename, ln.line));
            }
            k.push(';');
        }
        let mut labels: Vec<String> = s
            .label
            .iter()
            .map(|l| match &l.value {
                LabelValue::Str(v) => format!("{}={v}", l.key),
                LabelValue::Num { value, unit } => format!("{}={value}{unit}", l.key),
            })
            .collect();
        labels.sort();
        k.push_str(&labels.join(","));
        let v = samples.entry(k).or_insert_with(|| vec![0; s.value.len()]);
        for (a, b) in v.iter_mut().zip(&s.value) {
            *a += b;
        }
    }
    samples.retain(|_, v| v.iter().any(|&x| x != 0));
    (header, samples)
}

/// 22:00 the day before `DAY`, so the data crosses midnight.
const BASE: i64 = 20_000 * DAY_NS - 2 * HOUR_NS;
const STEP: i64 = 10 * 60 * 1_000_000_000;

fn fill(s: &Store) {
    let cpu = [testdata("cpu.pb.gz"), testdata("cpu2.pb.gz")];
    let heap = testdata("heap.pb.gz");
    let gor = testdata("goroutine.pb.gz");
    let mutex = testdata("mutex.delta.pb.gz");
    for i in 0..30i64 {
        let t = BASE + i * STEP;
        s.append(&key("cpu", "api", "a:1"), t, &cpu[(i % 2) as usize])
            .unwrap();
        s.append(
            &key("cpu", "api", "b:1"),
            t + 7,
            &cpu[((i + 1) % 2) as usize],
        )
        .unwrap();
        s.append(&key("heap", "api", "a:1"), t + 3, &heap).unwrap();
        s.append(&key("goroutine", "db", "c:1"), t + 5, &gor)
            .unwrap();
        if i % 3 == 0 {
            s.append(&key("mutex", "db", "c:1"), t + 9, &mutex).unwrap();
        }
        s.append_points(&[(
            SeriesKey::new(
                "metric",
                [
                    ("__name__".into(), "go_goroutines".into()),
                    ("job".into(), "api".into()),
                ],
            ),
            t,
            i as f64,
        )])
        .unwrap();
    }
    s.sync().unwrap();
}

fn queries() -> Vec<(&'static str, i64, i64)> {
    let end = BASE + 30 * STEP;
    vec![
        ("cpu", i64::MIN, i64::MAX),
        (
            r#"cpu{instance="a:1"}"#,
            BASE + 25 * 60 * 1_000_000_000,
            end - STEP,
        ),
        ("cpu", 20_000 * DAY_NS, 20_000 * DAY_NS + HOUR_NS - 1),
        (
            "cpu",
            20_000 * DAY_NS - 1,
            20_000 * DAY_NS + 2 * HOUR_NS + 5,
        ),
        ("heap", BASE, end),
        (r#"goroutine{job="db"}"#, i64::MIN, i64::MAX),
        ("mutex", BASE + STEP, end),
        ("cpu", end + 1, end + HOUR_NS),
    ]
}

type Answers = Vec<Option<(String, BTreeMap<String, Vec<i64>>)>>;

fn answers(s: &Store) -> Answers {
    queries()
        .into_iter()
        .map(|(q, from, to)| {
            s.query(&Selector::parse(q).unwrap(), from, to)
                .unwrap()
                .map(|p| canon(&p))
        })
        .collect()
}

fn points(s: &Store) -> Vec<(SeriesKey, Vec<(i64, f64)>)> {
    s.select_points(&Selector::parse("metric").unwrap(), BASE + STEP, i64::MAX)
        .unwrap()
}

#[test]
fn blocks_and_rollups_answer_what_the_head_answered() {
    let d = dir("same");
    let (s, _) = Store::open(Options::new(&d)).unwrap();
    fill(&s);
    let head = answers(&s);
    let head_points = points(&s);
    assert!(head[0].is_some() && head[7].is_none());
    assert_eq!(head_points[0].1.len(), 29);
    let stats = s.stats();
    assert_eq!(stats.blocks, 0);

    // Cut into a level-0 block with hourly rollups.
    assert!(s.flush(true).unwrap());
    let st = s.stats();
    assert_eq!((st.blocks, st.head_profiles), (1, 0));
    assert_eq!(st.profiles, stats.profiles);
    let blocks = s.blocks();
    let cpu_a = blocks[0]
        .series
        .iter()
        .find(|m| m.key == key("cpu", "api", "a:1").to_string())
        .unwrap();
    assert_eq!(cpu_a.profiles, 30);
    assert!(cpu_a.rollups.is_some(), "six profiles an hour make rollups");
    assert_eq!(blocks[0].groups.len(), 2, "symbols are per service");
    for (i, (a, b)) in head.iter().zip(answers(&s)).enumerate() {
        assert!(
            *a == b,
            "query {i} {:?} differs after the flush",
            queries()[i]
        );
    }
    assert_eq!(points(&s), head_points);
    assert_eq!(s.verify().unwrap(), Vec::<String>::new());
    // Storage: symbols once per service, so far smaller than the profiles as received.
    assert!(
        st.block_bytes * 4 < st.block_ingested_bytes,
        "{} block bytes for {} ingested",
        st.block_bytes,
        st.block_ingested_bytes
    );

    // More data after the cut lands in the head; both answer together.
    s.append(
        &key("cpu", "api", "a:1"),
        BASE + 31 * STEP,
        &testdata("cpu.pb.gz"),
    )
    .unwrap();
    s.flush(true).unwrap();
    assert_eq!(s.stats().blocks, 2);

    // Compact finished days: the day before and the day of `DAY` (both over by then).
    let n = s.compact(20_002 * DAY_NS).unwrap();
    assert_eq!(n, 2);
    let blocks = s.blocks();
    assert_eq!(blocks.len(), 2);
    assert!(blocks.iter().all(|b| b.level == 1 && b.replaces.len() <= 2));
    assert_eq!(s.verify().unwrap(), Vec::<String>::new());
    let after: Answers = answers(&s);
    // The extra profile shows up only in ranges that include it.
    for (i, (a, b)) in head.iter().zip(&after).enumerate() {
        let (_, from, to) = queries()[i];
        let extra = queries()[i].0.starts_with("cpu")
            && !queries()[i].0.contains("b:1")
            && from <= BASE + 31 * STEP
            && BASE + 31 * STEP <= to;
        if !extra {
            assert!(
                a == b,
                "query {i} {:?} differs after compaction",
                queries()[i]
            );
        }
    }
    assert_eq!(points(&s), head_points);
    drop(s);
    // `GOCOST_FUZZ_SEEDS=DIR` keeps these real blocks as seeds for `cargo fuzz run block`.
    if let Some(seeds) = std::env::var_os("GOCOST_FUZZ_SEEDS") {
        std::fs::create_dir_all(&seeds).unwrap();
        for e in std::fs::read_dir(d.join("blocks")).unwrap() {
            let p = e.unwrap().path();
            std::fs::copy(&p, PathBuf::from(&seeds).join(p.file_name().unwrap())).unwrap();
        }
    }

    // A restart reads the catalog back and replays nothing twice.
    let (s, r) = Store::open(Options::new(&d)).unwrap();
    assert!(r.corrupt.is_empty(), "{r:?}");
    assert_eq!(r.records, 0, "WAL segments in blocks are gone");
    assert_eq!(answers(&s), after);
    assert_eq!(s.stats().profiles, stats.profiles + 1);
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_crash_between_block_write_and_wal_cleanup_replays_nothing_twice() {
    let d = dir("crash");
    let (s, _) = Store::open(Options::new(&d)).unwrap();
    fill(&s);
    let head = answers(&s);
    // Keep a copy of the WAL as it was before the cut, then put it back after: as if the
    // process died after writing the block but before deleting the segments.
    let wal = d.join("wal");
    let saved: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&wal)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            let b = std::fs::read(&p).unwrap();
            (p, b)
        })
        .collect();
    s.flush(true).unwrap();
    drop(s);
    for (p, b) in saved {
        std::fs::write(p, b).unwrap();
    }
    let (s, r) = Store::open(Options::new(&d)).unwrap();
    assert!(r.corrupt.is_empty(), "{r:?}");
    assert_eq!(answers(&s), head);
    // Same for compaction: an input block that outlived its replacement is dropped.
    let blocks_dir = d.join("blocks");
    let before: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&blocks_dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            let b = std::fs::read(&p).unwrap();
            (p, b)
        })
        .collect();
    s.compact(20_002 * DAY_NS).unwrap();
    drop(s);
    for (p, b) in before {
        std::fs::write(p, b).unwrap();
    }
    let (s, r) = Store::open(Options::new(&d)).unwrap();
    assert!(r.corrupt.is_empty(), "{r:?}");
    assert!(s.blocks().iter().all(|b| b.level == 1));
    assert_eq!(answers(&s), head);
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_damaged_block_is_reported_and_the_rest_still_answers() {
    let d = dir("damaged");
    let (s, _) = Store::open(Options::new(&d)).unwrap();
    s.append(&key("cpu", "api", "a:1"), 1_000, &testdata("cpu.pb.gz"))
        .unwrap();
    s.flush(true).unwrap();
    s.append(&key("cpu", "api", "a:1"), 2_000, &testdata("cpu2.pb.gz"))
        .unwrap();
    s.flush(true).unwrap();
    drop(s);
    let mut files: Vec<PathBuf> = std::fs::read_dir(d.join("blocks"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    // Flip a byte in a section of the first block: the checksum catches it on read.
    let mut b = std::fs::read(&files[0]).unwrap();
    b[20] ^= 0xff;
    std::fs::write(&files[0], &b).unwrap();
    // Cut the second block's footer off: it cannot be opened at all.
    let b = std::fs::read(&files[1]).unwrap();
    std::fs::write(&files[1], &b[..b.len() - 3]).unwrap();
    let (s, r) = Store::open(Options::new(&d)).unwrap();
    assert_eq!(r.corrupt.len(), 1, "{r:?}");
    assert!(r.corrupt[0].contains("footer"), "{r:?}");
    let problems = s.verify().unwrap();
    assert_eq!(problems.len(), 1);
    assert!(problems[0].contains("checksum"), "{problems:?}");
    let e = s
        .query(&Selector::parse("cpu").unwrap(), 0, 10_000)
        .unwrap_err();
    assert!(e.to_string().contains("checksum"), "{e}");
    std::fs::remove_dir_all(&d).unwrap();
}
