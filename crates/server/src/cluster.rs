//! Instances over one bucket (docs/adr/0020): the internal route a peer answers with its
//! head (`GET /internal/v1/head`), the HTTP client that asks the peers ([`HttpPeers`], the
//! store's [`Peers`]), and answers marked partial when a peer did not answer
//! (`X-Gocost-Partial`, a `partial` field in JSON objects; API.md).
//!
//! The head answer's bytes (docs/format/bucket.md): `GCPEER01`, a u32 (LE) length and a
//! JSON header `{"instance", "blocks": [{"name", "size"}], "items"}`, then per item: u32
//! length + series key text, i64 time (ns), u64 count, u32 length + the profile as pprof
//! protobuf (not gzipped).

use std::cell::RefCell;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use gocost_store::{HeadAnswer, HeadRequest, Listed, Peers, SeriesKey};
use serde::{Deserialize, Serialize};

use crate::{ApiError, AppState};

/// The internal route peers answer.
pub const HEAD_ROUTE: &str = "/internal/v1/head";
/// The header that marks an answer missing some peers' recent data.
pub const PARTIAL_HEADER: &str = "x-gocost-partial";
const MAGIC: &[u8; 8] = b"GCPEER01";

#[derive(Serialize, Deserialize)]
struct Header {
    instance: String,
    blocks: Vec<ListedJson>,
    items: u64,
    /// Series keys (a series-only answer).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    series: Vec<String>,
}

#[derive(Serialize, Deserialize)]
struct ListedJson {
    name: String,
    size: u64,
}

/// The query of [`HEAD_ROUTE`].
#[derive(Deserialize)]
pub(crate) struct HeadQuery {
    selector: String,
    from: i64,
    to: i64,
    #[serde(default)]
    labels: bool,
    #[serde(default)]
    merge: bool,
    #[serde(default)]
    totals: bool,
    #[serde(default)]
    latest: bool,
    #[serde(default)]
    series_only: bool,
}

/// `GET /internal/v1/head`: this instance's head profiles no block holds, and its blocks in
/// the range, for a peer's query.
pub(crate) async fn head(
    State(st): State<Arc<AppState>>,
    Query(q): Query<HeadQuery>,
) -> Result<Response, ApiError> {
    let req = HeadRequest {
        selector: q.selector,
        from_ns: q.from,
        to_ns: q.to,
        labels: q.labels,
        merge: q.merge,
        totals: q.totals,
        latest: q.latest,
        series_only: q.series_only,
    };
    if let Err(e) = gocost_store::Selector::parse(&req.selector) {
        return Err(ApiError::BadRequest(e.to_string()));
    }
    // Without a query slot: the asking instance holds one of its own, and two instances
    // asking each other with every slot taken would wait on each other.
    let body = crate::query::blocking_unlimited(&st, "a peer's head", move |st| {
        st.store.head_answer(&req).map(|a| encode_answer(&a))
    })
    .await??;
    let mut r = body.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    Ok(r)
}

fn encode_answer(a: &HeadAnswer) -> Vec<u8> {
    let h = Header {
        instance: a.instance.clone(),
        blocks: a
            .blocks
            .iter()
            .map(|l| ListedJson {
                name: l.name.clone(),
                size: l.size,
            })
            .collect(),
        items: a.items.len() as u64,
        series: a.series.iter().map(ToString::to_string).collect(),
    };
    let h = serde_json::to_vec(&h).unwrap_or_default();
    let mut out = Vec::with_capacity(64 + h.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(h.len() as u32).to_le_bytes());
    out.extend_from_slice(&h);
    for (k, t, n, p) in &a.items {
        let key = k.to_string();
        out.extend_from_slice(&(key.len() as u32).to_le_bytes());
        out.extend_from_slice(key.as_bytes());
        out.extend_from_slice(&t.to_le_bytes());
        out.extend_from_slice(&n.to_le_bytes());
        let b = gocost_pprof::encode(p);
        out.extend_from_slice(&(b.len() as u32).to_le_bytes());
        out.extend_from_slice(&b);
    }
    out
}

/// Reads a head answer; errors say where it is wrong.
fn decode_answer(b: &[u8], labels: bool, max_size: u64) -> Result<HeadAnswer, String> {
    struct Rd<'a>(&'a [u8], usize);
    impl<'a> Rd<'a> {
        fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
            let end = self.1.checked_add(n).filter(|&e| e <= self.0.len());
            let end = end.ok_or_else(|| format!("truncated at byte {}", self.1))?;
            let s = &self.0[self.1..end];
            self.1 = end;
            Ok(s)
        }
        fn arr<const N: usize>(&mut self) -> Result<[u8; N], String> {
            let mut a = [0u8; N];
            a.copy_from_slice(self.take(N)?);
            Ok(a)
        }
        fn bytes(&mut self) -> Result<&'a [u8], String> {
            let n = u32::from_le_bytes(self.arr()?) as usize;
            self.take(n)
        }
    }
    let mut r = Rd(b, 0);
    if r.take(MAGIC.len())? != MAGIC {
        return Err("not a head answer (bad magic)".into());
    }
    let h: Header =
        serde_json::from_slice(r.bytes()?).map_err(|e| format!("head answer header: {e}"))?;
    let opts = gocost_pprof::DecodeOptions { max_size, labels };
    let mut items = Vec::new();
    for i in 0..h.items {
        let key =
            std::str::from_utf8(r.bytes()?).map_err(|e| format!("item {i}: series key: {e}"))?;
        let key = SeriesKey::parse(key).map_err(|e| format!("item {i}: {e}"))?;
        let t = i64::from_le_bytes(r.arr()?);
        let n = u64::from_le_bytes(r.arr()?);
        let p = gocost_pprof::decode_with(r.bytes()?, &opts)
            .map_err(|e| format!("item {i} ({key}): {e}"))?;
        items.push((key, t, n, p));
    }
    if r.1 != b.len() {
        return Err(format!("{} bytes after the last item", b.len() - r.1));
    }
    let series = h
        .series
        .iter()
        .map(|k| SeriesKey::parse(k).map_err(|e| format!("series: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(HeadAnswer {
        series,
        instance: h.instance,
        blocks: h
            .blocks
            .into_iter()
            .map(|l| Listed {
                name: l.name,
                size: l.size,
            })
            .collect(),
        items,
    })
}

/// The store's [`Peers`] over HTTP: every peer asked at once, on a runtime of its own (the
/// store calls from blocking threads), each within the timeout.
pub struct HttpPeers {
    urls: Vec<String>,
    client: reqwest::Client,
    token: Option<String>,
    timeout: Duration,
    max_profile_size: u64,
    /// This instance's id: a URL that answers with it is this instance, not asked again.
    instance: String,
    myself: std::sync::Mutex<Vec<String>>,
    /// Taken only in `drop`.
    rt: Option<tokio::runtime::Runtime>,
}

impl Drop for HttpPeers {
    fn drop(&mut self) {
        // Dropping a runtime blocks; the store may be dropped inside an async context.
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

impl HttpPeers {
    /// Peers at the base URLs `urls` (`http://host:4040`); `token`: a bearer token with the
    /// admin scope, when the peers check tokens.
    /// `instance`: this instance's id (the peers list may name this instance too).
    pub fn new(
        instance: &str,
        urls: Vec<String>,
        token: Option<String>,
        timeout: Duration,
    ) -> Result<HttpPeers, String> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(2)))
            .no_proxy()
            .build()
            .map_err(|e| format!("the peers' HTTP client: {e}"))?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("gocost-peers")
            .enable_all()
            .build()
            .map_err(|e| format!("the peers' runtime: {e}"))?;
        Ok(HttpPeers {
            urls: urls
                .into_iter()
                .map(|u| u.trim_end_matches('/').to_string())
                .collect(),
            client,
            token,
            timeout,
            max_profile_size: 64 << 20,
            instance: instance.to_string(),
            myself: std::sync::Mutex::new(Vec::new()),
            rt: Some(rt),
        })
    }

    async fn ask(
        client: reqwest::Client,
        url: String,
        token: Option<String>,
        req: HeadRequest,
        timeout: Duration,
    ) -> Result<Vec<u8>, String> {
        let who = gocost_config::url_origin(&url);
        let flag = |b: bool| if b { "true" } else { "false" };
        let from = req.from_ns.to_string();
        let to = req.to_ns.to_string();
        let query = [
            ("selector", req.selector.as_str()),
            ("from", &from),
            ("to", &to),
            ("labels", flag(req.labels)),
            ("merge", flag(req.merge)),
            ("totals", flag(req.totals)),
            ("latest", flag(req.latest)),
            ("series_only", flag(req.series_only)),
        ];
        let query = serde_urlencoded::to_string(query).map_err(|e| format!("{who}: {e}"))?;
        let mut rb = client.get(format!("{url}{HEAD_ROUTE}?{query}"));
        if let Some(t) = &token {
            rb = rb.bearer_auth(t);
        }
        let work = async {
            let resp = rb.send().await.map_err(|e| format!("{who}: {e}"))?;
            let status = resp.status();
            let body = resp.bytes().await.map_err(|e| format!("{who}: {e}"))?;
            if !status.is_success() {
                let msg = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
                return Err(format!("{who}: {status}: {}", msg.trim()));
            }
            Ok(body.to_vec())
        };
        match tokio::time::timeout(timeout, work).await {
            Ok(r) => r,
            Err(_) => Err(format!("{who}: no answer within {timeout:?}")),
        }
    }
}

impl Peers for HttpPeers {
    fn heads(&self, req: &HeadRequest) -> Vec<Result<HeadAnswer, String>> {
        let Some(rt) = self.rt.as_ref() else {
            return self
                .urls
                .iter()
                .map(|_| Err("shutting down".into()))
                .collect();
        };
        let myself = self.myself.lock().map(|m| m.clone()).unwrap_or_default();
        let urls: Vec<&String> = self.urls.iter().filter(|u| !myself.contains(u)).collect();
        let bodies = rt.block_on(async {
            let tasks: Vec<_> = urls
                .iter()
                .map(|u| {
                    tokio::spawn(Self::ask(
                        self.client.clone(),
                        (*u).clone(),
                        self.token.clone(),
                        req.clone(),
                        self.timeout,
                    ))
                })
                .collect();
            let mut out = Vec::with_capacity(tasks.len());
            for t in tasks {
                out.push(
                    t.await
                        .unwrap_or_else(|e| Err(format!("peer request: {e}"))),
                );
            }
            out
        });
        bodies
            .into_iter()
            .zip(urls)
            .map(|(b, url)| {
                let a = b.and_then(|b| {
                    decode_answer(&b, req.labels, self.max_profile_size)
                        .map_err(|e| format!("{}: {e}", gocost_config::url_origin(url)))
                });
                if let Ok(a) = &a
                    && a.instance == self.instance
                    && let Ok(mut m) = self.myself.lock()
                {
                    m.push(url.clone());
                }
                a
            })
            .collect()
    }
}

tokio::task_local! {
    /// The peers that did not answer the queries of the current request.
    static PARTIAL: RefCell<Vec<String>>;
}

/// Notes peers that did not answer a query made for the current request (nothing outside
/// [`mark_partial`]'s scope).
pub(crate) fn note_partial(missing: Vec<String>) {
    if missing.is_empty() {
        return;
    }
    let _ = PARTIAL.try_with(|p| {
        let mut p = p.borrow_mut();
        for m in missing {
            if !p.contains(&m) {
                p.push(m);
            }
        }
    });
}

/// Middleware: an answer some peer's data is missing from says so — the header
/// `X-Gocost-Partial` (on every such answer: the number of peers that did not answer and
/// why) and, in a JSON object, a `partial` field listing them.
pub(crate) async fn mark_partial(req: Request, next: Next) -> Response {
    let (resp, missing) = {
        let cell = RefCell::new(Vec::new());
        PARTIAL
            .scope(cell, async move {
                let resp = next.run(req).await;
                let missing = PARTIAL.with(|p| std::mem::take(&mut *p.borrow_mut()));
                (resp, missing)
            })
            .await
    };
    if missing.is_empty() {
        return resp;
    }
    let value: String = format!(
        "{} peer(s) did not answer: {}",
        missing.len(),
        missing.join("; ")
    )
    .chars()
    .map(|c| {
        if c.is_ascii_graphic() || c == ' ' {
            c
        } else {
            '?'
        }
    })
    .collect();
    let json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let mut resp = if json {
        let (parts, body) = resp.into_parts();
        match axum::body::to_bytes(body, usize::MAX).await {
            Ok(bytes) => {
                let body = match serde_json::from_slice::<serde_json::Value>(&bytes) {
                    Ok(serde_json::Value::Object(mut m)) => {
                        m.insert("partial".into(), serde_json::json!(missing));
                        serde_json::to_vec(&m).unwrap_or_else(|_| bytes.to_vec())
                    }
                    _ => bytes.to_vec(),
                };
                let mut r = Response::from_parts(parts, axum::body::Body::from(body));
                r.headers_mut().remove(header::CONTENT_LENGTH);
                r
            }
            Err(e) => {
                tracing::warn!(target: "gocost::http", "marking an answer partial: {e}");
                return ApiError::Internal("the answer could not be read back".into())
                    .into_response();
            }
        }
    } else {
        resp
    };
    if let Ok(v) = HeaderValue::from_str(&value) {
        resp.headers_mut().insert(PARTIAL_HEADER, v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_round_trip_and_bad_ones_are_refused() {
        let p = gocost_pprof::Profile {
            sample_type: vec![gocost_pprof::ValueType::new("goroutine", "count")],
            sample: vec![gocost_pprof::Sample {
                value: vec![3],
                ..Default::default()
            }],
            ..Default::default()
        };
        let a = HeadAnswer {
            instance: "a".into(),
            blocks: vec![Listed {
                name: "L0-x.gcb".into(),
                size: 9,
            }],
            items: vec![(
                SeriesKey::new("goroutine", [("job".into(), "api".into())]),
                5,
                2,
                p.clone(),
            )],
            series: vec![SeriesKey::new("cpu", [("job".into(), "db".into())])],
        };
        let b = encode_answer(&a);
        let back = decode_answer(&b, true, 1 << 20).unwrap();
        assert_eq!(back.instance, "a");
        assert_eq!(back.blocks, a.blocks);
        assert_eq!(back.items.len(), 1);
        assert_eq!((back.items[0].1, back.items[0].2), (5, 2));
        assert_eq!(back.items[0].3, p);
        assert_eq!(back.series, a.series);
        for cut in [0, 7, 12, b.len() - 1] {
            assert!(decode_answer(&b[..cut], true, 1 << 20).is_err(), "{cut}");
        }
        let mut extra = b.clone();
        extra.push(0);
        assert!(decode_answer(&extra, true, 1 << 20).is_err());
    }
}
