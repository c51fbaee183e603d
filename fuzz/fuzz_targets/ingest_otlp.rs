//! Any bytes as an OTLP ExportProfilesServiceRequest, in protobuf and in OTLP/JSON: parses
//! or errors, never panics; every profile it yields encodes (the store would take it).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let lim = gocost_ingest::Limits::default();
    for e in [
        gocost_ingest::otlp::parse_export_request(data, 0, &lim),
        gocost_ingest::otlp::parse_export_request_json(data, 0, &lim),
    ]
    .into_iter()
    .flatten()
    {
        for p in &e.profiles {
            let _ = gocost_pprof::encode(&p.profile);
        }
    }
});
