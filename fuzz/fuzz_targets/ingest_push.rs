//! Any bytes as a Connect PushRequest: parses or errors, never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = gocost_ingest::parse_push_request(data, 0, &gocost_ingest::Limits::default());
});
