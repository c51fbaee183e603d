//! Where blocks live: a directory or an S3-compatible bucket, through `object_store`.
//!
//! The store's API is synchronous (it is called from blocking threads, never from async
//! tasks), so this wrapper drives `object_store`'s futures on a small runtime of its own.

use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use object_store::path::Path as ObjPath;
use std::io::Read;

use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

/// Where blocks are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobConfig {
    /// `<data>/blocks/` on the local disk (the default).
    Local,
    /// An S3-compatible bucket.
    S3(S3Config),
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
pub struct Listed {
    pub name: String,
    pub size: u64,
}

pub struct Blobs {
    os: Arc<dyn ObjectStore>,
    prefix: String,
    rt: Option<tokio::runtime::Runtime>,
    local_dir: Option<PathBuf>,
    pub(crate) describe: String,
}

fn io_err(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

impl Blobs {
    pub fn open(cfg: &BlobConfig, data_dir: &std::path::Path) -> std::io::Result<Blobs> {
        Self::open_with(cfg, data_dir, true)?.ok_or_else(|| io_err("no block storage"))
    }

    /// Opens block storage without creating anything: `None` when the local `blocks/`
    /// directory does not exist (no block was ever written).
    pub fn open_existing(
        cfg: &BlobConfig,
        data_dir: &std::path::Path,
    ) -> std::io::Result<Option<Blobs>> {
        Self::open_with(cfg, data_dir, false)
    }

    fn open_with(
        cfg: &BlobConfig,
        data_dir: &std::path::Path,
        create: bool,
    ) -> std::io::Result<Option<Blobs>> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let mut local_dir = None;
        let (os, prefix, describe): (Arc<dyn ObjectStore>, String, String) = match cfg {
            BlobConfig::Local => {
                let dir: PathBuf = data_dir.join("blocks");
                if create {
                    std::fs::create_dir_all(&dir)?;
                } else if !dir.is_dir() {
                    return Ok(None);
                }
                let fs =
                    object_store::local::LocalFileSystem::new_with_prefix(&dir).map_err(io_err)?;
                local_dir = Some(dir.clone());
                (Arc::new(fs), String::new(), dir.display().to_string())
            }
            BlobConfig::S3(s) => {
                // The S3 client speaks TLS through rustls with the ring provider (a no-op
                // if the process installed one already).
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
                    .with_allow_http(s.allow_http);
                if !s.endpoint.is_empty() {
                    b = b.with_endpoint(&s.endpoint);
                }
                let os = b.build().map_err(io_err)?;
                let prefix = s.prefix.trim_matches('/').to_string();
                let describe = format!("s3://{}/{}", s.bucket, prefix);
                (Arc::new(os), prefix, describe)
            }
        };
        Ok(Some(Blobs {
            os,
            prefix,
            rt: Some(rt),
            local_dir,
            describe,
        }))
    }

    fn path(&self, name: &str) -> ObjPath {
        if self.prefix.is_empty() {
            ObjPath::from(name)
        } else {
            ObjPath::from(format!("{}/{name}", self.prefix))
        }
    }

    /// Drives an `object_store` future to completion on the store's runtime. The caller is
    /// a blocking thread (the store's contract); from an async worker, tokio refuses.
    fn run<F: std::future::Future>(&self, f: F) -> F::Output {
        // `rt` is only taken in `drop`.
        self.rt
            .as_ref()
            .expect("runtime lives until drop")
            .block_on(f)
    }

    /// Moves a finished block file into place as `name`: a rename within the data
    /// directory (fsynced), or an upload (multipart for large blocks) after which the file
    /// is deleted. The object appears whole or not at all.
    pub fn put_file(&self, name: &str, path: &std::path::Path) -> std::io::Result<()> {
        std::fs::File::open(path)?.sync_all()?;
        if let Some(dir) = &self.local_dir {
            // Durable before the WAL segments it replaces are deleted. If the directory
            // cannot be synced, the block is taken back: the cut is retried whole, and a
            // block that might vanish in a crash never stands in for its segments.
            let target = dir.join(name);
            std::fs::rename(path, &target)?;
            if let Err(e) = std::fs::File::open(dir).and_then(|d| d.sync_all()) {
                let _ = std::fs::remove_file(&target);
                return Err(e);
            }
            return Ok(());
        }
        const PART: usize = 16 << 20;
        let p = self.path(name);
        let size = std::fs::metadata(path)?.len();
        if size <= PART as u64 {
            let bytes = std::fs::read(path)?;
            self.run(self.os.put(&p, PutPayload::from(bytes)))
                .map_err(io_err)?;
        } else {
            self.run(async {
                let mut up = self.os.put_multipart(&p).await.map_err(io_err)?;
                let mut f = std::fs::File::open(path)?;
                loop {
                    let mut buf = Vec::with_capacity(PART);
                    (&mut f).take(PART as u64).read_to_end(&mut buf)?;
                    if buf.is_empty() {
                        break;
                    }
                    if let Err(e) = up.put_part(PutPayload::from(buf)).await {
                        let _ = up.abort().await;
                        return Err(io_err(e));
                    }
                }
                up.complete().await.map(|_| ()).map_err(io_err)
            })?;
        }
        std::fs::remove_file(path)
    }

    pub fn get_range(&self, name: &str, r: Range<u64>) -> std::io::Result<Vec<u8>> {
        let p = self.path(name);
        self.run(self.os.get_range(&p, r))
            .map(|b| b.to_vec())
            .map_err(io_err)
    }

    /// The local directory of blocks, if they are local.
    pub fn local_dir(&self) -> Option<&std::path::Path> {
        self.local_dir.as_deref()
    }

    pub fn delete(&self, name: &str) -> std::io::Result<()> {
        let p = self.path(name);
        match self.run(self.os.delete(&p)) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(io_err(e)),
        }
    }

    /// Objects directly under the prefix whose names end in `suffix`.
    pub fn list(&self, suffix: &str) -> std::io::Result<Vec<Listed>> {
        let prefix = (!self.prefix.is_empty()).then(|| ObjPath::from(self.prefix.as_str()));
        let res = self
            .run(self.os.list_with_delimiter(prefix.as_ref()))
            .map_err(io_err)?;
        Ok(res
            .objects
            .into_iter()
            .filter_map(|o| {
                let name = o.location.filename()?.to_string();
                name.ends_with(suffix)
                    .then_some(Listed { name, size: o.size })
            })
            .collect())
    }
}

impl Drop for Blobs {
    fn drop(&mut self) {
        // Dropping a runtime blocks; the store may be dropped inside an async context.
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}
