//! Failed WAL writes, syncs and segment creations (injected, as a full disk or a failing
//! device produces them) never leave the store answering for data it does not have: the
//! WAL stays a sequence of whole records, what was refused is gone, what was committed
//! survives a reopen, and block cuts retry cleanly. `verify_dir` changes nothing.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use gocost_pprof::{Function, Line, Location, Profile, Sample, ValueType};
use gocost_store::{Error, FaultHook, FaultPoint, Options, Selector, SeriesKey, Store};

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("gocost-store-faults-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// A goroutine profile with one sample of value `n` in function `func`.
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

fn key() -> SeriesKey {
    SeriesKey::new("goroutine", [("job".into(), "api".into())])
}

/// Function name → value of everything stored.
fn contents(s: &Store) -> BTreeMap<String, i64> {
    let sel = Selector::parse(r#"goroutine{job="api"}"#).unwrap();
    let mut out = BTreeMap::new();
    if let Some(p) = s.query(&sel, 0, i64::MAX).unwrap() {
        for smp in &p.sample {
            let loc = &p.location[smp.location[0] as usize];
            let f = &p.function[loc.line[0].function as usize];
            *out.entry(f.name.to_string()).or_default() += smp.value[0];
        }
    }
    out
}

/// Faults armed per operation: `fail(point, n)` makes the next `n` such operations fail.
#[derive(Clone, Default)]
struct Faults {
    write: Arc<AtomicU32>,
    sync: Arc<AtomicU32>,
    create: Arc<AtomicU32>,
}

impl Faults {
    fn hook(&self) -> FaultHook {
        let f = self.clone();
        FaultHook(Arc::new(move |at| {
            let n = match at {
                FaultPoint::Write => &f.write,
                FaultPoint::Sync => &f.sync,
                FaultPoint::Create => &f.create,
                // Block storage faults are the conformance suite's (tests/blobstore.rs).
                _ => return None,
            };
            n.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| v.checked_sub(1))
                .ok()
                .map(|_| match at {
                    FaultPoint::Sync => io::Error::from_raw_os_error(5), // EIO
                    _ => io::Error::from_raw_os_error(28),               // ENOSPC
                })
        }))
    }
}

fn open(d: &Path, faults: &Faults) -> Store {
    let mut o = Options::new(d);
    o.faults = Some(faults.hook());
    let (s, report) = Store::open(o).unwrap();
    assert!(report.corrupt.is_empty(), "{:?}", report.corrupt);
    assert_eq!(report.truncated_bytes, 0, "the WAL held a partial record");
    s
}

fn verify(d: &Path) -> gocost_store::VerifyReport {
    gocost_store::verify_dir(&Options::new(d)).unwrap()
}

#[test]
fn a_failed_write_is_cut_off_and_later_records_read_back() {
    let d = dir("write");
    let f = Faults::default();
    {
        let s = open(&d, &f);
        let a = s.append(&key(), 10, &profile(1, "main.a")).unwrap();
        f.write.store(1, Ordering::SeqCst);
        let e = s.append(&key(), 20, &profile(2, "main.b")).unwrap_err();
        assert!(matches!(e, Error::DiskFull(_)), "{e}");
        assert!(e.to_string().contains("ingest is paused"), "{e}");
        let st = s.stats();
        assert!(st.disk_full && st.write_error.is_some());
        // The next append lands right after `a`: it reads back (before the fix, it was
        // written after the partial record while its position pointed before it).
        let c = s.append(&key(), 30, &profile(4, "main.c")).unwrap();
        assert!(!s.stats().disk_full, "a good append ends the pause");
        s.commit(a).unwrap();
        s.commit(c).unwrap();
        let want = BTreeMap::from([("main.a".to_string(), 1), ("main.c".to_string(), 4)]);
        assert_eq!(contents(&s), want);
    }
    let r = verify(&d);
    assert!(r.problems.is_empty() && r.notes.is_empty(), "{r:?}");
    let s = open(&d, &f);
    assert_eq!(contents(&s).values().sum::<i64>(), 5);
    // And through a block.
    s.flush(true).unwrap();
    assert_eq!(contents(&s).values().sum::<i64>(), 5);
}

#[test]
fn a_failed_sync_drops_the_unsynced_records_and_their_commit_fails() {
    let d = dir("sync");
    let f = Faults::default();
    {
        let s = open(&d, &f);
        let a = s.append(&key(), 10, &profile(1, "main.a")).unwrap();
        s.commit(a).unwrap();
        let b = s.append(&key(), 20, &profile(2, "main.b")).unwrap();
        f.sync.store(1, Ordering::SeqCst);
        let e = s.commit(b).unwrap_err();
        assert!(matches!(e, Error::NotDurable(_)), "{e}");
        // Asked again, it is still not stored.
        assert!(s.commit(b).is_err());
        assert_eq!(s.stats().lost_records_total, 1);
        assert_eq!(
            contents(&s),
            BTreeMap::from([("main.a".to_string(), 1)]),
            "a refused record is not answered"
        );
        let c = s.append(&key(), 30, &profile(4, "main.c")).unwrap();
        s.commit(c).unwrap();
        s.commit(a).unwrap();
    }
    let s = open(&d, &f);
    assert_eq!(
        contents(&s),
        BTreeMap::from([("main.a".to_string(), 1), ("main.c".to_string(), 4)])
    );
}

#[test]
fn the_timer_sync_failing_fails_the_commit_of_a_waiting_push() {
    let d = dir("timer");
    let f = Faults::default();
    let s = open(&d, &f);
    let b = s.append(&key(), 20, &profile(2, "main.b")).unwrap();
    f.sync.store(1, Ordering::SeqCst);
    assert!(s.sync().is_err());
    // The push asks after the timer's sync failed: its record is gone.
    assert!(matches!(s.commit(b), Err(Error::NotDurable(_))));
    assert!(contents(&s).is_empty());
}

#[test]
fn segment_creation_failures_are_retried_without_file_exists() {
    let d = dir("create");
    let f = Faults::default();
    {
        let s = open(&d, &f);
        s.append(&key(), 10, &profile(1, "main.a")).unwrap();
        f.create.store(2, Ordering::SeqCst);
        assert!(s.flush(true).is_err());
        assert!(s.flush(true).is_err());
        // A leftover like the one a full disk leaves mid-creation.
        let next = std::fs::read_dir(d.join("wal")).unwrap().count() as u64 + 1;
        std::fs::write(d.join("wal").join(format!("{next:08}.wal")), b"GCW").unwrap();
        s.append(&key(), 20, &profile(2, "main.b")).unwrap();
        assert!(s.flush(true).unwrap(), "the cut goes through once it can");
        assert_eq!(contents(&s).values().sum::<i64>(), 3);
        assert!(
            std::fs::read_dir(d.join("tmp"))
                .map(|r| r.count())
                .unwrap_or(0)
                == 0,
            "no temporary block file is left"
        );
        s.sync().unwrap();
    }
    let s = open(&d, &f);
    assert_eq!(contents(&s).values().sum::<i64>(), 3);
}

#[test]
fn an_unborn_segment_is_a_note_and_removed_on_open() {
    let d = dir("unborn");
    let f = Faults::default();
    {
        let s = open(&d, &f);
        let a = s.append(&key(), 10, &profile(1, "main.a")).unwrap();
        s.commit(a).unwrap();
    }
    let newest = std::fs::read_dir(d.join("wal")).unwrap().count() as u64 + 1;
    let unborn = d.join("wal").join(format!("{newest:08}.wal"));
    std::fs::write(&unborn, b"").unwrap();
    let r = verify(&d);
    assert!(r.problems.is_empty(), "{r:?}");
    assert_eq!(r.notes.len(), 1, "{r:?}");
    let s = open(&d, &f);
    // Removed, and its number taken by the new segment.
    assert_eq!(std::fs::read(&unborn).unwrap(), b"GCWAL002");
    assert_eq!(contents(&s).values().sum::<i64>(), 1);
    drop(s);
    let r = verify(&d);
    assert!(r.problems.is_empty() && r.notes.is_empty(), "{r:?}");
}

/// Every file under `d` with its bytes.
fn snapshot(d: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut todo = vec![d.to_path_buf()];
    while let Some(p) = todo.pop() {
        for e in std::fs::read_dir(&p).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.insert(p.clone(), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

#[test]
fn verify_is_read_only_and_repair_is_explicit() {
    let d = dir("verify");
    {
        let (s, _) = Store::open(Options::new(&d)).unwrap();
        for i in 0..3 {
            s.append(&key(), 10 + i, &profile(1, "main.a")).unwrap();
        }
        s.flush(true).unwrap();
        for i in 0..3 {
            s.append(&key(), 100 + i, &profile(2, "main.b")).unwrap();
        }
        s.sync().unwrap();
    }
    // A torn record at the end of the newest segment: a note, not damage.
    let segs: Vec<PathBuf> = {
        let mut v: Vec<PathBuf> = std::fs::read_dir(d.join("wal"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        v.sort();
        v
    };
    let newest = segs.last().unwrap().clone();
    let mut bytes = std::fs::read(&newest).unwrap();
    bytes.extend_from_slice(&[9, 0, 0, 0, 1, 2]);
    std::fs::write(&newest, &bytes).unwrap();
    let before = snapshot(&d);
    let r = verify(&d);
    assert!(r.problems.is_empty(), "{r:?}");
    assert_eq!(r.notes.len(), 1, "{r:?}");
    assert_eq!((r.blocks, r.block_profiles, r.wal_profiles), (1, 3, 3));
    assert_eq!(snapshot(&d), before, "verify changed the data directory");

    // Damage in the middle of a segment that is not the newest: a problem.
    let mut next = newest.clone();
    next.set_file_name(format!("{:08}.wal", segs.len() as u64 + 5));
    std::fs::write(&next, b"GCWAL001").unwrap();
    let mut bytes = std::fs::read(&newest).unwrap();
    let mid = bytes.len() - 20;
    bytes[mid] ^= 0xff;
    std::fs::write(&newest, &bytes).unwrap();
    let before = snapshot(&d);
    let r = verify(&d);
    assert_eq!(r.problems.len(), 1, "{r:?}");
    assert!(r.problems[0].contains("checksum mismatch"), "{r:?}");
    assert_eq!(snapshot(&d), before, "verify changed the data directory");

    // Verify refuses a directory a running store holds.
    {
        let (_s, _) = Store::open(Options::new(&d)).unwrap();
        let e = gocost_store::verify_dir(&Options::new(&d)).unwrap_err();
        assert!(e.to_string().contains("in use"), "{e}");
    }
    let r = verify(&d);
    let done = gocost_store::repair_dir(&Options::new(&d), &r).unwrap();
    assert!(!done.is_empty());
    assert!(d.join("damaged").is_dir());
    let r = verify(&d);
    assert!(r.problems.is_empty(), "{r:?}");
}

/// A push's profiles go to the WAL in one write: when it fails (a full disk), none of them
/// is stored, not the first few; the next batch is stored whole and survives a reopen.
#[test]
fn a_batch_is_stored_whole_or_not_at_all() {
    let d = dir("batch");
    let f = Faults::default();
    let decode = |b: Vec<u8>| gocost_pprof::decode(&b).unwrap();
    let batch = |tag: &str, t: i64| {
        (1..=3)
            .map(|i| (key(), t + i, decode(profile(i, &format!("main.{tag}{i}")))))
            .collect::<Vec<_>>()
    };
    {
        let s = open(&d, &f);
        let one = batch("a", 0);
        f.write.store(1, Ordering::SeqCst);
        let items: Vec<_> = one.iter().map(|(k, t, p)| (k.clone(), *t, p, 0)).collect();
        let e = s.append_profiles(&items).unwrap_err();
        assert!(matches!(e, Error::DiskFull(_)), "{e}");
        assert!(contents(&s).is_empty(), "a part of a failed batch was kept");
        let two = batch("b", 100);
        let items: Vec<_> = two.iter().map(|(k, t, p)| (k.clone(), *t, p, 0)).collect();
        let lsns = s.append_profiles(&items).unwrap();
        assert_eq!(lsns.len(), 3);
        assert!(lsns.windows(2).all(|w| w[1] == w[0] + 1));
        s.commit(*lsns.last().unwrap()).unwrap();
        let want = BTreeMap::from([
            ("main.b1".to_string(), 1),
            ("main.b2".to_string(), 2),
            ("main.b3".to_string(), 3),
        ]);
        assert_eq!(contents(&s), want);
    }
    let r = verify(&d);
    assert!(r.problems.is_empty() && r.notes.is_empty(), "{r:?}");
    let s = open(&d, &f);
    assert_eq!(contents(&s).values().sum::<i64>(), 6);
}
