//! OTLP profiles in (`POST /v1development/profiles`) through a real `gocost serve`.
//!
//! `round_trip`: real Go profiles of `testdata/profiles` are turned into OTLP
//! `ExportProfilesServiceRequest`s by `testdata/otlp/make_request.py` with the official
//! OpenTelemetry protobuf definitions (`opentelemetry-proto`), pushed (protobuf and
//! OTLP/JSON, raw and gzip'd) with
//! a tenant's token, and read back from the API: `go tool pprof -top` of what gocost stored
//! is identical to `go tool pprof -top` of the original file.
//!
//! `refusals`: a bad token (401), a missing or other content type (415), protobuf sent
//! as JSON (400, a JSON Status), truncated and
//! malformed bodies (400, a `google.rpc.Status` naming the field and byte offset), a body
//! over `max_body` and a gzip bomb (413); a request with one unresolvable profile is 200
//! with `partial_success` (1 rejected, named) and its other profiles stored; another tenant
//! does not see the pushed series.
//!
//! `grpc_round_trip` and `grpc_refusals`: the same over gRPC (`ProfilesService/Export`
//! over HTTP/2 on the same port) with the official client (`grpcio`,
//! `testdata/otlp/grpc_export.py`): stored profiles identical under `go tool pprof -top`,
//! gzip'd or not; refusals as gRPC statuses (UNAUTHENTICATED, PERMISSION_DENIED,
//! INVALID_ARGUMENT naming the offset, UNIMPLEMENTED for deflate, RESOURCE_EXHAUSTED over
//! `max_body` or inflating past it) that store nothing; partial success in the answer.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use gocost_testkit::procs::{Proc, Response, enc, fresh_dir, http_request, start_gocost_args};

const A_RW: &str = "team-a-rw-token-00000000";
const B_RW: &str = "team-b-rw-token-00000000";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn start(name: &str) -> (Proc, String, PathBuf) {
    let dir = fresh_dir("otlp", name);
    let cfg = dir.join("gocost.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"
[tenancy]
enabled = true

[[auth.tokens]]
name = "a-rw"
token = "{A_RW}"
scopes = ["read", "write"]
tenants = ["team-a"]

[[auth.tokens]]
name = "b-rw"
token = "{B_RW}"
scopes = ["read", "write"]
tenants = ["team-b"]

[limits]
max_body = "64KiB"
"#
        ),
    )
    .unwrap();
    let data = dir.join("data");
    let (p, base) = start_gocost_args(
        Path::new(env!("CARGO_BIN_EXE_gocost")),
        &[
            "--config".as_ref(),
            cfg.as_os_str(),
            "--data".as_ref(),
            data.as_os_str(),
            "--no-demo".as_ref(),
        ],
    );
    (p, format!("http://{base}"), dir)
}

/// The OTLP request `make_request.py` builds from a profile of `testdata/profiles`.
fn request(profile: &str, service: &str, dir: &Path, json: bool) -> Vec<u8> {
    let python = gocost_testkit::tools::require(&gocost_testkit::tools::OTLP_PROTO);
    let out = dir.join(format!("{service}.otlp"));
    let o = Command::new(python)
        .arg(root().join("testdata/otlp/make_request.py"))
        .args(json.then_some("--json"))
        .arg(root().join("testdata/profiles").join(profile))
        .arg(&out)
        .arg(service)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::read(out).unwrap()
}

fn post(base: &str, token: Option<&str>, ct: Option<&str>, gzip: bool, body: &[u8]) -> Response {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut h: Vec<(&str, &str)> = Vec::new();
    if let Some(a) = &auth {
        h.push(("Authorization", a));
    }
    if let Some(ct) = ct {
        h.push(("Content-Type", ct));
    }
    if gzip {
        h.push(("Content-Encoding", "gzip"));
    }
    http_request("POST", &format!("{base}/v1development/profiles"), &h, body)
}

/// `request` with a second resource whose one profile names a stack past the table (the
/// decoder rejects that profile alone: partial success).
fn with_unresolvable_profile(request: &[u8]) -> Vec<u8> {
    let field = |num: u8, body: &[u8]| {
        let mut v = vec![(num << 3) | 2];
        let mut n = body.len();
        while n >= 0x80 {
            v.push((n as u8) | 0x80);
            n >>= 7;
        }
        v.push(n as u8);
        v.extend_from_slice(body);
        v
    };
    let bad_sample = [0x08, 0xa0, 0x8d, 0x06]; // stack_index: 100000
    let extra = field(1, &field(2, &field(2, &field(2, &bad_sample))));
    [request, &extra].concat()
}

fn gzip(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

/// The message of a `google.rpc.Status` body (field 2).
fn status_message(b: &[u8]) -> String {
    let mut i = 0;
    while i < b.len() {
        let (key, n) = (b[i], 1);
        i += n;
        match key & 7 {
            0 => {
                while b[i] & 0x80 != 0 {
                    i += 1;
                }
                i += 1;
            }
            2 => {
                let (mut len, mut s) = (0usize, 0);
                loop {
                    let c = b[i];
                    i += 1;
                    len |= usize::from(c & 0x7f) << s;
                    s += 7;
                    if c < 0x80 {
                        break;
                    }
                }
                if key >> 3 == 2 {
                    return String::from_utf8_lossy(&b[i..i + len]).into_owned();
                }
                i += len;
            }
            w => panic!("wire type {w} in {b:?}"),
        }
    }
    String::new()
}

fn pprof_top(go: &Path, file: &Path) -> String {
    let o = Command::new(go)
        .args(["tool", "pprof", "-top"])
        .arg(file)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

/// The profile stored for `service` (queried as `kind` around `file`'s time, by team-a)
/// prints as `file` does under `go tool pprof -top`.
fn assert_stored_as_sent(go: &Path, base: &str, dir: &Path, file: &str, kind: &str, service: &str) {
    let orig = root().join("testdata/profiles").join(file);
    let t = gocost_pprof::decode(&std::fs::read(&orig).unwrap())
        .unwrap()
        .time_nanos;
    let (from, to) = (t / 1_000_000_000 - 1, t / 1_000_000_000 + 1);
    let query = enc(&format!("{kind}{{job=\"{service}\"}}"));
    let got = http_request(
        "GET",
        &format!("{base}/api/v1/profile?query={query}&from={from}&to={to}"),
        &[("Authorization", &format!("Bearer {A_RW}"))],
        b"",
    );
    assert_eq!(got.status, 200, "{file}: {}", got.text());
    let stored = dir.join(format!("{service}.stored.pb.gz"));
    std::fs::write(&stored, &got.body).unwrap();
    let want = pprof_top(go, &orig);
    assert!(want.lines().count() > 8, "{file}: {want}");
    assert_eq!(
        pprof_top(go, &stored),
        want,
        "{file}: go tool pprof -top of the stored profile"
    );
}

/// Sends `body` (a request's protobuf bytes, as they are) to `ProfilesService/Export` with
/// the official gRPC client (`testdata/otlp/grpc_export.py`): its outcome's JSON.
fn grpc_export(base: &str, dir: &Path, body: &[u8], args: &[&str]) -> serde_json::Value {
    let python = gocost_testkit::tools::require(&gocost_testkit::tools::OTLP_PROTO);
    let file = dir.join("grpc-request.bin");
    std::fs::write(&file, body).unwrap();
    let o = Command::new(python)
        .arg(root().join("testdata/otlp/grpc_export.py"))
        .arg(base.trim_start_matches("http://"))
        .arg(&file)
        .args(args)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
#[cfg_attr(
    not(all(has_go, has_otlp_proto)),
    ignore = "needs Go, opentelemetry-proto and grpcio in testdata/otlp/.venv (see .ci/run)"
)]
fn grpc_round_trip() {
    let go = gocost_testkit::tools::require(&gocost_testkit::tools::GO);
    let (_p, base, dir) = start("grpc_round_trip");
    for (i, (file, kind)) in [
        ("cpu.pb.gz", "cpu"),
        ("heap.pb.gz", "heap"),
        ("goroutine.pb.gz", "goroutine"),
        ("block.pb.gz", "mutex"),
    ]
    .into_iter()
    .enumerate()
    {
        let service = format!("grpc-{}", file.replace('.', "-"));
        let body = request(file, &service, &dir, false);
        // Every other one gzip'd (grpc-encoding: gzip).
        let mut args = vec!["--token", A_RW];
        if i % 2 == 1 {
            args.extend(["--compression", "gzip"]);
        }
        let out = grpc_export(&base, &dir, &body, &args);
        assert_eq!(out["code"], "OK", "{file}: {out}");
        assert_eq!(out["rejected"], 0, "{file}: {out}");
        assert_stored_as_sent(&go, &base, &dir, file, kind, &service);
    }
}

#[test]
#[cfg_attr(
    not(has_otlp_proto),
    ignore = "needs opentelemetry-proto and grpcio in testdata/otlp/.venv (see .ci/run)"
)]
fn grpc_refusals() {
    let (_p, base, dir) = start("grpc_refusals");
    let body = request("heap.pb.gz", "grpc-refused", &dir, false);
    let code = |out: &serde_json::Value| out["code"].as_str().unwrap_or("").to_string();
    let details = |out: &serde_json::Value| out["details"].as_str().unwrap_or("").to_string();

    let out = grpc_export(&base, &dir, &body, &[]);
    assert_eq!(code(&out), "UNAUTHENTICATED", "{out}");
    assert!(details(&out).contains("missing token"), "{out}");
    let out = grpc_export(&base, &dir, &body, &["--token", "not-a-token-000000000000"]);
    assert_eq!(code(&out), "UNAUTHENTICATED", "{out}");
    // team-b's token acting for team-a.
    let out = grpc_export(&base, &dir, &body, &["--token", B_RW, "--tenant", "team-a"]);
    assert_eq!(code(&out), "PERMISSION_DENIED", "{out}");
    // Not a request: named with its offset.
    let out = grpc_export(&base, &dir, &body[..body.len() / 3], &["--token", A_RW]);
    assert_eq!(code(&out), "INVALID_ARGUMENT", "{out}");
    assert!(
        details(&out).contains("ExportProfilesServiceRequest")
            && details(&out).contains("byte offset"),
        "{out}"
    );
    // An encoding gocost does not read.
    let out = grpc_export(
        &base,
        &dir,
        &body,
        &["--token", A_RW, "--compression", "deflate"],
    );
    assert_eq!(code(&out), "UNIMPLEMENTED", "{out}");
    assert!(details(&out).contains("deflate"), "{out}");
    // Over max_body (64 KiB); a gzip'd message that inflates past 4 × max_body.
    let out = grpc_export(&base, &dir, &vec![0x0a; 70 << 10], &["--token", A_RW]);
    assert_eq!(code(&out), "RESOURCE_EXHAUSTED", "{out}");
    assert!(details(&out).contains("max_body"), "{out}");
    let out = grpc_export(
        &base,
        &dir,
        &vec![0; 1 << 20],
        &["--token", A_RW, "--compression", "gzip"],
    );
    assert_eq!(code(&out), "RESOURCE_EXHAUSTED", "{out}");
    // A second resource whose profile names a stack past the table: rejected alone, in
    // partial_success, as over OTLP/HTTP.
    let partial = with_unresolvable_profile(&body);
    let out = grpc_export(
        &base,
        &dir,
        &partial,
        &["--token", B_RW, "--compression", "gzip"],
    );
    assert_eq!(code(&out), "OK", "{out}");
    assert_eq!(out["rejected"], 1, "{out}");
    assert!(
        out["message"]
            .as_str()
            .unwrap_or("")
            .contains("stack_index: 100000 past the stack_table"),
        "{out}"
    );

    // Nothing refused was stored for team-a; team-b's partial push stored its good profile;
    // HTTP/1.1 on the same port goes on.
    let series = |tok: &str| {
        http_request(
            "GET",
            &format!("{base}/api/v1/series"),
            &[("Authorization", &format!("Bearer {tok}"))],
            b"",
        )
        .text()
    };
    assert!(!series(A_RW).contains("grpc-refused"));
    assert!(series(B_RW).contains("grpc-refused"));
    let out = grpc_export(&base, &dir, &body, &["--token", A_RW]);
    assert_eq!(code(&out), "OK", "{out}");
    assert!(series(A_RW).contains("grpc-refused"));
}

#[test]
#[cfg_attr(
    not(all(has_go, has_otlp_proto)),
    ignore = "needs Go and opentelemetry-proto in testdata/otlp/.venv (see .ci/run)"
)]
fn round_trip() {
    let go = gocost_testkit::tools::require(&gocost_testkit::tools::GO);
    let (_p, base, dir) = start("round_trip");
    for (i, (file, kind)) in [
        ("cpu.pb.gz", "cpu"),
        ("heap.pb.gz", "heap"),
        ("mutex.pb.gz", "mutex"),
        ("goroutine.pb.gz", "goroutine"),
        ("allocs.pb.gz", "heap"), // a Go allocs profile has the heap profile's columns
        ("block.pb.gz", "mutex"),
        ("allocs.delta.pb.gz", "heap"),
        ("batch.cpu.pb.gz", "cpu"),
    ]
    .into_iter()
    .enumerate()
    {
        let service = format!("otlp-{}", file.replace('.', "-"));
        // Every other one gzip'd; every third as OTLP/JSON.
        let (gz, json) = (i % 2 == 1, i % 3 == 2);
        let body = request(file, &service, &dir, json);
        let sent = if gz { gzip(&body) } else { body };
        let ct = if json {
            "application/json"
        } else {
            "application/x-protobuf"
        };
        let r = post(&base, Some(A_RW), Some(ct), gz, &sent);
        assert_eq!(
            r.status,
            200,
            "{file}: {} {}",
            status_message(&r.body),
            r.text()
        );
        if json {
            assert_eq!(r.text(), "{}", "{file}");
        } else {
            assert_eq!(r.header("content-type"), Some(ct));
            assert!(r.body.is_empty(), "{file}: a partial success: {:?}", r.body);
        }

        assert_stored_as_sent(&go, &base, &dir, file, kind, &service);

        // The other tenant does not see it.
        let series = http_request(
            "GET",
            &format!("{base}/api/v1/series"),
            &[("Authorization", &format!("Bearer {B_RW}"))],
            b"",
        );
        assert_eq!(series.status, 200);
        assert!(!series.text().contains(&service), "{}", series.text());
        let series = http_request(
            "GET",
            &format!("{base}/api/v1/series"),
            &[("Authorization", &format!("Bearer {A_RW}"))],
            b"",
        );
        assert!(series.text().contains(&service), "{}", series.text());
    }
}

#[test]
#[cfg_attr(
    not(has_otlp_proto),
    ignore = "needs opentelemetry-proto in testdata/otlp/.venv (see .ci/run)"
)]
fn refusals() {
    let (_p, base, dir) = start("refusals");
    let body = request("heap.pb.gz", "otlp-refused", &dir, false);
    let pb = Some("application/x-protobuf");

    let r = post(&base, Some("not-a-token-000000000000"), pb, false, &body);
    assert_eq!(r.status, 401, "{}", r.text());
    let r = post(&base, None, pb, false, &body);
    assert_eq!(r.status, 401, "{}", r.text());

    for ct in [None, Some("text/plain"), Some("application/proto")] {
        let r = post(&base, Some(A_RW), ct, false, &body);
        assert_eq!(r.status, 415, "{ct:?}");
        let m = status_message(&r.body);
        assert!(
            m.contains("application/x-protobuf or application/json"),
            "{m}"
        );
    }
    // Protobuf sent as JSON: a JSON Status.
    let r = post(&base, Some(A_RW), Some("application/json"), false, &body);
    assert_eq!(r.status, 400);
    assert!(r.text().contains(r#""code":3"#), "{}", r.text());
    assert!(r.text().contains("not JSON"), "{}", r.text());

    for cut in [3, body.len() / 3, body.len() - 2] {
        let r = post(&base, Some(A_RW), pb, false, &body[..cut]);
        assert_eq!(r.status, 400, "cut at {cut}");
        assert_eq!(r.header("content-type"), Some("application/x-protobuf"));
        let m = status_message(&r.body);
        assert!(
            m.contains("ExportProfilesServiceRequest") && m.contains("byte offset"),
            "{m}"
        );
    }
    // A string that is not UTF-8, named with its offset.
    let mut bad = body.clone();
    let at = bad
        .windows(b"inuse_space".len())
        .position(|w| w == b"inuse_space")
        .unwrap();
    bad[at] = 0xff;
    let r = post(&base, Some(A_RW), pb, false, &bad);
    assert_eq!(r.status, 400);
    let m = status_message(&r.body);
    assert!(
        m.contains("string_table[") && m.contains(&format!("byte offset {at}")),
        "{m}"
    );

    // Over max_body (64 KiB), and a gzip bomb past 4 × max_body decompressed.
    let big = vec![0u8; 70 << 10];
    let r = post(&base, Some(A_RW), pb, false, &big);
    assert_eq!(r.status, 413, "{}", r.text());
    let bomb = gzip(&vec![0u8; 1 << 20]);
    let r = post(&base, Some(A_RW), pb, true, &bomb);
    assert_eq!(r.status, 413, "{}", status_message(&r.body));

    // A second resource whose profile names a stack past the table: rejected alone, in
    // partial_success; the first resource's profiles are stored.
    let partial = with_unresolvable_profile(&body);
    let r = post(&base, Some(B_RW), pb, false, &partial);
    assert_eq!(r.status, 200, "{}", status_message(&r.body));
    // ExportProfilesServiceResponse { partial_success { rejected_profiles: 1, error_message } }
    // (field 1 with a two-byte length, then rejected_profiles = 1)
    assert_eq!(&r.body[..1], &[0x0a], "{:?}", r.body);
    assert_eq!(&r.body[3..5], &[0x08, 1], "{:?}", r.body);
    let msg = String::from_utf8_lossy(&r.body);
    assert!(
        msg.contains("resource_profiles[1].scope_profiles[0].profiles[0].samples[0].stack_index: 100000 past the stack_table"),
        "{msg}"
    );

    // Nothing of the above was stored by team-a; a good push is.
    let series = |tok: &str| {
        http_request(
            "GET",
            &format!("{base}/api/v1/series"),
            &[("Authorization", &format!("Bearer {tok}"))],
            b"",
        )
        .text()
    };
    assert!(!series(A_RW).contains("otlp-refused"));
    assert!(!series(B_RW).contains("team-a"));
    let r = post(&base, Some(A_RW), pb, false, &body);
    assert_eq!(r.status, 200, "{}", status_message(&r.body));
    assert!(series(A_RW).contains("otlp-refused"));
    // team-b's partial push stored its good profile, seen by team-b only.
    assert!(series(B_RW).contains("otlp-refused"));
    assert!(!series(B_RW).contains("team-a"));
}
