//! The block cache over a real S3-compatible server (Garage, on 127.0.0.1): a reader that
//! has answered a query once answers it again without fetching a byte from the bucket, the
//! same answers; the cache survives a restart, a damaged entry is fetched again, the
//! entries of blocks that leave the bucket go with them; blocks on the local disk are not
//! cached.

mod common;

use std::path::{Path, PathBuf};

use common::garage::*;
use common::*;
use gocost_store::{DAY_NS, Options, Store};

fn read_bytes(s: &Store) -> u64 {
    s.stats().block_read_bytes_total
}

/// Every entry file under `<data>/cache`.
fn entries(data: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(data.join("cache")) else {
        return out;
    };
    for d in rd {
        let d = d.unwrap().path();
        if !d.is_dir() {
            continue; // the cache's LOCK
        }
        for e in std::fs::read_dir(&d).unwrap() {
            out.push(e.unwrap().path());
        }
    }
    out.sort();
    out
}

#[cfg_attr(
    not(has_garage),
    ignore = "needs Garage: set $GARAGE or put garage on PATH"
)]
#[test]
fn a_second_query_fetches_nothing_and_answers_the_same() {
    let bin = garage_binary();
    let dir = std::env::temp_dir().join(format!("gocost-cache-s3-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let garage = start_garage(&bin, &dir.join("garage"));
    // A writer puts level-0 blocks into the bucket; the expected answers are its head's.
    let writer_dir = dir.join("writer");
    let w = Store::open(s3_options(&writer_dir, &garage.s3, "c"))
        .unwrap()
        .0;
    fill(&w);
    let head = answers(&w);
    assert!(w.flush(true).unwrap());
    assert!(w.stats().block_cache.is_some());

    // A reader on another data directory (another machine): its first queries fetch …
    let data = dir.join("reader");
    let (r, _) = Store::open(s3_options(&data, &garage.s3, "c")).unwrap();
    let opened = read_bytes(&r);
    assert!(opened > 0, "the blocks' indexes were read");
    assert_eq!(answers(&r), head);
    let first = read_bytes(&r) - opened;
    assert!(first > 0);
    let pts = points(&r);
    assert!(!pts.is_empty());
    // … and the same queries again fetch nothing, and answer the same.
    let before = read_bytes(&r);
    assert_eq!(answers(&r), head);
    assert_eq!(points(&r), pts);
    assert_eq!(
        read_bytes(&r),
        before,
        "a warm query fetched from the bucket"
    );
    let served = r.stats().block_cache.unwrap().served_bytes_total;
    assert!(served >= first, "served {served}, first fetched {first}");
    drop(r);

    // A restart keeps the cache: opening and querying fetch nothing.
    let (r, _) = Store::open(s3_options(&data, &garage.s3, "c")).unwrap();
    let cached = r.stats().block_cache.unwrap();
    assert!(cached.entries > 0 && cached.bytes > 0, "{cached:?}");
    assert_eq!(answers(&r), head);
    assert_eq!(read_bytes(&r), 0, "after a restart");
    drop(r);

    // A damaged entry (a flipped byte, a torn file) is fetched again, never served.
    let files = entries(&data);
    assert!(files.len() >= 2);
    let mut b = std::fs::read(&files[0]).unwrap();
    let last = b.len() - 1;
    b[last] ^= 0xff;
    std::fs::write(&files[0], b).unwrap();
    let b = std::fs::read(&files[1]).unwrap();
    std::fs::write(&files[1], &b[..b.len() / 2]).unwrap();
    let (r, _) = Store::open(s3_options(&data, &garage.s3, "c")).unwrap();
    assert_eq!(answers(&r), head);
    assert_eq!(points(&r), pts);
    let st = r.stats();
    assert_eq!(st.block_cache.unwrap().damaged_total, 2);
    let refetched = st.block_read_bytes_total;
    assert!(refetched > 0);
    assert_eq!(answers(&r), head);
    assert_eq!(read_bytes(&r), refetched);
    drop(r);

    // The writer compacts the day: its level-0 blocks leave the bucket. The reader drops
    // their entries when it opens, and caches the new block's.
    assert_eq!(w.compact(20_002 * DAY_NS).unwrap(), 1);
    let names: Vec<String> = w
        .blocks()
        .into_iter()
        .map(|b| format!("{}.gcb", b.id))
        .collect();
    let (r, _) = Store::open(s3_options(&data, &garage.s3, "c")).unwrap();
    let dirs: Vec<String> = std::fs::read_dir(data.join("cache"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n != "LOCK")
        .collect();
    assert!(
        dirs.iter().all(|d| names.contains(d)),
        "{dirs:?} vs {names:?}"
    );
    assert_eq!(answers(&r), head);
    let before = read_bytes(&r);
    assert_eq!(answers(&r), head);
    assert_eq!(read_bytes(&r), before);
    drop(r);

    // `block_cache_bytes = 0`: no cache; every query fetches.
    let mut o = s3_options(&dir.join("nocache"), &garage.s3, "c");
    o.block_cache_bytes = 0;
    let (r, _) = Store::open(o).unwrap();
    assert!(r.stats().block_cache.is_none());
    assert_eq!(answers(&r), head);
    let once = read_bytes(&r);
    assert_eq!(answers(&r), head);
    assert!(read_bytes(&r) > once);
    assert!(!dir.join("nocache/cache").exists());
    drop(r);
    drop(w);
    drop(garage);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn blocks_on_the_local_disk_are_not_cached() {
    let dir = std::env::temp_dir().join(format!("gocost-cache-local-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (s, _) = Store::open(Options::new(&dir)).unwrap();
    fill(&s);
    let head = answers(&s);
    assert!(s.flush(true).unwrap());
    assert_eq!(answers(&s), head);
    assert_eq!(answers(&s), head);
    assert!(s.stats().block_cache.is_none());
    assert!(s.stats().block_read_bytes_total > 0);
    assert!(!dir.join("cache").exists());
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}
