//! Where blocks live, behind one trait, [`BlobStore`]: a local directory ([`LocalBlobs`]) or
//! an S3-compatible bucket through `object_store` ([`ObjectBlobs`]). Both pass one
//! conformance suite (`tests/blobstore.rs`).
//!
//! The store's API is synchronous. `ObjectBlobs` drives `object_store`'s futures on a small
//! runtime of its own, so its calls must come from blocking threads, never from a thread that
//! drives async tasks (tokio refuses to block one); both backends answer such a call with
//! [`Error::AsyncContext`] instead of doing it.

use std::cell::Cell;
use std::io::Read;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Once, OnceLock};

use object_store::path::Path as ObjPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use crate::Error;
use crate::wal::{FaultHook, FaultPoint};

/// Where blocks are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobConfig {
    /// `<data>/blocks/` on the local disk (the default).
    Local,
    /// An S3-compatible bucket.
    S3(S3Config),
    /// A directory that several stores may share, through `object_store`'s local file
    /// system (a bucket on a disk: tests of instances over one bucket, a shared mount).
    Dir(PathBuf),
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct S3Config {
    pub bucket: String,
    /// Key prefix inside the bucket ("" = the bucket's root).
    pub prefix: String,
    /// e.g. `http://127.0.0.1:3900`; empty = AWS.
    pub endpoint: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Allow `http://` endpoints.
    pub allow_http: bool,
}

/// One listed object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub name: String,
    pub size: u64,
}

/// Uploads larger than this go up in parts of this size (S3 multipart).
pub const PART_SIZE: usize = 16 << 20;

/// [`BlobStore::get_many`] over a network: ranges of one object closer than this are
/// fetched as one request (the bytes between them read and dropped) …
pub const MERGE_GAP: u64 = 64 << 10;
/// … as long as the merged request stays under this;
pub const MERGE_MAX: u64 = 16 << 20;
/// and at most this many requests are in flight at once.
pub const GET_CONCURRENCY: usize = 16;

/// One request of a [`BlobStore::get_many`]: a range of one object and the asked ranges
/// inside it (their index in the call, their range in the object).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fetch {
    pub(crate) name: String,
    pub(crate) range: Range<u64>,
    pub(crate) parts: Vec<(usize, Range<u64>)>,
}

/// The requests that fetch `want`: per object, ranges that overlap or lie within `gap`
/// bytes of each other merged while the merged range stays within `max` bytes (a single
/// larger range is one request). Empty ranges need no request.
pub(crate) fn coalesce(want: &[(&str, Range<u64>)], gap: u64, max: u64) -> Vec<Fetch> {
    let mut order: Vec<usize> = (0..want.len()).filter(|&i| !want[i].1.is_empty()).collect();
    order.sort_by(|&a, &b| {
        (want[a].0, want[a].1.start, want[a].1.end).cmp(&(
            want[b].0,
            want[b].1.start,
            want[b].1.end,
        ))
    });
    let mut out: Vec<Fetch> = Vec::new();
    for i in order {
        let (name, r) = (want[i].0, &want[i].1);
        if let Some(f) = out.last_mut()
            && f.name == name
            && r.start <= f.range.end.saturating_add(gap)
            && r.end.max(f.range.end) - f.range.start <= max
        {
            f.range.end = f.range.end.max(r.end);
            f.parts.push((i, r.clone()));
            continue;
        }
        out.push(Fetch {
            name: name.to_string(),
            range: r.clone(),
            parts: vec![(i, r.clone())],
        });
    }
    out
}

/// Block storage: flat names (no `/`) to immutable objects.
///
/// Every backend keeps these promises (checked by `tests/blobstore.rs` against each):
/// an object appears whole or not at all — a put that fails or is interrupted (the process
/// dies) leaves no object under its name; a put of a name that exists replaces it; `delete`
/// of a missing name succeeds; ranged reads return exactly the bytes asked for or fail;
/// every call made from a thread that drives async tasks fails with
/// [`Error::AsyncContext`] and does nothing.
pub trait BlobStore: Send + Sync {
    /// Where the objects are, for logs: a directory, or `s3://bucket/prefix`.
    fn describe(&self) -> &str;
    /// Moves a finished local file into the store as `name` (durably: after `Ok` a crash
    /// cannot lose it). On success the file is gone; on failure it is left where it was.
    fn put_file(&self, name: &str, path: &Path) -> Result<(), Error>;
    /// Bytes `r` of object `name`.
    fn get_range(&self, name: &str, r: Range<u64>) -> Result<Vec<u8>, Error>;
    /// The bytes of several ranges of objects, in the order asked; all or an error. A
    /// backend over a network fetches them at once ([`coalesce`]d: near ranges of one
    /// object in one request, [`GET_CONCURRENCY`] requests in flight); by default they are
    /// read one after another.
    fn get_many(&self, want: &[(&str, Range<u64>)]) -> Result<Vec<Vec<u8>>, Error> {
        want.iter()
            .map(|(name, r)| self.get_range(name, r.clone()))
            .collect()
    }
    /// Bytes of objects read by ranged reads since the backend was opened (for a bucket,
    /// what came over the network, the gaps of merged requests included).
    fn read_bytes(&self) -> u64 {
        0
    }
    /// Objects whose names end in `suffix`.
    fn list(&self, suffix: &str) -> Result<Vec<Listed>, Error>;
    /// Deletes `name`; deleting a missing name is not an error.
    fn delete(&self, name: &str) -> Result<(), Error>;
    /// The directory holding the objects as files, if the backend is local.
    fn local_dir(&self) -> Option<&Path> {
        None
    }
    /// Writes a small object `name` (which may name one sub-directory, `dir/file`) whole,
    /// replacing what was there: a reader sees the old bytes or the new ones, never a mix.
    /// For the bucket index (docs/format/bucket.md), not for blocks.
    fn put_bytes(&self, name: &str, bytes: &[u8]) -> Result<(), Error>;
    /// The whole object `name`, or `None` if there is none.
    fn get(&self, name: &str) -> Result<Option<Vec<u8>>, Error>;
    /// Objects directly under the sub-directory `dir` (names without `dir/`).
    fn list_dir(&self, dir: &str) -> Result<Vec<Listed>, Error>;
    /// Writes a small object `name` only if there is none of that name (a conditional
    /// put: `If-None-Match: *`): `Ok(true)` written, `Ok(false)` one exists (nothing
    /// written). A backend that cannot do it answers an error of kind `Unsupported`; one
    /// that silently ignores the condition is found by [`probe_conditional_put`].
    fn put_new(&self, name: &str, bytes: &[u8]) -> Result<bool, Error>;
}

/// Whether `blobs` honours [`BlobStore::put_new`]: a probe object written twice with it,
/// the second time refused. `Ok(false)`: the backend answers but ignores the condition
/// (Garage 2.5.0 overwrites), or cannot do it at all. The probe object is deleted again.
pub fn probe_conditional_put(blobs: &dyn BlobStore, name: &str) -> Result<bool, Error> {
    for _ in 0..2 {
        match blobs.put_new(name, b"probe 1") {
            Ok(true) => {
                let second = blobs.put_new(name, b"probe 2");
                blobs.delete(name)?;
                return Ok(!second?);
            }
            // A leftover of an earlier probe: again with it gone.
            Ok(false) => blobs.delete(name)?,
            Err(Error::Io(e)) if e.kind() == std::io::ErrorKind::Unsupported => return Ok(false),
            Err(e) => return Err(e),
        }
    }
    Ok(false)
}

/// Opens the block storage `cfg` names for the data directory `data_dir`, creating the
/// local `blocks/` directory if needed. `faults` are for tests.
pub fn open_blob_store(
    cfg: &BlobConfig,
    data_dir: &Path,
    faults: Option<FaultHook>,
) -> Result<Box<dyn BlobStore>, Error> {
    open_with(cfg, data_dir, true, faults)?.ok_or_else(|| Error::Io(io_err("no block storage")))
}

/// Opens block storage without creating anything: `None` when the local `blocks/`
/// directory does not exist (no block was ever written).
pub(crate) fn open_existing(
    cfg: &BlobConfig,
    data_dir: &Path,
) -> Result<Option<Box<dyn BlobStore>>, Error> {
    open_with(cfg, data_dir, false, None)
}

fn open_with(
    cfg: &BlobConfig,
    data_dir: &Path,
    create: bool,
    faults: Option<FaultHook>,
) -> Result<Option<Box<dyn BlobStore>>, Error> {
    match cfg {
        BlobConfig::Local => {
            let dir: PathBuf = data_dir.join("blocks");
            if create {
                std::fs::create_dir_all(&dir)?;
            } else if !dir.is_dir() {
                return Ok(None);
            }
            Ok(Some(Box::new(LocalBlobs {
                describe: dir.display().to_string(),
                dir,
                faults,
                read: AtomicU64::new(0),
            })))
        }
        BlobConfig::S3(s) => Ok(Some(Box::new(ObjectBlobs::s3(s, faults)?))),
        BlobConfig::Dir(dir) => {
            if create {
                std::fs::create_dir_all(dir)?;
            } else if !dir.is_dir() {
                return Ok(None);
            }
            Ok(Some(Box::new(ObjectBlobs::dir(dir, faults)?)))
        }
    }
}

fn io_err(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

fn fault(h: &Option<FaultHook>, at: FaultPoint) -> std::io::Result<()> {
    match h.as_ref().and_then(|h| (h.0)(at)) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

thread_local! {
    /// Set while [`blocking_allowed`] probes, so that tokio's refusal is not printed.
    static PROBING: Cell<bool> = const { Cell::new(false) };
}

/// Whether this thread may block: it is not driving async tasks. Tokio has no question for
/// this, only a refusal: entering a runtime from such a thread panics before it does
/// anything. So this enters one (with a future that is ready at once), and catches the
/// refusal (keeping it out of the panic hook's output).
fn blocking_allowed(rt: &tokio::runtime::Runtime) -> bool {
    if tokio::runtime::Handle::try_current().is_err() {
        return true; // no runtime on this thread at all
    }
    static QUIET: Once = Once::new();
    QUIET.call_once(|| {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !PROBING.with(Cell::get) {
                prev(info);
            }
        }));
    });
    PROBING.with(|p| p.set(true));
    let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rt.block_on(async {})));
    PROBING.with(|p| p.set(false));
    ok.is_ok()
}

/// A runtime only for [`blocking_allowed`]'s probe from backends that have none.
fn probe_runtime() -> Result<&'static tokio::runtime::Runtime, Error> {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    if let Some(rt) = RT.get() {
        return Ok(rt);
    }
    let rt = tokio::runtime::Builder::new_current_thread().build()?;
    Ok(RT.get_or_init(|| rt))
}

fn refuse(op: &'static str) -> Error {
    Error::AsyncContext(op)
}

/// Blocks as files in a directory: a put is a rename of a file already synced, followed by a
/// sync of the directory; reads are positional reads.
pub struct LocalBlobs {
    dir: PathBuf,
    describe: String,
    faults: Option<FaultHook>,
    read: AtomicU64,
}

impl LocalBlobs {
    fn check(&self, op: &'static str) -> Result<(), Error> {
        if tokio::runtime::Handle::try_current().is_err() || blocking_allowed(probe_runtime()?) {
            Ok(())
        } else {
            Err(refuse(op))
        }
    }
}

impl BlobStore for LocalBlobs {
    fn describe(&self) -> &str {
        &self.describe
    }

    fn put_file(&self, name: &str, path: &Path) -> Result<(), Error> {
        self.check("put_file")?;
        std::fs::File::open(path)?.sync_all()?;
        fault(&self.faults, FaultPoint::BlobPut)?;
        // Durable before the WAL segments it replaces are deleted. If the directory cannot
        // be synced, the object is taken back (the file moved back where it was): the cut
        // is retried whole, and a block that might vanish in a crash never stands in for
        // its segments.
        let target = self.dir.join(name);
        std::fs::rename(path, &target)?;
        let synced = fault(&self.faults, FaultPoint::BlobComplete)
            .and_then(|()| std::fs::File::open(&self.dir)?.sync_all());
        if let Err(e) = synced {
            if std::fs::rename(&target, path).is_err() {
                let _ = std::fs::remove_file(&target);
            }
            return Err(e.into());
        }
        Ok(())
    }

    fn get_range(&self, name: &str, r: Range<u64>) -> Result<Vec<u8>, Error> {
        self.check("get_range")?;
        let f = std::fs::File::open(self.dir.join(name))?;
        let len = r.end.checked_sub(r.start).ok_or_else(|| {
            Error::Io(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("{name}: bad range {r:?}"),
            ))
        })?;
        let size = f.metadata()?.len();
        if r.end > size {
            return Err(Error::Io(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("{name}: range {r:?} past the end ({size} bytes)"),
            )));
        }
        let mut b = vec![0u8; len as usize];
        f.read_exact_at(&mut b, r.start)?;
        self.read.fetch_add(len, Ordering::Relaxed);
        Ok(b)
    }

    fn read_bytes(&self) -> u64 {
        self.read.load(Ordering::Relaxed)
    }

    fn list(&self, suffix: &str) -> Result<Vec<Listed>, Error> {
        self.check("list")?;
        let mut out = Vec::new();
        for e in std::fs::read_dir(&self.dir)? {
            let e = e?;
            let Ok(name) = e.file_name().into_string() else {
                continue;
            };
            let m = e.metadata()?;
            if m.is_file() && name.ends_with(suffix) {
                out.push(Listed {
                    name,
                    size: m.len(),
                });
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn delete(&self, name: &str) -> Result<(), Error> {
        self.check("delete")?;
        fault(&self.faults, FaultPoint::BlobDelete)?;
        match std::fs::remove_file(self.dir.join(name)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    fn local_dir(&self) -> Option<&Path> {
        Some(&self.dir)
    }

    fn put_bytes(&self, name: &str, bytes: &[u8]) -> Result<(), Error> {
        self.check("put_bytes")?;
        fault(&self.faults, FaultPoint::IndexPut)?;
        let target = self.dir.join(name);
        let parent = target
            .parent()
            .ok_or_else(|| Error::Io(io_err(format!("{name}: no directory"))))?
            .to_path_buf();
        std::fs::create_dir_all(&parent)?;
        let tmp = parent.join(format!(
            ".{}.tmp-{}",
            target
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
            std::process::id()
        ));
        let res = (|| -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            std::io::Write::write_all(&mut f, bytes)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &target)?;
            std::fs::File::open(&parent)?.sync_all()
        })();
        if res.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        Ok(res?)
    }

    fn put_new(&self, name: &str, bytes: &[u8]) -> Result<bool, Error> {
        self.check("put_new")?;
        let target = self.dir.join(name);
        let parent = target
            .parent()
            .ok_or_else(|| Error::Io(io_err(format!("{name}: no directory"))))?
            .to_path_buf();
        std::fs::create_dir_all(&parent)?;
        let tmp = parent.join(format!(".new.tmp-{}", std::process::id()));
        // Written whole and synced, then linked under the name: the link fails if the name
        // exists, so exactly one writer of a name succeeds.
        let res = (|| -> std::io::Result<bool> {
            let mut f = std::fs::File::create(&tmp)?;
            std::io::Write::write_all(&mut f, bytes)?;
            f.sync_all()?;
            match std::fs::hard_link(&tmp, &target) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(false),
                Err(e) => return Err(e),
            }
            std::fs::File::open(&parent)?.sync_all()?;
            Ok(true)
        })();
        let _ = std::fs::remove_file(&tmp);
        Ok(res?)
    }

    fn get(&self, name: &str) -> Result<Option<Vec<u8>>, Error> {
        self.check("get")?;
        match std::fs::read(self.dir.join(name)) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn list_dir(&self, dir: &str) -> Result<Vec<Listed>, Error> {
        self.check("list_dir")?;
        let rd = match std::fs::read_dir(self.dir.join(dir)) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let mut out = Vec::new();
        for e in rd {
            let e = e?;
            let Ok(name) = e.file_name().into_string() else {
                continue;
            };
            let m = e.metadata()?;
            if m.is_file() && !name.starts_with('.') {
                out.push(Listed {
                    name,
                    size: m.len(),
                });
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }
}

/// Blocks as objects in an `object_store` (an S3-compatible bucket), driven on a runtime of
/// its own.
pub struct ObjectBlobs {
    os: Arc<dyn ObjectStore>,
    prefix: String,
    rt: Option<tokio::runtime::Runtime>,
    describe: String,
    faults: Option<FaultHook>,
    read: AtomicU64,
}

impl ObjectBlobs {
    fn s3(s: &S3Config, faults: Option<FaultHook>) -> Result<ObjectBlobs, Error> {
        // The S3 client speaks TLS through rustls with the ring provider (a no-op if the
        // process installed one already).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut b = object_store::aws::AmazonS3Builder::new()
            .with_bucket_name(&s.bucket)
            .with_region(if s.region.is_empty() {
                "us-east-1"
            } else {
                &s.region
            })
            .with_access_key_id(&s.access_key_id)
            .with_secret_access_key(&s.secret_access_key)
            .with_allow_http(s.allow_http)
            // `If-None-Match: *` on a create-only put (the compactor lease); whether the
            // server honours it is probed (`probe_conditional_put`).
            .with_conditional_put(object_store::aws::S3ConditionalPut::ETagMatch);
        if !s.endpoint.is_empty() {
            b = b.with_endpoint(&s.endpoint);
        }
        let os = b.build().map_err(io_err)?;
        let prefix = s.prefix.trim_matches('/').to_string();
        let describe = format!("s3://{}/{}", s.bucket, prefix);
        ObjectBlobs::with_store(Arc::new(os), &prefix, describe, faults)
    }

    /// A shared directory through `object_store`'s local file system (synced writes).
    fn dir(dir: &Path, faults: Option<FaultHook>) -> Result<ObjectBlobs, Error> {
        let os = object_store::local::LocalFileSystem::new_with_prefix(dir)
            .map_err(io_err)?
            .with_fsync(true);
        ObjectBlobs::with_store(
            Arc::new(os),
            "",
            format!("file://{}", dir.display()),
            faults,
        )
    }

    /// Objects in any `object_store` under `prefix` (tests use its in-memory store).
    pub fn with_store(
        os: Arc<dyn ObjectStore>,
        prefix: &str,
        describe: String,
        faults: Option<FaultHook>,
    ) -> Result<ObjectBlobs, Error> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        Ok(ObjectBlobs {
            os,
            describe,
            prefix: prefix.trim_matches('/').to_string(),
            rt: Some(rt),
            faults,
            read: AtomicU64::new(0),
        })
    }

    fn path(&self, name: &str) -> ObjPath {
        if self.prefix.is_empty() {
            ObjPath::from(name)
        } else {
            ObjPath::from(format!("{}/{name}", self.prefix))
        }
    }

    /// Drives an `object_store` future to completion on the store's runtime. From a thread
    /// that drives async tasks it refuses (tokio would panic): [`Error::AsyncContext`].
    fn run<F: std::future::Future>(&self, op: &'static str, f: F) -> Result<F::Output, Error> {
        // `rt` is only taken in `drop`.
        let Some(rt) = self.rt.as_ref() else {
            return Err(Error::Io(io_err("block storage is closed")));
        };
        if !blocking_allowed(rt) {
            return Err(refuse(op));
        }
        Ok(rt.block_on(f))
    }

    async fn put_multipart(&self, p: &ObjPath, path: &Path) -> std::io::Result<()> {
        let mut up = self.os.put_multipart(p).await.map_err(io_err)?;
        let mut f = std::fs::File::open(path)?;
        let mut part = 0u32;
        let res: std::io::Result<()> = async {
            loop {
                let mut buf = Vec::with_capacity(PART_SIZE);
                (&mut f).take(PART_SIZE as u64).read_to_end(&mut buf)?;
                if buf.is_empty() {
                    break;
                }
                part += 1;
                fault(&self.faults, FaultPoint::BlobPart(part))?;
                up.put_part(PutPayload::from(buf)).await.map_err(io_err)?;
            }
            fault(&self.faults, FaultPoint::BlobComplete)?;
            up.complete().await.map(|_| ()).map_err(io_err)
        }
        .await;
        if res.is_err() {
            // The parts already up are dropped with the upload; it never became an object.
            let _ = up.abort().await;
        }
        res
    }
}

impl BlobStore for ObjectBlobs {
    fn describe(&self) -> &str {
        &self.describe
    }

    /// An upload (multipart above [`PART_SIZE`]) after which the file is deleted. The object
    /// appears whole or not at all: S3 makes a multipart upload an object only when it is
    /// completed; a failed one is aborted (a crashed one leaves parts the bucket's lifecycle
    /// rules should expire, never an object).
    fn put_file(&self, name: &str, path: &Path) -> Result<(), Error> {
        let p = self.path(name);
        let size = std::fs::metadata(path)?.len();
        if size <= PART_SIZE as u64 {
            let bytes = std::fs::read(path)?;
            self.run("put_file", async {
                fault(&self.faults, FaultPoint::BlobPut)?;
                self.os
                    .put(&p, PutPayload::from(bytes))
                    .await
                    .map(|_| ())
                    .map_err(io_err)
            })??;
        } else {
            self.run("put_file", self.put_multipart(&p, path))??;
        }
        std::fs::remove_file(path)?;
        Ok(())
    }

    fn get_range(&self, name: &str, r: Range<u64>) -> Result<Vec<u8>, Error> {
        let p = self.path(name);
        if r.is_empty() {
            // object_store refuses empty ranges; nothing to read.
            self.run("get_range", async {})?;
            return Ok(Vec::new());
        }
        let want = r.end - r.start;
        let b = self
            .run("get_range", self.os.get_range(&p, r.clone()))?
            .map_err(|e| match e {
                object_store::Error::NotFound { .. } => Error::Io(std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("{name}: {e}"),
                )),
                e => Error::Io(io_err(e)),
            })?;
        self.read.fetch_add(b.len() as u64, Ordering::Relaxed);
        // A range past the end comes back short: the promise is the bytes asked for.
        if b.len() as u64 != want {
            return Err(Error::Io(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("{name}: range {r:?} past the end (got {} bytes)", b.len()),
            )));
        }
        Ok(b.to_vec())
    }

    /// [`coalesce`]d requests, [`GET_CONCURRENCY`] at a time on the store's runtime.
    fn get_many(&self, want: &[(&str, Range<u64>)]) -> Result<Vec<Vec<u8>>, Error> {
        let fetches = coalesce(want, MERGE_GAP, MERGE_MAX);
        let mut out: Vec<Vec<u8>> = vec![Vec::new(); want.len()];
        if fetches.is_empty() {
            self.run("get_many", async {})?;
            return Ok(out);
        }
        let got = self.run("get_many", async {
            let mut set = tokio::task::JoinSet::new();
            let mut got: Vec<Option<_>> = (0..fetches.len()).map(|_| None).collect();
            let mut next = 0;
            loop {
                while next < fetches.len() && set.len() < GET_CONCURRENCY {
                    let (os, p, r) = (
                        self.os.clone(),
                        self.path(&fetches[next].name),
                        fetches[next].range.clone(),
                    );
                    let i = next;
                    set.spawn(async move { (i, os.get_range(&p, r).await) });
                    next += 1;
                }
                let Some(done) = set.join_next().await else {
                    break;
                };
                let (i, res) = done.map_err(io_err)?;
                got[i] = Some(res.map_err(|e| {
                    let name = &fetches[i].name;
                    match e {
                        object_store::Error::NotFound { .. } => std::io::Error::new(
                            std::io::ErrorKind::NotFound,
                            format!("{name}: {e}"),
                        ),
                        e => io_err(format!("{name}: {e}")),
                    }
                })?);
            }
            Ok::<_, std::io::Error>(got)
        })??;
        for (f, b) in fetches.iter().zip(got) {
            let b = b.unwrap_or_default();
            self.read.fetch_add(b.len() as u64, Ordering::Relaxed);
            // A range past the end comes back short: the promise is the bytes asked for.
            if b.len() as u64 != f.range.end - f.range.start {
                return Err(Error::Io(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!(
                        "{}: range {:?} past the end (got {} bytes)",
                        f.name,
                        f.range,
                        b.len()
                    ),
                )));
            }
            for (i, r) in &f.parts {
                let a = (r.start - f.range.start) as usize;
                let z = (r.end - f.range.start) as usize;
                out[*i] = b[a..z].to_vec();
            }
        }
        Ok(out)
    }

    fn read_bytes(&self) -> u64 {
        self.read.load(Ordering::Relaxed)
    }

    fn list(&self, suffix: &str) -> Result<Vec<Listed>, Error> {
        let prefix = (!self.prefix.is_empty()).then(|| ObjPath::from(self.prefix.as_str()));
        let res = self
            .run("list", self.os.list_with_delimiter(prefix.as_ref()))?
            .map_err(io_err)?;
        let mut out: Vec<Listed> = res
            .objects
            .into_iter()
            .filter_map(|o| {
                let name = o.location.filename()?.to_string();
                name.ends_with(suffix)
                    .then_some(Listed { name, size: o.size })
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn delete(&self, name: &str) -> Result<(), Error> {
        let p = self.path(name);
        let res = self.run("delete", async {
            fault(&self.faults, FaultPoint::BlobDelete)?;
            match self.os.delete(&p).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(io_err(e)),
            }
        })?;
        Ok(res?)
    }

    fn put_bytes(&self, name: &str, bytes: &[u8]) -> Result<(), Error> {
        let p = self.path(name);
        let body = PutPayload::from(bytes.to_vec());
        fault(&self.faults, FaultPoint::IndexPut)?;
        self.run("put_bytes", self.os.put(&p, body))?
            .map(|_| ())
            .map_err(|e| Error::Io(io_err(format!("{name}: {e}"))))
    }

    fn get(&self, name: &str) -> Result<Option<Vec<u8>>, Error> {
        let p = self.path(name);
        self.run("get", async {
            match self.os.get(&p).await {
                Ok(r) => r.bytes().await.map(|b| Some(b.to_vec())),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        })?
        .map_err(|e| Error::Io(io_err(format!("{name}: {e}"))))
    }

    fn put_new(&self, name: &str, bytes: &[u8]) -> Result<bool, Error> {
        let p = self.path(name);
        let body = PutPayload::from(bytes.to_vec());
        let opts = object_store::PutOptions::from(object_store::PutMode::Create);
        match self.run("put_new", self.os.put_opts(&p, body, opts))? {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
            Err(e @ object_store::Error::NotImplemented { .. }) => Err(Error::Io(
                std::io::Error::new(std::io::ErrorKind::Unsupported, format!("{name}: {e}")),
            )),
            Err(e) => Err(Error::Io(io_err(format!("{name}: {e}")))),
        }
    }

    fn list_dir(&self, dir: &str) -> Result<Vec<Listed>, Error> {
        let p = self.path(dir);
        let res = match self.run("list_dir", self.os.list_with_delimiter(Some(&p)))? {
            Ok(r) => r,
            Err(object_store::Error::NotFound { .. }) => return Ok(Vec::new()),
            Err(e) => return Err(Error::Io(io_err(e))),
        };
        let mut out: Vec<Listed> = res
            .objects
            .into_iter()
            .filter_map(|o| {
                Some(Listed {
                    name: o.location.filename()?.to_string(),
                    size: o.size,
                })
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }
}

impl Drop for ObjectBlobs {
    fn drop(&mut self) {
        // Dropping a runtime blocks; the store may be dropped inside an async context.
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_ranges_of_one_object_are_fetched_together() {
        let want = [
            ("b", 100..200),
            ("a", 0..10),
            ("a", 5000..6000),
            ("a", 10..20),
            ("a", 6000 + MERGE_GAP + 1..6000 + MERGE_GAP + 2),
            ("b", 150..160),
            ("b", 300..300),
            ("c", 0..MERGE_MAX + 1),
            ("c", MERGE_MAX + 1..MERGE_MAX + 2),
        ];
        let f = coalesce(&want, MERGE_GAP, MERGE_MAX);
        let got: Vec<(&str, Range<u64>, Vec<usize>)> = f
            .iter()
            .map(|f| {
                (
                    f.name.as_str(),
                    f.range.clone(),
                    f.parts.iter().map(|p| p.0).collect(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("a", 0..6000, vec![1, 3, 2]),
                ("a", 6000 + MERGE_GAP + 1..6000 + MERGE_GAP + 2, vec![4]),
                ("b", 100..200, vec![0, 5]),
                ("c", 0..MERGE_MAX + 1, vec![7]),
                ("c", MERGE_MAX + 1..MERGE_MAX + 2, vec![8]),
            ]
        );
    }

    #[test]
    fn get_many_answers_what_get_range_answers() {
        let dir = std::env::temp_dir().join(format!("gocost-getmany-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let os = Arc::new(object_store::memory::InMemory::new());
        let b = ObjectBlobs::with_store(os, "p", "mem".into(), None).unwrap();
        let local = open_blob_store(&BlobConfig::Local, &dir, None).unwrap();
        let bytes: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
        for (name, len) in [("x.gcb", 200_000), ("y.gcb", 1000)] {
            let tmp = dir.join("tmp");
            std::fs::write(&tmp, &bytes[..len]).unwrap();
            b.put_file(name, &tmp).unwrap();
            std::fs::write(&tmp, &bytes[..len]).unwrap();
            local.put_file(name, &tmp).unwrap();
        }
        let want = [
            ("x.gcb", 0..16),
            ("y.gcb", 10..990),
            ("x.gcb", 199_000..200_000),
            ("x.gcb", 8..100),
            ("x.gcb", 100_000..100_000),
            ("x.gcb", 120_000..121_000),
        ];
        let many = b.get_many(&want).unwrap();
        let one: Vec<Vec<u8>> = want
            .iter()
            .map(|(n, r)| b.get_range(n, r.clone()).unwrap())
            .collect();
        assert_eq!(many, one);
        assert_eq!(local.get_many(&want).unwrap(), one);
        assert_eq!(many[1], bytes[10..990].to_vec());
        // 0..121_000 is more than one gap apart from 199_000: two requests for x.
        let before = b.read_bytes();
        b.get_many(&want[..1]).unwrap();
        assert_eq!(b.read_bytes() - before, 16);
        // All or an error: a range past the end, a missing object.
        assert!(
            b.get_many(&[("x.gcb", 0..10), ("y.gcb", 900..1001)])
                .is_err()
        );
        assert!(b.get_many(&[("x.gcb", 0..10), ("z.gcb", 0..1)]).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
