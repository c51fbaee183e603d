//! # gocost-config
//!
//! gocost's configuration file (TOML; scrape jobs shaped like Prometheus `scrape_configs`):
//! the whole schema — `[storage]`, `[server]`, `[[scrape]]`, `[cost]`, `[[alert]]` and
//! `[alerting]` ([`alerting`]), `[auth]`, `[tenancy]`, `[limits]`, and `[compare]` kept as a
//! table for the CLI — and its validation. Errors name the file, and the line and key (TOML
//! errors) or the entry and key (validation), and never print a token.
//!
//! Also the small parsers the file's values use ([`parse_duration`], [`parse_size`]) and
//! [`redact_url`] / [`url_origin`]: what of a URL may be logged or shown.
//!
//! ```toml
//! [storage]
//! path = "./data"
//! retention = "30d"
//!
//! [[scrape]]
//! job = "checkout"
//! targets = ["127.0.0.1:6060"]
//! interval = "15s"
//! profiles = ["cpu", "heap", "allocs", "goroutine", "mutex", "block"]
//! labels = { env = "prod" }
//! ```
//!
//! A job may discover its targets and relabel them ([`discovery`]: `[[scrape.file_sd]]`,
//! `[[scrape.http_sd]]`, `[[scrape.dns_sd]]`, `[[scrape.relabel]]`, as Prometheus'
//! `*_sd_configs` and `relabel_configs`).
//!
//! It reads a file and checks it; it does not act on it (the scraper, the server and the
//! CLI do).

pub mod alerting;
pub mod discovery;
mod url;

pub use alerting::{AlertRule, AlertingConfig};
pub use discovery::{
    DnsRecordType, DnsSdConfig, FileSdConfig, HttpSdConfig, RelabelAction, RelabelConfig,
    valid_label_name,
};
pub use url::{redact_url, url_origin};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// Parses Prometheus-style durations: `500ms`, `15s`, `5m`, `2h`, `30d`, `1w`, `1y`, or a
/// concatenation such as `1h30m`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let mut total: u128 = 0;
    let mut rest = s.trim();
    if rest.is_empty() {
        return Err("empty duration".into());
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!("bad duration {s:?} (use e.g. 15s, 5m, 30d)"));
        }
        let n: u128 = rest[..digits]
            .parse()
            .map_err(|_| format!("bad duration {s:?}"))?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let ms: u128 = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 7 * 86_400_000,
            "y" => 365 * 86_400_000,
            u => {
                return Err(format!(
                    "bad duration unit {u:?} in {s:?} (ms, s, m, h, d, w, y)"
                ));
            }
        };
        total += n * ms;
        rest = &rest[unit_len..];
    }
    u64::try_from(total)
        .map(Duration::from_millis)
        .map_err(|_| format!("duration {s:?} too large"))
}

/// Parses sizes such as `64MiB`, `512KiB`, `1GiB` or plain bytes.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let n: u64 = s[..digits].parse().map_err(|_| format!("bad size {s:?}"))?;
    let mul = match s[digits..].trim() {
        "" | "B" => 1,
        "KiB" | "KB" | "kB" => 1 << 10,
        "MiB" | "MB" => 1 << 20,
        "GiB" | "GB" => 1 << 30,
        u => return Err(format!("bad size unit {u:?} in {s:?} (B, KiB, MiB, GiB)")),
    };
    n.checked_mul(mul)
        .ok_or_else(|| format!("size {s:?} too large"))
}

pub(crate) fn de_duration<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Duration>, D::Error> {
    let s: Option<String> = Option::deserialize(d)?;
    s.map(|s| parse_duration(&s).map_err(serde::de::Error::custom))
        .transpose()
}

fn de_size<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let s: Option<String> = Option::deserialize(d)?;
    s.map(|s| parse_size(&s).map_err(serde::de::Error::custom))
        .transpose()
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    pub path: Option<PathBuf>,
    /// How long profiles are kept (default 30 days). Blocks are deleted whole, once all of
    /// their data is older: with four weeks or more, finished weeks are kept as one block
    /// each (docs/adr/0034), whose oldest days may stay up to a week longer.
    #[serde(default, deserialize_with = "de_duration")]
    pub retention: Option<Duration>,
    /// How often appended profiles are fsynced (≤ 5 s).
    #[serde(default, deserialize_with = "de_duration")]
    pub sync_interval: Option<Duration>,
    /// How long the WAL collects before it is cut into an immutable block (default 1h).
    #[serde(default, deserialize_with = "de_duration")]
    pub block_duration: Option<Duration>,
    /// Memory for profiles kept encoded until their block is cut (default 64MiB; past it,
    /// the cut decodes them again from the WAL).
    #[serde(default, deserialize_with = "de_size")]
    pub head_cache: Option<u64>,
    /// The most memory the head may hold — its index of profiles, runtime-metric points,
    /// symbol tables and `head_cache` — before a block is cut early (default 256MiB): with
    /// many targets the head is cut by size before `block_duration`.
    #[serde(default, deserialize_with = "de_size")]
    pub head_max: Option<u64>,
    /// Threads that decode and store scraped profiles (default: the number of cores). At
    /// most twice as many fetched bodies wait for them; scrapes wait for a place, so a slow
    /// disk slows scraping instead of growing memory (docs/adr/0025).
    pub scrape_workers: Option<usize>,
    /// Local disk for ranges of blocks read from a bucket or shared directory
    /// (`<path>/cache/`; default 1GiB, "0" = none). Blocks in `<path>/blocks/` are not
    /// cached.
    #[serde(default, deserialize_with = "de_size")]
    pub block_cache: Option<u64>,
    /// Keep blocks in an S3-compatible bucket instead of `<path>/blocks/`.
    pub s3: Option<S3Storage>,
    /// Keep blocks in a directory several instances share (a bucket on a shared disk,
    /// written through `object_store`'s local file system; it honours the create-only
    /// writes of the compactor lease) instead of `<path>/blocks/`.
    pub shared_dir: Option<PathBuf>,
}

/// `[storage.s3]`: where blocks go when one machine's disk is not the place for them.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct S3Storage {
    pub bucket: String,
    /// Key prefix inside the bucket.
    #[serde(default)]
    pub prefix: String,
    /// e.g. `http://127.0.0.1:3900` for a self-hosted server; empty = AWS.
    #[serde(default)]
    pub endpoint: String,
    #[serde(default)]
    pub region: String,
    /// Default: the `AWS_ACCESS_KEY_ID` environment variable.
    pub access_key_id: Option<String>,
    /// Default: the `AWS_SECRET_ACCESS_KEY` environment variable.
    pub secret_access_key: Option<String>,
    /// Allow a plain-HTTP endpoint.
    #[serde(default)]
    pub allow_http: bool,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    pub listen: Option<String>,
    /// On SIGTERM/SIGINT, how long requests in flight may take to finish (default 10s).
    #[serde(default, deserialize_with = "de_duration")]
    pub shutdown_grace: Option<Duration>,
    /// How long a connection may take to send a request's header, from its opening or its
    /// previous response (idle keep-alive connections close after it; default 10s).
    #[serde(default, deserialize_with = "de_duration")]
    pub header_timeout: Option<Duration>,
    /// How long a request's body may take to arrive (default 30s); a body shorter than its
    /// Content-Length is answered 400 after it.
    #[serde(default, deserialize_with = "de_duration")]
    pub body_timeout: Option<Duration>,
    /// The most connections open at once (default: three quarters of the process'
    /// file-descriptor limit); more get 503.
    pub max_connections: Option<usize>,
    /// How long a query may run before it is answered 503 and stopped (default 60s).
    #[serde(default, deserialize_with = "de_duration")]
    pub query_timeout: Option<Duration>,
    /// How many queries run at once (default: the cores, at least 2); more wait up to 5 s,
    /// then get 503.
    pub max_concurrent_queries: Option<usize>,
    /// The most samples a query's merged profile, and nodes its flame graph, may have
    /// (default 1,000,000); a query past it is answered 422 naming this setting.
    pub query_max_nodes: Option<usize>,
    /// The deepest stack a query may meet, in frames (default 2048, the ingest limit).
    pub query_max_depth: Option<usize>,
    /// The most bytes a query's answer may have (default 64MiB).
    #[serde(default, deserialize_with = "de_size")]
    pub query_max_output: Option<u64>,
}

/// One `[[scrape]]` job.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScrapeConfig {
    pub job: String,
    /// Static targets (`host:port`); may be empty when the job discovers its targets.
    #[serde(default)]
    pub targets: Vec<String>,
    /// Targets from JSON/YAML files (`[[scrape.file_sd]]`, Prometheus' `file_sd_configs`).
    #[serde(default, alias = "file_sd_configs")]
    pub file_sd: Vec<FileSdConfig>,
    /// Targets from an HTTP endpoint (`[[scrape.http_sd]]`, Prometheus' `http_sd_configs`).
    #[serde(default, alias = "http_sd_configs")]
    pub http_sd: Vec<HttpSdConfig>,
    /// Targets from DNS SRV or A/AAAA records (`[[scrape.dns_sd]]`, `dns_sd_configs`).
    #[serde(default, alias = "dns_sd_configs")]
    pub dns_sd: Vec<DnsSdConfig>,
    /// Relabelling rules applied to every target, static or discovered (`[[scrape.relabel]]`,
    /// Prometheus' `relabel_configs`).
    #[serde(default, alias = "relabel_configs")]
    pub relabel: Vec<RelabelConfig>,
    #[serde(default, deserialize_with = "de_duration")]
    pub interval: Option<Duration>,
    #[serde(default, deserialize_with = "de_duration")]
    pub timeout: Option<Duration>,
    /// CPU profile window (default: the interval minus 1 s, at most 10 s).
    #[serde(default, deserialize_with = "de_duration")]
    pub cpu_window: Option<Duration>,
    #[serde(default)]
    pub profiles: Option<Vec<String>>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Where the pprof handlers are mounted (default `/debug/pprof`).
    pub path_prefix: Option<String>,
    /// `http` (default) or `https`.
    pub scheme: Option<String>,
    pub bearer_token: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Accept invalid TLS certificates (self-signed test targets).
    #[serde(default)]
    pub insecure_skip_verify: bool,
    /// Runtime-metric sources to scrape besides profiles: `expvar` (`/debug/vars`) and
    /// `prometheus` (the `go_*` and `process_*` families of a Prometheus `/metrics`).
    #[serde(default)]
    pub metrics: Vec<String>,
    /// Path of expvar's handler (default `/debug/vars`).
    pub expvar_path: Option<String>,
    /// Path of the Prometheus handler (default `/metrics`).
    pub metrics_path: Option<String>,
    /// Largest response accepted (default 64MiB).
    #[serde(default, deserialize_with = "de_size")]
    pub max_body: Option<u64>,
    /// Execution traces, when `profiles` lists `trace`: how often and how long (default
    /// `{ every = "5m", seconds = 5, max_bytes = "64MiB" }`).
    #[serde(default)]
    pub trace: TraceSettings,
}

/// `trace = { every = "5m", seconds = 5, max_bytes = "64MiB" }` in a scrape job.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceSettings {
    /// Time between two traces of a target (default 5m). Each target's schedule is offset
    /// by a fixed fraction of it derived from its URL, so a fleet does not trace at once.
    #[serde(default, deserialize_with = "de_duration")]
    pub every: Option<Duration>,
    /// How long each trace runs, in seconds (default 5).
    pub seconds: Option<u64>,
    /// Largest trace kept (default 64MiB): a longer response is cut off and not stored.
    #[serde(default, deserialize_with = "de_size")]
    pub max_bytes: Option<u64>,
}

impl TraceSettings {
    pub fn every(&self) -> Duration {
        self.every.unwrap_or(Duration::from_secs(300))
    }
    pub fn seconds(&self) -> u64 {
        self.seconds.unwrap_or(5)
    }
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes.unwrap_or(64 << 20)
    }
}

/// The whole file.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub storage: StorageConfig,
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub scrape: Vec<ScrapeConfig>,
    /// `gocost compare`'s settings (read by the CLI); a file may hold both.
    #[serde(default)]
    pub compare: Option<toml::Table>,
    /// Prices for cost (`/api/v1/cost`, the cost gauges, `gocost cost --config`).
    #[serde(default)]
    pub cost: CostConfig,
    /// Alert rules (`[[alert]]`) and how often they run (`[alerting]`).
    #[serde(default)]
    pub alert: Vec<AlertRule>,
    #[serde(default)]
    pub alerting: AlertingConfig,
    /// Bearer tokens and their scopes (`[[auth.tokens]]`); none = no auth, as before.
    #[serde(default)]
    pub auth: AuthConfig,
    /// `X-Scope-OrgID` tenants (`[tenancy]`); off = one anonymous tenant.
    #[serde(default)]
    pub tenancy: TenancyConfig,
    /// Per-tenant push limits (`[limits]`).
    #[serde(default)]
    pub limits: LimitsConfig,
    /// Several instances over one bucket (`[cluster]`; absent: one instance, as before).
    pub cluster: Option<ClusterConfig>,
}

/// `[cluster]`: this instance as one of several sharing one bucket (docs/adr/0020,
/// docs/deploy.md).
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// This instance's id, in its block names and its part of the bucket index: 1 to 64 of
    /// `A-Z a-z 0-9 _ - .`; default: the host name.
    pub instance: Option<String>,
    /// `"i/n"`: scrape only the targets whose hash mod n is i ([`shard_of`]); default all.
    pub shard: Option<String>,
    /// Base URLs of the other instances (`http://host:4040`), asked for their heads at
    /// query time; listing this instance too is harmless.
    #[serde(default)]
    pub peers: Vec<String>,
    /// `"all"` (default: scrape, accept pushes, write blocks, answer queries) or `"query"`
    /// (answer queries only: no scraping, no WAL data).
    pub role: Option<String>,
    /// How often the bucket index is read for other instances' new blocks (default 15s).
    #[serde(default, deserialize_with = "de_duration")]
    pub refresh: Option<Duration>,
    /// How long a query waits for a peer before answering without it, marked partial
    /// (default 5s).
    #[serde(default, deserialize_with = "de_duration")]
    pub peer_timeout: Option<Duration>,
    /// A token with the admin scope sent to the peers (when they check tokens).
    pub peer_token: Option<String>,
    /// Who compacts the bucket's blocks and applies retention to them (docs/adr/0022):
    /// `"auto"` (default: one instance elected through a lease object if the bucket
    /// honours conditional writes, else each writer its own blocks), `"this"` (this
    /// instance, statically: exactly one of the bucket's instances) or `"none"`.
    pub compactor: Option<String>,
    /// How long the compactor lease lasts unless renewed (default 60s; renewed every
    /// third of it; a killed compactor's lease is taken over after it).
    #[serde(default, deserialize_with = "de_duration")]
    pub lease_ttl: Option<Duration>,
}

/// A cluster instance's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Scrapes, accepts pushes, writes blocks, answers queries.
    All,
    /// Answers queries only.
    Query,
}

impl Role {
    pub fn parse(s: &str) -> Result<Role, String> {
        match s {
            "all" => Ok(Role::All),
            "query" => Ok(Role::Query),
            _ => Err(format!("unknown role {s:?} (all or query)")),
        }
    }
}

impl ClusterConfig {
    /// The instance id: the configured one, else the host name (characters an id may not
    /// hold replaced by `-`), else `gocost`.
    pub fn instance(&self) -> String {
        self.instance.clone().unwrap_or_else(default_instance)
    }
    /// (i, n) of `shard`, or (0, 1).
    pub fn shard(&self) -> Result<(u64, u64), String> {
        self.shard.as_deref().map_or(Ok((0, 1)), parse_shard)
    }
    pub fn role(&self) -> Result<Role, String> {
        self.role.as_deref().map_or(Ok(Role::All), Role::parse)
    }
    pub fn refresh(&self) -> Duration {
        self.refresh.unwrap_or(Duration::from_secs(15))
    }
    pub fn peer_timeout(&self) -> Duration {
        self.peer_timeout.unwrap_or(Duration::from_secs(5))
    }
    pub fn compactor(&self) -> Result<gocost_store::Compactor, String> {
        match self.compactor.as_deref() {
            None | Some("auto") => Ok(gocost_store::Compactor::Auto),
            Some("this") => Ok(gocost_store::Compactor::This),
            Some("none") => Ok(gocost_store::Compactor::None),
            Some(s) => Err(format!("unknown compactor {s:?} (auto, this or none)")),
        }
    }
    pub fn lease_ttl(&self) -> Duration {
        self.lease_ttl.unwrap_or(Duration::from_secs(60))
    }
}

/// The host name as an instance id (see [`ClusterConfig::instance`]).
pub fn default_instance() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_default();
    let id: String = host
        .trim()
        .chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') {
                c
            } else {
                '-'
            }
        })
        .collect();
    if gocost_store::valid_instance(&id) {
        id
    } else {
        "gocost".to_string()
    }
}

/// Parses `"i/n"` (0 ≤ i < n).
pub fn parse_shard(s: &str) -> Result<(u64, u64), String> {
    let bad = || format!("shard {s:?} must be \"i/n\" with 0 <= i < n (e.g. \"2/4\")");
    let (i, n) = s.split_once('/').ok_or_else(bad)?;
    let i: u64 = i.trim().parse().map_err(|_| bad())?;
    let n: u64 = n.trim().parse().map_err(|_| bad())?;
    if n == 0 || i >= n {
        return Err(bad());
    }
    Ok((i, n))
}

/// Which shard a scrape target belongs to out of `n`: Prometheus' `hashmod` of the target's
/// address (`source_labels: [__address__]`, `modulus: n`): the MD5 of `host:port` as
/// written in `targets`, its last 8 bytes read as a big-endian integer, mod n.
pub fn shard_of(address: &str, n: u64) -> u64 {
    use md5::Digest;
    let d = md5::Md5::digest(address.as_bytes());
    let mut last = [0u8; 8];
    last.copy_from_slice(&d[8..16]);
    u64::from_be_bytes(last) % n.max(1)
}

/// `[auth]`: who may use the server. With no tokens every route is open (gocost's default,
/// for a loopback listener); with any, every API route needs one.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    #[serde(default)]
    pub tokens: Vec<TokenConfig>,
}

/// One `[[auth.tokens]]` entry. Its `Debug` never shows the secret.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// A name for logs and errors (the secret is never printed).
    pub name: String,
    /// The secret, sent as `Authorization: Bearer <token>` (or as a basic-auth password).
    pub token: String,
    /// `read` (queries, the UI's API calls), `write` (pushes; alias `ingest`), `admin`
    /// (everything, including gocost's own `/metrics`, any tenant).
    pub scopes: Vec<String>,
    /// Tenants this token may act for; empty = any.
    #[serde(default)]
    pub tenants: Vec<String>,
}

impl std::fmt::Debug for TokenConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenConfig")
            .field("name", &self.name)
            .field("token", &"<redacted>")
            .field("scopes", &self.scopes)
            .field("tenants", &self.tenants)
            .finish()
    }
}

/// `[tenancy]`: keep tenants' data apart by `X-Scope-OrgID`.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TenancyConfig {
    #[serde(default)]
    pub enabled: bool,
}

/// `[limits]`: per tenant. Unset = unlimited (except `max_body`).
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Pushes per second a tenant may make (sustained).
    pub ingest_rate: Option<f64>,
    /// Pushes a tenant may make at once above the rate (default: the rate, at least 1).
    pub ingest_burst: Option<f64>,
    /// Most series a tenant may push to (new series past it are refused).
    pub max_series: Option<usize>,
    /// Largest push body (default 16MiB); decompressed profiles may be 4× that.
    #[serde(default, deserialize_with = "de_size")]
    pub max_body: Option<u64>,
    /// Largest uploaded execution trace, `POST /api/v1/traces` (default 64MiB: what a
    /// scrape job's `trace.max_bytes` takes by default, so a trace gocost would scrape can
    /// also be uploaded).
    #[serde(default, deserialize_with = "de_size")]
    pub max_trace_bytes: Option<u64>,
}

/// A TOML error about a line that mentions a token (it quotes that line, and may quote the
/// value) with every quoted string replaced, so a typo never prints a secret.
fn redact_secrets(e: &str) -> String {
    if !e.to_ascii_lowercase().contains("token") {
        return e.to_string();
    }
    let mut out = String::with_capacity(e.len());
    let mut quoted = false;
    for c in e.chars() {
        if c == '"' {
            if quoted {
                out.push_str("<redacted>\"");
            } else {
                out.push('"');
            }
            quoted = !quoted;
        } else if !quoted {
            out.push(c);
        }
    }
    out
}

/// A tenant id: 1–64 of `[A-Za-z0-9_.-]`.
pub fn valid_tenant(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 64
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// `[cost]`: what a core and a GiB of memory cost per hour. Unset fields keep gocost's
/// defaults (AWS Fargate on-demand in us-east-1: 0.04048 per vCPU-hour, 0.004445 per
/// GB-hour, USD).
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct CostConfig {
    pub cpu_per_core_hour: Option<f64>,
    pub memory_per_gib_hour: Option<f64>,
    pub currency: Option<String>,
}

pub const DEFAULT_PROFILES: &[&str] = &["cpu", "heap", "allocs", "goroutine", "mutex", "block"];

impl ScrapeConfig {
    pub fn interval(&self) -> Duration {
        self.interval.unwrap_or(Duration::from_secs(15))
    }
    pub fn cpu_window(&self) -> Duration {
        self.cpu_window.unwrap_or_else(|| {
            self.interval()
                .saturating_sub(Duration::from_secs(1))
                .clamp(Duration::from_secs(1), Duration::from_secs(10))
        })
    }
    /// Request timeout for snapshot profiles (CPU requests add their window).
    pub fn timeout(&self) -> Duration {
        self.timeout
            .unwrap_or_else(|| self.interval().min(Duration::from_secs(10)))
    }
    pub fn profiles(&self) -> Vec<String> {
        self.profiles
            .clone()
            .unwrap_or_else(|| DEFAULT_PROFILES.iter().map(|s| s.to_string()).collect())
    }
    pub fn max_body(&self) -> u64 {
        self.max_body.unwrap_or(64 << 20)
    }
    pub fn expvar_path(&self) -> &str {
        self.expvar_path.as_deref().unwrap_or("/debug/vars")
    }
    pub fn metrics_path(&self) -> &str {
        self.metrics_path.as_deref().unwrap_or("/metrics")
    }
    pub fn path_prefix(&self) -> &str {
        self.path_prefix.as_deref().unwrap_or("/debug/pprof")
    }
}

impl Config {
    /// Parses and validates a config file's text; errors name the file, line and key.
    pub fn parse(text: &str, file: &Path) -> Result<Config, String> {
        let mut cfg: Config = toml::from_str(text)
            .map_err(|e| format!("{}: {}", file.display(), redact_secrets(&e.to_string())))?;
        for (i, s) in cfg.scrape.iter().enumerate() {
            let at =
                |what: &str| format!("{}: scrape[{i}] (job {:?}): {what}", file.display(), s.job);
            if s.job.is_empty() {
                return Err(at("job must not be empty"));
            }
            if s.targets.is_empty()
                && s.file_sd.is_empty()
                && s.http_sd.is_empty()
                && s.dns_sd.is_empty()
            {
                return Err(at(
                    "targets must list at least one host:port (or add file_sd, http_sd or dns_sd)",
                ));
            }
            s.validate_discovery().map_err(|e| at(&e))?;
            for p in s.profiles() {
                if !gocost_store::KINDS.contains(&p.as_str()) && p != "trace" {
                    return Err(at(&format!(
                        "unknown profile {p:?} in profiles (one of {}, trace)",
                        gocost_store::KINDS.join(", ")
                    )));
                }
            }
            let t = &s.trace;
            if t.seconds() == 0 || t.seconds() > 60 {
                return Err(at("trace.seconds must be from 1 to 60"));
            }
            if t.every() < Duration::from_secs(t.seconds() + 1) {
                return Err(at("trace.every must be longer than trace.seconds"));
            }
            if t.max_bytes() == 0 || t.max_bytes() > gocost_store::MAX_TRACE_BYTES as u64 {
                return Err(at(&format!(
                    "trace.max_bytes must be from 1 to {} bytes",
                    gocost_store::MAX_TRACE_BYTES
                )));
            }
            for m in &s.metrics {
                if m != "expvar" && m != "prometheus" {
                    return Err(at(&format!(
                        "unknown metrics source {m:?} (supported: expvar, prometheus)"
                    )));
                }
            }
            if s.interval() < Duration::from_secs(1) {
                return Err(at("interval must be at least 1s"));
            }
            if let Some(sc) = &s.scheme
                && sc != "http"
                && sc != "https"
            {
                return Err(at("scheme must be http or https"));
            }
            for t in &s.targets {
                if t.contains('/') || !t.contains(':') {
                    return Err(at(&format!("target {t:?} must be host:port")));
                }
            }
            if cfg.scrape[..i].iter().any(|o| o.job == s.job) {
                return Err(at("duplicate job name"));
            }
        }
        for (i, r) in cfg.alert.iter().enumerate() {
            r.validate()
                .map_err(|e| format!("{}: alert[{i}] ({:?}): {e}", file.display(), r.name))?;
            if cfg.alert[..i].iter().any(|o| o.name == r.name) {
                return Err(format!(
                    "{}: alert[{i}] ({:?}): duplicate alert name",
                    file.display(),
                    r.name
                ));
            }
        }
        for (k, v) in [
            ("cpu_per_core_hour", cfg.cost.cpu_per_core_hour),
            ("memory_per_gib_hour", cfg.cost.memory_per_gib_hour),
        ] {
            if let Some(x) = v
                && !(x >= 0.0 && x.is_finite())
            {
                return Err(format!(
                    "{}: cost.{k} must be a price of 0 or more, not {x}",
                    file.display()
                ));
            }
        }
        for (i, t) in cfg.auth.tokens.iter().enumerate() {
            let at = |what: &str| {
                format!(
                    "{}: auth.tokens[{i}] ({:?}): {what}",
                    file.display(),
                    t.name
                )
            };
            if t.name.is_empty() {
                return Err(at("name must not be empty"));
            }
            if t.token.len() < 16 || t.token.len() > 256 {
                return Err(at("token must be 16 to 256 bytes"));
            }
            if t.scopes.is_empty() {
                return Err(at("scopes must list read, write and/or admin"));
            }
            for sc in &t.scopes {
                if !matches!(sc.as_str(), "read" | "write" | "ingest" | "admin") {
                    return Err(at(&format!(
                        "unknown scope {sc:?} (read, write or its alias ingest, admin)"
                    )));
                }
            }
            for tn in &t.tenants {
                if !valid_tenant(tn) {
                    return Err(at(&format!("tenant {tn:?}: 1 to 64 of A-Z a-z 0-9 _ - .")));
                }
            }
            if cfg.auth.tokens[..i].iter().any(|o| o.token == t.token) {
                return Err(at("the same token is configured twice"));
            }
        }
        for (k, v) in [
            ("ingest_rate", cfg.limits.ingest_rate),
            ("ingest_burst", cfg.limits.ingest_burst),
        ] {
            if let Some(x) = v
                && !(x > 0.0 && x.is_finite())
            {
                return Err(format!(
                    "{}: limits.{k} must be a positive number, not {x}",
                    file.display()
                ));
            }
        }
        if let Some(b) = cfg.storage.block_duration
            && (b < Duration::from_secs(1) || b > Duration::from_secs(86400))
        {
            return Err(format!(
                "{}: storage.block_duration must be between 1s and 24h",
                file.display()
            ));
        }
        if let Some(n) = cfg.storage.scrape_workers
            && !(1..=1024).contains(&n)
        {
            return Err(format!(
                "{}: storage.scrape_workers must be between 1 and 1024, not {n}",
                file.display()
            ));
        }
        for (k, v) in [
            ("shutdown_grace", cfg.server.shutdown_grace),
            ("header_timeout", cfg.server.header_timeout),
            ("body_timeout", cfg.server.body_timeout),
            ("query_timeout", cfg.server.query_timeout),
        ] {
            if v.is_some_and(|d| d.is_zero()) {
                return Err(format!(
                    "{}: server.{k} must be more than 0s",
                    file.display()
                ));
            }
        }
        if cfg.server.max_concurrent_queries == Some(0) {
            return Err(format!(
                "{}: server.max_concurrent_queries must be at least 1",
                file.display()
            ));
        }
        for (k, v) in [
            ("query_max_nodes", cfg.server.query_max_nodes),
            ("query_max_depth", cfg.server.query_max_depth),
            (
                "query_max_output",
                cfg.server.query_max_output.map(|b| b as usize),
            ),
        ] {
            if v == Some(0) {
                return Err(format!("{}: server.{k} must be at least 1", file.display()));
            }
        }
        if cfg.server.max_connections == Some(0) {
            return Err(format!(
                "{}: server.max_connections must be at least 1",
                file.display()
            ));
        }
        if let Some(s3) = &cfg.storage.s3
            && s3.bucket.is_empty()
        {
            return Err(format!("{}: storage.s3.bucket must be set", file.display()));
        }
        if cfg.storage.s3.is_some() && cfg.storage.shared_dir.is_some() {
            return Err(format!(
                "{}: storage.s3 and storage.shared_dir: blocks go to one place",
                file.display()
            ));
        }
        if let Some(c) = &cfg.cluster {
            let at = |what: String| format!("{}: cluster.{what}", file.display());
            if let Some(i) = &c.instance
                && !gocost_store::valid_instance(i)
            {
                return Err(at(format!("instance {i:?}: 1 to 64 of A-Z a-z 0-9 _ - .")));
            }
            c.shard().map_err(at)?;
            c.role().map_err(|e| at(format!("role: {e}")))?;
            c.compactor().map_err(|e| at(format!("compactor: {e}")))?;
            if c.lease_ttl.is_some_and(|d| d < Duration::from_secs(3)) {
                return Err(at("lease_ttl must be at least 3s".into()));
            }
            for p in &c.peers {
                if !(p.starts_with("http://") || p.starts_with("https://")) {
                    return Err(at(format!(
                        "peers: {:?} must be a base URL such as http://host:4040",
                        redact_url(p)
                    )));
                }
            }
            for (k, v) in [("refresh", c.refresh), ("peer_timeout", c.peer_timeout)] {
                if v.is_some_and(|d| d.is_zero()) {
                    return Err(at(format!("{k} must be more than 0s")));
                }
            }
        }
        if let Some(si) = cfg.storage.sync_interval
            && si > Duration::from_secs(5)
        {
            return Err(format!(
                "{}: storage.sync_interval must be at most 5s",
                file.display()
            ));
        }
        // file_sd paths are relative to the config file's directory, as in Prometheus.
        if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
            for f in cfg.scrape.iter_mut().flat_map(|s| s.file_sd.iter_mut()) {
                for p in &mut f.files {
                    if Path::new(p.as_str()).is_relative() {
                        *p = dir.join(p.as_str()).to_string_lossy().into_owned();
                    }
                }
            }
        }
        Ok(cfg)
    }

    pub fn load(path: &Path) -> Result<Config, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Self::parse(&text, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[storage]
path = "./data"
retention = "30d"

[[scrape]]
job = "checkout"
targets = ["127.0.0.1:6060"]
interval = "15s"
profiles = ["cpu", "heap", "allocs", "goroutine", "mutex", "block"]
labels = { env = "prod" }
"#;

    #[test]
    fn the_minimal_file_works() {
        let c = Config::parse(MINIMAL, Path::new("gocost.toml")).unwrap();
        assert_eq!(c.storage.retention, Some(Duration::from_secs(30 * 86400)));
        assert_eq!(c.scrape[0].interval(), Duration::from_secs(15));
        assert_eq!(c.scrape[0].cpu_window(), Duration::from_secs(10));
        assert_eq!(c.scrape[0].labels["env"], "prod");
        // One file can also hold `gocost compare`'s settings.
        let both = format!("{MINIMAL}\n[compare]\nthreshold = \"10%\"\n");
        let c = Config::parse(&both, Path::new("gocost.toml")).unwrap();
        assert!(c.compare.is_some());
    }

    #[test]
    fn the_query_budget_is_read_and_checked() {
        let with = |server: &str| format!("[server]\n{server}\n{MINIMAL}");
        let c = Config::parse(
            &with("query_max_nodes = 5000\nquery_max_depth = 64\nquery_max_output = \"1MiB\""),
            Path::new("gocost.toml"),
        )
        .unwrap();
        assert_eq!(c.server.query_max_nodes, Some(5000));
        assert_eq!(c.server.query_max_depth, Some(64));
        assert_eq!(c.server.query_max_output, Some(1 << 20));
        let e = Config::parse(&with("query_max_nodes = 0"), Path::new("gocost.toml")).unwrap_err();
        assert!(
            e.contains("server.query_max_nodes must be at least 1"),
            "{e}"
        );
    }

    #[test]
    fn errors_name_line_and_key() {
        let bad = MINIMAL.replace("interval = \"15s\"", "interval = \"15 parsecs\"");
        let e = Config::parse(&bad, Path::new("gocost.toml")).unwrap_err();
        assert!(
            e.contains("gocost.toml") && e.contains("line 9") && e.contains("interval"),
            "{e}"
        );
        let typo = MINIMAL.replace("targets", "tragets");
        let e = Config::parse(&typo, Path::new("g.toml")).unwrap_err();
        assert!(e.contains("tragets") && e.contains("line 8"), "{e}");
        // A broken token line is reported without the secret.
        let secret =
            "[[auth.tokens]]\nname = \"a\"\ntoken = \"s3cret-s3cret-s3cret\nscopes = [\"read\"]\n";
        let e = Config::parse(secret, Path::new("g.toml")).unwrap_err();
        assert!(e.contains("line 3") && !e.contains("s3cret"), "{e}");
        let secret = "[[auth.tokens]]\nname = \"a\"\ntoken = 42\nscopes = [\"read\"]\n";
        assert!(Config::parse(secret, Path::new("g.toml")).is_err());
        let kind = MINIMAL.replace("\"mutex\"", "\"mutexes\"");
        let e = Config::parse(&kind, Path::new("g.toml")).unwrap_err();
        assert!(e.contains("unknown profile \"mutexes\""), "{e}");
    }

    #[test]
    fn the_cluster_section_is_read_and_checked() {
        let with = |c: &str| format!("{MINIMAL}\n[cluster]\n{c}\n");
        let c = Config::parse(
            &with("instance = \"a-1\"\nshard = \"2/4\"\npeers = [\"http://b:4040\"]\nrole = \"query\""),
            Path::new("g.toml"),
        )
        .unwrap();
        let cl = c.cluster.unwrap();
        assert_eq!(cl.instance(), "a-1");
        assert_eq!(cl.shard(), Ok((2, 4)));
        assert_eq!(cl.role(), Ok(Role::Query));
        assert_eq!(cl.refresh(), Duration::from_secs(15));
        assert_eq!(cl.compactor(), Ok(gocost_store::Compactor::Auto));
        assert_eq!(cl.lease_ttl(), Duration::from_secs(60));
        let c = Config::parse(
            &with("compactor = \"this\"\nlease_ttl = \"20s\""),
            Path::new("g.toml"),
        )
        .unwrap();
        let cl = c.cluster.unwrap();
        assert_eq!(cl.compactor(), Ok(gocost_store::Compactor::This));
        assert_eq!(cl.lease_ttl(), Duration::from_secs(20));
        for (bad, says) in [
            ("compactor = \"yes\"", "cluster.compactor"),
            ("lease_ttl = \"1s\"", "cluster.lease_ttl"),
            ("shard = \"4/4\"", "cluster.shard"),
            ("shard = \"x\"", "cluster.shard"),
            ("instance = \"a/b\"", "cluster.instance"),
            ("role = \"writer\"", "cluster.role"),
            ("peers = [\"b:4040\"]", "cluster.peers"),
        ] {
            let e = Config::parse(&with(bad), Path::new("g.toml")).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
        assert!(gocost_store::valid_instance(&default_instance()));
    }

    #[test]
    fn shards_are_prometheus_hashmod() {
        // Prometheus: relabel hashmod, source_labels [__address__], modulus 4 (values
        // computed with Go's crypto/md5 as relabel.go does).
        for (addr, mod4, mod3) in [
            ("127.0.0.1:6060", 2, 1),
            ("10.0.0.7:8080", 2, 2),
            ("api-1:6060", 0, 0),
            ("db:5432", 2, 1),
        ] {
            assert_eq!(shard_of(addr, 4), mod4, "{addr}");
            assert_eq!(shard_of(addr, 3), mod3, "{addr}");
        }
        assert_eq!(shard_of("x:1", 1), 0);
    }

    #[test]
    fn durations_and_sizes() {
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert!(parse_duration("5").is_err() && parse_duration("5x").is_err());
        assert_eq!(parse_size("64MiB").unwrap(), 64 << 20);
        assert!(parse_size("1PB").is_err());
    }
}
