//! Instances over one bucket (docs/adr/0020) in a real 3-node Garage cluster (replication
//! factor 3): two writers with their own data directories and instance ids, one query-only
//! reader; the reader's answers equal one store's over the same profiles — blocks from both
//! writers through the bucket index, their heads through the peers —, a peer that does not
//! answer makes the answer partial, a compaction counts nothing twice, one Garage node
//! down stops neither ingest nor queries, and a writer never replays against another's
//! blocks.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::garage::*;
use common::*;
use gocost_store::{
    Agg, ClusterOptions, CompactionMode, DAY_NS, HeadAnswer, HeadRequest, LeaseEvent, Options,
    Peers, Read, Selector, Store, collect_partial,
};

/// The peers, in this process: each answers with [`Store::head_answer`] unless it is down.
struct InProcess(Vec<(Arc<Store>, Arc<AtomicBool>)>);

impl Peers for InProcess {
    fn heads(&self, req: &HeadRequest) -> Vec<Result<HeadAnswer, String>> {
        self.0
            .iter()
            .map(|(s, down)| {
                if down.load(Ordering::Relaxed) {
                    Err(format!("{}: down", s.instance()))
                } else {
                    s.head_answer(req).map_err(|e| e.to_string())
                }
            })
            .collect()
    }
}

fn opts(data: &std::path::Path, endpoint: &str, instance: &str, query_only: bool) -> Options {
    let mut o = s3_options(data, endpoint, "fleet");
    o.cluster = Some(ClusterOptions {
        query_only,
        delete_delay: std::time::Duration::from_secs(3600),
        ..ClusterOptions::new(instance)
    });
    o
}

/// Every answer the comparison looks at: the fixed queries read exactly and summed, and
/// each query's mean and latest.
fn all_answers(s: &Store) -> Vec<Answers> {
    let mut out = vec![
        answers_as(s, Read::Exact),
        answers_as(s, Read::Summed { labels: false }),
    ];
    for agg in [Agg::Mean, Agg::Latest] {
        out.push(
            queries()
                .into_iter()
                .map(|(q, from, to)| {
                    s.query_agg_as(&Selector::parse(q).unwrap(), from, to, agg, Read::Exact)
                        .unwrap()
                        .map(|p| canon(&p))
                })
                .collect(),
        );
    }
    out
}

#[cfg_attr(
    not(has_garage),
    ignore = "needs Garage: set $GARAGE or put garage on PATH"
)]
#[test]
fn writers_and_a_reader_share_a_bucket() {
    let bin = garage_binary();
    let dir = std::env::temp_dir().join(format!("gocost-cluster-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut garage = start_garage_cluster(&bin, &dir.join("garage"));
    let (s3a, s3b) = (garage.s3[0].clone(), garage.s3[1].clone());

    let (a, _) = Store::open(opts(&dir.join("a"), &s3a, "a", false)).unwrap();
    let (b, _) = Store::open(opts(&dir.join("b"), &s3b, "b", false)).unwrap();
    let (single, _) = Store::open(Options::new(dir.join("single"))).unwrap();
    // Garage ignores If-None-Match: the probe finds it, and no lease is used (two
    // instances could both believe they hold it): each writer compacts its own blocks.
    for s in [&a, &b] {
        assert_eq!(s.conditional_put_probe(), Some(false));
        assert_eq!(s.compaction_mode(), CompactionMode::Own);
        assert!(!s.is_bucket_compactor());
        assert_eq!(s.tick_lease().unwrap(), LeaseEvent::Unchanged);
    }
    let (a, b) = (Arc::new(a), Arc::new(b));
    // Series of target a:1 go to writer a (its shard), the others to b; the single store
    // gets everything. The first 20 steps end up in blocks, the rest stays in the heads.
    let cut = BASE + 20 * STEP;
    let all = appended();
    let put = |early: bool| {
        for (k, t, bytes) in all.iter().filter(|x| (x.1 < cut) == early) {
            let w = if k.labels.get("instance").map(String::as_str) == Some("a:1") {
                &a
            } else {
                &b
            };
            w.append(k, *t, bytes).unwrap();
            single.append(k, *t, bytes).unwrap();
        }
        for s in [&*a, &*b, &single] {
            s.sync().unwrap();
        }
    };
    put(true);
    for s in [&*a, &*b, &single] {
        assert!(s.flush(true).unwrap());
    }
    put(false);
    // A series only in a head (listed through the peer).
    let fresh = common::key("goroutine", "fresh", "f:1");
    for s in [&*b, &single] {
        s.append(&fresh, cut, &testdata("goroutine.pb.gz")).unwrap();
        s.sync().unwrap();
    }
    let t = std::time::Instant::now();
    let want = all_answers(&single);
    let single_took = t.elapsed();
    assert!(want[0].iter().filter(|x| x.is_some()).count() >= 6);

    // Names never collide: each block carries its writer.
    for (s, inst) in [(&a, "a"), (&b, "b")] {
        for m in s.blocks() {
            assert_eq!(m.instance, inst);
            assert!(m.id.contains(&format!("-{inst}-")), "{}", m.id);
        }
    }

    let (r, _) = Store::open(opts(&dir.join("r"), &garage.s3[2], "r", true)).unwrap();
    assert!(r.query_only());
    let down_b = Arc::new(AtomicBool::new(false));
    r.set_peers(Arc::new(InProcess(vec![
        (a.clone(), Arc::new(AtomicBool::new(false))),
        (b.clone(), down_b.clone()),
    ])));
    r.refresh_cluster().unwrap();
    let blocks = r.blocks();
    assert_eq!(blocks.len(), 2, "{blocks:?}");
    let t = std::time::Instant::now();
    let (got, missing) = collect_partial(|| all_answers(&r));
    eprintln!(
        "the answers took {single_took:?} from one store on local disk, {:?} from the reader (blocks in Garage, heads from two peers)",
        t.elapsed()
    );
    let t = std::time::Instant::now();
    let _ = all_answers(&r);
    eprintln!("  again: {:?}", t.elapsed());
    assert!(missing.is_empty(), "{missing:?}");
    assert_eq!(got, want, "the reader's answers equal one store's");
    assert_eq!(r.series(), single.series(), "and its series listing");
    assert!(r.series().contains(&fresh));
    // A query-only instance stores nothing.
    let k = common::key("cpu", "api", "z:1");
    assert!(matches!(
        r.append(&k, BASE, &testdata("cpu.pb.gz")),
        Err(gocost_store::Error::QueryOnly)
    ));

    // Writer b does not answer: its head is missing, and the answer says so.
    down_b.store(true, Ordering::Relaxed);
    let (partial, missing) = collect_partial(|| answers(&r));
    assert_eq!(missing, vec!["b: down".to_string()]);
    assert_ne!(partial, want[0]);
    down_b.store(false, Ordering::Relaxed);
    let (again, missing) = collect_partial(|| answers(&r));
    assert!(missing.is_empty());
    assert_eq!(again, want[0], "complete again once b answers");

    // Writer a compacts its finished day: its blocks are replaced, its index says so. The
    // reader reads the new block (through a's answer at once, through the index after a
    // refresh), never both.
    // The days are over, their week (which would be compacted too) is not.
    let later = BASE + 3 * DAY_NS;
    assert!(a.compact(later).unwrap() >= 1);
    // Only its own: nothing of b's is compacted twice.
    for m in a.blocks().iter().filter(|m| m.level == 1) {
        assert!(m.compactor_term.is_none());
        assert!(
            m.replaces.iter().all(|id| id.contains("-a-")),
            "{:?}",
            m.replaces
        );
    }
    assert_eq!(collect_partial(|| all_answers(&r)), (want.clone(), vec![]));
    r.refresh_cluster().unwrap();
    assert!(r.blocks().iter().any(|m| m.level == 1 && m.instance == "a"));
    assert_eq!(all_answers(&r), want);

    // One Garage node down (the reader's): the writers go on cutting blocks, a reader on
    // another node goes on answering, the same.
    garage.kill(2);
    for s in [&*a, &*b, &single] {
        assert!(s.flush(true).unwrap());
    }
    let (r2, _) = Store::open(opts(&dir.join("r2"), &s3a, "r2", true)).unwrap();
    r2.set_peers(Arc::new(InProcess(vec![
        (a.clone(), Arc::new(AtomicBool::new(false))),
        (b.clone(), Arc::new(AtomicBool::new(false))),
    ])));
    assert_eq!(all_answers(&r2), want);
    r2.refresh_cluster().unwrap();
    assert_eq!(all_answers(&r2), want);

    // A writer's WAL numbers are its own: with b's blocks naming segments a still holds,
    // a's reopening replays its own head, whole.
    a.append(
        &common::key("cpu", "api", "a:1"),
        later,
        &testdata("cpu.pb.gz"),
    )
    .unwrap();
    a.sync().unwrap();
    b.append(
        &common::key("cpu", "api", "b:1"),
        later,
        &testdata("cpu.pb.gz"),
    )
    .unwrap();
    b.sync().unwrap();
    assert!(b.flush(true).unwrap());
    let head = a.stats().head_profiles;
    assert_eq!(head, 1);
    drop(r);
    drop(r2);
    let a = Arc::try_unwrap(a).ok().expect("a is not shared any more");
    drop(a);
    let (a, _) = Store::open(opts(&dir.join("a"), &s3a, "a", false)).unwrap();
    assert_eq!(a.stats().head_profiles, head);
    drop(a);
    // `gocost verify` of a sees the whole bucket clean and a's WAL profile as a's (not as
    // already in b's block of the same segment number).
    let v = gocost_store::verify_dir(&opts(&dir.join("a"), &s3a, "a", false)).unwrap();
    assert!(v.problems.is_empty(), "{:?}", v.problems);
    assert_eq!(v.wal_profiles, 1, "{:?}", v.notes);
    drop(garage);
    let _ = std::fs::remove_dir_all(&dir);
}
