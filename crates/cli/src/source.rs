//! Loading the profiles a command works on: files or URLs, merged as `go tool pprof` merges
//! its sources, with `-base`/`-diff_base` applied.

use std::io::IsTerminal;

use anyhow::Result;
use gocost_pprof::{Combiner, Profile, merge};

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

/// Fetches a profile from a Go pprof endpoint, like pprof: a URL without a path means
/// `/debug/pprof/profile` (CPU); `--seconds` is passed as `?seconds=N`.
fn fetch(src: &str, o: &LoadOptions) -> Result<Vec<u8>> {
    use std::io::Read;
    let mut url = reqwest::Url::parse(src).map_err(|e| InputError(format!("{src}: {e}")))?;
    if url.path().is_empty() || url.path() == "/" {
        url.set_path("/debug/pprof/profile");
    }
    if let Some(s) = o.seconds {
        url.query_pairs_mut().append_pair("seconds", &s.to_string());
    }
    let cpu_window = if url.path().ends_with("/profile") {
        o.seconds.unwrap_or(30)
    } else {
        o.seconds.unwrap_or(0)
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(cpu_window + 60))
        .build()
        .map_err(|e| anyhow::anyhow!("{src}: {e}"))?;
    eprintln!("Fetching profile over HTTP from {url}");
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
    resp.take(o.max_size.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| anyhow::anyhow!("{url}: {e}"))?;
    if bytes.len() as u64 > o.max_size {
        return Err(InputError(format!(
            "{url}: response exceeds {} bytes (--max-size)",
            o.max_size
        ))
        .into());
    }
    Ok(bytes)
}

fn read(src: &str, o: &LoadOptions) -> Result<Profile> {
    let bytes = if src.starts_with("http://") || src.starts_with("https://") {
        fetch(src, o)?
    } else {
        std::fs::read(src).map_err(|e| anyhow::anyhow!("{src}: {e}"))?
    };
    decode(src, &bytes, o.max_size, o.labels)
}

/// Decodes the profile in `bytes` (named `src` in errors); bad input is exit code 2.
pub fn decode(src: &str, bytes: &[u8], max_size: u64, labels: bool) -> Result<Profile> {
    let opts = gocost_pprof::DecodeOptions { max_size, labels };
    gocost_pprof::decode_with(bytes, &opts).map_err(|e| {
        let hint = match e.kind {
            gocost_pprof::ErrorKind::TooLarge { .. } => " (raise it with --max-size)",
            _ => "",
        };
        InputError(format!("{src}: parsing profile: {e}{hint}")).into()
    })
}

/// The bytes of a file, or of stdin for `-`, refused beyond `max`. Any failure is bad input
/// naming the file.
pub fn read_capped(src: &str, max: u64) -> Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    let res = if src == "-" {
        std::io::stdin()
            .lock()
            .take(max + 1)
            .read_to_end(&mut bytes)
    } else {
        std::fs::File::open(src).and_then(|f| f.take(max + 1).read_to_end(&mut bytes))
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
    let bar = progress(srcs.len(), what);
    let mut c = Combiner::new();
    for src in srcs {
        c.push(read(src, o)?)
            .map_err(|e| InputError(format!("{src}: {e}")))?;
        if let Some(b) = &bar {
            b.inc(1);
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    c.finish()
        .ok_or_else(|| InputError("no profiles given".into()).into())
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
