//! Blocks in a real S3-compatible server (Garage, on 127.0.0.1): the same data answers the
//! same queries as from the WAL head, after compaction and after a restart that reads the
//! catalog back from the bucket.

mod common;

use std::path::PathBuf;

use common::garage::*;
use common::*;
use gocost_store::{DAY_NS, Store};

#[cfg_attr(
    not(has_garage),
    ignore = "needs Garage: set $GARAGE or put garage on PATH"
)]
#[test]
fn blocks_live_in_a_real_s3_compatible_server() {
    let bin = garage_binary();
    let dir = std::env::temp_dir().join(format!("gocost-s3-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let garage = start_garage(&bin, &dir.join("garage"));
    let data = dir.join("data");
    let (s, _) = Store::open(s3_options(&data, &garage.s3, "team/a")).unwrap();
    assert!(s.blocks_location().starts_with("s3://gocost/team/a"));
    fill(&s);
    let head = answers(&s);
    assert!(s.flush(true).unwrap());
    assert_eq!(answers(&s), head);
    assert_eq!(
        s.compact(20_002 * DAY_NS).unwrap(),
        1,
        "one block, one day to compact"
    );
    assert_eq!(answers(&s), head);
    assert_eq!(s.verify().unwrap(), Vec::<String>::new());
    let ids: Vec<String> = s.blocks().into_iter().map(|b| b.id).collect();
    drop(s);
    // Nothing went to the local disk but the WAL.
    let local: Vec<PathBuf> = std::fs::read_dir(&data)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().is_some_and(|n| n == "blocks"))
        .collect();
    assert!(local.is_empty(), "{local:?}");

    // A fresh data directory (another machine) sees the same blocks in the bucket.
    let (s, r) = Store::open(s3_options(&dir.join("data2"), &garage.s3, "team/a")).unwrap();
    assert!(r.corrupt.is_empty(), "{r:?}");
    let mut again: Vec<String> = s.blocks().into_iter().map(|b| b.id).collect();
    again.sort();
    let mut ids = ids;
    ids.sort();
    assert_eq!(again, ids);
    assert_eq!(answers(&s), head);
    // Another prefix is another store.
    drop(s);
    let (s, _) = Store::open(s3_options(&dir.join("data3"), &garage.s3, "team/b")).unwrap();
    assert!(s.blocks().is_empty());
    drop(s);
    drop(garage);
    let _ = std::fs::remove_dir_all(&dir);
}
