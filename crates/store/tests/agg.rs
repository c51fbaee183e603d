//! Snapshot kinds over a range: the mean of each series' snapshots (series add up), the
//! latest, or the plain sum — the same answers from the head, from level-0 blocks with
//! hourly rollups and from compacted blocks with daily rollups.

use std::path::PathBuf;

use gocost_pprof::{Function, Line, Location, Profile, Sample, ValueType};
use gocost_store::{Agg, DAY_NS, HOUR_NS, Options, Selector, SeriesKey, Store};

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("gocost-agg-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// A profile of `types` with one sample per function, valued `values[i]` per type.
fn profile(t: i64, types: &[&str], samples: &[(&str, &[i64])]) -> Profile {
    let mut p = Profile {
        sample_type: types
            .iter()
            .map(|t| {
                ValueType::new(
                    *t,
                    if t.ends_with("space") {
                        "bytes"
                    } else {
                        "count"
                    },
                )
            })
            .collect(),
        period_type: ValueType::new(types[0], "count"),
        period: 1,
        time_nanos: t,
        ..Default::default()
    };
    for (i, (name, values)) in samples.iter().enumerate() {
        p.function.push(Function {
            id: i as u64 + 1,
            name: (*name).into(),
            system_name: (*name).into(),
            ..Default::default()
        });
        p.location.push(Location {
            id: i as u64 + 1,
            line: vec![Line {
                function: i as u32,
                line: 1,
                column: 0,
            }],
            ..Default::default()
        });
        p.sample.push(Sample {
            location: vec![i as u32],
            value: values.to_vec(),
            label: vec![],
        });
    }
    p
}

fn key(kind: &str, instance: &str) -> SeriesKey {
    SeriesKey::new(
        kind,
        [
            ("job".into(), "api".into()),
            ("instance".into(), instance.into()),
        ],
    )
}

/// 21:00 the day before day 20,000: 30 profiles 10 minutes apart cross midnight.
const BASE: i64 = 20_000 * DAY_NS - 3 * HOUR_NS;
const STEP: i64 = 10 * 60 * 1_000_000_000;
const N: i64 = 30;

/// Instance a: 100 + i % 7 goroutines in main.serve, 3 in main.tick. Instance b (every
/// other step): 40 in main.serve. Heap of a: 5 MiB + i KiB in use, 1 MiB allocated a scrape.
fn fill(s: &Store) {
    for i in 0..N {
        let t = BASE + i * STEP;
        s.append_profile(
            &key("goroutine", "a"),
            t,
            &profile(
                t,
                &["goroutine"],
                &[("main.serve", &[100 + i % 7]), ("main.tick", &[3])],
            ),
            None,
        )
        .unwrap();
        if i % 2 == 0 {
            s.append_profile(
                &key("goroutine", "b"),
                t + 1,
                &profile(t, &["goroutine"], &[("main.serve", &[40])]),
                None,
            )
            .unwrap();
        }
        s.append_profile(
            &key("heap", "a"),
            t + 2,
            &profile(
                t,
                &["alloc_space", "inuse_space"],
                &[("main.keep", &[1 << 20, (5 << 20) + (i << 10)])],
            ),
            None,
        )
        .unwrap();
    }
    s.sync().unwrap();
}

/// Value per function and sample type.
fn values(p: Option<Profile>) -> Vec<(String, Vec<i64>)> {
    let Some(p) = p else { return Vec::new() };
    let mut v: Vec<(String, Vec<i64>)> = p
        .sample
        .iter()
        .map(|s| {
            let f = p.location[s.location[0] as usize].line[0].function;
            (p.function[f as usize].name.to_string(), s.value.clone())
        })
        .collect();
    v.sort();
    v
}

fn mean(xs: impl Iterator<Item = i64>) -> i64 {
    let v: Vec<i64> = xs.collect();
    (v.iter().sum::<i64>() as f64 / v.len() as f64).round() as i64
}

/// What each answer must be, worked out from `fill`.
fn check(s: &Store, when: &str) {
    let q = |sel: &str, from: i64, to: i64, agg: Agg| {
        values(
            s.query_agg(&Selector::parse(sel).unwrap(), from, to, agg)
                .unwrap(),
        )
    };
    let all = (i64::MIN, i64::MAX);
    let a_serve = mean((0..N).map(|i| 100 + i % 7));
    assert_eq!(
        q("goroutine", all.0, all.1, Agg::Mean),
        vec![
            ("main.serve".into(), vec![a_serve + 40]),
            ("main.tick".into(), vec![3]),
        ],
        "{when}: mean per instance, instances add up"
    );
    // Up to the 20th profile (index 19): b's last is index 18.
    let to = BASE + 19 * STEP + 5;
    assert_eq!(
        q("goroutine", all.0, to, Agg::Latest),
        vec![
            ("main.serve".into(), vec![100 + 19 % 7 + 40]),
            ("main.tick".into(), vec![3]),
        ],
        "{when}: latest of each instance"
    );
    let sum_serve: i64 = (0..N).map(|i| 100 + i % 7).sum::<i64>() + 40 * ((N + 1) / 2);
    assert_eq!(
        q("goroutine", all.0, all.1, Agg::Sum),
        vec![
            ("main.serve".into(), vec![sum_serve]),
            ("main.tick".into(), vec![3 * N]),
        ],
        "{when}: sum"
    );
    // A range inside one hour of a's: the mean of just those snapshots.
    let (from, to) = (BASE + 6 * STEP, BASE + 11 * STEP + 5);
    assert_eq!(
        q(r#"goroutine{instance="a"}"#, from, to, Agg::Mean),
        vec![
            (
                "main.serve".into(),
                vec![mean((6..12).map(|i| 100 + i % 7))]
            ),
            ("main.tick".into(), vec![3]),
        ],
        "{when}: mean over part of the range"
    );
    // Heap: in use averaged, allocations added up.
    assert_eq!(
        q("heap", all.0, all.1, Agg::Mean),
        vec![(
            "main.keep".into(),
            vec![N << 20, mean((0..N).map(|i| (5 << 20) + (i << 10)))]
        )],
        "{when}: heap"
    );
    assert_eq!(
        q("goroutine", BASE + N * STEP, i64::MAX, Agg::Latest),
        vec![]
    );
}

#[test]
fn snapshots_are_averaged_per_series_from_head_blocks_and_rollups() {
    let d = dir("mean");
    let (s, _) = Store::open(Options::new(&d)).unwrap();
    fill(&s);
    check(&s, "head");
    assert!(s.flush(true).unwrap());
    assert!(
        s.blocks()[0]
            .series
            .iter()
            .all(|m| m.hour_rollups.is_some()),
        "hourly rollups"
    );
    check(&s, "level-0 block");
    assert_eq!(s.compact(20_002 * DAY_NS).unwrap(), 1);
    assert!(s.blocks().iter().all(|b| b.level == 1));
    check(&s, "compacted blocks");
    drop(s);
    let _ = std::fs::remove_dir_all(&d);
}
