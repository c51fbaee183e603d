//! Whole pushes through `gocost_ingest`: each body format, deltas, sizes and errors.

use std::io::Write as _;

use gocost_ingest::{IngestQuery, Limits, decode_body, ingest, parse_push_request};
use gocost_pprof::{Function, Line, Location, Profile, Sample, ValueType};

fn query(pairs: &[(&str, &str)]) -> IngestQuery {
    IngestQuery::from_pairs(pairs.iter().copied(), &Limits::default()).unwrap()
}

/// A profile with one sample per (function name, values), stacks `main;name`.
fn profile(types: &[(&str, &str)], samples: &[(&str, &[i64])]) -> Profile {
    let mut p = Profile {
        sample_type: types.iter().map(|(t, u)| ValueType::new(*t, *u)).collect(),
        time_nanos: 1_700_000_000_000_000_000,
        ..Default::default()
    };
    let mut names = vec!["main"];
    names.extend(samples.iter().map(|(n, _)| *n));
    for (i, n) in names.iter().enumerate() {
        p.function.push(Function {
            id: i as u64 + 1,
            name: (*n).into(),
            system_name: (*n).into(),
            ..Default::default()
        });
        p.location.push(Location {
            id: i as u64 + 1,
            line: vec![Line {
                function: i as u32,
                line: 1,
                column: 0,
            }],
            ..Default::default()
        });
    }
    for (i, (_, v)) in samples.iter().enumerate() {
        p.sample.push(Sample {
            location: vec![i as u32 + 1, 0],
            value: v.to_vec(),
            label: vec![],
        });
    }
    p
}

fn leaf_values(p: &Profile) -> Vec<(String, Vec<i64>)> {
    let mut v: Vec<(String, Vec<i64>)> = p
        .sample
        .iter()
        .map(|s| {
            let f = p.location[s.location[0] as usize].line[0].function;
            (p.function[f as usize].name.to_string(), s.value.clone())
        })
        .collect();
    v.sort();
    v
}

#[test]
fn pprof_body_gzip_or_raw() {
    let p = profile(
        &[("samples", "count"), ("cpu", "nanoseconds")],
        &[("work", &[3, 30_000_000])],
    );
    let q = query(&[
        ("name", "shop{env=prod,otel.scope.name=x}"),
        ("format", "pprof"),
        ("from", "1700000100"),
        ("until", "1700000110"),
    ]);
    for body in [
        gocost_pprof::encode(&p),
        gocost_pprof::encode_uncompressed(&p),
    ] {
        let out = ingest(
            &q,
            Some("binary/octet-stream"),
            &body,
            0,
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].kind, "cpu");
        assert_eq!(out[0].time_ns, 1_700_000_100_000_000_000);
        let labels: Vec<(&str, &str)> = out[0]
            .labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            labels,
            [("env", "prod"), ("job", "shop"), ("otel_scope_name", "x")]
        );
        assert_eq!(
            leaf_values(&out[0].profile),
            [("work".into(), vec![3, 30_000_000])]
        );
    }
}

fn multipart(parts: &[(&str, &[u8])]) -> (String, Vec<u8>) {
    let b = "gocostBoundary42";
    let mut body = Vec::new();
    for (name, data) in parts {
        write!(
            body,
            "--{b}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        )
        .unwrap();
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    write!(body, "--{b}--\r\n").unwrap();
    (format!("multipart/form-data; boundary={b}"), body)
}

#[test]
fn multipart_with_prev_profile_stores_the_delta_of_cumulative_types() {
    let types = [
        ("alloc_objects", "count"),
        ("alloc_space", "bytes"),
        ("inuse_objects", "count"),
        ("inuse_space", "bytes"),
    ];
    let prev = profile(
        &types,
        &[("a", &[10, 1000, 5, 500]), ("b", &[4, 40, 1, 10])],
    );
    let cur = profile(
        &types,
        &[("a", &[15, 1600, 6, 600]), ("b", &[4, 40, 1, 10])],
    );
    let config = br#"{"alloc_objects":{"units":"objects","cumulative":true},"alloc_space":{"units":"bytes","cumulative":true},"inuse_objects":{"units":"objects","aggregation":"average"},"inuse_space":{"units":"bytes","aggregation":"average"}}"#;
    let (ct, body) = multipart(&[
        ("profile", &gocost_pprof::encode(&cur)),
        ("prev_profile", &gocost_pprof::encode(&prev)),
        ("sample_type_config", config),
    ]);
    let q = query(&[("name", "svc"), ("format", "pprof")]);
    let out = ingest(&q, Some(&ct), &body, 0, &Limits::default()).unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].kind, "heap");
    // Allocations since the previous profile; in-use values as they are now.
    assert_eq!(
        leaf_values(&out[0].profile),
        [
            ("a".into(), vec![5, 600, 6, 600]),
            ("b".into(), vec![0, 0, 1, 10])
        ]
    );

    // A broken part is named; nothing is returned.
    let (ct, body) = multipart(&[("profile", b"not a profile")]);
    let e = ingest(&q, Some(&ct), &body, 0, &Limits::default()).unwrap_err();
    assert!(e.message().starts_with("multipart part \"profile\""), "{e}");
    let (ct, body) = multipart(&[
        ("profile", &gocost_pprof::encode(&cur)),
        ("prev_profile", b"\x0a"),
    ]);
    let e = ingest(&q, Some(&ct), &body, 0, &Limits::default()).unwrap_err();
    assert!(
        e.message().starts_with("multipart part \"prev_profile\""),
        "{e}"
    );
    let (ct, body) = multipart(&[("other", b"x")]);
    let e = ingest(&q, Some(&ct), &body, 0, &Limits::default()).unwrap_err();
    assert!(e.message().contains("no part named \"profile\""), "{e}");
}

#[test]
fn folded_and_lines() {
    let q = query(&[
        ("name", "py.cpu{env=dev}"),
        ("format", "folded"),
        ("sampleRate", "100"),
        ("from", "1700000000"),
    ]);
    let body = b"main;work (a.py:3) 10\nmain;idle 2\nmain;work (a.py:3) 5\n";
    let out = ingest(&q, None, body, 0, &Limits::default()).unwrap();
    assert_eq!(out[0].kind, "cpu");
    assert_eq!(out[0].labels["job"], "py");
    let p = &out[0].profile;
    assert_eq!(
        p.sample_type,
        [
            ValueType::new("samples", "count"),
            ValueType::new("cpu", "nanoseconds")
        ]
    );
    assert_eq!(
        leaf_values(p),
        [
            ("idle".into(), vec![2, 20_000_000]),
            ("work (a.py:3)".into(), vec![15, 150_000_000])
        ]
    );
    // It is a valid profile: it survives encode → decode.
    assert_eq!(&gocost_pprof::decode(&gocost_pprof::encode(p)).unwrap(), p);

    let q = query(&[("name", "rb.alloc_space"), ("format", "lines")]);
    let out = ingest(&q, None, b"a;b\na;b\na;c\n", 0, &Limits::default()).unwrap();
    assert_eq!(out[0].kind, "allocs");
    assert_eq!(
        out[0].profile.sample_type,
        [ValueType::new("alloc_space", "bytes")]
    );
    assert_eq!(
        leaf_values(&out[0].profile),
        [("b".into(), vec![2]), ("c".into(), vec![1])]
    );

    let q = query(&[("name", "x"), ("format", "folded")]);
    let e = ingest(&q, None, b"a;b 1\na;b oops\n", 0, &Limits::default()).unwrap_err();
    assert!(e.message().starts_with("line 2: value \"oops\""), "{e}");
    let e = ingest(&q, None, b"\xff\xfe", 0, &Limits::default()).unwrap_err();
    assert!(e.message().contains("UTF-8"), "{e}");
}

fn pb_bytes(field: u64, data: &[u8], out: &mut Vec<u8>) {
    let mut v = field << 3 | 2;
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            break;
        }
        out.push(b | 0x80);
    }
    let mut n = data.len() as u64;
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(b);
            break;
        }
        out.push(b | 0x80);
    }
    out.extend_from_slice(data);
}

fn push_request(labels: &[(&str, &str)], raw: &[u8]) -> Vec<u8> {
    let mut series = Vec::new();
    for (k, v) in labels {
        let mut lp = Vec::new();
        pb_bytes(1, k.as_bytes(), &mut lp);
        pb_bytes(2, v.as_bytes(), &mut lp);
        pb_bytes(1, &lp, &mut series);
    }
    let mut sample = Vec::new();
    pb_bytes(1, raw, &mut sample);
    pb_bytes(2, b"some-id", &mut sample);
    pb_bytes(2, &sample, &mut series);
    let mut req = Vec::new();
    pb_bytes(1, &series, &mut req);
    req
}

#[test]
fn connect_push_request() {
    let p = profile(&[("cpu", "nanoseconds")], &[("handler", &[10_000_000])]);
    let req = push_request(
        &[
            ("__name__", "process_cpu"),
            ("service_name", "pyapp"),
            ("otel.scope.name", "com.grafana.pyroscope/python"),
            ("__tenant__", "other"),
        ],
        &gocost_pprof::encode_uncompressed(&p),
    );
    let out = parse_push_request(&req, 5, &Limits::default()).unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].kind, "cpu");
    assert_eq!(out[0].time_ns, p.time_nanos);
    let keys: Vec<&str> = out[0].labels.keys().map(String::as_str).collect();
    assert_eq!(keys, ["job", "otel_scope_name"]);
    assert_eq!(out[0].labels["job"], "pyapp");

    let e = parse_push_request(
        &push_request(&[("__name__", "x")], b"\x0a\x01"),
        0,
        &Limits::default(),
    )
    .unwrap_err();
    assert!(
        e.message()
            .contains("PushRequest.series[0]: no service_name"),
        "{e}"
    );
    let e = parse_push_request(
        &push_request(&[("service_name", "a")], b"\x0a\x09"),
        0,
        &Limits::default(),
    )
    .unwrap_err();
    assert!(
        e.message()
            .starts_with("PushRequest.series[0].samples[0].raw_profile"),
        "{e}"
    );
    let e = parse_push_request(b"\x0a\x05ab", 0, &Limits::default()).unwrap_err();
    assert!(e.message().contains("past the end"), "{e}");
}

#[test]
fn gzip_bombs_are_refused() {
    let limits = Limits {
        max_decompressed: 1 << 20,
        ..Limits::default()
    };
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&vec![0u8; 8 << 20]).unwrap();
    let bomb = gz.finish().unwrap();
    assert!(bomb.len() < 64 << 10);
    let e = decode_body(Some("gzip"), bomb.clone(), &limits).unwrap_err();
    assert!(e.message().starts_with("request body"), "{e}");
    assert!(matches!(e, gocost_ingest::Error::TooLarge(_)), "{e:?}");
    let q = query(&[("name", "x"), ("format", "pprof")]);
    let e = ingest(&q, None, &bomb, 0, &limits).unwrap_err();
    assert!(e.message().starts_with("body (pprof)"), "{e}");
    assert!(matches!(e, gocost_ingest::Error::TooLarge(_)), "{e:?}");
    let e = decode_body(Some("br"), vec![1], &limits).unwrap_err();
    assert!(e.message().contains("Content-Encoding \"br\""), "{e}");
    assert!(matches!(e, gocost_ingest::Error::Unsupported(_)), "{e:?}");
}

#[test]
fn stacks_deeper_than_the_limit_are_refused_on_every_path() {
    let lim = gocost_ingest::Limits::default();
    let max = gocost_pprof::MAX_STACK_DEPTH;
    // Folded and lines: refused before the stack is split (a million frames).
    let deep = format!("{} 5\n", vec!["f"; 1_000_000].join(";"));
    let e = gocost_ingest::parse_folded(&deep, &lim).unwrap_err();
    assert!(e.to_string().contains(&format!("at most {max}")), "{e}");
    assert!(e.to_string().starts_with("line 1:"), "{e}");
    let e = gocost_ingest::parse_lines(&format!("a\n{}", vec!["f"; max + 1].join(";")), &lim)
        .unwrap_err();
    assert!(e.to_string().starts_with("line 2:"), "{e}");
    // At the limit is fine.
    let ok = format!("{} 5\n", vec!["f"; max].join(";"));
    assert_eq!(gocost_ingest::parse_folded(&ok, &lim).unwrap().len(), 1);
    // A pprof body: the sample is named.
    let mut p = gocost_pprof::Profile {
        sample_type: vec![gocost_pprof::ValueType::new("samples", "count")],
        ..Default::default()
    };
    p.function.push(gocost_pprof::Function {
        id: 1,
        name: "main.f".into(),
        ..Default::default()
    });
    p.location.push(gocost_pprof::Location {
        id: 1,
        line: vec![gocost_pprof::Line {
            function: 0,
            line: 1,
            column: 0,
        }],
        ..Default::default()
    });
    p.sample.push(gocost_pprof::Sample {
        location: vec![0; max + 1],
        value: vec![1],
        label: vec![],
    });
    let e = gocost_pprof::check_depth(&p, max).unwrap_err();
    assert!(e.starts_with("sample 0 has a stack of 2049 frames"), "{e}");
}
