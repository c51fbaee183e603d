//! The store keeps what it acknowledged across restarts, cuts torn writes, and answers
//! selector queries with pprof-merged profiles.

use std::path::PathBuf;

use gocost_pprof::{Function, Line, Location, Profile, Sample, ValueType};
use gocost_store::{Options, Selector, SeriesKey, Store};

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("gocost-store-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn profile(n: i64, func: &str) -> Vec<u8> {
    let p = Profile {
        sample_type: vec![ValueType::new("goroutine", "count")],
        period_type: ValueType::new("goroutine", "count"),
        period: 1,
        function: vec![Function {
            id: 1,
            name: func.into(),
            system_name: func.into(),
            ..Default::default()
        }],
        location: vec![Location {
            id: 1,
            line: vec![Line {
                function: 0,
                line: 1,
                column: 0,
            }],
            ..Default::default()
        }],
        sample: vec![Sample {
            location: vec![0],
            value: vec![n],
            label: vec![],
        }],
        time_nanos: 1,
        ..Default::default()
    };
    gocost_pprof::encode(&p)
}

fn key(job: &str, instance: &str) -> SeriesKey {
    SeriesKey::new(
        "goroutine",
        [
            ("job".into(), job.into()),
            ("instance".into(), instance.into()),
        ],
    )
}

fn total(p: &Profile) -> i64 {
    p.sample.iter().map(|s| s.value[0]).sum()
}

#[test]
fn survives_restart_and_merges_by_selector() {
    let d = dir("restart");
    {
        let (s, r) = Store::open(Options::new(&d)).unwrap();
        assert_eq!(r.records, 0);
        for t in 0..10 {
            s.append(&key("api", "a:1"), t * 10, &profile(1, "main.a"))
                .unwrap();
            s.append(&key("api", "b:1"), t * 10, &profile(2, "main.b"))
                .unwrap();
            s.append(&key("db", "c:1"), t * 10, &profile(5, "main.c"))
                .unwrap();
        }
        s.sync().unwrap();
    }
    let (s, r) = Store::open(Options::new(&d)).unwrap();
    assert_eq!(r.records, 30);
    assert!(r.corrupt.is_empty() && r.truncated_bytes == 0, "{r:?}");
    let q = |sel: &str, from, to| {
        s.query(&Selector::parse(sel).unwrap(), from, to)
            .unwrap()
            .map(|p| total(&p))
    };
    assert_eq!(q(r#"goroutine{job="api"}"#, 0, 1000), Some(30));
    assert_eq!(
        q(r#"goroutine{job="api",instance="a:1"}"#, 0, 1000),
        Some(10)
    );
    assert_eq!(
        q(r#"goroutine{job=~"a.*|d.*"}"#, 20, 40),
        Some(3 * (1 + 2 + 5))
    );
    assert_eq!(q("goroutine", 0, 1000), Some(80));
    assert_eq!(q("cpu", 0, 1000), None);
    assert_eq!(q("goroutine", 1000, 2000), None);
    assert_eq!(
        s.label_values("job"),
        vec!["api".to_string(), "db".to_string()]
    );
    assert_eq!(
        s.label_names(),
        vec!["instance".to_string(), "job".to_string()]
    );
    assert_eq!(s.series().len(), 3);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn torn_tail_is_cut_and_earlier_records_survive() {
    let d = dir("torn");
    {
        let (s, _) = Store::open(Options::new(&d)).unwrap();
        for t in 0..5 {
            s.append(&key("api", "a:1"), t, &profile(1, "main.a"))
                .unwrap();
        }
        s.sync().unwrap();
    }
    // Simulate a crash mid-write: chop the last segment in the middle of its last record.
    let wal = d.join("wal");
    let mut segs: Vec<PathBuf> = std::fs::read_dir(&wal)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    segs.sort();
    let seg = segs
        .iter()
        .rev()
        .find(|p| std::fs::metadata(p).unwrap().len() > 8)
        .unwrap()
        .clone();
    let len = std::fs::metadata(&seg).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&seg)
        .unwrap()
        .set_len(len - 7)
        .unwrap();
    let (s, r) = Store::open(Options::new(&d)).unwrap();
    assert_eq!(r.records, 4);
    assert!(r.truncated_bytes > 0, "{r:?}");
    assert_eq!(
        total(
            &s.query(&Selector::parse("goroutine").unwrap(), 0, 100)
                .unwrap()
                .unwrap()
        ),
        4
    );
    // Appending after recovery works and survives another restart.
    s.append(&key("api", "a:1"), 50, &profile(1, "main.a"))
        .unwrap();
    s.sync().unwrap();
    drop(s);
    let (s, r) = Store::open(Options::new(&d)).unwrap();
    assert_eq!(r.records, 5);
    assert_eq!(
        total(
            &s.query(&Selector::parse("goroutine").unwrap(), 0, 100)
                .unwrap()
                .unwrap()
        ),
        5
    );
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn corrupted_record_is_reported_not_fatal() {
    let d = dir("crc");
    {
        let (s, _) = Store::open(Options::new(&d)).unwrap();
        for t in 0..3 {
            s.append(&key("api", "a:1"), t, &profile(1, "main.a"))
                .unwrap();
        }
        s.sync().unwrap();
    }
    {
        // A second run so that the damaged segment is not the last one.
        let (s, _) = Store::open(Options::new(&d)).unwrap();
        s.append(&key("api", "a:1"), 10, &profile(7, "main.a"))
            .unwrap();
        s.sync().unwrap();
    }
    let mut segs: Vec<PathBuf> = std::fs::read_dir(d.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    segs.sort();
    let first = &segs[0];
    let mut bytes = std::fs::read(first).unwrap();
    let n = bytes.len();
    bytes[n - 3] ^= 0xff; // flip a byte inside the last record's payload
    std::fs::write(first, &bytes).unwrap();
    let (s, r) = Store::open(Options::new(&d)).unwrap();
    assert_eq!(r.corrupt.len(), 1, "{r:?}");
    assert!(r.corrupt[0].contains("checksum mismatch"), "{r:?}");
    assert_eq!(
        total(
            &s.query(&Selector::parse("goroutine").unwrap(), 0, 100)
                .unwrap()
                .unwrap()
        ),
        2 + 7
    );
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn bad_profiles_are_refused_and_retention_drops_old_data() {
    let d = dir("ret");
    let mut o = Options::new(&d);
    o.retention_ns = 100;
    let (s, _) = Store::open(o).unwrap();
    assert!(s.append(&key("api", "a:1"), 1, b"not a profile").is_err());
    s.append(&key("api", "a:1"), 10, &profile(1, "main.a"))
        .unwrap();
    s.append(&key("api", "a:1"), 500, &profile(2, "main.a"))
        .unwrap();
    s.apply_retention(550).unwrap();
    let sel = Selector::parse("goroutine").unwrap();
    assert_eq!(total(&s.query(&sel, 0, 1000).unwrap().unwrap()), 2);
    assert_eq!(s.stats().profiles, 1);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn metric_points_survive_restart_and_retention() {
    let d = dir("points");
    let k = |name: &str| {
        SeriesKey::new(
            "metric",
            [
                ("__name__".to_string(), name.to_string()),
                ("job".into(), "api".into()),
            ],
        )
    };
    {
        let (s, _) = Store::open(Options::new(&d)).unwrap();
        s.append_points(&[
            (k("go_gc_pause_seconds"), 20, 0.002),
            (k("go_gc_pause_seconds"), 10, 0.001),
        ])
        .unwrap();
        s.append_points(&[(k("go_memstats_heap_alloc_bytes"), 15, 1e6)])
            .unwrap();
        s.sync().unwrap();
    }
    let mut o = Options::new(&d);
    o.retention_ns = 100;
    let (s, r) = Store::open(o).unwrap();
    assert!(r.corrupt.is_empty(), "{r:?}");
    let sel = Selector::parse(r#"metric{__name__="go_gc_pause_seconds"}"#).unwrap();
    let got = s.select_points(&sel, 0, 100).unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].1,
        vec![(10, 0.001), (20, 0.002)],
        "points come back in time order"
    );
    assert_eq!(
        s.select_points(&Selector::parse("metric").unwrap(), 0, 100)
            .unwrap()
            .len(),
        2
    );
    // Metric series never leak into profile queries.
    assert!(
        s.query(&Selector::parse("metric").unwrap(), 0, 100)
            .unwrap()
            .is_none()
    );
    s.apply_retention(115).unwrap();
    assert!(
        s.select_points(&sel, 0, 1000).unwrap().len() == 1
            && s.select_points(&sel, 0, 1000).unwrap()[0].1 == vec![(20, 0.002)]
    );
    let _ = std::fs::remove_dir_all(&d);
}

/// The store's set of kinds (what tells a query's unknown kind from an empty one): from the
/// head, from blocks after a restart, and without the kinds retention dropped.
#[test]
fn the_store_knows_its_kinds() {
    let d = dir("kinds");
    let mut o = Options::new(&d);
    o.retention_ns = 100;
    let wall = SeriesKey::new("wall", [("job".into(), "node".into())]);
    {
        let (s, _) = Store::open(o.clone()).unwrap();
        assert!(s.kinds().is_empty());
        s.append(&key("api", "a:1"), 10, &profile(1, "main.a"))
            .unwrap();
        s.append(&wall, 10, &profile(1, "main.a")).unwrap();
        assert_eq!(
            s.kinds().into_iter().collect::<Vec<_>>(),
            ["goroutine", "wall"]
        );
        assert!(s.flush(true).unwrap());
    }
    let (s, _) = Store::open(o).unwrap();
    assert_eq!(s.stats().blocks, 1);
    assert_eq!(
        s.kinds().into_iter().collect::<Vec<_>>(),
        ["goroutine", "wall"]
    );
    s.append(&key("api", "a:1"), 500, &profile(2, "main.a"))
        .unwrap();
    s.apply_retention(550).unwrap();
    assert_eq!(s.kinds().into_iter().collect::<Vec<_>>(), ["goroutine"]);
    let _ = std::fs::remove_dir_all(&d);
}

/// `head_max_bytes` bounds the head's memory: past it a flush cuts the current WAL segment
/// into a block however young it is; without a bound (0) a young segment stays in the head.
/// Either way the profiles answer the same.
#[test]
fn the_head_is_cut_early_past_head_max() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;
    let mut answers = Vec::new();
    for (name, max) in [("unbounded", 0u64), ("bounded", 1u64)] {
        let d = dir(&format!("headmax-{name}"));
        let mut o = Options::new(&d);
        o.head_max_bytes = max;
        let (s, _) = Store::open(o).unwrap();
        let mut sizes = vec![s.stats().head_bytes];
        for i in 0..20 {
            s.append(
                &key("api", "a:1"),
                now - (20 - i) * 1_000_000_000,
                &profile(i + 1, "main.work"),
            )
            .unwrap();
            sizes.push(s.stats().head_bytes);
        }
        assert!(sizes.windows(2).all(|w| w[0] <= w[1]), "{name}: {sizes:?}");
        assert!(
            sizes[20] > sizes[0],
            "{name}: the head's size counts its profiles"
        );
        s.sync().unwrap();
        let cut = s.flush(false).unwrap();
        let st = s.stats();
        if max == 0 {
            assert!(!cut, "a young segment stays without a bound");
            assert_eq!(st.head_profiles, 20);
        } else {
            assert!(cut, "past head_max the young segment is cut");
            assert_eq!(st.head_profiles, 0);
            assert_eq!(st.blocks, 1);
            assert!(
                st.head_bytes < sizes[20],
                "{} < {}",
                st.head_bytes,
                sizes[20]
            );
        }
        let sel = Selector::parse("{job=\"api\"}").unwrap();
        let p = s.query(&sel, 0, i64::MAX).unwrap().unwrap();
        answers.push(total(&p));
        drop(s);
        let _ = std::fs::remove_dir_all(&d);
    }
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[0], (1..=20).sum::<i64>());
}
