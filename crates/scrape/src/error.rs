//! [`ScrapeError`]: why one scrape of one target failed.

use std::time::Duration;

/// Why a scrape failed. Its text is what the target's health says (`last_error`) and what is
/// logged when the target's state changes; [`ScrapeError::status`] is the HTTP status, when
/// the target answered one.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ScrapeError {
    /// No complete response within `limit` (a hanging or dripping target); `setting` names
    /// where the limit comes from.
    #[error("timeout: no complete response within {limit:?} ({setting}): {cause}")]
    Timeout {
        limit: Duration,
        setting: &'static str,
        cause: String,
    },
    /// The connection or the transfer failed (refused, reset, TLS, DNS…), with its causes.
    #[error("{0}")]
    Fetch(String),
    /// The target answered with a status that is not 2xx (the start of its body kept).
    #[error("HTTP {status}: {body}")]
    Status {
        status: reqwest::StatusCode,
        body: String,
    },
    /// The response is larger than the job's cap (`setting`, `cap` bytes); `len` when the
    /// target announced it.
    #[error("{}", too_large(*.len, .setting, *.cap))]
    TooLarge {
        len: Option<u64>,
        setting: &'static str,
        cap: u64,
    },
    /// The body is not what the kind calls for (a profile that does not decode, expvar
    /// JSON, Prometheus text, a trace), or cannot be turned into what is stored.
    #[error("{0}")]
    Parse(String),
    /// The store refused or failed to store it.
    #[error("storing: {0}")]
    Store(String),
}

fn too_large(len: Option<u64>, setting: &str, cap: u64) -> String {
    match len {
        Some(len) => format!("response of {len} bytes exceeds {setting} ({cap})"),
        None => format!("response exceeds {setting} ({cap} bytes)"),
    }
}

impl ScrapeError {
    /// The HTTP status the target answered, if the failure is one.
    pub fn status(&self) -> Option<u16> {
        match self {
            ScrapeError::Status { status, .. } => Some(status.as_u16()),
            _ => None,
        }
    }
}

impl From<gocost_store::RunError> for ScrapeError {
    fn from(e: gocost_store::RunError) -> Self {
        ScrapeError::Store(e.to_string())
    }
}

impl From<gocost_store::Error> for ScrapeError {
    fn from(e: gocost_store::Error) -> Self {
        ScrapeError::Store(e.to_string())
    }
}
