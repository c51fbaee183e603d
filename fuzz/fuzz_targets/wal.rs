//! Any bytes as a WAL segment: replay parses what it can and names where it stopped.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = gocost_store::check_wal_segment(data);
});
