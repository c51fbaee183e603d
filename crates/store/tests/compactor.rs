//! One compactor per bucket, elected through the bucket (docs/adr/0022). Three writers and a
//! query-only reader share one bucket on a local disk (`object_store`'s local file system,
//! which honours create-only puts): exactly one writer holds the lease; killed at the worst
//! moments — its merged block uploaded but not yet in the bucket index, then in the index
//! with its inputs not yet deleted — another takes the lease once it expires and finishes.
//! Throughout, every answer equals one store's over the same profiles (nothing counted
//! twice, nothing lost) and `verify` of every writer is clean.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::*;
use gocost_store::{
    BlobConfig, ClusterOptions, CompactionMode, DAY_NS, FaultHook, FaultPoint, LeaseEvent, Options,
    Store,
};

const TTL: Duration = Duration::from_secs(6);

fn opts(data: &Path, bucket: &Path, instance: &str, query_only: bool) -> Options {
    let mut o = Options::new(data);
    o.blobs = BlobConfig::Dir(bucket.to_path_buf());
    o.retention_ns = 0;
    o.cluster = Some(ClusterOptions {
        query_only,
        // Inputs are deleted at the compactor's next pass: the test decides when.
        delete_delay: Duration::ZERO,
        lease_ttl: TTL,
        ..ClusterOptions::new(instance)
    });
    o
}

/// A writer whose compaction can be stopped just before its block becomes visible.
fn writer(dir: &Path, bucket: &Path, instance: &str, kill: &Arc<AtomicBool>) -> Store {
    writer_with(dir, bucket, instance, kill, Duration::ZERO)
}

/// [`writer`] whose replaced blocks stay for `delay`.
fn writer_with(
    dir: &Path,
    bucket: &Path,
    instance: &str,
    kill: &Arc<AtomicBool>,
    delay: Duration,
) -> Store {
    let mut o = opts(&dir.join(instance), bucket, instance, false);
    if let Some(c) = o.cluster.as_mut() {
        c.delete_delay = delay;
    }
    let kill = kill.clone();
    o.faults = Some(FaultHook(Arc::new(move |at| {
        (at == FaultPoint::CompactCommit && kill.load(Ordering::SeqCst))
            .then(|| std::io::Error::other("killed"))
    })));
    let (s, report) = Store::open(o).unwrap();
    assert!(report.corrupt.is_empty(), "{:?}", report.corrupt);
    assert_eq!(s.compaction_mode(), CompactionMode::Lease);
    assert_eq!(s.conditional_put_probe(), Some(true));
    s
}

/// Ticks every store's lease until one of `stores` holds it (a bounded wait: a lease
/// expires after its time); returns which one.
fn wait_for_holder(stores: &[&Store]) -> usize {
    let deadline = Instant::now() + TTL * 5;
    loop {
        for (i, s) in stores.iter().enumerate() {
            if let LeaseEvent::Taken { .. } = s.tick_lease().unwrap() {
                let holders: Vec<usize> = (0..stores.len())
                    .filter(|&j| stores[j].is_bucket_compactor())
                    .collect();
                assert_eq!(holders, vec![i], "exactly one holds the lease");
                return i;
            }
        }
        assert!(Instant::now() < deadline, "nobody took the lease");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn blocks_in(bucket: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(bucket)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".gcb"))
        .collect();
    v.sort();
    v
}

#[test]
fn one_compactor_per_bucket_survives_being_killed_mid_compaction() {
    let dir = std::env::temp_dir().join(format!("gocost-compactor-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let bucket = dir.join("bucket");
    std::fs::create_dir_all(&bucket).unwrap();
    let kill = Arc::new(AtomicBool::new(false));
    let names = ["a", "b", "c"];
    let mut w: Vec<Option<Store>> = names
        .iter()
        .map(|n| Some(writer(&dir, &bucket, n, &kill)))
        .collect();
    let (single, _) = Store::open(Options::new(dir.join("single"))).unwrap();
    // Target a:1's series to writer a, b:1's to b, c:1's to c: service "api" has series in
    // two writers, and every series spans two UTC days.
    let all = appended();
    // One block per writer and UTC day.
    for day in [20_000 - 1, 20_000] {
        for (k, t, bytes) in all.iter().filter(|x| x.1.div_euclid(DAY_NS) == day) {
            let inst = k.labels["instance"].as_str();
            let i = names.iter().position(|n| inst.starts_with(n)).unwrap();
            w[i].as_ref().unwrap().append(k, *t, bytes).unwrap();
            single.append(k, *t, bytes).unwrap();
        }
        for s in w.iter().flatten().chain([&single]) {
            s.sync().unwrap();
            assert!(s.flush(true).unwrap());
        }
    }
    assert_eq!(blocks_in(&bucket).len(), 6);
    let want = answers(&single);
    let (r, _) = Store::open(opts(&dir.join("r"), &bucket, "r", true)).unwrap();
    let check = |what: &str| {
        r.refresh_cluster().unwrap();
        assert_eq!(
            answers(&r),
            want,
            "{what}: the reader's answers equal one store's"
        );
        assert_eq!(
            r.stats().profiles,
            all.len() as u64,
            "{what}: every profile counted once"
        );
    };
    for s in w.iter().flatten() {
        s.refresh_cluster().unwrap();
    }
    check("before compaction");

    // Exactly one writer holds the lease; the others do not compact.
    let refs: Vec<&Store> = w.iter().flatten().collect();
    let first = wait_for_holder(&refs);
    // The days are over, their week (which would be compacted too) is not.
    let later = BASE + 3 * DAY_NS;
    for (i, s) in w.iter().flatten().enumerate() {
        if i != first {
            assert_eq!(
                s.compact(later).unwrap(),
                0,
                "{} is not the compactor",
                names[i]
            );
        }
    }

    // Killed after uploading its merged block, before its index part lists it: the block
    // is in the bucket but counts for nobody.
    kill.store(true, Ordering::SeqCst);
    let before = blocks_in(&bucket).len();
    assert!(w[first].as_ref().unwrap().compact(later).is_err());
    assert_eq!(
        blocks_in(&bucket).len(),
        before + 1,
        "the merged block was left behind"
    );
    kill.store(false, Ordering::SeqCst);
    w[first] = None; // dropped without releasing the lease
    check("a merged block no index lists");
    // A reader opening now lists the block, but its first refresh drops it.
    for n in names
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != first)
        .map(|x| x.1)
    {
        let v = gocost_store::verify_dir(&opts(&dir.join("v"), &bucket, n, false)).unwrap();
        assert!(v.problems.is_empty(), "{:?}", v.problems);
        assert_eq!(v.block_profiles, all.len() as u64, "{:?}", v.notes);
    }

    // Another takes the lease once it expires, deletes the left-over block and compacts
    // both days of every writer; then it is killed before deleting the inputs.
    let alive: Vec<usize> = (0..3).filter(|&i| w[i].is_some()).collect();
    let refs: Vec<&Store> = alive.iter().map(|&i| w[i].as_ref().unwrap()).collect();
    let second = alive[wait_for_holder(&refs)];
    let s2 = w[second].as_ref().unwrap();
    assert_eq!(s2.compact(later).unwrap(), 2);
    let l1: Vec<_> = s2.blocks().into_iter().filter(|m| m.level == 1).collect();
    assert_eq!(l1.len(), 2, "one block per day for every writer");
    for m in &l1 {
        assert_eq!(m.instance, names[second]);
        assert!(m.compactor_term.is_some());
        assert_eq!(m.replaces.len(), 3, "{:?}", m.replaces);
    }
    assert_eq!(
        blocks_in(&bucket).len(),
        before + 2,
        "the left-over block is gone, the inputs are still there"
    );
    for s in w.iter().flatten() {
        s.refresh_cluster().unwrap();
    }
    check("merged blocks and their inputs");
    w[second] = None;

    // The last writer takes over and deletes the inputs; the restarted writers replay
    // nothing twice.
    let third = (0..3).find(|&i| w[i].is_some()).unwrap();
    let s3 = w[third].as_ref().unwrap();
    assert_eq!(wait_for_holder(&[s3]), 0);
    assert_eq!(s3.compact(later).unwrap(), 0, "nothing left to compact");
    let left = blocks_in(&bucket);
    assert_eq!(left.len(), 2, "only the two daily blocks: {left:?}");
    for (i, slot) in w.iter_mut().enumerate() {
        if slot.is_none() {
            *slot = Some(writer(&dir, &bucket, names[i], &kill));
        }
    }
    for s in w.iter().flatten() {
        s.refresh_cluster().unwrap();
        assert_eq!(s.stats().head_profiles, 0);
    }
    check("after the inputs are deleted");
    drop(w);
    drop(r);
    for n in names {
        let v = gocost_store::verify_dir(&opts(&dir.join(n), &bucket, n, false)).unwrap();
        assert!(v.problems.is_empty(), "{:?}", v.problems);
        assert_eq!(v.blocks, 2);
        assert_eq!(v.block_profiles, all.len() as u64, "{:?}", v.notes);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn without_conditional_writes_each_writer_compacts_its_own() {
    // A local `blocks/` directory per writer honours them too; what a bucket that ignores
    // them does is the Garage test's (tests/cluster.rs). A static compactor needs no probe.
    let dir = std::env::temp_dir().join(format!("gocost-compactor-static-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let bucket = dir.join("bucket");
    let mut o = opts(&dir.join("a"), &bucket, "a", false);
    if let Some(c) = o.cluster.as_mut() {
        c.compactor = gocost_store::Compactor::This;
    }
    let (a, _) = Store::open(o).unwrap();
    assert_eq!(a.compaction_mode(), CompactionMode::Static(true));
    assert_eq!(a.conditional_put_probe(), None);
    assert!(a.is_bucket_compactor());
    let mut o = opts(&dir.join("b"), &bucket, "b", false);
    if let Some(c) = o.cluster.as_mut() {
        c.compactor = gocost_store::Compactor::None;
    }
    let (b, _) = Store::open(o).unwrap();
    assert_eq!(b.compaction_mode(), CompactionMode::Static(false));
    for day in [20_000 - 1, 20_000] {
        for (k, t, bytes) in appended().iter().filter(|x| x.1.div_euclid(DAY_NS) == day) {
            let s = if k.labels["instance"] == "a:1" {
                &a
            } else {
                &b
            };
            s.append(k, *t, bytes).unwrap();
        }
        for s in [&a, &b] {
            s.sync().unwrap();
            assert!(s.flush(true).unwrap());
        }
    }
    for s in [&a, &b] {
        s.refresh_cluster().unwrap();
    }
    // The days are over, their week (which would be compacted too) is not.
    let later = BASE + 3 * DAY_NS;
    assert_eq!(b.compact(later).unwrap(), 0);
    assert_eq!(a.compact(later).unwrap(), 2);
    b.refresh_cluster().unwrap();
    assert_eq!(b.stats().profiles, appended().len() as u64);
    assert!(b.blocks().iter().all(|m| m.level == 1 && m.instance == "a"));

    // The inputs go only while the block replacing them is there: were it gone (deleted
    // by a later compactor as never made visible, its index write having landed too
    // late), they are all there is.
    let l1 = a.blocks();
    let gone = &l1[0];
    std::fs::remove_file(bucket.join(format!("{}.gcb", gone.id))).unwrap();
    a.refresh_cluster().unwrap();
    for id in &gone.replaces {
        assert!(bucket.join(format!("{id}.gcb")).exists(), "{id} kept");
    }
    for id in &l1[1].replaces {
        assert!(!bucket.join(format!("{id}.gcb")).exists(), "{id} deleted");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The peers, in this process.
struct InProcess(Vec<Arc<Store>>);

impl gocost_store::Peers for InProcess {
    fn heads(
        &self,
        req: &gocost_store::HeadRequest,
    ) -> Vec<Result<gocost_store::HeadAnswer, String>> {
        self.0
            .iter()
            .map(|s| s.head_answer(req).map_err(|e| e.to_string()))
            .collect()
    }
}

#[test]
fn readers_asking_peers_count_a_compaction_of_several_writers_once() {
    let dir = std::env::temp_dir().join(format!("gocost-compactor-peers-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let bucket = dir.join("bucket");
    std::fs::create_dir_all(&bucket).unwrap();
    let no = Arc::new(AtomicBool::new(false));
    let hour = Duration::from_secs(3600);
    let a = Arc::new(writer_with(&dir, &bucket, "a", &no, hour));
    let b = Arc::new(writer_with(&dir, &bucket, "b", &no, hour));
    let (single, _) = Store::open(Options::new(dir.join("single"))).unwrap();
    // The first profiles in blocks of both writers (a:1's series in a's), the rest in b's
    // head: a reader asking only b still sees everything.
    let cut = BASE + 20 * STEP;
    let all = appended();
    for early in [true, false] {
        for (k, t, bytes) in all.iter().filter(|x| (x.1 < cut) == early) {
            let s = if early && k.labels["instance"] == "a:1" {
                &a
            } else {
                &b
            };
            s.append(k, *t, bytes).unwrap();
            single.append(k, *t, bytes).unwrap();
        }
        for s in [&*a, &*b, &single] {
            s.sync().unwrap();
            if early {
                assert!(s.flush(true).unwrap());
                s.refresh_cluster().unwrap();
            }
        }
    }
    let want = answers(&single);
    // A reader that read the bucket index before the compaction and asks only b.
    let (r, _) = Store::open(opts(&dir.join("r"), &bucket, "r", true)).unwrap();
    r.refresh_cluster().unwrap();
    assert_eq!(r.blocks().len(), 2);
    r.set_peers(Arc::new(InProcess(vec![b.clone()])));
    assert_eq!(answers(&r), want);

    assert!(matches!(a.tick_lease().unwrap(), LeaseEvent::Taken { .. }));
    assert_eq!(b.tick_lease().unwrap(), LeaseEvent::Unchanged);
    assert_eq!(a.compact(BASE + 10 * DAY_NS).unwrap(), 1);
    // b has not read the bucket index since: it answers with its own block, the reader
    // has a's from its catalog: the view before the compaction, whole.
    assert_eq!(answers(&r), want, "b not refreshed");
    // b learns of the merged block: it no longer reads its own (still listed in its index
    // part for the delay) and answers with the merged block, so the reader, which still
    // has a's old blocks in its catalog, reads the merged one instead: never neither.
    b.refresh_cluster().unwrap();
    assert_eq!(
        b.blocks().iter().map(|m| m.level).collect::<Vec<_>>(),
        vec![1]
    );
    assert_eq!(answers(&r), want, "b refreshed, the reader not");
    // b's index part still lists its replaced block for the delay: a reader that read a's
    // part before the merged block appeared and b's after finds it there.
    let idx: gocost_store::BucketIndex =
        serde_json::from_slice(&std::fs::read(bucket.join("index/b.json")).unwrap()).unwrap();
    assert_eq!(idx.blocks.len(), 1);
    assert_eq!(idx.blocks[0].level, 0);
    let merged = &a.blocks()[0];
    assert!(
        merged
            .replaces
            .contains(&idx.blocks[0].name.replace(".gcb", ""))
    );
    r.refresh_cluster().unwrap();
    assert_eq!(answers(&r), want);
    assert_eq!(r.blocks().len(), 1);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn retention_deletes_expired_blocks_once_by_the_compactor() {
    let dir = std::env::temp_dir().join(format!("gocost-compactor-ret-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let bucket = dir.join("bucket");
    std::fs::create_dir_all(&bucket).unwrap();
    let open = |n: &str| {
        let mut o = opts(&dir.join(n), &bucket, n, false);
        o.retention_ns = DAY_NS;
        Store::open(o).unwrap().0
    };
    let (a, b) = (open("a"), open("b"));
    for (k, t, bytes) in appended() {
        let s = if k.labels["instance"] == "a:1" {
            &a
        } else {
            &b
        };
        s.append(&k, t, &bytes).unwrap();
    }
    for s in [&a, &b] {
        s.sync().unwrap();
        assert!(s.flush(true).unwrap());
    }
    for s in [&a, &b] {
        s.refresh_cluster().unwrap();
    }
    assert_eq!(blocks_in(&bucket).len(), 2);
    assert!(matches!(a.tick_lease().unwrap(), LeaseEvent::Taken { .. }));
    let later = BASE + 10 * DAY_NS;
    // b is not the compactor: it forgets its expired block (out of its catalog and index
    // part) but deletes nothing.
    b.apply_retention(later).unwrap();
    assert!(b.blocks().is_empty());
    assert_eq!(blocks_in(&bucket).len(), 2, "b deletes nothing");
    // The compactor deletes every expired block, its own and the one b already forgot
    // (gone from a's catalog too once it read b's index part: found by listing the bucket).
    a.refresh_cluster().unwrap();
    assert_eq!(a.blocks().len(), 1);
    a.apply_retention(later).unwrap();
    assert!(a.blocks().is_empty());
    assert_eq!(blocks_in(&bucket), Vec::<String>::new());
    b.refresh_cluster().unwrap();
    assert_eq!(b.stats().profiles, 0);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A query instance (`--role query`) writes nothing of its own: no WAL, no lock on its data
/// directory, no traces; its block cache is its only state, locked on its own. Its answers
/// are the writer's, every write is refused, and it can be opened beside a live writer on
/// the writer's own data directory without touching the writer's WAL.
#[test]
fn a_query_instance_holds_no_wal_and_no_data_dir_lock() {
    let dir = std::env::temp_dir().join(format!("gocost-queryrole-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let bucket = dir.join("bucket");
    std::fs::create_dir_all(&bucket).unwrap();
    let kill = Arc::new(AtomicBool::new(false));
    let w = writer(&dir, &bucket, "w", &kill);
    fill(&w);
    w.sync().unwrap();
    assert!(w.flush(true).unwrap());
    w.refresh_cluster().unwrap();
    let want = answers(&w);

    let qdir = dir.join("q");
    let (q, report) = Store::open(opts(&qdir, &bucket, "q", true)).unwrap();
    assert!(q.query_only());
    assert_eq!((report.records, report.segments), (0, 0));
    q.refresh_cluster().unwrap();
    assert_eq!(
        answers(&q),
        want,
        "the query instance answers as the writer"
    );
    let mut made: Vec<String> = std::fs::read_dir(&qdir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    made.sort();
    assert_eq!(made, ["cache"], "only the block cache is written");
    assert!(qdir.join("cache/LOCK").exists());
    // Writes of every kind are refused; syncing and cutting are no-ops.
    let (k, t, bytes) = appended().remove(0);
    assert!(matches!(
        q.append(&k, t, &bytes),
        Err(gocost_store::Error::QueryOnly)
    ));
    assert!(matches!(
        q.append_points(&[(common::key("metric", "api", "q:1"), t, 1.0)]),
        Err(gocost_store::Error::QueryOnly)
    ));
    assert!(matches!(
        q.put_trace(&k, t, b"trace"),
        Err(gocost_store::Error::QueryOnly)
    ));
    assert!(matches!(
        q.put_load_run(&k, t, b"{}"),
        Err(gocost_store::Error::QueryOnly)
    ));
    q.sync().unwrap();
    assert!(!q.flush(true).unwrap());
    assert_eq!(q.stats().wal_bytes, 0);

    // Its cache is its own: a second query instance on the same directory is refused with
    // a message naming the cache; without a cache it opens.
    let err = Store::open(opts(&qdir, &bucket, "q2", true))
        .err()
        .expect("the cache is locked")
        .to_string();
    assert!(
        err.contains("block cache") && err.contains("in use"),
        "{err}"
    );
    let mut o = opts(&qdir, &bucket, "q2", true);
    o.block_cache_bytes = 0;
    let (q2, _) = Store::open(o).unwrap();
    q2.refresh_cluster().unwrap();
    assert_eq!(answers(&q2), want);

    // Beside the live writer, on the writer's data directory (no cache): the writer's WAL
    // and lock are untouched, and a second writer there is still refused.
    let wdir = dir.join("w");
    let wal_before: Vec<_> = std::fs::read_dir(wdir.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    let mut o = opts(&wdir, &bucket, "q3", true);
    o.block_cache_bytes = 0;
    let (q3, _) = Store::open(o).unwrap();
    q3.refresh_cluster().unwrap();
    assert_eq!(answers(&q3), want);
    let wal_after: Vec<_> = std::fs::read_dir(wdir.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(wal_before, wal_after);
    assert!(Store::open(opts(&wdir, &bucket, "w", false)).is_err());
    w.append(&k, t + 1, &bytes).unwrap();
    w.sync().unwrap();

    // A query instance needs a bucket to read.
    let mut o = Options::new(dir.join("nobucket"));
    o.cluster = Some(ClusterOptions {
        query_only: true,
        ..ClusterOptions::new("q4")
    });
    let err = Store::open(o).err().expect("no bucket").to_string();
    assert!(err.contains("shared_dir"), "{err}");
    drop((q, q2, q3, w));
    let _ = std::fs::remove_dir_all(&dir);
}
