//! Loading the profiles a command works on: files or URLs, merged as `go tool pprof` merges
//! its sources, with `-base`/`-diff_base` applied.

use std::io::IsTerminal;

use anyhow::Result;
use gocost_pprof::{Combiner, FlatSamples, MergeError, Merger, Profile, Samples, merge};

/// Bad input (a malformed profile, incompatible profiles, a bad flag value): exit code 2.
#[derive(Debug)]
pub struct InputError(pub String);

impl std::fmt::Display for InputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InputError {}

pub struct Inputs {
    pub sources: Vec<String>,
    pub bases: Vec<String>,
    pub diff_base: bool,
    pub normalize: bool,
}

pub struct LoadOptions {
    pub max_size: u64,
    pub seconds: Option<u64>,
    /// Keep sample labels (reports that print them need them; top and flame graphs do not).
    pub labels: bool,
}

/// Fetches from a Go net/http/pprof endpoint, like pprof: a URL without a path means
/// `default_path` (`/debug/pprof/profile` for profiles); `seconds` is passed as `?seconds=N`;
/// at most `max_size` bytes are read.
pub fn fetch(
    src: &str,
    default_path: &str,
    seconds: Option<u64>,
    max_size: u64,
) -> Result<Vec<u8>> {
    use std::io::Read;
    let mut url = reqwest::Url::parse(src).map_err(|e| InputError(format!("{src}: {e}")))?;
    if url.path().is_empty() || url.path() == "/" {
        url.set_path(default_path);
    }
    if let Some(s) = seconds {
        url.query_pairs_mut().append_pair("seconds", &s.to_string());
    }
    let window = if url.path().ends_with("/profile") {
        seconds.unwrap_or(30)
    } else {
        seconds.unwrap_or(0)
    };
    let client = reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(window + 60))
        .build()
        .map_err(|e| anyhow::anyhow!("{src}: {e}"))?;
    // pprof's words for a profile.
    let what = if url.path().ends_with("/trace") {
        "trace"
    } else {
        "profile"
    };
    eprintln!("Fetching {what} over HTTP from {url}");
    let resp = client
        .get(url.clone())
        .send()
        .map_err(|e| anyhow::anyhow!("{url}: {e}"))?;
    let status = resp.status();
    if !status.is_success() {
        let body = resp.text().unwrap_or_default();
        return Err(anyhow::anyhow!(
            "{url}: server answered {status}: {}",
            body.trim()
        ));
    }
    let mut bytes = Vec::new();
    resp.take(max_size.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| anyhow::anyhow!("{url}: {e}"))?;
    if bytes.len() as u64 > max_size {
        return Err(InputError(format!(
            "{url}: response exceeds {max_size} bytes (--max-size)"
        ))
        .into());
    }
    Ok(bytes)
}

fn read(src: &str, o: &LoadOptions) -> Result<Profile> {
    decode(src, &read_bytes(src, o)?, o.max_size, o.labels)
}

/// A source's bytes: a file, or a URL fetched as pprof does.
fn read_bytes(src: &str, o: &LoadOptions) -> Result<Vec<u8>> {
    if src.starts_with("http://") || src.starts_with("https://") {
        fetch(src, "/debug/pprof/profile", o.seconds, o.max_size)
    } else {
        std::fs::read(src).map_err(|e| anyhow::anyhow!("{src}: {e}"))
    }
}

/// Like [`read`], with the samples apart from the profile (for a merge).
fn read_flat(src: &str, o: &LoadOptions) -> Result<(Profile, FlatSamples)> {
    let bytes = read_bytes(src, o)?;
    let opts = gocost_pprof::DecodeOptions {
        max_size: o.max_size,
        labels: o.labels,
    };
    gocost_pprof::decode_flat_with(&bytes, &opts).map_err(|e| parse_error(src, e))
}

/// Decodes the profile in `bytes` (named `src` in errors); bad input is exit code 2.
pub fn decode(src: &str, bytes: &[u8], max_size: u64, labels: bool) -> Result<Profile> {
    let opts = gocost_pprof::DecodeOptions { max_size, labels };
    gocost_pprof::decode_with(bytes, &opts).map_err(|e| parse_error(src, e))
}

fn parse_error(src: &str, e: gocost_pprof::DecodeError) -> anyhow::Error {
    let hint = match e.kind {
        gocost_pprof::ErrorKind::TooLarge { .. } => " (raise it with --max-size)",
        _ => "",
    };
    InputError(format!("{src}: parsing profile: {e}{hint}")).into()
}

/// The bytes of a file, or of stdin for `-`, refused beyond `max`. Any failure is bad input
/// naming the file.
/// A file's bytes, mapped or read.
pub enum Bytes {
    Mapped(memmap2::Mmap),
    Read(Vec<u8>),
}

impl std::ops::Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Mapped(m) => m,
            Bytes::Read(v) => v,
        }
    }
}

/// As [`read_capped`], but a regular file of 1 MiB or more is mapped instead of read: its
/// pages come straight from the page cache, with no copy and no fresh memory to zero (a
/// tenth of the CPU of reading a big trace went to faulting in the read buffer). Only for
/// the CLI's inputs, never for the server's: a file truncated while mapped ends the process.
pub fn map_capped(src: &str, max: u64) -> Result<Bytes> {
    const MAP_FROM: u64 = 1 << 20;
    if src != "-"
        && let Ok(f) = std::fs::File::open(src)
        && let Ok(m) = f.metadata()
        && m.is_file()
        && (MAP_FROM..=max).contains(&m.len())
    {
        // SAFETY: the map is read-only and private to this process; gocost only reads it.
        // Another process truncating the file meanwhile would fault the process (SIGBUS),
        // which for a command-line read of a finished trace is accepted, as ripgrep does.
        if let Ok(map) = unsafe { memmap2::MmapOptions::new().populate().map(&f) } {
            return Ok(Bytes::Mapped(map));
        }
    }
    read_capped(src, max).map(Bytes::Read)
}

pub fn read_capped(src: &str, max: u64) -> Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    let res = if src == "-" {
        std::io::stdin()
            .lock()
            .take(max + 1)
            .read_to_end(&mut bytes)
    } else {
        std::fs::File::open(src).and_then(|f| {
            // Sized once: growing by doubling would copy (and fault in) it again and again.
            let len = f
                .metadata()
                .map_or(0, |m| m.len())
                .min(max.saturating_add(1));
            bytes.reserve_exact(usize::try_from(len).unwrap_or(0));
            f.take(max + 1).read_to_end(&mut bytes)
        })
    };
    res.map_err(|e| InputError(format!("{src}: {e}")))?;
    if bytes.len() as u64 > max {
        return Err(InputError(format!("{src}: larger than {max} bytes (--max-size)")).into());
    }
    Ok(bytes)
}

/// Merges profiles in order, one at a time, the way pprof's `combineProfiles` does: a single
/// profile is returned untouched; profiles with identical types are merged incrementally
/// (only the merged result is held in memory); otherwise sample types are made compatible
/// and units scaled pairwise.
fn load_all(srcs: &[String], o: &LoadOptions, what: &str) -> Result<Profile> {
    let mut c = Combiner::new();
    for_each_decoded(srcs, o, what, read, |src, p| {
        c.push(p?).map_err(|e| InputError(format!("{src}: {e}")))?;
        Ok(())
    })?;
    c.finish()
        .ok_or_else(|| InputError("no profiles given".into()).into())
}

/// What `gocost merge` loaded: one profile, or a merge not yet made into one (it is encoded
/// straight from the merge's own table).
// One value per command, moved once: variant sizes do not matter.
#[allow(clippy::large_enum_variant)]
pub enum Merged {
    Profile(Profile),
    Merger(Merger),
}

/// [`load`] for `gocost merge`: the same result, but profiles whose types agree are merged
/// from flat samples ([`gocost_pprof::decode_flat_with`]: no allocation per sample), and the
/// merge is returned unfinished for [`Merger::encode_parallel`]. Base profiles, a single
/// source, or sources whose sample types differ take [`load`]'s path (from where they differ).
pub fn load_merge(i: &Inputs, o: &LoadOptions) -> Result<Merged> {
    if !i.bases.is_empty() || i.sources.len() < 2 {
        return load(i, o).map(Merged::Profile);
    }
    enum State {
        Empty,
        Merging(Merger),
        /// Types differed: pprof's pairwise combining from here on.
        Combining(Combiner),
    }
    let mut state = State::Empty;
    for_each_decoded(&i.sources, o, "profiles", read_flat, |src, decoded| {
        let (mut p, samples) = decoded?;
        let err = |e: MergeError| InputError(format!("{src}: {e}"));
        state = match std::mem::replace(&mut state, State::Empty) {
            State::Empty => {
                let mut m = Merger::new(&p);
                // Room for every input's samples staying distinct (a day of profiles with
                // labels does); it is only address space until used.
                let frames = samples.location.len() / samples.len().max(1) + 1;
                m.reserve(samples.len().saturating_mul(i.sources.len()), frames);
                m.add_flat(&p, &samples).map_err(err)?;
                State::Merging(m)
            }
            State::Merging(mut m)
                if m.sample_type() == p.sample_type.as_slice()
                    && *m.period_type() == p.period_type =>
            {
                m.add_flat(&p, &samples).map_err(err)?;
                State::Merging(m)
            }
            State::Merging(m) => {
                let mut c = Combiner::new();
                c.push(m.finish()).map_err(err)?;
                p.sample = samples.to_samples();
                c.push(p).map_err(err)?;
                State::Combining(c)
            }
            State::Combining(mut c) => {
                p.sample = samples.to_samples();
                c.push(p).map_err(err)?;
                State::Combining(c)
            }
        };
        Ok(())
    })?;
    match state {
        State::Empty => Err(InputError("no profiles given".into()).into()),
        State::Merging(m) => Ok(Merged::Merger(m)),
        State::Combining(c) => c
            .finish()
            .map(Merged::Profile)
            .ok_or_else(|| InputError("no profiles given".into()).into()),
    }
}

/// Reads and decodes every source (with `read`), on all cores, and hands the results to `f`
/// in the sources' order (so merging them gives what a sequential merge gives), with a
/// progress bar ("merging `what`") on a terminal. Inflating and decoding are most of the
/// work and independent per input; at most two decoded profiles per worker wait for `f`, so
/// memory stays bounded. Stops at the first error `f` returns.
fn for_each_decoded<T: Send>(
    srcs: &[String],
    o: &LoadOptions,
    what: &str,
    read: fn(&str, &LoadOptions) -> Result<T>,
    mut f: impl FnMut(&str, Result<T>) -> Result<()>,
) -> Result<()> {
    let bar = progress(srcs.len(), what);
    let mut f = |src: &str, r: Result<T>| {
        f(src, r)?;
        if let Some(b) = &bar {
            b.inc(1);
        }
        Ok(())
    };
    let res = decode_in_order(srcs, o, read, &mut f);
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    res
}

/// [`for_each_decoded`] without the progress bar.
fn decode_in_order<T: Send>(
    srcs: &[String],
    o: &LoadOptions,
    read: fn(&str, &LoadOptions) -> Result<T>,
    f: &mut dyn FnMut(&str, Result<T>) -> Result<()>,
) -> Result<()> {
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(srcs.len());
    if workers <= 1 {
        for src in srcs {
            f(src, read(src, o))?;
        }
        return Ok(());
    }
    std::thread::scope(|scope| {
        // Worker w decodes sources w, w + workers, …; the caller takes them round-robin.
        let queues: Vec<_> = (0..workers)
            .map(|w| {
                let (tx, rx) = std::sync::mpsc::sync_channel::<Result<T>>(2);
                scope.spawn(move || {
                    for src in srcs.iter().skip(w).step_by(workers) {
                        if tx.send(read(src, o)).is_err() {
                            return; // the caller stopped
                        }
                    }
                });
                rx
            })
            .collect();
        for (i, src) in srcs.iter().enumerate() {
            let p = queues[i % workers]
                .recv()
                .map_err(|_| anyhow::anyhow!("{src}: a decoding thread stopped"))?;
            f(src, p)?;
        }
        Ok(())
    })
}

fn progress(n: usize, what: &str) -> Option<indicatif::ProgressBar> {
    if n < 16 || !std::io::stderr().is_terminal() {
        return None;
    }
    let b = indicatif::ProgressBar::new(n as u64);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{msg} [{bar:40}] {pos}/{len} profiles ({per_sec}, eta {eta})",
    ) {
        b.set_style(style.progress_chars("=> "));
    }
    b.set_message(format!("merging {what}"));
    Some(b)
}

/// pprof's `fetchProfiles`: sources merged, then bases subtracted.
pub fn load(i: &Inputs, o: &LoadOptions) -> Result<Profile> {
    let mut p = load_all(&i.sources, o, "profiles")?;
    if i.bases.is_empty() {
        return Ok(p);
    }
    let mut base = load_all(&i.bases, o, "base profiles")?;
    if i.diff_base {
        base.set_label("pprof::base", "true");
    }
    if i.normalize {
        merge::normalize(&mut p, &base).map_err(|e| InputError(e.0))?;
    }
    base.scale(-1.0);
    merge::combine(vec![p, base]).map_err(|e| InputError(e.0).into())
}
