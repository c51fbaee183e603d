//! Any bytes as a Prometheus `/metrics` body: parses or errors with a line number.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = gocost_scrape::parse_prometheus(data) {
        assert!(s.len() <= gocost_scrape::MAX_PROM_SAMPLES);
    }
});
