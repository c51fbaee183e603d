//! Blocking profiles against `go tool trace -pprof=net|sync|syscall|sched` (Go 1.27.3's, which
//! reads the traces of every release): the profiles it wrote for the committed traces are
//! committed beside them (`go1.N.pprof-KIND.pb`), and the records must be the same — per
//! stack (by PCs, with the same function names, files and lines), the same count and delay.

use std::path::PathBuf;

use gocost_trace::BlockingKind;

mod common;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/traces")
}
use common::{go_records, our_records};

#[test]
fn equal_go_tool_trace_pprof() {
    let mut compared = 0;
    let mut waits = 0;
    for minor in [22, 23, 24, 25, 26, 27] {
        let trace = std::fs::read(dir().join(format!("go1.{minor}.trace"))).expect("trace");
        for kind in [
            BlockingKind::Net,
            BlockingKind::Sync,
            BlockingKind::Syscall,
            BlockingKind::Sched,
        ] {
            let golden = dir().join(format!("go1.{minor}.pprof-{}.pb", kind.name()));
            let want = go_records(&std::fs::read(&golden).expect("golden profile"));
            let got = our_records(&trace, kind);
            common::assert_same(&format!("go1.{minor} -pprof={}", kind.name()), &want, &got);
            compared += want.len();
            waits += want.values().map(|v| v.1).sum::<i64>();
        }
    }
    eprintln!("{compared} stacks, {waits} waits equal go tool trace -pprof");
    assert!(compared > 50);
}
