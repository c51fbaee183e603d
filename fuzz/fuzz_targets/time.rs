//! Any text as an API time (`from`, `to`): parses or errors, never panics; what parses as
//! whole unix seconds is exactly those seconds, and nothing parses from NaN or infinity.
#![no_main]

use libfuzzer_sys::fuzz_target;

const NOW: i64 = 1_800_000_000_000_000_000;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let r = gocost_server::parse_time(text, NOW);
    let t = text.trim();
    if let Ok(secs) = t.parse::<i64>() {
        match secs.checked_mul(1_000_000_000) {
            Some(ns) => assert_eq!(r, Ok(ns), "{t:?}"),
            None => assert!(r.is_err(), "{t:?}"),
        }
    }
    let lower = t.to_ascii_lowercase();
    if lower.contains("nan") || lower.contains("inf") {
        assert!(r.is_err(), "{t:?}");
    }
});
