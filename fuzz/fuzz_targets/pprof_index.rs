//! Any text as `net/http/pprof`'s index page (`/debug/pprof/`): the goroutine count is read
//! or not found, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = gocost_scrape::runtime::index_goroutines(&text);
});
