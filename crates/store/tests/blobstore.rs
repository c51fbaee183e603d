//! One conformance suite for every block storage backend ([`gocost_store::BlobStore`]): the
//! local filesystem, and a real S3-compatible server (Garage, on 127.0.0.1). Puts, ranged
//! reads, lists, deletes; uploads larger than a part (multipart on S3, checked by the server's
//! ETag); puts that fail or are interrupted at every step the backend takes leave no object
//! that readers would trust; calls from async tasks are refused; and a damaged block object is
//! not trusted by the store.

mod common;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use common::garage::*;
use common::*;
use gocost_store::{
    BlobConfig, BlobStore, Error, FaultHook, FaultPoint, Options, PART_SIZE, Selector, Store,
    open_blob_store, probe_conditional_put,
};

/// What the fault hook does at the points it is armed for.
#[derive(Clone, Copy, PartialEq)]
enum Act {
    /// Fail the step with an I/O error (the backend cleans up as it does for real errors).
    Fail,
    /// Stop there as a crash would: unwind without any cleanup.
    Crash,
}

#[derive(Default)]
struct Faults {
    armed: Option<(FaultPoint, Act)>,
    seen: Vec<FaultPoint>,
}

struct Backend {
    name: &'static str,
    cfg: BlobConfig,
    data: PathBuf,
    scratch: PathBuf,
    faults: Arc<Mutex<Faults>>,
    blobs: Box<dyn BlobStore>,
    s3_endpoint: Option<String>,
}

impl Backend {
    fn new(name: &'static str, cfg: BlobConfig, dir: &Path, s3_endpoint: Option<String>) -> Self {
        let data = dir.join("data");
        let scratch = dir.join("scratch");
        std::fs::create_dir_all(&scratch).unwrap();
        let faults = Arc::new(Mutex::new(Faults::default()));
        let f = faults.clone();
        let hook = FaultHook(Arc::new(move |at| {
            let armed = {
                let mut f = f.lock().unwrap();
                f.seen.push(at);
                f.armed
            };
            match armed {
                Some((p, Act::Fail)) if p == at => {
                    Some(io::Error::other(format!("injected at {at:?}")))
                }
                Some((p, Act::Crash)) if p == at => {
                    std::panic::resume_unwind(Box::new(format!("crash injected at {at:?}")))
                }
                _ => None,
            }
        }));
        let blobs = open_blob_store(&cfg, &data, Some(hook)).unwrap();
        Backend {
            name,
            cfg,
            data,
            scratch,
            faults,
            blobs,
            s3_endpoint,
        }
    }

    fn arm(&self, a: Option<(FaultPoint, Act)>) {
        let mut f = self.faults.lock().unwrap();
        f.armed = a;
        f.seen.clear();
    }

    fn seen(&self) -> Vec<FaultPoint> {
        self.faults.lock().unwrap().seen.clone()
    }

    /// A file of `len` bytes of `seed`'s pseudo-random content.
    fn file(&self, name: &str, len: usize, seed: u64) -> (PathBuf, Vec<u8>) {
        let bytes = pseudo_random(len, seed);
        let p = self.scratch.join(name);
        std::fs::write(&p, &bytes).unwrap();
        (p, bytes)
    }

    fn names(&self) -> Vec<String> {
        self.blobs
            .list(".gcb")
            .unwrap()
            .into_iter()
            .map(|l| l.name)
            .collect()
    }

    fn whole(&self, name: &str) -> Vec<u8> {
        let size = self
            .blobs
            .list(".gcb")
            .unwrap()
            .into_iter()
            .find(|l| l.name == name)
            .unwrap_or_else(|| panic!("{}: {name} not listed", self.name))
            .size;
        self.blobs.get_range(name, 0..size).unwrap()
    }
}

fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn is_not_found(e: &Error) -> bool {
    matches!(e, Error::Io(io) if io.kind() == io::ErrorKind::NotFound)
}

fn conformance(b: &Backend) {
    let who = b.name;
    // Empty.
    assert!(b.names().is_empty(), "{who}: {:?}", b.names());
    let e = b.blobs.get_range("none.gcb", 0..1).unwrap_err();
    assert!(is_not_found(&e), "{who}: {e}");
    b.blobs.delete("none.gcb").unwrap();

    // Put, list, ranged reads.
    let (p, small) = b.file("small", 10_000, 1);
    b.arm(None);
    b.blobs.put_file("a.gcb", &p).unwrap();
    let small_steps = b.seen();
    assert!(!p.exists(), "{who}: the put file is moved away");
    let listed = b.blobs.list(".gcb").unwrap();
    assert_eq!(listed.len(), 1, "{who}");
    assert_eq!((listed[0].name.as_str(), listed[0].size), ("a.gcb", 10_000));
    assert!(b.blobs.list(".other").unwrap().is_empty(), "{who}");
    assert_eq!(b.blobs.get_range("a.gcb", 0..10_000).unwrap(), small);
    for r in [0..1u64, 100..4_000, 9_999..10_000, 5..5] {
        let got = b.blobs.get_range("a.gcb", r.clone()).unwrap();
        assert_eq!(got, small[r.start as usize..r.end as usize], "{who}: {r:?}");
    }
    assert!(
        b.blobs.get_range("a.gcb", 9_000..10_001).is_err(),
        "{who}: past the end"
    );

    // A put of an existing name replaces it.
    let (p, other) = b.file("small2", 3_000, 2);
    b.blobs.put_file("a.gcb", &p).unwrap();
    assert_eq!(b.whole("a.gcb"), other, "{who}");

    // Larger than a part: on S3 a multipart upload of three parts.
    let big_len = 2 * PART_SIZE + 12_345;
    let (p, big) = b.file("big", big_len, 3);
    b.arm(None);
    b.blobs.put_file("big.gcb", &p).unwrap();
    let steps = b.seen();
    assert_eq!(b.whole("big.gcb"), big, "{who}");
    for at in [PART_SIZE as u64 - 7, 2 * PART_SIZE as u64 - 1] {
        assert_eq!(
            b.blobs.get_range("big.gcb", at..at + 9).unwrap(),
            big[at as usize..at as usize + 9],
            "{who}: across a part boundary at {at}"
        );
    }
    if let Some(endpoint) = &b.s3_endpoint {
        assert_eq!(
            steps,
            [
                FaultPoint::BlobPart(1),
                FaultPoint::BlobPart(2),
                FaultPoint::BlobPart(3),
                FaultPoint::BlobComplete
            ],
            "{who}"
        );
        let etag = server_etag(endpoint, &b.cfg, "big.gcb");
        assert!(
            etag.trim_matches('"').ends_with("-3"),
            "{who}: the server did not see a three-part upload: ETag {etag}"
        );
    }
    assert!(
        !steps.is_empty() && !small_steps.is_empty(),
        "{who}: puts go through fault points"
    );

    // A put that fails at any step leaves no object, and the file for a retry.
    let mut cases: Vec<(usize, FaultPoint)> = small_steps.iter().map(|&s| (10_000, s)).collect();
    cases.extend(steps.iter().map(|&s| (big_len, s)));
    for &(len, at) in &cases {
        let (p, _) = b.file("failing", len, 4);
        b.arm(Some((at, Act::Fail)));
        let e = b.blobs.put_file("failed.gcb", &p).unwrap_err();
        b.arm(None);
        assert!(e.to_string().contains("injected"), "{who} at {at:?}: {e}");
        assert!(
            !b.names().contains(&"failed.gcb".to_string()),
            "{who} at {at:?}: visible"
        );
        let e = b.blobs.get_range("failed.gcb", 0..1).unwrap_err();
        assert!(is_not_found(&e), "{who} at {at:?}: {e}");
        assert!(p.exists(), "{who} at {at:?}: the file is kept for a retry");
        std::fs::remove_file(&p).unwrap();
    }
    // Interrupted (the process dies) at any step: whole or nothing.
    for &(len, at) in &cases {
        let (p, bytes) = b.file("crashing", len, 5);
        b.arm(Some((at, Act::Crash)));
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            b.blobs.put_file("crashed.gcb", &p)
        }));
        b.arm(None);
        assert!(r.is_err(), "{who} at {at:?}: the crash happened");
        if b.names().contains(&"crashed.gcb".to_string()) {
            assert!(
                b.whole("crashed.gcb") == bytes,
                "{who} at {at:?}: a partial object"
            );
            b.blobs.delete("crashed.gcb").unwrap();
        }
        if b.s3_endpoint.is_some() {
            assert!(
                !b.names().contains(&"crashed.gcb".to_string()),
                "{who} at {at:?}"
            );
        }
        let _ = std::fs::remove_file(&p);
    }
    // Retried after all that, the name takes the new object whole.
    let (p, retry) = b.file("retry", big_len, 6);
    b.blobs.put_file("failed.gcb", &p).unwrap();
    assert!(b.whole("failed.gcb") == retry, "{who}: the retry");

    // Delete: a failed one keeps the object; a missing name is no error.
    b.arm(Some((FaultPoint::BlobDelete, Act::Fail)));
    assert!(b.blobs.delete("a.gcb").is_err(), "{who}");
    b.arm(None);
    assert_eq!(b.whole("a.gcb"), other, "{who}");
    for n in ["a.gcb", "big.gcb", "failed.gcb"] {
        b.blobs.delete(n).unwrap();
        b.blobs.delete(n).unwrap();
    }
    assert!(b.names().is_empty(), "{who}: {:?}", b.names());

    // From a thread that drives async tasks every call is refused, and does nothing; from
    // a blocking thread of the same runtime it works.
    let (p, _) = b.file("async", 100, 7);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let refused = [
            b.blobs.put_file("x.gcb", &p).map(drop),
            b.blobs.get_range("x.gcb", 0..1).map(drop),
            b.blobs.list(".gcb").map(drop),
            b.blobs.delete("x.gcb"),
        ];
        for (r, op) in refused
            .into_iter()
            .zip(["put_file", "get_range", "list", "delete"])
        {
            match r {
                Err(Error::AsyncContext(o)) => assert_eq!(o, op, "{who}"),
                other => panic!("{who}: {op} from an async task: {other:?}"),
            }
        }
    });
    assert!(
        p.exists() && b.names().is_empty(),
        "{who}: nothing was done"
    );
    let blobs: Arc<dyn BlobStore> = Arc::from(open_blob_store(&b.cfg, &b.data, None).unwrap());
    let (bl, pp) = (blobs.clone(), p.clone());
    rt.block_on(async move {
        tokio::task::spawn_blocking(move || bl.put_file("x.gcb", &pp))
            .await
            .unwrap()
            .unwrap();
    });
    assert_eq!(
        blobs.get_range("x.gcb", 0..100).unwrap(),
        pseudo_random(100, 7)
    );
    blobs.delete("x.gcb").unwrap();

    // Small whole objects in a sub-directory (the bucket index): absent, written, replaced
    // whole, listed by themselves (never among the blocks), and blocks not among them.
    assert_eq!(b.blobs.get("index/a.json").unwrap(), None, "{who}");
    assert!(b.blobs.list_dir("index").unwrap().is_empty(), "{who}");
    b.blobs.put_bytes("index/a.json", b"{\"v\":1}").unwrap();
    b.blobs.put_bytes("index/a.json", b"{\"v\":22}").unwrap();
    b.blobs.put_bytes("index/b.json", b"{}").unwrap();
    assert_eq!(
        b.blobs.get("index/a.json").unwrap().as_deref(),
        Some(&b"{\"v\":22}"[..]),
        "{who}"
    );
    let listed = b.blobs.list_dir("index").unwrap();
    let names: Vec<(&str, u64)> = listed.iter().map(|l| (l.name.as_str(), l.size)).collect();
    assert_eq!(names, [("a.json", 8), ("b.json", 2)], "{who}");
    assert!(b.blobs.list(".json").unwrap().is_empty(), "{who}");
    b.blobs.delete("index/a.json").unwrap();
    b.blobs.delete("index/b.json").unwrap();
    assert!(b.blobs.list_dir("index").unwrap().is_empty(), "{who}");

    // Create-only puts (the compactor lease, docs/adr/0022): honoured, or found not to be
    // by the probe, which leaves nothing behind. Garage 2.5.0 ignores If-None-Match.
    let honoured = probe_conditional_put(b.blobs.as_ref(), "lease/probe").unwrap();
    assert!(b.blobs.list_dir("lease").unwrap().is_empty(), "{who}");
    assert_eq!(honoured, b.name != "garage", "{who}");
    if honoured {
        assert!(b.blobs.put_new("lease/x", b"1").unwrap(), "{who}");
        assert!(!b.blobs.put_new("lease/x", b"2").unwrap(), "{who}");
        assert_eq!(
            b.blobs.get("lease/x").unwrap().as_deref(),
            Some(&b"1"[..]),
            "{who}"
        );
        b.blobs.delete("lease/x").unwrap();
    }
}

/// The ETag the server gives an object, asked through a client of the test's own.
fn server_etag(endpoint: &str, cfg: &BlobConfig, name: &str) -> String {
    use object_store::ObjectStoreExt;
    let BlobConfig::S3(s) = cfg else {
        panic!("not S3")
    };
    let os = object_store::aws::AmazonS3Builder::new()
        .with_bucket_name(&s.bucket)
        .with_region(&s.region)
        .with_access_key_id(&s.access_key_id)
        .with_secret_access_key(&s.secret_access_key)
        .with_allow_http(true)
        .with_endpoint(endpoint)
        .build()
        .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let path = object_store::path::Path::from(format!("{}/{name}", s.prefix));
    let meta = rt.block_on(os.head(&path)).unwrap();
    meta.e_tag.unwrap_or_default()
}

/// A block object that is there but damaged (cut short, as a copy that was not whole would
/// be) is not trusted: the store skips it, says so, and answers from the others.
fn damaged_block_is_not_trusted(b: &Backend) {
    let who = b.name;
    let mut opts = Options::new(&b.data);
    opts.blobs = b.cfg.clone();
    let (s, _) = Store::open(opts.clone()).unwrap();
    s.append(&key("cpu", "api", "a:1"), 1_000, &testdata("cpu.pb.gz"))
        .unwrap();
    s.sync().unwrap();
    assert!(s.flush(true).unwrap());
    let sel = Selector::parse("cpu").unwrap();
    let want = canon(&s.query(&sel, 0, 2_000).unwrap().unwrap());
    let name = format!("{}.gcb", s.blocks()[0].id);
    drop(s);
    let whole = b.whole(&name);
    let cut = b.scratch.join("cut");
    std::fs::write(&cut, &whole[..whole.len() - 100]).unwrap();
    b.blobs.put_file("L0-damaged.gcb", &cut).unwrap();
    let (s, report) = Store::open(opts).unwrap();
    assert!(
        report.corrupt.iter().any(|c| c.contains("L0-damaged.gcb")),
        "{who}: {report:?}"
    );
    assert_eq!(s.blocks().len(), 1, "{who}");
    assert_eq!(
        canon(&s.query(&sel, 0, 2_000).unwrap().unwrap()),
        want,
        "{who}"
    );
    drop(s);
    for n in b.names() {
        b.blobs.delete(&n).unwrap();
    }
}

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("gocost-blobs-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[test]
fn local_filesystem_conforms() {
    let dir = temp("local");
    let b = Backend::new("local", BlobConfig::Local, &dir, None);
    conformance(&b);
    damaged_block_is_not_trusted(&b);
    drop(b);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn shared_directory_conforms() {
    let dir = temp("dir");
    let b = Backend::new("dir", BlobConfig::Dir(dir.join("bucket")), &dir, None);
    conformance(&b);
    damaged_block_is_not_trusted(&b);
    drop(b);
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg_attr(
    not(has_garage),
    ignore = "needs Garage: set $GARAGE or put garage on PATH"
)]
#[test]
fn garage_conforms() {
    let bin = garage_binary();
    let dir = temp("garage");
    let garage = start_garage(&bin, &dir.join("garage"));
    let prefix = format!("conformance/{}", std::process::id());
    let b = Backend::new(
        "garage",
        s3_config(&garage.s3, &prefix),
        &dir,
        Some(garage.s3.clone()),
    );
    conformance(&b);
    damaged_block_is_not_trusted(&b);
    drop(b);
    drop(garage);
    let _ = std::fs::remove_dir_all(&dir);
}
