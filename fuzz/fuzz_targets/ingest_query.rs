//! Any text as the `/ingest` query's `name` (and as the other fields): parses or errors,
//! never panics; parsed labels are names gocost's selectors accept.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let limits = gocost_ingest::Limits::default();
    let _ = gocost_ingest::parse_name(text, &limits);
    for key in ["from", "until", "sampleRate", "format", "aggregationType"] {
        let _ = gocost_ingest::IngestQuery::from_pairs([("name", "a"), (key, text)], &limits);
    }
    if let Ok(q) = gocost_ingest::IngestQuery::from_pairs([("name", text)], &limits) {
        assert!(!q.app.is_empty());
        for (k, v) in &q.labels {
            assert!(!k.starts_with("__"));
            let key = gocost_store::SeriesKey::new("cpu", [(k.clone(), v.clone())]);
            assert_eq!(gocost_store::SeriesKey::parse(&key.to_string()).ok(), Some(key));
        }
    }
});
