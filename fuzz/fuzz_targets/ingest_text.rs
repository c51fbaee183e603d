//! Any bytes as folded and lines push bodies: parse or error, never panic; what parses
//! becomes a profile that encodes and decodes back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = gocost_ingest::Limits::default();
    for format in ["folded", "lines"] {
        let q = gocost_ingest::IngestQuery::from_pairs(
            [("name", "fuzz{a=b}"), ("format", format), ("sampleRate", "97")],
            &limits,
        )
        .expect("valid query");
        if let Ok(out) = gocost_ingest::ingest(&q, None, data, 1, &limits) {
            for p in out {
                let back = gocost_pprof::decode(&gocost_pprof::encode(&p.profile)).expect("decodes");
                assert_eq!(back, p.profile);
            }
        }
    }
});
