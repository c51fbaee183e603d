//! Who may do what, and whose data they see: bearer tokens with scopes, tenants
//! (`X-Scope-OrgID`) and per-tenant push limits. One middleware ([`guard`]) runs before
//! every route:
//!
//! - the route's scope: `/` and `/ui/*` are public (no data), pushes need `write`, gocost's
//!   own `/metrics` (every tenant's targets and gauges) needs `admin`, everything else
//!   `read`; `admin` implies the others. With no tokens configured every route is open.
//! - the tenant: with tenancy on, `X-Scope-OrgID` (or the token's only tenant); without
//!   one, the anonymous tenant (scraped data). A token bound to tenants may act for no other.
//! - reads: the tenant's matcher `__tenant__="<id>"` (`""` for the anonymous tenant: series
//!   without the label) is added to every `query`/`base_query` selector, so the handlers
//!   only ever see the tenant's series; series and label listings are answered here,
//!   filtered, without the reserved label (docs/adr/0004).
//! - pushes: the tenant's rate (token bucket) → 429 with `Retry-After`.
//!
//! Tokens are compared in constant time and never logged.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use gocost_store::{SeriesKey, Store};

use crate::query::Lent;
use crate::{ApiError, AppState};

/// The reserved series label holding a pushed series' tenant (absent = anonymous).
pub const TENANT_LABEL: &str = "__tenant__";

/// The route an execution trace is uploaded to (its body has its own cap).
pub const TRACE_UPLOAD: &str = "/api/v1/traces";
/// Where `gocost load --store` uploads runs (and the list of them).
pub const LOAD_RUNS: &str = "/api/v1/loadruns";

/// The tenant of scraped data and of requests without `X-Scope-OrgID`.
pub const ANONYMOUS: &str = "anonymous";
/// Tenants whose push rate is tracked before idle ones are forgotten.
const MAX_TRACKED: usize = 10_000;
/// Longest token compared (configured tokens are at most this long).
const MAX_TOKEN: usize = 256;

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub(crate) enum Scope {
    Public,
    Read,
    Write,
    Admin,
}

struct Token {
    name: String,
    secret: Vec<u8>,
    read: bool,
    write: bool,
    admin: bool,
    tenants: Vec<String>,
}

/// The settings in force (swapped on reload).
#[derive(Default)]
struct Settings {
    tokens: Vec<Token>,
    tenancy: bool,
    rate: Option<f64>,
    burst: f64,
    max_series: Option<usize>,
    max_body: u64,
    max_trace_body: u64,
}

/// Auth, tenancy and limits state, held by [`AppState`].
pub struct Access {
    settings: RwLock<Arc<Settings>>,
    /// Per tenant: token bucket (tokens, last refill).
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
    /// Per tenant: the series it has (seeded from the store on first use).
    series: Mutex<HashMap<String, HashSet<SeriesKey>>>,
}

impl Default for Access {
    fn default() -> Self {
        Access {
            settings: RwLock::new(Arc::new(Settings {
                max_body: DEFAULT_MAX_BODY,
                max_trace_body: DEFAULT_MAX_TRACE_BODY,
                burst: 1.0,
                ..Settings::default()
            })),
            buckets: Mutex::default(),
            series: Mutex::default(),
        }
    }
}

/// Largest push body by default.
pub const DEFAULT_MAX_BODY: u64 = 16 << 20;

/// Largest uploaded execution trace by default (a scrape job's default `trace.max_bytes`).
pub const DEFAULT_MAX_TRACE_BODY: u64 = 64 << 20;

impl Access {
    /// Applies a config's `[auth]`, `[tenancy]` and `[limits]` (at start and on reload).
    pub fn configure(&self, cfg: &gocost_config::Config) {
        let tokens = cfg
            .auth
            .tokens
            .iter()
            .map(|t| {
                let has = |s: &str| t.scopes.iter().any(|x| x == s);
                Token {
                    name: t.name.clone(),
                    secret: t.token.as_bytes().to_vec(),
                    read: has("read") || has("admin"),
                    write: has("write") || has("ingest") || has("admin"),
                    admin: has("admin"),
                    tenants: t.tenants.clone(),
                }
            })
            .collect();
        let l = &cfg.limits;
        let s = Settings {
            tokens,
            tenancy: cfg.tenancy.enabled,
            rate: l.ingest_rate,
            burst: l.ingest_burst.or(l.ingest_rate).unwrap_or(1.0).max(1.0),
            max_series: l.max_series,
            max_body: l.max_body.unwrap_or(DEFAULT_MAX_BODY),
            max_trace_body: l.max_trace_bytes.unwrap_or(DEFAULT_MAX_TRACE_BODY),
        };
        if let Ok(mut g) = self.settings.write() {
            *g = Arc::new(s);
        }
        if let Ok(mut b) = self.buckets.lock() {
            b.clear();
        }
    }

    fn settings(&self) -> Arc<Settings> {
        self.settings
            .read()
            .map(|g| g.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// Largest push body accepted.
    pub fn max_body(&self) -> u64 {
        self.settings().max_body
    }

    /// Largest body `path` accepts, and the setting that says so: an uploaded trace has its
    /// own cap (`max_trace_bytes`), every other push `max_body`.
    pub fn body_cap(&self, path: &str) -> (u64, &'static str) {
        let s = self.settings();
        if path == TRACE_UPLOAD {
            (s.max_trace_body, "max_trace_bytes")
        } else {
            (s.max_body, "max_body")
        }
    }

    /// Takes one push from the tenant's bucket, or says how many seconds to wait.
    fn take(&self, s: &Settings, tenant: &str) -> Result<(), u64> {
        let Some(rate) = s.rate else {
            return Ok(());
        };
        let now = Instant::now();
        let mut b = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if b.len() >= MAX_TRACKED && !b.contains_key(tenant) {
            // Unbound tokens (or no tokens) may name any tenant: forget the idle buckets
            // (those that would be full again) rather than grow without bound.
            b.retain(|_, (tokens, at)| {
                *tokens + now.duration_since(*at).as_secs_f64() * rate < s.burst
            });
        }
        let e = b.entry(tenant.to_string()).or_insert((s.burst, now));
        e.0 = (e.0 + now.duration_since(e.1).as_secs_f64() * rate).min(s.burst);
        e.1 = now;
        if e.0 >= 1.0 {
            e.0 -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - e.0) / rate).ceil().max(1.0) as u64)
        }
    }

    /// Admits a push's series for the tenant under `max_series`: all or none. `Err` = the
    /// number of series the tenant has.
    pub(crate) fn admit_series(
        &self,
        store: &Store,
        tenant: &Tenant,
        keys: &[SeriesKey],
    ) -> Result<(), usize> {
        let s = self.settings();
        let Some(max) = s.max_series else {
            return Ok(());
        };
        let mut g = self.series.lock().unwrap_or_else(|p| p.into_inner());
        let known = g.entry(tenant.id.clone()).or_insert_with(|| {
            store
                .series()
                .into_iter()
                .filter(|k| tenant.owns(k))
                .collect()
        });
        let count_new = |known: &HashSet<SeriesKey>| {
            keys.iter()
                .filter(|k| !known.contains(*k))
                .collect::<BTreeSet<&SeriesKey>>()
        };
        if known.len() + count_new(known).len() > max {
            // Retention may have dropped series since the count was taken: recount once.
            *known = store
                .series()
                .into_iter()
                .filter(|k| tenant.owns(k))
                .collect();
            if known.len() + count_new(known).len() > max {
                return Err(known.len());
            }
        }
        for k in keys {
            known.insert(k.clone());
        }
        Ok(())
    }
}

/// The tenant a request acts for.
#[derive(Clone, Debug)]
pub struct Tenant {
    pub id: String,
    /// Tenancy on: series keys carry [`TENANT_LABEL`] (except the anonymous tenant's).
    pub enabled: bool,
}

impl Tenant {
    /// The value of [`TENANT_LABEL`] this tenant's series have (`""` = absent).
    fn label(&self) -> &str {
        if !self.enabled || self.id == ANONYMOUS {
            ""
        } else {
            &self.id
        }
    }

    /// Whether a series belongs to this tenant.
    pub fn owns(&self, k: &SeriesKey) -> bool {
        self.owns_labels(&k.labels)
    }

    /// Whether labels (a series', an alert's) belong to this tenant.
    pub fn owns_labels(&self, l: &std::collections::BTreeMap<String, String>) -> bool {
        !self.enabled || l.get(TENANT_LABEL).map_or("", String::as_str) == self.label()
    }

    /// Tags a pushed series with this tenant.
    pub fn tag(&self, labels: &mut std::collections::BTreeMap<String, String>) {
        labels.remove(TENANT_LABEL);
        if !self.label().is_empty() {
            labels.insert(TENANT_LABEL.to_string(), self.label().to_string());
        }
    }
}

fn scope_of(method: &axum::http::Method, path: &str) -> Scope {
    match path {
        "/api/v1/traces" if method == axum::http::Method::POST => Scope::Write,
        LOAD_RUNS if method == axum::http::Method::POST => Scope::Write,
        "/" => Scope::Public,
        p if p.starts_with("/ui/") => Scope::Public,
        "/ingest"
        | "/pyroscope/ingest"
        | "/push.v1.PusherService/Push"
        | crate::routes::push::OTLP_PROFILES
        | crate::routes::push::OTLP_GRPC_EXPORT => Scope::Write,
        "/metrics" => Scope::Admin,
        // A peer's head, for any tenant (the asking instance confined its selector).
        crate::cluster::HEAD_ROUTE => Scope::Admin,
        _ => Scope::Read,
    }
}

/// Equal in time independent of where they differ and of the presented length (up to
/// [`MAX_TOKEN`]; longer never matches): both are padded to [`MAX_TOKEN`] bytes and
/// compared with `subtle`, and so are their lengths.
fn ct_eq(presented: &[u8], secret: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    let pad = |b: &[u8]| {
        let mut a = [0u8; MAX_TOKEN];
        let n = b.len().min(MAX_TOKEN);
        a[..n].copy_from_slice(&b[..n]);
        a
    };
    let fits = subtle::Choice::from(u8::from(presented.len() <= MAX_TOKEN));
    let same_len = (presented.len() as u64).ct_eq(&(secret.len() as u64));
    let same_bytes = pad(presented)[..].ct_eq(&pad(secret)[..]);
    bool::from(fits & same_len & same_bytes)
}

/// Standard or URL-safe base64, padded or not (what clients put in basic auth).
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    use base64::engine::DecodePaddingMode;
    use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
    const CONFIG: GeneralPurposeConfig =
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    const STANDARD: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::STANDARD, CONFIG);
    const URL_SAFE: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::URL_SAFE, CONFIG);
    if s.len() > 4 * MAX_TOKEN {
        return None;
    }
    STANDARD.decode(s).or_else(|_| URL_SAFE.decode(s)).ok()
}

/// The credential of a request: `Authorization: Bearer <t>`, or basic auth whose password
/// is the token (what browsers and some agents send). `Ok(None)` = none sent.
fn credential(req: &Request) -> Result<Option<Vec<u8>>, &'static str> {
    let Some(h) = req.headers().get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let h = h.to_str().map_err(|_| "malformed Authorization header")?;
    let (scheme, rest) = h.split_once(' ').ok_or("malformed Authorization header")?;
    if scheme.eq_ignore_ascii_case("bearer") {
        return Ok(Some(rest.trim().as_bytes().to_vec()));
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let raw = base64_decode(rest.trim()).ok_or("malformed basic credentials")?;
        let pass = match raw.iter().position(|&b| b == b':') {
            Some(i) => raw[i + 1..].to_vec(),
            None => raw,
        };
        return Ok(Some(pass));
    }
    Err("unsupported Authorization scheme: use Bearer <token>")
}

/// The middleware: authenticate, authorize, pick the tenant, confine reads, limit pushes.
pub async fn guard(State(st): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    check(st, req, next)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn check(st: Arc<AppState>, mut req: Request, next: Next) -> Result<Response, ApiError> {
    let s = st.access.settings();
    // Decoded, so that an escaped path cannot dodge a rule the router would still route.
    let path = percent_decode(req.uri().path());
    let scope = scope_of(req.method(), &path);
    let mut token: Option<&Token> = None;
    if !s.tokens.is_empty() && scope != Scope::Public {
        let presented = match credential(&req) {
            Ok(Some(c)) => c,
            Ok(None) => {
                return Err(ApiError::Unauthorized(
                    "missing token: send Authorization: Bearer <token> (tokens are configured in [[auth.tokens]])".into(),
                ));
            }
            Err(m) => return Err(ApiError::Unauthorized(m.into())),
        };
        // Compare with every token (no early exit).
        for t in &s.tokens {
            if ct_eq(&presented, &t.secret) && token.is_none() {
                token = Some(t);
            }
        }
        let Some(t) = token else {
            return Err(ApiError::Unauthorized("invalid token".into()));
        };
        let ok = match scope {
            Scope::Public => true,
            Scope::Read => t.read,
            Scope::Write => t.write,
            Scope::Admin => t.admin,
        };
        if !ok {
            let need = match scope {
                Scope::Write => "write",
                Scope::Admin => "admin",
                _ => "read",
            };
            return Err(ApiError::Forbidden(format!(
                "token {:?} lacks the {need} scope",
                t.name
            )));
        }
    }
    let tenant = if s.tenancy {
        let header = match req.headers().get("x-scope-orgid").map(|v| v.to_str()) {
            None => None,
            Some(Ok(v)) if gocost_config::valid_tenant(v.trim()) => Some(v.trim().to_string()),
            Some(_) => {
                return Err(ApiError::BadRequest(
                    "bad X-Scope-OrgID: 1 to 64 of A-Z a-z 0-9 _ - .".into(),
                ));
            }
        };
        let id = match (header, token) {
            (Some(h), _) => h,
            (None, Some(t)) if t.tenants.len() == 1 => t.tenants[0].clone(),
            (None, Some(t)) if !t.tenants.is_empty() && !t.admin => {
                return Err(ApiError::BadRequest(format!(
                    "token {:?} may act for several tenants: send X-Scope-OrgID",
                    t.name
                )));
            }
            (None, _) => ANONYMOUS.to_string(),
        };
        if let Some(t) = token
            && !t.admin
            && !t.tenants.is_empty()
            && !t.tenants.contains(&id)
        {
            return Err(ApiError::Forbidden(format!(
                "token {:?} may not act for tenant {id:?}",
                t.name
            )));
        }
        Tenant { id, enabled: true }
    } else {
        Tenant {
            id: ANONYMOUS.to_string(),
            enabled: false,
        }
    };
    if scope == Scope::Write
        && let Err(wait) = st.access.take(&s, &tenant.id)
    {
        return Err(ApiError::TooManyRequests {
            msg: format!(
                "tenant {:?} is over its push rate ({} per second): retry in {wait}s",
                tenant.id,
                s.rate.unwrap_or_default()
            ),
            retry_after: wait,
        });
    }
    if tenant.enabled && scope == Scope::Read {
        match path.as_str() {
            p if p == "/api/v1/series"
                || p == "/api/v1/labels"
                || p.starts_with("/api/v1/label/") =>
            {
                let query = req.uri().query().map(str::to_string);
                let path = p.to_string();
                return crate::query::blocking(&st, move |st| {
                    listing(st, query.as_deref(), &tenant, &path)
                })
                .await?;
            }
            "/api/v1/targets" if tenant.id != ANONYMOUS => {
                // Scrape targets belong to the anonymous tenant (the answer's shape kept).
                if req.uri().query().is_some_and(|q| q.contains("state=any")) {
                    return Ok(axum::Json(serde_json::json!({
                        "activeTargets": [],
                        "droppedTargets": [],
                    }))
                    .into_response());
                }
                return Ok(axum::Json(Vec::<serde_json::Value>::new()).into_response());
            }
            _ => {}
        }
        *req.uri_mut() = confine(req.uri(), &tenant).map_err(ApiError::BadRequest)?;
    }
    let confined = tenant.enabled && scope == Scope::Read;
    let tenant_label = tenant.label().to_string();
    req.extensions_mut().insert(tenant);
    let resp = next.run(req).await;
    if confined
        && !matches!(
            path.as_str(),
            "/api/v1/top"
                | "/api/v1/flame"
                | "/api/v1/timeline"
                | "/api/v1/diff"
                | "/api/v1/profile"
        )
    {
        return Ok(hide_tenant(resp, &tenant_label).await);
    }
    Ok(resp)
}

/// Removes the reserved label from a JSON answer that lists series labels (insight
/// routes): `"__tenant__"` keys, and the matcher inside series-key strings.
async fn hide_tenant(resp: Response, label: &str) -> Response {
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !is_json {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 256 << 20).await else {
        return ApiError::Internal("response too large".into()).into_response();
    };
    let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return Response::from_parts(parts, axum::body::Body::from(bytes));
    };
    let m = format!("{TENANT_LABEL}=\"{label}\"");
    strip(&mut v, &m);
    let mut r = Response::from_parts(parts, axum::body::Body::from(v.to_string()));
    r.headers_mut().remove(header::CONTENT_LENGTH);
    r
}

fn strip(v: &mut serde_json::Value, matcher: &str) {
    match v {
        serde_json::Value::Object(o) => {
            o.remove(TENANT_LABEL);
            for x in o.values_mut() {
                strip(x, matcher);
            }
        }
        serde_json::Value::Array(a) => {
            for x in a {
                strip(x, matcher);
            }
        }
        serde_json::Value::String(s) if s.contains(matcher) => {
            *s = s
                .replace(&format!("{matcher},"), "")
                .replace(&format!(",{matcher}"), "")
                .replace(matcher, "");
        }
        _ => {}
    }
}

/// The request's URI with the tenant's matcher added to `query` and `base_query` (a
/// missing `query` becomes just that matcher).
fn confine(uri: &Uri, tenant: &Tenant) -> Result<Uri, String> {
    let mut pairs: Vec<(String, String)> = match uri.query() {
        Some(q) => serde_urlencoded::from_str(q).map_err(|e| format!("bad query string: {e}"))?,
        None => Vec::new(),
    };
    let matcher = format!("{TENANT_LABEL}=\"{}\"", tenant.label());
    let add = |sel: &str| -> String {
        let sel = sel.trim();
        match sel.find('{') {
            Some(i) => {
                let inner = sel[i + 1..].trim_start();
                if inner.starts_with('}') {
                    format!("{}{{{matcher}{}", &sel[..i], inner)
                } else {
                    format!("{}{{{matcher},{}", &sel[..i], inner)
                }
            }
            None => format!("{sel}{{{matcher}}}"),
        }
    };
    if !pairs.iter().any(|(k, _)| k == "query") {
        pairs.push(("query".into(), String::new()));
    }
    for (k, v) in &mut pairs {
        if k == "query" || k == "base_query" {
            *v = add(v);
        }
    }
    let q = serde_urlencoded::to_string(&pairs).map_err(|e| e.to_string())?;
    format!("{}?{q}", uri.path())
        .parse()
        .map_err(|e| format!("bad URI: {e}"))
}

/// `/api/v1/series`, `/api/v1/labels` and `/api/v1/label/{name}/values` for one tenant,
/// without the reserved label.
fn listing(
    st: &Lent<'_>,
    query: Option<&str>,
    tenant: &Tenant,
    path: &str,
) -> Result<Response, ApiError> {
    let keys: Vec<SeriesKey> = st
        .store
        .series()
        .into_iter()
        .filter(|k| tenant.owns(k))
        .map(|mut k| {
            k.labels.remove(TENANT_LABEL);
            k
        })
        .collect();
    if path == "/api/v1/labels" {
        let s: BTreeSet<&String> = keys.iter().flat_map(|k| k.labels.keys()).collect();
        return Ok(axum::Json(s).into_response());
    }
    if let Some(rest) = path.strip_prefix("/api/v1/label/") {
        let Some(name) = rest.strip_suffix("/values") else {
            return Err(ApiError::NotFound("no such route".into()));
        };
        let name = name.to_string();
        let s: BTreeSet<&String> = keys.iter().filter_map(|k| k.labels.get(&name)).collect();
        return Ok(axum::Json(s).into_response());
    }
    let sel = match query
        .map(serde_urlencoded::from_str::<Vec<(String, String)>>)
        .transpose()
    {
        Ok(pairs) => pairs
            .unwrap_or_default()
            .into_iter()
            .find(|(k, _)| k == "query")
            .map(|(_, v)| gocost_store::Selector::parse(&v)),
        Err(e) => return Err(ApiError::BadRequest(format!("bad query string: {e}"))),
    };
    let sel = sel.transpose()?;
    let out: Vec<serde_json::Value> = keys
        .iter()
        .filter(|k| {
            sel.as_ref()
                .is_none_or(|s| s.matches(k) && s.matchers.iter().all(|m| m.name != TENANT_LABEL))
        })
        .map(|k| serde_json::json!({ "kind": k.kind, "labels": k.labels, "key": k.to_string() }))
        .collect();
    Ok(axum::Json(out).into_response())
}

fn percent_decode(s: &str) -> String {
    let hex = |c: u8| (c as char).to_digit(16);
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_equality() {
        assert!(ct_eq(b"abcdefghijklmnop", b"abcdefghijklmnop"));
        assert!(!ct_eq(b"abcdefghijklmnoq", b"abcdefghijklmnop"));
        assert!(!ct_eq(b"abcdefghijklmno", b"abcdefghijklmnop"));
        assert!(!ct_eq(&[b'a'; 300], &[b'a'; 300]));
    }

    #[test]
    fn basic_auth() {
        assert_eq!(base64_decode("dXNlcjpzZWNyZXQ=").unwrap(), b"user:secret");
        assert_eq!(base64_decode("YQ").unwrap(), b"a");
        assert!(base64_decode("a").is_none());
        assert!(base64_decode("#$").is_none());
    }

    #[test]
    fn confinement() {
        let t = Tenant {
            id: "team-a".into(),
            enabled: true,
        };
        let sel = |u: &str| -> Vec<(String, String)> {
            let uri: Uri = u.parse().unwrap();
            let c = confine(&uri, &t).unwrap();
            serde_urlencoded::from_str(c.query().unwrap()).unwrap()
        };
        assert_eq!(
            sel("/api/v1/top?query=cpu%7Bjob%3D%22a%22%7D&from=now-1h"),
            [
                (
                    "query".into(),
                    "cpu{__tenant__=\"team-a\",job=\"a\"}".into()
                ),
                ("from".into(), "now-1h".into())
            ]
        );
        assert_eq!(
            sel("/api/v1/flame?query=cpu&base_query=cpu%7B%7D"),
            [
                ("query".into(), "cpu{__tenant__=\"team-a\"}".into()),
                ("base_query".into(), "cpu{__tenant__=\"team-a\"}".into())
            ]
        );
        assert_eq!(
            sel("/api/v1/leaks"),
            [("query".into(), "{__tenant__=\"team-a\"}".into())]
        );
        let anon = Tenant {
            id: ANONYMOUS.into(),
            enabled: true,
        };
        let k = SeriesKey::new("cpu", [("job".to_string(), "x".to_string())]);
        assert!(anon.owns(&k));
        assert!(!t.owns(&k));
    }
}
