//! Any bytes as a `/debug/vars` body: parses or errors, never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = gocost_scrape::runtime::parse_expvar(data, None);
    let _ = gocost_scrape::runtime::parse_expvar(data, Some(300));
});
