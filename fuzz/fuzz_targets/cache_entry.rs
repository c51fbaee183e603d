//! Any bytes as a block cache entry file (docs/format/cache.md): the header check accepts
//! exactly what `encode_cache_entry` writes, and never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(body) = gocost_store::parse_cache_entry(data) {
        assert_eq!(gocost_store::encode_cache_entry(body), data);
    }
    // What the writer writes always reads back.
    let e = gocost_store::encode_cache_entry(data);
    assert_eq!(gocost_store::parse_cache_entry(&e).ok(), Some(data));
});
