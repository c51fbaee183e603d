//! Bad input: a clear error, never a panic.

use std::path::PathBuf;

use gocost_trace::{ErrorKind, Reader};

fn read(name: &str) -> Vec<u8> {
    std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../testdata/traces")
            .join(name),
    )
    .expect("trace")
}

fn drain(b: &[u8]) -> Result<usize, gocost_trace::Error> {
    let mut n = 0;
    for ev in Reader::new(b)? {
        ev?;
        n += 1;
    }
    Ok(n)
}

#[test]
fn refuses_go_1_21_naming_the_version() {
    let e = Reader::new(&read("go1.21.trace")).err().expect("refused");
    assert_eq!(e.kind, ErrorKind::UnsupportedVersion { go_minor: 21 });
    assert!(e.to_string().contains("Go 1.21"), "{e}");
    for minor in [5, 11, 19] {
        let mut h = format!("go 1.{minor} trace").into_bytes();
        h.resize(16, 0);
        let e = Reader::new(&h).err().expect("refused");
        assert!(e.to_string().contains(&format!("Go 1.{minor} ")), "{e}");
    }
}

#[test]
fn refuses_unknown_versions_and_non_traces() {
    let e = Reader::new(b"go 1.24 trace\0\0\0").err().expect("refused");
    assert_eq!(e.kind, ErrorKind::UnsupportedVersion { go_minor: 24 });
    for junk in [
        &b""[..],
        b"go 1.",
        b"not a trace at all",
        b"go 1.22 trace",
        b"go 1.22 traceXXX",
    ] {
        let e = Reader::new(junk).err().expect("refused");
        assert_eq!(e.kind, ErrorKind::NotATrace, "{junk:?}");
    }
}

#[test]
fn every_truncation_is_an_error_or_a_shorter_stream() {
    for minor in [22, 23, 25, 26, 27] {
        let t = read(&format!("go1.{minor}.trace"));
        let full = drain(&t).expect("whole trace");
        // Every prefix (stepping to keep the test fast) reads without panicking.
        let mut errors = 0;
        for cut in (16..t.len()).step_by(29) {
            match drain(&t[..cut]) {
                Ok(n) => assert!(
                    n <= full + 2,
                    "go1.{minor} cut at {cut}: {n} events of {full}"
                ),
                Err(e) => {
                    errors += 1;
                    assert!(!e.message.is_empty());
                    if let Some(o) = e.offset {
                        assert!(o <= cut, "go1.{minor} cut at {cut}: error at {o}: {e}");
                    }
                }
            }
        }
        assert!(errors > 0, "go1.{minor}: no truncation was an error");
    }
}

#[test]
fn truncation_in_a_batch_names_the_offset() {
    let t = read("go1.27.trace");
    let cut = t.len() / 2;
    let e = drain(&t[..cut]).expect_err("truncated");
    assert_eq!(e.kind, ErrorKind::Truncated, "{e}");
    assert!(e.offset.is_some_and(|o| o <= cut), "{e}");
}

#[test]
fn corrupted_bytes_never_panic() {
    // Deterministic corruption: flip bytes at pseudo-random offsets.
    for minor in [22, 25, 27] {
        let t = read(&format!("go1.{minor}.trace"));
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..100 {
            let mut c = t.clone();
            for _ in 0..3 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let i = 16 + (x as usize) % (c.len() - 16);
                c[i] ^= (x >> 32) as u8 | 1;
            }
            let _ = drain(&c);
            let _ = gocost_trace::text::parsed(&c, gocost_trace::text::Dialect::LATEST);
        }
    }
}

#[test]
fn oversized_fields_are_refused_with_their_limit() {
    // A batch header claiming 1 MiB of data.
    let mut t = b"go 1.22 trace\0\0\0".to_vec();
    t.extend([1, 1, 0, 0, 0x80, 0x80, 0x40]);
    let e = drain(&t).expect_err("refused");
    assert!(e.message.contains("invalid batch size"), "{e}");
    assert_eq!(e.offset, Some(20));
    // A string over 1 KiB.
    let mut t = b"go 1.22 trace\0\0\0".to_vec();
    t.extend([1, 1, 0, 0, 5, 4, 5, 1, 0x81, 0x10]);
    let e = drain(&t).expect_err("refused");
    assert!(e.message.contains("invalid string size 2049"), "{e}");
    // The trace size limit.
    let opts = gocost_trace::Options {
        limits: gocost_trace::Limits {
            max_trace_bytes: 100,
            ..Default::default()
        },
        ..Default::default()
    };
    let e = Reader::with_options(&read("go1.22.trace"), opts)
        .err()
        .expect("refused");
    assert_eq!(e.kind, ErrorKind::TooLarge);
}

/// Crashers the fuzzer found, replayed.
#[test]
fn fuzz_regressions() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/regressions/trace");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    for e in entries.flatten() {
        let b = std::fs::read(e.path()).expect("read");
        let _ = drain(&b);
        let _ = gocost_trace::text::parsed(&b, gocost_trace::text::Dialect::LATEST);
    }
}
