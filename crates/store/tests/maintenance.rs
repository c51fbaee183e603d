//! Block maintenance where it can lose data: a flush that meets a WAL payload that no longer
//! decodes keeps it (quarantine, log, counter) instead of deleting it; retention deletes a
//! block before it forgets it; block I/O from an async task is a typed error, not a panic.

mod common;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use common::*;
use gocost_store::{DAY_NS, Error, FaultHook, FaultPoint, Options, Selector, Store};

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("gocost-maint-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// The profiles (time, sample count) a query visits one by one.
fn visited(s: &Store, sel: &str) -> Vec<(i64, usize)> {
    let mut out = Vec::new();
    s.for_each_profile(
        &Selector::parse(sel).unwrap(),
        i64::MIN,
        i64::MAX,
        None,
        false,
        &mut |_, t, _, p| {
            out.push((t, p.sample.len()));
            Ok(())
        },
    )
    .unwrap();
    out.sort();
    out
}

/// Overwrites `payload` (found verbatim) in a WAL segment with bytes that are no profile,
/// and gives its record a checksum that matches again: a change on disk the WAL's CRC does
/// not catch. Returns the new segment bytes.
fn corrupt_payload(segment: &Path, payload: &[u8]) -> Vec<u8> {
    let mut b = std::fs::read(segment).unwrap();
    let at = b
        .windows(payload.len())
        .position(|w| w == payload)
        .expect("the payload is in the segment");
    // Records: [u32 len][u32 crc32 of the body][body], after an 8-byte magic.
    let mut off = 8;
    loop {
        let len = u32::from_le_bytes(b[off..off + 4].try_into().unwrap()) as usize;
        let body = off + 8..off + 8 + len;
        if body.contains(&at) {
            b[at..at + payload.len()].fill(0xff);
            let crc = crc32fast::hash(&b[body]);
            b[off + 4..off + 8].copy_from_slice(&crc.to_le_bytes());
            break;
        }
        off = body.end;
    }
    std::fs::write(segment, &b).unwrap();
    b
}

/// Overwrites the end of record `n` (0-based) of a WAL segment — an encoded profile's
/// sample columns — with bytes that do not parse, with a checksum that matches again.
/// Returns the new segment bytes.
fn corrupt_record(segment: &Path, n: usize) -> Vec<u8> {
    let mut b = std::fs::read(segment).unwrap();
    let mut off = 8;
    for _ in 0..n {
        off += 8 + u32::from_le_bytes(b[off..off + 4].try_into().unwrap()) as usize;
    }
    let len = u32::from_le_bytes(b[off..off + 4].try_into().unwrap()) as usize;
    let body = off + 8..off + 8 + len;
    b[body.end - 16..body.end].fill(0xff);
    let crc = crc32fast::hash(&b[body]);
    b[off + 4..off + 8].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(segment, &b).unwrap();
    b
}

/// A WAL segment as gocost wrote them before profiles were encoded on append (magic
/// `GCWAL001`, type 1 records: each profile as received).
fn v1_segment(records: &[(i64, String, &[u8])]) -> Vec<u8> {
    let mut out = b"GCWAL001".to_vec();
    for (t, key, payload) in records {
        let mut body = vec![1u8];
        body.extend_from_slice(&t.to_le_bytes());
        body.extend_from_slice(&(key.len() as u32).to_le_bytes());
        body.extend_from_slice(key.as_bytes());
        body.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        body.extend_from_slice(payload);
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
        out.extend_from_slice(&body);
    }
    out
}

#[test]
fn flush_quarantines_a_segment_with_an_undecodable_profile() {
    quarantine(false);
}

#[test]
fn a_segment_of_the_previous_version_is_replayed_cut_and_quarantined() {
    quarantine(true);
}

fn quarantine(v1: bool) {
    let dir = temp(if v1 { "quarantine-v1" } else { "quarantine" });
    let cpu = [
        testdata("cpu.pb.gz"),
        testdata("cpu2.pb.gz"),
        testdata("heap.pb.gz"),
    ];
    let k = key("cpu", "api", "a:1");
    let seg = dir.join("wal").join("00000001.wal");
    let bad = if v1 {
        std::fs::create_dir_all(dir.join("wal")).unwrap();
        let recs: Vec<(i64, String, &[u8])> = cpu
            .iter()
            .enumerate()
            .map(|(i, p)| (1_000 + i as i64, k.to_string(), p.as_slice()))
            .collect();
        std::fs::write(&seg, v1_segment(&recs)).unwrap();
        corrupt_payload(&seg, &cpu[1])
    } else {
        let (s, _) = Store::open(Options::new(&dir)).unwrap();
        for (i, p) in cpu.iter().enumerate() {
            s.append(&k, 1_000 + i as i64, p).unwrap();
        }
        s.sync().unwrap();
        drop(s);
        corrupt_record(&seg, 1)
    };

    let (s, report) = Store::open(Options::new(&dir)).unwrap();
    assert!(
        report.corrupt.is_empty(),
        "the checksum matches: {report:?}"
    );
    assert_eq!(s.stats().head_profiles, 3);
    assert!(s.flush(true).unwrap(), "a block of the good profiles");
    let st = s.stats();
    assert_eq!(st.undecodable_total, 1);
    assert_eq!(st.head_profiles, 0);
    assert_eq!(s.blocks().len(), 1);
    let good = visited(&s, "cpu");
    assert_eq!(good.iter().map(|x| x.0).collect::<Vec<_>>(), [1_000, 1_002]);
    // The segment is kept, as it was, under a name that says which block has the rest.
    assert!(!seg.exists());
    let kept: Vec<PathBuf> = std::fs::read_dir(dir.join("quarantine"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    let kept_name = kept[0].file_name().unwrap().to_string_lossy().to_string();
    assert_eq!(
        kept_name,
        format!("00000001-{}.wal", s.blocks()[0].id),
        "{kept:?}"
    );
    assert_eq!(std::fs::read(&kept[0]).unwrap(), bad);
    drop(s);

    // After a restart: the block is there, nothing is replayed twice, the segment is kept.
    let (s, report) = Store::open(Options::new(&dir)).unwrap();
    assert!(report.corrupt.is_empty(), "{report:?}");
    assert_eq!(s.stats().head_profiles, 0);
    assert_eq!(visited(&s, "cpu"), good);
    assert!(kept[0].exists());
    drop(s);
    let v = gocost_store::verify_dir(&Options::new(&dir)).unwrap();
    assert!(v.problems.is_empty(), "{:?}", v.problems);
    assert!(
        v.notes.iter().any(|n| n.contains(&kept_name)),
        "{:?}",
        v.notes
    );
    let (s, _) = Store::open(Options::new(&dir)).unwrap();
    // A flush of good data quarantines nothing.
    s.append(&k, 5_000, &cpu[0]).unwrap();
    s.sync().unwrap();
    assert!(s.flush(true).unwrap());
    assert_eq!(s.stats().undecodable_total, 0, "counted since start");
    assert_eq!(
        std::fs::read_dir(dir.join("quarantine")).unwrap().count(),
        1
    );
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

fn block_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir.join("blocks"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.ends_with(".gcb"))
        .collect();
    v.sort();
    v
}

#[test]
fn retention_deletes_a_block_before_it_forgets_it() {
    let dir = temp("retention");
    let fail_delete = Arc::new(AtomicBool::new(false));
    let f = fail_delete.clone();
    let mut opts = Options::new(&dir);
    opts.retention_ns = DAY_NS;
    opts.faults = Some(FaultHook(Arc::new(move |at| {
        (at == FaultPoint::BlobDelete && f.load(Ordering::SeqCst))
            .then(|| io::Error::other("injected: delete failed"))
    })));
    let (s, _) = Store::open(opts.clone()).unwrap();
    let k = key("cpu", "api", "a:1");
    s.append(&k, DAY_NS, &testdata("cpu.pb.gz")).unwrap();
    s.sync().unwrap();
    assert!(s.flush(true).unwrap());
    s.append(&k, 9 * DAY_NS, &testdata("cpu2.pb.gz")).unwrap();
    s.sync().unwrap();
    assert!(s.flush(true).unwrap());
    assert_eq!(block_files(&dir).len(), 2);
    let now = 10 * DAY_NS;

    // The deletion fails: the block stays in the catalog (and its data readable), the
    // failure is counted, and the next pass deletes it.
    fail_delete.store(true, Ordering::SeqCst);
    let e = s.apply_retention(now).unwrap_err();
    assert!(e.to_string().contains("injected"), "{e}");
    assert_eq!(s.blocks().len(), 2);
    assert_eq!(block_files(&dir).len(), 2);
    assert_eq!(s.stats().retention_errors_total, 1);
    assert_eq!(visited(&s, "cpu").len(), 2, "the block still answers");
    fail_delete.store(false, Ordering::SeqCst);
    s.apply_retention(now).unwrap();
    assert_eq!(s.blocks().len(), 1);
    assert_eq!(block_files(&dir), [format!("{}.gcb", s.blocks()[0].id)]);
    assert_eq!(
        visited(&s, "cpu").iter().map(|x| x.0).collect::<Vec<_>>(),
        [9 * DAY_NS]
    );
    drop(s);

    // A crash after a block's deletion, before the catalog forgot it: on restart the
    // catalog (read from block storage) has no entry for it, and nothing leaks.
    let (s, _) = Store::open(Options {
        faults: None,
        ..opts.clone()
    })
    .unwrap();
    s.append(&k, 11 * DAY_NS, &testdata("cpu.pb.gz")).unwrap();
    s.sync().unwrap();
    assert!(s.flush(true).unwrap());
    drop(s);
    let blocks_dir = dir.join("blocks");
    let crash_after_delete = Arc::new(Mutex::new(None::<String>));
    let c = crash_after_delete.clone();
    let mut crashing = opts.clone();
    crashing.faults = Some(FaultHook(Arc::new(move |at| {
        if at == FaultPoint::BlobDelete {
            // Delete the expired block here, then die before returning.
            if let Some(name) = c.lock().unwrap().clone() {
                std::fs::remove_file(blocks_dir.join(name)).unwrap();
                std::panic::resume_unwind(Box::new("crash after the delete"));
            }
        }
        None
    })));
    let (s, _) = Store::open(crashing).unwrap();
    let expired = format!("{}.gcb", s.blocks()[0].id);
    *crash_after_delete.lock().unwrap() = Some(expired.clone());
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        s.apply_retention(12 * DAY_NS)
    }));
    assert!(r.is_err(), "the crash happened");
    drop(s);
    let (s, report) = Store::open(opts).unwrap();
    assert!(report.corrupt.is_empty(), "{report:?}");
    assert!(
        s.blocks()
            .iter()
            .all(|b| format!("{}.gcb", b.id) != expired)
    );
    assert_eq!(s.blocks().len(), 1);
    assert_eq!(block_files(&dir), [format!("{}.gcb", s.blocks()[0].id)]);
    assert_eq!(
        visited(&s, "cpu").iter().map(|x| x.0).collect::<Vec<_>>(),
        [11 * DAY_NS]
    );
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn block_io_from_an_async_task_is_a_typed_error() {
    let dir = temp("async");
    let (s, _) = Store::open(Options::new(&dir)).unwrap();
    s.append(&key("cpu", "api", "a:1"), 1_000, &testdata("cpu.pb.gz"))
        .unwrap();
    s.sync().unwrap();
    assert!(s.flush(true).unwrap());
    let s = Arc::new(s);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let sel = Selector::parse("cpu").unwrap();
    // On a worker thread, and in a block_on.
    let (s1, sel1) = (s.clone(), sel.clone());
    let on_worker = rt
        .block_on(rt.spawn(async move { s1.query(&sel1, 0, 2_000).map(drop) }))
        .unwrap();
    let in_block_on = rt.block_on(async { s.query(&sel, 0, 2_000).map(drop) });
    for r in [on_worker, in_block_on] {
        match r {
            Err(Error::AsyncContext("get_range")) => {}
            other => panic!("{other:?}"),
        }
    }
    let e = Error::AsyncContext("get_range").to_string();
    assert!(e.contains("spawn_blocking"), "{e}");
    // From a blocking thread of the same runtime, it works.
    let (s2, sel2) = (s.clone(), sel.clone());
    let p = rt
        .block_on(rt.spawn_blocking(move || s2.query(&sel2, 0, 2_000)))
        .unwrap()
        .unwrap();
    assert!(p.is_some_and(|p| !p.sample.is_empty()));
    drop(rt);
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}
