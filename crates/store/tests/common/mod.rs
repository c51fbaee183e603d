//! Shared by the block tests: real Go profiles written over two days, queries over ranges
//! that cut hours and days, and a form of query answers that reports can see.

#![allow(dead_code)]

pub mod garage;

use std::collections::BTreeMap;
use std::path::PathBuf;

use gocost_pprof::{LabelValue, Profile};
use gocost_store::{Agg, DAY_NS, HOUR_NS, Read, Selector, SeriesKey, Store};

pub fn testdata(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/profiles")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

pub fn key(kind: &str, job: &str, instance: &str) -> SeriesKey {
    SeriesKey::new(
        kind,
        [
            ("job".into(), job.into()),
            ("instance".into(), instance.into()),
        ],
    )
}

/// What a report can see of a profile, independent of ids and sample order.
pub fn canon(p: &Profile) -> (String, BTreeMap<String, Vec<i64>>) {
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
pub const BASE: i64 = 20_000 * DAY_NS - 2 * HOUR_NS;
pub const STEP: i64 = 10 * 60 * 1_000_000_000;

/// The profiles [`fill`] appends: (series, time, bytes as received).
pub fn appended() -> Vec<(SeriesKey, i64, Vec<u8>)> {
    let cpu = [testdata("cpu.pb.gz"), testdata("cpu2.pb.gz")];
    let heap = testdata("heap.pb.gz");
    let gor = testdata("goroutine.pb.gz");
    let mutex = testdata("mutex.delta.pb.gz");
    let mut out = Vec::new();
    for i in 0..30i64 {
        let t = BASE + i * STEP;
        out.push((key("cpu", "api", "a:1"), t, cpu[(i % 2) as usize].clone()));
        out.push((
            key("cpu", "api", "b:1"),
            t + 7,
            cpu[((i + 1) % 2) as usize].clone(),
        ));
        out.push((key("heap", "api", "a:1"), t + 3, heap.clone()));
        out.push((key("goroutine", "db", "c:1"), t + 5, gor.clone()));
        if i % 3 == 0 {
            out.push((key("mutex", "db", "c:1"), t + 9, mutex.clone()));
        }
    }
    out
}

pub fn fill(s: &Store) {
    for (k, t, b) in appended() {
        s.append(&k, t, &b).unwrap();
    }
    for i in 0..30i64 {
        s.append_points(&[(
            SeriesKey::new(
                "metric",
                [
                    ("__name__".into(), "go_goroutines".into()),
                    ("job".into(), "api".into()),
                ],
            ),
            BASE + i * STEP,
            i as f64,
        )])
        .unwrap();
    }
    s.sync().unwrap();
}

/// The answers to [`queries`] computed without the store: the appended profiles in each
/// range, decoded (their sample labels dropped unless `labels`) and merged with pprof's
/// rules.
pub fn expected_answers(labels: bool) -> Answers {
    let all = appended();
    queries()
        .into_iter()
        .map(|(q, from, to)| {
            let sel = Selector::parse(q).unwrap();
            let mut c = gocost_pprof::Combiner::new();
            for (k, t, b) in &all {
                if sel.matches(k) && (from..=to).contains(t) {
                    let mut p = gocost_pprof::decode(b).unwrap();
                    if !labels {
                        p.sample.iter_mut().for_each(|s| s.label.clear());
                    }
                    c.push(p).unwrap();
                }
            }
            c.finish().map(|p| canon(&p))
        })
        .collect()
}

pub fn queries() -> Vec<(&'static str, i64, i64)> {
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

pub type Answers = Vec<Option<(String, BTreeMap<String, Vec<i64>>)>>;

/// The answers to [`queries`], read [`Read::Exact`]ly.
pub fn answers(s: &Store) -> Answers {
    answers_as(s, Read::Exact)
}

/// [`answers`], the store reading as `read` says.
pub fn answers_as(s: &Store, read: Read) -> Answers {
    queries()
        .into_iter()
        .map(|(q, from, to)| {
            s.query_agg_as(&Selector::parse(q).unwrap(), from, to, Agg::Sum, read)
                .unwrap()
                .map(|p| canon(&p))
        })
        .collect()
}

pub fn points(s: &Store) -> Vec<(SeriesKey, Vec<(i64, f64)>)> {
    s.select_points(&Selector::parse("metric").unwrap(), BASE + STEP, i64::MAX)
        .unwrap()
}
