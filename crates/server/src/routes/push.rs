//! Push routes for Pyroscope agents: `POST /ingest` (and `/pyroscope/ingest`) and the
//! Connect `POST /push.v1.PusherService/Push`. A push is all or nothing: its body is parsed
//! whole by `gocost-ingest`, every profile is checked against what the store takes and the
//! tenant's series limit, and only then are they appended (and synced before the 200); a
//! refused push (4xx) stored nothing. Each profile becomes a series like a scraped one
//! (kind, `job` = the application, the agent's tags, and the tenant's reserved label).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use gocost_ingest::{Limits, Pushed};
use gocost_store::SeriesKey;

use crate::access::Tenant;
use crate::query::blocking_unlimited;
use crate::time::now_ns;
use crate::{ApiError, AppState};

fn limits(st: &AppState) -> Limits {
    Limits {
        // A profile may decompress to 4× the body cap (pprof compresses ~4–10×; more is a bomb).
        max_decompressed: st.access.max_body().saturating_mul(4),
        ..Limits::default()
    }
}

/// The largest encoded profile the store takes (its WAL record limit, less the record's
/// own header room: `Store::append_profile`'s check).
const MAX_PROFILE_BYTES: usize = gocost_store::MAX_RECORD - 1024;

/// Checks every profile of a push as the store's append would, before any is appended, so
/// that a refused push stores nothing: stack depth and encoded size (`max_bytes`).
fn validate(keyed: &[(SeriesKey, Pushed)], max_bytes: usize) -> Result<(), ApiError> {
    for (k, p) in keyed {
        let bad = |e: gocost_store::Error| ApiError::from(e).context(&format!("{k}: "));
        gocost_pprof::check_depth(&p.profile, gocost_pprof::MAX_STACK_DEPTH)
            .map_err(|e| bad(gocost_store::Error::TooDeep(e)))?;
        let n = gocost_pprof::encode(&p.profile).len();
        if n > max_bytes {
            return Err(bad(gocost_store::Error::TooLarge(n)));
        }
    }
    Ok(())
}

/// Stores every profile of one push: all checked first (the store's limits, the tenant's
/// series limit), then appended and synced.
async fn store(
    st: Arc<AppState>,
    tenant: Tenant,
    pushed: Vec<Pushed>,
    received: usize,
) -> Result<usize, ApiError> {
    let keyed: Vec<(SeriesKey, Pushed)> = pushed
        .into_iter()
        .map(|mut p| {
            tenant.tag(&mut p.labels);
            let labels = std::mem::take(&mut p.labels);
            (SeriesKey::new(&p.kind, labels), p)
        })
        .collect();
    let n = keyed.len();
    blocking_unlimited(&st, "storing the push", move |st| {
        validate(&keyed, MAX_PROFILE_BYTES)?;
        let keys: Vec<SeriesKey> = keyed.iter().map(|(k, _)| k.clone()).collect();
        if let Err(have) = st.access.admit_series(st.store, &tenant, &keys) {
            return Err(ApiError::TooManyRequests {
                msg: format!(
                    "tenant {:?} has {have} series, its limit: this push would add more",
                    tenant.id
                ),
                retry_after: 60,
            });
        }
        // Acknowledged only once durable: every record is synced to disk (one fsync shared
        // with concurrent pushes) before the 200.
        // All or none: the push's profiles go to the WAL in one write.
        // Each profile's share of the body, for the store's count of bytes received.
        let share = received / n.max(1);
        let items: Vec<(SeriesKey, i64, &gocost_pprof::Profile, usize)> = keyed
            .iter()
            .map(|(k, p)| (k.clone(), p.time_ns, &p.profile, share))
            .collect();
        let lsns = st
            .store
            .append_profiles(&items)
            .map_err(|e| ApiError::from(e).not_stored())?;
        if let Some(&last) = lsns.last() {
            st.store
                .commit(last)
                .map_err(|e| ApiError::from(e).not_stored())?;
        }
        Ok(n)
    })
    .await?
}

fn header_str(h: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// Undoes the body's `Content-Encoding` and parses it with `f`, off the async threads (both
/// are CPU work on up to `max_body` bytes) and under the query timeout; a bad push is a 400
/// naming the problem.
async fn parse<T: Send + 'static>(
    st: &Arc<AppState>,
    headers: &HeaderMap,
    body: Bytes,
    lim: gocost_ingest::Limits,
    f: impl FnOnce(&[u8], &gocost_ingest::Limits) -> Result<T, gocost_ingest::Error> + Send + 'static,
) -> Result<T, ApiError> {
    let enc = header_str(headers, header::CONTENT_ENCODING).map(str::to_string);
    let parsed = blocking_unlimited(st, "decoding the push", move |_| {
        let body = gocost_ingest::decode_body(enc.as_deref(), body.to_vec(), &lim)?;
        f(&body, &lim)
    })
    .await?;
    Ok(parsed?)
}

/// `POST /ingest?name=app{k=v}&from=&until=&format=pprof|folded|lines&sampleRate=…`.
pub(crate) async fn ingest(
    State(st): State<Arc<AppState>>,
    Extension(tenant): Extension<Tenant>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    st.requests.fetch_add(1, Ordering::Relaxed);
    let lim = limits(&st);
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(query.as_deref().unwrap_or(""))
            .map_err(|e| ApiError::BadRequest(format!("bad query string: {e}")))?;
    let q = gocost_ingest::IngestQuery::from_pairs(
        pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        &lim,
    )?;
    let ct = header_str(&headers, header::CONTENT_TYPE).map(str::to_string);
    let received = body.len();
    let pushed = parse(&st, &headers, body, lim, move |body, lim| {
        gocost_ingest::ingest(&q, ct.as_deref(), body, now_ns(), lim)
    })
    .await?;
    let n = store(st, tenant, pushed, received).await?;
    Ok(Json(serde_json::json!({ "profiles": n })).into_response())
}

/// `POST /push.v1.PusherService/Push`: a Connect unary call with a protobuf `PushRequest`
/// (`Content-Type: application/proto`, optionally gzip'd); answers an empty
/// `PushResponse`, or an error in Connect's shape (so Connect clients log what went wrong).
pub(crate) async fn push(
    state: State<Arc<AppState>>,
    tenant: Extension<Tenant>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match push_call(state, tenant, headers, body).await {
        Ok(r) => r,
        Err(e) => e.into_connect_response(),
    }
}

async fn push_call(
    State(st): State<Arc<AppState>>,
    Extension(tenant): Extension<Tenant>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    st.requests.fetch_add(1, Ordering::Relaxed);
    let lim = limits(&st);
    let ct = header_str(&headers, header::CONTENT_TYPE).unwrap_or("");
    if !ct.starts_with("application/proto") && !ct.starts_with("application/x-protobuf") {
        return Err(ApiError::UnsupportedMediaType(format!(
            "Content-Type {ct:?}: send application/proto (Connect's protobuf codec)"
        )));
    }
    let received = body.len();
    let pushed = parse(&st, &headers, body, lim, |body, lim| {
        gocost_ingest::parse_push_request(body, now_ns(), lim)
    })
    .await?;
    store(st, tenant, pushed, received).await?;
    let mut r = StatusCode::OK.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/proto"),
    );
    Ok(r)
}

/// OTLP/HTTP's profiles path (the `v1development` signal).
pub(crate) const OTLP_PROFILES: &str = "/v1development/profiles";
/// OTLP/HTTP's protobuf content type: requests, answers and error bodies.
pub(crate) const OTLP_PROTOBUF: &str = "application/x-protobuf";

/// `POST /v1development/profiles`: an OTLP/HTTP `ExportProfilesServiceRequest` in protobuf
/// or OTLP/JSON (optionally gzip'd). Stored all or nothing like the other pushes; profiles
/// the decoder refused alone are counted in the answer's `partial_success`. The answer and
/// errors (a `google.rpc.Status`) are in the request's encoding, as OTLP/HTTP specifies.
pub(crate) async fn otlp(
    state: State<Arc<AppState>>,
    tenant: Extension<Tenant>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let json = otlp_media(&headers) == Some(true);
    match otlp_call(state, tenant, headers, body, json).await {
        Ok(r) => r,
        Err(e) => otlp_error(e, json),
    }
}

/// `Some(false)` for protobuf, `Some(true)` for JSON, `None` for anything else.
fn otlp_media(headers: &HeaderMap) -> Option<bool> {
    let ct = header_str(headers, header::CONTENT_TYPE).unwrap_or("");
    let media = ct.split(';').next().unwrap_or("").trim();
    if media.eq_ignore_ascii_case(OTLP_PROTOBUF) {
        Some(false)
    } else if media.eq_ignore_ascii_case("application/json") {
        Some(true)
    } else {
        None
    }
}

/// An error as OTLP/HTTP answers it: the status code, a `google.rpc.Status` body.
fn otlp_error(e: ApiError, json: bool) -> Response {
    // google.rpc.Code for the classes gocost answers.
    let code = match e.status().0 {
        StatusCode::BAD_REQUEST | StatusCode::UNSUPPORTED_MEDIA_TYPE => 3,
        StatusCode::TOO_MANY_REQUESTS
        | StatusCode::PAYLOAD_TOO_LARGE
        | StatusCode::INSUFFICIENT_STORAGE => 8,
        StatusCode::SERVICE_UNAVAILABLE => 14,
        StatusCode::UNAUTHORIZED => 16,
        StatusCode::FORBIDDEN => 7,
        _ => 13,
    };
    let msg = crate::errors::scrub_tenant(&e.to_string());
    let mut r = e.into_response();
    if json {
        // As every gocost error, with `error`; `code` and `message` are the Status's.
        *r.body_mut() = axum::body::Body::from(
            serde_json::json!({ "code": code, "message": msg, "error": msg }).to_string(),
        );
    } else {
        *r.body_mut() = axum::body::Body::from(gocost_ingest::otlp::rpc_status(code, &msg));
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(OTLP_PROTOBUF),
        );
    }
    r.headers_mut().remove(header::CONTENT_LENGTH);
    r
}

async fn otlp_call(
    State(st): State<Arc<AppState>>,
    Extension(tenant): Extension<Tenant>,
    headers: HeaderMap,
    body: Bytes,
    json: bool,
) -> Result<Response, ApiError> {
    st.requests.fetch_add(1, Ordering::Relaxed);
    let lim = limits(&st);
    if otlp_media(&headers).is_none() {
        let ct = header_str(&headers, header::CONTENT_TYPE).unwrap_or("");
        return Err(ApiError::UnsupportedMediaType(format!(
            "Content-Type {ct:?}: send {OTLP_PROTOBUF} or application/json (OTLP/HTTP's encodings)"
        )));
    }
    let received = body.len();
    let export = parse(&st, &headers, body, lim, move |body, lim| {
        if json {
            gocost_ingest::otlp::parse_export_request_json(body, now_ns(), lim)
        } else {
            gocost_ingest::otlp::parse_export_request(body, now_ns(), lim)
        }
    })
    .await?;
    if !export.profiles.is_empty() {
        store(st, tenant, export.profiles, received).await?;
    }
    let msg = export.errors.join("; ");
    let msg = gocost_ingest::truncate_str(&msg, 4096);
    if json {
        let body = if export.rejected == 0 && msg.is_empty() {
            serde_json::json!({})
        } else {
            serde_json::json!({ "partialSuccess": {
                "rejectedProfiles": export.rejected.to_string(),
                "errorMessage": msg,
            }})
        };
        return Ok(Json(body).into_response());
    }
    let mut r = (
        StatusCode::OK,
        gocost_ingest::otlp::export_response(export.rejected, msg),
    )
        .into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(OTLP_PROTOBUF),
    );
    Ok(r)
}

/// OTLP/gRPC's profiles method (the `v1development` signal), served on the HTTP port over
/// HTTP/2.
pub(crate) const OTLP_GRPC_EXPORT: &str =
    "/opentelemetry.proto.collector.profiles.v1development.ProfilesService/Export";

/// `ProfilesService/Export` over gRPC: the same request, checks and storage as
/// `POST /v1development/profiles`, one framed message in and out; the message may be
/// gzip'd (`grpc-encoding: gzip`). Failures are `ApiError`s that `grpc::errors` turns into
/// gRPC statuses, except an encoding gocost does not read (`UNIMPLEMENTED`, with
/// `grpc-accept-encoding`).
pub(crate) async fn otlp_grpc(
    State(st): State<Arc<AppState>>,
    Extension(tenant): Extension<Tenant>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    st.requests.fetch_add(1, Ordering::Relaxed);
    if !crate::grpc::is_grpc(&headers) {
        let ct = header_str(&headers, header::CONTENT_TYPE).unwrap_or("");
        return Err(ApiError::UnsupportedMediaType(format!(
            "Content-Type {ct:?}: a gRPC call sends application/grpc"
        )));
    }
    let gzip = match headers
        .get("grpc-encoding")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
    {
        None | Some("identity") => false,
        Some(e) if e.eq_ignore_ascii_case("gzip") => true,
        Some(e) => {
            let mut r = crate::grpc::status(
                gocost_ingest::grpc::code::UNIMPLEMENTED,
                &format!("grpc-encoding {e:?}: gocost reads gzip and identity"),
            );
            r.headers_mut().insert(
                "grpc-accept-encoding",
                HeaderValue::from_static("gzip,identity"),
            );
            return Ok(r);
        }
    };
    let lim = limits(&st);
    let received = body.len();
    let export = blocking_unlimited(&st, "decoding the push", move |_| {
        let (compressed, msg) = gocost_ingest::grpc::unframe(&body)?;
        let now = now_ns();
        match (compressed, gzip) {
            (false, _) => gocost_ingest::otlp::parse_export_request(msg, now, &lim),
            (true, true) => {
                let raw = gocost_ingest::decode_body(Some("gzip"), msg.to_vec(), &lim)?;
                gocost_ingest::otlp::parse_export_request(&raw, now, &lim)
            }
            (true, false) => Err(gocost_ingest::Error::Malformed(
                "gRPC message flagged compressed without grpc-encoding: gzip".into(),
            )),
        }
    })
    .await??;
    if !export.profiles.is_empty() {
        store(st, tenant, export.profiles, received).await?;
    }
    let msg = export.errors.join("; ");
    let msg = gocost_ingest::truncate_str(&msg, 4096);
    Ok(crate::grpc::ok(&gocost_ingest::otlp::export_response(
        export.rejected,
        msg,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pushed(depth: usize) -> (SeriesKey, Pushed) {
        let mut p = gocost_pprof::decode(
            &std::fs::read(
                std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("../../testdata/profiles/cpu.pb.gz"),
            )
            .expect("testdata"),
        )
        .expect("a profile");
        if depth > 0 {
            let loc = p.sample[0].location[0];
            p.sample[0].location = vec![loc; depth];
        }
        let key = SeriesKey::new("cpu", [("job".to_string(), "a".to_string())]);
        let pushed = Pushed {
            kind: "cpu".into(),
            labels: Default::default(),
            time_ns: 0,
            profile: p,
        };
        (key, pushed)
    }

    #[test]
    fn every_profile_is_checked_before_any_is_stored() {
        let ok = pushed(0);
        let size = gocost_pprof::encode(&ok.1.profile).len();
        assert!(validate(std::slice::from_ref(&ok), size).is_ok());
        // The second profile is one byte over: the whole push is refused, naming it.
        let e = validate(&[ok.clone(), ok.clone()], size - 1).unwrap_err();
        assert!(
            matches!(&e, ApiError::BadRequest(m) if m.starts_with("cpu{job=\"a\"}: profile of")),
            "{e:?}"
        );
        let deep = pushed(gocost_pprof::MAX_STACK_DEPTH + 1);
        let e = validate(&[ok, deep], MAX_PROFILE_BYTES).unwrap_err();
        assert_eq!(e.status().0, StatusCode::BAD_REQUEST, "{e}");
    }
}
