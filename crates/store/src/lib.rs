//! # gocost-store
//!
//! gocost's embedded profile store, in a data directory with no server to install. This
//! first version keeps every profile in a write-ahead log (`wal/`, fsynced on an interval
//! the caller drives, replayed on start, torn tails cut off) and an in-memory head indexed by
//! series; queries select series with a PromQL-like selector and merge their profiles over
//! a time range with pprof's rules. Immutable blocks, rollups and compaction build on this.
//!
//! It owns series keys, the selector language, the WAL format (`docs/format/wal.md`) and
//! queries; it does not fetch anything (that is `gocost-scrape`) or serve HTTP.
//!
//! ```
//! # let dir = std::env::temp_dir().join(format!("gocost-store-doc-{}", std::process::id()));
//! use gocost_store::{Options, SeriesKey, Selector, Store};
//! let p = gocost_pprof::Profile {
//!     sample_type: vec![gocost_pprof::ValueType::new("goroutine", "count")],
//!     sample: vec![gocost_pprof::Sample { value: vec![3], ..Default::default() }],
//!     ..Default::default()
//! };
//! let (store, _) = Store::open(Options::new(&dir)).unwrap();
//! let key = SeriesKey::new("goroutine", [("job".into(), "api".into())]);
//! store.append(&key, 1_000, &gocost_pprof::encode(&p)).unwrap();
//! store.sync().unwrap();
//! let merged = store.query(&Selector::parse(r#"goroutine{job="api"}"#).unwrap(), 0, 2_000).unwrap();
//! assert_eq!(merged.unwrap().sample[0].value, vec![3]);
//! # std::fs::remove_dir_all(&dir).unwrap();
//! ```

mod series;
mod wal;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use gocost_pprof::{Combiner, DecodeError, MergeError, Profile};

pub use series::{KINDS, Matcher, Op, Selector, SeriesKey};
pub use wal::{MAX_RECORD, ReplayReport};

/// Store options.
#[derive(Debug, Clone)]
pub struct Options {
    pub dir: PathBuf,
    /// Profiles older than this are dropped (nanoseconds; 0 = keep forever).
    pub retention_ns: i64,
    /// Cap on one profile's decompressed size when decoding it.
    pub max_profile_size: u64,
}

impl Options {
    pub fn new(dir: impl AsRef<Path>) -> Self {
        Options {
            dir: dir.as_ref().to_path_buf(),
            retention_ns: 30 * 24 * 3600 * 1_000_000_000,
            max_profile_size: 64 << 20,
        }
    }
}

/// A store error.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    Io(std::io::Error),
    /// The profile given to `append` does not decode.
    BadProfile(DecodeError),
    /// The selected profiles cannot be merged (different sample types).
    Merge(MergeError),
    TooLarge(usize),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(e) => write!(f, "store I/O: {e}"),
            Error::BadProfile(e) => write!(f, "bad profile: {e}"),
            Error::Merge(e) => write!(f, "cannot merge the selected profiles: {e}"),
            Error::TooLarge(n) => write!(
                f,
                "profile of {n} bytes exceeds the {MAX_RECORD}-byte limit"
            ),
        }
    }
}

impl std::error::Error for Error {}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e)
    }
}

/// One stored profile.
#[derive(Debug, Clone)]
pub struct Entry {
    pub time_ns: i64,
    /// The profile as received (gzip'd protobuf).
    pub bytes: Arc<[u8]>,
}

/// Counters for gocost's own `/metrics`.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    pub series: usize,
    pub profiles: usize,
    pub profile_bytes: u64,
    pub wal_bytes: u64,
    pub appends_total: u64,
}

type Metrics = BTreeMap<SeriesKey, Vec<(i64, f64)>>;

fn insert_point(m: &mut Metrics, key: SeriesKey, t: i64, v: f64) {
    let pts = m.entry(key).or_default();
    let pos = pts.partition_point(|p| p.0 <= t);
    pts.insert(pos, (t, v));
}

struct Inner {
    wal: wal::Wal,
    head: BTreeMap<SeriesKey, Vec<Entry>>,
    metrics: Metrics,
    appends: u64,
}

/// The store. All methods take `&self`; it is safe to share across threads.
pub struct Store {
    opts: Options,
    inner: Mutex<Inner>,
}

fn insert(head: &mut BTreeMap<SeriesKey, Vec<Entry>>, key: SeriesKey, e: Entry) {
    let v = head.entry(key).or_default();
    let pos = v.partition_point(|x| x.time_ns <= e.time_ns);
    v.insert(pos, e);
}

impl Store {
    /// Opens the store in `opts.dir`, replaying the WAL.
    pub fn open(opts: Options) -> Result<(Store, ReplayReport), Error> {
        let mut head = BTreeMap::new();
        let mut metrics: Metrics = BTreeMap::new();
        let mut skipped = 0usize;
        let (wal, mut report) = wal::Wal::open(&opts.dir.join("wal"), |r| match r {
            wal::Record::Profile {
                time_ns,
                key,
                payload,
            } => match SeriesKey::parse(&key) {
                Ok(k) => insert(
                    &mut head,
                    k,
                    Entry {
                        time_ns,
                        bytes: payload.into(),
                    },
                ),
                Err(_) => skipped += 1,
            },
            wal::Record::Points(points) => {
                for (key, t, v) in points {
                    match SeriesKey::parse(&key) {
                        Ok(k) => insert_point(&mut metrics, k, t, v),
                        Err(_) => skipped += 1,
                    }
                }
            }
        })?;
        if skipped > 0 {
            report.corrupt.push(format!(
                "{skipped} records with unparsable series keys skipped"
            ));
        }
        let store = Store {
            opts,
            inner: Mutex::new(Inner {
                wal,
                head,
                metrics,
                appends: 0,
            }),
        };
        Ok((store, report))
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the head half-updated in a way that
        // matters more than losing the store: keep serving.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Validates and stores one profile of a series at `time_ns`.
    pub fn append(&self, key: &SeriesKey, time_ns: i64, bytes: &[u8]) -> Result<(), Error> {
        if bytes.len() > MAX_RECORD - 1024 {
            return Err(Error::TooLarge(bytes.len()));
        }
        let opts = gocost_pprof::DecodeOptions {
            max_size: self.opts.max_profile_size,
            labels: false,
        };
        gocost_pprof::decode_with(bytes, &opts).map_err(Error::BadProfile)?;
        let rec = wal::Record::Profile {
            time_ns,
            key: key.to_string(),
            payload: bytes.to_vec(),
        };
        let mut g = self.lock();
        g.wal.append(&rec)?;
        g.appends += 1;
        insert(
            &mut g.head,
            key.clone(),
            Entry {
                time_ns,
                bytes: bytes.into(),
            },
        );
        Ok(())
    }

    /// Stores runtime-metric points: (series, time, value). Series keys use the kind
    /// `metric` and the label `__name__`.
    pub fn append_points(&self, points: &[(SeriesKey, i64, f64)]) -> Result<(), Error> {
        if points.is_empty() {
            return Ok(());
        }
        let rec = wal::Record::Points(
            points
                .iter()
                .map(|(k, t, v)| (k.to_string(), *t, *v))
                .collect(),
        );
        let mut g = self.lock();
        g.wal.append(&rec)?;
        for (k, t, v) in points {
            insert_point(&mut g.metrics, k.clone(), *t, *v);
        }
        Ok(())
    }

    /// Runtime-metric series matching `sel` with their points in `[from_ns, to_ns]`.
    pub fn select_points(
        &self,
        sel: &Selector,
        from_ns: i64,
        to_ns: i64,
    ) -> Vec<(SeriesKey, Vec<(i64, f64)>)> {
        let g = self.lock();
        g.metrics
            .iter()
            .filter(|(k, _)| sel.matches(k))
            .filter_map(|(k, v)| {
                let lo = v.partition_point(|p| p.0 < from_ns);
                let hi = v.partition_point(|p| p.0 <= to_ns);
                (lo < hi).then(|| (k.clone(), v[lo..hi].to_vec()))
            })
            .collect()
    }

    /// Makes every appended profile durable.
    pub fn sync(&self) -> Result<(), Error> {
        Ok(self.lock().wal.sync()?)
    }

    /// Drops profiles older than the retention (relative to `now_ns`).
    pub fn apply_retention(&self, now_ns: i64) -> Result<(), Error> {
        if self.opts.retention_ns <= 0 {
            return Ok(());
        }
        let cutoff = now_ns - self.opts.retention_ns;
        let mut g = self.lock();
        for v in g.head.values_mut() {
            let n = v.partition_point(|e| e.time_ns < cutoff);
            v.drain(..n);
        }
        g.head.retain(|_, v| !v.is_empty());
        for v in g.metrics.values_mut() {
            let n = v.partition_point(|p| p.0 < cutoff);
            v.drain(..n);
        }
        g.metrics.retain(|_, v| !v.is_empty());
        g.wal.drop_before(cutoff)?;
        Ok(())
    }

    /// The entries of matching series within `[from_ns, to_ns]`.
    pub fn select(&self, sel: &Selector, from_ns: i64, to_ns: i64) -> Vec<(SeriesKey, Vec<Entry>)> {
        let g = self.lock();
        g.head
            .iter()
            .filter(|(k, _)| sel.matches(k))
            .filter_map(|(k, v)| {
                let lo = v.partition_point(|e| e.time_ns < from_ns);
                let hi = v.partition_point(|e| e.time_ns <= to_ns);
                (lo < hi).then(|| (k.clone(), v[lo..hi].to_vec()))
            })
            .collect()
    }

    /// The merged profile of matching series within `[from_ns, to_ns]` (`None` if nothing
    /// matched), merged with pprof's rules in time order.
    pub fn query(
        &self,
        sel: &Selector,
        from_ns: i64,
        to_ns: i64,
    ) -> Result<Option<Profile>, Error> {
        let mut entries: Vec<Entry> = self
            .select(sel, from_ns, to_ns)
            .into_iter()
            .flat_map(|(_, v)| v)
            .collect();
        entries.sort_by_key(|e| e.time_ns);
        let opts = gocost_pprof::DecodeOptions {
            max_size: self.opts.max_profile_size,
            labels: true,
        };
        let mut c = Combiner::new();
        for e in &entries {
            let p = gocost_pprof::decode_with(&e.bytes, &opts).map_err(Error::BadProfile)?;
            c.push(p).map_err(Error::Merge)?;
        }
        Ok(c.finish())
    }

    /// All series keys.
    pub fn series(&self) -> Vec<SeriesKey> {
        self.lock().head.keys().cloned().collect()
    }

    /// Label names across all series (plus `__kind__` is not included: the kind is separate).
    pub fn label_names(&self) -> Vec<String> {
        let g = self.lock();
        let s: BTreeSet<&String> = g.head.keys().flat_map(|k| k.labels.keys()).collect();
        s.into_iter().cloned().collect()
    }

    /// Values of one label across all series.
    pub fn label_values(&self, name: &str) -> Vec<String> {
        let g = self.lock();
        let s: BTreeSet<&String> = g.head.keys().filter_map(|k| k.labels.get(name)).collect();
        s.into_iter().cloned().collect()
    }

    pub fn stats(&self) -> Stats {
        let g = self.lock();
        Stats {
            series: g.head.len(),
            profiles: g.head.values().map(Vec::len).sum(),
            profile_bytes: g
                .head
                .values()
                .flatten()
                .map(|e| e.bytes.len() as u64)
                .sum(),
            wal_bytes: g.wal.size_bytes(),
            appends_total: g.appends,
        }
    }
}
