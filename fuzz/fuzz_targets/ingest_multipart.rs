//! Any bytes as a multipart push body (boundary from the first line): parses or errors,
//! never panics; part data always lies inside the body.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|&b| b == b'\n').unwrap_or(data.len());
    let boundary = String::from_utf8_lossy(&data[..split]).into_owned();
    let body = data.get(split + 1..).unwrap_or_default();
    if let Ok(parts) = gocost_ingest::parse_multipart(body, &boundary) {
        for p in &parts {
            assert!(p.data.len() <= body.len());
        }
        let q = gocost_ingest::IngestQuery::from_pairs(
            [("name", "fuzz"), ("format", "pprof")],
            &gocost_ingest::Limits::default(),
        )
        .expect("valid query");
        let ct = format!("multipart/form-data; boundary={boundary}");
        let _ = gocost_ingest::ingest(&q, Some(&ct), body, 0, &gocost_ingest::Limits::default());
    }
});
