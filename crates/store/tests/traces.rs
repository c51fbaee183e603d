//! Execution traces in the store (`docs/format/traces.md`): kept byte for byte across a
//! restart, listed by selector and time, a damaged file refused (never served), expired with
//! the retention, leftovers of a crash tidied at start.

use std::path::PathBuf;

use gocost_store::{Options, Selector, SeriesKey, Store};

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("gocost-traces-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn key(job: &str) -> SeriesKey {
    SeriesKey::new(
        "trace",
        [
            ("job".to_string(), job.to_string()),
            ("instance".to_string(), "127.0.0.1:1".to_string()),
        ],
    )
}

fn real_trace() -> Vec<u8> {
    std::fs::read(gocost_testkit::repo_root().join("testdata/traces/go1.27.trace")).expect("trace")
}

const T0: i64 = 1_700_000_000_000_000_000;

#[test]
fn kept_listed_checked_and_expired() {
    let d = dir("all");
    let trace = real_trace();
    let id = {
        let (s, _) = Store::open(Options::new(&d)).expect("open");
        let a = s.put_trace(&key("api"), T0, &trace).expect("put");
        s.put_trace(&key("db"), T0 + 5, b"go 1.22 trace\0\0\0")
            .expect("put");
        assert_eq!(a.bytes, trace.len() as u64);
        assert!(gocost_store::valid_trace_id(&a.id));
        a.id
    };
    // A crash's leftover and a foreign file are not traces.
    std::fs::write(d.join("traces/tmp-0000000000000001-00000000"), b"half").expect("write");
    std::fs::write(d.join("traces/README"), b"not ours").expect("write");

    let opts = Options::new(&d);
    let (s, report) = Store::open(opts).expect("reopen");
    assert!(report.corrupt.is_empty(), "{:?}", report.corrupt);
    assert!(!d.join("traces/tmp-0000000000000001-00000000").exists());
    let all = Selector::parse("trace{}").expect("selector");
    assert_eq!(s.traces(&all, 0, i64::MAX).len(), 2);
    let api = Selector::parse("trace{job=\"api\"}").expect("selector");
    let l = s.traces(&api, T0, T0);
    assert_eq!(l.len(), 1);
    assert_eq!(l[0].id, id);
    assert!(s.traces(&api, T0 + 1, i64::MAX).is_empty());
    let (info, back) = s.read_trace(&id).expect("read").expect("found");
    assert_eq!(back, trace);
    assert_eq!(info.key, key("api"));
    assert!(s.series().contains(&key("api")));
    assert_eq!(s.stats().traces, 2);
    assert!(
        s.read_trace("0000000000000000-00000000")
            .expect("read")
            .is_none()
    );

    // A flipped bit is an error naming the trace, not damaged bytes.
    let path = d.join(format!("traces/{id}.gctrace"));
    let mut bytes = std::fs::read(&path).expect("file");
    let n = bytes.len();
    bytes[n - 10] ^= 0x40;
    std::fs::write(&path, &bytes).expect("write");
    let e = s.read_trace(&id).expect_err("damaged");
    assert!(e.to_string().contains("checksum"), "{e}");
    assert!(gocost_store::check_trace_file(&bytes).is_err());

    // Retention drops traces older than it (relative to now).
    drop(s);
    let mut opts = Options::new(&d);
    opts.retention_ns = 10;
    let (s, _) = Store::open(opts).expect("reopen");
    s.apply_retention(T0 + 12).expect("retention");
    let left = s.traces(&all, 0, i64::MAX);
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].key, key("db"));
    assert!(!path.exists());
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn verify_reads_every_trace_and_repair_moves_a_damaged_one_aside() {
    let d = dir("verify");
    let trace = real_trace();
    let (good, bad) = {
        let (s, _) = Store::open(Options::new(&d)).expect("open");
        let a = s.put_trace(&key("api"), T0, &trace).expect("put");
        let b = s.put_trace(&key("db"), T0 + 5, &trace).expect("put");
        (a.id, b.id)
    };
    std::fs::write(d.join("traces/tmp-0000000000000001-00000000"), b"half").expect("write");
    let opts = Options::new(&d);
    let r = gocost_store::verify_dir(&opts).expect("verify");
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert_eq!(
        (r.traces, r.trace_bytes > 2 * trace.len() as u64),
        (2, true)
    );
    assert!(
        r.notes
            .iter()
            .any(|n| n.contains("tmp-") && n.contains("interrupted")),
        "{:?}",
        r.notes
    );

    // One byte of the trace itself flipped: verify names the file and the checksum, and
    // changes nothing.
    let path = d.join(format!("traces/{bad}.gctrace"));
    let mut bytes = std::fs::read(&path).expect("read");
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&path, &bytes).expect("write");
    let r = gocost_store::verify_dir(&opts).expect("verify");
    assert_eq!(r.traces, 1);
    assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
    assert!(
        r.problems[0].contains(&format!("{bad}.gctrace"))
            && r.problems[0].contains("checksum mismatch"),
        "{:?}",
        r.problems
    );
    assert_eq!(std::fs::read(&path).expect("still there"), bytes);

    // Repair moves it to damaged/ (evidence, not deleted); the other trace stays readable.
    let done = gocost_store::repair_dir(&opts, &r).expect("repair");
    assert!(done.iter().any(|l| l.contains(&bad)), "{done:?}");
    assert!(d.join(format!("damaged/{bad}.gctrace")).exists());
    let r = gocost_store::verify_dir(&opts).expect("verify");
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert_eq!(r.traces, 1);
    let (s, _) = Store::open(Options::new(&d)).expect("reopen");
    assert_eq!(s.read_trace(&good).expect("read").expect("found").1, trace);
    assert!(s.trace_info(&bad).is_none());
    let _ = std::fs::remove_dir_all(&d);
}
