//! # gocost-ingest
//!
//! What Pyroscope agents push, turned into gocost profiles: the `/ingest` query
//! (`name=app.kind{k=v,…}`, `from`, `until`, `format`, `sampleRate`, `spyName`, `units`,
//! `aggregationType`), its bodies (pprof raw or gzip'd, `multipart/form-data` with
//! `profile`, `prev_profile` and `sample_type_config`, `folded`, `lines`) and the Connect
//! `push.v1.PusherService/Push` request (`PushRequest` in protobuf), and OpenTelemetry's
//! OTLP profiles ([`otlp`]: `ExportProfilesServiceRequest` in protobuf or OTLP/JSON). Every
//! push becomes zero or more [`Pushed`] profiles, each with its gocost kind and series labels.
//!
//! It is synchronous and does no I/O: the server hands it bytes. Errors name the field, part
//! or line at fault. Nothing is returned unless the whole push parsed (so nothing is stored
//! half). Decompressed sizes are capped ([`Limits`]).

pub mod grpc;
mod kind;
mod multipart;
pub mod otlp;
mod push;
mod query;
mod text;

use std::collections::BTreeMap;

use gocost_pprof::Profile;

pub use kind::{kind_for_profile, kind_from_name, sanitize_label_name};
pub use multipart::{Part, boundary_of, parse_multipart};
pub use push::parse_push_request;
pub use query::{Format, IngestQuery, parse_name};
pub use text::{parse_folded, parse_lines};

/// The label every pushed series gets for its application name (as scraped series do for
/// their job).
pub const JOB_LABEL: &str = "job";

/// Caps on what one push may make us hold in memory.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest decompressed size of one profile, or of a decompressed request body.
    pub max_decompressed: u64,
    /// Most labels one series may have (after the app name's `job`).
    pub max_labels: usize,
    /// Longest label name or value, and app name, in bytes.
    pub max_label_len: usize,
    /// Most stacks (lines) in a folded/lines body.
    pub max_lines: usize,
    /// Most frames in one stack ([`gocost_pprof::MAX_STACK_DEPTH`]).
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_decompressed: 64 << 20,
            max_labels: 32,
            max_label_len: 1024,
            max_lines: 1_000_000,
            max_depth: gocost_pprof::MAX_STACK_DEPTH,
        }
    }
}

/// A push that cannot be stored, with what is wrong (field, part or line). The variant is
/// the class the server answers with (400, 413, 415); the text says exactly what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Malformed: a bad field, part, line, name or query parameter, or over a count limit.
    #[error("{0}")]
    Malformed(String),
    /// A body or profile that decompresses past `max_decompressed`.
    #[error("{0}")]
    TooLarge(String),
    /// A `Content-Encoding` gocost does not read.
    #[error("{0}")]
    Unsupported(String),
}

impl Error {
    /// What is wrong, whatever the class.
    pub fn message(&self) -> &str {
        match self {
            Error::Malformed(m) | Error::TooLarge(m) | Error::Unsupported(m) => m,
        }
    }

    /// The same class with `prefix` before the text (where in the push it happened).
    pub(crate) fn within(self, prefix: &str) -> Error {
        match self {
            Error::Malformed(m) => Error::Malformed(format!("{prefix}{m}")),
            Error::TooLarge(m) => Error::TooLarge(format!("{prefix}{m}")),
            Error::Unsupported(m) => Error::Unsupported(format!("{prefix}{m}")),
        }
    }
}

pub(crate) fn err<T>(msg: impl Into<String>) -> Result<T, Error> {
    Err(Error::Malformed(msg.into()))
}

/// A pprof decoding error: over the size cap is `TooLarge` (naming the server setting).
fn decode_error(what: &str, e: &gocost_pprof::DecodeError) -> Error {
    let msg = format!("{what}: {e}{}", size_hint(e));
    match e.kind {
        gocost_pprof::ErrorKind::TooLarge { .. } => Error::TooLarge(msg),
        _ => Error::Malformed(msg),
    }
}

/// One profile a push produced: the gocost kind (`cpu`, `heap`, `allocs`, `wall`, …), the
/// series labels (`job` = the application name, plus the agent's tags) and when it was taken.
#[derive(Debug, Clone, PartialEq)]
pub struct Pushed {
    pub kind: String,
    pub labels: BTreeMap<String, String>,
    pub time_ns: i64,
    pub profile: Profile,
}

/// Decompresses a request body sent with `Content-Encoding: gzip` (other encodings are
/// refused; identity passes through), capped at `limits.max_decompressed`.
pub fn decode_body(
    content_encoding: Option<&str>,
    body: Vec<u8>,
    limits: &Limits,
) -> Result<Vec<u8>, Error> {
    match content_encoding.map(str::trim) {
        None | Some("" | "identity") => Ok(body),
        Some(e) if e.eq_ignore_ascii_case("gzip") => {
            gocost_pprof::gunzip(&body, limits.max_decompressed)
                .map_err(|e| decode_error("request body", &e))
        }
        Some(e) => Err(Error::Unsupported(format!(
            "Content-Encoding {e:?} is not supported: use gzip or none"
        ))),
    }
}

/// Decodes one pprof profile (raw or gzip'd) under the size cap; `what` names it in errors.
pub(crate) fn decode_pprof(bytes: &[u8], what: &str, limits: &Limits) -> Result<Profile, Error> {
    let opts = gocost_pprof::DecodeOptions {
        max_size: limits.max_decompressed,
        labels: true,
    };
    gocost_pprof::decode_with(bytes, &opts).map_err(|e| decode_error(what, &e))
}

/// Which server setting a decompression cap comes from.
fn size_hint(e: &gocost_pprof::DecodeError) -> &'static str {
    match e.kind {
        gocost_pprof::ErrorKind::TooLarge { .. } => {
            " (4 × the server's max_body setting in [limits])"
        }
        _ => "",
    }
}

/// An `/ingest` request: its parsed query, the request's `Content-Type` and its (already
/// content-decoded) body. `now_ns` stands in for a missing `from`.
pub fn ingest(
    q: &IngestQuery,
    content_type: Option<&str>,
    body: &[u8],
    now_ns: i64,
    limits: &Limits,
) -> Result<Vec<Pushed>, Error> {
    let time_from_query = q.from.map(|s| s.saturating_mul(1_000_000_000));
    let mut labels = q.labels.clone();
    labels.insert(JOB_LABEL.to_string(), q.app.clone());
    let boundary = content_type.and_then(boundary_of);
    let out = match (q.format, boundary) {
        (Format::Pprof, Some(b)) => {
            let parts = parse_multipart(body, &b)?;
            multipart::profiles(&parts, q, limits)?
        }
        (Format::Pprof, None) => vec![decode_pprof(body, "body (pprof)", limits)?],
        (Format::Folded | Format::Lines, _) => {
            let text = std::str::from_utf8(body)
                .map_err(|e| Error::Malformed(format!("body: not UTF-8 text ({e})")))?;
            let stacks = if q.format == Format::Folded {
                parse_folded(text, limits)?
            } else {
                parse_lines(text, limits)?
            };
            vec![text::profile_from_stacks(&stacks, q)]
        }
    };
    let mut pushed = Vec::with_capacity(out.len());
    for mut p in out {
        let kind = match &q.kind {
            Some(k) => k.clone(),
            None => kind_for_profile(&p),
        };
        let time_ns = time_from_query.unwrap_or(if p.time_nanos > 0 {
            p.time_nanos
        } else {
            now_ns
        });
        if p.time_nanos == 0 {
            p.time_nanos = time_ns;
        }
        if p.duration_nanos == 0
            && let (Some(f), Some(u)) = (q.from, q.until)
            && u > f
        {
            p.duration_nanos = (u - f).saturating_mul(1_000_000_000);
        }
        gocost_pprof::check_depth(&p, limits.max_depth).map_err(Error::Malformed)?;
        pushed.push(Pushed {
            kind,
            labels: labels.clone(),
            time_ns,
            profile: p,
        });
    }
    Ok(pushed)
}

/// Series labels from a push's label pairs: names sanitized to `[A-Za-z0-9_]`, reserved
/// (`__…`) names dropped, `service_name` becomes `job`; capped in number and length.
pub(crate) fn series_labels<'a>(
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    limits: &Limits,
) -> Result<BTreeMap<String, String>, Error> {
    let mut out = BTreeMap::new();
    for (k, v) in pairs {
        if k.len() > limits.max_label_len || v.len() > limits.max_label_len {
            return err(format!(
                "label {:?}: longer than {} bytes",
                truncate(k, 64),
                limits.max_label_len
            ));
        }
        let name = if k == "service_name" {
            JOB_LABEL.to_string()
        } else {
            sanitize_label_name(k)
        };
        if name.is_empty() || name.starts_with("__") || v.is_empty() {
            continue;
        }
        out.insert(name, v.to_string());
        if out.len() > limits.max_labels {
            return err(format!("more than {} labels", limits.max_labels));
        }
    }
    Ok(out)
}

/// `s` cut to at most `n` bytes on a character boundary.
pub fn truncate_str(s: &str, n: usize) -> &str {
    truncate(s, n)
}

pub(crate) fn truncate(s: &str, n: usize) -> &str {
    if s.len() <= n {
        return s;
    }
    let mut i = n;
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    &s[..i]
}
