//! Blocks answer exactly what the WAL head answered: real Go profiles are queried from the
//! head, again after they are cut into blocks (with hourly rollups), again after a day's
//! blocks are compacted (daily rollups), and again after a restart.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use common::*;
use gocost_store::{Agg, DAY_NS, FINE_NS, HOUR_NS, Options, Read, Selector, Store, WEEK_NS};

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("gocost-blocks-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// CPU nanoseconds per bucket of `bucket` width from `origin`, and how many profiles `f` saw
/// (through `for_each_total` if `totals`, else `for_each_profile`).
fn timeline_as(
    s: &Store,
    origin: i64,
    step: Option<i64>,
    bucket: i64,
    totals: bool,
) -> (BTreeMap<i64, i64>, usize) {
    let mut m = BTreeMap::new();
    let mut visits = 0;
    let sel = Selector::parse("cpu").unwrap();
    let mut f = |_: &gocost_store::SeriesKey, t: i64, _: u64, p: gocost_pprof::Profile| {
        visits += 1;
        let i = p.sample_index_by_name("cpu").unwrap();
        *m.entry(origin + (t - origin).div_euclid(bucket) * bucket)
            .or_default() += p.sample.iter().map(|x| x.value[i]).sum::<i64>();
        Ok(())
    };
    if totals {
        s.for_each_total(&sel, origin, i64::MAX, step, &mut f)
            .unwrap();
    } else {
        s.for_each_profile(&sel, origin, i64::MAX, step, false, &mut f)
            .unwrap();
    }
    (m, visits)
}

/// How many profiles — stored ones or rollups — a visit of `q` over `[from, to]` that takes
/// rollups as wide as the range reads.
fn profiles_read(s: &Store, q: &str, from: i64, to: i64) -> usize {
    let mut n = 0;
    let sel = Selector::parse(q).unwrap();
    s.for_each_profile(
        &sel,
        from,
        to,
        Some(to - from + 1),
        false,
        &mut |_, _, _, _| {
            n += 1;
            Ok(())
        },
    )
    .unwrap();
    n
}

fn timeline(s: &Store, origin: i64, step: Option<i64>, bucket: i64) -> (BTreeMap<i64, i64>, usize) {
    let with = timeline_as(s, origin, step, bucket, false);
    // Totals read without rebuilding stacks are the same, from as many profiles.
    assert_eq!(timeline_as(s, origin, step, bucket, true), with);
    with
}

/// The store sums a series' profiles in stack space (against the symbols of their block
/// or WAL segment) before it rebuilds a profile: the answers must be what merging the
/// profiles as received gives, from the head (encoded on append, read back from the WAL,
/// and both mixed) and from blocks.
#[test]
fn answers_are_the_merge_of_the_profiles_as_received() {
    let want = [expected_answers(false), expected_answers(true)];
    assert!(want[1].iter().filter(|a| a.is_some()).count() >= 6);
    assert_ne!(want[0], want[1], "the test profiles have sample labels");
    let check = |s: &Store, at: &str| {
        for read in [
            Read::Exact,
            Read::Summed { labels: false },
            Read::Summed { labels: true },
        ] {
            let labels = read != Read::Summed { labels: false };
            let got = answers_as(s, read);
            for (i, (a, b)) in got.iter().zip(&want[usize::from(labels)]).enumerate() {
                assert!(a == b, "{at}, {read:?}: query {i} {:?}", queries()[i]);
            }
        }
    };
    for cache in [64 << 20, 40_000, 0] {
        let d = dir(&format!("oracle-{cache}"));
        let mut o = Options::new(&d);
        o.head_cache_bytes = cache;
        let (s, _) = Store::open(o).unwrap();
        fill(&s);
        check(&s, &format!("head (cache {cache})"));
        s.flush(true).unwrap();
        check(&s, &format!("blocks (cache {cache})"));
        drop(s);
        std::fs::remove_dir_all(&d).unwrap();
    }
}

/// Ten-minute rollups (docs/adr/0026): a busy series (a profile a minute, over three hours
/// that cross midnight, one of them late) answers ranges cut mid-bucket, on ten-minute and
/// hour boundaries and across hours exactly as merging its profiles as received does — from
/// the head (its sums of ten minutes made, then reused, then made again after a late
/// profile), from level-0 blocks and from the compacted day blocks —, and a range that does
/// not start or end on an hour reads ten-minute rollups instead of most of its profiles
/// (and, from a raw section split by hour, only the hours it needs).
#[test]
fn ten_minute_rollups_answer_the_merge_of_the_profiles() {
    type Appended = Vec<(gocost_store::SeriesKey, i64, Vec<u8>)>;
    const MIN: i64 = 60_000_000_000;
    let d = dir("fine");
    let (s, _) = Store::open(Options::new(&d)).unwrap();
    let cpu = [testdata("cpu.pb.gz"), testdata("cpu2.pb.gz")];
    let k = key("cpu", "api", "a:1");
    let quiet = key("cpu", "api", "q:1");
    let add = |s: &Store, appended: &mut Appended, minutes: std::ops::Range<i64>| {
        for i in minutes {
            let t = BASE + i * MIN + 13;
            let b = &cpu[(i % 2) as usize];
            s.append(&k, t, b).unwrap();
            appended.push((k.clone(), t, b.clone()));
            // A series scraped every five minutes: too few profiles for ten-minute rollups.
            if i % 5 == 0 {
                s.append(&quiet, t + 1, &cpu[0]).unwrap();
                appended.push((quiet.clone(), t + 1, cpu[0].clone()));
            }
        }
        s.sync().unwrap();
    };
    let ranges = [
        (BASE + 17 * MIN + 5, BASE + 2 * HOUR_NS + 43 * MIN),
        (BASE + 10 * MIN, BASE + 50 * MIN - 1),
        (BASE + 25 * MIN, BASE + 35 * MIN),
        (BASE + HOUR_NS - 1, BASE + 2 * HOUR_NS + 1),
        (BASE + 59 * MIN, BASE + 2 * HOUR_NS + 11 * MIN),
        (i64::MIN, i64::MAX),
    ];
    let want = |sel: &Selector, from: i64, to: i64, labels: bool, appended: &Appended| {
        let mut c = gocost_pprof::Combiner::new();
        for (key, t, b) in appended {
            if sel.matches(key) && (from..=to).contains(t) {
                let mut p = gocost_pprof::decode(b).unwrap();
                if !labels {
                    p.sample.iter_mut().for_each(|s| s.label.clear());
                }
                c.push(p).unwrap();
            }
        }
        c.finish().map(|p| canon(&p))
    };
    let check = |s: &Store, at: &str, appended: &Appended| {
        for q in ["cpu", r#"cpu{instance="a:1"}"#, r#"cpu{instance="q:1"}"#] {
            let sel = Selector::parse(q).unwrap();
            for &(from, to) in &ranges {
                for read in [
                    Read::Exact,
                    Read::Summed { labels: false },
                    Read::Summed { labels: true },
                ] {
                    let labels = read != Read::Summed { labels: false };
                    let got = s
                        .query_agg_as(&sel, from, to, Agg::Sum, read)
                        .unwrap()
                        .map(|p| canon(&p));
                    assert!(
                        got == want(&sel, from, to, labels, appended),
                        "{at}: {q} [{from}, {to}] {read:?}"
                    );
                }
            }
        }
    };
    // How many profiles (stored or rollups) a query of [from, to] reads for the busy series.
    let visits =
        |s: &Store, from: i64, to: i64| profiles_read(s, r#"cpu{instance="a:1"}"#, from, to);
    let fine_of = |s: &Store, k: &gocost_store::SeriesKey| {
        s.blocks()
            .iter()
            .flat_map(|b| b.series.iter())
            .filter(|m| m.key == k.to_string() && m.fine_rollups.is_some())
            .count()
    };

    let mut appended = Appended::new();
    add(&s, &mut appended, 0..120);
    // Each query twice: the head's sums are made, then taken from its cache.
    check(&s, "head", &appended);
    check(&s, "head, again", &appended);
    // A late profile inside ten minutes already summed.
    let late = (k.clone(), BASE + 30 * MIN + 20, cpu[1].clone());
    s.append(&late.0, late.1, &late.2).unwrap();
    appended.push(late);
    check(&s, "head, after a late profile", &appended);
    assert!(s.flush(true).unwrap());
    add(&s, &mut appended, 120..180);
    assert!(s.flush(true).unwrap());
    assert_eq!(s.stats().blocks, 2);
    assert_eq!(
        fine_of(&s, &k),
        2,
        "ten profiles per ten minutes make rollups"
    );
    assert_eq!(fine_of(&s, &quiet), 0);
    check(&s, "level-0 blocks", &appended);
    // 22:17..22:19 raw, 22:20..22:59 four rollups, the hour 23:00, 0:00..0:39 four rollups,
    // 0:40..0:42 raw.
    let (from, to) = ranges[0];
    assert_eq!(visits(&s, from, to), 3 + 4 + 1 + 4 + 3);
    assert_eq!(visits(&s, BASE + 10 * MIN, BASE + 50 * MIN - 1), 4);

    assert_eq!(s.compact(20_002 * DAY_NS).unwrap(), 2);
    assert!(
        s.blocks()
            .iter()
            .all(|b| b.level == 1 && b.steps.contains(&FINE_NS))
    );
    assert_eq!(s.verify().unwrap(), Vec::<String>::new());
    // The first day's raw section of the busy series (two hours) is split by hour; the
    // second day's (one hour) is not.
    let split = s
        .blocks()
        .iter()
        .flat_map(|b| b.series.iter())
        .filter(|m| m.key == k.to_string() && m.raw_hours.is_some())
        .count();
    assert_eq!(split, 1);
    check(&s, "compacted", &appended);
    assert_eq!(visits(&s, from, to), 3 + 4 + 1 + 4 + 3);
    drop(s);
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn blocks_and_rollups_answer_what_the_head_answered() {
    let d = dir("same");
    let (s, _) = Store::open(Options::new(&d)).unwrap();
    fill(&s);
    let head = answers(&s);
    let head_points = points(&s);
    assert!(head[0].is_some() && head[7].is_none());
    timeline(&s, BASE, Some(HOUR_NS), HOUR_NS);
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
    assert!(
        cpu_a.hour_rollups.is_some(),
        "six profiles an hour make rollups"
    );
    assert!(cpu_a.rollups.is_none(), "a cut holds no whole day");
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
    // Totals over time (the timeline) are the same from rollups as from every profile, and
    // rollups mean far fewer profiles to decode.
    for (origin, step) in [
        (BASE, HOUR_NS),
        (BASE + 7 * 60_000_000_000, 2 * HOUR_NS),
        (0, DAY_NS),
    ] {
        let with = timeline(&s, origin, Some(step), step);
        let without = timeline(&s, origin, None, step);
        assert_eq!(with.0, without.0, "origin {origin} step {step}");
        assert!(
            with.1 < without.1,
            "rollups used: {} vs {} visits",
            with.1,
            without.1
        );
    }
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

/// Every file of a directory with its bytes, to put back later.
/// A finished week's day blocks become one level-2 block (docs/adr/0034) whose rollups —
/// the week's, the days', the hours' — answer the merge of the profiles as received over
/// any range, and read far fewer profiles than the days did; late data for a compacted week
/// becomes a day block, then joins the week again.
#[test]
fn week_blocks_answer_the_merge_of_the_profiles() {
    type Appended = Vec<(gocost_store::SeriesKey, i64, Vec<u8>)>;
    const MIN: i64 = 60_000_000_000;
    let d = dir("weeks");
    // Kept for a week: no week blocks (they could outlive retention by a week).
    let mut short = Options::new(&d);
    short.retention_ns = 7 * DAY_NS;
    let (s, _) = Store::open(short).unwrap();
    let cpu = [testdata("cpu.pb.gz"), testdata("cpu2.pb.gz")];
    let keys = [key("cpu", "api", "a:1"), key("cpu", "web", "b:1")];
    // Weeks run from the epoch (a Thursday): days 20003..=20005 end week 2857, 20006 starts
    // the next one.
    let week = 2857 * WEEK_NS;
    assert_eq!(week + WEEK_NS, 20_006 * DAY_NS);
    let first = 20_003 * DAY_NS;
    let mut appended = Appended::new();
    for i in 0..4 * 48 {
        for (j, k) in keys.iter().enumerate() {
            // Every 30 minutes; the web service skips every third scrape.
            if j == 1 && i % 3 == 0 {
                continue;
            }
            let t = first + i * 30 * MIN + 13 + j as i64;
            let b = &cpu[((i + j as i64) % 2) as usize];
            s.append(k, t, b).unwrap();
            appended.push((k.clone(), t, b.clone()));
        }
        if i % 12 == 11 {
            s.flush(true).unwrap();
        }
    }
    s.flush(true).unwrap();
    let ranges = [
        (i64::MIN, i64::MAX),
        (week, week + WEEK_NS - 1),
        (first, week + WEEK_NS - 1),
        (first + DAY_NS, week + WEEK_NS + 5 * HOUR_NS - 1),
        (
            first + 5 * HOUR_NS + 7,
            week + WEEK_NS + 3 * HOUR_NS + 17 * MIN,
        ),
        (
            first + DAY_NS + 2 * HOUR_NS,
            first + DAY_NS + 5 * HOUR_NS - 1,
        ),
        (
            first + DAY_NS + 2 * HOUR_NS + 20 * MIN,
            first + 2 * DAY_NS + 40 * MIN,
        ),
    ];
    let queries = ["cpu", r#"cpu{job="api"}"#, r#"cpu{job="web"}"#];
    // pprof's merge of the profiles as received, per query, range and labels or not.
    type Want = Vec<Option<(String, BTreeMap<String, Vec<i64>>)>>;
    let wants = |appended: &Appended| -> Want {
        let decoded: Vec<_> = appended
            .iter()
            .map(|(k, t, b)| (k, *t, gocost_pprof::decode(b).unwrap()))
            .collect();
        let mut out = Want::new();
        for q in queries {
            let sel = Selector::parse(q).unwrap();
            for &(from, to) in &ranges {
                for labels in [true, false] {
                    let mut c = gocost_pprof::Combiner::new();
                    for (key, t, p) in &decoded {
                        if sel.matches(key) && (from..=to).contains(t) {
                            let mut p = p.clone();
                            if !labels {
                                p.sample.iter_mut().for_each(|s| s.label.clear());
                            }
                            c.push(p).unwrap();
                        }
                    }
                    out.push(c.finish().map(|p| canon(&p)));
                }
            }
        }
        out
    };
    let check = |s: &Store, at: &str, want: &Want| {
        let mut want = want.iter();
        for q in queries {
            let sel = Selector::parse(q).unwrap();
            for &(from, to) in &ranges {
                for read in [Read::Exact, Read::Summed { labels: false }] {
                    let want = want.next().unwrap();
                    for agg in [Agg::Sum, Agg::Mean] {
                        let got = s
                            .query_agg_as(&sel, from, to, agg, read)
                            .unwrap()
                            .map(|p| canon(&p));
                        assert!(got == *want, "{at}: {q} [{from}, {to}] {read:?} {agg:?}");
                    }
                }
            }
        }
    };
    // How many profiles (stored or rollups) a merge over [from, to] reads for the api
    // service.
    let visits = |s: &Store, from: i64, to: i64| profiles_read(s, r#"cpu{job="api"}"#, from, to);
    let want = wants(&appended);
    check(&s, "level-0 blocks", &want);

    // Days only, with retention under four weeks: four day blocks.
    assert_eq!(s.compact(20_008 * DAY_NS).unwrap(), 4);
    assert!(s.blocks().iter().all(|b| b.level == 1));
    check(&s, "day blocks", &want);
    assert_eq!(visits(&s, week, week + WEEK_NS - 1), 3, "three day rollups");

    // With the default retention (30 days), the finished week's three day blocks become
    // one; the next week's day stays.
    drop(s);
    let (s, _) = Store::open(Options::new(&d)).unwrap();
    assert_eq!(s.compact(20_008 * DAY_NS).unwrap(), 1);
    let levels: Vec<u32> = s.blocks().iter().map(|b| b.level).collect();
    assert_eq!(levels, [2, 1]);
    let w = &s.blocks()[0];
    assert_eq!(w.steps.last(), Some(&WEEK_NS));
    assert_eq!(w.min_time_ns.div_euclid(WEEK_NS), 2857);
    assert!(
        w.series
            .iter()
            .all(|m| m.hour_rollups.is_some() && m.rollups.is_some())
    );
    // The api service's hourly rollups are split by day (each inflates alone).
    assert!(w.series.iter().any(|m| m.hour_days.is_some()));
    // Its symbol tables are stored, not compressed (they load at the speed of a copy);
    // the day blocks' are compressed.
    for g in &w.groups {
        assert!(
            g.symbols.len > g.symbols.raw_len,
            "{}: {:?}",
            g.name,
            g.symbols
        );
    }
    for g in &s.blocks()[1].groups {
        assert!(
            g.symbols.len < g.symbols.raw_len,
            "{}: {:?}",
            g.name,
            g.symbols
        );
    }
    assert_eq!(s.verify().unwrap(), Vec::<String>::new());
    check(&s, "a week block", &want);
    assert_eq!(visits(&s, week, week + WEEK_NS - 1), 1, "the week's rollup");
    assert_eq!(
        visits(&s, first, week + WEEK_NS - 1),
        3,
        "the days' rollups"
    );
    // 02:00..05:00 of a day: three hourly rollups, no raw profile.
    assert_eq!(
        visits(
            &s,
            first + DAY_NS + 2 * HOUR_NS,
            first + DAY_NS + 5 * HOUR_NS - 1
        ),
        3
    );

    // A late profile for the compacted week: a day block, then the week again.
    let late = (
        keys[0].clone(),
        first + DAY_NS + HOUR_NS + 17,
        cpu[1].clone(),
    );
    s.append(&late.0, late.1, &late.2).unwrap();
    appended.push(late);
    let want = wants(&appended);
    s.flush(true).unwrap();
    check(&s, "a week block and a late level-0 block", &want);
    assert_eq!(s.compact(20_009 * DAY_NS).unwrap(), 2);
    let levels: Vec<u32> = s.blocks().iter().map(|b| b.level).collect();
    assert_eq!(levels, [2, 1]);
    assert_eq!(s.verify().unwrap(), Vec::<String>::new());
    check(&s, "the week compacted again", &want);
    assert_eq!(visits(&s, week, week + WEEK_NS - 1), 1);

    // After a restart; the bytes received are still counted (each compacted block's index
    // carries its inputs').
    drop(s);
    let (s, _) = Store::open(Options::new(&d)).unwrap();
    check(&s, "reopened", &want);
    let received: usize = appended.iter().map(|x| x.2.len()).sum();
    assert_eq!(s.stats().block_ingested_bytes, received as u64);
    drop(s);
    std::fs::remove_dir_all(&d).unwrap();
}

fn snapshot(dir: &std::path::Path) -> Vec<(PathBuf, Vec<u8>)> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            let b = std::fs::read(&p).unwrap();
            (p, b)
        })
        .collect()
}

#[test]
fn a_crash_between_block_write_and_wal_cleanup_replays_nothing_twice() {
    let d = dir("crash");
    // A head cache too small for all profiles: the cut mixes profiles encoded on append
    // with profiles decoded again from the WAL, in the same services.
    let mut o = Options::new(&d);
    o.head_cache_bytes = 40_000;
    let (s, _) = Store::open(o).unwrap();
    fill(&s);
    let head = answers(&s);
    // Keep a copy of the WAL as it was before the cut, then put it back after: as if the
    // process died after writing the block but before deleting the segments.
    let wal = d.join("wal");
    let saved = snapshot(&wal);
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
    let before = snapshot(&blocks_dir);
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

#[test]
fn a_failed_cut_loses_nothing_and_is_retried_from_the_wal() {
    let d = dir("retry");
    let (s, _) = Store::open(Options::new(&d)).unwrap();
    fill(&s);
    let head = answers(&s);
    // Block files are written under <data>/tmp: make that impossible for one try.
    std::fs::write(d.join("tmp"), b"not a directory").unwrap();
    assert!(s.flush(true).is_err());
    assert_eq!(s.stats().blocks, 0);
    assert_eq!(answers(&s), head, "the head still answers");
    std::fs::remove_file(d.join("tmp")).unwrap();
    // The retry cannot use the encodings that went with the failed block's symbols.
    assert!(s.flush(false).unwrap());
    assert_eq!(s.stats().blocks, 1);
    assert_eq!(answers(&s), head);
    assert_eq!(s.verify().unwrap(), Vec::<String>::new());
    std::fs::remove_dir_all(&d).unwrap();
}

/// A merging query reads its blocks on several threads, a block each, and merges their
/// answers in block order (docs/adr/0033), a mean merging each series on threads beside
/// them: what it answers is byte for byte what one thread
/// gives — the same samples, locations, functions and header, in the same order — for each
/// read and aggregation, over ranges that take every block, some, or one, with the head; a
/// cancellation or an exceeded budget met on a helper thread reaches the caller as such.
#[test]
fn threads_answer_byte_for_byte_what_one_thread_does() {
    let d = dir("threads");
    let all = appended();
    let (head, cut) = all.split_at(all.len() - 10);
    {
        let (s, _) = Store::open(Options::new(&d)).unwrap();
        // A block per dozen profiles (all kinds mixed), then some left in the head.
        for chunk in head.chunks(12) {
            for (k, t, b) in chunk {
                s.append(k, *t, b).unwrap();
            }
            s.flush(true).unwrap();
        }
        for (k, t, b) in cut {
            s.append(k, *t, b).unwrap();
        }
        s.sync().unwrap();
        assert!(s.stats().blocks >= 8, "{} blocks", s.stats().blocks);
    }
    let answers = |threads: usize| {
        let mut o = Options::new(&d);
        o.query_threads = threads;
        let (s, _) = Store::open(o).unwrap();
        let mut out = Vec::new();
        for (q, from, to) in queries() {
            let sel = Selector::parse(q).unwrap();
            for read in [
                Read::Exact,
                Read::Summed { labels: false },
                Read::Summed { labels: true },
            ] {
                for agg in [Agg::Sum, Agg::Mean] {
                    let p = s.query_agg_as(&sel, from, to, agg, read).unwrap();
                    out.push((q, read, agg, p.map(|p| gocost_pprof::encode(&p))));
                }
            }
        }
        out
    };
    let (one, three) = (answers(1), answers(3));
    assert!(one.iter().filter(|a| a.3.is_some()).count() >= 30);
    for (a, b) in one.iter().zip(&three) {
        assert!(a == b, "{:?} {:?} {:?}: 3 threads differ", a.0, a.1, a.2);
    }

    // A cancelled or over-budget query unwinds on the caller's thread with what the
    // helper threads met (the server answers it as a timeout or a 422).
    use gocost_pprof::cancel;
    use std::panic::{AssertUnwindSafe, catch_unwind};
    let mut o = Options::new(&d);
    o.query_threads = 3;
    let (s, _) = Store::open(o).unwrap();
    let sel = Selector::parse("cpu").unwrap();
    // Both the blocks' threads (sum) and the per-series merges beside them (mean).
    for agg in [Agg::Sum, Agg::Mean] {
        let q = || s.query_agg_as(&sel, i64::MIN, i64::MAX, agg, Read::Exact);
        let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let r = catch_unwind(AssertUnwindSafe(|| cancel::with_flag(flag, q)));
        assert!(cancel::is_cancelled(&*r.expect_err("cancelled")), "{agg:?}");
        let budget = cancel::Budget {
            max_nodes: 1,
            max_depth: 1 << 20,
        };
        let r = catch_unwind(AssertUnwindSafe(|| cancel::with_budget(budget, q)));
        let over = cancel::over_budget(&*r.expect_err("over budget"));
        assert_eq!(over.map(|o| o.limit), Some(cancel::Limit::Nodes), "{agg:?}");
        // And the store answers again.
        assert!(q().unwrap().is_some());
    }
    drop(s);
    std::fs::remove_dir_all(&d).unwrap();
}
